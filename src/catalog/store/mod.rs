//! The SQLite store of the catalog (feature `engine`): the only code that speaks SQL to it.
//!
//! Callers never see SQLite. [`Catalog::write`] runs a change in one immediate transaction and
//! hands it a [`Tx`]; [`Catalog::read`] runs reads in one read transaction with a [`Reader`];
//! [`Catalog::view`] gives a [`Reader`] for single-statement reads. Every method of those two
//! types is a typed operation on the catalog's tables, grouped by domain:
//!
//! - `objects`: databases, tables/MVs/views, functions, external catalogs;
//! - `tablets`: partitions, tablets and rowsets (the data layout);
//! - `repositories`: registered repositories;
//! - `jobs`: BACKUP/RESTORE jobs, their journals and the one-job-per-database locks;
//! - `leases`: load leases (files being written) and pins (files a backup holds);
//! - `accounts`: users, roles and grants.

mod accounts;
mod jobs;
mod leases;
mod objects;
mod repositories;
mod schedules;
pub mod secrets;
mod tablets;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use secrets::Sealer;

pub use accounts::{AccountRow, BUILTIN_ROLES, GrantRow, Holder, LOCKED, is_builtin_role};
pub use jobs::{Claim, Held, JobRow, NewJob};
pub use objects::{DatabaseRow, ObjectRow, ObjectState};
pub use repositories::RepositoryRow;
pub use schedules::{NewSchedule, RunState, ScheduleRow, ScheduleRunRow};
pub use tablets::{PartitionRow, RowsetRow, TabletRow};

/// How long a writer waits for another process's write transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The catalog schema this build writes; older catalogs are migrated, newer ones refused.
pub const SCHEMA_VERSION: i64 = 8;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CatalogError {
    #[error("the cluster at {path} is busy: another process holds its catalog write lock")]
    #[diagnostic(
        code(srbackup::catalog::busy),
        help("wait for the other srbackup command (a load, a restore...) to finish and retry")
    )]
    Busy { path: PathBuf },
    #[error(
        "the catalog at {path} was written by a newer srbackup (schema {found}, this build knows {SCHEMA_VERSION})"
    )]
    #[diagnostic(code(srbackup::catalog::newer), help("use a newer srbackup"))]
    NewerSchema { path: PathBuf, found: i64 },
    #[error("the catalog at {path} is damaged: {reason}")]
    #[diagnostic(code(srbackup::catalog::damaged))]
    Damaged { path: PathBuf, reason: String },
    #[error("the disk holding the catalog at {path} is full")]
    #[diagnostic(
        code(srbackup::catalog::full),
        help(
            "free space on that disk (DROP TABLE and TRUNCATE give a table's space back); nothing was changed"
        )
    )]
    Full { path: PathBuf },
    #[error("the catalog at {path} holds credentials that cannot be used: {reason}")]
    #[diagnostic(
        code(srbackup::catalog::secret),
        help(
            "the key file must be the one that sealed them (secret_key_file in srbackup.conf, or secret.key in the cluster directory); otherwise drop the repository or catalog and create it again"
        )
    )]
    Secret { path: PathBuf, reason: String },
    #[error("cannot open the catalog at {path}: {source}")]
    #[diagnostic(code(srbackup::catalog::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog error at {path}: {source}")]
    #[diagnostic(code(srbackup::catalog::sqlite))]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// An open catalog file.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
    sealer: Sealer,
}

/// Reads of the catalog: inside a transaction ([`Catalog::read`], or a [`Tx`] through `Deref`),
/// or statement by statement ([`Catalog::view`]).
pub struct Reader<'c> {
    conn: &'c Connection,
    path: &'c Path,
    sealer: &'c Sealer,
}

/// One write transaction: its reads see its own writes; everything commits together or not
/// at all. Reads are [`Reader`]'s methods (`Deref`).
pub struct Tx<'c> {
    reader: Reader<'c>,
}

impl<'c> Deref for Tx<'c> {
    type Target = Reader<'c>;
    fn deref(&self) -> &Reader<'c> {
        &self.reader
    }
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS databases (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    db_id INTEGER NOT NULL REFERENCES databases(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'normal',
    definition TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    inactive_reason TEXT,
    created_at TEXT NOT NULL);
-- Staged objects (a restore in progress) do not hold their name yet.
CREATE UNIQUE INDEX IF NOT EXISTS objects_by_name ON objects(db_id, name) WHERE state != 'staged';
CREATE TABLE IF NOT EXISTS partitions (
    id INTEGER PRIMARY KEY,
    object_id INTEGER NOT NULL REFERENCES objects(id),
    name TEXT NOT NULL,
    bound TEXT NOT NULL,
    visible_version INTEGER NOT NULL,
    visible_time TEXT NOT NULL DEFAULT '',
    UNIQUE (object_id, name));
CREATE TABLE IF NOT EXISTS tablets (
    id INTEGER PRIMARY KEY,
    partition_id INTEGER NOT NULL REFERENCES partitions(id),
    bucket INTEGER NOT NULL,
    UNIQUE (partition_id, bucket));
CREATE TABLE IF NOT EXISTS rowsets (
    id INTEGER PRIMARY KEY,
    tablet_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    live INTEGER NOT NULL DEFAULT 1,
    -- NULL for the table's own rows; the sync MV's name for its rollup rows in this tablet.
    rollup TEXT);
CREATE INDEX IF NOT EXISTS rowsets_by_tablet ON rowsets(tablet_id) WHERE live = 1;
CREATE TABLE IF NOT EXISTS functions (
    id INTEGER PRIMARY KEY,
    db_id INTEGER,
    signature TEXT NOT NULL,
    definition TEXT NOT NULL,
    UNIQUE (db_id, signature));
CREATE TABLE IF NOT EXISTS external_catalogs (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, definition TEXT NOT NULL);
-- A load in progress: its files are not garbage while its process lives.
-- AUTOINCREMENT: ids are never reused, because they name the load's files.
CREATE TABLE IF NOT EXISTS loads (
    id INTEGER PRIMARY KEY AUTOINCREMENT, object_id INTEGER NOT NULL, pid INTEGER NOT NULL, started_at TEXT NOT NULL,
    pid_start INTEGER NOT NULL DEFAULT 0);
-- Pins keep rowsets (and their files) from compaction and garbage collection.
CREATE TABLE IF NOT EXISTS pins (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pinned_rowsets (
    pin_id INTEGER NOT NULL REFERENCES pins(id), rowset_id INTEGER NOT NULL,
    PRIMARY KEY (pin_id, rowset_id));
-- Repositories (v2). `properties` holds the CREATE REPOSITORY properties as written,
-- credentials included, as StarRocks' own metadata does; nothing prints them unmasked.
CREATE TABLE IF NOT EXISTS repositories (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
    read_only INTEGER NOT NULL, location TEXT NOT NULL, broker TEXT,
    properties TEXT NOT NULL, err_msg TEXT);
-- BACKUP and RESTORE jobs (v2): the plan they run, their StarRocks state and, in job_tasks,
-- the journal of finished tasks a resumed job skips.
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, label TEXT NOT NULL,
    db_name TEXT NOT NULL, state TEXT NOT NULL, plan TEXT NOT NULL,
    snapshot_timestamp TEXT, created_at TEXT NOT NULL, state_times TEXT NOT NULL DEFAULT '{}',
    unfinished_tasks INTEGER NOT NULL DEFAULT 0, progress TEXT, task_err_msg TEXT,
    status TEXT NOT NULL DEFAULT '[OK]', timeout INTEGER NOT NULL, pid INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0, finished INTEGER NOT NULL DEFAULT 0,
    pid_start INTEGER NOT NULL DEFAULT 0);
-- v7: a job's plan, apart from its row: state and progress updates rewrite the jobs row, and
-- with the plan in it every update copied the whole plan (O(files²) over a large job).
CREATE TABLE IF NOT EXISTS job_plans (job_id INTEGER PRIMARY KEY, plan TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_tasks (
    job_id INTEGER NOT NULL, task_id TEXT NOT NULL, result TEXT NOT NULL,
    PRIMARY KEY (job_id, task_id));
-- v3: the database an unfinished job holds (one job per database), until the transaction
-- that ends the job; a job whose process died keeps holding it.
CREATE TABLE IF NOT EXISTS job_holds (
    db_name TEXT PRIMARY KEY, job_id INTEGER NOT NULL, since TEXT NOT NULL);
-- v3: the names an unfinished restore will create or replace: no DDL or load touches them.
-- v6: accounts, roles and grants (catalog::store::accounts). Holders are ('user', name, host)
-- or ('role', name, ''); db and name are '' for "all".
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT NOT NULL, host TEXT NOT NULL, native TEXT, sha2 TEXT, plugin TEXT NOT NULL,
    require_ssl INTEGER NOT NULL DEFAULT 0, default_roles TEXT NOT NULL DEFAULT '[]',
    all_default INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
    PRIMARY KEY (name, host));
CREATE TABLE IF NOT EXISTS roles (
    name TEXT PRIMARY KEY, comment TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (
    holder_kind TEXT NOT NULL, holder_name TEXT NOT NULL, holder_host TEXT NOT NULL,
    privilege TEXT NOT NULL, kind TEXT NOT NULL, db TEXT NOT NULL, name TEXT NOT NULL,
    with_grant INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (holder_kind, holder_name, holder_host, privilege, kind, db, name));
CREATE TABLE IF NOT EXISTS role_grants (
    holder_kind TEXT NOT NULL, holder_name TEXT NOT NULL, holder_host TEXT NOT NULL,
    role TEXT NOT NULL, PRIMARY KEY (holder_kind, holder_name, holder_host, role));
CREATE TABLE IF NOT EXISTS job_targets (
    job_id INTEGER NOT NULL, db_name TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (db_name, name));
-- v8: schedules (CREATE SCHEDULE) and every run of one (catalog::store::schedules). A run is
-- claimed (RUNNING, no job yet) in the transaction that moves the schedule's next_run on.
CREATE TABLE IF NOT EXISTS schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    command TEXT NOT NULL, recurrence TEXT NOT NULL, retention TEXT,
    owner_user TEXT NOT NULL, owner_host TEXT NOT NULL, state TEXT NOT NULL, next_run TEXT,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schedule_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, schedule_id INTEGER NOT NULL,
    schedule_name TEXT NOT NULL, command TEXT NOT NULL, scheduled_for TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, job_id INTEGER, state TEXT NOT NULL,
    message TEXT);
-- v8: CHECKSUM TABLE's share of one rowset file read with one table schema (rowsets are
-- immutable, so a backup computes each once; the sums are additive).
CREATE TABLE IF NOT EXISTS rowset_checksums (
    sha256 TEXT NOT NULL, schema_key TEXT NOT NULL, rows INTEGER NOT NULL, sum INTEGER NOT NULL,
    PRIMARY KEY (sha256, schema_key));
"#;

/// Changes from schema 2 to 3 that `CREATE ... IF NOT EXISTS` cannot make: process start times
/// beside pids, and v2's `job_locks` (held by a job's name, "backup label") turned into
/// `job_holds` (held by the job's id), dropping locks whose job already ended.
fn migrate_v2(c: &Connection) -> rusqlite::Result<()> {
    for table in ["jobs", "loads"] {
        let has: bool = c.query_row(
            &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = 'pid_start'"),
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has {
            c.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN pid_start INTEGER NOT NULL DEFAULT 0"
            ))?;
        }
    }
    let has_locks: bool = c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name = 'job_locks'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if has_locks {
        c.execute_batch(
            "INSERT OR IGNORE INTO job_holds (db_name, job_id, since)
               SELECT l.db_name, j.id, l.since FROM job_locks l JOIN jobs j
                 ON j.db_name = l.db_name AND j.kind || ' ' || j.label = l.job AND j.finished = 0;
             DROP TABLE job_locks;",
        )?;
    }
    Ok(())
}

/// Changes from schema 4 to 5: partitions record when their visible version changed. For
/// partitions that predate it the time is unknown; the migration's time is later than any
/// change, so a tool looking for partitions changed since a backup includes them (a larger
/// incremental backup, never a missed change).
fn migrate_v4(c: &Connection) -> rusqlite::Result<()> {
    let has: bool = c.query_row(
        "SELECT count(*) FROM pragma_table_info('partitions') WHERE name = 'visible_time'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has {
        c.execute_batch("ALTER TABLE partitions ADD COLUMN visible_time TEXT NOT NULL DEFAULT ''")?;
    }
    c.execute(
        "UPDATE partitions SET visible_time = ?1 WHERE visible_time = ''",
        [now()],
    )?;
    Ok(())
}

/// Changes from schema 5 to 6: a job records who submitted it (`''`: a command on this
/// machine, which acts as root).
fn migrate_v5(c: &Connection) -> rusqlite::Result<()> {
    let has: bool = c.query_row(
        "SELECT count(*) FROM pragma_table_info('jobs') WHERE name = 'owner'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has {
        c.execute_batch("ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''")?;
    }
    Ok(())
}

/// Changes from schema 6 to 7: plans move from `jobs.plan` (left empty) to `job_plans`.
fn migrate_v6(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(
        "INSERT OR IGNORE INTO job_plans (job_id, plan) SELECT id, plan FROM jobs WHERE plan <> '';
         UPDATE jobs SET plan = '' WHERE plan <> '';",
    )
}

/// The time the catalog records, in UTC.
pub(super) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

impl Catalog {
    /// Opens (creating if needed) the catalog file of a cluster.
    pub fn open(path: &Path) -> Result<Catalog> {
        Self::open_with_timeout(path, BUSY_TIMEOUT)
    }

    /// [`Catalog::open`] with how long a writer waits for another process's write lock.
    pub fn open_with_timeout(path: &Path, busy_timeout: Duration) -> Result<Catalog> {
        let path = path.to_path_buf();
        let sql = |source| sqlite_error(&path, source);
        private_file(&path).map_err(|source| CatalogError::Io {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(busy_timeout).map_err(sql)?;
        // WAL lets readers in other processes work while one process writes.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        // Deleted rows (a dropped repository's sealed credentials, say) are overwritten, not
        // left in free pages.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(sql)?;
        let sealer = Sealer::new(path.parent().unwrap_or(Path::new(".")));
        let mut catalog = Catalog { conn, path, sealer };
        catalog.migrate()?;
        Ok(catalog)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<()> {
        let found: Option<i64> = self.view().run(|c| {
            let has_meta: bool = c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'meta'",
                [],
                |r| r.get::<_, i64>(0).map(|n| n > 0),
            )?;
            if !has_meta {
                return Ok(None);
            }
            Ok(c.query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|v| v.parse().ok()))
        })?;
        match found {
            Some(v) if v > SCHEMA_VERSION => Err(CatalogError::NewerSchema {
                path: self.path.clone(),
                found: v,
            }),
            Some(v) if v == SCHEMA_VERSION => Ok(()),
            // Every table is CREATE ... IF NOT EXISTS: an older catalog gains the new ones.
            Some(_) | None => self.write(|tx| {
                tx.run(|c| {
                    c.execute_batch(SCHEMA)?;
                    migrate_v2(c)?;
                    migrate_v4(c)?;
                    migrate_v5(c)?;
                    migrate_v6(c)?;
                    Ok(())
                })?;
                tx.seal_plaintext()?;
                tx.run(|c| {
                    c.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('cluster_id', ?1)",
                        [format!("{:032x}", rand::random::<u128>())],
                    )?;
                    c.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                        [SCHEMA_VERSION.to_string()],
                    )?;
                    c.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0')",
                        [],
                    )?;
                    Ok(())
                })
            }),
        }
    }

    /// Runs `change` in one immediate (write-locking) transaction and bumps the catalog
    /// generation. Either all of it is committed or none of it.
    pub fn write<T>(&mut self, change: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.try_write(change)
    }

    /// [`Catalog::write`] for a change that can fail with the caller's own error: an `Err` from
    /// `change` rolls the whole transaction back and comes back unchanged.
    pub fn try_write<T, E: From<CatalogError>>(
        &mut self,
        change: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(&path, source);
        let sealer = &self.sealer;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(wrap)?;
        let out = change(&Tx {
            reader: Reader {
                conn: &tx,
                path: &path,
                sealer,
            },
        })?;
        tx.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'",
            [],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(out)
    }

    /// Runs `read` in one read transaction, so that it sees a single consistent state. The
    /// closure's own error type passes through unchanged.
    pub fn read<T, E: From<CatalogError>>(
        &mut self,
        read: impl FnOnce(&Reader<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let path = self.path.clone();
        let sealer = &self.sealer;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| sqlite_error(&path, e))?;
        let out = read(&Reader {
            conn: &tx,
            path: &path,
            sealer,
        })?;
        tx.finish().map_err(|e| sqlite_error(&path, e))?;
        Ok(out)
    }

    /// Reads statement by statement, each seeing the latest committed state (use
    /// [`Catalog::read`] when several reads must agree).
    pub fn view(&self) -> Reader<'_> {
        Reader {
            conn: &self.conn,
            path: &self.path,
            sealer: &self.sealer,
        }
    }

    /// Increases with every committed change: a cheap "has anything changed" test.
    pub fn generation(&self) -> Result<i64> {
        self.view().run(|c| {
            c.query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'",
                [],
                |r| r.get(0),
            )
        })
    }
}

impl Reader<'_> {
    /// Runs SQL against the connection, turning SQLite's errors into catalog errors.
    fn run<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(self.conn).map_err(|e| sqlite_error(self.path, e))
    }

    /// The cluster's id, made when its catalog was created; snapshots record it as their source.
    pub fn cluster_id(&self) -> Result<String> {
        self.run(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'cluster_id'", [], |r| {
                r.get(0)
            })
        })
    }
}

/// A SQLite error as a catalog error: lock contention is "busy", the rest says what failed.
fn sqlite_error(path: &Path, source: rusqlite::Error) -> CatalogError {
    if let rusqlite::Error::SqliteFailure(e, _) = &source
        && matches!(
            e.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        )
    {
        return CatalogError::Busy {
            path: path.to_path_buf(),
        };
    }
    // SQLite says "disk is full" for some writes and "disk I/O error" for others (a WAL page
    // that cannot be mapped): either way, with no space left, say so and name the disk.
    if let rusqlite::Error::SqliteFailure(e, _) = &source
        && (e.code == rusqlite::ErrorCode::DiskFull
            || (e.code == rusqlite::ErrorCode::SystemIoFailure && no_space_left(path)))
    {
        return CatalogError::Full {
            path: path.to_path_buf(),
        };
    }
    CatalogError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether the filesystem holding `path` has (next to) no space left: less than SQLite needs to
/// grow its WAL index by one step.
fn no_space_left(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let dir = path.parent().unwrap_or(path);
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statvfs is a valid out-parameter, and `c` is a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::statvfs(c.as_ptr(), &mut stat) } == 0;
    const NEARLY_FULL: u64 = 256 * 1024;
    ok && (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64) < NEARLY_FULL
}

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

fn to_json<T: serde::Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(json_err)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(json_err)
}

/// `r.a, r.b, ...`: a column list with a table alias.
fn qualified(alias: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The catalog holds repository settings (and their encrypted secrets): created 0600, and an
/// older, wider file (or its WAL files) narrowed to 0600. SQLite gives the `-wal` and `-shm`
/// files it creates the mode of the database file.
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        if let Ok(meta) = std::fs::symlink_metadata(file)
            && meta.is_file()
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}
