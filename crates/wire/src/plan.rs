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
//! on a dns probe.
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
                AgentProbe {
                    id: "1".into(),
                    target: ProbeTarget::to_address(Transport::Tcp, "10.0.0.2".parse().unwrap(), 80),
                },
                AgentProbe {
                    id: "2".into(),
                    target: ProbeTarget::to_address(Transport::Udp, "fd00::2".parse().unwrap(), 81),
                },
                AgentProbe {
                    id: "3".into(),
                    target: ProbeTarget::Dns {
                        name: "kubernetes.default.svc.cluster.local".into(),
                        server: "10.96.0.10:53".parse().unwrap(),
                        transport: Transport::Tcp,
                    },
                },
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
}
