//! `gust deploy` refuses a bad manifest before it contacts any server, naming the file, line
//! and column of the mistake. Runs the real binary; needs no `gust up`.

use std::path::Path;
use std::process::Command;

fn deploy(dir: &Path, manifest: &str) -> (bool, String) {
    let path = dir.join("gust.toml");
    std::fs::write(&path, manifest).expect("write manifest");
    let out = Command::new(env!("CARGO_BIN_EXE_gust"))
        .arg("deploy")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("no-such-data-dir"))
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .expect("run gust");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FUNCTION: &str =
    "[functions.users]\nruntime = \"python3.12\"\nhandler = \"app.handler\"\ncode = \"users\"\n";

#[test]
fn bad_route_keys_are_located() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, err) = deploy(
        tmp.path(),
        &format!("{FUNCTION}routes = [\n  \"GET /users\",\n  \"GET /users/{{id\",\n]\n"),
    );
    assert!(!ok);
    let manifest = tmp.path().join("gust.toml");
    let expected = format!("{}:7:3: api default: Invalid route key", manifest.display());
    assert!(err.contains(&expected), "{err}");
}

#[test]
fn undeclared_apis_and_bad_api_settings_are_located() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, err) = deploy(
        tmp.path(),
        &format!("# users\n{FUNCTION}api = \"shop\"\nroutes = [\"GET /users\"]\n"),
    );
    assert!(!ok);
    assert!(
        err.contains("gust.toml:2:1: function users: api \"shop\" is not declared"),
        "{err}"
    );

    let (ok, err) = deploy(
        tmp.path(),
        &format!(
            "{FUNCTION}\n[apis.shop]\nintegration_timeout_ms = 5\nroutes = {{ \"GET /a\" = \"users\" }}\n"
        ),
    );
    assert!(!ok);
    assert!(
        err.contains("gust.toml:6:1: api shop: Invalid integration timeout"),
        "{err}"
    );

    let (ok, err) = deploy(
        tmp.path(),
        &format!("{FUNCTION}\n[apis.shop]\npayload_format = 2.0\n"),
    );
    assert!(!ok);
    assert!(err.contains("gust.toml:7:"), "{err}");
}

#[test]
fn bad_url_settings_are_located() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, err) = deploy(
        tmp.path(),
        &format!("{FUNCTION}\n[functions.users.url]\nauth_type = \"NONE\"\ncorz = {{}}\n"),
    );
    assert!(!ok);
    assert!(err.contains("gust.toml:"), "{err}");
    assert!(err.contains("corz"), "{err}");
}

#[test]
fn a_good_manifest_gets_as_far_as_looking_for_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, err) = deploy(
        tmp.path(),
        &format!("{FUNCTION}routes = [\"GET /users\"]\nurl = true\n"),
    );
    assert!(!ok);
    assert!(err.contains("no running Gust found"), "{err}");
}

#[test]
fn bad_tables_are_located() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ok, err) = deploy(
        tmp.path(),
        "# app\n\n[tables.users]\npartition_key = \"id:X\"\n",
    );
    assert!(!ok);
    assert!(
        err.contains("gust.toml:3:1: table users: key \"id:X\": type \"X\" is not S, N or B"),
        "{err}"
    );
    let (ok, err) = deploy(
        tmp.path(),
        "[tables.users]\npartition_key = \"id\"\n[tables.users.indexes.by-id]\npartition_key = \"id:N\"\n",
    );
    assert!(!ok);
    assert!(
        err.contains("attribute id is used as both S and N"),
        "{err}"
    );
    let (ok, err) = deploy(tmp.path(), "[tables.users]\nsort_key = \"x\"\n");
    assert!(!ok);
    assert!(err.contains("partition_key"), "{err}");
}
