//! What the examples share: a minimal HTTP/1.1 client that POSTs one
//! request over loopback, so that each example can send itself deliveries
//! and exit.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status line and body of a response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// POSTs `body` to `path` with `headers` over a fresh connection.
pub async fn post<'n, 'v>(
    addr: SocketAddr,
    path: &str,
    headers: impl IntoIterator<Item = (&'n str, &'v str)>,
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");

    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;

    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    Ok(Answer {
        status,
        body: body.to_owned(),
    })
}
