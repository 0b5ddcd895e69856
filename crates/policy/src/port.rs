//! Ports and protocols: what a rule's `ports` entry allows, and the containerPorts that
//! give named ports their numbers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The transport protocols NetworkPolicy knows. The API defaults an omitted protocol to TCP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The API's spelling is upper case and nothing else is accepted by the API server.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A destination port and protocol: the unit a verdict is computed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortProto {
    pub port: u16,
    pub protocol: Protocol,
}

impl PortProto {
    pub fn new(port: u16, protocol: Protocol) -> Self {
        Self { port, protocol }
    }
}

impl fmt::Display for PortProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// Parses `80`, `80/TCP`, `53/udp`: the protocol defaults to TCP as in the API.
impl FromStr for PortProto {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (port, protocol) = match s.split_once('/') {
            Some((port, protocol)) => {
                let upper = protocol.to_ascii_uppercase();
                let protocol = Protocol::parse(&upper)
                    .ok_or_else(|| format!("unknown protocol {protocol:?} in {s:?}: use TCP, UDP or SCTP"))?;
                (port, protocol)
            }
            None => (s, Protocol::Tcp),
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port {port:?} in {s:?} must be a number from 1 to 65535"))?;
        Ok(Self { port, protocol })
    }
}

/// A port a container declares; named ports in policies resolve against these.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

/// What one entry of a rule's `ports` list selects.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortMatch {
    /// `port` omitted: every port of the protocol.
    Any,
    /// `port: 80`, or `port: 32000` with `endPort: 32768` (inclusive).
    Range { first: u16, last: u16 },
    /// `port: http`: the destination pod's containerPort of that name and protocol.
    Named(String),
}

/// One entry of a rule's `ports` list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RulePort {
    pub protocol: Protocol,
    pub port: PortMatch,
}

/// How a rule port relates to a destination port: the explanation needs to say which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortOutcome {
    Matches,
    /// The named port resolves on the destination, but to another number or protocol.
    NamedElsewhere,
    /// The destination has no containerPort of that name and protocol (or no containers at all).
    NamedUnresolved,
    Differs,
}

impl RulePort {
    /// Whether traffic to `target` on a destination declaring `dest_ports` is selected.
    pub fn outcome(&self, target: PortProto, dest_ports: &[ContainerPort]) -> PortOutcome {
        if self.protocol != target.protocol {
            return PortOutcome::Differs;
        }
        match &self.port {
            PortMatch::Any => PortOutcome::Matches,
            PortMatch::Range { first, last } if (*first..=*last).contains(&target.port) => PortOutcome::Matches,
            PortMatch::Range { .. } => PortOutcome::Differs,
            PortMatch::Named(name) => {
                let mut resolved = dest_ports
                    .iter()
                    .filter(|p| p.name.as_deref() == Some(name.as_str()) && p.protocol == self.protocol)
                    .peekable();
                if resolved.peek().is_none() {
                    PortOutcome::NamedUnresolved
                } else if resolved.any(|p| p.port == target.port) {
                    PortOutcome::Matches
                } else {
                    PortOutcome::NamedElsewhere
                }
            }
        }
    }

    pub fn matches(&self, target: PortProto, dest_ports: &[ContainerPort]) -> bool {
        self.outcome(target, dest_ports) == PortOutcome::Matches
    }
}

impl fmt::Display for RulePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.port {
            PortMatch::Any => write!(f, "any/{}", self.protocol),
            PortMatch::Range { first, last } if first == last => write!(f, "{first}/{}", self.protocol),
            PortMatch::Range { first, last } => write!(f, "{first}-{last}/{}", self.protocol),
            PortMatch::Named(name) => write!(f, "{name}/{}", self.protocol),
        }
    }
}

/// Why a named port is not a valid IANA service name, as the API server checks it.
pub fn port_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 15 {
        return Some("must be 1 to 15 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Some("may contain only lower-case letters, digits and '-'");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return Some("must contain at least one letter");
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Some("may not begin or end with '-' nor contain '--'");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cport(name: &str, port: u16, protocol: Protocol) -> ContainerPort {
        ContainerPort { name: Some(name.into()), port, protocol }
    }

    #[test]
    fn parses_port_proto() {
        assert_eq!("80".parse::<PortProto>().unwrap(), PortProto::new(80, Protocol::Tcp));
        assert_eq!("53/udp".parse::<PortProto>().unwrap(), PortProto::new(53, Protocol::Udp));
        assert!("0/TCP".parse::<PortProto>().is_err());
        assert!("65536".parse::<PortProto>().is_err());
        assert!("80/ICMP".parse::<PortProto>().unwrap_err().contains("ICMP"));
    }

    #[test]
    fn ranges_are_inclusive() {
        let rule = RulePort { protocol: Protocol::Tcp, port: PortMatch::Range { first: 80, last: 81 } };
        assert!(rule.matches(PortProto::new(80, Protocol::Tcp), &[]));
        assert!(rule.matches(PortProto::new(81, Protocol::Tcp), &[]));
        assert!(!rule.matches(PortProto::new(82, Protocol::Tcp), &[]));
        assert!(!rule.matches(PortProto::new(80, Protocol::Udp), &[]));
    }

    #[test]
    fn named_ports_resolve_with_the_same_protocol() {
        let ports = [cport("dns", 53, Protocol::Udp), cport("web", 8080, Protocol::Tcp)];
        let named = |name: &str, protocol| RulePort { protocol, port: PortMatch::Named(name.into()) };
        assert!(named("dns", Protocol::Udp).matches(PortProto::new(53, Protocol::Udp), &ports));
        assert_eq!(
            named("dns", Protocol::Tcp).outcome(PortProto::new(53, Protocol::Tcp), &ports),
            PortOutcome::NamedUnresolved
        );
        assert_eq!(
            named("web", Protocol::Tcp).outcome(PortProto::new(80, Protocol::Tcp), &ports),
            PortOutcome::NamedElsewhere
        );
    }

    #[test]
    fn port_names() {
        assert_eq!(port_name_problem("serve-80-tcp"), None);
        assert!(port_name_problem("80").is_some());
        assert!(port_name_problem("Http").is_some());
        assert!(port_name_problem("a--b").is_some());
        assert!(port_name_problem("a-very-long-port-name").is_some());
    }
}
