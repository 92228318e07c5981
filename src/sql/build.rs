//! Turns pest's parse tree into the typed AST, folding the two StarRocks syntaxes into one tree.
//!
//! The grammar has already checked the shape, so a missing child here is a grammar/builder
//! mismatch; it is reported as an internal error rather than a panic.

use crate::code::Code;
use pest::iterators::Pair;

use super::Rule;
use super::ast::*;
use super::error::Problem;

pub(super) type Node<'a> = Pair<'a, Rule>;
// Boxed: a `Problem` is large and errors are rare, so the common `Ok` path stays small.
pub(super) type Built<T> = Result<T, Box<Problem>>;

pub(super) fn span_of(pair: &Node) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

pub(super) fn internal(pair: &Node, what: &str) -> Box<Problem> {
    Box::new(
        Problem::new(
            Code::Internal,
            span_of(pair),
            format!("internal error: the parser produced no {what} here"),
        )
        .help("this is a bug in srbackup's grammar; please report the statement"),
    )
}

/// The children of a node, with a way to take the next one of a given rule.
pub(super) struct Children<'a> {
    parent: Node<'a>,
    items: std::iter::Peekable<pest::iterators::Pairs<'a, Rule>>,
}

impl<'a> Children<'a> {
    pub(super) fn of(pair: Node<'a>) -> Self {
        Children {
            items: pair.clone().into_inner().peekable(),
            parent: pair,
        }
    }
    /// Takes the next child if it is `rule`, skipping nothing.
    pub(super) fn take(&mut self, rule: Rule) -> Option<Node<'a>> {
        if self.items.peek().map(|p| p.as_rule()) == Some(rule) {
            self.items.next()
        } else {
            None
        }
    }
    /// Takes the next child of `rule`, passing over keywords and other rules before it; when
    /// there is none, nothing is consumed.
    pub(super) fn find(&mut self, rule: Rule) -> Option<Node<'a>> {
        if !self.has(rule) {
            return None;
        }
        self.items.by_ref().find(|p| p.as_rule() == rule)
    }
    pub(super) fn require(&mut self, rule: Rule, what: &str) -> Built<Node<'a>> {
        self.find(rule).ok_or_else(|| internal(&self.parent, what))
    }
    /// Whether a child of `rule` comes next (keywords are children too).
    pub(super) fn has(&mut self, rule: Rule) -> bool {
        self.items.clone().any(|p| p.as_rule() == rule)
    }
    fn rest(self) -> impl Iterator<Item = Node<'a>> {
        self.items
    }
}

pub(super) fn first_child<'a>(pair: &Node<'a>, what: &str) -> Built<Node<'a>> {
    pair.clone()
        .into_inner()
        .next()
        .ok_or_else(|| internal(pair, what))
}

pub(super) fn statement(pair: Node) -> Built<Statement> {
    let inner = first_child(&pair, "statement")?;
    let span = span_of(&inner);
    Ok(match inner.as_rule() {
        Rule::create_repository => Statement::CreateRepository(create_repository(inner)?),
        Rule::drop_repository => Statement::DropRepository(DropRepository {
            name: ident_of(Children::of(inner).require(Rule::repo_name, "repository name")?)?,
            span,
        }),
        Rule::show_repositories => Statement::ShowRepositories(ShowRepositories { span }),
        Rule::backup => Statement::Backup(backup(inner)?),
        Rule::restore => Statement::Restore(restore(inner)?),
        Rule::show_backup => Statement::ShowBackup(show_jobs(inner)?),
        Rule::show_restore => Statement::ShowRestore(show_jobs(inner)?),
        Rule::cancel_backup => Statement::CancelBackup(cancel(inner)?),
        Rule::cancel_restore => Statement::CancelRestore(cancel(inner)?),
        Rule::show_snapshot => Statement::ShowSnapshot(show_snapshot(inner)?),
        Rule::drop_snapshot => {
            let mut c = Children::of(inner);
            DropSnapshot {
                snapshot: ident_of(c.require(Rule::snapshot_name, "snapshot name")?)?,
                repository: ident_of(c.require(Rule::repo_name, "repository name")?)?,
                force: c.has(Rule::force),
                span,
            }
            .into()
        }
        Rule::create_schedule => Statement::CreateSchedule(create_schedule(inner)?),
        Rule::show_schedules => Statement::ShowSchedules(ShowSchedules { span }),
        Rule::pause_schedule | Rule::resume_schedule | Rule::drop_schedule => {
            let action = match inner.as_rule() {
                Rule::pause_schedule => ScheduleAction::Pause,
                Rule::resume_schedule => ScheduleAction::Resume,
                _ => ScheduleAction::Drop {
                    if_exists: Children::of(inner.clone()).has(Rule::if_exists),
                },
            };
            let mut c = Children::of(inner);
            Statement::AlterSchedule(AlterSchedule {
                action,
                name: ident_of(c.require(Rule::schedule_name, "schedule name")?)?,
                span,
            })
        }
        r if super::build_accounts::is_account(r) => {
            Statement::Account(super::build_accounts::statement(inner)?)
        }
        _ => return super::build_ddl::statement(inner),
    })
}

impl From<DropSnapshot> for Statement {
    fn from(s: DropSnapshot) -> Self {
        Statement::DropSnapshot(s)
    }
}

fn create_schedule(pair: Node) -> Built<CreateSchedule> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    let if_not_exists = c.has(Rule::if_not_exists);
    let name = ident_of(c.require(Rule::schedule_name, "schedule name")?)?;
    let job = if c.has(Rule::backup) {
        ScheduledJob::Backup(Box::new(backup(c.require(Rule::backup, "backup")?)?))
    } else {
        let mut d = Children::of(c.require(Rule::drill, "drill")?);
        ScheduledJob::Drill {
            repository: ident_of(d.require(Rule::repo_name, "repository name")?)?,
            snapshot: d.find(Rule::snapshot_name).map(ident_of).transpose()?,
        }
    };
    let recurrence = literal_of(c.require(Rule::recurrence, "recurrence")?)?;
    let retention = c.find(Rule::retention).map(literal_of).transpose()?;
    Ok(CreateSchedule {
        name,
        if_not_exists,
        job,
        recurrence,
        retention,
        span,
    })
}

fn create_repository(pair: Node) -> Built<CreateRepository> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    let read_only = c.has(Rule::read_only);
    let name = ident_of(c.require(Rule::repo_name, "repository name")?)?;
    let broker = match c.find(Rule::broker_name) {
        Some(b) => Some(name_or_string(first_child(&b, "broker name")?)?),
        None => None,
    };
    let location = literal_of(c.require(Rule::location, "location")?)?;
    let properties = match c.find(Rule::properties) {
        Some(p) => properties(p)?,
        None => Properties::default(),
    };
    Ok(CreateRepository {
        read_only,
        name,
        broker,
        location,
        properties,
        span,
    })
}

/// The database named in a snapshot reference (`db.snapshot`), and the snapshot name.
fn snapshot_ref(pair: Node) -> Built<(Option<Ident>, Ident)> {
    let mut c = Children::of(pair.clone());
    let db = match c.take(Rule::db_name) {
        Some(db) => Some(ident_of(db)?),
        None => None,
    };
    let name = ident_of(c.require(Rule::snapshot_name, "snapshot name")?)?;
    Ok((db, name))
}

fn database_named_twice(qualified: &Ident, clause: &Ident) -> Box<Problem> {
    Box::new(Problem::new(
        Code::SyntaxDatabaseTwice,
        qualified.span,
        "the database is named twice",
    )
    .label("database given in the snapshot name")
    .also(clause.span, "and in the DATABASE clause")
    .help(
        "write either `DATABASE db SNAPSHOT name` (v3.4) or `SNAPSHOT db.name` (legacy), not both",
    ))
}

fn backup(pair: Node) -> Built<Backup> {
    let span = span_of(&pair);
    let mut external_catalogs = None;
    let mut clause_db = None;
    let mut snapshot = None;
    let mut repository = None;
    let mut on = Vec::new();
    let mut props = Properties::default();
    for child in pair.clone().into_inner() {
        match child.as_rule() {
            Rule::catalog_selection => external_catalogs = Some(catalog_selection(child)?),
            Rule::db_name => clause_db = Some(ident_of(child)?),
            Rule::snapshot_ref => snapshot = Some(snapshot_ref(child)?),
            Rule::repo_name => repository = Some(ident_of(child)?),
            Rule::on_clause => on = on_clause(child)?,
            Rule::properties => props = properties(child)?,
            _ => {}
        }
    }
    let (qualified_db, snapshot) = snapshot.ok_or_else(|| internal(&pair, "snapshot name"))?;
    let repository = repository.ok_or_else(|| internal(&pair, "repository name"))?;
    let (syntax, database) = match (qualified_db, clause_db) {
        (Some(q), Some(c)) => return Err(database_named_twice(&q, &c)),
        (None, Some(db)) => (Syntax::V3_4, Some(db)),
        (Some(db), None) if external_catalogs.is_some() => (Syntax::V3_4, Some(db)),
        (Some(db), None) => (Syntax::Legacy, Some(db)),
        (None, None) if external_catalogs.is_some() => (Syntax::V3_4, None),
        (None, None) => (Syntax::Legacy, None),
    };
    Ok(Backup {
        syntax,
        database,
        snapshot,
        repository,
        external_catalogs,
        on,
        properties: props,
        span,
    })
}

fn restore(pair: Node) -> Built<Restore> {
    let span = span_of(&pair);
    let mut external_catalogs = None;
    let mut clause_db: Option<DatabaseRef> = None;
    let mut snapshot = None;
    let mut repository = None;
    let mut on = Vec::new();
    let mut props = Properties::default();
    for child in pair.clone().into_inner() {
        match child.as_rule() {
            Rule::catalog_selection => external_catalogs = Some(catalog_selection(child)?),
            Rule::db_name => {
                clause_db = Some(DatabaseRef {
                    name: ident_of(child)?,
                    alias: None,
                })
            }
            Rule::alias => {
                if let Some(db) = clause_db.as_mut() {
                    db.alias = Some(ident_of(child)?);
                }
            }
            Rule::snapshot_ref => snapshot = Some(snapshot_ref(child)?),
            Rule::repo_name => repository = Some(ident_of(child)?),
            Rule::on_clause => on = on_clause(child)?,
            Rule::properties => props = properties(child)?,
            _ => {}
        }
    }
    let (qualified_db, snapshot) = snapshot.ok_or_else(|| internal(&pair, "snapshot name"))?;
    let repository = repository.ok_or_else(|| internal(&pair, "repository name"))?;
    let (syntax, database) = match (qualified_db, clause_db) {
        (Some(q), Some(c)) => return Err(database_named_twice(&q, &c.name)),
        (None, Some(db)) => (Syntax::V3_4, Some(db)),
        (Some(name), None) => {
            let syntax = if external_catalogs.is_some() {
                Syntax::V3_4
            } else {
                Syntax::Legacy
            };
            (syntax, Some(DatabaseRef { name, alias: None }))
        }
        (None, None) => (Syntax::V3_4, None),
    };
    Ok(Restore {
        syntax,
        snapshot,
        repository,
        external_catalogs,
        database,
        on,
        properties: props,
        span,
    })
}

fn catalog_selection(pair: Node) -> Built<CatalogSelection> {
    let mut named = Vec::new();
    for child in pair.into_inner() {
        match child.as_rule() {
            Rule::all_catalogs => return Ok(CatalogSelection::All),
            Rule::catalog_alias => {
                let mut c = Children::of(child);
                let name = ident_of(c.require(Rule::catalog_name, "catalog name")?)?;
                let alias = c.find(Rule::alias).map(ident_of).transpose()?;
                named.push(CatalogRef { name, alias });
            }
            _ => {}
        }
    }
    Ok(CatalogSelection::Named(named))
}

fn on_clause(pair: Node) -> Built<Vec<ObjectRef>> {
    pair.into_inner()
        .filter(|p| p.as_rule() == Rule::object_item)
        .map(object_item)
        .collect()
}

fn object_item(pair: Node) -> Built<ObjectRef> {
    let item = first_child(&pair, "object")?;
    let rule = item.as_rule();
    let span = span_of(&item);
    let mut c = Children::of(item.clone());
    let alias_of = |c: &mut Children| c.find(Rule::alias).map(ident_of).transpose();
    Ok(match rule {
        Rule::all_item => {
            let kind = first_child(&c.require(Rule::all_kind, "ALL kind")?, "ALL kind")?;
            let of = match kind.as_rule() {
                Rule::all_tables => ObjectKind::Tables,
                Rule::all_mvs => ObjectKind::MaterializedViews,
                Rule::all_views => ObjectKind::Views,
                _ => ObjectKind::Functions,
            };
            ObjectRef::All {
                of,
                alias: alias_of(&mut c)?,
                span,
            }
        }
        Rule::table_item | Rule::bare_table_item => {
            let name = qualified_of(c.require(Rule::table_name, "table name")?)?;
            let partitions = match c.find(Rule::partition_list) {
                Some(list) => list
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::partition_name)
                    .map(|p| first_child(&p, "partition name").and_then(name_or_string))
                    .collect::<Built<Vec<_>>>()?,
                None => Vec::new(),
            };
            ObjectRef::Table {
                name,
                partitions,
                alias: alias_of(&mut c)?,
            }
        }
        Rule::mv_item => ObjectRef::MaterializedView {
            name: qualified_of(c.require(Rule::mv_name, "materialized view name")?)?,
            alias: alias_of(&mut c)?,
        },
        Rule::view_item => ObjectRef::View {
            name: qualified_of(c.require(Rule::view_name, "view name")?)?,
            alias: alias_of(&mut c)?,
        },
        Rule::function_item => ObjectRef::Function {
            name: qualified_of(c.require(Rule::function_name, "function name")?)?,
            alias: alias_of(&mut c)?,
        },
        _ => return Err(internal(&item, "object")),
    })
}

pub(super) fn properties(pair: Node) -> Built<Properties> {
    let mut list = Vec::new();
    for prop in pair.into_inner().filter(|p| p.as_rule() == Rule::property) {
        let mut c = Children::of(prop);
        let key = c.require(Rule::property_key, "property key")?;
        let value = c.require(Rule::property_value, "property value")?;
        list.push(Property {
            key: literal_of(key)?,
            value: literal_of(value)?,
        });
    }
    Ok(Properties(list))
}

fn show_jobs(pair: Node) -> Built<ShowJobs> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    let database = c.find(Rule::db_name).map(ident_of).transpose()?;
    let mut filter = Vec::new();
    if let Some(clause) = c.find(Rule::where_clause) {
        for pred in clause
            .into_inner()
            .filter(|p| p.as_rule() == Rule::predicate)
        {
            filter.push(predicate(pred)?);
        }
    }
    Ok(ShowJobs {
        database,
        filter,
        span,
    })
}

fn predicate(pair: Node) -> Built<Predicate> {
    let mut c = Children::of(pair.clone());
    let column = ident_of(c.require(Rule::column_name, "column name")?)?;
    let test = c
        .rest()
        .next()
        .ok_or_else(|| internal(&pair, "condition"))?;
    let (op, values) = match test.as_rule() {
        Rule::in_list => (
            CompareOp::In,
            test.into_inner()
                .filter(|p| p.as_rule() == Rule::literal)
                .map(value_of)
                .collect::<Built<Vec<_>>>()?,
        ),
        _ => {
            let mut c = Children::of(test);
            let op = c.require(Rule::compare_op, "comparison")?;
            let op = match op.as_str() {
                "=" => CompareOp::Eq,
                "!=" | "<>" => CompareOp::NotEq,
                _ => CompareOp::Like,
            };
            (op, vec![value_of(c.require(Rule::literal, "value")?)?])
        }
    };
    Ok(Predicate { column, op, values })
}

fn value_of(pair: Node) -> Built<Value> {
    let inner = first_child(&pair, "value")?;
    Ok(match inner.as_rule() {
        Rule::number => Value::Number(Literal {
            value: inner.as_str().to_string(),
            span: span_of(&inner),
        }),
        _ => Value::String(literal_of(inner)?),
    })
}

fn cancel(pair: Node) -> Built<CancelJob> {
    let span = span_of(&pair);
    let target = match Children::of(pair).find(Rule::cancel_target) {
        None => CancelTarget::Current,
        Some(t) => {
            let mut c = Children::of(t);
            if c.has(Rule::for_external_catalog) {
                CancelTarget::ExternalCatalog
            } else {
                CancelTarget::Database(ident_of(c.require(Rule::db_name, "database name")?)?)
            }
        }
    };
    Ok(CancelJob { target, span })
}

fn show_snapshot(pair: Node) -> Built<ShowSnapshot> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    let repository = ident_of(c.require(Rule::repo_name, "repository name")?)?;
    let mut snapshots = Vec::new();
    let mut timestamp = None;
    if let Some(filter) = c.find(Rule::snapshot_filter) {
        for cond in filter.into_inner() {
            match cond.as_rule() {
                Rule::snapshot_condition => {
                    for s in cond
                        .into_inner()
                        .filter(|p| matches!(p.as_rule(), Rule::dq_string | Rule::sq_string))
                    {
                        snapshots.push(literal_of(s)?);
                    }
                }
                Rule::timestamp_condition => {
                    let value = cond
                        .clone()
                        .into_inner()
                        .find(|p| matches!(p.as_rule(), Rule::dq_string | Rule::sq_string))
                        .ok_or_else(|| internal(&cond, "timestamp"))?;
                    timestamp = Some(literal_of(value)?);
                }
                _ => {}
            }
        }
    }
    Ok(ShowSnapshot {
        repository,
        snapshots,
        timestamp,
        span,
    })
}

// ---- names and literals ------------------------------------------------------------------

pub(super) fn is_ident(rule: Rule) -> bool {
    matches!(rule, Rule::plain_ident | Rule::quoted_ident)
}

/// An identifier from a role rule (`repo_name`, `alias`, ...) or a `plain_ident`/`quoted_ident`.
pub(super) fn ident_of(pair: Node) -> Built<Ident> {
    let node = if is_ident(pair.as_rule()) {
        pair
    } else {
        first_child(&pair, "name")?
    };
    let span = span_of(&node);
    let text = node.as_str();
    let value = match node.as_rule() {
        Rule::quoted_ident => text[1..text.len() - 1].replace("``", "`"),
        _ => text.to_string(),
    };
    Ok(Ident { value, span })
}

/// `name` or `db.name` from a role rule such as `table_name`.
pub(super) fn qualified_of(pair: Node) -> Built<QualifiedName> {
    let mut parts = pair
        .clone()
        .into_inner()
        .filter(|p| is_ident(p.as_rule()))
        .map(ident_of)
        .collect::<Built<Vec<_>>>()?;
    let name = parts.pop().ok_or_else(|| internal(&pair, "name"))?;
    Ok(QualifiedName {
        database: parts.pop(),
        name,
    })
}

/// A name that StarRocks accepts either bare or quoted (partition and broker names).
pub(super) fn name_or_string(pair: Node) -> Built<Literal> {
    if is_ident(pair.as_rule()) {
        let ident = ident_of(pair)?;
        Ok(Literal {
            value: ident.value,
            span: ident.span,
        })
    } else {
        literal_of(pair)
    }
}

/// The value of a `dq_string`/`sq_string` node, or of a rule wrapping one, escapes resolved.
pub(super) fn literal_of(pair: Node) -> Built<Literal> {
    let node = if matches!(pair.as_rule(), Rule::dq_string | Rule::sq_string) {
        pair
    } else {
        first_child(&pair, "string")?
    };
    let span = span_of(&node);
    let text = node.as_str();
    let quote = if node.as_rule() == Rule::sq_string {
        '\''
    } else {
        '"'
    };
    Ok(Literal {
        value: unescape(&text[1..text.len() - 1], quote),
        span,
    })
}

/// MySQL-style escapes: `\n`, `\t`, `\r`, `\0`, `\\`, `\"`, `\'`; any other `\x` is `x`, and a
/// doubled quote character stands for one.
fn unescape(body: &str, quote: char) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            c if c == quote && chars.peek() == Some(&quote) => {
                chars.next();
                out.push(quote);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn unescape_handles_backslashes_and_doubled_quotes() {
        assert_eq!(unescape(r#"a\"b"#, '"'), "a\"b");
        assert_eq!(unescape(r"a\\b\n", '"'), "a\\b\n");
        assert_eq!(unescape("it''s", '\''), "it's");
        assert_eq!(unescape(r"\q", '"'), "q");
    }
}
