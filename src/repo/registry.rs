//! The repositories a cluster has registered (CREATE REPOSITORY), opened by name.
//!
//! The catalog keeps each repository's statement; every use resolves it again, so a repository
//! created by one srbackup version is read by the next.

use crate::catalog::{Catalog, RepositoryRow};
use crate::code::Code;
use crate::sql::{CreateRepository, Ident, Literal, Problem, Properties, Property, Span, closest};

use super::{RepoError, Repository, RepositoryConfig, Result};

/// The configuration a catalog row stands for.
pub fn config_of(row: &RepositoryRow) -> Result<RepositoryConfig> {
    if let Some(reason) = &row.sealed_error {
        return Err(RepoError::Unavailable {
            repository: row.name.clone(),
            reason: format!("its credentials cannot be opened: {reason}"),
        });
    }
    let stmt = CreateRepository {
        read_only: row.read_only,
        name: Ident::new(&row.name),
        broker: row.broker.as_deref().map(Literal::new),
        location: Literal::new(&row.location),
        properties: Properties(
            row.properties
                .iter()
                .map(|(k, v)| Property {
                    key: Literal::new(k),
                    value: Literal::new(v),
                })
                .collect(),
        ),
        span: Span::default(),
    };
    super::resolve(&stmt).map_err(|p| RepoError::Unavailable {
        repository: row.name.clone(),
        reason: format!(
            "its definition no longer resolves ({}); drop it and create it again",
            p.message
        ),
    })
}

/// The repository named `name` (at `span` in the statement), opened.
pub fn open(catalog: &Catalog, name: &Ident) -> Result<Repository> {
    let row = catalog.view().repository(&name.value)?;
    let Some(row) = row else {
        return Err(unknown_repository(catalog, name));
    };
    Repository::open(&config_of(&row)?)
}

/// "repository x does not exist", at the name, with the closest existing one.
pub fn unknown_repository(catalog: &Catalog, name: &Ident) -> RepoError {
    let names: Vec<String> = catalog
        .view()
        .repositories()
        .map(|rows| rows.into_iter().map(|r| r.name).collect())
        .unwrap_or_default();
    let mut p = Problem::new(
        Code::RepoUnknown,
        name.span,
        format!("repository {} does not exist", name.value),
    )
    .label("unknown repository");
    p = match closest(&name.value, names.iter().map(String::as_str)) {
        Some(s) => p.help(format!("did you mean {s}?")),
        None if names.is_empty() => {
            p.help("there are no repositories; create one with CREATE REPOSITORY")
        }
        None => p.help(format!("repositories: {}", names.join(", "))),
    };
    RepoError::At(Box::new(p))
}

/// Who holds a repository lease: enough to find the process.
pub fn lease_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    format!("srbackup pid {} on {host}", std::process::id())
}
