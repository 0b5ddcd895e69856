//! The outcome vocabulary (stable: the comparator and reports depend on it) and the mapping
//! from socket errors to outcomes.
//!
//! The mapping is done on raw OS error codes rather than [`io::ErrorKind`], because the kinds
//! merge codes that mean different things here: `EPERM` from a local packet filter is
//! "blocked", while `EADDRNOTAVAIL` (no source address) is a broken probe.

use std::fmt;
use std::io;

use rustix::io::Errno;
use serde::{Deserialize, Serialize};

/// What the network did to one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Observed {
    /// TCP handshake done, UDP echo received, or a DNS answer (NXDOMAIN included).
    Connected,
    /// TCP RST or ICMP port unreachable: the packet got through but nothing listens.
    Refused,
    /// No answer before the deadline.
    Timeout,
    /// ICMP unreachable/prohibited, or a local filter refused to send the packet.
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

/// The result of one probe before timing is attached: an outcome plus, where it helps a
/// person debug, a short human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub observed: Observed,
    pub detail: Option<String>,
}

impl Outcome {
    pub fn new(observed: Observed, detail: impl Into<Option<String>>) -> Self {
        Outcome { observed, detail: detail.into() }
    }

    pub fn connected() -> Self {
        Outcome::new(Observed::Connected, None)
    }

    pub fn timeout(waited: std::time::Duration) -> Self {
        Outcome::new(Observed::Timeout, format!("no answer within {} ms", waited.as_millis()))
    }

    pub fn error(detail: impl Into<String>) -> Self {
        Outcome::new(Observed::Error, detail.into())
    }

    /// Classifies the error of socket operation `op` (e.g. "connect", "send").
    pub fn from_io(op: &str, err: &io::Error) -> Self {
        let observed = classify_io_error(err);
        let hint = match Errno::from_io_error(err) {
            Some(Errno::PERM | Errno::ACCESS) => " (a local packet filter or an ICMP admin-prohibited)",
            _ => "",
        };
        Outcome::new(observed, format!("{op}: {err}{hint}"))
    }
}

/// Maps a socket error to an outcome by its raw OS error code.
///
/// - `ECONNREFUSED`: a TCP RST, or ICMP port unreachable on a connected UDP socket.
/// - `EHOSTUNREACH`/`ENETUNREACH`: ICMP host/net unreachable, ICMPv4 admin-prohibited
///   (Linux maps "communication administratively prohibited" to `EHOSTUNREACH`), or no route.
/// - `EACCES`: ICMPv6 admin-prohibited (Linux maps it so).
/// - `EPERM`: a local netfilter rule dropped the outgoing packet.
/// - `ETIMEDOUT`: the kernel gave up retransmitting.
///
/// Anything else means the probe itself broke.
pub fn classify_io_error(err: &io::Error) -> Observed {
    match Errno::from_io_error(err) {
        Some(Errno::CONNREFUSED) => Observed::Refused,
        Some(Errno::HOSTUNREACH | Errno::NETUNREACH | Errno::ACCESS | Errno::PERM) => Observed::Unreachable,
        Some(Errno::TIMEDOUT) => Observed::Timeout,
        _ => Observed::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: Errno) -> io::Error {
        io::Error::from_raw_os_error(errno.raw_os_error())
    }

    #[test]
    fn classifies_raw_os_errors() {
        let table = [
            (Errno::CONNREFUSED, Observed::Refused),
            (Errno::HOSTUNREACH, Observed::Unreachable),
            (Errno::NETUNREACH, Observed::Unreachable),
            (Errno::ACCESS, Observed::Unreachable),
            (Errno::PERM, Observed::Unreachable),
            (Errno::TIMEDOUT, Observed::Timeout),
            (Errno::ADDRNOTAVAIL, Observed::Error),
            (Errno::MFILE, Observed::Error),
            (Errno::INVAL, Observed::Error),
        ];
        for (errno, want) in table {
            assert_eq!(classify_io_error(&os(errno)), want, "errno {errno:?}");
        }
        let not_os = io::Error::other("synthetic");
        assert_eq!(classify_io_error(&not_os), Observed::Error);
    }

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
