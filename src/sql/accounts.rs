//! The tree of account statements: users, roles, GRANT/REVOKE, SET ROLE, SHOW GRANTS.
//!
//! Privilege names and the object types they apply to are StarRocks' (v3.0+ "Privilege Items");
//! [`ObjectType::privileges`] is the one list of which privilege may be granted on what.

use std::fmt::{self, Display, Formatter};

use serde::Serialize;

use super::ast::{Ident, Literal, QualifiedName, Span};
use super::display::{QuotedIdent, QuotedString};

/// `'name'@'host'`; a missing host is `%` (any host).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserIdentity {
    pub name: String,
    pub host: String,
    #[serde(skip)]
    pub span: Span,
}

impl Display for UserIdentity {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", quote_sq(&self.name), quote_sq(&self.host))
    }
}

/// Whether `name` may name a user or a role: 1 to 128 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 128
}

/// Whether `host` is one of MySQL's host forms (a name, an address, a netmask, `%`/`_`
/// patterns), at most 255 characters.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.chars().count() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '%' | ':' | '/'))
}

/// `'text'` with `'` and `\` escaped, as StarRocks prints user identities.
pub fn quote_sq(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// How an account proves who it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Auth {
    /// `IDENTIFIED WITH <plugin>`; `None`: the server's default.
    pub plugin: Option<String>,
    pub secret: AuthSecret,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthSecret {
    None,
    /// A clear-text password (never printed: serialized and displayed masked).
    Password(#[serde(serialize_with = "masked")] Literal),
    /// A stored hash as MySQL's `PASSWORD()` prints it (`*` and 40 hex digits); masked too.
    Hash(#[serde(serialize_with = "masked")] Literal),
}

fn masked<S: serde::Serializer>(_: &Literal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(super::MASK)
}

impl Display for Auth {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (&self.plugin, &self.secret) {
            (None, AuthSecret::Password(p)) => {
                write!(f, "IDENTIFIED BY {}", QuotedString(&p.value))
            }
            (None, AuthSecret::Hash(h)) => {
                write!(f, "IDENTIFIED BY PASSWORD {}", QuotedString(&h.value))
            }
            (None, AuthSecret::None) => f.write_str("IDENTIFIED BY ''"),
            (Some(plugin), secret) => {
                write!(f, "IDENTIFIED WITH {plugin}")?;
                match secret {
                    AuthSecret::None => Ok(()),
                    AuthSecret::Password(p) => write!(f, " BY {}", QuotedString(&p.value)),
                    AuthSecret::Hash(h) => write!(f, " AS {}", QuotedString(&h.value)),
                }
            }
        }
    }
}

/// `DEFAULT ROLE NONE | ALL | r, …`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleChoice {
    None,
    All,
    Roles(Vec<Ident>),
}

impl Display for RoleChoice {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            RoleChoice::None => f.write_str("NONE"),
            RoleChoice::All => f.write_str("ALL"),
            RoleChoice::Roles(r) => write_roles(f, r),
        }
    }
}

fn write_roles(f: &mut Formatter<'_>, roles: &[Ident]) -> fmt::Result {
    for (i, r) in roles.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", QuotedIdent(&r.value))?;
    }
    Ok(())
}

/// `SET ROLE …`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetRoleChoice {
    Default,
    None,
    All { except: Vec<Ident> },
    Roles(Vec<Ident>),
}

/// The kinds of object a privilege is granted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    System,
    Catalog,
    Database,
    Table,
    View,
    MaterializedView,
    Function,
    GlobalFunction,
    User,
}

impl ObjectType {
    /// Every object type, in the order SHOW GRANTS lists them.
    pub const ALL: [ObjectType; 9] = [
        ObjectType::System,
        ObjectType::Catalog,
        ObjectType::Database,
        ObjectType::Table,
        ObjectType::View,
        ObjectType::MaterializedView,
        ObjectType::Function,
        ObjectType::GlobalFunction,
        ObjectType::User,
    ];

    /// The type a keyword (`MATERIALIZED VIEW`) names.
    pub fn from_keyword(keyword: &str) -> Option<ObjectType> {
        ObjectType::ALL.into_iter().find(|k| k.keyword() == keyword)
    }

    /// StarRocks' name (`MATERIALIZED VIEW`), as GRANT and error messages write it.
    pub fn keyword(self) -> &'static str {
        match self {
            ObjectType::System => "SYSTEM",
            ObjectType::Catalog => "CATALOG",
            ObjectType::Database => "DATABASE",
            ObjectType::Table => "TABLE",
            ObjectType::View => "VIEW",
            ObjectType::MaterializedView => "MATERIALIZED VIEW",
            ObjectType::Function => "FUNCTION",
            ObjectType::GlobalFunction => "GLOBAL FUNCTION",
            ObjectType::User => "USER",
        }
    }

    /// The plural of `ALL … IN …` (`ALL MATERIALIZED VIEWS`).
    pub fn plural(self) -> &'static str {
        match self {
            ObjectType::System => "SYSTEM",
            ObjectType::Catalog => "CATALOGS",
            ObjectType::Database => "DATABASES",
            ObjectType::Table => "TABLES",
            ObjectType::View => "VIEWS",
            ObjectType::MaterializedView => "MATERIALIZED VIEWS",
            ObjectType::Function => "FUNCTIONS",
            ObjectType::GlobalFunction => "GLOBAL FUNCTIONS",
            ObjectType::User => "USERS",
        }
    }

    /// Whether objects of this type live in a database.
    pub fn in_database(self) -> bool {
        matches!(
            self,
            ObjectType::Table
                | ObjectType::View
                | ObjectType::MaterializedView
                | ObjectType::Function
        )
    }

    /// The privileges that may be granted on this type (StarRocks' privilege items for the
    /// objects this engine has). SYSTEM's `GRANT` and `NODE` are held through the built-in roles
    /// only, as in StarRocks.
    pub fn privileges(self) -> &'static [&'static str] {
        match self {
            ObjectType::System => &[
                "REPOSITORY",
                "CREATE EXTERNAL CATALOG",
                "CREATE GLOBAL FUNCTION",
                "OPERATE",
                "FILE",
                "BLACKLIST",
                "PLUGIN",
                "CREATE RESOURCE",
                "CREATE RESOURCE GROUP",
                "CREATE STORAGE VOLUME",
            ],
            ObjectType::Catalog => &["USAGE", "CREATE DATABASE", "DROP", "ALTER"],
            ObjectType::Database => &[
                "CREATE TABLE",
                "CREATE VIEW",
                "CREATE FUNCTION",
                "CREATE MATERIALIZED VIEW",
                "DROP",
                "ALTER",
            ],
            ObjectType::Table => &[
                "SELECT", "INSERT", "UPDATE", "DELETE", "EXPORT", "DROP", "ALTER",
            ],
            ObjectType::View => &["SELECT", "DROP", "ALTER"],
            ObjectType::MaterializedView => &["SELECT", "ALTER", "REFRESH", "DROP"],
            ObjectType::Function | ObjectType::GlobalFunction => &["USAGE", "DROP"],
            ObjectType::User => &["IMPERSONATE"],
        }
    }
}

/// The privileges of a GRANT or REVOKE, upper case and single-spaced (`CREATE TABLE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivilegeList {
    All,
    Named(Vec<String>),
}

/// One object named in a GRANT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantName {
    Object(QualifiedName),
    /// A function and its argument types as written (`my_udf(INT)`).
    Function {
        name: QualifiedName,
        arguments: Vec<String>,
    },
    User(UserIdentity),
}

impl Display for GrantName {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            GrantName::Object(n) => n.fmt(f),
            GrantName::Function { name, arguments } => {
                write!(f, "{name}({})", arguments.join(", "))
            }
            GrantName::User(u) => u.fmt(f),
        }
    }
}

/// What a GRANT is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantOn {
    System,
    /// `ALL TABLES IN DATABASE d` (`database: Some`), `… IN ALL DATABASES` or `ALL DATABASES`
    /// (`None`).
    All {
        kind: ObjectType,
        database: Option<Ident>,
    },
    Named {
        kind: ObjectType,
        names: Vec<GrantName>,
    },
}

impl GrantOn {
    pub fn kind(&self) -> ObjectType {
        match self {
            GrantOn::System => ObjectType::System,
            GrantOn::All { kind, .. } | GrantOn::Named { kind, .. } => *kind,
        }
    }
}

impl Display for GrantOn {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            GrantOn::System => f.write_str("SYSTEM"),
            GrantOn::All { kind, database } => {
                write!(f, "ALL {}", kind.plural())?;
                match database {
                    Some(db) => write!(f, " IN DATABASE {db}"),
                    None if kind.in_database() => f.write_str(" IN ALL DATABASES"),
                    None => Ok(()),
                }
            }
            GrantOn::Named { kind, names } => {
                write!(f, "{} ", kind.keyword())?;
                for (i, n) in names.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    n.fmt(f)?;
                }
                Ok(())
            }
        }
    }
}

/// Who a GRANT is to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    User(UserIdentity),
    Role(Ident),
}

impl Display for Grantee {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::User(u) => write!(f, "USER {u}"),
            Grantee::Role(r) => write!(f, "ROLE {}", QuotedIdent(&r.value)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "account", rename_all = "snake_case")]
pub enum AccountStatement {
    CreateUser {
        if_not_exists: bool,
        user: UserIdentity,
        auth: Option<Auth>,
        require_ssl: Option<bool>,
        default_roles: Option<RoleChoice>,
        #[serde(skip)]
        span: Span,
    },
    DropUser {
        if_exists: bool,
        user: UserIdentity,
        #[serde(skip)]
        span: Span,
    },
    AlterUser {
        if_exists: bool,
        user: UserIdentity,
        auth: Option<Auth>,
        require_ssl: Option<bool>,
        default_roles: Option<RoleChoice>,
        #[serde(skip)]
        span: Span,
    },
    /// `SET PASSWORD [FOR u] = PASSWORD('x') | '*hash'`; `user: None` is the session's own.
    SetPassword {
        user: Option<UserIdentity>,
        secret: AuthSecret,
        #[serde(skip)]
        span: Span,
    },
    CreateRole {
        if_not_exists: bool,
        roles: Vec<Ident>,
        comment: Option<Literal>,
        #[serde(skip)]
        span: Span,
    },
    DropRole {
        if_exists: bool,
        roles: Vec<Ident>,
        #[serde(skip)]
        span: Span,
    },
    Grant {
        privileges: PrivilegeList,
        on: GrantOn,
        grantee: Grantee,
        with_grant_option: bool,
        #[serde(skip)]
        span: Span,
    },
    Revoke {
        privileges: PrivilegeList,
        on: GrantOn,
        grantee: Grantee,
        #[serde(skip)]
        span: Span,
    },
    GrantRoles {
        roles: Vec<Ident>,
        grantee: Grantee,
        #[serde(skip)]
        span: Span,
    },
    RevokeRoles {
        roles: Vec<Ident>,
        grantee: Grantee,
        #[serde(skip)]
        span: Span,
    },
    SetRole {
        choice: SetRoleChoice,
        #[serde(skip)]
        span: Span,
    },
    SetDefaultRole {
        choice: RoleChoice,
        user: UserIdentity,
        #[serde(skip)]
        span: Span,
    },
    ShowUsers {
        #[serde(skip)]
        span: Span,
    },
    ShowRoles {
        #[serde(skip)]
        span: Span,
    },
    /// `SHOW GRANTS [FOR …]`; `None`: the session's own.
    ShowGrants {
        of: Option<Grantee>,
        #[serde(skip)]
        span: Span,
    },
}

impl AccountStatement {
    pub fn span(&self) -> Span {
        use AccountStatement::*;
        match self {
            CreateUser { span, .. }
            | DropUser { span, .. }
            | AlterUser { span, .. }
            | SetPassword { span, .. }
            | CreateRole { span, .. }
            | DropRole { span, .. }
            | Grant { span, .. }
            | Revoke { span, .. }
            | GrantRoles { span, .. }
            | RevokeRoles { span, .. }
            | SetRole { span, .. }
            | SetDefaultRole { span, .. }
            | ShowUsers { span }
            | ShowRoles { span }
            | ShowGrants { span, .. } => *span,
        }
    }
}

/// `CREATE USER` / `ALTER USER` with their options.
fn write_user_statement(
    f: &mut Formatter<'_>,
    verb: &str,
    condition: &str,
    user: &UserIdentity,
    (auth, require_ssl, default_roles): (&Option<Auth>, &Option<bool>, &Option<RoleChoice>),
) -> fmt::Result {
    write!(f, "{verb}{condition}{user}")?;
    if let Some(a) = auth {
        write!(f, " {a}")?;
    }
    match require_ssl {
        Some(true) => f.write_str(" REQUIRE SSL")?,
        Some(false) => f.write_str(" REQUIRE NONE")?,
        None => {}
    }
    if let Some(r) = default_roles {
        write!(f, " DEFAULT ROLE {r}")?;
    }
    Ok(())
}

fn write_privileges(f: &mut Formatter<'_>, p: &PrivilegeList) -> fmt::Result {
    match p {
        PrivilegeList::All => f.write_str("ALL PRIVILEGES"),
        PrivilegeList::Named(names) => f.write_str(&names.join(", ")),
    }
}

impl Display for AccountStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        use AccountStatement::*;
        match self {
            CreateUser {
                if_not_exists,
                user,
                auth,
                require_ssl,
                default_roles,
                ..
            } => write_user_statement(
                f,
                "CREATE USER ",
                if *if_not_exists { "IF NOT EXISTS " } else { "" },
                user,
                (auth, require_ssl, default_roles),
            ),
            DropUser {
                if_exists, user, ..
            } => write!(
                f,
                "DROP USER {}{user}",
                if *if_exists { "IF EXISTS " } else { "" }
            ),
            AlterUser {
                if_exists,
                user,
                auth,
                require_ssl,
                default_roles,
                ..
            } => write_user_statement(
                f,
                "ALTER USER ",
                if *if_exists { "IF EXISTS " } else { "" },
                user,
                (auth, require_ssl, default_roles),
            ),
            SetPassword { user, secret, .. } => {
                f.write_str("SET PASSWORD")?;
                if let Some(u) = user {
                    write!(f, " FOR {u}")?;
                }
                match secret {
                    AuthSecret::Password(p) => {
                        write!(f, " = PASSWORD({})", QuotedString(&p.value))
                    }
                    AuthSecret::Hash(h) => write!(f, " = {}", QuotedString(&h.value)),
                    AuthSecret::None => f.write_str(" = ''"),
                }
            }
            CreateRole {
                if_not_exists,
                roles,
                comment,
                ..
            } => {
                f.write_str("CREATE ROLE ")?;
                if *if_not_exists {
                    f.write_str("IF NOT EXISTS ")?;
                }
                write_roles(f, roles)?;
                if let Some(c) = comment {
                    write!(f, " COMMENT {}", QuotedString(&c.value))?;
                }
                Ok(())
            }
            DropRole {
                if_exists, roles, ..
            } => {
                f.write_str("DROP ROLE ")?;
                if *if_exists {
                    f.write_str("IF EXISTS ")?;
                }
                write_roles(f, roles)
            }
            Grant {
                privileges,
                on,
                grantee,
                with_grant_option,
                ..
            } => {
                f.write_str("GRANT ")?;
                write_privileges(f, privileges)?;
                write!(f, " ON {on} TO {grantee}")?;
                if *with_grant_option {
                    f.write_str(" WITH GRANT OPTION")?;
                }
                Ok(())
            }
            Revoke {
                privileges,
                on,
                grantee,
                ..
            } => {
                f.write_str("REVOKE ")?;
                write_privileges(f, privileges)?;
                write!(f, " ON {on} FROM {grantee}")
            }
            GrantRoles { roles, grantee, .. } => {
                f.write_str("GRANT ")?;
                write_roles(f, roles)?;
                write!(f, " TO {grantee}")
            }
            RevokeRoles { roles, grantee, .. } => {
                f.write_str("REVOKE ")?;
                write_roles(f, roles)?;
                write!(f, " FROM {grantee}")
            }
            SetRole { choice, .. } => {
                f.write_str("SET ROLE ")?;
                match choice {
                    SetRoleChoice::Default => f.write_str("DEFAULT"),
                    SetRoleChoice::None => f.write_str("NONE"),
                    SetRoleChoice::All { except } if except.is_empty() => f.write_str("ALL"),
                    SetRoleChoice::All { except } => {
                        f.write_str("ALL EXCEPT ")?;
                        write_roles(f, except)
                    }
                    SetRoleChoice::Roles(r) => write_roles(f, r),
                }
            }
            SetDefaultRole { choice, user, .. } => {
                write!(f, "SET DEFAULT ROLE {choice} TO {user}")
            }
            ShowUsers { .. } => f.write_str("SHOW USERS"),
            ShowRoles { .. } => f.write_str("SHOW ROLES"),
            ShowGrants { of, .. } => match of {
                None => f.write_str("SHOW GRANTS"),
                Some(Grantee::User(u)) => write!(f, "SHOW GRANTS FOR {u}"),
                Some(g @ Grantee::Role(_)) => write!(f, "SHOW GRANTS FOR {g}"),
            },
        }
    }
}
