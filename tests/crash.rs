//! Jobs across processes, as a user runs them: CANCEL from a second process, kill -9 in the
//! middle of a backup or an overwrite restore followed by `srbackup resume` or CANCEL, and a
//! load during a backup. Transfers are slowed down with the cluster's rate limits so that the
//! job is caught mid-way; no test depends on how fast anything is.

mod common;

use common::cli::*;
use srbackup::catalog;

#[test]
fn cancel_from_a_second_process_stops_a_backup_cleanly() {
    let c = cluster();
    throttle(&c, 8);
    let child = spawn(&c, &["sql", "BACKUP DATABASE sr_hub SNAPSHOT slow TO r"]);
    let job = wait_for_progress(&c, "backup", 3);
    assert!(!job.finished, "the backup should still be running");
    let out = sql(&c, "CANCEL BACKUP FROM sr_hub");
    assert!(out.contains("cancelled"), "{out}");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cancelled by CANCEL BACKUP"), "{stderr}");
    let job = latest_job(&c, "backup").unwrap();
    assert_eq!(
        (job.state.as_str(), job.status.as_str()),
        ("CANCELLED", "[CANCELLED]")
    );
    // No snapshot became visible, and the database takes a new job at once.
    let out = sql(&c, "SHOW SNAPSHOT ON r");
    assert!(!out.contains("slow"), "{out}");
    throttle(&c, 0);
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT fast TO r");
}

#[test]
fn a_backup_killed_midway_is_resumed_without_resending_and_a_load_never_leaks_in() {
    let c = cluster();
    let before = all_checksums(&c, "sr_hub");
    throttle(&c, 8);
    let mut child = spawn(&c, &["sql", "BACKUP DATABASE sr_hub SNAPSHOT killed TO r"]);
    wait_for_progress(&c, "backup", 5);
    // A load while the backup runs: the snapshot keeps the version the backup pinned.
    sql(
        &c,
        "INSERT INTO sr_hub.sr_member VALUES (99999, 'late', '2022-03-01', 1, true, 1.00, '2025-01-01 00:00:00')",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let job = latest_job(&c, "backup").unwrap();
    assert!(!job.finished);
    // The next command points at it; resume finishes it.
    let (_, _, err) = srbackup(&c.path, &["sql", "SHOW BACKUP"]);
    assert!(
        err.contains("interrupted") && err.contains("srbackup resume"),
        "{err}"
    );
    throttle(&c, 0);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("FINISHED"), "{out}");
    // Uploads the first process finished were not sent again.
    let sent: u64 = out
        .split(" of 45 files (")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(sent < 45, "{out}");
    // ... and the summary counts them as done before the resume, not as sent now.
    assert!(
        out.contains(&format!("{} files (", 45 - sent)) && out.contains("done before the resume"),
        "{out}"
    );
    sql(&c, "RESTORE SNAPSHOT killed FROM r DATABASE sr_hub AS back");
    assert_eq!(all_checksums(&c, "back"), before);
}

#[test]
fn an_overwrite_restore_killed_before_publish_loses_nothing() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT base TO r");
    let snapshot = all_checksums(&c, "sr_hub");
    // The live data moves on after the snapshot.
    sql(
        &c,
        "INSERT INTO sr_hub.sr_pmc VALUES (7777, 1, 'after', '2024-01-01')",
    );
    let current = all_checksums(&c, "sr_hub");
    assert_ne!(current, snapshot);

    // Killed in the middle of downloading, then cancelled: the current data is untouched.
    throttle(&c, 8);
    let mut child = spawn(&c, &["sql", "RESTORE SNAPSHOT base FROM r DATABASE sr_hub"]);
    wait_for_progress(&c, "restore", 10);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(all_checksums(&c, "sr_hub"), current);
    let (ok, _, err) = srbackup(
        &c.path,
        &[
            "sql",
            "INSERT INTO sr_hub.sr_pmc VALUES (7778, 1, 'x', '2024-01-01')",
        ],
    );
    assert!(!ok && err.contains("is in restore process"), "{err}");
    let out = sql(&c, "CANCEL RESTORE FROM sr_hub");
    assert!(out.contains("cancelled"), "{out}");
    assert_eq!(all_checksums(&c, "sr_hub"), current);

    // Killed again, then resumed: the restore completes and the snapshot is what remains.
    let first = latest_job(&c, "restore").unwrap().id;
    let mut child = spawn(&c, &["sql", "RESTORE SNAPSHOT base FROM r DATABASE sr_hub"]);
    wait_for_job_after(&c, "restore", 10, first);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(all_checksums(&c, "sr_hub"), current);
    throttle(&c, 0);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    assert_eq!(all_checksums(&c, "sr_hub"), snapshot);
    // And the tables take loads again.
    sql(
        &c,
        "INSERT INTO sr_hub.sr_pmc VALUES (7779, 1, 'ok', '2024-01-01')",
    );
}

#[test]
fn verify_reads_every_object_and_names_the_damaged_ones() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT v TO r");
    let (ok, out, err) = srbackup(&c.path, &["verify", "r", "v"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("45 files") && out.contains("0 damaged"),
        "{out}"
    );
    let victim = std::fs::read_dir(c.repo.join("objects"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let (ok, out, err) = srbackup(&c.path, &["verify", "r", "v"]);
    assert!(!ok);
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(out.contains("DAMAGED") && out.contains(&name), "{out}");
    assert_eq!(out.matches("DAMAGED").count(), 1, "{out}");
    assert!(err.contains("damaged"), "{err}");
}

#[test]
fn a_job_past_its_timeout_is_cancelled_with_starrocks_message() {
    let c = cluster();
    throttle(&c, 8);
    let mut child = spawn(
        &c,
        &[
            "sql",
            "BACKUP DATABASE sr_hub SNAPSHOT late TO r PROPERTIES (\"timeout\" = \"600\")",
        ],
    );
    let job = wait_for_progress(&c, "backup", 2);
    child.kill().unwrap();
    child.wait().unwrap();
    // Eleven minutes later, as far as the job can tell (a hand edit of the catalog file).
    let cat = rusqlite::Connection::open(c.path.join("catalog.db")).unwrap();
    cat.execute(
        "UPDATE jobs SET created_at = datetime(created_at, '-660 seconds') WHERE id = ?1",
        [job.id],
    )
    .unwrap();
    drop(cat);
    throttle(&c, 0);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(!ok, "{out}");
    assert!(err.contains("timeout"), "{err}");
    let job = latest_job(&c, "backup").unwrap();
    assert_eq!(job.state, catalog::JobState::Cancelled);
    assert_eq!(
        job.task_err_msg.as_deref(),
        Some("backup job with label: late timeout after 600 s")
    );
    // Stopped at once: nothing more was sent (the summary counts the job's 45 files).
    assert!(flat(&err).contains("0 of 45 files (0 B) sent"), "{err}");
}

#[test]
fn a_job_that_cannot_resume_is_ended_and_undone() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT base TO r");
    sql(
        &c,
        "INSERT INTO sr_hub.sr_pmc VALUES (6666, 1, 'after', '2024-01-01')",
    );
    let current = all_checksums(&c, "sr_hub");
    throttle(&c, 8);
    let mut child = spawn(&c, &["sql", "RESTORE SNAPSHOT base FROM r DATABASE sr_hub"]);
    wait_for_progress(&c, "restore", 10);
    child.kill().unwrap();
    child.wait().unwrap();
    // Its repository goes away before anyone resumes it (DROP REPOSITORY is refused while
    // the job needs it; the directory itself can still vanish).
    std::fs::rename(&c.repo, c.repo.with_extension("gone")).unwrap();
    let (ok, _, err) = srbackup(&c.path, &["resume"]);
    assert!(!ok && err.contains("not an srbackup repository"), "{err}");
    let job = latest_job(&c, "restore").unwrap();
    assert_eq!((job.state.as_str(), job.finished), ("CANCELLED", true));
    // Undone: the old data, loads accepted, nothing left to resume.
    assert_eq!(all_checksums(&c, "sr_hub"), current);
    sql(
        &c,
        "INSERT INTO sr_hub.sr_pmc VALUES (6667, 1, 'ok', '2024-01-01')",
    );
    let (_, out, _) = srbackup(&c.path, &["resume"]);
    assert!(out.contains("no interrupted job"), "{out}");
}

/// A job interrupted by the previous srbackup (untagged journal entries, a plan with a
/// `properties` map) resumes under this one and ends with the snapshot's data.
#[test]
fn a_restore_interrupted_by_the_previous_format_resumes() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT base TO r");
    let snapshot = all_checksums(&c, "sr_hub");
    sql(
        &c,
        "INSERT INTO sr_hub.sr_pmc VALUES (7777, 1, 'after', '2024-01-01')",
    );
    throttle(&c, 8);
    let mut child = spawn(&c, &["sql", "RESTORE SNAPSHOT base FROM r DATABASE sr_hub"]);
    let job = wait_for_progress(&c, "restore", 10);
    child.kill().unwrap();
    child.wait().unwrap();
    // Rewrite the catalog as srbackup 0.1.0 left it (a hand edit of the file).
    as_previous_format(&c, &job, 10);
    throttle(&c, 0);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    assert_eq!(all_checksums(&c, "sr_hub"), snapshot);
}

/// The same for a BACKUP: interrupted by the previous srbackup (untagged entries, a version-1
/// plan), it resumes under this one, sends only what was left, and its snapshot restores to
/// exactly the data it pinned.
#[test]
fn a_backup_interrupted_by_the_previous_format_resumes() {
    let c = cluster();
    let pinned = all_checksums(&c, "sr_hub");
    throttle(&c, 8);
    let mut child = spawn(
        &c,
        &["sql", "BACKUP DATABASE sr_hub SNAPSHOT old_format TO r"],
    );
    let job = wait_for_progress(&c, "backup", 8);
    child.kill().unwrap();
    child.wait().unwrap();
    as_previous_format(&c, &job, 8);
    // Changed after the pin: the snapshot must not see it.
    sql(
        &c,
        "INSERT INTO sr_hub.sr_pmc VALUES (7778, 1, 'after', '2024-01-01')",
    );
    throttle(&c, 0);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    sql(
        &c,
        "RESTORE SNAPSHOT old_format FROM r DATABASE sr_hub AS back",
    );
    assert_eq!(all_checksums(&c, "back"), pinned);
}

/// Rewrites an interrupted job in the catalog as srbackup 0.1.0 left it: journal entries
/// without their `entry` tag (at least `entries` of them), a version-1 plan with a
/// `properties` map instead of typed options.
fn as_previous_format(c: &Cluster, job: &catalog::JobRow, entries: usize) {
    let db = rusqlite::Connection::open(c.path.join("catalog.db")).unwrap();
    let stored: Vec<(String, String)> = db
        .prepare("SELECT task_id, result FROM job_tasks WHERE job_id = ?1")
        .unwrap()
        .query_map([job.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(stored.len() >= entries, "{stored:?}");
    for (task, result) in &stored {
        let mut v: serde_json::Value = serde_json::from_str(result).unwrap();
        assert!(
            v.as_object_mut().unwrap().remove("entry").is_some(),
            "{result}"
        );
        db.execute(
            "UPDATE job_tasks SET result = ?3 WHERE job_id = ?1 AND task_id = ?2",
            rusqlite::params![job.id, task, v.to_string()],
        )
        .unwrap();
    }
    let mut plan: serde_json::Value = serde_json::from_str(&job.plan).unwrap();
    let object = plan.as_object_mut().unwrap();
    object.remove("options").unwrap();
    object.insert("version".into(), 1.into());
    object.insert("properties".into(), serde_json::json!({"timeout": "86400"}));
    db.execute(
        "UPDATE jobs SET plan = ?2 WHERE id = ?1",
        rusqlite::params![job.id, plan.to_string()],
    )
    .unwrap();
    drop(db);
}
