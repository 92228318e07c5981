//! `FILES("path" = ..., "format" = "csv" | "parquet", ...)`: StarRocks' bulk-load source, read
//! as a stream of batches so that memory stays bounded whatever the file size.

use crate::code::Code;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::csv::reader::Format;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::Stream;

use super::{EngineError, Result, problem_at};
use crate::config::{PathPolicy, PathRefused};
use crate::sql::{Problem, Properties, Span};

const BATCH_ROWS: usize = 8192;

/// The FILES properties srbackup understands.
pub const FILES_PROPERTIES: &[&str] = &[
    "path",
    "format",
    "csv.column_separator",
    "csv.skip_header",
    "csv.enclose",
];

/// Opens the files a FILES(...) clause names, as one stream of batches in file order.
pub fn open(
    properties: &Properties,
    span: Span,
    policy: &PathPolicy,
) -> Result<std::pin::Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>> {
    for p in properties.iter() {
        if !FILES_PROPERTIES.contains(&p.key.value.to_ascii_lowercase().as_str()) {
            return Err(EngineError::at(
                Problem::new(
                    Code::LoadFilesProperty,
                    p.key.span,
                    format!("unknown FILES property \"{}\"", p.key.value),
                )
                .label("not understood")
                .help(format!("FILES accepts: {}", FILES_PROPERTIES.join(", "))),
            ));
        }
    }
    let path = properties
        .get("path")
        .ok_or_else(|| problem_at(Code::LoadFiles, span, "FILES needs a \"path\""))?;
    let local = match path.strip_prefix("file://") {
        Some(rest) => rest,
        None if path.contains("://") => {
            return Err(problem_at(
                Code::LoadFiles,
                properties
                    .find("path")
                    .map(|p| p.value.span)
                    .unwrap_or(span),
                format!("FILES reads local files; {path} is remote"),
            ));
        }
        None => path,
    };
    let path_span = properties
        .find("path")
        .map(|p| p.value.span)
        .unwrap_or(span);
    let refused = |e: PathRefused| refused_path(e, path_span);
    let files = policy.files_of(Path::new(local)).map_err(refused)?;
    // Every file opened now, through the policy (links resolved on the opened file).
    let files: Vec<(PathBuf, File)> = files
        .into_iter()
        .map(|f| policy.open(&f).map(|file| (f, file)))
        .collect::<std::result::Result<_, _>>()
        .map_err(refused)?;
    match properties
        .get("format")
        .map(|f| f.to_ascii_lowercase())
        .as_deref()
    {
        Some("parquet") => {
            let iter = files.into_iter().flat_map(
                |(f, file)| -> Box<dyn Iterator<Item = Result<RecordBatch>> + Send> {
                    let opened = ParquetRecordBatchReaderBuilder::try_new(file)
                        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
                        .map_err(|e| EngineError::parquet(&f, e));
                    match opened {
                        Ok(reader) => {
                            let f = f.clone();
                            Box::new(
                                reader.map(move |b| b.map_err(|e| EngineError::parquet(&f, e))),
                            )
                        }
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    }
                },
            );
            Ok(Box::pin(futures::stream::iter(iter)))
        }
        Some("csv") => {
            let delimiter = match properties.get("csv.column_separator") {
                None => b',',
                Some("\\t") => b'\t',
                Some(s) if s.len() == 1 => s.as_bytes()[0],
                Some(s) => {
                    return Err(problem_at(
                        Code::LoadFiles,
                        span,
                        format!("csv.column_separator must be one character, not \"{s}\""),
                    ));
                }
            };
            let skip = properties
                .get("csv.skip_header")
                .map(|s| s.parse::<usize>())
                .transpose()
                .map_err(|_| {
                    problem_at(
                        Code::LoadFiles,
                        span,
                        "csv.skip_header must be a number of lines",
                    )
                })?
                .unwrap_or(0);
            let quote = properties
                .get("csv.enclose")
                .and_then(|s| s.bytes().next())
                .unwrap_or(b'"');
            let iter = files.into_iter().flat_map(
                move |(f, file)| -> Box<dyn Iterator<Item = Result<RecordBatch>> + Send> {
                    match csv_reader(&f, file, delimiter, quote, skip) {
                        Ok(reader) => {
                            let f = f.clone();
                            Box::new(reader.map(move |b| {
                                b.map_err(|e| {
                                    EngineError::invalid(
                                        format!("{}: {e}", f.display()),
                                        Some("check the file's column separator and quoting"),
                                    )
                                })
                            }))
                        }
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    }
                },
            );
            Ok(Box::pin(futures::stream::iter(iter)))
        }
        Some(other) => Err(problem_at(
            Code::LoadFiles,
            span,
            format!("FILES format \"{other}\" is not supported; use \"csv\" or \"parquet\""),
        )),
        None => Err(problem_at(
            Code::LoadFiles,
            span,
            "FILES needs a \"format\" (\"csv\" or \"parquet\")",
        )),
    }
}

/// A CSV reader giving every column as text; the load casts text to the column types, so a bad
/// value is reported with its column instead of becoming NULL.
fn csv_reader(
    path: &Path,
    mut file: File,
    delimiter: u8,
    quote: u8,
    skip: usize,
) -> Result<datafusion::arrow::csv::Reader<File>> {
    use std::io::Seek;
    let io = |e| EngineError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let format = Format::default()
        .with_delimiter(delimiter)
        .with_quote(quote)
        .with_header(skip > 0);
    let (inferred, _) = format.infer_schema(&mut file, Some(100)).map_err(|e| {
        EngineError::invalid(
            format!("{}: not readable as CSV: {e}", path.display()),
            None,
        )
    })?;
    let text = Arc::new(Schema::new(
        (0..inferred.fields().len())
            .map(|i| Field::new(format!("c{i}"), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    ReaderBuilder::new(text)
        .with_format(format)
        .with_batch_size(BATCH_ROWS)
        .build({
            file.rewind().map_err(io)?;
            file
        })
        .map_err(|e| {
            EngineError::invalid(
                format!("{}: not readable as CSV: {e}", path.display()),
                None,
            )
        })
}

/// A path the session may not read, pointed at in the statement.
fn refused_path(e: PathRefused, span: Span) -> EngineError {
    match e {
        PathRefused::Io { path, source } => EngineError::Io { path, source },
        other => {
            let outside = matches!(other, PathRefused::Outside { .. });
            let mut p = Problem::new(Code::PathNotAllowed, span, other.to_string())
                .label(if outside { "not allowed" } else { "not a file" });
            if outside {
                p = p.help(
                    "a server reads only inside the directories allowed_paths lists in the cluster's srbackup.conf",
                );
            }
            EngineError::at(p)
        }
    }
}
