//! AWS error values and their wire shapes.
//!
//! One [`AwsError`] carries the AWS error code, HTTP status and message of any failure that is
//! reported to an AWS client, and renders itself (via [`axum::response::IntoResponse`]) in the
//! shape of the [`Protocol`] of the service that raised it, so that botocore and the other SDKs
//! recover the right error code:
//!
//! | protocol | body | where botocore reads the code |
//! |---|---|---|
//! | [`Protocol::RestJson`] (Lambda) | `{"Type":"User"\|"Service","message":..}` + extra fields | `x-amzn-ErrorType` header |
//! | [`Protocol::Json10`] (DynamoDB) | `{"__type":"<code>","message":..}` + extra fields | `__type` (text after the last `#`) |
//! | [`Protocol::Json11`] (CloudWatch Logs) | same as Json10 | same |
//! | [`Protocol::Query`] (SQS, SNS, STS) | `<ErrorResponse><Error><Type>..<Code>..<Message>..</Error><RequestId>..` | `Error/Code` |
//! | [`Protocol::RestXml`] (S3) | `<Error><Code>..<Message>..<RequestId>..</Error>` | `Error/Code` |
//!
//! DynamoDB's prefixed `__type` (`com.amazonaws.dynamodb.v20120810#ResourceNotFoundException`):
//! the caller either puts the full string in `code` or calls [`AwsError::with_type_prefix`],
//! which does exactly that (`code` becomes `"<prefix>#<code>"`). [`AwsError::short_code`] gives
//! the part after the `#` back. Codes must not contain `:` (botocore cuts the code there).
//!
//! Every response carries `x-amzn-RequestId` (and, for RestXml, S3's `x-amz-request-id`); a
//! fresh request id is made when the error has none.
//!
//! This module knows no service's error catalogue; services pick codes and statuses.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::{Map, Value};

/// The AWS wire protocol a service speaks; decides how an [`AwsError`] is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `rest-json` (Lambda, API Gateway management).
    RestJson,
    /// `json` 1.0 (DynamoDB), `x-amz-target` dispatch.
    Json10,
    /// `json` 1.1 (CloudWatch Logs, EventBridge), `x-amz-target` dispatch.
    Json11,
    /// `query` (SQS classic, SNS, STS): form-encoded `Action=` requests, XML responses.
    Query,
    /// `rest-xml` (S3).
    RestXml,
}

impl Protocol {
    /// The content type of this protocol's error bodies.
    pub fn error_content_type(self) -> &'static str {
        match self {
            Protocol::RestJson => "application/json",
            Protocol::Json10 => "application/x-amz-json-1.0",
            Protocol::Json11 => "application/x-amz-json-1.1",
            Protocol::Query | Protocol::RestXml => "text/xml",
        }
    }
}

/// An error reported to an AWS client: code, status, message and the protocol to render it in.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// AWS error code, e.g. `ResourceNotFoundException` (Json10: may carry a `prefix#`).
    pub code: String,
    /// Human-readable message, passed to the client verbatim.
    pub message: String,
    /// Wire shape of the rendered response.
    pub protocol: Protocol,
    /// Request id for the body and headers; a fresh one is made at render time if `None`.
    pub request_id: Option<String>,
    /// Extra top-level body fields (JSON protocols) or extra `<Error>` children (XML protocols).
    pub extra: Map<String, Value>,
}

impl AwsError {
    /// A RestJson error. A status that is not a valid HTTP status becomes 500.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        AwsError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.to_owned(),
            message: message.into(),
            protocol: Protocol::RestJson,
            request_id: None,
            extra: Map::new(),
        }
    }

    /// The same error rendered in protocol `p`.
    pub fn with_protocol(mut self, p: Protocol) -> Self {
        self.protocol = p;
        self
    }

    /// Adds an extra body field, e.g. Lambda's `"Reason"` on `TooManyRequestsException`.
    pub fn with_field(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// Sets the request id reported in headers and body.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Prefixes the code with `prefix#` (DynamoDB's `com.amazonaws.dynamodb.v20120810`), unless
    /// it already carries a prefix.
    pub fn with_type_prefix(mut self, prefix: &str) -> Self {
        if !self.code.contains('#') {
            self.code = format!("{prefix}#{}", self.code);
        }
        self
    }

    /// The code without any `prefix#`, as botocore reports it.
    pub fn short_code(&self) -> &str {
        self.code.rsplit('#').next().unwrap_or(&self.code)
    }

    /// `User` for 4xx, `Service` for 5xx (RestJson's `Type`).
    fn fault_json(&self) -> &'static str {
        if self.status.is_server_error() {
            "Service"
        } else {
            "User"
        }
    }

    /// `Sender` for 4xx, `Receiver` for 5xx (Query's `<Type>`).
    fn fault_xml(&self) -> &'static str {
        if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        }
    }

    /// The response body in this error's protocol, with `request_id` in it where the protocol
    /// puts one.
    pub fn body(&self, request_id: &str) -> String {
        match self.protocol {
            Protocol::RestJson => {
                let mut m = Map::new();
                m.insert("Type".into(), Value::from(self.fault_json()));
                m.insert("message".into(), Value::from(self.message.as_str()));
                self.json_with_extra(m)
            }
            Protocol::Json10 | Protocol::Json11 => {
                let mut m = Map::new();
                m.insert("__type".into(), Value::from(self.code.as_str()));
                m.insert("message".into(), Value::from(self.message.as_str()));
                self.json_with_extra(m)
            }
            Protocol::Query => {
                let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                s.push_str("<ErrorResponse><Error>");
                push_element(&mut s, "Type", self.fault_xml());
                push_element(&mut s, "Code", self.short_code());
                push_element(&mut s, "Message", &self.message);
                self.push_extra_xml(&mut s);
                s.push_str("</Error>");
                push_element(&mut s, "RequestId", request_id);
                s.push_str("</ErrorResponse>");
                s
            }
            Protocol::RestXml => {
                let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                s.push_str("<Error>");
                push_element(&mut s, "Code", self.short_code());
                push_element(&mut s, "Message", &self.message);
                self.push_extra_xml(&mut s);
                push_element(&mut s, "RequestId", request_id);
                s.push_str("</Error>");
                s
            }
        }
    }

    fn json_with_extra(&self, mut m: Map<String, Value>) -> String {
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m).to_string()
    }

    fn push_extra_xml(&self, s: &mut String) {
        for (k, v) in &self.extra {
            match v {
                Value::String(text) => push_element(s, k, text),
                Value::Null => push_element(s, k, ""),
                other => push_element(s, k, &other.to_string()),
            }
        }
    }
}

fn push_element(s: &mut String, name: &str, text: &str) {
    s.push('<');
    s.push_str(name);
    s.push('>');
    s.push_str(&xml_escape(text));
    s.push_str("</");
    s.push_str(name);
    s.push('>');
}

/// Escapes `&`, `<`, `>`, `"` and `'` for XML text and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let request_id = self.request_id.clone().unwrap_or_else(crate::request_id);
        let body = self.body(&request_id);
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.protocol.error_content_type()),
        );
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert(crate::REQUEST_ID_HEADER, v.clone());
            if self.protocol == Protocol::RestXml {
                headers.insert("x-amz-request-id", v);
            }
        }
        if self.protocol == Protocol::RestJson {
            if let Ok(v) = HeaderValue::from_str(self.short_code()) {
                headers.insert("x-amzn-errortype", v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(e: AwsError) -> (StatusCode, http::HeaderMap, String) {
        let resp = e.into_response();
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn rest_json_shape() {
        let e = AwsError::new(429, "TooManyRequestsException", "Rate exceeded")
            .with_field(
                "Reason",
                Value::from("ReservedFunctionConcurrentInvocationLimitExceeded"),
            )
            .with_request_id("rid-1");
        let (status, headers, body) = rt().block_on(render(e));
        assert_eq!(status, 429);
        assert_eq!(headers["x-amzn-errortype"], "TooManyRequestsException");
        assert_eq!(headers["x-amzn-requestid"], "rid-1");
        assert_eq!(headers["content-type"], "application/json");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["Type"], "User");
        assert_eq!(v["message"], "Rate exceeded");
        assert_eq!(
            v["Reason"],
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        );
    }

    #[test]
    fn rest_json_server_fault() {
        let e = AwsError::new(500, "ServiceException", "boom");
        let (_, headers, body) = rt().block_on(render(e));
        assert!(headers.contains_key("x-amzn-requestid"));
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["Type"], "Service");
    }

    #[test]
    fn json10_with_prefix() {
        let e = AwsError::new(
            400,
            "ResourceNotFoundException",
            "Requested resource not found",
        )
        .with_protocol(Protocol::Json10)
        .with_type_prefix("com.amazonaws.dynamodb.v20120810");
        assert_eq!(e.short_code(), "ResourceNotFoundException");
        let (_, headers, body) = rt().block_on(render(e));
        assert_eq!(headers["content-type"], "application/x-amz-json-1.0");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            v["__type"],
            "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
        );
        assert_eq!(v["message"], "Requested resource not found");
    }

    #[test]
    fn json11_shape() {
        let e = AwsError::new(
            400,
            "ResourceNotFoundException",
            "The specified log group does not exist.",
        )
        .with_protocol(Protocol::Json11);
        let (_, headers, body) = rt().block_on(render(e));
        assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
        assert_eq!(
            body,
            r#"{"__type":"ResourceNotFoundException","message":"The specified log group does not exist."}"#
        );
    }

    #[test]
    fn query_shape() {
        let e = AwsError::new(400, "InvalidParameterValue", "bad <value> & more")
            .with_protocol(Protocol::Query)
            .with_request_id("rid-2");
        let (_, headers, body) = rt().block_on(render(e));
        assert_eq!(headers["content-type"], "text/xml");
        assert!(body.ends_with(
            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code>\
             <Message>bad &lt;value&gt; &amp; more</Message></Error>\
             <RequestId>rid-2</RequestId></ErrorResponse>"
        ));
    }

    #[test]
    fn rest_xml_shape() {
        let e = AwsError::new(404, "NoSuchKey", "The specified key does not exist.")
            .with_protocol(Protocol::RestXml)
            .with_field("Key", Value::from("a/b.txt"))
            .with_request_id("rid-3");
        let (status, headers, body) = rt().block_on(render(e));
        assert_eq!(status, 404);
        assert_eq!(headers["x-amz-request-id"], "rid-3");
        assert!(body.ends_with(
            "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>\
             <Key>a/b.txt</Key><RequestId>rid-3</RequestId></Error>"
        ));
    }

    #[test]
    fn display_and_bad_status() {
        let e = AwsError::new(1000, "X", "y");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.to_string(), "X: y");
    }
}
