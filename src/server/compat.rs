//! Statements MySQL clients and drivers send on their own, which are not srbackup statements:
//! `SELECT @@version_comment` (the mysql client at start), `SET NAMES …` and `SET autocommit`
//! (drivers), `COMMIT` (drivers after each statement), `SELECT DATABASE(), USER()` (the
//! client's `status`). StarRocks answers them; so does the server, without passing them to the parser.
//!
//! One session variable is srbackup's own: `SET srbackup_snapshot_time = 'yyyy-MM-dd-HH-mm-ss-SSS'`
//! gives the session's next BACKUPs that snapshot timestamp (what `SRBACKUP_SNAPSHOT_TIME` does
//! for the CLI), so scripts can run the spec's RESTOREs with the timestamps they carry.

use opensrv_mysql::ErrorKind;

use crate::results::{ColumnKind, ResultSet};

/// What the server answers instead of running a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Rows(ResultSet),
    /// `SET srbackup_snapshot_time = …` (`None`: back to the current time).
    SnapshotTime(Option<String>),
    Error {
        code: ErrorKind,
        message: String,
    },
}

/// The server version clients see: StarRocks' default `mysql_server_version` (5.1.0), then ours.
pub fn server_version() -> String {
    format!("5.1.0-srbackup-{}", env!("CARGO_PKG_VERSION"))
}

/// Who is asking: what `DATABASE()`, `USER()` and `CONNECTION_ID()` answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client<'a> {
    pub database: Option<&'a str>,
    /// `user@host`, as MySQL's `USER()` shows it.
    pub user: &'a str,
    pub connection_id: u32,
}

/// Answers `sql` when it is one of the client statements above; `None` sends it to the parser.
pub fn answer(sql: &str, client: Client<'_>) -> Option<Answer> {
    let text = sql.trim().trim_end_matches(';').trim();
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.as_slice() {
        ["begin"] | ["start", "transaction"] | ["commit"] | ["rollback"] => Some(Answer::Ok),
        ["set", ..] => Some(set(text, &lower)),
        ["select", ..] => session_values(text, client),
        _ => None,
    }
}
fn set(text: &str, lower: &str) -> Answer {
    if !lower.contains("srbackup_snapshot_time") {
        // Session settings of drivers (names, autocommit, sql_mode …): accepted, as every
        // statement here commits on its own and text is UTF-8.
        return Answer::Ok;
    }
    let value = text
        .split_once('=')
        .map(|(_, v)| v.trim().trim_matches(|c| c == '\'' || c == '"'))
        .unwrap_or("");
    if value.is_empty()
        || value.eq_ignore_ascii_case("default")
        || value.eq_ignore_ascii_case("null")
    {
        return Answer::SnapshotTime(None);
    }
    match crate::repo::SnapshotId::new("label", value) {
        Ok(id) => Answer::SnapshotTime(Some(id.timestamp)),
        Err(e) => Answer::Error {
            code: ErrorKind::ER_WRONG_VALUE_FOR_VAR,
            message: format!("srbackup_snapshot_time: {e}"),
        },
    }
}

/// `SELECT @@a, @@session.b AS x, DATABASE(), USER() [LIMIT 1]`: every item a session variable
/// or a session function, or `None` (an ordinary query).
fn session_values(text: &str, client: Client<'_>) -> Option<Answer> {
    let body = &text["select".len()..];
    let body = match body.to_ascii_lowercase().find(" limit ") {
        Some(i) => &body[..i],
        None => body,
    };
    let mut columns = Vec::new();
    let mut row = Vec::new();
    let mut kinds = Vec::new();
    for item in body.split(',') {
        let item = item.trim();
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
                .trim_start_matches("global.");
            match variable(name) {
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
                "user()" | "current_user()" | "session_user()" | "system_user()" => {
                    (Some(client.user.to_string()), ColumnKind::Text)
                }
                "version()" => (Some(server_version()), ColumnKind::Text),
                "connection_id()" => (Some(client.connection_id.to_string()), ColumnKind::Integer),
                _ => return None,
            }
        };
        columns.push(alias.unwrap_or(expr).to_string());
        row.push(value);
        kinds.push(kind);
    }
    Some(Answer::Rows(ResultSet {
        columns,
        rows: vec![row],
        kinds,
    }))
}

fn variable(name: &str) -> Option<(String, ColumnKind)> {
    let text = |s: &str| Some((s.to_string(), ColumnKind::Text));
    let number = |n: u64| Some((n.to_string(), ColumnKind::Integer));
    match name {
        "version_comment" => text(&format!(
            "srbackup {} (StarRocks-style BACKUP and RESTORE)",
            env!("CARGO_PKG_VERSION")
        )),
        "version" => text(&server_version()),
        "max_allowed_packet" => number(16 * 1024 * 1024),
        "auto_increment_increment" | "autocommit" => number(1),
        "lower_case_table_names" => number(0),
        "wait_timeout" | "interactive_timeout" => number(28800),
        "net_write_timeout" => number(60),
        "character_set_client"
        | "character_set_connection"
        | "character_set_results"
        | "character_set_server"
        | "character_set_database" => text("utf8mb4"),
        "collation_connection" | "collation_server" | "collation_database" => {
            text("utf8mb4_general_ci")
        }
        "sql_mode" => text(""),
        "time_zone" | "system_time_zone" => text("UTC"),
        "tx_isolation" | "transaction_isolation" => text("REPEATABLE-READ"),
        "tx_read_only" | "transaction_read_only" => number(0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_statements_are_answered() {
        let none = Client::default();
        assert_eq!(answer("COMMIT", none), Some(Answer::Ok));
        assert_eq!(answer("SET NAMES utf8mb4", none), Some(Answer::Ok));
        assert_eq!(answer("SELECT * FROM t", none), None);
        assert_eq!(answer("SELECT count(*), version() FROM t", none), None);
        assert_eq!(answer("BACKUP SNAPSHOT sr_hub.x TO r", none), None);
        let Some(Answer::Rows(rs)) = answer("select @@version_comment limit 1", none) else {
            panic!()
        };
        assert_eq!(rs.columns, vec!["@@version_comment"]);
        assert!(rs.rows[0][0].as_deref().unwrap().starts_with("srbackup"));
        let Some(Answer::Rows(rs)) = answer(
            "SELECT @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client",
            none,
        ) else {
            panic!()
        };
        assert_eq!(
            rs.columns,
            vec!["auto_increment_increment", "@@character_set_client"]
        );
        assert_eq!(rs.rows[0], vec![Some("1".into()), Some("utf8mb4".into())]);
        assert!(matches!(
            answer("select @@no_such_thing", none),
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
        };
        let Some(Answer::Rows(rs)) = answer("select DATABASE(), USER() limit 1", client) else {
            panic!()
        };
        assert_eq!(rs.columns, vec!["DATABASE()", "USER()"]);
        assert_eq!(
            rs.rows[0],
            vec![Some("sr_hub".into()), Some("root@127.0.0.1".into())]
        );
    }

    #[test]
    fn snapshot_time_is_a_session_variable() {
        assert_eq!(
            answer(
                "SET srbackup_snapshot_time = '2024-12-09-10-25-58-842'",
                Client::default()
            ),
            Some(Answer::SnapshotTime(Some("2024-12-09-10-25-58-842".into())))
        );
        assert_eq!(
            answer("set srbackup_snapshot_time = DEFAULT", Client::default()),
            Some(Answer::SnapshotTime(None))
        );
        assert!(matches!(
            answer(
                "SET srbackup_snapshot_time = 'yesterday'",
                Client::default()
            ),
            Some(Answer::Error {
                code: ErrorKind::ER_WRONG_VALUE_FOR_VAR,
                ..
            })
        ));
    }
}
