//! Fault injection (cargo feature `faults`, for tests and the chaos script only): a store
//! wrapper that fails a fraction of requests (transient errors, timeouts), cuts object bodies
//! short, flips bytes on read, or refuses every write or read for good.
//!
//! Faults are installed per repository location ([`install`]), so tests running side by side in
//! one process each get their own; [`wrap`] is called by `Repository::open`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to inject. Fractions are per request, from 0 to 1.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Requests failing at once with a transient error.
    pub errors: f64,
    /// Requests failing after a delay, as a timeout.
    pub timeouts: f64,
    /// Object bodies cut short.
    pub truncated_reads: f64,
    /// Object bodies with one byte flipped.
    pub flipped_reads: f64,
    /// Every write (put, multipart) refused for good.
    pub refuse_writes: bool,
    /// Every object read refused for good.
    pub refuse_reads: bool,
    pub seed: u64,
}

static INSTALLED: Mutex<Option<HashMap<String, Faults>>> = Mutex::new(None);

/// Injects `faults` into every repository opened at `location` from now on.
pub fn install(location: &str, faults: Faults) {
    let mut map = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    map.get_or_insert_with(HashMap::new)
        .insert(location.to_string(), faults);
}

pub fn uninstall(location: &str) {
    let mut map = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = map.as_mut() {
        m.remove(location);
    }
}

/// `store` with the faults installed for `location`, if any.
pub fn wrap(location: &str, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
    let map = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    match map.as_ref().and_then(|m| m.get(location)) {
        Some(f) => Arc::new(FaultyStore {
            inner: store,
            rng: Mutex::new(StdRng::seed_from_u64(f.seed)),
            faults: f.clone(),
        }),
        None => store,
    }
}

#[derive(Debug)]
struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Faults,
    rng: Mutex<StdRng>,
}

impl std::fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faults",
        source: format!("injected fault: {what}").into(),
    }
}

impl FaultyStore {
    fn roll(&self, fraction: f64) -> bool {
        fraction > 0.0
            && self
                .rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .random::<f64>()
                < fraction
    }

    /// Fails a request as configured.
    async fn maybe_fail(&self) -> object_store::Result<()> {
        if self.roll(self.faults.errors) {
            return Err(injected("connection reset by peer"));
        }
        if self.roll(self.faults.timeouts) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(injected("operation timed out"));
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if self.faults.refuse_writes {
            return Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "injected fault: writes refused".into(),
            });
        }
        self.maybe_fail().await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        if self.faults.refuse_writes {
            return Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "injected fault: writes refused".into(),
            });
        }
        self.maybe_fail().await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let is_object = location.as_ref().starts_with("objects/");
        if self.faults.refuse_reads && is_object {
            return Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "injected fault: reads refused".into(),
            });
        }
        self.maybe_fail().await?;
        let result = self.inner.get_opts(location, options).await?;
        if !is_object
            || matches!(result.payload, GetResultPayload::Stream(_)) && result.meta.size == 0
        {
            return Ok(result);
        }
        let truncate = self.roll(self.faults.truncated_reads);
        let flip = self.roll(self.faults.flipped_reads);
        if !truncate && !flip {
            return Ok(result);
        }
        let (meta, range, attributes) = (
            result.meta.clone(),
            result.range.clone(),
            result.attributes.clone(),
        );
        let len = range.end - range.start;
        let mut sent = 0u64;
        let mut flipped = false;
        let stream = result
            .into_stream()
            .map(move |chunk| {
                chunk.map(|c| {
                    let mut c = c.to_vec();
                    if flip && !flipped && !c.is_empty() {
                        let i = c.len() / 2;
                        c[i] ^= 0x20;
                        flipped = true;
                    }
                    if truncate {
                        let keep = (len / 2).saturating_sub(sent) as usize;
                        c.truncate(keep.min(c.len()));
                    }
                    sent += c.len() as u64;
                    Bytes::from(c)
                })
            })
            .boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream),
            meta,
            range,
            attributes,
        })
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
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
