//! Where each object came from, and which rules it switches off. The engine's model keeps
//! neither (it holds only what evaluation needs), so the same files are read a second
//! time for `metadata` alone; everything else comes from the model. Problems are not
//! reported here: the manifest loader reports them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::Finding;
use crate::lines::FileLines;

/// The annotation that switches rules off for an object, or for a whole namespace when on
/// the Namespace: a comma-separated list of rule ids.
pub const DISABLE_ANNOTATION: &str = "netcanary.io/lint-disable";

#[derive(Clone, Debug, Default)]
struct Source {
    /// `None` for an object read from the cluster.
    file: Option<String>,
    disabled: BTreeSet<String>,
}

/// Object metadata the model does not carry, by (kind, namespace, name); a Namespace's
/// namespace is its own name.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    objects: HashMap<(String, String, String), Source>,
    default_namespace: String,
    /// Each file's text, parsed again for positions only where there are findings.
    texts: HashMap<String, String>,
}

impl Sources {
    pub fn new(default_namespace: &str) -> Self {
        Self { objects: HashMap::new(), default_namespace: default_namespace.to_string(), texts: HashMap::new() }
    }

    /// Reads the same files as [`netcanary_objects::load_paths`]: every `.yaml`, `.yml` and
    /// `.json` under each folder, and files named explicitly whatever their extension.
    pub fn read_paths(paths: &[PathBuf], default_namespace: &str) -> Self {
        let mut sources = Self::new(default_namespace);
        for path in paths {
            let mut files = Vec::new();
            collect_files(path, &mut files);
            for file in files {
                if let Ok(text) = std::fs::read_to_string(&file) {
                    sources.read_str(&file.display().to_string(), &text);
                }
            }
        }
        sources
    }

    /// Reads one file's text; `file` names it in findings.
    pub fn read_str(&mut self, file: &str, text: &str) {
        self.texts.insert(file.to_string(), text.to_string());
        if file.ends_with(".json") {
            if let Ok(value) = serde_json::from_str::<Value>(text) {
                self.value(file, value);
            }
            return;
        }
        for document in serde_norway::Deserializer::from_str(text) {
            match Value::deserialize(document) {
                Ok(value) => self.value(file, value),
                Err(_) => return,
            }
        }
    }

    fn value(&mut self, file: &str, value: Value) {
        let Some(kind) = value.get("kind").and_then(Value::as_str) else { return };
        if kind.ends_with("List") {
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty()).map(str::to_string);
            if let Some(Value::Array(items)) = value.get("items") {
                for item in items {
                    let mut item = item.clone();
                    if let (Some(k), Some(fields)) = (&item_kind, item.as_object_mut()) {
                        fields.entry("kind").or_insert_with(|| Value::from(k.as_str()));
                    }
                    self.value(file, item);
                }
            }
            return;
        }
        let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
        let Some(name) = text("/metadata/name") else { return };
        let namespace = match kind {
            "Namespace" => name,
            _ => text("/metadata/namespace").unwrap_or(&self.default_namespace),
        };
        let disabled = text(&format!("/metadata/annotations/{}", DISABLE_ANNOTATION.replace('/', "~1")));
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        // The loader uses the later of two duplicates; so does this.
        self.objects.insert(key, Source { file: Some(file.to_string()), disabled: rule_ids(disabled) });
    }

    /// Adds an object read from the cluster (no file), with its [`DISABLE_ANNOTATION`]
    /// if it has one. A Namespace's namespace is its own name.
    pub fn add_object(&mut self, kind: &str, namespace: &str, name: &str, disable: Option<&str>) {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        self.objects.insert(key, Source { file: None, disabled: rule_ids(disable) });
    }

    fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<&Source> {
        self.objects.get(&(kind.to_string(), namespace.to_string(), name.to_string()))
    }

    /// The file an object was read from; `None` for one read from the cluster.
    pub fn file_of(&self, kind: &str, namespace: &str, name: &str) -> Option<&str> {
        self.get(kind, namespace, name).and_then(|s| s.file.as_deref())
    }

    /// Sets each finding's line: its field's in the file its object was read from.
    pub fn locate(&self, findings: &mut [Finding]) {
        let mut files: HashMap<&str, FileLines> = HashMap::new();
        for finding in findings {
            let Some(file) = finding.file.as_deref() else { continue };
            let Some(text) = self.texts.get(file) else { continue };
            let lines = files.entry(file).or_insert_with_key(|_| FileLines::parse(text, &self.default_namespace));
            let namespace = finding.namespace.as_deref().unwrap_or(&finding.name);
            finding.line = lines.line(&finding.kind, namespace, &finding.name, finding.field.as_deref());
        }
    }

    /// Whether the object or its namespace switches `rule` off.
    pub fn disables(&self, rule: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let off = |source: Option<&Source>| source.is_some_and(|s| s.disabled.contains(rule));
        off(self.get(kind, namespace, name)) || off(self.get("Namespace", namespace, namespace))
    }

    /// Whether the input declares any Namespace object: only then does a namespaceSelector
    /// that matches no namespace mean something.
    pub fn has_namespaces(&self) -> bool {
        self.objects.keys().any(|(kind, _, _)| kind == "Namespace")
    }
}

/// The rule ids of a [`DISABLE_ANNOTATION`] value: comma-separated, any case.
fn rule_ids(list: Option<&str>) -> BTreeSet<String> {
    list.into_iter()
        .flat_map(|list| list.split(','))
        .map(|id| id.trim().to_ascii_uppercase())
        .filter(|id| !id.is_empty())
        .collect()
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out);
        } else if matches!(entry.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(entry);
        }
    }
}
