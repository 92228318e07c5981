//! Resolving CREATE TABLE: columns and keys, distribution, partitioning and partition bounds
//! (ranges that overlap or are empty are refused).

use super::*;

pub(super) fn resolve_columns(stmt: &sql::CreateTable) -> Result<(Vec<Column>, KeyKind)> {
    let key_kind = stmt
        .keys
        .as_ref()
        .map(|k| k.kind)
        .unwrap_or(KeyKind::Duplicate);
    let mut columns = Vec::new();
    for def in &stmt.columns {
        let sql_type = SqlType::from_name(&def.data_type.name.value, &def.data_type.params)
            .map_err(|why| {
                EngineError::at(
                    Problem::new(
                        Code::DdlType,
                        def.data_type.name.span,
                        format!("column {}: {why}", def.name),
                    )
                    .label("not a column type")
                    .help(
                        "types: BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, LARGEINT, FLOAT, DOUBLE, \
                         DECIMAL(p, s), CHAR(n), VARCHAR(n), STRING, DATE, DATETIME",
                    ),
                )
            })?;
        let aggregate = match &def.aggregate {
            None => None,
            Some(agg) => {
                if key_kind != KeyKind::Aggregate {
                    return Err(EngineError::at(
                        Problem::new(
                            Code::DdlAggregate,
                            agg.span,
                            format!("{} only applies to AGGREGATE KEY tables", agg.value),
                        )
                        .label("aggregate type on a non-aggregate table"),
                    ));
                }
                Some(AggregateKind::from_name(&agg.value).ok_or_else(|| {
                    problem_at(
                        Code::DdlAggregate,
                        agg.span,
                        format!("{} is not supported; use SUM, MAX, MIN, REPLACE or REPLACE_IF_NOT_NULL", agg.value),
                    )
                })?)
            }
        };
        let default = match &def.default {
            Some(v) => datum_text(v, &arrow_type(&sql_type), &def.name.value)?,
            None => None,
        };
        columns.push(Column {
            name: def.name.value.clone(),
            sql_type,
            nullable: def.nullable.unwrap_or(true),
            is_key: false,
            aggregate,
            default,
            comment: def.comment.as_ref().map(|c| c.value.clone()),
        });
    }
    // Key columns: as declared, else the first column (a DUPLICATE KEY table's sort key).
    let key_names: Vec<Ident> = match &stmt.keys {
        Some(k) => k.columns.clone(),
        None => vec![stmt.columns[0].name.clone()],
    };
    for (i, key) in key_names.iter().enumerate() {
        let at = resolve_column(&columns, key, "key")?;
        if at != i {
            return Err(EngineError::at(
                Problem::new(
                    Code::DdlKeyOrder,
                    key.span,
                    format!("key column {key} must be column {} of the table", i + 1),
                )
                .label("out of place")
                .help("key columns come first in the column list, in the order of the KEY clause"),
            ));
        }
        let col = &mut columns[at];
        if matches!(col.sql_type, SqlType::Float | SqlType::Double) {
            return Err(problem_at(
                Code::DdlKeyType,
                key.span,
                format!("key column {key} cannot be FLOAT or DOUBLE"),
            ));
        }
        col.is_key = true;
        if key_kind == KeyKind::Primary {
            if stmt.columns[at].nullable == Some(true) {
                return Err(problem_at(
                    Code::DdlPrimaryNull,
                    key.span,
                    format!("primary key column {key} must be NOT NULL"),
                ));
            }
            col.nullable = false;
        }
    }
    if key_kind == KeyKind::Aggregate {
        for (def, col) in stmt.columns.iter().zip(columns.iter_mut()) {
            if !col.is_key && col.aggregate.is_none() {
                return Err(EngineError::at(
                    Problem::new(
                        Code::DdlAggregate,
                        def.name.span,
                        format!(
                            "value column {} of an AGGREGATE KEY table needs an aggregate type",
                            def.name
                        ),
                    )
                    .label("no aggregate type")
                    .help("add SUM, MAX, MIN, REPLACE or REPLACE_IF_NOT_NULL after the type"),
                ));
            }
        }
    }
    Ok((columns, key_kind))
}

/// Resolves CREATE TABLE into a schema and its initial partitions.
pub fn resolve_table(
    stmt: &sql::CreateTable,
) -> Result<(TableSchema, Vec<(String, PartitionBound)>)> {
    let (columns, keys) = resolve_columns(stmt)?;
    let mut partitions = Vec::new();
    let must_be_key = |name: &Ident, idx: usize, what: &str| -> Result<()> {
        if keys != KeyKind::Duplicate && !columns[idx].is_key {
            return Err(problem_at(
                Code::DdlNotKey,
                name.span,
                format!(
                    "{what} column {name} must be a key column of a {} KEY table",
                    keys.keyword()
                ),
            ));
        }
        Ok(())
    };
    // Partition columns: existing, key columns where the model needs it, with their types.
    let partition_columns = |cols: &[Ident]| -> Result<(Vec<usize>, Vec<DataType>)> {
        let mut idx = Vec::new();
        for c in cols {
            let i = resolve_column(&columns, c, "partition")?;
            must_be_key(c, i, "partition")?;
            idx.push(i);
        }
        let types = idx
            .iter()
            .map(|i| arrow_type(&columns[*i].sql_type))
            .collect();
        Ok((idx, types))
    };
    let partitioning = match &stmt.partitioning {
        None => {
            partitions.push((stmt.name.name.value.clone(), PartitionBound::Whole));
            Partitioning::Unpartitioned
        }
        Some(sql::PartitionDesc::Range {
            columns: cols,
            partitions: defs,
        }) => {
            let (idx, types) = partition_columns(cols)?;
            let mut previous_upper: Vec<String> = Vec::new();
            for def in defs {
                let (lower, upper) = range_bound(def, &types, &columns, &idx, &previous_upper)?;
                previous_upper = upper.clone();
                partitions.push((
                    def.name.value.clone(),
                    PartitionBound::Range { lower, upper },
                ));
            }
            check_ranges(&partitions, &types, defs)?;
            Partitioning::Range {
                columns: idx.iter().map(|i| columns[*i].name.clone()).collect(),
            }
        }
        Some(sql::PartitionDesc::List {
            columns: cols,
            partitions: defs,
        }) => {
            let (idx, types) = partition_columns(cols)?;
            for def in defs {
                partitions.push((
                    def.name.value.clone(),
                    list_bound(def, &types, &columns, &idx)?,
                ));
            }
            Partitioning::List {
                columns: idx.iter().map(|i| columns[*i].name.clone()).collect(),
            }
        }
        Some(sql::PartitionDesc::DateTrunc { unit, column }) => {
            let i = resolve_column(&columns, column, "partition")?;
            must_be_key(column, i, "partition")?;
            if !matches!(columns[i].sql_type, SqlType::Date | SqlType::DateTime) {
                return Err(problem_at(
                    Code::DdlDateTrunc,
                    column.span,
                    format!(
                        "date_trunc needs a DATE or DATETIME column; {column} is {}",
                        columns[i].sql_type.sql_name()
                    ),
                ));
            }
            if !["year", "month", "day", "hour"].contains(&unit.value.to_ascii_lowercase().as_str())
            {
                return Err(EngineError::at(
                    Problem::new(
                        Code::DdlDateTrunc,
                        unit.span,
                        format!("date_trunc unit '{}' is not supported", unit.value),
                    )
                    .label("unknown unit")
                    .help("use 'year', 'month', 'day' or 'hour'"),
                ));
            }
            Partitioning::DateTrunc {
                unit: unit.value.to_ascii_lowercase(),
                column: columns[i].name.clone(),
            }
        }
        Some(sql::PartitionDesc::Columns { columns: cols }) => {
            let (idx, _) = partition_columns(cols)?;
            Partitioning::Columns {
                columns: idx.iter().map(|i| columns[*i].name.clone()).collect(),
            }
        }
    };
    let mut names = BTreeMap::new();
    if let Some(
        sql::PartitionDesc::Range {
            partitions: defs, ..
        }
        | sql::PartitionDesc::List {
            partitions: defs, ..
        },
    ) = &stmt.partitioning
    {
        for def in defs {
            if let Some(first) = names.insert(def.name.value.clone(), def.name.span) {
                return Err(EngineError::at(
                    Problem::new(
                        Code::DdlDuplicatePartition,
                        def.name.span,
                        format!("partition {} is defined twice", def.name.value),
                    )
                    .label("again")
                    .also(first, "first here"),
                ));
            }
        }
    }
    let distribution = match &stmt.distribution {
        Some(d) if d.hash.is_empty() => {
            if keys != KeyKind::Duplicate {
                return Err(problem_at(
                    Code::DdlRandom,
                    d.span,
                    format!(
                        "a {} KEY table must be distributed by HASH of key columns",
                        keys.keyword()
                    ),
                ));
            }
            Distribution::Random {
                buckets: d.buckets.unwrap_or(DEFAULT_BUCKETS),
            }
        }
        Some(d) => {
            let mut names = Vec::new();
            for c in &d.hash {
                let i = resolve_column(&columns, c, "distribution")?;
                must_be_key(c, i, "distribution")?;
                names.push(columns[i].name.clone());
            }
            Distribution::Hash {
                columns: names,
                buckets: d.buckets.unwrap_or(DEFAULT_BUCKETS),
            }
        }
        None if keys == KeyKind::Duplicate => Distribution::Random {
            buckets: DEFAULT_BUCKETS,
        },
        None => Distribution::Hash {
            columns: columns
                .iter()
                .filter(|c| c.is_key)
                .map(|c| c.name.clone())
                .collect(),
            buckets: DEFAULT_BUCKETS,
        },
    };
    if distribution.buckets() == 0 || distribution.buckets() > limits::MAX_BUCKETS {
        return Err(EngineError::invalid(
            format!(
                "{} buckets is outside 1..={}",
                distribution.buckets(),
                limits::MAX_BUCKETS
            ),
            None,
        ));
    }
    for c in &stmt.order_by {
        resolve_column(&columns, c, "ORDER BY")?;
    }
    Ok((
        TableSchema {
            columns,
            keys,
            partitioning,
            distribution,
            order_by: stmt.order_by.iter().map(|c| c.value.clone()).collect(),
            properties: props_map(&stmt.properties),
            comment: stmt.comment.as_ref().map(|c| c.value.clone()),
        },
        partitions,
    ))
}

pub(super) fn tuple_text(
    values: &[Datum],
    types: &[DataType],
    columns: &[Column],
    idx: &[usize],
    span: sql::Span,
) -> Result<Vec<String>> {
    if values.len() != types.len() {
        return Err(problem_at(
            Code::DdlBound,
            span,
            format!(
                "a bound needs {} value(s), one per partition column; found {}",
                types.len(),
                values.len()
            ),
        ));
    }
    values
        .iter()
        .zip(types)
        .zip(idx)
        .map(|((v, t), i)| {
            datum_text(v, t, &columns[*i].name)?.ok_or_else(|| {
                problem_at(Code::DdlBound, v.span(), "a partition bound cannot be NULL")
            })
        })
        .collect()
}

pub(super) fn range_bound(
    def: &sql::PartitionDef,
    types: &[DataType],
    columns: &[Column],
    idx: &[usize],
    previous_upper: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    match &def.bound {
        sql::PartitionBound::LessThan(values) => {
            let upper = if values.is_empty() {
                Vec::new()
            } else {
                tuple_text(values, types, columns, idx, def.span)?
            };
            Ok((previous_upper.to_vec(), upper))
        }
        sql::PartitionBound::Range(lo, hi) => Ok((
            tuple_text(lo, types, columns, idx, def.span)?,
            tuple_text(hi, types, columns, idx, def.span)?,
        )),
        sql::PartitionBound::In(_) => Err(problem_at(
            Code::DdlBound,
            def.span,
            "a RANGE partition takes VALUES LESS THAN (...) or VALUES [(...), (...))",
        )),
    }
}

pub(super) fn list_bound(
    def: &sql::PartitionDef,
    types: &[DataType],
    columns: &[Column],
    idx: &[usize],
) -> Result<PartitionBound> {
    match &def.bound {
        sql::PartitionBound::In(items) => {
            let mut values = Vec::new();
            for item in items {
                if item.len() != types.len() {
                    return Err(problem_at(
                        Code::DdlBound,
                        def.span,
                        format!(
                            "each list value needs {} value(s), one per partition column",
                            types.len()
                        ),
                    ));
                }
                values.push(
                    item.iter()
                        .zip(types)
                        .zip(idx)
                        .map(|((v, t), i)| datum_text(v, t, &columns[*i].name))
                        .collect::<Result<Vec<_>>>()?,
                );
            }
            Ok(PartitionBound::List { values })
        }
        _ => Err(problem_at(
            Code::DdlBound,
            def.span,
            "a LIST partition takes VALUES IN (...)",
        )),
    }
}

/// Range partitions must not be empty or overlap.
pub(super) fn check_ranges(
    partitions: &[(String, PartitionBound)],
    types: &[DataType],
    defs: &[sql::PartitionDef],
) -> Result<()> {
    let parse = |v: &[String]| -> Result<Vec<ScalarValue>> {
        v.iter()
            .zip(types)
            .map(|(s, t)| parse_scalar(s, t).map_err(EngineError::Arrow))
            .collect()
    };
    let mut ranges: Vec<(String, Vec<ScalarValue>, Vec<ScalarValue>)> = Vec::new();
    for ((name, bound), def) in partitions.iter().zip(defs) {
        if let PartitionBound::Range { lower, upper } = bound {
            let (lo, hi) = (parse(lower)?, parse(upper)?);
            if !lo.is_empty() && !hi.is_empty() && lo.partial_cmp(&hi).is_none_or(|o| o.is_ge()) {
                return Err(problem_at(
                    Code::DdlEmptyRange,
                    def.span,
                    format!(
                        "partition {name} is empty: its lower bound is not below its upper bound"
                    ),
                ));
            }
            for (other, olo, ohi) in &ranges {
                let below = |a: &Vec<ScalarValue>, b: &Vec<ScalarValue>| {
                    a.is_empty() || b.is_empty() || a.partial_cmp(b).is_some_and(|o| o.is_le())
                };
                // [lo, hi) and [olo, ohi) overlap unless hi <= olo or ohi <= lo.
                let disjoint = (!hi.is_empty() && !olo.is_empty() && below(&hi, olo))
                    || (!ohi.is_empty() && !lo.is_empty() && below(ohi, &lo));
                if !disjoint {
                    return Err(problem_at(
                        Code::DdlOverlap,
                        def.span,
                        format!("partition {name} overlaps partition {other}"),
                    ));
                }
            }
            ranges.push((name.clone(), lo, hi));
        }
    }
    Ok(())
}
