//! Repositories: where snapshots live.
//!
//! - [`config`] turns a CREATE REPOSITORY statement into the backend it means (S3, MinIO, GCS
//!   through S3, HDFS, local), checking every property, without contacting anything.
//! - [`store`] opens that backend as an `object_store` client.
//! - [`format`] is repository format v1 (docs/repository-format.md): keys, format file,
//!   manifests, and the checks on everything read back.
//! - This module's [`Repository`] moves data: content-addressed objects (create-if-absent,
//!   streamed, multipart when large, verified on the way back), manifests written last, the
//!   snapshot listing.
//! - [`gc`] deletes snapshots and the objects no snapshot needs, under leases that keep it
//!   from racing a backup or restore that uses the same repository; [`retention`] decides
//!   which snapshots a `forget` keeps (restic's rules).

pub mod config;
#[cfg(feature = "engine")]
pub mod confined;
#[cfg(feature = "engine")]
pub mod crypto;
#[cfg(feature = "faults")]
pub mod faults;
#[cfg(feature = "formats")]
pub mod format;
#[cfg(feature = "engine")]
pub mod gc;
#[cfg(feature = "engine")]
pub mod registry;
#[cfg(feature = "engine")]
mod repository;
#[cfg(feature = "engine")]
pub mod retention;
#[cfg(feature = "engine")]
mod retry;
#[cfg(feature = "engine")]
pub mod starrocks;
#[cfg(feature = "engine")]
pub mod store;
#[cfg(feature = "engine")]
mod sts;
#[cfg(feature = "engine")]
mod transfer;

pub use config::{Backend, Encryption, RepositoryConfig, S3Credentials, S3Flavor, Secret, resolve};
#[cfg(feature = "formats")]
pub use format::{Encoding, FormatError, Manifest, Sha256, SnapshotId};
#[cfg(feature = "engine")]
pub use repository::*;
#[cfg(feature = "engine")]
pub use transfer::{Uploaded, VerifyReport};
