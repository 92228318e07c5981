//! Retention: which snapshots `srbackup forget` keeps.
//!
//! The rules are restic's `forget` (its documentation, "Removing snapshots according to a
//! policy"), applied to each group of snapshots on its own:
//! - snapshots are taken newest first;
//! - `--keep-last n` keeps the n newest;
//! - `--keep-hourly/daily/weekly/monthly/yearly n` keep, for the last n hours (days, ISO weeks,
//!   months, years) that have snapshots, the newest snapshot of each;
//! - a rule with counts left over also keeps the oldest snapshot (restic 0.17's "oldest daily
//!   snapshot"), so that the history kept is as long as the counts allow;
//! - a count may be `unlimited` (restic's -1): every hour (day, ...) keeps one;
//! - a snapshot any rule keeps is kept, with every rule that kept it as its reasons.
//!
//! Times are the snapshots' own timestamps, which are UTC (restic uses local time). Groups are
//! the database a snapshot holds by default (restic groups by host and paths: what was backed
//! up), or the label. A policy with no rule is refused, as restic refuses it: it would forget
//! everything.

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::Serialize;

/// How many periods of a kind keep a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    #[default]
    None,
    Count(u32),
    /// restic's -1: every period keeps its newest snapshot.
    Unlimited,
}

impl std::str::FromStr for Keep {
    type Err = String;
    fn from_str(text: &str) -> Result<Keep, String> {
        match text.trim() {
            "unlimited" | "all" | "-1" => Ok(Keep::Unlimited),
            t => match t.parse::<u32>() {
                Ok(0) => Ok(Keep::None),
                Ok(n) => Ok(Keep::Count(n)),
                Err(_) => Err(format!(
                    "{text:?} is not a count (a whole number from 0 to {}, or `unlimited`)",
                    u32::MAX
                )),
            },
        }
    }
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keep::None => f.write_str("0"),
            Keep::Count(n) => write!(f, "{n}"),
            Keep::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A retention policy: restic's `--keep-*` counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub last: Keep,
    pub hourly: Keep,
    pub daily: Keep,
    pub weekly: Keep,
    pub monthly: Keep,
    pub yearly: Keep,
}

impl Policy {
    /// No rule at all: such a policy would keep nothing.
    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|(keep, _, _)| *keep == Keep::None)
    }

    /// Each rule: its count, its period key and the reason it gives.
    fn rules(&self) -> [(Keep, Period, &'static str); 6] {
        [
            (self.last, Period::Snapshot, "last snapshot"),
            (self.hourly, Period::Hour, "hourly snapshot"),
            (self.daily, Period::Day, "daily snapshot"),
            (self.weekly, Period::Week, "weekly snapshot"),
            (self.monthly, Period::Month, "monthly snapshot"),
            (self.yearly, Period::Year, "yearly snapshot"),
        ]
    }
}

impl std::fmt::Display for Policy {
    /// `keep-last=3, keep-daily=7`, the rules that are set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = ["last", "hourly", "daily", "weekly", "monthly", "yearly"];
        let set: Vec<String> = self
            .rules()
            .iter()
            .zip(names)
            .filter(|((keep, _, _), _)| *keep != Keep::None)
            .map(|((keep, _, _), name)| format!("keep-{name}={keep}"))
            .collect();
        f.write_str(&set.join(", "))
    }
}

impl std::str::FromStr for Policy {
    type Err = String;
    /// `keep-last=3, keep-daily=7` (what `Display` writes; commas or spaces between rules).
    fn from_str(text: &str) -> Result<Policy, String> {
        let mut policy = Policy::default();
        let mut seen = std::collections::BTreeSet::new();
        // `keep-last = 3` as well as `keep-last=3`: white space around `=` is dropped first.
        let mut compact = String::with_capacity(text.len());
        for part in text.split('=') {
            if !compact.is_empty() {
                compact = compact.trim_end().to_string();
                compact.push('=');
                compact.push_str(part.trim_start());
            } else {
                compact.push_str(part);
            }
        }
        for rule in compact.split([',', ' ']).filter(|r| !r.is_empty()) {
            let (name, count) = rule
                .split_once('=')
                .ok_or_else(|| format!("{rule:?} is not a rule (keep-daily=7, say)"))?;
            let keep: Keep = count.parse()?;
            let slot = match name {
                "keep-last" => &mut policy.last,
                "keep-hourly" => &mut policy.hourly,
                "keep-daily" => &mut policy.daily,
                "keep-weekly" => &mut policy.weekly,
                "keep-monthly" => &mut policy.monthly,
                "keep-yearly" => &mut policy.yearly,
                other => {
                    return Err(format!(
                        "{other:?} is not a rule: keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly or keep-yearly"
                    ));
                }
            };
            if !seen.insert(name) {
                return Err(format!("{name} is given twice"));
            }
            *slot = keep;
        }
        Ok(policy)
    }
}

#[derive(Clone, Copy)]
enum Period {
    /// Every snapshot is a period of its own (`--keep-last`).
    Snapshot,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    /// The period `time` falls in; `position` tells snapshots apart for `Snapshot`.
    fn key(self, time: NaiveDateTime, position: usize) -> i64 {
        let date = time.date();
        let (y, m, d) = (
            i64::from(date.year()),
            i64::from(date.month()),
            i64::from(date.day()),
        );
        match self {
            Period::Snapshot => position as i64,
            Period::Hour => ((y * 100 + m) * 100 + d) * 100 + i64::from(time.hour()),
            Period::Day => (y * 100 + m) * 100 + d,
            Period::Week => {
                let week = date.iso_week();
                i64::from(week.year()) * 100 + i64::from(week.week())
            }
            Period::Month => y * 100 + m,
            Period::Year => y,
        }
    }
}

/// What the policy decided for one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision<T> {
    pub snapshot: T,
    pub time: NaiveDateTime,
    /// Why it is kept (every rule that keeps it); empty: it is forgotten.
    pub reasons: Vec<String>,
}

impl<T> Decision<T> {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Applies `policy` to one group of snapshots. Returns a decision for each, newest first
/// (snapshots of equal time keep their given order).
pub fn apply<T>(policy: &Policy, snapshots: Vec<(T, NaiveDateTime)>) -> Vec<Decision<T>> {
    let mut list = snapshots;
    list.sort_by_key(|s| std::cmp::Reverse(s.1));
    let mut rules: Vec<(Keep, Period, &'static str, Option<i64>)> = policy
        .rules()
        .into_iter()
        .map(|(keep, period, reason)| (keep, period, reason, None))
        .collect();
    let oldest = list.len().saturating_sub(1);
    list.into_iter()
        .enumerate()
        .map(|(position, (snapshot, time))| {
            let mut reasons = Vec::new();
            for (keep, period, reason, last) in rules.iter_mut() {
                if *keep == Keep::None {
                    continue;
                }
                let key = period.key(time, position);
                let new_period = *last != Some(key);
                if new_period || position == oldest {
                    reasons.push(if new_period {
                        (*reason).to_string()
                    } else {
                        format!("oldest {reason}")
                    });
                    *last = Some(key);
                    if let Keep::Count(n) = keep {
                        *keep = if *n > 1 {
                            Keep::Count(*n - 1)
                        } else {
                            Keep::None
                        };
                    }
                }
            }
            Decision {
                snapshot,
                time,
                reasons,
            }
        })
        .collect()
}

/// A snapshot timestamp (`yyyy-MM-dd-HH-mm-ss[-SSS]`, UTC) as a time.
pub fn parse_timestamp(timestamp: &str) -> Option<NaiveDateTime> {
    let base = timestamp.get(..19)?;
    let time = NaiveDateTime::parse_from_str(base, "%Y-%m-%d-%H-%M-%S").ok()?;
    match timestamp.get(20..) {
        Some(ms) if timestamp.as_bytes()[19] == b'-' => {
            let ms: u32 = ms.parse().ok()?;
            time.with_nanosecond(ms.checked_mul(1_000_000)?)
        }
        None if timestamp.len() == 19 => Some(time),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn kept(policy: Policy, times: &[&str]) -> Vec<(String, Vec<String>)> {
        let list = times.iter().map(|t| (t.to_string(), at(t))).collect();
        apply(&policy, list)
            .into_iter()
            .filter(|d| d.keep())
            .map(|d| (d.snapshot, d.reasons))
            .collect()
    }

    #[test]
    fn counts_parse_and_zero_is_no_rule() {
        assert_eq!("3".parse::<Keep>(), Ok(Keep::Count(3)));
        assert_eq!("0".parse::<Keep>(), Ok(Keep::None));
        assert_eq!("unlimited".parse::<Keep>(), Ok(Keep::Unlimited));
        assert_eq!("-1".parse::<Keep>(), Ok(Keep::Unlimited));
        let err = "99999999999".parse::<Keep>().unwrap_err();
        assert!(err.contains("is not a count"), "{err}");
        assert!("-2".parse::<Keep>().is_err());
        assert!(Policy::default().is_empty());
    }

    #[test]
    fn policies_read_back_what_they_write() {
        let policy = Policy {
            last: Keep::Count(3),
            weekly: Keep::Unlimited,
            ..Policy::default()
        };
        assert_eq!(policy.to_string(), "keep-last=3, keep-weekly=unlimited");
        assert_eq!(policy.to_string().parse::<Policy>(), Ok(policy));
        assert_eq!(
            "keep-daily=7,keep-monthly=12"
                .parse::<Policy>()
                .unwrap()
                .to_string(),
            "keep-daily=7, keep-monthly=12"
        );
        assert!(
            "keep-dayly=7"
                .parse::<Policy>()
                .unwrap_err()
                .contains("is not a rule")
        );
        assert!(
            "keep-daily"
                .parse::<Policy>()
                .unwrap_err()
                .contains("is not a rule")
        );
        assert!(
            "keep-daily=x"
                .parse::<Policy>()
                .unwrap_err()
                .contains("is not a count")
        );
        assert!("".parse::<Policy>().unwrap().is_empty());
        assert!(
            "keep-last=1, keep-last=3"
                .parse::<Policy>()
                .unwrap_err()
                .contains("given twice")
        );
    }

    #[test]
    fn keep_last_keeps_the_newest() {
        let policy = Policy {
            last: Keep::Count(2),
            ..Policy::default()
        };
        let got = kept(
            policy,
            &[
                "2026-01-01 10:00:00",
                "2026-01-03 10:00:00",
                "2026-01-02 10:00:00",
            ],
        );
        assert_eq!(
            got,
            vec![
                ("2026-01-03 10:00:00".into(), vec!["last snapshot".into()]),
                ("2026-01-02 10:00:00".into(), vec!["last snapshot".into()]),
            ]
        );
    }

    /// The newest of each day, for the last n days that have snapshots; and the oldest
    /// snapshot while counts are left.
    #[test]
    fn keep_daily_takes_the_newest_of_each_day_and_the_oldest_while_counts_last() {
        let policy = Policy {
            daily: Keep::Count(5),
            ..Policy::default()
        };
        let got = kept(
            policy,
            &[
                "2026-01-01 01:00:00",
                "2026-01-01 23:00:00",
                "2026-01-02 08:00:00",
                "2026-01-02 09:00:00",
            ],
        );
        assert_eq!(
            got,
            vec![
                ("2026-01-02 09:00:00".into(), vec!["daily snapshot".into()]),
                ("2026-01-01 23:00:00".into(), vec!["daily snapshot".into()]),
                (
                    "2026-01-01 01:00:00".into(),
                    vec!["oldest daily snapshot".into()]
                ),
            ]
        );
        // With the counts used up, the oldest is not kept.
        let policy = Policy {
            daily: Keep::Count(1),
            ..Policy::default()
        };
        let got = kept(policy, &["2026-01-01 01:00:00", "2026-01-02 08:00:00"]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "2026-01-02 08:00:00");
    }

    /// ISO weeks: 2026-01-04 is a Sunday (week 1 of 2026), 2026-01-05 a Monday (week 2);
    /// 2025-12-29 is in ISO week 1 of 2026.
    #[test]
    fn weeks_are_iso_weeks() {
        let policy = Policy {
            weekly: Keep::Count(2),
            ..Policy::default()
        };
        let got = kept(
            policy,
            &[
                "2025-12-28 12:00:00",
                "2025-12-29 12:00:00",
                "2026-01-04 12:00:00",
                "2026-01-05 12:00:00",
            ],
        );
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["2026-01-05 12:00:00", "2026-01-04 12:00:00"]);
    }

    #[test]
    fn every_rule_that_keeps_a_snapshot_is_a_reason() {
        let policy = Policy {
            last: Keep::Count(1),
            daily: Keep::Count(2),
            monthly: Keep::Unlimited,
            ..Policy::default()
        };
        let got = kept(
            policy,
            &[
                "2026-01-15 12:00:00",
                "2026-02-10 12:00:00",
                "2026-02-11 12:00:00",
                "2026-03-01 12:00:00",
            ],
        );
        assert_eq!(
            got,
            vec![
                (
                    "2026-03-01 12:00:00".into(),
                    vec![
                        "last snapshot".into(),
                        "daily snapshot".into(),
                        "monthly snapshot".into()
                    ]
                ),
                (
                    "2026-02-11 12:00:00".into(),
                    vec!["daily snapshot".into(), "monthly snapshot".into()]
                ),
                (
                    "2026-01-15 12:00:00".into(),
                    vec!["monthly snapshot".into()]
                ),
            ]
        );
    }

    #[test]
    fn timestamps_parse_with_or_without_milliseconds() {
        assert_eq!(
            parse_timestamp("2026-11-30-15-16-45-399"),
            Some(
                at("2026-11-30 15:16:45")
                    .with_nanosecond(399_000_000)
                    .unwrap()
            )
        );
        assert_eq!(
            parse_timestamp("2026-11-30-15-16-45"),
            Some(at("2026-11-30 15:16:45"))
        );
        assert_eq!(parse_timestamp("2026-11-30-15-16-45x399"), None);
        assert_eq!(parse_timestamp("2026-13-30-15-16-45-399"), None);
        assert_eq!(parse_timestamp("2026-11-30-15-16-45-99999999999"), None);
        assert_eq!(parse_timestamp("é"), None);
    }
}
