//! Jobs across processes, as a user runs them: CANCEL from a second process, kill -9 in the
//! middle of a backup or an overwrite restore followed by `srbackup resume` or CANCEL, kill -9
//! between "written" and "flushed" followed by a simulated power loss, a load during a backup,
//! and a load over thousands of tablets under a low limit of open files. Transfers are slowed down with the cluster's rate limits so that the
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

/// Spawns `srbackup sql statement` with every batch flush paused, and returns once it says it
/// is pausing: its first batch is written and not flushed.
fn paused_before_flush(c: &Cluster, statement: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(BIN)
        .arg("--cluster")
        .arg(&c.path)
        .args(["sql", statement])
        .env("SRBACKUP_PAUSE_BEFORE_FLUSH_MS", "600000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("before flushing") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("the job never reached its first flush");
    child
}

/// Whether the job's journal holds an entry of a task whose id starts with `prefix`.
fn journal_holds(c: &Cluster, job: i64, prefix: &str) -> bool {
    let cat = catalog::Catalog::open(&c.path.join("catalog.db")).unwrap();
    let journal = cat.view().journal(job).unwrap();
    journal.keys().any(|t| t.starts_with(prefix))
}

/// What a power loss may do to files written but not flushed: half of them lose their
/// content, the others keep their size but read as zeros.
fn lose_unflushed(files: &[std::path::PathBuf]) {
    for (i, f) in files.iter().enumerate() {
        let len = std::fs::metadata(f).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(f).unwrap();
        if i % 2 == 0 {
            file.set_len(0).unwrap();
        } else {
            file.set_len(0).unwrap();
            file.set_len(len).unwrap();
        }
    }
}

fn files_under(dir: &std::path::Path, keep: &dyn Fn(&str) -> bool) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(files_under(&path, keep));
        } else if keep(&path.file_name().unwrap().to_string_lossy()) {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn a_backup_killed_between_written_and_flushed_names_no_unflushed_object() {
    let c = cluster();
    let before = all_checksums(&c, "sr_hub");
    let mut child = paused_before_flush(&c, "BACKUP DATABASE sr_hub SNAPSHOT torn TO r");
    let objects = files_under(&c.repo.join("objects"), &|_| true);
    assert!(!objects.is_empty(), "the first batch was written");
    child.kill().unwrap();
    child.wait().unwrap();
    // Nothing named what was not flushed: no manifest, and the journal recorded no upload.
    let out = sql(&c, "SHOW SNAPSHOT ON r");
    assert!(!out.contains("torn"), "{out}");
    let job = latest_job(&c, "backup").unwrap();
    assert!(!job.finished);
    assert!(!journal_holds(&c, job.id, "upload"));
    // The power goes: every object written so far is damaged. The resumed backup trusts none
    // of them (no manifest names them): each is read, found damaged and written again.
    lose_unflushed(&objects);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    let (ok, out, err) = srbackup(&c.path, &["verify", "r", "torn"]);
    assert!(ok, "{out}\n{err}");
    sql(&c, "RESTORE SNAPSHOT torn FROM r DATABASE sr_hub AS back");
    assert_eq!(all_checksums(&c, "back"), before);
}

#[test]
fn a_restore_killed_between_written_and_flushed_ingests_no_unflushed_file() {
    let c = cluster();
    let before = all_checksums(&c, "sr_hub");
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT base TO r");
    let mut child = paused_before_flush(&c, "RESTORE SNAPSHOT base FROM r DATABASE sr_hub AS back");
    let downloaded = files_under(&c.path.join("data"), &|name| name.starts_with('R'));
    assert!(!downloaded.is_empty(), "the first batch was written");
    child.kill().unwrap();
    child.wait().unwrap();
    let job = latest_job(&c, "restore").unwrap();
    assert!(!job.finished);
    assert!(!journal_holds(&c, job.id, "download"));
    // The downloaded rowsets are lost with the power; the resumed restore fetches them again.
    lose_unflushed(&downloaded);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    assert_eq!(all_checksums(&c, "back"), before);
}

/// `srbackup --cluster c sql statement` under a limit of 64 open files.
fn sql_with_few_descriptors(c: &Cluster, statement: &str, env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\""])
        .arg(BIN)
        .arg("--cluster")
        .arg(&c.path)
        .args(["sql", statement])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{statement}\n{stdout}\n{stderr}");
    stdout.into_owned()
}

#[test]
fn a_load_touching_thousands_of_tablets_keeps_few_files_open_and_leaves_no_garbage() {
    let c = cluster();
    sql(
        &c,
        "CREATE DATABASE wide; CREATE TABLE wide.t (k BIGINT NOT NULL, p INT NOT NULL, v DOUBLE) \
         DUPLICATE KEY (k) PARTITION BY p DISTRIBUTED BY HASH (k) BUCKETS 100",
    );
    let before = files_under(&c.path.join("data"), &|_| true).len();
    // 20 partitions x 100 buckets = 2,000 tablets, every one touched, under a limit of 64 open
    // files (one writer per tablet would need 2,000), with a buffer small enough to spill.
    let out = sql_with_few_descriptors(
        &c,
        "INSERT INTO wide.t SELECT value, value % 20, value / 7.0 FROM generate_series(1, 60000)",
        &[("SRBACKUP_LOAD_BUFFER_BYTES", "200000")],
    );
    assert!(out.contains("60000 rows affected"), "{out}");
    let out = sql(&c, "SELECT count(*), count(DISTINCT p), sum(k) FROM wide.t");
    assert!(out.contains("60000") && out.contains("1800030000"), "{out}");
    // One rowset per tablet, and nothing else left in the table's directory (no spilled run,
    // no half-written file).
    let files = files_under(&c.path.join("data"), &|_| true);
    let parquet = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "parquet"));
    assert_eq!(parquet.count(), before + 2_000);
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "parquet")),
        "{files:?}"
    );
    // And it backs up and restores whole.
    sql(&c, "BACKUP DATABASE wide SNAPSHOT wide TO r");
    sql(
        &c,
        "RESTORE SNAPSHOT wide FROM r DATABASE wide AS wide_back",
    );
    assert_eq!(checksum(&c, "wide.t"), checksum(&c, "wide_back.t"));
}

#[test]
fn a_resumed_backup_checks_again_what_its_journal_holds() {
    let c = cluster();
    let before = all_checksums(&c, "sr_hub");
    throttle(&c, 8);
    let mut child = spawn(&c, &["sql", "BACKUP DATABASE sr_hub SNAPSHOT bitrot TO r"]);
    let job = wait_for_progress(&c, "backup", 6);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(journal_holds(&c, job.id, "upload"));
    // Every object is damaged while no process runs the job, the journaled ones included
    // (flushed, but no manifest names them yet).
    lose_unflushed(&files_under(&c.repo.join("objects"), &|_| true));
    throttle(&c, 0);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("damaged since; they are sent again"),
        "{out}\n{err}"
    );
    let (ok, out, err) = srbackup(&c.path, &["verify", "r", "bitrot"]);
    assert!(ok, "{out}\n{err}");
    sql(&c, "RESTORE SNAPSHOT bitrot FROM r DATABASE sr_hub AS back");
    assert_eq!(all_checksums(&c, "back"), before);
}

#[test]
fn a_resumed_restore_fetches_again_what_was_damaged_since_it_landed() {
    let c = cluster();
    let before = all_checksums(&c, "sr_hub");
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT base TO r");
    throttle(&c, 8);
    let mut child = spawn(
        &c,
        &[
            "sql",
            "RESTORE SNAPSHOT base FROM r DATABASE sr_hub AS back",
        ],
    );
    let job = wait_for_progress(&c, "restore", 10);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(journal_holds(&c, job.id, "download"));
    lose_unflushed(&files_under(&c.path.join("data"), &|name| {
        name.starts_with('R')
    }));
    throttle(&c, 0);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("removed or changed since; they are downloaded again"),
        "{out}\n{err}"
    );
    assert_eq!(all_checksums(&c, "back"), before);
}

#[test]
fn a_load_killed_midway_leaves_nothing_once_the_cluster_is_opened_again() {
    let c = cluster();
    sql(
        &c,
        "CREATE DATABASE wide; CREATE TABLE wide.t (k BIGINT NOT NULL, p INT NOT NULL, v DOUBLE) \
         DUPLICATE KEY (k) PARTITION BY p DISTRIBUTED BY HASH (k) BUCKETS 10",
    );
    let data = c.path.join("data");
    let before = files_under(&data, &|_| true);
    // A load that spills (a tiny buffer) and is killed once its first runs are on disk.
    let mut child = std::process::Command::new(BIN)
        .arg("--cluster")
        .arg(&c.path)
        .args([
            "sql",
            "INSERT INTO wide.t SELECT value, value % 50, value / 3.0 FROM generate_series(1, 3000000)",
        ])
        .env("SRBACKUP_LOAD_BUFFER_BYTES", "100000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while files_under(&data, &|name| name.ends_with(".arrows")).len() < 3 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "the load never spilled"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(files_under(&data, &|_| true).len() > before.len());
    // The next command opens the cluster, finds the dead load and removes what it wrote.
    let out = sql(&c, "SELECT count(*) FROM wide.t");
    assert!(out.contains("| 0 "), "{out}");
    assert_eq!(files_under(&data, &|_| true), before);
}
