//! Restore drills (`srbackup drill`) and the JSON every command prints with `--format json`
//! (shapes documented in docs/json-output.md, snapshotted here with the values that change
//! from run to run redacted).

mod common;

use common::cli::{cluster, sql, srbackup};
use serde_json::Value;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{out}"))
}

/// Hand-edits object `name` of the (only) manifest of `label`.
fn edit_object(c: &common::cli::Cluster, label: &str, name: &str, edit: impl FnOnce(&mut Value)) {
    let dir = c.repo.join("snapshots").join(label);
    let manifest = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut m: Value = json(&std::fs::read_to_string(&manifest).unwrap());
    let object = m["objects"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["name"] == name)
        .unwrap();
    edit(object);
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
}

fn backup(c: &common::cli::Cluster, label: &str) {
    sql(c, &format!("BACKUP DATABASE sr_hub SNAPSHOT {label} TO r"));
}

#[test]
fn a_drill_restores_the_newest_snapshot_and_matches_every_recorded_checksum() {
    let c = cluster();
    backup(&c, "nightly");
    let report = c.repo.parent().unwrap().join("drill.json");
    let (ok, out, err) = srbackup(
        &c.path,
        &[
            "--format",
            "json",
            "drill",
            "r",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}\n{err}");
    let v = json(&out);
    assert_eq!(v, json(&std::fs::read_to_string(&report).unwrap()));
    assert_eq!(v["ok"], true);
    let tables = v["tables"].as_array().unwrap();
    assert!(tables.len() >= 4, "{v:#}");
    for t in tables {
        assert_eq!(t["ok"], true, "{t}");
        assert_eq!(t["checksum"], t["expected_checksum"], "{t}");
        assert!(t["rows"].as_u64().unwrap() > 0, "{t}");
    }
    assert_eq!(v["views"].as_array().unwrap().len(), 2, "{v:#}");
    // The scratch database is gone afterwards.
    let dbs = sql(&c, "SHOW DATABASES");
    assert!(!dbs.contains("srbackup_drill"), "{dbs}");
    insta::assert_json_snapshot!("drill_report", v, {
        ".timestamp" => "[timestamp]",
        ".started_at" => "[time]",
        ".scratch_database" => "[scratch]",
        ".restore_seconds" => "[seconds]",
        ".check_seconds" => "[seconds]",
        ".rto_seconds" => "[seconds]",
        ".restore_job_id" => "[job]",
        ".bytes" => "[bytes]",
    });

    // The human summary says the same.
    let (ok, out, err) = srbackup(&c.path, &["drill", "r", "nightly", "--keep"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.starts_with("drill PASSED of nightly/"), "{out}");
    assert!(out.contains("(scratch database kept)"), "{out}");
    assert!(sql(&c, "SHOW DATABASES").contains("srbackup_drill_nightly"));
}

#[test]
fn a_drill_fails_when_the_restored_rows_differ_from_what_the_backup_recorded() {
    let c = cluster();
    backup(&c, "nightly");
    // Hand-edit the manifest's recorded checksum of one table (an attacker, or a bug that
    // restores other rows, looks the same to the drill).
    edit_object(&c, "nightly", "sr_member", |table| {
        let sum = table["checksum"]["sum"].as_u64().unwrap();
        table["checksum"]["sum"] = Value::from(sum ^ 1);
    });

    let (ok, out, err) = srbackup(&c.path, &["--format", "json", "drill", "r"]);
    assert!(!ok, "a drill over a wrong checksum passed:\n{out}\n{err}");
    let v = json(&out);
    assert_eq!(v["ok"], false);
    let bad: Vec<&str> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["ok"] == false)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(bad, ["sr_member"]);
    let (ok, out, _) = srbackup(&c.path, &["drill", "r"]);
    assert!(!ok);
    assert!(
        out.contains("drill FAILED") && out.contains("table sr_member"),
        "{out}"
    );
}

#[test]
fn a_drill_of_an_empty_repository_is_a_clear_error() {
    let c = cluster();
    let (ok, out, err) = srbackup(&c.path, &["--format", "json", "drill", "r"]);
    assert!(!ok);
    assert!(err.is_empty() || !err.contains("panicked"), "{err}");
    let v = json(&out);
    assert_eq!(
        v["error"]["message"],
        "repository r has no readable snapshot"
    );
}

#[test]
fn errors_are_json_on_stdout_with_their_code_and_position() {
    let c = cluster();
    let (ok, out, err) = srbackup(
        &c.path,
        &[
            "--format",
            "json",
            "sql",
            "BACKUP DATABASE sr_hub SNAPSHOT TO r",
        ],
    );
    assert!(!ok);
    assert!(!err.contains("×"), "the error went to stderr too: {err}");
    // `sql` prints an array of results; the error that stopped the script is its last element.
    let v = json(&out);
    insta::assert_json_snapshot!("error_syntax", v[0]["error"]);
    let (ok, out, _) = srbackup(&c.path, &["--format", "json", "verify", "nope", "s"]);
    assert!(!ok);
    let v = json(&out);
    assert_eq!(v["error"]["code"], "srbackup::repo::unknown");
}

#[test]
fn plan_apply_verify_and_forget_print_json() {
    let c = cluster();
    let plan = c.repo.parent().unwrap().join("plan.json");
    let (ok, out, err) = srbackup(
        &c.path,
        &[
            "--format",
            "json",
            "plan",
            "-o",
            plan.to_str().unwrap(),
            "BACKUP DATABASE sr_hub SNAPSHOT weekly TO r ON (TABLE sr_member)",
        ],
    );
    assert!(ok, "{err}");
    insta::assert_json_snapshot!("plan_summary", json(&out), {
        ".plan_file" => "[path]",
        ".fingerprint" => "[fingerprint]",
        ".bytes" => "[bytes]",
    });

    // `explain` of the saved plan: the same summary.
    let (ok, explained, err) = srbackup(
        &c.path,
        &["explain", plan.to_str().unwrap(), "--format", "json"],
    );
    assert!(ok, "{err}");
    assert_eq!(json(&explained), json(&out));

    let (ok, out, err) = srbackup(
        &c.path,
        &["--format", "json", "apply", plan.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let job = json(&out);
    insta::assert_json_snapshot!("apply_job", job, {
        ".timestamp" => "[timestamp]",
        ".duration_seconds" => "[seconds]",
        ".bytes" => "[bytes]",
        ".bytes_sent" => "[bytes]",
    });
    let timestamp = job["timestamp"].as_str().unwrap().to_string();

    let (ok, out, err) = srbackup(
        &c.path,
        &["--format", "json", "verify", "r", "weekly", &timestamp],
    );
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["damaged"], Value::Array(vec![]));
    assert_eq!(v["files"], job["files"]);

    backup(&c, "weekly");
    let (ok, out, err) = srbackup(
        &c.path,
        &[
            "--format",
            "json",
            "forget",
            "r",
            "--keep-last",
            "1",
            "--dry-run",
        ],
    );
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["gc"], Value::Null);
    let decisions = v["groups"][0]["snapshots"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["keep"], true);
    assert_eq!(decisions[0]["reasons"][0], "last snapshot");
    assert_eq!(decisions[1]["keep"], false);
    insta::assert_json_snapshot!("forget_dry_run", v, {
        ".groups[].snapshots[].timestamp" => "[timestamp]",
    });
}

#[test]
fn a_view_that_reads_its_database_by_name_is_not_taken_for_proof() {
    let c = cluster();
    sql(
        &c,
        "CREATE DATABASE vq; CREATE TABLE vq.t (a INT) DISTRIBUTED BY HASH(a) BUCKETS 1;
         INSERT INTO vq.t VALUES (1),(2),(3);
         CREATE VIEW vq.qualified AS SELECT * FROM vq.t;
         CREATE VIEW vq.plain AS SELECT * FROM t;
         CREATE VIEW vq.nested AS SELECT * FROM qualified",
    );
    sql(&c, "BACKUP DATABASE vq SNAPSHOT vq TO r");
    // The live table moves on after the backup.
    sql(&c, "INSERT INTO vq.t VALUES (4),(5)");
    let (ok, out, err) = srbackup(&c.path, &["--format", "json", "drill", "r", "vq"]);
    assert!(ok, "{out}\n{err}");
    let v = json(&out);
    let view = |name: &str| {
        v["views"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap()
            .clone()
    };
    // The unqualified view reads the restored rows (3), not the live ones (5).
    assert_eq!(view("plain")["rows"], 3);
    assert_eq!(view("plain")["checked"], true);
    for name in ["qualified", "nested"] {
        assert_eq!(view(name)["checked"], false, "{}", view(name));
        assert_eq!(view(name)["reads_outside"][0], "vq.t");
    }
    // With the source gone (the disaster case) the same backup still drills clean.
    sql(&c, "DROP DATABASE vq FORCE");
    let (ok, out, err) = srbackup(&c.path, &["drill", "r", "vq"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("view qualified not run"), "{out}");
}

#[test]
fn a_checksum_missing_among_recorded_ones_fails_the_drill_and_reports_open_early() {
    let c = cluster();
    backup(&c, "nightly");
    // --report to a directory fails before the drill runs (nothing restored).
    let (ok, out, err) = srbackup(&c.path, &["drill", "r", "--report", "/"]);
    assert!(!ok, "{out}");
    assert!(
        flat_err(&err).contains("cannot write the report to /"),
        "{err}"
    );
    assert!(!sql(&c, "SHOW RESTORE").contains("FINISHED"));

    edit_object(&c, "nightly", "sr_pmc", |table| {
        table.as_object_mut().unwrap().remove("checksum");
    });
    let (ok, out, _) = srbackup(&c.path, &["--format", "json", "drill", "r"]);
    assert!(!ok, "{out}");
    let v = json(&out);
    let bad: Vec<&str> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["ok"] == false)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(bad, ["sr_pmc"]);
}

fn flat_err(text: &str) -> String {
    common::cli::flat(text)
}

#[test]
fn usage_errors_and_early_sql_errors_are_json_when_json_is_asked_for() {
    let c = cluster();
    let (ok, out, _) = srbackup(&c.path, &["--format", "json", "drill"]);
    assert!(!ok);
    assert_eq!(json(&out)["error"]["code"], "srbackup::usage");
    let (ok, out, _) = srbackup(
        &c.path,
        &["--format", "json", "sql", "-f", "/nonexistent.sql"],
    );
    assert!(!ok);
    let v = json(&out);
    assert!(
        v[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent.sql")
    );
    assert!(
        v[0]["error"]["causes"][0]
            .as_str()
            .unwrap()
            .contains("No such file"),
        "{v}"
    );
}
