//! The request pipeline: choose the API route or function URL, check limits, answer CORS
//! preflights, collect the body, run the target (MOCK, event through the invoker, or raw
//! request to the Wasm handler), map the result, add CORS and request-id headers, and write
//! one access-log line. `RESPONSE_STREAM` function URLs hand their stream to [`crate::stream`];
//! for them the access line is written when the response head is sent.
//!
//! Every failure becomes the HTTP error of the API type that was addressed; nothing here
//! panics on client input.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_model::PayloadFormat;
use gust_runtime::{InvokeError, InvokeRequest, InvokeResponse, InvokeStream};
use http::header::{HeaderName, HeaderValue, ORIGIN};
use http::{request::Parts, Request, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::body::ResponseBody;
use crate::event_v1::{self, V1Route};
use crate::event_v2::{self, V2Kind};
use crate::request::{self, EventInput};
use crate::response::{map_v1, map_v2, Flavor, GatewayError};
use crate::routes::{CompiledApi, CompiledRoute, FunctionEntry, Snapshot, Target};
use crate::{stream, url, ConnInfo, Gateway};

/// A route and its decoded path parameters.
type RouteMatch<'s> = (&'s CompiledRoute, Vec<(String, String)>);

/// What the access log reports besides the request itself.
#[derive(Default)]
struct Outcome<'s> {
    api: &'s str,
    function: &'s str,
    cold_start: bool,
}

pub(crate) async fn handle<B>(
    gw: &Gateway,
    req: Request<B>,
    conn: ConnInfo,
) -> Response<ResponseBody>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let start = Instant::now();
    let request_id = gust_model::new_request_id();
    let (parts, body) = req.into_parts();
    let snapshot = gw.snapshot().await;
    let mut outcome = Outcome::default();
    let (mut resp, flavor) = match &snapshot {
        Some(snap) => dispatch(gw, snap, &parts, body, conn, &request_id, &mut outcome).await,
        None => (
            full(GatewayError::Internal.response(Flavor::Http)),
            Flavor::Http,
        ),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut()
            .insert(HeaderName::from_static(flavor.request_id_header()), v);
    }
    tracing::info!(
        target: "gust::access",
        method = parts.method.as_str(),
        path = parts.uri.path(),
        status = resp.status().as_u16(),
        latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        function = outcome.function,
        cold_start = outcome.cold_start,
        api = outcome.api,
        request_id = request_id.as_str(),
    );
    resp
}

async fn dispatch<'s, B>(
    gw: &Gateway,
    snap: &'s Snapshot,
    parts: &Parts,
    body: B,
    conn: ConnInfo,
    request_id: &str,
    outcome: &mut Outcome<'s>,
) -> (Response<ResponseBody>, Flavor)
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let host = request::host_of(parts);
    let path = parts.uri.path();
    if let Some(id) = url::from_host(host) {
        let resp = function_url(gw, snap, parts, body, conn, request_id, id, path, outcome).await;
        return (resp, Flavor::Url);
    }
    if let Some(m) = url::from_path(path) {
        let resp = function_url(
            gw, snap, parts, body, conn, request_id, m.url_id, m.raw_path, outcome,
        )
        .await;
        return (resp, Flavor::Url);
    }

    // APIs whose stage prefixes the path are tried before stageless ones.
    let candidates = snap.apis_for_host(host);
    let staged = candidates
        .iter()
        .map(|&i| &snap.apis[i])
        .filter(|a| a.stage.is_some());
    let unstaged = candidates
        .iter()
        .map(|&i| &snap.apis[i])
        .filter(|a| a.stage.is_none());
    let ordered = || {
        staged
            .clone()
            .chain(unstaged.clone())
            .filter_map(|a| a.strip_stage(path).map(|p| (a, p)))
    };
    let method = parts.method.as_str();
    let mut chosen: Option<(&CompiledApi, &str, Option<RouteMatch<'_>>)> = None;
    for (api, sub) in ordered() {
        if let Some(found) = api.find(method, sub) {
            chosen = Some((api, sub, Some(found)));
            break;
        }
    }
    if chosen.is_none() {
        chosen = ordered()
            .find(|(a, _)| a.default_route.is_some())
            .map(|(a, sub)| (a, sub, a.default_route.as_ref().map(|r| (r, Vec::new()))));
    }
    if chosen.is_none() {
        chosen = ordered().next().map(|(a, sub)| (a, sub, None));
    }
    let Some((api, sub, found)) = chosen else {
        return (
            full(GatewayError::NotFound.response(Flavor::Http)),
            Flavor::Http,
        );
    };
    let flavor = match api.format {
        PayloadFormat::V1 => Flavor::Rest,
        PayloadFormat::V2 => Flavor::Http,
    };
    outcome.api = &api.name;
    // Preflights are answered for any path, route or not, and keep their own headers.
    if let Some(pre) = api
        .cors
        .as_ref()
        .and_then(|c| c.preflight(&parts.method, &parts.headers))
    {
        return (full(pre), flavor);
    }
    let mut resp = api_request(
        gw, snap, api, sub, found, parts, body, conn, request_id, flavor, outcome,
    )
    .await;
    if let Some(cors) = &api.cors {
        cors.apply(parts.headers.get(ORIGIN), resp.headers_mut());
    }
    (resp, flavor)
}

/// A whole-buffer response as the gateway's response type.
fn full(resp: Response<Bytes>) -> Response<ResponseBody> {
    resp.map(ResponseBody::full)
}

#[allow(clippy::too_many_arguments)] // one call site; the pieces are the routing result
async fn api_request<'s, B>(
    gw: &Gateway,
    snap: &'s Snapshot,
    api: &'s CompiledApi,
    sub_path: &str,
    found: Option<RouteMatch<'s>>,
    parts: &Parts,
    body: B,
    conn: ConnInfo,
    request_id: &str,
    flavor: Flavor,
    outcome: &mut Outcome<'s>,
) -> Response<ResponseBody>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if headers_too_large(gw, parts) {
        return full(GatewayError::HeadersTooLarge.response(flavor));
    }
    let Some((route, params)) = found else {
        return full(GatewayError::NotFound.response(flavor));
    };
    let body = match collect(body, parts, gw.config.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return full(e.response(flavor)),
    };
    let name = match &route.target {
        Target::Mock(m) => {
            let mut resp = Response::new(ResponseBody::full(m.body.clone()));
            *resp.status_mut() = m.status;
            *resp.headers_mut() = m.headers.clone();
            return resp;
        }
        Target::Function(name) => name,
    };
    outcome.function = name;
    let Some(entry) = snap.functions.get(name) else {
        tracing::warn!(api = %api.name, route = %route.route_key, function = %name, "the route's function does not exist");
        return full(GatewayError::Internal.response(flavor));
    };
    if entry.wasm {
        return raw_http(
            gw,
            entry,
            parts,
            parts.uri.path(),
            body,
            Some(api.timeout),
            flavor,
        )
        .await;
    }
    let headers = forwarded_headers(parts, conn);
    let input = EventInput {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
        source_ip: request::source_ip(conn.peer),
        request_id,
        now: time::OffsetDateTime::now_utc(),
        domain_name: request::host_of(parts),
        api_id: &api.name,
        stage: api.stage.as_deref().unwrap_or("$default"),
    };
    let payload = match api.format {
        PayloadFormat::V1 => event_v1::build(
            &input,
            &V1Route {
                resource: &route.resource,
                path: sub_path,
                path_parameters: &params,
                stage_variables: api.stage_variables.as_ref(),
            },
        ),
        PayloadFormat::V2 => event_v2::build(
            &input,
            V2Kind::Api {
                route_key: &route.route_key,
                path_parameters: &params,
                stage_variables: api.stage_variables.as_ref(),
            },
        ),
    };
    full(
        match invoke(gw, entry, payload, request_id, Some(api.timeout)).await {
            Ok(r) => {
                outcome.cold_start = r.cold_start;
                map_result(&r, flavor)
            }
            Err(e) => e.response(flavor),
        },
    )
}

#[allow(clippy::too_many_arguments)] // the routing result plus the request
async fn function_url<'s, B>(
    gw: &Gateway,
    snap: &'s Snapshot,
    parts: &Parts,
    body: B,
    conn: ConnInfo,
    request_id: &str,
    url_id: &str,
    raw_path: &str,
    outcome: &mut Outcome<'s>,
) -> Response<ResponseBody>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let flavor = Flavor::Url;
    let found = if url_id.bytes().any(|b| b.is_ascii_uppercase()) {
        snap.urls.get(&url_id.to_ascii_lowercase())
    } else {
        snap.urls.get(url_id)
    };
    let Some(cfg) = found else {
        return full(GatewayError::NotFound.response(flavor));
    };
    outcome.function = &cfg.function;
    if headers_too_large(gw, parts) {
        return full(GatewayError::HeadersTooLarge.response(flavor));
    }
    if let Some(cors) = &cfg.cors {
        if let Some(pre) = cors.preflight(&parts.method, &parts.headers) {
            return full(pre);
        }
    }
    let mut resp = 'resp: {
        let body = match collect(body, parts, gw.config.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => break 'resp full(e.response(flavor)),
        };
        let authorizer = if cfg.iam {
            match url::authorize(parts, &body, gw.deps.credentials.as_ref()) {
                Some(a) => Some(a),
                None => break 'resp full(GatewayError::Forbidden.response(flavor)),
            }
        } else {
            None
        };
        let Some(entry) = snap.functions.get(&cfg.function) else {
            tracing::warn!(url_id, function = %cfg.function, "the function URL's function does not exist");
            break 'resp full(GatewayError::Internal.response(flavor));
        };
        if entry.wasm {
            break 'resp raw_http(gw, entry, parts, raw_path, body, None, flavor).await;
        }
        let headers = forwarded_headers(parts, conn);
        let domain = url::domain_name(url_id, &gw.config.region);
        let input = EventInput {
            method: parts.method.as_str(),
            raw_path,
            raw_query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            body: &body,
            source_ip: request::source_ip(conn.peer),
            request_id,
            now: time::OffsetDateTime::now_utc(),
            domain_name: &domain,
            api_id: url_id,
            stage: "$default",
        };
        let payload = event_v2::build(&input, V2Kind::Url { authorizer });
        if cfg.stream {
            let streamed = match invoke_stream(gw, entry, payload, request_id).await {
                Ok(s) => stream::respond(s, request_id).await,
                Err(e) => Err(e),
            };
            break 'resp match streamed {
                Ok(out) => {
                    outcome.cold_start = out.cold_start;
                    out.response
                }
                Err(e) => full(e.response(flavor)),
            };
        }
        full(match invoke(gw, entry, payload, request_id, None).await {
            Ok(r) => {
                outcome.cold_start = r.cold_start;
                map_result(&r, flavor)
            }
            Err(e) => e.response(flavor),
        })
    };
    if let Some(cors) = &cfg.cors {
        cors.apply(parts.headers.get(ORIGIN), resp.headers_mut());
    }
    resp
}

/// The request line plus header values against API Gateway's 10,240-byte quota (431 when over,
/// as API Gateway answers).
fn headers_too_large(gw: &Gateway, parts: &Parts) -> bool {
    let target = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    let mut n = parts.method.as_str().len()
        + target
        + parts.uri.authority().map_or(0, |a| a.as_str().len())
        + 10;
    // The quota counts the request line and header values (not names).
    for v in parts.headers.values() {
        n += v.len();
    }
    n > gw.config.max_header_bytes
}

/// Reads the whole body, refusing more than `limit` bytes.
async fn collect<B>(body: B, parts: &Parts, limit: usize) -> Result<Bytes, GatewayError>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::BodyTooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(GatewayError::BodyTooLarge),
        Err(_) => Err(GatewayError::BadRequest),
    }
}

/// The headers API Gateway adds before the integration sees the request.
fn forwarded_headers(parts: &Parts, conn: ConnInfo) -> http::HeaderMap {
    let mut headers = parts.headers.clone();
    let ip = request::source_ip(conn.peer);
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-port", HeaderValue::from(conn.local.port()));
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    headers
}

/// Runs the function with an event; the integration timeout (if any) stops waiting, while the
/// invocation itself runs on to its own deadline.
async fn invoke(
    gw: &Gateway,
    entry: &FunctionEntry,
    payload: Vec<u8>,
    request_id: &str,
    timeout: Option<Duration>,
) -> Result<InvokeResponse, GatewayError> {
    let req = invoke_request(entry, payload, request_id);
    let result = match timeout {
        Some(t) => {
            let invoker = gw.deps.invoker.clone();
            let task = tokio::spawn(async move { invoker.invoke(req).await });
            match tokio::time::timeout(t, task).await {
                Err(_) => return Err(GatewayError::Timeout),
                Ok(Err(join)) => {
                    tracing::warn!(error = %join, "invocation task failed");
                    return Err(GatewayError::Internal);
                }
                Ok(Ok(r)) => r,
            }
        }
        None => gw.deps.invoker.invoke(req).await,
    };
    result.map_err(invoke_error)
}

/// The invocation of `entry` the gateway hands its executor.
fn invoke_request(entry: &FunctionEntry, payload: Vec<u8>, request_id: &str) -> InvokeRequest {
    InvokeRequest {
        function: entry.record.clone(),
        payload: Bytes::from(payload),
        request_id: request_id.to_string(),
        client_context: None,
        tail_log: false,
    }
}

/// Runs the function of a `RESPONSE_STREAM` URL; returns once it has started its response
/// (function URLs have no integration timeout).
async fn invoke_stream(
    gw: &Gateway,
    entry: &FunctionEntry,
    payload: Vec<u8>,
    request_id: &str,
) -> Result<InvokeStream, GatewayError> {
    let req = invoke_request(entry, payload, request_id);
    gw.deps
        .invoker
        .invoke_stream(req)
        .await
        .map_err(invoke_error)
}

fn invoke_error(e: InvokeError) -> GatewayError {
    match e {
        InvokeError::Throttled { .. } => GatewayError::Throttled,
        other => {
            tracing::warn!(error = %other, "invocation could not run");
            GatewayError::Internal
        }
    }
}

fn map_result(r: &InvokeResponse, flavor: Flavor) -> Response<Bytes> {
    if r.function_error.is_some() {
        return GatewayError::FunctionError.response(flavor);
    }
    let mapped = match flavor {
        Flavor::Rest => map_v1(&r.payload),
        Flavor::Http | Flavor::Url => map_v2(&r.payload),
    };
    mapped.unwrap_or_else(|e| e.response(flavor))
}

/// Hands a `wasm` function the request itself, with `path` as its path. A function still
/// writing its body after sending its head streams the rest (`HttpHandler::handle_http_stream`);
/// the integration timeout, if any, is on the head.
async fn raw_http(
    gw: &Gateway,
    entry: &FunctionEntry,
    parts: &Parts,
    path: &str,
    body: Bytes,
    timeout: Option<Duration>,
    flavor: Flavor,
) -> Response<ResponseBody> {
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query);
    if let Some(h) = builder.headers_mut() {
        *h = parts.headers.clone();
    }
    let Ok(req) = builder.body(body) else {
        return full(GatewayError::BadRequest.response(flavor));
    };
    let handler = gw.deps.http.clone();
    let record: Arc<gust_model::FunctionRecord> = entry.record.clone();
    let result = match timeout {
        Some(t) => {
            let task = tokio::spawn(async move { handler.handle_http_stream(record, req).await });
            match tokio::time::timeout(t, task).await {
                Err(_) => return full(GatewayError::Timeout.response(flavor)),
                Ok(Err(_)) => return full(GatewayError::Internal.response(flavor)),
                Ok(Ok(r)) => r,
            }
        }
        None => handler.handle_http_stream(record, req).await,
    };
    match result {
        Ok(resp) => resp.map(ResponseBody::raw),
        Err(e) => full(invoke_error(e).response(flavor)),
    }
}
