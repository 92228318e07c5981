//! Who may do what: the one place a statement's privileges are checked, before anything is
//! planned or touched.
//!
//! [`needs`] says which privileges a statement needs on which objects (StarRocks' rules, from
//! its `AuthorizerStmtVisitor` and the BACKUP/RESTORE pages); [`effective`] reads what a user
//! holds, directly and through the roles active in the session (and the roles those roles
//! hold), fresh from the catalog for every statement, so a REVOKE takes effect on the next
//! statement of an open session. A session without an identity (`srbackup sql` on the machine
//! that holds the files) acts as `root`.

use std::collections::BTreeSet;

use crate::catalog::{GrantRow, Holder, ObjectDef, ObjectKind, Reader};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::sql::accounts::ObjectType;
use crate::sql::{self, CatalogSelection, ObjectRef, QualifiedName, Restore, Show, Statement};

pub use crate::catalog::{BUILTIN_ROLES, is_builtin_role};

/// The catalog the embedded engine's databases live in.
pub const DEFAULT_CATALOG: &str = "default_catalog";

/// Which of a user's roles a session has active (`SET ROLE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActiveRoles {
    /// The account's default roles (the state at login).
    Default,
    None,
    All {
        except: Vec<String>,
    },
    Listed(Vec<String>),
}

/// The user a session acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// The host pattern of the account the login matched.
    pub host: String,
    pub roles: ActiveRoles,
}

impl Identity {
    pub fn new(user: &str, host: &str) -> Identity {
        Identity {
            user: user.to_string(),
            host: host.to_string(),
            roles: ActiveRoles::Default,
        }
    }

    /// `'user'@'host'`, as StarRocks prints an identity.
    pub fn quoted(&self) -> String {
        format!(
            "{}@{}",
            sql::accounts::quote_sq(&self.user),
            sql::accounts::quote_sq(&self.host)
        )
    }

    pub fn holder(&self) -> Holder {
        Holder::User {
            name: self.user.clone(),
            host: self.host.clone(),
        }
    }
}

/// An object a privilege is needed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: ObjectType,
    pub db: Option<String>,
    pub name: Option<String>,
}

impl Target {
    pub fn system() -> Target {
        Target {
            kind: ObjectType::System,
            db: None,
            name: None,
        }
    }
    fn catalog() -> Target {
        Target {
            kind: ObjectType::Catalog,
            db: None,
            name: Some(DEFAULT_CATALOG.into()),
        }
    }
    fn named_catalog(name: &str) -> Target {
        Target {
            kind: ObjectType::Catalog,
            db: None,
            name: Some(name.into()),
        }
    }
    fn database(db: &str) -> Target {
        Target {
            kind: ObjectType::Database,
            db: None,
            name: Some(db.into()),
        }
    }
    fn object(kind: ObjectType, db: &str, name: &str) -> Target {
        Target {
            kind,
            db: Some(db.into()),
            name: Some(name.into()),
        }
    }

    /// How an error names it: `SYSTEM`, `DATABASE d`, `TABLE d.t`.
    pub fn describe(&self) -> String {
        let q = |s: &str| sql::QuotedIdent(s).to_string();
        match (&self.db, &self.name) {
            (_, None) if self.kind == ObjectType::System => "SYSTEM".into(),
            (Some(db), Some(n)) => format!("{} {}.{}", self.kind.keyword(), q(db), q(n)),
            (None, Some(n)) => format!("{} {}", self.kind.keyword(), q(n)),
            (Some(db), None) => format!("ALL {} IN DATABASE {}", self.kind.plural(), q(db)),
            (None, None) => format!("ALL {}", self.kind.plural()),
        }
    }
}

/// One privilege (or one of several) a statement needs on one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    pub any_of: Vec<&'static str>,
    pub on: Target,
    /// Other privileges on other objects that also satisfy it (StarRocks checks a view or an
    /// MV in a BACKUP as a table: EXPORT on its name in a TABLE grant is accepted too).
    pub or: Vec<(&'static str, Target)>,
}

impl Need {
    pub fn any(any_of: Vec<&'static str>, on: Target) -> Need {
        Need {
            any_of,
            on,
            or: Vec::new(),
        }
    }
}

fn need(privilege: &'static str, on: Target) -> Need {
    Need::any(vec![privilege], on)
}

/// What a user holds in a session: privileges from direct grants and active roles.
#[derive(Clone, Debug, Default)]
pub struct Effective {
    /// `root` is active: everything is allowed.
    pub root: bool,
    pub grants: Vec<GrantRow>,
    /// Roles in effect (active ones and every role they hold), sorted.
    pub active: Vec<String>,
    /// Granted roles the session has not activated.
    pub inactive: Vec<String>,
}

/// Builtin roles' privileges, as grants on "all" of each kind.
pub fn builtin_grants(role: &str) -> Vec<GrantRow> {
    let holder = Holder::Role(role.to_string());
    let all_of = |kind: ObjectType| {
        kind.privileges()
            .iter()
            .map(|p| GrantRow {
                holder: holder.clone(),
                privilege: p.to_string(),
                kind: kind.keyword().to_string(),
                db: None,
                name: None,
                with_grant: false,
            })
            .collect::<Vec<_>>()
    };
    match role {
        "db_admin" => ObjectType::ALL
            .into_iter()
            .filter(|k| *k != ObjectType::User)
            .flat_map(all_of)
            .collect(),
        "cluster_admin" => vec![GrantRow {
            holder,
            privilege: "NODE".into(),
            kind: "SYSTEM".into(),
            db: None,
            name: None,
            with_grant: false,
        }],
        "user_admin" => {
            let mut g = all_of(ObjectType::User);
            g.push(GrantRow {
                holder,
                privilege: "GRANT".into(),
                kind: "SYSTEM".into(),
                db: None,
                name: None,
                with_grant: false,
            });
            g
        }
        _ => Vec::new(),
    }
}

/// Whether `user`@`host` is the root account (`'root'@'%'`, the only account named root).
pub fn is_root_account(user: &str, host: &str) -> bool {
    user == "root" && host == "%"
}

/// The roles granted to a user (the root account always holds `root`).
pub fn granted_roles(reader: &Reader<'_>, user: &str, host: &str) -> Result<Vec<String>> {
    let mut roles = reader.roles_of(&Holder::User {
        name: user.to_string(),
        host: host.to_string(),
    })?;
    if is_root_account(user, host) && !roles.iter().any(|r| r == "root") {
        roles.push("root".into());
    }
    roles.sort();
    Ok(roles)
}

/// What `identity` may do now.
pub fn effective(reader: &Reader<'_>, identity: Option<&Identity>) -> Result<Effective> {
    let Some(id) = identity else {
        return Ok(Effective {
            root: true,
            active: vec!["root".into()],
            ..Effective::default()
        });
    };
    let granted = granted_roles(reader, &id.user, &id.host)?;
    let account = reader.account(&id.user, &id.host)?;
    let chosen: Vec<String> = match &id.roles {
        ActiveRoles::Default => match &account {
            Some(a) if a.all_default => granted.clone(),
            Some(a) => {
                let mut d = a.default_roles.clone();
                if is_root_account(&id.user, &id.host) {
                    d.push("root".into());
                }
                d
            }
            // The account was dropped while the session was open: nothing but `public`.
            None => Vec::new(),
        },
        ActiveRoles::None => Vec::new(),
        ActiveRoles::All { except } => granted
            .iter()
            .filter(|r| !except.contains(r))
            .cloned()
            .collect(),
        ActiveRoles::Listed(r) => r.clone(),
    };
    // Only roles still granted count: a REVOKE takes effect on the next statement.
    let direct: BTreeSet<String> = chosen.into_iter().filter(|r| granted.contains(r)).collect();
    let mut active: BTreeSet<String> = BTreeSet::new();
    let mut queue: Vec<String> = direct.iter().cloned().collect();
    queue.push("public".into());
    while let Some(role) = queue.pop() {
        if !active.insert(role.clone()) {
            continue;
        }
        queue.extend(reader.roles_of(&Holder::Role(role))?);
    }
    let mut grants = reader.grants_of(&id.holder())?;
    for role in &active {
        grants.extend(builtin_grants(role));
        grants.extend(reader.grants_of(&Holder::Role(role.clone()))?);
    }
    let inactive = granted
        .iter()
        .filter(|r| !direct.contains(*r))
        .cloned()
        .collect();
    Ok(Effective {
        root: active.contains("root"),
        grants,
        active: direct.into_iter().collect(),
        inactive,
    })
}

fn covers(g: &GrantRow, privilege: &str, on: &Target) -> bool {
    g.privilege == privilege
        && g.kind == on.kind.keyword()
        && match (&g.db, &on.db) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        }
        && match (&g.name, &on.name) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        }
}

impl Effective {
    pub fn allows(&self, privilege: &str, on: &Target) -> bool {
        self.root || self.grants.iter().any(|g| covers(g, privilege, on))
    }

    /// Whether the user may pass `privilege` on `on` along (WITH GRANT OPTION, or GRANT).
    pub fn may_grant(&self, privilege: &str, on: &Target) -> bool {
        self.root
            || self.allows("GRANT", &Target::system())
            || self
                .grants
                .iter()
                .any(|g| g.with_grant && covers(g, privilege, on))
    }

    /// Any privilege on the database or on anything in it (what USE needs).
    pub fn any_in_database(&self, db: &str) -> bool {
        self.root
            || self.grants.iter().any(|g| {
                (g.kind == "DATABASE" && g.name.as_deref().is_none_or(|n| n == db))
                    || (g.db.as_deref().is_none_or(|d| d == db)
                        && g.kind != "SYSTEM"
                        && g.kind != "CATALOG"
                        && g.kind != "DATABASE"
                        && g.kind != "USER"
                        && g.kind != "GLOBAL FUNCTION")
            })
    }

    /// Any privilege on an object.
    pub fn any_on(&self, on: &Target) -> bool {
        self.root || on.kind.privileges().iter().any(|p| self.allows(p, on))
    }

    /// StarRocks' words (error 5203).
    pub fn denied(&self, need: &Need) -> Error {
        let list = |r: &[String]| {
            if r.is_empty() {
                "NONE".to_string()
            } else {
                r.join(", ")
            }
        };
        Error::Denied {
            message: format!(
                "Access denied; you need (at least one of) the {} privilege(s) on {} for this operation. Please ask the admin to grant permission(s) or try activating existing roles using <set [default] role>. Current role(s): {}. Inactivated role(s): {}.",
                need.any_of.join(", "),
                need.on.describe(),
                list(&self.active),
                list(&self.inactive),
            ),
        }
    }

    /// The first need not met, as an error.
    pub fn check(&self, needs: &[Need]) -> Result<()> {
        for n in needs {
            if !n.any_of.iter().any(|p| self.allows(p, &n.on))
                && !n.or.iter().any(|(p, t)| self.allows(p, t))
            {
                return Err(self.denied(n));
            }
        }
        Ok(())
    }
}

/// The database a name lives in (its own, or the session's).
fn db_of(name: &QualifiedName, current: Option<&str>) -> Option<String> {
    name.database
        .as_ref()
        .map(|d| d.value.clone())
        .or_else(|| current.map(str::to_string))
}

/// The type of the object named `name` in `db` now, if it exists.
fn kind_of(engine: &mut Engine, db: &str, name: &str) -> Result<Option<ObjectType>> {
    let view = engine.catalog().view();
    let Some(d) = view.database(db)? else {
        return Ok(None);
    };
    if let Some(o) = view.object(d.id, name)? {
        return Ok(Some(match o.def.kind() {
            ObjectKind::Table => ObjectType::Table,
            ObjectKind::View => ObjectType::View,
            ObjectKind::MaterializedView => ObjectType::MaterializedView,
        }));
    }
    // A synchronous MV is read by name too; it lives in its base table.
    let rollup = view.objects(d.id)?.into_iter().any(|o| {
        matches!(&o.def, ObjectDef::Table { rollups, .. } if rollups.iter().any(|r| r.name == name))
    });
    Ok(rollup.then_some(ObjectType::MaterializedView))
}

/// A privilege on a table, view or MV by its name; the object's type decides the item. An
/// object that does not exist is checked as a table (the statement fails on it afterwards).
fn on_object(
    engine: &mut Engine,
    privilege: &'static str,
    name: &QualifiedName,
    current: Option<&str>,
) -> Result<Vec<Need>> {
    let Some(db) = db_of(name, current) else {
        return Ok(Vec::new()); // "names no database" comes from the statement itself
    };
    let kind = kind_of(engine, &db, &name.name.value)?.unwrap_or(ObjectType::Table);
    Ok(vec![need(
        privilege,
        Target::object(kind, &db, &name.name.value),
    )])
}

fn repository() -> Need {
    need("REPOSITORY", Target::system())
}

/// The tables, views and MVs of `db` now (for a statement on "everything in the database").
fn objects_of(engine: &mut Engine, db: &str) -> Result<Vec<(ObjectType, String)>> {
    let view = engine.catalog().view();
    let Some(d) = view.database(db)? else {
        return Ok(Vec::new());
    };
    Ok(view
        .objects(d.id)?
        .into_iter()
        .map(|o| {
            let kind = match o.def.kind() {
                ObjectKind::Table => ObjectType::Table,
                ObjectKind::View => ObjectType::View,
                ObjectKind::MaterializedView => ObjectType::MaterializedView,
            };
            (kind, o.name)
        })
        .collect())
}

/// BACKUP: REPOSITORY, and EXPORT on every table it reads (SELECT on views and MVs, USAGE on
/// functions and external catalogs).
fn backup_needs(engine: &mut Engine, b: &sql::Backup) -> Result<Vec<Need>> {
    let mut needs = vec![repository()];
    if let Some(db) = &b.database {
        let db = db.value.clone();
        // Tables need EXPORT; a view or an MV SELECT on it, or EXPORT on its name as a table
        // (StarRocks checks every object of a backup as a table).
        let export = |kind: ObjectType, db: &str, name: &str| -> Need {
            let as_table = Target::object(ObjectType::Table, db, name);
            match kind {
                ObjectType::Table => need("EXPORT", as_table),
                _ => Need {
                    any_of: vec!["SELECT"],
                    on: Target::object(kind, db, name),
                    or: vec![("EXPORT", as_table)],
                },
            }
        };
        if b.on.is_empty() {
            for (kind, name) in objects_of(engine, &db)? {
                needs.push(export(kind, &db, &name));
            }
        }
        for item in &b.on {
            match item {
                ObjectRef::All { of, .. } => {
                    for (kind, name) in objects_of(engine, &db)? {
                        let wanted = match of {
                            sql::ObjectKind::Tables => kind == ObjectType::Table,
                            sql::ObjectKind::Views => kind == ObjectType::View,
                            sql::ObjectKind::MaterializedViews => {
                                kind == ObjectType::MaterializedView
                            }
                            sql::ObjectKind::Functions => false,
                        };
                        if wanted {
                            needs.push(export(kind, &db, &name));
                        }
                    }
                    if *of == sql::ObjectKind::Functions {
                        needs.push(need(
                            "USAGE",
                            Target {
                                kind: ObjectType::Function,
                                db: Some(db.clone()),
                                name: None,
                            },
                        ));
                    }
                }
                ObjectRef::Function { name, .. } => needs.push(need(
                    "USAGE",
                    Target::object(ObjectType::Function, &db, &name.name.value),
                )),
                other => {
                    if let Some(name) = other.name() {
                        let kind =
                            kind_of(engine, &db, &name.name.value)?.unwrap_or(ObjectType::Table);
                        needs.push(export(kind, &db, &name.name.value));
                    }
                }
            }
        }
    }
    needs.extend(catalog_needs(
        engine,
        b.external_catalogs.as_ref(),
        "USAGE",
    )?);
    Ok(needs)
}

fn catalog_needs(
    engine: &mut Engine,
    selection: Option<&CatalogSelection>,
    privilege: &'static str,
) -> Result<Vec<Need>> {
    Ok(match selection {
        None => Vec::new(),
        Some(CatalogSelection::All) => engine
            .catalog()
            .view()
            .external_catalogs()?
            .into_iter()
            .map(|c| need(privilege, Target::named_catalog(&c.name)))
            .collect(),
        Some(CatalogSelection::Named(list)) => list
            .iter()
            .map(|c| need(privilege, Target::named_catalog(&c.name.value)))
            .collect(),
    })
}

/// RESTORE: REPOSITORY; a whole database also CREATE DATABASE on the default catalog (and
/// CREATE TABLE on the database when it exists); named objects INSERT (tables), ALTER (views,
/// MVs) or DROP (functions) when they exist, else the CREATE privilege of their kind on the
/// database (CREATE DATABASE when even the database is new); `ALL TABLES` (…) the CREATE
/// privilege of the kind and INSERT on every such object the database holds; external
/// catalogs CREATE EXTERNAL CATALOG.
fn restore_needs(engine: &mut Engine, r: &Restore) -> Result<Vec<Need>> {
    let mut needs = vec![repository()];
    if let Some(db_ref) = &r.database {
        let db = db_ref.alias.as_ref().unwrap_or(&db_ref.name).value.clone();
        let exists = engine.catalog().view().database(&db)?.is_some();
        let whole = r.on.is_empty();
        if whole || !exists {
            // A whole database, or objects into a database the restore creates.
            needs.push(need("CREATE DATABASE", Target::catalog()));
        }
        if whole && exists {
            needs.push(need("CREATE TABLE", Target::database(&db)));
        }
        // ON (ALL TABLES | VIEWS | MATERIALIZED VIEWS) into an existing database: every object
        // of the kind it holds may be overwritten, and the snapshot's others created.
        for item in &r.on {
            let ObjectRef::All { of, .. } = item else {
                continue;
            };
            if !exists {
                continue;
            }
            needs.push(need(
                match of {
                    sql::ObjectKind::Views => "CREATE VIEW",
                    sql::ObjectKind::MaterializedViews => "CREATE MATERIALIZED VIEW",
                    sql::ObjectKind::Functions => "CREATE FUNCTION",
                    sql::ObjectKind::Tables => "CREATE TABLE",
                },
                Target::database(&db),
            ));
            for (kind, name) in objects_of(engine, &db)? {
                let wanted = match of {
                    sql::ObjectKind::Tables => kind == ObjectType::Table,
                    sql::ObjectKind::Views => kind == ObjectType::View,
                    sql::ObjectKind::MaterializedViews => kind == ObjectType::MaterializedView,
                    sql::ObjectKind::Functions => false,
                };
                if !wanted {
                    continue;
                }
                needs.push(match kind {
                    ObjectType::Table => need("INSERT", Target::object(kind, &db, &name)),
                    _ => Need {
                        any_of: vec!["ALTER"],
                        on: Target::object(kind, &db, &name),
                        or: vec![("INSERT", Target::object(ObjectType::Table, &db, &name))],
                    },
                });
            }
        }
        for item in &r.on {
            let Some(name) = item.name() else { continue };
            let target = item.alias().unwrap_or(&name.name).value.clone();
            if !exists {
                continue; // CREATE DATABASE, above
            }
            if let ObjectRef::Function { .. } = item {
                let present = engine
                    .catalog()
                    .view()
                    .database(&db)?
                    .map(|d| d.id)
                    .map(|id| engine.catalog().view().functions(Some(id)))
                    .transpose()?
                    .is_some_and(|fs| fs.iter().any(|f| f.name == target));
                needs.push(if present {
                    need("DROP", Target::object(ObjectType::Function, &db, &target))
                } else {
                    need("CREATE FUNCTION", Target::database(&db))
                });
                continue;
            }
            match kind_of(engine, &db, &target)? {
                Some(ObjectType::Table) => needs.push(need(
                    "INSERT",
                    Target::object(ObjectType::Table, &db, &target),
                )),
                // A view or an MV: ALTER on it, or INSERT on its name as a table (StarRocks).
                Some(kind) => needs.push(Need {
                    any_of: vec!["ALTER"],
                    on: Target::object(kind, &db, &target),
                    or: vec![("INSERT", Target::object(ObjectType::Table, &db, &target))],
                }),
                None => needs.push(need(
                    match item {
                        ObjectRef::View { .. } => "CREATE VIEW",
                        ObjectRef::MaterializedView { .. } => "CREATE MATERIALIZED VIEW",
                        _ => "CREATE TABLE",
                    },
                    Target::database(&db),
                )),
            }
        }
    }
    if r.external_catalogs.is_some() {
        needs.push(need("CREATE EXTERNAL CATALOG", Target::system()));
    }
    Ok(needs)
}

/// What `stmt` needs, resolved against the catalog as it is now. Account statements are
/// checked where they run (`session::accounts`), with what they name.
pub fn needs(engine: &mut Engine, stmt: &Statement, current: Option<&str>) -> Result<Vec<Need>> {
    let table = |kind: ObjectType, n: &QualifiedName| {
        db_of(n, current).map(|db| Target::object(kind, &db, &n.name.value))
    };
    let one = |privilege: &'static str, t: Option<Target>| -> Vec<Need> {
        t.map(|t| need(privilege, t)).into_iter().collect()
    };
    Ok(match stmt {
        Statement::CreateRepository(_)
        | Statement::DropRepository(_)
        | Statement::ShowRepositories(_)
        | Statement::ShowSnapshot(_)
        | Statement::DropSnapshot(_)
        | Statement::ShowBackup(_)
        | Statement::ShowRestore(_)
        | Statement::CancelBackup(_)
        | Statement::CancelRestore(_)
        | Statement::ShowSchedules(_)
        | Statement::AlterSchedule(_) => vec![repository()],
        // What each run will do, checked now and again when it fires (as its owner).
        Statement::CreateSchedule(s) => {
            let mut n = vec![repository()];
            match &s.job {
                crate::sql::ScheduledJob::Backup(b) => {
                    n.extend(backup_needs(engine, b)?);
                    n.extend(privileges_property(&b.properties, false));
                }
                crate::sql::ScheduledJob::Drill { .. } => {
                    n.push(need("CREATE DATABASE", Target::catalog()));
                }
            }
            n
        }
        Statement::Backup(b) => {
            let mut n = backup_needs(engine, b)?;
            n.extend(privileges_property(&b.properties, false));
            n
        }
        Statement::Restore(r) => {
            let mut n = restore_needs(engine, r)?;
            n.extend(privileges_property(&r.properties, true));
            n
        }
        Statement::CreateDatabase(_) => vec![need("CREATE DATABASE", Target::catalog())],
        Statement::DropDatabase(s) => vec![need("DROP", Target::database(&s.name.value))],
        Statement::Use(_) => Vec::new(), // any privilege in it: checked by `check`
        Statement::CreateTable(s) => one(
            "CREATE TABLE",
            db_of(&s.name, current).map(|d| Target::database(&d)),
        ),
        Statement::DropTable(s) => one("DROP", table(ObjectType::Table, &s.name)),
        Statement::DropView(s) => one("DROP", table(ObjectType::View, &s.name)),
        Statement::DropMaterializedView(s) => {
            one("DROP", table(ObjectType::MaterializedView, &s.name))
        }
        Statement::TruncateTable(s) => one("DELETE", table(ObjectType::Table, &s.name)),
        Statement::AlterTable(s) => {
            let mut n = one("ALTER", table(ObjectType::Table, &s.name));
            if let sql::AlterTableAction::SwapWith(other) = &s.action {
                let other = QualifiedName {
                    database: s.name.database.clone(),
                    name: other.clone(),
                };
                n.extend(one("ALTER", table(ObjectType::Table, &other)));
            }
            n
        }
        // A view or an MV reads its query's tables for whoever selects from it: its creator
        // must be able to read them (StarRocks checks the query with the creator's rights).
        Statement::CreateView(s) => {
            created_over(engine, "CREATE VIEW", &s.name, &s.query.text, current)?
        }
        Statement::CreateMaterializedView(s) => created_over(
            engine,
            "CREATE MATERIALIZED VIEW",
            &s.name,
            &s.query.text,
            current,
        )?,
        Statement::AlterMaterializedView(s) => {
            one("ALTER", table(ObjectType::MaterializedView, &s.name))
        }
        Statement::RefreshMaterializedView(s) => {
            one("REFRESH", table(ObjectType::MaterializedView, &s.name))
        }
        Statement::CreateFunction(s) if s.global => {
            vec![need("CREATE GLOBAL FUNCTION", Target::system())]
        }
        Statement::CreateFunction(s) => one(
            "CREATE FUNCTION",
            db_of(&s.name, current).map(|d| Target::database(&d)),
        ),
        Statement::DropFunction(s) if s.global => vec![need(
            "DROP",
            Target {
                kind: ObjectType::GlobalFunction,
                db: None,
                name: Some(s.name.name.value.clone()),
            },
        )],
        Statement::DropFunction(s) => one("DROP", table(ObjectType::Function, &s.name)),
        Statement::CreateCatalog(_) => vec![need("CREATE EXTERNAL CATALOG", Target::system())],
        Statement::DropCatalog(s) => vec![need("DROP", Target::named_catalog(&s.name.value))],
        Statement::Insert(s) => {
            let mut n = on_object(engine, "INSERT", &s.table, current)?;
            match &s.source {
                sql::InsertSource::Query(q) => n.extend(query_needs(engine, q, current)?),
                // FILES() reads this machine's files: SYSTEM's FILE privilege.
                sql::InsertSource::Files { .. } => n.push(need("FILE", Target::system())),
                sql::InsertSource::Values { .. } => {}
            }
            n
        }
        // What their expressions read (subqueries) needs SELECT, as the engine runs them: the
        // same query text it builds (engine::dml), the target itself excepted.
        Statement::Update(s) => {
            let mut n = on_object(engine, "UPDATE", &s.table, current)?;
            let values: Vec<String> = s
                .assignments
                .iter()
                .map(|a| format!("({})", a.value.text))
                .collect();
            let text = crate::engine::dml::update_query(
                &values,
                &s.table.to_string(),
                s.condition.as_ref(),
            );
            // The engine runs it in the target's database (engine::dml).
            let home = db_of(&s.table, current);
            n.extend(strict_query_needs(
                engine,
                &text,
                home.as_deref(),
                Some(&s.table),
            )?);
            n
        }
        Statement::Delete(s) => {
            let mut n = on_object(engine, "DELETE", &s.table, current)?;
            if let Some(c) = &s.condition {
                let text = crate::engine::dml::delete_keep_query(&s.table.to_string(), c);
                let home = db_of(&s.table, current);
                n.extend(strict_query_needs(
                    engine,
                    &text,
                    home.as_deref(),
                    Some(&s.table),
                )?);
            }
            n
        }
        Statement::ChecksumTable(s) => {
            let mut n = Vec::new();
            for t in &s.tables {
                n.extend(on_object(engine, "SELECT", t, current)?);
            }
            n
        }
        Statement::Query(q) => query_needs(engine, q, current)?,
        Statement::Show(s) => match &s.what {
            Show::Proc { .. } => vec![Need::any(vec!["OPERATE", "NODE"], Target::system())],
            // What describes one object needs some privilege on it (StarRocks).
            Show::CreateTable { table }
            | Show::Partitions { table }
            | Show::Columns { table, .. } => any_privilege_on(engine, table, current)?,
            _ => Vec::new(),
        },
        Statement::Account(_) => Vec::new(),
    })
}

/// What only the root role satisfies (no grant names it).
pub const ROOT_ONLY: &str = "ROOT (the root role)";

/// A backup that takes grants or accounts along needs GRANT (it reads who may do what); one
/// that takes password hashes, and a restore that re-applies accounts and grants (it can make
/// anyone anything), need root.
fn privileges_property(properties: &sql::Properties, restore: bool) -> Option<Need> {
    let value = properties.get("privileges")?.trim().to_ascii_lowercase();
    match value.as_str() {
        "false" => None,
        "users_with_passwords" => Some(need(ROOT_ONLY, Target::system())),
        _ if restore => Some(need(ROOT_ONLY, Target::system())),
        _ => Some(grant_needed()),
    }
}

/// A view or an MV: the CREATE privilege on its database, and SELECT on what its query reads,
/// named as the engine resolves them (in the view's own database).
fn created_over(
    engine: &mut Engine,
    privilege: &'static str,
    name: &QualifiedName,
    query: &str,
    current: Option<&str>,
) -> Result<Vec<Need>> {
    let home = db_of(name, current);
    let mut needs: Vec<Need> = home
        .iter()
        .map(|d| need(privilege, Target::database(d)))
        .collect();
    needs.extend(strict_query_needs(engine, query, home.as_deref(), None)?);
    Ok(needs)
}

/// Any privilege on an existing table, view or MV.
fn any_privilege_on(
    engine: &mut Engine,
    name: &QualifiedName,
    current: Option<&str>,
) -> Result<Vec<Need>> {
    let Some(db) = db_of(name, current) else {
        return Ok(Vec::new());
    };
    if db.eq_ignore_ascii_case(crate::engine::information_schema::DATABASE) {
        return Ok(Vec::new());
    }
    let Some(kind) = kind_of(engine, &db, &name.name.value)? else {
        return Ok(Vec::new()); // fails on its own: no such object
    };
    Ok(vec![Need::any(
        kind.privileges().to_vec(),
        Target::object(kind, &db, &name.name.value),
    )])
}

/// SELECT on the tables `text` reads, except `target`; text the query layer cannot read is
/// refused here (the statement could not run it either, and nothing unread may pass).
fn strict_query_needs(
    engine: &mut Engine,
    text: &str,
    current: Option<&str>,
    target: Option<&QualifiedName>,
) -> Result<Vec<Need>> {
    let tables = crate::engine::query::referenced_tables(text, current)?;
    let target = target.and_then(|t| db_of(t, current).map(|db| (db, t.name.value.clone())));
    let mut needs = Vec::new();
    for (db, table) in tables {
        if db.eq_ignore_ascii_case(crate::engine::information_schema::DATABASE)
            || target.as_ref() == Some(&(db.clone(), table.clone()))
        {
            continue;
        }
        if let Some(n) = select_need(engine, &db, &table, current)? {
            needs.push(n);
        }
    }
    Ok(needs)
}

/// SELECT on a name a query reads: of its kind when it exists, as a table when it does not
/// (it may exist by the time the statement runs); nothing for the query layer's table
/// functions.
fn select_need(
    engine: &mut Engine,
    db: &str,
    table: &str,
    current: Option<&str>,
) -> Result<Option<Need>> {
    if let Some(kind) = kind_of(engine, db, table)? {
        return Ok(Some(need("SELECT", Target::object(kind, db, table))));
    }
    let functions = crate::engine::query::new_context(current)
        .state()
        .table_functions()
        .clone();
    // FILES() is the engine's own (INSERT … SELECT * FROM FILES(…), checked as FILE); named
    // elsewhere it is refused as unsupported, not as a table to grant.
    if functions.contains_key(&table.to_ascii_lowercase()) || table.eq_ignore_ascii_case("files") {
        return Ok(None);
    }
    Ok(Some(need(
        "SELECT",
        Target::object(ObjectType::Table, db, table),
    )))
}

/// SELECT on every table, view and MV a query names (information_schema is everyone's).
fn query_needs(
    engine: &mut Engine,
    q: &sql::QueryText,
    current: Option<&str>,
) -> Result<Vec<Need>> {
    let mut needs = Vec::new();
    // A query that does not parse fails on its own afterwards, with its own message.
    let Ok(tables) = crate::engine::query::referenced_tables(&q.text, current) else {
        return Ok(needs);
    };
    for (db, table) in tables {
        if db.eq_ignore_ascii_case(crate::engine::information_schema::DATABASE) {
            continue;
        }
        if let Some(n) = select_need(engine, &db, &table, current)? {
            needs.push(n);
        }
    }
    Ok(needs)
}

/// Checks `stmt` for `identity` (`None`: root). USE needs any privilege in the database.
pub fn check(
    engine: &mut Engine,
    identity: Option<&Identity>,
    stmt: &Statement,
    current: Option<&str>,
) -> Result<()> {
    if identity.is_none() {
        return Ok(());
    }
    let eff = effective(&engine.catalog().view(), identity)?;
    if eff.root {
        // Root may do everything: no need is worked out (that would read the catalog and parse
        // the statement's queries a second time, for nothing).
        engine.set_visibility(None);
        return Ok(());
    }
    let needs = needs(engine, stmt, current)?;
    // information_schema shows this statement what the user holds something on or in.
    engine.set_visibility({
        let eff = eff.clone();
        Some(std::sync::Arc::new(
            move |db: &str, name: Option<&str>| match name {
                None => eff.any_in_database(db),
                Some(n) => [
                    ObjectType::Table,
                    ObjectType::View,
                    ObjectType::MaterializedView,
                ]
                .into_iter()
                .any(|kind| eff.any_on(&Target::object(kind, db, n))),
            },
        ))
    });
    if let Statement::Use(u) = stmt {
        let db = &u.name.value;
        if !db.eq_ignore_ascii_case(crate::engine::information_schema::DATABASE)
            && !eff.any_in_database(db)
        {
            return Err(Error::Denied {
                message: format!(
                    "Access denied for user {} to database {db}",
                    identity.map(Identity::quoted).unwrap_or_default()
                ),
            });
        }
    }
    eff.check(&needs)
}

/// Whether `identity` may see or cancel a job whose statement is `stmt` (its submitter, or a
/// user who could have submitted it).
pub fn may_manage_job(
    engine: &mut Engine,
    identity: Option<&Identity>,
    owner: &str,
    stmt: Option<&Statement>,
) -> Result<bool> {
    let Some(id) = identity else { return Ok(true) };
    if owner == id.quoted() {
        return Ok(true);
    }
    let eff = effective(&engine.catalog().view(), identity)?;
    if eff.root {
        return Ok(true);
    }
    let Some(stmt) = stmt else { return Ok(false) };
    let needs = needs(engine, stmt, None)?;
    Ok(eff.check(&needs).is_ok())
}

/// SHOW GRANTS FOR someone else, SHOW USERS/ROLES, CREATE USER … need GRANT on SYSTEM.
pub fn grant_needed() -> Need {
    need("GRANT", Target::system())
}

/// SHOW DATABASES and SHOW [FULL] TABLES list what the user holds any privilege on (or in),
/// as StarRocks' do; other SHOWs name one object, checked by [`needs`].
pub fn visible(
    engine: &mut Engine,
    identity: Option<&Identity>,
    what: &Show,
    current: Option<&str>,
    mut rows: crate::results::ResultSet,
) -> Result<crate::results::ResultSet> {
    if identity.is_none() {
        return Ok(rows);
    }
    let eff = effective(&engine.catalog().view(), identity)?;
    if eff.root {
        return Ok(rows);
    }
    match what {
        Show::Databases { .. } => rows.rows.retain(|r| {
            r.first().and_then(|c| c.as_deref()).is_some_and(|db| {
                db.eq_ignore_ascii_case(crate::engine::information_schema::DATABASE)
                    || eff.any_in_database(db)
            })
        }),
        Show::Tables { database, .. } | Show::TableStatus { database, .. } => {
            let Some(db) = database
                .as_ref()
                .map(|d| d.value.clone())
                .or_else(|| current.map(str::to_string))
            else {
                return Ok(rows);
            };
            if db.eq_ignore_ascii_case(crate::engine::information_schema::DATABASE) {
                return Ok(rows);
            }
            let kinds: std::collections::HashMap<String, ObjectType> = objects_of(engine, &db)?
                .into_iter()
                .map(|(k, n)| (n, k))
                .collect();
            rows.rows.retain(|r| {
                r.first().and_then(|c| c.as_deref()).is_some_and(|name| {
                    let kind = kinds.get(name).copied().unwrap_or(ObjectType::Table);
                    eff.any_on(&Target::object(kind, &db, name))
                })
            });
        }
        Show::MaterializedViews { .. } => rows.rows.retain(|r| {
            match (
                r.get(1).and_then(|c| c.as_deref()),
                r.get(2).and_then(|c| c.as_deref()),
            ) {
                (Some(db), Some(name)) => {
                    eff.any_on(&Target::object(ObjectType::MaterializedView, db, name))
                }
                _ => false,
            }
        }),
        Show::Functions { global, database } => {
            let db = database
                .as_ref()
                .map(|d| d.value.clone())
                .or_else(|| current.map(str::to_string));
            rows.rows.retain(|r| {
                let Some(sig) = r.first().and_then(|c| c.as_deref()) else {
                    return false;
                };
                let name = sig.split('(').next().unwrap_or(sig);
                if *global {
                    eff.any_on(&Target {
                        kind: ObjectType::GlobalFunction,
                        db: None,
                        name: Some(name.to_string()),
                    })
                } else {
                    db.as_deref().is_some_and(|db| {
                        eff.any_on(&Target::object(ObjectType::Function, db, name))
                    })
                }
            });
        }
        Show::Catalogs => rows.rows.retain(|r| {
            r.first()
                .and_then(|c| c.as_deref())
                .is_some_and(|c| c == DEFAULT_CATALOG || eff.any_on(&Target::named_catalog(c)))
        }),
        _ => {}
    }
    Ok(rows)
}
