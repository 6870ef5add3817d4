//! The hub: every open DataStream connection with its subscriptions and
//! outgoing queue, and the replay log.
//!
//! The hub is only touched under its mutex, and only for short, non-blocking
//! work: a change or a reply is rendered once and pushed onto the queue of
//! each connection that wants it; each connection's own task writes its
//! queue to the socket. So a slow or stalled client never holds up a REST
//! request, and every connection sees its messages in stream order.
//!
//! Requests that read the state (snapshots, key lookups) take the store's
//! read lock before the hub's mutex, as the store's mutations do with the
//! write lock: a snapshot and the subscription it starts are therefore
//! atomic with respect to changes, so a client never misses a change made
//! after its snapshot nor gets one the snapshot already contains.

use std::collections::BTreeMap;

use flagwire_core::rules::Flag;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::changes::{Change, ChangeType};
use super::log::{Logged, ReplayLog};
use super::stream_id::{StreamId, unix_millis};
use super::subscriptions::{Subject, Subscriptions, Topic};
use super::wire::{self, Action, COMPANY, FLAGS, Request, RequestKind, USER};
use crate::store::{Kind, Store};

/// What a fault switch asks one connection to do.
#[derive(Debug, Clone, Default)]
pub(crate) struct Control {
    /// Neither read nor write until then.
    pub(crate) stall_until: Option<Instant>,
    /// End the connection.
    pub(crate) stop: Option<Stop>,
}

/// How a connection is ended by a fault switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Close the socket without a close frame.
    Drop,
    /// Send a close frame with this code and reason.
    Close { code: u16, reason: String },
}

/// The receiving ends a new connection's task works from.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) id: u64,
    pub(crate) queue: mpsc::UnboundedReceiver<Utf8Bytes>,
    pub(crate) control: watch::Receiver<Control>,
}

#[derive(Debug)]
struct Conn {
    queue: mpsc::UnboundedSender<Utf8Bytes>,
    control: watch::Sender<Control>,
    subs: Subscriptions,
}

impl Conn {
    fn send(&self, text: Utf8Bytes) {
        // The receiver is gone only once the connection's task has ended.
        let _ = self.queue.send(text);
    }
}

/// The open connections and the replay log.
#[derive(Debug)]
pub(crate) struct Hub {
    next_conn: u64,
    conns: BTreeMap<u64, Conn>,
    log: ReplayLog,
}

impl Hub {
    pub(crate) fn new(replay_log_capacity: usize) -> Hub {
        Hub {
            next_conn: 0,
            conns: BTreeMap::new(),
            log: ReplayLog::new(replay_log_capacity),
        }
    }

    /// Adds a connection with no subscriptions.
    pub(crate) fn register(&mut self) -> Registration {
        self.next_conn += 1;
        let id = self.next_conn;
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let (control_tx, control_rx) = watch::channel(Control::default());
        self.conns.insert(
            id,
            Conn {
                queue: queue_tx,
                control: control_tx,
                subs: Subscriptions::default(),
            },
        );
        Registration {
            id,
            queue: queue_rx,
            control: control_rx,
        }
    }

    /// Removes a connection (no-op if a fault switch already did).
    pub(crate) fn unregister(&mut self, id: u64) {
        self.conns.remove(&id);
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    /// Queues `text` for one connection.
    pub(crate) fn send_to(&self, id: u64, text: Utf8Bytes) {
        if let Some(c) = self.conns.get(&id) {
            c.send(text);
        }
    }

    /// Queues `text` for every connection; returns how many.
    pub(crate) fn broadcast(&self, text: &Utf8Bytes) -> usize {
        for c in self.conns.values() {
            c.send(text.clone());
        }
        self.conns.len()
    }

    /// Ends every connection the way `stop` says; they leave the hub at
    /// once (nothing more is queued for them). Returns how many.
    pub(crate) fn stop_all(&mut self, stop: &Stop) -> usize {
        let conns = std::mem::take(&mut self.conns);
        for c in conns.values() {
            c.control.send_modify(|ctl| ctl.stop = Some(stop.clone()));
        }
        conns.len()
    }

    /// Stalls every connection until `until`; returns how many.
    pub(crate) fn stall_all(&self, until: Instant) -> usize {
        for c in self.conns.values() {
            c.control.send_modify(|ctl| ctl.stall_until = Some(until));
        }
        self.conns.len()
    }

    /// Forgets the replay log.
    pub(crate) fn trim_log(&mut self) {
        self.log.trim();
    }

    /// Stamps each change with a fresh stream id, logs it, and queues it for
    /// every connection subscribed to it. A deleted company or user also
    /// ends the subscriptions to it.
    pub(crate) fn publish(&mut self, changes: Vec<Change>) {
        let now = unix_millis();
        for change in changes {
            let id = self.log.next_id(now);
            let text = wire::message(
                change.entity_type(),
                change.entity_id(),
                change.change_type.wire(),
                Some(id),
                Some(&change.data),
            );
            let gone = match (&change.topic, change.change_type) {
                (Topic::Company(e), ChangeType::Delete) => Some(Subject::Company(e.clone())),
                (Topic::User(e), ChangeType::Delete) => Some(Subject::User(e.clone())),
                _ => None,
            };
            for c in self.conns.values_mut() {
                if c.subs.wants(&change.topic) {
                    c.send(text.clone());
                }
                if let Some(subject) = &gone {
                    c.subs.remove(subject);
                }
            }
            self.log.push(Logged {
                id,
                topic: change.topic,
                text,
            });
        }
    }

    /// Acts on one request of connection `conn`, queueing its replies.
    ///
    /// `start` subscribes and answers: `Companies`/`Users` with a
    /// confirmation, then (with `replay_from`) the missed changes or a
    /// `reload`, then `Flags` with the flag snapshot and `Company`/`User`
    /// with the entity. `stop` unsubscribes silently.
    pub(crate) fn handle(&mut self, store: &Store, conn: u64, request: Request) {
        let head = self.log.head();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let kind = request.kind;
        let subject = match kind {
            RequestKind::Flags => Subject::Flags,
            RequestKind::Companies => Subject::AllCompanies,
            RequestKind::Users => Subject::AllUsers,
            RequestKind::Company | RequestKind::User => {
                let entity_kind = if kind == RequestKind::Company {
                    Kind::Company
                } else {
                    Kind::User
                };
                let pairs = request.keys.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                match store.find_by_key_pairs(entity_kind, pairs) {
                    Some(id) if kind == RequestKind::Company => Subject::Company(id.to_owned()),
                    Some(id) => Subject::User(id.to_owned()),
                    None if request.action == Action::Stop => return,
                    None => {
                        c.send(not_found(kind, entity_kind, &request));
                        return;
                    }
                }
            }
        };
        if request.action == Action::Stop {
            c.subs.remove(&subject);
            return;
        }

        let mut replies = Vec::new();
        if matches!(kind, RequestKind::Companies | RequestKind::Users) {
            replies.push(wire::message(
                kind.wire(),
                None,
                "full",
                None,
                Some(json!({})),
            ));
        }
        let delivered_after = match request.replay_from.as_deref() {
            None => head,
            Some(cursor) => {
                let replay = cursor
                    .parse::<StreamId>()
                    .ok()
                    .and_then(|from| Some((from, self.log.after(from)?)));
                match replay {
                    Some((from, missed)) => {
                        replies.extend(
                            missed
                                .filter(|e| {
                                    subject.matches(&e.topic) && !c.subs.delivered(e.id, &e.topic)
                                })
                                .map(|e| e.text.clone()),
                        );
                        Some(from)
                    }
                    None => {
                        replies.push(wire::message::<Value>(
                            kind.wire(),
                            None,
                            "reload",
                            None,
                            None,
                        ));
                        head
                    }
                }
            }
        };
        match &subject {
            Subject::Flags => replies.push(flags_snapshot(store)),
            Subject::Company(id) => {
                if let Some(p) = store.prepared_companies.get(id) {
                    replies.push(wire::message(
                        COMPANY,
                        Some(id),
                        "full",
                        None,
                        Some(&p.to_company()),
                    ));
                }
            }
            Subject::User(id) => {
                if let Some(p) = store.prepared_users.get(id) {
                    replies.push(wire::message(USER, Some(id), "full", None, Some(p.user())));
                }
            }
            Subject::AllCompanies | Subject::AllUsers => {}
        }
        c.subs.add(subject, delivered_after);
        for reply in replies {
            c.send(reply);
        }
    }

    /// The subjects of one connection (for tests).
    #[cfg(test)]
    fn subjects(&self, conn: u64) -> Vec<Subject> {
        self.conns
            .get(&conn)
            .map(|c| c.subs.subjects().cloned().collect())
            .unwrap_or_default()
    }
}

/// The `error` answer to a request whose keys match no entity.
fn not_found(kind: RequestKind, entity_kind: Kind, request: &Request) -> Utf8Bytes {
    let keys: serde_json::Map<String, Value> = request
        .keys
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    wire::error(
        Some(kind.wire()),
        &format!("no {} with these keys", entity_kind.as_str()),
        Some(&keys),
    )
}

/// All flags, in creation order, as one `rulesengine.Flags` `full` message.
fn flags_snapshot(store: &Store) -> Utf8Bytes {
    let flags: Vec<&Flag> = store
        .flags
        .values()
        .filter_map(|f| store.engine.flag(&f.key).map(|c| c.flag()))
        .collect();
    wire::message(FLAGS, None, "full", None, Some(flags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Refreshed;
    use proptest::prelude::*;

    fn request(kind: RequestKind, replay_from: Option<&str>) -> Request {
        Request {
            action: Action::Start,
            kind,
            keys: Default::default(),
            replay_from: replay_from.map(str::to_owned),
        }
    }

    fn change(topic: Topic) -> Change {
        Change {
            topic,
            change_type: ChangeType::Partial,
            data: json!({"traits": []}),
        }
    }

    fn drain(reg: &mut Registration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(text) = reg.queue.try_recv() {
            out.push(serde_json::from_str(&text).unwrap());
        }
        out
    }

    fn empty_store() -> Store {
        let mut store = Store::new(None);
        let _: Refreshed = store.refresh();
        store
    }

    #[test]
    fn live_changes_reach_only_subscribers_in_stream_order() {
        let store = empty_store();
        let mut hub = Hub::new(100);
        let mut flags = hub.register();
        let mut companies = hub.register();
        hub.handle(&store, flags.id, request(RequestKind::Flags, None));
        hub.handle(&store, companies.id, request(RequestKind::Companies, None));
        assert_eq!(drain(&mut flags)[0]["entity_type"], FLAGS);
        assert_eq!(
            drain(&mut companies)[0]["entity_type"],
            "rulesengine.Companies"
        );

        hub.publish(vec![
            change(Topic::Company("comp_1".into())),
            change(Topic::Flag),
            change(Topic::User("user_1".into())),
            change(Topic::Company("comp_2".into())),
        ]);
        let got = drain(&mut companies);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["entity_id"], "comp_1");
        assert_eq!(got[1]["entity_id"], "comp_2");
        let a: StreamId = got[0]["stream_id"].as_str().unwrap().parse().unwrap();
        let b: StreamId = got[1]["stream_id"].as_str().unwrap().parse().unwrap();
        assert!(a < b);
        let got = drain(&mut flags);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["entity_type"], "rulesengine.Flag");
    }

    #[test]
    fn replay_across_several_requests_delivers_each_change_once() {
        let store = empty_store();
        let mut hub = Hub::new(100);
        hub.publish(vec![change(Topic::Flag)]);
        let cursor = hub.log.head().unwrap().to_string();
        hub.publish(vec![
            change(Topic::Company("c".into())),
            change(Topic::User("u".into())),
            change(Topic::Flag),
        ]);
        let mut conn = hub.register();
        for kind in [
            RequestKind::Companies,
            RequestKind::Users,
            RequestKind::Flags,
        ] {
            hub.handle(&store, conn.id, request(kind, Some(&cursor)));
        }
        hub.handle(
            &store,
            conn.id,
            request(RequestKind::Companies, Some(&cursor)),
        );
        let got: Vec<String> = drain(&mut conn)
            .iter()
            .map(|m| {
                format!(
                    "{} {}",
                    m["entity_type"].as_str().unwrap(),
                    m["message_type"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "rulesengine.Companies full",
                "rulesengine.Company partial",
                "rulesengine.Users full",
                "rulesengine.User partial",
                "rulesengine.Flag partial",
                "rulesengine.Flags full",
                "rulesengine.Companies full",
            ]
        );
        assert_eq!(
            hub.subjects(conn.id),
            [Subject::AllCompanies, Subject::AllUsers, Subject::Flags]
        );
    }

    #[test]
    fn unknown_cursors_and_trimmed_logs_get_reload() {
        let store = empty_store();
        let mut hub = Hub::new(100);
        hub.publish(vec![change(Topic::Flag)]);
        let cursor = hub.log.head().unwrap().to_string();
        let mut conn = hub.register();
        hub.handle(
            &store,
            conn.id,
            request(RequestKind::Users, Some("garbage")),
        );
        hub.trim_log();
        hub.handle(&store, conn.id, request(RequestKind::Flags, Some(&cursor)));
        let got = drain(&mut conn);
        assert_eq!(
            got[1],
            json!({"entity_type": "rulesengine.Users", "message_type": "reload"})
        );
        assert_eq!(
            got[2],
            json!({"entity_type": FLAGS, "message_type": "reload"})
        );
        assert_eq!(got[3]["message_type"], "full");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Publish(usize),
        Start(usize, Option<prop::sample::Index>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..TOPICS).prop_map(Op::Publish),
            (
                0..SUBJECTS.len(),
                prop::option::of(any::<prop::sample::Index>())
            )
                .prop_map(|(s, c)| Op::Start(s, c)),
        ]
    }

    const TOPICS: usize = 4;
    const SUBJECTS: [RequestKind; 3] = [
        RequestKind::Flags,
        RequestKind::Companies,
        RequestKind::Users,
    ];

    fn topic(i: usize) -> Topic {
        match i {
            0 => Topic::Flag,
            1 => Topic::Company("c1".into()),
            2 => Topic::Company("c2".into()),
            _ => Topic::User("u1".into()),
        }
    }

    fn subject(kind: RequestKind) -> Subject {
        match kind {
            RequestKind::Flags => Subject::Flags,
            RequestKind::Companies => Subject::AllCompanies,
            _ => Subject::AllUsers,
        }
    }

    proptest::proptest! {
        /// Whatever mix of changes and (re)subscriptions with or without
        /// cursors, a connection gets every change after the earliest
        /// position it asked for, for each subject, exactly once.
        #[test]
        fn every_change_after_the_cursor_arrives_exactly_once(
            ops in prop::collection::vec(op(), 0..60),
        ) {
            let store = empty_store();
            let mut hub = Hub::new(1_000);
            let mut conn = hub.register();
            let mut published: Vec<(StreamId, Topic)> = Vec::new();
            // Per subject: the earliest position asked for (None: all).
            let mut from: Vec<(Subject, Option<StreamId>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Publish(t) => {
                        hub.publish(vec![change(topic(t))]);
                        published.push((hub.log.head().unwrap(), topic(t)));
                    }
                    Op::Start(s, cursor) => {
                        let cursor = cursor
                            .filter(|_| !published.is_empty())
                            .map(|i| published[i.index(published.len())].0);
                        let position = cursor.or(hub.log.head());
                        let cursor_text = cursor.map(|c| c.to_string());
                        hub.handle(&store, conn.id, request(SUBJECTS[s], cursor_text.as_deref()));
                        let subject = subject(SUBJECTS[s]);
                        match from.iter_mut().find(|(x, _)| *x == subject) {
                            Some((_, p)) => *p = match (*p, position) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                _ => None,
                            },
                            None => from.push((subject, position)),
                        }
                    }
                }
            }
            let mut delivered: Vec<StreamId> = drain(&mut conn)
                .iter()
                .filter_map(|m| m["stream_id"].as_str())
                .map(|id| id.parse().unwrap())
                .collect();
            let count = delivered.len();
            delivered.sort();
            delivered.dedup();
            prop_assert_eq!(delivered.len(), count, "a change arrived twice");
            let expected: Vec<StreamId> = published
                .iter()
                .filter(|(id, t)| {
                    from.iter().any(|(s, p)| s.matches(t) && p.is_none_or(|p| *id > p))
                })
                .map(|(id, _)| *id)
                .collect();
            prop_assert_eq!(delivered, expected);
        }
    }

    #[test]
    fn switches_reach_every_connection() {
        let mut hub = Hub::new(1);
        let a = hub.register();
        let b = hub.register();
        assert_eq!(hub.len(), 2);
        assert_eq!(hub.stall_all(Instant::now()), 2);
        assert!(a.control.borrow().stall_until.is_some());
        let stop = Stop::Close {
            code: 4000,
            reason: "bye".into(),
        };
        assert_eq!(hub.stop_all(&stop), 2);
        assert_eq!(hub.len(), 0);
        assert_eq!(b.control.borrow().stop, Some(stop));
        hub.unregister(a.id);
        assert_eq!(hub.len(), 0);
    }
}
