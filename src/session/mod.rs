//! Runs parsed statements against a cluster: the `srbackup sql` loop.
//!
//! A session holds the open engine and the current database (`USE`). Each statement runs on
//! its own; a failing statement stops a script and its error points into the script's text.

pub mod repositories;

use std::path::Path;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::StreamExt;

use crate::catalog::{self, JobKind, ObjectDef, ObjectKind, PartitionBound, Partitioning};
use crate::engine::load::{self, LoadMode};
use crate::engine::{Engine, EngineError, Result, ddl, query};
use crate::sql::{self, InsertSource, Show, SqlError, Statement};

/// Rows to show, as text (NULL as `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// What each column holds, for clients that type their values (the MySQL protocol);
    /// empty, or shorter than `columns`, means text.
    #[serde(skip)]
    pub kinds: Vec<ColumnKind>,
}

/// The type of a result column, as far as a client cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColumnKind {
    #[default]
    Text,
    Integer,
    Float,
    Decimal,
    Date,
    DateTime,
}

impl ColumnKind {
    fn of(t: &datafusion::arrow::datatypes::DataType) -> ColumnKind {
        use datafusion::arrow::datatypes::DataType as T;
        match t {
            T::Int8
            | T::Int16
            | T::Int32
            | T::Int64
            | T::UInt8
            | T::UInt16
            | T::UInt32
            | T::UInt64 => ColumnKind::Integer,
            T::Float16 | T::Float32 | T::Float64 => ColumnKind::Float,
            T::Decimal32(..) | T::Decimal64(..) | T::Decimal128(..) | T::Decimal256(..) => {
                ColumnKind::Decimal
            }
            T::Date32 | T::Date64 => ColumnKind::Date,
            T::Timestamp(..) => ColumnKind::DateTime,
            _ => ColumnKind::Text,
        }
    }
}

impl ResultSet {
    pub fn new(columns: &[&str]) -> Self {
        ResultSet {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            kinds: Vec::new(),
        }
    }
    pub fn push(&mut self, row: Vec<Option<String>>) {
        self.rows.push(row);
    }
    /// The value of `column` in row `row`, for tests and callers.
    pub fn get(&self, row: usize, column: &str) -> Option<&str> {
        let c = self.columns.iter().position(|n| n == column)?;
        self.rows.get(row)?.get(c)?.as_deref()
    }
}

/// What a statement produced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    Rows(ResultSet),
    Done {
        message: String,
        /// Rows a load wrote (what a MySQL client shows as "rows affected").
        #[serde(skip_serializing_if = "Option::is_none")]
        affected: Option<u64>,
    },
}

fn done(message: impl Into<String>) -> Output {
    Output::Done {
        message: message.into(),
        affected: None,
    }
}

/// Where streamed results go (see [`Session::run_script_streaming`]).
pub trait Sink {
    /// A statement that produced a complete output.
    fn output(&mut self, statement: &Statement, output: &Output);
    /// A query's rows begin: their columns and what each holds.
    fn begin_rows(&mut self, query: &str, columns: &[String], kinds: &[ColumnKind]);
    /// Some of its rows.
    fn rows(&mut self, rows: Vec<Vec<Option<String>>>);
    /// Its last rows have been given.
    fn end_rows(&mut self, total: u64);
}

pub struct Session {
    engine: Engine,
    current_db: Option<String>,
    progress: std::sync::Arc<dyn crate::exec::progress::Progress>,
    snapshot_time: Option<String>,
}

impl Session {
    pub fn open(cluster: &Path) -> Result<Session> {
        Ok(Session {
            engine: Engine::open(cluster)?,
            current_db: None,
            progress: std::sync::Arc::new(crate::exec::progress::Silent),
            snapshot_time: None,
        })
    }

    /// Gives every snapshot this session's BACKUPs make a fixed timestamp (`None`: now).
    pub fn set_snapshot_time(&mut self, timestamp: Option<String>) {
        self.snapshot_time = timestamp;
    }

    /// Where BACKUP and RESTORE report their progress (silent by default).
    pub fn set_progress(&mut self, progress: std::sync::Arc<dyn crate::exec::progress::Progress>) {
        self.progress = progress;
    }

    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn current_database(&self) -> Option<&str> {
        self.current_db.as_deref()
    }

    /// Parses and runs every statement of `src`, handing each result to `on_output`. Errors
    /// come back as diagnostics that point into `src`.
    pub async fn run_script(
        &mut self,
        name: &str,
        src: &str,
        mut on_output: impl FnMut(&Statement, &Output),
    ) -> std::result::Result<(), miette::Report> {
        let statements = sql::parse_named(name, src)?;
        for stmt in &statements {
            match self.execute_text(stmt, src).await {
                Ok(out) => on_output(stmt, &out),
                Err(e) => return Err(render(e, name, src)),
            }
        }
        Ok(())
    }

    /// [`Session::run_script`] for large results: query rows reach `sink` batch by batch, so
    /// memory stays bounded whatever the result size.
    pub async fn run_script_streaming(
        &mut self,
        name: &str,
        src: &str,
        sink: &mut dyn Sink,
    ) -> std::result::Result<(), miette::Report> {
        let statements = sql::parse_named(name, src)?;
        for stmt in &statements {
            let result = match stmt {
                Statement::Query(q) => self.stream_query(q, sink).await,
                other => self
                    .execute_text(other, src)
                    .await
                    .map(|out| sink.output(other, &out)),
            };
            result.map_err(|e| render(e, name, src))?;
        }
        Ok(())
    }

    /// Runs a query, handing its rows to `sink` batch by batch.
    pub async fn stream_query(&mut self, q: &sql::QueryText, sink: &mut dyn Sink) -> Result<()> {
        let current = self.current_db.clone();
        check_query_names(&mut self.engine, q, current.as_deref())?;
        let (schema, mut stream) = query::run(&mut self.engine, &q.text, current.as_deref())
            .await
            .map_err(|e| at_query(e, q))?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let kinds: Vec<ColumnKind> = schema
            .fields()
            .iter()
            .map(|f| ColumnKind::of(f.data_type()))
            .collect();
        sink.begin_rows(&q.text, &columns, &kinds);
        let mut total = 0u64;
        while let Some(batch) = stream.next().await {
            let rs = result_set(&schema, &[batch?])?;
            total += rs.rows.len() as u64;
            sink.rows(rs.rows);
        }
        sink.end_rows(total);
        Ok(())
    }

    /// Runs one statement.
    /// [`Session::execute`] for a statement parsed from `src`: BACKUP and RESTORE record their
    /// text, as written, in their plan.
    pub async fn execute_text(&mut self, stmt: &Statement, src: &str) -> Result<Output> {
        let span = stmt.span();
        let text = src.get(span.start..span.end).map(str::to_string);
        match (stmt, text) {
            (Statement::Backup(_) | Statement::Restore(_), Some(text)) => {
                self.run_job(stmt, &text).await
            }
            _ => self.execute(stmt).await,
        }
    }

    async fn run_job(&mut self, stmt: &Statement, text: &str) -> Result<Output> {
        let progress = self.progress.clone();
        let options = crate::exec::StartOptions {
            snapshot_time: self.snapshot_time.as_deref(),
        };
        let outcome =
            crate::exec::run_statement(&mut self.engine, stmt, text, progress.as_ref(), options)
                .await?;
        if outcome.succeeded() {
            Ok(done(outcome.summary()))
        } else {
            Err(EngineError::invalid(outcome.summary(), None))
        }
    }

    pub async fn execute(&mut self, stmt: &Statement) -> Result<Output> {
        let current = self.current_db.clone();
        let current = current.as_deref();
        let engine = &mut self.engine;
        Ok(match stmt {
            Statement::CreateDatabase(s) => created(ddl::create_database(engine, s)?, "database"),
            Statement::DropDatabase(s) => dropped(ddl::drop_database(engine, s)?, "database"),
            Statement::Use(s) => {
                let db = engine.database(&s.name)?;
                self.current_db = Some(db.name.clone());
                done(format!("Database changed to {}", db.name))
            }
            Statement::CreateTable(s) => created(ddl::create_table(engine, s, current)?, "table"),
            Statement::DropTable(s) => dropped(
                ddl::drop_object(engine, s, ObjectKind::Table, current)?,
                "table",
            ),
            Statement::DropView(s) => dropped(
                ddl::drop_object(engine, s, ObjectKind::View, current)?,
                "view",
            ),
            Statement::DropMaterializedView(s) => dropped(
                ddl::drop_object(engine, s, ObjectKind::MaterializedView, current)?,
                "materialized view",
            ),
            Statement::TruncateTable(s) => {
                ddl::truncate_table(engine, s, current)?;
                done("Query OK")
            }
            Statement::AlterTable(s) => {
                ddl::alter_table(engine, s, current)?;
                done("Query OK")
            }
            Statement::CreateView(s) => {
                created(ddl::create_view(engine, s, current).await?, "view")
            }
            Statement::CreateMaterializedView(s) => created(
                ddl::create_materialized_view(engine, s, current).await?,
                "materialized view",
            ),
            Statement::AlterMaterializedView(s) => {
                ddl::alter_materialized_view(engine, s, current)?;
                done("Query OK")
            }
            Statement::RefreshMaterializedView(s) => {
                let db = engine.database_of(&s.name, current)?;
                engine.object(&s.name, current)?;
                let rows =
                    ddl::refresh_materialized_view(engine, &db.name, &s.name.name.value).await?;
                done(format!("Query OK, {rows} rows refreshed"))
            }
            Statement::CreateFunction(s) => {
                created(ddl::create_function(engine, s, current)?, "function")
            }
            Statement::DropFunction(s) => {
                dropped(ddl::drop_function(engine, s, current)?, "function")
            }
            Statement::CreateCatalog(s) => created(ddl::create_catalog(engine, s)?, "catalog"),
            Statement::DropCatalog(s) => dropped(ddl::drop_catalog(engine, s)?, "catalog"),
            Statement::Insert(s) => {
                let rows = insert(engine, s, current).await?;
                Output::Done {
                    message: format!("Query OK, {rows} rows affected"),
                    affected: Some(rows),
                }
            }
            Statement::Query(q) => {
                check_query_names(engine, q, current)?;
                let (schema, batches) = query::collect(engine, &q.text, current)
                    .await
                    .map_err(|e| at_query(e, q))?;
                Output::Rows(result_set(&schema, &batches)?)
            }
            Statement::ChecksumTable(s) => {
                let mut rs = ResultSet::new(&["Table", "Checksum"]);
                for name in &s.tables {
                    let (db, obj) = engine.object(name, current)?;
                    let sum = query::checksum(engine, &db.name, &obj.name).await?;
                    rs.push(vec![
                        Some(format!("{}.{}", db.name, obj.name)),
                        Some(sum.to_string()),
                    ]);
                }
                Output::Rows(rs)
            }
            Statement::Show(s) => Output::Rows(show(engine, &s.what, current)?),
            Statement::CreateRepository(s) => repositories::create(engine, s).await?,
            Statement::DropRepository(s) => repositories::drop(engine, s)?,
            Statement::ShowRepositories(_) => Output::Rows(repositories::show(engine)?),
            Statement::ShowSnapshot(s) => {
                Output::Rows(repositories::show_snapshots(engine, s).await?)
            }
            Statement::DropSnapshot(s) => repositories::drop_snapshot(engine, s).await?,
            Statement::Backup(_) | Statement::Restore(_) => {
                let text = stmt.to_string();
                return self.run_job(stmt, &text).await;
            }
            Statement::ShowBackup(s) => Output::Rows(crate::exec::jobs::show(
                engine,
                JobKind::Backup,
                s,
                current,
            )?),
            Statement::ShowRestore(s) => Output::Rows(crate::exec::jobs::show(
                engine,
                JobKind::Restore,
                s,
                current,
            )?),
            Statement::CancelBackup(s) => {
                done(crate::exec::jobs::cancel(engine, JobKind::Backup, s, current).await?)
            }
            Statement::CancelRestore(s) => {
                done(crate::exec::jobs::cancel(engine, JobKind::Restore, s, current).await?)
            }
        })
    }
}

/// A query the query layer refused (a type error, an unsupported construct) is reported
/// against the query's text.
fn at_query(e: EngineError, q: &sql::QueryText) -> EngineError {
    match e {
        EngineError::Query(message) => EngineError::at(
            sql::Problem::new("srbackup::query", q.span, message).label("in this query"),
        ),
        other => other,
    }
}

/// Every table a query names must exist: say which does not, where, and what is close.
fn check_query_names(engine: &mut Engine, q: &sql::QueryText, current: Option<&str>) -> Result<()> {
    let functions = query::new_context(current)
        .state()
        .table_functions()
        .clone();
    for (db, table) in query::referenced_tables(&q.text, current)? {
        if functions.contains_key(&table) {
            continue; // generate_series(...) and friends
        }
        // Point at the name in the query text where it can be found.
        let at = q
            .text
            .find(&table)
            .map(|i| sql::Span::new(q.span.start + i, q.span.start + i + table.len()))
            .unwrap_or(q.span);
        let name = sql::QualifiedName {
            database: Some(sql::Ident {
                value: db.clone(),
                span: at,
            }),
            name: sql::Ident {
                value: table.clone(),
                span: at,
            },
        };
        let Some(db_row) = engine.catalog().view().database(&db)? else {
            let db_at = q
                .text
                .find(&format!("{db}."))
                .map(|i| sql::Span::new(q.span.start + i, q.span.start + i + db.len()))
                .unwrap_or(at);
            engine.database(&sql::Ident {
                value: db,
                span: db_at,
            })?;
            continue;
        };
        // Synchronous MVs are queryable by name too; they live inside their base table.
        let is_rollup = engine.catalog().view().objects(db_row.id)?
            .iter()
            .any(|o| matches!(&o.def, ObjectDef::Table { rollups, .. } if rollups.iter().any(|r| r.name == table)));
        if !is_rollup {
            engine.object(&name, current)?;
        }
    }
    Ok(())
}

fn created(new: bool, what: &str) -> Output {
    if new {
        done("Query OK, 0 rows affected")
    } else {
        done(format!(
            "Query OK, 0 rows affected (the {what} already exists)"
        ))
    }
}

fn dropped(gone: bool, what: &str) -> Output {
    if gone {
        done("Query OK, 0 rows affected")
    } else {
        done(format!("Query OK, 0 rows affected (no such {what})"))
    }
}

/// Renders an engine error; positioned ones point into the statement text.
pub fn render(e: EngineError, name: &str, src: &str) -> miette::Report {
    match e {
        EngineError::At(problem) => miette::Report::new(SqlError::new(vec![*problem], name, src)),
        other => miette::Report::new(other),
    }
}

/// Rows of record batches as text.
pub fn result_set(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<ResultSet> {
    let mut rs = ResultSet {
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        rows: Vec::new(),
        kinds: schema
            .fields()
            .iter()
            .map(|f| ColumnKind::of(f.data_type()))
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

async fn insert(engine: &mut Engine, stmt: &sql::Insert, current: Option<&str>) -> Result<u64> {
    let (_, obj) = engine.object(&stmt.table, current)?;
    let Some(schema) = obj.def.schema().cloned() else {
        return Err(crate::engine::problem_at(
            "srbackup::load::view",
            stmt.table.span(),
            format!("{} is a view; it holds no data", stmt.table),
        ));
    };
    if obj.def.kind() == ObjectKind::MaterializedView {
        return Err(crate::engine::problem_at(
            "srbackup::load::mv",
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
                        "srbackup::load::unknown_column",
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
                        "srbackup::load::column_count",
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
                            "srbackup::load::not_null",
                            span,
                            format!("column {} is NOT NULL but gets no value here", column.name),
                        ));
                    }
                    if let (Some(max), datafusion::common::ScalarValue::Utf8(Some(text))) =
                        (column.sql_type.max_length(), &value)
                        && text.chars().count() > max as usize
                    {
                        return Err(crate::engine::problem_at(
                            "srbackup::load::too_long",
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
            let schema2 = schema.clone();
            let conformed = stream.map(move |b| {
                b.map_err(EngineError::from)
                    .and_then(|b| load::conform(&schema2, &target, &b, &positions))
            });
            Ok(
                load::load(engine, &obj, LoadMode::Append, Box::pin(conformed))
                    .await?
                    .rows,
            )
        }
        InsertSource::Files { properties } => {
            let stream = crate::engine::files::open(properties, stmt.span)?;
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
    match &column.default {
        Some(text) => crate::engine::types::parse_scalar(text, dt).map_err(EngineError::Arrow),
        None => Ok(datafusion::common::ScalarValue::try_from(dt)?),
    }
}

fn mask(key: &str, value: &str) -> String {
    if sql::is_secret_key(key) {
        sql::MASK.to_string()
    } else {
        value.to_string()
    }
}

/// `"k"="v", ...` with credentials masked.
fn masked_properties(properties: &std::collections::BTreeMap<String, String>) -> String {
    properties
        .iter()
        .map(|(k, v)| format!("\"{k}\"=\"{}\"", mask(k, v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(engine: &mut Engine, what: &Show, current: Option<&str>) -> Result<ResultSet> {
    let conn_dbs = |engine: &mut Engine, db: &Option<sql::Ident>| -> Result<catalog::DatabaseRow> {
        match db {
            Some(d) => engine.database(d),
            None => match current {
                Some(c) => engine.database(&sql::Ident::new(c)),
                None => Err(EngineError::invalid(
                    "no database selected",
                    Some("name one (FROM db) or run USE db"),
                )),
            },
        }
    };
    Ok(match what {
        Show::Databases => {
            let mut rs = ResultSet::new(&["Database"]);
            for d in engine.catalog().view().databases()? {
                rs.push(vec![Some(d.name)]);
            }
            rs
        }
        Show::Tables { database } => {
            let db = conn_dbs(engine, database)?;
            let mut rs = ResultSet::new(&[&format!("Tables_in_{}", db.name)]);
            for o in engine.catalog().view().objects(db.id)? {
                rs.push(vec![Some(o.name)]);
            }
            rs
        }
        Show::Partitions { table } => {
            let (_, obj) = engine.object(table, current)?;
            let mut rs = ResultSet::new(&[
                "PartitionId",
                "PartitionName",
                "VisibleVersion",
                "State",
                "PartitionKey",
                "Range",
                "DistributionKey",
                "Buckets",
                "ReplicationNum",
                "DataSize",
                "RowCount",
            ]);
            let Some(schema) = obj.def.schema() else {
                return Ok(rs);
            };
            let key = schema.partitioning.columns().join(", ");
            let dist = match &schema.distribution {
                catalog::Distribution::Hash { columns, .. } => columns.join(", "),
                catalog::Distribution::Random { .. } => "RANDOM".into(),
            };
            let replication = schema
                .properties
                .get("replication_num")
                .cloned()
                .unwrap_or_else(|| "1".into());
            let parts = engine.catalog().view().partitions(obj.id)?;
            for p in parts {
                let (mut rows, mut bytes) = (0i64, 0i64);
                for t in engine.catalog().view().tablets(p.id)? {
                    for r in engine.catalog().view().live_rowsets(t.id)? {
                        rows += r.rows;
                        bytes += r.bytes;
                    }
                }
                rs.push(vec![
                    Some(p.id.to_string()),
                    Some(p.name.clone()),
                    Some(p.visible_version.to_string()),
                    Some("NORMAL".into()),
                    Some(key.clone()),
                    Some(bound_text(&p.bound)),
                    Some(dist.clone()),
                    Some(schema.distribution.buckets().to_string()),
                    Some(replication.clone()),
                    Some(human_bytes(bytes as u64)),
                    Some(rows.to_string()),
                ]);
            }
            rs
        }
        Show::CreateTable { table } => {
            let (db, obj) = engine.object(table, current)?;
            let partitions = engine.catalog().view().partitions(obj.id)?;
            let text = create_statement(&db.name, &obj, &partitions)?;
            let mut rs = ResultSet::new(&["Table", "Create Table"]);
            rs.push(vec![Some(obj.name), Some(text)]);
            rs
        }
        Show::MaterializedViews { database } => {
            let db = conn_dbs(engine, database)?;
            let mut rs = ResultSet::new(&[
                "id",
                "database_name",
                "name",
                "refresh_type",
                "is_active",
                "inactive_reason",
                "partition_type",
                "text",
                "rows",
            ]);
            for o in engine.catalog().view().objects(db.id)? {
                match &o.def {
                    ObjectDef::MaterializedView {
                        sql,
                        refresh,
                        schema,
                        ..
                    } => {
                        let rows: i64 = engine
                            .catalog()
                            .view()
                            .object_rowsets(o.id)?
                            .iter()
                            .map(|r| r.rows)
                            .sum();
                        rs.push(vec![
                            Some(o.id.to_string()),
                            Some(db.name.clone()),
                            Some(o.name.clone()),
                            Some(refresh.clone()),
                            Some(o.active.to_string()),
                            o.inactive_reason.clone(),
                            Some(partition_type(&schema.partitioning).into()),
                            Some(sql.clone()),
                            Some(rows.to_string()),
                        ]);
                    }
                    ObjectDef::Table { rollups, .. } => {
                        for r in rollups {
                            rs.push(vec![
                                Some(o.id.to_string()),
                                Some(db.name.clone()),
                                Some(r.name.clone()),
                                Some("ROLLUP".into()),
                                Some("true".into()),
                                None,
                                Some("UNPARTITIONED".into()),
                                Some(r.sql.clone()),
                                None,
                            ]);
                        }
                    }
                    ObjectDef::View { .. } => {}
                }
            }
            rs
        }
        Show::Functions { global, database } => {
            let db_id = if *global {
                None
            } else {
                Some(conn_dbs(engine, database)?.id)
            };
            let mut rs =
                ResultSet::new(&["Signature", "Return Type", "Function Type", "Properties"]);
            for f in engine.catalog().view().functions(db_id)? {
                let props = masked_properties(&f.properties);
                rs.push(vec![
                    Some(f.signature()),
                    Some(f.returns.clone()),
                    Some(f.kind.clone().unwrap_or_else(|| "Scalar".into())),
                    Some(props),
                ]);
            }
            rs
        }
        Show::Catalogs => {
            let mut rs = ResultSet::new(&["Catalog", "Type", "Comment", "Properties"]);
            rs.push(vec![
                Some("default_catalog".into()),
                Some("Internal".into()),
                Some("An internal catalog contains this cluster's self-managed tables.".into()),
                None,
            ]);
            for c in engine.catalog().view().external_catalogs()? {
                let props = masked_properties(&c.properties);
                rs.push(vec![
                    Some(c.name.clone()),
                    c.properties.get("type").cloned(),
                    c.comment.clone(),
                    Some(props),
                ]);
            }
            rs
        }
    })
}

fn partition_type(p: &Partitioning) -> &'static str {
    match p {
        Partitioning::Unpartitioned => "UNPARTITIONED",
        Partitioning::Range { .. } => "RANGE",
        Partitioning::List { .. } => "LIST",
        Partitioning::DateTrunc { .. } | Partitioning::Columns { .. } => "EXPR",
    }
}

/// `[lower, upper)` of a range partition; an empty bound is MINVALUE or MAXVALUE.
fn range_text(lower: &[String], upper: &[String], tuple: impl Fn(&[String]) -> String) -> String {
    let side = |v: &[String], open: &str| {
        if v.is_empty() {
            open.to_string()
        } else {
            tuple(v)
        }
    };
    format!("[{}, {})", side(lower, "MINVALUE"), side(upper, "MAXVALUE"))
}

fn bound_text(b: &PartitionBound) -> String {
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

pub use crate::plan::human_bytes;

/// SHOW CREATE TABLE / VIEW / MATERIALIZED VIEW text, rebuilt from the catalog.
fn create_statement(
    db: &str,
    obj: &catalog::ObjectRow,
    partitions: &[catalog::PartitionRow],
) -> Result<String> {
    let name = format!("{}.{}", sql::QuotedIdent(db), sql::QuotedIdent(&obj.name));
    let tuple = |values: &[String]| {
        format!(
            "({})",
            values
                .iter()
                .map(|v| sql::QuotedString(v).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let partition_list = || -> String {
        let defs: Vec<String> = partitions
            .iter()
            .filter_map(|p| match &p.bound {
                PartitionBound::Range { lower, upper } => Some(format!(
                    "  PARTITION {} VALUES {}",
                    sql::QuotedIdent(&p.name),
                    range_text(lower, upper, tuple)
                )),
                PartitionBound::List { values } => Some(format!(
                    "  PARTITION {} VALUES IN ({})",
                    sql::QuotedIdent(&p.name),
                    values
                        .iter()
                        .map(|v| {
                            let parts: Vec<String> = v
                                .iter()
                                .map(|x| {
                                    x.as_deref()
                                        .map(|t| sql::QuotedString(t).to_string())
                                        .unwrap_or_else(|| "NULL".into())
                                })
                                .collect();
                            if parts.len() == 1 {
                                parts[0].clone()
                            } else {
                                format!("({})", parts.join(", "))
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                _ => None,
            })
            .collect();
        format!(
            " (
{}
)",
            defs.join(
                ",
"
            )
        )
    };
    Ok(match &obj.def {
        ObjectDef::View {
            sql,
            columns,
            comment,
            ..
        } => {
            let mut head = format!("CREATE VIEW {name}");
            if !columns.is_empty() {
                head.push_str(&format!(
                    " ({})",
                    columns
                        .iter()
                        .map(|c| sql::QuotedIdent(c).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some(c) = comment {
                head.push_str(&format!(" COMMENT {}", sql::QuotedString(c)));
            }
            format!("{head} AS {sql}")
        }
        ObjectDef::MaterializedView { sql, refresh, .. } => {
            format!("CREATE MATERIALIZED VIEW {name} REFRESH {refresh} AS {sql}")
        }
        ObjectDef::Table { schema, .. } => {
            let mut out = format!("CREATE TABLE {name} (\n");
            for (i, c) in schema.columns.iter().enumerate() {
                out.push_str(&format!(
                    "  {} {}",
                    sql::QuotedIdent(&c.name),
                    c.sql_type.sql_name()
                ));
                if let Some(a) = c.aggregate {
                    out.push_str(&format!(" {}", a.sql_name()));
                }
                out.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
                if let Some(d) = &c.default {
                    out.push_str(&format!(" DEFAULT {}", sql::QuotedString(d)));
                }
                if let Some(cm) = &c.comment {
                    out.push_str(&format!(" COMMENT {}", sql::QuotedString(cm)));
                }
                out.push_str(if i + 1 < schema.columns.len() {
                    ",\n"
                } else {
                    "\n"
                });
            }
            let keys: Vec<String> = schema
                .key_columns()
                .map(|c| sql::QuotedIdent(&c.name).to_string())
                .collect();
            out.push_str(&format!(
                ") {} KEY({})",
                schema.keys.keyword(),
                keys.join(", ")
            ));
            if let Some(c) = &schema.comment {
                out.push_str(&format!("\nCOMMENT {}", sql::QuotedString(c)));
            }
            match &schema.partitioning {
                Partitioning::Unpartitioned => {}
                Partitioning::Range { columns } => out.push_str(&format!(
                    "\nPARTITION BY RANGE({}){}",
                    columns.join(", "),
                    partition_list()
                )),
                Partitioning::List { columns } => out.push_str(&format!(
                    "\nPARTITION BY LIST({}){}",
                    columns.join(", "),
                    partition_list()
                )),
                Partitioning::DateTrunc { unit, column } => {
                    out.push_str(&format!("\nPARTITION BY date_trunc('{unit}', {column})"))
                }
                Partitioning::Columns { columns } => {
                    out.push_str(&format!("\nPARTITION BY {}", columns.join(", ")))
                }
            }
            match &schema.distribution {
                catalog::Distribution::Hash { columns, buckets } => out.push_str(&format!(
                    "\nDISTRIBUTED BY HASH({}) BUCKETS {buckets}",
                    columns.join(", ")
                )),
                catalog::Distribution::Random { buckets } => {
                    out.push_str(&format!("\nDISTRIBUTED BY RANDOM BUCKETS {buckets}"))
                }
            }
            if !schema.properties.is_empty() {
                let props = schema
                    .properties
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{} = {}",
                            sql::QuotedString(k),
                            sql::QuotedString(&mask(k, v))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",\n  ");
                out.push_str(&format!("\nPROPERTIES (\n  {props}\n)"));
            }
            out
        }
    })
}
