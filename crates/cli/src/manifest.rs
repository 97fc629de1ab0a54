//! `gust.toml`: the functions a project deploys.
//!
//! ```toml
//! [functions.hello]
//! runtime = "python3.12"
//! handler = "app.handler"
//! code = "hello"            # a directory or a .zip, relative to this file
//! timeout = 3               # seconds
//! memory = 128              # MB
//! reserved_concurrency = 10
//! provisioned_concurrency = 1
//! [functions.hello.environment]
//! GREETING = "hi"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    pub runtime: String,
    #[serde(default)]
    pub handler: String,
    pub code: PathBuf,
    pub timeout: Option<u32>,
    pub memory: Option<u32>,
    pub description: Option<String>,
    pub reserved_concurrency: Option<u32>,
    pub provisioned_concurrency: Option<u32>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// A manifest error, located in the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ManifestError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses a manifest and checks each function's settings, pointing at the offending line.
pub fn parse(file: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let at = |offset: usize, message: String| {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ManifestError {
            file: file.display().to_string(),
            line,
            column,
            message,
        }
    };
    let manifest: Manifest = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().to_string())
    })?;
    for (name, f) in &manifest.functions {
        let header = format!("[functions.{name}]");
        let offset = text.find(&header).unwrap_or(0);
        let config = f.to_config(name);
        if let Err(e) = config.validate() {
            return Err(at(offset, format!("function {name}: {e}")));
        }
    }
    Ok(manifest)
}

impl FunctionSpec {
    pub fn to_config(&self, name: &str) -> gust_model::FunctionConfig {
        gust_model::FunctionConfig {
            name: name.to_string(),
            runtime: self.runtime.clone(),
            handler: self.handler.clone(),
            role: String::new(),
            description: self.description.clone().unwrap_or_default(),
            timeout: self
                .timeout
                .unwrap_or(gust_model::limits::DEFAULT_TIMEOUT_S),
            memory_size: self.memory.unwrap_or(gust_model::limits::DEFAULT_MEMORY_MB),
            ephemeral_storage: 512,
            environment: self.environment.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_functions() {
        let m = parse(
            Path::new("gust.toml"),
            "[functions.hello]\nruntime = \"python3.12\"\nhandler = \"app.handler\"\ncode = \"hello\"\n[functions.hello.environment]\nA = \"1\"\n",
        )
        .unwrap();
        let f = &m.functions["hello"];
        assert_eq!(f.environment["A"], "1");
        assert_eq!(f.to_config("hello").timeout, 3);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse(
            Path::new("gust.toml"),
            "[functions.a]\nruntime = \"python3.12\"\ncode = \n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_located() {
        let e = parse(
            Path::new("g.toml"),
            "\n[functions.a]\nruntime = \"python3.12\"\nhandler=\"a.b\"\ncode=\"x\"\nmemroy = 5\n",
        )
        .unwrap_err();
        assert!(e.message.contains("memroy"), "{e}");
        let e = parse(
            Path::new("g.toml"),
            "\n\n[functions.a]\nruntime = \"cobol\"\nhandler=\"a.b\"\ncode=\"x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.to_string().starts_with("g.toml:3:1:"), "{e}");
    }
}
