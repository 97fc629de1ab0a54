//! Turns an HTTP request into one typed [`Operation`]: the only place that looks at paths,
//! query strings, headers and raw bodies. Handlers receive plain values.
//!
//! Bodies are read here with a per-operation size limit, so an oversized upload or payload is
//! refused with Lambda's 413 before it is buffered whole.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gust_model::{limits, parse_function_ref};
use http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::error::LambdaError;
use crate::policy::AddPermissionRequest;
use crate::wire::{
    Concurrency, CreateFunctionRequest, FunctionUrlConfigRequest, TagResourceRequest,
    UpdateFunctionCodeRequest, UpdateFunctionConfigurationRequest,
};
use crate::{apis, handlers, invoke, policy, urls, Api};

/// Largest `CreateFunction` / `UpdateFunctionCode` body: a 50 MB zip in base64 plus the JSON
/// around it. The number is the one Lambda names in its 413 message.
pub const MAX_CODE_REQUEST: usize = 69_905_067;
/// Largest body of the other management operations.
const MAX_SMALL_REQUEST: usize = 1024 * 1024;

/// Which operation a route stands for; the router binds each (path, method) to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    CreateFunction,
    ListFunctions,
    GetFunction,
    GetFunctionConfiguration,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    DeleteFunction,
    DownloadCode,
    Invoke,
    InvokeWithResponseStream,
    PutFunctionConcurrency,
    GetFunctionConcurrency,
    DeleteFunctionConcurrency,
    TagResource,
    UntagResource,
    ListTags,
    GetAccountSettings,
    ReadLogs,
    CreateFunctionUrlConfig,
    GetFunctionUrlConfig,
    UpdateFunctionUrlConfig,
    DeleteFunctionUrlConfig,
    ListFunctionUrlConfigs,
    PutApi,
    GetApi,
    ListApis,
    DeleteApi,
    AddPermission,
    GetPolicy,
    RemovePermission,
}

/// `Invoke`'s `X-Amz-Invocation-Type` (`InvokeWithResponseStream` allows only
/// `RequestResponse` and `DryRun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

/// A parsed `Invoke` or `InvokeWithResponseStream`.
#[derive(Debug)]
pub struct InvokeInput {
    pub name: String,
    pub invocation_type: InvocationType,
    pub tail_log: bool,
    pub client_context: Option<String>,
    /// Never empty: an empty body is delivered as `{}`, as Lambda does.
    pub payload: Bytes,
}

/// A parsed request. Function names are resolved to plain names (ARNs and `$LATEST`
/// qualifiers accepted); any other qualifier was already refused.
#[derive(Debug)]
pub enum Operation {
    CreateFunction(Box<CreateFunctionRequest>),
    ListFunctions {
        marker: Option<String>,
        max_items: usize,
    },
    GetFunction {
        name: String,
    },
    GetFunctionConfiguration {
        name: String,
    },
    UpdateFunctionCode {
        name: String,
        input: UpdateFunctionCodeRequest,
    },
    UpdateFunctionConfiguration {
        name: String,
        input: Box<UpdateFunctionConfigurationRequest>,
    },
    DeleteFunction {
        name: String,
    },
    DownloadCode {
        name: String,
    },
    Invoke(InvokeInput),
    InvokeWithResponseStream(InvokeInput),
    PutFunctionConcurrency {
        name: String,
        reserved: u32,
    },
    GetFunctionConcurrency {
        name: String,
    },
    DeleteFunctionConcurrency {
        name: String,
    },
    TagResource {
        name: String,
        tags: BTreeMap<String, String>,
    },
    UntagResource {
        name: String,
        keys: Vec<String>,
    },
    ListTags {
        name: String,
    },
    GetAccountSettings,
    /// Gust extension: `tail` set means the last `limit` lines, otherwise lines after `after`.
    ReadLogs {
        name: String,
        after: i64,
        limit: usize,
        tail: bool,
    },
    /// `qualifier` is an alias name (checked against the model's pattern; `$LATEST` and
    /// version numbers were refused), which Gust never has.
    CreateFunctionUrlConfig {
        name: String,
        qualifier: Option<String>,
        input: FunctionUrlConfigRequest,
    },
    GetFunctionUrlConfig {
        name: String,
        qualifier: Option<String>,
    },
    UpdateFunctionUrlConfig {
        name: String,
        qualifier: Option<String>,
        input: FunctionUrlConfigRequest,
    },
    DeleteFunctionUrlConfig {
        name: String,
        qualifier: Option<String>,
    },
    ListFunctionUrlConfigs {
        name: String,
        marker: Option<String>,
    },
    /// Gust extension: store an API definition (the raw JSON body).
    PutApi {
        name: String,
        body: Bytes,
    },
    GetApi {
        name: String,
    },
    ListApis,
    DeleteApi {
        name: String,
    },
    AddPermission {
        name: String,
        input: Box<AddPermissionRequest>,
    },
    GetPolicy {
        name: String,
    },
    RemovePermission {
        name: String,
        statement_id: String,
        revision_id: Option<String>,
    },
}

type BoxResponse = Pin<Box<dyn Future<Output = Response> + Send>>;

/// The axum handler for `route`: parse, dispatch, render.
pub(crate) fn endpoint(
    api: Api,
    route: Route,
) -> impl Fn(Request) -> BoxResponse + Clone + Send + Sync + 'static {
    move |req: Request| {
        let api = api.clone();
        Box::pin(async move {
            let request_id = gust_aws::request_id();
            let result = match Operation::parse(route, &api.state.region, req).await {
                Ok(op) => dispatch(&api, op, &request_id).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(resp) => resp,
                Err(e) => e.into_response_with_id(&request_id),
            }
        })
    }
}

async fn dispatch(api: &Api, op: Operation, request_id: &str) -> Result<Response, LambdaError> {
    use Operation as O;
    let resp = match op {
        O::CreateFunction(input) => handlers::create_function(api, *input).await?,
        O::ListFunctions { marker, max_items } => {
            handlers::list_functions(api, marker, max_items).await?
        }
        O::GetFunction { name } => handlers::get_function(api, &name).await?,
        O::GetFunctionConfiguration { name } => {
            handlers::get_function_configuration(api, &name).await?
        }
        O::UpdateFunctionCode { name, input } => {
            handlers::update_function_code(api, &name, input).await?
        }
        O::UpdateFunctionConfiguration { name, input } => {
            handlers::update_function_configuration(api, &name, *input).await?
        }
        O::DeleteFunction { name } => handlers::delete_function(api, &name).await?,
        O::DownloadCode { name } => return handlers::download_code(api, &name).await,
        O::Invoke(input) => return invoke::invoke(api, input, request_id).await,
        O::InvokeWithResponseStream(input) => {
            return invoke::invoke_with_response_stream(api, input, request_id).await
        }
        O::PutFunctionConcurrency { name, reserved } => {
            handlers::put_concurrency(api, &name, reserved).await?
        }
        O::GetFunctionConcurrency { name } => handlers::get_concurrency(api, &name).await?,
        O::DeleteFunctionConcurrency { name } => handlers::delete_concurrency(api, &name).await?,
        O::TagResource { name, tags } => handlers::tag_resource(api, &name, tags).await?,
        O::UntagResource { name, keys } => handlers::untag_resource(api, &name, keys).await?,
        O::ListTags { name } => handlers::list_tags(api, &name).await?,
        O::GetAccountSettings => handlers::get_account_settings(api).await?,
        O::ReadLogs {
            name,
            after,
            limit,
            tail,
        } => handlers::read_logs(api, &name, after, limit, tail).await?,
        O::CreateFunctionUrlConfig {
            name,
            qualifier,
            input,
        } => urls::create(api, &name, qualifier.as_deref(), input).await?,
        O::GetFunctionUrlConfig { name, qualifier } => {
            urls::get(api, &name, qualifier.as_deref()).await?
        }
        O::UpdateFunctionUrlConfig {
            name,
            qualifier,
            input,
        } => urls::update(api, &name, qualifier.as_deref(), input).await?,
        O::DeleteFunctionUrlConfig { name, qualifier } => {
            urls::delete(api, &name, qualifier.as_deref()).await?
        }
        O::ListFunctionUrlConfigs { name, marker } => {
            urls::list(api, &name, marker.as_deref()).await?
        }
        O::PutApi { name, body } => apis::put(api, &name, body).await?,
        O::GetApi { name } => apis::get(api, &name).await?,
        O::ListApis => apis::list(api).await?,
        O::DeleteApi { name } => apis::delete(api, &name).await?,
        O::AddPermission { name, input } => policy::add_permission(api, &name, *input).await?,
        O::GetPolicy { name } => policy::get_policy(api, &name).await?,
        O::RemovePermission {
            name,
            statement_id,
            revision_id,
        } => policy::remove_permission(api, &name, &statement_id, revision_id.as_deref()).await?,
    };
    Ok(resp.into_response(request_id))
}

/// What a management handler returns: a status and an optional JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: http::StatusCode,
    pub body: Option<Vec<u8>>,
}

impl Reply {
    pub(crate) fn json(status: u16, value: &impl serde::Serialize) -> Result<Reply, LambdaError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| LambdaError::Internal(format!("encoding the response: {e}")))?;
        Ok(Reply {
            status: status_code(status),
            body: Some(body),
        })
    }

    pub(crate) fn empty(status: u16) -> Reply {
        Reply {
            status: status_code(status),
            body: None,
        }
    }

    fn into_response(self, request_id: &str) -> Response {
        let mut resp = match self.body {
            Some(body) => (
                self.status,
                [(http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            None => self.status.into_response(),
        };
        if let Ok(v) = http::HeaderValue::from_str(request_id) {
            resp.headers_mut().insert(gust_aws::REQUEST_ID_HEADER, v);
        }
        resp
    }
}

fn status_code(status: u16) -> http::StatusCode {
    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

impl Operation {
    /// Parses `req`, which the router matched to `route`.
    pub async fn parse(route: Route, region: &str, req: Request) -> Result<Operation, LambdaError> {
        let (mut parts, body) = req.into_parts();
        let params = path_params(&mut parts).await?;
        let path = params.first().map(|(_, v)| v.clone());
        let query = query_pairs(&parts.uri)?;
        let headers = &parts.headers;
        let name = || function_name(path.as_deref(), &query, region, true);
        let unqualified = || function_name(path.as_deref(), &query, region, false);
        let op = match route {
            Route::CreateFunction => {
                let body = read_body(
                    body,
                    MAX_CODE_REQUEST,
                    "CreateFunction",
                    "RequestEntityTooLargeException",
                )
                .await?;
                Operation::CreateFunction(Box::new(json_body(&body)?))
            }
            Route::ListFunctions => {
                let marker = query_value(&query, "Marker").map(str::to_string);
                let max_items = match query_value(&query, "MaxItems") {
                    None => 50,
                    Some(v) => match v.parse::<i64>() {
                        Ok(n @ 1..=10_000) => n as usize,
                        _ => {
                            return Err(LambdaError::InvalidParameter(format!(
                                "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000"
                            )))
                        }
                    },
                };
                Operation::ListFunctions { marker, max_items }
            }
            Route::GetFunction => Operation::GetFunction { name: name()? },
            Route::GetFunctionConfiguration => {
                Operation::GetFunctionConfiguration { name: name()? }
            }
            Route::DeleteFunction => {
                if let Some(q) = qualifier(path.as_deref(), &query) {
                    let name = unqualified_name(path.as_deref())?;
                    return Err(if q == "$LATEST" {
                        LambdaError::InvalidParameter(
                            "$LATEST version cannot be deleted without deleting the function."
                                .into(),
                        )
                    } else {
                        LambdaError::FunctionNotFound(format!(
                            "{}:{q}",
                            gust_model::function_arn(region, &name)
                        ))
                    });
                }
                Operation::DeleteFunction { name: name()? }
            }
            Route::DownloadCode => Operation::DownloadCode { name: name()? },
            Route::UpdateFunctionCode => {
                let name = unqualified()?;
                let body = read_body(
                    body,
                    MAX_CODE_REQUEST,
                    "UpdateFunctionCode",
                    "RequestEntityTooLargeException",
                )
                .await?;
                Operation::UpdateFunctionCode {
                    name,
                    input: json_body(&body)?,
                }
            }
            Route::UpdateFunctionConfiguration => {
                let name = unqualified()?;
                let body = read_small_body(body, "UpdateFunctionConfiguration").await?;
                Operation::UpdateFunctionConfiguration {
                    name,
                    input: Box::new(json_body(&body)?),
                }
            }
            Route::Invoke => Operation::Invoke(parse_invoke(name()?, headers, body, false).await?),
            Route::InvokeWithResponseStream => Operation::InvokeWithResponseStream(
                parse_invoke(name()?, headers, body, true).await?,
            ),
            Route::PutFunctionConcurrency => {
                let name = unqualified()?;
                let body = read_small_body(body, "PutFunctionConcurrency").await?;
                let c: Concurrency = json_body(&body)?;
                let reserved = c.reserved_concurrent_executions.ok_or_else(|| {
                    LambdaError::InvalidParameter(
                        "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null".into(),
                    )
                })?;
                Operation::PutFunctionConcurrency { name, reserved }
            }
            Route::GetFunctionConcurrency => Operation::GetFunctionConcurrency {
                name: unqualified()?,
            },
            Route::DeleteFunctionConcurrency => Operation::DeleteFunctionConcurrency {
                name: unqualified()?,
            },
            Route::TagResource => {
                let name = unqualified()?;
                let body = read_small_body(body, "TagResource").await?;
                let t: TagResourceRequest = json_body(&body)?;
                Operation::TagResource { name, tags: t.tags }
            }
            Route::UntagResource => {
                let keys = query
                    .iter()
                    .filter(|(k, _)| k == "tagKeys")
                    .map(|(_, v)| v.clone())
                    .collect();
                Operation::UntagResource {
                    name: unqualified()?,
                    keys,
                }
            }
            Route::ListTags => Operation::ListTags {
                name: unqualified()?,
            },
            Route::GetAccountSettings => Operation::GetAccountSettings,
            Route::ReadLogs => {
                let number =
                    |key: &str, default: i64, min: i64, max: i64| -> Result<i64, LambdaError> {
                        match query_value(&query, key) {
                            None => Ok(default),
                            Some(v) => match v.parse::<i64>() {
                                Ok(n) if (min..=max).contains(&n) => Ok(n),
                                _ => Err(LambdaError::InvalidParameter(format!(
                                "Value '{v}' at '{key}' must be an integer between {min} and {max}"
                            ))),
                            },
                        }
                    };
                let tail = query_value(&query, "tail").is_some();
                let limit = if tail {
                    number("tail", 100, 1, 10_000)?
                } else {
                    number("limit", 100, 1, 10_000)?
                };
                let after = number("after", 0, i64::MIN, i64::MAX)?;
                Operation::ReadLogs {
                    name: unqualified()?,
                    after,
                    limit: limit as usize,
                    tail,
                }
            }
            Route::CreateFunctionUrlConfig | Route::UpdateFunctionUrlConfig => {
                let (name, qualifier) = url_function(path.as_deref(), &query)?;
                let operation = if route == Route::CreateFunctionUrlConfig {
                    "CreateFunctionUrlConfig"
                } else {
                    "UpdateFunctionUrlConfig"
                };
                let body = read_small_body(body, operation).await?;
                let input = json_body(&body)?;
                if route == Route::CreateFunctionUrlConfig {
                    Operation::CreateFunctionUrlConfig {
                        name,
                        qualifier,
                        input,
                    }
                } else {
                    Operation::UpdateFunctionUrlConfig {
                        name,
                        qualifier,
                        input,
                    }
                }
            }
            Route::GetFunctionUrlConfig => {
                let (name, qualifier) = url_function(path.as_deref(), &query)?;
                Operation::GetFunctionUrlConfig { name, qualifier }
            }
            Route::DeleteFunctionUrlConfig => {
                let (name, qualifier) = url_function(path.as_deref(), &query)?;
                Operation::DeleteFunctionUrlConfig { name, qualifier }
            }
            Route::ListFunctionUrlConfigs => {
                if let Some(v) = query_value(&query, "MaxItems") {
                    match v.parse::<i64>() {
                        Ok(1..=50) => {}
                        Ok(n) if n < 1 => {
                            return Err(LambdaError::Validation(format!(
                                "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1"
                            )))
                        }
                        Ok(_) => {
                            return Err(LambdaError::Validation(format!(
                                "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 50"
                            )))
                        }
                        Err(_) => {
                            return Err(LambdaError::InvalidParameter(format!(
                                "Value '{v}' at 'maxItems' is not an integer"
                            )))
                        }
                    }
                }
                Operation::ListFunctionUrlConfigs {
                    name: unqualified()?,
                    marker: query_value(&query, "Marker").map(str::to_string),
                }
            }
            Route::PutApi => {
                let body = read_small_body(body, "PutApi").await?;
                Operation::PutApi {
                    name: path.unwrap_or_default(),
                    body,
                }
            }
            Route::GetApi => Operation::GetApi {
                name: path.unwrap_or_default(),
            },
            Route::ListApis => Operation::ListApis,
            Route::DeleteApi => Operation::DeleteApi {
                name: path.unwrap_or_default(),
            },
            Route::AddPermission => {
                if let Some(q) = qualifier(path.as_deref(), &query) {
                    let name = unqualified_name(path.as_deref())?;
                    return Err(if q == "$LATEST" {
                        LambdaError::InvalidParameter(
                            "We currently do not support adding policies for $LATEST.".into(),
                        )
                    } else {
                        LambdaError::FunctionNotFound(format!(
                            "{}:{q}",
                            gust_model::function_arn(region, &name)
                        ))
                    });
                }
                let name = name()?;
                let body = read_small_body(body, "AddPermission").await?;
                Operation::AddPermission {
                    name,
                    input: Box::new(json_body(&body)?),
                }
            }
            Route::GetPolicy => Operation::GetPolicy { name: name()? },
            Route::RemovePermission => Operation::RemovePermission {
                name: name()?,
                statement_id: params
                    .iter()
                    .find(|(k, _)| k == "StatementId")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
                revision_id: query_value(&query, "RevisionId").map(str::to_string),
            },
        };
        Ok(op)
    }
}

/// Lambda's refusal of an `X-Amz-Invocation-Type` of `Invoke`, or of
/// `InvokeWithResponseStream` when `streaming` (which has no `Event`).
pub(crate) fn invocation_type_error(value: &str, streaming: bool) -> LambdaError {
    let allowed = if streaming {
        "[RequestResponse, DryRun]"
    } else {
        "[Event, RequestResponse, DryRun]"
    };
    LambdaError::InvalidParameter(format!(
        "1 validation error detected: Value '{value}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: {allowed}"
    ))
}

/// The headers and payload of `Invoke`, or of `InvokeWithResponseStream` when `streaming`
/// (whose `InvocationType` has no `Event`).
async fn parse_invoke(
    name: String,
    headers: &HeaderMap,
    body: axum::body::Body,
    streaming: bool,
) -> Result<InvokeInput, LambdaError> {
    let invocation_type = match header(headers, "x-amz-invocation-type")? {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") if !streaming => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => return Err(invocation_type_error(other, streaming)),
    };
    let tail_log = match header(headers, "x-amz-log-type")? {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(LambdaError::InvalidParameter(format!(
                "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]"
            )))
        }
    };
    let client_context = header(headers, "x-amz-client-context")?.map(str::to_string);
    let limit = match invocation_type {
        InvocationType::Event => limits::MAX_ASYNC_PAYLOAD,
        _ => limits::MAX_SYNC_PAYLOAD,
    };
    let payload = read_body(body, limit, "InvokeFunction", "RequestTooLargeException").await?;
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    if invocation_type != InvocationType::DryRun {
        // Validating without building a tree: the runtime hands the payload on as bytes.
        serde_json::from_slice::<serde::de::IgnoredAny>(&payload).map_err(|e| {
            LambdaError::InvalidRequestContent(format!("Could not parse payload into json: {e}"))
        })?;
    }
    Ok(InvokeInput {
        name,
        invocation_type,
        tail_log,
        client_context,
        payload,
    })
}

/// The `{…}` path parameters of the matched route (already percent-decoded by axum), in
/// order; the first is the function (or API) name.
async fn path_params(
    parts: &mut http::request::Parts,
) -> Result<Vec<(String, String)>, LambdaError> {
    use axum::extract::rejection::RawPathParamsRejection;
    use axum::extract::FromRequestParts;
    match axum::extract::RawPathParams::from_request_parts(parts, &()).await {
        Ok(params) => Ok(params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()),
        Err(RawPathParamsRejection::MissingPathParams(_)) => Ok(Vec::new()),
        Err(e) => Err(LambdaError::InvalidParameter(e.body_text())),
    }
}

fn query_pairs(uri: &http::Uri) -> Result<Vec<(String, String)>, LambdaError> {
    if uri.query().is_none() {
        return Ok(Vec::new());
    }
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| {
            LambdaError::InvalidParameter(format!("malformed query string: {}", e.body_text()))
        })
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, LambdaError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            LambdaError::InvalidParameter(format!("the {name} header is not valid text"))
        }),
    }
}

fn invalid_name(raw: &str) -> LambdaError {
    let message = gust_model::function::validate_name(raw)
        .err()
        .map(|e| e.0)
        .unwrap_or_else(|| format!("Value '{raw}' at 'functionName' is not a valid function name"));
    LambdaError::InvalidParameter(message)
}

fn unqualified_name(raw: Option<&str>) -> Result<String, LambdaError> {
    let raw = raw.unwrap_or_default();
    parse_function_ref(raw)
        .map(|r| r.name)
        .ok_or_else(|| invalid_name(raw))
}

/// The qualifier named by the path (`name:q`) or the `Qualifier` query parameter.
fn qualifier(raw: Option<&str>, query: &[(String, String)]) -> Option<String> {
    query_value(query, "Qualifier")
        .map(str::to_string)
        .or_else(|| raw.and_then(parse_function_ref).and_then(|r| r.qualifier))
}

/// Resolves the `FunctionName` path parameter (name, partial or full ARN) and its qualifier.
/// Gust has only `$LATEST`: another qualifier names a version that does not exist, and
/// operations that take no qualifier (`allow_qualifier == false`) refuse one outright.
fn function_name(
    raw: Option<&str>,
    query: &[(String, String)],
    region: &str,
    allow_qualifier: bool,
) -> Result<String, LambdaError> {
    let raw = raw.unwrap_or_default();
    let r = parse_function_ref(raw).ok_or_else(|| invalid_name(raw))?;
    let from_query = query_value(query, "Qualifier");
    if let (Some(a), Some(b)) = (r.qualifier.as_deref(), from_query) {
        if a != b {
            return Err(LambdaError::InvalidParameter(
                "The derived qualifier from the function name does not match the specified qualifier.".into(),
            ));
        }
    }
    match r.qualifier.as_deref().or(from_query) {
        None | Some("$LATEST") => Ok(r.name),
        Some(q) if allow_qualifier => Err(LambdaError::FunctionNotFound(format!(
            "{}:{q}",
            gust_model::function_arn(region, &r.name)
        ))),
        Some(q) => Err(LambdaError::InvalidParameter(format!(
            "Gust functions have only $LATEST; the qualifier '{q}' is not supported here"
        ))),
    }
}

/// The function and alias of a function URL operation. The qualifier must match
/// `FunctionUrlQualifier` (`((?!^\d+$)^[0-9a-zA-Z-_]+$)`): `$LATEST` and version numbers are
/// refused with Lambda's `ValidationException`s.
fn url_function(
    raw: Option<&str>,
    query: &[(String, String)],
) -> Result<(String, Option<String>), LambdaError> {
    let raw = raw.unwrap_or_default();
    let r = parse_function_ref(raw).ok_or_else(|| invalid_name(raw))?;
    let from_query = query_value(query, "Qualifier");
    if let (Some(a), Some(b)) = (r.qualifier.as_deref(), from_query) {
        if a != b {
            return Err(LambdaError::InvalidParameter(
                "The derived qualifier from the function name does not match the specified qualifier.".into(),
            ));
        }
    }
    let Some(q) = r.qualifier.as_deref().or(from_query) else {
        return Ok((r.name, None));
    };
    let pattern_ok = !q.is_empty()
        && q.len() <= 128
        && q.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if q.chars().all(|c| c.is_ascii_digit()) && !q.is_empty() {
        return Err(LambdaError::Validation(format!(
            "1 validation error detected: Value '{q}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (^\\$LATEST$)|((?!^[0-9]+$)([a-zA-Z0-9-_]+))"
        )));
    }
    if !pattern_ok {
        return Err(LambdaError::Validation(format!(
            "1 validation error detected: Value '{q}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)"
        )));
    }
    Ok((r.name, Some(q.to_string())))
}

async fn read_small_body(
    body: axum::body::Body,
    operation: &'static str,
) -> Result<Bytes, LambdaError> {
    read_body(
        body,
        MAX_SMALL_REQUEST,
        operation,
        "RequestEntityTooLargeException",
    )
    .await
}

/// Buffers at most `limit` bytes; more is Lambda's 413 with `code`.
async fn read_body(
    body: axum::body::Body,
    limit: usize,
    operation: &'static str,
    code: &'static str,
) -> Result<Bytes, LambdaError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(LambdaError::TooLarge {
            code,
            limit,
            operation,
        }),
        Err(e) => Err(LambdaError::Serialization(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Decodes a JSON body: malformed JSON is a `SerializationException`, a document of the wrong
/// shape an `InvalidParameterValueException`, as Lambda's front end answers.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, LambdaError> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            LambdaError::InvalidParameter(format!("invalid request: {e}"))
        }
        _ => LambdaError::Serialization(format!("could not parse the request body as JSON: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn function_names_and_qualifiers() {
        let r = "us-east-1";
        assert_eq!(
            function_name(Some("f"), &[], r, true).ok(),
            Some("f".into())
        );
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
        assert_eq!(
            function_name(Some(arn), &[], r, false).ok(),
            Some("f".into())
        );
        assert_eq!(
            function_name(Some("f:$LATEST"), &[], r, true).ok(),
            Some("f".into())
        );
        assert_eq!(
            function_name(Some("f"), &q(&[("Qualifier", "$LATEST")]), r, true).ok(),
            Some("f".into())
        );
        let e = function_name(Some("f:1"), &[], r, true)
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("ResourceNotFoundException"));
        let e = function_name(Some("f:1"), &[], r, false)
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("InvalidParameterValueException"));
        let e = function_name(Some("f:1"), &q(&[("Qualifier", "2")]), r, true)
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("InvalidParameterValueException"));
        let e = function_name(Some("bad name"), &[], r, true)
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("InvalidParameterValueException"));
    }

    #[test]
    fn url_qualifiers() {
        let ok = url_function(Some("f"), &[]).ok();
        assert_eq!(ok, Some(("f".to_string(), None)));
        let ok = url_function(Some("f"), &q(&[("Qualifier", "live")])).ok();
        assert_eq!(ok, Some(("f".to_string(), Some("live".to_string()))));
        let ok = url_function(Some("f:live"), &[]).ok();
        assert_eq!(ok, Some(("f".to_string(), Some("live".to_string()))));
        for bad in ["$LATEST", "1", "a.b"] {
            let e = url_function(Some("f"), &q(&[("Qualifier", bad)]))
                .err()
                .map(|e| e.code());
            assert_eq!(e, Some("ValidationException"), "{bad}");
        }
        let e = url_function(Some("f"), &q(&[("Qualifier", "$LATEST")]))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                r"1 validation error detected: Value '$LATEST' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)"
            )
        );
    }

    #[test]
    fn json_errors_are_classified() {
        let e = json_body::<Concurrency>(b"{not json")
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("SerializationException"));
        let e = json_body::<Concurrency>(br#"{"ReservedConcurrentExecutions":"x"}"#)
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("InvalidParameterValueException"));
        let c = json_body::<Concurrency>(b"")
            .ok()
            .and_then(|c| c.reserved_concurrent_executions);
        assert_eq!(c, None);
    }
}
