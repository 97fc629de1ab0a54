//! The control endpoint's HTTP app: an unauthenticated health check, then every AWS API
//! behind SigV4 verification, the REST APIs (Lambda) by path through an axum router and the
//! JSON-protocol APIs (DynamoDB) by `X-Amz-Target`.
//!
//! A `POST /` whose `X-Amz-Target` names a service in the [`TargetTable`] does not go through
//! the router: [`ControlApp`] verifies it with the same checks as
//! [`gust_aws::auth::sigv4_middleware`] ([`gust_aws::auth::verify_buffered`]) and hands the
//! buffered body to the service. On DynamoDB's hot path (thousands of small requests a second)
//! the router's layers — route matching, the middleware's boxed services cloned per request,
//! the second router behind the target, the body collected twice — cost more than the
//! operation itself. Requests the table does not claim take the router, which answers exactly
//! as before (an unknown target is `UnknownOperationException` after verification).
//!
//! This module does no authorization (who may do what) and knows no service's operations.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Router;
use gust_aws::sigv4::CredentialLookup;
use http::{HeaderMap, Method};

/// A boxed response future that borrows its service.
pub type ResponseFuture<'a> = Pin<Box<dyn Future<Output = Response> + Send + 'a>>;

/// A service that speaks an AWS JSON protocol: it is handed a request whose signature has been
/// verified and whose body has been read.
pub trait TargetService: Send + Sync + 'static {
    /// Serves one request (`headers` carry the `X-Amz-Target`).
    fn serve<'a>(
        &'a self,
        headers: &'a HeaderMap,
        body: Bytes,
        request_id: String,
    ) -> ResponseFuture<'a>;
}

impl TargetService for gust_dynamodb::DynamoDb {
    fn serve<'a>(
        &'a self,
        headers: &'a HeaderMap,
        body: Bytes,
        request_id: String,
    ) -> ResponseFuture<'a> {
        Box::pin(self.handle(headers, body, request_id))
    }
}

/// The services that speak an AWS JSON protocol (`POST /` with `X-Amz-Target`), each with
/// the target prefix it answers (`DynamoDB_20120810.`); the first matching prefix wins.
pub type TargetTable = Vec<(&'static str, Arc<dyn TargetService>)>;

/// The control endpoint as a tower service (serve it with
/// `axum::ServiceExt::into_make_service`).
#[derive(Clone)]
pub struct ControlApp {
    router: Router,
    targets: Arc<TargetTable>,
    lookup: Arc<dyn CredentialLookup>,
}

/// Builds the control endpoint's app: unauthenticated health check, then every AWS API behind
/// SigV4 verification: the REST APIs by path, the JSON-protocol APIs by `X-Amz-Target`.
pub fn control_app(
    lambda: Arc<gust_lambda::LambdaState>,
    targets: TargetTable,
    lookup: Arc<dyn CredentialLookup>,
) -> ControlApp {
    control_app_with(gust_lambda::router(lambda), targets, lookup)
}

/// [`control_app`] with `rest` as the REST APIs' router.
fn control_app_with(
    rest: Router,
    targets: TargetTable,
    lookup: Arc<dyn CredentialLookup>,
) -> ControlApp {
    let targets = Arc::new(targets);
    // The middleware buffers and bounds the body itself; the extractors behind it must not cut
    // a 50 MB CreateFunction zip short at axum's 2 MB default.
    let signed = rest
        .route("/", axum::routing::post(unknown_target))
        .layer(axum::extract::DefaultBodyLimit::max(
            gust_aws::auth::MAX_BODY,
        ))
        .layer(axum::middleware::from_fn_with_state(
            lookup.clone(),
            gust_aws::auth::sigv4_middleware,
        ));
    let router = Router::new()
        .route("/_gust/health", axum::routing::get(|| async { "ok" }))
        .merge(signed);
    ControlApp {
        router,
        targets,
        lookup,
    }
}

/// The service whose prefix `target` has.
fn find_target(targets: &TargetTable, target: &str) -> Option<Arc<dyn TargetService>> {
    targets
        .iter()
        .find(|(prefix, _)| target.starts_with(prefix))
        .map(|(_, service)| service.clone())
}

impl ControlApp {
    /// The service a request goes to directly, if it is a `POST /` whose target is claimed.
    fn direct(&self, req: &Request) -> Option<Arc<dyn TargetService>> {
        if req.method() != Method::POST || req.uri().path() != "/" {
            return None;
        }
        let target = req.headers().get("x-amz-target")?.to_str().ok()?;
        find_target(&self.targets, target)
    }
}

/// Verifies a request as the SigV4 middleware does, then hands it to `service`.
async fn serve_direct(
    lookup: Arc<dyn CredentialLookup>,
    service: Arc<dyn TargetService>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    // Nothing past this point reads the extensions: the id is handed on as it is.
    let request_id = match parts.extensions.get::<gust_aws::auth::RequestId>() {
        Some(id) => id.clone(),
        None => gust_aws::auth::RequestId(gust_aws::request_id()),
    };
    match gust_aws::auth::verify_buffered(lookup.as_ref(), &parts, body, &request_id).await {
        Ok((bytes, _identity)) => service.serve(&parts.headers, bytes, request_id.0).await,
        Err(resp) => resp,
    }
}

impl tower::Service<Request> for ControlApp {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match self.direct(&req) {
            Some(service) => {
                let lookup = self.lookup.clone();
                Box::pin(async move { Ok(serve_direct(lookup, service, req).await) })
            }
            None => {
                let router = self.router.clone();
                Box::pin(async move {
                    use tower::ServiceExt;
                    router.oneshot(req).await
                })
            }
        }
    }
}

/// Answers a `POST /` that came through the router (verified by the middleware): its
/// `X-Amz-Target` names no service in the table (claimed targets never reach the router, see
/// [`ControlApp::direct`]), so it is `UnknownOperationException`.
async fn unknown_target(req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let protocol = match gust_aws::auth::protocol_of(&parts) {
        gust_aws::Protocol::Json11 => gust_aws::Protocol::Json11,
        _ => gust_aws::Protocol::Json10,
    };
    gust_aws::AwsError::new(400, "UnknownOperationException", "")
        .with_protocol(protocol)
        .with_type_prefix("com.amazon.coral.service")
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use gust_aws::sigv4::{sign_headers, Credentials, SigningParams};
    use http::{HeaderValue, StatusCode, Uri};
    use tower::ServiceExt;

    /// Answers with what it was handed, to show which path a request took.
    struct Echo;

    impl TargetService for Echo {
        fn serve<'a>(
            &'a self,
            headers: &'a HeaderMap,
            body: Bytes,
            request_id: String,
        ) -> ResponseFuture<'a> {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            Box::pin(async move {
                format!(
                    "{target} {} {}",
                    String::from_utf8_lossy(&body),
                    !request_id.is_empty()
                )
                .into_response()
            })
        }
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDGUST".into(),
            secret_access_key: "secret".into(),
        }
    }

    fn app() -> ControlApp {
        let lookup: Arc<dyn CredentialLookup> = Arc::new(creds());
        control_app_with(
            Router::new(),
            vec![(
                "DynamoDB_20120810.",
                Arc::new(Echo) as Arc<dyn TargetService>,
            )],
            lookup,
        )
    }

    fn request(target: &str, service: &str, secret: &str, body: &str) -> Request {
        let uri: Uri = "http://localhost:4566/".parse().expect("uri");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(target).expect("target"),
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        let creds = Credentials {
            secret_access_key: secret.into(),
            ..creds()
        };
        sign_headers(
            &Method::POST,
            &uri,
            &mut headers,
            body.as_bytes(),
            &creds,
            &SigningParams {
                region: "us-east-1",
                service,
                time: time::OffsetDateTime::now_utc(),
            },
        );
        let mut req = Request::new(Body::from(body.to_owned()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = "/".parse().expect("path");
        *req.headers_mut() = headers;
        req
    }

    async fn send(req: Request) -> (StatusCode, String) {
        let resp = app().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_claimed_target_is_verified_and_served_directly() {
        let (status, body) =
            send(request("DynamoDB_20120810.Op", "dynamodb", "secret", "{}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, "DynamoDB_20120810.Op {} true");
    }

    #[tokio::test]
    async fn a_bad_signature_on_the_direct_path_is_rejected_in_the_request_protocol() {
        let (status, body) = send(request("DynamoDB_20120810.Op", "dynamodb", "wrong", "{}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("InvalidSignatureException"), "{body}");
    }

    #[tokio::test]
    async fn a_signature_for_another_service_is_rejected_on_the_direct_path() {
        let (status, body) = send(request("DynamoDB_20120810.Op", "lambda", "secret", "{}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body.contains("Credential should be scoped to correct service"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn unclaimed_targets_take_the_router() {
        let (status, body) = send(request("Nobody_1.Op", "dynamodb", "secret", "{}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("UnknownOperationException"), "{body}");
        // Still behind the signature check.
        let (status, body) = send(request("Nobody_1.Op", "dynamodb", "wrong", "{}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("InvalidSignatureException"), "{body}");
    }

    #[tokio::test]
    async fn the_health_check_needs_no_signature() {
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = "/_gust/health".parse().expect("path");
        let (status, body) = send(req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "ok");
    }
}
