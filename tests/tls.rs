//! TLS on `srbackup serve` (#18): Debian's `mariadb` client and PyMySQL over TLS with the
//! server's certificate checked, with both authentication plugins; a wrong password, a
//! `REQUIRE SSL` user over plain text, and a certificate the client does not trust are refused.
//! The pair comes from scripts/tls-cert (openssl; scripts/test installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::server::*;

/// A self-signed pair for 127.0.0.1 in `dir`.
fn cert_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tls-cert"))
        .arg(dir)
        .output()
        .expect("scripts/tls-cert");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir.join("cert.pem"), dir.join("key.pem"))
}

fn conf(cluster: &Path, cert: &Path, key: &Path, plugin: &str) {
    std::fs::create_dir_all(cluster).unwrap();
    std::fs::write(
        cluster.join("srbackup.conf"),
        format!(
            "{}{}ssl_cert = {}\nssl_key = {}\nauthentication_plugin = {plugin}\n",
            root_conf(),
            allowed(cluster),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
}

/// The `mariadb` client as `user`, with `tls` args.
fn client(port: u16, user: &str, password: &str, tls: &[String], sql: &str) -> ClientRun {
    mariadb_as(port, user, password, tls, sql)
}

#[test]
fn clients_over_tls_with_both_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(&dir.path().join("tls"));
    let cluster = dir.path().join("cluster");
    conf(&cluster, &cert, &key, "mysql_native_password");
    let verified = vec![
        "--ssl".to_string(),
        format!("--ssl-ca={}", cert.display()),
        "--ssl-verify-server-cert".to_string(),
    ];
    let plain = vec!["--skip-ssl".to_string()];
    {
        let server = Server::start_as_is(&cluster);
        let port = server.port;
        let r = client(port, "root", ROOT_PW, &verified, "\\s");
        assert!(r.ok, "{}", r.err);
        assert!(r.out.contains("Cipher in use is TLS_"), "{}", r.out);
        mariadb_ok(
            port,
            "CREATE USER nat IDENTIFIED BY 'nat-pw';
             CREATE USER sha IDENTIFIED WITH caching_sha2_password BY 'sha-pw' REQUIRE SSL",
        );
        // Native: with and without TLS.
        assert!(client(port, "nat", "nat-pw", &verified, "SELECT 1").ok);
        assert!(client(port, "nat", "nat-pw", &plain, "SELECT 1").ok);
        // REQUIRE SSL: over TLS only.
        let r = client(port, "sha", "sha-pw", &verified, "SELECT 1");
        assert!(r.ok, "{}", r.err);
        let r = client(port, "sha", "sha-pw", &plain, "SELECT 1");
        assert!(r.err.contains("ERROR 1045"), "{}", r.err);
        // A client that names caching_sha2_password itself is checked with it.
        let mut sha2 = verified.clone();
        sha2.push("--default-auth=caching_sha2_password".into());
        let r = client(port, "sha", "sha-pw", &sha2, "SELECT 1");
        assert!(r.ok, "{}", r.err);
        // Wrong password, and a server certificate the client does not trust.
        let r = client(port, "nat", "wrong", &verified, "SELECT 1");
        assert!(r.err.contains("ERROR 1045"), "{}", r.err);
        let untrusted = vec![
            "--ssl".to_string(),
            "--ssl-ca=/etc/ssl/certs/ca-certificates.crt".to_string(),
            "--ssl-verify-server-cert".to_string(),
        ];
        let r = client(port, "nat", "nat-pw", &untrusted, "SELECT 1");
        assert!(!r.ok && r.err.contains("ERROR 2026"), "{}", r.err);
        // PyMySQL, certificate checked, native plugin (the greeting's).
        let out = python_client(
            "tls.py",
            &[
                port.to_string(),
                cert.display().to_string(),
                "mysql_native_password".into(),
            ],
        );
        assert!(out.contains("0 failures"), "{out}");
        let log = server.log();
        for secret in ["nat-pw", "sha-pw"] {
            assert!(!log.contains(secret), "{log}");
        }
    }
    // The greeting names caching_sha2_password: clients scramble with SHA-256.
    conf(&cluster, &cert, &key, "caching_sha2_password");
    let server = Server::start_as_is(&cluster);
    let port = server.port;
    let r = client(port, "sha", "sha-pw", &verified, "SELECT 1");
    assert!(r.ok, "{}", r.err);
    let r = client(port, "nat", "nat-pw", &verified, "SELECT 1");
    assert!(r.ok, "{}", r.err);
    let out = python_client(
        "tls.py",
        &[
            port.to_string(),
            cert.display().to_string(),
            "caching_sha2_password".into(),
        ],
    );
    assert!(out.contains("0 failures"), "{out}");
}

#[test]
fn tls_settings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    std::fs::create_dir_all(&cluster).unwrap();
    let start = |extra: &str| {
        std::fs::write(
            cluster.join("srbackup.conf"),
            format!("{}{extra}", root_conf()),
        )
        .unwrap();
        let out = Command::new(common::cli::BIN)
            .arg("--cluster")
            .arg(&cluster)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = start(&format!("ssl_cert = {}/nope.pem\n", dir.path().display()));
    assert!(err.contains("only one of ssl_cert and ssl_key"), "{err}");
    let err = start(&format!(
        "ssl_cert = {0}/nope.pem\nssl_key = {0}/nope-key.pem\n",
        dir.path().display()
    ));
    assert!(err.contains("cannot read the certificate"), "{err}");
    let err = start("ssl_force_secure_transport = true\n");
    assert!(err.contains("needs ssl_cert and ssl_key"), "{err}");
}
