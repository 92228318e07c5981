//! Users, roles and grants (schema v6): who may connect, with which password hashes, and what
//! each user and role may do. Passwords are stored only as the hashes the MySQL protocol's
//! challenges need (`SHA1(SHA1(p))` for `mysql_native_password`, `SHA256(SHA256(p))` for
//! `caching_sha2_password`'s fast path), never as given.

use rusqlite::{OptionalExtension, params};

use super::{Reader, Result, Tx, now};

/// StarRocks' built-in roles and what SHOW ROLES says of them.
pub const BUILTIN_ROLES: &[(&str, &str)] = &[
    (
        "root",
        "built-in root role which has all privileges on all objects",
    ),
    (
        "db_admin",
        "built-in database administration role which has all privileges on all databases, tables, views, materialized views and functions",
    ),
    (
        "cluster_admin",
        "built-in cluster administration role which has the NODE privilege",
    ),
    (
        "user_admin",
        "built-in user administration role which has the GRANT privilege and IMPERSONATE on all users",
    ),
    (
        "public",
        "built-in role held by every user: SELECT on information_schema",
    ),
];

/// Whether `name` is one of StarRocks' built-in roles (not stored: their privileges are fixed).
pub fn is_builtin_role(name: &str) -> bool {
    BUILTIN_ROLES.iter().any(|(r, _)| *r == name)
}

/// The native hash of an account that has a password nobody knows (see `AccountRow::native`).
pub const LOCKED: &str = "!";

/// One account: a user at a host pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    pub name: String,
    /// `%`, an address, or a pattern with `%` and `_`.
    pub host: String,
    /// `*` and 40 upper-case hex digits; `None` with `sha2` also `None`: no password.
    /// [`LOCKED`]: a password exists but no hash is known (an account restored without its
    /// hashes): nothing logs in until ALTER USER sets one.
    pub native: Option<String>,
    /// 64 hex digits of `SHA256(SHA256(password))`; `None` when only the native hash is known
    /// (an account created from a hash).
    pub sha2: Option<String>,
    /// The plugin the server asks this user's client for.
    pub plugin: String,
    pub require_ssl: bool,
    /// Roles active at login; `all_default` means every granted role.
    pub default_roles: Vec<String>,
    pub all_default: bool,
}

impl AccountRow {
    pub fn has_password(&self) -> bool {
        self.native.is_some() || self.sha2.is_some()
    }
}

/// Who holds a grant or a role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holder {
    User { name: String, host: String },
    Role(String),
}

impl Holder {
    fn key(&self) -> (&'static str, &str, &str) {
        match self {
            Holder::User { name, host } => ("user", name, host),
            Holder::Role(r) => ("role", r, ""),
        }
    }
}

/// One privilege on one object (or on all objects of a kind: `None` is "all").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantRow {
    pub holder: Holder,
    pub privilege: String,
    /// The object type's keyword (`TABLE`, `MATERIALIZED VIEW`, `SYSTEM`…).
    pub kind: String,
    /// The database of objects that live in one; `None`: all databases.
    pub db: Option<String>,
    /// The object; `None`: every object of the kind (in `db`).
    pub name: Option<String>,
    pub with_grant: bool,
}

const ACCOUNT_COLUMNS: &str =
    "name, host, native, sha2, plugin, require_ssl, default_roles, all_default";

fn account_from_row(r: &rusqlite::Row) -> rusqlite::Result<AccountRow> {
    let roles: String = r.get(6)?;
    Ok(AccountRow {
        name: r.get(0)?,
        host: r.get(1)?,
        native: r.get(2)?,
        sha2: r.get(3)?,
        plugin: r.get(4)?,
        require_ssl: r.get::<_, i64>(5)? != 0,
        default_roles: serde_json::from_str(&roles).unwrap_or_default(),
        all_default: r.get::<_, i64>(7)? != 0,
    })
}

fn holder_from(kind: &str, name: String, host: String) -> Holder {
    if kind == "role" {
        Holder::Role(name)
    } else {
        Holder::User { name, host }
    }
}

fn grant_from_row(r: &rusqlite::Row) -> rusqlite::Result<GrantRow> {
    let kind: String = r.get(0)?;
    let db: String = r.get(5)?;
    let name: String = r.get(6)?;
    Ok(GrantRow {
        holder: holder_from(&kind, r.get(1)?, r.get(2)?),
        privilege: r.get(3)?,
        kind: r.get(4)?,
        db: (!db.is_empty()).then_some(db),
        name: (!name.is_empty()).then_some(name),
        with_grant: r.get::<_, i64>(7)? != 0,
    })
}

const GRANT_COLUMNS: &str =
    "holder_kind, holder_name, holder_host, privilege, kind, db, name, with_grant";

impl Reader<'_> {
    pub fn accounts(&self) -> Result<Vec<AccountRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name, host"
            ))?;
            stmt.query_map([], account_from_row)?.collect()
        })
    }

    pub fn account(&self, name: &str, host: &str) -> Result<Option<AccountRow>> {
        self.run(|c| {
            c.query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1 AND host = ?2"),
                [name, host],
                account_from_row,
            )
            .optional()
        })
    }

    /// The accounts named `name` (at any host).
    pub fn accounts_named(&self, name: &str) -> Result<Vec<AccountRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1 ORDER BY host"
            ))?;
            stmt.query_map([name], account_from_row)?.collect()
        })
    }

    /// `(name, comment)` of every role created with CREATE ROLE.
    pub fn roles(&self) -> Result<Vec<(String, String)>> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT name, comment FROM roles ORDER BY name")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    pub fn role_exists(&self, name: &str) -> Result<bool> {
        self.run(|c| {
            c.query_row("SELECT count(*) FROM roles WHERE name = ?1", [name], |r| {
                r.get::<_, i64>(0).map(|n| n > 0)
            })
        })
    }

    /// The roles granted to `holder` directly.
    pub fn roles_of(&self, holder: &Holder) -> Result<Vec<String>> {
        let (kind, name, host) = holder.key();
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT role FROM role_grants WHERE holder_kind = ?1 AND holder_name = ?2 AND holder_host = ?3 ORDER BY role",
            )?;
            stmt.query_map([kind, name, host], |r| r.get(0))?.collect()
        })
    }

    /// Every holder of `role`.
    pub fn holders_of(&self, role: &str) -> Result<Vec<Holder>> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT holder_kind, holder_name, holder_host FROM role_grants WHERE role = ?1
                 ORDER BY holder_kind, holder_name, holder_host",
            )?;
            stmt.query_map([role], |r| {
                let kind: String = r.get(0)?;
                Ok(holder_from(&kind, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })
    }

    /// The privileges granted to `holder` directly.
    pub fn grants_of(&self, holder: &Holder) -> Result<Vec<GrantRow>> {
        let (kind, name, host) = holder.key();
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {GRANT_COLUMNS} FROM grants
                 WHERE holder_kind = ?1 AND holder_name = ?2 AND holder_host = ?3
                 ORDER BY kind, db, name, privilege"
            ))?;
            stmt.query_map([kind, name, host], grant_from_row)?
                .collect()
        })
    }

    /// Every grant, for backing privileges up.
    pub fn all_grants(&self) -> Result<Vec<GrantRow>> {
        self.run(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {GRANT_COLUMNS} FROM grants
                 ORDER BY holder_kind, holder_name, holder_host, kind, db, name, privilege"
            ))?;
            stmt.query_map([], grant_from_row)?.collect()
        })
    }

    /// Every `(holder, role)` membership.
    pub fn all_role_grants(&self) -> Result<Vec<(Holder, String)>> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT holder_kind, holder_name, holder_host, role FROM role_grants
                 ORDER BY holder_kind, holder_name, holder_host, role",
            )?;
            stmt.query_map([], |r| {
                let kind: String = r.get(0)?;
                Ok((holder_from(&kind, r.get(1)?, r.get(2)?), r.get(3)?))
            })?
            .collect()
        })
    }
}

impl Tx<'_> {
    /// Adds an account; `false` if `name@host` exists.
    pub fn create_account(&self, a: &AccountRow) -> Result<bool> {
        self.run(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO accounts (name, host, native, sha2, plugin, require_ssl, default_roles, all_default, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    a.name,
                    a.host,
                    a.native,
                    a.sha2,
                    a.plugin,
                    a.require_ssl as i64,
                    serde_json::to_string(&a.default_roles).unwrap_or_else(|_| "[]".into()),
                    a.all_default as i64,
                    now()
                ],
            )?;
            Ok(n == 1)
        })
    }

    /// Replaces an account's password, plugin, TLS requirement and default roles.
    pub fn update_account(&self, a: &AccountRow) -> Result<bool> {
        self.run(|c| {
            let n = c.execute(
                "UPDATE accounts SET native = ?3, sha2 = ?4, plugin = ?5, require_ssl = ?6,
                   default_roles = ?7, all_default = ?8 WHERE name = ?1 AND host = ?2",
                params![
                    a.name,
                    a.host,
                    a.native,
                    a.sha2,
                    a.plugin,
                    a.require_ssl as i64,
                    serde_json::to_string(&a.default_roles).unwrap_or_else(|_| "[]".into()),
                    a.all_default as i64,
                ],
            )?;
            Ok(n == 1)
        })
    }

    /// Removes an account with its grants and roles; `false` if there was none.
    pub fn drop_account(&self, name: &str, host: &str) -> Result<bool> {
        self.run(|c| {
            let n = c.execute(
                "DELETE FROM accounts WHERE name = ?1 AND host = ?2",
                [name, host],
            )?;
            c.execute(
                "DELETE FROM grants WHERE holder_kind = 'user' AND holder_name = ?1 AND holder_host = ?2",
                [name, host],
            )?;
            c.execute(
                "DELETE FROM role_grants WHERE holder_kind = 'user' AND holder_name = ?1 AND holder_host = ?2",
                [name, host],
            )?;
            // Grants on the user itself (IMPERSONATE), named as GRANT writes it.
            let quoted = format!(
                "{}@{}",
                crate::sql::accounts::quote_sq(name),
                crate::sql::accounts::quote_sq(host)
            );
            c.execute(
                "DELETE FROM grants WHERE kind = 'USER' AND name = ?1",
                [quoted],
            )?;
            Ok(n == 1)
        })
    }

    pub fn create_role(&self, name: &str, comment: &str) -> Result<bool> {
        self.run(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO roles (name, comment, created_at) VALUES (?1, ?2, ?3)",
                params![name, comment, now()],
            )?;
            Ok(n == 1)
        })
    }

    /// Removes a role, its grants and every membership in it or of it.
    pub fn drop_role(&self, name: &str) -> Result<bool> {
        self.run(|c| {
            let n = c.execute("DELETE FROM roles WHERE name = ?1", [name])?;
            c.execute(
                "DELETE FROM grants WHERE holder_kind = 'role' AND holder_name = ?1",
                [name],
            )?;
            c.execute(
                "DELETE FROM role_grants WHERE role = ?1 OR (holder_kind = 'role' AND holder_name = ?1)",
                [name],
            )?;
            Ok(n == 1)
        })
    }

    /// Grants a privilege (again: WITH GRANT OPTION is kept once given).
    pub fn grant(&self, g: &GrantRow) -> Result<()> {
        let (kind, name, host) = g.holder.key();
        self.run(|c| {
            c.execute(
                "INSERT INTO grants (holder_kind, holder_name, holder_host, privilege, kind, db, name, with_grant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (holder_kind, holder_name, holder_host, privilege, kind, db, name)
                 DO UPDATE SET with_grant = max(with_grant, excluded.with_grant)",
                params![
                    kind,
                    name,
                    host,
                    g.privilege,
                    g.kind,
                    g.db.as_deref().unwrap_or(""),
                    g.name.as_deref().unwrap_or(""),
                    g.with_grant as i64
                ],
            )?;
            Ok(())
        })
    }

    /// Revokes exactly this grant; `false` if it was not held.
    pub fn revoke(&self, g: &GrantRow) -> Result<bool> {
        let (kind, name, host) = g.holder.key();
        self.run(|c| {
            let n = c.execute(
                "DELETE FROM grants WHERE holder_kind = ?1 AND holder_name = ?2 AND holder_host = ?3
                   AND privilege = ?4 AND kind = ?5 AND db = ?6 AND name = ?7",
                params![
                    kind,
                    name,
                    host,
                    g.privilege,
                    g.kind,
                    g.db.as_deref().unwrap_or(""),
                    g.name.as_deref().unwrap_or("")
                ],
            )?;
            Ok(n > 0)
        })
    }

    /// Forgets the grants naming a dropped object (`kind`'s keyword, its database, its name):
    /// an object created again under the name starts without them, as in StarRocks, whose
    /// grants follow objects, not names.
    pub fn drop_grants_on(&self, kind: &str, db: Option<&str>, name: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "DELETE FROM grants WHERE kind = ?1 AND db = ?2 AND name = ?3",
                params![kind, db.unwrap_or(""), name],
            )?;
            Ok(())
        })
    }

    /// Moves the grants on a renamed object to its new name.
    pub fn rename_grants(&self, kind: &str, db: &str, from: &str, to: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "UPDATE OR REPLACE grants SET name = ?4 WHERE kind = ?1 AND db = ?2 AND name = ?3",
                params![kind, db, from, to],
            )?;
            Ok(())
        })
    }

    /// Forgets the grants on a dropped database and on everything in it.
    pub fn drop_grants_in_database(&self, db: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "DELETE FROM grants WHERE (kind = 'DATABASE' AND name = ?1) OR (db = ?1 AND kind != 'SYSTEM')",
                [db],
            )?;
            Ok(())
        })
    }

    pub fn grant_role(&self, holder: &Holder, role: &str) -> Result<()> {
        let (kind, name, host) = holder.key();
        self.run(|c| {
            c.execute(
                "INSERT OR IGNORE INTO role_grants (holder_kind, holder_name, holder_host, role) VALUES (?1, ?2, ?3, ?4)",
                [kind, name, host, role],
            )?;
            Ok(())
        })
    }

    pub fn revoke_role(&self, holder: &Holder, role: &str) -> Result<bool> {
        let (kind, name, host) = holder.key();
        self.run(|c| {
            let n = c.execute(
                "DELETE FROM role_grants WHERE holder_kind = ?1 AND holder_name = ?2 AND holder_host = ?3 AND role = ?4",
                [kind, name, host, role],
            )?;
            Ok(n > 0)
        })
    }
}
