//! Parse tree → AST for the engine's statements (DDL, loads, SHOW, CHECKSUM, queries).

use super::Rule;
use super::ast::*;
use super::build::{
    Built, Children, Node, first_child, ident_of, internal, literal_of, name_or_string, properties,
    qualified_of, span_of,
};
use crate::code::Code;

pub(super) fn statement(pair: Node) -> Built<Statement> {
    let span = span_of(&pair);
    let rule = pair.as_rule();
    let mut c = Children::of(pair.clone());
    Ok(match rule {
        Rule::create_database => Statement::CreateDatabase(CreateDatabase {
            if_not_exists: c.has(Rule::if_not_exists),
            name: ident_of(c.require(Rule::db_name, "database name")?)?,
            properties: opt_properties(&mut c)?,
            span,
        }),
        Rule::drop_database => Statement::DropDatabase(DropDatabase {
            if_exists: c.has(Rule::if_exists),
            name: ident_of(c.require(Rule::db_name, "database name")?)?,
            force: c.has(Rule::force),
            span,
        }),
        Rule::use_database => Statement::Use(UseDatabase {
            name: ident_of(c.require(Rule::db_name, "database name")?)?,
            span,
        }),
        Rule::create_table => Statement::CreateTable(create_table(pair)?),
        Rule::drop_table => Statement::DropTable(drop_object(pair, Rule::table_name)?),
        Rule::truncate_table => Statement::TruncateTable(TruncateTable {
            name: qualified_of(c.require(Rule::table_name, "table name")?)?,
            partitions: match c.find(Rule::partition_list) {
                Some(list) => partition_names(list)?,
                None => Vec::new(),
            },
            span,
        }),
        Rule::alter_table => {
            let name = qualified_of(c.require(Rule::table_name, "table name")?)?;
            let action = if let Some(add) = c.find(Rule::add_partition) {
                let def = add
                    .clone()
                    .into_inner()
                    .find(|p| matches!(p.as_rule(), Rule::range_partition | Rule::list_partition))
                    .ok_or_else(|| internal(&add, "partition"))?;
                AlterTableAction::AddPartition(partition_def(def)?)
            } else if let Some(r) = c.find(Rule::rename_table) {
                AlterTableAction::Rename(new_table_name(r)?)
            } else if let Some(s) = c.find(Rule::swap_table) {
                AlterTableAction::SwapWith(new_table_name(s)?)
            } else {
                let drop = c.require(Rule::drop_partition, "partition change")?;
                let mut d = Children::of(drop);
                AlterTableAction::DropPartition {
                    if_exists: d.has(Rule::if_exists),
                    name: name_or_string(first_child(
                        &d.require(Rule::partition_name, "partition name")?,
                        "partition name",
                    )?)?,
                    force: d.has(Rule::force),
                }
            };
            Statement::AlterTable(AlterTable { name, action, span })
        }
        Rule::create_async_mv | Rule::create_sync_mv => {
            Statement::CreateMaterializedView(create_mv(pair)?)
        }
        Rule::alter_mv => Statement::AlterMaterializedView(AlterMaterializedView {
            name: qualified_of(c.require(Rule::mv_name, "materialized view name")?)?,
            active: c.has(Rule::kw_active),
            span,
        }),
        Rule::refresh_mv => Statement::RefreshMaterializedView(RefreshMaterializedView {
            name: qualified_of(c.require(Rule::mv_name, "materialized view name")?)?,
            span,
        }),
        Rule::drop_mv => Statement::DropMaterializedView(drop_object(pair, Rule::mv_name)?),
        Rule::create_view => {
            let if_not_exists = c.has(Rule::if_not_exists);
            let name = qualified_of(c.require(Rule::view_name, "view name")?)?;
            let columns = pair
                .clone()
                .into_inner()
                .filter(|p| p.as_rule() == Rule::column_name)
                .map(ident_of)
                .collect::<Built<Vec<_>>>()?;
            Statement::CreateView(CreateView {
                if_not_exists,
                name,
                columns,
                comment: opt_comment(&mut c)?,
                query: query_text(c.require(Rule::query_body, "query")?),
                span,
            })
        }
        Rule::drop_view => Statement::DropView(drop_object(pair, Rule::view_name)?),
        Rule::create_function => {
            let global = c.has(Rule::kw_global);
            let kind = c.find(Rule::function_kind).map(|k| Ident {
                value: k.as_str().to_ascii_uppercase(),
                span: span_of(&k),
            });
            let if_not_exists = c.has(Rule::if_not_exists);
            let name = qualified_of(c.require(Rule::function_name, "function name")?)?;
            let mut types = pair
                .clone()
                .into_inner()
                .filter(|p| p.as_rule() == Rule::column_type)
                .map(column_type)
                .collect::<Built<Vec<_>>>()?;
            let returns = types.pop().ok_or_else(|| internal(&pair, "return type"))?;
            Statement::CreateFunction(CreateFunction {
                global,
                kind,
                if_not_exists,
                name,
                arguments: types,
                returns,
                properties: opt_properties(&mut c)?,
                span,
            })
        }
        Rule::drop_function => {
            let has_parens = c.has(Rule::lparen);
            let arguments = pair
                .clone()
                .into_inner()
                .filter(|p| p.as_rule() == Rule::column_type)
                .map(column_type)
                .collect::<Built<Vec<_>>>()?;
            Statement::DropFunction(DropFunction {
                global: c.has(Rule::kw_global),
                if_exists: c.has(Rule::if_exists),
                name: qualified_of(c.require(Rule::function_name, "function name")?)?,
                arguments: has_parens.then_some(arguments),
                span,
            })
        }
        Rule::create_catalog => Statement::CreateCatalog(CreateCatalog {
            if_not_exists: c.has(Rule::if_not_exists),
            name: ident_of(c.require(Rule::catalog_name, "catalog name")?)?,
            comment: opt_comment(&mut c)?,
            properties: opt_properties(&mut c)?,
            span,
        }),
        Rule::drop_catalog => Statement::DropCatalog(DropCatalog {
            if_exists: c.has(Rule::if_exists),
            name: ident_of(c.require(Rule::catalog_name, "catalog name")?)?,
            span,
        }),
        Rule::insert => Statement::Insert(insert(pair)?),
        Rule::checksum_table => Statement::ChecksumTable(ChecksumTable {
            tables: pair
                .clone()
                .into_inner()
                .filter(|p| p.as_rule() == Rule::table_name)
                .map(qualified_of)
                .collect::<Built<Vec<_>>>()?,
            span,
        }),
        Rule::show_databases => show(
            Show::Databases {
                filter: show_filter(&mut c)?,
            },
            span,
        ),
        Rule::show_proc => show(
            Show::Proc {
                path: super::build::literal_of(
                    pair.clone()
                        .into_inner()
                        .find(|p| matches!(p.as_rule(), Rule::dq_string | Rule::sq_string))
                        .ok_or_else(|| internal(&pair, "path"))?,
                )?,
            },
            span,
        ),
        Rule::show_table_status => show(
            Show::TableStatus {
                database: c.find(Rule::db_name).map(ident_of).transpose()?,
                filter: show_filter(&mut c)?,
            },
            span,
        ),
        Rule::show_columns => {
            let full = c.has(Rule::kw_full);
            let table = qualified_of(c.require(Rule::table_name, "table name")?)?;
            // `SHOW COLUMNS FROM t FROM db`: the database named apart.
            let table = match c.find(Rule::db_name) {
                Some(db) => QualifiedName {
                    database: Some(ident_of(db)?),
                    ..table
                },
                None => table,
            };
            show(
                Show::Columns {
                    table,
                    full,
                    filter: show_filter(&mut c)?,
                },
                span,
            )
        }
        Rule::update => {
            let table = qualified_of(c.require(Rule::table_name, "table name")?)?;
            let assignments = pair
                .clone()
                .into_inner()
                .filter(|p| p.as_rule() == Rule::assignment)
                .map(|a| {
                    let mut a = Children::of(a);
                    Ok(Assignment {
                        column: ident_of(a.require(Rule::column_name, "column name")?)?,
                        value: query_text(a.require(Rule::expression, "value")?),
                    })
                })
                .collect::<Built<Vec<_>>>()?;
            Statement::Update(Update {
                table,
                assignments,
                condition: c.find(Rule::condition).map(query_text),
                span,
            })
        }
        Rule::delete => Statement::Delete(Delete {
            table: qualified_of(c.require(Rule::table_name, "table name")?)?,
            condition: c.find(Rule::condition).map(query_text),
            span,
        }),
        Rule::show_catalogs => show(Show::Catalogs, span),
        Rule::show_tables => {
            // Children are read in order: FULL comes first.
            let full = c.has(Rule::kw_full);
            show(
                Show::Tables {
                    database: c.find(Rule::db_name).map(ident_of).transpose()?,
                    full,
                    filter: show_filter(&mut c)?,
                },
                span,
            )
        }
        Rule::show_mvs => show(
            Show::MaterializedViews {
                database: c.find(Rule::db_name).map(ident_of).transpose()?,
            },
            span,
        ),
        Rule::show_functions => show(
            Show::Functions {
                global: c.has(Rule::kw_global),
                database: c.find(Rule::db_name).map(ident_of).transpose()?,
            },
            span,
        ),
        Rule::show_partitions => show(
            Show::Partitions {
                table: qualified_of(c.require(Rule::table_name, "table name")?)?,
            },
            span,
        ),
        Rule::show_create_table => show(
            Show::CreateTable {
                table: qualified_of(c.require(Rule::table_name, "table name")?)?,
            },
            span,
        ),
        Rule::query => Statement::Query(query_text(c.require(Rule::query_body, "query")?)),
        _ => return Err(internal(&pair, "known statement")),
    })
}

fn show(what: Show, span: Span) -> Statement {
    Statement::Show(ShowObjects { what, span })
}

fn opt_properties(c: &mut Children) -> Built<Properties> {
    match c.find(Rule::properties) {
        Some(p) => properties(p),
        None => Ok(Properties::default()),
    }
}

fn opt_comment(c: &mut Children) -> Built<Option<Literal>> {
    match c.find(Rule::comment) {
        Some(comment) => {
            let text = comment
                .clone()
                .into_inner()
                .find(|p| matches!(p.as_rule(), Rule::dq_string | Rule::sq_string))
                .ok_or_else(|| internal(&comment, "comment text"))?;
            Ok(Some(literal_of(text)?))
        }
        None => Ok(None),
    }
}

fn new_table_name(pair: Node) -> Built<Ident> {
    let name = pair
        .clone()
        .into_inner()
        .find(|p| p.as_rule() == Rule::new_table_name)
        .ok_or_else(|| internal(&pair, "new table name"))?;
    ident_of(name)
}

fn show_filter(c: &mut Children) -> Built<Option<ShowFilter>> {
    let Some(f) = c.find(Rule::show_filter) else {
        return Ok(None);
    };
    let mut inner = Children::of(f.clone());
    Ok(Some(match inner.find(Rule::condition) {
        Some(cond) => ShowFilter::Where(query_text(cond)),
        None => ShowFilter::Like(super::build::literal_of(
            f.clone()
                .into_inner()
                .find(|p| matches!(p.as_rule(), Rule::dq_string | Rule::sq_string))
                .ok_or_else(|| internal(&f, "pattern"))?,
        )?),
    }))
}

fn query_text(pair: Node) -> QueryText {
    let raw = pair.as_str();
    let text = raw.trim_end();
    let start = pair.as_span().start();
    QueryText {
        text: text.to_string(),
        span: Span::new(start, start + text.len()),
    }
}

fn drop_object(pair: Node, name_rule: Rule) -> Built<DropObject> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    Ok(DropObject {
        if_exists: c.has(Rule::if_exists),
        name: qualified_of(c.require(name_rule, "name")?)?,
        force: c.has(Rule::force),
        span,
    })
}

fn partition_names(list: Node) -> Built<Vec<Literal>> {
    list.into_inner()
        .filter(|p| p.as_rule() == Rule::partition_name)
        .map(|p| first_child(&p, "partition name").and_then(name_or_string))
        .collect()
}

pub(super) fn column_type(pair: Node) -> Built<ColumnType> {
    let mut c = Children::of(pair.clone());
    let name = c.require(Rule::type_name, "type name")?;
    let params = pair
        .clone()
        .into_inner()
        .filter(|p| p.as_rule() == Rule::type_param)
        .map(|p| {
            p.as_str().parse::<u32>().map_err(|_| {
                Box::new(
                    super::error::Problem::new(
                        Code::DdlTypeParameter,
                        span_of(&p),
                        format!("type parameter {} is too large", p.as_str()),
                    )
                    .label("too large"),
                )
            })
        })
        .collect::<Built<Vec<_>>>()?;
    Ok(ColumnType {
        // Type names are case-insensitive; the tree keeps the canonical upper case.
        name: Ident {
            value: name.as_str().to_ascii_uppercase(),
            span: span_of(&name),
        },
        params,
    })
}

fn column_def(pair: Node) -> Built<ColumnDef> {
    let mut c = Children::of(pair);
    let name = ident_of(c.require(Rule::column_name, "column name")?)?;
    let data_type = column_type(c.require(Rule::column_type, "column type")?)?;
    let aggregate = c.find(Rule::agg_type).map(|a| Ident {
        value: a.as_str().to_ascii_uppercase(),
        span: span_of(&a),
    });
    let nullable = c
        .find(Rule::nullability)
        .map(|n| !n.clone().into_inner().any(|p| p.as_rule() == Rule::kw_not));
    let default = match c.find(Rule::default_value) {
        Some(d) => Some(value(
            d.clone()
                .into_inner()
                .find(|p| p.as_rule() == Rule::value)
                .ok_or_else(|| internal(&d, "default value"))?,
        )?),
        None => None,
    };
    Ok(ColumnDef {
        name,
        data_type,
        aggregate,
        nullable,
        default,
        comment: opt_comment(&mut c)?,
    })
}

pub(super) fn value(pair: Node) -> Built<Datum> {
    let inner = first_child(&pair, "value")?;
    let span = span_of(&inner);
    Ok(match inner.as_rule() {
        Rule::kw_null => Datum::Null(span),
        Rule::kw_true => Datum::Bool(true, span),
        Rule::kw_false => Datum::Bool(false, span),
        Rule::kw_default => Datum::Default(span),
        Rule::now_call => Datum::Now(span),
        Rule::today_call => Datum::Today(span),
        Rule::number => Datum::Number(Literal {
            value: inner.as_str().to_string(),
            span,
        }),
        _ => Datum::String(literal_of(inner)?),
    })
}

fn columns_of(list: Node) -> Built<Vec<Ident>> {
    list.into_inner()
        .filter(|p| p.as_rule() == Rule::column_name)
        .map(ident_of)
        .collect()
}

fn tuple(pair: Node) -> Built<Vec<Datum>> {
    pair.into_inner()
        .filter(|p| p.as_rule() == Rule::value)
        .map(value)
        .collect()
}

fn partition_def(pair: Node) -> Built<PartitionDef> {
    let span = span_of(&pair);
    let rule = pair.as_rule();
    let mut c = Children::of(pair.clone());
    let if_not_exists = c.has(Rule::if_not_exists);
    let name = name_or_string(first_child(
        &c.require(Rule::partition_name, "partition name")?,
        "partition name",
    )?)?;
    let bound = if rule == Rule::range_partition {
        let values = first_child(&c.require(Rule::range_values, "partition bound")?, "bound")?;
        match values.as_rule() {
            Rule::less_than => match values
                .clone()
                .into_inner()
                .find(|p| p.as_rule() == Rule::value_tuple)
            {
                Some(t) => PartitionBound::LessThan(tuple(t)?),
                None => PartitionBound::LessThan(Vec::new()),
            },
            _ => {
                let mut tuples = values
                    .clone()
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::value_tuple);
                let lower = tuples
                    .next()
                    .ok_or_else(|| internal(&values, "lower bound"))?;
                let upper = tuples
                    .next()
                    .ok_or_else(|| internal(&values, "upper bound"))?;
                PartitionBound::Range(tuple(lower)?, tuple(upper)?)
            }
        }
    } else {
        let items = pair
            .clone()
            .into_inner()
            .filter(|p| p.as_rule() == Rule::list_item)
            .map(|item| {
                let inner = first_child(&item, "list value")?;
                match inner.as_rule() {
                    Rule::value_tuple => tuple(inner),
                    _ => Ok(vec![value(inner)?]),
                }
            })
            .collect::<Built<Vec<_>>>()?;
        PartitionBound::In(items)
    };
    Ok(PartitionDef {
        name,
        if_not_exists,
        bound,
        span,
    })
}

fn expr_partitioning(pair: Node) -> Built<PartitionDesc> {
    let mut c = Children::of(pair.clone());
    if let Some(call) = c.find(Rule::date_trunc_call) {
        let mut d = Children::of(call.clone());
        let unit = call
            .clone()
            .into_inner()
            .find(|p| matches!(p.as_rule(), Rule::dq_string | Rule::sq_string))
            .ok_or_else(|| internal(&call, "date_trunc unit"))?;
        return Ok(PartitionDesc::DateTrunc {
            unit: literal_of(unit)?,
            column: ident_of(d.require(Rule::column_name, "column")?)?,
        });
    }
    Ok(PartitionDesc::Columns {
        columns: pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::column_name)
            .map(ident_of)
            .collect::<Built<Vec<_>>>()?,
    })
}

fn partition_desc(pair: Node) -> Built<PartitionDesc> {
    let inner = pair
        .clone()
        .into_inner()
        .find(|p| {
            matches!(
                p.as_rule(),
                Rule::range_partitioning | Rule::list_partitioning | Rule::expr_partitioning
            )
        })
        .ok_or_else(|| internal(&pair, "partitioning"))?;
    let rule = inner.as_rule();
    if rule == Rule::expr_partitioning {
        return expr_partitioning(inner);
    }
    let mut c = Children::of(inner.clone());
    let columns = columns_of(c.require(Rule::column_list, "partition columns")?)?;
    let partitions = inner
        .into_inner()
        .filter(|p| matches!(p.as_rule(), Rule::range_partition | Rule::list_partition))
        .map(partition_def)
        .collect::<Built<Vec<_>>>()?;
    Ok(if rule == Rule::range_partitioning {
        PartitionDesc::Range {
            columns,
            partitions,
        }
    } else {
        PartitionDesc::List {
            columns,
            partitions,
        }
    })
}

fn distribution(pair: Node) -> Built<Distribution> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    let hash = match c.find(Rule::hash_distribution) {
        Some(h) => columns_of(
            h.clone()
                .into_inner()
                .find(|p| p.as_rule() == Rule::column_list)
                .ok_or_else(|| internal(&h, "hash columns"))?,
        )?,
        None => Vec::new(),
    };
    let buckets = match c.find(Rule::bucket_count) {
        Some(b) => Some(b.as_str().parse::<u32>().map_err(|_| {
            Box::new(
                super::error::Problem::new(
                    Code::DdlBuckets,
                    span_of(&b),
                    format!("{} buckets is too many", b.as_str()),
                )
                .label("too many"),
            )
        })?),
        None => None,
    };
    Ok(Distribution {
        hash,
        buckets,
        span,
    })
}

fn create_table(pair: Node) -> Built<CreateTable> {
    let span = span_of(&pair);
    let mut c = Children::of(pair.clone());
    let if_not_exists = c.has(Rule::if_not_exists);
    let name = qualified_of(c.require(Rule::table_name, "table name")?)?;
    let columns = pair
        .clone()
        .into_inner()
        .filter(|p| p.as_rule() == Rule::column_def)
        .map(column_def)
        .collect::<Built<Vec<_>>>()?;
    let keys = match c.find(Rule::key_desc) {
        Some(k) => {
            let kspan = span_of(&k);
            let mut kc = Children::of(k);
            let kind = match first_child(&kc.require(Rule::key_kind, "key kind")?, "key kind")?
                .as_rule()
            {
                Rule::kw_aggregate => KeyKind::Aggregate,
                Rule::kw_unique => KeyKind::Unique,
                Rule::kw_primary => KeyKind::Primary,
                _ => KeyKind::Duplicate,
            };
            Some(KeyDesc {
                kind,
                columns: columns_of(kc.require(Rule::column_list, "key columns")?)?,
                span: kspan,
            })
        }
        None => None,
    };
    let comment = opt_comment(&mut c)?;
    let partitioning = c
        .find(Rule::partition_desc)
        .map(partition_desc)
        .transpose()?;
    let dist = c.find(Rule::distribution).map(distribution).transpose()?;
    let order_by = match c.find(Rule::order_by) {
        Some(o) => columns_of(
            o.clone()
                .into_inner()
                .find(|p| p.as_rule() == Rule::column_list)
                .ok_or_else(|| internal(&o, "order columns"))?,
        )?,
        None => Vec::new(),
    };
    Ok(CreateTable {
        if_not_exists,
        name,
        columns,
        keys,
        comment,
        partitioning,
        distribution: dist,
        order_by,
        properties: opt_properties(&mut c)?,
        span,
    })
}

fn create_mv(pair: Node) -> Built<CreateMaterializedView> {
    let span = span_of(&pair);
    let is_async = pair.as_rule() == Rule::create_async_mv;
    let mut mv = CreateMaterializedView {
        if_not_exists: false,
        name: QualifiedName::unqualified(Ident::new("")),
        refresh: None,
        is_async,
        comment: None,
        partitioning: None,
        distribution: None,
        order_by: Vec::new(),
        properties: Properties::default(),
        query: QueryText {
            text: String::new(),
            span,
        },
        span,
    };
    for child in pair.clone().into_inner() {
        match child.as_rule() {
            Rule::if_not_exists => mv.if_not_exists = true,
            Rule::mv_name => mv.name = qualified_of(child)?,
            Rule::comment => {
                let text = child
                    .clone()
                    .into_inner()
                    .find(|p| matches!(p.as_rule(), Rule::dq_string | Rule::sq_string))
                    .ok_or_else(|| internal(&child, "comment"))?;
                mv.comment = Some(literal_of(text)?);
            }
            Rule::mv_partitioning => {
                let e = child
                    .clone()
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::expr_partitioning)
                    .ok_or_else(|| internal(&child, "partitioning"))?;
                mv.partitioning = Some(expr_partitioning(e)?);
            }
            Rule::distribution => mv.distribution = Some(distribution(child)?),
            Rule::order_by => {
                mv.order_by = columns_of(
                    child
                        .clone()
                        .into_inner()
                        .find(|p| p.as_rule() == Rule::column_list)
                        .ok_or_else(|| internal(&child, "order columns"))?,
                )?
            }
            Rule::refresh_desc => {
                mv.refresh = Some(
                    if child
                        .clone()
                        .into_inner()
                        .any(|p| p.as_rule() == Rule::kw_manual)
                    {
                        RefreshMode::Manual
                    } else {
                        RefreshMode::Async
                    },
                )
            }
            Rule::properties => mv.properties = properties(child)?,
            Rule::query_body => mv.query = query_text(child),
            _ => {}
        }
    }
    Ok(mv)
}

fn insert(pair: Node) -> Built<Insert> {
    let span = span_of(&pair);
    let mut c = Children::of(pair.clone());
    let table = qualified_of(c.require(Rule::table_name, "table name")?)?;
    let columns = match c.find(Rule::column_list) {
        Some(list) => columns_of(list)?,
        None => Vec::new(),
    };
    let source = if let Some(rows) = c.find(Rule::values_rows) {
        InsertSource::Values {
            rows: rows
                .into_inner()
                .filter(|p| p.as_rule() == Rule::value_row)
                .map(|row| {
                    Ok(ValueRow {
                        span: span_of(&row),
                        values: tuple(row)?,
                    })
                })
                .collect::<Built<Vec<_>>>()?,
        }
    } else if let Some(files) = c.find(Rule::files_source) {
        let list = files
            .into_inner()
            .filter(|p| p.as_rule() == Rule::property)
            .map(|p| {
                let mut pc = Children::of(p);
                Ok(Property {
                    key: literal_of(pc.require(Rule::property_key, "key")?)?,
                    value: literal_of(pc.require(Rule::property_value, "value")?)?,
                })
            })
            .collect::<Built<Vec<_>>>()?;
        InsertSource::Files {
            properties: Properties(list),
        }
    } else {
        InsertSource::Query(query_text(c.require(Rule::query_body, "query")?))
    };
    Ok(Insert {
        table,
        columns,
        source,
        span,
    })
}
