//! RESTORE → plan: read the snapshot's manifest, select what the statement names, apply `AS`
//! renames, check existing targets (same schema ⇒ overwrite; different ⇒ an error naming the
//! first difference), and order the tasks: stage → downloads → one commit → views and MV
//! activation; functions and catalogs beside.

use crate::code::Code;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::catalog::{ExternalCatalogDef, JobKind, Reader};

use super::backup::{check_partitions, unknown};
use super::{
    Action, Digest, DownloadFile, Fingerprint, ObjectAction, ObjectKind, Plan, PlannedCatalog,
    PlannedFunction, PlannedObject, PublishRef, RepositoryRef, Size, SnapshotRef, Summary, Task,
    id_part,
};
use crate::catalog::{self, FunctionDef, ObjectDef, PartitionBound, PartitionRow};
use crate::engine::Engine;
use crate::engine::fit;
use crate::error::{Error, Result};
use crate::repo::format::{Manifest, ObjectEntry};
use crate::repo::{Repository, SnapshotId, registry};
use crate::sql::options::{self, JobOptions, JobStatement};
use crate::sql::{CatalogSelection, Ident, ObjectRef, Problem, Restore, Span};

/// One object of the snapshot chosen for restore.
#[derive(Clone, Debug)]
struct Chosen<'m> {
    entry: &'m ObjectEntry,
    target: String,
    /// Partitions to restore (all of the snapshot's when the statement names none).
    partitions: Vec<String>,
    /// The statement named only some partitions.
    partial: bool,
    /// Named by a copy's name (see [`copy_source`]): restored into that existing table only.
    into_copy: bool,
    span: Span,
}

/// What every pass of a restore plan reads.
pub struct Input<'a> {
    pub stmt: &'a Restore,
    /// The statement as written.
    pub text: &'a str,
    pub options: &'a JobOptions,
    pub repository: RepositoryRef,
    pub manifest: &'a Manifest,
    pub manifest_sha256: &'a str,
    /// No `backup_timestamp` was given: the newest snapshot of the label was taken.
    pub newest: bool,
}

/// Pass 1's result: what the statement selects from the snapshot, and where it lands.
struct Selection<'m> {
    /// The snapshot's database (`None` for external catalogs only).
    source_db: Option<String>,
    /// Where it lands (differs with `DATABASE x AS y`).
    target_db: Option<String>,
    /// Tables, MVs and views by snapshot name.
    chosen: BTreeMap<String, Chosen<'m>>,
    /// Functions by signature, with the name each gets.
    functions: BTreeMap<String, (FunctionDef, String)>,
    catalogs: Vec<(ExternalCatalogDef, String)>,
}

/// The plan of a RESTORE: selection (pass 1, from the manifest) → target state (pass 2, one
/// catalog read) → tasks (pass 3, pure).
pub async fn plan(engine: &mut Engine, stmt: &Restore, text: &str) -> Result<Plan> {
    let options = super::job_options(JobStatement::Restore, &stmt.properties)?;
    let repository = registry::open(engine.catalog(), &stmt.repository)?;
    repository.require_format().await?;
    let label = &stmt.snapshot.value;
    if repository.timestamps(label).await?.is_empty() {
        let labels = repository.labels().await?;
        return Err(unknown(
            "snapshot",
            &stmt.snapshot,
            &format!("repository {}", repository.name),
            &labels,
        ));
    }
    let (timestamp, newest) = match &options.backup_timestamp {
        Some(given) => {
            let span = options::find(&stmt.properties, "backup_timestamp")
                .map(|v| v.span)
                .unwrap_or(stmt.span);
            (
                resolve_timestamp(&repository, label, given, span).await?,
                false,
            )
        }
        None => (repository.latest(label).await?.timestamp, true),
    };
    let id = SnapshotId {
        label: label.clone(),
        timestamp,
    };
    let (manifest, manifest_sha256) = repository.read_manifest_hashed(&id).await?;
    let input = Input {
        stmt,
        text,
        options: &options,
        repository: RepositoryRef {
            name: repository.name.clone(),
            location: repository.location.clone(),
        },
        manifest: &manifest,
        manifest_sha256: &manifest_sha256,
        newest,
    };
    let selection = select(&input)?;
    let state = engine
        .catalog()
        .read(|conn| target_state(conn, &selection))?;
    build(&input, &selection, &state)
}

/// `backup_timestamp` → the snapshot's exact timestamp. StarRocks' older form without
/// milliseconds matches the one snapshot of that second.
async fn resolve_timestamp(
    repository: &Repository,
    label: &str,
    given: &str,
    span: Span,
) -> Result<String> {
    let all = repository.timestamps(label).await?;
    if all.iter().any(|t| t == given) {
        return Ok(given.to_string());
    }
    let matching: Vec<&String> = all
        .iter()
        .filter(|t| given.len() == 19 && t.starts_with(given))
        .collect();
    if let [one] = matching.as_slice() {
        return Ok((*one).clone());
    }
    let help = if all.is_empty() {
        format!("repository {} has no snapshot {label}", repository.name)
    } else {
        format!("snapshot {label} has: {}", all.join(", "))
    };
    Err(Error::at(
        Problem::new(
            Code::PlanNoSnapshot,
            span,
            format!("snapshot {label} has no backup at {given}"),
        )
        .label("no such timestamp")
        .help(help),
    ))
}

fn kind_of(def: &ObjectDef) -> ObjectKind {
    def.kind().into()
}

/// The first way `incoming` cannot land on the existing object (see [`fit::first_difference`]).
fn first_difference(
    existing: &ObjectDef,
    existing_parts: &[PartitionRow],
    incoming: &ObjectEntry,
    partitions: &[String],
    partial: bool,
) -> Option<fit::Misfit> {
    let existing_parts: Vec<(String, PartitionBound)> = existing_parts
        .iter()
        .map(|p| (p.name.clone(), p.bound.clone()))
        .collect();
    let incoming_parts: Vec<(String, PartitionBound)> = incoming
        .partitions
        .iter()
        .map(|p| (p.name.clone(), p.bound.clone()))
        .collect();
    fit::first_difference(
        existing,
        &existing_parts,
        &incoming.definition,
        &incoming_parts,
        partitions,
        partial,
    )
}

/// The snapshot table that `name`, which the snapshot does not hold, is a copy of: the one
/// table whose name followed by `_` begins `name` (`orders_restored` ← `orders`), if exactly
/// one does; several are an error asking which. This is how starrocks-br applies an
/// incremental backup on top of the copy its base restore made (`RESTORE … ON (TABLE orders_restored PARTITION (p))`): the copy must exist
/// and fit the snapshot's table exactly (checked with every other existing target), and the
/// plan names both, so a reviewer sees where the rows come from and go.
fn copy_source<'m>(manifest: &'m Manifest, name: &Ident) -> Result<Option<&'m ObjectEntry>> {
    let sources: Vec<&ObjectEntry> = manifest
        .objects
        .iter()
        .filter(|o| {
            kind_of(&o.definition) == ObjectKind::Table
                && name.value.len() > o.name.len() + 1
                && name.value.starts_with(&o.name)
                && name.value.as_bytes()[o.name.len()] == b'_'
        })
        .collect();
    match sources.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => Err(Error::at(
            Problem::new(
                Code::PlanUnknown,
                name.span,
                format!(
                    "the snapshot holds no table {}, and it could be a copy of any of {}",
                    name.value,
                    many.iter()
                        .map(|o| o.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .label("which table?")
            .help(format!(
                "name the snapshot's table and where it goes: TABLE {} AS {}",
                many[many.len() - 1].name,
                name.value
            )),
        )),
    }
}

/// What the snapshot holds, for "not in the snapshot" errors.
fn names_of(manifest: &Manifest, kind: ObjectKind) -> Vec<String> {
    manifest
        .objects
        .iter()
        .filter(|o| kind_of(&o.definition) == kind)
        .map(|o| o.name.clone())
        .collect()
}

fn not_in_snapshot(what: &str, name: &Ident, manifest: &Manifest, candidates: &[String]) -> Error {
    unknown(
        what,
        name,
        &format!("snapshot {} ({})", manifest.label, manifest.timestamp),
        candidates,
    )
}

/// Pass 1: what the statement selects from the snapshot, with `AS` renames applied; two
/// objects may not land on one name.
fn select<'m>(input: &Input<'m>) -> Result<Selection<'m>> {
    let (stmt, manifest) = (input.stmt, input.manifest);
    // The database: the snapshot's, checked against the statement's, maybe renamed.
    if let (Some(named), Some(held)) = (&stmt.database, &manifest.database)
        && &named.name.value != held
    {
        return Err(Error::at(
            Problem::new(
                Code::PlanOtherDatabase,
                named.name.span,
                format!(
                    "snapshot {} holds database {held}, not {}",
                    manifest.label, named.name.value
                ),
            )
            .label("not in the snapshot")
            .help(format!(
                "write DATABASE {held} (add AS {} to restore it under that name)",
                named.name.value
            )),
        ));
    }
    if let (Some(named), None) = (&stmt.database, &manifest.database) {
        return Err(Error::at(
            Problem::new(
                Code::PlanNoDatabase,
                named.name.span,
                format!("snapshot {} holds external catalogs only", manifest.label),
            )
            .label("no database in the snapshot"),
        ));
    }
    let catalogs_only = stmt.database.is_none() && stmt.external_catalogs.is_some();
    let source_db = if catalogs_only {
        None
    } else {
        manifest.database.clone()
    };
    let target_db = source_db.as_ref().map(|db| {
        stmt.database
            .as_ref()
            .and_then(|d| d.alias.as_ref())
            .map(|a| a.value.clone())
            .unwrap_or_else(|| db.clone())
    });

    if let Some(target) = &target_db {
        let span = stmt
            .database
            .as_ref()
            .map(|d| d.alias.as_ref().map(|a| a.span).unwrap_or(d.name.span))
            .unwrap_or(stmt.span);
        crate::engine::ddl::system_database(&Ident {
            value: target.clone(),
            span,
        })?;
    }
    // What the statement selects from the snapshot.
    let mut chosen: BTreeMap<String, Chosen<'m>> = BTreeMap::new();
    let mut functions: BTreeMap<String, (FunctionDef, String)> = BTreeMap::new();
    let choose_all = |kind: Option<ObjectKind>, chosen: &mut BTreeMap<String, Chosen<'m>>| {
        for o in manifest
            .objects
            .iter()
            .filter(|o| kind.is_none_or(|k| kind_of(&o.definition) == k))
        {
            chosen.insert(
                o.name.clone(),
                Chosen {
                    entry: o,
                    target: o.name.clone(),
                    partitions: o.partitions.iter().map(|p| p.name.clone()).collect(),
                    partial: false,
                    into_copy: false,
                    span: stmt.span,
                },
            );
        }
    };
    if source_db.is_some() {
        if stmt.on.is_empty() {
            choose_all(None, &mut chosen);
            for f in &manifest.functions {
                functions.insert(f.signature(), (f.clone(), f.name.clone()));
            }
        }
        for item in &stmt.on {
            match item {
                ObjectRef::All { of, .. } => match of {
                    crate::sql::ObjectKind::Tables => {
                        choose_all(Some(ObjectKind::Table), &mut chosen)
                    }
                    crate::sql::ObjectKind::MaterializedViews => {
                        choose_all(Some(ObjectKind::MaterializedView), &mut chosen)
                    }
                    crate::sql::ObjectKind::Views => {
                        choose_all(Some(ObjectKind::View), &mut chosen)
                    }
                    crate::sql::ObjectKind::Functions => {
                        for f in &manifest.functions {
                            functions.insert(f.signature(), (f.clone(), f.name.clone()));
                        }
                    }
                },
                ObjectRef::Function { name, alias } => {
                    let matching: Vec<&FunctionDef> = manifest
                        .functions
                        .iter()
                        .filter(|f| f.name.eq_ignore_ascii_case(&name.name.value))
                        .collect();
                    if matching.is_empty() {
                        let names: Vec<String> =
                            manifest.functions.iter().map(|f| f.name.clone()).collect();
                        return Err(not_in_snapshot("function", &name.name, manifest, &names));
                    }
                    for f in matching {
                        let target = alias
                            .as_ref()
                            .map(|a| a.value.clone())
                            .unwrap_or_else(|| f.name.clone());
                        functions.insert(f.signature(), (f.clone(), target));
                    }
                }
                ObjectRef::Table { name, alias, .. }
                | ObjectRef::MaterializedView { name, alias }
                | ObjectRef::View { name, alias } => {
                    let kind = match item {
                        ObjectRef::Table { .. } => ObjectKind::Table,
                        ObjectRef::MaterializedView { .. } => ObjectKind::MaterializedView,
                        _ => ObjectKind::View,
                    };
                    let partitions: &[crate::sql::Literal] = match item {
                        ObjectRef::Table { partitions, .. } => partitions,
                        _ => &[],
                    };
                    let exact = manifest
                        .objects
                        .iter()
                        .find(|o| o.name == name.name.value && kind_of(&o.definition) == kind);
                    let copy = match (exact, alias, kind) {
                        (None, None, ObjectKind::Table) => copy_source(manifest, &name.name)?,
                        _ => None,
                    };
                    let into_copy = copy.is_some();
                    let Some(entry) = exact.or(copy) else {
                        return Err(not_in_snapshot(
                            kind.noun(),
                            &name.name,
                            manifest,
                            &names_of(manifest, kind),
                        ));
                    };
                    let held: Vec<String> =
                        entry.partitions.iter().map(|p| p.name.clone()).collect();
                    check_partitions(
                        partitions,
                        &held,
                        &format!("snapshot {} ({})", manifest.label, manifest.timestamp),
                    )?;
                    let target = match alias {
                        Some(a) => a.value.clone(),
                        None if into_copy => name.name.value.clone(),
                        None => entry.name.clone(),
                    };
                    let (parts, partial) = if partitions.is_empty() {
                        (held, false)
                    } else {
                        let mut p: Vec<String> =
                            partitions.iter().map(|p| p.value.clone()).collect();
                        p.sort();
                        p.dedup();
                        (p, true)
                    };
                    chosen.insert(
                        entry.name.clone(),
                        Chosen {
                            entry,
                            target,
                            partitions: parts,
                            partial,
                            into_copy,
                            span: alias.as_ref().map(|a| a.span).unwrap_or(name.name.span),
                        },
                    );
                }
            }
        }
    }
    // External catalogs.
    let mut catalogs: Vec<(ExternalCatalogDef, String)> = Vec::new();
    match &stmt.external_catalogs {
        Some(CatalogSelection::All) => catalogs.extend(
            manifest
                .external_catalogs
                .iter()
                .map(|c| (c.clone(), c.name.clone())),
        ),
        Some(CatalogSelection::Named(refs)) => {
            for r in refs {
                let Some(c) = manifest
                    .external_catalogs
                    .iter()
                    .find(|c| c.name == r.name.value)
                else {
                    let names: Vec<String> = manifest
                        .external_catalogs
                        .iter()
                        .map(|c| c.name.clone())
                        .collect();
                    return Err(not_in_snapshot(
                        "external catalog",
                        &r.name,
                        manifest,
                        &names,
                    ));
                };
                let target = r
                    .alias
                    .as_ref()
                    .map(|a| a.value.clone())
                    .unwrap_or_else(|| c.name.clone());
                catalogs.push((c.clone(), target));
            }
        }
        None if source_db.is_none() || (stmt.database.is_none() && stmt.on.is_empty()) => catalogs
            .extend(
                manifest
                    .external_catalogs
                    .iter()
                    .map(|c| (c.clone(), c.name.clone())),
            ),
        None => {}
    }
    // Two objects may not land on one name.
    let mut targets: BTreeMap<&str, &str> = BTreeMap::new();
    for c in chosen.values() {
        if let Some(other) = targets.insert(&c.target, &c.entry.name) {
            return Err(Error::at(
                Problem::new(
                    Code::PlanTargetTaken,
                    c.span,
                    format!(
                        "{} and {other} would both be restored as {}",
                        c.entry.name, c.target
                    ),
                )
                .label("same target name")
                .help("give one of them another name with AS"),
            ));
        }
    }

    // SQL that a snapshot carries is planned when its view or MV is read: one too large to
    // plan safely is refused here, naming the object, rather than at its first query.
    for c in chosen.values() {
        let sql = match &c.entry.definition {
            ObjectDef::View { sql, .. } | ObjectDef::MaterializedView { sql, .. } => sql,
            ObjectDef::Table { .. } => continue,
        };
        if let Err(e) = crate::engine::query::check_size(sql) {
            return Err(Error::at(
                Problem::new(
                    Code::Query,
                    c.span,
                    format!(
                        "{} {} in the snapshot cannot be restored: {e}",
                        kind_of(&c.entry.definition).noun(),
                        c.entry.name
                    ),
                )
                .label("in the snapshot"),
            ));
        }
    }
    Ok(Selection {
        source_db,
        target_db,
        chosen,
        functions,
        catalogs,
    })
}

/// What pass 3 reads.
struct Context<'a> {
    sel: &'a Selection<'a>,
    check: &'a TargetState,
    /// The target database, and its name as task ids spell it.
    tdb: String,
    tdb_part: String,
}

/// What pass 3 produces.
#[derive(Default)]
struct Tasks {
    tasks: Vec<Task>,
    objects: Vec<PlannedObject>,
    summary: Summary,
}

/// Pass 3: the objects and tasks. Pure: the same inputs give the same plan.
fn build(input: &Input<'_>, sel: &Selection<'_>, check: &TargetState) -> Result<Plan> {
    let mut fingerprint = Fingerprint::default();
    fingerprint.add(("restore", input.manifest_sha256, &sel.target_db));
    fingerprint.add(&check.fingerprint_parts);
    let tdb = sel.target_db.clone().unwrap_or_default();
    let cx = Context {
        sel,
        check,
        tdb_part: id_part(&tdb),
        tdb,
    };
    let mut out = Tasks::default();
    let create_db = if sel.target_db.is_some() && !check.database_exists {
        let id = format!("create-database:{}", cx.tdb_part);
        out.tasks.push(Task {
            id: id.clone(),
            action: Action::CreateDatabase {
                database: cx.tdb.clone(),
            },
            after: vec![],
        });
        vec![id]
    } else {
        vec![]
    };
    let (commit_id, after_commit, has_data) = data_tasks(&cx, &create_db, &mut out)?;
    view_tasks(&cx, &after_commit, &mut out)?;
    mv_tasks(&cx, &commit_id, &mut out);
    let planned_functions = function_tasks(&cx, &after_commit, &mut out);
    let planned_catalogs = catalog_tasks(&cx, &commit_id, has_data, &mut out);
    let privileges = privilege_task(input, sel, &commit_id, has_data, &mut out)?;
    let Tasks {
        tasks,
        mut objects,
        mut summary,
    } = out;
    if objects.is_empty() && planned_functions.is_empty() && planned_catalogs.is_empty() {
        return Err(Error::at(Problem::new(
            Code::PlanEmpty,
            input.stmt.span,
            "the RESTORE selects nothing from the snapshot",
        )));
    }
    objects.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    summary.objects = objects.len() as u64;
    Ok(Plan {
        format: super::PLAN_FORMAT.to_string(),
        version: super::PLAN_VERSION,
        kind: JobKind::Restore,
        statement: input.text.trim().trim_end_matches(';').trim().to_string(),
        repository: input.repository.clone(),
        snapshot: SnapshotRef {
            label: input.manifest.label.clone(),
            timestamp: Some(input.manifest.timestamp.clone()),
            newest: input.newest,
            manifest_sha256: Some(input.manifest_sha256.to_string()),
        },
        database: sel.source_db.clone(),
        target_database: sel.target_db.clone(),
        fingerprint: fingerprint.finish(),
        options: input.options.clone(),
        objects,
        functions: planned_functions,
        external_catalogs: planned_catalogs,
        summary,
        tasks,
        privileges,
    })
}

/// Pass 3, tables and MVs: stage → downloads → one commit. Returns the commit's id and what
/// later tasks wait for.
fn data_tasks(
    cx: &Context<'_>,
    create_db: &[String],
    out: &mut Tasks,
) -> Result<(String, Vec<String>, bool)> {
    let (sel, check, tdb, tdb_part) = (cx.sel, cx.check, &cx.tdb, &cx.tdb_part);
    let create_db = create_db.to_vec();
    // Which tables the database will hold after the restore, for the MV rule.
    let mut present: HashSet<String> = check.existing_names.clone();
    present.extend(sel.chosen.values().map(|c| c.target.clone()));

    let mut publish = Vec::new();
    let mut before_commit = Vec::new();
    let data: Vec<&Chosen> = sel
        .chosen
        .values()
        .filter(|c| kind_of(&c.entry.definition) != ObjectKind::View)
        .collect();
    for c in &data {
        let existing = check.existing.get(&c.target);
        let action = match existing {
            None if c.into_copy => {
                return Err(Error::at(
                    Problem::new(
                        Code::PlanUnknown,
                        c.span,
                        format!(
                            "the snapshot holds no table {}, and no table {tdb}.{} exists to restore the snapshot's {} into",
                            c.target, c.target, c.entry.name
                        ),
                    )
                    .label("not in the snapshot")
                    .help(format!(
                        "restore the snapshot's table by its name: TABLE {} [AS {}]",
                        c.entry.name, c.target
                    )),
                ));
            }
            None => ObjectAction::Create,
            Some(e) => {
                if kind_of(&e.def) != kind_of(&c.entry.definition) {
                    return Err(Error::at(
                        Problem::new(
                            Code::PlanTargetKind,
                            c.span,
                            format!(
                                "{tdb}.{} exists and is a {}, not a {}",
                                c.target,
                                kind_of(&e.def).noun(),
                                kind_of(&c.entry.definition).noun()
                            ),
                        )
                        .label("target exists")
                        .help(format!(
                            "restore it under another name: {} AS new_name",
                            c.entry.name
                        )),
                    ));
                }
                match first_difference(&e.def, &e.partitions, c.entry, &c.partitions, c.partial) {
                    None => {}
                    Some(fit::Misfit::Schema(diff)) => {
                        return Err(Error::at(
                            Problem::new(
                                Code::PlanSchemaDiffers,
                                c.span,
                                format!(
                                    "cannot overwrite {tdb}.{}: its schema differs from the snapshot's ({diff})",
                                    c.target
                                ),
                            )
                            .label("schema differs")
                            .help(format!(
                                "restore it under another name: {} AS {}_restored",
                                c.entry.name, c.entry.name
                            )),
                        ));
                    }
                    Some(fit::Misfit::Overlap(diff)) => {
                        return Err(Error::at(
                            Problem::new(
                                Code::PlanOverlap,
                                c.span,
                                format!("cannot restore into {tdb}.{}: {diff}", c.target),
                            )
                            .label("overlapping partitions")
                            .help(format!(
                                "StarRocks refuses partitions that overlap: restore into another table (TABLE {} PARTITION (...) AS {}_restored), or drop the overlapping partition first",
                                c.entry.name, c.entry.name
                            )),
                        ));
                    }
                }
                if c.partial {
                    ObjectAction::ReplacePartitions
                } else {
                    ObjectAction::Overwrite
                }
            }
        };
        let obj_part = format!("{tdb_part}.{}", id_part(&c.target));
        let stage_id = format!("stage:{obj_part}");
        out.tasks.push(Task {
            id: stage_id.clone(),
            action: Action::Stage {
                kind: kind_of(&c.entry.definition),
                name: c.entry.name.clone(),
                target: c.target.clone(),
                partitions: c.partitions.clone(),
            },
            after: create_db.clone(),
        });
        before_commit.push(stage_id.clone());
        let mut files = 0u64;
        let mut bytes = 0u64;
        for p in c
            .entry
            .partitions
            .iter()
            .filter(|p| c.partitions.contains(&p.name))
        {
            // One group per sync MV (the base table's first), files in tablet order.
            let mut by_rollup: BTreeMap<Option<String>, Vec<DownloadFile>> = BTreeMap::new();
            for t in &p.tablets {
                for r in &t.rowsets {
                    files += 1;
                    bytes += r.bytes;
                    by_rollup
                        .entry(r.rollup.clone())
                        .or_default()
                        .push(DownloadFile {
                            bucket: t.bucket,
                            version: p.version,
                            rows: r.rows,
                            size: r.bytes,
                            sha256: Digest::parse(r.sha256.as_str()).map_err(|e| {
                                Error::invalid(format!("the snapshot's manifest: {e}"), None)
                            })?,
                        });
                }
            }
            for (rollup, group) in by_rollup {
                let id = format!(
                    "download:{obj_part}.{}{}",
                    id_part(&p.name),
                    rollup
                        .as_deref()
                        .map(|r| format!(".{}", id_part(r)))
                        .unwrap_or_default()
                );
                before_commit.push(id.clone());
                out.tasks.push(Task {
                    id,
                    action: Action::Downloads {
                        object: c.target.clone(),
                        partition: p.name.clone(),
                        rollup,
                        files: group,
                    },
                    after: vec![stage_id.clone()],
                });
            }
        }
        out.summary.files += files;
        out.summary.size.0 += bytes;
        publish.push(PublishRef {
            target: c.target.clone(),
            action,
            partitions: if action == ObjectAction::ReplacePartitions {
                c.partitions.clone()
            } else {
                vec![]
            },
        });
        let inactive_reason = match &c.entry.definition {
            ObjectDef::MaterializedView { base_tables, .. } => missing_base(
                base_tables,
                sel.source_db.as_deref(),
                tdb,
                &present,
                &check.other_databases,
            ),
            _ => None,
        };
        out.objects.push(PlannedObject {
            kind: kind_of(&c.entry.definition),
            name: c.entry.name.clone(),
            target: Some(c.target.clone()),
            action,
            partitions: c.partitions.clone(),
            sync_mvs: match &c.entry.definition {
                ObjectDef::Table { rollups, .. } => {
                    rollups.iter().map(|r| r.name.clone()).collect()
                }
                _ => vec![],
            },
            files,
            size: Size(bytes),
            inactive_reason,
        });
    }
    let commit_id = format!("commit:{tdb_part}");
    if !data.is_empty() {
        out.tasks.push(Task {
            id: commit_id.clone(),
            action: Action::Commit {
                database: tdb.clone(),
                publish,
            },
            after: before_commit,
        });
    }
    let after_commit = if data.is_empty() {
        create_db.clone()
    } else {
        vec![commit_id.clone()]
    };
    Ok((commit_id, after_commit, !data.is_empty()))
}

/// Pass 3, views: each after the commit and after the views it reads.
fn view_tasks(cx: &Context<'_>, after_commit: &[String], out: &mut Tasks) -> Result<()> {
    let (sel, check, tdb, tdb_part) = (cx.sel, cx.check, &cx.tdb, &cx.tdb_part);
    // Views, after the tables (and views) they read.
    let views: Vec<&Chosen> = sel
        .chosen
        .values()
        .filter(|c| kind_of(&c.entry.definition) == ObjectKind::View)
        .collect();
    let view_task = |c: &Chosen| format!("view:{tdb_part}.{}", id_part(&c.target));
    for c in &views {
        let mut after = after_commit.to_vec();
        if let ObjectDef::View { base_tables, .. } = &c.entry.definition {
            for b in base_tables {
                let name = b.rsplit('.').next().unwrap_or(b);
                if let Some(v) = views
                    .iter()
                    .find(|v| v.entry.name == name && v.entry.name != c.entry.name)
                {
                    after.push(view_task(v));
                }
            }
        }
        after.sort();
        after.dedup();
        let action = if check.existing.contains_key(&c.target) {
            let e = &check.existing[&c.target];
            if kind_of(&e.def) != ObjectKind::View {
                return Err(Error::at(
                    Problem::new(
                        Code::PlanTargetKind,
                        c.span,
                        format!(
                            "{tdb}.{} exists and is a {}, not a view",
                            c.target,
                            kind_of(&e.def).noun()
                        ),
                    )
                    .label("target exists")
                    .help(format!(
                        "restore it under another name: VIEW {} AS new_name",
                        c.entry.name
                    )),
                ));
            }
            ObjectAction::Overwrite
        } else {
            ObjectAction::Create
        };
        out.tasks.push(Task {
            id: view_task(c),
            action: Action::CreateView {
                name: c.entry.name.clone(),
                target: c.target.clone(),
            },
            after,
        });
        out.objects.push(PlannedObject {
            kind: ObjectKind::View,
            name: c.entry.name.clone(),
            target: Some(c.target.clone()),
            action,
            partitions: vec![],
            sync_mvs: vec![],
            files: 0,
            size: Size(0),
            inactive_reason: None,
        });
    }
    Ok(())
}

/// Pass 3, async MVs: active (or left inactive, with why) once their data and bases are in.
fn mv_tasks(cx: &Context<'_>, commit_id: &str, out: &mut Tasks) {
    let tdb_part = &cx.tdb_part;
    // Async MVs become active (or stay inactive) once their data and base tables are in.
    for o in out
        .objects
        .clone()
        .iter()
        .filter(|o| o.kind == ObjectKind::MaterializedView)
    {
        let target = o.target.clone().unwrap_or_default();
        out.tasks.push(Task {
            id: format!("mv:{tdb_part}.{}", id_part(&target)),
            action: Action::ActivateMaterializedView {
                name: o.name.clone(),
                target,
                active: o.inactive_reason.is_none(),
                reason: o.inactive_reason.clone(),
            },
            after: vec![commit_id.to_string()],
        });
    }
}

/// Pass 3, functions: after the commit, so that a restore failing before it leaves none behind.
fn function_tasks(
    cx: &Context<'_>,
    after_commit: &[String],
    out: &mut Tasks,
) -> Vec<PlannedFunction> {
    let (sel, tdb_part) = (cx.sel, &cx.tdb_part);
    let mut planned_functions = Vec::new();
    for (sig, (f, target)) in &sel.functions {
        let target_sig = FunctionDef {
            name: target.clone(),
            ..f.clone()
        }
        .signature();
        out.tasks.push(Task {
            id: format!("function:{tdb_part}.{}", id_part(&target_sig)),
            action: Action::CreateFunction {
                signature: sig.clone(),
                target: target.clone(),
            },
            // After the commit: a restore that fails before it leaves no function behind.
            after: after_commit.to_vec(),
        });
        planned_functions.push(PlannedFunction {
            signature: sig.clone(),
            target: Some(target_sig),
        });
    }
    planned_functions
}

/// Pass 3, privileges (`"privileges" = "true"`): one task after the commit that re-applies the
/// snapshot's users, roles and grants, mapped onto the restore's targets.
fn privilege_task(
    input: &Input<'_>,
    sel: &Selection<'_>,
    commit_id: &str,
    has_data: bool,
    out: &mut Tasks,
) -> Result<Option<crate::repo::format::PrivilegeSet>> {
    if input.options.privileges.is_none() {
        return Ok(None);
    }
    let Some(set) = &input.manifest.privileges else {
        let at = options::find(&input.stmt.properties, "privileges")
            .map(|v| v.span)
            .unwrap_or(input.stmt.span);
        return Err(Error::at(
            Problem::new(
                Code::PlanEmpty,
                at,
                format!("snapshot {} holds no privileges", input.manifest.label),
            )
            .label("nothing to re-apply")
            .help("back up with PROPERTIES (\"privileges\" = \"true\" | \"users\") to take them along"),
        ));
    };
    let restored: BTreeMap<String, String> = sel
        .chosen
        .iter()
        .map(|(name, c)| (name.clone(), c.target.clone()))
        .collect();
    let functions: BTreeMap<String, String> = sel
        .functions
        .values()
        .map(|(f, target)| (f.name.clone(), target.clone()))
        .collect();
    let whole = input.stmt.on.is_empty();
    let mapped = super::privileges::for_restore(
        set,
        sel.source_db.as_deref(),
        sel.target_db.as_deref(),
        &restored,
        &functions,
        whole,
    );
    let database = sel.target_db.clone().unwrap_or_default();
    out.tasks.push(Task {
        id: format!("privileges:{}", id_part(&database)),
        action: Action::ApplyPrivileges { database },
        after: if has_data {
            vec![commit_id.to_string()]
        } else {
            vec![]
        },
    });
    Ok(Some(mapped))
}

/// Pass 3, external catalogs' metadata.
fn catalog_tasks(
    cx: &Context<'_>,
    commit_id: &str,
    has_data: bool,
    out: &mut Tasks,
) -> Vec<PlannedCatalog> {
    let sel = cx.sel;
    let mut planned_catalogs = Vec::new();
    for (c, target) in &sel.catalogs {
        out.tasks.push(Task {
            id: format!("catalog:{}", id_part(target)),
            action: Action::CreateCatalog {
                name: c.name.clone(),
                target: target.clone(),
            },
            after: if !has_data {
                vec![]
            } else {
                vec![commit_id.to_string()]
            },
        });
        planned_catalogs.push(PlannedCatalog {
            name: c.name.clone(),
            target: Some(target.clone()),
        });
    }
    planned_catalogs
}

/// Why an async MV must stay inactive: a base table that will be neither restored nor present.
fn missing_base(
    base_tables: &[String],
    source_db: Option<&str>,
    target_db: &str,
    present: &HashSet<String>,
    other_databases: &BTreeMap<String, BTreeSet<String>>,
) -> Option<String> {
    let mut missing = Vec::new();
    for b in base_tables {
        let (db, table) = b.rsplit_once('.').unwrap_or(("", b.as_str()));
        let same_db = db.is_empty() || Some(db) == source_db;
        let found = if same_db {
            present.contains(table)
        } else {
            other_databases.get(db).is_some_and(|t| t.contains(table))
        };
        if !found {
            missing.push(if same_db {
                format!("{target_db}.{table}")
            } else {
                b.clone()
            });
        }
    }
    match missing.as_slice() {
        [] => None,
        [one] => Some(format!(
            "base table {one} is neither restored nor present in the cluster"
        )),
        many => Some(format!(
            "base tables {} are neither restored nor present in the cluster",
            many.join(", ")
        )),
    }
}

struct ExistingObject {
    def: ObjectDef,
    partitions: Vec<PartitionRow>,
}

struct TargetState {
    database_exists: bool,
    existing: BTreeMap<String, ExistingObject>,
    existing_names: HashSet<String>,
    /// Tables of other databases that restored MVs read.
    other_databases: BTreeMap<String, BTreeSet<String>>,
    fingerprint_parts: Vec<serde_json::Value>,
}

/// Pass 2: the target database as the cluster holds it now, read in one transaction (and the
/// part of it the plan depends on, for its fingerprint).
fn target_state(conn: &Reader<'_>, sel: &Selection<'_>) -> Result<TargetState> {
    let (target_db, chosen, functions, catalogs) = (
        sel.target_db.as_deref(),
        &sel.chosen,
        &sel.functions,
        &sel.catalogs,
    );
    let mut state = TargetState {
        database_exists: false,
        existing: BTreeMap::new(),
        existing_names: HashSet::new(),
        other_databases: BTreeMap::new(),
        fingerprint_parts: Vec::new(),
    };
    let db = match target_db {
        Some(name) => conn.database(name)?,
        None => None,
    };
    state.database_exists = db.is_some();
    state
        .fingerprint_parts
        .push(serde_json::json!(state.database_exists));
    if let Some(db) = &db {
        for o in conn.objects(db.id)? {
            if o.state == catalog::ObjectState::Staged {
                continue;
            }
            state.existing_names.insert(o.name.clone());
            if chosen.values().any(|c| c.target == o.name) {
                let partitions = conn.partitions(o.id)?;
                state.fingerprint_parts.push(serde_json::json!([
                    o.name,
                    o.def,
                    partitions
                        .iter()
                        .map(|p| (&p.name, p.visible_version))
                        .collect::<Vec<_>>()
                ]));
                state.existing.insert(
                    o.name.clone(),
                    ExistingObject {
                        def: o.def,
                        partitions,
                    },
                );
            }
        }
        // Which names exist decides overwrite vs create and the MV rule.
        let mut names: Vec<&String> = state.existing_names.iter().collect();
        names.sort();
        state.fingerprint_parts.push(serde_json::json!(names));
        let existing_functions: Vec<String> = conn
            .functions(Some(db.id))?
            .iter()
            .map(|f| f.signature())
            .collect();
        let touched: Vec<&String> = existing_functions
            .iter()
            .filter(|s| {
                functions.values().any(|(f, t)| {
                    &FunctionDef {
                        name: t.clone(),
                        ..f.clone()
                    }
                    .signature()
                        == *s
                })
            })
            .collect();
        state.fingerprint_parts.push(serde_json::json!(touched));
    }
    for c in chosen.values() {
        if let ObjectDef::MaterializedView { base_tables, .. } = &c.entry.definition {
            for b in base_tables {
                if let Some((other, _)) = b.rsplit_once('.')
                    && Some(other) != target_db
                    && !state.other_databases.contains_key(other)
                {
                    let names = match conn.database(other)? {
                        Some(d) => conn.objects(d.id)?.into_iter().map(|o| o.name).collect(),
                        None => BTreeSet::new(),
                    };
                    state.other_databases.insert(other.to_string(), names);
                }
            }
        }
    }
    let existing_catalogs = conn.external_catalogs()?;
    let touched: Vec<&ExternalCatalogDef> = existing_catalogs
        .iter()
        .filter(|e| catalogs.iter().any(|(_, t)| t == &e.name))
        .collect();
    state.fingerprint_parts.push(serde_json::json!(touched));
    Ok(state)
}
