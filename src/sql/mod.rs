//! Stage 1: SQL text → typed statements.
//!
//! The pest grammar in `grammar/` accepts both StarRocks syntaxes; [`build`] folds them into
//! one AST, [`validate`] applies the checks that need no catalog, and every failure becomes a
//! [`SqlError`] pointing at the offending token of the whole input. This module does no I/O and
//! knows nothing of catalogs or repositories.

pub mod accounts;
mod ast;
mod build;
mod build_accounts;
mod build_ddl;
mod ddl;
mod display;
mod error;
mod mask;
pub mod options;
mod suggest;
mod validate;

use crate::code::Code;
use pest::Parser;

pub use ast::*;
pub use display::{QuotedIdent, QuotedString, RESERVED_WORDS, is_reserved};
pub use error::{Problem, SqlError};
pub use mask::{mask_problem, mask_secrets, mask_userinfo, secret_spans, userinfo_spans};
pub use suggest::{KEYWORDS, closest};
pub use validate::{SHOW_BACKUP_COLUMNS, SHOW_RESTORE_COLUMNS, parse_backup_timestamp, recurrence};

#[derive(pest_derive::Parser)]
#[grammar = "grammar/lexical.pest"]
#[grammar = "grammar/statements.pest"]
#[grammar = "grammar/backup_restore.pest"]
#[grammar = "grammar/ddl.pest"]
#[grammar = "grammar/accounts.pest"]
struct StatementParser;

/// Parses and validates every statement of `src` (statements are separated by `;`).
/// A schedule's recorded command (`BACKUP …` or `DRILL ON repo …`, its canonical text) read
/// back as the `CREATE SCHEDULE` it belongs to: what privilege checks and a drill's run take.
pub fn schedule_of_command(command: &str) -> Option<Statement> {
    let text = format!("CREATE SCHEDULE s FOR {command} RECURRING '@daily'");
    let mut statements = parse(&text).ok()?;
    (statements.len() == 1).then(|| statements.remove(0))
}

pub fn parse(src: &str) -> Result<Vec<Statement>, SqlError> {
    parse_named("input", src)
}

/// [`parse`], naming the input (a file path, say) in diagnostics.
pub fn parse_named(name: &str, src: &str) -> Result<Vec<Statement>, SqlError> {
    let top = match StatementParser::parse(Rule::statements, src) {
        Ok(mut pairs) => pairs.next(),
        Err(e) => return Err(SqlError::new(vec![syntax_problem(&e, src)], name, src)),
    };
    let mut statements = Vec::new();
    let mut problems = Vec::new();
    for pair in top
        .into_iter()
        .flat_map(|p| p.into_inner())
        .filter(|p| p.as_rule() == Rule::statement)
    {
        match build::statement(pair) {
            Ok(stmt) => {
                problems.extend(validate::validate(&stmt));
                statements.push(stmt);
            }
            Err(problem) => problems.push(*problem),
        }
    }
    if problems.is_empty() {
        Ok(statements)
    } else {
        Err(SqlError::new(problems, name, src))
    }
}

/// Parses exactly one statement.
pub fn parse_one(src: &str) -> Result<Statement, SqlError> {
    let mut statements = parse(src)?;
    if statements.len() == 1 {
        Ok(statements.remove(0))
    } else {
        let span = statements
            .get(1)
            .map(|s| s.span())
            .unwrap_or(Span::new(0, src.len()));
        let problem = Problem::new(
            Code::SyntaxStatementCount,
            span,
            format!("expected one statement, found {}", statements.len()),
        )
        .label(if statements.is_empty() {
            "no statement"
        } else {
            "another statement"
        })
        .help("give one statement at a time here");
        Err(SqlError::new(vec![problem], "input", src))
    }
}

// ---- syntax errors in words a user knows --------------------------------------------------

/// What a grammar rule means to someone writing SQL; `None` for rules never worth naming.
fn describe(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        statement | statements => {
            "a statement (BACKUP, RESTORE, CREATE REPOSITORY, SHOW ..., CANCEL ... or DROP ...)"
        }
        user_identity | user_part => "a user ('name'@'host')",
        host_part => "a host ('%' for any)",
        role_name | role_list => "a role name",
        privilege | privilege_list => "a privilege (SELECT, EXPORT, CREATE TABLE, ALL, …)",
        grant_object => {
            "what the privileges are on (SYSTEM, TABLE t, DATABASE d, ALL TABLES IN DATABASE d, …)"
        }
        grantee => "a user or ROLE r",
        password_text | hashed_text => "a password in quotes",
        repo_name => "a repository name",
        db_name => "a database name",
        snapshot_name | snapshot_ref => "a snapshot name",
        catalog_name | catalog_alias => "a catalog name",
        table_name => "a table name",
        mv_name => "a materialized view name",
        view_name => "a view name",
        function_name => "a function name",
        partition_name => "a partition name",
        alias => "the new name",
        column_name => "a column name",
        broker_name => "a broker name",
        property | property_key => "a property name in quotes (\"key\" = \"value\")",
        property_value => "a property value in quotes",
        location => "a location in quotes, such as \"s3a://bucket/path\"",
        dq_string | sq_string => "a string in quotes",
        literal => "a value",
        number => "a number",
        plain_ident | quoted_ident => "a name",
        object_item => {
            "an object (TABLE t, MATERIALIZED VIEW mv, VIEW v, FUNCTION f, or ALL TABLES/...)"
        }
        all_kind => "TABLES, MATERIALIZED VIEWS, VIEWS or FUNCTIONS",
        partition_list => "PARTITION (...)",
        properties => "PROPERTIES (...)",
        on_clause => "ON (...)",
        where_clause | snapshot_filter => "WHERE ...",
        catalog_selection => "EXTERNAL CATALOG (...)",
        all_catalogs => "ALL EXTERNAL CATALOGS",
        read_only => "READ ONLY",
        cancel_target => "FROM <database> or FOR EXTERNAL CATALOG",
        for_external_catalog => "FOR EXTERNAL CATALOG",
        predicate => "a condition (column = \"value\")",
        comparison | compare_op => "=, != or LIKE",
        in_list => "IN (...)",
        snapshot_condition => "SNAPSHOT = \"name\"",
        timestamp_condition => "TIMESTAMP = \"yyyy-MM-dd-HH-mm-ss-SSS\"",
        force => "FORCE",
        schedule_name => "a schedule name",
        recurrence => "a crontab in quotes, such as '0 1 * * *' or '@daily'",
        retention => "a retention policy in quotes, such as 'keep-daily=7, keep-weekly=4'",
        drill => "DRILL ON <repository>",
        kw_recurring => "RECURRING",
        kw_retention => "RETENTION",
        kw_schedule => "SCHEDULE",
        kw_schedules => "SCHEDULES",
        comma => "`,`",
        lparen => "`(`",
        rparen => "`)`",
        dot => "`.`",
        equals => "`=`",
        semi => "`;`",
        EOI => "end of input",
        kw_all => "ALL",
        kw_and => "AND",
        kw_as => "AS",
        kw_backup => "BACKUP",
        kw_broker => "BROKER",
        kw_cancel => "CANCEL",
        kw_catalog => "CATALOG",
        kw_catalogs => "CATALOGS",
        kw_create => "CREATE",
        kw_database => "DATABASE",
        kw_drop => "DROP",
        kw_external => "EXTERNAL",
        kw_for => "FOR",
        kw_force => "FORCE",
        kw_from => "FROM",
        kw_function => "FUNCTION",
        kw_functions => "FUNCTIONS",
        kw_in => "IN",
        kw_like => "LIKE",
        kw_location => "LOCATION",
        kw_materialized => "MATERIALIZED",
        kw_on => "ON",
        kw_only => "ONLY",
        kw_partition => "PARTITION",
        kw_partitions => "PARTITIONS",
        kw_properties => "PROPERTIES",
        kw_read => "READ",
        kw_repositories => "REPOSITORIES",
        kw_repository => "REPOSITORY",
        kw_restore => "RESTORE",
        kw_show => "SHOW",
        kw_snapshot => "SNAPSHOT",
        kw_table => "TABLE",
        kw_tables => "TABLES",
        kw_timestamp => "TIMESTAMP",
        kw_to => "TO",
        kw_view => "VIEW",
        kw_views => "VIEWS",
        kw_where => "WHERE",
        kw_with => "WITH",
        _ => return None,
    })
}

fn is_keyword_rule(rule: Rule) -> bool {
    format!("{rule:?}").starts_with("kw_")
}

fn is_name_rule(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        repo_name
            | db_name
            | snapshot_name
            | snapshot_ref
            | catalog_name
            | catalog_alias
            | table_name
            | mv_name
            | view_name
            | function_name
            | partition_name
            | alias
            | column_name
            | broker_name
            | plain_ident
            | quoted_ident
            | object_item
    )
}

/// "a, b or c"
fn join_alternatives(items: &[&str]) -> String {
    match items {
        [] => "something else".into(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// The extent of the token starting at `pos`, for the label.
fn token_at(src: &str, pos: usize) -> (usize, usize) {
    let rest = &src[pos..];
    let Some(first) = rest.chars().next() else {
        return (pos, pos);
    };
    let len = if first.is_alphanumeric() || first == '_' {
        rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(rest.len())
    } else if matches!(first, '"' | '\'' | '`') {
        rest[1..]
            .find(first)
            .map(|i| i + 2)
            .unwrap_or_else(|| rest.find('\n').unwrap_or(rest.len()))
    } else {
        first.len_utf8()
    };
    (pos, pos + len)
}

/// The word ending just before `pos` (skipping white space), if any.
fn word_before(src: &str, pos: usize) -> Option<(usize, usize)> {
    let head = src[..pos].trim_end();
    let end = head.len();
    let start = head
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    (start < end).then_some((start, end))
}

fn syntax_problem(err: &pest::error::Error<Rule>, src: &str) -> Problem {
    let pos = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let positives: Vec<Rule> = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let mut expected: Vec<&str> = positives.iter().filter_map(|r| describe(*r)).collect();
    // Names first, then keywords, then punctuation and end of input.
    expected.sort_by_key(|e| {
        let rank = if e.starts_with('`') || *e == "end of input" {
            2
        } else if e.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            1
        } else {
            0
        };
        (rank, *e)
    });
    expected.dedup();
    let expected_text = join_alternatives(&expected);

    let (start, end) = token_at(src, pos);
    let found = &src[start..end];
    // The message quotes the token; a token that is (or holds) a secret is not quoted.
    let secret = mask::secret_spans(src)
        .iter()
        .any(|s| s.start < end && start < s.end);
    let mut problem = if found.is_empty() {
        // Nothing to underline at the end of the input: point at its last character instead.
        let last = src.trim_end();
        let at = last.char_indices().last().map(|(i, _)| i).unwrap_or(0);
        Problem::new(
            Code::SyntaxEndOfInput,
            Span::new(at, last.len()),
            "the statement ends too early",
        )
        .label(format!("expected {expected_text} after this"))
    } else {
        Problem::new(
            Code::Syntax,
            Span::new(start, end),
            if secret {
                "unexpected text that holds a secret (not shown)".to_string()
            } else {
                format!("unexpected `{found}`")
            },
        )
        .label(format!("expected {expected_text}"))
    };

    let expects_name = positives.iter().any(|r| is_name_rule(*r));
    let expected_keywords: Vec<&str> = positives
        .iter()
        .filter(|r| is_keyword_rule(**r))
        .filter_map(|r| describe(*r))
        .collect();
    let is_word = found.chars().next().is_some_and(|c| c.is_alphabetic());
    if found.starts_with(['"', '\'']) && !found.ends_with(found.chars().next().unwrap_or('"')) {
        problem = problem.help("this string is never closed: add the closing quote");
    } else if found.starts_with(['"', '\'']) && expects_name {
        problem = problem
            .help("names are not quoted with \" or '; write them bare or in back-quotes (`name`)");
    } else if is_word
        && positives
            .iter()
            .any(|r| matches!(r, Rule::property | Rule::property_key))
    {
        problem = problem.help(format!("property names are quoted: \"{found}\""));
    } else if is_word && expects_name && is_reserved(found) {
        problem = problem.help(format!(
            "`{found}` is a reserved word; to use it as a name, back-quote it: {}",
            QuotedIdent(found)
        ));
    } else if let Some(kw) = is_word
        .then(|| {
            let pool: Vec<&str> = if expected_keywords.is_empty() {
                KEYWORDS.to_vec()
            } else {
                expected_keywords.clone()
            };
            closest(found, pool)
        })
        .flatten()
        .filter(|_| !is_reserved(found))
    {
        problem = problem.help(format!("did you mean {kw}?"));
    } else if let Some((ws, we)) = word_before(src, start) {
        // A misspelled keyword is often taken for a name, and the error lands on the next word
        // (`ON (TABEL t)` fails at `t`): look one word back.
        let before = &src[ws..we];
        if let Some(kw) = (!is_reserved(before))
            .then(|| closest(before, KEYWORDS.iter().copied()))
            .flatten()
        {
            problem = problem
                .help(format!("did you mean {kw} instead of `{before}`?"))
                .also(Span::new(ws, we), format!("is this {kw}?"));
        } else if is_word
            && ["BACKUP", "RESTORE", "CREATE", "SHOW", "CANCEL", "DROP"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(found))
            && expected.contains(&"`;`")
        {
            problem = problem.help("end the previous statement with `;`");
        }
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_at_covers_words_strings_and_symbols() {
        assert_eq!(token_at("ab cd", 3), (3, 5));
        assert_eq!(token_at("x \"s t\" y", 2), (2, 7));
        assert_eq!(token_at("x \"open", 2), (2, 7));
        assert_eq!(token_at("(a", 0), (0, 1));
        assert_eq!(token_at("ab", 2), (2, 2));
    }

    #[test]
    fn word_before_skips_white_space() {
        assert_eq!(word_before("ON (TABEL  t", 11), Some((4, 9)));
        assert_eq!(word_before("(", 1), None);
    }

    #[test]
    fn word_before_respects_multi_byte_characters() {
        // Found by the fuzzer: a non-word character of two bytes before the word.
        assert_eq!(word_before("a\u{58c}bc d", 6), Some((3, 5)));
        assert_eq!(word_before("\u{2014}x y", 5), Some((3, 4)));
    }
}
