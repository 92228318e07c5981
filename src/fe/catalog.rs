//! What planning reads from a StarRocks FE, each through a statement StarRocks 3.x documents:
//! `SHOW DATABASES`, `SHOW FULL TABLES FROM db`, `information_schema.materialized_views`,
//! `information_schema.partitions_meta` (3.3+: partition ids, VISIBLE_VERSION, DATA_SIZE,
//! IS_TEMP), `SHOW FULL FUNCTIONS FROM db`, `SHOW CATALOGS`, `SHOW REPOSITORIES`,
//! `SHOW SNAPSHOT ON repo`.

use std::collections::BTreeMap;

use super::{Fe, FeError, Result, literal, parse_size, quote};

/// Databases StarRocks keeps for itself; never backed up.
pub const SYSTEM_DATABASES: &[&str] = &["information_schema", "_statistics_", "sys"];

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Table,
    View,
    MaterializedView,
}

impl ObjectKind {
    /// The word an ON (...) list uses for it.
    pub fn keyword(self) -> &'static str {
        match self {
            ObjectKind::Table => "TABLE",
            ObjectKind::View => "VIEW",
            ObjectKind::MaterializedView => "MATERIALIZED VIEW",
        }
    }
}

/// One partition as `information_schema.partitions_meta` shows it. StarRocks lists a
/// partition once per physical sub-partition (random-bucketed tables grow several), each with
/// its own id and version: they are folded into one partition here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// The partition's identity: its PARTITION_ID, or with several physical sub-partitions a
    /// hash of every (id, version) pair. A TRUNCATE, a swapped-in copy or a re-created table
    /// changes it even where versions repeat.
    pub id: i64,
    /// The highest VisibleVersion of its physical sub-partitions.
    pub version: i64,
    pub bytes: u64,
    pub temp: bool,
    /// Every (PARTITION_ID, VISIBLE_VERSION) row of it, sorted.
    pub physical: Vec<(i64, i64)>,
}

impl Partition {
    fn fold(&mut self) {
        self.physical.sort();
        self.physical.dedup();
        self.version = self.physical.iter().map(|p| p.1).max().unwrap_or(0);
        self.id = match self.physical.as_slice() {
            [(id, _)] => *id,
            many => {
                use sha2::Digest;
                let h = sha2::Sha256::digest(format!("{many:?}").as_bytes());
                i64::from_be_bytes(h[..8].try_into().expect("8 bytes")) & i64::MAX
            }
        };
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub name: String,
    pub kind: ObjectKind,
    /// Tables and MVs: their partitions by name (temporary ones included, marked).
    pub partitions: Vec<Partition>,
    /// Tables: a hash of SHOW CREATE TABLE.
    pub schema: String,
    /// `information_schema.tables_config.TABLE_ID` (a SWAP exchanges names, ids stay with data).
    pub table_id: i64,
}

/// One database as planning needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Database {
    pub name: String,
    pub objects: BTreeMap<String, Object>,
    /// Function names (overloads once).
    pub functions: Vec<String>,
}

impl Database {
    pub fn object(&self, name: &str) -> Option<&Object> {
        self.objects.get(name)
    }
}

pub async fn databases(fe: &mut Fe) -> Result<Vec<String>> {
    let sql = "SHOW DATABASES";
    let rows = fe.query(sql).await?;
    let mut out = Vec::new();
    for i in 0..rows.len() {
        if let Some(db) = rows.need(i, "Database", sql)? {
            out.push(db.to_string());
        }
    }
    Ok(out)
}

/// Reads one database: its tables, views and MVs, every partition's version and size, its
/// functions. `None` when it does not exist.
pub async fn database(fe: &mut Fe, name: &str) -> Result<Option<Database>> {
    if !databases(fe).await?.iter().any(|d| d == name) {
        return Ok(None);
    }
    let mut db = Database {
        name: name.to_string(),
        ..Database::default()
    };
    let sql = format!("SHOW FULL TABLES FROM {}", quote(name));
    let rows = fe.query(&sql).await?;
    let name_column = rows
        .columns
        .iter()
        .find(|c| c.to_ascii_lowercase().starts_with("tables_in_"))
        .cloned()
        .ok_or_else(|| FeError::Answer {
            statement: sql.clone(),
            message: "it has no Tables_in_<db> column".into(),
        })?;
    for i in 0..rows.len() {
        let Some(t) = rows.get(i, &name_column) else {
            continue;
        };
        let kind = match rows.need(i, "Table_type", &sql)? {
            Some("VIEW") => ObjectKind::View,
            _ => ObjectKind::Table,
        };
        db.objects.insert(
            t.to_string(),
            Object {
                name: t.to_string(),
                kind,
                partitions: Vec::new(),
                schema: String::new(),
                table_id: 0,
            },
        );
    }
    // MVs show as VIEW in SHOW FULL TABLES; information_schema tells them apart.
    let sql = format!(
        "SELECT TABLE_NAME FROM information_schema.materialized_views WHERE TABLE_SCHEMA = {}",
        literal(name)
    );
    let rows = fe.query(&sql).await?;
    for i in 0..rows.len() {
        if let Some(mv) = rows.need(i, "TABLE_NAME", &sql)?
            && let Some(o) = db.objects.get_mut(mv)
        {
            o.kind = ObjectKind::MaterializedView;
        }
    }
    for (table, partitions) in partitions(fe, name, None).await? {
        if let Some(o) = db.objects.get_mut(&table) {
            o.partitions = partitions;
        }
    }
    // Each table's definition, hashed: a schema change does not move partition versions, and
    // an incremental backup must not reuse partitions written under another schema.
    let tables: Vec<String> = db
        .objects
        .values()
        .filter(|o| o.kind == ObjectKind::Table)
        .map(|o| o.name.clone())
        .collect();
    for t in tables {
        let sql = format!("SHOW CREATE TABLE {}.{}", quote(name), quote(&t));
        let rows = fe.query(&sql).await?;
        let text = rows
            .rows
            .first()
            .and_then(|r| r.get(1).cloned().flatten())
            .unwrap_or_default();
        use sha2::Digest;
        let h = sha2::Sha256::digest(text.as_bytes());
        if let Some(o) = db.objects.get_mut(&t) {
            o.schema = hex::encode(&h[..16]);
        }
    }
    for (t, id) in table_ids(fe, name).await? {
        if let Some(o) = db.objects.get_mut(&t) {
            o.table_id = id;
        }
    }
    let sql = format!("SHOW FULL FUNCTIONS FROM {}", quote(name));
    let rows = fe.query(&sql).await?;
    let column = if rows.column("Signature").is_some() {
        "Signature"
    } else {
        "Function Name"
    };
    for i in 0..rows.len() {
        if let Some(sig) = rows.need(i, column, &sql)? {
            let f = sig.split('(').next().unwrap_or(sig).trim().to_string();
            if !db.functions.contains(&f) {
                db.functions.push(f);
            }
        }
    }
    db.functions.sort();
    Ok(Some(db))
}

/// External catalogs (every catalog but the internal one).
pub async fn external_catalogs(fe: &mut Fe) -> Result<Vec<String>> {
    let sql = "SHOW CATALOGS";
    let rows = fe.query(sql).await?;
    let mut out = Vec::new();
    for i in 0..rows.len() {
        let internal = rows
            .need(i, "Type", sql)?
            .is_some_and(|t| t.eq_ignore_ascii_case("internal"));
        if let Some(c) = rows.need(i, "Catalog", sql)?
            && !internal
        {
            out.push(c.to_string());
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    pub location: String,
    pub read_only: bool,
}

pub async fn repository(fe: &mut Fe, name: &str) -> Result<Option<Repository>> {
    let sql = "SHOW REPOSITORIES";
    let rows = fe.query(sql).await?;
    for i in 0..rows.len() {
        if rows.need(i, "RepoName", sql)? == Some(name) {
            return Ok(Some(Repository {
                name: name.to_string(),
                location: rows.need(i, "Location", sql)?.unwrap_or("").to_string(),
                read_only: rows
                    .need(i, "IsReadOnly", sql)?
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            }));
        }
    }
    Ok(None)
}

/// A label's finished timestamps (`SHOW SNAPSHOT ON repo WHERE SNAPSHOT = label`); empty when
/// StarRocks has no finished snapshot of that label (`ERROR: no snapshot`).
pub async fn snapshot_timestamps(fe: &mut Fe, repo: &str, label: &str) -> Result<Vec<String>> {
    let sql = format!(
        "SHOW SNAPSHOT ON {} WHERE SNAPSHOT = {}",
        quote(repo),
        literal(label)
    );
    let mut all = snapshots(fe, &sql).await?;
    Ok(all.remove(label).unwrap_or_default())
}

/// SHOW SNAPSHOT's rows by label, each with its finished timestamps sorted: several finished
/// backups of one label are listed one per line in `Timestamp`; an entry that is not a
/// timestamp reads `Invalid: <file>`; a label without a finished one has `Status` ERROR.
async fn snapshots(fe: &mut Fe, sql: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let rows = fe.query(sql).await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in 0..rows.len() {
        let Some(label) = rows.need(i, "Snapshot", sql)? else {
            continue;
        };
        let entry = out.entry(label.to_string()).or_default();
        let ok = rows
            .need(i, "Status", sql)?
            .is_some_and(|s| s.eq_ignore_ascii_case("OK"));
        if let (true, Some(ts)) = (ok, rows.need(i, "Timestamp", sql)?) {
            entry.extend(
                ts.lines()
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && !t.starts_with("Invalid"))
                    .map(str::to_string),
            );
        }
    }
    for ts in out.values_mut() {
        ts.sort();
    }
    Ok(out)
}

/// Every label of a repository (`SHOW SNAPSHOT ON repo`) with its finished timestamps; a label
/// StarRocks lists without one (a failed or running backup) is still taken.
pub async fn snapshot_labels(fe: &mut Fe, repo: &str) -> Result<BTreeMap<String, Vec<String>>> {
    snapshots(fe, &format!("SHOW SNAPSHOT ON {}", quote(repo))).await
}

/// Every table's id in a database (`information_schema.tables_config`): a SWAP exchanges the
/// names, the ids stay with the data, so the ids tell whether a swap happened.
pub async fn table_ids(fe: &mut Fe, db: &str) -> Result<BTreeMap<String, i64>> {
    let sql = format!(
        "SELECT TABLE_NAME, TABLE_ID FROM information_schema.tables_config WHERE TABLE_SCHEMA = {}",
        literal(db)
    );
    let rows = fe.query(&sql).await?;
    let mut out = BTreeMap::new();
    for i in 0..rows.len() {
        if let (Some(t), Some(id)) = (
            rows.need(i, "TABLE_NAME", &sql)?,
            rows.need(i, "TABLE_ID", &sql)?,
        ) {
            let id = id.trim().parse::<i64>().map_err(|_| FeError::Answer {
                statement: sql.clone(),
                message: format!("TABLE_ID of {t} is not a number"),
            })?;
            out.insert(t.to_string(), id);
        }
    }
    Ok(out)
}

/// The partitions of a database's tables (or of one table), folded over their physical
/// sub-partitions, by table.
pub async fn partitions(
    fe: &mut Fe,
    db: &str,
    table: Option<&str>,
) -> Result<BTreeMap<String, Vec<Partition>>> {
    let one = table
        .map(|t| format!(" AND TABLE_NAME = {}", literal(t)))
        .unwrap_or_default();
    let sql = format!(
        "SELECT TABLE_NAME, PARTITION_NAME, PARTITION_ID, VISIBLE_VERSION, DATA_SIZE, IS_TEMP \
         FROM information_schema.partitions_meta WHERE DB_NAME = {}{one} ORDER BY TABLE_NAME, PARTITION_NAME",
        literal(db)
    );
    let rows = fe.query(&sql).await?;
    let mut out: BTreeMap<String, Vec<Partition>> = BTreeMap::new();
    for i in 0..rows.len() {
        let (Some(table), Some(partition)) = (
            rows.need(i, "TABLE_NAME", &sql)?,
            rows.need(i, "PARTITION_NAME", &sql)?,
        ) else {
            continue;
        };
        let number = |column: &str| -> Result<i64> {
            rows.need(i, column, &sql)?
                .unwrap_or("0")
                .trim()
                .parse::<i64>()
                .map_err(|_| FeError::Answer {
                    statement: sql.clone(),
                    message: format!("{column} of {table}.{partition} is not a number"),
                })
        };
        let bytes_text = rows.need(i, "DATA_SIZE", &sql)?.unwrap_or("0");
        let bytes = parse_size(bytes_text).ok_or_else(|| FeError::Answer {
            statement: sql.clone(),
            message: format!("DATA_SIZE `{bytes_text}` of {table}.{partition} is not a size"),
        })?;
        let temp = matches!(
            rows.need(i, "IS_TEMP", &sql)?
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("1" | "true")
        );
        let (id, version) = (number("PARTITION_ID")?, number("VISIBLE_VERSION")?);
        let list = out.entry(table.to_string()).or_default();
        match list
            .iter_mut()
            .find(|p| p.name == partition && p.temp == temp)
        {
            Some(p) => {
                p.physical.push((id, version));
                p.bytes = p.bytes.saturating_add(bytes);
            }
            None => list.push(Partition {
                name: partition.to_string(),
                id,
                version,
                bytes,
                temp,
                physical: vec![(id, version)],
            }),
        }
    }
    for list in out.values_mut() {
        for p in list.iter_mut() {
            p.fold();
        }
    }
    Ok(out)
}
