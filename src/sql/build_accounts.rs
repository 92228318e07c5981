//! Parse tree → AST for account statements (`accounts.rs`).

use super::Rule;
use super::accounts::*;
use super::ast::*;
use super::build::{
    Built, Children, Node, first_child, ident_of, internal, literal_of, qualified_of, span_of,
};
use super::error::Problem;
use crate::code::Code;

pub(super) fn is_account(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::create_user
            | Rule::drop_user
            | Rule::alter_user
            | Rule::set_password
            | Rule::create_role
            | Rule::drop_role
            | Rule::grant_privileges
            | Rule::grant_roles
            | Rule::revoke_privileges
            | Rule::revoke_roles
            | Rule::set_role
            | Rule::set_default_role
            | Rule::show_users
            | Rule::show_roles
            | Rule::show_grants
    )
}

pub(super) fn statement(pair: Node) -> Built<AccountStatement> {
    let span = span_of(&pair);
    let rule = pair.as_rule();
    let mut c = Children::of(pair.clone());
    Ok(match rule {
        Rule::create_user => AccountStatement::CreateUser {
            if_not_exists: c.has(Rule::if_not_exists),
            user: user_identity(c.require(Rule::user_identity, "user")?)?,
            auth: c.find(Rule::auth_option).map(auth).transpose()?,
            require_ssl: c.find(Rule::require_ssl).map(require_ssl),
            default_roles: c.find(Rule::default_roles).map(default_roles).transpose()?,
            span,
        },
        Rule::drop_user => AccountStatement::DropUser {
            if_exists: c.has(Rule::if_exists),
            user: user_identity(c.require(Rule::user_identity, "user")?)?,
            span,
        },
        Rule::alter_user => {
            let if_exists = c.has(Rule::if_exists);
            let user = user_identity(c.require(Rule::user_identity, "user")?)?;
            let (mut a, mut r, mut d) = (None, None, None);
            for child in pair.clone().into_inner() {
                let twice = match child.as_rule() {
                    Rule::auth_option => a.replace(auth(child.clone())?).is_some(),
                    Rule::require_ssl => r.replace(require_ssl(child.clone())).is_some(),
                    Rule::default_roles => d.replace(default_roles(child.clone())?).is_some(),
                    _ => false,
                };
                if twice {
                    return Err(Box::new(
                        Problem::new(Code::Syntax, span_of(&child), "this clause is given twice")
                            .help("give each of IDENTIFIED, REQUIRE and DEFAULT ROLE once"),
                    ));
                }
            }
            AccountStatement::AlterUser {
                if_exists,
                user,
                auth: a,
                require_ssl: r,
                default_roles: d,
                span,
            }
        }
        Rule::set_password => {
            let user = c.find(Rule::user_identity).map(user_identity).transpose()?;
            let secret = if let Some(call) = c.find(Rule::password_call) {
                AuthSecret::Password(literal_of(first_child_of(call, Rule::password_text)?)?)
            } else {
                hash(c.require(Rule::hashed_text, "password hash")?)?
            };
            AccountStatement::SetPassword { user, secret, span }
        }
        Rule::create_role => AccountStatement::CreateRole {
            if_not_exists: c.has(Rule::if_not_exists),
            roles: role_list(c.require(Rule::role_list, "role")?)?,
            comment: match c.find(Rule::comment) {
                Some(cm) => Some(literal_of(
                    cm.into_inner()
                        .find(|p| matches!(p.as_rule(), Rule::dq_string | Rule::sq_string))
                        .ok_or_else(|| internal(&pair, "comment"))?,
                )?),
                None => None,
            },
            span,
        },
        Rule::drop_role => AccountStatement::DropRole {
            if_exists: c.has(Rule::if_exists),
            roles: role_list(c.require(Rule::role_list, "role")?)?,
            span,
        },
        Rule::grant_privileges | Rule::revoke_privileges => {
            let list = c.require(Rule::privilege_list, "privileges")?;
            let on = grant_on(c.require(Rule::grant_object, "object")?)?;
            let privileges = privilege_list(list, on.kind())?;
            let grantee = grantee(c.require(Rule::grantee, "grantee")?)?;
            if rule == Rule::grant_privileges {
                AccountStatement::Grant {
                    privileges,
                    on,
                    grantee,
                    with_grant_option: c.has(Rule::with_grant_option),
                    span,
                }
            } else {
                AccountStatement::Revoke {
                    privileges,
                    on,
                    grantee,
                    span,
                }
            }
        }
        Rule::grant_roles | Rule::revoke_roles => {
            let roles = role_list(c.require(Rule::role_list, "role")?)?;
            let grantee = grantee(c.require(Rule::grantee, "grantee")?)?;
            if rule == Rule::grant_roles {
                AccountStatement::GrantRoles {
                    roles,
                    grantee,
                    span,
                }
            } else {
                AccountStatement::RevokeRoles {
                    roles,
                    grantee,
                    span,
                }
            }
        }
        Rule::set_role => {
            let choice = if c.has(Rule::roles_default) {
                SetRoleChoice::Default
            } else if c.has(Rule::roles_none) {
                SetRoleChoice::None
            } else if let Some(all) = c.find(Rule::roles_all_except) {
                let except = match Children::of(all).find(Rule::role_list) {
                    Some(l) => role_list(l)?,
                    None => Vec::new(),
                };
                SetRoleChoice::All { except }
            } else {
                SetRoleChoice::Roles(role_list(c.require(Rule::role_list, "role")?)?)
            };
            AccountStatement::SetRole { choice, span }
        }
        Rule::set_default_role => AccountStatement::SetDefaultRole {
            choice: role_choice(c.require(Rule::role_choice, "roles")?)?,
            user: user_identity(c.require(Rule::user_identity, "user")?)?,
            span,
        },
        Rule::show_users => AccountStatement::ShowUsers { span },
        Rule::show_roles => AccountStatement::ShowRoles { span },
        Rule::show_grants => {
            let of = if let Some(r) = c.find(Rule::grantee_role) {
                Some(Grantee::Role(role_name(first_child_of(
                    r,
                    Rule::role_name,
                )?)?))
            } else {
                c.find(Rule::user_identity)
                    .map(user_identity)
                    .transpose()?
                    .map(Grantee::User)
            };
            AccountStatement::ShowGrants { of, span }
        }
        _ => return Err(internal(&pair, "account statement")),
    })
}

fn first_child_of(pair: Node, rule: Rule) -> Built<Node> {
    let p = pair.clone();
    pair.into_inner()
        .find(|c| c.as_rule() == rule)
        .ok_or_else(|| internal(&p, "name"))
}

/// A name written as a string or an identifier.
fn text_of(pair: Node) -> Built<(String, Span)> {
    let inner = first_child(&pair, "name")?;
    Ok(match inner.as_rule() {
        Rule::dq_string | Rule::sq_string => {
            let l = literal_of(inner)?;
            (l.value, l.span)
        }
        _ => {
            let i = ident_of(inner)?;
            (i.value, i.span)
        }
    })
}

fn user_identity(pair: Node) -> Built<UserIdentity> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    let (name, name_span) = text_of(c.require(Rule::user_part, "user name")?)?;
    let host = match c.find(Rule::host_part) {
        Some(h) => text_of(h)?.0,
        None => "%".to_string(),
    };
    if name.is_empty() {
        return Err(Box::new(
            Problem::new(
                Code::AccessInvalid,
                name_span,
                "a user name cannot be empty",
            )
            .help("name the user: 'name'@'host'"),
        ));
    }
    // MySQL's host forms: a name, an address (v4 or v6), a netmask, `%` and `_` patterns.
    if !valid_host(&host) && host.chars().count() <= 255 {
        return Err(Box::new(
            Problem::new(
                Code::AccessInvalid,
                span,
                format!("'{host}' is not a host: a name, an address or a pattern with % and _"),
            )
            .help("write '%' for any host"),
        ));
    }
    if name.chars().count() > 128 || host.chars().count() > 255 {
        return Err(Box::new(Problem::new(
            Code::AccessInvalid,
            span,
            "a user name is at most 128 characters and a host 255",
        )));
    }
    Ok(UserIdentity { name, host, span })
}

fn role_name(pair: Node) -> Built<Ident> {
    let (value, span) = text_of(pair)?;
    if value.is_empty() || value.chars().count() > 128 {
        return Err(Box::new(Problem::new(
            Code::AccessInvalid,
            span,
            "a role name is 1 to 128 characters",
        )));
    }
    Ok(Ident { value, span })
}

fn role_list(pair: Node) -> Built<Vec<Ident>> {
    pair.into_inner()
        .filter(|p| p.as_rule() == Rule::role_name)
        .map(role_name)
        .collect()
}

fn role_choice(pair: Node) -> Built<RoleChoice> {
    let inner = first_child(&pair, "roles")?;
    Ok(match inner.as_rule() {
        Rule::roles_none => RoleChoice::None,
        Rule::roles_all => RoleChoice::All,
        _ => RoleChoice::Roles(role_list(inner)?),
    })
}

fn default_roles(pair: Node) -> Built<RoleChoice> {
    role_choice(first_child_of(pair, Rule::role_choice)?)
}

fn require_ssl(pair: Node) -> bool {
    pair.into_inner().any(|p| p.as_rule() == Rule::ssl_on)
}

fn hash(pair: Node) -> Built<AuthSecret> {
    let l = literal_of(pair)?;
    let v = l.value.trim_start_matches('*');
    if v.len() != 40 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Box::new(
            Problem::new(
                Code::AccessInvalid,
                l.span,
                "a password hash is `*` and 40 hexadecimal digits (what PASSWORD('…') returns)",
            )
            .help("write IDENTIFIED BY 'password' to give the password itself"),
        ));
    }
    Ok(AuthSecret::Hash(Literal {
        value: format!("*{}", v.to_ascii_uppercase()),
        span: l.span,
    }))
}

/// The plugins srbackup verifies.
pub const PLUGINS: &[&str] = &["mysql_native_password", "caching_sha2_password"];

fn auth(pair: Node) -> Built<Auth> {
    let whole = pair.clone();
    let mut c = Children::of(pair);
    let plugin = match c.find(Rule::plugin_name) {
        Some(p) => {
            let (name, span) = text_of(p)?;
            let lower = name.to_ascii_lowercase();
            if !PLUGINS.contains(&lower.as_str()) {
                return Err(Box::new(
                    Problem::new(
                        Code::AccessInvalid,
                        span,
                        format!("unknown authentication plugin {name}"),
                    )
                    .help(format!("srbackup verifies {}", PLUGINS.join(" and "))),
                ));
            }
            Some(lower)
        }
        None => None,
    };
    let secret = if c.has(Rule::hashed) || (plugin.is_some() && c.has(Rule::hashed_text)) {
        let node = c
            .find(Rule::password_text)
            .or_else(|| c.find(Rule::hashed_text))
            .ok_or_else(|| internal(&whole, "hash"))?;
        hash(node)?
    } else if let Some(p) = c.find(Rule::password_text) {
        AuthSecret::Password(literal_of(p)?)
    } else {
        AuthSecret::None
    };
    Ok(Auth { plugin, secret })
}

/// A privilege's words, upper case and single-spaced, checked against what `kind` has.
fn privilege_list(pair: Node, kind: ObjectType) -> Built<PrivilegeList> {
    if pair
        .clone()
        .into_inner()
        .any(|p| p.as_rule() == Rule::all_privileges)
    {
        return Ok(PrivilegeList::All);
    }
    let mut names = Vec::new();
    for p in pair.into_inner().filter(|p| p.as_rule() == Rule::privilege) {
        let name = p
            .as_str()
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect::<Vec<_>>()
            .join(" ");
        if !kind.privileges().contains(&name.as_str()) {
            let not_grantable = kind == ObjectType::System && (name == "GRANT" || name == "NODE");
            let help = if not_grantable {
                format!(
                    "{name} is held through a built-in role only ({})",
                    if name == "GRANT" {
                        "user_admin"
                    } else {
                        "cluster_admin"
                    }
                )
            } else {
                format!(
                    "on {} the privileges are {}",
                    kind.keyword(),
                    kind.privileges().join(", ")
                )
            };
            return Err(Box::new(
                Problem::new(
                    Code::AccessInvalid,
                    span_of(&p),
                    format!("{name} is not a privilege on {}", kind.keyword()),
                )
                .help(help),
            ));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(PrivilegeList::Named(names))
}

fn object_type(pair: Node) -> Built<ObjectType> {
    let inner = first_child(&pair, "object type")?;
    Ok(match inner.as_rule() {
        Rule::kw_table => ObjectType::Table,
        Rule::kw_database => ObjectType::Database,
        Rule::kw_catalog => ObjectType::Catalog,
        Rule::kw_view => ObjectType::View,
        Rule::mv_type => ObjectType::MaterializedView,
        Rule::global_function_type => ObjectType::GlobalFunction,
        Rule::kw_function => ObjectType::Function,
        Rule::kw_user => ObjectType::User,
        _ => return Err(internal(&pair, "object type")),
    })
}

fn grant_on(pair: Node) -> Built<GrantOn> {
    let inner = first_child(&pair, "object")?;
    Ok(match inner.as_rule() {
        Rule::on_system => GrantOn::System,
        Rule::on_all_in => {
            let mut c = Children::of(inner.clone());
            let kind_node = c.require(Rule::all_grant_kind, "object type")?;
            let k = first_child(&kind_node, "object type")?;
            let kind = match k.as_rule() {
                Rule::mv_all => ObjectType::MaterializedView,
                Rule::kw_tables => ObjectType::Table,
                Rule::kw_views => ObjectType::View,
                Rule::kw_functions => ObjectType::Function,
                Rule::kw_databases => ObjectType::Database,
                Rule::kw_catalogs => ObjectType::Catalog,
                Rule::global_functions => ObjectType::GlobalFunction,
                Rule::kw_users => ObjectType::User,
                _ => return Err(internal(&inner, "object type")),
            };
            let database = match c.find(Rule::db_name) {
                Some(d) => Some(ident_of(d)?),
                None => None,
            };
            let scoped = database.is_some() || c.has(Rule::in_all_databases);
            if kind.in_database() && !scoped {
                return Err(Box::new(Problem::new(
                    Code::AccessInvalid,
                    span_of(&inner),
                    format!(
                        "say which databases: ALL {} IN DATABASE <db> or IN ALL DATABASES",
                        kind.plural()
                    ),
                )));
            }
            if !kind.in_database() && scoped {
                return Err(Box::new(Problem::new(
                    Code::AccessInvalid,
                    span_of(&inner),
                    format!("ALL {} takes no IN clause", kind.plural()),
                )));
            }
            GrantOn::All { kind, database }
        }
        Rule::on_typed => {
            let mut c = Children::of(inner.clone());
            let kind = object_type(c.require(Rule::object_type, "object type")?)?;
            let mut names = Vec::new();
            for t in inner
                .clone()
                .into_inner()
                .filter(|p| p.as_rule() == Rule::grant_target)
            {
                let target = first_child(&t, "object")?;
                let name = match target.as_rule() {
                    Rule::user_identity_target => {
                        let span = span_of(&target);
                        let name = literal_of(
                            target
                                .clone()
                                .into_inner()
                                .find(|p| matches!(p.as_rule(), Rule::dq_string | Rule::sq_string))
                                .ok_or_else(|| internal(&target, "user"))?,
                        )?
                        .value;
                        let host = text_of(first_child_of(target.clone(), Rule::host_part)?)?.0;
                        GrantName::User(UserIdentity { name, host, span })
                    }
                    Rule::function_target => {
                        let name = qualified_of(target.clone())?;
                        let arguments = target
                            .clone()
                            .into_inner()
                            .filter(|p| p.as_rule() == Rule::column_type)
                            .map(|p| super::build_ddl::column_type(p).map(|t| t.to_string()))
                            .collect::<Built<Vec<_>>>()?;
                        GrantName::Function { name, arguments }
                    }
                    _ => {
                        let q = qualified_of(target.clone())?;
                        if kind == ObjectType::User {
                            GrantName::User(UserIdentity {
                                name: q.name.value.clone(),
                                host: "%".into(),
                                span: span_of(&target),
                            })
                        } else {
                            GrantName::Object(q)
                        }
                    }
                };
                let fits = match (&name, kind) {
                    (GrantName::User(_), ObjectType::User) => true,
                    (
                        GrantName::Function { .. },
                        ObjectType::Function | ObjectType::GlobalFunction,
                    ) => true,
                    (GrantName::Object(q), ObjectType::Database | ObjectType::Catalog) => {
                        q.database.is_none()
                    }
                    (GrantName::Object(_), k) => k.in_database() && k != ObjectType::Function,
                    _ => false,
                };
                if !fits {
                    return Err(Box::new(Problem::new(
                        Code::AccessInvalid,
                        span_of(&t),
                        format!("this does not name a {}", kind.keyword()),
                    )));
                }
                names.push(name);
            }
            GrantOn::Named { kind, names }
        }
        Rule::on_table_name => GrantOn::Named {
            kind: ObjectType::Table,
            names: vec![GrantName::Object(qualified_of(inner)?)],
        },
        _ => return Err(internal(&pair, "object")),
    })
}

fn grantee(pair: Node) -> Built<Grantee> {
    let inner = first_child(&pair, "grantee")?;
    Ok(match inner.as_rule() {
        Rule::grantee_role => Grantee::Role(role_name(first_child_of(inner, Rule::role_name)?)?),
        _ => Grantee::User(user_identity(first_child_of(inner, Rule::user_identity)?)?),
    })
}
