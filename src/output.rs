//! How results look on a terminal (mysql-client tables) and to machines (JSON).

use std::fmt::Write;
use std::io::Write as _;

use crate::results::{ColumnKind, Output, ResultSet, Sink};
use crate::sql::Statement;

/// `print!` that never panics: when whoever reads stdout has gone (`| head`), the output is
/// dropped and the work goes on (a job must not die half-way because its reader left).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {
        $crate::output::write_to(false, false, format_args!($($t)*))
    };
}

/// `println!` that never panics (see [`out!`]).
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::output::write_to(false, true, format_args!($($t)*))
    };
}

/// `eprintln!` that never panics (see [`out!`]).
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::output::write_to(true, true, format_args!($($t)*))
    };
}

/// The first error writing stdout met that is not a closed pipe (a full disk behind `>`): the
/// work goes on, but the command must not end with success (`stdout_failure`).
static STDOUT_FAILED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Why stdout could not be written, if it could not (a closed pipe does not count: its reader
/// left on purpose, `| head`).
pub fn stdout_failure() -> Option<&'static str> {
    STDOUT_FAILED.get().map(String::as_str)
}

/// Writes to stdout or stderr without panicking; a closed pipe or a full disk behind them does
/// not stop the work (a failed stdout is remembered: `stdout_failure`).
pub fn write_to(stderr: bool, newline: bool, args: std::fmt::Arguments<'_>) {
    fn put(
        mut w: impl std::io::Write,
        newline: bool,
        args: std::fmt::Arguments<'_>,
    ) -> std::io::Result<()> {
        w.write_fmt(args)?;
        if newline {
            w.write_all(b"\n")?;
        }
        w.flush()
    }
    if stderr {
        let _ = put(std::io::stderr().lock(), newline, args);
    } else if let Err(e) = put(std::io::stdout().lock(), newline, args)
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let _ = STDOUT_FAILED.set(e.to_string());
    }
}

/// `1.2 MiB`: a size as people read it.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// How many terminal columns `text` takes (a CJK character takes two, a combining mark none),
/// as the mysql client pads its tables.
fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// A result set as the mysql client prints it.
pub fn table(rs: &ResultSet) -> String {
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
    let mut widths: Vec<usize> = rs.columns.iter().map(|c| width(c)).collect();
    for row in &rs.rows {
        for (w, v) in widths.iter_mut().zip(row) {
            // Multi-line values (SHOW CREATE TABLE) are measured by their longest line.
            let longest = cell(v).lines().map(width).max().unwrap_or(0);
            *w = (*w).max(longest);
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let line = |values: Vec<String>| -> String {
        let mut out = String::new();
        for (v, w) in values.iter().zip(&widths) {
            let pad = w - width(v).min(*w);
            let _ = write!(out, "| {v}{} ", " ".repeat(pad));
        }
        out + "|\n"
    };
    let mut out = rule.clone();
    out += &line(rs.columns.clone());
    out += &rule;
    for row in &rs.rows {
        out += &line(row.iter().map(cell).collect());
    }
    if !rs.rows.is_empty() {
        out += &rule;
    }
    let n = rs.rows.len();
    let _ = writeln!(
        out,
        "{} in set",
        match n {
            0 => "Empty set".to_string(),
            1 => "1 row".to_string(),
            n => format!("{n} rows"),
        }
    );
    out.replace("Empty set in set", "Empty set")
}

/// One statement's output for a terminal.
pub fn text(output: &Output) -> String {
    match output {
        Output::Rows(rs) => table(rs),
        Output::Done { message, .. } => format!("{message}\n"),
    }
}

/// One statement's output as a JSON object (rows as objects keyed by column).
pub fn json(statement: &str, output: &Output) -> serde_json::Value {
    match output {
        Output::Rows(rs) => {
            let rows: Vec<serde_json::Value> = rs
                .rows
                .iter()
                .map(|r| {
                    serde_json::Value::Object(
                        rs.columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| {
                                (
                                    c.clone(),
                                    v.clone()
                                        .map(serde_json::Value::String)
                                        .unwrap_or(serde_json::Value::Null),
                                )
                            })
                            .collect(),
                    )
                })
                .collect();
            serde_json::json!({ "statement": statement, "columns": rs.columns, "rows": rows })
        }
        Output::Done { message, .. } => {
            serde_json::json!({ "statement": statement, "message": message })
        }
    }
}

/// Rows buffered to size the columns before a streamed table starts printing.
const TABLE_BUFFER_ROWS: usize = 5000;

/// Prints mysql-style tables to standard output, streaming long results: the first
/// [`TABLE_BUFFER_ROWS`] rows set the column widths, later rows keep them.
#[derive(Default)]
pub struct TableSink {
    columns: Vec<String>,
    buffered: Vec<Vec<Option<String>>>,
    widths: Option<Vec<usize>>,
}

fn cell(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "NULL".into())
}

impl TableSink {
    fn rule(widths: &[usize]) -> String {
        widths
            .iter()
            .map(|w| format!("+{}", "-".repeat(w + 2)))
            .collect::<String>()
            + "+"
    }
    fn line(widths: &[usize], values: &[String]) -> String {
        let mut out = String::new();
        for (v, w) in values.iter().zip(widths) {
            let pad = w.saturating_sub(width(v));
            let _ = write!(out, "| {v}{} ", " ".repeat(pad));
        }
        out + "|"
    }
    fn start(&mut self) {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| width(c)).collect();
        for row in &self.buffered {
            for (w, v) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(&cell(v)));
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", Self::rule(&widths));
        let _ = writeln!(out, "{}", Self::line(&widths, &self.columns));
        let _ = writeln!(out, "{}", Self::rule(&widths));
        for row in std::mem::take(&mut self.buffered) {
            let _ = writeln!(
                out,
                "{}",
                Self::line(&widths, &row.iter().map(cell).collect::<Vec<_>>())
            );
        }
        self.widths = Some(widths);
    }
}

impl Sink for TableSink {
    fn output(&mut self, _: &Statement, output: &Output) {
        crate::out!("{}", text(output));
    }
    fn begin_rows(&mut self, _: &str, columns: &[String], _: &[ColumnKind]) {
        self.columns = columns.to_vec();
        self.buffered.clear();
        self.widths = None;
    }
    fn rows(&mut self, rows: Vec<Vec<Option<String>>>) {
        match &self.widths {
            None => {
                self.buffered.extend(rows);
                if self.buffered.len() >= TABLE_BUFFER_ROWS {
                    self.start();
                }
            }
            Some(widths) => {
                let mut out = std::io::stdout().lock();
                for row in rows {
                    let _ = writeln!(
                        out,
                        "{}",
                        Self::line(widths, &row.iter().map(cell).collect::<Vec<_>>())
                    );
                }
            }
        }
    }
    fn end_rows(&mut self, total: u64) {
        if total == 0 {
            // As the mysql client does: no table for no rows.
            let rs = ResultSet {
                columns: self.columns.clone(),
                rows: Vec::new(),
                kinds: Vec::new(),
            };
            crate::out!("{}", table(&rs));
            return;
        }
        if self.widths.is_none() {
            self.start();
        }
        if let Some(widths) = &self.widths {
            crate::outln!("{}", Self::rule(widths));
        }
        crate::outln!(
            "{} in set",
            if total == 1 {
                "1 row".to_string()
            } else {
                format!("{total} rows")
            }
        );
    }
}

/// Writes one JSON array of statement results to standard output, streaming query rows.
pub struct JsonSink {
    first_statement: bool,
    first_row: bool,
    /// A query's `rows` array is open (its rows are streaming).
    in_rows: bool,
    columns: Vec<String>,
    redact: fn(&Statement) -> String,
}

impl JsonSink {
    /// `redact` gives the text shown for a statement (credentials removed).
    pub fn new(redact: fn(&Statement) -> String) -> Self {
        crate::out!("[");
        JsonSink {
            first_statement: true,
            first_row: true,
            in_rows: false,
            columns: Vec::new(),
            redact,
        }
    }
    fn separator(&mut self) {
        if !self.first_statement {
            crate::out!(",");
        }
        self.first_statement = false;
    }
    pub fn finish(self) {
        crate::outln!("]");
    }

    /// Ends the array with the error that stopped the script (`{"error": {...}}`), so what is
    /// printed stays one JSON document.
    pub fn fail(mut self, error: &serde_json::Value) {
        // A query that failed while its rows streamed: its result is closed first.
        if self.in_rows {
            crate::out!("]}}");
            self.in_rows = false;
        }
        self.separator();
        crate::out!("{error}");
        self.finish();
    }
}

impl Sink for JsonSink {
    fn output(&mut self, statement: &Statement, output: &Output) {
        self.separator();
        crate::out!("{}", json(&(self.redact)(statement), output));
    }
    fn begin_rows(&mut self, query: &str, columns: &[String], _: &[ColumnKind]) {
        self.separator();
        self.columns = columns.to_vec();
        self.first_row = true;
        self.in_rows = true;
        crate::out!(
            "{{\"statement\":{},\"columns\":{},\"rows\":[",
            serde_json::Value::String(query.to_string()),
            serde_json::to_string(columns).unwrap_or_default()
        );
    }
    fn rows(&mut self, rows: Vec<Vec<Option<String>>>) {
        let mut out = std::io::stdout().lock();
        for r in rows {
            let object: serde_json::Map<String, serde_json::Value> = self
                .columns
                .iter()
                .zip(r)
                .map(|(c, v)| {
                    (
                        c.clone(),
                        v.map(serde_json::Value::String)
                            .unwrap_or(serde_json::Value::Null),
                    )
                })
                .collect();
            let _ = write!(
                out,
                "{}{}",
                if self.first_row { "" } else { "," },
                serde_json::Value::Object(object)
            );
            self.first_row = false;
        }
    }
    fn end_rows(&mut self, _total: u64) {
        crate::out!("]}}");
        self.in_rows = false;
    }
}
