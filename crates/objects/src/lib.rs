//! Kubernetes objects and manifests to the policy engine's model: the edge between what
//! the API server (or a manifest file) holds and what `netcanary-policy` evaluates.
//!
//! The orchestrator converts the objects it lists; `analyze` loads files. Both get the API
//! server's defaulting and validation, and every problem names its field.
//!
//! # Layout
//! - [`cluster_policy`]: ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy
//!   and Nodes to the model, with their CRDs' validation.
//! - [`convert`]: Kubernetes objects to the model, with the API server's defaulting.
//! - [`intent`]: `NetcanaryIntent` objects and intent files to intent statements.
//! - [`manifest`]: YAML/JSON files and folders to a [`Cluster`](netcanary_policy::Cluster),
//!   with located diagnostics; field names checked on the raw manifest (`shape`).
//! - [`unevaluated`]: the kinds that change who reaches whom but are not evaluated, which
//!   `analyze` warns about and a run counts in the cluster.

pub mod cluster_policy;
pub mod convert;
pub mod intent;
pub mod manifest;
mod shape;
pub mod unevaluated;

pub use convert::{FieldProblem, Problems, Severity};
pub use intent::{LoadedIntent, load_intent_paths, load_intent_str};
pub use manifest::{Diagnostic, Loaded, Loader, load_paths};
pub use unevaluated::{UNEVALUATED_KINDS, UnevaluatedKind};
