//! Engine throughput: `cargo bench --bench engine [-- ROWS]` (default 2,000,000 rows).
//!
//! Loads generated rows into a hash-bucketed DUPLICATE KEY table through INSERT ... SELECT,
//! into a PRIMARY KEY table (merge on write), and from a CSV file through FILES(); then scans
//! with COUNT(*) and a GROUP BY. Prints rows/s and MB/s of stored data for each.

use std::time::Instant;

use srbackup::results::Output;
use srbackup::session::Session;

fn rows_arg() -> u64 {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000_000)
}

async fn run(session: &mut Session, sql: &str) -> Output {
    let stmt = srbackup::sql::parse_one(sql).expect("bench statement parses");
    session
        .execute(&stmt)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn stored_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in walk(dir) {
        total += std::fs::metadata(entry).map(|m| m.len()).unwrap_or(0);
    }
    total
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn report(what: &str, rows: u64, bytes: u64, secs: f64) {
    println!(
        "{what:<34} {rows:>10} rows {secs:>7.2} s {:>12.0} rows/s {:>8.1} MB/s",
        rows as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

/// `engine -- csv FILE`: load one CSV file into a DUPLICATE KEY table and report throughput
/// and peak memory (a bulk load must stay bounded whatever the file size).
async fn load_csv(path: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut session = Session::open(&dir.path().join("cluster")).expect("cluster opens");
    run(&mut session, "CREATE DATABASE bench").await;
    run(
        &mut session,
        "CREATE TABLE bench.dup (id BIGINT NOT NULL, k INT, name VARCHAR(32), amount DECIMAL(12, 2), day DATE) \
         DUPLICATE KEY (id) DISTRIBUTED BY HASH (id) BUCKETS 8",
    )
    .await;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    let out = run(
        &mut session,
        &format!(
            "INSERT INTO bench.dup SELECT * FROM FILES(\"path\" = \"{path}\", \"format\" = \"csv\")"
        ),
    )
    .await;
    let secs = t.elapsed().as_secs_f64();
    println!("{out:?}");
    println!(
        "loaded {:.2} GB of CSV in {secs:.1} s = {:.1} MB/s",
        bytes as f64 / 1e9,
        bytes as f64 / secs / 1e6
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "csv") {
        load_csv(&args[i + 1]).await;
        print_peak_rss();
        return;
    }
    let rows = rows_arg();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut session = Session::open(&dir.path().join("cluster")).expect("cluster opens");
    run(&mut session, "CREATE DATABASE bench").await;
    run(&mut session, "USE bench").await;
    run(
        &mut session,
        "CREATE TABLE dup (id BIGINT NOT NULL, k INT, name VARCHAR(32), amount DECIMAL(12, 2), day DATE) \
         DUPLICATE KEY (id) PARTITION BY RANGE (day) (PARTITION p2023 VALUES LESS THAN ('2024-01-01'), \
         PARTITION p2024 VALUES LESS THAN ('2025-01-01')) DISTRIBUTED BY HASH (id) BUCKETS 8",
    )
    .await;
    let generated = format!(
        "SELECT value, CAST(value % 1000 AS INT), concat('name_', CAST(value % 5000 AS VARCHAR)), \
         CAST(value % 100000 AS DECIMAL(12, 2)) / 100, CAST(CAST(19358 + value % 700 AS INT) AS DATE) \
         FROM generate_series(1, {rows})"
    );
    let data = dir.path().join("cluster/data");
    let t = Instant::now();
    run(&mut session, &format!("INSERT INTO dup {generated}")).await;
    report(
        "INSERT SELECT (duplicate key)",
        rows,
        stored_bytes(&data),
        t.elapsed().as_secs_f64(),
    );

    let before = stored_bytes(&data);
    run(
        &mut session,
        "CREATE TABLE pk (id BIGINT NOT NULL, k INT, name VARCHAR(32), amount DECIMAL(12, 2), day DATE) \
         PRIMARY KEY (id) DISTRIBUTED BY HASH (id) BUCKETS 8",
    )
    .await;
    let t = Instant::now();
    run(&mut session, &format!("INSERT INTO pk {generated}")).await;
    report(
        "INSERT SELECT (primary key, merged)",
        rows,
        stored_bytes(&data) - before,
        t.elapsed().as_secs_f64(),
    );

    // A CSV file of the same rows, loaded through FILES().
    let csv = dir.path().join("rows.csv");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&csv).expect("csv"));
        for i in 1..=rows {
            writeln!(
                w,
                "{i},{},name_{},{}.{:02},2024-{:02}-{:02}",
                i % 1000,
                i % 5000,
                i % 1000,
                i % 100,
                i % 12 + 1,
                i % 28 + 1
            )
            .expect("write csv");
        }
    }
    let csv_bytes = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    run(
        &mut session,
        &format!(
            "INSERT INTO dup SELECT * FROM FILES(\"path\" = \"{}\", \"format\" = \"csv\")",
            csv.display()
        ),
    )
    .await;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{:<34} {rows:>10} rows {secs:>7.2} s {:>12.0} rows/s {:>8.1} MB/s of CSV",
        "FILES csv load",
        rows as f64 / secs,
        csv_bytes as f64 / secs / 1e6
    );

    let total = rows * 2;
    let t = Instant::now();
    run(&mut session, "SELECT count(*) FROM dup").await;
    report("scan: SELECT count(*)", total, 0, t.elapsed().as_secs_f64());
    let t = Instant::now();
    run(
        &mut session,
        "SELECT k, count(*), sum(amount) FROM dup GROUP BY k",
    )
    .await;
    report(
        "scan: GROUP BY k (1000 groups)",
        total,
        0,
        t.elapsed().as_secs_f64(),
    );
    let t = Instant::now();
    run(&mut session, "CHECKSUM TABLE dup").await;
    report("CHECKSUM TABLE", total, 0, t.elapsed().as_secs_f64());
    print_peak_rss();
}

/// Peak resident memory of the whole run.
fn print_peak_rss() {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        println!("peak RSS: {}", line.trim_start_matches("VmHWM:").trim());
    }
}
