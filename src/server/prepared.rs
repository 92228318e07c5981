//! Server-side prepared statements (COM_STMT_PREPARE / COM_STMT_EXECUTE), for drivers that
//! prepare: `cursor(prepared=True)` in mysql-connector-python, JDBC with
//! `useServerPrepStmts=true`, Go's database/sql.
//!
//! A statement is kept as its text with its `?` placeholders found (outside strings, quoted
//! names and comments). Each execution puts the parameters in as SQL literals (strings quoted
//! and escaped, numbers as digits, dates and times as their text) and runs the statement as a
//! query would run; the rows go back in the binary protocol with each value typed as its
//! column. Parameters are values, never SQL: a string parameter cannot end its literal.
//!
//! opensrv-mysql's parameter parser panics on malformed packets (an unknown type byte, a value
//! shorter than its type; `params.rs` in 0.7.0), so parameters are read under `catch_unwind`
//! and such a packet is an error for that statement, not a dead connection.

use std::collections::HashMap;
use std::fmt::Write as _;

use opensrv_mysql::{ColumnType, ErrorKind, ParamParser, ValueInner};

/// Statements one connection may hold prepared (MySQL's `max_prepared_stmt_count` is per
/// server; this bounds one client's memory).
pub const MAX_PREPARED: usize = 1024;

/// A prepared statement: its text and where its placeholders are.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub sql: String,
    /// Byte offsets of the `?`s.
    placeholders: Vec<usize>,
}

impl Prepared {
    pub fn new(sql: &str) -> Prepared {
        Prepared {
            sql: sql.to_string(),
            placeholders: placeholders(sql),
        }
    }

    pub fn params(&self) -> usize {
        self.placeholders.len()
    }

    /// The statement with `values` (SQL literals) in place of its placeholders.
    pub fn bind(&self, values: &[String]) -> Result<String, String> {
        if values.len() != self.placeholders.len() {
            return Err(format!(
                "the statement has {} parameters, {} were sent",
                self.placeholders.len(),
                values.len()
            ));
        }
        let mut out =
            String::with_capacity(self.sql.len() + values.iter().map(String::len).sum::<usize>());
        let mut at = 0;
        for (offset, value) in self.placeholders.iter().zip(values) {
            out.push_str(&self.sql[at..*offset]);
            out.push_str(value);
            at = offset + 1;
        }
        out.push_str(&self.sql[at..]);
        Ok(out)
    }
}

/// The prepared statements of one connection, by id.
#[derive(Default)]
pub struct Statements {
    by_id: HashMap<u32, Prepared>,
    next: u32,
}

impl Statements {
    pub fn add(&mut self, p: Prepared) -> Result<u32, String> {
        if self.by_id.len() >= MAX_PREPARED {
            return Err(format!(
                "this connection holds {MAX_PREPARED} prepared statements; close some (COM_STMT_CLOSE) before preparing more"
            ));
        }
        self.next = self.next.wrapping_add(1).max(1);
        while self.by_id.contains_key(&self.next) {
            self.next = self.next.wrapping_add(1).max(1);
        }
        self.by_id.insert(self.next, p);
        Ok(self.next)
    }
    pub fn get(&self, id: u32) -> Option<&Prepared> {
        self.by_id.get(&id)
    }
    pub fn remove(&mut self, id: u32) {
        self.by_id.remove(&id);
    }
}

/// Byte offsets of the `?` placeholders of `sql`: not inside '…', "…" or `…` (with backslash
/// escapes and doubled quotes), nor in -- , # or /* */ comments.
fn placeholders(sql: &str) -> Vec<usize> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\\' && q != b'`' {
                        i += 2;
                    } else if bytes[i] == q {
                        if bytes.get(i + 1) == Some(&q) {
                            i += 2;
                        } else {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'?' => {
                out.push(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// A string as a SQL literal: single quotes, backslashes and quotes escaped.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The parameters of one execution as SQL literals; an error (code, message) for a packet the
/// parser cannot read or a value that has no SQL literal.
pub fn literals(params: ParamParser<'_>) -> Result<Vec<String>, (ErrorKind, String)> {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        params
            .into_iter()
            .map(|p| literal(p.coltype, p.value.into_inner()))
            .collect::<Result<Vec<String>, String>>()
    }));
    match read {
        Ok(Ok(values)) => Ok(values),
        Ok(Err(message)) => Err((ErrorKind::ER_WRONG_ARGUMENTS, message)),
        Err(_) => Err((
            ErrorKind::ER_MALFORMED_PACKET,
            "the parameters of COM_STMT_EXECUTE could not be read (an unknown type, or a value shorter than its type)".into(),
        )),
    }
}

fn literal(coltype: ColumnType, value: ValueInner<'_>) -> Result<String, String> {
    Ok(match value {
        ValueInner::NULL => "NULL".into(),
        ValueInner::Int(n) => n.to_string(),
        ValueInner::UInt(n) => n.to_string(),
        ValueInner::Double(f) if f.is_finite() => {
            // Exact digits of the value; FLOAT parameters arrive widened from f32.
            let mut s = String::new();
            let _ = write!(s, "{f:?}");
            s
        }
        ValueInner::Double(f) => return Err(format!("{f} has no SQL literal")),
        ValueInner::Bytes(b) => match std::str::from_utf8(b) {
            Ok(text) => match coltype {
                // DECIMAL parameters are sent as their digits.
                ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL
                    if text.parse::<f64>().is_ok_and(f64::is_finite)
                        && text
                            .bytes()
                            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
                {
                    text.to_string()
                }
                _ => string_literal(text),
            },
            Err(_) => {
                return Err(
                    "a parameter holds bytes that are not UTF-8 text; binary values are not supported".into(),
                );
            }
        },
        ValueInner::Date(b) | ValueInner::Datetime(b) => string_literal(&datetime_text(b)?),
        ValueInner::Time(b) => string_literal(&time_text(b)?),
    })
}

/// MySQL's binary DATE/DATETIME: year (2 bytes), month, day, then hour, minute, second, then
/// microseconds (4 bytes); 0, 4, 7 or 11 bytes.
fn datetime_text(b: &[u8]) -> Result<String, String> {
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    match b.len() {
        0 => Ok("0000-00-00 00:00:00".into()),
        4 => Ok(format!("{:04}-{:02}-{:02}", u16_at(0), b[2], b[3])),
        7 => Ok(format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            u16_at(0),
            b[2],
            b[3],
            b[4],
            b[5],
            b[6]
        )),
        11 => Ok(format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
            u16_at(0),
            b[2],
            b[3],
            b[4],
            b[5],
            b[6],
            u32::from_le_bytes([b[7], b[8], b[9], b[10]])
        )),
        n => Err(format!(
            "a date parameter of {n} bytes (0, 4, 7 or 11 expected)"
        )),
    }
}

/// MySQL's binary TIME: sign, days (4 bytes), hour, minute, second, then microseconds; 0, 8
/// or 12 bytes.
fn time_text(b: &[u8]) -> Result<String, String> {
    match b.len() {
        0 => Ok("00:00:00".into()),
        8 | 12 => {
            let days = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
            let hours = u64::from(days) * 24 + u64::from(b[5]);
            let sign = if b[0] == 1 { "-" } else { "" };
            let mut t = format!("{sign}{hours:02}:{:02}:{:02}", b[6], b[7]);
            if b.len() == 12 {
                let _ = write!(t, ".{:06}", u32::from_le_bytes([b[8], b[9], b[10], b[11]]));
            }
            Ok(t)
        }
        n => Err(format!(
            "a time parameter of {n} bytes (0, 8 or 12 expected)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_outside_strings_names_and_comments() {
        let p = Prepared::new(
            "SELECT ?, '?', \"a\\\"?\", `?`, 'it''s ?' -- ?\n, ? /* ? */ # ?\n FROM t WHERE x = ?",
        );
        assert_eq!(p.params(), 3);
        assert_eq!(
            p.bind(&["1".into(), string_literal("a'b\\"), "NULL".into()])
                .unwrap(),
            "SELECT 1, '?', \"a\\\"?\", `?`, 'it''s ?' -- ?\n, 'a''b\\\\' /* ? */ # ?\n FROM t WHERE x = NULL"
        );
        assert!(p.bind(&["1".into()]).is_err());
        // An unterminated string or comment does not run past the end.
        assert_eq!(Prepared::new("SELECT '?").params(), 0);
        assert_eq!(Prepared::new("SELECT /* ?").params(), 0);
        assert_eq!(Prepared::new("SELECT ?\\").params(), 1);
    }

    #[test]
    fn binary_dates_and_times_become_text() {
        assert_eq!(datetime_text(&[0xea, 0x07, 11, 29]).unwrap(), "2026-11-29");
        assert_eq!(
            datetime_text(&[0xea, 0x07, 11, 29, 20, 10, 5, 0x40, 0xe2, 0x01, 0]).unwrap(),
            "2026-11-29 20:10:05.123456"
        );
        assert!(datetime_text(&[1, 2, 3]).is_err());
        assert_eq!(time_text(&[1, 1, 0, 0, 0, 2, 3, 4]).unwrap(), "-26:03:04");
        assert!(time_text(&[0; 5]).is_err());
    }

    #[test]
    fn statements_are_bounded_per_connection() {
        let mut s = Statements::default();
        for _ in 0..MAX_PREPARED {
            s.add(Prepared::new("SELECT 1")).unwrap();
        }
        assert!(s.add(Prepared::new("SELECT 1")).is_err());
        s.remove(1);
        let id = s.add(Prepared::new("SELECT 2")).unwrap();
        assert_eq!(s.get(id).map(|p| p.sql.as_str()), Some("SELECT 2"));
    }
}
