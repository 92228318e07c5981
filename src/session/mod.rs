//! Runs parsed statements against a cluster: the `srbackup sql` loop.
//!
//! A session holds the open engine and the current database (`USE`). Each statement runs on
//! its own; a failing statement stops a script and its error points into the script's text.

pub mod accounts;
mod filter;
mod insert;
pub mod passwords;
pub mod privileges;
pub mod repositories;
mod rows;
pub mod schedules;
mod show;
mod show_create;

use crate::code::Code;
use std::path::Path;

use futures::StreamExt;

use crate::catalog::{JobKind, ObjectDef, ObjectKind};
use crate::engine::{Engine, EngineError, ddl, query};
use crate::error::{Error, Result};
use crate::results::{ColumnKind, Output, ResultSet, Sink};
use crate::sql::{self, SqlError, Statement};
pub use filter::{filter_rows, like};
use insert::insert;
use rows::column_kind;
pub use rows::result_set;

fn done(message: impl Into<String>) -> Output {
    Output::Done {
        message: message.into(),
        affected: None,
    }
}

pub struct Session {
    engine: Engine,
    current_db: Option<String>,
    progress: std::sync::Arc<dyn crate::exec::progress::Progress>,
    snapshot_time: Option<String>,
    /// Which local files FILES() reads and where local repositories may be created.
    paths: crate::config::PathPolicy,
    /// The user a server session acts for; `None`: a command on this machine, root.
    identity: Option<privileges::Identity>,
}

impl Session {
    pub fn open(cluster: &Path) -> Result<Session> {
        Ok(Session {
            engine: Engine::open(cluster)?,
            current_db: None,
            progress: std::sync::Arc::new(crate::exec::progress::Silent),
            snapshot_time: None,
            paths: crate::config::PathPolicy::Any,
            identity: None,
        })
    }

    /// Makes the session act for a logged-in user: every statement is checked against their
    /// privileges ([`Session::authorize`]).
    pub fn set_identity(&mut self, identity: privileges::Identity) {
        self.identity = Some(identity);
    }

    /// Makes the session act as root again (the scheduler, between runs of different owners).
    pub fn clear_identity(&mut self) {
        self.identity = None;
    }

    pub fn identity(&self) -> Option<&privileges::Identity> {
        self.identity.as_ref()
    }

    /// The one privilege check: what `stmt` needs (resolved against the catalog now) against
    /// what the session's user holds now. Nothing has been planned or touched when it refuses.
    pub fn authorize(&mut self, stmt: &Statement) -> Result<()> {
        // A role revoked since SET ROLE leaves the session's active set for good: granting
        // it again does not activate it behind the session's back (StarRocks).
        if let Some(id) = &mut self.identity
            && let privileges::ActiveRoles::Listed(list) = &mut id.roles
        {
            let granted =
                privileges::granted_roles(&self.engine.catalog().view(), &id.user, &id.host)?;
            list.retain(|r| granted.contains(r));
        }
        let current = self.current_db.clone();
        privileges::check(
            &mut self.engine,
            self.identity.as_ref(),
            stmt,
            current.as_deref(),
        )
    }

    /// [`Session::authorize`] for what a statement outside the grammar needs (the server's
    /// SHOW FRONTENDS, say).
    pub fn authorize_needs(&mut self, needs: &[privileges::Need]) -> Result<()> {
        if self.identity.is_none() {
            return Ok(());
        }
        privileges::effective(&self.engine.catalog().view(), self.identity.as_ref())?.check(needs)
    }

    /// An error as a non-root user may see it: "did you mean" hints and lists of names are
    /// dropped from unknown-name errors (they would name databases and tables SHOW hides).
    pub fn for_client(&mut self, e: Error) -> Error {
        if self.identity.is_none() {
            return e;
        }
        let root = privileges::effective(&self.engine.catalog().view(), self.identity.as_ref())
            .map(|eff| eff.root)
            .unwrap_or(false);
        match e {
            Error::At(mut p)
                if !root
                    && matches!(
                        p.code,
                        Code::EngineUnknownDatabase | Code::EngineUnknownObject
                    ) =>
            {
                p.help = None;
                Error::At(p)
            }
            other => other,
        }
    }

    /// The roles in effect, as CURRENT_ROLE() prints them (`NONE` for none).
    pub fn active_roles(&mut self) -> Result<String> {
        let eff = privileges::effective(&self.engine.catalog().view(), self.identity.as_ref())?;
        Ok(if eff.active.is_empty() {
            "NONE".to_string()
        } else {
            eff.active.join(", ")
        })
    }

    /// `'user'@'host'` of the session's user; empty for a local command.
    pub fn owner(&self) -> String {
        self.identity
            .as_ref()
            .map(privileges::Identity::quoted)
            .unwrap_or_default()
    }

    /// Limits the local paths the session's statements may use (a server's session acts for
    /// a remote user: see `PathPolicy`).
    pub fn set_path_policy(&mut self, paths: crate::config::PathPolicy) {
        self.paths = paths;
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
            .map(|f| column_kind(f.data_type()))
            .collect();
        sink.begin_rows(&q.text, &columns, &kinds);
        let mut total = 0u64;
        while let Some(batch) = stream.next().await {
            let rs = result_set(&schema, &[batch.map_err(EngineError::from)?])?;
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
            owner: "",
        };
        let outcome =
            crate::exec::run_statement(&mut self.engine, stmt, text, progress.as_ref(), options)
                .await?;
        if outcome.succeeded() {
            Ok(done(outcome.summary()))
        } else {
            Err(Error::invalid(outcome.summary(), None))
        }
    }

    pub async fn execute(&mut self, stmt: &Statement) -> Result<Output> {
        let current = self.current_db.clone();
        let current = current.as_deref();
        let identity = self.identity.clone();
        let mut filter = |engine: &mut Engine, job: &crate::catalog::JobRow| -> Result<bool> {
            let stmt = crate::plan::Plan::header_from_json(&job.plan)
                .ok()
                .and_then(|p| sql::parse(&p.statement).ok())
                .and_then(|mut s| (s.len() == 1).then(|| s.remove(0)));
            privileges::may_manage_job(engine, identity.as_ref(), &job.owner, stmt.as_ref())
        };
        let engine = &mut self.engine;
        Ok(match stmt {
            Statement::CreateDatabase(s) => created(ddl::create_database(engine, s)?, "database"),
            Statement::DropDatabase(s) => dropped(ddl::drop_database(engine, s)?, "database"),
            Statement::Use(s) => {
                let name = if s
                    .name
                    .value
                    .eq_ignore_ascii_case(crate::engine::information_schema::DATABASE)
                {
                    crate::engine::information_schema::DATABASE.to_string()
                } else {
                    engine.database(&s.name)?.name
                };
                let out = done(format!("Database changed to {name}"));
                self.current_db = Some(name);
                out
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
                ddl::alter_materialized_view(engine, s, current).await?;
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
                // A remote session reads no local repository through FILES(): its objects are
                // every user's data, its manifests may hold password hashes.
                let paths = self.paths.excluding(local_repository_dirs(engine)?);
                let rows = insert(engine, s, current, &paths).await?;
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
            Statement::Show(s) => {
                let hide = |engine: &mut Engine, rows: ResultSet| {
                    privileges::visible(engine, identity.as_ref(), &s.what, current, rows)
                };
                Output::Rows(show::run(engine, &s.what, current, &hide).await?)
            }
            Statement::Update(s) => {
                let rows = crate::engine::dml::update(engine, s, current).await?;
                Output::Done {
                    message: format!("Query OK, {rows} rows affected"),
                    affected: Some(rows),
                }
            }
            Statement::Delete(s) => {
                let rows = crate::engine::dml::delete(engine, s, current).await?;
                Output::Done {
                    message: format!("Query OK, {rows} rows affected"),
                    affected: Some(rows),
                }
            }
            Statement::CreateRepository(s) => repositories::create(engine, s, &self.paths).await?,
            Statement::DropRepository(s) => repositories::drop(engine, s)?,
            Statement::ShowRepositories(_) => Output::Rows(repositories::show(engine)?),
            Statement::ShowSnapshot(s) => {
                Output::Rows(repositories::show_snapshots(engine, s).await?)
            }
            Statement::DropSnapshot(s) => repositories::drop_snapshot(engine, s).await?,
            Statement::CreateSchedule(s) => {
                schedules::create(engine, s, self.identity.as_ref()).await?
            }
            Statement::ShowSchedules(_) => {
                Output::Rows(schedules::show(engine, self.identity.as_ref())?)
            }
            Statement::AlterSchedule(s) => schedules::alter(engine, s, self.identity.as_ref())?,
            Statement::Backup(_) | Statement::Restore(_) => {
                let text = stmt.to_string();
                return self.run_job(stmt, &text).await;
            }
            Statement::ShowBackup(s) => Output::Rows(crate::exec::jobs::show(
                engine,
                JobKind::Backup,
                s,
                current,
                &mut filter,
            )?),
            Statement::ShowRestore(s) => Output::Rows(crate::exec::jobs::show(
                engine,
                JobKind::Restore,
                s,
                current,
                &mut filter,
            )?),
            Statement::CancelBackup(s) => done(
                crate::exec::jobs::cancel(engine, JobKind::Backup, s, current, &mut filter).await?,
            ),
            Statement::CancelRestore(s) => done(
                crate::exec::jobs::cancel(engine, JobKind::Restore, s, current, &mut filter)
                    .await?,
            ),
            Statement::Account(a) => {
                let mut roles = identity
                    .as_ref()
                    .map(|i| i.roles.clone())
                    .unwrap_or(privileges::ActiveRoles::Default);
                let out = accounts::run(engine, identity.as_ref(), &mut roles, a)?;
                if let Some(id) = &mut self.identity {
                    id.roles = roles;
                }
                out
            }
        })
    }
}

/// A query the query layer refused (a type error, an unsupported construct) is reported
/// against the query's text.
fn at_query(e: EngineError, q: &sql::QueryText) -> EngineError {
    match e {
        EngineError::Query(message) => {
            EngineError::at(sql::Problem::new(Code::Query, q.span, message).label("in this query"))
        }
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
        if db.eq_ignore_ascii_case(crate::engine::information_schema::DATABASE) {
            if crate::engine::information_schema::table_names()
                .any(|t| t.eq_ignore_ascii_case(&table))
            {
                continue;
            }
            let at = q
                .text
                .find(&table)
                .map(|i| sql::Span::new(q.span.start + i, q.span.start + i + table.len()))
                .unwrap_or(q.span);
            return Err(EngineError::at(
                sql::Problem::new(
                    Code::EngineUnknownObject,
                    at,
                    format!("Unknown table 'information_schema.{table}'"),
                )
                .help(format!(
                    "information_schema has {}",
                    crate::engine::information_schema::table_names()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            )
            .into());
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

/// The directories of the cluster's local repositories.
fn local_repository_dirs(engine: &mut Engine) -> Result<Vec<std::path::PathBuf>> {
    Ok(engine
        .catalog()
        .view()
        .repositories()?
        .into_iter()
        .filter_map(|r| {
            let path = if r.location.to_ascii_lowercase().starts_with("file://") {
                &r.location["file://".len()..]
            } else {
                r.location.as_str()
            };
            path.starts_with('/')
                .then(|| std::path::PathBuf::from(path))
        })
        .collect())
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

/// Renders an error; positioned ones point into the statement text.
pub fn render(e: Error, name: &str, src: &str) -> miette::Report {
    match e {
        Error::At(problem) => miette::Report::new(SqlError::new(vec![*problem], name, src)),
        other => miette::Report::new(other),
    }
}
