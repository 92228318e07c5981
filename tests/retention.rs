//! Retention (`srbackup forget`): the same decisions as restic's `forget` on the same dates,
//! and a forget that deletes exactly the snapshots the policy does not keep, then only the
//! objects no remaining snapshot needs.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use chrono::NaiveDateTime;
use srbackup::repo::retention::{Keep, Policy, apply};

const RESTIC: &str = include_str!("../fixtures/retention/restic.json");

#[derive(serde::Deserialize)]
struct Fixture {
    restic: String,
    times: Vec<String>,
    policies: Vec<FixturePolicy>,
}

#[derive(serde::Deserialize)]
struct FixturePolicy {
    args: Vec<String>,
    /// Each kept snapshot's time and restic's reasons.
    kept: BTreeMap<String, Vec<String>>,
}

fn policy_of(args: &[String]) -> Policy {
    let mut p = Policy::default();
    for pair in args.chunks(2) {
        let keep: Keep = pair[1].parse().unwrap();
        match pair[0].as_str() {
            "--keep-last" => p.last = keep,
            "--keep-hourly" => p.hourly = keep,
            "--keep-daily" => p.daily = keep,
            "--keep-weekly" => p.weekly = keep,
            "--keep-monthly" => p.monthly = keep,
            "--keep-yearly" => p.yearly = keep,
            other => panic!("fixture flag {other}"),
        }
    }
    p
}

fn time(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
}

/// Our decisions: kept time -> reasons.
fn decide(policy: &Policy, times: &[String]) -> BTreeMap<String, Vec<String>> {
    let list = times.iter().map(|t| (t.clone(), time(t))).collect();
    apply(policy, list)
        .into_iter()
        .filter(|d| d.keep())
        .map(|d| (d.snapshot, d.reasons))
        .collect()
}

/// fixtures/retention/restic.json holds what restic's `forget --dry-run --json` kept, and
/// why, for 90 snapshot times and 8 policies (scripts/retention-fixture made it). Every
/// decision must be restic's. The one difference is the oldest snapshot: restic 0.17 and
/// later also keep it while a rule has counts left ("oldest daily snapshot"), which the
/// fixture's restic (Debian's 0.14) predates; there srbackup follows the newer rule.
#[test]
fn decisions_equal_restics_on_the_same_dates() {
    let fixture: Fixture = serde_json::from_str(RESTIC).unwrap();
    assert!(fixture.times.len() >= 90 && fixture.policies.len() >= 8);
    let oldest = fixture.times.iter().min().unwrap().clone();
    for p in &fixture.policies {
        let policy = policy_of(&p.args);
        let mut ours = decide(&policy, &fixture.times);
        let mut theirs = p.kept.clone();
        let our_oldest = ours.remove(&oldest);
        let their_oldest = theirs.remove(&oldest);
        assert_eq!(
            ours, theirs,
            "{:?}: srbackup and restic {} keep different snapshots",
            p.args, fixture.restic
        );
        // The oldest: restic 0.14's reasons, plus "oldest ..." for a rule with counts left.
        let plain: Vec<String> = our_oldest
            .iter()
            .flatten()
            .filter(|r| !r.starts_with("oldest "))
            .cloned()
            .collect();
        assert_eq!(plain, their_oldest.unwrap_or_default(), "{:?}", p.args);
        for extra in our_oldest
            .iter()
            .flatten()
            .filter(|r| r.starts_with("oldest "))
        {
            // Only a rule that kept fewer snapshots than its count.
            let rule = extra
                .trim_start_matches("oldest ")
                .trim_end_matches(" snapshot");
            let kept_by_rule = p
                .kept
                .values()
                .filter(|reasons| reasons.iter().any(|r| r.contains(rule)))
                .count() as u32;
            let count = match rule {
                "last" => policy.last,
                "hourly" => policy.hourly,
                "daily" => policy.daily,
                "weekly" => policy.weekly,
                "monthly" => policy.monthly,
                "yearly" => policy.yearly,
                other => panic!("rule {other}"),
            };
            assert!(
                matches!(count, Keep::Count(n) if kept_by_rule < n),
                "{:?}: {extra} with {kept_by_rule} kept of {count}",
                p.args
            );
        }
    }
}

/// `unlimited` keeps what a count larger than the history keeps.
#[test]
fn unlimited_is_a_count_without_end() {
    let fixture: Fixture = serde_json::from_str(RESTIC).unwrap();
    let big = |k: Keep| match k {
        Keep::Count(n) if n >= 100 => Keep::Unlimited,
        k => k,
    };
    let mut compared = 0;
    for p in &fixture.policies {
        let counted = policy_of(&p.args);
        let unlimited = Policy {
            last: big(counted.last),
            hourly: big(counted.hourly),
            daily: big(counted.daily),
            weekly: big(counted.weekly),
            monthly: big(counted.monthly),
            yearly: big(counted.yearly),
        };
        if unlimited != counted {
            compared += 1;
            assert_eq!(
                decide(&unlimited, &fixture.times),
                decide(&counted, &fixture.times),
                "{:?}",
                p.args
            );
        }
    }
    assert!(compared >= 3);
}

fn srbackup(cluster: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_srbackup"))
        .arg("--cluster")
        .arg(cluster)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn objects(repo: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(repo.join("objects")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

fn manifests(repo: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for label in std::fs::read_dir(repo.join("snapshots")).unwrap() {
        let label = label.unwrap();
        for f in std::fs::read_dir(label.path()).unwrap() {
            out.push(format!(
                "{}/{}",
                label.file_name().to_string_lossy(),
                f.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

/// A history: snapshot `a` (the table's first content) copied to five January days, and
/// snapshot `b` (other content, taken now). `--keep-daily 2` keeps `b` and the newest January
/// copy: both objects stay. `--keep-last 1` then leaves `b` alone, and the object only `a`
/// named is deleted; `b` still restores. A dry run first deletes nothing.
#[test]
fn forget_deletes_what_the_policy_does_not_keep_and_then_the_objects_only_they_needed() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, repo) = (dir.path().join("c"), dir.path().join("repo"));
    let sql = |text: &str| {
        let (code, out, err) = srbackup(&cluster, &["sql", text]);
        assert_eq!(code, 0, "{text}: {out}{err}");
        out
    };
    sql(&format!(
        "CREATE DATABASE d; CREATE TABLE d.t (k BIGINT) DUPLICATE KEY (k) DISTRIBUTED BY HASH (k) BUCKETS 1; \
         INSERT INTO d.t VALUES (1); CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\"",
        repo.display()
    ));
    sql("BACKUP DATABASE d SNAPSHOT a TO r");
    let first_objects = objects(&repo);
    sql(
        "DROP TABLE d.t FORCE; CREATE TABLE d.t (k BIGINT) DUPLICATE KEY (k) DISTRIBUTED BY HASH (k) BUCKETS 1; INSERT INTO d.t VALUES (2), (3)",
    );
    sql("BACKUP DATABASE d SNAPSHOT b TO r");
    let only_a: Vec<String> = first_objects
        .iter()
        .filter(|o| {
            let b = manifests(&repo)
                .into_iter()
                .find(|m| m.starts_with("b/"))
                .unwrap();
            !std::fs::read_to_string(repo.join("snapshots").join(b))
                .unwrap()
                .contains(o.as_str())
        })
        .cloned()
        .collect();
    assert!(!only_a.is_empty(), "snapshot a has an object of its own");
    // Five January copies of `a`.
    let a = manifests(&repo)
        .into_iter()
        .find(|m| m.starts_with("a/"))
        .unwrap();
    let text = std::fs::read_to_string(repo.join("snapshots").join(&a)).unwrap();
    for day in 1..=5 {
        let ts = format!("2026-01-0{day}-10-00-00-000");
        let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
        m["timestamp"] = serde_json::Value::String(ts.clone());
        std::fs::write(
            repo.join("snapshots/a").join(format!("{ts}.json")),
            serde_json::to_string_pretty(&m).unwrap(),
        )
        .unwrap();
    }
    assert_eq!(manifests(&repo).len(), 7);

    // No rule: refused, nothing touched.
    let (code, out, err) = srbackup(&cluster, &["forget", "r"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("no retention rule was given"), "{err}");
    assert_eq!(manifests(&repo).len(), 7);

    // Dry run: says what would go and why the rest stays; deletes nothing.
    let (code, out, err) = srbackup(&cluster, &["forget", "r", "--keep-daily", "2", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("database d: 7 snapshots, keep 2, would forget 5 (keep-daily=2)"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.contains("keep")
            && l.contains("2026-01-05-10-00-00-000")
            && l.contains("daily snapshot")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("forget") && l.contains("2026-01-01-10-00-00-000")),
        "{out}"
    );
    assert!(out.contains("nothing was deleted"), "{out}");
    assert_eq!(manifests(&repo).len(), 7);

    // Saved as the repository's default while applied.
    let (code, out, err) = srbackup(&cluster, &["forget", "r", "--keep-daily", "2", "--save"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("saved as the default policy of r: keep-daily=2"),
        "{out}"
    );
    assert!(repo.join("retention.json").exists());
    let left = manifests(&repo);
    assert_eq!(left.len(), 2, "{left:?}");
    // Without rules, the saved default applies (and has nothing more to forget).
    let (code, out, err) = srbackup(&cluster, &["forget", "r"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("the default policy of r: keep-daily=2"),
        "{out}"
    );
    assert!(out.contains("forgot 0 snapshots"), "{out}");
    assert_eq!(manifests(&repo).len(), 2);
    assert!(left.iter().any(|m| m.starts_with("b/")));
    assert!(left.contains(&"a/2026-01-05-10-00-00-000.json".to_string()));
    // The January copy still needs a's object.
    for o in &only_a {
        assert!(
            objects(&repo).contains(o),
            "{o} was deleted while a snapshot needs it"
        );
    }

    let (code, out, err) = srbackup(&cluster, &["forget", "r", "--keep-last", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("forgot 1 snapshots; deleted"), "{out}");
    let left = manifests(&repo);
    assert_eq!(left.len(), 1);
    assert!(left[0].starts_with("b/"));
    for o in &only_a {
        assert!(!objects(&repo).contains(o), "{o} is needed by no snapshot");
    }
    // What is left restores, whole.
    sql("RESTORE SNAPSHOT b FROM r DATABASE d AS d2");
    let out = sql("SELECT count(*), sum(k) FROM d2.t");
    assert!(out.contains("| 2 ") && out.contains("| 5 "), "{out}");
    let (code, out, err) = srbackup(&cluster, &["verify", "r", "b"]);
    assert_eq!(code, 0, "{out}{err}");

    // A damaged saved policy: refused, naming it, and nothing is forgotten.
    std::fs::write(
        repo.join("retention.json"),
        "{\"retention\": \"keep-everything\"}",
    )
    .unwrap();
    let (code, out, err) = srbackup(&cluster, &["forget", "r"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("retention.json") && err.contains("cannot be read"),
        "{err}"
    );
    assert_eq!(manifests(&repo).len(), 1);
    // A huge one is not read at all.
    std::fs::write(repo.join("retention.json"), " ".repeat(1 << 20)).unwrap();
    let (code, out, err) = srbackup(&cluster, &["forget", "r"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("1048576 bytes, more than a policy's"), "{err}");
    // Neither is a pipe (which would block the read) or a directory.
    std::fs::remove_file(repo.join("retention.json")).unwrap();
    std::fs::create_dir(repo.join("retention.json")).unwrap();
    let (code, out, err) = srbackup(&cluster, &["forget", "r"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("it is not a regular file"), "{err}");
    std::fs::remove_dir(repo.join("retention.json")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(repo.join("retention.json"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let (code, out, err) = srbackup(&cluster, &["forget", "r"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("it is not a regular file"), "{err}");
    std::fs::remove_file(repo.join("retention.json")).unwrap();
    // Saving is not a dry run's business.
    let (code, _, err) = srbackup(
        &cluster,
        &["forget", "r", "--keep-last", "1", "--save", "--dry-run"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("cannot be used with"), "{err}");

    // --label and --group-by are not part of a saved policy: refused with --save.
    let (code, _, err) = srbackup(
        &cluster,
        &["forget", "r", "--keep-last", "1", "--save", "--label", "b"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("cannot be used with"), "{err}");

    // A damaged manifest is kept (unreadable), and the snapshots the policy forgets go; the
    // sweep that cannot know what the damaged one needs is reported, not turned into an error
    // after the deletions.
    let b = manifests(&repo).pop().unwrap();
    let text = std::fs::read_to_string(repo.join("snapshots").join(&b)).unwrap();
    for ts in ["2026-02-01-10-00-00-000", "2026-02-02-10-00-00-000"] {
        let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
        m["timestamp"] = serde_json::Value::String(ts.into());
        std::fs::write(
            repo.join("snapshots/b").join(format!("{ts}.json")),
            serde_json::to_string(&m).unwrap(),
        )
        .unwrap();
    }
    std::fs::write(
        repo.join("snapshots/b/2026-03-01-10-00-00-000.json"),
        &text[..100],
    )
    .unwrap();
    let (code, out, err) = srbackup(&cluster, &["forget", "r", "--keep-last", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("kept, unreadable: b 2026-03-01-10-00-00-000"),
        "{out}"
    );
    assert!(
        out.contains("forgot 2 snapshots; unreferenced objects stay"),
        "{out}"
    );
    assert!(out.contains("is unreadable"), "{out}");
    let left = manifests(&repo);
    let mut expected = vec![b.clone(), "b/2026-03-01-10-00-00-000.json".to_string()];
    expected.sort();
    assert_eq!(left, expected);
    // DROP SNAPSHOT the same way (found by a QA attack: it dropped, then exited 1): the drop is
    // reported as done, and why the objects stay.
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["label"] = serde_json::Value::String("c".into());
    m["timestamp"] = serde_json::Value::String("2026-02-05-10-00-00-000".into());
    std::fs::create_dir_all(repo.join("snapshots/c")).unwrap();
    std::fs::write(
        repo.join("snapshots/c/2026-02-05-10-00-00-000.json"),
        serde_json::to_string(&m).unwrap(),
    )
    .unwrap();
    let (code, out, err) = srbackup(&cluster, &["sql", "DROP SNAPSHOT c ON r"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("dropped 1 snapshot of c"), "{out}");
    assert!(out.contains("is unreadable"), "{out}");
    assert!(
        !repo
            .join("snapshots/c/2026-02-05-10-00-00-000.json")
            .exists()
    );
    std::fs::remove_file(repo.join("snapshots/b/2026-03-01-10-00-00-000.json")).unwrap();

    // A label no snapshot has is said, not silently ignored.
    let (code, out, err) = srbackup(
        &cluster,
        &[
            "forget",
            "r",
            "--keep-last",
            "1",
            "--label",
            "nosuch",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("no snapshot of r has the label nosuch"),
        "{out}"
    );

    // A bad count names itself.
    let (code, _, err) = srbackup(&cluster, &["forget", "r", "--keep-daily", "lots"]);
    assert_ne!(code, 0);
    assert!(err.contains("is not a count"), "{err}");
}
