//! Merging rows of one tablet by key, as StarRocks' key models define it:
//! UNIQUE and PRIMARY keep the last row loaded for each key; AGGREGATE combines value columns
//! with their SUM, MAX, MIN, REPLACE or REPLACE_IF_NOT_NULL. DataFusion does the grouping.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::{EngineError, Result};
use crate::catalog::{AggregateKind, KeyKind, TableSchema};

/// Order of loading, so "last" is well defined.
const SEQ: &str = "__srbackup_seq";

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Merges `batches` (oldest first) into one row per key, sorted by key.
pub async fn merge_key_model(
    schema: &TableSchema,
    arrow: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    if schema.keys == KeyKind::Duplicate {
        return Ok(batches);
    }
    // Number every row in load order.
    let mut fields: Vec<Field> = arrow.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(SEQ, DataType::UInt64, false));
    let with_seq = Arc::new(Schema::new(fields));
    let mut seq = 0u64;
    let mut numbered = Vec::with_capacity(batches.len());
    for b in batches {
        let n = b.num_rows() as u64;
        let mut cols: Vec<ArrayRef> = b.columns().to_vec();
        cols.push(Arc::new(UInt64Array::from_iter_values(seq..seq + n)));
        seq += n;
        numbered.push(RecordBatch::try_new(with_seq.clone(), cols)?);
    }
    let ctx = SessionContext::new();
    let table = MemTable::try_new(with_seq, vec![numbered])?;
    ctx.register_table("tablet", Arc::new(table))?;

    let keys: Vec<String> = schema.key_columns().map(|c| quoted(&c.name)).collect();
    let order = format!("ORDER BY {}", quoted(SEQ));
    let select: Vec<String> = schema
        .columns
        .iter()
        .map(|c| {
            let q = quoted(&c.name);
            if c.is_key {
                return q;
            }
            let agg = match (schema.keys, c.aggregate) {
                (KeyKind::Aggregate, Some(AggregateKind::Sum)) => format!("sum({q})"),
                (KeyKind::Aggregate, Some(AggregateKind::Max)) => format!("max({q})"),
                (KeyKind::Aggregate, Some(AggregateKind::Min)) => format!("min({q})"),
                (KeyKind::Aggregate, Some(AggregateKind::ReplaceIfNotNull)) => {
                    format!("last_value({q} {order}) FILTER (WHERE {q} IS NOT NULL)")
                }
                _ => format!("last_value({q} {order})"),
            };
            format!("{agg} AS {q}")
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM tablet GROUP BY {} ORDER BY {}",
        select.join(", "),
        keys.join(", "),
        keys.join(", ")
    );
    let merged = ctx.sql(&sql).await?.collect().await?;
    // Aggregates may widen types (SUM of INT is BIGINT): cast back to the column types.
    merged
        .into_iter()
        .map(|b| {
            let cols = b
                .columns()
                .iter()
                .zip(arrow.fields())
                .map(|(a, f)| cast(a, f.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| EngineError::Arrow(format!("merging rows: {e}")))?;
            Ok(RecordBatch::try_new(arrow.clone(), cols)?)
        })
        .collect()
}
