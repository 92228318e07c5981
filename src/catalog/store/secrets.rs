//! Credentials at rest: the values of secret properties (repositories' access keys, external
//! catalogs' passwords) are stored sealed, with XChaCha20-Poly1305, under a key kept in a file
//! apart from `catalog.db`: `<cluster>/secret.key` (0600, created on first need), or the file
//! `secret_key_file` in srbackup.conf names (another volume, a mounted secret). A copy of the
//! catalog alone (a backup of it, a bug report) holds no usable credential.
//!
//! A sealed value is `sealed:v1:<hex of nonce ‖ ciphertext>`; its associated data names where
//! it belongs (`repository r: aws.s3.secret_key`), so it cannot be moved to another property.
//! Values written before sealing existed are read as they are and sealed by the migration to
//! schema 4.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const PREFIX: &str = "sealed:v1:";
const KEY_FILE: &str = "secret.key";

/// Seals and opens secret values with the cluster's key, loaded (or created) on first use.
pub struct Sealer {
    cluster: PathBuf,
    cipher: Mutex<Option<XChaCha20Poly1305>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    pub fn new(cluster: &Path) -> Sealer {
        Sealer {
            cluster: cluster.to_path_buf(),
            cipher: Mutex::new(None),
        }
    }

    /// Whether a stored value is sealed.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Where the key is: `secret_key_file` in srbackup.conf, or `<cluster>/secret.key`.
    pub fn key_path(&self) -> PathBuf {
        crate::config::Settings::load(&self.cluster)
            .ok()
            .and_then(|s| s.secret_key_file)
            .unwrap_or_else(|| self.cluster.join(KEY_FILE))
    }

    fn with_cipher<T>(
        &self,
        create: bool,
        f: impl FnOnce(&XChaCha20Poly1305) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut cipher = self.cipher.lock().unwrap_or_else(|p| p.into_inner());
        if cipher.is_none() {
            let key = load_key(&self.key_path(), create)?;
            *cipher = Some(XChaCha20Poly1305::new(&key.into()));
        }
        f(cipher.as_ref().expect("loaded above"))
    }

    /// `value` sealed for `context` (where it belongs).
    pub fn seal(&self, context: &str, value: &str) -> Result<String, String> {
        self.with_cipher(true, |cipher| {
            let nonce: [u8; 24] = rand::random();
            let sealed = cipher
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: value.as_bytes(),
                        aad: context.as_bytes(),
                    },
                )
                .map_err(|_| "cannot seal a secret".to_string())?;
            Ok(format!(
                "{PREFIX}{}{}",
                hex::encode(nonce),
                hex::encode(sealed)
            ))
        })
    }

    /// The value `stored` holds: opened if sealed, as is if written before sealing existed.
    pub fn open(&self, context: &str, stored: &str) -> Result<String, String> {
        let Some(body) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes =
            hex::decode(body).map_err(|_| format!("the sealed value of {context} is damaged"))?;
        if bytes.len() < 24 {
            return Err(format!("the sealed value of {context} is damaged"));
        }
        let (nonce, sealed) = bytes.split_at(24);
        let key_path = self.key_path();
        self.with_cipher(false, |cipher| {
            let plain = cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: context.as_bytes(),
                    },
                )
                .map_err(|_| {
                    format!(
                        "the credentials of {context} were sealed with another key than {}",
                        key_path.display()
                    )
                })?;
            String::from_utf8(plain)
                .map_err(|_| format!("the sealed value of {context} is damaged"))
        })
    }
}

/// Reads the 32-byte key (64 hex digits), or creates it (0600, never over an existing file)
/// when `create`. A key file others can read, or that is a link, is refused.
fn load_key(path: &Path, create: bool) -> Result<[u8; 32], String> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let shown = path.display();
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(mut file) => {
            let meta = file.metadata().map_err(|e| format!("{shown}: {e}"))?;
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            if !meta.is_file() || meta.mode() & 0o077 != 0 || meta.uid() != me {
                return Err(format!(
                    "the key file {shown} must be a file of this user that only they can read (mode 0600)"
                ));
            }
            let mut text = String::new();
            Read::take(&mut file, 256)
                .read_to_string(&mut text)
                .map_err(|e| format!("{shown}: {e}"))?;
            let bytes = hex::decode(text.trim())
                .map_err(|_| format!("{shown} is not a key (64 hex digits)"))?;
            <[u8; 32]>::try_from(bytes).map_err(|_| format!("{shown} is not a key (64 hex digits)"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key: [u8; 32] = rand::random();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("cannot create the key file {shown}: {e}"))?;
            file.write_all(format!("{}\n", hex::encode(key)).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("cannot write the key file {shown}: {e}"))?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "the key file {shown} that sealed the stored credentials is missing"
        )),
        Err(e) => Err(format!("cannot read the key file {shown}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(dir.path());
        let sealed = sealer
            .seal("repository r: aws.s3.secret_key", "S3CR3T")
            .unwrap();
        assert!(Sealer::is_sealed(&sealed) && !sealed.contains("S3CR3T"));
        assert_eq!(
            sealer
                .open("repository r: aws.s3.secret_key", &sealed)
                .unwrap(),
            "S3CR3T"
        );
        // Moved to another property or repository: refused.
        assert!(
            sealer
                .open("repository x: aws.s3.secret_key", &sealed)
                .is_err()
        );
        // Not sealed (an older catalog): as is.
        assert_eq!(sealer.open("c", "plain").unwrap(), "plain");
        // The key file is private; another key does not open it.
        use std::os::unix::fs::PermissionsExt;
        let key = dir.path().join("secret.key");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::remove_file(&key).unwrap();
        let other = Sealer::new(dir.path());
        assert!(
            other
                .open("repository r: aws.s3.secret_key", &sealed)
                .unwrap_err()
                .contains("missing")
        );
        other.seal("x", "y").unwrap();
        assert!(
            other
                .open("repository r: aws.s3.secret_key", &sealed)
                .unwrap_err()
                .contains("another key")
        );
    }
}
