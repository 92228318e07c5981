//! Whether a snapshot's table or MV may land on an existing one: a restore overwrites a table
//! only when the schemas agree, and adds partitions only where they cover values no other
//! partition of the table covers (StarRocks refuses overlapping ranges and repeated list
//! values). The planner asks first; the executor asks again when it stages and inside the
//! commit transaction, so a change made in between is caught before anything is published.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::types::{arrow_type, parse_scalar};
use crate::catalog::{ObjectDef, PartitionBound, TableSchema};

/// Why a snapshot's object cannot land on an existing one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misfit {
    /// The schemas differ (key type, columns, partitioning, buckets, a partition's range).
    Schema(String),
    /// A restored partition would cover values another partition of the table covers.
    Overlap(String),
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misfit::Schema(s) | Misfit::Overlap(s) => f.write_str(s),
        }
    }
}

/// The first way `incoming` cannot land on `existing`, or `None` if it may. `restored` are the
/// partitions the restore brings; with `partial`, they replace or join the existing ones,
/// otherwise the whole object is replaced.
pub fn first_difference(
    existing: &ObjectDef,
    existing_parts: &[(String, PartitionBound)],
    incoming: &ObjectDef,
    incoming_parts: &[(String, PartitionBound)],
    restored: &[String],
    partial: bool,
) -> Option<Misfit> {
    if existing.kind() != incoming.kind() {
        return Some(Misfit::Schema(format!(
            "it is a {} in the cluster and a {} in the snapshot",
            existing.kind().noun(),
            incoming.kind().noun()
        )));
    }
    let (Some(a), Some(b)) = (existing.schema(), incoming.schema()) else {
        return None;
    };
    if let Some(d) = schema_difference(a, b) {
        return Some(Misfit::Schema(d));
    }
    let mut new_parts = Vec::new();
    for (name, bound) in incoming_parts.iter().filter(|(n, _)| restored.contains(n)) {
        match existing_parts.iter().find(|(n, _)| n == name) {
            Some((_, e)) if e != bound => {
                return Some(Misfit::Schema(format!(
                    "partition {name} covers different values in the cluster and in the snapshot"
                )));
            }
            Some(_) => {}
            None => new_parts.push((name.clone(), bound.clone())),
        }
    }
    if partial && !new_parts.is_empty() {
        // What stays of the table, and what joins it, must not cover a value twice.
        let staying: Vec<(String, PartitionBound)> = existing_parts
            .iter()
            .filter(|(n, _)| !restored.contains(n))
            .cloned()
            .collect();
        return overlap(a, &staying, &new_parts).map(Misfit::Overlap);
    }
    None
}

fn schema_difference(a: &TableSchema, b: &TableSchema) -> Option<String> {
    if a.keys != b.keys {
        return Some(format!(
            "the key type differs: {} in the cluster, {} in the snapshot",
            a.keys.keyword(),
            b.keys.keyword()
        ));
    }
    if a.columns.len() != b.columns.len() {
        return Some(format!(
            "the number of columns differs: {} in the cluster, {} in the snapshot",
            a.columns.len(),
            b.columns.len()
        ));
    }
    for (x, y) in a.columns.iter().zip(&b.columns) {
        if !x.name.eq_ignore_ascii_case(&y.name) {
            return Some(format!(
                "column {} in the cluster is {} in the snapshot",
                x.name, y.name
            ));
        }
        if x.sql_type != y.sql_type {
            return Some(format!(
                "column {} is {} in the cluster, {} in the snapshot",
                x.name,
                x.sql_type.sql_name(),
                y.sql_type.sql_name()
            ));
        }
        if x.nullable != y.nullable {
            let n = |b: bool| if b { "NULL" } else { "NOT NULL" };
            return Some(format!(
                "column {} is {} in the cluster, {} in the snapshot",
                x.name,
                n(x.nullable),
                n(y.nullable)
            ));
        }
        if x.is_key != y.is_key || x.aggregate != y.aggregate {
            return Some(format!(
                "column {} has a different key or aggregate role",
                x.name
            ));
        }
    }
    if a.partitioning != b.partitioning {
        return Some("the partitioning differs".to_string());
    }
    if let (
        crate::catalog::Distribution::Hash { columns: x, .. },
        crate::catalog::Distribution::Hash { columns: y, .. },
    ) = (&a.distribution, &b.distribution)
        && x != y
    {
        // Rows of one key must land in one tablet (key models merge per tablet).
        return Some(format!(
            "the distribution differs: HASH({}) in the cluster, HASH({}) in the snapshot",
            x.join(", "),
            y.join(", ")
        ));
    }
    if std::mem::discriminant(&a.distribution) != std::mem::discriminant(&b.distribution) {
        return Some("the distribution differs (HASH in one, RANDOM in the other)".to_string());
    }
    if a.distribution.buckets() != b.distribution.buckets() {
        return Some(format!(
            "the bucket count differs: {} in the cluster, {} in the snapshot",
            a.distribution.buckets(),
            b.distribution.buckets()
        ));
    }
    None
}

/// The first new partition that covers a value a staying partition (or an earlier new one)
/// covers.
pub fn overlap(
    schema: &TableSchema,
    staying: &[(String, PartitionBound)],
    new: &[(String, PartitionBound)],
) -> Option<String> {
    let types: Vec<DataType> = schema
        .partitioning
        .columns()
        .iter()
        .filter_map(|c| schema.column(c))
        .map(|c| arrow_type(&c.sql_type))
        .collect();
    let mut seen: Vec<(String, PartitionBound)> = staying.to_vec();
    for (name, bound) in new {
        for (other, other_bound) in &seen {
            if covers_common_value(bound, other_bound, &types) {
                return Some(format!(
                    "partition {name} {} of the snapshot overlaps partition {other} {} of the table",
                    describe(bound),
                    describe(other_bound)
                ));
            }
        }
        seen.push((name.clone(), bound.clone()));
    }
    None
}

/// Whether two partitions of one table would both hold some row.
fn covers_common_value(a: &PartitionBound, b: &PartitionBound, types: &[DataType]) -> bool {
    match (a, b) {
        (
            PartitionBound::Range {
                lower: alo,
                upper: ahi,
            },
            PartitionBound::Range {
                lower: blo,
                upper: bhi,
            },
        ) => {
            let parse = |v: &[String]| -> Option<Vec<ScalarValue>> {
                v.iter()
                    .zip(types)
                    .map(|(s, t)| parse_scalar(s, t).ok())
                    .collect()
            };
            let (Some(alo), Some(ahi), Some(blo), Some(bhi)) =
                (parse(alo), parse(ahi), parse(blo), parse(bhi))
            else {
                // Bounds that do not parse as the column types cannot be compared: refuse.
                return true;
            };
            // An empty lower bound is MINVALUE, an empty upper bound MAXVALUE.
            let le = |x: &Vec<ScalarValue>, y: &Vec<ScalarValue>| {
                x.partial_cmp(y).is_some_and(|o| o.is_le())
            };
            // [alo, ahi) and [blo, bhi) are disjoint when ahi <= blo or bhi <= alo.
            let a_before_b = !ahi.is_empty() && !blo.is_empty() && le(&ahi, &blo);
            let b_before_a = !bhi.is_empty() && !alo.is_empty() && le(&bhi, &alo);
            !(a_before_b || b_before_a)
        }
        (PartitionBound::List { values: a }, PartitionBound::List { values: b }) => {
            a.iter().any(|v| b.contains(v))
        }
        (PartitionBound::Value { values: a }, PartitionBound::Value { values: b }) => a == b,
        // An unpartitioned table's one partition, or two different kinds: they collide.
        _ => true,
    }
}

fn describe(b: &PartitionBound) -> String {
    let tuple = |v: &[String]| {
        if v.is_empty() {
            "∞".to_string()
        } else {
            v.join(", ")
        }
    };
    match b {
        PartitionBound::Whole => "(the whole table)".into(),
        PartitionBound::Range { lower, upper } => {
            format!("[{}, {})", tuple(lower), tuple(upper))
        }
        PartitionBound::List { values } => format!(
            "IN ({})",
            values
                .iter()
                .map(|v| v
                    .iter()
                    .map(|x| x.clone().unwrap_or_else(|| "NULL".into()))
                    .collect::<Vec<_>>()
                    .join(", "))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        PartitionBound::Value { values } => format!(
            "= ({})",
            values
                .iter()
                .map(|x| x.clone().unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(lo: &str, hi: &str) -> PartitionBound {
        let side = |s: &str| {
            if s.is_empty() {
                vec![]
            } else {
                vec![s.to_string()]
            }
        };
        PartitionBound::Range {
            lower: side(lo),
            upper: side(hi),
        }
    }

    #[test]
    fn ranges_that_share_a_day_collide_and_adjacent_ones_do_not() {
        let t = [DataType::Date32];
        let px = range("2023-06-01", "2024-06-01");
        assert!(covers_common_value(
            &range("2024-01-01", "2025-01-01"),
            &px,
            &t
        ));
        assert!(!covers_common_value(
            &range("2024-06-01", "2025-01-01"),
            &px,
            &t
        ));
        assert!(!covers_common_value(
            &range("2022-01-01", "2023-06-01"),
            &px,
            &t
        ));
        assert!(covers_common_value(&range("", "2023-06-02"), &px, &t));
        assert!(covers_common_value(&range("2024-05-31", ""), &px, &t));
        assert!(!covers_common_value(&range("2024-06-01", ""), &px, &t));
        let list = |v: &[&str]| PartitionBound::List {
            values: v.iter().map(|x| vec![Some(x.to_string())]).collect(),
        };
        assert!(covers_common_value(&list(&["a", "b"]), &list(&["b"]), &t));
        assert!(!covers_common_value(&list(&["a"]), &list(&["b"]), &t));
    }
}
