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
pub const PLAN_VERSION: u32 = 2;

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

/// Where one rowset file sits in its table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The object's name (source name for a backup, target name for a restore).
    pub object: String,
    pub partition: String,
    pub bucket: u32,
    /// The synchronous MV this rowset belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup: Option<String>,
    pub sha256: String,
    pub rows: u64,
    pub size: Size,
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
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Backup: pin the listed rowsets (by catalog id) at their versions, in one transaction.
    Pin { database: String, rowsets: Vec<i64> },
    /// Backup: store one rowset file in the repository (skipped if the content is there).
    Upload {
        #[serde(flatten)]
        file: FileRef,
        rowset_id: i64,
        /// Path in the cluster directory.
        path: String,
        in_repository: bool,
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
    /// Restore: fetch and verify one file into the staged object.
    Download {
        #[serde(flatten)]
        file: FileRef,
        /// The rowset's version in the snapshot.
        version: i64,
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
            Action::Upload { .. } => "upload",
            Action::WriteManifest { .. } => "write_manifest",
            Action::Release { .. } => "release",
            Action::CreateDatabase { .. } => "create_database",
            Action::Stage { .. } => "stage",
            Action::Download { .. } => "download",
            Action::Commit { .. } => "commit",
            Action::CreateView { .. } => "create_view",
            Action::ActivateMaterializedView { .. } => "activate_materialized_view",
            Action::CreateFunction { .. } => "create_function",
            Action::CreateCatalog { .. } => "create_catalog",
            Action::ApplyPrivileges { .. } => "apply_privileges",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Stable, readable and unique in the plan: `upload:sr_hub.sr_member.p1.t3.rs2`.
    pub id: String,
    #[serde(flatten)]
    pub action: Action,
    /// Ids of the tasks that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
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
    /// The plan as its file holds it: pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a plan serializes");
        s.push('\n');
        s
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
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a plan file: {e}"))?;
        if h.version < 2 {
            upgrade_properties(&mut value)?;
            value["version"] = PLAN_VERSION.into();
        }
        let plan: Plan = serde_json::from_value(value.clone())
            .map_err(|e| format!("the plan file is damaged: {e}"))?;
        // Decoded once, here: a field this version does not know is refused, not ignored.
        if let Some(field) = unknown_field(&value, &plan) {
            return Err(format!("the plan file is damaged: unknown field {field}"));
        }
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
}

impl Plan {
    /// Every size and count of the plan within what the catalog and the executor can hold,
    /// and the totals representable: a plan file is input like any other.
    fn check_numbers(&self) -> std::result::Result<(), String> {
        use crate::catalog::limits::{MAX_BUCKETS, MAX_COUNT};
        let mut total = 0u64;
        for t in &self.tasks {
            let file = match &t.action {
                Action::Upload {
                    file, rowset_id, ..
                } => {
                    if *rowset_id <= 0 {
                        return Err(format!("task {} names rowset {rowset_id}", t.id));
                    }
                    file
                }
                Action::Download { file, version } => {
                    if *version < 1 {
                        return Err(format!("task {} has version {version}", t.id));
                    }
                    file
                }
                _ => continue,
            };
            if file.size.0 > MAX_COUNT || file.rows > MAX_COUNT || file.bucket >= MAX_BUCKETS {
                return Err(format!(
                    "task {} has an impossible size, row count or bucket",
                    t.id
                ));
            }
            total = total
                .checked_add(file.size.0)
                .filter(|t| *t <= MAX_COUNT)
                .ok_or_else(|| "its files add up to more bytes than can be counted".to_string())?;
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
        Ok(())
    }
}

/// The first field of `input` (a plan file) that the decoded plan does not hold: a key serde
/// would ignore (a typo such as `"afer"` for `"after"` in a task would silently drop a
/// dependency). Keys whose value is empty (`null`, `false`, `[]`, `{}`) are what the plan
/// leaves out when it writes itself, so they are not unknown.
fn unknown_field(input: &serde_json::Value, plan: &Plan) -> Option<String> {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => x.iter().find_map(|(k, v)| match y.get(k) {
                Some(w) => walk(v, w, &format!("{at}.{k}")),
                None => {
                    let empty = match v {
                        Value::Null | Value::Bool(false) => true,
                        Value::Array(a) => a.is_empty(),
                        Value::Object(o) => o.is_empty(),
                        _ => false,
                    };
                    (!empty).then(|| format!("{at}.{k}"))
                }
            }),
            (Value::Array(x), Value::Array(y)) => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (v, w))| walk(v, w, &format!("{at}[{i}]"))),
            _ => None,
        }
    }
    let written = serde_json::to_value(plan).ok()?;
    walk(input, &written, "plan")
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
#[cfg(feature = "engine")]
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
