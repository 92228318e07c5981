//! The crate's error. The stages up to `repo` have errors of their own (`sql::SqlError`,
//! `config::ConfigError`, `catalog::CatalogError`, `engine::EngineError`, `repo::RepoError`);
//! `plan`, `exec`, `session` and `server` return this one, which each converts into. Every
//! error has a [`Code`], from which the server picks its MySQL error number.

use crate::catalog::CatalogError;
use crate::code::Code;
use crate::config::ConfigError;
use crate::engine::EngineError;
use crate::repo::RepoError;
use crate::sql::Problem;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// A problem at a place in the statement being run; the session renders it against the
    /// statement's text.
    #[error("{}", .0.message)]
    At(Box<Problem>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Catalog(CatalogError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(EngineError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Repo(RepoError),
    /// The StarRocks target (a live FE) failed or refused.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fe(#[from] crate::fe::FeError),
    /// A statement the session's user may not run: StarRocks' "Access denied; you need …"
    /// message, word for word (the server sends it as error 5203).
    #[error("{message}")]
    #[diagnostic(code(srbackup::access::denied))]
    Denied { message: String },
    /// Something that cannot be done, said in words, with what to do instead.
    #[error("{message}")]
    #[diagnostic(code(srbackup::invalid))]
    Invalid {
        message: String,
        #[help]
        help: Option<String>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn at(problem: Problem) -> Self {
        Error::At(Box::new(problem))
    }

    pub fn invalid(message: impl Into<String>, help: Option<&str>) -> Self {
        Error::Invalid {
            message: message.into(),
            help: help.map(str::to_string),
        }
    }

    /// The diagnostic code (the same text miette prints).
    pub fn error_code(&self) -> Code {
        match self {
            Error::At(p) => p.code,
            Error::Config(e) => match e {
                ConfigError::Invalid { .. } => Code::ConfigInvalid,
                ConfigError::Io { .. } => Code::ConfigIo,
            },
            Error::Catalog(e) => catalog_code(e),
            Error::Engine(e) => e.error_code(),
            Error::Repo(e) => e.error_code(),
            Error::Fe(e) => match e {
                crate::fe::FeError::Url { .. } => Code::StarRocksUrl,
                crate::fe::FeError::Connect { .. } => Code::StarRocksConnect,
                crate::fe::FeError::Refused { .. } => Code::StarRocksRefused,
                crate::fe::FeError::Answer { .. } => Code::StarRocksAnswer,
                crate::fe::FeError::Io { .. } => Code::StarRocksIo,
            },
            Error::Invalid { .. } => Code::Invalid,
            Error::Denied { .. } => Code::AccessDenied,
        }
    }
}

fn catalog_code(e: &CatalogError) -> Code {
    match e {
        CatalogError::Busy { .. } => Code::CatalogBusy,
        CatalogError::NewerSchema { .. } => Code::CatalogNewer,
        CatalogError::Damaged { .. } => Code::CatalogDamaged,
        CatalogError::Sqlite { .. } => Code::CatalogSqlite,
        CatalogError::Io { .. } => Code::CatalogIo,
        CatalogError::Secret { .. } => Code::CatalogSecret,
        CatalogError::Full { .. } => Code::CatalogFull,
    }
}

/// Positioned problems and catalog errors keep their own variant whichever stage raised them,
/// so that renderers look in one place.
impl From<EngineError> for Error {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::At(p) => Error::At(p),
            EngineError::Catalog(c) => Error::Catalog(c),
            other => Error::Engine(other),
        }
    }
}

impl From<RepoError> for Error {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::At(p) => Error::At(p),
            RepoError::Catalog(c) => Error::Catalog(c),
            other => Error::Repo(other),
        }
    }
}

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        Error::Catalog(e)
    }
}

impl EngineError {
    pub fn error_code(&self) -> Code {
        match self {
            EngineError::At(p) => p.code,
            EngineError::Catalog(c) => catalog_code(c),
            EngineError::Io { .. } => Code::EngineIo,
            EngineError::Arrow(_) => Code::EngineData,
            EngineError::Invalid { .. } => Code::EngineInvalid,
            EngineError::Query(_) => Code::EngineQuery,
        }
    }
}

impl RepoError {
    pub fn error_code(&self) -> Code {
        match self {
            RepoError::At(p) => p.code,
            RepoError::Catalog(c) => catalog_code(c),
            RepoError::Unavailable { .. } => Code::RepoUnavailable,
            RepoError::Encryption { .. } => Code::RepoEncryption,
            RepoError::Storage { .. } => Code::RepoStorage,
            RepoError::Format { .. } => Code::RepoFormat,
            RepoError::NoSuchSnapshot { .. } => Code::RepoNoSnapshot,
            RepoError::NoPolicy { .. } => Code::RepoNoPolicy,
            RepoError::Busy { .. } => Code::RepoBusy,
            RepoError::ReadOnly { .. } => Code::RepoReadOnly,
            RepoError::Corrupt { .. } => Code::RepoCorrupt,
            RepoError::Io { .. } => Code::RepoIo,
            RepoError::LeaseLost { .. } => Code::RepoLeaseLost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miette::Diagnostic;

    /// The code miette prints is the code the server maps.
    #[test]
    fn every_error_prints_the_code_it_reports() {
        let path = std::path::PathBuf::from("x");
        let errors: Vec<Error> = vec![
            Error::invalid("no", None),
            CatalogError::Busy { path: path.clone() }.into(),
            CatalogError::Damaged {
                path: path.clone(),
                reason: "r".into(),
            }
            .into(),
            CatalogError::NewerSchema {
                path: path.clone(),
                found: 9,
            }
            .into(),
            ConfigError::Invalid {
                path: path.clone(),
                message: "m".into(),
            }
            .into(),
            EngineError::invalid("m", None).into(),
            EngineError::Query("q".into()).into(),
            EngineError::Arrow("a".into()).into(),
            EngineError::Io {
                path: path.clone(),
                source: std::io::Error::other("x"),
            }
            .into(),
            RepoError::Busy {
                repository: "r".into(),
                reason: "x".into(),
            }
            .into(),
            RepoError::ReadOnly {
                repository: "r".into(),
            }
            .into(),
            RepoError::NoPolicy {
                repository: "r".into(),
            }
            .into(),
            RepoError::Corrupt {
                what: "w".into(),
                expected: "e".into(),
                actual: "a".into(),
            }
            .into(),
            RepoError::Unavailable {
                repository: "r".into(),
                reason: "x".into(),
            }
            .into(),
            RepoError::Storage {
                repository: "r".into(),
                operation: "o".into(),
                reason: "x".into(),
                transient: false,
            }
            .into(),
            RepoError::NoSuchSnapshot {
                repository: "r".into(),
                what: "s".into(),
                available: None,
            }
            .into(),
            RepoError::LeaseLost {
                repository: "r".into(),
                lease: "l".into(),
                reason: "x".into(),
            }
            .into(),
            RepoError::Io {
                path: path.clone(),
                source: std::io::Error::other("x"),
            }
            .into(),
            CatalogError::Full { path: path.clone() }.into(),
            CatalogError::Io {
                path: path.clone(),
                source: std::io::Error::other("x"),
            }
            .into(),
            CatalogError::Secret {
                path: path.clone(),
                reason: "x".into(),
            }
            .into(),
            EngineError::Catalog(CatalogError::Busy { path: path.clone() }).into(),
        ];
        for e in errors {
            let printed = e.code_text();
            assert_eq!(printed, e.error_code().as_str(), "{e:?}");
        }
    }

    impl Error {
        fn code_text(&self) -> String {
            Diagnostic::code(self)
                .map(|c| c.to_string())
                .unwrap_or_default()
        }
    }
}
