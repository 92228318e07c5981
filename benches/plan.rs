//! Planning at scale: `cargo bench --bench plan [-- TABLETS [--streamed-only]]` (default
//! 1,000,000 tablets).
//!
//! Builds a catalog with one table of TABLETS tablets (1,000 range partitions of TABLETS/1,000
//! buckets, or TABLETS/1,000 partitions of 1,000 buckets past a million), one rowset each (catalog rows only: planning never reads data files), then plans
//! `BACKUP DATABASE ... TO repo` against an empty local repository, for a tenth, half and all
//! of the tablets, so that growth shows in one run. For each size it prints:
//! - the plan made in memory and written out (`srbackup plan` to stdout, a BACKUP statement);
//! - the plan streamed to its file (`srbackup plan -o FILE`), which holds one partition's files
//!   at a time;
//! - reading the file back (what `srbackup apply` and a job do first).
//!
//! Each with its time and the peak resident memory it reached above what the process held
//! before it (the kernel's high-water mark, reset before each stage), and the file's size.
//! `--streamed-only` skips the in-memory stages (for 10M tablets, whose plan would not fit).

use std::time::Instant;

use srbackup::catalog::RowsetRow;
use srbackup::session::Session;

fn args() -> (u64, bool) {
    let tablets = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    (tablets, std::env::args().any(|a| a == "--streamed-only"))
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).map(|n| n.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

/// Resets the peak RSS to the current RSS (Linux: `clear_refs` 5) and returns the current.
fn reset_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn cluster(dir: &std::path::Path, tablets: u64) -> Session {
    let mut s = Session::open(&dir.join("cluster")).unwrap();
    // 1,000 partitions, or as many of 1,000 buckets as it takes (at most 1,024 buckets).
    let partitions = (tablets / 1_000).max(1_000).min(tablets);
    let buckets = tablets / partitions;
    let parts: Vec<String> = (0..partitions)
        .map(|p| format!("PARTITION p{p} VALUES LESS THAN ('{}')", p + 1))
        .collect();
    let ddl = format!(
        "CREATE DATABASE big; CREATE TABLE big.t (k INT NOT NULL, v INT) DUPLICATE KEY (k) \
         PARTITION BY RANGE (k) ({}) DISTRIBUTED BY HASH (k) BUCKETS {buckets}; \
         CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\"",
        parts.join(", "),
        dir.join("repo").display()
    );
    s.run_script("bench", &ddl, |_, _| {}).await.unwrap();
    // One rowset per tablet, written straight into the catalog.
    s.engine()
        .catalog()
        .write(|tx| {
            let db = tx.database("big")?.expect("the database was just created");
            let table = tx.object(db.id, "t")?.expect("the table was just created");
            let mut ids: Vec<i64> = tx.tablet_ids(table.id)?.into_values().collect();
            ids.sort();
            for (i, tablet_id) in ids.iter().enumerate() {
                tx.insert_rowset(&RowsetRow {
                    id: 0,
                    tablet_id: *tablet_id,
                    version: 2,
                    path: format!("data/1/L{i}.parquet"),
                    rows: 1000,
                    bytes: 65536,
                    sha256: format!("{:064x}", i),
                    live: true,
                    rollup: None,
                })?;
            }
            Ok(())
        })
        .unwrap();
    s
}

struct Stage {
    secs: f64,
    peak_mib: f64,
}

fn stage<T>(f: impl FnOnce() -> T) -> (T, Stage) {
    let before = reset_peak();
    let start = Instant::now();
    let out = f();
    let secs = start.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:").saturating_sub(before);
    (
        out,
        Stage {
            secs,
            peak_mib: mib(peak),
        },
    )
}

fn main() {
    let (total, streamed_only) = args();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "{:>10}  {:>22}  {:>22}  {:>22}  {:>10}",
        "tablets", "in memory + to_json", "streamed to file", "read back", "plan file"
    );
    for tablets in [total / 10, total / 2, total] {
        let dir = tempfile::tempdir().unwrap();
        let setup = Instant::now();
        let mut s = rt.block_on(cluster(dir.path(), tablets));
        let setup = setup.elapsed().as_secs_f64();
        let text = "BACKUP DATABASE big SNAPSHOT s TO r";
        let stmt = srbackup::sql::parse_one(text).unwrap();
        let memory = if streamed_only {
            None
        } else {
            let (len, st) = stage(|| {
                let plan = rt
                    .block_on(srbackup::plan::plan(s.engine(), &stmt, text))
                    .unwrap();
                plan.to_json().len()
            });
            Some((len, st))
        };
        let file = dir.path().join("plan.json");
        let ((_, tasks), streamed) = stage(|| {
            rt.block_on(srbackup::plan::plan_to_file(s.engine(), &stmt, text, &file))
                .unwrap()
        });
        let bytes = std::fs::metadata(&file).unwrap().len();
        if let Some((len, _)) = &memory {
            assert_eq!(*len as u64, bytes, "the streamed plan is the plan");
        }
        let read = (!streamed_only).then(|| {
            stage(|| {
                let text = std::fs::read_to_string(&file).unwrap();
                srbackup::plan::Plan::from_json(&text).unwrap().tasks.len()
            })
        });
        if let Some((n, _)) = &read {
            assert_eq!(*n, tasks);
        }
        let show = |s: Option<&Stage>| match s {
            Some(s) => format!("{:>7.2} s {:>7.1} MiB", s.secs, s.peak_mib),
            None => format!("{:>22}", "-"),
        };
        println!(
            "{tablets:>10}  {:>22}  {:>22}  {:>22}  {:>6.1} MiB   (catalog built in {setup:.1} s; {tasks} tasks)",
            show(memory.as_ref().map(|m| &m.1)),
            show(Some(&streamed)),
            show(read.as_ref().map(|r| &r.1)),
            bytes as f64 / 1_048_576.0,
        );
    }
}
