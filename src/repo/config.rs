//! CREATE REPOSITORY → the storage backend it means, without connecting to anything.
//!
//! StarRocks' repository properties (`aws.s3.*`, Hadoop's `fs.s3a.*`, HDFS `username`/`password`)
//! resolve to one [`Backend`]: S3 (AWS, MinIO and other S3-compatible endpoints, GCS through its
//! S3 interoperability), HDFS, or the local filesystem. Credentials are [`Secret`]s, which never
//! print: a resolved configuration can be shown to a user, logged or snapshot-tested.

use crate::code::Code;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::sql::{CreateRepository, Literal, MASK, Problem, Span, closest};

/// A credential. It prints and serializes as a mask; only the storage client reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The real value, for the storage client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum S3Credentials {
    /// An access key pair (`aws.s3.access_key`/`secret_key` or `fs.s3a.access.key`/`secret.key`).
    Static {
        access_key: Secret,
        secret_key: Secret,
        session_token: Option<Secret>,
    },
    /// The instance profile (EC2 instance metadata).
    InstanceProfile,
    /// Assume `role_arn`, starting from the instance profile or from static keys.
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
        base: Box<S3Credentials>,
    },
}

/// Which S3 service the endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum S3Flavor {
    Aws,
    /// Google Cloud Storage through its S3 (XML) interoperability: HMAC keys, no bulk delete.
    GcsInterop,
    /// MinIO or another S3-compatible server.
    Compatible,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum Backend {
    Local {
        path: String,
    },
    S3 {
        flavor: S3Flavor,
        bucket: String,
        prefix: String,
        /// `None`: the AWS endpoint of the region.
        endpoint: Option<String>,
        region: String,
        allow_http: bool,
        path_style: bool,
        /// GCS's S3 interoperability has no DeleteObjects; delete one object at a time.
        bulk_delete: bool,
        credentials: S3Credentials,
    },
    Hdfs {
        /// `hdfs://host:port`
        url: String,
        path: String,
        username: Option<String>,
        password: Option<Secret>,
        /// Other Hadoop settings (`dfs.*`, `hadoop.*`, Kerberos), passed to the client as given.
        hadoop: BTreeMap<String, String>,
    },
}

/// A repository as resolved from its statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepositoryConfig {
    pub name: String,
    pub read_only: bool,
    pub location: String,
    /// `WITH BROKER name`: recorded; srbackup talks to storage directly.
    pub broker: Option<String>,
    #[serde(flatten)]
    pub backend: Backend,
    /// Client-side encryption (`"encryption" = "aes-256-gcm"` and where the key comes from).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
}

/// Where an encrypted repository's key comes from (see `repo::crypto`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "key_source", rename_all = "snake_case")]
pub enum Encryption {
    /// `"encryption.key"`: 64 hex digits, kept sealed in the catalog and masked everywhere.
    Key { key: Secret },
    /// `"encryption.key_file"`: a file holding the key (64 hex digits or 32 bytes), read at
    /// every use.
    KeyFile { path: String },
    /// `"encryption.passphrase_env"`: the environment variable of the srbackup process that
    /// holds a passphrase, stretched with Argon2id.
    PassphraseEnv { variable: String },
}

/// The names `encryption.passphrase_env` may give start with this.
pub const PASSPHRASE_ENV_PREFIX: &str = "SRBACKUP_PASSPHRASE";

/// The one algorithm of encrypted repositories.
pub const ENCRYPTION_ALGORITHM: &str = "aes-256-gcm";

const ENCRYPTION_KEYS: &[&str] = &[
    "encryption",
    "encryption.key",
    "encryption.key_file",
    "encryption.passphrase_env",
];

/// Takes the encryption properties out of `props` (every backend accepts them).
fn encryption(props: &mut Props<'_>) -> Resolved<Option<Encryption>> {
    let mut given: BTreeMap<&str, (&Literal, &Literal)> = BTreeMap::new();
    for key in ENCRYPTION_KEYS {
        if let Some(kv) = props.map.remove(*key) {
            given.insert(key, kv);
        }
    }
    let sources: Vec<&str> = ENCRYPTION_KEYS[1..]
        .iter()
        .copied()
        .filter(|k| given.contains_key(k))
        .collect();
    let Some((algorithm_key, algorithm)) = given.get("encryption").copied() else {
        return match sources.first() {
            None => Ok(None),
            Some(k) => Err(Box::new(
                Problem::new(
                    Code::RepoProperty,
                    given[k].0.span,
                    format!("\"{k}\" without \"encryption\""),
                )
                .label("a key for no encryption")
                .help("add \"encryption\" = \"aes-256-gcm\""),
            )),
        };
    };
    if !algorithm.value.eq_ignore_ascii_case(ENCRYPTION_ALGORITHM) {
        return Err(Box::new(
            Problem::new(
                Code::RepoProperty,
                algorithm.span,
                format!("unknown encryption \"{}\"", algorithm.value),
            )
            .label("not an algorithm srbackup has")
            .help("\"encryption\" = \"aes-256-gcm\""),
        ));
    }
    let source = match sources.as_slice() {
        [one] => *one,
        [] => {
            return Err(Box::new(
                Problem::new(
                    Code::RepoProperty,
                    algorithm_key.span,
                    "encryption needs a key",
                )
                .label("no key given")
                .help("add \"encryption.key\" (64 hex digits), \"encryption.key_file\" (a path) or \"encryption.passphrase_env\" (an environment variable holding a passphrase)"),
            ));
        }
        [first, second, ..] => {
            return Err(Box::new(
                Problem::new(
                    Code::RepoConflict,
                    given[second].0.span,
                    format!("\"{first}\" and \"{second}\" are both given"),
                )
                .label("a second key")
                .also(given[first].0.span, "the first")
                .help("give one source of the key"),
            ));
        }
    };
    let value = given[source].1;
    Ok(Some(match source {
        "encryption.key" => {
            // Never echo the value: it is the key.
            let text = value.value.trim();
            if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Box::new(
                    Problem::new(Code::RepoProperty, value.span, "not a 256-bit key")
                        .label("this value")
                        .help("a key is 64 hex digits (256 bits), such as `openssl rand -hex 32` prints"),
                ));
            }
            Encryption::Key {
                key: Secret(value.value.clone()),
            }
        }
        "encryption.key_file" => {
            if !value.value.starts_with('/') {
                return Err(Box::new(
                    Problem::new(
                        Code::RepoProperty,
                        value.span,
                        "the key file needs an absolute path",
                    )
                    .label("relative"),
                ));
            }
            Encryption::KeyFile {
                path: value.value.clone(),
            }
        }
        _ => {
            if value.value.is_empty() {
                return Err(Box::new(
                    Problem::new(
                        Code::RepoProperty,
                        value.span,
                        "name the environment variable that holds the passphrase",
                    )
                    .label("empty"),
                ));
            }
            // Only variables meant for it: any other (a token in the server's environment)
            // could otherwise be tested, guess by guess, against the key check.
            if !value.value.starts_with(PASSPHRASE_ENV_PREFIX) {
                return Err(Box::new(
                    Problem::new(
                        Code::RepoProperty,
                        value.span,
                        format!(
                            "the passphrase's environment variable must be named {PASSPHRASE_ENV_PREFIX}…"
                        ),
                    )
                    .label("not a passphrase variable")
                    .help(format!(
                        "export {PASSPHRASE_ENV_PREFIX}_VAULT='…' for the srbackup process, and name it here"
                    )),
                ));
            }
            Encryption::PassphraseEnv {
                variable: value.value.clone(),
            }
        }
    }))
}

const S3_KEYS: &[&str] = &[
    "aws.s3.access_key",
    "aws.s3.secret_key",
    "aws.s3.session_token",
    "aws.s3.endpoint",
    "aws.s3.region",
    "aws.s3.use_instance_profile",
    "aws.s3.use_aws_sdk_default_behavior",
    "aws.s3.iam_role_arn",
    "aws.s3.external_id",
    "aws.s3.enable_path_style_access",
    "aws.s3.enable_ssl",
    "fs.s3a.access.key",
    "fs.s3a.secret.key",
    "fs.s3a.session.token",
    "fs.s3a.endpoint",
    "fs.s3a.endpoint.region",
    "fs.s3a.path.style.access",
    "fs.s3a.connection.ssl.enabled",
];

const HDFS_KEYS: &[&str] = &["username", "password"];

/// Hadoop settings passed through to an HDFS client.
fn is_hadoop_key(key: &str) -> bool {
    ["dfs.", "hadoop.", "fs.defaultfs", "kerberos_", "ipc."]
        .iter()
        .any(|p| key.to_ascii_lowercase().starts_with(p))
}

type Resolved<T> = Result<T, Box<Problem>>;

fn problem(code: Code, span: Span, message: impl Into<String>) -> Box<Problem> {
    Box::new(Problem::new(code, span, message))
}

/// Properties by lower-cased key, keeping where each was written.
struct Props<'a> {
    map: BTreeMap<String, (&'a Literal, &'a Literal)>,
    statement: Span,
}

impl<'a> Props<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).map(|(_, v)| v.value.as_str())
    }
    fn key_span(&self, key: &str) -> Span {
        self.map
            .get(key)
            .map(|(k, _)| k.span)
            .unwrap_or(self.statement)
    }
    fn value_span(&self, key: &str) -> Span {
        self.map
            .get(key)
            .map(|(_, v)| v.span)
            .unwrap_or(self.statement)
    }
    fn flag(&self, key: &str) -> Resolved<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(Box::new(
                    Problem::new(
                        Code::RepoProperty,
                        self.value_span(key),
                        format!("{key} must be \"true\" or \"false\""),
                    )
                    .label("not a boolean"),
                )),
            },
        }
    }
    /// The one value of two spellings of a setting (`aws.s3.x` or `fs.s3a.y`); both, if they
    /// disagree, is an error.
    fn either(&self, a: &str, b: &str) -> Resolved<Option<&'a str>> {
        match (self.get(a), self.get(b)) {
            (Some(x), Some(y)) if x != y => Err(Box::new(
                Problem::new(
                    Code::RepoConflict,
                    self.key_span(b),
                    format!("{a} and {b} are both given, with different values"),
                )
                .label("conflicts")
                .also(self.key_span(a), "with this")
                .help("keep one of them"),
            )),
            (Some(x), _) | (None, Some(x)) => Ok(Some(x)),
            (None, None) => Ok(None),
        }
    }
    fn check_known(
        &self,
        allowed: &[&str],
        pass_through: fn(&str) -> bool,
        backend: &str,
    ) -> Resolved<()> {
        for (key, (k, _)) in &self.map {
            if allowed.contains(&key.as_str()) || pass_through(key) {
                continue;
            }
            let article = if backend.starts_with(['H', 'S']) {
                "an"
            } else {
                "a"
            };
            let mut p = Problem::new(
                Code::RepoUnknownProperty,
                k.span,
                format!(
                    "\"{}\" is not a property of {article} {backend} repository",
                    k.value
                ),
            )
            .label("unknown property");
            p = match closest(key, allowed.iter().copied()) {
                Some(s) => p.help(format!("did you mean \"{s}\"?")),
                None if allowed.is_empty() => p.help(format!(
                    "{article} {backend} repository takes no properties"
                )),
                None => p.help(format!(
                    "{article} {backend} repository accepts: {}",
                    allowed.join(", ")
                )),
            };
            return Err(Box::new(p));
        }
        Ok(())
    }
}

fn never(_: &str) -> bool {
    false
}

/// Resolves a CREATE REPOSITORY statement. Nothing is contacted.
pub fn resolve(stmt: &CreateRepository) -> Resolved<RepositoryConfig> {
    let mut map = BTreeMap::new();
    for p in stmt.properties.iter() {
        map.insert(p.key.value.to_ascii_lowercase(), (&p.key, &p.value));
    }
    let mut props = Props {
        map,
        statement: stmt.span,
    };
    let encryption = encryption(&mut props)?;
    let location = stmt.location.value.trim();
    let loc_span = stmt.location.span;
    // Credentials belong in the properties, where they are masked and encrypted at rest; in a
    // URL they would be printed and stored as the location.
    for (text, span) in std::iter::once((location, loc_span)).chain(
        stmt.properties
            .iter()
            .filter(|p| p.key.value.to_ascii_lowercase().contains("endpoint"))
            .map(|p| (p.value.value.as_str(), p.value.span)),
    ) {
        if !crate::sql::userinfo_spans(text).is_empty() {
            return Err(Box::new(
                Problem::new(
                    Code::RepoLocation,
                    span,
                    format!(
                        "\"{}\" holds credentials (user:password@); they are not accepted in a URL",
                        crate::sql::mask_userinfo(text)
                    ),
                )
                .label("credentials in a URL")
                .help("give them as properties (aws.s3.access_key and aws.s3.secret_key, or username and password for HDFS)"),
            ));
        }
    }
    let (scheme, rest) = match location.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None if location.starts_with('/') => ("file".to_string(), location),
        None => {
            return Err(Box::new(
                Problem::new(Code::RepoLocation, loc_span, format!("\"{location}\" is not a repository location"))
                    .label("no scheme")
                    .help("use s3a://bucket/path, hdfs://host:port/path, file:///absolute/path or an absolute path"),
            ));
        }
    };
    let backend = match scheme.as_str() {
        "file" => {
            props.check_known(&[], never, "local")?;
            if !rest.starts_with('/') {
                return Err(problem(
                    Code::RepoLocation,
                    loc_span,
                    "a local repository needs an absolute path (file:///...)",
                ));
            }
            Backend::Local {
                path: rest.trim_end_matches('/').to_string(),
            }
        }
        "s3" | "s3a" | "s3n" => s3(&props, rest, loc_span)?,
        "hdfs" | "viewfs" => {
            props.check_known(HDFS_KEYS, is_hadoop_key, "HDFS")?;
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            if authority.is_empty() {
                return Err(problem(
                    Code::RepoLocation,
                    loc_span,
                    "an HDFS location needs a name node: hdfs://host:port/path",
                ));
            }
            Backend::Hdfs {
                url: format!("{scheme}://{authority}"),
                path: format!("/{}", path.trim_end_matches('/')),
                username: props.get("username").map(str::to_string),
                password: props.get("password").map(|p| Secret(p.to_string())),
                hadoop: props
                    .map
                    .iter()
                    .filter(|(k, _)| is_hadoop_key(k))
                    .map(|(_, (k, v))| (k.value.clone(), v.value.clone()))
                    .collect(),
            }
        }
        other => {
            let help = match other {
                "gs" | "gcs" => {
                    "StarRocks reaches GCS through S3A: write s3a://bucket/path with fs.s3a.access.key, fs.s3a.secret.key and fs.s3a.endpoint = \"storage.googleapis.com\""
                }
                _ => {
                    "srbackup repositories live on s3:// (s3a://, s3n://; AWS, MinIO, GCS), hdfs:// or file://"
                }
            };
            return Err(Box::new(
                Problem::new(
                    Code::RepoScheme,
                    loc_span,
                    format!("{other}:// is not a supported repository location"),
                )
                .label("unsupported scheme")
                .help(help),
            ));
        }
    };
    Ok(RepositoryConfig {
        name: stmt.name.value.clone(),
        read_only: stmt.read_only,
        location: location.to_string(),
        broker: stmt.broker.as_ref().map(|b| b.value.clone()),
        backend,
        encryption,
    })
}

fn s3(props: &Props, rest: &str, loc_span: Span) -> Resolved<Backend> {
    props.check_known(S3_KEYS, never, "S3")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(problem(
            Code::RepoLocation,
            loc_span,
            "an S3 location needs a bucket: s3a://bucket/path",
        ));
    }
    let access = props.either("aws.s3.access_key", "fs.s3a.access.key")?;
    let secret = props.either("aws.s3.secret_key", "fs.s3a.secret.key")?;
    let token = props.either("aws.s3.session_token", "fs.s3a.session.token")?;
    let endpoint = props.either("aws.s3.endpoint", "fs.s3a.endpoint")?;
    let region_given = props.either("aws.s3.region", "fs.s3a.endpoint.region")?;
    let instance_profile = props.flag("aws.s3.use_instance_profile")?.unwrap_or(false)
        || props
            .flag("aws.s3.use_aws_sdk_default_behavior")?
            .unwrap_or(false);
    let static_keys = match (access, secret) {
        (Some(a), Some(s)) => Some(S3Credentials::Static {
            access_key: Secret(a.to_string()),
            secret_key: Secret(s.to_string()),
            session_token: token.map(|t| Secret(t.to_string())),
        }),
        (Some(_), None) => {
            let key = if props.get("fs.s3a.access.key").is_some() {
                "fs.s3a.access.key"
            } else {
                "aws.s3.access_key"
            };
            return Err(Box::new(
                Problem::new(
                    Code::RepoCredentials,
                    props.key_span(key),
                    "an access key without its secret key",
                )
                .label("the secret key is missing")
                .help(if key.starts_with("fs.") {
                    "add \"fs.s3a.secret.key\""
                } else {
                    "add \"aws.s3.secret_key\""
                }),
            ));
        }
        (None, Some(_)) => {
            let key = if props.get("fs.s3a.secret.key").is_some() {
                "fs.s3a.secret.key"
            } else {
                "aws.s3.secret_key"
            };
            return Err(Box::new(
                Problem::new(
                    Code::RepoCredentials,
                    props.key_span(key),
                    "a secret key without its access key",
                )
                .label("the access key is missing"),
            ));
        }
        (None, None) => None,
    };
    if instance_profile && static_keys.is_some() {
        return Err(Box::new(
            Problem::new(
                Code::RepoConflict,
                props.key_span("aws.s3.use_instance_profile"),
                "both an instance profile and access keys are given",
            )
            .label("instance profile")
            .help("use the access keys, or the instance profile (optionally with aws.s3.iam_role_arn), not both"),
        ));
    }
    let base = match (static_keys, instance_profile) {
        (Some(keys), _) => keys,
        (None, true) => S3Credentials::InstanceProfile,
        (None, false) => {
            return Err(Box::new(
                Problem::new(Code::RepoCredentials, props.statement, "the S3 repository has no credentials")
                    .label("no credentials")
                    .help("give aws.s3.access_key and aws.s3.secret_key, or \"aws.s3.use_instance_profile\" = \"true\""),
            ));
        }
    };
    let credentials = match props.get("aws.s3.iam_role_arn") {
        Some(arn) => S3Credentials::AssumeRole {
            role_arn: arn.to_string(),
            external_id: props.get("aws.s3.external_id").map(str::to_string),
            base: Box::new(base),
        },
        None => {
            if props.get("aws.s3.external_id").is_some() {
                return Err(problem(
                    Code::RepoConflict,
                    props.key_span("aws.s3.external_id"),
                    "aws.s3.external_id only applies with aws.s3.iam_role_arn",
                ));
            }
            base
        }
    };
    // The endpoint decides the flavor, the scheme and the addressing style.
    let ssl = props
        .flag("aws.s3.enable_ssl")?
        .or(props.flag("fs.s3a.connection.ssl.enabled")?);
    let (endpoint, allow_http, host) = match endpoint {
        None => (None, false, None),
        Some(e) => {
            let lower = e.to_ascii_lowercase();
            let (scheme_http, host) = if let Some(h) = lower.strip_prefix("http://") {
                (true, h.to_string())
            } else if let Some(h) = lower.strip_prefix("https://") {
                (false, h.to_string())
            } else {
                (ssl == Some(false), lower.clone())
            };
            let host = host.trim_end_matches('/').to_string();
            // What the HTTP client will accept as a URI: checked here, so that a bad endpoint
            // is an error at its token (object_store panics on one when it signs a request).
            let (authority, path) = host.split_once('/').unwrap_or((host.as_str(), ""));
            let authority_ok = !authority.is_empty()
                && authority
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~:[]".contains(c));
            let path_ok = path
                .chars()
                .all(|c| c.is_ascii_graphic() && !"\"<>\\^`{|}#?".contains(c));
            if !authority_ok || !path_ok {
                let key = if props.get("aws.s3.endpoint").is_some() {
                    "aws.s3.endpoint"
                } else {
                    "fs.s3a.endpoint"
                };
                return Err(Box::new(
                    Problem::new(
                        Code::RepoProperty,
                        props.value_span(key),
                        "not a valid endpoint: a host name or address, an optional :port and path, with http:// or https:// before it",
                    )
                    .label("not a URL")
                    .help("for example \"http://127.0.0.1:9000\" or \"https://s3.us-east-1.amazonaws.com\""),
                ));
            }
            let url = format!("{}://{host}", if scheme_http { "http" } else { "https" });
            (Some(url), scheme_http, Some(host))
        }
    };
    let flavor = match host.as_deref() {
        None => S3Flavor::Aws,
        Some(h) if h.ends_with("amazonaws.com") || h.ends_with("amazonaws.com.cn") => S3Flavor::Aws,
        Some(h) if h == "storage.googleapis.com" || h.ends_with(".storage.googleapis.com") => {
            S3Flavor::GcsInterop
        }
        Some(_) => S3Flavor::Compatible,
    };
    // AWS endpoints carry the region: s3.us-east-1.amazonaws.com.
    let region = match (region_given, host.as_deref()) {
        (Some(r), _) => r.to_string(),
        (None, Some(h)) if flavor == S3Flavor::Aws => h
            .strip_prefix("s3.")
            .or_else(|| h.strip_prefix("s3-"))
            .and_then(|r| r.strip_suffix(".amazonaws.com"))
            .filter(|r| !r.is_empty() && !r.contains('.'))
            .unwrap_or("us-east-1")
            .to_string(),
        (None, _) if flavor == S3Flavor::GcsInterop => "auto".to_string(),
        (None, _) => "us-east-1".to_string(),
    };
    let path_style = props
        .flag("aws.s3.enable_path_style_access")?
        .or(props.flag("fs.s3a.path.style.access")?)
        .unwrap_or(flavor != S3Flavor::Aws);
    Ok(Backend::S3 {
        flavor,
        bucket: bucket.to_string(),
        prefix: prefix.trim_end_matches('/').to_string(),
        endpoint,
        region,
        allow_http,
        path_style,
        bulk_delete: flavor != S3Flavor::GcsInterop,
        credentials,
    })
}
