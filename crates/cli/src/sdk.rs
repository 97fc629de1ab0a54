//! `gust sdk install`: puts the AWS SDKs that Lambda's managed runtimes include (boto3 for
//! Python, the AWS SDK for JavaScript v3 for Node) into the directory `gust up` hands to
//! functions, so handlers that `import boto3` or `require('@aws-sdk/client-dynamodb')` run
//! unmodified without bundling them.
//!
//! Layout: `<dir>/python` (a `pip install --target` tree, appended to `PYTHONPATH`) and
//! `<dir>/node/node_modules` (appended to `NODE_PATH`). Each half is built beside the old one
//! and swapped in with a rename, so a failed install leaves the previous SDK working.
//! Installing needs pip and npm and network access (or their caches); running does not.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};

/// The Python packages installed unless told otherwise (Lambda's Python runtimes ship boto3).
pub const DEFAULT_PYTHON_PACKAGES: &[&str] = &["boto3"];
/// The JavaScript packages installed unless told otherwise: the v3 clients of the services Gust
/// speaks, plus the DynamoDB document client.
pub const DEFAULT_NODE_PACKAGES: &[&str] = &[
    "@aws-sdk/client-dynamodb",
    "@aws-sdk/lib-dynamodb",
    "@aws-sdk/client-lambda",
    "@aws-sdk/client-s3",
    "@aws-sdk/client-sqs",
    "@aws-sdk/client-sns",
    "@aws-sdk/client-eventbridge",
];

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Data directory of the `gust up` that will use the SDK (the SDK goes to <data-dir>/sdk).
    #[arg(long, env = "GUST_DATA_DIR", default_value = ".gust")]
    data_dir: PathBuf,
    /// Install into this directory instead (give the same path to `gust up --sdk-dir`).
    #[arg(long, env = "GUST_SDK_DIR")]
    dir: Option<PathBuf>,
    /// Python package specs to install (default: boto3). Repeatable: --python-package boto3==1.35.0
    #[arg(long = "python-package")]
    python_packages: Vec<String>,
    /// npm package specs to install (default: the AWS SDK v3 clients of the services Gust speaks).
    #[arg(long = "node-package")]
    node_packages: Vec<String>,
    /// Interpreter whose pip installs the Python half (default: the first of GUST_PYTHON,
    /// /usr/bin/python3 and python3 on PATH that has pip).
    #[arg(long, env = "GUST_PYTHON")]
    python: Option<PathBuf>,
    /// Skip the Python SDK.
    #[arg(long)]
    no_python: bool,
    /// Skip the JavaScript SDK.
    #[arg(long)]
    no_node: bool,
}

pub fn install(args: InstallArgs) -> Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| args.data_dir.join("sdk"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    if !args.no_python {
        let packages = or_default(&args.python_packages, DEFAULT_PYTHON_PACKAGES);
        let python = pip_python(args.python.as_deref())?;
        eprintln!(
            "installing {} into {}/python with {} -m pip ...",
            packages.join(" "),
            dir.display(),
            python.display()
        );
        swap_in(&dir.join("python"), |tmp| {
            let mut cmd = Command::new(&python);
            cmd.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-warn-script-location", "--target"])
            .arg(tmp)
            .args(&packages);
            run(cmd, "pip install")
        })?;
        for (name, version) in python_versions(&dir.join("python")) {
            eprintln!("  {name} {version}");
        }
    }
    if !args.no_node {
        let packages = or_default(&args.node_packages, DEFAULT_NODE_PACKAGES);
        eprintln!(
            "installing {} into {}/node with npm ...",
            packages.join(" "),
            dir.display()
        );
        swap_in(&dir.join("node"), |tmp| {
            let mut cmd = Command::new("npm");
            cmd.args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .arg("--prefix")
                .arg(tmp)
                .args(&packages);
            run(cmd, "npm install")
        })?;
        for p in &packages {
            let name = package_name(p);
            let manifest = dir
                .join("node/node_modules")
                .join(name)
                .join("package.json");
            if let Some(v) = std::fs::read_to_string(manifest)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|j| j["version"].as_str().map(str::to_string))
            {
                eprintln!("  {name} {v}");
            }
        }
    }
    eprintln!(
        "done: functions started by `gust up{}` can now use the SDK (running functions pick it up when their environments restart)",
        if args.dir.is_some() {
            format!(" --sdk-dir {}", dir.display())
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn or_default(given: &[String], default: &[&str]) -> Vec<String> {
    if given.is_empty() {
        default.iter().map(|s| s.to_string()).collect()
    } else {
        given.to_vec()
    }
}

/// `@aws-sdk/client-s3@3.600.0` → `@aws-sdk/client-s3`; `boto3` → `boto3`.
fn package_name(spec: &str) -> &str {
    let start = usize::from(spec.starts_with('@'));
    match spec[start..].find('@') {
        Some(i) => &spec[..start + i],
        None => spec,
    }
}

/// The first candidate interpreter that can run pip.
fn pip_python(given: Option<&Path>) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = given {
        candidates.push(p.to_path_buf());
    }
    candidates.push(PathBuf::from("/usr/bin/python3"));
    candidates.push(PathBuf::from("python3"));
    for c in &candidates {
        let ok = Command::new(c)
            .args(["-m", "pip", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(c.clone());
        }
    }
    bail!(
        "no Python with pip found (tried {}); install pip (Debian: apt-get install python3-pip) or pass --python",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Builds `target` in a sibling temporary directory with `build`, then replaces `target`.
fn swap_in(target: &Path, build: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = target.with_extension("installing");
    let old = target.with_extension("old");
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&old);
    std::fs::create_dir_all(&tmp)?;
    if let Err(e) = build(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if target.exists() {
        std::fs::rename(target, &old)?;
    }
    std::fs::rename(&tmp, target)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program} (is it installed?)"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{what} failed ({}):\n{}", out.status, tail.join("\n"));
    }
    Ok(())
}

/// `(name, version)` of the distributions in a `pip install --target` tree, for the summary.
fn python_versions(dir: &Path) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".dist-info")?;
            let (n, v) = stem.rsplit_once('-')?;
            matches!(n, "boto3" | "botocore").then(|| (n.to_string(), v.to_string()))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        assert_eq!(package_name("boto3"), "boto3");
        assert_eq!(package_name("@aws-sdk/client-s3"), "@aws-sdk/client-s3");
        assert_eq!(
            package_name("@aws-sdk/client-s3@3.600.0"),
            "@aws-sdk/client-s3"
        );
        assert_eq!(package_name("left-pad@1.0.0"), "left-pad");
    }

    #[test]
    fn failed_build_keeps_the_previous_tree() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("python");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("old.py"), "").unwrap();
        let r = swap_in(&target, |tmp| {
            std::fs::write(tmp.join("half.py"), "").unwrap();
            bail!("network down")
        });
        assert!(r.is_err());
        assert!(target.join("old.py").exists());
        assert!(!target.with_extension("installing").exists());
        swap_in(&target, |tmp| {
            std::fs::write(tmp.join("new.py"), "")?;
            Ok(())
        })
        .unwrap();
        assert!(target.join("new.py").exists() && !target.join("old.py").exists());
    }
}
