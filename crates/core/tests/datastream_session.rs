//! The DataStream session against a simulated server over random
//! interleavings of connects, changes, replays, disconnects and reloads;
//! and the reconnect back-off's bounds.

use std::collections::BTreeSet;
use std::time::Duration;

use flagwire_core::datastream::{
    Backoff, EntityType, Message, Mode, ReconnectPolicy, Request, Session, parse_message,
};
use flagwire_core::events::Keys;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Connect,
    Disconnect,
    /// Publish a change of company `n`.
    Publish(u8),
    /// Re-send the last `n` delivered changes, as a replay overlap would.
    Replay(u8),
    Subscribe(u8),
    Forget(u8),
    Reload,
    /// A frame the session must skip without harm.
    Junk(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Connect),
        2 => Just(Op::Disconnect),
        6 => (0u8..4).prop_map(Op::Publish),
        2 => (1u8..5).prop_map(Op::Replay),
        3 => (0u8..4).prop_map(Op::Subscribe),
        1 => (0u8..4).prop_map(Op::Forget),
        1 => Just(Op::Reload),
        1 => (0u8..3).prop_map(Op::Junk),
    ]
}

fn company_keys(n: u8) -> Keys {
    [("id".to_owned(), format!("co-{n}"))].into()
}

fn change(id: u64, n: u8) -> String {
    format!(
        r#"{{"entity_type":"rulesengine.Company","entity_id":"co_{n}","message_type":"partial",
            "stream_id":"{id}-0","data":{{"keys":{{"id":"co-{n}"}},"plan_ids":["p{id}"]}}}}"#
    )
}

const FLAGS: &str = r#"{"entity_type":"rulesengine.Flags","message_type":"full","data":[]}"#;

/// A server that keeps every change since the last reload and replays from
/// the id a client asks for.
struct Harness {
    session: Session,
    connected: bool,
    next_id: u64,
    /// Changes since the last reload: (id, frame).
    log: Vec<(u64, String)>,
    /// Ids the client delivered to its store since the last reload.
    applied: Vec<u64>,
    /// Ids delivered on the wire since the last connect (for overlaps).
    delivered: Vec<(u64, String)>,
    subscribed: BTreeSet<Keys>,
}

impl Harness {
    fn new() -> Self {
        Self {
            session: Session::new(Mode::Direct),
            connected: false,
            next_id: 1_760_000_000_000,
            log: Vec::new(),
            applied: Vec::new(),
            delivered: Vec::new(),
            subscribed: BTreeSet::new(),
        }
    }

    /// Hands one frame to the session, as the socket task does.
    fn deliver(&mut self, frame: &str) -> Result<(), TestCaseError> {
        if let Ok(Some(received)) = self.session.on_text(frame) {
            if let Some(id) = received.stream_id {
                let (millis, _) = id.parts().expect("numeric ids");
                if let Some(&last) = self.applied.last() {
                    prop_assert!(millis > last, "applied {millis} after {last}");
                }
                self.applied.push(millis);
            }
            if received.message == Message::Reload {
                self.after_reload()?;
            }
        }
        Ok(())
    }

    /// Checks the requests of a (re)connect or reload and answers them.
    fn answer(&mut self, requests: &[Request], reloaded: bool) -> Result<(), TestCaseError> {
        prop_assert_eq!(&requests[0].entity_type, &EntityType::Flags);
        let sent: BTreeSet<Keys> = requests[1..]
            .iter()
            .map(|r| {
                assert_eq!(r.entity_type, EntityType::Company);
                r.keys.clone().unwrap()
            })
            .collect();
        prop_assert_eq!(sent.len(), requests.len() - 1, "one request per key set");
        prop_assert_eq!(&sent, &self.subscribed, "every subscription is re-sent");
        if reloaded {
            prop_assert!(requests.iter().all(|r| r.replay_from.is_none()));
        }
        self.deliver(FLAGS)?;
        prop_assert!(self.session.is_ready());
        // Replay what the client missed, with one change of overlap.
        let from = requests[0]
            .replay_from
            .as_ref()
            .map_or(0, |id| id.parts().unwrap().0);
        let start = self
            .log
            .iter()
            .position(|(id, _)| *id > from)
            .unwrap_or(self.log.len())
            .saturating_sub(1);
        let replay: Vec<(u64, String)> = self.log[start..].to_vec();
        for (id, frame) in replay {
            self.deliver(&frame)?;
            self.delivered.push((id, frame));
        }
        Ok(())
    }

    fn after_reload(&mut self) -> Result<(), TestCaseError> {
        prop_assert!(!self.session.is_ready());
        prop_assert!(self.session.last_stream_id().is_none());
        self.log.clear();
        self.applied.clear();
        self.delivered.clear();
        let requests = self.session.after_reload();
        self.answer(&requests, true)
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Connect if !self.connected => {
                self.connected = true;
                self.delivered.clear();
                let requests = self.session.on_connected();
                self.answer(&requests, false)?;
            }
            Op::Connect => {}
            Op::Disconnect => {
                self.connected = false;
                self.session.on_disconnected();
                prop_assert!(!self.session.is_ready());
            }
            Op::Publish(n) => {
                self.next_id += 1;
                let frame = change(self.next_id, n);
                self.log.push((self.next_id, frame.clone()));
                if self.connected {
                    self.deliver(&frame)?;
                    self.delivered.push((self.next_id, frame));
                }
            }
            Op::Replay(n) if self.connected => {
                let from = self.delivered.len().saturating_sub(usize::from(n));
                let again: Vec<(u64, String)> = self.delivered[from..].to_vec();
                let before = self.applied.len();
                for (_, frame) in &again {
                    self.deliver(frame)?;
                }
                prop_assert_eq!(
                    self.applied.len(),
                    before,
                    "a replayed change was applied twice"
                );
            }
            Op::Replay(_) => {}
            Op::Subscribe(n) => {
                let keys = company_keys(n);
                let request = self.session.subscribe_company(&keys);
                let new = self.subscribed.insert(keys.clone());
                if !self.connected {
                    prop_assert!(request.is_none());
                } else if new {
                    prop_assert_eq!(request, Some(Request::company(keys)));
                }
            }
            Op::Forget(n) => {
                let keys = company_keys(n);
                self.session.forget_company(&keys);
                self.subscribed.remove(&keys);
            }
            Op::Reload if self.connected => {
                self.deliver(r#"{"message_type":"reload"}"#)?;
            }
            Op::Reload => {}
            Op::Junk(kind) if self.connected => {
                let frame = match kind {
                    0 => "{not json",
                    1 => r#"{"entity_type":"rulesengine.Plan","message_type":"full","data":{}}"#,
                    _ => {
                        r#"{"entity_type":"rulesengine.Company","message_type":"partial","data":{}}"#
                    }
                };
                let stats = self.session.stats();
                self.deliver(frame)?;
                let after = self.session.stats();
                prop_assert_eq!(
                    after.malformed + after.ignored,
                    stats.malformed + stats.ignored + 1
                );
            }
            Op::Junk(_) => {}
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn changes_are_applied_once_in_order_without_gaps(ops in prop::collection::vec(op(), 1..60)) {
        let mut h = Harness::new();
        for op in &ops {
            h.run(op)?;
        }
        // A final connect brings the client up to date.
        h.run(&Op::Disconnect)?;
        h.run(&Op::Connect)?;
        let logged: Vec<u64> = h.log.iter().map(|(id, _)| *id).collect();
        prop_assert_eq!(&h.applied, &logged, "every change since the last reload, once, in order");
        let stats = h.session.stats();
        prop_assert!(stats.decoded >= h.applied.len() as u64);
    }

    #[test]
    fn delays_grow_to_the_cap_and_stay_in_bounds(
        base_ms in 0u64..5_000,
        cap_ms in 0u64..120_000,
        jitter_ms in 0u64..5_000,
        unit in 0.0f64..1.0,
        randoms in prop::collection::vec(any::<f64>(), 1..40),
    ) {
        let policy = ReconnectPolicy::default()
            .with_base(Duration::from_millis(base_ms))
            .with_cap(Duration::from_millis(cap_ms))
            .with_jitter(Duration::from_millis(jitter_ms));
        let bound = policy.cap + policy.jitter;
        // With the same random draw, delays never shrink.
        let mut steady = Backoff::new(policy);
        let mut last = Duration::ZERO;
        for _ in 0..randoms.len() {
            let delay = steady.next_delay(unit);
            prop_assert!(delay >= last, "{delay:?} after {last:?}");
            prop_assert!(delay <= bound);
            last = delay;
        }
        // With any draws (NaN and infinities included), delays stay within [0, cap + jitter]
        // and reach the cap once 2^(n-1) × base passes it.
        let mut b = Backoff::new(policy);
        for (n, r) in randoms.iter().enumerate() {
            let delay = b.next_delay(*r);
            prop_assert!(delay <= bound, "{delay:?} > {bound:?}");
            let exponential = policy.base.saturating_mul(1 << n.min(31)).min(policy.cap);
            prop_assert!(delay >= exponential);
        }
        prop_assert_eq!(b.failures() as usize, randoms.len());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_message(&text);
        let mut session = Session::new(Mode::Direct);
        session.on_connected();
        let _ = session.on_text(&text);
    }

    #[test]
    fn arbitrary_envelopes_never_panic(
        entity_type in prop_oneof![
            Just("rulesengine.Flag"), Just("rulesengine.Flags"), Just("rulesengine.Company"),
            Just("rulesengine.User"), Just("rulesengine.Users"), Just("x"),
        ],
        message_type in prop_oneof![
            Just("full"), Just("partial"), Just("delete"), Just("error"), Just("reload"), Just("?"),
        ],
        data in prop_oneof![
            Just("null".to_owned()), Just("[]".to_owned()), Just("{}".to_owned()),
            "\\PC{0,30}", Just(r#"{"id":"x","keys":{"a":"b"},"metrics":null}"#.to_owned()),
        ],
        stream in proptest::option::of("[0-9]{1,3}-[0-9]|x"),
    ) {
        let stream = stream.map_or(String::new(), |s| format!(r#","stream_id":"{s}""#));
        let text = format!(
            r#"{{"entity_type":"{entity_type}","message_type":"{message_type}"{stream},"data":{data}}}"#
        );
        if let Ok(received) = parse_message(&text) {
            // Change messages always name their entity.
            match received.message {
                Message::CompanyPatch { id, .. } | Message::CompanyDeleted { id, .. }
                | Message::UserPatch { id, .. } | Message::UserDeleted { id, .. } => {
                    prop_assert!(!id.is_empty());
                }
                Message::Company(c) => prop_assert!(!c.id.is_empty()),
                Message::User(u) => prop_assert!(!u.id.is_empty()),
                Message::Flag(f) => prop_assert!(!f.key.is_empty()),
                _ => {}
            }
        }
    }
}
