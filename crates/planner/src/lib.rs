//! netcanary's probe planner: pure code that decides which probe pods a run starts and
//! which connections they try, so that a bounded number of probes exercises every rule
//! that should allow traffic and every isolation that should deny it.
//!
//! # Layout
//! - [`mirror`]: which labels a probe pod copies from the workload it stands in for.
//! - [`select`]: the budgeted choice of probes (its `cluster_rules` module: witnesses for
//!   the rules of ClusterNetworkPolicy, AdminNetworkPolicy and BaselineAdminNetworkPolicy;
//!   its `intent` module: a probe for every statement of declared intent).
//! - `budget`: the probe pods a plan starts and the probes each source pod sends, which
//!   is what its budget counts.
//! - [`wall_time`]: what a plan's probing and the whole run take at worst, and how many
//!   probes a source pod may send in a round.
//! - [`plan`]: what a plan holds, and coverage.
//! - [`paths`]: each probe to a target pod once per path (pod, service, dns).
//! - [`probe_pods`]: the probe pods once they exist, as the engine judges them, and the
//!   enforcement canary.

mod budget;
pub mod mirror;
pub mod paths;
pub mod plan;
pub mod probe_pods;
pub mod select;
pub mod wall_time;

pub use plan::{Coverage, Destination, IntentMark, Mirror, Plan, PlannedProbe, ProbePath, Purpose};
pub use probe_pods::{Placement, ProbePodCluster, add_canary};
pub use select::{DEFAULT_MAX_PROBE_PODS, DEFAULT_MAX_PROBES, NamespaceFilter, Options, plan};
pub use wall_time::{Timing, WallTime};
