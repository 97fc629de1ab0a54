//! A small SigV4-signing client for the control endpoint, configured from the data dir (or
//! from the standard `AWS_*` variables when they are set).

use std::path::Path;

use anyhow::{bail, Context, Result};
use gust_aws::sigv4::{sign_headers, Credentials, SigningParams};
use http::{HeaderMap, HeaderValue, Method, Uri};

/// A response from the control endpoint.
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// Reads a whole response.
    async fn read(resp: reqwest::Response) -> Result<Reply> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.context("reading the reply")?.to_vec();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("the server's reply is not JSON")
    }

    /// The AWS error code of an error reply: the `x-amzn-ErrorType` header (REST-JSON), or the
    /// body's `__type` after its `#` (JSON 1.0 services such as DynamoDB).
    pub fn error_code(&self) -> Option<String> {
        if self.status.is_success() {
            return None;
        }
        let from_header = self
            .headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(':').next().unwrap_or(s).to_string());
        from_header.or_else(|| {
            let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
            let t = v.get("__type")?.as_str()?;
            Some(t.rsplit('#').next().unwrap_or(t).to_string())
        })
    }

    /// Turns an AWS error reply into an error naming its code and message.
    pub fn error_for_status(self) -> Result<Reply> {
        if self.status.is_success() {
            return Ok(self);
        }
        let code = self
            .error_code()
            .unwrap_or_else(|| format!("HTTP {}", self.status.as_u16()));
        let message = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("Message"))
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        bail!("{code}: {message}")
    }
}

pub struct Client {
    endpoint: String,
    creds: Credentials,
    region: String,
    http: reqwest::Client,
}

impl Client {
    /// Endpoint and credentials: `AWS_ENDPOINT_URL` + `AWS_ACCESS_KEY_ID` +
    /// `AWS_SECRET_ACCESS_KEY` when all are set, else the files `gust up` keeps in `data_dir`.
    pub fn from_env_or_data_dir(data_dir: &Path) -> Result<Client> {
        let region =
            std::env::var("AWS_REGION").unwrap_or_else(|_| gust_model::DEFAULT_REGION.to_string());
        let from_env = (
            std::env::var("AWS_ENDPOINT_URL"),
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        );
        let (endpoint, creds) = if let (Ok(e), Ok(k), Ok(s)) = from_env {
            (
                e,
                Credentials {
                    access_key_id: k,
                    secret_access_key: s,
                },
            )
        } else {
            let endpoint =
                std::fs::read_to_string(data_dir.join("endpoint")).with_context(|| {
                    format!(
                    "no running Gust found in {} (start one with `gust up`, or pass --data-dir)",
                    data_dir.display()
                )
                })?;
            let c = gust_server::load_credentials(data_dir)
                .with_context(|| format!("cannot read credentials in {}", data_dir.display()))?;
            (
                endpoint.trim().to_string(),
                Credentials {
                    access_key_id: c.access_key_id,
                    secret_access_key: c.secret_access_key,
                },
            )
        };
        let http = reqwest::Client::builder()
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            creds,
            region,
            http,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends a signed request to the Lambda API (or a Gust extension); `path` includes the
    /// query string.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Result<Reply> {
        self.send_as("lambda", method, path, body, extra).await
    }

    /// Calls an operation of a JSON 1.0 protocol service (`POST /` with `X-Amz-Target`), such
    /// as DynamoDB: `target` is `DynamoDB_20120810.CreateTable`, `service` the signing name.
    pub async fn call_json10(
        &self,
        service: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> Result<Reply> {
        self.send_as(
            service,
            Method::POST,
            "/",
            serde_json::to_vec(body)?,
            &[
                ("x-amz-target", target),
                ("content-type", "application/x-amz-json-1.0"),
            ],
        )
        .await
    }

    async fn send_as(
        &self,
        service: &str,
        method: Method,
        path: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Result<Reply> {
        let resp = self.signed(service, method, path, body, extra).await?;
        Reply::read(resp).await
    }

    /// Sends a signed request to the Lambda API and returns the response as it starts, for a
    /// body read as it arrives (`InvokeWithResponseStream`); an error reply is an error here.
    pub async fn send_streaming(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Result<reqwest::Response> {
        let resp = self.signed("lambda", method, path, body, extra).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(Reply::read(resp)
            .await?
            .error_for_status()
            .err()
            .unwrap_or_else(|| anyhow::anyhow!("unexpected reply")))
    }

    /// Signs and sends a request; the response's body is not read yet.
    async fn signed(
        &self,
        service: &str,
        method: Method,
        path: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Result<reqwest::Response> {
        let url = format!("{}{}", self.endpoint, path);
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        let mut headers = HeaderMap::new();
        if !body.is_empty() {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        for (k, v) in extra {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes())?,
                HeaderValue::from_str(v)?,
            );
        }
        let params = SigningParams {
            region: &self.region,
            service,
            time: time::OffsetDateTime::now_utc(),
        };
        sign_headers(&method, &uri, &mut headers, &body, &self.creds, &params);
        self.http
            .request(method, url.as_str())
            .headers(headers)
            .body(body)
            .send()
            .await
            .with_context(|| {
                format!(
                    "cannot reach Gust at {} (is `gust up` running?)",
                    self.endpoint
                )
            })
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, Vec::new(), &[]).await
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Reply> {
        self.send(method, path, serde_json::to_vec(body)?, &[])
            .await
    }
}

/// Percent-encodes one path segment (function names are plain, but ARNs carry colons), with
/// SigV4's unreserved set.
pub fn segment(s: &str) -> String {
    gust_aws::sigv4::uri_encode(s)
}
