//! SHOW BACKUP, SHOW RESTORE and CANCEL: jobs as StarRocks shows and stops them.

use std::time::{Duration, Instant};

use crate::catalog::{JobKind, JobRow, JobState};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan::{ObjectAction, Plan};
use crate::results::ResultSet;
use crate::sql::{CancelJob, CancelTarget, CompareOp, Predicate, ShowJobs};

pub const SHOW_BACKUP_COLUMNS: &[&str] = crate::sql::SHOW_BACKUP_COLUMNS;
pub const SHOW_RESTORE_COLUMNS: &[&str] = crate::sql::SHOW_RESTORE_COLUMNS;

/// The objects of a job, as StarRocks' BackupObjs / RestoreObjs columns list them.
fn objects_text(plan: &Plan) -> String {
    let mut items: Vec<String> = Vec::new();
    for o in &plan.objects {
        let mut s = match &o.target {
            Some(t) if t != &o.name => format!("{} AS {t}", o.name),
            _ => o.name.clone(),
        };
        if o.action == ObjectAction::ReplacePartitions
            || (!o.partitions.is_empty()
                && o.kind != crate::plan::ObjectKind::View
                && o.partitions.len() < 8)
        {
            s.push_str(&format!(" ({})", o.partitions.join(", ")));
        }
        items.push(s);
    }
    items.extend(
        plan.functions
            .iter()
            .map(|f| format!("FUNCTION {}", f.signature)),
    );
    items.extend(
        plan.external_catalogs
            .iter()
            .map(|c| format!("CATALOG {}", c.name)),
    );
    format!("[{}]", items.join(", "))
}

fn time(job: &JobRow, state: JobState) -> Option<String> {
    job.time(state).map(str::to_string)
}

fn finished_time(job: &JobRow) -> Option<String> {
    time(job, JobState::Finished).or_else(|| time(job, JobState::Cancelled))
}

/// `LIKE` with `%` and `_`, case-insensitive as StarRocks compares these columns.
fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => {
                t.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(rest, &t[1..])
            }
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

fn matches(rs: &ResultSet, row: &[Option<String>], filter: &[Predicate]) -> bool {
    filter.iter().all(|p| {
        let column = rs
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(&p.column.value));
        let value = column.and_then(|c| row[c].as_deref()).unwrap_or("");
        match p.op {
            CompareOp::Eq => p
                .values
                .iter()
                .any(|v| v.as_str().eq_ignore_ascii_case(value)),
            CompareOp::NotEq => p
                .values
                .iter()
                .all(|v| !v.as_str().eq_ignore_ascii_case(value)),
            CompareOp::In => p
                .values
                .iter()
                .any(|v| v.as_str().eq_ignore_ascii_case(value)),
            CompareOp::Like => p.values.iter().any(|v| like(v.as_str(), value)),
        }
    })
}

/// SHOW BACKUP / SHOW RESTORE: the newest job of each database (of `FROM db`, or of the
/// current database when there is one), as StarRocks keeps only the last job per database.
/// Who may see or cancel a job (the session's privileges; always yes for a local command).
pub type JobFilter<'f> = &'f mut dyn FnMut(&mut Engine, &JobRow) -> Result<bool>;

pub fn show(
    engine: &mut Engine,
    kind: JobKind,
    stmt: &ShowJobs,
    current: Option<&str>,
    allowed: JobFilter<'_>,
) -> Result<ResultSet> {
    let db = stmt
        .database
        .as_ref()
        .map(|d| d.value.clone())
        .or_else(|| current.map(str::to_string));
    let all = engine.catalog().view().jobs(kind, db.as_deref())?;
    let mut newest: Vec<JobRow> = Vec::new();
    for j in all {
        if !newest.iter().any(|n| n.db_name == j.db_name) && allowed(engine, &j)? {
            newest.push(j);
        }
    }
    let columns = if kind == JobKind::Backup {
        SHOW_BACKUP_COLUMNS
    } else {
        SHOW_RESTORE_COLUMNS
    };
    let mut rs = ResultSet::new(columns);
    for j in newest {
        let plan = Plan::header_from_json(&j.plan).ok();
        let objs = plan.as_ref().map(objects_text).unwrap_or_default();
        let row: Vec<Option<String>> = if kind == JobKind::Backup {
            vec![
                Some(j.id.to_string()),
                Some(j.label.clone()),
                Some(j.db_name.clone()),
                Some(j.state.to_string()),
                Some(objs),
                Some(j.created_at.clone()),
                time(&j, JobState::UploadSnapshot),
                time(&j, JobState::SaveMeta),
                finished_time(&j),
                Some(j.unfinished_tasks.to_string()),
                j.progress.clone(),
                j.task_err_msg.clone(),
                Some(j.status.as_str().to_string()),
                Some(j.timeout.to_string()),
            ]
        } else {
            let options = plan.as_ref().map(|p| &p.options);
            vec![
                Some(j.id.to_string()),
                Some(j.label.clone()),
                j.snapshot_timestamp.clone(),
                Some(j.db_name.clone()),
                Some(j.state.to_string()),
                Some(options.is_some_and(|o| o.allow_load()).to_string()),
                Some(
                    options
                        .and_then(|o| o.replication_num)
                        .unwrap_or(1)
                        .to_string(),
                ),
                Some(objs),
                Some(j.created_at.clone()),
                time(&j, JobState::Snapshoting),
                time(&j, JobState::Download),
                time(&j, JobState::Commit),
                finished_time(&j),
                Some(j.unfinished_tasks.to_string()),
                j.progress.clone(),
                j.task_err_msg.clone(),
                Some(j.status.as_str().to_string()),
                Some(j.timeout.to_string()),
            ]
        };
        if matches(&rs, &row, &stmt.filter) {
            rs.push(row);
        }
    }
    Ok(rs)
}

/// CANCEL BACKUP / CANCEL RESTORE: asks the job's process to stop and waits (up to a minute)
/// until it has cleaned up; a job whose process died is cleaned up here.
pub async fn cancel(
    engine: &mut Engine,
    kind: JobKind,
    stmt: &CancelJob,
    current: Option<&str>,
    allowed: JobFilter<'_>,
) -> Result<String> {
    let db = match &stmt.target {
        CancelTarget::Database(d) => d.value.clone(),
        CancelTarget::ExternalCatalog => super::EXTERNAL_CATALOGS.to_string(),
        CancelTarget::Current => current.map(str::to_string).ok_or_else(|| {
            Error::invalid(
                format!("CANCEL {} names no database", kind.keyword()),
                Some("write CANCEL BACKUP FROM db, or USE db first"),
            )
        })?,
    };
    let job = engine
        .catalog()
        .view()
        .unfinished_jobs()?
        .into_iter()
        .rev()
        .find(|j| j.kind == kind && j.db_name == db);
    let Some(job) = job else {
        // Nothing runs there; a database that does not exist at all is an error, as in
        // StarRocks, with the closest name.
        if let CancelTarget::Database(d) = &stmt.target {
            engine.database(d)?;
        }
        let what = if db == super::EXTERNAL_CATALOGS {
            "external catalogs".to_string()
        } else {
            format!("database {db}")
        };
        // Nothing to stop is not an error: CANCEL is idempotent.
        return Ok(format!(
            "Query OK, no {} job is running on {what}",
            kind.keyword()
        ));
    };
    if !allowed(engine, &job)? {
        return Err(Error::Denied {
            message: format!(
                "Access denied; {} job {} ({}) was submitted by {} and cancelling it needs the privileges it needs",
                kind.keyword(),
                job.id,
                job.label,
                if job.owner.is_empty() {
                    "a local command (root)"
                } else {
                    job.owner.as_str()
                }
            ),
        });
    }
    if !job.process.is_alive() {
        super::cancel_interrupted(engine, &job).await?;
        return Ok(format!("Query OK, job {} cancelled", job.id));
    }
    // The job found above, by id: never another one that started meanwhile.
    engine.catalog().write(|tx| tx.request_cancel(job.id))?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(j) = engine.catalog().view().job(job.id)?
            && j.finished
        {
            return Ok(format!(
                "Query OK, job {} {}",
                j.id,
                j.state.as_str().to_lowercase()
            ));
        }
        if !job.process.is_alive() {
            super::cancel_interrupted(engine, &job).await?;
            return Ok(format!("Query OK, job {} cancelled", job.id));
        }
    }
    Ok(format!(
        "Query OK, job {} was asked to stop; SHOW {} shows when it has",
        job.id,
        kind.keyword()
    ))
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_matches_starrocks_patterns() {
        assert!(like("sr_%", "SR_HUB_BACKUP"));
        assert!(like("sr_hub_backu_", "sr_hub_backup"));
        assert!(!like("sr_%x", "sr_hub"));
        assert!(like("%", ""));
    }
}
