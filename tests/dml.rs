//! UPDATE, DELETE, ALTER TABLE RENAME / SWAP WITH and DEFAULT CURRENT_TIMESTAMP, as StarRocks
//! defines them, and what they must not do: change partitions they did not touch, leave a
//! synchronous MV behind its table, run over a table a restore is making, or survive a
//! backup and restore differently from the rows they wrote.

mod common;

use common::cli;
use common::{fails, rows, run};
use srbackup::session::Session;

async fn scalar(s: &mut Session, sql: &str) -> String {
    rows(s, sql).await.rows[0][0].clone().unwrap_or_default()
}

fn versions(rs: &srbackup::results::ResultSet) -> Vec<(String, String)> {
    (0..rs.rows.len())
        .map(|i| {
            (
                rs.get(i, "PartitionName").unwrap().to_string(),
                rs.get(i, "VisibleVersion").unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_rewrites_only_the_partitions_it_changes_and_keeps_sync_mvs_right() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; USE d;
         CREATE TABLE t (day DATE NOT NULL, k INT NOT NULL, v INT) DUPLICATE KEY (day, k)
           PARTITION BY RANGE (day) (PARTITION p1 VALUES LESS THAN ('2024-02-01'),
                                     PARTITION p2 VALUES LESS THAN ('2024-03-01'))
           DISTRIBUTED BY HASH (k) BUCKETS 3;
         CREATE MATERIALIZED VIEW by_k AS SELECT k, sum(v) FROM t GROUP BY k;
         INSERT INTO t VALUES ('2024-01-05', 1, 10), ('2024-01-06', 2, 20), ('2024-02-05', 1, 30),
                              ('2024-02-06', 3, 40), ('2024-02-07', 3, NULL);",
    )
    .await;
    let before = versions(&rows(&mut s, "SHOW PARTITIONS FROM t").await);
    // NULL conditions delete nothing (WHERE v > 25 is NULL for the NULL row).
    let out = run(&mut s, "DELETE FROM t WHERE day >= '2024-02-01' AND v > 25").await;
    assert!(format!("{out:?}").contains("2 rows affected"), "{out:?}");
    let after = versions(&rows(&mut s, "SHOW PARTITIONS FROM t").await);
    assert_eq!(
        after[0], before[0],
        "p1 had no matching row: its version stays"
    );
    assert_ne!(after[1], before[1], "p2 changed");
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM t").await, "3");
    // The synchronous MV reads the table's rows, not the deleted ones.
    let mv = rows(&mut s, "SELECT * FROM by_k ORDER BY k").await;
    let sums: Vec<Option<String>> = mv.rows.iter().map(|r| r[1].clone()).collect();
    assert_eq!(
        sums,
        vec![Some("10".into()), Some("20".into()), None],
        "{mv:?}"
    );
    // A statement that matches nothing changes nothing.
    let out = run(&mut s, "DELETE FROM t WHERE k = 99").await;
    assert!(format!("{out:?}").contains("0 rows affected"));
    assert_eq!(
        versions(&rows(&mut s, "SHOW PARTITIONS FROM t").await),
        after
    );
    // StarRocks' rules: on a DUPLICATE KEY table only simple conditions; WHERE is required.
    let e = fails(&mut s, "DELETE FROM t WHERE k = 1 OR v = 2").await;
    assert!(e.contains("is not allowed here"), "{e}");
    let e = fails(&mut s, "DELETE FROM t").await;
    assert!(e.contains("needs a WHERE clause"), "{e}");
    let e = fails(&mut s, "DELETE FROM by_k WHERE k = 1").await;
    assert!(e.contains("unknown table"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn update_changes_primary_key_rows_in_place_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; USE d;
         CREATE TABLE runs (scope STRING NOT NULL, label STRING NOT NULL,
                            state STRING NOT NULL DEFAULT \"ACTIVE\",
                            started_at DATETIME DEFAULT CURRENT_TIMESTAMP, finished_at DATETIME)
           PRIMARY KEY (scope, label);
         INSERT INTO runs (scope, label) VALUES ('backup', 'a'), ('backup', 'b'), ('restore', 'a');
         CREATE TABLE dup (k INT, v INT) DUPLICATE KEY (k);",
    )
    .await;
    // Defaults: the constant, and the load's time for CURRENT_TIMESTAMP.
    assert_eq!(
        scalar(
            &mut s,
            "SELECT count(*) FROM runs WHERE state = 'ACTIVE' AND started_at IS NOT NULL"
        )
        .await,
        "3"
    );
    let out = run(
        &mut s,
        "UPDATE runs SET state = 'FINISHED', finished_at = NOW() WHERE scope = 'backup' AND label = 'a'",
    )
    .await;
    assert!(format!("{out:?}").contains("1 rows affected"), "{out:?}");
    let t = rows(
        &mut s,
        "SELECT scope, label, state, finished_at IS NULL FROM runs ORDER BY scope, label",
    )
    .await;
    let got: Vec<Vec<Option<String>>> = t.rows.clone();
    assert_eq!(
        got,
        vec![
            vec![
                Some("backup".into()),
                Some("a".into()),
                Some("FINISHED".into()),
                Some("0".into())
            ],
            vec![
                Some("backup".into()),
                Some("b".into()),
                Some("ACTIVE".into()),
                Some("1".into())
            ],
            vec![
                Some("restore".into()),
                Some("a".into()),
                Some("ACTIVE".into()),
                Some("1".into())
            ],
        ]
    );
    // An expression over the row's old values.
    run(
        &mut s,
        "UPDATE runs SET state = concat(state, '-', label) WHERE scope = 'restore'",
    )
    .await;
    assert_eq!(
        scalar(&mut s, "SELECT state FROM runs WHERE scope = 'restore'").await,
        "ACTIVE-a"
    );
    let e = fails(&mut s, "UPDATE runs SET label = 'x' WHERE scope = 'backup'").await;
    assert!(e.contains("key column label cannot be updated"), "{e}");
    let e = fails(&mut s, "UPDATE dup SET v = 1 WHERE k = 1").await;
    assert!(e.contains("does not support update"), "{e}");
    let e = fails(&mut s, "UPDATE runs SET state = 'x'").await;
    assert!(e.contains("needs a WHERE clause"), "{e}");
    let e = fails(&mut s, "UPDATE runs SET nope = 1 WHERE 1 = 1").await;
    assert!(e.contains("has no column nope"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rename_and_swap_trade_names_atomically_and_deactivate_readers() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; USE d;
         CREATE TABLE a (k INT) DUPLICATE KEY (k); INSERT INTO a VALUES (1);
         CREATE TABLE b (k INT) DUPLICATE KEY (k); INSERT INTO b VALUES (2), (3);
         CREATE MATERIALIZED VIEW mv REFRESH MANUAL AS SELECT count(*) AS n FROM a;
         CREATE VIEW v AS SELECT * FROM a;
         CREATE TABLE r (k INT NOT NULL, g INT, v INT) DUPLICATE KEY (k);
         CREATE MATERIALIZED VIEW r_by_g AS SELECT g, sum(v) FROM r GROUP BY g;
         INSERT INTO r VALUES (1, 1, 10);",
    )
    .await;
    // A synchronous MV's name is taken in its database, for another MV as for a table.
    for sql in [
        "CREATE MATERIALIZED VIEW r_by_g AS SELECT k, sum(k) FROM a GROUP BY k",
        "CREATE TABLE r_by_g (k INT) DUPLICATE KEY (k)",
        "CREATE VIEW r_by_g AS SELECT 1",
    ] {
        let e = fails(&mut s, sql).await;
        assert!(e.contains("already exists"), "{sql}: {e}");
    }
    // A table with a synchronous MV keeps loading after a rename; the MV follows its rows.
    run(
        &mut s,
        "ALTER TABLE r RENAME r2; INSERT INTO r2 VALUES (2, 1, 5);",
    )
    .await;
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM r2").await, "2");
    let mv = rows(&mut s, "SELECT * FROM r_by_g").await;
    assert_eq!(
        mv.rows,
        vec![vec![Some("1".into()), Some("15".into())]],
        "{mv:?}"
    );
    run(&mut s, "ALTER TABLE a SWAP WITH b").await;
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM a").await, "2");
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM b").await, "1");
    // The MV read `a`; the table behind that name changed.
    let mvs = rows(&mut s, "SHOW MATERIALIZED VIEWS").await;
    assert_eq!(mvs.get(0, "is_active"), Some("false"), "{mvs:?}");
    run(&mut s, "ALTER TABLE b RENAME c").await;
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM c").await, "1");
    let e = fails(&mut s, "SELECT * FROM b").await;
    assert!(e.contains("unknown table"), "{e}");
    let e = fails(&mut s, "ALTER TABLE c RENAME a").await;
    assert!(e.contains("Table name[a] is already used"), "{e}");
    let e = fails(&mut s, "ALTER TABLE c RENAME c").await;
    assert!(e.contains("Same table name"), "{e}");
    let e = fails(&mut s, "ALTER TABLE a SWAP WITH a").await;
    assert!(e.contains("itself"), "{e}");
    let e = fails(&mut s, "ALTER TABLE a SWAP WITH v").await;
    assert!(e.contains("is a view"), "{e}");
    let e = fails(&mut s, "ALTER TABLE mv RENAME m2").await;
    assert!(e.contains("materialized view"), "{e}");
}

#[test]
fn rows_written_by_defaults_and_dml_survive_backup_and_restore() {
    let c = cli::cluster();
    cli::sql(
        &c,
        "CREATE DATABASE d; USE d;
         CREATE TABLE t (k INT NOT NULL, state STRING DEFAULT \"NEW\", at DATETIME DEFAULT CURRENT_TIMESTAMP)
           PRIMARY KEY (k);
         INSERT INTO t (k) VALUES (1), (2), (3);
         UPDATE t SET state = 'DONE' WHERE k = 2;
         DELETE FROM t WHERE k = 3;",
    );
    let before = cli::checksum(&c, "d.t");
    cli::sql(&c, "BACKUP DATABASE d SNAPSHOT s TO r");
    cli::sql(&c, "RESTORE SNAPSHOT s FROM r DATABASE d AS d2");
    assert_eq!(cli::checksum(&c, "d2.t"), before);
    // The restored table's default is still the load's time, not a constant.
    cli::sql(&c, "INSERT INTO d2.t (k) VALUES (4)");
    let out = cli::sql(
        &c,
        "SELECT count(*) AS n FROM d2.t WHERE k = 4 AND at IS NOT NULL AND state = 'NEW'",
    );
    assert!(out.contains("| 1 "), "{out}");
}

/// Two sessions incrementing one row: every UPDATE that reports success is in the result (a
/// conflicting one fails whole and says to run it again).
#[test]
fn concurrent_updates_of_one_row_lose_nothing_that_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    runtime().block_on(async {
        let mut s = Session::open(&cluster).unwrap();
        run(
            &mut s,
            "CREATE DATABASE d; CREATE TABLE d.n (k INT NOT NULL, v INT) PRIMARY KEY (k);
             INSERT INTO d.n VALUES (1, 0);",
        )
        .await;
    });
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let cluster = cluster.clone();
            std::thread::spawn(move || {
                runtime().block_on(async {
                    let mut s = Session::open(&cluster).unwrap();
                    let stmt =
                        srbackup::sql::parse_one("UPDATE d.n SET v = v + 1 WHERE k = 1").unwrap();
                    let mut ok = 0u64;
                    for _ in 0..25 {
                        match s.execute(&stmt).await {
                            Ok(_) => ok += 1,
                            Err(e) => {
                                let e = e.to_string();
                                assert!(e.contains("nothing was"), "{e}");
                            }
                        }
                    }
                    ok
                })
            })
        })
        .collect();
    let succeeded: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(succeeded > 0);
    runtime().block_on(async {
        let mut s = Session::open(&cluster).unwrap();
        assert_eq!(
            scalar(&mut s, "SELECT v FROM d.n WHERE k = 1").await,
            succeeded.to_string()
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn information_schema_is_read_only_and_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    run(
        &mut s,
        "CREATE DATABASE d; CREATE TABLE d.t (k INT) DUPLICATE KEY (k); INSERT INTO d.t VALUES (1);",
    )
    .await;
    let t = rows(
        &mut s,
        "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.tables WHERE TABLE_SCHEMA = 'd'",
    )
    .await;
    assert_eq!(t.rows, vec![vec![Some("t".into()), Some("1".into())]]);
    run(&mut s, "DROP TABLE d.t").await;
    let t = rows(
        &mut s,
        "SELECT count(*) FROM information_schema.tables WHERE TABLE_SCHEMA = 'd'",
    )
    .await;
    assert_eq!(t.rows[0][0].as_deref(), Some("0"));
    for sql in [
        "CREATE TABLE information_schema.x (k INT)",
        "INSERT INTO information_schema.tables (TABLE_NAME) VALUES ('x')",
        "DROP TABLE information_schema.tables",
        "DELETE FROM information_schema.tables WHERE 1 = 1",
        "CREATE DATABASE information_schema",
        "CREATE DATABASE INFORMATION_SCHEMA",
    ] {
        let e = fails(&mut s, sql).await.to_lowercase();
        assert!(e.contains("information_schema"), "{sql}: {e}");
    }
}

/// A RESTORE naming a table the snapshot does not hold (starrocks-br's `t_restored`) restores
/// the snapshot table it is a copy of, only into an existing table that fits it exactly, and
/// only when one snapshot table could be meant.
#[test]
fn a_restore_into_a_copy_needs_one_source_and_an_exact_fit() {
    let c = cli::cluster();
    let table = |name: &str, hash: &str| {
        format!(
            "CREATE TABLE sr_hub.{name} (k INT NOT NULL, v INT) DUPLICATE KEY (k) DISTRIBUTED BY HASH ({hash}) BUCKETS 2;"
        )
    };
    cli::sql(
        &c,
        &format!(
            "{} {} INSERT INTO sr_hub.a VALUES (1, 1), (2, 2); INSERT INTO sr_hub.a_b VALUES (3, 3);",
            table("a", "k"),
            table("a_b", "k")
        ),
    );
    cli::sql(
        &c,
        "BACKUP DATABASE sr_hub SNAPSHOT s TO r ON (TABLE a, TABLE a_b)",
    );
    let restore = |target: &str| {
        let (ok, out, err) = cli::srbackup(
            &c.path,
            &[
                "sql",
                &format!("RESTORE SNAPSHOT s FROM r DATABASE sr_hub ON (TABLE {target})"),
            ],
        );
        (ok, out, cli::flat(&err))
    };
    // Two snapshot tables could be meant.
    cli::sql(&c, &table("a_b_x", "k"));
    let (ok, _, err) = restore("a_b_x");
    assert!(
        !ok && err.contains("could be a copy of any of a, a_b"),
        "{err}"
    );
    // The copy distributes rows by another column: rows of one key would sit in two tablets.
    cli::sql(&c, &table("a_v", "v"));
    let (ok, _, err) = restore("a_v");
    assert!(!ok && err.contains("distribution differs"), "{err}");
    // No such copy.
    let (ok, _, err) = restore("a_missing");
    assert!(
        !ok && err.contains("no table sr_hub.a_missing exists"),
        "{err}"
    );
    // An exact copy takes the snapshot's rows.
    cli::sql(&c, &table("a_copy", "k"));
    let (ok, out, err) = restore("a_copy");
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        cli::checksum(&c, "sr_hub.a_copy"),
        cli::checksum(&c, "sr_hub.a")
    );
}
