//! StarRocks' own repositories read as files (#19 item 6): `srbackup starrocks-repo` lists the
//! snapshots of a tree built from StarRocks' documented layout, reports every file whose
//! content does not match the MD5 its name carries, and expires only the chosen snapshots —
//! never one being written.

use std::path::Path;
use std::process::Command;

mod common;

use common::cli::srbackup;

/// A file of the tree, named after its content's MD5 (or after a wrong one).
fn put(dir: &Path, rel: &str, content: &[u8], right: bool) {
    let out = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(content)?;
            c.wait_with_output()
        })
        .expect("md5sum");
    let md5 = String::from_utf8_lossy(&out.stdout)[..32].to_string();
    let md5 = if right { md5 } else { "0".repeat(32) };
    let path = dir.join(format!("{rel}.{md5}"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn snapshot(root: &Path, label: &str, ts: Option<&str>, right: bool) {
    let ss = format!("__ss_{label}");
    put(
        root,
        &format!("{ss}/__meta"),
        format!("meta of {label}").as_bytes(),
        true,
    );
    put(
        root,
        &format!("{ss}/__ss_content/__db_10/__tbl_11/__part_12/__idx_13/__14/0_1.dat"),
        format!("rows of {label}").as_bytes(),
        right,
    );
    if let Some(ts) = ts {
        put(
            root,
            &format!("{ss}/__info_{ts}"),
            b"{\"name\": \"x\"}",
            true,
        );
    }
}

#[test]
fn list_verify_and_expire_a_starrocks_repository() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    let location = dir.path().join("bucket");
    std::fs::create_dir_all(&location).unwrap();
    let (ok, _, err) = srbackup(
        &cluster,
        &[
            "sql",
            &format!(
                "CREATE REPOSITORY sr WITH BROKER ON LOCATION \"{}\"",
                location.display()
            ),
        ],
    );
    assert!(ok, "{err}");
    let root = location.join("__starrocks_repository_prod");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("__repo_info"), b"{}").unwrap();
    snapshot(&root, "daily_1", Some("2024-12-01-01-00-00-000"), true);
    snapshot(&root, "daily_2", Some("2024-12-02-01-00-00-000"), false);
    snapshot(&root, "daily_3", Some("2024-12-03-01-00-00-000"), true);
    // A label without its info file, just written: a backup that may be running now.
    snapshot(&root, "running", None, true);
    let sr = |args: &[&str]| {
        let mut all = vec!["starrocks-repo", "sr", "--name", "prod"];
        all.extend_from_slice(args);
        srbackup(&cluster, &all)
    };

    let (ok, out, err) = sr(&["list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("daily_1\t2024-12-01-01-00-00-000\t3 files"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("running\tUNFINISHED\t2 files"),
        "{out}"
    );

    // verify: the one file whose name lies is reported, and the command fails.
    let (ok, out, err) = sr(&["verify"]);
    assert!(!ok);
    let bad: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("MD5 MISMATCH"))
        .collect();
    assert_eq!(bad.len(), 1, "{out}");
    assert!(
        bad[0].contains("__ss_daily_2/") && bad[0].contains("0_1.dat."),
        "{out}"
    );
    assert!(err.contains("11 files checked, 1 mismatched"), "{err}");
    let (ok, _, err) = sr(&["verify", "--label", "daily_1"]);
    assert!(ok, "{err}");

    // expire --keep 1 --dry-run: names the two older ones, removes nothing.
    let (ok, out, err) = sr(&["expire", "--keep", "1", "--dry-run"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("would remove daily_1") && out.contains("would remove daily_2"),
        "{out}"
    );
    assert!(
        !out.contains("daily_3") && !out.contains("running"),
        "{out}"
    );
    assert!(root.join("__ss_daily_1").exists());
    // A label being written is never removed, even when named.
    let (ok, out, _) = sr(&["expire", "--label", "running"]);
    assert!(ok && out.contains("removed 0 snapshots"), "{out}");
    assert!(root.join("__ss_running").exists());
    // Unknown labels are an error, not a quiet nothing.
    let (ok, _, err) = sr(&["expire", "--label", "nosuch"]);
    assert!(!ok && err.contains("holds no snapshot nosuch"), "{err}");
    // expire --label daily_1: only its files go.
    let (ok, out, err) = sr(&["expire", "--label", "daily_1"]);
    assert!(ok, "{err}");
    assert!(out.contains("removed daily_1 (3 files"), "{out}");
    // No file of daily_1 is left (the local store may leave empty directories); the others
    // are whole.
    let files_under = |p: &Path| -> usize {
        let mut n = 0;
        let mut stack = vec![p.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    n += 1;
                }
            }
        }
        n
    };
    assert_eq!(files_under(&root.join("__ss_daily_1")), 0);
    assert_eq!(files_under(&root.join("__ss_daily_2")), 3);
    assert_eq!(files_under(&root.join("__ss_daily_3")), 3);
    assert_eq!(files_under(&root.join("__ss_running")), 2);
    let (_, out, _) = sr(&["list"]);
    assert!(!out.contains("daily_1"), "{out}");
    assert!(root.join("__repo_info").exists());
}

/// The same over S3 (the in-process s3s server with SigV4): the tree is written into the
/// bucket's directory, srbackup reads it through object_store with the repository's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starrocks_repository_on_s3() {
    let server = common::S3Server::start(&["bucket-sr"]).await;
    let root = server
        .root
        .path()
        .join("bucket-sr/backups/__starrocks_repository_prod");
    std::fs::create_dir_all(&root).unwrap();
    snapshot(&root, "weekly_1", Some("2024-12-01-01-00-00-000"), true);
    snapshot(&root, "weekly_2", Some("2024-12-08-01-00-00-000"), false);
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    let create = server.create_statement("sr", "s3://bucket-sr/backups");
    let (ok, _, err) = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || srbackup(&cluster, &["sql", &create])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let sr = |args: &'static [&'static str]| {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["starrocks-repo", "sr", "--name", "prod"];
            all.extend_from_slice(args);
            srbackup(&cluster, &all)
        })
    };
    let (ok, out, err) = sr(&["list"]).await.unwrap();
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let (ok, out, err) = sr(&["verify"]).await.unwrap();
    assert!(
        !ok && err.contains("6 files checked, 1 mismatched"),
        "{out}{err}"
    );
    assert!(out.contains("__ss_weekly_2/"), "{out}");
    let (ok, out, err) = sr(&["expire", "--label", "weekly_2"]).await.unwrap();
    assert!(
        ok && out.contains("removed weekly_2 (3 files"),
        "{out}{err}"
    );
    let (ok, out, err) = sr(&["verify"]).await.unwrap();
    assert!(
        ok && out.contains("3 files checked, 0 mismatched"),
        "{out}{err}"
    );
    // The secret key never reaches the output.
    assert!(!out.contains(common::SECRET_KEY) && !err.contains(common::SECRET_KEY));
}
