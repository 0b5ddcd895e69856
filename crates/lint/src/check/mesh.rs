//! NC011: service mesh proxies whose own ports the pod's policies do not admit. An
//! injected proxy listens and dials on ports of its own, besides the application's: a
//! default deny written for the application blocks them, and the mesh breaks in ways that
//! look like application faults.

use netcanary_policy::{Cluster, Direction, Endpoint, PortProto, Protocol};

use super::{Lint, isolation, listing};
use crate::rules::rule;

/// A mesh and the ports its proxy needs, each with what it is for: Istio's from "Ports used
/// by Istio" (istio.io, docs/ops/deployment/application-requirements), Linkerd's from its
/// proxy's listeners and control plane addresses and "Network Policy"
/// (linkerd.io/2/common-errors/network-policy).
pub(super) struct Mesh {
    name: &'static str,
    /// Ports other parties connect to on the pod.
    ingress: &'static [(u16, &'static str)],
    /// Ports the proxy connects to on the control plane.
    egress: &'static [(u16, &'static str)],
}

const ISTIO: Mesh = Mesh {
    name: "Istio",
    ingress: &[
        (15020, "merged metrics and the application's probes, rewritten to the sidecar"),
        (15021, "the sidecar's readiness probe"),
        (15090, "Envoy's Prometheus stats"),
    ],
    egress: &[(15012, "istiod: configuration and certificates")],
};

const LINKERD: Mesh = Mesh {
    name: "Linkerd",
    ingress: &[
        (4143, "the proxy's inbound port, which meshed clients dial in place of the original port"),
        (4191, "the proxy's admin port: its probes and metrics"),
    ],
    egress: &[(8086, "linkerd-destination"), (8090, "linkerd-policy"), (8080, "linkerd-identity")],
};

/// The mesh that injects its proxy into `endpoint`, and what says so. Istio: the pod's
/// `sidecar.istio.io/inject` label or annotation (`"false"` opts out), else unless the
/// namespace is labelled `istio-injection: disabled`, the `istio.io/rev` label on the pod or
/// its namespace, or the namespace's `istio-injection: enabled`.
/// Linkerd: the `linkerd.io/inject` annotation (`enabled` or `ingress`) on the pod, else on
/// its namespace (`disabled` on the pod opts out).
fn mesh_of(cluster: &Cluster, endpoint: &Endpoint) -> Option<(&'static Mesh, String)> {
    let namespace = endpoint.namespace.as_deref()?;
    let ns_labels = cluster.namespace_labels(namespace);
    let ns_label = |key: &str| ns_labels.and_then(|l| l.get(key)).map(String::as_str);
    let istio_pod = endpoint
        .labels
        .get("sidecar.istio.io/inject")
        .or_else(|| endpoint.annotations.get("sidecar.istio.io/inject"))
        .map(String::as_str);
    let istio = match istio_pod {
        Some("true") => Some("sidecar.istio.io/inject: \"true\"".to_string()),
        Some("false") => None,
        _ => match ns_label("istio-injection") {
            Some("disabled") => None,
            _ if endpoint.labels.contains_key("istio.io/rev") => Some("label istio.io/rev".to_string()),
            Some("enabled") => Some(format!("namespace {namespace} labelled istio-injection: enabled")),
            _ if ns_label("istio.io/rev").is_some() => Some(format!("namespace {namespace} labelled istio.io/rev")),
            _ => None,
        },
    };
    if let Some(why) = istio {
        return Some((&ISTIO, why));
    }
    let linkerd = match endpoint.annotations.get("linkerd.io/inject").map(String::as_str) {
        Some(value @ ("enabled" | "ingress")) => Some(format!("linkerd.io/inject: {value}")),
        Some(_) => None,
        None => (cluster.namespace_annotation(namespace, "linkerd.io/inject") == Some("enabled"))
            .then(|| format!("namespace {namespace} annotated linkerd.io/inject: enabled")),
    };
    linkerd.map(|why| (&LINKERD, why))
}

impl Lint<'_> {
    /// NC011: per injected pod (or workload) and isolated direction, the mesh ports no rule
    /// of the isolating policies admits on any peer. Only ports are compared: the kubelet,
    /// Prometheus and other proxies reach the inbound ports, and the control plane's
    /// address is not in the manifests.
    pub(super) fn mesh_ports_blocked(&mut self) {
        let mut found = Vec::new();
        for pod in self.pods() {
            let Some((mesh, why)) = mesh_of(self.cluster, pod) else { continue };
            for (direction, ports) in [(Direction::Ingress, mesh.ingress), (Direction::Egress, mesh.egress)] {
                let Some(isolation) = isolation(self.cluster, pod, direction) else { continue };
                // Ingress named ports resolve on the pod; egress ones on a control plane
                // the input may not hold, so only numbers count there.
                let own_ports = if direction == Direction::Ingress { pod.ports.as_slice() } else { &[] };
                let blocked: Vec<String> = ports
                    .iter()
                    .filter(|(port, _)| {
                        let target = PortProto::new(*port, Protocol::Tcp);
                        !isolation.rules.iter().any(|rule| {
                            rule.ports.is_empty() || rule.ports.iter().any(|p| p.matches(target, own_ports))
                        })
                    })
                    .map(|(port, what)| format!("{port}/TCP ({what})"))
                    .collect();
                if blocked.is_empty() {
                    continue;
                }
                let message = format!(
                    "{} injects its proxy into {} ({why}), and no {direction} rule of {} admits {}",
                    mesh.name,
                    pod.id,
                    listing(&isolation.policies),
                    blocked.join(", ")
                );
                let numbers: Vec<String> =
                    blocked.iter().map(|b| b.split(' ').next().unwrap_or_default().to_string()).collect();
                let fix = match direction {
                    Direction::Ingress => format!(
                        "allow ingress on {} (from the nodes, Prometheus and meshed clients)",
                        numbers.join(", ")
                    ),
                    Direction::Egress => {
                        format!("allow egress to the {} control plane on {}", mesh.name, numbers.join(", "))
                    }
                };
                found.push((pod, message, fix));
            }
        }
        for (pod, message, fix) in found {
            self.push(
                "NC011",
                rule("NC011").level,
                pod.namespace.as_deref(),
                super::object_of(pod),
                None,
                message,
                fix,
            );
        }
    }
}
