//! Hostile input, as an attacker brings it: a user with a login, a malicious repository, or
//! only network access to `srbackup serve`. One test per case of the issue that found them
//! (each failed on the code before the fix): files outside the repository deleted through a
//! link, files outside the allowed directories read by a remote user, deep expressions that
//! overflowed the stack, connections that never log in, secrets printed or stored in the
//! clear, and numbers from files trusted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::*;
use common::server::*;

/// Runs `srbackup sql` and returns (exit code, stdout, stderr); the exit code is `None` when a
/// signal ended the process (a crash).
fn run_sql(cluster: &Path, statement: &str) -> (Option<i32>, String, String) {
    let mut command = Command::new(BIN);
    command.arg("--cluster").arg(cluster).arg("sql");
    // A long statement goes through a file (one argument holds at most 128 KiB).
    let file = cluster.with_extension(format!("{}.sql", statement.len()));
    if statement.len() > 64 * 1024 {
        std::fs::write(&file, statement).unwrap();
        command.arg("-f").arg(&file);
    } else {
        command.arg(statement);
    }
    let out = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A statement that must fail cleanly (exit code 1, no crash): its error text, unwrapped.
fn fails(cluster: &Path, statement: &str) -> String {
    let (code, out, err) = run_sql(cluster, statement);
    assert_eq!(code, Some(1), "{statement:.200}\n{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    flat(&err)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Files that look old enough for any sweep to take.
fn aged_files(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7 * 24 * 3600);
    for name in names {
        let path = dir.join(name);
        std::fs::write(&path, b"not the repository's").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
}

/// Case 1: a repository's `locks/` (or an `objects/` directory) replaced by a link to another
/// tree: DROP SNAPSHOT's sweep deletes nothing there.
#[test]
fn gc_deletes_nothing_through_a_link_out_of_the_repository() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT a TO r");
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT b TO r");
    let victim = c.path.with_file_name("victim");
    aged_files(&victim, &["lease-1.json", "backup-2.json", "precious.txt"]);
    std::fs::remove_dir_all(c.repo.join("locks")).unwrap();
    std::os::unix::fs::symlink(&victim, c.repo.join("locks")).unwrap();
    let _ = run_sql(&c.path, "DROP SNAPSHOT a ON r");
    let (code, _, err) = run_sql(&c.path, "DROP SNAPSHOT b ON r FORCE");
    assert!(code.is_some(), "crashed: {err}");
    for name in ["lease-1.json", "backup-2.json", "precious.txt"] {
        assert!(
            victim.join(name).exists(),
            "{name} was deleted through locks/"
        );
    }
    // An objects/ directory made a link: the sweep does not follow it either.
    std::fs::remove_file(c.repo.join("locks")).unwrap();
    std::fs::create_dir(c.repo.join("locks")).unwrap();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT d TO r");
    let objects = c.repo.join("objects");
    let first = std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let prefix = first.file_name().unwrap().to_string_lossy().into_owned();
    let victim2 = c.path.with_file_name("victim2");
    let name = format!("{prefix}{}", "0".repeat(62));
    aged_files(&victim2, &[&name, "precious.txt"]);
    std::fs::rename(&first, c.path.with_file_name("moved-away")).unwrap();
    std::os::unix::fs::symlink(&victim2, &first).unwrap();
    let (code, _, err) = run_sql(&c.path, "DROP SNAPSHOT d ON r FORCE");
    assert!(code.is_some(), "crashed: {err}");
    assert!(victim2.join(&name).exists() && victim2.join("precious.txt").exists());
}

/// Case 2: a remote user (a session of `srbackup serve`) reads files and creates local
/// repositories only inside `allowed_paths`, judged after links are resolved; a FIFO does not
/// hang the session and a device is not read.
#[test]
fn a_remote_user_reads_and_writes_only_inside_allowed_paths() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    let allowed = dir.path().join("allowed");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&cluster).unwrap();
    std::fs::create_dir_all(allowed.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        cluster.join("srbackup.conf"),
        format!("{}allowed_paths = {}\n", root_conf(), allowed.display()),
    )
    .unwrap();
    let secret = outside.join("secret.csv");
    std::fs::write(&secret, "1,topsecret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(allowed.join("data.csv"), "2,fine\n").unwrap();
    std::os::unix::fs::symlink(&secret, allowed.join("link.csv")).unwrap();
    std::os::unix::fs::symlink(&secret, allowed.join("sub/inner.csv")).unwrap();
    let fifo = allowed.join("pipe.csv");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);

    let server = Server::start(&cluster);
    let port = server.port;
    let ok = |sql: &str| {
        let r = mariadb(port, sql);
        assert!(r.ok, "{sql}\n{}\n{}", r.out, r.err);
        r.out
    };
    let refused = |sql: &str, words: &str| {
        let r = mariadb(port, sql);
        assert!(!r.ok, "{sql} was accepted:\n{}", r.out);
        assert!(r.err.contains(words), "{sql}\n{}", r.err);
        assert!(!r.err.contains("topsecret") && !r.out.contains("topsecret"));
    };
    ok("CREATE DATABASE d");
    ok(
        "CREATE TABLE d.t (a INT, b VARCHAR(20)) DUPLICATE KEY (a) DISTRIBUTED BY HASH (a) BUCKETS 1",
    );
    let files = |path: &Path| {
        format!(
            "INSERT INTO d.t SELECT * FROM FILES(\"path\" = \"{}\", \"format\" = \"csv\")",
            path.display()
        )
    };
    ok(&files(&allowed.join("data.csv")));
    let outside_words = "outside the directories this server may use";
    refused(&files(&secret), outside_words);
    refused(&files(&allowed.join("link.csv")), outside_words);
    refused(
        &files(&allowed.join("../outside/secret.csv")),
        outside_words,
    );
    refused(&files(&allowed.join("sub")), outside_words);
    refused(&files(Path::new("/etc/shadow")), outside_words);
    refused(&files(&fifo), "not a regular file");
    let table = ok("SELECT b FROM d.t");
    assert!(
        table.contains("fine") && !table.contains("topsecret"),
        "{table}"
    );
    // Local repositories: inside allowed_paths only, and nothing is created elsewhere.
    let create = |name: &str, path: &Path| {
        format!(
            "CREATE REPOSITORY {name} WITH BROKER ON LOCATION \"{}\"",
            path.display()
        )
    };
    refused(&create("r1", &outside.join("repo")), outside_words);
    refused(
        &create("r2", &allowed.join("../outside/repo2")),
        outside_words,
    );
    refused(&create("r3", &allowed.join("link.csv/x")), outside_words);
    assert!(!outside.join("repo").exists() && !outside.join("repo2").exists());
    ok(&create("r4", &allowed.join("repo")));
    ok("BACKUP DATABASE d SNAPSHOT s TO r4");
    // The CLI on the machine itself is not limited (its user holds the files anyway).
    let (code, _, err) = run_sql(&cluster, &files(&secret));
    assert_eq!(code, Some(0), "{err}");
}

fn sum_of_ones(terms: usize) -> String {
    format!("SELECT {}", vec!["1"; terms].join("+"))
}

/// Case 3: long operator chains, deep nesting and a view planted in a malicious snapshot
/// get a clear error (or an answer), never a stack overflow.
#[test]
fn deep_expressions_are_refused_not_fatal() {
    let c = cluster();
    let (code, out, err) = run_sql(&c.path, &sum_of_ones(400));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("400"), "{out}");
    let (code, _, err) = run_sql(&c.path, &sum_of_ones(1000));
    assert_eq!(code, Some(0), "{err}");
    for statement in [
        sum_of_ones(5000),
        sum_of_ones(200_000),
        format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)),
        format!("SELECT {}1{}", "abs(".repeat(3000), ")".repeat(3000)),
        format!("SELECT {}", vec!["'a' LIKE 'a'"; 3000].join(" AND ")),
        format!("SELECT {}1", "- ".repeat(5000)),
        format!(
            "SELECT * FROM sr_hub.sr_member WHERE {}",
            vec!["sr_id = 1"; 2000].join(" OR ")
        ),
    ] {
        let err = fails(&c.path, &statement);
        assert!(!err.is_empty());
    }
    // Over the wire: the server answers, refuses, and stays up.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("cluster"));
    let r = mariadb(server.port, &sum_of_ones(100));
    assert!(r.ok && r.out.contains("100"), "{}", r.err);
    for statement in [
        sum_of_ones(5000),
        format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)),
    ] {
        let r = mariadb(server.port, &statement);
        assert!(!r.ok, "{}", r.out);
    }
    assert!(mariadb(server.port, "SELECT 1").ok);
    assert!(!server.log().contains("overflow"), "{}", server.log());

    // A view whose SQL a malicious snapshot made huge: the restore refuses it.
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT planted TO r");
    let manifest = manifest_of(&c.repo, "planted");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let planted = text.replace(
        "SELECT sr_id, name, city_code FROM sr_member WHERE verified",
        &sum_of_ones(20_000),
    );
    assert_ne!(planted, text);
    std::fs::write(&manifest, planted).unwrap();
    let err = fails(
        &c.path,
        "RESTORE SNAPSHOT planted FROM r DATABASE sr_hub AS planted_db ON (VIEW sr_view1)",
    );
    assert!(err.contains("operators"), "{err}");
    // Views over views, each just under the limit: answered or refused, never a crash.
    sql(&c, "CREATE DATABASE v");
    let mut base = "SELECT 1 AS c".to_string();
    for level in 0..6 {
        sql(&c, &format!("CREATE VIEW v.l{level} AS {base}"));
        base = format!("SELECT c{} AS c FROM v.l{level}", " + 1".repeat(900));
    }
    let (code, _, err) = run_sql(&c.path, "SELECT * FROM v.l5");
    assert!(code.is_some() && !err.contains("overflow"), "{err}");
}

/// The newest manifest of `label` in a local repository.
fn manifest_of(repo: &Path, label: &str) -> PathBuf {
    let mut files = files_under(&repo.join("snapshots").join(label));
    files.sort();
    files
        .pop()
        .unwrap_or_else(|| panic!("no manifest for {label}"))
}

/// Case 4: 5,000 connections that never log in (200 of them stop half-way through the
/// handshake) and 32 normal clients at once: the clients finish, the server stays under its
/// descriptor and memory limits, and the log stays small.
#[test]
fn connections_that_never_log_in_do_not_exhaust_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    std::fs::create_dir_all(&cluster).unwrap();
    std::fs::write(
        cluster.join("srbackup.conf"),
        format!("{}login_timeout_seconds = 5\n", root_conf()),
    )
    .unwrap();
    let server = Server::start(&cluster);
    let out = python_client(
        "flood.py",
        &[
            "--port".into(),
            server.port.to_string(),
            "--password".into(),
            ROOT_PW.into(),
            "--pid".into(),
            server.child.id().to_string(),
            "--flood".into(),
            "5000".into(),
            "--clients".into(),
            "32".into(),
            "--statements".into(),
            "20".into(),
        ],
    );
    let report: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|_| panic!("{out}"));
    eprintln!("flood: {report}");
    assert_eq!(report["clients_ok"], 32, "{report}");
    assert_eq!(report["clients_failed"], 0, "{report}");
    assert_eq!(report["statements"], 32 * 20 * 2, "{report}");
    assert!(
        report["flood_opened"].as_u64().unwrap() + report["flood_refused"].as_u64().unwrap()
            == 5000,
        "{report}"
    );
    // 128 waiting logins at most, 32 sessions (a socket and the catalog's three files each),
    // the runtime: a few hundred (366 measured), far from the flood's 5,000 and the limit.
    let fds = report["max_fds"].as_u64().unwrap();
    assert!(fds < 1000, "the server held {fds} descriptors: {report}");
    let rss = report["max_rss_kib"].as_u64().unwrap();
    assert!(rss < 512 * 1024, "the server used {rss} KiB: {report}");
    let log = std::fs::metadata(&server.log).unwrap().len();
    assert!(
        log < 64 * 1024,
        "the log grew to {log} bytes:\n{}",
        server.log()
    );
    // Still serving.
    assert!(mariadb(server.port, "SELECT 1").ok);
}

/// Case 5: secrets stay out of errors, SHOW output and the catalog file, however the
/// statement is written.
#[test]
fn secrets_stay_out_of_errors_output_and_the_catalog_file() {
    let c = cluster();
    const SECRET: &str = "TOPSECRETvalue0123";
    let repo = |props: &str| {
        format!(
            "CREATE REPOSITORY s WITH BROKER ON LOCATION \"s3://bucket/p\" PROPERTIES (\"aws.s3.access_key\" = \"AKIAEXAMPLE\", {props}, \"aws.s3.region\" = \"us-east-1\", \"unknown_property\" = \"x\")"
        )
    };
    for statement in [
        repo(&format!("\"aws.s3.secret_key\" /* c */ = \"{SECRET}\"")),
        repo(&format!("\"aws.s3.secret_key\" -- c\n = \"{SECRET}\"")),
        repo(&format!("\"aws.s3.se\\cret_ke\\y\" = \"{SECRET}\"")),
        repo(&format!("'aws.s3.secret_key' = '{SECRET}'")),
        // Not even parsed:
        repo(&format!("\"aws.s3.secret_key\" = \"{SECRET}\" ((")),
        repo(&format!("\"aws.s3.secret_key\" = {SECRET}")),
    ] {
        let (code, out, err) = run_sql(&c.path, &statement);
        assert_eq!(code, Some(1), "{out}{err}");
        assert!(!err.contains(SECRET) && !out.contains(SECRET), "{err}");
    }
    // Userinfo in an endpoint: refused, and not printed.
    let err = fails(
        &c.path,
        &format!(
            "CREATE REPOSITORY s WITH BROKER ON LOCATION \"s3://bucket/p\" PROPERTIES (\"aws.s3.endpoint\" = \"http://user:{SECRET}@127.0.0.1:9\", \"aws.s3.access_key\" = \"AKIAEXAMPLE\", \"aws.s3.secret_key\" = \"another-secret\")"
        ),
    );
    assert!(
        err.contains("credentials") && !err.contains(SECRET),
        "{err}"
    );
    // Over the wire: the error sent back and the server log carry no secret either.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("cluster"));
    // (The mariadb client drops comments before sending; an escaped key reaches the server
    // as written. The client echoes the statement it sent: the server's answer is the ERROR
    // line.)
    let r = mariadb(
        server.port,
        &repo(&format!("\"aws.s3.se\\cret_ke\\y\" = \"{SECRET}\"")),
    );
    let answer: String = r.err.lines().filter(|l| l.starts_with("ERROR")).collect();
    assert!(
        !r.ok && !answer.is_empty() && !answer.contains(SECRET),
        "{}",
        r.err
    );
    drop(server);
    let log = std::fs::read_to_string(dir.path().join("cluster.server.log")).unwrap_or_default();
    assert!(!log.contains(SECRET), "{log}");
    // The catalog and the cluster directory are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&c.path), 0o700);
    assert_eq!(mode(&c.path.join("catalog.db")), 0o600);
}

/// Case 5, at rest: a repository's credentials are sealed in catalog.db with a key kept in
/// another file; the repository works through them; without the key it says so.
#[tokio::test(flavor = "multi_thread")]
async fn stored_credentials_are_sealed_with_a_key_kept_apart() {
    let s3 = common::S3Server::start(&["sealed"]).await;
    let c = cluster();
    let statement = s3.create_statement("s", "s3://sealed/repo");
    let path = c.path.clone();
    let run = move |sql: String| {
        let path = path.clone();
        async move {
            tokio::task::spawn_blocking(move || run_sql(&path, &sql))
                .await
                .unwrap()
        }
    };
    let (code, out, err) = run(statement.clone()).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = run("BACKUP DATABASE sr_hub SNAPSHOT sealed TO s".into()).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let secret = common::SECRET_KEY.as_bytes();
    for file in ["catalog.db", "catalog.db-wal"] {
        if let Ok(bytes) = std::fs::read(c.path.join(file)) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{file} holds the secret key in the clear"
            );
        }
    }
    let (_, out, _) = run("SHOW REPOSITORIES".into()).await;
    assert!(!out.contains(common::SECRET_KEY), "{out}");
    // Without the key file, the repository says why it cannot be used.
    let key = c.path.join("secret.key");
    let kept = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let (code, _, err) = run("SHOW SNAPSHOT ON s".into()).await;
    assert_eq!(code, Some(1));
    assert!(flat(&err).contains("credentials cannot be opened"), "{err}");
    std::fs::write(&key, kept).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (code, out, err) = run("SHOW SNAPSHOT ON s".into()).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("sealed"), "{out}");
}

/// Numbers that do not fit: 2^63 and 2^64 - 1.
const HUGE: [&str; 2] = ["9223372036854775808", "18446744073709551615"];

/// Replaces the first `"field": <number>` after `after` in `text` with `value`.
fn set_number(text: &str, after: &str, field: &str, value: &str) -> String {
    let start = text.find(after).unwrap_or_else(|| panic!("no {after}"));
    let key = format!("\"{field}\": ");
    let at = start
        + text[start..]
            .find(&key)
            .unwrap_or_else(|| panic!("no {field}"))
        + key.len();
    let end = at + text[at..].find(|c: char| !c.is_ascii_digit()).unwrap();
    format!("{}{value}{}", &text[..at], &text[end..])
}

/// Replaces element `index` of the first file line (`[bucket, rowset_id, rows, bytes, ...]`)
/// after `after` in `text` with `value`.
fn set_file_field(text: &str, after: &str, index: usize, value: &str) -> String {
    let start = text.find(after).unwrap_or_else(|| panic!("no {after}"));
    let files = start + text[start..].find("\"files\": [").expect("a files list") + 10;
    let open = files + text[files..].find('[').expect("a file line") + 1;
    let close = open + text[open..].find(']').expect("the file line ends");
    let mut fields: Vec<String> = text[open..close].split(',').map(str::to_string).collect();
    fields[index] = value.to_string();
    format!("{}{}{}", &text[..open], fields.join(","), &text[close..])
}

/// Case 6, plans: sizes of 2^63 and 2^64 - 1 in a plan file are refused when it is read, by
/// `explain` and by `apply`, without a panic.
#[test]
fn plans_with_huge_numbers_are_refused() {
    let c = cluster();
    let plan = c.path.with_file_name("plan.json");
    plan_to(&c, "BACKUP DATABASE sr_hub SNAPSHOT p TO r", &plan);
    let text = std::fs::read_to_string(&plan).unwrap();
    let edited = c.path.with_file_name("edited.json");
    for huge in HUGE {
        let upload = "\"action\": \"upload\"";
        for (field, edit) in [
            ("bucket", set_file_field(&text, upload, 0, huge)),
            ("rowset_id", set_file_field(&text, upload, 1, huge)),
            ("rows", set_file_field(&text, upload, 2, huge)),
            ("bytes", set_file_field(&text, upload, 3, huge)),
            ("files", set_number(&text, "\"summary\"", "files", huge)),
            ("bytes", set_number(&text, "\"summary\"", "bytes", huge)),
        ] {
            std::fs::write(&edited, edit).unwrap();
            for command in ["explain", "apply"] {
                let out = Command::new(BIN)
                    .arg("--cluster")
                    .arg(&c.path)
                    .args([command, edited.to_str().unwrap()])
                    .output()
                    .unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(
                    out.status.code(),
                    Some(1),
                    "{command} {field}={huge}: {err}"
                );
                assert!(!err.contains("panicked"), "{err}");
            }
        }
    }
}

/// Case 6, manifests: a malicious snapshot's sizes (2^63, 2^64 - 1) and bucket count (2^31)
/// are refused by SHOW SNAPSHOT, RESTORE and verify, without a panic and without filling
/// the disk.
#[test]
fn manifests_with_huge_numbers_are_refused() {
    let c = cluster();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT m TO r");
    let manifest = manifest_of(&c.repo, "m");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut cases: Vec<String> = Vec::new();
    for huge in HUGE {
        cases.push(set_number(&text, "\"files\"", "bytes", huge));
        cases.push(set_number(&text, "\"files\"", "stored_bytes", huge));
        cases.push(set_number(&text, "\"rowsets\"", "rows", huge));
    }
    cases.push(set_number(
        &text,
        "\"distribution\"",
        "buckets",
        "2147483648",
    ));
    cases.push(set_number(
        &text,
        "\"distribution\"",
        "buckets",
        "4294967295",
    ));
    for (i, case) in cases.iter().enumerate() {
        std::fs::write(&manifest, case).unwrap();
        let (code, out, err) = run_sql(&c.path, "SHOW SNAPSHOT ON r WHERE SNAPSHOT = \"m\"");
        assert!(
            code.is_some() && !err.contains("panicked"),
            "case {i}: {out}{err}"
        );
        let err = fails(
            &c.path,
            &format!("RESTORE SNAPSHOT m FROM r DATABASE sr_hub AS huge{i}"),
        );
        assert!(!err.is_empty());
        let (ok, _, err) = srbackup(&c.path, &["verify", "r", "m"]);
        assert!(!ok && !err.contains("panicked"), "case {i}: {err}");
    }
    let data: u64 = files_under(&c.path.join("data"))
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    assert!(data < 64 * 1024 * 1024, "{data} bytes of data");
}

/// Case 6, decompression: an object that decodes to far more than its manifest declares
/// (64 MiB from a few KiB) is rejected at the first byte past the declared size.
#[test]
fn a_decompression_bomb_is_stopped_at_the_declared_size() {
    let c = cluster();
    sql(
        &c,
        "BACKUP DATABASE sr_hub SNAPSHOT z TO r PROPERTIES (\"compression\" = \"zstd\")",
    );
    let bomb = zstd::encode_all(std::io::repeat(0).take_bytes(64 << 20), 19).unwrap();
    assert!(bomb.len() < 64 * 1024);
    for object in files_under(&c.repo.join("objects")) {
        if object.extension().is_some_and(|e| e == "zst") {
            std::fs::write(&object, &bomb).unwrap();
        }
    }
    let err = fails(
        &c.path,
        "RESTORE SNAPSHOT z FROM r DATABASE sr_hub AS bombed",
    );
    assert!(err.contains("corrupt") || err.contains("declares"), "{err}");
    let largest = files_under(&c.path.join("data"))
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .max()
        .unwrap_or(0);
    assert!(largest < 16 << 20, "a {largest}-byte file was written");
    let (ok, _, err) = srbackup(&c.path, &["verify", "r", "z"]);
    assert!(!ok && !err.contains("panicked"), "{err}");
}

/// Case 6, configuration: numbers past a setting's limit in srbackup.conf are refused with
/// the line, before anything runs.
#[test]
fn huge_settings_are_refused_with_their_line() {
    let c = cluster();
    for (setting, huge) in [
        ("max_upload_speed_kbps", HUGE[1]),
        ("upload_worker_count", HUGE[0]),
        ("max_connections", HUGE[1]),
        ("login_timeout_seconds", HUGE[1]),
    ] {
        std::fs::write(
            c.path.join("srbackup.conf"),
            format!("{setting} = {huge}\n"),
        )
        .unwrap();
        let err = fails(&c.path, "BACKUP DATABASE sr_hub SNAPSHOT conf TO r");
        assert!(err.contains("line 1") && err.contains(setting), "{err}");
    }
    // The largest allowed speed limit works (no overflow in the limiter).
    std::fs::write(
        c.path.join("srbackup.conf"),
        format!("max_upload_speed_kbps = {}\n", 1u64 << 40),
    )
    .unwrap();
    sql(&c, "BACKUP DATABASE sr_hub SNAPSHOT fast TO r");
}

trait TakeBytes {
    fn take_bytes(self, n: u64) -> std::io::Take<Self>
    where
        Self: Sized;
}

impl<R: std::io::Read> TakeBytes for R {
    fn take_bytes(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}

/// Output that cannot be written is no success: a plan sent into a full disk (`> /dev/full`)
/// ends with an error, not exit 0 and half a plan; `plan -o /dev/stdout` into a pipe is the
/// plan alone (its summary goes to stderr); a plan file whose counts disagree with its lines
/// is refused by `explain`.
#[test]
fn output_that_cannot_be_written_is_an_error_and_counts_are_checked() {
    let c = cluster();
    let statement = "BACKUP DATABASE sr_hub SNAPSHOT p TO r";
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let out = Command::new(BIN)
            .arg("--cluster")
            .arg(&c.path)
            .args(["plan", statement])
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("could not be written"), "{err}");
    }
    let piped = Command::new(BIN)
        .arg("--cluster")
        .arg(&c.path)
        .args(["plan", statement, "-o", "/dev/stdout"])
        .output()
        .unwrap();
    assert!(piped.status.success());
    let text = String::from_utf8(piped.stdout).unwrap();
    let plan = srbackup::plan::Plan::from_json(&text).unwrap();
    assert!(String::from_utf8_lossy(&piped.stderr).contains("plan written to"));
    // Counts a reviewer reads that the lines do not back.
    let file = c.path.with_file_name("counts.json");
    let real = format!("\"files\": {},", plan.objects[0].files);
    assert!(text.contains(&real));
    std::fs::write(&file, text.replacen(&real, "\"files\": 999999,", 1)).unwrap();
    let (ok, _, err) = srbackup(&c.path, &["explain", file.to_str().unwrap()]);
    assert!(!ok && err.contains("but its tasks list"), "{err}");
}

/// Endpoints, buckets and regions the HTTP client cannot parse are errors at CREATE REPOSITORY,
/// never a panic inside object_store's request signing (found by a QA attack).
#[test]
fn malformed_s3_endpoints_buckets_and_regions_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let with = |location: &str, extra: &str| {
        format!(
            "CREATE REPOSITORY s3r WITH BROKER ON LOCATION \"{location}\" PROPERTIES (\"aws.s3.access_key\" = \"A\", \"aws.s3.secret_key\" = \"B\"{extra})"
        )
    };
    for (statement, expected) in [
        (
            with(
                "s3://bucket/path",
                ", \"aws.s3.endpoint\" = \"http://127.0.0.1:9 x\"",
            ),
            "not a valid endpoint",
        ),
        (
            with(
                "s3://bucket/path",
                ", \"aws.s3.endpoint\" = \"http://127.0.0.1:99999\"",
            ),
            "not a valid URL",
        ),
        (
            with(
                "s3://bucket/path",
                ", \"aws.s3.endpoint\" = \"http://[::1\"",
            ),
            "not a valid URL",
        ),
        (
            with("s3://bucket/path", ", \"aws.s3.region\" = \"us east 1\""),
            "valid host name",
        ),
    ] {
        let (code, out, err) = run_sql(&cluster, &statement);
        assert_eq!(code, Some(1), "{statement}\n{out}\n{err}");
        assert!(!err.contains("panicked"), "{statement}: a panic\n{err}");
        assert!(flat(&err).contains(expected), "{statement}\n{err}");
    }
}

/// An encryption key in a statement that does not parse is never quoted back (found by a QA
/// attack: the "unexpected `…`" message and a back-quoted property name showed it).
#[test]
fn a_key_in_a_statement_that_does_not_parse_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("c");
    let key = "5f1e0c3b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    for statement in [
        format!(
            "CREATE REPOSITORY r WITH BROKER ON LOCATION \"/tmp/x\" PROPERTIES (\"encryption\" = \"aes-256-gcm\", \"encryption.key\" = \"{key}\\\")"
        ),
        format!(
            "CREATE REPOSITORY r WITH BROKER ON LOCATION \"/tmp/x\" PROPERTIES (\"encryption\" = \"aes-256-gcm\", `encryption.key` = \"{key}\")"
        ),
    ] {
        let (code, out, err) = run_sql(&cluster, &statement);
        assert_eq!(code, Some(1), "{out}{err}");
        assert!(
            !out.contains(key) && !err.contains(key),
            "the key was echoed:\n{err}"
        );
    }
}
