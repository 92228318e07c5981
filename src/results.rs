//! What a statement produces, whoever runs it and whoever prints it: rows as text with the
//! kind of each column, or a message. The session makes them; `output` prints them for a
//! terminal or as JSON, the server sends them over the MySQL protocol, `exec` builds SHOW
//! BACKUP / SHOW RESTORE rows.

use crate::sql::Statement;

/// Rows to show, as text (NULL as `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// What each column holds, for clients that type their values (the MySQL protocol);
    /// empty, or shorter than `columns`, means text.
    #[serde(skip)]
    pub kinds: Vec<ColumnKind>,
}

/// The type of a result column, as far as a client cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColumnKind {
    #[default]
    Text,
    /// BOOLEAN, sent as MySQL and StarRocks send it: TINYINT(1), `1` or `0`.
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    /// BIGINT, and every count or id a SHOW prints.
    Integer,
    /// LARGEINT: digits, as an integer type so drivers give back an integer.
    LargeInt,
    /// FLOAT (single precision).
    Float,
    Double,
    Decimal,
    Date,
    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`.
    DateTime,
}

impl ResultSet {
    pub fn new(columns: &[&str]) -> Self {
        ResultSet {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            kinds: Vec::new(),
        }
    }
    pub fn push(&mut self, row: Vec<Option<String>>) {
        self.rows.push(row);
    }
    /// The value of `column` in row `row`, for tests and callers.
    pub fn get(&self, row: usize, column: &str) -> Option<&str> {
        let c = self.columns.iter().position(|n| n == column)?;
        self.rows.get(row)?.get(c)?.as_deref()
    }
}

/// What a statement produced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    Rows(ResultSet),
    Done {
        message: String,
        /// Rows a load wrote (what a MySQL client shows as "rows affected").
        #[serde(skip_serializing_if = "Option::is_none")]
        affected: Option<u64>,
    },
}

/// Where streamed results go (see [`Session::run_script_streaming`]).
pub trait Sink {
    /// A statement that produced a complete output.
    fn output(&mut self, statement: &Statement, output: &Output);
    /// A query's rows begin: their columns and what each holds.
    fn begin_rows(&mut self, query: &str, columns: &[String], kinds: &[ColumnKind]);
    /// Some of its rows.
    fn rows(&mut self, rows: Vec<Vec<Option<String>>>);
    /// Its last rows have been given.
    fn end_rows(&mut self, total: u64);
}
