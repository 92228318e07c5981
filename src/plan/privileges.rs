//! Privileges in snapshots (srbackup's `privileges` property): which users, roles and grants a
//! BACKUP takes along, and how a RESTORE maps them onto its targets (AS renames followed).
//! Plans list them without password hashes; the executor adds those to the manifest only for
//! `users_with_passwords`, read from the catalog as the manifest is written.

use std::collections::BTreeMap;

use crate::catalog::{GrantRow, Holder, Reader};
use crate::error::Result;
use crate::repo::format::{
    GrantEntry, HolderEntry, PrivilegeSet, RoleEntry, RoleGrantEntry, UserEntry,
};
use crate::sql::options::PrivilegeScope;

pub fn holder_entry(h: &Holder) -> HolderEntry {
    match h {
        Holder::User { name, host } => HolderEntry {
            name: name.clone(),
            host: Some(host.clone()),
        },
        Holder::Role(r) => HolderEntry {
            name: r.clone(),
            host: None,
        },
    }
}

pub fn holder_of(h: &HolderEntry) -> Holder {
    match &h.host {
        Some(host) => Holder::User {
            name: h.name.clone(),
            host: host.clone(),
        },
        None => Holder::Role(h.name.clone()),
    }
}

fn grant_entry(g: &GrantRow) -> GrantEntry {
    GrantEntry {
        holder: holder_entry(&g.holder),
        privilege: g.privilege.clone(),
        kind: g.kind.clone(),
        db: g.db.clone(),
        name: g.name.clone(),
        with_grant: g.with_grant,
    }
}

/// What a backup of `db`'s `objects` (tables, views, MVs by name), `functions` (by name) and
/// external `catalogs` takes along.
pub fn for_backup(
    reader: &Reader<'_>,
    scope: PrivilegeScope,
    db: Option<&str>,
    objects: &[String],
    functions: &[String],
    catalogs: &[String],
) -> Result<PrivilegeSet> {
    let concerns = |g: &GrantRow| -> bool {
        match g.kind.as_str() {
            "DATABASE" => db.is_some() && g.name.as_deref() == db,
            "TABLE" | "VIEW" | "MATERIALIZED VIEW" => {
                db.is_some()
                    && g.db.as_deref() == db
                    && g.name.as_ref().is_none_or(|n| objects.contains(n))
            }
            "FUNCTION" => {
                db.is_some()
                    && g.db.as_deref() == db
                    && g.name.as_ref().is_none_or(|n| functions.contains(n))
            }
            "CATALOG" => g.name.as_ref().is_some_and(|n| catalogs.contains(n)),
            _ => false,
        }
    };
    let all = reader.all_grants()?;
    let mut set = PrivilegeSet::default();
    if scope == PrivilegeScope::Grants {
        set.grants = all
            .iter()
            .filter(|g| concerns(g))
            .map(grant_entry)
            .collect();
        return Ok(set);
    }
    // Users and roles: the cluster's accounts whole (no password hashes here).
    set.users = reader
        .accounts()?
        .into_iter()
        .map(|a| UserEntry {
            has_password: a.has_password(),
            name: a.name,
            host: a.host,
            plugin: a.plugin,
            require_ssl: a.require_ssl,
            default_roles: a.default_roles,
            all_default: a.all_default,
            native_hash: None,
            sha2_hash: None,
        })
        .collect();
    set.roles = reader
        .roles()?
        .into_iter()
        .map(|(name, comment)| RoleEntry { name, comment })
        .collect();
    set.role_grants = reader
        .all_role_grants()?
        .iter()
        .map(|(h, role)| RoleGrantEntry {
            holder: holder_entry(h),
            role: role.clone(),
        })
        .collect();
    set.grants = all.iter().map(grant_entry).collect();
    Ok(set)
}

/// The snapshot's privileges as they land: grants on the snapshot's database follow
/// `DATABASE x AS y`, grants on a restored object follow its `AS` name; grants on objects of
/// the snapshot's database that this restore does not bring are left out (they would name
/// nothing, or something else).
pub fn for_restore(
    set: &PrivilegeSet,
    source_db: Option<&str>,
    target_db: Option<&str>,
    restored: &BTreeMap<String, String>,
    functions: &BTreeMap<String, String>,
    whole_database: bool,
) -> PrivilegeSet {
    let mut out = PrivilegeSet {
        users: set
            .users
            .iter()
            .map(|u| UserEntry {
                native_hash: None,
                sha2_hash: None,
                ..u.clone()
            })
            .collect(),
        roles: set.roles.clone(),
        role_grants: set.role_grants.clone(),
        grants: Vec::new(),
    };
    for g in &set.grants {
        let mut g = g.clone();
        let in_source = source_db.is_some() && g.db.as_deref() == source_db;
        match g.kind.as_str() {
            "DATABASE" if source_db.is_some() && g.name.as_deref() == source_db => {
                g.name = target_db.map(str::to_string);
            }
            "TABLE" | "VIEW" | "MATERIALIZED VIEW" | "FUNCTION" if in_source => {
                let map = if g.kind == "FUNCTION" {
                    functions
                } else {
                    restored
                };
                match &g.name {
                    Some(n) => match map.get(n) {
                        Some(target) => g.name = Some(target.clone()),
                        None => continue,
                    },
                    // ALL … IN DATABASE: only when the database comes back whole.
                    None if !whole_database => continue,
                    None => {}
                }
                g.db = target_db.map(str::to_string);
            }
            _ => {}
        }
        out.grants.push(g);
    }
    out.grants.sort();
    out.grants.dedup();
    out
}
