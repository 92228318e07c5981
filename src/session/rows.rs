//! Query results as rows of text, the way every client of a session receives them: the text
//! MySQL and StarRocks put on the wire, so a driver converts it back to the same value.
//! DATETIME is `YYYY-MM-DD HH:MM:SS[.ffffff]` (a space, never ISO's `T`, which one driver's C
//! extension silently reads as midnight), BOOLEAN is `1`/`0`, DECIMAL keeps its scale.

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
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
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .map(Texts::new)
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            rs.rows.push(columns.iter().map(|c| c.value(row)).collect());
        }
    }
    Ok(rs)
}

/// One column's values as wire text.
enum Texts<'a> {
    /// An untyped NULL (`SELECT NULL`): every value is NULL.
    Null,
    Boolean(&'a BooleanArray),
    /// Any timestamp, as microseconds.
    DateTime(TimestampMicrosecondArray),
    Other(&'a dyn Array, ArrayFormatter<'a>),
}

/// Arrow's own text for everything else (dates as `%Y-%m-%d`, decimals with their scale).
const OPTIONS: FormatOptions<'static> = FormatOptions::new();

impl<'a> Texts<'a> {
    fn new(column: &'a ArrayRef) -> Result<Texts<'a>> {
        Ok(match column.data_type() {
            DataType::Null => Texts::Null,
            DataType::Boolean => Texts::Boolean(
                column
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| crate::engine::EngineError::Query("boolean column".into()))?,
            ),
            DataType::Timestamp(..) => {
                let micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
                Texts::DateTime(
                    micros
                        .as_any()
                        .downcast_ref::<TimestampMicrosecondArray>()
                        .cloned()
                        .ok_or_else(|| {
                            crate::engine::EngineError::Query("timestamp column".into())
                        })?,
                )
            }
            _ => Texts::Other(
                column.as_ref(),
                ArrayFormatter::try_new(column.as_ref(), &OPTIONS)?,
            ),
        })
    }

    fn value(&self, row: usize) -> Option<String> {
        match self {
            Texts::Null => None,
            Texts::Boolean(a) => {
                (!a.is_null(row)).then(|| if a.value(row) { "1" } else { "0" }.into())
            }
            Texts::DateTime(a) => (!a.is_null(row)).then(|| datetime_text(a.value(row))),
            Texts::Other(a, f) => (!a.is_null(row)).then(|| f.value(row).to_string()),
        }
    }
}

/// A DATETIME as MySQL writes it: `YYYY-MM-DD HH:MM:SS`, and `.ffffff` when there is a fraction.
pub fn datetime_text(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => {
            let t = t.naive_utc();
            let fraction = micros.rem_euclid(1_000_000);
            if fraction == 0 {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                format!("{}.{fraction:06}", t.format("%Y-%m-%d %H:%M:%S"))
            }
        }
        // Out of chrono's range (±262,000 years): the number itself rather than a wrong date.
        None => micros.to_string(),
    }
}

/// What a DataFusion column holds, as far as a client cares.
pub(super) fn column_kind(t: &DataType) -> ColumnKind {
    use DataType as T;
    match t {
        T::Boolean => ColumnKind::Boolean,
        T::Int8 => ColumnKind::TinyInt,
        T::Int16 | T::UInt8 => ColumnKind::SmallInt,
        T::Int32 | T::UInt16 => ColumnKind::Int,
        T::Int64 | T::UInt32 => ColumnKind::Integer,
        T::UInt64 => ColumnKind::LargeInt,
        // How LARGEINT is stored (see engine::types).
        T::Decimal128(38, 0) => ColumnKind::LargeInt,
        T::Float16 | T::Float32 => ColumnKind::Float,
        T::Float64 => ColumnKind::Double,
        T::Decimal32(..) | T::Decimal64(..) | T::Decimal128(..) | T::Decimal256(..) => {
            ColumnKind::Decimal
        }
        T::Date32 | T::Date64 => ColumnKind::Date,
        T::Timestamp(..) => ColumnKind::DateTime,
        _ => ColumnKind::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_written_as_mysql_writes_them() {
        assert_eq!(datetime_text(0), "1970-01-01 00:00:00");
        assert_eq!(datetime_text(1_500_000), "1970-01-01 00:00:01.500000");
        assert_eq!(datetime_text(-1), "1969-12-31 23:59:59.999999");
        assert_eq!(
            datetime_text(1_764_444_605_000_123),
            "2025-11-29 19:30:05.000123"
        );
        assert!(!datetime_text(i64::MAX).contains('T'));
    }
}
