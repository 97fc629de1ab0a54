//! From a function's result to an HTTP response, and the gateway's own error responses.
//!
//! Payload 1.0 results must be an object with `statusCode` (REST API proxy rules: only
//! `statusCode`, `headers`, `multiValueHeaders`, `body` and `isBase64Encoded` are allowed).
//! Payload 2.0 results may also be any other JSON value: an object without `statusCode`, an
//! array or a number is a 200 `application/json` body, a string is the body itself.
//! Anything else is a malformed response (502). Error bodies use the wording of each API
//! type: REST APIs (payload 1.0), HTTP APIs (payload 2.0) and Lambda function URLs.

use base64::Engine;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;

/// Which product's errors and headers a response imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// REST API (payload 1.0): `x-amzn-RequestId`, `{"message": "Internal server error"}`.
    Rest,
    /// HTTP API (payload 2.0): `apigw-requestid`, `{"message":"Internal Server Error"}`.
    Http,
    /// Lambda function URL: `x-amzn-RequestId`, `{"Message":...}`.
    Url,
}

impl Flavor {
    pub fn request_id_header(self) -> &'static str {
        match self {
            Flavor::Http => "apigw-requestid",
            Flavor::Rest | Flavor::Url => "x-amzn-requestid",
        }
    }
}

/// Errors the gateway answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GatewayError {
    NotFound,
    /// The function's result is not a valid proxy response.
    Malformed,
    /// The function raised, crashed or timed out on its own deadline.
    FunctionError,
    /// The route names a function that does not exist, or the platform failed.
    Internal,
    /// The integration timeout passed.
    Timeout,
    Throttled,
    BodyTooLarge,
    HeadersTooLarge,
    BadRequest,
    /// `AWS_IAM` function URL without a valid signature.
    Forbidden,
}

impl GatewayError {
    pub fn response(self, flavor: Flavor) -> Response<Bytes> {
        use GatewayError::*;
        let (status, body): (u16, &'static str) = match (flavor, self) {
            (_, NotFound) => (404, r#"{"message":"Not Found"}"#),
            (Flavor::Rest, Malformed | FunctionError) => {
                (502, r#"{"message": "Internal server error"}"#)
            }
            (Flavor::Http, Malformed | FunctionError) => {
                (502, r#"{"message":"Internal Server Error"}"#)
            }
            (Flavor::Url, Malformed | FunctionError) => {
                (502, r#"{"Message":"Internal Server Error"}"#)
            }
            (Flavor::Rest, Internal) => (500, r#"{"message": "Internal server error"}"#),
            (Flavor::Http, Internal) => (500, r#"{"message":"Internal Server Error"}"#),
            (Flavor::Url, Internal) => (500, r#"{"Message":"Internal Server Error"}"#),
            (Flavor::Rest, Timeout) => (504, r#"{"message": "Endpoint request timed out"}"#),
            (Flavor::Http | Flavor::Url, Timeout) => (504, r#"{"message":"Service Unavailable"}"#),
            (Flavor::Url, Throttled) => (429, r#"{"Message":"Rate Exceeded."}"#),
            (_, Throttled) => (429, r#"{"message":"Too Many Requests"}"#),
            (Flavor::Url, BodyTooLarge) => (413, r#"{"Message":"Request Entity Too Large"}"#),
            (_, BodyTooLarge) => (413, r#"{"message":"Request Entity Too Large"}"#),
            (_, HeadersTooLarge) => (431, r#"{"message":"Request Header Fields Too Large"}"#),
            (_, BadRequest) => (400, r#"{"message":"Bad Request"}"#),
            (_, Forbidden) => (403, r#"{"Message":"Forbidden"}"#),
        };
        let mut resp = Response::new(Bytes::from_static(body.as_bytes()));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self == Forbidden || (flavor == Flavor::Url && self != NotFound) {
            resp.headers_mut().insert(
                HeaderName::from_static("x-amzn-errortype"),
                HeaderValue::from_static(match self {
                    Forbidden => "AccessDeniedException",
                    Throttled => "TooManyRequestsException",
                    _ => "ServiceException",
                }),
            );
        }
        resp
    }
}

/// Maps a payload 1.0 result.
pub(crate) fn map_v1(payload: &[u8]) -> Result<Response<Bytes>, GatewayError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| GatewayError::Malformed)?;
    let Value::Object(obj) = value else {
        return Err(GatewayError::Malformed);
    };
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "statusCode" | "headers" | "multiValueHeaders" | "body" | "isBase64Encoded"
        ) {
            return Err(GatewayError::Malformed);
        }
    }
    let status = status_of(obj.get("statusCode"))?.ok_or(GatewayError::Malformed)?;
    let mut resp = structured(&obj, status, true)?;
    if !resp.headers().contains_key(CONTENT_TYPE) {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(resp)
}

/// Maps a payload 2.0 result (HTTP APIs and function URLs).
pub(crate) fn map_v2(payload: &[u8]) -> Result<Response<Bytes>, GatewayError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| GatewayError::Malformed)?;
    match &value {
        Value::Object(obj) if obj.contains_key("statusCode") => {
            let status = status_of(obj.get("statusCode"))?.ok_or(GatewayError::Malformed)?;
            structured(obj, status, false)
        }
        Value::String(s) => Ok(json_response(Bytes::from(s.clone()))),
        _ => Ok(json_response(Bytes::copy_from_slice(trim_json(payload)))),
    }
}

/// Maps the JSON prelude of a streamed HTTP response (`awslambda.HttpResponseStream.from`):
/// `statusCode` (200 when absent), `headers` and `cookies`, as in a payload 2.0 result. An
/// empty prelude is a plain 200.
pub(crate) fn map_prelude(prelude: &[u8]) -> Result<Response<()>, GatewayError> {
    if prelude.iter().all(u8::is_ascii_whitespace) {
        return Ok(Response::new(()));
    }
    let value: Value = serde_json::from_slice(prelude).map_err(|_| GatewayError::Malformed)?;
    let Value::Object(obj) = value else {
        return Err(GatewayError::Malformed);
    };
    let status = status_of(obj.get("statusCode"))?.unwrap_or(StatusCode::OK);
    Ok(structured(&obj, status, false)?.map(|_| ()))
}

fn trim_json(payload: &[u8]) -> &[u8] {
    let start = payload
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(payload.len());
    let end = payload
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &payload[start..end]
}

fn json_response(body: Bytes) -> Response<Bytes> {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `statusCode`: an integer 100..=599 (a numeric string is accepted, as API Gateway does).
fn status_of(v: Option<&Value>) -> Result<Option<StatusCode>, GatewayError> {
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    let n = n
        .filter(|n| (100..=599).contains(n))
        .ok_or(GatewayError::Malformed)?;
    StatusCode::from_u16(u16::try_from(n).map_err(|_| GatewayError::Malformed)?)
        .map(Some)
        .map_err(|_| GatewayError::Malformed)
}

/// A header value as the function gave it: strings, numbers and booleans.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "upgrade"
    )
}

fn put_header(headers: &mut HeaderMap, name: &str, value: &str, append: bool) {
    let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) else {
        // A name or value HTTP cannot carry is dropped rather than failing the response.
        return;
    };
    if is_hop_by_hop(&name) {
        return;
    }
    if append {
        headers.append(name, value);
    } else {
        headers.insert(name, value);
    }
}

fn structured(
    obj: &serde_json::Map<String, Value>,
    status: StatusCode,
    v1: bool,
) -> Result<Response<Bytes>, GatewayError> {
    let mut headers = HeaderMap::new();
    if v1 {
        match obj.get("multiValueHeaders") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let Value::Array(list) = v else {
                        return Err(GatewayError::Malformed);
                    };
                    for item in list {
                        let s = scalar(item).ok_or(GatewayError::Malformed)?;
                        put_header(&mut headers, k, &s, true);
                    }
                }
            }
            Some(_) => return Err(GatewayError::Malformed),
        }
    }
    match obj.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let s = scalar(v).ok_or(GatewayError::Malformed)?;
                // API Gateway merges both maps; for a name in both, `multiValueHeaders` wins.
                if v1 && headers.contains_key(k.to_ascii_lowercase().as_str()) {
                    continue;
                }
                put_header(&mut headers, k, &s, false);
            }
        }
        Some(_) => return Err(GatewayError::Malformed),
    }
    if !v1 {
        match obj.get("cookies") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for c in list {
                    let Value::String(c) = c else {
                        return Err(GatewayError::Malformed);
                    };
                    if let Ok(v) = HeaderValue::from_str(c) {
                        headers.append(SET_COOKIE, v);
                    }
                }
            }
            Some(_) => return Err(GatewayError::Malformed),
        }
    }
    let base64 = match obj.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(GatewayError::Malformed),
    };
    let body = match obj.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if base64 => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|_| GatewayError::Malformed)?,
        ),
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(_) => return Err(GatewayError::Malformed),
    };
    headers.remove(CONTENT_LENGTH);
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_shortcuts() {
        let r = map_v2(br#""hello""#).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.body().as_ref(), b"hello");
        let r = map_v2(br#" {"a": 1} "#).unwrap();
        assert_eq!(r.body().as_ref(), br#"{"a": 1}"#);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let r = map_v2(br#"[1,2]"#).unwrap();
        assert_eq!(r.body().as_ref(), b"[1,2]");
        assert_eq!(map_v2(b"not json").unwrap_err(), GatewayError::Malformed);
    }

    #[test]
    fn v2_structured() {
        let r = map_v2(
            br#"{"statusCode":201,"headers":{"x-a":"1","x-n":2},"cookies":["a=1","b=2; Path=/"],"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        assert_eq!(r.headers()["x-n"], "2");
        let cookies: Vec<_> = r.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, vec!["a=1", "b=2; Path=/"]);
        assert_eq!(r.body().as_ref(), b"hi");
        assert!(map_v2(br#"{"statusCode":"abc"}"#).is_err());
        assert!(map_v2(br#"{"statusCode":200,"body":{"a":1}}"#).is_err());
        assert!(map_v2(br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#).is_err());
    }

    #[test]
    fn v1_rules() {
        let r = map_v1(
            br#"{"statusCode":200,"headers":{"x-a":"1"},"multiValueHeaders":{"x-m":["a","b"],"x-a":["0"]},"body":"ok"}"#,
        )
        .unwrap();
        assert_eq!(r.headers()["x-a"], "0");
        let m: Vec<_> = r.headers().get_all("x-m").iter().collect();
        assert_eq!(m, vec!["a", "b"]);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert!(map_v1(br#""hello""#).is_err());
        assert!(map_v1(br#"{"body":"x"}"#).is_err());
        assert!(map_v1(br#"{"statusCode":200,"extra":1}"#).is_err());
    }

    #[test]
    fn stream_preludes() {
        let r = map_prelude(
            br#"{"statusCode":201,"headers":{"content-type":"text/html","x-n":3,"content-length":"9"},"cookies":["a=1","b=2"]}"#,
        )
        .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()[CONTENT_TYPE], "text/html");
        assert_eq!(r.headers()["x-n"], "3");
        assert!(!r.headers().contains_key(CONTENT_LENGTH));
        let cookies: Vec<_> = r.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, vec!["a=1", "b=2"]);
        let r = map_prelude(br#"{"headers":{"x-a":"1"}}"#).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(map_prelude(b"").unwrap().status(), 200);
        assert_eq!(map_prelude(b"[1]").unwrap_err(), GatewayError::Malformed);
        assert_eq!(map_prelude(b"{oops").unwrap_err(), GatewayError::Malformed);
        assert_eq!(
            map_prelude(br#"{"statusCode":99}"#).unwrap_err(),
            GatewayError::Malformed
        );
    }

    #[test]
    fn error_bodies() {
        let r = GatewayError::Malformed.response(Flavor::Rest);
        assert_eq!(r.status(), 502);
        assert_eq!(
            r.body().as_ref(),
            br#"{"message": "Internal server error"}"#
        );
        let r = GatewayError::NotFound.response(Flavor::Http);
        assert_eq!(r.body().as_ref(), br#"{"message":"Not Found"}"#);
    }
}
