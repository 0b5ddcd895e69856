//! The orchestrator: the only part of netcanary that talks to the Kubernetes API.
//!
//! # Layout
//! - [`snapshot`]: what policy evaluation needs from the cluster, read with paging.
//! - [`pods`]: the probe and target pods, built to the safety rules.
//! - [`error`]: one error type with bounded metric labels.

pub mod error;
pub mod pods;
pub mod snapshot;
