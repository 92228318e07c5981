//! Query results as rows of text, the way every client of a session receives them.

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::engine::Result;
use crate::results::{ColumnKind, ResultSet};

/// Rows of record batches as text.
pub fn result_set(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<ResultSet> {
    let mut rs = ResultSet {
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        rows: Vec::new(),
        kinds: schema
            .fields()
            .iter()
            .map(|f| column_kind(f.data_type()))
            .collect(),
    };
    let options = FormatOptions::default();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rs.rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| (!c.is_null(row)).then(|| f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    Ok(rs)
}

/// What a DataFusion column holds, as far as a client cares.
pub(super) fn column_kind(t: &datafusion::arrow::datatypes::DataType) -> ColumnKind {
    use datafusion::arrow::datatypes::DataType as T;
    match t {
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => {
            ColumnKind::Integer
        }
        T::Float16 | T::Float32 | T::Float64 => ColumnKind::Float,
        T::Decimal32(..) | T::Decimal64(..) | T::Decimal128(..) | T::Decimal256(..) => {
            ColumnKind::Decimal
        }
        T::Date32 | T::Date64 => ColumnKind::Date,
        T::Timestamp(..) => ColumnKind::DateTime,
        _ => ColumnKind::Text,
    }
}
