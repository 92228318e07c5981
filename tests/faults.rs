//! Jobs against a repository that misbehaves (cargo feature `faults`): transient errors,
//! timeouts and cut-short reads are retried until the job succeeds; refused writes or reads
//! fail the job with a clear error and leave nothing half-visible; a flipped byte is always
//! caught.
#![cfg(feature = "faults")]

mod common;

use common::{FIXTURE, S3Server, checksums, fails, rows, run};
use srbackup::repo::faults::{self, Faults};
use srbackup::session::Session;

/// A cluster with the fixture and a repository; returns its location (the faults' key).
async fn setup(s: &mut Session, create: &str) {
    run(s, FIXTURE).await;
    run(s, create).await;
}

fn local(dir: &std::path::Path) -> (String, String) {
    let location = dir.join("repo").display().to_string();
    (
        format!("CREATE REPOSITORY r WITH BROKER ON LOCATION \"{location}\""),
        location,
    )
}

async fn transient_faults_are_retried(create: &str, location: &str, s: &mut Session) {
    setup(s, create).await;
    faults::install(
        location,
        Faults {
            errors: 0.15,
            timeouts: 0.05,
            truncated_reads: 0.1,
            seed: 7,
            ..Faults::default()
        },
    );
    let out = run(s, "BACKUP DATABASE sr_hub SNAPSHOT flaky TO r").await;
    assert!(format!("{out:?}").contains("FINISHED"), "{out:?}");
    run(
        s,
        "RESTORE SNAPSHOT flaky FROM r DATABASE sr_hub AS survived",
    )
    .await;
    faults::uninstall(location);
    assert_eq!(checksums(s, "survived").await, checksums(s, "sr_hub").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_on_a_local_repository_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    let (create, location) = local(dir.path());
    transient_faults_are_retried(&create, &location, &mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_on_an_s3_server_are_retried() {
    let server = S3Server::start(&["bucket-minio"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    let create = server.create_statement("r", "s3://bucket-minio/flaky");
    transient_faults_are_retried(&create, "s3://bucket-minio/flaky", &mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_fail_the_backup_and_no_snapshot_appears() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    let (create, location) = local(dir.path());
    setup(&mut s, &create).await;
    faults::install(
        &location,
        Faults {
            refuse_writes: true,
            ..Faults::default()
        },
    );
    let e = fails(&mut s, "BACKUP DATABASE sr_hub SNAPSHOT never TO r").await;
    faults::uninstall(&location);
    assert!(
        e.contains("CANCELLED") && e.contains("injected fault"),
        "{e}"
    );
    let snapshots = rows(&mut s, "SHOW SNAPSHOT ON r").await;
    assert!(snapshots.rows.is_empty(), "{snapshots:?}");
    let jobs = rows(&mut s, "SHOW BACKUP FROM sr_hub").await;
    assert_eq!(jobs.get(0, "Status"), Some("[FAILED]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reads_fail_the_restore_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    let (create, location) = local(dir.path());
    setup(&mut s, &create).await;
    run(&mut s, "BACKUP DATABASE sr_hub SNAPSHOT base TO r").await;
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_pmc VALUES (8888, 2, 'new', '2024-05-05')",
    )
    .await;
    let before = checksums(&mut s, "sr_hub").await;
    faults::install(
        &location,
        Faults {
            refuse_reads: true,
            ..Faults::default()
        },
    );
    // Over the existing database: it stays exactly as it was, and takes loads.
    let e = fails(&mut s, "RESTORE SNAPSHOT base FROM r DATABASE sr_hub").await;
    assert!(e.contains("injected fault"), "{e}");
    assert_eq!(checksums(&mut s, "sr_hub").await, before);
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_pmc VALUES (8889, 2, 'ok', '2024-05-05')",
    )
    .await;
    // Into a new database: no table and no database appear.
    fails(
        &mut s,
        "RESTORE SNAPSHOT base FROM r DATABASE sr_hub AS fresh",
    )
    .await;
    faults::uninstall(&location);
    let dbs = rows(&mut s, "SHOW DATABASES").await;
    assert!(!format!("{dbs:?}").contains("fresh"), "{dbs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_always_caught() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    let (create, location) = local(dir.path());
    setup(&mut s, &create).await;
    run(&mut s, "BACKUP DATABASE sr_hub SNAPSHOT base TO r").await;
    faults::install(
        &location,
        Faults {
            flipped_reads: 1.0,
            ..Faults::default()
        },
    );
    let e = fails(
        &mut s,
        "RESTORE SNAPSHOT base FROM r DATABASE sr_hub AS flipped",
    )
    .await;
    assert!(e.contains("corrupt"), "{e}");
    // verify reads every object and reports each one as damaged.
    let repo =
        srbackup::repo::registry::open(s.engine().catalog(), &srbackup::sql::Ident::new("r"))
            .unwrap();
    let id = repo.latest("base").await.unwrap();
    let manifest = repo.read_manifest(&id).await.unwrap();
    let report = repo.verify_snapshot(&manifest, 4).await;
    assert_eq!(
        report.damaged.len() as u64,
        report.files,
        "every read was flipped"
    );
    faults::uninstall(&location);
    let dbs = rows(&mut s, "SHOW DATABASES").await;
    assert!(!format!("{dbs:?}").contains("flipped"), "{dbs:?}");
}
