//! What each task of a plan does. Transfers return a future for a worker; every other task
//! runs on the coordinator in one catalog transaction that also journals it.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::{Runner, Stop, TransferResult};
use crate::catalog::{self, ObjectDef, ObjectState, RowsetRow};
use crate::engine::maintenance::{self, Publish};
use crate::plan::{Action, ObjectAction, Task};
use crate::repo::format::{
    FileEntry, ObjectEntry, PartitionEntry, RowsetEntry, Source, TabletEntry,
};
use crate::repo::{Encoding, Manifest, RepoError, Sha256, SnapshotId};

pub(super) fn file_size(action: &Action) -> u64 {
    match action {
        Action::Upload { file, .. } | Action::Download { file, .. } => file.size.0,
        _ => 0,
    }
}

fn failed(message: impl Into<String>) -> Stop {
    Stop::Failed(message.into())
}

fn compression(plan: &crate::plan::Plan) -> Option<i32> {
    match plan.properties.get("compression").map(String::as_str) {
        None | Some("none") => None,
        Some("zstd") => Some(3),
        Some(other) => other
            .strip_prefix("zstd:")
            .and_then(|l| l.parse().ok())
            .or(Some(3)),
    }
}

impl Runner<'_> {
    fn db_id(&mut self, name: &str) -> Result<i64, Stop> {
        catalog::database(self.engine.catalog().conn(), name)?
            .map(|d| d.id)
            .ok_or_else(|| failed(format!("database {name} does not exist")))
    }

    fn journaled(&self, task_id: &str) -> Option<Value> {
        self.journal
            .get(task_id)
            .and_then(|r| serde_json::from_str(r).ok())
    }

    /// The staged object a restore created for `target`.
    fn staged_id(&self, target: &str) -> Result<i64, Stop> {
        let db = self.plan.target_database.clone().unwrap_or_default();
        let id = format!(
            "stage:{}.{}",
            crate::plan::id_part(&db),
            crate::plan::id_part(target)
        );
        self.journaled(&id)
            .and_then(|v| v["staged_id"].as_i64())
            .ok_or_else(|| failed(format!("{target} was not staged")))
    }

    fn manifest(&self) -> &Manifest {
        self.manifest
            .as_deref()
            .expect("a restore reads its manifest first")
    }

    fn entry(&self, name: &str) -> Result<&ObjectEntry, Stop> {
        self.manifest()
            .objects
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| failed(format!("{name} is not in the snapshot")))
    }

    /// A restore reads exactly the manifest its plan was made from.
    pub(super) async fn restore_manifest(&self) -> Result<Manifest, Stop> {
        let id = SnapshotId {
            label: self.plan.snapshot.label.clone(),
            timestamp: self.plan.snapshot.timestamp.clone().unwrap_or_default(),
        };
        let (manifest, sha) = self.repo.read_manifest_hashed(&id).await?;
        if Some(&sha) != self.plan.snapshot.manifest_sha256.as_ref() {
            return Err(failed(format!(
                "snapshot {id} changed since the plan was made; re-plan"
            )));
        }
        Ok(manifest)
    }

    pub(super) fn count_transfer(&mut self, task: &Task, value: &Value) {
        if value["sent"].as_bool().unwrap_or(true) {
            self.stats.files_sent += 1;
            self.stats.bytes_sent += file_size(&task.action);
        }
    }

    /// The work of a transfer task, for a worker.
    pub(super) fn transfer(
        &mut self,
        index: usize,
        task: &Task,
    ) -> Result<impl Future<Output = TransferResult> + Send + 'static, Stop> {
        let repo = self.repo.clone();
        match &task.action {
            Action::Upload { file, path, .. } => {
                let source = self.engine.file_path(path);
                let hash = Sha256::parse(&file.sha256).map_err(|e| failed(e.to_string()))?;
                let level = compression(&self.plan);
                Ok(Box::pin(async move {
                    let r = repo.upload_file(&source, &hash, level).await.map(|u| {
                        json!({
                            "encoding": u.encoding,
                            "bytes": u.bytes,
                            "stored_bytes": u.stored_bytes,
                            "sent": u.sent,
                        })
                    });
                    (index, r)
                })
                    as std::pin::Pin<
                        Box<dyn Future<Output = TransferResult> + Send>,
                    >)
            }
            Action::Download { file, .. } => {
                let staged = self.staged_id(&file.object)?;
                let entry = self
                    .manifest()
                    .files
                    .iter()
                    .find(|f| f.sha256.as_str() == file.sha256)
                    .cloned()
                    .ok_or_else(|| {
                        failed(format!("file {} is not in the manifest", file.sha256))
                    })?;
                let relative = format!(
                    "data/{staged}/R{}-{index}-{}.parquet",
                    self.job.id,
                    &file.sha256[..16]
                );
                let dest = self.engine.file_path(&relative);
                Ok(Box::pin(async move {
                    let r = async {
                        if let Some(dir) = dest.parent() {
                            tokio::fs::create_dir_all(dir).await.map_err(|source| {
                                RepoError::Io {
                                    path: dir.to_path_buf(),
                                    source,
                                }
                            })?;
                        }
                        // A crashed attempt may have left a partial file: start over.
                        let _ = tokio::fs::remove_file(&dest).await;
                        repo.download_file(&entry, &dest).await?;
                        Ok(json!({ "path": relative }))
                    }
                    .await;
                    (index, r)
                }))
            }
            _ => Err(failed(format!("{} is not a transfer", task.id))),
        }
    }

    /// Journals finished transfers; a download is ingested into its staged tablet in the same
    /// transaction.
    pub(super) fn journal_transfers(
        &mut self,
        tasks: &[Task],
        finished: &[(usize, Value)],
    ) -> Result<(), Stop> {
        let job_id = self.job.id;
        let mut ingests = Vec::new();
        for (i, value) in finished {
            if let Action::Download { file, version } = &tasks[*i].action {
                ingests.push((
                    self.staged_id(&file.object)?,
                    file.clone(),
                    *version,
                    value["path"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        self.engine.catalog().write(|tx| {
            // Tablet ids by (partition, bucket), read once per staged object of the batch.
            let mut tablets: HashMap<i64, HashMap<(String, i64), i64>> = HashMap::new();
            for (staged, file, version, path) in &ingests {
                if !tablets.contains_key(staged) {
                    let mut st = tx.prepare(
                        "SELECT p.name, t.bucket, t.id FROM tablets t
                           JOIN partitions p ON t.partition_id = p.id WHERE p.object_id = ?1",
                    )?;
                    let map = st
                        .query_map([staged], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
                        .collect::<rusqlite::Result<HashMap<_, _>>>()?;
                    tablets.insert(*staged, map);
                }
                let tablet_id = *tablets[staged]
                    .get(&(file.partition.clone(), file.bucket as i64))
                    .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                catalog::insert_rowset(
                    tx,
                    &RowsetRow {
                        id: 0,
                        tablet_id,
                        version: *version,
                        path: path.clone(),
                        rows: file.rows as i64,
                        bytes: file.size.0 as i64,
                        sha256: file.sha256.clone(),
                        live: true,
                        rollup: file.rollup.clone(),
                    },
                )?;
            }
            for (i, value) in finished {
                catalog::journal_task(tx, job_id, &tasks[*i].id, &value.to_string())?;
            }
            Ok(())
        })?;
        for (i, value) in finished {
            self.journal.insert(tasks[*i].id.clone(), value.to_string());
        }
        Ok(())
    }

    /// Runs a coordinator task and journals it in the same catalog transaction.
    pub(super) async fn run_inline(&mut self, task: &Task) -> Result<(), Stop> {
        let job_id = self.job.id;
        let id = task.id.clone();
        let value: Value = match &task.action {
            Action::Pin { database, rowsets } => {
                let plan = self.plan.clone();
                let label = format!("backup job {job_id}");
                let timestamp = self.job.snapshot_timestamp.clone().unwrap_or_default();
                let database = database.clone();
                let rowsets = rowsets.clone();
                self.engine.catalog().try_write(|tx| -> Result<Value, Stop> {
                    // Exactly the plan's rowsets, all still live: otherwise the plan is stale.
                    for r in &rowsets {
                        let live: Option<bool> = tx
                            .query_row("SELECT live FROM rowsets WHERE id = ?1", [r], |row| {
                                row.get::<_, i64>(0).map(|l| l != 0)
                            })
                            .ok();
                        if live != Some(true) {
                            return Err(failed(format!(
                                "the data changed since the plan was made (rowset {r} is gone); re-plan"
                            )));
                        }
                    }
                    let pin_id = catalog::insert_pin(tx, &label, &rowsets)?;
                    let skeleton = skeleton(tx, &plan, &database, &timestamp)?;
                    let value = json!({ "pin_id": pin_id, "skeleton": skeleton });
                    catalog::journal_task(tx, job_id, &id, &value.to_string())?;
                    Ok(value)
                })?
            }
            Action::WriteManifest { .. } => {
                let mut manifest: Manifest = match self
                    .plan
                    .tasks
                    .iter()
                    .find(|t| matches!(t.action, Action::Pin { .. }))
                    .and_then(|t| self.journaled(&t.id))
                {
                    Some(v) => serde_json::from_value(v["skeleton"].clone())
                        .map_err(|e| failed(format!("the journal is damaged: {e}")))?,
                    None => {
                        let plan = self.plan.clone();
                        let ts = self.job.snapshot_timestamp.clone().unwrap_or_default();
                        let db = plan.database.clone().unwrap_or_default();
                        let conn = self.engine.catalog().conn();
                        skeleton(conn, &plan, &db, &ts)?
                    }
                };
                let mut files: BTreeMap<String, FileEntry> = BTreeMap::new();
                for t in &self.plan.tasks {
                    if let Action::Upload { file, .. } = &t.action {
                        let v = self
                            .journaled(&t.id)
                            .ok_or_else(|| failed(format!("{} did not finish", t.id)))?;
                        let encoding: Encoding = serde_json::from_value(v["encoding"].clone())
                            .map_err(|e| failed(format!("the journal is damaged: {e}")))?;
                        files.entry(file.sha256.clone()).or_insert(FileEntry {
                            sha256: Sha256::parse(&file.sha256)
                                .map_err(|e| failed(e.to_string()))?,
                            bytes: file.size.0,
                            stored_bytes: v["stored_bytes"].as_u64().unwrap_or(file.size.0),
                            encoding,
                        });
                    }
                }
                manifest.files = files.into_values().collect();
                match self.repo.write_manifest(&manifest).await {
                    Ok(()) => {}
                    // Written before a crash, or the same snapshot made twice at one instant.
                    Err(RepoError::Busy { .. })
                        if self.repo.read_manifest(&manifest.id()).await.ok().as_ref()
                            == Some(&manifest) => {}
                    Err(e) => return Err(e.into()),
                }
                self.journal_only(&id, json!({ "timestamp": manifest.timestamp }))?;
                return Ok(());
            }
            Action::Release { .. } => {
                let pin = self
                    .plan
                    .tasks
                    .iter()
                    .find(|t| matches!(t.action, Action::Pin { .. }))
                    .and_then(|t| self.journaled(&t.id))
                    .and_then(|v| v["pin_id"].as_i64());
                self.engine.catalog().write(|tx| {
                    if let Some(pin) = pin {
                        catalog::delete_pin(tx, pin)?;
                    }
                    catalog::journal_task(tx, job_id, &id, "{}")
                })?;
                json!({})
            }
            Action::CreateDatabase { database } => {
                let database = database.clone();
                self.engine.catalog().write(|tx| {
                    if catalog::database(tx, &database)?.is_none() {
                        catalog::create_database(tx, &database)?;
                    }
                    catalog::journal_task(tx, job_id, &id, "{}")
                })?;
                json!({})
            }
            Action::Stage {
                name,
                target,
                partitions,
                ..
            } => {
                let entry = self.entry(name)?.clone();
                let db = self.plan.target_database.clone().unwrap_or_default();
                let db_id = self.db_id(&db)?;
                let target = target.clone();
                let partitions = partitions.clone();
                self.engine.catalog().write(|tx| {
                    let staged = catalog::insert_object(
                        tx,
                        db_id,
                        &target,
                        &entry.definition,
                        ObjectState::Staged,
                    )?;
                    let buckets = entry
                        .definition
                        .schema()
                        .map(|s| s.distribution.buckets())
                        .unwrap_or(1);
                    for p in entry
                        .partitions
                        .iter()
                        .filter(|p| partitions.contains(&p.name))
                    {
                        let pid =
                            catalog::insert_partition(tx, staged, &p.name, &p.bound, buckets)?;
                        tx.execute(
                            "UPDATE partitions SET visible_version = ?2 WHERE id = ?1",
                            rusqlite::params![pid, p.version],
                        )?;
                    }
                    // The table being overwritten refuses loads until the restore ends.
                    let existing = catalog::object(tx, db_id, &target)?;
                    if let Some(e) = &existing {
                        catalog::set_state(tx, e.id, ObjectState::Restoring)?;
                    }
                    let value =
                        json!({ "staged_id": staged, "existing_id": existing.map(|e| e.id) });
                    catalog::journal_task(tx, job_id, &id, &value.to_string())?;
                    Ok(value)
                })?
            }
            Action::Commit { database, publish } => {
                let db_id = self.db_id(database)?;
                let mut items = Vec::new();
                let mut back_to_normal = Vec::new();
                for p in publish {
                    let staged_id = self.staged_id(&p.target)?;
                    match p.action {
                        ObjectAction::ReplacePartitions => {
                            let target =
                                catalog::object(self.engine.catalog().conn(), db_id, &p.target)?
                                    .ok_or_else(|| {
                                        failed(format!(
                                            "{} disappeared during the restore",
                                            p.target
                                        ))
                                    })?;
                            back_to_normal.push(target.id);
                            items.push(Publish::Partitions {
                                staged_id,
                                target_id: target.id,
                                partitions: p.partitions.clone(),
                            });
                        }
                        _ => items.push(Publish::Replace { staged_id }),
                    }
                }
                self.engine.catalog().write(|tx| {
                    maintenance::publish_in(tx, &items)?;
                    for id in &back_to_normal {
                        catalog::set_state(tx, *id, ObjectState::Normal)?;
                    }
                    catalog::journal_task(tx, job_id, &id, "{}")
                })?;
                json!({})
            }
            Action::CreateView { name, target } => {
                let entry = self.entry(name)?.clone();
                let db = self.plan.target_database.clone().unwrap_or_default();
                let db_id = self.db_id(&db)?;
                let target = target.clone();
                self.engine.catalog().write(|tx| {
                    if let Some(e) = catalog::object(tx, db_id, &target)? {
                        catalog::drop_object(tx, e.id)?;
                    }
                    catalog::insert_object(
                        tx,
                        db_id,
                        &target,
                        &entry.definition,
                        ObjectState::Normal,
                    )?;
                    catalog::journal_task(tx, job_id, &id, "{}")
                })?;
                json!({})
            }
            Action::ActivateMaterializedView {
                target,
                active,
                reason,
                ..
            } => {
                let db = self.plan.target_database.clone().unwrap_or_default();
                let db_id = self.db_id(&db)?;
                let (target, active, reason) = (target.clone(), *active, reason.clone());
                self.engine.catalog().write(|tx| {
                    let o = catalog::object(tx, db_id, &target)?
                        .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                    catalog::set_active(tx, o.id, active, reason.as_deref())?;
                    catalog::journal_task(tx, job_id, &id, "{}")
                })?;
                json!({})
            }
            Action::CreateFunction { signature, target } => {
                let f = self
                    .manifest()
                    .functions
                    .iter()
                    .find(|f| &f.signature() == signature)
                    .cloned()
                    .ok_or_else(|| {
                        failed(format!("function {signature} is not in the snapshot"))
                    })?;
                let def = crate::catalog::FunctionDef {
                    name: target.clone(),
                    ..f
                };
                let db = self.plan.target_database.clone().unwrap_or_default();
                let db_id = self.db_id(&db)?;
                self.engine.catalog().write(|tx| {
                    catalog::delete_function(tx, Some(db_id), &def.signature())?;
                    catalog::insert_function(tx, Some(db_id), &def)?;
                    catalog::journal_task(tx, job_id, &id, "{}")
                })?;
                json!({})
            }
            Action::CreateCatalog { name, target } => {
                let c = self
                    .manifest()
                    .external_catalogs
                    .iter()
                    .find(|c| &c.name == name)
                    .cloned()
                    .ok_or_else(|| failed(format!("catalog {name} is not in the snapshot")))?;
                let def = crate::catalog::ExternalCatalogDef {
                    name: target.clone(),
                    ..c
                };
                self.engine.catalog().write(|tx| {
                    catalog::delete_external_catalog(tx, &def.name)?;
                    catalog::insert_external_catalog(tx, &def)?;
                    catalog::journal_task(tx, job_id, &id, "{}")
                })?;
                json!({})
            }
            Action::Upload { .. } | Action::Download { .. } => {
                return Err(failed(format!("{} is a transfer", task.id)));
            }
        };
        self.journal.insert(task.id.clone(), value.to_string());
        Ok(())
    }

    fn journal_only(&mut self, task_id: &str, value: Value) -> Result<(), Stop> {
        let job_id = self.job.id;
        self.engine
            .catalog()
            .write(|tx| catalog::journal_task(tx, job_id, task_id, &value.to_string()))?;
        self.journal.insert(task_id.to_string(), value.to_string());
        Ok(())
    }

    /// Undoes a stopped job (see [`undo`]).
    pub(super) async fn clean_up(&mut self) -> Result<(), String> {
        undo(self.engine, &self.plan, &self.journal)
    }
}

/// Undoes a stopped job: a backup releases its pin (uploaded objects stay for GC); a
/// restore that has not committed drops its staged objects and lets the tables it would
/// have overwritten take loads again, exactly as they were.
pub(super) fn undo(
    engine: &mut crate::engine::Engine,
    plan: &crate::plan::Plan,
    journal: &BTreeMap<String, String>,
) -> Result<(), String> {
    let journal: Vec<(String, Value)> = journal
        .iter()
        .filter_map(|(k, v)| serde_json::from_str(v).ok().map(|v| (k.clone(), v)))
        .collect();
    let committed = journal.iter().any(|(k, _)| k.starts_with("commit:"));
    let released = journal.iter().any(|(k, _)| k.starts_with("release:"));
    let created_db = plan.tasks.iter().find_map(|t| match &t.action {
        Action::CreateDatabase { database } => Some(database.clone()),
        _ => None,
    });
    let cleaned = engine.catalog().write(|tx| {
        for (key, v) in &journal {
            if key.starts_with("pin:")
                && !released
                && let Some(pin) = v["pin_id"].as_i64()
            {
                catalog::delete_pin(tx, pin)?;
            }
            if key.starts_with("stage:") && !committed {
                if let Some(staged) = v["staged_id"].as_i64() {
                    catalog::drop_object(tx, staged)?;
                }
                if let Some(existing) = v["existing_id"].as_i64() {
                    catalog::set_state(tx, existing, ObjectState::Normal)?;
                }
            }
        }
        // Last, once its staged objects are gone: a database this restore created and
        // published nothing into.
        if !committed
            && journal
                .iter()
                .any(|(k, _)| k.starts_with("create-database:"))
            && let Some(db) = &created_db
        {
            tx.execute(
                "DELETE FROM databases WHERE name = ?1
                   AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.db_id = databases.id)
                   AND NOT EXISTS (SELECT 1 FROM functions f WHERE f.db_id = databases.id)",
                [db],
            )?;
        }
        Ok(())
    });
    cleaned.map_err(|e| format!("undoing the job failed: {e}"))
}

/// The manifest of a backup without its file list: definitions and the tablets' rowsets, read
/// in the pin's transaction so that they describe exactly the pinned data.
fn skeleton(
    conn: &rusqlite::Connection,
    plan: &crate::plan::Plan,
    database: &str,
    timestamp: &str,
) -> Result<Manifest, Stop> {
    let cluster = catalog::cluster_id(conn)?;
    let mut objects = Vec::new();
    let mut functions = Vec::new();
    let db = if database.is_empty() {
        None
    } else {
        Some(
            catalog::database(conn, database)?
                .ok_or_else(|| failed(format!("database {database} is gone")))?,
        )
    };
    if let Some(db) = &db {
        // Rowsets by object, partition and bucket, in plan order.
        let mut tablets: HashMap<(String, String), BTreeMap<u32, Vec<RowsetEntry>>> =
            HashMap::new();
        for t in &plan.tasks {
            if let Action::Upload { file, .. } = &t.action {
                tablets
                    .entry((file.object.clone(), file.partition.clone()))
                    .or_default()
                    .entry(file.bucket)
                    .or_default()
                    .push(RowsetEntry {
                        sha256: Sha256::parse(&file.sha256).map_err(|e| failed(e.to_string()))?,
                        rows: file.rows,
                        bytes: file.size.0,
                        rollup: file.rollup.clone(),
                    });
            }
        }
        for o in &plan.objects {
            let row = catalog::object(conn, db.id, &o.name)?
                .ok_or_else(|| failed(format!("{} was dropped during the backup", o.name)))?;
            let mut partitions = Vec::new();
            if !matches!(row.def, ObjectDef::View { .. }) {
                for p in catalog::partitions(conn, row.id)? {
                    if !o.partitions.contains(&p.name) {
                        continue;
                    }
                    let by_bucket = tablets
                        .remove(&(o.name.clone(), p.name.clone()))
                        .unwrap_or_default();
                    partitions.push(PartitionEntry {
                        tablets: by_bucket
                            .into_iter()
                            .map(|(bucket, rowsets)| TabletEntry { bucket, rowsets })
                            .collect(),
                        name: p.name,
                        bound: p.bound,
                        version: p.visible_version,
                    });
                }
            }
            objects.push(ObjectEntry {
                name: o.name.clone(),
                definition: row.def,
                partitions,
            });
        }
        let wanted: Vec<&String> = plan.functions.iter().map(|f| &f.signature).collect();
        functions = catalog::functions(conn, Some(db.id))?
            .into_iter()
            .filter(|f| wanted.contains(&&f.signature()))
            .collect();
    }
    let wanted: Vec<&String> = plan.external_catalogs.iter().map(|c| &c.name).collect();
    let external_catalogs = catalog::external_catalogs(conn)?
        .into_iter()
        .filter(|c| wanted.contains(&&c.name))
        .collect();
    Ok(Manifest {
        format: crate::repo::format::FORMAT_VERSION,
        label: plan.snapshot.label.clone(),
        timestamp: timestamp.to_string(),
        source: Source {
            cluster,
            srbackup: env!("CARGO_PKG_VERSION").to_string(),
        },
        database: db.map(|d| d.name),
        objects,
        functions,
        external_catalogs,
        files: vec![],
    })
}
