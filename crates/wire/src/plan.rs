//! The agent's plan, as the orchestrator writes it (stable JSON contract):
//!
//! ```json
//! {"timeout_ms": 1000, "probes": [
//!   {"id": "1", "kind": "tcp", "host": "10.0.0.2", "port": 80},
//!   {"id": "2", "kind": "udp", "host": "10.0.0.2", "port": 81},
//!   {"id": "3", "kind": "dns", "name": "kubernetes.default.svc.cluster.local", "server": "10.96.0.10:53"}
//! ]}
//! ```
//!
//! Optional keys: `"concurrency"` and `"delay_ms"` at the top; `"transport": "udp" | "tcp"`
//! on a dns probe; on a tcp or udp probe, `"path": "pod" | "service" | "dns"` (how it reaches
//! its target; absent: `pod`) and `"resolver": "10.96.0.10:53"` (the DNS server that resolves
//! a `host` name; absent: the system resolver).
//! The agent reads plans leniently, one probe at a time, so that one bad probe does not
//! cost the others (see the prober's plan parser); these types are the plan as it should
//! be written.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Used when a plan has no `timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
/// A probe waiting longer than this would outlive any sensible pod deadline.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// The port a dns probe's `server` uses when it names none.
pub const DNS_PORT: u16 = 53;

/// A whole plan for one agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPlan {
    /// Each probe's own deadline, counted from when that probe starts.
    pub timeout_ms: u64,
    /// How many probes may be in flight at once, when the plan asks for a bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// How long the agent waits before its first probe. A pod is new to the network when it
    /// starts, and a network that programs policy per pod does so only once it sees the pod
    /// (kube-router within a second or so): a probe sent at once can find the pod's policy
    /// not in place yet. At most [`MAX_TIMEOUT_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    pub probes: Vec<AgentProbe>,
}

/// One probe of a plan. Results are matched to probes by `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProbe {
    pub id: String,
    #[serde(flatten)]
    pub target: ProbeTarget,
    /// How the probe reaches its target; a plan written before paths existed means `pod`.
    #[serde(default, skip_serializing_if = "ProbePath::is_pod")]
    pub path: ProbePath,
    /// The DNS server that resolves a `host` name (the cluster DNS Service), so that the
    /// `dns` path asks exactly the server policy is judged for; absent: the system resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<SocketAddr>,
}

impl AgentProbe {
    /// A probe by the pod path, resolved (if at all) by the system resolver.
    pub fn new(id: String, target: ProbeTarget) -> Self {
        AgentProbe { id, target, path: ProbePath::Pod, resolver: None }
    }
}

/// How a probe reaches a backend pod. Policy applies to the backend pod after the Service's
/// address is translated, so every path expects the same; a path that disagrees where the
/// others agree points at the translation (kube-proxy, a Service mesh, a DNS view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbePath {
    /// The pod's own IP.
    #[default]
    Pod,
    /// A Service's ClusterIP and port.
    Service,
    /// A Service's name (`NAME.NS.svc.<cluster domain>`), resolved by the source, then its
    /// address and port.
    Dns,
}

impl ProbePath {
    pub const ALL: [ProbePath; 3] = [ProbePath::Pod, ProbePath::Service, ProbePath::Dns];

    pub fn is_pod(&self) -> bool {
        *self == ProbePath::Pod
    }

    /// The metric label, CLI and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbePath::Pod => "pod",
            ProbePath::Service => "service",
            ProbePath::Dns => "dns",
        }
    }

    /// Whether the path goes through a Service netcanary makes for the target.
    pub fn needs_service(self) -> bool {
        self != ProbePath::Pod
    }
}

impl fmt::Display for ProbePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path name that is not `pod`, `service` or `dns`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown probe path {0:?} (expected pod, service or dns)")]
pub struct UnknownPath(pub String);

impl std::str::FromStr for ProbePath {
    type Err = UnknownPath;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ProbePath::ALL.into_iter().find(|p| p.as_str() == text).ok_or_else(|| UnknownPath(text.to_string()))
    }
}

/// What one probe tries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProbeTarget {
    /// A TCP handshake with `host:port`; `host` is an IP address or a DNS name.
    Tcp { host: String, port: u16 },
    /// A probe datagram to `host:port`, answered only by a netcanary target.
    Udp { host: String, port: u16 },
    /// A query for `name` to the DNS server `server`.
    Dns {
        name: String,
        server: SocketAddr,
        #[serde(default)]
        transport: Transport,
    },
}

impl ProbeTarget {
    /// A TCP or UDP probe to an address.
    pub fn to_address(protocol: Transport, ip: IpAddr, port: u16) -> Self {
        let host = ip.to_string();
        match protocol {
            Transport::Tcp => ProbeTarget::Tcp { host, port },
            Transport::Udp => ProbeTarget::Udp { host, port },
        }
    }
}

/// The transport of a probe: TCP or UDP. A DNS probe asks over UDP unless told otherwise;
/// the starter kit's DNS rule allows both, so both are worth proving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_contract_example() {
        let plan = AgentPlan {
            timeout_ms: 1000,
            concurrency: None,
            delay_ms: None,
            probes: vec![
                AgentProbe::new("1".into(), ProbeTarget::to_address(Transport::Tcp, "10.0.0.2".parse().unwrap(), 80)),
                AgentProbe::new("2".into(), ProbeTarget::to_address(Transport::Udp, "fd00::2".parse().unwrap(), 81)),
                AgentProbe::new(
                    "3".into(),
                    ProbeTarget::Dns {
                        name: "kubernetes.default.svc.cluster.local".into(),
                        server: "10.96.0.10:53".parse().unwrap(),
                        transport: Transport::Tcp,
                    },
                ),
            ],
        };
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"timeout_ms":1000,"probes":["#,
                r#"{"id":"1","kind":"tcp","host":"10.0.0.2","port":80},"#,
                r#"{"id":"2","kind":"udp","host":"fd00::2","port":81},"#,
                r#"{"id":"3","kind":"dns","name":"kubernetes.default.svc.cluster.local","server":"10.96.0.10:53","transport":"tcp"}]}"#
            )
        );
        let back: AgentPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn dns_transport_defaults_to_udp() {
        let probe: AgentProbe =
            serde_json::from_str(r#"{"id": "3", "kind": "dns", "name": "a.test", "server": "[fd00::a]:53"}"#).unwrap();
        assert_eq!(
            probe.target,
            ProbeTarget::Dns {
                name: "a.test".into(),
                server: "[fd00::a]:53".parse().unwrap(),
                transport: Transport::Udp
            }
        );
    }

    #[test]
    fn paths_round_trip_and_a_plan_without_one_is_by_pod() {
        let by_name = AgentProbe {
            id: "4".into(),
            target: ProbeTarget::Tcp { host: "web.shop.svc.cluster.local".into(), port: 8080 },
            path: ProbePath::Dns,
            resolver: Some("10.96.0.10:53".parse().unwrap()),
        };
        let by_service = AgentProbe {
            path: ProbePath::Service,
            ..AgentProbe::new("5".into(), ProbeTarget::to_address(Transport::Udp, "10.96.0.7".parse().unwrap(), 53))
        };
        let json = serde_json::to_string(&[&by_name, &by_service]).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"[{"id":"4","kind":"tcp","host":"web.shop.svc.cluster.local","port":8080,"path":"dns","resolver":"10.96.0.10:53"},"#,
                r#"{"id":"5","kind":"udp","host":"10.96.0.7","port":53,"path":"service"}]"#
            )
        );
        let back: Vec<AgentProbe> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [by_name, by_service]);
        let old: AgentProbe =
            serde_json::from_str(r#"{"id": "1", "kind": "tcp", "host": "10.0.0.2", "port": 80}"#).unwrap();
        assert_eq!(old, AgentProbe::new("1".into(), ProbeTarget::Tcp { host: "10.0.0.2".into(), port: 80 }));
        assert_eq!("service".parse::<ProbePath>(), Ok(ProbePath::Service));
        assert_eq!("svc".parse::<ProbePath>(), Err(UnknownPath("svc".into())));
    }
}
