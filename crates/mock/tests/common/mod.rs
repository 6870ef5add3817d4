//! A small JSON client over hyper-util for the integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A JSON response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
pub struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    key: Option<String>,
}

impl Api {
    pub fn new(base: String, key: Option<&str>) -> Api {
        Api {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base,
            key: key.map(str::to_owned),
        }
    }

    pub fn rest(server: &flagwire_mock::MockServer) -> Api {
        Api::new(server.rest_url(), Some(server.api_key()))
    }

    pub fn capture(server: &flagwire_mock::MockServer) -> Api {
        Api::new(server.capture_url(), Some(server.api_key()))
    }

    pub fn without_key(&self) -> Api {
        Api {
            key: None,
            ..self.clone()
        }
    }

    /// Sends a request; errors are transport errors (dropped connections,
    /// truncated bodies).
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header("content-type", "application/json")
            .header("user-agent", "flagwire-mock-tests");
        if let Some(k) = &self.key {
            req = req.header("x-schematic-api-key", k);
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{e:?}"))?
            .to_bytes();
        Ok((status, headers, bytes))
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let body = body.map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()));
        let (status, headers, bytes) = self.try_send(method, path, body).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("non-JSON body ({e}): {:?}", String::from_utf8_lossy(&bytes))
            })
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }
}

/// Asserts the status and returns `data`.
#[track_caller]
pub fn data(resp: Resp, status: u16) -> Value {
    assert_eq!(resp.status.as_u16(), status, "body: {}", resp.body);
    assert!(
        resp.body.get("params").is_some(),
        "missing params: {}",
        resp.body
    );
    resp.body["data"].clone()
}

/// Asserts the status and returns the error message.
#[track_caller]
pub fn error(resp: Resp, status: u16) -> String {
    assert_eq!(resp.status.as_u16(), status, "body: {}", resp.body);
    resp.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {}", resp.body))
        .to_owned()
}
