//! Checks that need no catalog: property keys and values, duplicate objects, `AS` where it means
//! nothing, column names in SHOW filters. Every problem points at the offending token.

use crate::code::Code;
use std::collections::HashMap;

use super::ast::*;
use super::error::Problem;
use super::options::{JobOptions, JobStatement};
use super::suggest::closest;

/// Output columns of `SHOW BACKUP`, as StarRocks names them.
pub const SHOW_BACKUP_COLUMNS: &[&str] = &[
    "JobId",
    "SnapshotName",
    "DbName",
    "State",
    "BackupObjs",
    "CreateTime",
    "SnapshotFinishedTime",
    "UploadFinishedTime",
    "FinishedTime",
    "UnfinishedTasks",
    "Progress",
    "TaskErrMsg",
    "Status",
    "Timeout",
];

/// Output columns of `SHOW RESTORE`, as StarRocks names them.
pub const SHOW_RESTORE_COLUMNS: &[&str] = &[
    "JobId",
    "Label",
    "Timestamp",
    "DbName",
    "State",
    "AllowLoad",
    "ReplicationNum",
    "RestoreObjs",
    "CreateTime",
    "MetaPreparedTime",
    "SnapshotFinishedTime",
    "DownloadFinishedTime",
    "FinishedTime",
    "UnfinishedTasks",
    "Progress",
    "TaskErrMsg",
    "Status",
    "Timeout",
];

pub(super) fn validate(stmt: &Statement) -> Vec<Problem> {
    let mut problems = Vec::new();
    match stmt {
        Statement::Backup(b) => check_backup(b, &mut problems),
        Statement::CreateSchedule(s) => {
            if let ScheduledJob::Backup(b) = &s.job {
                check_backup(b, &mut problems);
            }
            if let Err(why) = recurrence(&s.recurrence.value) {
                problems.push(
                    Problem::new(
                        Code::ScheduleInvalid,
                        s.recurrence.span,
                        format!("not a crontab: {why}"),
                    )
                    .label("this recurrence")
                    .help(
                        "five fields (minute hour day-of-month month day-of-week, in UTC), six with seconds first, or @hourly/@daily/@weekly/@monthly/@yearly",
                    ),
                );
            }
        }
        Statement::Restore(r) => {
            if let Err(p) = JobOptions::resolve(JobStatement::Restore, &r.properties) {
                problems.extend(p);
            }
            check_objects(
                &r.on,
                r.database.as_ref().map(|d| &d.name),
                true,
                &mut problems,
            );
            check_catalogs(r.external_catalogs.as_ref(), true, &mut problems);
        }
        Statement::ShowBackup(s) => {
            check_filter(&s.filter, "SHOW BACKUP", SHOW_BACKUP_COLUMNS, &mut problems)
        }
        Statement::ShowRestore(s) => check_filter(
            &s.filter,
            "SHOW RESTORE",
            SHOW_RESTORE_COLUMNS,
            &mut problems,
        ),
        Statement::ShowSnapshot(s) => {
            if let Some(ts) = &s.timestamp {
                if let Err(p) = check_timestamp(ts) {
                    problems.push(*p);
                }
                if s.snapshots.len() > 1 {
                    problems.push(
                        Problem::new(
                            Code::ShowTimestampWithList,
                            ts.span,
                            "TIMESTAMP can only be combined with a single snapshot",
                        )
                        .label("this timestamp")
                        .help("write `WHERE SNAPSHOT = \"name\" AND TIMESTAMP = \"...\"`"),
                    );
                }
            }
            check_unique(
                s.snapshots.iter().map(|l| (l.value.as_str(), l.span)),
                "snapshot",
                &mut problems,
            );
        }
        Statement::CreateRepository(c) => {
            check_unique(
                c.properties
                    .iter()
                    .map(|p| (p.key.value.as_str(), p.key.span)),
                "property",
                &mut problems,
            );
        }
        Statement::CreateCatalog(c) => check_unique(
            c.properties
                .iter()
                .map(|p| (p.key.value.as_str(), p.key.span)),
            "property",
            &mut problems,
        ),
        Statement::CreateTable(t) => {
            check_unique(
                t.columns
                    .iter()
                    .map(|c| (c.name.value.as_str(), c.name.span)),
                "column",
                &mut problems,
            );
            check_unique(
                t.properties
                    .iter()
                    .map(|p| (p.key.value.as_str(), p.key.span)),
                "property",
                &mut problems,
            );
        }
        // The engine checks the rest against its catalog.
        _ => {}
    }
    problems
}

/// The longest snapshot label StarRocks takes.
pub const MAX_LABEL_LEN: usize = 128;

/// A new snapshot's label: StarRocks' rule (letters, digits, `_` and `-`, at most 128), which
/// also keeps it a safe key in the repository.
fn check_label(label: &Ident) -> Option<Problem> {
    let text = &label.value;
    let problem = |message: String| {
        Some(
            Problem::new(Code::Label, label.span, message)
                .label("snapshot label")
                .help("a label has letters, digits, `_` and `-` (not first), at most 128 of them"),
        )
    };
    if text.chars().count() > MAX_LABEL_LEN {
        return problem(format!(
            "the snapshot label is {} characters long; at most {MAX_LABEL_LEN} are allowed",
            text.chars().count()
        ));
    }
    let ok = !text.is_empty()
        && !text.starts_with('-')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        None
    } else {
        problem(format!(
            "\"{}\" is not a snapshot label",
            text.escape_debug()
        ))
    }
}

/// `yyyy-MM-dd-HH-mm-ss-SSS`, or the older `yyyy-MM-dd-HH-mm-ss`, naming a real instant.
fn check_backup(b: &Backup, problems: &mut Vec<Problem>) {
    if let Some(p) = check_label(&b.snapshot) {
        problems.push(p);
    }
    if let Err(p) = JobOptions::resolve(JobStatement::Backup, &b.properties) {
        problems.extend(p);
    }
    check_objects(&b.on, b.database.as_ref(), false, problems);
    check_catalogs(b.external_catalogs.as_ref(), false, problems);
}

/// A schedule's recurrence: a crontab of 5 fields (6 with seconds first) or a nickname
/// (`@daily`), evaluated in UTC. A pattern that never matches (`0 0 30 2 *`) is refused too.
pub fn recurrence(text: &str) -> Result<croner::Cron, String> {
    let trimmed = text.trim();
    let text = if trimmed.starts_with('@') {
        match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            "@reboot" => {
                return Err("@reboot names no time: a schedule needs a recurrence".into());
            }
            _ => {
                return Err(format!(
                    "{trimmed} is not a nickname: @yearly (@annually), @monthly, @weekly, @daily (@midnight) or @hourly"
                ));
            }
        }
    } else {
        text
    };
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "{fields} fields; a crontab has 5 (or 6 with seconds first)"
        ));
    }
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| e.to_string())?;
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp(0, 0).unwrap_or_default();
    cron.find_next_occurrence(&start, false)
        .map_err(|_| "it never matches a date".to_string())?;
    Ok(cron)
}

pub fn check_timestamp(value: &Literal) -> Result<(), Box<Problem>> {
    if parse_backup_timestamp(&value.value).is_some() {
        return Ok(());
    }
    Err(Box::new(Problem::new(
        Code::PropertiesTimestamp,
        value.span,
        format!("\"{}\" is not a snapshot timestamp", value.value),
    )
    .label("expected yyyy-MM-dd-HH-mm-ss-SSS")
    .help(
        "copy the Timestamp column of SHOW SNAPSHOT ON <repo>, e.g. \"2024-12-09-10-25-58-842\" \
         (the older form without milliseconds, \"2024-12-09-10-25-58\", is accepted too)",
    )))
}

/// Parses a snapshot timestamp; milliseconds default to 0 in the older form.
pub fn parse_backup_timestamp(text: &str) -> Option<chrono::NaiveDateTime> {
    let shape_ok = |s: &str| {
        s.len() == 19
            && s.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 | 10 | 13 | 16 => b == b'-',
                _ => b.is_ascii_digit(),
            })
    };
    let (base, millis) = match text.len() {
        19 => (text, 0),
        23 if text.as_bytes()[19] == b'-' => {
            let ms = &text[20..];
            if !ms.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&text[..19], ms.parse::<u32>().ok()?)
        }
        _ => return None,
    };
    if !shape_ok(base) {
        return None;
    }
    let dt = chrono::NaiveDateTime::parse_from_str(base, "%Y-%m-%d-%H-%M-%S").ok()?;
    dt.checked_add_signed(chrono::TimeDelta::milliseconds(i64::from(millis)))
}

fn check_objects(
    on: &[ObjectRef],
    database: Option<&Ident>,
    is_restore: bool,
    problems: &mut Vec<Problem>,
) {
    let mut seen_names: HashMap<(ObjectKind, String), Span> = HashMap::new();
    let mut seen_all: HashMap<ObjectKind, Span> = HashMap::new();
    let mut seen_targets: HashMap<(ObjectKind, String), Span> = HashMap::new();
    for item in on {
        if let ObjectRef::All { of, alias, span } = item {
            if let Some(alias) = alias {
                problems.push(
                    Problem::new(
                        Code::OnAliasOnAll,
                        alias.span,
                        format!("AS cannot rename ALL {}", plural(*of)),
                    )
                    .label("AS here")
                    .help(format!(
                        "to rename one {noun}, name it: `{kw} name AS {alias}`",
                        noun = of.noun(),
                        kw = of.noun().to_ascii_uppercase(),
                        alias = alias
                    )),
                );
            }
            if let Some(first) = seen_all.insert(*of, *span) {
                problems.push(duplicate(*span, first, &format!("ALL {}", plural(*of))));
            }
            continue;
        }
        let Some(name) = item.name() else { continue };
        if let (Some(db), Some(qualifier)) = (database, &name.database)
            && qualifier.value != db.value
        {
            problems.push(
                Problem::new(
                    Code::OnOtherDatabase,
                    qualifier.span,
                    format!("{} {} is not in database {}", item.kind().noun(), name, db),
                )
                .label("a different database")
                .also(db.span, "the statement's database")
                .help("one statement backs up or restores objects of one database"),
            );
        }
        let key = (item.kind(), name.name.value.clone());
        if let Some(first) = seen_names.get(&key) {
            let mut p = duplicate(
                name.span(),
                *first,
                &format!("{} {}", item.kind().noun(), name),
            );
            if item.kind() == ObjectKind::Tables {
                p = p.help("list every partition in one item, e.g. `TABLE t PARTITION (p1, p2)`");
            }
            problems.push(p);
            continue;
        }
        seen_names.insert(key, name.span());
        if let Some(all) = seen_all.get(&item.kind()) {
            problems.push(
                Problem::new(
                    Code::OnCoveredByAll,
                    name.span(),
                    format!(
                        "{} {} is already included by ALL {}",
                        item.kind().noun(),
                        name,
                        plural(item.kind())
                    ),
                )
                .label("already included")
                .also(*all, "ALL given here")
                .help("remove one of the two"),
            );
        }
        if let ObjectRef::Table { partitions, .. } = item {
            check_unique(
                partitions.iter().map(|p| (p.value.as_str(), p.span)),
                "partition",
                problems,
            );
        }
        if let (Some(alias), false) = (item.alias(), is_restore) {
            problems.push(
                Problem::new(
                    Code::OnAliasInBackup,
                    alias.span,
                    "BACKUP cannot rename objects",
                )
                .label("AS here")
                .help("a snapshot keeps the original names; rename with AS when you RESTORE"),
            );
        }
        // Two objects must not land on one name (`TABLE a AS b, TABLE b`).
        let target = item.alias().unwrap_or(&name.name);
        if let Some(first) = seen_targets.insert((item.kind(), target.value.clone()), target.span)
            && is_restore
        {
            problems.push(
                Problem::new(
                    Code::OnDuplicateTarget,
                    target.span,
                    format!(
                        "two {}s would be restored as {}",
                        item.kind().noun(),
                        target
                    ),
                )
                .label("second object restored under this name")
                .also(first, "first one")
                .help("give each restored object its own name with AS"),
            );
        }
    }
}

fn check_catalogs(
    selection: Option<&CatalogSelection>,
    is_restore: bool,
    problems: &mut Vec<Problem>,
) {
    let Some(CatalogSelection::Named(list)) = selection else {
        return;
    };
    let before = problems.len();
    check_unique(
        list.iter().map(|c| (c.name.value.as_str(), c.name.span)),
        "catalog",
        problems,
    );
    for alias in list.iter().filter_map(|c| c.alias.as_ref()) {
        if !is_restore {
            problems.push(
                Problem::new(
                    Code::OnAliasInBackup,
                    alias.span,
                    "BACKUP cannot rename catalogs",
                )
                .label("AS here")
                .help("a snapshot keeps the original names; rename with AS when you RESTORE"),
            );
        }
    }
    // Renames may make two catalogs land on one name; only worth checking once names are unique.
    if is_restore && problems.len() == before {
        let mut targets: HashMap<&str, Span> = HashMap::new();
        for target in list.iter().map(|c| c.alias.as_ref().unwrap_or(&c.name)) {
            if let Some(first) = targets.insert(&target.value, target.span) {
                problems.push(
                    Problem::new(
                        Code::OnDuplicateTarget,
                        target.span,
                        format!("two catalogs would be restored as {target}"),
                    )
                    .label("second catalog restored under this name")
                    .also(first, "first one")
                    .help("give each restored catalog its own name with AS"),
                );
            }
        }
    }
}

fn check_filter(filter: &[Predicate], what: &str, columns: &[&str], problems: &mut Vec<Problem>) {
    for pred in filter {
        if !columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&pred.column.value))
        {
            let list = columns.join(", ");
            let help = match closest(&pred.column.value, columns.iter().copied()) {
                Some(s) => format!("did you mean {s}? {what} has the columns {list}"),
                None => format!("{what} has the columns {list}"),
            };
            problems.push(
                Problem::new(
                    Code::ShowUnknownColumn,
                    pred.column.span,
                    format!("{what} has no column {}", pred.column),
                )
                .label("unknown column")
                .help(help),
            );
        }
    }
}

fn check_unique<'a>(
    items: impl Iterator<Item = (&'a str, Span)>,
    what: &str,
    problems: &mut Vec<Problem>,
) {
    let mut seen: HashMap<&'a str, Span> = HashMap::new();
    for (name, span) in items {
        if let Some(first) = seen.get(name) {
            problems.push(duplicate(span, *first, &format!("{what} {name}")));
        } else {
            seen.insert(name, span);
        }
    }
}

fn duplicate(span: Span, first: Span, what: &str) -> Problem {
    Problem::new(Code::OnDuplicate, span, format!("{what} is listed twice"))
        .label("listed again here")
        .also(first, "first listed here")
        .help("remove the repetition")
}

fn plural(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Tables => "TABLES",
        ObjectKind::MaterializedViews => "MATERIALIZED VIEWS",
        ObjectKind::Views => "VIEWS",
        ObjectKind::Functions => "FUNCTIONS",
    }
}

#[cfg(test)]
mod tests {
    use super::parse_backup_timestamp;

    #[test]
    fn timestamps_in_both_forms_parse_and_impossible_dates_do_not() {
        assert!(parse_backup_timestamp("2024-12-09-10-25-58-842").is_some());
        assert!(parse_backup_timestamp("2018-05-04-16-45-08").is_some());
        assert!(parse_backup_timestamp("2024-02-30-10-25-58-842").is_none());
        assert!(parse_backup_timestamp("2024-12-09 10:25:58").is_none());
        assert!(parse_backup_timestamp("2024-12-09-10-25-58-84").is_none());
        assert!(parse_backup_timestamp("2024-1-09-10-25-58-842").is_none());
        assert!(parse_backup_timestamp("").is_none());
    }
}
