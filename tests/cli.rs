//! The `srbackup` binary as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};

fn srbackup(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_srbackup"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("srbackup runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn parse_prints_every_seed_statement_as_json() {
    let (code, stdout, stderr) = srbackup(&["parse", "-f", "fixtures/seed-statements.sql"], None);
    assert_eq!(code, 0, "{stderr}");
    let trees: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let trees = trees.as_array().unwrap();
    assert_eq!(trees.len(), 55);
    assert_eq!(trees[7]["statement"], "backup");
    assert_eq!(trees[7]["syntax"], "legacy");
    for secret in ["yyyyyyyyyyyyyyyyy", "XXXXXXXXXXXXXXXXX", "<hdfs_password>"] {
        assert!(
            !stdout.contains(secret),
            "a secret reached the output: {secret}"
        );
    }
}

#[test]
fn parse_reads_an_argument_or_stdin_and_prints_yaml() {
    let (code, stdout, _) = srbackup(
        &["parse", "SHOW SNAPSHOT ON test_repo", "--format", "yaml"],
        None,
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("statement: show_snapshot"), "{stdout}");
    let (code, stdout, _) = srbackup(&["parse", "-"], Some("CANCEL BACKUP FROM sr_hub;"));
    assert_eq!(code, 0);
    assert!(stdout.contains("\"cancel_backup\""), "{stdout}");
}

#[test]
fn a_malformed_statement_exits_non_zero_with_a_diagnostic_on_stderr() {
    let (code, stdout, stderr) = srbackup(
        &[
            "parse",
            "BACKUP DATABASE sr_hub SNAPSHOT s TO test_repo ON (TABEL sr_member)",
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(stdout.is_empty());
    assert!(stderr.contains("did you mean TABLE"), "{stderr}");
    assert!(stderr.contains("srbackup::syntax"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (code, _, stderr) = srbackup(&["parse", "-f", "no/such/file.sql"], None);
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot read no/such/file.sql"), "{stderr}");
}

#[test]
fn sql_builds_the_fixture_and_answers_queries_in_table_and_json_form() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let cluster = cluster.to_str().unwrap();
    let (code, stdout, stderr) = srbackup(
        &["--cluster", cluster, "sql", "-f", "fixtures/sr_hub.sql"],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Query OK, 3000 rows affected"), "{stdout}");
    let (code, stdout, _) = srbackup(
        &[
            "--cluster",
            cluster,
            "sql",
            "SELECT count(*) AS n FROM sr_hub.sr_member",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(
        stdout.contains("| n    |") && stdout.contains("| 3000 |"),
        "{stdout}"
    );
    let (code, stdout, _) = srbackup(
        &["--cluster", cluster, "sql", "-", "--format", "json"],
        Some("SHOW CATALOGS;"),
    );
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = json[0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        !stdout.contains("fixture-secret-not-real"),
        "SHOW CATALOGS leaked a secret: {stdout}"
    );
    // The cluster can also come from SRBACKUP_CLUSTER.
    let out = Command::new(env!("CARGO_BIN_EXE_srbackup"))
        .args(["sql", "SHOW DATABASES"])
        .env("SRBACKUP_CLUSTER", cluster)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("sr_hub"));
}

#[test]
fn a_failing_statement_stops_the_script_with_a_pointed_error() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let (code, stdout, stderr) = srbackup(
        &[
            "--cluster",
            cluster.to_str().unwrap(),
            "sql",
            "CREATE DATABASE d;\nCREATE TABLE d.t (a INTT);\nCREATE DATABASE e",
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(
        stdout.contains("Query OK"),
        "the first statement ran: {stdout}"
    );
    assert!(
        stderr.contains("unknown type INTT") && stderr.contains("2:"),
        "{stderr}"
    );
    let (_, stdout, _) = srbackup(
        &[
            "--cluster",
            cluster.to_str().unwrap(),
            "sql",
            "SHOW DATABASES",
        ],
        None,
    );
    assert!(
        !stdout.contains("| e "),
        "nothing after the failure ran: {stdout}"
    );
}

#[test]
fn large_query_results_stream_to_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let (code, stdout, stderr) = srbackup(
        &[
            "--cluster",
            cluster.to_str().unwrap(),
            "sql",
            "SELECT value FROM generate_series(1, 50000)",
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.ends_with("50000 rows in set\n"),
        "{}",
        &stdout[stdout.len().saturating_sub(200)..]
    );
    // Header, three rules and the count around one line per row.
    assert_eq!(stdout.lines().count(), 50000 + 5);
    let (_, json, _) = srbackup(
        &[
            "--cluster",
            cluster.to_str().unwrap(),
            "sql",
            "SELECT value FROM generate_series(1, 20000)",
            "--format",
            "json",
        ],
        None,
    );
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[0]["rows"].as_array().unwrap().len(), 20000);
}
