//! Typed journals: the entries srbackup 0.1.0 wrote (untagged, `fixtures/journals/`) decode
//! into the same typed entries as today's tagged ones, and a damaged entry (a renamed key, an
//! unknown key, a wrong kind, a task the plan lacks) is an error naming the job and the task,
//! never a silent skip.

use std::collections::BTreeMap;

use serde_json::Value;
use srbackup::exec::journal::{Entry, Journal};
use srbackup::plan::Plan;
use srbackup::repo::Encoding;
use srbackup::sql::options::Compression;

struct Fixture {
    job: i64,
    plan: Plan,
    journal: BTreeMap<String, String>,
}

fn fixture(name: &str) -> Fixture {
    let path = format!(
        "{}/fixtures/journals/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let plan = Plan::from_json(&v["plan"].to_string()).unwrap();
    let journal = v["journal"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    Fixture {
        job: v["job"].as_i64().unwrap(),
        plan,
        journal,
    }
}

#[test]
fn a_backup_journal_of_the_previous_format_decodes_to_typed_entries() {
    let f = fixture("backup");
    // The old plan's `properties` resolve through the option table.
    assert_eq!(
        f.plan.options.compression,
        Some(Compression::Zstd { level: 3 })
    );
    assert_eq!(f.plan.options.timeout_seconds, 86_400);
    let journal = Journal::decode(f.job, &f.plan, &f.journal).unwrap();
    let pin = journal.pin().expect("the pin entry");
    assert_eq!(pin.skeleton.label, "fix");
    assert!(journal.released());
    // The old plan's one task per file is read as upload groups; the journal's per-file keys
    // (`upload:sr_hub.sr_member.p1.t0.rs0`) still name their files.
    assert!(f.journal.keys().any(|k| k.ends_with(".rs0")));
    let uploads: Vec<&Entry> = journal.files().map(|(_, e)| e).collect();
    assert_eq!(uploads.len(), 45);
    assert_eq!(f.plan.files().count(), 45);
    for (&(t, i), _) in journal.files() {
        assert_eq!(f.plan.tasks[t].action.kind(), "upload");
        assert!(i < f.plan.tasks[t].action.file_count());
    }
    for e in uploads {
        match e {
            Entry::Upload(u) => {
                assert_eq!(u.encoding, Encoding::Zstd);
                assert!(u.sent && u.bytes > 0 && u.stored_bytes > 0);
            }
            other => panic!("an upload task decoded to {other:?}"),
        }
    }
    // Re-encoded, the entries carry their tag and decode to themselves.
    for (task, entry) in journal.iter() {
        let action = &f.plan.tasks.iter().find(|t| &t.id == task).unwrap().action;
        let text = entry.to_json();
        assert!(text.contains("\"entry\":"), "{text}");
        assert_eq!(&Entry::decode(&text, action).unwrap(), entry);
    }
}

#[test]
fn a_restore_journal_of_the_previous_format_decodes_to_typed_entries() {
    let f = fixture("restore");
    let journal = Journal::decode(f.job, &f.plan, &f.journal).unwrap();
    assert!(journal.committed());
    let stages: Vec<_> = journal.stages().collect();
    assert_eq!(stages.len(), 6, "{stages:?}");
    assert!(
        stages
            .iter()
            .all(|(_, s)| s.staged_id > 0 && s.existing_id.is_none())
    );
    let downloads = journal
        .files()
        .filter(|(_, e)| matches!(e, Entry::Download(d) if d.path.starts_with("data/")))
        .count();
    assert_eq!(downloads, 45);
}

/// Replaces one task's stored entry and returns the decode error.
fn damage(f: &Fixture, task_prefix: &str, edit: impl Fn(&mut Value)) -> String {
    let mut journal = f.journal.clone();
    let (task, text) = journal
        .iter_mut()
        .find(|(k, _)| k.starts_with(task_prefix))
        .unwrap();
    let mut v: Value = serde_json::from_str(text).unwrap();
    edit(&mut v);
    *text = v.to_string();
    let task = task.clone();
    let e = Journal::decode(f.job, &f.plan, &journal).unwrap_err();
    assert_eq!(e.job, f.job);
    assert_eq!(e.task, task);
    e.to_string()
}

#[test]
fn a_damaged_entry_is_an_error_naming_the_job_and_the_task() {
    let f = fixture("restore");
    // The undo path reads staged_id: a renamed key must not silently skip an undo.
    let e = damage(&f, "stage:", |v| {
        let id = v["staged_id"].take();
        v.as_object_mut().unwrap().remove("staged_id");
        v["staged"] = id;
    });
    assert!(
        e.contains("job 2") && e.contains("stage:sr_hub_copy"),
        "{e}"
    );
    assert!(e.contains("staged"), "{e}");
    let e = damage(&f, "download:", |v| v["sent_by"] = "someone".into());
    assert!(e.contains("unknown field"), "{e}");
    let e = damage(&f, "download:", |v| v["path"] = 7.into());
    assert!(e.contains("invalid type"), "{e}");
    let e = damage(&f, "commit:", |v| v["entry"] = "stage".into());
    assert!(e.contains("the plan's task is a commit task"), "{e}");
    let e = damage(&f, "stage:", |v| *v = Value::from("staged"));
    assert!(e.contains("not a JSON object"), "{e}");

    let mut journal = f.journal.clone();
    journal.insert("stage:sr_hub_copy.planted".into(), "{}".into());
    let e = Journal::decode(f.job, &f.plan, &journal).unwrap_err();
    assert_eq!(e.task, "stage:sr_hub_copy.planted");
    assert!(e.to_string().contains("the plan has no such task"), "{e}");
}

#[test]
fn an_old_plan_whose_properties_do_not_resolve_is_refused() {
    let path = format!(
        "{}/fixtures/journals/backup.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["plan"]["properties"]["compression"] = "lz4".into();
    let e = Plan::from_json(&v["plan"].to_string()).unwrap_err();
    assert!(e.contains("compression \"lz4\" is not supported"), "{e}");
    let mut v2 = v.clone();
    v2["plan"]["properties"]["compression"] = "none".into();
    v2["plan"]["surprise"] = true.into();
    let e = Plan::from_json(&v2["plan"].to_string()).unwrap_err();
    assert!(e.contains("unknown field `surprise`"), "{e}");
}
