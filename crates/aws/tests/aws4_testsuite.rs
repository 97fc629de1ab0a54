//! AWS's published SigV4 test suite, run against our canonicalization, signing arithmetic and
//! verifier.
//!
//! The suite is not in this repository: botocore's source distribution ships it under
//! `tests/unit/auth/aws4_testsuite`. `tests/fetch-sigv4-suite.sh CACHE_DIR` downloads it and
//! prints its path; point `GUST_SIGV4_SUITE` there. Without the variable this test passes after
//! saying it was skipped.
//!
//! For every case (`<name>.req`, `.creq`, `.sts`, `.authz`) the test checks that our canonical
//! request, string to sign and `Authorization` header equal AWS's, and that
//! [`gust_aws::sigv4::verify`] accepts the request signed with the expected `.authz` at the
//! suite's time (and rejects it with a tampered signature or 16 minutes later).

use std::path::{Path, PathBuf};

use gust_aws::sigv4::{
    canonical_query, canonical_request, canonical_uri, credential_scope, sha256_hex, signature,
    signing_key, string_to_sign, verify, Credentials, ALGORITHM,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use time::macros::datetime;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const SERVICE: &str = "service";

/// Cases whose verification step is deliberately not run, with the reason. Their canonical
/// request, string to sign and Authorization header are still checked.
const VERIFY_UNSUPPORTED: &[(&str, &str)] = &[(
    "normalize-path/get-space",
    "the request-target contains a raw space, which is not a valid HTTP request-target: \
     http::Uri (and hyper) reject it before any verifier sees it. A real client sends %20, \
     which SigV4 signs double-encoded as %2520 (see the unit tests)",
)];

/// A raw HTTP request from a `.req` file.
struct RawRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Parses a `.req` file: request line, headers (with obs-fold continuation lines unfolded into
/// one value, as an HTTP parser would), blank line, body.
fn parse_req(text: &str) -> Result<RawRequest, String> {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or("empty request")?;
    let (method, rest) = request_line
        .split_once(' ')
        .ok_or("request line without a space")?;
    let (target, _version) = rest
        .rsplit_once(' ')
        .ok_or("request line without a version")?;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut body_lines: Vec<&str> = Vec::new();
    let mut in_body = false;
    for line in lines {
        if in_body {
            body_lines.push(line);
        } else if line.is_empty() {
            in_body = true;
        } else if line.starts_with([' ', '\t']) {
            let last = headers
                .last_mut()
                .ok_or("continuation line before any header")?;
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').ok_or("header without a colon")?;
            headers.push((name.to_owned(), value.trim_start().to_owned()));
        }
    }
    Ok(RawRequest {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: body_lines.join("\n").into_bytes(),
    })
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|e| format!("header name {name:?}: {e}"))?;
        let value =
            HeaderValue::from_str(value).map_err(|e| format!("header value {value:?}: {e}"))?;
        map.append(name, value);
    }
    Ok(map)
}

fn read(dir: &Path, name: &str, ext: &str) -> Result<String, String> {
    let path = dir.join(format!("{name}.{ext}"));
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn find_cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.join(format!("{name}.req")).is_file() {
                out.push(path.clone());
            }
            find_cases(&path, out);
        }
    }
}

/// The directory named `aws4_testsuite` at or below `dir`.
fn find_suite_root(dir: &Path) -> Option<PathBuf> {
    if dir.file_name().is_some_and(|n| n == "aws4_testsuite") {
        return Some(dir.to_path_buf());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    entries.iter().find_map(|p| find_suite_root(p))
}

/// Runs one case; `Ok(true)` when it was also verified.
fn run_case(suite: &Path, dir: &Path) -> Result<bool, String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("case directory name")?;
    let rel = dir
        .strip_prefix(suite)
        .map_err(|e| e.to_string())?
        .to_string_lossy()
        .replace('\\', "/");
    let raw = parse_req(&read(dir, name, "req")?)?;
    let expected_creq = read(dir, name, "creq")?;
    let expected_sts = read(dir, name, "sts")?;
    let expected_authz = read(dir, name, "authz")?;

    let mut headers = header_map(&raw.headers)?;
    // The session-token cases sign with temporary credentials: the signer adds the token header
    // (botocore's runner does the same, taking the token from the expected canonical request).
    if let Some(token) = expected_creq
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-security-token:"))
    {
        if !headers.contains_key("x-amz-security-token") {
            let v = HeaderValue::from_str(token).map_err(|e| e.to_string())?;
            headers.insert("x-amz-security-token", v);
        }
    }
    let mut signed: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
    signed.sort();
    signed.dedup();

    let (path, query) = raw.target.split_once('?').unwrap_or((&raw.target, ""));
    let creq = canonical_request(
        &raw.method,
        &canonical_uri(path, SERVICE),
        &canonical_query(query),
        &headers,
        &signed,
        &sha256_hex(&raw.body),
    );
    if creq != expected_creq.trim_end() {
        return Err(format!(
            "canonical request differs\n--- ours\n{creq}\n--- expected\n{expected_creq}"
        ));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or("no x-amz-date")?
        .to_owned();
    let date = &amz_date[..8];
    let scope = credential_scope(date, REGION, SERVICE);
    let sts = string_to_sign(&amz_date, &scope, &creq);
    if sts != expected_sts.trim_end() {
        return Err(format!(
            "string to sign differs\n--- ours\n{sts}\n--- expected\n{expected_sts}"
        ));
    }
    let key = signing_key(SECRET_KEY, date, REGION, SERVICE);
    let authz = format!(
        "{ALGORITHM} Credential={ACCESS_KEY}/{scope}, SignedHeaders={}, Signature={}",
        signed.join(";"),
        signature(&key, &sts)
    );
    let expected_authz = expected_authz.trim_end();
    if authz != expected_authz {
        return Err(format!(
            "authorization differs\n--- ours\n{authz}\n--- expected\n{expected_authz}"
        ));
    }

    if VERIFY_UNSUPPORTED
        .iter()
        .any(|(case, _)| rel.ends_with(case))
    {
        return Ok(false);
    }
    let creds = Credentials {
        access_key_id: ACCESS_KEY.to_owned(),
        secret_access_key: SECRET_KEY.to_owned(),
    };
    let build = |authz: &str| -> Result<http::request::Parts, String> {
        let mut builder = http::Request::builder()
            .method(raw.method.as_str())
            .uri(raw.target.as_str());
        for (k, v) in &headers {
            builder = builder.header(k, v);
        }
        let req = builder
            .header("authorization", authz)
            .body(())
            .map_err(|e| format!("building the request: {e}"))?;
        Ok(req.into_parts().0)
    };
    let now = datetime!(2015-08-30 12:36:00 UTC);
    let parts = build(expected_authz)?;
    let identity = verify(&parts, &raw.body, now, &creds)
        .map_err(|e| format!("verify rejected the suite's signature: {e}"))?;
    if identity.access_key_id != ACCESS_KEY
        || identity.region != REGION
        || identity.service != SERVICE
    {
        return Err(format!("unexpected identity {identity:?}"));
    }
    let late = now + time::Duration::minutes(16);
    if verify(&parts, &raw.body, late, &creds).is_ok() {
        return Err("verify accepted the request 16 minutes late".into());
    }
    let mut tampered = expected_authz.to_owned();
    let last = tampered.pop().ok_or("empty authz")?;
    tampered.push(if last == '0' { '1' } else { '0' });
    if verify(&build(&tampered)?, &raw.body, now, &creds).is_ok() {
        return Err("verify accepted a tampered signature".into());
    }
    Ok(true)
}

#[test]
fn aws4_testsuite() {
    let Some(suite) = std::env::var_os("GUST_SIGV4_SUITE") else {
        println!(
            "skipped: GUST_SIGV4_SUITE is not set (see crates/aws/tests/fetch-sigv4-suite.sh)"
        );
        return;
    };
    // Either the suite itself or a directory above it (such as the fetch script's cache dir).
    let given = PathBuf::from(suite);
    let suite = find_suite_root(&given).unwrap_or(given);
    let mut cases = Vec::new();
    find_cases(&suite, &mut cases);
    assert!(
        !cases.is_empty(),
        "no test cases found under {}",
        suite.display()
    );
    let mut failures = Vec::new();
    let mut verified = 0;
    for dir in &cases {
        match run_case(&suite, dir) {
            Ok(true) => verified += 1,
            Ok(false) => {}
            Err(e) => failures.push(format!("{}: {e}", dir.display())),
        }
    }
    println!(
        "sigv4 suite: {} cases, {} signed correctly, {} also verified, {} failed",
        cases.len(),
        cases.len() - failures.len(),
        verified,
        failures.len()
    );
    for (case, reason) in VERIFY_UNSUPPORTED {
        println!("verification not run for {case}: {reason}");
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n\n"));
}
