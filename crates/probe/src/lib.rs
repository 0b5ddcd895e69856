//! The part of netcanary that touches the network: the **agent** that runs a probe plan
//! inside a probe pod, and the **target** that answers inside a target pod.
//!
//! This crate knows nothing about Kubernetes. It answers one question per probe — did the
//! network let this packet through, block it, or did the probe itself break? — and reports
//! the answer as data ([`Observed`]), never as an error: `Err` means a probe could not run.
//!
//! # Layout
//! - [`plan`]: the probe plan (the JSON contract) and its per-probe validation.
//! - [`observed`]: the outcome vocabulary and the OS-error classification behind it.
//! - [`tcp`], [`udp`], [`dns`]: one probe of each kind, each bounded by its own deadline.
//! - [`resolve`]: host names resolved before probing (a failure is `error`, never `blocked`).
//! - [`agent`]: runs a whole plan concurrently under a global watchdog.
//! - [`wire`]: the probe header and nonce that the target echoes.
//! - [`target`]: the server that accepts TCP and echoes netcanary's UDP datagrams.
//! - [`termination_log`]: the compact form written to the termination log, and its decoder.
//! - [`fd_limit`]: raises the open-file limit so that thousands of probes can run at once.

pub mod agent;
pub mod dns;
pub mod fd_limit;
pub mod observed;
pub mod plan;
pub mod resolve;
pub mod target;
pub mod tcp;
pub mod termination_log;
pub mod udp;
pub mod wire;

pub use agent::{AgentReport, ProbeResult, run_plan};
pub use observed::{Observed, Outcome};
pub use plan::{PlanError, PlannedProbe, ProbePlan, ProbeSpec};
pub use target::{Listeners, ServeStats, serve};
