//! The data layout: an object's partitions, each partition's tablets (one per bucket), each
//! tablet's rowsets (immutable files).

use std::collections::HashMap;

use rusqlite::params;

use super::{Reader, Result, Tx, from_json, qualified, to_json};
use crate::catalog::PartitionBound;

#[derive(Clone, Debug, PartialEq)]
pub struct PartitionRow {
    pub id: i64,
    pub object_id: i64,
    pub name: String,
    pub bound: PartitionBound,
    pub visible_version: i64,
    /// When the visible version last changed, `YYYY-MM-DD HH:MM:SS` UTC (StarRocks'
    /// VisibleVersionTime: tools compare it with a backup's time to find changed partitions).
    pub visible_time: String,
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

fn partition_from_row(r: &rusqlite::Row) -> rusqlite::Result<PartitionRow> {
    let bound: String = r.get(3)?;
    Ok(PartitionRow {
        id: r.get(0)?,
        object_id: r.get(1)?,
        name: r.get(2)?,
        bound: from_json(&bound)?,
        visible_version: r.get(4)?,
        visible_time: r.get(5)?,
    })
}

pub(super) const ROWSET_COLUMNS: &str =
    "id, tablet_id, version, path, rows, bytes, sha256, live, rollup";

/// A rowset from columns `offset..offset + 9` (in [`ROWSET_COLUMNS`] order).
fn rowset_at(r: &rusqlite::Row, offset: usize) -> rusqlite::Result<RowsetRow> {
    Ok(RowsetRow {
        id: r.get(offset)?,
        tablet_id: r.get(offset + 1)?,
        version: r.get(offset + 2)?,
        path: r.get(offset + 3)?,
        rows: r.get(offset + 4)?,
        bytes: r.get(offset + 5)?,
        sha256: r.get(offset + 6)?,
        live: r.get::<_, i64>(offset + 7)? != 0,
        rollup: r.get(offset + 8)?,
    })
}

pub(super) fn rowset_from_row(r: &rusqlite::Row) -> rusqlite::Result<RowsetRow> {
    rowset_at(r, 0)
}

impl Reader<'_> {
    pub fn partitions(&self, object_id: i64) -> Result<Vec<PartitionRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT id, object_id, name, bound, visible_version, visible_time FROM partitions
                 WHERE object_id = ?1 ORDER BY id",
            )?;
            stmt.query_map([object_id], partition_from_row)?.collect()
        })
    }

    pub fn tablets(&self, partition_id: i64) -> Result<Vec<TabletRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT id, partition_id, bucket FROM tablets WHERE partition_id = ?1 ORDER BY bucket",
            )?;
            stmt.query_map([partition_id], |r| {
                Ok(TabletRow {
                    id: r.get(0)?,
                    partition_id: r.get(1)?,
                    bucket: r.get(2)?,
                })
            })?
            .collect()
        })
    }

    /// The tablet of `bucket` in a partition.
    pub fn tablet(&self, partition_id: i64, bucket: i64) -> Result<Option<TabletRow>> {
        Ok(self
            .tablets(partition_id)?
            .into_iter()
            .find(|t| t.bucket == bucket))
    }

    /// Every tablet id of an object by (partition name, bucket), in one query.
    pub fn tablet_ids(&self, object_id: i64) -> Result<HashMap<(String, i64), i64>> {
        self.run(|c| {
            let mut st = c.prepare(
                "SELECT p.name, t.bucket, t.id FROM tablets t
                   JOIN partitions p ON t.partition_id = p.id WHERE p.object_id = ?1",
            )?;
            st.query_map([object_id], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
                .collect()
        })
    }

    /// The live base rowsets of one tablet (no rollups), oldest first.
    pub fn live_rowsets(&self, tablet_id: i64) -> Result<Vec<RowsetRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ROWSET_COLUMNS} FROM rowsets WHERE tablet_id = ?1 AND live = 1 AND rollup IS NULL
                 ORDER BY version, id"
            ))?;
            stmt.query_map([tablet_id], rowset_from_row)?.collect()
        })
    }

    /// Every live rowset of one tablet: base rows and the rollups kept with them.
    pub fn all_live_rowsets(&self, tablet_id: i64) -> Result<Vec<RowsetRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ROWSET_COLUMNS} FROM rowsets WHERE tablet_id = ?1 AND live = 1 ORDER BY version, id"
            ))?;
            stmt.query_map([tablet_id], rowset_from_row)?.collect()
        })
    }

    /// Rowset `id`, live or not.
    pub fn rowset(&self, id: i64) -> Result<Option<RowsetRow>> {
        self.run(|c| {
            rusqlite::OptionalExtension::optional(c.query_row(
                &format!("SELECT {ROWSET_COLUMNS} FROM rowsets WHERE id = ?1"),
                [id],
                rowset_from_row,
            ))
        })
    }

    fn object_rowsets_where(
        &self,
        object_id: i64,
        filter: &str,
        rollup: Option<&str>,
    ) -> Result<Vec<RowsetRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {} FROM rowsets r JOIN tablets t ON r.tablet_id = t.id
                   JOIN partitions p ON t.partition_id = p.id
                 WHERE p.object_id = ?1 AND r.live = 1 AND {filter}
                 ORDER BY p.id, t.bucket, r.version, r.id",
                qualified("r", ROWSET_COLUMNS)
            ))?;
            match rollup {
                Some(name) => stmt
                    .query_map(params![object_id, name], rowset_from_row)?
                    .collect(),
                None => stmt.query_map([object_id], rowset_from_row)?.collect(),
            }
        })
    }

    /// The live base rowsets of every tablet of an object, by partition, tablet and age.
    pub fn object_rowsets(&self, object_id: i64) -> Result<Vec<RowsetRow>> {
        self.object_rowsets_where(object_id, "r.rollup IS NULL", None)
    }

    /// The live rowsets of one synchronous MV (rollup) of a table.
    pub fn rollup_rowsets(&self, object_id: i64, rollup: &str) -> Result<Vec<RowsetRow>> {
        self.object_rowsets_where(object_id, "r.rollup = ?2", Some(rollup))
    }

    /// Every live rowset of an object, base and rollups.
    pub fn object_all_rowsets(&self, object_id: i64) -> Result<Vec<RowsetRow>> {
        self.object_rowsets_where(object_id, "1 = 1", None)
    }

    /// Every live rowset of an object with the partition name and bucket it sits in, in one
    /// query: by partition (catalog order), bucket, base rows before rollups, then version.
    pub fn object_layout(&self, object_id: i64) -> Result<Vec<(String, i64, RowsetRow)>> {
        let mut out = Vec::new();
        self.object_layout_each(object_id, |partition, bucket, rowset| {
            out.push((partition.to_string(), bucket, rowset));
            true
        })?;
        Ok(out)
    }

    /// [`Reader::object_layout`] one row at a time, without holding them (a planner of ten
    /// million tablets streams them into its plan). `f` returns false to stop early.
    pub fn object_layout_each(
        &self,
        object_id: i64,
        mut f: impl FnMut(&str, i64, RowsetRow) -> bool,
    ) -> Result<()> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT p.name, t.bucket, {} FROM rowsets r JOIN tablets t ON r.tablet_id = t.id
                   JOIN partitions p ON t.partition_id = p.id
                 WHERE p.object_id = ?1 AND r.live = 1
                 ORDER BY p.id, t.bucket, r.rollup IS NOT NULL, r.rollup, r.version, r.id",
                qualified("r", ROWSET_COLUMNS)
            ))?;
            let mut rows = stmt.query([object_id])?;
            while let Some(r) = rows.next()? {
                let partition: String = r.get(0)?;
                if !f(&partition, r.get(1)?, rowset_at(r, 2)?) {
                    break;
                }
            }
            Ok(())
        })
    }

    /// The SHA-256s that more than one live rowset of `objects` holds (counted by SQLite, which
    /// spills to a temporary file rather than holding every hash in memory).
    pub fn shared_contents(&self, objects: &[i64]) -> Result<Vec<String>> {
        if objects.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<String> = objects.iter().map(i64::to_string).collect();
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT r.sha256 FROM rowsets r JOIN tablets t ON r.tablet_id = t.id
                   JOIN partitions p ON t.partition_id = p.id
                 WHERE p.object_id IN ({}) AND r.live = 1
                 GROUP BY r.sha256 HAVING count(*) > 1",
                ids.join(", ")
            ))?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
    }

    /// Rows and bytes of the live base rowsets of one partition.
    pub fn partition_size(&self, partition_id: i64) -> Result<(i64, i64)> {
        self.run(|c| {
            c.query_row(
                "SELECT coalesce(sum(r.rows), 0), coalesce(sum(r.bytes), 0)
                   FROM rowsets r JOIN tablets t ON r.tablet_id = t.id
                  WHERE t.partition_id = ?1 AND r.live = 1 AND r.rollup IS NULL",
                [partition_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }
}

impl Tx<'_> {
    /// Adds a partition with one tablet per bucket, at version 1 (empty).
    pub fn insert_partition(
        &self,
        object_id: i64,
        name: &str,
        bound: &PartitionBound,
        buckets: u32,
    ) -> Result<i64> {
        self.run(|c| {
            c.execute(
                "INSERT INTO partitions (object_id, name, bound, visible_version, visible_time)
                 VALUES (?1, ?2, ?3, 1, ?4)",
                params![object_id, name, to_json(bound)?, super::now()],
            )?;
            let id = c.last_insert_rowid();
            let mut st = c.prepare("INSERT INTO tablets (partition_id, bucket) VALUES (?1, ?2)")?;
            for bucket in 0..buckets {
                st.execute(params![id, bucket])?;
            }
            Ok(id)
        })
    }

    pub fn drop_partition(&self, partition_id: i64) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE rowsets SET live = 0 WHERE tablet_id IN (SELECT id FROM tablets WHERE partition_id = ?1)",
                [partition_id],
            )?;
            c.execute(
                "DELETE FROM tablets WHERE partition_id = ?1",
                [partition_id],
            )?;
            c.execute("DELETE FROM partitions WHERE id = ?1", [partition_id])?;
            Ok(())
        })
    }

    /// Sets a partition's visible version (a staged partition takes its snapshot's version).
    pub fn set_visible_version(&self, partition_id: i64, version: i64) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE partitions SET visible_version = ?2, visible_time = ?3 WHERE id = ?1",
                params![partition_id, version, super::now()],
            )?;
            Ok(())
        })
    }

    /// Bumps a partition's visible version and returns the new one.
    pub fn bump_version(&self, partition_id: i64) -> Result<i64> {
        self.run(|c| {
            c.execute(
                "UPDATE partitions SET visible_version = visible_version + 1, visible_time = ?2
                 WHERE id = ?1",
                params![partition_id, super::now()],
            )?;
            c.query_row(
                "SELECT visible_version FROM partitions WHERE id = ?1",
                [partition_id],
                |r| r.get(0),
            )
        })
    }

    pub fn insert_rowset(&self, rowset: &RowsetRow) -> Result<i64> {
        self.run(|c| {
            c.execute(
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
            Ok(c.last_insert_rowid())
        })
    }

    pub fn retire_rowset(&self, rowset_id: i64) -> Result<()> {
        self.run(|c| {
            c.execute("UPDATE rowsets SET live = 0 WHERE id = ?1", [rowset_id])?;
            Ok(())
        })
    }

    /// Moves the live rowsets of tablet `from` into tablet `to` at partition version `version`
    /// (a restore publishing a staged partition into an existing table).
    pub fn move_live_rowsets(&self, from: i64, to: i64, version: i64) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE rowsets SET tablet_id = ?1, version = ?2 WHERE tablet_id = ?3 AND live = 1",
                params![to, version, from],
            )?;
            Ok(())
        })
    }
}
