//! Who may connect: `mysql_native_password` against the users of the cluster's config.
//!
//! `srbackup.conf` names users as `user.<name> = *<40 hex digits>`, the hash MySQL itself
//! stores (`SHA1(SHA1(password))`, what `srbackup password` prints), or `user.<name> =` for a
//! user without a password. The server never sees or keeps a password: the client proves it
//! knows one by scrambling it with a random per-connection salt.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use crate::config::{Stage2, parse_stage2};

/// The salt (scramble) length of `mysql_native_password`.
pub const SALT_LEN: usize = 20;

/// The users a server accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Users {
    users: BTreeMap<String, Stage2>,
}

impl Users {
    /// From `user.<name>` settings; with none configured, `root` without a password (the
    /// server then refuses to listen beyond the loopback interface).
    pub fn from_config(users: &BTreeMap<String, Stage2>) -> Users {
        if users.is_empty() {
            return Users {
                users: BTreeMap::from([("root".to_string(), None)]),
            };
        }
        Users {
            users: users.clone(),
        }
    }

    /// Users that may connect without a password (a server on a non-loopback address must
    /// have none).
    pub fn without_password(&self) -> Vec<&str> {
        self.users
            .iter()
            .filter(|(_, s)| s.is_none())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Checks a `mysql_native_password` answer to `salt`.
    pub fn verify(&self, user: &[u8], salt: &[u8], answer: &[u8]) -> bool {
        let Some(stage2) = std::str::from_utf8(user)
            .ok()
            .and_then(|u| self.users.get(u))
        else {
            return false;
        };
        match stage2 {
            None => answer.is_empty(),
            Some(stage2) => verify_native(stage2, salt, answer),
        }
    }
}

/// `answer = SHA1(password) XOR SHA1(salt + SHA1(SHA1(password)))`: recover `SHA1(password)`
/// and check that its SHA-1 is the stored hash.
fn verify_native(stage2: &[u8; 20], salt: &[u8], answer: &[u8]) -> bool {
    if answer.len() != 20 {
        return false;
    }
    let mut h = Sha1::new();
    h.update(salt);
    h.update(stage2);
    let mask = h.finalize();
    let stage1: Vec<u8> = answer.iter().zip(mask.iter()).map(|(a, m)| a ^ m).collect();
    let candidate = Sha1::digest(&stage1);
    // Compare without an early exit.
    candidate
        .iter()
        .zip(stage2.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The stored form of a password, as MySQL's `PASSWORD()` printed it: `*` and 40 hex digits.
pub fn native_hash(password: &str) -> String {
    let stage2 = Sha1::digest(Sha1::digest(password.as_bytes()));
    format!("*{}", hex::encode_upper(stage2))
}

/// What a client sends for `password` and `salt` (what the tests' client side computes).
pub fn native_answer(password: &str, salt: &[u8]) -> Vec<u8> {
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(salt);
    h.update(stage2);
    let mask = h.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, m)| a ^ m).collect()
}

/// The file where a server running as root without configured users keeps root's password.
pub const ROOT_PASSWORD_FILE: &str = "root.password";

/// As root (who reads every file), a server without configured users does not let anyone on
/// the machine in as `root` without a password: root gets a random password, kept in
/// `<cluster>/root.password` (0600, so only root reads it) and reused on later starts.
/// Returns where the password is. Configured users are the operator's choice and untouched.
pub fn root_password(cluster: &std::path::Path) -> std::io::Result<(String, std::path::PathBuf)> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let path = cluster.join(ROOT_PASSWORD_FILE);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            use rand::Rng;
            let password: String = rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(24)
                .map(char::from)
                .collect();
            file.write_all(format!("{password}\n").as_bytes())?;
            file.sync_all()?;
            Ok((password, path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Not through a link, and not if others could have read (or written) it.
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)?;
            let meta = file.metadata()?;
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            if !meta.is_file() || meta.mode() & 0o077 != 0 || meta.uid() != me {
                return Err(std::io::Error::other(format!(
                    "{} must be a file of this user that only they can read (mode 0600)",
                    path.display()
                )));
            }
            let mut text = String::new();
            Read::take(&mut file, 1024).read_to_string(&mut text)?;
            let password = text.lines().next().unwrap_or("").trim().to_string();
            if password.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{} holds no password",
                    path.display()
                )));
            }
            Ok((password, path))
        }
        Err(e) => Err(e),
    }
}

impl Users {
    /// Only `root`, with this password.
    pub fn root_with(password: &str) -> Users {
        Users {
            users: BTreeMap::from([(
                "root".to_string(),
                parse_stage2(&native_hash(password)).ok().flatten(),
            )]),
        }
    }
}

/// A fresh random salt of printable bytes other than `\0` and `$` (which clients treat
/// specially in the handshake).
pub fn new_salt() -> [u8; SALT_LEN] {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut salt = [0u8; SALT_LEN];
    for b in &mut salt {
        *b = loop {
            let c = rng.random_range(0x21u8..0x7f);
            if c != b'$' {
                break c;
            }
        };
    }
    salt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_round_trip() {
        // MySQL's own PASSWORD('123456').
        assert_eq!(
            native_hash("123456"),
            "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"
        );
        let stage2 = parse_stage2(&native_hash("s3cret")).unwrap();
        let users = Users::from_config(&BTreeMap::from([
            ("admin".to_string(), stage2),
            ("guest".to_string(), None),
        ]));
        let salt = new_salt();
        assert!(users.verify(b"admin", &salt, &native_answer("s3cret", &salt)));
        assert!(!users.verify(b"admin", &salt, &native_answer("wrong", &salt)));
        assert!(!users.verify(b"admin", &new_salt(), &native_answer("s3cret", &salt)));
        assert!(!users.verify(b"admin", &salt, b""));
        assert!(users.verify(b"guest", &salt, b""));
        assert!(!users.verify(b"guest", &salt, &native_answer("x", &salt)));
        assert!(!users.verify(b"nobody", &salt, b""));
        assert_eq!(users.without_password(), vec!["guest"]);
        assert!(parse_stage2("plaintext").unwrap_err().contains("hash"));
        assert!(parse_stage2("*12").unwrap_err().contains("40 hex"));
    }

    #[test]
    fn no_users_configured_means_root_without_password() {
        let users = Users::from_config(&BTreeMap::new());
        assert!(users.verify(b"root", &new_salt(), b""));
        assert_eq!(users.without_password(), vec!["root"]);
    }
}
