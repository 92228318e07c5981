//! Who may connect: the accounts in the cluster's catalog (`CREATE USER …`), checked with
//! `mysql_native_password` or `caching_sha2_password`'s fast path (`session::passwords`).
//!
//! `srbackup.conf`'s `user.<name> = *<40 hex digits>` lines (the hash `srbackup password`
//! prints) are migrated into the catalog when the server starts: a name without an account
//! becomes `'name'@'%'` with that hash and the `root` role (such users could do everything
//! before accounts existed). Afterwards the catalog's account wins (ALTER USER changes it).
//! The server never sees or keeps a password: the client proves it knows one by scrambling it
//! with a random per-connection salt.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::catalog::{AccountRow, Catalog, Holder};
use crate::config::Settings;
use crate::error::Result;
use crate::session::accounts::NATIVE;
use crate::session::passwords::{sha2_hash, verify_native, verify_sha2};

pub use crate::session::passwords::{native_answer, native_hash, sha2_answer};

/// The salt (scramble) length of both plugins.
pub const SALT_LEN: usize = 20;

/// Whether an account's host pattern (`%` and `_` as in SQL LIKE, `localhost`) admits `ip`.
pub fn host_matches(pattern: &str, ip: IpAddr) -> bool {
    if pattern == "%" {
        return true;
    }
    if pattern.eq_ignore_ascii_case("localhost") {
        return ip.is_loopback();
    }
    let text = ip.to_string();
    crate::session::like(&text, pattern)
}

/// How specific a host pattern is: exact addresses before patterns, longer patterns first,
/// `%` last (MySQL's order).
fn specificity(pattern: &str) -> (u8, usize) {
    if pattern == "%" {
        (2, 0)
    } else if pattern.contains(['%', '_']) {
        (1, usize::MAX - pattern.len())
    } else {
        (0, 0)
    }
}

/// Why a login was refused (said in the server's log only; the client gets MySQL's message).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NoAccount,
    BadPassword,
    /// `REQUIRE SSL` and the connection is plain text.
    NeedsTls,
    /// An account without a password, from another host.
    NoPasswordRemote,
}

/// The accounts, read from the catalog at each login.
pub struct Logins {
    cluster: PathBuf,
    catalog: Mutex<Option<Catalog>>,
}

impl Logins {
    pub fn new(cluster: PathBuf) -> Logins {
        Logins {
            cluster,
            catalog: Mutex::new(None),
        }
    }

    fn accounts_named(&self, user: &str) -> Result<Vec<AccountRow>> {
        let mut guard = self
            .catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(Catalog::open(&crate::engine::catalog_path(&self.cluster))?);
        }
        let catalog = guard.as_mut().expect("opened above");
        Ok(catalog.view().accounts_named(user)?)
    }

    /// The account (`host` pattern) `user` logs in as from `ip` with `answer` to `salt`.
    pub fn check(
        &self,
        user: &[u8],
        ip: IpAddr,
        tls: bool,
        salt: &[u8],
        answer: &[u8],
    ) -> std::result::Result<String, Refusal> {
        let Ok(user) = std::str::from_utf8(user) else {
            return Err(Refusal::NoAccount);
        };
        let mut accounts = self.accounts_named(user).map_err(|_| Refusal::NoAccount)?;
        accounts.retain(|a| host_matches(&a.host, ip));
        accounts.sort_by_key(|a| specificity(&a.host));
        let account = accounts.into_iter().next().ok_or(Refusal::NoAccount)?;
        let ok = match (&account.native, &account.sha2) {
            (None, None) => answer.is_empty(),
            (native, sha2) => match answer.len() {
                20 => native
                    .as_deref()
                    .is_some_and(|h| verify_native(h, salt, answer)),
                32 => sha2
                    .as_deref()
                    .is_some_and(|h| verify_sha2(h, salt, answer)),
                _ => false,
            },
        };
        if !ok {
            return Err(Refusal::BadPassword);
        }
        if !account.has_password() && !ip.is_loopback() {
            return Err(Refusal::NoPasswordRemote);
        }
        if account.require_ssl && !tls {
            return Err(Refusal::NeedsTls);
        }
        Ok(account.host)
    }
}

/// Makes sure `root` exists (with conf's `user.root`, or the generated password), migrates
/// conf's other `user.<name>` lines into accounts, and gives an account still without a
/// password the one its conf line names. Returns the names migrated.
pub fn bootstrap(
    catalog: &mut Catalog,
    settings: &Settings,
    root_password: Option<&str>,
) -> Result<Vec<String>> {
    let from_conf = |name: &str| -> Option<Option<String>> {
        settings
            .users
            .get(name)
            .map(|stage2| stage2.map(|h| format!("*{}", hex::encode_upper(h))))
    };
    let root = AccountRow {
        name: "root".into(),
        host: "%".into(),
        native: match root_password {
            Some(p) => Some(native_hash(p)),
            None => from_conf("root").flatten(),
        },
        sha2: root_password.map(sha2_hash),
        plugin: NATIVE.into(),
        require_ssl: false,
        default_roles: vec!["root".into()],
        all_default: false,
    };
    let migrated = catalog.write(|tx| {
        let mut migrated = Vec::new();
        if tx.accounts_named("root")?.is_empty() && tx.create_account(&root)? {
            migrated.push("root".to_string());
        }
        // An account still without a password takes the conf's (the way to give root one
        // after a start without); one with a password keeps it.
        if let Some(p) = root_password {
            for mut a in tx.accounts_named("root")? {
                if !a.has_password() {
                    a.native = Some(native_hash(p));
                    a.sha2 = Some(sha2_hash(p));
                    tx.update_account(&a)?;
                }
            }
        }
        for (name, stage2) in &settings.users {
            let Some(h) = stage2 else { continue };
            for mut a in tx.accounts_named(name)? {
                if !a.has_password() {
                    a.native = Some(format!("*{}", hex::encode_upper(h)));
                    tx.update_account(&a)?;
                }
            }
        }
        for (name, stage2) in &settings.users {
            if name == "root" || !tx.accounts_named(name)?.is_empty() {
                continue;
            }
            let row = AccountRow {
                name: name.clone(),
                host: "%".into(),
                native: stage2.map(|h| format!("*{}", hex::encode_upper(h))),
                sha2: None,
                plugin: NATIVE.into(),
                require_ssl: false,
                default_roles: vec!["root".into()],
                all_default: false,
            };
            tx.create_account(&row)?;
            tx.grant_role(
                &Holder::User {
                    name: name.clone(),
                    host: "%".into(),
                },
                "root",
            )?;
            migrated.push(name.clone());
        }
        Ok(migrated)
    })?;
    Ok(migrated)
}

/// Accounts with only a `mysql_native_password` hash (created from a hash): a greeting that
/// names caching_sha2_password makes their clients answer with what no stored hash checks.
pub fn native_only(catalog: &Catalog) -> Result<Vec<String>> {
    Ok(catalog
        .view()
        .accounts()?
        .into_iter()
        .filter(|a| {
            a.sha2.is_none()
                && a.native
                    .as_deref()
                    .is_some_and(|h| h != crate::catalog::LOCKED)
        })
        .map(|a| format!("'{}'@'{}'", a.name, a.host))
        .collect())
}

/// Accounts without a password (a server beyond loopback lets them in from this machine only).
pub fn without_password(catalog: &Catalog) -> Result<Vec<String>> {
    Ok(catalog
        .view()
        .accounts()?
        .into_iter()
        .filter(|a| !a.has_password())
        .map(|a| {
            if a.host == "%" {
                a.name
            } else {
                format!("'{}'@'{}'", a.name, a.host)
            }
        })
        .collect())
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
    fn host_patterns() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(host_matches("%", other));
        assert!(host_matches("localhost", local));
        assert!(!host_matches("localhost", other));
        assert!(host_matches("10.1.%", other));
        assert!(!host_matches("10.2.%", other));
        assert!(host_matches("10.1.2.3", other));
        assert!(!host_matches("10.1.2.30", other));
        let mut v = vec!["%", "10.1.%", "10.1.2.3"];
        v.sort_by_key(|p| specificity(p));
        assert_eq!(v, vec!["10.1.2.3", "10.1.%", "%"]);
    }
}
