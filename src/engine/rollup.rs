//! Synchronous materialized views (rollups), kept in their base table's tablets.
//!
//! For every base rowset a load writes, it also writes, in the same tablet and the same commit,
//! a rollup rowset: the MV's query run over just that rowset's rows. Those partial aggregates
//! combine (SUM of counts and sums, MIN of mins, MAX of maxes) into the MV's answer, so the MV
//! is always exactly as fresh as its table, and it travels with the table's tablets wherever
//! they go (pins, backups, restores).

use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::{Expr, FunctionArguments, SelectItem, SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::MySqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::types::{arrow_schema, sql_type_of};
use super::{EngineError, Result};
use crate::catalog::{
    AggregateKind, Column, Distribution, KeyKind, Partitioning, RollupDef, TableSchema,
};

fn unsupported(why: impl Into<String>) -> EngineError {
    EngineError::invalid(
        why,
        Some(
            "a synchronous materialized view selects group-by columns and COUNT, SUM, MIN or MAX of the table's columns",
        ),
    )
}

/// How each select item of the MV's query combines across rowsets (`None`: a group-by key).
fn item_kinds(sql: &str) -> Result<Vec<Option<AggregateKind>>> {
    let statements = Parser::parse_sql(&MySqlDialect {}, sql)
        .map_err(|e| unsupported(format!("the materialized view's query does not parse: {e}")))?;
    let [Statement::Query(query)] = statements.as_slice() else {
        return Err(unsupported(
            "the materialized view's body must be one SELECT",
        ));
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(unsupported(
            "the materialized view's body must be a plain SELECT",
        ));
    };
    let mut kinds = Vec::new();
    for item in &select.projection {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => {
                return Err(unsupported(
                    "a synchronous materialized view cannot select *",
                ));
            }
        };
        kinds.push(match expr {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
            Expr::Function(f) => {
                if matches!(&f.args, FunctionArguments::List(list) if list.duplicate_treatment.is_some()) {
                    return Err(unsupported("COUNT(DISTINCT ...) cannot be combined across loads"));
                }
                match f.name.to_string().to_ascii_lowercase().as_str() {
                    "count" | "sum" => Some(AggregateKind::Sum),
                    "min" => Some(AggregateKind::Min),
                    "max" => Some(AggregateKind::Max),
                    other => return Err(unsupported(format!("{other}() cannot be kept incrementally"))),
                }
            }
            other => return Err(unsupported(format!("{other} is neither a column nor COUNT/SUM/MIN/MAX"))),
        });
    }
    Ok(kinds)
}

/// A context where the base table (empty or holding `batches`) answers to its name.
fn context(
    db: &str,
    table: &str,
    base: &TableSchema,
    batches: Vec<RecordBatch>,
) -> Result<datafusion::prelude::SessionContext> {
    let ctx = super::query::new_context(Some(db));
    super::query::ensure_schema(&ctx, db)?;
    let mem = MemTable::try_new(arrow_schema(base), vec![batches])?;
    ctx.register_table(TableReference::partial(db, table), Arc::new(mem))?;
    Ok(ctx)
}

/// Checks a sync MV's query against its base table and derives the rollup's schema.
pub async fn plan(
    db: &str,
    table: &str,
    base: &TableSchema,
    name: &str,
    sql: &str,
) -> Result<RollupDef> {
    let kinds = item_kinds(sql)?;
    let ctx = context(db, table, base, Vec::new())?;
    let df = ctx.sql(sql).await.map_err(|e| {
        unsupported(format!(
            "the materialized view's query cannot be planned: {}",
            e.to_string().replace('\n', " ")
        ))
    })?;
    let fields = df.schema().as_arrow().fields().clone();
    let mut columns = Vec::new();
    for (field, kind) in fields.iter().zip(&kinds) {
        let sql_type = sql_type_of(field.data_type()).ok_or_else(|| {
            unsupported(format!("{} has a type a table cannot store", field.name()))
        })?;
        columns.push(Column {
            name: field.name().clone(),
            sql_type,
            nullable: true,
            is_key: kind.is_none(),
            aggregate: *kind,
            default: None,
            comment: None,
        });
    }
    // Keys first, as an AGGREGATE KEY table keeps them.
    columns.sort_by_key(|c| !c.is_key);
    if !columns.iter().any(|c| c.is_key) {
        return Err(unsupported(
            "a synchronous materialized view needs at least one group-by column",
        ));
    }
    Ok(RollupDef {
        name: name.to_string(),
        sql: sql.to_string(),
        schema: TableSchema {
            columns,
            keys: KeyKind::Aggregate,
            partitioning: Partitioning::Unpartitioned,
            distribution: Distribution::Random { buckets: 1 },
            order_by: Vec::new(),
            properties: Default::default(),
            comment: None,
        },
    })
}

/// The rollup rows of some base rows (one rowset's worth).
pub async fn compute(
    db: &str,
    table: &str,
    base: &TableSchema,
    rollup: &RollupDef,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    // The rows go under the name the MV's query was written against: a RENAME or SWAP of the
    // base table since changes the table's name, not the query's text.
    let (db, table) = match super::query::referenced_tables(&rollup.sql, Some(db))?.as_slice() {
        [(d, t)] => (d.clone(), t.clone()),
        _ => (db.to_string(), table.to_string()),
    };
    let ctx = context(&db, &table, base, batches)?;
    let out = ctx.sql(&rollup.sql).await?.collect().await?;
    let target = arrow_schema(&rollup.schema);
    // Reorder to keys-first and cast to the stored types.
    out.into_iter()
        .map(|b| {
            let cols = target
                .fields()
                .iter()
                .map(|f| {
                    let i = b.schema().index_of(f.name())?;
                    cast(b.column(i), f.data_type())
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(RecordBatch::try_new(target.clone(), cols)?)
        })
        .collect()
}

/// SQL that combines the partial rollups stored in `raw` into the MV's rows.
pub fn combine_sql(rollup: &RollupDef, raw: &str) -> String {
    let q = |n: &str| format!("`{}`", n.replace('`', "``"));
    let keys: Vec<String> = rollup.schema.key_columns().map(|c| q(&c.name)).collect();
    let items: Vec<String> = rollup
        .schema
        .columns
        .iter()
        .map(|c| match c.aggregate {
            None => q(&c.name),
            Some(AggregateKind::Min) => format!("min({0}) AS {0}", q(&c.name)),
            Some(AggregateKind::Max) => format!("max({0}) AS {0}", q(&c.name)),
            Some(_) => format!("sum({0}) AS {0}", q(&c.name)),
        })
        .collect();
    format!(
        "SELECT {} FROM {} GROUP BY {}",
        items.join(", "),
        q(raw),
        keys.join(", ")
    )
}
