//! SHOW CREATE TABLE / VIEW / MATERIALIZED VIEW: the statement that would make the object, rebuilt
//! from the catalog (credentials in properties masked).

use super::show::{mask, range_text};
use crate::catalog::{self, ObjectDef, PartitionBound, Partitioning};
use crate::engine::Result;
use crate::sql;

/// SHOW CREATE TABLE / VIEW / MATERIALIZED VIEW text, rebuilt from the catalog.
pub(super) fn create_statement(
    db: &str,
    obj: &catalog::ObjectRow,
    partitions: &[catalog::PartitionRow],
) -> Result<String> {
    let name = format!("{}.{}", sql::QuotedIdent(db), sql::QuotedIdent(&obj.name));
    let tuple = |values: &[String]| {
        format!(
            "({})",
            values
                .iter()
                .map(|v| sql::QuotedString(v).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let partition_list = || -> String {
        let defs: Vec<String> = partitions
            .iter()
            .filter_map(|p| match &p.bound {
                PartitionBound::Range { lower, upper } => Some(format!(
                    "  PARTITION {} VALUES {}",
                    sql::QuotedIdent(&p.name),
                    range_text(lower, upper, tuple)
                )),
                PartitionBound::List { values } => Some(format!(
                    "  PARTITION {} VALUES IN ({})",
                    sql::QuotedIdent(&p.name),
                    values
                        .iter()
                        .map(|v| {
                            let parts: Vec<String> = v
                                .iter()
                                .map(|x| {
                                    x.as_deref()
                                        .map(|t| sql::QuotedString(t).to_string())
                                        .unwrap_or_else(|| "NULL".into())
                                })
                                .collect();
                            if parts.len() == 1 {
                                parts[0].clone()
                            } else {
                                format!("({})", parts.join(", "))
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                _ => None,
            })
            .collect();
        format!(
            " (
{}
)",
            defs.join(
                ",
"
            )
        )
    };
    Ok(match &obj.def {
        ObjectDef::View {
            sql,
            columns,
            comment,
            ..
        } => {
            let mut head = format!("CREATE VIEW {name}");
            if !columns.is_empty() {
                head.push_str(&format!(
                    " ({})",
                    columns
                        .iter()
                        .map(|c| sql::QuotedIdent(c).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some(c) = comment {
                head.push_str(&format!(" COMMENT {}", sql::QuotedString(c)));
            }
            format!("{head} AS {sql}")
        }
        ObjectDef::MaterializedView { sql, refresh, .. } => {
            format!("CREATE MATERIALIZED VIEW {name} REFRESH {refresh} AS {sql}")
        }
        ObjectDef::Table { schema, .. } => {
            let mut out = format!("CREATE TABLE {name} (\n");
            for (i, c) in schema.columns.iter().enumerate() {
                out.push_str(&format!(
                    "  {} {}",
                    sql::QuotedIdent(&c.name),
                    c.sql_type.sql_name()
                ));
                if let Some(a) = c.aggregate {
                    out.push_str(&format!(" {}", a.sql_name()));
                }
                out.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
                if let Some(d) = &c.default {
                    out.push_str(&format!(" DEFAULT {}", sql::QuotedString(d)));
                }
                if let Some(cm) = &c.comment {
                    out.push_str(&format!(" COMMENT {}", sql::QuotedString(cm)));
                }
                out.push_str(if i + 1 < schema.columns.len() {
                    ",\n"
                } else {
                    "\n"
                });
            }
            let keys: Vec<String> = schema
                .key_columns()
                .map(|c| sql::QuotedIdent(&c.name).to_string())
                .collect();
            out.push_str(&format!(
                ") {} KEY({})",
                schema.keys.keyword(),
                keys.join(", ")
            ));
            if let Some(c) = &schema.comment {
                out.push_str(&format!("\nCOMMENT {}", sql::QuotedString(c)));
            }
            match &schema.partitioning {
                Partitioning::Unpartitioned => {}
                Partitioning::Range { columns } => out.push_str(&format!(
                    "\nPARTITION BY RANGE({}){}",
                    columns.join(", "),
                    partition_list()
                )),
                Partitioning::List { columns } => out.push_str(&format!(
                    "\nPARTITION BY LIST({}){}",
                    columns.join(", "),
                    partition_list()
                )),
                Partitioning::DateTrunc { unit, column } => {
                    out.push_str(&format!("\nPARTITION BY date_trunc('{unit}', {column})"))
                }
                Partitioning::Columns { columns } => {
                    out.push_str(&format!("\nPARTITION BY {}", columns.join(", ")))
                }
            }
            match &schema.distribution {
                catalog::Distribution::Hash { columns, buckets } => out.push_str(&format!(
                    "\nDISTRIBUTED BY HASH({}) BUCKETS {buckets}",
                    columns.join(", ")
                )),
                catalog::Distribution::Random { buckets } => {
                    out.push_str(&format!("\nDISTRIBUTED BY RANDOM BUCKETS {buckets}"))
                }
            }
            if !schema.properties.is_empty() {
                let props = schema
                    .properties
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{} = {}",
                            sql::QuotedString(k),
                            sql::QuotedString(&mask(k, v))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",\n  ");
                out.push_str(&format!("\nPROPERTIES (\n  {props}\n)"));
            }
            out
        }
    })
}
