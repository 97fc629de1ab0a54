//! The composition root of `gust up`: opens the embedded store, creates or loads the root
//! credentials, builds the runtimes (process and Wasm, behind one routing invoker) and the
//! AWS-compatible services, and serves the control endpoint until asked to stop.
//!
//! This is the only crate that picks concrete backends (SQLite store, process and Wasm
//! invokers); every service crate below it takes traits. It owns start-up order and shutdown
//! order:
//! listeners stop accepting, in-flight requests (and so invocations) finish or hit their
//! deadline, the event worker and the TTL sweeper of the tables service stop, environments
//! are stopped, then the store is closed.

mod control;
mod credentials;
mod interpreters;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gust_aws::sigv4::CredentialLookup;
use gust_runtime::Invoker;
use gust_store::{FunctionStore, SqliteStore, Store, StoreOptions};
use tokio::net::TcpListener;

pub use control::{control_app, ControlApp, ResponseFuture, TargetService, TargetTable};
pub use credentials::{load_credentials, load_or_create_credentials, RootCredentials};
pub use interpreters::{resolve_node, resolve_python};

/// Everything `gust up` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Address of the API gateway (application traffic: routes and function URLs); `None`
    /// runs no gateway. Port 0 picks a free port.
    pub gateway: Option<SocketAddr>,
    /// Written (atomically) with `{"endpoint":..,"pid":..}` once the endpoint accepts requests.
    pub ready_file: Option<PathBuf>,
    pub max_concurrency: u32,
    pub idle_timeout: Duration,
    pub python: Option<PathBuf>,
    pub node: Option<PathBuf>,
    pub region: String,
    /// Delays before each retry of a failed asynchronous invocation (Lambda: ~1 and ~2 minutes).
    pub event_retry_delays: Vec<Duration>,
    /// How often expired items (DynamoDB TTL) are looked for and deleted.
    pub ttl_sweep_interval: Duration,
    /// The AWS SDKs functions can import without bundling them (`gust sdk install` fills it);
    /// `None` means `<data_dir>/sdk`.
    pub sdk_dir: Option<PathBuf>,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        ServerConfig {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 4566)),
            gateway: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            ready_file: None,
            max_concurrency: gust_model::limits::DEFAULT_GLOBAL_CONCURRENCY,
            idle_timeout: Duration::from_secs(300),
            python: None,
            node: None,
            region: gust_model::DEFAULT_REGION.to_string(),
            event_retry_delays: vec![Duration::from_secs(60), Duration::from_secs(120)],
            ttl_sweep_interval: Duration::from_secs(1),
            sdk_dir: None,
        }
    }
}

/// Errors that stop `gust up` from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        dir: PathBuf,
        source: gust_store::StoreError,
    },
    #[error("cannot listen on {addr}: {source} (is another `gust up` running? pick another address with {flag})")]
    Bind {
        addr: SocketAddr,
        flag: &'static str,
        source: std::io::Error,
    },
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("runtime: {0}")]
    Runtime(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// What a started server tells its caller (the CLI prints it).
#[derive(Debug, Clone)]
pub struct Started {
    pub endpoint: String,
    /// The gateway's base URL, when one runs.
    pub gateway: Option<String>,
    pub credentials: RootCredentials,
    pub credentials_created: bool,
    pub ready_in: Duration,
    pub python: Option<PathBuf>,
    pub node: Option<PathBuf>,
    pub functions: usize,
    /// The SDK directory functions get, and what it holds.
    pub sdk: SdkStatus,
}

/// Which AWS SDKs functions can import from the platform's SDK directory.
#[derive(Debug, Clone)]
pub struct SdkStatus {
    pub dir: PathBuf,
    /// boto3 is in `<dir>/python`.
    pub python: bool,
    /// `@aws-sdk/client-dynamodb` is in `<dir>/node/node_modules`.
    pub node: bool,
}

impl SdkStatus {
    pub fn of(dir: PathBuf) -> SdkStatus {
        SdkStatus {
            python: dir.join("python/boto3/__init__.py").is_file(),
            node: dir
                .join("node/node_modules/@aws-sdk/client-dynamodb/package.json")
                .is_file(),
            dir,
        }
    }
}

struct Lookup(RootCredentials);

impl CredentialLookup for Lookup {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        (access_key_id == self.0.access_key_id).then(|| self.0.secret_access_key.clone())
    }
}

/// Runs `gust up` until `shutdown` resolves, calling `on_started` once the endpoint is ready.
pub async fn run(
    config: ServerConfig,
    on_started: impl FnOnce(&Started),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let t0 = Instant::now();
    std::fs::create_dir_all(&config.data_dir)?;
    let store = Arc::new(
        SqliteStore::open(&config.data_dir, StoreOptions::default()).map_err(|source| {
            ServerError::Store {
                dir: config.data_dir.clone(),
                source,
            }
        })?,
    );
    let (credentials, credentials_created) = load_or_create_credentials(&config.data_dir)
        .map_err(|e| ServerError::Credentials(e.to_string()))?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            flag: "--listen",
            source,
        })?;
    let local = listener.local_addr()?;
    let endpoint = format!("http://{local}");
    let gateway_listener = match config.gateway {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr,
                    flag: "--gateway",
                    source,
                })?,
        ),
        None => None,
    };
    let gateway_url = match &gateway_listener {
        Some(l) => Some(format!("http://{}", l.local_addr()?)),
        None => None,
    };

    let python = config.python.clone().or_else(resolve_python);
    let node = config.node.clone().or_else(resolve_node);
    let sdk_dir = config
        .sdk_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("sdk"));
    let mut platform_env = std::collections::BTreeMap::new();
    platform_env.insert("AWS_ENDPOINT_URL".to_string(), endpoint.clone());
    platform_env.insert(
        "AWS_ACCESS_KEY_ID".to_string(),
        credentials.access_key_id.clone(),
    );
    platform_env.insert(
        "AWS_SECRET_ACCESS_KEY".to_string(),
        credentials.secret_access_key.clone(),
    );
    let runtime_config = gust_runtime::RuntimeConfig {
        work_dir: config.data_dir.join("run"),
        python: python.clone(),
        node: node.clone(),
        max_concurrency: config.max_concurrency,
        idle_timeout: config.idle_timeout,
        platform_env,
        region: config.region.clone(),
        sdk_dir: Some(sdk_dir.clone()),
    };
    let process = gust_runtime::ProcessInvoker::new(runtime_config, store.clone(), store.clone())
        .map_err(|e| ServerError::Runtime(e.to_string()))?;
    let mut wasm_config = gust_wasm::WasmConfig::new(config.data_dir.join("wasm-cache"));
    wasm_config.max_concurrency = config.max_concurrency;
    wasm_config.region = config.region.clone();
    let wasm = gust_wasm::WasmInvoker::new(wasm_config, store.clone(), store.clone())
        .map_err(|e| ServerError::Runtime(e.to_string()))?;
    // `--max-concurrency` is one account-wide limit: process and Wasm invocations, and raw
    // HTTP requests to Wasm functions, all take a share of the same budget.
    let budget = gust_runtime::ConcurrencyBudget::new(config.max_concurrency);
    let wasm_http: Arc<dyn gust_runtime::HttpHandler> =
        gust_runtime::LimitedHttpHandler::new(wasm.clone(), budget.clone());
    let invoker = gust_runtime::RoutingInvoker::with_budget(process, wasm, budget);

    let dyn_store: Arc<dyn Store> = store.clone();
    let lambda = Arc::new(gust_lambda::LambdaState {
        store: dyn_store,
        invoker: invoker.clone(),
        region: config.region.clone(),
        endpoint_url: endpoint.clone(),
        gateway_url: gateway_url.clone(),
        event_retry_delays: config.event_retry_delays.clone(),
        code_url_credentials: Some(gust_aws::sigv4::Credentials {
            access_key_id: credentials.access_key_id.clone(),
            secret_access_key: credentials.secret_access_key.clone(),
        }),
    });

    // Provisioned environments come back after a restart.
    let mut functions = 0usize;
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_functions(after.as_deref(), 500)
            .await
            .map_err(|source| ServerError::Store {
                dir: config.data_dir.clone(),
                source,
            })?;
        let Some(last) = page.last() else { break };
        after = Some(last.config.name.clone());
        functions += page.len();
        for record in page {
            if record.provisioned_concurrency > 0 {
                let name = record.config.name.clone();
                invoker
                    .function_changed(&name, Some(Arc::new(record)))
                    .await;
            }
        }
    }

    let tables = gust_dynamodb::SqliteTableStore::open(store.as_ref().clone())
        .await
        .map_err(|e| ServerError::Store {
            dir: config.data_dir.clone(),
            source: gust_store::StoreError::Corrupt(e.to_string()),
        })?;
    let dynamodb = Arc::new(gust_dynamodb::DynamoDb::new(
        Arc::new(tables),
        &config.region,
    ));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = gust_lambda::spawn_event_worker(lambda.clone(), stop_rx.clone());
    let ttl_sweeper =
        gust_dynamodb::spawn_ttl_sweeper(dynamodb.clone(), config.ttl_sweep_interval, stop_rx);

    let lookup: Arc<dyn CredentialLookup> = Arc::new(Lookup(credentials.clone()));
    let targets: TargetTable = vec![(
        gust_dynamodb::TARGET_PREFIX,
        dynamodb as Arc<dyn TargetService>,
    )];
    let app = control_app(lambda, targets, lookup.clone());

    // One shutdown signal, fanned out to both listeners.
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutdown_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let gateway_task = match (gateway_listener, &gateway_url) {
        (Some(listener), Some(url)) => {
            let gateway = gust_gateway::Gateway::new(
                gust_gateway::GatewayConfig::new(&config.region, url.clone()),
                gust_gateway::GatewayDeps {
                    apis: store.clone(),
                    functions: store.clone(),
                    invoker: invoker.clone(),
                    http: wasm_http,
                    credentials: lookup,
                },
            );
            Some(tokio::spawn(
                gateway.serve(listener, stopped(shutdown_rx.clone())),
            ))
        }
        _ => None,
    };

    write_atomic(&config.data_dir.join("endpoint"), endpoint.as_bytes())?;
    match &gateway_url {
        Some(url) => write_atomic(&config.data_dir.join("gateway"), url.as_bytes())?,
        None => {
            let _ = std::fs::remove_file(config.data_dir.join("gateway"));
        }
    }
    if let Some(ready) = &config.ready_file {
        let doc = serde_json::json!({
            "endpoint": endpoint,
            "gateway": gateway_url,
            "pid": std::process::id(),
        });
        write_atomic(ready, doc.to_string().as_bytes())?;
    }
    on_started(&Started {
        endpoint: endpoint.clone(),
        gateway: gateway_url.clone(),
        credentials,
        credentials_created,
        ready_in: t0.elapsed(),
        python,
        node,
        functions,
        sdk: SdkStatus::of(sdk_dir),
    });

    // Replies go out as soon as they are written (no Nagle delay behind an unacknowledged
    // segment), as on the gateway's listener.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let serve = axum::serve(listener, axum::ServiceExt::into_make_service(app))
        .with_graceful_shutdown(stopped(shutdown_rx));
    let result = serve.await;
    tracing::info!("control endpoint closed; draining");
    if let Some(task) = gateway_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "gateway ended with an error"),
            Err(e) => tracing::warn!(error = %e, "gateway ended abnormally"),
        }
    }
    let _ = stop_tx.send(true);
    if let Err(e) = worker.await {
        tracing::warn!(error = %e, "event worker ended abnormally");
    }
    if let Err(e) = ttl_sweeper.await {
        tracing::warn!(error = %e, "ttl sweeper ended abnormally");
    }
    invoker.shutdown().await;
    store.close();
    if let Some(ready) = &config.ready_file {
        let _ = std::fs::remove_file(ready);
    }
    tracing::info!("stopped");
    result.map_err(ServerError::Io)
}

/// Writes a file so readers never see it half-written.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
