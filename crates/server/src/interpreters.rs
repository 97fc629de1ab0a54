//! Finds the interpreters behind the `python3.x` and `nodejs*` runtimes.
//!
//! Version shims (pyenv, nvm) cost tens of milliseconds per start, so a real binary is
//! preferred: the system interpreter first, then whatever `PATH` holds, with shims skipped.

use std::path::{Path, PathBuf};

/// `GUST_PYTHON`, else `/usr/bin/python3`, else the first non-shim `python3` on `PATH`.
pub fn resolve_python() -> Option<PathBuf> {
    resolve(
        "GUST_PYTHON",
        &["/usr/bin/python3", "/usr/local/bin/python3"],
        "python3",
    )
}

/// `GUST_NODE`, else `/usr/bin/node`, else the first non-shim `node` on `PATH`.
pub fn resolve_node() -> Option<PathBuf> {
    resolve(
        "GUST_NODE",
        &["/usr/bin/node", "/usr/local/bin/node"],
        "node",
    )
}

fn resolve(var: &str, fixed: &[&str], name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = fixed.iter().map(Path::new).find(|p| is_executable(p)) {
        return Some(p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.to_string_lossy().contains("shims"))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
