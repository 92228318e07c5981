//! Leases that keep files alive: a load's lease covers the files it is writing (named
//! `L<lease>-…`); a pin keeps a backup's rowsets (and their files) from compaction and GC.

use rusqlite::params;

use super::tablets::{ROWSET_COLUMNS, RowsetRow, rowset_from_row};
use super::{Reader, Result, Tx, now, qualified};
use crate::process::Process;

impl Reader<'_> {
    /// `(load id, pid)` of every registered load.
    /// Every registered load with the process that runs it.
    pub fn loads(&self) -> Result<Vec<(i64, Process)>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT id, pid, pid_start FROM loads")?;
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    Process {
                        pid: r.get(1)?,
                        started: r.get::<_, i64>(2)? as u64,
                    },
                ))
            })?
            .collect()
        })
    }

    pub fn pinned_rowsets(&self, pin_id: i64) -> Result<Vec<RowsetRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {} FROM rowsets r JOIN pinned_rowsets p ON p.rowset_id = r.id
                 WHERE p.pin_id = ?1 ORDER BY r.id",
                qualified("r", ROWSET_COLUMNS)
            ))?;
            stmt.query_map([pin_id], rowset_from_row)?.collect()
        })
    }

    /// Rowsets no longer live and held by no pin: their rows and files can go.
    pub fn collectable_rowsets(&self) -> Result<Vec<RowsetRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ROWSET_COLUMNS} FROM rowsets WHERE live = 0
                   AND id NOT IN (SELECT rowset_id FROM pinned_rowsets) ORDER BY id"
            ))?;
            stmt.query_map([], rowset_from_row)?.collect()
        })
    }

    /// Every path a rowset row (live or pinned) still names.
    pub fn referenced_paths(&self) -> Result<Vec<String>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT path FROM rowsets")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
    }
}

impl Tx<'_> {
    /// Registers a load before it writes files, so garbage collection leaves them alone.
    pub fn begin_load(&self, object_id: i64, process: Process) -> Result<i64> {
        self.run(|c| {
            c.execute(
                "INSERT INTO loads (object_id, pid, started_at, pid_start) VALUES (?1, ?2, ?3, ?4)",
                params![object_id, process.pid, now(), process.started as i64],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub fn end_load(&self, load_id: i64) -> Result<()> {
        self.run(|c| {
            c.execute("DELETE FROM loads WHERE id = ?1", [load_id])?;
            Ok(())
        })
    }

    pub fn insert_pin(&self, label: &str, rowsets: &[i64]) -> Result<i64> {
        self.run(|c| {
            c.execute(
                "INSERT INTO pins (label, created_at) VALUES (?1, ?2)",
                params![label, now()],
            )?;
            let id = c.last_insert_rowid();
            let mut stmt = c.prepare(
                "INSERT OR IGNORE INTO pinned_rowsets (pin_id, rowset_id) VALUES (?1, ?2)",
            )?;
            for r in rowsets {
                stmt.execute(params![id, r])?;
            }
            Ok(id)
        })
    }

    pub fn delete_pin(&self, pin_id: i64) -> Result<usize> {
        self.run(|c| {
            c.execute("DELETE FROM pinned_rowsets WHERE pin_id = ?1", [pin_id])?;
            c.execute("DELETE FROM pins WHERE id = ?1", [pin_id])
        })
    }

    pub fn delete_rowset_row(&self, rowset_id: i64) -> Result<()> {
        self.run(|c| {
            c.execute("DELETE FROM rowsets WHERE id = ?1", [rowset_id])?;
            Ok(())
        })
    }
}
