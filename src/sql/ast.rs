//! The typed tree of a statement.
//!
//! Both StarRocks syntaxes produce the same tree; only [`Backup::syntax`] and
//! [`Restore::syntax`] record which one was written. Source positions live only in fields named
//! `span`, and [`Span`] compares equal to every other span, so two trees that differ only in
//! where they were written compare equal (the approach sqlparser-rs takes with its tokens).
//! Names and literals serialize as plain strings: the JSON/YAML form is what a reviewer reads.

use serde::ser::{Serialize, SerializeMap, Serializer};

pub use super::ddl::*;

/// A byte range in the parsed input. Equality ignores it (see the module docs).
#[derive(Clone, Copy, Debug, Default, Eq, serde::Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start, span.len()).into()
    }
}

/// A name as the user wrote it, unquoted (`` `a``b` `` becomes ``a`b``).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub value: String,
    pub span: Span,
}

impl Ident {
    pub fn new(value: impl Into<String>) -> Self {
        Ident {
            value: value.into(),
            span: Span::default(),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl Serialize for Ident {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

/// A string literal, unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    pub value: String,
    pub span: Span,
}

impl Literal {
    pub fn new(value: impl Into<String>) -> Self {
        Literal {
            value: value.into(),
            span: Span::default(),
        }
    }
}

impl Serialize for Literal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

/// `name` or `db.name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QualifiedName {
    pub database: Option<Ident>,
    pub name: Ident,
}

impl QualifiedName {
    pub fn unqualified(name: Ident) -> Self {
        QualifiedName {
            database: None,
            name,
        }
    }
    pub fn span(&self) -> Span {
        let start = self.database.as_ref().unwrap_or(&self.name).span.start;
        Span::new(start, self.name.span.end)
    }
}

impl Serialize for QualifiedName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// `PROPERTIES ("k" = "v", ...)`, in the order written. Keys are unique (checked by validation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties(pub Vec<Property>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub key: Literal,
    pub value: Literal,
}

impl Properties {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).map(|p| p.value.value.as_str())
    }
    pub fn find(&self, key: &str) -> Option<&Property> {
        self.0
            .iter()
            .find(|p| p.key.value.eq_ignore_ascii_case(key))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Property> {
        self.0.iter()
    }
}

/// What a masked secret looks like wherever srbackup prints properties.
pub const MASK: &str = "******";

/// Whether a property key names a credential (access keys, passwords, tokens...), whose value
/// must never be printed, logged or written into a plan.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "access_key",
        "access.key",
        "accesskey",
        "private_key",
        "private.key",
        "sas",
    ]
    .iter()
    .any(|word| key.contains(word))
        // A misspelled credential key ("aws.s3.acess_key") is still a credential.
        || key.ends_with("_key")
        || key.ends_with(".key")
}

/// Serialized with secrets masked: the serialized tree is for people and logs. The canonical
/// SQL (`Display`) keeps the real values so that a statement can be re-run.
impl Serialize for Properties {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for p in &self.0 {
            let value = if is_secret_key(&p.key.value) {
                MASK
            } else {
                p.value.value.as_str()
            };
            map.serialize_entry(&p.key.value, value)?;
        }
        map.end()
    }
}

/// Which of StarRocks' two BACKUP/RESTORE syntaxes a statement was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Syntax {
    /// `BACKUP DATABASE db SNAPSHOT name ...`, `RESTORE ... DATABASE db [AS new]`, catalogs.
    V3_4,
    /// `BACKUP SNAPSHOT db.name ...`, `RESTORE SNAPSHOT db.name ...`.
    Legacy,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "statement", rename_all = "snake_case")]
pub enum Statement {
    CreateRepository(CreateRepository),
    DropRepository(DropRepository),
    ShowRepositories(ShowRepositories),
    Backup(Backup),
    Restore(Restore),
    ShowBackup(ShowJobs),
    ShowRestore(ShowJobs),
    CancelBackup(CancelJob),
    CancelRestore(CancelJob),
    ShowSnapshot(ShowSnapshot),
    DropSnapshot(DropSnapshot),
    CreateSchedule(CreateSchedule),
    ShowSchedules(ShowSchedules),
    /// PAUSE, RESUME or DROP SCHEDULE.
    AlterSchedule(AlterSchedule),
    // The embedded engine's statements (see `ddl.rs`).
    CreateDatabase(CreateDatabase),
    DropDatabase(DropDatabase),
    Use(UseDatabase),
    CreateTable(CreateTable),
    DropTable(DropObject),
    TruncateTable(TruncateTable),
    AlterTable(AlterTable),
    CreateMaterializedView(CreateMaterializedView),
    AlterMaterializedView(AlterMaterializedView),
    RefreshMaterializedView(RefreshMaterializedView),
    DropMaterializedView(DropObject),
    CreateView(CreateView),
    DropView(DropObject),
    CreateFunction(CreateFunction),
    DropFunction(DropFunction),
    CreateCatalog(CreateCatalog),
    DropCatalog(DropCatalog),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    ChecksumTable(ChecksumTable),
    Show(ShowObjects),
    Query(QueryText),
    /// Users, roles, GRANT/REVOKE (see `accounts.rs`).
    Account(super::accounts::AccountStatement),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CreateRepository {
    pub read_only: bool,
    pub name: Ident,
    /// The name after `WITH BROKER` (StarRocks requires the words, the name is optional); `None`
    /// for a repository read and written directly (the usual case).
    pub broker: Option<Literal>,
    pub location: Literal,
    pub properties: Properties,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DropRepository {
    pub name: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShowRepositories {
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Backup {
    pub syntax: Syntax,
    /// `None` only when the statement names no database at all (`BACKUP SNAPSHOT s TO r` or a
    /// catalog-only backup); the planner decides whether that is an error.
    pub database: Option<Ident>,
    pub snapshot: Ident,
    pub repository: Ident,
    pub external_catalogs: Option<CatalogSelection>,
    /// The ON (...) list; empty means "everything in the database".
    pub on: Vec<ObjectRef>,
    pub properties: Properties,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Restore {
    pub syntax: Syntax,
    pub snapshot: Ident,
    pub repository: Ident,
    pub external_catalogs: Option<CatalogSelection>,
    /// The database in the snapshot and, with `AS`, the database to restore it into.
    pub database: Option<DatabaseRef>,
    pub on: Vec<ObjectRef>,
    pub properties: Properties,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DatabaseRef {
    pub name: Ident,
    pub alias: Option<Ident>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "select", content = "catalogs", rename_all = "snake_case")]
pub enum CatalogSelection {
    All,
    Named(Vec<CatalogRef>),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CatalogRef {
    pub name: Ident,
    pub alias: Option<Ident>,
}

/// One item of an ON (...) list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectRef {
    Table {
        name: QualifiedName,
        partitions: Vec<Literal>,
        alias: Option<Ident>,
    },
    MaterializedView {
        name: QualifiedName,
        alias: Option<Ident>,
    },
    View {
        name: QualifiedName,
        alias: Option<Ident>,
    },
    Function {
        name: QualifiedName,
        alias: Option<Ident>,
    },
    All {
        of: ObjectKind,
        /// Always `None` in a valid statement; kept so validation can point at it.
        #[serde(skip_serializing_if = "Option::is_none")]
        alias: Option<Ident>,
        span: Span,
    },
}

impl ObjectRef {
    pub fn kind(&self) -> ObjectKind {
        match self {
            ObjectRef::Table { .. } => ObjectKind::Tables,
            ObjectRef::MaterializedView { .. } => ObjectKind::MaterializedViews,
            ObjectRef::View { .. } => ObjectKind::Views,
            ObjectRef::Function { .. } => ObjectKind::Functions,
            ObjectRef::All { of, .. } => *of,
        }
    }
    pub fn name(&self) -> Option<&QualifiedName> {
        match self {
            ObjectRef::Table { name, .. }
            | ObjectRef::MaterializedView { name, .. }
            | ObjectRef::View { name, .. }
            | ObjectRef::Function { name, .. } => Some(name),
            ObjectRef::All { .. } => None,
        }
    }
    pub fn alias(&self) -> Option<&Ident> {
        match self {
            ObjectRef::Table { alias, .. }
            | ObjectRef::MaterializedView { alias, .. }
            | ObjectRef::View { alias, .. }
            | ObjectRef::Function { alias, .. }
            | ObjectRef::All { alias, .. } => alias.as_ref(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Tables,
    MaterializedViews,
    Views,
    Functions,
}

impl ObjectKind {
    /// The singular word a user would write for one object of this kind.
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Tables => "table",
            ObjectKind::MaterializedViews => "materialized view",
            ObjectKind::Views => "view",
            ObjectKind::Functions => "function",
        }
    }
}

/// `SHOW BACKUP` / `SHOW RESTORE`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShowJobs {
    pub database: Option<Ident>,
    /// A conjunction of conditions on the output columns.
    pub filter: Vec<Predicate>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Predicate {
    pub column: Ident,
    pub op: CompareOp,
    pub values: Vec<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Eq,
    NotEq,
    Like,
    In,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    String(Literal),
    Number(Literal),
}

impl Value {
    pub fn as_str(&self) -> &str {
        match self {
            Value::String(l) | Value::Number(l) => &l.value,
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CancelJob {
    pub target: CancelTarget,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "of", content = "database", rename_all = "snake_case")]
pub enum CancelTarget {
    /// No FROM clause: the session's current database.
    Current,
    Database(Ident),
    ExternalCatalog,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShowSnapshot {
    pub repository: Ident,
    /// `WHERE SNAPSHOT = "s"` or `WHERE SNAPSHOT IN (...)`; empty lists every snapshot.
    pub snapshots: Vec<Literal>,
    pub timestamp: Option<Literal>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DropSnapshot {
    pub snapshot: Ident,
    pub repository: Ident,
    pub force: bool,
    pub span: Span,
}

/// `CREATE SCHEDULE name FOR BACKUP ... | DRILL ... RECURRING 'cron' [WITH RETENTION 'policy']`
/// (CockroachDB's statement, for srbackup's jobs).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CreateSchedule {
    pub name: Ident,
    pub if_not_exists: bool,
    pub job: ScheduledJob,
    /// A crontab (5 fields, or 6 with seconds first) or a nickname such as `@daily`, in UTC.
    pub recurrence: Literal,
    /// Restic-style rules (`keep-daily=7, keep-weekly=4`) applied to the schedule's label after
    /// each successful backup.
    pub retention: Option<Literal>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduledJob {
    Backup(Box<Backup>),
    /// `DRILL ON repo [SNAPSHOT label]`: a restore drill of the newest snapshot (of the label).
    Drill {
        repository: Ident,
        snapshot: Option<Ident>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShowSchedules {
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleAction {
    Pause,
    Resume,
    Drop { if_exists: bool },
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AlterSchedule {
    pub action: ScheduleAction,
    pub name: Ident,
    pub span: Span,
}

impl Statement {
    pub fn span(&self) -> Span {
        match self {
            Statement::CreateSchedule(s) => s.span,
            Statement::ShowSchedules(s) => s.span,
            Statement::AlterSchedule(s) => s.span,
            Statement::CreateRepository(s) => s.span,
            Statement::DropRepository(s) => s.span,
            Statement::ShowRepositories(s) => s.span,
            Statement::Backup(s) => s.span,
            Statement::Restore(s) => s.span,
            Statement::ShowBackup(s) | Statement::ShowRestore(s) => s.span,
            Statement::CancelBackup(s) | Statement::CancelRestore(s) => s.span,
            Statement::ShowSnapshot(s) => s.span,
            Statement::DropSnapshot(s) => s.span,
            Statement::CreateDatabase(s) => s.span,
            Statement::DropDatabase(s) => s.span,
            Statement::Use(s) => s.span,
            Statement::CreateTable(s) => s.span,
            Statement::DropTable(s)
            | Statement::DropMaterializedView(s)
            | Statement::DropView(s) => s.span,
            Statement::TruncateTable(s) => s.span,
            Statement::AlterTable(s) => s.span,
            Statement::CreateMaterializedView(s) => s.span,
            Statement::AlterMaterializedView(s) => s.span,
            Statement::RefreshMaterializedView(s) => s.span,
            Statement::CreateView(s) => s.span,
            Statement::CreateFunction(s) => s.span,
            Statement::DropFunction(s) => s.span,
            Statement::CreateCatalog(s) => s.span,
            Statement::DropCatalog(s) => s.span,
            Statement::Insert(s) => s.span,
            Statement::Update(s) => s.span,
            Statement::Delete(s) => s.span,
            Statement::ChecksumTable(s) => s.span,
            Statement::Show(s) => s.span,
            Statement::Query(s) => s.span,
            Statement::Account(s) => s.span(),
        }
    }
}
