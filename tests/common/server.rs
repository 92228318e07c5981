//! `srbackup serve` driven as its users drive it: a server on an ephemeral port of
//! 127.0.0.1, Debian's `mariadb` client, PyMySQL scripts (tests/clients) and raw packets.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::cli::BIN;

/// root's password on the test clusters (`user.root = <its hash>` in srbackup.conf): as root,
/// a server refuses users without one.
pub const ROOT_PW: &str = "root-test-pw";

/// A server on an ephemeral port of 127.0.0.1, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: std::path::PathBuf,
}

impl Server {
    /// Starts a server on `cluster`, whose `root` has the password [`ROOT_PW`] unless the
    /// cluster's srbackup.conf says otherwise.
    pub fn start(cluster: &Path) -> Server {
        let conf = cluster.join("srbackup.conf");
        if !conf.exists() {
            std::fs::create_dir_all(cluster).unwrap();
            std::fs::write(&conf, root_conf() + &allowed(cluster)).unwrap();
        }
        Server::start_as_is(cluster)
    }

    pub fn start_as_is(cluster: &Path) -> Server {
        Server::start_with_env(cluster, &[])
    }

    /// A server whose process gets these environment variables (fault switches).
    #[allow(dead_code)] // not every test binary uses it
    pub fn start_with_env(cluster: &Path, env: &[(&str, &str)]) -> Server {
        let log = cluster.with_extension("server.log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = Command::new(BIN)
            .arg("--cluster")
            .arg(cluster)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the server did not start: {line:?}"));
        Server { child, port, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's own directory (the cluster's parent) is where its sessions may keep local
/// repositories and read FILES() from.
pub fn allowed(cluster: &Path) -> String {
    format!("allowed_paths = {}\n", cluster.parent().unwrap().display())
}

pub fn root_conf() -> String {
    format!(
        "user.root = {}\n",
        srbackup::server::auth::native_hash(ROOT_PW)
    )
}

/// What the `mariadb` client printed for `sql` (`--table`: the boxes of a `mysql>` prompt).
pub struct ClientRun {
    pub ok: bool,
    pub out: String,
    pub err: String,
}

pub fn mariadb(port: u16, sql: &str) -> ClientRun {
    mariadb_with(port, ROOT_PW, sql)
}

pub fn mariadb_with(port: u16, password: &str, sql: &str) -> ClientRun {
    let out = Command::new("mariadb")
        // The client reads the password from MYSQL_PWD (on its command line, it would warn).
        .env("MYSQL_PWD", password)
        .args(["--protocol=tcp", "-h127.0.0.1", "-uroot", "--table"])
        .arg(format!("-P{port}"))
        .arg("-e")
        .arg(sql)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the mariadb client ({e}): install mariadb-client (scripts/test does)"
            )
        });
    ClientRun {
        ok: out.status.success(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `mariadb` client logged in as `user`, with `extra` arguments (TLS options, say).
#[allow(dead_code)] // not every test binary uses it
pub fn mariadb_as(port: u16, user: &str, password: &str, extra: &[String], sql: &str) -> ClientRun {
    let out = Command::new("mariadb")
        .env("MYSQL_PWD", password)
        .args(["--protocol=tcp", "-h127.0.0.1", "--table"])
        .arg(format!("-u{user}"))
        .arg(format!("-P{port}"))
        .args(extra)
        .arg("-e")
        .arg(sql)
        .output()
        .expect("mariadb client (scripts/test installs it)");
    ClientRun {
        ok: out.status.success(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn mariadb_ok(port: u16, sql: &str) -> String {
    let r = mariadb(port, sql);
    assert!(r.ok, "{sql}\n{}\n{}", r.out, r.err);
    r.out
}

/// The cells of the client's first table: the header row, then the rows.
pub fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

pub fn table_of(port: u16, sql: &str) -> Vec<Vec<String>> {
    table(&mariadb_ok(port, sql))
}

/// The Python interpreter with PyMySQL (scripts/test makes target/pyenv).
pub fn python() -> String {
    std::env::var("SRBACKUP_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn python_client(script: &str, args: &[String]) -> String {
    let out = Command::new(python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/clients")
                .join(script),
        )
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); scripts/test installs PyMySQL into target/pyenv",
                python()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{stderr}\n(PyMySQL missing? scripts/test installs it into target/pyenv and sets SRBACKUP_PYTHON)"
    );
    stdout
}

pub fn euid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    })
}

/// Reads one MySQL packet: (sequence id, payload).
pub fn read_packet(stream: &mut impl std::io::Read) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).ok()?;
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).ok()?;
    Some((header[3], payload))
}

pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    p.extend_from_slice(payload);
    p
}
