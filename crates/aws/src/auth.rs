//! SigV4 verification as an axum middleware, and the choice of error protocol for a request.
//!
//! [`sigv4_middleware`] sits in front of every AWS API router: it buffers the body (at most
//! [`MAX_BODY`]), verifies the signature with [`crate::sigv4::verify`], and hands the request on
//! with the buffered body and [`Identity`](crate::sigv4::Identity) and [`RequestId`] extensions.
//! S3 requests whose `x-amz-content-sha256` is `UNSIGNED-PAYLOAD` or `STREAMING-*` are not
//! buffered: their body is not part of the signature, so it streams through untouched (the S3
//! service checks chunk signatures and sizes itself).
//!
//! Handlers behind this middleware that extract the body with axum's `Bytes`/`Json` extractors
//! still meet axum's `DefaultBodyLimit` (2 MB) unless the router raises it to [`MAX_BODY`].
//!
//! Failures are rendered in the protocol the request speaks ([`protocol_of`]), so a DynamoDB
//! client gets a Json10 error and an S3 client an XML one.
//!
//! This module does no authorization (who may do what); it only establishes who signed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::{AwsError, Protocol};
use crate::sigv4::{self, CredentialLookup, UNSIGNED_PAYLOAD};

/// The largest request body the middleware buffers (Lambda CreateFunction carries a base64 50 MB
/// zip in JSON).
pub const MAX_BODY: usize = 80 * 1024 * 1024;

/// The id of the request being served, inserted as a request extension by
/// [`sigv4_middleware`] (kept when an earlier layer already inserted one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The `Credential=` value of the request, from the `Authorization` header or the
/// `X-Amz-Credential` query parameter.
fn credential_of(parts: &http::request::Parts) -> Option<String> {
    if let Some(authz) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let start = authz.find("Credential=")? + "Credential=".len();
        let rest = &authz[start..];
        let end = rest.find([',', ' ']).unwrap_or(rest.len());
        return Some(rest[..end].to_owned());
    }
    let query = parts.uri.query()?;
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == "X-Amz-Credential").then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The service named in the request's credential scope, if any.
pub fn scope_service(parts: &http::request::Parts) -> Option<String> {
    let cred = credential_of(parts)?;
    let mut it = cred.rsplit('/');
    let _terminator = it.next()?;
    it.next().map(str::to_owned)
}

fn has_action_param(form: &[u8]) -> bool {
    form.split(|b| *b == b'&')
        .any(|p| p.starts_with(b"Action="))
}

fn is_form(parts: &http::request::Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

fn protocol_with(parts: &http::request::Parts, form_is_query: impl FnOnce() -> bool) -> Protocol {
    if parts.headers.contains_key("x-amz-target") {
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ct.contains("json-1.0") {
            return Protocol::Json10;
        }
        if ct.contains("json-1.1") {
            return Protocol::Json11;
        }
    }
    if scope_service(parts).as_deref() == Some("s3") {
        return Protocol::RestXml;
    }
    if parts
        .uri
        .query()
        .is_some_and(|q| has_action_param(q.as_bytes()))
    {
        return Protocol::Query;
    }
    if is_form(parts) && form_is_query() {
        return Protocol::Query;
    }
    Protocol::RestJson
}

/// The protocol to render errors in, from the request head alone: `x-amz-target` with
/// content-type `...json-1.0` → Json10, `...json-1.1` → Json11; credential scope service `s3` →
/// RestXml; `Action=` in the query string or a form-encoded body → Query; otherwise RestJson.
pub fn protocol_of(parts: &http::request::Parts) -> Protocol {
    protocol_with(parts, || true)
}

/// Like [`protocol_of`], but a form-encoded body only means Query when it has an `Action=`
/// parameter.
pub fn protocol_of_request(parts: &http::request::Parts, body: &[u8]) -> Protocol {
    protocol_with(parts, || has_action_param(body))
}

/// Whether the request is for S3 and its body is outside its signature, so the body streams
/// through unbuffered (S3 objects may be far larger than [`MAX_BODY`]).
fn unsigned_s3_body(parts: &http::request::Parts) -> bool {
    // The header first: it is cheap, and absent from most requests.
    parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == UNSIGNED_PAYLOAD || v.starts_with("STREAMING-"))
        && scope_service(parts).as_deref() == Some("s3")
}

fn too_large(protocol: Protocol) -> AwsError {
    let code = match protocol {
        Protocol::RestXml => "EntityTooLarge",
        Protocol::Query => "RequestEntityTooLarge",
        _ => "RequestEntityTooLargeException",
    };
    AwsError::new(
        413,
        code,
        format!("Request must be smaller than {MAX_BODY} bytes"),
    )
    .with_protocol(protocol)
}

/// axum middleware (use with axum::middleware::from_fn_with_state): buffers the body (up to
/// MAX_BODY, else 413 in the request's protocol), verifies, inserts `Identity` (and
/// [`RequestId`]) as request extensions, and passes the request on with the buffered body.
/// Errors are rendered in the protocol of the request (see [`protocol_of`]).
pub async fn sigv4_middleware(
    State(lookup): State<Arc<dyn CredentialLookup>>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let request_id = ensure_request_id(&mut parts);
    let now = time::OffsetDateTime::now_utc();
    let (body, identity) = if unsigned_s3_body(&parts) {
        let identity = match sigv4::verify(&parts, &[], now, lookup.as_ref()) {
            Ok(identity) => identity,
            Err(e) => return reject(e, &request_id),
        };
        if let Err(e) = check_service(&parts, &identity, &request_id) {
            return reject(e, &request_id);
        }
        (body, identity)
    } else {
        match verify_buffered(lookup.as_ref(), &parts, body, &request_id).await {
            Ok((bytes, identity)) => (Body::from(bytes), identity),
            Err(resp) => return resp,
        }
    };
    parts.extensions.insert(identity);
    next.run(Request::from_parts(parts, body)).await
}

/// The request's [`RequestId`] extension, inserted first if an earlier layer did not.
pub fn ensure_request_id(parts: &mut http::request::Parts) -> RequestId {
    match parts.extensions.get::<RequestId>() {
        Some(id) => id.clone(),
        None => {
            let id = RequestId(crate::request_id());
            parts.extensions.insert(id.clone());
            id
        }
    }
}

/// What [`sigv4_middleware`] does for a request whose body is part of its signature, for a
/// caller that dispatches requests itself (the control endpoint's `X-Amz-Target` fast path):
/// buffers the body (at most [`MAX_BODY`]), verifies the signature and that its scope names
/// the service the request is addressed to ([`expected_service`]). The error is the response
/// to send, in the request's protocol and with `request_id`.
pub async fn verify_buffered(
    lookup: &dyn CredentialLookup,
    parts: &http::request::Parts,
    body: Body,
    request_id: &RequestId,
) -> Result<(bytes::Bytes, sigv4::Identity), Response> {
    let now = time::OffsetDateTime::now_utc();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(reject(too_large(protocol_of(parts)), request_id));
    }
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(reject(too_large(protocol_of(parts)), request_id));
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading request body failed");
            let err = AwsError::new(400, "IncompleteBody", "The request body could not be read.")
                .with_protocol(protocol_of(parts));
            return Err(reject(err, request_id));
        }
    };
    let identity = match sigv4::verify(parts, &bytes, now, lookup) {
        Ok(identity) => identity,
        Err(mut e) => {
            e.protocol = protocol_of_request(parts, &bytes);
            return Err(reject(e, request_id));
        }
    };
    check_service(parts, &identity, request_id).map_err(|e| reject(e, request_id))?;
    Ok((bytes, identity))
}

/// Rejects a signature scoped to another service than the one the request is addressed to.
fn check_service(
    parts: &http::request::Parts,
    identity: &sigv4::Identity,
    request_id: &RequestId,
) -> Result<(), AwsError> {
    if let Some(expected) = expected_service(parts) {
        if identity.service != expected {
            let err = AwsError::new(
                403,
                "InvalidSignatureException",
                format!("Credential should be scoped to correct service: '{expected}'. "),
            )
            // The scope names the wrong service, so answer in the addressed service's protocol.
            .with_protocol(if expected == "lambda" {
                Protocol::RestJson
            } else {
                protocol_of(parts)
            });
            return Err(err);
        }
    }
    tracing::trace!(
        access_key_id = %identity.access_key_id,
        service = %identity.service,
        request_id = %request_id.0,
        "sigv4 verified"
    );
    Ok(())
}

/// The signing name of the service a request is addressed to, where its shape tells: JSON
/// protocols by their `X-Amz-Target` prefix, Lambda by its dated REST paths. `None` (e.g. S3's
/// path-style requests) accepts whatever service the signature names.
pub fn expected_service(parts: &http::request::Parts) -> Option<&'static str> {
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        let prefix = target.split('.').next().unwrap_or("");
        return match prefix {
            "DynamoDB_20120810" => Some("dynamodb"),
            "DynamoDBStreams_20120810" => Some("dynamodb"),
            "Logs_20140328" => Some("logs"),
            "AmazonSQS" => Some("sqs"),
            "AWSEvents" => Some("events"),
            "AWSStepFunctions" => Some("states"),
            _ => None,
        };
    }
    let path = parts.uri.path();
    let lambda_dates = [
        "/2015-03-31/",
        "/2016-08-19/",
        "/2017-10-31/",
        "/2018-10-31/",
        "/2019-09-25/",
        "/2019-09-30/",
        "/2020-04-22/",
        "/2020-06-30/",
        "/2021-10-31/",
    ];
    if lambda_dates.iter().any(|p| path.starts_with(p)) || path.starts_with("/gust/v1/functions") {
        return Some("lambda");
    }
    None
}

fn reject(e: AwsError, request_id: &RequestId) -> Response {
    tracing::debug!(code = %e.code, message = %e.message, request_id = %request_id.0, "sigv4 rejected request");
    e.with_request_id(request_id.0.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::{sign_headers, Credentials, Identity, SigningParams};
    use axum::routing::any;
    use axum::{Extension, Router};
    use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
    use tower::ServiceExt;

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDGUST".into(),
            secret_access_key: "secret".into(),
        }
    }

    fn app() -> Router {
        let lookup: Arc<dyn CredentialLookup> = Arc::new(creds());
        Router::new()
            .route(
                "/{*rest}",
                any(
                    |Extension(id): Extension<Identity>,
                     Extension(rid): Extension<RequestId>,
                     body: axum::body::Bytes| async move {
                        format!(
                            "{} {} {} {}",
                            id.access_key_id,
                            id.service,
                            body.len(),
                            !rid.0.is_empty()
                        )
                    },
                ),
            )
            .layer(axum::middleware::from_fn_with_state(
                lookup,
                sigv4_middleware,
            ))
    }

    fn request(
        method: Method,
        path: &str,
        service: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        secret: &str,
    ) -> Request {
        let uri: Uri = format!("http://localhost:9000{path}").parse().expect("uri");
        let mut headers = HeaderMap::new();
        for (k, v) in extra {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        let creds = Credentials {
            access_key_id: "AKIDGUST".into(),
            secret_access_key: secret.into(),
        };
        let params = SigningParams {
            region: "us-east-1",
            service,
            time: time::OffsetDateTime::now_utc(),
        };
        sign_headers(&method, &uri, &mut headers, body, &creds, &params);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body.to_vec()))
            .expect("request");
        *req.headers_mut() = headers;
        req
    }

    async fn send(req: Request) -> (StatusCode, HeaderMap, String) {
        let resp = app().oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn signature_scoped_to_another_service_is_rejected() {
        let req = request(
            Method::GET,
            "/2015-03-31/functions/",
            "s3",
            &[],
            b"",
            "secret",
        );
        let (status, headers, body) = send(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            headers
                .get("x-amzn-errortype")
                .map(|v| v.to_str().unwrap_or("")),
            Some("InvalidSignatureException"),
            "{body}"
        );
        assert!(
            body.contains("Credential should be scoped to correct service: 'lambda'"),
            "{body}"
        );
        let target = [("x-amz-target", "DynamoDB_20120810.ListTables")];
        let req = request(Method::POST, "/", "lambda", &target, b"{}", "secret");
        let (status, _, body) = send(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("'dynamodb'"), "{body}");
        // Correctly scoped: passes the middleware (the test app has no route for `/`).
        let req = request(Method::POST, "/", "dynamodb", &target, b"{}", "secret");
        assert_eq!(send(req).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn passes_verified_requests_with_body_and_identity() {
        let req = request(
            Method::POST,
            "/2015-03-31/functions/f/invocations",
            "lambda",
            &[],
            b"{\"a\":1}",
            "secret",
        );
        let (status, _, body) = send(req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, "AKIDGUST lambda 7 true");
    }

    #[tokio::test]
    async fn unsigned_payload_streams_through() {
        let req = request(
            Method::PUT,
            "/bkt/key",
            "s3",
            &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
            b"",
            "secret",
        );
        let (parts, _) = req.into_parts();
        let req = Request::from_parts(parts, Body::from("streamed body"));
        let (status, _, body) = send(req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, "AKIDGUST s3 13 true");
    }

    #[tokio::test]
    async fn missing_auth_is_rest_json_403() {
        let req = Request::builder()
            .uri("/2015-03-31/functions")
            .body(Body::empty())
            .expect("req");
        let (status, headers, body) = send(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            headers["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        assert!(headers.contains_key("x-amzn-requestid"));
        assert_eq!(
            body,
            r#"{"Type":"User","message":"Missing Authentication Token"}"#
        );
    }

    #[tokio::test]
    async fn errors_follow_the_request_protocol() {
        let ddb = request(
            Method::POST,
            "/",
            "dynamodb",
            &[
                ("x-amz-target", "DynamoDB_20120810.PutItem"),
                ("content-type", "application/x-amz-json-1.0"),
            ],
            b"{}",
            "wrong",
        );
        let (status, headers, body) = send(ddb).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers["content-type"], "application/x-amz-json-1.0");
        assert!(
            body.starts_with(r#"{"__type":"InvalidSignatureException","#),
            "{body}"
        );

        let logs = request(
            Method::POST,
            "/",
            "logs",
            &[
                ("x-amz-target", "Logs_20140328.PutLogEvents"),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            b"{}",
            "wrong",
        );
        let (_, headers, _) = send(logs).await;
        assert_eq!(headers["content-type"], "application/x-amz-json-1.1");

        let s3 = request(Method::GET, "/bkt/key", "s3", &[], b"", "wrong");
        let (status, headers, body) = send(s3).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(headers.contains_key("x-amz-request-id"));
        assert!(
            body.contains("<Error><Code>SignatureDoesNotMatch</Code>"),
            "{body}"
        );

        let sts = request(
            Method::POST,
            "/",
            "sts",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            b"Action=GetCallerIdentity&Version=2011-06-15",
            "wrong",
        );
        let (_, _, body) = send(sts).await;
        assert!(
            body.contains(
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidSignatureException</Code>"
            ),
            "{body}"
        );

        // A form body without Action= is not the Query protocol.
        let form = request(
            Method::POST,
            "/2015-03-31/functions/f/invocations",
            "lambda",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"a=b",
            "wrong",
        );
        let (_, headers, _) = send(form).await;
        assert_eq!(
            headers
                .get("x-amzn-errortype")
                .map(|v| v.to_str().unwrap_or("")),
            Some("InvalidSignatureException"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn too_large_by_content_length() {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/2015-03-31/functions")
            .header("content-length", (MAX_BODY + 1).to_string())
            .body(Body::empty())
            .expect("req");
        let (status, headers, _) = send(req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            headers["x-amzn-errortype"],
            "RequestEntityTooLargeException"
        );
    }

    #[tokio::test]
    async fn too_large_without_content_length() {
        // No content-length header: the limit is enforced while reading.
        let req = Request::builder()
            .method(Method::POST)
            .uri("/2015-03-31/functions")
            .body(Body::from(vec![b'x'; MAX_BODY + 1]))
            .expect("req");
        assert!(!req.headers().contains_key("content-length"));
        let (status, _, _) = send(req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn protocol_detection() {
        let parts = |b: http::request::Builder| b.body(()).expect("req").into_parts().0;
        let base = || Request::builder().uri("/");
        assert_eq!(protocol_of(&parts(base())), Protocol::RestJson);
        assert_eq!(
            protocol_of(&parts(
                base()
                    .header("x-amz-target", "X.Y")
                    .header("content-type", "application/x-amz-json-1.0")
            )),
            Protocol::Json10
        );
        assert_eq!(
            protocol_of(&parts(
                base()
                    .header("x-amz-target", "X.Y")
                    .header("content-type", "application/x-amz-json-1.1")
            )),
            Protocol::Json11
        );
        assert_eq!(
            protocol_of(&parts(base().header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
            ))),
            Protocol::RestXml
        );
        assert_eq!(
            protocol_of(&parts(Request::builder().uri(
                "/k?X-Amz-Credential=AK%2F20150830%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0"
            ))),
            Protocol::RestXml
        );
        assert_eq!(
            protocol_of(&parts(Request::builder().uri("/?Action=ListQueues"))),
            Protocol::Query
        );
        let form = parts(base().header("content-type", "application/x-www-form-urlencoded"));
        assert_eq!(protocol_of(&form), Protocol::Query);
        assert_eq!(
            protocol_of_request(&form, b"Version=1&Action=X"),
            Protocol::Query
        );
        assert_eq!(protocol_of_request(&form, b"a=b"), Protocol::RestJson);
    }
}
