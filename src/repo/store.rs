//! A resolved repository configuration → an `object_store` client for its backend.
//!
//! Every backend is reached through the same `ObjectStore` trait, rooted at the repository's
//! location (a `PrefixStore` inside a bucket or an HDFS directory), so the repository format
//! code above never knows which one it talks to.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::{
    AmazonS3, AmazonS3Builder, AwsCredential, S3ConditionalPut, S3CopyIfNotExists,
};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::signer::Signer;
use object_store::{
    BackoffConfig, ClientOptions, CopyOptions, CredentialProvider, GetOptions, GetResult,
    ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions,
    PutPayload, PutResult, RetryConfig,
};

use super::RepoError;
use super::config::{Backend, RepositoryConfig, S3Credentials, S3Flavor};

/// Requests are retried with exponential backoff on 5xx, timeouts and connection errors; a
/// repository that stays unreachable fails the request after about a minute, not three.
fn retry_config() -> RetryConfig {
    RetryConfig {
        max_retries: 6,
        retry_timeout: Duration::from_secs(60),
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            base: 2.0,
        },
    }
}

fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(300))
}

/// Opens the backend of `config`. Nothing is contacted yet, except that a new local
/// repository's directory is created (unless the repository is read-only).
pub fn connect(config: &RepositoryConfig) -> Result<Arc<dyn ObjectStore>, RepoError> {
    match &config.backend {
        Backend::Local { path } => {
            let dir = std::path::Path::new(path);
            if !config.read_only {
                std::fs::create_dir_all(dir).map_err(|e| RepoError::Unavailable {
                    repository: config.name.clone(),
                    reason: format!("cannot create {}: {e}", dir.display()),
                })?;
            } else if !dir.is_dir() {
                return Err(RepoError::Unavailable {
                    repository: config.name.clone(),
                    reason: format!(
                        "{} is not a directory; a READ ONLY repository must already exist",
                        dir.display()
                    ),
                });
            }
            let store = LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| RepoError::from_store(config, e))?;
            // Its directory as given (links to it are the admin's choice); nothing below it
            // is followed out of it.
            let root = dir.canonicalize().map_err(|e| RepoError::Unavailable {
                repository: config.name.clone(),
                reason: format!("cannot resolve {}: {e}", dir.display()),
            })?;
            Ok(Arc::new(super::confined::Confined::new(
                Arc::new(store),
                root,
            )))
        }
        Backend::S3 { .. } => s3(config),
        Backend::Hdfs { .. } => hdfs(config),
    }
}

fn s3(config: &RepositoryConfig) -> Result<Arc<dyn ObjectStore>, RepoError> {
    let Backend::S3 {
        flavor,
        bucket,
        prefix,
        endpoint,
        region,
        allow_http,
        path_style,
        bulk_delete,
        credentials,
    } = &config.backend
    else {
        unreachable!("s3() is called for S3 backends")
    };
    // Client options first: with_client_options replaces them all, allow_http included.
    let mut b = AmazonS3Builder::new()
        .with_client_options(client_options())
        .with_bucket_name(bucket)
        .with_region(region)
        .with_allow_http(*allow_http)
        .with_virtual_hosted_style_request(!path_style)
        .with_retry(retry_config())
        // Create-if-absent for objects and manifests (If-None-Match: *).
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        // Over TLS, signing each payload's SHA-256 only adds a hash pass on both ends: TLS
        // protects the bytes in transit and every object is named by its content hash anyway.
        // Over plain HTTP the signed payload is what lets the server refuse altered bytes.
        .with_unsigned_payload(!*allow_http);
    if *flavor != S3Flavor::GcsInterop {
        b = b.with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
    }
    // The host AWS requests go to without an endpoint: a bucket or region that does not make
    // a valid host name would panic object_store when it signs the request.
    if format!("https://{bucket}.s3.{region}.amazonaws.com/")
        .parse::<http::Uri>()
        .is_err()
    {
        return Err(RepoError::Unavailable {
            repository: config.name.clone(),
            reason: format!(
                "bucket {bucket:?} in region {region:?} does not make a valid host name"
            ),
        });
    }
    if let Some(e) = endpoint {
        // object_store panics ("request valid: InvalidUri") when it signs a request to an
        // endpoint the HTTP crate cannot parse: refuse such an endpoint here, by name. The
        // bucket is checked the same way, as virtual-hosted requests put it in the host.
        let bad = |what: &str| RepoError::Unavailable {
            repository: config.name.clone(),
            reason: format!("the endpoint {e} is not a valid URL ({what})"),
        };
        let uri: http::Uri = e
            .parse()
            .map_err(|err: http::uri::InvalidUri| bad(&err.to_string()))?;
        if uri.host().is_none() {
            return Err(bad("no host"));
        }
        // http's Uri leaves the port unchecked (`port()` is `None` for ":99999").
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        let after_host = authority
            .rsplit_once(']')
            .map_or(authority, |(_, rest)| rest);
        if let Some((_, port)) = after_host.rsplit_once(':')
            && port.parse::<u16>().map_or(true, |p| p == 0)
        {
            return Err(bad("the port is not a number from 1 to 65535"));
        }
        let with_bucket = format!(
            "{}://{bucket}.{}",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        );
        with_bucket
            .parse::<http::Uri>()
            .map_err(|err| bad(&format!("with the bucket: {err}")))?;
        b = b.with_endpoint(e);
    }
    b = match credentials {
        S3Credentials::Static {
            access_key,
            secret_key,
            session_token,
        } => {
            let mut b = b
                .with_access_key_id(access_key.expose())
                .with_secret_access_key(secret_key.expose());
            if let Some(t) = session_token {
                b = b.with_token(t.expose());
            }
            b
        }
        // With no keys, object_store asks the instance metadata service.
        S3Credentials::InstanceProfile => b,
        S3Credentials::AssumeRole {
            role_arn,
            external_id,
            base,
        } => {
            let provider = super::sts::AssumeRole::new(
                config,
                role_arn.clone(),
                external_id.clone(),
                base,
                region.clone(),
            )?;
            b.with_credentials(Arc::new(provider))
        }
    };
    let s3 = b.build().map_err(|e| RepoError::from_store(config, e))?;
    let store: Arc<dyn ObjectStore> = if *bulk_delete {
        Arc::new(s3)
    } else {
        Arc::new(SingleDeletes::new(s3))
    };
    Ok(if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix.as_str()))
    })
}

/// An S3 store that deletes one object per request. GCS's XML interoperability (and some
/// other S3 look-alikes) lack the DeleteObjects call that object_store 0.13 always uses; a
/// presigned DELETE of each object is the one request every S3 dialect has.
#[derive(Debug)]
struct SingleDeletes {
    s3: AmazonS3,
    http: reqwest::Client,
}

impl SingleDeletes {
    fn new(s3: AmazonS3) -> Self {
        SingleDeletes {
            s3,
            http: reqwest::Client::new(),
        }
    }

    async fn delete_one(
        s3: AmazonS3,
        http: reqwest::Client,
        path: ObjectPath,
    ) -> object_store::Result<ObjectPath> {
        let generic = |e: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
            store: "S3",
            source: e,
        };
        let url = s3
            .signed_url(reqwest::Method::DELETE, &path, Duration::from_secs(300))
            .await?;
        let response = http
            .delete(url)
            .send()
            .await
            .map_err(|e| generic(Box::new(e)))?;
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            Ok(path)
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(generic(
                format!("DELETE {path} returned {status}: {}", body.trim()).into(),
            ))
        }
    }
}

impl std::fmt::Display for SingleDeletes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SingleDeletes({})", self.s3)
    }
}

#[async_trait]
impl ObjectStore for SingleDeletes {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.s3.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.s3.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.s3.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        let s3 = self.s3.clone();
        let http = self.http.clone();
        locations
            .map(move |p| {
                let (s3, http) = (s3.clone(), http.clone());
                async move { SingleDeletes::delete_one(s3, http, p?).await }
            })
            .buffered(8)
            .boxed()
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.s3.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.s3.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.s3.copy_opts(from, to, options).await
    }
}

/// Credentials of a static key pair, for signing the STS request of an assume-role.
pub(super) fn static_credential(c: &S3Credentials) -> Option<AwsCredential> {
    match c {
        S3Credentials::Static {
            access_key,
            secret_key,
            session_token,
        } => Some(AwsCredential {
            key_id: access_key.expose().to_string(),
            secret_key: secret_key.expose().to_string(),
            token: session_token.as_ref().map(|t| t.expose().to_string()),
        }),
        _ => None,
    }
}

/// The instance profile's credentials, through object_store's own IMDS client.
pub(super) fn instance_profile_provider(
    region: &str,
) -> Result<Arc<dyn CredentialProvider<Credential = AwsCredential>>, object_store::Error> {
    let s3 = AmazonS3Builder::new()
        .with_bucket_name("srbackup-instance-profile")
        .with_region(region)
        .build()?;
    Ok(Arc::clone(s3.credentials()))
}

#[cfg(feature = "hdfs")]
fn hdfs(config: &RepositoryConfig) -> Result<Arc<dyn ObjectStore>, RepoError> {
    let Backend::Hdfs {
        url,
        path,
        username,
        hadoop,
        ..
    } = &config.backend
    else {
        unreachable!("hdfs() is called for HDFS backends")
    };
    if let Some(user) = username {
        set_hadoop_user(&config.name, user)?;
    }
    let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new()
        .with_url(url.as_str())
        .with_config(hadoop.clone())
        .build()
        .map_err(|e| RepoError::from_store(config, e))?;
    let store: Arc<dyn ObjectStore> = Arc::new(store);
    let root = path.trim_matches('/');
    Ok(if root.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, root))
    })
}

/// hdfs-native takes the simple-auth user only from `HADOOP_USER_NAME`, so one process
/// can act as one HDFS user. The first repository that names a user sets it; a repository
/// naming another user is refused rather than silently run as the first.
#[cfg(feature = "hdfs")]
fn set_hadoop_user(repository: &str, user: &str) -> Result<(), RepoError> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    match std::env::var("HADOOP_USER_NAME") {
        Ok(current) if current == user => Ok(()),
        Ok(current) => Err(RepoError::Unavailable {
            repository: repository.to_string(),
            reason: format!(
                "this process already acts as HDFS user \"{current}\" (HADOOP_USER_NAME), not \"{user}\"; run repositories of different HDFS users from separate processes"
            ),
        }),
        Err(_) => {
            // SAFETY: std serializes its own environment accesses, and the only reader of this
            // variable is hdfs-native, through std::env; no C code of ours reads it.
            unsafe { std::env::set_var("HADOOP_USER_NAME", user) };
            Ok(())
        }
    }
}

#[cfg(not(feature = "hdfs"))]
fn hdfs(config: &RepositoryConfig) -> Result<Arc<dyn ObjectStore>, RepoError> {
    Err(RepoError::Unavailable {
        repository: config.name.clone(),
        reason: "this srbackup was built without HDFS support; rebuild with `--features hdfs`"
            .to_string(),
    })
}
