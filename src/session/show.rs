//! SHOW statements over the catalog (databases, tables, partitions, MVs, functions, catalogs),
//! with StarRocks' columns.

use crate::catalog::{self, ObjectDef, PartitionBound, Partitioning};
use crate::engine::{Engine, EngineError, Result};
use crate::output::human_bytes;
use crate::results::ResultSet;
use crate::sql::{self, Show};

use super::show_create::create_statement;

pub(super) fn mask(key: &str, value: &str) -> String {
    if sql::is_secret_key(key) {
        sql::MASK.to_string()
    } else {
        sql::mask_userinfo(value)
    }
}

/// `"k"="v", ...` with credentials masked.
fn masked_properties(properties: &std::collections::BTreeMap<String, String>) -> String {
    properties
        .iter()
        .map(|(k, v)| format!("\"{k}\"=\"{}\"", mask(k, v)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn show(engine: &mut Engine, what: &Show, current: Option<&str>) -> Result<ResultSet> {
    let conn_dbs = |engine: &mut Engine, db: &Option<sql::Ident>| -> Result<catalog::DatabaseRow> {
        match db {
            Some(d) => engine.database(d),
            None => match current {
                Some(c) => engine.database(&sql::Ident::new(c)),
                None => Err(EngineError::invalid(
                    "no database selected",
                    Some("name one (FROM db) or run USE db"),
                )),
            },
        }
    };
    Ok(match what {
        Show::Databases => {
            let mut rs = ResultSet::new(&["Database"]);
            for d in engine.catalog().view().databases()? {
                rs.push(vec![Some(d.name)]);
            }
            rs
        }
        Show::Tables { database } => {
            let db = conn_dbs(engine, database)?;
            let mut rs = ResultSet::new(&[&format!("Tables_in_{}", db.name)]);
            for o in engine.catalog().view().objects(db.id)? {
                rs.push(vec![Some(o.name)]);
            }
            rs
        }
        Show::Partitions { table } => {
            let (_, obj) = engine.object(table, current)?;
            let mut rs = ResultSet::new(&[
                "PartitionId",
                "PartitionName",
                "VisibleVersion",
                "State",
                "PartitionKey",
                "Range",
                "DistributionKey",
                "Buckets",
                "ReplicationNum",
                "DataSize",
                "RowCount",
            ]);
            let Some(schema) = obj.def.schema() else {
                return Ok(rs);
            };
            let key = schema.partitioning.columns().join(", ");
            let dist = match &schema.distribution {
                catalog::Distribution::Hash { columns, .. } => columns.join(", "),
                catalog::Distribution::Random { .. } => "RANDOM".into(),
            };
            let replication = schema
                .properties
                .get("replication_num")
                .cloned()
                .unwrap_or_else(|| "1".into());
            let parts = engine.catalog().view().partitions(obj.id)?;
            for p in parts {
                let (mut rows, mut bytes) = (0i64, 0i64);
                for t in engine.catalog().view().tablets(p.id)? {
                    for r in engine.catalog().view().live_rowsets(t.id)? {
                        rows += r.rows;
                        bytes += r.bytes;
                    }
                }
                rs.push(vec![
                    Some(p.id.to_string()),
                    Some(p.name.clone()),
                    Some(p.visible_version.to_string()),
                    Some("NORMAL".into()),
                    Some(key.clone()),
                    Some(bound_text(&p.bound)),
                    Some(dist.clone()),
                    Some(schema.distribution.buckets().to_string()),
                    Some(replication.clone()),
                    Some(human_bytes(bytes as u64)),
                    Some(rows.to_string()),
                ]);
            }
            rs
        }
        Show::CreateTable { table } => {
            let (db, obj) = engine.object(table, current)?;
            let partitions = engine.catalog().view().partitions(obj.id)?;
            let text = create_statement(&db.name, &obj, &partitions)?;
            let mut rs = ResultSet::new(&["Table", "Create Table"]);
            rs.push(vec![Some(obj.name), Some(text)]);
            rs
        }
        Show::MaterializedViews { database } => {
            let db = conn_dbs(engine, database)?;
            let mut rs = ResultSet::new(&[
                "id",
                "database_name",
                "name",
                "refresh_type",
                "is_active",
                "inactive_reason",
                "partition_type",
                "text",
                "rows",
            ]);
            for o in engine.catalog().view().objects(db.id)? {
                match &o.def {
                    ObjectDef::MaterializedView {
                        sql,
                        refresh,
                        schema,
                        ..
                    } => {
                        let rows: i64 = engine
                            .catalog()
                            .view()
                            .object_rowsets(o.id)?
                            .iter()
                            .map(|r| r.rows)
                            .sum();
                        rs.push(vec![
                            Some(o.id.to_string()),
                            Some(db.name.clone()),
                            Some(o.name.clone()),
                            Some(refresh.clone()),
                            Some(o.active.to_string()),
                            o.inactive_reason.clone(),
                            Some(partition_type(&schema.partitioning).into()),
                            Some(sql.clone()),
                            Some(rows.to_string()),
                        ]);
                    }
                    ObjectDef::Table { rollups, .. } => {
                        for r in rollups {
                            rs.push(vec![
                                Some(o.id.to_string()),
                                Some(db.name.clone()),
                                Some(r.name.clone()),
                                Some("ROLLUP".into()),
                                Some("true".into()),
                                None,
                                Some("UNPARTITIONED".into()),
                                Some(r.sql.clone()),
                                None,
                            ]);
                        }
                    }
                    ObjectDef::View { .. } => {}
                }
            }
            rs
        }
        Show::Functions { global, database } => {
            let db_id = if *global {
                None
            } else {
                Some(conn_dbs(engine, database)?.id)
            };
            let mut rs =
                ResultSet::new(&["Signature", "Return Type", "Function Type", "Properties"]);
            for f in engine.catalog().view().functions(db_id)? {
                let props = masked_properties(&f.properties);
                rs.push(vec![
                    Some(f.signature()),
                    Some(f.returns.clone()),
                    Some(f.kind.clone().unwrap_or_else(|| "Scalar".into())),
                    Some(props),
                ]);
            }
            rs
        }
        Show::Catalogs => {
            let mut rs = ResultSet::new(&["Catalog", "Type", "Comment", "Properties"]);
            rs.push(vec![
                Some("default_catalog".into()),
                Some("Internal".into()),
                Some("An internal catalog contains this cluster's self-managed tables.".into()),
                None,
            ]);
            for c in engine.catalog().view().external_catalogs()? {
                let props = masked_properties(&c.properties);
                rs.push(vec![
                    Some(c.name.clone()),
                    c.properties.get("type").cloned(),
                    c.comment.clone(),
                    Some(props),
                ]);
            }
            rs
        }
    })
}

fn partition_type(p: &Partitioning) -> &'static str {
    match p {
        Partitioning::Unpartitioned => "UNPARTITIONED",
        Partitioning::Range { .. } => "RANGE",
        Partitioning::List { .. } => "LIST",
        Partitioning::DateTrunc { .. } | Partitioning::Columns { .. } => "EXPR",
    }
}

/// `[lower, upper)` of a range partition; an empty bound is MINVALUE or MAXVALUE.
pub(super) fn range_text(
    lower: &[String],
    upper: &[String],
    tuple: impl Fn(&[String]) -> String,
) -> String {
    let side = |v: &[String], open: &str| {
        if v.is_empty() {
            open.to_string()
        } else {
            tuple(v)
        }
    };
    format!("[{}, {})", side(lower, "MINVALUE"), side(upper, "MAXVALUE"))
}

fn bound_text(b: &PartitionBound) -> String {
    let tuple = |v: &[String]| format!("({})", v.join(", "));
    match b {
        PartitionBound::Whole => String::new(),
        PartitionBound::Range { lower, upper } => range_text(lower, upper, tuple),
        PartitionBound::List { values } => values
            .iter()
            .map(|v| {
                format!(
                    "({})",
                    v.iter()
                        .map(|x| x.clone().unwrap_or_else(|| "NULL".into()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        PartitionBound::Value { values } => format!(
            "({})",
            values
                .iter()
                .map(|x| x.clone().unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
