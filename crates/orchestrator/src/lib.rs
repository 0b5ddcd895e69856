//! The orchestrator: the only part of netcanary that talks to the Kubernetes API.
//!
//! # Layout
//! - [`pods`]: the probe and target pods, built to the safety rules.

pub mod pods;
