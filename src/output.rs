//! How results look on a terminal (mysql-client tables) and to machines (JSON).

use std::fmt::Write;

use crate::session::{Output, ResultSet};

/// A result set as the mysql client prints it.
pub fn table(rs: &ResultSet) -> String {
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
    let mut widths: Vec<usize> = rs.columns.iter().map(|c| c.chars().count()).collect();
    for row in &rs.rows {
        for (w, v) in widths.iter_mut().zip(row) {
            // Multi-line values (SHOW CREATE TABLE) are measured by their longest line.
            let longest = cell(v)
                .lines()
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(0);
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
            let pad = w - v.chars().count().min(*w);
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
        Output::Done { message } => format!("{message}\n"),
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
        Output::Done { message } => {
            serde_json::json!({ "statement": statement, "message": message })
        }
    }
}
