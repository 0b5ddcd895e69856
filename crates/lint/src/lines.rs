//! Where in a manifest file an object and its fields are: the line of every key and list
//! item, found with a YAML parser that keeps positions (the manifest reader does not, as
//! serde's data model has no place for them). Only files with findings are parsed here.
//!
//! A finding's field (`spec.ingress[0].from[1].namespaceSelector`) is looked up as a path
//! from the object's root; a field the file does not spell out (a defaulted one, or a
//! selector path like `ports[name=metrics]`) falls back to its nearest written parent, and
//! at worst to the object's first line.

use std::collections::HashMap;

use granit_parser::{Event, Parser};

/// One step of a path: a mapping key or a list position.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Step {
    Key(String),
    Index(usize),
}

/// The lines of one object: its path steps (from the object's root) to 1-based lines.
#[derive(Debug, Default)]
struct ObjectLines {
    lines: HashMap<Vec<Step>, u32>,
}

impl ObjectLines {
    /// The line of `field`, or of its nearest parent the file writes out.
    fn line(&self, field: Option<&str>) -> Option<u32> {
        let mut path = field.map(parse_field).unwrap_or_default();
        loop {
            if let Some(&line) = self.lines.get(&path) {
                return Some(line);
            }
            path.pop()?;
        }
    }
}

/// `spec.ingress[0].from["a.b"]` as steps; parsing stops at a step it cannot name
/// (`[name=metrics]`, `[]`), which leaves the parent.
fn parse_field(field: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rest = field;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            let content = &inner[..end];
            if let Ok(index) = content.parse() {
                steps.push(Step::Index(index));
            } else if let Some(key) = content.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
                steps.push(Step::Key(key.to_string()));
            } else {
                break;
            }
            rest = &inner[end + 1..];
        } else {
            let rest_from = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_from.find(['.', '[']).unwrap_or(rest_from.len());
            if end == 0 {
                break;
            }
            steps.push(Step::Key(rest_from[..end].to_string()));
            rest = &rest_from[end..];
        }
    }
    steps
}

/// The objects of one file by (kind, namespace, name), as the lint's sources key them.
#[derive(Debug, Default)]
pub struct FileLines {
    objects: HashMap<(String, String, String), ObjectLines>,
}

impl FileLines {
    /// Parses a file's text; `default_namespace` is what objects without one are in. A
    /// syntax error ends the parse: objects before it keep their lines.
    pub fn parse(text: &str, default_namespace: &str) -> Self {
        let mut file = FileLines::default();
        for document in documents(text) {
            file.add_document(document, default_namespace);
        }
        file
    }

    /// The line of an object's `field` (its first line when `field` is `None`). A
    /// Namespace's namespace is its own name.
    pub fn line(&self, kind: &str, namespace: &str, name: &str, field: Option<&str>) -> Option<u32> {
        self.objects.get(&(kind.to_string(), namespace.to_string(), name.to_string()))?.line(field)
    }

    fn add_document(&mut self, document: Document, default_namespace: &str) {
        let kind = document.text(&[Step::Key("kind".into())]).unwrap_or_default().to_string();
        if kind.ends_with("List") {
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty()).unwrap_or_default();
            let mut items: HashMap<usize, ObjectLines> = HashMap::new();
            for (path, line) in document.lines {
                if let [Step::Key(items_key), Step::Index(i), rest @ ..] = path.as_slice()
                    && items_key == "items"
                {
                    items.entry(*i).or_default().lines.insert(rest.to_vec(), line);
                }
            }
            for (i, lines) in items {
                let item = |key: &str| {
                    let mut path = vec![Step::Key("items".into()), Step::Index(i)];
                    path.extend(key.split('.').map(|k| Step::Key(k.to_string())));
                    document.texts.get(&path).cloned()
                };
                let kind = item("kind").unwrap_or_else(|| item_kind.to_string());
                self.insert(kind, item("metadata.namespace"), item("metadata.name"), lines, default_namespace);
            }
            return;
        }
        let namespace =
            document.text(&[Step::Key("metadata".into()), Step::Key("namespace".into())]).map(str::to_string);
        let name = document.text(&[Step::Key("metadata".into()), Step::Key("name".into())]).map(str::to_string);
        self.insert(kind, namespace, name, ObjectLines { lines: document.lines }, default_namespace);
    }

    fn insert(
        &mut self,
        kind: String,
        namespace: Option<String>,
        name: Option<String>,
        lines: ObjectLines,
        default_namespace: &str,
    ) {
        let Some(name) = name else { return };
        let namespace = if kind == "Namespace" { name.clone() } else { namespace.unwrap_or(default_namespace.into()) };
        self.objects.insert((kind, namespace, name), lines);
    }
}

/// One YAML document: the line of every key and list item, and the text of the scalars
/// that identify objects (`kind`, `metadata.name`, `metadata.namespace`).
#[derive(Debug, Default)]
struct Document {
    lines: HashMap<Vec<Step>, u32>,
    texts: HashMap<Vec<Step>, String>,
}

impl Document {
    fn text(&self, path: &[Step]) -> Option<&str> {
        self.texts.get(path).map(String::as_str)
    }
}

/// Where the walk is inside a collection.
enum Frame {
    /// A mapping: `key` is the key whose value comes next, `None` when a key comes next.
    Mapping {
        path: Vec<Step>,
        key: Option<String>,
    },
    Sequence {
        path: Vec<Step>,
        next: usize,
    },
}

fn documents(text: &str) -> Vec<Document> {
    let mut out = Vec::new();
    let mut current = Document::default();
    let mut stack: Vec<Frame> = Vec::new();
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        let line = u32::try_from(span.start.line()).unwrap_or(u32::MAX);
        match event {
            Event::DocumentStart(..) => {
                current = Document::default();
                stack.clear();
            }
            Event::DocumentEnd => out.push(std::mem::take(&mut current)),
            Event::Scalar(value, ..) => {
                if let Some(Frame::Mapping { path, key: key @ None }) = stack.last_mut() {
                    let mut at = path.clone();
                    at.push(Step::Key(value.to_string()));
                    current.lines.insert(at, line);
                    *key = Some(value.into_owned());
                    continue;
                }
                if let Some(path) = node_path(&mut stack, &mut current, line) {
                    let identifies = matches!(
                        path.as_slice(),
                        [.., Step::Key(k)] if k == "kind" || k == "name" || k == "namespace"
                    );
                    if identifies {
                        current.texts.insert(path, value.into_owned());
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_mapping = matches!(event, Event::MappingStart(..));
                let path = node_path(&mut stack, &mut current, line).unwrap_or_default();
                stack.push(if is_mapping {
                    Frame::Mapping { path, key: None }
                } else {
                    Frame::Sequence { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Alias(_) => {
                node_path(&mut stack, &mut current, line);
            }
            _ => {}
        }
    }
    out
}

/// The path of a node (a value) starting at `line`, recorded, and the parent moved past it.
/// `None` for a complex mapping key, which has no path.
fn node_path(stack: &mut [Frame], document: &mut Document, line: u32) -> Option<Vec<Step>> {
    let path = match stack.last_mut() {
        None => Vec::new(),
        Some(Frame::Mapping { path, key }) => {
            let mut at = path.clone();
            at.push(Step::Key(key.take()?));
            at
        }
        Some(Frame::Sequence { path, next }) => {
            let mut at = path.clone();
            at.push(Step::Index(*next));
            *next += 1;
            document.lines.insert(at.clone(), line);
            at
        }
    };
    document.lines.entry(path.clone()).or_insert(line);
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# a comment
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db
  namespace: prod
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from:
        - podSelector: {}
        - namespaceSelector:
            matchLabels: {env: dev}
      ports: [{port: 5432}]
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Namespace
    metadata: {name: dev, labels: {\"a.b/c\": x}}
  - kind: Pod
    metadata:
      name: web
    spec:
      containers:
        - name: c
          readinessProbe:
            httpGet: {port: 8080}
";

    #[test]
    fn keys_and_items_have_their_lines() {
        let file = FileLines::parse(FILE, "default");
        let line = |kind, ns, name, field| file.line(kind, ns, name, field);
        assert_eq!(line("NetworkPolicy", "prod", "db", None), Some(2), "the object's first line");
        assert_eq!(line("NetworkPolicy", "prod", "db", Some("spec.podSelector")), Some(8));
        assert_eq!(line("NetworkPolicy", "prod", "db", Some("spec.ingress[0]")), Some(10));
        assert_eq!(line("NetworkPolicy", "prod", "db", Some("spec.ingress[0].from[1].namespaceSelector")), Some(12));
        assert_eq!(line("NetworkPolicy", "prod", "db", Some("spec.ingress[0].ports[0].port")), Some(14));
        assert_eq!(
            line("NetworkPolicy", "prod", "db", Some("spec.egress[0]")),
            Some(7),
            "a field not written falls back to its nearest parent"
        );
        assert_eq!(line("Namespace", "dev", "dev", None), Some(19), "a List item, at its own line");
        assert_eq!(line("Pod", "default", "web", None), Some(22));
        assert_eq!(line("Namespace", "dev", "dev", Some("metadata.labels[\"a.b/c\"]")), Some(21));
        assert_eq!(
            line("Pod", "default", "web", Some("spec.containers[0].readinessProbe")),
            Some(28),
            "a List item's kind given, its namespace defaulted"
        );
        assert_eq!(line("Pod", "default", "web", Some("spec.containers[].ports[name=metrics]")), Some(26));
        assert_eq!(line("Pod", "prod", "web", None), None, "another object");
    }

    #[test]
    fn a_syntax_error_keeps_what_came_before() {
        let text = format!("{}---\nkind: [\n", FILE.split("---").next().unwrap());
        let file = FileLines::parse(&text, "default");
        assert_eq!(file.line("NetworkPolicy", "prod", "db", Some("spec.ingress[0]")), Some(10));
    }
}
