//! Functions (database or GLOBAL) and external catalogs' metadata.

use super::*;

/// Where a function lives: its database, or nowhere for a GLOBAL one.
pub(super) fn function_database(
    engine: &mut Engine,
    global: bool,
    name: &sql::QualifiedName,
    current: Option<&str>,
) -> Result<Option<i64>> {
    if global {
        Ok(None)
    } else {
        Ok(Some(engine.database_of(name, current)?.id))
    }
}

pub fn create_function(
    engine: &mut Engine,
    stmt: &sql::CreateFunction,
    current: Option<&str>,
) -> Result<bool> {
    let db_id = function_database(engine, stmt.global, &stmt.name, current)?;
    let def = FunctionDef {
        name: stmt.name.name.value.clone(),
        arguments: stmt.arguments.iter().map(|t| t.to_string()).collect(),
        returns: stmt.returns.to_string(),
        kind: stmt.kind.as_ref().map(|k| k.value.clone()),
        properties: props_map(&stmt.properties),
    };
    let exists = engine
        .catalog()
        .view()
        .functions(db_id)?
        .iter()
        .any(|f| f.signature() == def.signature());
    if exists {
        if stmt.if_not_exists {
            return Ok(false);
        }
        return Err(already_exists(
            "function",
            &def.signature(),
            stmt.name.span(),
        ));
    }
    let db_name = match db_id {
        Some(_) => Some(engine.database_of(&stmt.name, current)?.name),
        None => None,
    };
    engine.catalog().try_write(|tx| -> Result<()> {
        if let Some(db) = &db_name {
            guard::function_not_restoring(tx, db, &def.name, stmt.name.span())?;
        }
        Ok(tx.insert_function(db_id, &def)?)
    })?;
    Ok(true)
}

pub fn drop_function(
    engine: &mut Engine,
    stmt: &sql::DropFunction,
    current: Option<&str>,
) -> Result<bool> {
    let db_id = function_database(engine, stmt.global, &stmt.name, current)?;
    let all = engine.catalog().view().functions(db_id)?;
    let matching: Vec<&FunctionDef> = all
        .iter()
        .filter(|f| f.name == stmt.name.name.value)
        .filter(|f| match &stmt.arguments {
            Some(args) => f.arguments == args.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            None => true,
        })
        .collect();
    match matching.as_slice() {
        [] if stmt.if_exists => Ok(false),
        [] => Err(EngineError::at(
            Problem::new(
                Code::DdlUnknownFunction,
                stmt.name.span(),
                format!("unknown function {}", stmt.name),
            )
            .label("no such function")
            .help(
                match sql::closest(&stmt.name.name.value, all.iter().map(|f| f.name.as_str())) {
                    Some(s) => format!("did you mean {s}?"),
                    None => "SHOW FUNCTIONS lists them".into(),
                },
            ),
        )),
        [one] => {
            let sig = one.signature();
            let name = one.name.clone();
            let db_name = match db_id {
                Some(_) => Some(engine.database_of(&stmt.name, current)?.name),
                None => None,
            };
            engine.catalog().try_write(|tx| -> Result<()> {
                if let Some(db) = &db_name {
                    guard::function_not_restoring(tx, db, &name, stmt.name.span())?;
                }
                tx.delete_function(db_id, &sig)?;
                // No overload left under the name: its grants go with it.
                if !tx.functions(db_id)?.iter().any(|f| f.name == name) {
                    match &db_name {
                        Some(db) => tx.drop_grants_on("FUNCTION", Some(db), &name)?,
                        None => tx.drop_grants_on("GLOBAL FUNCTION", None, &name)?,
                    }
                }
                Ok(())
            })?;
            Ok(true)
        }
        many => Err(problem_at(
            Code::DdlAmbiguousFunction,
            stmt.name.span(),
            format!(
                "{} has several overloads ({}); name the argument types",
                stmt.name,
                many.iter()
                    .map(|f| f.signature())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

pub fn create_catalog(engine: &mut Engine, stmt: &sql::CreateCatalog) -> Result<bool> {
    if engine
        .catalog()
        .view()
        .external_catalogs()?
        .iter()
        .any(|c| c.name == stmt.name.value)
    {
        if stmt.if_not_exists {
            return Ok(false);
        }
        return Err(already_exists("catalog", &stmt.name, stmt.name.span));
    }
    if stmt.properties.get("type").is_none() {
        return Err(EngineError::at(
            Problem::new(Code::DdlCatalogType, stmt.name.span, format!("catalog {} has no \"type\" property", stmt.name))
                .label("which kind of catalog?")
                .help("add PROPERTIES (\"type\" = \"hive\" | \"iceberg\" | \"hudi\" | \"deltalake\" | \"jdbc\" | ...)"),
        ));
    }
    let def = ExternalCatalogDef {
        name: stmt.name.value.clone(),
        comment: stmt.comment.as_ref().map(|c| c.value.clone()),
        properties: props_map(&stmt.properties),
    };
    engine.catalog().try_write(|tx| -> Result<()> {
        guard::catalog_not_restoring(tx, &def.name, stmt.name.span)?;
        Ok(tx.insert_external_catalog(&def)?)
    })?;
    Ok(true)
}

pub fn drop_catalog(engine: &mut Engine, stmt: &sql::DropCatalog) -> Result<bool> {
    let n = engine.catalog().try_write(|tx| -> Result<usize> {
        guard::catalog_not_restoring(tx, &stmt.name.value, stmt.name.span)?;
        tx.drop_grants_on("CATALOG", None, &stmt.name.value)?;
        Ok(tx.delete_external_catalog(&stmt.name.value)?)
    })?;
    if n == 0 && !stmt.if_exists {
        return Err(problem_at(
            Code::DdlUnknownCatalog,
            stmt.name.span,
            format!("unknown catalog {}", stmt.name),
        ));
    }
    Ok(n > 0)
}
