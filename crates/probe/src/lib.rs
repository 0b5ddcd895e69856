//! The part of netcanary that touches the network: the **agent** that runs a probe plan
//! inside a probe pod, and the **target** that answers inside a target pod.
//!
//! This crate knows nothing about Kubernetes. It answers one question per probe — did the
//! network let this packet through, block it, or did the probe itself break? — and reports
//! the answer as data ([`Observed`]), never as an error: `Err` means a probe could not run.
//! The plan it reads and the results it writes are the plain types of `netcanary-wire`.
//!
//! # Layout
//! - [`plan`]: the plan as the agent reads it, validated probe by probe.
//! - [`observation`]: one probe's outcome and detail, and the OS-error classification behind it.
//! - [`refusal`]: whether a refusal came from the destination or from a filter that rejected it.
//! - [`tcp`], [`udp`], [`dns`]: one probe of each kind, each bounded by its own deadline.
//! - [`resolve`]: host names resolved before probing (a failure is `error`, never `blocked`).
//! - [`agent`]: runs a whole plan concurrently under a global watchdog.
//! - [`header`]: the probe header and nonce that the target echoes.
//! - [`target`]: the server that accepts TCP and echoes netcanary's UDP datagrams.
//! - [`fd_limit`]: raises the open-file limit so that thousands of probes can run at once.

pub mod agent;
pub mod dns;
pub mod fd_limit;
pub mod header;
pub mod observation;
pub mod plan;
pub mod refusal;
pub mod resolve;
pub mod target;
pub mod tcp;
pub mod udp;

pub use agent::run_plan;
pub use netcanary_wire::{AgentReport, Observed, ProbeResult};
pub use observation::Observation;
pub use plan::{PlanEntry, PlanError, ProbePlan, ProbeSpec};
pub use target::{Listeners, ServeStats, serve};
