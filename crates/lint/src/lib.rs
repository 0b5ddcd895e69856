//! `netcanary lint`: audits NetworkPolicy as written, before anything is probed. Every
//! finding that is about reachability is computed by the policy engine (who selects
//! whom, whether a connection is allowed), never by matching YAML.
//!
//! Pure code: no I/O besides reading the manifests' metadata, no runtime, no API client.
//!
//! # Layout
//! - [`rules`]: every rule's id, level, title and help: the stable catalogue.
//! - [`check`]: the rules over the engine's model, and switching them off.
//! - [`sources`]: the files objects came from and the rules their annotations disable.
//! - [`lines`]: the line of an object's field in its file.
//! - [`render`]: text, JSON and SARIF output.

pub mod check;
pub mod lines;
pub mod render;
pub mod rules;
pub mod sources;

pub use check::{Options, lint};
pub use rules::{Level, RULES, RuleInfo, rule};
pub use sources::{DISABLE_ANNOTATION, Sources};

use serde::Serialize;

/// One thing lint found, about one object and (where it can say) one field of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Level,
    /// `None` only for findings about cluster-scoped objects.
    pub namespace: Option<String>,
    pub kind: String,
    pub name: String,
    /// `spec.ingress[0].from[1].namespaceSelector`; `None` for the object as a whole.
    pub field: Option<String>,
    pub file: Option<String>,
    /// The line of the field (or of its nearest parent written in the file, or of the
    /// object) in `file`; `None` when the object was not read from a file.
    pub line: Option<u32>,
    pub message: String,
    pub fix: String,
}
