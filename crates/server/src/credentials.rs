//! The root access key pair, created at first start and kept in the data dir (mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The file name inside the data dir.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// An access key pair in AWS's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Reads the stored key pair.
pub fn load_credentials(data_dir: &Path) -> std::io::Result<RootCredentials> {
    let bytes = std::fs::read(data_dir.join(CREDENTIALS_FILE))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Reads the stored key pair, or creates one (`AKIA…` id, 40-character secret) when there is
/// none. Returns whether it was created now.
pub fn load_or_create_credentials(data_dir: &Path) -> std::io::Result<(RootCredentials, bool)> {
    match load_credentials(data_dir) {
        Ok(c) => return Ok((c, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut rng = rand::thread_rng();
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let id: String = (0..16)
        .map(|_| UPPER[rng.gen_range(0..UPPER.len())] as char)
        .collect();
    let secret: String = (0..40)
        .map(|_| SECRET[rng.gen_range(0..SECRET.len())] as char)
        .collect();
    let creds = RootCredentials {
        access_key_id: format!("AKIA{id}"),
        secret_access_key: secret,
    };
    let body = serde_json::to_vec_pretty(&creds).map_err(std::io::Error::other)?;
    let tmp = data_dir.join(format!("{CREDENTIALS_FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, data_dir.join(CREDENTIALS_FILE))?;
    Ok((creds, true))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (a, created) = load_or_create_credentials(dir.path()).unwrap();
        assert!(created);
        assert!(a.access_key_id.starts_with("AKIA") && a.access_key_id.len() == 20);
        assert_eq!(a.secret_access_key.len(), 40);
        let mode = std::fs::metadata(dir.path().join(CREDENTIALS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (b, created) = load_or_create_credentials(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(a, b);
    }
}
