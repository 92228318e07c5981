//! The embedded storage engine: the default "cluster" that backup reads and restore writes.
//!
//! A cluster is a directory:
//! ```text
//! <cluster>/catalog.db          SQLite catalog (WAL): every object, partition, tablet, rowset
//! <cluster>/data/<object id>/   immutable Parquet rowset files, named by the load that wrote them
//! ```
//! Data becomes visible only when the catalog transaction that names its files commits; files
//! that no committed rowset names (a crashed load, a retired rowset) are garbage that
//! [`maintenance::collect_garbage`] deletes unless a pin holds them.

pub mod ddl;
pub mod dml;
pub mod files;
pub mod fit;
pub mod guard;
pub mod information_schema;
pub mod load;
pub mod maintenance;
pub mod merge;
pub mod query;
pub mod rollup;
pub mod sorter;
pub mod storage;
pub mod types;

use crate::code::Code;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, CatalogError, DatabaseRow, ObjectRow};
use crate::sql::{Ident, Problem, QualifiedName, Span, closest};

/// An engine failure. `At` errors point into the statement being run; the session renders
/// them with its source text.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    #[error("{}", .0.message)]
    At(Box<Problem>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot access {path}: {source}")]
    #[diagnostic(code(srbackup::engine::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    #[diagnostic(code(srbackup::engine::data))]
    Arrow(String),
    #[error("{message}")]
    #[diagnostic(code(srbackup::engine::invalid))]
    Invalid {
        message: String,
        #[help]
        help: Option<String>,
    },
    #[error("query failed: {0}")]
    #[diagnostic(code(srbackup::engine::query))]
    Query(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    pub fn at(problem: Problem) -> Self {
        EngineError::At(Box::new(problem))
    }
    pub fn invalid(message: impl Into<String>, help: Option<&str>) -> Self {
        EngineError::Invalid {
            message: message.into(),
            help: help.map(str::to_string),
        }
    }
    pub fn parquet(path: &Path, e: impl std::fmt::Display) -> Self {
        EngineError::Arrow(format!("{}: {e}", path.display()))
    }
}

impl From<datafusion::error::DataFusionError> for EngineError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        // DataFusion wraps the interesting part; keep the whole chain on one line.
        EngineError::Query(e.to_string().replace('\n', " "))
    }
}

impl From<datafusion::arrow::error::ArrowError> for EngineError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        EngineError::Arrow(e.to_string())
    }
}

/// An open cluster.
pub struct Engine {
    root: PathBuf,
    catalog: Catalog,
    /// Which databases and objects `information_schema` shows (`None`: all): the session's
    /// privileges, set for each statement of a user who is not root.
    visible: Option<Visibility>,
}

/// Whether a database (`name: None`) or an object of it is visible to the session's user.
pub type Visibility = std::sync::Arc<dyn Fn(&str, Option<&str>) -> bool + Send + Sync>;

impl Engine {
    /// Opens the cluster in `root`, creating it on first use.
    pub fn open(root: &Path) -> Result<Engine> {
        // Only its owner may enter a cluster this creates (the catalog holds repository
        // settings, the data files the tables); an existing directory keeps its mode.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root.join("data"))
            .map_err(|e| EngineError::Io {
                path: root.to_path_buf(),
                source: e,
            })?;
        let root = root.canonicalize().map_err(|e| EngineError::Io {
            path: root.to_path_buf(),
            source: e,
        })?;
        let catalog = Catalog::open(&catalog_path(&root))?;
        let mut engine = Engine {
            root,
            catalog,
            visible: None,
        };
        // A load killed mid-way left files only this cleans up; best effort (a busy catalog
        // or a read-only directory leaves them for the next open).
        let _ = maintenance::collect_dead_loads(&mut engine);
        Ok(engine)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What `information_schema` shows from now on (see [`Visibility`]).
    pub fn set_visibility(&mut self, visible: Option<Visibility>) {
        self.visible = visible;
    }

    pub fn visibility(&self) -> Option<&Visibility> {
        self.visible.as_ref()
    }

    pub fn catalog(&mut self) -> &mut Catalog {
        &mut self.catalog
    }

    /// The absolute path of a cluster-relative file path stored in the catalog.
    pub fn file_path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Looks a database up by name, with a "did you mean" for a near miss.
    pub fn database(&self, name: &Ident) -> Result<DatabaseRow> {
        if let Some(db) = self.catalog.view().database(&name.value)? {
            return Ok(db);
        }
        let all = self.catalog.view().databases()?;
        let mut problem = Problem::new(
            Code::EngineUnknownDatabase,
            name.span,
            format!("unknown database {name}"),
        )
        .label("no such database");
        problem = match closest(&name.value, all.iter().map(|d| d.name.as_str())) {
            Some(s) => problem.help(format!("did you mean {s}?")),
            None if all.is_empty() => problem.help("the cluster has no databases yet"),
            None => problem.help(format!(
                "the databases are: {}",
                all.iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        Err(EngineError::at(problem))
    }

    /// The database a possibly unqualified name lives in.
    pub fn database_of(&self, name: &QualifiedName, current: Option<&str>) -> Result<DatabaseRow> {
        match (&name.database, current) {
            (Some(db), _) => self.database(db),
            (None, Some(db)) => self.database(&Ident {
                value: db.to_string(),
                span: name.name.span,
            }),
            (None, None) => Err(EngineError::at(
                Problem::new(
                    Code::EngineNoDatabase,
                    name.span(),
                    format!("{} names no database", name),
                )
                .label("which database?")
                .help(format!(
                    "qualify it (`db.{}`) or run `USE db` first",
                    name.name
                )),
            )),
        }
    }

    /// Looks an object (table, MV or view) up by name, with a "did you mean" for a near miss.
    pub fn object(
        &self,
        name: &QualifiedName,
        current: Option<&str>,
    ) -> Result<(DatabaseRow, ObjectRow)> {
        let db = self.database_of(name, current)?;
        if let Some(obj) = self.catalog.view().object(db.id, &name.name.value)? {
            return Ok((db, obj));
        }
        let all = self.catalog.view().objects(db.id)?;
        let mut problem = Problem::new(
            Code::EngineUnknownObject,
            name.name.span,
            format!(
                "unknown table {}.{}",
                crate::sql::QuotedIdent(&db.name),
                name.name
            ),
        )
        .label("not in this database");
        if let Some(s) = closest(&name.name.value, all.iter().map(|o| o.name.as_str())) {
            problem = problem.help(format!("did you mean {s}?"));
        }
        Err(EngineError::at(problem))
    }
}

/// Where a cluster's catalog file is.
pub fn catalog_path(cluster: &Path) -> PathBuf {
    cluster.join("catalog.db")
}

/// A problem at a span, as an error.
pub(crate) fn problem_at(code: Code, span: Span, message: impl Into<String>) -> EngineError {
    EngineError::at(Problem::new(code, span, message))
}
