//! StarRocks column types ↔ Arrow, and SQL literals → typed values.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use crate::catalog::{Column, SqlType, TableSchema};

/// The Arrow type a column is stored as.
pub fn arrow_type(t: &SqlType) -> DataType {
    match t {
        SqlType::Boolean => DataType::Boolean,
        SqlType::TinyInt => DataType::Int8,
        SqlType::SmallInt => DataType::Int16,
        SqlType::Int => DataType::Int32,
        SqlType::BigInt => DataType::Int64,
        // 128-bit integers have no Arrow integer type; a scale-0 decimal holds them exactly.
        SqlType::LargeInt => DataType::Decimal128(38, 0),
        SqlType::Float => DataType::Float32,
        SqlType::Double => DataType::Float64,
        SqlType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
        SqlType::Char { .. } | SqlType::Varchar { .. } | SqlType::String => DataType::Utf8,
        SqlType::Date => DataType::Date32,
        SqlType::DateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

/// The reverse of [`arrow_type`], for schemas that come out of a query (MV definitions).
pub fn sql_type_of(dt: &DataType) -> Option<SqlType> {
    Some(match dt {
        DataType::Boolean => SqlType::Boolean,
        DataType::Int8 => SqlType::TinyInt,
        DataType::Int16 | DataType::UInt8 => SqlType::SmallInt,
        DataType::Int32 | DataType::UInt16 => SqlType::Int,
        DataType::Int64 | DataType::UInt32 => SqlType::BigInt,
        DataType::UInt64 => SqlType::LargeInt,
        DataType::Float16 | DataType::Float32 => SqlType::Float,
        DataType::Float64 => SqlType::Double,
        DataType::Decimal128(38, 0) => SqlType::LargeInt,
        DataType::Decimal128(p, s) => SqlType::Decimal {
            precision: *p,
            scale: *s,
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::String,
        DataType::Date32 | DataType::Date64 => SqlType::Date,
        DataType::Timestamp(_, _) => SqlType::DateTime,
        _ => return None,
    })
}

pub fn arrow_field(c: &Column) -> Field {
    Field::new(&c.name, arrow_type(&c.sql_type), c.nullable)
}

/// The Arrow schema of a table's rows (what its rowset files hold).
pub fn arrow_schema(schema: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        schema.columns.iter().map(arrow_field).collect::<Vec<_>>(),
    ))
}

/// A DATETIME column's default that is the load's time, not a constant (`DEFAULT
/// CURRENT_TIMESTAMP`); stored as this text, as StarRocks stores it. No DATETIME constant reads
/// as this text, so it cannot be mistaken for one.
pub const DEFAULT_NOW: &str = "CURRENT_TIMESTAMP";

/// The current time as a DATETIME value: whole seconds, as StarRocks' `now()`.
pub fn now_scalar() -> ScalarValue {
    let secs = chrono::Utc::now().timestamp();
    ScalarValue::TimestampMicrosecond(Some(secs.saturating_mul(1_000_000)), None)
}

/// Today's date (UTC) as a DATE value.
pub fn today_scalar() -> ScalarValue {
    let days = chrono::Utc::now().timestamp().div_euclid(86_400);
    ScalarValue::Date32(Some(days as i32))
}

/// The value a column takes when a load gives none: its default (the load's time for
/// [`DEFAULT_NOW`]), else NULL.
pub fn default_scalar(column: &Column, dt: &DataType) -> Result<ScalarValue, String> {
    match &column.default {
        Some(text) if text == DEFAULT_NOW && matches!(dt, DataType::Timestamp(..)) => {
            Ok(now_scalar())
        }
        Some(text) => parse_scalar(text, dt),
        None => ScalarValue::try_from(dt).map_err(|e| e.to_string()),
    }
}

/// Parses the text of a literal as a value of `dt` (dates, decimals, timestamps...).
pub fn parse_scalar(text: &str, dt: &DataType) -> Result<ScalarValue, String> {
    let value = ScalarValue::try_from_string(text.to_string(), dt).map_err(|e| {
        let e = e.to_string();
        e.lines().next().unwrap_or(&e).to_string()
    })?;
    if value.is_null() {
        // Arrow casts some unparsable text to NULL; a literal that was written is not NULL.
        return Err(format!("cannot be read as {dt}"));
    }
    Ok(value)
}

/// A canonical text form of a partition value, for storing partition bounds.
pub fn canonical_text(value: &ScalarValue) -> Option<String> {
    if value.is_null() {
        return None;
    }
    Some(match value {
        ScalarValue::Date32(Some(days)) => chrono::NaiveDate::from_num_days_from_ce_opt(
            *days + 719_163, // days from 0001-01-01 to 1970-01-01
        )
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| value.to_string()),
        ScalarValue::TimestampMicrosecond(Some(us), _) => {
            chrono::DateTime::from_timestamp_micros(*us)
                .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| value.to_string())
        }
        other => other.to_string(),
    })
}
