//! Loads: rows → partitions → buckets → new rowset files → one catalog commit.
//!
//! A load writes all its files first (registered in `loads` so garbage collection leaves them
//! alone), then commits in a single catalog transaction that adds the rowsets, retires what they
//! replace and bumps each touched partition's version. A load that fails or is killed before
//! that commit changes nothing visible.
//!
//! Tables with UNIQUE, PRIMARY or AGGREGATE keys are merged on write: a load rewrites each
//! tablet it touches into one merged rowset, so reads never merge. The commit checks that the
//! rowsets it merged are still the tablet's live ones (optimistic concurrency).

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast_with_options;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::FormatOptions;
use datafusion::common::ScalarValue;
use futures::{Stream, StreamExt};
use std::collections::HashMap;

use super::guard::{self, Change};
use super::sorter::Sorter;
use super::storage::{RowsetWriter, WrittenFile, read_rowset};
use super::types::{arrow_schema, arrow_type, canonical_text, parse_scalar};
use super::{Engine, EngineError, Result, merge};
use crate::catalog::{
    self, KeyKind, ObjectRow, PartitionBound, PartitionRow, Partitioning, TableSchema,
};
use crate::sql::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// Add rows (upsert for key models).
    Append,
    /// Replace all of the object's rows (MV refresh, restore of a whole table).
    Overwrite,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadSummary {
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
    pub partitions_created: Vec<String>,
}

/// Where rows of one partition go: an existing partition or one the load creates.
struct Target {
    existing: Option<PartitionRow>,
    name: String,
    bound: PartitionBound,
}

enum Routing {
    Whole,
    Range {
        columns: Vec<usize>,
        /// (lower, upper, target); an empty bound is unbounded on that side.
        ranges: Vec<(Vec<ScalarValue>, Vec<ScalarValue>, usize)>,
    },
    List {
        columns: Vec<usize>,
        values: HashMap<Vec<ScalarValue>, usize>,
    },
    Automatic {
        columns: Vec<usize>,
        date_trunc: Option<String>,
        values: HashMap<Vec<Option<String>>, usize>,
    },
}

struct Router {
    routing: Routing,
    targets: Vec<Target>,
    hash_columns: Vec<usize>,
    buckets: u32,
    next_random: u64,
}

fn load_error(message: String, help: &str) -> EngineError {
    EngineError::invalid(message, Some(help))
}

/// FNV-1a: a stable hash, so a key always lands in the same bucket across versions.
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn truncate(value: &ScalarValue, unit: &str) -> Result<Option<(String, String)>> {
    use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
    let dt: NaiveDateTime = match value {
        ScalarValue::Date32(Some(days)) => NaiveDate::from_num_days_from_ce_opt(days + 719_163)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(|| EngineError::Arrow(format!("date out of range: {value}")))?,
        ScalarValue::TimestampMicrosecond(Some(us), _) => {
            chrono::DateTime::from_timestamp_micros(*us)
                .map(|t| t.naive_utc())
                .ok_or_else(|| EngineError::Arrow(format!("datetime out of range: {value}")))?
        }
        v if v.is_null() => return Ok(None),
        other => {
            return Err(load_error(
                format!("date_trunc partitioning needs a DATE or DATETIME column, found {other}"),
                "partition by date_trunc('day', <date column>)",
            ));
        }
    };
    let date = dt.date();
    let (start, name) = match unit.to_ascii_lowercase().as_str() {
        "year" => (
            NaiveDate::from_ymd_opt(date.year(), 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)),
            dt.format("p%Y").to_string(),
        ),
        "month" => (
            NaiveDate::from_ymd_opt(date.year(), date.month(), 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0)),
            dt.format("p%Y%m").to_string(),
        ),
        "day" => (date.and_hms_opt(0, 0, 0), dt.format("p%Y%m%d").to_string()),
        "hour" => (
            date.and_hms_opt(dt.hour(), 0, 0),
            dt.format("p%Y%m%d%H").to_string(),
        ),
        other => {
            return Err(load_error(
                format!("date_trunc unit '{other}' is not supported"),
                "use 'year', 'month', 'day' or 'hour'",
            ));
        }
    };
    let start = start.ok_or_else(|| EngineError::Arrow(format!("cannot truncate {value}")))?;
    let text = if matches!(value, ScalarValue::Date32(_)) {
        start.format("%Y-%m-%d").to_string()
    } else {
        start.format("%Y-%m-%d %H:%M:%S").to_string()
    };
    Ok(Some((text, name)))
}

fn scalar_at(array: &ArrayRef, row: usize) -> Result<ScalarValue> {
    ScalarValue::try_from_array(array, row).map_err(EngineError::from)
}

impl Router {
    fn new(schema: &TableSchema, partitions: Vec<PartitionRow>) -> Result<Router> {
        let index = |name: &str| {
            schema.column_index(name).ok_or_else(|| {
                EngineError::invalid(format!("column {name} is missing from the table"), None)
            })
        };
        let columns: Vec<usize> = schema
            .partitioning
            .columns()
            .iter()
            .map(|c| index(c))
            .collect::<Result<_>>()?;
        let types: Vec<DataType> = columns
            .iter()
            .map(|i| arrow_type(&schema.columns[*i].sql_type))
            .collect();
        let parse_all = |values: &[String]| -> Result<Vec<ScalarValue>> {
            values
                .iter()
                .zip(&types)
                .map(|(v, t)| {
                    parse_scalar(v, t)
                        .map_err(|e| EngineError::Arrow(format!("partition bound {v}: {e}")))
                })
                .collect()
        };
        let mut targets = Vec::new();
        let mut routing = match &schema.partitioning {
            Partitioning::Unpartitioned => Routing::Whole,
            Partitioning::Range { .. } => Routing::Range {
                columns: columns.clone(),
                ranges: Vec::new(),
            },
            Partitioning::List { .. } => Routing::List {
                columns: columns.clone(),
                values: HashMap::new(),
            },
            Partitioning::DateTrunc { unit, .. } => Routing::Automatic {
                columns: columns.clone(),
                date_trunc: Some(unit.clone()),
                values: HashMap::new(),
            },
            Partitioning::Columns { .. } => Routing::Automatic {
                columns: columns.clone(),
                date_trunc: None,
                values: HashMap::new(),
            },
        };
        for p in partitions {
            let t = targets.len();
            match (&mut routing, &p.bound) {
                (Routing::Range { ranges, .. }, PartitionBound::Range { lower, upper }) => {
                    ranges.push((parse_all(lower)?, parse_all(upper)?, t));
                }
                (Routing::List { values, .. }, PartitionBound::List { values: items }) => {
                    for item in items {
                        let key = item
                            .iter()
                            .zip(&types)
                            .map(|(v, t)| match v {
                                Some(v) => parse_scalar(v, t).map_err(EngineError::Arrow),
                                None => ScalarValue::try_from(t).map_err(EngineError::from),
                            })
                            .collect::<Result<Vec<_>>>()?;
                        values.insert(key, t);
                    }
                }
                (Routing::Automatic { values, .. }, PartitionBound::Value { values: v }) => {
                    values.insert(v.clone(), t);
                }
                _ => {}
            }
            targets.push(Target {
                name: p.name.clone(),
                bound: p.bound.clone(),
                existing: Some(p),
            });
        }
        let (hash_columns, buckets) = match &schema.distribution {
            catalog::Distribution::Hash { columns, buckets } => (
                columns.iter().map(|c| index(c)).collect::<Result<_>>()?,
                *buckets,
            ),
            catalog::Distribution::Random { buckets } => (Vec::new(), *buckets),
        };
        Ok(Router {
            routing,
            targets,
            hash_columns,
            buckets: buckets.max(1),
            next_random: 0,
        })
    }

    /// The target of one row, creating an automatic partition when needed.
    fn target_of(&mut self, batch: &RecordBatch, row: usize, first_row: u64) -> Result<usize> {
        let describe = |cols: &[usize]| -> Result<String> {
            let values = cols
                .iter()
                .map(|c| scalar_at(batch.column(*c), row).map(|v| v.to_string()))
                .collect::<Result<Vec<_>>>()?;
            Ok(values.join(", "))
        };
        match &mut self.routing {
            Routing::Whole => Ok(0),
            Routing::Range { columns, ranges } => {
                let key = columns
                    .iter()
                    .map(|c| scalar_at(batch.column(*c), row))
                    .collect::<Result<Vec<_>>>()?;
                let hit = ranges.iter().find(|(lo, hi, _)| {
                    (lo.is_empty() || key.partial_cmp(lo).is_some_and(|o| o.is_ge()))
                        && (hi.is_empty() || key.partial_cmp(hi).is_some_and(|o| o.is_lt()))
                });
                match hit {
                    Some((_, _, t)) => Ok(*t),
                    None => Err(load_error(
                        format!(
                            "row {} has partition value ({}), which no partition holds",
                            first_row + row as u64 + 1,
                            describe(columns)?
                        ),
                        "add a partition for it (ALTER TABLE ... ADD PARTITION); nothing was loaded",
                    )),
                }
            }
            Routing::List { columns, values } => {
                let key = columns
                    .iter()
                    .map(|c| scalar_at(batch.column(*c), row))
                    .collect::<Result<Vec<_>>>()?;
                match values.get(&key) {
                    Some(t) => Ok(*t),
                    None => Err(load_error(
                        format!(
                            "row {} has partition value ({}), which no partition lists",
                            first_row + row as u64 + 1,
                            describe(columns)?
                        ),
                        "add it to a partition (ALTER TABLE ... ADD PARTITION); nothing was loaded",
                    )),
                }
            }
            Routing::Automatic {
                columns,
                date_trunc,
                values,
            } => {
                let (key, name) = match date_trunc {
                    Some(unit) => {
                        let v = scalar_at(batch.column(columns[0]), row)?;
                        match truncate(&v, unit)? {
                            Some((text, name)) => (vec![Some(text)], name),
                            None => (vec![None], "pnull".to_string()),
                        }
                    }
                    None => {
                        let key = columns
                            .iter()
                            .map(|c| scalar_at(batch.column(*c), row).map(|v| canonical_text(&v)))
                            .collect::<Result<Vec<_>>>()?;
                        let name: String = key
                            .iter()
                            .map(|v| {
                                v.as_deref()
                                    .unwrap_or("null")
                                    .chars()
                                    .filter(|c| c.is_ascii_alphanumeric())
                                    .collect::<String>()
                            })
                            .collect::<Vec<_>>()
                            .join("_");
                        (key, format!("p{name}"))
                    }
                };
                if let Some(t) = values.get(&key) {
                    return Ok(*t);
                }
                // A new partition; keep its name unique among the targets.
                let mut unique = name.clone();
                let mut n = 1;
                while self.targets.iter().any(|t| t.name == unique) {
                    n += 1;
                    unique = format!("{name}_{n}");
                }
                let t = self.targets.len();
                self.targets.push(Target {
                    existing: None,
                    name: unique,
                    bound: PartitionBound::Value {
                        values: key.clone(),
                    },
                });
                values.insert(key, t);
                Ok(t)
            }
        }
    }

    fn bucket_of(&mut self, batch: &RecordBatch, row: usize) -> Result<u32> {
        if self.hash_columns.is_empty() {
            self.next_random += 1;
            return Ok((self.next_random % u64::from(self.buckets)) as u32);
        }
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for c in &self.hash_columns {
            let v = scalar_at(batch.column(*c), row)?;
            match canonical_text(&v) {
                Some(text) => h = fnv1a(text.as_bytes(), fnv1a(&[1], h)),
                None => h = fnv1a(&[0], h),
            }
        }
        Ok((h % u64::from(self.buckets)) as u32)
    }
}

/// Checks a batch against the table's constraints: NOT NULL and CHAR/VARCHAR lengths.
fn check_constraints(schema: &TableSchema, batch: &RecordBatch, first_row: u64) -> Result<()> {
    for (i, column) in schema.columns.iter().enumerate() {
        let array = batch.column(i);
        if !column.nullable && array.null_count() > 0 {
            let row = (0..array.len()).find(|r| array.is_null(*r)).unwrap_or(0);
            return Err(load_error(
                format!(
                    "row {}: column {} is NOT NULL but the value is NULL",
                    first_row + row as u64 + 1,
                    column.name
                ),
                "give the column a value (or declare it NULL); nothing was loaded",
            ));
        }
        if let Some(max) = column.sql_type.max_length()
            && let Some(strings) = array
                .as_any()
                .downcast_ref::<datafusion::arrow::array::StringArray>()
        {
            for (row, s) in strings.iter().enumerate() {
                if let Some(s) = s
                    && s.chars().count() > max as usize
                {
                    return Err(load_error(
                        format!(
                            "row {}: value of column {} has {} characters, more than its {} allows",
                            first_row + row as u64 + 1,
                            column.name,
                            s.chars().count(),
                            column.sql_type.sql_name()
                        ),
                        "shorten the value or widen the column; nothing was loaded",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Casts an incoming batch (from a file or a query) to the table's schema. `columns` maps each
/// input column to a table column; table columns no input names get their default or NULL.
/// Loads a query's rows (INSERT … SELECT, UPDATE): each batch conformed to the table's columns
/// (`positions`: which column each query column feeds), appended in one commit.
pub async fn load_query(
    engine: &mut Engine,
    object: &ObjectRow,
    schema: &TableSchema,
    stream: datafusion::execution::SendableRecordBatchStream,
    positions: Vec<usize>,
    expected: Option<Expected>,
) -> Result<LoadSummary> {
    let target = arrow_schema(schema);
    let schema = schema.clone();
    let conformed = stream.map(move |b| {
        b.map_err(EngineError::from)
            .and_then(|b| conform(&schema, &target, &b, &positions))
    });
    load_expecting(
        engine,
        object,
        LoadMode::Append,
        Box::pin(conformed),
        expected,
    )
    .await
}

pub fn conform(
    schema: &TableSchema,
    target: &SchemaRef,
    batch: &RecordBatch,
    columns: &[usize],
) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let mut out: Vec<ArrayRef> = Vec::with_capacity(schema.columns.len());
    let options = datafusion::arrow::compute::CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    for (i, column) in schema.columns.iter().enumerate() {
        let dt = target.field(i).data_type();
        let array = match columns.iter().position(|c| *c == i) {
            Some(input) => {
                let source = batch.column(input);
                cast_with_options(source, dt, &options).map_err(|e| {
                    load_error(
                        format!(
                            "column {} ({}) cannot hold the loaded values of type {}: {e}",
                            column.name,
                            column.sql_type.sql_name(),
                            source.data_type()
                        ),
                        "check the column order and the file's format; nothing was loaded",
                    )
                })?
            }
            None => {
                let value = super::types::default_scalar(column, dt).map_err(EngineError::Arrow)?;
                value.to_array_of_size(rows)?
            }
        };
        if !column.nullable && array.null_count() > 0 {
            let row = (0..array.len()).find(|r| array.is_null(*r)).unwrap_or(0);
            return Err(load_error(
                format!(
                    "row {}: column {} is NOT NULL but the value is NULL",
                    row + 1,
                    column.name
                ),
                "give the column a value (or declare it NULL); nothing was loaded",
            ));
        }
        out.push(array);
    }
    Ok(RecordBatch::try_new(target.clone(), out)?)
}

/// Loads a stream of batches (already in the table's schema) into a table or MV.
pub async fn load<S>(
    engine: &mut Engine,
    object: &ObjectRow,
    mode: LoadMode,
    input: S,
) -> Result<LoadSummary>
where
    S: Stream<Item = Result<RecordBatch>> + Unpin,
{
    load_expecting(engine, object, mode, input, None).await
}

/// The live rowsets of every tablet of an object, by tablet: what a statement that reads the
/// object before it writes (UPDATE) saw.
pub fn live_rowsets_by_tablet(engine: &mut Engine, object_id: i64) -> Result<Expected> {
    let mut out = HashMap::new();
    for p in engine.catalog().view().partitions(object_id)? {
        for t in engine.catalog().view().tablets(p.id)? {
            let ids = engine
                .catalog()
                .view()
                .live_rowsets(t.id)?
                .iter()
                .map(|r| r.id)
                .collect();
            out.insert(t.id, ids);
        }
    }
    Ok(out)
}

/// Live rowset ids by tablet id.
pub type Expected = HashMap<i64, Vec<i64>>;

/// [`load`] for rows computed from what the object held earlier (`expected`, from
/// [`live_rowsets_by_tablet`] taken before the read): a key-model tablet that changed since is
/// a conflict, and the load fails whole instead of overwriting rows it did not see (two
/// UPDATEs of one row cannot both count).
pub async fn load_expecting<S>(
    engine: &mut Engine,
    object: &ObjectRow,
    mode: LoadMode,
    mut input: S,
    expected: Option<Expected>,
) -> Result<LoadSummary>
where
    S: Stream<Item = Result<RecordBatch>> + Unpin,
{
    let db_name = engine.catalog().view().database_name(object.db_id)?;
    // Checked again in the commit; here it saves writing files for nothing.
    guard::not_restoring(
        &engine.catalog().view(),
        &db_name,
        &object.name,
        Change::Load,
        Span::default(),
    )
    .map_err(unpositioned)?;
    let schema = object
        .def
        .schema()
        .ok_or_else(|| {
            EngineError::invalid(format!("{} is a view; it holds no data", object.name), None)
        })?
        .clone();
    let arrow = arrow_schema(&schema);
    let partitions = engine.catalog().view().partitions(object.id)?;
    let mut router = Router::new(&schema, partitions)?;
    let load_id = engine
        .catalog()
        .write(|tx| tx.begin_load(object.id, crate::process::Process::current()))?;
    let result = write_and_commit(
        engine,
        object,
        &schema,
        &arrow,
        mode,
        &mut router,
        load_id,
        &mut input,
        expected.as_ref(),
    )
    .await;
    if result.is_err() {
        // The load's files are garbage now: removed here (a failed commit, a conflict, a bad
        // row late in the input), then its registration is dropped. Should the process die
        // first, the next open of the cluster removes them (`maintenance::collect_dead_loads`).
        remove_load_files(&engine.file_path(&format!("data/{}", object.id)), load_id);
        let _ = engine.catalog().write(|tx| tx.end_load(load_id));
    }
    result
}

/// Removes every file of load `load_id` (`L<id>-…`) from the table directory `dir`.
fn remove_load_files(dir: &std::path::Path, load_id: i64) {
    let prefix = format!("L{load_id}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn write_and_commit<S>(
    engine: &mut Engine,
    object: &ObjectRow,
    schema: &TableSchema,
    arrow: &SchemaRef,
    mode: LoadMode,
    router: &mut Router,
    load_id: i64,
    input: &mut S,
    expected: Option<&Expected>,
) -> Result<LoadSummary>
where
    S: Stream<Item = Result<RecordBatch>> + Unpin,
{
    let dir = format!("data/{}", object.id);
    // Rows are routed as they come and gathered per tablet in bounded memory (spilled to sorted
    // runs past a budget), then written one tablet at a time: one open rowset file, whatever
    // the number of tablets the load touches.
    let data_dir = engine.file_path(&dir);
    std::fs::create_dir_all(&data_dir).map_err(|e| EngineError::Io {
        path: data_dir.clone(),
        source: e,
    })?;
    let mut sorter = Sorter::new(arrow.clone(), data_dir.join(format!("L{load_id}-spill")));
    let mut rows_seen = 0u64;
    while let Some(batch) = input.next().await {
        let batch = batch?;
        check_constraints(schema, &batch, rows_seen)?;
        let mut keys = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let target = router.target_of(&batch, row, rows_seen)?;
            let bucket = router.bucket_of(&batch, row)?;
            keys.push((target, bucket));
        }
        rows_seen += batch.num_rows() as u64;
        sorter.push(batch, keys)?;
    }
    let mut written: Vec<((usize, u32), WrittenFile)> = Vec::new();
    sorter.drain(|key, batches| {
        let path = engine.file_path(&format!("{dir}/L{load_id}-{}-{}.parquet", key.0, key.1));
        let mut writer = RowsetWriter::create(&path, arrow.clone())?;
        for batch in batches {
            writer.write(batch)?;
        }
        written.push((key, writer.finish_unflushed()?));
        Ok(())
    })?;

    // Merge on write for key models: each touched tablet becomes one merged rowset.
    let merged_model = schema.keys != KeyKind::Duplicate;
    let mut replaced: HashMap<(usize, u32), Vec<i64>> = HashMap::new();
    if merged_model {
        for (key, file) in written.iter_mut() {
            let mut batches = Vec::new();
            let mut old_ids = Vec::new();
            let target = router.targets.get(key.0).ok_or_else(|| {
                EngineError::invalid(
                    format!(
                        "{}: its partitions changed during the load (a restore or DDL); nothing was loaded",
                        object.name
                    ),
                    Some("run the statement again"),
                )
            })?;
            if let (LoadMode::Append, Some(existing)) = (mode, &target.existing) {
                let tablet = tablet_for(engine, existing.id, key.1)?;
                for rowset in engine.catalog().view().live_rowsets(tablet)? {
                    batches.extend(read_rowset(&engine.file_path(&rowset.path))?);
                    old_ids.push(rowset.id);
                }
                if let Some(expected) = expected
                    && expected.get(&tablet).map(Vec::as_slice).unwrap_or_default() != old_ids
                {
                    return Err(EngineError::invalid(
                        format!(
                            "another statement changed {} while this one read it; nothing was written",
                            object.name
                        ),
                        Some("run the statement again"),
                    ));
                }
            }
            batches.extend(read_rowset(&file.path)?);
            let merged = merge::merge_key_model(schema, arrow, batches).await?;
            let path = file.path.with_extension("merged.parquet");
            let mut w = RowsetWriter::create(&path, arrow.clone())?;
            for b in &merged {
                w.write(b)?;
            }
            let done = w.finish_unflushed()?;
            let _ = std::fs::remove_file(&file.path);
            *file = done;
            replaced.insert(*key, old_ids);
        }
    }

    // Synchronous MVs: a rollup rowset beside each new base rowset, committed with it.
    let rollups = match &object.def {
        catalog::ObjectDef::Table { rollups, .. } => rollups.clone(),
        _ => Vec::new(),
    };
    let mut rollup_files: Vec<((usize, u32), WrittenFile, String)> = Vec::new();
    if !rollups.is_empty() {
        let db = engine.catalog().view().database_name(object.db_id)?;
        for (key, file) in &written {
            let rows = read_rowset(&file.path)?;
            for (i, rollup) in rollups.iter().enumerate() {
                let out =
                    super::rollup::compute(&db, &object.name, schema, rollup, rows.clone()).await?;
                let path = file.path.with_extension(format!("r{i}.parquet"));
                let mut w = RowsetWriter::create(&path, arrow_schema(&rollup.schema))?;
                for b in &out {
                    w.write(b)?;
                }
                rollup_files.push((*key, w.finish_unflushed()?, rollup.name.clone()));
            }
        }
    }

    // Every file of the load is made durable (many with one flush) before the commit names
    // them.
    let root = engine.root().to_path_buf();
    let paths: Vec<&std::path::Path> = written
        .iter()
        .map(|(_, f)| f.path.as_path())
        .chain(rollup_files.iter().map(|(_, f, _)| f.path.as_path()))
        .collect();
    super::storage::flush_files(&root, &paths)?;
    // The commit: one catalog transaction.
    let relative = |p: &std::path::Path| -> String {
        p.strip_prefix(&root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let buckets = router.buckets;
    let targets: Vec<(Option<i64>, String, PartitionBound)> = router
        .targets
        .iter()
        .map(|t| {
            (
                t.existing.as_ref().map(|p| p.id),
                t.name.clone(),
                t.bound.clone(),
            )
        })
        .collect();
    let files: Vec<NewRowset> = written
        .into_iter()
        .map(|(k, f)| (k, f, None))
        .chain(
            rollup_files
                .into_iter()
                .map(|(k, f, name)| (k, f, Some(name))),
        )
        .map(|(k, f, rollup)| {
            let rel = relative(&f.path);
            (k, f, rel, rollup)
        })
        .collect();
    let object_id = object.id;
    let summary = LoadSummary {
        rows: rows_seen,
        files: files.len(),
        bytes: files.iter().map(|(_, f, _, _)| f.bytes).sum(),
        partitions_created: targets
            .iter()
            .enumerate()
            .filter(|(i, t)| t.0.is_none() && files.iter().any(|(k, _, _, _)| k.0 == *i))
            .map(|(_, t)| t.1.clone())
            .collect(),
    };
    let object_name = object.name.clone();
    let db_name = engine.catalog().view().database_name(object.db_id)?;
    let concurrent = || {
        EngineError::invalid(
            format!("another load changed {object_name} while this one ran; nothing was loaded"),
            Some("run the load again"),
        )
    };
    engine.catalog().try_write(|tx| -> Result<()> {
        guard::not_restoring(tx, &db_name, &object_name, Change::Load, Span::default())
            .map_err(unpositioned)?;
        // Partitions this load creates (automatic partitioning), only where rows landed.
        let mut partition_ids: Vec<Option<i64>> = targets.iter().map(|t| t.0).collect();
        for (i, (existing, name, bound)) in targets.iter().enumerate() {
            if existing.is_none() && files.iter().any(|(k, _, _, _)| k.0 == i) {
                partition_ids[i] = Some(tx.insert_partition(object_id, name, bound, buckets)?);
            }
        }
        let mut touched: Vec<i64> = Vec::new();
        if mode == LoadMode::Overwrite {
            for r in tx.object_all_rowsets(object_id)? {
                tx.retire_rowset(r.id)?;
            }
            touched = tx.partitions(object_id)?.iter().map(|p| p.id).collect();
        }
        for ((target, _), _, _, _) in &files {
            if let Some(pid) = partition_ids[*target]
                && !touched.contains(&pid)
            {
                touched.push(pid);
            }
        }
        let mut versions = HashMap::new();
        for pid in &touched {
            versions.insert(*pid, tx.bump_version(*pid)?);
        }
        for ((target, bucket), file, rel, rollup) in &files {
            let missing = || {
                EngineError::invalid(
                    format!("{object_name}: a partition or tablet disappeared during the load"),
                    Some("run the load again"),
                )
            };
            let pid = partition_ids[*target].ok_or_else(missing)?;
            let tablet = tx.tablet(pid, i64::from(*bucket))?.ok_or_else(missing)?;
            if let Some(expected) = replaced.get(&(*target, *bucket))
                && mode == LoadMode::Append
                && rollup.is_none()
            {
                let live: Vec<i64> = tx.live_rowsets(tablet.id)?.iter().map(|r| r.id).collect();
                if &live != expected {
                    return Err(concurrent());
                }
                // The merged rowset replaces the tablet's rows, and its rollups replace theirs.
                for r in tx.all_live_rowsets(tablet.id)? {
                    tx.retire_rowset(r.id)?;
                }
            }
            tx.insert_rowset(&file.live_row(
                tablet.id,
                versions.get(&pid).copied().unwrap_or(1),
                rel.clone(),
                rollup.clone(),
            ))?;
        }
        tx.end_load(load_id)?;
        Ok(())
    })?;
    Ok(summary)
}

/// A load has no statement position to point at (it may come from FILES() or a refresh): the
/// guard's problem as plain words.
fn unpositioned(e: EngineError) -> EngineError {
    match e {
        EngineError::At(p) => EngineError::Invalid {
            message: p.message,
            help: p.help,
        },
        other => other,
    }
}

/// A file the commit adds: (target, bucket), the file, its cluster-relative path, and the
/// sync MV it belongs to (`None` for base rows).
type NewRowset = ((usize, u32), WrittenFile, String, Option<String>);

fn tablet_for(engine: &mut Engine, partition_id: i64, bucket: u32) -> Result<i64> {
    engine
        .catalog()
        .view()
        .tablets(partition_id)?
        .into_iter()
        .find(|t| t.bucket == i64::from(bucket))
        .map(|t| t.id)
        .ok_or_else(|| {
            EngineError::Arrow(format!("partition {partition_id} has no tablet {bucket}"))
        })
}

/// A stream over batches already in memory (VALUES rows).
pub fn batches_stream(
    batches: Vec<RecordBatch>,
) -> impl Stream<Item = Result<RecordBatch>> + Unpin {
    futures::stream::iter(batches.into_iter().map(Ok))
}

/// Builds one batch from literal rows (INSERT ... VALUES), each value already typed.
pub fn batch_from_scalars(target: &SchemaRef, rows: Vec<Vec<ScalarValue>>) -> Result<RecordBatch> {
    let columns = (0..target.fields().len())
        .map(|c| {
            let values = rows.iter().map(|r| r[c].clone());
            if rows.is_empty() {
                ScalarValue::try_from(target.field(c).data_type())
                    .and_then(|v| v.to_array_of_size(0))
            } else {
                ScalarValue::iter_to_array(values)
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // Literals may come out in a wider type than the column (e.g. Int64): cast to the column.
    let columns = columns
        .into_iter()
        .enumerate()
        .map(|(i, a)| cast_with_options(&a, target.field(i).data_type(), &Default::default()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(target.clone(), columns)?)
}

pub fn arrow_schema_of(object: &ObjectRow) -> Option<SchemaRef> {
    object.def.schema().map(arrow_schema)
}
