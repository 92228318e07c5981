//! CREATE/DROP/SHOW REPOSITORY, SHOW SNAPSHOT and DROP SNAPSHOT.
//!
//! The catalog keeps each repository's statement (name, location, properties); every use
//! resolves it again into a backend and opens it, so a repository created by one srbackup
//! version is read by the next. Failures reaching a repository are recorded in its `ErrMsg`.

use crate::catalog::ObjectDef;
use crate::code::Code;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::repo::registry::{lease_holder, open, unknown_repository};
use crate::repo::{self, Manifest, RepoError, Repository};
use crate::sql::{CreateRepository, DropRepository, DropSnapshot, Problem, ShowSnapshot};

use super::{Output, ResultSet, done};

pub const SHOW_REPOSITORIES_COLUMNS: &[&str] = &[
    "RepoId",
    "RepoName",
    "CreateTime",
    "IsReadOnly",
    "Location",
    "Broker",
    "ErrMsg",
];
pub const SHOW_SNAPSHOT_COLUMNS: &[&str] = &["Snapshot", "Timestamp", "Status"];
pub const SHOW_SNAPSHOT_DETAIL_COLUMNS: &[&str] =
    &["Snapshot", "Timestamp", "Database", "Details", "Status"];

/// Records the outcome of using a repository in its ErrMsg (best effort: the real error is
/// what the user sees).
fn record<T>(engine: &mut Engine, name: &str, result: &std::result::Result<T, RepoError>) {
    let message = result.as_ref().err().map(|e| e.to_string());
    let _ = engine
        .catalog()
        .write(|tx| tx.set_repository_error(name, message.as_deref()));
}

pub async fn create(
    engine: &mut Engine,
    stmt: &CreateRepository,
    paths: &crate::config::PathPolicy,
) -> Result<Output> {
    let config = repo::resolve(stmt).map_err(Error::At)?;
    if let repo::Backend::Local { path } = &config.backend
        && let Err(refused) = paths.check_location(std::path::Path::new(path))
    {
        return Err(Error::at(
            Problem::new(Code::PathNotAllowed, stmt.location.span, refused.to_string())
                .label("not allowed")
                .help(
                    "a server creates local repositories only inside the directories allowed_paths lists in the cluster's srbackup.conf",
                ),
        ));
    }
    // A server's user names a key file only inside allowed_paths (judged on the file opened,
    // as FILES() is): the key check the repository records would otherwise let them test
    // guesses at any file the server can read.
    if let Some(repo::Encryption::KeyFile { path }) = &config.encryption
        && matches!(paths, crate::config::PathPolicy::Within { .. })
        && let Err(refused) = paths.open(std::path::Path::new(path))
    {
        let span = stmt
            .properties
            .iter()
            .find(|p| p.key.value.eq_ignore_ascii_case("encryption.key_file"))
            .map_or(stmt.span, |p| p.value.span);
        return Err(Error::at(
            Problem::new(Code::PathNotAllowed, span, refused.to_string())
                .label("not allowed")
                .help(
                    "a server reads key files only inside the directories allowed_paths lists in the cluster's srbackup.conf",
                ),
        ));
    }
    let taken = engine.catalog().view().repository(&stmt.name.value)?;
    if taken.is_some() {
        return Err(Error::at(
            Problem::new(
                Code::RepoExists,
                stmt.name.span,
                format!("repository {} already exists", stmt.name.value),
            )
            .label("name taken")
            .help("DROP REPOSITORY it first (its data stays), or choose another name"),
        ));
    }
    let repository = Repository::open(&config)?;
    let existed = repository.check().await?;
    let snapshots = if existed {
        repository.list_snapshots().await?.len()
    } else {
        0
    };
    let properties: Vec<(String, String)> = stmt
        .properties
        .0
        .iter()
        .map(|p| (p.key.value.clone(), p.value.value.clone()))
        .collect();
    engine.catalog().write(|tx| {
        tx.insert_repository(
            &config.name,
            config.read_only,
            &config.location,
            config.broker.as_deref(),
            &properties,
        )
    })?;
    Ok(done(if existed {
        format!(
            "Query OK, attached to the existing repository at {} ({snapshots} snapshot labels)",
            config.location
        )
    } else {
        format!("Query OK, created a new repository at {}", config.location)
    }))
}

pub fn drop(engine: &mut Engine, stmt: &DropRepository) -> Result<Output> {
    let name = &stmt.name.value;
    let gone = engine.catalog().try_write(|tx| -> Result<usize> {
        // An unfinished job (running, or interrupted and waiting for resume or CANCEL) still
        // reads or writes the repository: dropping (and perhaps re-creating) the name under it
        // would strand the job.
        for job in tx.unfinished_jobs()? {
            let uses = crate::plan::Plan::header_from_json(&job.plan)
                .map(|p| p.repository.name == *name)
                .unwrap_or(false);
            if uses {
                let kind = job.kind.keyword();
                return Err(Error::at(
                    Problem::new(
                        crate::code::Code::RepoInUse,
                        stmt.name.span,
                        format!(
                            "repository {name} is used by {kind} job {} ({}), which has not finished",
                            job.id, job.label
                        ),
                    )
                    .label("in use")
                    .help(format!(
                        "wait for it (SHOW {kind} FROM {db}), or stop it with CANCEL {kind} FROM {db}; then drop the repository",
                        db = job.db_name
                    )),
                ));
            }
        }
        Ok(tx.delete_repository(name)?)
    })?;
    if gone == 0 {
        return Err(unknown_repository(engine.catalog(), &stmt.name).into());
    }
    Ok(done(
        "Query OK, the repository's mapping is removed; its data stays where it is",
    ))
}

pub fn show(engine: &mut Engine) -> Result<ResultSet> {
    let rows = engine.catalog().view().repositories()?;
    let mut rs = ResultSet::new(SHOW_REPOSITORIES_COLUMNS);
    for r in rows {
        rs.push(vec![
            Some(r.id.to_string()),
            Some(r.name),
            Some(r.created_at),
            Some(r.read_only.to_string()),
            Some(crate::sql::mask_userinfo(&r.location)),
            Some(r.broker.unwrap_or_default()),
            Some(r.err_msg.unwrap_or_default()),
        ]);
    }
    Ok(rs)
}

pub async fn show_snapshots(engine: &mut Engine, stmt: &ShowSnapshot) -> Result<ResultSet> {
    let repository = open(engine.catalog(), &stmt.repository)?;
    let listed = repository.list_snapshots().await;
    record(engine, &repository.name, &listed);
    let wanted =
        |label: &str| stmt.snapshots.is_empty() || stmt.snapshots.iter().any(|s| s.value == label);
    let timestamp_ok = |ts: &str| stmt.timestamp.as_ref().is_none_or(|t| t.value == ts);
    let listed: Vec<_> = listed?.into_iter().filter(|l| wanted(&l.label)).collect();
    if !stmt.snapshots.is_empty() && stmt.timestamp.is_some() {
        let mut rs = ResultSet::new(SHOW_SNAPSHOT_DETAIL_COLUMNS);
        for l in &listed {
            for (ts, m) in l.snapshots.iter().filter(|(ts, _)| timestamp_ok(ts)) {
                let (database, details, status) = match m {
                    Ok(m) => (
                        m.database.clone().unwrap_or_default(),
                        details(m),
                        "OK".to_string(),
                    ),
                    Err(reason) => (String::new(), String::new(), format!("ERROR: {reason}")),
                };
                rs.push(vec![
                    Some(l.label.clone()),
                    Some(ts.clone()),
                    Some(database),
                    Some(details),
                    Some(status),
                ]);
            }
        }
        return Ok(rs);
    }
    let mut rs = ResultSet::new(SHOW_SNAPSHOT_COLUMNS);
    for l in &listed {
        let snapshots: Vec<_> = l
            .snapshots
            .iter()
            .filter(|(ts, _)| timestamp_ok(ts))
            .collect();
        if snapshots.is_empty() {
            continue;
        }
        let timestamps: Vec<&str> = snapshots.iter().map(|(ts, _)| ts.as_str()).collect();
        let errors: Vec<String> = snapshots
            .iter()
            .filter_map(|(ts, m)| m.as_ref().err().map(|e| format!("{ts}: {e}")))
            .collect();
        let status = if errors.is_empty() {
            "OK".to_string()
        } else {
            format!("ERROR: {}", errors.join("; "))
        };
        rs.push(vec![
            Some(l.label.clone()),
            Some(timestamps.join("\n")),
            Some(status),
        ]);
    }
    Ok(rs)
}

/// What a snapshot holds, as JSON (StarRocks' `Details` column): objects by kind, the
/// partitions of each table, functions, catalogs, and the size.
fn details(m: &Manifest) -> String {
    let mut tables = serde_json::Map::new();
    let mut mvs = Vec::new();
    let mut views = Vec::new();
    for o in &m.objects {
        match &o.definition {
            ObjectDef::Table { .. } => {
                let parts: Vec<&str> = o.partitions.iter().map(|p| p.name.as_str()).collect();
                tables.insert(o.name.clone(), serde_json::json!(parts));
            }
            ObjectDef::MaterializedView { .. } => mvs.push(o.name.clone()),
            ObjectDef::View { .. } => views.push(o.name.clone()),
        }
    }
    let functions: Vec<String> = m.functions.iter().map(|f| f.signature()).collect();
    let catalogs: Vec<&str> = m
        .external_catalogs
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    serde_json::json!({
        "database": m.database,
        "tables": tables,
        "materialized_views": mvs,
        "views": views,
        "functions": functions,
        "external_catalogs": catalogs,
        "files": m.files.len(),
        "bytes": m.total_bytes(),
        "source_cluster": m.source.cluster,
    })
    .to_string()
}

pub async fn drop_snapshot(engine: &mut Engine, stmt: &DropSnapshot) -> Result<Output> {
    let repository = open(engine.catalog(), &stmt.repository)?;
    let result = repository
        .drop_snapshot(&stmt.snapshot.value, stmt.force, &lease_holder())
        .await;
    if !matches!(result, Err(RepoError::NoSuchSnapshot { .. })) {
        record(engine, &repository.name, &result);
    }
    let (dropped, gc) = result?;
    let mut message = format!(
        "Query OK, dropped {} snapshot{} of {}",
        dropped.len(),
        if dropped.len() == 1 { "" } else { "s" },
        stmt.snapshot.value
    );
    match gc.skipped {
        None => message.push_str(&format!(
            "; deleted {} unreferenced objects ({}), {} kept",
            gc.deleted_objects,
            crate::output::human_bytes(gc.deleted_bytes),
            gc.kept_objects
        )),
        Some(reason) => message.push_str(&format!(
            "; unreferenced objects stay until the next DROP SNAPSHOT, because {reason}"
        )),
    }
    Ok(done(message))
}
