//! `gust deploy`: creates or updates every function a manifest describes, with progress.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use base64::Engine;
use http::{Method, StatusCode};
use serde_json::json;

use crate::client::{segment, Client};
use crate::manifest::{self, FunctionSpec};

pub async fn run(manifest_path: &Path, data_dir: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(manifest_path).with_context(|| {
        format!(
            "cannot read manifest {} (create one, see README)",
            manifest_path.display()
        )
    })?;
    let manifest = manifest::parse(manifest_path, &text)?;
    if manifest.functions.is_empty() {
        eprintln!(
            "{}: no [functions.<name>] tables; nothing to deploy",
            manifest_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let client = Client::from_env_or_data_dir(data_dir)?;
    let total = manifest.functions.len();
    let mut failed = 0;
    for (i, (name, spec)) in manifest.functions.iter().enumerate() {
        let t0 = Instant::now();
        eprint!("[{}/{total}] {name} ({}) ... ", i + 1, spec.runtime);
        match deploy_one(&client, base, name, spec).await {
            Ok((verb, size)) => eprintln!(
                "{verb} ({} KB) in {} ms",
                size.div_ceil(1024),
                t0.elapsed().as_millis()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("failed: {e:#}");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {total} functions failed to deploy");
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "deployed {total} function(s) to {}; try: gust invoke {}",
        client.endpoint(),
        manifest.functions.keys().next().map_or("", |s| s)
    );
    Ok(ExitCode::SUCCESS)
}

async fn deploy_one(
    client: &Client,
    base: &Path,
    name: &str,
    spec: &FunctionSpec,
) -> Result<(&'static str, usize)> {
    let zip = crate::package::package(&base.join(&spec.code))?;
    let size = zip.len();
    let zip_b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
    let config = spec.to_config(name);
    let settings = json!({
        "Runtime": config.runtime,
        "Handler": config.handler,
        "Description": config.description,
        "Timeout": config.timeout,
        "MemorySize": config.memory_size,
        "Environment": { "Variables": config.environment },
        "GustProvisionedConcurrency": spec.provisioned_concurrency.unwrap_or(0),
    });
    let fpath = format!("/2015-03-31/functions/{}", segment(name));
    let exists = client.get(&fpath).await?;
    let verb = if exists.status == StatusCode::NOT_FOUND {
        let mut body = settings.clone();
        body["FunctionName"] = json!(name);
        body["Role"] = json!("arn:aws:iam::000000000000:role/gust");
        body["Code"] = json!({ "ZipFile": zip_b64 });
        client
            .json(Method::POST, "/2015-03-31/functions", &body)
            .await?
            .error_for_status()?;
        "created"
    } else {
        exists.error_for_status()?;
        client
            .json(
                Method::PUT,
                &format!("{fpath}/code"),
                &json!({ "ZipFile": zip_b64 }),
            )
            .await?
            .error_for_status()?;
        client
            .json(Method::PUT, &format!("{fpath}/configuration"), &settings)
            .await?
            .error_for_status()?;
        "updated"
    };
    let cpath = format!("/2017-10-31/functions/{}/concurrency", segment(name));
    match spec.reserved_concurrency {
        Some(n) => {
            client
                .json(
                    Method::PUT,
                    &cpath,
                    &json!({ "ReservedConcurrentExecutions": n }),
                )
                .await?
                .error_for_status()?;
        }
        None => {
            let r = client.send(Method::DELETE, &cpath, Vec::new(), &[]).await?;
            if r.status != StatusCode::NOT_FOUND {
                r.error_for_status()?;
            }
        }
    }
    Ok((verb, size))
}
