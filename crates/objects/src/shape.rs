//! Field names checked on the raw manifest, where a typed read cannot see them: k8s-openapi
//! reads a missing required field as its default (`containerPort` as 0) and drops unknown
//! fields without a word, so `containerport: 80` would become "port 0" and `form:` in an
//! ingress rule a rule that allows every peer. The API server rejects both (kubectl's
//! strict field validation, its default, refuses unknown fields), so these are errors.
//!
//! Only the parts that decide verdicts are checked: a NetworkPolicy's spec down to its
//! ports, peers and selectors, and the container ports of pods and pod templates.

use serde_json::{Map, Value};

use crate::convert::Problems;

/// One kind of object within a manifest: every field it has, and those it requires.
struct Shape {
    /// `a NetworkPolicy port`, as messages name it.
    what: &'static str,
    fields: &'static [&'static str],
    required: &'static [&'static str],
}

const POLICY_SPEC: Shape =
    Shape { what: "a NetworkPolicy spec", fields: &["podSelector", "policyTypes", "ingress", "egress"], required: &[] };
const INGRESS_RULE: Shape = Shape { what: "an ingress rule", fields: &["from", "ports"], required: &[] };
const EGRESS_RULE: Shape = Shape { what: "an egress rule", fields: &["to", "ports"], required: &[] };
const PEER: Shape =
    Shape { what: "a NetworkPolicy peer", fields: &["podSelector", "namespaceSelector", "ipBlock"], required: &[] };
const IP_BLOCK: Shape = Shape { what: "an ipBlock", fields: &["cidr", "except"], required: &["cidr"] };
const POLICY_PORT: Shape =
    Shape { what: "a NetworkPolicy port", fields: &["protocol", "port", "endPort"], required: &[] };
const SELECTOR: Shape = Shape { what: "a label selector", fields: &["matchLabels", "matchExpressions"], required: &[] };
const REQUIREMENT: Shape = Shape {
    what: "a label selector requirement",
    fields: &["key", "operator", "values"],
    required: &["key", "operator"],
};
const CONTAINER_PORT: Shape = Shape {
    what: "a container port",
    fields: &["name", "containerPort", "protocol", "hostPort", "hostIP"],
    required: &["containerPort"],
};

/// The field-name problems of an object of a kind the loader reads. Conversion adds its
/// own to them, and an object with errors is not used.
pub(crate) fn problems(kind: &str, object: &Value) -> Problems {
    let mut problems = Problems::default();
    match kind {
        "Pod" => pod_spec(object.get("spec"), "spec", &mut problems),
        "CronJob" => pod_spec(
            object.pointer("/spec/jobTemplate/spec/template/spec"),
            "spec.jobTemplate.spec.template.spec",
            &mut problems,
        ),
        "NetworkPolicy" => policy(object, &mut problems),
        "Namespace" | "Node" | "ClusterNetworkPolicy" | "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" => {}
        _ => pod_spec(object.pointer("/spec/template/spec"), "spec.template.spec", &mut problems),
    }
    problems
}

/// Drops the problems after the first `checked` (conversion's) that concern a field those
/// already concern: a missing `containerPort` is reported as missing, not also as the 0
/// the typed read made of it.
pub(crate) fn drop_repeats(problems: &mut Problems, checked: usize) {
    let fields: Vec<String> = problems.list[..checked].iter().map(|p| p.field.clone()).collect();
    let mut index = 0;
    problems.list.retain(|p| {
        index += 1;
        index <= checked || !fields.contains(&p.field)
    });
}

fn policy(object: &Value, problems: &mut Problems) {
    let Some(spec) = object.get("spec") else { return };
    check(spec, "spec", &POLICY_SPEC, problems);
    selector(spec.get("podSelector"), "spec.podSelector", problems);
    for (direction, shape, peers) in [("ingress", &INGRESS_RULE, "from"), ("egress", &EGRESS_RULE, "to")] {
        for (i, rule) in entries(Some(spec), direction) {
            let path = format!("spec.{direction}[{i}]");
            check(rule, &path, shape, problems);
            for (j, port) in entries(Some(rule), "ports") {
                check(port, &format!("{path}.ports[{j}]"), &POLICY_PORT, problems);
            }
            for (j, peer) in entries(Some(rule), peers) {
                let path = format!("{path}.{peers}[{j}]");
                check(peer, &path, &PEER, problems);
                if let Some(block) = peer.get("ipBlock") {
                    check(block, &format!("{path}.ipBlock"), &IP_BLOCK, problems);
                }
                for key in ["podSelector", "namespaceSelector"] {
                    selector(peer.get(key), &format!("{path}.{key}"), problems);
                }
            }
        }
    }
}

fn selector(selector: Option<&Value>, path: &str, problems: &mut Problems) {
    let Some(selector) = selector else { return };
    check(selector, path, &SELECTOR, problems);
    for (i, requirement) in entries(Some(selector), "matchExpressions") {
        check(requirement, &format!("{path}.matchExpressions[{i}]"), &REQUIREMENT, problems);
    }
}

fn pod_spec(spec: Option<&Value>, path: &str, problems: &mut Problems) {
    for list in ["containers", "initContainers"] {
        for (i, container) in entries(spec, list) {
            for (j, port) in entries(Some(container), "ports") {
                check(port, &format!("{path}.{list}[{i}].ports[{j}]"), &CONTAINER_PORT, problems);
            }
        }
    }
}

/// The entries of the list `key` of `value`; none when it is not a list (the typed read
/// reports that).
fn entries<'v>(value: Option<&'v Value>, key: &str) -> impl Iterator<Item = (usize, &'v Value)> {
    value.and_then(|v| v.get(key)).and_then(Value::as_array).into_iter().flatten().enumerate()
}

/// Reports the required fields `value` lacks and the fields `shape` does not have. A
/// field that differs from one of the shape's only in case is named as the likely typo.
fn check(value: &Value, path: &str, shape: &Shape, problems: &mut Problems) {
    let Some(fields) = value.as_object() else { return };
    let unknown: Vec<&str> = fields.keys().map(String::as_str).filter(|k| !shape.fields.contains(k)).collect();
    let same_but_case = |field: &str| unknown.iter().copied().find(|k| k.eq_ignore_ascii_case(field));
    for &required in shape.required {
        if present(fields, required) {
            continue;
        }
        let message = match same_but_case(required) {
            Some(typo) => format!("is missing (the entry has {typo:?}: field names are case-sensitive)"),
            None => "is missing".to_string(),
        };
        problems.error(format!("{path}.{required}"), message);
    }
    for key in unknown {
        let meant = shape.fields.iter().find(|f| f.eq_ignore_ascii_case(key));
        if meant.is_some_and(|f| shape.required.contains(f) && !present(fields, f)) {
            continue; // reported above, as the missing field
        }
        let message = match meant {
            Some(meant) => format!("unknown field: did you mean {meant:?}? (field names are case-sensitive)"),
            None => format!("unknown field: {} has {}", shape.what, names(shape.fields)),
        };
        problems.error(format!("{path}.{key}"), message);
    }
}

fn present(fields: &Map<String, Value>, field: &str) -> bool {
    fields.get(field).is_some_and(|v| !v.is_null())
}

/// `podSelector, ingress and egress`.
fn names(fields: &[&str]) -> String {
    match fields {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
