//! Planning at scale: `cargo bench --bench plan [-- TABLETS]` (default 100,000).
//!
//! Builds a catalog with one table of TABLETS tablets (1,000 range partitions of TABLETS/1,000
//! buckets), one rowset each (catalog rows only: planning never reads data files), then plans
//! `BACKUP DATABASE ... TO repo` against an empty local repository. Prints the planning time and
//! the resident memory it took, for a tenth, half and all of the tablets, so that linear growth
//! shows in one run.

use std::time::Instant;

use srbackup::catalog::RowsetRow;
use srbackup::session::Session;

fn tablets_arg() -> u64 {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|n| n.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

async fn measure(tablets: u64) -> (f64, u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("cluster")).unwrap();
    let partitions = 1_000u64;
    let buckets = tablets / partitions;
    let parts: Vec<String> = (0..partitions)
        .map(|p| format!("PARTITION p{p} VALUES LESS THAN ('{}')", p + 1))
        .collect();
    let ddl = format!(
        "CREATE DATABASE big; CREATE TABLE big.t (k INT NOT NULL, v INT) DUPLICATE KEY (k) \
         PARTITION BY RANGE (k) ({}) DISTRIBUTED BY HASH (k) BUCKETS {buckets}; \
         CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\"",
        parts.join(", "),
        dir.path().join("repo").display()
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
    let text = "BACKUP DATABASE big SNAPSHOT s TO r";
    let stmt = srbackup::sql::parse_one(text).unwrap();
    let before = rss_kib();
    let start = Instant::now();
    let plan = srbackup::plan::plan(s.engine(), &stmt, text).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    let grown = rss_kib().saturating_sub(before);
    let json = plan.to_json();
    (secs, grown, json.len())
}

fn main() {
    let total = tablets_arg();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("tablets   plan time   RSS growth   plan file");
    for tablets in [total / 10, total / 2, total] {
        let (secs, kib, bytes) = rt.block_on(measure(tablets));
        println!(
            "{tablets:>7}   {:>7.3} s   {:>7.1} MiB   {:>6.1} MiB",
            secs,
            kib as f64 / 1024.0,
            bytes as f64 / 1_048_576.0
        );
    }
}
