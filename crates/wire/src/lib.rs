//! The contract between the orchestrator and the agent, as plain data: the probe plan it
//! sends, the results it gets back, and the outcome vocabulary both speak.
//!
//! No runtime, no sockets, no Kubernetes: the prober builds on these types, the
//! orchestrator writes plans and reads results with them, and the comparator, the reports
//! and the metrics judge and render observations without depending on socket code.
//!
//! # Layout
//! - [`observed`]: what the network did to one probe (`connected`, `timeout`, …) and how
//!   each outcome counts against policy.
//! - [`plan`]: the agent's plan, as the orchestrator writes it.
//! - [`plan_env`]: how a plan, however long, travels in a probe pod's environment.
//! - [`pace`]: how long an agent may take over a plan, for its watchdog and the
//!   orchestrator's time budget alike.
//! - [`report`]: the agent's results, as it prints them.
//! - [`termination_log`]: the compact form of the results that fits a pod's termination
//!   message, and its decoder.

pub mod observed;
pub mod pace;
pub mod plan;
pub mod plan_env;
pub mod report;
pub mod termination_log;

pub use observed::{Observed, Reachability};
pub use plan::{AgentPlan, AgentProbe, ProbePath, ProbeTarget, Transport};
pub use report::{AgentReport, ProbeResult};
