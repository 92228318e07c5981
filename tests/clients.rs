//! The tools StarRocks users already run, unmodified, against `srbackup serve` on 127.0.0.1:
//! every engine type through PyMySQL and mysql-connector-python (pure and C extension),
//! SQLAlchemy's inspector and Core with the StarRocks and the MySQL dialects, starrocks-br's
//! whole backup and restore cycle, and the introspection the `mariadb` client and IDEs send.
//!
//! `scripts/test` installs the clients (tests/clients/requirements.txt into target/pyenv,
//! named by SRBACKUP_PYTHON; mariadb-client from Debian).

use std::path::{Path, PathBuf};

mod common;

use common::server::*;
use common::{cluster_with_hub, run};
use srbackup::session::Session;

/// A cluster with the sr_hub fixture and a local repository `test_repo`.
async fn hub(dir: &Path) -> PathBuf {
    cluster_with_hub(dir, &dir.join("repository")).await
}

fn args(server: &Server, more: &[String]) -> Vec<String> {
    let mut a = vec![
        "--port".to_string(),
        server.port.to_string(),
        "--password".to_string(),
        ROOT_PW.to_string(),
    ];
    a.extend_from_slice(more);
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_type_reads_back_the_same_through_three_drivers() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    let mut s = Session::open(&cluster).unwrap();
    run(
        &mut s,
        "CREATE DATABASE types;
         CREATE TABLE types.all_types (
            id INT NOT NULL, b BOOLEAN, ti TINYINT, si SMALLINT, i INT, bi BIGINT, li LARGEINT,
            f FLOAT, d DOUBLE, `dec` DECIMAL(10, 3), c CHAR(4), vc VARCHAR(16), s STRING,
            dt DATE, ts DATETIME
         ) PRIMARY KEY (id) DISTRIBUTED BY HASH (id) BUCKETS 1;
         INSERT INTO types.all_types VALUES
            (1, TRUE, -128, -32768, -2147483648, -9223372036854775808,
             -99999999999999999999999999999999999999, -1.5, -2.25, -1234567.891, 'ab',
             'héllo wörld', 'long text, with ''quotes''', '0001-01-01', '2026-11-29 20:10:05'),
            (2, FALSE, 127, 32767, 2147483647, 9223372036854775807,
             99999999999999999999999999999999999999, 3.25, 1e300, 9999999.999, 'abcd', '', 'x',
             '9999-12-31', '2026-11-29 20:10:05.123456'),
            (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
    )
    .await;
    drop(s);
    let server = Server::start(&cluster);
    let out = python_client("driver_types.py", &args(&server, &[]));
    assert!(out.contains("0 failures"), "{out}");
    // The stock client prints the same text for DATETIME, BOOLEAN and DECIMAL.
    let t = table_of(
        server.port,
        "SELECT b, `dec`, ts FROM types.all_types WHERE id = 2",
    );
    assert_eq!(
        t[1],
        vec!["0", "9999999.999", "2026-11-29 20:10:05.123456"],
        "{t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_inspects_and_queries_with_both_dialects() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = hub(dir.path()).await;
    let server = Server::start(&cluster);
    let out = python_client("sqlalchemy_check.py", &args(&server, &[]));
    assert!(out.contains("0 failures"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starrocks_br_backs_up_and_restores_unmodified() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = hub(dir.path()).await;
    let server = Server::start(&cluster);
    // The tool's console script sits beside the interpreter scripts/test installed it with.
    let python = PathBuf::from(python());
    let br = python
        .parent()
        .map(|d| d.join("starrocks-br"))
        .filter(|p| p.exists())
        .expect("starrocks-br is installed beside SRBACKUP_PYTHON (scripts/test does it)");
    let out = python_client(
        "starrocks_br.py",
        &args(
            &server,
            &[
                "--dir".into(),
                dir.path().display().to_string(),
                "--br".into(),
                br.display().to_string(),
            ],
        ),
    );
    assert!(out.contains("all checks passed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_client_introspects_as_with_starrocks() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = hub(dir.path()).await;
    let server = Server::start(&cluster);
    let port = server.port;
    let t = table_of(port, "SHOW VARIABLES LIKE 'version%'");
    assert_eq!(t[0], vec!["Variable_name", "Value"]);
    assert_eq!(t.len(), 3, "{t:?}");
    let t = table_of(port, "SHOW FULL TABLES FROM sr_hub LIKE 'sr_%'");
    assert_eq!(t[0], vec!["Tables_in_sr_hub", "Table_type"]);
    assert!(t.contains(&vec!["sr_member".to_string(), "BASE TABLE".to_string()]));
    assert!(t.contains(&vec!["sr_view1".to_string(), "VIEW".to_string()]));
    let t = table_of(port, "DESC sr_hub.sr_member");
    assert_eq!(
        t[0],
        vec!["Field", "Type", "Null", "Key", "Default", "Extra"]
    );
    assert_eq!(t[1], vec!["sr_id", "int", "NO", "true", "NULL", ""]);
    let t = table_of(port, "SHOW TABLE STATUS FROM sr_hub WHERE Name = 'sr_pmc'");
    assert_eq!(t[0][0], "Name");
    assert_eq!(t.len(), 2);
    let t = table_of(
        port,
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'sr_hub' ORDER BY table_name LIMIT 2",
    );
    assert_eq!(t[0], vec!["TABLE_NAME", "TABLE_TYPE"]);
    assert_eq!(t.len(), 3);
    let t = table_of(
        port,
        "SELECT p.PARTITION_NAME, p.ROW_COUNT FROM information_schema.partitions_meta p JOIN information_schema.tables t ON p.DB_NAME = t.TABLE_SCHEMA AND p.TABLE_NAME = t.TABLE_NAME WHERE p.TABLE_NAME = 'sr_member' ORDER BY p.PARTITION_NAME",
    );
    assert_eq!(t.len(), 5, "{t:?}");
    let rows: u64 = t[1..].iter().map(|r| r[1].parse::<u64>().unwrap()).sum();
    assert_eq!(rows, 3000);
    // information_schema is a database to USE and DESCRIBE, and cannot be made by hand.
    let t = table_of(port, "USE information_schema; SHOW TABLES LIKE 'tab%'");
    assert_eq!(t[1..], [vec!["tables"], vec!["tables_config"]]);
    let t = table_of(port, "DESC information_schema.partitions_meta");
    assert_eq!(t[1][0], "DB_NAME");
    let r = mariadb(port, "CREATE DATABASE Information_Schema");
    assert!(!r.ok && r.err.contains("system database"), "{}", r.err);
    let out = mariadb_ok(port, "SHOW CREATE TABLE sr_hub.sr_member");
    assert!(out.contains("`sr_id` int NOT NULL"), "{out}");
    // What a refusal says: the MySQL code and what is not there.
    let r = mariadb(port, "SHOW PROC '/jobs'");
    assert!(
        !r.ok && r.err.contains("1235") && r.err.contains("not supported"),
        "{}",
        r.err
    );
    let t = table_of(port, "SHOW PROC '/dbs'");
    assert_eq!(t[0][..3], ["DbId", "DbName", "TableNum"]);
    assert!(t.iter().any(|r| r[1] == "sr_hub"), "{t:?}");
    let r = mariadb(port, "SELECT * FROM information_schema.engines");
    assert!(!r.ok && r.err.contains("1146"), "{}", r.err);
}
