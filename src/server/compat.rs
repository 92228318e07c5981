//! Statements MySQL clients and drivers send on their own, which are not srbackup statements:
//! `SELECT @@version_comment` (the mysql client at start), `SET NAMES …` and `SET autocommit`
//! (drivers), `COMMIT` (drivers after each statement), `SELECT DATABASE()` (the client's
//! `status`). StarRocks answers them; so does the server, without passing them to the parser.
//!
//! One session variable is srbackup's own: `SET srbackup_snapshot_time = 'yyyy-MM-dd-HH-mm-ss-SSS'`
//! gives the session's next BACKUPs that snapshot timestamp (what `SRBACKUP_SNAPSHOT_TIME` does
//! for the CLI), so scripts can run the spec's RESTOREs with the timestamps they carry.

use opensrv_mysql::ErrorKind;

use crate::session::{ColumnKind, ResultSet};

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

/// Answers `sql` when it is one of the client statements above; `None` sends it to the parser.
pub fn answer(sql: &str, current_database: Option<&str>) -> Option<Answer> {
    let text = sql.trim().trim_end_matches(';').trim();
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.as_slice() {
        ["begin"] | ["start", "transaction"] | ["commit"] | ["rollback"] => Some(Answer::Ok),
        ["set", ..] => Some(set(text, &lower)),
        ["select", "database()"] => {
            let mut rs = ResultSet::new(&["DATABASE()"]);
            rs.push(vec![current_database.map(str::to_string)]);
            Some(Answer::Rows(rs))
        }
        ["select", first, ..] if first.starts_with("@@") => Some(variables(text)),
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

/// `SELECT @@a, @@session.b AS x [LIMIT 1]`.
fn variables(text: &str) -> Answer {
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
        let name = expr
            .trim_start_matches("@@")
            .to_ascii_lowercase()
            .trim_start_matches("session.")
            .trim_start_matches("global.")
            .to_string();
        let Some((value, kind)) = variable(&name) else {
            return Answer::Error {
                code: ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE,
                message: format!("Unknown system variable '{name}'"),
            };
        };
        columns.push(alias.unwrap_or(expr).to_string());
        row.push(Some(value));
        kinds.push(kind);
    }
    Answer::Rows(ResultSet {
        columns,
        rows: vec![row],
        kinds,
    })
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
        assert_eq!(answer("COMMIT", None), Some(Answer::Ok));
        assert_eq!(answer("SET NAMES utf8mb4", None), Some(Answer::Ok));
        assert_eq!(answer("SELECT * FROM t", None), None);
        assert_eq!(answer("BACKUP SNAPSHOT sr_hub.x TO r", None), None);
        let Some(Answer::Rows(rs)) = answer("select @@version_comment limit 1", None) else {
            panic!()
        };
        assert_eq!(rs.columns, vec!["@@version_comment"]);
        assert!(rs.rows[0][0].as_deref().unwrap().starts_with("srbackup"));
        let Some(Answer::Rows(rs)) = answer(
            "SELECT @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client",
            None,
        ) else {
            panic!()
        };
        assert_eq!(
            rs.columns,
            vec!["auto_increment_increment", "@@character_set_client"]
        );
        assert_eq!(rs.rows[0], vec![Some("1".into()), Some("utf8mb4".into())]);
        assert!(matches!(
            answer("select @@no_such_thing", None),
            Some(Answer::Error {
                code: ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE,
                ..
            })
        ));
        let Some(Answer::Rows(rs)) = answer("SELECT DATABASE()", Some("sr_hub")) else {
            panic!()
        };
        assert_eq!(rs.rows[0][0].as_deref(), Some("sr_hub"));
    }

    #[test]
    fn snapshot_time_is_a_session_variable() {
        assert_eq!(
            answer(
                "SET srbackup_snapshot_time = '2024-12-09-10-25-58-842'",
                None
            ),
            Some(Answer::SnapshotTime(Some("2024-12-09-10-25-58-842".into())))
        );
        assert_eq!(
            answer("set srbackup_snapshot_time = DEFAULT", None),
            Some(Answer::SnapshotTime(None))
        );
        assert!(matches!(
            answer("SET srbackup_snapshot_time = 'yesterday'", None),
            Some(Answer::Error {
                code: ErrorKind::ER_WRONG_VALUE_FOR_VAR,
                ..
            })
        ));
    }
}
