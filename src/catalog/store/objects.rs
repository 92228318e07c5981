//! Databases, their objects (tables, materialized views, views), functions and external
//! catalogs.

use rusqlite::{OptionalExtension, params};

use super::{CatalogError, Reader, Result, Tx, from_json, now, to_json};
use crate::catalog::{ExternalCatalogDef, FunctionDef, ObjectDef, PartitionBound};

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
    fn parse(s: &str) -> Option<ObjectState> {
        match s {
            "normal" => Some(ObjectState::Normal),
            "restoring" => Some(ObjectState::Restoring),
            "staged" => Some(ObjectState::Staged),
            _ => None,
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

fn database_from_row(r: &rusqlite::Row) -> rusqlite::Result<DatabaseRow> {
    Ok(DatabaseRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
    })
}

const OBJECT_COLUMNS: &str =
    "id, db_id, name, state, definition, active, inactive_reason, created_at";

fn object_from_row(r: &rusqlite::Row) -> rusqlite::Result<ObjectRow> {
    let def: String = r.get(4)?;
    let state: String = r.get(3)?;
    Ok(ObjectRow {
        id: r.get(0)?,
        db_id: r.get(1)?,
        name: r.get(2)?,
        state: ObjectState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown object state {state:?}").into(),
            )
        })?,
        def: from_json(&def)?,
        active: r.get::<_, i64>(5)? != 0,
        inactive_reason: r.get(6)?,
        created_at: r.get(7)?,
    })
}

impl Reader<'_> {
    pub fn databases(&self) -> Result<Vec<DatabaseRow>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT id, name, created_at FROM databases ORDER BY name")?;
            stmt.query_map([], database_from_row)?.collect()
        })
    }

    pub fn database(&self, name: &str) -> Result<Option<DatabaseRow>> {
        self.run(|c| {
            c.query_row(
                "SELECT id, name, created_at FROM databases WHERE name = ?1",
                [name],
                database_from_row,
            )
            .optional()
        })
    }

    pub fn database_name(&self, id: i64) -> Result<String> {
        self.run(|c| {
            c.query_row("SELECT name FROM databases WHERE id = ?1", [id], |r| {
                r.get(0)
            })
        })
    }

    /// Objects of a database visible under their names (staged ones excluded), by name.
    pub fn objects(&self, db_id: i64) -> Result<Vec<ObjectRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE db_id = ?1 AND state != 'staged' ORDER BY name"
            ))?;
            stmt.query_map([db_id], object_from_row)?.collect()
        })
    }

    /// The object visible under `name` in a database (not a staged one).
    pub fn object(&self, db_id: i64, name: &str) -> Result<Option<ObjectRow>> {
        self.run(|c| {
            c.query_row(
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM objects WHERE db_id = ?1 AND name = ?2 AND state != 'staged'"
                ),
                params![db_id, name],
                object_from_row,
            )
            .optional()
        })
    }

    pub fn object_by_id(&self, id: i64) -> Result<Option<ObjectRow>> {
        self.run(|c| {
            c.query_row(
                &format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE id = ?1"),
                [id],
                object_from_row,
            )
            .optional()
        })
    }

    /// Functions of a database (`None`: global functions), by signature.
    pub fn functions(&self, db_id: Option<i64>) -> Result<Vec<FunctionDef>> {
        self.run(|c| {
            let mut stmt =
                c.prepare("SELECT definition FROM functions WHERE db_id IS ?1 ORDER BY signature")?;
            let rows = stmt.query_map([db_id], |r| r.get::<_, String>(0))?;
            rows.map(|d| d.and_then(|d| from_json(&d))).collect()
        })
    }

    /// External catalogs, their sealed credentials opened.
    pub fn external_catalogs(&self) -> Result<Vec<ExternalCatalogDef>> {
        let mut defs = self.stored_external_catalogs()?;
        for def in &mut defs {
            for (key, value) in &mut def.properties {
                *value = self
                    .sealer
                    .open(&catalog_context(&def.name, key), value)
                    .map_err(|reason| CatalogError::Secret {
                        path: self.path.to_path_buf(),
                        reason,
                    })?;
            }
        }
        Ok(defs)
    }

    fn stored_external_catalogs(&self) -> Result<Vec<ExternalCatalogDef>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT definition FROM external_catalogs ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.map(|d| d.and_then(|d| from_json(&d))).collect()
        })
    }

    /// `value` sealed for `context` (see [`super::secrets`]).
    pub(super) fn seal(&self, context: &str, value: &str) -> Result<String> {
        self.sealer
            .seal(context, value)
            .map_err(|reason| CatalogError::Secret {
                path: self.path.to_path_buf(),
                reason,
            })
    }
}

impl Tx<'_> {
    pub fn create_database(&self, name: &str) -> Result<i64> {
        self.run(|c| {
            c.execute(
                "INSERT INTO databases (name, created_at) VALUES (?1, ?2)",
                params![name, now()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Drops a database with everything in it (objects, functions).
    pub fn drop_database(&self, db_id: i64) -> Result<()> {
        for obj in self.objects_including_staged(db_id)? {
            self.drop_object(obj)?;
        }
        self.run(|c| {
            c.execute("DELETE FROM functions WHERE db_id = ?1", [db_id])?;
            c.execute("DELETE FROM databases WHERE id = ?1", [db_id])?;
            Ok(())
        })
    }

    /// Drops database `name` if nothing lives in it (no object, staged or not, no function);
    /// returns whether it did.
    pub fn drop_database_if_empty(&self, name: &str) -> Result<bool> {
        self.run(|c| {
            c.execute(
                "DELETE FROM databases WHERE name = ?1
                   AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.db_id = databases.id)
                   AND NOT EXISTS (SELECT 1 FROM functions f WHERE f.db_id = databases.id)",
                [name],
            )
            .map(|n| n > 0)
        })
    }

    fn objects_including_staged(&self, db_id: i64) -> Result<Vec<i64>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT id FROM objects WHERE db_id = ?1")?;
            stmt.query_map([db_id], |r| r.get(0))?.collect()
        })
    }

    pub fn insert_object(
        &self,
        db_id: i64,
        name: &str,
        def: &ObjectDef,
        state: ObjectState,
    ) -> Result<i64> {
        self.run(|c| {
            c.execute(
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
            Ok(c.last_insert_rowid())
        })
    }

    /// Creates a (hidden, staged or visible) table or MV with its partitions, each at
    /// `version` (1 = empty) with one tablet per bucket.
    pub fn insert_object_with_partitions(
        &self,
        db_id: i64,
        name: &str,
        def: &ObjectDef,
        state: ObjectState,
        partitions: &[(String, PartitionBound, i64)],
    ) -> Result<i64> {
        let id = self.insert_object(db_id, name, def, state)?;
        let buckets = def.schema().map(|s| s.distribution.buckets()).unwrap_or(1);
        for (pname, bound, version) in partitions {
            let pid = self.insert_partition(id, pname, bound, buckets)?;
            if *version != 1 {
                self.set_visible_version(pid, *version)?;
            }
        }
        Ok(id)
    }

    /// Gives an object a new name in its database (the caller checked the name is free).
    pub fn rename_object(&self, id: i64, name: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE objects SET name = ?2 WHERE id = ?1",
                params![id, name],
            )?;
            Ok(())
        })
    }

    pub fn update_definition(&self, id: i64, def: &ObjectDef) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE objects SET definition = ?2 WHERE id = ?1",
                params![id, to_json(def)?],
            )?;
            Ok(())
        })
    }

    pub fn set_state(&self, id: i64, state: ObjectState) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE objects SET state = ?2 WHERE id = ?1",
                params![id, state.as_str()],
            )?;
            Ok(())
        })
    }

    pub fn set_active(&self, id: i64, active: bool, reason: Option<&str>) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE objects SET active = ?2, inactive_reason = ?3 WHERE id = ?1",
                params![id, active as i64, reason],
            )?;
            Ok(())
        })
    }

    /// Removes an object from the catalog; its rowsets stop being live (GC deletes their files
    /// once no pin holds them).
    pub fn drop_object(&self, id: i64) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE rowsets SET live = 0 WHERE tablet_id IN
                   (SELECT t.id FROM tablets t JOIN partitions p ON t.partition_id = p.id WHERE p.object_id = ?1)",
                [id],
            )?;
            c.execute(
                "DELETE FROM tablets WHERE partition_id IN (SELECT id FROM partitions WHERE object_id = ?1)",
                [id],
            )?;
            c.execute("DELETE FROM partitions WHERE object_id = ?1", [id])?;
            c.execute("DELETE FROM objects WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    pub fn insert_function(&self, db_id: Option<i64>, def: &FunctionDef) -> Result<()> {
        self.run(|c| {
            c.execute(
                "INSERT INTO functions (db_id, signature, definition) VALUES (?1, ?2, ?3)",
                params![db_id, def.signature(), to_json(def)?],
            )?;
            Ok(())
        })
    }

    pub fn delete_function(&self, db_id: Option<i64>, signature: &str) -> Result<usize> {
        self.run(|c| {
            c.execute(
                "DELETE FROM functions WHERE db_id IS ?1 AND signature = ?2",
                params![db_id, signature],
            )
        })
    }

    pub fn insert_external_catalog(&self, def: &ExternalCatalogDef) -> Result<()> {
        let mut def = def.clone();
        for (key, value) in &mut def.properties {
            if crate::sql::is_secret_key(key) {
                *value = self.seal(&catalog_context(&def.name, key), value)?;
            }
        }
        let def = &def;
        self.run(|c| {
            c.execute(
                "INSERT INTO external_catalogs (name, definition) VALUES (?1, ?2)",
                params![def.name, to_json(def)?],
            )?;
            Ok(())
        })
    }

    /// Seals external catalogs' credentials an older catalog stored as written.
    pub(super) fn seal_catalog_plaintext(&self) -> Result<()> {
        for def in self.stored_external_catalogs()? {
            let plain = def
                .properties
                .iter()
                .any(|(k, v)| crate::sql::is_secret_key(k) && !super::Sealer::is_sealed(v));
            if plain {
                // Stored again through insert, which seals.
                self.delete_external_catalog(&def.name)?;
                self.insert_external_catalog(&def)?;
            }
        }
        Ok(())
    }

    pub fn delete_external_catalog(&self, name: &str) -> Result<usize> {
        self.run(|c| c.execute("DELETE FROM external_catalogs WHERE name = ?1", [name]))
    }
}

fn catalog_context(catalog: &str, key: &str) -> String {
    format!("catalog {catalog}: {key}")
}
