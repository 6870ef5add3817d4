//! The in-memory part of the event buffer: queued events kept as compact
//! keyless JSON in chunks of one batch each, and the backlog of events
//! waiting for the dead-letter sink.
//!
//! A queued event is the bytes [`EventEnvelope::write_keyless_json`] wrote,
//! appended to the chunk of the batch it will travel in, plus a 4-byte end
//! offset: no struct, no per-event allocation, no pointers for the worker to
//! chase. The API key is kept once per chunk and spliced in when the batch
//! is encoded, so it is neither repeated in memory nor written to a spool.
//!
//! [`EventEnvelope::write_keyless_json`]: flagwire_core::events::EventEnvelope::write_keyless_json

use std::collections::VecDeque;

use flagwire_core::events::ApiKey;

use super::deadletter::{DeadEvents, DeadLetterReason};

/// Most emptied chunks kept for reuse: enough for a backlog of a few
/// thousand events without allocating, and a bound on what an idle buffer
/// keeps.
pub(crate) const MAX_SPARE_CHUNKS: usize = 32;

/// Events of one batch (or one run of dead letters), back to back.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// The key the events are sent with (`None` only while empty).
    pub(crate) key: Option<ApiKey>,
    /// The events' keyless JSON, one after the other.
    pub(crate) bytes: Vec<u8>,
    /// The end offset of each event in `bytes`.
    pub(crate) ends: Vec<u32>,
    /// Index of the first live event: events before it were displaced.
    pub(crate) start: usize,
    /// Sequence number of the event at index 0.
    pub(crate) first_seq: u64,
}

impl Chunk {
    pub(crate) fn with_capacity(events: usize, bytes: usize) -> Self {
        Chunk {
            key: None,
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(events),
            start: 0,
            first_seq: 0,
        }
    }

    /// Live events.
    pub(crate) fn len(&self) -> usize {
        self.ends.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the live events.
    pub(crate) fn live_bytes(&self) -> usize {
        self.bytes.len() - self.offset(self.start)
    }

    fn offset(&self, index: usize) -> usize {
        match index {
            0 => 0,
            i => self.ends[i - 1] as usize,
        }
    }

    /// The live event at `index` (0 = the oldest live one).
    pub(crate) fn event(&self, index: usize) -> &[u8] {
        let i = self.start + index;
        &self.bytes[self.offset(i)..self.ends[i] as usize]
    }

    /// The live events, oldest first.
    pub(crate) fn events(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.event(i))
    }

    /// The live events as a dead letter sees them.
    pub(crate) fn dead_events(&self) -> DeadEvents<'_> {
        DeadEvents::new(&self.bytes, &self.ends, self.start)
    }

    /// Sequence number of the oldest live event.
    pub(crate) fn front_seq(&self) -> u64 {
        self.first_seq + self.start as u64
    }

    /// Appends one event. The caller checked the size fits in `u32`.
    pub(crate) fn push(&mut self, event: &[u8]) {
        self.bytes.extend_from_slice(event);
        self.ends.push(self.bytes.len() as u32);
    }

    /// Heap bytes the chunk holds (its capacity, not its length).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * std::mem::size_of::<u32>()
    }

    /// Empties the chunk, keeping its allocations.
    pub(crate) fn clear(&mut self) {
        self.key = None;
        self.bytes.clear();
        self.ends.clear();
        self.start = 0;
        self.first_seq = 0;
    }
}

/// A run of events waiting for the dead-letter sink, all for one reason.
#[derive(Debug)]
pub(crate) struct Backlogged {
    pub(crate) reason: DeadLetterReason,
    pub(crate) chunk: Chunk,
}

/// The queue proper: full batches oldest first, the batch being filled, and
/// the backlog of refused and displaced events for the sink. Guarded by the
/// buffer's mutex; every operation is a few pointer moves or one copy of
/// one event.
#[derive(Debug)]
pub(crate) struct Queue {
    /// Full batches, oldest first.
    pub(crate) sealed: VecDeque<Chunk>,
    /// The batch being filled: the newest events.
    pub(crate) open: Chunk,
    /// Emptied chunks, ready to be filled again.
    pub(crate) spare: Vec<Chunk>,
    /// Events in `sealed` and `open`.
    pub(crate) len: usize,
    /// Bytes of the events in `sealed` and `open`.
    pub(crate) bytes: usize,
    /// Events waiting for the dead-letter sink, oldest first.
    pub(crate) backlog: VecDeque<Backlogged>,
    pub(crate) backlog_len: usize,
    pub(crate) backlog_bytes: usize,
    /// Events ever put on the backlog; the worker publishes how many it
    /// handed to the sink, and flush waits for the two to meet.
    pub(crate) backlog_pushed: u64,
    /// Sequence number of the newest accepted event (1-based). The queue
    /// holds the contiguous range `last_seq - len + 1 ..= last_seq`.
    pub(crate) last_seq: u64,
    /// Average size of an event, to size new chunks.
    avg_event: usize,
}

impl Queue {
    pub(crate) fn new(first_seq: u64) -> Self {
        Queue {
            sealed: VecDeque::new(),
            open: Chunk::default(),
            spare: Vec::new(),
            len: 0,
            bytes: 0,
            backlog: VecDeque::new(),
            backlog_len: 0,
            backlog_bytes: 0,
            backlog_pushed: 0,
            last_seq: first_seq.saturating_sub(1),
            avg_event: 256,
        }
    }

    /// Heap bytes held by every chunk: queued, backlogged and spare.
    pub(crate) fn heap_bytes(&self) -> usize {
        let chunk = std::mem::size_of::<Chunk>();
        self.sealed
            .iter()
            .chain(std::iter::once(&self.open))
            .chain(self.spare.iter())
            .chain(self.backlog.iter().map(|b| &b.chunk))
            .map(|c| c.heap_bytes() + chunk)
            .sum()
    }

    /// Sequence number of the oldest queued event (`last_seq + 1` when
    /// empty).
    pub(crate) fn front_seq(&self) -> u64 {
        self.last_seq + 1 - self.len as u64
    }

    /// A chunk for `max_batch` events: a spare one, or a new one sized by
    /// the average event seen so far (plus a tenth), so that a chunk rarely
    /// grows and never holds much more than it needs.
    fn fresh_chunk(&mut self, max_batch: usize) -> Chunk {
        self.spare.pop().unwrap_or_else(|| {
            let bytes = max_batch * self.avg_event + max_batch * self.avg_event / 10;
            Chunk::with_capacity(max_batch, bytes)
        })
    }

    /// Appends an event, sealing the open batch first when it holds events
    /// of another key, and after it when it is full. Returns whether a batch
    /// was sealed (the worker has a full batch to take).
    pub(crate) fn push(&mut self, key: &ApiKey, event: &[u8], max_batch: usize) -> bool {
        let mut sealed = false;
        if self.open.key.as_ref().is_some_and(|k| !same_key(k, key)) && !self.open.is_empty() {
            self.seal(max_batch);
            sealed = true;
        }
        if self.open.ends.capacity() == 0 {
            self.open = self.fresh_chunk(max_batch);
        }
        if self.open.is_empty() {
            self.open.key = Some(key.clone());
            self.open.first_seq = self.last_seq + 1;
        }
        self.open.push(event);
        self.len += 1;
        self.bytes += event.len();
        self.last_seq += 1;
        // An exponential average over about 64 events.
        self.avg_event = (self.avg_event * 63 + event.len()) / 64;
        if self.open.len() >= max_batch {
            self.seal(max_batch);
            sealed = true;
        }
        sealed
    }

    /// Moves the open batch to `sealed` and opens a fresh one.
    pub(crate) fn seal(&mut self, max_batch: usize) {
        if self.open.is_empty() {
            return;
        }
        let next = self.fresh_chunk(max_batch);
        let full = std::mem::replace(&mut self.open, next);
        self.sealed.push_back(full);
    }

    /// Keeps an empty chunk for reuse, up to [`MAX_SPARE_CHUNKS`]; returns
    /// it when it is not kept (free it outside the lock).
    pub(crate) fn recycle(&mut self, mut chunk: Chunk) -> Option<Chunk> {
        chunk.clear();
        if self.spare.len() < MAX_SPARE_CHUNKS && chunk.ends.capacity() > 0 {
            self.spare.push(chunk);
            None
        } else {
            Some(chunk)
        }
    }

    /// Takes the oldest sealed batch, or with `partial` the open one when no
    /// sealed batch waits.
    pub(crate) fn take_batch(&mut self, partial: bool, max_batch: usize) -> Option<Chunk> {
        let chunk = match self.sealed.pop_front() {
            Some(chunk) => chunk,
            None if partial && !self.open.is_empty() => {
                let next = self.fresh_chunk(max_batch);
                std::mem::replace(&mut self.open, next)
            }
            None => return None,
        };
        self.len -= chunk.len();
        self.bytes -= chunk.live_bytes();
        Some(chunk)
    }

    /// Takes every queued event (the spool's commit), oldest first.
    pub(crate) fn take_all(&mut self, max_batch: usize, out: &mut Vec<Chunk>) {
        self.seal(max_batch);
        out.extend(self.sealed.drain(..));
        self.len = 0;
        self.bytes = 0;
    }

    /// Puts chunks taken by [`take_all`](Self::take_all) back in front of
    /// the queue (a failed spool commit), oldest first; `chunks` is left
    /// empty.
    pub(crate) fn requeue_front(&mut self, chunks: &mut Vec<Chunk>) {
        for chunk in chunks.drain(..).rev() {
            if chunk.is_empty() {
                drop(self.recycle(chunk));
                continue;
            }
            self.len += chunk.len();
            self.bytes += chunk.live_bytes();
            self.sealed.push_front(chunk);
        }
    }

    /// Moves the oldest queued event to the backlog as displaced (overflow
    /// policy `DropOldest`). `backlog_room(backlog_len, backlog_bytes,
    /// size)` decides whether the backlog takes it; when it does not, the
    /// event is discarded unrecorded. Returns the event's size and whether
    /// it was recorded, or `None` when the queue is empty.
    pub(crate) fn displace_oldest(
        &mut self,
        max_batch: usize,
        backlog_room: impl Fn(usize, usize, usize) -> bool,
    ) -> Option<(usize, bool)> {
        let Queue {
            sealed,
            open,
            spare,
            backlog,
            backlog_len,
            backlog_bytes,
            backlog_pushed,
            ..
        } = self;
        let from_sealed = !sealed.is_empty();
        let chunk = match sealed.front_mut() {
            Some(chunk) => chunk,
            None if !open.is_empty() => open,
            None => return None,
        };
        let size = chunk.event(0).len();
        let recorded = backlog_room(*backlog_len, *backlog_bytes, size);
        if recorded && let Some(key) = chunk.key.as_ref() {
            push_backlog(
                backlog,
                spare,
                DeadLetterReason::Displaced,
                key,
                chunk.event(0),
                max_batch,
            );
            *backlog_len += 1;
            *backlog_bytes += size;
            *backlog_pushed += 1;
        }
        chunk.start += 1;
        if chunk.is_empty() {
            if from_sealed {
                if let Some(chunk) = self.sealed.pop_front() {
                    drop(self.recycle(chunk));
                }
            } else {
                chunk.clear();
            }
        }
        self.len -= 1;
        self.bytes -= size;
        Some((size, recorded))
    }

    /// Puts a refused event on the backlog.
    pub(crate) fn backlog_refused(&mut self, key: &ApiKey, event: &[u8], max_batch: usize) {
        push_backlog(
            &mut self.backlog,
            &mut self.spare,
            DeadLetterReason::QueueFull,
            key,
            event,
            max_batch,
        );
        self.backlog_len += 1;
        self.backlog_bytes += event.len();
        self.backlog_pushed += 1;
    }

    /// Takes the oldest run of backlogged events.
    pub(crate) fn take_backlog(&mut self) -> Option<Backlogged> {
        let run = self.backlog.pop_front()?;
        self.backlog_len -= run.chunk.len();
        self.backlog_bytes -= run.chunk.live_bytes();
        Some(run)
    }
}

/// Appends to the newest backlog run when it has the same reason and key
/// and room, else starts a run.
fn push_backlog(
    backlog: &mut VecDeque<Backlogged>,
    spare: &mut Vec<Chunk>,
    reason: DeadLetterReason,
    key: &ApiKey,
    event: &[u8],
    max_batch: usize,
) {
    let fits = backlog.back().is_some_and(|run| {
        run.reason == reason
            && run.chunk.len() < max_batch
            && run.chunk.key.as_ref().is_some_and(|k| same_key(k, key))
    });
    if !fits {
        let mut chunk = spare
            .pop()
            .unwrap_or_else(|| Chunk::with_capacity(max_batch, 0));
        chunk.key = Some(key.clone());
        backlog.push_back(Backlogged { reason, chunk });
    }
    if let Some(run) = backlog.back_mut() {
        run.chunk.push(event);
    }
}

/// Key equality, by pointer first (every event of a client shares one key).
pub(crate) fn same_key(a: &ApiKey, b: &ApiKey) -> bool {
    std::ptr::eq(a.expose(), b.expose()) || a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        ApiKey::new("sch_dev_k").unwrap()
    }

    fn ev(i: usize) -> Vec<u8> {
        format!(r#"{{"type":"track","n":{i}}}"#).into_bytes()
    }

    fn numbers(chunk: &Chunk) -> Vec<usize> {
        chunk
            .events()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_slice(e).unwrap();
                v["n"].as_u64().unwrap() as usize
            })
            .collect()
    }

    #[test]
    fn batches_come_out_whole_in_order_with_their_sequence_numbers() {
        let k = key();
        let mut q = Queue::new(1);
        for i in 0..8 {
            q.push(&k, &ev(i), 3);
        }
        assert_eq!((q.sealed.len(), q.open.len(), q.len), (2, 2, 8));
        assert_eq!(q.front_seq(), 1);
        let mut taken = Vec::new();
        while let Some(chunk) = q.take_batch(true, 3) {
            taken.push((chunk.front_seq(), numbers(&chunk)));
            drop(q.recycle(chunk));
        }
        assert_eq!(
            taken,
            [(1, vec![0, 1, 2]), (4, vec![3, 4, 5]), (7, vec![6, 7])]
        );
        assert_eq!((q.len, q.bytes, q.front_seq()), (0, 0, 9));
        // Emptied chunks are reused.
        let spare = q.spare.len();
        assert!(spare >= 2);
        for i in 8..11 {
            q.push(&k, &ev(i), 3);
        }
        assert!(q.spare.len() < spare);
    }

    #[test]
    fn a_new_key_starts_a_new_batch() {
        let (a, b) = (key(), ApiKey::new("sch_dev_other").unwrap());
        let mut q = Queue::new(1);
        q.push(&a, &ev(0), 10);
        q.push(&a.clone(), &ev(1), 10);
        assert!(q.push(&b, &ev(2), 10));
        let first = q.take_batch(true, 10).unwrap();
        assert_eq!(numbers(&first), [0, 1]);
        let second = q.take_batch(true, 10).unwrap();
        assert_eq!(second.key.as_ref().unwrap().expose(), "sch_dev_other");
        assert_eq!(numbers(&second), [2]);
    }

    #[test]
    fn displacing_takes_the_oldest_event_into_the_backlog() {
        let k = key();
        let mut q = Queue::new(1);
        for i in 0..5 {
            q.push(&k, &ev(i), 2);
        }
        for _ in 0..3 {
            assert!(q.displace_oldest(2, |_, _, _| true).unwrap().1);
        }
        assert_eq!((q.len, q.front_seq(), q.backlog_len), (2, 4, 3));
        let run = q.take_backlog().unwrap();
        assert_eq!(run.reason, DeadLetterReason::Displaced);
        assert_eq!(numbers(&run.chunk), [0, 1]);
        assert_eq!(numbers(&q.take_backlog().unwrap().chunk), [2]);
        assert_eq!(q.backlog_len, 0);
        assert_eq!(numbers(&q.take_batch(true, 2).unwrap()), [3]);
        // The open batch is displaced from too, then nothing is left.
        assert!(!q.displace_oldest(2, |_, _, _| false).unwrap().1);
        assert!(q.displace_oldest(2, |_, _, _| true).is_none());
        assert_eq!((q.len, q.bytes), (0, 0));
    }

    #[test]
    fn refused_events_share_runs_by_reason() {
        let k = key();
        let mut q = Queue::new(1);
        q.backlog_refused(&k, &ev(1), 10);
        q.backlog_refused(&k, &ev(2), 10);
        q.push(&k, &ev(3), 10);
        q.displace_oldest(10, |_, _, _| true);
        q.backlog_refused(&k, &ev(4), 10);
        let reasons: Vec<_> = q
            .backlog
            .iter()
            .map(|r| (r.reason, r.chunk.len()))
            .collect();
        assert_eq!(
            reasons,
            [
                (DeadLetterReason::QueueFull, 2),
                (DeadLetterReason::Displaced, 1),
                (DeadLetterReason::QueueFull, 1)
            ]
        );
        assert_eq!(q.backlog_pushed, 4);
    }

    #[test]
    fn the_spare_list_is_bounded() {
        let k = key();
        let mut q = Queue::new(1);
        for i in 0..(MAX_SPARE_CHUNKS + 10) {
            q.push(&k, &ev(i), 1);
        }
        let mut freed = 0;
        while let Some(chunk) = q.take_batch(true, 1) {
            freed += usize::from(q.recycle(chunk).is_some());
        }
        assert_eq!(q.spare.len(), MAX_SPARE_CHUNKS);
        assert!(freed >= 9);
    }
}
