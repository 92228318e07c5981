//! Encrypted repositories (`"encryption" = "aes-256-gcm"`, format version 2): a round trip on a
//! local and an S3 repository, no plaintext in any stored byte or name, dedup still working, a
//! wrong or missing key refused before anything is read or written, and a flipped byte caught
//! by the authentication tag.

mod common;

use std::path::Path;

use common::{S3Server, checksums, fails, run};
use srbackup::session::Session;

const KEY: &str = "5f1e0c3b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
const OTHER_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";
const CANARY: &str = "CANARY-plaintext-7731-in-clear";

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every stored byte and every name under `dir`: what an attacker with the bucket sees.
fn leaks(dir: &Path, needles: &[&[u8]]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let name = f.to_string_lossy().into_owned();
        for n in needles {
            if contains(&bytes, n) || contains(name.as_bytes(), n) {
                found.push(format!("{} holds {:?}", name, String::from_utf8_lossy(n)));
            }
        }
    }
    found
}

/// CREATE REPOSITORY `name` at `location`, encrypted with `key`.
fn encrypted(name: &str, location: &Path, key: &str) -> String {
    format!(
        "CREATE REPOSITORY {name} WITH BROKER ON LOCATION \"{}\" PROPERTIES (\"encryption\" = \"aes-256-gcm\", \"encryption.key\" = \"{key}\")",
        location.display()
    )
}

/// A cluster with an encrypted repository `r` holding a backup `label` of sr_event.
async fn encrypted_cluster_with(label: &str) -> (tempfile::TempDir, std::path::PathBuf, Session) {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    let mut s = cluster(dir.path()).await;
    run(&mut s, &encrypted("r", &repo_dir, KEY)).await;
    run(
        &mut s,
        &format!("BACKUP DATABASE sr_hub SNAPSHOT {label} TO r ON (TABLE sr_event)"),
    )
    .await;
    (dir, repo_dir, s)
}

async fn cluster(dir: &Path) -> Session {
    let mut s = Session::open(&dir.join("c")).unwrap();
    run(&mut s, common::FIXTURE).await;
    run(
        &mut s,
        &format!("INSERT INTO sr_hub.sr_region VALUES ('west', 99, '{CANARY}')"),
    )
    .await;
    s
}

/// The rowset files' plain SHA-256s (what an unencrypted repository names its objects by).
fn rowset_hashes(s: &mut Session) -> Vec<String> {
    let root = s.engine().root().join("data");
    files_under(&root)
        .into_iter()
        .map(|f| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(std::fs::read(f).unwrap()))
        })
        .collect()
}

async fn checksums_of(s: &mut Session, db: &str, table: &str) -> String {
    let rs = common::rows(s, &format!("CHECKSUM TABLE {db}.{table}")).await;
    format!("{:?}", &rs.rows[0][1..])
}

async fn round_trip(s: &mut Session, repo: &str, store_root: &Path) {
    run(s, &format!("BACKUP DATABASE sr_hub SNAPSHOT enc TO {repo}")).await;
    let before = checksums(s, "sr_hub").await;
    run(
        s,
        &format!("RESTORE SNAPSHOT enc FROM {repo} DATABASE sr_hub AS sr_copy"),
    )
    .await;
    assert_eq!(checksums(s, "sr_copy").await, before);

    // Nothing in clear: no row value, no Parquet file, no table name (manifests are sealed),
    // no plain content hash as an object name.
    let hashes = rowset_hashes(s);
    let mut needles: Vec<&[u8]> = vec![
        CANARY.as_bytes(),
        b"project_renamed",
        b"PAR1",
        b"sr_member",
        KEY.as_bytes(),
    ];
    needles.extend(hashes.iter().map(|h| h.as_bytes()));
    let found = leaks(store_root, &needles);
    assert!(
        found.is_empty(),
        "plaintext in the repository:\n{}",
        found.join("\n")
    );

    // Dedup within the repository: the second backup sends nothing.
    let out = run(
        s,
        &format!("BACKUP DATABASE sr_hub SNAPSHOT enc2 TO {repo}"),
    )
    .await;
    let text = format!("{out:?}");
    assert!(
        text.contains(" 0 of "),
        "the second backup sent files again: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_encrypted_repository_round_trips_and_stores_nothing_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let mut s = cluster(dir.path()).await;
    run(&mut s, &encrypted("r", &repo, KEY)).await;
    let format = std::fs::read_to_string(repo.join("srbackup-repository.json")).unwrap();
    assert!(format.contains("\"version\": 2"), "{format}");
    round_trip(&mut s, "r", &repo).await;

    // The key is never shown: SHOW REPOSITORIES and the catalog file hold it sealed.
    let shown = format!("{:?}", run(&mut s, "SHOW REPOSITORIES").await);
    assert!(!shown.contains(KEY), "{shown}");
    let catalog = std::fs::read(dir.path().join("c/catalog.db")).unwrap();
    assert!(
        !contains(&catalog, KEY.as_bytes()),
        "the key is in clear in catalog.db"
    );

    // Control: the same backup into an unencrypted repository does hold Parquet in clear (the
    // plaintext checks above can fail).
    let plain = dir.path().join("plain");
    run(
        &mut s,
        &format!(
            "CREATE REPOSITORY p WITH BROKER ON LOCATION \"{}\"",
            plain.display()
        ),
    )
    .await;
    run(&mut s, "BACKUP DATABASE sr_hub SNAPSHOT enc TO p").await;
    assert!(!leaks(&plain, &[b"PAR1", b"sr_member"]).is_empty());

    // A flipped byte in an object: the restore fails on the authentication tag, names the
    // object, and leaves nothing behind.
    let objects: Vec<_> = files_under(&repo.join("objects"))
        .into_iter()
        .filter(|f| std::fs::metadata(f).unwrap().len() > 200)
        .collect();
    let victim = &objects[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(victim, bytes).unwrap();
    let err = fails(
        &mut s,
        "RESTORE SNAPSHOT enc FROM r DATABASE sr_hub AS sr_flip",
    )
    .await;
    assert!(
        err.contains("authentication failed") || err.contains("do not decrypt"),
        "{err}"
    );
    let dbs = format!("{:?}", run(&mut s, "SHOW DATABASES").await);
    assert!(!dbs.contains("sr_flip"), "{dbs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_missing_key_is_refused_before_anything_is_read_or_written() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let mut s = cluster(dir.path()).await;
    run(&mut s, &encrypted("r", &repo, KEY)).await;
    run(&mut s, "BACKUP DATABASE sr_hub SNAPSHOT enc TO r").await;
    let listing = |p: &Path| {
        let mut v: Vec<_> = files_under(p)
            .into_iter()
            .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = listing(&repo);

    // A second cluster attaching with another key, with none, or with a passphrase.
    let other = tempfile::tempdir().unwrap();
    let mut t = Session::open(&other.path().join("c")).unwrap();
    let wrong = fails(&mut t, &encrypted("r", &repo, OTHER_KEY)).await;
    assert!(wrong.contains("wrong key"), "{wrong}");
    assert!(!wrong.contains(OTHER_KEY), "the key was echoed: {wrong}");
    let none = fails(
        &mut t,
        &format!(
            "CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\"",
            repo.display()
        ),
    )
    .await;
    assert!(none.contains("it is encrypted"), "{none}");
    // The key file form with the right key attaches and restores.
    let key_file = other.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    run(
        &mut t,
        &format!(
            "CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\" PROPERTIES (\"encryption\" = \"aes-256-gcm\", \"encryption.key_file\" = \"{}\")",
            repo.display(),
            key_file.display()
        ),
    )
    .await;
    run(&mut t, "RESTORE SNAPSHOT enc FROM r DATABASE sr_hub").await;
    assert_eq!(
        checksums(&mut t, "sr_hub").await,
        checksums(&mut s, "sr_hub").await
    );
    // A key file that changed since (now the wrong key): jobs fail before touching anything.
    std::fs::write(&key_file, OTHER_KEY).unwrap();
    let changed = fails(
        &mut t,
        "RESTORE SNAPSHOT enc FROM r DATABASE sr_hub AS again",
    )
    .await;
    assert!(changed.contains("wrong key"), "{changed}");
    let shown = fails(&mut t, "SHOW SNAPSHOT ON r").await;
    assert!(shown.contains("wrong key"), "{shown}");
    assert_eq!(
        listing(&repo),
        before,
        "a refused key changed the repository"
    );

    // Encryption properties on an unencrypted repository are refused too.
    let plain = dir.path().join("plain");
    run(
        &mut s,
        &format!(
            "CREATE REPOSITORY p WITH BROKER ON LOCATION \"{}\"",
            plain.display()
        ),
    )
    .await;
    let mut u = Session::open(&dir.path().join("u")).unwrap();
    let not = fails(&mut u, &encrypted("p", &plain, KEY)).await;
    assert!(not.contains("not encrypted"), "{not}");

    // Malformed properties point at themselves.
    let short = fails(
        &mut u,
        "CREATE REPOSITORY q WITH BROKER ON LOCATION \"/tmp/x\" PROPERTIES (\"encryption\" = \"aes-256-gcm\", \"encryption.key\" = \"abcd\")",
    )
    .await;
    assert!(
        short.contains("not a 256-bit key") && !short.contains("abcd\" ="),
        "{short}"
    );
    let algo = fails(
        &mut u,
        "CREATE REPOSITORY q WITH BROKER ON LOCATION \"/tmp/x\" PROPERTIES (\"encryption\" = \"rot13\", \"encryption.key_file\" = \"/k\")",
    )
    .await;
    assert!(algo.contains("unknown encryption"), "{algo}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passphrase_repository_on_s3_round_trips() {
    let server = S3Server::start(&["enc"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = cluster(dir.path()).await;
    // SAFETY: this test binary's other tests do not read this variable.
    unsafe { std::env::set_var("SRBACKUP_PASSPHRASE_TEST", "correct horse battery staple") };
    let create = server
        .create_statement("s3r", "s3://enc/backups")
        .replace(
            "\n)",
            ",\n\"encryption\" = \"aes-256-gcm\",\n\"encryption.passphrase_env\" = \"SRBACKUP_PASSPHRASE_TEST\"\n)",
        );
    run(&mut s, &create).await;
    let format = std::fs::read_to_string(
        server
            .root
            .path()
            .join("enc/backups/srbackup-repository.json"),
    )
    .unwrap();
    assert!(format.contains("argon2id"), "{format}");
    round_trip(&mut s, "s3r", &server.root.path().join("enc")).await;

    // The verify path reads every object through the tag too.
    let repo =
        srbackup::repo::registry::open(s.engine().catalog(), &srbackup::sql::Ident::new("s3r"))
            .unwrap();
    let id = repo.latest("enc").await.unwrap();
    let manifest = repo.read_manifest(&id).await.unwrap();
    let report = repo.verify_snapshot(&manifest, 4).await;
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);

    // A large object (multipart upload, ranged reads: more than 16 MiB stored) and zstd
    // compression under the seal.
    run(
        &mut s,
        "CREATE TABLE sr_hub.big (id BIGINT, h VARCHAR(128)) DUPLICATE KEY (id) DISTRIBUTED BY HASH (id) BUCKETS 1;
         INSERT INTO sr_hub.big SELECT value, concat(CAST(random() AS VARCHAR), CAST(random() AS VARCHAR), CAST(random() AS VARCHAR)) FROM generate_series(1, 800000)",
    )
    .await;
    run(
        &mut s,
        "BACKUP DATABASE sr_hub SNAPSHOT big TO s3r ON (TABLE big)",
    )
    .await;
    run(
        &mut s,
        "BACKUP DATABASE sr_hub SNAPSHOT bigz TO s3r ON (TABLE big) PROPERTIES (\"compression\" = \"zstd\")",
    )
    .await;
    let id = repo.latest("big").await.unwrap();
    let big = repo.read_manifest(&id).await.unwrap();
    let largest = big.files.iter().map(|f| f.stored_bytes).max().unwrap();
    assert!(
        largest > 16 * 1024 * 1024,
        "the test object is only {largest} bytes"
    );
    let before = checksums_of(&mut s, "sr_hub", "big").await;
    for label in ["big", "bigz"] {
        run(
            &mut s,
            &format!(
                "RESTORE SNAPSHOT {label} FROM s3r DATABASE sr_hub AS {label}_copy ON (TABLE big)"
            ),
        )
        .await;
        assert_eq!(
            checksums_of(&mut s, &format!("{label}_copy"), "big").await,
            before
        );
    }

    // Another passphrase: refused.
    unsafe { std::env::set_var("SRBACKUP_PASSPHRASE_TEST", "Tr0ub4dor&3") };
    let other = tempfile::tempdir().unwrap();
    let mut t = Session::open(&other.path().join("c")).unwrap();
    let wrong = fails(&mut t, &create).await;
    assert!(wrong.contains("wrong key"), "{wrong}");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_collection_of_an_encrypted_repository_deletes_exactly_the_unneeded_objects() {
    let (_dir, repo_dir, mut s) = encrypted_cluster_with("g").await;
    let first = files_under(&repo_dir.join("objects")).len();
    run(&mut s, "TRUNCATE TABLE sr_hub.sr_event").await;
    run(
        &mut s,
        "INSERT INTO sr_hub.sr_event VALUES ('2024-04-01', 'logout', 1, 2.00, 3)",
    )
    .await;
    run(
        &mut s,
        "BACKUP DATABASE sr_hub SNAPSHOT g TO r ON (TABLE sr_event)",
    )
    .await;
    let both = files_under(&repo_dir.join("objects")).len();
    assert!(both > first, "the second backup stored nothing new");
    let repo =
        srbackup::repo::registry::open(s.engine().catalog(), &srbackup::sql::Ident::new("r"))
            .unwrap();
    let policy: srbackup::repo::retention::Policy = "keep-last=1".parse().unwrap();
    let report = repo
        .forget(
            &policy,
            srbackup::repo::gc::GroupBy::Database,
            None,
            None,
            false,
            "test",
        )
        .await
        .unwrap();
    assert_eq!(report.forgotten.len(), 1);
    let gc = report.gc.unwrap();
    assert_eq!(gc.skipped, None);
    // The first snapshot's objects (the truncated rows) go; the second's new object stays.
    assert_eq!(gc.deleted_objects as usize, first, "{gc:?}");
    assert_eq!(files_under(&repo_dir.join("objects")).len(), both - first);
    let before = checksums_of(&mut s, "sr_hub", "sr_event").await;
    run(
        &mut s,
        "RESTORE SNAPSHOT g FROM r DATABASE sr_hub AS kept ON (TABLE sr_event)",
    )
    .await;
    assert_eq!(checksums_of(&mut s, "kept", "sr_event").await, before);
}

/// Found by a QA attack: what a key source may name, and how it is read.
#[tokio::test(flavor = "multi_thread")]
async fn key_sources_cannot_probe_the_server_and_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    let create = |name: &str, props: &str| {
        format!(
            "CREATE REPOSITORY {name} WITH BROKER ON LOCATION \"{}\" PROPERTIES (\"encryption\" = \"aes-256-gcm\", {props})",
            dir.path().join(name).display()
        )
    };
    // Any environment variable of the server: refused by name, before it is read.
    let env = fails(
        &mut s,
        &create("e", "\"encryption.passphrase_env\" = \"HOME\""),
    )
    .await;
    assert!(env.contains("must be named SRBACKUP_PASSPHRASE"), "{env}");
    // A short passphrase for a new repository.
    unsafe { std::env::set_var("SRBACKUP_PASSPHRASE_SHORT", "abc") };
    let short = fails(
        &mut s,
        &create(
            "w",
            "\"encryption.passphrase_env\" = \"SRBACKUP_PASSPHRASE_SHORT\"",
        ),
    )
    .await;
    assert!(short.contains("shorter than 12"), "{short}");
    assert!(
        !dir.path().join("w").join("locks").exists(),
        "a refused key wrote to the location"
    );
    // A FIFO as the key file: an error, not a hang.
    let fifo = dir.path().join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let f = fails(
        &mut s,
        &create(
            "f",
            &format!("\"encryption.key_file\" = \"{}\"", fifo.display()),
        ),
    )
    .await;
    assert!(f.contains("not a regular file"), "{f}");
    // A server's user: key files only inside allowed_paths (the cluster's own key is not).
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::write(allowed.join("k"), KEY).unwrap();
    s.set_path_policy(srbackup::config::PathPolicy::Within {
        dirs: vec![std::fs::canonicalize(&allowed).unwrap()],
        never: vec![std::fs::canonicalize(dir.path().join("c")).unwrap()],
    });
    let outside = fails(
        &mut s,
        &format!(
            "CREATE REPOSITORY o WITH BROKER ON LOCATION \"{}\" PROPERTIES (\"encryption\" = \"aes-256-gcm\", \"encryption.key_file\" = \"{}\")",
            allowed.join("o").display(),
            dir.path().join("c/secret.key").display()
        ),
    )
    .await;
    assert!(
        outside.contains("not allowed") || outside.contains("outside"),
        "{outside}"
    );
    run(
        &mut s,
        &format!(
            "CREATE REPOSITORY inside WITH BROKER ON LOCATION \"{}\" PROPERTIES (\"encryption\" = \"aes-256-gcm\", \"encryption.key_file\" = \"{}\")",
            allowed.join("inside").display(),
            allowed.join("k").display()
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn damage_in_any_segment_is_reported_as_damage_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    let mut s = cluster(dir.path()).await;
    run(&mut s, &encrypted("r", &repo_dir, KEY)).await;
    run(
        &mut s,
        "CREATE TABLE sr_hub.mid (id BIGINT, h VARCHAR(128)) DUPLICATE KEY (id) DISTRIBUTED BY HASH (id) BUCKETS 1;
         INSERT INTO sr_hub.mid SELECT value, concat(CAST(random() AS VARCHAR), CAST(random() AS VARCHAR)) FROM generate_series(1, 120000)",
    )
    .await;
    run(
        &mut s,
        "BACKUP DATABASE sr_hub SNAPSHOT mid TO r ON (TABLE mid)",
    )
    .await;
    // The largest object has more than two segments: flip a byte in the first one.
    let victim = files_under(&repo_dir.join("objects"))
        .into_iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    assert!(bytes.len() > 2 * 1024 * 1024 + 100, "{} bytes", bytes.len());
    bytes[100] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    let err = fails(
        &mut s,
        "RESTORE SNAPSHOT mid FROM r DATABASE sr_hub AS mid_copy ON (TABLE mid)",
    )
    .await;
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("connection ended"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_retention_policy_is_sealed_and_a_rewritten_one_forgets_nothing() {
    let (_dir, repo_dir, mut s) = encrypted_cluster_with("a").await;
    let repo =
        srbackup::repo::registry::open(s.engine().catalog(), &srbackup::sql::Ident::new("r"))
            .unwrap();
    let policy: srbackup::repo::retention::Policy = "keep-last=5".parse().unwrap();
    repo.save_retention_default(&policy).await.unwrap();
    let stored = std::fs::read(repo_dir.join("retention.json")).unwrap();
    assert!(!contains(&stored, b"keep-last"), "the policy is in clear");
    assert_eq!(repo.retention_default().await.unwrap(), Some(policy));
    std::fs::write(
        repo_dir.join("retention.json"),
        br#"{"retention": "keep-last=1"}"#,
    )
    .unwrap();
    let err = repo.retention_default().await.unwrap_err().to_string();
    assert!(err.contains("cannot be read"), "{err}");
}
