//! The `srbackup` binary driven as a user drives it: a cluster directory with the sr_hub
//! fixture and a local repository `r`, statements through `srbackup sql`, jobs slowed with the
//! cluster's rate limits so that a test can catch them mid-way (no test depends on speed), and
//! the catalog read back to see where a job is.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use srbackup::catalog::{self, Catalog};

use super::TABLES;

pub const BIN: &str = env!("CARGO_BIN_EXE_srbackup");

pub struct Cluster {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub repo: PathBuf,
}

pub fn srbackup(cluster: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("--cluster")
        .arg(cluster)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn sql(c: &Cluster, statement: &str) -> String {
    let (ok, out, err) = srbackup(&c.path, &["sql", statement]);
    assert!(ok, "{statement}\n{out}\n{err}");
    out
}

pub fn spawn(c: &Cluster, args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("--cluster")
        .arg(&c.path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster");
    let repo = dir.path().join("repo");
    let c = Cluster {
        _dir: dir,
        path,
        repo,
    };
    let (ok, _, err) = srbackup(&c.path, &["sql", "-f", "fixtures/sr_hub.sql"]);
    assert!(ok, "{err}");
    sql(
        &c,
        &format!(
            "CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\"",
            c.repo.display()
        ),
    );
    c
}

/// Slows jobs down (KiB/s, one transfer at a time) or back to normal (0).
pub fn throttle(c: &Cluster, kbps: u64) {
    std::fs::write(
        c.path.join("srbackup.conf"),
        format!(
            "upload_worker_count = 1\ndownload_worker_count = 1\nmax_upload_speed_kbps = {kbps}\nmax_download_speed_kbps = {kbps}\n"
        ),
    )
    .unwrap();
}

pub fn latest_job(c: &Cluster, kind: &str) -> Option<catalog::JobRow> {
    let cat = Catalog::open(&c.path.join("catalog.db")).unwrap();
    let kind = catalog::JobKind::parse(kind).unwrap();
    cat.view().jobs(kind, None).unwrap().into_iter().next()
}

/// Waits until a job of `kind` newer than any existing one has finished `tasks` tasks.
pub fn wait_for_progress(c: &Cluster, kind: &str, tasks: usize) -> catalog::JobRow {
    wait_for_job_after(c, kind, tasks, 0)
}

pub fn wait_for_job_after(c: &Cluster, kind: &str, tasks: usize, after: i64) -> catalog::JobRow {
    let start = Instant::now();
    loop {
        if let Some(j) = latest_job(c, kind).filter(|j| j.id > after) {
            let done: usize = j
                .progress
                .as_deref()
                .and_then(|p| p.split('/').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if done >= tasks || j.finished {
                return j;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the job made no progress"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn checksum(c: &Cluster, table: &str) -> String {
    let out = sql(c, &format!("CHECKSUM TABLE {table}"));
    out.lines()
        .find(|l| l.contains(table))
        .and_then(|l| l.split('|').nth(2))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no checksum in {out}"))
}

pub fn all_checksums(c: &Cluster, db: &str) -> Vec<String> {
    TABLES
        .iter()
        .map(|t| checksum(c, &format!("{db}.{t}")))
        .collect()
}

/// Plans `statement` into the file `plan` (`srbackup plan -o`).
pub fn plan_to(c: &Cluster, statement: &str, plan: &Path) {
    let (ok, out, err) = srbackup(&c.path, &["plan", statement, "-o", plan.to_str().unwrap()]);
    assert!(ok, "{statement}\n{out}\n{err}");
}

/// The snapshot `label` of repository `r` restores to exactly `db`'s data, and `verify` reads
/// every object of it back.
pub fn restores_whole(c: &Cluster, label: &str, db: &str) {
    sql(
        c,
        &format!("RESTORE SNAPSHOT {label} FROM r DATABASE {db} AS {label}_back"),
    );
    assert_eq!(
        all_checksums(c, &format!("{label}_back")),
        all_checksums(c, db)
    );
    let (ok, out, err) = srbackup(&c.path, &["verify", "r", label]);
    assert!(ok, "{out}\n{err}");
}

/// A diagnostic on one line (miette wraps long messages and draws `│` before continuations).
#[allow(dead_code)] // not every test binary uses it
pub fn flat(text: &str) -> String {
    text.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
