//! srbackup: StarRocks-style BACKUP and RESTORE as a statement compiler with reviewable plans.
//!
//! The stages, each in its own module (see ARCHITECTURE.md):
//! - [`sql`]: text → typed statements (pest grammar, AST, diagnostics).

pub mod sql;
