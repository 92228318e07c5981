//! Canonical SQL for every AST node: upper-case keywords, one line, names back-quoted only when
//! they must be, strings double-quoted. `parse(stmt.to_string())` gives back an equal tree, and a
//! statement keeps the syntax (v3.4 or legacy) it was written in.

use std::fmt::{self, Display, Formatter};

use super::ast::*;

/// Words a plain identifier may not be (kept in step with `reserved` in grammar/lexical.pest;
/// `tests/parser.rs` checks that every one of them is refused unquoted).
pub const RESERVED_WORDS: &[&str] = &[
    "ALL",
    "AND",
    "AS",
    "CREATE",
    "DATABASE",
    "DROP",
    "FOR",
    "FROM",
    "FUNCTION",
    "IN",
    "LIKE",
    "ON",
    "PARTITION",
    "SHOW",
    "TABLE",
    "TO",
    "WHERE",
    "WITH",
];

pub fn is_reserved(word: &str) -> bool {
    RESERVED_WORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !is_reserved(name)
}

/// Writes a name, back-quoting it (and doubling inner back-quotes) when it is not a plain word.
pub struct QuotedIdent<'a>(pub &'a str);

impl Display for QuotedIdent<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if is_plain_identifier(self.0) {
            f.write_str(self.0)
        } else {
            write!(f, "`{}`", self.0.replace('`', "``"))
        }
    }
}

/// Writes a double-quoted string literal with backslash escapes.
pub struct QuotedString<'a>(pub &'a str);

impl Display for QuotedString<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\0' => f.write_str("\\0")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl Display for Ident {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        QuotedIdent(&self.value).fmt(f)
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        QuotedString(&self.value).fmt(f)
    }
}

impl Display for QualifiedName {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(db) = &self.database {
            write!(f, "{db}.")?;
        }
        self.name.fmt(f)
    }
}

impl Display for Properties {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("PROPERTIES (")?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} = {}", p.key, p.value)?;
        }
        f.write_str(")")
    }
}

fn write_alias(f: &mut Formatter<'_>, alias: &Option<Ident>) -> fmt::Result {
    match alias {
        Some(a) => write!(f, " AS {a}"),
        None => Ok(()),
    }
}

fn write_list<T>(
    f: &mut Formatter<'_>,
    items: &[T],
    mut item: impl FnMut(&mut Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item(f, x)?;
    }
    Ok(())
}

/// An ON-list item in the given syntax: legacy statements name tables bare, as StarRocks 3.3 did.
struct OnItem<'a>(&'a ObjectRef, Syntax);

impl Display for OnItem<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            ObjectRef::Table {
                name,
                partitions,
                alias,
            } => {
                if self.1 == Syntax::V3_4 {
                    f.write_str("TABLE ")?;
                }
                write!(f, "{name}")?;
                if !partitions.is_empty() {
                    f.write_str(" PARTITION (")?;
                    write_list(f, partitions, |f, p| QuotedIdent(&p.value).fmt(f))?;
                    f.write_str(")")?;
                }
                write_alias(f, alias)
            }
            ObjectRef::MaterializedView { name, alias } => {
                write!(f, "MATERIALIZED VIEW {name}")?;
                write_alias(f, alias)
            }
            ObjectRef::View { name, alias } => {
                write!(f, "VIEW {name}")?;
                write_alias(f, alias)
            }
            ObjectRef::Function { name, alias } => {
                write!(f, "FUNCTION {name}")?;
                write_alias(f, alias)
            }
            ObjectRef::All { of, alias, .. } => {
                f.write_str(match of {
                    ObjectKind::Tables => "ALL TABLES",
                    ObjectKind::MaterializedViews => "ALL MATERIALIZED VIEWS",
                    ObjectKind::Views => "ALL VIEWS",
                    ObjectKind::Functions => "ALL FUNCTIONS",
                })?;
                write_alias(f, alias)
            }
        }
    }
}

fn write_on(f: &mut Formatter<'_>, on: &[ObjectRef], syntax: Syntax) -> fmt::Result {
    if on.is_empty() {
        return Ok(());
    }
    f.write_str(" ON (")?;
    write_list(f, on, |f, item| OnItem(item, syntax).fmt(f))?;
    f.write_str(")")
}

fn write_properties(f: &mut Formatter<'_>, properties: &Properties) -> fmt::Result {
    if properties.is_empty() {
        Ok(())
    } else {
        write!(f, " {properties}")
    }
}

fn write_catalogs(f: &mut Formatter<'_>, selection: &CatalogSelection) -> fmt::Result {
    match selection {
        CatalogSelection::All => f.write_str("ALL EXTERNAL CATALOGS"),
        CatalogSelection::Named(list) => {
            let word = if list.len() == 1 {
                "CATALOG"
            } else {
                "CATALOGS"
            };
            write!(f, "EXTERNAL {word} (")?;
            write_list(f, list, |f, c| {
                write!(f, "{}", c.name)?;
                write_alias(f, &c.alias)
            })?;
            f.write_str(")")
        }
    }
}

impl Display for Backup {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("BACKUP ")?;
        if let Some(catalogs) = &self.external_catalogs {
            write_catalogs(f, catalogs)?;
            f.write_str(" ")?;
        }
        match (self.syntax, &self.database) {
            (Syntax::V3_4, Some(db)) => write!(f, "DATABASE {db} SNAPSHOT {}", self.snapshot)?,
            (Syntax::Legacy, Some(db)) => write!(f, "SNAPSHOT {db}.{}", self.snapshot)?,
            (_, None) => write!(f, "SNAPSHOT {}", self.snapshot)?,
        }
        write!(f, " TO {}", self.repository)?;
        write_on(f, &self.on, self.syntax)?;
        write_properties(f, &self.properties)
    }
}

impl Display for Restore {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("RESTORE SNAPSHOT ")?;
        if let (Syntax::Legacy, Some(db)) = (self.syntax, &self.database) {
            write!(f, "{}.", db.name)?;
        }
        write!(f, "{} FROM {}", self.snapshot, self.repository)?;
        if let Some(catalogs) = &self.external_catalogs {
            f.write_str(" ")?;
            write_catalogs(f, catalogs)?;
        }
        if let (Syntax::V3_4, Some(db)) = (self.syntax, &self.database) {
            write!(f, " DATABASE {}", db.name)?;
            write_alias(f, &db.alias)?;
        }
        write_on(f, &self.on, self.syntax)?;
        write_properties(f, &self.properties)
    }
}

impl Display for Predicate {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.column)?;
        match self.op {
            CompareOp::Eq => write!(f, "= {}", self.values[0]),
            CompareOp::NotEq => write!(f, "!= {}", self.values[0]),
            CompareOp::Like => write!(f, "LIKE {}", self.values[0]),
            CompareOp::In => {
                f.write_str("IN (")?;
                write_list(f, &self.values, |f, v| v.fmt(f))?;
                f.write_str(")")
            }
        }
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => s.fmt(f),
            Value::Number(n) => f.write_str(&n.value),
        }
    }
}

fn write_show_jobs(f: &mut Formatter<'_>, what: &str, show: &ShowJobs) -> fmt::Result {
    write!(f, "SHOW {what}")?;
    if let Some(db) = &show.database {
        write!(f, " FROM {db}")?;
    }
    for (i, p) in show.filter.iter().enumerate() {
        f.write_str(if i == 0 { " WHERE " } else { " AND " })?;
        p.fmt(f)?;
    }
    Ok(())
}

fn write_cancel(f: &mut Formatter<'_>, what: &str, cancel: &CancelJob) -> fmt::Result {
    write!(f, "CANCEL {what}")?;
    match &cancel.target {
        CancelTarget::Current => Ok(()),
        CancelTarget::Database(db) => write!(f, " FROM {db}"),
        CancelTarget::ExternalCatalog => f.write_str(" FOR EXTERNAL CATALOG"),
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::CreateRepository(s) => {
                f.write_str("CREATE ")?;
                if s.read_only {
                    f.write_str("READ ONLY ")?;
                }
                write!(f, "REPOSITORY {} WITH BROKER", s.name)?;
                if let Some(broker) = &s.broker {
                    write!(f, " {broker}")?;
                }
                write!(f, " ON LOCATION {}", s.location)?;
                write_properties(f, &s.properties)
            }
            Statement::DropRepository(s) => write!(f, "DROP REPOSITORY {}", s.name),
            Statement::ShowRepositories(_) => f.write_str("SHOW REPOSITORIES"),
            Statement::Account(s) => s.fmt(f),
            Statement::Backup(s) => s.fmt(f),
            Statement::Restore(s) => s.fmt(f),
            Statement::ShowBackup(s) => write_show_jobs(f, "BACKUP", s),
            Statement::ShowRestore(s) => write_show_jobs(f, "RESTORE", s),
            Statement::CancelBackup(s) => write_cancel(f, "BACKUP", s),
            Statement::CancelRestore(s) => write_cancel(f, "RESTORE", s),
            Statement::ShowSnapshot(s) => {
                write!(f, "SHOW SNAPSHOT ON {}", s.repository)?;
                match s.snapshots.as_slice() {
                    [] => {}
                    [one] => write!(f, " WHERE SNAPSHOT = {one}")?,
                    many => {
                        f.write_str(" WHERE SNAPSHOT IN (")?;
                        write_list(f, many, |f, s| s.fmt(f))?;
                        f.write_str(")")?;
                    }
                }
                match (&s.timestamp, s.snapshots.is_empty()) {
                    (Some(ts), false) => write!(f, " AND TIMESTAMP = {ts}"),
                    (Some(ts), true) => write!(f, " WHERE TIMESTAMP = {ts}"),
                    (None, _) => Ok(()),
                }
            }
            Statement::CreateSchedule(s) => {
                f.write_str("CREATE SCHEDULE ")?;
                if s.if_not_exists {
                    f.write_str("IF NOT EXISTS ")?;
                }
                write!(f, "{} FOR ", s.name)?;
                match &s.job {
                    ScheduledJob::Backup(b) => b.fmt(f)?,
                    ScheduledJob::Drill {
                        repository,
                        snapshot,
                    } => {
                        write!(f, "DRILL ON {repository}")?;
                        if let Some(label) = snapshot {
                            write!(f, " SNAPSHOT {label}")?;
                        }
                    }
                }
                write!(f, " RECURRING {}", s.recurrence)?;
                if let Some(r) = &s.retention {
                    write!(f, " WITH RETENTION {r}")?;
                }
                Ok(())
            }
            Statement::ShowSchedules(_) => f.write_str("SHOW SCHEDULES"),
            Statement::AlterSchedule(s) => match s.action {
                ScheduleAction::Pause => write!(f, "PAUSE SCHEDULE {}", s.name),
                ScheduleAction::Resume => write!(f, "RESUME SCHEDULE {}", s.name),
                ScheduleAction::Drop { if_exists } => write!(
                    f,
                    "DROP SCHEDULE {}{}",
                    if if_exists { "IF EXISTS " } else { "" },
                    s.name
                ),
            },
            Statement::DropSnapshot(s) => {
                write!(f, "DROP SNAPSHOT {} ON {}", s.snapshot, s.repository)?;
                if s.force {
                    f.write_str(" FORCE")?;
                }
                Ok(())
            }
            other => super::ddl::fmt_engine_statement(other, f).unwrap_or(Ok(())),
        }
    }
}
