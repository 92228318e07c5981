//! `information_schema`: read-only tables over the catalog, with StarRocks' names and column
//! lists (`catalog/system/information/*SystemTable.java`), queried through the normal SELECT
//! path (filters, joins, ORDER BY, LIMIT are DataFusion's). Each query builds only the tables it
//! names, from one catalog read.
//!
//! Column names are upper case, as StarRocks and MySQL label them, and tools read them by that
//! name (`row.TABLE_NAME`). DataFusion folds unquoted names to lower case, so a query that reads
//! `information_schema` has the names of these columns it mentions rewritten to their exact
//! spelling first ([`exact_column_names`]).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{Expr, Ident, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::MySqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::{Engine, Result};
use crate::catalog::{self, ObjectDef, ObjectRow, PartitionBound, SqlType};

/// The database's name.
pub const DATABASE: &str = "information_schema";

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Time,
    Bool,
    Double,
}

use Kind::{Bool, Double, Int, Text, Time};

/// A value of one row.
enum V {
    S(Option<String>),
    I(Option<i64>),
    /// A DATETIME as `YYYY-MM-DD HH:MM:SS`.
    T(Option<String>),
    B(Option<bool>),
}

fn s(v: impl Into<String>) -> V {
    V::S(Some(v.into()))
}

const NULL: V = V::S(None);

/// The tables and their columns, in StarRocks' order.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "schemata",
        &[
            ("CATALOG_NAME", Text),
            ("SCHEMA_NAME", Text),
            ("DEFAULT_CHARACTER_SET_NAME", Text),
            ("DEFAULT_COLLATION_NAME", Text),
            ("SQL_PATH", Text),
        ],
    ),
    (
        "tables",
        &[
            ("TABLE_CATALOG", Text),
            ("TABLE_SCHEMA", Text),
            ("TABLE_NAME", Text),
            ("TABLE_TYPE", Text),
            ("ENGINE", Text),
            ("VERSION", Int),
            ("ROW_FORMAT", Text),
            ("TABLE_ROWS", Int),
            ("AVG_ROW_LENGTH", Int),
            ("DATA_LENGTH", Int),
            ("MAX_DATA_LENGTH", Int),
            ("INDEX_LENGTH", Int),
            ("DATA_FREE", Int),
            ("AUTO_INCREMENT", Int),
            ("CREATE_TIME", Time),
            ("UPDATE_TIME", Time),
            ("CHECK_TIME", Time),
            ("TABLE_COLLATION", Text),
            ("CHECKSUM", Int),
            ("CREATE_OPTIONS", Text),
            ("TABLE_COMMENT", Text),
        ],
    ),
    (
        "columns",
        &[
            ("TABLE_CATALOG", Text),
            ("TABLE_SCHEMA", Text),
            ("TABLE_NAME", Text),
            ("COLUMN_NAME", Text),
            ("ORDINAL_POSITION", Int),
            ("COLUMN_DEFAULT", Text),
            ("IS_NULLABLE", Text),
            ("DATA_TYPE", Text),
            ("CHARACTER_MAXIMUM_LENGTH", Int),
            ("CHARACTER_OCTET_LENGTH", Int),
            ("NUMERIC_PRECISION", Int),
            ("NUMERIC_SCALE", Int),
            ("DATETIME_PRECISION", Int),
            ("CHARACTER_SET_NAME", Text),
            ("COLLATION_NAME", Text),
            ("COLUMN_TYPE", Text),
            ("COLUMN_KEY", Text),
            ("EXTRA", Text),
            ("PRIVILEGES", Text),
            ("COLUMN_COMMENT", Text),
            ("COLUMN_SIZE", Int),
            ("DECIMAL_DIGITS", Int),
            ("GENERATION_EXPRESSION", Text),
            ("SRS_ID", Int),
        ],
    ),
    (
        "views",
        &[
            ("TABLE_CATALOG", Text),
            ("TABLE_SCHEMA", Text),
            ("TABLE_NAME", Text),
            ("VIEW_DEFINITION", Text),
            ("CHECK_OPTION", Text),
            ("IS_UPDATABLE", Text),
            ("DEFINER", Text),
            ("SECURITY_TYPE", Text),
            ("CHARACTER_SET_CLIENT", Text),
            ("COLLATION_CONNECTION", Text),
        ],
    ),
    (
        "partitions_meta",
        &[
            ("DB_NAME", Text),
            ("TABLE_NAME", Text),
            ("PARTITION_NAME", Text),
            ("PARTITION_ID", Int),
            ("COMPACT_VERSION", Int),
            ("VISIBLE_VERSION", Int),
            ("VISIBLE_VERSION_TIME", Time),
            ("NEXT_VERSION", Int),
            ("DATA_VERSION", Int),
            ("VERSION_EPOCH", Int),
            ("VERSION_TXN_TYPE", Text),
            ("PARTITION_KEY", Text),
            ("PARTITION_VALUE", Text),
            ("DISTRIBUTION_KEY", Text),
            ("BUCKETS", Int),
            ("REPLICATION_NUM", Int),
            ("STORAGE_MEDIUM", Text),
            ("COOLDOWN_TIME", Time),
            ("LAST_CONSISTENCY_CHECK_TIME", Time),
            ("IS_IN_MEMORY", Bool),
            ("IS_TEMP", Bool),
            ("DATA_SIZE", Text),
            ("ROW_COUNT", Int),
            ("ENABLE_DATACACHE", Bool),
            ("AVG_CS", Double),
            ("P50_CS", Double),
            ("MAX_CS", Double),
            ("STORAGE_PATH", Text),
        ],
    ),
    (
        "materialized_views",
        &[
            ("MATERIALIZED_VIEW_ID", Text),
            ("TABLE_SCHEMA", Text),
            ("TABLE_NAME", Text),
            ("REFRESH_TYPE", Text),
            ("IS_ACTIVE", Text),
            ("INACTIVE_REASON", Text),
            ("PARTITION_TYPE", Text),
            ("TASK_ID", Text),
            ("TASK_NAME", Text),
            ("LAST_REFRESH_START_TIME", Text),
            ("LAST_REFRESH_FINISHED_TIME", Text),
            ("LAST_REFRESH_DURATION", Text),
            ("LAST_REFRESH_STATE", Text),
            ("LAST_REFRESH_FORCE_REFRESH", Text),
            ("LAST_REFRESH_START_PARTITION", Text),
            ("LAST_REFRESH_END_PARTITION", Text),
            ("LAST_REFRESH_BASE_REFRESH_PARTITIONS", Text),
            ("LAST_REFRESH_MV_REFRESH_PARTITIONS", Text),
            ("LAST_REFRESH_ERROR_CODE", Text),
            ("LAST_REFRESH_ERROR_MESSAGE", Text),
            ("TABLE_ROWS", Text),
            ("MATERIALIZED_VIEW_DEFINITION", Text),
        ],
    ),
    (
        "tables_config",
        &[
            ("TABLE_SCHEMA", Text),
            ("TABLE_NAME", Text),
            ("TABLE_ENGINE", Text),
            ("TABLE_MODEL", Text),
            ("PRIMARY_KEY", Text),
            ("PARTITION_KEY", Text),
            ("DISTRIBUTE_KEY", Text),
            ("DISTRIBUTE_TYPE", Text),
            ("DISTRIBUTE_BUCKET", Int),
            ("SORT_KEY", Text),
            ("PROPERTIES", Text),
            ("TABLE_ID", Int),
        ],
    ),
    (
        "tasks",
        &[
            ("TASK_NAME", Text),
            ("CREATE_TIME", Time),
            ("SCHEDULE", Text),
            ("DATABASE", Text),
            ("DEFINITION", Text),
            ("EXPIRE_TIME", Time),
        ],
    ),
    (
        "task_runs",
        &[
            ("QUERY_ID", Text),
            ("TASK_NAME", Text),
            ("CREATE_TIME", Time),
            ("FINISH_TIME", Time),
            ("STATE", Text),
            ("DATABASE", Text),
            ("DEFINITION", Text),
            ("EXPIRE_TIME", Time),
            ("ERROR_CODE", Int),
            ("ERROR_MESSAGE", Text),
            ("PROGRESS", Text),
            ("EXTRA_MESSAGE", Text),
        ],
    ),
];

/// The names of the tables, as `SHOW TABLES FROM information_schema` lists them.
pub fn table_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|(n, _)| *n)
}

fn columns_of_table(name: &str) -> Option<&'static [(&'static str, Kind)]> {
    TABLES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| *c)
}

/// One column of a table, MV or view, as DESC and `information_schema.columns` show it.
#[derive(Clone, Debug)]
pub struct ColumnInfo {
    pub name: String,
    /// `None` for a view column of a type StarRocks has no name for.
    pub sql_type: Option<SqlType>,
    pub nullable: bool,
    pub key: bool,
    pub default: Option<String>,
    /// The aggregate kind of an AGGREGATE KEY table's value column.
    pub extra: String,
    pub comment: Option<String>,
}

/// The type as StarRocks prints it in DESC and `COLUMN_TYPE`: lower case, STRING as
/// `varchar(65533)`.
pub fn column_type_text(t: &Option<SqlType>) -> String {
    match t {
        None => "unknown".into(),
        Some(SqlType::String) => "varchar(65533)".into(),
        Some(SqlType::Decimal { precision, scale }) => format!("decimal({precision},{scale})"),
        Some(other) => other.sql_name().to_ascii_lowercase(),
    }
}

/// `DATA_TYPE`: the type's name without parameters.
fn data_type_text(t: &Option<SqlType>) -> String {
    let full = column_type_text(t);
    full.split('(').next().unwrap_or(&full).to_string()
}

/// The columns of a table, MV or view (a view's are found by planning its query).
pub async fn columns_of(engine: &mut Engine, db: &str, obj: &ObjectRow) -> Vec<ColumnInfo> {
    if let Some(schema) = obj.def.schema() {
        return schema
            .columns
            .iter()
            .map(|c| ColumnInfo {
                name: c.name.clone(),
                sql_type: Some(c.sql_type.clone()),
                nullable: c.nullable,
                key: c.is_key,
                default: c.default.clone(),
                extra: c
                    .aggregate
                    .map(|a| a.sql_name().to_string())
                    .unwrap_or_default(),
                comment: c.comment.clone(),
            })
            .collect();
    }
    let sql = format!(
        "SELECT * FROM {}.{} LIMIT 0",
        crate::sql::QuotedIdent(db),
        crate::sql::QuotedIdent(&obj.name)
    );
    // A view whose query no longer plans (a dropped base table) has no columns to show.
    // Boxed: a query of information_schema.columns plans views through here.
    let Ok((schema, _)) = Box::pin(super::query::run(engine, &sql, Some(db))).await else {
        return Vec::new();
    };
    schema
        .fields()
        .iter()
        .map(|f| ColumnInfo {
            name: f.name().clone(),
            sql_type: super::types::sql_type_of(f.data_type()),
            nullable: f.is_nullable(),
            key: false,
            default: None,
            extra: String::new(),
            comment: None,
        })
        .collect()
}

/// The columns of one of these tables, as DESC shows them (`None`: no such table).
pub fn describe(table: &str) -> Option<Vec<ColumnInfo>> {
    Some(
        columns_of_table(table)?
            .iter()
            .map(|(name, kind)| ColumnInfo {
                name: name.to_string(),
                sql_type: Some(match kind {
                    Text => SqlType::Varchar { length: 65533 },
                    Int => SqlType::BigInt,
                    Time => SqlType::DateTime,
                    Bool => SqlType::Boolean,
                    Double => SqlType::Double,
                }),
                nullable: true,
                key: false,
                default: None,
                extra: String::new(),
                comment: None,
            })
            .collect(),
    )
}

/// `BASE TABLE`, or `VIEW` for views and materialized views, as StarRocks' SHOW FULL TABLES.
pub fn table_type(def: &ObjectDef) -> &'static str {
    match def {
        ObjectDef::Table { .. } => "BASE TABLE",
        ObjectDef::MaterializedView { .. } | ObjectDef::View { .. } => "VIEW",
    }
}

/// Builds table `name` of `information_schema` (`None`: no such table).
pub async fn build(engine: &mut Engine, name: &str) -> Result<Option<(SchemaRef, RecordBatch)>> {
    let Some(layout) = columns_of_table(name) else {
        return Ok(None);
    };
    let rows = match name.to_ascii_lowercase().as_str() {
        "schemata" => schemata(engine)?,
        "tables" => tables(engine)?,
        "columns" => columns(engine).await?,
        "views" => views(engine)?,
        "partitions_meta" => partitions_meta(engine)?,
        "materialized_views" => materialized_views(engine)?,
        "tables_config" => tables_config(engine)?,
        // srbackup's schedules (CREATE SCHEDULE) are its tasks, and their runs its task runs;
        // MVs refresh on demand or on load, never as tasks.
        "tasks" => tasks(engine)?,
        "task_runs" => task_runs(engine)?,
        _ => Vec::new(),
    };
    let rows = match engine.visibility() {
        Some(visible) => only_visible(layout, rows, visible),
        None => rows,
    };
    Ok(Some(batch(layout, rows)?))
}

/// The rows about databases and objects the session's user may see (by each table's schema
/// and table-name columns).
fn only_visible(
    layout: &[(&str, Kind)],
    rows: Vec<Vec<V>>,
    visible: &super::Visibility,
) -> Vec<Vec<V>> {
    let at = |names: &[&str]| layout.iter().position(|(c, _)| names.contains(c));
    let Some(db_at) = at(&["TABLE_SCHEMA", "SCHEMA_NAME", "DB_NAME", "DATABASE"]) else {
        return rows;
    };
    let name_at = at(&["TABLE_NAME"]);
    let text = |row: &[V], i: usize| match row.get(i) {
        Some(V::S(Some(v))) => Some(v.clone()),
        _ => None,
    };
    rows.into_iter()
        .filter(|row| {
            let Some(db) = text(row, db_at) else {
                return true;
            };
            if db.eq_ignore_ascii_case(DATABASE) {
                return true;
            }
            let name = name_at.and_then(|i| text(row, i));
            visible(&db, name.as_deref())
        })
        .collect()
}

fn batch(columns: &[(&str, Kind)], rows: Vec<Vec<V>>) -> Result<(SchemaRef, RecordBatch)> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, k)| {
                let dt = match k {
                    Text => DataType::Utf8,
                    Int => DataType::Int64,
                    Time => DataType::Timestamp(TimeUnit::Microsecond, None),
                    Bool => DataType::Boolean,
                    Double => DataType::Float64,
                };
                Field::new(*n, dt, true)
            })
            .collect::<Vec<_>>(),
    ));
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (i, (_, kind)) in columns.iter().enumerate() {
        fn cell(r: &[V], i: usize) -> Option<&V> {
            r.get(i)
        }
        arrays.push(match kind {
            Text => {
                let mut b = StringBuilder::new();
                for r in &rows {
                    match cell(r, i) {
                        Some(V::S(Some(v)) | V::T(Some(v))) => b.append_value(v),
                        Some(V::I(Some(n))) => b.append_value(n.to_string()),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Int => {
                let mut b = Int64Builder::new();
                for r in &rows {
                    match cell(r, i) {
                        Some(V::I(Some(n))) => b.append_value(*n),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Time => {
                let mut b = TimestampMicrosecondBuilder::new();
                for r in &rows {
                    match cell(r, i) {
                        Some(V::T(Some(t)) | V::S(Some(t))) => b.append_option(micros(t)),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Bool => {
                let mut b = BooleanBuilder::new();
                for r in &rows {
                    match cell(r, i) {
                        Some(V::B(Some(v))) => b.append_value(*v),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Double => {
                let mut b = Float64Builder::new();
                for _ in &rows {
                    b.append_null();
                }
                Arc::new(b.finish())
            }
        });
    }
    Ok((schema.clone(), RecordBatch::try_new(schema, arrays)?))
}

/// `YYYY-MM-DD HH:MM:SS` (UTC, as the catalog records times) as microseconds.
fn micros(text: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_micros())
}

/// Every database and its visible objects, from one read.
fn objects(engine: &mut Engine) -> Result<Vec<(String, Vec<ObjectRow>)>> {
    Ok(engine.catalog().read(|r| {
        let mut out = Vec::new();
        for db in r.databases()? {
            let objects = r.objects(db.id)?;
            out.push((db.name, objects));
        }
        Ok::<_, catalog::CatalogError>(out)
    })?)
}

/// Every database's name, `information_schema` among them (queryable, as in StarRocks), sorted.
pub fn database_names(engine: &mut Engine) -> Result<Vec<String>> {
    let mut names: Vec<String> = engine
        .catalog()
        .view()
        .databases()?
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.push(DATABASE.into());
    names.sort();
    Ok(names)
}

fn schemata(engine: &mut Engine) -> Result<Vec<Vec<V>>> {
    Ok(database_names(engine)?
        .into_iter()
        .map(|n| vec![s("def"), s(n), s("utf8"), s("utf8_general_ci"), NULL])
        .collect())
}

fn rows_and_bytes(engine: &mut Engine, object_id: i64) -> Result<(i64, i64)> {
    let rowsets = engine.catalog().view().object_rowsets(object_id)?;
    Ok((
        rowsets.iter().map(|r| r.rows).sum(),
        rowsets.iter().map(|r| r.bytes).sum(),
    ))
}

fn tables(engine: &mut Engine) -> Result<Vec<Vec<V>>> {
    let mut out = Vec::new();
    for (db, objects) in objects(engine)? {
        for o in objects {
            let (rows, bytes) = match o.def {
                ObjectDef::View { .. } => (None, None),
                _ => {
                    let (r, b) = rows_and_bytes(engine, o.id)?;
                    (Some(r), Some(b))
                }
            };
            let comment = match &o.def {
                ObjectDef::View { comment, .. } => comment.clone(),
                other => other.schema().and_then(|s| s.comment.clone()),
            };
            out.push(vec![
                s("def"),
                s(&db),
                s(&o.name),
                s(table_type(&o.def)),
                if matches!(o.def, ObjectDef::View { .. }) {
                    NULL
                } else {
                    s("StarRocks")
                },
                NULL,
                NULL,
                V::I(rows),
                V::I(match (rows, bytes) {
                    (Some(r), Some(b)) if r > 0 => Some(b / r),
                    (Some(_), Some(_)) => Some(0),
                    _ => None,
                }),
                V::I(bytes),
                NULL,
                NULL,
                NULL,
                NULL,
                V::T(Some(o.created_at.clone())),
                NULL,
                NULL,
                s("utf8_general_ci"),
                NULL,
                NULL,
                V::S(Some(comment.unwrap_or_default())),
            ]);
        }
    }
    for t in table_names() {
        let mut row = vec![s("def"), s(DATABASE), s(t), s("SYSTEM VIEW")];
        row.resize_with(21, || NULL);
        out.push(row);
    }
    Ok(out)
}

async fn columns(engine: &mut Engine) -> Result<Vec<Vec<V>>> {
    let mut out = Vec::new();
    for (db, objects) in objects(engine)? {
        for o in objects {
            for (i, c) in columns_of(engine, &db, &o).await.into_iter().enumerate() {
                let (precision, scale) = match &c.sql_type {
                    Some(SqlType::Decimal { precision, scale }) => {
                        (Some(i64::from(*precision)), Some(i64::from(*scale)))
                    }
                    Some(SqlType::TinyInt) => (Some(3), Some(0)),
                    Some(SqlType::SmallInt) => (Some(5), Some(0)),
                    Some(SqlType::Int) => (Some(10), Some(0)),
                    Some(SqlType::BigInt) => (Some(19), Some(0)),
                    Some(SqlType::LargeInt) => (Some(39), Some(0)),
                    _ => (None, None),
                };
                let length = match &c.sql_type {
                    Some(SqlType::Char { length } | SqlType::Varchar { length }) => {
                        Some(i64::from(*length))
                    }
                    Some(SqlType::String) => Some(65533),
                    _ => None,
                };
                let is_text = length.is_some();
                out.push(vec![
                    s("def"),
                    s(&db),
                    s(&o.name),
                    s(&c.name),
                    V::I(Some(i as i64 + 1)),
                    V::S(c.default.clone()),
                    s(if c.nullable { "YES" } else { "NO" }),
                    s(data_type_text(&c.sql_type)),
                    V::I(length),
                    V::I(length.map(|l| l.saturating_mul(4))),
                    V::I(precision),
                    V::I(scale),
                    V::I(matches!(c.sql_type, Some(SqlType::DateTime)).then_some(0)),
                    if is_text { s("utf8") } else { NULL },
                    if is_text { s("utf8_general_ci") } else { NULL },
                    s(column_type_text(&c.sql_type)),
                    s(key_text(&o.def, c.key)),
                    s(&c.extra),
                    s("select,insert,update,references"),
                    V::S(Some(c.comment.clone().unwrap_or_default())),
                    V::I(length.or(precision)),
                    V::I(scale),
                    NULL,
                    NULL,
                ]);
            }
        }
    }
    Ok(out)
}

/// `COLUMN_KEY`: what kind of key a key column belongs to (`PRI`, `UNI`, `DUP`, `AGG`).
fn key_text(def: &ObjectDef, key: bool) -> &'static str {
    if !key {
        return "";
    }
    match def.schema().map(|s| s.keys) {
        Some(catalog::KeyKind::Primary) => "PRI",
        Some(catalog::KeyKind::Unique) => "UNI",
        Some(catalog::KeyKind::Aggregate) => "AGG",
        Some(catalog::KeyKind::Duplicate) => "DUP",
        None => "",
    }
}

fn views(engine: &mut Engine) -> Result<Vec<Vec<V>>> {
    let mut out = Vec::new();
    for (db, objects) in objects(engine)? {
        for o in objects {
            if let ObjectDef::View { sql, .. } = &o.def {
                out.push(vec![
                    s("def"),
                    s(&db),
                    s(&o.name),
                    s(sql),
                    s("NONE"),
                    s("NO"),
                    NULL,
                    NULL,
                    s("utf8"),
                    s("utf8_general_ci"),
                ]);
            }
        }
    }
    Ok(out)
}

/// One partition with what SHOW PARTITIONS and `partitions_meta` print of it.
pub struct PartitionInfo {
    pub row: catalog::PartitionRow,
    /// The partition columns, comma-separated.
    pub key: String,
    /// The hash columns, or `RANDOM`.
    pub distribution: String,
    pub buckets: u32,
    pub replication: i64,
    pub rows: i64,
    pub bytes: i64,
}

/// The partitions of a table or MV (none for a view), with their live rows and bytes.
pub fn partitions_of(engine: &mut Engine, obj: &ObjectRow) -> Result<Vec<PartitionInfo>> {
    let Some(schema) = obj.def.schema() else {
        return Ok(Vec::new());
    };
    let key = schema.partitioning.columns().join(", ");
    let distribution = match &schema.distribution {
        catalog::Distribution::Hash { columns, .. } => columns.join(", "),
        catalog::Distribution::Random { .. } => "RANDOM".into(),
    };
    let replication = schema
        .properties
        .get("replication_num")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(1);
    let mut out = Vec::new();
    for p in engine.catalog().view().partitions(obj.id)? {
        let (mut rows, mut bytes) = (0i64, 0i64);
        for t in engine.catalog().view().tablets(p.id)? {
            for r in engine.catalog().view().live_rowsets(t.id)? {
                rows = rows.saturating_add(r.rows);
                bytes = bytes.saturating_add(r.bytes);
            }
        }
        out.push(PartitionInfo {
            row: p,
            key: key.clone(),
            distribution: distribution.clone(),
            buckets: schema.distribution.buckets(),
            replication,
            rows,
            bytes,
        });
    }
    Ok(out)
}

/// The database a schedule's statement backs up (empty for a drill).
fn schedule_database(command: &str) -> String {
    match crate::sql::parse(command).ok().as_deref() {
        Some([crate::sql::Statement::Backup(b)]) => b
            .database
            .as_ref()
            .map(|d| d.value.clone())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn tasks(engine: &mut Engine) -> Result<Vec<Vec<V>>> {
    let schedules = engine.catalog().view().schedules()?;
    Ok(schedules
        .into_iter()
        .map(|sc| {
            let mut schedule = format!("RECURRING '{}'", sc.recurrence);
            if let Some(r) = &sc.retention {
                schedule.push_str(&format!(" WITH RETENTION '{r}'"));
            }
            if sc.state != "ACTIVE" {
                schedule.push_str(&format!(" ({})", sc.state));
            }
            vec![
                s(&sc.name),
                V::T(Some(sc.created_at)),
                s(schedule),
                s(schedule_database(&sc.command)),
                s(&sc.command),
                NULL,
            ]
        })
        .collect())
}

fn task_runs(engine: &mut Engine) -> Result<Vec<Vec<V>>> {
    use crate::catalog::RunState;
    let runs = engine.catalog().view().schedule_runs(None)?;
    Ok(runs
        .into_iter()
        .map(|r| {
            let failed = matches!(r.state, RunState::Failed);
            vec![
                s(r.job_id.map(|j| j.to_string()).unwrap_or_default()),
                s(&r.schedule_name),
                V::T(Some(r.started_at)),
                V::T(r.finished_at),
                s(r.state.as_str()),
                s(schedule_database(&r.command)),
                s(&r.command),
                NULL,
                V::I(Some(if failed { -1 } else { 0 })),
                if failed {
                    V::S(r.message.clone())
                } else {
                    NULL
                },
                s(match r.state {
                    RunState::Running => "0%",
                    _ => "100%",
                }),
                V::S(
                    r.message
                        .map(|m| format!("scheduled for {}; {m}", r.scheduled_for))
                        .or(Some(format!("scheduled for {}", r.scheduled_for))),
                ),
            ]
        })
        .collect())
}

fn partitions_meta(engine: &mut Engine) -> Result<Vec<Vec<V>>> {
    let mut out = Vec::new();
    for (db, objects) in objects(engine)? {
        for o in objects {
            for p in partitions_of(engine, &o)? {
                let v = p.row.visible_version;
                out.push(vec![
                    s(&db),
                    s(&o.name),
                    s(&p.row.name),
                    V::I(Some(p.row.id)),
                    V::I(Some(0)),
                    V::I(Some(v)),
                    V::T(Some(p.row.visible_time.clone())),
                    V::I(Some(v.saturating_add(1))),
                    V::I(Some(v)),
                    V::I(Some(0)),
                    s("TXN_NORMAL"),
                    s(&p.key),
                    s(bound_text(&p.row.bound)),
                    s(&p.distribution),
                    V::I(Some(i64::from(p.buckets))),
                    V::I(Some(p.replication)),
                    s("HDD"),
                    V::T(Some("9999-12-31 23:59:59".into())),
                    NULL,
                    V::B(Some(false)),
                    V::B(Some(false)),
                    s(crate::output::human_bytes(p.bytes as u64)),
                    V::I(Some(p.rows)),
                    V::B(Some(false)),
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                ]);
            }
        }
    }
    Ok(out)
}

fn materialized_views(engine: &mut Engine) -> Result<Vec<Vec<V>>> {
    let mut out = Vec::new();
    for (db, objects) in objects(engine)? {
        for o in objects {
            let ObjectDef::MaterializedView { sql, refresh, .. } = &o.def else {
                continue;
            };
            let (rows, _) = rows_and_bytes(engine, o.id)?;
            let mut row = vec![
                s(o.id.to_string()),
                s(&db),
                s(&o.name),
                s(refresh.to_ascii_uppercase()),
                s(o.active.to_string()),
                V::S(Some(o.inactive_reason.clone().unwrap_or_default())),
                s(match o.def.schema().map(|s| &s.partitioning) {
                    Some(catalog::Partitioning::Unpartitioned) | None => "UNPARTITIONED",
                    _ => "RANGE",
                }),
            ];
            row.resize_with(20, || s(""));
            row.push(s(rows.to_string()));
            row.push(s(sql));
            out.push(row);
        }
    }
    Ok(out)
}

fn tables_config(engine: &mut Engine) -> Result<Vec<Vec<V>>> {
    let mut out = Vec::new();
    for (db, objects) in objects(engine)? {
        for o in objects {
            let Some(schema) = o.def.schema() else {
                continue;
            };
            let keys: Vec<&str> = schema.key_columns().map(|c| c.name.as_str()).collect();
            let model = match schema.keys {
                catalog::KeyKind::Primary => "PRIMARY_KEYS",
                catalog::KeyKind::Unique => "UNIQUE_KEYS",
                catalog::KeyKind::Aggregate => "AGG_KEYS",
                catalog::KeyKind::Duplicate => "DUP_KEYS",
            };
            let (dist_type, dist_key) = match &schema.distribution {
                catalog::Distribution::Hash { columns, .. } => ("HASH", columns.join(", ")),
                catalog::Distribution::Random { .. } => ("RANDOM", String::new()),
            };
            let sort: Vec<&str> = if schema.order_by.is_empty() {
                keys.clone()
            } else {
                schema.order_by.iter().map(String::as_str).collect()
            };
            let properties =
                serde_json::to_string(&schema.properties).unwrap_or_else(|_| "{}".into());
            out.push(vec![
                s(&db),
                s(&o.name),
                s("StarRocks"),
                s(model),
                s(if schema.keys == catalog::KeyKind::Primary {
                    keys.join(", ")
                } else {
                    String::new()
                }),
                s(schema.partitioning.columns().join(", ")),
                s(dist_key),
                s(dist_type),
                V::I(Some(i64::from(schema.distribution.buckets()))),
                s(sort.join(", ")),
                s(properties),
                V::I(Some(o.id)),
            ]);
        }
    }
    Ok(out)
}

/// `[lower, upper)` of a range partition; an empty bound is MINVALUE or MAXVALUE.
pub fn range_text(
    lower: &[String],
    upper: &[String],
    tuple: impl Fn(&[String]) -> String,
) -> String {
    let side = |v: &[String], open: &str| {
        if v.is_empty() {
            open.to_string()
        } else {
            tuple(v)
        }
    };
    format!("[{}, {})", side(lower, "MINVALUE"), side(upper, "MAXVALUE"))
}

/// A partition's bound as SHOW PARTITIONS prints it (`Range`, `PARTITION_VALUE`).
pub fn bound_text(b: &PartitionBound) -> String {
    let tuple = |v: &[String]| format!("({})", v.join(", "));
    match b {
        PartitionBound::Whole => String::new(),
        PartitionBound::Range { lower, upper } => range_text(lower, upper, tuple),
        PartitionBound::List { values } => values
            .iter()
            .map(|v| {
                format!(
                    "({})",
                    v.iter()
                        .map(|x| x.clone().unwrap_or_else(|| "NULL".into()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        PartitionBound::Value { values } => format!(
            "({})",
            values
                .iter()
                .map(|x| x.clone().unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Every column name of every table here, upper case.
fn all_column_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().flat_map(|(_, c)| c.iter().map(|(n, _)| *n))
}

/// `sql` with the names of `information_schema` columns it mentions unquoted spelt as they are
/// (`table_name` → `` `TABLE_NAME` ``), so DataFusion finds them and labels them as MySQL
/// does. Only for queries that read `information_schema`; other names are left alone.
pub fn exact_column_names(sql: &str) -> Result<String> {
    let mut statements = Parser::parse_sql(&MySqlDialect {}, sql)
        .map_err(|e| super::EngineError::Query(e.to_string()))?;
    let fix = |id: &mut Ident| {
        if id.quote_style.is_none()
            && let Some(exact) = all_column_names().find(|n| n.eq_ignore_ascii_case(&id.value))
        {
            id.value = exact.to_string();
            id.quote_style = Some('`');
        }
    };
    let _ = visit_expressions_mut(&mut statements, |e| {
        match e {
            Expr::Identifier(id) => fix(id),
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last_mut() {
                    fix(last);
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(statements
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_spelt_exactly() {
        let sql = "SELECT db_name, Table_Name, x.partition_name FROM information_schema.partitions_meta x WHERE DB_NAME = 'a' ORDER BY table_name";
        let out = exact_column_names(sql).unwrap();
        assert!(out.contains("`DB_NAME`"), "{out}");
        assert!(out.contains("x.`PARTITION_NAME`"), "{out}");
        assert!(out.contains("ORDER BY `TABLE_NAME`"), "{out}");
        // Strings and names that are not columns here stay as written.
        assert!(out.contains("'a'"), "{out}");
        assert!(out.contains("information_schema.partitions_meta"), "{out}");
    }

    #[test]
    fn every_table_has_distinct_upper_case_columns() {
        for (name, columns) in TABLES {
            let mut seen = std::collections::HashSet::new();
            for (c, _) in *columns {
                assert_eq!(c.to_ascii_uppercase(), *c, "{name}.{c}");
                assert!(seen.insert(c), "{name}.{c} twice");
            }
        }
    }
}
