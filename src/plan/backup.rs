//! BACKUP → plan: what the statement selects in the catalog, every rowset to send, and the
//! tasks pin → uploads → manifest, release.

use crate::code::Code;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::catalog::{JobKind, Reader};

use super::{
    Action, FileRef, Fingerprint, ObjectAction, ObjectKind, Plan, PlannedCatalog, PlannedFunction,
    PlannedObject, RepositoryRef, Size, SnapshotRef, Summary, Task, id_part,
};
use crate::catalog::{
    self, DatabaseRow, ExternalCatalogDef, FunctionDef, ObjectDef, ObjectRow, PartitionRow,
};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::repo::registry;
use crate::sql::options::{self, BackupType, JobOptions, JobStatement};
use crate::sql::{Backup, CatalogSelection, Ident, ObjectRef, Problem, Span, closest};

/// One rowset of a selected object, where it sits.
#[derive(Clone, Debug)]
pub struct RowsetAt {
    pub partition: String,
    pub bucket: u32,
    pub rowset: catalog::RowsetRow,
}

/// A table or MV selected for backup, with the partitions taken and their rowsets.
#[derive(Clone, Debug)]
pub struct DataObject {
    pub object: ObjectRow,
    pub partitions: Vec<PartitionRow>,
    pub rowsets: Vec<RowsetAt>,
}

/// Everything a BACKUP statement selects, read in one catalog transaction.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub database: Option<DatabaseRow>,
    pub data: Vec<DataObject>,
    pub views: Vec<ObjectRow>,
    pub functions: Vec<FunctionDef>,
    pub catalogs: Vec<ExternalCatalogDef>,
}

impl Selection {
    /// The catalog state a backup of this selection depends on.
    pub fn fingerprint(&self) -> String {
        let mut f = Fingerprint::default();
        f.add(("backup", self.database.as_ref().map(|d| &d.name)));
        for d in &self.data {
            f.add((&d.object.name, &d.object.def));
            for p in &d.partitions {
                f.add((&p.name, &p.bound, p.visible_version));
            }
            for r in &d.rowsets {
                f.add((&r.partition, r.bucket, r.rowset.id, &r.rowset.sha256));
            }
        }
        for v in &self.views {
            f.add((&v.name, &v.def));
        }
        f.add(&self.functions);
        f.add(&self.catalogs);
        f.finish()
    }
}

fn problem(code: Code, span: Span, message: impl Into<String>) -> Error {
    Error::at(Problem::new(code, span, message))
}

/// An unknown name, with the closest existing one or the list of candidates.
pub(crate) fn unknown(what: &str, name: &Ident, place: &str, candidates: &[String]) -> Error {
    let mut p = Problem::new(
        Code::PlanUnknown,
        name.span,
        format!("{what} {} does not exist in {place}", name.value),
    )
    .label(format!("unknown {what}"));
    p = match closest(&name.value, candidates.iter().map(String::as_str)) {
        Some(s) => p.help(format!("did you mean {s}?")),
        None if candidates.is_empty() => p.help(format!("{place} has no {what}s")),
        None => p.help(format!("{place} has: {}", candidates.join(", "))),
    };
    Error::at(p)
}

/// Every partition a statement names must be among `existing` (of `place`).
pub(crate) fn check_partitions(
    named: &[crate::sql::Literal],
    existing: &[String],
    place: &str,
) -> Result<()> {
    for p in named {
        if !existing.contains(&p.value) {
            let name = Ident {
                value: p.value.clone(),
                span: p.span,
            };
            return Err(unknown("partition", &name, place, existing));
        }
    }
    Ok(())
}

/// Reads the rowsets of a table or MV (restricted to `wanted` partitions), in catalog order.
fn data_object(
    conn: &Reader<'_>,
    object: ObjectRow,
    wanted: Option<&[String]>,
) -> Result<DataObject> {
    let partitions: Vec<PartitionRow> = conn
        .partitions(object.id)?
        .into_iter()
        .filter(|p| wanted.is_none_or(|w| w.contains(&p.name)))
        .collect();
    let names: HashSet<&str> = partitions.iter().map(|p| p.name.as_str()).collect();
    let rowsets = conn
        .object_layout(object.id)?
        .into_iter()
        .filter(|(p, _, _)| names.contains(p.as_str()))
        .map(|(partition, bucket, rowset)| RowsetAt {
            partition,
            bucket: bucket as u32,
            rowset,
        })
        .collect();
    Ok(DataObject {
        object,
        partitions,
        rowsets,
    })
}

/// Resolves what `stmt` selects. Errors point at the offending name.
pub fn select(engine: &mut Engine, stmt: &Backup) -> Result<Selection> {
    let database = match &stmt.database {
        Some(db) => Some(engine.database(db)?),
        None if stmt.external_catalogs.is_some() => None,
        None => {
            return Err(Error::at(
                Problem::new(
                    Code::PlanNoDatabase,
                    stmt.snapshot.span,
                    "the BACKUP names no database",
                )
                .label("which database?")
                .help("write BACKUP DATABASE db SNAPSHOT name ... or BACKUP SNAPSHOT db.name ..."),
            ));
        }
    };
    engine.catalog().read(|conn| -> Result<Selection> {
        let mut sel = Selection {
            database: database.clone(),
            ..Selection::default()
        };
        if let Some(db) = &database {
            select_in_database(conn, db, stmt, &mut sel)?;
        }
        if let Some(catalogs) = &stmt.external_catalogs {
            let all = conn.external_catalogs()?;
            match catalogs {
                CatalogSelection::All => {
                    if all.is_empty() {
                        return Err(problem(
                            Code::PlanNoCatalogs,
                            stmt.span,
                            "the cluster has no external catalogs to back up",
                        ));
                    }
                    sel.catalogs = all;
                }
                CatalogSelection::Named(refs) => {
                    for r in refs {
                        match all.iter().find(|c| c.name == r.name.value) {
                            Some(c) => sel.catalogs.push(c.clone()),
                            None => {
                                let names: Vec<String> =
                                    all.iter().map(|c| c.name.clone()).collect();
                                return Err(unknown(
                                    "external catalog",
                                    &r.name,
                                    "the cluster",
                                    &names,
                                ));
                            }
                        }
                    }
                }
            }
        }
        Ok(sel)
    })
}

fn select_in_database(
    conn: &Reader<'_>,
    db: &DatabaseRow,
    stmt: &Backup,
    sel: &mut Selection,
) -> Result<()> {
    let objects: Vec<ObjectRow> = conn
        .objects(db.id)?
        .into_iter()
        .filter(|o| o.state != catalog::ObjectState::Staged)
        .collect();
    let functions = conn.functions(Some(db.id))?;
    let place = format!("database {}", db.name);
    let of_kind = |k: catalog::ObjectKind| -> Vec<&ObjectRow> {
        objects.iter().filter(|o| o.def.kind() == k).collect()
    };
    // Objects by name, each once, with the partitions asked for (None = all).
    let mut chosen: BTreeMap<String, (ObjectRow, Option<Vec<String>>)> = BTreeMap::new();
    let mut chosen_functions: BTreeSet<String> = BTreeSet::new();
    fn take(
        chosen: &mut BTreeMap<String, (ObjectRow, Option<Vec<String>>)>,
        o: &ObjectRow,
        parts: Option<Vec<String>>,
    ) {
        chosen.insert(o.name.clone(), (o.clone(), parts));
    }
    if stmt.on.is_empty() {
        for o in &objects {
            take(&mut chosen, o, None);
        }
        chosen_functions.extend(functions.iter().map(|f| f.signature()));
    }
    for item in &stmt.on {
        match item {
            ObjectRef::All { of, .. } => match of {
                crate::sql::ObjectKind::Tables => {
                    for o in of_kind(catalog::ObjectKind::Table) {
                        take(&mut chosen, o, None)
                    }
                }
                crate::sql::ObjectKind::MaterializedViews => {
                    for o in of_kind(catalog::ObjectKind::MaterializedView) {
                        take(&mut chosen, o, None)
                    }
                }
                crate::sql::ObjectKind::Views => {
                    for o in of_kind(catalog::ObjectKind::View) {
                        take(&mut chosen, o, None)
                    }
                }
                crate::sql::ObjectKind::Functions => {
                    chosen_functions.extend(functions.iter().map(|f| f.signature()))
                }
            },
            ObjectRef::Function { name, .. } => {
                check_database(name.database.as_ref(), db)?;
                let matching: Vec<&FunctionDef> = functions
                    .iter()
                    .filter(|f| f.name.eq_ignore_ascii_case(&name.name.value))
                    .collect();
                if matching.is_empty() {
                    let names: Vec<String> = functions.iter().map(|f| f.name.clone()).collect();
                    return Err(unknown("function", &name.name, &place, &names));
                }
                chosen_functions.extend(matching.iter().map(|f| f.signature()));
            }
            ObjectRef::Table { name, .. }
            | ObjectRef::MaterializedView { name, .. }
            | ObjectRef::View { name, .. } => {
                check_database(name.database.as_ref(), db)?;
                let partitions: &[crate::sql::Literal] = match item {
                    ObjectRef::Table { partitions, .. } => partitions,
                    _ => &[],
                };
                let want: catalog::ObjectKind = match item {
                    ObjectRef::Table { .. } => catalog::ObjectKind::Table,
                    ObjectRef::MaterializedView { .. } => catalog::ObjectKind::MaterializedView,
                    _ => catalog::ObjectKind::View,
                };
                let Some(o) = objects.iter().find(|o| o.name == name.name.value) else {
                    // A synchronous MV is not an object: it lives in its base table.
                    if let Some(base) = objects.iter().find(|o| {
                        matches!(&o.def, ObjectDef::Table { rollups, .. } if rollups.iter().any(|r| r.name == name.name.value))
                    }) {
                        return Err(Error::at(
                            Problem::new(
                                Code::PlanSyncMv,
                                name.name.span,
                                format!("{} is a synchronous materialized view of {}", name.name.value, base.name),
                            )
                            .label("kept inside its base table")
                            .help(format!("back up TABLE {}: its synchronous MVs travel with it", base.name)),
                        ));
                    }
                    let names: Vec<String> = of_kind(want).iter().map(|o| o.name.clone()).collect();
                    return Err(unknown(
                        ObjectKind::from(want).noun(),
                        &name.name,
                        &place,
                        &names,
                    ));
                };
                if o.def.kind() != want {
                    return Err(Error::at(
                        Problem::new(
                            Code::PlanWrongKind,
                            name.name.span,
                            format!(
                                "{} is a {}, not a {}",
                                o.name,
                                ObjectKind::from(o.def.kind()).noun(),
                                ObjectKind::from(want).noun()
                            ),
                        )
                        .label("wrong kind")
                        .help(format!(
                            "write {} {}",
                            match o.def.kind() {
                                catalog::ObjectKind::Table => "TABLE",
                                catalog::ObjectKind::MaterializedView => "MATERIALIZED VIEW",
                                catalog::ObjectKind::View => "VIEW",
                            },
                            o.name
                        )),
                    ));
                }
                let parts = if partitions.is_empty() {
                    None
                } else {
                    let existing: Vec<String> =
                        conn.partitions(o.id)?.into_iter().map(|p| p.name).collect();
                    check_partitions(partitions, &existing, &format!("table {}", o.name))?;
                    // Two mentions of one table add up.
                    let mut all: Vec<String> = chosen
                        .get(&o.name)
                        .and_then(|(_, p)| p.clone())
                        .unwrap_or_default();
                    all.extend(partitions.iter().map(|p| p.value.clone()));
                    all.sort();
                    all.dedup();
                    Some(all)
                };
                take(&mut chosen, o, parts);
            }
        }
    }
    for (_, (o, parts)) in chosen {
        match o.def.kind() {
            catalog::ObjectKind::View => sel.views.push(o),
            _ => sel.data.push(data_object(conn, o, parts.as_deref())?),
        }
    }
    sel.functions = functions
        .into_iter()
        .filter(|f| chosen_functions.contains(&f.signature()))
        .collect();
    Ok(())
}

fn check_database(named: Option<&Ident>, db: &DatabaseRow) -> Result<()> {
    match named {
        Some(n) if n.value != db.name => Err(Error::at(
            Problem::new(
                Code::PlanOtherDatabase,
                n.span,
                format!(
                    "{} is not the database being backed up ({})",
                    n.value, db.name
                ),
            )
            .label("another database")
            .help("a BACKUP covers one database; back the other one up separately"),
        )),
        _ => Ok(()),
    }
}

/// The plan of a BACKUP.
pub async fn plan(engine: &mut Engine, stmt: &Backup, text: &str) -> Result<Plan> {
    let options = super::job_options(JobStatement::Backup, &stmt.properties)?;
    if options.backup_type == Some(BackupType::Incremental) {
        let at = options::find(&stmt.properties, "type")
            .map(|v| v.span)
            .unwrap_or(stmt.span);
        return Err(Error::at(
            Problem::new(
                Code::PlanIncremental,
                at,
                "the embedded engine takes no \"type\" = \"INCREMENTAL\"",
            )
            .label("not needed here")
            .help(
                "every srbackup backup is already incremental in what it sends: it uploads only the \
                 files the repository lacks (objects are deduplicated by content), and each snapshot \
                 is still complete on its own; remove \"type\" or write \"FULL\"",
            ),
        ));
    }
    let repository = registry::open(engine.catalog(), &stmt.repository)?;
    if repository.read_only {
        return Err(Error::at(
            Problem::new(
                Code::PlanReadOnly,
                stmt.repository.span,
                format!("repository {} is read-only", repository.name),
            )
            .label("read-only")
            .help("back up to a repository created without READ ONLY"),
        ));
    }
    let selection = select(engine, stmt)?;
    if selection.data.is_empty()
        && selection.views.is_empty()
        && selection.functions.is_empty()
        && selection.catalogs.is_empty()
    {
        return Err(problem(
            Code::PlanEmpty,
            stmt.span,
            "the BACKUP selects nothing: the database holds no such objects",
        ));
    }
    repository.require_format().await?;
    let stored: HashSet<String> = repository
        .list_objects()
        .await?
        .keys()
        .filter_map(|k| crate::repo::format::parse_object_key(k))
        .map(|(h, _)| h.to_string())
        .collect();
    let mut plan = build(stmt, text, &options, &repository, &selection, &stored);
    if let Some(scope) = options.privileges {
        let objects: Vec<String> = plan.objects.iter().map(|o| o.name.clone()).collect();
        let functions: Vec<String> = selection.functions.iter().map(|f| f.name.clone()).collect();
        let catalogs: Vec<String> = selection.catalogs.iter().map(|c| c.name.clone()).collect();
        let db = selection.database.as_ref().map(|d| d.name.clone());
        plan.privileges = Some(engine.catalog().read(|r| {
            super::privileges::for_backup(r, scope, db.as_deref(), &objects, &functions, &catalogs)
        })?);
    }
    Ok(plan)
}

/// Turns a selection into objects and tasks. Pure: the same inputs give the same plan.
pub fn build(
    stmt: &Backup,
    text: &str,
    options: &JobOptions,
    repository: &crate::repo::Repository,
    selection: &Selection,
    stored: &HashSet<String>,
) -> Plan {
    let db = selection.database.as_ref().map(|d| d.name.clone());
    let db_part = db
        .as_deref()
        .map(id_part)
        .unwrap_or_else(|| "catalogs".into());
    let mut objects = Vec::new();
    let mut tasks = Vec::new();
    let mut uploads = Vec::new();
    let mut summary = Summary::default();
    let pin_id = format!("pin:{db_part}");
    let all_rowsets: Vec<i64> = selection
        .data
        .iter()
        .flat_map(|d| d.rowsets.iter().map(|r| r.rowset.id))
        .collect();
    if !all_rowsets.is_empty() {
        tasks.push(Task {
            id: pin_id.clone(),
            action: Action::Pin {
                database: db.clone().unwrap_or_default(),
                rowsets: all_rowsets,
            },
            after: vec![],
        });
    }
    let mut sent_hashes: HashSet<&str> = HashSet::new();
    for d in &selection.data {
        let o = &d.object;
        let sync_mvs = match &o.def {
            ObjectDef::Table { rollups, .. } => rollups.iter().map(|r| r.name.clone()).collect(),
            _ => vec![],
        };
        let bytes: u64 = d.rowsets.iter().map(|r| r.rowset.bytes as u64).sum();
        objects.push(PlannedObject {
            kind: o.def.kind().into(),
            name: o.name.clone(),
            target: None,
            action: ObjectAction::Backup,
            partitions: d.partitions.iter().map(|p| p.name.clone()).collect(),
            sync_mvs,
            files: d.rowsets.len() as u64,
            size: Size(bytes),
            inactive_reason: None,
        });
        // Rowsets numbered per tablet and rollup, in version order: stable, readable ids.
        let mut counters: BTreeMap<(String, u32, Option<String>), usize> = BTreeMap::new();
        for r in &d.rowsets {
            let n = counters
                .entry((r.partition.clone(), r.bucket, r.rowset.rollup.clone()))
                .or_default();
            let id = super::file_task_id(
                "upload",
                &format!("{db_part}.{}", id_part(&o.name)),
                &r.partition,
                r.bucket,
                r.rowset.rollup.as_deref(),
                *n,
            );
            *n += 1;
            let in_repository = stored.contains(&r.rowset.sha256);
            summary.files += 1;
            summary.size.0 += r.rowset.bytes as u64;
            if in_repository || !sent_hashes.insert(&r.rowset.sha256) {
                summary.already_in_repository += 1;
                summary.already_in_repository_size.0 += r.rowset.bytes as u64;
            }
            uploads.push(id.clone());
            tasks.push(Task {
                id,
                action: Action::Upload {
                    file: FileRef {
                        object: o.name.clone(),
                        partition: r.partition.clone(),
                        bucket: r.bucket,
                        rollup: r.rowset.rollup.clone(),
                        sha256: r.rowset.sha256.clone(),
                        rows: r.rowset.rows as u64,
                        size: Size(r.rowset.bytes as u64),
                    },
                    rowset_id: r.rowset.id,
                    path: r.rowset.path.clone(),
                    in_repository,
                },
                after: vec![pin_id.clone()],
            });
        }
    }
    for v in &selection.views {
        objects.push(PlannedObject {
            kind: ObjectKind::View,
            name: v.name.clone(),
            target: None,
            action: ObjectAction::Backup,
            partitions: vec![],
            sync_mvs: vec![],
            files: 0,
            size: Size(0),
            inactive_reason: None,
        });
    }
    objects.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    summary.objects = objects.len() as u64;
    let label = stmt.snapshot.value.clone();
    // uploads → release → manifest: the pin is let go as soon as the files are stored, and the
    // manifest, which makes the snapshot exist, is the very last step.
    let mut manifest_after = vec![];
    if !uploads.is_empty() {
        let release = format!("release:{db_part}");
        tasks.push(Task {
            id: release.clone(),
            action: Action::Release {
                database: db.clone().unwrap_or_default(),
            },
            after: uploads,
        });
        manifest_after.push(release);
    }
    tasks.push(Task {
        id: format!("manifest:{}", id_part(&label)),
        action: Action::WriteManifest {
            label: label.clone(),
        },
        after: manifest_after,
    });
    Plan {
        format: super::PLAN_FORMAT.to_string(),
        version: super::PLAN_VERSION,
        kind: JobKind::Backup,
        statement: text.trim().trim_end_matches(';').trim().to_string(),
        repository: RepositoryRef {
            name: repository.name.clone(),
            location: repository.location.clone(),
        },
        snapshot: SnapshotRef {
            label,
            timestamp: None,
            newest: false,
            manifest_sha256: None,
        },
        database: db,
        target_database: None,
        fingerprint: selection.fingerprint(),
        options: options.clone(),
        objects,
        functions: selection
            .functions
            .iter()
            .map(|f| PlannedFunction {
                signature: f.signature(),
                target: None,
            })
            .collect(),
        external_catalogs: selection
            .catalogs
            .iter()
            .map(|c| PlannedCatalog {
                name: c.name.clone(),
                target: None,
            })
            .collect(),
        summary,
        tasks,
        privileges: None,
    }
}
