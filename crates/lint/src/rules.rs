//! The rule catalogue. Ids are stable: annotations, `--disable` and SARIF consumers use them.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How much a finding matters; `--fail-on` compares against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    /// SARIF's name for the level (`info` is `note` there).
    pub fn sarif(self) -> &'static str {
        match self {
            Level::Info => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Level::Info, Level::Warning, Level::Error]
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown level {s:?}: use error, warning or info"))
    }
}

/// A rule: what it checks and how to fix what it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: &'static str,
    /// The level of its findings (NC003 reports 53/TCP one level lower than 53/UDP).
    pub level: Level,
    pub title: &'static str,
    pub help: &'static str,
}

const fn rule_info(id: &'static str, level: Level, title: &'static str, help: &'static str) -> RuleInfo {
    RuleInfo { id, level, title, help }
}

/// Every rule lint has, in id order.
pub const RULES: [RuleInfo; 12] = [
    rule_info(
        "NC001",
        Level::Warning,
        "namespace without a default-deny ingress policy",
        "Some pods of the namespace are not isolated for ingress: every pod in the cluster can reach them. \
         Add a policy with `podSelector: {}` and `policyTypes: [Ingress]` (manifests/policies/default-deny), \
         then allow what they need.",
    ),
    rule_info(
        "NC002",
        Level::Info,
        "namespace without a default-deny egress policy",
        "Some pods of the namespace are not isolated for egress: they can reach anything. \
         Add a policy with `podSelector: {}` and `policyTypes: [Egress]`, and allow DNS.",
    ),
    rule_info(
        "NC003",
        Level::Error,
        "pods isolated for egress cannot reach cluster DNS",
        "The pods cannot resolve names. Allow egress to the DNS pods (kube-system, `k8s-app: kube-dns`) \
         on 53/UDP and 53/TCP, as manifests/policies/default-deny/allow-dns.yaml does. \
         53/TCP missing is a warning: answers too large for UDP then fail.",
    ),
    rule_info(
        "NC004",
        Level::Warning,
        "policy selects no pod",
        "The policy's podSelector matches no pod or workload of its namespace: it has no effect. \
         Fix the labels, or delete the policy.",
    ),
    rule_info(
        "NC005",
        Level::Warning,
        "peer selects nothing",
        "A namespaceSelector matches no namespace, or a podSelector no pod in the selected namespaces: \
         the peer allows nothing. Fix the labels (namespaces carry `kubernetes.io/metadata.name`).",
    ),
    rule_info(
        "NC006",
        Level::Warning,
        "ingress rule admits every namespace",
        "`namespaceSelector: {}` without a podSelector, or a rule without `from`, admits pods of every \
         namespace into pods that are otherwise isolated. Name the namespaces (and pods) that need access.",
    ),
    rule_info(
        "NC007",
        Level::Warning,
        "metrics scrape blocked",
        "A pod declares a metrics port (named metrics, http-metrics or prometheus) but the Prometheus pods \
         cannot reach it. Allow ingress from Prometheus on that port \
         (manifests/policies/gotchas/allow-prometheus-scrape.yaml).",
    ),
    rule_info(
        "NC008",
        Level::Warning,
        "named port no destination declares",
        "A rule names a port that no pod it can reach declares: the entry matches nothing. \
         Use the containerPort's name exactly, with its protocol, or a number.",
    ),
    rule_info(
        "NC009",
        Level::Info,
        "ipBlock contains pod IPs",
        "Whether an ipBlock matches traffic from or to pods is implementation-defined (CNIs differ, and \
         source NAT changes addresses). Select pods with podSelector/namespaceSelector instead.",
    ),
    rule_info(
        "NC010",
        Level::Info,
        "kubelet probes of pods isolated for ingress",
        "The kubelet sends TCP, HTTP and gRPC probes from the node. Most CNIs admit traffic from a pod's own node \
         whatever the policy says; not all do (nor every host-firewall setting), and there the pods fail their \
         probes. If yours does not, allow ingress from the nodes' addresses (an ipBlock of the node CIDR) on the \
         probed ports.",
    ),
    rule_info(
        "NC011",
        Level::Info,
        "service mesh ports not admitted",
        "Istio's and Linkerd's proxies need ports of their own: Istio 15020, 15021 and 15090 inbound and istiod's \
         15012 outbound; Linkerd 4143 and 4191 inbound and its control plane's 8086, 8090 and 8080 outbound. \
         Allow them in the policies that isolate meshed pods.",
    ),
    rule_info(
        "NC012",
        Level::Warning,
        "policy selects host-network pods",
        "Pods on the host network share the node's network: pod policy does not govern them, whatever the \
         policy says. Protect them with host firewalling or a CNI host policy.",
    ),
];

/// The catalogue entry of a rule id; panics on an unknown id (ids are constants here).
pub fn rule(id: &str) -> &'static RuleInfo {
    RULES.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("no rule {id}"))
}
