//! Parser throughput on the seed corpus: `cargo bench --bench parser`.
//!
//! Prints statements/second; run it before and after a grammar change and compare.

use std::time::{Duration, Instant};

fn main() {
    let corpus = include_str!("../fixtures/seed-statements.sql");
    let per_pass = srbackup::sql::parse(corpus)
        .expect("the seed corpus parses")
        .len();
    // Warm up, then run passes for a fixed wall time.
    for _ in 0..20 {
        std::hint::black_box(srbackup::sql::parse(corpus).ok());
    }
    let budget = Duration::from_secs(3);
    let start = Instant::now();
    let mut passes = 0u64;
    while start.elapsed() < budget {
        std::hint::black_box(srbackup::sql::parse(std::hint::black_box(corpus)).ok());
        passes += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let statements = passes * per_pass as u64;
    println!(
        "parser: {statements} statements in {secs:.2} s = {:.0} statements/s ({:.1} MB/s of SQL, {per_pass} statements per pass)",
        statements as f64 / secs,
        (passes as f64 * corpus.len() as f64) / secs / 1e6,
    );
}
