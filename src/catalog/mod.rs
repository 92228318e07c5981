//! The catalog: every database, table, partition, tablet, rowset, view, materialized view,
//! function, external catalog, repository and job of a cluster, in one SQLite file (WAL mode).
//!
//! - `schema`: the object model (table schemas, partitioning, MVs, views, functions, external
//!   catalogs), stored as JSON inside the catalog;
//! - `job`: job kinds, StarRocks' job states and statuses;
//! - `store` (feature `engine`): the SQLite store and its API. Every change is one SQLite
//!   transaction ([`Catalog::write`] hands it a typed [`Tx`]), so a crash leaves the catalog at
//!   the state before or after a change, never between. No SQL exists outside this module.
//!
//! This module knows nothing of data files' contents, DataFusion or repositories.

pub mod job;
pub mod schema;
#[cfg(feature = "engine")]
mod store;

pub use job::{JobKind, JobState, JobStatus};
pub use schema::*;
#[cfg(feature = "engine")]
pub use store::{
    AccountRow, BUILTIN_ROLES, BUSY_TIMEOUT, Catalog, CatalogError, Claim, DatabaseRow, GrantRow,
    Held, Holder, JobRow, LOCKED, NewJob, NewSchedule, ObjectRow, ObjectState, PartitionRow,
    Reader, RepositoryRow, Result, RowsetRow, RunState, SCHEMA_VERSION, ScheduleRow,
    ScheduleRunRow, TabletRow, Tx, is_builtin_role,
};
