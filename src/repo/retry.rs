//! Request-level retries for every backend.
//!
//! object_store's HTTP clients retry 5xx and connection errors themselves, but the local and
//! HDFS stores do not, and a wrapper injecting faults sits above any client's own retries. This
//! store retries each single request that failed transiently (timeouts, resets, 5xx, injected
//! faults) with exponential backoff; streams (listings, object bodies) are retried by their
//! callers, which know where to resume.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// Attempts per request, and the first pause between them (doubling).
const ATTEMPTS: u32 = 8;
const FIRST_PAUSE: Duration = Duration::from_millis(50);

/// Whether an error is worth retrying: a fault of the transport, not of the request.
pub fn is_transient(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    match e {
        E::Generic { .. } | E::JoinError { .. } => {
            let text = super::repository::error_chain(e).to_ascii_lowercase();
            [
                "timed out",
                "timeout",
                "connection reset",
                "connection closed",
                "broken pipe",
                "server error",
                "503",
                "500 internal",
                "slow down",
                "slowdown",
                "injected fault",
            ]
            .iter()
            .any(|t| text.contains(t))
        }
        _ => false,
    }
}

#[derive(Debug)]
pub struct RetryStore {
    inner: Arc<dyn ObjectStore>,
}

impl RetryStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> RetryStore {
        RetryStore { inner }
    }
}

impl std::fmt::Display for RetryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Retry({})", self.inner)
    }
}

async fn retry<T, F, Fut>(mut op: F) -> object_store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[async_trait]
impl ObjectStore for RetryStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let mut first = true;
        retry(|| {
            // A create-if-absent retried after a lost reply finds its own object: success.
            let retried_create = !first && matches!(opts.mode, object_store::PutMode::Create);
            first = false;
            let (payload, opts) = (payload.clone(), opts.clone());
            async move {
                match self.inner.put_opts(location, payload, opts).await {
                    Err(object_store::Error::AlreadyExists { .. }) if retried_create => {
                        Ok(PutResult {
                            e_tag: None,
                            version: None,
                        })
                    }
                    other => other,
                }
            }
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        retry(|| self.inner.put_multipart_opts(location, opts.clone())).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        retry(|| self.inner.get_opts(location, options.clone())).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        retry(|| self.inner.list_with_delimiter(prefix)).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        retry(|| self.inner.copy_opts(from, to, options.clone())).await
    }
}
