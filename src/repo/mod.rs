//! Repositories: where snapshots live (issue 5 is building this stage).
//!
//! Today: [`config::resolve`] turns a CREATE REPOSITORY statement into the backend it means
//! (S3, MinIO, GCS through S3, HDFS, local), checking every property and masking credentials,
//! without contacting anything. The storage client, the repository format (see
//! docs/repository-format.md) and SHOW/DROP SNAPSHOT come next.

pub mod config;

pub use config::{Backend, RepositoryConfig, S3Credentials, S3Flavor, Secret, resolve};
