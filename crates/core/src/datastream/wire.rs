//! The messages on the socket: requests the client sends, and the server's
//! messages decoded into what a cache must do.
//!
//! Every frame is one JSON object in a text message. The client sends
//! `{"data": {"action": "start", "entity_type": ..., "keys"?: ..., "replay_from"?: ...}}`
//! ([`Request`]). The server sends envelopes with `entity_type`,
//! `message_type`, `data` and, for change messages, `entity_id` and
//! `stream_id`; [`parse_message`] dispatches them:
//!
//! | `message_type` | `entity_type` | [`Message`] |
//! |---|---|---|
//! | `error` | any | [`Message::Error`] (checked first) |
//! | `reload` | any | [`Message::Reload`] |
//! | `full` | `Flags` | [`Message::Flags`] (flags without a key skipped and counted) |
//! | `full` / `delete` | `Flag` | [`Message::Flag`] / [`Message::FlagDeleted`] |
//! | `partial` / `delete` | `Company` | [`Message::CompanyPatch`] / [`Message::CompanyDeleted`] |
//! | anything else | `Company` | [`Message::Company`] (a full company) |
//! | the same for | `User` | [`Message::UserPatch`], [`Message::UserDeleted`], [`Message::User`] |
//! | any | `Companies` / `Users` | [`Message::Subscribed`] |
//! | other combinations | | [`Message::Ignored`] |
//!
//! Parsing is lenient where the protocol may grow (unknown fields are
//! skipped, unknown entity or message types are [`Message::Ignored`],
//! `null` collections are empty) and strict where data would otherwise be
//! lost or misfiled: malformed JSON, a payload that does not fit the model,
//! or a change message without the id of its entity is a [`DecodeError`].
//! A bulk `Flags` message is parsed in one linear pass.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::merge::{CompanyPatch, UserPatch};
use super::replay::StreamId;
use crate::events::Keys;
use crate::rules::{Company, Flag, User};

/// Handshake header carrying the API key.
pub const HEADER_API_KEY: &str = "X-Schematic-Api-Key";
/// Handshake header naming the connection mode ([`MODE_DIRECT`] or [`MODE_REPLICATOR`]).
pub const HEADER_MODE: &str = "X-Schematic-Datastream-Mode";
/// Handshake header naming the client library ([`CLIENT_NAME`]).
pub const HEADER_CLIENT: &str = "X-Schematic-Client";
/// Handshake header carrying the client library's version.
pub const HEADER_CLIENT_VERSION: &str = "X-Schematic-Client-Version";
/// Mode of an SDK that subscribes to the entities it needs.
pub const MODE_DIRECT: &str = "direct";
/// Mode of a replicator that subscribes to every entity.
pub const MODE_REPLICATOR: &str = "replicator";
/// The value of [`HEADER_CLIENT`] flagwire sends.
pub const CLIENT_NAME: &str = "flagwire";
/// The close code with which the server refuses the API key; reconnecting
/// cannot help.
pub const AUTH_ERROR_CLOSE_CODE: u16 = 4001;
/// The largest message (and frame) to accept: a bulk `Flags` message of a
/// large environment arrives as one frame (100 MiB, as the official SDKs).
pub const MAX_MESSAGE_SIZE: usize = 100 * 1024 * 1024;

/// The longest untrusted text (type names, serde details, map keys in
/// paths) an error or [`Message::Ignored`] repeats.
const MAX_ECHO: usize = 200;

/// Copies at most [`MAX_ECHO`] bytes of `text`, cut at a character boundary
/// and marked with `…` when cut.
fn capped(text: &str) -> String {
    if text.len() <= MAX_ECHO {
        return text.to_owned();
    }
    let mut end = MAX_ECHO;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version does not know, kept verbatim.
            Other(Box<str>),
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(text) => text,
                }
            }

            /// Parses a wire value; unknown values become `Other`.
            pub fn from_wire(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )*
                    other => Self::Other(other.into()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<'de, str>::deserialize(deserializer)?;
                Ok(Self::from_wire(&text))
            }
        }
    };
}

wire_enum! {
    /// What a request or message is about.
    EntityType {
        /// One flag (`rulesengine.Flag`).
        Flag => "rulesengine.Flag",
        /// Every flag of the environment (`rulesengine.Flags`).
        Flags => "rulesengine.Flags",
        /// One company (`rulesengine.Company`).
        Company => "rulesengine.Company",
        /// Every company, for replicators (`rulesengine.Companies`).
        Companies => "rulesengine.Companies",
        /// One user (`rulesengine.User`).
        User => "rulesengine.User",
        /// Every user, for replicators (`rulesengine.Users`).
        Users => "rulesengine.Users",
    }
}

wire_enum! {
    /// The kind of a server message.
    MessageType {
        /// The whole entity (or every flag).
        Full => "full",
        /// Only the changed fields of an entity.
        Partial => "partial",
        /// The entity is gone.
        Delete => "delete",
        /// The server could not serve a request.
        Error => "error",
        /// The server cannot replay; the client must rebuild from scratch.
        Reload => "reload",
        /// The server's own "unknown" message type.
        Unknown => "unknown",
    }
}

/// Whether a request starts or stops a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `start`: send the entity and keep this connection updated.
    Start,
    /// `stop`: defined by the protocol, sent by no official client.
    Stop,
}

impl Action {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
        }
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A client request.
///
/// ```
/// use std::collections::BTreeMap;
/// use flagwire_core::datastream::{Request, StreamId};
/// let keys = BTreeMap::from([("id".to_owned(), "acme".to_owned())]);
/// assert_eq!(
///     Request::company(keys).to_json(),
///     r#"{"data":{"action":"start","entity_type":"rulesengine.Company","keys":{"id":"acme"}}}"#
/// );
/// assert_eq!(
///     Request::flags().with_replay_from(StreamId::new(17, 2)).to_json(),
///     r#"{"data":{"action":"start","entity_type":"rulesengine.Flags","replay_from":"17-2"}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// Start or stop.
    pub action: Action,
    /// What to subscribe to.
    pub entity_type: EntityType,
    /// The keys of a single company or user; omitted on the wire when `None`.
    pub keys: Option<Keys>,
    /// Resume after this stream id; omitted on the wire when `None`.
    pub replay_from: Option<StreamId>,
}

impl Request {
    /// A `start` request for `entity_type` without keys.
    pub fn start(entity_type: EntityType) -> Self {
        Self {
            action: Action::Start,
            entity_type,
            keys: None,
            replay_from: None,
        }
    }

    /// Every flag, then every flag change.
    pub fn flags() -> Self {
        Self::start(EntityType::Flags)
    }

    /// The company with these keys, then its changes.
    pub fn company(keys: Keys) -> Self {
        Self {
            keys: Some(keys),
            ..Self::start(EntityType::Company)
        }
    }

    /// The user with these keys, then its changes.
    pub fn user(keys: Keys) -> Self {
        Self {
            keys: Some(keys),
            ..Self::start(EntityType::User)
        }
    }

    /// Every company's changes (replicators).
    pub fn companies() -> Self {
        Self::start(EntityType::Companies)
    }

    /// Every user's changes (replicators).
    pub fn users() -> Self {
        Self::start(EntityType::Users)
    }

    /// Asks the server to replay what was published after `id`.
    #[must_use]
    pub fn with_replay_from(mut self, id: StreamId) -> Self {
        self.replay_from = Some(id);
        self
    }

    /// Sets the action.
    #[must_use]
    pub fn with_action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// The text frame to send.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            action: Action,
            entity_type: &'a EntityType,
            #[serde(skip_serializing_if = "Option::is_none")]
            keys: Option<&'a Keys>,
            #[serde(skip_serializing_if = "Option::is_none")]
            replay_from: Option<&'a StreamId>,
        }
        #[derive(Serialize)]
        struct Frame<'a> {
            data: Body<'a>,
        }
        let frame = Frame {
            data: Body {
                action: self.action,
                entity_type: &self.entity_type,
                keys: self.keys.as_ref(),
                replay_from: self.replay_from.as_ref(),
            },
        };
        // Strings and string maps always serialize.
        serde_json::to_string(&frame).unwrap_or_default()
    }
}

/// The `data` of an `error` message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorMessage {
    /// The server's message (empty when it sent none).
    pub error: String,
    /// The entity type of the failed request, when known (from the data,
    /// else from the envelope).
    pub entity_type: Option<EntityType>,
    /// The keys of the failed request, when the server echoed them.
    pub keys: Option<Keys>,
}

/// A decoded server message: what the cache must do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// Every flag: upsert these and delete every cached flag not among them.
    Flags {
        /// The flags, each with a non-empty key.
        flags: Vec<Flag>,
        /// How many flags without a key were left out.
        skipped: usize,
    },
    /// Upsert one flag.
    Flag(Flag),
    /// Delete the flag with `key`.
    FlagDeleted {
        /// The flag key.
        key: String,
        /// The flag id (may be empty).
        id: String,
    },
    /// Cache this company (replacing any cached version).
    Company(Company),
    /// Merge into the cached company `id`; skip it when not cached.
    CompanyPatch {
        /// The company id (the envelope's `entity_id`, else the data's `id`).
        id: String,
        /// The changed fields.
        patch: CompanyPatch,
    },
    /// Remove the company `id`, with every lookup key it has in the cache
    /// (the `keys` here may be incomplete).
    CompanyDeleted {
        /// The company id.
        id: String,
        /// The keys the message carried.
        keys: Keys,
    },
    /// Cache this user.
    User(User),
    /// Merge into the cached user `id`; skip it when not cached.
    UserPatch {
        /// The user id.
        id: String,
        /// The changed fields.
        patch: UserPatch,
    },
    /// Remove the user `id` and its lookup keys.
    UserDeleted {
        /// The user id.
        id: String,
        /// The keys the message carried.
        keys: Keys,
    },
    /// A request failed (for a company or user: not found, so the waiting
    /// checks should fall back).
    Error(ErrorMessage),
    /// The server cannot replay: drop every cached entity and the replay
    /// position, and request everything again.
    Reload,
    /// A `Companies` / `Users` subscription was confirmed.
    Subscribed(EntityType),
    /// A combination this version does not handle; log it and go on.
    Ignored {
        /// The envelope's entity type (at most 200 bytes of it).
        entity_type: String,
        /// The envelope's message type (at most 200 bytes of it).
        message_type: String,
        /// Why it was ignored.
        why: &'static str,
    },
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Received {
    /// The server's stream id, for change messages.
    pub stream_id: Option<StreamId>,
    /// The entity id the envelope names (companies and users).
    pub entity_id: Option<String>,
    /// What to do.
    pub message: Message,
}

/// A frame that could not be decoded. It never quotes more than a short
/// excerpt of the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is not JSON, or not an object with the envelope's fields
    /// as strings.
    Envelope {
        /// serde's description, shortened.
        detail: String,
    },
    /// The `data` does not fit the model of its entity.
    Payload {
        /// The envelope's entity type.
        entity_type: String,
        /// The envelope's message type.
        message_type: String,
        /// Where in `data` it failed, e.g. `data[12].rules[0].priority`.
        path: String,
        /// serde's description, shortened.
        detail: String,
    },
    /// A change message without the id of its entity (or a flag message
    /// without the flag key).
    MissingId {
        /// The envelope's entity type.
        entity_type: String,
        /// The envelope's message type.
        message_type: String,
        /// What is missing (`entity_id`, `id` or `key`).
        field: &'static str,
    },
}

impl DecodeError {
    fn envelope(e: &serde_json::Error) -> Self {
        Self::Envelope {
            detail: capped(&e.to_string()),
        }
    }

    fn missing(entity_type: &EntityType, message_type: &MessageType, field: &'static str) -> Self {
        Self::MissingId {
            entity_type: capped(entity_type.as_str()),
            message_type: capped(message_type.as_str()),
            field,
        }
    }

    /// The envelope's entity type, when the envelope was read.
    pub fn entity_type(&self) -> Option<&str> {
        match self {
            Self::Envelope { .. } => None,
            Self::Payload { entity_type, .. } | Self::MissingId { entity_type, .. } => {
                Some(entity_type)
            }
        }
    }

    /// The envelope's message type, when the envelope was read.
    pub fn message_type(&self) -> Option<&str> {
        match self {
            Self::Envelope { .. } => None,
            Self::Payload { message_type, .. } | Self::MissingId { message_type, .. } => {
                Some(message_type)
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = |t: &str| {
            if t.is_empty() {
                "(none)".to_owned()
            } else {
                t.to_owned()
            }
        };
        match self {
            Self::Envelope { detail } => write!(f, "malformed DataStream frame: {detail}"),
            Self::Payload {
                entity_type,
                message_type,
                path,
                detail,
            } => write!(
                f,
                "malformed DataStream message (entity type {}, message type {}) at {path}: {detail}",
                kind(entity_type),
                kind(message_type),
            ),
            Self::MissingId {
                entity_type,
                message_type,
                field,
            } => write!(
                f,
                "DataStream message (entity type {}, message type {}) without {field}",
                kind(entity_type),
                kind(message_type),
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Renders a serde path below `data`, capping each map key.
fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::from("data");
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
            Segment::Map { key } => {
                out.push('.');
                out.push_str(&capped(key));
            }
            Segment::Enum { variant } => {
                out.push('.');
                out.push_str(&capped(variant));
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    cap_path(out)
}

/// Keeps the innermost [`2 × MAX_ECHO`](MAX_ECHO) bytes of a long path
/// (each segment is capped, but many segments still add up).
fn cap_path(path: String) -> String {
    if path.len() <= 2 * MAX_ECHO {
        return path;
    }
    let mut start = path.len() - 2 * MAX_ECHO;
    while !path.is_char_boundary(start) {
        start += 1;
    }
    format!("data…{}", &path[start..])
}

/// Whether `json` starts with an object (after JSON whitespace).
fn starts_object(json: &str) -> bool {
    json.trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
}

/// Decodes an entity payload, which must be an object (serde would also
/// read a struct from an array of its fields).
fn decode_object<T: DeserializeOwned>(
    data: &str,
    entity_type: &EntityType,
    message_type: &MessageType,
) -> Result<T, DecodeError> {
    if !starts_object(data) {
        return Err(DecodeError::Payload {
            entity_type: capped(entity_type.as_str()),
            message_type: capped(message_type.as_str()),
            path: "data".to_owned(),
            detail: format!(
                "expected an object, found {}",
                match data.trim_start().as_bytes().first() {
                    Some(b'[') => "an array",
                    Some(b'"') => "a string",
                    Some(b'n') => "null",
                    Some(b't' | b'f') => "a boolean",
                    _ => "a number",
                }
            ),
        });
    }
    decode_payload(data, entity_type, message_type)
}

/// Decodes the identifying part of a delete (`null` is an empty one).
fn decode_ref(
    data: &str,
    entity_type: &EntityType,
    message_type: &MessageType,
) -> Result<EntityRef, DecodeError> {
    if data.trim() == "null" {
        return Ok(EntityRef::default());
    }
    decode_object(data, entity_type, message_type)
}

/// Decodes a payload. The fast path is a plain parse; only a failure is
/// parsed again with path tracking, to say where it failed.
pub(crate) fn decode_payload<T: DeserializeOwned>(
    data: &str,
    entity_type: &EntityType,
    message_type: &MessageType,
) -> Result<T, DecodeError> {
    match serde_json::from_str(data) {
        Ok(value) => Ok(value),
        Err(plain) => {
            let mut de = serde_json::Deserializer::from_str(data);
            let (path, detail) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => (render_path(e.path()), e.into_inner().to_string()),
                // Cannot happen (the same input); report the plain error.
                Ok(_) => ("data".to_owned(), plain.to_string()),
            };
            Err(DecodeError::Payload {
                entity_type: capped(entity_type.as_str()),
                message_type: capped(message_type.as_str()),
                path,
                detail: capped(&detail),
            })
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, borrow, alias = "entityType")]
    entity_type: Option<Cow<'a, str>>,
    #[serde(default, borrow, alias = "entityId")]
    entity_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, alias = "messageType")]
    message_type: Option<Cow<'a, str>>,
    #[serde(default, borrow, alias = "streamId")]
    stream_id: Option<Cow<'a, str>>,
}

/// A `T` that must be written as a JSON object: serde's derived structs
/// also accept an array of their fields, which no DataStream payload is.
struct ObjectOf<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOf<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = ObjectOf<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(ObjectOf)
            }
        }
        deserializer.deserialize_map(V(std::marker::PhantomData))
    }
}

fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The identifying part of a flag, company or user payload.
#[derive(Deserialize, Default)]
struct EntityRef {
    #[serde(default, deserialize_with = "null_default")]
    id: String,
    #[serde(default, deserialize_with = "null_default")]
    key: String,
    #[serde(default, deserialize_with = "null_default")]
    keys: Keys,
}

/// Decodes one text frame.
///
/// ```
/// use flagwire_core::datastream::{Message, parse_message};
/// let received = parse_message(
///     r#"{"entity_type":"rulesengine.Company","entity_id":"co_1","message_type":"partial",
///         "stream_id":"1760000000000-0","data":{"credit_balances":{"cr":4.5}}}"#,
/// )?;
/// assert_eq!(received.stream_id.unwrap().to_string(), "1760000000000-0");
/// let Message::CompanyPatch { id, patch } = received.message else { panic!() };
/// assert_eq!(id, "co_1");
/// assert_eq!(patch.credit_balances.unwrap()["cr"], 4.5);
/// # Ok::<(), flagwire_core::datastream::DecodeError>(())
/// ```
pub fn parse_message(text: &str) -> Result<Received, DecodeError> {
    // serde also reads structs from arrays; the envelope is an object.
    if !starts_object(text) {
        return Err(DecodeError::Envelope {
            detail: match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Err(e) => capped(&e.to_string()),
                Ok(_) => "expected a JSON object".to_owned(),
            },
        });
    }
    let envelope: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| DecodeError::envelope(&e))?;
    let entity_type = EntityType::from_wire(envelope.entity_type.as_deref().unwrap_or(""));
    let message_type = MessageType::from_wire(envelope.message_type.as_deref().unwrap_or(""));
    let stream_id = envelope
        .stream_id
        .as_deref()
        .and_then(|id| StreamId::parse(id).ok());
    let entity_id = envelope
        .entity_id
        .filter(|id| !id.is_empty())
        .map(Cow::into_owned);
    let data = envelope.data.map_or("null", RawValue::get);
    let message = dispatch(data, &entity_type, &message_type, entity_id.as_deref())?;
    Ok(Received {
        stream_id,
        entity_id,
        message,
    })
}

fn ignored(entity_type: &EntityType, message_type: &MessageType, why: &'static str) -> Message {
    Message::Ignored {
        entity_type: capped(entity_type.as_str()),
        message_type: capped(message_type.as_str()),
        why,
    }
}

fn dispatch(
    data: &str,
    et: &EntityType,
    mt: &MessageType,
    entity_id: Option<&str>,
) -> Result<Message, DecodeError> {
    // Change messages name their entity by the envelope's `entity_id`,
    // else by the data's `id`.
    let id_of = |data_id: String| -> Result<String, DecodeError> {
        match entity_id {
            Some(id) => Ok(id.to_owned()),
            None if !data_id.is_empty() => Ok(data_id),
            None => Err(DecodeError::missing(et, mt, "entity_id")),
        }
    };
    // A full entity carries its own id; the envelope's fills in when empty.
    let full_id = || -> Result<String, DecodeError> {
        entity_id
            .map(str::to_owned)
            .ok_or_else(|| DecodeError::missing(et, mt, "id"))
    };
    Ok(match (mt, et) {
        (MessageType::Error, _) => Message::Error(error_message(data, et)),
        (MessageType::Reload, _) => Message::Reload,
        (MessageType::Full, EntityType::Flags) => {
            let mut flags: Vec<Flag> = decode_payload::<Option<Vec<ObjectOf<Flag>>>>(data, et, mt)?
                .unwrap_or_default()
                .into_iter()
                .map(|flag| flag.0)
                .collect();
            let before = flags.len();
            flags.retain(|f| !f.key.is_empty());
            Message::Flags {
                skipped: before - flags.len(),
                flags,
            }
        }
        (_, EntityType::Flags) => ignored(et, mt, "only full messages carry every flag"),
        (MessageType::Full, EntityType::Flag) => {
            let flag: Flag = decode_object(data, et, mt)?;
            if flag.key.is_empty() {
                return Err(DecodeError::missing(et, mt, "key"));
            }
            Message::Flag(flag)
        }
        (MessageType::Delete, EntityType::Flag) => {
            let flag: EntityRef = decode_ref(data, et, mt)?;
            if flag.key.is_empty() {
                return Err(DecodeError::missing(et, mt, "key"));
            }
            Message::FlagDeleted {
                key: flag.key,
                id: flag.id,
            }
        }
        (_, EntityType::Flag) => ignored(et, mt, "a single flag is only sent full or deleted"),
        (MessageType::Partial, EntityType::Company) => {
            let patch: CompanyPatch =
                decode_payload::<Option<CompanyPatch>>(data, et, mt)?.unwrap_or_default();
            let id = id_of(patch.id.clone().unwrap_or_default())?;
            Message::CompanyPatch { id, patch }
        }
        (MessageType::Delete, EntityType::Company) => {
            let gone: EntityRef = decode_ref(data, et, mt)?;
            Message::CompanyDeleted {
                id: id_of(gone.id)?,
                keys: gone.keys,
            }
        }
        (_, EntityType::Company) => {
            let mut company: Company = decode_object(data, et, mt)?;
            if company.id.is_empty() {
                company.id = full_id()?;
            }
            Message::Company(company)
        }
        (MessageType::Partial, EntityType::User) => {
            let patch: UserPatch =
                decode_payload::<Option<UserPatch>>(data, et, mt)?.unwrap_or_default();
            let id = id_of(patch.id.clone().unwrap_or_default())?;
            Message::UserPatch { id, patch }
        }
        (MessageType::Delete, EntityType::User) => {
            let gone: EntityRef = decode_ref(data, et, mt)?;
            Message::UserDeleted {
                id: id_of(gone.id)?,
                keys: gone.keys,
            }
        }
        (_, EntityType::User) => {
            let mut user: User = decode_object(data, et, mt)?;
            if user.id.is_empty() {
                user.id = full_id()?;
            }
            Message::User(user)
        }
        (_, EntityType::Companies | EntityType::Users) => Message::Subscribed(et.clone()),
        (_, EntityType::Other(_)) => ignored(et, mt, "unknown entity type"),
    })
}

/// Reads an error payload leniently: an object with `error`, `keys` and
/// `entity_type`, or a bare string; anything else is an error without text.
fn error_message(data: &str, envelope_type: &EntityType) -> ErrorMessage {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Text(String),
        Object {
            #[serde(default)]
            error: Option<serde_json::Value>,
            #[serde(default, alias = "entityType")]
            entity_type: Option<String>,
            #[serde(default)]
            keys: Option<BTreeMap<String, serde_json::Value>>,
        },
    }
    let text_of = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let (error, entity_type, keys) = match serde_json::from_str::<Wire>(data) {
        Ok(Wire::Text(error)) => (error, None, None),
        Ok(Wire::Object {
            error,
            entity_type,
            keys,
        }) => (
            error.map(text_of).unwrap_or_default(),
            entity_type.filter(|t| !t.is_empty()),
            keys.map(|keys| {
                keys.into_iter()
                    .filter_map(|(k, v)| match v {
                        serde_json::Value::String(s) => Some((k, s)),
                        serde_json::Value::Number(n) => Some((k, n.to_string())),
                        _ => None,
                    })
                    .collect()
            }),
        ),
        Err(_) => (String::new(), None, None),
    };
    let entity_type = match entity_type {
        Some(t) => Some(EntityType::from_wire(&t)),
        None if !matches!(envelope_type, EntityType::Other(t) if t.is_empty()) => {
            Some(envelope_type.clone())
        }
        None => None,
    };
    ErrorMessage {
        error,
        entity_type,
        keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_capped_at_character_boundaries() {
        assert_eq!(capped("short"), "short");
        let wide = "é".repeat(MAX_ECHO);
        let cut = capped(&wide);
        assert!(cut.len() <= MAX_ECHO + '…'.len_utf8() && cut.ends_with('…'));
        let path = format!("data{}", ".é".repeat(400));
        let cut = cap_path(path.clone());
        assert!(cut.starts_with("data…") && path.ends_with(&cut["data…".len()..]));
        assert!(cut.len() <= 2 * MAX_ECHO + "data…".len());
        assert_eq!(cap_path("data.x".to_owned()), "data.x");
    }
}
