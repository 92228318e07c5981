//! BACKUP and RESTORE end to end: every seed statement against the sr_hub fixture, on a local
//! repository and on an S3-protocol server (s3s-fs on 127.0.0.1); migration between clusters;
//! stale plans; one job per database; corruption caught by restore and by verify.

mod common;

use common::{
    FIXTURE, S3Server, assert_no_secret, checksums, fails, hub_with_local_repo, rows, run,
};
use srbackup::results::Output;
use srbackup::session::Session;
use srbackup::sql::{self, Statement};

const SEED: &str = include_str!("../fixtures/seed-statements.sql");

/// The timestamps the seed's RESTORE statements carry, by snapshot label.
fn seed_time(label: &str) -> &'static str {
    if label == "sr_hub_backup" {
        "2024-12-09-10-25-58-842"
    } else {
        "2024-12-09-10-52-10-940"
    }
}

/// The seed's statements of the kinds a cluster runs, with their text.
fn seed_statements() -> Vec<(Statement, String)> {
    let parsed = sql::parse(SEED).unwrap();
    parsed
        .into_iter()
        .map(|s| {
            let span = s.span();
            let text = SEED[span.start..span.end].to_string();
            (s, text)
        })
        .collect()
}

fn message(outputs: &[Output]) -> String {
    match outputs.last() {
        Some(Output::Done { message, .. }) => message.clone(),
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn whole_seed(create_repository: String) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("cluster")).unwrap();
    run(&mut s, FIXTURE).await;
    run(&mut s, &create_repository).await;
    let baseline = checksums(&mut s, "sr_hub").await;
    let mut backups = 0;
    let mut restores = 0;
    for (stmt, text) in seed_statements() {
        match &stmt {
            Statement::Backup(b) => {
                s.set_snapshot_time(Some(seed_time(&b.snapshot.value).to_string()));
                let out = run(&mut s, &text).await;
                let m = message(&out);
                assert!(m.contains("FINISHED"), "{text}\n{m}");
                backups += 1;
            }
            Statement::Restore(_) => {
                let out = run(&mut s, &text).await;
                let m = message(&out);
                assert!(m.contains("FINISHED"), "{text}\n{m}");
                // Overwriting sr_hub with its own snapshot leaves it exactly as it was.
                assert_eq!(checksums(&mut s, "sr_hub").await, baseline, "after {text}");
                restores += 1;
            }
            Statement::ShowSnapshot(_)
            | Statement::CancelBackup(_)
            | Statement::CancelRestore(_) => {
                let out = run(&mut s, &text).await;
                assert_no_secret(&format!("{out:?}"));
            }
            _ => {}
        }
    }
    assert_eq!((backups, restores), (20, 26));
    // `DATABASE sr_hub AS sr_hub_new` restored everything once: all of it equals the source.
    let restored = checksums(&mut s, "sr_hub_new").await;
    assert_eq!(restored, baseline);
    // `TABLE sr_member AS sr_member_new` into sr_hub_new.
    let a = rows(&mut s, "CHECKSUM TABLE sr_hub.sr_member").await;
    let b = rows(&mut s, "CHECKSUM TABLE sr_hub_new.sr_member_new").await;
    assert_eq!(a.get(0, "Checksum"), b.get(0, "Checksum"));
    // Functions and external catalogs came back, renamed where the statement said so.
    let f = rows(&mut s, "SHOW FUNCTIONS FROM sr_hub_new").await;
    assert_eq!(f.rows.len(), 3, "{f:?}");
    let c = rows(&mut s, "SHOW CATALOGS").await;
    let names: Vec<&str> = (0..c.rows.len())
        .filter_map(|i| c.rows[i][0].as_deref())
        .collect();
    assert!(
        names.contains(&"iceberg_new") && names.contains(&"hive"),
        "{names:?}"
    );
    // Every job is listed as StarRocks lists them.
    let jobs = rows(&mut s, "SHOW BACKUP FROM sr_hub").await;
    assert_eq!(jobs.get(0, "State"), Some("FINISHED"));
    let jobs = rows(&mut s, "SHOW RESTORE FROM sr_hub").await;
    assert_eq!(jobs.get(0, "State"), Some("FINISHED"));
    assert_eq!(jobs.get(0, "Status"), Some("[OK]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_backup_and_restore_runs_on_a_local_repository() {
    let repo = tempfile::tempdir().unwrap();
    whole_seed(format!(
        "CREATE REPOSITORY test_repo WITH BROKER ON LOCATION \"{}\"",
        repo.path().display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_backup_and_restore_runs_on_an_s3_server() {
    let server = S3Server::start(&["bucket-minio"]).await;
    whole_seed(server.create_statement("test_repo", "s3://bucket-minio/backup")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_migrates_a_database_to_another_cluster() {
    let server = S3Server::start(&["bucket-minio"]).await;
    let create = server.create_statement("test_repo", "s3://bucket-minio/migrate");
    let dir = tempfile::tempdir().unwrap();
    let mut a = Session::open(&dir.path().join("a")).unwrap();
    run(&mut a, FIXTURE).await;
    run(&mut a, &create).await;
    run(
        &mut a,
        "BACKUP DATABASE sr_hub SNAPSHOT moving TO test_repo",
    )
    .await;
    let source = checksums(&mut a, "sr_hub").await;

    let mut b = Session::open(&dir.path().join("b")).unwrap();
    let out = run(&mut b, &create).await;
    assert!(message(&out).contains("attached"), "{out:?}");
    run(
        &mut b,
        "RESTORE SNAPSHOT moving FROM test_repo DATABASE sr_hub",
    )
    .await;
    assert_eq!(checksums(&mut b, "sr_hub").await, source);
    // The async MVs found their base tables in the new cluster: active.
    let mvs = rows(&mut b, "SHOW MATERIALIZED VIEWS FROM sr_hub").await;
    for i in 0..mvs.rows.len() {
        assert_eq!(mvs.get(i, "is_active"), Some("true"), "{mvs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mv_restored_without_its_base_tables_stays_inactive_and_says_why() {
    let (_dir, _repo, mut s) = hub_with_local_repo().await;
    run(
        &mut s,
        "BACKUP DATABASE sr_hub SNAPSHOT mv_only TO r ON (MATERIALIZED VIEW sr_mv2)",
    )
    .await;
    run(
        &mut s,
        "RESTORE SNAPSHOT mv_only FROM r DATABASE sr_hub AS lonely",
    )
    .await;
    let mvs = rows(&mut s, "SHOW MATERIALIZED VIEWS FROM lonely").await;
    assert_eq!(mvs.get(0, "is_active"), Some("false"), "{mvs:?}");
    let reason = mvs.get(0, "inactive_reason").unwrap_or_default();
    assert!(
        reason.contains("lonely.sr_member, lonely.sr_pmc are neither restored nor present"),
        "{reason}"
    );
    // Its data was restored all the same.
    let a = rows(&mut s, "CHECKSUM TABLE sr_hub.sr_mv2").await;
    let b = rows(&mut s, "CHECKSUM TABLE lonely.sr_mv2").await;
    assert_eq!(a.get(0, "Checksum"), b.get(0, "Checksum"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_backup_sends_only_what_changed() {
    let (_dir, _repo, mut s) = hub_with_local_repo().await;
    let first = message(&run(&mut s, "BACKUP DATABASE sr_hub SNAPSHOT s1 TO r").await);
    assert!(first.contains("45 files"), "{first}");
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_pmc VALUES (9999, 1, 'new', '2024-01-01')",
    )
    .await;
    let second = message(&run(&mut s, "BACKUP DATABASE sr_hub SNAPSHOT s2 TO r").await);
    // One new rowset in sr_pmc (merge-on-write rewrites its tablet) and sr_mv2 is unchanged
    // (no refresh): everything else is already in the repository.
    let sent: u64 = second
        .split(" of ")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((1..=3).contains(&sent), "{second}");
    // The rest is counted as found, not sent, and the rate is of the bytes sent.
    assert!(
        second.contains(&format!("{} files (", 45 - sent))
            && second.contains("already in the repository"),
        "{second}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_plans_busy_databases_and_damaged_objects_are_refused() {
    let (_dir, repo, mut s) = hub_with_local_repo().await;

    // A plan made before a load no longer describes the data: refused.
    let text = "BACKUP DATABASE sr_hub SNAPSHOT stale TO r ON (TABLE sr_region)";
    let stmt = sql::parse_one(text).unwrap();
    let plan = srbackup::plan::plan(s.engine(), &stmt, text).await.unwrap();
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_region VALUES ('west', 9, 'Mesa')",
    )
    .await;
    let e = srbackup::exec::apply(
        s.engine(),
        &plan,
        &srbackup::exec::progress::Silent,
        Default::default(),
    )
    .await
    .unwrap_err();
    let e = format!("{e:?}");
    assert!(e.contains("stale") && e.contains("re-plan"), "{e}");

    // One job per database: a job this process holds blocks another.
    let holder = s
        .engine()
        .catalog()
        .write(|tx| {
            tx.accept_job(
                &srbackup::catalog::NewJob {
                    kind: srbackup::catalog::JobKind::Restore,
                    label: "other",
                    db_name: "sr_hub",
                    plan: "{}",
                    snapshot_timestamp: None,
                    timeout_seconds: 86400,
                    process: srbackup::process::Process::current(),
                    owner: "",
                },
                &[],
            )
        })
        .unwrap()
        .unwrap();
    let e = fails(&mut s, "BACKUP DATABASE sr_hub SNAPSHOT busy TO r").await;
    assert!(
        e.contains("Can only run one backup or restore job of a database at same time")
            && e.contains(&format!("RESTORE job {holder} (other)")),
        "{e}"
    );
    s.engine()
        .catalog()
        .write(|tx| {
            tx.finish_job(
                holder,
                srbackup::catalog::JobState::Cancelled,
                srbackup::catalog::JobStatus::Cancelled,
                None,
            )
        })
        .unwrap();

    // A flipped byte in the repository: restore fails before touching sr_hub, verify names it.
    run(
        &mut s,
        "BACKUP DATABASE sr_hub SNAPSHOT good TO r ON (TABLE sr_pmc)",
    )
    .await;
    let before = rows(&mut s, "CHECKSUM TABLE sr_hub.sr_pmc").await;
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_pmc VALUES (5000, 1, 'later', '2024-01-01')",
    )
    .await;
    let changed = rows(&mut s, "CHECKSUM TABLE sr_hub.sr_pmc").await;
    assert_ne!(before.get(0, "Checksum"), changed.get(0, "Checksum"));
    let objects = walk(&repo.path().join("objects"));
    let victim = objects
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(victim, bytes).unwrap();
    let e = fails(&mut s, "RESTORE SNAPSHOT good FROM r DATABASE sr_hub").await;
    assert!(e.contains("CANCELLED") && e.contains("corrupt"), "{e}");
    // Atomic: the table it would have overwritten is exactly as it was, and takes loads.
    let after = rows(&mut s, "CHECKSUM TABLE sr_hub.sr_pmc").await;
    assert_eq!(after.get(0, "Checksum"), changed.get(0, "Checksum"));
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_pmc VALUES (5001, 1, 'still', '2024-01-01')",
    )
    .await;
    let jobs = rows(&mut s, "SHOW RESTORE FROM sr_hub").await;
    assert_eq!(jobs.get(0, "State"), Some("CANCELLED"));
    assert!(
        jobs.get(0, "TaskErrMsg")
            .unwrap_or_default()
            .contains("corrupt")
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_backups_restore_byte_for_byte() {
    let (_dir, repo, mut s) = hub_with_local_repo().await;
    run(
        &mut s,
        "BACKUP DATABASE sr_hub SNAPSHOT z TO r PROPERTIES (\"compression\" = \"zstd:9\")",
    )
    .await;
    let stored: Vec<_> = walk(&repo.path().join("objects"));
    assert!(!stored.is_empty());
    assert!(
        stored
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "zst"))
    );
    run(
        &mut s,
        "RESTORE SNAPSHOT z FROM r DATABASE sr_hub AS unzipped",
    )
    .await;
    assert_eq!(
        checksums(&mut s, "unzipped").await,
        checksums(&mut s, "sr_hub").await
    );
}
