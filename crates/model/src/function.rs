//! A function's configuration as Gust stores it, and the runtime families it can name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::limits;

/// Version of the persisted [`FunctionRecord`] layout; bump it and add a migration when the
/// layout changes.
pub const FUNCTION_SCHEMA_VERSION: u32 = 1;

/// The family a runtime identifier belongs to, which decides how an environment starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeKind {
    /// `python3.x`: the embedded Python bootstrap runs `module.function`.
    Python { version: String },
    /// `nodejsNN.x`: the embedded Node bootstrap runs `file.export`.
    Node { version: String },
    /// `provided`, `provided.al2`, `provided.al2023`: the package's own `bootstrap` executable.
    Provided,
    /// `wasm` (a Gust extension): a WebAssembly component (`wasi:http/proxy`) or WASI
    /// preview-1 command module, run by the Wasm runtime; `handler` optionally names the
    /// `.wasm` file inside the package.
    Wasm,
}

impl RuntimeKind {
    /// Parses a Lambda runtime identifier such as `python3.12`, `nodejs20.x` or `provided.al2023`.
    pub fn parse(runtime: &str) -> Option<RuntimeKind> {
        if let Some(v) = runtime.strip_prefix("python") {
            let ok =
                v.starts_with("3.") && v[2..].chars().all(|c| c.is_ascii_digit()) && v.len() > 2;
            return ok.then(|| RuntimeKind::Python {
                version: v.to_string(),
            });
        }
        if let Some(v) = runtime.strip_prefix("nodejs") {
            let major = v.strip_suffix(".x").unwrap_or(v);
            let ok = !major.is_empty() && major.chars().all(|c| c.is_ascii_digit());
            return ok.then(|| RuntimeKind::Node {
                version: major.to_string(),
            });
        }
        match runtime {
            "provided" | "provided.al2" | "provided.al2023" => Some(RuntimeKind::Provided),
            "wasm" => Some(RuntimeKind::Wasm),
            _ => None,
        }
    }
}

/// The user-settable part of a function, as `CreateFunction` / `UpdateFunctionConfiguration`
/// and the manifest describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionConfig {
    pub name: String,
    pub runtime: String,
    pub handler: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub description: String,
    /// Seconds.
    pub timeout: u32,
    /// Megabytes.
    pub memory_size: u32,
    /// Megabytes of `/tmp` (Lambda's `EphemeralStorage.Size`, 512 to 10,240).
    #[serde(default = "default_ephemeral")]
    pub ephemeral_storage: u32,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

fn default_ephemeral() -> u32 {
    512
}

impl FunctionConfig {
    /// The configuration `CreateFunction` gives a function when only its name, runtime and
    /// handler are set: Lambda's default timeout, memory and `/tmp` size, no environment.
    pub fn new(
        name: impl Into<String>,
        runtime: impl Into<String>,
        handler: impl Into<String>,
    ) -> FunctionConfig {
        FunctionConfig {
            name: name.into(),
            runtime: runtime.into(),
            handler: handler.into(),
            role: String::new(),
            description: String::new(),
            timeout: crate::limits::DEFAULT_TIMEOUT_S,
            memory_size: crate::limits::DEFAULT_MEMORY_MB,
            ephemeral_storage: default_ephemeral(),
            environment: BTreeMap::new(),
        }
    }
}

impl FunctionRecord {
    /// A record of `config` running the unpacked code `code_id`, at the current schema
    /// version, with no concurrency settings and no tags. The code's Lambda-facing identity
    /// (`code_sha256`, `code_size`), `last_modified` and `revision_id` start empty; the caller
    /// sets the ones it knows.
    pub fn new(config: FunctionConfig, code_id: impl Into<String>) -> FunctionRecord {
        FunctionRecord {
            schema_version: FUNCTION_SCHEMA_VERSION,
            config,
            code_sha256: String::new(),
            code_id: code_id.into(),
            code_size: 0,
            last_modified: String::new(),
            revision_id: String::new(),
            reserved_concurrency: None,
            provisioned_concurrency: 0,
            tags: BTreeMap::new(),
        }
    }
}

/// A deployed function: configuration, code identity and concurrency settings. This is the
/// persisted form; it carries [`FUNCTION_SCHEMA_VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub schema_version: u32,
    pub config: FunctionConfig,
    /// Base64 of the SHA-256 of the zip, as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    /// Hex SHA-256 of the zip; names the unpacked code directory in the store.
    pub code_id: String,
    pub code_size: u64,
    /// `2024-01-02T03:04:05.000+0000`, Lambda's format.
    pub last_modified: String,
    pub revision_id: String,
    /// `PutFunctionConcurrency`; `Some(0)` throttles every invocation.
    pub reserved_concurrency: Option<u32>,
    /// Environments kept warm at all times (provisioned concurrency).
    #[serde(default)]
    pub provisioned_concurrency: u32,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Why a configuration was refused; the message is what Lambda's
/// `InvalidParameterValueException` would say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

impl FunctionConfig {
    /// Checks names and ranges the way Lambda's API validates them.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        validate_name(&self.name)?;
        if RuntimeKind::parse(&self.runtime).is_none() {
            return Err(InvalidConfig(format!(
                "Value {} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [python3.9, python3.10, python3.11, python3.12, python3.13, nodejs18.x, nodejs20.x, nodejs22.x, provided, provided.al2, provided.al2023, wasm]",
                self.runtime
            )));
        }
        if self.handler.is_empty()
            && !matches!(
                RuntimeKind::parse(&self.runtime),
                Some(RuntimeKind::Provided | RuntimeKind::Wasm)
            )
        {
            return Err(InvalidConfig(
                "Handler is required for runtime ".to_string() + &self.runtime,
            ));
        }
        if self.handler.len() > 128 {
            return Err(InvalidConfig(
                "1 validation error detected: Value at 'handler' failed to satisfy constraint: Member must have length less than or equal to 128".into(),
            ));
        }
        if self.timeout < 1 || self.timeout > limits::MAX_TIMEOUT_S {
            return Err(InvalidConfig(format!(
                "1 validation error detected: Value '{}' at 'timeout' failed to satisfy constraint: Member must have value {} 900",
                self.timeout,
                if self.timeout < 1 { "greater than or equal to 1" } else { "less than or equal to" }
            )));
        }
        if self.memory_size < limits::MIN_MEMORY_MB || self.memory_size > limits::MAX_MEMORY_MB {
            return Err(InvalidConfig(format!(
                "1 validation error detected: Value '{}' at 'memorySize' failed to satisfy constraint: Member must have value {}",
                self.memory_size,
                if self.memory_size < limits::MIN_MEMORY_MB {
                    "greater than or equal to 128"
                } else {
                    "less than or equal to 10240"
                }
            )));
        }
        if self.ephemeral_storage < 512 || self.ephemeral_storage > 10_240 {
            return Err(InvalidConfig(format!(
                "1 validation error detected: Value '{}' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value between 512 and 10240",
                self.ephemeral_storage
            )));
        }
        let env_bytes: usize = self
            .environment
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if env_bytes > limits::MAX_ENV_BYTES {
            return Err(InvalidConfig(
                "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit.".into(),
            ));
        }
        for key in self.environment.keys() {
            let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(InvalidConfig(format!(
                    "Lambda was unable to configure your environment variables because the environment variables you have provided contains invalid keys: {key}"
                )));
            }
        }
        Ok(())
    }
}

/// Lambda's function-name rule: 1 to 64 characters of letters, digits, `-` and `_`.
pub fn validate_name(name: &str) -> Result<(), InvalidConfig> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(InvalidConfig(format!(
            "1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FunctionConfig {
        FunctionConfig::new("hello", "python3.12", "app.handler")
    }

    #[test]
    fn a_new_function_has_lambdas_defaults() {
        let c = cfg();
        assert_eq!(
            (c.timeout, c.memory_size, c.ephemeral_storage),
            (3, 128, 512)
        );
        let r = FunctionRecord::new(c.clone(), "abc");
        assert_eq!(r.schema_version, FUNCTION_SCHEMA_VERSION);
        assert_eq!((r.config, r.code_id.as_str()), (c, "abc"));
        assert_eq!(
            (r.reserved_concurrency, r.provisioned_concurrency),
            (None, 0)
        );
    }

    #[test]
    fn runtimes_parse() {
        assert_eq!(
            RuntimeKind::parse("python3.12"),
            Some(RuntimeKind::Python {
                version: "3.12".into()
            })
        );
        assert_eq!(
            RuntimeKind::parse("nodejs20.x"),
            Some(RuntimeKind::Node {
                version: "20".into()
            })
        );
        assert_eq!(
            RuntimeKind::parse("provided.al2023"),
            Some(RuntimeKind::Provided)
        );
        assert_eq!(RuntimeKind::parse("wasm"), Some(RuntimeKind::Wasm));
        assert_eq!(RuntimeKind::parse("java21"), None);
        assert_eq!(RuntimeKind::parse("python2.7"), None);
        assert_eq!(RuntimeKind::parse("python3."), None);
    }

    #[test]
    fn validation_rejects_out_of_range() {
        assert!(cfg().validate().is_ok());
        let mut c = cfg();
        c.runtime = "wasm".into();
        c.handler = String::new();
        assert!(c.validate().is_ok(), "wasm functions need no handler");
        let mut c = cfg();
        c.timeout = 901;
        assert!(c.validate().is_err());
        let mut c = cfg();
        c.memory_size = 64;
        assert!(c.validate().is_err());
        let mut c = cfg();
        c.name = "bad name".into();
        assert!(c.validate().is_err());
        let mut c = cfg();
        c.environment.insert("1BAD".into(), "x".into());
        assert!(c.validate().is_err());
        let mut c = cfg();
        c.environment.insert("BIG".into(), "x".repeat(5000));
        assert!(c.validate().is_err());
    }
}
