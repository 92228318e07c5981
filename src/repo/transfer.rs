//! Moving one file to or from a repository, streamed with bounded memory.
//!
//! Uploads read (and optionally zstd-compress) the file on a blocking thread that hands
//! fixed-size chunks to the async side through a small channel; a file of up to two chunks is
//! one create-if-absent PUT, a larger one a multipart upload with a bounded number of parts
//! in flight. The content's SHA-256 is recomputed while reading and must equal the name the
//! object is stored under, so a file damaged on the local disk is never uploaded as good.
//!
//! Downloads stream into a new local file, decoding and hashing on the way, and delete that
//! file again unless size and hash match the manifest.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256 as Hasher};
use tokio::sync::mpsc;

use super::format::{self, Encoding, FileEntry, Sha256};
use super::{RepoError, Repository, Result};
use crate::hashing::HashingWriter;

/// Upload chunk and multipart part size (S3 needs at least 5 MiB per part).
pub const CHUNK: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once; with the chunks held while deciding between one PUT
/// and multipart, the chunk being filled and the two channel slots, one upload holds at most
/// about 6 chunks (48 MiB).
const PARTS_IN_FLIGHT: usize = 2;
/// Chunks a file may span and still go as one PUT. A multipart upload costs three more
/// requests and, on many servers, a second write of the data when it is completed; two chunks
/// (16 MiB) keep one upload within the same memory as a multipart one.
const SINGLE_PUT_CHUNKS: usize = 2;
/// Whole-file attempts on transient failures (object_store already retries each request).
const ATTEMPTS: u32 = 5;
/// The most one upload through object_store holds in memory: the chunks held while deciding
/// between one PUT and multipart, the one being filled and the channel's, or the parts in
/// flight (about 6 chunks).
const UPLOAD_HOLDS: u64 = 6 * CHUNK as u64;
/// Memory all uploads of a repository handle may hold at once (64 MiB, in KiB): an upload
/// takes what it may hold before it starts, so that eight workers of 16 MiB files do not
/// hold 256 MiB. What it may hold is counted twice its chunks ([`UPLOAD_COPIES`]).
pub(super) const UPLOAD_MEMORY_KIB: u32 = 64 * 1024;
/// Measured, not derived: with N single-PUT uploads of 15 MB in flight to an S3 server, the
/// peak RSS grows by about twice their bytes (the request side holds a second copy of a
/// payload while it is sent): 2 workers 91 MiB, 4 or 8 workers 175–190 MiB for 1 GiB.
const UPLOAD_COPIES: u64 = 2;

/// What an upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// How the object is stored (an existing object keeps the encoding it was stored with).
    pub encoding: Encoding,
    pub bytes: u64,
    pub stored_bytes: u64,
    /// False when the repository already held the object and nothing was sent.
    pub sent: bool,
}

fn io_err(path: &Path, source: std::io::Error) -> RepoError {
    RepoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where `produce` sends the stored bytes: as they are, or sealed (an encrypted repository).
struct Out {
    tx: mpsc::Sender<Bytes>,
    sealer: Option<super::crypto::Sealer>,
}

impl Out {
    fn send(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        let chunk = match self.sealer.as_mut() {
            None => chunk,
            Some(sealer) => {
                let mut sealed = Vec::with_capacity(chunk.len() + super::crypto::HEADER + 64);
                sealer.push(&chunk, &mut sealed)?;
                if sealed.is_empty() {
                    return Ok(());
                }
                sealed
            }
        };
        self.tx
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| std::io::Error::other("upload stopped"))
    }

    /// Sends the sealed stream's last segment.
    fn finish(self) -> std::io::Result<()> {
        if let Some(sealer) = self.sealer {
            let mut sealed = Vec::new();
            sealer.finish(&mut sealed)?;
            self.tx
                .blocking_send(Bytes::from(sealed))
                .map_err(|_| std::io::Error::other("upload stopped"))?;
        }
        Ok(())
    }
}

/// Reads `path` in chunks, compressing with zstd at `level` if asked and sealing with `keys`
/// in an encrypted repository, and sends the stored bytes to `tx`. Returns the content's hash
/// and size.
fn produce(
    path: &Path,
    compression: Option<i32>,
    sealer: Option<super::crypto::Sealer>,
    tx: mpsc::Sender<Bytes>,
) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::new();
    let mut total = 0u64;
    let mut out = Out { tx, sealer };
    if compression.is_none() {
        // Stored as is: each chunk is read straight into its own buffer of exactly CHUNK
        // bytes, which is then sent as it is (no staging buffer, no growth past CHUNK).
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match file.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            chunk.truncate(filled);
            hasher.update(&chunk);
            total += filled as u64;
            // An empty file is sent as one empty chunk.
            if filled > 0 || total == 0 {
                out.send(chunk)?;
            }
            if filled < CHUNK {
                out.finish()?;
                return Ok((hex::encode(hasher.finalize()), total));
            }
        }
    }
    let mut buf = vec![0u8; 1024 * 1024];
    let mut encoder = match compression {
        Some(level) => Some(zstd::stream::write::Encoder::new(
            Vec::with_capacity(CHUNK),
            level,
        )?),
        None => None,
    };
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        match encoder.as_mut() {
            Some(enc) => {
                enc.write_all(&buf[..n])?;
                if enc.get_ref().len() >= CHUNK {
                    let chunk = std::mem::replace(enc.get_mut(), Vec::with_capacity(CHUNK));
                    out.send(chunk)?;
                }
            }
            None => {
                pending.extend_from_slice(&buf[..n]);
                if pending.len() >= CHUNK {
                    let rest = pending.split_off(CHUNK);
                    out.send(std::mem::replace(&mut pending, rest))?;
                }
            }
        }
    }
    if let Some(enc) = encoder {
        pending = enc.finish()?;
    }
    if !pending.is_empty() || total == 0 {
        out.send(pending)?;
    }
    out.finish()?;
    Ok((hex::encode(hasher.finalize()), total))
}

impl Repository {
    /// Stores the file at `path`, whose content must hash to `hash`, unless the repository
    /// already holds that content (in any encoding). `compression`: a zstd level, or `None`
    /// to store as is.
    pub async fn upload_file(
        &self,
        path: &Path,
        hash: &Sha256,
        compression: Option<i32>,
    ) -> Result<Uploaded> {
        self.writable()?;
        let mut replace = false;
        if let Some((encoding, meta)) = self.find_object(hash).await? {
            let stored_bytes = meta.size;
            let bytes = tokio::fs::metadata(path)
                .await
                .map_err(|e| io_err(path, e))?
                .len();
            if self.existing_is_sound(hash, encoding, &meta, bytes).await? {
                return Ok(Uploaded {
                    encoding,
                    bytes,
                    stored_bytes,
                    sent: false,
                });
            }
            // A damaged object (truncated, or changed in place) must not be reused: store the
            // content again, over it, in the encoding it was stored in (the name says which).
            replace = true;
            return self
                .store_object(path, hash, compression_for(encoding, compression), replace)
                .await;
        }
        self.store_object(path, hash, compression, replace).await
    }

    async fn store_object(
        &self,
        path: &Path,
        hash: &Sha256,
        compression: Option<i32>,
        replace: bool,
    ) -> Result<Uploaded> {
        if let (Some(root), None, false) = (&self.direct_local, compression, self.is_encrypted()) {
            return self.upload_local(root, path, hash, replace).await;
        }
        let mut attempt = 1;
        loop {
            match self.upload_once(path, hash, compression, replace).await {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing_backoff(attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Whether the object stored under `hash` in `encoding` is there, `stored_bytes` long and
    /// sound by the rules of [`Repository::existing_is_sound`] (trusted unread only when a
    /// manifest names it and it is unchanged since; otherwise read back whole). A resumed
    /// backup asks this of every upload its journal recorded before it stopped: the files
    /// could have been damaged or removed since.
    pub async fn stored_object_is_sound(
        &self,
        hash: &Sha256,
        encoding: Encoding,
        stored_bytes: u64,
        file_bytes: u64,
    ) -> Result<bool> {
        let key = ObjectPath::from(self.object_key(hash, encoding).await?);
        let meta = match self.store.head(&key).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.err(format!("checking {key}"), e)),
        };
        if meta.size != stored_bytes {
            return Ok(false);
        }
        self.existing_is_sound(hash, encoding, &meta, file_bytes)
            .await
    }

    /// Whether an object already stored under `hash` may stand for a file of `file_bytes`
    /// bytes without being read: it must be as long as the snapshots naming it recorded (an
    /// object stored as is, as long as the file), and unchanged since the newest of them was
    /// written (by the store's own clock: objects are immutable, so a later modification time
    /// means it was damaged, or repaired, since). Otherwise it is read back and checked whole:
    /// an object no snapshot names (left by an interrupted backup), or one changed since.
    /// Damage that keeps both the size and the modification time is found by `verify` and
    /// by every restore, which check each object's SHA-256.
    async fn existing_is_sound(
        &self,
        hash: &Sha256,
        encoding: Encoding,
        meta: &object_store::ObjectMeta,
        file_bytes: u64,
    ) -> Result<bool> {
        let stored = meta.size;
        if encoding == Encoding::None && !self.is_encrypted() && stored != file_bytes {
            return Ok(false);
        }
        if let Some(recorded) = self.recorded(hash).await? {
            if recorded.stored_bytes != stored {
                return Ok(false);
            }
            if meta.last_modified <= recorded.named_at {
                return Ok(true);
            }
        }
        let entry = FileEntry {
            sha256: hash.clone(),
            bytes: file_bytes,
            stored_bytes: stored,
            encoding,
        };
        match self.verify_file(&entry).await {
            Ok(()) => Ok(true),
            Err(RepoError::Corrupt { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn upload_once(
        &self,
        path: &Path,
        hash: &Sha256,
        compression: Option<i32>,
        replace: bool,
    ) -> Result<Uploaded> {
        let put_mode = if replace {
            PutMode::Overwrite
        } else {
            PutMode::Create
        };
        let encoding = if compression.is_some() {
            Encoding::Zstd
        } else {
            Encoding::None
        };
        let key = ObjectPath::from(self.object_key(hash, encoding).await?);
        let keys = self.keys().await?;
        let file_bytes = tokio::fs::metadata(path)
            .await
            .map_err(|e| io_err(path, e))?
            .len();
        let kib = u32::try_from((UPLOAD_COPIES * file_bytes.min(UPLOAD_HOLDS)).div_ceil(1024))
            .unwrap_or(UPLOAD_MEMORY_KIB)
            .clamp(1, UPLOAD_MEMORY_KIB);
        let _memory = self
            .upload_memory
            .acquire_many(kib)
            .await
            .map_err(|e| io_err(path, std::io::Error::other(e)))?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(2);
        let source = path.to_path_buf();
        let sealer = keys.as_deref().map(|k| match compression {
            None => super::crypto::Sealer::with_salt(k, k.object_salt(hash)),
            Some(_) => super::crypto::Sealer::new(k),
        });
        let producer =
            tokio::task::spawn_blocking(move || produce(&source, compression, sealer, tx));
        let verify =
            |joined: std::result::Result<std::io::Result<(String, u64)>, _>| -> Result<u64> {
                let (actual, bytes) = joined
                    .map_err(|e| io_err(path, std::io::Error::other(e)))?
                    .map_err(|e| io_err(path, e))?;
                if actual != hash.as_str() {
                    return Err(RepoError::Corrupt {
                        what: format!("local file {}", path.display()),
                        expected: hash.to_string(),
                        actual,
                    });
                }
                Ok(bytes)
            };
        // Up to SINGLE_PUT_CHUNKS chunks: a single create-if-absent PUT, sent only once the
        // hash is proven.
        let mut head: Vec<Bytes> = Vec::with_capacity(SINGLE_PUT_CHUNKS + 1);
        while head.len() <= SINGLE_PUT_CHUNKS {
            match rx.recv().await {
                Some(chunk) => head.push(chunk),
                None => break,
            }
        }
        if head.len() <= SINGLE_PUT_CHUNKS {
            let bytes = verify(producer.await)?;
            let stored_bytes: u64 = head.iter().map(|c| c.len() as u64).sum();
            self.limits.upload.take(stored_bytes as usize).await;
            match self
                .store
                .put_opts(
                    &key,
                    head.into_iter().collect::<PutPayload>(),
                    PutOptions::from(put_mode),
                )
                .await
            {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(self.err(format!("uploading {key}"), e)),
            }
            // Not flushed here: the executor flushes a batch of objects with one
            // `Repository::flush` before its journal records them (see `flush`).
            return Ok(Uploaded {
                encoding,
                bytes,
                stored_bytes,
                sent: true,
            });
        }
        // Several chunks: multipart. Completing the upload makes the whole object appear at
        // once; writing identical content over a concurrent writer's copy is harmless.
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| self.err(format!("starting the upload of {key}"), e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut stored_bytes = 0u64;
        let mut chunks = head.into_iter();
        let mut next = chunks.next();
        while let Some(chunk) = next {
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(self.err(format!("uploading {key}"), e));
            }
            stored_bytes += chunk.len() as u64;
            self.limits.upload.take(chunk.len()).await;
            writer.put(chunk);
            next = match chunks.next() {
                Some(c) => Some(c),
                None => rx.recv().await,
            };
        }
        let bytes = match verify(producer.await) {
            Ok(b) => b,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        };
        writer
            .finish()
            .await
            .map_err(|e| self.err(format!("completing the upload of {key}"), e))?;
        Ok(Uploaded {
            encoding,
            bytes,
            stored_bytes,
            sent: true,
        })
    }

    /// Fetches `file` into a new file at `dest` (which must not exist), verifying its size and
    /// hash; on any failure `dest` is removed. `dest` is not flushed: the caller flushes its
    /// filesystem once for a batch of files (`engine::storage::sync_filesystem`) before
    /// anything names them.
    pub async fn download_file(&self, file: &FileEntry, dest: &Path) -> Result<()> {
        let mut attempt = 1;
        loop {
            let result = self.download_once(file, dest).await;
            if result.is_err() {
                let _ = tokio::fs::remove_file(dest).await;
            }
            match result {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing_backoff(attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Reads `file` from the repository and checks its size and hash, writing nothing.
    pub async fn verify_file(&self, file: &FileEntry) -> Result<()> {
        let mut attempt = 1;
        loop {
            match self.fetch(file, None).await {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing_backoff(attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn download_once(&self, file: &FileEntry, dest: &Path) -> Result<()> {
        if let (Some(root), Encoding::None, false) =
            (&self.direct_local, file.encoding, self.is_encrypted())
        {
            return self.download_local(root, file, dest).await;
        }
        self.fetch(file, Some(dest)).await
    }

    /// Local repository, stored as is: the file is copied into a staging name in one pass,
    /// hashed on the way ([`crate::hashing::copy_hashing`]), and a hard link publishes it under its hash
    /// (create-if-absent, like the object store's own local writes). Nothing is flushed here:
    /// the caller flushes a batch of objects at once with [`Repository::flush`] before it
    /// records them, and until a manifest names an object no one trusts it unread.
    async fn upload_local(
        &self,
        root: &Path,
        path: &Path,
        hash: &Sha256,
        replace: bool,
    ) -> Result<Uploaded> {
        let key = format::object_key(hash, Encoding::None);
        super::confined::check(root, &key).map_err(|e| io_err(&root.join(&key), e))?;
        let target = root.join(&key);
        let staging =
            target.with_file_name(format!(".{}.{:016x}.tmp", hash, rand::random::<u64>()));
        let source = path.to_path_buf();
        let bytes = tokio::fs::metadata(path)
            .await
            .map_err(|e| io_err(path, e))?
            .len();
        self.limits.upload.take(bytes as usize).await;
        let expected = hash.to_string();
        let done = tokio::task::spawn_blocking(
            move || -> std::result::Result<(), (PathBuf, std::io::Error)> {
                let dir = staging.parent().expect("objects/<xx>/");
                std::fs::create_dir_all(dir).map_err(|e| (dir.to_path_buf(), e))?;
                let actual = match crate::hashing::copy_hashing(&source, &staging) {
                    Ok((actual, _)) => actual,
                    Err(e) => {
                        // Nothing half-copied stays behind, and the error names the side that
                        // failed: a full repository disk is the staging file's, a damaged rowset
                        // the source's.
                        let _ = std::fs::remove_file(&staging);
                        let blame = match e.side {
                            crate::hashing::Side::Source => source.clone(),
                            crate::hashing::Side::Destination => staging.clone(),
                        };
                        return Err((blame, e.error));
                    }
                };
                let result = (|| {
                    if actual != expected {
                        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, actual));
                    }
                    if replace {
                        // Over a damaged object: rename replaces it in one step.
                        std::fs::rename(&staging, &target)?;
                    } else {
                        match std::fs::hard_link(&staging, &target) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(())
                })();
                let _ = std::fs::remove_file(&staging);
                // After the copy only the repository side is written or read.
                result.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        (source.clone(), e)
                    } else {
                        (target.clone(), e)
                    }
                })
            },
        )
        .await
        .map_err(|e| io_err(path, std::io::Error::other(e)))?;
        match done {
            Ok(()) => Ok(Uploaded {
                encoding: Encoding::None,
                bytes,
                stored_bytes: bytes,
                sent: true,
            }),
            Err((_, e)) if e.kind() == std::io::ErrorKind::InvalidData => Err(RepoError::Corrupt {
                what: format!("local file {}", path.display()),
                expected: hash.to_string(),
                actual: e.to_string(),
            }),
            Err((p, e)) if p.starts_with(root) && super::repository::io_is_full(&e) => {
                Err(RepoError::Storage {
                    repository: self.name.clone(),
                    operation: format!("uploading {key}"),
                    reason: format!(
                        "the disk holding the repository ({}) is full: {e}",
                        self.location
                    ),
                    transient: false,
                })
            }
            Err((p, e)) => Err(io_err(&p, e)),
        }
    }

    /// Local repository, stored as is: copied into `dest` in one pass, hashed on the way. The
    /// caller flushes `dest` (with its batch) before anything names it.
    async fn download_local(&self, root: &Path, file: &FileEntry, dest: &Path) -> Result<()> {
        let key = format::object_key(&file.sha256, Encoding::None);
        super::confined::check(root, &key).map_err(|e| io_err(&root.join(&key), e))?;
        let source = root.join(&key);
        self.limits.download.take(file.bytes as usize).await;
        let target = dest.to_path_buf();
        let src = source.clone();
        let declared = file.bytes;
        let landing = Landing::new(dest);
        let writer = landing.writer();
        use crate::hashing::{CopyError, Side};
        let actual = tokio::task::spawn_blocking(move || -> std::result::Result<_, CopyError> {
            let _writer = writer;
            // Copy nothing that is not the declared size (a planted huge file stays put).
            let size = std::fs::metadata(&src)
                .map_err(|error| CopyError {
                    side: Side::Source,
                    error,
                })?
                .len();
            if size != declared {
                return Ok(None);
            }
            if target.exists() {
                return Err(CopyError {
                    side: Side::Destination,
                    error: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "the destination exists",
                    ),
                });
            }
            crate::hashing::copy_hashing(&src, &target).map(Some)
        })
        .await
        .map_err(|e| io_err(dest, std::io::Error::other(e)))?;
        let (sum, bytes) = match actual {
            Ok(Some(x)) => x,
            Ok(None) => {
                return Err(RepoError::Corrupt {
                    what: format!("object {key}"),
                    expected: format!("{} bytes", file.bytes),
                    actual: match std::fs::metadata(&source) {
                        Ok(m) => format!("{} bytes", m.len()),
                        Err(e) => e.to_string(),
                    },
                });
            }
            Err(e) if e.side == Side::Source && e.error.kind() == std::io::ErrorKind::NotFound => {
                return Err(RepoError::Storage {
                    repository: self.name.clone(),
                    operation: format!("downloading {key}"),
                    reason: format!("{key} not found"),
                    transient: false,
                });
            }
            // The repository's side: its object, named by its path in the repository.
            Err(e) if e.side == Side::Source => return Err(io_err(&source, e.error)),
            Err(e) => return Err(io_err(dest, e.error)),
        };
        if sum != file.sha256.as_str() || bytes != file.bytes {
            return Err(RepoError::Corrupt {
                what: format!("object {key}"),
                expected: format!("{} ({} bytes)", file.sha256, file.bytes),
                actual: format!("{sum} ({bytes} bytes)"),
            });
        }
        landing.keep();
        Ok(())
    }

    /// Streams an object, decoding and hashing it, into `dest` (a new file) or nowhere.
    async fn fetch(&self, file: &FileEntry, dest: Option<&Path>) -> Result<()> {
        let key = ObjectPath::from(self.object_key(&file.sha256, file.encoding).await?);
        let keys = self.keys().await?;
        let (expected, mut stream) = self.body(&key, file).await?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        let target = dest.map(Path::to_path_buf);
        let encoding = file.encoding;
        let declared = file.bytes;
        let landing = dest.map(Landing::new);
        let landed = landing.as_ref().map(Landing::writer);
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
            let _landed = landed;
            let out = match &target {
                Some(t) => Some(std::fs::File::create_new(t)?),
                None => None,
            };
            let sink: Box<dyn Write + Send> = match &out {
                Some(f) => Box::new(std::io::BufWriter::with_capacity(
                    1024 * 1024,
                    f.try_clone()?,
                )),
                None => Box::new(std::io::sink()),
            };
            // Never more than the manifest declares: a small object that decodes to gigabytes
            // fails at the first byte past the declared size, not when the disk is full.
            let mut hashing = HashingWriter::new(Bounded {
                inner: sink,
                left: declared,
            });
            {
                let mut plain: Box<dyn Write + '_> = match encoding {
                    Encoding::None => Box::new(&mut hashing),
                    Encoding::Zstd => Box::new(zstd::stream::write::Decoder::new(&mut hashing)?),
                };
                match keys.as_deref() {
                    // Sealed: only authenticated plaintext reaches the decoder and the hash.
                    Some(keys) => {
                        let mut opener = super::crypto::Opener::new(keys, &mut plain);
                        while let Some(chunk) = rx.blocking_recv() {
                            opener.write_all(&chunk)?;
                        }
                        opener.finish()?;
                    }
                    None => {
                        while let Some(chunk) = rx.blocking_recv() {
                            plain.write_all(&chunk)?;
                        }
                    }
                }
                plain.flush()?;
            }
            hashing.flush()?;
            let (inner, sum, bytes) = hashing.finish();
            drop(inner);
            drop(out);
            Ok((sum, bytes))
        });
        let mut received = 0u64;
        let mut failed = None;
        // The writer stops early only on an error of its own (damage it found, a full disk):
        // that error is the one to report, not the body this side stopped reading.
        let mut writer_stopped = false;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => {
                    received += c.len() as u64;
                    self.limits.download.take(c.len()).await;
                    if tx.send(c).await.is_err() {
                        writer_stopped = true;
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(stream);
        drop(tx);
        // A body that ends early without an error is a transport fault, worth another try.
        if failed.is_none() && received != expected && !writer_stopped {
            failed = Some(RepoError::Storage {
                repository: self.name.clone(),
                operation: format!("downloading {key}"),
                reason: format!("the connection ended after {received} of {expected} bytes"),
                transient: true,
            });
        }
        let local = dest.unwrap_or(Path::new("-"));
        let written = writer
            .await
            .map_err(|e| io_err(local, std::io::Error::other(e)))?;
        if let Some(e) = failed {
            return Err(e);
        }
        let (actual, bytes) = written.map_err(|e| match e.kind() {
            // A zstd frame that does not decode, or content longer than declared, is damage in
            // the repository, not a local fault.
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::Other
                if encoding == Encoding::Zstd || e.kind() == std::io::ErrorKind::InvalidData =>
            {
                RepoError::Corrupt {
                    what: format!("object {key}"),
                    expected: file.sha256.to_string(),
                    actual: if self.is_encrypted() {
                        format!("bytes that do not decrypt or decode ({e})")
                    } else {
                        format!("undecodable zstd data ({e})")
                    },
                }
            }
            _ => io_err(local, e),
        })?;
        if actual != file.sha256.as_str() || bytes != file.bytes {
            return Err(RepoError::Corrupt {
                what: format!("object {key}"),
                expected: format!("{} ({} bytes)", file.sha256, file.bytes),
                actual: format!("{actual} ({bytes} bytes)"),
            });
        }
        if let Some(landing) = landing {
            landing.keep();
        }
        Ok(())
    }
}

/// Objects of a remote store larger than this are fetched with ranged GETs, several at once:
/// one stream per object leaves a fast link idle while a server sends it slowly.
const RANGED_ABOVE: u64 = 16 * 1024 * 1024;
/// The size of one ranged GET.
const RANGE_BYTES: u64 = 8 * 1024 * 1024;
/// Ranged GETs of one object in flight at once (with the channel, one download holds at most
/// about this many ranges plus 4 chunks in memory).
const RANGES_IN_FLIGHT: usize = 3;

type Body = futures::stream::BoxStream<'static, Result<Bytes>>;

impl Repository {
    /// An object's stored bytes in order, with how many there are: one GET, or, for a large
    /// object of a remote store, ranged GETs of [`RANGE_BYTES`], [`RANGES_IN_FLIGHT`] at once.
    /// `stored` is the size the manifest declares; a ranged read checks the object has it.
    async fn body(&self, key: &ObjectPath, file: &FileEntry) -> Result<(u64, Body)> {
        let stored = file.stored_bytes;
        if self.is_local() || stored <= RANGED_ABOVE {
            let got = self
                .store
                .get(key)
                .await
                .map_err(|e| self.err(format!("downloading {key}"), e))?;
            let expected = got.range.end - got.range.start;
            let repo = self.clone();
            let what = format!("downloading {key}");
            let stream = got
                .into_stream()
                .map(move |c| c.map_err(|e| repo.err(what.clone(), e)));
            return Ok((expected, stream.boxed()));
        }
        let ranges: Vec<std::ops::Range<u64>> = (0..stored)
            .step_by(RANGE_BYTES as usize)
            .map(|start| start..(start + RANGE_BYTES).min(stored))
            .collect();
        let repo = self.clone();
        let key = key.clone();
        let sha256 = file.sha256.to_string();
        let stream = futures::stream::iter(ranges)
            .map(move |range| {
                let (repo, key, sha256) = (repo.clone(), key.clone(), sha256.clone());
                async move {
                    let what = format!("downloading {key}");
                    let options = object_store::GetOptions {
                        range: Some(range.clone().into()),
                        ..Default::default()
                    };
                    let got = repo
                        .store
                        .get_opts(&key, options)
                        .await
                        .map_err(|e| repo.err(what.clone(), e))?;
                    if got.meta.size != stored {
                        return Err(RepoError::Corrupt {
                            what: format!("object {key}"),
                            expected: format!("{sha256} ({stored} bytes stored)"),
                            actual: format!("an object of {} bytes", got.meta.size),
                        });
                    }
                    got.bytes().await.map_err(|e| repo.err(what, e))
                }
            })
            .buffered(RANGES_IN_FLIGHT);
        Ok((stored, stream.boxed()))
    }
}

/// A file a blocking task writes for an async caller that may be dropped half-way (its job
/// stopped, and is about to be undone): the file must not outlive a caller that never saw it
/// finish. Whichever side ends last removes it: the caller, dropped without `keep`, removes
/// what is there and marks the file abandoned; the writer, ending after that, removes what it
/// wrote. The lock makes the two orders the only ones.
struct Landing {
    dest: PathBuf,
    abandoned: Arc<std::sync::Mutex<bool>>,
    kept: bool,
}

/// The blocking writer's side of a [`Landing`]: dropped when the writer ends.
struct LandingWriter {
    dest: PathBuf,
    abandoned: Arc<std::sync::Mutex<bool>>,
}

impl Landing {
    fn new(dest: &Path) -> Landing {
        Landing {
            dest: dest.to_path_buf(),
            abandoned: Arc::default(),
            kept: false,
        }
    }

    fn writer(&self) -> LandingWriter {
        LandingWriter {
            dest: self.dest.clone(),
            abandoned: self.abandoned.clone(),
        }
    }

    /// The caller saw the file finished and checked: it stays.
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if !self.kept {
            let mut abandoned = self.abandoned.lock().unwrap_or_else(|p| p.into_inner());
            *abandoned = true;
            let _ = std::fs::remove_file(&self.dest);
        }
    }
}

impl Drop for LandingWriter {
    fn drop(&mut self) {
        let abandoned = self.abandoned.lock().unwrap_or_else(|p| p.into_inner());
        if *abandoned {
            let _ = std::fs::remove_file(&self.dest);
        }
    }
}

/// The level to store a replacement with: the encoding of the object it replaces decides.
fn compression_for(existing: Encoding, asked: Option<i32>) -> Option<i32> {
    match existing {
        Encoding::None => None,
        Encoding::Zstd => asked.or(Some(crate::sql::options::DEFAULT_ZSTD_LEVEL)),
    }
}

/// A writer that takes at most `left` bytes, then fails with `InvalidData`.
struct Bounded<W> {
    inner: W,
    left: u64,
}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the object decodes to more bytes than the manifest declares",
            ));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// SHA-256 of a file's content, as hex.
async fn tracing_backoff(attempt: u32) {
    tokio::time::sleep(std::time::Duration::from_millis(200 * 2u64.pow(attempt))).await;
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub files: u64,
    pub bytes: u64,
    /// Each damaged or missing file with the reason.
    pub damaged: Vec<(String, String)>,
}

impl Repository {
    /// Reads every object of a snapshot and checks its size and checksum (`concurrency` at
    /// once). Damage is reported per file, not as one error.
    pub async fn verify_snapshot(
        &self,
        manifest: &super::Manifest,
        concurrency: usize,
    ) -> VerifyReport {
        let results: Vec<(String, u64, Result<()>)> = futures::stream::iter(manifest.files.iter())
            .map(|f| async move {
                match self.object_key(&f.sha256, f.encoding).await {
                    Ok(key) => (key, f.bytes, self.verify_file(f).await),
                    Err(e) => (f.sha256.to_string(), f.bytes, Err(e)),
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut report = VerifyReport::default();
        for (key, bytes, r) in results {
            report.files += 1;
            report.bytes += bytes;
            if let Err(e) = r {
                report.damaged.push((key, e.to_string()));
            }
        }
        report.damaged.sort();
        report
    }
}
