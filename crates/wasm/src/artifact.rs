//! From a function's package to something ready to instantiate: find the `.wasm` file, tell a
//! component from a core module, compile it (or load the cached artifact), and link it.
//!
//! Compiled artifacts are files in the cache directory named
//! `<sha256 of the module>-<engine hash>.cwasm`; a small index file per package
//! (`index/<code id>-<file hash>`) remembers which module a package holds, so a restart
//! neither recompiles nor rereads and rehashes the module. Artifacts are written to a
//! temporary name and renamed, and an artifact that fails to load is recompiled and
//! replaced, so a crash mid-write costs a compilation and nothing else.

use std::path::{Component as PathComponent, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker as ComponentLinker};
use wasmtime::{Engine, InstancePre, Linker, Module, Precompiled};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::host::{CgiHost, HttpHost};

/// The two kinds of binary the executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A component exporting `wasi:http/incoming-handler` (the `wasi:http/proxy` world).
    HttpComponent,
    /// A core WASI preview-1 command module, driven as a WAGI (CGI) handler.
    CgiModule,
}

impl WasmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WasmKind::HttpComponent => "wasi:http component",
            WasmKind::CgiModule => "WAGI module",
        }
    }
}

/// A module ready to instantiate: compiled, linked and type-checked once.
pub(crate) enum Prepared {
    Http(ProxyPre<HttpHost>),
    Cgi(InstancePre<CgiHost>),
}

/// A loaded function binary.
pub(crate) struct Loaded {
    pub kind: WasmKind,
    pub prepared: Prepared,
    /// Hex SHA-256 of the module bytes.
    pub module_hash: String,
    /// Time spent compiling or loading the artifact.
    pub load_time: Duration,
    /// Whether this load compiled (false: the artifact came from the cache).
    pub compiled: bool,
}

/// Why a package cannot be run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The package or module is unusable; the same package will always fail the same way.
    #[error("{0}")]
    Invalid(String),
    /// A platform failure (I/O); worth retrying.
    #[error("{0}")]
    Io(String),
}

/// Counters for tests, benchmarks and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub compiled: AtomicU64,
    pub from_cache: AtomicU64,
}

/// The linkers every module of a kind is linked with. Host state is per store, so the same
/// linker serves every function.
pub(crate) struct Linkers {
    pub http: ComponentLinker<HttpHost>,
    pub cgi: Linker<CgiHost>,
}

impl Linkers {
    pub(crate) fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        let mut http = ComponentLinker::new(engine);
        // Full WASI preview 2 (filesystem and sockets included, but with nothing granted:
        // no preopened directories, no network), so components built with `wasi:cli`
        // imports (componentize-py, jco) link; then `wasi:http`.
        wasmtime_wasi::p2::add_to_linker_async(&mut http)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut http)?;
        let mut cgi = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut cgi, |h: &mut CgiHost| &mut h.wasi)?;
        Ok(Linkers { http, cgi })
    }
}

/// Finds the module inside an unpacked package: `handler` names it (a relative path), or
/// else the package root must hold exactly one `*.wasm` file.
pub(crate) fn locate(code_dir: &Path, handler: &str) -> Result<PathBuf, LoadError> {
    if !handler.is_empty() {
        let rel = Path::new(handler);
        let plain = rel
            .components()
            .all(|c| matches!(c, PathComponent::Normal(_)));
        if !plain {
            return Err(LoadError::Invalid(format!(
                "Handler '{handler}' must be a relative path to the .wasm file inside the package"
            )));
        }
        let path = code_dir.join(rel);
        if !path.is_file() {
            return Err(LoadError::Invalid(format!(
                "Handler '{handler}' names no file in the package"
            )));
        }
        return Ok(path);
    }
    let entries = std::fs::read_dir(code_dir)
        .map_err(|e| LoadError::Io(format!("reading {}: {e}", code_dir.display())))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LoadError::Io(e.to_string()))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "wasm") && path.is_file() {
            found.push(path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(LoadError::Invalid(
            "the package holds no .wasm file at its root (name one with Handler)".into(),
        )),
        n => Err(LoadError::Invalid(format!(
            "the package holds {n} .wasm files at its root; name the one to run with Handler"
        ))),
    }
}

/// Tells a component from a core module by the binary's header (`\0asm`, version, layer).
pub(crate) fn detect(bytes: &[u8]) -> Result<WasmKind, LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::Invalid(
            "not a WebAssembly binary (the file does not start with \\0asm)".into(),
        ));
    }
    match (bytes[4], bytes[6], bytes[7]) {
        (1, 0, 0) => Ok(WasmKind::CgiModule),
        (_, 1, 0) => Ok(WasmKind::HttpComponent),
        _ => Err(LoadError::Invalid(format!(
            "unsupported WebAssembly binary version {:02x?}",
            &bytes[4..8]
        ))),
    }
}

/// The on-disk artifact cache.
pub(crate) struct ArtifactCache {
    pub dir: PathBuf,
    pub engine_hash: String,
    pub max_module_bytes: u64,
}

impl ArtifactCache {
    fn artifact_path(&self, module_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{module_hash}-{}.cwasm", self.engine_hash))
    }

    fn index_path(&self, code_id: &str, rel: &str) -> PathBuf {
        let file = hex::encode(&Sha256::digest(rel.as_bytes())[..8]);
        self.dir.join("index").join(format!("{code_id}-{file}"))
    }

    /// Loads (from the cache) or compiles the module of a package, then links it. Blocking:
    /// call it off the async executor.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        linkers: &Linkers,
        counters: &Counters,
        code_dir: &Path,
        code_id: &str,
        handler: &str,
    ) -> Result<Loaded, LoadError> {
        let t0 = Instant::now();
        let path = locate(code_dir, handler)?;
        let rel = path
            .strip_prefix(code_dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let index = self.index_path(code_id, &rel);
        // Fast path: the package was compiled before (this run or an earlier one).
        if let Ok(module_hash) = std::fs::read_to_string(&index) {
            let module_hash = module_hash.trim().to_string();
            if let Some((kind, prepared)) = self.try_artifact(engine, linkers, &module_hash)? {
                counters.from_cache.fetch_add(1, Ordering::Relaxed);
                return Ok(Loaded {
                    kind,
                    prepared,
                    module_hash,
                    load_time: t0.elapsed(),
                    compiled: false,
                });
            }
        }
        let size = std::fs::metadata(&path)
            .map_err(|e| LoadError::Io(format!("reading {}: {e}", path.display())))?
            .len();
        if size > self.max_module_bytes {
            return Err(LoadError::Invalid(format!(
                "the module {rel} is {size} bytes; the limit is {} bytes",
                self.max_module_bytes
            )));
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| LoadError::Io(format!("reading {}: {e}", path.display())))?;
        let kind = detect(&bytes)?;
        let module_hash = hex::encode(Sha256::digest(&bytes));
        let cached = self.try_artifact(engine, linkers, &module_hash)?;
        let (kind, prepared, compiled) = match cached {
            Some((kind, prepared)) => {
                counters.from_cache.fetch_add(1, Ordering::Relaxed);
                (kind, prepared, false)
            }
            None => {
                let serialized = match kind {
                    WasmKind::HttpComponent => engine.precompile_component(&bytes),
                    WasmKind::CgiModule => engine.precompile_module(&bytes),
                }
                .map_err(|e| LoadError::Invalid(format!("invalid WebAssembly in {rel}: {e:#}")))?;
                counters.compiled.fetch_add(1, Ordering::Relaxed);
                let prepared = match kind {
                    WasmKind::HttpComponent => {
                        let c = deserialize_component(engine, &serialized)?;
                        link_component(linkers, &c)?
                    }
                    WasmKind::CgiModule => {
                        let m = deserialize_module(engine, &serialized)?;
                        link_module(linkers, &m)?
                    }
                };
                // Only a module that links is worth keeping.
                if let Err(e) = self.store_artifact(&module_hash, &serialized) {
                    tracing::warn!(error = %e, "cannot write a compiled Wasm artifact; it will be compiled again after a restart");
                }
                (kind, prepared, true)
            }
        };
        if let Err(e) = write_file(&index, module_hash.as_bytes()) {
            tracing::warn!(error = %e, "cannot write the Wasm artifact index");
        }
        Ok(Loaded {
            kind,
            prepared,
            module_hash,
            load_time: t0.elapsed(),
            compiled,
        })
    }

    /// The cached artifact of a module, linked; `None` if absent or unusable.
    fn try_artifact(
        &self,
        engine: &Engine,
        linkers: &Linkers,
        module_hash: &str,
    ) -> Result<Option<(WasmKind, Prepared)>, LoadError> {
        let path = self.artifact_path(module_hash);
        let kind = match Engine::detect_precompiled_file(&path) {
            Ok(Some(Precompiled::Component)) => WasmKind::HttpComponent,
            Ok(Some(Precompiled::Module)) => WasmKind::CgiModule,
            Ok(None) | Err(_) => return Ok(None),
        };
        let loaded = match kind {
            WasmKind::HttpComponent => {
                deserialize_component_file(engine, &path).map(|c| link_component(linkers, &c))
            }
            WasmKind::CgiModule => {
                deserialize_module_file(engine, &path).map(|m| link_module(linkers, &m))
            }
        };
        match loaded {
            Ok(prepared) => Ok(Some((kind, prepared?))),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding an unusable Wasm artifact");
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    fn store_artifact(&self, module_hash: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_file(&self.artifact_path(module_hash), bytes)
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn link_component(linkers: &Linkers, component: &Component) -> Result<Prepared, LoadError> {
    let pre = linkers.http.instantiate_pre(component).map_err(|e| {
        LoadError::Invalid(format!(
            "the component needs imports Gust does not provide (it must target the wasi:http/proxy world): {e:#}"
        ))
    })?;
    let proxy = ProxyPre::new(pre).map_err(|e| {
        LoadError::Invalid(format!(
            "the component does not export wasi:http/incoming-handler (the wasi:http/proxy world): {e:#}"
        ))
    })?;
    Ok(Prepared::Http(proxy))
}

fn link_module(linkers: &Linkers, module: &Module) -> Result<Prepared, LoadError> {
    let has_start = module
        .exports()
        .any(|e| e.name() == "_start" && e.ty().func().is_some());
    if !has_start {
        return Err(LoadError::Invalid(
            "the module is not a WASI command: it exports no `_start` function".into(),
        ));
    }
    let pre = linkers.cgi.instantiate_pre(module).map_err(|e| {
        LoadError::Invalid(format!(
            "the module needs imports Gust does not provide (only wasi_snapshot_preview1): {e:#}"
        ))
    })?;
    Ok(Prepared::Cgi(pre))
}

// Deserializing runs machine code produced by Cranelift, so wasmtime marks it `unsafe`: the
// bytes must come from `Engine::precompile_*` of a compatible engine. Here they always do:
// either produced a moment ago in this process, or read back from files this executor wrote
// into its own cache directory under the data directory (and wasmtime still checks the
// engine compatibility header of every artifact).
#[allow(
    unsafe_code,
    reason = "artifacts are produced by this engine; see above"
)]
fn deserialize_component(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    // SAFETY: `bytes` were produced by `engine.precompile_component` just now.
    unsafe { Component::deserialize(engine, bytes) }
        .map_err(|e| LoadError::Io(format!("loading a compiled component: {e:#}")))
}

#[allow(
    unsafe_code,
    reason = "artifacts are produced by this engine; see above"
)]
fn deserialize_module(engine: &Engine, bytes: &[u8]) -> Result<Module, LoadError> {
    // SAFETY: `bytes` were produced by `engine.precompile_module` just now.
    unsafe { Module::deserialize(engine, bytes) }
        .map_err(|e| LoadError::Io(format!("loading a compiled module: {e:#}")))
}

#[allow(
    unsafe_code,
    reason = "artifacts are produced by this engine; see above"
)]
fn deserialize_component_file(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file is an artifact this executor wrote into its own cache directory.
    unsafe { Component::deserialize_file(engine, path) }
}

#[allow(
    unsafe_code,
    reason = "artifacts are produced by this engine; see above"
)]
fn deserialize_module_file(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    // SAFETY: the file is an artifact this executor wrote into its own cache directory.
    unsafe { Module::deserialize_file(engine, path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_headers() {
        assert_eq!(detect(b"\0asm\x01\0\0\0").unwrap(), WasmKind::CgiModule);
        assert_eq!(
            detect(b"\0asm\x0d\0\x01\0").unwrap(),
            WasmKind::HttpComponent
        );
        assert!(detect(b"PK\x03\x04zip!").is_err());
        assert!(detect(b"\0as").is_err());
    }

    #[test]
    fn locate_by_handler_or_single_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(locate(dir.path(), ""), Err(LoadError::Invalid(_))));
        std::fs::write(dir.path().join("a.wasm"), b"x").unwrap();
        assert_eq!(locate(dir.path(), "").unwrap(), dir.path().join("a.wasm"));
        std::fs::write(dir.path().join("b.wasm"), b"x").unwrap();
        assert!(matches!(locate(dir.path(), ""), Err(LoadError::Invalid(_))));
        assert_eq!(
            locate(dir.path(), "b.wasm").unwrap(),
            dir.path().join("b.wasm")
        );
        assert!(locate(dir.path(), "../etc/passwd").is_err());
        assert!(locate(dir.path(), "/etc/passwd").is_err());
        assert!(locate(dir.path(), "c.wasm").is_err());
    }
}
