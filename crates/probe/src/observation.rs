//! One probe's observation before timing is attached, and the mapping from socket errors
//! to the outcome vocabulary ([`Observed`], defined with the rest of the agent's contract).
//!
//! The mapping is done on raw OS error codes rather than [`io::ErrorKind`], because the kinds
//! merge codes that mean different things here: `EPERM` from a local packet filter is
//! "blocked", while `EADDRNOTAVAIL` (no source address) is a broken probe.

use std::io;

pub use netcanary_wire::Observed;
use rustix::io::Errno;

/// The result of one probe before timing is attached: an outcome plus, where it helps a
/// person debug, a short human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub observed: Observed,
    pub detail: Option<String>,
}

impl Observation {
    pub fn new(observed: Observed, detail: impl Into<Option<String>>) -> Self {
        Observation { observed, detail: detail.into() }
    }

    pub fn connected() -> Self {
        Observation::new(Observed::Connected, None)
    }

    pub fn timeout(waited: std::time::Duration) -> Self {
        Observation::new(Observed::Timeout, format!("no answer within {} ms", waited.as_millis()))
    }

    pub fn error(detail: impl Into<String>) -> Self {
        Observation::new(Observed::Error, detail.into())
    }

    /// Classifies the error of socket operation `op` (e.g. "connect", "send").
    pub fn from_io(op: &str, err: &io::Error) -> Self {
        let observed = classify_io_error(err);
        let hint = match Errno::from_io_error(err) {
            Some(Errno::PERM | Errno::ACCESS) => " (a local packet filter or an ICMP admin-prohibited)",
            _ => "",
        };
        Observation::new(observed, format!("{op}: {err}{hint}"))
    }
}

/// Maps a socket error to an outcome by its raw OS error code.
///
/// - `ECONNREFUSED`: a TCP RST, or ICMP port unreachable on a connected UDP socket; the
///   TCP and UDP probes ask [`crate::refusal`] whether a filter sent it instead.
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
}
