//! The protocol state of one client across connections: what to send after
//! a (re)connect, which entity requests are in flight, where to resume, and
//! whether the flag set is complete.
//!
//! The SDK's socket task drives a [`Session`]: it sends the requests of
//! [`on_connected`](Session::on_connected) after every handshake, hands
//! every text frame to [`on_text`](Session::on_text) and applies what comes
//! back to its store, in order, on one task; it calls
//! [`subscribe_company`](Session::subscribe_company) /
//! [`subscribe_user`](Session::subscribe_user) on a cache miss and sends
//! the request they return; and it reports the end of a connection with
//! [`on_disconnected`](Session::on_disconnected) and asks
//! [`on_close_code`](Session::on_close_code) whether to try again.
//!
//! Decisions this module makes (the official SDKs differ, see the notes on
//! each method):
//!
//! * every subscribed company and user is requested again after a
//!   reconnect (the SDKs re-request only flags, so cached entities silently
//!   stop receiving updates);
//! * requests carry `replay_from` with the last applied stream id once the
//!   server has sent one, and entities that were never answered are asked
//!   for in full instead;
//! * requests for the same keys are coalesced while one is in flight.

use std::collections::BTreeMap;
use std::fmt;

use super::keys::same_lookup;
use super::replay::{Observation, ReplayCursor, StreamId};
use super::wire::{
    AUTH_ERROR_CLOSE_CODE, DecodeError, EntityType, Message, Received, Request, parse_message,
};
use crate::events::Keys;

/// How the client subscribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// An SDK: every flag, plus the companies and users it needs.
    Direct,
    /// A replicator: every flag, company and user.
    Replicator,
}

impl Mode {
    /// The value of the mode handshake header
    /// ([`HEADER_MODE`](super::HEADER_MODE)).
    pub fn header_value(self) -> &'static str {
        match self {
            Self::Direct => super::MODE_DIRECT,
            Self::Replicator => super::MODE_REPLICATOR,
        }
    }
}

/// What to do after the server closed the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseAction {
    /// Back off and connect again.
    Reconnect,
    /// Give up: connecting again cannot succeed.
    Stop(StopReason),
}

/// Why the client must stop connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The server refused the API key (close code 4001).
    Unauthorized,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unauthorized => write!(
                f,
                "the DataStream server refused the API key (close code {AUTH_ERROR_CLOSE_CODE}); \
                 check the key and its environment"
            ),
        }
    }
}

impl std::error::Error for StopReason {}

/// Counters of what a session received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Frames decoded (including the duplicates and ignored ones).
    pub decoded: u64,
    /// Frames that could not be decoded and were skipped.
    pub malformed: u64,
    /// Replayed frames skipped because they were already applied.
    pub duplicates: u64,
    /// Frames of a kind this version does not handle.
    pub ignored: u64,
    /// `reload` messages.
    pub reloads: u64,
}

/// Where an entity subscription stands on the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubState {
    /// Not sent on this connection (it will be on the next connect).
    Queued,
    /// Sent; no answer yet.
    Pending,
    /// The entity arrived (it is cached, or was deleted since).
    Answered,
}

/// The subscribed key sets of one entity type.
#[derive(Debug, Clone, Default)]
struct Subscriptions {
    subs: BTreeMap<Keys, SubState>,
    /// The key sets in state `Pending` (few: only requests in flight).
    pending: Vec<Keys>,
}

impl Subscriptions {
    fn set_pending(&mut self, keys: &Keys) {
        if let Some(state) = self.subs.get_mut(keys)
            && *state != SubState::Pending
        {
            *state = SubState::Pending;
            self.pending.push(keys.clone());
        }
    }

    /// Subscribes to `keys`; whether to send the request now.
    fn subscribe(&mut self, keys: &Keys, connected: bool) -> bool {
        match self.subs.get(keys) {
            Some(SubState::Pending) => false,
            Some(_) | None if !connected => {
                // Asked for in full on the next connect (a miss means the
                // store lacks the entity, so resuming would not bring it).
                self.subs.insert(keys.clone(), SubState::Queued);
                false
            }
            Some(_) => {
                self.set_pending(keys);
                true
            }
            None => {
                self.subs.insert(keys.clone(), SubState::Pending);
                self.pending.push(keys.clone());
                true
            }
        }
    }

    fn forget(&mut self, keys: &Keys) {
        self.subs.remove(keys);
        self.pending.retain(|k| k != keys);
    }

    /// An entity with `entity_keys` arrived: it answers every pending
    /// request that shares a key pair with it.
    fn answer(&mut self, entity_keys: &Keys) {
        if self.pending.is_empty() || entity_keys.is_empty() {
            return;
        }
        let shares_a_pair = |keys: &Keys| {
            keys.iter().any(|(n, v)| {
                entity_keys
                    .iter()
                    .any(|(en, ev)| same_lookup((n, v), (en, ev)))
            })
        };
        let subs = &mut self.subs;
        self.pending.retain(|keys| {
            if shares_a_pair(keys) {
                if let Some(state) = subs.get_mut(keys) {
                    *state = SubState::Answered;
                }
                false
            } else {
                true
            }
        });
    }

    /// The server could not serve the request for `keys`: forget it (in
    /// flight or not), so that it is not re-sent on every reconnect and the
    /// next miss asks again. Pending requests also match the keys
    /// case-insensitively, in case the server echoes them normalised.
    fn fail(&mut self, keys: &Keys) {
        let same_set = |k: &Keys| {
            k.len() == keys.len()
                && k.iter()
                    .zip(keys)
                    .all(|((n, v), (en, ev))| same_lookup((n, v), (en, ev)))
        };
        let mut failed: Vec<Keys> = self
            .pending
            .iter()
            .filter(|k| same_set(k))
            .cloned()
            .collect();
        if self.subs.contains_key(keys) {
            failed.push(keys.clone());
        }
        for keys in &failed {
            self.forget(keys);
        }
    }

    /// The connection ended: requests in flight are lost.
    fn disconnected(&mut self) {
        for keys in self.pending.drain(..) {
            if let Some(state) = self.subs.get_mut(&keys) {
                *state = SubState::Queued;
            }
        }
    }

    /// The cache was dropped: every entity must be requested in full.
    fn reset(&mut self) {
        self.pending.clear();
        for state in self.subs.values_mut() {
            *state = SubState::Queued;
        }
    }

    /// Requests for every subscription, after a connect. Answered entities
    /// resume from `resume` when there is a cursor, the others are asked
    /// for in full and become pending.
    fn requests(
        &mut self,
        build: fn(Keys) -> Request,
        resume: Option<&StreamId>,
        out: &mut Vec<Request>,
    ) {
        for (keys, state) in &mut self.subs {
            let request = build(keys.clone());
            match (*state, resume) {
                (SubState::Answered, Some(id)) => out.push(request.with_replay_from(id.clone())),
                (SubState::Answered, None) => out.push(request),
                (SubState::Queued | SubState::Pending, _) => {
                    if *state != SubState::Pending {
                        *state = SubState::Pending;
                        self.pending.push(keys.clone());
                    }
                    out.push(request);
                }
            }
        }
    }
}

fn resume(request: Request, from: Option<&StreamId>) -> Request {
    match from {
        Some(id) => request.with_replay_from(id.clone()),
        None => request,
    }
}

/// The DataStream protocol state machine (sans-IO).
///
/// ```
/// use std::collections::BTreeMap;
/// use flagwire_core::datastream::{EntityType, Message, Mode, Session};
///
/// let mut session = Session::new(Mode::Direct);
/// let requests = session.on_connected();
/// assert_eq!(requests[0].entity_type, EntityType::Flags);
/// assert!(!session.is_ready());
///
/// let flags = r#"{"entity_type":"rulesengine.Flags","message_type":"full","data":[]}"#;
/// let received = session.on_text(flags)?.expect("to apply");
/// assert!(matches!(received.message, Message::Flags { .. }));
/// assert!(session.is_ready());
///
/// let acme = BTreeMap::from([("id".to_owned(), "acme".to_owned())]);
/// assert!(session.subscribe_company(&acme).is_some());
/// assert!(session.subscribe_company(&acme).is_none(), "coalesced while in flight");
/// # Ok::<(), flagwire_core::datastream::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Session {
    mode: Mode,
    cursor: ReplayCursor,
    connected: bool,
    /// A `Flags` full arrived on this connection, or the connection resumed
    /// a complete flag set.
    ready: bool,
    /// The cached flag set is complete (a `Flags` full arrived since the
    /// last reload), so a resumed connection can use it at once.
    flags_complete: bool,
    companies: Subscriptions,
    users: Subscriptions,
    stats: SessionStats,
}

impl Session {
    /// A session with nothing subscribed and no connection yet.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            cursor: ReplayCursor::new(),
            connected: false,
            ready: false,
            flags_complete: false,
            companies: Subscriptions::default(),
            users: Subscriptions::default(),
            stats: SessionStats::default(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The requests to send, in order, after a handshake.
    ///
    /// Direct mode: `Flags`, then one `start` per subscribed company and
    /// user. Replicator mode: `Companies`, `Users`, then `Flags`. Once the
    /// server has sent a stream id, `Flags`, `Companies`, `Users` and
    /// entities that were answered before carry `replay_from` (the last
    /// applied id); entities never answered are requested in full.
    ///
    /// Readiness: a resumed connection (one that sends `replay_from`) whose
    /// flag set was complete is ready at once, because the server may
    /// replay only the changes instead of sending every flag again;
    /// otherwise the session is ready when the `Flags` reply arrives.
    pub fn on_connected(&mut self) -> Vec<Request> {
        self.connected = true;
        let from = self.cursor.last().cloned();
        self.ready = from.is_some() && self.flags_complete;
        self.requests(from.as_ref())
    }

    fn requests(&mut self, from: Option<&StreamId>) -> Vec<Request> {
        match self.mode {
            Mode::Direct => {
                let mut out =
                    Vec::with_capacity(1 + self.companies.subs.len() + self.users.subs.len());
                out.push(resume(Request::flags(), from));
                self.companies.requests(Request::company, from, &mut out);
                self.users.requests(Request::user, from, &mut out);
                out
            }
            Mode::Replicator => vec![
                resume(Request::companies(), from),
                resume(Request::users(), from),
                resume(Request::flags(), from),
            ],
        }
    }

    /// Subscribes to the company with `keys` (a cache miss). Returns the
    /// request to send, or `None` when there is nothing to send now:
    /// a request for the same keys is in flight on this connection
    /// (coalescing), the session is disconnected (the subscription is sent
    /// on the next connect), the keys are empty, or the mode is replicator
    /// (every company is subscribed).
    ///
    /// When the wait for the answer gives up, call
    /// [`forget_company`](Self::forget_company) so that the next miss asks
    /// again. An `error` reply for the keys does that by itself.
    pub fn subscribe_company(&mut self, keys: &Keys) -> Option<Request> {
        if self.mode == Mode::Replicator || keys.is_empty() {
            return None;
        }
        self.companies
            .subscribe(keys, self.connected)
            .then(|| Request::company(keys.clone()))
    }

    /// [`subscribe_company`](Self::subscribe_company) for a user.
    pub fn subscribe_user(&mut self, keys: &Keys) -> Option<Request> {
        if self.mode == Mode::Replicator || keys.is_empty() {
            return None;
        }
        self.users
            .subscribe(keys, self.connected)
            .then(|| Request::user(keys.clone()))
    }

    /// Stops re-subscribing to the company with `keys` (evicted from the
    /// store, or its wait gave up). Nothing is sent: the server has no use
    /// for `stop`, and updates for an entity not cached are skipped anyway.
    pub fn forget_company(&mut self, keys: &Keys) {
        self.companies.forget(keys);
    }

    /// [`forget_company`](Self::forget_company) for a user.
    pub fn forget_user(&mut self, keys: &Keys) {
        self.users.forget(keys);
    }

    /// The company key sets subscribed to.
    pub fn company_subscriptions(&self) -> impl ExactSizeIterator<Item = &Keys> {
        self.companies.subs.keys()
    }

    /// The user key sets subscribed to.
    pub fn user_subscriptions(&self) -> impl ExactSizeIterator<Item = &Keys> {
        self.users.subs.keys()
    }

    /// Decodes one text frame and updates the session.
    ///
    /// Returns the message for the store to apply, in order; `Ok(None)` for
    /// a replayed frame already applied (its stream id is at or before the
    /// cursor) and for a frame of a kind this version does not handle
    /// ([`Message::Ignored`]). A malformed frame is counted and returned as
    /// the error; the connection stays usable.
    ///
    /// The stream id of a returned message becomes the resume point, so
    /// the store must apply it before the next frame is handed over. A
    /// [`Message::Reload`] resets the resume point and readiness; the store
    /// drops every entity and the caller sends
    /// [`after_reload`](Self::after_reload)'s requests.
    pub fn on_text(&mut self, text: &str) -> Result<Option<Received>, DecodeError> {
        let received = match parse_message(text) {
            Ok(received) => received,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(e);
            }
        };
        self.stats.decoded += 1;
        if matches!(received.message, Message::Reload) {
            self.stats.reloads += 1;
            self.cursor.reset();
            self.ready = false;
            self.flags_complete = false;
            self.companies.reset();
            self.users.reset();
            return Ok(Some(received));
        }
        if let Some(id) = &received.stream_id {
            if self.cursor.observe(id) == Observation::Duplicate {
                self.stats.duplicates += 1;
                return Ok(None);
            }
            self.cursor.commit(id.clone());
        }
        match &received.message {
            Message::Ignored { .. } => {
                self.stats.ignored += 1;
                return Ok(None);
            }
            Message::Flags { .. } => {
                self.ready = true;
                self.flags_complete = true;
            }
            Message::Company(company) => self.companies.answer(&company.keys),
            Message::CompanyPatch { patch, .. } => {
                if let Some(keys) = &patch.keys {
                    self.companies.answer(keys);
                }
            }
            Message::User(user) => self.users.answer(&user.keys),
            Message::UserPatch { patch, .. } => {
                if let Some(keys) = &patch.keys {
                    self.users.answer(keys);
                }
            }
            Message::Error(error) => match (&error.entity_type, &error.keys) {
                (Some(EntityType::Company), Some(keys)) => self.companies.fail(keys),
                (Some(EntityType::User), Some(keys)) => self.users.fail(keys),
                _ => {}
            },
            _ => {}
        }
        Ok(Some(received))
    }

    /// The requests to send after a [`Message::Reload`]: like
    /// [`on_connected`](Self::on_connected)'s, without `replay_from`, and
    /// every subscribed entity in full.
    pub fn after_reload(&mut self) -> Vec<Request> {
        self.companies.reset();
        self.users.reset();
        self.requests(None)
    }

    /// The connection ended. Requests in flight are lost: they are sent
    /// again by the next [`on_connected`](Self::on_connected), and callers
    /// waiting for them should fall back now.
    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.ready = false;
        self.companies.disconnected();
        self.users.disconnected();
    }

    /// What to do after the server closed the socket with `code`: stop on
    /// [`AUTH_ERROR_CLOSE_CODE`] (4001, the key was refused), reconnect on
    /// anything else, normal closures included (the server closes
    /// connections when it restarts).
    pub fn on_close_code(code: u16) -> CloseAction {
        if code == AUTH_ERROR_CLOSE_CODE {
            CloseAction::Stop(StopReason::Unauthorized)
        } else {
            CloseAction::Reconnect
        }
    }

    /// Whether the flag set is complete on this connection: a `Flags` full
    /// arrived since the last connect, or the connection resumed a
    /// complete flag set (see [`on_connected`](Self::on_connected)). False
    /// while disconnected and after a reload.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Whether a connection is up (between `on_connected` and `on_disconnected`).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The resume point: the stream id of the last applied message.
    pub fn last_stream_id(&self) -> Option<&StreamId> {
        self.cursor.last()
    }

    /// What the session received so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> Keys {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn company_full(id: &str, key: &str, stream: Option<&str>) -> String {
        let stream = stream.map_or(String::new(), |s| format!(r#","stream_id":"{s}""#));
        format!(
            r#"{{"entity_type":"rulesengine.Company","entity_id":"{id}","message_type":"full"{stream},
                "data":{{"id":"{id}","keys":{{"id":"{key}"}}}}}}"#
        )
    }

    const FLAGS: &str = r#"{"entity_type":"rulesengine.Flags","message_type":"full","data":[]}"#;

    #[test]
    fn coalescing_and_answers() {
        let mut s = Session::new(Mode::Direct);
        let acme = keys(&[("id", "acme")]);
        // Disconnected: queued for the next connect.
        assert_eq!(s.subscribe_company(&acme), None);
        let requests = s.on_connected();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1], Request::company(acme.clone()));
        assert_eq!(s.subscribe_company(&acme), None, "in flight");
        s.on_text(&company_full("co_1", "ACME", None)).unwrap();
        // Answered: a later miss (the entity was deleted) asks again.
        assert_eq!(
            s.subscribe_company(&acme),
            Some(Request::company(acme.clone()))
        );
        assert_eq!(s.subscribe_company(&acme), None);
        s.forget_company(&acme);
        assert_eq!(s.company_subscriptions().len(), 0);
        assert!(s.subscribe_company(&acme).is_some());
        assert_eq!(s.subscribe_company(&Keys::new()), None);
    }

    #[test]
    fn errors_forget_the_failed_request() {
        let mut s = Session::new(Mode::Direct);
        s.on_connected();
        let ghost = keys(&[("id", "ghost")]);
        let other = keys(&[("id", "other")]);
        assert!(s.subscribe_user(&ghost).is_some());
        assert!(s.subscribe_user(&other).is_some());
        let error = r#"{"entity_type":"rulesengine.User","message_type":"error",
            "data":{"error":"not found","keys":{"id":"ghost"},"entity_type":"rulesengine.User"}}"#;
        let received = s.on_text(error).unwrap().unwrap();
        assert!(matches!(received.message, Message::Error(_)));
        assert_eq!(s.user_subscriptions().collect::<Vec<_>>(), [&other]);
        assert!(s.subscribe_user(&ghost).is_some(), "asks again");
        assert!(s.subscribe_user(&other).is_none(), "still in flight");
        // An error for an answered subscription (re-sent after a reconnect)
        // ends it too; keys echoed in another case match pending requests.
        let user = r#"{"entity_type":"rulesengine.User","entity_id":"u_2","message_type":"full",
            "data":{"id":"u_2","keys":{"id":"other"}}}"#;
        s.on_text(user).unwrap();
        s.on_disconnected();
        assert_eq!(s.on_connected().len(), 3);
        let error = r#"{"message_type":"error","data":{"keys":{"id":"other"},"entity_type":"rulesengine.User"}}"#;
        s.on_text(error).unwrap();
        let error = r#"{"message_type":"error","data":{"keys":{"ID":"GHOST"},"entity_type":"rulesengine.User"}}"#;
        s.on_text(error).unwrap();
        assert_eq!(s.user_subscriptions().len(), 0);
    }

    #[test]
    fn reconnect_resends_with_replay_from_for_answered_entities() {
        let mut s = Session::new(Mode::Direct);
        s.on_connected();
        let acme = keys(&[("id", "acme")]);
        let later = keys(&[("id", "later")]);
        s.subscribe_company(&acme);
        s.subscribe_user(&later);
        assert!(s.on_text(FLAGS).unwrap().is_some());
        s.on_text(&company_full("co_1", "acme", Some("5-0")))
            .unwrap();
        s.on_disconnected();
        assert!(!s.is_ready() && !s.is_connected());
        let requests = s.on_connected();
        let from = StreamId::new(5, 0);
        assert_eq!(
            requests,
            [
                Request::flags().with_replay_from(from.clone()),
                Request::company(acme).with_replay_from(from),
                Request::user(later.clone()),
            ]
        );
        assert!(s.is_ready(), "resumed a complete flag set");
        assert_eq!(s.subscribe_user(&later), None, "re-sent, in flight");
    }

    #[test]
    fn duplicates_and_ignored_frames_are_not_returned() {
        let mut s = Session::new(Mode::Direct);
        s.on_connected();
        assert!(
            s.on_text(&company_full("c", "a", Some("2-0")))
                .unwrap()
                .is_some()
        );
        assert!(
            s.on_text(&company_full("c", "a", Some("1-9")))
                .unwrap()
                .is_none()
        );
        assert!(
            s.on_text(&company_full("c", "a", Some("2-0")))
                .unwrap()
                .is_none()
        );
        assert!(s.on_text(&company_full("c", "a", None)).unwrap().is_some());
        let odd = r#"{"entity_type":"rulesengine.Plan","message_type":"full","stream_id":"3-0","data":{}}"#;
        assert!(s.on_text(odd).unwrap().is_none());
        assert_eq!(s.last_stream_id(), Some(&StreamId::new(3, 0)));
        assert!(s.on_text("{not json").is_err());
        assert_eq!(
            s.stats(),
            SessionStats {
                decoded: 5,
                malformed: 1,
                duplicates: 2,
                ignored: 1,
                reloads: 0
            }
        );
    }

    #[test]
    fn reload_resets_and_rerequests_everything() {
        let mut s = Session::new(Mode::Direct);
        s.on_connected();
        let acme = keys(&[("id", "acme")]);
        s.subscribe_company(&acme);
        s.on_text(FLAGS).unwrap();
        s.on_text(&company_full("co_1", "acme", Some("7-0")))
            .unwrap();
        let reload = r#"{"message_type":"reload"}"#;
        let received = s.on_text(reload).unwrap().unwrap();
        assert_eq!(received.message, Message::Reload);
        assert!(!s.is_ready());
        assert_eq!(s.last_stream_id(), None);
        assert_eq!(s.stats().reloads, 1);
        let requests = s.after_reload();
        assert_eq!(requests, [Request::flags(), Request::company(acme.clone())]);
        assert_eq!(s.subscribe_company(&acme), None, "in flight again");
        // Ids from before the reload are fresh again.
        assert!(
            s.on_text(&company_full("co_1", "acme", Some("6-0")))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn replicator_mode() {
        let mut s = Session::new(Mode::Replicator);
        assert_eq!(Mode::Replicator.header_value(), "replicator");
        assert_eq!(
            s.on_connected(),
            [Request::companies(), Request::users(), Request::flags()]
        );
        assert_eq!(s.subscribe_company(&keys(&[("id", "a")])), None);
        let confirm = r#"{"entity_type":"rulesengine.Companies","message_type":"full"}"#;
        let received = s.on_text(confirm).unwrap().unwrap();
        assert_eq!(received.message, Message::Subscribed(EntityType::Companies));
        s.on_text(&company_full("co_1", "a", Some("9-1"))).unwrap();
        s.on_disconnected();
        let from = StreamId::new(9, 1);
        assert_eq!(
            s.on_connected(),
            [
                Request::companies().with_replay_from(from.clone()),
                Request::users().with_replay_from(from.clone()),
                Request::flags().with_replay_from(from),
            ]
        );
        assert!(!s.is_ready(), "no complete flag set yet");
    }

    #[test]
    fn close_codes() {
        assert_eq!(
            Session::on_close_code(4001),
            CloseAction::Stop(StopReason::Unauthorized)
        );
        for code in [1000, 1001, 1006, 1009, 1011, 4000, 4002] {
            assert_eq!(Session::on_close_code(code), CloseAction::Reconnect);
        }
        assert!(StopReason::Unauthorized.to_string().contains("4001"));
    }
}
