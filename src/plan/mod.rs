//! The planner: a BACKUP or RESTORE statement → a reviewable plan.
//!
//! A plan names everything the job will touch (objects, partitions, every file with its size
//! and checksum) and the tasks that do it, with their dependencies. It is deterministic (the
//! same catalog, repository and statement give byte-identical JSON), holds no credentials, and
//! carries a fingerprint of the catalog state it was made from: the executor refuses a plan
//! whose fingerprint no longer matches (re-plan), so what was reviewed is what runs.
//!
//! - [`backup`] resolves a BACKUP against the catalog;
//! - [`restore`] resolves a RESTORE against the snapshot's manifest and the target database;
//! - [`graph`] turns the task list into a petgraph DAG (cycle check, order, Graphviz);
//! - [`explain`] prints a plan the way a reviewer reads it.

#[cfg(feature = "engine")]
pub mod backup;
#[cfg(feature = "engine")]
pub mod explain;
pub mod graph;
#[cfg(feature = "engine")]
pub mod native;
#[cfg(feature = "engine")]
pub mod privileges;
#[cfg(feature = "engine")]
pub mod restore;

use serde::{Deserialize, Serialize};

use crate::catalog::JobKind;
use crate::output::human_bytes;

#[cfg(feature = "engine")]
use crate::engine::Engine;
#[cfg(feature = "engine")]
use crate::error::{Error, Result};
#[cfg(feature = "engine")]
use crate::sql::Statement;

pub const PLAN_FORMAT: &str = "srbackup-plan";
/// 2: typed `options` (version 1 plans carry a `properties` map, upgraded when read).
/// 3: file transfers grouped per object, partition and sync MV, one line per file (version 2
/// plans, one task per file, are upgraded when read; their journals still apply).
pub const PLAN_VERSION: u32 = 3;

/// A byte count with its human form, for reviewers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SizeRepr", into = "SizeRepr")]
pub struct Size(pub u64);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SizeRepr {
    bytes: u64,
    human: String,
}

impl From<Size> for SizeRepr {
    fn from(s: Size) -> SizeRepr {
        SizeRepr {
            bytes: s.0,
            human: human_bytes(s.0),
        }
    }
}

impl From<SizeRepr> for Size {
    fn from(r: SizeRepr) -> Size {
        Size(r.bytes)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryRef {
    pub name: String,
    /// The location, for the reviewer; credentials stay in the catalog.
    pub location: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRef {
    pub label: String,
    /// Restore: the snapshot's timestamp. Backup: `None`, assigned when the job runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Restore without `backup_timestamp`: the newest timestamp was taken (recorded here).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub newest: bool,
    /// Restore: the SHA-256 of the manifest read, so the executor restores exactly it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Table,
    MaterializedView,
    View,
}

impl From<crate::catalog::ObjectKind> for ObjectKind {
    fn from(k: crate::catalog::ObjectKind) -> Self {
        match k {
            crate::catalog::ObjectKind::Table => ObjectKind::Table,
            crate::catalog::ObjectKind::MaterializedView => ObjectKind::MaterializedView,
            crate::catalog::ObjectKind::View => ObjectKind::View,
        }
    }
}

impl ObjectKind {
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::View => "view",
        }
    }
}

/// What the job does with an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectAction {
    /// Backup: copy it into the snapshot.
    Backup,
    /// Restore: the target does not exist; create it.
    Create,
    /// Restore: the target exists with the same schema; replace it whole.
    Overwrite,
    /// Restore: replace only the listed partitions of the existing target.
    ReplacePartitions,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedObject {
    pub kind: ObjectKind,
    /// The name in the source database (backup) or in the snapshot (restore).
    pub name: String,
    /// Restore: the name it gets (differs with `AS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub action: ObjectAction,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
    /// Synchronous MVs that travel with this table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_mvs: Vec<String>,
    pub files: u64,
    pub size: Size,
    /// Restore of an async MV whose base tables will be missing: left INACTIVE, with why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedFunction {
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedCatalog {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub objects: u64,
    pub files: u64,
    pub size: Size,
    /// Backup: files the repository already holds, which will not be sent.
    pub already_in_repository: u64,
    pub already_in_repository_size: Size,
}

/// Where one rowset file sits in its table (one file of a transfer group, for the executor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// The object's name (source name for a backup, target name for a restore).
    pub object: String,
    pub partition: String,
    pub bucket: u32,
    /// The synchronous MV this rowset belongs to.
    pub rollup: Option<String>,
    pub sha256: Digest,
    pub rows: u64,
    pub size: Size,
}

/// A SHA-256, held as its 32 bytes (a plan of a million files holds a million of them) and
/// written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn parse(s: &str) -> std::result::Result<Digest, String> {
        let mut d = [0u8; 32];
        match hex::decode_to_slice(s, &mut d) {
            Ok(()) if !s.bytes().any(|b| b.is_ascii_uppercase()) => Ok(Digest(d)),
            _ => Err(format!(
                "\"{}\" is not a SHA-256 (64 lower-case hex digits)",
                s.escape_debug()
            )),
        }
    }
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.0, &mut buf).expect("64 bytes hold 32 in hex");
        s.serialize_str(std::str::from_utf8(&buf).expect("hex is ASCII"))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One file of an upload group. Written as one line, `[bucket, rowset_id, rows, bytes,
/// "sha256"]`, with `true` appended when the repository already holds the content (nothing is
/// sent). The file's path is the pinned rowset's own, read from the catalog when it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadFile {
    pub bucket: u32,
    pub rowset_id: i64,
    pub rows: u64,
    pub size: u64,
    pub sha256: Digest,
    pub in_repository: bool,
}

/// One file of a download group: `[bucket, version, rows, bytes, "sha256"]`, the version being
/// the partition's in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadFile {
    pub bucket: u32,
    pub version: i64,
    pub rows: u64,
    pub size: u64,
    pub sha256: Digest,
}

impl Serialize for UploadFile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(5 + usize::from(self.in_repository)))?;
        seq.serialize_element(&self.bucket)?;
        seq.serialize_element(&self.rowset_id)?;
        seq.serialize_element(&self.rows)?;
        seq.serialize_element(&self.size)?;
        seq.serialize_element(&self.sha256)?;
        if self.in_repository {
            seq.serialize_element(&true)?;
        }
        seq.end()
    }
}

impl Serialize for DownloadFile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        (self.bucket, self.version, self.rows, self.size, self.sha256).serialize(s)
    }
}

/// A file line's fields: bucket, rowset id or version, rows, bytes, SHA-256, flag.
type FileTuple = (u32, i64, u64, u64, Digest, bool);

/// Reads `[bucket, n, rows, bytes, "sha256"(, flag)]`: exactly five elements, or six when
/// `flag` is allowed; anything else names what it found.
fn file_tuple<'de, A: serde::de::SeqAccess<'de>>(
    mut seq: A,
    flag: bool,
) -> std::result::Result<FileTuple, A::Error> {
    use serde::de::Error;
    let shape = if flag {
        "[bucket, rowset_id, rows, bytes, \"sha256\"] or the same with true appended"
    } else {
        "[bucket, version, rows, bytes, \"sha256\"]"
    };
    let missing = || A::Error::custom(format!("a file must be {shape}"));
    let bucket = seq.next_element()?.ok_or_else(missing)?;
    let n = seq.next_element()?.ok_or_else(missing)?;
    let rows = seq.next_element()?.ok_or_else(missing)?;
    let size = seq.next_element()?.ok_or_else(missing)?;
    let sha = seq.next_element()?.ok_or_else(missing)?;
    let mut stored = false;
    if flag && let Some(f) = seq.next_element::<bool>()? {
        if !f {
            return Err(A::Error::custom(
                "a file's sixth element is true (already in the repository) or absent",
            ));
        }
        stored = true;
    }
    if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
        return Err(A::Error::custom(format!(
            "a file must be {shape}: too many elements"
        )));
    }
    Ok((bucket, n, rows, size, sha, stored))
}

/// A file line read before its task's action is known: the sixth element allowed here, refused
/// afterwards for a download.
struct AnyLine(FileTuple);

impl<'de> Deserialize<'de> for AnyLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_seq(FileLine {
            flag: true,
            what: "a file [bucket, rowset_id or version, rows, bytes, \"sha256\"]",
            make: AnyLine,
        })
    }
}

/// Reads a file line into `T` (an upload's or a download's).
struct FileLine<T> {
    /// An upload's line may carry a sixth element.
    flag: bool,
    what: &'static str,
    make: fn(FileTuple) -> T,
}

impl<'de, T> serde::de::Visitor<'de> for FileLine<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> std::result::Result<T, A::Error> {
        file_tuple(seq, self.flag).map(self.make)
    }
}

impl<'de> Deserialize<'de> for UploadFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_seq(FileLine {
            flag: true,
            what: "an upload file [bucket, rowset_id, rows, bytes, \"sha256\"]",
            make: UploadFile::from_line,
        })
    }
}

impl UploadFile {
    fn from_line((bucket, rowset_id, rows, size, sha256, in_repository): FileTuple) -> Self {
        UploadFile {
            bucket,
            rowset_id,
            rows,
            size,
            sha256,
            in_repository,
        }
    }
}

impl<'de> Deserialize<'de> for DownloadFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_seq(FileLine {
            flag: false,
            what: "a download file [bucket, version, rows, bytes, \"sha256\"]",
            make: DownloadFile::from_line,
        })
    }
}

impl DownloadFile {
    /// A download line has no sixth element; the caller refuses one.
    fn from_line((bucket, version, rows, size, sha256, _): FileTuple) -> Self {
        DownloadFile {
            bucket,
            version,
            rows,
            size,
            sha256,
        }
    }
}

/// How a staged object lands at commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRef {
    pub target: String,
    pub action: ObjectAction,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
}

/// One step of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Backup: pin the rowsets the plan's uploads name (by catalog id) at their versions, in
    /// one transaction.
    Pin { database: String },
    /// Backup: store the rowset files of one partition of an object (of its base table, or of
    /// one synchronous MV) in the repository; a file whose content is there is not sent.
    #[serde(rename = "upload")]
    Uploads {
        object: String,
        partition: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rollup: Option<String>,
        files: Vec<UploadFile>,
    },
    /// Backup: commit the snapshot (the manifest is written last).
    WriteManifest { label: String },
    /// Backup: release the pin.
    Release { database: String },
    /// Restore: create the target database.
    CreateDatabase { database: String },
    /// Restore: create a hidden staged copy of a table or MV to download into.
    Stage {
        kind: ObjectKind,
        name: String,
        target: String,
        partitions: Vec<String>,
    },
    /// Restore: fetch and verify the files of one partition (and sync MV) into the staged
    /// object.
    #[serde(rename = "download")]
    Downloads {
        object: String,
        partition: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rollup: Option<String>,
        files: Vec<DownloadFile>,
    },
    /// Restore: publish every staged object of the job in one catalog transaction.
    Commit {
        database: String,
        publish: Vec<PublishRef>,
    },
    /// Restore: create or replace a view.
    CreateView { name: String, target: String },
    /// Restore: mark an async MV active, or inactive with a reason.
    ActivateMaterializedView {
        name: String,
        target: String,
        active: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Restore: create or replace a function.
    CreateFunction { signature: String, target: String },
    /// Restore: create or replace an external catalog's metadata.
    CreateCatalog { name: String, target: String },
    /// Restore: re-apply the snapshot's privileges (`Plan::privileges`).
    ApplyPrivileges { database: String },
}

impl Action {
    /// The task kind, for worker pools and progress.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Pin { .. } => "pin",
            Action::Uploads { .. } => "upload",
            Action::WriteManifest { .. } => "write_manifest",
            Action::Release { .. } => "release",
            Action::CreateDatabase { .. } => "create_database",
            Action::Stage { .. } => "stage",
            Action::Downloads { .. } => "download",
            Action::Commit { .. } => "commit",
            Action::CreateView { .. } => "create_view",
            Action::ActivateMaterializedView { .. } => "activate_materialized_view",
            Action::CreateFunction { .. } => "create_function",
            Action::CreateCatalog { .. } => "create_catalog",
            Action::ApplyPrivileges { .. } => "apply_privileges",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Stable, readable and unique in the plan: `upload:sr_hub.sr_member.p1.t3.rs2`.
    pub id: String,
    #[serde(flatten)]
    pub action: Action,
    /// Ids of the tasks that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// Read by hand rather than derived: the action is flattened into the task, and serde cannot
/// refuse unknown fields through a flatten (a typo such as `"afer"` for `"after"` would
/// silently drop a dependency). The action refuses them instead.
impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Task, D::Error> {
        use serde::de::Error;
        use serde_json::Value;
        /// A JSON object whose keys are each there once (a reviewer reads the first of two,
        /// serde_json's map would keep the last).
        struct Unique;
        impl<'de> serde::de::Visitor<'de> for Unique {
            type Value = (serde_json::Map<String, Value>, Option<Vec<AnyLine>>);
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a task (a JSON object)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut map = serde_json::Map::new();
                let mut lines: Option<Vec<AnyLine>> = None;
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) || (key == "files" && lines.is_some()) {
                        return Err(A::Error::custom(format!("duplicate field `{key}`")));
                    }
                    // A group's file lines are read typed, not as JSON values (a value per
                    // field of each line would cost several times the plan).
                    if key == "files" {
                        lines = Some(access.next_value()?);
                        continue;
                    }
                    let value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok((map, lines))
            }
        }
        let (mut map, lines) = d.deserialize_map(Unique)?;
        if lines.is_some() {
            map.insert("files".into(), Value::Array(vec![]));
        }
        let id = match map.remove("id") {
            Some(Value::String(id)) => id,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "a task id {other} is not a string"
                )));
            }
            None => return Err(D::Error::custom("a task has no id")),
        };
        let after = match map.remove("after") {
            None | Some(Value::Null) => vec![],
            Some(v) => serde_json::from_value(v)
                .map_err(|e| D::Error::custom(format!("task {id}: after: {e}")))?,
        };
        let mut action = serde_json::from_value(Value::Object(map))
            .map_err(|e| D::Error::custom(format!("task {id}: {e}")))?;
        match (&mut action, lines) {
            (Action::Uploads { files, .. }, Some(lines)) => {
                *files = lines
                    .into_iter()
                    .map(|AnyLine(line)| UploadFile::from_line(line))
                    .collect();
            }
            (Action::Downloads { files, .. }, Some(lines)) => {
                let mut out = Vec::with_capacity(lines.len());
                for AnyLine(line) in lines {
                    if line.5 {
                        return Err(D::Error::custom(format!(
                            "task {id}: a download file must be [bucket, version, rows, bytes, \"sha256\"]: too many elements"
                        )));
                    }
                    out.push(DownloadFile::from_line(line));
                }
                *files = out;
            }
            (_, Some(_)) => {
                return Err(D::Error::custom(format!(
                    "task {id}: unknown field `files` (only upload and download tasks list files)"
                )));
            }
            (_, None) => {}
        }
        Ok(Task { id, action, after })
    }
}

impl Action {
    /// The files a transfer group moves (0 for any other task).
    pub fn file_count(&self) -> usize {
        match self {
            Action::Uploads { files, .. } => files.len(),
            Action::Downloads { files, .. } => files.len(),
            _ => 0,
        }
    }

    /// The size of file `i` of a transfer group.
    pub fn file_size(&self, i: usize) -> u64 {
        match self {
            Action::Uploads { files, .. } => files.get(i).map_or(0, |f| f.size),
            Action::Downloads { files, .. } => files.get(i).map_or(0, |f| f.size),
            _ => 0,
        }
    }

    /// File `i` of a transfer group, with where it sits.
    pub fn file(&self, i: usize) -> Option<FileRef> {
        let (object, partition, rollup, bucket, sha256, rows, size) = match self {
            Action::Uploads {
                object,
                partition,
                rollup,
                files,
            } => {
                let f = files.get(i)?;
                (
                    object, partition, rollup, f.bucket, f.sha256, f.rows, f.size,
                )
            }
            Action::Downloads {
                object,
                partition,
                rollup,
                files,
            } => {
                let f = files.get(i)?;
                (
                    object, partition, rollup, f.bucket, f.sha256, f.rows, f.size,
                )
            }
            _ => return None,
        };
        Some(FileRef {
            object: object.clone(),
            partition: partition.clone(),
            bucket,
            rollup: rollup.clone(),
            sha256,
            rows,
            size: Size(size),
        })
    }

    pub fn is_transfer(&self) -> bool {
        matches!(self, Action::Uploads { .. } | Action::Downloads { .. })
    }
}

/// The journal key of file `i` of transfer group `group`: `upload:db.t.p1#7`.
pub fn file_key(group: &str, i: usize) -> String {
    format!("{group}#{i}")
}

/// A plan file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub format: String,
    pub version: u32,
    pub kind: JobKind,
    /// The statement as written (BACKUP/RESTORE carry no credentials).
    pub statement: String,
    pub repository: RepositoryRef,
    pub snapshot: SnapshotRef,
    /// The database backed up, or the snapshot's database for a restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Restore: where it lands (differs with `DATABASE x AS y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_database: Option<String>,
    /// SHA-256 over the catalog state the plan depends on (and, for a restore, the manifest).
    pub fingerprint: String,
    /// The job's PROPERTIES, resolved once (`sql::options`): the executor only reads these.
    pub options: crate::sql::options::JobOptions,
    pub objects: Vec<PlannedObject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<PlannedFunction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_catalogs: Vec<PlannedCatalog>,
    pub summary: Summary,
    pub tasks: Vec<Task>,
    /// Users, roles and grants a backup takes along or a restore re-applies (never a
    /// password hash: see `plan::privileges`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges: Option<crate::repo::format::PrivilegeSet>,
}

impl Plan {
    /// The plan as its file holds it: pretty JSON with a final newline, each file of a
    /// transfer group on one line (see [`PlanFormatter`]).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out)
            .expect("a plan serializes into memory");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// Writes [`Plan::to_json`] to `w`, without building the text in memory.
    pub fn write_json<W: std::io::Write>(&self, w: W) -> std::io::Result<()> {
        let mut ser = serde_json::Serializer::with_formatter(w, PlanFormatter::default());
        self.serialize(&mut ser).map_err(std::io::Error::other)?;
        ser.into_inner().write_all(b"\n")
    }

    /// Reads a plan file: format, version, unique ids, known dependencies, no cycle.
    pub fn from_json(text: &str) -> std::result::Result<Plan, String> {
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let h: Header = serde_json::from_str(text).map_err(|e| format!("not a plan file: {e}"))?;
        if h.format != PLAN_FORMAT {
            return Err(format!("not a plan file (format \"{}\")", h.format));
        }
        if h.version > PLAN_VERSION {
            return Err(format!(
                "plan format version {} is newer than the {PLAN_VERSION} this srbackup reads; upgrade srbackup",
                h.version
            ));
        }
        if h.version < PLAN_VERSION {
            // Older plans (small: they predate plans of a million files) are upgraded as
            // JSON values, then read as a current one.
            let mut value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("not a plan file: {e}"))?;
            // A current plan relabelled: say so rather than fail on a field it lacks.
            let grouped = value
                .get("tasks")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|t| t.iter().any(|t| t.get("files").is_some()));
            if grouped {
                return Err(format!(
                    "the plan file is damaged: it says version {} but holds grouped files, which only version {PLAN_VERSION} plans hold",
                    h.version
                ));
            }
            if h.version < 2 {
                upgrade_properties(&mut value)?;
            }
            upgrade_file_tasks(&mut value)?;
            value["version"] = PLAN_VERSION.into();
            return Plan::from_json(&value.to_string());
        }
        // Every struct of a plan refuses fields it does not know (tasks through their action),
        // so a typo is an error rather than a field silently dropped.
        let plan: Plan =
            serde_json::from_str(text).map_err(|e| format!("the plan file is damaged: {e}"))?;
        let statement = match plan.kind {
            JobKind::Backup => crate::sql::options::JobStatement::Backup,
            JobKind::Restore => crate::sql::options::JobStatement::Restore,
        };
        plan.options
            .check(statement)
            .map_err(|e| format!("the plan file is damaged: its options: {e}"))?;
        plan.check_numbers()
            .map_err(|e| format!("the plan file is damaged: {e}"))?;
        graph::TaskGraph::new(&plan.tasks)?;
        Ok(plan)
    }

    /// A plan without its tasks, read without decoding them: what SHOW BACKUP, privilege checks
    /// and DROP REPOSITORY need of a job (whose plan may list a million files). Older plans
    /// are read whole.
    pub fn header_from_json(text: &str) -> std::result::Result<Plan, String> {
        #[derive(Deserialize)]
        struct Head {
            format: String,
            version: u32,
            kind: JobKind,
            statement: String,
            repository: RepositoryRef,
            snapshot: SnapshotRef,
            #[serde(default)]
            database: Option<String>,
            #[serde(default)]
            target_database: Option<String>,
            fingerprint: String,
            options: crate::sql::options::JobOptions,
            objects: Vec<PlannedObject>,
            #[serde(default)]
            functions: Vec<PlannedFunction>,
            #[serde(default)]
            external_catalogs: Vec<PlannedCatalog>,
            summary: Summary,
            #[serde(default)]
            privileges: Option<crate::repo::format::PrivilegeSet>,
        }
        match serde_json::from_str::<Head>(text) {
            Ok(h) if h.format == PLAN_FORMAT && h.version == PLAN_VERSION => Ok(Plan {
                format: h.format,
                version: h.version,
                kind: h.kind,
                statement: h.statement,
                repository: h.repository,
                snapshot: h.snapshot,
                database: h.database,
                target_database: h.target_database,
                fingerprint: h.fingerprint,
                options: h.options,
                objects: h.objects,
                functions: h.functions,
                external_catalogs: h.external_catalogs,
                summary: h.summary,
                tasks: vec![],
                privileges: h.privileges,
            }),
            _ => Plan::from_json(text).map(|mut p| {
                p.tasks.clear();
                p
            }),
        }
    }

    /// The files of the plan's transfer groups: (task index, file index), in plan order.
    pub fn files(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.tasks
            .iter()
            .enumerate()
            .flat_map(|(t, task)| (0..task.action.file_count()).map(move |f| (t, f)))
    }

    /// The ids version 2 plans gave their files (one task per file), each with its (task,
    /// file) here: journals of jobs planned by that version name their files so.
    pub fn legacy_file_ids(&self) -> std::collections::HashMap<String, (usize, usize)> {
        let mut ids = std::collections::HashMap::new();
        let db = match self.kind {
            JobKind::Backup => self.database.as_deref(),
            JobKind::Restore => self.target_database.as_deref(),
        }
        .map(id_part)
        .unwrap_or_else(|| "catalogs".into());
        for (t, task) in self.tasks.iter().enumerate() {
            let (kind, object, partition, rollup, buckets): (_, _, _, _, Vec<u32>) =
                match &task.action {
                    Action::Uploads {
                        object,
                        partition,
                        rollup,
                        files,
                    } => (
                        "upload",
                        object,
                        partition,
                        rollup,
                        files.iter().map(|f| f.bucket).collect(),
                    ),
                    Action::Downloads {
                        object,
                        partition,
                        rollup,
                        files,
                    } => (
                        "download",
                        object,
                        partition,
                        rollup,
                        files.iter().map(|f| f.bucket).collect(),
                    ),
                    _ => continue,
                };
            let mut counters: std::collections::HashMap<u32, usize> = Default::default();
            for (f, bucket) in buckets.into_iter().enumerate() {
                let n = counters.entry(bucket).or_default();
                let id = file_task_id(
                    kind,
                    &format!("{db}.{}", id_part(object)),
                    partition,
                    bucket,
                    rollup.as_deref(),
                    *n,
                );
                *n += 1;
                ids.insert(id, (t, f));
            }
        }
        ids
    }

    /// Every size and count of the plan within what the catalog and the executor can hold,
    /// and the totals representable: a plan file is input like any other.
    fn check_numbers(&self) -> std::result::Result<(), String> {
        use crate::catalog::limits::{MAX_BUCKETS, MAX_COUNT};
        let mut total = 0u64;
        for t in &self.tasks {
            let sizes: Vec<(u32, i64, u64, u64)> = match &t.action {
                Action::Uploads { files, .. } => {
                    if let Some(f) = files.iter().find(|f| f.rowset_id <= 0) {
                        return Err(format!("task {} names rowset {}", t.id, f.rowset_id));
                    }
                    files
                        .iter()
                        .map(|f| (f.bucket, 1, f.rows, f.size))
                        .collect()
                }
                Action::Downloads { files, .. } => {
                    if let Some(f) = files.iter().find(|f| f.version < 1) {
                        return Err(format!("task {} has version {}", t.id, f.version));
                    }
                    files
                        .iter()
                        .map(|f| (f.bucket, 1, f.rows, f.size))
                        .collect()
                }
                _ => continue,
            };
            for (bucket, _, rows, size) in sizes {
                if size > MAX_COUNT || rows > MAX_COUNT || bucket >= MAX_BUCKETS {
                    return Err(format!(
                        "task {} has a file of impossible size, row count or bucket",
                        t.id
                    ));
                }
                total = total
                    .checked_add(size)
                    .filter(|t| *t <= MAX_COUNT)
                    .ok_or_else(|| {
                        "its files add up to more bytes than can be counted".to_string()
                    })?;
            }
        }
        let s = &self.summary;
        for n in [
            s.files,
            s.size.0,
            s.already_in_repository,
            s.already_in_repository_size.0,
        ] {
            if n > MAX_COUNT {
                return Err("its summary has an impossible count".into());
            }
        }
        for o in &self.objects {
            if o.files > MAX_COUNT || o.size.0 > MAX_COUNT {
                return Err(format!("object {} has an impossible size", o.name));
            }
        }
        // The counts a reviewer reads are the lines the plan holds.
        let mut lines: std::collections::HashMap<&str, (u64, u64)> = Default::default();
        let mut all = (0u64, 0u64);
        for t in &self.tasks {
            let object = match &t.action {
                Action::Uploads { object, .. } | Action::Downloads { object, .. } => object,
                _ => continue,
            };
            let n = t.action.file_count() as u64;
            let bytes: u64 = (0..t.action.file_count())
                .map(|f| t.action.file_size(f))
                .sum();
            let e = lines.entry(object.as_str()).or_default();
            e.0 += n;
            e.1 += bytes;
            all.0 += n;
            all.1 += bytes;
        }
        for o in &self.objects {
            let name = match self.kind {
                JobKind::Backup => o.name.as_str(),
                JobKind::Restore => o.target.as_deref().unwrap_or(&o.name),
            };
            let (n, bytes) = lines.get(name).copied().unwrap_or_default();
            if (n, bytes) != (o.files, o.size.0) {
                return Err(format!(
                    "object {} says {} files of {} bytes, but its tasks list {n} files of {bytes} bytes",
                    o.name, o.files, o.size.0
                ));
            }
        }
        if all != (self.summary.files, self.summary.size.0) {
            return Err(format!(
                "its summary says {} files of {} bytes, but its tasks list {} files of {} bytes",
                self.summary.files, self.summary.size.0, all.0, all.1
            ));
        }
        Ok(())
    }
}

/// serde_json's pretty layout (two spaces), except that an array inside an array is written on
/// one line: each file of a transfer group is one line, so a plan of a million files is a
/// million short lines that a reviewer can read, grep and diff.
#[derive(Default)]
pub struct PlanFormatter {
    /// The containers open, innermost last: `Some(true)` an array written on one line,
    /// `Some(false)` a pretty array, `None` an object.
    open: Vec<Option<bool>>,
    has_value: bool,
}

impl PlanFormatter {
    /// A formatter for one task inside a plan's `tasks` array (streamed plans write their
    /// tasks one by one, indented as [`Plan::to_json`] indents them).
    pub fn for_task() -> PlanFormatter {
        PlanFormatter {
            open: vec![None, Some(false)],
            has_value: false,
        }
    }

    fn compact(&self) -> bool {
        self.open.last().copied().flatten() == Some(true)
    }

    fn indent<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        for _ in 0..self.open.len() {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl PlanFormatter {
    fn open_container<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        kind: Option<bool>,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.open.push(kind);
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close_container<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        let inline = self.compact();
        self.open.pop();
        if !inline && self.has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(bracket)
    }

    fn next_line<W: ?Sized + std::io::Write>(&self, w: &mut W, first: bool) -> std::io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
}

impl serde_json::ser::Formatter for PlanFormatter {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        let inline = matches!(self.open.last(), Some(Some(_)));
        self.open_container(w, Some(inline), b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close_container(w, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if self.compact() {
            return if first { Ok(()) } else { w.write_all(b",") };
        }
        self.next_line(w, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open_container(w, None, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close_container(w, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.next_line(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Version 2 plans held one task per file (`upload:db.t.p1.t3.rs0`, with its file's fields
/// flattened into the task); version 3 groups them per object, partition and sync MV. The
/// groups keep the files in plan order, dependencies on a file become dependencies on its
/// group, and the pin's explicit rowset list goes (it pins what the uploads name).
fn upgrade_file_tasks(plan: &mut serde_json::Value) -> std::result::Result<(), String> {
    use serde_json::{Value, json};
    let damaged = |what: &str| format!("the plan file is damaged: {what}");
    let db = match plan.get("kind").and_then(Value::as_str) {
        Some("restore") => plan.get("target_database"),
        _ => plan.get("database"),
    }
    .and_then(Value::as_str)
    .map(id_part)
    .unwrap_or_else(|| "catalogs".into());
    let Some(tasks) = plan.get_mut("tasks").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let mut out: Vec<Value> = Vec::with_capacity(tasks.len());
    let mut group_of: std::collections::HashMap<String, String> = Default::default();
    let mut position: std::collections::HashMap<String, usize> = Default::default();
    for mut t in tasks.drain(..) {
        let kind = t
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if kind == "pin" {
            if let Some(o) = t.as_object_mut() {
                o.remove("rowsets");
            }
            out.push(t);
            continue;
        }
        if kind != "upload" && kind != "download" {
            out.push(t);
            continue;
        }
        let text = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
        let number = |k: &str| t.get(k).cloned().unwrap_or(Value::Null);
        let id = text("id").ok_or_else(|| damaged("a task without an id"))?;
        let object = text("object").ok_or_else(|| damaged(&format!("task {id} has no object")))?;
        let partition =
            text("partition").ok_or_else(|| damaged(&format!("task {id} has no partition")))?;
        let rollup = text("rollup");
        let size = t
            .get("size")
            .and_then(|s| s.get("bytes"))
            .cloned()
            .unwrap_or(Value::Null);
        let file = if kind == "upload" {
            let mut f = vec![
                number("bucket"),
                number("rowset_id"),
                number("rows"),
                size,
                number("sha256"),
            ];
            if t.get("in_repository") == Some(&Value::Bool(true)) {
                f.push(Value::Bool(true));
            }
            Value::Array(f)
        } else {
            json!([
                number("bucket"),
                number("version"),
                number("rows"),
                size,
                number("sha256")
            ])
        };
        let group = format!(
            "{kind}:{db}.{}.{}{}",
            id_part(&object),
            id_part(&partition),
            rollup
                .as_deref()
                .map(|r| format!(".{}", id_part(r)))
                .unwrap_or_default()
        );
        group_of.insert(id, group.clone());
        match position.get(&group) {
            Some(&i) => {
                if let Some(files) = out[i].get_mut("files").and_then(Value::as_array_mut) {
                    files.push(file);
                }
                // The group waits for what any of its files waited for.
                let more = t.get_mut("after").map(Value::take).unwrap_or(json!([]));
                if let (Some(after), Some(more)) = (
                    out[i].get_mut("after").and_then(Value::as_array_mut),
                    more.as_array(),
                ) {
                    after.extend(more.iter().cloned());
                }
            }
            None => {
                position.insert(group.clone(), out.len());
                let mut g = json!({
                    "id": group,
                    "action": kind,
                    "object": object,
                    "partition": partition,
                    "files": [file],
                    "after": t.get_mut("after").map(Value::take).unwrap_or(json!([])),
                });
                if let Some(r) = rollup {
                    g["rollup"] = r.into();
                }
                out.push(g);
            }
        }
    }
    // A partition's groups as the planner orders them: the base table's first, then each sync
    // MV's by name (a v2 plan met a sync MV's rowset first when a tablet had no base one).
    let group_key = |t: &Value| -> Option<(String, String, String)> {
        let kind = t.get("action").and_then(Value::as_str)?;
        (kind == "upload" || kind == "download").then(|| {
            let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (kind.to_string(), s("object"), s("partition"))
        })
    };
    let mut i = 0;
    while i < out.len() {
        let Some(key) = group_key(&out[i]) else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < out.len() && group_key(&out[j]).as_ref() == Some(&key) {
            j += 1;
        }
        out[i..j].sort_by_key(|t| {
            t.get("rollup")
                .and_then(Value::as_str)
                .map(|r| (1, r.to_string()))
                .unwrap_or((0, String::new()))
        });
        i = j;
    }
    for t in &mut out {
        if let Some(after) = t.get_mut("after").and_then(Value::as_array_mut) {
            let mut seen = std::collections::HashSet::new();
            let mapped: Vec<Value> = after
                .iter()
                .filter_map(Value::as_str)
                .map(|a| group_of.get(a).cloned().unwrap_or_else(|| a.to_string()))
                .filter(|a| seen.insert(a.clone()))
                .map(Value::from)
                .collect();
            *after = mapped;
        }
    }
    *tasks = out;
    Ok(())
}

/// Plans written before job options were typed carry `"properties": {"timeout": "86400", ...}`
/// (jobs interrupted by that version hold such plans in the catalog). They are resolved once,
/// here, by the same table that checks statements; a value it refuses is an error.
fn upgrade_properties(plan: &mut serde_json::Value) -> std::result::Result<(), String> {
    use crate::sql::options::{JobOptions, JobStatement};
    let Some(object) = plan.as_object_mut() else {
        return Ok(());
    };
    if object.contains_key("options") {
        return Ok(());
    }
    let Some(serde_json::Value::Object(properties)) = object.remove("properties") else {
        return Ok(());
    };
    let statement = match object.get("kind").and_then(|k| k.as_str()) {
        Some("restore") => JobStatement::Restore,
        Some("backup") => JobStatement::Backup,
        other => return Err(format!("the plan file is damaged: kind {other:?}")),
    };
    // Values the old validator took but this one bounds (a timeout over a year, more replicas
    // than StarRocks counts) are clamped rather than refused, so that such a job can still be
    // resumed or cancelled.
    fn clamped(p: &crate::sql::Properties) -> crate::sql::Properties {
        use crate::sql::options::{MAX_REPLICATION_NUM, MAX_TIMEOUT_SECONDS};
        let mut p = p.clone();
        for prop in &mut p.0 {
            let limit = match prop.key.value.as_str() {
                "timeout" => MAX_TIMEOUT_SECONDS,
                "replication_num" => u64::from(MAX_REPLICATION_NUM),
                _ => continue,
            };
            if prop
                .value
                .value
                .trim()
                .parse::<u64>()
                .is_ok_and(|n| n > limit)
            {
                prop.value.value = limit.to_string();
            }
        }
        p
    }
    let properties = crate::sql::Properties(
        properties
            .iter()
            .map(|(k, v)| crate::sql::Property {
                key: crate::sql::Literal::new(k.as_str()),
                value: crate::sql::Literal::new(v.as_str().unwrap_or_default()),
            })
            .collect(),
    );
    let options = JobOptions::resolve(statement, &clamped(&properties)).map_err(|problems| {
        format!(
            "the plan file is damaged: its properties do not resolve: {}",
            problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    object.insert(
        "options".into(),
        serde_json::to_value(options).map_err(|e| e.to_string())?,
    );
    Ok(())
}

/// Builds the plan of a BACKUP or RESTORE statement. `text` is the statement as written.
#[cfg(feature = "engine")]
pub async fn plan(engine: &mut Engine, statement: &Statement, text: &str) -> Result<Plan> {
    match statement {
        Statement::Backup(b) => backup::plan(engine, b, text).await,
        Statement::Restore(r) => restore::plan(engine, r, text).await,
        _ => Err(Error::invalid(
            "only BACKUP and RESTORE statements have plans",
            None,
        )),
    }
}

/// Plans a BACKUP or RESTORE statement into the file `out` (replaced whole, or left as it
/// was on an error). A BACKUP is streamed: its upload groups go to the file as the catalog
/// yields them, so memory does not hold the plan. Returns the plan without its transfer
/// groups, and how many tasks the file holds.
#[cfg(feature = "engine")]
pub async fn plan_to_file(
    engine: &mut Engine,
    statement: &Statement,
    text: &str,
    out: &std::path::Path,
) -> Result<(Plan, usize)> {
    if let Statement::Backup(b) = statement {
        let (plan, groups) = backup::plan_to_file(engine, b, text, out).await?;
        let tasks = plan.tasks.len() + groups;
        return Ok((plan, tasks));
    }
    let mut plan = self::plan(engine, statement, text).await?;
    replace_file(out, |w| plan.write_json(w))?;
    let tasks = plan.tasks.len();
    plan.tasks.retain(|t| !t.action.is_transfer());
    Ok((plan, tasks))
}

/// Writes `out` whole through `write`: into a new file beside it that then takes its name, so
/// that a failure leaves `out` as it was. What is not a regular file (a pipe, `/dev/stdout`)
/// is written in place.
#[cfg(feature = "engine")]
pub(crate) fn replace_file(
    out: &std::path::Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| Error::invalid(format!("{}: {e}", out.display()), None);
    // Through a symbolic link to the file it names, as writing it in place would.
    let resolved = std::fs::canonicalize(out).ok();
    let out = resolved.as_deref().unwrap_or(out);
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file()) {
        let mut w = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .open(out)
                .map_err(io)?,
        );
        write(&mut w).map_err(io)?;
        return w.flush().map_err(io);
    }
    let file = tempfile::NamedTempFile::new_in(beside(out)).map_err(io)?;
    // The mode of the file it replaces, or rw-r--r-- (a plan holds no secret; the temporary
    // file starts private).
    let mode = std::fs::metadata(out)
        .map(|m| m.permissions())
        .unwrap_or_else(|_| std::os::unix::fs::PermissionsExt::from_mode(0o644));
    file.as_file().set_permissions(mode).map_err(io)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file.as_file());
        write(&mut w).map_err(io)?;
        w.flush().map_err(io)?;
    }
    file.persist(out).map_err(|e| io(e.error))?;
    Ok(())
}

/// Where files that become `out` (or are copied into it) are made: beside it, on its
/// filesystem, unless it is no regular file (`/dev/stdout`: the temporary directory).
#[cfg(feature = "engine")]
pub(crate) fn beside(out: &std::path::Path) -> std::path::PathBuf {
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file()) {
        return std::env::temp_dir();
    }
    match out.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => std::path::PathBuf::from("."),
    }
}

/// A job statement's typed options; a statement built without validation gets its first
/// problem back as the error.
#[cfg(feature = "engine")]
pub(crate) fn job_options(
    statement: crate::sql::options::JobStatement,
    properties: &crate::sql::Properties,
) -> Result<crate::sql::options::JobOptions> {
    crate::sql::options::JobOptions::resolve(statement, properties)
        .map_err(|mut problems| Error::at(problems.swap_remove(0)))
}

/// Accumulates the state a plan depends on, in a fixed order, into one SHA-256.
#[cfg(feature = "engine")]
#[derive(Default)]
pub(crate) struct Fingerprint(sha2::Sha256);

#[cfg(feature = "engine")]
impl Fingerprint {
    pub fn add(&mut self, part: impl Serialize) {
        use sha2::Digest;
        let bytes = serde_json::to_vec(&part).expect("fingerprint parts serialize");
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(&bytes);
    }
    pub fn finish(self) -> String {
        use sha2::Digest;
        format!("sha256:{}", hex::encode(self.0.finalize()))
    }
}

/// The id of a file transfer task: `upload:db.table.p1.t3.rs2`, or
/// `download:db.table.p1.t3.sync_mv.rs0` for a sync MV's rowset. Backup and restore name their
/// files the same way, so a reviewer can follow one file from one plan to the other.
pub(crate) fn file_task_id(
    action: &str,
    object: &str,
    partition: &str,
    bucket: u32,
    rollup: Option<&str>,
    n: usize,
) -> String {
    let rollup = rollup
        .map(|m| format!(".{}", id_part(m)))
        .unwrap_or_default();
    format!(
        "{action}:{object}.{}.t{bucket}{rollup}.rs{n}",
        id_part(partition)
    )
}

/// `"x"` for a name, with backquotes if it needs them, for task ids and messages.
pub fn id_part(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        name.to_string()
    } else {
        format!("`{}`", name.replace('`', "``"))
    }
}
