//! ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2), AdminNetworkPolicy and
//! BaselineAdminNetworkPolicy (v1alpha1) to the engine's model, with the validation their
//! CRDs carry (OpenAPI schema and CEL rules) reported at the field it concerns. No
//! generated types exist for these CRDs in k8s-openapi, so the object is walked as JSON;
//! unknown fields are errors, as kubectl's strict field validation makes them.

use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use netcanary_policy::cluster_policy::{
    Action, ClusterPeer, ClusterPolicy, ClusterPolicyKind, ClusterPort, ClusterRule, Subject,
};
use netcanary_policy::model::Node;
use netcanary_policy::port::{PortMatch, Protocol, RulePort};
use netcanary_policy::selector::Selector;
use netcanary_policy::verdict::Tier;
use serde_json::{Map, Value};

use crate::convert::{self, Problems};

/// Where the API server serves one kind of cluster policy: what a run lists and watches,
/// and what the shipped RBAC grants get/list/watch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterPolicyApi {
    pub kind: ClusterPolicyKind,
    pub group: &'static str,
    pub version: &'static str,
    /// The resource name in API paths and RBAC rules.
    pub plural: &'static str,
}

pub const CLUSTER_POLICY_APIS: [ClusterPolicyApi; 3] = [
    ClusterPolicyApi {
        kind: ClusterPolicyKind::ClusterNetworkPolicy,
        group: "policy.networking.k8s.io",
        version: "v1alpha2",
        plural: "clusternetworkpolicies",
    },
    ClusterPolicyApi {
        kind: ClusterPolicyKind::AdminNetworkPolicy,
        group: "policy.networking.k8s.io",
        version: "v1alpha1",
        plural: "adminnetworkpolicies",
    },
    ClusterPolicyApi {
        kind: ClusterPolicyKind::BaselineAdminNetworkPolicy,
        group: "policy.networking.k8s.io",
        version: "v1alpha1",
        plural: "baselineadminnetworkpolicies",
    },
];

/// ClusterNetworkPolicy replaces AdminNetworkPolicy and BaselineAdminNetworkPolicy, and no
/// API says how the two generations order against each other: when both are present, the
/// warning that says how netcanary orders them, naming one policy of each.
pub fn both_generations(policies: &[ClusterPolicy]) -> Option<(&ClusterPolicy, String)> {
    let first = |v1alpha1: bool| policies.iter().find(|p| p.kind.is_v1alpha1() == v1alpha1);
    let (new, old) = (first(false)?, first(true)?);
    Some((
        old,
        format!(
            "both policy.networking.k8s.io/v1alpha1 and v1alpha2 policies are present ({} {} and {} {}): netcanary \
             puts them on one scale, AdminNetworkPolicy beside Admin-tier ClusterNetworkPolicies and the \
             BaselineAdminNetworkPolicy as Baseline priority 0, by priority; an implementation may order the \
             generations differently",
            old.kind.as_str(),
            old.name,
            new.kind.as_str(),
            new.name
        ),
    ))
}

/// The object's fields, reporting a non-object and every field not in `allowed`.
fn object<'v>(
    value: &'v Value,
    path: &str,
    allowed: &[&str],
    problems: &mut Problems,
) -> Option<&'v Map<String, Value>> {
    let Some(fields) = value.as_object() else {
        problems.error(path, "must be an object");
        return None;
    };
    for key in fields.keys() {
        if !allowed.contains(&key.as_str()) {
            let known = allowed.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
            problems.error(join(path, key), format!("unknown field: the fields here are {known}"));
        }
    }
    Some(fields)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// The entries of a list field; `None` when absent. Length limits as the CRD sets them.
fn list<'v>(
    fields: &'v Map<String, Value>,
    key: &str,
    path: &str,
    (min, max): (usize, usize),
    problems: &mut Problems,
) -> Option<&'v [Value]> {
    let field = join(path, key);
    match fields.get(key)? {
        Value::Null => None,
        Value::Array(items) => {
            if items.len() < min {
                problems.error(&field, format!("must have at least {min} item(s)"));
            }
            if items.len() > max {
                problems.error(&field, format!("must have at most {max} items, has {}", items.len()));
            }
            Some(items)
        }
        _ => {
            problems.error(field, "must be a list");
            None
        }
    }
}

fn integer(value: Option<&Value>, field: &str, (min, max): (i64, i64), problems: &mut Problems) -> Option<i64> {
    let Some(value) = value else {
        problems.error(field, "is required");
        return None;
    };
    match value.as_i64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(n) => {
            problems.error(field, format!("{n} must be from {min} to {max}"));
            None
        }
        None => {
            problems.error(field, "must be an integer");
            None
        }
    }
}

fn string<'v>(value: Option<&'v Value>, field: &str, problems: &mut Problems) -> Option<&'v str> {
    match value {
        None => {
            problems.error(field, "is required");
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            problems.error(field, "must be a string");
            None
        }
    }
}

/// Exactly one of `keys` is set (the CRD's MinProperties/MaxProperties of 1).
fn exactly_one<'v>(
    fields: &'v Map<String, Value>,
    path: &str,
    keys: &[&str],
    problems: &mut Problems,
) -> Option<(&'v str, &'v Value)> {
    let set: Vec<(&str, &Value)> = fields
        .iter()
        .filter(|(k, v)| keys.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    match set.as_slice() {
        [one] => Some(*one),
        [] => {
            problems.error(path, format!("must set exactly one of {}", keys.join(", ")));
            None
        }
        _ => {
            let names: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
            problems.error(path, format!("must set exactly one of {}, not {}", keys.join(", "), names.join(" and ")));
            None
        }
    }
}

fn label_selector(value: &Value, path: &str, problems: &mut Problems) -> Selector {
    if let Some(fields) = value.as_object() {
        let removed: Vec<&str> = ["namespaceSelector", "sameLabels", "notSameLabels"]
            .into_iter()
            .filter(|key| fields.contains_key(*key))
            .collect();
        for key in &removed {
            problems.error(
                join(path, key),
                "is the experimental v1alpha1 shape that network-policy-api v0.1.5 removed; today's CRD \
                 takes a label selector here (matchLabels, matchExpressions)",
            );
        }
        if !removed.is_empty() {
            return Selector::everything();
        }
    }
    object(value, path, &["matchLabels", "matchExpressions"], problems);
    match serde_json::from_value::<LabelSelector>(value.clone()) {
        Ok(selector) => convert::selector(Some(&selector), path, problems),
        Err(e) => {
            problems.error(path, format!("is not a label selector: {e}"));
            Selector::everything()
        }
    }
}

/// `{namespaceSelector, podSelector}`. v1alpha2 lets the namespace selector default to
/// everything; v1alpha1 requires both.
fn namespaced_pod(value: &Value, path: &str, kind: ClusterPolicyKind, problems: &mut Problems) -> (Selector, Selector) {
    let Some(fields) = object(value, path, &["namespaceSelector", "podSelector"], problems) else {
        return (Selector::everything(), Selector::everything());
    };
    let namespaces = match fields.get("namespaceSelector") {
        Some(v) => label_selector(v, &join(path, "namespaceSelector"), problems),
        None if kind.is_v1alpha1() => {
            problems.error(join(path, "namespaceSelector"), "is required");
            Selector::everything()
        }
        None => Selector::everything(),
    };
    let pods = match fields.get("podSelector") {
        Some(v) => label_selector(v, &join(path, "podSelector"), problems),
        None => {
            problems.error(join(path, "podSelector"), "is required ({} selects every pod)");
            Selector::everything()
        }
    };
    (namespaces, pods)
}

/// Limits that differ between the generations.
struct Limits {
    rules: usize,
    peers: usize,
    ports: usize,
}

/// Converts a ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy;
/// `None` if the API server would have rejected it.
pub fn cluster_policy(kind: ClusterPolicyKind, value: &Value, problems: &mut Problems) -> Option<ClusterPolicy> {
    let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    if name.is_empty() {
        problems.error("metadata.name", "is required");
    }
    if kind == ClusterPolicyKind::BaselineAdminNetworkPolicy && !name.is_empty() && name != "default" {
        problems.error(
            "metadata.name",
            "must be \"default\": only one BaselineAdminNetworkPolicy, named default, can exist in a cluster",
        );
    }
    let Some(spec) = value.get("spec") else {
        problems.error("spec", "is required");
        return None;
    };
    let (allowed, limits): (&[&str], Limits) = match kind {
        ClusterPolicyKind::ClusterNetworkPolicy => {
            (&["tier", "priority", "subject", "ingress", "egress"], Limits { rules: 25, peers: 25, ports: 25 })
        }
        ClusterPolicyKind::AdminNetworkPolicy => {
            (&["priority", "subject", "ingress", "egress"], Limits { rules: 100, peers: 100, ports: 100 })
        }
        ClusterPolicyKind::BaselineAdminNetworkPolicy => {
            (&["subject", "ingress", "egress"], Limits { rules: 100, peers: 100, ports: 100 })
        }
    };
    let fields = object(spec, "spec", allowed, problems)?;
    let tier = match kind {
        ClusterPolicyKind::ClusterNetworkPolicy => match string(fields.get("tier"), "spec.tier", problems) {
            Some("Admin") => Tier::Admin,
            Some("Baseline") => Tier::Baseline,
            Some(other) => {
                problems.error("spec.tier", format!("unsupported value {other:?}: use \"Admin\" or \"Baseline\""));
                Tier::Admin
            }
            None => Tier::Admin,
        },
        ClusterPolicyKind::AdminNetworkPolicy => Tier::Admin,
        ClusterPolicyKind::BaselineAdminNetworkPolicy => Tier::Baseline,
    };
    let priority = match kind {
        ClusterPolicyKind::BaselineAdminNetworkPolicy => 0,
        _ => integer(fields.get("priority"), "spec.priority", (0, 1000), problems).unwrap_or_default() as u32,
    };
    let subject = match fields.get("subject") {
        None => {
            problems.error("spec.subject", "is required");
            Subject::default()
        }
        Some(value) => subject(value, kind, problems),
    };
    let mut rules = |direction: &str| -> Vec<ClusterRule> {
        let path = format!("spec.{direction}");
        list(fields, direction, "spec", (0, limits.rules), problems)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, r)| rule(kind, direction == "egress", r, &format!("{path}[{i}]"), &limits, problems))
            .collect()
    };
    let ingress = rules("ingress");
    let egress = rules("egress");
    (!problems.has_errors()).then_some(ClusterPolicy { kind, name, tier, priority, subject, ingress, egress })
}

fn subject(value: &Value, kind: ClusterPolicyKind, problems: &mut Problems) -> Subject {
    let Some(fields) = object(value, "spec.subject", &["namespaces", "pods"], problems) else {
        return Subject::default();
    };
    match exactly_one(fields, "spec.subject", &["namespaces", "pods"], problems) {
        Some(("namespaces", v)) => {
            Subject { namespaces: label_selector(v, "spec.subject.namespaces", problems), pods: Selector::everything() }
        }
        Some((_, v)) => {
            let (namespaces, pods) = namespaced_pod(v, "spec.subject.pods", kind, problems);
            Subject { namespaces, pods }
        }
        None => Subject::default(),
    }
}

fn rule(
    kind: ClusterPolicyKind,
    egress: bool,
    value: &Value,
    path: &str,
    limits: &Limits,
    problems: &mut Problems,
) -> Option<ClusterRule> {
    let v1alpha2 = kind == ClusterPolicyKind::ClusterNetworkPolicy;
    let peers_key = if egress { "to" } else { "from" };
    let ports_key = if v1alpha2 { "protocols" } else { "ports" };
    let fields = object(value, path, &["name", "action", peers_key, ports_key], problems)?;
    let name = match fields.get("name") {
        None => None,
        Some(v) => string(Some(v), &join(path, "name"), problems).map(str::to_string),
    };
    if let Some(n) = &name
        && n.chars().count() > 100
    {
        problems.error(join(path, "name"), "may be at most 100 characters");
    }
    let action_field = join(path, "action");
    let action = match (kind, string(fields.get("action"), &action_field, problems)?) {
        (ClusterPolicyKind::ClusterNetworkPolicy, "Accept") => Action::Accept,
        (_, "Allow") if kind.is_v1alpha1() => Action::Accept,
        (_, "Deny") => Action::Deny,
        (ClusterPolicyKind::ClusterNetworkPolicy | ClusterPolicyKind::AdminNetworkPolicy, "Pass") => Action::Pass,
        (_, other) => {
            let allowed = match kind {
                ClusterPolicyKind::ClusterNetworkPolicy => "\"Accept\", \"Deny\" or \"Pass\"",
                ClusterPolicyKind::AdminNetworkPolicy => "\"Allow\", \"Deny\" or \"Pass\"",
                ClusterPolicyKind::BaselineAdminNetworkPolicy => "\"Allow\" or \"Deny\"",
            };
            problems.error(action_field, format!("unsupported value {other:?}: use {allowed}"));
            return None;
        }
    };
    let peers_path = join(path, peers_key);
    let peers = match list(fields, peers_key, path, (1, limits.peers), problems) {
        None => {
            problems.error(&peers_path, "is required and must list at least one peer");
            Vec::new()
        }
        Some(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, p)| peer(kind, egress, p, &format!("{peers_path}[{i}]"), problems))
            .collect(),
    };
    let ports: Vec<ClusterPort> = list(fields, ports_key, path, (1, limits.ports), problems)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let field = format!("{path}.{ports_key}[{i}]");
            if v1alpha2 { protocol_entry(p, &field, problems) } else { port_entry(p, &field, problems) }
        })
        .collect();
    let addresses_only = peers
        .iter()
        .any(|p| matches!(p, ClusterPeer::Nodes(_) | ClusterPeer::Networks(_) | ClusterPeer::DomainNames(_)));
    if egress && addresses_only && ports.iter().any(|p| matches!(p, ClusterPort::Named(_))) {
        problems.error(
            path,
            "networks/nodes/domainNames peer cannot be set with named ports since there are no named ports for \
             networks/nodes/domainNames",
        );
    }
    if action != Action::Accept && peers.iter().any(|p| matches!(p, ClusterPeer::DomainNames(_))) {
        problems.warn(
            join(path, peers_key),
            "domainNames are only supported in Accept (Allow) rules; implementations may ignore this rule",
        );
    }
    Some(ClusterRule { name, action, peers, ports })
}

fn peer(
    kind: ClusterPolicyKind,
    egress: bool,
    value: &Value,
    path: &str,
    problems: &mut Problems,
) -> Option<ClusterPeer> {
    let keys: &[&str] = match (egress, kind) {
        (false, _) => &["namespaces", "pods"],
        (true, ClusterPolicyKind::BaselineAdminNetworkPolicy) => &["namespaces", "pods", "nodes", "networks"],
        (true, _) => &["namespaces", "pods", "nodes", "networks", "domainNames"],
    };
    let fields = object(value, path, keys, problems)?;
    let (key, value) = exactly_one(fields, path, keys, problems)?;
    let field = join(path, key);
    Some(match key {
        "namespaces" => {
            ClusterPeer::Pods { namespaces: label_selector(value, &field, problems), pods: Selector::everything() }
        }
        "pods" => {
            let (namespaces, pods) = namespaced_pod(value, &field, kind, problems);
            ClusterPeer::Pods { namespaces, pods }
        }
        "nodes" => ClusterPeer::Nodes(label_selector(value, &field, problems)),
        "networks" => {
            let items = list(fields, key, path, (1, 25), problems).unwrap_or_default();
            let mut networks = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let item_field = format!("{field}[{i}]");
                let Some(text) = string(Some(item), &item_field, problems) else { continue };
                if text.len() > 43 {
                    problems.error(&item_field, "may be at most 43 characters");
                }
                match text.parse::<ipnet::IpNet>() {
                    Ok(net) => {
                        if net.trunc() != net {
                            problems.warn(&item_field, format!("{text:?} has host bits set; it means {}", net.trunc()));
                        }
                        if networks.contains(&net.trunc()) {
                            problems.error(&item_field, format!("duplicate entry {text:?}"));
                        }
                        networks.push(net.trunc());
                    }
                    Err(_) => problems.error(&item_field, format!("Invalid CIDR format provided: {text:?}")),
                }
            }
            ClusterPeer::Networks(networks)
        }
        _ => {
            let items = list(fields, key, path, (1, 25), problems).unwrap_or_default();
            let mut names = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let item_field = format!("{field}[{i}]");
                let Some(name) = string(Some(item), &item_field, problems) else { continue };
                if !domain_name_ok(name) {
                    problems.error(
                        &item_field,
                        format!("{name:?} is not a domain name (labels of letters, digits, '-' and '_', optionally after \"*.\")"),
                    );
                }
                names.push(name.to_string());
            }
            ClusterPeer::DomainNames(names)
        }
    })
}

/// The CRD's pattern: `^(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$`.
fn domain_name_ok(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    };
    labels.len() >= 2 && labels.iter().all(|l| label_ok(l))
}

fn port_number(value: Option<&Value>, field: &str, problems: &mut Problems) -> Option<u16> {
    integer(value, field, (1, 65535), problems).map(|n| n as u16)
}

/// `{number}` or `{range: {start, end}}` (v1alpha2), start below end.
fn port_or_range(value: &Value, path: &str, problems: &mut Problems) -> Option<(u16, u16)> {
    let fields = object(value, path, &["number", "range"], problems)?;
    match exactly_one(fields, path, &["number", "range"], problems)? {
        ("number", v) => port_number(Some(v), &join(path, "number"), problems).map(|n| (n, n)),
        (_, v) => range(v, &join(path, "range"), &["start", "end"], problems),
    }
}

fn range(value: &Value, path: &str, allowed: &[&str], problems: &mut Problems) -> Option<(u16, u16)> {
    let fields = object(value, path, allowed, problems)?;
    let start = port_number(fields.get("start"), &join(path, "start"), problems);
    let end = port_number(fields.get("end"), &join(path, "end"), problems);
    let (start, end) = (start?, end?);
    if start >= end {
        problems.error(path, format!("Start port must be less than End port ({start} is not below {end})"));
        return None;
    }
    Some((start, end))
}

/// One v1alpha2 `protocols` entry.
fn protocol_entry(value: &Value, path: &str, problems: &mut Problems) -> Option<ClusterPort> {
    let keys = ["tcp", "udp", "sctp", "destinationNamedPort"];
    let fields = object(value, path, &keys, problems)?;
    let (key, inner) = exactly_one(fields, path, &keys, problems)?;
    let field = join(path, key);
    if key == "destinationNamedPort" {
        let name = string(Some(inner), &field, problems)?;
        if name.is_empty() {
            problems.error(field, "must not be empty");
            return None;
        }
        return Some(ClusterPort::Named(name.to_string()));
    }
    let protocol = match key {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => Protocol::Sctp,
    };
    let fields = object(inner, &field, &["destinationPort"], problems)?;
    let Some(port) = fields.get("destinationPort") else {
        problems.error(join(&field, "destinationPort"), "is required (the entry must have at least one field)");
        return None;
    };
    let (first, last) = port_or_range(port, &join(&field, "destinationPort"), problems)?;
    Some(ClusterPort::Port(RulePort { protocol, port: PortMatch::Range { first, last } }))
}

/// One v1alpha1 `ports` entry: `portNumber`, `namedPort` or `portRange`.
fn port_entry(value: &Value, path: &str, problems: &mut Problems) -> Option<ClusterPort> {
    let keys = ["portNumber", "namedPort", "portRange"];
    let fields = object(value, path, &keys, problems)?;
    let (key, inner) = exactly_one(fields, path, &keys, problems)?;
    let field = join(path, key);
    let protocol = |fields: &Map<String, Value>, problems: &mut Problems| match fields.get("protocol") {
        None => Some(Protocol::Tcp),
        Some(v) => {
            let text = string(Some(v), &join(&field, "protocol"), problems)?;
            let protocol = Protocol::parse(text);
            if protocol.is_none() {
                problems.error(join(&field, "protocol"), format!("unsupported value {text:?}: use TCP, UDP or SCTP"));
            }
            protocol
        }
    };
    match key {
        "namedPort" => {
            let name = string(Some(inner), &field, problems)?;
            Some(ClusterPort::Named(name.to_string()))
        }
        "portNumber" => {
            let fields = object(inner, &field, &["protocol", "port"], problems)?;
            let protocol = protocol(fields, problems);
            let port = port_number(fields.get("port"), &join(&field, "port"), problems);
            Some(ClusterPort::Port(RulePort::range(protocol?, port?, port?)))
        }
        _ => {
            let fields = object(inner, &field, &["protocol", "start", "end"], problems)?;
            let protocol = protocol(fields, problems);
            let (first, last) = range(inner, &field, &["protocol", "start", "end"], problems)?;
            Some(ClusterPort::Port(RulePort::range(protocol?, first, last)))
        }
    }
}

/// A Node: its labels and the IP addresses in `status.addresses` (host names skipped).
pub fn node(value: &Value, problems: &mut Problems) -> Option<Node> {
    let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    if name.is_empty() {
        problems.error("metadata.name", "is required");
        return None;
    }
    let labels = match value.pointer("/metadata/labels") {
        None | Some(Value::Null) => Default::default(),
        Some(v) => match serde_json::from_value(v.clone()) {
            Ok(labels) => convert::labels(Some(&labels), "metadata.labels", problems),
            Err(_) => {
                problems.error("metadata.labels", "must map strings to strings");
                return None;
            }
        },
    };
    let addresses = value
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("address").and_then(Value::as_str)?.parse::<IpAddr>().ok())
        .collect();
    Some(Node { name, labels, addresses })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        assert!(domain_name_ok("kubernetes.io"));
        assert!(domain_name_ok("*.kubernetes.io"));
        assert!(domain_name_ok("a_b.example.com."));
        assert!(!domain_name_ok("localhost"));
        assert!(!domain_name_ok("*kubernetes.io"));
        assert!(!domain_name_ok("-a.io"));
    }
}
