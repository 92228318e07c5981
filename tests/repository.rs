//! The repository conformance suite: the same checks against the local filesystem and against
//! a real S3-protocol server (s3s-fs on 127.0.0.1, SigV4 on), configured as the seed's MinIO
//! example: content-addressed objects stored once, streamed multipart uploads, verified
//! downloads, manifests written create-if-absent, the snapshot listing with damaged entries,
//! DROP SNAPSHOT + GC leaving exactly the referenced objects, leases, read-only repositories,
//! and precise reasons for bad credentials, a missing bucket and an unreachable endpoint.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{ACCESS_KEY, S3Server, SECRET_KEY, assert_no_secret};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::Digest;
use srbackup::repo::format::{FileEntry, Source};
use srbackup::repo::gc::LeaseKind;
use srbackup::repo::{
    Encoding, Manifest, RepoError, Repository, RepositoryConfig, Sha256, SnapshotId,
};
use srbackup::sql::{self, Statement};

fn config(statement: &str) -> RepositoryConfig {
    match sql::parse_one(statement).unwrap() {
        Statement::CreateRepository(c) => srbackup::repo::resolve(&c).unwrap(),
        _ => panic!("not CREATE REPOSITORY"),
    }
}

enum Backend {
    Local(tempfile::TempDir),
    S3(S3Server),
    /// The S3 server reached the way GCS's XML interoperability is: no bulk delete.
    SingleDeletes(S3Server),
}

impl Backend {
    async fn local() -> Backend {
        Backend::Local(tempfile::tempdir().unwrap())
    }
    async fn s3() -> Backend {
        Backend::S3(S3Server::start(&["bucket-minio"]).await)
    }
    fn statement(&self, name: &str, read_only: bool) -> String {
        let stmt = match self {
            Backend::Local(dir) => format!(
                "CREATE REPOSITORY {name} WITH BROKER ON LOCATION \"file://{}/repo\"",
                dir.path().display()
            ),
            Backend::S3(server) | Backend::SingleDeletes(server) => {
                server.create_statement(name, "s3://bucket-minio/backup")
            }
        };
        if read_only {
            stmt.replacen("CREATE REPOSITORY", "CREATE READ ONLY REPOSITORY", 1)
        } else {
            stmt
        }
    }
    fn config(&self, name: &str, read_only: bool) -> RepositoryConfig {
        let mut c = config(&self.statement(name, read_only));
        if let (
            Backend::SingleDeletes(_),
            srbackup::repo::Backend::S3 {
                flavor,
                bulk_delete,
                ..
            },
        ) = (self, &mut c.backend)
        {
            *flavor = srbackup::repo::S3Flavor::GcsInterop;
            *bulk_delete = false;
        }
        c
    }
    fn open(&self, name: &str) -> Repository {
        Repository::open(&self.config(name, false)).unwrap()
    }
    fn open_read_only(&self, name: &str) -> Repository {
        Repository::open(&self.config(name, true)).unwrap()
    }
}

fn sha(bytes: &[u8]) -> Sha256 {
    Sha256::parse(&hex::encode(sha2::Sha256::digest(bytes))).unwrap()
}

/// Deterministic, poorly compressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn manifest(label: &str, ts: &str, files: &[FileEntry]) -> Manifest {
    Manifest {
        format: 1,
        label: label.to_string(),
        timestamp: ts.to_string(),
        source: Source {
            cluster: "test-cluster".to_string(),
            srbackup: "test".to_string(),
        },
        database: Some("sr_hub".to_string()),
        objects: vec![],
        functions: vec![],
        external_catalogs: vec![],
        files: files.to_vec(),
        privileges: None,
    }
}

async fn store_file(repo: &Repository, dir: &Path, name: &str, bytes: &[u8]) -> FileEntry {
    let path = write(dir, name, bytes);
    let hash = sha(bytes);
    let up = repo.upload_file(&path, &hash, None).await.unwrap();
    FileEntry {
        sha256: hash,
        bytes: up.bytes,
        stored_bytes: up.stored_bytes,
        encoding: up.encoding,
    }
}

async fn object_hashes(repo: &Repository) -> BTreeSet<String> {
    repo.list_objects()
        .await
        .unwrap()
        .keys()
        .map(|k| {
            srbackup::repo::format::parse_object_key(k)
                .unwrap()
                .0
                .to_string()
        })
        .collect()
}

async fn conformance(backend: Backend) {
    let work = tempfile::tempdir().unwrap();
    let repo = backend.open("test_repo");

    // A new location is initialized; the same location again is attached to.
    assert!(!repo.check().await.unwrap(), "a new repository");
    assert!(repo.check().await.unwrap(), "an existing repository");

    // Small object: one PUT; the same content again is not sent.
    let small = b"rowset bytes".repeat(100);
    let path = write(work.path(), "small", &small);
    let up = repo.upload_file(&path, &sha(&small), None).await.unwrap();
    assert!(up.sent);
    assert_eq!((up.bytes, up.stored_bytes), (1200, 1200));
    let again = repo.upload_file(&path, &sha(&small), None).await.unwrap();
    assert!(!again.sent, "content already stored must not be sent twice");
    assert_eq!(
        repo.find_object(&sha(&small))
            .await
            .unwrap()
            .map(|(encoding, meta)| (encoding, meta.size)),
        Some((Encoding::None, 1200))
    );

    // Large object: multipart (three 8 MiB parts), streamed back byte for byte.
    let large = noise(20 * 1024 * 1024 + 17, 7);
    let large_path = write(work.path(), "large", &large);
    let up = repo
        .upload_file(&large_path, &sha(&large), None)
        .await
        .unwrap();
    assert!(up.sent);
    assert_eq!(up.stored_bytes, large.len() as u64);
    let entry = FileEntry {
        sha256: sha(&large),
        bytes: large.len() as u64,
        stored_bytes: up.stored_bytes,
        encoding: Encoding::None,
    };
    let back = work.path().join("large.back");
    repo.download_file(&entry, &back).await.unwrap();
    assert!(std::fs::read(&back).unwrap() == large, "download differs");
    // From a remote store it came in ranged GETs, each of which checks the object's size
    // against the manifest's: a size that differs is damage, and nothing is left behind.
    if !repo.is_local() {
        let wrong = FileEntry {
            stored_bytes: up.stored_bytes - 1,
            ..entry.clone()
        };
        let at = work.path().join("large.wrong");
        match repo.download_file(&wrong, &at).await {
            Err(RepoError::Corrupt { .. }) => {}
            other => panic!("a wrong stored size must be caught, got {other:?}"),
        }
        assert!(!at.exists());
    }

    // zstd: stored smaller, decoded on the way back.
    let text = b"2024-01-01,Beijing,42\n".repeat(50_000);
    let text_path = write(work.path(), "text", &text);
    let up = repo
        .upload_file(&text_path, &sha(&text), Some(3))
        .await
        .unwrap();
    assert_eq!(up.encoding, Encoding::Zstd);
    assert!(up.stored_bytes * 20 < up.bytes, "{up:?}");
    let zentry = FileEntry {
        sha256: sha(&text),
        bytes: up.bytes,
        stored_bytes: up.stored_bytes,
        encoding: Encoding::Zstd,
    };
    let zback = work.path().join("text.back");
    repo.download_file(&zentry, &zback).await.unwrap();
    assert!(std::fs::read(&zback).unwrap() == text);

    // A local file that does not match its hash is refused and nothing is stored.
    let liar = write(work.path(), "liar", b"not what the catalog says");
    let claimed = sha(b"what the catalog says");
    match repo.upload_file(&liar, &claimed, None).await {
        Err(RepoError::Corrupt { .. }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(repo.find_object(&claimed).await.unwrap(), None);

    // A damaged object is caught on download, and the partial file is removed.
    let victim = b"victim rowset".repeat(10);
    let ventry = store_file(&repo, work.path(), "victim", &victim).await;
    let key = ObjectPath::from(srbackup::repo::format::object_key(
        &ventry.sha256,
        Encoding::None,
    ));
    let mut flipped = victim.clone();
    flipped[5] ^= 0x01;
    repo.store()
        .put(&key, PutPayload::from(flipped))
        .await
        .unwrap();
    let vback = work.path().join("victim.back");
    match repo.download_file(&ventry, &vback).await {
        Err(RepoError::Corrupt { .. }) => {}
        other => panic!("a flipped byte must be caught, got {other:?}"),
    }
    assert!(!vback.exists(), "a corrupt download must not leave a file");

    // Manifests: written once, listed by label, damaged ones shown as errors.
    let a = store_file(&repo, work.path(), "a", b"only in snapshot one").await;
    let shared = store_file(&repo, work.path(), "shared", b"in both snapshots").await;
    let b = store_file(&repo, work.path(), "b", b"only in snapshot two").await;
    let one = manifest(
        "sr_hub_backup",
        "2026-11-24-10-25-58-842",
        &[a.clone(), shared.clone()],
    );
    let two = manifest(
        "sr_hub_backup",
        "2026-11-25-10-25-58-001",
        &[shared.clone(), b.clone()],
    );
    let keep = manifest(
        "other_label",
        "2026-11-25-11-00-00-000",
        &[entry.clone(), zentry.clone()],
    );
    for m in [&one, &two, &keep] {
        repo.write_manifest(m).await.unwrap();
    }
    match repo.write_manifest(&one).await {
        Err(RepoError::Busy { reason, .. }) => assert!(reason.contains("already exists")),
        other => panic!("a manifest must never be replaced, got {other:?}"),
    }
    assert_eq!(repo.read_manifest(&one.id()).await.unwrap(), one);
    assert_eq!(
        repo.latest("sr_hub_backup").await.unwrap().timestamp,
        "2026-11-25-10-25-58-001"
    );
    repo.store()
        .put(
            &ObjectPath::from("snapshots/broken/2026-11-26-00-00-00-000.json"),
            PutPayload::from_static(b"{\"format\": 1, \"label\": "),
        )
        .await
        .unwrap();
    let listing = repo.list_snapshots().await.unwrap();
    let labels: Vec<&str> = listing.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(labels, ["broken", "other_label", "sr_hub_backup"]);
    assert!(
        listing[0].snapshots[0].1.is_err(),
        "damaged manifest shows as an error"
    );
    assert_eq!(listing[2].snapshots.len(), 2);
    match repo
        .read_manifest(&SnapshotId::new("nope", "2026-11-24-10-25-58-842").unwrap())
        .await
    {
        Err(e @ RepoError::NoSuchSnapshot { .. }) => {
            let text = format!(
                "{e} {:?}",
                miette::Diagnostic::help(&e).map(|h| h.to_string())
            );
            assert!(
                text.contains("sr_hub_backup (2026-11-24-10-25-58-842)"),
                "{text}"
            );
        }
        other => panic!("expected NoSuchSnapshot, got {other:?}"),
    }

    // GC refuses to guess while a manifest is unreadable.
    match repo.collect_garbage("test").await {
        Err(RepoError::Busy { reason, .. }) => assert!(reason.contains("broken"), "{reason}"),
        other => panic!("expected GC to refuse, got {other:?}"),
    }
    // Dropping the broken one sweeps what no snapshot names: the small object and the victim.
    let (_, report) = repo.drop_snapshot("broken", false, "test").await.unwrap();
    assert_eq!((report.deleted_objects, report.skipped), (2, None));
    assert!(!object_hashes(&repo).await.contains(sha(&small).as_str()));

    // A running backup's lease holds GC off; the manifests still go.
    let lease = repo.acquire(LeaseKind::Backup, "a backup").await.unwrap();
    let (dropped, report) = repo
        .drop_snapshot("sr_hub_backup", false, "test")
        .await
        .unwrap();
    assert_eq!(dropped.len(), 2);
    assert!(
        report.skipped.as_deref().unwrap_or("").contains("a backup"),
        "{report:?}"
    );
    assert!(object_hashes(&repo).await.contains(a.sha256.as_str()));
    // ... and GC refuses to start while it is held; a backup cannot start during GC either.
    assert!(matches!(
        repo.collect_garbage("test").await,
        Err(RepoError::Busy { .. })
    ));
    repo.release(lease).await.unwrap();

    // GC leaves exactly the objects the remaining manifests name.
    let report = repo.collect_garbage("test").await.unwrap();
    assert!(report.skipped.is_none());
    let left = object_hashes(&repo).await;
    let expected: BTreeSet<String> = keep.files.iter().map(|f| f.sha256.to_string()).collect();
    assert_eq!(left, expected);
    assert_eq!(report.deleted_objects, 3, "{report:?}");

    // DROP SNAPSHOT of a label that is not there: an error, or nothing with FORCE.
    assert!(matches!(
        repo.drop_snapshot("sr_hub_backup", false, "test").await,
        Err(RepoError::NoSuchSnapshot { .. })
    ));
    let (none, _) = repo
        .drop_snapshot("sr_hub_backup", true, "test")
        .await
        .unwrap();
    assert!(none.is_empty());

    // Read-only: listing and reading work, writing does not.
    let ro = backend.open_read_only("ro_repo");
    assert!(ro.check().await.unwrap());
    assert_eq!(ro.list_snapshots().await.unwrap().len(), 1);
    assert!(matches!(
        ro.write_manifest(&two).await,
        Err(RepoError::ReadOnly { .. })
    ));
    assert!(matches!(
        ro.drop_snapshot("other_label", false, "x").await,
        Err(RepoError::ReadOnly { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_the_local_filesystem() {
    conformance(Backend::local().await).await;
}

/// A local copy that fails names the file that failed: a rowset that cannot be read is the
/// cluster's (not the repository's), a repository object that cannot be read is the
/// repository's (not the restore's destination).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_local_copy_names_the_side_that_failed() {
    let backend = Backend::local().await;
    let Backend::Local(dir) = &backend else {
        unreachable!()
    };
    let repo = backend.open("test_repo");
    repo.check().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    // A "rowset" that is a directory: it opens, and its first read fails.
    let rowset = work.path().join("L1-0-5.parquet");
    std::fs::create_dir(&rowset).unwrap();
    let err = repo
        .upload_file(&rowset, &sha(b"anything"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("L1-0-5.parquet"), "{err}");
    let repository = dir.path().join("repo").display().to_string();
    assert!(
        !err.contains(&repository),
        "the repository is blamed: {err}"
    );

    // An object of 4096 bytes replaced by a directory (4096 bytes on this filesystem too).
    let bytes = noise(4096, 7);
    let entry = store_file(&repo, work.path(), "page", &bytes).await;
    let object = dir
        .path()
        .join("repo")
        .join(srbackup::repo::format::object_key(
            &entry.sha256,
            Encoding::None,
        ));
    std::fs::remove_file(&object).unwrap();
    std::fs::create_dir(&object).unwrap();
    if std::fs::metadata(&object).unwrap().len() == 4096 {
        let dest = work.path().join("R1-u0.parquet");
        let err = repo
            .download_file(&entry, &dest)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(entry.sha256.as_str()), "{err}");
        assert!(
            !err.contains("R1-u0.parquet"),
            "the destination is blamed: {err}"
        );
        assert!(!dest.exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_an_s3_server() {
    conformance(Backend::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_an_s3_server_deleting_one_object_at_a_time() {
    let server = S3Server::start(&["bucket-minio"]).await;
    conformance(Backend::SingleDeletes(server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_lease_holds_backups_off_and_expired_leases_are_ignored() {
    let backend = Backend::local().await;
    let repo = backend.open("r");
    repo.check().await.unwrap();
    let gc = repo.acquire(LeaseKind::Gc, "a sweeper").await.unwrap();
    match repo.acquire(LeaseKind::Backup, "a backup").await {
        Err(RepoError::Busy { reason, .. }) => assert!(reason.contains("a sweeper"), "{reason}"),
        other => panic!("expected Busy, got {other:?}"),
    }
    // Backups and restores do not exclude each other.
    repo.release(gc).await.unwrap();
    let b = repo.acquire(LeaseKind::Backup, "b").await.unwrap();
    let r = repo.acquire(LeaseKind::Restore, "r").await.unwrap();
    repo.release(b).await.unwrap();
    repo.release(r).await.unwrap();
    // A crashed holder's lease, long expired, does not block GC, which removes it.
    repo.store()
        .put(
            &ObjectPath::from("locks/backup-dead.json"),
            PutPayload::from_static(
                br#"{"kind":"backup","holder":"dead","expires":"2020-01-01T00:00:00Z"}"#,
            ),
        )
        .await
        .unwrap();
    repo.collect_garbage("gc").await.unwrap();
    assert!(
        repo.store()
            .head(&ObjectPath::from("locks/backup-dead.json"))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_formats_and_path_tricks_are_refused() {
    let backend = Backend::local().await;
    let repo = backend.open("r");
    repo.check().await.unwrap();
    let put = |key: &'static str, body: &'static [u8]| {
        let store = repo.store().clone();
        async move {
            store
                .put(&ObjectPath::from(key), PutPayload::from_static(body))
                .await
                .unwrap();
        }
    };
    put(
        "snapshots/newer/2026-11-24-10-25-58-842.json",
        br#"{"format": 2, "label": "newer"}"#,
    )
    .await;
    put(
        "snapshots/evil/2026-11-24-10-25-58-842.json",
        br#"{"format":1,"label":"evil","timestamp":"2026-11-24-10-25-58-842","source":{"cluster":"c","srbackup":"x"},"database":"../../etc","objects":[],"files":[]}"#,
    )
    .await;
    put(
        "snapshots/evilhash/2026-11-24-10-25-58-842.json",
        br#"{"format":1,"label":"evilhash","timestamp":"2026-11-24-10-25-58-842","source":{"cluster":"c","srbackup":"x"},"database":"d","files":[{"sha256":"../../../../etc/passwd","bytes":1,"stored_bytes":1,"encoding":"none"}]}"#,
    )
    .await;
    let listing = repo.list_snapshots().await.unwrap();
    let status = |label: &str| {
        listing.iter().find(|l| l.label == label).unwrap().snapshots[0]
            .1
            .clone()
            .unwrap_err()
    };
    assert!(
        status("newer").contains("newer than the 1"),
        "{}",
        status("newer")
    );
    assert!(
        status("evil").contains("not a valid database name"),
        "{}",
        status("evil")
    );
    assert!(
        status("evilhash").contains("not a SHA-256"),
        "{}",
        status("evilhash")
    );

    // A repository whose format file is newer is refused by name.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("srbackup-repository.json"),
        br#"{"format":"srbackup-repository","version":7,"created":"2030-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let newer = Repository::open(&config(&format!(
        "CREATE REPOSITORY n WITH BROKER ON LOCATION \"{}\"",
        dir.path().display()
    )))
    .unwrap();
    let e = newer.check().await.unwrap_err().to_string();
    assert!(
        e.contains("format version 7") && e.contains("upgrade"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_repository_names_what_is_wrong() {
    let server = S3Server::start(&["bucket-minio"]).await;
    let check = |statement: String| async move {
        let repo = Repository::open(&config(&statement)).unwrap();
        let e = repo.check().await.unwrap_err();
        let text = format!("{e}");
        assert_no_secret(&text);
        text
    };
    let wrong_secret = server
        .create_statement("r", "s3://bucket-minio/x")
        .replace(SECRET_KEY, "not-the-secret-key-at-all");
    let e = check(wrong_secret).await;
    assert!(e.contains("credentials were refused"), "{e}");
    let wrong_key = server
        .create_statement("r", "s3://bucket-minio/x")
        .replace(ACCESS_KEY, "AKIDUNKNOWN");
    let e = check(wrong_key).await;
    assert!(e.contains("credentials were refused"), "{e}");
    let e = check(server.create_statement("r", "s3://no-such-bucket/x")).await;
    assert!(e.contains("bucket does not exist"), "{e}");
    // Nothing listens on port 1 of the loopback.
    let e = check(
        server
            .create_statement("r", "s3://bucket-minio/x")
            .replace(&server.endpoint(), "http://127.0.0.1:1"),
    )
    .await;
    assert!(e.contains("unreachable"), "{e}");
    // READ ONLY on an empty location: nothing to attach to.
    let e = check(
        server
            .create_statement("r", "s3://bucket-minio/empty")
            .replacen("CREATE REPOSITORY", "CREATE READ ONLY REPOSITORY", 1),
    )
    .await;
    assert!(e.contains("must already exist"), "{e}");
}

/// Every output of a session, as text, for the no-secret check.
fn all_text(outputs: &[srbackup::results::Output]) -> String {
    format!("{outputs:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_statements_create_show_drop_attach_and_list_snapshots() {
    use common::{fails, rows, run};
    use srbackup::session::Session;

    let server = S3Server::start(&["bucket-minio"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("cluster")).unwrap();
    let create = server.create_statement("test_repo", "s3://bucket-minio/backup");
    let out = run(&mut s, &create).await;
    assert!(
        all_text(&out).contains("created a new repository"),
        "{out:?}"
    );
    let local = format!(
        "CREATE READ ONLY REPOSITORY ro_repo WITH BROKER ON LOCATION \"{}/local\"",
        dir.path().display()
    );
    // READ ONLY needs an existing repository: make one there first.
    let err = fails(&mut s, &local).await;
    assert!(err.contains("must already exist"), "{err}");
    run(
        &mut s,
        &local
            .replace("READ ONLY ", "")
            .replace("ro_repo", "local_repo"),
    )
    .await;
    run(&mut s, &local).await;

    let rs = rows(&mut s, "SHOW REPOSITORIES").await;
    assert_eq!(
        rs.columns,
        [
            "RepoId",
            "RepoName",
            "CreateTime",
            "IsReadOnly",
            "Location",
            "Broker",
            "ErrMsg"
        ]
    );
    assert_eq!(rs.rows.len(), 3);
    assert_eq!(rs.get(0, "RepoName"), Some("test_repo"));
    assert_eq!(rs.get(0, "Location"), Some("s3://bucket-minio/backup"));
    assert_eq!(rs.get(2, "IsReadOnly"), Some("true"));
    assert_no_secret(&format!("{rs:?}"));

    let err = fails(&mut s, &create).await;
    assert!(err.contains("repository test_repo already exists"), "{err}");
    assert_no_secret(&err);

    // Snapshots written into the repository (by a backup, in real use).
    let repo = Repository::open(&config(&create)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let f = store_file(&repo, work.path(), "f", b"some rowset").await;
    let m1 = manifest(
        "sr_hub_backup",
        "2026-11-24-10-25-58-842",
        std::slice::from_ref(&f),
    );
    let m2 = manifest(
        "sr_hub_backup",
        "2026-11-25-10-25-58-842",
        std::slice::from_ref(&f),
    );
    let m3 = manifest("sr_member_backup", "2026-11-24-11-00-00-000", &[]);
    for m in [&m1, &m2, &m3] {
        repo.write_manifest(m).await.unwrap();
    }

    let rs = rows(&mut s, "SHOW SNAPSHOT ON test_repo").await;
    assert_eq!(rs.columns, ["Snapshot", "Timestamp", "Status"]);
    assert_eq!(rs.rows.len(), 2);
    assert_eq!(rs.get(0, "Snapshot"), Some("sr_hub_backup"));
    assert_eq!(
        rs.get(0, "Timestamp"),
        Some("2026-11-24-10-25-58-842\n2026-11-25-10-25-58-842")
    );
    assert_eq!(rs.get(0, "Status"), Some("OK"));
    let rs = rows(
        &mut s,
        "SHOW SNAPSHOT ON test_repo WHERE SNAPSHOT = \"sr_member_backup\"",
    )
    .await;
    assert_eq!(rs.rows.len(), 1);
    let rs = rows(
        &mut s,
        "SHOW SNAPSHOT ON test_repo WHERE SNAPSHOT = \"sr_hub_backup\" AND TIMESTAMP = \"2026-11-25-10-25-58-842\"",
    )
    .await;
    assert_eq!(
        rs.columns,
        ["Snapshot", "Timestamp", "Database", "Details", "Status"]
    );
    assert_eq!(rs.rows.len(), 1);
    assert_eq!(rs.get(0, "Database"), Some("sr_hub"));
    let details: serde_json::Value = serde_json::from_str(rs.get(0, "Details").unwrap()).unwrap();
    assert_eq!(details["files"], 1);

    let err = fails(&mut s, "SHOW SNAPSHOT ON test_rep").await;
    assert!(err.contains("repository test_rep does not exist"), "{err}");
    assert!(err.contains("did you mean test_repo?"), "{err}");

    // DROP SNAPSHOT removes every timestamp of the label, then the object only they named.
    let out = run(&mut s, "DROP SNAPSHOT sr_hub_backup ON test_repo").await;
    let text = all_text(&out);
    assert!(
        text.contains("dropped 2 snapshots of sr_hub_backup"),
        "{text}"
    );
    assert!(text.contains("deleted 1 unreferenced objects"), "{text}");
    let err = fails(&mut s, "DROP SNAPSHOT sr_hub_backup ON test_repo").await;
    assert!(err.contains("has no snapshot sr_hub_backup"), "{err}");
    assert!(err.contains("sr_member_backup"), "{err}");
    run(&mut s, "DROP SNAPSHOT sr_hub_backup ON test_repo FORCE").await;
    let err = fails(&mut s, "DROP SNAPSHOT sr_member_backup ON ro_repo").await;
    assert!(err.contains("read-only"), "{err}");

    // DROP REPOSITORY forgets the mapping only; another cluster attaches to the data.
    run(&mut s, "DROP REPOSITORY test_repo").await;
    let err = fails(&mut s, "SHOW SNAPSHOT ON test_repo").await;
    assert!(err.contains("does not exist"), "{err}");
    let mut other = Session::open(&dir.path().join("cluster2")).unwrap();
    let out = run(&mut other, &create).await;
    assert!(
        all_text(&out).contains("attached to the existing repository"),
        "{out:?}"
    );
    let rs = rows(&mut other, "SHOW SNAPSHOT ON test_repo").await;
    assert_eq!(rs.get(0, "Snapshot"), Some("sr_member_backup"));

    // A repository that cannot be reached: the error and ErrMsg say why, without secrets.
    drop(server);
    let err = fails(&mut other, "SHOW SNAPSHOT ON test_repo").await;
    assert!(err.contains("unreachable"), "{err}");
    assert_no_secret(&err);
    let rs = rows(&mut other, "SHOW REPOSITORIES").await;
    assert!(
        rs.get(0, "ErrMsg").unwrap().contains("unreachable"),
        "{rs:?}"
    );
    assert_no_secret(&format!("{rs:?}"));
}

/// HDFS: no cluster can run here (no Maven Central for MiniDFS), so the client is proven to be
/// wired up by failing clearly against a closed loopback port; set HDFS_URL (for example
/// `hdfs://127.0.0.1:9000/srbackup-test`) to run the conformance suite against a real cluster.
#[cfg(feature = "hdfs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_repositories_use_the_native_client() {
    match std::env::var("HDFS_URL") {
        Ok(url) => {
            let repo = Repository::open(&config(&format!(
                "CREATE REPOSITORY h WITH BROKER ON LOCATION \"{url}\""
            )))
            .unwrap();
            repo.check().await.unwrap();
            let work = tempfile::tempdir().unwrap();
            let f = store_file(&repo, work.path(), "f", &noise(10 * 1024 * 1024, 3)).await;
            let back = work.path().join("back");
            repo.download_file(&f, &back).await.unwrap();
        }
        Err(_) => {
            let repo = Repository::open(&config(
                "CREATE REPOSITORY h WITH BROKER ON LOCATION \"hdfs://127.0.0.1:1/backup\" PROPERTIES (\"username\" = \"srbackup\")",
            ))
            .unwrap();
            let e = tokio::time::timeout(std::time::Duration::from_secs(120), repo.check())
                .await
                .expect("a closed port fails promptly")
                .unwrap_err()
                .to_string();
            assert!(e.contains("repository h") && e.contains("failed"), "{e}");
        }
    }
}

#[cfg(not(feature = "hdfs"))]
#[test]
fn without_the_hdfs_feature_hdfs_repositories_say_how_to_get_it() {
    let e = Repository::open(&config(
        "CREATE REPOSITORY h WITH BROKER ON LOCATION \"hdfs://127.0.0.1:1/backup\"",
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("--features hdfs"), "{e}");
}
