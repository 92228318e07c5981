//! srbackup: StarRocks-style BACKUP and RESTORE as a statement compiler with reviewable plans.
//!
//! The stages, each in its own module (see ARCHITECTURE.md):
//! - [`sql`]: text → typed statements (pest grammar, AST, diagnostics).
//! - [`catalog`]: the cluster's object model in SQLite.
//! - [`engine`]: tablets as immutable Parquet rowsets, loads, DataFusion queries, pins,
//!   staging and publish, compaction and garbage collection.
//! - [`repo`]: repositories: backends, format v1, snapshots, GC.
//! - [`fe`]: a live StarRocks FE as a target (its catalog, its BACKUP/RESTORE jobs, srbackup's
//!   index of the logical snapshots made there).
//! - [`exec`]: runs plans as jobs (journal, resume, cancel, SHOW BACKUP/RESTORE).
//! - [`plan`]: BACKUP/RESTORE → reviewable plan (resolution, task DAG, JSON, explain).
//! - [`session`]: runs statements against a cluster; [`output`] prints their results.
//! - [`server`]: the same statements over the MySQL protocol (`srbackup serve`).

#[cfg(feature = "formats")]
pub mod catalog;
pub mod code;
#[cfg(feature = "engine")]
pub mod config;
#[cfg(feature = "engine")]
pub mod demo;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod error;
#[cfg(feature = "engine")]
pub mod exec;
#[cfg(feature = "engine")]
pub mod fe;
#[cfg(feature = "engine")]
pub mod hashing;
#[cfg(feature = "formats")]
pub mod output;
#[cfg(feature = "formats")]
pub mod plan;
#[cfg(feature = "engine")]
pub mod process;
pub mod repo;
#[cfg(feature = "formats")]
pub mod results;
#[cfg(feature = "wire")]
pub mod server;
#[cfg(feature = "engine")]
pub mod session;
pub mod sql;
