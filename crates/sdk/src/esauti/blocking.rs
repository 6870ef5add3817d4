//! A synchronous facade over the async [`Client`](super::Client), in the manner of
//! `reqwest::blocking`.
//!
//! The blocking client owns a current-thread Tokio runtime on a thread of its own; each call
//! hands its work to that thread and waits for the answer, so it works from any plain thread.
//! Called from inside an async runtime (where blocking would stall the executor), every
//! method returns [`Error::BlockingInAsyncContext`] instead of panicking.
//!
//! It has the async client's resource accessors (`client.contacts().list(...)`), `send`,
//! `call`, and for events [`event`](Client::event), [`send_event`](Client::send_event) and
//! [`replay`](Client::replay).
//!
//! ```
//! use flagwire::esauti::blocking;
//! use flagwire_core::esauti::EventType;
//!
//! // A stand-in events server that accepts everything.
//! let server = tower::service_fn(|_req: http::Request<bytes::Bytes>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(bytes::Bytes::from_static(
//!         br#"{"received":true,"event_id":"ev_1","status":"accepted","duplicate":false}"#,
//!     )))
//! });
//! let client = blocking::Client::builder()
//!     .bearer_token("est_example")
//!     .events_url("https://tenant.example.com")
//!     .service(server)
//!     .build_blocking()?;
//! let receipt = client.send_event(
//!     client.event(EventType::OrderCreated)
//!         .customer_id("cus_1")
//!         .property("currency", "KES")
//!         .property("value", 0),
//! )?;
//! assert_eq!(receipt.event_id.as_deref(), Some("ev_1"));
//! # Ok::<(), flagwire::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use flagwire_core::Operation;
use flagwire_core::esauti::api::{
    assets, campaigns, categories, companyfields, contactfields, contacts, forms, models,
    notifications, pointgroups, reports, sms,
};
use flagwire_core::esauti::{EnvelopeBuilder, EventType};

use super::builder::ClientBuilder;
use super::events::{IntoEnvelope, ReplayReport, SendOptions};
use super::receipt::Receipt;
use super::resources::{Out, for_each_resource};
use crate::error::Error;
use crate::runtime_thread::RuntimeThread;
use crate::schematic::RequestOptions;
use serde_json::Value;

/// The synchronous eSauti client. Cheap to clone; clones share the runtime thread.
#[derive(Clone)]
pub struct Client {
    inner: super::Client,
    runtime: Arc<RuntimeThread>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("esauti::blocking::Client")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Builds a [`blocking::Client`](Client) with these settings.
    pub fn build_blocking(self) -> Result<Client, Error> {
        Client::from_async(self.build()?)
    }
}

impl Client {
    /// Starts configuring a client; finish with [`ClientBuilder::build_blocking`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Wraps an async client.
    pub fn from_async(inner: super::Client) -> Result<Client, Error> {
        Ok(Client {
            inner,
            runtime: Arc::new(RuntimeThread::start("flagwire-esauti-blocking")?),
        })
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &super::Client {
        &self.inner
    }

    fn run<F, T>(&self, work: impl FnOnce(super::Client) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.runtime.block_on(work(self.inner.clone()))?
    }

    /// Sends one REST operation; see [`Client::send`](super::Client::send).
    pub fn send<O>(&self, op: O) -> Result<O::Output, Error>
    where
        O: Operation + Send + 'static,
        O::Output: Send + 'static,
    {
        self.run(move |c| async move { c.send(op).await })
    }

    /// [`send`](Self::send) with per-request options.
    pub fn send_with<O>(&self, op: O, options: RequestOptions) -> Result<O::Output, Error>
    where
        O: Operation + Send + 'static,
        O::Output: Send + 'static,
    {
        self.run(move |c| async move { c.send_with(op, options).await })
    }

    /// Sends any REST request; see [`Client::call`](super::Client::call).
    pub fn call(
        &self,
        method: http::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        let path = path.to_owned();
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let body = body.cloned();
        self.run(move |c| async move {
            let query: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            c.call(method, &path, &query, body.as_ref()).await
        })
    }

    /// A builder for an event whose `source` is the client's; see
    /// [`Events::event`](super::Events::event). Never blocks.
    pub fn event(&self, event_type: impl Into<EventType>) -> EnvelopeBuilder {
        self.inner.events().event(event_type)
    }

    /// Validates and sends one event; see [`Events::send`](super::Events::send).
    pub fn send_event(&self, event: impl IntoEnvelope) -> Result<Receipt, Error> {
        self.send_event_with(event, SendOptions::default())
    }

    /// [`send_event`](Self::send_event) with per-event options.
    pub fn send_event_with(
        &self,
        event: impl IntoEnvelope,
        options: SendOptions,
    ) -> Result<Receipt, Error> {
        // Validate on the caller's thread: an invalid event never reaches the runtime.
        let envelope = event.into_envelope()?;
        self.run(move |c| async move { c.events().send_with(envelope, options).await })
    }

    /// Replays a dead-letter file; see [`Events::replay`](super::Events::replay).
    pub fn replay(&self, path: impl Into<PathBuf>) -> Result<ReplayReport, Error> {
        let path = path.into();
        self.run(move |c| async move { c.events().replay(path).await })
    }
}

macro_rules! blocking_resource {
    (
        $(#[$doc:meta])*
        $handle:ident, $accessor:ident, $module:ident, $path:literal,
        $list:ident, $get:ident, $create:ident, $edit:ident, $replace:ident, $delete:ident
    ) => {
        $(#[$doc])*
        ///
        /// The blocking twin of the async client's handle of the same name: the same
        /// methods, each waiting for its answer.
        #[derive(Debug, Clone, Copy)]
        pub struct $handle<'a> {
            client: &'a Client,
        }

        impl Client {
            #[doc = concat!("The `", $path, "` resource.")]
            #[inline]
            pub fn $accessor(&self) -> $handle<'_> {
                $handle { client: self }
            }
        }

        impl $handle<'_> {
            #[doc = concat!("`GET /", $path, "`: a page of items.")]
            pub fn list(&self, request: $module::$list) -> Out<$module::$list> {
                self.client.send(request)
            }

            /// [`list`](Self::list) with per-request options.
            pub fn list_with(
                &self,
                request: $module::$list,
                options: RequestOptions,
            ) -> Out<$module::$list> {
                self.client.send_with(request, options)
            }

            #[doc = concat!("`GET /", $path, "/{id}`: one item.")]
            pub fn get(&self, id: i64) -> Out<$module::$get> {
                self.client.send($module::$get::new(id))
            }

            /// [`get`](Self::get) with per-request options.
            pub fn get_with(&self, id: i64, options: RequestOptions) -> Out<$module::$get> {
                self.client.send_with($module::$get::new(id), options)
            }

            #[doc = concat!("`POST /", $path, "/new`: creates an item.")]
            pub fn create(&self, body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>) -> Out<$module::$create> {
                self.client.send($module::$create::new(body))
            }

            /// [`create`](Self::create) with per-request options.
            pub fn create_with(&self, body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>, options: RequestOptions) -> Out<$module::$create> {
                self.client.send_with($module::$create::new(body), options)
            }

            #[doc = concat!("`PATCH /", $path, "/{id}/edit`: changes the given fields.")]
            pub fn edit(&self, id: i64, body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>) -> Out<$module::$edit> {
                self.client.send($module::$edit::new(id, body))
            }

            /// [`edit`](Self::edit) with per-request options.
            pub fn edit_with(
                &self,
                id: i64,
                body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>,
                options: RequestOptions,
            ) -> Out<$module::$edit> {
                self.client.send_with($module::$edit::new(id, body), options)
            }

            #[doc = concat!("`PUT /", $path, "/{id}/edit`: replaces the item or creates it.")]
            pub fn replace(&self, id: i64, body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>) -> Out<$module::$replace> {
                self.client.send($module::$replace::new(id, body))
            }

            /// [`replace`](Self::replace) with per-request options.
            pub fn replace_with(
                &self,
                id: i64,
                body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>,
                options: RequestOptions,
            ) -> Out<$module::$replace> {
                self.client.send_with($module::$replace::new(id, body), options)
            }

            #[doc = concat!("`DELETE /", $path, "/{id}/delete`: deletes the item.")]
            pub fn delete(&self, id: i64) -> Out<$module::$delete> {
                self.client.send($module::$delete::new(id))
            }

            /// [`delete`](Self::delete) with per-request options.
            pub fn delete_with(&self, id: i64, options: RequestOptions) -> Out<$module::$delete> {
                self.client.send_with($module::$delete::new(id), options)
            }
        }
    };
}

for_each_resource!(blocking_resource);

impl Contacts<'_> {
    /// `GET /contacts/{id}/campaigns`.
    pub fn campaigns(&self, id: i64) -> Out<contacts::GetContactCampaigns> {
        self.client.send(contacts::GetContactCampaigns::new(id))
    }

    /// `GET /contacts/{id}/segments`.
    pub fn segments(&self, id: i64) -> Out<contacts::GetContactSegments> {
        self.client.send(contacts::GetContactSegments::new(id))
    }

    /// `GET /contacts/{id}/notes`.
    pub fn notes(&self, request: contacts::GetContactNotes) -> Out<contacts::GetContactNotes> {
        self.client.send(request)
    }

    /// `POST /contacts/{id}/utm/add`.
    pub fn add_utm(
        &self,
        id: i64,
        body: impl IntoIterator<Item = (impl Into<String>, impl Into<Value>)>,
    ) -> Out<contacts::AddContactUtm> {
        self.client.send(contacts::AddContactUtm::new(id, body))
    }

    /// `POST /contacts/{id}/utm/{utm_id}/remove`.
    pub fn remove_utm(&self, id: i64, utm_id: i64) -> Out<contacts::RemoveContactUtm> {
        self.client
            .send(contacts::RemoveContactUtm::new(id, utm_id))
    }

    /// `POST /contacts/{id}/dnc/{channel}/add`.
    pub fn add_dnc(
        &self,
        id: i64,
        channel: impl Into<String>,
        body: models::DoNotContact,
    ) -> Out<contacts::AddContactDnc> {
        self.client
            .send(contacts::AddContactDnc::new(id, channel, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        ClientBuilder::new()
            .api_key("esk_test")
            .events_url("http://127.0.0.1:9")
            .rest_url("http://127.0.0.1:9/api")
            .build_blocking()
            .unwrap()
    }

    #[test]
    fn refuses_to_block_inside_a_runtime() {
        let client = client();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(async {
            client
                .send_event(
                    client
                        .event(EventType::CustomerCreated)
                        .customer_id("cus_1"),
                )
                .unwrap_err()
        });
        assert!(matches!(err, Error::BlockingInAsyncContext), "{err:?}");
    }

    #[test]
    fn invalid_events_fail_on_the_callers_thread() {
        let err = client()
            .send_event(client().event(EventType::CustomerCreated))
            .unwrap_err();
        assert!(matches!(err, Error::Envelope(_)), "{err:?}");
    }
}
