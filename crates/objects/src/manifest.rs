//! Loading manifests: YAML or JSON files and folders, multi-document YAML, `kind: List`
//! (what `kubectl get ... -o yaml` prints), into a [`Cluster`]. Every problem is reported
//! with its file, object and field; nothing here panics on input.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, PodTemplateSpec};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use netcanary_policy::cluster_policy::ClusterPolicyKind;
use netcanary_policy::model::{Cluster, Direction, Endpoint};
use netcanary_policy::port::{PortMatch, Protocol};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster_policy;
use crate::convert::{self, Problems, Severity};
use crate::shape;
use crate::unevaluated::{UnevaluatedKind, unevaluated_kind};

/// A problem found while loading, located as precisely as the input allows. Serialized
/// as `analyze -o json` lists it under `diagnostics`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    /// `NetworkPolicy production/allow-dns`, or `document 3` before the object is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(skip_serializing_if = "is_blank")]
    pub field: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(
        severity: Severity,
        file: &str,
        object: Option<String>,
        field: Option<&str>,
        message: String,
    ) -> Self {
        Diagnostic { severity, file: file.to_string(), object, field: field.map(str::to_string), message }
    }
}

/// A field that is absent or names the whole object.
fn is_blank(field: &Option<String>) -> bool {
    field.as_deref().is_none_or(str::is_empty)
}

impl fmt::Display for Diagnostic {
    /// `error: prod.yaml: NetworkPolicy prod/db: spec.ingress[0].ports[0].port: ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity.as_str(), self.file)?;
        if let Some(object) = &self.object {
            write!(f, ": {object}")?;
        }
        if let Some(field) = self.field.as_deref().filter(|f| !f.is_empty()) {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The result of loading: the cluster model and everything worth telling the user.
#[derive(Debug, Default)]
pub struct Loaded {
    pub cluster: Cluster,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// A kind the loader reads: the apiVersion it is read as, and the API groups that served it
/// before (an object of one of those is an outdated manifest of this kind, not another kind).
#[derive(Debug)]
pub(crate) struct ReadKind {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub former_groups: &'static [&'static str],
}

const fn read(kind: &'static str, api_version: &'static str, former_groups: &'static [&'static str]) -> ReadKind {
    ReadKind { kind, api_version, former_groups }
}

pub(crate) const READ_KINDS: [ReadKind; 13] = [
    read("Namespace", "v1", &[]),
    read("Node", "v1", &[]),
    read("Pod", "v1", &[]),
    read("NetworkPolicy", "networking.k8s.io/v1", &["extensions"]),
    read("Deployment", "apps/v1", &["extensions"]),
    read("StatefulSet", "apps/v1", &[]),
    read("DaemonSet", "apps/v1", &["extensions"]),
    read("ReplicaSet", "apps/v1", &["extensions"]),
    read("Job", "batch/v1", &[]),
    read("CronJob", "batch/v1", &[]),
    read("ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2", &[]),
    read("AdminNetworkPolicy", "policy.networking.k8s.io/v1alpha1", &[]),
    read("BaselineAdminNetworkPolicy", "policy.networking.k8s.io/v1alpha1", &[]),
];

/// The API group of an apiVersion: `apps` of `apps/v1`, empty (the core group) for `v1`.
pub(crate) fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// What the loader does with an object, by its apiVersion and kind.
enum Handling {
    Read,
    /// A kind that is read, in a version that is not.
    Outdated(&'static ReadKind),
    /// A kind that changes who reaches whom but is not evaluated: warned about.
    Unevaluated(&'static UnevaluatedKind),
    /// Anything else: skipped with a note.
    Other,
}

impl Handling {
    fn of(api_version: Option<&str>, kind: &str) -> Self {
        let read = READ_KINDS.iter().find(|r| r.kind == kind);
        if read.is_some_and(|r| api_version.is_none_or(|v| v == r.api_version)) {
            return Handling::Read;
        }
        if let Some(unevaluated) = unevaluated_kind(api_version, kind)
            && (api_version.is_some() || read.is_none())
        {
            return Handling::Unevaluated(unevaluated);
        }
        let Some(read) = read else { return Handling::Other };
        match api_version {
            None => Handling::Read,
            Some(v) if v == read.api_version => Handling::Read,
            Some(v) if group_of(v) == group_of(read.api_version) || read.former_groups.contains(&group_of(v)) => {
                Handling::Outdated(read)
            }
            // Another API's kind of the same name (a Volcano `Job`).
            Some(_) => Handling::Other,
        }
    }
}

/// Builds a [`Cluster`] from manifests.
#[derive(Debug)]
pub struct Loader {
    default_namespace: String,
    loaded: Loaded,
    /// (kind, namespace, name) to the file it was first seen in, to report duplicates.
    seen: HashMap<(String, String, String), String>,
}

impl Loader {
    /// `default_namespace` is used for namespaced objects that do not name one, as
    /// `kubectl apply` uses the current namespace.
    pub fn new(default_namespace: &str) -> Self {
        Self { default_namespace: default_namespace.to_string(), loaded: Loaded::default(), seen: HashMap::new() }
    }

    /// Loads every `.yaml`, `.yml` and `.json` file under each path (files given
    /// explicitly are read whatever their extension).
    pub fn load_paths(&mut self, paths: &[PathBuf]) {
        for path in paths {
            let mut files = Vec::new();
            if let Err(e) = collect_files(path, &mut files) {
                self.report(Severity::Error, &path.display().to_string(), None, None, format!("cannot read: {e}"));
            }
            for file in files {
                let name = file.display().to_string();
                match std::fs::read_to_string(&file) {
                    Ok(text) => self.load_str(&name, &text),
                    Err(e) => self.report(Severity::Error, &name, None, None, format!("cannot read: {e}")),
                }
            }
        }
    }

    /// Loads the documents of one file's text; `source` names it in diagnostics.
    pub fn load_str(&mut self, source: &str, text: &str) {
        if source.ends_with(".json") && self.load_json_list(source, text) {
            return;
        }
        if let Err((label, message)) =
            read_documents(source, text, |label, value| self.load_value(source, label, value))
        {
            self.report(Severity::Error, source, label, None, message);
        }
    }

    /// Ends loading, adding the checks that need every object (named ports are resolved
    /// against pods that may come after the policy).
    pub fn finish(mut self) -> Loaded {
        self.warn_unresolved_named_ports();
        self.warn_both_generations();
        self.loaded
    }

    /// Both generations of cluster policies: warned about once, at one v1alpha1 policy.
    fn warn_both_generations(&mut self) {
        let Some((old, message)) = cluster_policy::both_generations(self.loaded.cluster.cluster_policies()) else {
            return;
        };
        let (kind, name) = (old.kind.as_str(), old.name.clone());
        let file = self.seen_in(kind, "", &name);
        self.report(Severity::Warning, &file, Some(format!("{kind} {name}")), None, message);
    }

    fn warn_unresolved_named_ports(&mut self) {
        let declared: HashSet<(&str, Protocol)> = self
            .loaded
            .cluster
            .endpoints()
            .iter()
            .flat_map(|e| e.ports.iter().filter_map(|p| Some((p.name.as_deref()?, p.protocol))))
            .collect();
        let mut warnings = Vec::new();
        for policy in self.loaded.cluster.policies() {
            for direction in [Direction::Ingress, Direction::Egress] {
                for (r, rule) in policy.rules(direction).unwrap_or_default().iter().enumerate() {
                    for (p, port) in rule.ports.iter().enumerate() {
                        if let PortMatch::Named(name) = &port.port
                            && !declared.contains(&(name.as_str(), port.protocol))
                        {
                            warnings.push(Diagnostic {
                                severity: Severity::Warning,
                                file: self.seen_in("NetworkPolicy", &policy.namespace, &policy.name),
                                object: Some(format!("NetworkPolicy {}", policy.id())),
                                field: Some(format!("spec.{direction}[{r}].ports[{p}].port")),
                                message: format!(
                                    "no container declares a {} port named {name:?}, so this entry matches nothing",
                                    port.protocol
                                ),
                            });
                        }
                    }
                }
            }
        }
        self.loaded.diagnostics.extend(warnings);
    }

    fn seen_in(&self, kind: &str, namespace: &str, name: &str) -> String {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        self.seen.get(&key).cloned().unwrap_or_default()
    }

    fn load_value(&mut self, source: &str, label: &str, mut value: Value) {
        if value.is_null() {
            return; // an empty document, e.g. a trailing `---`
        }
        let Some(kind) = value.get("kind").and_then(Value::as_str).map(str::to_string) else {
            let message = "not a Kubernetes object: it has no `kind` (is this a manifest?)";
            self.report(Severity::Error, source, Some(label.to_string()), Some("kind"), message.into());
            return;
        };
        let api_version = value.get("apiVersion").and_then(Value::as_str).map(str::to_string);
        if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
            let items = match value.get_mut("items").map(Value::take) {
                Some(Value::Array(items)) => items,
                Some(Value::Null) | None => Vec::new(),
                Some(_) => {
                    self.report(Severity::Error, source, Some(kind), Some("items"), "must be a list".into());
                    return;
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                let list = ListContext { source, label, kind: &kind, api_version: api_version.as_deref() };
                self.load_item(&list, i, item);
            }
            return;
        }
        let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        let namespace =
            value.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(&self.default_namespace).to_string();
        let handling = Handling::of(api_version.as_deref(), &kind);
        let object = match &handling {
            Handling::Unevaluated(u) if u.cluster_scoped => format!("{} {name}", u.name()),
            Handling::Unevaluated(u) => format!("{} {namespace}/{name}", u.name()),
            _ if matches!(
                kind.as_str(),
                "Namespace" | "Node" | "ClusterNetworkPolicy" | "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy"
            ) =>
            {
                format!("{kind} {name}")
            }
            _ => format!("{kind} {namespace}/{name}"),
        };
        let mut problems = Problems::default();
        let ctx = ObjectContext { source, object: &object };
        match handling {
            Handling::Unevaluated(_) => {
                let what = api_version.map_or_else(|| kind.clone(), |v| format!("{v} {kind}"));
                problems.warn(
                    "",
                    format!(
                        "{what} is not evaluated by netcanary: verdicts ignore it, so they may differ from what the cluster enforces"
                    ),
                );
            }
            Handling::Outdated(read) => problems.error(
                "apiVersion",
                format!("{} is not read; {kind} is read as {}", api_version.unwrap_or_default(), read.api_version),
            ),
            Handling::Other => problems.note("", "skipped: netcanary does not use this kind"),
            Handling::Read => {
                problems = shape::problems(&kind, &value);
                let checked = problems.list.len();
                match kind.as_str() {
                    "Namespace" => self.namespace(&ctx, value, &mut problems),
                    "Pod" => self.pod(&ctx, value, &mut problems),
                    "NetworkPolicy" => self.network_policy(&ctx, value, &mut problems),
                    "Node" => {
                        if let Some(node) = cluster_policy::node(&value, &mut problems) {
                            self.note_duplicate(&ctx, "Node", "", &node.name.clone(), &mut problems);
                            self.loaded.cluster.add_node(node);
                        }
                    }
                    "ClusterNetworkPolicy" => {
                        self.cluster_policy(&ctx, ClusterPolicyKind::ClusterNetworkPolicy, &value, &mut problems)
                    }
                    "AdminNetworkPolicy" => {
                        self.cluster_policy(&ctx, ClusterPolicyKind::AdminNetworkPolicy, &value, &mut problems)
                    }
                    "BaselineAdminNetworkPolicy" => {
                        self.cluster_policy(&ctx, ClusterPolicyKind::BaselineAdminNetworkPolicy, &value, &mut problems)
                    }
                    "Deployment" => {
                        self.workload::<Deployment>(&ctx, value, &mut problems, |d| d.spec.map(|s| s.template))
                    }
                    "StatefulSet" => {
                        self.workload::<StatefulSet>(&ctx, value, &mut problems, |d| d.spec.map(|s| s.template))
                    }
                    "DaemonSet" => {
                        self.workload::<DaemonSet>(&ctx, value, &mut problems, |d| d.spec.map(|s| s.template))
                    }
                    "ReplicaSet" => {
                        self.workload::<ReplicaSet>(&ctx, value, &mut problems, |d| d.spec.and_then(|s| s.template))
                    }
                    "Job" => self.workload::<Job>(&ctx, value, &mut problems, |d| d.spec.map(|s| s.template)),
                    "CronJob" => self.workload::<CronJob>(&ctx, value, &mut problems, |d| {
                        d.spec.and_then(|s| s.job_template.spec).map(|s| s.template)
                    }),
                    other => unreachable!("{other} is in READ_KINDS but not read"),
                }
                shape::drop_repeats(&mut problems, checked);
            }
        }
        for p in problems.list {
            self.report(p.severity, source, Some(object.clone()), Some(&p.field), p.message);
        }
    }

    /// Loads item `i` of a list.
    fn load_item(&mut self, list: &ListContext<'_>, i: usize, mut item: Value) {
        // A typed list (`PodList`, as the API server returns it) leaves its items' kind
        // and apiVersion out: they are the list's.
        if let (Some(item_kind), Some(fields)) =
            (list.kind.strip_suffix("List").filter(|k| !k.is_empty()), item.as_object_mut())
            && !fields.contains_key("kind")
        {
            fields.insert("kind".into(), Value::from(item_kind));
            if let Some(api_version) = list.api_version {
                fields.entry("apiVersion").or_insert_with(|| Value::from(api_version));
            }
        }
        self.load_value(list.source, &format!("{} items[{i}]", list.label), item);
    }

    /// Loads a JSON document that is a list (what `kubectl get -o json` prints) one item
    /// at a time, so that memory holds one item's tree, not the whole document's. Returns
    /// false, having loaded nothing, when the document is not a list with `items`: the
    /// caller then reads it whole.
    fn load_json_list(&mut self, source: &str, text: &str) -> bool {
        /// The fields that say whether a document is a list; the rest is skipped.
        #[derive(Deserialize)]
        struct Head {
            kind: Option<String>,
            #[serde(rename = "apiVersion")]
            api_version: Option<String>,
            #[serde(default, deserialize_with = "present")]
            items: bool,
        }
        fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| true)
        }
        let Ok(Head { kind: Some(kind), api_version, items: true }) = serde_json::from_str::<Head>(text) else {
            return false;
        };
        if !kind.ends_with("List") {
            return false;
        }
        let list = ListContext { source, label: "document 1", kind: &kind, api_version: api_version.as_deref() };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let result = serde::Deserializer::deserialize_map(&mut deserializer, ListVisitor { loader: self, list: &list })
            .and_then(|()| deserializer.end());
        match result {
            Ok(()) => {}
            Err(e) if e.is_data() => {
                self.report(Severity::Error, source, Some(kind), Some("items"), "must be a list".into())
            }
            Err(e) => self.report(Severity::Error, source, None, None, format!("invalid JSON: {e}")),
        }
        true
    }

    fn namespace(&mut self, ctx: &ObjectContext<'_>, value: Value, problems: &mut Problems) {
        let Some(ns) = typed::<Namespace>(value, problems) else { return };
        if let Some((name, labels)) = convert::namespace(&ns, problems) {
            self.note_duplicate(ctx, "Namespace", "", &name, problems);
            self.loaded.cluster.set_namespace(&name, labels);
            let annotations = convert::kept_annotations(ns.metadata.annotations.as_ref());
            self.loaded.cluster.set_namespace_annotations(&name, annotations);
        }
    }

    fn pod(&mut self, ctx: &ObjectContext<'_>, value: Value, problems: &mut Problems) {
        let Some(pod) = typed::<Pod>(value, problems) else { return };
        if let Some(endpoint) = convert::pod(&pod, &self.default_namespace, problems) {
            let (namespace, name) = endpoint.id.split_once('/').unwrap_or_default();
            self.note_duplicate(ctx, "Pod", namespace, name, problems);
            self.loaded.cluster.add_endpoint(endpoint);
        }
    }

    fn network_policy(&mut self, ctx: &ObjectContext<'_>, value: Value, problems: &mut Problems) {
        let Some(np) = typed::<NetworkPolicy>(value, problems) else { return };
        if let Some(policy) = convert::policy(&np, &self.default_namespace, problems) {
            self.note_duplicate(ctx, "NetworkPolicy", &policy.namespace, &policy.name, problems);
            self.loaded.cluster.add_policy(policy);
        }
    }

    fn cluster_policy(
        &mut self,
        ctx: &ObjectContext<'_>,
        kind: ClusterPolicyKind,
        value: &Value,
        problems: &mut Problems,
    ) {
        if let Some(policy) = cluster_policy::cluster_policy(kind, value, problems) {
            self.note_duplicate(ctx, kind.as_str(), "", &policy.name.clone(), problems);
            self.loaded.cluster.add_cluster_policy(policy);
        }
    }

    fn workload<T: DeserializeOwned>(
        &mut self,
        ctx: &ObjectContext<'_>,
        value: Value,
        problems: &mut Problems,
        template: impl FnOnce(T) -> Option<PodTemplateSpec>,
    ) {
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let namespace = value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map_or_else(|| self.default_namespace.clone(), str::to_string);
        let Some(object) = typed::<T>(value, problems) else { return };
        let Some(template) = template(object) else {
            return problems.error("spec.template", "is required: a workload stands for the pods of its template");
        };
        let path = if kind == "CronJob" { "spec.jobTemplate.spec.template" } else { "spec.template" };
        let labels = convert::labels(
            template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
            &format!("{path}.metadata.labels"),
            problems,
        );
        let spec = template.spec.unwrap_or_default();
        let ports = convert::container_ports(&spec, &format!("{path}.spec"), problems);
        if problems.has_errors() {
            return;
        }
        self.note_duplicate(ctx, &kind, &namespace, &name, problems);
        let mut endpoint = Endpoint::workload(&namespace, &kind, &name, labels).with_ports(ports);
        endpoint.host_network = spec.host_network.unwrap_or(false);
        endpoint.kubelet_probes = convert::kubelet_probes(&spec);
        endpoint.annotations =
            convert::kept_annotations(template.metadata.as_ref().and_then(|m| m.annotations.as_ref()));
        self.loaded.cluster.add_endpoint(endpoint);
    }

    fn note_duplicate(
        &mut self,
        ctx: &ObjectContext<'_>,
        kind: &str,
        namespace: &str,
        name: &str,
        problems: &mut Problems,
    ) {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        if let Some(first) = self.seen.insert(key, ctx.source.to_string()) {
            problems.warn("metadata.name", format!("duplicate of {} in {first}: the later one is used", ctx.object));
        }
    }

    fn report(&mut self, severity: Severity, file: &str, object: Option<String>, field: Option<&str>, message: String) {
        self.loaded.diagnostics.push(Diagnostic::new(severity, file, object, field, message));
    }
}

/// The list an item comes from.
struct ListContext<'a> {
    source: &'a str,
    /// The list's own label (`document 1`).
    label: &'a str,
    kind: &'a str,
    api_version: Option<&'a str>,
}

/// Visits a list document's fields, loading each of its `items` as it is read.
struct ListVisitor<'l, 'a> {
    loader: &'l mut Loader,
    list: &'l ListContext<'a>,
}

impl<'de> serde::de::Visitor<'de> for ListVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes list")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "items" {
                map.next_value_seed(ItemsSeed { loader: &mut *self.loader, list: self.list })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// A list's `items`, each loaded as soon as it is read.
struct ItemsSeed<'l, 'a> {
    loader: &'l mut Loader,
    list: &'l ListContext<'a>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ItemsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ItemsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(()) // `items: null`, an empty list
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(item) = seq.next_element::<Value>()? {
            self.loader.load_item(self.list, i, item);
            i += 1;
        }
        Ok(())
    }
}

struct ObjectContext<'a> {
    source: &'a str,
    object: &'a str,
}

/// Deserializes a typed object, reporting a failure with the path of the offending field.
pub(crate) fn typed<T: DeserializeOwned>(value: Value, problems: &mut Problems) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(object) => Some(object),
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            let mut message = e.into_inner().to_string();
            if message.contains("expected a string") && !message.contains("invalid type: map") {
                // YAML reads unquoted 1e3, 0755, true or 1.10 as numbers or booleans.
                message.push_str(": quote the value in YAML (for example \"1.10\")");
            }
            problems.error(field, message);
            None
        }
    }
}

/// Reads the documents of one file's text in order, JSON (one document) or multi-document
/// YAML, giving `each` a document's label in diagnostics (`document 2`) and its value. The
/// error is the label of the document that cannot be read (none for JSON) and why: the rest
/// of the file is not read, since a YAML parser cannot resynchronise after a syntax error.
pub(crate) fn read_documents(
    source: &str,
    text: &str,
    mut each: impl FnMut(&str, Value),
) -> Result<(), (Option<String>, String)> {
    if source.ends_with(".json") {
        let value = serde_json::from_str::<Value>(text).map_err(|e| (None, format!("invalid JSON: {e}")))?;
        each("document 1", value);
        return Ok(());
    }
    for (i, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let label = format!("document {}", i + 1);
        match Value::deserialize(document) {
            Ok(value) => each(&label, value),
            Err(e) => return Err((Some(label), format!("invalid YAML: {e}"))),
        }
    }
    Ok(())
}

pub(crate) fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !path.is_dir() {
        // Read explicitly named files whatever their extension; report missing ones.
        std::fs::metadata(path)?;
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out)?;
        } else if matches!(entry.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(entry);
        }
    }
    Ok(())
}

/// Loads manifests from paths in one call.
pub fn load_paths(paths: &[PathBuf], default_namespace: &str) -> Loaded {
    let mut loader = Loader::new(default_namespace);
    loader.load_paths(paths);
    loader.finish()
}
