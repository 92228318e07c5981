//! BACKUP → plan: what the statement selects in the catalog, every rowset to send, and the
//! tasks pin → uploads → manifest, release.

use crate::code::Code;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::catalog::{JobKind, Reader};

use serde::Serialize;

use super::{
    Action, Digest, Fingerprint, ObjectAction, ObjectKind, Plan, PlannedCatalog, PlannedFunction,
    PlannedObject, RepositoryRef, Size, SnapshotRef, Summary, Task, UploadFile, id_part,
};
use crate::catalog::{
    self, DatabaseRow, ExternalCatalogDef, FunctionDef, ObjectDef, ObjectRow, PartitionRow,
};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::repo::registry;
use crate::sql::options::{self, BackupType, JobOptions, JobStatement};
use crate::sql::{Backup, CatalogSelection, Ident, ObjectRef, Problem, Span, closest};

/// A table or MV selected for backup, with the partitions taken. Its rowsets are not held:
/// the planner streams them from the catalog into the plan.
#[derive(Clone, Debug)]
pub struct DataObject {
    pub object: ObjectRow,
    pub partitions: Vec<PartitionRow>,
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

/// A table or MV with its partitions (restricted to `wanted`), in catalog order.
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
    Ok(DataObject { object, partitions })
}

/// Resolves what `stmt` selects. Errors point at the offending name.
pub fn select(engine: &mut Engine, stmt: &Backup) -> Result<Selection> {
    let database = database_of(engine, stmt)?;
    engine
        .catalog()
        .read(|conn| select_in(conn, database.as_ref(), stmt))
}

fn database_of(engine: &mut Engine, stmt: &Backup) -> Result<Option<DatabaseRow>> {
    Ok(match &stmt.database {
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
    })
}

fn select_in(
    conn: &Reader<'_>,
    database: Option<&DatabaseRow>,
    stmt: &Backup,
) -> Result<Selection> {
    {
        let mut sel = Selection {
            database: database.cloned(),
            ..Selection::default()
        };
        if let Some(db) = database {
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
    }
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

/// The plan of a BACKUP, in memory.
pub async fn plan(engine: &mut Engine, stmt: &Backup, text: &str) -> Result<Plan> {
    let mut groups = Vec::new();
    let mut plan = plan_with(engine, stmt, text, &mut |task| {
        groups.push(task);
        Ok(())
    })
    .await?;
    // Pin first, then the uploads, then release and manifest.
    let at = groups_at(&plan);
    plan.tasks.splice(at..at, groups);
    Ok(plan)
}

/// Where a backup plan's upload groups go among its other tasks: after the pin.
fn groups_at(plan: &Plan) -> usize {
    usize::from(plan.tasks.first().is_some_and(|t| t.action.kind() == "pin"))
}

/// One task as [`Plan::to_json`] writes it inside the plan's task list.
fn write_task(w: &mut impl std::io::Write, task: &Task) -> std::io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, super::PlanFormatter::for_task());
    task.serialize(&mut ser).map_err(std::io::Error::other)
}

/// The plan of a BACKUP written to `out` as it is made: each upload group goes to a spool
/// file beside `out` when the catalog yields it, and the plan file is the header, the spool
/// and the trailer, byte for byte what [`Plan::to_json`] writes for the same plan. Memory
/// holds one partition's files at a time, not the plan. Returns the plan without its upload
/// groups, and how many groups the file holds.
pub async fn plan_to_file(
    engine: &mut Engine,
    stmt: &Backup,
    text: &str,
    out: &std::path::Path,
) -> Result<(Plan, usize)> {
    use std::io::Write;
    let io = |e: std::io::Error| Error::invalid(format!("{}: {e}", out.display()), None);
    let spool = tempfile::NamedTempFile::new_in(super::beside(out)).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, spool.as_file());
    let mut count = 0;
    let plan = plan_with(engine, stmt, text, &mut |task| {
        if count > 0 {
            w.write_all(b",\n    ")?;
        }
        count += 1;
        write_task(&mut w, &task)
    })
    .await?;
    w.flush().map_err(io)?;
    drop(w);
    // The header and trailer, with a marker task where the groups go.
    let marker = Task {
        id: "\u{0}upload groups".into(),
        action: Action::Release {
            database: String::new(),
        },
        after: vec![],
    };
    let mut with_marker = plan.clone();
    if count > 0 {
        with_marker.tasks.insert(groups_at(&plan), marker.clone());
    }
    let whole = with_marker.to_json();
    let mut marker_text = Vec::new();
    write_task(&mut marker_text, &marker).map_err(io)?;
    let marker_text = String::from_utf8_lossy(&marker_text);
    let (head, tail) = match (count, whole.find(marker_text.as_ref())) {
        (0, _) => (whole.as_str(), ""),
        (_, Some(i)) => (&whole[..i], &whole[i + marker_text.len()..]),
        (_, None) => {
            return Err(Error::invalid(
                "writing the plan: its upload groups have no place in it",
                None,
            ));
        }
    };
    let mut groups = std::fs::File::open(spool.path()).map_err(io)?;
    super::replace_file(out, |f| {
        f.write_all(head.as_bytes())?;
        std::io::copy(&mut groups, f)?;
        f.write_all(tail.as_bytes())
    })?;
    Ok((plan, count))
}

/// Plans a BACKUP, handing each upload group to `groups` as the catalog yields it; the plan
/// returned holds every other task.
/// The objects a repository holds, as a backup plan asks about them (by content hash).
struct Stored<'k> {
    names: HashSet<Digest>,
    keys: Option<&'k crate::repo::crypto::Keys>,
}

impl Stored<'_> {
    fn contains(&self, sha256: &Digest) -> bool {
        match self.keys {
            None => self.names.contains(sha256),
            Some(keys) => crate::repo::Sha256::parse(&sha256.hex())
                .ok()
                .and_then(|h| Digest::parse(keys.object_name(&h).as_str()).ok())
                .is_some_and(|name| self.names.contains(&name)),
        }
    }
}

async fn plan_with(
    engine: &mut Engine,
    stmt: &Backup,
    text: &str,
    groups: &mut dyn FnMut(Task) -> std::io::Result<()>,
) -> Result<Plan> {
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
    let database = database_of(engine, stmt)?;
    // Checked before the repository is listed, so that a statement naming nothing fails
    // without touching the repository.
    let selection = engine
        .catalog()
        .read(|conn| select_in(conn, database.as_ref(), stmt))?;
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
    let stored: HashSet<Digest> = repository
        .list_objects()
        .await?
        .keys()
        .filter_map(|k| crate::repo::format::parse_object_key(k))
        .filter_map(|(h, _)| Digest::parse(h.as_str()).ok())
        .collect();
    // An encrypted repository names objects by a keyed hash of their content: the plan's
    // plain hashes are looked up under those names.
    let keys = repository.keys().await?;
    let stored = Stored {
        names: stored,
        keys: keys.as_deref(),
    };
    // The selection again, and every rowset, in one catalog transaction: the plan describes
    // one state of the catalog.
    let mut plan = engine.catalog().read(|conn| -> Result<Plan> {
        let selection = select_in(conn, database.as_ref(), stmt)?;
        build(
            conn,
            stmt,
            text,
            &options,
            &repository,
            &selection,
            &stored,
            groups,
        )
    })?;
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

/// Turns a selection into objects and tasks, streaming every live rowset of the selected
/// partitions from the catalog into upload groups (one per object, partition and sync MV),
/// handed to `groups` as each partition ends. The same catalog and repository give the same
/// plan. The fingerprint covers the same state as ever: definitions, partitions, and each
/// rowset's place, id and checksum.
#[allow(clippy::too_many_arguments)]
fn build(
    conn: &Reader<'_>,
    stmt: &Backup,
    text: &str,
    options: &JobOptions,
    repository: &crate::repo::Repository,
    selection: &Selection,
    stored: &Stored<'_>,
    groups: &mut dyn FnMut(Task) -> std::io::Result<()>,
) -> Result<Plan> {
    let db = selection.database.as_ref().map(|d| d.name.clone());
    let db_part = db
        .as_deref()
        .map(id_part)
        .unwrap_or_else(|| "catalogs".into());
    let mut objects = Vec::new();
    let mut summary = Summary::default();
    let mut fingerprint = Fingerprint::default();
    fingerprint.add(("backup", db.as_ref()));
    let pin_id = format!("pin:{db_part}");
    let mut uploads = Vec::new();
    // Contents more than one selected rowset holds: the first is sent, the others not.
    let object_ids: Vec<i64> = selection.data.iter().map(|d| d.object.id).collect();
    let shared: HashSet<Digest> = conn
        .shared_contents(&object_ids)?
        .iter()
        .filter_map(|h| Digest::parse(h).ok())
        .collect();
    let mut sent_shared: HashSet<Digest> = HashSet::new();
    let mut failure: Option<Error> = None;
    for d in &selection.data {
        let o = &d.object;
        fingerprint.add((&o.name, &o.def));
        for p in &d.partitions {
            fingerprint.add((&p.name, &p.bound, p.visible_version));
        }
        let sync_mvs = match &o.def {
            ObjectDef::Table { rollups, .. } => rollups.iter().map(|r| r.name.clone()).collect(),
            _ => vec![],
        };
        let wanted: HashSet<&str> = d.partitions.iter().map(|p| p.name.as_str()).collect();
        let object_part = format!("{db_part}.{}", id_part(&o.name));
        let (mut files, mut bytes) = (0u64, 0u64);
        // One partition's files at a time, by sync MV (the base table's first).
        let mut partition: Option<String> = None;
        let mut pending: BTreeMap<Option<String>, Vec<UploadFile>> = BTreeMap::new();
        let mut emit = |partition: &str,
                        pending: &mut BTreeMap<Option<String>, Vec<UploadFile>>|
         -> Result<()> {
            for (rollup, files) in std::mem::take(pending) {
                let id = format!(
                    "upload:{object_part}.{}{}",
                    id_part(partition),
                    rollup
                        .as_deref()
                        .map(|r| format!(".{}", id_part(r)))
                        .unwrap_or_default()
                );
                uploads.push(id.clone());
                groups(Task {
                    id,
                    action: Action::Uploads {
                        object: o.name.clone(),
                        partition: partition.to_string(),
                        rollup,
                        files,
                    },
                    after: vec![pin_id.clone()],
                })
                .map_err(|e| Error::invalid(format!("writing the plan: {e}"), None))?;
            }
            Ok(())
        };
        conn.object_layout_each(o.id, |p, bucket, r| {
            if !wanted.contains(p) {
                return true;
            }
            let bucket = bucket as u32;
            fingerprint.add((p, bucket, r.id, &r.sha256));
            if partition.as_deref() != Some(p) {
                if let Some(done) = partition.take()
                    && let Err(e) = emit(&done, &mut pending)
                {
                    failure = Some(e);
                    return false;
                }
                partition = Some(p.to_string());
            }
            let sha256 = match Digest::parse(&r.sha256) {
                Ok(h) => h,
                Err(e) => {
                    failure = Some(Error::invalid(
                        format!("the catalog's rowset {}: {e}", r.id),
                        None,
                    ));
                    return false;
                }
            };
            let size = r.bytes as u64;
            let in_repository = stored.contains(&sha256);
            summary.files += 1;
            summary.size.0 += size;
            files += 1;
            bytes += size;
            if in_repository || (shared.contains(&sha256) && !sent_shared.insert(sha256)) {
                summary.already_in_repository += 1;
                summary.already_in_repository_size.0 += size;
            }
            pending.entry(r.rollup).or_default().push(UploadFile {
                bucket,
                rowset_id: r.id,
                rows: r.rows as u64,
                size,
                sha256,
                in_repository,
            });
            true
        })?;
        if let Some(e) = failure.take() {
            return Err(e);
        }
        if let Some(done) = partition.take() {
            emit(&done, &mut pending)?;
        }
        objects.push(PlannedObject {
            kind: o.def.kind().into(),
            name: o.name.clone(),
            target: None,
            action: ObjectAction::Backup,
            partitions: d.partitions.iter().map(|p| p.name.clone()).collect(),
            sync_mvs,
            files,
            size: Size(bytes),
            inactive_reason: None,
        });
    }
    for v in &selection.views {
        fingerprint.add((&v.name, &v.def));
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
    fingerprint.add(&selection.functions);
    fingerprint.add(&selection.catalogs);
    objects.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    summary.objects = objects.len() as u64;
    let label = stmt.snapshot.value.clone();
    let mut tasks = Vec::new();
    if !uploads.is_empty() {
        tasks.push(Task {
            id: pin_id.clone(),
            action: Action::Pin {
                database: db.clone().unwrap_or_default(),
            },
            after: vec![],
        });
    }
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
    Ok(Plan {
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
        fingerprint: fingerprint.finish(),
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
    })
}
