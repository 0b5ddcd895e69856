//! `NetcanaryIntent` objects, from intent files or the API server, to the engine's intent
//! statements, with the CRD's validation and more: every problem names the file, the
//! intent, the statement's index and the field, so a typo never becomes a statement that
//! silently checks nothing.

use std::collections::HashSet;
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use netcanary_policy::intent::{Expect, PodSet, Statement};
use netcanary_policy::port::PortProto;
use serde::Deserialize;
use serde_json::Value;

use crate::convert::{self, Problems, Severity};
use crate::manifest::{Diagnostic, collect_files, typed};

/// The API group and version `NetcanaryIntent` is served in.
pub const INTENT_API_VERSION: &str = "netcanary.io/v1alpha1";
pub const INTENT_KIND: &str = "NetcanaryIntent";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    /// Read one by one, so that every statement's problems are reported.
    statements: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    name: Option<String>,
    from: Option<RawPodSet>,
    to: Option<RawPodSet>,
    ports: Option<Vec<RawPort>>,
    expect: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPodSet {
    namespace_selector: Option<LabelSelector>,
    pod_selector: Option<LabelSelector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    port: Value,
    protocol: Option<String>,
}

/// The statements of one `NetcanaryIntent` object; `None` when it has errors (a statement
/// that does not say what it means checks nothing, so the whole intent is refused).
pub fn intent(value: &Value, problems: &mut Problems) -> Option<Vec<Statement>> {
    let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    if name.is_empty() {
        problems.error("metadata.name", "is required");
    }
    let Some(spec) = value.get("spec") else {
        problems.error("spec", "is required: it holds the statements");
        return None;
    };
    let spec: Spec = prefixed(typed::<Spec>(spec.clone(), &mut *problems), "spec", problems)?;
    if spec.statements.is_empty() {
        problems.error("spec.statements", "must hold at least one statement");
    }
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (index, raw) in spec.statements.into_iter().enumerate() {
        let path = format!("spec.statements[{index}]");
        let Some(raw) = prefixed(typed::<RawStatement>(raw, &mut *problems), &path, problems) else { continue };
        if let Some(statement_name) = &raw.name
            && !names.insert(statement_name.clone())
        {
            problems.error(format!("{path}.name"), format!("{statement_name:?} is the name of an earlier statement"));
        }
        if let Some(statement) = statement(&name, index, raw, &path, problems) {
            out.push(statement);
        }
    }
    (!problems.has_errors()).then_some(out)
}

/// Moves the fields of problems added by `typed` on a part of the object under `prefix`.
fn prefixed<T>(parsed: Option<T>, prefix: &str, problems: &mut Problems) -> Option<T> {
    if parsed.is_none()
        && let Some(last) = problems.list.last_mut()
    {
        last.field = if last.field.is_empty() { prefix.to_string() } else { format!("{prefix}.{}", last.field) };
    }
    parsed
}

fn statement(intent: &str, index: usize, raw: RawStatement, path: &str, problems: &mut Problems) -> Option<Statement> {
    let expect = match raw.expect.as_deref() {
        Some("allow") => Some(Expect::Allow),
        Some("deny") => Some(Expect::Deny),
        Some(other) => {
            problems.error(format!("{path}.expect"), format!("unsupported value {other:?}: use \"allow\" or \"deny\""));
            None
        }
        None => {
            problems.error(format!("{path}.expect"), "is required: \"allow\" or \"deny\"");
            None
        }
    };
    let mut side = |raw: Option<RawPodSet>, key: &str| match raw {
        Some(set) => Some(PodSet {
            namespaces: convert::selector(
                set.namespace_selector.as_ref(),
                &format!("{path}.{key}.namespaceSelector"),
                problems,
            ),
            pods: convert::selector(set.pod_selector.as_ref(), &format!("{path}.{key}.podSelector"), problems),
        }),
        None => {
            problems.error(
                format!("{path}.{key}"),
                "is required: give namespaceSelector and/or podSelector ({} selects every pod)",
            );
            None
        }
    };
    let from = side(raw.from, "from");
    let to = side(raw.to, "to");
    let ports = ports(raw.ports.unwrap_or_default(), path, problems);
    Some(Statement { intent: intent.to_string(), index, name: raw.name, from: from?, to: to?, ports, expect: expect? })
}

fn ports(raw: Vec<RawPort>, path: &str, problems: &mut Problems) -> Vec<PortProto> {
    if raw.is_empty() {
        problems.error(format!("{path}.ports"), "must list at least one port, such as {port: 5432, protocol: TCP}");
    }
    let mut out = Vec::new();
    for (i, port) in raw.into_iter().enumerate() {
        let field = format!("{path}.ports[{i}]");
        let number = port.port.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|&n| n != 0);
        let Some(number) = number else {
            problems.error(
                format!("{field}.port"),
                format!("{} must be a port number from 1 to 65535 (intent does not take named ports)", port.port),
            );
            continue;
        };
        let protocol = match port.protocol.as_deref() {
            None => netcanary_policy::Protocol::Tcp,
            Some(text) => match netcanary_policy::Protocol::parse(text) {
                Some(protocol) => protocol,
                None => {
                    problems.error(
                        format!("{field}.protocol"),
                        format!("unsupported protocol {text:?}: use \"TCP\", \"UDP\" or \"SCTP\""),
                    );
                    continue;
                }
            },
        };
        let port = PortProto::new(number, protocol);
        if out.contains(&port) {
            problems.warn(field, format!("{port} is listed twice"));
        } else {
            out.push(port);
        }
    }
    out
}

/// Statements read from intent files, and every problem found.
#[derive(Debug, Default)]
pub struct LoadedIntent {
    pub statements: Vec<Statement>,
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadedIntent {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// Reads `NetcanaryIntent` objects from files and folders (YAML or JSON, several documents
/// and `kind: List` as `kubectl get netcanaryintents -o yaml` prints). Any other kind is
/// an error: an intent file holds intent only.
pub fn load_intent_paths(paths: &[PathBuf]) -> LoadedIntent {
    let mut reader = Reader::default();
    for path in paths {
        let mut files = Vec::new();
        if let Err(e) = collect_files(path, &mut files) {
            reader.report(&path.display().to_string(), None, None, Severity::Error, format!("cannot read: {e}"));
        }
        for file in files {
            let source = file.display().to_string();
            match std::fs::read_to_string(&file) {
                Ok(text) => reader.read_str(&source, &text),
                Err(e) => reader.report(&source, None, None, Severity::Error, format!("cannot read: {e}")),
            }
        }
    }
    reader.loaded
}

/// Reads intent from one file's text; `source` names it in diagnostics.
pub fn load_intent_str(source: &str, text: &str) -> LoadedIntent {
    let mut reader = Reader::default();
    reader.read_str(source, text);
    reader.loaded
}

#[derive(Default)]
struct Reader {
    loaded: LoadedIntent,
    /// Intent names already read, with their file.
    seen: std::collections::HashMap<String, String>,
}

impl Reader {
    fn read_str(&mut self, source: &str, text: &str) {
        if let Err((label, message)) =
            crate::manifest::read_documents(source, text, |label, value| self.value(source, label, value))
        {
            self.report(source, label, None, Severity::Error, message);
        }
    }

    fn value(&mut self, source: &str, label: &str, value: Value) {
        if value.is_null() {
            return;
        }
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind == "List" || kind == "NetcanaryIntentList" {
            let items = value.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            for (i, item) in items.into_iter().enumerate() {
                self.value(source, &format!("{label} items[{i}]"), item);
            }
            return;
        }
        let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        if kind != INTENT_KIND || api_version != INTENT_API_VERSION {
            let message = format!(
                "not intent: an intent file holds {INTENT_API_VERSION} {INTENT_KIND} objects only (this is {} {})",
                if api_version.is_empty() { "no apiVersion" } else { api_version },
                if kind.is_empty() { "no kind" } else { kind },
            );
            return self.report(source, Some(label.to_string()), Some("kind"), Severity::Error, message);
        }
        let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let object = format!("{INTENT_KIND} {name}");
        let mut problems = Problems::default();
        let statements = intent(&value, &mut problems);
        if let Some(first) = self.seen.insert(name.clone(), source.to_string()) {
            problems.error("metadata.name", format!("{name:?} is also the name of an intent in {first}"));
        }
        for p in problems.list {
            self.report(source, Some(object.clone()), Some(&p.field), p.severity, p.message);
        }
        self.loaded.statements.extend(statements.into_iter().flatten());
    }

    fn report(&mut self, file: &str, object: Option<String>, field: Option<&str>, severity: Severity, message: String) {
        self.loaded.diagnostics.push(Diagnostic::new(severity, file, object, field, message));
    }
}
