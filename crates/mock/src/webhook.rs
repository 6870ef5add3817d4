//! Outgoing webhook deliveries, signed with the Schematic scheme by
//! `flagwire-webhooks` (hex HMAC-SHA256 over the raw body, `+`, and the
//! timestamp header value).

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use flagwire_webhooks::{Schematic, Signer};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Notify, mpsc, watch};

use crate::faults::lock;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = Schematic::SIGNATURE_HEADER;
/// Header carrying the Unix-seconds timestamp bound into the signature.
pub const TIMESTAMP_HEADER: &str = Schematic::TIMESTAMP_HEADER;

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// A delivery waiting to be sent.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) event_id: String,
    pub(crate) webhook_id: String,
    pub(crate) url: String,
    pub(crate) secret: String,
    pub(crate) action: &'static str,
    pub(crate) body: Bytes,
}

/// The outcome of one webhook delivery (after all its attempts).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// The endpoint's ID (`wh_…`).
    pub webhook_id: String,
    /// The endpoint's URL.
    pub url: String,
    /// The event name, e.g. `company.updated`.
    pub action: String,
    /// The exact body sent.
    pub body: Bytes,
    /// The timestamp header of the last attempt.
    pub timestamp: String,
    /// The signature header of the last attempt.
    pub signature: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// The status of the last response, if one was received.
    pub status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
}

impl WebhookDelivery {
    /// Whether the endpoint acknowledged with a 2xx status.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A delivery as the platform's webhook-events API shows it.
#[derive(Debug, Clone)]
pub(crate) struct WebhookEvent {
    pub(crate) id: String,
    pub(crate) webhook_id: String,
    pub(crate) request_type: &'static str,
    pub(crate) payload: Bytes,
    pub(crate) status: &'static str,
    pub(crate) response_code: Option<u16>,
    pub(crate) created_at: time::OffsetDateTime,
    pub(crate) updated_at: time::OffsetDateTime,
    pub(crate) sent_at: Option<time::OffsetDateTime>,
}

/// The log of finished deliveries and the state of every queued one.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    log: Mutex<Vec<WebhookDelivery>>,
    events: Mutex<Vec<WebhookEvent>>,
    notify: Notify,
}

impl Deliveries {
    /// Records a delivery as pending.
    pub(crate) fn queued(&self, o: &Outgoing) {
        let t = time::OffsetDateTime::now_utc();
        lock(&self.events).push(WebhookEvent {
            id: o.event_id.clone(),
            webhook_id: o.webhook_id.clone(),
            request_type: o.action,
            payload: o.body.clone(),
            status: "pending",
            response_code: None,
            created_at: t,
            updated_at: t,
            sent_at: None,
        });
    }

    pub(crate) fn clear(&self) {
        lock(&self.events).clear();
        lock(&self.log).clear();
    }

    /// The webhook events, oldest first.
    pub(crate) fn events(&self) -> Vec<WebhookEvent> {
        lock(&self.events).clone()
    }

    fn finished(&self, event_id: &str, d: WebhookDelivery) {
        let t = time::OffsetDateTime::now_utc();
        if let Some(e) = lock(&self.events).iter_mut().find(|e| e.id == event_id) {
            e.status = if d.succeeded() { "success" } else { "failure" };
            e.response_code = d.status;
            e.updated_at = t;
            e.sent_at = (d.attempts > 0).then_some(t);
        }
        self.push(d);
    }

    pub(crate) fn all(&self) -> Vec<WebhookDelivery> {
        lock(&self.log).clone()
    }

    fn push(&self, d: WebhookDelivery) {
        lock(&self.log).push(d);
        self.notify.notify_waiters();
    }

    pub(crate) async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<WebhookDelivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let log = lock(&self.log);
                if log.len() >= count {
                    return log.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.all();
            }
        }
    }
}

/// Sends queued deliveries one at a time (so each endpoint sees changes in
/// order) until shutdown.
pub(crate) async fn deliver(
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    deliveries: std::sync::Arc<Deliveries>,
    retries: u32,
    backoff: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            next = rx.recv() => next,
        };
        let Some(outgoing) = next else { break };
        let event_id = outgoing.event_id.clone();
        let one = deliver_one(&client, outgoing, retries, backoff);
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => break,
            done = one => deliveries.finished(&event_id, done),
        }
    }
}

async fn deliver_one(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    o: Outgoing,
    retries: u32,
    backoff: Duration,
) -> WebhookDelivery {
    let mut record = WebhookDelivery {
        webhook_id: o.webhook_id,
        url: o.url.clone(),
        action: o.action.to_owned(),
        body: o.body.clone(),
        timestamp: String::new(),
        signature: String::new(),
        attempts: 0,
        status: None,
        error: None,
    };
    let uri: Uri = match o.url.parse() {
        Ok(u) => u,
        Err(e) => {
            record.error = Some(format!("invalid URL: {e}"));
            return record;
        }
    };
    if uri.scheme_str() != Some("http") {
        record.error = Some("only http:// endpoints can be delivered to".into());
        return record;
    }
    let signer = match Signer::<Schematic>::new(o.secret.as_str()) {
        Ok(s) => s,
        Err(e) => {
            record.error = Some(format!("unusable webhook secret: {e}"));
            return record;
        }
    };
    let mut delay = backoff;
    loop {
        record.attempts += 1;
        let signed = signer.sign(time::OffsetDateTime::now_utc().unix_timestamp(), &o.body);
        let mut req = Request::post(uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "flagwire-mock");
        for (name, value) in signed.iter() {
            req = req.header(name, value);
        }
        let req = req.body(Full::new(o.body.clone()));
        record.timestamp = signed.get(TIMESTAMP_HEADER).unwrap_or_default().to_owned();
        record.signature = signed.get(SIGNATURE_HEADER).unwrap_or_default().to_owned();
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                record.error = Some(e.to_string());
                return record;
            }
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(req)).await {
            Ok(Ok(resp)) => {
                let status = resp.status();
                // Drain the body so the connection can be reused.
                let _ = resp.into_body().collect().await;
                record.status = Some(status.as_u16());
                if status.is_success() {
                    record.error = None;
                    return record;
                }
                record.error = Some(format!("endpoint answered {status}"));
            }
            Ok(Err(e)) => record.error = Some(e.to_string()),
            Err(_) => record.error = Some("timed out".into()),
        }
        if record.attempts > retries {
            return record;
        }
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2);
    }
}
