//! `gust up`: runs the platform in the foreground until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where functions, code, queued events, logs and credentials are kept.
    #[arg(long, env = "GUST_DATA_DIR", default_value = ".gust")]
    data_dir: PathBuf,
    /// Address of the control endpoint (every AWS-compatible API). Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Address of the API gateway: HTTP routes and function URLs (application traffic, kept
    /// apart from the control endpoint). Port 0 picks a free port.
    #[arg(long, env = "GUST_GATEWAY", default_value = "127.0.0.1:8080")]
    gateway: SocketAddr,
    /// Run without the API gateway.
    #[arg(long, conflicts_with = "gateway")]
    no_gateway: bool,
    /// Write {"endpoint":..,"pid":..} to this file once ready (for scripts and tests).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Most invocations running at once across all functions.
    #[arg(long, default_value_t = gust_model::limits::DEFAULT_GLOBAL_CONCURRENCY)]
    max_concurrency: u32,
    /// Seconds an idle execution environment is kept warm before it is stopped.
    #[arg(long, default_value_t = 300)]
    idle_timeout: u64,
    /// Python interpreter for python3.x functions (default: /usr/bin/python3, then PATH).
    #[arg(long, env = "GUST_PYTHON")]
    python: Option<PathBuf>,
    /// Node interpreter for nodejs functions (default: /usr/bin/node, then PATH).
    #[arg(long, env = "GUST_NODE")]
    node: Option<PathBuf>,
    /// Region reported in ARNs and to functions.
    #[arg(long, env = "AWS_REGION", default_value = gust_model::DEFAULT_REGION)]
    region: String,
    /// Delays in milliseconds before the retries of a failed asynchronous invocation.
    #[arg(long, value_delimiter = ',', default_value = "60000,120000")]
    event_retry_delays_ms: Vec<u64>,
    /// AWS SDKs functions can import without bundling them, as `gust sdk install` lays them
    /// out (default: <data-dir>/sdk).
    #[arg(long, env = "GUST_SDK_DIR")]
    sdk_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub async fn run(args: UpArgs) -> Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a terminal; lines go through one writer thread (see `logwriter`), and the
    // guard flushes them when `gust up` returns.
    let (writer, _log_guard) = crate::logwriter::queued_stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    match args.log_format {
        LogFormat::Text => builder.compact().init(),
        LogFormat::Json => builder.json().init(),
    }

    let mut config = gust_server::ServerConfig::new(args.data_dir.clone());
    config.listen = args.listen;
    config.gateway = (!args.no_gateway).then_some(args.gateway);
    config.ready_file = args.ready_file;
    config.max_concurrency = args.max_concurrency;
    config.idle_timeout = Duration::from_secs(args.idle_timeout);
    config.python = args.python;
    config.node = args.node;
    config.region = args.region;
    config.sdk_dir = args.sdk_dir;
    config.event_retry_delays = args
        .event_retry_delays_ms
        .iter()
        .map(|ms| Duration::from_millis(*ms))
        .collect();

    // Install the handlers before anything is ready, so a signal that arrives right after the
    // ready file appears still shuts down gracefully.
    let shutdown = shutdown_signal()?;
    let data_dir = args.data_dir;
    gust_server::run(
        config,
        |s| {
            if s.credentials_created {
                eprintln!(
                    "created root credentials in {}/credentials.json:",
                    data_dir.display()
                );
                eprintln!("  AWS_ACCESS_KEY_ID={}", s.credentials.access_key_id);
                eprintln!(
                    "  AWS_SECRET_ACCESS_KEY={}",
                    s.credentials.secret_access_key
                );
            }
            let interp = |p: &Option<PathBuf>| {
                p.as_ref()
                    .map_or("not found".to_string(), |p| p.display().to_string())
            };
            tracing::info!(
                endpoint = %s.endpoint,
                gateway = s.gateway.as_deref().unwrap_or("off"),
                ready_ms = format!("{:.1}", s.ready_in.as_secs_f64() * 1000.0),
                functions = s.functions,
                python = %interp(&s.python),
                node = %interp(&s.node),
                "gust is ready"
            );
            if !s.sdk.python || !s.sdk.node {
                let missing = match (s.sdk.python, s.sdk.node) {
                    (false, false) => "boto3 and the AWS SDK for JavaScript",
                    (false, true) => "boto3",
                    _ => "the AWS SDK for JavaScript",
                };
                eprintln!(
                    "note: functions can't use {missing} unless they bundle it ({} has none); \
                     install it once with: gust sdk install --data-dir {}",
                    s.sdk.dir.display(),
                    data_dir.display()
                );
            }
            eprintln!(
                "gust is up at {}; point AWS tools at it with: eval \"$(gust env --data-dir {})\"",
                s.endpoint,
                data_dir.display()
            );
            if let Some(gateway) = &s.gateway {
                eprintln!("HTTP routes and function URLs are served at {gateway}");
            }
        },
        shutdown,
    )
    .await
    .context("gust up failed")?;
    Ok(ExitCode::SUCCESS)
}

fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; shutting down gracefully"),
            _ = int.recv() => tracing::info!("SIGINT received; shutting down gracefully"),
        }
    })
}
