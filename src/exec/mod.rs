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

pub mod jobs;
pub mod journal;
pub mod progress;
mod tasks;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::catalog::{self, JobKind, JobState, JobStatus, NewJob};
use crate::config::Settings;
use crate::engine::{Engine, maintenance};
use crate::error::{Error, Result};
use crate::plan::graph::TaskGraph;
use crate::plan::{Action, Plan};
use crate::repo::gc::{LEASE_REFRESH, Lease, LeaseKind};
use crate::repo::registry::{self, lease_holder};
use crate::repo::{Manifest, RepoError, Repository};
use crate::sql::{Ident, Statement};
use journal::{Entry, Journal};
use progress::Progress;

/// The pseudo-database whose lock external-catalog-only jobs take.
pub const EXTERNAL_CATALOGS: &str = "__external_catalogs__";

/// How a job ended.
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
    pub files: u64,
    pub bytes: u64,
    /// Files transferred by this run (a backup skips what the repository already holds).
    pub files_sent: u64,
    pub bytes_sent: u64,
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
        let what = match self.kind {
            JobKind::Backup => "BACKUP",
            JobKind::Restore => "RESTORE",
        };
        let moved = match self.kind {
            // What a stopped job did not send is neither sent nor in the repository.
            JobKind::Backup if !self.succeeded() => format!(
                "{} files ({}) sent before it stopped",
                self.files_sent,
                h(self.bytes_sent)
            ),
            JobKind::Backup => format!(
                "{} files ({}) sent, {} files ({}) already in the repository",
                self.files_sent,
                h(self.bytes_sent),
                self.files - self.files_sent - self.files_resumed,
                h(self.bytes - self.bytes_sent - self.bytes_resumed)
            ),
            JobKind::Restore => format!(
                "{} files ({}) downloaded and verified",
                self.files,
                h(self.bytes)
            ),
        };
        let mut s = format!(
            "{what} {} (job {}) {}: {} objects; {moved}; {:.1} s, {}/s",
            self.label,
            self.job_id,
            self.state,
            self.objects,
            secs,
            h((self.bytes_sent.max(if self.kind == JobKind::Restore {
                self.bytes
            } else {
                0
            }) as f64
                / secs) as u64)
        );
        if self.files_resumed > 0 {
            s.push_str(&format!(
                "; {} files were done before the resume",
                self.files_resumed
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
}

/// Runs a saved plan as a new job, in the foreground. Refuses a stale plan.
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
                "the plan is stale: the catalog (or the snapshot) changed since it was made ({} now, {} in the plan)",
                short(&current.fingerprint),
                short(&plan.fingerprint)
            ),
            Some("re-plan: run `srbackup plan` again and review the new plan"),
        ));
    }
    start(engine, plan, progress, options).await
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

fn short(fingerprint: &str) -> &str {
    let hex = fingerprint.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
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

/// Takes the job's database (one job per database) and records the job as PENDING.
fn accept(engine: &mut Engine, plan: &Plan, options: StartOptions<'_>) -> Result<i64> {
    let lock = lock_name(plan);
    let job_name = format!("{} {}", plan.kind.as_str(), plan.snapshot.label);
    let timestamp = match plan.kind {
        JobKind::Backup => Some(snapshot_timestamp(
            &plan.snapshot.label,
            options.snapshot_time,
        )?),
        JobKind::Restore => plan.snapshot.timestamp.clone(),
    };
    maintenance::lock_database(engine, &lock, &job_name)?;
    let plan_json = plan.to_json();
    let created = engine.catalog().write(|tx| {
        tx.insert_job(&NewJob {
            kind: plan.kind,
            label: &plan.snapshot.label,
            db_name: &lock,
            plan: &plan_json,
            snapshot_timestamp: timestamp.as_deref(),
            timeout_seconds: i64::try_from(plan.options.timeout_seconds).unwrap_or(i64::MAX),
            pid: std::process::id(),
        })
    });
    match created {
        Ok(id) => Ok(id),
        Err(e) => {
            let _ = maintenance::unlock_database(engine, &lock, &job_name);
            Err(e.into())
        }
    }
}

/// Jobs whose process died before they ended.
pub fn interrupted(engine: &mut Engine) -> Result<Vec<catalog::JobRow>> {
    Ok(engine
        .catalog()
        .view()
        .unfinished_jobs()?
        .into_iter()
        .filter(|j| j.pid != std::process::id() && !maintenance::process_alive(j.pid))
        .collect())
}

/// Resumes interrupted jobs (all of them, or one), each from its journal.
pub async fn resume(
    engine: &mut Engine,
    job_id: Option<i64>,
    progress: &dyn Progress,
) -> Result<Vec<Outcome>> {
    let candidates = interrupted(engine)?;
    let chosen: Vec<catalog::JobRow> = match job_id {
        None => candidates,
        Some(id) => match candidates.into_iter().find(|j| j.id == id) {
            Some(j) => vec![j],
            None => {
                let job = engine.catalog().view().job(id)?;
                return Err(Error::invalid(
                    match job {
                        None => format!("there is no job {id}"),
                        Some(j) if j.finished => format!("job {id} already ended ({})", j.state),
                        Some(j) => format!("job {id} is running in process {}", j.pid),
                    },
                    None,
                ));
            }
        },
    };
    let mut out = Vec::new();
    for job in chosen {
        let job_name = format!("{} {}", job.kind.as_str(), job.label);
        maintenance::lock_database(engine, &job.db_name, &job_name)?;
        engine
            .catalog()
            .write(|tx| tx.set_job_pid(job.id, std::process::id()))?;
        progress.note(&format!(
            "resuming job {} ({job_name}) from {}",
            job.id, job.state
        ));
        out.push(run_job(engine, job.id, progress).await?);
    }
    Ok(out)
}

/// Runs (or resumes) job `job_id` to its end.
pub async fn run_job(engine: &mut Engine, job_id: i64, progress: &dyn Progress) -> Result<Outcome> {
    let job = engine
        .catalog()
        .view()
        .job(job_id)?
        .ok_or_else(|| Error::invalid(format!("there is no job {job_id}"), None))?;
    let plan = Plan::from_json(&job.plan)
        .map_err(|e| Error::invalid(format!("job {job_id}: {e}"), None))?;
    // A journal that does not decode stops here, before anything is resumed or undone: the
    // error names the job and the task, and the job stays as it is for a person to look at.
    let journal = Journal::decode(job_id, &plan, &engine.catalog().view().journal(job_id)?)
        .map_err(|e| Error::invalid(e.to_string(), None))?;
    let lock_job = format!("{} {}", job.kind.as_str(), job.label);
    // A job that cannot even start (its repository was dropped, the settings file is wrong)
    // ends as CANCELLED with the reason, and lets go of its database.
    let setup = (|| -> Result<(Repository, Settings)> {
        let settings = Settings::load(engine.root())?;
        let repository = registry::open(engine.catalog(), &Ident::new(&plan.repository.name))?
            .with_rate_limits(
                settings.max_upload_speed_kbps,
                settings.max_download_speed_kbps,
            );
        Ok((repository, settings))
    })();
    let (repository, settings) = match setup {
        Ok(x) => x,
        Err(e) => {
            let mut message = e.to_string();
            if let Err(undo) = tasks::undo(engine, &plan, &journal) {
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
            maintenance::unlock_database(engine, &job.db_name, &lock_job)?;
            return Err(e);
        }
    };
    let created = chrono::NaiveDateTime::parse_from_str(&job.created_at, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .unwrap_or_else(|_| chrono::Utc::now());
    let deadline = created + chrono::Duration::seconds(job.timeout);
    let mut runner = Runner {
        engine,
        job: job.clone(),
        plan,
        repo: repository,
        settings,
        journal,
        manifest: None,
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
    maintenance::unlock_database(runner.engine, &job.db_name, &lock_job)?;
    progress.finish();
    Ok(outcome)
}

/// Ends an interrupted job whose process died, from another process (CANCEL on a dead job):
/// undoes what a cancel undoes, from the journal.
pub async fn cancel_interrupted(engine: &mut Engine, job: &catalog::JobRow) -> Result<()> {
    let plan = Plan::from_json(&job.plan)
        .map_err(|e| Error::invalid(format!("job {}: {e}", job.id), None))?;
    let journal = Journal::decode(job.id, &plan, &engine.catalog().view().journal(job.id)?)
        .map_err(|e| Error::invalid(e.to_string(), None))?;
    tasks::undo(engine, &plan, &journal)
        .map_err(|e| Error::invalid(format!("job {}: {e}", job.id), None))?;
    engine.catalog().write(|tx| {
        tx.finish_job(
            job.id,
            JobState::Cancelled,
            JobStatus::Cancelled,
            Some("cancelled after its process died"),
        )
    })?;
    let lock_job = format!("{} {}", job.kind.as_str(), job.label);
    Ok(maintenance::unlock_database(
        engine,
        &job.db_name,
        &lock_job,
    )?)
}

#[derive(Default)]
struct Stats {
    files: u64,
    bytes: u64,
    files_sent: u64,
    bytes_sent: u64,
    files_resumed: u64,
    bytes_resumed: u64,
}

/// What a finished transfer hands back to the coordinator.
type TransferResult = (usize, std::result::Result<Entry, RepoError>);

struct Runner<'e> {
    engine: &'e mut Engine,
    job: catalog::JobRow,
    plan: Plan,
    repo: Repository,
    settings: Settings,
    /// Finished tasks and what they left.
    journal: Journal,
    /// Restore: the snapshot's manifest.
    manifest: Option<Arc<Manifest>>,
    lease: Option<Lease>,
    progress: &'e dyn Progress,
    deadline: chrono::DateTime<chrono::Utc>,
    started: Instant,
    stats: Stats,
}

fn is_transfer(action: &Action) -> bool {
    matches!(action, Action::Upload { .. } | Action::Download { .. })
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

    /// The StarRocks state a job is in while running a task of this kind.
    fn state_for(&self, action: &Action) -> &'static [JobState] {
        match action {
            Action::Pin { .. } => &[JobState::Snapshoting],
            Action::Upload { .. } => &[JobState::UploadSnapshot, JobState::Uploading],
            Action::WriteManifest { .. } => &[JobState::SaveMeta, JobState::UploadInfo],
            Action::CreateDatabase { .. } | Action::Stage { .. } => &[JobState::Snapshoting],
            Action::Download { .. } => &[JobState::Download, JobState::Downloading],
            Action::Commit { .. } => &[JobState::Commit, JobState::Committing],
            _ => &[],
        }
    }

    async fn execute(&mut self) -> std::result::Result<(), Stop> {
        let lease_kind = match self.plan.kind {
            JobKind::Backup => LeaseKind::Backup,
            JobKind::Restore => LeaseKind::Restore,
        };
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
            self.manifest = Some(Arc::new(self.restore_manifest().await?));
        }
        let tasks = self.plan.tasks.clone();
        let graph = TaskGraph::new(&tasks).map_err(Stop::Failed)?;
        let n = tasks.len();
        let mut done: Vec<bool> = tasks.iter().map(|t| self.journal.contains(&t.id)).collect();
        let mut waiting: Vec<usize> = (0..n)
            .map(|i| graph.dependencies(i).filter(|&d| !done[d]).count())
            .collect();
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| !done[i] && waiting[i] == 0).collect();
        let transfers: Vec<usize> = (0..n).filter(|&i| is_transfer(&tasks[i].action)).collect();
        let (total_bytes, total_files) = transfers.iter().fold((0, 0), |(b, f), &i| {
            (b + tasks::file_size(&tasks[i].action), f + 1)
        });
        self.stats.files = total_files;
        self.stats.bytes = total_bytes;
        let what = match self.plan.kind {
            JobKind::Backup => "uploading",
            JobKind::Restore => "downloading",
        };
        self.progress.start(what, total_files, total_bytes);
        for &i in &transfers {
            if done[i] {
                let size = tasks::file_size(&tasks[i].action);
                self.progress.file_done(size, false);
                self.stats.files_resumed += 1;
                self.stats.bytes_resumed += size;
            }
        }
        let mut running: JoinSet<TransferResult> = JoinSet::new();
        let mut running_by_kind: HashMap<&'static str, usize> = HashMap::new();
        let mut finished: Vec<(usize, Entry)> = Vec::new();
        let mut last_flush = Instant::now();
        let mut last_check = Instant::now();
        let mut last_lease = Instant::now();
        self.update_progress(&done)?;
        loop {
            // Start what can start, in plan order.
            let mut progressed = true;
            while progressed {
                progressed = false;
                for i in ready.clone() {
                    let action = &tasks[i].action;
                    let kind = action.kind();
                    if is_transfer(action) {
                        let busy = running_by_kind.get(kind).copied().unwrap_or(0);
                        if busy >= self.settings.workers_for(kind) {
                            continue;
                        }
                        for &s in self.state_for(action) {
                            self.set_state(s)?;
                        }
                        let work = self.transfer(i, &tasks[i])?;
                        running.spawn(work);
                        *running_by_kind.entry(kind).or_default() += 1;
                        ready.remove(&i);
                    } else {
                        for &s in self.state_for(action) {
                            self.set_state(s)?;
                        }
                        ready.remove(&i);
                        self.check_stop()?;
                        self.run_inline(&tasks[i]).await?;
                        self.complete(i, &graph, &mut done, &mut waiting, &mut ready);
                        progressed = true;
                        self.update_progress(&done)?;
                        break;
                    }
                }
            }
            if ready.is_empty() && running.is_empty() && finished.is_empty() {
                break;
            }
            // Wait for a transfer, or a tick to look at cancels, timeouts and the lease.
            if !running.is_empty() {
                tokio::select! {
                    joined = running.join_next() => {
                        if let Some(joined) = joined {
                            let (i, result) = joined.map_err(|e| Stop::Failed(format!("a transfer task failed: {e}")))?;
                            *running_by_kind.entry(tasks[i].action.kind()).or_default() -= 1;
                            match result {
                                Ok(value) => {
                                    self.count_transfer(&tasks[i], &value);
                                    self.progress.file_done(tasks::file_size(&tasks[i].action), true);
                                    finished.push((i, value));
                                }
                                Err(e) => {
                                    running.abort_all();
                                    return Err(Stop::Failed(format!("{}: {e}", tasks[i].id)));
                                }
                            }
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
            // Journal finished transfers in batches; their dependents start only once journaled.
            if !finished.is_empty()
                && (finished.len() >= 64
                    || running.is_empty()
                    || last_flush.elapsed() >= Duration::from_secs(1))
            {
                self.journal_transfers(&tasks, &finished)?;
                for (i, _) in std::mem::take(&mut finished) {
                    self.complete(i, &graph, &mut done, &mut waiting, &mut ready);
                }
                last_flush = Instant::now();
            }
            if last_check.elapsed() >= Duration::from_millis(500) {
                last_check = Instant::now();
                if let Err(stop) = self.check_stop() {
                    running.abort_all();
                    return Err(stop);
                }
                self.update_progress(&done)?;
            }
            if last_lease.elapsed() >= LEASE_REFRESH {
                last_lease = Instant::now();
                if let Some(l) = &self.lease {
                    self.repo.refresh(l).await?;
                }
            }
        }
        if let Some(i) = done.iter().position(|d| !d) {
            return Err(Stop::Failed(format!("task {} could not run", tasks[i].id)));
        }
        Ok(())
    }

    fn complete(
        &self,
        i: usize,
        graph: &TaskGraph,
        done: &mut [bool],
        waiting: &mut [usize],
        ready: &mut BTreeSet<usize>,
    ) {
        done[i] = true;
        for d in graph.dependents(i) {
            waiting[d] -= 1;
            if waiting[d] == 0 && !done[d] {
                ready.insert(d);
            }
        }
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

    fn update_progress(&mut self, done: &[bool]) -> std::result::Result<(), Stop> {
        let total = done.len();
        let finished = done.iter().filter(|d| **d).count();
        let unfinished = (total - finished) as i64;
        let text = format!("{finished}/{total}");
        self.engine
            .catalog()
            .write(|tx| tx.set_job_progress(self.job.id, unfinished, &text))?;
        Ok(())
    }
}
