//! SHOW CREATE TABLE / VIEW / MATERIALIZED VIEW: the statement that would make the object, rebuilt
//! from the catalog (credentials in properties masked).

use super::show::mask;
use crate::catalog::{self, ObjectDef, PartitionBound, Partitioning};
use crate::engine::Result;
use crate::engine::information_schema::range_text;
use crate::sql;

/// A name in back quotes (a back quote inside doubled).
fn bq(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn bq_list(names: &[String]) -> String {
    names.iter().map(|n| bq(n)).collect::<Vec<_>>().join(", ")
}

/// A column type as StarRocks' and MySQL's SHOW CREATE TABLE write it: lower case,
/// `decimal(10,2)` without a space (MySQL tools look types up by that spelling).
fn type_text(t: &catalog::SqlType) -> String {
    crate::engine::information_schema::column_type_text(&Some(t.clone()))
}

/// SHOW CREATE TABLE / VIEW / MATERIALIZED VIEW text, rebuilt from the catalog.
pub(super) fn create_statement(
    db: &str,
    obj: &catalog::ObjectRow,
    partitions: &[catalog::PartitionRow],
) -> Result<String> {
    // As StarRocks prints it: the object's own name, every name back-quoted (MySQL tools such
    // as SQLAlchemy's reflection read columns by their back quotes).
    let _ = db;
    let name = bq(&obj.name);
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
                    bq(&p.name),
                    range_text(lower, upper, tuple)
                )),
                PartitionBound::List { values } => Some(format!(
                    "  PARTITION {} VALUES IN ({})",
                    bq(&p.name),
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
                    columns.iter().map(|c| bq(c)).collect::<Vec<_>>().join(", ")
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
                out.push_str(&format!("  {} {}", bq(&c.name), type_text(&c.sql_type)));
                if let Some(a) = c.aggregate {
                    out.push_str(&format!(" {}", a.sql_name()));
                }
                out.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
                match &c.default {
                    Some(d)
                        if d == crate::engine::types::DEFAULT_NOW
                            && c.sql_type == catalog::SqlType::DateTime =>
                    {
                        out.push_str(" DEFAULT CURRENT_TIMESTAMP");
                    }
                    Some(d) => out.push_str(&format!(" DEFAULT {}", sql::QuotedString(d))),
                    None => {}
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
            let keys: Vec<String> = schema.key_columns().map(|c| bq(&c.name)).collect();
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
                    bq_list(columns),
                    partition_list()
                )),
                Partitioning::List { columns } => out.push_str(&format!(
                    "\nPARTITION BY LIST({}){}",
                    bq_list(columns),
                    partition_list()
                )),
                Partitioning::DateTrunc { unit, column } => out.push_str(&format!(
                    "\nPARTITION BY date_trunc('{unit}', {})",
                    bq(column)
                )),
                Partitioning::Columns { columns } => {
                    out.push_str(&format!("\nPARTITION BY {}", bq_list(columns)))
                }
            }
            match &schema.distribution {
                catalog::Distribution::Hash { columns, buckets } => out.push_str(&format!(
                    "\nDISTRIBUTED BY HASH({}) BUCKETS {buckets}",
                    bq_list(columns)
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
