//! The outcome vocabulary (stable: the comparator, reports and metrics depend on it).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the network did to one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Observed {
    /// TCP handshake done, UDP echo received, or a DNS answer (NXDOMAIN included).
    Connected,
    /// TCP RST, or ICMP port unreachable from the destination itself: the packet got
    /// through but nothing listens.
    Refused,
    /// No answer before the deadline.
    Timeout,
    /// ICMP unreachable/prohibited (a port unreachable included when a filter sent it: for
    /// TCP, in place of a reset; for UDP, from another address than the destination), or a
    /// local filter refused to send the packet.
    Unreachable,
    /// The probe itself failed (bad target, no address, socket error): inconclusive.
    Error,
}

/// How an [`Observed`] outcome counts when compared with the policy's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reachability {
    /// The policy let the packet through (whether or not something listened).
    Reachable,
    /// The policy (or the network) stopped the packet.
    Blocked,
    /// The probe broke; never counts as a pass.
    Inconclusive,
}

impl Observed {
    /// All outcomes, in the order of the contract's table.
    pub const ALL: [Observed; 5] =
        [Observed::Connected, Observed::Refused, Observed::Timeout, Observed::Unreachable, Observed::Error];

    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Observed::Connected => "connected",
            Observed::Refused => "refused",
            Observed::Timeout => "timeout",
            Observed::Unreachable => "unreachable",
            Observed::Error => "error",
        }
    }

    pub fn reachability(self) -> Reachability {
        match self {
            Observed::Connected | Observed::Refused => Reachability::Reachable,
            Observed::Timeout | Observed::Unreachable => Reachability::Blocked,
            Observed::Error => Reachability::Inconclusive,
        }
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_the_contract_spelling() {
        for observed in Observed::ALL {
            let json = serde_json::to_string(&observed).unwrap();
            assert_eq!(json, format!("\"{}\"", observed.as_str()));
            let back: Observed = serde_json::from_str(&json).unwrap();
            assert_eq!(back, observed);
        }
    }

    #[test]
    fn counts_as_the_contract_says() {
        use Reachability::*;
        assert_eq!(Observed::Connected.reachability(), Reachable);
        assert_eq!(Observed::Refused.reachability(), Reachable);
        assert_eq!(Observed::Timeout.reachability(), Blocked);
        assert_eq!(Observed::Unreachable.reachability(), Blocked);
        assert_eq!(Observed::Error.reachability(), Inconclusive);
    }
}
