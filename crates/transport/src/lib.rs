//! flagwire's HTTP transport: a tower `Service` stack on hyper and rustls.
//!
//! The SDK talks to one type, [`BoxTransport`]: a cloneable `Send + Sync`
//! service from `http::Request<Bytes>` to `http::Response<Bytes>` with
//! [`TransportError`] as its error. Request bodies are `Bytes`, so every
//! retry resends them intact; response bodies are read into `Bytes` up to a
//! limit.
//!
//! [`TransportBuilder`] assembles the default stack, from the outside in:
//!
//! | layer | module | what it does |
//! |---|---|---|
//! | request span | [`trace`] | `flagwire.request` span: method, host, path, status, latency |
//! | identification | [`headers`] | `User-Agent: flagwire/<version>`, `X-Fern-*` SDK headers |
//! | overall deadline | [`timeout`] | the whole request, retries and back-off included |
//! | retry | [`retry`] | 408/429/5xx and broken connections; `POST`/`PATCH` only when never sent or marked idempotent; `Retry-After`, back-off, budget |
//! | credentials, signing | [`auth`] | API key or bearer token; a [`RequestSigner`](auth::RequestSigner) per attempt |
//! | attempt span | [`trace`] | `flagwire.attempt` span; headers logged redacted at `TRACE` |
//! | attempt deadline | [`timeout`] | one attempt, body included |
//! | client | [`client`] | pooled hyper-util client over rustls with the *ring* provider, through [`proxy`] settings |
//!
//! Every layer is also usable on its own on any `Service<http::Request<_>>`.
//! Per-request settings go in the request's extensions as
//! [`RequestOptions`].
//!
//! # Example
//!
//! The bottom of the stack is replaced here by a test double; without
//! [`service`](TransportBuilder::service) it is the HTTPS client.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use flagwire_transport::{RequestOptions, RetryPolicy, TransportBuilder, auth};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let double = tower::service_fn(|req: http::Request<Bytes>| async move {
//!     // The stack added the key and identified the SDK.
//!     assert_eq!(req.headers()["x-schematic-api-key"], "sch_dev_example");
//!     assert!(req.headers()["user-agent"].to_str()?.starts_with("flagwire/"));
//!     Ok::<_, flagwire_transport::BoxError>(http::Response::new(Bytes::from_static(b"{\"data\":{}}")))
//! });
//!
//! let transport = TransportBuilder::new()
//!     .api_key(auth::SCHEMATIC_API_KEY, "sch_dev_example")
//!     .retry(RetryPolicy::default().base_delay(Duration::from_millis(50)))
//!     .service(double)
//!     .build()?;
//!
//! let mut request = http::Request::post("https://api.schematichq.com/flags/check")
//!     .body(Bytes::from_static(b"{}"))?;
//! request
//!     .extensions_mut()
//!     .insert(RequestOptions::new().timeout(Duration::from_secs(5)));
//!
//! let response = transport.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body().as_ref(), b"{\"data\":{}}");
//! # Ok(())
//! # }
//! ```
//!
//! # TLS
//!
//! rustls always gets the *ring* provider explicitly, so no process-wide
//! default provider is needed and none can clash. Roots are Mozilla's
//! (feature `webpki-roots`, default) or the system's (feature
//! `native-roots`); private CAs are added with
//! [`HttpsClientBuilder::add_root_certificate`]. Certificate verification
//! cannot be turned off through this crate's settings.
//!
//! # Proxies and sockets
//!
//! The HTTPS client reads `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
//! `NO_PROXY` (and their lower-case forms) once, when it is built: `https://`
//! requests go through a `CONNECT` tunnel with TLS to the server end to end,
//! `http://` requests are forwarded in absolute form. Explicit proxies
//! ([`HttpsClientBuilder::proxy`]), none at all
//! ([`HttpsClientBuilder::no_proxy`]), a local address, the connect timeout
//! and the pool are set on the builder; see the [`proxy`] module for the
//! rules. Clones of an [`HttpsClient`] share its connection pool
//! ([`TransportBuilder::http_client`]).
//!
//! # WebSockets
//!
//! With the `websocket` feature, `HttpsClientBuilder::websocket_connector`
//! opens `ws://`/`wss://` connections with the same TLS configuration,
//! proxies, local address and connect timeout (module `websocket`).
#![warn(missing_docs)]

pub mod auth;
mod builder;
pub mod client;
mod connect;
mod error;
pub mod headers;
mod options;
pub mod proxy;
pub mod retry;
pub mod timeout;
pub mod trace;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use builder::{BoxTransport, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_TIMEOUT, TransportBuilder};
pub use client::{HttpsClient, HttpsClientBuilder, Roots};
pub use error::{BoxError, LastResponse, TimeoutKind, TransportError};
pub use options::{Attempt, RequestOptions};
pub use retry::{RetryBudget, RetryPolicy};
