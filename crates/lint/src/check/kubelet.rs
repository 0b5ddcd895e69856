//! NC010: kubelet probes of pods isolated for ingress. The kubelet connects from the node
//! (its own address, not a pod's), which most CNIs let through whatever the policy says —
//! and some do not, so a policy that forgets the node can turn into restarting pods on one
//! CNI and not another.

use std::collections::BTreeMap;
use std::net::IpAddr;

use netcanary_policy::{Direction, Endpoint, KubeletProbe, Peer, PortProto, Protocol};

use super::{Isolation, Lint, isolation, listing, pod_field};
use crate::rules::rule;

impl Lint<'_> {
    /// NC010: one finding per pod (or workload) and probed port that no ingress rule of the
    /// policies isolating it admits from the node: a rule with no `from`, or an ipBlock
    /// holding a Node's address (any ipBlock when the input has no Nodes).
    pub(super) fn kubelet_probes_blocked(&mut self) {
        let node_addresses: Vec<IpAddr> = self.cluster.nodes().iter().flat_map(|n| n.addresses.clone()).collect();
        let from_node = |peer: &Peer| match peer {
            Peer::IpBlock(block) => node_addresses.is_empty() || node_addresses.iter().any(|ip| block.contains(*ip)),
            Peer::Pods { .. } => false,
        };
        let mut found = Vec::new();
        for pod in self.pods() {
            let Some(isolation) = isolation(self.cluster, pod, Direction::Ingress) else { continue };
            // The probes by port, in the order the spec lists them.
            let mut by_port: BTreeMap<u16, Vec<&KubeletProbe>> = BTreeMap::new();
            for probe in &pod.kubelet_probes {
                by_port.entry(probe.port).or_default().push(probe);
            }
            for (port, probes) in by_port {
                let target = PortProto::new(port, Protocol::Tcp);
                let admitted = isolation.rules.iter().any(|rule| {
                    (rule.ports.is_empty() || rule.ports.iter().any(|p| p.matches(target, &pod.ports)))
                        && (rule.peers.is_empty() || rule.peers.iter().any(from_node))
                });
                if !admitted {
                    found.push(finding(pod, target, &probes, &isolation));
                }
            }
        }
        for (pod, field, message, fix) in found {
            self.push(
                "NC010",
                rule("NC010").level,
                pod.namespace.as_deref(),
                super::object_of(pod),
                Some(field),
                message,
                fix,
            );
        }
    }
}

fn finding<'a>(
    pod: &'a Endpoint,
    port: PortProto,
    probes: &[&KubeletProbe],
    isolation: &Isolation<'_>,
) -> (&'a Endpoint, String, String, String) {
    let described: Vec<String> = probes
        .iter()
        .map(|p| format!("{} {}", p.field.rsplit('.').next().unwrap_or_default(), p.handler.field()))
        .collect();
    let message = format!(
        "{} on {port} of {}: the kubelet probes from the node, and ingress is isolated by {} with no rule admitting the node; \
         most CNIs let node traffic through anyway, not all do",
        described.join(", "),
        pod.id,
        listing(&isolation.policies)
    );
    let fix = format!(
        "if your CNI does not admit traffic from the node, allow ingress from the nodes' addresses on {port}: \
         from: [{{ipBlock: {{cidr: <node CIDR>}}}}], ports: [{{port: {}}}]",
        port.port
    );
    (pod, pod_field(pod, &probes[0].field), message, fix)
}
