//! Who may back up and restore what (#18), through `srbackup serve` and Debian's `mariadb`
//! client: the seed's BACKUP and RESTORE statements run by a user holding exactly the
//! documented privileges succeed, and the same user lacking any one of them is refused with
//! StarRocks' 5203 message naming it, with nothing created, uploaded or restored. Accounts,
//! roles, SHOW GRANTS, and a REVOKE seen by an open session (PyMySQL, tests/clients).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::cluster_with_hub;
use common::server::*;
use srbackup::catalog::{Catalog, JobKind};

const OP: &str = "op";
const OP_PW: &str = "op-Pw-9";

/// What the `mariadb` client printed for `sql`, logged in as `user`.
fn as_user(port: u16, user: &str, password: &str, sql: &str) -> ClientRun {
    mariadb_as(port, user, password, &[], sql)
}

/// The first column of the client's table, without its header.
fn first_column(out: &str) -> Vec<String> {
    table(out)
        .into_iter()
        .skip(1)
        .map(|row| row[0].clone())
        .collect()
}

/// `op` afresh, holding exactly `grants` (each `<privileges> ON <object>`).
fn reset_op(port: u16, grants: &[&str]) {
    let mut sql =
        format!("DROP USER IF EXISTS '{OP}'@'%'; CREATE USER '{OP}'@'%' IDENTIFIED BY '{OP_PW}';");
    for g in grants {
        sql.push_str(&format!(" GRANT {g} TO USER '{OP}'@'%';"));
    }
    mariadb_ok(port, &sql);
}

/// Every file under the repository, for "nothing was uploaded".
fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.display().to_string());
            }
        }
    }
    out
}

/// Jobs and databases of the cluster, for "nothing was created".
fn state(cluster: &Path) -> (usize, usize, Vec<String>) {
    let catalog = Catalog::open(&cluster.join("catalog.db")).unwrap();
    let view = catalog.view();
    (
        view.jobs(JobKind::Backup, None).unwrap().len(),
        view.jobs(JobKind::Restore, None).unwrap().len(),
        view.databases()
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect(),
    )
}

/// Waits until the cluster's newest job of `kind` ended; returns its state.
fn wait_newest(cluster: &Path, kind: JobKind) -> String {
    let started = Instant::now();
    loop {
        let catalog = Catalog::open(&cluster.join("catalog.db")).unwrap();
        let jobs = catalog.view().jobs(kind, None).unwrap();
        let newest = jobs.iter().max_by_key(|j| j.id).unwrap();
        if newest.finished {
            return format!("{} {:?}", newest.state, newest.task_err_msg);
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "job {} never ended",
            newest.id
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Case {
    sql: &'static str,
    /// `SET srbackup_snapshot_time` for a backup (the seed's timestamps).
    time: Option<&'static str>,
    grants: &'static [&'static str],
}

const T1: &str = "2024-12-09-10-25-58-842";
const T2: &str = "2024-12-09-10-52-10-940";

const BACKUPS: &[Case] = &[
    Case {
        sql: "BACKUP DATABASE sr_hub SNAPSHOT sr_hub_backup TO test_repo",
        time: Some(T1),
        grants: &[
            "REPOSITORY ON SYSTEM",
            "EXPORT ON ALL TABLES IN DATABASE sr_hub",
        ],
    },
    Case {
        sql: "BACKUP DATABASE sr_hub SNAPSHOT sr_member_backup TO test_repo ON (TABLE sr_member)",
        time: Some(T2),
        grants: &["REPOSITORY ON SYSTEM", "EXPORT ON TABLE sr_hub.sr_member"],
    },
    Case {
        sql: "BACKUP DATABASE sr_hub SNAPSHOT sr_core_backup TO test_repo ON (TABLE sr_member, TABLE sr_pmc)",
        time: Some(T2),
        grants: &[
            "REPOSITORY ON SYSTEM",
            "EXPORT ON TABLE sr_hub.sr_member",
            "EXPORT ON TABLE sr_hub.sr_pmc",
        ],
    },
    Case {
        sql: "BACKUP DATABASE sr_hub SNAPSHOT sr_all_backup TO test_repo ON (ALL TABLES)",
        time: Some(T2),
        grants: &[
            "REPOSITORY ON SYSTEM",
            "EXPORT ON ALL TABLES IN DATABASE sr_hub",
        ],
    },
    Case {
        sql: "BACKUP SNAPSHOT sr_hub.sr_par_backup TO test_repo ON (sr_member PARTITION (p1))",
        time: Some(T2),
        grants: &["REPOSITORY ON SYSTEM", "EXPORT ON TABLE sr_hub.sr_member"],
    },
    Case {
        sql: "BACKUP DATABASE sr_hub SNAPSHOT sr_mv1_backup TO test_repo ON (MATERIALIZED VIEW sr_mv1)",
        time: Some(T2),
        grants: &[
            "REPOSITORY ON SYSTEM",
            "SELECT ON MATERIALIZED VIEW sr_hub.sr_mv1",
        ],
    },
    Case {
        sql: "BACKUP DATABASE sr_hub SNAPSHOT sr_view1_backup TO test_repo ON (VIEW sr_view1)",
        time: Some(T2),
        grants: &["REPOSITORY ON SYSTEM", "SELECT ON VIEW sr_hub.sr_view1"],
    },
    Case {
        sql: "BACKUP DATABASE sr_hub SNAPSHOT sr_udf1_backup TO test_repo ON (FUNCTION sr_udf1)",
        time: Some(T2),
        grants: &[
            "REPOSITORY ON SYSTEM",
            "USAGE ON FUNCTION sr_hub.sr_udf1(INT)",
        ],
    },
    Case {
        sql: "BACKUP EXTERNAL CATALOG (iceberg) SNAPSHOT iceberg_backup TO test_repo",
        time: Some(T2),
        grants: &["REPOSITORY ON SYSTEM", "USAGE ON CATALOG iceberg"],
    },
];

const RESTORES: &[Case] = &[
    Case {
        sql: "RESTORE SNAPSHOT sr_hub_backup FROM test_repo DATABASE sr_hub AS sr_hub_new PROPERTIES(\"backup_timestamp\" = \"2024-12-09-10-25-58-842\")",
        time: None,
        grants: &[
            "REPOSITORY ON SYSTEM",
            "CREATE DATABASE ON CATALOG default_catalog",
        ],
    },
    Case {
        sql: "RESTORE SNAPSHOT sr_member_backup FROM test_repo DATABASE sr_hub ON (TABLE sr_member) PROPERTIES (\"backup_timestamp\" = \"2024-12-09-10-52-10-940\")",
        time: None,
        grants: &["REPOSITORY ON SYSTEM", "INSERT ON TABLE sr_hub.sr_member"],
    },
    Case {
        sql: "RESTORE SNAPSHOT sr_member_backup FROM test_repo DATABASE sr_hub AS sr_hub_new ON (TABLE sr_member AS sr_member_new) PROPERTIES (\"backup_timestamp\" = \"2024-12-09-10-52-10-940\")",
        time: None,
        grants: &[
            "REPOSITORY ON SYSTEM",
            "CREATE TABLE ON DATABASE sr_hub_new",
        ],
    },
    Case {
        sql: "RESTORE SNAPSHOT sr_all_backup FROM test_repo DATABASE sr_hub ON (ALL TABLES)",
        time: None,
        grants: &[
            "REPOSITORY ON SYSTEM",
            "CREATE TABLE ON DATABASE sr_hub",
            "INSERT ON ALL TABLES IN DATABASE sr_hub",
        ],
    },
    Case {
        sql: "RESTORE SNAPSHOT sr_hub_backup FROM test_repo DATABASE sr_hub PROPERTIES(\"backup_timestamp\" = \"2024-12-09-10-25-58-842\")",
        time: None,
        grants: &[
            "REPOSITORY ON SYSTEM",
            "CREATE DATABASE ON CATALOG default_catalog",
            "CREATE TABLE ON DATABASE sr_hub",
        ],
    },
];

/// Runs every case with each grant missing in turn (refused, nothing changes), then with all
/// of them (the job runs to FINISHED).
fn matrix(port: u16, cluster: &Path, repo: &Path, cases: &[Case], kind: JobKind) {
    for case in cases {
        let sql = match case.time {
            Some(t) => format!("SET srbackup_snapshot_time = '{t}'; {}", case.sql),
            None => case.sql.to_string(),
        };
        for missing in 0..case.grants.len() {
            let held: Vec<&str> = case
                .grants
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != missing)
                .map(|(_, g)| *g)
                .collect();
            reset_op(port, &held);
            let (before_files, before_state) = (files(repo), state(cluster));
            let r = as_user(port, OP, OP_PW, &sql);
            assert!(!r.ok, "{} ran without {}", case.sql, case.grants[missing]);
            let answer = r
                .err
                .lines()
                .find(|l| l.starts_with("ERROR "))
                .unwrap_or_else(|| panic!("{}", r.err));
            let privilege = case.grants[missing].split(" ON ").next().unwrap();
            assert!(
                answer.starts_with("ERROR 5203 (42000)")
                    && answer.contains("Access denied; you need (at least one of) the ")
                    && answer.contains(&format!("{privilege} privilege(s)")),
                "{} without {}: {answer}",
                case.sql,
                case.grants[missing]
            );
            assert_eq!(files(repo), before_files, "{}: uploaded", case.sql);
            assert_eq!(
                state(cluster),
                before_state,
                "{}: job or database",
                case.sql
            );
        }
        reset_op(port, case.grants);
        let r = as_user(port, OP, OP_PW, &sql);
        assert!(r.ok, "{} with {:?}: {}", case.sql, case.grants, r.err);
        let ended = wait_newest(cluster, kind);
        assert!(ended.starts_with("FINISHED"), "{}: {ended}", case.sql);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_privileges_exactly_and_not_one_less() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let cluster = cluster_with_hub(dir.path(), &repo).await;
    let server = Server::start(&cluster);
    let port = server.port;

    matrix(port, &cluster, &repo, BACKUPS, JobKind::Backup);
    matrix(port, &cluster, &repo, RESTORES, JobKind::Restore);

    // The job keeps who submitted it: another user with REPOSITORY but not the job's
    // privileges neither sees nor cancels it; op, its submitter, sees it.
    mariadb_ok(
        port,
        "CREATE USER 'peer'@'%' IDENTIFIED BY 'peer-pw'; GRANT REPOSITORY ON SYSTEM TO USER 'peer'@'%'",
    );
    let seen = as_user(port, "peer", "peer-pw", "SHOW RESTORE FROM sr_hub");
    assert!(seen.ok, "{}", seen.err);
    assert!(!seen.out.contains("sr_hub_backup"), "{}", seen.out);
    let own = as_user(port, OP, OP_PW, "SHOW RESTORE FROM sr_hub");
    assert!(own.out.contains("sr_hub_backup"), "{}", own.out);
    let log = server.log();
    assert!(!log.contains(OP_PW), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_roles_and_grants_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let cluster = cluster_with_hub(dir.path(), &repo).await;
    let server = Server::start(&cluster);
    let port = server.port;
    let hash = srbackup::server::auth::native_hash("ann-pw");

    mariadb_ok(
        port,
        &format!(
            "CREATE USER ann IDENTIFIED BY PASSWORD '{hash}';
             CREATE ROLE reader; CREATE ROLE analyst;
             GRANT SELECT ON ALL TABLES IN DATABASE sr_hub TO ROLE reader;
             GRANT reader TO ROLE analyst;
             GRANT SELECT, INSERT ON TABLE sr_hub.sr_pmc TO USER 'ann'@'%' WITH GRANT OPTION;
             GRANT analyst TO USER ann;
             SET DEFAULT ROLE analyst TO ann"
        ),
    );
    let grants = table(&mariadb_ok(port, "SHOW GRANTS FOR ann"));
    assert_eq!(grants[0], ["UserIdentity", "Catalog", "Grants"]);
    let texts: Vec<&str> = grants[1..].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(
        texts,
        [
            "GRANT analyst TO USER 'ann'@'%'",
            "GRANT INSERT, SELECT ON TABLE sr_hub.sr_pmc TO USER 'ann'@'%' WITH GRANT OPTION",
        ]
    );
    let role = table(&mariadb_ok(port, "SHOW GRANTS FOR ROLE analyst"));
    assert_eq!(role[1][2], "GRANT reader TO ROLE analyst");
    // No password hash in any SHOW.
    for show in ["SHOW USERS", "SHOW GRANTS FOR ann", "SHOW ROLES"] {
        let out = mariadb_ok(port, show);
        assert!(!out.contains(&hash[1..]), "{show}: {out}");
    }
    // CURRENT_USER() is the account (StarRocks' form), CURRENT_ROLE() the active roles.
    let r = as_user(
        port,
        "ann",
        "ann-pw",
        "SELECT CURRENT_USER(), CURRENT_ROLE()",
    );
    assert!(
        r.out.contains("'ann'@'%'") && r.out.contains("| analyst "),
        "{}{}",
        r.out,
        r.err
    );
    // Roles inherit (analyst holds reader), active by default at login.
    let r = as_user(
        port,
        "ann",
        "ann-pw",
        "SELECT count(*) FROM sr_hub.sr_member",
    );
    assert!(r.ok, "{}", r.err);
    // SET ROLE NONE leaves only direct grants.
    let r = as_user(
        port,
        "ann",
        "ann-pw",
        "SET ROLE NONE; SELECT count(*) FROM sr_hub.sr_member",
    );
    assert!(
        r.err.contains("ERROR 5203") && r.err.contains("Inactivated role(s): analyst"),
        "{}",
        r.err
    );
    // WITH GRANT OPTION: ann passes SELECT on sr_pmc along, not what she lacks.
    mariadb_ok(port, "CREATE USER bea IDENTIFIED BY 'bea-pw'");
    let r = as_user(
        port,
        "ann",
        "ann-pw",
        "GRANT SELECT ON TABLE sr_hub.sr_pmc TO USER bea",
    );
    assert!(r.ok, "{}", r.err);
    let r = as_user(
        port,
        "ann",
        "ann-pw",
        "GRANT SELECT ON TABLE sr_hub.sr_member TO USER bea",
    );
    assert!(r.err.contains("ERROR 5203"), "{}", r.err);
    let r = as_user(port, "bea", "bea-pw", "SELECT count(*) FROM sr_hub.sr_pmc");
    assert!(r.ok, "{}", r.err);
    // REVOKE round trip.
    mariadb_ok(port, "REVOKE SELECT ON TABLE sr_hub.sr_pmc FROM USER bea");
    let r = as_user(port, "bea", "bea-pw", "SELECT count(*) FROM sr_hub.sr_pmc");
    assert!(r.err.contains("ERROR 5203"), "{}", r.err);
    assert_eq!(table(&mariadb_ok(port, "SHOW GRANTS FOR bea")).len(), 0);
    // SHOW DATABASES and SHOW TABLES list what a user holds something on (StarRocks).
    let r = as_user(
        port,
        "ann",
        "ann-pw",
        "SET ROLE NONE; SHOW TABLES FROM sr_hub",
    );
    let names = first_column(&r.out);
    assert_eq!(names, ["sr_pmc"], "{}", r.err);
    // A SHOW's condition sees only what the user may: one that would fail on a hidden name
    // (sr_member) does not fail.
    let r = as_user(
        port,
        "ann",
        "ann-pw",
        "SET ROLE NONE; SHOW TABLES FROM sr_hub WHERE CAST(CASE WHEN Tables_in_sr_hub = 'sr_member' THEN 'x' ELSE '1' END AS INT) = 1",
    );
    assert!(r.ok && r.out.contains("sr_pmc"), "{}{}", r.out, r.err);
    // (root sees sr_member, and the same condition fails there.)
    assert!(!mariadb(
        port,
        "SHOW TABLES FROM sr_hub WHERE CAST(CASE WHEN Tables_in_sr_hub = 'sr_member' THEN 'x' ELSE '1' END AS INT) = 1",
    )
    .ok);
    // information_schema too.
    let r = as_user(
        port,
        "ann",
        "ann-pw",
        "SET ROLE NONE; SELECT TABLE_NAME FROM information_schema.tables WHERE TABLE_SCHEMA = 'sr_hub' ORDER BY 1",
    );
    let names = first_column(&r.out);
    assert_eq!(names, ["sr_pmc"], "{}", r.err);
    let r = as_user(
        port,
        "ann",
        "ann-pw",
        "SET ROLE NONE; SELECT DISTINCT TABLE_NAME FROM information_schema.columns WHERE TABLE_SCHEMA = 'sr_hub'",
    );
    assert!(!r.out.contains("sr_member"), "{}", r.out);
    let r = as_user(port, "bea", "bea-pw", "SHOW DATABASES");
    assert!(!r.out.contains("sr_hub"), "{}", r.out);
    assert!(
        as_user(port, "ann", "ann-pw", "SHOW DATABASES")
            .out
            .contains("sr_hub")
    );
    // A wrong password and an unknown user are refused alike.
    let r = as_user(port, "ann", "wrong", "SELECT 1");
    assert!(r.err.contains("ERROR 1045"), "{}", r.err);
    let r = as_user(port, "nobody", "x", "SELECT 1");
    assert!(r.err.contains("ERROR 1045"), "{}", r.err);
    // Without GRANT, account statements are refused.
    let r = as_user(port, "bea", "bea-pw", "CREATE USER eve IDENTIFIED BY 'x'");
    assert!(r.err.contains("ERROR 5203"), "{}", r.err);
    // A user changes their own password; the old one stops working.
    let r = as_user(port, "bea", "bea-pw", "SET PASSWORD = PASSWORD('bea-new')");
    assert!(r.ok, "{}", r.err);
    assert!(as_user(port, "bea", "bea-new", "SELECT 1").ok);
    assert!(!as_user(port, "bea", "bea-pw", "SELECT 1").ok);
    // Cycles of roles are refused; built-in roles cannot be dropped or changed.
    let r = mariadb(port, "GRANT analyst TO ROLE reader");
    assert!(r.err.contains("cycle"), "{}", r.err);
    let r = mariadb(port, "DROP ROLE db_admin");
    assert!(r.err.contains("built-in"), "{}", r.err);
    // A revoke in one session takes effect on the next statement of another, open one.
    let out = python_client("privileges.py", &[port.to_string(), ROOT_PW.to_string()]);
    assert!(out.contains("revoke seen"), "{out}");
    // The password never reaches the log.
    let log = server.log();
    for secret in ["ann-pw", "bea-pw", "bea-new", &hash[1..]] {
        assert!(!log.contains(secret), "{secret} in {log}");
    }
}

/// The rows of SHOW GRANTS FOR `who`, as printed.
fn grants_of(port: u16, who: &str) -> Vec<Vec<String>> {
    table(&mariadb_ok(port, &format!("SHOW GRANTS FOR {who}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileges_travel_with_a_backup_into_a_fresh_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let cluster = cluster_with_hub(dir.path(), &repo).await;
    let hash = srbackup::server::auth::native_hash("dana-pw");
    let identities = ["'dana'@'%'", "'eli'@'10.0.%'", "ROLE etl", "ROLE readers"];
    let (before, plan_text) = {
        let server = Server::start(&cluster);
        let port = server.port;
        mariadb_ok(
            port,
            "CREATE USER dana IDENTIFIED BY 'dana-pw';
             CREATE USER 'eli'@'10.0.%' IDENTIFIED WITH caching_sha2_password BY 'eli-pw' REQUIRE SSL;
             CREATE ROLE readers COMMENT 'read only'; CREATE ROLE etl;
             GRANT readers TO ROLE etl;
             GRANT SELECT ON ALL TABLES IN DATABASE sr_hub TO ROLE readers;
             GRANT INSERT, DELETE ON TABLE sr_hub.sr_member TO ROLE etl;
             GRANT EXPORT ON TABLE sr_hub.sr_pmc TO USER dana WITH GRANT OPTION;
             GRANT REPOSITORY ON SYSTEM TO USER dana;
             GRANT etl TO USER dana; SET DEFAULT ROLE etl TO dana;
             GRANT readers TO USER 'eli'@'10.0.%'",
        );
        let before: Vec<_> = identities.iter().map(|w| grants_of(port, w)).collect();
        // Refused without GRANT: dana holds REPOSITORY and EXPORT, not GRANT.
        let r = as_user(
            port,
            "dana",
            "dana-pw",
            "BACKUP DATABASE sr_hub SNAPSHOT accounts TO test_repo ON (TABLE sr_pmc) PROPERTIES (\"privileges\" = \"users\")",
        );
        assert!(r.err.contains("GRANT privilege(s) on SYSTEM"), "{}", r.err);
        mariadb_ok(
            port,
            "BACKUP DATABASE sr_hub SNAPSHOT accounts TO test_repo PROPERTIES (\"privileges\" = \"users_with_passwords\")",
        );
        assert!(wait_newest(&cluster, JobKind::Backup).starts_with("FINISHED"));
        let catalog = Catalog::open(&cluster.join("catalog.db")).unwrap();
        let job = catalog
            .view()
            .jobs(JobKind::Backup, None)
            .unwrap()
            .into_iter()
            .max_by_key(|j| j.id)
            .unwrap();
        (before, job.plan)
    };
    // The plan names the users, never a hash; the manifest (asked for by name) holds them.
    assert!(plan_text.contains("\"dana\""), "{plan_text}");
    assert!(!plan_text.contains(&hash[1..]), "{plan_text}");
    assert!(!plan_text.contains("_hash"), "{plan_text}");

    // A fresh cluster on the same repository.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("srbackup.conf"), root_conf() + &allowed(&fresh)).unwrap();
    let server = Server::start_as_is(&fresh);
    let port = server.port;
    mariadb_ok(
        port,
        &format!(
            "CREATE REPOSITORY test_repo WITH BROKER ON LOCATION \"{}\"",
            repo.display()
        ),
    );
    let r = mariadb(
        port,
        "RESTORE SNAPSHOT accounts FROM test_repo DATABASE sr_hub AS hub2 PROPERTIES (\"privileges\" = \"true\")",
    );
    assert!(r.ok, "{}", r.err);
    assert!(wait_newest(&fresh, JobKind::Restore).starts_with("FINISHED"));
    // Equal SHOW GRANTS, with the database renamed.
    for (who, was) in identities.iter().zip(&before) {
        let now = grants_of(port, who);
        let renamed: Vec<Vec<String>> = was
            .iter()
            .map(|row| row.iter().map(|c| c.replace("sr_hub", "hub2")).collect())
            .collect();
        assert_eq!(now, renamed, "{who}");
    }
    // The password hash came along: dana logs in with her password and her default role.
    let r = as_user(
        port,
        "dana",
        "dana-pw",
        "SELECT count(*) FROM hub2.sr_member",
    );
    assert!(r.ok, "{}", r.err);
    for show in ["SHOW USERS", "SHOW GRANTS FOR dana", "SHOW ROLES"] {
        let out = mariadb_ok(port, show);
        assert!(!out.contains(&hash[1..]), "{show}: {out}");
    }
    assert!(!server.log().contains(&hash[1..]));
}

/// Found by an attacking QA session: each was a way around a privilege; each is refused now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ways_around_privileges_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let cluster = cluster_with_hub(dir.path(), &repo).await;
    let server = Server::start(&cluster);
    let port = server.port;
    mariadb_ok(
        port,
        "CREATE DATABASE own;
         CREATE USER dev IDENTIFIED BY 'dev-pw';
         GRANT ALL ON DATABASE own TO USER dev;
         GRANT ALL ON ALL TABLES IN DATABASE own TO USER dev;
         GRANT ALL ON ALL VIEWS IN DATABASE own TO USER dev;
         GRANT ALL ON ALL MATERIALIZED VIEWS IN DATABASE own TO USER dev;
         CREATE USER ua IDENTIFIED BY 'ua-pw' DEFAULT ROLE user_admin;
         GRANT user_admin TO USER ua",
    );
    let dev = |sql: &str| as_user(port, "dev", "dev-pw", sql);
    let denied = |r: ClientRun, what: &str| {
        assert!(
            !r.ok && r.err.contains("ERROR 5203"),
            "{what}: {}{}",
            r.out,
            r.err
        )
    };
    // A view or an MV over a table its creator cannot read.
    denied(
        dev("CREATE VIEW own.v AS SELECT * FROM sr_hub.sr_member"),
        "CREATE VIEW",
    );
    denied(
        dev(
            "CREATE MATERIALIZED VIEW own.mv DISTRIBUTED BY HASH(id) BUCKETS 1 REFRESH MANUAL AS SELECT * FROM sr_hub.sr_member",
        ),
        "CREATE MATERIALIZED VIEW",
    );
    // Subqueries of UPDATE and DELETE read too.
    let r = dev(
        "CREATE TABLE own.p (k INT, v STRING) PRIMARY KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1;
         INSERT INTO own.p VALUES (1, 'z')",
    );
    assert!(r.ok, "{}", r.err);
    denied(
        dev("UPDATE own.p SET v = (SELECT name FROM sr_hub.sr_member LIMIT 1) WHERE k = 1"),
        "UPDATE … SET (subquery)",
    );
    denied(
        dev("UPDATE own.p SET v = 'y' WHERE k IN (SELECT id FROM sr_hub.sr_member)"),
        "UPDATE … WHERE (subquery)",
    );
    denied(
        dev("DELETE FROM own.p WHERE k IN (SELECT id FROM sr_hub.sr_member)"),
        "DELETE … WHERE (subquery)",
    );
    assert!(dev("UPDATE own.p SET v = 'w' WHERE k = 1").ok);
    // Describing a table needs a privilege on it.
    for show in [
        "SHOW CREATE TABLE sr_hub.sr_member",
        "DESC sr_hub.sr_member",
        "SHOW PARTITIONS FROM sr_hub.sr_member",
    ] {
        denied(dev(show), show);
    }
    // user_admin (GRANT) is not root: no second root account, no root password, no root role.
    let ua = |sql: &str| as_user(port, "ua", "ua-pw", sql);
    let r = ua("CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY 'evil'");
    assert!(!r.ok && r.err.contains("root account"), "{}", r.err);
    denied(
        ua("ALTER USER root IDENTIFIED BY 'evil'"),
        "ALTER USER root",
    );
    denied(
        ua("SET PASSWORD FOR 'root'@'%' = PASSWORD('evil')"),
        "SET PASSWORD FOR root",
    );
    denied(ua("GRANT root TO USER ua"), "GRANT root");
    assert!(mariadb(port, "SELECT 1").ok, "root still logs in");
    // Names are not enumerated through SHOW GRANTS without GRANT.
    let r = dev("SHOW GRANTS FOR 'nosuch'@'%'");
    assert!(r.err.contains("ERROR 5203"), "{}", r.err);
    // A password set without spaces reaches the account statement; it is never echoed.
    let r = dev("SET PASSWORD=PASSWORD('dev-new-pw')");
    assert!(r.ok, "{}", r.err);
    assert!(as_user(port, "dev", "dev-new-pw", "SELECT 1").ok);
    // (The client echoes the statement it sent; the server's answer is the ERROR line.)
    let answer = |r: ClientRun| {
        r.err
            .lines()
            .find(|l| l.starts_with("ERROR "))
            .unwrap_or_default()
            .to_string()
    };
    let a = answer(as_user(
        port,
        "dev",
        "dev-new-pw",
        "set password='Sup3rSecret'",
    ));
    assert!(a.starts_with("ERROR") && !a.contains("Sup3rSecret"), "{a}");
    let a = answer(mariadb(
        port,
        "CREATE USER 'y'@'%' IDENTIFIED BY 'Sup3rSecret",
    ));
    assert!(a.starts_with("ERROR") && !a.contains("Sup3rSecret"), "{a}");
    // Grants go with a dropped table: one created again under the name starts without them.
    mariadb_ok(
        port,
        "CREATE TABLE sr_hub.tmp (k INT) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1;
         GRANT SELECT ON TABLE sr_hub.tmp TO USER dev;
         DROP TABLE sr_hub.tmp;
         CREATE TABLE sr_hub.tmp (k INT) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1",
    );
    denied(
        as_user(port, "dev", "dev-new-pw", "SELECT * FROM sr_hub.tmp"),
        "a grant on a dropped table",
    );
    // …and follow a renamed one.
    mariadb_ok(
        port,
        "GRANT SELECT ON TABLE sr_hub.tmp TO USER dev; ALTER TABLE sr_hub.tmp RENAME tmp2",
    );
    assert!(as_user(port, "dev", "dev-new-pw", "SELECT * FROM sr_hub.tmp2").ok);
    // QA round 2. FILES() reads this machine's files: FILE on SYSTEM; and never the cluster
    // directory or a local repository, whoever asks.
    let rows_file = dir.path().join("rows.csv");
    std::fs::write(&rows_file, "1,a\n").unwrap();
    let files = |path: &Path| {
        format!(
            "INSERT INTO own.p SELECT * FROM FILES('path' = '{}', 'format' = 'csv')",
            path.display()
        )
    };
    denied(
        as_user(port, "dev", "dev-new-pw", &files(&rows_file)),
        "FILES() without FILE",
    );
    // FILES() elsewhere is unsupported, not a table to be granted.
    let a = answer(as_user(
        port,
        "dev",
        "dev-new-pw",
        "SELECT count(*) FROM FILES('path' = '/nowhere.csv', 'format' = 'csv')",
    ));
    assert!(a.starts_with("ERROR") && !a.contains("privilege"), "{a}");
    mariadb_ok(port, "GRANT FILE ON SYSTEM TO USER dev");
    let r = as_user(port, "dev", "dev-new-pw", &files(&rows_file));
    assert!(r.ok, "{}", r.err);
    mariadb_ok(
        port,
        "BACKUP DATABASE sr_hub SNAPSHOT for_files TO test_repo ON (TABLE sr_pmc)",
    );
    wait_newest(&cluster, JobKind::Backup);
    for inside in [cluster.join("srbackup.conf"), repo.clone()] {
        let a = answer(as_user(port, "dev", "dev-new-pw", &files(&inside)));
        assert!(
            a.contains("outside the directories"),
            "{}: {a}",
            inside.display()
        );
        let a = answer(mariadb(port, &files(&inside)));
        assert!(
            a.contains("outside the directories"),
            "root, {}: {a}",
            inside.display()
        );
    }
    // A GRANT or REVOKE says nothing about who exists to whom may not grant.
    for stmt in [
        "GRANT SELECT ON TABLE own.p TO USER nosuch",
        "GRANT SELECT ON TABLE own.p TO ROLE nosuch",
        "REVOKE SELECT ON TABLE own.p FROM USER nosuch",
    ] {
        denied(as_user(port, "dev", "dev-new-pw", stmt), stmt);
    }
    // Unknown names get no "did you mean" naming what the user cannot see.
    let a = answer(as_user(
        port,
        "dev",
        "dev-new-pw",
        "SELECT * FROM sr_hub.sr_membe",
    ));
    assert!(!a.contains("sr_member"), "{a}");
    let a = answer(as_user(
        port,
        "dev",
        "dev-new-pw",
        "SELECT * FROM nosuchdb.x",
    ));
    assert!(!a.contains("sr_hub"), "{a}");
    // Hosts are hosts; passwords in statements that do not parse are never quoted.
    let a = answer(mariadb(port, "CREATE USER 'x'@'bad host!'"));
    assert!(a.contains("is not a host"), "{a}");
    for stmt in [
        "SET PASSWORD = PASSWORD('Sup3rSecret\\')",
        "ALTER USER dev IDENTIFIED BY 'ok' 'Sup3rSecret'",
        "CREATE USER x30 IDENTIFIED BY Sup3rSecret",
        "CREATE USER x30 IDENTIFIED BY `Sup3rSecret`",
    ] {
        let a = answer(mariadb(port, stmt));
        assert!(
            a.starts_with("ERROR") && !a.contains("Sup3rSecret"),
            "{stmt}: {a}"
        );
    }
    // Review: a subquery's unqualified name is the one the engine will read (the target's
    // database), not the session's.
    mariadb_ok(
        port,
        "CREATE DATABASE vault;
         CREATE TABLE vault.p (k INT, v STRING) PRIMARY KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1;
         CREATE TABLE vault.s (k INT, v STRING) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1;
         INSERT INTO vault.p VALUES (1, 'a'); INSERT INTO vault.s VALUES (1, 'hidden');
         GRANT UPDATE ON TABLE vault.p TO USER dev",
    );
    denied(
        as_user(
            port,
            "dev",
            "dev-new-pw",
            "UPDATE vault.p SET v = (SELECT v FROM s LIMIT 1) WHERE k = 1",
        ),
        "an unqualified subquery name in the target's database",
    );
    // An account holding the root role is root's to change, whatever its name.
    mariadb_ok(
        port,
        "CREATE USER boss IDENTIFIED BY 'boss-pw'; GRANT root TO USER boss",
    );
    denied(
        ua("ALTER USER boss IDENTIFIED BY 'taken'"),
        "ALTER USER of a root holder",
    );
    denied(ua("DROP USER boss"), "DROP USER of a root holder");
    // A REVOKE that removes nothing says so.
    let a = answer(mariadb(
        port,
        "GRANT SELECT ON ALL TABLES IN DATABASE vault TO USER dev; REVOKE SELECT ON TABLE vault.s FROM USER dev",
    ));
    assert!(a.contains("nothing was revoked"), "{a}");
    // Drivers end statements with `;`: still checked.
    denied(
        as_user(port, "dev", "dev-new-pw", "SHOW FRONTENDS;"),
        "SHOW FRONTENDS;",
    );
    // SHOW CATALOGS lists what the user may use.
    let r = as_user(port, "dev", "dev-new-pw", "SHOW CATALOGS");
    assert!(
        r.out.contains("default_catalog") && !r.out.contains("iceberg"),
        "{}",
        r.out
    );
    let log = server.log();
    for secret in ["dev-pw", "ua-pw", "evil", "Sup3rSecret", "dev-new-pw"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}
