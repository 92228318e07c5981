//! `srbackup serve` through real MySQL clients on 127.0.0.1: Debian's `mariadb` client runs
//! every statement of the spec's seed, PyMySQL watches and cancels asynchronous jobs
//! (tests/clients/jobs.py), 32 connections read and write while a backup runs
//! (tests/clients/load.py), and a killed server resumes its jobs when it starts again.
//!
//! `scripts/test` installs the clients (mariadb-client from Debian, PyMySQL from PyPI into
//! target/pyenv, named by SRBACKUP_PYTHON).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::cli::BIN;
use common::server::*;

use common::{TABLES, cluster_with_hub};
use srbackup::sql::{self, Statement};

const SEED: &str = include_str!("../fixtures/seed-statements.sql");

fn column<'t>(t: &'t [Vec<String>], row: &'t [String], name: &str) -> &'t str {
    let i = t[0].iter().position(|c| c == name).unwrap();
    &row[i]
}

/// Polls SHOW BACKUP / SHOW RESTORE (every database's newest job) until no job runs; returns
/// the last table.
fn wait_for_jobs(port: u16, kind: &str) -> Vec<Vec<String>> {
    let started = Instant::now();
    loop {
        let t = table(&mariadb_ok(port, &format!("SHOW {kind}")));
        let running = t[1..]
            .iter()
            .any(|r| !matches!(column(&t, r, "State"), "FINISHED" | "CANCELLED"));
        if !running {
            return t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "a {kind} job never ended: {t:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_header(out: &str, columns: &[&str]) {
    let t = table(out);
    assert_eq!(
        t.first().map(|h| h.as_slice()),
        Some(
            columns
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .as_slice()
        ),
        "{out}"
    );
}

/// The seed's secrets: none may come back in any error.
const SEED_SECRETS: &[&str] = &[
    "yyyyyyyyyyyyyyyyy",
    "XXXXXXXXXXXXXXXXX",
    "xxxxxxxxxxxxxxxxxxxx",
    "<hdfs_password>",
];

fn seed_time(label: &str) -> &'static str {
    if label == "sr_hub_backup" {
        "2024-12-09-10-25-58-842"
    } else {
        "2024-12-09-10-52-10-940"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mariadb_client_runs_every_seed_statement() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster_with_hub(dir.path(), &dir.path().join("repo")).await;
    let server = Server::start(&cluster);
    let port = server.port;

    let checksum = |table: &str| -> String {
        let t = table_of(port, &format!("CHECKSUM TABLE {table}"));
        column(&t, &t[1], "Checksum").to_string()
    };
    let baseline: Vec<String> = TABLES
        .iter()
        .map(|t| checksum(&format!("sr_hub.{t}")))
        .collect();

    let mut counts = (0, 0, 0, 0, 0);
    for stmt in sql::parse(SEED).unwrap() {
        let span = stmt.span();
        let text = &SEED[span.start..span.end];
        match &stmt {
            // test_repo exists (a local repository): each CREATE is refused before anything
            // is contacted, and the refusal shows none of the statement's credentials.
            Statement::CreateRepository(_) => {
                let r = mariadb(port, text);
                assert!(!r.ok, "{text}\n{}", r.out);
                // The client echoes the statement it sent; the server's answer is the ERROR line.
                let answer = r
                    .err
                    .lines()
                    .find(|l| l.starts_with("ERROR "))
                    .unwrap_or_else(|| panic!("{}", r.err));
                assert!(
                    answer.contains("ERROR 1050 (42S01)") && answer.contains("already exists"),
                    "{answer}"
                );
                for secret in SEED_SECRETS {
                    assert!(!answer.contains(secret), "{secret} in {answer}");
                }
                counts.0 += 1;
            }
            Statement::Backup(b) => {
                mariadb_ok(
                    port,
                    &format!(
                        "SET srbackup_snapshot_time = '{}'; {text}",
                        seed_time(&b.snapshot.value)
                    ),
                );
                let t = wait_for_jobs(port, "BACKUP");
                for row in &t[1..] {
                    assert_eq!(column(&t, row, "State"), "FINISHED", "{text}: {row:?}");
                }
                counts.1 += 1;
            }
            Statement::Restore(_) => {
                mariadb_ok(port, text);
                let t = wait_for_jobs(port, "RESTORE");
                for row in &t[1..] {
                    assert_eq!(column(&t, row, "State"), "FINISHED", "{text}: {row:?}");
                    assert_eq!(column(&t, row, "Status"), "[OK]", "{text}: {row:?}");
                }
                // Overwriting sr_hub with its own snapshot leaves it as it was.
                let now: Vec<String> = TABLES
                    .iter()
                    .map(|t| checksum(&format!("sr_hub.{t}")))
                    .collect();
                assert_eq!(now, baseline, "after {text}");
                counts.2 += 1;
            }
            Statement::CancelBackup(_) | Statement::CancelRestore(_) => {
                mariadb_ok(port, text);
                counts.3 += 1;
            }
            Statement::ShowSnapshot(_) => {
                let out = mariadb_ok(port, text);
                assert_header(&out, &["Snapshot", "Timestamp", "Status"]);
                assert!(out.contains("| sr_hub_backup "), "{out}");
                counts.4 += 1;
            }
            other => panic!("the seed holds an unexpected statement: {other:?}"),
        }
    }
    assert_eq!(counts, (6, 20, 26, 2, 1));

    // StarRocks' column headers, as a mysql> prompt shows them.
    assert_header(
        &mariadb_ok(port, "SHOW BACKUP FROM sr_hub"),
        srbackup::sql::SHOW_BACKUP_COLUMNS,
    );
    assert_header(
        &mariadb_ok(port, "SHOW RESTORE FROM sr_hub"),
        srbackup::sql::SHOW_RESTORE_COLUMNS,
    );
    assert_header(
        &mariadb_ok(port, "SHOW REPOSITORIES"),
        &[
            "RepoId",
            "RepoName",
            "CreateTime",
            "IsReadOnly",
            "Location",
            "Broker",
            "ErrMsg",
        ],
    );
    let detail = mariadb_ok(
        port,
        "SHOW SNAPSHOT ON test_repo WHERE SNAPSHOT = 'sr_hub_backup' AND TIMESTAMP = '2024-12-09-10-25-58-842'",
    );
    assert_header(
        &detail,
        &["Snapshot", "Timestamp", "Database", "Details", "Status"],
    );
    // Secrets stay masked in result sets too (the hive catalog carries an S3 key pair).
    let catalogs = mariadb_ok(port, "SHOW CATALOGS");
    assert!(catalogs.contains("| hive "), "{catalogs}");
    assert!(!catalogs.contains("fixture-secret-not-real"), "{catalogs}");
    // The database restored AS sr_hub_new equals its source.
    for (t, before) in TABLES.iter().zip(&baseline) {
        assert_eq!(&checksum(&format!("sr_hub_new.{t}")), before, "{t}");
    }
    // The client's own `status` command asks the server who and where it is.
    let status = mariadb_ok(port, "status");
    assert!(
        status.contains("root@127.0.0.1") && status.contains("srbackup"),
        "{status}"
    );
    // A statement that does not parse: MySQL's parse error, and where.
    let r = mariadb(port, "BACKUP DATABASE sr_hub SNAPSHOT TO test_repo");
    assert!(
        r.err.contains("ERROR 1064 (42000)") && r.err.contains("line 1, column"),
        "{}",
        r.err
    );
    let r = mariadb(port, "SELECT * FROM sr_hub.no_such_table");
    assert!(r.err.contains("ERROR 1146"), "{}", r.err);
    drop(server);
}

/// A cluster whose `admin` has a password and whose uploads are slow (256 KiB/s), so a
/// backup of a few hundred KiB runs long enough to be watched, cancelled or interrupted.
fn slow_cluster(dir: &Path, password: &str) -> PathBuf {
    let cluster = dir.join("cluster");
    std::fs::create_dir_all(&cluster).unwrap();
    std::fs::write(
        cluster.join("srbackup.conf"),
        format!(
            "user.admin = {}\n{}{}max_upload_speed_kbps = 256\n",
            srbackup::server::auth::native_hash(password),
            root_conf(),
            allowed(&cluster)
        ),
    )
    .unwrap();
    cluster
}

#[test]
fn a_python_driver_watches_and_cancels_asynchronous_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = slow_cluster(dir.path(), "s3cret-pw");
    let server = Server::start(&cluster);
    let out = python_client(
        "jobs.py",
        &[
            "--port".into(),
            server.port.to_string(),
            "--password".into(),
            "s3cret-pw".into(),
            "--repo".into(),
            dir.path().join("repo").display().to_string(),
        ],
    );
    assert!(out.contains("all checks passed"), "{out}");
    // The refused logins are logged, the password never.
    let log = server.log();
    assert!(log.contains("Authenticate failed"), "{log}");
    assert!(!log.contains("s3cret-pw"), "{log}");
}

#[test]
fn thirty_two_connections_read_and_write_while_a_backup_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    let server = Server::start(&cluster);
    let out = python_client(
        "load.py",
        &[
            "--port".into(),
            server.port.to_string(),
            "--password".into(),
            ROOT_PW.into(),
            "--connections".into(),
            "32".into(),
            "--statements".into(),
            "40".into(),
            "--fixture".into(),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/sr_hub.sql")
                .display()
                .to_string(),
            "--repo".into(),
            dir.path().join("repo").display().to_string(),
        ],
    );
    let summary = out
        .lines()
        .find(|l| l.starts_with("load:"))
        .unwrap_or_else(|| panic!("no summary: {out}"));
    assert!(summary.contains(" errors=0 "), "{out}");
    assert!(summary.contains(" lost_rows=0 "), "{out}");
    assert!(summary.contains(" backup_equal=true"), "{out}");
}

#[test]
fn a_killed_server_resumes_its_job_when_it_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = slow_cluster(dir.path(), "pw");
    let mut server = Server::start(&cluster);
    let port = server.port;
    let repo = dir.path().join("repo");
    for sql in [
        format!("CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\"", repo.display()),
        "CREATE DATABASE big".into(),
        "CREATE TABLE big.t (k BIGINT, v VARCHAR(40)) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 4".into(),
        "INSERT INTO big.t SELECT value, concat('row-', CAST(value * 2654435761 % 4294967291 AS VARCHAR)) FROM generate_series(1, 200000)".into(),
        "BACKUP DATABASE big SNAPSHOT b1 TO r".into(),
    ] {
        mariadb_ok(port, &sql);
    }
    let source = column_value(port, "CHECKSUM TABLE big.t", "Checksum");
    // Kill it (no goodbye) once the job is uploading.
    let started = Instant::now();
    while column_value(port, "SHOW BACKUP FROM big", "State") != "UPLOADING" {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never uploading"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.child.kill().unwrap();
    // Started again at once, before the killed one is reaped: it is a zombie (its /proc entry
    // is still there), which must not count as a live holder of the job.
    let killed = server;

    let server = Server::start(&cluster);
    let port = server.port;
    let t = wait_for_jobs(port, "BACKUP");
    assert_eq!(
        column(&t, &t[1], "State"),
        "FINISHED",
        "{t:?}\n{}",
        server.log()
    );
    assert!(
        server.log().contains("resuming BACKUP job 1"),
        "{}",
        server.log()
    );
    mariadb_ok(port, "RESTORE SNAPSHOT b1 FROM r DATABASE big AS big_copy");
    wait_for_jobs(port, "RESTORE");
    assert_eq!(
        column_value(port, "CHECKSUM TABLE big_copy.t", "Checksum"),
        source
    );
    drop(killed);
}

fn column_value(port: u16, sql: &str, name: &str) -> String {
    let t = table_of(port, sql);
    column(&t, &t[1], name).to_string()
}

#[test]
fn listening_beyond_loopback_needs_a_password_for_every_user() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    // Refused before anything listens: root has no password (as root, the refusal says so
    // even on the loopback interface).
    std::fs::create_dir_all(&cluster).unwrap();
    std::fs::write(cluster.join("srbackup.conf"), "user.root =\n").unwrap();
    let out = Command::new(BIN)
        .arg("--cluster")
        .arg(&cluster)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("needs a password for every user, and root has none")
            || err.contains("runs as root, and root has no password"),
        "{err}"
    );
    // A password as plain text in the config is refused too: it must be the hash.
    std::fs::write(cluster.join("srbackup.conf"), "user.root = hunter2\n").unwrap();
    let out = Command::new(BIN)
        .arg("--cluster")
        .arg(&cluster)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("a password is stored as its"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// #16 case 2: a server running as root with no users configured does not let everyone on
/// the machine in as a passwordless root (who could then read root's files through FILES()).
/// root gets a random password, in a file only root can read.
#[test]
fn as_root_without_users_root_gets_a_password_only_root_can_read() {
    if euid() != 0 {
        eprintln!("skipped: not running as root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    let server = Server::start_as_is(&cluster);
    let file = cluster.join("root.password");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(password.len() >= 20, "{password}");
    assert!(server.log().contains("root.password"), "{}", server.log());
    assert!(!server.log().contains(&password), "{}", server.log());
    let refused = mariadb_with(server.port, "", "SELECT 1");
    assert!(
        !refused.ok && refused.err.contains("Authenticate failed"),
        "{}",
        refused.err
    );
    assert!(mariadb_with(server.port, &password, "SELECT 1").ok);
    // The catalog and the cluster directory are private too.
    let cluster_mode = std::fs::metadata(&cluster).unwrap().permissions().mode();
    assert_eq!(cluster_mode & 0o777, 0o700, "{cluster_mode:o}");
    let catalog_mode = std::fs::metadata(cluster.join("catalog.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(catalog_mode & 0o777, 0o600, "{catalog_mode:o}");
    // The same password the next time (and a file others could read is refused).
    drop(server);
    let server = Server::start_as_is(&cluster);
    assert!(mariadb_with(server.port, &password, "SELECT 1").ok);
    drop(server);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .arg("--cluster")
        .arg(&cluster)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("only they can read"),
        "{err}"
    );
}

/// The input that made opensrv-mysql 0.7.0 read freed memory (tests/fuzz-regressions: a
/// handshake and commands in one read): a client that sends its handshake response and two
/// commands in one write gets every answer, in order.
#[test]
fn packets_sent_back_to_back_are_answered_in_order() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("cluster"));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (_, greeting) = read_packet(&mut stream).unwrap();
    assert_eq!(greeting[0], 10, "protocol 10");
    // The salt: 8 bytes after the version and connection id, 12 more after the fixed fields.
    let version_end = greeting.iter().position(|&b| b == 0).unwrap();
    let part1 = &greeting[version_end + 5..version_end + 13];
    let part2 = &greeting[version_end + 13 + 1 + 2 + 1 + 2 + 2 + 1 + 10..][..12];
    let salt = [part1, part2].concat();
    let answer = srbackup::server::auth::native_answer(ROOT_PW, &salt);
    // 4.1 protocol, secure connection, plugin auth (+ length-encoded auth data): root.
    let caps: u32 = 0x0200 | 0x8000 | 0x0008_0000 | 0x0020_0000;
    let mut response = Vec::new();
    response.extend_from_slice(&caps.to_le_bytes());
    response.extend_from_slice(&(16u32 << 20).to_le_bytes());
    response.push(0x21);
    response.extend_from_slice(&[0; 23]);
    response.extend_from_slice(b"root\0");
    response.push(answer.len() as u8);
    response.extend_from_slice(&answer);
    response.extend_from_slice(b"mysql_native_password\0");
    let mut burst = packet(1, &response);
    burst.extend(packet(0, b"\x03SELECT 41 + 1"));
    burst.extend(packet(0, b"\x01")); // COM_QUIT
    stream.write_all(&burst).unwrap();

    let (_, ok) = read_packet(&mut stream).unwrap();
    assert_eq!(ok[0], 0x00, "login OK, got {ok:?}");
    let mut packets = Vec::new();
    while let Some((_, p)) = read_packet(&mut stream) {
        packets.push(p);
    }
    // Column count 1, the column, EOF, the row "42", EOF; then the server closed (COM_QUIT).
    assert_eq!(
        packets.first().map(|p| p.as_slice()),
        Some(&[1u8][..]),
        "{packets:?}"
    );
    assert!(packets.iter().any(|p| p == b"\x0242"), "{packets:?}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
