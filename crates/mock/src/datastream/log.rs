//! The replay log: the most recent pushed changes, kept so that a client
//! reconnecting with `replay_from` gets exactly what it missed.
//!
//! The log is bounded. A cursor can be honoured only if every change issued
//! after it is still held: that is the case when the cursor is an id still in
//! the log, or the id of the newest change dropped from it. Any other cursor
//! (older than the log, never issued by this server, or wiped by
//! [`trim`](ReplayLog::trim)) cannot be, and the client is told to reload.

use std::collections::VecDeque;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::stream_id::StreamId;
use super::subscriptions::Topic;

/// One pushed change: its id, what it is about, and the message as sent.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub(crate) id: StreamId,
    pub(crate) topic: Topic,
    pub(crate) text: Utf8Bytes,
}

/// Issues stream ids and keeps the newest changes.
#[derive(Debug)]
pub(crate) struct ReplayLog {
    capacity: usize,
    entries: VecDeque<Logged>,
    /// The newest id dropped for lack of room: replaying after it needs
    /// only what the log still holds.
    last_evicted: Option<StreamId>,
    last_issued: Option<StreamId>,
}

impl ReplayLog {
    pub(crate) fn new(capacity: usize) -> ReplayLog {
        ReplayLog {
            capacity,
            entries: VecDeque::with_capacity(capacity.min(1024)),
            last_evicted: None,
            last_issued: None,
        }
    }

    /// A fresh id, greater than every id issued before.
    pub(crate) fn next_id(&mut self, now_millis: u64) -> StreamId {
        let id = StreamId::after(self.last_issued, now_millis);
        self.last_issued = Some(id);
        id
    }

    /// The newest id issued, if any.
    pub(crate) fn head(&self) -> Option<StreamId> {
        self.last_issued
    }

    /// Appends a change (its id from [`next_id`](Self::next_id)), dropping
    /// the oldest when full.
    pub(crate) fn push(&mut self, entry: Logged) {
        if self.capacity == 0 {
            self.last_evicted = Some(entry.id);
            return;
        }
        if self.entries.len() >= self.capacity
            && let Some(old) = self.entries.pop_front()
        {
            self.last_evicted = Some(old.id);
        }
        self.entries.push_back(entry);
    }

    /// The changes issued after `cursor`, oldest first; `None` when the log
    /// cannot vouch for them (the client must reload).
    pub(crate) fn after(&self, cursor: StreamId) -> Option<impl Iterator<Item = &Logged>> {
        let start = if Some(cursor) == self.last_evicted {
            0
        } else {
            self.entries.binary_search_by_key(&cursor, |e| e.id).ok()? + 1
        };
        Some(self.entries.range(start..))
    }

    /// Forgets every change, so that no cursor issued so far can be
    /// replayed.
    pub(crate) fn trim(&mut self) {
        self.entries.clear();
        self.last_evicted = None;
    }

    /// How many changes are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn log_with(capacity: usize, n: usize) -> (ReplayLog, Vec<StreamId>) {
        let mut log = ReplayLog::new(capacity);
        let ids = (0..n)
            .map(|i| {
                let id = log.next_id(1_000 + (i as u64) / 3);
                log.push(Logged {
                    id,
                    topic: Topic::Flag,
                    text: Utf8Bytes::from(id.to_string()),
                });
                id
            })
            .collect();
        (log, ids)
    }

    fn replay(log: &ReplayLog, cursor: &str) -> Option<Vec<StreamId>> {
        let cursor = cursor.parse().ok()?;
        log.after(cursor).map(|it| it.map(|e| e.id).collect())
    }

    #[test]
    fn unknown_cursors_need_a_reload() {
        let (log, ids) = log_with(10, 4);
        assert_eq!(replay(&log, "1-0"), None, "never issued here");
        assert_eq!(replay(&log, "999999999999-0"), None, "from the future");
        assert_eq!(replay(&log, &ids[3].to_string()), Some(vec![]));
        assert_eq!(replay(&log, &ids[1].to_string()), Some(ids[2..].to_vec()));
    }

    #[test]
    fn trimming_invalidates_every_cursor_until_new_changes() {
        let (mut log, ids) = log_with(10, 4);
        log.trim();
        assert_eq!(log.len(), 0);
        for id in &ids {
            assert_eq!(replay(&log, &id.to_string()), None);
        }
        let next = log.next_id(0);
        log.push(Logged {
            id: next,
            topic: Topic::Flag,
            text: Utf8Bytes::from_static("x"),
        });
        assert!(next > ids[3]);
        assert_eq!(replay(&log, &ids[3].to_string()), None);
        assert_eq!(replay(&log, &next.to_string()), Some(vec![]));
    }

    #[test]
    fn a_log_without_room_replays_only_the_newest_cursor() {
        let (log, ids) = log_with(0, 3);
        assert_eq!(log.len(), 0);
        assert_eq!(replay(&log, &ids[2].to_string()), Some(vec![]));
        assert_eq!(replay(&log, &ids[1].to_string()), None);
    }

    proptest! {
        /// A cursor replays exactly the changes after it when they are all
        /// still held, and asks for a reload otherwise.
        #[test]
        fn replays_exactly_what_follows_or_reloads(
            capacity in 0usize..12,
            n in 0usize..40,
            pick in any::<prop::sample::Index>(),
        ) {
            let (log, ids) = log_with(capacity, n);
            prop_assert_eq!(log.len(), n.min(capacity));
            if n == 0 {
                return Ok(());
            }
            let k = pick.index(n);
            let missed = n - 1 - k;
            let expected = (missed <= capacity).then(|| ids[k + 1..].to_vec());
            prop_assert_eq!(replay(&log, &ids[k].to_string()), expected);
        }
    }
}
