//! BACKUP and RESTORE jobs: their rows (StarRocks' states and columns), their journals of
//! finished tasks, and what a job holds until it ends: its database (one job per database, as
//! StarRocks allows) and, for a restore, the names it will create or replace. A job is
//! accepted, holding both, in one transaction, and lets go of both in the transaction that
//! ends it; a job whose process died keeps holding them until it is resumed or cancelled.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use super::{Reader, Result, Tx, from_json, now, to_json};
use crate::catalog::{JobKind, JobState, JobStatus};
use crate::process::Process;

/// A BACKUP or RESTORE job as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    pub id: i64,
    pub kind: JobKind,
    pub label: String,
    pub db_name: String,
    pub state: JobState,
    /// The plan it runs (JSON).
    pub plan: String,
    pub snapshot_timestamp: Option<String>,
    pub created_at: String,
    /// When the job entered each state.
    pub state_times: BTreeMap<JobState, String>,
    pub unfinished_tasks: i64,
    pub progress: Option<String>,
    pub task_err_msg: Option<String>,
    pub status: JobStatus,
    pub timeout: i64,
    /// The process running (or that last ran) the job.
    pub process: Process,
    pub cancel_requested: bool,
    pub finished: bool,
    /// Who submitted it: `'user'@'host'`, or empty for a command on this machine (root).
    pub owner: String,
}

impl JobRow {
    /// When the job entered `state`, if it did.
    pub fn time(&self, state: JobState) -> Option<&str> {
        self.state_times.get(&state).map(String::as_str)
    }
}

/// A job about to be accepted.
pub struct NewJob<'a> {
    pub kind: JobKind,
    pub label: &'a str,
    pub db_name: &'a str,
    pub plan: &'a str,
    pub snapshot_timestamp: Option<&'a str>,
    pub timeout_seconds: i64,
    pub process: Process,
    /// Who submits it (`JobRow::owner`).
    pub owner: &'a str,
}

/// Why a job could not be accepted: another unfinished job holds what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// The database, by this job.
    Database(Box<JobRow>),
    /// A name the new restore would create or replace, by this job.
    Name { name: String, job: Box<JobRow> },
}

/// Whether a process may run a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// It is this process's now.
    Claimed(Box<JobRow>),
    /// The job already ended.
    Ended(Box<JobRow>),
    /// Another live process runs it.
    Running(Box<JobRow>),
    NoSuchJob,
}

/// The plan lives in `job_plans` (schema v7), read with the row.
const JOB_COLUMNS: &str = "id, kind, label, db_name, state, \
    COALESCE((SELECT p.plan FROM job_plans p WHERE p.job_id = jobs.id), plan), snapshot_timestamp, created_at, \
    state_times, unfinished_tasks, progress, task_err_msg, status, timeout, pid, cancel_requested, finished, \
    pid_start, owner";

fn bad(column: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown job {what} {value:?}").into(),
    )
}

fn job_from_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
    let kind: String = r.get(1)?;
    let state: String = r.get(4)?;
    let status: String = r.get(12)?;
    Ok(JobRow {
        id: r.get(0)?,
        kind: JobKind::parse(&kind).ok_or_else(|| bad(1, "kind", &kind))?,
        label: r.get(2)?,
        db_name: r.get(3)?,
        state: JobState::parse(&state).ok_or_else(|| bad(4, "state", &state))?,
        plan: r.get(5)?,
        snapshot_timestamp: r.get(6)?,
        created_at: r.get(7)?,
        state_times: from_json(&r.get::<_, String>(8)?)?,
        unfinished_tasks: r.get(9)?,
        progress: r.get(10)?,
        task_err_msg: r.get(11)?,
        status: JobStatus::parse(&status).ok_or_else(|| bad(12, "status", &status))?,
        timeout: r.get(13)?,
        process: Process {
            pid: r.get(14)?,
            started: r.get::<_, i64>(17)? as u64,
        },
        cancel_requested: r.get::<_, i64>(15)? != 0,
        finished: r.get::<_, i64>(16)? != 0,
        owner: r.get(18)?,
    })
}

impl Reader<'_> {
    pub fn job(&self, id: i64) -> Result<Option<JobRow>> {
        self.run(|c| {
            c.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
        })
    }

    /// Jobs of a kind, newest first, optionally of one database.
    pub fn jobs(&self, kind: JobKind, db_name: Option<&str>) -> Result<Vec<JobRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = ?1 AND (?2 IS NULL OR db_name = ?2) ORDER BY id DESC"
            ))?;
            stmt.query_map(params![kind.as_str(), db_name], job_from_row)?
                .collect()
        })
    }

    /// Jobs not finished (running, or interrupted by a crash), oldest first.
    pub fn unfinished_jobs(&self) -> Result<Vec<JobRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE finished = 0 ORDER BY id"
            ))?;
            stmt.query_map([], job_from_row)?.collect()
        })
    }

    pub fn cancel_requested(&self, id: i64) -> Result<bool> {
        self.run(|c| {
            c.query_row(
                "SELECT cancel_requested FROM jobs WHERE id = ?1",
                [id],
                |r| r.get::<_, i64>(0).map(|v| v != 0),
            )
        })
    }

    /// The finished tasks of a job with their journal entries (JSON), by task id.
    pub fn journal(&self, job_id: i64) -> Result<BTreeMap<String, String>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT task_id, result FROM job_tasks WHERE job_id = ?1")?;
            stmt.query_map([job_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    /// The job whose id `sql` (one `job_id` column, at most one row) selects, if any.
    fn job_where(&self, sql: &str, params: impl rusqlite::Params) -> Result<Option<JobRow>> {
        let id: Option<i64> = self.run(|c| c.query_row(sql, params, |r| r.get(0)).optional())?;
        match id {
            Some(id) => self.job(id),
            None => Ok(None),
        }
    }

    /// The unfinished job holding a database, if any.
    pub fn database_holder(&self, db_name: &str) -> Result<Option<JobRow>> {
        self.job_where("SELECT job_id FROM job_holds WHERE db_name = ?1", [db_name])
    }

    /// The unfinished restore that will create or replace `name` in `db_name`, if any.
    pub fn target_holder(&self, db_name: &str, name: &str) -> Result<Option<JobRow>> {
        self.job_where(
            "SELECT job_id FROM job_targets WHERE db_name = ?1 AND name = ?2",
            params![db_name, name],
        )
    }

    /// The unfinished restore that will create or replace `name` in any database (external
    /// catalogs live outside databases), if any.
    pub fn target_named(&self, name: &str) -> Result<Option<JobRow>> {
        self.job_where(
            "SELECT job_id FROM job_targets WHERE name = ?1 LIMIT 1",
            [name],
        )
    }

    /// Whether an unfinished restore will create or replace anything in `db_name`.
    pub fn database_has_targets(&self, db_name: &str) -> Result<Option<JobRow>> {
        self.job_where(
            "SELECT job_id FROM job_targets WHERE db_name = ?1 LIMIT 1",
            [db_name],
        )
    }
}

impl Tx<'_> {
    /// Accepts a job: records it PENDING, holding its database and (a restore) the names it
    /// will create or replace, all in this transaction; or says who holds one of them.
    pub fn accept_job(
        &self,
        job: &NewJob<'_>,
        targets: &[String],
    ) -> Result<std::result::Result<i64, Held>> {
        if let Some(holder) = self.database_holder(job.db_name)? {
            return Ok(Err(Held::Database(Box::new(holder))));
        }
        for name in targets {
            if let Some(holder) = self.target_holder(job.db_name, name)? {
                return Ok(Err(Held::Name {
                    name: name.clone(),
                    job: Box::new(holder),
                }));
            }
        }
        let id = self.insert_job(job)?;
        let since = now();
        self.run(|c| {
            c.execute(
                "INSERT INTO job_holds (db_name, job_id, since) VALUES (?1, ?2, ?3)",
                params![job.db_name, id, since],
            )?;
            let mut st =
                c.prepare("INSERT INTO job_targets (job_id, db_name, name) VALUES (?1, ?2, ?3)")?;
            for name in targets {
                st.execute(params![id, job.db_name, name])?;
            }
            Ok(())
        })?;
        Ok(Ok(id))
    }

    /// Makes `me` the process running job `id`, unless it ended or another live process runs
    /// it (two `resume`s at once: one wins).
    pub fn claim_job(&self, id: i64, me: Process) -> Result<Claim> {
        let Some(job) = self.job(id)? else {
            return Ok(Claim::NoSuchJob);
        };
        if job.finished {
            return Ok(Claim::Ended(Box::new(job)));
        }
        if job.process != me && job.process.is_alive() {
            return Ok(Claim::Running(Box::new(job)));
        }
        self.run(|c| {
            c.execute(
                "UPDATE jobs SET pid = ?2, pid_start = ?3 WHERE id = ?1",
                params![id, me.pid, me.started as i64],
            )?;
            Ok(())
        })?;
        let job = self.job(id)?.expect("the job was just read");
        Ok(Claim::Claimed(Box::new(job)))
    }

    fn insert_job(&self, job: &NewJob<'_>) -> Result<i64> {
        let created = now();
        let times = BTreeMap::from([(JobState::Pending, created.clone())]);
        self.run(|c| {
            c.execute(
                "INSERT INTO jobs (kind, label, db_name, state, plan, snapshot_timestamp, created_at, state_times, timeout, pid, pid_start, owner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    job.kind.as_str(),
                    job.label,
                    job.db_name,
                    JobState::Pending.as_str(),
                    "",
                    job.snapshot_timestamp,
                    created,
                    to_json(&times)?,
                    job.timeout_seconds,
                    job.process.pid,
                    job.process.started as i64,
                    job.owner
                ],
            )?;
            let id = c.last_insert_rowid();
            c.execute(
                "INSERT INTO job_plans (job_id, plan) VALUES (?1, ?2)",
                params![id, job.plan],
            )?;
            Ok(id)
        })
    }

    /// Moves a job to `state`, recording when.
    pub fn set_job_state(&self, id: i64, state: JobState) -> Result<()> {
        self.run(|c| {
            let times: String =
                c.query_row("SELECT state_times FROM jobs WHERE id = ?1", [id], |r| {
                    r.get(0)
                })?;
            let mut times: BTreeMap<JobState, String> = from_json(&times)?;
            times.entry(state).or_insert_with(now);
            c.execute(
                "UPDATE jobs SET state = ?2, state_times = ?3 WHERE id = ?1",
                params![id, state.as_str(), to_json(&times)?],
            )?;
            Ok(())
        })
    }

    pub fn set_job_progress(&self, id: i64, unfinished: i64, progress: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE jobs SET unfinished_tasks = ?2, progress = ?3 WHERE id = ?1",
                params![id, unfinished, progress],
            )?;
            Ok(())
        })
    }

    /// Ends a job in `state` (FINISHED or CANCELLED) with its status and error message, and
    /// lets go of its database and names in the same transaction.
    pub fn finish_job(
        &self,
        id: i64,
        state: JobState,
        status: JobStatus,
        task_err_msg: Option<&str>,
    ) -> Result<()> {
        self.set_job_state(id, state)?;
        self.run(|c| {
            c.execute(
                "UPDATE jobs SET finished = 1, status = ?2, task_err_msg = ?3 WHERE id = ?1",
                params![id, status.as_str(), task_err_msg],
            )?;
            c.execute("DELETE FROM job_holds WHERE job_id = ?1", [id])?;
            c.execute("DELETE FROM job_targets WHERE job_id = ?1", [id])?;
            Ok(())
        })
    }

    /// Asks job `id` to stop, if it has not ended; returns whether it was asked.
    pub fn request_cancel(&self, id: i64) -> Result<bool> {
        self.run(|c| {
            c.execute(
                "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND finished = 0",
                [id],
            )
            .map(|n| n > 0)
        })
    }

    /// Forgets that a task finished (what it did was undone since: a resumed backup found the
    /// object it uploaded gone), so that it runs again.
    pub fn forget_task(&self, job_id: i64, task_id: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "DELETE FROM job_tasks WHERE job_id = ?1 AND task_id = ?2",
                params![job_id, task_id],
            )?;
            Ok(())
        })
    }

    /// Records a finished task of a job with its journal entry (JSON).
    pub fn journal_task(&self, job_id: i64, task_id: &str, entry: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "INSERT OR REPLACE INTO job_tasks (job_id, task_id, result) VALUES (?1, ?2, ?3)",
                params![job_id, task_id, entry],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use rusqlite::Connection;

    fn job_row_plan_len(path: &std::path::Path, id: i64) -> (i64, i64) {
        let c = Connection::open(path).unwrap();
        c.query_row(
            "SELECT length(j.plan), (SELECT length(plan) FROM job_plans WHERE job_id = j.id) FROM jobs j WHERE j.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
        )
        .unwrap()
    }

    /// A job's state and progress updates rewrite its row: the plan is not in it, so a large
    /// plan is not copied per update (it made a 84k-file backup O(files²)).
    #[test]
    fn the_plan_lives_apart_from_the_job_row_and_old_catalogs_move_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let mut catalog = Catalog::open(&path).unwrap();
        let plan = "p".repeat(1 << 20);
        let id = catalog
            .write(|tx| {
                tx.accept_job(
                    &NewJob {
                        kind: JobKind::Backup,
                        label: "l",
                        db_name: "db",
                        plan: &plan,
                        snapshot_timestamp: None,
                        timeout_seconds: 600,
                        process: crate::process::Process::current(),
                        owner: "",
                    },
                    &[],
                )
            })
            .unwrap()
            .unwrap();
        for _ in 0..3 {
            catalog
                .write(|tx| {
                    tx.set_job_state(id, JobState::Uploading)?;
                    tx.set_job_progress(id, 1, "1/2")
                })
                .unwrap();
        }
        assert_eq!(catalog.view().job(id).unwrap().unwrap().plan, plan);
        assert_eq!(job_row_plan_len(&path, id), (0, 1 << 20));
        // A schema 6 catalog (the plan in the row) is moved on open.
        drop(catalog);
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "UPDATE jobs SET plan = (SELECT plan FROM job_plans WHERE job_id = jobs.id);
                 DELETE FROM job_plans;
                 UPDATE meta SET value = '6' WHERE key = 'schema_version';",
            )
            .unwrap();
        }
        assert_eq!(job_row_plan_len(&path, id), (1 << 20, 0));
        let catalog = Catalog::open(&path).unwrap();
        assert_eq!(job_row_plan_len(&path, id), (0, 1 << 20));
        assert_eq!(catalog.view().job(id).unwrap().unwrap().plan, plan);
    }
}
