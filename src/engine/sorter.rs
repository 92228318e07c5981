//! Rows routed to tablets, gathered tablet by tablet in bounded memory and descriptors.
//!
//! A load used to keep one open Parquet writer per touched tablet: a statement touching tens
//! of thousands of tablets ran out of file descriptors (and held a row group buffer per
//! tablet). The sorter instead buffers the routed rows as they come (whole batches, with each
//! row's tablet), up to a memory budget; past it, the buffer is sorted by tablet and spilled
//! to a run file (Arrow IPC stream, one message per tablet's rows). At the end the runs and
//! the last buffer are merged tablet by tablet, in tablet order, so that exactly one rowset
//! writer is open at a time, and each tablet still gets one file.
//!
//! Sorting is stable: within a tablet rows keep the order they were loaded in, which decides
//! which row wins when a key model merges duplicates of one key.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;

use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::{concat_batches, take};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;

use super::{EngineError, Result};

/// Memory a load holds in routed rows before it spills them (256 MiB), unless the feature
/// `faults` sets `SRBACKUP_LOAD_BUFFER_BYTES` (tests make loads spill with small data).
const BUFFER_BYTES: usize = 256 << 20;

/// Rows per spilled IPC message: a tablet's rows past this are several messages.
const MESSAGE_ROWS: usize = 64 * 1024;

/// A tablet: (the load's target partition, bucket), packed so that sorting keeps that order.
pub type TabletKey = (usize, u32);

fn pack(key: TabletKey) -> u64 {
    ((key.0 as u64) << 32) | u64::from(key.1)
}

fn unpack(key: u64) -> TabletKey {
    ((key >> 32) as usize, key as u32)
}

/// A tablet's rows in a sorted batch: (packed key, offset, length).
type Group = (u64, usize, usize);

/// One spilled run: its file, read front to back, and per tablet the messages it holds.
struct Run {
    path: PathBuf,
    reader: Option<StreamReader<BufReader<File>>>,
    index: VecDeque<(u64, usize)>,
}

/// The rows of one load, gathered by tablet.
pub struct Sorter {
    schema: SchemaRef,
    /// Where run files go, and the prefix of their names.
    spill_to: PathBuf,
    budget: usize,
    batches: Vec<RecordBatch>,
    keys: Vec<Vec<u64>>,
    bytes: usize,
    runs: Vec<Run>,
}

impl Sorter {
    /// A sorter whose runs (if any) are written as `<spill_to>-run<n>.arrows`; they are
    /// removed when the sorter is dropped, and, if the process dies, by garbage collection
    /// with the load's other unregistered files.
    pub fn new(schema: SchemaRef, spill_to: PathBuf) -> Sorter {
        let budget = budget();
        Sorter {
            schema,
            spill_to,
            budget,
            batches: Vec::new(),
            keys: Vec::new(),
            bytes: 0,
            runs: Vec::new(),
        }
    }

    /// Adds `batch`, whose row `i` goes to tablet `keys[i]`.
    pub fn push(&mut self, batch: RecordBatch, keys: Vec<TabletKey>) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.bytes += batch.get_array_memory_size() + keys.len() * 8;
        self.keys.push(keys.into_iter().map(pack).collect());
        self.batches.push(batch);
        if self.bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// How many runs were spilled (for tests and the load summary).
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// The buffered rows as one batch sorted by tablet, with each tablet's rows in it.
    fn sorted(&mut self) -> Result<(RecordBatch, Vec<Group>)> {
        let batches = std::mem::take(&mut self.batches);
        let keys: Vec<u64> = std::mem::take(&mut self.keys).concat();
        self.bytes = 0;
        let all = concat_batches(&self.schema, &batches)?;
        drop(batches);
        let rows = u32::try_from(keys.len())
            .map_err(|_| EngineError::invalid("a load buffered more than 4 billion rows", None))?;
        let mut order: Vec<u32> = (0..rows).collect();
        // Stable: a tablet's rows keep their order.
        order.sort_by_key(|&i| keys[i as usize]);
        let mut groups: Vec<Group> = Vec::new();
        for (at, &i) in order.iter().enumerate() {
            let key = keys[i as usize];
            match groups.last_mut() {
                Some((k, _, len)) if *k == key => *len += 1,
                _ => groups.push((key, at, 1)),
            }
        }
        let indices = UInt32Array::from(order);
        let columns = all
            .columns()
            .iter()
            .map(|c| take(c, &indices, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((RecordBatch::try_new(self.schema.clone(), columns)?, groups))
    }

    /// Writes the buffer, sorted, to a new run file and empties it.
    fn spill(&mut self) -> Result<()> {
        let (sorted, groups) = self.sorted()?;
        let path = PathBuf::from(format!(
            "{}-run{}.arrows",
            self.spill_to.display(),
            self.runs.len()
        ));
        let io = |e: std::io::Error| EngineError::Io {
            path: path.clone(),
            source: e,
        };
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        // Registered before anything is written, so that drop removes even a partial run.
        self.runs.push(Run {
            path: path.clone(),
            reader: None,
            index: VecDeque::new(),
        });
        let mut writer =
            StreamWriter::try_new(BufWriter::with_capacity(1 << 20, file), &self.schema)?;
        let mut index = VecDeque::with_capacity(groups.len());
        for (key, offset, len) in groups {
            let mut messages = 0;
            let mut at = 0;
            while at < len {
                let n = (len - at).min(MESSAGE_ROWS);
                writer.write(&sorted.slice(offset + at, n))?;
                at += n;
                messages += 1;
            }
            index.push_back((key, messages));
        }
        writer.finish()?;
        // A run is read back by this process only: no flush; a crash discards the load.
        let run = self.runs.last_mut().expect("the run just registered");
        run.index = index;
        Ok(())
    }

    /// Hands every tablet's rows to `write`, one tablet at a time in tablet order: the rows of
    /// each spilled run first (in spill order), then those still in memory.
    pub fn drain(
        mut self,
        mut write: impl FnMut(TabletKey, &[RecordBatch]) -> Result<()>,
    ) -> Result<()> {
        let (last, groups) = if self.batches.is_empty() {
            (RecordBatch::new_empty(self.schema.clone()), Vec::new())
        } else {
            self.sorted()?
        };
        for run in &mut self.runs {
            let file = File::open(&run.path).map_err(|e| EngineError::Io {
                path: run.path.clone(),
                source: e,
            })?;
            run.reader = Some(StreamReader::try_new(
                BufReader::with_capacity(1 << 20, file),
                None,
            )?);
        }
        let mut memory = groups.into_iter().peekable();
        loop {
            // The smallest tablet any source still holds.
            let next = self
                .runs
                .iter()
                .filter_map(|r| r.index.front().map(|(k, _)| *k))
                .chain(memory.peek().map(|(k, _, _)| *k))
                .min();
            let Some(key) = next else { break };
            let mut rows: Vec<RecordBatch> = Vec::new();
            for run in &mut self.runs {
                if run.index.front().map(|(k, _)| *k) != Some(key) {
                    continue;
                }
                let (_, messages) = run.index.pop_front().expect("checked above");
                let reader = run.reader.as_mut().expect("opened above");
                for _ in 0..messages {
                    let batch = reader.next().ok_or_else(|| EngineError::Io {
                        path: run.path.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the spilled run ended early",
                        ),
                    })??;
                    rows.push(batch);
                }
            }
            if memory.peek().map(|(k, _, _)| *k) == Some(key) {
                let (_, offset, len) = memory.next().expect("peeked");
                rows.push(last.slice(offset, len));
            }
            write(unpack(key), &rows)?;
        }
        Ok(())
    }
}

impl Drop for Sorter {
    fn drop(&mut self) {
        for run in &self.runs {
            let _ = std::fs::remove_file(&run.path);
        }
    }
}

fn budget() -> usize {
    #[cfg(feature = "faults")]
    if let Some(bytes) = std::env::var("SRBACKUP_LOAD_BUFFER_BYTES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return bytes.max(1);
    }
    BUFFER_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(schema: &SchemaRef, ids: &[i64]) -> RecordBatch {
        let names: Vec<String> = ids.iter().map(|i| format!("row{i}")).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    /// Every row comes out once, under its tablet, in load order within the tablet, in
    /// tablet order, whether the rows stayed in memory or went through several runs.
    fn gathers(budget: usize) -> (Vec<(TabletKey, Vec<i64>)>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let mut sorter = Sorter::new(schema.clone(), dir.path().join("L1-spill"));
        sorter.budget = budget;
        let mut next = 0i64;
        for round in 0..20u32 {
            let rows: Vec<i64> = (next..next + 500).collect();
            next += 500;
            // Rows spread over 7 partitions x 13 buckets, in an order unlike the key order.
            let keys: Vec<TabletKey> = rows
                .iter()
                .map(|&r| (((r * 31 + i64::from(round)) % 7) as usize, (r % 13) as u32))
                .collect();
            sorter.push(batch(&schema, &rows), keys).unwrap();
        }
        let runs = sorter.spilled_runs();
        let mut out = Vec::new();
        sorter
            .drain(|key, batches| {
                out.push((key, ids(batches)));
                Ok(())
            })
            .unwrap();
        // The runs are gone with the sorter.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        (out, runs)
    }

    #[test]
    fn spilled_and_in_memory_loads_gather_the_same_rows_per_tablet() {
        let (in_memory, none) = gathers(usize::MAX);
        let (spilled, runs) = gathers(20_000);
        assert_eq!(none, 0);
        assert!(runs >= 5, "{runs} runs");
        assert_eq!(in_memory, spilled);
        assert_eq!(in_memory.len(), 7 * 13);
        let keys: Vec<TabletKey> = in_memory.iter().map(|(k, _)| *k).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "tablets come in order");
        let mut all: Vec<i64> = Vec::new();
        for ((partition, bucket), rows) in &in_memory {
            assert!(rows.windows(2).all(|w| w[0] < w[1]), "load order kept");
            for r in rows {
                assert_eq!((r % 13) as u32, *bucket);
                assert_eq!(((r * 31 + r / 500) % 7) as usize, *partition);
            }
            all.extend(rows);
        }
        all.sort();
        assert_eq!(all, (0..10_000).collect::<Vec<i64>>());
    }
}
