//! Restore and job integrity, as a DBA (careless or hostile) exercises it through the CLI: no
//! path answers success while it replaces or loses data. One test per case of the issue that
//! found them; each failed on the code before the fix.

mod common;

use std::process::Stdio;

use common::cli::*;
use srbackup::catalog::{self, Catalog};

/// Rows of a mysql-style table printed by `srbackup sql`: (header, rows).
fn table(out: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = out.lines().filter(|l| l.starts_with('|')).map(|l| {
        l.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect::<Vec<_>>()
    });
    let header = lines.next().unwrap_or_default();
    (header, lines.collect())
}

fn cell(out: &str, row: usize, column: &str) -> String {
    let (header, rows) = table(out);
    let c = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {out}"));
    rows[row][c].clone()
}

/// Runs a statement that must fail; its error output, with the terminal's line wrapping and
/// box drawing undone so that messages can be matched whole.
fn refused(c: &Cluster, statement: &str) -> String {
    let (ok, out, err) = srbackup(&c.path, &["sql", statement]);
    assert!(!ok, "{statement} was accepted:\n{out}");
    flat(&err)
}

/// Starts a slowed job and kills it once it has finished `tasks` tasks; its job row.
fn killed_midway(c: &Cluster, kind: &str, statement: &str, tasks: usize) -> catalog::JobRow {
    throttle(c, 8);
    let before = latest_job(c, kind).map_or(0, |j| j.id);
    let mut child = spawn(c, &["sql", statement]);
    let job = wait_for_job_after(c, kind, tasks, before);
    child.kill().unwrap();
    child.wait().unwrap();
    throttle(c, 0);
    job
}

/// Case 1: a stale interrupted RESTORE cannot be overtaken by a newer one and then resumed
/// over it: the interrupted job holds its database until it is resumed or cancelled.
#[test]
fn an_interrupted_restore_holds_its_database_until_resumed_or_cancelled() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT a TO r");
    let state_a = all_checksums(&c, "sr_hub");
    sql(
        &c,
        "INSERT INTO sr_hub.sr_pmc VALUES (7001, 1, 'b', '2024-01-01')",
    );
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT b TO r");
    let state_b = all_checksums(&c, "sr_hub");
    assert_ne!(state_a, state_b);

    let job = killed_midway(
        &c,
        "restore",
        "RESTORE SNAPSHOT a FROM r DATABASE sr_hub",
        10,
    );
    let err = refused(&c, "RESTORE SNAPSHOT b FROM r DATABASE sr_hub");
    assert!(
        err.contains(&format!("RESTORE job {} (a)", job.id))
            && err.contains("process died")
            && err.contains(&format!("srbackup resume {}", job.id))
            && err.contains("CANCEL RESTORE FROM sr_hub"),
        "{err}"
    );
    // Resumed, it finishes; then the newer restore runs and is what remains.
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    assert_eq!(all_checksums(&c, "sr_hub"), state_a);
    sql(&c, "RESTORE SNAPSHOT b FROM r DATABASE sr_hub");
    assert_eq!(all_checksums(&c, "sr_hub"), state_b);
    let (_, out, _) = srbackup(&c.path, &["resume"]);
    assert!(out.contains("no interrupted job"), "{out}");
    assert_eq!(all_checksums(&c, "sr_hub"), state_b);

    // Cancelled instead: it is undone, and a later resume has nothing to do.
    killed_midway(
        &c,
        "restore",
        "RESTORE SNAPSHOT a FROM r DATABASE sr_hub",
        10,
    );
    sql(&c, "CANCEL RESTORE FROM sr_hub");
    assert_eq!(all_checksums(&c, "sr_hub"), state_b);
    sql(&c, "RESTORE SNAPSHOT a FROM r DATABASE sr_hub");
    assert_eq!(all_checksums(&c, "sr_hub"), state_a);
}

/// Case 2: an interrupted backup holds its database (one running job per database).
#[test]
fn an_interrupted_backup_holds_its_database() {
    let c = cluster();
    let job = killed_midway(&c, "backup", "BACKUP DATABASE sr_hub SNAPSHOT k TO r", 3);
    assert_eq!(job.state, catalog::JobState::Uploading);
    let err = refused(&c, "BACKUP DATABASE sr_hub SNAPSHOT other TO r");
    assert!(
        err.contains(&format!("BACKUP job {} (k)", job.id)) && err.contains("srbackup resume"),
        "{err}"
    );
    let err = refused(&c, "RESTORE SNAPSHOT k FROM r DATABASE sr_hub AS elsewhere");
    assert!(
        err.contains("no snapshot k") || err.contains("does not exist"),
        "{err}"
    );
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT other TO r");
}

/// Case 3: while a restore runs, the tables it replaces or creates take no DDL or load, and
/// its database cannot be dropped; afterwards they do.
#[test]
fn ddl_and_loads_on_tables_being_restored_are_refused() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT base TO r");
    let before = all_checksums(&c, "sr_hub");
    killed_midway(
        &c,
        "restore",
        "RESTORE SNAPSHOT base FROM r DATABASE sr_hub ON (TABLE sr_member, TABLE sr_pmc AS sr_pmc_copy)",
        4,
    );
    for (statement, words) in [
        ("DROP TABLE sr_hub.sr_member", "cannot be dropped"),
        (
            "TRUNCATE TABLE sr_hub.sr_member",
            "Do not allow doing ALTER ops",
        ),
        (
            "ALTER TABLE sr_hub.sr_member ADD PARTITION p9 VALUES [('2030-01-01'), ('2031-01-01'))",
            "Do not allow doing ALTER ops",
        ),
        (
            "INSERT INTO sr_hub.sr_member (sr_id, name, reg_date) VALUES (1, 'x', '2024-01-01')",
            "is in restore process",
        ),
        (
            "CREATE TABLE sr_hub.sr_pmc_copy (x INT NOT NULL) DUPLICATE KEY (x) DISTRIBUTED BY HASH (x) BUCKETS 1",
            "is being restored",
        ),
        (
            "CREATE VIEW sr_hub.sr_pmc_copy AS SELECT 1",
            "is being restored",
        ),
        ("DROP DATABASE sr_hub", "being restored"),
        (
            "DELETE FROM sr_hub.sr_member WHERE sr_id = 1",
            "is in restore process",
        ),
        (
            "ALTER TABLE sr_hub.sr_member RENAME sr_member_old",
            "Do not allow doing ALTER ops",
        ),
        (
            "ALTER TABLE sr_hub.sr_region SWAP WITH sr_member",
            "Do not allow doing ALTER ops",
        ),
        (
            "CREATE MATERIALIZED VIEW sr_hub.by_city AS SELECT city_code, count(sr_id) FROM sr_hub.sr_member GROUP BY city_code",
            "Do not allow doing ALTER ops",
        ),
        // The name a restore is creating cannot be taken by a rename either.
        (
            "ALTER TABLE sr_hub.sr_region RENAME sr_pmc_copy",
            "is being restored",
        ),
    ] {
        let err = refused(&c, statement);
        assert!(err.contains(words), "{statement}:\n{err}");
        assert!(err.contains("srbackup resume"), "{statement}:\n{err}");
    }
    assert_eq!(all_checksums(&c, "sr_hub"), before);
    let (ok, out, err) = srbackup(&c.path, &["resume"]);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");
    assert_eq!(
        checksum(&c, "sr_hub.sr_pmc_copy"),
        checksum(&c, "sr_hub.sr_pmc")
    );
    sql(&c, "TRUNCATE TABLE sr_hub.sr_member");
    sql(&c, "DROP TABLE sr_hub.sr_pmc_copy");
}

/// Case 4: a partition restore never makes two partitions cover one value.
#[test]
fn a_partition_restore_that_would_overlap_is_refused() {
    let c = cluster();
    let ddl = |partitions: &str| {
        format!(
            "CREATE TABLE sr_hub.t (dt DATE NOT NULL, v INT) DUPLICATE KEY (dt) \
             PARTITION BY RANGE (dt) ({partitions}) DISTRIBUTED BY HASH (dt) BUCKETS 1"
        )
    };
    sql(
        &c,
        &ddl("PARTITION p23 VALUES [('2023-01-01'), ('2024-01-01')), \
              PARTITION p24 VALUES [('2024-01-01'), ('2025-01-01'))"),
    );
    sql(&c, "INSERT INTO sr_hub.t VALUES ('2024-03-01', 24)");
    sql(
        &c,
        "BACKUP DATABASE sr_hub SNAPSHOT p TO r ON (TABLE t PARTITION (p24))",
    );
    sql(&c, "DROP TABLE sr_hub.t");
    sql(
        &c,
        &ddl("PARTITION px VALUES [('2023-06-01'), ('2024-06-01'))"),
    );
    sql(&c, "INSERT INTO sr_hub.t VALUES ('2024-03-01', 1)");
    let before = checksum(&c, "sr_hub.t");
    let err = refused(
        &c,
        "RESTORE SNAPSHOT p FROM r DATABASE sr_hub ON (TABLE t PARTITION (p24))",
    );
    assert!(
        err.contains("partition p24") && err.contains("overlaps partition px"),
        "{err}"
    );
    assert_eq!(checksum(&c, "sr_hub.t"), before);
    let out = sql(&c, "SHOW PARTITIONS FROM sr_hub.t");
    assert_eq!(table(&out).1.len(), 1, "{out}");
}

/// Case 5 (and 7: the reason after the bases come back): an MV restored into another database
/// without its base tables cannot be activated; restoring its bases activates it.
#[test]
fn an_mv_without_its_base_tables_cannot_be_activated() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT everything TO r");
    sql(
        &c,
        "RESTORE SNAPSHOT everything FROM r DATABASE sr_hub AS lonely ON (MATERIALIZED VIEW sr_mv1)",
    );
    let out = sql(&c, "SHOW MATERIALIZED VIEWS FROM lonely");
    assert_eq!(cell(&out, 0, "is_active"), "false", "{out}");
    // sr_hub.sr_member exists, but the MV reads lonely's tables.
    let err = refused(&c, "ALTER MATERIALIZED VIEW lonely.sr_mv1 ACTIVE");
    assert!(
        err.contains("lonely.sr_member") && err.contains("does not exist"),
        "{err}"
    );
    sql(
        &c,
        "RESTORE SNAPSHOT everything FROM r DATABASE sr_hub AS lonely ON (TABLE sr_member, TABLE sr_pmc)",
    );
    let out = sql(&c, "SHOW MATERIALIZED VIEWS FROM lonely");
    assert_eq!(cell(&out, 0, "is_active"), "true", "{out}");
    assert_eq!(cell(&out, 0, "inactive_reason"), "NULL", "{out}");
    sql(&c, "REFRESH MATERIALIZED VIEW lonely.sr_mv1");
}

/// Case 6: summaries say what happened: a cancelled restore, one that hit a damaged object,
/// and a backup that sent nothing.
#[test]
fn summaries_count_only_what_was_done() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT s TO r");
    // Cancelled from a second process.
    throttle(&c, 8);
    let child = std::process::Command::new(BIN)
        .arg("--cluster")
        .arg(&c.path)
        .args(["sql", "RESTORE SNAPSHOT s FROM r DATABASE sr_hub AS copy"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_progress(&c, "restore", 5);
    sql(&c, "CANCEL RESTORE FROM copy");
    let out = child.wait_with_output().unwrap();
    let err = flat(&String::from_utf8_lossy(&out.stderr));
    let done: u64 = err
        .split(" of 45 files")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(done < 45 && err.contains("before it stopped"), "{err}");
    throttle(&c, 0);
    // A damaged object: the restore stops; it does not claim the file verified.
    let object = first_object(&c);
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();
    let err = refused(&c, "RESTORE SNAPSHOT s FROM r DATABASE sr_hub AS copy2");
    assert!(
        err.contains("corrupt") && err.contains("before it stopped"),
        "{err}"
    );
    assert!(!err.contains("45 of 45"), "{err}");
    // The damaged object is stored again by the next backup (its modification time is later
    // than the snapshot naming it); then there is nothing to send: nothing sent, and no rate
    // made of skipped files.
    let out = sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT repaired TO r");
    assert!(out.contains("1 of 45 files"), "{out}");
    let out = sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT again TO r");
    assert!(
        out.contains("0 of 45 files (0 B) sent, 45 files") && out.contains(" 0 B/s"),
        "{out}"
    );
}

/// The path of one stored object of the repository.
fn first_object(c: &Cluster) -> std::path::PathBuf {
    let objects = c.repo.join("objects");
    let mut dirs: Vec<_> = std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut files: Vec<_> = std::fs::read_dir(&dirs[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files.remove(0)
}

/// Case 7: the smaller promises.
#[test]
fn the_smaller_promises_hold() {
    let c = cluster();
    let err = refused(&c, "CANCEL BACKUP FROM no_such_db");
    assert!(err.contains("unknown database no_such_db"), "{err}");
    let label = "x".repeat(130);
    let err = refused(&c, &format!("BACKUP DATABASE sr_hub SNAPSHOT {label} TO r"));
    assert!(
        err.contains("130 characters long; at most 128") && err.contains("snapshot label"),
        "{err}"
    );
    let err = refused(&c, "BACKUP DATABASE sr_hub SNAPSHOT `étiquette` TO r");
    assert_eq!(err.matches("is not a snapshot label").count(), 1, "{err}");
    assert!(err.contains("╭─["), "positioned: {err}");
    let err = refused(
        &c,
        "BACKUP DATABASE sr_hub SNAPSHOT s TO r PROPERTIES (\"type\" = \"incremental\")",
    );
    assert!(
        err.contains("every srbackup backup is already incremental"),
        "{err}"
    );
    for n in 1..=7 {
        sql(
            &c,
            &format!("BACKUP DATABASE sr_hub SNAPSHOT snap{n} TO r ON (TABLE sr_region)"),
        );
    }
    let err = refused(&c, "DROP SNAPSHOT snap8x ON r");
    assert!(
        err.contains("did you mean snap8") || err.contains("did you mean snap"),
        "{err}"
    );
    let err = refused(&c, "DROP SNAPSHOT zzzzzzzzzz ON r");
    assert!(
        err.contains("7 labels") || err.contains("and 2 more"),
        "{err}"
    );
    assert!(!err.contains("snap7"), "not the whole repository: {err}");
    let (ok, _, err) = srbackup(&c.path, &["verify", "r", "snapp1"]);
    assert!(!ok && flat(&err).contains("did you mean snap1"), "{err}");
    // replication_num reaches the restored table's partitions.
    sql(
        &c,
        "RESTORE SNAPSHOT snap1 FROM r DATABASE sr_hub AS replica ON (TABLE sr_region) \
         PROPERTIES (\"replication_num\" = \"3\")",
    );
    let out = sql(&c, "SHOW PARTITIONS FROM replica.sr_region");
    assert_eq!(cell(&out, 0, "ReplicationNum"), "3", "{out}");
    let out = sql(&c, "SHOW RESTORE FROM replica");
    assert_eq!(cell(&out, 0, "ReplicationNum"), "3", "{out}");
}

/// Case 8: an edited plan does not run; an untouched one does.
#[test]
fn an_edited_plan_is_refused_and_an_untouched_one_runs() {
    let c = cluster();
    let plan_file = c.path.parent().unwrap().join("backup.json");
    plan_to(&c, "BACKUP DATABASE sr_hub SNAPSHOT p TO r", &plan_file);
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let apply = |plan: &serde_json::Value| {
        let path = c.path.parent().unwrap().join("edited.json");
        std::fs::write(&path, serde_json::to_string_pretty(plan).unwrap()).unwrap();
        srbackup(&c.path, &["apply", path.to_str().unwrap()])
    };
    // One upload task removed (and the release no longer waiting for it).
    let mut edited = original.clone();
    let tasks = edited["tasks"].as_array_mut().unwrap();
    let i = tasks.iter().position(|t| t["action"] == "upload").unwrap();
    let gone = tasks.remove(i)["id"].as_str().unwrap().to_string();
    for t in tasks.iter_mut() {
        if let Some(after) = t.get_mut("after").and_then(|a| a.as_array_mut()) {
            after.retain(|a| a.as_str() != Some(&gone));
        }
    }
    let (ok, out, err) = apply(&edited);
    // Its object's and summary's counts no longer match its lines: refused when read.
    assert!(
        !ok && err.contains("damaged") && err.contains("but its tasks list"),
        "{out}\n{err}"
    );
    // The same with the counts edited to match: not the plan of its statement.
    let lines = |p: &serde_json::Value| -> (u64, u64) {
        p["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["files"].as_array())
            .flatten()
            .fold((0, 0), |(n, b), f| (n + 1, b + f[3].as_u64().unwrap()))
    };
    let count = |p: &serde_json::Value, object: &str| -> (u64, u64) {
        p["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["object"] == object)
            .filter_map(|t| t["files"].as_array())
            .flatten()
            .fold((0, 0), |(n, b), f| (n + 1, b + f[3].as_u64().unwrap()))
    };
    let recount = |p: &mut serde_json::Value| {
        let (n, b) = lines(p);
        p["summary"]["files"] = n.into();
        p["summary"]["size"]["bytes"] = b.into();
        let names: Vec<String> = p["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect();
        for (i, name) in names.iter().enumerate() {
            let (n, b) = count(p, name);
            p["objects"][i]["files"] = n.into();
            p["objects"][i]["size"]["bytes"] = b.into();
        }
    };
    recount(&mut edited);
    let (ok, out, err) = apply(&edited);
    assert!(
        !ok && err.contains("not the plan of its statement"),
        "{out}\n{err}"
    );
    // An extra upload group (of real rowsets).
    let mut edited = original.clone();
    let tasks = edited["tasks"].as_array_mut().unwrap();
    let mut extra = tasks
        .iter()
        .find(|t| t["action"] == "upload")
        .unwrap()
        .clone();
    extra["id"] = "upload:extra".into();
    tasks.push(extra.clone());
    recount(&mut edited);
    let (ok, out, err) = apply(&edited);
    assert!(
        !ok && err.contains("not the plan of its statement"),
        "{out}\n{err}"
    );
    // A file path slipped into a group (plans name rowsets, never paths): refused as damaged.
    let stolen = c.path.join("srbackup-stolen.txt");
    std::fs::write(&stolen, b"not a rowset").unwrap();
    let mut edited = original.clone();
    let tasks = edited["tasks"].as_array_mut().unwrap();
    let group = tasks.iter_mut().find(|t| t["action"] == "upload").unwrap();
    group["path"] = "srbackup-stolen.txt".into();
    let (ok, out, err) = apply(&edited);
    assert!(!ok && err.contains("unknown field `path`"), "{out}\n{err}");
    // A file of one group moved to another rowset id: not the plan of its statement.
    let mut edited = original.clone();
    let tasks = edited["tasks"].as_array_mut().unwrap();
    let group = tasks.iter_mut().find(|t| t["action"] == "upload").unwrap();
    group["files"][0][1] = 999_999.into();
    let (ok, out, err) = apply(&edited);
    assert!(
        !ok && err.contains("not the plan of its statement"),
        "{out}\n{err}"
    );
    // Untouched: it runs.
    let (ok, out, err) = apply(&original);
    assert!(ok && out.contains("FINISHED"), "{out}\n{err}");

    // A restore plan retargeted at the live database.
    plan_to(
        &c,
        "RESTORE SNAPSHOT p FROM r DATABASE sr_hub AS chk2 ON (TABLE sr_region)",
        &plan_file,
    );
    let text = std::fs::read_to_string(&plan_file)
        .unwrap()
        .replace("chk2", "sr_hub");
    let mut edited: serde_json::Value = serde_json::from_str(&text).unwrap();
    edited["statement"] = original["statement"].clone();
    let before = checksum(&c, "sr_hub.sr_region");
    let (ok, out, err) = apply(&edited);
    assert!(!ok, "{out}\n{err}");
    assert_eq!(checksum(&c, "sr_hub.sr_region"), before);
}

/// Case 9: two restores of one label on one database do not both run; of two `resume`s, one
/// runs the job.
#[test]
fn a_job_runs_once_however_often_it_is_started() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT same TO r");
    sql(
        &c,
        "INSERT INTO sr_hub.sr_pmc VALUES (7002, 1, 'later', '2024-01-01')",
    );
    let later = checksum(&c, "sr_hub.sr_pmc");
    throttle(&c, 8);
    let mut first = spawn(&c, &["sql", "RESTORE SNAPSHOT same FROM r DATABASE sr_hub"]);
    let job = wait_for_progress(&c, "restore", 3);
    let err = refused(&c, "RESTORE SNAPSHOT same FROM r DATABASE sr_hub");
    assert!(
        err.contains("Can only run one backup or restore job of a database at same time")
            && err.contains(&format!("RESTORE job {} (same)", job.id)),
        "{err}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(checksum(&c, "sr_hub.sr_pmc"), later);
    // Two resumes at once: one runs it, the other says so.
    let a = spawn(&c, &["resume", &job.id.to_string()]);
    let b = spawn(&c, &["resume", &job.id.to_string()]);
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    throttle(&c, 0);
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let finished = [&a, &b]
        .iter()
        .filter(|o| o.status.success() && text(o).contains("FINISHED"))
        .count();
    let turned_away = [&a, &b]
        .iter()
        .filter(|o| {
            !o.status.success()
                && (text(o).contains("is running in process") || text(o).contains("already ended"))
        })
        .count();
    assert_eq!(
        (finished, turned_away),
        (1, 1),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    let job = Catalog::open(&c.path.join("catalog.db"))
        .unwrap()
        .view()
        .job(job.id)
        .unwrap()
        .unwrap();
    assert_eq!(job.state, catalog::JobState::Finished);
    assert_ne!(checksum(&c, "sr_hub.sr_pmc"), later);
}

/// Case 10: a damaged object in the repository is not reused by later backups, stored as is
/// or compressed.
#[test]
fn a_damaged_object_is_stored_again_not_reused() {
    for compression in ["none", "zstd"] {
        let c = cluster();
        let props = format!("PROPERTIES (\"compression\" = \"{compression}\")");
        sql(
            &c,
            &format!("BACKUP DATABASE sr_hub SNAPSHOT s1 TO r {props}"),
        );
        let object = first_object(&c);
        let len = std::fs::metadata(&object).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&object)
            .unwrap();
        f.set_len(len / 2).unwrap();
        drop(f);
        let out = sql(
            &c,
            &format!("BACKUP DATABASE sr_hub SNAPSHOT s2 TO r {props}"),
        );
        assert!(out.contains("1 of 45 files"), "{compression}: {out}");
        assert_eq!(
            std::fs::metadata(&object).unwrap().len(),
            len,
            "{compression}"
        );
        restores_whole(&c, "s2", "sr_hub");
    }
}

/// Case 11: a backup whose repository lease is gone (a GC judged it expired and swept) stops
/// instead of writing a snapshot that names objects the GC may have deleted.
#[test]
fn a_backup_that_lost_its_lease_writes_no_snapshot() {
    let c = cluster();
    throttle(&c, 8);
    let child = spawn(&c, &["sql", "BACKUP DATABASE sr_hub SNAPSHOT leased TO r"]);
    wait_for_progress(&c, "backup", 3);
    let locks = c.repo.join("locks");
    let mut removed = 0;
    for e in std::fs::read_dir(&locks).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            std::fs::remove_file(p).unwrap();
            removed += 1;
        }
    }
    assert_eq!(removed, 1);
    throttle(&c, 0);
    let out = child.wait_with_output().unwrap();
    let err = flat(&String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && err.contains("was lost"), "{err}");
    assert!(!c.repo.join("snapshots/leased").exists());
    let out = sql(&c, "SHOW SNAPSHOT ON r");
    assert!(!out.contains("leased"), "{out}");
}

/// A small filesystem mounted for a test, unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    /// A tmpfs of `kib` KiB at `path`, or `None` where this machine does not let tests mount.
    fn mount(path: &std::path::Path, kib: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk {
            path: path.to_path_buf(),
        })
    }

    /// Fills it up, leaving nothing free.
    fn fill(&self) {
        self.fill_leaving(0);
    }

    /// Fills it up but for `bytes`.
    fn fill_leaving(&self, bytes: u64) {
        let path = self.path.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![7u8; 4096];
        while std::io::Write::write_all(&mut f, &block).is_ok() {}
        drop(f);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len.saturating_sub(bytes)).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

/// Case 12: a full repository disk names itself, leaves no staging file, and DROP SNAPSHOT
/// still frees space; a full cluster disk during a restore leaves the data and no orphans.
#[test]
fn a_full_disk_is_named_and_cleaned_up_and_gc_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("repo"), 1024) else {
        eprintln!("skipped: this machine does not let tests mount a tmpfs");
        return;
    };
    let c = cluster();
    let repo = disk.path.join("r");
    sql(
        &c,
        &format!(
            "CREATE REPOSITORY full_repo WITH BROKER ON LOCATION \"{}\"",
            repo.display()
        ),
    );
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT first TO full_repo");
    sql(
        &c,
        "INSERT INTO sr_hub.sr_pmc VALUES (7003, 1, 'more', '2024-01-01')",
    );
    disk.fill();
    let err = refused(&c, "BACKUP DATABASE sr_hub SNAPSHOT second TO full_repo");
    assert!(err.contains("is full"), "{err}");
    assert!(
        err.contains(repo.to_str().unwrap()),
        "names the repository: {err}"
    );
    let staging = walk(&repo)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(staging, 0, "a staging file was left behind");
    // The database is free again and GC runs on the full disk.
    let out = sql(&c, "DROP SNAPSHOT first ON full_repo FORCE");
    assert!(!out.contains("skipped"), "{out}");
    let objects = walk(&repo.join("objects"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("/."))
        .count();
    assert_eq!(objects, 0, "the sweep freed the objects");
    std::fs::remove_file(disk.path.join("filler")).unwrap();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT third TO full_repo");

    // The cluster's disk fills during a restore: the data stays, the files it wrote go.
    let cdir = tempfile::tempdir().unwrap();
    let Some(cdisk) = SmallDisk::mount(&cdir.path().join("c"), 16 * 1024) else {
        return;
    };
    let small = cdisk.path.join("cluster");
    let run = |statement: &str| {
        let (ok, out, err) = srbackup(&small, &["sql", statement]);
        assert!(ok, "{statement}\n{out}\n{err}");
        out
    };
    run("CREATE DATABASE big");
    run(
        "CREATE TABLE big.t (k BIGINT NOT NULL, v VARCHAR(200)) DUPLICATE KEY (k) \
         DISTRIBUTED BY HASH (k) BUCKETS 4",
    );
    // Random digits: a few MiB that compression cannot shrink much.
    run(
        "INSERT INTO big.t SELECT value, concat(CAST(random() AS VARCHAR), CAST(random() AS VARCHAR), \
         CAST(random() AS VARCHAR), CAST(random() AS VARCHAR)) FROM generate_series(1, 60000)",
    );
    run(&format!(
        "CREATE REPOSITORY elsewhere WITH BROKER ON LOCATION \"{}\"",
        dir.path().join("elsewhere").display()
    ));
    run("BACKUP DATABASE big SNAPSHOT b TO elsewhere");
    let before = run("CHECKSUM TABLE big.t");
    // Room to accept and start the job, not for what it downloads.
    cdisk.fill_leaving(1024 * 1024);
    let (ok, out, err) = srbackup(
        &small,
        &[
            "sql",
            "RESTORE SNAPSHOT b FROM elsewhere DATABASE big AS copy",
        ],
    );
    assert!(!ok, "{out}");
    let err = flat(&err);
    assert!(
        err.contains("No space left") || err.contains("is full"),
        "{err}"
    );
    assert!(!err.contains("4 of 4 files"), "{err}");
    std::fs::remove_file(cdisk.path.join("filler")).unwrap();
    // Whatever the full disk left half done, a CANCEL ends it; then no file is left over.
    let _ = srbackup(&small, &["sql", "CANCEL RESTORE FROM copy"]);
    let referenced: std::collections::HashSet<String> = Catalog::open(&small.join("catalog.db"))
        .unwrap()
        .view()
        .referenced_paths()
        .unwrap()
        .into_iter()
        .collect();
    let orphans: Vec<_> = walk(&small.join("data"))
        .into_iter()
        .map(|p| {
            p.strip_prefix(&small)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|p| !referenced.contains(p))
        .collect();
    assert!(orphans.is_empty(), "orphan files were left: {orphans:?}");
    assert_eq!(run("CHECKSUM TABLE big.t"), before);
    assert!(!run("SHOW DATABASES").contains("copy"));
    run("RESTORE SNAPSHOT b FROM elsewhere DATABASE big AS copy");
}

/// Job options are read as StarRocks reads them, spaces around a value included: `" 3600"` is
/// a timeout of 3600 (SHOW BACKUP says so) and `"none "` stores objects as they are.
#[test]
fn job_options_with_spaces_mean_what_they_say() {
    let c = cluster();
    sql(
        &c,
        "BACKUP DATABASE sr_hub SNAPSHOT spaced TO r PROPERTIES (\"timeout\" = \" 3600\", \"compression\" = \"none \")",
    );
    let out = sql(&c, "SHOW BACKUP FROM sr_hub");
    assert_eq!(cell(&out, 0, "Timeout"), "3600", "{out}");
    let objects = walk(&c.repo.join("objects"));
    assert!(!objects.is_empty());
    assert!(
        objects
            .iter()
            .all(|p| p.extension().is_none_or(|e| e != "zst")),
        "{objects:?}"
    );
}

/// Files under the cluster's data directory that no rowset names.
fn orphans(cluster: &std::path::Path) -> Vec<String> {
    let referenced: std::collections::HashSet<String> = Catalog::open(&cluster.join("catalog.db"))
        .unwrap()
        .view()
        .referenced_paths()
        .unwrap()
        .into_iter()
        .collect();
    walk(&cluster.join("data"))
        .into_iter()
        .map(|p| {
            p.strip_prefix(cluster)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|p| !referenced.contains(p))
        .collect()
}

/// Case 10, found again: an object damaged in place (its size kept) is not reused either.
/// Its modification time is later than every snapshot naming it, so the next backup reads it
/// back, finds it damaged and stores it again.
#[test]
fn an_object_damaged_in_place_is_not_reused() {
    for compression in ["none", "zstd"] {
        let c = cluster();
        let props = format!("PROPERTIES (\"compression\" = \"{compression}\")");
        sql(
            &c,
            &format!("BACKUP DATABASE sr_hub SNAPSHOT s1 TO r {props}"),
        );
        // Unchanged objects are reused without being sent again.
        let out = sql(
            &c,
            &format!("BACKUP DATABASE sr_hub SNAPSHOT s2 TO r {props}"),
        );
        assert!(out.contains("0 of 45 files"), "{compression}: {out}");
        let object = first_object(&c);
        let mut bytes = std::fs::read(&object).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&object, &bytes).unwrap();
        let out = sql(
            &c,
            &format!("BACKUP DATABASE sr_hub SNAPSHOT s3 TO r {props}"),
        );
        assert!(out.contains("1 of 45 files"), "{compression}: {out}");
        restores_whole(&c, "s3", "sr_hub");
    }
}

/// A job whose output nobody reads any more (`| head -1`, a closed terminal) goes on to the
/// end instead of dying half-way on a broken pipe, and a query stops cleanly.
#[test]
fn a_closed_output_pipe_does_not_kill_a_job() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT s TO r");
    for args in [
        vec!["sql", "RESTORE SNAPSHOT s FROM r DATABASE sr_hub AS piped"],
        vec!["sql", "SELECT * FROM sr_hub.sr_member"],
        vec!["sql", "--format", "json", "SELECT * FROM sr_hub.sr_member"],
    ] {
        let mut child = spawn(&c, &args);
        // Both ends closed before the command writes anything.
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert!(status.success(), "{args:?}: {status}");
    }
    let job = latest_job(&c, "restore").unwrap();
    assert_eq!(job.state, catalog::JobState::Finished);
    assert_eq!(all_checksums(&c, "piped"), all_checksums(&c, "sr_hub"));
}

/// A restore that fails on damaged objects, with several downloads in flight, leaves no
/// downloaded file behind: transfers still running are waited for, and one that lands after
/// its job stopped removes its own file.
#[test]
fn a_failed_restore_leaves_no_files_behind() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT s TO r");
    std::fs::write(c.path.join("srbackup.conf"), "download_worker_count = 4\n").unwrap();
    // Damage a few objects: the first damaged download to finish stops the job.
    let mut objects: Vec<_> = walk(&c.repo.join("objects"))
        .into_iter()
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    objects.sort();
    for object in objects.iter().step_by(9) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(object)
            .unwrap();
        f.set_len(1).unwrap();
    }
    let err = refused(&c, "RESTORE SNAPSHOT s FROM r DATABASE sr_hub AS broken");
    assert!(
        err.contains("CANCELLED") && err.contains("corrupt"),
        "{err}"
    );
    assert_eq!(orphans(&c.path), Vec::<String>::new());
    assert!(!sql(&c, "SHOW DATABASES").contains("broken"));
}

/// Case 5, found again: ALTER MATERIALIZED VIEW ... ACTIVE checks that the view's query still
/// yields the columns it stores, not only that its base tables exist; and dropping a base
/// table makes the views reading it inactive, as StarRocks does.
#[test]
fn an_mv_is_active_only_while_its_query_fits() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT everything TO r");
    sql(
        &c,
        "RESTORE SNAPSHOT everything FROM r DATABASE sr_hub AS mvx ON (MATERIALIZED VIEW sr_mv1)",
    );
    sql(
        &c,
        "CREATE TABLE mvx.sr_member (a INT) DUPLICATE KEY (a) DISTRIBUTED BY HASH (a) BUCKETS 1",
    );
    let err = refused(&c, "ALTER MATERIALIZED VIEW mvx.sr_mv1 ACTIVE");
    assert!(err.contains("cannot activate mvx.sr_mv1"), "{err}");
    let out = sql(&c, "SHOW MATERIALIZED VIEWS FROM mvx");
    assert_eq!(cell(&out, 0, "is_active"), "false", "{out}");

    let out = sql(&c, "SHOW MATERIALIZED VIEWS FROM sr_hub");
    let (header, rows) = table(&out);
    let name = header.iter().position(|h| h == "name").unwrap();
    let mv2 = rows.iter().position(|r| r[name] == "sr_mv2").unwrap();
    assert_eq!(cell(&out, mv2, "is_active"), "true", "{out}");
    sql(&c, "DROP TABLE sr_hub.sr_pmc");
    let out = sql(&c, "SHOW MATERIALIZED VIEWS FROM sr_hub");
    assert_eq!(cell(&out, mv2, "is_active"), "false", "{out}");
    assert!(
        cell(&out, mv2, "inactive_reason").contains("sr_hub.sr_pmc"),
        "{out}"
    );
    // The table back (restored): the view is active again.
    sql(
        &c,
        "RESTORE SNAPSHOT everything FROM r DATABASE sr_hub ON (TABLE sr_pmc)",
    );
    let out = sql(&c, "SHOW MATERIALIZED VIEWS FROM sr_hub");
    assert_eq!(cell(&out, mv2, "is_active"), "true", "{out}");
}

/// An unfinished job's repository cannot be dropped from under it, and what a restore will
/// create (a function) cannot be created meanwhile only to be replaced silently.
#[test]
fn what_an_unfinished_restore_needs_stays_put() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT s TO r");
    sql(&c, "CREATE DATABASE fresh");
    killed_midway(
        &c,
        "restore",
        "RESTORE SNAPSHOT s FROM r DATABASE sr_hub AS fresh",
        4,
    );
    let err = refused(&c, "DROP REPOSITORY r");
    assert!(
        err.contains("repository r is used by RESTORE job")
            && err.contains("CANCEL RESTORE FROM fresh"),
        "{err}"
    );
    let err = refused(
        &c,
        "CREATE FUNCTION fresh.sr_udf1(INT) RETURNS INT PROPERTIES (\"symbol\" = \"x\", \"type\" = \"StarrocksJar\", \"file\" = \"http://127.0.0.1/x.jar\")",
    );
    assert!(
        err.contains("function fresh.sr_udf1 is being restored"),
        "{err}"
    );
    sql(&c, "CANCEL RESTORE FROM fresh");
    sql(&c, "DROP REPOSITORY r");
}

/// A backup killed half-way leaves a lease that names its dead process: a GC on the same
/// machine does not wait for it to expire. The resumed backup then finds the objects that GC
/// deleted and sends them again, so its snapshot is whole.
#[test]
fn a_dead_process_lease_does_not_block_gc_and_resume_resends_what_gc_took() {
    let c = cluster();
    // Another database's snapshot, to drop (and so sweep the repository) later.
    sql(&c, "CREATE DATABASE other");
    sql(
        &c,
        "CREATE TABLE other.t (a INT) DUPLICATE KEY (a) DISTRIBUTED BY HASH (a) BUCKETS 1",
    );
    sql(&c, "INSERT INTO other.t VALUES (1)");
    sql(&c, "BACKUP DATABASE other SNAPSHOT old TO r");
    let job = killed_midway(&c, "backup", "BACKUP DATABASE sr_hub SNAPSHOT new TO r", 6);
    // The killed backup's objects are named by no snapshot: the sweep takes them.
    let out = sql(&c, "DROP SNAPSHOT old ON r");
    assert!(!out.contains("holds it"), "{out}");
    assert!(!out.contains("deleted 0 "), "{out}");
    let (ok, out, err) = srbackup(&c.path, &["resume", &job.id.to_string()]);
    assert!(ok, "{out}\n{err}");
    assert!(
        err.contains("sent again") || out.contains("sent again"),
        "{out}\n{err}"
    );
    restores_whole(&c, "new", "sr_hub");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
