//! `gust deploy`: creates the tables a manifest declares, creates or updates every function
//! it describes, then their function URLs, then the HTTP APIs their routes make up, with
//! progress, and ends with what to curl.
//!
//! Tables go first because functions may use them as soon as they start; functions go before
//! URLs and APIs because those must name existing functions. Tables are only ever created or
//! extended (see [`crate::tables`]). A function
//! URL is created or updated when the manifest has `url = true` (or a `url` table), deleted
//! when it says `url = false`, and left alone when `url` is absent. Each API is stored whole
//! (`PUT /gust/v1/apis/{name}`), so routes removed from the manifest disappear from their API;
//! APIs the manifest no longer mentions are left in place.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use base64::Engine;
use gust_model::{ApiDefinition, RouteKey};
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::client::{segment, Client};
use crate::manifest::{self, FunctionSpec, UrlConfig};

pub async fn run(manifest_path: &Path, data_dir: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(manifest_path).with_context(|| {
        format!(
            "cannot read manifest {} (create one, see README)",
            manifest_path.display()
        )
    })?;
    let manifest = manifest::parse(manifest_path, &text)?;
    let apis = manifest.apis();
    if manifest.functions.is_empty() && apis.is_empty() && manifest.tables.is_empty() {
        eprintln!(
            "{}: no [functions.<name>], [apis.<name>] or [tables.<name>] tables; nothing to deploy",
            manifest_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let client = Client::from_env_or_data_dir(data_dir)?;
    let total = manifest.functions.len();
    let mut failed = 0;
    let mut urls: Vec<(String, String)> = Vec::new();
    for (name, spec) in &manifest.tables {
        let t0 = Instant::now();
        eprint!("[table] {name} ... ");
        match crate::tables::deploy(&client, name, spec).await {
            Ok(outcome) => eprintln!("{outcome} in {} ms", t0.elapsed().as_millis()),
            Err(e) => {
                failed += 1;
                eprintln!("failed: {e:#}");
            }
        }
    }
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
                continue;
            }
        }
        let Some(url) = &spec.url else { continue };
        let outcome = match url.config() {
            Some(config) => deploy_url(&client, name, &config).await.map(Some),
            None => delete_url(&client, name).await.map(|_| None),
        };
        match outcome {
            Ok(Some((verb, url))) => {
                eprintln!("      function URL {verb}: {url}");
                urls.push((name.clone(), url));
            }
            Ok(None) => {}
            Err(e) => {
                failed += 1;
                eprintln!("      function URL failed: {e:#}");
            }
        }
    }
    let mut stored_apis = Vec::new();
    for api in &apis {
        let t0 = Instant::now();
        eprint!("[api] {} ({} routes) ... ", api.name, api.routes.len());
        match put_api(&client, api).await {
            Ok(verb) => {
                eprintln!("{verb} in {} ms", t0.elapsed().as_millis());
                stored_apis.push(api);
            }
            Err(e) => {
                failed += 1;
                eprintln!("failed: {e:#}");
            }
        }
    }
    let gateway = gateway_url(data_dir);
    print_summary(gateway.as_deref(), &stored_apis, &urls);
    if failed > 0 {
        eprintln!("{failed} step(s) failed to deploy");
        return Ok(ExitCode::FAILURE);
    }
    match manifest.functions.keys().next() {
        Some(first) => eprintln!(
            "deployed {total} function(s) to {}; try: gust invoke {first}",
            client.endpoint()
        ),
        None => eprintln!("deployed to {}", client.endpoint()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The gateway's base URL, which `gust up` writes to `<data-dir>/gateway`.
fn gateway_url(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join("gateway"))
        .ok()
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty())
}

/// The path a route answers on, with its stage prefix (`$default` answers every path).
fn route_path(api: &ApiDefinition, route_key: &str) -> String {
    let stage = api
        .stage
        .as_deref()
        .map(|s| format!("/{s}"))
        .unwrap_or_default();
    match route_key.split_once(' ') {
        Some((_, path)) if path == "/" && !stage.is_empty() => stage,
        Some((_, path)) => format!("{stage}{path}"),
        None => format!("{stage}/*"),
    }
}

/// Lists the routes and URLs deployed, aligned, as something to paste into a terminal.
fn print_summary(gateway: Option<&str>, apis: &[&ApiDefinition], urls: &[(String, String)]) {
    if !apis.is_empty() {
        match gateway {
            Some(g) => eprintln!("routes (gateway {g}):"),
            None => eprintln!(
                "routes (the gateway's address is not known: no `gateway` file in the data dir):"
            ),
        }
    }
    let base = gateway.unwrap_or("");
    let mut rows: Vec<[String; 4]> = Vec::new();
    for api in apis {
        let host = api
            .domains
            .first()
            .map(|d| format!("(-H 'Host: {d}')"))
            .unwrap_or_default();
        for r in &api.routes {
            let method = match RouteKey::parse(&r.route_key) {
                Ok(RouteKey::Route { method, .. }) => method.as_str(),
                _ => "ANY",
            };
            let target = match &r.mock {
                Some(m) => format!("-> mock {}", m.status),
                None => format!("-> {}", r.function),
            };
            rows.push([
                method.to_string(),
                format!("{base}{}", route_path(api, &r.route_key)),
                format!("{target}  [api {}]", api.name),
                host.clone(),
            ]);
        }
    }
    let mut widths = [0usize; 4];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        eprintln!("  {}", line.join("  ").trim_end());
    }
    if !urls.is_empty() {
        eprintln!("function URLs:");
        let width = urls.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, url) in urls {
            eprintln!("  {name:<width$}  {url}");
        }
    }
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

fn url_path(name: &str) -> String {
    format!("/2021-10-31/functions/{}/url", segment(name))
}

/// The `CreateFunctionUrlConfig` / `UpdateFunctionUrlConfig` body for `config`. An update
/// without `cors` clears CORS, so the URL matches the manifest.
fn url_body(config: &UrlConfig) -> Value {
    let cors = config
        .cors
        .as_ref()
        .map(|c| c.to_config())
        .unwrap_or_default();
    json!({
        "AuthType": config.auth_type,
        "InvokeMode": config.invoke_mode.as_deref().unwrap_or("BUFFERED"),
        "Cors": cors,
    })
}

/// Creates or updates the function URL; returns what happened and the URL.
async fn deploy_url(
    client: &Client,
    name: &str,
    config: &UrlConfig,
) -> Result<(&'static str, String)> {
    let path = url_path(name);
    let body = url_body(config);
    let existing = client.get(&path).await?;
    let (verb, reply) = if existing.status == StatusCode::NOT_FOUND {
        ("created", client.json(Method::POST, &path, &body).await?)
    } else {
        existing.error_for_status()?;
        ("updated", client.json(Method::PUT, &path, &body).await?)
    };
    let v = reply.error_for_status()?.json()?;
    let url = v["FunctionUrl"]
        .as_str()
        .context("the server's reply has no FunctionUrl")?
        .to_string();
    Ok((verb, url))
}

/// `url = false`: deletes the function URL if there is one.
async fn delete_url(client: &Client, name: &str) -> Result<()> {
    let r = client
        .send(Method::DELETE, &url_path(name), Vec::new(), &[])
        .await?;
    if r.status == StatusCode::NOT_FOUND {
        return Ok(());
    }
    r.error_for_status()?;
    eprintln!("      function URL deleted");
    Ok(())
}

async fn put_api(client: &Client, api: &ApiDefinition) -> Result<&'static str> {
    let body = serde_json::to_value(api)?;
    let r = client
        .json(
            Method::PUT,
            &format!("/gust/v1/apis/{}", segment(&api.name)),
            &body,
        )
        .await?;
    let created = r.status == StatusCode::CREATED;
    r.error_for_status()?;
    Ok(if created { "created" } else { "updated" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(stage: Option<&str>) -> ApiDefinition {
        serde_json::from_value(json!({"name": "a", "stage": stage})).expect("api")
    }

    #[test]
    fn route_paths_include_the_stage() {
        assert_eq!(route_path(&api(None), "GET /users/{id}"), "/users/{id}");
        assert_eq!(
            route_path(&api(Some("prod")), "GET /users/{id}"),
            "/prod/users/{id}"
        );
        assert_eq!(route_path(&api(Some("prod")), "GET /"), "/prod");
        assert_eq!(route_path(&api(None), "GET /"), "/");
        assert_eq!(route_path(&api(None), "$default"), "/*");
    }

    #[test]
    fn url_bodies() {
        let b = url_body(&UrlConfig {
            auth_type: "NONE".into(),
            invoke_mode: None,
            cors: None,
        });
        assert_eq!(
            b,
            json!({"AuthType": "NONE", "InvokeMode": "BUFFERED", "Cors": {"AllowCredentials": false}})
        );
    }
}
