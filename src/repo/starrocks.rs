//! StarRocks' own repositories, read as files (#19 item 6): list the snapshots a StarRocks
//! cluster wrote, verify every file against the MD5 its name carries, and expire snapshots
//! StarRocks before 4.2 cannot drop — through the same object stores and credentials as
//! srbackup's repositories.
//!
//! StarRocks' layout (its `Repository.java`): under the location,
//! `__starrocks_repository_<name>/__ss_<label>/` holds one snapshot label: `__info_<ts>.<md5>`
//! (written last: a label without one is unfinished, or being written), `__meta.<md5>`, and
//! `__ss_content/__db_<id>/__tbl_<id>/__part_<id>/__idx_<id>/__<tablet>/<file>.<md5>`. Every
//! file name ends in `.` and the 32 hex digits of its content's MD5.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use md5::{Digest, Md5};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

use super::{RepoError, Repository};

type Result<T> = std::result::Result<T, RepoError>;

/// The directory of StarRocks repository `name` under a location.
pub fn root(name: &str) -> String {
    format!("__starrocks_repository_{name}")
}

/// One snapshot label of a StarRocks repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrSnapshot {
    pub label: String,
    /// The timestamps of its `__info_<ts>` files (each a finished backup), sorted.
    pub timestamps: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    /// When its newest file was written (the store's clock).
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

impl SrSnapshot {
    /// A label without an info file: a backup that failed, or one being written now.
    pub fn complete(&self) -> bool {
        !self.timestamps.is_empty()
    }
}

/// The MD5 a StarRocks file name carries (`name.<32 hex>`), if it carries one.
pub fn named_md5(key: &str) -> Option<&str> {
    let file = key.rsplit('/').next()?;
    let (_, md5) = file.rsplit_once('.')?;
    (md5.len() == 32 && md5.chars().all(|c| c.is_ascii_hexdigit())).then_some(md5)
}

/// The label a key under the repository root belongs to.
fn label_of<'k>(key: &'k str, root: &str) -> Option<&'k str> {
    let rest = key.strip_prefix(root)?.strip_prefix('/')?;
    let dir = rest.split('/').next()?;
    dir.strip_prefix("__ss_")
}

/// Every object of the StarRocks repository `name`: key → (size, last modified).
async fn objects(
    repo: &Repository,
    name: &str,
) -> Result<BTreeMap<String, (u64, chrono::DateTime<chrono::Utc>)>> {
    let root = root(name);
    repo.store()
        .list(Some(&ObjectPath::from(root.as_str())))
        .map_ok(|m| (m.location.to_string(), (m.size, m.last_modified)))
        .try_collect()
        .await
        .map_err(|e| repo.err(format!("listing {root}"), e))
}

/// The snapshots of StarRocks repository `name`, by label.
pub async fn list(repo: &Repository, name: &str) -> Result<Vec<SrSnapshot>> {
    let root = root(name);
    let mut by_label: BTreeMap<String, SrSnapshot> = BTreeMap::new();
    for (key, (size, modified)) in objects(repo, name).await? {
        let Some(label) = label_of(&key, &root) else {
            continue; // __repo_info and anything else at the top
        };
        let s = by_label
            .entry(label.to_string())
            .or_insert_with(|| SrSnapshot {
                label: label.to_string(),
                timestamps: Vec::new(),
                files: 0,
                bytes: 0,
                last_modified: modified,
            });
        s.files += 1;
        s.bytes += size;
        s.last_modified = s.last_modified.max(modified);
        let file = key.rsplit('/').next().unwrap_or("");
        if let Some(info) = file.strip_prefix("__info_")
            && let Some((ts, _)) = info.rsplit_once('.')
        {
            s.timestamps.push(ts.to_string());
        }
    }
    let mut out: Vec<SrSnapshot> = by_label.into_values().collect();
    for s in &mut out {
        s.timestamps.sort();
    }
    Ok(out)
}

/// What `verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    /// `(key, md5 its name says, md5 of its content)`.
    pub mismatched: Vec<(String, String, String)>,
    /// Files under a snapshot whose name carries no MD5.
    pub unnamed: Vec<String>,
}

/// Reads every file of the repository's snapshots (or of `label`'s) and checks its MD5.
pub async fn verify(repo: &Repository, name: &str, label: Option<&str>) -> Result<VerifyReport> {
    let root = root(name);
    let mut report = VerifyReport::default();
    for (key, _) in objects(repo, name).await? {
        let Some(l) = label_of(&key, &root) else {
            continue;
        };
        if label.is_some_and(|want| want != l) {
            continue;
        }
        let Some(expected) = named_md5(&key) else {
            report.unnamed.push(key);
            continue;
        };
        let expected = expected.to_ascii_lowercase();
        let mut stream = repo
            .store()
            .get(&ObjectPath::from(key.as_str()))
            .await
            .map_err(|e| repo.err(format!("reading {key}"), e))?
            .into_stream();
        let mut hasher = Md5::new();
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| repo.err(format!("reading {key}"), e))?
        {
            hasher.update(&chunk);
        }
        let actual = hex::encode(hasher.finalize());
        report.checked += 1;
        if actual != expected {
            report.mismatched.push((key, expected, actual));
        }
    }
    Ok(report)
}

/// Which snapshots `expire` removes: named labels, and/or complete ones older than a cut-off,
/// and/or all complete ones but the newest `keep`.
#[derive(Clone, Debug, Default)]
pub struct ExpirePolicy {
    pub labels: Vec<String>,
    pub older_than: Option<chrono::Duration>,
    pub keep: Option<usize>,
    /// An unfinished label (no `__info_`) younger than this may be being written by a running
    /// job: never removed (StarRocks' default job timeout is a day).
    pub unfinished_grace: chrono::Duration,
}

/// The labels `policy` selects (none being written), with their sizes.
pub fn select(
    snapshots: &[SrSnapshot],
    policy: &ExpirePolicy,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<SrSnapshot> {
    let writing = |s: &SrSnapshot| !s.complete() && now - s.last_modified < policy.unfinished_grace;
    let mut complete: Vec<&SrSnapshot> = snapshots.iter().filter(|s| s.complete()).collect();
    complete.sort_by_key(|s| std::cmp::Reverse(s.last_modified));
    let kept_newest: Vec<&str> = match policy.keep {
        Some(n) => complete.iter().take(n).map(|s| s.label.as_str()).collect(),
        None => Vec::new(),
    };
    snapshots
        .iter()
        .filter(|s| !writing(s))
        .filter(|s| {
            let named = policy.labels.contains(&s.label);
            let old = policy
                .older_than
                .is_some_and(|age| s.complete() && now - s.last_modified > age);
            let beyond_keep =
                policy.keep.is_some() && s.complete() && !kept_newest.contains(&s.label.as_str());
            named || old || beyond_keep
        })
        .cloned()
        .collect()
}

/// Removes the selected labels' files (`dry_run`: only says what it would remove).
pub async fn expire(
    repo: &Repository,
    name: &str,
    policy: &ExpirePolicy,
    dry_run: bool,
) -> Result<Vec<SrSnapshot>> {
    let snapshots = list(repo, name).await?;
    for wanted in &policy.labels {
        if !snapshots.iter().any(|s| &s.label == wanted) {
            return Err(RepoError::Busy {
                repository: repo.name.clone(),
                reason: format!("StarRocks repository {name} holds no snapshot {wanted}"),
            });
        }
    }
    let chosen = select(&snapshots, policy, chrono::Utc::now());
    if dry_run || chosen.is_empty() {
        return Ok(chosen);
    }
    repo.writable()?;
    let root = root(name);
    let doomed: Vec<&str> = chosen.iter().map(|s| s.label.as_str()).collect();
    for (key, _) in objects(repo, name).await? {
        // The info file first would be kinder to a concurrent reader; every file goes either
        // way, and a label left half-removed lists as unfinished (and is expired again).
        if label_of(&key, &root).is_some_and(|l| doomed.contains(&l)) {
            repo.store()
                .delete(&ObjectPath::from(key.as_str()))
                .await
                .map_err(|e| repo.err(format!("deleting {key}"), e))?;
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_names_and_labels() {
        assert_eq!(
            named_md5("r/__ss_a/__meta.0123456789abcdef0123456789ABCDEF"),
            Some("0123456789abcdef0123456789ABCDEF")
        );
        assert_eq!(named_md5("r/__repo_info"), None);
        assert_eq!(named_md5("r/__ss_a/x.123"), None);
        assert_eq!(
            label_of("__starrocks_repository_p/__ss_snap1/__meta.x", &root("p")),
            Some("snap1")
        );
        assert_eq!(
            label_of("__starrocks_repository_p/__repo_info", &root("p")),
            None
        );
    }

    #[test]
    fn selection_never_takes_a_label_being_written() {
        let now = chrono::Utc::now();
        let snap = |label: &str, done: bool, hours: i64| SrSnapshot {
            label: label.into(),
            timestamps: if done { vec!["t".into()] } else { vec![] },
            files: 1,
            bytes: 1,
            last_modified: now - chrono::Duration::hours(hours),
        };
        let all = vec![
            snap("old", true, 100),
            snap("mid", true, 50),
            snap("new", true, 1),
            snap("writing", false, 1),
            snap("failed", false, 100),
        ];
        let policy = ExpirePolicy {
            keep: Some(1),
            unfinished_grace: chrono::Duration::hours(24),
            ..Default::default()
        };
        let names = |v: Vec<SrSnapshot>| v.into_iter().map(|s| s.label).collect::<Vec<_>>();
        assert_eq!(names(select(&all, &policy, now)), ["old", "mid"]);
        let policy = ExpirePolicy {
            labels: vec!["writing".into(), "failed".into()],
            unfinished_grace: chrono::Duration::hours(24),
            ..Default::default()
        };
        assert_eq!(names(select(&all, &policy, now)), ["failed"]);
        let policy = ExpirePolicy {
            older_than: Some(chrono::Duration::hours(60)),
            unfinished_grace: chrono::Duration::hours(24),
            ..Default::default()
        };
        assert_eq!(names(select(&all, &policy, now)), ["old"]);
    }
}
