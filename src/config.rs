//! The cluster's settings, from `<cluster>/srbackup.conf` (StarRocks' `be.conf` style:
//! `key = value` lines, `#` comments): job workers and rate limits (read by `exec`), and the
//! users `srbackup serve` accepts (read by `server`). Missing keys take StarRocks' defaults.
//! The file is decoded here once, into [`Settings`]; an unknown key or a bad value is an error
//! naming its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "srbackup.conf";

/// The most workers of one kind a cluster may run: more would only queue on two cores.
pub const MAX_WORKERS: u64 = 4096;
/// The most connections a server may admit (file descriptors and threads bound it anyway).
pub const MAX_CONNECTIONS: u64 = 65_536;
/// The highest rate limit, in KiB/s (a petabyte a second): beyond it, no limit is meant.
pub const MAX_KBPS: u64 = 1 << 40;

/// `srbackup.conf` cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    #[diagnostic(
        code(srbackup::config::invalid),
        help("each line is `key = value`; see README.md for the keys")
    )]
    Invalid { path: PathBuf, message: String },
    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(srbackup::config::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A user's stored credential: `SHA1(SHA1(password))`, or none for a user without password.
pub type Stage2 = Option<[u8; 20]>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Concurrent pin (make snapshot) tasks.
    pub make_snapshot_worker_count: usize,
    /// Concurrent pin releases.
    pub release_snapshot_worker_count: usize,
    /// Concurrent uploads; 0 in the file means the number of cores. Unset: the number of
    /// cores for a local repository, four times that (at least 8) for a remote one (see
    /// [`Settings::workers_for`]).
    pub upload_worker_count: Option<usize>,
    /// Concurrent downloads; as `upload_worker_count`.
    pub download_worker_count: Option<usize>,
    /// Upload rate limit in KiB/s for the whole job; 0 = unlimited.
    pub max_upload_speed_kbps: u64,
    /// Download rate limit in KiB/s for the whole job; 0 = unlimited.
    pub max_download_speed_kbps: u64,
    /// Who may connect to `srbackup serve`: `user.<name> = *<hash>` lines (see server::auth).
    pub users: BTreeMap<String, Stage2>,
    /// `srbackup serve`: logged-in connections at most.
    pub max_connections: usize,
    /// `srbackup serve`: connections waiting to log in at most (the oldest makes room).
    pub max_pending_logins: usize,
    /// `srbackup serve`: how long a connection may take to log in.
    pub login_timeout_seconds: u64,
    /// Directories whose files FILES() may read and where local repositories may be created by
    /// a remote session (`srbackup serve`); none by default. `srbackup sql` on the machine
    /// itself is not limited (it already holds the files).
    pub allowed_paths: Vec<std::path::PathBuf>,
    /// Where the key sealing stored credentials is (default `<cluster>/secret.key`).
    pub secret_key_file: Option<std::path::PathBuf>,
    /// `srbackup serve`: the plugin the greeting names (`mysql_native_password`, StarRocks'
    /// only one, or `caching_sha2_password`, MySQL 8's default); clients answer with it.
    pub authentication_plugin: String,
    /// `srbackup serve`: the TLS certificate chain and private key (PEM); TLS is offered when
    /// both are set.
    pub ssl_cert: Option<std::path::PathBuf>,
    pub ssl_key: Option<std::path::PathBuf>,
    /// StarRocks' `ssl_force_secure_transport`: plain-text connections from other hosts are
    /// refused (error 5205).
    pub ssl_force_secure_transport: bool,
}

/// The cores this process may use, read once: `available_parallelism` reads the cgroup files
/// at every call, and the executor asks for every task it starts.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    })
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            make_snapshot_worker_count: 5,
            release_snapshot_worker_count: 5,
            upload_worker_count: None,
            download_worker_count: None,
            max_upload_speed_kbps: 0,
            max_download_speed_kbps: 0,
            users: BTreeMap::new(),
            max_connections: 1024,
            max_pending_logins: 128,
            login_timeout_seconds: 10,
            allowed_paths: Vec::new(),
            secret_key_file: None,
            authentication_plugin: "mysql_native_password".into(),
            ssl_cert: None,
            ssl_key: None,
            ssl_force_secure_transport: false,
        }
    }
}

impl Settings {
    /// Reads the cluster's settings file; absent means defaults.
    pub fn load(cluster: &Path) -> Result<Settings, ConfigError> {
        let path = cluster.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                Settings::parse(&text).map_err(|message| ConfigError::Invalid { path, message })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(ConfigError::Io { path, source }),
        }
    }

    pub fn parse(text: &str) -> std::result::Result<Settings, String> {
        let mut s = Settings::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("line {}: expected `key = value`", n + 1));
            };
            let (key, value) = (key.trim(), value.trim());
            if let Some(user) = key.strip_prefix("user.") {
                if user.is_empty() {
                    return Err(format!("line {}: `user.` names no user", n + 1));
                }
                let stage2 = parse_stage2(value).map_err(|e| format!("line {}: {e}", n + 1))?;
                s.users.insert(user.to_string(), stage2);
                continue;
            }
            match key {
                "authentication_plugin" => {
                    if value != "mysql_native_password" && value != "caching_sha2_password" {
                        return Err(format!(
                            "line {}: authentication_plugin is mysql_native_password or caching_sha2_password, not {value}",
                            n + 1
                        ));
                    }
                    s.authentication_plugin = value.to_string();
                    continue;
                }
                "ssl_cert" | "ssl_key" => {
                    let path = std::path::PathBuf::from(value);
                    if !path.is_absolute() {
                        return Err(format!("line {}: {key} takes an absolute path", n + 1));
                    }
                    if key == "ssl_cert" {
                        s.ssl_cert = Some(path);
                    } else {
                        s.ssl_key = Some(path);
                    }
                    continue;
                }
                "ssl_force_secure_transport" => {
                    s.ssl_force_secure_transport = match value {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(format!(
                                "line {}: ssl_force_secure_transport is true or false",
                                n + 1
                            ));
                        }
                    };
                    continue;
                }
                _ => {}
            }
            if key == "secret_key_file" {
                let path = std::path::PathBuf::from(value);
                if !path.is_absolute() {
                    return Err(format!(
                        "line {}: secret_key_file takes an absolute path, not {}",
                        n + 1,
                        path.display()
                    ));
                }
                s.secret_key_file = Some(path);
                continue;
            }
            if key == "allowed_paths" {
                for path in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let path = std::path::PathBuf::from(path);
                    if !path.is_absolute() {
                        return Err(format!(
                            "line {}: allowed_paths takes absolute paths, not {}",
                            n + 1,
                            path.display()
                        ));
                    }
                    s.allowed_paths.push(path);
                }
                continue;
            }
            let number: u64 = value.parse().map_err(|_| {
                format!(
                    "line {}: {key} must be a whole number, not \"{value}\"",
                    n + 1
                )
            })?;
            let limit = if key.ends_with("_kbps") {
                MAX_KBPS
            } else if key == "login_timeout_seconds" {
                3600
            } else if key.starts_with("max_") {
                MAX_CONNECTIONS
            } else {
                MAX_WORKERS
            };
            if number > limit {
                return Err(format!(
                    "line {}: {key} = {number} is more than the {limit} this setting allows",
                    n + 1
                ));
            }
            let workers = |v: u64| if v == 0 { cores() } else { v as usize };
            match key {
                "make_snapshot_worker_count" => s.make_snapshot_worker_count = workers(number),
                "release_snapshot_worker_count" => {
                    s.release_snapshot_worker_count = workers(number)
                }
                "upload_worker_count" => s.upload_worker_count = Some(workers(number)),
                "download_worker_count" => s.download_worker_count = Some(workers(number)),
                "max_upload_speed_kbps" => s.max_upload_speed_kbps = number,
                "max_download_speed_kbps" => s.max_download_speed_kbps = number,
                "max_connections" => s.max_connections = (number as usize).max(1),
                "max_pending_logins" => s.max_pending_logins = (number as usize).max(1),
                "login_timeout_seconds" => s.login_timeout_seconds = number.max(1),
                other => return Err(format!("line {}: unknown setting {other}", n + 1)),
            }
        }
        Ok(s)
    }

    /// How many tasks of a kind may run at once. Transfers to or from a `remote` repository
    /// wait on the network, not on a core: unless the file says otherwise, more of them run
    /// than there are cores. A local copy alternates between a core (read and hash a block)
    /// and the device (its direct write): two per core keep both busy.
    pub fn workers_for(&self, kind: &str, remote: bool) -> usize {
        let transfers = |set: Option<usize>| {
            set.unwrap_or(if remote {
                (4 * cores()).max(8)
            } else {
                2 * cores()
            })
        };
        match kind {
            "upload" => transfers(self.upload_worker_count),
            "download" => transfers(self.download_worker_count),
            "pin" => self.make_snapshot_worker_count,
            "release" => self.release_snapshot_worker_count,
            _ => 1,
        }
        .max(1)
    }
}

/// Reads a stored hash (`*` + 40 hex digits); empty means no password.
pub fn parse_stage2(text: &str) -> Result<Stage2, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let digits = text.strip_prefix('*').ok_or_else(|| {
        "a password is stored as its hash, `*` and 40 hex digits (`srbackup password` prints it)"
            .to_string()
    })?;
    let bytes = hex::decode(digits).map_err(|_| format!("`{text}` is not `*` and hex digits"))?;
    <[u8; 20]>::try_from(bytes)
        .map(Some)
        .map_err(|_| format!("`{text}` is not `*` and 40 hex digits"))
}

/// Which local files a session may read (FILES()) and where it may create a local
/// repository. `srbackup sql` on the machine itself reads what its user can ([`Any`]); a
/// session of `srbackup serve` acts for a remote user, so only inside the directories
/// `allowed_paths` names (none by default). Paths are judged after every link is resolved,
/// on the file actually opened, so a link (or a `..`) cannot lead outside.
///
/// [`Any`]: PathPolicy::Any
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PathPolicy {
    #[default]
    Any,
    /// Canonical directories, except what lies under `never` (the cluster directory itself:
    /// its catalog holds password hashes and sealed credentials, and its key).
    Within {
        dirs: Vec<PathBuf>,
        never: Vec<PathBuf>,
    },
}

/// Why a path was refused: outside the allowed directories, or not a regular file.
#[derive(Debug, thiserror::Error)]
pub enum PathRefused {
    #[error(
        "{path} is outside the directories this server may use (allowed_paths in srbackup.conf: {allowed})"
    )]
    Outside { path: PathBuf, allowed: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The file at the root of every srbackup repository (`repo::format::FORMAT_FILE`; a test
/// there checks they agree). A remote session reads nothing under a directory holding one.
pub const REPOSITORY_MARKER: &str = "srbackup-repository.json";

/// Whether `path` lies in a repository (a directory above it, or it, holds the marker): its
/// objects are every user's data and its manifests may hold password hashes.
fn in_repository(path: &Path) -> bool {
    path.ancestors()
        .any(|d| d.join(REPOSITORY_MARKER).is_file())
}

impl PathPolicy {
    /// The policy of a remote session: `settings.allowed_paths`, resolved (a directory that
    /// does not exist allows nothing).
    pub fn remote(settings: &Settings, cluster: &Path) -> PathPolicy {
        PathPolicy::Within {
            dirs: settings
                .allowed_paths
                .iter()
                .filter_map(|p| p.canonicalize().ok())
                .collect(),
            never: std::iter::once(cluster.to_path_buf())
                .chain(settings.secret_key_file.clone())
                .filter_map(|p| p.canonicalize().ok())
                .collect(),
        }
    }

    /// This policy with more directories nothing may be read from or created in (local
    /// repositories: their objects and manifests are other users' data and password hashes).
    pub fn excluding(&self, more: impl IntoIterator<Item = PathBuf>) -> PathPolicy {
        match self {
            PathPolicy::Any => PathPolicy::Any,
            PathPolicy::Within { dirs, never } => PathPolicy::Within {
                dirs: dirs.clone(),
                never: never
                    .iter()
                    .cloned()
                    .chain(more.into_iter().filter_map(|p| p.canonicalize().ok()))
                    .collect(),
            },
        }
    }

    fn allows(&self, canonical: &Path) -> bool {
        match self {
            PathPolicy::Any => true,
            PathPolicy::Within { dirs, never } => {
                dirs.iter().any(|d| canonical.starts_with(d))
                    && !never.iter().any(|n| canonical.starts_with(n))
            }
        }
    }

    fn outside(&self, path: &Path) -> PathRefused {
        let allowed = match self {
            PathPolicy::Within { dirs, .. } if !dirs.is_empty() => dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            _ => "none".to_string(),
        };
        PathRefused::Outside {
            path: path.to_path_buf(),
            allowed,
        }
    }

    /// Opens a regular file for reading. Never blocks on a FIFO, never reads a device; the
    /// path judged is the one the kernel opened (`/proc/self/fd`), so a link swapped in
    /// between a check and the open changes nothing.
    pub fn open(&self, path: &Path) -> Result<std::fs::File, PathRefused> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| PathRefused::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(io)?;
        if !file.metadata().map_err(io)?.is_file() {
            return Err(PathRefused::NotAFile {
                path: path.to_path_buf(),
            });
        }
        if let PathPolicy::Within { .. } = self {
            use std::os::fd::AsRawFd;
            let opened =
                std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(io)?;
            if !self.allows(&opened) || in_repository(&opened) {
                return Err(self.outside(path));
            }
        }
        Ok(file)
    }

    /// The files FILES() reads for `path`: the file itself, or the regular files of a
    /// directory (sorted; each is judged again when opened).
    pub fn files_of(&self, path: &Path) -> Result<Vec<PathBuf>, PathRefused> {
        let io = |source| PathRefused::Io {
            path: path.to_path_buf(),
            source,
        };
        if let PathPolicy::Within { .. } = self
            && !path.is_absolute()
        {
            return Err(self.outside(path));
        }
        let canonical = path.canonicalize().map_err(io)?;
        if !self.allows(&canonical)
            || (matches!(self, PathPolicy::Within { .. }) && in_repository(&canonical))
        {
            return Err(self.outside(path));
        }
        if !canonical.is_dir() {
            return Ok(vec![path.to_path_buf()]);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&canonical)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        Ok(files)
    }

    /// Whether a local repository may live at `path` (which may not exist yet): its nearest
    /// existing ancestor, resolved, with the rest appended, must lie within an allowed
    /// directory, and the rest may hold no `..`.
    pub fn check_location(&self, path: &Path) -> Result<(), PathRefused> {
        if *self == PathPolicy::Any {
            return Ok(());
        }
        if !path.is_absolute() {
            return Err(self.outside(path));
        }
        let mut existing = path.to_path_buf();
        let mut rest = Vec::new();
        let resolved = loop {
            match existing.canonicalize() {
                Ok(c) => break c,
                Err(_) => {
                    let Some(name) = existing.file_name().map(|n| n.to_os_string()) else {
                        return Err(self.outside(path));
                    };
                    rest.push(name);
                    if !existing.pop() {
                        return Err(self.outside(path));
                    }
                }
            }
        };
        let full = rest.iter().rev().fold(resolved, |p, r| p.join(r));
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
            || !self.allows(&full)
        {
            return Err(self.outside(path));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_defaults_and_clear_errors() {
        let s =
            Settings::parse("# gentle\nupload_worker_count = 3\nmax_upload_speed_kbps = 1024\n")
                .unwrap();
        assert_eq!(s.upload_worker_count, Some(3));
        assert_eq!(s.workers_for("upload", true), 3);
        let unset = Settings::parse("").unwrap();
        assert_eq!(unset.workers_for("download", false), 2 * cores());
        assert_eq!(unset.workers_for("download", true), (4 * cores()).max(8));
        assert_eq!(s.max_upload_speed_kbps, 1024);
        assert_eq!(s.make_snapshot_worker_count, 5);
        assert_eq!(
            Settings::parse("download_worker_count = 0")
                .unwrap()
                .download_worker_count,
            Some(cores())
        );
        assert!(
            Settings::parse("upload_workers = 2")
                .unwrap_err()
                .contains("unknown setting upload_workers")
        );
        let users = Settings::parse(
            "user.root = *6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9\nuser.guest =\n",
        )
        .unwrap()
        .users;
        assert_eq!(users.len(), 2);
        assert_eq!(users["guest"], None);
        assert!(
            Settings::parse("user.root = 123456")
                .unwrap_err()
                .contains("line 1: a password is stored as its hash")
        );
        assert!(
            Settings::parse("upload_worker_count = many")
                .unwrap_err()
                .contains("whole number")
        );
        for huge in [
            "max_upload_speed_kbps = 18446744073709551615",
            "upload_worker_count = 9223372036854775808",
        ] {
            assert!(
                Settings::parse(huge).unwrap_err().contains("more than"),
                "{huge}"
            );
        }
    }
}
