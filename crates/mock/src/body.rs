//! The response body type of the emulator: a whole buffer, or a buffer that is
//! deliberately cut short to emulate a connection lost mid-response.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Error yielded by a [`MockBody`] that was scripted to stop early.
#[derive(Debug)]
pub(crate) struct Truncated;

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response body truncated by a fault script")
    }
}

impl std::error::Error for Truncated {}

/// Response body: either complete, or announcing `full_len` bytes and then
/// failing after sending only a prefix (hyper then aborts the connection).
#[derive(Debug)]
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Truncated {
        prefix: Option<Bytes>,
        full_len: u64,
        failed: bool,
    },
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            MockBody::Full(None)
        } else {
            MockBody::Full(Some(bytes))
        }
    }

    pub(crate) fn truncated(full: Bytes) -> Self {
        let full_len = full.len() as u64;
        let keep = full.len() / 2;
        MockBody::Truncated {
            prefix: Some(full.slice(..keep)),
            full_len,
            failed: false,
        }
    }
}

impl http_body::Body for MockBody {
    type Data = Bytes;
    type Error = Truncated;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Truncated>>> {
        match self.get_mut() {
            MockBody::Full(data) => Poll::Ready(data.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Truncated { prefix, failed, .. } => {
                if let Some(p) = prefix.take()
                    && !p.is_empty()
                {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                if *failed {
                    Poll::Ready(None)
                } else {
                    *failed = true;
                    Poll::Ready(Some(Err(Truncated)))
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Truncated { full_len, .. } => SizeHint::with_exact(*full_len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn full_body_yields_all_bytes() {
        let body = MockBody::full(Bytes::from_static(b"hello"));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello");
    }

    #[tokio::test]
    async fn truncated_body_fails_after_prefix() {
        let mut body = MockBody::truncated(Bytes::from_static(b"0123456789"));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(10));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap().len(), 5);
        assert!(body.frame().await.unwrap().is_err());
    }
}
