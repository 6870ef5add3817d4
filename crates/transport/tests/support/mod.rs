//! Local hyper servers for the integration tests. Each server runs on its
//! own thread and runtime (real time), so a test may pause its own clock.
#![allow(dead_code)]

pub mod proxy;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub index: usize,
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub body_sha256: Vec<u8>,
    pub version: http::Version,
    /// The client's address, as the server saw it.
    pub peer: SocketAddr,
}

/// What the server does with a request.
pub enum Reply {
    /// A complete response.
    Respond(Response<Bytes>),
    /// Sends the head and `sent` bytes of a body announced as `declared`
    /// bytes long, then breaks the connection.
    BreakMidBody { declared: usize, sent: Bytes },
    /// A body streamed in chunks (no Content-Length).
    Chunked(Vec<Bytes>),
    /// Closes the connection without answering.
    Hangup,
    /// Waits, then responds.
    After(Duration, Response<Bytes>),
}

pub fn status(code: u16) -> Reply {
    Reply::Respond(
        Response::builder()
            .status(code)
            .body(Bytes::from(format!("{{\"error\":\"status {code}\"}}")))
            .unwrap(),
    )
}

pub fn ok(body: &'static str) -> Reply {
    Reply::Respond(Response::new(Bytes::from_static(body.as_bytes())))
}

type Handler = Arc<dyn Fn(&Hit) -> Reply + Send + Sync>;

pub struct Server {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn hit_count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

/// A plain-HTTP server (HTTP/1.1 and HTTP/2 by prior knowledge).
pub fn serve(handler: impl Fn(&Hit) -> Reply + Send + Sync + 'static) -> Server {
    serve_with(handler, None)
}

/// Serves `handler`, over TLS when `tls` is given.
pub fn serve_with(
    handler: impl Fn(&Hit) -> Reply + Send + Sync + 'static,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Server {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    serve_on(std_listener, handler, tls)
}

/// Serves `handler` on an already bound listener, over TLS when `tls` is given.
pub fn serve_on(
    std_listener: std::net::TcpListener,
    handler: impl Fn(&Hit) -> Reply + Send + Sync + 'static,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Server {
    let handler: Handler = Arc::new(handler);
    let hits = Arc::new(Mutex::new(Vec::new()));
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let hits2 = hits.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let hits = hits2.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let hits = hits.clone();
                        answer(req, handler, hits, peer)
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
    });
    Server { addr, hits }
}

async fn answer(
    req: Request<Incoming>,
    handler: Handler,
    hits: Arc<Mutex<Vec<Hit>>>,
    peer: SocketAddr,
) -> Result<Response<BoxBody<Bytes, BoxError>>, BoxError> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let hit = {
        let mut hits = hits.lock().unwrap();
        let hit = Hit {
            index: hits.len(),
            method: parts.method,
            path: parts
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
            headers: parts.headers,
            body_sha256: ring::digest::digest(&ring::digest::SHA256, &body)
                .as_ref()
                .to_vec(),
            body,
            version: parts.version,
            peer,
        };
        hits.push(hit.clone());
        hit
    };
    match handler(&hit) {
        Reply::Respond(resp) => Ok(resp.map(|b| Full::new(b).map_err(|e| match e {}).boxed())),
        Reply::After(delay, resp) => {
            tokio::time::sleep(delay).await;
            Ok(resp.map(|b| Full::new(b).map_err(|e| match e {}).boxed()))
        }
        Reply::BreakMidBody { declared, sent } => {
            let broken: BoxError = Box::new(std::io::Error::other("server breaks the connection"));
            let frames: Vec<Result<Frame<Bytes>, BoxError>> =
                vec![Ok(Frame::data(sent)), Err(broken)];
            let body = StreamBody::new(futures_util::stream::iter(frames));
            Ok(Response::builder()
                .header(http::header::CONTENT_LENGTH, declared)
                .body(BodyExt::boxed(body))
                .unwrap())
        }
        Reply::Chunked(chunks) => {
            let frames: Vec<Result<Frame<Bytes>, BoxError>> =
                chunks.into_iter().map(|c| Ok(Frame::data(c))).collect();
            let body = StreamBody::new(futures_util::stream::iter(frames));
            Ok(Response::new(BodyExt::boxed(body)))
        }
        Reply::Hangup => Err(Box::new(std::io::Error::other("server hangs up"))),
    }
}

/// A port nothing listens on.
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub fn get(url: &str) -> Request<Bytes> {
    Request::get(url).body(Bytes::new()).unwrap()
}

pub fn post(url: &str, body: impl Into<Bytes>) -> Request<Bytes> {
    Request::post(url)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

/// A private CA (made with rcgen) and a server certificate for `localhost`
/// issued by it.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub ca_pem: String,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

/// A fresh [`Pki`]; the server offers `h2` and `http/1.1`.
pub fn pki() -> Pki {
    pki_with_alpn(vec![b"h2".to_vec(), b"http/1.1".to_vec()])
}

/// A fresh [`Pki`] whose server offers these ALPN protocols.
pub fn pki_with_alpn(alpn: Vec<Vec<u8>>) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = alpn;
    Pki {
        ca: ca_cert.der().clone(),
        ca_pem: ca_cert.pem(),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    }
}

pub fn response_status(code: u16) -> Response<Bytes> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .body(Bytes::new())
        .unwrap()
}
