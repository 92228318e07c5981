//! Deleting snapshots, collecting unreferenced objects, and the leases that make that safe.
//!
//! A backup decides to skip an object because it already exists; if GC deleted that object
//! between the check and the backup's manifest, the new snapshot would name a missing object.
//! So every job that relies on objects staying put (backup, restore) holds a *lease*
//! (`locks/<kind>-<id>.json`), and GC holds one too. The rule: **write your lease, then list
//! the others**. GC proceeds only if no unexpired backup/restore/gc lease but its own exists;
//! a job proceeds only if no unexpired GC lease exists. Because each side writes before it
//! looks, two that start together see each other, and at worst both back off; neither can miss
//! the other. Leases expire ([`LEASE_TTL`]) so a crashed process does not block the repository
//! forever; live holders refresh them. Expiry compares the holder's clock with the reader's:
//! clocks must agree to well within the TTL.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};

use super::format::{self, SnapshotId};
use super::retention::{Decision, Policy};
use super::{RepoError, Repository, Result};

/// A local repository keeps this much space in a reserve file, so that on a full disk GC can
/// still write its lease (after deleting the reserve) and free space.
const GC_RESERVE_BYTES: usize = 256 * 1024;
/// Where: under `locks/`, not a `.json` lease, never swept.
const GC_RESERVE: &str = "locks/.gc-reserve";

/// How long a lease lasts unless refreshed.
pub const LEASE_TTL: Duration = Duration::from_secs(15 * 60);
/// Holders refresh this often.
pub const LEASE_REFRESH: Duration = Duration::from_secs(60);
/// A holder whose lease has less than this left when it comes to refresh it has stalled (a
/// stopped process, a hung disk): it treats the lease as lost rather than renewing it, since
/// a GC may already have judged it expired.
pub const LEASE_MARGIN: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseKind {
    Backup,
    Restore,
    Gc,
}

impl LeaseKind {
    fn as_str(self) -> &'static str {
        match self {
            LeaseKind::Backup => "backup",
            LeaseKind::Restore => "restore",
            LeaseKind::Gc => "gc",
        }
    }
    /// Whether a holder of `self` must not run while `other` is held.
    fn conflicts_with(self, other: LeaseKind) -> bool {
        self == LeaseKind::Gc || other == LeaseKind::Gc
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct LeaseBody {
    kind: LeaseKind,
    holder: String,
    expires: DateTime<Utc>,
    /// The holding process, where a reader on the same machine can tell it died before its
    /// lease expired (leases written before this was recorded have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<LeaseProcess>,
}

/// Who holds a lease, as a process (see `crate::process`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LeaseProcess {
    machine: String,
    pid: u32,
    started: u64,
}

impl LeaseBody {
    /// Whether the lease still counts: unexpired, and not held by a process of this machine
    /// that has died (killed half-way: its lease would otherwise block DROP SNAPSHOT's
    /// collection for up to its whole time to live).
    fn live(&self, now: DateTime<Utc>) -> bool {
        if self.expires <= now {
            return false;
        }
        match (&self.process, crate::process::machine()) {
            (Some(p), Some(here)) if p.machine == here => crate::process::Process {
                pid: p.pid,
                started: p.started,
            }
            .is_alive(),
            _ => true,
        }
    }
}

/// A held lease. Release it when done; if the process dies it expires.
#[derive(Debug)]
pub struct Lease {
    key: ObjectPath,
    kind: LeaseKind,
    holder: String,
    /// When the last write of it said it expires.
    expires: DateTime<Utc>,
}

impl Lease {
    pub fn key(&self) -> &str {
        self.key.as_ref()
    }
}

/// What a sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub deleted_objects: u64,
    pub deleted_bytes: u64,
    pub kept_objects: u64,
    /// Set when the sweep did not run because a job holds the repository.
    pub skipped: Option<String>,
}

/// The largest `retention.json` read (a policy is a line of text).
const RETENTION_FILE_MAX: u64 = 64 * 1024;

/// How `forget` groups snapshots before it applies a policy to each group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// The database a snapshot holds (restic groups by host and paths: what was backed up).
    Database,
    /// The snapshot's label.
    Label,
}

/// One group's decisions, newest first.
#[derive(Debug)]
pub struct ForgetGroup {
    /// `database <name>`, `label <name>` or `external catalogs`.
    pub key: String,
    pub decisions: Vec<Decision<SnapshotId>>,
}

/// What `forget` decided and did.
#[derive(Debug, Default)]
pub struct ForgetReport {
    pub groups: Vec<ForgetGroup>,
    /// Snapshots left alone because they cannot be read, with why.
    pub unreadable: Vec<(SnapshotId, String)>,
    /// The snapshots deleted (empty for a dry run).
    pub forgotten: Vec<SnapshotId>,
    /// The sweep afterwards (none for a dry run).
    pub gc: Option<GcReport>,
}

impl Repository {
    /// Takes a lease of `kind`, or fails with `Busy` naming the conflicting holder.
    pub async fn acquire(&self, kind: LeaseKind, holder: &str) -> Result<Lease> {
        self.writable()?;
        let key = ObjectPath::from(format!(
            "{}/{}-{:016x}.json",
            format::LOCKS_DIR,
            kind.as_str(),
            rand::random::<u64>()
        ));
        let mut lease = Lease {
            key,
            kind,
            holder: holder.to_string(),
            expires: Utc::now(),
        };
        match self.write_lease(&mut lease, PutMode::Create).await {
            Ok(()) => {}
            // A full local disk must not keep GC, the one thing that frees space, from running:
            // the space a small reserve file holds makes room for its lease.
            Err(e) if kind == LeaseKind::Gc && e.is_storage_full() && self.drop_gc_reserve() => {
                self.write_lease(&mut lease, PutMode::Create).await?;
            }
            Err(e) => return Err(e),
        }
        // Write first, then look: see the module comment.
        match self.conflicting_lease(&lease).await {
            Ok(None) => Ok(lease),
            Ok(Some(other)) => {
                self.release(lease).await?;
                Err(RepoError::Busy {
                    repository: self.name.clone(),
                    reason: other,
                })
            }
            Err(e) => {
                let _ = self.release(lease).await;
                Err(e)
            }
        }
    }

    async fn write_lease(&self, lease: &mut Lease, mode: PutMode) -> Result<()> {
        let me = crate::process::Process::current();
        let body = LeaseBody {
            kind: lease.kind,
            holder: lease.holder.clone(),
            expires: Utc::now() + LEASE_TTL,
            process: crate::process::machine().map(|machine| LeaseProcess {
                machine,
                pid: me.pid,
                started: me.started,
            }),
        };
        let expires = body.expires;
        self.store
            .put_opts(
                &lease.key,
                serde_json::to_vec(&body).expect("serializable").into(),
                PutOptions::from(mode),
            )
            .await
            .map_err(|e| self.err(format!("writing lease {}", lease.key), e))?;
        lease.expires = expires;
        Ok(())
    }

    /// Extends the lease by another [`LEASE_TTL`] — unless it is lost: nearly expired by this
    /// host's clock (the holder stalled), gone, or rewritten by someone else. A lost lease is
    /// never written again: a GC may have judged it expired and swept objects the holder
    /// relies on, so the holder must stop ([`RepoError::LeaseLost`]).
    pub async fn refresh(&self, lease: &mut Lease) -> Result<()> {
        let lost = |reason: String| RepoError::LeaseLost {
            repository: self.name.clone(),
            lease: lease.key.to_string(),
            reason,
        };
        let left = lease.expires - Utc::now();
        if left < chrono::Duration::from_std(LEASE_MARGIN).expect("a small duration") {
            return Err(lost(format!(
                "it expires at {} and was not renewed in time",
                lease.expires.format("%Y-%m-%d %H:%M:%S UTC")
            )));
        }
        let body = match self.store.get(&lease.key).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| self.err(format!("reading lease {}", lease.key), e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(lost("it was deleted".into()));
            }
            Err(e) => return Err(self.err(format!("reading lease {}", lease.key), e)),
        };
        match serde_json::from_slice::<LeaseBody>(&body) {
            Ok(b) if b.holder == lease.holder && b.kind == lease.kind => {}
            _ => return Err(lost("someone else rewrote it".into())),
        }
        self.write_lease(lease, PutMode::Overwrite).await
    }

    pub async fn release(&self, lease: Lease) -> Result<()> {
        match self.store.delete(&lease.key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.err(format!("releasing lease {}", lease.key), e)),
        }
        if lease.kind == LeaseKind::Gc {
            // A sweep freed space: put the reserve back for the next full disk.
            self.ensure_gc_reserve();
        }
        Ok(())
    }

    /// Makes sure a local repository keeps [`GC_RESERVE_BYTES`] in a reserve file (best
    /// effort: on a disk already full it is simply not there).
    pub fn ensure_gc_reserve(&self) {
        let Some(root) = self.local_root() else {
            return;
        };
        if super::confined::check(root, GC_RESERVE).is_err() {
            return;
        }
        let path = root.join(GC_RESERVE);
        if path.exists() {
            return;
        }
        let made = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(root.join(format::LOCKS_DIR))?;
            let mut f = std::fs::File::create_new(&path)?;
            std::io::Write::write_all(&mut f, &vec![0u8; GC_RESERVE_BYTES])?;
            f.sync_all()
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Frees the reserve; whether there was one.
    fn drop_gc_reserve(&self) -> bool {
        self.local_root()
            .is_some_and(|root| super::confined::unlink(root, GC_RESERVE).is_ok())
    }

    async fn leases(&self) -> Result<Vec<object_store::ObjectMeta>> {
        self.store
            .list(Some(&ObjectPath::from(format::LOCKS_DIR)))
            .try_collect()
            .await
            .map_err(|e| self.err("listing leases", e))
    }

    /// The first unexpired lease other than `mine` that conflicts with it, described.
    async fn conflicting_lease(&self, mine: &Lease) -> Result<Option<String>> {
        let now = Utc::now();
        let metas = self.leases().await?;
        for meta in metas {
            if meta.location == mine.key || !meta.location.as_ref().ends_with(".json") {
                continue;
            }
            let body = match self.store.get(&meta.location).await {
                Ok(r) => r.bytes().await.ok(),
                // Released between the listing and the read.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.err("reading a lease", e)),
            };
            let Some(body) = body.and_then(|b| serde_json::from_slice::<LeaseBody>(&b).ok()) else {
                // A lease being written or a foreign file: treat an unreadable lease that is
                // fresh as held (safe), an old one as stale.
                if now - meta.last_modified < chrono::Duration::from_std(LEASE_TTL).unwrap() {
                    return Ok(Some(format!(
                        "an unreadable lease {} is recent",
                        meta.location
                    )));
                }
                continue;
            };
            if body.live(now) && mine.kind.conflicts_with(body.kind) {
                return Ok(Some(format!(
                    "a {} by {} holds it (lease {}, until {})",
                    body.kind.as_str(),
                    body.holder,
                    meta.location,
                    body.expires.format("%Y-%m-%d %H:%M:%S UTC")
                )));
            }
        }
        Ok(None)
    }

    /// Deletes every snapshot (all timestamps) of `label`, then collects the objects no
    /// remaining snapshot needs, if no job holds the repository. With `force`, a label that
    /// does not exist is not an error. Returns the deleted snapshots and the sweep's report.
    pub async fn drop_snapshot(
        &self,
        label: &str,
        force: bool,
        holder: &str,
    ) -> Result<(Vec<SnapshotId>, GcReport)> {
        self.writable()?;
        self.require_format().await?;
        let timestamps = self.timestamps(label).await?;
        if timestamps.is_empty() && !force {
            return Err(self.no_such_snapshot(label).await);
        }
        let mut dropped = Vec::new();
        for ts in timestamps {
            let id = SnapshotId {
                label: label.to_string(),
                timestamp: ts,
            };
            match self
                .store
                .delete(&ObjectPath::from(id.manifest_key()))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => dropped.push(id),
                Err(e) => return Err(self.err(format!("deleting {}", id.manifest_key()), e)),
            }
        }
        let report = self.sweep_unless_busy(holder).await?;
        Ok((dropped, report))
    }

    /// Collects the objects no snapshot needs, unless a job holds the repository (then the
    /// report says why nothing was swept).
    async fn sweep_unless_busy(&self, holder: &str) -> Result<GcReport> {
        match self.acquire(LeaseKind::Gc, holder).await {
            Ok(mut lease) => {
                let swept = self.sweep(&mut lease).await;
                self.release(lease).await?;
                match swept {
                    // A sweep that would not know what a snapshot needs (its manifest cannot be
                    // read) deletes nothing: reported as skipped, so that the caller's own
                    // deletions, already done, are reported as done.
                    Err(RepoError::Busy { reason, .. }) => Ok(GcReport {
                        skipped: Some(reason),
                        ..GcReport::default()
                    }),
                    other => other,
                }
            }
            Err(RepoError::Busy { reason, .. }) => Ok(GcReport {
                skipped: Some(reason),
                ..GcReport::default()
            }),
            Err(e) => Err(e),
        }
    }

    /// The repository's saved default retention policy ([`format::RETENTION_FILE`]), if any.
    pub async fn retention_default(&self) -> Result<Option<Policy>> {
        let key = ObjectPath::from(format::RETENTION_FILE);
        // A local repository's file must be a regular file: a pipe would block the read, a
        // directory would read as "none saved".
        if let Some(root) = &self.direct_local
            && let Ok(meta) = std::fs::symlink_metadata(root.join(format::RETENTION_FILE))
            && !meta.is_file()
        {
            return Err(RepoError::Unavailable {
                repository: self.name.clone(),
                reason: format!(
                    "its default retention policy ({}) cannot be read: it is not a regular file",
                    format::RETENTION_FILE
                ),
            });
        }
        // Its size first: a policy is a line of text, and a huge file is not read at all.
        match self.store.head(&key).await {
            Ok(meta) if meta.size > RETENTION_FILE_MAX => {
                return Err(RepoError::Unavailable {
                    repository: self.name.clone(),
                    reason: format!(
                        "its default retention policy ({}) cannot be read: it is {} bytes, more than a policy's {RETENTION_FILE_MAX}",
                        format::RETENTION_FILE,
                        meta.size
                    ),
                });
            }
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err(format!("reading {}", format::RETENTION_FILE), e)),
        }
        let bytes = match self.store.get(&key).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| self.err(format!("reading {}", format::RETENTION_FILE), e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err(format!("reading {}", format::RETENTION_FILE), e)),
        };
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Saved {
            retention: String,
        }
        let damaged = |why: String| RepoError::Unavailable {
            repository: self.name.clone(),
            reason: format!(
                "its default retention policy ({}) cannot be read: {why}",
                format::RETENTION_FILE
            ),
        };
        // Sealed in an encrypted repository: a policy someone with the bucket rewrote (to
        // keep-last=1, say) fails to open instead of forgetting snapshots.
        let bytes = match self.keys().await? {
            Some(keys) => super::crypto::open(&keys, &bytes)
                .map_err(|e| damaged(e.to_string()))?
                .into(),
            None => bytes,
        };
        let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        let policy: Policy = saved.retention.parse().map_err(damaged)?;
        if policy.is_empty() {
            return Err(damaged("it has no rule".into()));
        }
        Ok(Some(policy))
    }

    /// Saves `policy` as the repository's default (replacing any saved before).
    pub async fn save_retention_default(&self, policy: &Policy) -> Result<()> {
        self.writable()?;
        if policy.is_empty() {
            return Err(RepoError::NoPolicy {
                repository: self.name.clone(),
            });
        }
        let body = serde_json::to_vec_pretty(&serde_json::json!({
            "retention": policy.to_string()
        }))
        .expect("serializable");
        let body = match self.keys().await? {
            Some(keys) => super::crypto::seal(&keys, &body),
            None => body,
        };
        self.store
            .put(&ObjectPath::from(format::RETENTION_FILE), body.into())
            .await
            .map_err(|e| self.err(format!("writing {}", format::RETENTION_FILE), e))?;
        Ok(())
    }

    /// Applies a retention policy (restic's `forget`; see [`super::retention`]) to the
    /// repository's snapshots, each group on its own, and unless `dry_run` deletes the
    /// snapshots it does not keep, then collects the objects no snapshot needs (the lease
    /// rules of DROP SNAPSHOT). `label`: only that label's snapshots are considered. A
    /// snapshot whose manifest cannot be read, or whose timestamp is not one, is never
    /// forgotten: it is reported as kept, unreadable.
    pub async fn forget(
        &self,
        policy: &Policy,
        group_by: GroupBy,
        label: Option<&str>,
        database: Option<&str>,
        dry_run: bool,
        holder: &str,
    ) -> Result<ForgetReport> {
        if policy.is_empty() {
            return Err(RepoError::NoPolicy {
                repository: self.name.clone(),
            });
        }
        if !dry_run {
            self.writable()?;
        }
        self.require_format().await?;
        let mut groups: std::collections::BTreeMap<
            String,
            Vec<(SnapshotId, chrono::NaiveDateTime)>,
        > = std::collections::BTreeMap::new();
        let mut report = ForgetReport::default();
        for listing in self.list_snapshots().await? {
            if label.is_some_and(|l| l != listing.label) {
                continue;
            }
            for (timestamp, manifest) in listing.snapshots {
                let id = SnapshotId {
                    label: listing.label.clone(),
                    timestamp: timestamp.clone(),
                };
                let time = super::retention::parse_timestamp(&timestamp);
                match (manifest, time) {
                    // Another database's snapshot of the same label: not this forget's.
                    (Ok(m), _) if database.is_some_and(|db| m.database.as_deref() != Some(db)) => {}
                    (Ok(m), Some(time)) => {
                        let key = match group_by {
                            GroupBy::Database => match &m.database {
                                Some(db) => format!("database {db}"),
                                None => "external catalogs".to_string(),
                            },
                            GroupBy::Label => format!("label {}", id.label),
                        };
                        groups.entry(key).or_default().push((id, time));
                    }
                    (Err(reason), _) => report.unreadable.push((id, reason)),
                    (Ok(_), None) => report
                        .unreadable
                        .push((id, "its timestamp is not a date".to_string())),
                }
            }
        }
        for (key, snapshots) in groups {
            report.groups.push(ForgetGroup {
                key,
                decisions: super::retention::apply(policy, snapshots),
            });
        }
        if dry_run {
            return Ok(report);
        }
        for group in &report.groups {
            for d in group.decisions.iter().filter(|d| !d.keep()) {
                let key = d.snapshot.manifest_key();
                match self.store.delete(&ObjectPath::from(key.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        report.forgotten.push(d.snapshot.clone())
                    }
                    Err(e) => return Err(self.err(format!("deleting {key}"), e)),
                }
            }
        }
        // The manifests are gone by now: a sweep that cannot run (a job holds the repository,
        // a manifest cannot be read) is reported with the rest, not instead of it.
        report.gc = Some(match self.sweep_unless_busy(holder).await {
            Ok(gc) => gc,
            Err(RepoError::Busy { reason, .. }) => GcReport {
                skipped: Some(reason),
                ..GcReport::default()
            },
            Err(e) => return Err(e),
        });
        Ok(report)
    }

    /// Garbage collection on its own (after a crashed backup left objects no manifest names).
    pub async fn collect_garbage(&self, holder: &str) -> Result<GcReport> {
        self.writable()?;
        self.require_format().await?;
        let mut lease = self.acquire(LeaseKind::Gc, holder).await?;
        let swept = self.sweep(&mut lease).await;
        self.release(lease).await?;
        swept
    }

    /// Deletes objects that no manifest names, and expired leases. Runs under a GC lease.
    async fn sweep(&self, lease: &mut Lease) -> Result<GcReport> {
        // A manifest that cannot be read might still name objects: refuse to guess.
        let keys = self.keys().await?;
        let mut referenced = BTreeSet::new();
        for listing in self.list_snapshots().await? {
            for (ts, m) in listing.snapshots {
                match m {
                    // Under the names the objects are stored by (keyed, when encrypted).
                    Ok(m) => referenced.extend(m.files.iter().map(|f| match &keys {
                        Some(k) => k.object_name(&f.sha256),
                        None => f.sha256.clone(),
                    })),
                    Err(reason) => {
                        return Err(RepoError::Busy {
                            repository: self.name.clone(),
                            reason: format!(
                                "snapshot {} ({ts}) is unreadable ({reason}); garbage collection would not know which objects it needs. Drop it first",
                                listing.label
                            ),
                        });
                    }
                }
            }
        }
        let objects: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&ObjectPath::from(format::OBJECTS_DIR)))
            .try_collect()
            .await
            .map_err(|e| self.err("listing objects", e))?;
        let mut report = GcReport::default();
        let mut doomed = Vec::new();
        let stale = Utc::now() - chrono::Duration::from_std(LEASE_TTL * 4).unwrap();
        for meta in objects {
            let key = meta.location.as_ref();
            match format::parse_object_key(key) {
                Some((hash, _)) if !referenced.contains(&hash) => {
                    doomed.push(meta.location.clone());
                    report.deleted_objects += 1;
                    report.deleted_bytes += meta.size;
                }
                // A staging copy a crashed writer left behind (local repositories).
                None if format::is_staging_key(key) && meta.last_modified < stale => {
                    doomed.push(meta.location.clone());
                }
                _ => report.kept_objects += 1,
            }
        }
        // Long sweeps keep their lease alive between batches.
        for batch in doomed.chunks(1000) {
            self.refresh(lease).await?;
            let paths =
                futures::stream::iter(batch.iter().cloned().map(Ok).collect::<Vec<_>>()).boxed();
            let results: Vec<_> = self.store.delete_stream(paths).collect().await;
            for r in results {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.err("deleting unreferenced objects", e)),
                }
            }
        }
        self.remove_expired_leases(lease).await?;
        Ok(report)
    }

    async fn remove_expired_leases(&self, mine: &Lease) -> Result<()> {
        let now = Utc::now();
        let metas = self.leases().await?;
        for meta in metas {
            if meta.location == mine.key || meta.location.as_ref() == GC_RESERVE {
                continue;
            }
            let stale_by_age =
                now - meta.last_modified > chrono::Duration::from_std(LEASE_TTL * 4).unwrap();
            let expired = match self.store.get(&meta.location).await {
                Ok(r) => r
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<LeaseBody>(&b).ok())
                    .map(|b| !b.live(now))
                    .unwrap_or(stale_by_age),
                Err(_) => false,
            };
            if expired {
                let _ = self.store.delete(&meta.location).await;
            }
        }
        Ok(())
    }
}
