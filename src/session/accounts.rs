//! CREATE/DROP/ALTER USER, SET PASSWORD, CREATE/DROP ROLE, GRANT/REVOKE, SET ROLE, SET DEFAULT
//! ROLE and SHOW USERS/ROLES/GRANTS against the catalog's accounts. Each statement checks its
//! own privileges here, with what it names (GRANT on SYSTEM, or the privileges it passes on
//! held WITH GRANT OPTION).

use std::collections::BTreeMap;

use super::passwords::{native_hash, sha2_hash};
use super::privileges::{
    self, ActiveRoles, BUILTIN_ROLES, DEFAULT_CATALOG, Effective, Identity, Target, is_builtin_role,
};
use crate::catalog::{AccountRow, GrantRow, Holder, Reader};
use crate::code::Code;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::results::{Output, ResultSet};
use crate::sql::accounts::{
    AccountStatement, Auth, AuthSecret, GrantName, GrantOn, Grantee, ObjectType, PrivilegeList,
    RoleChoice, SetRoleChoice, UserIdentity, quote_sq,
};
use crate::sql::{Ident, Problem, QuotedIdent, Span};

pub const NATIVE: &str = "mysql_native_password";
pub const SHA2: &str = "caching_sha2_password";

fn done(message: &str) -> Output {
    Output::Done {
        message: message.to_string(),
        affected: None,
    }
}

fn problem(code: Code, span: Span, message: impl Into<String>) -> Error {
    Error::at(Problem::new(code, span, message))
}

fn unknown_user(u: &UserIdentity) -> Error {
    problem(
        Code::AccessUnknown,
        u.span,
        format!("user {u} does not exist"),
    )
}

/// Runs an account statement for `identity` (`None`: root). SET ROLE changes `roles`.
pub fn run(
    engine: &mut Engine,
    identity: Option<&Identity>,
    roles: &mut ActiveRoles,
    stmt: &AccountStatement,
) -> Result<Output> {
    let eff = privileges::effective(&engine.catalog().view(), identity)?;
    let need_grant = |eff: &Effective| eff.check(&[privileges::grant_needed()]);
    use AccountStatement as A;
    match stmt {
        A::CreateUser {
            if_not_exists,
            user,
            auth,
            require_ssl,
            default_roles,
            ..
        } => {
            need_grant(&eff)?;
            if user.name == "root" {
                // One root account: another 'root'@'h' would shadow it from h.
                return Err(problem(
                    Code::AccessInvalid,
                    user.span,
                    "the name root is the root account's ('root'@'%') alone",
                ));
            }
            if let Some(choice) = default_roles {
                check_root_role(&eff, choice_names(choice))?;
            }
            let mut row = AccountRow {
                name: user.name.clone(),
                host: user.host.clone(),
                native: None,
                sha2: None,
                plugin: NATIVE.into(),
                require_ssl: require_ssl.unwrap_or(false),
                default_roles: Vec::new(),
                all_default: false,
            };
            if let Some(a) = auth {
                apply_auth(&mut row, a, user.span)?;
            }
            let roles = match default_roles {
                Some(choice) => Some(check_roles_exist(&engine.catalog().view(), choice)?),
                None => None,
            };
            let created = engine.catalog().write(|tx| {
                if !tx.create_account(&row)? {
                    return Ok(false);
                }
                // DEFAULT ROLE at creation grants the roles too (StarRocks does).
                if let Some((list, all)) = &roles {
                    for r in list {
                        tx.grant_role(&holder_of(user), r)?;
                    }
                    let mut row = row.clone();
                    row.default_roles = list.clone();
                    row.all_default = *all;
                    tx.update_account(&row)?;
                }
                Ok(true)
            })?;
            match (created, if_not_exists) {
                (true, _) => Ok(done("Query OK, 0 rows affected")),
                (false, true) => Ok(done("Query OK, 0 rows affected (the user already exists)")),
                (false, false) => Err(problem(
                    Code::AccessExists,
                    user.span,
                    format!("Operation CREATE USER failed for {user}: the user already exists"),
                )),
            }
        }
        A::DropUser {
            if_exists, user, ..
        } => {
            need_grant(&eff)?;
            if user.name == "root" {
                return Err(problem(
                    Code::AccessInvalid,
                    user.span,
                    "the root account cannot be dropped",
                ));
            }
            if holds_root(&engine.catalog().view(), &holder_of(user))? {
                only_root(&eff)?;
            }
            if identity.is_some_and(|i| i.user == user.name && i.host == user.host) {
                return Err(problem(
                    Code::AccessInvalid,
                    user.span,
                    "a session cannot drop its own user",
                ));
            }
            let gone = engine
                .catalog()
                .write(|tx| tx.drop_account(&user.name, &user.host))?;
            match (gone, if_exists) {
                (true, _) => Ok(done("Query OK, 0 rows affected")),
                (false, true) => Ok(done("Query OK, 0 rows affected (no such user)")),
                (false, false) => Err(unknown_user(user)),
            }
        }
        A::AlterUser {
            if_exists,
            user,
            auth,
            require_ssl,
            default_roles,
            ..
        } => {
            let own = identity.is_some_and(|i| i.user == user.name && i.host == user.host);
            // A user may change their own password; anything else needs GRANT, and root's
            // account is root's alone.
            if !(own && require_ssl.is_none() && default_roles.is_none()) {
                need_grant(&eff)?;
            }
            if holds_root(&engine.catalog().view(), &holder_of(user))? {
                only_root(&eff)?;
            }
            if let Some(choice) = default_roles {
                check_root_role(&eff, choice_names(choice))?;
            }
            let Some(mut row) = engine.catalog().view().account(&user.name, &user.host)? else {
                return if *if_exists {
                    Ok(done("Query OK, 0 rows affected (no such user)"))
                } else {
                    Err(unknown_user(user))
                };
            };
            if let Some(a) = auth {
                apply_auth(&mut row, a, user.span)?;
            }
            if let Some(r) = require_ssl {
                row.require_ssl = *r;
            }
            if let Some(choice) = default_roles {
                set_default_roles(engine, &mut row, choice, user)?;
            }
            engine.catalog().write(|tx| tx.update_account(&row))?;
            Ok(done("Query OK, 0 rows affected"))
        }
        A::SetPassword { user, secret, span } => {
            let target = match user {
                Some(u) => u.clone(),
                None => match identity {
                    Some(i) => UserIdentity {
                        name: i.user.clone(),
                        host: i.host.clone(),
                        span: *span,
                    },
                    None => UserIdentity {
                        name: "root".into(),
                        host: "%".into(),
                        span: *span,
                    },
                },
            };
            let own = identity.is_some_and(|i| i.user == target.name && i.host == target.host);
            if !own {
                need_grant(&eff)?;
            }
            if holds_root(&engine.catalog().view(), &holder_of(&target))? {
                only_root(&eff)?;
            }
            let Some(mut row) = engine
                .catalog()
                .view()
                .account(&target.name, &target.host)?
            else {
                return Err(unknown_user(&target));
            };
            apply_auth(
                &mut row,
                &Auth {
                    plugin: None,
                    secret: secret.clone(),
                },
                *span,
            )?;
            engine.catalog().write(|tx| tx.update_account(&row))?;
            Ok(done("Query OK, 0 rows affected"))
        }
        A::CreateRole {
            if_not_exists,
            roles: names,
            comment,
            ..
        } => {
            need_grant(&eff)?;
            for r in names {
                if is_builtin_role(&r.value) {
                    return Err(problem(
                        Code::AccessExists,
                        r.span,
                        format!("{} is a built-in role", r.value),
                    ));
                }
            }
            let comment = comment
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default();
            let existing = engine.catalog().try_write(|tx| -> Result<Vec<Ident>> {
                let mut existing = Vec::new();
                for r in names {
                    if !tx.create_role(&r.value, &comment)? {
                        existing.push(r.clone());
                    }
                }
                if !existing.is_empty() && !if_not_exists {
                    // Nothing is created when one already exists.
                    return Err(role_exists(&existing[0]));
                }
                Ok(existing)
            })?;
            Ok(if existing.is_empty() {
                done("Query OK, 0 rows affected")
            } else {
                done("Query OK, 0 rows affected (the role already exists)")
            })
        }
        A::DropRole {
            if_exists,
            roles: names,
            ..
        } => {
            need_grant(&eff)?;
            for r in names {
                if is_builtin_role(&r.value) {
                    return Err(problem(
                        Code::AccessInvalid,
                        r.span,
                        format!("{} is a built-in role and cannot be dropped", r.value),
                    ));
                }
            }
            engine.catalog().try_write(|tx| -> Result<()> {
                for r in names {
                    if !tx.drop_role(&r.value)? && !if_exists {
                        return Err(unknown_role(r));
                    }
                }
                Ok(())
            })?;
            Ok(done("Query OK, 0 rows affected"))
        }
        A::Grant {
            privileges,
            on,
            grantee,
            ..
        }
        | A::Revoke {
            privileges,
            on,
            grantee,
            ..
        } => {
            let with_grant = matches!(
                stmt,
                A::Grant {
                    with_grant_option: true,
                    ..
                }
            );
            let rows = grant_rows(engine, privileges, on, grantee, with_grant, &eff)?;
            let grant = matches!(stmt, A::Grant { .. });
            let removed = engine.catalog().write(|tx| {
                let mut removed = 0;
                for g in &rows {
                    if grant {
                        tx.grant(g)?;
                    } else if tx.revoke(g)? {
                        removed += 1;
                    }
                }
                Ok(removed)
            })?;
            if !grant && removed == 0 {
                // Nothing held as written: say so, rather than "OK" while access stays.
                return Err(Error::invalid(
                    "the grantee holds none of these privileges as they are written; nothing was revoked",
                    Some(
                        "REVOKE takes a grant as GRANT gave it (ALL TABLES IN DATABASE d is not TABLE d.t): SHOW GRANTS FOR … lists them",
                    ),
                ));
            }
            Ok(done("Query OK, 0 rows affected"))
        }
        A::GrantRoles {
            roles: names,
            grantee,
            ..
        } => {
            need_grant(&eff)?;
            roles_need_root(&engine.catalog().view(), &eff, names)?;
            let holder = check_grantee(&engine.catalog().view(), grantee)?;
            let view = engine.catalog().view();
            for r in names {
                check_role(&view, r)?;
                if let Holder::Role(target) = &holder {
                    // No cycles: the role must not already hold the grantee.
                    if &r.value == target || holds(&view, &r.value, target)? {
                        return Err(problem(
                            Code::AccessInvalid,
                            r.span,
                            format!(
                                "granting {} to role {target} would make a cycle of roles",
                                r.value
                            ),
                        ));
                    }
                }
            }
            engine.catalog().write(|tx| {
                for r in names {
                    tx.grant_role(&holder, &r.value)?;
                }
                Ok(())
            })?;
            Ok(done("Query OK, 0 rows affected"))
        }
        A::RevokeRoles {
            roles: names,
            grantee,
            ..
        } => {
            need_grant(&eff)?;
            roles_need_root(&engine.catalog().view(), &eff, names)?;
            let holder = check_grantee(&engine.catalog().view(), grantee)?;
            for r in names {
                check_role(&engine.catalog().view(), r)?;
                if r.value == "root"
                    && matches!(&holder, Holder::User { name, host } if privileges::is_root_account(name, host))
                {
                    return Err(problem(
                        Code::AccessInvalid,
                        r.span,
                        "the root user always holds the root role",
                    ));
                }
            }
            engine.catalog().write(|tx| {
                for r in names {
                    tx.revoke_role(&holder, &r.value)?;
                }
                Ok(())
            })?;
            Ok(done("Query OK, 0 rows affected"))
        }
        A::SetRole { choice, .. } => {
            let Some(id) = identity else {
                return Ok(done(
                    "Query OK, 0 rows affected (a local session acts as root)",
                ));
            };
            let granted = privileges::granted_roles(&engine.catalog().view(), &id.user, &id.host)?;
            let check = |list: &[Ident]| -> Result<Vec<String>> {
                for r in list {
                    if !granted.contains(&r.value) {
                        return Err(problem(
                            Code::AccessInvalid,
                            r.span,
                            format!("role {} is not granted to {}", r.value, id.quoted()),
                        ));
                    }
                }
                Ok(list.iter().map(|r| r.value.clone()).collect())
            };
            *roles = match choice {
                SetRoleChoice::Default => ActiveRoles::Default,
                SetRoleChoice::None => ActiveRoles::None,
                SetRoleChoice::All { except } => ActiveRoles::All {
                    except: except.iter().map(|r| r.value.clone()).collect(),
                },
                SetRoleChoice::Roles(list) => ActiveRoles::Listed(check(list)?),
            };
            Ok(done("Query OK, 0 rows affected"))
        }
        A::SetDefaultRole { choice, user, .. } => {
            need_grant(&eff)?;
            check_root_role(&eff, choice_names(choice))?;
            if holds_root(&engine.catalog().view(), &holder_of(user))? {
                only_root(&eff)?;
            }
            let Some(mut row) = engine.catalog().view().account(&user.name, &user.host)? else {
                return Err(unknown_user(user));
            };
            set_default_roles(engine, &mut row, choice, user)?;
            engine.catalog().write(|tx| tx.update_account(&row))?;
            Ok(done("Query OK, 0 rows affected"))
        }
        A::ShowUsers { .. } => {
            need_grant(&eff)?;
            let mut rs = ResultSet::new(&["User"]);
            for a in engine.catalog().view().accounts()? {
                rs.push(vec![Some(format!(
                    "{}@{}",
                    quote_sq(&a.name),
                    quote_sq(&a.host)
                ))]);
            }
            Ok(Output::Rows(rs))
        }
        A::ShowRoles { .. } => {
            need_grant(&eff)?;
            let mut rs = ResultSet::new(&["Name", "Builtin", "Comment"]);
            for (name, comment) in BUILTIN_ROLES {
                rs.push(vec![
                    Some(name.to_string()),
                    Some("true".into()),
                    Some(comment.to_string()),
                ]);
            }
            for (name, comment) in engine.catalog().view().roles()? {
                rs.push(vec![Some(name), Some("false".into()), Some(comment)]);
            }
            Ok(Output::Rows(rs))
        }
        A::ShowGrants { of, .. } => {
            let holder = match of {
                None => match identity {
                    Some(i) => i.holder(),
                    None => Holder::User {
                        name: "root".into(),
                        host: "%".into(),
                    },
                },
                Some(g) => {
                    // GRANT first: without it, "does not exist" would tell who exists.
                    let own = matches!(g, Grantee::User(u)
                        if identity.is_some_and(|i| i.user == u.name && i.host == u.host));
                    if !own {
                        need_grant(&eff)?;
                    }
                    check_grantee_any(&engine.catalog().view(), g)?
                }
            };
            let (first, rows) = show_grants(&engine.catalog().view(), &holder)?;
            let mut rs = ResultSet::new(&[first, "Catalog", "Grants"]);
            for r in rows {
                rs.push(r);
            }
            Ok(Output::Rows(rs))
        }
    }
}

/// Root's account and the root role are root's to manage: GRANT (user_admin) is not enough.
fn only_root(eff: &Effective) -> Result<()> {
    if eff.root {
        Ok(())
    } else {
        Err(Error::Denied {
            message: "Access denied; only root may change the root account or grant the root role"
                .into(),
        })
    }
}

/// Whether `holder` is or holds the root role, directly or through roles (an account that
/// holds it is root in all but name: only root may change it).
fn holds_root(view: &Reader<'_>, holder: &Holder) -> Result<bool> {
    let mut queue = match holder {
        Holder::User { name, host } => privileges::granted_roles(view, name, host)?,
        Holder::Role(r) => vec![r.clone()],
    };
    let mut seen = std::collections::BTreeSet::new();
    while let Some(r) = queue.pop() {
        if r == "root" {
            return Ok(true);
        }
        if seen.insert(r.clone()) {
            queue.extend(view.roles_of(&Holder::Role(r))?);
        }
    }
    Ok(false)
}

/// Granting or revoking a role that is or leads to root is root's to do.
fn roles_need_root(view: &Reader<'_>, eff: &Effective, roles: &[Ident]) -> Result<()> {
    for r in roles {
        if holds_root(view, &Holder::Role(r.value.clone()))? {
            only_root(eff)?;
        }
    }
    Ok(())
}

fn check_root_role(eff: &Effective, roles: Vec<&str>) -> Result<()> {
    if roles.contains(&"root") {
        only_root(eff)
    } else {
        Ok(())
    }
}

fn choice_names(choice: &RoleChoice) -> Vec<&str> {
    match choice {
        RoleChoice::Roles(list) => list.iter().map(|r| r.value.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// Sets an account's default roles; each must exist and be granted to it.
fn set_default_roles(
    engine: &mut Engine,
    row: &mut AccountRow,
    choice: &RoleChoice,
    user: &UserIdentity,
) -> Result<()> {
    let (list, all) = check_roles_exist(&engine.catalog().view(), choice)?;
    let granted = privileges::granted_roles(&engine.catalog().view(), &row.name, &row.host)?;
    if let Some(r) = list.iter().find(|r| !granted.contains(r)) {
        return Err(not_granted(r, user));
    }
    row.default_roles = list;
    row.all_default = all;
    Ok(())
}

fn role_exists(r: &Ident) -> Error {
    problem(
        Code::AccessExists,
        r.span,
        format!(
            "Operation CREATE ROLE failed for {}: the role already exists",
            r.value
        ),
    )
}

fn unknown_role(r: &Ident) -> Error {
    problem(
        Code::AccessUnknown,
        r.span,
        format!("role {} does not exist", r.value),
    )
}

fn not_granted(role: &str, user: &UserIdentity) -> Error {
    problem(
        Code::AccessInvalid,
        user.span,
        format!("role {role} is not granted to {user}; GRANT it first"),
    )
}

fn holder_of(u: &UserIdentity) -> Holder {
    Holder::User {
        name: u.name.clone(),
        host: u.host.clone(),
    }
}

fn check_role(view: &Reader<'_>, r: &Ident) -> Result<()> {
    if is_builtin_role(&r.value) || view.role_exists(&r.value)? {
        Ok(())
    } else {
        Err(unknown_role(r))
    }
}

/// The roles a DEFAULT ROLE clause names, each existing; `(roles, all)`.
fn check_roles_exist(view: &Reader<'_>, choice: &RoleChoice) -> Result<(Vec<String>, bool)> {
    Ok(match choice {
        RoleChoice::None => (Vec::new(), false),
        RoleChoice::All => (Vec::new(), true),
        RoleChoice::Roles(list) => {
            for r in list {
                check_role(view, r)?;
            }
            (list.iter().map(|r| r.value.clone()).collect(), false)
        }
    })
}

/// Whether role `role` holds `target`, directly or through other roles.
fn holds(view: &Reader<'_>, role: &str, target: &str) -> Result<bool> {
    let mut seen = std::collections::BTreeSet::new();
    let mut queue = vec![role.to_string()];
    while let Some(r) = queue.pop() {
        if !seen.insert(r.clone()) {
            continue;
        }
        for held in view.roles_of(&Holder::Role(r))? {
            if held == target {
                return Ok(true);
            }
            queue.push(held);
        }
    }
    Ok(false)
}

/// A grantee that exists (built-in roles included: SHOW GRANTS FOR ROLE db_admin lists them).
fn check_grantee_any(view: &Reader<'_>, g: &Grantee) -> Result<Holder> {
    match g {
        Grantee::Role(r) if is_builtin_role(&r.value) => Ok(Holder::Role(r.value.clone())),
        other => check_grantee(view, other),
    }
}

fn check_grantee(view: &Reader<'_>, g: &Grantee) -> Result<Holder> {
    match g {
        Grantee::User(u) => {
            if view.account(&u.name, &u.host)?.is_none() {
                return Err(unknown_user(u));
            }
            Ok(holder_of(u))
        }
        Grantee::Role(r) => {
            check_role(view, r)?;
            if is_builtin_role(&r.value) && r.value != "public" {
                return Err(problem(
                    Code::AccessInvalid,
                    r.span,
                    format!("the privileges of built-in role {} are fixed", r.value),
                ));
            }
            Ok(Holder::Role(r.value.clone()))
        }
    }
}

/// Applies IDENTIFIED … / a new password to an account.
fn apply_auth(row: &mut AccountRow, auth: &Auth, span: Span) -> Result<()> {
    if let Some(p) = &auth.plugin {
        row.plugin = p.clone();
    }
    match &auth.secret {
        AuthSecret::None => {
            row.native = None;
            row.sha2 = None;
        }
        AuthSecret::Password(p) if p.value.is_empty() => {
            row.native = None;
            row.sha2 = None;
        }
        AuthSecret::Password(p) => {
            row.native = Some(native_hash(&p.value));
            row.sha2 = Some(sha2_hash(&p.value));
        }
        AuthSecret::Hash(h) => {
            if row.plugin == SHA2 {
                return Err(problem(
                    Code::AccessInvalid,
                    span,
                    "a caching_sha2_password account needs the password itself (IDENTIFIED WITH caching_sha2_password BY '…'); a native hash cannot answer its challenge",
                ));
            }
            row.native = Some(h.value.clone());
            row.sha2 = None;
        }
    }
    Ok(())
}

/// The rows a GRANT or REVOKE adds or removes; every named object must exist.
fn grant_rows(
    engine: &mut Engine,
    privileges: &PrivilegeList,
    on: &GrantOn,
    grantee: &Grantee,
    with_grant: bool,
    eff: &Effective,
) -> Result<Vec<GrantRow>> {
    // Whether the granter may pass these on is judged first, with the grantee still unknown:
    // an error saying a user or role does not exist is for those who may grant. One who holds
    // no GRANT and no grant option at all is refused before any name is looked up.
    if !eff.root
        && !eff.allows("GRANT", &Target::system())
        && !eff.grants.iter().any(|g| g.with_grant)
    {
        return Err(eff.denied(&privileges::grant_needed()));
    }
    let placeholder = Holder::Role(String::new());
    let kind = on.kind();
    let names: Vec<String> = match privileges {
        PrivilegeList::All => kind.privileges().iter().map(|p| p.to_string()).collect(),
        PrivilegeList::Named(n) => n.clone(),
    };
    let mut scopes: Vec<(Option<String>, Option<String>)> = Vec::new();
    match on {
        GrantOn::System => scopes.push((None, None)),
        GrantOn::All { database, .. } => {
            if let Some(db) = database {
                engine.database(db)?;
            }
            scopes.push((database.as_ref().map(|d| d.value.clone()), None));
        }
        GrantOn::Named { kind, names } => {
            for n in names {
                scopes.push(resolve_named(engine, *kind, n)?);
            }
        }
    }
    let mut rows = Vec::new();
    for (db, name) in scopes {
        for p in &names {
            rows.push(GrantRow {
                holder: placeholder.clone(),
                privilege: p.clone(),
                kind: kind.keyword().to_string(),
                db: db.clone(),
                name: name.clone(),
                with_grant,
            });
        }
    }
    check_may_grant(eff, &rows)?;
    let holder = check_grantee(&engine.catalog().view(), grantee)?;
    for r in &mut rows {
        r.holder = holder.clone();
    }
    Ok(rows)
}

/// `(db, name)` of an object a GRANT names, checked to exist and to be of `kind`.
fn resolve_named(
    engine: &mut Engine,
    kind: ObjectType,
    n: &GrantName,
) -> Result<(Option<String>, Option<String>)> {
    match (kind, n) {
        (ObjectType::Database, GrantName::Object(q)) => {
            let db = engine.database(&q.name)?;
            Ok((None, Some(db.name)))
        }
        (ObjectType::Catalog, GrantName::Object(q)) => {
            let name = &q.name.value;
            let known = name == DEFAULT_CATALOG
                || engine
                    .catalog()
                    .view()
                    .external_catalogs()?
                    .iter()
                    .any(|c| &c.name == name);
            if !known {
                return Err(problem(
                    Code::AccessUnknown,
                    q.name.span,
                    format!("catalog {name} does not exist"),
                ));
            }
            Ok((None, Some(name.clone())))
        }
        (ObjectType::User, GrantName::User(u)) => {
            if engine.catalog().view().account(&u.name, &u.host)?.is_none() {
                return Err(unknown_user(u));
            }
            Ok((
                None,
                Some(format!("{}@{}", quote_sq(&u.name), quote_sq(&u.host))),
            ))
        }
        (ObjectType::GlobalFunction, GrantName::Function { name, .. }) => {
            let exists = engine
                .catalog()
                .view()
                .functions(None)?
                .iter()
                .any(|f| f.name == name.name.value);
            if !exists {
                return Err(problem(
                    Code::AccessUnknown,
                    name.name.span,
                    format!("global function {} does not exist", name.name),
                ));
            }
            Ok((None, Some(name.name.value.clone())))
        }
        (ObjectType::Function, GrantName::Function { name, .. }) => {
            let db = engine.database_of(name, None)?;
            let exists = engine
                .catalog()
                .view()
                .functions(Some(db.id))?
                .iter()
                .any(|f| f.name == name.name.value);
            if !exists {
                return Err(problem(
                    Code::AccessUnknown,
                    name.name.span,
                    format!("function {}.{} does not exist", db.name, name.name),
                ));
            }
            Ok((Some(db.name), Some(name.name.value.clone())))
        }
        (kind, GrantName::Object(q)) => {
            let (db, obj) = engine.object(q, None)?;
            let actual = match obj.def.kind() {
                crate::catalog::ObjectKind::Table => ObjectType::Table,
                crate::catalog::ObjectKind::View => ObjectType::View,
                crate::catalog::ObjectKind::MaterializedView => ObjectType::MaterializedView,
            };
            if actual != kind {
                return Err(problem(
                    Code::AccessInvalid,
                    q.span(),
                    format!(
                        "{}.{} is a {}, not a {}",
                        db.name,
                        obj.name,
                        actual.keyword().to_ascii_lowercase(),
                        kind.keyword().to_ascii_lowercase()
                    ),
                ));
            }
            Ok((Some(db.name), Some(obj.name)))
        }
        _ => Err(Error::invalid(
            "this GRANT names no object of its kind",
            None,
        )),
    }
}

fn check_may_grant(eff: &Effective, rows: &[GrantRow]) -> Result<()> {
    for g in rows {
        let kind = object_type(&g.kind);
        let on = Target {
            kind,
            db: g.db.clone(),
            name: g.name.clone(),
        };
        if !eff.may_grant(&g.privilege, &on) {
            // Neither GRANT nor this privilege WITH GRANT OPTION.
            return Err(eff.denied(&privileges::Need::any(vec!["GRANT"], Target::system())));
        }
    }
    Ok(())
}

fn object_type(keyword: &str) -> ObjectType {
    ObjectType::from_keyword(keyword).unwrap_or(ObjectType::System)
}

/// How a grant's object is written in a GRANT statement.
fn grant_object_text(kind: ObjectType, db: Option<&str>, name: Option<&str>) -> String {
    let q = |s: &str| QuotedIdent(s).to_string();
    match (kind, db, name) {
        (ObjectType::System, _, _) => "SYSTEM".into(),
        (ObjectType::User, _, Some(n)) => format!("USER {n}"),
        (ObjectType::Function, Some(d), Some(n)) => {
            format!("FUNCTION {}.{}()", q(d), q(n))
        }
        (ObjectType::GlobalFunction, _, Some(n)) => format!("GLOBAL FUNCTION {}()", q(n)),
        (k, Some(d), Some(n)) => format!("{} {}.{}", k.keyword(), q(d), q(n)),
        (k, None, Some(n)) => format!("{} {}", k.keyword(), q(n)),
        (k, Some(d), None) => format!("ALL {} IN DATABASE {}", k.plural(), q(d)),
        (k, None, None) if k.in_database() => format!("ALL {} IN ALL DATABASES", k.plural()),
        (k, None, None) => format!("ALL {}", k.plural()),
    }
}

fn holder_text(h: &Holder) -> String {
    match h {
        Holder::User { name, host } => format!("USER {}@{}", quote_sq(name), quote_sq(host)),
        Holder::Role(r) => format!("ROLE {}", QuotedIdent(r)),
    }
}

/// The GRANT statements that give `holder` what it has: roles first, then privileges grouped
/// per object (and grant option). Re-running them reproduces the holder's grants.
pub fn grant_statements(view: &Reader<'_>, holder: &Holder) -> Result<Vec<(bool, String)>> {
    let mut out = Vec::new();
    let mut roles = view.roles_of(holder)?;
    if let Holder::User { name, .. } = holder
        && name == "root"
    {
        roles.retain(|r| r != "root");
    }
    if !roles.is_empty() {
        let list: Vec<String> = roles.iter().map(|r| QuotedIdent(r).to_string()).collect();
        out.push((
            false,
            format!("GRANT {} TO {}", list.join(", "), holder_text(holder)),
        ));
    }
    let mut grants = view.grants_of(holder)?;
    if let Holder::Role(r) = holder {
        grants.extend(privileges_builtin(r));
    }
    type Key = (String, Option<String>, Option<String>, bool);
    let mut grouped: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    for g in grants {
        grouped
            .entry((g.kind.clone(), g.db.clone(), g.name.clone(), g.with_grant))
            .or_default()
            .push(g.privilege);
    }
    for ((kind, db, name, with_grant), privs) in grouped {
        let kind = object_type(&kind);
        let object = grant_object_text(kind, db.as_deref(), name.as_deref());
        let mut text = format!(
            "GRANT {} ON {object} TO {}",
            privs.join(", "),
            holder_text(holder)
        );
        if with_grant {
            text.push_str(" WITH GRANT OPTION");
        }
        out.push((kind != ObjectType::System, text));
    }
    Ok(out)
}

fn privileges_builtin(role: &str) -> Vec<GrantRow> {
    privileges::builtin_grants(role)
}

/// SHOW GRANTS rows: the identity (or role), the catalog (NULL for SYSTEM and roles), the
/// statement.
fn show_grants(
    view: &Reader<'_>,
    holder: &Holder,
) -> Result<(&'static str, Vec<Vec<Option<String>>>)> {
    let (first, who) = match holder {
        Holder::User { name, host } => (
            "UserIdentity",
            format!("{}@{}", quote_sq(name), quote_sq(host)),
        ),
        Holder::Role(r) => ("RoleName", r.clone()),
    };
    let mut rows = Vec::new();
    if let Holder::User { name, .. } = holder
        && name == "root"
    {
        rows.push(vec![
            Some(who.clone()),
            None,
            Some(format!("GRANT root TO {}", holder_text(holder))),
        ]);
    }
    for (in_catalog, text) in grant_statements(view, holder)? {
        rows.push(vec![
            Some(who.clone()),
            in_catalog.then(|| DEFAULT_CATALOG.to_string()),
            Some(text),
        ]);
    }
    Ok((first, rows))
}
