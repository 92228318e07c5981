//! UPDATE and DELETE, with StarRocks' rules (`UpdateAnalyzer.java`, `DeleteAnalyzer.java`).
//!
//! UPDATE is for PRIMARY KEY tables: the changed rows are selected with their new values and
//! loaded again, and the key model's merge-on-write (last row per key wins) replaces the old
//! ones in the same commit machinery every load uses. Key columns cannot be assigned, so a
//! changed row always replaces itself.
//!
//! DELETE rewrites, tablet by tablet, the rowsets that hold matching rows (rowsets are
//! immutable): the rows that do not match go into one new rowset (with its synchronous MVs'
//! rows), committed in one catalog transaction that checks no other load changed those
//! tablets meanwhile. A tablet without a matching row is not touched, so partitions without
//! deleted rows keep their visible version (tools looking for changed partitions see only
//! the ones that changed).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr};
use datafusion::sql::sqlparser::dialect::MySqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::guard::{self, Change};
use super::load;
use super::storage::{RowsetWriter, read_rowset};
use super::types::arrow_schema;
use super::{Engine, EngineError, Result, problem_at, query};
use crate::catalog::{self, KeyKind, ObjectDef, ObjectRow};
use crate::code::Code;
use crate::sql::{self, Problem, QuotedIdent};

/// The table a DML statement changes: a table, not a view or a materialized view.
fn target(
    engine: &mut Engine,
    table: &sql::QualifiedName,
    current: Option<&str>,
    verb: &str,
) -> Result<(catalog::DatabaseRow, ObjectRow)> {
    let (db, obj) = engine.object(table, current)?;
    match &obj.def {
        ObjectDef::Table { .. } => Ok((db, obj)),
        other => Err(problem_at(
            Code::DmlUnsupported,
            table.span(),
            format!(
                "{table} is a {}; {verb} changes tables",
                other.kind().noun()
            ),
        )),
    }
}

fn condition_required(cond: &Option<sql::QueryText>, span: sql::Span, verb: &str) -> Result<()> {
    if cond.is_some() {
        return Ok(());
    }
    Err(EngineError::at(
        Problem::new(
            Code::DmlNoWhere,
            span,
            format!("{verb} needs a WHERE clause"),
        )
        .help(if verb == "DELETE" {
            "TRUNCATE TABLE empties a table"
        } else {
            "say which rows (WHERE 1 = 1 for all of them)"
        }),
    ))
}

/// The query an UPDATE runs (in its table's database): `select` over `table` where its
/// condition holds. The privilege check reads the same text for what the statement reads.
pub fn update_query(select: &[String], table: &str, condition: Option<&sql::QueryText>) -> String {
    let condition = condition.map(|c| c.text.as_str()).unwrap_or("TRUE");
    format!(
        "SELECT {} FROM {table} WHERE {condition}",
        select.join(", ")
    )
}

/// The query a DELETE keeps the rows of: those where its condition does not hold. The
/// privilege check reads the same text for what the statement reads.
pub fn delete_keep_query(table: &str, condition: &sql::QueryText) -> String {
    format!(
        "SELECT * FROM {table} WHERE NOT COALESCE(({}), FALSE)",
        condition.text
    )
}

/// `UPDATE t SET c = expr, … WHERE condition` on a PRIMARY KEY table; the rows changed.
pub async fn update(engine: &mut Engine, stmt: &sql::Update, current: Option<&str>) -> Result<u64> {
    let (db, obj) = target(engine, &stmt.table, current, "UPDATE")?;
    let schema = obj
        .def
        .schema()
        .cloned()
        .ok_or_else(|| EngineError::invalid(format!("{} holds no data", stmt.table), None))?;
    if schema.keys != KeyKind::Primary {
        return Err(EngineError::at(
            Problem::new(
                Code::DmlUnsupported,
                stmt.table.span(),
                format!(
                    "Table {} does not support update: only PRIMARY KEY tables can be updated",
                    obj.name
                ),
            )
            .help("load the corrected rows with INSERT (UNIQUE KEY tables keep the last row of each key)"),
        ));
    }
    condition_required(&stmt.condition, stmt.span, "UPDATE")?;
    let mut assigned: HashMap<usize, &sql::Assignment> = HashMap::new();
    for a in &stmt.assignments {
        let Some(i) = schema.column_index(&a.column.value) else {
            return Err(problem_at(
                Code::LoadUnknownColumn,
                a.column.span,
                format!("{} has no column {}", stmt.table, a.column),
            ));
        };
        if schema.columns[i].is_key {
            return Err(EngineError::at(
                Problem::new(
                    Code::DmlKeyColumn,
                    a.column.span,
                    format!("key column {} cannot be updated", a.column),
                )
                .help("delete the row and insert it with the new key"),
            ));
        }
        if assigned.insert(i, a).is_some() {
            return Err(problem_at(
                Code::DmlKeyColumn,
                a.column.span,
                format!("column {} is assigned twice", a.column),
            ));
        }
    }
    let select: Vec<String> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| match assigned.get(&i) {
            Some(a) => format!("({}) AS {}", a.value.text, QuotedIdent(&c.name)),
            None => QuotedIdent(&c.name).to_string(),
        })
        .collect();
    let table = format!("{}.{}", QuotedIdent(&db.name), QuotedIdent(&obj.name));
    let sql = update_query(&select, &table, stmt.condition.as_ref());
    // What the rows were read from: taken before the read, checked when the new rows merge.
    let expected = load::live_rowsets_by_tablet(engine, obj.id)?;
    let (_, stream) = query::run(engine, &sql, Some(&db.name))
        .await
        .map_err(|e| at_statement(e, stmt.span))?;
    let positions: Vec<usize> = (0..schema.columns.len()).collect();
    Ok(
        load::load_query(engine, &obj, &schema, stream, positions, Some(expected))
            .await?
            .rows,
    )
}

/// A query error in a DML statement's expressions, pointed at the statement.
fn at_statement(e: EngineError, span: sql::Span) -> EngineError {
    match e {
        EngineError::Query(message) => {
            EngineError::at(Problem::new(Code::Query, span, message).label("in this statement"))
        }
        other => other,
    }
}

/// What DELETE allows on tables other than PRIMARY KEY ones (StarRocks' rule): an AND of
/// `column op constant`, `column IS [NOT] NULL` and `column [NOT] IN (constants)`, on key
/// columns for UNIQUE and AGGREGATE tables.
fn check_simple_condition(
    text: &str,
    span: sql::Span,
    schema: &catalog::TableSchema,
) -> Result<()> {
    let refuse = |why: String| {
        EngineError::at(
            Problem::new(Code::DmlCondition, span, why).help(
                "on DUPLICATE, UNIQUE and AGGREGATE KEY tables DELETE takes conditions joined by AND, each `column op constant`, `column IS [NOT] NULL` or `column IN (constants)`",
            ),
        )
    };
    let expr = Parser::new(&MySqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| refuse(format!("cannot read the condition: {e}")))?;
    let keys_only = matches!(schema.keys, KeyKind::Unique | KeyKind::Aggregate);
    let column = |e: &Expr| -> Result<()> {
        let name = match e {
            Expr::Identifier(id) => id.value.clone(),
            Expr::CompoundIdentifier(parts) => {
                parts.last().map(|p| p.value.clone()).unwrap_or_default()
            }
            other => return Err(refuse(format!("`{other}` is not a column"))),
        };
        match schema.column(&name) {
            None => Err(refuse(format!("no column {name}"))),
            Some(c) if keys_only && !c.is_key => Err(refuse(format!(
                "column {name} is not a key column; on this table DELETE conditions name key columns"
            ))),
            Some(_) => Ok(()),
        }
    };
    let constant = |e: &Expr| -> Result<()> {
        match e {
            Expr::Value(_) => Ok(()),
            Expr::UnaryOp { expr, .. } if matches!(**expr, Expr::Value(_)) => Ok(()),
            other => Err(refuse(format!("`{other}` is not a constant"))),
        }
    };
    fn walk(
        e: &Expr,
        column: &dyn Fn(&Expr) -> Result<()>,
        constant: &dyn Fn(&Expr) -> Result<()>,
        refuse: &dyn Fn(String) -> EngineError,
    ) -> Result<()> {
        match e {
            Expr::Nested(inner) => walk(inner, column, constant, refuse),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                walk(left, column, constant, refuse)?;
                walk(right, column, constant, refuse)
            }
            Expr::BinaryOp {
                left,
                op:
                    BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq,
                right,
            } => {
                column(left)?;
                constant(right)
            }
            Expr::IsNull(c) | Expr::IsNotNull(c) => column(c),
            Expr::InList { expr, list, .. } => {
                column(expr)?;
                list.iter().try_for_each(constant)
            }
            other => Err(refuse(format!("`{other}` is not allowed here"))),
        }
    }
    walk(&expr, &column, &constant, &refuse)
}

/// A tablet DELETE rewrites: the rowsets it read and the rows it keeps.
struct Rewrite {
    partition_id: i64,
    tablet_id: i64,
    read: Vec<i64>,
    kept: Vec<RecordBatch>,
}

/// `DELETE FROM t WHERE condition`; the rows deleted.
pub async fn delete(engine: &mut Engine, stmt: &sql::Delete, current: Option<&str>) -> Result<u64> {
    let (db, obj) = target(engine, &stmt.table, current, "DELETE")?;
    let schema = obj
        .def
        .schema()
        .cloned()
        .ok_or_else(|| EngineError::invalid(format!("{} holds no data", stmt.table), None))?;
    condition_required(&stmt.condition, stmt.span, "DELETE")?;
    let condition = stmt.condition.as_ref().expect("checked above");
    query::check_size(&condition.text)?;
    if schema.keys != KeyKind::Primary {
        check_simple_condition(&condition.text, condition.span, &schema)?;
    }
    guard::not_restoring(
        &engine.catalog().view(),
        &db.name,
        &obj.name,
        Change::Load,
        stmt.table.span(),
    )?;
    let arrow = arrow_schema(&schema);
    let keep_sql = delete_keep_query(&QuotedIdent(&obj.name).to_string(), condition);
    // Which rows go, tablet by tablet.
    let mut rewrites = Vec::new();
    let mut deleted = 0u64;
    let partitions = engine.catalog().view().partitions(obj.id)?;
    for p in &partitions {
        for t in engine.catalog().view().tablets(p.id)? {
            let rowsets = engine.catalog().view().live_rowsets(t.id)?;
            if rowsets.is_empty() {
                continue;
            }
            let mut batches = Vec::new();
            for r in &rowsets {
                batches.extend(read_rowset(&engine.file_path(&r.path))?);
            }
            let before: usize = batches.iter().map(|b| b.num_rows()).sum();
            let ctx = SessionContext::new_with_config(
                SessionConfig::new().set_str("datafusion.sql_parser.dialect", "MySQL"),
            );
            ctx.register_table(
                obj.name.as_str(),
                Arc::new(MemTable::try_new(arrow.clone(), vec![batches])?),
            )?;
            let kept = ctx
                .sql(&keep_sql)
                .await
                .map_err(|e| at_statement(EngineError::Query(e.to_string()), condition.span))?
                .collect()
                .await?;
            let after: usize = kept.iter().map(|b| b.num_rows()).sum();
            if after == before {
                continue;
            }
            deleted += (before - after) as u64;
            rewrites.push(Rewrite {
                partition_id: p.id,
                tablet_id: t.id,
                read: rowsets.iter().map(|r| r.id).collect(),
                kept,
            });
        }
    }
    if rewrites.is_empty() {
        return Ok(0);
    }
    let load_id = engine
        .catalog()
        .write(|tx| tx.begin_load(obj.id, crate::process::Process::current()))?;
    let result = rewrite_and_commit(engine, &db.name, &obj, &schema, load_id, rewrites).await;
    if result.is_err() {
        // Its files are garbage now; GC removes them once the load is no longer registered.
        let _ = engine.catalog().write(|tx| tx.end_load(load_id));
    }
    result.map(|()| deleted)
}

async fn rewrite_and_commit(
    engine: &mut Engine,
    db: &str,
    obj: &ObjectRow,
    schema: &catalog::TableSchema,
    load_id: i64,
    rewrites: Vec<Rewrite>,
) -> Result<()> {
    let arrow = arrow_schema(schema);
    let rollups = match &obj.def {
        ObjectDef::Table { rollups, .. } => rollups.clone(),
        _ => Vec::new(),
    };
    let root = engine.root().to_path_buf();
    // (rewrite index, rollup name, file)
    let mut files = Vec::new();
    for (i, rw) in rewrites.iter().enumerate() {
        let rows: usize = rw.kept.iter().map(|b| b.num_rows()).sum();
        if rows == 0 {
            continue;
        }
        let path = engine.file_path(&format!(
            "data/{}/D{load_id}-{}.parquet",
            obj.id, rw.tablet_id
        ));
        let mut w = RowsetWriter::create(&path, arrow.clone())?;
        for b in &rw.kept {
            w.write(b)?;
        }
        files.push((i, None, w.finish()?));
        for (n, rollup) in rollups.iter().enumerate() {
            let out =
                super::rollup::compute(db, &obj.name, schema, rollup, rw.kept.clone()).await?;
            let path = path.with_extension(format!("r{n}.parquet"));
            let mut w = RowsetWriter::create(&path, arrow_schema(&rollup.schema))?;
            for b in &out {
                w.write(b)?;
            }
            files.push((i, Some(rollup.name.clone()), w.finish()?));
        }
    }
    let object_name = obj.name.clone();
    engine.catalog().try_write(|tx| -> Result<()> {
        guard::not_restoring(tx, db, &object_name, Change::Load, sql::Span::default())?;
        let mut versions: HashMap<i64, i64> = HashMap::new();
        for rw in &rewrites {
            let live: Vec<i64> = tx.live_rowsets(rw.tablet_id)?.iter().map(|r| r.id).collect();
            if live != rw.read {
                return Err(EngineError::invalid(
                    format!(
                        "another load changed {object_name} while the DELETE ran; nothing was deleted"
                    ),
                    Some("run the DELETE again"),
                ));
            }
            for r in tx.all_live_rowsets(rw.tablet_id)? {
                tx.retire_rowset(r.id)?;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = versions.entry(rw.partition_id) {
                e.insert(tx.bump_version(rw.partition_id)?);
            }
        }
        for (i, rollup, file) in &files {
            let rw = &rewrites[*i];
            let path = file
                .path
                .strip_prefix(&root)
                .unwrap_or(&file.path)
                .to_string_lossy()
                .into_owned();
            tx.insert_rowset(&file.live_row(
                rw.tablet_id,
                versions.get(&rw.partition_id).copied().unwrap_or(1),
                path,
                rollup.clone(),
            ))?;
        }
        tx.end_load(load_id)?;
        Ok(())
    })
}
