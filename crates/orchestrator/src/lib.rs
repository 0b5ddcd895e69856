//! The orchestrator: the only part of netcanary that talks to the Kubernetes API.
//!
//! # Layout
//! - [`snapshot`]: what policy evaluation needs from the cluster, read with paging and
//!   converted by `netcanary-objects`.
//! - [`pods`]: the probe and target pods, built to the safety rules.
//! - [`fence`]: the admission policy that keeps netcanary to those pods, and the run's check
//!   that it is in place.
//! - [`run`]: one verification run, from snapshot to cleanup; the decisions about its
//!   results are the comparator's (`netcanary-verify`).
//! - [`schedule`]: `serve`'s runs on a schedule until told to stop.
//! - [`record`]: the `NetcanaryRun` record and Events.
//! - [`index`]: the snapshot's inputs, converted as objects arrive, so a watch event
//!   updates them in place.
//! - [`watch`]: watch caches that keep `serve`'s snapshot current.
//! - [`retry`]: backoff for API calls that can succeed a moment later.
//! - [`error`]: one error type with bounded metric labels.

pub mod error;
pub mod fence;
pub mod index;
pub mod pods;
pub mod record;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod snapshot;
pub mod watch;
