//! SELECT through DataFusion over exactly the visible rowsets.
//!
//! A query gets a fresh `SessionContext` in which every table it names (and every table the
//! views it names read) is registered from one catalog read transaction: the exact list of live
//! rowset files at that moment. Uncommitted or garbage files are never seen, and a load that
//! commits mid-query is not seen either: the query reads one version.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::catalog::{MemorySchemaProvider, Session, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableType, ViewTable};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use super::types::arrow_schema;
use super::{Engine, EngineError, Result};
use crate::catalog::ObjectDef;

/// DataFusion's name for the catalog that holds one schema per srbackup database.
pub const DF_CATALOG: &str = "srbackup";

/// A table or MV as of one catalog read: its schema and live rowset files.
#[derive(Debug)]
pub struct RowsetTable {
    schema: SchemaRef,
    /// Absolute paths and sizes.
    files: Vec<(String, u64)>,
}

#[async_trait]
impl TableProvider for RowsetTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        // Spread files over the session's target partitions for parallel scans.
        let parts = state.config().target_partitions().max(1);
        let mut groups: Vec<Vec<PartitionedFile>> = (0..parts.min(self.files.len()))
            .map(|_| Vec::new())
            .collect();
        for (i, (path, size)) in self.files.iter().enumerate() {
            let n = groups.len();
            groups[i % n].push(PartitionedFile::new(path.trim_start_matches('/'), *size));
        }
        let source = Arc::new(ParquetSource::new(self.schema.clone()));
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

/// A query context over the cluster, with `current_db` as the default schema.
pub fn new_context(current_db: Option<&str>) -> SessionContext {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(DF_CATALOG, current_db.unwrap_or("default"))
        .with_information_schema(false)
        .set_str("datafusion.sql_parser.dialect", "MySQL");
    // Decimal literals stay DataFusion's DOUBLE: with `parse_float_as_decimal` DataFusion
    // compares a DOUBLE column with `0.1` as DECIMAL (wrong matches, and a cast error for
    // values past the literal's precision); MySQL compares such pairs as DOUBLE. The cost: a
    // DECIMAL column of more than 15 significant digits compared with a literal compares
    // rounded (quote the literal to compare exactly).
    let ctx = SessionContext::new_with_config(config);
    let catalog = Arc::new(datafusion::catalog::MemoryCatalogProvider::new());
    ctx.register_catalog(DF_CATALOG, catalog);
    ctx
}

/// What to register for one name: a table's files, or a view to plan.
enum Spec {
    Rowsets(RowsetTable),
    View { sql: String, columns: Vec<String> },
}

/// Registers, from one catalog read, every table, MV and view that `sql` names (recursively
/// through views), and the `information_schema` tables it names; whether it names any of
/// those. Unknown names are left for DataFusion to report.
pub async fn register_referenced(
    engine: &mut Engine,
    ctx: &SessionContext,
    sql: &str,
    current_db: Option<&str>,
) -> Result<bool> {
    let root = engine.root().to_path_buf();
    let refs = referenced_tables(sql, current_db)?;
    let mut specs = Vec::new();
    engine.catalog().read(|conn| {
        let mut seen = HashSet::new();
        collect_specs(conn, &root, refs.clone(), &mut seen, 0, &mut specs)
    })?;
    // Dependencies come first in `specs`, so a view's tables exist when it is planned.
    for (db, name, spec) in specs {
        ensure_schema(ctx, &db)?;
        let provider: Arc<dyn TableProvider> = match spec {
            Spec::Rowsets(table) => Arc::new(table),
            Spec::View { sql, columns } => {
                let mut state = ctx.state();
                state.config_mut().options_mut().catalog.default_schema = db.clone();
                let mut plan = state.create_logical_plan(&sql).await?;
                if !columns.is_empty() {
                    // `CREATE VIEW v (a, b) AS ...` renames the query's columns.
                    let renamed = plan
                        .schema()
                        .columns()
                        .into_iter()
                        .zip(&columns)
                        .map(|(c, name)| Expr::Column(c).alias(name))
                        .collect::<Vec<_>>();
                    plan = LogicalPlanBuilder::from(plan).project(renamed)?.build()?;
                }
                Arc::new(ViewTable::new(plan, Some(sql)))
            }
        };
        ctx.register_table(
            TableReference::partial(db.as_str(), name.as_str()),
            provider,
        )?;
    }
    register_information_schema(engine, ctx, &refs).await
}

/// Registers the `information_schema` tables `sql` reads; whether it reads any.
async fn register_information_schema(
    engine: &mut Engine,
    ctx: &SessionContext,
    refs: &[(String, String)],
) -> Result<bool> {
    use super::information_schema as is;
    let mut any = false;
    for (db, table) in refs {
        if !db.eq_ignore_ascii_case(is::DATABASE) {
            continue;
        }
        let Some((schema, batch)) = is::build(engine, table).await? else {
            continue; // DataFusion names the unknown table
        };
        ensure_schema(ctx, db)?;
        let table_ref = TableReference::partial(db.as_str(), table.as_str());
        ctx.register_table(
            table_ref,
            Arc::new(datafusion::datasource::MemTable::try_new(
                schema,
                vec![vec![batch]],
            )?),
        )?;
        any = true;
    }
    Ok(any)
}

/// `t PARTITION (p)` in a query: the query layer would read every partition (wrong rows, no
/// error), so it is refused and the way to say it is given.
fn refuse_partition_clauses(stmt: &datafusion::sql::parser::Statement) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{TableFactor, Visit, Visitor};
    use std::ops::ControlFlow;
    struct Partitions;
    impl Visitor for Partitions {
        type Break = String;
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<String> {
            match t {
                TableFactor::Table {
                    name, partitions, ..
                } if !partitions.is_empty() => ControlFlow::Break(name.to_string()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    if let datafusion::sql::parser::Statement::Statement(s) = stmt
        && let ControlFlow::Break(table) = s.visit(&mut Partitions)
    {
        return Err(EngineError::Query(format!(
            "{table} PARTITION (…) is not supported in a query: filter on the partitioning column instead (SHOW PARTITIONS FROM {table} gives each partition's range)"
        )));
    }
    Ok(())
}

/// The `db.table` names a query reads, with CTE names left out (sqlparser underneath).
pub fn referenced_tables(sql: &str, current_db: Option<&str>) -> Result<Vec<(String, String)>> {
    check_size(sql)?;
    let ctx = new_context(current_db);
    let state = ctx.state();
    let stmt = state.sql_to_statement(sql, &datafusion::config::Dialect::MySQL)?;
    refuse_partition_clauses(&stmt)?;
    let refs = state.resolve_table_references(&stmt)?;
    let default = current_db.unwrap_or("default").to_string();
    let mut out: Vec<(String, String)> = refs
        .into_iter()
        .map(|r| {
            let db = r
                .schema()
                .map(str::to_string)
                .unwrap_or_else(|| default.clone());
            (db, r.table().to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn collect_specs(
    conn: &crate::catalog::Reader<'_>,
    root: &std::path::Path,
    refs: Vec<(String, String)>,
    seen: &mut HashSet<(String, String)>,
    depth: usize,
    specs: &mut Vec<(String, String, Spec)>,
) -> std::result::Result<(), EngineError> {
    if depth > 32 {
        return Err(EngineError::invalid(
            "views nest more than 32 deep (a cycle?)",
            None,
        ));
    }
    for (db, table) in refs {
        if !seen.insert((db.clone(), table.clone())) {
            continue;
        }
        let Some(db_row) = conn.database(&db)? else {
            continue;
        };
        let Some(obj) = conn.object(db_row.id, &table)? else {
            // A synchronous MV: its rollup rowsets, combined.
            if let Some((base, rollup)) = find_rollup(conn, db_row.id, &table)? {
                let files = conn
                    .rollup_rowsets(base, &rollup.name)?
                    .into_iter()
                    .map(|r| {
                        (
                            root.join(&r.path).to_string_lossy().into_owned(),
                            r.bytes as u64,
                        )
                    })
                    .collect();
                let raw = format!("__srbackup_rollup_{table}");
                specs.push((
                    db.clone(),
                    raw.clone(),
                    Spec::Rowsets(RowsetTable {
                        schema: arrow_schema(&rollup.schema),
                        files,
                    }),
                ));
                specs.push((
                    db,
                    table,
                    Spec::View {
                        sql: super::rollup::combine_sql(&rollup, &raw),
                        columns: Vec::new(),
                    },
                ));
            }
            continue;
        };
        let spec = match &obj.def {
            ObjectDef::Table { schema, .. } | ObjectDef::MaterializedView { schema, .. } => {
                let files = conn
                    .object_rowsets(obj.id)?
                    .into_iter()
                    .map(|r| {
                        (
                            root.join(&r.path).to_string_lossy().into_owned(),
                            r.bytes as u64,
                        )
                    })
                    .collect();
                Spec::Rowsets(RowsetTable {
                    schema: arrow_schema(schema),
                    files,
                })
            }
            ObjectDef::View {
                sql: view_sql,
                columns,
                ..
            } => {
                // A view's names resolve in its own database.
                let inner = referenced_tables(view_sql, Some(&db))?;
                collect_specs(conn, root, inner, seen, depth + 1, specs)?;
                Spec::View {
                    sql: view_sql.clone(),
                    columns: columns.clone(),
                }
            }
        };
        specs.push((db, table, spec));
    }
    Ok(())
}

/// The table holding a synchronous MV of this name, and the MV's definition.
fn find_rollup(
    conn: &crate::catalog::Reader<'_>,
    db_id: i64,
    name: &str,
) -> crate::catalog::Result<Option<(i64, crate::catalog::RollupDef)>> {
    for obj in conn.objects(db_id)? {
        if let ObjectDef::Table { rollups, .. } = &obj.def
            && let Some(r) = rollups.iter().find(|r| r.name == name)
        {
            return Ok(Some((obj.id, r.clone())));
        }
    }
    Ok(None)
}

/// The most operators one statement may hold. A chain `a + b + … + z` is a tree as deep as it
/// is long, and planning it recurses that deep; past this a query is refused before it is
/// parsed. Measured (debug build): DataFusion plans 1,000 on an 8 MiB stack and overflows at
/// 1,500 (its column naming is not stack-protected); statements run on threads of
/// [`STATEMENT_STACK`].
pub const MAX_OPERATORS: usize = 1000;

/// The stack of every thread that plans statements (the CLI's runtime, the server's sessions and
/// jobs): room for [`MAX_OPERATORS`] many times over.
pub const STATEMENT_STACK: usize = 32 * 1024 * 1024;

/// Refuses a statement whose expressions are too large to plan safely ([`MAX_OPERATORS`]),
/// counting operator tokens without parsing (the tokenizer does not recurse).
pub fn check_size(sql: &str) -> Result<()> {
    use datafusion::sql::sqlparser::dialect::MySqlDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&MySqlDialect {}, sql).tokenize() else {
        return Ok(()); // not SQL at all: the parser says why
    };
    let operators = tokens
        .iter()
        .filter(|t| match t {
            Token::Word(w) => matches!(
                w.keyword,
                Keyword::AND
                    | Keyword::OR
                    | Keyword::XOR
                    | Keyword::NOT
                    | Keyword::IS
                    | Keyword::LIKE
                    | Keyword::ILIKE
                    | Keyword::RLIKE
                    | Keyword::REGEXP
                    | Keyword::BETWEEN
                    | Keyword::IN
                    | Keyword::DIV
                    | Keyword::MOD
                    | Keyword::COLLATE
            ),
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::StringConcat
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::ShiftLeft
            | Token::ShiftRight => true,
            _ => false,
        })
        .count();
    if operators > MAX_OPERATORS {
        return Err(EngineError::Query(format!(
            "the statement has {operators} operators; at most {MAX_OPERATORS} are planned (split the expression, or use IN (...) for long lists of alternatives)"
        )));
    }
    Ok(())
}

pub(crate) fn ensure_schema(ctx: &SessionContext, db: &str) -> Result<()> {
    let catalog = ctx
        .catalog(DF_CATALOG)
        .ok_or_else(|| EngineError::Query("query catalog missing".into()))?;
    if catalog.schema(db).is_none() {
        catalog.register_schema(db, Arc::new(MemorySchemaProvider::new()))?;
    }
    Ok(())
}

/// Runs a query and streams its result.
pub async fn run(
    engine: &mut Engine,
    sql: &str,
    current_db: Option<&str>,
) -> Result<(SchemaRef, SendableRecordBatchStream)> {
    check_size(sql)?;
    let ctx = new_context(current_db);
    if let Some(db) = current_db {
        ensure_schema(&ctx, db)?;
    }
    let system = register_referenced(engine, &ctx, sql, current_db).await?;
    let rewritten;
    let sql = if system {
        rewritten = super::information_schema::exact_column_names(sql)?;
        rewritten.as_str()
    } else {
        sql
    };
    let df = ctx.sql(sql).await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await?;
    Ok((schema, stream))
}

/// Runs a query and collects its result.
pub async fn collect(
    engine: &mut Engine,
    sql: &str,
    current_db: Option<&str>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let (schema, mut stream) = run(engine, sql, current_db).await?;
    let mut out = Vec::new();
    while let Some(b) = stream.next().await {
        out.push(b?);
    }
    Ok((schema, out))
}

/// An order-independent content checksum of a table (CHECKSUM TABLE): the wrapping sum of a
/// XXH3-64 of every row's encoding, so equal content gives an equal sum whatever the
/// order, file layout or compaction, and any changed row changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checksum {
    pub rows: u64,
    pub sum: u64,
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.sum)
    }
}

pub async fn checksum(engine: &mut Engine, db: &str, table: &str) -> Result<Checksum> {
    let sql = format!(
        "SELECT * FROM {}.{}",
        crate::sql::QuotedIdent(db),
        crate::sql::QuotedIdent(table)
    );
    let (schema, stream) = run(engine, &sql, Some(db)).await?;
    sum_rows(schema, stream).await
}

/// [`checksum`] of the rows one rowset file holds, read as a table of `schema` reads it. The
/// sum is additive: a table's checksum is the wrapping sum of its rowsets', which is how a
/// backup records each table's without reading a rowset twice (`exec` keeps them by file).
pub async fn rowset_checksum(
    schema: &crate::catalog::TableSchema,
    path: &std::path::Path,
    bytes: u64,
) -> Result<Checksum> {
    let ctx = new_context(None);
    let table = RowsetTable {
        schema: arrow_schema(schema),
        files: vec![(path.to_string_lossy().into_owned(), bytes)],
    };
    let df = ctx.read_table(Arc::new(table))?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await?;
    sum_rows(schema, stream).await
}

async fn sum_rows(
    schema: SchemaRef,
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
) -> Result<Checksum> {
    let converter = RowConverter::new(
        schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    )?;
    let mut rows = 0u64;
    let mut sum = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let encoded = converter.convert_columns(batch.columns())?;
        for row in encoded.iter() {
            sum = sum.wrapping_add(twox_hash::XxHash3_64::oneshot(row.as_ref()));
            rows += 1;
        }
    }
    Ok(Checksum { rows, sum })
}
