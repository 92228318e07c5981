//! A writer that hashes what passes through it, so a checksum costs no second read. Rowset
//! files are hashed as they are written; downloads as they are decoded. And the hash of a
//! file already written, where it must be read back.

use std::io::Write;

use sha2::{Digest, Sha256};

pub struct HashingWriter<W> {
    pub inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the SHA-256 (hex) and the byte count of everything written.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// SHA-256 (hex) and length of a file's content, read in 1 MiB blocks.
pub fn hash_file(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Bytes per read and write of [`copy_hashing`]: a multiple of any block size O_DIRECT asks
/// for.
const COPY_BLOCK: usize = 4 << 20;
/// The alignment O_DIRECT needs of buffers, offsets and lengths on common devices (512 or
/// 4096 bytes); where a device asks for more, the copy goes on through the page cache.
const DIRECT_ALIGN: usize = 4096;

/// Copy buffers kept for reuse (at most [`KEPT_BUFFERS`]): fresh memory is what costs most on
/// a virtual machine (the host backs each new page on its first touch), and a buffer per
/// blocking thread would keep one for every thread the pool ever started.
static COPY_BUFFERS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
const KEPT_BUFFERS: usize = 8;

/// A copy buffer from [`COPY_BUFFERS`], given back when dropped.
struct CopyBuffer(Vec<u8>);

impl CopyBuffer {
    fn take() -> CopyBuffer {
        let kept = COPY_BUFFERS.lock().ok().and_then(|mut pool| pool.pop());
        CopyBuffer(kept.unwrap_or_else(|| vec![0u8; COPY_BLOCK + DIRECT_ALIGN]))
    }

    /// The aligned block inside the buffer.
    fn block(&mut self) -> &mut [u8] {
        let skew = self.0.as_ptr() as usize % DIRECT_ALIGN;
        let start = if skew == 0 { 0 } else { DIRECT_ALIGN - skew };
        &mut self.0[start..start + COPY_BLOCK]
    }
}

impl Drop for CopyBuffer {
    fn drop(&mut self) {
        if let Ok(mut pool) = COPY_BUFFERS.lock()
            && pool.len() < KEPT_BUFFERS
        {
            pool.push(std::mem::take(&mut self.0));
        }
    }
}

/// Copies `src` into `dst`, a new file (it must not exist), in one pass: every block is read
/// into one buffer, hashed there and written from there. Returns the SHA-256 (hex) and the
/// length of what was written.
///
/// `dst` is written with O_DIRECT where its filesystem allows it: a copy goes from the buffer
/// to the device without a second copy into the page cache. On this project's 2-core VM the
/// page-cache copy (`copy_file_range`, then a read back to hash) was three quarters of a local
/// backup's CPU time, and varied five-fold from run to run with the cost of new pages. A full
/// disk is also reported by the write itself, not later by writeback. Nothing is flushed here:
/// the caller flushes its batch (`syncfs`) before anything names `dst`, as with buffered
/// writes (the device's cache and the file's metadata need that flush either way). Where the
/// filesystem refuses O_DIRECT (or an unaligned tail), the copy goes on through the page
/// cache.
pub fn copy_hashing(
    src: &std::path::Path,
    dst: &std::path::Path,
) -> Result<(String, u64), CopyError> {
    use std::io::{Read, Write};
    let source = |error| CopyError {
        side: Side::Source,
        error,
    };
    let destination = |error| CopyError {
        side: Side::Destination,
        error,
    };
    let mut from = std::fs::File::open(src).map_err(source)?;
    {
        use std::os::fd::AsRawFd;
        // Read front to back, as `cp` tells the kernel too: a larger read-ahead window. Only
        // advice. (Direct reads were measured too: no faster from a cold cache, and much
        // slower from a warm one, which the kernel's read-ahead serves while the block before
        // is hashed.)
        // SAFETY: posix_fadvise on a descriptor `from` keeps open.
        let _ = unsafe { libc::posix_fadvise(from.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
    }
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(destination)?;
    let mut direct = set_direct(&to, true);
    let mut buffer = CopyBuffer::take();
    let buf = buffer.block();
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        // Fill the whole block (short reads happen), so that every write but the last
        // is aligned.
        let mut filled = 0;
        while filled < buf.len() {
            match from.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(source(e)),
            }
        }
        if filled == 0 {
            break;
        }
        hasher.update(&buf[..filled]);
        let mut written = 0;
        while written < filled {
            let mut rest = &buf[written..filled];
            if direct && !written.is_multiple_of(DIRECT_ALIGN) {
                direct = !set_direct(&to, false);
            }
            if direct && !rest.len().is_multiple_of(DIRECT_ALIGN) {
                // The aligned part goes direct; the last partial block, below one
                // alignment unit, through the page cache.
                let aligned = rest.len() - rest.len() % DIRECT_ALIGN;
                if aligned > 0 {
                    rest = &rest[..aligned];
                } else {
                    direct = !set_direct(&to, false);
                }
            }
            match to.write(rest) {
                Ok(0) => return Err(destination(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The device wants a larger alignment than DIRECT_ALIGN: go on buffered.
                Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    direct = !set_direct(&to, false);
                    if direct {
                        return Err(destination(e));
                    }
                }
                Err(e) => return Err(destination(e)),
            }
        }
        total += filled as u64;
        if filled < buf.len() {
            break;
        }
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Which file of a copy failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

/// A failed [`copy_hashing`]: the error and the file it came from, so that a message blames
/// the right disk (a full repository, a damaged rowset).
#[derive(Debug)]
pub struct CopyError {
    pub side: Side,
    pub error: std::io::Error,
}

/// Turns O_DIRECT on or off for `file`; whether the file now has it as asked.
fn set_direct(file: &std::fs::File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` keeps open for the duration of the calls.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return false;
    }
    let wanted = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size around the alignment unit and the block: the copy is the source byte for
    /// byte, and the hash and length are the source's.
    #[test]
    fn copies_are_exact_at_every_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [
            0,
            1,
            DIRECT_ALIGN - 1,
            DIRECT_ALIGN,
            DIRECT_ALIGN + 1,
            COPY_BLOCK - 1,
            COPY_BLOCK,
            COPY_BLOCK + 1,
            2 * COPY_BLOCK + DIRECT_ALIGN + 123,
        ];
        for (i, size) in sizes.into_iter().enumerate() {
            let content: Vec<u8> = (0..size).map(|n| (n * 31 % 251) as u8).collect();
            let src = dir.path().join(format!("src{i}"));
            let dst = dir.path().join(format!("dst{i}"));
            std::fs::write(&src, &content).unwrap();
            let (sum, len) = copy_hashing(&src, &dst).unwrap();
            assert_eq!(len, size as u64, "size {size}");
            assert_eq!(sum, hex::encode(Sha256::digest(&content)), "size {size}");
            assert!(std::fs::read(&dst).unwrap() == content, "size {size}");
        }
    }

    #[test]
    fn an_existing_destination_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        std::fs::write(&src, b"new").unwrap();
        std::fs::write(&dst, b"old").unwrap();
        let err = copy_hashing(&src, &dst).unwrap_err();
        assert_eq!(err.side, Side::Destination);
        assert_eq!(err.error.kind(), std::io::ErrorKind::AlreadyExists);
        // A source that is not a file is the source's fault.
        let err = copy_hashing(dir.path(), &dir.path().join("other")).unwrap_err();
        assert_eq!(err.side, Side::Source, "{err:?}");
        assert_eq!(std::fs::read(&dst).unwrap(), b"old");
    }
}
