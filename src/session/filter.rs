//! `SHOW … LIKE 'pattern'` and `SHOW … WHERE condition` over rows a SHOW produced: the condition
//! is SQL over the SHOW's column names, evaluated by the query engine (DataFusion) on the rows
//! as text, as StarRocks evaluates it over the SHOW's result.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;

use crate::engine::{EngineError, Result, query};
use crate::results::ResultSet;

/// `condition` as one expression over `columns`, or why not: exactly one expression (a
/// `UNION …` or anything else after it is refused, so the text cannot become another query),
/// no subquery, and the SHOW's column names matched in any case (MySQL's rule), written exactly.
fn checked_condition(condition: &str, columns: &[String]) -> Result<String> {
    use datafusion::sql::sqlparser::ast::{Expr, visit_expressions, visit_expressions_mut};
    use datafusion::sql::sqlparser::dialect::MySqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Token;
    use std::ops::ControlFlow;
    let bad = |why: String| EngineError::Query(format!("WHERE {condition}: {why}"));
    let mut parser = Parser::new(&MySqlDialect {})
        .try_with_sql(condition)
        .map_err(|e| bad(e.to_string()))?;
    let mut expr = parser.parse_expr().map_err(|e| bad(e.to_string()))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(bad(format!(
            "a SHOW's WHERE is one condition; `{}` follows it",
            next.token
        )));
    }
    if visit_expressions(&expr, |e| match e {
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
    {
        return Err(bad("a SHOW's WHERE takes no subquery".into()));
    }
    let _ = visit_expressions_mut(&mut expr, |e| {
        if let Expr::Identifier(id) = e
            && let Some(exact) = columns.iter().find(|c| c.eq_ignore_ascii_case(&id.value))
        {
            id.value = exact.clone();
            id.quote_style = Some('`');
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(expr.to_string())
}

/// The rows of `rs` where `condition` holds.
pub async fn filter_rows(rs: ResultSet, condition: &str) -> Result<ResultSet> {
    query::check_size(condition)?;
    let condition = &checked_condition(condition, &rs.columns)?;
    let schema = Arc::new(Schema::new(
        rs.columns
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = (0..rs.columns.len())
        .map(|i| {
            Arc::new(StringArray::from(
                rs.rows
                    .iter()
                    .map(|r| r.get(i).cloned().flatten())
                    .collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let ctx = datafusion::prelude::SessionContext::new_with_config(
        datafusion::prelude::SessionConfig::new()
            .set_str("datafusion.sql_parser.dialect", "MySQL")
            // `WHERE Variable_name = 'x'`: the SHOW's names as written, in any case.
            .set_bool("datafusion.sql_parser.enable_ident_normalization", false),
    );
    ctx.register_table(
        "show_rows",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    let select = rs
        .columns
        .iter()
        .map(|c| crate::sql::QuotedIdent(c).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let df = ctx
        .sql(&format!("SELECT {select} FROM show_rows WHERE {condition}"))
        .await
        .map_err(|e| EngineError::Query(format!("WHERE {condition}: {e}")))?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    let mut out = super::rows::result_set(&schema, &batches)?;
    out.kinds = rs.kinds;
    Ok(out)
}

/// SQL LIKE: `%` any run, `_` one character, `\\` escapes. Dynamic programming over the
/// pattern, so time is length × length whatever the pattern (no backtracking blow-up).
pub fn like(value: &str, pattern: &str) -> bool {
    enum Token {
        Any,
        One,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        });
    }
    let value: Vec<char> = value.chars().collect();
    // matched[j]: the value's first i characters match the pattern's first j tokens.
    let mut matched = vec![false; tokens.len() + 1];
    matched[0] = true;
    for (j, t) in tokens.iter().enumerate() {
        matched[j + 1] = matched[j] && matches!(t, Token::Any);
    }
    for c in &value {
        let mut next = vec![false; tokens.len() + 1];
        for (j, t) in tokens.iter().enumerate() {
            next[j + 1] = match t {
                Token::Any => next[j] || matched[j + 1],
                Token::One => matched[j],
                Token::Char(p) => matched[j] && p == c,
            };
        }
        matched = next;
    }
    matched[tokens.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn where_filters_show_rows() {
        let mut rs = ResultSet::new(&["Variable_name", "Value"]);
        rs.push(vec![Some("time_zone".into()), Some("UTC".into())]);
        rs.push(vec![Some("sql_mode".into()), Some("".into())]);
        rs.push(vec![Some("wait_timeout".into()), None]);
        let out = filter_rows(rs.clone(), "Variable_name = 'sql_mode' OR Value = 'UTC'")
            .await
            .unwrap();
        assert_eq!(out.rows.len(), 2);
        assert_eq!(out.get(0, "Variable_name"), Some("time_zone"));
        let out = filter_rows(rs.clone(), "Value IS NULL").await.unwrap();
        assert_eq!(out.get(0, "Variable_name"), Some("wait_timeout"));
        assert!(filter_rows(rs.clone(), "no_such_column = 1").await.is_err());
        // Names in any case, as MySQL matches them.
        let out = filter_rows(rs.clone(), "variable_name = 'sql_mode'")
            .await
            .unwrap();
        assert_eq!(out.rows.len(), 1);
        // One condition and nothing else: no second query, no subquery.
        for injected in [
            "1=0 UNION SELECT * FROM show_rows",
            "1=1; SELECT 1",
            "Value IN (SELECT 'x')",
            "EXISTS (SELECT 1)",
        ] {
            let e = filter_rows(rs.clone(), injected)
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains("WHERE"), "{injected}: {e}");
        }
    }
}
