//! What an unfinished RESTORE protects. From the moment a restore is accepted until the
//! transaction that ends it, the names it will create or replace belong to it (the catalog's
//! `job_targets`): no DDL, load or refresh touches them, and its database cannot be dropped.
//! StarRocks says it thus: "Before the RESTORE job is completed, you cannot operate the table
//! to be restored." Every check runs inside the transaction of the change it guards, so nothing
//! slips in between the check and the change.

use crate::catalog::{JobRow, Reader};
use crate::code::Code;
use crate::sql::{Problem, Span};

use super::{EngineError, Result};

/// What a statement wants to do to a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Create,
    Drop,
    Truncate,
    Alter,
    Load,
    Refresh,
}

/// Refuses `change` of `db.name` while a restore owns the name; the error points at `span`.
pub fn not_restoring(
    tx: &Reader<'_>,
    db: &str,
    name: &str,
    change: Change,
    span: Span,
) -> Result<()> {
    match tx.target_holder(db, name)? {
        None => Ok(()),
        Some(job) => Err(refused(&job, db, name, change, span)),
    }
}

/// The name a restore holds for a function it creates or replaces (job_targets holds table
/// names too; no table name has a colon).
pub fn function_target(name: &str) -> String {
    format!("function:{name}")
}

/// The name a restore holds for an external catalog it creates or replaces.
pub fn catalog_target(name: &str) -> String {
    format!("catalog:{name}")
}

/// Refuses creating or dropping function `name` of `db` while a restore will create or
/// replace a function of that name there (it would silently replace the one made now).
pub fn function_not_restoring(tx: &Reader<'_>, db: &str, name: &str, span: Span) -> Result<()> {
    match tx.target_holder(db, &function_target(name))? {
        None => Ok(()),
        Some(job) => Err(held(&job, db, &format!("function {db}.{name}"), span)),
    }
}

/// Refuses creating or dropping external catalog `name` while a restore will create it.
pub fn catalog_not_restoring(tx: &Reader<'_>, name: &str, span: Span) -> Result<()> {
    match tx.target_named(&catalog_target(name))? {
        None => Ok(()),
        Some(job) => Err(held(&job, &job.db_name, &format!("catalog {name}"), span)),
    }
}

/// "`what` is being restored", for what a restore creates outside tables.
fn held(job: &JobRow, db: &str, what: &str, span: Span) -> EngineError {
    EngineError::at(
        Problem::new(
            Code::Restoring,
            span,
            format!("{what} is being restored; it cannot be created or dropped now"),
        )
        .label(format!("being restored by RESTORE job {}", job.id))
        .help(what_to_do(job, db)),
    )
}

/// Refuses dropping a database a restore creates or replaces objects in.
pub fn database_not_restoring(tx: &Reader<'_>, db: &str, span: Span) -> Result<()> {
    match tx.database_has_targets(db)? {
        None => Ok(()),
        Some(job) => Err(EngineError::at(
            Problem::new(
                Code::Restoring,
                span,
                format!(
                    "database {db} is being restored by RESTORE job {} ({}); it cannot be dropped",
                    job.id, job.label
                ),
            )
            .label("being restored")
            .help(what_to_do(&job, db)),
        )),
    }
}

fn refused(job: &JobRow, db: &str, name: &str, change: Change, span: Span) -> EngineError {
    // StarRocks' own wording where it has one.
    let message = match change {
        Change::Load => format!("Table {name} is in restore process. Can not load into it"),
        Change::Drop => format!("The table [{name}]'s state is RESTORE, cannot be dropped"),
        Change::Alter | Change::Truncate | Change::Refresh => {
            format!("Table [{name}]'s state is not NORMAL. Do not allow doing ALTER ops")
        }
        Change::Create => format!("{db}.{name} is being restored; it cannot be created"),
    };
    EngineError::at(
        Problem::new(Code::Restoring, span, message)
            .label(format!("being restored by RESTORE job {}", job.id))
            .help(what_to_do(job, db)),
    )
}

fn what_to_do(job: &JobRow, db: &str) -> String {
    if job.process.is_alive() {
        format!(
            "RESTORE job {} ({}) owns it until it ends: wait for it (SHOW RESTORE FROM {db}) or stop it with CANCEL RESTORE FROM {db}",
            job.id, job.label
        )
    } else {
        format!(
            "RESTORE job {} ({}) was interrupted (its process died) and still owns it: finish it with `srbackup resume {}` or undo it with CANCEL RESTORE FROM {db}",
            job.id, job.label, job.id
        )
    }
}
