//! CREATE SCHEDULE, SHOW SCHEDULES, PAUSE/RESUME/DROP SCHEDULE (CockroachDB's statements, for
//! srbackup's jobs). A schedule is checked whole when it is created (its recurrence, its
//! retention policy, its repository, and the backup planned once against the catalog), so a
//! schedule that can never run is refused then, not discovered at 1 a.m. Running them is the
//! server's scheduler (`server::scheduler`).

use chrono::{DateTime, Utc};

use crate::catalog::NewSchedule;
use crate::code::Code;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::repo::registry::unknown_repository;
use crate::repo::retention::Policy;
use crate::sql::{AlterSchedule, CreateSchedule, Problem, ScheduleAction, ScheduledJob, Statement};

use super::{Output, ResultSet, done, privileges::Identity};

pub const SHOW_SCHEDULES_COLUMNS: &[&str] = &[
    "Id",
    "Name",
    "Kind",
    "State",
    "Recurrence",
    "NextRun",
    "Retention",
    "LastRun",
    "LastRunState",
    "LastJobId",
    "Owner",
    "CreateTime",
    "Command",
];

/// The schedules' clock: the system's, or (builds with `faults`, for tests) the time written in
/// the file `SRBACKUP_SCHEDULER_CLOCK` names (`yyyy-MM-dd HH:mm:ss`, UTC). CREATE and RESUME
/// SCHEDULE compute the next run by it, and the server's scheduler fires by it.
pub fn clock_now() -> DateTime<Utc> {
    #[cfg(feature = "faults")]
    if let Some(path) = std::env::var_os("SRBACKUP_SCHEDULER_CLOCK")
        && let Ok(text) = std::fs::read_to_string(path)
        && let Some(t) = parse_time(text.trim())
    {
        return t;
    }
    Utc::now()
}

/// The catalog's time format (UTC).
pub fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// When a schedule with `recurrence` fires next after `now` (strictly after).
pub fn next_after(recurrence: &str, now: DateTime<Utc>) -> std::result::Result<String, String> {
    let cron = crate::sql::recurrence(recurrence)?;
    cron.find_next_occurrence(&now, false)
        .map(time_text)
        .map_err(|e| e.to_string())
}

/// The text a run executes: the job statement in canonical SQL.
pub fn command_of(job: &ScheduledJob) -> String {
    match job {
        ScheduledJob::Backup(b) => b.to_string(),
        ScheduledJob::Drill {
            repository,
            snapshot,
        } => match snapshot {
            Some(label) => format!("DRILL ON {repository} SNAPSHOT {label}"),
            None => format!("DRILL ON {repository}"),
        },
    }
}

pub async fn create(
    engine: &mut Engine,
    stmt: &CreateSchedule,
    identity: Option<&Identity>,
) -> Result<Output> {
    let name = &stmt.name.value;
    if engine.catalog().view().schedule(name)?.is_some() {
        if stmt.if_not_exists {
            return Ok(done(
                "Query OK, 0 rows affected (the schedule already exists)",
            ));
        }
        return Err(Error::at(
            Problem::new(
                Code::ScheduleExists,
                stmt.name.span,
                format!("schedule {name} already exists"),
            )
            .label("taken")
            .help("DROP SCHEDULE it first, or pick another name"),
        ));
    }
    let retention = match (&stmt.retention, &stmt.job) {
        (None, _) => None,
        (Some(r), ScheduledJob::Drill { .. }) => {
            return Err(Error::at(
                Problem::new(
                    Code::ScheduleInvalid,
                    r.span,
                    "a drill forgets nothing: WITH RETENTION belongs to a backup schedule",
                )
                .label("not for a drill"),
            ));
        }
        (Some(r), ScheduledJob::Backup(b)) if b.database.is_none() => {
            return Err(Error::at(
                Problem::new(
                    Code::ScheduleInvalid,
                    r.span,
                    "a backup of external catalogs only has no database to apply retention to",
                )
                .label("no database")
                .help("give retention to database backups (forget REPO --label L applies rules to any label)"),
            ));
        }
        (Some(r), ScheduledJob::Backup(_)) => {
            let policy: Policy = r.value.parse().map_err(|why: String| {
                Error::at(
                    Problem::new(
                        Code::ScheduleInvalid,
                        r.span,
                        format!("not a retention policy: {why}"),
                    )
                    .label("this policy")
                    .help("rules such as 'keep-last=3, keep-daily=7, keep-weekly=4' (restic's forget rules)"),
                )
            })?;
            if policy.is_empty() {
                return Err(Error::at(
                    Problem::new(
                        Code::ScheduleInvalid,
                        r.span,
                        "a retention policy with no rule would keep nothing",
                    )
                    .label("no rule")
                    .help("give at least one rule, such as 'keep-daily=7'"),
                ));
            }
            Some(policy.to_string())
        }
    };
    let (kind, repository) = match &stmt.job {
        ScheduledJob::Backup(b) => ("BACKUP", &b.repository),
        ScheduledJob::Drill { repository, .. } => ("DRILL", repository),
    };
    if engine
        .catalog()
        .view()
        .repository(&repository.value)?
        .is_none()
    {
        return Err(unknown_repository(engine.catalog(), repository).into());
    }
    let command = command_of(&stmt.job);
    if let ScheduledJob::Backup(b) = &stmt.job {
        // Planned once now, so that a schedule naming what is not there is refused today.
        crate::plan::plan(engine, &Statement::Backup((**b).clone()), &command).await?;
    }
    let next_run = next_after(&stmt.recurrence.value, clock_now()).map_err(|why| {
        Error::at(Problem::new(
            Code::ScheduleInvalid,
            stmt.recurrence.span,
            format!("not a crontab: {why}"),
        ))
    })?;
    let (user, host) = identity
        .map(|i| (i.user.clone(), i.host.clone()))
        .unwrap_or_default();
    let created = engine.catalog().write(|tx| {
        tx.create_schedule(&NewSchedule {
            name,
            kind,
            command: &command,
            recurrence: &stmt.recurrence.value,
            retention: retention.as_deref(),
            owner_user: &user,
            owner_host: &host,
            next_run: &next_run,
        })
    })?;
    Ok(done(if created {
        format!("Query OK, 0 rows affected (schedule {name} first runs at {next_run} UTC)")
    } else {
        "Query OK, 0 rows affected (the schedule already exists)".to_string()
    }))
}

/// Whether `identity` may see, pause, resume or drop a schedule: its owner, root, or a user
/// who could have created it (holds what it needs), as for jobs.
pub fn may_manage(
    engine: &mut Engine,
    identity: Option<&Identity>,
    row: &crate::catalog::ScheduleRow,
) -> Result<bool> {
    if identity.is_none() {
        return Ok(true);
    }
    let owner = if row.owner_user.is_empty() {
        String::new()
    } else {
        Identity::new(&row.owner_user, &row.owner_host).quoted()
    };
    let stmt = crate::sql::schedule_of_command(&row.command);
    // A statement naming what is gone needs what cannot be resolved: only its owner and root.
    Ok(super::privileges::may_manage_job(engine, identity, &owner, stmt.as_ref()).unwrap_or(false))
}

pub fn alter(
    engine: &mut Engine,
    stmt: &AlterSchedule,
    identity: Option<&Identity>,
) -> Result<Output> {
    let name = &stmt.name.value;
    let row = engine.catalog().view().schedule(name)?;
    // Another user's schedule is as good as absent (SHOW SCHEDULES does not list it).
    let row = match row {
        Some(r) if may_manage(engine, identity, &r)? => Some(r),
        _ => None,
    };
    let Some(row) = row else {
        if stmt.action == (ScheduleAction::Drop { if_exists: true }) {
            return Ok(done("Query OK, 0 rows affected (no such schedule)"));
        }
        return Err(unknown_schedule(engine, stmt, identity.is_some()));
    };
    let changed = match stmt.action {
        ScheduleAction::Drop { .. } => engine.catalog().write(|tx| tx.drop_schedule(name))?,
        ScheduleAction::Pause => engine
            .catalog()
            .write(|tx| tx.set_schedule_state(name, "PAUSED", None))?,
        ScheduleAction::Resume => {
            if row.state == "ACTIVE" {
                return Ok(done(format!(
                    "Query OK, 0 rows affected (schedule {name} is already active)"
                )));
            }
            // Runs missed while paused are not made up: the next one is the next after now.
            let next = next_after(&row.recurrence, clock_now())
                .map_err(|why| Error::invalid(format!("schedule {name}: {why}"), None))?;
            engine
                .catalog()
                .write(|tx| tx.set_schedule_state(name, "ACTIVE", Some(&next)))?
        }
    };
    if !changed {
        return Err(unknown_schedule(engine, stmt, identity.is_some()));
    }
    Ok(done("Query OK, 0 rows affected"))
}

fn unknown_schedule(engine: &mut Engine, stmt: &AlterSchedule, remote: bool) -> Error {
    // A remote user gets no "did you mean": it could name a schedule they may not see.
    let names: Vec<String> = if remote {
        Vec::new()
    } else {
        engine
            .catalog()
            .view()
            .schedules()
            .map(|rows| rows.into_iter().map(|r| r.name).collect())
            .unwrap_or_default()
    };
    let mut p = Problem::new(
        Code::ScheduleUnknown,
        stmt.name.span,
        format!("schedule {} does not exist", stmt.name.value),
    )
    .label("unknown schedule");
    if let Some(near) = crate::sql::closest(&stmt.name.value, names.iter().map(String::as_str)) {
        p = p.help(format!("did you mean {near}?"));
    } else {
        p = p.help("SHOW SCHEDULES lists them");
    }
    Error::at(p)
}

pub fn show(engine: &mut Engine, identity: Option<&Identity>) -> Result<ResultSet> {
    let (schedules, runs) = engine
        .catalog()
        .read(|r| Ok::<_, Error>((r.schedules()?, r.schedule_runs(None)?)))?;
    let mut rs = ResultSet::new(SHOW_SCHEDULES_COLUMNS);
    for s in schedules {
        if !may_manage(engine, identity, &s)? {
            continue;
        }
        let last = runs.iter().find(|r| r.schedule_id == s.id);
        let owner = if s.owner_user.is_empty() {
            "'root'@'localhost'".to_string()
        } else {
            Identity::new(&s.owner_user, &s.owner_host).quoted()
        };
        rs.push(vec![
            Some(s.id.to_string()),
            Some(s.name),
            Some(s.kind),
            Some(s.state),
            Some(s.recurrence),
            s.next_run,
            s.retention,
            last.map(|r| r.started_at.clone()),
            last.map(|r| r.state.as_str().to_string()),
            last.and_then(|r| r.job_id).map(|j| j.to_string()),
            Some(owner),
            Some(s.created_at),
            Some(s.command),
        ]);
    }
    Ok(rs)
}
