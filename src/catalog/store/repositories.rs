//! Repositories registered with CREATE REPOSITORY.

use rusqlite::{OptionalExtension, params};

use super::{Reader, Result, Tx, from_json, now, to_json};

/// A repository as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryRow {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub read_only: bool,
    pub location: String,
    pub broker: Option<String>,
    /// The properties as written (credentials included: opened from their sealed form).
    pub properties: Vec<(String, String)>,
    /// The last failure reaching it, with its time.
    pub err_msg: Option<String>,
    /// Why a sealed credential could not be opened (its key file is missing, say); the
    /// property then holds its sealed form.
    pub sealed_error: Option<String>,
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
        sealed_error: None,
    })
}

fn context(repository: &str, key: &str) -> String {
    format!("repository {repository}: {key}")
}

const REPOSITORY_COLUMNS: &str =
    "id, name, created_at, read_only, location, broker, properties, err_msg";

impl Reader<'_> {
    pub fn repositories(&self) -> Result<Vec<RepositoryRow>> {
        let rows: Vec<RepositoryRow> = self.run(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {REPOSITORY_COLUMNS} FROM repositories ORDER BY id"
            ))?;
            st.query_map([], repository_from_row)?.collect()
        })?;
        Ok(rows.into_iter().map(|r| self.opened(r)).collect())
    }

    pub fn repository(&self, name: &str) -> Result<Option<RepositoryRow>> {
        let row = self.run(|c| {
            c.query_row(
                &format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name = ?1"),
                [name],
                repository_from_row,
            )
            .optional()
        })?;
        Ok(row.map(|r| self.opened(r)))
    }

    /// A row with its sealed credentials opened (or why they cannot be).
    fn opened(&self, mut row: RepositoryRow) -> RepositoryRow {
        for (key, value) in &mut row.properties {
            match self.sealer.open(&context(&row.name, key), value) {
                Ok(plain) => *value = plain,
                Err(e) => row.sealed_error = Some(e),
            }
        }
        row
    }
}

impl Tx<'_> {
    pub fn insert_repository(
        &self,
        name: &str,
        read_only: bool,
        location: &str,
        broker: Option<&str>,
        properties: &[(String, String)],
    ) -> Result<i64> {
        let properties = properties
            .iter()
            .map(|(k, v)| {
                if crate::sql::is_secret_key(k) {
                    self.seal(&context(name, k), v).map(|v| (k.clone(), v))
                } else {
                    Ok((k.clone(), v.clone()))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        self.run(|c| {
            c.execute(
                "INSERT INTO repositories (name, created_at, read_only, location, broker, properties) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, now(), read_only, location, broker, to_json(&properties)?],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Seals the credentials an older catalog stored as written (the migration to schema 4).
    pub(super) fn seal_plaintext(&self) -> Result<()> {
        let rows: Vec<RepositoryRow> = self.run(|c| {
            let mut st = c.prepare(&format!("SELECT {REPOSITORY_COLUMNS} FROM repositories"))?;
            st.query_map([], repository_from_row)?.collect()
        })?;
        for row in rows {
            let plain = row
                .properties
                .iter()
                .any(|(k, v)| crate::sql::is_secret_key(k) && !super::Sealer::is_sealed(v));
            if !plain {
                continue;
            }
            let mut properties = Vec::new();
            for (k, v) in &row.properties {
                let v = if crate::sql::is_secret_key(k) && !super::Sealer::is_sealed(v) {
                    self.seal(&context(&row.name, k), v)?
                } else {
                    v.clone()
                };
                properties.push((k.clone(), v));
            }
            self.run(|c| {
                c.execute(
                    "UPDATE repositories SET properties = ?2 WHERE id = ?1",
                    params![row.id, to_json(&properties)?],
                )?;
                Ok(())
            })?;
        }
        self.seal_catalog_plaintext()
    }

    pub fn delete_repository(&self, name: &str) -> Result<usize> {
        self.run(|c| c.execute("DELETE FROM repositories WHERE name = ?1", [name]))
    }

    /// Records (or clears) the last failure reaching a repository.
    pub fn set_repository_error(&self, name: &str, error: Option<&str>) -> Result<()> {
        let stamped = error.map(|e| format!("{} {e}", now()));
        self.run(|c| {
            c.execute(
                "UPDATE repositories SET err_msg = ?2 WHERE name = ?1",
                params![name, stamped],
            )?;
            Ok(())
        })
    }
}
