//! What backup and restore call, plus the housekeeping that must respect them.
//!
//! - **Pins**: a consistent snapshot of some objects' live rowsets, taken in one catalog
//!   transaction. A pinned rowset's file survives compaction and garbage collection until the
//!   pin is released, so a backup can upload a version while loads go on.
//! - **Staging and publish**: a restore builds a table in a hidden, staged object (not visible
//!   under its name), ingests verified files into it, and publishes everything in one catalog
//!   transaction, replacing what it overwrites. Nothing is visible before that commit.
//! - **Compaction** merges a tablet's rowsets into one; **garbage collection** deletes rowset
//!   files no live rowset, pin or running load references.

use std::collections::HashSet;

use super::storage::{RowsetWriter, read_rowset, sync_dir};
use super::types::arrow_schema;
use super::{Engine, EngineError, Result, merge};
use crate::catalog::{ObjectDef, ObjectState, PartitionBound, RowsetRow, Tx};
use crate::process::Process;

/// One pinned rowset, with where it sits in its table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedRowset {
    pub object_id: i64,
    pub partition: String,
    pub partition_version: i64,
    pub bucket: i64,
    pub rowset: RowsetRow,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub id: i64,
    pub rowsets: Vec<PinnedRowset>,
}

impl Pin {
    pub fn bytes(&self) -> u64 {
        self.rowsets.iter().map(|r| r.rowset.bytes as u64).sum()
    }
}

/// Pins the live rowsets of `objects` (restricted to `partitions` when given) at their visible
/// versions, in one transaction.
pub fn pin(
    engine: &mut Engine,
    label: &str,
    objects: &[i64],
    partitions: Option<&[String]>,
) -> Result<Pin> {
    let (id, rowsets) = engine.catalog().write(|tx| {
        let mut rowsets = Vec::new();
        for object_id in objects {
            for p in tx.partitions(*object_id)? {
                if partitions.is_some_and(|wanted| !wanted.contains(&p.name)) {
                    continue;
                }
                for t in tx.tablets(p.id)? {
                    // Base rows and the rollups (sync MVs) kept with them.
                    for r in tx.all_live_rowsets(t.id)? {
                        rowsets.push(PinnedRowset {
                            object_id: *object_id,
                            partition: p.name.clone(),
                            partition_version: p.visible_version,
                            bucket: t.bucket,
                            rowset: r,
                        });
                    }
                }
            }
        }
        let ids: Vec<i64> = rowsets.iter().map(|r| r.rowset.id).collect();
        let id = tx.insert_pin(label, &ids)?;
        Ok((id, rowsets))
    })?;
    Ok(Pin { id, rowsets })
}

pub fn release(engine: &mut Engine, pin_id: i64) -> Result<()> {
    engine.catalog().write(|tx| tx.delete_pin(pin_id))?;
    Ok(())
}

/// The rowsets a pin holds, with sizes and checksums.
pub fn pinned(engine: &mut Engine, pin_id: i64) -> Result<Vec<RowsetRow>> {
    Ok(engine.catalog().view().pinned_rowsets(pin_id)?)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    pub tablets: usize,
    pub rowsets_merged: usize,
}

/// Merges every tablet of an object that has more than one live rowset into a single rowset.
/// The old rowsets stop being live; pinned ones keep their files until released.
pub async fn compact(engine: &mut Engine, object_id: i64) -> Result<CompactionReport> {
    let obj = engine
        .catalog()
        .view()
        .object_by_id(object_id)?
        .ok_or_else(|| EngineError::invalid(format!("no object {object_id}"), None))?;
    let Some(schema) = obj.def.schema().cloned() else {
        return Ok(CompactionReport::default());
    };
    let arrow = arrow_schema(&schema);
    // A lease names the files this compaction writes, so GC leaves them alone until committed.
    let lease = engine
        .catalog()
        .write(|tx| tx.begin_load(object_id, Process::current()))?;
    let result = compact_tablets(engine, object_id, &schema, &arrow, lease).await;
    engine.catalog().write(|tx| tx.end_load(lease))?;
    result
}

async fn compact_tablets(
    engine: &mut Engine,
    object_id: i64,
    schema: &crate::catalog::TableSchema,
    arrow: &datafusion::arrow::datatypes::SchemaRef,
    lease: i64,
) -> Result<CompactionReport> {
    let mut report = CompactionReport::default();
    for p in engine.catalog().view().partitions(object_id)? {
        for t in engine.catalog().view().tablets(p.id)? {
            let rowsets = engine.catalog().view().live_rowsets(t.id)?;
            if rowsets.len() < 2 {
                continue;
            }
            let mut batches = Vec::new();
            for r in &rowsets {
                batches.extend(read_rowset(&engine.file_path(&r.path))?);
            }
            let merged = merge::merge_key_model(schema, arrow, batches).await?;
            let rel = format!("data/{object_id}/L{lease}-C{}.parquet", t.id);
            let mut w = RowsetWriter::create(&engine.file_path(&rel), arrow.clone())?;
            for b in &merged {
                w.write(b)?;
            }
            let file = w.finish()?;
            let ids: Vec<i64> = rowsets.iter().map(|r| r.id).collect();
            let version = rowsets.iter().map(|r| r.version).max().unwrap_or(1);
            let tablet = t.id;
            let committed = engine.catalog().write(|tx| {
                let live: Vec<i64> = tx.live_rowsets(tablet)?.iter().map(|r| r.id).collect();
                if live != ids {
                    return Ok(false); // a load changed the tablet meanwhile; try next time
                }
                for id in &ids {
                    tx.retire_rowset(*id)?;
                }
                tx.insert_rowset(&RowsetRow {
                    id: 0,
                    tablet_id: tablet,
                    version,
                    path: rel.clone(),
                    rows: file.rows as i64,
                    bytes: file.bytes as i64,
                    sha256: file.sha256.clone(),
                    live: true,
                    rollup: None,
                })?;
                Ok(true)
            })?;
            if committed {
                report.tablets += 1;
                report.rowsets_merged += ids.len();
            } else {
                let _ = std::fs::remove_file(&file.path);
            }
        }
    }
    Ok(report)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub rowsets_removed: usize,
    pub files_removed: usize,
    pub bytes_removed: u64,
}

/// How old a file that names no load must be before garbage collection may delete it. Every
/// writer names its files after a load lease (`L<id>-...`); anything else is left for this long.
pub const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes retired, unpinned rowsets and files that nothing references (leftovers of loads
/// that died). Files of a load whose process still runs are left alone.
pub fn collect_garbage(engine: &mut Engine) -> Result<GcReport> {
    let mut report = collect_retired(engine)?;
    collect_orphans(engine, &mut report)?;
    Ok(report)
}

/// Removes what loads that died (a process killed mid-load) left: when the catalog still
/// registers a load whose process is gone, the data directories are scanned for files nothing
/// references ([`collect_orphans`]: unreferenced files of dead loads, spilled runs included)
/// and the dead registrations are dropped. Cheap when no load died: one query, no scan.
pub fn collect_dead_loads(engine: &mut Engine) -> Result<Option<GcReport>> {
    let loads = engine.catalog().read(|conn| conn.loads())?;
    if loads.iter().all(|(_, process)| process.is_alive()) {
        return Ok(None);
    }
    let mut report = GcReport::default();
    collect_orphans(engine, &mut report)?;
    Ok(Some(report))
}

/// Rowsets collected per catalog transaction.
const COLLECT_BATCH: usize = 32;

/// Deletes the rows and files of retired rowsets no pin holds (what DROP, TRUNCATE, a merge
/// or an undone restore left behind). Cheap: one indexed query, no directory scan.
pub fn collect_retired(engine: &mut Engine) -> Result<GcReport> {
    let mut report = GcReport::default();
    let collectable = engine.catalog().view().collectable_rowsets()?;
    // In batches: each batch's rows go first, in one transaction, then its files (a row
    // without a file would be a broken reference, a file without a row is garbage the next
    // run removes). Batches, not one transaction for all: on a nearly full disk the catalog's
    // log must hold the transaction before any file is gone, and each batch's files give space
    // back for the next. Not one transaction per rowset either: a commit each was most of
    // what a restore over a dropped database spent after its last download.
    for batch in collectable.chunks(COLLECT_BATCH) {
        let batched = engine
            .catalog()
            .write(|tx| batch.iter().try_for_each(|r| tx.delete_rowset_row(r.id)));
        for r in batch {
            if batched.is_err() {
                // Too little room for the batch (a full disk): one row at a time frees space
                // file by file, as far as the disk allows.
                engine.catalog().write(|tx| tx.delete_rowset_row(r.id))?;
            }
            let path = engine.file_path(&r.path);
            if let Ok(meta) = std::fs::metadata(&path) {
                report.bytes_removed += meta.len();
                report.files_removed += 1;
            }
            let _ = std::fs::remove_file(&path);
            report.rowsets_removed += 1;
        }
    }
    Ok(report)
}

/// Orphans: files no rowset row names, from loads that are no longer running.
fn collect_orphans(engine: &mut Engine, report: &mut GcReport) -> Result<()> {
    let (referenced, loads) = engine.catalog().read(|conn| -> Result<_> {
        let referenced: HashSet<String> = conn.referenced_paths()?.into_iter().collect();
        Ok((referenced, conn.loads()?))
    })?;
    let running: HashSet<i64> = loads
        .iter()
        .filter(|(_, process)| process.is_alive())
        .map(|(id, _)| *id)
        .collect();
    let dead: Vec<i64> = loads
        .iter()
        .filter(|(id, _)| !running.contains(id))
        .map(|(id, _)| *id)
        .collect();
    let data = engine.root().join("data");
    for dir in std::fs::read_dir(&data).map_err(|e| EngineError::Io {
        path: data.clone(),
        source: e,
    })? {
        let dir = dir
            .map_err(|e| EngineError::Io {
                path: data.clone(),
                source: e,
            })?
            .path();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(engine.root())
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if referenced.contains(&rel) {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let load_id = name
                .strip_prefix('L')
                .and_then(|rest| rest.split('-').next())
                .and_then(|id| id.parse::<i64>().ok());
            if load_id.is_some_and(|id| running.contains(&id)) {
                continue;
            }
            let young = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age < ORPHAN_GRACE);
            if load_id.is_none() && young {
                continue; // not ours to judge yet
            }
            if let Ok(meta) = entry.metadata() {
                report.bytes_removed += meta.len();
            }
            if std::fs::remove_file(&path).is_ok() {
                report.files_removed += 1;
            }
        }
        let _ = std::fs::remove_dir(&dir); // only succeeds when empty
    }
    if !dead.is_empty() {
        engine.catalog().write(|tx| {
            for id in &dead {
                tx.end_load(*id)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

// ---- restore: stage, ingest, publish -------------------------------------------------------

/// Creates a hidden copy of an object to restore into: its partitions and tablets exist, it
/// holds no name yet and no query sees it.
pub fn stage(
    engine: &mut Engine,
    db_id: i64,
    name: &str,
    def: &ObjectDef,
    partitions: &[(String, PartitionBound)],
) -> Result<i64> {
    let buckets = def.schema().map(|s| s.distribution.buckets()).unwrap_or(1);
    Ok(engine.catalog().write(|tx| {
        let id = tx.insert_object(db_id, name, def, ObjectState::Staged)?;
        for (pname, bound) in partitions {
            tx.insert_partition(id, pname, bound, buckets)?;
        }
        Ok(id)
    })?)
}

/// Adds a verified rowset file (already in `data/<staged id>/`) to a staged object's tablet.
pub fn ingest(
    engine: &mut Engine,
    staged_id: i64,
    partition: &str,
    bucket: i64,
    rowset: &RowsetRow,
) -> Result<()> {
    engine.catalog().try_write(|tx| -> Result<()> {
        let tablet = tx
            .partitions(staged_id)?
            .into_iter()
            .find(|p| p.name == partition)
            .map(|p| tx.tablet(p.id, bucket))
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                EngineError::invalid(
                    format!("staged object {staged_id} has no tablet {partition}/{bucket}"),
                    None,
                )
            })?;
        tx.insert_rowset(&RowsetRow {
            tablet_id: tablet.id,
            ..rowset.clone()
        })?;
        Ok(())
    })
}

/// How a staged object lands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Publish {
    /// Take the name; the existing object of that name (`replaces`, as the restore found it
    /// when it staged) is dropped in the same transaction. `None`: the name must be free.
    Replace {
        staged_id: i64,
        replaces: Option<i64>,
    },
    /// Replace only these partitions of an existing table with the staged ones.
    Partitions {
        staged_id: i64,
        target_id: i64,
        partitions: Vec<String>,
    },
}

/// Publishes staged objects in one catalog transaction: before it nothing of the restore is
/// visible, after it all of it is.
pub fn publish(engine: &mut Engine, items: &[Publish]) -> Result<()> {
    engine.catalog().try_write(|tx| publish_in(tx, items))?;
    if let Ok(d) = std::fs::canonicalize(engine.root().join("data")) {
        let _ = sync_dir(&d);
    }
    Ok(())
}

/// [`publish`] inside the caller's transaction (a restore journals its commit in the same one).
pub fn publish_in(tx: &Tx<'_>, items: &[Publish]) -> Result<()> {
    let gone =
        |what: String| EngineError::invalid(format!("{what} disappeared before the commit"), None);
    // What the restore relies on is checked again here, in the commit's own transaction: a
    // target that appeared, vanished or changed since it was staged fails the commit, and
    // nothing is published.
    let moved = |what: String| {
        EngineError::invalid(
            format!("{what} since the restore staged it; nothing was restored"),
            Some("plan the restore again"),
        )
    };
    for item in items {
        match item {
            Publish::Replace {
                staged_id,
                replaces,
            } => {
                let staged = tx
                    .object_by_id(*staged_id)?
                    .ok_or_else(|| gone(format!("staged object {staged_id}")))?;
                let existing = tx.object(staged.db_id, &staged.name)?;
                match (replaces, &existing) {
                    (None, None) => {}
                    (Some(id), Some(e)) if e.id == *id => {}
                    (None, Some(_)) => return Err(moved(format!("{} was created", staged.name))),
                    (Some(_), _) => {
                        return Err(moved(format!("{} was dropped or replaced", staged.name)));
                    }
                }
                if let Some(existing) = existing {
                    tx.drop_object(existing.id)?;
                }
                tx.set_state(*staged_id, ObjectState::Normal)?;
            }
            Publish::Partitions {
                staged_id,
                target_id,
                partitions,
            } => {
                let staged = tx
                    .object_by_id(*staged_id)?
                    .ok_or_else(|| gone(format!("staged object {staged_id}")))?;
                let target = tx
                    .object_by_id(*target_id)?
                    .filter(|t| t.name == staged.name && t.db_id == staged.db_id)
                    .ok_or_else(|| moved(format!("{} was dropped or replaced", staged.name)))?;
                let staged_parts = tx.partitions(*staged_id)?;
                let target_parts = tx.partitions(*target_id)?;
                let pairs = |ps: &[crate::catalog::PartitionRow]| -> Vec<(String, PartitionBound)> {
                    ps.iter()
                        .map(|p| (p.name.clone(), p.bound.clone()))
                        .collect()
                };
                if let Some(diff) = super::fit::first_difference(
                    &target.def,
                    &pairs(&target_parts),
                    &staged.def,
                    &pairs(&staged_parts),
                    partitions,
                    true,
                ) {
                    return Err(EngineError::invalid(
                        format!(
                            "cannot restore into {}: {diff}; nothing was restored",
                            target.name
                        ),
                        Some("plan the restore again"),
                    ));
                }
                for name in partitions {
                    let from = staged_parts
                        .iter()
                        .find(|p| &p.name == name)
                        .ok_or_else(|| gone(format!("staged partition {name}")))?;
                    let to = target_parts.iter().find(|p| &p.name == name);
                    let to_id = match to {
                        Some(to) => {
                            for t in tx.tablets(to.id)? {
                                for r in tx.all_live_rowsets(t.id)? {
                                    tx.retire_rowset(r.id)?;
                                }
                            }
                            to.id
                        }
                        None => {
                            let buckets = tx.tablets(from.id)?.len() as u32;
                            tx.insert_partition(*target_id, name, &from.bound, buckets)?
                        }
                    };
                    let version = tx.bump_version(to_id)?;
                    let to_tablets = tx.tablets(to_id)?;
                    for t in tx.tablets(from.id)? {
                        let dest = to_tablets
                            .iter()
                            .find(|d| d.bucket == t.bucket)
                            .ok_or_else(|| gone(format!("tablet {name}/{}", t.bucket)))?;
                        tx.move_live_rowsets(t.id, dest.id, version)?;
                    }
                }
                tx.drop_object(*staged_id)?;
            }
        }
    }
    Ok(())
}

/// Drops a staged object (a failed or cancelled restore); its files become garbage.
pub fn discard_staged(engine: &mut Engine, staged_id: i64) -> Result<()> {
    engine.catalog().write(|tx| tx.drop_object(staged_id))?;
    Ok(())
}

/// Marks an object as being restored (loads refused) or back to normal.
pub fn set_restoring(engine: &mut Engine, object_id: i64, restoring: bool) -> Result<()> {
    let state = if restoring {
        ObjectState::Restoring
    } else {
        ObjectState::Normal
    };
    engine
        .catalog()
        .write(|tx| tx.set_state(object_id, state))?;
    Ok(())
}

/// Activates the inactive asynchronous MVs that a missing base table made inactive
/// (a restore left them so, or their base was dropped) once every table their query reads
/// exists again, as StarRocks' automatic activation does; runs in the caller's transaction
/// (a restore's commit). MVs a user set INACTIVE stay so.
pub fn reactivate_mvs(tx: &Tx<'_>) -> Result<()> {
    for db_row in tx.databases()? {
        reactivate_in(tx, &db_row)?;
    }
    Ok(())
}

fn reactivate_in(tx: &Tx<'_>, db_row: &crate::catalog::DatabaseRow) -> Result<()> {
    let db = db_row.name.as_str();
    for mv in tx.objects(db_row.id)? {
        let ObjectDef::MaterializedView { sql, .. } = &mv.def else {
            continue;
        };
        if mv.active
            || mv
                .inactive_reason
                .as_deref()
                .is_some_and(|r| r.contains(USER_INACTIVE))
        {
            continue;
        }
        let Ok(bases) = super::query::referenced_tables(sql, Some(db)) else {
            continue;
        };
        let mut present = true;
        for (base_db, table) in &bases {
            let found = match tx.database(base_db)? {
                Some(d) => tx.object(d.id, table)?.is_some(),
                None => false,
            };
            present &= found;
        }
        if present {
            tx.set_active(mv.id, true, None)?;
        }
    }
    Ok(())
}

/// Marks inactive the asynchronous MVs whose query reads `db.name`, which was just dropped (in
/// the caller's transaction), as StarRocks does; they become active again when it exists
/// again (a restore, or ALTER MATERIALIZED VIEW ... ACTIVE).
pub fn deactivate_readers(tx: &Tx<'_>, db: &str, name: &str) -> Result<()> {
    for db_row in tx.databases()? {
        for mv in tx.objects(db_row.id)? {
            let ObjectDef::MaterializedView { sql, .. } = &mv.def else {
                continue;
            };
            if !mv.active {
                continue;
            }
            let Ok(bases) = super::query::referenced_tables(sql, Some(&db_row.name)) else {
                continue;
            };
            if bases.iter().any(|(d, t)| d == db && t == name) {
                tx.set_active(
                    mv.id,
                    false,
                    Some(&format!("base table {db}.{name} was dropped")),
                )?;
            }
        }
    }
    Ok(())
}

/// The inactive reason ALTER MATERIALIZED VIEW ... INACTIVE records.
pub const USER_INACTIVE: &str = "set INACTIVE by ALTER MATERIALIZED VIEW";

/// Deletes the files a restore job downloaded (`data/<staged>/R<job>-…`) that no rowset names:
/// after the job was undone, or for a download that landed but was never ingested (a full
/// disk, a kill). Only the job's own files in its own staged objects' directories are looked
/// at, so this is cheap and touches nothing else.
pub fn remove_job_files(engine: &mut Engine, job_id: i64, staged: &[i64]) -> Result<u64> {
    let referenced: HashSet<String> = engine
        .catalog()
        .view()
        .referenced_paths()?
        .into_iter()
        .collect();
    let prefix = format!("R{job_id}-");
    let mut removed = 0;
    for id in staged {
        let dir = engine.root().join("data").join(id.to_string());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = format!("data/{id}/{name}");
            if name.starts_with(&prefix)
                && !referenced.contains(&relative)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        let _ = std::fs::remove_dir(&dir); // only when empty
    }
    Ok(removed)
}
