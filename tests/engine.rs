//! The embedded engine end to end: DDL, loads into every partitioning style, key models,
//! CHECKSUM TABLE, pins against compaction and GC, staging and publish, crash safety.

use std::path::{Path, PathBuf};

use srbackup::catalog::{self, ObjectDef, PartitionBound};
use srbackup::engine::maintenance::{self, Publish};
use srbackup::engine::storage::read_rowset;
mod common;

use common::{fails, rows, run};
use srbackup::results::ResultSet;
use srbackup::session::Session;

const FIXTURE: &str = include_str!("../fixtures/sr_hub.sql");

fn cluster() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster");
    (dir, path)
}

async fn scalar(session: &mut Session, sql: &str) -> String {
    let rs = rows(session, sql).await;
    rs.rows[0][0].clone().unwrap_or_else(|| "NULL".into())
}

async fn count(session: &mut Session, table: &str) -> u64 {
    scalar(session, &format!("SELECT count(*) FROM {table}"))
        .await
        .parse()
        .unwrap()
}

async fn checksum(session: &mut Session, table: &str) -> String {
    rows(session, &format!("CHECKSUM TABLE {table}")).await.rows[0][1]
        .clone()
        .unwrap()
}

async fn fixture() -> (tempfile::TempDir, Session) {
    let (dir, path) = cluster();
    let mut session = Session::open(&path).unwrap();
    run(&mut session, FIXTURE).await;
    (dir, session)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fixture_builds_sr_hub_with_data_in_every_object() {
    let (_dir, mut s) = fixture().await;
    assert_eq!(count(&mut s, "sr_hub.sr_member").await, 3000);
    assert_eq!(
        count(&mut s, "sr_hub.sr_pmc").await,
        300,
        "the primary key upsert replaced a row"
    );
    assert_eq!(count(&mut s, "sr_hub.sr_event").await, 3);
    assert_eq!(count(&mut s, "sr_hub.sr_region").await, 4);
    assert_eq!(count(&mut s, "sr_hub.sr_mv1").await, 20);
    assert_eq!(count(&mut s, "sr_hub.sr_mv2").await, 26);
    assert_eq!(count(&mut s, "sr_hub.sr_view1").await, 1000);
    assert_eq!(count(&mut s, "sr_hub.sr_view2").await, 20);
    // The MV holds what its query computes.
    let mv = rows(
        &mut s,
        "SELECT city_code, members, total_score FROM sr_hub.sr_mv1 ORDER BY city_code",
    )
    .await;
    let direct = rows(
        &mut s,
        "SELECT city_code, count(*), sum(score) FROM sr_hub.sr_member GROUP BY city_code ORDER BY city_code",
    )
    .await;
    assert_eq!(mv.rows, direct.rows);
    // A view with named columns over another view.
    let v2 = rows(
        &mut s,
        "SELECT * FROM sr_hub.sr_view2 ORDER BY city_code LIMIT 1",
    )
    .await;
    assert_eq!(v2.columns, vec!["city_code", "verified_members"]);
    let tables = rows(&mut s, "SHOW TABLES FROM sr_hub").await;
    let names: Vec<_> = tables.rows.iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(
        names,
        [
            "sr_event",
            "sr_member",
            "sr_mv1",
            "sr_mv2",
            "sr_pmc",
            "sr_region",
            "sr_view1",
            "sr_view2"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_models_give_the_results_starrocks_would() {
    let (_dir, mut s) = fixture().await;
    // AGGREGATE: SUM, MAX (NULL ignored), REPLACE (last loaded).
    let ev = rows(&mut s, "SELECT event_day, kind, hits, top_score, last_city FROM sr_hub.sr_event ORDER BY event_day").await;
    let got: Vec<Vec<String>> = ev
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.clone().unwrap_or("NULL".into()))
                .collect()
        })
        .collect();
    assert_eq!(
        got,
        vec![
            vec!["2024-01-05", "login", "15", "9.75", "7"],
            vec!["2024-02-10", "upload", "1", "0.25", "1"],
            vec!["2024-03-01", "login", "10", "4.00", "9"],
        ]
    );
    // UNIQUE: the later row for a key wins, also across loads.
    assert_eq!(
        scalar(
            &mut s,
            "SELECT city_name FROM sr_hub.sr_region WHERE city_code = 1"
        )
        .await,
        "New Harbor"
    );
    // PRIMARY: likewise.
    assert_eq!(
        scalar(&mut s, "SELECT project FROM sr_hub.sr_pmc WHERE pmc_id = 1").await,
        "project_renamed"
    );
    // REPLACE_IF_NOT_NULL keeps the last non-NULL value; within one load, later rows win.
    run(
        &mut s,
        "CREATE TABLE sr_hub.agg (k INT NOT NULL, v INT REPLACE_IF_NOT_NULL, m INT MIN) AGGREGATE KEY (k) \
         DISTRIBUTED BY HASH (k) BUCKETS 1;
         INSERT INTO sr_hub.agg VALUES (1, 10, 5), (1, NULL, 7);
         INSERT INTO sr_hub.agg VALUES (1, NULL, 3), (2, 1, 1);",
    )
    .await;
    let agg = rows(&mut s, "SELECT k, v, m FROM sr_hub.agg ORDER BY k").await;
    assert_eq!(
        agg.rows[0],
        vec![Some("1".into()), Some("10".into()), Some("3".into())]
    );
    assert_eq!(agg.rows.len(), 2);
    // DUPLICATE keeps every row.
    run(
        &mut s,
        "CREATE TABLE sr_hub.dup (k INT, v INT) DUPLICATE KEY (k);
         INSERT INTO sr_hub.dup VALUES (1, 1), (1, 1); INSERT INTO sr_hub.dup VALUES (1, 1);",
    )
    .await;
    assert_eq!(count(&mut s, "sr_hub.dup").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_land_in_the_right_partition_for_every_partitioning_style() {
    let (_dir, path) = cluster();
    let mut s = Session::open(&path).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; USE d;
         CREATE TABLE r (day DATE NOT NULL, v INT) PARTITION BY RANGE (day) (
            PARTITION p0 VALUES LESS THAN ('2024-01-01'),
            PARTITION p1 VALUES [('2024-01-01'), ('2024-02-01')),
            PARTITION p2 VALUES LESS THAN MAXVALUE) DISTRIBUTED BY HASH (day) BUCKETS 3;
         INSERT INTO r VALUES ('2023-12-31', 1), ('2024-01-01', 2), ('2024-01-31', 3), ('2024-02-01', 4), ('2099-01-01', 5);
         CREATE TABLE l (region VARCHAR(8) NOT NULL, v INT) PARTITION BY LIST (region) (
            PARTITION pe VALUES IN ('east', 'north'), PARTITION pw VALUES IN ('west'));
         INSERT INTO l VALUES ('east', 1), ('north', 2), ('west', 3);
         CREATE TABLE e (ts DATETIME NOT NULL, v INT) PARTITION BY date_trunc('day', ts);
         INSERT INTO e VALUES ('2024-05-01 10:00:00', 1), ('2024-05-01 23:59:59', 2), ('2024-05-02 00:00:00', 3);
         CREATE TABLE c (city VARCHAR(16) NOT NULL, v INT) PARTITION BY city;
         INSERT INTO c VALUES ('Oslo', 1), ('Lima', 2), ('Oslo', 3);
         CREATE TABLE u (v INT);
         INSERT INTO u VALUES (1), (2);",
    )
    .await;
    let per_partition = |rs: &ResultSet| -> Vec<(String, String)> {
        // StarRocks' columns: PartitionName second, RowCount last.
        assert_eq!(rs.columns[1], "PartitionName");
        assert_eq!(rs.columns.last().map(String::as_str), Some("RowCount"));
        (0..rs.rows.len())
            .map(|i| {
                (
                    rs.get(i, "PartitionName").unwrap().to_string(),
                    rs.get(i, "RowCount").unwrap().to_string(),
                )
            })
            .collect()
    };
    let r = rows(&mut s, "SHOW PARTITIONS FROM r").await;
    assert_eq!(
        per_partition(&r),
        [
            ("p0".into(), "1".into()),
            ("p1".into(), "2".into()),
            ("p2".into(), "2".into())
        ]
    );
    let l = rows(&mut s, "SHOW PARTITIONS FROM l").await;
    assert_eq!(
        per_partition(&l),
        [("pe".into(), "2".into()), ("pw".into(), "1".into())]
    );
    let e = rows(&mut s, "SHOW PARTITIONS FROM e").await;
    assert_eq!(
        per_partition(&e),
        [
            ("p20240501".into(), "2".into()),
            ("p20240502".into(), "1".into())
        ]
    );
    let c = rows(&mut s, "SHOW PARTITIONS FROM c").await;
    assert_eq!(
        per_partition(&c),
        [("pOslo".into(), "2".into()), ("pLima".into(), "1".into())]
    );
    let u = rows(&mut s, "SHOW PARTITIONS FROM u").await;
    assert_eq!(per_partition(&u), [("u".into(), "2".into())]);
    // Partition DDL.
    run(
        &mut s,
        "ALTER TABLE l ADD PARTITION ps VALUES IN ('south'); INSERT INTO l VALUES ('south', 4);",
    )
    .await;
    assert_eq!(count(&mut s, "l").await, 4);
    run(&mut s, "ALTER TABLE l DROP PARTITION pe").await;
    assert_eq!(count(&mut s, "l").await, 2);
    run(&mut s, "TRUNCATE TABLE r PARTITION (p1)").await;
    assert_eq!(count(&mut s, "r").await, 3);
    run(&mut s, "TRUNCATE TABLE r").await;
    assert_eq!(count(&mut s, "r").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_no_partition_holds_rejects_the_whole_load() {
    let (_dir, path) = cluster();
    let mut s = Session::open(&path).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; USE d; CREATE TABLE r (day DATE NOT NULL, v INT) PARTITION BY RANGE (day) (
            PARTITION p0 VALUES LESS THAN ('2024-01-01'));
         INSERT INTO r VALUES ('2023-01-01', 0);",
    )
    .await;
    let err = fails(
        &mut s,
        "INSERT INTO r VALUES ('2023-05-01', 1), ('2030-01-01', 2), ('2023-06-01', 3)",
    )
    .await;
    assert!(
        err.contains("row 2 has partition value (2030-01-01)"),
        "{err}"
    );
    assert_eq!(
        count(&mut s, "r").await,
        1,
        "nothing of the failed load is visible"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_error_naming_the_object_and_nothing_changes() {
    let (_dir, mut s) = fixture().await;
    let before = checksum(&mut s, "sr_hub.sr_member").await;
    let cases = [
        "SELECT * FROM sr_hubb.sr_member",
        "INSERT INTO sr_hub.sr_membr VALUES (1)",
        "TRUNCATE TABLE sr_hub.sr_member PARTITION (p9)",
        "INSERT INTO sr_hub.sr_member VALUES (1, 'x', 'not a date', 1, true, 1.0, NULL)",
        "INSERT INTO sr_hub.sr_member VALUES (1, 'x', '2024-01-01')",
        "INSERT INTO sr_hub.sr_member (sr_id, reg_date) VALUES (1, '2024-01-01')",
        "INSERT INTO sr_hub.sr_member (sr_id, nam, reg_date) VALUES (1, 'x', '2024-01-01')",
        "INSERT INTO sr_hub.sr_region VALUES ('east', 9, 'a name far longer than thirty-two characters')",
        "CREATE TABLE sr_hub.sr_member (a INT)",
        "CREATE TABLE sr_hub.t (a INTT)",
        "CREATE TABLE sr_hub.t (a INT, b INT) UNIQUE KEY (b)",
        "CREATE TABLE sr_hub.t (a DOUBLE, b INT SUM) AGGREGATE KEY (a)",
        "CREATE TABLE sr_hub.t (a INT, b INT) AGGREGATE KEY (a)",
        "CREATE TABLE sr_hub.t (a INT, b INT SUM) DUPLICATE KEY (a)",
        "CREATE TABLE sr_hub.t (d DATE) PARTITION BY RANGE (d) (PARTITION p1 VALUES LESS THAN ('2024-01-01'), PARTITION p2 VALUES [('2023-06-01'), ('2024-06-01')))",
        "CREATE TABLE sr_hub.t (d DATE) PARTITION BY RANGE (dd) (PARTITION p1 VALUES LESS THAN ('2024-01-01'))",
        "CREATE VIEW sr_hub.v AS SELECT * FROM sr_hub.nope",
        "REFRESH MATERIALIZED VIEW sr_hub.sr_view1",
        "DROP VIEW sr_hub.sr_member",
        "DROP FUNCTION sr_hub.sr_udf9",
        "ALTER TABLE sr_hub.sr_event ADD PARTITION p1 VALUES LESS THAN ('2030-01-01')",
        "INSERT INTO sr_hub.sr_mv1 VALUES (1, 1, 1)",
        "CREATE EXTERNAL CATALOG c2 PROPERTIES (\"uri\" = \"x\")",
    ];
    let mut rendered = String::new();
    for sql in cases {
        rendered.push_str(&format!("=== {sql}\n{}\n", fails(&mut s, sql).await));
    }
    insta::assert_snapshot!(rendered);
    assert_eq!(checksum(&mut s, "sr_hub.sr_member").await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_loads_csv_and_parquet_and_refuses_unparsable_files() {
    let (dir, path) = cluster();
    let mut s = Session::open(&path).unwrap();
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "id|name|day\n1|a|2024-01-01\n2|\"b|c\"|2024-01-02\n").unwrap();
    run(
        &mut s,
        &format!(
            "CREATE DATABASE d; USE d; CREATE TABLE t (id INT NOT NULL, name VARCHAR(8), day DATE) DUPLICATE KEY (id);
             INSERT INTO t SELECT * FROM FILES(\"path\" = \"{}\", \"format\" = \"csv\", \"csv.column_separator\" = \"|\", \"csv.skip_header\" = \"1\");",
            csv.display()
        ),
    )
    .await;
    assert_eq!(count(&mut s, "t").await, 2);
    assert_eq!(
        scalar(&mut s, "SELECT name FROM t WHERE id = 2").await,
        "b|c"
    );
    // Parquet: the table's own rowset files are Parquet; load them into a copy.
    let files: Vec<PathBuf> = walk(&path.join("data"));
    let dir2 = dir.path().join("parquet");
    std::fs::create_dir_all(&dir2).unwrap();
    for (i, f) in files.iter().enumerate() {
        std::fs::copy(f, dir2.join(format!("{i}.parquet"))).unwrap();
    }
    run(
        &mut s,
        &format!(
            "CREATE TABLE t2 (id INT NOT NULL, name VARCHAR(8), day DATE) DUPLICATE KEY (id);
             INSERT INTO t2 SELECT * FROM FILES(\"path\" = \"{}\", \"format\" = \"parquet\");",
            dir2.display()
        ),
    )
    .await;
    assert_eq!(checksum(&mut s, "t2").await, checksum(&mut s, "t").await);
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "1,x,2024-01-01\nnot-a-number,y,2024-01-02\n").unwrap();
    let err = fails(
        &mut s,
        &format!(
            "INSERT INTO t SELECT * FROM FILES(\"path\" = \"{}\", \"format\" = \"csv\")",
            bad.display()
        ),
    )
    .await;
    assert!(
        err.contains("column id (INT) cannot hold the loaded values"),
        "{err}"
    );
    assert_eq!(count(&mut s, "t").await, 2);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn checksum_is_order_independent_and_changes_with_any_row() {
    let (_dir, path) = cluster();
    let mut s = Session::open(&path).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; USE d;
         CREATE TABLE a (k INT, v VARCHAR(8)) DISTRIBUTED BY RANDOM BUCKETS 3;
         CREATE TABLE b (k INT, v VARCHAR(8)) DISTRIBUTED BY HASH (k) BUCKETS 5;
         INSERT INTO a VALUES (1, 'x'), (2, 'y'), (3, NULL);
         INSERT INTO b VALUES (3, NULL); INSERT INTO b VALUES (2, 'y'), (1, 'x');",
    )
    .await;
    assert_eq!(checksum(&mut s, "a").await, checksum(&mut s, "b").await);
    run(&mut s, "INSERT INTO b VALUES (4, 'z')").await;
    assert_ne!(checksum(&mut s, "a").await, checksum(&mut s, "b").await);
    run(
        &mut s,
        "CREATE TABLE c (k INT, v VARCHAR(8)); INSERT INTO c VALUES (1, 'x'), (2, 'y'), (3, 'w');",
    )
    .await;
    assert_ne!(
        checksum(&mut s, "a").await,
        checksum(&mut s, "c").await,
        "one changed value changes it"
    );
}

fn object_id(s: &mut Session, db: &str, name: &str) -> i64 {
    let conn = s.engine().catalog().view();
    let db = conn.database(db).unwrap().unwrap();
    conn.object(db.id, name).unwrap().unwrap().id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pin_keeps_its_version_readable_through_loads_compaction_and_gc() {
    let (_dir, mut s) = fixture().await;
    let member = object_id(&mut s, "sr_hub", "sr_member");
    let pin = maintenance::pin(s.engine(), "backup-1", &[member], None).unwrap();
    // The pin holds the table's rows and the rollup rows of its sync MV.
    let pinned_rows: i64 = pin
        .rowsets
        .iter()
        .filter(|r| r.rowset.rollup.is_none())
        .map(|r| r.rowset.rows)
        .sum();
    assert_eq!(pinned_rows, 3000);
    assert!(
        pin.rowsets
            .iter()
            .any(|r| r.rowset.rollup.as_deref() == Some("sr_member_by_city"))
    );
    // Loads and a compaction retire what the pin holds; GC must leave the pinned files.
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_member SELECT * FROM sr_hub.sr_member WHERE sr_id <= 500",
    )
    .await;
    let report = maintenance::compact(s.engine(), member).await.unwrap();
    assert!(report.rowsets_merged > 0, "{report:?}");
    maintenance::collect_garbage(s.engine()).unwrap();
    assert_eq!(count(&mut s, "sr_hub.sr_member").await, 3500);
    let mut reread = 0;
    for r in &pin.rowsets {
        let path = s.engine().file_path(&r.rowset.path);
        assert!(
            path.exists(),
            "GC deleted a pinned file: {}",
            path.display()
        );
        let bytes = std::fs::read(&path).unwrap();
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), r.rowset.sha256);
        if r.rowset.rollup.is_none() {
            reread += read_rowset(&path)
                .unwrap()
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>();
        }
    }
    assert_eq!(
        reread, 3000,
        "the pinned snapshot still reads the old version"
    );
    // Released, the retired ones go; the pinned rowsets still live stay.
    maintenance::release(s.engine(), pin.id).unwrap();
    let live: std::collections::HashSet<i64> = s
        .engine()
        .catalog()
        .view()
        .object_all_rowsets(member)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let retired: Vec<_> = pin
        .rowsets
        .iter()
        .filter(|r| !live.contains(&r.rowset.id))
        .collect();
    assert!(
        !retired.is_empty(),
        "the load and compaction retired some pinned rowsets"
    );
    let gc = maintenance::collect_garbage(s.engine()).unwrap();
    assert!(gc.files_removed >= retired.len(), "{gc:?}");
    for r in &pin.rowsets {
        let exists = s.engine().file_path(&r.rowset.path).exists();
        assert_eq!(exists, live.contains(&r.rowset.id), "{}", r.rowset.path);
    }
    assert_eq!(count(&mut s, "sr_hub.sr_member").await, 3500);
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_leaves_one_rowset_per_tablet_and_the_same_content() {
    let (_dir, path) = cluster();
    let mut s = Session::open(&path).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; USE d; CREATE TABLE t (k INT, v INT) DISTRIBUTED BY HASH (k) BUCKETS 2;
         INSERT INTO t VALUES (1, 1), (2, 2); INSERT INTO t VALUES (3, 3), (4, 4); INSERT INTO t VALUES (5, 5);",
    )
    .await;
    let before = checksum(&mut s, "t").await;
    let id = object_id(&mut s, "d", "t");
    maintenance::compact(s.engine(), id).await.unwrap();
    let conn = s.engine().catalog().view();
    for p in conn.partitions(id).unwrap() {
        for t in conn.tablets(p.id).unwrap() {
            assert!(conn.live_rowsets(t.id).unwrap().len() <= 1);
        }
    }
    assert_eq!(checksum(&mut s, "t").await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_staged_restore_is_invisible_until_one_publish_makes_it_whole() {
    let (_dir, mut s) = fixture().await;
    let pmc = object_id(&mut s, "sr_hub", "sr_pmc");
    let before = checksum(&mut s, "sr_hub.sr_pmc").await;
    let (def, parts, db_id) = {
        let conn = s.engine().catalog().view();
        let obj = conn.object_by_id(pmc).unwrap().unwrap();
        let parts: Vec<(String, PartitionBound)> = conn
            .partitions(pmc)
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.bound))
            .collect();
        (obj.def, parts, obj.db_id)
    };
    assert!(matches!(def, ObjectDef::Table { .. }));
    // Stage a copy under a new name, ingest copies of the files.
    let staged = maintenance::stage(s.engine(), db_id, "sr_pmc_copy", &def, &parts).unwrap();
    let pin = maintenance::pin(s.engine(), "copy", &[pmc], None).unwrap();
    for r in &pin.rowsets {
        let rel = format!("data/{staged}/{}.parquet", r.rowset.id);
        std::fs::create_dir_all(s.engine().file_path(&format!("data/{staged}"))).unwrap();
        std::fs::copy(
            s.engine().file_path(&r.rowset.path),
            s.engine().file_path(&rel),
        )
        .unwrap();
        let row = catalog::RowsetRow {
            path: rel,
            ..r.rowset.clone()
        };
        maintenance::ingest(s.engine(), staged, &r.partition, r.bucket, &row).unwrap();
    }
    maintenance::release(s.engine(), pin.id).unwrap();
    let err = fails(&mut s, "SELECT count(*) FROM sr_hub.sr_pmc_copy").await;
    assert!(
        err.contains("sr_pmc_copy"),
        "staged tables are invisible: {err}"
    );
    maintenance::publish(
        s.engine(),
        &[Publish::Replace {
            staged_id: staged,
            replaces: None,
        }],
    )
    .unwrap();
    assert_eq!(checksum(&mut s, "sr_hub.sr_pmc_copy").await, before);
    // Partition publish: an empty staged partition replaces sr_pmc's data in one commit.
    let empty = maintenance::stage(s.engine(), db_id, "sr_pmc", &def, &parts).unwrap();
    assert_eq!(
        count(&mut s, "sr_hub.sr_pmc").await,
        300,
        "staging changes nothing visible"
    );
    maintenance::publish(
        s.engine(),
        &[Publish::Partitions {
            staged_id: empty,
            target_id: pmc,
            partitions: vec!["sr_pmc".into()],
        }],
    )
    .unwrap();
    assert_eq!(count(&mut s, "sr_hub.sr_pmc").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_killed_midway_leaves_the_previous_version_and_gc_cleans_up() {
    let (_dir, path) = cluster();
    let mut s = Session::open(&path).unwrap();
    run(&mut s, "CREATE DATABASE d; CREATE TABLE d.t (k BIGINT, v VARCHAR(32)) DISTRIBUTED BY HASH (k) BUCKETS 4; INSERT INTO d.t VALUES (1, 'one');").await;
    let before = checksum(&mut s, "d.t").await;
    drop(s);
    // A load big enough to be killed while it writes files.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_srbackup"))
        .args(["--cluster", path.to_str().unwrap(), "sql"])
        .arg("INSERT INTO d.t SELECT value, concat('row_', CAST(value AS VARCHAR)) FROM generate_series(1, 20000000)")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it has started writing rowset files, then kill -9.
    let data = path.join("data");
    for _ in 0..600 {
        if walk(&data).len() > 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the load must have been killed, not finished"
    );
    let mut s = Session::open(&path).unwrap();
    assert_eq!(
        count(&mut s, "d.t").await,
        1,
        "the catalog is at the previous version"
    );
    assert_eq!(checksum(&mut s, "d.t").await, before);
    let orphans = walk(&data).len();
    let gc = maintenance::collect_garbage(s.engine()).unwrap();
    assert!(gc.files_removed + 1 >= orphans, "{gc:?} of {orphans}");
    assert_eq!(walk(&data).len(), 1, "only the committed rowset is left");
    assert_eq!(checksum(&mut s, "d.t").await, before);
}

#[test]
fn a_second_writer_gets_a_clear_busy_error_and_readers_keep_working() {
    let (_dir, path) = cluster();
    std::fs::create_dir_all(&path).unwrap();
    let file = path.join("catalog.db");
    let mut first = catalog::Catalog::open(&file).unwrap();
    first.write(|tx| tx.create_database("d")).unwrap();
    // Another process holds the write lock.
    let holder = rusqlite::Connection::open(&file).unwrap();
    holder
        .execute_batch(
            "BEGIN IMMEDIATE; INSERT INTO databases (name, created_at) VALUES ('x', 'now');",
        )
        .unwrap();
    let mut second =
        catalog::Catalog::open_with_timeout(&file, std::time::Duration::from_millis(200)).unwrap();
    let err = second.write(|tx| tx.create_database("e")).unwrap_err();
    assert!(matches!(err, catalog::CatalogError::Busy { .. }), "{err:?}");
    assert!(err.to_string().contains("is busy"), "{err}");
    // Readers see the last committed state meanwhile.
    let dbs = second.view().databases().unwrap();
    assert_eq!(
        dbs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["d"]
    );
    holder.execute_batch("ROLLBACK").unwrap();
    second.write(|tx| tx.create_database("e")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn show_create_table_describes_each_fixture_object() {
    let (_dir, mut s) = fixture().await;
    let mut out = String::new();
    for t in [
        "sr_member",
        "sr_pmc",
        "sr_event",
        "sr_region",
        "sr_mv1",
        "sr_view2",
    ] {
        let rs = rows(&mut s, &format!("SHOW CREATE TABLE sr_hub.{t}")).await;
        out.push_str(rs.rows[0][1].as_deref().unwrap());
        out.push_str("\n\n");
    }
    insta::assert_snapshot!(out);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mv_whose_base_table_is_gone_stays_inactive_and_says_why() {
    let (_dir, mut s) = fixture().await;
    run(
        &mut s,
        "ALTER MATERIALIZED VIEW sr_hub.sr_mv2 INACTIVE; DROP TABLE sr_hub.sr_pmc;",
    )
    .await;
    let err = fails(&mut s, "REFRESH MATERIALIZED VIEW sr_hub.sr_mv2")
        .await
        .replace("\n  │ ", " ");
    assert!(
        err.contains("base table sr_hub.sr_pmc does not exist; restore it, then ALTER MATERIALIZED VIEW sr_mv2 ACTIVE"),
        "{err}"
    );
    let err = fails(&mut s, "ALTER MATERIALIZED VIEW sr_hub.sr_mv2 ACTIVE").await;
    assert!(
        err.contains("base table sr_hub.sr_pmc does not exist"),
        "{err}"
    );
    let mvs = rows(&mut s, "SHOW MATERIALIZED VIEWS FROM sr_hub").await;
    let mv2 = mvs
        .rows
        .iter()
        .find(|r| r[2].as_deref() == Some("sr_mv2"))
        .unwrap();
    assert_eq!(mv2[4].as_deref(), Some("false"));
    // Once the base table is back, it activates and refreshes.
    run(
        &mut s,
        "CREATE TABLE sr_hub.sr_pmc (pmc_id INT NOT NULL, sr_id INT NOT NULL, project VARCHAR(32), since DATE)
         PRIMARY KEY (pmc_id) DISTRIBUTED BY HASH (pmc_id) BUCKETS 2;
         INSERT INTO sr_hub.sr_pmc VALUES (1, 1, 'solo', '2024-01-01');
         ALTER MATERIALIZED VIEW sr_hub.sr_mv2 ACTIVE; REFRESH MATERIALIZED VIEW sr_hub.sr_mv2;",
    )
    .await;
    assert_eq!(count(&mut s, "sr_hub.sr_mv2").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_select_during_a_concurrent_load_sees_the_old_or_the_new_version_never_a_mix() {
    let (_dir, path) = cluster();
    let mut s = Session::open(&path).unwrap();
    run(&mut s, "CREATE DATABASE d; CREATE TABLE d.t (k BIGINT, v INT) DISTRIBUTED BY HASH (k) BUCKETS 8; INSERT INTO d.t VALUES (0, 0);").await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_srbackup"))
        .args(["--cluster", path.to_str().unwrap(), "sql"])
        .arg("INSERT INTO d.t SELECT value, 1 FROM generate_series(1, 400000)")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let n = count(&mut s, "d.t").await;
        seen.insert(n);
        if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    seen.insert(count(&mut s, "d.t").await);
    assert!(
        seen.iter().all(|n| *n == 1 || *n == 400_001),
        "a query saw a partial load: {seen:?}"
    );
    assert!(seen.contains(&400_001));
}

/// A sync MV's rows against the same aggregate computed from its base table.
async fn assert_rollup_matches(s: &mut Session, mv: &str, direct: &str) {
    let from_mv = rows(s, &format!("SELECT * FROM {mv} ORDER BY 1")).await;
    let from_base = rows(s, &format!("{direct} ORDER BY 1")).await;
    assert_eq!(
        from_mv.rows, from_base.rows,
        "{mv} drifted from its base table"
    );
    assert!(!from_mv.rows.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_mv_is_maintained_on_every_load_and_equals_aggregating_its_table() {
    let (_dir, mut s) = fixture().await;
    let direct =
        "SELECT city_code, count(sr_id), sum(score) FROM sr_hub.sr_member GROUP BY city_code";
    assert_rollup_matches(&mut s, "sr_hub.sr_member_by_city", direct).await;
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_member SELECT * FROM sr_hub.sr_member WHERE sr_id % 7 = 0",
    )
    .await;
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_member VALUES (9001, 'late', '2025-03-03', 99, true, 5.5, NULL)",
    )
    .await;
    assert_rollup_matches(&mut s, "sr_hub.sr_member_by_city", direct).await;
    run(&mut s, "TRUNCATE TABLE sr_hub.sr_member PARTITION (p2)").await;
    assert_rollup_matches(&mut s, "sr_hub.sr_member_by_city", direct).await;
    // On a UNIQUE KEY table the rollup follows upserts (its tablets are rewritten).
    run(
        &mut s,
        "CREATE MATERIALIZED VIEW sr_hub.region_cities AS
           SELECT region, count(city_code), max(city_code) FROM sr_hub.sr_region GROUP BY region;
         INSERT INTO sr_hub.sr_region VALUES ('east', 1, 'Again'), ('east', 5, 'Fresh');",
    )
    .await;
    assert_rollup_matches(
        &mut s,
        "sr_hub.region_cities",
        "SELECT region, count(city_code), max(city_code) FROM sr_hub.sr_region GROUP BY region",
    )
    .await;
    let shown = rows(&mut s, "SHOW MATERIALIZED VIEWS FROM sr_hub").await;
    assert!(
        shown
            .rows
            .iter()
            .any(|r| r[2].as_deref() == Some("region_cities") && r[3].as_deref() == Some("ROLLUP"))
    );
    run(&mut s, "DROP MATERIALIZED VIEW sr_hub.region_cities").await;
    let err = fails(&mut s, "SELECT * FROM sr_hub.region_cities").await;
    assert!(err.contains("unknown table sr_hub.region_cities"), "{err}");
    // What a rollup cannot keep incrementally is refused at CREATE.
    let err = fails(&mut s, "CREATE MATERIALIZED VIEW sr_hub.bad AS SELECT city_code, avg(score) FROM sr_hub.sr_member GROUP BY city_code").await;
    assert!(err.contains("avg() cannot be kept incrementally"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_killed_midway_leaves_the_previous_mv_contents() {
    let (_dir, path) = cluster();
    let mut s = Session::open(&path).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; USE d; CREATE TABLE t (k BIGINT, v INT) DISTRIBUTED BY HASH (k) BUCKETS 4;
         INSERT INTO t VALUES (1, 1), (2, 2);
         CREATE MATERIALIZED VIEW mv REFRESH MANUAL AS SELECT k, v FROM t;
         REFRESH MATERIALIZED VIEW mv;
         INSERT INTO t SELECT value + 10, 1 FROM generate_series(1, 3000000);",
    )
    .await;
    assert_eq!(count(&mut s, "d.mv").await, 2);
    let before = checksum(&mut s, "d.mv").await;
    drop(s);
    let data = path.join("data");
    let files_before = walk(&data).len();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_srbackup"))
        .args([
            "--cluster",
            path.to_str().unwrap(),
            "sql",
            "REFRESH MATERIALIZED VIEW d.mv",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..1500 {
        if walk(&data).len() > files_before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    assert!(
        !child.wait().unwrap().success(),
        "the refresh must have been killed, not finished"
    );
    let mut s = Session::open(&path).unwrap();
    assert_eq!(count(&mut s, "d.mv").await, 2);
    assert_eq!(checksum(&mut s, "d.mv").await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_the_query_layer_refuses_is_reported_against_its_text() {
    let (_dir, mut s) = fixture().await;
    let err = fails(&mut s, "SELECT sr_id + name FROM sr_hub.sr_member").await;
    assert!(
        err.contains("srbackup::query") && err.contains("in this query"),
        "{err}"
    );
    let err = fails(&mut s, "SELECT nope FROM sr_hub.sr_member").await;
    assert!(err.contains("nope"), "the unknown column is named: {err}");
    // A broken query inside INSERT ... SELECT is the query's fault, not the catalog's.
    let err = fails(&mut s, "INSERT INTO sr_hub.sr_pmc SELECT FROM WHERE").await;
    assert!(
        err.contains("srbackup::query") && !err.contains("damaged"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_spares_files_a_writer_may_still_commit() {
    let (_dir, path) = cluster();
    let mut s = Session::open(&path).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; CREATE TABLE d.t (k INT); INSERT INTO d.t VALUES (1);",
    )
    .await;
    let dir = path
        .join("data")
        .join(object_id(&mut s, "d", "t").to_string());
    // A file that names no load lease and is new: someone may be about to commit it.
    std::fs::write(dir.join("incoming.parquet"), b"x").unwrap();
    // A file of a load lease that no longer exists: garbage.
    std::fs::write(dir.join("L999999-0-0.parquet"), b"x").unwrap();
    let gc = maintenance::collect_garbage(s.engine()).unwrap();
    assert!(
        dir.join("incoming.parquet").exists(),
        "a young unnamed file was deleted"
    );
    assert!(!dir.join("L999999-0-0.parquet").exists(), "{gc:?}");
    assert_eq!(count(&mut s, "d.t").await, 1);
}

/// `t PARTITION (p)` in a query would read every partition (wrong rows, no error): refused,
/// saying what to write instead. (Found by a QA session: it returned rows of every partition.)
#[tokio::test(flavor = "multi_thread")]
async fn a_query_naming_partitions_is_refused_not_answered_with_every_partition() {
    let (_dir, mut s) = fixture().await;
    let out = fails(&mut s, "SELECT * FROM sr_hub.sr_member PARTITION (p1)").await;
    assert!(
        out.contains("PARTITION (…) is not supported in a query")
            && out.contains("SHOW PARTITIONS"),
        "{out}"
    );
    // Without the clause the query runs.
    assert!(count(&mut s, "sr_hub.sr_member").await > 0);
}
