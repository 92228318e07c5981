//! The engine seam: one enum, two clusters. A plan file is for the embedded engine
//! ([`crate::plan::Plan`]: tasks that copy rowset files through object_store) or for a live
//! StarRocks FE ([`crate::plan::native::NativePlan`]: tasks that are StarRocks' own jobs and
//! DDL). `apply` runs either on the target it was made for; each executor knows only its task
//! kinds.

use std::path::Path;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::plan::native::NativePlan;

use super::native::{Cancel, Connector};
use super::progress::Progress;

/// A plan file, read once: for either target.
#[derive(Clone, Debug)]
pub enum AnyPlan {
    Embedded(Box<Plan>),
    StarRocks(Box<NativePlan>),
}

impl AnyPlan {
    /// Reads a plan file of either kind (the `target` field tells them apart).
    pub fn from_json(text: &str) -> std::result::Result<AnyPlan, String> {
        if NativePlan::is_native(text) {
            NativePlan::from_json(text).map(|p| AnyPlan::StarRocks(Box::new(p)))
        } else {
            Plan::from_json(text).map(|p| AnyPlan::Embedded(Box::new(p)))
        }
    }

    /// The plan as a reviewer reads it.
    pub fn explain(&self) -> String {
        match self {
            AnyPlan::Embedded(p) => crate::plan::explain::explain(p),
            AnyPlan::StarRocks(p) => crate::plan::native::explain(p),
        }
    }

    /// The task DAG in Graphviz DOT.
    pub fn dot(&self) -> std::result::Result<String, String> {
        match self {
            AnyPlan::Embedded(p) => crate::plan::graph::TaskGraph::new(&p.tasks).map(|g| g.dot()),
            AnyPlan::StarRocks(p) => Ok(crate::plan::native::dot(p)),
        }
    }

    /// Which target the plan was made for, in words.
    pub fn target(&self) -> String {
        match self {
            AnyPlan::Embedded(_) => "the embedded engine".into(),
            AnyPlan::StarRocks(p) => p.cluster.clone(),
        }
    }
}

/// Where a plan runs.
pub enum Target<'a> {
    /// The embedded engine (a cluster directory).
    Embedded {
        engine: &'a mut Engine,
        progress: &'a dyn Progress,
        options: super::StartOptions<'a>,
    },
    /// A live StarRocks FE; runs keep their journals under `state`.
    StarRocks {
        connector: &'a Connector,
        state: &'a Path,
        cancel: &'a Cancel,
    },
}

/// What a run ended as, per target.
pub enum Applied {
    Embedded(Box<super::Outcome>),
    StarRocks(super::native::Outcome),
}

/// Applies a plan on its target: refused when the plan is for the other one, stale (the
/// cluster changed since) or edited (it differs from the plan of its own statements now).
pub async fn apply(target: Target<'_>, plan: &AnyPlan) -> Result<Applied> {
    match (target, plan) {
        (
            Target::Embedded {
                engine,
                progress,
                options,
            },
            AnyPlan::Embedded(p),
        ) => Ok(Applied::Embedded(Box::new(
            super::apply(engine, p, progress, options).await?,
        ))),
        (
            Target::StarRocks {
                connector,
                state,
                cancel,
            },
            AnyPlan::StarRocks(p),
        ) => Ok(Applied::StarRocks(
            super::native::apply(connector, p, state, cancel).await?,
        )),
        (Target::Embedded { .. }, AnyPlan::StarRocks(p)) => Err(Error::invalid(
            format!("the plan is for StarRocks at {}", p.cluster),
            Some(&format!("give --cluster {}", p.cluster)),
        )),
        (Target::StarRocks { connector, .. }, AnyPlan::Embedded(_)) => Err(Error::invalid(
            format!(
                "the plan is for the embedded engine, not for StarRocks at {}",
                connector.url
            ),
            Some("give --cluster the cluster directory it was made for"),
        )),
    }
}
