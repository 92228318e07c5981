//! Repository format v1: the keys, the format file and the snapshot manifest
//! (docs/repository-format.md is the reference; this module is its code).
//!
//! Everything read from storage is untrusted: labels, timestamps and hashes are checked before
//! they are used to build a key or a local path, and a manifest or format file of a newer
//! major version is refused by name rather than half-understood.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::limits;
use crate::catalog::{ExternalCatalogDef, FunctionDef, ObjectDef, PartitionBound};

/// The format version of manifests and of unencrypted repositories' format files: what this
/// build writes there, and the newest manifest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The format file's version of an encrypted repository (its objects and manifests are
/// sealed, `repo::crypto`): srbackup builds that know only version 1 refuse it by name.
pub const ENCRYPTED_FORMAT_VERSION: u32 = 2;
pub const FORMAT_FILE: &str = "srbackup-repository.json";
pub const FORMAT_NAME: &str = "srbackup-repository";
pub const OBJECTS_DIR: &str = "objects";
pub const SNAPSHOTS_DIR: &str = "snapshots";
pub const LOCKS_DIR: &str = "locks";
/// The repository's default retention policy, when one was saved (`srbackup forget --save`):
/// `{"retention": "keep-daily=7, keep-weekly=4"}`. Older versions ignore it.
pub const RETENTION_FILE: &str = "retention.json";

/// `srbackup-repository.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatFile {
    pub format: String,
    pub version: u32,
    pub created: String,
    /// Version 2: how the repository is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionInfo>,
}

/// The `encryption` block of a version 2 format file (`repo::crypto`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionInfo {
    /// `aes-256-gcm`.
    pub algorithm: String,
    /// 32 random bytes, hex: the HKDF salt of this repository's keys, so that one key (or
    /// passphrase) used for two repositories gives them unrelated keys, checks and names.
    pub salt: String,
    /// How a passphrase becomes the key; `None`: the key is given as 256 bits.
    pub kdf: Option<Kdf>,
    /// HMAC-SHA256 of a fixed text under a key derived from the master key, hex: a wrong key
    /// is told from the right one without reading any object.
    pub key_check: String,
}

/// Argon2id's salt and costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    /// `argon2id`.
    pub name: String,
    /// 16 random bytes, hex.
    pub salt: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl FormatFile {
    pub fn new() -> Self {
        FormatFile {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            created: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            encryption: None,
        }
    }

    /// The format file of a new encrypted repository.
    pub fn encrypted(encryption: EncryptionInfo) -> Self {
        FormatFile {
            version: ENCRYPTED_FORMAT_VERSION,
            encryption: Some(encryption),
            ..Self::new()
        }
    }

    /// Parses and checks a format file read from a repository.
    pub fn parse(bytes: &[u8]) -> Result<FormatFile, FormatError> {
        let f: FormatFile = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::Damaged(format!("{FORMAT_FILE} is not valid: {e}")))?;
        if f.format != FORMAT_NAME {
            return Err(FormatError::Damaged(format!(
                "{FORMAT_FILE} names format \"{}\", not \"{FORMAT_NAME}\"",
                f.format
            )));
        }
        if f.version > ENCRYPTED_FORMAT_VERSION {
            return Err(FormatError::Newer {
                what: FORMAT_FILE.to_string(),
                found: f.version,
            });
        }
        match (f.version, &f.encryption) {
            (FORMAT_VERSION, None) | (ENCRYPTED_FORMAT_VERSION, Some(_)) => Ok(f),
            (ENCRYPTED_FORMAT_VERSION, None) => Err(FormatError::Damaged(format!(
                "{FORMAT_FILE} says version 2 (encrypted) but holds no encryption settings"
            ))),
            (FORMAT_VERSION, Some(_)) => Err(FormatError::Damaged(format!(
                "{FORMAT_FILE} says version 1 but holds encryption settings"
            ))),
            (found, _) => check_version(found, FORMAT_FILE).map(|()| f),
        }
    }
}

impl Default for FormatFile {
    fn default() -> Self {
        Self::new()
    }
}

fn check_version(found: u32, what: &str) -> Result<(), FormatError> {
    if found > FORMAT_VERSION {
        return Err(FormatError::Newer {
            what: what.to_string(),
            found,
        });
    }
    if found == 0 {
        return Err(FormatError::Damaged(format!("{what} has format version 0")));
    }
    Ok(())
}

/// Why something read from a repository cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error(
        "{what} has format version {found}, newer than the {FORMAT_VERSION} this srbackup reads; upgrade srbackup"
    )]
    Newer { what: String, found: u32 },
    #[error("{0}")]
    Damaged(String),
}

/// A SHA-256, as 64 lower-case hex digits. Constructed only from checked text, so a key
/// built from it can never contain `/` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

impl Sha256 {
    pub fn parse(s: &str) -> Result<Sha256, FormatError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256(s.to_string()))
        } else {
            Err(FormatError::Damaged(format!(
                "\"{}\" is not a SHA-256 (64 lower-case hex digits)",
                s.escape_debug()
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256 {
    type Error = FormatError;
    fn try_from(s: String) -> Result<Self, FormatError> {
        Sha256::parse(&s)
    }
}

impl From<Sha256> for String {
    fn from(h: Sha256) -> String {
        h.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a data object's bytes are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// As is.
    #[default]
    None,
    /// One zstd frame of the whole content.
    Zstd,
}

impl Encoding {
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::None => "",
            Encoding::Zstd => ".zst",
        }
    }
}

/// `objects/<h0h1>/<sha256>[.zst]`
pub fn object_key(hash: &Sha256, encoding: Encoding) -> String {
    format!(
        "{OBJECTS_DIR}/{}/{}{}",
        &hash.0[..2],
        hash.0,
        encoding.suffix()
    )
}

/// The hash and encoding of an object key, or `None` for anything else under `objects/`
/// (a foreign file, a staging leftover), which GC leaves alone.
pub fn parse_object_key(key: &str) -> Option<(Sha256, Encoding)> {
    let rest = key.strip_prefix(OBJECTS_DIR)?.strip_prefix('/')?;
    let (dir, name) = rest.split_once('/')?;
    let (hex, encoding) = match name.strip_suffix(".zst") {
        Some(h) => (h, Encoding::Zstd),
        None => (name, Encoding::None),
    };
    let hash = Sha256::parse(hex).ok()?;
    (dir == &hash.0[..2]).then_some((hash, encoding))
}

/// A writer's staging copy next to the objects (`objects/<h0h1>/.<sha256>.<random>.tmp`).
pub fn is_staging_key(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with('.') && name.ends_with(".tmp"))
}

/// A snapshot label: what StarRocks accepts for one (letters, digits, `_`, `-`), so it is a
/// safe key component.
pub fn check_label(label: &str) -> Result<(), FormatError> {
    let ok = !label.is_empty()
        && label.len() <= 128
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !label.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(FormatError::Damaged(format!(
            "\"{}\" is not a snapshot label (letters, digits, _ and -)",
            label.escape_debug()
        )))
    }
}

/// `yyyy-MM-dd-HH-mm-ss-SSS`, a real instant.
pub fn check_timestamp(ts: &str) -> Result<(), FormatError> {
    let ok = ts.len() == 23
        && chrono::NaiveDateTime::parse_from_str(&ts[..19], "%Y-%m-%d-%H-%M-%S").is_ok()
        && ts.as_bytes()[19] == b'-'
        && ts[20..].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(FormatError::Damaged(format!(
            "\"{}\" is not a snapshot timestamp (yyyy-MM-dd-HH-mm-ss-SSS)",
            ts.escape_debug()
        )))
    }
}

/// A snapshot's identity: its label and the instant it was taken. Several snapshots may share
/// a label (one per backup run), as in StarRocks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SnapshotId {
    pub label: String,
    pub timestamp: String,
}

impl SnapshotId {
    pub fn new(label: &str, timestamp: &str) -> Result<SnapshotId, FormatError> {
        check_label(label)?;
        check_timestamp(timestamp)?;
        Ok(SnapshotId {
            label: label.to_string(),
            timestamp: timestamp.to_string(),
        })
    }

    /// A timestamp for a snapshot taken now, in UTC.
    pub fn now(label: &str) -> Result<SnapshotId, FormatError> {
        let ts = chrono::Utc::now()
            .format("%Y-%m-%d-%H-%M-%S-%3f")
            .to_string();
        SnapshotId::new(label, &ts)
    }

    /// `snapshots/<label>/<timestamp>.json`
    pub fn manifest_key(&self) -> String {
        format!("{SNAPSHOTS_DIR}/{}/{}.json", self.label, self.timestamp)
    }

    /// The snapshot a manifest key names; `Err` for a key under `snapshots/` that is not one
    /// (shown as a damaged entry, never used to build another key).
    pub fn from_manifest_key(key: &str) -> Result<SnapshotId, FormatError> {
        let bad = || FormatError::Damaged(format!("\"{key}\" is not a snapshot manifest key"));
        let rest = key
            .strip_prefix(SNAPSHOTS_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(bad)?;
        let (label, file) = rest.split_once('/').ok_or_else(bad)?;
        let ts = file.strip_suffix(".json").ok_or_else(bad)?;
        SnapshotId::new(label, ts)
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.label, self.timestamp)
    }
}

/// Where a snapshot came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The source cluster's id (its catalog's, stable across renames of the directory).
    pub cluster: String,
    /// The srbackup version that wrote the snapshot.
    pub srbackup: String,
}

/// One stored file of a snapshot: a data object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub sha256: Sha256,
    /// Size of the content (decoded).
    pub bytes: u64,
    /// Size as stored.
    pub stored_bytes: u64,
    pub encoding: Encoding,
}

/// A rowset of a tablet: its content is the file with this hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsetEntry {
    pub sha256: Sha256,
    pub rows: u64,
    pub bytes: u64,
    /// The synchronous MV (rollup) this rowset belongs to; `None` for the base table's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletEntry {
    pub bucket: u32,
    pub rowsets: Vec<RowsetEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionEntry {
    pub name: String,
    /// The partition's bound as the catalog records it, for the restore schema check.
    pub bound: PartitionBound,
    /// The visible version the data was captured at.
    pub version: i64,
    pub tablets: Vec<TabletEntry>,
}

/// A table, materialized view or view of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub name: String,
    /// The catalog's own definition (a table's synchronous MVs are inside it).
    pub definition: ObjectDef,
    /// Empty for views; the partitions taken for tables and async MVs.
    #[serde(default)]
    pub partitions: Vec<PartitionEntry>,
    /// The content checksum of what the snapshot holds of a table or async MV (CHECKSUM
    /// TABLE's row count and sum over the partitions taken), recorded by the backup so that a
    /// restore drill can prove the restored rows equal the backed-up ones. `None` for views
    /// and in snapshots made before srbackup recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<TableChecksum>,
}

/// CHECKSUM TABLE's result: the rows and the wrapping sum of each row's XXH3-64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableChecksum {
    pub rows: u64,
    pub sum: u64,
}

/// `snapshots/<label>/<timestamp>.json`: the commit record of a snapshot, written last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub label: String,
    pub timestamp: String,
    pub source: Source,
    /// The database backed up; `None` for a backup of external catalogs only.
    pub database: Option<String>,
    #[serde(default)]
    pub objects: Vec<ObjectEntry>,
    #[serde(default)]
    pub functions: Vec<FunctionDef>,
    #[serde(default)]
    pub external_catalogs: Vec<ExternalCatalogDef>,
    /// Every data object the snapshot needs, each once.
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// Accounts and grants taken along (BACKUP's `privileges` property).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges: Option<PrivilegeSet>,
}

/// Users, roles, role memberships and grants, as a snapshot holds them (and a plan lists
/// them, always without password hashes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivilegeSet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_grants: Vec<RoleGrantEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    pub host: String,
    pub plugin: String,
    #[serde(default)]
    pub require_ssl: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_roles: Vec<String>,
    #[serde(default)]
    pub all_default: bool,
    /// `mysql_native_password`'s stored hash; only with `users_with_passwords`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_hash: Option<String>,
    /// `caching_sha2_password`'s stored hash; only with `users_with_passwords`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha2_hash: Option<String>,
    /// Whether the account had a password (a restored one without its hash is locked).
    #[serde(default)]
    pub has_password: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    pub name: String,
    #[serde(default)]
    pub comment: String,
}

/// Who holds a grant: a user (`host` set) or a role (`host` absent).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleGrantEntry {
    pub holder: HolderEntry,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantEntry {
    pub holder: HolderEntry,
    pub privilege: String,
    /// The object type's keyword (`TABLE`, `SYSTEM`…).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub with_grant: bool,
}

impl PrivilegeSet {
    /// Every entry as a statement could have made it: names and hosts as CREATE USER/ROLE
    /// takes them, privileges that exist on their object type (never GRANT or NODE, which only
    /// built-in roles hold), hashes of the two stored forms. A repository is not trusted to
    /// say more than that (a restore would make these accounts and grants).
    pub fn check(&self) -> Result<(), String> {
        use crate::sql::accounts::{ObjectType, valid_host, valid_name};
        let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
        let holder =
            |h: &HolderEntry| valid_name(&h.name) && h.host.as_deref().is_none_or(valid_host);
        for u in &self.users {
            if !valid_name(&u.name) || !valid_host(&u.host) {
                return Err(format!(
                    "user {:?}@{:?} is not an account name",
                    u.name, u.host
                ));
            }
            if u.native_hash
                .as_deref()
                .is_some_and(|h| !(h.starts_with('*') && hex(&h[1..], 40)))
                || u.sha2_hash.as_deref().is_some_and(|h| !hex(h, 64))
            {
                return Err(format!(
                    "user {:?}: a password hash of the wrong form",
                    u.name
                ));
            }
            if u.default_roles.iter().any(|r| !valid_name(r)) {
                return Err(format!("user {:?}: a default role of no name", u.name));
            }
        }
        if let Some(r) = self.roles.iter().find(|r| !valid_name(&r.name)) {
            return Err(format!("role {:?} is not a role name", r.name));
        }
        if let Some(g) = self
            .role_grants
            .iter()
            .find(|g| !holder(&g.holder) || !valid_name(&g.role))
        {
            return Err(format!(
                "a role grant of {:?} to {:?}",
                g.role, g.holder.name
            ));
        }
        for g in &self.grants {
            let Some(kind) = ObjectType::from_keyword(&g.kind) else {
                return Err(format!("a grant on {:?}, which is no object type", g.kind));
            };
            if !kind.privileges().contains(&g.privilege.as_str()) || !holder(&g.holder) {
                return Err(format!(
                    "a grant of {:?} on {} to {:?}, which no GRANT statement makes",
                    g.privilege,
                    kind.keyword(),
                    g.holder.name
                ));
            }
        }
        Ok(())
    }
}

/// Entries of a privilege set a manifest may hold at most (each kind).
pub const MAX_PRIVILEGE_ENTRIES: usize = 1_000_000;

impl Manifest {
    pub fn id(&self) -> SnapshotId {
        SnapshotId {
            label: self.label.clone(),
            timestamp: self.timestamp.clone(),
        }
    }

    /// Parses a manifest read from `key` and checks everything a reader will rely on.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Manifest, FormatError> {
        // The version first, so a newer manifest is refused as newer rather than as damaged.
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let v: Version = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::Damaged(format!("manifest {key} is not valid JSON: {e}")))?;
        check_version(v.format, &format!("manifest {key}"))?;
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::Damaged(format!("manifest {key} is damaged: {e}")))?;
        m.check(key)?;
        Ok(m)
    }

    /// Checks names and references: every name is a plain identifier, every rowset's file is
    /// listed, the manifest's label and timestamp are those of its key.
    pub fn check(&self, key: &str) -> Result<(), FormatError> {
        let id = SnapshotId::new(&self.label, &self.timestamp)?;
        if id.manifest_key() != key {
            return Err(FormatError::Damaged(format!(
                "manifest {key} says it is snapshot {id}"
            )));
        }
        if let Some(db) = &self.database {
            check_name(db, "database")?;
        }
        if let Some(p) = &self.privileges {
            let n = [
                p.users.len(),
                p.roles.len(),
                p.role_grants.len(),
                p.grants.len(),
            ];
            if n.iter().any(|n| *n > MAX_PRIVILEGE_ENTRIES) {
                return Err(FormatError::Damaged(format!(
                    "manifest {key}: more than {MAX_PRIVILEGE_ENTRIES} privilege entries of a kind"
                )));
            }
            if let Err(what) = p.check() {
                return Err(FormatError::Damaged(format!("manifest {key}: {what}")));
            }
        }
        let files: std::collections::HashSet<&Sha256> =
            self.files.iter().map(|f| &f.sha256).collect();
        let damaged = |what: String| Err(FormatError::Damaged(format!("manifest {key}: {what}")));
        // Every count is bounded before anything is made from it: a table of 2^31 buckets or
        // a size past what the catalog stores is damage, not a plan.
        let (mut total, mut stored) = (0u64, 0u64);
        for f in &self.files {
            total = total.saturating_add(f.bytes);
            stored = stored.saturating_add(f.stored_bytes);
            if total > limits::MAX_COUNT || stored > limits::MAX_COUNT {
                return damaged(format!("file {} has an impossible size", f.sha256));
            }
        }
        for o in &self.objects {
            check_name(&o.name, "object")?;
            if o.partitions.len() > limits::MAX_PARTITIONS {
                return damaged(format!(
                    "{} has {} partitions; a table has at most {}",
                    o.name,
                    o.partitions.len(),
                    limits::MAX_PARTITIONS
                ));
            }
            let buckets = o.definition.schema().map(|s| s.distribution.buckets());
            if let Some(schema) = o.definition.schema()
                && (schema.columns.len() > limits::MAX_COLUMNS
                    || !(1..=limits::MAX_BUCKETS).contains(&schema.distribution.buckets()))
            {
                return damaged(format!(
                    "{} has {} columns and {} buckets; a table has at most {} and 1 to {}",
                    o.name,
                    schema.columns.len(),
                    schema.distribution.buckets(),
                    limits::MAX_COLUMNS,
                    limits::MAX_BUCKETS
                ));
            }
            for p in &o.partitions {
                check_name(&p.name, "partition")?;
                if p.version < 1 {
                    return damaged(format!("{}.{} has version {}", o.name, p.name, p.version));
                }
                let mut seen = std::collections::HashSet::new();
                for t in &p.tablets {
                    if buckets.is_none_or(|b| t.bucket >= b) || !seen.insert(t.bucket) {
                        return damaged(format!(
                            "{}.{} has a tablet for bucket {} it does not have",
                            o.name, p.name, t.bucket
                        ));
                    }
                    for r in &t.rowsets {
                        if r.rows > limits::MAX_COUNT || r.bytes > limits::MAX_COUNT {
                            return damaged(format!(
                                "a rowset of {}.{} has an impossible size",
                                o.name, p.name
                            ));
                        }
                        if let Some(rollup) = &r.rollup {
                            check_name(rollup, "materialized view")?;
                        }
                        if !files.contains(&r.sha256) {
                            return Err(FormatError::Damaged(format!(
                                "manifest {key}: a rowset of {}.{} names file {} that the manifest does not list",
                                o.name, p.name, r.sha256
                            )));
                        }
                    }
                }
            }
        }
        for f in &self.functions {
            check_name(&f.name, "function")?;
        }
        for c in &self.external_catalogs {
            check_name(&c.name, "catalog")?;
        }
        Ok(())
    }

    /// Total content bytes of the snapshot's files (saturating: sizes come from a file).
    pub fn total_bytes(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |t, f| t.saturating_add(f.bytes))
    }
}

/// An object, partition or database name read from a manifest: it may become a catalog name
/// and (through the catalog) part of a local path, so it must be a plain name.
pub fn check_name(name: &str, what: &str) -> Result<(), FormatError> {
    let bad = name.is_empty()
        || name.len() > 256
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_control);
    if bad {
        Err(FormatError::Damaged(format!(
            "\"{}\" is not a valid {what} name",
            name.escape_debug()
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[cfg(feature = "engine")]
    #[test]
    fn the_marker_a_path_policy_looks_for_is_the_format_file() {
        assert_eq!(crate::config::REPOSITORY_MARKER, FORMAT_FILE);
    }

    use super::*;

    /// A hand-edited snapshot cannot make a restore create what no statement could: a
    /// nameless account, a grant of GRANT, a malformed hash, an object type that is not one.
    #[test]
    fn privilege_sets_hold_only_what_statements_make() {
        let user = |name: &str, host: &str| UserEntry {
            name: name.into(),
            host: host.into(),
            plugin: "mysql_native_password".into(),
            require_ssl: false,
            default_roles: vec![],
            all_default: false,
            native_hash: None,
            sha2_hash: None,
            has_password: true,
        };
        let grant = |privilege: &str, kind: &str| GrantEntry {
            holder: HolderEntry {
                name: "r".into(),
                host: None,
            },
            privilege: privilege.into(),
            kind: kind.into(),
            db: None,
            name: None,
            with_grant: false,
        };
        let good = PrivilegeSet {
            users: vec![user("ann", "10.0.%")],
            grants: vec![grant("REPOSITORY", "SYSTEM"), grant("SELECT", "TABLE")],
            ..Default::default()
        };
        assert_eq!(good.check(), Ok(()));
        for bad in [
            PrivilegeSet {
                users: vec![user("", "%")],
                ..Default::default()
            },
            PrivilegeSet {
                users: vec![user("x", "bad host!")],
                ..Default::default()
            },
            PrivilegeSet {
                users: vec![UserEntry {
                    native_hash: Some("plaintext".into()),
                    ..user("x", "%")
                }],
                ..Default::default()
            },
            PrivilegeSet {
                grants: vec![grant("GRANT", "SYSTEM")],
                ..Default::default()
            },
            PrivilegeSet {
                grants: vec![grant("SELECT", "KINGDOM")],
                ..Default::default()
            },
            PrivilegeSet {
                grants: vec![grant("EXPORT", "DATABASE")],
                ..Default::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_keys_round_trip_and_reject_foreign_names() {
        let h = Sha256::parse(&"ab".repeat(32)).unwrap();
        let key = object_key(&h, Encoding::Zstd);
        assert_eq!(key, format!("objects/ab/{}.zst", "ab".repeat(32)));
        assert_eq!(parse_object_key(&key), Some((h.clone(), Encoding::Zstd)));
        assert_eq!(parse_object_key(&format!("objects/cd/{h}")), None);
        assert_eq!(parse_object_key("objects/ab/../x"), None);
        assert!(Sha256::parse(&"AB".repeat(32)).is_err());
        assert!(Sha256::parse("../../etc/passwd").is_err());
        let staging = format!("objects/ab/.{h}.00ff00ff00ff00ff.tmp");
        assert!(is_staging_key(&staging) && parse_object_key(&staging).is_none());
        assert!(!is_staging_key(&key));
    }

    #[test]
    fn manifest_keys_are_checked() {
        let id = SnapshotId::new("sr_hub_backup", "2026-11-24-10-25-58-842").unwrap();
        assert_eq!(
            id.manifest_key(),
            "snapshots/sr_hub_backup/2026-11-24-10-25-58-842.json"
        );
        assert_eq!(SnapshotId::from_manifest_key(&id.manifest_key()), Ok(id));
        for bad in [
            "snapshots/../x/2026-11-24-10-25-58-842.json",
            "snapshots/a/2026-13-24-10-25-58-842.json",
            "snapshots/a/b/2026-11-24-10-25-58-842.json",
            "snapshots/a/2026-11-24-10-25-58.json",
        ] {
            assert!(SnapshotId::from_manifest_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_with_path_components_are_refused() {
        for bad in ["..", "a/b", "/etc", "a\\b", "", "a\0b"] {
            assert!(check_name(bad, "object").is_err(), "{bad:?}");
        }
        assert!(check_name("sr_member", "object").is_ok());
    }
}

#[cfg(test)]
mod compatibility {
    use super::*;

    /// A manifest written by this version: every later version must keep reading it.
    #[test]
    fn a_v1_manifest_written_by_srbackup_0_1_still_reads() {
        let text = include_str!("../../fixtures/manifests/sr_hub_backup.json");
        let m = Manifest::parse(
            "snapshots/sr_hub_backup/2026-11-24-10-25-58-842.json",
            text.as_bytes(),
        )
        .unwrap();
        assert_eq!(m.database.as_deref(), Some("sr_hub"));
        assert_eq!(m.files.len(), 45);
        assert_eq!(m.objects.len(), 8);
        assert_eq!(m.functions.len(), 3);
    }
}
