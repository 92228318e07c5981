//! The PROPERTIES of BACKUP and RESTORE, defined once: each option's key, documentation,
//! default and parser live in [`OPTIONS`]; [`JobOptions::resolve`] turns a statement's
//! properties into one typed value. Validation reports its errors; the planner saves the value
//! in the plan; the executor only reads it. Nothing else parses a job property, so what was
//! checked is exactly what runs.

use crate::code::Code;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ast::{Literal, Properties};
use super::error::Problem;
use super::suggest::closest;

/// StarRocks refuses job timeouts under ten minutes.
pub const MIN_TIMEOUT_SECONDS: u64 = 600;
/// StarRocks' default job timeout: one day.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 86_400;
/// The longest timeout srbackup accepts (a year): a deadline must stay a representable time.
pub const MAX_TIMEOUT_SECONDS: u64 = 366 * 86_400;
/// zstd's levels.
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=22;
/// The level of plain `"zstd"`.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// The most replicas a RESTORE may ask for: StarRocks keeps a replication number in 16 bits.
pub const MAX_REPLICATION_NUM: u32 = i16::MAX as u32;

/// Which statement an option belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatement {
    Backup,
    Restore,
}

impl JobStatement {
    pub fn keyword(self) -> &'static str {
        match self {
            JobStatement::Backup => "BACKUP",
            JobStatement::Restore => "RESTORE",
        }
    }
}

/// How a backup's objects are compressed in the repository (srbackup's own option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "codec", rename_all = "snake_case", deny_unknown_fields)]
pub enum Compression {
    None,
    Zstd { level: i32 },
}

impl Compression {
    /// The zstd level, or `None` for no compression.
    pub fn zstd_level(self) -> Option<i32> {
        match self {
            Compression::None => None,
            Compression::Zstd { level } => Some(level),
        }
    }
}

/// StarRocks' backup `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackupType {
    Full,
    Incremental,
}

/// What of the cluster's accounts a BACKUP takes along (srbackup's `privileges` property;
/// StarRocks backs none of it up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivilegeScope {
    /// The grants on the objects backed up (and on their database), naming their holders.
    Grants,
    /// Also every user and role, their role memberships and all their grants; no passwords.
    Users,
    /// [`PrivilegeScope::Users`] with the password hashes (asked for by name, never default).
    UsersWithPasswords,
}

/// The typed PROPERTIES of a job. Fields a statement does not take stay at their defaults
/// and are left out of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobOptions {
    /// How long the job may run, in seconds.
    pub timeout_seconds: u64,
    /// BACKUP: how objects are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// BACKUP: `type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_type: Option<BackupType>,
    /// RESTORE: the exact snapshot timestamp asked for, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_timestamp: Option<String>,
    /// RESTORE: `allow_load`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_load: Option<bool>,
    /// RESTORE: replicas of the restored tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_num: Option<u32>,
    /// RESTORE: StarRocks' meta versions (accepted for old snapshots, not needed by srbackup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starrocks_meta_version: Option<u32>,
    /// BACKUP: which privileges go along; RESTORE: re-apply the snapshot's (`Grants` = true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges: Option<PrivilegeScope>,
}

impl JobOptions {
    /// The options of a statement that gives no PROPERTIES.
    /// Every option of `statement` at its default: each default is written once, in
    /// [`OPTIONS`], and read through the same parser as a value a user gives.
    pub fn defaults(statement: JobStatement) -> JobOptions {
        let mut options = JobOptions {
            timeout_seconds: 0,
            compression: None,
            backup_type: None,
            backup_timestamp: None,
            allow_load: None,
            replication_num: None,
            meta_version: None,
            starrocks_meta_version: None,
            privileges: None,
        };
        for spec in OPTIONS.iter().filter(|o| o.statements.contains(&statement)) {
            if let Some(default) = spec.default {
                // The table's defaults parse (tested): nothing to report here.
                let _ = (spec.apply)(&mut options, default);
            }
        }
        options
    }

    /// Checks options read back from a plan file against the same limits as a statement's.
    pub fn check(&self, statement: JobStatement) -> Result<(), String> {
        let mut again = JobOptions::defaults(statement);
        let mut apply = |key: &str, value: String| -> Result<(), String> {
            let spec = OPTIONS
                .iter()
                .find(|o| o.key == key && o.statements.contains(&statement))
                .ok_or_else(|| format!("{key} is not an option of {}", statement.keyword()))?;
            (spec.apply)(&mut again, &value).map_err(|e| e.message)
        };
        for (key, value) in self.properties() {
            apply(key, value)?;
        }
        if &again == self {
            Ok(())
        } else {
            Err("the options do not read back as written".into())
        }
    }

    /// Whether a RESTORE allows loads (SHOW RESTORE's AllowLoad).
    pub fn allow_load(&self) -> bool {
        self.allow_load.unwrap_or(false)
    }

    /// Resolves a statement's PROPERTIES: every problem (unknown key, duplicate, bad value)
    /// points at its token.
    pub fn resolve(
        statement: JobStatement,
        props: &Properties,
    ) -> Result<JobOptions, Vec<Problem>> {
        let mut options = JobOptions::defaults(statement);
        let mut problems = Vec::new();
        let mut seen: HashMap<String, super::Span> = HashMap::new();
        let accepted: Vec<&'static str> = OPTIONS
            .iter()
            .filter(|o| o.statements.contains(&statement))
            .map(|o| o.key)
            .collect();
        for p in props.iter() {
            let key = p.key.value.to_ascii_lowercase();
            if let Some(first) = seen.get(&key) {
                problems.push(
                    Problem::new(
                        Code::PropertiesDuplicate,
                        p.key.span,
                        format!("property \"{}\" is given twice", p.key.value),
                    )
                    .label("given again here")
                    .also(*first, "first given here")
                    .help("keep one of them"),
                );
                continue;
            }
            seen.insert(key.clone(), p.key.span);
            let Some(spec) = OPTIONS
                .iter()
                .find(|o| o.key == key && o.statements.contains(&statement))
            else {
                let what = statement.keyword();
                let mut problem = Problem::new(
                    Code::PropertiesUnknown,
                    p.key.span,
                    format!("unknown {what} property \"{}\"", p.key.value),
                )
                .label("not a property of this statement");
                let list = accepted.join(", ");
                problem = match closest(&p.key.value, accepted.iter().copied()) {
                    Some(s) => {
                        problem.help(format!("did you mean \"{s}\"? {what} accepts: {list}"))
                    }
                    None => problem.help(format!("{what} accepts: {list}")),
                };
                problems.push(problem);
                continue;
            };
            if let Err(invalid) = (spec.apply)(&mut options, p.value.value.trim()) {
                problems.push(
                    Problem::new(invalid.code, p.value.span, invalid.message)
                        .label(invalid.label)
                        .help(invalid.help),
                );
            }
        }
        if problems.is_empty() {
            Ok(options)
        } else {
            Err(problems)
        }
    }

    /// The options as PROPERTIES a user would write (for `explain`), in table order.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("timeout", self.timeout_seconds.to_string())];
        if let Some(t) = self.backup_type {
            out.push((
                "type",
                match t {
                    BackupType::Full => "FULL",
                    BackupType::Incremental => "INCREMENTAL",
                }
                .into(),
            ));
        }
        if let Some(c) = self.compression {
            out.push((
                "compression",
                match c {
                    Compression::None => "none".into(),
                    Compression::Zstd { level } => format!("zstd:{level}"),
                },
            ));
        }
        if let Some(t) = &self.backup_timestamp {
            out.push(("backup_timestamp", t.clone()));
        }
        if let Some(a) = self.allow_load {
            out.push(("allow_load", a.to_string()));
        }
        if let Some(n) = self.replication_num {
            out.push(("replication_num", n.to_string()));
        }
        if let Some(v) = self.meta_version {
            out.push(("meta_version", v.to_string()));
        }
        if let Some(v) = self.starrocks_meta_version {
            out.push(("starrocks_meta_version", v.to_string()));
        }
        if let Some(p) = self.privileges {
            out.push((
                "privileges",
                match p {
                    PrivilegeScope::Grants => "true",
                    PrivilegeScope::Users => "users",
                    PrivilegeScope::UsersWithPasswords => "users_with_passwords",
                }
                .into(),
            ));
        }
        out
    }

    /// The zstd level objects are stored with, `None` for none.
    pub fn zstd_level(&self) -> Option<i32> {
        self.compression.and_then(Compression::zstd_level)
    }
}

/// Why a value was refused.
pub struct Invalid {
    code: Code,
    message: String,
    label: &'static str,
    help: String,
}

fn invalid(message: impl Into<String>, help: impl Into<String>) -> Invalid {
    Invalid {
        code: Code::PropertiesValue,
        message: message.into(),
        label: "invalid value",
        help: help.into(),
    }
}

/// One job property: where it applies, what it means, its default, and how it is read.
pub struct OptionSpec {
    pub key: &'static str,
    pub statements: &'static [JobStatement],
    pub doc: &'static str,
    /// The default, as a user would write it (`None`: absent unless given).
    pub default: Option<&'static str>,
    apply: fn(&mut JobOptions, &str) -> Result<(), Invalid>,
}

const BOTH: &[JobStatement] = &[JobStatement::Backup, JobStatement::Restore];
const BACKUP: &[JobStatement] = &[JobStatement::Backup];
const RESTORE: &[JobStatement] = &[JobStatement::Restore];

/// Every BACKUP and RESTORE property.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        key: "type",
        statements: BACKUP,
        doc: "StarRocks' backup type, FULL or INCREMENTAL. The embedded engine refuses \
              INCREMENTAL: every srbackup backup already sends only what the repository lacks.",
        default: Some("FULL"),
        apply: |o, v| {
            o.backup_type = Some(match v.to_ascii_uppercase().as_str() {
                "FULL" => BackupType::Full,
                "INCREMENTAL" => BackupType::Incremental,
                _ => {
                    return Err(invalid(
                        format!("backup type \"{v}\" is not FULL or INCREMENTAL"),
                        "use \"FULL\" or \"INCREMENTAL\" (every srbackup backup is incremental in what it sends)",
                    ));
                }
            });
            Ok(())
        },
    },
    OptionSpec {
        key: "backup_timestamp",
        statements: RESTORE,
        doc: "The snapshot's timestamp (SHOW SNAPSHOT's Timestamp column); without it the newest is restored.",
        default: None,
        apply: |o, v| {
            if super::validate::parse_backup_timestamp(v).is_none() {
                return Err(Invalid {
                    code: Code::PropertiesTimestamp,
                    message: format!("\"{v}\" is not a snapshot timestamp"),
                    label: "expected yyyy-MM-dd-HH-mm-ss-SSS",
                    help: "copy the Timestamp column of SHOW SNAPSHOT ON <repo>, e.g. \
                           \"2024-12-09-10-25-58-842\" (the older form without milliseconds, \
                           \"2024-12-09-10-25-58\", is accepted too)"
                        .into(),
                });
            }
            o.backup_timestamp = Some(v.to_string());
            Ok(())
        },
    },
    OptionSpec {
        key: "timeout",
        statements: BOTH,
        doc: "How long the job may run, in whole seconds (at least 600); a job past it is cancelled.",
        default: Some("86400"),
        apply: |o, v| match v.parse::<u64>() {
            Ok(secs) if secs < MIN_TIMEOUT_SECONDS => Err(invalid(
                format!("timeout of {secs} s is too short"),
                "a job timeout must be at least 600 seconds (10 minutes)",
            )),
            Ok(secs) if secs > MAX_TIMEOUT_SECONDS => Err(invalid(
                format!("timeout of {secs} s is longer than a year"),
                format!("a job timeout is at most {MAX_TIMEOUT_SECONDS} seconds"),
            )),
            Ok(secs) => {
                o.timeout_seconds = secs;
                Ok(())
            }
            Err(_) => Err(invalid(
                format!("timeout \"{v}\" is not a number of seconds"),
                "write the timeout in whole seconds, at least 600, e.g. \"3600\"",
            )),
        },
    },
    OptionSpec {
        key: "compression",
        statements: BACKUP,
        doc: "srbackup's own: how objects are stored, \"none\", \"zstd\" (level 3) or \"zstd:LEVEL\" (1 to 22).",
        default: Some("none"),
        apply: |o, v| {
            let lower = v.to_ascii_lowercase();
            o.compression = Some(match lower.as_str() {
                "none" => Compression::None,
                "zstd" => Compression::Zstd {
                    level: DEFAULT_ZSTD_LEVEL,
                },
                other => match other
                    .strip_prefix("zstd:")
                    .and_then(|level| level.parse::<i32>().ok())
                {
                    Some(level) if ZSTD_LEVELS.contains(&level) => Compression::Zstd { level },
                    _ => {
                        return Err(invalid(
                            format!("compression \"{v}\" is not supported"),
                            "use \"none\", \"zstd\" or \"zstd:LEVEL\" with LEVEL from 1 to 22",
                        ));
                    }
                },
            });
            Ok(())
        },
    },
    OptionSpec {
        key: "allow_load",
        statements: RESTORE,
        doc: "StarRocks' allow_load; srbackup refuses loads into restoring tables either way.",
        default: Some("false"),
        apply: |o, v| {
            o.allow_load = Some(match v.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(invalid(
                        format!("allow_load \"{v}\" is not true or false"),
                        "use \"true\" or \"false\"",
                    ));
                }
            });
            Ok(())
        },
    },
    OptionSpec {
        key: "privileges",
        statements: BACKUP,
        doc: "srbackup's: \"true\" takes the grants on the objects backed up along; \"users\" also               every user and role with their grants (no passwords); \"users_with_passwords\"               their password hashes too. Needs GRANT on SYSTEM.",
        default: None,
        apply: |o, v| {
            o.privileges = match v.to_ascii_lowercase().as_str() {
                "false" => None,
                "true" | "grants" => Some(PrivilegeScope::Grants),
                "users" => Some(PrivilegeScope::Users),
                "users_with_passwords" => Some(PrivilegeScope::UsersWithPasswords),
                _ => {
                    return Err(invalid(
                        format!(
                            "privileges \"{v}\" is not true, false, users or users_with_passwords"
                        ),
                        "use \"true\" (grants on the objects), \"users\" (also users and roles) or \"users_with_passwords\"",
                    ));
                }
            };
            Ok(())
        },
    },
    OptionSpec {
        key: "privileges",
        statements: RESTORE,
        doc: "srbackup's: \"true\" re-applies the privileges the snapshot holds (users and roles               created if missing, grants with AS renames followed). Needs GRANT on SYSTEM.",
        default: None,
        apply: |o, v| {
            o.privileges = match v.to_ascii_lowercase().as_str() {
                "false" => None,
                "true" => Some(PrivilegeScope::Grants),
                _ => {
                    return Err(invalid(
                        format!("privileges \"{v}\" is not true or false"),
                        "use \"true\" or \"false\"",
                    ));
                }
            };
            Ok(())
        },
    },
    OptionSpec {
        key: "replication_num",
        statements: RESTORE,
        doc: "Replicas of the restored tables (recorded in their properties).",
        default: None,
        apply: |o, v| match v.parse::<u32>() {
            Ok(n) if (1..=MAX_REPLICATION_NUM).contains(&n) => {
                o.replication_num = Some(n);
                Ok(())
            }
            _ => Err(invalid(
                format!(
                    "replication_num \"{v}\" is not a number of replicas from 1 to {MAX_REPLICATION_NUM}"
                ),
                "use a number of replicas such as \"1\" or \"3\"",
            )),
        },
    },
    OptionSpec {
        key: "meta_version",
        statements: RESTORE,
        doc: "StarRocks' meta version of an old snapshot; accepted, not needed by srbackup.",
        default: None,
        apply: |o, v| {
            o.meta_version = Some(meta_version("meta_version", v)?);
            Ok(())
        },
    },
    OptionSpec {
        key: "starrocks_meta_version",
        statements: RESTORE,
        doc: "StarRocks' meta version of an old snapshot; accepted, not needed by srbackup.",
        default: None,
        apply: |o, v| {
            o.starrocks_meta_version = Some(meta_version("starrocks_meta_version", v)?);
            Ok(())
        },
    },
];

fn meta_version(key: &str, v: &str) -> Result<u32, Invalid> {
    v.parse::<u32>().map_err(|_| {
        invalid(
            format!("{key} \"{v}\" is not a whole number"),
            "meta versions are whole numbers, needed only for snapshots of old clusters",
        )
    })
}

/// The keys a statement accepts, in table order.
pub fn keys(statement: JobStatement) -> Vec<&'static str> {
    OPTIONS
        .iter()
        .filter(|o| o.statements.contains(&statement))
        .map(|o| o.key)
        .collect()
}

/// A property's literal, for positioned errors later stages raise about it.
pub fn find<'a>(props: &'a Properties, key: &str) -> Option<&'a Literal> {
    props.find(key).map(|p| &p.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{Property, Span};

    fn props(pairs: &[(&str, &str)]) -> Properties {
        Properties(
            pairs
                .iter()
                .map(|(k, v)| Property {
                    key: Literal::new(*k),
                    value: Literal::new(*v),
                })
                .collect(),
        )
    }

    #[test]
    fn validation_and_execution_read_the_same_value() {
        // Values are trimmed once, here; the typed result is what runs.
        let o = JobOptions::resolve(
            JobStatement::Backup,
            &props(&[("compression", "none "), ("timeout", " 3600")]),
        )
        .unwrap();
        assert_eq!(o.compression, Some(Compression::None));
        assert_eq!(o.zstd_level(), None);
        assert_eq!(o.timeout_seconds, 3600);
        let o = JobOptions::resolve(JobStatement::Backup, &props(&[("compression", "ZSTD:7")]))
            .unwrap();
        assert_eq!(o.zstd_level(), Some(7));
        let o = JobOptions::resolve(JobStatement::Backup, &props(&[])).unwrap();
        assert_eq!(o.timeout_seconds, DEFAULT_TIMEOUT_SECONDS);
        assert_eq!(o.zstd_level(), None);
    }

    #[test]
    fn every_bad_value_is_refused_at_its_token() {
        for (statement, key, value) in [
            (JobStatement::Backup, "timeout", "599"),
            (JobStatement::Backup, "timeout", "18446744073709551615"),
            (JobStatement::Backup, "timeout", "1e9"),
            (JobStatement::Backup, "compression", "zstd:23"),
            (JobStatement::Backup, "compression", "lz4"),
            (JobStatement::Backup, "type", "differential"),
            (JobStatement::Restore, "replication_num", "0"),
            (JobStatement::Restore, "replication_num", "4294967296"),
            (JobStatement::Restore, "allow_load", "yes"),
            (
                JobStatement::Restore,
                "backup_timestamp",
                "2024-02-30-00-00-00",
            ),
        ] {
            let problems = JobOptions::resolve(statement, &props(&[(key, value)])).unwrap_err();
            assert_eq!(problems.len(), 1, "{key} = {value}");
            let code = if key == "backup_timestamp" {
                Code::PropertiesTimestamp
            } else {
                Code::PropertiesValue
            };
            assert_eq!(problems[0].code, code, "{key}");
        }
        let problems =
            JobOptions::resolve(JobStatement::Restore, &props(&[("compression", "zstd")]))
                .unwrap_err();
        assert_eq!(problems[0].code, Code::PropertiesUnknown);
        let _ = Span::default();
    }

    #[test]
    fn every_option_is_documented_and_its_default_parses() {
        for spec in OPTIONS {
            assert!(!spec.doc.is_empty(), "{}", spec.key);
            if let Some(default) = spec.default {
                let mut o = JobOptions::defaults(spec.statements[0]);
                assert!((spec.apply)(&mut o, default).is_ok(), "{}", spec.key);
            }
        }
        assert_eq!(
            keys(JobStatement::Backup),
            ["type", "timeout", "compression", "privileges"]
        );
        assert_eq!(
            keys(JobStatement::Restore)[..3],
            ["backup_timestamp", "timeout", "allow_load"]
        );
    }
}
