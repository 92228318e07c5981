//! INSERT: VALUES rows typed against the table's columns, `INSERT ... SELECT`, and loads from
//! `FILES(...)`; every row goes through the engine's load (one commit).

use futures::StreamExt;

use crate::catalog::{self, ObjectKind};
use crate::code::Code;
use crate::engine::load::{self, LoadMode};
use crate::engine::{Engine, EngineError, Result, ddl, query};
use crate::sql::{self, InsertSource};

use super::at_query;

pub(super) async fn insert(
    engine: &mut Engine,
    stmt: &sql::Insert,
    current: Option<&str>,
    paths: &crate::config::PathPolicy,
) -> Result<u64> {
    let (_, obj) = engine.object(&stmt.table, current)?;
    let Some(schema) = obj.def.schema().cloned() else {
        return Err(crate::engine::problem_at(
            Code::LoadView,
            stmt.table.span(),
            format!("{} is a view; it holds no data", stmt.table),
        ));
    };
    if obj.def.kind() == ObjectKind::MaterializedView {
        return Err(crate::engine::problem_at(
            Code::LoadMv,
            stmt.table.span(),
            format!(
                "{} is a materialized view; REFRESH MATERIALIZED VIEW fills it",
                stmt.table
            ),
        ));
    }
    let target = crate::engine::types::arrow_schema(&schema);
    // Which table column each input column feeds.
    let positions: Vec<usize> = if stmt.columns.is_empty() {
        (0..schema.columns.len()).collect()
    } else {
        stmt.columns
            .iter()
            .map(|c| {
                schema.column_index(&c.value).ok_or_else(|| {
                    crate::engine::problem_at(
                        Code::LoadUnknownColumn,
                        c.span,
                        format!("{} has no column {c}", stmt.table),
                    )
                })
            })
            .collect::<Result<_>>()?
    };
    match &stmt.source {
        InsertSource::Values { rows } => {
            let mut typed = Vec::with_capacity(rows.len());
            for row in rows {
                if row.values.len() != positions.len() {
                    return Err(crate::engine::problem_at(
                        Code::LoadColumnCount,
                        row.span,
                        format!(
                            "this row has {} values but {} columns are loaded",
                            row.values.len(),
                            positions.len()
                        ),
                    ));
                }
                let mut values = Vec::with_capacity(schema.columns.len());
                for (i, column) in schema.columns.iter().enumerate() {
                    let dt = target.field(i).data_type();
                    let given = positions
                        .iter()
                        .position(|p| *p == i)
                        .map(|input| &row.values[input]);
                    let value = match given {
                        Some(sql::Datum::Default(_)) | None => default_value(column, dt)?,
                        Some(v) => ddl::datum_scalar(v, dt, &column.name)?,
                    };
                    // Check here, where the error can point at the value (or the row).
                    let span = given.map(|v| v.span()).unwrap_or(row.span);
                    if value.is_null() && !column.nullable {
                        return Err(crate::engine::problem_at(
                            Code::LoadNotNull,
                            span,
                            format!("column {} is NOT NULL but gets no value here", column.name),
                        ));
                    }
                    if let (Some(max), datafusion::common::ScalarValue::Utf8(Some(text))) =
                        (column.sql_type.max_length(), &value)
                        && text.chars().count() > max as usize
                    {
                        return Err(crate::engine::problem_at(
                            Code::LoadTooLong,
                            span,
                            format!(
                                "{} characters do not fit column {} ({})",
                                text.chars().count(),
                                column.name,
                                column.sql_type.sql_name()
                            ),
                        ));
                    }
                    values.push(value);
                }
                typed.push(values);
            }
            let batch = load::batch_from_scalars(&target, typed)?;
            let summary = load::load(
                engine,
                &obj,
                LoadMode::Append,
                load::batches_stream(vec![batch]),
            )
            .await?;
            Ok(summary.rows)
        }
        InsertSource::Query(q) => {
            let (_, stream) = query::run(engine, &q.text, current)
                .await
                .map_err(|e| at_query(e, q))?;
            Ok(
                load::load_query(engine, &obj, &schema, stream, positions, None)
                    .await?
                    .rows,
            )
        }
        InsertSource::Files { properties } => {
            let stream = crate::engine::files::open(properties, stmt.span, paths)?;
            let schema2 = schema.clone();
            let conformed = stream
                .map(move |b| b.and_then(|b| load::conform(&schema2, &target, &b, &positions)));
            Ok(
                load::load(engine, &obj, LoadMode::Append, Box::pin(conformed))
                    .await?
                    .rows,
            )
        }
    }
}

fn default_value(
    column: &catalog::Column,
    dt: &datafusion::arrow::datatypes::DataType,
) -> Result<datafusion::common::ScalarValue> {
    crate::engine::types::default_scalar(column, dt).map_err(EngineError::Arrow)
}
