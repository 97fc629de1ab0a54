//! The client subcommands: small functions over [`crate::client::Client`].

pub mod deploy;
pub mod up;

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine;
use http::Method;

use crate::client::{segment, Client};

/// `gust env`: export lines for boto3 and the AWS CLI.
pub fn env(data_dir: &Path) -> Result<ExitCode> {
    let endpoint = std::fs::read_to_string(data_dir.join("endpoint"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "http://127.0.0.1:4566".to_string());
    let c = gust_server::load_credentials(data_dir).with_context(|| {
        format!(
            "no credentials in {} yet: run `gust up` once to create them",
            data_dir.display()
        )
    })?;
    println!("export AWS_ENDPOINT_URL={endpoint}");
    println!("export AWS_ACCESS_KEY_ID={}", c.access_key_id);
    println!("export AWS_SECRET_ACCESS_KEY={}", c.secret_access_key);
    println!("export AWS_REGION={}", gust_model::DEFAULT_REGION);
    println!("export AWS_DEFAULT_REGION={}", gust_model::DEFAULT_REGION);
    // Later `gust deploy`, `gust logs`, ... then use this data dir (and find the gateway's
    // address in it) without repeating `--data-dir`.
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    println!(
        "export GUST_DATA_DIR={}",
        shell_quote(&dir.to_string_lossy())
    );
    Ok(ExitCode::SUCCESS)
}

/// Quotes `s` for a POSIX shell (single quotes; a `'` inside becomes `'\''`).
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn read_payload(arg: &str) -> Result<Vec<u8>> {
    match arg.strip_prefix('@') {
        Some("-") => {
            let mut v = Vec::new();
            std::io::stdin().read_to_end(&mut v)?;
            Ok(v)
        }
        Some(file) => {
            std::fs::read(file).with_context(|| format!("cannot read payload file {file}"))
        }
        None => Ok(arg.as_bytes().to_vec()),
    }
}

/// How `gust invoke` runs the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeMode {
    /// `Invoke`, printing the whole result.
    Buffered,
    /// `Invoke` with `InvocationType=Event`: queued, nothing to print.
    Queued,
    /// `InvokeWithResponseStream`, printing the result as it arrives.
    Streamed,
}

/// `gust invoke`.
pub async fn invoke(
    data_dir: &Path,
    name: &str,
    payload: &str,
    mode: InvokeMode,
    log: bool,
) -> Result<ExitCode> {
    let client = Client::from_env_or_data_dir(data_dir)?;
    let body = read_payload(payload)?;
    let mut headers = vec![];
    if log {
        headers.push(("x-amz-log-type", "Tail"));
    }
    if mode == InvokeMode::Streamed {
        return invoke_streamed(&client, name, body, &headers).await;
    }
    let asynchronous = mode == InvokeMode::Queued;
    if asynchronous {
        headers.push(("x-amz-invocation-type", "Event"));
    }
    let path = format!("/2015-03-31/functions/{}/invocations", segment(name));
    let reply = client
        .send(Method::POST, &path, body, &headers)
        .await?
        .error_for_status()?;
    if asynchronous {
        let id = reply
            .headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?");
        eprintln!("queued (request id {id})");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(tail) = reply
        .headers
        .get("x-amz-log-result")
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(tail) {
            eprintln!("{}", String::from_utf8_lossy(&bytes).trim_end());
        }
    }
    let function_error = reply
        .headers
        .get("x-amz-function-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = String::from_utf8_lossy(&reply.body);
    match function_error {
        Some(kind) => {
            eprintln!("function error ({kind}):");
            eprintln!("{text}");
            Ok(ExitCode::FAILURE)
        }
        None => {
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `gust invoke --stream`: the `PayloadChunk` events of `InvokeWithResponseStream` go to
/// stdout as they arrive; the closing `InvokeComplete` says whether the function failed (and
/// carries the log tail).
async fn invoke_streamed(
    client: &Client,
    name: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Result<ExitCode> {
    use std::io::Write as _;
    let path = format!(
        "/2021-11-15/functions/{}/response-streaming-invocations",
        segment(name)
    );
    let mut resp = client
        .send_streaming(Method::POST, &path, body, headers)
        .await?;
    let mut decoder = gust_aws::eventstream::Decoder::new();
    let mut complete = None;
    let mut stdout = std::io::stdout();
    while let Some(bytes) = resp.chunk().await.context("reading the response stream")? {
        decoder.push(&bytes);
        while let Some(m) = decoder.next_message()? {
            match m.header(":event-type") {
                Some("PayloadChunk") => {
                    stdout.write_all(&m.payload)?;
                    stdout.flush()?;
                }
                Some("InvokeComplete") => {
                    complete = Some(
                        serde_json::from_slice::<serde_json::Value>(&m.payload)
                            .context("InvokeComplete is not JSON")?,
                    );
                }
                _ if m.header(":message-type") == Some("exception") => {
                    bail!("the stream failed: {}", String::from_utf8_lossy(&m.payload));
                }
                _ => {}
            }
        }
    }
    if decoder.has_partial() {
        bail!("the response stream ended in the middle of an event");
    }
    let Some(done) = complete else {
        bail!("the response stream ended without InvokeComplete");
    };
    if let Some(tail) = done["LogResult"].as_str() {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(tail) {
            eprintln!("{}", String::from_utf8_lossy(&bytes).trim_end());
        }
    }
    match done["ErrorCode"].as_str() {
        Some(code) => {
            eprintln!("function error ({code}):");
            eprintln!("{}", done["ErrorDetails"].as_str().unwrap_or(""));
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `gust ls`: one line per function, with its function URL when it has one.
pub async fn ls(data_dir: &Path) -> Result<ExitCode> {
    let client = Client::from_env_or_data_dir(data_dir)?;
    let mut marker: Option<String> = None;
    let mut rows = Vec::new();
    loop {
        let mut path = "/2015-03-31/functions/?MaxItems=50".to_string();
        if let Some(m) = &marker {
            path.push_str(&format!("&Marker={}", segment(m)));
        }
        let v = client.get(&path).await?.error_for_status()?.json()?;
        for f in v["Functions"].as_array().into_iter().flatten() {
            rows.push(vec![
                f["FunctionName"].as_str().unwrap_or("").to_string(),
                f["Runtime"].as_str().unwrap_or("").to_string(),
                format!("{} MB", f["MemorySize"].as_u64().unwrap_or(0)),
                format!("{} s", f["Timeout"].as_u64().unwrap_or(0)),
                f["LastModified"].as_str().unwrap_or("").to_string(),
            ]);
        }
        match v["NextMarker"].as_str() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    if rows.is_empty() {
        eprintln!("no functions deployed yet (deploy some with `gust deploy`)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut any_url = false;
    for row in &mut rows {
        let path = format!("/2021-10-31/functions/{}/url", segment(&row[0]));
        let reply = client.get(&path).await?;
        let url = if reply.status == http::StatusCode::NOT_FOUND {
            String::new()
        } else {
            let v = reply.error_for_status()?.json()?;
            v["FunctionUrl"].as_str().unwrap_or("").to_string()
        };
        any_url |= !url.is_empty();
        row.push(url);
    }
    let mut header: Vec<String> = [
        "NAME",
        "RUNTIME",
        "MEMORY",
        "TIMEOUT",
        "LAST MODIFIED",
        "URL",
    ]
    .map(str::to_string)
    .to_vec();
    if !any_url {
        header.pop();
        for row in &mut rows {
            row.pop();
        }
    }
    let mut widths = vec![0usize; header.len()];
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

/// `gust logs`.
pub async fn logs(data_dir: &Path, name: &str, follow: bool, lines: usize) -> Result<ExitCode> {
    let client = Client::from_env_or_data_dir(data_dir)?;
    let base = format!("/gust/v1/functions/{}/logs", segment(name));
    let v = client
        .get(&format!("{base}?tail={lines}"))
        .await?
        .error_for_status()?
        .json()?;
    let mut after = print_events(&v, -1);
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let v = client
            .get(&format!("{base}?after={after}&limit=1000"))
            .await?
            .error_for_status()?
            .json()?;
        after = print_events(&v, after);
    }
}

fn print_events(v: &serde_json::Value, mut after: i64) -> i64 {
    for e in v["events"].as_array().into_iter().flatten() {
        let ts = e["ts_ms"].as_i64().unwrap_or(0);
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts) * 1_000_000)
            .map(gust_model::rfc3339_millis)
            .unwrap_or_default();
        println!("{t}  {}", e["message"].as_str().unwrap_or(""));
        after = after.max(e["seq"].as_i64().unwrap_or(after));
    }
    after
}

/// `gust rm`.
pub async fn rm(data_dir: &Path, name: &str) -> Result<ExitCode> {
    let client = Client::from_env_or_data_dir(data_dir)?;
    client
        .send(
            Method::DELETE,
            &format!("/2015-03-31/functions/{}", segment(name)),
            Vec::new(),
            &[],
        )
        .await?
        .error_for_status()?;
    eprintln!("deleted {name}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/tmp/gust-data"), "/tmp/gust-data");
        assert_eq!(shell_quote("/tmp/my data"), "'/tmp/my data'");
        assert_eq!(shell_quote("/tmp/it's"), "'/tmp/it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
