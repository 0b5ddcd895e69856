//! The orchestrator: the only part of netcanary that talks to the Kubernetes API.
//!
//! # Layout
//! - [`snapshot`]: what policy evaluation needs from the cluster (the cluster policy tiers
//!   where their CRDs are served), read with paging and converted by `netcanary-objects`.
//! - [`pods`]: the probe and target pods, built to the safety rules.
//! - [`services`]: the Service in front of a target pod, for the service and dns paths.
//! - [`fence`]: the admission policy that keeps netcanary to those pods, and the run's check
//!   that it is in place.
//! - [`run`]: one verification run, from snapshot to cleanup; the decisions about its
//!   results are the comparator's (`netcanary-verify`).
//! - [`schedule`]: `serve`'s runs on a schedule until told to stop.
//! - [`record`]: the `NetcanaryRun` record and Events.
//! - [`policy_report`]: the run's results as PolicyReports, for Policy Reporter.
//! - [`index`]: the snapshot's inputs, converted as objects arrive, so a watch event
//!   updates them in place.
//! - [`watch`]: watch caches that keep `serve`'s snapshot current (a cluster policy kind's
//!   from the first run that finds it served).
//! - [`retry`]: backoff for API calls that can succeed a moment later.
//! - [`error`]: one error type with bounded metric labels.

pub mod error;
pub mod fence;
pub mod index;
pub mod pods;
pub mod policy_report;
pub mod record;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod services;
pub mod snapshot;
pub mod watch;
