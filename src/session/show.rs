//! SHOW statements over the catalog (databases, tables, partitions, MVs, functions, catalogs),
//! with StarRocks' columns.

use crate::catalog::{self, ObjectDef, Partitioning};
use crate::engine::information_schema::bound_text;
use crate::engine::{Engine, EngineError, Result, information_schema};
use crate::output::human_bytes;
use crate::results::{ColumnKind, ResultSet};
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

/// Runs a SHOW over the catalog, with its LIKE or WHERE — over the rows `visible` keeps (the
/// user's privileges: a condition never sees a row the user may not).
pub(super) async fn run(
    engine: &mut Engine,
    what: &Show,
    current: Option<&str>,
    visible: &dyn Fn(&mut Engine, ResultSet) -> crate::error::Result<ResultSet>,
) -> crate::error::Result<ResultSet> {
    let (rs, filter) = match what {
        Show::Columns {
            table,
            full,
            filter,
        } => (columns(engine, table, *full, current).await?, filter),
        Show::TableStatus { database, filter } => {
            (table_status(engine, database, current)?, filter)
        }
        Show::Databases { filter } | Show::Tables { filter, .. } => {
            (show(engine, what, current)?, filter)
        }
        other => (show(engine, other, current)?, &None),
    };
    let rs = visible(engine, rs)?;
    match filter {
        None => Ok(rs),
        Some(sql::ShowFilter::Like(pattern)) => {
            let pattern = pattern.value.to_lowercase();
            let mut rs = rs;
            rs.rows.retain(|r| {
                r.first()
                    .and_then(|v| v.as_deref())
                    .is_some_and(|v| super::filter::like(&v.to_lowercase(), &pattern))
            });
            Ok(rs)
        }
        Some(sql::ShowFilter::Where(condition)) => {
            Ok(super::filter::filter_rows(rs, &condition.text).await?)
        }
    }
}

/// The database `FROM db` names, or the current one.
fn database_or_current(
    engine: &mut Engine,
    db: &Option<sql::Ident>,
    current: Option<&str>,
) -> Result<catalog::DatabaseRow> {
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
}

/// `SHOW [FULL] COLUMNS FROM t`, `DESC t`: StarRocks' columns (FULL adds Collation, Privileges
/// and Comment, as MySQL).
async fn columns(
    engine: &mut Engine,
    table: &sql::QualifiedName,
    full: bool,
    current: Option<&str>,
) -> Result<ResultSet> {
    let system = match &table.database {
        Some(d) => d.value.eq_ignore_ascii_case(information_schema::DATABASE),
        None => current.is_some_and(|c| c.eq_ignore_ascii_case(information_schema::DATABASE)),
    };
    let columns = if system {
        information_schema::describe(&table.name.value).ok_or_else(|| {
            EngineError::at(
                sql::Problem::new(
                    crate::code::Code::EngineUnknownObject,
                    table.name.span,
                    format!("Unknown table 'information_schema.{}'", table.name.value),
                )
                .help(format!(
                    "information_schema has {}",
                    information_schema::table_names()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            )
        })?
    } else {
        let (db, obj) = engine.object(table, current)?;
        information_schema::columns_of(engine, &db.name, &obj).await
    };
    let mut rs = if full {
        ResultSet::new(&[
            "Field",
            "Type",
            "Collation",
            "Null",
            "Key",
            "Default",
            "Extra",
            "Privileges",
            "Comment",
        ])
    } else {
        ResultSet::new(&["Field", "Type", "Null", "Key", "Default", "Extra"])
    };
    for c in columns {
        let text = matches!(
            c.sql_type,
            Some(
                catalog::SqlType::Char { .. }
                    | catalog::SqlType::Varchar { .. }
                    | catalog::SqlType::String
            )
        );
        let mut row = vec![
            Some(c.name.clone()),
            Some(information_schema::column_type_text(&c.sql_type)),
        ];
        if full {
            row.push(text.then(|| "utf8_general_ci".to_string()));
        }
        row.extend([
            Some(if c.nullable { "YES" } else { "NO" }.to_string()),
            Some(c.key.to_string()),
            c.default.clone(),
            Some(c.extra.clone()),
        ]);
        if full {
            row.push(Some("select,insert,update,references".into()));
            row.push(Some(c.comment.clone().unwrap_or_default()));
        }
        rs.push(row);
    }
    Ok(rs)
}

/// `SHOW TABLE STATUS [FROM db]`: MySQL's 18 columns, as StarRocks fills them.
fn table_status(
    engine: &mut Engine,
    database: &Option<sql::Ident>,
    current: Option<&str>,
) -> Result<ResultSet> {
    let db = database_or_current(engine, database, current)?;
    let mut rs = ResultSet::new(&[
        "Name",
        "Engine",
        "Version",
        "Row_format",
        "Rows",
        "Avg_row_length",
        "Data_length",
        "Max_data_length",
        "Index_length",
        "Data_free",
        "Auto_increment",
        "Create_time",
        "Update_time",
        "Check_time",
        "Collation",
        "Checksum",
        "Create_options",
        "Comment",
    ]);
    for o in engine.catalog().view().objects(db.id)? {
        let (rows, bytes) = match o.def {
            ObjectDef::View { .. } => (None, None),
            _ => {
                let rowsets = engine.catalog().view().object_rowsets(o.id)?;
                (
                    Some(rowsets.iter().map(|r| r.rows).sum::<i64>()),
                    Some(rowsets.iter().map(|r| r.bytes).sum::<i64>()),
                )
            }
        };
        let comment = match &o.def {
            ObjectDef::View { comment, .. } => comment.clone(),
            other => other.schema().and_then(|s| s.comment.clone()),
        };
        let view = matches!(o.def, ObjectDef::View { .. });
        rs.push(vec![
            Some(o.name.clone()),
            (!view).then(|| "StarRocks".to_string()),
            None,
            None,
            rows.map(|r| r.to_string()),
            match (rows, bytes) {
                (Some(r), Some(b)) if r > 0 => Some((b / r).to_string()),
                (Some(_), Some(_)) => Some("0".into()),
                _ => None,
            },
            bytes.map(|b| b.to_string()),
            None,
            None,
            None,
            None,
            Some(o.created_at.clone()),
            None,
            None,
            Some("utf8_general_ci".into()),
            None,
            Some(String::new()),
            Some(comment.unwrap_or_default()),
        ]);
    }
    rs.kinds = vec![
        ColumnKind::Text,
        ColumnKind::Text,
        ColumnKind::Integer,
        ColumnKind::Text,
        ColumnKind::Integer,
        ColumnKind::Integer,
        ColumnKind::Integer,
        ColumnKind::Integer,
        ColumnKind::Integer,
        ColumnKind::Integer,
        ColumnKind::Integer,
        ColumnKind::DateTime,
        ColumnKind::DateTime,
        ColumnKind::DateTime,
    ];
    Ok(rs)
}

fn show(engine: &mut Engine, what: &Show, current: Option<&str>) -> Result<ResultSet> {
    Ok(match what {
        Show::Databases { .. } => {
            let mut rs = ResultSet::new(&["Database"]);
            let names = information_schema::database_names(engine)?;
            for name in names {
                rs.push(vec![Some(name)]);
            }
            rs
        }
        Show::Tables { database, full, .. } => {
            let is_system = match database {
                Some(d) => d.value.eq_ignore_ascii_case(information_schema::DATABASE),
                None => {
                    current.is_some_and(|c| c.eq_ignore_ascii_case(information_schema::DATABASE))
                }
            };
            let (name, tables): (String, Vec<(String, &str)>) = if is_system {
                (
                    information_schema::DATABASE.into(),
                    information_schema::table_names()
                        .map(|t| (t.to_string(), "SYSTEM VIEW"))
                        .collect(),
                )
            } else {
                let db = database_or_current(engine, database, current)?;
                let objects = engine.catalog().view().objects(db.id)?;
                (
                    db.name,
                    objects
                        .into_iter()
                        .map(|o| {
                            let kind = information_schema::table_type(&o.def);
                            (o.name, kind)
                        })
                        .collect(),
                )
            };
            let title = format!("Tables_in_{name}");
            let mut rs = if *full {
                ResultSet::new(&[&title, "Table_type"])
            } else {
                ResultSet::new(&[&title])
            };
            for (t, kind) in tables {
                let mut row = vec![Some(t)];
                if *full {
                    row.push(Some(kind.to_string()));
                }
                rs.push(row);
            }
            rs
        }
        Show::Proc { path } => match path.value.trim_end_matches('/') {
            "/dbs" => {
                let mut rs = ResultSet::new(&[
                    "DbId",
                    "DbName",
                    "TableNum",
                    "Quota",
                    "LastConsistencyCheckTime",
                    "ReplicaQuota",
                ]);
                for db in engine.catalog().view().databases()? {
                    let tables = engine.catalog().view().objects(db.id)?.len();
                    rs.push(vec![
                        Some(db.id.to_string()),
                        Some(db.name),
                        Some(tables.to_string()),
                        Some("8388608.000 TB".into()),
                        None,
                        Some("1024000".into()),
                    ]);
                }
                rs.kinds = vec![ColumnKind::Integer, ColumnKind::Text, ColumnKind::Integer];
                rs
            }
            other => {
                return Err(EngineError::at(
                    sql::Problem::new(
                        crate::code::Code::ShowUnsupported,
                        path.span,
                        format!("SHOW PROC '{other}' is not supported"),
                    )
                    .help("'/dbs' is, and over the server '/frontends' and '/backends'; information_schema has the rest"),
                ));
            }
        },
        Show::TableStatus { .. } | Show::Columns { .. } => {
            return Err(EngineError::invalid(
                "internal: SHOW run out of order",
                None,
            ));
        }
        Show::Partitions { table } => {
            let (_, obj) = engine.object(table, current)?;
            let mut rs = ResultSet::new(&[
                "PartitionId",
                "PartitionName",
                "VisibleVersion",
                "VisibleVersionTime",
                "VisibleVersionHash",
                "State",
                "PartitionKey",
                "Range",
                "DistributionKey",
                "Buckets",
                "ReplicationNum",
                "StorageMedium",
                "CooldownTime",
                "LastConsistencyCheckTime",
                "DataSize",
                "IsInMemory",
                "RowCount",
            ]);
            rs.kinds = vec![
                ColumnKind::Integer,
                ColumnKind::Text,
                ColumnKind::Integer,
                ColumnKind::DateTime,
                ColumnKind::Integer,
            ];
            for p in information_schema::partitions_of(engine, &obj)? {
                let (key, dist) = (&p.key, &p.distribution);
                let replication = p.replication.to_string();
                let (rows, bytes) = (p.rows, p.bytes);
                let p_row = &p.row;
                rs.push(vec![
                    Some(p_row.id.to_string()),
                    Some(p_row.name.clone()),
                    Some(p_row.visible_version.to_string()),
                    Some(p_row.visible_time.clone()),
                    Some("0".into()),
                    Some("NORMAL".into()),
                    Some(key.clone()),
                    Some(bound_text(&p_row.bound)),
                    Some(dist.clone()),
                    Some(p.buckets.to_string()),
                    Some(replication.clone()),
                    Some("HDD".into()),
                    Some("9999-12-31 23:59:59".into()),
                    None,
                    Some(human_bytes(bytes as u64)),
                    Some("false".into()),
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
            let db = database_or_current(engine, database, current)?;
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
                Some(database_or_current(engine, database, current)?.id)
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
