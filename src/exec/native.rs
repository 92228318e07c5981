//! Runs plans for a StarRocks target (#19): submits each native BACKUP/RESTORE, polls
//! SHOW BACKUP/RESTORE until it ends, retries a failed job (bounded, exponential backoff, a new
//! label for a backup: StarRocks keeps a failed label taken) without redoing finished ones,
//! cancels the native job when the run is cancelled, swaps restored tables in, and records the
//! logical snapshot in srbackup's index.
//!
//! A run lives in the local state directory, `runs/<run id>/`: the plan as applied
//! (`plan.json`), an append-only journal (`journal.jsonl`, each line fsynced before the
//! statement it announces is sent) and a lock held while a process runs it. `resume` reads the
//! journal of an interrupted run and picks up: a job announced but not seen finished is looked
//! for on the FE (SHOW BACKUP/RESTORE, then SHOW SNAPSHOT) before anything is sent again.
//!
//! The executor knows task kinds only; what they mean to StarRocks is in `fe`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fe::catalog as fec;
use crate::fe::index::{self, Entry, Held, Index, IndexObject, IndexPartition};
use crate::fe::jobs::{self, ItemKind, JobKind, JobStatus};
use crate::fe::{ClusterUrl, Fe, FeError, quote};
use crate::plan::native::{NativePlan, Task, TaskKind};

/// How to reach the FE again (each database lane has its own connection).
#[derive(Clone)]
pub struct Connector {
    pub url: ClusterUrl,
    pub password: String,
}

impl Connector {
    pub async fn connect(&self) -> Result<Fe> {
        Ok(Fe::connect(&self.url, &self.password).await?)
    }
}

/// Set to stop a run: running native jobs are cancelled, temporary tables dropped.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        plan_sha256: String,
        cluster: String,
    },
    /// About to send the task's statement (with this label, attempt n).
    Submitted {
        task: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        attempt: u32,
        /// The FE's last job of the database before this one (to tell them apart).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_job: Option<String>,
        /// Swap/rename: the temporary table's id (a SWAP or RENAME moves names; after it the
        /// live name carries this id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        temp_table: Option<i64>,
    },
    Finished {
        task: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp: Option<String>,
    },
    Failed {
        task: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        attempt: u32,
        message: String,
    },
    Recorded {
        unit: usize,
        timestamp: String,
    },
    /// A restore job finished into a temporary table: its partitions as the job left them
    /// (name, id, version), so a write into the copy before it goes live shows.
    Landed {
        table: String,
        partitions: Vec<(String, i64, i64)>,
    },
    Done {
        outcome: String,
        message: String,
    },
}

/// The journal of one run.
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
    pub events: Vec<Event>,
}

impl Journal {
    fn open(path: &Path) -> Result<Journal> {
        let io = |e: std::io::Error| Error::invalid(format!("{}: {e}", path.display()), None);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let mut events = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Event>(line) {
                Ok(e) => events.push(e),
                // A torn last line (a crash mid-write) is dropped; anything else is damage.
                Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
                Err(e) => {
                    return Err(Error::invalid(
                        format!("{} line {}: {e}", path.display(), i + 1),
                        Some("the run's journal is damaged; it cannot be resumed safely"),
                    ));
                }
            }
        }
        // A torn last line (a crash mid-write) is cut off, so the next line starts clean.
        if !text.is_empty() && !text.ends_with('\n') {
            let keep = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(keep as u64).and_then(|_| f.sync_all()))
                .map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            events,
        })
    }

    fn append(&mut self, e: Event) -> Result<()> {
        let mut line = serde_json::to_string(&e).expect("an event serializes");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|err| Error::invalid(format!("{}: {err}", self.path.display()), None))?;
        self.events.push(e);
        Ok(())
    }

    fn finished(&self, task: &str) -> Option<(Option<String>, Option<String>)> {
        self.events.iter().find_map(|e| match e {
            Event::Finished {
                task: t,
                label,
                timestamp,
            } if t == task => Some((label.clone(), timestamp.clone())),
            _ => None,
        })
    }

    /// The last announcement of a task that has neither finished nor been seen failing (an
    /// attempt journaled as failed is over: the next one is due).
    fn pending(&self, task: &str) -> Option<Event> {
        if self.finished(task).is_some() {
            return None;
        }
        let (i, last) = self
            .events
            .iter()
            .enumerate()
            .rev()
            .find(|(_, e)| matches!(e, Event::Submitted { task: t, .. } if t == task))?;
        let Event::Submitted { attempt, .. } = last else {
            return None;
        };
        let failed = self.events[i..].iter().any(
            |e| matches!(e, Event::Failed { task: t, attempt: a, .. } if t == task && a == attempt),
        );
        (!failed).then(|| last.clone())
    }

    fn attempts(&self, task: &str) -> u32 {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Submitted {
                    task: t, attempt, ..
                } if t == task => Some(*attempt + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    fn done(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            Event::Done { outcome, .. } => Some(outcome.as_str()),
            _ => None,
        })
    }

    fn recorded(&self, unit: usize) -> Option<String> {
        self.events.iter().find_map(|e| match e {
            Event::Recorded { unit: u, timestamp } if *u == unit => Some(timestamp.clone()),
            _ => None,
        })
    }
}

/// A run's lock: `flock` on `runs/<id>/lock`, released when the process exits (or crashes).
struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    fn take(dir: &Path) -> Result<RunLock> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        RunLock::take_named(dir, "lock", &name)
    }

    fn take_named(dir: &Path, file: &str, what: &str) -> Result<RunLock> {
        use std::os::fd::AsRawFd;
        let path = dir.join(file);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::invalid(format!("{}: {e}", path.display()), None))?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            return Err(Error::invalid(
                format!("{what} is being run by another srbackup process"),
                Some("wait for it; a second process would send every job twice"),
            ));
        }
        Ok(RunLock { _file: f })
    }
}

/// What a run ended as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub run: String,
    /// `finished`, `cancelled` or `failed`.
    pub outcome: String,
    pub message: String,
    /// Backup: the logical snapshots recorded (label, timestamp).
    pub snapshots: Vec<(String, String)>,
    pub jobs_sent: usize,
}

fn runs_dir(state: &Path) -> PathBuf {
    state.join("runs")
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The run id of a plan: its first label and its fingerprint.
pub fn run_id(plan: &NativePlan) -> String {
    let label = plan
        .units
        .first()
        .map(|u| u.label.as_str())
        .unwrap_or("plan");
    format!(
        "{label}-{}",
        &plan.fingerprint[..12.min(plan.fingerprint.len())]
    )
}

/// Creates the state directory (owner only: it names the cluster and holds the journals).
pub fn ensure_state(state: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |e: std::io::Error| Error::invalid(format!("{}: {e}", state.display()), None);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(runs_dir(state))
        .map_err(io)
}

/// Applies a plan (already checked against a re-derivation by the caller).
pub async fn apply(
    connector: &Connector,
    plan: &NativePlan,
    state: &Path,
    cancel: &Cancel,
) -> Result<Outcome> {
    ensure_state(state)?;
    // One process per plan at a time (a second would send every job twice), and never a new
    // run of a plan whose earlier run was interrupted (resume it instead).
    let plan_id = run_id(plan);
    let plan_lock = RunLock::take_named(&runs_dir(state), &format!("{plan_id}.lock"), &plan_id)?;
    // Re-planned under the lock: two applies of one plan cannot both pass the check.
    check(connector, state, plan).await?;
    for other in interrupted(state)? {
        if other.starts_with(&format!("{plan_id}-")) {
            return Err(Error::invalid(
                format!("this plan's run {other} was interrupted"),
                Some("`srbackup resume` finishes it"),
            ));
        }
    }
    let id = format!(
        "{plan_id}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%3f")
    );
    let dir = runs_dir(state).join(&id);
    std::fs::create_dir(&dir)
        .map_err(|e| Error::invalid(format!("{}: {e}", dir.display()), None))?;
    let lock = RunLock::take(&dir)?;
    let text = plan.to_json();
    let plan_path = dir.join("plan.json");
    std::fs::write(&plan_path, &text)
        .and_then(|_| std::fs::File::open(&plan_path).and_then(|f| f.sync_all()))
        .map_err(|e| Error::invalid(format!("{}: {e}", plan_path.display()), None))?;
    let mut journal = Journal::open(&dir.join("journal.jsonl"))?;
    journal.append(Event::Start {
        plan_sha256: sha(&text),
        cluster: plan.cluster.clone(),
    })?;
    let out = run(connector, plan, &id, journal, state, cancel).await;
    drop(lock);
    drop(plan_lock);
    out
}

/// Runs that were interrupted (no `done` in their journal), oldest first.
pub fn interrupted(state: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let dir = runs_dir(state);
    let read = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::invalid(format!("{}: {e}", dir.display()), None)),
    };
    let mut found = Vec::new();
    for d in read.flatten() {
        let path = d.path();
        if !path.is_dir() {
            continue;
        }
        let j = path.join("journal.jsonl");
        if j.exists() && Journal::open(&j)?.done().is_none() {
            let when = d.metadata().and_then(|m| m.modified()).ok();
            found.push((when, d.file_name().to_string_lossy().into_owned()));
        }
    }
    found.sort();
    out.extend(found.into_iter().map(|(_, n)| n));
    Ok(out)
}

/// Resumes an interrupted run.
pub async fn resume(
    connector: &Connector,
    state: &Path,
    id: &str,
    cancel: &Cancel,
) -> Result<Outcome> {
    if id.contains('/') || id.starts_with('.') {
        return Err(Error::invalid(format!("`{id}` is not a run id"), None));
    }
    let dir = runs_dir(state).join(id);
    let lock = RunLock::take(&dir)?;
    let journal = Journal::open(&dir.join("journal.jsonl"))?;
    if let Some(o) = journal.done() {
        return Err(Error::invalid(
            format!("run {id} already ended ({o})"),
            None,
        ));
    }
    let plan_path = dir.join("plan.json");
    let text = std::fs::read_to_string(&plan_path)
        .map_err(|e| Error::invalid(format!("{}: {e}", plan_path.display()), None))?;
    let expected = journal.events.iter().find_map(|e| match e {
        Event::Start { plan_sha256, .. } => Some(plan_sha256.clone()),
        _ => None,
    });
    if expected.as_deref() != Some(sha(&text).as_str()) {
        return Err(Error::invalid(
            format!(
                "{} is not the plan run {id} started with (its SHA-256 differs from the journal's)",
                plan_path.display()
            ),
            Some(
                "a run resumes exactly the plan that was reviewed; restore the file or plan again",
            ),
        ));
    }
    let plan = NativePlan::from_json(&text)
        .map_err(|e| Error::invalid(format!("{}: {e}", plan_path.display()), None))?;
    if plan.cluster != connector.url.to_string() {
        return Err(Error::invalid(
            format!("run {id} drives {}, not {}", plan.cluster, connector.url),
            Some("give --cluster the address the plan was made for"),
        ));
    }
    let out = run(connector, &plan, id, journal, state, cancel).await;
    drop(lock);
    out
}

enum TaskEnd {
    Finished {
        label: Option<String>,
        timestamp: Option<String>,
    },
    Cancelled(String),
    Failed(String),
}

struct Shared<'a> {
    plan: &'a NativePlan,
    connector: &'a Connector,
    journal: tokio::sync::Mutex<Journal>,
    cancel: &'a Cancel,
    sent: std::sync::atomic::AtomicUsize,
}

impl Shared<'_> {
    async fn log(&self, e: Event) -> Result<()> {
        self.journal.lock().await.append(e)
    }
}

async fn run(
    connector: &Connector,
    plan: &NativePlan,
    id: &str,
    journal: Journal,
    state: &Path,
    cancel: &Cancel,
) -> Result<Outcome> {
    let shared = Shared {
        plan,
        connector,
        journal: tokio::sync::Mutex::new(journal),
        cancel,
        sent: std::sync::atomic::AtomicUsize::new(0),
    };
    let total = plan.tasks.len();
    let mut done: BTreeSet<String> = plan
        .tasks
        .iter()
        .filter(|t| futures_done(&shared, &t.id))
        .map(|t| t.id.clone())
        .collect();
    if !done.is_empty() {
        eprintln!(
            "resuming run {id}: {}/{total} tasks already finished",
            done.len()
        );
    }
    if cancel.is_cancelled() {
        cancel_left_running(connector, plan, &shared).await?;
    }
    let mut running = BTreeSet::new();
    let mut pool = futures::stream::FuturesUnordered::new();
    let mut failure: Option<(String, String)> = None;
    loop {
        if failure.is_none() && !cancel.is_cancelled() {
            for t in &plan.tasks {
                if done.contains(&t.id) || running.contains(&t.id) {
                    continue;
                }
                if running.len() >= plan.settings.max_databases as usize {
                    break;
                }
                if t.after.iter().all(|a| done.contains(a)) {
                    running.insert(t.id.clone());
                    let shared = &shared;
                    pool.push(async move {
                        let end = run_task(connector, shared, t).await;
                        (t, end)
                    });
                }
            }
        }
        use futures::StreamExt;
        let Some((t, end)) = pool.next().await else {
            break;
        };
        running.remove(&t.id);
        match end {
            Ok(TaskEnd::Finished { label, timestamp }) => {
                shared
                    .log(Event::Finished {
                        task: t.id.clone(),
                        label: label.clone(),
                        timestamp,
                    })
                    .await?;
                done.insert(t.id.clone());
                eprintln!(
                    "[{}/{total}] {} finished{}",
                    done.len(),
                    t.id,
                    label.map(|l| format!(" ({l})")).unwrap_or_default()
                );
                after_task(connector, plan, &shared, t, &done, state).await?;
            }
            Ok(TaskEnd::Cancelled(m)) => {
                failure.get_or_insert(("cancelled".into(), m));
                cancel.cancel();
            }
            Ok(TaskEnd::Failed(m)) => {
                failure.get_or_insert(("failed".into(), format!("{}: {m}", t.id)));
                cancel.cancel();
            }
            Err(e) => {
                failure.get_or_insert(("failed".into(), format!("{}: {e}", t.id)));
                cancel.cancel();
            }
        }
    }
    let (outcome, message) = match failure {
        None if done.len() == total => {
            for (n, u) in plan.units.iter().enumerate() {
                if u.kind == JobKind::Backup {
                    record_unit(plan, n, &shared, state).await?;
                }
            }
            ("finished".to_string(), format!("{total} tasks finished"))
        }
        None => (
            "cancelled".to_string(),
            "cancelled before every task ran".to_string(),
        ),
        Some(f) => f,
    };
    if outcome != "finished" && !cleanup(connector, plan, &shared).await {
        // Not ended: `resume --cancel` finishes the cleanup (the journal says what happened).
        return Ok(Outcome {
            run: id.to_string(),
            outcome: outcome.clone(),
            message: format!(
                "{message}; the cleanup is not finished: run `srbackup resume --cancel --run {id}`"
            ),
            snapshots: Vec::new(),
            jobs_sent: shared.sent.load(Ordering::SeqCst),
        });
    }
    // Every backup unit recorded, also by a run that failed later on another unit.
    let snapshots = {
        let j = shared.journal.lock().await;
        j.events
            .iter()
            .filter_map(|e| match e {
                Event::Recorded { unit, timestamp } => {
                    Some((plan.units[*unit].label.clone(), timestamp.clone()))
                }
                _ => None,
            })
            .collect()
    };
    shared
        .log(Event::Done {
            outcome: outcome.clone(),
            message: message.clone(),
        })
        .await?;
    Ok(Outcome {
        run: id.to_string(),
        outcome,
        message,
        snapshots,
        jobs_sent: shared.sent.load(Ordering::SeqCst),
    })
}

/// `resume --cancel`: the native jobs an interrupted run left running are cancelled on the FE.
async fn cancel_left_running(
    connector: &Connector,
    plan: &NativePlan,
    shared: &Shared<'_>,
) -> Result<()> {
    type Left = (String, JobKind, String, String, Option<String>);
    let pending: Vec<Left> = {
        let j = shared.journal.lock().await;
        plan.tasks
            .iter()
            .filter_map(|t| {
                let kind = match t.kind {
                    TaskKind::Backup => JobKind::Backup,
                    TaskKind::Restore => JobKind::Restore,
                    _ => return None,
                };
                match j.pending(&t.id) {
                    Some(Event::Submitted {
                        label: Some(label),
                        previous_job,
                        ..
                    }) => Some((
                        t.id.clone(),
                        kind,
                        t.database.clone().unwrap_or_default(),
                        label,
                        previous_job,
                    )),
                    _ => None,
                }
            })
            .collect()
    };
    if pending.is_empty() {
        return Ok(());
    }
    let mut fe = connector.connect().await?;
    for (task, kind, db, label, previous) in pending {
        let Some(s) = jobs::show(&mut fe, kind, &db).await? else {
            continue;
        };
        if s.label != label || Some(&s.job_id) == previous.as_ref() {
            continue;
        }
        if !s.done() {
            eprintln!("cancelling {} {label} on {db}", kind.keyword());
            shared.sent.fetch_add(1, Ordering::SeqCst);
            fe.execute(&jobs::cancel_statement(kind, &db)).await?;
        } else if s.finished() && kind == JobKind::Restore {
            // It finished while no srbackup watched: what it restored is in place (the
            // cleanup then knows whether the restore is past undoing).
            shared
                .log(Event::Finished {
                    task,
                    label: Some(label),
                    timestamp: None,
                })
                .await?;
        }
    }
    fe.close().await;
    Ok(())
}

/// SHOW BACKUP/RESTORE, reconnecting when the connection broke (an FE restart, a network
/// blip): a native job keeps running on the FE whatever happens to srbackup's connection.
async fn show(
    fe: &mut Fe,
    connector: &Connector,
    kind: JobKind,
    db: &str,
) -> Result<Option<JobStatus>> {
    let mut tries = 0;
    loop {
        match jobs::show(fe, kind, db).await {
            Err(FeError::Io { message, .. }) if tries < 30 => {
                if tries == 0 {
                    eprintln!(
                        "the connection to the FE broke ({message}); reconnecting for up to a minute (the job runs on)"
                    );
                }
                tries += 1;
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Ok(new) = connector.connect().await {
                    *fe = new;
                }
            }
            other => return Ok(other?),
        }
    }
}

/// Records a finished backup unit in the index (once: the journal says when it was).
async fn record_unit(
    plan: &NativePlan,
    n: usize,
    shared: &Shared<'_>,
    state: &Path,
) -> Result<String> {
    let recorded = shared.journal.lock().await.recorded(n);
    if let Some(ts) = recorded {
        return Ok(ts);
    }
    let entry = {
        let j = shared.journal.lock().await;
        index_entry(plan, n, &j)?
    };
    let index = Index::new(state);
    index
        .record(&entry)
        .map_err(|e| Error::invalid(format!("srbackup's index: {e}"), None))?;
    shared
        .log(Event::Recorded {
            unit: n,
            timestamp: entry.timestamp.clone(),
        })
        .await?;
    // Tables sent whole again: a restore's earlier rewrite no longer matters.
    let u = &plan.units[n];
    if let Some(db) = &u.database {
        for (name, o) in &entry.objects {
            if o.kind == ItemKind::Table && !u.reused.iter().any(|r| &r.object == name) {
                index.clear_rewritten(&entry.cluster, db, name);
            }
        }
    }
    eprintln!("snapshot {} recorded at {}", u.label, entry.timestamp);
    Ok(entry.timestamp)
}

/// After a task finished: a backup unit whose tasks are all done is recorded at once (a later
/// unit's failure must not lose it); a restore that overwrote partitions of a live table in
/// place marks the table, so the next incremental backup sends it whole.
async fn after_task(
    connector: &Connector,
    plan: &NativePlan,
    shared: &Shared<'_>,
    t: &Task,
    done: &BTreeSet<String>,
    state: &Path,
) -> Result<()> {
    let u = &plan.units[t.unit];
    if u.kind == JobKind::Backup
        && plan
            .tasks
            .iter()
            .filter(|x| x.unit == t.unit)
            .all(|x| done.contains(&x.id))
    {
        record_unit(plan, t.unit, shared, state).await?;
    }
    if t.kind == TaskKind::Restore
        && let Some(db) = &t.database
    {
        let temps: Vec<(&str, &Vec<String>)> = t
            .items
            .iter()
            .filter_map(|i| i.alias.as_deref().map(|a| (a, &i.partitions)))
            .filter(|(a, _)| a.starts_with(crate::plan::native::TEMP_PREFIX))
            .collect();
        if !temps.is_empty() {
            let mut fe = connector.connect().await?;
            for (temp, named) in temps {
                let now = fec::partitions(&mut fe, db, Some(temp)).await?;
                let partitions = now
                    .get(temp)
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| named.is_empty() || named.contains(&p.name))
                            .map(|p| (p.name.clone(), p.id, p.version))
                            .collect()
                    })
                    .unwrap_or_default();
                shared
                    .log(Event::Landed {
                        table: temp.to_string(),
                        partitions,
                    })
                    .await?;
            }
            fe.close().await;
        }
        let index = Index::new(state);
        for item in &t.items {
            let target = item.alias.as_deref().unwrap_or(&item.name);
            if item.kind == ItemKind::Table
                && !item.partitions.is_empty()
                && !target.starts_with(crate::plan::native::TEMP_PREFIX)
            {
                index
                    .mark_rewritten(&cluster_address(&plan.cluster), db, target)
                    .map_err(|e| Error::invalid(format!("srbackup's index: {e}"), None))?;
            }
        }
    }
    Ok(())
}

fn futures_done(shared: &Shared<'_>, task: &str) -> bool {
    shared
        .journal
        .try_lock()
        .map(|j| j.finished(task).is_some())
        .unwrap_or(false)
}

/// After a failure or cancel. While the restore is incomplete (a job, swap or rename not
/// finished), every swap or rename that happened is undone — each live table is as it was —
/// and every temporary table (then holding only restored data) is dropped. Once only the drops
/// of replaced copies were left, the restore is complete: those drops are tried again.
/// Returns whether everything was cleaned up (else the run stays open for `resume --cancel`).
async fn cleanup(connector: &Connector, plan: &NativePlan, shared: &Shared<'_>) -> bool {
    let (complete, moves): (bool, Vec<(&Task, Option<i64>)>) = {
        let j = shared.journal.lock().await;
        // Complete: every job, swap and rename done; or a views/MVs/functions job finished
        // (those cannot be undone: undoing the tables then would leave a mix).
        let complete = plan
            .tasks
            .iter()
            .filter(|t| t.kind != TaskKind::DropTemp)
            .all(|t| j.finished(&t.id).is_some())
            || plan.tasks.iter().any(|t| {
                t.kind == TaskKind::Restore
                    && t.items.iter().any(|i| i.kind != ItemKind::Table)
                    && j.finished(&t.id).is_some()
            });
        let moves = plan
            .tasks
            .iter()
            .filter(|t| matches!(t.kind, TaskKind::Swap | TaskKind::Rename))
            .map(|t| {
                let temp_table = j.events.iter().rev().find_map(|e| match e {
                    Event::Submitted {
                        task, temp_table, ..
                    } if task == &t.id => *temp_table,
                    _ => None,
                });
                (t, temp_table)
            })
            .collect();
        (complete, moves)
    };
    if moves.is_empty() {
        return true;
    }
    let Ok(mut fe) = connector.connect().await else {
        eprintln!("cleanup: cannot reach the FE; `srbackup resume --cancel` cleans up later");
        return false;
    };
    let mut clean = true;
    for (t, temp_table) in moves {
        let (Some(db), Some(table), Some(temp)) = (&t.database, &t.table, &t.temp) else {
            continue;
        };
        let moved = match moved_in(&mut fe, t, temp_table).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("cleanup: {e}; {db}.{temp} is kept");
                clean = false;
                continue;
            }
        };
        if moved && !complete {
            let undo = match t.kind {
                TaskKind::Swap => format!(
                    "ALTER TABLE {}.{} SWAP WITH {}",
                    quote(db),
                    quote(table),
                    quote(temp)
                ),
                _ => format!(
                    "ALTER TABLE {}.{} RENAME {}",
                    quote(db),
                    quote(table),
                    quote(temp)
                ),
            };
            shared.sent.fetch_add(1, Ordering::SeqCst);
            match fe.execute(&undo).await {
                Ok(()) => eprintln!("cleanup: {db}.{table} is back as it was"),
                Err(e) => {
                    // The temporary table may hold the old live data now: never dropped here.
                    eprintln!(
                        "cleanup: could not undo the swap of {db}.{table} ({e}); {db}.{temp} is kept"
                    );
                    clean = false;
                    continue;
                }
            }
        }
        let sql = format!("DROP TABLE IF EXISTS {}.{}", quote(db), quote(temp));
        shared.sent.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = fe.execute(&sql).await {
            eprintln!("cleanup: {e}");
            clean = false;
        }
    }
    fe.close().await;
    clean
}

fn backoff(plan: &NativePlan, attempt: u32) -> Duration {
    let ms = plan
        .settings
        .retry_backoff_ms
        .saturating_mul(1u64 << attempt.min(10));
    Duration::from_millis(ms.min(3_600_000))
}

/// A label of a retried backup: StarRocks keeps a failed one taken.
fn attempt_label(base: &str, attempt: u32) -> String {
    if attempt == 0 {
        base.to_string()
    } else {
        format!("{base}__r{attempt}")
    }
}

/// Whether a refusal means "another job is in the way" (wait and try again).
fn busy(e: &Error) -> bool {
    matches!(e, Error::Fe(FeError::Refused { message, .. })
        if message.contains("at same time") || message.contains("being submitted"))
}

async fn run_task(connector: &Connector, shared: &Shared<'_>, t: &Task) -> Result<TaskEnd> {
    let mut fe = connector.connect().await?;
    let end = match t.kind {
        TaskKind::Backup | TaskKind::Restore => native_job(&mut fe, shared, t).await,
        TaskKind::BackupCatalogs | TaskKind::RestoreCatalogs => {
            catalog_job(&mut fe, shared, t).await
        }
        TaskKind::Swap | TaskKind::Rename | TaskKind::DropTemp => ddl(&mut fe, shared, t).await,
    };
    fe.close().await;
    end
}

async fn native_job(fe: &mut Fe, shared: &Shared<'_>, t: &Task) -> Result<TaskEnd> {
    let plan = shared.plan;
    let kind = if t.kind == TaskKind::Backup {
        JobKind::Backup
    } else {
        JobKind::Restore
    };
    let db = t.database.clone().unwrap_or_default();
    let base = t.label.clone().unwrap_or_default();
    let repo = &plan.units[t.unit].repository;
    let timeout = Duration::from_secs(plan.units[t.unit].timeout_seconds);
    // (Each guard is dropped at the end of its statement: the journal is locked again below.)
    let mut attempt = shared.journal.lock().await.attempts(&t.id);
    let pending = shared.journal.lock().await.pending(&t.id);
    // Reattach to a job a crashed run sent.
    if let Some(Event::Submitted {
        label: Some(label),
        attempt: a,
        previous_job,
        ..
    }) = pending
    {
        let now = show(fe, shared.connector, kind, &db).await?;
        let ours = now
            .as_ref()
            .filter(|s| s.label == label && Some(&s.job_id) != previous_job.as_ref());
        let end = match ours {
            Some(_) => Some(
                watch(
                    fe,
                    shared,
                    t,
                    kind,
                    &db,
                    &label,
                    previous_job.clone(),
                    timeout,
                )
                .await?,
            ),
            None => {
                // Not (or no longer) the FE's last job: the repository says whether it finished.
                if kind == JobKind::Backup {
                    let ts = fec::snapshot_timestamps(fe, repo, &label).await?;
                    ts.last().map(|ts| TaskEnd::Finished {
                        label: Some(label.clone()),
                        timestamp: Some(ts.clone()),
                    })
                } else {
                    None
                }
            }
        };
        match end {
            Some(TaskEnd::Finished { label, timestamp }) => {
                return Ok(TaskEnd::Finished { label, timestamp });
            }
            Some(TaskEnd::Cancelled(m)) => return Ok(TaskEnd::Cancelled(m)),
            Some(TaskEnd::Failed(m)) => {
                shared
                    .log(Event::Failed {
                        task: t.id.clone(),
                        label: Some(label.clone()),
                        attempt: a,
                        message: m,
                    })
                    .await?;
            }
            None => {}
        }
        attempt = a + 1;
    }
    loop {
        if shared.cancel.is_cancelled() {
            return Ok(TaskEnd::Cancelled("cancelled".into()));
        }
        if attempt > plan.settings.retries {
            return Ok(TaskEnd::Failed(format!(
                "{} failed {} times; see the journal for each attempt's message",
                kind.keyword(),
                attempt
            )));
        }
        if kind == JobKind::Restore
            && let Some(problem) = temp_taken(fe, plan, t, &db).await?
        {
            return Ok(TaskEnd::Failed(problem));
        }
        let label = if kind == JobKind::Backup {
            attempt_label(&base, attempt)
        } else {
            base.clone()
        };
        let statement = if kind == JobKind::Backup {
            t.statement.replacen(
                &format!("SNAPSHOT {}", quote(&base)),
                &format!("SNAPSHOT {}", quote(&label)),
                1,
            )
        } else {
            t.statement.clone()
        };
        let previous = show(fe, shared.connector, kind, &db)
            .await?
            .map(|s| s.job_id);
        shared
            .log(Event::Submitted {
                task: t.id.clone(),
                label: Some(label.clone()),
                attempt,
                previous_job: previous.clone(),
                temp_table: None,
            })
            .await?;
        shared.sent.fetch_add(1, Ordering::SeqCst);
        let end = match fe.execute(&statement).await.map_err(Error::from) {
            Ok(()) => watch(fe, shared, t, kind, &db, &label, previous, timeout).await?,
            // The connection broke: the statement may have reached the FE. Look for the job
            // (on a new connection) before anything is sent again.
            Err(Error::Fe(FeError::Io { .. })) => {
                if let Ok(new) = shared.connector.connect().await {
                    *fe = new;
                }
                watch(fe, shared, t, kind, &db, &label, previous, timeout).await?
            }
            Err(e) if busy(&e) => TaskEnd::Failed(e.to_string()),
            Err(e) => return Ok(TaskEnd::Failed(e.to_string())),
        };
        match end {
            TaskEnd::Failed(m) => {
                eprintln!("{}: attempt {} failed: {m}", t.id, attempt + 1);
                shared
                    .log(Event::Failed {
                        task: t.id.clone(),
                        label: Some(label),
                        attempt,
                        message: m,
                    })
                    .await?;
                let wait = backoff(plan, attempt);
                attempt += 1;
                if attempt <= plan.settings.retries {
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !shared.cancel.is_cancelled() {
                        tokio::time::sleep(Duration::from_millis(50).min(wait)).await;
                    }
                }
            }
            other => return Ok(other),
        }
    }
}

/// Polls the FE until the job with `label` (newer than `previous`) ends; cancels it when the
/// run is cancelled.
#[allow(clippy::too_many_arguments)]
async fn watch(
    fe: &mut Fe,
    shared: &Shared<'_>,
    t: &Task,
    kind: JobKind,
    db: &str,
    label: &str,
    previous: Option<String>,
    timeout: Duration,
) -> Result<TaskEnd> {
    let plan = shared.plan;
    let poll = Duration::from_millis(plan.settings.poll_ms);
    let started = Instant::now();
    let mut last_state = String::new();
    let mut cancel_sent = false;
    // The job id once seen (a later job of the same label is not ours).
    let mut ours: Option<String> = None;
    loop {
        let status: Option<JobStatus> = show(fe, shared.connector, kind, db).await?;
        let mine = status.filter(|s| {
            s.label == label
                && Some(&s.job_id) != previous.as_ref()
                && ours.as_ref().is_none_or(|o| o == &s.job_id)
        });
        match &mine {
            Some(s) => {
                ours.get_or_insert_with(|| s.job_id.clone());
                if s.state != last_state {
                    eprintln!(
                        "{}: {} {} {}{}",
                        t.id,
                        kind.keyword(),
                        label,
                        s.state,
                        s.progress
                            .as_ref()
                            .map(|p| format!(" ({p})"))
                            .unwrap_or_default()
                    );
                    last_state = s.state.clone();
                }
                if s.finished() {
                    let timestamp = if kind == JobKind::Backup {
                        let repo = &plan.units[t.unit].repository;
                        let ts = fec::snapshot_timestamps(fe, repo, label).await?;
                        match ts.last() {
                            Some(ts) => Some(ts.clone()),
                            None => {
                                return Ok(TaskEnd::Failed(format!(
                                    "BACKUP {label} says FINISHED but SHOW SNAPSHOT has no finished snapshot of it"
                                )));
                            }
                        }
                    } else {
                        None
                    };
                    return Ok(TaskEnd::Finished {
                        label: Some(label.to_string()),
                        timestamp,
                    });
                }
                if s.cancelled() {
                    if cancel_sent || s.cancelled_by_user() {
                        return Ok(TaskEnd::Cancelled(format!(
                            "{} {label} was cancelled: {}",
                            kind.keyword(),
                            s.status
                        )));
                    }
                    return Ok(TaskEnd::Failed(format!(
                        "{} {label} ended CANCELLED: {}{}",
                        kind.keyword(),
                        s.status,
                        s.task_errors
                            .as_ref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    )));
                }
            }
            None if ours.is_some() => {
                // Our job is no longer the last one: someone started another.
                return unseen(fe, plan, t, kind, db, label, "is no longer shown by").await;
            }
            None => {}
        }
        if shared.cancel.is_cancelled() && !cancel_sent {
            let _ = fe.execute(&jobs::cancel_statement(kind, db)).await;
            cancel_sent = true;
        }
        if started.elapsed() > timeout + Duration::from_secs(60) {
            if !cancel_sent {
                let _ = fe.execute(&jobs::cancel_statement(kind, db)).await;
            }
            return Ok(TaskEnd::Failed(format!(
                "{} {label} did not end within its timeout",
                kind.keyword()
            )));
        }
        if cancel_sent && ours.is_none() && started.elapsed() > poll * 20 {
            return Ok(TaskEnd::Cancelled("cancelled".into()));
        }
        // A job that never shows: it was not accepted, or it ended and another job of the
        // database replaced it in SHOW before the first poll (a backup: the repository says).
        if ours.is_none() && started.elapsed() > (poll * 20).max(Duration::from_secs(60)) {
            return unseen(fe, plan, t, kind, db, label, "never showed in").await;
        }
        tokio::time::sleep(poll).await;
    }
}

/// A job SHOW BACKUP/RESTORE does not show (any more): for a backup the repository is the
/// source of truth (a finished snapshot of the label, which the plan made sure no earlier run
/// left); otherwise the attempt failed.
async fn unseen(
    fe: &mut Fe,
    plan: &NativePlan,
    t: &Task,
    kind: JobKind,
    db: &str,
    label: &str,
    how: &str,
) -> Result<TaskEnd> {
    if kind == JobKind::Backup {
        let repo = &plan.units[t.unit].repository;
        if let Some(ts) = fec::snapshot_timestamps(fe, repo, label).await?.last() {
            return Ok(TaskEnd::Finished {
                label: Some(label.to_string()),
                timestamp: Some(ts.clone()),
            });
        }
    }
    Ok(TaskEnd::Failed(format!(
        "{} {label} {how} SHOW {} FROM {db} and did not finish",
        kind.keyword(),
        kind.keyword()
    )))
}

/// External catalogs: StarRocks shows their jobs under no database, so the repository (backup)
/// or SHOW CATALOGS (restore) says when they are done.
async fn catalog_job(fe: &mut Fe, shared: &Shared<'_>, t: &Task) -> Result<TaskEnd> {
    let plan = shared.plan;
    let unit = &plan.units[t.unit];
    let label = t.label.clone().unwrap_or_default();
    let already = shared.journal.lock().await.pending(&t.id).is_some();
    if t.kind == TaskKind::BackupCatalogs
        && let Some(ts) = fec::snapshot_timestamps(fe, &unit.repository, &label)
            .await?
            .last()
        && already
    {
        return Ok(TaskEnd::Finished {
            label: Some(label),
            timestamp: Some(ts.clone()),
        });
    }
    shared
        .log(Event::Submitted {
            task: t.id.clone(),
            label: Some(label.clone()),
            attempt: 0,
            previous_job: None,
            temp_table: None,
        })
        .await?;
    shared.sent.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = fe.execute(&t.statement).await {
        return Ok(TaskEnd::Failed(e.to_string()));
    }
    let started = Instant::now();
    let poll = Duration::from_millis(plan.settings.poll_ms);
    loop {
        match t.kind {
            TaskKind::BackupCatalogs => {
                if let Some(ts) = fec::snapshot_timestamps(fe, &unit.repository, &label)
                    .await?
                    .last()
                {
                    return Ok(TaskEnd::Finished {
                        label: Some(label),
                        timestamp: Some(ts.clone()),
                    });
                }
            }
            _ => {
                let have = fec::external_catalogs(fe).await?;
                if t.catalogs.iter().all(|c| have.contains(c)) {
                    return Ok(TaskEnd::Finished {
                        label: Some(label),
                        timestamp: None,
                    });
                }
            }
        }
        if shared.cancel.is_cancelled() {
            let _ = fe
                .execute(&format!(
                    "CANCEL {} FOR EXTERNAL CATALOG",
                    if t.kind == TaskKind::BackupCatalogs {
                        "BACKUP"
                    } else {
                        "RESTORE"
                    }
                ))
                .await;
            return Ok(TaskEnd::Cancelled("cancelled".into()));
        }
        if started.elapsed() > Duration::from_secs(unit.timeout_seconds) {
            return Ok(TaskEnd::Failed(
                "the external catalog job did not end within its timeout".into(),
            ));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Whether the swap or rename of task `t` has happened: the live name carries the temporary
/// table's id (journaled before the statement was sent).
async fn moved_in(fe: &mut Fe, t: &Task, temp_table: Option<i64>) -> Result<bool> {
    let (Some(db), Some(table), Some(id)) = (&t.database, &t.table, temp_table) else {
        return Ok(false);
    };
    Ok(fec::table_ids(fe, db).await?.get(table) == Some(&id))
}

/// The first restore job into a temporary table creates it: a table of that name already
/// there is someone else's, and is never restored into (nor later swapped in).
async fn temp_taken(fe: &mut Fe, plan: &NativePlan, t: &Task, db: &str) -> Result<Option<String>> {
    let temps: Vec<&str> = t
        .items
        .iter()
        .filter_map(|i| i.alias.as_deref())
        .filter(|a| a.starts_with(crate::plan::native::TEMP_PREFIX))
        .filter(|a| {
            // This task is the first of the plan to land in it.
            plan.tasks
                .iter()
                .find(|x| {
                    x.kind == TaskKind::Restore
                        && x.database.as_deref() == Some(db)
                        && x.items.iter().any(|i| i.alias.as_deref() == Some(*a))
                })
                .is_some_and(|first| first.id == t.id)
        })
        .collect();
    if temps.is_empty() {
        return Ok(None);
    }
    let ids = fec::table_ids(fe, db).await?;
    Ok(temps.iter().find(|a| ids.contains_key(**a)).map(|a| {
        format!("{db}.{a} exists before the restore made it: not restored into, nothing went live")
    }))
}

/// What must hold before a restored copy goes live: it has exactly the partitions restored
/// (never a table someone made under its name, nor one given partitions meanwhile), and the live
/// table it replaces is as the plan saw it (a load into it during the restore would be lost).
async fn before_going_live(
    fe: &mut Fe,
    shared: &Shared<'_>,
    t: &Task,
    db: &str,
    table: &str,
    temp: &str,
) -> Result<Option<String>> {
    let plan = shared.plan;
    let landed: BTreeMap<String, (i64, i64)> = {
        let j = shared.journal.lock().await;
        let mut m = BTreeMap::new();
        for e in &j.events {
            if let Event::Landed {
                table: x,
                partitions,
            } = e
                && x == temp
            {
                for (name, id, version) in partitions {
                    m.insert(name.clone(), (*id, *version));
                }
            }
        }
        m
    };
    let expected: BTreeSet<&str> = t
        .items
        .iter()
        .flat_map(|i| i.partitions.iter().map(String::as_str))
        .collect();
    let have = fec::partitions(fe, db, Some(temp)).await?;
    let got: BTreeSet<&str> = have
        .get(temp)
        .map(|ps| ps.iter().map(|p| p.name.as_str()).collect())
        .unwrap_or_default();
    if got != expected {
        return Ok(Some(format!(
            "{db}.{temp} does not hold exactly the restored partitions (it has {:?}, the restore made {:?}); nothing went live",
            got, expected
        )));
    }
    // Each partition is as its restore job left it (journaled when the job finished): a write
    // into the copy since shows as another id or version.
    if let Some(ps) = have.get(temp) {
        for p in ps {
            if let Some(landed) = landed.get(p.name.as_str())
                && *landed != (p.id, p.version)
            {
                return Ok(Some(format!(
                    "{db}.{temp} partition {} was written after it was restored (version {} where the restore left {}); nothing went live",
                    p.name, p.version, landed.1
                )));
            }
        }
    }
    if t.kind == TaskKind::Swap {
        let seen: BTreeMap<&str, (i64, i64)> = plan.units[t.unit]
            .state
            .iter()
            .filter(|s| s.database == db && s.object == table && !s.partition.is_empty())
            .map(|s| (s.partition.as_str(), (s.id, s.version)))
            .collect();
        let live = fec::partitions(fe, db, Some(table)).await?;
        let now: BTreeMap<&str, (i64, i64)> = live
            .get(table)
            .map(|ps| {
                ps.iter()
                    .map(|p| (p.name.as_str(), (p.id, p.version)))
                    .collect()
            })
            .unwrap_or_default();
        if now != seen {
            return Ok(Some(format!(
                "{db}.{table} changed during the restore (a load, or DDL); swapping the restored copy in would lose that change"
            )));
        }
    }
    Ok(None)
}

/// Swap, rename and drop: each checks first whether a crashed run already did it.
async fn ddl(fe: &mut Fe, shared: &Shared<'_>, t: &Task) -> Result<TaskEnd> {
    let db = t.database.clone().unwrap_or_default();
    let table = t.table.clone().unwrap_or_default();
    let temp = t.temp.clone().unwrap_or_default();
    let pending = shared.journal.lock().await.pending(&t.id);
    if matches!(t.kind, TaskKind::Swap | TaskKind::Rename) {
        if let Some(Event::Submitted { temp_table, .. }) = &pending
            && moved_in(fe, t, *temp_table).await?
        {
            return Ok(TaskEnd::Finished {
                label: None,
                timestamp: None,
            });
        }
        let ids = fec::table_ids(fe, &db).await?;
        let Some(id) = ids.get(&temp).copied() else {
            return Ok(TaskEnd::Failed(format!(
                "the restored copy {db}.{temp} is gone; {db}.{table} was left as it was"
            )));
        };
        // Feature `faults` only: a pause before the checks, so a test can change the tables
        // exactly there.
        #[cfg(feature = "faults")]
        if let Some(ms) = std::env::var("SRBACKUP_PAUSE_BEFORE_GOING_LIVE_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            eprintln!("{}: pausing {ms} ms before going live", t.id);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(problem) = before_going_live(fe, shared, t, &db, &table, &temp).await? {
            return Ok(TaskEnd::Failed(problem));
        }
        shared
            .log(Event::Submitted {
                task: t.id.clone(),
                label: None,
                attempt: 0,
                previous_job: None,
                temp_table: Some(id),
            })
            .await?;
    }
    if shared.cancel.is_cancelled() {
        return Ok(TaskEnd::Cancelled("cancelled".into()));
    }
    shared.sent.fetch_add(1, Ordering::SeqCst);
    match fe.execute(&t.statement).await {
        Ok(()) => Ok(TaskEnd::Finished {
            label: None,
            timestamp: None,
        }),
        Err(e) => Ok(TaskEnd::Failed(e.to_string())),
    }
}

/// `host:port` of a plan's `starrocks://user@host:port`.
pub fn cluster_address(cluster: &str) -> String {
    cluster.rsplit('@').next().unwrap_or(cluster).to_string()
}

/// The logical snapshot's timestamp: `SRBACKUP_SNAPSHOT_TIME` when set (reproducible examples,
/// the spec's RESTOREs), else now in UTC, in StarRocks' `yyyy-MM-dd-HH-mm-ss-SSS`.
fn logical_timestamp() -> String {
    match std::env::var("SRBACKUP_SNAPSHOT_TIME") {
        Ok(t) if !t.is_empty() => t,
        _ => chrono::Utc::now()
            .format("%Y-%m-%d-%H-%M-%S-%3f")
            .to_string(),
    }
}

/// The index entry of a finished backup unit: every partition and object pointed at the native
/// snapshot (label as finished, with its StarRocks timestamp) that holds it.
fn index_entry(plan: &NativePlan, n: usize, journal: &Journal) -> Result<Entry> {
    let u = &plan.units[n];
    let mut objects: BTreeMap<String, IndexObject> = BTreeMap::new();
    let mut catalogs = BTreeMap::new();
    let mut native = BTreeSet::new();
    let mut sent_and_reused: Vec<String> = Vec::new();
    let schema_of = |object: &str| -> String {
        u.state
            .iter()
            .find(|s| s.object == object && s.partition.is_empty())
            .map(|s| s.schema.clone())
            .unwrap_or_default()
    };
    let versions: BTreeMap<(&str, &str), (i64, i64, u64)> = u
        .state
        .iter()
        .map(|s| {
            (
                (s.object.as_str(), s.partition.as_str()),
                (s.id, s.version, s.bytes),
            )
        })
        .collect();
    for t in plan.tasks.iter().filter(|t| t.unit == n) {
        let (Some(label), Some(timestamp)) = journal.finished(&t.id).unwrap_or((None, None)) else {
            return Err(Error::invalid(
                format!("task {} finished without a snapshot timestamp", t.id),
                None,
            ));
        };
        let held = Held { label, timestamp };
        native.insert(held.clone());
        for c in &t.catalogs {
            catalogs.insert(c.clone(), held.clone());
        }
        for item in &t.items {
            let o = objects
                .entry(item.name.clone())
                .or_insert_with(|| IndexObject {
                    kind: item.kind,
                    partitions: BTreeMap::new(),
                    held: None,
                    partial: u.partial.contains(&item.name),
                    schema: schema_of(&item.name),
                });
            match item.kind {
                ItemKind::Table | ItemKind::MaterializedView => {
                    let names: Vec<String> = if item.partitions.is_empty() {
                        u.state
                            .iter()
                            .filter(|s| s.object == item.name && !s.partition.is_empty())
                            .map(|s| s.partition.clone())
                            .collect()
                    } else {
                        item.partitions.clone()
                    };
                    for p in names {
                        let (id, version, bytes) = versions
                            .get(&(item.name.as_str(), p.as_str()))
                            .copied()
                            .unwrap_or((0, -1, 0));
                        o.partitions.insert(
                            p,
                            IndexPartition {
                                id,
                                version,
                                bytes,
                                held: held.clone(),
                            },
                        );
                    }
                    // MVs, and tables without partitions: the snapshot holding the object.
                    if item.kind == ItemKind::MaterializedView || o.partitions.is_empty() {
                        o.held = Some(held.clone());
                    }
                }
                ItemKind::View | ItemKind::Function => o.held = Some(held.clone()),
            }
        }
    }
    for r in &u.reused {
        let h = Held {
            label: r.label.clone(),
            timestamp: r.timestamp.clone(),
        };
        native.insert(h.clone());
        objects
            .entry(r.object.clone())
            .or_insert_with(|| IndexObject {
                kind: ItemKind::Table,
                partitions: BTreeMap::new(),
                held: None,
                partial: u.partial.contains(&r.object),
                schema: schema_of(&r.object),
            })
            .partitions
            .entry(r.partition.clone())
            .and_modify(|_| sent_and_reused.push(format!("{}.{}", r.object, r.partition)))
            .or_insert(IndexPartition {
                id: r.id,
                version: r.version,
                bytes: r.bytes,
                held: h,
            });
    }
    // A partition is sent or reused, never both (else the entry would point at old data).
    if !sent_and_reused.is_empty() {
        return Err(Error::invalid(
            format!(
                "the plan both sends and reuses {}: not recorded",
                sent_and_reused.join(", ")
            ),
            None,
        ));
    }
    Ok(Entry {
        format: index::FORMAT.into(),
        version: 1,
        label: u.label.clone(),
        timestamp: logical_timestamp(),
        repository: u.repository.clone(),
        location: u.location.clone(),
        cluster: cluster_address(&plan.cluster),
        database: u.database.clone(),
        backup_type: u.backup_type.clone().unwrap_or_else(|| "full".into()),
        chain: u.chain.clone(),
        objects,
        catalogs,
        native: native.into_iter().collect(),
    })
}

/// Plans statements against the FE (the glue `srbackup plan --cluster starrocks://…` calls).
pub async fn plan_text(
    connector: &Connector,
    state: &Path,
    settings: crate::plan::native::Settings,
    name: &str,
    text: &str,
) -> Result<NativePlan> {
    // The first problem, at its place: the caller renders it against the text.
    let statements = crate::sql::parse_named(name, text).map_err(|e| {
        e.problems()
            .next()
            .cloned()
            .map(Error::at)
            .unwrap_or_else(|| Error::invalid(e.render_plain(), None))
    })?;
    let with_text: Vec<(crate::sql::Statement, String)> = statements
        .into_iter()
        .map(|s| {
            let span = s.span();
            let t = text[span.start..span.end].to_string();
            (s, t)
        })
        .collect();
    plan_on_fe(connector, state, settings, &with_text).await
}

/// One connection, one planning pass.
async fn plan_on_fe(
    connector: &Connector,
    state: &Path,
    settings: crate::plan::native::Settings,
    statements: &[(crate::sql::Statement, String)],
) -> Result<NativePlan> {
    let mut fe = connector.connect().await?;
    let index = Index::new(state);
    let plan = crate::plan::native::plan(
        crate::plan::native::Context {
            fe: &mut fe,
            index: &index,
            settings,
        },
        statements,
    )
    .await;
    fe.close().await;
    plan
}

/// Re-plans a plan file's statements with its settings and refuses it when the result differs:
/// a stale plan (the partition versions it was made from changed) or an edited one.
pub async fn check(connector: &Connector, state: &Path, plan: &NativePlan) -> Result<()> {
    if plan.cluster != connector.url.to_string() {
        return Err(Error::invalid(
            format!("the plan is for {}, not {}", plan.cluster, connector.url),
            Some("give --cluster the address the plan was made for"),
        ));
    }
    let mut statements = Vec::new();
    for u in &plan.units {
        let s = crate::sql::parse_one(&u.statement).map_err(|_| {
            Error::invalid(
                "a statement in the plan file does not parse (edited after review?)",
                None,
            )
        })?;
        statements.push((s, u.statement.clone()));
    }
    let now = plan_on_fe(connector, state, plan.settings.clone(), &statements).await?;
    match crate::plan::native::difference(plan, &now) {
        None => Ok(()),
        Some(d) => Err(Error::invalid(
            d,
            Some("plan the statement again and review the new plan"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_journal_line_is_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(
            &path,
            "{\"event\":\"finished\",\"task\":\"a\"}\n{\"event\":\"submi",
        )
        .unwrap();
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.events.len(), 1);
        j.append(Event::Finished {
            task: "b".into(),
            label: None,
            timestamp: None,
        })
        .unwrap();
        let again = Journal::open(&path).unwrap();
        assert_eq!(again.events.len(), 2);
        assert!(again.finished("b").is_some());
        // Damage in the middle is refused, never skipped.
        std::fs::write(&path, "garbage\n{\"event\":\"finished\",\"task\":\"a\"}\n").unwrap();
        assert!(Journal::open(&path).is_err());
    }
}
