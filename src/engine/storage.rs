//! Rowset files: immutable Parquet (zstd), written once, checksummed while written, flushed
//! to disk (one by one, or many with one `syncfs`) before the catalog names them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use super::EngineError;
use crate::hashing::HashingWriter;

/// Rows per Parquet row group: bounds the memory an open writer buffers.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// One rowset file being written.
pub struct RowsetWriter {
    writer: ArrowWriter<HashingWriter<BufWriter<File>>>,
    path: PathBuf,
    rows: u64,
}

/// A finished rowset file.
#[derive(Clone, Debug)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl WrittenFile {
    /// The catalog row that makes this file live in `tablet_id` at partition version
    /// `version`; `path` is relative to the cluster directory, `rollup` names a sync MV.
    pub fn live_row(
        &self,
        tablet_id: i64,
        version: i64,
        path: String,
        rollup: Option<String>,
    ) -> crate::catalog::RowsetRow {
        crate::catalog::RowsetRow {
            id: 0,
            tablet_id,
            version,
            path,
            rows: self.rows as i64,
            bytes: self.bytes as i64,
            sha256: self.sha256.clone(),
            live: true,
            rollup,
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl RowsetWriter {
    pub fn create(path: &Path, schema: SchemaRef) -> Result<RowsetWriter, EngineError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        // Never overwrite: a rowset file is immutable once written.
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let sink = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let writer = ArrowWriter::try_new(sink, schema, Some(props))
            .map_err(|e| EngineError::parquet(path, e))?;
        Ok(RowsetWriter {
            writer,
            path: path.to_path_buf(),
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| EngineError::parquet(&self.path, e))
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finishes the file and makes it durable (fsync) before anyone may reference it.
    pub fn finish(self) -> Result<WrittenFile, EngineError> {
        let written = self.finish_unflushed()?;
        File::open(&written.path)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(&written.path, e))?;
        Ok(written)
    }

    /// Finishes the file without flushing it: the caller flushes many at once
    /// ([`sync_filesystem`]) before anything references them.
    pub fn finish_unflushed(self) -> Result<WrittenFile, EngineError> {
        let path = self.path;
        let mut sink = self
            .writer
            .into_inner()
            .map_err(|e| EngineError::parquet(&path, e))?;
        sink.flush().map_err(|e| io_error(&path, e))?;
        let (buffered, sha256, bytes) = sink.finish();
        buffered
            .into_inner()
            .map_err(|e| io_error(&path, e.into_error()))?;
        Ok(WrittenFile {
            sha256,
            bytes,
            rows: self.rows,
            path,
        })
    }
}

/// Reads a whole rowset file (used where a tablet must be merged or rewritten).
pub fn read_rowset(path: &Path) -> Result<Vec<RecordBatch>, EngineError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| EngineError::parquet(path, e))?
        .with_batch_size(8192)
        .build()
        .map_err(|e| EngineError::parquet(path, e))?;
    reader
        .map(|b| b.map_err(|e| EngineError::Arrow(format!("{}: {e}", path.display()))))
        .collect()
}

/// Makes a directory's entries durable (after files in it were created or renamed).
pub fn sync_dir(dir: &Path) -> Result<(), EngineError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// Makes everything written on the filesystem holding `path` durable: file data, new names
/// and directories, in one pass (`syncfs(2)`). Many files written since share this one flush
/// instead of one `fsync` each (and one of their directory): on a disk that acknowledges a
/// flush slowly, per-file flushes dominate the time of a copy of many files. Since Linux 5.8
/// it reports a writeback error of any file on that filesystem.
pub fn sync_filesystem(path: &Path) -> std::io::Result<()> {
    let dir = File::open(path)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs takes an open descriptor, which `dir` holds until after the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        // No syncfs: flush the whole system, as sync(1) does, then what `path` names.
        // SAFETY: sync takes no arguments and cannot fail.
        unsafe { libc::sync() };
        dir.sync_all()
    }
}

/// Makes `files` (new files under `root`) and their directory entries durable: one by one for
/// a few (a one-row INSERT does not flush everything else on the disk), with one
/// [`sync_filesystem`] of `root`'s filesystem for many.
pub fn flush_files(root: &Path, files: &[&Path]) -> Result<(), EngineError> {
    const ONE_BY_ONE: usize = 8;
    if files.len() > ONE_BY_ONE {
        return sync_filesystem(root).map_err(|e| io_error(root, e));
    }
    let mut dirs: Vec<&Path> = Vec::new();
    for file in files {
        File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(file, e))?;
        if let Some(dir) = file.parent()
            && !dirs.contains(&dir)
        {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        sync_dir(dir)?;
    }
    Ok(())
}
