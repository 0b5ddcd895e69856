//! netcanary's policy engine: what Kubernetes NetworkPolicy allows, exactly, and why.
//!
//! Pure code: no I/O beyond reading manifest files, no async runtime, no API client. The
//! orchestrator feeds it objects it fetched; `analyze` feeds it files.
//!
//! # Layout
//! - [`selector`], [`port`]: label selectors and ports, with the API's validation.
//! - [`model`]: the cluster as the engine sees it (endpoints, namespaces, policies).
//! - [`convert`]: Kubernetes objects to the model, with the API server's defaulting.
//! - [`manifest`]: YAML/JSON files and folders to a [`Cluster`], with located diagnostics.
//! - [`evaluate`]: the reference, explained evaluation of one connection.
//! - [`classes`], [`matrix`]: the same answers in bulk, over equivalence classes.
//! - [`verdict`]: what an answer carries.
//! - [`analysis`]: sources, destinations and ports in scope, with a matrix per port.

pub mod analysis;
pub mod classes;
pub mod convert;
pub mod evaluate;
pub mod manifest;
pub mod matrix;
pub mod model;
pub mod port;
pub mod selector;
pub mod verdict;

pub use analysis::{Analysis, Block, Counts, Scope};
pub use classes::Classes;
pub use manifest::{Diagnostic, Loaded, Loader};
pub use matrix::{Matrix, PolicyIndex};
pub use model::{Cluster, Direction, Endpoint, EndpointKind, IpBlock, NamespaceScope, Peer, Policy, Rule};
pub use port::{ContainerPort, PortProto, Protocol};
pub use selector::{Labels, Selector};
pub use verdict::{DirectionVerdict, RuleHit, RuleMiss, RuleRef, Tier, Verdict};
