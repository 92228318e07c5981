//! The executor: runs a saved plan as a job.
//!
//! A job is a row in the catalog (StarRocks' states, progress, errors) plus a journal of its
//! finished tasks. The scheduler walks the plan's DAG: file transfers run on worker tasks with
//! a bounded number per kind (the cluster's worker settings); everything that touches the
//! catalog (pin, stage, ingest, commit, views, functions) runs on the coordinator, each step in
//! one catalog transaction **together with its journal entry**, so after a crash a step is
//! either done and journaled or not done at all. `resume` re-runs a job from its journal:
//! finished uploads are not sent again (and an unjournaled upload finds its object already
//! stored), finished downloads are not fetched again.
//!
//! Restores are atomic: data lands in hidden staged objects and one transaction publishes all
//! of them; a failure, a cancel or a kill before that leaves the existing data as it was.

pub mod drill;
pub mod jobs;
pub mod journal;
pub mod native;
pub mod progress;
pub mod target;
mod tasks;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::task::JoinSet;

use crate::catalog::{self, Claim, Held, JobKind, JobState, JobStatus, NewJob};
use crate::config::Settings;
use crate::engine::{Engine, maintenance};
use crate::error::{Error, Result};
use crate::plan::graph::TaskGraph;
use crate::plan::{Action, Plan};
use crate::process::Process;
use crate::repo::gc::{LEASE_REFRESH, Lease, LeaseKind};
use crate::repo::registry::{self, lease_holder};
use crate::repo::{Manifest, RepoError, Repository};
use crate::sql::{Ident, Statement};
use journal::{Entry, Journal};
use progress::Progress;

/// The pseudo-database whose lock external-catalog-only jobs take.
pub const EXTERNAL_CATALOGS: &str = "__external_catalogs__";

/// How a job ended. Every count is of what happened, not what was planned: a stopped job's
/// summary says what it moved before it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub job_id: i64,
    pub kind: JobKind,
    pub label: String,
    /// Tables, MVs, views, functions and external catalogs the job covers.
    pub objects: u64,
    /// FINISHED or CANCELLED.
    pub state: JobState,
    /// Why it was cancelled or failed.
    pub message: Option<String>,
    pub timestamp: Option<String>,
    /// The files (and bytes) the plan transfers.
    pub files: u64,
    pub bytes: u64,
    /// Files this run moved (uploaded, or downloaded and verified).
    pub files_sent: u64,
    pub bytes_sent: u64,
    /// Backup: files this run found already in the repository (nothing sent).
    pub files_skipped: u64,
    pub bytes_skipped: u64,
    /// Files an earlier, interrupted run of the job had already transferred.
    pub files_resumed: u64,
    pub bytes_resumed: u64,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.state == JobState::Finished
    }

    /// The closing summary line.
    pub fn summary(&self) -> String {
        let h = crate::output::human_bytes;
        let secs = self.elapsed.as_secs_f64().max(0.001);
        let stopped = if self.succeeded() {
            ""
        } else {
            " before it stopped"
        };
        let moved = match self.kind {
            JobKind::Backup => format!(
                "{} of {} files ({}) sent, {} files ({}) already in the repository{stopped}",
                self.files_sent,
                self.files,
                h(self.bytes_sent),
                self.files_skipped,
                h(self.bytes_skipped),
            ),
            JobKind::Restore => format!(
                "{} of {} files ({}) downloaded and verified{stopped}",
                self.files_sent,
                self.files,
                h(self.bytes_sent),
            ),
        };
        // The rate is of bytes that moved.
        let mut s = format!(
            "{} {} (job {}) {}: {} objects; {moved}; {:.1} s, {}/s",
            self.kind.keyword(),
            self.label,
            self.job_id,
            self.state,
            self.objects,
            secs,
            h((self.bytes_sent as f64 / secs) as u64)
        );
        if self.files_resumed > 0 {
            s.push_str(&format!(
                "; {} files ({}) were done before the resume",
                self.files_resumed,
                h(self.bytes_resumed)
            ));
        }
        if let Some(ts) = &self.timestamp {
            s.push_str(&format!("; snapshot timestamp {ts}"));
        }
        if let Some(m) = &self.message {
            s.push_str(&format!("; {m}"));
        }
        s
    }
}

/// Why a running job stops.
#[derive(Debug)]
enum Stop {
    Cancelled(String),
    Failed(String),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e.to_string())
    }
}

impl From<crate::engine::EngineError> for Stop {
    fn from(e: crate::engine::EngineError) -> Stop {
        Stop::Failed(e.to_string())
    }
}

impl From<RepoError> for Stop {
    fn from(e: RepoError) -> Stop {
        Stop::Failed(e.to_string())
    }
}

impl From<catalog::CatalogError> for Stop {
    fn from(e: catalog::CatalogError) -> Stop {
        Stop::Failed(e.to_string())
    }
}

/// The lock name of a plan's job.
pub fn lock_name(plan: &Plan) -> String {
    plan.target_database
        .clone()
        .or_else(|| plan.database.clone())
        .unwrap_or_else(|| EXTERNAL_CATALOGS.to_string())
}

/// The timestamp a new snapshot gets: now, in UTC, unless a fixed one is given (the CLI's
/// `SRBACKUP_SNAPSHOT_TIME`, for reproducible examples and for running the spec's RESTOREs
/// with the timestamps they carry).
pub fn snapshot_timestamp(label: &str, fixed: Option<&str>) -> Result<String> {
    match fixed {
        Some(t) => crate::repo::SnapshotId::new(label, t)
            .map(|id| id.timestamp)
            .map_err(|e| Error::invalid(format!("snapshot time: {e}"), None)),
        None => crate::repo::SnapshotId::now(label)
            .map(|id| id.timestamp)
            .map_err(|e| Error::invalid(e.to_string(), None)),
    }
}

/// How a job is started.
#[derive(Clone, Copy, Default)]
pub struct StartOptions<'a> {
    /// A fixed snapshot timestamp for a backup (`yyyy-MM-dd-HH-mm-ss-SSS`).
    pub snapshot_time: Option<&'a str>,
    /// Who submits the job (`'user'@'host'`; empty: a command on this machine, root).
    pub owner: &'a str,
}

/// Runs a saved plan as a new job, in the foreground.
///
/// The plan is the contract both ways: its statement is planned again against the cluster
/// (and the repository) as they are now, and the file must equal that plan in everything but
/// presentation (white space, key order, the human-readable sizes) and the advisory "already
/// in the repository" marks. A stale plan (the catalog or snapshot moved) and an edited one
/// (a task removed, added or retargeted) are both refused; what runs is the re-derived plan,
/// which is exactly what was reviewed.
pub async fn apply(
    engine: &mut Engine,
    plan: &Plan,
    progress: &dyn Progress,
    options: StartOptions<'_>,
) -> Result<Outcome> {
    let statement = crate::sql::parse_one(&plan.statement).map_err(|e| {
        Error::invalid(
            format!("the plan's statement does not parse: {}", e.render_plain()),
            None,
        )
    })?;
    let current = crate::plan::plan(engine, &statement, &plan.statement).await?;
    if current.fingerprint != plan.fingerprint {
        return Err(Error::invalid(
            format!(
                "the plan is stale or edited: its fingerprint is not the one the catalog (and the snapshot) give now; the catalog changed since it was made, or the file was changed (fingerprint {} now, {} in the plan)",
                short(&current.fingerprint),
                short(&plan.fingerprint)
            ),
            Some("re-plan: run `srbackup plan` again and review the new plan"),
        ));
    }
    if let Some(difference) = plan_difference(plan, &current) {
        return Err(Error::invalid(
            format!(
                "the plan file is not the plan of its statement: {difference}; it was edited, or made by another srbackup"
            ),
            Some(
                "run `srbackup plan` again and review the new plan; a plan runs only as srbackup made it",
            ),
        ));
    }
    start(engine, &current, progress, options).await
}

/// The first place where a plan file differs from the plan of its statement, ignoring what a
/// reviewer cannot change the run with (presentation, advisory marks). Compared as typed
/// plans first (cheap at a million files); only a difference is looked for in JSON.
fn plan_difference(file: &Plan, derived: &Plan) -> Option<String> {
    fn without_advice(p: &Plan) -> Plan {
        let mut p = p.clone();
        p.summary.already_in_repository = 0;
        p.summary.already_in_repository_size = crate::plan::Size(0);
        for t in &mut p.tasks {
            if let Action::Uploads { files, .. } = &mut t.action {
                for f in files {
                    f.in_repository = false;
                }
            }
        }
        p
    }
    fn first(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first(p, q, &format!("{at}.{k}")),
                    (Some(_), None) => Some(format!("{at}.{k} is not in the derived plan")),
                    (None, Some(_)) => Some(format!("{at}.{k} is missing from the file")),
                    (None, None) => None,
                })
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    // Tasks and objects are named: say which one.
                    let name = p
                        .get("id")
                        .or_else(|| p.get("name"))
                        .and_then(|n| n.as_str())
                        .map(|n| format!("[{n}]"))
                        .unwrap_or_else(|| format!("[{i}]"));
                    if let Some(d) = first(p, q, &format!("{at}{name}")) {
                        return Some(d);
                    }
                }
                (x.len() != y.len()).then(|| {
                    format!(
                        "{at} has {} entries in the file, {} in the derived plan",
                        x.len(),
                        y.len()
                    )
                })
            }
            _ if a == b => None,
            _ => Some(format!("{at} is {a} in the file, {b} in the derived plan")),
        }
    }
    let (a, b) = (without_advice(file), without_advice(derived));
    if a == b {
        return None;
    }
    let found = match (serde_json::to_value(&a), serde_json::to_value(&b)) {
        (Ok(x), Ok(y)) => first(&x, &y, "plan"),
        _ => None,
    };
    Some(found.unwrap_or_else(|| "they differ".to_string()))
}

/// Plans and runs a statement in one step (what `srbackup sql "BACKUP ..."` does).
pub async fn run_statement(
    engine: &mut Engine,
    statement: &Statement,
    text: &str,
    progress: &dyn Progress,
    options: StartOptions<'_>,
) -> Result<Outcome> {
    let plan = crate::plan::plan(engine, statement, text).await?;
    start(engine, &plan, progress, options).await
}

/// A fingerprint as messages show it: whole (two that differ in one digit must not look alike).
fn short(fingerprint: &str) -> &str {
    fingerprint.trim_start_matches("sha256:")
}

async fn start(
    engine: &mut Engine,
    plan: &Plan,
    progress: &dyn Progress,
    options: StartOptions<'_>,
) -> Result<Outcome> {
    let job_id = accept(engine, plan, options)?;
    run_job(engine, job_id, progress).await
}

/// Plans a statement and accepts it as a PENDING job without running it (what the server
/// does before it answers, as StarRocks does); [`run_job`] runs it, from any connection.
pub async fn submit(
    engine: &mut Engine,
    statement: &Statement,
    text: &str,
    options: StartOptions<'_>,
) -> Result<i64> {
    let plan = crate::plan::plan(engine, statement, text).await?;
    accept(engine, &plan, options)
}

/// Records the job as PENDING, holding its database (one job per database, as StarRocks) and,
/// for a restore, every name it will create or replace, in one catalog transaction. The holds
/// last until the transaction that ends the job, whichever process that is.
fn accept(engine: &mut Engine, plan: &Plan, options: StartOptions<'_>) -> Result<i64> {
    let db = lock_name(plan);
    let timestamp = match plan.kind {
        JobKind::Backup => Some(snapshot_timestamp(
            &plan.snapshot.label,
            options.snapshot_time,
        )?),
        JobKind::Restore => plan.snapshot.timestamp.clone(),
    };
    let targets: Vec<String> = match plan.kind {
        JobKind::Backup => Vec::new(),
        JobKind::Restore => plan
            .objects
            .iter()
            .map(|o| o.target.clone().unwrap_or_else(|| o.name.clone()))
            .chain(plan.tasks.iter().filter_map(|t| match &t.action {
                Action::CreateFunction { target, .. } => {
                    Some(crate::engine::guard::function_target(target))
                }
                Action::CreateCatalog { target, .. } => {
                    Some(crate::engine::guard::catalog_target(target))
                }
                _ => None,
            }))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let plan_json = plan.to_json();
    let accepted = engine.catalog().write(|tx| {
        tx.accept_job(
            &NewJob {
                kind: plan.kind,
                label: &plan.snapshot.label,
                db_name: &db,
                plan: &plan_json,
                snapshot_timestamp: timestamp.as_deref(),
                timeout_seconds: i64::try_from(plan.options.timeout_seconds).unwrap_or(i64::MAX),
                process: Process::current(),
                owner: options.owner,
            },
            &targets,
        )
    })?;
    accepted.map_err(|held| held_error(&db, held))
}

/// Why a job cannot start: what holds its database or one of its names, and what to do.
fn held_error(db: &str, held: Held) -> Error {
    let (job, what) = match held {
        Held::Database(job) => (job, format!("database {db}")),
        Held::Name { name, job } => (job, format!("{db}.{name}")),
    };
    let running = format!("{} job {} ({})", job.kind.keyword(), job.id, job.label);
    if job.process.is_alive() {
        // StarRocks' words for the one-job-per-database rule.
        Error::invalid(
            format!(
                "Can only run one backup or restore job of a database at same time: {what} is held by {running}, {}",
                job.state
            ),
            Some(&format!(
                "wait for it (SHOW {} FROM {db}) or stop it with CANCEL {} FROM {db}",
                job.kind.keyword(),
                job.kind.keyword()
            )),
        )
    } else {
        Error::invalid(
            format!(
                "{what} is held by {running}, interrupted in state {} when its process died",
                job.state
            ),
            Some(&format!(
                "finish it with `srbackup resume {}` or undo it with CANCEL {} FROM {db}; until then no other BACKUP or RESTORE runs on {db}",
                job.id,
                job.kind.keyword()
            )),
        )
    }
}

/// Jobs whose process died before they ended.
pub fn interrupted(engine: &mut Engine) -> Result<Vec<catalog::JobRow>> {
    Ok(engine
        .catalog()
        .view()
        .unfinished_jobs()?
        .into_iter()
        .filter(|j| !j.process.is_alive())
        .collect())
}

/// Resumes interrupted jobs (all of them, or one), each from its journal.
pub async fn resume(
    engine: &mut Engine,
    job_id: Option<i64>,
    progress: &dyn Progress,
) -> Result<Vec<Outcome>> {
    let ids: Vec<i64> = match job_id {
        None => interrupted(engine)?.into_iter().map(|j| j.id).collect(),
        Some(id) => vec![id],
    };
    let mut out = Vec::new();
    for id in ids {
        let job = claim(engine, id)?;
        progress.note(&format!(
            "resuming job {} ({} {}) from {}",
            job.id,
            job.kind.as_str(),
            job.label,
            job.state
        ));
        out.push(run_claimed(engine, job, progress).await?);
    }
    Ok(out)
}

/// Makes this process the one running job `id` (atomically: of two `resume`s, one wins).
fn claim(engine: &mut Engine, id: i64) -> Result<catalog::JobRow> {
    let me = Process::current();
    match engine.catalog().write(|tx| tx.claim_job(id, me))? {
        Claim::Claimed(job) => Ok(*job),
        Claim::NoSuchJob => Err(Error::invalid(format!("there is no job {id}"), None)),
        Claim::Ended(job) => Err(Error::invalid(
            format!("job {id} already ended ({})", job.state),
            None,
        )),
        Claim::Running(job) => Err(Error::invalid(
            format!(
                "job {id} is running in process {} (state {})",
                job.process.pid, job.state
            ),
            Some("wait for it, or CANCEL it"),
        )),
    }
}

/// Runs (or resumes) job `job_id` to its end.
/// Feature `faults` only (tests of the StarRocks target, where `srbackup serve` plays the FE):
/// `SRBACKUP_FAIL_NTH_BACKUP=2,5` (or `…_RESTORE`) makes the 2nd and 5th job of that kind this
/// process runs end CANCELLED with an error, as a StarRocks job whose backends failed.
#[cfg(feature = "faults")]
fn injected_job_failure(kind: JobKind) -> Result<()> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static BACKUPS: AtomicU32 = AtomicU32::new(0);
    static RESTORES: AtomicU32 = AtomicU32::new(0);
    let (counter, var) = match kind {
        JobKind::Backup => (&BACKUPS, "SRBACKUP_FAIL_NTH_BACKUP"),
        JobKind::Restore => (&RESTORES, "SRBACKUP_FAIL_NTH_RESTORE"),
    };
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    let hit = std::env::var(var)
        .ok()
        .is_some_and(|v| v.split(',').any(|x| x.trim().parse() == Ok(n)));
    if hit {
        return Err(Error::invalid(
            format!("injected failure of {} job {n} ({var})", kind.keyword()),
            None,
        ));
    }
    Ok(())
}

pub async fn run_job(engine: &mut Engine, job_id: i64, progress: &dyn Progress) -> Result<Outcome> {
    let job = claim(engine, job_id)?;
    run_claimed(engine, job, progress).await
}

async fn run_claimed(
    engine: &mut Engine,
    job: catalog::JobRow,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let job_id = job.id;
    let plan = Plan::from_json(&job.plan)
        .map_err(|e| Error::invalid(format!("job {job_id}: {e}"), None))?;
    // A journal that does not decode stops here, before anything is resumed or undone: the
    // error names the job and the task; CANCEL ends such a job.
    let journal = Journal::decode(job_id, &plan, &engine.catalog().view().journal(job_id)?)
        .map_err(|e| Error::invalid(e.to_string(), Some("CANCEL the job to end it")))?;
    // A job that cannot even start (its repository was dropped, the settings file is wrong)
    // ends as CANCELLED with the reason, and lets go of its database.
    let setup = (|| -> Result<(Repository, Settings)> {
        #[cfg(feature = "faults")]
        injected_job_failure(plan.kind)?;
        let settings = Settings::load(engine.root())?;
        let repository = registry::open(engine.catalog(), &Ident::new(&plan.repository.name))?
            .with_rate_limits(
                settings.max_upload_speed_kbps,
                settings.max_download_speed_kbps,
            );
        // The repository the plan named, not another one given its name since.
        if repository.location != plan.repository.location {
            return Err(Error::invalid(
                format!(
                    "repository {} is at {} now, not at {} as when the job was planned",
                    plan.repository.name, repository.location, plan.repository.location
                ),
                Some("plan the job again"),
            ));
        }
        Ok((repository, settings))
    })();
    let (repository, settings) = match setup {
        Ok(x) => x,
        Err(e) => {
            let mut message = e.to_string();
            if let Err(undo) = tasks::undo(engine, job_id, &plan, &journal) {
                message = format!("{message}; {undo}");
            }
            engine.catalog().write(|tx| {
                tx.finish_job(
                    job_id,
                    JobState::Cancelled,
                    JobStatus::Failed,
                    Some(&message),
                )
            })?;
            return Err(e);
        }
    };
    let created = chrono::NaiveDateTime::parse_from_str(&job.created_at, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .unwrap_or_else(|_| chrono::Utc::now());
    let deadline = chrono::Duration::try_seconds(job.timeout)
        .and_then(|d| created.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let mut runner = Runner {
        engine,
        job: job.clone(),
        plan: Arc::new(plan),
        repo: repository,
        settings,
        journal,
        manifest: None,
        manifest_files: HashMap::new(),
        staged_tablets: HashMap::new(),
        legacy_ids: std::sync::OnceLock::new(),
        lease: None,
        progress,
        deadline,
        started: Instant::now(),
        stats: Stats::default(),
    };
    let result = runner.execute().await;
    let outcome = match result {
        Ok(()) => {
            runner
                .engine
                .catalog()
                .write(|tx| tx.finish_job(job_id, JobState::Finished, JobStatus::Ok, None))?;
            runner.outcome(JobState::Finished, None)
        }
        Err(stop) => {
            let (status, message) = match &stop {
                Stop::Cancelled(m) => (JobStatus::Cancelled, m.clone()),
                Stop::Failed(m) => (JobStatus::Failed, m.clone()),
            };
            // If undoing fails (the catalog is unreachable), say so: the job's own error alone
            // would hide that staged objects or a restoring flag were left behind.
            let message = match runner.clean_up().await {
                Ok(()) => message,
                Err(e) => format!("{message}; {e}"),
            };
            runner
                .engine
                .catalog()
                .write(|tx| tx.finish_job(job_id, JobState::Cancelled, status, Some(&message)))?;
            runner.outcome(JobState::Cancelled, Some(message))
        }
    };
    if let Some(lease) = runner.lease.take() {
        let _ = runner.repo.release(lease).await;
    }
    // Files of staged objects an undone restore dropped, and of a pin's retired rowsets.
    let _ = maintenance::collect_retired(runner.engine);
    progress.finish();
    Ok(outcome)
}

/// Ends an interrupted job whose process died, from another process (CANCEL on a dead job):
/// undoes what a cancel undoes, from the journal. A journal entry that does not decode does not
/// keep the job alive: the job ends with what could not be undone named in its message.
pub async fn cancel_interrupted(engine: &mut Engine, job: &catalog::JobRow) -> Result<()> {
    let job = claim(engine, job.id)?;
    let (undo_result, damage) = match Plan::from_json(&job.plan) {
        Ok(plan) => {
            let (journal, damage) =
                Journal::decode_partial(job.id, &plan, &engine.catalog().view().journal(job.id)?);
            (tasks::undo(engine, job.id, &plan, &journal), damage)
        }
        Err(e) => (
            Err(format!(
                "its plan does not decode ({e}); nothing was undone"
            )),
            Vec::new(),
        ),
    };
    let mut message = "cancelled after its process died".to_string();
    if let Err(e) = &undo_result {
        message.push_str(&format!("; {e}"));
    }
    for d in &damage {
        message.push_str(&format!("; {d} (not undone)"));
    }
    let failed = undo_result.is_err() || !damage.is_empty();
    engine.catalog().write(|tx| {
        tx.finish_job(
            job.id,
            JobState::Cancelled,
            if failed {
                JobStatus::Failed
            } else {
                JobStatus::Cancelled
            },
            Some(&message),
        )
    })?;
    let _ = maintenance::collect_retired(engine);
    Ok(())
}

#[derive(Default)]
struct Stats {
    files: u64,
    bytes: u64,
    files_sent: u64,
    bytes_sent: u64,
    files_skipped: u64,
    bytes_skipped: u64,
    files_resumed: u64,
    bytes_resumed: u64,
}

/// What a finished transfer hands back to the coordinator.
type TransferResult = (usize, std::result::Result<Entry, RepoError>);

struct Runner<'e> {
    engine: &'e mut Engine,
    job: catalog::JobRow,
    plan: Arc<Plan>,
    repo: Repository,
    settings: Settings,
    /// Finished tasks and what they left.
    journal: Journal,
    /// Restore: the snapshot's manifest.
    manifest: Option<Arc<Manifest>>,
    /// Restore: where each file is in the manifest's list, by SHA-256 (each download looks its
    /// file up).
    manifest_files: HashMap<crate::plan::Digest, usize>,
    /// Restore: each staged object's tablet ids by (partition, bucket), read once.
    staged_tablets: HashMap<i64, HashMap<(String, i64), i64>>,
    /// The ids version 2 plans gave each file, when a resume needs them.
    legacy_ids: std::sync::OnceLock<HashMap<(usize, usize), String>>,
    lease: Option<Lease>,
    progress: &'e dyn Progress,
    deadline: chrono::DateTime<chrono::Utc>,
    started: Instant,
    stats: Stats,
}

impl Runner<'_> {
    fn outcome(&self, state: JobState, message: Option<String>) -> Outcome {
        Outcome {
            job_id: self.job.id,
            kind: self.plan.kind,
            label: self.plan.snapshot.label.clone(),
            objects: self.plan.summary.objects
                + self.plan.functions.len() as u64
                + self.plan.external_catalogs.len() as u64,
            state,
            message,
            timestamp: self.job.snapshot_timestamp.clone(),
            files: self.stats.files,
            bytes: self.stats.bytes,
            files_sent: self.stats.files_sent,
            bytes_sent: self.stats.bytes_sent,
            files_skipped: self.stats.files_skipped,
            bytes_skipped: self.stats.bytes_skipped,
            files_resumed: self.stats.files_resumed,
            bytes_resumed: self.stats.bytes_resumed,
            elapsed: self.started.elapsed(),
        }
    }

    fn set_state(&mut self, state: JobState) -> std::result::Result<(), Stop> {
        if self.job.state != state {
            self.engine
                .catalog()
                .write(|tx| tx.set_job_state(self.job.id, state))?;
            self.job.state = state;
        }
        Ok(())
    }

    /// Steps the job through the states of `action`'s kind, unless it is in the last one
    /// already: a state is a catalog write, and a job must not make two per file
    /// (`Download`, then `Downloading`, for every download).
    fn enter_states(&mut self, action: &Action) -> std::result::Result<(), Stop> {
        let states = self.state_for(action);
        if states.last().is_some_and(|last| *last != self.job.state) {
            for &s in states {
                self.set_state(s)?;
            }
        }
        Ok(())
    }

    /// The StarRocks state a job is in while running a task of this kind.
    fn state_for(&self, action: &Action) -> &'static [JobState] {
        match action {
            Action::Pin { .. } => &[JobState::Snapshoting],
            Action::Uploads { .. } => &[JobState::UploadSnapshot, JobState::Uploading],
            Action::WriteManifest { .. } => &[JobState::SaveMeta, JobState::UploadInfo],
            Action::CreateDatabase { .. } | Action::Stage { .. } => &[JobState::Snapshoting],
            Action::Downloads { .. } => &[JobState::Download, JobState::Downloading],
            Action::Commit { .. } => &[JobState::Commit, JobState::Committing],
            _ => &[],
        }
    }

    async fn execute(&mut self) -> std::result::Result<(), Stop> {
        let lease_kind = match self.plan.kind {
            JobKind::Backup => LeaseKind::Backup,
            JobKind::Restore => LeaseKind::Restore,
        };
        // The job's size, for its summary however early it stops (a lease it cannot take).
        let (bytes, files) = self.plan.files().fold((0u64, 0u64), |(b, n), (t, f)| {
            (
                b.saturating_add(self.plan.tasks[t].action.file_size(f)),
                n + 1,
            )
        });
        self.stats.files = files;
        self.stats.bytes = bytes;
        self.check_stop()?;
        self.repo.require_format().await?;
        // A GC holds the repository: wait for it (it is short) rather than fail at once.
        let mut waited = 0;
        loop {
            match self.repo.acquire(lease_kind, &lease_holder()).await {
                Ok(l) => {
                    self.lease = Some(l);
                    break;
                }
                Err(RepoError::Busy { reason, .. }) if waited < 30 => {
                    if waited == 0 {
                        self.progress.note(&format!("waiting: {reason}"));
                    }
                    waited += 1;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(RepoError::ReadOnly { .. }) if self.plan.kind == JobKind::Restore => break,
                Err(e) => return Err(e.into()),
            }
        }
        if self.plan.kind == JobKind::Restore {
            let manifest = self.restore_manifest().await?;
            self.manifest_files = manifest
                .files
                .iter()
                .enumerate()
                .filter_map(|(i, f)| Some((crate::plan::Digest::parse(f.sha256.as_str()).ok()?, i)))
                .collect();
            self.manifest = Some(Arc::new(manifest));
        }
        match self.plan.kind {
            JobKind::Backup => self.recheck_uploads().await?,
            JobKind::Restore => self.recheck_downloads().await?,
        }
        let plan = self.plan.clone();
        let tasks = &plan.tasks;
        let graph = TaskGraph::new(tasks).map_err(Stop::Failed)?;
        let units = Units::new(tasks);
        let n = tasks.len();
        // Done: a file by its journal entry; a coordinator task by its own; a transfer group
        // once all its files are.
        let file_done: Vec<bool> = plan
            .files()
            .map(|(t, f)| self.journal.file(t, f).is_some())
            .collect();
        let mut remaining = vec![0usize; n];
        for (u, &finished) in file_done.iter().enumerate() {
            if !finished {
                remaining[units.at(u).0] += 1;
            }
        }
        let mut state = Progressing {
            done: (0..n)
                .map(|i| match tasks[i].action.is_transfer() {
                    true => remaining[i] == 0,
                    false => self.journal.contains(&tasks[i].id),
                })
                .collect(),
            file_done,
            remaining,
            waiting: vec![],
            ready: Ready::default(),
        };
        state.waiting = (0..n)
            .map(|i| graph.dependencies(i).filter(|&d| !state.done[d]).count())
            .collect();
        let startable: Vec<usize> = (0..n)
            .filter(|&i| !state.done[i] && state.waiting[i] == 0)
            .collect();
        for i in startable {
            state.make_ready(i, tasks, &units);
        }
        let (total_bytes, total_files) = (self.stats.bytes, self.stats.files);
        let what = match self.plan.kind {
            JobKind::Backup => "uploading",
            JobKind::Restore => "downloading",
        };
        self.progress.start(what, total_files, total_bytes);
        for (u, (t, f)) in plan.files().enumerate() {
            if state.file_done[u] {
                let size = tasks[t].action.file_size(f);
                self.progress.file_done(size, false);
                self.stats.files_resumed += 1;
                self.stats.bytes_resumed += size;
            }
        }
        let mut running: JoinSet<TransferResult> = JoinSet::new();
        let mut running_by_kind: HashMap<&'static str, usize> = HashMap::new();
        let mut finished: Vec<(usize, Entry)> = Vec::new();
        // The batch being flushed (one at a time, beside the transfers that go on).
        let mut flushing: Option<Flushing> = None;
        // When the oldest transfer not yet in a flush finished.
        let mut oldest: Option<Instant> = None;
        let remote = !self.repo.is_local();
        let mut last_check = Instant::now();
        let mut last_lease = Instant::now();
        self.update_progress(&state)?;
        loop {
            // Start what can start: coordinator tasks at once, in plan order; files in plan
            // order up to their kind's workers. Only what starts is looked at (a job of a
            // million files must not scan its ready files at every turn).
            while let Some(i) = state.ready.inline.pop_first() {
                let action = &tasks[i].action;
                self.enter_states(action)?;
                self.check_stop()?;
                self.run_inline(&tasks[i]).await?;
                state.complete(i, &graph, tasks, &units);
                self.update_progress(&state)?;
            }
            let mut cannot_start = None;
            'start: for (kind, queue) in state.ready.transfers.iter_mut() {
                let limit = self.settings.workers_for(kind, remote);
                while running_by_kind.get(kind).copied().unwrap_or(0) < limit {
                    let Some(u) = queue.pop_front() else { break };
                    let (t, f) = units.at(u);
                    self.enter_states(&tasks[t].action)?;
                    match self.transfer(u, t, f) {
                        Ok(work) => {
                            running.spawn(work);
                            *running_by_kind.entry(kind).or_default() += 1;
                        }
                        Err(stop) => {
                            cannot_start = Some(stop);
                            break 'start;
                        }
                    }
                }
            }
            // A file that cannot start stops the job, after what runs has ended and what
            // finished is journaled (a resume does not redo it).
            if let Some(stop) = cannot_start {
                stop_transfers(&mut running).await;
                self.settle(&units, &mut flushing, &mut finished, &mut state)
                    .await;
                return Err(stop);
            }
            if state.ready.is_empty()
                && running.is_empty()
                && finished.is_empty()
                && flushing.is_none()
            {
                break;
            }
            // Wait for a transfer, a flush, or a tick to look at cancels, timeouts and the lease.
            if !running.is_empty() || flushing.is_some() {
                tokio::select! {
                    flushed = async { (&mut flushing.as_mut().expect("a flush in flight").0).await },
                        if flushing.is_some() =>
                    {
                        let (_, batch) = flushing.take().expect("a flush in flight");
                        if let Err(e) = flushed.map_err(|e| e.to_string()).and_then(|r| r) {
                            stop_transfers(&mut running).await;
                            self.settle(&units, &mut flushing, &mut finished, &mut state).await;
                            return Err(Stop::Failed(format!(
                                "flushing {} finished transfers: {e}",
                                batch.len()
                            )));
                        }
                        self.journal_transfers(&units, &batch)?;
                        for (u, _) in batch {
                            state.file_finished(u, &graph, tasks, &units);
                        }
                    }
                    joined = running.join_next(), if !running.is_empty() => {
                        if let Some(joined) = joined {
                            let (u, result) = joined.map_err(|e| Stop::Failed(format!("a transfer task failed: {e}")))?;
                            let (t, f) = units.at(u);
                            *running_by_kind.entry(tasks[t].action.kind()).or_default() -= 1;
                            match result {
                                Ok(value) => {
                                    let size = tasks[t].action.file_size(f);
                                    let sent = self.count_transfer(size, &value);
                                    self.progress.file_done(size, sent);
                                    finished.push((u, value));
                                }
                                Err(e) => {
                                    stop_transfers(&mut running).await;
                                    self.settle(&units, &mut flushing, &mut finished, &mut state).await;
                                    return Err(Stop::Failed(format!(
                                        "{}: {e}",
                                        units.describe(tasks, u)
                                    )));
                                }
                            }
                        }
                    }
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
            // Finished transfers are flushed in batches (one flush of the filesystem for all of
            // a batch, while the next transfers run), then journaled; their dependents start
            // only once journaled. A batch starts when no flush runs and it is big enough (in
            // files or bytes), old enough, or the last one.
            if finished.is_empty() {
                oldest = None;
            } else {
                let since = *oldest.get_or_insert_with(Instant::now);
                let bytes: u64 = finished
                    .iter()
                    .map(|(u, _)| {
                        let (t, f) = units.at(*u);
                        tasks[t].action.file_size(f)
                    })
                    .sum();
                if flushing.is_none()
                    && (finished.len() >= FLUSH_FILES
                        || bytes >= FLUSH_BYTES
                        || since.elapsed() >= FLUSH_AFTER
                        || running.is_empty())
                {
                    let batch = std::mem::take(&mut finished);
                    oldest = None;
                    flushing = Some((tokio::spawn(self.flush()), batch));
                }
            }
            if last_check.elapsed() >= Duration::from_millis(500) {
                last_check = Instant::now();
                if let Err(stop) = self.check_stop() {
                    stop_transfers(&mut running).await;
                    self.settle(&units, &mut flushing, &mut finished, &mut state)
                        .await;
                    return Err(stop);
                }
                self.update_progress(&state)?;
            }
            if last_lease.elapsed() >= LEASE_REFRESH {
                last_lease = Instant::now();
                if let Err(stop) = self.renew_lease().await {
                    stop_transfers(&mut running).await;
                    self.settle(&units, &mut flushing, &mut finished, &mut state)
                        .await;
                    return Err(stop);
                }
            }
        }
        if let Some(i) = state.done.iter().position(|d| !d) {
            return Err(Stop::Failed(format!("task {} could not run", tasks[i].id)));
        }
        Ok(())
    }

    /// A resumed restore's downloads from before it stopped are read back and hashed: a file
    /// removed or changed in the cluster directory since (it sits in a staged table no one
    /// reads yet) would otherwise go live as it is. One that is gone or damaged leaves its
    /// staged table and its journal entry, and is fetched again. Once the commit is journaled
    /// the files are live, and nothing is checked.
    async fn recheck_downloads(&mut self) -> std::result::Result<(), Stop> {
        let committed = self
            .plan
            .tasks
            .iter()
            .any(|t| matches!(t.action, Action::Commit { .. }) && self.journal.contains(&t.id));
        if committed {
            return Ok(());
        }
        let mut earlier = Vec::new();
        for (&(t, f), entry) in self.journal.files() {
            if let (Some(file), Entry::Download(d)) = (self.plan.tasks[t].action.file(f), entry) {
                let staged = self.staged_id(&file.object)?;
                let path = self.engine.file_path(&d.path);
                earlier.push(((t, f), staged, d.path.clone(), path, file));
            }
        }
        if earlier.is_empty() {
            return Ok(());
        }
        earlier.sort_by_key(|e| e.0);
        let checked: Vec<((usize, usize), i64, String, bool)> = futures::stream::iter(earlier)
            .map(|(at, staged, relative, path, file)| async move {
                let sound = tokio::task::spawn_blocking(move || {
                    crate::hashing::hash_file(&path)
                        .is_ok_and(|(sum, bytes)| sum == file.sha256.hex() && bytes == file.size.0)
                })
                .await
                .unwrap_or(false);
                (at, staged, relative, sound)
            })
            .buffer_unordered(2)
            .collect()
            .await;
        let damaged: Vec<((usize, usize), i64, String)> = checked
            .into_iter()
            .filter(|(_, _, _, sound)| !sound)
            .map(|(at, staged, relative, _)| (at, staged, relative))
            .collect();
        if damaged.is_empty() {
            return Ok(());
        }
        let job_id = self.job.id;
        let keys: Vec<Vec<String>> = damaged
            .iter()
            .map(|((t, f), _, _)| self.journal_keys(*t, *f))
            .collect();
        self.engine.catalog().write(|tx| {
            let mut by_path: HashMap<i64, HashMap<String, i64>> = HashMap::new();
            for ((_, staged, relative), keys) in damaged.iter().zip(&keys) {
                if !by_path.contains_key(staged) {
                    let rows = tx.object_all_rowsets(*staged)?;
                    by_path.insert(*staged, rows.into_iter().map(|r| (r.path, r.id)).collect());
                }
                if let Some(id) = by_path[staged].get(relative) {
                    tx.delete_rowset_row(*id)?;
                }
                for key in keys {
                    tx.forget_task(job_id, key)?;
                }
            }
            Ok(())
        })?;
        for ((t, f), _, relative) in &damaged {
            let _ = std::fs::remove_file(self.engine.file_path(relative));
            self.journal.remove_file(*t, *f);
        }
        self.progress.note(&format!(
            "{} files downloaded before the job stopped were removed or changed since; they are downloaded again",
            damaged.len()
        ));
        Ok(())
    }

    /// The keys a file's journal entry may be stored under: `group#index`, and the id version 2
    /// plans gave the file (a job planned by that version journaled it so).
    fn journal_keys(&self, t: usize, f: usize) -> Vec<String> {
        let mut keys = vec![crate::plan::file_key(&self.plan.tasks[t].id, f)];
        if !self.journal.has_legacy_keys() {
            return keys;
        }
        if let Some(legacy) = self
            .legacy_ids
            .get_or_init(|| {
                let ids = self.plan.legacy_file_ids();
                let mut by_file: HashMap<(usize, usize), String> = HashMap::new();
                for (id, at) in ids {
                    by_file.insert(at, id);
                }
                by_file
            })
            .get(&(t, f))
        {
            keys.push(legacy.clone());
        }
        keys
    }

    /// A resumed backup's uploads from before it stopped are not trusted blindly: while no
    /// process held its lease (it died), a GC may have deleted the objects no snapshot named
    /// yet, or anyone may have damaged them. Each one is checked again as an object found in
    /// the repository is before it is reused (`Repository::stored_object_is_sound`: its
    /// stored size, and read back whole unless a manifest names it unchanged); one that is
    /// gone or damaged runs again. Once the manifest is written the objects are named, and
    /// nothing is checked.
    async fn recheck_uploads(&mut self) -> std::result::Result<(), Stop> {
        let written = self.plan.tasks.iter().any(|t| {
            matches!(t.action, Action::WriteManifest { .. }) && self.journal.contains(&t.id)
        });
        if written {
            return Ok(());
        }
        let mut earlier = Vec::new();
        for (&(t, f), entry) in self.journal.files() {
            if let (Some(file), Entry::Upload(u)) = (self.plan.tasks[t].action.file(f), entry) {
                let hash = crate::repo::format::Sha256::parse(&file.sha256.hex())
                    .map_err(|e| Stop::Failed(e.to_string()))?;
                earlier.push(((t, f), hash, u.encoding, u.stored_bytes, u.bytes));
            }
        }
        if earlier.is_empty() {
            return Ok(());
        }
        earlier.sort_by_key(|e| e.0);
        let repo = &self.repo;
        let found: Vec<((usize, usize), std::result::Result<bool, RepoError>)> =
            futures::stream::iter(earlier)
                .map(|(at, hash, encoding, stored, bytes)| async move {
                    let here = repo
                        .stored_object_is_sound(&hash, encoding, stored, bytes)
                        .await;
                    (at, here)
                })
                .buffer_unordered(16)
                .collect()
                .await;
        let mut gone = Vec::new();
        for (at, here) in found {
            if !here? {
                gone.push(at);
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        let job_id = self.job.id;
        let keys: Vec<String> = gone
            .iter()
            .flat_map(|(t, f)| self.journal_keys(*t, *f))
            .collect();
        self.engine.catalog().write(|tx| {
            for key in &keys {
                tx.forget_task(job_id, key)?;
            }
            Ok(())
        })?;
        for (t, f) in &gone {
            self.journal.remove_file(*t, *f);
        }
        self.progress.note(&format!(
            "{} files uploaded before the job stopped are no longer in the repository, or were damaged since; they are sent again",
            gone.len()
        ));
        Ok(())
    }

    /// A stopping job journals the transfers that finished but were not journaled yet and
    /// records its progress, so that SHOW BACKUP / SHOW RESTORE count what its summary counts
    /// (best effort: the job stops either way).
    /// Before a job stops: the transfers that finished are flushed and journaled (a resume
    /// will not redo them), if the flush succeeds; nothing unflushed is ever journaled.
    async fn settle(
        &mut self,
        units: &Units,
        flushing: &mut Option<Flushing>,
        finished: &mut Vec<(usize, Entry)>,
        state: &mut Progressing,
    ) {
        if let Some((flush, batch)) = flushing.take() {
            finished.extend(batch);
            // The flush in flight is not enough for what finished since: flush again.
            let _ = flush.await;
        }
        if !finished.is_empty()
            && self.flush().await.is_ok()
            && self.journal_transfers(units, finished).is_ok()
        {
            for (u, _) in finished.drain(..) {
                state.file_done[u] = true;
            }
        }
        let _ = self.update_progress(state);
    }

    /// Makes finished transfers durable, before the journal records them: for a backup the
    /// repository's objects (`Repository::flush`), for a restore the downloaded rowset files
    /// (one flush of the cluster's filesystem). One flush serves a whole batch.
    fn flush(&self) -> impl Future<Output = std::result::Result<(), String>> + Send + 'static {
        let repo = self.repo.clone();
        let root = self.engine.root().to_path_buf();
        let kind = self.plan.kind;
        async move {
            // Feature `faults` only: a pause between "written" and "flushed", so that a test
            // can kill the process exactly there.
            #[cfg(feature = "faults")]
            if let Some(ms) = std::env::var("SRBACKUP_PAUSE_BEFORE_FLUSH_MS")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
            {
                eprintln!("pausing {ms} ms before flushing");
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            match kind {
                JobKind::Backup => repo.flush().await.map_err(|e| e.to_string()),
                JobKind::Restore => tokio::task::spawn_blocking(move || {
                    crate::engine::storage::sync_filesystem(&root)
                        .map_err(|e| format!("{}: {e}", root.display()))
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r),
            }
        }
    }

    /// Renews the repository lease; a lost one stops the job (see `Repository::refresh`).
    async fn renew_lease(&mut self) -> std::result::Result<(), Stop> {
        let repo = &self.repo;
        if let Some(lease) = self.lease.as_mut() {
            repo.refresh(lease).await?;
        }
        Ok(())
    }

    fn check_stop(&mut self) -> std::result::Result<(), Stop> {
        if self.engine.catalog().view().cancel_requested(self.job.id)? {
            return Err(Stop::Cancelled(format!(
                "cancelled by CANCEL {}",
                self.plan.kind.keyword()
            )));
        }
        if chrono::Utc::now() > self.deadline {
            return Err(Stop::Cancelled(format!(
                "{} job with label: {} timeout after {} s",
                self.plan.kind.as_str(),
                self.plan.snapshot.label,
                self.job.timeout
            )));
        }
        Ok(())
    }

    /// Records the job's progress: its coordinator tasks and files done, of all.
    fn update_progress(&mut self, state: &Progressing) -> std::result::Result<(), Stop> {
        let (finished, total) = state.counts(&self.plan.tasks);
        let unfinished = (total - finished) as i64;
        let text = format!("{finished}/{total}");
        self.engine
            .catalog()
            .write(|tx| tx.set_job_progress(self.job.id, unfinished, &text))?;
        Ok(())
    }
}

/// A batch of finished transfers is flushed once it holds this many files, …
const FLUSH_FILES: usize = 512;
/// … or this many bytes (so that the disk starts writing early), …
const FLUSH_BYTES: u64 = 256 * 1024 * 1024;
/// … or its oldest transfer finished this long ago (each flush of a filesystem costs the
/// same whatever it holds: small files wait to share one).
const FLUSH_AFTER: Duration = Duration::from_millis(200);
/// How often the run loop looks at cancels, timeouts, the lease and the batch's age when no
/// transfer finishes.
const TICK: Duration = Duration::from_millis(50);

/// What can start: coordinator tasks (in plan order), and files per transfer kind (each kind
/// has its own number of workers), as unit indices in the order their groups became ready.
#[derive(Default)]
struct Ready {
    inline: BTreeSet<usize>,
    transfers: BTreeMap<&'static str, std::collections::VecDeque<usize>>,
}

impl Ready {
    fn is_empty(&self) -> bool {
        self.inline.is_empty() && self.transfers.values().all(|q| q.is_empty())
    }
}

/// The files of a plan numbered 0.. in plan order ("units"): unit `u` is file `u - start[t]`
/// of transfer group `t`. Two numbers per group, nothing per file.
struct Units {
    /// (first unit, task index) of each transfer group, ascending.
    starts: Vec<(usize, usize)>,
}

impl Units {
    fn new(tasks: &[crate::plan::Task]) -> Units {
        let mut starts = Vec::new();
        let mut next = 0;
        for (t, task) in tasks.iter().enumerate() {
            let n = task.action.file_count();
            if task.action.is_transfer() {
                starts.push((next, t));
                next += n;
            }
        }
        Units { starts }
    }

    /// The (task, file) of unit `u`.
    fn at(&self, u: usize) -> (usize, usize) {
        let i = self.starts.partition_point(|(s, _)| *s <= u) - 1;
        let (start, t) = self.starts[i];
        (t, u - start)
    }

    /// The first unit of transfer group `t`.
    fn start(&self, t: usize) -> usize {
        let i = self.starts.partition_point(|(_, task)| *task < t);
        self.starts[i].0
    }

    /// `upload:db.t.p1 file 3 (bucket 2, sha256 ab12…)`, for messages.
    fn describe(&self, tasks: &[crate::plan::Task], u: usize) -> String {
        let (t, f) = self.at(u);
        match tasks[t].action.file(f) {
            Some(file) => format!(
                "{} file {f} (bucket {}, sha256 {})",
                tasks[t].id,
                file.bucket,
                &file.sha256.hex()[..16]
            ),
            None => tasks[t].id.clone(),
        }
    }
}

/// Where a job stands: which tasks and files are done, what each task waits for, and what can
/// start.
struct Progressing {
    done: Vec<bool>,
    /// By unit.
    file_done: Vec<bool>,
    /// Files of each transfer group not done yet.
    remaining: Vec<usize>,
    /// Unfinished dependencies of each task.
    waiting: Vec<usize>,
    ready: Ready,
}

impl Progressing {
    /// Task `i` can start: a coordinator task is queued; a transfer group queues its files
    /// not done yet (and is done at once if it has none).
    fn make_ready(&mut self, i: usize, tasks: &[crate::plan::Task], units: &Units) {
        let action = &tasks[i].action;
        if !action.is_transfer() {
            self.ready.inline.insert(i);
            return;
        }
        let start = units.start(i);
        let queue = self.ready.transfers.entry(action.kind()).or_default();
        queue.extend((start..start + action.file_count()).filter(|&u| !self.file_done[u]));
    }

    /// Task `i` is done: its dependents that wait for nothing else can start.
    fn complete(
        &mut self,
        i: usize,
        graph: &TaskGraph,
        tasks: &[crate::plan::Task],
        units: &Units,
    ) {
        self.done[i] = true;
        let mut now = vec![];
        for d in graph.dependents(i) {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 && !self.done[d] {
                now.push(d);
            }
        }
        for d in now {
            if tasks[d].action.is_transfer() && self.remaining[d] == 0 {
                self.complete(d, graph, tasks, units);
            } else {
                self.make_ready(d, tasks, units);
            }
        }
    }

    /// A file is journaled; its group is done with its last file.
    fn file_finished(
        &mut self,
        u: usize,
        graph: &TaskGraph,
        tasks: &[crate::plan::Task],
        units: &Units,
    ) {
        if self.file_done[u] {
            return;
        }
        self.file_done[u] = true;
        let (t, _) = units.at(u);
        self.remaining[t] -= 1;
        if self.remaining[t] == 0 {
            self.complete(t, graph, tasks, units);
        }
    }

    /// (done, all): coordinator tasks and files.
    fn counts(&self, tasks: &[crate::plan::Task]) -> (usize, usize) {
        let inline = tasks.iter().filter(|t| !t.action.is_transfer()).count();
        let inline_done = tasks
            .iter()
            .zip(&self.done)
            .filter(|(t, d)| **d && !t.action.is_transfer())
            .count();
        let files_done = self.file_done.iter().filter(|d| **d).count();
        (inline_done + files_done, inline + self.file_done.len())
    }
}

/// A flush in flight and the finished transfers it makes durable.
type Flushing = (
    tokio::task::JoinHandle<std::result::Result<(), String>>,
    Vec<(usize, Entry)>,
);

/// Stops the transfers still running and waits until each has ended, so that a job undone
/// next finds every file they wrote (a blocking copy they started removes its own file when
/// it ends later: see `repo::transfer`'s `Landing`).
async fn stop_transfers(running: &mut JoinSet<TransferResult>) {
    running.abort_all();
    while running.join_next().await.is_some() {}
}
