//! Test helpers shared by integration tests: an S3-protocol server on 127.0.0.1.
#![allow(dead_code)]

pub mod cli;
pub mod server;

use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use srbackup::results::{Output, ResultSet};
use srbackup::session::{Session, render};
use tokio::net::TcpListener;

pub const ACCESS_KEY: &str = "AKIDSRBACKUPTEST0001";
pub const SECRET_KEY: &str = "srbackup-test-secret-key-do-not-print";

/// s3s-fs serving a temporary directory on 127.0.0.1 (an ephemeral port), with SigV4
/// authentication on: requests signed with other keys are refused. Stops when dropped.
pub struct S3Server {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    /// Starts the server with these buckets. Call from inside a tokio runtime.
    pub async fn start(buckets: &[&str]) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        for b in buckets {
            std::fs::create_dir(root.path().join(b)).unwrap();
        }
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server { addr, root, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The seed's MinIO statement, pointed at this server.
    pub fn create_statement(&self, name: &str, location: &str) -> String {
        format!(
            "CREATE REPOSITORY {name}\nWITH BROKER\nON LOCATION \"{location}\"\nPROPERTIES(\n\"aws.s3.access_key\" = \"{ACCESS_KEY}\",\n\"aws.s3.secret_key\" = \"{SECRET_KEY}\",\n\"aws.s3.endpoint\" = \"{}\"\n)",
            self.endpoint()
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Fails if a credential used by the tests appears in `text`.
pub fn assert_no_secret(text: &str) {
    for s in [SECRET_KEY, ACCESS_KEY] {
        assert!(
            !text.contains(s),
            "a secret reached the output ({s}):\n{text}"
        );
    }
}

/// Runs a script; panics with the rendered diagnostic on failure.
pub async fn run(session: &mut Session, sql: &str) -> Vec<Output> {
    let mut outputs = Vec::new();
    if let Err(e) = session
        .run_script("test", sql, |_, out| outputs.push(out.clone()))
        .await
    {
        panic!("{sql}\n{e:?}");
    }
    outputs
}

/// Runs one statement expected to fail; returns the rendered diagnostic without colours.
pub async fn fails(session: &mut Session, sql: &str) -> String {
    let stmt = match srbackup::sql::parse(sql) {
        Ok(mut s) => s.remove(0),
        Err(e) => return e.render_plain(),
    };
    match session.execute(&stmt).await {
        Ok(out) => panic!("{sql} should fail, gave {out:?}"),
        Err(e) => {
            let report = render(e, "statement", sql);
            let mut out = String::new();
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100)
                .render_report(&mut out, report.as_ref())
                .unwrap();
            out
        }
    }
}

pub async fn rows(session: &mut Session, sql: &str) -> ResultSet {
    match run(session, sql).await.pop() {
        Some(Output::Rows(rs)) => rs,
        other => panic!("{sql} returned {other:?}"),
    }
}

pub const FIXTURE: &str = include_str!("../../fixtures/sr_hub.sql");

/// A cluster in `dir/cluster` with the sr_hub fixture and a local repository `test_repo` at
/// `repository`.
#[allow(dead_code)] // not every test binary uses it
pub async fn cluster_with_hub(
    dir: &std::path::Path,
    repository: &std::path::Path,
) -> std::path::PathBuf {
    let cluster = dir.join("cluster");
    let mut s = Session::open(&cluster).unwrap();
    run(&mut s, FIXTURE).await;
    run(
        &mut s,
        &format!(
            "CREATE REPOSITORY test_repo WITH BROKER ON LOCATION \"{}\"",
            repository.display()
        ),
    )
    .await;
    cluster
}

/// A fresh cluster holding the sr_hub fixture and a local repository named `r`; the two
/// temporary directories live as long as the caller keeps them.
pub async fn hub_with_local_repo() -> (tempfile::TempDir, tempfile::TempDir, Session) {
    let repo = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("c")).unwrap();
    run(&mut s, FIXTURE).await;
    run(
        &mut s,
        &format!(
            "CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\"",
            repo.path().display()
        ),
    )
    .await;
    (dir, repo, s)
}

/// CHECKSUM TABLE of every table and MV of an sr_hub copy, and the rows of its views and sync MV.
pub async fn checksums(s: &mut Session, db: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for name in TABLES {
        let table = format!("{db}.{name}");
        let rs = rows(s, &format!("CHECKSUM TABLE {table}")).await;
        out.insert(name.to_string(), rs.get(0, "Checksum").unwrap().to_string());
    }
    for view in ["sr_view1", "sr_view2", "sr_member_by_city"] {
        let rs = rows(s, &format!("SELECT * FROM {db}.{view} ORDER BY 1, 2")).await;
        out.insert(view.to_string(), format!("{:?}", rs.rows));
    }
    out
}

/// The sr_hub fixture's tables and async MVs: what CHECKSUM TABLE compares.
pub const TABLES: &[&str] = &[
    "sr_member",
    "sr_pmc",
    "sr_event",
    "sr_region",
    "sr_mv1",
    "sr_mv2",
];
