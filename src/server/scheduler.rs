//! The scheduler of `srbackup serve`: fires schedules (CREATE SCHEDULE) when their time has
//! come, as the account that created them, and records every run.
//!
//! Rules (CockroachDB's defaults where it has one):
//! - **Once per due time, never twice.** A run is claimed in the transaction that moves the
//!   schedule's `next_run` on (`Tx::claim_schedule_run`); a second scheduler, or a retry after
//!   a crash, finds `next_run` already moved and claims nothing.
//! - **Missed runs collapse into one.** After downtime the schedule fires once, for the time it
//!   missed first, and its next run is the next after *now*, not after the missed time.
//! - **No overlap.** While a run's job is unfinished, a due time is recorded as SKIPPED (with
//!   which run is still going) and not started (CockroachDB's `on_previous_running = skip`).
//! - **A failed start reschedules** (`on_execution_failure = reschedule`): the run is FAILED
//!   with the reason, and the schedule fires again at its next time.
//! - **Privileges are the owner's, now.** Each run is checked against what its owner holds
//!   when it fires; a revoked privilege or a dropped account fails the run.
//! - **Retention after success.** A backup schedule's `WITH RETENTION` policy is applied to
//!   its label's snapshots of its database once the job has FINISHED, then the objects no
//!   snapshot needs are swept under the usual lease rules.
//!
//! Time comes from outside (`tick(now)`), so tests drive it with any clock.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::catalog::{JobState, RunState, ScheduleRow, ScheduleRunRow};
use crate::error::{Error, Result};
use crate::exec::{self, StartOptions};
use crate::repo::gc::GroupBy;
use crate::repo::retention::Policy;
use crate::session::Session;
use crate::session::privileges::Identity;
use crate::session::schedules::{next_after, parse_time, time_text};
use crate::sql::{self, Statement};

/// How soon a run deferred because its database was held is tried again.
const RETRY_HELD_SECONDS: i64 = 60;

/// How long a claimed run may go without its job before it counts as abandoned.
const ORPHAN_AFTER_MINUTES: i64 = 10;

/// What one tick did, for the caller to act on (start the jobs) and for tests to check.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// BACKUP jobs accepted, by schedule name: the caller runs them (`worker::launch`).
    pub started: Vec<(String, i64)>,
    /// Drills due, by schedule name and run id: the caller runs them (`run_drill`).
    pub drills: Vec<(String, i64, String)>,
    /// Due times skipped because the previous run is still going.
    pub skipped: Vec<String>,
    /// Runs that could not start, with why.
    pub failed: Vec<(String, String)>,
    /// Runs closed this tick (their job ended), by run id, with their final state.
    pub closed: Vec<(i64, RunState)>,
}

pub struct Scheduler {
    session: Session,
    /// Runs this process started whose work is not a catalog job (drills on their threads):
    /// they are not orphans while they are here. The drill's thread closes its run
    /// ([`finish_drill`]) and takes it out.
    in_flight: InFlight,
}

pub type InFlight = std::sync::Arc<std::sync::Mutex<BTreeSet<i64>>>;

impl Scheduler {
    pub fn open(cluster: &std::path::Path) -> Result<Scheduler> {
        Ok(Scheduler {
            session: Session::open(cluster)?,
            in_flight: InFlight::default(),
        })
    }

    /// Unfinished jobs whose process is gone (a server killed a moment before this one
    /// started may still have been exiting when the start looked; a CLI job killed later).
    pub fn interrupted_jobs(&mut self) -> Result<Vec<crate::catalog::JobRow>> {
        exec::interrupted(self.session.engine())
    }

    /// The drill runs in flight (shared with the threads that run them).
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.clone()
    }

    /// One pass: closes the runs whose jobs ended (applying retention), then fires every
    /// ACTIVE schedule whose `next_run` is at or before `now`.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> Result<Tick> {
        let mut tick = Tick::default();
        self.close_runs(now, &mut tick).await?;
        let due: Vec<ScheduleRow> = self
            .session
            .engine()
            .catalog()
            .view()
            .schedules()?
            .into_iter()
            .filter(|s| s.state == "ACTIVE")
            .filter(|s| {
                s.next_run
                    .as_deref()
                    .and_then(parse_time)
                    .is_some_and(|t| t <= now)
            })
            .collect();
        for schedule in due {
            // One schedule's failure (a busy catalog, say) neither stops the others nor loses
            // the jobs already accepted this tick: the caller must launch those.
            if let Err(e) = self.fire(&schedule, now, &mut tick).await {
                tick.failed.push((schedule.name.clone(), e.to_string()));
            }
        }
        Ok(tick)
    }

    async fn fire(&mut self, s: &ScheduleRow, now: DateTime<Utc>, tick: &mut Tick) -> Result<()> {
        let Some(due) = s.next_run.clone() else {
            return Ok(());
        };
        let started_at = time_text(now);
        let catalog = self.session.engine().catalog();
        let next = match next_after(&s.recurrence, now) {
            Ok(next) => next,
            Err(why) => {
                // A recurrence that no longer parses (a newer srbackup's syntax, a hand edit):
                // the schedule pauses rather than firing every tick.
                catalog.write(|tx| tx.set_schedule_state(&s.name, "PAUSED", None))?;
                tick.failed.push((s.name.clone(), why));
                return Ok(());
            }
        };
        let previous = catalog
            .view()
            .schedule_runs(Some(s.id))?
            .into_iter()
            .find(|r| r.state == RunState::Running);
        if let Some(prev) = previous {
            let message = match prev.job_id {
                Some(job) => format!(
                    "skipped: the run scheduled for {} (job {job}) is still running",
                    prev.scheduled_for
                ),
                None => format!(
                    "skipped: the run scheduled for {} is still running",
                    prev.scheduled_for
                ),
            };
            let claimed = catalog.write(|tx| {
                tx.claim_schedule_run(
                    s.id,
                    &due,
                    &next,
                    &started_at,
                    RunState::Skipped,
                    Some(&message),
                )
            })?;
            if claimed.is_some() {
                tick.skipped.push(s.name.clone());
            }
            return Ok(());
        }
        let Some(run) = catalog.write(|tx| {
            tx.claim_schedule_run(s.id, &due, &next, &started_at, RunState::Running, None)
        })?
        else {
            return Ok(()); // changed meanwhile (dropped, paused, fired elsewhere)
        };
        if s.kind == "DRILL" {
            // As its owner, now: what CREATE SCHEDULE … FOR DRILL needs (REPOSITORY, CREATE
            // DATABASE for the scratch database).
            let allowed = match sql::schedule_of_command(&s.command) {
                Some(stmt) => self.as_owner(s, |session| session.authorize(&stmt)),
                None => Err(Error::invalid(
                    format!("the schedule's statement does not parse: {}", s.command),
                    None,
                )),
            };
            if let Err(e) = allowed {
                let message = crate::sql::mask_secrets(&e.to_string());
                self.session.engine().catalog().write(|tx| {
                    tx.finish_run(run, RunState::Failed, Some(&message), &started_at)
                })?;
                tick.failed.push((s.name.clone(), message));
                return Ok(());
            }
            lock(&self.in_flight).insert(run);
            tick.drills.push((s.name.clone(), run, s.command.clone()));
            return Ok(());
        }
        // Another job holds the database (another schedule's backup, a restore): not a
        // failure of this one. The run is SKIPPED and tried again in a minute, so that two
        // schedules due at the same time both run, one after the other.
        if let Some(holder) = self.holder_of(&s.command)? {
            let retry = time_text(now + chrono::Duration::seconds(RETRY_HELD_SECONDS));
            let message = format!(
                "deferred: database {} is held by {} job {} ({}); tried again at {retry}",
                holder.db_name,
                holder.kind.keyword(),
                holder.id,
                holder.label
            );
            self.session.engine().catalog().write(|tx| {
                tx.finish_run(run, RunState::Skipped, Some(&message), &started_at)?;
                tx.retry_schedule_at(s.id, &retry)
            })?;
            tick.skipped.push(s.name.clone());
            return Ok(());
        }
        match self.start_backup(s, now).await {
            Ok(job) => {
                // Launched whatever happens to the link: an accepted job not run would hold
                // its database until the next start.
                tick.started.push((s.name.clone(), job));
                self.session
                    .engine()
                    .catalog()
                    .write(|tx| tx.set_run_job(run, job))?;
            }
            Err(e) => {
                let message = crate::sql::mask_secrets(&e.to_string());
                self.session.engine().catalog().write(|tx| {
                    tx.finish_run(run, RunState::Failed, Some(&message), &started_at)
                })?;
                tick.failed.push((s.name.clone(), message));
            }
        }
        Ok(())
    }

    /// A BACKUP job of `run`'s statement accepted after the run was claimed that no run names.
    fn unlinked_job(&mut self, run: &ScheduleRunRow) -> Result<Option<i64>> {
        let Ok(Statement::Backup(b)) = parse_one(&run.command) else {
            return Ok(None);
        };
        let db = b.database.as_ref().map(|d| d.value.clone());
        let view = self.session.engine().catalog().view();
        for job in view.jobs(crate::catalog::JobKind::Backup, db.as_deref())? {
            if job.created_at.as_str() < run.started_at.as_str() {
                break; // newest first: the rest are older still
            }
            if job.label == b.snapshot.value && view.run_of_job(job.id)?.is_none() {
                return Ok(Some(job.id));
            }
        }
        Ok(None)
    }

    /// The running job (its process alive) that holds the database a BACKUP command backs up.
    fn holder_of(&mut self, command: &str) -> Result<Option<crate::catalog::JobRow>> {
        let Ok(Statement::Backup(b)) = parse_one(command) else {
            return Ok(None);
        };
        let Some(db) = b.database else {
            return Ok(None);
        };
        let holder = self
            .session
            .engine()
            .catalog()
            .view()
            .database_holder(&db.value)?;
        Ok(holder.filter(|job| job.process.is_alive()))
    }

    /// Runs `f` with the session acting for the schedule's owner (root for a schedule made
    /// on this machine), then as root again.
    fn as_owner<T>(&mut self, s: &ScheduleRow, f: impl FnOnce(&mut Session) -> T) -> T {
        if s.owner_user.is_empty() {
            self.session.clear_identity();
        } else {
            self.session
                .set_identity(Identity::new(&s.owner_user, &s.owner_host));
        }
        let out = f(&mut self.session);
        self.session.clear_identity();
        out
    }

    /// Plans the schedule's BACKUP as its owner and accepts it as a job.
    async fn start_backup(&mut self, s: &ScheduleRow, now: DateTime<Utc>) -> Result<i64> {
        let stmt = parse_one(&s.command)?;
        if s.owner_user.is_empty() {
            self.session.clear_identity();
        } else {
            self.session
                .set_identity(Identity::new(&s.owner_user, &s.owner_host));
        }
        let result = async {
            self.session.authorize(&stmt)?;
            let owner = self.session.owner();
            // The snapshot's timestamp is the scheduler's clock, so that an injected clock
            // names snapshots as a real one would at that time.
            let timestamp = now.format("%Y-%m-%d-%H-%M-%S-%3f").to_string();
            exec::submit(
                self.session.engine(),
                &stmt,
                &s.command,
                StartOptions {
                    snapshot_time: Some(&timestamp),
                    owner: &owner,
                },
            )
            .await
        }
        .await;
        self.session.clear_identity();
        result
    }

    /// Closes runs whose job has ended (SUCCESS or FAILED) and runs a successful backup's
    /// retention; a run claimed by a process that died before its job was accepted is FAILED.
    async fn close_runs(&mut self, now: DateTime<Utc>, tick: &mut Tick) -> Result<()> {
        let open = self
            .session
            .engine()
            .catalog()
            .view()
            .open_schedule_runs()?;
        for run in open {
            if lock(&self.in_flight).contains(&run.id) {
                continue;
            }
            // The job may have been accepted just before the process died, before the run named
            // it (the two are separate transactions): found, it is linked, not failed.
            if run.job_id.is_none()
                && let Some(job) = self.unlinked_job(&run)?
            {
                self.session
                    .engine()
                    .catalog()
                    .write(|tx| tx.set_run_job(run.id, job))?;
                continue;
            }
            let (state, mut message) = match run.job_id {
                // Claimed, and no job named after a grace period: the process that claimed it
                // died in between (a scheduler claims and submits in one pass, so a younger
                // one may be another server's on the same cluster, mid-way).
                None if parse_time(&run.started_at)
                    .is_some_and(|t| now - t < chrono::Duration::minutes(ORPHAN_AFTER_MINUTES)) =>
                {
                    continue;
                }
                None => (
                    RunState::Failed,
                    "the server stopped before the run's job was accepted".to_string(),
                ),
                Some(job_id) => {
                    let job = self.session.engine().catalog().view().job(job_id)?;
                    match job {
                        None => (RunState::Failed, format!("job {job_id} is gone")),
                        Some(job) if !job.finished => continue,
                        Some(job) if job.state == JobState::Finished => {
                            (RunState::Success, format!("job {job_id} FINISHED"))
                        }
                        Some(job) => (
                            RunState::Failed,
                            format!(
                                "job {job_id} {}{}",
                                job.state,
                                job.task_err_msg
                                    .map(|m| format!(": {m}"))
                                    .unwrap_or_default()
                            ),
                        ),
                    }
                }
            };
            if state == RunState::Success
                && let Some(retained) = self.retain(&run).await
            {
                message.push_str("; ");
                message.push_str(&retained);
            }
            let finished = time_text(now);
            self.session
                .engine()
                .catalog()
                .write(|tx| tx.finish_run(run.id, state, Some(&message), &finished))?;
            tick.closed.push((run.id, state));
        }
        Ok(())
    }

    /// Applies the run's schedule's retention policy (if it has one) to the label's snapshots
    /// of its database; says what it did, or why it could not.
    async fn retain(&mut self, run: &ScheduleRunRow) -> Option<String> {
        let schedule = self
            .session
            .engine()
            .catalog()
            .view()
            .schedule(&run.schedule_name)
            .ok()
            .flatten()
            .filter(|s| s.id == run.schedule_id)?;
        let policy_text = schedule.retention.as_deref()?;
        let result = async {
            let policy: Policy = policy_text
                .parse()
                .map_err(|why: String| Error::invalid(format!("retention {policy_text}: {why}"), None))?;
            let Statement::Backup(b) = parse_one(&run.command)? else {
                return Err(Error::invalid("not a backup", None));
            };
            // Rules apply to the label's snapshots of the schedule's database, never wider.
            let Some(database) = b.database.as_ref().map(|d| d.value.clone()) else {
                return Err(Error::invalid(
                    "a backup of external catalogs only has no database to apply it to",
                    None,
                ));
            };
            let repo = crate::repo::registry::open(self.session.engine().catalog(), &b.repository)?;
            let report = repo
                .forget(
                    &policy,
                    GroupBy::Database,
                    Some(&b.snapshot.value),
                    Some(&database),
                    false,
                    &crate::repo::registry::lease_holder(),
                )
                .await?;
            Ok::<_, Error>(match report.gc.and_then(|g| g.skipped) {
                None => format!(
                    "retention {policy_text}: forgot {} snapshots",
                    report.forgotten.len()
                ),
                Some(why) => format!(
                    "retention {policy_text}: forgot {} snapshots; objects stay until the next sweep because {why}",
                    report.forgotten.len()
                ),
            })
        }
        .await;
        Some(match result {
            Ok(text) => text,
            Err(e) => format!(
                "retention {policy_text} not applied: {}",
                crate::sql::mask_secrets(&e.to_string())
            ),
        })
    }
}

fn lock(set: &InFlight) -> std::sync::MutexGuard<'_, BTreeSet<i64>> {
    set.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Ends a drill run (called by the thread that ran it, with its own catalog connection).
pub fn finish_drill(
    catalog: &mut crate::catalog::Catalog,
    in_flight: &InFlight,
    run: i64,
    job: Option<i64>,
    result: std::result::Result<String, String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let (state, message) = match result {
        Ok(m) => (RunState::Success, m),
        Err(m) => (RunState::Failed, m),
    };
    let finished = time_text(now);
    catalog.write(|tx| {
        if let Some(job) = job {
            tx.set_run_job(run, job)?;
        }
        tx.finish_run(run, state, Some(&message), &finished)
    })?;
    lock(in_flight).remove(&run);
    Ok(())
}

fn parse_one(command: &str) -> Result<Statement> {
    let mut statements = sql::parse_named("schedule", command).map_err(|e| {
        Error::invalid(
            format!("the schedule's statement does not parse: {e}"),
            None,
        )
    })?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        n => Err(Error::invalid(
            format!("the schedule's statement is {n} statements"),
            None,
        )),
    }
}
