//! One plain async function per management operation. Inputs are already parsed and names
//! resolved ([`crate::request`]); outputs are [`Reply`] values built from [`crate::wire`] types.
//!
//! Every change of a function happens under its lock ([`crate::Shared::lock`]): read the
//! record, check `RevisionId`, write, refresh the cache, tell the invoker. So concurrent
//! updates of one function are applied one after the other, each sees the previous one, and
//! the invoker hears of them in the order they were stored. Code packages are stored before
//! the lock is taken: they are content-addressed, so an unused one is harmless.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use gust_model::{limits, FunctionConfig, FunctionRecord, FUNCTION_SCHEMA_VERSION};

use crate::error::LambdaError;
use crate::request::{Reply, MAX_CODE_REQUEST};
use crate::wire::{
    AccountLimit, AccountUsage, Concurrency, CreateFunctionRequest, FunctionCode,
    FunctionCodeLocation, FunctionConfiguration, GetAccountSettingsResponse, GetFunctionResponse,
    ListFunctionsResponse, ListTagsResponse, LogEvent, LogEvents, UpdateFunctionCodeRequest,
    UpdateFunctionConfigurationRequest,
};
use crate::Api;

/// Lambda's default regional quota for the total size of all deployment packages (75 GB).
const TOTAL_CODE_SIZE: u64 = 80_530_636_800;

/// The record of `name`, from the cache or the store.
pub(crate) async fn find(
    api: &Api,
    name: &str,
) -> Result<Option<Arc<FunctionRecord>>, LambdaError> {
    if let Some(r) = api.shared.cached(name) {
        return Ok(Some(r));
    }
    // Fill under the lock so a concurrent update cannot be overwritten by this older read.
    let _guard = api.shared.lock(name).await;
    if let Some(r) = api.shared.cached(name) {
        return Ok(Some(r));
    }
    let Some(record) = api.state.store.get_function(name).await? else {
        return Ok(None);
    };
    let record = Arc::new(record);
    api.shared.cache_put(record.clone());
    Ok(Some(record))
}

/// The record of `name`, or Lambda's 404.
pub(crate) async fn require(api: &Api, name: &str) -> Result<Arc<FunctionRecord>, LambdaError> {
    find(api, name)
        .await?
        .ok_or_else(|| LambdaError::not_found(&api.state.region, name))
}

/// What a change touches, which decides `LastModified` and whether the runtime must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Code or configuration: new `LastModified`, environments restarted.
    Definition,
    /// Reserved or provisioned concurrency: the runtime must know, `LastModified` stays.
    Concurrency,
    /// Tags: nothing but the record changes.
    Tags,
}

/// Applies `f` to the stored record of `name` under its lock and stores the result with a new
/// `RevisionId`. `revision` is the caller's `RevisionId` precondition. With `dry_run` nothing
/// is stored and the would-be record is returned.
async fn modify(
    api: &Api,
    name: &str,
    revision: Option<&str>,
    change: Change,
    dry_run: bool,
    f: impl FnOnce(&mut FunctionRecord) -> Result<(), LambdaError>,
) -> Result<Arc<FunctionRecord>, LambdaError> {
    let state = &api.state;
    let _guard = api.shared.lock(name).await;
    let mut record = load_at_revision(api, name, revision).await?;
    f(&mut record)?;
    if dry_run {
        return Ok(Arc::new(record));
    }
    record.revision_id = new_revision();
    if change == Change::Definition {
        record.last_modified = now_string();
    }
    let record = Arc::new(record);
    state.store.put_function(&record).await?;
    api.shared.cache_put(record.clone());
    if change != Change::Tags {
        state
            .invoker
            .function_changed(name, Some(record.clone()))
            .await;
    }
    tracing::info!(function = name, revision = %record.revision_id, ?change, "function updated");
    Ok(record)
}

/// Runs `change` (a write of the function's policy) under the function's lock, after checking
/// that the function exists and that `revision` is current; then gives the function a new
/// `RevisionId`, as Lambda does for permission changes. The runtime is not told: nothing it
/// runs has changed.
pub(crate) async fn modify_policy<F, Fut>(
    api: &Api,
    name: &str,
    revision: Option<&str>,
    change: F,
) -> Result<(), LambdaError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), LambdaError>>,
{
    let state = &api.state;
    let _guard = api.shared.lock(name).await;
    let mut record = load_at_revision(api, name, revision).await?;
    change().await?;
    record.revision_id = new_revision();
    let record = Arc::new(record);
    state.store.put_function(&record).await?;
    api.shared.cache_put(record);
    Ok(())
}

/// The stored record of `name` (read from the store, not the cache: callers hold the
/// function's lock and are about to write it), if `revision` is absent or still current.
async fn load_at_revision(
    api: &Api,
    name: &str,
    revision: Option<&str>,
) -> Result<FunctionRecord, LambdaError> {
    let state = &api.state;
    let record = state
        .store
        .get_function(name)
        .await?
        .ok_or_else(|| LambdaError::not_found(&state.region, name))?;
    if revision.is_some_and(|r| r != record.revision_id) {
        return Err(LambdaError::RevisionMismatch);
    }
    Ok(record)
}

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now_string() -> String {
    gust_model::rfc3339_millis(time::OffsetDateTime::now_utc())
}

fn configuration(api: &Api, record: &FunctionRecord) -> FunctionConfiguration {
    FunctionConfiguration::from_record(record, &api.state.region)
}

/// Refuses what Gust cannot run rather than silently ignoring it.
fn refuse_unsupported(
    package_type: Option<&str>,
    layers: Option<&[String]>,
    architectures: Option<&[String]>,
) -> Result<(), LambdaError> {
    if let Some(p) = package_type.filter(|p| *p != "Zip") {
        return Err(LambdaError::InvalidParameter(format!(
            "Gust supports only PackageType Zip; '{p}' is not supported yet"
        )));
    }
    if layers.is_some_and(|l| !l.is_empty()) {
        return Err(LambdaError::InvalidParameter(
            "Gust does not support Layers yet".into(),
        ));
    }
    if let Some(a) = architectures {
        if a.iter().any(|a| a != "x86_64") || a.len() > 1 {
            return Err(LambdaError::InvalidParameter(
                "Gust runs functions on x86_64 only; Architectures must be [\"x86_64\"]".into(),
            ));
        }
    }
    Ok(())
}

/// Checks a configuration the way Lambda's API does.
fn validate(config: &FunctionConfig) -> Result<(), LambdaError> {
    config
        .validate()
        .map_err(|e| LambdaError::InvalidParameter(e.0))?;
    if config.description.len() > 256 {
        return Err(LambdaError::InvalidParameter(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 256".into(),
        ));
    }
    Ok(())
}

fn check_provisioned(provisioned: u32, reserved: Option<u32>) -> Result<(), LambdaError> {
    match reserved {
        Some(r) if provisioned > r => Err(LambdaError::InvalidParameter(format!(
            "GustProvisionedConcurrency ({provisioned}) must not exceed the function's reserved concurrency ({r})"
        ))),
        _ => Ok(()),
    }
}

/// The zip bytes of a `FunctionCode`; S3 and container images are not supported yet.
fn code_zip(code: FunctionCode, operation: &'static str) -> Result<Vec<u8>, LambdaError> {
    if code.image_uri.is_some() {
        return Err(LambdaError::InvalidParameter(
            "Gust does not support container images (ImageUri) yet; upload the package as ZipFile"
                .into(),
        ));
    }
    if code.s3_bucket.is_some() || code.s3_key.is_some() {
        return Err(LambdaError::InvalidParameter(
            "Gust does not support code from S3 (S3Bucket/S3Key) yet; upload the package as ZipFile".into(),
        ));
    }
    let Some(b64) = code.zip_file else {
        return Err(LambdaError::InvalidParameter(
            "Please provide a source for function code: ZipFile".into(),
        ));
    };
    let zip = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| LambdaError::InvalidParameter(format!("ZipFile is not valid base64: {e}")))?;
    if zip.len() > limits::MAX_ZIP_INLINE {
        return Err(LambdaError::TooLarge {
            code: "RequestEntityTooLargeException",
            limit: MAX_CODE_REQUEST,
            operation,
        });
    }
    Ok(zip)
}

/// A stored package: its id in the store, Lambda's `CodeSha256` and its size.
struct StoredCode {
    code_id: String,
    sha256_b64: String,
    size: u64,
}

async fn store_code(api: &Api, zip: &[u8]) -> Result<StoredCode, LambdaError> {
    let code_id = api.state.store.put_code(zip, limits::MAX_UNZIPPED).await?;
    let digest = match hex::decode(&code_id) {
        Ok(d) if d.len() == 32 => d,
        _ => {
            use sha2::Digest as _;
            sha2::Sha256::digest(zip).to_vec()
        }
    };
    Ok(StoredCode {
        code_id,
        sha256_b64: base64::engine::general_purpose::STANDARD.encode(digest),
        size: zip.len() as u64,
    })
}

/// `CreateFunction`: 201 with the `FunctionConfiguration`.
pub(crate) async fn create_function(
    api: &Api,
    input: CreateFunctionRequest,
) -> Result<Reply, LambdaError> {
    let state = &api.state;
    refuse_unsupported(
        input.package_type.as_deref(),
        input.layers.as_deref(),
        input.architectures.as_deref(),
    )?;
    // `FunctionName` may be an ARN here too; a qualifier makes no sense on creation.
    let name = match gust_model::parse_function_ref(&input.function_name) {
        Some(r) if r.qualifier.is_none() => r.name,
        _ => input.function_name.clone(),
    };
    let config = FunctionConfig {
        name,
        runtime: input.runtime.unwrap_or_default(),
        handler: input.handler.unwrap_or_default(),
        role: input.role.unwrap_or_default(),
        description: input.description.unwrap_or_default(),
        timeout: input.timeout.unwrap_or(limits::DEFAULT_TIMEOUT_S),
        memory_size: input.memory_size.unwrap_or(limits::DEFAULT_MEMORY_MB),
        ephemeral_storage: input.ephemeral_storage.map_or(512, |e| e.size),
        environment: input
            .environment
            .and_then(|e| e.variables)
            .unwrap_or_default(),
    };
    validate(&config)?;
    let zip = code_zip(input.code.unwrap_or_default(), "CreateFunction")?;
    let name = config.name.clone();
    // Answer a duplicate before storing its package; `create_function` below decides races.
    if find(api, &name).await?.is_some() {
        return Err(LambdaError::FunctionExists(name));
    }
    let code = store_code(api, &zip).await?;
    let record = FunctionRecord {
        schema_version: FUNCTION_SCHEMA_VERSION,
        config,
        code_sha256: code.sha256_b64,
        code_id: code.code_id,
        code_size: code.size,
        last_modified: now_string(),
        revision_id: new_revision(),
        reserved_concurrency: None,
        provisioned_concurrency: input.gust_provisioned_concurrency.unwrap_or(0),
        tags: input.tags.unwrap_or_default(),
    };
    check_runnable(api, &record).await?;
    let _guard = api.shared.lock(&name).await;
    if !state.store.create_function(&record).await? {
        return Err(LambdaError::FunctionExists(name));
    }
    let record = Arc::new(record);
    api.shared.cache_put(record.clone());
    state
        .invoker
        .function_changed(&name, Some(record.clone()))
        .await;
    tracing::info!(function = %name, runtime = %record.config.runtime, code = %record.code_id, "function created");
    Reply::json(201, &configuration(api, &record))
}

/// `GetFunction`.
pub(crate) async fn get_function(api: &Api, name: &str) -> Result<Reply, LambdaError> {
    let record = require(api, name).await?;
    let mut location = format!(
        "{}/2015-03-31/functions/{}/code",
        api.state.endpoint_url.trim_end_matches('/'),
        name
    );
    if let (Some(creds), Ok(uri)) = (
        &api.state.code_url_credentials,
        location.parse::<http::Uri>(),
    ) {
        let params = gust_aws::sigv4::SigningParams {
            region: &api.state.region,
            service: "lambda",
            time: time::OffsetDateTime::now_utc(),
        };
        location = gust_aws::sigv4::presign_url(&http::Method::GET, &uri, creds, &params, 600);
    }
    let resp = GetFunctionResponse {
        configuration: configuration(api, &record),
        code: FunctionCodeLocation {
            repository_type: "S3",
            location,
        },
        tags: (!record.tags.is_empty()).then(|| record.tags.clone()),
        concurrency: record.reserved_concurrency.map(|n| Concurrency {
            reserved_concurrent_executions: Some(n),
        }),
    };
    Reply::json(200, &resp)
}

/// `GetFunctionConfiguration`.
pub(crate) async fn get_function_configuration(
    api: &Api,
    name: &str,
) -> Result<Reply, LambdaError> {
    let record = require(api, name).await?;
    Reply::json(200, &configuration(api, &record))
}

/// `GET …/functions/{name}/code`: the stored zip that `GetFunction`'s `Code.Location` names.
pub(crate) async fn download_code(
    api: &Api,
    name: &str,
) -> Result<axum::response::Response, LambdaError> {
    use axum::response::IntoResponse as _;
    let record = require(api, name).await?;
    let path = api.state.store.code_zip(&record.code_id);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        tracing::error!(function = name, path = %path.display(), error = %e, "stored package unreadable");
        LambdaError::Internal(format!("the stored package of {name} cannot be read: {e}"))
    })?;
    Ok((
        http::StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/zip")],
        bytes,
    )
        .into_response())
}

/// `ListFunctions`, ordered by name; `NextMarker` is the last name of a full page.
pub(crate) async fn list_functions(
    api: &Api,
    marker: Option<String>,
    max_items: usize,
) -> Result<Reply, LambdaError> {
    let mut records = api
        .state
        .store
        .list_functions(marker.as_deref(), max_items + 1)
        .await?;
    let more = records.len() > max_items;
    records.truncate(max_items);
    let next_marker = if more {
        records.last().map(|r| r.config.name.clone())
    } else {
        None
    };
    let functions = records.iter().map(|r| configuration(api, r)).collect();
    Reply::json(
        200,
        &ListFunctionsResponse {
            next_marker,
            functions,
        },
    )
}

/// `UpdateFunctionCode`.
pub(crate) async fn update_function_code(
    api: &Api,
    name: &str,
    input: UpdateFunctionCodeRequest,
) -> Result<Reply, LambdaError> {
    refuse_unsupported(None, None, input.architectures.as_deref())?;
    let code = FunctionCode {
        zip_file: input.zip_file,
        s3_bucket: input.s3_bucket,
        s3_key: input.s3_key,
        image_uri: input.image_uri,
    };
    let zip = code_zip(code, "UpdateFunctionCode")?;
    // Fail fast on a missing function or a stale revision before storing the package.
    let current = require(api, name).await?;
    if input
        .revision_id
        .as_deref()
        .is_some_and(|r| r != current.revision_id)
    {
        return Err(LambdaError::RevisionMismatch);
    }
    let code = store_code(api, &zip).await?;
    let mut candidate = current.as_ref().clone();
    candidate.code_id = code.code_id.clone();
    check_runnable(api, &candidate).await?;
    let dry_run = input.dry_run.unwrap_or(false);
    let record = modify(
        api,
        name,
        input.revision_id.as_deref(),
        Change::Definition,
        dry_run,
        |r| {
            r.code_id = code.code_id;
            r.code_sha256 = code.sha256_b64;
            r.code_size = code.size;
            Ok(())
        },
    )
    .await?;
    Reply::json(200, &configuration(api, &record))
}

/// Refuses code its runtime can tell it cannot run before anything is stored (a Wasm module
/// that does not compile), instead of failing every invocation later.
async fn check_runnable(api: &Api, record: &FunctionRecord) -> Result<(), LambdaError> {
    api.state.invoker.validate(record).await.map_err(|why| {
        LambdaError::InvalidParameter(format!("The function's code cannot be run: {why}"))
    })
}

/// `UpdateFunctionConfiguration`: members present in the request replace the stored ones.
pub(crate) async fn update_function_configuration(
    api: &Api,
    name: &str,
    input: UpdateFunctionConfigurationRequest,
) -> Result<Reply, LambdaError> {
    refuse_unsupported(None, input.layers.as_deref(), None)?;
    let revision = input.revision_id.clone();
    let record = modify(
        api,
        name,
        revision.as_deref(),
        Change::Definition,
        false,
        |r| {
            let c = &mut r.config;
            if let Some(v) = input.role {
                c.role = v;
            }
            if let Some(v) = input.handler {
                c.handler = v;
            }
            if let Some(v) = input.description {
                c.description = v;
            }
            if let Some(v) = input.timeout {
                c.timeout = v;
            }
            if let Some(v) = input.memory_size {
                c.memory_size = v;
            }
            if let Some(v) = input.runtime {
                c.runtime = v;
            }
            if let Some(v) = input.ephemeral_storage {
                c.ephemeral_storage = v.size;
            }
            if let Some(env) = input.environment {
                c.environment = env.variables.unwrap_or_default();
            }
            validate(c)?;
            if let Some(p) = input.gust_provisioned_concurrency {
                check_provisioned(p, r.reserved_concurrency)?;
                r.provisioned_concurrency = p;
            }
            Ok(())
        },
    )
    .await?;
    Reply::json(200, &configuration(api, &record))
}

/// `DeleteFunction`: 204. Logs are kept (see the crate docs); queued events of the function
/// are dropped by the worker when it finds the function gone.
pub(crate) async fn delete_function(api: &Api, name: &str) -> Result<Reply, LambdaError> {
    let state = &api.state;
    let _guard = api.shared.lock(name).await;
    if !state.store.delete_function(name).await? {
        return Err(LambdaError::not_found(&state.region, name));
    }
    api.shared.cache_remove(name);
    state.invoker.function_changed(name, None).await;
    tracing::info!(function = name, "function deleted");
    Ok(Reply::empty(204))
}

/// `PutFunctionConcurrency`.
pub(crate) async fn put_concurrency(
    api: &Api,
    name: &str,
    reserved: u32,
) -> Result<Reply, LambdaError> {
    modify(api, name, None, Change::Concurrency, false, |r| {
        if r.provisioned_concurrency > reserved {
            return Err(LambdaError::InvalidParameter(format!(
                "ReservedConcurrentExecutions ({reserved}) must not be less than the function's provisioned concurrency ({})",
                r.provisioned_concurrency
            )));
        }
        r.reserved_concurrency = Some(reserved);
        Ok(())
    })
    .await?;
    Reply::json(
        200,
        &Concurrency {
            reserved_concurrent_executions: Some(reserved),
        },
    )
}

/// `GetFunctionConcurrency`: `{}` when none is reserved.
pub(crate) async fn get_concurrency(api: &Api, name: &str) -> Result<Reply, LambdaError> {
    let record = require(api, name).await?;
    Reply::json(
        200,
        &Concurrency {
            reserved_concurrent_executions: record.reserved_concurrency,
        },
    )
}

/// `DeleteFunctionConcurrency`: 204.
pub(crate) async fn delete_concurrency(api: &Api, name: &str) -> Result<Reply, LambdaError> {
    modify(api, name, None, Change::Concurrency, false, |r| {
        r.reserved_concurrency = None;
        Ok(())
    })
    .await?;
    Ok(Reply::empty(204))
}

/// `TagResource`: 204.
pub(crate) async fn tag_resource(
    api: &Api,
    name: &str,
    tags: BTreeMap<String, String>,
) -> Result<Reply, LambdaError> {
    modify(api, name, None, Change::Tags, false, |r| {
        r.tags.extend(tags);
        Ok(())
    })
    .await?;
    Ok(Reply::empty(204))
}

/// `UntagResource`: 204.
pub(crate) async fn untag_resource(
    api: &Api,
    name: &str,
    keys: Vec<String>,
) -> Result<Reply, LambdaError> {
    modify(api, name, None, Change::Tags, false, |r| {
        for k in &keys {
            r.tags.remove(k);
        }
        Ok(())
    })
    .await?;
    Ok(Reply::empty(204))
}

/// `ListTags`.
pub(crate) async fn list_tags(api: &Api, name: &str) -> Result<Reply, LambdaError> {
    let record = require(api, name).await?;
    Reply::json(
        200,
        &ListTagsResponse {
            tags: record.tags.clone(),
        },
    )
}

/// `GetAccountSettings`: Lambda's quotas and this installation's usage.
///
/// `ConcurrentExecutions` reports Gust's default global limit; the server's configured limit
/// is not known to this crate.
pub(crate) async fn get_account_settings(api: &Api) -> Result<Reply, LambdaError> {
    let (mut count, mut total, mut reserved) = (0u64, 0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let page = api
            .state
            .store
            .list_functions(after.as_deref(), 1000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.config.name.clone());
        for r in &page {
            count += 1;
            total += r.code_size;
            reserved += u64::from(r.reserved_concurrency.unwrap_or(0));
        }
    }
    let concurrent = limits::DEFAULT_GLOBAL_CONCURRENCY;
    let unreserved = u64::from(concurrent).saturating_sub(reserved) as u32;
    Reply::json(
        200,
        &GetAccountSettingsResponse {
            account_limit: AccountLimit {
                total_code_size: TOTAL_CODE_SIZE,
                code_size_unzipped: limits::MAX_UNZIPPED,
                code_size_zipped: limits::MAX_ZIP_INLINE as u64,
                concurrent_executions: concurrent,
                unreserved_concurrent_executions: unreserved,
            },
            account_usage: AccountUsage {
                total_code_size: total,
                function_count: count,
            },
        },
    )
}

/// Gust extension: a function's log lines after `after`, or its last `limit` lines.
/// Works for deleted functions too, since their logs are kept.
pub(crate) async fn read_logs(
    api: &Api,
    name: &str,
    after: i64,
    limit: usize,
    tail: bool,
) -> Result<Reply, LambdaError> {
    let store = &api.state.store;
    let lines = if tail {
        store.tail_logs(name, limit).await?
    } else {
        store.read_logs(name, after, limit).await?
    };
    let events = lines
        .into_iter()
        .map(|l| LogEvent {
            seq: l.seq,
            ts_ms: l.entry.ts_ms,
            request_id: l.entry.request_id,
            stream: l.entry.stream,
            message: l.entry.message,
        })
        .collect();
    Reply::json(200, &LogEvents { events })
}
