//! The object model the catalog stores: table schemas, partitioning, views, materialized views,
//! functions and external catalogs. Stored as JSON in SQLite, so these types are the catalog's
//! on-disk format: add fields with defaults, never rename.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::sql::KeyKind;

/// Limits on what a table may be, from a statement or from a file (a manifest, a plan): every
/// count read from outside is checked against these before anything is made from it.
pub mod limits {
    /// Buckets (tablets per partition) of one table.
    pub const MAX_BUCKETS: u32 = 1024;
    /// Partitions of one table (StarRocks' `max_partition_number_per_table`).
    pub const MAX_PARTITIONS: usize = 100_000;
    /// Columns of one table (StarRocks' limit).
    pub const MAX_COLUMNS: usize = 10_000;
    /// A size or a row count, in bytes or rows: the catalog stores them as SQLite integers.
    pub const MAX_COUNT: u64 = i64::MAX as u64;
}

/// A StarRocks column type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SqlType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    LargeInt,
    Float,
    Double,
    Decimal { precision: u8, scale: i8 },
    Char { length: u32 },
    Varchar { length: u32 },
    String,
    Date,
    DateTime,
}

impl SqlType {
    /// Resolves a type as written (`INT`, `DECIMAL(10, 2)`, `VARCHAR(64)`...).
    pub fn from_name(name: &str, params: &[u32]) -> Result<SqlType, String> {
        let upper = name.to_ascii_uppercase();
        let no_params = |t: SqlType| {
            if params.is_empty() {
                Ok(t)
            } else {
                Err(format!("{upper} takes no parameters"))
            }
        };
        match upper.as_str() {
            "BOOLEAN" | "BOOL" => no_params(SqlType::Boolean),
            "TINYINT" => no_params(SqlType::TinyInt),
            "SMALLINT" => no_params(SqlType::SmallInt),
            "INT" | "INTEGER" => no_params(SqlType::Int),
            "BIGINT" => no_params(SqlType::BigInt),
            "LARGEINT" => no_params(SqlType::LargeInt),
            "FLOAT" => no_params(SqlType::Float),
            "DOUBLE" => no_params(SqlType::Double),
            "STRING" | "TEXT" => no_params(SqlType::String),
            "DATE" => no_params(SqlType::Date),
            "DATETIME" | "TIMESTAMP" => no_params(SqlType::DateTime),
            "DECIMAL" | "DECIMALV2" | "DECIMALV3" | "DECIMAL32" | "DECIMAL64" | "DECIMAL128"
            | "NUMERIC" => {
                let (precision, scale) = match params {
                    [] => (10, 0),
                    [p] => (*p, 0),
                    [p, s] => (*p, *s),
                    _ => return Err("DECIMAL takes (precision, scale)".into()),
                };
                if !(1..=38).contains(&precision) {
                    return Err(format!("DECIMAL precision {precision} is outside 1..=38"));
                }
                if scale > precision {
                    return Err(format!(
                        "DECIMAL scale {scale} exceeds its precision {precision}"
                    ));
                }
                Ok(SqlType::Decimal {
                    precision: precision as u8,
                    scale: scale as i8,
                })
            }
            "CHAR" | "VARCHAR" => {
                let length = match params {
                    [] if upper == "CHAR" => 1,
                    [] => 65533,
                    [n] if *n >= 1 && *n <= 1_048_576 => *n,
                    [n] => return Err(format!("{upper} length {n} is outside 1..=1048576")),
                    _ => return Err(format!("{upper} takes one length")),
                };
                Ok(if upper == "CHAR" {
                    SqlType::Char { length }
                } else {
                    SqlType::Varchar { length }
                })
            }
            _ => Err(format!("unknown type {name}")),
        }
    }

    /// The name as SHOW CREATE TABLE prints it.
    pub fn sql_name(&self) -> String {
        match self {
            SqlType::Boolean => "BOOLEAN".into(),
            SqlType::TinyInt => "TINYINT".into(),
            SqlType::SmallInt => "SMALLINT".into(),
            SqlType::Int => "INT".into(),
            SqlType::BigInt => "BIGINT".into(),
            SqlType::LargeInt => "LARGEINT".into(),
            SqlType::Float => "FLOAT".into(),
            SqlType::Double => "DOUBLE".into(),
            SqlType::Decimal { precision, scale } => format!("DECIMAL({precision}, {scale})"),
            SqlType::Char { length } => format!("CHAR({length})"),
            SqlType::Varchar { length } => format!("VARCHAR({length})"),
            SqlType::String => "STRING".into(),
            SqlType::Date => "DATE".into(),
            SqlType::DateTime => "DATETIME".into(),
        }
    }

    /// Maximum character length for CHAR/VARCHAR, enforced on load.
    pub fn max_length(&self) -> Option<u32> {
        match self {
            SqlType::Char { length } | SqlType::Varchar { length } => Some(*length),
            _ => None,
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            SqlType::TinyInt
                | SqlType::SmallInt
                | SqlType::Int
                | SqlType::BigInt
                | SqlType::LargeInt
                | SqlType::Float
                | SqlType::Double
                | SqlType::Decimal { .. }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateKind {
    Sum,
    Max,
    Min,
    Replace,
    ReplaceIfNotNull,
}

impl AggregateKind {
    pub fn from_name(name: &str) -> Option<AggregateKind> {
        Some(match name.to_ascii_uppercase().as_str() {
            "SUM" => AggregateKind::Sum,
            "MAX" => AggregateKind::Max,
            "MIN" => AggregateKind::Min,
            "REPLACE" => AggregateKind::Replace,
            "REPLACE_IF_NOT_NULL" => AggregateKind::ReplaceIfNotNull,
            _ => return None,
        })
    }
    pub fn sql_name(self) -> &'static str {
        match self {
            AggregateKind::Sum => "SUM",
            AggregateKind::Max => "MAX",
            AggregateKind::Min => "MIN",
            AggregateKind::Replace => "REPLACE",
            AggregateKind::ReplaceIfNotNull => "REPLACE_IF_NOT_NULL",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub sql_type: SqlType,
    pub nullable: bool,
    pub is_key: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<AggregateKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// How rows are split into partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Partitioning {
    /// One partition holding everything (named after the table, as StarRocks does).
    Unpartitioned,
    Range {
        columns: Vec<String>,
    },
    List {
        columns: Vec<String>,
    },
    /// `date_trunc(unit, column)`: partitions are made on load, one per unit.
    DateTrunc {
        unit: String,
        column: String,
    },
    /// `PARTITION BY col, ...`: partitions are made on load, one per distinct value.
    Columns {
        columns: Vec<String>,
    },
}

impl Partitioning {
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Partitioning::Unpartitioned => Vec::new(),
            Partitioning::Range { columns }
            | Partitioning::List { columns }
            | Partitioning::Columns { columns } => columns.iter().map(String::as_str).collect(),
            Partitioning::DateTrunc { column, .. } => vec![column.as_str()],
        }
    }
    /// Whether partitions appear on load rather than by DDL.
    pub fn is_automatic(&self) -> bool {
        matches!(
            self,
            Partitioning::DateTrunc { .. } | Partitioning::Columns { .. }
        )
    }
}

/// The values of one partition, as canonical strings of the partition columns' types.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartitionBound {
    /// The single partition of an unpartitioned table.
    Whole,
    /// `[lower, upper)`; an empty `lower` is minus infinity, an empty `upper` is MAXVALUE.
    Range {
        lower: Vec<String>,
        upper: Vec<String>,
    },
    /// `VALUES IN (...)`: each item a tuple with one value per partition column.
    List { values: Vec<Vec<Option<String>>> },
    /// An automatic partition: the partition-expression value its rows share.
    Value { values: Vec<Option<String>> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Distribution {
    Hash { columns: Vec<String>, buckets: u32 },
    Random { buckets: u32 },
}

impl Distribution {
    pub fn buckets(&self) -> u32 {
        match self {
            Distribution::Hash { buckets, .. } | Distribution::Random { buckets } => *buckets,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    pub columns: Vec<Column>,
    pub keys: KeyKind,
    pub partitioning: Partitioning,
    pub distribution: Distribution,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl TableSchema {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.is_key)
    }
}

/// A synchronous materialized view: a rollup kept with its base table. Each base rowset has
/// a rollup rowset beside it in the same tablet (partial aggregates of that rowset's rows);
/// reading the MV combines them with `schema`'s aggregate kinds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupDef {
    pub name: String,
    pub sql: String,
    /// Group-by columns as keys, aggregates as SUM/MIN/MAX value columns.
    pub schema: TableSchema,
}

/// What a catalog object is, with its definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectDef {
    Table {
        schema: TableSchema,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rollups: Vec<RollupDef>,
    },
    MaterializedView {
        schema: TableSchema,
        sql: String,
        refresh: String,
        /// `db.table` names the query reads, found with sqlparser.
        base_tables: Vec<String>,
    },
    View {
        sql: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        columns: Vec<String>,
        base_tables: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
}

impl ObjectDef {
    pub fn kind(&self) -> ObjectKind {
        match self {
            ObjectDef::Table { .. } => ObjectKind::Table,
            ObjectDef::MaterializedView { .. } => ObjectKind::MaterializedView,
            ObjectDef::View { .. } => ObjectKind::View,
        }
    }
    /// The storage schema, for objects that hold data.
    pub fn schema(&self) -> Option<&TableSchema> {
        match self {
            ObjectDef::Table { schema, .. } | ObjectDef::MaterializedView { schema, .. } => {
                Some(schema)
            }
            ObjectDef::View { .. } => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Table,
    MaterializedView,
    View,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::MaterializedView => "materialized_view",
            ObjectKind::View => "view",
        }
    }
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::View => "view",
        }
    }
    pub fn parse(s: &str) -> Option<ObjectKind> {
        Some(match s {
            "table" => ObjectKind::Table,
            "materialized_view" => ObjectKind::MaterializedView,
            "view" => ObjectKind::View,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionDef {
    pub name: String,
    pub arguments: Vec<String>,
    pub returns: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub properties: BTreeMap<String, String>,
}

impl FunctionDef {
    /// `name(INT, VARCHAR(10))`, how StarRocks names one overload.
    pub fn signature(&self) -> String {
        format!("{}({})", self.name, self.arguments.join(", "))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalCatalogDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub properties: BTreeMap<String, String>,
}
