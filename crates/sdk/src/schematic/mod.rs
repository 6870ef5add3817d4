//! The Schematic client.
//!
//! * [`Client`]: async, cheap to clone, `Send + Sync`. [`Client::send`]
//!   sends any of the 268 typed operations of [`flagwire_core::schematic`];
//!   [`Client::paginate`] walks list operations; resource accessors
//!   ([`Client::companies`], [`Client::features`], [`Client::events`]) are
//!   typed shortcuts.
//! * Flag checks that never fail: [`Client::check_flag`] asks the local
//!   cache, then the API, then the per-call default, the client's defaults,
//!   and finally answers `false`; [`Client::check_flag_detailed`] says why.
//! * Events: [`Client::identify`] and [`Client::track`] return at once; a
//!   background [`EventBuffer`](crate::events::EventBuffer) posts batches of
//!   at most 100 to `{capture}/batch`. [`Client::flush`] and
//!   [`Client::shutdown`] wait for delivery.
//! * [`blocking::Client`]: the same for synchronous code.
//!
//! ```
//! use flagwire::schematic::{CheckSource, Client};
//! use flagwire_core::events::Keys;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), flagwire::Error> {
//! // Offline mode: no network; answers come from the defaults.
//! let client = Client::builder("sch_dev_example")
//!     .offline(true)
//!     .flag_default("new-editor", true)
//!     .build()?;
//! let acme = Keys::from([("id".to_owned(), "acme".to_owned())]);
//! assert!(client.check_flag("new-editor", &acme, &Keys::new()).await);
//! assert!(!client.check_flag("unknown-flag", &acme, &Keys::new()).await);
//! let check = client.check_flag_detailed("unknown-flag", &acme, &Keys::new(), Some(true)).await;
//! assert!(check.value);
//! assert_eq!(check.source, CheckSource::Offline);
//! # Ok(()) }
//! ```

pub mod blocking;
mod builder;
mod client;
mod events;
mod flags;
mod options;
mod resources;

pub use builder::{ClientBuilder, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT};
pub use client::Client;
pub use events::EventStats;
pub use flags::{CachedCheck, CheckOptions, CheckSource, FlagCheck};
pub use options::RequestOptions;
pub use resources::{Companies, Events, Features};
