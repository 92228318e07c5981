//! What each task of a plan does. Transfers return a future for a worker; every other task
//! runs on the coordinator in one catalog transaction that also journals it.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;

use super::journal::{
    DownloadEntry, Empty, Entry, Journal, ManifestEntry, PinEntry, StageEntry, UploadEntry,
};
use super::{Runner, Stop, TransferResult, Units};
use crate::catalog::{ObjectDef, ObjectState, Reader, RowsetRow};
use crate::engine::maintenance::{self, Publish};
use crate::plan::{Action, ObjectAction, Task};
use crate::repo::format::{
    FileEntry, ObjectEntry, PartitionEntry, RowsetEntry, Source, TabletEntry,
};
use crate::repo::{Manifest, RepoError, Sha256, SnapshotId};

/// Records each table's (and async MV's) CHECKSUM TABLE result in the manifest, as the sum of
/// its base rowsets' checksums: each rowset file is read once ever per table schema (the
/// catalog keeps the results; rowsets are immutable), so an incremental backup reads nothing
/// it read before.
async fn record_checksums(
    engine: &mut crate::engine::Engine,
    plan: &crate::plan::Plan,
    manifest: &mut Manifest,
) -> Result<(), Stop> {
    let root = engine.root().to_path_buf();
    let mut paths: HashMap<String, (std::path::PathBuf, u64)> = HashMap::new();
    {
        let conn = engine.catalog().view();
        for task in &plan.tasks {
            let Action::Uploads { files, .. } = &task.action else {
                continue;
            };
            for f in files {
                if let Some(r) = conn.rowset(f.rowset_id)? {
                    paths.insert(f.sha256.hex(), (root.join(&r.path), r.bytes as u64));
                }
            }
        }
    }
    let mut all_complete = true;
    for o in &mut manifest.objects {
        let schema = match &o.definition {
            ObjectDef::Table { schema, .. } | ObjectDef::MaterializedView { schema, .. } => schema,
            ObjectDef::View { .. } => continue,
        };
        let key = {
            use sha2::Digest;
            // The schema, and this build: a later build computes its own (CHECKSUM TABLE's row
            // encoding is Arrow's, which an upgrade could change).
            let text = serde_json::to_string(schema).map_err(|e| failed(e.to_string()))?;
            let keyed = format!("{}\n{text}", env!("CARGO_PKG_VERSION"));
            hex::encode(sha2::Sha256::digest(keyed.as_bytes()))
        };
        // The known sums from the catalog; the rest computed on the runtime's workers, several
        // rowsets at once (each is a CPU-bound scan of one file).
        let (mut rows, mut sum, mut complete) = (0u64, 0u64, true);
        let mut missing: Vec<(String, std::path::PathBuf, u64)> = Vec::new();
        {
            let view = engine.catalog().view();
            'rowsets: for p in &o.partitions {
                for t in &p.tablets {
                    for r in t.rowsets.iter().filter(|r| r.rollup.is_none()) {
                        let hex = r.sha256.to_string();
                        match view.rowset_checksum(&hex, &key)? {
                            Some((n, s)) => {
                                rows += n;
                                sum = sum.wrapping_add(s);
                            }
                            None => match paths.get(&hex) {
                                Some((path, bytes)) => missing.push((hex, path.clone(), *bytes)),
                                None => {
                                    complete = false;
                                    break 'rowsets;
                                }
                            },
                        }
                    }
                }
            }
        }
        let mut fresh = Vec::new();
        if complete && !missing.is_empty() {
            let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
            let schema = std::sync::Arc::new(schema.clone());
            let mut computed = futures::stream::iter(missing)
                .map(|(hex, path, bytes)| {
                    let schema = schema.clone();
                    tokio::spawn(async move {
                        let c = crate::engine::query::rowset_checksum(&schema, &path, bytes).await;
                        (hex, c)
                    })
                })
                .buffer_unordered(parallel);
            while let Some(done) = computed.next().await {
                match done {
                    Ok((hex, Ok(c))) => {
                        rows += c.rows;
                        sum = sum.wrapping_add(c.sum);
                        fresh.push((hex, c.rows, c.sum));
                    }
                    // A file gone since (the job resumed after its pin was released): not
                    // recorded, rather than a failed backup.
                    _ => complete = false,
                }
            }
        }
        if !fresh.is_empty() {
            engine.catalog().write(|tx| {
                for (hex, n, s) in &fresh {
                    tx.save_rowset_checksum(hex, &key, *n, *s)?;
                }
                Ok(())
            })?;
        }
        o.checksum = complete.then_some(crate::repo::format::TableChecksum { rows, sum });
        all_complete &= complete;
    }
    // All or none: a drill takes a checksum missing among recorded ones for an edited manifest.
    if !all_complete {
        for o in &mut manifest.objects {
            o.checksum = None;
        }
    }
    Ok(())
}

fn failed(message: impl Into<String>) -> Stop {
    Stop::Failed(message.into())
}

impl Runner<'_> {
    fn db_id(&mut self, name: &str) -> Result<i64, Stop> {
        self.engine
            .catalog()
            .view()
            .database(name)?
            .map(|d| d.id)
            .ok_or_else(|| failed(format!("database {name} does not exist")))
    }

    /// What the restore's stage task made for `target`.
    fn stage_of(&self, target: &str) -> Result<StageEntry, Stop> {
        let db = self.plan.target_database.clone().unwrap_or_default();
        let id = format!(
            "stage:{}.{}",
            crate::plan::id_part(&db),
            crate::plan::id_part(target)
        );
        match self.journal.get(&id) {
            Some(Entry::Stage(s)) => Ok(s.clone()),
            _ => Err(failed(format!("{target} was not staged"))),
        }
    }

    /// The staged object a restore created for `target`.
    pub(super) fn staged_id(&self, target: &str) -> Result<i64, Stop> {
        self.stage_of(target).map(|s| s.staged_id)
    }

    /// What the plan decided for `target` (create, overwrite, replace partitions).
    fn planned_action(&self, target: &str) -> Result<ObjectAction, Stop> {
        self.plan
            .objects
            .iter()
            .find(|o| o.target.as_deref().unwrap_or(&o.name) == target)
            .map(|o| o.action)
            .ok_or_else(|| failed(format!("the plan has no object {target}")))
    }

    fn manifest(&self) -> Result<&Manifest, Stop> {
        self.manifest
            .as_deref()
            .ok_or_else(|| failed("a restore task ran before the manifest was read"))
    }

    fn entry(&self, name: &str) -> Result<&ObjectEntry, Stop> {
        self.manifest()?
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

    /// Counts a finished transfer: moved, or (an upload) found already stored. Returns
    /// whether bytes moved.
    pub(super) fn count_transfer(&mut self, size: u64, entry: &Entry) -> bool {
        // A download always moves its bytes; an upload only when the repository lacked them.
        let sent = match entry {
            Entry::Upload(u) => u.sent,
            _ => true,
        };
        if sent {
            self.stats.files_sent += 1;
            self.stats.bytes_sent += size;
        } else {
            self.stats.files_skipped += 1;
            self.stats.bytes_skipped += size;
        }
        sent
    }

    /// The work of file `f` of transfer group `t` (unit `unit`), for a worker.
    pub(super) fn transfer(
        &mut self,
        unit: usize,
        t: usize,
        f: usize,
    ) -> Result<impl Future<Output = TransferResult> + Send + 'static, Stop> {
        let repo = self.repo.clone();
        let plan = self.plan.clone();
        let task = &plan.tasks[t];
        match &task.action {
            Action::Uploads { files, .. } => {
                let file = &files[f];
                // The file is the pinned rowset's own, as the catalog names it (checked against
                // the plan's checksum and size: a plan cannot make a backup read anything else).
                let row = self
                    .engine
                    .catalog()
                    .view()
                    .rowset(file.rowset_id)?
                    .filter(|r| {
                        r.sha256 == file.sha256.hex() && u64::try_from(r.bytes).ok() == Some(file.size)
                    })
                    .ok_or_else(|| {
                        failed(format!(
                            "{} file {f}: rowset {} is not in the catalog as planned; plan it again",
                            task.id, file.rowset_id
                        ))
                    })?;
                let source = self.engine.file_path(&row.path);
                let hash = Sha256::parse(&row.sha256).map_err(|e| failed(e.to_string()))?;
                let level = self.plan.options.zstd_level();
                Ok(Box::pin(async move {
                    let r = repo.upload_file(&source, &hash, level).await.map(|u| {
                        Entry::Upload(UploadEntry {
                            encoding: u.encoding,
                            bytes: u.bytes,
                            stored_bytes: u.stored_bytes,
                            sent: u.sent,
                        })
                    });
                    (unit, r)
                })
                    as std::pin::Pin<
                        Box<dyn Future<Output = TransferResult> + Send>,
                    >)
            }
            Action::Downloads { object, files, .. } => {
                let file = &files[f];
                let staged = self.staged_id(object)?;
                let sha = file.sha256.hex();
                let entry = self
                    .manifest_files
                    .get(&file.sha256)
                    .and_then(|&i| self.manifest.as_ref()?.files.get(i))
                    .cloned()
                    .ok_or_else(|| failed(format!("file {sha} is not in the manifest")))?;
                // `u{unit}`: a name version 2 (which numbered tasks, not files) never gave a file,
                // so a v2 job resumed here cannot land a file over one it already ingested.
                let relative = format!(
                    "data/{staged}/R{}-u{unit}-{}.parquet",
                    self.job.id,
                    &sha[..16]
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
                        Ok(Entry::Download(DownloadEntry { path: relative }))
                    }
                    .await;
                    (unit, r)
                }))
            }
            _ => Err(failed(format!("{} is not a transfer", task.id))),
        }
    }

    /// Journals finished transfers (by unit); a download is ingested into its staged tablet in
    /// the same transaction.
    pub(super) fn journal_transfers(
        &mut self,
        units: &Units,
        finished: &[(usize, Entry)],
    ) -> Result<(), Stop> {
        let job_id = self.job.id;
        let plan = self.plan.clone();
        let mut ingests = Vec::new();
        for (u, entry) in finished {
            let (t, f) = units.at(*u);
            if let (Action::Downloads { files, .. }, Entry::Download(d)) =
                (&plan.tasks[t].action, entry)
                && let Some(file) = plan.tasks[t].action.file(f)
            {
                ingests.push((
                    self.staged_id(&file.object)?,
                    file,
                    files[f].version,
                    d.path.clone(),
                ));
            }
        }
        let tablets = &mut self.staged_tablets;
        self.engine.catalog().try_write(|tx| -> Result<(), Stop> {
            // Tablet ids by (partition, bucket), read once per staged object of the job (a
            // staged object's tablets are made by its stage task, before any download).
            for (staged, file, version, path) in &ingests {
                if !tablets.contains_key(staged) {
                    tablets.insert(*staged, tx.tablet_ids(*staged)?);
                }
                let tablet_id = *tablets[staged]
                    .get(&(file.partition.clone(), i64::from(file.bucket)))
                    .ok_or_else(|| {
                        failed(format!(
                            "{}: the staged table has no tablet {}/{}",
                            file.object, file.partition, file.bucket
                        ))
                    })?;
                tx.insert_rowset(&RowsetRow {
                    id: 0,
                    tablet_id,
                    version: *version,
                    path: path.clone(),
                    rows: i64::try_from(file.rows).map_err(|_| failed("row count out of range"))?,
                    bytes: i64::try_from(file.size.0)
                        .map_err(|_| failed("file size out of range"))?,
                    sha256: file.sha256.hex(),
                    live: true,
                    rollup: file.rollup.clone(),
                })?;
            }
            for (u, entry) in finished {
                let (t, f) = units.at(*u);
                tx.journal_task(
                    job_id,
                    &crate::plan::file_key(&plan.tasks[t].id, f),
                    &entry.to_json(),
                )?;
            }
            Ok(())
        })?;
        for (u, entry) in finished {
            let (t, f) = units.at(*u);
            self.journal.insert_file(t, f, entry.clone());
        }
        Ok(())
    }

    /// Journals a coordinator task's entry in the caller's transaction.
    fn journal_in(
        tx: &crate::catalog::Tx<'_>,
        job_id: i64,
        task: &str,
        entry: &Entry,
    ) -> Result<(), Stop> {
        tx.journal_task(job_id, task, &entry.to_json())?;
        Ok(())
    }

    /// Runs a coordinator task and journals it in the same catalog transaction.
    pub(super) async fn run_inline(&mut self, task: &Task) -> Result<(), Stop> {
        let job_id = self.job.id;
        let id = task.id.clone();
        let entry: Entry = match &task.action {
            Action::Pin { database } => {
                let plan = self.plan.clone();
                let rowsets: Vec<i64> = plan
                    .tasks
                    .iter()
                    .flat_map(|t| match &t.action {
                        Action::Uploads { files, .. } => files.as_slice(),
                        _ => &[],
                    })
                    .map(|f| f.rowset_id)
                    .collect();
                let label = format!("backup job {job_id}");
                let timestamp = self.job.snapshot_timestamp.clone().unwrap_or_default();
                let database = database.clone();
                self.engine
                    .catalog()
                    .try_write(|tx| -> Result<Entry, Stop> {
                        // Exactly the plan's rowsets, all still live and where the plan says:
                        // otherwise the plan is stale or edited. Every upload then sends a pinned
                        // rowset's own file, as the catalog names it.
                        check_uploads(tx, &plan)?;
                        let pin_id = tx.insert_pin(&label, &rowsets)?;
                        let skeleton = skeleton(tx, &plan, &database, &timestamp)?;
                        let entry = Entry::Pin(Box::new(PinEntry { pin_id, skeleton }));
                        Self::journal_in(tx, job_id, &id, &entry)?;
                        Ok(entry)
                    })?
            }
            Action::WriteManifest { .. } => {
                let mut manifest: Manifest = match self.journal.pin() {
                    Some(p) => p.skeleton.clone(),
                    None => {
                        let plan = self.plan.clone();
                        let ts = self.job.snapshot_timestamp.clone().unwrap_or_default();
                        let db = plan.database.clone().unwrap_or_default();
                        let conn = self.engine.catalog().view();
                        skeleton(&conn, &plan, &db, &ts)?
                    }
                };
                let mut files: BTreeMap<crate::plan::Digest, FileEntry> = BTreeMap::new();
                for (t, task) in self.plan.tasks.iter().enumerate() {
                    let Action::Uploads { files: group, .. } = &task.action else {
                        continue;
                    };
                    for (f, file) in group.iter().enumerate() {
                        let Some(Entry::Upload(u)) = self.journal.file(t, f) else {
                            return Err(failed(format!("{} file {f} did not finish", task.id)));
                        };
                        if let std::collections::btree_map::Entry::Vacant(v) =
                            files.entry(file.sha256)
                        {
                            v.insert(FileEntry {
                                sha256: Sha256::parse(&file.sha256.hex())
                                    .map_err(|e| failed(e.to_string()))?,
                                bytes: file.size,
                                stored_bytes: u.stored_bytes,
                                encoding: u.encoding,
                            });
                        }
                    }
                }
                manifest.files = files.into_values().collect();
                record_checksums(self.engine, &self.plan, &mut manifest).await?;
                // The snapshot may name objects found already stored only while the lease
                // that kept GC from deleting them still holds.
                self.renew_lease().await?;
                match self.repo.write_manifest(&manifest).await {
                    Ok(()) => {}
                    // Written before a crash, or the same snapshot made twice at one instant.
                    Err(RepoError::Busy { .. })
                        if self.repo.read_manifest(&manifest.id()).await.ok().as_ref()
                            == Some(&manifest) => {}
                    Err(e) => return Err(e.into()),
                }
                let entry = Entry::Manifest(ManifestEntry {
                    timestamp: manifest.timestamp.clone(),
                });
                self.engine
                    .catalog()
                    .try_write(|tx| Self::journal_in(tx, job_id, &id, &entry))?;
                entry
            }
            Action::Release { .. } => {
                // Each table's checksum is computed while the pin still holds its rowsets (the
                // catalog keeps them), so the manifest written after the release finds them all,
                // whatever a DROP or a compaction does to the files meanwhile.
                if let Some(p) = self.journal.pin() {
                    let mut skeleton = p.skeleton.clone();
                    record_checksums(self.engine, &self.plan, &mut skeleton).await?;
                }
                let pin = self.journal.pin().map(|p| p.pin_id);
                let entry = Entry::Release(Empty {});
                self.engine.catalog().try_write(|tx| -> Result<(), Stop> {
                    if let Some(pin) = pin {
                        tx.delete_pin(pin)?;
                    }
                    Self::journal_in(tx, job_id, &id, &entry)
                })?;
                entry
            }
            Action::CreateDatabase { database } => {
                let database = database.clone();
                let entry = Entry::CreateDatabase(Empty {});
                self.engine.catalog().try_write(|tx| -> Result<(), Stop> {
                    if tx.database(&database)?.is_none() {
                        tx.create_database(&database)?;
                    }
                    Self::journal_in(tx, job_id, &id, &entry)
                })?;
                entry
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
                let planned = self.planned_action(&target)?;
                let staged_partitions: Vec<_> = entry
                    .partitions
                    .iter()
                    .filter(|p| partitions.contains(&p.name))
                    .map(|p| (p.name.clone(), p.bound.clone(), p.version))
                    .collect();
                let restored = partitions.clone();
                let replication = self.plan.options.replication_num;
                self.engine
                    .catalog()
                    .try_write(|tx| -> Result<Entry, Stop> {
                        // The target as the plan found it: still absent, or still the same
                        // object with a schema the snapshot fits.
                        let existing = tx.object(db_id, &target)?;
                        check_target(
                            tx,
                            &db,
                            &target,
                            planned,
                            existing.as_ref(),
                            &entry,
                            &restored,
                        )?;
                        let mut definition = entry.definition.clone();
                        if let (Some(n), Some(schema)) = (replication, schema_mut(&mut definition))
                        {
                            schema
                                .properties
                                .insert("replication_num".into(), n.to_string());
                        }
                        let staged_id = tx.insert_object_with_partitions(
                            db_id,
                            &target,
                            &definition,
                            ObjectState::Staged,
                            &staged_partitions,
                        )?;
                        // The table being overwritten refuses loads until the restore ends.
                        if let Some(e) = &existing {
                            tx.set_state(e.id, ObjectState::Restoring)?;
                        }
                        let entry = Entry::Stage(StageEntry {
                            staged_id,
                            existing_id: existing.map(|e| e.id),
                        });
                        Self::journal_in(tx, job_id, &id, &entry)?;
                        Ok(entry)
                    })?
            }
            Action::Commit { publish, .. } => {
                let mut items = Vec::new();
                let mut back_to_normal = Vec::new();
                for p in publish {
                    let stage = self.stage_of(&p.target)?;
                    match (p.action, stage.existing_id) {
                        (ObjectAction::ReplacePartitions, Some(target_id)) => {
                            back_to_normal.push(target_id);
                            items.push(Publish::Partitions {
                                staged_id: stage.staged_id,
                                target_id,
                                partitions: p.partitions.clone(),
                            });
                        }
                        (ObjectAction::ReplacePartitions, None) => {
                            return Err(failed(format!(
                                "{} was not there when the restore staged it",
                                p.target
                            )));
                        }
                        (_, replaces) => items.push(Publish::Replace {
                            staged_id: stage.staged_id,
                            replaces,
                        }),
                    }
                }
                let entry = Entry::Commit(Empty {});
                self.engine.catalog().try_write(|tx| -> Result<(), Stop> {
                    maintenance::publish_in(tx, &items)?;
                    for id in &back_to_normal {
                        tx.set_state(*id, ObjectState::Normal)?;
                    }
                    // Inactive MVs of the database whose base tables exist now come back.
                    maintenance::reactivate_mvs(tx)?;
                    Self::journal_in(tx, job_id, &id, &entry)
                })?;
                entry
            }
            Action::CreateView { name, target } => {
                let entry = self.entry(name)?.clone();
                let db = self.plan.target_database.clone().unwrap_or_default();
                let db_id = self.db_id(&db)?;
                let target = target.clone();
                let done = Entry::CreateView(Empty {});
                self.engine.catalog().try_write(|tx| -> Result<(), Stop> {
                    if let Some(e) = tx.object(db_id, &target)? {
                        tx.drop_object(e.id)?;
                    }
                    tx.insert_object(db_id, &target, &entry.definition, ObjectState::Normal)?;
                    Self::journal_in(tx, job_id, &id, &done)
                })?;
                done
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
                let done = Entry::ActivateMaterializedView(Empty {});
                self.engine.catalog().try_write(|tx| -> Result<(), Stop> {
                    let o = tx.object(db_id, &target)?.ok_or_else(|| {
                        failed(format!("{target} disappeared during the restore"))
                    })?;
                    tx.set_active(o.id, active, reason.as_deref())?;
                    Self::journal_in(tx, job_id, &id, &done)
                })?;
                done
            }
            Action::CreateFunction { signature, target } => {
                let f = self
                    .manifest()?
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
                let done = Entry::CreateFunction(Empty {});
                self.engine.catalog().try_write(|tx| -> Result<(), Stop> {
                    tx.delete_function(Some(db_id), &def.signature())?;
                    tx.insert_function(Some(db_id), &def)?;
                    Self::journal_in(tx, job_id, &id, &done)
                })?;
                done
            }
            Action::CreateCatalog { name, target } => {
                let c = self
                    .manifest()?
                    .external_catalogs
                    .iter()
                    .find(|c| &c.name == name)
                    .cloned()
                    .ok_or_else(|| failed(format!("catalog {name} is not in the snapshot")))?;
                let def = crate::catalog::ExternalCatalogDef {
                    name: target.clone(),
                    ..c
                };
                let done = Entry::CreateCatalog(Empty {});
                self.engine.catalog().try_write(|tx| -> Result<(), Stop> {
                    tx.delete_external_catalog(&def.name)?;
                    tx.insert_external_catalog(&def)?;
                    Self::journal_in(tx, job_id, &id, &done)
                })?;
                done
            }
            Action::ApplyPrivileges { .. } => {
                let set = self
                    .plan
                    .privileges
                    .clone()
                    .ok_or_else(|| failed("the plan lists no privileges to apply"))?;
                let snapshot = self.manifest()?.privileges.clone();
                let done = Entry::ApplyPrivileges(Empty {});
                self.engine.catalog().try_write(|tx| -> Result<(), Stop> {
                    apply_privileges(tx, &set, snapshot.as_ref())?;
                    Self::journal_in(tx, job_id, &id, &done)
                })?;
                done
            }
            Action::Uploads { .. } | Action::Downloads { .. } => {
                return Err(failed(format!("{} is a transfer", task.id)));
            }
        };
        self.journal.insert(task.id.clone(), entry);
        Ok(())
    }

    /// Undoes a stopped job (see [`undo`]).
    pub(super) async fn clean_up(&mut self) -> Result<(), String> {
        undo(self.engine, self.job.id, &self.plan, &self.journal)
    }
}

/// Each file of a backup plan's uploads names a live rowset, once, with that rowset's own
/// checksum and size, where the catalog has it: the object, partition, bucket and sync MV its
/// group and line say (the manifest is built from them). Checked against one read of each
/// object's live rowsets, in the pin's transaction.
fn check_uploads(tx: &Reader<'_>, plan: &crate::plan::Plan) -> Result<(), Stop> {
    let mut by_object: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for t in &plan.tasks {
        if let Action::Uploads { object, .. } = &t.action {
            by_object.entry(object.as_str()).or_default().push(t);
        }
    }
    if by_object.is_empty() {
        return Ok(());
    }
    let db = plan.database.as_deref().unwrap_or_default();
    let db_id = tx
        .database(db)?
        .map(|d| d.id)
        .ok_or_else(|| failed(format!("database {db} is gone")))?;
    let mut seen: std::collections::HashSet<i64> = std::collections::HashSet::new();
    for (object, tasks) in by_object {
        let row = tx
            .object(db_id, object)?
            .ok_or_else(|| failed(format!("{object} was dropped since the plan was made")))?;
        // Where each live rowset of the object sits, and what it holds.
        let mut live: HashMap<i64, (String, u32, RowsetRow)> = HashMap::new();
        tx.object_layout_each(row.id, |partition, bucket, r| {
            live.insert(r.id, (partition.to_string(), bucket as u32, r));
            true
        })?;
        for t in tasks {
            let Action::Uploads {
                partition,
                rollup,
                files,
                ..
            } = &t.action
            else {
                continue;
            };
            for (f, file) in files.iter().enumerate() {
                let Some((p, bucket, r)) = live.get(&file.rowset_id) else {
                    return Err(failed(format!(
                        "the data changed since the plan was made (rowset {} is gone); re-plan",
                        file.rowset_id
                    )));
                };
                let matches = seen.insert(file.rowset_id)
                    && p == partition
                    && *bucket == file.bucket
                    && &r.rollup == rollup
                    && r.sha256 == file.sha256.hex()
                    && u64::try_from(r.bytes).ok() == Some(file.size);
                if !matches {
                    return Err(failed(format!(
                        "task {} file {f} does not match the catalog's rowset {} (its place, checksum or size, or it is named twice); the plan was edited or is stale: plan it again",
                        t.id, file.rowset_id
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The schema of a table or MV definition, to change its properties.
fn schema_mut(def: &mut ObjectDef) -> Option<&mut crate::catalog::TableSchema> {
    match def {
        ObjectDef::Table { schema, .. } | ObjectDef::MaterializedView { schema, .. } => {
            Some(schema)
        }
        ObjectDef::View { .. } => None,
    }
}

/// The target of a stage as the plan decided: a created object's name still free, an
/// overwritten one still there with a schema the snapshot's fits (and, for a partition
/// restore, partitions that cover no value twice).
fn check_target(
    tx: &Reader<'_>,
    db: &str,
    target: &str,
    planned: ObjectAction,
    existing: Option<&crate::catalog::ObjectRow>,
    entry: &ObjectEntry,
    restored: &[String],
) -> Result<(), Stop> {
    match (planned, existing) {
        (ObjectAction::Create, None) => Ok(()),
        (ObjectAction::Create, Some(_)) => Err(failed(format!(
            "{db}.{target} was created after the restore was planned; nothing was restored (plan it again)"
        ))),
        (_, None) => Err(failed(format!(
            "{db}.{target} was dropped after the restore was planned; nothing was restored (plan it again)"
        ))),
        (action, Some(e)) => {
            let parts: Vec<(String, crate::catalog::PartitionBound)> = tx
                .partitions(e.id)?
                .into_iter()
                .map(|p| (p.name, p.bound))
                .collect();
            let incoming: Vec<(String, crate::catalog::PartitionBound)> = entry
                .partitions
                .iter()
                .map(|p| (p.name.clone(), p.bound.clone()))
                .collect();
            match crate::engine::fit::first_difference(
                &e.def,
                &parts,
                &entry.definition,
                &incoming,
                restored,
                action == ObjectAction::ReplacePartitions,
            ) {
                None => Ok(()),
                Some(diff) => Err(failed(format!(
                    "{db}.{target} changed after the restore was planned ({diff}); nothing was restored (plan it again)"
                ))),
            }
        }
    }
}

/// Undoes a stopped job: a backup releases its pin (uploaded objects stay for GC); a
/// restore that has not committed drops its staged objects and lets the tables it would
/// have overwritten take loads again, exactly as they were.
pub(super) fn undo(
    engine: &mut crate::engine::Engine,
    job_id: i64,
    plan: &crate::plan::Plan,
    journal: &Journal,
) -> Result<(), String> {
    let committed = journal.committed();
    let released = journal.released();
    let created_db = plan.tasks.iter().find_map(|t| match &t.action {
        Action::CreateDatabase { database } if journal.contains(&t.id) => Some(database.clone()),
        _ => None,
    });
    let cleaned = engine.catalog().write(|tx| -> crate::catalog::Result<()> {
        if !released && let Some(pin) = journal.pin() {
            tx.delete_pin(pin.pin_id)?;
        }
        if !committed {
            for (_, stage) in journal.stages() {
                tx.drop_object(stage.staged_id)?;
                if let Some(existing) = stage.existing_id {
                    tx.set_state(existing, ObjectState::Normal)?;
                }
            }
            // Last, once its staged objects are gone: a database this restore created and
            // published nothing into.
            if let Some(db) = &created_db {
                tx.drop_database_if_empty(db)?;
            }
        }
        Ok(())
    });
    cleaned.map_err(|e| format!("undoing the job failed: {e}"))?;
    if !committed {
        // The downloaded files of the dropped staged objects go now, with any download that
        // landed but was never ingested.
        let staged: Vec<i64> = journal.stages().map(|(_, s)| s.staged_id).collect();
        let _ = maintenance::collect_retired(engine);
        maintenance::remove_job_files(engine, job_id, &staged)
            .map_err(|e| format!("removing the job's files failed: {e}"))?;
    }
    Ok(())
}

/// The manifest of a backup without its file list: definitions and the tablets' rowsets, read
/// in the pin's transaction so that they describe exactly the pinned data.
fn skeleton(
    conn: &Reader<'_>,
    plan: &crate::plan::Plan,
    database: &str,
    timestamp: &str,
) -> Result<Manifest, Stop> {
    let cluster = conn.cluster_id()?;
    let mut objects = Vec::new();
    let mut functions = Vec::new();
    let db = if database.is_empty() {
        None
    } else {
        Some(
            conn.database(database)?
                .ok_or_else(|| failed(format!("database {database} is gone")))?,
        )
    };
    if let Some(db) = &db {
        // Rowsets by object, partition and bucket, in plan order.
        let mut tablets: HashMap<(String, String), BTreeMap<u32, Vec<RowsetEntry>>> =
            HashMap::new();
        for t in &plan.tasks {
            let Action::Uploads {
                object,
                partition,
                rollup,
                files,
            } = &t.action
            else {
                continue;
            };
            let by_bucket = tablets
                .entry((object.clone(), partition.clone()))
                .or_default();
            for file in files {
                by_bucket.entry(file.bucket).or_default().push(RowsetEntry {
                    sha256: Sha256::parse(&file.sha256.hex()).map_err(|e| failed(e.to_string()))?,
                    rows: file.rows,
                    bytes: file.size,
                    rollup: rollup.clone(),
                });
            }
        }
        for o in &plan.objects {
            let row = conn
                .object(db.id, &o.name)?
                .ok_or_else(|| failed(format!("{} was dropped during the backup", o.name)))?;
            let mut partitions = Vec::new();
            if !matches!(row.def, ObjectDef::View { .. }) {
                let selected: std::collections::HashSet<&String> = o.partitions.iter().collect();
                for p in conn.partitions(row.id)? {
                    if !selected.contains(&p.name) {
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
                checksum: None,
            });
        }
        let wanted: Vec<&String> = plan.functions.iter().map(|f| &f.signature).collect();
        functions = conn
            .functions(Some(db.id))?
            .into_iter()
            .filter(|f| wanted.contains(&&f.signature()))
            .collect();
    }
    let wanted: Vec<&String> = plan.external_catalogs.iter().map(|c| &c.name).collect();
    let external_catalogs = conn
        .external_catalogs()?
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
        privileges: privileges_with_hashes(conn, plan)?,
    })
}

/// The plan's privileges for the manifest: with the accounts' password hashes only when the
/// backup asked for them by name (`users_with_passwords`); the plan never holds them.
fn privileges_with_hashes(
    conn: &Reader<'_>,
    plan: &crate::plan::Plan,
) -> Result<Option<crate::repo::format::PrivilegeSet>, Stop> {
    let Some(mut set) = plan.privileges.clone() else {
        return Ok(None);
    };
    if plan.options.privileges == Some(crate::sql::options::PrivilegeScope::UsersWithPasswords) {
        for u in &mut set.users {
            if let Some(a) = conn.account(&u.name, &u.host)? {
                u.native_hash = a.native.filter(|h| h != crate::catalog::LOCKED);
                u.sha2_hash = a.sha2;
            }
        }
    }
    Ok(Some(set))
}

/// Re-applies a snapshot's privileges in one transaction: missing roles and users are created
/// (a user with a password but no hash in the snapshot is created locked), memberships and
/// grants added for holders that exist. Existing accounts keep their passwords. Idempotent.
fn apply_privileges(
    tx: &crate::catalog::Tx<'_>,
    set: &crate::repo::format::PrivilegeSet,
    snapshot: Option<&crate::repo::format::PrivilegeSet>,
) -> crate::catalog::Result<()> {
    use crate::catalog::{AccountRow, Holder, LOCKED, is_builtin_role};
    for r in &set.roles {
        if !is_builtin_role(&r.name) {
            tx.create_role(&r.name, &r.comment)?;
        }
    }
    for u in &set.users {
        // The root account is this cluster's own; no other account may be named root.
        if u.name == "root" || tx.account(&u.name, &u.host)?.is_some() {
            continue;
        }
        let hashes = snapshot.and_then(|s| {
            s.users
                .iter()
                .find(|x| x.name == u.name && x.host == u.host)
        });
        let (native, sha2) = match hashes {
            Some(h) if h.native_hash.is_some() || h.sha2_hash.is_some() => {
                (h.native_hash.clone(), h.sha2_hash.clone())
            }
            _ if u.has_password => (Some(LOCKED.to_string()), None),
            _ => (None, None),
        };
        tx.create_account(&AccountRow {
            name: u.name.clone(),
            host: u.host.clone(),
            native,
            sha2,
            plugin: u.plugin.clone(),
            require_ssl: u.require_ssl,
            default_roles: u.default_roles.clone(),
            all_default: u.all_default,
        })?;
    }
    let exists = |h: &Holder| -> crate::catalog::Result<bool> {
        Ok(match h {
            Holder::User { name, host } => tx.account(name, host)?.is_some(),
            Holder::Role(r) => is_builtin_role(r) || tx.role_exists(r)?,
        })
    };
    for g in &set.role_grants {
        let holder = crate::plan::privileges::holder_of(&g.holder);
        if exists(&holder)? && (is_builtin_role(&g.role) || tx.role_exists(&g.role)?) {
            tx.grant_role(&holder, &g.role)?;
        }
    }
    for g in &set.grants {
        let holder = crate::plan::privileges::holder_of(&g.holder);
        if exists(&holder)? {
            tx.grant(&crate::catalog::GrantRow {
                holder,
                privilege: g.privilege.clone(),
                kind: g.kind.clone(),
                db: g.db.clone(),
                name: g.name.clone(),
                with_grant: g.with_grant,
            })?;
        }
    }
    Ok(())
}
