//! The Lambda API (`/2015-03-31/functions…` and friends) on the control endpoint, plus the
//! worker that runs queued `Event` invocations.
//!
//! botocore's `lambda/2015-03-31/service-2.json` is the specification: paths, status codes,
//! field names, error codes and error shapes follow it so that boto3 and the AWS CLI work
//! unmodified. The crate is layered the way garage's S3 API is:
//!
//! - [`request`]: every HTTP request becomes one typed [`request::Operation`] in one place
//!   (path parameters, query, headers, body limits, JSON decoding);
//! - `handlers` (management operations), `urls` (function URLs), `apis` (the APIs extension)
//!   and `invoke` (`Invoke` and `InvokeWithResponseStream`): plain async functions, one per
//!   operation, that take a typed input and return a typed output or a [`LambdaError`];
//! - [`eventstream`]: the `application/vnd.amazon.eventstream` framing of
//!   `InvokeWithResponseStream`'s body;
//! - [`wire`]: the JSON shapes Lambda sends and receives;
//! - [`error`]: [`LambdaError`], which knows each failure's AWS code, status and message and
//!   renders through [`gust_aws::error::AwsError`];
//! - `worker`: the asynchronous-invocation worker ([`spawn_event_worker`]).
//!
//! Gust keeps only `$LATEST` (no versions, aliases, layers, VPCs or destinations). Two Gust
//! extensions live here and are signed like every other request:
//!
//! - `GustProvisionedConcurrency` (integer) in the `CreateFunction` and
//!   `UpdateFunctionConfiguration` bodies sets how many environments are kept warm. botocore
//!   never sends it; the `gust` CLI does, from the manifest. Lambda itself only allows
//!   provisioned concurrency on published versions, which Gust does not have.
//! - `GET /gust/v1/functions/{name}/logs?after=<seq>&limit=<n>` (or `?tail=<n>`) returns
//!   `{"events":[{"seq","ts_ms","request_id","stream","message"}…]}` so the CLI can show and
//!   follow logs without a CloudWatch Logs API.
//! - `PUT`/`GET`/`DELETE /gust/v1/apis/{name}` and `GET /gust/v1/apis` manage the HTTP APIs
//!   the gateway serves (`apis`: a JSON [`gust_model::ApiDefinition`] in and out; the list is
//!   `{"apis":[…]}`).
//!
//! Function URLs (`/2021-10-31/functions/{name}/url[s]`, module `urls`) are Lambda's own
//! API; the gateway serves them. Resource policies (`AddPermission`, `GetPolicy`,
//! `RemovePermission`, module [`policy`]) are stored and reported but not enforced.
//!
//! `DeleteFunction` keeps the function's log lines, as Lambda keeps its CloudWatch log group;
//! the store's retention trims them. It deletes the function's URL (the store does so in the
//! same transaction) but not the API routes that name it: those answer with an error until the
//! function is back or the API changes.
//!
//! This crate does not verify signatures (the server puts SigV4 in front of [`router`]), does
//! not run code (it calls the [`gust_runtime::Invoker`]) and does not choose a store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use axum::routing::{get, post, put};
use axum::Router;
use gust_model::FunctionRecord;
use tokio::sync::Notify;

mod apis;
pub mod error;
pub mod eventstream;
mod handlers;
mod invoke;
pub mod policy;
pub mod request;
mod urls;
pub mod wire;
mod worker;

pub use error::LambdaError;
pub use urls::new_url_id;
pub use worker::spawn_event_worker;

use request::Route;

/// Everything the Lambda API needs from the rest of Gust. The server builds one and hands the
/// same `Arc` to [`router`] and [`spawn_event_worker`].
pub struct LambdaState {
    pub store: Arc<dyn gust_store::Store>,
    pub invoker: Arc<dyn gust_runtime::Invoker>,
    /// Region reported in ARNs.
    pub region: String,
    /// Base URL of the control endpoint, e.g. `http://127.0.0.1:9000`, for `Code.Location`.
    pub endpoint_url: String,
    /// Delays before each retry of a failed `Event` invocation; its length is the number of
    /// retries. Lambda retries twice, after about one and two minutes.
    pub event_retry_delays: Vec<Duration>,
    /// Credentials that presign `GetFunction`'s `Code.Location` (valid 10 minutes, like
    /// Lambda's S3 links), so any HTTP client can download the package; `None` leaves the
    /// URL unsigned, and the control endpoint then refuses it.
    pub code_url_credentials: Option<gust_aws::sigv4::Credentials>,
    /// Public base URL of the API gateway, e.g. `http://127.0.0.1:8080`: function URLs are
    /// reported as `{gateway_url}/lambda-url/{url_id}/`. `None` reports Lambda's own form,
    /// `https://{url_id}.lambda-url.{region}.on.aws/`.
    pub gateway_url: Option<String>,
}

impl LambdaState {
    /// Lambda's retry schedule for failed asynchronous invocations.
    pub fn lambda_retry_delays() -> Vec<Duration> {
        vec![Duration::from_secs(60), Duration::from_secs(120)]
    }
}

/// State derived from one [`LambdaState`] and shared by its router(s) and event worker: the
/// per-function write locks, the record cache and the worker's wake-up signal.
///
/// It lives outside `LambdaState` so that `LambdaState` stays a plain struct the server can
/// build with a literal; [`shared`] finds it by the identity of the `Arc<LambdaState>`.
pub(crate) struct Shared {
    /// Wakes the event worker after an enqueue.
    pub(crate) wake: Notify,
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Records by name. Filled on read and replaced on write, both under the function's lock,
    /// so a slow read can never put an outdated record back. This assumes functions are
    /// written only through this crate while the server runs.
    cache: RwLock<HashMap<String, Arc<FunctionRecord>>>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            wake: Notify::new(),
            locks: Mutex::new(HashMap::new()),
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Serializes every change (and cache fill) of one function.
    pub(crate) async fn lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            if locks.len() > 256 {
                locks.retain(|_, w| w.strong_count() > 0);
            }
            match locks.get(name).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(name.to_string(), Arc::downgrade(&m));
                    m
                }
            }
        };
        m.lock_owned().await
    }

    pub(crate) fn cached(&self, name: &str) -> Option<Arc<FunctionRecord>> {
        self.cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Call only while holding [`Shared::lock`] for the record's name.
    pub(crate) fn cache_put(&self, record: Arc<FunctionRecord>) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        cache.insert(record.config.name.clone(), record);
    }

    /// Call only while holding [`Shared::lock`] for `name`.
    pub(crate) fn cache_remove(&self, name: &str) {
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

type Registry = Mutex<Vec<(Weak<LambdaState>, Arc<Shared>)>>;
static REGISTRY: Registry = Mutex::new(Vec::new());

/// The [`Shared`] of this `LambdaState` (created on first use, dropped with the state).
pub(crate) fn shared(state: &Arc<LambdaState>) -> Arc<Shared> {
    let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    reg.retain(|(w, _)| w.strong_count() > 0);
    if let Some((_, s)) = reg
        .iter()
        .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(state)))
    {
        return s.clone();
    }
    let s = Arc::new(Shared::new());
    reg.push((Arc::downgrade(state), s.clone()));
    s
}

/// What every handler gets: the server's state and the derived shared state.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) state: Arc<LambdaState>,
    pub(crate) shared: Arc<Shared>,
}

/// The Lambda API as an axum router (no fallback, so the server can merge it with others).
pub fn router(state: Arc<LambdaState>) -> Router {
    let api = Api {
        shared: shared(&state),
        state,
    };
    let r = |route: Route| request::endpoint(api.clone(), route);
    Router::new()
        .route(
            "/2015-03-31/functions",
            post(r(Route::CreateFunction)).get(r(Route::ListFunctions)),
        )
        .route(
            "/2015-03-31/functions/",
            post(r(Route::CreateFunction)).get(r(Route::ListFunctions)),
        )
        .route(
            "/2015-03-31/functions/{FunctionName}",
            get(r(Route::GetFunction)).delete(r(Route::DeleteFunction)),
        )
        .route(
            "/2015-03-31/functions/{FunctionName}/configuration",
            get(r(Route::GetFunctionConfiguration)).put(r(Route::UpdateFunctionConfiguration)),
        )
        .route(
            "/2015-03-31/functions/{FunctionName}/code",
            put(r(Route::UpdateFunctionCode)).get(r(Route::DownloadCode)),
        )
        .route(
            "/2015-03-31/functions/{FunctionName}/invocations",
            post(r(Route::Invoke)),
        )
        .route(
            "/2021-11-15/functions/{FunctionName}/response-streaming-invocations",
            post(r(Route::InvokeWithResponseStream)),
        )
        .route(
            "/2017-10-31/functions/{FunctionName}/concurrency",
            put(r(Route::PutFunctionConcurrency)).delete(r(Route::DeleteFunctionConcurrency)),
        )
        .route(
            "/2019-09-30/functions/{FunctionName}/concurrency",
            get(r(Route::GetFunctionConcurrency)),
        )
        .route(
            "/2017-03-31/tags/{Resource}",
            get(r(Route::ListTags))
                .post(r(Route::TagResource))
                .delete(r(Route::UntagResource)),
        )
        .route(
            "/2016-08-19/account-settings",
            get(r(Route::GetAccountSettings)),
        )
        .route(
            "/2016-08-19/account-settings/",
            get(r(Route::GetAccountSettings)),
        )
        .route(
            "/gust/v1/functions/{FunctionName}/logs",
            get(r(Route::ReadLogs)),
        )
        .route(
            "/2021-10-31/functions/{FunctionName}/url",
            post(r(Route::CreateFunctionUrlConfig))
                .get(r(Route::GetFunctionUrlConfig))
                .put(r(Route::UpdateFunctionUrlConfig))
                .delete(r(Route::DeleteFunctionUrlConfig)),
        )
        .route(
            "/2021-10-31/functions/{FunctionName}/urls",
            get(r(Route::ListFunctionUrlConfigs)),
        )
        .route(
            "/2015-03-31/functions/{FunctionName}/policy",
            post(r(Route::AddPermission)).get(r(Route::GetPolicy)),
        )
        .route(
            "/2015-03-31/functions/{FunctionName}/policy/{StatementId}",
            axum::routing::delete(r(Route::RemovePermission)),
        )
        .route("/gust/v1/apis", get(r(Route::ListApis)))
        .route("/gust/v1/apis/", get(r(Route::ListApis)))
        .route(
            "/gust/v1/apis/{ApiName}",
            put(r(Route::PutApi))
                .get(r(Route::GetApi))
                .delete(r(Route::DeleteApi)),
        )
}
