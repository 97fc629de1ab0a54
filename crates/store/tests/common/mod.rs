//! Fixtures shared by the store's integration tests.

use gust_model::{FunctionConfig, FunctionRecord};

/// A plain Python function record named `name`.
pub fn record(name: &str) -> FunctionRecord {
    FunctionRecord {
        code_sha256: "c2hh".into(),
        code_size: 1,
        last_modified: "2024-01-02T03:04:05.000+0000".into(),
        revision_id: "r1".into(),
        ..FunctionRecord::new(FunctionConfig::new(name, "python3.12", "app.handler"), "00")
    }
}

/// Runs the test `child_test` of this test binary in a child process (with `env_var` set to
/// `dir`), reads its stdout until it has acknowledged `count` writes (the lines `parse`
/// accepts), kills it with SIGKILL, and returns every acknowledgement it printed, including
/// those already in the pipe when it died. The caller then reopens the store in `dir` and
/// checks that each acknowledged write is there.
#[allow(dead_code)] // not every test binary has a durability test
pub fn acks_until_kill_9<T>(
    child_test: &str,
    env_var: &str,
    dir: &std::path::Path,
    count: usize,
    parse: impl Fn(&str) -> Option<T>,
) -> Vec<T> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env_var, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut acked = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if let Some(a) = parse(&line.expect("line")) {
            acked.push(a);
            if acked.len() == count {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL");
    // Acks already in the pipe count too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(a) = parse(&line) {
            acked.push(a);
        }
    }
    child.wait().expect("reap");
    assert!(
        acked.len() >= count,
        "child acknowledged only {} writes",
        acked.len()
    );
    acked
}
