//! Rowset files: immutable Parquet (zstd), written once, checksummed while written, fsynced
//! before the catalog names them.

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
        let path = self.path;
        let mut sink = self
            .writer
            .into_inner()
            .map_err(|e| EngineError::parquet(&path, e))?;
        sink.flush().map_err(|e| io_error(&path, e))?;
        let (buffered, sha256, bytes) = sink.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| io_error(&path, e.into_error()))?;
        file.sync_all().map_err(|e| io_error(&path, e))?;
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
