//! The tree of the engine's own statements: DDL, loads, SHOW, CHECKSUM and queries.
//!
//! These stay close to what was written (type names as text, values as literals); the engine
//! resolves them into its catalog types and reports problems at these nodes' spans.

use std::fmt::{self, Display, Formatter};

use serde::Serialize;

use super::ast::{Ident, Literal, Properties, QualifiedName, Span};
use super::display::QuotedString;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateDatabase {
    pub if_not_exists: bool,
    pub name: Ident,
    pub properties: Properties,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DropDatabase {
    pub if_exists: bool,
    pub name: Ident,
    pub force: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UseDatabase {
    pub name: Ident,
    pub span: Span,
}

/// `name TYPE[(p[, s])]`, as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnType {
    pub name: Ident,
    pub params: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnDef {
    pub name: Ident,
    pub data_type: ColumnType,
    /// SUM, MAX, MIN, REPLACE... for an AGGREGATE KEY table's value columns.
    pub aggregate: Option<Ident>,
    /// `Some(false)` for NOT NULL, `Some(true)` for NULL, `None` when not said.
    pub nullable: Option<bool>,
    pub default: Option<Datum>,
    pub comment: Option<Literal>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Duplicate,
    Aggregate,
    Unique,
    Primary,
}

impl KeyKind {
    pub fn keyword(self) -> &'static str {
        match self {
            KeyKind::Duplicate => "DUPLICATE",
            KeyKind::Aggregate => "AGGREGATE",
            KeyKind::Unique => "UNIQUE",
            KeyKind::Primary => "PRIMARY",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyDesc {
    pub kind: KeyKind,
    pub columns: Vec<Ident>,
    pub span: Span,
}

/// A literal in VALUES, DEFAULT or a partition bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Datum {
    Null(Span),
    Bool(bool, Span),
    Number(Literal),
    String(Literal),
    Default(Span),
    MaxValue(Span),
    /// `NOW()`, `CURRENT_TIMESTAMP`: the statement's start time.
    Now(Span),
    /// `CURRENT_DATE`, `CURDATE()`: the statement's start date.
    Today(Span),
}

impl Datum {
    pub fn span(&self) -> Span {
        match self {
            Datum::Null(s)
            | Datum::Bool(_, s)
            | Datum::Default(s)
            | Datum::MaxValue(s)
            | Datum::Now(s)
            | Datum::Today(s) => *s,
            Datum::Number(l) | Datum::String(l) => l.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartitionDesc {
    Range {
        columns: Vec<Ident>,
        partitions: Vec<PartitionDef>,
    },
    List {
        columns: Vec<Ident>,
        partitions: Vec<PartitionDef>,
    },
    /// `date_trunc('unit', col)`: one partition per unit, created on load.
    DateTrunc { unit: Literal, column: Ident },
    /// `PARTITION BY col[, col]`: one partition per distinct value, created on load.
    Columns { columns: Vec<Ident> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionDef {
    pub name: Literal,
    pub if_not_exists: bool,
    pub bound: PartitionBound,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "values", rename_all = "snake_case")]
pub enum PartitionBound {
    /// `VALUES LESS THAN (v, ...)`; an empty list means MAXVALUE.
    LessThan(Vec<Datum>),
    /// `VALUES [(lower), (upper))`
    Range(Vec<Datum>, Vec<Datum>),
    /// `VALUES IN ((a, b), c, ...)`: one tuple per item.
    In(Vec<Vec<Datum>>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Distribution {
    /// Hash columns; empty means RANDOM.
    pub hash: Vec<Ident>,
    pub buckets: Option<u32>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateTable {
    pub if_not_exists: bool,
    pub name: QualifiedName,
    pub columns: Vec<ColumnDef>,
    pub keys: Option<KeyDesc>,
    pub comment: Option<Literal>,
    pub partitioning: Option<PartitionDesc>,
    pub distribution: Option<Distribution>,
    pub order_by: Vec<Ident>,
    pub properties: Properties,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DropObject {
    pub if_exists: bool,
    pub name: QualifiedName,
    pub force: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TruncateTable {
    pub name: QualifiedName,
    pub partitions: Vec<Literal>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AlterTableAction {
    AddPartition(PartitionDef),
    DropPartition {
        if_exists: bool,
        name: Literal,
        force: bool,
    },
    /// `RENAME new_name`.
    Rename(Ident),
    /// `SWAP WITH other`: the two tables trade names, atomically.
    SwapWith(Ident),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlterTable {
    pub name: QualifiedName,
    pub action: AlterTableAction,
    pub span: Span,
}

/// A query as written (the query layer parses it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueryText {
    pub text: String,
    pub span: Span,
}

impl Display for QueryText {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        // A trailing line comment would swallow whatever follows on the same line.
        let last = self.text.lines().last().unwrap_or("");
        if last.contains("--") || last.contains('#') {
            f.write_str("\n")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshMode {
    Async,
    Manual,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateMaterializedView {
    pub if_not_exists: bool,
    pub name: QualifiedName,
    /// `None` for a synchronous (rollup) MV; `Some` for an asynchronous one.
    pub refresh: Option<RefreshMode>,
    pub is_async: bool,
    pub comment: Option<Literal>,
    pub partitioning: Option<PartitionDesc>,
    pub distribution: Option<Distribution>,
    pub order_by: Vec<Ident>,
    pub properties: Properties,
    pub query: QueryText,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlterMaterializedView {
    pub name: QualifiedName,
    pub active: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefreshMaterializedView {
    pub name: QualifiedName,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateView {
    pub if_not_exists: bool,
    pub name: QualifiedName,
    pub columns: Vec<Ident>,
    pub comment: Option<Literal>,
    pub query: QueryText,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateFunction {
    pub global: bool,
    pub kind: Option<Ident>,
    pub if_not_exists: bool,
    pub name: QualifiedName,
    pub arguments: Vec<ColumnType>,
    pub returns: ColumnType,
    pub properties: Properties,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DropFunction {
    pub global: bool,
    pub if_exists: bool,
    pub name: QualifiedName,
    /// `None` when no argument list was given (drop the only overload).
    pub arguments: Option<Vec<ColumnType>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateCatalog {
    pub if_not_exists: bool,
    pub name: Ident,
    pub comment: Option<Literal>,
    pub properties: Properties,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DropCatalog {
    pub if_exists: bool,
    pub name: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InsertSource {
    Values { rows: Vec<ValueRow> },
    Files { properties: Properties },
    Query(QueryText),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValueRow {
    pub values: Vec<Datum>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Insert {
    pub table: QualifiedName,
    pub columns: Vec<Ident>,
    pub source: InsertSource,
    pub span: Span,
}

/// `UPDATE t SET c = expr, … [WHERE condition]`; expressions are SQL text for the query layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Update {
    pub table: QualifiedName,
    pub assignments: Vec<Assignment>,
    pub condition: Option<QueryText>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assignment {
    pub column: Ident,
    pub value: QueryText,
}

/// `DELETE FROM t [WHERE condition]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delete {
    pub table: QualifiedName,
    pub condition: Option<QueryText>,
    pub span: Span,
}

/// `LIKE 'pattern'` (on a SHOW's first column) or `WHERE condition` (over its columns).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "filter", content = "text", rename_all = "snake_case")]
pub enum ShowFilter {
    Like(Literal),
    Where(QueryText),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChecksumTable {
    pub tables: Vec<QualifiedName>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "show", rename_all = "snake_case")]
pub enum Show {
    Databases {
        #[serde(skip_serializing_if = "Option::is_none")]
        filter: Option<ShowFilter>,
    },
    Tables {
        database: Option<Ident>,
        /// `SHOW FULL TABLES`: with each one's Table_type.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        full: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        filter: Option<ShowFilter>,
    },
    TableStatus {
        database: Option<Ident>,
        filter: Option<ShowFilter>,
    },
    /// `SHOW PROC '/path'`.
    Proc {
        path: Literal,
    },
    /// `SHOW [FULL] COLUMNS FROM t [FROM db]`, `DESC t`.
    Columns {
        table: QualifiedName,
        full: bool,
        filter: Option<ShowFilter>,
    },
    Partitions {
        table: QualifiedName,
    },
    CreateTable {
        table: QualifiedName,
    },
    MaterializedViews {
        database: Option<Ident>,
    },
    Functions {
        global: bool,
        database: Option<Ident>,
    },
    Catalogs,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShowObjects {
    #[serde(flatten)]
    pub what: Show,
    pub span: Span,
}

// ---- canonical SQL ----------------------------------------------------------------------------

fn write_show(f: &mut Formatter<'_>, what: &Show) -> fmt::Result {
    match what {
        Show::Databases { filter } => {
            f.write_str("SHOW DATABASES")?;
            write_filter(f, filter)
        }
        Show::Tables {
            database,
            full,
            filter,
        } => {
            f.write_str(if *full {
                "SHOW FULL TABLES"
            } else {
                "SHOW TABLES"
            })?;
            if let Some(db) = database {
                write!(f, " FROM {db}")?;
            }
            write_filter(f, filter)
        }
        Show::Proc { path } => write!(f, "SHOW PROC {}", QuotedString(&path.value)),
        Show::TableStatus { database, filter } => {
            f.write_str("SHOW TABLE STATUS")?;
            if let Some(db) = database {
                write!(f, " FROM {db}")?;
            }
            write_filter(f, filter)
        }
        Show::Columns {
            table,
            full,
            filter,
        } => {
            f.write_str(if *full {
                "SHOW FULL COLUMNS"
            } else {
                "SHOW COLUMNS"
            })?;
            write!(f, " FROM {table}")?;
            write_filter(f, filter)
        }
        Show::Partitions { table } => write!(f, "SHOW PARTITIONS FROM {table}"),
        Show::CreateTable { table } => write!(f, "SHOW CREATE TABLE {table}"),
        Show::MaterializedViews { database } => match database {
            Some(db) => write!(f, "SHOW MATERIALIZED VIEWS FROM {db}"),
            None => f.write_str("SHOW MATERIALIZED VIEWS"),
        },
        Show::Functions { global, database } => {
            let what = if *global {
                "SHOW GLOBAL FUNCTIONS"
            } else {
                "SHOW FUNCTIONS"
            };
            match database {
                Some(db) => write!(f, "{what} FROM {db}"),
                None => f.write_str(what),
            }
        }
        Show::Catalogs => f.write_str("SHOW CATALOGS"),
    }
}

fn write_filter(f: &mut Formatter<'_>, filter: &Option<ShowFilter>) -> fmt::Result {
    match filter {
        None => Ok(()),
        Some(ShowFilter::Like(p)) => write!(f, " LIKE {}", QuotedString(&p.value)),
        Some(ShowFilter::Where(c)) => write!(f, " WHERE {}", c.text),
    }
}

fn comma_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        x.fmt(f)?;
    }
    Ok(())
}

fn paren_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_str("(")?;
    comma_list(f, items)?;
    f.write_str(")")
}

fn if_not_exists(f: &mut Formatter<'_>, yes: bool) -> fmt::Result {
    if yes {
        f.write_str("IF NOT EXISTS ")
    } else {
        Ok(())
    }
}

fn if_exists(f: &mut Formatter<'_>, yes: bool) -> fmt::Result {
    if yes {
        f.write_str("IF EXISTS ")
    } else {
        Ok(())
    }
}

fn opt_comment(f: &mut Formatter<'_>, comment: &Option<Literal>) -> fmt::Result {
    match comment {
        Some(c) => write!(f, " COMMENT {c}"),
        None => Ok(()),
    }
}

fn opt_properties(f: &mut Formatter<'_>, properties: &Properties) -> fmt::Result {
    if properties.is_empty() {
        Ok(())
    } else {
        write!(f, " {properties}")
    }
}

impl Display for ColumnType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name.value.to_ascii_uppercase())?;
        if !self.params.is_empty() {
            paren_list(f, &self.params)?;
        }
        Ok(())
    }
}

impl Display for Datum {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Null(_) => f.write_str("NULL"),
            Datum::Bool(b, _) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            Datum::Number(n) => f.write_str(&n.value),
            Datum::String(s) => QuotedString(&s.value).fmt(f),
            Datum::Default(_) => f.write_str("DEFAULT"),
            Datum::MaxValue(_) => f.write_str("MAXVALUE"),
            Datum::Now(_) => f.write_str("CURRENT_TIMESTAMP"),
            Datum::Today(_) => f.write_str("CURRENT_DATE"),
        }
    }
}

impl Display for ColumnDef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.data_type)?;
        if let Some(agg) = &self.aggregate {
            write!(f, " {}", agg.value.to_ascii_uppercase())?;
        }
        match self.nullable {
            Some(false) => f.write_str(" NOT NULL")?,
            Some(true) => f.write_str(" NULL")?,
            None => {}
        }
        if let Some(d) = &self.default {
            write!(f, " DEFAULT {d}")?;
        }
        opt_comment(f, &self.comment)
    }
}

struct Tuple<'a>(&'a [Datum]);

impl Display for Tuple<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        paren_list(f, self.0)
    }
}

impl Display for PartitionDef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("PARTITION ")?;
        if_not_exists(f, self.if_not_exists)?;
        write!(
            f,
            "{} VALUES ",
            super::display::QuotedIdent(&self.name.value)
        )?;
        match &self.bound {
            PartitionBound::LessThan(v) if v.is_empty() => f.write_str("LESS THAN MAXVALUE"),
            PartitionBound::LessThan(v) => write!(f, "LESS THAN {}", Tuple(v)),
            PartitionBound::Range(lo, hi) => write!(f, "[{}, {})", Tuple(lo), Tuple(hi)),
            PartitionBound::In(items) => {
                f.write_str("IN (")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match item.as_slice() {
                        [one] => one.fmt(f)?,
                        many => Tuple(many).fmt(f)?,
                    }
                }
                f.write_str(")")
            }
        }
    }
}

impl Display for PartitionDesc {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("PARTITION BY ")?;
        match self {
            PartitionDesc::Range {
                columns,
                partitions,
            } => {
                f.write_str("RANGE")?;
                paren_list(f, columns)?;
                f.write_str(" ")?;
                paren_list(f, partitions)
            }
            PartitionDesc::List {
                columns,
                partitions,
            } => {
                f.write_str("LIST")?;
                paren_list(f, columns)?;
                f.write_str(" ")?;
                paren_list(f, partitions)
            }
            PartitionDesc::DateTrunc { unit, column } => {
                write!(f, "date_trunc({unit}, {column})")
            }
            PartitionDesc::Columns { columns } => comma_list(f, columns),
        }
    }
}

impl Display for Distribution {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("DISTRIBUTED BY ")?;
        if self.hash.is_empty() {
            f.write_str("RANDOM")?;
        } else {
            f.write_str("HASH")?;
            paren_list(f, &self.hash)?;
        }
        match self.buckets {
            Some(n) => write!(f, " BUCKETS {n}"),
            None => Ok(()),
        }
    }
}

impl Display for CreateTable {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE TABLE ")?;
        if_not_exists(f, self.if_not_exists)?;
        write!(f, "{} ", self.name)?;
        paren_list(f, &self.columns)?;
        if let Some(k) = &self.keys {
            write!(f, " {} KEY", k.kind.keyword())?;
            paren_list(f, &k.columns)?;
        }
        opt_comment(f, &self.comment)?;
        if let Some(p) = &self.partitioning {
            write!(f, " {p}")?;
        }
        if let Some(d) = &self.distribution {
            write!(f, " {d}")?;
        }
        if !self.order_by.is_empty() {
            f.write_str(" ORDER BY")?;
            paren_list(f, &self.order_by)?;
        }
        opt_properties(f, &self.properties)
    }
}

impl Display for CreateMaterializedView {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE MATERIALIZED VIEW ")?;
        if_not_exists(f, self.if_not_exists)?;
        write!(f, "{}", self.name)?;
        opt_comment(f, &self.comment)?;
        if let Some(p) = &self.partitioning {
            write!(f, " {p}")?;
        }
        if let Some(d) = &self.distribution {
            write!(f, " {d}")?;
        }
        if !self.order_by.is_empty() {
            f.write_str(" ORDER BY")?;
            paren_list(f, &self.order_by)?;
        }
        match self.refresh {
            Some(RefreshMode::Async) => f.write_str(" REFRESH ASYNC")?,
            Some(RefreshMode::Manual) => f.write_str(" REFRESH MANUAL")?,
            None => {}
        }
        opt_properties(f, &self.properties)?;
        write!(f, " AS {}", self.query)
    }
}

impl Display for InsertSource {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            InsertSource::Values { rows } => {
                f.write_str("VALUES ")?;
                for (i, row) in rows.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    paren_list(f, &row.values)?;
                }
                Ok(())
            }
            InsertSource::Files { properties } => {
                let inner = properties.to_string();
                let list = inner.trim_start_matches("PROPERTIES ");
                write!(f, "SELECT * FROM FILES{list}")
            }
            InsertSource::Query(q) => q.fmt(f),
        }
    }
}

fn function_args(f: &mut Formatter<'_>, args: &[ColumnType]) -> fmt::Result {
    paren_list(f, args)
}

/// Canonical SQL of an engine statement (called from `Statement`'s `Display`).
pub(super) fn fmt_engine_statement(
    stmt: &super::ast::Statement,
    f: &mut Formatter<'_>,
) -> Option<fmt::Result> {
    use super::ast::Statement as S;
    Some(match stmt {
        S::CreateDatabase(s) => (|| {
            f.write_str("CREATE DATABASE ")?;
            if_not_exists(f, s.if_not_exists)?;
            write!(f, "{}", s.name)?;
            opt_properties(f, &s.properties)
        })(),
        S::DropDatabase(s) => (|| {
            f.write_str("DROP DATABASE ")?;
            if_exists(f, s.if_exists)?;
            write!(f, "{}{}", s.name, if s.force { " FORCE" } else { "" })
        })(),
        S::Use(s) => write!(f, "USE {}", s.name),
        S::CreateTable(s) => s.fmt(f),
        S::DropTable(s) => (|| {
            f.write_str("DROP TABLE ")?;
            if_exists(f, s.if_exists)?;
            write!(f, "{}{}", s.name, if s.force { " FORCE" } else { "" })
        })(),
        S::TruncateTable(s) => (|| {
            write!(f, "TRUNCATE TABLE {}", s.name)?;
            if !s.partitions.is_empty() {
                f.write_str(" PARTITION (")?;
                for (i, p) in s.partitions.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    super::display::QuotedIdent(&p.value).fmt(f)?;
                }
                f.write_str(")")?;
            }
            Ok(())
        })(),
        S::AlterTable(s) => (|| {
            write!(f, "ALTER TABLE {} ", s.name)?;
            match &s.action {
                AlterTableAction::AddPartition(p) => write!(f, "ADD {p}"),
                AlterTableAction::DropPartition {
                    if_exists: ie,
                    name,
                    force,
                } => {
                    f.write_str("DROP PARTITION ")?;
                    if_exists(f, *ie)?;
                    write!(
                        f,
                        "{}{}",
                        super::display::QuotedIdent(&name.value),
                        if *force { " FORCE" } else { "" }
                    )
                }
                AlterTableAction::Rename(n) => write!(f, "RENAME {n}"),
                AlterTableAction::SwapWith(n) => write!(f, "SWAP WITH {n}"),
            }
        })(),
        S::CreateMaterializedView(s) => s.fmt(f),
        S::AlterMaterializedView(s) => write!(
            f,
            "ALTER MATERIALIZED VIEW {} {}",
            s.name,
            if s.active { "ACTIVE" } else { "INACTIVE" }
        ),
        S::RefreshMaterializedView(s) => write!(f, "REFRESH MATERIALIZED VIEW {}", s.name),
        S::DropMaterializedView(s) => (|| {
            f.write_str("DROP MATERIALIZED VIEW ")?;
            if_exists(f, s.if_exists)?;
            write!(f, "{}", s.name)
        })(),
        S::CreateView(s) => (|| {
            f.write_str("CREATE VIEW ")?;
            if_not_exists(f, s.if_not_exists)?;
            write!(f, "{}", s.name)?;
            if !s.columns.is_empty() {
                f.write_str(" ")?;
                paren_list(f, &s.columns)?;
            }
            opt_comment(f, &s.comment)?;
            write!(f, " AS {}", s.query)
        })(),
        S::DropView(s) => (|| {
            f.write_str("DROP VIEW ")?;
            if_exists(f, s.if_exists)?;
            write!(f, "{}", s.name)
        })(),
        S::CreateFunction(s) => (|| {
            f.write_str("CREATE ")?;
            if s.global {
                f.write_str("GLOBAL ")?;
            }
            if let Some(k) = &s.kind {
                write!(f, "{} ", k.value.to_ascii_uppercase())?;
            }
            f.write_str("FUNCTION ")?;
            if_not_exists(f, s.if_not_exists)?;
            write!(f, "{}", s.name)?;
            function_args(f, &s.arguments)?;
            write!(f, " RETURNS {}", s.returns)?;
            opt_properties(f, &s.properties)
        })(),
        S::DropFunction(s) => (|| {
            f.write_str("DROP ")?;
            if s.global {
                f.write_str("GLOBAL ")?;
            }
            f.write_str("FUNCTION ")?;
            if_exists(f, s.if_exists)?;
            write!(f, "{}", s.name)?;
            match &s.arguments {
                Some(args) => function_args(f, args),
                None => Ok(()),
            }
        })(),
        S::CreateCatalog(s) => (|| {
            f.write_str("CREATE EXTERNAL CATALOG ")?;
            if_not_exists(f, s.if_not_exists)?;
            write!(f, "{}", s.name)?;
            opt_comment(f, &s.comment)?;
            opt_properties(f, &s.properties)
        })(),
        S::DropCatalog(s) => (|| {
            f.write_str("DROP CATALOG ")?;
            if_exists(f, s.if_exists)?;
            write!(f, "{}", s.name)
        })(),
        S::Insert(s) => (|| {
            write!(f, "INSERT INTO {}", s.table)?;
            if !s.columns.is_empty() {
                f.write_str(" ")?;
                paren_list(f, &s.columns)?;
            }
            write!(f, " {}", s.source)
        })(),
        S::Update(s) => (|| {
            write!(f, "UPDATE {} SET ", s.table)?;
            for (i, a) in s.assignments.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{} = {}", a.column, a.value.text)?;
            }
            if let Some(c) = &s.condition {
                write!(f, " WHERE {}", c.text)?;
            }
            Ok(())
        })(),
        S::Delete(s) => (|| {
            write!(f, "DELETE FROM {}", s.table)?;
            if let Some(c) = &s.condition {
                write!(f, " WHERE {}", c.text)?;
            }
            Ok(())
        })(),
        S::ChecksumTable(s) => (|| {
            f.write_str("CHECKSUM TABLE ")?;
            comma_list(f, &s.tables)
        })(),
        S::Show(s) => write_show(f, &s.what),
        S::Query(q) => q.fmt(f),
        _ => return None,
    })
}
