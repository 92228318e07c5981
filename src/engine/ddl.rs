//! DDL: databases, tables and partitions, views, materialized views, functions and external
//! catalogs. Each statement is checked against the catalog (errors point at the token) and
//! applied in one catalog transaction.

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

pub fn create_database(engine: &mut Engine, stmt: &sql::CreateDatabase) -> Result<bool> {
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
        Datum::Default(s) | Datum::MaxValue(s) => Err(EngineError::at(
            Problem::new(Code::LoadValue, *s, format!("{value} is not a value here"))
                .label("not allowed here"),
        )),
    }
}

fn resolve_columns(stmt: &sql::CreateTable) -> Result<(Vec<Column>, KeyKind)> {
    let key_kind = stmt
        .keys
        .as_ref()
        .map(|k| k.kind)
        .unwrap_or(KeyKind::Duplicate);
    let mut columns = Vec::new();
    for def in &stmt.columns {
        let sql_type = SqlType::from_name(&def.data_type.name.value, &def.data_type.params)
            .map_err(|why| {
                EngineError::at(
                    Problem::new(
                        Code::DdlType,
                        def.data_type.name.span,
                        format!("column {}: {why}", def.name),
                    )
                    .label("not a column type")
                    .help(
                        "types: BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, LARGEINT, FLOAT, DOUBLE, \
                         DECIMAL(p, s), CHAR(n), VARCHAR(n), STRING, DATE, DATETIME",
                    ),
                )
            })?;
        let aggregate = match &def.aggregate {
            None => None,
            Some(agg) => {
                if key_kind != KeyKind::Aggregate {
                    return Err(EngineError::at(
                        Problem::new(
                            Code::DdlAggregate,
                            agg.span,
                            format!("{} only applies to AGGREGATE KEY tables", agg.value),
                        )
                        .label("aggregate type on a non-aggregate table"),
                    ));
                }
                Some(AggregateKind::from_name(&agg.value).ok_or_else(|| {
                    problem_at(
                        Code::DdlAggregate,
                        agg.span,
                        format!("{} is not supported; use SUM, MAX, MIN, REPLACE or REPLACE_IF_NOT_NULL", agg.value),
                    )
                })?)
            }
        };
        let default = match &def.default {
            Some(v) => datum_text(v, &arrow_type(&sql_type), &def.name.value)?,
            None => None,
        };
        columns.push(Column {
            name: def.name.value.clone(),
            sql_type,
            nullable: def.nullable.unwrap_or(true),
            is_key: false,
            aggregate,
            default,
            comment: def.comment.as_ref().map(|c| c.value.clone()),
        });
    }
    // Key columns: as declared, else the first column (a DUPLICATE KEY table's sort key).
    let key_names: Vec<Ident> = match &stmt.keys {
        Some(k) => k.columns.clone(),
        None => vec![stmt.columns[0].name.clone()],
    };
    for (i, key) in key_names.iter().enumerate() {
        let at = resolve_column(&columns, key, "key")?;
        if at != i {
            return Err(EngineError::at(
                Problem::new(
                    Code::DdlKeyOrder,
                    key.span,
                    format!("key column {key} must be column {} of the table", i + 1),
                )
                .label("out of place")
                .help("key columns come first in the column list, in the order of the KEY clause"),
            ));
        }
        let col = &mut columns[at];
        if matches!(col.sql_type, SqlType::Float | SqlType::Double) {
            return Err(problem_at(
                Code::DdlKeyType,
                key.span,
                format!("key column {key} cannot be FLOAT or DOUBLE"),
            ));
        }
        col.is_key = true;
        if key_kind == KeyKind::Primary {
            if stmt.columns[at].nullable == Some(true) {
                return Err(problem_at(
                    Code::DdlPrimaryNull,
                    key.span,
                    format!("primary key column {key} must be NOT NULL"),
                ));
            }
            col.nullable = false;
        }
    }
    if key_kind == KeyKind::Aggregate {
        for (def, col) in stmt.columns.iter().zip(columns.iter_mut()) {
            if !col.is_key && col.aggregate.is_none() {
                return Err(EngineError::at(
                    Problem::new(
                        Code::DdlAggregate,
                        def.name.span,
                        format!(
                            "value column {} of an AGGREGATE KEY table needs an aggregate type",
                            def.name
                        ),
                    )
                    .label("no aggregate type")
                    .help("add SUM, MAX, MIN, REPLACE or REPLACE_IF_NOT_NULL after the type"),
                ));
            }
        }
    }
    Ok((columns, key_kind))
}

/// Resolves CREATE TABLE into a schema and its initial partitions.
pub fn resolve_table(
    stmt: &sql::CreateTable,
) -> Result<(TableSchema, Vec<(String, PartitionBound)>)> {
    let (columns, keys) = resolve_columns(stmt)?;
    let mut partitions = Vec::new();
    let must_be_key = |name: &Ident, idx: usize, what: &str| -> Result<()> {
        if keys != KeyKind::Duplicate && !columns[idx].is_key {
            return Err(problem_at(
                Code::DdlNotKey,
                name.span,
                format!(
                    "{what} column {name} must be a key column of a {} KEY table",
                    keys.keyword()
                ),
            ));
        }
        Ok(())
    };
    // Partition columns: existing, key columns where the model needs it, with their types.
    let partition_columns = |cols: &[Ident]| -> Result<(Vec<usize>, Vec<DataType>)> {
        let mut idx = Vec::new();
        for c in cols {
            let i = resolve_column(&columns, c, "partition")?;
            must_be_key(c, i, "partition")?;
            idx.push(i);
        }
        let types = idx
            .iter()
            .map(|i| arrow_type(&columns[*i].sql_type))
            .collect();
        Ok((idx, types))
    };
    let partitioning = match &stmt.partitioning {
        None => {
            partitions.push((stmt.name.name.value.clone(), PartitionBound::Whole));
            Partitioning::Unpartitioned
        }
        Some(sql::PartitionDesc::Range {
            columns: cols,
            partitions: defs,
        }) => {
            let (idx, types) = partition_columns(cols)?;
            let mut previous_upper: Vec<String> = Vec::new();
            for def in defs {
                let (lower, upper) = range_bound(def, &types, &columns, &idx, &previous_upper)?;
                previous_upper = upper.clone();
                partitions.push((
                    def.name.value.clone(),
                    PartitionBound::Range { lower, upper },
                ));
            }
            check_ranges(&partitions, &types, defs)?;
            Partitioning::Range {
                columns: idx.iter().map(|i| columns[*i].name.clone()).collect(),
            }
        }
        Some(sql::PartitionDesc::List {
            columns: cols,
            partitions: defs,
        }) => {
            let (idx, types) = partition_columns(cols)?;
            for def in defs {
                partitions.push((
                    def.name.value.clone(),
                    list_bound(def, &types, &columns, &idx)?,
                ));
            }
            Partitioning::List {
                columns: idx.iter().map(|i| columns[*i].name.clone()).collect(),
            }
        }
        Some(sql::PartitionDesc::DateTrunc { unit, column }) => {
            let i = resolve_column(&columns, column, "partition")?;
            must_be_key(column, i, "partition")?;
            if !matches!(columns[i].sql_type, SqlType::Date | SqlType::DateTime) {
                return Err(problem_at(
                    Code::DdlDateTrunc,
                    column.span,
                    format!(
                        "date_trunc needs a DATE or DATETIME column; {column} is {}",
                        columns[i].sql_type.sql_name()
                    ),
                ));
            }
            if !["year", "month", "day", "hour"].contains(&unit.value.to_ascii_lowercase().as_str())
            {
                return Err(EngineError::at(
                    Problem::new(
                        Code::DdlDateTrunc,
                        unit.span,
                        format!("date_trunc unit '{}' is not supported", unit.value),
                    )
                    .label("unknown unit")
                    .help("use 'year', 'month', 'day' or 'hour'"),
                ));
            }
            Partitioning::DateTrunc {
                unit: unit.value.to_ascii_lowercase(),
                column: columns[i].name.clone(),
            }
        }
        Some(sql::PartitionDesc::Columns { columns: cols }) => {
            let (idx, _) = partition_columns(cols)?;
            Partitioning::Columns {
                columns: idx.iter().map(|i| columns[*i].name.clone()).collect(),
            }
        }
    };
    let mut names = BTreeMap::new();
    if let Some(
        sql::PartitionDesc::Range {
            partitions: defs, ..
        }
        | sql::PartitionDesc::List {
            partitions: defs, ..
        },
    ) = &stmt.partitioning
    {
        for def in defs {
            if let Some(first) = names.insert(def.name.value.clone(), def.name.span) {
                return Err(EngineError::at(
                    Problem::new(
                        Code::DdlDuplicatePartition,
                        def.name.span,
                        format!("partition {} is defined twice", def.name.value),
                    )
                    .label("again")
                    .also(first, "first here"),
                ));
            }
        }
    }
    let distribution = match &stmt.distribution {
        Some(d) if d.hash.is_empty() => {
            if keys != KeyKind::Duplicate {
                return Err(problem_at(
                    Code::DdlRandom,
                    d.span,
                    format!(
                        "a {} KEY table must be distributed by HASH of key columns",
                        keys.keyword()
                    ),
                ));
            }
            Distribution::Random {
                buckets: d.buckets.unwrap_or(DEFAULT_BUCKETS),
            }
        }
        Some(d) => {
            let mut names = Vec::new();
            for c in &d.hash {
                let i = resolve_column(&columns, c, "distribution")?;
                must_be_key(c, i, "distribution")?;
                names.push(columns[i].name.clone());
            }
            Distribution::Hash {
                columns: names,
                buckets: d.buckets.unwrap_or(DEFAULT_BUCKETS),
            }
        }
        None if keys == KeyKind::Duplicate => Distribution::Random {
            buckets: DEFAULT_BUCKETS,
        },
        None => Distribution::Hash {
            columns: columns
                .iter()
                .filter(|c| c.is_key)
                .map(|c| c.name.clone())
                .collect(),
            buckets: DEFAULT_BUCKETS,
        },
    };
    if distribution.buckets() == 0 || distribution.buckets() > limits::MAX_BUCKETS {
        return Err(EngineError::invalid(
            format!(
                "{} buckets is outside 1..={}",
                distribution.buckets(),
                limits::MAX_BUCKETS
            ),
            None,
        ));
    }
    for c in &stmt.order_by {
        resolve_column(&columns, c, "ORDER BY")?;
    }
    Ok((
        TableSchema {
            columns,
            keys,
            partitioning,
            distribution,
            order_by: stmt.order_by.iter().map(|c| c.value.clone()).collect(),
            properties: props_map(&stmt.properties),
            comment: stmt.comment.as_ref().map(|c| c.value.clone()),
        },
        partitions,
    ))
}

fn tuple_text(
    values: &[Datum],
    types: &[DataType],
    columns: &[Column],
    idx: &[usize],
    span: sql::Span,
) -> Result<Vec<String>> {
    if values.len() != types.len() {
        return Err(problem_at(
            Code::DdlBound,
            span,
            format!(
                "a bound needs {} value(s), one per partition column; found {}",
                types.len(),
                values.len()
            ),
        ));
    }
    values
        .iter()
        .zip(types)
        .zip(idx)
        .map(|((v, t), i)| {
            datum_text(v, t, &columns[*i].name)?.ok_or_else(|| {
                problem_at(Code::DdlBound, v.span(), "a partition bound cannot be NULL")
            })
        })
        .collect()
}

fn range_bound(
    def: &sql::PartitionDef,
    types: &[DataType],
    columns: &[Column],
    idx: &[usize],
    previous_upper: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    match &def.bound {
        sql::PartitionBound::LessThan(values) => {
            let upper = if values.is_empty() {
                Vec::new()
            } else {
                tuple_text(values, types, columns, idx, def.span)?
            };
            Ok((previous_upper.to_vec(), upper))
        }
        sql::PartitionBound::Range(lo, hi) => Ok((
            tuple_text(lo, types, columns, idx, def.span)?,
            tuple_text(hi, types, columns, idx, def.span)?,
        )),
        sql::PartitionBound::In(_) => Err(problem_at(
            Code::DdlBound,
            def.span,
            "a RANGE partition takes VALUES LESS THAN (...) or VALUES [(...), (...))",
        )),
    }
}

fn list_bound(
    def: &sql::PartitionDef,
    types: &[DataType],
    columns: &[Column],
    idx: &[usize],
) -> Result<PartitionBound> {
    match &def.bound {
        sql::PartitionBound::In(items) => {
            let mut values = Vec::new();
            for item in items {
                if item.len() != types.len() {
                    return Err(problem_at(
                        Code::DdlBound,
                        def.span,
                        format!(
                            "each list value needs {} value(s), one per partition column",
                            types.len()
                        ),
                    ));
                }
                values.push(
                    item.iter()
                        .zip(types)
                        .zip(idx)
                        .map(|((v, t), i)| datum_text(v, t, &columns[*i].name))
                        .collect::<Result<Vec<_>>>()?,
                );
            }
            Ok(PartitionBound::List { values })
        }
        _ => Err(problem_at(
            Code::DdlBound,
            def.span,
            "a LIST partition takes VALUES IN (...)",
        )),
    }
}

/// Range partitions must not be empty or overlap.
fn check_ranges(
    partitions: &[(String, PartitionBound)],
    types: &[DataType],
    defs: &[sql::PartitionDef],
) -> Result<()> {
    let parse = |v: &[String]| -> Result<Vec<ScalarValue>> {
        v.iter()
            .zip(types)
            .map(|(s, t)| parse_scalar(s, t).map_err(EngineError::Arrow))
            .collect()
    };
    let mut ranges: Vec<(String, Vec<ScalarValue>, Vec<ScalarValue>)> = Vec::new();
    for ((name, bound), def) in partitions.iter().zip(defs) {
        if let PartitionBound::Range { lower, upper } = bound {
            let (lo, hi) = (parse(lower)?, parse(upper)?);
            if !lo.is_empty() && !hi.is_empty() && lo.partial_cmp(&hi).is_none_or(|o| o.is_ge()) {
                return Err(problem_at(
                    Code::DdlEmptyRange,
                    def.span,
                    format!(
                        "partition {name} is empty: its lower bound is not below its upper bound"
                    ),
                ));
            }
            for (other, olo, ohi) in &ranges {
                let below = |a: &Vec<ScalarValue>, b: &Vec<ScalarValue>| {
                    a.is_empty() || b.is_empty() || a.partial_cmp(b).is_some_and(|o| o.is_le())
                };
                // [lo, hi) and [olo, ohi) overlap unless hi <= olo or ohi <= lo.
                let disjoint = (!hi.is_empty() && !olo.is_empty() && below(&hi, olo))
                    || (!ohi.is_empty() && !lo.is_empty() && below(ohi, &lo));
                if !disjoint {
                    return Err(problem_at(
                        Code::DdlOverlap,
                        def.span,
                        format!("partition {name} overlaps partition {other}"),
                    ));
                }
            }
            ranges.push((name.clone(), lo, hi));
        }
    }
    Ok(())
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
    if engine
        .catalog()
        .view()
        .object(db.id, &name.name.value)?
        .is_none()
    {
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

pub fn alter_table(
    engine: &mut Engine,
    stmt: &sql::AlterTable,
    current: Option<&str>,
) -> Result<()> {
    let (db, obj) = engine.object(&stmt.name, current)?;
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

// ---- views and materialized views ---------------------------------------------------------

/// Base tables of a query, as `db.name`, checked to exist.
fn base_tables(engine: &mut Engine, query: &sql::QueryText, db: &str) -> Result<Vec<String>> {
    let refs = super::query::referenced_tables(&query.text, Some(db)).map_err(|e| {
        problem_at(
            Code::DdlQuery,
            query.span,
            format!("the query does not parse: {e}"),
        )
    })?;
    let mut out = Vec::new();
    for (rdb, table) in refs {
        let db_row = engine.catalog().view().database(&rdb)?;
        let found = match db_row {
            Some(d) => engine.catalog().view().object(d.id, &table)?.is_some(),
            None => false,
        };
        if !found {
            return Err(EngineError::at(
                Problem::new(
                    Code::DdlUnknownBase,
                    query.span,
                    format!("the query reads {rdb}.{table}, which does not exist"),
                )
                .label("this query"),
            ));
        }
        out.push(format!("{rdb}.{table}"));
    }
    Ok(out)
}

pub async fn create_view(
    engine: &mut Engine,
    stmt: &sql::CreateView,
    current: Option<&str>,
) -> Result<bool> {
    let Some(db) = free_name(engine, &stmt.name, stmt.if_not_exists, "view", current)? else {
        return Ok(false);
    };
    let bases = base_tables(engine, &stmt.query, &db.name)?;
    // Plan it once now, so a broken view is refused here rather than at its first query.
    let schema = plan_schema(engine, &stmt.query, &db.name).await?;
    if !stmt.columns.is_empty() && stmt.columns.len() != schema.fields().len() {
        return Err(problem_at(
            Code::DdlViewColumns,
            stmt.name.span(),
            format!(
                "the view names {} columns but its query returns {}",
                stmt.columns.len(),
                schema.fields().len()
            ),
        ));
    }
    let def = ObjectDef::View {
        sql: stmt.query.text.clone(),
        columns: stmt.columns.iter().map(|c| c.value.clone()).collect(),
        base_tables: bases,
        comment: stmt.comment.as_ref().map(|c| c.value.clone()),
    };
    engine.catalog().try_write(|tx| -> Result<()> {
        let name = &stmt.name.name;
        guard::not_restoring(tx, &db.name, &name.value, Change::Create, name.span)?;
        tx.insert_object(db.id, &name.value, &def, ObjectState::Normal)?;
        Ok(())
    })?;
    Ok(true)
}

/// The result schema of a query, planned against the catalog.
async fn plan_schema(
    engine: &mut Engine,
    query: &sql::QueryText,
    db: &str,
) -> Result<datafusion::arrow::datatypes::SchemaRef> {
    let ctx = super::query::new_context(Some(db));
    super::query::register_referenced(engine, &ctx, &query.text, Some(db)).await?;
    let df = ctx.sql(&query.text).await.map_err(|e| {
        EngineError::at(
            Problem::new(
                Code::DdlQuery,
                query.span,
                format!(
                    "the query cannot be planned: {}",
                    e.to_string().replace('\n', " ")
                ),
            )
            .label("this query"),
        )
    })?;
    Ok(std::sync::Arc::new(df.schema().as_arrow().clone()))
}

pub async fn create_materialized_view(
    engine: &mut Engine,
    stmt: &sql::CreateMaterializedView,
    current: Option<&str>,
) -> Result<bool> {
    let Some(db) = free_name(
        engine,
        &stmt.name,
        stmt.if_not_exists,
        "materialized view",
        current,
    )?
    else {
        return Ok(false);
    };
    let bases = base_tables(engine, &stmt.query, &db.name)?;
    if !stmt.is_async {
        return create_sync_mv(engine, stmt, &db, &bases).await;
    }
    let schema = plan_schema(engine, &stmt.query, &db.name).await?;
    let mut columns = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let sql_type = sql_type_of(f.data_type()).ok_or_else(|| {
            problem_at(
                Code::DdlMvType,
                stmt.query.span,
                format!(
                    "column {} of the query has type {}, which a table cannot store",
                    f.name(),
                    f.data_type()
                ),
            )
        })?;
        columns.push(Column {
            name: f.name().clone(),
            sql_type,
            nullable: true,
            is_key: i == 0,
            aggregate: None,
            default: None,
            comment: None,
        });
    }
    let partitioning = match &stmt.partitioning {
        None => Partitioning::Unpartitioned,
        Some(sql::PartitionDesc::DateTrunc { unit, column }) => Partitioning::DateTrunc {
            unit: unit.value.to_ascii_lowercase(),
            column: columns[resolve_column(&columns, column, "partition")?]
                .name
                .clone(),
        },
        Some(sql::PartitionDesc::Columns { columns: cols }) => Partitioning::Columns {
            columns: cols
                .iter()
                .map(|c| resolve_column(&columns, c, "partition").map(|i| columns[i].name.clone()))
                .collect::<Result<_>>()?,
        },
        Some(_) => Partitioning::Unpartitioned,
    };
    let distribution = match &stmt.distribution {
        Some(d) if !d.hash.is_empty() => Distribution::Hash {
            columns: d
                .hash
                .iter()
                .map(|c| {
                    resolve_column(&columns, c, "distribution").map(|i| columns[i].name.clone())
                })
                .collect::<Result<_>>()?,
            buckets: d.buckets.unwrap_or(DEFAULT_BUCKETS),
        },
        Some(d) => Distribution::Random {
            buckets: d.buckets.unwrap_or(DEFAULT_BUCKETS),
        },
        None => Distribution::Random {
            buckets: DEFAULT_BUCKETS,
        },
    };
    let table_schema = TableSchema {
        columns,
        keys: KeyKind::Duplicate,
        partitioning: partitioning.clone(),
        distribution,
        order_by: stmt.order_by.iter().map(|c| c.value.clone()).collect(),
        properties: props_map(&stmt.properties),
        comment: stmt.comment.as_ref().map(|c| c.value.clone()),
    };
    let buckets = table_schema.distribution.buckets();
    let refresh = match stmt.refresh {
        Some(sql::RefreshMode::Manual) => "MANUAL",
        _ => "ASYNC",
    };
    let def = ObjectDef::MaterializedView {
        schema: table_schema,
        sql: stmt.query.text.clone(),
        refresh: refresh.to_string(),
        base_tables: bases,
    };
    let name = stmt.name.name.value.clone();
    engine.catalog().try_write(|tx| -> Result<()> {
        let span = stmt.name.name.span;
        guard::not_restoring(tx, &db.name, &name, Change::Create, span)?;
        let id = tx.insert_object(db.id, &name, &def, ObjectState::Normal)?;
        if partitioning == Partitioning::Unpartitioned {
            tx.insert_partition(id, &name, &PartitionBound::Whole, buckets)?;
        }
        Ok(())
    })?;
    if refresh == "ASYNC" {
        // The initial build, as StarRocks does for an ASYNC MV.
        refresh_materialized_view(engine, &db.name, &name).await?;
    }
    Ok(true)
}

async fn create_sync_mv(
    engine: &mut Engine,
    stmt: &sql::CreateMaterializedView,
    db: &catalog::DatabaseRow,
    bases: &[String],
) -> Result<bool> {
    let [base] = bases else {
        return Err(problem_at(
            Code::DdlSyncMv,
            stmt.query.span,
            "a synchronous materialized view reads exactly one table; add REFRESH ASYNC for a multi-table view",
        ));
    };
    let table = base.rsplit('.').next().unwrap_or(base);
    let obj = engine
        .catalog()
        .view()
        .object(db.id, table)?
        .ok_or_else(|| {
            problem_at(
                Code::DdlSyncMv,
                stmt.query.span,
                format!("{base} must be a table of database {}", db.name),
            )
        })?;
    let ObjectDef::Table { schema, rollups } = &obj.def else {
        return Err(problem_at(
            Code::DdlSyncMv,
            stmt.query.span,
            format!("{base} is not a table"),
        ));
    };
    let rollup = super::rollup::plan(
        &db.name,
        &obj.name,
        schema,
        &stmt.name.name.value,
        &stmt.query.text,
    )
    .await
    .map_err(|e| problem_at(Code::DdlSyncMv, stmt.query.span, e.to_string()))?;
    // Build the rollup of the rows already there: one rollup rowset per base rowset, in files
    // named after a lease so that garbage collection leaves them alone until the commit.
    let rollup_arrow = super::types::arrow_schema(&rollup.schema);
    let lease = engine
        .catalog()
        .write(|tx| tx.begin_load(obj.id, crate::process::Process::current()))?;
    let mut built: Vec<(i64, catalog::RowsetRow)> = Vec::new();
    for base_rowset in engine.catalog().view().object_rowsets(obj.id)? {
        let rows = super::storage::read_rowset(&engine.file_path(&base_rowset.path))?;
        let out = super::rollup::compute(&db.name, &obj.name, schema, &rollup, rows).await?;
        let rel = format!("data/{}/L{lease}-R{}.parquet", obj.id, base_rowset.id);
        let mut w =
            super::storage::RowsetWriter::create(&engine.file_path(&rel), rollup_arrow.clone())?;
        for b in &out {
            w.write(b)?;
        }
        let file = w.finish()?;
        built.push((
            base_rowset.id,
            catalog::RowsetRow {
                id: 0,
                tablet_id: base_rowset.tablet_id,
                version: base_rowset.version,
                path: rel,
                rows: file.rows as i64,
                bytes: file.bytes as i64,
                sha256: file.sha256,
                live: true,
                rollup: Some(rollup.name.clone()),
            },
        ));
    }
    let mut rollups = rollups.clone();
    rollups.push(rollup);
    let def = ObjectDef::Table {
        schema: schema.clone(),
        rollups,
    };
    let base_ids: Vec<i64> = built.iter().map(|(id, _)| *id).collect();
    let committed = engine.catalog().try_write(|tx| -> Result<bool> {
        guard::not_restoring(tx, &db.name, &obj.name, Change::Alter, stmt.name.name.span)?;
        // The rollup must describe exactly the rows live now.
        let live: Vec<i64> = tx.object_rowsets(obj.id)?.iter().map(|r| r.id).collect();
        if live != base_ids {
            return Ok(false);
        }
        for (_, r) in &built {
            tx.insert_rowset(r)?;
        }
        tx.update_definition(obj.id, &def)?;
        tx.end_load(lease)?;
        Ok(true)
    })?;
    if !committed {
        engine.catalog().write(|tx| tx.end_load(lease))?;
        return Err(EngineError::invalid(
            format!(
                "{base} changed while its materialized view was being built; nothing was created"
            ),
            Some("run CREATE MATERIALIZED VIEW again"),
        ));
    }
    Ok(true)
}

/// Recomputes an async MV from its query and replaces its rows in one commit.
pub async fn refresh_materialized_view(engine: &mut Engine, db: &str, name: &str) -> Result<u64> {
    let db_row = engine
        .catalog()
        .view()
        .database(db)?
        .ok_or_else(|| EngineError::invalid(format!("unknown database {db}"), None))?;
    let obj = engine
        .catalog()
        .view()
        .object(db_row.id, name)?
        .ok_or_else(|| {
            EngineError::invalid(format!("unknown materialized view {db}.{name}"), None)
        })?;
    let ObjectDef::MaterializedView {
        sql: query,
        schema,
        base_tables,
        ..
    } = &obj.def
    else {
        return Err(EngineError::invalid(
            format!("{db}.{name} is not an asynchronous materialized view"),
            None,
        ));
    };
    if !obj.active {
        let missing = missing_base(engine, db, query, base_tables)?;
        let why = match missing.first() {
            Some(m) => format!(
                "base table {m} does not exist; restore it, then ALTER MATERIALIZED VIEW {name} ACTIVE"
            ),
            None => obj
                .inactive_reason
                .clone()
                .unwrap_or_else(|| "it is inactive".into()),
        };
        return Err(EngineError::invalid(
            format!("materialized view {db}.{name} is inactive and cannot refresh: {why}"),
            Some("ALTER MATERIALIZED VIEW ... ACTIVE once its base tables exist"),
        ));
    }
    let target = super::types::arrow_schema(schema);
    let (_, stream) = super::query::run(engine, query, Some(db)).await?;
    let positions: Vec<usize> = (0..schema.columns.len()).collect();
    let schema2 = schema.clone();
    let conformed = stream.map(move |b| {
        b.map_err(EngineError::from)
            .and_then(|b| super::load::conform(&schema2, &target, &b, &positions))
    });
    let summary = super::load::load(
        engine,
        &obj,
        super::load::LoadMode::Overwrite,
        Box::pin(conformed),
    )
    .await?;
    Ok(summary.rows)
}

/// Base tables (as `db.name`) that do not exist now. They are read again from the query, as
/// it resolves in the view's own database `db` (an MV restored under another database name
/// reads that database's tables); `recorded` (what CREATE found) counts only when the query
/// no longer parses.
pub fn missing_base(
    engine: &mut Engine,
    db: &str,
    query: &str,
    recorded: &[String],
) -> Result<Vec<String>> {
    let bases: Vec<String> = match super::query::referenced_tables(query, Some(db)) {
        Ok(refs) => refs.into_iter().map(|(d, t)| format!("{d}.{t}")).collect(),
        Err(_) => recorded.to_vec(),
    };
    let mut missing = Vec::new();
    for base in &bases {
        let (db, table) = base.split_once('.').unwrap_or(("", base));
        let found = match engine.catalog().view().database(db)? {
            Some(d) => engine.catalog().view().object(d.id, table)?.is_some(),
            None => false,
        };
        if !found {
            missing.push(base.clone());
        }
    }
    Ok(missing)
}

/// Why the query of a materialized view no longer yields the columns it stores, if it does
/// not: a base table dropped and created with other columns, say. Planned as a REFRESH would
/// run it, in the view's own database.
async fn mv_misfit(
    engine: &mut Engine,
    db: &str,
    query: &str,
    stored: &catalog::TableSchema,
) -> Result<Option<String>> {
    use datafusion::arrow::compute::can_cast_types;
    let ctx = super::query::new_context(Some(db));
    if let Err(e) = super::query::register_referenced(engine, &ctx, query, Some(db)).await {
        return Ok(Some(e.to_string()));
    }
    let df = match ctx.sql(query).await {
        Ok(df) => df,
        Err(e) => return Ok(Some(e.to_string().replace('\n', " "))),
    };
    let found = df.schema().as_arrow().clone();
    let target = super::types::arrow_schema(stored);
    if found.fields().len() != target.fields().len() {
        return Ok(Some(format!(
            "its query yields {} columns, and it stores {}",
            found.fields().len(),
            target.fields().len()
        )));
    }
    for (f, t) in found.fields().iter().zip(target.fields()) {
        if !f.name().eq_ignore_ascii_case(t.name()) {
            return Ok(Some(format!(
                "its query yields column {} where it stores {}",
                f.name(),
                t.name()
            )));
        }
        if !can_cast_types(f.data_type(), t.data_type()) {
            return Ok(Some(format!(
                "its query yields {} as {}, which its column of type {} cannot hold",
                f.name(),
                f.data_type(),
                t.data_type()
            )));
        }
    }
    Ok(None)
}

pub async fn alter_materialized_view(
    engine: &mut Engine,
    stmt: &sql::AlterMaterializedView,
    current: Option<&str>,
) -> Result<()> {
    let (db, obj) = engine.object(&stmt.name, current)?;
    let ObjectDef::MaterializedView {
        base_tables,
        sql: query,
        schema,
        ..
    } = &obj.def
    else {
        return Err(problem_at(
            Code::DdlNotMv,
            stmt.name.span(),
            format!("{} is not an asynchronous materialized view", stmt.name),
        ));
    };
    let span = stmt.name.name.span;
    if stmt.active {
        let missing = missing_base(engine, &db.name, query, base_tables)?;
        if let Some(m) = missing.first() {
            return Err(EngineError::at(
                Problem::new(
                    Code::DdlInactive,
                    stmt.name.span(),
                    format!(
                        "cannot activate {}: base table {m} does not exist",
                        stmt.name
                    ),
                )
                .label("base table missing")
                .help(format!("restore or create {m} first")),
            ));
        }
        if let Some(why) = mv_misfit(engine, &db.name, query, schema).await? {
            return Err(EngineError::at(
                Problem::new(
                    Code::DdlInactive,
                    stmt.name.span(),
                    format!("cannot activate {}: {why}", stmt.name),
                )
                .label("query no longer fits")
                .help("drop the materialized view and create it again over the tables as they are now"),
            ));
        }
        engine.catalog().try_write(|tx| -> Result<()> {
            guard::not_restoring(tx, &db.name, &obj.name, Change::Alter, span)?;
            Ok(tx.set_active(obj.id, true, None)?)
        })?;
    } else {
        engine.catalog().try_write(|tx| -> Result<()> {
            guard::not_restoring(tx, &db.name, &obj.name, Change::Alter, span)?;
            Ok(tx.set_active(obj.id, false, Some(super::maintenance::USER_INACTIVE))?)
        })?;
    }
    Ok(())
}

// ---- functions and external catalogs --------------------------------------------------------

/// Where a function lives: its database, or nowhere for a GLOBAL one.
fn function_database(
    engine: &mut Engine,
    global: bool,
    name: &sql::QualifiedName,
    current: Option<&str>,
) -> Result<Option<i64>> {
    if global {
        Ok(None)
    } else {
        Ok(Some(engine.database_of(name, current)?.id))
    }
}

pub fn create_function(
    engine: &mut Engine,
    stmt: &sql::CreateFunction,
    current: Option<&str>,
) -> Result<bool> {
    let db_id = function_database(engine, stmt.global, &stmt.name, current)?;
    let def = FunctionDef {
        name: stmt.name.name.value.clone(),
        arguments: stmt.arguments.iter().map(|t| t.to_string()).collect(),
        returns: stmt.returns.to_string(),
        kind: stmt.kind.as_ref().map(|k| k.value.clone()),
        properties: props_map(&stmt.properties),
    };
    let exists = engine
        .catalog()
        .view()
        .functions(db_id)?
        .iter()
        .any(|f| f.signature() == def.signature());
    if exists {
        if stmt.if_not_exists {
            return Ok(false);
        }
        return Err(already_exists(
            "function",
            &def.signature(),
            stmt.name.span(),
        ));
    }
    let db_name = match db_id {
        Some(_) => Some(engine.database_of(&stmt.name, current)?.name),
        None => None,
    };
    engine.catalog().try_write(|tx| -> Result<()> {
        if let Some(db) = &db_name {
            guard::function_not_restoring(tx, db, &def.name, stmt.name.span())?;
        }
        Ok(tx.insert_function(db_id, &def)?)
    })?;
    Ok(true)
}

pub fn drop_function(
    engine: &mut Engine,
    stmt: &sql::DropFunction,
    current: Option<&str>,
) -> Result<bool> {
    let db_id = function_database(engine, stmt.global, &stmt.name, current)?;
    let all = engine.catalog().view().functions(db_id)?;
    let matching: Vec<&FunctionDef> = all
        .iter()
        .filter(|f| f.name == stmt.name.name.value)
        .filter(|f| match &stmt.arguments {
            Some(args) => f.arguments == args.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            None => true,
        })
        .collect();
    match matching.as_slice() {
        [] if stmt.if_exists => Ok(false),
        [] => Err(EngineError::at(
            Problem::new(
                Code::DdlUnknownFunction,
                stmt.name.span(),
                format!("unknown function {}", stmt.name),
            )
            .label("no such function")
            .help(
                match sql::closest(&stmt.name.name.value, all.iter().map(|f| f.name.as_str())) {
                    Some(s) => format!("did you mean {s}?"),
                    None => "SHOW FUNCTIONS lists them".into(),
                },
            ),
        )),
        [one] => {
            let sig = one.signature();
            let name = one.name.clone();
            let db_name = match db_id {
                Some(_) => Some(engine.database_of(&stmt.name, current)?.name),
                None => None,
            };
            engine.catalog().try_write(|tx| -> Result<()> {
                if let Some(db) = &db_name {
                    guard::function_not_restoring(tx, db, &name, stmt.name.span())?;
                }
                tx.delete_function(db_id, &sig)?;
                Ok(())
            })?;
            Ok(true)
        }
        many => Err(problem_at(
            Code::DdlAmbiguousFunction,
            stmt.name.span(),
            format!(
                "{} has several overloads ({}); name the argument types",
                stmt.name,
                many.iter()
                    .map(|f| f.signature())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

pub fn create_catalog(engine: &mut Engine, stmt: &sql::CreateCatalog) -> Result<bool> {
    if engine
        .catalog()
        .view()
        .external_catalogs()?
        .iter()
        .any(|c| c.name == stmt.name.value)
    {
        if stmt.if_not_exists {
            return Ok(false);
        }
        return Err(already_exists("catalog", &stmt.name, stmt.name.span));
    }
    if stmt.properties.get("type").is_none() {
        return Err(EngineError::at(
            Problem::new(Code::DdlCatalogType, stmt.name.span, format!("catalog {} has no \"type\" property", stmt.name))
                .label("which kind of catalog?")
                .help("add PROPERTIES (\"type\" = \"hive\" | \"iceberg\" | \"hudi\" | \"deltalake\" | \"jdbc\" | ...)"),
        ));
    }
    let def = ExternalCatalogDef {
        name: stmt.name.value.clone(),
        comment: stmt.comment.as_ref().map(|c| c.value.clone()),
        properties: props_map(&stmt.properties),
    };
    engine.catalog().try_write(|tx| -> Result<()> {
        guard::catalog_not_restoring(tx, &def.name, stmt.name.span)?;
        Ok(tx.insert_external_catalog(&def)?)
    })?;
    Ok(true)
}

pub fn drop_catalog(engine: &mut Engine, stmt: &sql::DropCatalog) -> Result<bool> {
    let n = engine.catalog().try_write(|tx| -> Result<usize> {
        guard::catalog_not_restoring(tx, &stmt.name.value, stmt.name.span)?;
        Ok(tx.delete_external_catalog(&stmt.name.value)?)
    })?;
    if n == 0 && !stmt.if_exists {
        return Err(problem_at(
            Code::DdlUnknownCatalog,
            stmt.name.span,
            format!("unknown catalog {}", stmt.name),
        ));
    }
    Ok(n > 0)
}
