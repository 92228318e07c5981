//! The SQLite store of the catalog (feature `engine`).

use super::schema::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// How long a writer waits for another process's write transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The catalog schema this build writes; older catalogs are migrated, newer ones refused.
pub const SCHEMA_VERSION: i64 = 2;

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
    #[error("catalog error at {path}: {source}")]
    #[diagnostic(code(srbackup::catalog::sqlite))]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseRow {
    pub id: i64,
    pub name: String,
    pub created_at: String,
}

/// Where an object is in its life: normal, being restored into (loads refused), or staged by a
/// restore and not yet visible under its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectState {
    Normal,
    Restoring,
    Staged,
}

impl ObjectState {
    fn as_str(self) -> &'static str {
        match self {
            ObjectState::Normal => "normal",
            ObjectState::Restoring => "restoring",
            ObjectState::Staged => "staged",
        }
    }
    fn parse(s: &str) -> ObjectState {
        match s {
            "restoring" => ObjectState::Restoring,
            "staged" => ObjectState::Staged,
            _ => ObjectState::Normal,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObjectRow {
    pub id: i64,
    pub db_id: i64,
    pub name: String,
    pub state: ObjectState,
    pub def: ObjectDef,
    pub active: bool,
    pub inactive_reason: Option<String>,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PartitionRow {
    pub id: i64,
    pub object_id: i64,
    pub name: String,
    pub bound: PartitionBound,
    pub visible_version: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TabletRow {
    pub id: i64,
    pub partition_id: i64,
    pub bucket: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowsetRow {
    pub id: i64,
    pub tablet_id: i64,
    /// The partition version whose commit added this rowset.
    pub version: i64,
    /// Path relative to the cluster directory.
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
    pub sha256: String,
    pub live: bool,
    /// `None` for base rows; the synchronous MV (rollup) name for rollup rows.
    pub rollup: Option<String>,
}

pub struct Catalog {
    conn: Connection,
    path: PathBuf,
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
    id INTEGER PRIMARY KEY AUTOINCREMENT, object_id INTEGER NOT NULL, pid INTEGER NOT NULL, started_at TEXT NOT NULL);
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
    cancel_requested INTEGER NOT NULL DEFAULT 0, finished INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS job_tasks (
    job_id INTEGER NOT NULL, task_id TEXT NOT NULL, result TEXT NOT NULL,
    PRIMARY KEY (job_id, task_id));
-- One running backup or restore per database.
CREATE TABLE IF NOT EXISTS job_locks (
    db_name TEXT PRIMARY KEY, job TEXT NOT NULL, pid INTEGER NOT NULL, since TEXT NOT NULL);
"#;

fn now() -> String {
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
        let sql = |source| CatalogError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(busy_timeout).map_err(sql)?;
        // WAL lets readers in other processes work while one process writes.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        let mut catalog = Catalog { conn, path };
        catalog.migrate()?;
        Ok(catalog)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: rusqlite::Error) -> CatalogError {
        sqlite_error(&self.path, source)
    }

    fn migrate(&mut self) -> Result<()> {
        let found: Option<i64> = {
            let has_meta: bool = self
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'meta'",
                    [],
                    |r| r.get::<_, i64>(0).map(|n| n > 0),
                )
                .map_err(|e| self.error(e))?;
            if has_meta {
                self.conn
                    .query_row(
                        "SELECT value FROM meta WHERE key = 'schema_version'",
                        [],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()
                    .map_err(|e| self.error(e))?
                    .and_then(|v| v.parse().ok())
            } else {
                None
            }
        };
        match found {
            Some(v) if v > SCHEMA_VERSION => Err(CatalogError::NewerSchema {
                path: self.path.clone(),
                found: v,
            }),
            Some(v) if v == SCHEMA_VERSION => Ok(()),
            // Every table is CREATE ... IF NOT EXISTS: an older catalog gains the new ones.
            Some(_) | None => self.write(|tx| {
                tx.execute_batch(SCHEMA)?;
                tx.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('cluster_id', ?1)",
                    [format!("{:032x}", rand::random::<u128>())],
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
                tx.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0')",
                    [],
                )?;
                Ok(())
            }),
        }
    }

    /// Runs `change` in one immediate (write-locking) transaction and bumps the catalog
    /// generation. Either all of it is committed or none of it.
    pub fn write<T>(
        &mut self,
        change: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        self.try_write(|tx| change(tx).map_err(|source| sqlite_error(&path, source)))
    }

    /// [`Catalog::write`] for a change that can fail with the caller's own error: an `Err` from
    /// `change` rolls the whole transaction back and comes back unchanged.
    pub fn try_write<T, E: From<CatalogError>>(
        &mut self,
        change: impl FnOnce(&Connection) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let path = self.path.clone();
        let wrap = |source| sqlite_error(&path, source);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(wrap)?;
        let out = change(&tx)?;
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
        read: impl FnOnce(&Connection) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| sqlite_error(&self.path, e))?;
        let out = read(&tx)?;
        tx.finish().map_err(|e| sqlite_error(&self.path, e))?;
        Ok(out)
    }

    /// A direct connection for single-statement reads.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Increases with every committed change: a cheap "has anything changed" test.
    pub fn generation(&self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.error(e))
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
    CatalogError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

// ---- reads (usable on the connection or inside a transaction) --------------------------------

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

pub fn to_json<T: serde::Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(json_err)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(json_err)
}

fn database_from_row(r: &rusqlite::Row) -> rusqlite::Result<DatabaseRow> {
    Ok(DatabaseRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
    })
}

pub fn databases(conn: &Connection) -> rusqlite::Result<Vec<DatabaseRow>> {
    let mut stmt = conn.prepare("SELECT id, name, created_at FROM databases ORDER BY name")?;
    let rows = stmt.query_map([], database_from_row)?;
    rows.collect()
}

pub fn database(conn: &Connection, name: &str) -> rusqlite::Result<Option<DatabaseRow>> {
    conn.query_row(
        "SELECT id, name, created_at FROM databases WHERE name = ?1",
        [name],
        database_from_row,
    )
    .optional()
}

pub fn database_name(conn: &Connection, id: i64) -> rusqlite::Result<String> {
    conn.query_row("SELECT name FROM databases WHERE id = ?1", [id], |r| {
        r.get(0)
    })
}

pub fn create_database(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO databases (name, created_at) VALUES (?1, ?2)",
        params![name, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

const OBJECT_COLUMNS: &str =
    "id, db_id, name, state, definition, active, inactive_reason, created_at";

fn object_from_row(r: &rusqlite::Row) -> rusqlite::Result<ObjectRow> {
    let def: String = r.get(4)?;
    Ok(ObjectRow {
        id: r.get(0)?,
        db_id: r.get(1)?,
        name: r.get(2)?,
        state: ObjectState::parse(&r.get::<_, String>(3)?),
        def: from_json(&def)?,
        active: r.get::<_, i64>(5)? != 0,
        inactive_reason: r.get(6)?,
        created_at: r.get(7)?,
    })
}

/// Objects of a database visible under their names (staged ones excluded), by name.
pub fn objects(conn: &Connection, db_id: i64) -> rusqlite::Result<Vec<ObjectRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE db_id = ?1 AND state != 'staged' ORDER BY name"
    ))?;
    let rows = stmt.query_map([db_id], object_from_row)?;
    rows.collect()
}

pub fn object(conn: &Connection, db_id: i64, name: &str) -> rusqlite::Result<Option<ObjectRow>> {
    conn.query_row(
        &format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE db_id = ?1 AND name = ?2 AND state != 'staged'"
        ),
        params![db_id, name],
        object_from_row,
    )
    .optional()
}

pub fn object_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<ObjectRow>> {
    conn.query_row(
        &format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE id = ?1"),
        [id],
        object_from_row,
    )
    .optional()
}

pub fn insert_object(
    conn: &Connection,
    db_id: i64,
    name: &str,
    def: &ObjectDef,
    state: ObjectState,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO objects (db_id, name, kind, state, definition, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            db_id,
            name,
            def.kind().as_str(),
            state.as_str(),
            to_json(def)?,
            now()
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn update_definition(conn: &Connection, id: i64, def: &ObjectDef) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE objects SET definition = ?2 WHERE id = ?1",
        params![id, to_json(def)?],
    )?;
    Ok(())
}

pub fn set_state(conn: &Connection, id: i64, state: ObjectState) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE objects SET state = ?2 WHERE id = ?1",
        params![id, state.as_str()],
    )?;
    Ok(())
}

pub fn set_active(
    conn: &Connection,
    id: i64,
    active: bool,
    reason: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE objects SET active = ?2, inactive_reason = ?3 WHERE id = ?1",
        params![id, active as i64, reason],
    )?;
    Ok(())
}

/// Removes an object from the catalog; its rowsets stop being live (GC deletes their files
/// once no pin holds them).
pub fn drop_object(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE rowsets SET live = 0 WHERE tablet_id IN
           (SELECT t.id FROM tablets t JOIN partitions p ON t.partition_id = p.id WHERE p.object_id = ?1)",
        [id],
    )?;
    conn.execute(
        "DELETE FROM tablets WHERE partition_id IN (SELECT id FROM partitions WHERE object_id = ?1)",
        [id],
    )?;
    conn.execute("DELETE FROM partitions WHERE object_id = ?1", [id])?;
    conn.execute("DELETE FROM objects WHERE id = ?1", [id])?;
    Ok(())
}

fn partition_from_row(r: &rusqlite::Row) -> rusqlite::Result<PartitionRow> {
    let bound: String = r.get(3)?;
    Ok(PartitionRow {
        id: r.get(0)?,
        object_id: r.get(1)?,
        name: r.get(2)?,
        bound: from_json(&bound)?,
        visible_version: r.get(4)?,
    })
}

pub fn partitions(conn: &Connection, object_id: i64) -> rusqlite::Result<Vec<PartitionRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, object_id, name, bound, visible_version FROM partitions
         WHERE object_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([object_id], partition_from_row)?;
    rows.collect()
}

/// Adds a partition with one tablet per bucket, at version 1 (empty).
pub fn insert_partition(
    conn: &Connection,
    object_id: i64,
    name: &str,
    bound: &PartitionBound,
    buckets: u32,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO partitions (object_id, name, bound, visible_version) VALUES (?1, ?2, ?3, 1)",
        params![object_id, name, to_json(bound)?],
    )?;
    let id = conn.last_insert_rowid();
    for bucket in 0..buckets {
        conn.execute(
            "INSERT INTO tablets (partition_id, bucket) VALUES (?1, ?2)",
            params![id, bucket],
        )?;
    }
    Ok(id)
}

pub fn drop_partition(conn: &Connection, partition_id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE rowsets SET live = 0 WHERE tablet_id IN (SELECT id FROM tablets WHERE partition_id = ?1)",
        [partition_id],
    )?;
    conn.execute(
        "DELETE FROM tablets WHERE partition_id = ?1",
        [partition_id],
    )?;
    conn.execute("DELETE FROM partitions WHERE id = ?1", [partition_id])?;
    Ok(())
}

pub fn tablets(conn: &Connection, partition_id: i64) -> rusqlite::Result<Vec<TabletRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, partition_id, bucket FROM tablets WHERE partition_id = ?1 ORDER BY bucket",
    )?;
    let rows = stmt.query_map([partition_id], |r| {
        Ok(TabletRow {
            id: r.get(0)?,
            partition_id: r.get(1)?,
            bucket: r.get(2)?,
        })
    })?;
    rows.collect()
}

const ROWSET_COLUMNS: &str = "id, tablet_id, version, path, rows, bytes, sha256, live, rollup";

fn rowset_from_row(r: &rusqlite::Row) -> rusqlite::Result<RowsetRow> {
    Ok(RowsetRow {
        id: r.get(0)?,
        tablet_id: r.get(1)?,
        version: r.get(2)?,
        path: r.get(3)?,
        rows: r.get(4)?,
        bytes: r.get(5)?,
        sha256: r.get(6)?,
        live: r.get::<_, i64>(7)? != 0,
        rollup: r.get(8)?,
    })
}

/// The live base rowsets of one tablet (no rollups), oldest first.
pub fn live_rowsets(conn: &Connection, tablet_id: i64) -> rusqlite::Result<Vec<RowsetRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ROWSET_COLUMNS} FROM rowsets WHERE tablet_id = ?1 AND live = 1 AND rollup IS NULL
         ORDER BY version, id"
    ))?;
    let rows = stmt.query_map([tablet_id], rowset_from_row)?;
    rows.collect()
}

/// Every live rowset of one tablet: base rows and the rollups kept with them.
pub fn all_live_rowsets(conn: &Connection, tablet_id: i64) -> rusqlite::Result<Vec<RowsetRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ROWSET_COLUMNS} FROM rowsets WHERE tablet_id = ?1 AND live = 1 ORDER BY version, id"
    ))?;
    let rows = stmt.query_map([tablet_id], rowset_from_row)?;
    rows.collect()
}

fn object_rowsets_where(
    conn: &Connection,
    object_id: i64,
    filter: &str,
    rollup: Option<&str>,
) -> rusqlite::Result<Vec<RowsetRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM rowsets r JOIN tablets t ON r.tablet_id = t.id
           JOIN partitions p ON t.partition_id = p.id
         WHERE p.object_id = ?1 AND r.live = 1 AND {filter}
         ORDER BY p.id, t.bucket, r.version, r.id",
        ROWSET_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    match rollup {
        Some(name) => stmt
            .query_map(params![object_id, name], rowset_from_row)?
            .collect(),
        None => stmt.query_map([object_id], rowset_from_row)?.collect(),
    }
}

/// The live base rowsets of every tablet of an object, by partition, tablet and age.
pub fn object_rowsets(conn: &Connection, object_id: i64) -> rusqlite::Result<Vec<RowsetRow>> {
    object_rowsets_where(conn, object_id, "r.rollup IS NULL", None)
}

/// The live rowsets of one synchronous MV (rollup) of a table.
pub fn rollup_rowsets(
    conn: &Connection,
    object_id: i64,
    rollup: &str,
) -> rusqlite::Result<Vec<RowsetRow>> {
    object_rowsets_where(conn, object_id, "r.rollup = ?2", Some(rollup))
}

/// Every live rowset of an object with the partition name and bucket it sits in, in one query:
/// by partition (catalog order), bucket, base rows before rollups, then version.
pub fn object_layout(
    conn: &Connection,
    object_id: i64,
) -> rusqlite::Result<Vec<(String, i64, RowsetRow)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT p.name, t.bucket, {} FROM rowsets r JOIN tablets t ON r.tablet_id = t.id
           JOIN partitions p ON t.partition_id = p.id
         WHERE p.object_id = ?1 AND r.live = 1
         ORDER BY p.id, t.bucket, r.rollup IS NOT NULL, r.rollup, r.version, r.id",
        ROWSET_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let rows = stmt.query_map([object_id], |r| {
        let name: String = r.get(0)?;
        let bucket: i64 = r.get(1)?;
        let rowset = RowsetRow {
            id: r.get(2)?,
            tablet_id: r.get(3)?,
            version: r.get(4)?,
            path: r.get(5)?,
            rows: r.get(6)?,
            bytes: r.get(7)?,
            sha256: r.get(8)?,
            live: r.get::<_, i64>(9)? != 0,
            rollup: r.get(10)?,
        };
        Ok((name, bucket, rowset))
    })?;
    rows.collect()
}

/// Every live rowset of an object, base and rollups.
pub fn object_all_rowsets(conn: &Connection, object_id: i64) -> rusqlite::Result<Vec<RowsetRow>> {
    object_rowsets_where(conn, object_id, "1 = 1", None)
}

pub fn insert_rowset(conn: &Connection, rowset: &RowsetRow) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO rowsets (tablet_id, version, path, rows, bytes, sha256, live, rollup)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
        params![
            rowset.tablet_id,
            rowset.version,
            rowset.path,
            rowset.rows,
            rowset.bytes,
            rowset.sha256,
            rowset.rollup
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn retire_rowset(conn: &Connection, rowset_id: i64) -> rusqlite::Result<()> {
    conn.execute("UPDATE rowsets SET live = 0 WHERE id = ?1", [rowset_id])?;
    Ok(())
}

/// Bumps a partition's visible version and returns the new one.
pub fn bump_version(conn: &Connection, partition_id: i64) -> rusqlite::Result<i64> {
    conn.execute(
        "UPDATE partitions SET visible_version = visible_version + 1 WHERE id = ?1",
        [partition_id],
    )?;
    conn.query_row(
        "SELECT visible_version FROM partitions WHERE id = ?1",
        [partition_id],
        |r| r.get(0),
    )
}

// ---- functions and external catalogs ---------------------------------------------------------

/// A repository as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryRow {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub read_only: bool,
    pub location: String,
    pub broker: Option<String>,
    /// The properties as written (credentials included).
    pub properties: Vec<(String, String)>,
    /// The last failure reaching it, with its time.
    pub err_msg: Option<String>,
}

fn repository_from_row(r: &rusqlite::Row) -> rusqlite::Result<RepositoryRow> {
    Ok(RepositoryRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        read_only: r.get(3)?,
        location: r.get(4)?,
        broker: r.get(5)?,
        properties: from_json(&r.get::<_, String>(6)?)?,
        err_msg: r.get(7)?,
    })
}

const REPOSITORY_COLUMNS: &str =
    "id, name, created_at, read_only, location, broker, properties, err_msg";

pub fn repositories(conn: &Connection) -> rusqlite::Result<Vec<RepositoryRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {REPOSITORY_COLUMNS} FROM repositories ORDER BY id"
    ))?;
    st.query_map([], repository_from_row)?.collect()
}

pub fn repository(conn: &Connection, name: &str) -> rusqlite::Result<Option<RepositoryRow>> {
    conn.query_row(
        &format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name = ?1"),
        [name],
        repository_from_row,
    )
    .optional()
}

pub fn insert_repository(
    conn: &Connection,
    name: &str,
    read_only: bool,
    location: &str,
    broker: Option<&str>,
    properties: &[(String, String)],
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO repositories (name, created_at, read_only, location, broker, properties) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![
            name,
            now(),
            read_only,
            location,
            broker,
            to_json(&properties)?
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn delete_repository(conn: &Connection, name: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM repositories WHERE name = ?1", [name])
}

/// Records (or clears) the last failure reaching a repository.
pub fn set_repository_error(
    conn: &Connection,
    name: &str,
    error: Option<&str>,
) -> rusqlite::Result<()> {
    let stamped = error.map(|e| format!("{} {e}", now()));
    conn.execute(
        "UPDATE repositories SET err_msg = ?2 WHERE name = ?1",
        rusqlite::params![name, stamped],
    )?;
    Ok(())
}

/// The cluster's id, made when its catalog was created; snapshots record it as their source.
pub fn cluster_id(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("SELECT value FROM meta WHERE key = 'cluster_id'", [], |r| {
        r.get(0)
    })
}

pub fn functions(conn: &Connection, db_id: Option<i64>) -> rusqlite::Result<Vec<FunctionDef>> {
    let mut stmt =
        conn.prepare("SELECT definition FROM functions WHERE db_id IS ?1 ORDER BY signature")?;
    let rows = stmt.query_map([db_id], |r| r.get::<_, String>(0))?;
    rows.map(|d| d.and_then(|d| from_json(&d))).collect()
}

pub fn insert_function(
    conn: &Connection,
    db_id: Option<i64>,
    def: &FunctionDef,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO functions (db_id, signature, definition) VALUES (?1, ?2, ?3)",
        params![db_id, def.signature(), to_json(def)?],
    )?;
    Ok(())
}

pub fn delete_function(
    conn: &Connection,
    db_id: Option<i64>,
    signature: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM functions WHERE db_id IS ?1 AND signature = ?2",
        params![db_id, signature],
    )
}

pub fn external_catalogs(conn: &Connection) -> rusqlite::Result<Vec<ExternalCatalogDef>> {
    let mut stmt = conn.prepare("SELECT definition FROM external_catalogs ORDER BY name")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|d| d.and_then(|d| from_json(&d))).collect()
}

pub fn insert_external_catalog(
    conn: &Connection,
    def: &ExternalCatalogDef,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO external_catalogs (name, definition) VALUES (?1, ?2)",
        params![def.name, to_json(def)?],
    )?;
    Ok(())
}

pub fn delete_external_catalog(conn: &Connection, name: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM external_catalogs WHERE name = ?1", [name])
}

// ---- jobs and their journals -----------------------------------------------------------------

/// A BACKUP or RESTORE job as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    pub id: i64,
    /// `backup` or `restore`.
    pub kind: String,
    pub label: String,
    pub db_name: String,
    pub state: String,
    /// The plan it runs (JSON).
    pub plan: String,
    pub snapshot_timestamp: Option<String>,
    pub created_at: String,
    /// When the job entered each state.
    pub state_times: BTreeMap<String, String>,
    pub unfinished_tasks: i64,
    pub progress: Option<String>,
    pub task_err_msg: Option<String>,
    pub status: String,
    pub timeout: i64,
    pub pid: u32,
    pub cancel_requested: bool,
    pub finished: bool,
}

const JOB_COLUMNS: &str = "id, kind, label, db_name, state, plan, snapshot_timestamp, created_at, \
    state_times, unfinished_tasks, progress, task_err_msg, status, timeout, pid, cancel_requested, finished";

fn job_from_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        label: r.get(2)?,
        db_name: r.get(3)?,
        state: r.get(4)?,
        plan: r.get(5)?,
        snapshot_timestamp: r.get(6)?,
        created_at: r.get(7)?,
        state_times: from_json(&r.get::<_, String>(8)?)?,
        unfinished_tasks: r.get(9)?,
        progress: r.get(10)?,
        task_err_msg: r.get(11)?,
        status: r.get(12)?,
        timeout: r.get(13)?,
        pid: r.get(14)?,
        cancel_requested: r.get::<_, i64>(15)? != 0,
        finished: r.get::<_, i64>(16)? != 0,
    })
}

#[allow(clippy::too_many_arguments)]
pub fn insert_job(
    conn: &Connection,
    kind: &str,
    label: &str,
    db_name: &str,
    state: &str,
    plan: &str,
    snapshot_timestamp: Option<&str>,
    timeout: i64,
    pid: u32,
) -> rusqlite::Result<i64> {
    let created = now();
    let times = BTreeMap::from([(state.to_string(), created.clone())]);
    conn.execute(
        "INSERT INTO jobs (kind, label, db_name, state, plan, snapshot_timestamp, created_at, state_times, timeout, pid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![kind, label, db_name, state, plan, snapshot_timestamp, created, to_json(&times)?, timeout, pid],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn job(conn: &Connection, id: i64) -> rusqlite::Result<Option<JobRow>> {
    conn.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
        [id],
        job_from_row,
    )
    .optional()
}

/// Jobs of a kind, newest first, optionally of one database.
pub fn jobs(conn: &Connection, kind: &str, db_name: Option<&str>) -> rusqlite::Result<Vec<JobRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE kind = ?1 AND (?2 IS NULL OR db_name = ?2) ORDER BY id DESC"
    ))?;
    stmt.query_map(params![kind, db_name], job_from_row)?
        .collect()
}

/// Jobs not finished (running, or interrupted by a crash), oldest first.
pub fn unfinished_jobs(conn: &Connection) -> rusqlite::Result<Vec<JobRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE finished = 0 ORDER BY id"
    ))?;
    stmt.query_map([], job_from_row)?.collect()
}

/// Moves a job to `state`, recording when.
pub fn set_job_state(conn: &Connection, id: i64, state: &str) -> rusqlite::Result<()> {
    let times: String =
        conn.query_row("SELECT state_times FROM jobs WHERE id = ?1", [id], |r| {
            r.get(0)
        })?;
    let mut times: BTreeMap<String, String> = from_json(&times)?;
    times.entry(state.to_string()).or_insert_with(now);
    conn.execute(
        "UPDATE jobs SET state = ?2, state_times = ?3 WHERE id = ?1",
        params![id, state, to_json(&times)?],
    )?;
    Ok(())
}

pub fn set_job_progress(
    conn: &Connection,
    id: i64,
    unfinished: i64,
    progress: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE jobs SET unfinished_tasks = ?2, progress = ?3 WHERE id = ?1",
        params![id, unfinished, progress],
    )?;
    Ok(())
}

pub fn set_job_timestamp(conn: &Connection, id: i64, ts: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE jobs SET snapshot_timestamp = ?2 WHERE id = ?1",
        params![id, ts],
    )?;
    Ok(())
}

/// The process now running the job (a resume takes it over).
pub fn set_job_pid(conn: &Connection, id: i64, pid: u32) -> rusqlite::Result<()> {
    conn.execute("UPDATE jobs SET pid = ?2 WHERE id = ?1", params![id, pid])?;
    Ok(())
}

/// Ends a job in `state` (FINISHED or CANCELLED) with its status and error message.
pub fn finish_job(
    conn: &Connection,
    id: i64,
    state: &str,
    status: &str,
    task_err_msg: Option<&str>,
) -> rusqlite::Result<()> {
    set_job_state(conn, id, state)?;
    conn.execute(
        "UPDATE jobs SET finished = 1, status = ?2, task_err_msg = ?3 WHERE id = ?1",
        params![id, status, task_err_msg],
    )?;
    Ok(())
}

/// Asks the running job of `kind` on `db_name` to stop; returns its id.
pub fn request_cancel(
    conn: &Connection,
    kind: &str,
    db_name: &str,
) -> rusqlite::Result<Option<i64>> {
    let id: Option<i64> = conn
        .query_row(
            "SELECT id FROM jobs WHERE kind = ?1 AND db_name = ?2 AND finished = 0 ORDER BY id DESC LIMIT 1",
            params![kind, db_name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = id {
        conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1", [id])?;
    }
    Ok(id)
}

pub fn cancel_requested(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT cancel_requested FROM jobs WHERE id = ?1",
        [id],
        |r| r.get::<_, i64>(0).map(|v| v != 0),
    )
}

/// Records a finished task of a job with its result (JSON).
pub fn journal_task(
    conn: &Connection,
    job_id: i64,
    task_id: &str,
    result: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO job_tasks (job_id, task_id, result) VALUES (?1, ?2, ?3)",
        params![job_id, task_id, result],
    )?;
    Ok(())
}

/// The finished tasks of a job with their results.
pub fn journal(conn: &Connection, job_id: i64) -> rusqlite::Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare("SELECT task_id, result FROM job_tasks WHERE job_id = ?1")?;
    stmt.query_map([job_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

// ---- loads, pins, job locks ------------------------------------------------------------------

/// Registers a load before it writes files, so garbage collection leaves them alone.
pub fn begin_load(conn: &Connection, object_id: i64, pid: u32) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO loads (object_id, pid, started_at) VALUES (?1, ?2, ?3)",
        params![object_id, pid, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn end_load(conn: &Connection, load_id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM loads WHERE id = ?1", [load_id])?;
    Ok(())
}

/// `(load id, pid)` of every registered load.
pub fn loads(conn: &Connection) -> rusqlite::Result<Vec<(i64, u32)>> {
    let mut stmt = conn.prepare("SELECT id, pid FROM loads")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn insert_pin(conn: &Connection, label: &str, rowsets: &[i64]) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO pins (label, created_at) VALUES (?1, ?2)",
        params![label, now()],
    )?;
    let id = conn.last_insert_rowid();
    let mut stmt =
        conn.prepare("INSERT OR IGNORE INTO pinned_rowsets (pin_id, rowset_id) VALUES (?1, ?2)")?;
    for r in rowsets {
        stmt.execute(params![id, r])?;
    }
    Ok(id)
}

pub fn delete_pin(conn: &Connection, pin_id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM pinned_rowsets WHERE pin_id = ?1", [pin_id])?;
    conn.execute("DELETE FROM pins WHERE id = ?1", [pin_id])
}

pub fn pinned_rowsets(conn: &Connection, pin_id: i64) -> rusqlite::Result<Vec<RowsetRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM rowsets r JOIN pinned_rowsets p ON p.rowset_id = r.id
         WHERE p.pin_id = ?1 ORDER BY r.id",
        ROWSET_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let rows = stmt.query_map([pin_id], rowset_from_row)?;
    rows.collect()
}

/// Rowsets no longer live and held by no pin: their rows and files can go.
pub fn collectable_rowsets(conn: &Connection) -> rusqlite::Result<Vec<RowsetRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ROWSET_COLUMNS} FROM rowsets WHERE live = 0
           AND id NOT IN (SELECT rowset_id FROM pinned_rowsets) ORDER BY id"
    ))?;
    let rows = stmt.query_map([], rowset_from_row)?;
    rows.collect()
}

pub fn delete_rowset_row(conn: &Connection, rowset_id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM rowsets WHERE id = ?1", [rowset_id])?;
    Ok(())
}

/// Every path a rowset row (live or pinned) still names.
pub fn referenced_paths(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT path FROM rowsets")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Takes the one-job-per-database lock; returns the holder when someone else has it.
pub fn try_lock_database(
    conn: &Connection,
    db_name: &str,
    job: &str,
    pid: u32,
) -> rusqlite::Result<Option<(String, u32)>> {
    let holder: Option<(String, u32)> = conn
        .query_row(
            "SELECT job, pid FROM job_locks WHERE db_name = ?1",
            [db_name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((holder_job, holder_pid)) = holder {
        if holder_job != job {
            return Ok(Some((holder_job, holder_pid)));
        }
        return Ok(None);
    }
    conn.execute(
        "INSERT INTO job_locks (db_name, job, pid, since) VALUES (?1, ?2, ?3, ?4)",
        params![db_name, job, pid, now()],
    )?;
    Ok(None)
}

pub fn unlock_database(conn: &Connection, db_name: &str, job: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM job_locks WHERE db_name = ?1 AND job = ?2",
        params![db_name, job],
    )?;
    Ok(())
}
