//! DDL: databases, tables and partitions, views, materialized views, functions and external
//! catalogs. Each statement is checked against the catalog (errors point at the token) and
//! applied in one catalog transaction.
//!
//! - this module: databases, CREATE TABLE, DROP, TRUNCATE, ALTER TABLE, shared helpers;
//! - [`tables`]: column, key, distribution and partition resolution (bounds, overlaps);
//! - [`views`]: views, asynchronous and synchronous materialized views, REFRESH, activation;
//! - [`functions`]: functions and external catalogs.

mod functions;
mod tables;
mod views;

pub use functions::{create_catalog, create_function, drop_catalog, drop_function};
pub use tables::resolve_table;
use tables::*;
pub use views::{
    alter_materialized_view, create_materialized_view, create_view, missing_base,
    refresh_materialized_view,
};

use super::guard::{self, Change};
use crate::code::Code;
use std::collections::BTreeMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::types::{arrow_type, canonical_text, parse_scalar, sql_type_of};
use super::{Engine, EngineError, Result, problem_at};
use crate::catalog::limits;
use crate::catalog::{
    self, AggregateKind, Column, Distribution, ExternalCatalogDef, FunctionDef, KeyKind, ObjectDef,
    ObjectState, PartitionBound, Partitioning, SqlType, TableSchema,
};
use crate::sql::{self, Datum, Ident, Problem, Properties};
use futures::StreamExt;

/// Buckets when a table names none (StarRocks would size them automatically).
pub const DEFAULT_BUCKETS: u32 = 2;

fn props_map(properties: &Properties) -> BTreeMap<String, String> {
    properties
        .iter()
        .map(|p| (p.key.value.clone(), p.value.value.clone()))
        .collect()
}

fn already_exists(what: &str, name: &impl std::fmt::Display, span: sql::Span) -> EngineError {
    EngineError::at(
        Problem::new(
            Code::DdlExists,
            span,
            format!("{what} {name} already exists"),
        )
        .label("already exists")
        .help("choose another name, drop the existing one first, or add IF NOT EXISTS"),
    )
}

/// Refuses a database named like the system's `information_schema` (in any case): it would
/// hide the system tables from every query.
pub fn system_database(name: &sql::Ident) -> Result<()> {
    if name
        .value
        .eq_ignore_ascii_case(super::information_schema::DATABASE)
    {
        return Err(problem_at(
            Code::DdlExists,
            name.span,
            format!(
                "{} is the system database; it cannot be created, restored into or changed",
                name.value
            ),
        ));
    }
    Ok(())
}

pub fn create_database(engine: &mut Engine, stmt: &sql::CreateDatabase) -> Result<bool> {
    system_database(&stmt.name)?;
    if engine
        .catalog()
        .view()
        .database(&stmt.name.value)?
        .is_some()
    {
        if stmt.if_not_exists {
            return Ok(false);
        }
        return Err(already_exists("database", &stmt.name, stmt.name.span));
    }
    engine
        .catalog()
        .write(|tx| tx.create_database(&stmt.name.value))?;
    Ok(true)
}

pub fn drop_database(engine: &mut Engine, stmt: &sql::DropDatabase) -> Result<bool> {
    let db = match engine.catalog().view().database(&stmt.name.value)? {
        Some(db) => db,
        None if stmt.if_exists => return Ok(false),
        None => return engine.database(&stmt.name).map(|_| false),
    };
    engine.catalog().try_write(|tx| -> Result<()> {
        guard::database_not_restoring(tx, &db.name, stmt.name.span)?;
        let names: Vec<String> = tx.objects(db.id)?.into_iter().map(|o| o.name).collect();
        tx.drop_database(db.id)?;
        tx.drop_grants_in_database(&db.name)?;
        for name in &names {
            super::maintenance::deactivate_readers(tx, &db.name, name)?;
        }
        Ok(())
    })?;
    Ok(true)
}

fn resolve_column(schema_cols: &[Column], name: &Ident, what: &str) -> Result<usize> {
    schema_cols
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(&name.value))
        .ok_or_else(|| {
            let mut p = Problem::new(
                Code::DdlUnknownColumn,
                name.span,
                format!("{what} column {name} is not a column of the table"),
            )
            .label("no such column");
            if let Some(s) = sql::closest(&name.value, schema_cols.iter().map(|c| c.name.as_str()))
            {
                p = p.help(format!("did you mean {s}?"));
            }
            EngineError::at(p)
        })
}

/// A value as a canonical string of `dt`, for partition bounds and defaults.
fn datum_text(value: &Datum, dt: &DataType, column: &str) -> Result<Option<String>> {
    match (value, dt) {
        (Datum::Now(_), DataType::Timestamp(..)) => {
            return Ok(Some(super::types::DEFAULT_NOW.to_string()));
        }
        (Datum::Now(span) | Datum::Today(span), _) => {
            return Err(EngineError::at(
                Problem::new(
                    Code::LoadValue,
                    *span,
                    format!("column {column}: a time function is a default only of a DATETIME column (DEFAULT CURRENT_TIMESTAMP)"),
                )
                .label("not a constant"),
            ));
        }
        _ => {}
    }
    let scalar = datum_scalar(value, dt, column)?;
    Ok(canonical_text(&scalar))
}

/// An example value of a type, for error messages.
fn example_of(dt: &DataType) -> &'static str {
    match dt {
        DataType::Date32 => "'2024-01-31'",
        DataType::Timestamp(_, _) => "'2024-01-31 12:30:00'",
        DataType::Boolean => "TRUE or FALSE",
        DataType::Decimal128(_, _) => "12.34",
        DataType::Float32 | DataType::Float64 => "1.5",
        DataType::Utf8 => "'text'",
        _ => "42",
    }
}

/// The StarRocks name of the type a column is stored as.
fn type_name(dt: &DataType) -> String {
    super::types::sql_type_of(dt)
        .map(|t| t.sql_name())
        .unwrap_or_else(|| dt.to_string())
}

/// A computed value as a value of `dt` (NOW() into a DATE or VARCHAR column, say).
fn cast_scalar(value: ScalarValue, dt: &DataType) -> std::result::Result<ScalarValue, String> {
    if &value.data_type() == dt {
        return Ok(value);
    }
    let text = match &value {
        ScalarValue::TimestampMicrosecond(Some(us), _) => {
            crate::engine::types::canonical_text(&value).unwrap_or_else(|| us.to_string())
        }
        other => crate::engine::types::canonical_text(other).unwrap_or_default(),
    };
    parse_scalar(&text, dt)
}

/// A literal as a typed value for `column` of type `dt`.
pub fn datum_scalar(value: &Datum, dt: &DataType, column: &str) -> Result<ScalarValue> {
    let bad = |text: &str| {
        EngineError::at(
            Problem::new(
                Code::LoadValue,
                value.span(),
                format!(
                    "{text} is not a valid {} for column {column}",
                    type_name(dt)
                ),
            )
            .label(format!("not a {}", type_name(dt)))
            .help(format!("a {} looks like {}", type_name(dt), example_of(dt))),
        )
    };
    match value {
        Datum::Null(_) => Ok(ScalarValue::try_from(dt)?),
        Datum::Bool(b, _) => {
            if matches!(dt, DataType::Boolean) {
                Ok(ScalarValue::Boolean(Some(*b)))
            } else {
                parse_scalar(if *b { "1" } else { "0" }, dt).map_err(|_| bad(&value.to_string()))
            }
        }
        Datum::Number(n) | Datum::String(n) => {
            if matches!(dt, DataType::Boolean) {
                return match n.value.to_ascii_lowercase().as_str() {
                    "1" | "true" => Ok(ScalarValue::Boolean(Some(true))),
                    "0" | "false" => Ok(ScalarValue::Boolean(Some(false))),
                    _ => Err(bad(&value.to_string())),
                };
            }
            parse_scalar(&n.value, dt).map_err(|_| bad(&value.to_string()))
        }
        Datum::Now(_) => cast_scalar(super::types::now_scalar(), dt).map_err(|_| bad("NOW()")),
        Datum::Today(_) => {
            cast_scalar(super::types::today_scalar(), dt).map_err(|_| bad("CURRENT_DATE"))
        }
        Datum::Default(s) | Datum::MaxValue(s) => Err(EngineError::at(
            Problem::new(Code::LoadValue, *s, format!("{value} is not a value here"))
                .label("not allowed here"),
        )),
    }
}

/// The database a new object goes into, or `None` when the name is taken and the statement
/// said IF NOT EXISTS; a taken name is an error otherwise.
fn free_name(
    engine: &mut Engine,
    name: &sql::QualifiedName,
    if_not_exists: bool,
    what: &str,
    current: Option<&str>,
) -> Result<Option<catalog::DatabaseRow>> {
    let db = engine.database_of(name, current)?;
    let view = engine.catalog().view();
    // A synchronous MV lives inside its table but is queried (and dropped) by its name: that
    // name is taken as much as a table's.
    let taken = view.object(db.id, &name.name.value)?.is_some()
        || view.objects(db.id)?.iter().any(|o| {
            matches!(&o.def, catalog::ObjectDef::Table { rollups, .. }
                if rollups.iter().any(|r| r.name == name.name.value))
        });
    if !taken {
        return Ok(Some(db));
    }
    if if_not_exists {
        return Ok(None);
    }
    Err(already_exists(what, name, name.name.span))
}

pub fn create_table(
    engine: &mut Engine,
    stmt: &sql::CreateTable,
    current: Option<&str>,
) -> Result<bool> {
    let Some(db) = free_name(engine, &stmt.name, stmt.if_not_exists, "table", current)? else {
        return Ok(false);
    };
    let (schema, partitions) = resolve_table(stmt)?;
    let buckets = schema.distribution.buckets();
    let def = ObjectDef::Table {
        schema,
        rollups: Vec::new(),
    };
    engine.catalog().try_write(|tx| -> Result<()> {
        let name = &stmt.name.name;
        guard::not_restoring(tx, &db.name, &name.value, Change::Create, name.span)?;
        let id = tx.insert_object(db.id, &name.value, &def, ObjectState::Normal)?;
        for (name, bound) in &partitions {
            tx.insert_partition(id, name, bound, buckets)?;
        }
        Ok(())
    })?;
    Ok(true)
}

/// Drops a table, MV or view; `kind` is what the statement said it is.
pub fn drop_object(
    engine: &mut Engine,
    stmt: &sql::DropObject,
    kind: catalog::ObjectKind,
    current: Option<&str>,
) -> Result<bool> {
    let db = engine.database_of(&stmt.name, current)?;
    let obj = match engine
        .catalog()
        .view()
        .object(db.id, &stmt.name.name.value)?
    {
        Some(o) => o,
        None => {
            // A sync MV lives inside its base table.
            if kind == catalog::ObjectKind::MaterializedView
                && drop_rollup(engine, db.id, &stmt.name.name.value, stmt.name.name.span)?
            {
                return Ok(true);
            }
            if stmt.if_exists {
                return Ok(false);
            }
            return engine.object(&stmt.name, current).map(|_| false);
        }
    };
    if obj.def.kind() != kind {
        return Err(EngineError::at(
            Problem::new(
                Code::DdlWrongKind,
                stmt.name.name.span,
                format!(
                    "{} is a {}, not a {}",
                    stmt.name,
                    obj.def.kind().noun(),
                    kind.noun()
                ),
            )
            .label("different kind of object")
            .help(format!(
                "use DROP {}",
                obj.def.kind().noun().to_ascii_uppercase()
            )),
        ));
    }
    engine.catalog().try_write(|tx| -> Result<()> {
        let name = &stmt.name.name;
        guard::not_restoring(tx, &db.name, &name.value, Change::Drop, name.span)?;
        // What holds the name now (it may have been dropped and created again since it was
        // looked up), and still of the kind the statement names.
        match tx.object(db.id, &name.value)? {
            Some(now) if now.def.kind() == kind => {
                tx.drop_object(now.id)?;
                let keyword = match kind {
                    crate::catalog::ObjectKind::Table => "TABLE",
                    crate::catalog::ObjectKind::View => "VIEW",
                    crate::catalog::ObjectKind::MaterializedView => "MATERIALIZED VIEW",
                };
                tx.drop_grants_on(keyword, Some(&db.name), &name.value)?;
                super::maintenance::deactivate_readers(tx, &db.name, &name.value)?;
                Ok(())
            }
            _ => Err(EngineError::invalid(
                format!(
                    "{} changed while it was being dropped; nothing was dropped",
                    stmt.name
                ),
                Some("run DROP again"),
            )),
        }
    })?;
    collect_dropped(engine)?;
    Ok(true)
}

/// Deletes the files of rowsets a DROP or TRUNCATE retired (those no pin holds): a dropped
/// table gives its space back now, not at some later garbage collection.
fn collect_dropped(engine: &mut Engine) -> Result<()> {
    super::maintenance::collect_retired(engine)?;
    Ok(())
}

fn drop_rollup(engine: &mut Engine, db_id: i64, name: &str, span: sql::Span) -> Result<bool> {
    for obj in engine.catalog().view().objects(db_id)? {
        if let ObjectDef::Table { schema, rollups } = &obj.def
            && rollups.iter().any(|r| r.name == name)
        {
            let def = ObjectDef::Table {
                schema: schema.clone(),
                rollups: rollups.iter().filter(|r| r.name != name).cloned().collect(),
            };
            let db_name = engine.catalog().view().database_name(db_id)?;
            engine.catalog().try_write(|tx| -> Result<()> {
                guard::not_restoring(tx, &db_name, &obj.name, Change::Alter, span)?;
                for r in tx.rollup_rowsets(obj.id, name)? {
                    tx.retire_rowset(r.id)?;
                }
                Ok(tx.update_definition(obj.id, &def)?)
            })?;
            return Ok(true);
        }
    }
    Ok(false)
}

fn find_partition(
    engine: &mut Engine,
    object_id: i64,
    name: &sql::Literal,
) -> Result<Option<catalog::PartitionRow>> {
    Ok(engine
        .catalog()
        .view()
        .partitions(object_id)?
        .into_iter()
        .find(|p| p.name == name.value))
}

fn unknown_partition(engine: &mut Engine, object_id: i64, name: &sql::Literal) -> EngineError {
    let names: Vec<String> = engine
        .catalog()
        .view()
        .partitions(object_id)
        .map(|ps| ps.into_iter().map(|p| p.name).collect())
        .unwrap_or_default();
    let mut p = Problem::new(
        Code::DdlUnknownPartition,
        name.span,
        format!("unknown partition {}", name.value),
    )
    .label("no such partition");
    if let Some(s) = sql::closest(&name.value, names.iter().map(String::as_str)) {
        p = p.help(format!("did you mean {s}?"));
    } else if !names.is_empty() {
        p = p.help(format!("the partitions are: {}", names.join(", ")));
    }
    EngineError::at(p)
}

pub fn truncate_table(
    engine: &mut Engine,
    stmt: &sql::TruncateTable,
    current: Option<&str>,
) -> Result<()> {
    let (db, obj) = engine.object(&stmt.name, current)?;
    for name in &stmt.partitions {
        if find_partition(engine, obj.id, name)?.is_none() {
            return Err(unknown_partition(engine, obj.id, name));
        }
    }
    engine.catalog().try_write(|tx| -> Result<()> {
        let span = stmt.name.name.span;
        guard::not_restoring(tx, &db.name, &obj.name, Change::Truncate, span)?;
        // The partitions as they are in this transaction: one added since the lookup is
        // emptied too, one dropped since is an error.
        let partitions = tx.partitions(obj.id)?;
        let mut ids = Vec::new();
        if stmt.partitions.is_empty() {
            ids = partitions.iter().map(|p| p.id).collect();
        } else {
            for name in &stmt.partitions {
                let p = partitions
                    .iter()
                    .find(|p| p.name == name.value)
                    .ok_or_else(|| {
                        EngineError::invalid(
                            format!(
                                "partition {} was dropped meanwhile; nothing was truncated",
                                name.value
                            ),
                            None,
                        )
                    })?;
                ids.push(p.id);
            }
        }
        for pid in &ids {
            for t in tx.tablets(*pid)? {
                for r in tx.all_live_rowsets(t.id)? {
                    tx.retire_rowset(r.id)?;
                }
            }
            tx.bump_version(*pid)?;
        }
        Ok(())
    })?;
    collect_dropped(engine)
}

/// Refuses ALTER TABLE … RENAME/SWAP of anything but a table, as StarRocks does (views have
/// ALTER VIEW, materialized views ALTER MATERIALIZED VIEW).
fn only_tables(obj: &catalog::ObjectRow, name: &sql::QualifiedName) -> Result<()> {
    if obj.def.kind() == catalog::ObjectKind::Table {
        return Ok(());
    }
    Err(problem_at(
        Code::DdlNotTable,
        name.span(),
        format!(
            "{name} is a {}; ALTER TABLE renames and swaps tables",
            obj.def.kind().noun()
        ),
    ))
}

/// `ALTER TABLE t RENAME n`: the table, its partitions and data keep their ids; asynchronous
/// MVs that read `t` become inactive (they name a table that is gone), as in StarRocks.
fn rename_table(
    engine: &mut Engine,
    stmt: &sql::AlterTable,
    db: &catalog::DatabaseRow,
    obj: &catalog::ObjectRow,
    new: &sql::Ident,
) -> Result<()> {
    only_tables(obj, &stmt.name)?;
    if new.value == obj.name {
        return Err(problem_at(
            Code::DdlExists,
            new.span,
            format!("Same table name: {} is already called {}", stmt.name, new),
        ));
    }
    engine.catalog().try_write(|tx| -> Result<()> {
        guard::not_restoring(tx, &db.name, &obj.name, Change::Alter, stmt.name.name.span)?;
        guard::not_restoring(tx, &db.name, &new.value, Change::Create, new.span)?;
        if tx.object(db.id, &new.value)?.is_some() {
            return Err(EngineError::at(
                Problem::new(
                    Code::DdlExists,
                    new.span,
                    format!("Table name[{}] is already used", new.value),
                )
                .label("already exists")
                .help("choose another name, or drop that table first (ALTER TABLE … SWAP WITH exchanges two tables)"),
            ));
        }
        tx.rename_object(obj.id, &new.value)?;
        // Grants follow the table (a SWAP leaves them with the names: see swap_tables).
        tx.rename_grants("TABLE", &db.name, &obj.name, &new.value)?;
        super::maintenance::deactivate_readers(tx, &db.name, &obj.name)?;
        Ok(())
    })
}

/// `ALTER TABLE a SWAP WITH b`: the two tables trade names in one catalog transaction, so every
/// reader sees one or the other, never neither; MVs that read either become inactive.
/// Grants stay with the names: a table swapped in (an atomic restore's copy) is read and written
/// by whoever could use the one it replaces.
fn swap_tables(
    engine: &mut Engine,
    stmt: &sql::AlterTable,
    db: &catalog::DatabaseRow,
    obj: &catalog::ObjectRow,
    other: &sql::Ident,
) -> Result<()> {
    only_tables(obj, &stmt.name)?;
    let other_name = sql::QualifiedName {
        database: Some(sql::Ident::new(&db.name)),
        name: other.clone(),
    };
    let (_, other_obj) = engine.object(&other_name, None)?;
    only_tables(&other_obj, &other_name)?;
    if other_obj.id == obj.id {
        return Err(problem_at(
            Code::DdlExists,
            other.span,
            format!("{} cannot be swapped with itself", stmt.name),
        ));
    }
    engine.catalog().try_write(|tx| -> Result<()> {
        guard::not_restoring(tx, &db.name, &obj.name, Change::Alter, stmt.name.name.span)?;
        guard::not_restoring(tx, &db.name, &other_obj.name, Change::Alter, other.span)?;
        // Both rows are the ones planned against (a concurrent DDL fails the swap).
        let a = tx.object(db.id, &obj.name)?.filter(|o| o.id == obj.id);
        let b = tx
            .object(db.id, &other_obj.name)?
            .filter(|o| o.id == other_obj.id);
        if a.is_none() || b.is_none() {
            return Err(EngineError::invalid(
                "the tables changed while the swap was planned; nothing was swapped",
                Some("run it again"),
            ));
        }
        // Names are unique per database: go through a name no table can have.
        let parked = format!("\u{0}swap-{}", obj.id);
        tx.rename_object(obj.id, &parked)?;
        tx.rename_object(other_obj.id, &obj.name)?;
        tx.rename_object(obj.id, &other_obj.name)?;
        super::maintenance::deactivate_readers(tx, &db.name, &obj.name)?;
        super::maintenance::deactivate_readers(tx, &db.name, &other_obj.name)?;
        Ok(())
    })
}

pub fn alter_table(
    engine: &mut Engine,
    stmt: &sql::AlterTable,
    current: Option<&str>,
) -> Result<()> {
    let (db, obj) = engine.object(&stmt.name, current)?;
    match &stmt.action {
        sql::AlterTableAction::Rename(new) => return rename_table(engine, stmt, &db, &obj, new),
        sql::AlterTableAction::SwapWith(other) => {
            return swap_tables(engine, stmt, &db, &obj, other);
        }
        _ => {}
    }
    let guarded = |tx: &catalog::Tx<'_>| {
        guard::not_restoring(tx, &db.name, &obj.name, Change::Alter, stmt.name.name.span)
    };
    let Some(schema) = obj.def.schema().cloned() else {
        return Err(problem_at(
            Code::DdlNotTable,
            stmt.name.span(),
            format!("{} is a view", stmt.name),
        ));
    };
    match &stmt.action {
        sql::AlterTableAction::DropPartition {
            if_exists, name, ..
        } => match find_partition(engine, obj.id, name)? {
            Some(p) => {
                engine.catalog().try_write(|tx| -> Result<()> {
                    guarded(tx)?;
                    Ok(tx.drop_partition(p.id)?)
                })?;
                collect_dropped(engine)
            }
            None if *if_exists => Ok(()),
            None => Err(unknown_partition(engine, obj.id, name)),
        },
        // Handled above.
        sql::AlterTableAction::Rename(_) | sql::AlterTableAction::SwapWith(_) => Ok(()),
        sql::AlterTableAction::AddPartition(def) => {
            if find_partition(engine, obj.id, &def.name)?.is_some() {
                if def.if_not_exists {
                    return Ok(());
                }
                return Err(already_exists("partition", &def.name.value, def.name.span));
            }
            let columns = &schema.columns;
            let idx: Vec<usize> = schema
                .partitioning
                .columns()
                .iter()
                .filter_map(|c| schema.column_index(c))
                .collect();
            let types: Vec<DataType> = idx
                .iter()
                .map(|i| arrow_type(&columns[*i].sql_type))
                .collect();
            let existing = engine.catalog().view().partitions(obj.id)?;
            let bound = match &schema.partitioning {
                Partitioning::Range { .. } => {
                    // LESS THAN starts where the highest existing range ends.
                    let parse = |v: &[String]| -> Vec<ScalarValue> {
                        v.iter()
                            .zip(&types)
                            .filter_map(|(s, t)| parse_scalar(s, t).ok())
                            .collect()
                    };
                    let mut highest: Vec<String> = Vec::new();
                    for p in &existing {
                        if let PartitionBound::Range { upper, .. } = &p.bound
                            && !upper.is_empty()
                            && (highest.is_empty()
                                || parse(upper)
                                    .partial_cmp(&parse(&highest))
                                    .is_some_and(|o| o.is_gt()))
                        {
                            highest = upper.clone();
                        }
                    }
                    let (lower, upper) = range_bound(def, &types, columns, &idx, &highest)?;
                    let mut all: Vec<(String, PartitionBound)> = existing
                        .iter()
                        .map(|p| (p.name.clone(), p.bound.clone()))
                        .collect();
                    all.push((
                        def.name.value.clone(),
                        PartitionBound::Range {
                            lower: lower.clone(),
                            upper: upper.clone(),
                        },
                    ));
                    let defs: Vec<sql::PartitionDef> = all.iter().map(|_| def.clone()).collect();
                    check_ranges(&all, &types, &defs)?;
                    PartitionBound::Range { lower, upper }
                }
                Partitioning::List { .. } => list_bound(def, &types, columns, &idx)?,
                _ => {
                    return Err(problem_at(
                        Code::DdlAddPartition,
                        def.span,
                        format!(
                            "{} is not RANGE or LIST partitioned; its partitions are made on load",
                            stmt.name
                        ),
                    ));
                }
            };
            let buckets = schema.distribution.buckets();
            let name = def.name.value.clone();
            engine.catalog().try_write(|tx| -> Result<()> {
                guarded(tx)?;
                // Against the partitions as they are now: another ADD PARTITION may have run
                // since they were read.
                let now: Vec<(String, PartitionBound)> = tx
                    .partitions(obj.id)?
                    .into_iter()
                    .map(|p| (p.name, p.bound))
                    .collect();
                if let Some(m) =
                    super::fit::overlap(&schema, &now, &[(name.clone(), bound.clone())])
                {
                    return Err(problem_at(Code::DdlOverlap, def.span, m));
                }
                tx.insert_partition(obj.id, &name, &bound, buckets)?;
                Ok(())
            })?;
            Ok(())
        }
    }
}
