//! Views and materialized views: CREATE (the query planned for its schema), REFRESH, ALTER
//! ... ACTIVE | INACTIVE and the checks that an MV's query still fits what it stores.

use super::*;

/// Base tables of a query, as `db.name`, checked to exist.
pub(super) fn base_tables(
    engine: &mut Engine,
    query: &sql::QueryText,
    db: &str,
) -> Result<Vec<String>> {
    let refs = crate::engine::query::referenced_tables(&query.text, Some(db)).map_err(|e| {
        problem_at(
            Code::DdlQuery,
            query.span,
            format!("the query does not parse: {e}"),
        )
    })?;
    let mut out = Vec::new();
    for (rdb, table) in refs {
        let db_row = engine.catalog().view().database(&rdb)?;
        let found = match db_row {
            Some(d) => engine.catalog().view().object(d.id, &table)?.is_some(),
            None => false,
        };
        if !found {
            return Err(EngineError::at(
                Problem::new(
                    Code::DdlUnknownBase,
                    query.span,
                    format!("the query reads {rdb}.{table}, which does not exist"),
                )
                .label("this query"),
            ));
        }
        out.push(format!("{rdb}.{table}"));
    }
    Ok(out)
}

pub async fn create_view(
    engine: &mut Engine,
    stmt: &sql::CreateView,
    current: Option<&str>,
) -> Result<bool> {
    let Some(db) = free_name(engine, &stmt.name, stmt.if_not_exists, "view", current)? else {
        return Ok(false);
    };
    let bases = base_tables(engine, &stmt.query, &db.name)?;
    // Plan it once now, so a broken view is refused here rather than at its first query.
    let schema = plan_schema(engine, &stmt.query, &db.name).await?;
    if !stmt.columns.is_empty() && stmt.columns.len() != schema.fields().len() {
        return Err(problem_at(
            Code::DdlViewColumns,
            stmt.name.span(),
            format!(
                "the view names {} columns but its query returns {}",
                stmt.columns.len(),
                schema.fields().len()
            ),
        ));
    }
    let def = ObjectDef::View {
        sql: stmt.query.text.clone(),
        columns: stmt.columns.iter().map(|c| c.value.clone()).collect(),
        base_tables: bases,
        comment: stmt.comment.as_ref().map(|c| c.value.clone()),
    };
    engine.catalog().try_write(|tx| -> Result<()> {
        let name = &stmt.name.name;
        guard::not_restoring(tx, &db.name, &name.value, Change::Create, name.span)?;
        tx.insert_object(db.id, &name.value, &def, ObjectState::Normal)?;
        Ok(())
    })?;
    Ok(true)
}

/// The result schema of a query, planned against the catalog.
pub(super) async fn plan_schema(
    engine: &mut Engine,
    query: &sql::QueryText,
    db: &str,
) -> Result<datafusion::arrow::datatypes::SchemaRef> {
    let ctx = crate::engine::query::new_context(Some(db));
    crate::engine::query::register_referenced(engine, &ctx, &query.text, Some(db)).await?;
    let df = ctx.sql(&query.text).await.map_err(|e| {
        EngineError::at(
            Problem::new(
                Code::DdlQuery,
                query.span,
                format!(
                    "the query cannot be planned: {}",
                    e.to_string().replace('\n', " ")
                ),
            )
            .label("this query"),
        )
    })?;
    Ok(std::sync::Arc::new(df.schema().as_arrow().clone()))
}

pub async fn create_materialized_view(
    engine: &mut Engine,
    stmt: &sql::CreateMaterializedView,
    current: Option<&str>,
) -> Result<bool> {
    let Some(db) = free_name(
        engine,
        &stmt.name,
        stmt.if_not_exists,
        "materialized view",
        current,
    )?
    else {
        return Ok(false);
    };
    let bases = base_tables(engine, &stmt.query, &db.name)?;
    if !stmt.is_async {
        return create_sync_mv(engine, stmt, &db, &bases).await;
    }
    let schema = plan_schema(engine, &stmt.query, &db.name).await?;
    let mut columns = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let sql_type = sql_type_of(f.data_type()).ok_or_else(|| {
            problem_at(
                Code::DdlMvType,
                stmt.query.span,
                format!(
                    "column {} of the query has type {}, which a table cannot store",
                    f.name(),
                    f.data_type()
                ),
            )
        })?;
        columns.push(Column {
            name: f.name().clone(),
            sql_type,
            nullable: true,
            is_key: i == 0,
            aggregate: None,
            default: None,
            comment: None,
        });
    }
    let partitioning = match &stmt.partitioning {
        None => Partitioning::Unpartitioned,
        Some(sql::PartitionDesc::DateTrunc { unit, column }) => Partitioning::DateTrunc {
            unit: unit.value.to_ascii_lowercase(),
            column: columns[resolve_column(&columns, column, "partition")?]
                .name
                .clone(),
        },
        Some(sql::PartitionDesc::Columns { columns: cols }) => Partitioning::Columns {
            columns: cols
                .iter()
                .map(|c| resolve_column(&columns, c, "partition").map(|i| columns[i].name.clone()))
                .collect::<Result<_>>()?,
        },
        Some(_) => Partitioning::Unpartitioned,
    };
    let distribution = match &stmt.distribution {
        Some(d) if !d.hash.is_empty() => Distribution::Hash {
            columns: d
                .hash
                .iter()
                .map(|c| {
                    resolve_column(&columns, c, "distribution").map(|i| columns[i].name.clone())
                })
                .collect::<Result<_>>()?,
            buckets: d.buckets.unwrap_or(DEFAULT_BUCKETS),
        },
        Some(d) => Distribution::Random {
            buckets: d.buckets.unwrap_or(DEFAULT_BUCKETS),
        },
        None => Distribution::Random {
            buckets: DEFAULT_BUCKETS,
        },
    };
    let table_schema = TableSchema {
        columns,
        keys: KeyKind::Duplicate,
        partitioning: partitioning.clone(),
        distribution,
        order_by: stmt.order_by.iter().map(|c| c.value.clone()).collect(),
        properties: props_map(&stmt.properties),
        comment: stmt.comment.as_ref().map(|c| c.value.clone()),
    };
    let buckets = table_schema.distribution.buckets();
    let refresh = match stmt.refresh {
        Some(sql::RefreshMode::Manual) => "MANUAL",
        _ => "ASYNC",
    };
    let def = ObjectDef::MaterializedView {
        schema: table_schema,
        sql: stmt.query.text.clone(),
        refresh: refresh.to_string(),
        base_tables: bases,
    };
    let name = stmt.name.name.value.clone();
    engine.catalog().try_write(|tx| -> Result<()> {
        let span = stmt.name.name.span;
        guard::not_restoring(tx, &db.name, &name, Change::Create, span)?;
        let id = tx.insert_object(db.id, &name, &def, ObjectState::Normal)?;
        if partitioning == Partitioning::Unpartitioned {
            tx.insert_partition(id, &name, &PartitionBound::Whole, buckets)?;
        }
        Ok(())
    })?;
    if refresh == "ASYNC" {
        // The initial build, as StarRocks does for an ASYNC MV.
        refresh_materialized_view(engine, &db.name, &name).await?;
    }
    Ok(true)
}

pub(super) async fn create_sync_mv(
    engine: &mut Engine,
    stmt: &sql::CreateMaterializedView,
    db: &catalog::DatabaseRow,
    bases: &[String],
) -> Result<bool> {
    let [base] = bases else {
        return Err(problem_at(
            Code::DdlSyncMv,
            stmt.query.span,
            "a synchronous materialized view reads exactly one table; add REFRESH ASYNC for a multi-table view",
        ));
    };
    let table = base.rsplit('.').next().unwrap_or(base);
    let obj = engine
        .catalog()
        .view()
        .object(db.id, table)?
        .ok_or_else(|| {
            problem_at(
                Code::DdlSyncMv,
                stmt.query.span,
                format!("{base} must be a table of database {}", db.name),
            )
        })?;
    let ObjectDef::Table { schema, rollups } = &obj.def else {
        return Err(problem_at(
            Code::DdlSyncMv,
            stmt.query.span,
            format!("{base} is not a table"),
        ));
    };
    // A table a restore is making may not even have its files yet.
    guard::not_restoring(
        &engine.catalog().view(),
        &db.name,
        &obj.name,
        Change::Alter,
        stmt.name.name.span,
    )?;
    let rollup = crate::engine::rollup::plan(
        &db.name,
        &obj.name,
        schema,
        &stmt.name.name.value,
        &stmt.query.text,
    )
    .await
    .map_err(|e| problem_at(Code::DdlSyncMv, stmt.query.span, e.to_string()))?;
    // Build the rollup of the rows already there: one rollup rowset per base rowset, in files
    // named after a lease so that garbage collection leaves them alone until the commit.
    let rollup_arrow = crate::engine::types::arrow_schema(&rollup.schema);
    let lease = engine
        .catalog()
        .write(|tx| tx.begin_load(obj.id, crate::process::Process::current()))?;
    let mut built: Vec<(i64, catalog::RowsetRow)> = Vec::new();
    let building = async {
        for base_rowset in engine.catalog().view().object_rowsets(obj.id)? {
            let rows = crate::engine::storage::read_rowset(&engine.file_path(&base_rowset.path))?;
            let out =
                crate::engine::rollup::compute(&db.name, &obj.name, schema, &rollup, rows).await?;
            let rel = format!("data/{}/L{lease}-R{}.parquet", obj.id, base_rowset.id);
            let mut w = crate::engine::storage::RowsetWriter::create(
                &engine.file_path(&rel),
                rollup_arrow.clone(),
            )?;
            for b in &out {
                w.write(b)?;
            }
            let file = w.finish()?;
            built.push((
                base_rowset.id,
                file.live_row(
                    base_rowset.tablet_id,
                    base_rowset.version,
                    rel,
                    Some(rollup.name.clone()),
                ),
            ));
        }
        Ok::<_, EngineError>(())
    };
    if let Err(e) = building.await {
        // Its files are garbage once the lease is gone.
        let _ = engine.catalog().write(|tx| tx.end_load(lease));
        return Err(e);
    }
    let mut rollups = rollups.clone();
    rollups.push(rollup);
    let def = ObjectDef::Table {
        schema: schema.clone(),
        rollups,
    };
    let base_ids: Vec<i64> = built.iter().map(|(id, _)| *id).collect();
    let committed = engine.catalog().try_write(|tx| -> Result<bool> {
        guard::not_restoring(tx, &db.name, &obj.name, Change::Alter, stmt.name.name.span)?;
        // The rollup must describe exactly the rows live now.
        let live: Vec<i64> = tx.object_rowsets(obj.id)?.iter().map(|r| r.id).collect();
        if live != base_ids {
            return Ok(false);
        }
        for (_, r) in &built {
            tx.insert_rowset(r)?;
        }
        tx.update_definition(obj.id, &def)?;
        tx.end_load(lease)?;
        Ok(true)
    })?;
    if !committed {
        engine.catalog().write(|tx| tx.end_load(lease))?;
        return Err(EngineError::invalid(
            format!(
                "{base} changed while its materialized view was being built; nothing was created"
            ),
            Some("run CREATE MATERIALIZED VIEW again"),
        ));
    }
    Ok(true)
}

/// Recomputes an async MV from its query and replaces its rows in one commit.
pub async fn refresh_materialized_view(engine: &mut Engine, db: &str, name: &str) -> Result<u64> {
    let db_row = engine
        .catalog()
        .view()
        .database(db)?
        .ok_or_else(|| EngineError::invalid(format!("unknown database {db}"), None))?;
    let obj = engine
        .catalog()
        .view()
        .object(db_row.id, name)?
        .ok_or_else(|| {
            EngineError::invalid(format!("unknown materialized view {db}.{name}"), None)
        })?;
    let ObjectDef::MaterializedView {
        sql: query,
        schema,
        base_tables,
        ..
    } = &obj.def
    else {
        return Err(EngineError::invalid(
            format!("{db}.{name} is not an asynchronous materialized view"),
            None,
        ));
    };
    if !obj.active {
        let missing = missing_base(engine, db, query, base_tables)?;
        let why = match missing.first() {
            Some(m) => format!(
                "base table {m} does not exist; restore it, then ALTER MATERIALIZED VIEW {name} ACTIVE"
            ),
            None => obj
                .inactive_reason
                .clone()
                .unwrap_or_else(|| "it is inactive".into()),
        };
        return Err(EngineError::invalid(
            format!("materialized view {db}.{name} is inactive and cannot refresh: {why}"),
            Some("ALTER MATERIALIZED VIEW ... ACTIVE once its base tables exist"),
        ));
    }
    let target = crate::engine::types::arrow_schema(schema);
    let (_, stream) = crate::engine::query::run(engine, query, Some(db)).await?;
    let positions: Vec<usize> = (0..schema.columns.len()).collect();
    let schema2 = schema.clone();
    let conformed = stream.map(move |b| {
        b.map_err(EngineError::from)
            .and_then(|b| crate::engine::load::conform(&schema2, &target, &b, &positions))
    });
    let summary = crate::engine::load::load(
        engine,
        &obj,
        crate::engine::load::LoadMode::Overwrite,
        Box::pin(conformed),
    )
    .await?;
    Ok(summary.rows)
}

/// Base tables (as `db.name`) that do not exist now. They are read again from the query, as
/// it resolves in the view's own database `db` (an MV restored under another database name
/// reads that database's tables); `recorded` (what CREATE found) counts only when the query
/// no longer parses.
pub fn missing_base(
    engine: &mut Engine,
    db: &str,
    query: &str,
    recorded: &[String],
) -> Result<Vec<String>> {
    let bases: Vec<String> = match crate::engine::query::referenced_tables(query, Some(db)) {
        Ok(refs) => refs.into_iter().map(|(d, t)| format!("{d}.{t}")).collect(),
        Err(_) => recorded.to_vec(),
    };
    let mut missing = Vec::new();
    for base in &bases {
        let (db, table) = base.split_once('.').unwrap_or(("", base));
        let found = match engine.catalog().view().database(db)? {
            Some(d) => engine.catalog().view().object(d.id, table)?.is_some(),
            None => false,
        };
        if !found {
            missing.push(base.clone());
        }
    }
    Ok(missing)
}

/// Why the query of a materialized view no longer yields the columns it stores, if it does
/// not: a base table dropped and created with other columns, say. Planned as a REFRESH would
/// run it, in the view's own database.
pub(super) async fn mv_misfit(
    engine: &mut Engine,
    db: &str,
    query: &str,
    stored: &catalog::TableSchema,
) -> Result<Option<String>> {
    use datafusion::arrow::compute::can_cast_types;
    let ctx = crate::engine::query::new_context(Some(db));
    if let Err(e) = crate::engine::query::register_referenced(engine, &ctx, query, Some(db)).await {
        return Ok(Some(e.to_string()));
    }
    let df = match ctx.sql(query).await {
        Ok(df) => df,
        Err(e) => return Ok(Some(e.to_string().replace('\n', " "))),
    };
    let found = df.schema().as_arrow().clone();
    let target = crate::engine::types::arrow_schema(stored);
    if found.fields().len() != target.fields().len() {
        return Ok(Some(format!(
            "its query yields {} columns, and it stores {}",
            found.fields().len(),
            target.fields().len()
        )));
    }
    for (f, t) in found.fields().iter().zip(target.fields()) {
        if !f.name().eq_ignore_ascii_case(t.name()) {
            return Ok(Some(format!(
                "its query yields column {} where it stores {}",
                f.name(),
                t.name()
            )));
        }
        if !can_cast_types(f.data_type(), t.data_type()) {
            return Ok(Some(format!(
                "its query yields {} as {}, which its column of type {} cannot hold",
                f.name(),
                f.data_type(),
                t.data_type()
            )));
        }
    }
    Ok(None)
}

pub async fn alter_materialized_view(
    engine: &mut Engine,
    stmt: &sql::AlterMaterializedView,
    current: Option<&str>,
) -> Result<()> {
    let (db, obj) = engine.object(&stmt.name, current)?;
    let ObjectDef::MaterializedView {
        base_tables,
        sql: query,
        schema,
        ..
    } = &obj.def
    else {
        return Err(problem_at(
            Code::DdlNotMv,
            stmt.name.span(),
            format!("{} is not an asynchronous materialized view", stmt.name),
        ));
    };
    let span = stmt.name.name.span;
    if stmt.active {
        let missing = missing_base(engine, &db.name, query, base_tables)?;
        if let Some(m) = missing.first() {
            return Err(EngineError::at(
                Problem::new(
                    Code::DdlInactive,
                    stmt.name.span(),
                    format!(
                        "cannot activate {}: base table {m} does not exist",
                        stmt.name
                    ),
                )
                .label("base table missing")
                .help(format!("restore or create {m} first")),
            ));
        }
        if let Some(why) = mv_misfit(engine, &db.name, query, schema).await? {
            return Err(EngineError::at(
                Problem::new(
                    Code::DdlInactive,
                    stmt.name.span(),
                    format!("cannot activate {}: {why}", stmt.name),
                )
                .label("query no longer fits")
                .help("drop the materialized view and create it again over the tables as they are now"),
            ));
        }
        engine.catalog().try_write(|tx| -> Result<()> {
            guard::not_restoring(tx, &db.name, &obj.name, Change::Alter, span)?;
            Ok(tx.set_active(obj.id, true, None)?)
        })?;
    } else {
        engine.catalog().try_write(|tx| -> Result<()> {
            guard::not_restoring(tx, &db.name, &obj.name, Change::Alter, span)?;
            Ok(tx.set_active(
                obj.id,
                false,
                Some(crate::engine::maintenance::USER_INACTIVE),
            )?)
        })?;
    }
    Ok(())
}
