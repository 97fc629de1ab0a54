//! The `gust` command: `gust up` runs the platform; every other subcommand is a thin client of
//! a running `gust up`, talking to it through the same SigV4-signed AWS APIs boto3 uses.

mod client;
mod commands;
mod logwriter;
mod manifest;
mod package;
mod sdk;
mod tables;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "gust",
    version,
    about = "A self-hosted serverless platform that speaks AWS Lambda"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Target {
    /// Data directory of the `gust up` to talk to (its credentials and endpoint are read from it).
    #[arg(long, env = "GUST_DATA_DIR", default_value = ".gust")]
    data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform in the foreground (Ctrl-C stops it gracefully).
    Up(commands::up::UpArgs),
    /// Print `export` lines that point boto3 and the AWS CLI at this Gust: eval "$(gust env)".
    Env {
        #[command(flatten)]
        target: Target,
    },
    /// Deploy the functions a manifest describes (creating or updating them).
    Deploy {
        /// The manifest.
        #[arg(default_value = "gust.toml")]
        manifest: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Invoke a function and print its result.
    Invoke {
        name: String,
        /// The event: inline JSON, or @file to read it from a file (@- for stdin).
        #[arg(long, short, default_value = "{}")]
        payload: String,
        /// Queue the invocation (InvocationType=Event) instead of waiting for the result.
        #[arg(long)]
        r#async: bool,
        /// Also print the invocation's log (the last 4 KB).
        #[arg(long)]
        log: bool,
        /// Print the result as the function writes it (InvokeWithResponseStream; a function
        /// that does not stream arrives in one piece).
        #[arg(long, conflicts_with = "async")]
        stream: bool,
        #[command(flatten)]
        target: Target,
    },
    /// List deployed functions.
    Ls {
        #[command(flatten)]
        target: Target,
    },
    /// Show a function's logs.
    Logs {
        name: String,
        /// Keep printing new lines as they arrive.
        #[arg(long, short)]
        follow: bool,
        /// How many of the latest lines to show first.
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: usize,
        #[command(flatten)]
        target: Target,
    },
    /// Manage the AWS SDKs functions can use without bundling them (boto3, AWS SDK for JS v3).
    #[command(subcommand)]
    Sdk(SdkCommand),
    /// Delete a function.
    Rm {
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
enum SdkCommand {
    /// Install (or upgrade) boto3 and the AWS SDK for JavaScript v3 into <data-dir>/sdk with
    /// pip and npm.
    Install(sdk::InstallArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Up(args) => commands::up::run(args).await,
            Command::Env { target } => commands::env(&target.data_dir),
            Command::Deploy { manifest, target } => {
                commands::deploy::run(&manifest, &target.data_dir).await
            }
            Command::Invoke {
                name,
                payload,
                r#async,
                log,
                stream,
                target,
            } => {
                let mode = match (r#async, stream) {
                    (true, _) => commands::InvokeMode::Queued,
                    (false, true) => commands::InvokeMode::Streamed,
                    (false, false) => commands::InvokeMode::Buffered,
                };
                commands::invoke(&target.data_dir, &name, &payload, mode, log).await
            }
            Command::Ls { target } => commands::ls(&target.data_dir).await,
            Command::Logs {
                name,
                follow,
                lines,
                target,
            } => commands::logs(&target.data_dir, &name, follow, lines).await,
            Command::Sdk(SdkCommand::Install(args)) => sdk::install(args),
            Command::Rm { name, target } => commands::rm(&target.data_dir, &name).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
