//! A local repository stays inside its directory. Whoever can write the repository can plant
//! symbolic links in it (`locks/` → `/etc`, an object → `/root/.ssh/id_rsa`); srbackup often
//! runs as root. So every path of a local repository is checked before it is read, written or
//! listed: no component below the repository's directory may be a symbolic link (nor anything
//! but a directory, above the last), and a delete removes only a file inside the tree, walking
//! it with `openat(O_NOFOLLOW)` so that a link swapped in between the check and the delete
//! cannot redirect it. object_store's `LocalFileSystem` follows links; [`Confined`] wraps it
//! (object_store has no switch for this), and the direct copies of `transfer.rs` call [`check`].

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path as FsPath;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// Checks that `key` (a repository key, `a/b/c`) stays inside `root`: every component that
/// exists is a directory, the last may be a file, and none is a symbolic link.
pub fn check(root: &FsPath, key: &str) -> io::Result<()> {
    let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        if *part == "." || *part == ".." {
            return Err(refused(key, "it names a parent directory"));
        }
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refused(
                    key,
                    &format!("{} is a symbolic link", path.display()),
                ));
            }
            Ok(m) if i + 1 < parts.len() && !m.is_dir() => {
                return Err(refused(
                    key,
                    &format!("{} is not a directory", path.display()),
                ));
            }
            Ok(_) => {}
            // What does not exist yet is made by srbackup, as directories and files.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn refused(key: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{key} is outside the repository: {why}; srbackup does not follow links out of a repository"
        ),
    )
}

/// Deletes the file `key` below `root` without following any symbolic link on the way (a link
/// at the end is removed itself, never what it points to).
pub fn unlink(root: &FsPath, key: &str) -> io::Result<()> {
    let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
    let Some((file, dirs)) = parts.split_last() else {
        return Err(refused(key, "it is empty"));
    };
    let c = |s: &[u8]| CString::new(s).map_err(|_| refused(key, "it holds a NUL byte"));
    let root_c = c(root.as_os_str().as_bytes())?;
    // SAFETY: plain POSIX calls on NUL-terminated paths; every fd opened here is closed below.
    let mut dir = unsafe {
        libc::open(
            root_c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return Err(io::Error::last_os_error());
    }
    for part in dirs {
        let name = c(part.as_bytes())?;
        let next = unsafe {
            libc::openat(
                dir,
                name.as_ptr(),
                libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        let err = io::Error::last_os_error();
        unsafe { libc::close(dir) };
        if next < 0 {
            // ELOOP / ENOTDIR: a link or a file where a directory should be.
            return Err(match err.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                    refused(key, &format!("{part} is not a directory of the repository"))
                }
                _ => err,
            });
        }
        dir = next;
    }
    let name = c(file.as_bytes())?;
    let done = unsafe { libc::unlinkat(dir, name.as_ptr(), 0) };
    let err = io::Error::last_os_error();
    unsafe { libc::close(dir) };
    if done == 0 { Ok(()) } else { Err(err) }
}

/// object_store's local filesystem, kept inside the repository's directory.
#[derive(Debug)]
pub struct Confined {
    inner: Arc<dyn ObjectStore>,
    root: std::path::PathBuf,
}

impl Confined {
    pub fn new(inner: Arc<dyn ObjectStore>, root: std::path::PathBuf) -> Confined {
        Confined { inner, root }
    }

    fn check(&self, location: &Path) -> object_store::Result<()> {
        check(&self.root, location.as_ref()).map_err(|e| to_store(location, e))
    }
}

fn to_store(location: &Path, e: io::Error) -> object_store::Error {
    match e.kind() {
        io::ErrorKind::NotFound => object_store::Error::NotFound {
            path: location.to_string(),
            source: Box::new(e),
        },
        _ => object_store::Error::PermissionDenied {
            path: location.to_string(),
            source: Box::new(e),
        },
    }
}

impl std::fmt::Display for Confined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Confined({})", self.root.display())
    }
}

#[async_trait]
impl ObjectStore for Confined {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let root = self.root.clone();
        locations
            .and_then(move |location| {
                let root = root.clone();
                async move {
                    let key = location.to_string();
                    tokio::task::spawn_blocking(move || unlink(&root, &key))
                        .await
                        .map_err(|e| object_store::Error::Generic {
                            store: "LocalFileSystem",
                            source: Box::new(e),
                        })?
                        .map_err(|e| to_store(&location, e))?;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let root = self.root.clone();
        // LocalFileSystem walks into linked directories: what it finds there is not listed.
        self.inner
            .list(prefix)
            .try_filter(move |m| futures::future::ready(check(&root, m.location.as_ref()).is_ok()))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        if let Some(p) = prefix {
            self.check(p)?;
        }
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result
            .objects
            .retain(|m| check(&self.root, m.location.as_ref()).is_ok());
        result
            .common_prefixes
            .retain(|p| check(&self.root, p.as_ref()).is_ok());
        Ok(result)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_out_of_the_repository_are_neither_followed_nor_deleted_through() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"x").unwrap();
        let repo = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), repo.path().join("locks")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("precious"),
            repo.path().join("objects-link"),
        )
        .unwrap();
        assert!(check(repo.path(), "locks/precious").is_err());
        assert!(unlink(repo.path(), "locks/precious").is_err());
        assert!(outside.path().join("precious").exists());
        assert!(check(repo.path(), "objects-link").is_err());
        // A link at the end is removed itself, never its target.
        unlink(repo.path(), "objects-link").unwrap();
        assert!(outside.path().join("precious").exists());
        std::fs::create_dir_all(repo.path().join("objects/ab")).unwrap();
        std::fs::write(repo.path().join("objects/ab/f"), b"y").unwrap();
        check(repo.path(), "objects/ab/f").unwrap();
        check(repo.path(), "objects/cd/new").unwrap();
        unlink(repo.path(), "objects/ab/f").unwrap();
        assert!(check(repo.path(), "objects/../x").is_err());
    }
}
