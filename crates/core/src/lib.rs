//! The sans-IO core of flagwire: typed API operations, event envelopes and the
//! flag rules engine. Nothing in this crate opens a socket.

pub mod events;
pub mod rules;
