//! A small HTTP proxy on loopback for the tests: `CONNECT` tunnels and
//! absolute-form forwarding, optional Basic authentication, a log of what
//! it was asked. It runs on its own thread and runtime, like the servers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHit {
    /// `CONNECT` for a tunnel, else the forwarded request's method.
    pub method: String,
    /// `host:port` for a tunnel, the absolute URI for a forwarded request.
    pub target: String,
    /// The `Proxy-Authorization` header, if sent.
    pub authorization: Option<String>,
    /// The client's address.
    pub peer: SocketAddr,
}

/// How the proxy behaves.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// The `Proxy-Authorization` value required (else `407`).
    pub require: Option<String>,
    /// Answer every request with this status instead of serving it.
    pub refuse: Option<u16>,
    /// Accept connections and never answer.
    pub silent: bool,
}

pub struct TestProxy {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<ProxyHit>>>,
}

impl TestProxy {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> Vec<ProxyHit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn tunnels(&self) -> usize {
        self.hits().iter().filter(|h| h.method == "CONNECT").count()
    }

    pub fn forwards(&self) -> usize {
        self.hits().iter().filter(|h| h.method != "CONNECT").count()
    }
}

pub fn start(config: ProxyConfig) -> TestProxy {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let log = hits.clone();
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
                let config = config.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, peer, config, log).await;
                });
            }
        });
    });
    TestProxy { addr, hits }
}

async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    config: ProxyConfig,
    log: Arc<Mutex<Vec<ProxyHit>>>,
) -> std::io::Result<()> {
    if config.silent {
        // Hold the connection open without a word.
        let mut sink = [0u8; 1024];
        while client.read(&mut sink).await? > 0 {}
        return Ok(());
    }
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let authorization = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    log.lock().unwrap().push(ProxyHit {
        method: method.clone(),
        target: target.clone(),
        authorization: authorization.clone(),
        peer,
    });

    if let Some(code) = config.refuse {
        let answer = format!("HTTP/1.1 {code} Refused\r\ncontent-length: 0\r\n\r\n");
        return client.write_all(answer.as_bytes()).await;
    }
    if config.require.is_some() && authorization != config.require {
        return client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm=\"test\"\r\ncontent-length: 0\r\n\r\n",
            )
            .await;
    }

    if method == "CONNECT" {
        let mut upstream = match TcpStream::connect(&target).await {
            Ok(s) => s,
            Err(_) => {
                return client
                    .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        upstream.write_all(&data[end..]).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    } else {
        // Absolute form: relay to the origin as it is (servers accept the
        // absolute form), then both ways.
        let uri: http::Uri = target.parse().map_err(std::io::Error::other)?;
        let authority = uri
            .authority()
            .ok_or_else(|| std::io::Error::other("no host"))?;
        let host_port = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:80", authority.host()),
        };
        let mut upstream = TcpStream::connect(host_port).await?;
        upstream.write_all(&data).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    }
    Ok(())
}
