//! Errors of setting up the runtime (not of invocations: those are [`crate::InvokeError`]).

use std::path::PathBuf;

/// Why the process runtime could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file or directory under the work directory could not be written.
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
}
