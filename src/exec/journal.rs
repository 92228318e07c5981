//! The journal of a job: one typed entry per finished task, stored in the catalog in the same
//! transaction as the task's effect. Resume skips journaled tasks; undo reads what they made
//! (pins, staged objects) from here. Entries are decoded once, when a job starts or is undone,
//! and checked against the plan: an entry for a task the plan lacks, an entry of the wrong
//! kind for its task, or a field that is missing, unknown or of the wrong type is an error
//! naming the job and the task — never a silent skip.
//!
//! The stored form is JSON with an `entry` tag (`{"entry":"stage","staged_id":7,...}`).
//! Journals written before the tag existed hold the same fields without it; their kind is the
//! kind of the plan's task, so they decode to the same entries.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::plan::{Action, Plan};
use crate::repo::{Encoding, Manifest};

/// What a finished task left behind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    /// Backup: the pin taken, and the manifest's skeleton read in the pin's transaction.
    Pin(Box<PinEntry>),
    /// Backup: one file stored (or found already stored).
    Upload(UploadEntry),
    /// Backup: the pin released.
    Release(Empty),
    /// Backup: the manifest written; the snapshot exists.
    Manifest(ManifestEntry),
    /// Restore: the target database created.
    CreateDatabase(Empty),
    /// Restore: the staged object made, and the existing object it will replace.
    Stage(StageEntry),
    /// Restore: one file fetched, verified and ingested into its staged tablet.
    Download(DownloadEntry),
    /// Restore: everything staged published.
    Commit(Empty),
    CreateView(Empty),
    ActivateMaterializedView(Empty),
    CreateFunction(Empty),
    CreateCatalog(Empty),
    ApplyPrivileges(Empty),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinEntry {
    pub pin_id: i64,
    pub skeleton: Manifest,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadEntry {
    pub encoding: Encoding,
    /// The file's size.
    pub bytes: u64,
    /// The object's size in the repository (compressed, when it is).
    pub stored_bytes: u64,
    /// Whether this run sent it (false: the repository held it already).
    pub sent: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub timestamp: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageEntry {
    pub staged_id: i64,
    pub existing_id: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadEntry {
    /// Where the file landed, relative to the cluster directory.
    pub path: String,
}

impl Entry {
    /// The tag of the entry a task of this action leaves.
    pub fn tag_for(action: &Action) -> &'static str {
        match action {
            // The manifest's entry is tagged `manifest`, as journals already on disk say.
            Action::WriteManifest { .. } => "manifest",
            other => other.kind(),
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            Entry::Pin(_) => "pin",
            Entry::Upload(_) => "upload",
            Entry::Release(_) => "release",
            Entry::Manifest(_) => "manifest",
            Entry::CreateDatabase(_) => "create_database",
            Entry::Stage(_) => "stage",
            Entry::Download(_) => "download",
            Entry::Commit(_) => "commit",
            Entry::CreateView(_) => "create_view",
            Entry::ActivateMaterializedView(_) => "activate_materialized_view",
            Entry::CreateFunction(_) => "create_function",
            Entry::CreateCatalog(_) => "create_catalog",
            Entry::ApplyPrivileges(_) => "apply_privileges",
        }
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("journal entries serialize")
    }

    /// Decodes the stored form of the entry of a task of `action`.
    pub fn decode(text: &str, action: &Action) -> Result<Entry, String> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let expected = Entry::tag_for(action);
        let object = value
            .as_object_mut()
            .ok_or_else(|| "not a JSON object".to_string())?;
        match object.get("entry") {
            // A journal from before entries were tagged: the task says what it is.
            None => {
                object.insert("entry".into(), expected.into());
            }
            Some(serde_json::Value::String(tag)) if tag == expected => {}
            Some(other) => {
                return Err(format!(
                    "a {other} entry, but the plan's task is a {expected} task"
                ));
            }
        }
        let entry: Entry = serde_json::from_value(value).map_err(|e| e.to_string())?;
        debug_assert_eq!(entry.tag(), expected);
        Ok(entry)
    }
}

/// Why a journal cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {job}: the journal entry of task {task} is unusable: {reason}")]
pub struct JournalError {
    pub job: i64,
    pub task: String,
    pub reason: String,
}

/// A job's decoded journal, checked against its plan. Entries of coordinator tasks are kept
/// by task id; entries of files (one per file of a transfer group, stored under
/// `group#index`, or under the file's own task id in jobs planned by version 2) by (task, file)
/// index, so that a million finished files cost no million keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Journal {
    entries: BTreeMap<String, Entry>,
    files: HashMap<(usize, usize), Entry>,
    /// Some file was journaled under its version 2 id.
    legacy: bool,
}

impl Journal {
    /// Decodes the stored journal of job `job`, which runs `plan`.
    pub fn decode(
        job: i64,
        plan: &Plan,
        stored: &BTreeMap<String, String>,
    ) -> Result<Journal, JournalError> {
        let (journal, mut errors) = Journal::decode_partial(job, plan, stored);
        match errors.is_empty() {
            true => Ok(journal),
            false => Err(errors.swap_remove(0)),
        }
    }

    /// [`Journal::decode`] that keeps going: the entries that decode, and an error for each
    /// that does not (for CANCEL, which must end a job whatever its journal holds).
    pub fn decode_partial(
        job: i64,
        plan: &Plan,
        stored: &BTreeMap<String, String>,
    ) -> (Journal, Vec<JournalError>) {
        let tasks: HashMap<&str, usize> = plan
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        // Built only when a key is neither a task nor `group#index`: a journal of a job
        // planned by version 2.
        let mut legacy: Option<HashMap<String, (usize, usize)>> = None;
        let mut journal = Journal::default();
        let mut errors = Vec::new();
        for (task, text) in stored {
            let error = |reason: String| JournalError {
                job,
                task: task.clone(),
                reason,
            };
            let place = if let Some(&i) = tasks.get(task.as_str()) {
                if plan.tasks[i].action.is_transfer() {
                    Err(error(
                        "a transfer group is journaled per file, not whole".into(),
                    ))
                } else {
                    Ok((i, None))
                }
            } else if let Some((group, n)) = task.rsplit_once('#')
                && let Some(&i) = tasks.get(group)
            {
                match n.parse::<usize>() {
                    Ok(f) if f < plan.tasks[i].action.file_count() => Ok((i, Some(f))),
                    _ => Err(error(format!("task {group} has no file {n}"))),
                }
            } else {
                let legacy = legacy.get_or_insert_with(|| plan.legacy_file_ids());
                match legacy.get(task.as_str()) {
                    Some(&(i, f)) => {
                        journal.legacy = true;
                        Ok((i, Some(f)))
                    }
                    None => Err(error("the plan has no such task".into())),
                }
            };
            let decoded = place.and_then(|(i, file)| {
                Entry::decode(text, &plan.tasks[i].action)
                    .map(|e| (i, file, e))
                    .map_err(error)
            });
            match decoded {
                Ok((_, None, entry)) => {
                    journal.entries.insert(task.clone(), entry);
                }
                Ok((i, Some(f), entry)) => {
                    journal.files.insert((i, f), entry);
                }
                Err(e) => errors.push(e),
            }
        }
        (journal, errors)
    }

    pub fn contains(&self, task: &str) -> bool {
        self.entries.contains_key(task)
    }

    pub fn get(&self, task: &str) -> Option<&Entry> {
        self.entries.get(task)
    }

    pub fn remove(&mut self, task: &str) {
        self.entries.remove(task);
    }

    pub fn insert(&mut self, task: String, entry: Entry) {
        self.entries.insert(task, entry);
    }

    /// Whether some file was journaled under the id version 2 plans gave it.
    pub fn has_legacy_keys(&self) -> bool {
        self.legacy
    }

    /// The entry of file `file` of transfer group `task` (indices in the plan).
    pub fn file(&self, task: usize, file: usize) -> Option<&Entry> {
        self.files.get(&(task, file))
    }

    pub fn insert_file(&mut self, task: usize, file: usize, entry: Entry) {
        self.files.insert((task, file), entry);
    }

    pub fn remove_file(&mut self, task: usize, file: usize) {
        self.files.remove(&(task, file));
    }

    /// The journaled files: ((task, file), entry), in no particular order.
    pub fn files(&self) -> impl Iterator<Item = (&(usize, usize), &Entry)> {
        self.files.iter()
    }

    /// Coordinator tasks' entries by task id.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    /// The pin of a backup, once taken.
    pub fn pin(&self) -> Option<&PinEntry> {
        self.entries.values().find_map(|e| match e {
            Entry::Pin(p) => Some(p.as_ref()),
            _ => None,
        })
    }

    /// Whether the restore's commit happened (its data is published).
    pub fn committed(&self) -> bool {
        self.entries.values().any(|e| matches!(e, Entry::Commit(_)))
    }

    /// Whether the backup's pin was released.
    pub fn released(&self) -> bool {
        self.entries
            .values()
            .any(|e| matches!(e, Entry::Release(_)))
    }

    /// Stage entries by task id.
    pub fn stages(&self) -> impl Iterator<Item = (&String, &StageEntry)> {
        self.entries.iter().filter_map(|(k, e)| match e {
            Entry::Stage(s) => Some((k, s)),
            _ => None,
        })
    }
}
