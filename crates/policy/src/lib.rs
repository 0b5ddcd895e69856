//! netcanary's policy engine: what Kubernetes NetworkPolicy allows, exactly, and why.
//!
//! Pure code: no I/O, no async runtime, no API client, no Kubernetes object types. The
//! `netcanary-objects` crate turns Kubernetes objects and manifest files into the [`model`]
//! the engine reads; the orchestrator feeds it objects it fetched, `analyze` files.
//!
//! # Layout
//! - [`selector`], [`port`]: label selectors and ports, with the API's validation.
//! - [`model`]: the cluster as the engine sees it (endpoints, namespaces, policies).
//! - [`cluster_policy`]: ClusterNetworkPolicy and the v1alpha1 Admin/Baseline policies.
//! - [`evaluate`]: the reference, explained evaluation of one connection.
//! - [`classes`], [`matrix`]: the same answers in bulk, over equivalence classes.
//! - [`verdict`]: what an answer carries.
//! - [`intent`]: declared intent (what must or must never connect), checked against policy.
//! - [`analysis`]: sources, destinations and ports in scope (addresses outside the cluster
//!   included), with a matrix per port; endpoints found by the names users give.

pub mod analysis;
pub mod classes;
pub mod cluster_policy;
pub mod evaluate;
pub mod intent;
pub mod matrix;
pub mod model;
pub mod port;
pub mod selector;
pub mod verdict;

pub use analysis::{Analysis, Block, Counts, PortSummary, ResolveError, Scope, Summary, resolve};
pub use classes::Classes;
pub use cluster_policy::{
    Action, ClusterPeer, ClusterPolicy, ClusterPolicyKind, ClusterPort, ClusterRule, ClusterRuleRef, Subject,
};
pub use matrix::{Matrix, PolicyIndex, SourceRows};
pub use model::{
    Cluster, Direction, Endpoint, EndpointKind, IpBlock, KubeletProbe, NamespaceScope, Node, Peer, Policy,
    ProbeHandler, Rule,
};
pub use port::{ContainerPort, PortProto, Protocol};
pub use selector::{Labels, Selector};
pub use verdict::{Decision, DirectionVerdict, Note, RuleHit, RuleMiss, RuleRef, Tier, TierStep, Verdict};
