//! Plans for a StarRocks target (#19): BACKUP and RESTORE compiled into StarRocks' own jobs.
//!
//! A backup becomes native BACKUP jobs of partition batches (sized by DataSize up to
//! `batch_bytes`), one label per batch (`<label>__b<k>`), plus one for views, MVs and functions;
//! the jobs of one database form a chain (StarRocks runs one job per database at a time) and
//! databases' chains run side by side up to `max_databases`. A restore reads srbackup's index
//! entry of the logical snapshot and becomes one native RESTORE per native snapshot holding
//! what it selects; a whole table goes into a temporary table first and is swapped in
//! (`ALTER TABLE … SWAP WITH …`) or renamed into place only once every batch has landed, so a
//! failed or cancelled restore leaves the live table as it was.
//!
//! Every task carries the exact statement the executor sends. The plan records the partition
//! versions it was made from; `apply` re-derives the plan and refuses a stale or edited one.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::code::Code;
use crate::error::{Error, Result};
use crate::fe::catalog::{self as fec, ObjectKind};
use crate::fe::index::{Entry, Held, Index};
use crate::fe::jobs::{self, Item, ItemKind, JobKind};
use crate::fe::{Fe, quote};
use crate::sql::options::{BackupType, JobOptions, JobStatement};
use crate::sql::{Backup, CatalogSelection, Ident, ObjectRef, Restore, Statement};

pub const FORMAT: &str = "srbackup-plan";
pub const TARGET: &str = "starrocks";
pub const VERSION: u32 = 1;
/// Labels srbackup derives (`__b<k>__r<n>` appended) stay within StarRocks' limits.
pub const MAX_LABEL: usize = 96;
/// The names of temporary tables a restore lands in before the swap.
pub const TEMP_PREFIX: &str = "srbackup_tmp_";

/// How a plan for StarRocks is cut and run. Part of the plan (and so of what is reviewed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Target bytes (DataSize) per native job.
    pub batch_bytes: u64,
    /// Databases whose jobs run side by side.
    pub max_databases: u32,
    /// Retries of a failed native job (each with a new label), with exponential backoff.
    pub retries: u32,
    pub retry_backoff_ms: u64,
    /// How often SHOW BACKUP / SHOW RESTORE is polled.
    pub poll_ms: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            batch_bytes: 64 << 30,
            max_databases: 4,
            retries: 3,
            retry_backoff_ms: 30_000,
            poll_ms: 5_000,
        }
    }
}

impl Settings {
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.batch_bytes == 0 {
            return Err("batch_bytes must be at least 1".into());
        }
        if !(1..=64).contains(&self.max_databases) {
            return Err("max_databases must be from 1 to 64".into());
        }
        if self.retries > 100 {
            return Err("retries must be at most 100".into());
        }
        if self.retry_backoff_ms > 3_600_000 || !(10..=600_000).contains(&self.poll_ms) {
            return Err(
                "retry_backoff_ms must be at most an hour and poll_ms from 10 ms to 10 minutes"
                    .into(),
            );
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A native BACKUP job.
    Backup,
    /// A native RESTORE job.
    Restore,
    BackupCatalogs,
    RestoreCatalogs,
    /// `ALTER TABLE t SWAP WITH temp`: the restored copy goes live, the old one becomes temp.
    Swap,
    /// `ALTER TABLE temp RENAME t`: a restored table that did not exist goes live.
    Rename,
    /// `DROP TABLE temp`: the replaced copy (after a swap).
    DropTemp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub id: String,
    pub kind: TaskKind,
    /// Which statement of the plan it serves.
    pub unit: usize,
    /// The database whose job lane it runs in (catalog jobs: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The native snapshot label (backup: the one it creates; restore: the one it reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The exact statement sent to the FE (a retried backup only changes the label).
    pub statement: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalogs: Vec<String>,
    /// DataSize of the partitions it moves.
    #[serde(default)]
    pub bytes: u64,
    /// Swap/rename/drop: the live table and its temporary copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// One partition (or object, `partition` empty) as it was when the plan was made.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRow {
    pub database: String,
    pub object: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub partition: String,
    /// PARTITION_ID (a TRUNCATE, a restore over it or a re-created table gives new ids even
    /// when versions repeat); 0 for an object without partitions.
    #[serde(default)]
    pub id: i64,
    /// VisibleVersion; -1 for an object without partitions; absent objects are not listed.
    pub version: i64,
    #[serde(default)]
    pub bytes: u64,
    /// A table's own row (`partition` empty): a hash of its SHOW CREATE TABLE.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema: String,
}

/// A partition an incremental backup does not send again: where it already is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reused {
    pub object: String,
    pub partition: String,
    pub id: i64,
    pub version: i64,
    pub bytes: u64,
    pub label: String,
    pub timestamp: String,
}

/// One statement of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub kind: JobKind,
    /// As written (BACKUP/RESTORE carry no credentials).
    pub statement: String,
    pub repository: String,
    /// The repository's location (SHOW REPOSITORIES): the index key.
    pub location: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_database: Option<String>,
    /// Backup: `full` or `incremental`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_type: Option<String>,
    /// Restore: the logical snapshot's timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Restore: the native snapshots it reads; incremental backup: the entries it builds on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    pub timeout_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_num: Option<u32>,
    /// Table and MV partitions it moves (an incremental backup: only the changed ones).
    pub partitions: usize,
    /// What the plan was made from (backup: the selected partitions; restore: the targets).
    pub state: Vec<StateRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reused: Vec<Reused>,
    /// Backup: tables the statement named only some partitions of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub native_jobs: usize,
    pub partitions: usize,
    pub bytes: u64,
}

/// A plan for a StarRocks target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativePlan {
    pub format: String,
    pub version: u32,
    pub target: String,
    /// `starrocks://user@host:port` (never a password).
    pub cluster: String,
    pub settings: Settings,
    /// SHA-256 over every unit's state (and, for a restore, its index entry).
    pub fingerprint: String,
    pub units: Vec<Unit>,
    pub summary: Summary,
    pub tasks: Vec<Task>,
}

impl NativePlan {
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a plan serializes");
        s.push('\n');
        s
    }

    /// Reads a plan file: format, unique ids, known dependencies, no cycle, settings in range.
    pub fn from_json(text: &str) -> std::result::Result<NativePlan, String> {
        let p: NativePlan = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if p.format != FORMAT || p.target != TARGET || p.version != VERSION {
            return Err(format!(
                "not a {FORMAT} version {VERSION} plan for {TARGET}"
            ));
        }
        p.settings.check()?;
        if p.fingerprint.len() != 64 || !p.fingerprint.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err("its fingerprint is not a SHA-256 in hex".into());
        }
        let mut ids = BTreeSet::new();
        for t in &p.tasks {
            if !ids.insert(t.id.as_str()) {
                return Err(format!("task {} appears twice", t.id));
            }
            if t.unit >= p.units.len() {
                return Err(format!(
                    "task {} names unit {} of {}",
                    t.id,
                    t.unit,
                    p.units.len()
                ));
            }
        }
        for t in &p.tasks {
            for a in &t.after {
                if !ids.contains(a.as_str()) {
                    return Err(format!("task {} runs after {a}, which is not a task", t.id));
                }
            }
        }
        if let Err(id) = order(&p.tasks) {
            return Err(format!(
                "the tasks depend on each other in a cycle (through {id})"
            ));
        }
        Ok(p)
    }

    /// Whether a plan file is for a StarRocks target (rather than the embedded engine).
    pub fn is_native(text: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| {
                v.get("target")
                    .and_then(|t| t.as_str().map(|t| t == TARGET))
            })
            .unwrap_or(false)
    }
}

/// Tasks in an order that respects `after` (Kahn), or the id of a task in a cycle.
pub fn order(tasks: &[Task]) -> std::result::Result<Vec<usize>, String> {
    let mut graph = petgraph::graph::DiGraph::<usize, ()>::new();
    let nodes: BTreeMap<&str, _> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), graph.add_node(i)))
        .collect();
    for t in tasks {
        for a in &t.after {
            if let Some(from) = nodes.get(a.as_str()) {
                graph.add_edge(*from, nodes[t.id.as_str()], ());
            }
        }
    }
    petgraph::algo::toposort(&graph, None)
        .map(|o| o.into_iter().map(|n| graph[n]).collect())
        .map_err(|c| tasks[graph[c.node_id()]].id.clone())
}

/// The DAG in Graphviz DOT.
pub fn dot(plan: &NativePlan) -> String {
    let mut s = String::from("digraph plan {\n  rankdir=LR;\n  node [shape=box];\n");
    for t in &plan.tasks {
        let what = match (&t.label, &t.table) {
            (Some(l), _) => format!("{:?} {l}", t.kind),
            (None, Some(table)) => format!("{:?} {table}", t.kind),
            _ => format!("{:?}", t.kind),
        };
        s.push_str(&format!(
            "  \"{}\" [label=\"{}\\n{}\"];\n",
            t.id,
            t.id,
            what.replace('"', "'")
        ));
        for a in &t.after {
            s.push_str(&format!("  \"{a}\" -> \"{}\";\n", t.id));
        }
    }
    s.push_str("}\n");
    s
}

/// The plan as a reviewer reads it: every native statement in the order it may run.
pub fn explain(plan: &NativePlan) -> String {
    let mut s = format!(
        "Plan for StarRocks at {} ({} native jobs, {} partitions, {}; batches up to {}, {} databases at a time, {} retries)\n",
        plan.cluster,
        plan.summary.native_jobs,
        plan.summary.partitions,
        crate::output::human_bytes(plan.summary.bytes),
        crate::output::human_bytes(plan.settings.batch_bytes),
        plan.settings.max_databases,
        plan.settings.retries,
    );
    s.push_str(&format!("fingerprint {}\n", plan.fingerprint));
    for (i, u) in plan.units.iter().enumerate() {
        s.push_str(&format!("\n[{i}] {}\n", u.statement.trim()));
        match u.kind {
            JobKind::Backup => s.push_str(&format!(
                "    {} backup of {} into repository {} as logical snapshot {}\n",
                u.backup_type.as_deref().unwrap_or("full"),
                u.database.as_deref().unwrap_or("external catalogs"),
                u.repository,
                u.label
            )),
            JobKind::Restore => s.push_str(&format!(
                "    restore of {}@{} from repository {} into {} (reads {})\n",
                u.label,
                u.timestamp.as_deref().unwrap_or("?"),
                u.repository,
                u.target_database.as_deref().unwrap_or("external catalogs"),
                u.chain.join(", ")
            )),
        }
        for r in &u.reused {
            s.push_str(&format!(
                "    unchanged since {}: {}.{} (version {})\n",
                r.label, r.object, r.partition, r.version
            ));
        }
    }
    s.push('\n');
    if let Ok(order) = order(&plan.tasks) {
        for i in order {
            let t = &plan.tasks[i];
            let after = if t.after.is_empty() {
                String::new()
            } else {
                format!(" (after {})", t.after.join(", "))
            };
            let size = if t.bytes > 0 {
                format!(", {}", crate::output::human_bytes(t.bytes))
            } else {
                String::new()
            };
            s.push_str(&format!("{}{after}{size}\n    {}\n", t.id, t.statement));
        }
    }
    s
}

fn problem(code: Code, span: crate::sql::Span, message: impl Into<String>) -> Error {
    Error::at(crate::sql::Problem::new(code, span, message))
}

fn unknown(what: &str, name: &Ident, place: &str, candidates: &[String]) -> Error {
    crate::plan::backup::unknown(what, name, place, candidates)
}

fn fe_error(e: crate::fe::FeError) -> Error {
    Error::from(e)
}

fn job_options(statement: JobStatement, p: &crate::sql::Properties) -> Result<JobOptions> {
    crate::plan::job_options(statement, p)
}

/// What the planner needs besides the statements.
pub struct Context<'a> {
    pub fe: &'a mut Fe,
    pub index: &'a Index,
    pub settings: Settings,
}

/// Plans statements (BACKUP/RESTORE, one or more) for a StarRocks target.
pub async fn plan(cx: Context<'_>, statements: &[(Statement, String)]) -> Result<NativePlan> {
    cx.settings.check().map_err(|m| Error::invalid(m, None))?;
    if statements.is_empty() {
        return Err(Error::invalid(
            "no BACKUP or RESTORE statement to plan",
            Some("give one or more statements (separated by ;)"),
        ));
    }
    let cluster = cx.fe.url().to_string();
    let mut units = Vec::new();
    let mut tasks = Vec::new();
    for (n, (stmt, text)) in statements.iter().enumerate() {
        let (unit, mut unit_tasks) = match stmt {
            Statement::Backup(b) => plan_backup(cx.fe, cx.index, &cx.settings, b, text, n).await?,
            Statement::Restore(r) => plan_restore(cx.fe, cx.index, r, text, n).await?,
            _ => {
                return Err(Error::invalid(
                    "only BACKUP and RESTORE statements have plans",
                    None,
                ));
            }
        };
        units.push(unit);
        tasks.append(&mut unit_tasks);
    }
    // One job per database at a time: each database's jobs (of every unit) form a chain.
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let catalogs_lane = "\u{0}catalogs".to_string();
    for t in &mut tasks {
        let lane = t.database.clone().unwrap_or_else(|| catalogs_lane.clone());
        if let Some(prev) = last.get(&lane)
            && !t.after.contains(prev)
        {
            t.after.push(prev.clone());
        }
        last.insert(lane, t.id.clone());
    }
    let mut labels = BTreeSet::new();
    for u in &units {
        if u.kind == JobKind::Backup && !labels.insert((u.location.clone(), u.label.clone())) {
            return Err(Error::invalid(
                format!(
                    "two statements back up to snapshot {} in one repository",
                    u.label
                ),
                Some("give each BACKUP its own snapshot label"),
            ));
        }
    }
    // Over every unit whole: its statement, target, the state it was made from, the snapshots
    // it reads (two restores of one snapshot into two databases are two runs).
    let mut f = Sha256::new();
    f.update(serde_json::to_vec(&units).unwrap_or_default());
    let summary = Summary {
        native_jobs: tasks
            .iter()
            .filter(|t| {
                !matches!(
                    t.kind,
                    TaskKind::Swap | TaskKind::Rename | TaskKind::DropTemp
                )
            })
            .count(),
        partitions: units.iter().map(|u| u.partitions).sum(),
        bytes: tasks.iter().map(|t| t.bytes).sum(),
    };
    Ok(NativePlan {
        format: FORMAT.into(),
        version: VERSION,
        target: TARGET.into(),
        cluster,
        settings: cx.settings,
        fingerprint: hex::encode(f.finalize()),
        units,
        summary,
        tasks,
    })
}

fn check_label(label: &Ident) -> Result<()> {
    let ok = !label.value.is_empty()
        && label.value.len() <= MAX_LABEL
        && label
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !label.value.contains("__");
    if ok {
        Ok(())
    } else {
        Err(Error::at(
            crate::sql::Problem::new(
                Code::PlanLabel,
                label.span,
                format!(
                    "snapshot label {} cannot be used on a StarRocks target",
                    label.value
                ),
            )
            .help(format!(
                "use letters, digits and single underscores, at most {MAX_LABEL} characters: \
                 srbackup appends __b<k> (batch) and __r<n> (retry) to it"
            )),
        ))
    }
}

async fn repository(fe: &mut Fe, name: &Ident) -> Result<fec::Repository> {
    fec::repository(fe, &name.value)
        .await
        .map_err(fe_error)?
        .ok_or_else(|| {
            problem(
                Code::PlanUnknown,
                name.span,
                format!(
                    "Repository {} does not exist on the StarRocks cluster",
                    name.value
                ),
            )
        })
}

fn index_error(e: String) -> Error {
    Error::invalid(format!("srbackup's index: {e}"), None)
}

/// Every partition of every selected object, in a fixed order.
struct Selected<'a> {
    object: &'a fec::Object,
    /// The partitions named, or all.
    partitions: Vec<&'a fec::Partition>,
    partial: bool,
}

async fn plan_backup(
    fe: &mut Fe,
    index: &Index,
    settings: &Settings,
    b: &Backup,
    text: &str,
    unit: usize,
) -> Result<(Unit, Vec<Task>)> {
    let options = job_options(JobStatement::Backup, &b.properties)?;
    check_label(&b.snapshot)?;
    let repo = repository(fe, &b.repository).await?;
    if repo.read_only {
        return Err(problem(
            Code::PlanReadOnly,
            b.repository.span,
            format!("Repository {} is read only", repo.name),
        ));
    }
    let incremental = options.backup_type == Some(BackupType::Incremental);
    let label = b.snapshot.value.clone();
    if !index
        .entries(&repo.location, &label)
        .map_err(index_error)?
        .is_empty()
    {
        return Err(problem(
            Code::PlanTargetTaken,
            b.snapshot.span,
            format!("Snapshot with name '{label}' already exist in repository"),
        ));
    }
    // StarRocks' own labels: a failed or cancelled earlier run of this label left batches
    // behind (StarRocks keeps a label taken); a job srbackup later cannot see would be mistaken
    // for this run's.
    let labels = fec::snapshot_labels(fe, &repo.name)
        .await
        .map_err(fe_error)?;
    let batch_prefix = format!("{label}__b");
    if let Some(taken) = labels
        .keys()
        .find(|l| **l == label || l.starts_with(&batch_prefix))
    {
        return Err(problem(
            Code::PlanTargetTaken,
            b.snapshot.span,
            format!(
                "Snapshot with name '{label}' already exist in repository (StarRocks snapshot {taken})"
            ),
        )
        .into_help("give the backup another label (an earlier run of this one left snapshots behind; `srbackup starrocks-repo … expire` removes them)"));
    }
    let timeout = options.timeout_seconds.max(600);
    let mut tasks = Vec::new();
    let mut state = Vec::new();
    let mut reused = Vec::new();
    let mut chain = BTreeSet::new();
    let label_k = |k: usize| format!("{label}__b{k}");

    if let Some(selection) = &b.external_catalogs {
        let existing = fec::external_catalogs(fe).await.map_err(fe_error)?;
        let names: Vec<String> = match selection {
            CatalogSelection::All => existing.clone(),
            CatalogSelection::Named(cs) => {
                let mut v = Vec::new();
                for c in cs {
                    if !existing.contains(&c.name.value) {
                        return Err(unknown(
                            "external catalog",
                            &c.name,
                            "the cluster",
                            &existing,
                        ));
                    }
                    v.push(c.name.value.clone());
                }
                v
            }
        };
        if names.is_empty() {
            return Err(Error::invalid(
                "the cluster has no external catalog to back up",
                None,
            ));
        }
        for c in &names {
            state.push(StateRow {
                database: String::new(),
                object: c.clone(),
                partition: String::new(),
                id: 0,
                version: -1,
                bytes: 0,
                schema: String::new(),
            });
        }
        let l = label_k(1);
        tasks.push(Task {
            id: format!("u{unit}-catalogs"),
            kind: TaskKind::BackupCatalogs,
            unit,
            database: None,
            label: Some(l.clone()),
            statement: jobs::backup_catalogs(&l, &repo.name, &names),
            items: Vec::new(),
            catalogs: names,
            bytes: 0,
            table: None,
            temp: None,
            after: Vec::new(),
        });
        let u = Unit {
            kind: JobKind::Backup,
            partitions: 0,
            statement: text.to_string(),
            repository: repo.name,
            location: repo.location,
            label,
            database: None,
            target_database: None,
            backup_type: Some("full".into()),
            timestamp: None,
            chain: Vec::new(),
            timeout_seconds: timeout,
            replication_num: None,
            state,
            reused,
            partial: Vec::new(),
        };
        return Ok((u, tasks));
    }

    let db_ident = b.database.as_ref().ok_or_else(|| {
        problem(
            Code::PlanNoDatabase,
            b.span,
            "BACKUP names no database".to_string(),
        )
    })?;
    let db_name = &db_ident.value;
    let databases = fec::databases(fe).await.map_err(fe_error)?;
    let Some(db) = fec::database(fe, db_name).await.map_err(fe_error)? else {
        return Err(unknown("database", db_ident, "the cluster", &databases));
    };
    // What the statement selects.
    let mut selected: Vec<Selected> = Vec::new();
    let mut functions: Vec<String> = Vec::new();
    let names_of = |kind: ObjectKind| -> Vec<String> {
        db.objects
            .values()
            .filter(|o| o.kind == kind)
            .map(|o| o.name.clone())
            .collect()
    };
    let place = format!("database {db_name}");
    if b.on.is_empty() {
        for o in db.objects.values() {
            selected.push(Selected {
                object: o,
                partitions: o.partitions.iter().collect(),
                partial: false,
            });
        }
        functions = db.functions.clone();
    } else {
        for r in &b.on {
            match r {
                ObjectRef::Table {
                    name, partitions, ..
                } => {
                    let o = db
                        .object(&name.name.value)
                        .filter(|o| o.kind != ObjectKind::View)
                        .ok_or_else(|| {
                            unknown("table", &name.name, &place, &names_of(ObjectKind::Table))
                        })?;
                    let mut ps = Vec::new();
                    for p in partitions {
                        let found =
                            o.partitions
                                .iter()
                                .find(|x| x.name == p.value)
                                .ok_or_else(|| {
                                    problem(
                                        Code::PlanUnknown,
                                        p.span,
                                        format!(
                                            "partition[{}] does not exist  in table<{}>",
                                            p.value, o.name
                                        ),
                                    )
                                })?;
                        ps.push(found);
                    }
                    let partial = !ps.is_empty();
                    if ps.is_empty() {
                        ps = o.partitions.iter().collect();
                    }
                    selected.push(Selected {
                        object: o,
                        partitions: ps,
                        partial,
                    });
                }
                ObjectRef::MaterializedView { name, .. } | ObjectRef::View { name, .. } => {
                    let kind = if matches!(r, ObjectRef::View { .. }) {
                        ObjectKind::View
                    } else {
                        ObjectKind::MaterializedView
                    };
                    let o = db
                        .object(&name.name.value)
                        .filter(|o| o.kind == kind)
                        .ok_or_else(|| {
                            unknown(
                                if kind == ObjectKind::View {
                                    "view"
                                } else {
                                    "materialized view"
                                },
                                &name.name,
                                &place,
                                &names_of(kind),
                            )
                        })?;
                    selected.push(Selected {
                        object: o,
                        partitions: o.partitions.iter().collect(),
                        partial: false,
                    });
                }
                ObjectRef::Function { name, .. } => {
                    if !db.functions.contains(&name.name.value) {
                        return Err(unknown("function", &name.name, &place, &db.functions));
                    }
                    functions.push(name.name.value.clone());
                }
                ObjectRef::All { of, .. } => match of {
                    crate::sql::ObjectKind::Functions => functions.extend(db.functions.clone()),
                    other => {
                        let kind = match other {
                            crate::sql::ObjectKind::Tables => ObjectKind::Table,
                            crate::sql::ObjectKind::Views => ObjectKind::View,
                            _ => ObjectKind::MaterializedView,
                        };
                        for o in db.objects.values().filter(|o| o.kind == kind) {
                            selected.push(Selected {
                                object: o,
                                partitions: o.partitions.iter().collect(),
                                partial: false,
                            });
                        }
                    }
                },
            }
        }
    }
    selected.sort_by(|a, b| a.object.name.cmp(&b.object.name));
    selected.dedup_by(|a, b| a.object.name == b.object.name);
    functions.sort();
    functions.dedup();
    if selected.is_empty() && functions.is_empty() {
        return Err(problem(
            Code::PlanEmpty,
            b.span,
            format!("database {db_name} has nothing to back up"),
        ));
    }
    for s in &selected {
        if s.partitions.iter().any(|p| p.temp) {
            return Err(Error::invalid(
                format!(
                    "table {}.{} has temporary partitions: Do not support backing up table with temp partitions",
                    db_name, s.object.name
                ),
                Some("replace or drop the temporary partitions first (SHOW TEMPORARY PARTITIONS)"),
            ));
        }
        // The object's own row: its table id and definition (a drop and re-create, or a
        // schema change, makes the plan stale).
        state.push(StateRow {
            database: db_name.clone(),
            object: s.object.name.clone(),
            partition: String::new(),
            id: s.object.table_id,
            version: -1,
            bytes: 0,
            schema: s.object.schema.clone(),
        });
        for p in s.partitions.iter().filter(|p| !p.temp) {
            state.push(StateRow {
                database: db_name.clone(),
                object: s.object.name.clone(),
                partition: p.name.clone(),
                id: p.id,
                version: p.version,
                bytes: p.bytes,
                schema: String::new(),
            });
        }
    }
    for f in &functions {
        state.push(StateRow {
            database: db_name.clone(),
            object: format!("function {f}"),
            partition: String::new(),
            id: 0,
            version: -1,
            bytes: 0,
            schema: String::new(),
        });
    }

    // Incremental: a table partition whose version the newest earlier entry of this database
    // recorded is not sent again; the new entry points at where it already is.
    let mut previous: BTreeMap<(String, String), Previous> = BTreeMap::new();
    let cluster = fe.url().address();
    if incremental {
        for e in index.all(&repo.location).map_err(index_error)? {
            // Partition ids mean something only on the cluster that gave them.
            if e.database.as_deref() != Some(db_name.as_str()) || e.cluster != cluster {
                continue;
            }
            // Newer entries overwrite older ones (all() is oldest first).
            for (name, o) in &e.objects {
                if o.kind != ItemKind::Table {
                    continue;
                }
                // Drop what an older entry said of this table: the newest entry is the truth.
                previous.retain(|(t, _), _| t != name);
                for (p, ip) in &o.partitions {
                    previous.insert(
                        (name.clone(), p.clone()),
                        (
                            (ip.id, ip.version),
                            ip.held.clone(),
                            format!("{}@{}", e.label, e.timestamp),
                            o.schema.clone(),
                        ),
                    );
                }
            }
        }
        if previous.is_empty() {
            return Err(problem(
                Code::PlanIncremental,
                b.span,
                format!(
                    "no earlier srbackup backup of database {db_name} in repository {} (through {cluster}) to build an incremental backup on",
                    repo.name
                ),
            )
            .into_help("take a full backup first (\"type\" = \"full\")"));
        }
    }
    // A partition is reused only when its id and version, its table's definition and the
    // native snapshot holding it are all as recorded, and no restore rewrote the table since.
    let reusable = |table: &fec::Object, p: &fec::Partition| -> Option<&Previous> {
        let prev = previous.get(&(table.name.clone(), p.name.clone()))?;
        let held_there = labels
            .get(&prev.1.label)
            .is_some_and(|ts| ts.contains(&prev.1.timestamp));
        (prev.0 == (p.id, p.version)
            && prev.3 == table.schema
            && !table.schema.is_empty()
            && held_there
            && !index.rewritten(&cluster, db_name, &table.name))
        .then_some(prev)
    };

    // Batches: table partitions in name order, greedily up to batch_bytes; a table that fits
    // whole in one batch is named without PARTITION.
    struct Batch {
        items: Vec<Item>,
        bytes: u64,
    }
    let mut batches: Vec<Batch> = Vec::new();
    let mut current = Batch {
        items: Vec::new(),
        bytes: 0,
    };
    for s in selected
        .iter()
        .filter(|s| s.object.kind == ObjectKind::Table)
    {
        // A table without partitions (automatic partitioning, nothing loaded yet) is still
        // backed up: its definition.
        if s.object.partitions.is_empty() {
            current.items.push(Item {
                kind: ItemKind::Table,
                name: s.object.name.clone(),
                partitions: Vec::new(),
                alias: None,
            });
            continue;
        }
        let mut send: Vec<&fec::Partition> = Vec::new();
        for p in &s.partitions {
            if let Some((_, held, from, _)) = reusable(s.object, p) {
                reused.push(Reused {
                    object: s.object.name.clone(),
                    partition: p.name.clone(),
                    id: p.id,
                    version: p.version,
                    bytes: p.bytes,
                    label: held.label.clone(),
                    timestamp: held.timestamp.clone(),
                });
                chain.insert(from.clone());
                continue;
            }
            send.push(p);
        }
        if send.is_empty() {
            continue;
        }
        let total: u64 = send.iter().map(|p| p.bytes).sum();
        let whole = !s.partial && send.len() == s.object.partitions.len();
        if whole && total <= settings.batch_bytes {
            if current.bytes + total > settings.batch_bytes && !current.items.is_empty() {
                batches.push(std::mem::replace(
                    &mut current,
                    Batch {
                        items: Vec::new(),
                        bytes: 0,
                    },
                ));
            }
            current.items.push(Item {
                kind: ItemKind::Table,
                name: s.object.name.clone(),
                partitions: Vec::new(),
                alias: None,
            });
            current.bytes += total;
            continue;
        }
        let mut names: Vec<String> = Vec::new();
        for p in send {
            if current.bytes > 0 && current.bytes + p.bytes > settings.batch_bytes {
                if !names.is_empty() {
                    current.items.push(Item {
                        kind: ItemKind::Table,
                        name: s.object.name.clone(),
                        partitions: std::mem::take(&mut names),
                        alias: None,
                    });
                }
                batches.push(std::mem::replace(
                    &mut current,
                    Batch {
                        items: Vec::new(),
                        bytes: 0,
                    },
                ));
            }
            names.push(p.name.clone());
            current.bytes += p.bytes;
        }
        if !names.is_empty() {
            current.items.push(Item {
                kind: ItemKind::Table,
                name: s.object.name.clone(),
                partitions: names,
                alias: None,
            });
        }
    }
    if !current.items.is_empty() {
        batches.push(current);
    }
    // Views, MVs and functions: one last job (MVs are sent whole).
    let mut meta = Batch {
        items: Vec::new(),
        bytes: 0,
    };
    for s in selected
        .iter()
        .filter(|s| s.object.kind != ObjectKind::Table)
    {
        meta.bytes += s.partitions.iter().map(|p| p.bytes).sum::<u64>();
        meta.items.push(Item {
            kind: s.object.kind.into(),
            name: s.object.name.clone(),
            partitions: Vec::new(),
            alias: None,
        });
    }
    for f in &functions {
        meta.items.push(Item {
            kind: ItemKind::Function,
            name: f.clone(),
            partitions: Vec::new(),
            alias: None,
        });
    }
    if !meta.items.is_empty() {
        batches.push(meta);
    }
    for (k, batch) in batches.into_iter().enumerate() {
        let l = label_k(k + 1);
        tasks.push(Task {
            id: format!("u{unit}-{db_name}-b{}", k + 1),
            kind: TaskKind::Backup,
            unit,
            database: Some(db_name.clone()),
            label: Some(l.clone()),
            statement: jobs::backup(db_name, &l, &repo.name, &batch.items, timeout),
            items: batch.items,
            catalogs: Vec::new(),
            bytes: batch.bytes,
            table: None,
            temp: None,
            after: Vec::new(),
        });
    }
    let u = Unit {
        kind: JobKind::Backup,
        partitions: state.iter().filter(|s| !s.partition.is_empty()).count() - reused.len(),
        statement: text.to_string(),
        repository: repo.name,
        location: repo.location,
        label,
        database: Some(db_name.clone()),
        target_database: None,
        backup_type: Some(if incremental { "incremental" } else { "full" }.into()),
        timestamp: None,
        chain: chain.into_iter().rev().collect(),
        timeout_seconds: timeout,
        replication_num: None,
        state,
        reused,
        partial: selected
            .iter()
            .filter(|s| s.partial)
            .map(|s| s.object.name.clone())
            .collect(),
    };
    Ok((u, tasks))
}

/// Where an earlier backup left a partition: (its id and version then, the native snapshot
/// holding it, the logical snapshot `label@timestamp` that recorded it, its table's schema hash).
type Previous = ((i64, i64), Held, String, String);

trait IntoHelp {
    fn into_help(self, help: &str) -> Error;
}

impl IntoHelp for Error {
    fn into_help(self, help: &str) -> Error {
        match self {
            Error::At(p) => Error::at(p.help(help)),
            other => other,
        }
    }
}

/// The temporary name a restored table lands under before it is swapped or renamed in:
/// derived from the snapshot and the target, so a resumed run finds it again.
pub fn temp_name(label: &str, timestamp: &str, db: &str, table: &str) -> String {
    let h = Sha256::digest(format!("{label}\0{timestamp}\0{db}\0{table}").as_bytes());
    format!("{TEMP_PREFIX}{}", hex::encode(&h[..8]))
}

/// Replicas for restored tables: the statement's, else as many as there are alive backends, at
/// most 3 (StarRocks' own default of 3 fails on smaller clusters).
async fn replication(fe: &mut Fe, options: &JobOptions) -> Result<u32> {
    if let Some(n) = options.replication_num {
        return Ok(n);
    }
    let sql = "SHOW BACKENDS";
    // SHOW BACKENDS needs OPERATE (or cluster_admin); without it the statement must say.
    let rows = fe.query(sql).await.map_err(|e| match e {
        crate::fe::FeError::Refused { message, .. } => Error::invalid(
            format!("cannot count the cluster's backends to choose replication_num ({message})"),
            Some("add PROPERTIES (\"replication_num\" = \"N\") to the RESTORE"),
        ),
        other => fe_error(other),
    })?;
    let mut alive = 0u32;
    for i in 0..rows.len() {
        if rows
            .get(i, "Alive")
            .is_none_or(|a| a.eq_ignore_ascii_case("true"))
        {
            alive += 1;
        }
    }
    Ok(alive.clamp(1, 3))
}

async fn plan_restore(
    fe: &mut Fe,
    index: &Index,
    r: &Restore,
    text: &str,
    unit: usize,
) -> Result<(Unit, Vec<Task>)> {
    let options = job_options(JobStatement::Restore, &r.properties)?;
    let repo = repository(fe, &r.repository).await?;
    let label = r.snapshot.value.clone();
    let entries = index.entries(&repo.location, &label).map_err(index_error)?;
    let entry: Entry = match &options.backup_timestamp {
        Some(ts) => entries.into_iter().find(|e| &e.timestamp == ts),
        None => entries.into_iter().last(),
    }
    .ok_or_else(|| {
        problem(
            Code::PlanNoSnapshot,
            r.snapshot.span,
            format!(
                "srbackup's index has no snapshot {label}{} in repository {}",
                options
                    .backup_timestamp
                    .as_ref()
                    .map(|t| format!(" at {t}"))
                    .unwrap_or_default(),
                repo.name
            ),
        )
        .into_help("srbackup restores the logical snapshots it took (its index, in the state directory); a snapshot StarRocks took by itself is restored with StarRocks' own RESTORE")
    })?;
    // Every native snapshot it needs must still be there.
    for h in &entry.native {
        let ts = fec::snapshot_timestamps(fe, &repo.name, &h.label)
            .await
            .map_err(fe_error)?;
        if !ts.contains(&h.timestamp) {
            return Err(Error::invalid(
                format!(
                    "snapshot {label} needs StarRocks snapshot {} at {}, which repository {} no longer has (SHOW SNAPSHOT)",
                    h.label, h.timestamp, repo.name
                ),
                Some("restore another snapshot; this one cannot be restored whole"),
            ));
        }
    }
    let timeout = options.timeout_seconds.max(600);
    let timestamp = entry.timestamp.clone();
    let mut tasks: Vec<Task> = Vec::new();
    let mut state = Vec::new();
    let chain: Vec<String> = entry
        .native
        .iter()
        .map(|h| format!("{}@{}", h.label, h.timestamp))
        .collect();

    if let Some(selection) = &r.external_catalogs {
        let picked: Vec<(String, Option<String>)> = match selection {
            CatalogSelection::All => entry.catalogs.keys().map(|c| (c.clone(), None)).collect(),
            CatalogSelection::Named(cs) => {
                let mut v = Vec::new();
                let have: Vec<String> = entry.catalogs.keys().cloned().collect();
                for c in cs {
                    if !entry.catalogs.contains_key(&c.name.value) {
                        return Err(unknown(
                            "external catalog",
                            &c.name,
                            &format!("snapshot {label}"),
                            &have,
                        ));
                    }
                    v.push((
                        c.name.value.clone(),
                        c.alias.as_ref().map(|a| a.value.clone()),
                    ));
                }
                v
            }
        };
        if picked.is_empty() {
            return Err(Error::invalid(
                format!("snapshot {label} holds no external catalog"),
                None,
            ));
        }
        let mut by_native: BTreeMap<Held, Vec<(String, Option<String>)>> = BTreeMap::new();
        for (c, a) in picked {
            by_native
                .entry(entry.catalogs[&c].clone())
                .or_default()
                .push((c, a));
        }
        for (k, (h, cs)) in by_native.into_iter().enumerate() {
            let cs: Vec<(String, Option<String>)> = cs;
            tasks.push(Task {
                id: format!("u{unit}-catalogs-r{}", k + 1),
                kind: TaskKind::RestoreCatalogs,
                unit,
                database: None,
                label: Some(h.label.clone()),
                statement: jobs::restore_catalogs(&h.label, &repo.name, &cs, &h.timestamp),
                items: Vec::new(),
                catalogs: cs
                    .iter()
                    .map(|(c, a)| a.clone().unwrap_or_else(|| c.clone()))
                    .collect(),
                bytes: 0,
                table: None,
                temp: None,
                after: Vec::new(),
            });
        }
        let u = Unit {
            kind: JobKind::Restore,
            partitions: 0,
            statement: text.to_string(),
            repository: repo.name,
            location: repo.location,
            label,
            database: None,
            target_database: None,
            backup_type: None,
            timestamp: Some(timestamp),
            chain,
            timeout_seconds: timeout,
            replication_num: None,
            state,
            reused: Vec::new(),
            partial: Vec::new(),
        };
        return Ok((u, tasks));
    }

    let (src_db, target_db) = match &r.database {
        Some(d) => (
            d.name.value.clone(),
            d.alias
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_else(|| d.name.value.clone()),
        ),
        None => {
            return Err(problem(
                Code::PlanNoDatabase,
                r.span,
                "RESTORE names no database",
            ));
        }
    };
    if entry.database.as_deref() != Some(src_db.as_str()) {
        return Err(problem(
            Code::PlanOtherDatabase,
            r.database.as_ref().map(|d| d.name.span).unwrap_or(r.span),
            format!(
                "snapshot {label} holds database {}, not {src_db}",
                entry
                    .database
                    .as_deref()
                    .unwrap_or("(external catalogs only)")
            ),
        ));
    }
    let replication_num = replication(fe, &options).await?;
    let target = fec::database(fe, &target_db).await.map_err(fe_error)?;
    let place = format!("snapshot {label}");
    let have = |kind: ItemKind| -> Vec<String> {
        entry
            .objects
            .iter()
            .filter(|(_, o)| o.kind == kind)
            .map(|(n, _)| n.clone())
            .collect()
    };
    // (object in the snapshot, target name, partitions named)
    let mut picked: Vec<(String, String, Vec<String>)> = Vec::new();
    let pick_all = |kind: Option<ItemKind>, picked: &mut Vec<(String, String, Vec<String>)>| {
        for (n, o) in &entry.objects {
            if kind.is_none_or(|k| k == o.kind) {
                picked.push((n.clone(), n.clone(), Vec::new()));
            }
        }
    };
    if r.on.is_empty() {
        pick_all(None, &mut picked);
    }
    for o in &r.on {
        match o {
            ObjectRef::Table {
                name,
                partitions,
                alias,
            } => {
                let e = entry
                    .objects
                    .get(&name.name.value)
                    .filter(|e| e.kind == ItemKind::Table)
                    .ok_or_else(|| unknown("table", &name.name, &place, &have(ItemKind::Table)))?;
                for p in partitions {
                    if !e.partitions.contains_key(&p.value) {
                        return Err(problem(
                            Code::PlanUnknown,
                            p.span,
                            format!(
                                "Partition {} of table {} does not exist in snapshot {label}",
                                p.value, name.name.value
                            ),
                        ));
                    }
                }
                picked.push((
                    name.name.value.clone(),
                    alias
                        .as_ref()
                        .map(|a| a.value.clone())
                        .unwrap_or_else(|| name.name.value.clone()),
                    partitions.iter().map(|p| p.value.clone()).collect(),
                ));
            }
            ObjectRef::MaterializedView { name, alias }
            | ObjectRef::View { name, alias }
            | ObjectRef::Function { name, alias } => {
                let (kind, what) = match o {
                    ObjectRef::View { .. } => (ItemKind::View, "view"),
                    ObjectRef::Function { .. } => (ItemKind::Function, "function"),
                    _ => (ItemKind::MaterializedView, "materialized view"),
                };
                if entry
                    .objects
                    .get(&name.name.value)
                    .is_none_or(|e| e.kind != kind)
                {
                    return Err(unknown(what, &name.name, &place, &have(kind)));
                }
                picked.push((
                    name.name.value.clone(),
                    alias
                        .as_ref()
                        .map(|a| a.value.clone())
                        .unwrap_or_else(|| name.name.value.clone()),
                    Vec::new(),
                ));
            }
            ObjectRef::All { of, .. } => pick_all(
                Some(match of {
                    crate::sql::ObjectKind::Tables => ItemKind::Table,
                    crate::sql::ObjectKind::Views => ItemKind::View,
                    crate::sql::ObjectKind::MaterializedViews => ItemKind::MaterializedView,
                    crate::sql::ObjectKind::Functions => ItemKind::Function,
                }),
                &mut picked,
            ),
        }
    }
    picked.sort();
    picked.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let mut targets = BTreeSet::new();
    for (_, t, _) in &picked {
        if !targets.insert(t.as_str()) {
            return Err(problem(
                Code::OnDuplicateTarget,
                r.span,
                format!("Duplicated alias name: {t} (two objects would be restored as it)"),
            ));
        }
    }
    if picked.is_empty() {
        return Err(problem(
            Code::PlanEmpty,
            r.span,
            format!("snapshot {label} holds nothing to restore"),
        ));
    }
    // The targets as they are now (the plan's state: a change before apply makes it stale).
    let existing = |name: &str| target.as_ref().and_then(|d| d.object(name));
    for (_, t, _) in &picked {
        if let Some(o) = existing(t) {
            if o.partitions.is_empty() {
                state.push(StateRow {
                    database: target_db.clone(),
                    object: t.clone(),
                    partition: String::new(),
                    id: 0,
                    version: -1,
                    bytes: 0,
                    schema: String::new(),
                });
            }
            for p in &o.partitions {
                state.push(StateRow {
                    database: target_db.clone(),
                    object: t.clone(),
                    partition: p.name.clone(),
                    id: p.id,
                    version: p.version,
                    bytes: p.bytes,
                    schema: String::new(),
                });
            }
        }
    }
    state.sort();

    // Native RESTORE jobs, one per native snapshot, tables first (into temporary tables), then
    // views, MVs and functions once the tables are in place.
    let mut table_jobs: BTreeMap<Held, Vec<Item>> = BTreeMap::new();
    let mut meta_jobs: BTreeMap<Held, Vec<Item>> = BTreeMap::new();
    let mut bytes_of: BTreeMap<Held, u64> = BTreeMap::new();
    let mut finish: Vec<Task> = Vec::new();
    let mut drops: Vec<Task> = Vec::new();
    let mut moved = 0;
    for (src, tgt, parts) in &picked {
        let e = &entry.objects[src];
        if e.kind != ItemKind::Table {
            let h = e
                .held
                .clone()
                .or_else(|| e.partitions.values().next().map(|p| p.held.clone()))
                .ok_or_else(|| {
                    Error::invalid(
                        format!("srbackup's index entry of {label} says nowhere where {src} is"),
                        None,
                    )
                })?;
            if let Some(o) = existing(tgt) {
                let want: ObjectKind = match e.kind {
                    ItemKind::View => ObjectKind::View,
                    ItemKind::MaterializedView => ObjectKind::MaterializedView,
                    _ => o.kind,
                };
                if o.kind != want {
                    return Err(Error::invalid(
                        format!(
                            "{target_db}.{tgt} exists and is a {:?}, not a {:?}",
                            o.kind, e.kind
                        ),
                        None,
                    ));
                }
            }
            meta_jobs.entry(h).or_default().push(Item {
                kind: e.kind,
                name: src.clone(),
                partitions: Vec::new(),
                alias: (tgt != src).then(|| tgt.clone()),
            });
            continue;
        }
        let whole = parts.is_empty() && !e.partial;
        let chosen: Vec<(&String, &crate::fe::index::IndexPartition)> = e
            .partitions
            .iter()
            .filter(|(p, _)| parts.is_empty() || parts.contains(p))
            .collect();
        let live = existing(tgt);
        if let Some(o) = live
            && o.kind != ObjectKind::Table
        {
            return Err(Error::invalid(
                format!("{target_db}.{tgt} exists and is not a table"),
                None,
            ));
        }
        let landing = if whole {
            let tmp = temp_name(&label, &timestamp, &target_db, tgt);
            // What the temporary table must hold before it goes live: exactly the partitions
            // restored (the executor checks, so a table made under its name is never adopted).
            let expected = vec![Item {
                kind: ItemKind::Table,
                name: tmp.clone(),
                partitions: chosen.iter().map(|(p, _)| (*p).clone()).collect(),
                alias: None,
            }];
            if existing(&tmp).is_some() {
                return Err(Error::invalid(
                    format!(
                        "{target_db}.{tmp} exists: an earlier restore of {tgt} was interrupted"
                    ),
                    Some(
                        "`srbackup resume` finishes or cleans up that run; or DROP TABLE it after checking it is not needed",
                    ),
                ));
            }
            let db_q = quote(&target_db);
            if live.is_some() {
                finish.push(Task {
                    id: format!("u{unit}-{target_db}-swap-{tgt}"),
                    kind: TaskKind::Swap,
                    unit,
                    database: Some(target_db.clone()),
                    label: None,
                    statement: format!(
                        "ALTER TABLE {db_q}.{} SWAP WITH {}",
                        quote(tgt),
                        quote(&tmp)
                    ),
                    items: expected.clone(),
                    catalogs: Vec::new(),
                    bytes: 0,
                    table: Some(tgt.clone()),
                    temp: Some(tmp.clone()),
                    after: Vec::new(),
                });
                drops.push(Task {
                    id: format!("u{unit}-{target_db}-drop-{tgt}"),
                    kind: TaskKind::DropTemp,
                    unit,
                    database: Some(target_db.clone()),
                    label: None,
                    statement: format!("DROP TABLE IF EXISTS {db_q}.{}", quote(&tmp)),
                    items: Vec::new(),
                    catalogs: Vec::new(),
                    bytes: 0,
                    table: Some(tgt.clone()),
                    temp: Some(tmp.clone()),
                    after: Vec::new(),
                });
            } else {
                finish.push(Task {
                    id: format!("u{unit}-{target_db}-rename-{tgt}"),
                    kind: TaskKind::Rename,
                    unit,
                    database: Some(target_db.clone()),
                    label: None,
                    statement: format!("ALTER TABLE {db_q}.{} RENAME {}", quote(&tmp), quote(tgt)),
                    items: expected,
                    catalogs: Vec::new(),
                    bytes: 0,
                    table: Some(tgt.clone()),
                    temp: Some(tmp.clone()),
                    after: Vec::new(),
                });
            }
            tmp
        } else {
            tgt.clone()
        };
        let mut per_native: BTreeMap<Held, Vec<String>> = BTreeMap::new();
        for (p, ip) in &chosen {
            per_native
                .entry(ip.held.clone())
                .or_default()
                .push((*p).clone());
            *bytes_of.entry(ip.held.clone()).or_default() += ip.bytes;
        }
        moved += chosen.len();
        // The whole table without a PARTITION list only when that one native snapshot holds
        // exactly these partitions: a full backup's (an increment's reused snapshot may hold
        // partitions dropped since).
        let all_in_one = per_native.len() == 1 && parts.is_empty() && entry.chain.is_empty();
        if e.partitions.is_empty()
            && let Some(h) = &e.held
        {
            // A table without partitions: its definition.
            table_jobs.entry(h.clone()).or_default().push(Item {
                kind: ItemKind::Table,
                name: src.clone(),
                partitions: Vec::new(),
                alias: (&landing != src).then(|| landing.clone()),
            });
        }
        for (h, ps) in per_native {
            table_jobs.entry(h).or_default().push(Item {
                kind: ItemKind::Table,
                name: src.clone(),
                partitions: if all_in_one && !e.partial {
                    Vec::new()
                } else {
                    ps
                },
                alias: (&landing != src).then(|| landing.clone()),
            });
        }
    }
    let mut k = 0;
    let mut push_job = |tasks: &mut Vec<Task>, h: &Held, items: Vec<Item>, bytes: u64| {
        k += 1;
        tasks.push(Task {
            id: format!("u{unit}-{target_db}-r{k}"),
            kind: TaskKind::Restore,
            unit,
            database: Some(target_db.clone()),
            label: Some(h.label.clone()),
            statement: jobs::restore(
                &h.label,
                &repo.name,
                &src_db,
                &target_db,
                &items,
                &h.timestamp,
                replication_num,
                timeout,
            ),
            items,
            catalogs: Vec::new(),
            bytes,
            table: None,
            temp: None,
            after: Vec::new(),
        });
    };
    for (h, items) in table_jobs {
        let bytes = bytes_of.get(&h).copied().unwrap_or(0);
        push_job(&mut tasks, &h, items, bytes);
    }
    tasks.extend(finish);
    for (h, items) in meta_jobs {
        push_job(&mut tasks, &h, items, 0);
    }
    tasks.extend(drops);
    let u = Unit {
        kind: JobKind::Restore,
        partitions: moved,
        statement: text.to_string(),
        repository: repo.name,
        location: repo.location,
        label,
        database: Some(src_db),
        target_database: Some(target_db),
        backup_type: None,
        timestamp: Some(timestamp),
        chain,
        timeout_seconds: timeout,
        replication_num: Some(replication_num),
        state,
        reused: Vec::new(),
        partial: Vec::new(),
    };
    Ok((u, tasks))
}

/// What differs between a plan file and the plan re-derived now, in words: the partitions whose
/// version changed (a stale plan), or else the first differing line (an edited one).
pub fn difference(file: &NativePlan, now: &NativePlan) -> Option<String> {
    if file == now {
        return None;
    }
    // Stale first: what the cluster (or srbackup's index) says now differs from what the plan
    // was made from. Otherwise the file itself was edited.
    let mut changes = Vec::new();
    let key = |s: &StateRow| (s.database.clone(), s.object.clone(), s.partition.clone());
    for (a, b) in file.units.iter().zip(&now.units) {
        let before: BTreeMap<_, _> = a.state.iter().map(|s| (key(s), s)).collect();
        let after: BTreeMap<_, _> = b.state.iter().map(|s| (key(s), s)).collect();
        for (k, v) in &before {
            let what = format!("{}.{} {}", k.0, k.1, k.2);
            match after.get(k) {
                Some(w) if w == v => {}
                Some(w) if w.version != v.version => {
                    changes.push(format!("{what} version {} → {}", v.version, w.version))
                }
                Some(_) => changes.push(format!("{what} was re-created or redefined")),
                None => changes.push(format!("{what} is gone")),
            }
        }
        for k in after.keys().filter(|k| !before.contains_key(*k)) {
            changes.push(format!("{}.{} {} is new", k.0, k.1, k.2));
        }
        if a.reused != b.reused || a.chain != b.chain || a.timestamp != b.timestamp {
            changes.push("srbackup's index changed".into());
        }
    }
    if !changes.is_empty() {
        changes.truncate(10);
        return Some(format!(
            "the plan is stale: the cluster changed since it was made ({})",
            changes.join("; ")
        ));
    }
    let (a, b) = (file.to_json(), now.to_json());
    let line = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or(a.lines().count().min(b.lines().count()));
    Some(format!(
        "the plan file differs from the plan of its statements at line {} (edited after review?)",
        line + 1
    ))
}
