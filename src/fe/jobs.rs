//! StarRocks' own jobs: the BACKUP and RESTORE statements srbackup sends (built here, from
//! typed parts, so a plan holds exactly the text that will be sent), and their state as
//! `SHOW BACKUP FROM db` / `SHOW RESTORE FROM db` report it.

use serde::{Deserialize, Serialize};

use super::catalog::ObjectKind;
use super::{Fe, Result, literal, quote};

/// One item of an ON (...) list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub kind: ItemKind,
    pub name: String,
    /// Only these partitions (tables); empty is the whole object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
    /// RESTORE: the name it is restored as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Table,
    View,
    MaterializedView,
    Function,
}

impl From<ObjectKind> for ItemKind {
    fn from(k: ObjectKind) -> ItemKind {
        match k {
            ObjectKind::Table => ItemKind::Table,
            ObjectKind::View => ItemKind::View,
            ObjectKind::MaterializedView => ItemKind::MaterializedView,
        }
    }
}

impl ItemKind {
    fn keyword(self) -> &'static str {
        match self {
            ItemKind::Table => "TABLE",
            ItemKind::View => "VIEW",
            ItemKind::MaterializedView => "MATERIALIZED VIEW",
            ItemKind::Function => "FUNCTION",
        }
    }
}

fn on_list(items: &[Item]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|i| {
            let mut s = format!("{} {}", i.kind.keyword(), quote(&i.name));
            if !i.partitions.is_empty() {
                let ps: Vec<String> = i.partitions.iter().map(|p| quote(p)).collect();
                s.push_str(&format!(" PARTITION ({})", ps.join(", ")));
            }
            if let Some(a) = &i.alias {
                s.push_str(&format!(" AS {}", quote(a)));
            }
            s
        })
        .collect();
    format!("ON ({})", parts.join(", "))
}

/// `BACKUP DATABASE db SNAPSHOT label TO repo ON (...) PROPERTIES ("type" = "FULL", "timeout" = …)`
/// (StarRocks 3.4's form; BACKUP.md).
pub fn backup(db: &str, label: &str, repo: &str, items: &[Item], timeout_s: u64) -> String {
    format!(
        "BACKUP DATABASE {} SNAPSHOT {} TO {} {} PROPERTIES (\"type\" = \"FULL\", \"timeout\" = \"{}\")",
        quote(db),
        quote(label),
        quote(repo),
        on_list(items),
        timeout_s
    )
}

/// `RESTORE SNAPSHOT label FROM repo DATABASE db [AS target] ON (...) PROPERTIES (...)`
/// (RESTORE.md; `backup_timestamp` and `replication_num` always given).
#[allow(clippy::too_many_arguments)]
pub fn restore(
    label: &str,
    repo: &str,
    db: &str,
    target: &str,
    items: &[Item],
    timestamp: &str,
    replication_num: u32,
    timeout_s: u64,
) -> String {
    let alias = if target != db {
        format!(" AS {}", quote(target))
    } else {
        String::new()
    };
    format!(
        "RESTORE SNAPSHOT {} FROM {} DATABASE {}{} {} PROPERTIES (\"backup_timestamp\" = {}, \"replication_num\" = \"{}\", \"timeout\" = \"{}\")",
        quote(label),
        quote(repo),
        quote(db),
        alias,
        on_list(items),
        literal(timestamp),
        replication_num,
        timeout_s
    )
}

/// `BACKUP EXTERNAL CATALOG (c, …) SNAPSHOT label TO repo` (metadata only; 3.4+).
pub fn backup_catalogs(label: &str, repo: &str, catalogs: &[String]) -> String {
    let cs: Vec<String> = catalogs.iter().map(|c| quote(c)).collect();
    format!(
        "BACKUP EXTERNAL CATALOG ({}) SNAPSHOT {} TO {}",
        cs.join(", "),
        quote(label),
        quote(repo)
    )
}

/// `RESTORE SNAPSHOT label FROM repo EXTERNAL CATALOG (c [AS d], …) PROPERTIES (...)`.
pub fn restore_catalogs(
    label: &str,
    repo: &str,
    catalogs: &[(String, Option<String>)],
    timestamp: &str,
) -> String {
    let cs: Vec<String> = catalogs
        .iter()
        .map(|(c, a)| match a {
            Some(a) => format!("{} AS {}", quote(c), quote(a)),
            None => quote(c),
        })
        .collect();
    format!(
        "RESTORE SNAPSHOT {} FROM {} EXTERNAL CATALOG ({}) PROPERTIES (\"backup_timestamp\" = {})",
        quote(label),
        quote(repo),
        cs.join(", "),
        literal(timestamp)
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Backup,
    Restore,
}

impl JobKind {
    pub fn keyword(self) -> &'static str {
        match self {
            JobKind::Backup => "BACKUP",
            JobKind::Restore => "RESTORE",
        }
    }
}

/// A native job as SHOW BACKUP / SHOW RESTORE shows the last one of a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus {
    pub job_id: String,
    pub label: String,
    pub state: String,
    /// `[OK]` or `[<ErrCode>, msg: <text>]`.
    pub status: String,
    pub progress: Option<String>,
    pub task_errors: Option<String>,
}

impl JobStatus {
    pub fn finished(&self) -> bool {
        self.state.eq_ignore_ascii_case("FINISHED")
    }

    pub fn cancelled(&self) -> bool {
        self.state.eq_ignore_ascii_case("CANCELLED")
    }

    pub fn done(&self) -> bool {
        self.finished() || self.cancelled()
    }

    /// Whether a person (CANCEL BACKUP/RESTORE) stopped it, rather than a failure: such a job
    /// is not retried.
    pub fn cancelled_by_user(&self) -> bool {
        let s = format!(
            "{} {}",
            self.status,
            self.task_errors.as_deref().unwrap_or_default()
        )
        .to_ascii_lowercase();
        // StarRocks: "user cancelled"; srbackup serve: "cancelled by CANCEL BACKUP".
        self.cancelled()
            && (s.contains("user cancel")
                || s.contains("cancelled by user")
                || s.contains("cancelled by cancel"))
    }
}

/// The last job of `kind` in `db`; `None` when there is none (or the last job there is of the
/// other kind).
pub async fn show(fe: &mut Fe, kind: JobKind, db: &str) -> Result<Option<JobStatus>> {
    let sql = format!("SHOW {} FROM {}", kind.keyword(), quote(db));
    let rows = fe.query(&sql).await?;
    let label_column = match kind {
        JobKind::Backup => "SnapshotName",
        JobKind::Restore => "Label",
    };
    let Some(i) = rows.len().checked_sub(1) else {
        return Ok(None);
    };
    Ok(Some(JobStatus {
        job_id: rows.need(i, "JobId", &sql)?.unwrap_or("").to_string(),
        label: rows.need(i, label_column, &sql)?.unwrap_or("").to_string(),
        state: rows.need(i, "State", &sql)?.unwrap_or("").to_string(),
        status: rows.need(i, "Status", &sql)?.unwrap_or("").to_string(),
        progress: rows.get(i, "Progress").map(str::to_string),
        task_errors: rows
            .get(i, "TaskErrMsg")
            .filter(|t| !t.is_empty() && *t != "NULL")
            .map(str::to_string),
    }))
}

/// `CANCEL BACKUP FROM db` / `CANCEL RESTORE FROM db`.
pub fn cancel_statement(kind: JobKind, db: &str) -> String {
    format!("CANCEL {} FROM {}", kind.keyword(), quote(db))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_every_name() {
        let items = vec![
            Item {
                kind: ItemKind::Table,
                name: "t`x".into(),
                partitions: vec!["p1".into(), "p2".into()],
                alias: None,
            },
            Item {
                kind: ItemKind::MaterializedView,
                name: "mv".into(),
                partitions: vec![],
                alias: None,
            },
        ];
        assert_eq!(
            backup("db", "l__b1", "r", &items, 86400),
            "BACKUP DATABASE `db` SNAPSHOT `l__b1` TO `r` ON (TABLE `t``x` PARTITION (`p1`, `p2`), \
             MATERIALIZED VIEW `mv`) PROPERTIES (\"type\" = \"FULL\", \"timeout\" = \"86400\")"
        );
        let mut t = items[0].clone();
        t.alias = Some("tmp".into());
        assert_eq!(
            restore(
                "l__b1",
                "r",
                "db",
                "db2",
                &[t],
                "2024-01-01-00-00-00-000",
                1,
                600
            ),
            "RESTORE SNAPSHOT `l__b1` FROM `r` DATABASE `db` AS `db2` ON (TABLE `t``x` PARTITION \
             (`p1`, `p2`) AS `tmp`) PROPERTIES (\"backup_timestamp\" = '2024-01-01-00-00-00-000', \
             \"replication_num\" = \"1\", \"timeout\" = \"600\")"
        );
    }
}
