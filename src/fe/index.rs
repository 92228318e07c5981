//! srbackup's own index of the logical snapshots it made on StarRocks clusters: which native
//! snapshot (label and StarRocks timestamp) holds each partition, view, MV and function of a
//! logical snapshot. A partition-batched backup is several native snapshots; an incremental one
//! points unchanged partitions at the snapshot that already holds them (the chain is resolved
//! when the increment is taken, so a restore reads one entry).
//!
//! Entries are JSON files in the local state directory,
//! `index/<repository key>/<label>/<timestamp>.json`, written once (temporary file, fsync,
//! rename, directory fsync); the repository key is a hash of the repository's location, so two
//! clusters sharing one repository (the migration case) share the index when they share the
//! state directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::jobs::ItemKind;

pub const FORMAT: &str = "srbackup-starrocks-index";

/// Where one partition's (or object's) data lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    /// The native snapshot's label and StarRocks timestamp.
    pub label: String,
    pub timestamp: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexPartition {
    /// PARTITION_ID when backed up: an incremental backup reuses a partition only when both
    /// its id and its VisibleVersion are unchanged.
    pub id: i64,
    pub version: i64,
    pub bytes: u64,
    #[serde(flatten)]
    pub held: Held,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexObject {
    pub kind: ItemKind,
    /// Tables (and MVs, whose data StarRocks backs up whole): by partition name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<String, IndexPartition>,
    /// Views, MVs, functions: the snapshot holding them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// Whether the statement named only some partitions (a restore then never swaps the whole
    /// table for them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Tables: a hash of SHOW CREATE TABLE when backed up (an incremental backup reuses
    /// partitions only under the same definition).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub format: String,
    pub version: u32,
    pub label: String,
    /// The logical snapshot's timestamp (what RESTORE's backup_timestamp names).
    pub timestamp: String,
    pub repository: String,
    pub location: String,
    /// The FE it was taken through (`host:port`): partition ids mean something only there.
    pub cluster: String,
    /// `None` for a backup of external catalogs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `full` or `incremental`.
    pub backup_type: String,
    /// Earlier logical snapshots this one reuses partitions of (label@timestamp), newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    pub objects: BTreeMap<String, IndexObject>,
    /// External catalogs and the snapshot holding them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub catalogs: BTreeMap<String, Held>,
    /// Every native snapshot this entry needs.
    pub native: Vec<Held>,
}

impl Entry {
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("an index entry serializes");
        s.push('\n');
        s
    }

    /// Reads and checks an entry: every partition and object points at one of `native`.
    pub fn from_json(text: &str) -> Result<Entry, String> {
        let e: Entry = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if e.format != FORMAT || e.version != 1 {
            return Err(format!("not a {FORMAT} version 1 entry"));
        }
        let known = |h: &Held| e.native.contains(h);
        for (name, o) in &e.objects {
            if o.partitions.values().any(|p| !known(&p.held))
                || o.held.as_ref().is_some_and(|h| !known(h))
            {
                return Err(format!(
                    "{name} points at a native snapshot the entry does not list"
                ));
            }
        }
        if e.catalogs.values().any(|h| !known(h)) {
            return Err("a catalog points at a native snapshot the entry does not list".into());
        }
        Ok(e)
    }
}

/// A directory's entries; none when it does not exist.
fn listing(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    read.map(|d| {
        d.map(|d| d.path())
            .map_err(|e| format!("{}: {e}", dir.display()))
    })
    .collect()
}

/// The index under a state directory.
#[derive(Clone, Debug)]
pub struct Index {
    root: PathBuf,
}

/// The key of a repository in the index: its location, hashed (a location may hold any
/// character; the key is a file name).
pub fn repository_key(location: &str) -> String {
    hex::encode(&Sha256::digest(location.as_bytes())[..8])
}

/// Labels and timestamps become file names: only these characters are let through.
fn safe(name: &str) -> Result<&str, String> {
    if !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        Ok(name)
    } else {
        Err(format!(
            "`{name}` cannot name an index entry (letters, digits, _ and - only, at most 128)"
        ))
    }
}

impl Index {
    pub fn new(state: &Path) -> Index {
        Index {
            root: state.join("index"),
        }
    }

    fn dir(&self, location: &str, label: &str) -> Result<PathBuf, String> {
        Ok(self.root.join(repository_key(location)).join(safe(label)?))
    }

    /// Entries of one label, oldest first.
    pub fn entries(&self, location: &str, label: &str) -> Result<Vec<Entry>, String> {
        let dir = self.dir(location, label)?;
        let mut out = Vec::new();
        for path in listing(&dir)? {
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let entry = Entry::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            if entry.label != label || entry.location != location {
                return Err(format!(
                    "{}: names another snapshot ({} in {})",
                    path.display(),
                    entry.label,
                    entry.location
                ));
            }
            out.push(entry);
        }
        out.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        Ok(out)
    }

    /// Every entry of a repository, oldest first.
    pub fn all(&self, location: &str) -> Result<Vec<Entry>, String> {
        let dir = self.root.join(repository_key(location));
        let mut out = Vec::new();
        for d in listing(&dir)? {
            if let Some(label) = d.file_name().and_then(|n| n.to_str()) {
                // One damaged entry of another label does not stop every incremental backup:
                // it is left out (so its partitions are sent again) and named.
                match self.entries(location, label) {
                    Ok(e) => out.extend(e),
                    Err(e) => eprintln!("srbackup's index: {e}: left out"),
                }
            }
        }
        out.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.label.cmp(&b.label)));
        Ok(out)
    }

    fn rewritten_path(&self, cluster: &str, db: &str, table: &str) -> PathBuf {
        let key =
            hex::encode(&Sha256::digest(format!("{cluster}\0{db}\0{table}").as_bytes())[..12]);
        self.root.join("rewritten").join(key)
    }

    /// Marks a table whose partitions a restore overwrote in place (StarRocks keeps their ids
    /// and sets their versions back): the next incremental backup sends it whole.
    pub fn mark_rewritten(&self, cluster: &str, db: &str, table: &str) -> Result<(), String> {
        let path = self.rewritten_path(cluster, db, table);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, format!("{db}.{table}\n"))
            .and_then(|_| std::fs::File::open(&path).and_then(|f| f.sync_all()))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn rewritten(&self, cluster: &str, db: &str, table: &str) -> bool {
        self.rewritten_path(cluster, db, table).exists()
    }

    /// After a backup that sent the table whole.
    pub fn clear_rewritten(&self, cluster: &str, db: &str, table: &str) {
        let _ = std::fs::remove_file(self.rewritten_path(cluster, db, table));
    }

    /// Records an entry durably; an entry already there is never replaced.
    pub fn record(&self, entry: &Entry) -> Result<PathBuf, String> {
        let dir = self.dir(&entry.location, &entry.label)?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{}.json", safe(&entry.timestamp)?));
        if path.exists() {
            return Err(format!("{} already exists", path.display()));
        }
        let tmp = dir.join(format!(".{}.tmp", entry.timestamp));
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(entry.to_json().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(path)
    }
}
