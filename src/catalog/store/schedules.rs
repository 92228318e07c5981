//! Schedules (`CREATE SCHEDULE`) and their runs. A schedule is a job statement (its canonical
//! text), a recurrence and, for backups, a retention policy; the scheduler fires it when
//! `next_run` has come. Firing claims a run and moves `next_run` on in one transaction, so a
//! run is never started twice, and a run that was claimed but never got its job (the process
//! died in between) is found and closed as FAILED.

use rusqlite::{OptionalExtension, params};

use super::{Reader, Result, Tx, now};

/// A schedule as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRow {
    pub id: i64,
    pub name: String,
    /// `BACKUP` or `DRILL`.
    pub kind: String,
    /// The statement each run executes, in canonical SQL.
    pub command: String,
    pub recurrence: String,
    pub retention: Option<String>,
    /// The account that created it (empty user: a command on this machine, root).
    pub owner_user: String,
    pub owner_host: String,
    /// `ACTIVE` or `PAUSED`.
    pub state: String,
    /// When it fires next, `yyyy-MM-dd HH:mm:ss` UTC (none while paused).
    pub next_run: Option<String>,
    pub created_at: String,
}

/// What `CREATE SCHEDULE` records.
pub struct NewSchedule<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub command: &'a str,
    pub recurrence: &'a str,
    pub retention: Option<&'a str>,
    pub owner_user: &'a str,
    pub owner_host: &'a str,
    pub next_run: &'a str,
}

/// The states of a run, as StarRocks' `information_schema.task_runs` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Success,
    Failed,
    Skipped,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "RUNNING",
            RunState::Success => "SUCCESS",
            RunState::Failed => "FAILED",
            RunState::Skipped => "SKIPPED",
        }
    }
    fn parse(text: &str) -> Option<RunState> {
        [
            RunState::Running,
            RunState::Success,
            RunState::Failed,
            RunState::Skipped,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One run of a schedule: fired at `started_at` for the time `scheduled_for`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRunRow {
    pub id: i64,
    pub schedule_id: i64,
    pub schedule_name: String,
    pub command: String,
    pub scheduled_for: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The BACKUP job (or the drill's RESTORE job) it started, once accepted.
    pub job_id: Option<i64>,
    pub state: RunState,
    pub message: Option<String>,
}

const SCHEDULE_COLUMNS: &str = "id, name, kind, command, recurrence, retention, owner_user, \
     owner_host, state, next_run, created_at";
const RUN_COLUMNS: &str = "id, schedule_id, schedule_name, command, scheduled_for, started_at, \
     finished_at, job_id, state, message";

fn schedule_from_row(r: &rusqlite::Row) -> rusqlite::Result<ScheduleRow> {
    Ok(ScheduleRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        command: r.get(3)?,
        recurrence: r.get(4)?,
        retention: r.get(5)?,
        owner_user: r.get(6)?,
        owner_host: r.get(7)?,
        state: r.get(8)?,
        next_run: r.get(9)?,
        created_at: r.get(10)?,
    })
}

fn run_from_row(r: &rusqlite::Row) -> rusqlite::Result<ScheduleRunRow> {
    let state: String = r.get(8)?;
    Ok(ScheduleRunRow {
        id: r.get(0)?,
        schedule_id: r.get(1)?,
        schedule_name: r.get(2)?,
        command: r.get(3)?,
        scheduled_for: r.get(4)?,
        started_at: r.get(5)?,
        finished_at: r.get(6)?,
        job_id: r.get(7)?,
        state: RunState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                8,
                rusqlite::types::Type::Text,
                format!("unknown run state {state:?}").into(),
            )
        })?,
        message: r.get(9)?,
    })
}

impl Reader<'_> {
    /// Every schedule, by name.
    pub fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name"
            ))?;
            stmt.query_map([], schedule_from_row)?.collect()
        })
    }

    pub fn schedule(&self, name: &str) -> Result<Option<ScheduleRow>> {
        self.run(|c| {
            c.query_row(
                &format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE name = ?1"),
                [name],
                schedule_from_row,
            )
            .optional()
        })
    }

    /// Every run, newest first (`schedule`: of that schedule id only).
    pub fn schedule_runs(&self, schedule: Option<i64>) -> Result<Vec<ScheduleRunRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE ?1 IS NULL OR schedule_id = ?1 ORDER BY id DESC"
            ))?;
            stmt.query_map([schedule], run_from_row)?.collect()
        })
    }

    /// Runs still RUNNING, oldest first.
    pub fn open_schedule_runs(&self) -> Result<Vec<ScheduleRunRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE state = 'RUNNING' ORDER BY id"
            ))?;
            stmt.query_map([], run_from_row)?.collect()
        })
    }

    /// The run that started job `job_id`, if a schedule started it.
    pub fn run_of_job(&self, job_id: i64) -> Result<Option<ScheduleRunRow>> {
        self.run(|c| {
            c.query_row(
                &format!("SELECT {RUN_COLUMNS} FROM schedule_runs WHERE job_id = ?1"),
                [job_id],
                run_from_row,
            )
            .optional()
        })
    }
}

impl Reader<'_> {
    /// A rowset's checksum (rows, sum) read with the schema `schema_key` names, if known.
    pub fn rowset_checksum(&self, sha256: &str, schema_key: &str) -> Result<Option<(u64, u64)>> {
        self.run(|c| {
            c.query_row(
                "SELECT rows, sum FROM rowset_checksums WHERE sha256 = ?1 AND schema_key = ?2",
                [sha256, schema_key],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
        })
    }
}

impl Tx<'_> {
    /// Remembers a rowset's checksum (the sum's bits stored as SQLite's signed integer).
    pub fn save_rowset_checksum(
        &self,
        sha256: &str,
        schema_key: &str,
        rows: u64,
        sum: u64,
    ) -> Result<()> {
        self.run(|c| {
            c.execute(
                "INSERT OR REPLACE INTO rowset_checksums (sha256, schema_key, rows, sum) VALUES (?1, ?2, ?3, ?4)",
                params![sha256, schema_key, rows as i64, sum as i64],
            )?;
            Ok(())
        })
    }

    /// Records a new ACTIVE schedule; `false` if one of that name exists.
    pub fn create_schedule(&self, s: &NewSchedule<'_>) -> Result<bool> {
        self.run(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO schedules (name, kind, command, recurrence, retention, owner_user, owner_host, state, next_run, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'ACTIVE', ?8, ?9)",
                params![
                    s.name,
                    s.kind,
                    s.command,
                    s.recurrence,
                    s.retention,
                    s.owner_user,
                    s.owner_host,
                    s.next_run,
                    now()
                ],
            )?;
            Ok(n == 1)
        })
    }

    /// Sets a schedule's state and next run (`None` while paused); `false` if it is gone.
    pub fn set_schedule_state(
        &self,
        name: &str,
        state: &str,
        next_run: Option<&str>,
    ) -> Result<bool> {
        self.run(|c| {
            Ok(c.execute(
                "UPDATE schedules SET state = ?2, next_run = ?3 WHERE name = ?1",
                params![name, state, next_run],
            )? == 1)
        })
    }

    /// Drops a schedule (its runs stay in the history); `false` if there was none.
    pub fn drop_schedule(&self, name: &str) -> Result<bool> {
        self.run(|c| Ok(c.execute("DELETE FROM schedules WHERE name = ?1", [name])? == 1))
    }

    /// Claims the run of schedule `id` due at `due` (the `next_run` the caller read): moves
    /// `next_run` to `next` and records the run as `state` in one statement pair. `None` if the
    /// schedule changed meanwhile (dropped, paused, or already fired by someone else).
    pub fn claim_schedule_run(
        &self,
        id: i64,
        due: &str,
        next: &str,
        started_at: &str,
        state: RunState,
        message: Option<&str>,
    ) -> Result<Option<i64>> {
        self.run(|c| {
            let moved = c.execute(
                "UPDATE schedules SET next_run = ?3 WHERE id = ?1 AND next_run = ?2 AND state = 'ACTIVE'",
                params![id, due, next],
            )?;
            if moved != 1 {
                return Ok(None);
            }
            let finished = (state != RunState::Running).then_some(started_at);
            c.execute(
                "INSERT INTO schedule_runs (schedule_id, schedule_name, command, scheduled_for, started_at, finished_at, state, message)
                 SELECT id, name, command, ?2, ?3, ?4, ?5, ?6 FROM schedules WHERE id = ?1",
                params![id, due, started_at, finished, state.as_str(), message],
            )?;
            Ok(Some(c.last_insert_rowid()))
        })
    }

    /// Brings an ACTIVE schedule's next run forward to `at` (a deferred run's retry), if that is
    /// sooner than the one it has.
    pub fn retry_schedule_at(&self, id: i64, at: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE schedules SET next_run = ?2 WHERE id = ?1 AND state = 'ACTIVE' AND next_run > ?2",
                params![id, at],
            )?;
            Ok(())
        })
    }

    /// Names the job a claimed run started.
    pub fn set_run_job(&self, run: i64, job_id: i64) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE schedule_runs SET job_id = ?2 WHERE id = ?1",
                params![run, job_id],
            )?;
            Ok(())
        })
    }

    /// Ends a run.
    pub fn finish_run(
        &self,
        run: i64,
        state: RunState,
        message: Option<&str>,
        finished_at: &str,
    ) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE schedule_runs SET state = ?2, message = ?3, finished_at = ?4 WHERE id = ?1",
                params![run, state.as_str(), message, finished_at],
            )?;
            Ok(())
        })
    }
}
