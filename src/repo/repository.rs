//! The open repository: its errors, the format file, manifests and the snapshot listing.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::config::{Backend, RepositoryConfig, S3Credentials};
use super::format::{self, FormatError, Manifest, Sha256, SnapshotId};
use super::{Encoding, store};

/// A repository failure. Messages never contain credentials (see [`RepoError::from_store`]).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RepoError {
    /// A problem at a place in the statement (an unknown repository name, say).
    #[error("{}", .0.message)]
    At(Box<crate::sql::Problem>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("repository {repository} is not usable: {reason}")]
    #[diagnostic(code(srbackup::repo::unavailable))]
    Unavailable { repository: String, reason: String },
    /// An encrypted repository opened without its key, with a wrong one, or the other way.
    #[error("repository {repository}: {reason}")]
    #[diagnostic(code(srbackup::repo::encryption))]
    Encryption { repository: String, reason: String },
    #[error("repository {repository}: {operation} failed: {reason}")]
    #[diagnostic(code(srbackup::repo::storage))]
    Storage {
        repository: String,
        operation: String,
        reason: String,
        /// A transient failure (timeout, connection reset, 5xx) that a retry may cure.
        transient: bool,
    },
    #[error("repository {repository}: {source}")]
    #[diagnostic(code(srbackup::repo::format))]
    Format {
        repository: String,
        #[source]
        source: FormatError,
    },
    #[error("repository {repository} has no snapshot {what}")]
    #[diagnostic(code(srbackup::repo::no_snapshot))]
    NoSuchSnapshot {
        repository: String,
        what: String,
        #[help]
        available: Option<String>,
    },
    #[error("repository {repository} is busy: {reason}")]
    #[diagnostic(code(srbackup::repo::busy))]
    Busy { repository: String, reason: String },
    #[error("forget on repository {repository}: no retention rule was given")]
    #[diagnostic(
        code(srbackup::repo::no_policy),
        help(
            "give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly (a policy without one would forget every snapshot), or save a default policy for the repository with --save"
        )
    )]
    NoPolicy { repository: String },
    #[error("repository {repository} is read-only")]
    #[diagnostic(
        code(srbackup::repo::read_only),
        help(
            "it was created with CREATE READ ONLY REPOSITORY; snapshots can be listed and restored, not written or dropped"
        )
    )]
    ReadOnly { repository: String },
    #[error("{what} is corrupt: expected SHA-256 {expected}, found {actual}")]
    #[diagnostic(code(srbackup::repo::corrupt))]
    Corrupt {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("repository {repository}: lease {lease} was lost: {reason}")]
    #[diagnostic(
        code(srbackup::repo::lease_lost),
        help(
            "the job stopped before it could rely on objects a garbage collection may have deleted; run it again"
        )
    )]
    LeaseLost {
        repository: String,
        lease: String,
        reason: String,
    },
    #[error("cannot access {path}: {source}")]
    #[diagnostic(code(srbackup::repo::io))]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = RepoError> = std::result::Result<T, E>;

/// Whether an I/O error says the disk (or the user's quota) is full.
pub(super) fn io_is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28 | 122))
}

/// Whether a storage error comes from a full disk somewhere down its chain.
fn storage_full(e: &object_store::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io_is_full(io)
        {
            return true;
        }
        source = s.source();
    }
    false
}

impl RepoError {
    /// A full disk (or quota) made it fail.
    pub fn is_storage_full(&self) -> bool {
        match self {
            RepoError::Storage { reason, .. } => reason.contains("is full"),
            RepoError::Io { source, .. } => io_is_full(source),
            _ => false,
        }
    }

    /// Classifies a storage error into a reason a user can act on. Credential values the
    /// repository holds are blanked from the text (signed URLs, echoed headers).
    pub fn from_store(config: &RepositoryConfig, e: object_store::Error) -> RepoError {
        Self::storage(config.name.as_str(), &secrets_of(config), "opening", e)
    }

    fn storage(
        repository: &str,
        secrets: &[String],
        operation: &str,
        e: object_store::Error,
    ) -> RepoError {
        use object_store::Error as E;
        let detail = scrub(&error_chain(&e), secrets);
        let lower = detail.to_ascii_lowercase();
        let (reason, transient) = match &e {
            E::Unauthenticated { .. } => {
                (format!("the credentials were refused ({detail})"), false)
            }
            E::PermissionDenied { .. } => (format!("access denied ({detail})"), false),
            E::NotFound { .. } if lower.contains("nosuchbucket") => {
                ("the bucket does not exist".to_string(), false)
            }
            E::NotFound { path, .. } => (format!("{path} not found"), false),
            _ if lower.contains("invalidaccesskeyid")
                || lower.contains("signaturedoesnotmatch")
                || lower.contains("notsignedup")
                || lower.contains("accessdenied")
                || lower.contains("403 forbidden")
                || lower.contains("401 unauthorized") =>
            {
                (format!("the credentials were refused ({detail})"), false)
            }
            _ if lower.contains("nosuchbucket") => ("the bucket does not exist".to_string(), false),
            _ if lower.contains("connection refused")
                || lower.contains("dns error")
                || lower.contains("error trying to connect")
                || lower.contains("client error (connect)") =>
            {
                (format!("the endpoint is unreachable ({detail})"), true)
            }
            E::Generic { .. } => {
                let transient = lower.contains("timed out")
                    || lower.contains("timeout")
                    || lower.contains("connection reset")
                    || lower.contains("broken pipe")
                    || lower.contains("error decoding response body")
                    || lower.contains("server error");
                (detail, transient)
            }
            _ => (detail, false),
        };
        RepoError::Storage {
            repository: repository.to_string(),
            operation: operation.to_string(),
            reason,
            transient,
        }
    }

    /// Whether retrying the operation may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RepoError::Storage {
                transient: true,
                ..
            }
        )
    }
}

/// An error with its sources, which is where reqwest and hyper put the actual cause.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn hex_bytes(text: &str) -> Vec<u8> {
    hex::decode(text).expect("generated as hex")
}

/// A key file's bytes: a regular file of at most 4 KiB (never a pipe, a device or a huge file).
fn read_key_file(path: &std::path::Path) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Never blocks on a FIFO (nor takes a terminal): opened non-blocking, then judged.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(4097)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > 4096 {
        return Err("larger than 4 KiB: not a key".into());
    }
    Ok(bytes)
}

fn secrets_of(config: &RepositoryConfig) -> Vec<String> {
    let mut out = Vec::new();
    fn creds(c: &S3Credentials, out: &mut Vec<String>) {
        match c {
            S3Credentials::Static {
                access_key,
                secret_key,
                session_token,
            } => {
                out.push(access_key.expose().to_string());
                out.push(secret_key.expose().to_string());
                if let Some(t) = session_token {
                    out.push(t.expose().to_string());
                }
            }
            S3Credentials::InstanceProfile => {}
            S3Credentials::AssumeRole { base, .. } => creds(base, out),
        }
    }
    match &config.backend {
        Backend::S3 { credentials, .. } => creds(credentials, &mut out),
        Backend::Hdfs {
            password: Some(p), ..
        } => out.push(p.expose().to_string()),
        _ => {}
    }
    if let Some(super::config::Encryption::Key { key }) = &config.encryption {
        out.push(key.expose().to_string());
    }
    out.retain(|s| !s.is_empty());
    out
}

/// `text` with every occurrence of a secret replaced by the mask.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = crate::sql::mask_userinfo(text);
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), crate::sql::MASK);
    }
    out
}

/// One timestamp of a label: its manifest, or why it cannot be read.
pub type ListedSnapshot = (String, std::result::Result<Arc<Manifest>, String>);

/// What the snapshots naming an object recorded of it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Recorded {
    pub stored_bytes: u64,
    /// When the newest manifest naming it was written: an object changed after that was
    /// changed after every snapshot that names it checked it.
    pub named_at: chrono::DateTime<chrono::Utc>,
}

/// One snapshot label as SHOW SNAPSHOT lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotListing {
    /// The label, or the raw key of an entry under `snapshots/` that is not a snapshot.
    pub label: String,
    /// Each timestamp with its manifest, or why it cannot be read.
    pub snapshots: Vec<ListedSnapshot>,
}

/// An open repository: its backend and where it is.
#[derive(Clone)]
pub struct Repository {
    pub name: String,
    pub location: String,
    pub read_only: bool,
    pub(super) store: Arc<dyn ObjectStore>,
    secrets: Arc<Vec<String>>,
    /// The directory of a local repository: object_store 0.13's local store does not fsync,
    /// so [`Repository::make_durable`] does, before a manifest may name what was written.
    local_root: Option<std::path::PathBuf>,
    /// A local repository whose store is not wrapped (by fault injection): objects are copied
    /// file to file (`hashing::copy_hashing`) rather than streamed through object_store.
    pub(super) direct_local: Option<std::path::PathBuf>,
    pub(super) limits: Arc<Limits>,
    /// What the readable snapshots recorded of every object they name, read once per handle
    /// when a backup first needs it (to judge an existing object before reusing it).
    stored_sizes: Arc<tokio::sync::OnceCell<std::collections::HashMap<String, Recorded>>>,
    /// Memory the uploads through object_store may hold at once, in KiB (see
    /// `transfer::UPLOAD_MEMORY`): however many workers run, chunks waiting to be sent stay
    /// within it.
    pub(super) upload_memory: Arc<tokio::sync::Semaphore>,
    /// Where the key of an encrypted repository comes from (its statement's properties).
    encryption: Option<super::config::Encryption>,
    /// The keys, once the format file proved them right (`None`: not encrypted).
    keys: Arc<tokio::sync::OnceCell<Option<Arc<super::crypto::Keys>>>>,
}

/// Upload and download rate limits shared by every transfer of a repository handle.
#[derive(Debug, Default)]
pub struct Limits {
    pub(super) upload: RateLimit,
    pub(super) download: RateLimit,
}

/// The longest a rate limit ever waits for one reservation.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

/// A byte rate shared by concurrent transfers: each chunk reserves its slot of time.
#[derive(Debug, Default)]
pub struct RateLimit {
    bytes_per_sec: u64,
    next: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl RateLimit {
    fn new(kbps: u64) -> RateLimit {
        RateLimit {
            bytes_per_sec: kbps.saturating_mul(1024),
            next: tokio::sync::Mutex::new(None),
        }
    }

    /// Waits until `bytes` more may pass: until the end of the slot they reserve after every
    /// earlier reservation. Waiting for the slot's end, not its start, means no burst: a job
    /// of any size, even one chunk, takes at least its bytes over the rate.
    pub(super) async fn take(&self, bytes: usize) {
        if self.bytes_per_sec == 0 {
            return;
        }
        let end = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let start = next.map_or(now, |n| n.max(now));
            // A size from a damaged manifest must not overflow the clock: a year is the most
            // one reservation waits.
            let wait =
                std::time::Duration::try_from_secs_f64(bytes as f64 / self.bytes_per_sec as f64)
                    .unwrap_or(MAX_WAIT)
                    .min(MAX_WAIT);
            let end = start.checked_add(wait).unwrap_or(start);
            *next = Some(end);
            end
        };
        tokio::time::sleep_until(end).await;
    }
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("name", &self.name)
            .field("location", &self.location)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// The largest format file read.
const FORMAT_FILE_MAX: u64 = 64 * 1024;

/// How many manifests are read at once while listing.
const LIST_CONCURRENCY: usize = 8;

impl Repository {
    /// Opens the repository of `config` (nothing is contacted but a local directory).
    pub fn open(config: &RepositoryConfig) -> Result<Repository> {
        let store = store::connect(config)?;
        #[cfg(feature = "faults")]
        let (store, faulty) = {
            let wrapped = super::faults::wrap(&config.location, Arc::clone(&store));
            let faulty = !Arc::ptr_eq(&wrapped, &store);
            (wrapped, faulty)
        };
        #[cfg(not(feature = "faults"))]
        let faulty = false;
        let store: Arc<dyn ObjectStore> = Arc::new(super::retry::RetryStore::new(store));
        let mut repo = Repository::with_store(config, store);
        if !faulty {
            repo.direct_local = repo.local_root.clone();
        }
        Ok(repo)
    }

    /// A repository over an already-open store (tests wrap stores to inject faults).
    pub fn with_store(config: &RepositoryConfig, store: Arc<dyn ObjectStore>) -> Repository {
        Repository {
            name: config.name.clone(),
            location: config.location.clone(),
            read_only: config.read_only,
            store,
            secrets: Arc::new(secrets_of(config)),
            limits: Arc::new(Limits::default()),
            stored_sizes: Arc::default(),
            upload_memory: Arc::new(tokio::sync::Semaphore::new(
                super::transfer::UPLOAD_MEMORY_KIB as usize,
            )),
            direct_local: None,
            encryption: config.encryption.clone(),
            keys: Arc::default(),
            local_root: match &config.backend {
                Backend::Local { path } => Some(
                    std::fs::canonicalize(path).unwrap_or_else(|_| std::path::PathBuf::from(path)),
                ),
                _ => None,
            },
        }
    }

    /// Makes every object this handle (or anyone) wrote into a local repository durable, with
    /// one flush of its filesystem: uploads do not flush one by one, and the executor calls
    /// this once per batch of finished uploads, before its journal records them and long
    /// before a manifest names them. Remote stores acknowledge a write only once it is
    /// durable: nothing to do.
    pub async fn flush(&self) -> Result<()> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let at = root.clone();
        tokio::task::spawn_blocking(move || crate::engine::storage::sync_filesystem(&at))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| RepoError::Io { path: root, source })
    }

    /// Flushes a just-written key of a local repository (file and directory) to disk. Remote
    /// stores acknowledge a write only once it is durable.
    pub(super) async fn make_durable(&self, key: &str) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        super::confined::check(root, key).map_err(|source| RepoError::Io {
            path: root.join(key),
            source,
        })?;
        let path = root.join(key);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::File::open(&path)?.sync_all()?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|source| RepoError::Io {
            path: root.join(key),
            source,
        })
    }

    /// This handle with upload and download rate limits in KiB/s (0 = unlimited).
    pub fn with_rate_limits(mut self, upload_kbps: u64, download_kbps: u64) -> Repository {
        self.limits = Arc::new(Limits {
            upload: RateLimit::new(upload_kbps),
            download: RateLimit::new(download_kbps),
        });
        self
    }

    /// The stored size the snapshots record for the object of `hash`, if any names it.
    /// What the snapshots naming `hash` recorded of it: its stored size, and when the newest
    /// of their manifests was written (by the repository's clock).
    pub(super) async fn recorded(&self, hash: &Sha256) -> Result<Option<Recorded>> {
        let recorded = self
            .stored_sizes
            .get_or_try_init(|| async {
                let mut recorded = std::collections::HashMap::<String, Recorded>::new();
                let metas: Vec<ObjectMeta> = self
                    .store
                    .list(Some(&ObjectPath::from(format::SNAPSHOTS_DIR)))
                    .try_collect()
                    .await
                    .map_err(|e| self.err("listing snapshots", e))?;
                let read = futures::stream::iter(metas)
                    .map(|meta| async move {
                        let id = SnapshotId::from_manifest_key(meta.location.as_ref()).ok()?;
                        let manifest = self.read_manifest(&id).await.ok()?;
                        Some((meta.last_modified, manifest))
                    })
                    .buffered(LIST_CONCURRENCY)
                    .collect::<Vec<_>>()
                    .await;
                for (written, manifest) in read.into_iter().flatten() {
                    for f in &manifest.files {
                        let entry = recorded.entry(f.sha256.to_string()).or_insert(Recorded {
                            stored_bytes: f.stored_bytes,
                            named_at: written,
                        });
                        entry.named_at = entry.named_at.max(written);
                    }
                }
                Ok::<_, RepoError>(recorded)
            })
            .await?;
        Ok(recorded.get(hash.as_str()).copied())
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub(super) fn err(&self, operation: impl Into<String>, e: object_store::Error) -> RepoError {
        let full = storage_full(&e);
        let mut err = RepoError::storage(&self.name, &self.secrets, &operation.into(), e);
        if full && let RepoError::Storage { reason, .. } = &mut err {
            // Say which disk: the repository's, not the file being read.
            *reason = format!(
                "the disk holding the repository ({}) is full: {reason}",
                self.location
            );
        }
        err
    }

    /// The directory of a local repository.
    /// Whether the repository is a directory on this machine (its transfers are bound by the
    /// disk and the CPU, not by a network).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    pub(super) fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    pub(super) fn format_err(&self, source: FormatError) -> RepoError {
        RepoError::Format {
            repository: self.name.clone(),
            source,
        }
    }

    pub(super) fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(RepoError::ReadOnly {
                repository: self.name.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// What CREATE REPOSITORY runs: proves the location is reachable with these credentials
    /// (list; write and delete a probe object unless read-only), then attaches to the
    /// repository there or initializes a new one. Returns whether it already existed.
    pub async fn check(&self) -> Result<bool> {
        let probe_list = ObjectPath::from(format::LOCKS_DIR);
        self.store
            .list_with_delimiter(Some(&probe_list))
            .await
            .map_err(|e| self.err("listing", e))?;
        let existing = self.read_format().await?;
        if self.read_only {
            return match existing {
                Some(_) => self.keys().await.map(|_| true),
                None => Err(RepoError::Unavailable {
                    repository: self.name.clone(),
                    reason: format!(
                        "a READ ONLY repository must already exist, and {} has no {}",
                        self.location,
                        format::FORMAT_FILE
                    ),
                }),
            };
        }
        // Everything that can refuse without writing is decided before the probe: the key of
        // an existing repository, the key source of a new one, and a location that holds
        // srbackup data without its format file (a deleted format file must not make the
        // data someone else's new, empty repository, whose GC would delete it).
        let mut new_master = None;
        match &existing {
            Some(_) => {
                self.keys().await?;
            }
            None => {
                for dir in [format::SNAPSHOTS_DIR, format::OBJECTS_DIR] {
                    let first = self
                        .store
                        .list(Some(&ObjectPath::from(dir)))
                        .next()
                        .await
                        .transpose()
                        .map_err(|e| self.err("listing", e))?;
                    if let Some(found) = first {
                        return Err(RepoError::Unavailable {
                            repository: self.name.clone(),
                            reason: format!(
                                "{} holds {} but no {}: it is not a new location (restore the format file, or choose an empty location)",
                                self.location,
                                found.location,
                                format::FORMAT_FILE
                            ),
                        });
                    }
                }
                if let Some(source) = &self.encryption {
                    let kdf = matches!(source, super::config::Encryption::PassphraseEnv { .. })
                        .then(super::crypto::new_kdf);
                    if let super::config::Encryption::PassphraseEnv { variable } = source
                        && std::env::var_os(variable)
                            .is_some_and(|p| p.len() < super::crypto::MIN_PASSPHRASE)
                    {
                        return Err(self.encryption_err(format!(
                            "the passphrase in {variable} is shorter than {} characters: too weak for a new repository",
                            super::crypto::MIN_PASSPHRASE
                        )));
                    }
                    let master = self.master_key(source, kdf.as_ref())?;
                    new_master = Some((master, kdf));
                }
            }
        }
        let probe = ObjectPath::from(format!(
            "{}/probe-{:016x}.tmp",
            format::LOCKS_DIR,
            rand::random::<u64>()
        ));
        self.store
            .put_opts(
                &probe,
                PutPayload::from_static(b"srbackup probe"),
                PutOptions::from(PutMode::Create),
            )
            .await
            .map_err(|e| self.err("writing a probe object", e))?;
        self.store
            .delete(&probe)
            .await
            .map_err(|e| self.err("deleting the probe object", e))?;
        self.ensure_gc_reserve();
        if existing.is_some() {
            return Ok(true);
        }
        // `new_master` is there exactly when the repository is to be encrypted.
        let format_file = match new_master {
            None => format::FormatFile::new(),
            Some((master, kdf)) => {
                let salt = super::crypto::Keys::new_salt();
                let keys = super::crypto::Keys::from_master(&master, &hex_bytes(&salt));
                format::FormatFile::encrypted(format::EncryptionInfo {
                    algorithm: super::crypto::ALGORITHM.to_string(),
                    salt,
                    kdf,
                    key_check: keys.key_check(),
                })
            }
        };
        let body = serde_json::to_vec_pretty(&format_file).expect("serializable");
        match self
            .store
            .put_opts(
                &ObjectPath::from(format::FORMAT_FILE),
                body.into(),
                PutOptions::from(PutMode::Create),
            )
            .await
        {
            Ok(_) => {
                self.keys().await?;
                Ok(false)
            }
            // Another cluster initialized it at the same moment: attach to theirs, if the key
            // (or its absence) fits it.
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.read_format().await?;
                self.keys().await?;
                Ok(true)
            }
            Err(e) => Err(self.err("writing the format file", e)),
        }
    }

    async fn read_format(&self) -> Result<Option<format::FormatFile>> {
        match self.store.get(&ObjectPath::from(format::FORMAT_FILE)).await {
            // A format file is a few hundred bytes: a huge one is not read.
            Ok(r) if r.meta.size > FORMAT_FILE_MAX => {
                Err(self.format_err(format::FormatError::Damaged(format!(
                    "{} is {} bytes: not a format file",
                    format::FORMAT_FILE,
                    r.meta.size
                ))))
            }
            Ok(r) => {
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| self.err("reading the format file", e))?;
                Ok(Some(
                    format::FormatFile::parse(&bytes).map_err(|e| self.format_err(e))?,
                ))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("reading the format file", e)),
        }
    }

    /// Checks the format file before a job uses the repository.
    pub async fn require_format(&self) -> Result<()> {
        match self.read_format().await? {
            Some(_) => self.keys().await.map(|_| ()),
            None => Err(RepoError::Unavailable {
                repository: self.name.clone(),
                reason: format!(
                    "{} has no {}: not an srbackup repository (or it was deleted)",
                    self.location,
                    format::FORMAT_FILE
                ),
            }),
        }
    }

    fn encryption_err(&self, reason: impl Into<String>) -> RepoError {
        RepoError::Encryption {
            repository: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The master secret from the key's source (a passphrase through `kdf`).
    fn master_key(
        &self,
        source: &super::config::Encryption,
        kdf: Option<&format::Kdf>,
    ) -> Result<[u8; 32]> {
        use super::config::Encryption;
        use super::crypto;
        match (source, kdf) {
            (Encryption::Key { key }, None) => crypto::key_from_text(key.expose().as_bytes())
                .map_err(|why| self.encryption_err(why)),
            (Encryption::KeyFile { path }, None) => {
                let bytes = read_key_file(std::path::Path::new(path))
                    .map_err(|why| self.encryption_err(format!("key file {path}: {why}")))?;
                crypto::key_from_text(&bytes)
                    .map_err(|why| self.encryption_err(format!("key file {path}: {why}")))
            }
            (Encryption::PassphraseEnv { variable }, Some(kdf)) => {
                use std::os::unix::ffi::OsStrExt;
                let passphrase = std::env::var_os(variable).filter(|p| !p.is_empty());
                let Some(passphrase) = passphrase else {
                    return Err(self.encryption_err(format!(
                        "the passphrase is read from the environment variable {variable}, which is not set (or empty) for this process"
                    )));
                };
                crypto::derive(kdf, passphrase.as_bytes()).map_err(|why| self.encryption_err(why))
            }
            (Encryption::PassphraseEnv { .. }, None) => Err(self.encryption_err(
                "it was created with a 256-bit key, not a passphrase: give \"encryption.key\" or \"encryption.key_file\"",
            )),
            (_, Some(_)) => Err(self.encryption_err(
                "it was created with a passphrase: give \"encryption.passphrase_env\"",
            )),
        }
    }

    /// The repository's keys (`None`: it is not encrypted), read from its format file once per
    /// handle and proved against its `key_check`: a missing or wrong key fails here, before
    /// any object or manifest is read or written.
    pub async fn keys(&self) -> Result<Option<Arc<super::crypto::Keys>>> {
        self.keys
            .get_or_try_init(|| async {
                let Some(file) = self.read_format().await? else {
                    return Err(RepoError::Unavailable {
                        repository: self.name.clone(),
                        reason: format!(
                            "{} has no {}: not an srbackup repository (or it was deleted)",
                            self.location,
                            format::FORMAT_FILE
                        ),
                    });
                };
                match (&file.encryption, &self.encryption) {
                    (None, None) => Ok(None),
                    (None, Some(_)) => Err(self.encryption_err(
                        "it is not encrypted, but its definition gives an encryption key (a repository keeps the encryption it was created with: drop the encryption properties, or create an encrypted repository elsewhere)",
                    )),
                    (Some(info), None) => Err(self.encryption_err(format!(
                        "it is encrypted ({}): its definition needs \"encryption\" = \"aes-256-gcm\" and the key (\"encryption.key\", \"encryption.key_file\" or \"encryption.passphrase_env\")",
                        info.algorithm
                    ))),
                    (Some(info), Some(source)) => {
                        if info.algorithm != super::crypto::ALGORITHM {
                            return Err(self.encryption_err(format!(
                                "it is encrypted with {:?}, which this srbackup does not know",
                                info.algorithm
                            )));
                        }
                        let salt = hex::decode(&info.salt)
                            .ok()
                            .filter(|s| s.len() == 32)
                            .ok_or_else(|| {
                                self.format_err(format::FormatError::Damaged(format!(
                                    "{}: the encryption salt is not 32 bytes of hex",
                                    format::FORMAT_FILE
                                )))
                            })?;
                        let master = self.master_key(source, info.kdf.as_ref())?;
                        let keys = super::crypto::Keys::from_master(&master, &salt);
                        if !keys.matches(&info.key_check) {
                            return Err(self.encryption_err(
                                "wrong key: it does not open this repository (nothing was read or written)",
                            ));
                        }
                        Ok(Some(Arc::new(keys)))
                    }
                }
            })
            .await
            .cloned()
    }

    /// Whether the repository's definition says it is encrypted (its keys are checked by
    /// [`Repository::keys`] before any use).
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// The key an object of content `hash` is stored under: its hash, or in an encrypted
    /// repository its keyed name (`crypto::Keys::object_name`).
    pub async fn object_key(&self, hash: &Sha256, encoding: Encoding) -> Result<String> {
        Ok(match self.keys().await? {
            Some(keys) => format::object_key(&keys.object_name(hash), encoding),
            None => format::object_key(hash, encoding),
        })
    }

    /// The encoding under which the repository holds `hash`, if it does.
    pub async fn find_object(&self, hash: &Sha256) -> Result<Option<(Encoding, ObjectMeta)>> {
        for encoding in [Encoding::None, Encoding::Zstd] {
            let key = ObjectPath::from(self.object_key(hash, encoding).await?);
            match self.store.head(&key).await {
                Ok(meta) => return Ok(Some((encoding, meta))),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(format!("checking {key}"), e)),
            }
        }
        Ok(None)
    }

    /// Every object key under `objects/`, with its size.
    pub async fn list_objects(&self) -> Result<BTreeMap<String, u64>> {
        self.store
            .list(Some(&ObjectPath::from(format::OBJECTS_DIR)))
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
            .map_err(|e| self.err("listing objects", e))
    }

    /// Commits a snapshot: writes its manifest, create-if-absent. Every object it names must
    /// already be stored (the executor uploads first); an existing manifest is never replaced.
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        self.writable()?;
        let key = manifest.id().manifest_key();
        manifest.check(&key).map_err(|e| self.format_err(e))?;
        let mut body = serde_json::to_vec_pretty(manifest).expect("a manifest serializes");
        if let Some(keys) = self.keys().await? {
            body = super::crypto::seal(&keys, &body);
        }
        self.store
            .put_opts(
                &ObjectPath::from(key.as_str()),
                body.into(),
                PutOptions::from(PutMode::Create),
            )
            .await
            .map_err(|e| match e {
                object_store::Error::AlreadyExists { .. } => RepoError::Busy {
                    repository: self.name.clone(),
                    reason: format!("snapshot {} already exists", manifest.id()),
                },
                e => self.err(format!("writing manifest {key}"), e),
            })?;
        self.make_durable(&key).await
    }

    /// Reads and checks one snapshot's manifest.
    pub async fn read_manifest(&self, id: &SnapshotId) -> Result<Manifest> {
        Ok(self.read_manifest_hashed(id).await?.0)
    }

    /// [`Repository::read_manifest`], with the SHA-256 of the manifest's bytes (a restore plan
    /// records it, so the executor restores exactly the manifest that was reviewed).
    pub async fn read_manifest_hashed(&self, id: &SnapshotId) -> Result<(Manifest, String)> {
        let key = id.manifest_key();
        let bytes = match self.store.get(&ObjectPath::from(key.as_str())).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| self.err(format!("reading {key}"), e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(self.no_such_snapshot(&id.to_string()).await);
            }
            Err(e) => return Err(self.err(format!("reading {key}"), e)),
        };
        // The hash of the stored bytes (sealed, in an encrypted repository): what a restore
        // plan records, so the executor restores exactly the manifest that was reviewed.
        let hash = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let plain = match self.keys().await? {
            Some(keys) => super::crypto::open(&keys, &bytes).map_err(|e| {
                self.format_err(format::FormatError::Damaged(format!(
                    "manifest {key} cannot be decrypted: {e}"
                )))
            })?,
            None => bytes.to_vec(),
        };
        let manifest = Manifest::parse(&key, &plain).map_err(|e| self.format_err(e))?;
        Ok((manifest, hash))
    }

    /// The timestamps of `label`, oldest first.
    pub async fn timestamps(&self, label: &str) -> Result<Vec<String>> {
        format::check_label(label).map_err(|e| self.format_err(e))?;
        let prefix = ObjectPath::from(format!("{}/{label}", format::SNAPSHOTS_DIR));
        let mut out: Vec<String> = self
            .store
            .list(Some(&prefix))
            .map_err(|e| self.err("listing snapshots", e))
            .try_filter_map(|m| async move {
                Ok(SnapshotId::from_manifest_key(m.location.as_ref())
                    .ok()
                    .map(|id| id.timestamp))
            })
            .try_collect()
            .await?;
        out.sort();
        Ok(out)
    }

    /// Every snapshot label in the repository, sorted, each once.
    pub async fn labels(&self) -> Result<Vec<String>> {
        let mut labels: Vec<String> = self
            .manifest_keys()
            .await?
            .iter()
            .filter_map(|k| SnapshotId::from_manifest_key(k).ok())
            .map(|id| id.label)
            .collect();
        labels.dedup();
        Ok(labels)
    }

    /// The newest snapshot of `label` (RESTORE without `backup_timestamp`).
    pub async fn latest(&self, label: &str) -> Result<SnapshotId> {
        match self.timestamps(label).await?.pop() {
            Some(ts) => Ok(SnapshotId {
                label: label.to_string(),
                timestamp: ts,
            }),
            None => Err(self.no_such_snapshot(label).await),
        }
    }

    pub(super) async fn no_such_snapshot(&self, what: &str) -> RepoError {
        /// Labels named in the hint when nothing is close: enough to orient, not the listing.
        const SHOWN: usize = 5;
        let available = match self.manifest_keys().await {
            Ok(keys) if keys.is_empty() => Some("the repository holds no snapshot".to_string()),
            Ok(keys) => {
                let ids: Vec<SnapshotId> = keys
                    .iter()
                    .filter_map(|k| SnapshotId::from_manifest_key(k).ok())
                    .collect();
                let mut labels: Vec<&str> = ids.iter().map(|id| id.label.as_str()).collect();
                labels.dedup();
                let wanted = what.split(" (").next().unwrap_or(what);
                let list = |items: Vec<String>| {
                    if items.len() <= SHOWN {
                        items.join(", ")
                    } else {
                        format!(
                            "{} and {} more (SHOW SNAPSHOT ON {} lists them)",
                            items[..SHOWN].join(", "),
                            items.len() - SHOWN,
                            self.name
                        )
                    }
                };
                Some(if labels.contains(&wanted) {
                    // The label exists, the timestamp does not: its timestamps.
                    let stamps = ids
                        .iter()
                        .filter(|id| id.label == wanted)
                        .map(|id| id.timestamp.clone())
                        .collect();
                    format!("snapshot {wanted} has: {}", list(stamps))
                } else if let Some(label) = crate::sql::closest(wanted, labels.iter().copied()) {
                    format!("did you mean {label}?")
                } else {
                    format!(
                        "the repository holds: {}",
                        list(ids.iter().map(|id| id.to_string()).collect())
                    )
                })
            }
            Err(_) => None,
        };
        RepoError::NoSuchSnapshot {
            repository: self.name.clone(),
            what: what.to_string(),
            available,
        }
    }

    async fn manifest_keys(&self) -> Result<Vec<String>> {
        let mut keys: Vec<String> = self
            .store
            .list(Some(&ObjectPath::from(format::SNAPSHOTS_DIR)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .map_err(|e| self.err("listing snapshots", e))?;
        keys.sort();
        Ok(keys)
    }

    /// Every snapshot, grouped by label. An unreadable or damaged manifest is listed with its
    /// reason instead of failing the listing.
    pub async fn list_snapshots(&self) -> Result<Vec<SnapshotListing>> {
        // An encrypted repository opened with the wrong key is one error, not one per manifest.
        self.keys().await?;
        let keys = self.manifest_keys().await?;
        let read = futures::stream::iter(keys)
            .map(|key| async move {
                match SnapshotId::from_manifest_key(&key) {
                    Err(e) => (key.clone(), key, Err(e.to_string())),
                    Ok(id) => {
                        let m = self
                            .read_manifest(&id)
                            .await
                            .map(Arc::new)
                            .map_err(|e| match e {
                                RepoError::Format { source, .. } => source.to_string(),
                                other => other.to_string(),
                            });
                        (id.label, id.timestamp, m)
                    }
                }
            })
            .buffered(LIST_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut by_label: BTreeMap<String, Vec<ListedSnapshot>> = BTreeMap::new();
        for (label, ts, m) in read {
            by_label.entry(label).or_default().push((ts, m));
        }
        Ok(by_label
            .into_iter()
            .map(|(label, snapshots)| SnapshotListing { label, snapshots })
            .collect())
    }
}
