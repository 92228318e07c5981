//! The planner against the sr_hub fixture: the plan of every seed BACKUP and RESTORE against
//! its one golden copy in `plans/` (compared with sizes, hashes and paths redacted: row order
//! inside a rebuilt fixture's files may differ), identical plans for v3.4/legacy pairs,
//! byte-identical re-plans, every resolution error with its rendered diagnostic (insta), and no
//! credential in any plan.

mod common;

use std::path::Path;

use common::{S3Server, SECRET_KEY, assert_no_secret, run};
use serde_json::Value;
use srbackup::plan::Plan;
use srbackup::session::{Session, render};
use srbackup::sql::{self, Statement};

const FIXTURE: &str = include_str!("../fixtures/sr_hub.sql");
const SEED: &str = include_str!("../fixtures/seed-statements.sql");
/// Where the examples in plans/ say their repository is.
const EXAMPLE_LOCATION: &str = "s3://bucket_minio/backup";

fn seed_time(label: &str) -> &'static str {
    if label == "sr_hub_backup" {
        "2024-12-09-10-25-58-842"
    } else {
        "2024-12-09-10-52-10-940"
    }
}

/// The seed's BACKUP and RESTORE statements, numbered as in fixtures/statements/.
fn seed_jobs() -> Vec<(usize, Statement, String)> {
    sql::parse(SEED)
        .unwrap()
        .into_iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Statement::Backup(_) | Statement::Restore(_)))
        .map(|(i, s)| {
            let span = s.span();
            (i + 1, s, SEED[span.start..span.end].to_string())
        })
        .collect()
}

/// A cluster with the fixture, a repository on the S3 server, and every seed backup taken at
/// the timestamp the seed's restores name.
async fn setup() -> (tempfile::TempDir, S3Server, Session) {
    let server = S3Server::start(&["bucket-minio"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::open(&dir.path().join("cluster")).unwrap();
    run(&mut s, FIXTURE).await;
    run(
        &mut s,
        &server.create_statement("test_repo", "s3://bucket-minio/backup"),
    )
    .await;
    for (_, stmt, text) in seed_jobs() {
        if let Statement::Backup(b) = &stmt {
            s.set_snapshot_time(Some(seed_time(&b.snapshot.value).to_string()));
            run(&mut s, &text).await;
        }
    }
    (dir, server, s)
}

async fn plan(s: &mut Session, text: &str) -> Plan {
    let stmt = sql::parse_one(text).unwrap();
    match srbackup::plan::plan(s.engine(), &stmt, text).await {
        Ok(p) => p,
        Err(e) => panic!("{text}\n{:?}", render(e, "statement", text)),
    }
}

/// What may differ between two builds of the fixture: sizes, hashes, paths, ids.
fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            // A transfer group's files: [bucket, rowset_id or version, rows, bytes, "sha256"].
            let upload = map.get("action") == Some(&Value::from("upload"));
            if let Some(Value::Array(files)) = map.get_mut("files") {
                for f in files.iter_mut().filter_map(Value::as_array_mut) {
                    if upload && f.len() > 1 {
                        f[1] = "[rowset_id]".into();
                    }
                    for (i, what) in [(3, "[bytes]"), (4, "[sha256]")] {
                        if let Some(x) = f.get_mut(i) {
                            *x = what.into();
                        }
                    }
                }
            }
            for (k, x) in map.iter_mut() {
                match k.as_str() {
                    "bytes" | "human" | "sha256" | "path" | "rowset_id" | "fingerprint"
                    | "manifest_sha256" | "location" => *x = Value::String(format!("[{k}]")),
                    "rowsets" if x.is_array() => *x = Value::String("[rowset ids]".into()),
                    _ => redact(x),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn redacted(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(plan).unwrap();
    redact(&mut v);
    v
}

fn example_name(n: usize, plan: &Plan) -> String {
    format!(
        "{n:02}-{}-{}.json",
        match plan.kind {
            srbackup::catalog::JobKind::Backup => "backup",
            srbackup::catalog::JobKind::Restore => "restore",
        },
        plan.snapshot.label
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_statement_has_a_reviewed_plan_and_plans_dir_is_current() {
    let (_dir, _server, mut s) = setup().await;
    let update = std::env::var_os("SRBACKUP_UPDATE_PLANS").is_some();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut seen = Vec::new();
    for (n, _, text) in seed_jobs() {
        let p = plan(&mut s, &text).await;
        let json = p.to_json();
        assert_no_secret(&json);
        assert!(!json.contains(SECRET_KEY));
        // The same statement on the same catalog: byte for byte the same plan.
        assert_eq!(plan(&mut s, &text).await.to_json(), json, "{text}");
        // The file is a plan the executor accepts, and reads back as itself.
        assert_eq!(Plan::from_json(&json).unwrap(), p, "{text}");
        // Streamed to a file (`srbackup plan -o`), it is the same plan byte for byte.
        let stmt = sql::parse_one(&text).unwrap();
        let file = _dir.path().join("streamed.json");
        let (_, tasks) = srbackup::plan::plan_to_file(s.engine(), &stmt, &text, &file)
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), json, "{text}");
        assert_eq!(tasks, p.tasks.len());
        // plans/: the real plan, with the repository's test address replaced.
        let example = json.replace(
            &format!("\"{}\"", p.repository.location),
            &format!("\"{EXAMPLE_LOCATION}\""),
        );
        let name = example_name(n, &p);
        let path = examples.join(&name);
        if update {
            std::fs::write(&path, &example).unwrap();
        } else {
            let stored = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!("plans/{name} is missing; run with SRBACKUP_UPDATE_PLANS=1")
            });
            let stored: Plan = Plan::from_json(&stored).unwrap();
            let mut fresh = p.clone();
            fresh.repository.location = EXAMPLE_LOCATION.into();
            assert_eq!(
                redacted(&stored),
                redacted(&fresh),
                "plans/{name} is out of date; run with SRBACKUP_UPDATE_PLANS=1 and review the diff"
            );
        }
        seen.push(name);
    }
    // No stale example is left behind.
    let mut on_disk: Vec<String> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    seen.sort();
    assert_eq!(on_disk, seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_and_v3_4_statements_give_identical_plans() {
    let (_dir, _server, mut s) = setup().await;
    let pairs = [
        (
            "BACKUP DATABASE sr_hub SNAPSHOT sr_member_backup TO test_repo ON (TABLE sr_member)",
            "BACKUP SNAPSHOT sr_hub.sr_member_backup TO test_repo ON (sr_member)",
        ),
        (
            "BACKUP DATABASE sr_hub SNAPSHOT sr_par_backup TO test_repo ON (TABLE sr_member PARTITION (p1))",
            "BACKUP SNAPSHOT sr_hub.sr_par_backup TO test_repo ON (sr_member PARTITION (p1))",
        ),
        (
            "RESTORE SNAPSHOT sr_member_backup FROM test_repo DATABASE sr_hub ON (TABLE sr_member) PROPERTIES (\"backup_timestamp\" = \"2024-12-09-10-52-10-940\")",
            "RESTORE SNAPSHOT sr_hub.sr_member_backup FROM test_repo ON (sr_member) PROPERTIES (\"backup_timestamp\"=\"2024-12-09-10-52-10-940\")",
        ),
        (
            "RESTORE SNAPSHOT sr_hub_backup FROM test_repo DATABASE sr_hub PROPERTIES(\"backup_timestamp\" = \"2024-12-09-10-25-58-842\")",
            "RESTORE SNAPSHOT sr_hub.sr_hub_backup FROM `test_repo` PROPERTIES(\"backup_timestamp\" = \"2024-12-09-10-25-58-842\")",
        ),
    ];
    for (v34, legacy) in pairs {
        let mut a = plan(&mut s, v34).await;
        let mut b = plan(&mut s, legacy).await;
        a.statement.clear();
        b.statement.clear();
        assert_eq!(a.to_json(), b.to_json(), "{v34}\n{legacy}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dag_orders_restores_as_the_rules_say() {
    let (_dir, _server, mut s) = setup().await;
    let p = plan(
        &mut s,
        "RESTORE SNAPSHOT sr_hub_backup FROM test_repo DATABASE sr_hub AS sr_hub_new",
    )
    .await;
    assert!(
        p.snapshot.newest,
        "no backup_timestamp: the newest is taken and recorded"
    );
    let after = |id: &str| -> Vec<String> {
        p.tasks
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("no task {id}"))
            .after
            .clone()
    };
    assert_eq!(after("create-database:sr_hub_new"), Vec::<String>::new());
    assert_eq!(
        after("stage:sr_hub_new.sr_member"),
        ["create-database:sr_hub_new"]
    );
    assert_eq!(
        after("download:sr_hub_new.sr_member.p1"),
        ["stage:sr_hub_new.sr_member"]
    );
    // The sync MV's rows travel in the base table's tablets, in a group of their own.
    assert_eq!(
        after("download:sr_hub_new.sr_member.p1.sr_member_by_city"),
        ["stage:sr_hub_new.sr_member"]
    );
    let commit = after("commit:sr_hub_new");
    assert!(
        commit
            .iter()
            .all(|d| d.starts_with("download:") || d.starts_with("stage:"))
    );
    assert_eq!(after("view:sr_hub_new.sr_view1"), ["commit:sr_hub_new"]);
    // A view over a view comes after it.
    assert_eq!(
        after("view:sr_hub_new.sr_view2"),
        ["commit:sr_hub_new", "view:sr_hub_new.sr_view1"]
    );
    assert_eq!(after("mv:sr_hub_new.sr_mv1"), ["commit:sr_hub_new"]);
    let dot = srbackup::plan::graph::TaskGraph::new(&p.tasks)
        .unwrap()
        .dot();
    assert!(dot.contains("\"view:sr_hub_new.sr_view1\" -> \"view:sr_hub_new.sr_view2\""));
    let text = srbackup::plan::explain::explain(&p);
    assert!(text.contains("sr_hub → restored as sr_hub_new"), "{text}");
}

/// Every resolution error, rendered as the user sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolution_errors_name_the_object_and_suggest() {
    let (_dir, _server, mut s) = setup().await;
    run(
        &mut s,
        "CREATE DATABASE other; CREATE TABLE other.sr_member (sr_id BIGINT NOT NULL, name VARCHAR(64) NOT NULL) DUPLICATE KEY (sr_id) DISTRIBUTED BY HASH (sr_id) BUCKETS 4",
    )
    .await;
    let cases = [
        (
            "unknown-database",
            "BACKUP DATABASE sr_hb SNAPSHOT x TO test_repo",
        ),
        (
            "unknown-table",
            "BACKUP DATABASE sr_hub SNAPSHOT x TO test_repo ON (TABLE sr_membr)",
        ),
        (
            "unknown-partition",
            "BACKUP DATABASE sr_hub SNAPSHOT x TO test_repo ON (TABLE sr_member PARTITION (p9))",
        ),
        (
            "unknown-view",
            "BACKUP DATABASE sr_hub SNAPSHOT x TO test_repo ON (VIEW sr_veiw1)",
        ),
        (
            "unknown-mv",
            "BACKUP DATABASE sr_hub SNAPSHOT x TO test_repo ON (MATERIALIZED VIEW sr_mv3)",
        ),
        (
            "unknown-function",
            "BACKUP DATABASE sr_hub SNAPSHOT x TO test_repo ON (FUNCTION sr_udf9)",
        ),
        (
            "unknown-catalog",
            "BACKUP EXTERNAL CATALOG (icebreg) SNAPSHOT x TO test_repo",
        ),
        (
            "unknown-repository",
            "BACKUP DATABASE sr_hub SNAPSHOT x TO test_rep",
        ),
        (
            "sync-mv-named",
            "BACKUP DATABASE sr_hub SNAPSHOT x TO test_repo ON (MATERIALIZED VIEW sr_member_by_city)",
        ),
        (
            "wrong-kind",
            "BACKUP DATABASE sr_hub SNAPSHOT x TO test_repo ON (TABLE sr_view1)",
        ),
        (
            "no-such-snapshot",
            "RESTORE SNAPSHOT sr_nothing FROM test_repo DATABASE sr_hub",
        ),
        (
            "no-such-timestamp",
            "RESTORE SNAPSHOT sr_hub_backup FROM test_repo DATABASE sr_hub PROPERTIES (\"backup_timestamp\" = \"2024-12-09-10-25-58-000\")",
        ),
        (
            "not-in-snapshot",
            "RESTORE SNAPSHOT sr_member_backup FROM test_repo DATABASE sr_hub ON (TABLE sr_pmc) PROPERTIES (\"backup_timestamp\" = \"2024-12-09-10-52-10-940\")",
        ),
        (
            "partition-not-in-snapshot",
            "RESTORE SNAPSHOT sr_par_backup FROM test_repo DATABASE sr_hub ON (TABLE sr_member PARTITION (p2)) PROPERTIES (\"backup_timestamp\" = \"2024-12-09-10-52-10-940\")",
        ),
        (
            "snapshot-of-another-database",
            "RESTORE SNAPSHOT sr_hub_backup FROM test_repo DATABASE sr_hubb PROPERTIES (\"backup_timestamp\" = \"2024-12-09-10-25-58-842\")",
        ),
        (
            "schema-differs",
            "RESTORE SNAPSHOT sr_member_backup FROM test_repo DATABASE sr_hub AS other ON (TABLE sr_member) PROPERTIES (\"backup_timestamp\" = \"2024-12-09-10-52-10-940\")",
        ),
        (
            "target-is-another-kind",
            "RESTORE SNAPSHOT sr_member_backup FROM test_repo DATABASE sr_hub ON (TABLE sr_member AS sr_view1) PROPERTIES (\"backup_timestamp\" = \"2024-12-09-10-52-10-940\")",
        ),
    ];
    for (name, text) in cases {
        let stmt = sql::parse_one(text).unwrap();
        let e = match srbackup::plan::plan(s.engine(), &stmt, text).await {
            Ok(_) => panic!("{name}: {text} should fail"),
            Err(e) => e,
        };
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .render_report(&mut out, render(e, name, text).as_ref())
            .unwrap();
        assert_no_secret(&out);
        insta::assert_snapshot!(format!("plan-error-{name}"), out);
    }
}

/// A plan file is input: each file line has exactly its five fields (a sixth only `true` on an
/// upload), a typo in a task's key is refused rather than dropped, and a group's file count
/// and numbers are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_file_lines_and_task_keys_are_refused() {
    let (_dir, _server, mut s) = setup().await;
    let json = plan(
        &mut s,
        "BACKUP DATABASE sr_hub SNAPSHOT sr_hub_backup TO test_repo",
    )
    .await
    .to_json();
    let first_line = |json: &str| -> (usize, usize) {
        let start = json.find("\"files\": [").unwrap();
        let open = start + json[start..].find("\n").unwrap() + 1;
        let open = open + json[open..].find('[').unwrap();
        let close = open + json[open..].find(']').unwrap() + 1;
        (open, close)
    };
    let (open, close) = first_line(&json);
    let line = &json[open..close];
    let with = |replacement: &str| format!("{}{replacement}{}", &json[..open], &json[close..]);
    let fields: Vec<&str> = line[1..line.len() - 1].split(',').collect();
    let five = fields[..5].join(",");
    for (bad, says) in [
        (format!("[{five},true,1]"), "too many elements"),
        (format!("[{five},false]"), "sixth element is true"),
        (format!("[{}]", fields[..4].join(",")), "a file must be"),
        ("[]".to_string(), "a file must be"),
        (
            format!("[{},\"ABC\"]", fields[..4].join(",")),
            "is not a SHA-256",
        ),
        (format!("[-1,{}]", fields[1..5].join(",")), "invalid value"),
        ("{\"bucket\": 0}".to_string(), "expected a file"),
    ] {
        let e = Plan::from_json(&with(&bad)).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
    // A typo in a task's key: refused, not dropped.
    let typo = json.replacen("\"after\": [", "\"afer\": [", 1);
    let e = Plan::from_json(&typo).unwrap_err();
    assert!(e.contains("unknown field `afer`"), "{e}");
    // A key twice in one task: refused (a reviewer reads the first, a map would keep the last).
    let twice = json.replacen("\"after\": [", "\"after\": [],\n      \"after\": [", 1);
    let e = Plan::from_json(&twice).unwrap_err();
    assert!(e.contains("duplicate field `after`"), "{e}");
    // A plan of a newer format is refused with what to do.
    let newer = json.replacen("\"version\": 3", "\"version\": 4", 1);
    assert!(
        Plan::from_json(&newer)
            .unwrap_err()
            .contains("upgrade srbackup")
    );
}
