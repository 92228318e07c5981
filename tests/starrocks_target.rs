//! The StarRocks target (#19) against the only StarRocks FE on this machine: `srbackup serve`
//! on 127.0.0.1 over the sr_hub fixture. srbackup plans BACKUP and RESTORE into the FE's own
//! jobs, runs them with `apply` (and `resume`), and the data restored equals the source
//! (CHECKSUM TABLE through the FE). The server's fault switches (feature `faults`) make chosen
//! native jobs fail, as a StarRocks job whose backends failed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{BIN, Cluster, cluster};
use common::server::{ROOT_PW, Server, mariadb_ok, table_of};
use serde_json::Value;

const SEED: &str = include_str!("../fixtures/seed-statements.sql");

struct Target {
    c: Cluster,
    server: Server,
    state: PathBuf,
    url: String,
}

fn target_with_root(env: &[(&str, &str)]) -> Target {
    target_with_conf(env, "")
}

/// A server over the fixture whose srbackup.conf has `extra` lines too.
fn target_with_conf(env: &[(&str, &str)], extra: &str) -> Target {
    let c = cluster();
    let conf = c.path.join("srbackup.conf");
    std::fs::write(
        &conf,
        common::server::root_conf() + &common::server::allowed(&c.path) + extra,
    )
    .unwrap();
    let server = Server::start_with_env(&c.path, env);
    let state = c.path.parent().unwrap().join("state");
    let url = format!("starrocks://root@127.0.0.1:{}", server.port);
    Target {
        c,
        server,
        state,
        url,
    }
}

impl Target {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--cluster")
            .arg(&self.url)
            .arg("--state")
            .arg(&self.state)
            .args(args)
            .env("SRBACKUP_PASSWORD", ROOT_PW)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let out = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let (ok, out, err) = self.run(args, env);
        assert!(ok, "{args:?}\n{out}\n{err}\n{}", self.server.log());
        out
    }

    /// Plans `statement` (small batches, fast polls) into a file and returns its path.
    fn plan(&self, statement: &str, extra: &[&str]) -> PathBuf {
        let path = self.state.with_extension(format!(
            "plan-{}.json",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut args = vec!["plan", statement, "-o", path.to_str().unwrap()];
        for (flag, value) in [("--poll-ms", "20"), ("--retry-backoff-ms", "10")] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        self.ok(&args, &[]);
        path
    }

    /// `apply` in the background (standard output discarded).
    fn spawn_apply(&self, plan: &Path, stderr: Stdio) -> std::process::Child {
        self.command(&["apply", plan.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    fn apply(&self, plan: &Path, env: &[(&str, &str)]) -> String {
        self.ok(&["apply", plan.to_str().unwrap()], env)
    }

    fn sql(&self, sql: &str) -> String {
        mariadb_ok(self.server.port, sql)
    }

    fn checksum(&self, table: &str) -> String {
        let rows = table_of(self.server.port, &format!("CHECKSUM TABLE {table}"));
        rows.get(1)
            .and_then(|r| r.get(1))
            .cloned()
            .unwrap_or_else(|| panic!("no checksum of {table}: {rows:?}"))
    }

    fn tables(&self, db: &str) -> Vec<String> {
        table_of(self.server.port, &format!("SHOW TABLES FROM {db}"))
            .into_iter()
            .skip(1)
            .map(|r| r[0].clone())
            .collect()
    }

    /// The journal of the newest run, or nothing before the first run.
    fn journal_or_empty(&self) -> Vec<Value> {
        let has_run = std::fs::read_dir(self.state.join("runs"))
            .map(|r| r.flatten().any(|d| d.path().join("journal.jsonl").exists()))
            .unwrap_or(false);
        if has_run { self.journal() } else { Vec::new() }
    }

    /// The journal of the newest run.
    fn journal(&self) -> Vec<Value> {
        let runs = self.state.join("runs");
        let mut dirs: Vec<_> = std::fs::read_dir(&runs)
            .unwrap()
            .flatten()
            .filter(|d| d.path().is_dir())
            .map(|d| {
                let path = d.path();
                let text = std::fs::read_to_string(path.join("journal.jsonl")).unwrap_or_default();
                let first = text.lines().next().map(str::to_string);
                (d.metadata().unwrap().modified().unwrap(), path, first)
            })
            .collect();
        dirs.sort_by_key(|d| d.0);
        let dir = &dirs.last().expect("a run").1;
        std::fs::read_to_string(dir.join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn events<'a>(journal: &'a [Value], event: &str) -> Vec<&'a Value> {
    journal.iter().filter(|e| e["event"] == event).collect()
}

fn seed_time(label: &str) -> &'static str {
    if label == "sr_hub_backup" {
        "2024-12-09-10-25-58-842"
    } else {
        "2024-12-09-10-52-10-940"
    }
}

const DATA_TABLES: &[&str] = &["sr_member", "sr_pmc", "sr_event", "sr_region", "sr_mv1"];

#[test]
fn every_seed_backup_and_restore_runs_as_native_jobs_and_restores_the_source() {
    let t = target_with_root(&[]);
    t.sql(&format!(
        "CREATE REPOSITORY test_repo WITH BROKER ON LOCATION '{}'",
        t.c.path.parent().unwrap().join("test_repo").display()
    ));
    let source: Vec<(String, String)> = DATA_TABLES
        .iter()
        .map(|x| (x.to_string(), t.checksum(&format!("sr_hub.{x}"))))
        .collect();
    let statements = srbackup::sql::parse(SEED).unwrap();
    let mut labels = std::collections::BTreeSet::new();
    let (mut backups, mut restores) = (0, 0);
    for s in statements {
        let span = s.span();
        let text = &SEED[span.start..span.end];
        match &s {
            srbackup::sql::Statement::Backup(b) => {
                let label = b.snapshot.value.clone();
                if !labels.insert(label.clone()) {
                    // The same label again (the legacy form of the one before): refused as
                    // StarRocks refuses it.
                    let (ok, _, err) = t.run(&["plan", text], &[]);
                    assert!(!ok && err.contains("already exist"), "{text}\n{err}");
                    continue;
                }
                let plan = t.plan(text, &[]);
                let out = t.apply(&plan, &[("SRBACKUP_SNAPSHOT_TIME", seed_time(&label))]);
                assert!(out.contains(&format!("snapshot {label} recorded")), "{out}");
                backups += 1;
            }
            srbackup::sql::Statement::Restore(r) => {
                let plan = t.plan(text, &[]);
                t.apply(&plan, &[]);
                restores += 1;
                if r.external_catalogs.is_some() {
                    let catalogs = t.sql("SHOW CATALOGS");
                    if text.contains("iceberg_new") {
                        assert!(catalogs.contains("iceberg_new"), "{catalogs}");
                    }
                    continue;
                }
                let target_db = r
                    .database
                    .as_ref()
                    .map(|d| d.alias.as_ref().unwrap_or(&d.name).value.clone())
                    .unwrap();
                // The source is unchanged, and whatever the restore made equals it.
                let have = t.tables(&target_db);
                for (table, sum) in &source {
                    assert_eq!(&t.checksum(&format!("sr_hub.{table}")), sum, "{text}");
                    if have.contains(table) {
                        assert_eq!(
                            &t.checksum(&format!("{target_db}.{table}")),
                            sum,
                            "{text}: {target_db}.{table}"
                        );
                    }
                }
                if text.contains("sr_member_new") {
                    assert_eq!(
                        t.checksum(&format!("{target_db}.sr_member_new")),
                        source[0].1
                    );
                }
                // No temporary table is left behind.
                assert!(
                    !have.iter().any(|x| x.starts_with("srbackup_tmp_")),
                    "{text}: {have:?}"
                );
            }
            _ => {}
        }
    }
    assert!(backups >= 15 && restores >= 25, "{backups} {restores}");
}

/// sr_hub.sr_wide: 50 range partitions with rows in each.
fn wide_table(t: &Target) {
    let mut parts = Vec::new();
    for i in 0..50 {
        parts.push(format!(
            "PARTITION p{i:02} VALUES LESS THAN (\"{}\")",
            (i + 1) * 100
        ));
    }
    t.sql(&format!(
        "CREATE TABLE sr_hub.sr_wide (k INT NOT NULL, v VARCHAR(32)) DUPLICATE KEY (k) \
         PARTITION BY RANGE (k) ({}) DISTRIBUTED BY HASH (k) BUCKETS 1 \
         PROPERTIES (\"replication_num\" = \"1\")",
        parts.join(", ")
    ));
    let rows: Vec<String> = (0..5000)
        .step_by(7)
        .map(|k| format!("({k}, 'row {k}')"))
        .collect();
    t.sql(&format!(
        "INSERT INTO sr_hub.sr_wide VALUES {}",
        rows.join(", ")
    ));
}

#[test]
fn partition_batches_retry_only_the_failed_job_and_resume_after_kill() {
    // The server fails its 3rd BACKUP job.
    let t = target_with_root(&[("SRBACKUP_FAIL_NTH_BACKUP", "3")]);
    wide_table(&t);
    let plan = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT wide TO r ON (TABLE sr_wide)",
        &["--batch-bytes", "4KiB"],
    );
    let parsed: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let tasks = parsed["tasks"].as_array().unwrap();
    assert!(tasks.len() >= 4, "{} native jobs", tasks.len());
    // One database: a chain, each job after the one before.
    for w in tasks.windows(2) {
        assert_eq!(w[1]["after"][0], w[0]["id"]);
    }
    // explain and --dot work on it.
    let explained = t.ok(&["explain", plan.to_str().unwrap()], &[]);
    assert!(
        explained.contains("wide__b1") && explained.contains("PARTITION (`p00`"),
        "{explained}"
    );
    let dot = t.ok(&["explain", "--dot", plan.to_str().unwrap()], &[]);
    assert!(dot.starts_with("digraph"), "{dot}");

    t.apply(&plan, &[]);
    let journal = t.journal();
    let failed = events(&journal, "failed");
    assert_eq!(failed.len(), 1, "{journal:?}");
    assert_eq!(failed[0]["label"], "wide__b3");
    // Only that batch ran again, under a new label; every other batch was sent once.
    let submitted = events(&journal, "submitted");
    assert_eq!(submitted.len(), tasks.len() + 1);
    assert!(submitted.iter().any(|e| e["label"] == "wide__b3__r1"));
    let snapshots = t.sql("SHOW SNAPSHOT ON r");
    assert!(snapshots.contains("wide__b3__r1"), "{snapshots}");

    // The logical snapshot restores whole (its batches found through the index).
    let restore = t.plan(
        "RESTORE SNAPSHOT wide FROM r DATABASE sr_hub AS wide_copy",
        &[],
    );
    t.apply(&restore, &[]);
    assert_eq!(
        t.checksum("wide_copy.sr_wide"),
        t.checksum("sr_hub.sr_wide")
    );

    // kill -9 of srbackup mid-plan: resume finishes without sending finished batches again.
    let plan = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT wide2 TO r ON (TABLE sr_wide)",
        &["--batch-bytes", "4KiB", "--poll-ms", "300"],
    );
    let mut child = t.spawn_apply(&plan, Stdio::null());
    let started = Instant::now();
    loop {
        let finished = std::fs::read_dir(t.state.join("runs"))
            .unwrap()
            .flatten()
            .filter_map(|d| std::fs::read_to_string(d.path().join("journal.jsonl")).ok())
            .filter(|j| j.contains("wide2__b"))
            .map(|j| j.matches("\"event\":\"finished\"").count())
            .max()
            .unwrap_or(0);
        if finished >= 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = t.journal();
    assert!(
        events(&before, "done").is_empty(),
        "the run ended before the kill"
    );
    let finished_before: Vec<String> = events(&before, "finished")
        .iter()
        .map(|e| e["task"].as_str().unwrap().to_string())
        .collect();
    // The run resumes only with the plan it started with, on the FE it was made for.
    let run = std::fs::read_dir(t.state.join("runs"))
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .filter(|p| p.is_dir())
        .find(|p| {
            let j = std::fs::read_to_string(p.join("journal.jsonl")).unwrap_or_default();
            j.contains("wide2__b") && !j.contains("\"event\":\"done\"")
        })
        .unwrap();
    let plan_file = run.join("plan.json");
    let original = std::fs::read_to_string(&plan_file).unwrap();
    std::fs::write(
        &plan_file,
        original.replace("\"retries\": 3", "\"retries\": 30"),
    )
    .unwrap();
    let (ok, _, err) = t.run(&["resume"], &[]);
    assert!(
        !ok && common::cli::flat(&err).contains("is not the plan"),
        "{err}"
    );
    std::fs::write(&plan_file, &original).unwrap();
    let out = t.ok(&["resume"], &[]);
    assert!(out.contains("finished"), "{out}");
    let after = t.journal();
    for task in &finished_before {
        let sent = events(&after, "submitted")
            .iter()
            .filter(|e| e["task"] == task.as_str())
            .count();
        assert_eq!(sent, 1, "{task} was sent again after resume");
    }
    assert_eq!(events(&after, "done")[0]["outcome"], "finished");
    let restore = t.plan(
        "RESTORE SNAPSHOT wide2 FROM r DATABASE sr_hub AS wide_copy2",
        &[],
    );
    t.apply(&restore, &[]);
    assert_eq!(
        t.checksum("wide_copy2.sr_wide"),
        t.checksum("sr_hub.sr_wide")
    );
}

#[test]
fn incremental_backs_up_only_changed_partitions_and_the_chain_restores() {
    let t = target_with_root(&[]);
    wide_table(&t);
    let full = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT base TO r ON (TABLE sr_wide, TABLE sr_member)",
        &["--batch-bytes", "64KiB"],
    );
    t.apply(&full, &[]);
    // Change two partitions.
    t.sql("INSERT INTO sr_hub.sr_wide VALUES (150, 'changed'), (4950, 'changed')");
    let inc = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT inc1 TO r ON (TABLE sr_wide, TABLE sr_member) PROPERTIES (\"type\" = \"incremental\")",
        &[],
    );
    let parsed: Value = serde_json::from_str(&std::fs::read_to_string(&inc).unwrap()).unwrap();
    let sent: Vec<(String, String)> = parsed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["items"].as_array().unwrap().clone())
        .flat_map(|i| {
            let name = i["name"].as_str().unwrap().to_string();
            i["partitions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |p| (name.clone(), p.as_str().unwrap().to_string()))
        })
        .collect();
    assert_eq!(
        sent,
        vec![
            ("sr_wide".to_string(), "p01".to_string()),
            ("sr_wide".to_string(), "p49".to_string())
        ]
    );
    assert_eq!(parsed["units"][0]["reused"].as_array().unwrap().len(), 52);
    t.apply(&inc, &[]);
    // The chain restores to the source as it is now.
    let restore = t.plan(
        "RESTORE SNAPSHOT inc1 FROM r DATABASE sr_hub AS inc_copy",
        &[],
    );
    let explained = t.ok(&["explain", restore.to_str().unwrap()], &[]);
    assert!(
        explained.contains("base__b1") && explained.contains("inc1__b1"),
        "{explained}"
    );
    t.apply(&restore, &[]);
    assert_eq!(t.checksum("inc_copy.sr_wide"), t.checksum("sr_hub.sr_wide"));
    assert_eq!(
        t.checksum("inc_copy.sr_member"),
        t.checksum("sr_hub.sr_member")
    );
    // A table swapped for a restored copy has new partitions (new ids), even where versions
    // repeat: the next incremental sends all of it again.
    let over = t.plan(
        "RESTORE SNAPSHOT base FROM r DATABASE sr_hub ON (TABLE sr_member)",
        &[],
    );
    t.apply(&over, &[]);
    let inc2 = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT inc2 TO r ON (TABLE sr_wide, TABLE sr_member) PROPERTIES (\"type\" = \"incremental\")",
        &[],
    );
    let parsed: Value = serde_json::from_str(&std::fs::read_to_string(&inc2).unwrap()).unwrap();
    let items: Vec<&Value> = parsed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["items"].as_array().unwrap())
        .collect();
    assert!(
        items.iter().any(|i| i["name"] == "sr_member")
            && !items.iter().any(|i| i["name"] == "sr_wide"),
        "{items:?}"
    );
    // An incremental backup with nothing to build on is refused.
    let (ok, _, err) = t.run(
        &[
            "plan",
            "BACKUP DATABASE sr_hub SNAPSHOT inc2 TO r ON (TABLE sr_pmc) PROPERTIES (\"type\" = \"incremental\")",
        ],
        &[],
    );
    assert!(
        ok,
        "sr_pmc has no earlier backup but the database has: a full copy of it\n{err}"
    );
}

#[test]
fn a_failed_cancelled_or_killed_overwrite_restore_leaves_the_live_table_as_it_was() {
    // The server fails its 2nd RESTORE job: the overwrite restore's second batch.
    let t = target_with_root(&[("SRBACKUP_FAIL_NTH_RESTORE", "2")]);
    wide_table(&t);
    let backup = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT atomic TO r ON (TABLE sr_wide)",
        &["--batch-bytes", "4KiB"],
    );
    t.apply(&backup, &[]);
    // The live table changes after the backup; a restore would take it back.
    t.sql("INSERT INTO sr_hub.sr_wide VALUES (1, 'after the backup')");
    let live = t.checksum("sr_hub.sr_wide");
    let restore = t.plan(
        "RESTORE SNAPSHOT atomic FROM r DATABASE sr_hub ON (TABLE sr_wide)",
        &["--retries", "0"],
    );
    let (ok, _, err) = t.run(&["apply", restore.to_str().unwrap()], &[]);
    assert!(!ok && err.contains("failed"), "{err}");
    assert_eq!(t.checksum("sr_hub.sr_wide"), live);
    assert_no_temp(&t, "sr_hub");

    // Cancelled (SIGTERM) mid-way: the native job is cancelled, the live table unchanged.
    let restore = t.plan(
        "RESTORE SNAPSHOT atomic FROM r DATABASE sr_hub ON (TABLE sr_wide)",
        &["--poll-ms", "300"],
    );
    let child = t.spawn_apply(&restore, Stdio::piped());
    wait_for_finished(&t, "atomic__b", 1);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(
        events(&t.journal(), "done")[0]["outcome"],
        "cancelled",
        "{err}"
    );
    assert_eq!(t.checksum("sr_hub.sr_wide"), live);
    assert_no_temp(&t, "sr_hub");

    // Killed (-9) mid-way, then `resume --cancel`: what it left is cancelled and dropped.
    kill_restore_midway(&t);
    let (ok, _, err) = t.run(&["resume", "--cancel"], &[]);
    assert!(!ok && err.contains("cancelled"), "{err}");
    assert_eq!(events(&t.journal(), "done")[0]["outcome"], "cancelled");
    assert_eq!(t.checksum("sr_hub.sr_wide"), live);
    assert_no_temp(&t, "sr_hub");

    // Killed (-9) mid-way: the live table is unchanged until resume swaps the restored copy in.
    kill_restore_midway(&t);
    assert_eq!(t.checksum("sr_hub.sr_wide"), live);
    t.ok(&["resume"], &[]);
    assert_ne!(t.checksum("sr_hub.sr_wide"), live);
    let count = table_of(
        t.server.port,
        "SELECT count(*) FROM sr_hub.sr_wide WHERE v = 'after the backup'",
    );
    assert_eq!(count[1][0], "0", "{count:?}");
    assert_no_temp(&t, "sr_hub");
}

/// Applies an overwrite restore of sr_wide and kills srbackup (-9) after its first job.
fn kill_restore_midway(t: &Target) {
    let restore = t.plan(
        "RESTORE SNAPSHOT atomic FROM r DATABASE sr_hub ON (TABLE sr_wide)",
        &["--poll-ms", "300"],
    );
    let mut child = t.spawn_apply(&restore, Stdio::null());
    wait_for_finished(t, "atomic__b", 1);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn assert_no_temp(t: &Target, db: &str) {
    let tables = t.tables(db);
    assert!(
        !tables.iter().any(|x| x.starts_with("srbackup_tmp_")),
        "{tables:?}"
    );
}

fn wait_for_finished(t: &Target, label_part: &str, n: usize) {
    let started = Instant::now();
    loop {
        let done = std::fs::read_dir(t.state.join("runs"))
            .unwrap()
            .flatten()
            .filter_map(|d| std::fs::read_to_string(d.path().join("journal.jsonl")).ok())
            .filter(|j| !j.contains("\"event\":\"done\"") && j.contains(label_part))
            .map(|j| j.matches("\"event\":\"finished\"").count())
            .max()
            .unwrap_or(0);
        if done >= n {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn stale_and_edited_plans_are_refused_and_secrets_stay_out() {
    let t = target_with_root(&[]);
    let plan = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT stale TO r ON (TABLE sr_member)",
        &[],
    );
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(!text.contains(ROOT_PW));
    // Edited: a statement in a task changed after review.
    let edited = plan.with_extension("edited.json");
    std::fs::write(
        &edited,
        text.replace("PARTITION (`p1`", "PARTITION (`p2`")
            .replace("TABLE `sr_member`)", "TABLE `sr_pmc`)"),
    )
    .unwrap();
    let (ok, _, err) = t.run(&["apply", edited.to_str().unwrap()], &[]);
    assert!(!ok && err.contains("edited"), "{err}");
    // Stale: a partition's version moved after planning.
    t.sql("INSERT INTO sr_hub.sr_member VALUES (99999, 'x', '2022-05-05', 1, true, 1.00, NULL)");
    let (ok, _, err) = t.run(&["apply", plan.to_str().unwrap()], &[]);
    assert!(
        !ok && common::cli::flat(&err).contains("stale")
            && common::cli::flat(&err).contains("sr_member p1 version"),
        "{err}"
    );
    // The wrong password fails clearly, without printing it.
    let (ok, _, err) = t.run(
        &["plan", "BACKUP DATABASE sr_hub SNAPSHOT x TO r"],
        &[("SRBACKUP_PASSWORD", "wrong-pw-123")],
    );
    assert!(
        !ok && err.contains("cannot connect") && !err.contains("wrong-pw-123"),
        "{err}"
    );
    // A label an earlier run left on the FE (a failed or foreign batch) is taken.
    t.sql("BACKUP DATABASE sr_hub SNAPSHOT taken__b1 TO r ON (TABLE sr_pmc)");
    let started = Instant::now();
    while !t.sql("SHOW SNAPSHOT ON r").contains("taken__b1") {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, _, err) = t.run(&["plan", "BACKUP DATABASE sr_hub SNAPSHOT taken TO r"], &[]);
    assert!(
        !ok && common::cli::flat(&err).contains("taken__b1"),
        "{err}"
    );
    // A password in the address is refused.
    let out = Command::new(BIN)
        .args(["--cluster", &t.url.replace("root@", "root:pw@"), "plan"])
        .arg("BACKUP DATABASE sr_hub SNAPSHOT x TO r")
        .env("SRBACKUP_PASSWORD", ROOT_PW)
        .output()
        .unwrap();
    let (ok, err) = (out.status.success(), String::from_utf8_lossy(&out.stderr));
    assert!(!ok && err.contains("password"), "{err}");
    // Nothing ran twice at once: a second apply of a running plan is refused by the run lock
    // (tested through the state directory: the run exists after the first apply).
    let plan = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT once TO r ON (TABLE sr_pmc)",
        &[],
    );
    t.apply(&plan, &[]);
    let (ok, _, err) = t.run(&["apply", plan.to_str().unwrap()], &[]);
    assert!(!ok && err.contains("already exist"), "{err}");
}

#[test]
fn a_cancel_on_the_fe_stops_the_run_without_retrying() {
    // Slow jobs (the server's repository transfers at 8 KiB/s) so the CANCEL lands mid-job.
    let t = target_with_conf(&[], "upload_worker_count = 1\nmax_upload_speed_kbps = 8\n");
    wide_table(&t);
    let plan = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT stopped TO r ON (TABLE sr_wide)",
        &["--poll-ms", "50"],
    );
    let child = t.spawn_apply(&plan, Stdio::piped());
    let started = Instant::now();
    loop {
        let shown = table_of(t.server.port, "SHOW BACKUP FROM sr_hub");
        if shown.len() > 1 && shown[1].iter().any(|c| c == "stopped__b1") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job never showed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second apply of the same plan while it runs is refused (it would send every job twice).
    let (ok, _, err) = t.run(&["apply", plan.to_str().unwrap()], &[]);
    assert!(
        !ok && common::cli::flat(&err).contains("another srbackup process"),
        "{err}"
    );
    t.sql("CANCEL BACKUP FROM sr_hub");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let journal = t.journal();
    assert_eq!(events(&journal, "done")[0]["outcome"], "cancelled", "{err}");
    assert_eq!(
        events(&journal, "submitted").len(),
        1,
        "a cancelled job is not retried"
    );
}

#[test]
fn tls_is_used_when_offered_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let made = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tls-cert"))
        .arg(&tls)
        .output()
        .unwrap();
    assert!(made.status.success());
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let mut t = target_with_conf(
        &[],
        &format!(
            "ssl_cert = {}\nssl_key = {}\n",
            cert.display(),
            key.display()
        ),
    );
    // Checked against the FE's own certificate: TLS, and planning works through it.
    t.url = format!(
        "starrocks://root@127.0.0.1:{}?tls=require&ca={}",
        t.server.port,
        cert.display()
    );
    let out = t.ok(
        &[
            "plan",
            "BACKUP DATABASE sr_hub SNAPSHOT tls1 TO r ON (TABLE sr_pmc)",
        ],
        &[],
    );
    assert!(out.contains("\"target\": \"starrocks\""), "{out}");
    // The plan names the FE without the CA path or any password.
    assert!(!out.contains("ca=") && !out.contains(ROOT_PW), "{out}");
    // Without the CA the certificate is not trusted: refused, never a silent plain-text retry.
    t.url = format!("starrocks://root@127.0.0.1:{}", t.server.port);
    let (ok, _, err) = t.run(&["plan", "BACKUP DATABASE sr_hub SNAPSHOT tls2 TO r"], &[]);
    assert!(!ok && err.contains("cannot connect"), "{err}");
    // tls=off talks plain text to it.
    t.url = format!("starrocks://root@127.0.0.1:{}?tls=off", t.server.port);
    t.ok(
        &[
            "plan",
            "BACKUP DATABASE sr_hub SNAPSHOT tls3 TO r ON (TABLE sr_pmc)",
        ],
        &[],
    );
    // tls=require against a FE without TLS is refused with the reason.
    let plain = target_with_root(&[]);
    let (ok, _, err) = plain.run(&["--help"], &[]);
    assert!(ok, "{err}");
    let out = Command::new(BIN)
        .args([
            "--cluster",
            &format!(
                "starrocks://root@127.0.0.1:{}?tls=require",
                plain.server.port
            ),
            "plan",
            "BACKUP DATABASE sr_hub SNAPSHOT x TO r",
        ])
        .env("SRBACKUP_PASSWORD", ROOT_PW)
        .output()
        .unwrap();
    let err = common::cli::flat(&String::from_utf8_lossy(&out.stderr));
    assert!(
        !out.status.success() && err.contains("does not offer TLS"),
        "{err}"
    );
}

#[test]
fn databases_run_side_by_side_each_one_job_at_a_time() {
    let t = target_with_root(&[]);
    t.sql("CREATE DATABASE sr_two");
    t.sql(
        "CREATE TABLE sr_two.t (k INT NOT NULL, v INT) DUPLICATE KEY (k) \
         DISTRIBUTED BY HASH (k) BUCKETS 2 PROPERTIES (\"replication_num\" = \"1\")",
    );
    t.sql("INSERT INTO sr_two.t VALUES (1, 1), (2, 4), (3, 9)");
    let plan = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT side1 TO r ON (TABLE sr_member, TABLE sr_pmc); \
         BACKUP DATABASE sr_two SNAPSHOT side2 TO r",
        &["--batch-bytes", "30KiB"],
    );
    let parsed: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let tasks = parsed["tasks"].as_array().unwrap();
    let lane = |db: &str| -> Vec<&Value> { tasks.iter().filter(|t| t["database"] == db).collect() };
    assert!(
        lane("sr_hub").len() >= 2 && lane("sr_two").len() == 1,
        "{tasks:?}"
    );
    // The first job of each database waits for nothing: the two run side by side.
    assert!(lane("sr_hub")[0]["after"].is_null() && lane("sr_two")[0]["after"].is_null());
    let out = t.apply(&plan, &[]);
    assert!(
        out.contains("snapshot side1 recorded") && out.contains("snapshot side2 recorded"),
        "{out}"
    );
    let restore = t.plan(
        "RESTORE SNAPSHOT side2 FROM r DATABASE sr_two AS sr_two_copy",
        &[],
    );
    t.apply(&restore, &[]);
    assert_eq!(t.checksum("sr_two_copy.t"), t.checksum("sr_two.t"));
}

#[test]
fn a_failure_after_some_swaps_puts_every_table_back() {
    // The server fails its 2nd RESTORE job: the views/MVs/functions job, which runs after the
    // tables were swapped in.
    let t = target_with_root(&[("SRBACKUP_FAIL_NTH_RESTORE", "2")]);
    // A table without partitions yet (expression partitioning, nothing loaded): backed up too.
    t.sql(
        "CREATE TABLE sr_hub.sr_empty (d DATE NOT NULL, v INT) DUPLICATE KEY (d) \
         PARTITION BY date_trunc('month', d) DISTRIBUTED BY HASH (d) BUCKETS 1 \
         PROPERTIES (\"replication_num\" = \"1\")",
    );
    let backup = t.plan("BACKUP DATABASE sr_hub SNAPSHOT whole TO r", &[]);
    t.apply(&backup, &[]);
    t.sql("INSERT INTO sr_hub.sr_member VALUES (99999, 'late', '2022-05-05', 1, true, 1.00, NULL)");
    t.sql("INSERT INTO sr_hub.sr_pmc VALUES (99999, 1, 'late', '2024-01-01')");
    let live: Vec<String> = ["sr_member", "sr_pmc", "sr_event", "sr_region"]
        .iter()
        .map(|x| t.checksum(&format!("sr_hub.{x}")))
        .collect();
    let restore = t.plan(
        "RESTORE SNAPSHOT whole FROM r DATABASE sr_hub",
        &["--retries", "0"],
    );
    let explained = t.ok(&["explain", restore.to_str().unwrap()], &[]);
    assert!(explained.contains("SWAP WITH"), "{explained}");
    let (ok, _, err) = t.run(&["apply", restore.to_str().unwrap()], &[]);
    assert!(!ok && err.contains("back as it was"), "{err}");
    let now: Vec<String> = ["sr_member", "sr_pmc", "sr_event", "sr_region"]
        .iter()
        .map(|x| t.checksum(&format!("sr_hub.{x}")))
        .collect();
    assert_eq!(now, live, "a table stayed swapped after the failure");
    assert_no_temp(&t, "sr_hub");
    // The empty table came along: a restore into a new database has it.
    let copy = t.plan(
        "RESTORE SNAPSHOT whole FROM r DATABASE sr_hub AS whole_copy",
        &[],
    );
    t.apply(&copy, &[]);
    assert!(t.tables("whole_copy").contains(&"sr_empty".to_string()));
}

/// Runs `args` and fails the test if it does not end within a minute (a hang is a bug).
fn within_a_minute(t: &Target, args: &[&str]) -> (bool, String) {
    let mut child = t
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.success(), err);
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_run_killed_while_waiting_to_retry_resumes() {
    let t = target_with_root(&[("SRBACKUP_FAIL_NTH_BACKUP", "1")]);
    let plan = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT backoff TO r ON (TABLE sr_pmc)",
        &["--retry-backoff-ms", "600000"],
    );
    let mut child = t.spawn_apply(&plan, Stdio::null());
    let started = Instant::now();
    while !events(&t.journal_or_empty(), "failed")
        .iter()
        .any(|e| e["label"] == "backoff__b1")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first attempt never failed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (ok, err) = within_a_minute(&t, &["resume"]);
    assert!(ok, "{err}");
    let journal = t.journal();
    assert!(
        events(&journal, "submitted")
            .iter()
            .any(|e| e["label"] == "backoff__b1__r1")
    );
    assert_eq!(events(&journal, "done")[0]["outcome"], "finished");
}

#[test]
fn what_changes_during_a_restore_is_never_lost_or_adopted() {
    let t = target_with_root(&[]);
    wide_table(&t);
    let backup = t.plan(
        "BACKUP DATABASE sr_hub SNAPSHOT moving TO r ON (TABLE sr_wide)",
        &["--batch-bytes", "4KiB"],
    );
    t.apply(&backup, &[]);
    // The plan's temporary table and its number of jobs are the same every time.
    let restore = t.plan(
        "RESTORE SNAPSHOT moving FROM r DATABASE sr_hub ON (TABLE sr_wide)",
        &["--retries", "0"],
    );
    let parsed: Value = serde_json::from_str(&std::fs::read_to_string(&restore).unwrap()).unwrap();
    let temp = parsed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|t| t["temp"].as_str())
        .unwrap()
        .to_string();
    let jobs = parsed["summary"]["native_jobs"].as_u64().unwrap() as usize;
    let live = t.checksum("sr_hub.sr_wide");
    // Applies a fresh plan of the restore, runs `meddle` while it pauses before going live,
    // and returns whether it succeeded and what it said.
    let paused = |meddle: &dyn Fn()| -> (bool, String) {
        let restore = t.plan(
            "RESTORE SNAPSHOT moving FROM r DATABASE sr_hub ON (TABLE sr_wide)",
            &["--retries", "0"],
        );
        let child = t
            .command(&["apply", restore.to_str().unwrap()])
            .env("SRBACKUP_PAUSE_BEFORE_GOING_LIVE_MS", "3000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_finished(&t, "moving__b", jobs);
        meddle();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            common::cli::flat(&String::from_utf8_lossy(&out.stderr)),
        )
    };
    // 1. A partition added to the temporary table before it goes live: it never does.
    let (ok, err) = paused(&|| {
        t.sql(&format!(
            "ALTER TABLE sr_hub.{temp} ADD PARTITION p99 VALUES LESS THAN (\"999999\")"
        ));
    });
    assert!(!ok && err.contains("does not hold exactly"), "{err}");
    assert_eq!(t.checksum("sr_hub.sr_wide"), live);
    assert_no_temp(&t, "sr_hub");
    // 1b. A row written into the restored copy before it goes live: it never does.
    let (ok, err) = paused(&|| {
        t.sql(&format!("INSERT INTO sr_hub.{temp} VALUES (7, 'planted')"));
    });
    assert!(
        !ok && err.contains("was written after it was restored"),
        "{err}"
    );
    assert_eq!(t.checksum("sr_hub.sr_wide"), live);
    assert_no_temp(&t, "sr_hub");
    // 2. A load into the live table during the restore: the swap is refused, the load kept.
    let (ok, err) = paused(&|| {
        t.sql("INSERT INTO sr_hub.sr_wide VALUES (4999, 'loaded during the restore')");
    });
    assert!(!ok && err.contains("changed during the restore"), "{err}");
    assert_ne!(t.checksum("sr_hub.sr_wide"), live);
    let count = table_of(
        t.server.port,
        "SELECT count(*) FROM sr_hub.sr_wide WHERE v = 'loaded during the restore'",
    );
    assert_eq!(count[1][0], "1", "{count:?}");
    assert_no_temp(&t, "sr_hub");
    // 3. Two restores of one snapshot into two databases are two plans (two runs).
    let a = t.plan("RESTORE SNAPSHOT moving FROM r DATABASE sr_hub AS m1", &[]);
    let b = t.plan("RESTORE SNAPSHOT moving FROM r DATABASE sr_hub AS m2", &[]);
    let fp = |p: &Path| -> String {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        v["fingerprint"].as_str().unwrap().to_string()
    };
    assert_ne!(fp(&a), fp(&b));
    // 4. Nothing to plan is an error, not an empty plan that "finishes".
    let (ok, _, err) = t.run(&["plan", "-- only a comment"], &[]);
    assert!(!ok, "{err}");
}

#[test]
fn a_cancel_after_the_views_were_restored_keeps_the_restore_whole() {
    // Slow downloads: the views/MVs/functions job (the last one) takes a while.
    let t = target_with_conf(
        &[],
        "download_worker_count = 1\nmax_download_speed_kbps = 2\n",
    );
    let backup = t.plan("BACKUP DATABASE sr_hub SNAPSHOT views TO r", &[]);
    t.apply(&backup, &[]);
    let snapshot = t.checksum("sr_hub.sr_pmc");
    t.sql("INSERT INTO sr_hub.sr_pmc VALUES (99999, 1, 'late', '2024-01-01')");
    let restore = t.plan(
        "RESTORE SNAPSHOT views FROM r DATABASE sr_hub",
        &["--poll-ms", "50"],
    );
    let parsed: Value = serde_json::from_str(&std::fs::read_to_string(&restore).unwrap()).unwrap();
    let meta_task = parsed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|t| {
            t["kind"] == "restore"
                && t["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["kind"] != "table")
        })
        .unwrap();
    let meta = meta_task["id"].as_str().unwrap().to_string();
    let meta_label = meta_task["label"].as_str().unwrap().to_string();
    let mut child = t.spawn_apply(&restore, Stdio::null());
    // Killed once the FE shows the views job (the journal line comes just before the statement
    // reaches the FE); the job then finishes there with nobody watching.
    let started = Instant::now();
    loop {
        let sent = events(&t.journal_or_empty(), "submitted")
            .iter()
            .any(|e| e["task"] == meta.as_str());
        let shown = table_of(t.server.port, "SHOW RESTORE FROM sr_hub");
        if sent && shown.len() > 1 && shown[1].contains(&meta_label) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the views job was never sent"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    loop {
        let shown = table_of(t.server.port, "SHOW RESTORE FROM sr_hub");
        if shown.len() > 1
            && shown[1].iter().any(|c| c == "FINISHED")
            && shown[1].contains(&meta_label)
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{shown:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // `resume --cancel` now would mix restored views with undone tables: it keeps the restore.
    let (_, err) = within_a_minute(&t, &["resume", "--cancel"]);
    assert_eq!(t.checksum("sr_hub.sr_pmc"), snapshot, "{err}");
    assert_no_temp(&t, "sr_hub");
}
