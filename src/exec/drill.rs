//! Restore drills (`srbackup drill REPO [LABEL]`, `CREATE SCHEDULE … FOR DRILL ON repo`):
//! evidence that a backup can actually be restored.
//!
//! A drill restores the newest snapshot (of a label, or a given one) into a scratch database
//! of the cluster through the ordinary RESTORE path (plan, job, verified downloads), then:
//! - computes CHECKSUM TABLE of every restored table and async MV and compares it with the
//!   checksum the backup recorded in the manifest (rows and sum; a snapshot made before
//!   checksums were recorded is compared by row count only, and the report says so);
//! - runs every view (`SELECT COUNT(*)`), which proves its definition still plans and reads;
//! - drops the scratch database (unless asked to keep it), and reports the timings: the
//!   restore, the checks, and the RTO (from the drill's start until the data was restored
//!   and verified).
//!
//! The report is a JSON document (`DrillReport`, its shape in docs/json-output.md) and a short
//! human summary. A drill that finds any difference fails (exit 1), with the report.

use std::time::Instant;

use serde::Serialize;

use crate::catalog::ObjectDef;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::repo::SnapshotId;
use crate::sql::{self, Ident, Statement};

use super::progress::Progress;
use super::{StartOptions, run_statement};

/// What a drill found.
#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    pub repository: String,
    pub label: String,
    pub timestamp: String,
    /// The database the snapshot holds.
    pub database: String,
    /// Where it was restored (dropped afterwards unless kept).
    pub scratch_database: String,
    pub kept: bool,
    pub restore_job_id: i64,
    /// When the drill started, UTC.
    pub started_at: String,
    pub restore_seconds: f64,
    pub check_seconds: f64,
    /// Recovery time: from the start of the drill until the data was restored and verified.
    pub rto_seconds: f64,
    pub bytes: u64,
    pub files: u64,
    pub tables: Vec<TableCheck>,
    pub views: Vec<ViewCheck>,
    /// Every table matched and every view ran.
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TableCheck {
    pub name: String,
    /// `table` or `materialized_view`.
    pub kind: &'static str,
    pub rows: u64,
    pub expected_rows: u64,
    pub checksum: String,
    /// `None`: the snapshot recorded no checksum (made before srbackup recorded them); rows
    /// are compared only.
    pub expected_checksum: Option<String>,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ViewCheck {
    pub name: String,
    pub rows: Option<u64>,
    pub error: Option<String>,
    /// Whether it was run: a view that (through other views too) reads tables outside the
    /// snapshot's database is not, since its rows would come from the live cluster rather
    /// than from the backup (`reads_outside` names them).
    pub checked: bool,
    pub reads_outside: Vec<String>,
    pub ok: bool,
}

impl DrillReport {
    /// A few lines for a person.
    pub fn summary(&self) -> String {
        let bad_tables = self.tables.iter().filter(|t| !t.ok).count();
        let bad_views = self.views.iter().filter(|v| !v.ok).count();
        let mut out = format!(
            "drill {} of {}/{} ({}): restored into {} in {:.2} s, checked in {:.2} s, RTO {:.2} s; {} of {} tables match the backup ({} by checksum, {} by row count only), {} of {} views run{}",
            if self.ok { "PASSED" } else { "FAILED" },
            self.label,
            self.timestamp,
            self.database,
            self.scratch_database,
            self.restore_seconds,
            self.check_seconds,
            self.rto_seconds,
            self.tables.len() - bad_tables,
            self.tables.len(),
            self.tables
                .iter()
                .filter(|t| t.expected_checksum.is_some())
                .count(),
            self.tables
                .iter()
                .filter(|t| t.expected_checksum.is_none())
                .count(),
            self.views.iter().filter(|v| v.checked).count() - bad_views,
            self.views.len(),
            if self.kept {
                " (scratch database kept)"
            } else {
                ""
            }
        );
        for t in self.tables.iter().filter(|t| !t.ok) {
            out.push_str(&format!(
                "\n  table {}: {} rows, checksum {}; the backup recorded {} rows, checksum {}",
                t.name,
                t.rows,
                t.checksum,
                t.expected_rows,
                t.expected_checksum.as_deref().unwrap_or("(none)")
            ));
        }
        for v in self.views.iter().filter(|v| !v.ok) {
            out.push_str(&format!(
                "\n  view {}: {}",
                v.name,
                v.error.as_deref().unwrap_or("failed")
            ));
        }
        for v in self.views.iter().filter(|v| !v.checked) {
            out.push_str(&format!(
                "\n  view {} not run: it reads {} outside the snapshot's database (its rows would come from the live cluster, not the backup)",
                v.name,
                v.reads_outside.join(", ")
            ));
        }
        let unrecorded = self
            .tables
            .iter()
            .filter(|t| t.expected_checksum.is_none())
            .count();
        if unrecorded == self.tables.len() && unrecorded > 0 {
            out.push_str(&format!(
                "\n  {unrecorded} tables were compared by row count only: the snapshot predates recorded checksums"
            ));
        }
        out
    }
}

/// What to drill.
pub struct DrillOptions<'a> {
    pub repository: &'a str,
    /// A label: its newest snapshot; `None`: the repository's newest.
    pub label: Option<&'a str>,
    /// A timestamp of the label (with `label`): that snapshot.
    pub timestamp: Option<&'a str>,
    /// Keep the scratch database for inspection.
    pub keep: bool,
}

/// Runs a drill; `Err` only when it could not run at all (no snapshot, the restore failed):
/// differences are in the report (`ok: false`).
pub async fn run(
    engine: &mut Engine,
    options: &DrillOptions<'_>,
    progress: &dyn Progress,
) -> Result<DrillReport> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let repo = crate::repo::registry::open(engine.catalog(), &Ident::new(options.repository))?;
    let (id, manifest) = newest(&repo, options).await?;
    let Some(database) = manifest.database.clone() else {
        return Err(Error::invalid(
            format!("snapshot {id} holds external catalogs only: there are no tables to drill"),
            None,
        ));
    };
    let scratch = scratch_name(engine, &id)?;
    let restore = format!(
        "RESTORE SNAPSHOT {label} FROM {repo} DATABASE {db} AS {scratch} PROPERTIES (\"backup_timestamp\" = {ts})",
        label = sql::QuotedIdent(&id.label),
        repo = sql::QuotedIdent(options.repository),
        db = sql::QuotedIdent(&database),
        scratch = sql::QuotedIdent(&scratch),
        ts = sql::QuotedString(&id.timestamp),
    );
    let stmt = parse_one(&restore)?;
    let restore_started = Instant::now();
    let outcome = run_statement(
        engine,
        &stmt,
        &restore,
        progress,
        StartOptions {
            snapshot_time: None,
            owner: "",
        },
    )
    .await;
    let outcome = match outcome {
        Ok(o) if o.succeeded() => o,
        Ok(o) => {
            let _ = drop_scratch(engine, &scratch);
            return Err(Error::invalid(
                format!("the drill's restore did not finish: {}", o.summary()),
                None,
            ));
        }
        Err(e) => {
            let _ = drop_scratch(engine, &scratch);
            return Err(e);
        }
    };
    let restore_seconds = restore_started.elapsed().as_secs_f64();
    let check_started = Instant::now();
    let mut tables = Vec::new();
    let mut views = Vec::new();
    let recorded_any = manifest.objects.iter().any(|o| o.checksum.is_some());
    for o in &manifest.objects {
        let kind = match &o.definition {
            ObjectDef::Table { .. } => "table",
            ObjectDef::MaterializedView { .. } => "materialized_view",
            ObjectDef::View { .. } => {
                let outside = reads_outside(&manifest, &o.name);
                views.push(if outside.is_empty() {
                    run_view(engine, &scratch, &o.name).await
                } else {
                    ViewCheck {
                        name: o.name.clone(),
                        rows: None,
                        error: None,
                        checked: false,
                        reads_outside: outside,
                        ok: true,
                    }
                });
                continue;
            }
        };
        let expected_rows: u64 = o
            .partitions
            .iter()
            .flat_map(|p| &p.tablets)
            .flat_map(|t| &t.rowsets)
            .filter(|r| r.rollup.is_none())
            .map(|r| r.rows)
            .sum();
        let found = crate::engine::query::checksum(engine, &scratch, &o.name).await;
        let (rows, checksum, error) = match found {
            Ok(c) => (c.rows, c.sum.to_string(), None),
            Err(e) => (0, String::new(), Some(e.to_string())),
        };
        let (expected_rows, expected_checksum) = match o.checksum {
            Some(c) => (c.rows, Some(c.sum.to_string())),
            None => (expected_rows, None),
        };
        // A snapshot records every table's checksum or (made before they were recorded) none:
        // one missing among others is an edited manifest, not an old one.
        let missing = expected_checksum.is_none() && recorded_any;
        let error = error.or_else(|| {
            missing.then(|| {
                "the manifest records other tables' checksums but not this one's".to_string()
            })
        });
        let ok = error.is_none()
            && rows == expected_rows
            && expected_checksum.as_ref().is_none_or(|e| *e == checksum);
        tables.push(TableCheck {
            name: o.name.clone(),
            kind,
            rows,
            expected_rows,
            checksum: error.unwrap_or(checksum),
            expected_checksum,
            ok,
        });
    }
    let check_seconds = check_started.elapsed().as_secs_f64();
    let rto_seconds = started.elapsed().as_secs_f64();
    // Kept when asked, or when the drop failed (the report must not say it is gone).
    let kept = options.keep || !drop_scratch(engine, &scratch);
    let ok = tables.iter().all(|t| t.ok) && views.iter().all(|v| v.ok);
    Ok(DrillReport {
        repository: options.repository.to_string(),
        label: id.label,
        timestamp: id.timestamp,
        database,
        scratch_database: scratch,
        kept,
        restore_job_id: outcome.job_id,
        started_at,
        restore_seconds,
        check_seconds,
        rto_seconds,
        bytes: outcome.bytes,
        files: outcome.files,
        tables,
        views,
        ok,
    })
}

/// The snapshot to drill: the given one, or the newest (of the label).
async fn newest(
    repo: &crate::repo::Repository,
    options: &DrillOptions<'_>,
) -> Result<(SnapshotId, std::sync::Arc<crate::repo::Manifest>)> {
    let mut best: Option<(SnapshotId, std::sync::Arc<crate::repo::Manifest>)> = None;
    for listing in repo.list_snapshots().await? {
        if options.label.is_some_and(|l| l != listing.label) {
            continue;
        }
        for (timestamp, manifest) in listing.snapshots {
            if options.timestamp.is_some_and(|t| t != timestamp) {
                continue;
            }
            // A snapshot that cannot be read is not the newest good one; the drill of it would
            // fail anyway, and `verify` reports it.
            let Ok(m) = manifest else { continue };
            // A snapshot of external catalogs only has no tables to drill: the newest one that
            // has is the one meant, unless that snapshot was asked for by name and time.
            if m.database.is_none() && options.timestamp.is_none() {
                continue;
            }
            let newer = best.as_ref().is_none_or(|(b, _)| {
                (timestamp.as_str(), listing.label.as_str())
                    > (b.timestamp.as_str(), b.label.as_str())
            });
            if newer {
                best = Some((
                    SnapshotId {
                        label: listing.label.clone(),
                        timestamp: timestamp.clone(),
                    },
                    m,
                ));
            }
        }
    }
    best.ok_or_else(|| {
        Error::invalid(
            match (options.label, options.timestamp) {
                (Some(l), Some(t)) => format!(
                    "repository {} has no readable snapshot {l} at {t}",
                    options.repository
                ),
                (Some(l), None) => format!(
                    "repository {} has no readable snapshot labelled {l}",
                    options.repository
                ),
                _ => format!("repository {} has no readable snapshot", options.repository),
            },
            Some("SHOW SNAPSHOT ON <repository> lists what it holds"),
        )
    })
}

/// `srbackup_drill_<label>_<digits of the timestamp>`, with a number added if taken.
fn scratch_name(engine: &mut Engine, id: &SnapshotId) -> Result<String> {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    };
    let digits: String = id.timestamp.chars().filter(char::is_ascii_digit).collect();
    // A random part keeps drills started at the same moment apart.
    let base = format!(
        "srbackup_drill_{}_{digits}_{:04x}",
        clean(&id.label),
        rand::random::<u16>()
    );
    let base: String = base.chars().take(200).collect();
    let view = engine.catalog().view();
    for n in 0..1000 {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}_{n}")
        };
        if view.database(&name)?.is_none() {
            return Ok(name);
        }
    }
    Err(Error::invalid(
        format!("1000 scratch databases named {base}… exist: drop old drills' databases"),
        None,
    ))
}

/// The tables outside the snapshot's database that view `name` reads, through the views of the
/// snapshot it reads too (its unqualified names resolve in its own database, as everywhere).
const SAME_DATABASE: &str = "\u{0}the view's own database";

fn reads_outside(manifest: &crate::repo::Manifest, name: &str) -> Vec<String> {
    let view_sql = |n: &str| {
        manifest.objects.iter().find_map(|o| match &o.definition {
            ObjectDef::View { sql, .. } if o.name == n => Some(sql.clone()),
            _ => None,
        })
    };
    let mut outside = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![name.to_string()];
    while let Some(view) = stack.pop() {
        if !seen.insert(view.clone()) || seen.len() > 256 {
            continue;
        }
        let Some(sql) = view_sql(&view) else { continue };
        // Unqualified names resolve in the view's own database, which after the restore is the
        // scratch one; a name qualified with any database, the snapshot's own included, still
        // reads that database's live tables. A placeholder that no database can be named tells
        // the two apart.
        let Ok(refs) = crate::engine::query::referenced_tables(&sql, Some(SAME_DATABASE)) else {
            continue; // a view that does not parse fails when it runs
        };
        for (db, table) in refs {
            if db != SAME_DATABASE {
                outside.insert(format!("{db}.{table}"));
            } else if view_sql(&table).is_some() {
                stack.push(table);
            }
        }
    }
    outside.into_iter().collect()
}

async fn run_view(engine: &mut Engine, db: &str, name: &str) -> ViewCheck {
    let sql = format!(
        "SELECT COUNT(*) FROM {}.{}",
        sql::QuotedIdent(db),
        sql::QuotedIdent(name)
    );
    match crate::engine::query::collect(engine, &sql, Some(db)).await {
        Ok((_, batches)) => {
            let rows = batches.first().and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Int64Array>()
                    .map(|a| a.value(0) as u64)
            });
            ViewCheck {
                name: name.to_string(),
                rows,
                error: None,
                checked: true,
                reads_outside: Vec::new(),
                ok: true,
            }
        }
        Err(e) => ViewCheck {
            name: name.to_string(),
            rows: None,
            error: Some(e.to_string()),
            checked: true,
            reads_outside: Vec::new(),
            ok: false,
        },
    }
}

/// Drops the scratch database; whether it is gone.
fn drop_scratch(engine: &mut Engine, scratch: &str) -> bool {
    let text = format!(
        "DROP DATABASE IF EXISTS {} FORCE",
        sql::QuotedIdent(scratch)
    );
    match parse_one(&text) {
        Ok(Statement::DropDatabase(stmt)) => match crate::engine::ddl::drop_database(engine, &stmt)
        {
            Ok(_) => true,
            Err(e) => {
                crate::errln!("drill: cannot drop the scratch database {scratch}: {e}");
                false
            }
        },
        _ => false,
    }
}

fn parse_one(text: &str) -> Result<Statement> {
    let mut statements = sql::parse(text)
        .map_err(|e| Error::invalid(format!("internal statement does not parse: {e}"), None))?;
    if statements.len() != 1 {
        return Err(Error::invalid(
            "internal statement is not one statement",
            None,
        ));
    }
    Ok(statements.remove(0))
}

/// A scheduled drill (`CREATE SCHEDULE … FOR DRILL ON repo [SNAPSHOT label]`): its statement
/// text is read back through the grammar, run on a cluster connection of its own; the run's
/// message is the summary, and its job the drill's RESTORE job.
pub async fn run_scheduled(
    cluster: &std::path::Path,
    command: &str,
) -> (std::result::Result<String, String>, Option<i64>) {
    match scheduled(cluster, command).await {
        Ok(report) if report.ok => (Ok(report.summary()), Some(report.restore_job_id)),
        Ok(report) => (Err(report.summary()), Some(report.restore_job_id)),
        Err(why) => (Err(why), None),
    }
}

async fn scheduled(
    cluster: &std::path::Path,
    command: &str,
) -> std::result::Result<DrillReport, String> {
    let Some(Statement::CreateSchedule(s)) = sql::schedule_of_command(command) else {
        return Err(format!("not a drill: {command}"));
    };
    let sql::ScheduledJob::Drill {
        repository,
        snapshot,
    } = s.job
    else {
        return Err(format!("not a drill: {command}"));
    };
    let mut engine = Engine::open(cluster).map_err(|e| e.to_string())?;
    let options = DrillOptions {
        repository: &repository.value,
        label: snapshot.as_ref().map(|l| l.value.as_str()),
        timestamp: None,
        keep: false,
    };
    run(&mut engine, &options, &super::progress::Silent)
        .await
        .map_err(|e| sql::mask_secrets(&e.to_string()))
}
