//! Turns a function's code (a directory, a zip, or a `.wasm` file) into the zip Lambda's API
//! takes.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Reads a zip as is, wraps a WebAssembly file (`.wasm`, or any file starting with `\0asm`)
/// into a zip holding just that file, or zips a directory (keeping file modes, so `bootstrap`
/// stays executable; skipping `__pycache__` and `.git`).
pub fn package(code: &Path) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(code).with_context(|| format!("code {} not found", code.display()))?;
    if meta.is_file() {
        let bytes = std::fs::read(code).with_context(|| format!("reading {}", code.display()))?;
        let is_wasm = code.extension().is_some_and(|x| x == "wasm") || bytes.starts_with(b"\0asm");
        if !is_wasm {
            return Ok(bytes);
        }
        let name = code
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".wasm"))
            .unwrap_or_else(|| "function.wasm".to_string());
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o644);
        zip.start_file(name, options)?;
        zip.write_all(&bytes)?;
        return Ok(zip.finish()?.into_inner());
    }
    if !meta.is_dir() {
        bail!("code {} is neither a directory nor a zip", code.display());
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut files = Vec::new();
    walk(code, code, &mut files)?;
    files.sort();
    for rel in files {
        let full = code.join(&rel);
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&full)?.permissions().mode()
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode & 0o777);
        let name = rel.to_string_lossy().replace('\\', "/");
        zip.start_file(name, options)?;
        zip.write_all(
            &std::fs::read(&full).with_context(|| format!("reading {}", full.display()))?,
        )?;
    }
    Ok(zip.finish()?.into_inner())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "__pycache__" || name == ".git" {
            continue;
        }
        let path = entry.path();
        let ty = entry.file_type()?;
        if ty.is_dir() {
            walk(root, &path, out)?;
        } else if ty.is_file() || (ty.is_symlink() && path.is_file()) {
            out.push(path.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_a_wasm_file_into_a_zip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello.wasm");
        std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap();
        let bytes = package(&path).unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(z.len(), 1);
        let mut f = z.by_name("hello.wasm").unwrap();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut content).unwrap();
        assert_eq!(content, b"\0asm\x01\0\0\0");
    }

    #[test]
    fn zips_a_directory_keeping_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("bootstrap"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/a.py"), "x = 1\n").unwrap();
        let bytes = package(dir.path()).unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(z.len(), 2);
        assert_eq!(
            z.by_name("bootstrap").unwrap().unix_mode().unwrap() & 0o777,
            0o755
        );
        assert!(z.by_name("lib/a.py").is_ok());
    }
}
