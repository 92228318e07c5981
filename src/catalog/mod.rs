//! The catalog: every database, table, partition, tablet, rowset, view, materialized view,
//! function and external catalog of a cluster, in one SQLite file (WAL mode).
//!
//! Every change is one SQLite transaction ([`Catalog::write`]), so a crash leaves the catalog
//! at the state before or after a change, never between. Readers in other processes see a
//! consistent state (WAL snapshots); writers wait up to [`BUSY_TIMEOUT`] for the write lock and
//! then get [`CatalogError::Busy`]. This module knows nothing of data files' contents, DataFusion
//! or repositories.

pub mod schema;
#[cfg(feature = "engine")]
mod store;

pub use schema::*;
#[cfg(feature = "engine")]
pub use store::*;
