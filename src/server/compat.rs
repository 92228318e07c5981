//! Statements MySQL clients and drivers send on their own, which are not srbackup statements:
//! `SELECT @@version_comment` (the mysql client at start), `SET NAMES …` and `SET autocommit`
//! (drivers), `COMMIT` (drivers after each statement), `SELECT DATABASE(), USER()` (the
//! client's `status`). StarRocks answers them; so does the server, without passing them to the parser.
//!
//! One session variable is srbackup's own: `SET srbackup_snapshot_time = 'yyyy-MM-dd-HH-mm-ss-SSS'`
//! gives the session's next BACKUPs that snapshot timestamp (what `SRBACKUP_SNAPSHOT_TIME` does
//! for the CLI), so scripts can run the spec's RESTOREs with the timestamps they carry.

use std::collections::BTreeMap;

use opensrv_mysql::ErrorKind;

use crate::results::{ColumnKind, ResultSet};
use crate::session::like;

/// What the server answers instead of running a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Rows(ResultSet),
    /// Rows to keep where `condition` (SQL, over the rows' columns) holds: `SHOW … WHERE …`.
    RowsWhere {
        rows: ResultSet,
        condition: String,
    },
    /// A `SET` of session variables, to keep in the session's [`Variables`].
    Set(Vec<(String, String)>),
    Error {
        code: ErrorKind,
        message: String,
    },
}

/// The server version clients see in the handshake and `VERSION()`: StarRocks' default
/// `mysql_server_version` (5.1.0), then ours.
pub fn server_version() -> String {
    format!("5.1.0-srbackup-{}", env!("CARGO_PKG_VERSION"))
}

/// What `CURRENT_VERSION()` answers: the StarRocks release whose statements and SHOW columns
/// this server follows, then ours in place of StarRocks' commit id.
pub fn starrocks_version() -> String {
    format!("3.5.0-srbackup-{}", env!("CARGO_PKG_VERSION"))
}

/// Who is asking, and of which server: what `DATABASE()`, `USER()`, `CONNECTION_ID()`,
/// `SHOW FRONTENDS` and `SHOW BACKENDS` answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client<'a> {
    pub database: Option<&'a str>,
    /// `user@host`, as MySQL's `USER()` shows it.
    pub user: &'a str,
    /// The account the login matched, `'user'@'host pattern'` (CURRENT_USER(), StarRocks' form).
    pub account: &'a str,
    /// The session's active roles (CURRENT_ROLE()), when the statement asks for them.
    pub roles: Option<&'a str>,
    pub connection_id: u32,
    /// The address and port the server listens on.
    pub listen: Option<std::net::SocketAddr>,
    /// When the server started, `YYYY-MM-DD HH:MM:SS`.
    pub started: &'a str,
}

/// Answers `sql` when it is one of the client statements above; `None` sends it to the parser.
pub fn answer(sql: &str, client: Client<'_>, vars: &Variables) -> Option<Answer> {
    // Drivers put a comment first (Connector/J: `/* mysql-connector-java-8.0 */SELECT @@…`).
    let text = skip_leading_comments(sql).trim_end_matches(';').trim();
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.as_slice() {
        ["begin"] | ["start", "transaction", ..] | ["commit", ..] | ["rollback", ..] => {
            Some(Answer::Ok)
        }
        // Account statements go to the session (grammar/accounts.pest), however spaced
        // (`SET PASSWORD=PASSWORD('…')`): never echoed from here.
        ["set", ..] if is_account_set(&lower) => None,
        ["set", ..] => Some(set(text)),
        ["select", ..] => session_values(text, client, vars),
        ["show", rest @ ..] => show(text, rest, client, vars),
        ["admin", "show", "frontend", "config", ..] => Some(frontend_config(text)),
        _ => None,
    }
}

/// What a statement answered here needs beyond logging in: SHOW FRONTENDS, SHOW BACKENDS and
/// SHOW PROC need OPERATE or NODE on SYSTEM (StarRocks' check).
pub fn needs_operate(sql: &str) -> Option<Vec<crate::session::privileges::Need>> {
    // The same text `answer` judges: comments skipped, a final `;` dropped.
    let text = skip_leading_comments(sql)
        .trim_end_matches(';')
        .trim()
        .to_ascii_lowercase();
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["show", "frontends" | "backends" | "proc", ..] => {
            Some(vec![crate::session::privileges::Need::any(
                vec!["OPERATE", "NODE"],
                crate::session::privileges::Target::system(),
            )])
        }
        _ => None,
    }
}

/// `SET PASSWORD …`, `SET ROLE …`, `SET DEFAULT ROLE …` (lower case, comments skipped): the
/// session's account statements, whatever follows the word.
fn is_account_set(lower: &str) -> bool {
    let rest = lower["set".len()..].trim_start();
    let word = |w: &str| {
        rest.strip_prefix(w).is_some_and(|after| {
            !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    word("password")
        || word("role")
        || rest.starts_with("default") && rest["default".len()..].trim_start().starts_with("role")
}

/// `sql` after any leading white space and `/* … */` or `-- …`/`# …` comments.
fn skip_leading_comments(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("/*") {
            match after.find("*/") {
                Some(end) => rest = after[end + 2..].trim_start(),
                None => return rest,
            }
        } else if rest.starts_with("--") || rest.starts_with('#') {
            match rest.find('\n') {
                Some(end) => rest = rest[end + 1..].trim_start(),
                None => return "",
            }
        } else {
            return rest;
        }
    }
}

/// The session variables a client set, over the defaults.
#[derive(Clone, Debug, Default)]
pub struct Variables {
    set: BTreeMap<String, String>,
}

impl Variables {
    /// The session's `srbackup_snapshot_time` (`SRBACKUP_SNAPSHOT_TIME` of the server at first).
    pub fn new(snapshot_time: Option<String>) -> Variables {
        let mut set = BTreeMap::new();
        if let Some(t) = snapshot_time {
            set.insert(SNAPSHOT_TIME.to_string(), t);
        }
        Variables { set }
    }

    /// Keeps values a `SET` gave (checked by [`set`]).
    pub fn apply(&mut self, values: Vec<(String, String)>) {
        for (name, value) in values {
            if name == SNAPSHOT_TIME && value.is_empty() {
                self.set.remove(SNAPSHOT_TIME);
            } else {
                self.set.insert(name, value);
            }
        }
    }

    /// How long a query may run (`query_timeout`, seconds; StarRocks' default 300).
    pub fn query_timeout(&self) -> std::time::Duration {
        let secs = self
            .get("query_timeout")
            .and_then(|(v, _)| v.parse::<u64>().ok())
            .unwrap_or(300);
        std::time::Duration::from_secs(secs.max(1))
    }

    /// The timestamp the session's next BACKUPs take, if set.
    pub fn snapshot_time(&self) -> Option<&str> {
        self.set.get(SNAPSHOT_TIME).map(String::as_str)
    }

    /// A variable's value and type: the session's, or the default.
    fn get(&self, name: &str) -> Option<(String, ColumnKind)> {
        let (_, default, kind) = DEFAULTS
            .iter()
            .find(|(n, ..)| *n == name)
            .copied()
            .or((name == SNAPSHOT_TIME).then_some((SNAPSHOT_TIME, "", ColumnKind::Text)))?;
        let value = match self.set.get(name) {
            Some(v) => v.clone(),
            None => default_value(name, default),
        };
        Some((value, kind))
    }

    /// Every variable, by name.
    fn all(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = DEFAULTS
            .iter()
            .map(|(n, ..)| (n.to_string(), self.get(n).map(|v| v.0).unwrap_or_default()))
            .collect();
        out.push((
            SNAPSHOT_TIME.to_string(),
            self.snapshot_time().unwrap_or("").to_string(),
        ));
        out.sort();
        out
    }
}

const SNAPSHOT_TIME: &str = "srbackup_snapshot_time";

/// The variables drivers and tools read, with StarRocks' defaults where StarRocks has one
/// (`SessionVariable.java`, `GlobalVariable.java`); `time_zone` is UTC (StarRocks takes the
/// host's), the version variables are computed.
const DEFAULTS: &[(&str, &str, ColumnKind)] = &[
    ("auto_increment_increment", "1", ColumnKind::Integer),
    ("autocommit", "1", ColumnKind::Integer),
    ("character_set_client", "utf8", ColumnKind::Text),
    ("character_set_connection", "utf8", ColumnKind::Text),
    ("character_set_database", "utf8", ColumnKind::Text),
    ("character_set_results", "utf8", ColumnKind::Text),
    ("character_set_server", "utf8", ColumnKind::Text),
    ("collation_connection", "utf8_general_ci", ColumnKind::Text),
    ("collation_database", "utf8_general_ci", ColumnKind::Text),
    ("collation_server", "utf8_general_ci", ColumnKind::Text),
    ("default_storage_engine", "olap", ColumnKind::Text),
    ("event_scheduler", "OFF", ColumnKind::Text),
    ("have_query_cache", "YES", ColumnKind::Text),
    ("init_connect", "", ColumnKind::Text),
    ("interactive_timeout", "3600", ColumnKind::Integer),
    ("language", "/starrocks/share/english/", ColumnKind::Text),
    ("license", "Apache License 2.0", ColumnKind::Text),
    ("lower_case_table_names", "0", ColumnKind::Integer),
    ("max_allowed_packet", "33554432", ColumnKind::Integer),
    ("net_buffer_length", "16384", ColumnKind::Integer),
    ("net_read_timeout", "60", ColumnKind::Integer),
    ("net_write_timeout", "60", ColumnKind::Integer),
    ("performance_schema", "0", ColumnKind::Integer),
    ("query_cache_size", "1048576", ColumnKind::Integer),
    ("query_cache_type", "0", ColumnKind::Integer),
    ("query_timeout", "300", ColumnKind::Integer),
    ("sql_mode", "ONLY_FULL_GROUP_BY", ColumnKind::Text),
    ("sql_safe_updates", "0", ColumnKind::Integer),
    (
        "sql_select_limit",
        "18446744073709551615",
        ColumnKind::LargeInt,
    ),
    ("system_time_zone", "UTC", ColumnKind::Text),
    ("time_zone", "UTC", ColumnKind::Text),
    ("transaction_isolation", "REPEATABLE-READ", ColumnKind::Text),
    ("transaction_read_only", "0", ColumnKind::Integer),
    ("tx_isolation", "REPEATABLE-READ", ColumnKind::Text),
    ("tx_read_only", "0", ColumnKind::Integer),
    ("version", "", ColumnKind::Text),
    ("version_comment", "", ColumnKind::Text),
    ("wait_timeout", "28800", ColumnKind::Integer),
];

fn default_value(name: &str, default: &str) -> String {
    match name {
        "version" => server_version(),
        "version_comment" => format!(
            "srbackup {} (StarRocks-style BACKUP and RESTORE)",
            env!("CARGO_PKG_VERSION")
        ),
        _ => default.to_string(),
    }
}

/// The other name of a variable MySQL renamed (drivers ask for either).
fn canonical(name: &str) -> &str {
    match name {
        "tx_isolation" => "transaction_isolation",
        "tx_read_only" => "transaction_read_only",
        other => other,
    }
}

/// `SET [SESSION|GLOBAL|LOCAL] v = x [, …]`, `SET @@[session.]v = x`, `SET NAMES …`,
/// `SET CHARACTER SET …`, `SET TRANSACTION …`, `SET @user_var = …`.
fn set(text: &str) -> Answer {
    let body = text[3..].trim();
    let lower = body.to_ascii_lowercase();
    if lower.starts_with("names")
        || lower.starts_with("character set")
        || lower.starts_with("charset")
    {
        // Text is UTF-8: a client may call it any UTF-8 name, not another character set.
        let charset = lower
            .trim_start_matches("names")
            .trim_start_matches("character set")
            .trim_start_matches("charset")
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches(|c| c == '\'' || c == '"' || c == '`');
        return match charset {
            "utf8" | "utf8mb4" | "utf8mb3" | "default" => Answer::Ok,
            other => Answer::Error {
                code: ErrorKind::ER_NOT_SUPPORTED_YET,
                message: format!(
                    "character set {other} is not supported: text is UTF-8 (SET NAMES utf8mb4)"
                ),
            },
        };
    }
    if lower.starts_with("transaction") {
        // Every statement commits on its own; the isolation level changes nothing.
        return Answer::Ok;
    }
    let mut values = Vec::new();
    for item in split_top_level(body) {
        let Some((name, value)) = item.split_once('=') else {
            return Answer::Error {
                code: ErrorKind::ER_PARSE_ERROR,
                message: format!("`SET {item}`: expected `name = value`"),
            };
        };
        let name = name.trim().trim_start_matches(':').to_ascii_lowercase();
        if name.starts_with('@') && !name.starts_with("@@") {
            continue; // a user variable: nothing here reads it
        }
        let name = name
            .trim_start_matches("@@")
            .trim_start_matches("session ")
            .trim_start_matches("local ")
            .trim_start_matches("session.")
            .trim_start_matches("local.")
            .trim()
            .to_string();
        if let Some(global) = name
            .strip_prefix("global ")
            .or(name.strip_prefix("global."))
        {
            return Answer::Error {
                code: ErrorKind::ER_SPECIFIC_ACCESS_DENIED_ERROR,
                message: format!(
                    "SET GLOBAL {}: global variables are srbackup.conf settings; set it for the session instead",
                    global.trim()
                ),
            };
        }
        let name = name.trim_matches('`').to_string();
        let value = unquote(value.trim());
        if name == SNAPSHOT_TIME {
            if value.is_empty()
                || value.eq_ignore_ascii_case("default")
                || value.eq_ignore_ascii_case("null")
            {
                values.push((name, String::new()));
                continue;
            }
            match crate::repo::SnapshotId::new("label", &value) {
                Ok(id) => values.push((name, id.timestamp)),
                Err(e) => {
                    return Answer::Error {
                        code: ErrorKind::ER_WRONG_VALUE_FOR_VAR,
                        message: format!("srbackup_snapshot_time: {e}"),
                    };
                }
            }
            continue;
        }
        let Some((_, _, kind)) = DEFAULTS.iter().find(|(n, ..)| *n == name) else {
            // StarRocks has hundreds of session variables (query tuning): accepted, and
            // they change nothing here.
            continue;
        };
        if let Err(message) = check_value(&name, &value) {
            return Answer::Error {
                code: ErrorKind::ER_WRONG_VALUE_FOR_VAR,
                message,
            };
        }
        let value = match (kind, value.to_ascii_lowercase().as_str()) {
            (_, "default") => default_value(
                &name,
                DEFAULTS
                    .iter()
                    .find(|(n, ..)| *n == name)
                    .map(|d| d.1)
                    .unwrap_or(""),
            ),
            (ColumnKind::Integer, "on" | "true") => "1".into(),
            (ColumnKind::Integer, "off" | "false") => "0".into(),
            (ColumnKind::Integer, v) if v.parse::<i64>().is_err() => {
                return Answer::Error {
                    code: ErrorKind::ER_WRONG_VALUE_FOR_VAR,
                    message: format!("Variable '{name}' can't be set to the value of '{value}'"),
                };
            }
            _ => value,
        };
        if name == "tx_isolation" || name == "transaction_isolation" {
            values.push(("tx_isolation".into(), value.clone()));
            values.push(("transaction_isolation".into(), value));
        } else {
            values.push((canonical(&name).to_string(), value));
        }
    }
    Answer::Set(values)
}

/// Values a variable cannot take here, with why: the server's clock is UTC (a session in another
/// zone would see NOW() and DATETIME values shifted), text is UTF-8, a timeout is positive.
fn check_value(name: &str, value: &str) -> Result<(), String> {
    let lower = value.to_ascii_lowercase();
    match name {
        "time_zone"
            if !matches!(
                lower.as_str(),
                "utc"
                    | "+00:00"
                    | "+0:00"
                    | "-00:00"
                    | "system"
                    | "etc/utc"
                    | "gmt"
                    | "z"
                    | "default"
            ) =>
        {
            Err(format!(
                "Variable 'time_zone' can't be set to the value of '{value}': srbackup's time is UTC (+00:00)"
            ))
        }
        "character_set_client" | "character_set_connection" | "character_set_results"
            if !matches!(lower.as_str(), "utf8" | "utf8mb4" | "utf8mb3" | "default") =>
        {
            Err(format!(
                "Variable '{name}' can't be set to the value of '{value}': text is UTF-8"
            ))
        }
        "query_timeout" | "wait_timeout" | "interactive_timeout"
            if lower != "default"
                && !lower
                    .parse::<u64>()
                    .is_ok_and(|n| (1..=31_536_000).contains(&n)) =>
        {
            Err(format!(
                "Variable '{name}' can't be set to the value of '{value}': a number of seconds from 1 to 31536000"
            ))
        }
        _ => Ok(()),
    }
}

/// `a = 1, b = 'x,y'` → `["a = 1", "b = 'x,y'"]`: commas outside quotes and parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['\'', '"'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].replace(&format!("{q}{q}"), &q.to_string());
        }
    }
    v.to_string()
}

/// `SELECT @@a, @@session.b AS x, DATABASE(), USER() [LIMIT 1]`: every item a session variable
/// or a session function, or `None` (an ordinary query).
fn session_values(text: &str, client: Client<'_>, vars: &Variables) -> Option<Answer> {
    let body = &text["select".len()..];
    let body = match body.to_ascii_lowercase().find(" limit ") {
        Some(i) => &body[..i],
        None => body,
    };
    let mut columns = Vec::new();
    let mut row = Vec::new();
    let mut kinds = Vec::new();
    for item in split_top_level(body) {
        let (expr, alias) = match item.to_ascii_lowercase().find(" as ") {
            Some(i) => (
                item[..i].trim(),
                Some(item[i + 4..].trim().trim_matches('`')),
            ),
            None => (item, None),
        };
        let lower = expr.to_ascii_lowercase().replace(' ', "");
        let (value, kind) = if let Some(name) = lower.strip_prefix("@@") {
            let name = name
                .trim_start_matches("session.")
                .trim_start_matches("local.")
                .trim_start_matches("global.");
            match vars.get(name) {
                Some((v, k)) => (Some(v), k),
                None => {
                    return Some(Answer::Error {
                        code: ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE,
                        message: format!("Unknown system variable '{name}'"),
                    });
                }
            }
        } else {
            match lower.as_str() {
                "database()" | "schema()" => {
                    (client.database.map(str::to_string), ColumnKind::Text)
                }
                "user()" | "session_user()" | "system_user()" => {
                    (Some(client.user.to_string()), ColumnKind::Text)
                }
                "current_user()" | "current_user" => {
                    (Some(client.account.to_string()), ColumnKind::Text)
                }
                "current_role()" => match client.roles {
                    Some(r) => (Some(r.to_string()), ColumnKind::Text),
                    None => return None,
                },
                "version()" => (Some(server_version()), ColumnKind::Text),
                "current_version()" => (Some(starrocks_version()), ColumnKind::Text),
                "connection_id()" => (Some(client.connection_id.to_string()), ColumnKind::Integer),
                _ => return None,
            }
        };
        columns.push(alias.unwrap_or(expr).to_string());
        row.push(value);
        kinds.push(kind);
    }
    if columns.is_empty() {
        return None;
    }
    Some(Answer::Rows(ResultSet {
        columns,
        rows: vec![row],
        kinds,
    }))
}

/// The SHOW statements about the session and the server process (the catalog's are statements
/// of the grammar): VARIABLES, FRONTENDS, BACKENDS, PROC '/frontends' | '/backends'.
fn show(text: &str, rest: &[&str], client: Client<'_>, vars: &Variables) -> Option<Answer> {
    let (rows, filter_at) = match rest {
        ["variables", ..] => (variables(vars), 2),
        ["full" | "global" | "session" | "local", "variables", ..] => (variables(vars), 3),
        ["frontends"] => (frontends(client), 2),
        ["engines", ..] => (engines(), 2),
        ["charset", ..] | ["character", "set", ..] => {
            (charsets(), if rest[0] == "charset" { 2 } else { 3 })
        }
        ["collation", ..] => (collations(), 2),
        ["backends"] => (backends(client), 2),
        ["proc", path] => match path.trim_matches(|c| c == '\'' || c == '"') {
            "/frontends" => (frontends(client), 3),
            "/backends" => (backends(client), 3),
            // The catalog's ('/dbs'), or an error naming what is: the session's SHOW PROC.
            _ => return None,
        },
        _ => return None,
    };
    Some(filtered(rows, text, filter_at))
}

/// Applies `LIKE 'pattern'` (to the first column, case-insensitively, as MySQL does) or
/// `WHERE condition` after the first `words` words of `text`.
fn filtered(mut rows: ResultSet, text: &str, words: usize) -> Answer {
    let tail = skip_words(text, words);
    let lower = tail.to_ascii_lowercase();
    if tail.is_empty() {
        Answer::Rows(rows)
    } else if lower.starts_with("like") && lower[4..].starts_with(char::is_whitespace) {
        let pattern = unquote(tail[4..].trim());
        rows.rows.retain(|r| {
            r.first()
                .and_then(|v| v.as_deref())
                .is_some_and(|v| like(&v.to_lowercase(), &pattern.to_lowercase()))
        });
        Answer::Rows(rows)
    } else if lower.starts_with("where") && lower[5..].starts_with(char::is_whitespace) {
        Answer::RowsWhere {
            rows,
            condition: tail[5..].trim().to_string(),
        }
    } else {
        Answer::Error {
            code: ErrorKind::ER_PARSE_ERROR,
            message: format!("unexpected `{tail}`: expected LIKE 'pattern' or WHERE condition"),
        }
    }
}

fn skip_words(text: &str, words: usize) -> &str {
    let mut rest = text.trim_start();
    for _ in 0..words {
        rest = rest
            .find(char::is_whitespace)
            .map(|i| rest[i..].trim_start())
            .unwrap_or("");
    }
    rest.trim()
}

/// `SHOW ENGINES`: the one storage engine here, as StarRocks lists its own.
fn engines() -> ResultSet {
    let mut rs = ResultSet::new(&[
        "Engine",
        "Support",
        "Comment",
        "Transactions",
        "XA",
        "Savepoints",
    ]);
    rs.push(
        [
            "OLAP",
            "YES",
            "Default storage engine of StarRocks",
            "YES",
            "NO",
            "NO",
        ]
        .iter()
        .map(|v| Some(v.to_string()))
        .collect(),
    );
    rs
}

/// `SHOW CHARSET`: text is UTF-8.
fn charsets() -> ResultSet {
    let mut rs = ResultSet::new(&["Charset", "Description", "Default collation", "Maxlen"]);
    for (cs, desc, coll, len) in [
        ("utf8", "UTF-8 Unicode", "utf8_general_ci", "3"),
        ("utf8mb4", "UTF-8 Unicode", "utf8mb4_general_ci", "4"),
    ] {
        rs.push(vec![
            Some(cs.into()),
            Some(desc.into()),
            Some(coll.into()),
            Some(len.into()),
        ]);
    }
    rs.kinds = vec![
        ColumnKind::Text,
        ColumnKind::Text,
        ColumnKind::Text,
        ColumnKind::Integer,
    ];
    rs
}

/// `SHOW COLLATION`: the UTF-8 collations clients ask for (their ids are MySQL's).
fn collations() -> ResultSet {
    let mut rs = ResultSet::new(&[
        "Collation",
        "Charset",
        "Id",
        "Default",
        "Compiled",
        "Sortlen",
    ]);
    for (coll, cs, id, default) in [
        ("utf8_general_ci", "utf8", "33", "Yes"),
        ("utf8mb4_general_ci", "utf8mb4", "45", "Yes"),
        ("utf8mb4_0900_ai_ci", "utf8mb4", "255", ""),
        ("utf8mb4_bin", "utf8mb4", "46", ""),
    ] {
        rs.push(vec![
            Some(coll.into()),
            Some(cs.into()),
            Some(id.into()),
            Some(default.into()),
            Some("Yes".into()),
            Some("1".into()),
        ]);
    }
    rs.kinds = vec![ColumnKind::Text, ColumnKind::Text, ColumnKind::Integer];
    rs
}

fn variables(vars: &Variables) -> ResultSet {
    let mut rs = ResultSet::new(&["Variable_name", "Value"]);
    for (name, value) in vars.all() {
        rs.push(vec![Some(name), Some(value)]);
    }
    rs
}

/// One frontend: this process. StarRocks 4.0's columns (a leading `Id`), which starrocks-br
/// reads by position (`[9]` Join, `[10]` Alive).
fn frontends(client: Client<'_>) -> ResultSet {
    let (ip, port) = address(client);
    let mut rs = ResultSet::new(&[
        "Id",
        "Name",
        "IP",
        "EditLogPort",
        "HttpPort",
        "QueryPort",
        "RpcPort",
        "Role",
        "ClusterId",
        "Join",
        "Alive",
        "ReplayedJournalId",
        "LastHeartbeat",
        "IsHelper",
        "ErrMsg",
        "StartTime",
        "Version",
    ]);
    let s = |v: &str| Some(v.to_string());
    rs.push(vec![
        s("1"),
        Some(format!("srbackup_{ip}_{port}")),
        s(&ip),
        s("0"),
        s("0"),
        Some(port.to_string()),
        s("0"),
        s("LEADER"),
        s("1"),
        s("true"),
        s("true"),
        s("0"),
        s(client.started),
        s("true"),
        s(""),
        s(client.started),
        Some(starrocks_version()),
    ]);
    rs.kinds = vec![ColumnKind::Integer];
    rs
}

/// One backend: this process, which stores the embedded engine's data.
fn backends(client: Client<'_>) -> ResultSet {
    let (ip, _) = address(client);
    let columns = [
        "BackendId",
        "IP",
        "HeartbeatPort",
        "BePort",
        "HttpPort",
        "BrpcPort",
        "LastStartTime",
        "LastHeartbeat",
        "Alive",
        "SystemDecommissioned",
        "ClusterDecommissioned",
        "TabletNum",
        "DataUsedCapacity",
        "AvailCapacity",
        "TotalCapacity",
        "UsedPct",
        "MaxDiskUsedPct",
        "ErrMsg",
        "Version",
        "Status",
        "DataTotalCapacity",
        "DataUsedPct",
        "CpuCores",
        "NumRunningQueries",
        "MemUsedPct",
        "CpuUsedPct",
    ];
    let mut rs = ResultSet::new(&columns);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let s = |v: &str| Some(v.to_string());
    rs.push(vec![
        s("1"),
        s(&ip),
        s("0"),
        s("0"),
        s("0"),
        s("0"),
        s(client.started),
        s(client.started),
        s("true"),
        s("false"),
        s("false"),
        s("0"),
        s("0.000 B"),
        s("0.000 B"),
        s("0.000 B"),
        s("0.00 %"),
        s("0.00 %"),
        s(""),
        Some(starrocks_version()),
        s("{}"),
        s("0.000 B"),
        s("0.00 %"),
        Some(cores.to_string()),
        s("0"),
        s("0.00 %"),
        s("0.0 %"),
    ]);
    rs.kinds = vec![ColumnKind::Integer];
    rs
}

fn address(client: Client<'_>) -> (String, u16) {
    match client.listen {
        Some(a) => (a.ip().to_string(), a.port()),
        None => ("127.0.0.1".into(), 0),
    }
}

/// `ADMIN SHOW FRONTEND CONFIG [LIKE 'x']`: the settings tools read (SQLAlchemy's StarRocks
/// dialect reads `run_mode`).
fn frontend_config(text: &str) -> Answer {
    let mut rs = ResultSet::new(&["Key", "AliasNames", "Value", "Type", "IsMutable", "Comment"]);
    for (key, value, kind) in [
        ("run_mode", "shared_nothing", "String"),
        ("mysql_server_version", "5.1.0", "String"),
        ("max_backup_restore_job_num_per_db", "1", "int"),
    ] {
        rs.push(vec![
            Some(key.into()),
            Some("[]".into()),
            Some(value.into()),
            Some(kind.into()),
            Some("false".into()),
            Some(String::new()),
        ]);
    }
    filtered(rs, text, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(sql: &str) -> Option<Answer> {
        answer(sql, Client::default(), &Variables::default())
    }

    fn rows(sql: &str, vars: &Variables) -> ResultSet {
        match answer(sql, Client::default(), vars) {
            Some(Answer::Rows(rs)) => rs,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn client_statements_are_answered() {
        assert_eq!(ask("COMMIT"), Some(Answer::Ok));
        assert_eq!(ask("commit work"), Some(Answer::Ok));
        assert_eq!(ask("SET NAMES utf8mb4"), Some(Answer::Ok));
        assert_eq!(
            ask("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'"),
            Some(Answer::Ok)
        );
        assert_eq!(ask("SELECT * FROM t"), None);
        assert_eq!(ask("SELECT count(*), version() FROM t"), None);
        assert_eq!(ask("BACKUP SNAPSHOT sr_hub.x TO r"), None);
        assert_eq!(ask("SHOW DATABASES"), None);
        let vars = Variables::default();
        let rs = rows("select @@version_comment limit 1", &vars);
        assert_eq!(rs.columns, vec!["@@version_comment"]);
        assert!(rs.rows[0][0].as_deref().unwrap().starts_with("srbackup"));
        let rs = rows(
            "SELECT @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client",
            &vars,
        );
        assert_eq!(
            rs.columns,
            vec!["auto_increment_increment", "@@character_set_client"]
        );
        assert_eq!(rs.rows[0], vec![Some("1".into()), Some("utf8".into())]);
        assert!(matches!(
            ask("select @@no_such_thing"),
            Some(Answer::Error {
                code: ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE,
                ..
            })
        ));
        // What the mysql client's `status` command sends.
        let client = Client {
            database: Some("sr_hub"),
            user: "root@127.0.0.1",
            connection_id: 7,
            ..Client::default()
        };
        let Some(Answer::Rows(rs)) = answer("select DATABASE(), USER() limit 1", client, &vars)
        else {
            panic!()
        };
        assert_eq!(rs.columns, vec!["DATABASE()", "USER()"]);
        assert_eq!(
            rs.rows[0],
            vec![Some("sr_hub".into()), Some("root@127.0.0.1".into())]
        );
        // Connector/J's first query: a comment, then every variable it reads.
        let rs = rows(
            "/* mysql-connector-java-8.0.33 */SELECT @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@character_set_connection AS character_set_connection, @@character_set_results AS character_set_results, @@character_set_server AS character_set_server, @@collation_server AS collation_server, @@collation_connection AS collation_connection, @@init_connect AS init_connect, @@interactive_timeout AS interactive_timeout, @@license AS license, @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS max_allowed_packet, @@net_write_timeout AS net_write_timeout, @@performance_schema AS performance_schema, @@query_cache_size AS query_cache_size, @@query_cache_type AS query_cache_type, @@sql_mode AS sql_mode, @@system_time_zone AS system_time_zone, @@time_zone AS time_zone, @@transaction_isolation AS transaction_isolation, @@wait_timeout AS wait_timeout",
            &vars,
        );
        assert_eq!(rs.columns.len(), 21);
        assert_eq!(rs.get(0, "time_zone"), Some("UTC"));
        for sql in [
            "SHOW ENGINES",
            "SHOW CHARSET",
            "SHOW CHARACTER SET LIKE 'utf8%'",
            "SHOW COLLATION WHERE Charset = 'utf8mb4'",
        ] {
            assert!(
                matches!(ask(sql), Some(Answer::Rows(_) | Answer::RowsWhere { .. })),
                "{sql}"
            );
        }
        // SQLAlchemy's StarRocks dialect reads a version it can parse.
        let rs = rows("SELECT CURRENT_VERSION()", &vars);
        assert!(rs.rows[0][0].as_deref().unwrap().starts_with("3.5.0-"));
    }

    #[test]
    fn session_variables_are_set_shown_and_read() {
        let mut vars = Variables::default();
        let Some(Answer::Set(values)) = ask(
            "SET @@session.autocommit = OFF, time_zone = '+00:00', query_mem_limit = 5, query_timeout = 600",
        ) else {
            panic!()
        };
        vars.apply(values);
        assert_eq!(
            rows("SELECT @@autocommit", &vars).rows[0][0].as_deref(),
            Some("0")
        );
        let rs = rows("SHOW VARIABLES LIKE 'time_zone'", &vars);
        assert_eq!(rs.columns, vec!["Variable_name", "Value"]);
        assert_eq!(
            rs.rows,
            vec![vec![Some("time_zone".into()), Some("+00:00".into())]]
        );
        assert_eq!(vars.query_timeout(), std::time::Duration::from_secs(600));
        // What cannot hold here is refused, not ignored: the clock is UTC, text is UTF-8,
        // a timeout is a positive number of seconds.
        for refused in [
            "SET time_zone = '+08:00'",
            "SET time_zone = 'garbage'",
            "SET NAMES latin1",
            "SET character_set_results = 'latin1'",
            "SET query_timeout = -1",
            "SET query_timeout = 0",
        ] {
            assert!(
                matches!(ask(refused), Some(Answer::Error { .. })),
                "{refused}"
            );
        }
        assert_eq!(
            ask("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_0900_ai_ci'"),
            Some(Answer::Ok)
        );
        // LIKE is case-insensitive and has wildcards; other forms of SHOW VARIABLES.
        let rs = rows("show session variables like 'TX\\_%'", &vars);
        assert_eq!(rs.rows.len(), 2);
        assert_eq!(
            rows("SHOW GLOBAL VARIABLES", &vars).rows.len(),
            DEFAULTS.len() + 1
        );
        // SQLAlchemy turns lower_case_table_names into an int.
        let rs = rows("SHOW VARIABLES LIKE 'lower_case_table_names'", &vars);
        assert_eq!(rs.rows[0][1].as_deref(), Some("0"));
        assert!(matches!(
            ask("SHOW VARIABLES WHERE Variable_name = 'sql_mode'"),
            Some(Answer::RowsWhere { condition, .. }) if condition == "Variable_name = 'sql_mode'"
        ));
        // Both names of the isolation level move together.
        let Some(Answer::Set(values)) = ask("SET SESSION tx_isolation = 'READ-COMMITTED'") else {
            panic!()
        };
        vars.apply(values);
        let rs = rows("select @@transaction_isolation, @@tx_isolation", &vars);
        assert_eq!(
            rs.rows[0],
            vec![Some("READ-COMMITTED".into()), Some("READ-COMMITTED".into())]
        );
        // Refused: a non-number for a number, a global, users.
        assert!(matches!(
            ask("SET autocommit = 'maybe'"),
            Some(Answer::Error {
                code: ErrorKind::ER_WRONG_VALUE_FOR_VAR,
                ..
            })
        ));
        assert!(matches!(
            ask("SET GLOBAL time_zone = 'UTC'"),
            Some(Answer::Error { .. })
        ));
        // Account statements are the session's (grammar/accounts.pest), however spaced.
        assert!(ask("SET PASSWORD = PASSWORD('x')").is_none());
        assert!(ask("SET PASSWORD=PASSWORD('x')").is_none());
        assert!(ask("set password='x'").is_none());
        assert!(ask("SET passwords = 1").is_some());
        assert!(ask("SET ROLE ALL").is_none());
        assert!(ask("set default role none to u").is_none());
    }

    #[test]
    fn frontends_and_backends_are_this_process() {
        let client = Client {
            listen: Some("127.0.0.1:9030".parse().unwrap()),
            started: "2026-11-30 01:00:00",
            ..Client::default()
        };
        let vars = Variables::default();
        let Some(Answer::Rows(fe)) = answer("SHOW FRONTENDS", client, &vars) else {
            panic!()
        };
        // starrocks-br reads [9] Join and [10] Alive.
        assert_eq!(fe.columns[9], "Join");
        assert_eq!(fe.columns[10], "Alive");
        assert_eq!(fe.rows[0][10].as_deref(), Some("true"));
        assert_eq!(fe.get(0, "QueryPort"), Some("9030"));
        let Some(Answer::Rows(be)) = answer("show proc '/backends'", client, &vars) else {
            panic!()
        };
        assert_eq!(be.columns[8], "Alive");
        assert_eq!(be.rows[0][8].as_deref(), Some("true"));
        // Other paths are the catalog's (SHOW PROC '/dbs') or refused there.
        assert!(ask("SHOW PROC '/jobs'").is_none());
        let Some(Answer::Rows(config)) = ask("ADMIN SHOW FRONTEND CONFIG LIKE 'run_mode'") else {
            panic!()
        };
        assert_eq!(config.rows.len(), 1);
        assert_eq!(config.rows[0][2].as_deref(), Some("shared_nothing"));
    }

    #[test]
    fn like_matches_as_sql_does() {
        assert!(like("time_zone", "time%"));
        assert!(like("time_zone", "%zone"));
        assert!(like("time_zone", "time_zone"));
        assert!(like("timexzone", "time_zone"));
        assert!(!like("timexzone", "time\\_zone"));
        assert!(!like("time_zone", "zone%"));
        assert!(like("", "%"));
        assert!(like("a%b", "a\\%b"));
        assert!(!like("axb", "a\\%b"));
        // Many `%`s do not explode (backtracking would take 2^40 steps).
        assert!(!like(&"a".repeat(40), &format!("{}b", "%a".repeat(40))));
    }

    #[test]
    fn snapshot_time_is_a_session_variable() {
        let mut vars = Variables::default();
        let Some(Answer::Set(v)) = ask("SET srbackup_snapshot_time = '2024-12-09-10-25-58-842'")
        else {
            panic!()
        };
        vars.apply(v);
        assert_eq!(vars.snapshot_time(), Some("2024-12-09-10-25-58-842"));
        let Some(Answer::Set(v)) = ask("set srbackup_snapshot_time = DEFAULT") else {
            panic!()
        };
        vars.apply(v);
        assert_eq!(vars.snapshot_time(), None);
        assert!(matches!(
            ask("SET srbackup_snapshot_time = 'yesterday'"),
            Some(Answer::Error {
                code: ErrorKind::ER_WRONG_VALUE_FOR_VAR,
                ..
            })
        ));
    }
}
