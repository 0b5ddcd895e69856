//! Who refused a probe: the destination, or a filter on the way that rejected it.
//!
//! Linux reports two different answers as the same `ECONNREFUSED`: a TCP reset or an ICMP
//! port unreachable from the destination (nothing listens there: the network let the probe
//! through, `refused`), and an ICMP port unreachable that a packet filter sends in the
//! destination's stead — iptables' `REJECT` without `--reject-with`, which is how
//! kube-router, for one, turns away what NetworkPolicy denies. That second answer means the
//! probe was blocked (`unreachable`), and calling it `refused` would report every door such
//! a network closes as open. The socket keeps enough evidence to tell them apart:
//!
//! - TCP: a TCP stack answers a closed port with a reset, never with an ICMP port
//!   unreachable; so a refusal without any segment received (`tcpi_segs_in` of `TCP_INFO`,
//!   Linux 4.2 and later) came by ICMP, from a filter, whoever sent it.
//! - UDP: a closed port is answered by an ICMP port unreachable from the destination
//!   itself; one from another address (the error queue of `IP_RECVERR` names the sender)
//!   is a filter on the way, such as the node between two pods.
//!
//! What cannot be told apart stays `refused`: a filter that answers with a TCP reset
//! (`reject with tcp reset`), or one that sends the UDP port unreachable from the
//! destination's own address (a filter inside the destination's network namespace).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::observation::{Observation, Observed};

/// The transport a refusal came back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// What the socket saw of a refusal (`ECONNREFUSED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// At least one TCP segment came back: the reset.
    TcpReset,
    /// No TCP segment came back, or the error queue holds an ICMP port unreachable; `from`
    /// is its sender when the kernel said.
    Icmp { from: Option<IpAddr> },
    /// The socket could not say (no `TCP_INFO`, nothing queued).
    Unknown,
}

/// The outcome of a refusal of a probe to `destination`, seen in socket operation `op`.
pub fn judge(op: &str, transport: Transport, destination: IpAddr, evidence: Evidence) -> Observation {
    let refused = |why: &str| Observation::new(Observed::Refused, format!("{op}: connection refused ({why})"));
    let rejected = |why: String| Observation::new(Observed::Unreachable, format!("{op}: rejected by a filter: {why}"));
    let sender = |from: Option<IpAddr>| from.map_or_else(String::new, |ip| format!(" from {ip}"));
    match (transport, evidence) {
        (Transport::Tcp, Evidence::TcpReset) => refused("a TCP reset: nothing listens"),
        (Transport::Tcp, Evidence::Icmp { from }) => {
            rejected(format!("ICMP port unreachable{} where a TCP stack would send a reset", sender(from)))
        }
        (Transport::Udp, Evidence::Icmp { from: Some(from) }) if !same_address(from, destination) => {
            rejected(format!("ICMP port unreachable from {from}, not from the destination {destination}"))
        }
        (Transport::Udp, Evidence::Icmp { .. }) => {
            refused("ICMP port unreachable from the destination: nothing listens")
        }
        (_, Evidence::Unknown | Evidence::TcpReset) => refused("the socket cannot tell who refused"),
    }
}

fn same_address(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// The evidence a TCP socket holds after a refusal.
pub fn tcp_evidence(socket: BorrowedFd<'_>) -> Evidence {
    match tcp_segments_in(socket) {
        Some(0) => Evidence::Icmp { from: queued_icmp_sender(socket) },
        Some(_) => Evidence::TcpReset,
        None => Evidence::Unknown,
    }
}

/// The evidence a connected UDP socket holds after a refusal.
pub fn udp_evidence(socket: BorrowedFd<'_>) -> Evidence {
    match queued_icmp(socket) {
        Some(from) => Evidence::Icmp { from },
        None => Evidence::Unknown,
    }
}

/// Sets `IP_RECVERR` (or `IPV6_RECVERR`): every ICMP error then reaches `send`/`recv` and
/// the socket's error queue, with the address of its sender. Neither socket2 nor rustix
/// exposes this option, hence the raw `setsockopt`.
pub fn enable_recverr(socket: BorrowedFd<'_>, ipv6: bool) -> io::Result<()> {
    let (level, name) =
        if ipv6 { (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) } else { (libc::IPPROTO_IP, libc::IP_RECVERR) };
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is borrowed for the whole call; the option value points to a
    // live `c_int` and its exact size is passed, as the option wants.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&on).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// `tcpi_segs_in`: how many segments the connection received.
fn tcp_segments_in(socket: BorrowedFd<'_>) -> Option<u32> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the descriptor is borrowed for the whole call; `info` is a zeroed `tcp_info`
    // and `len` its size, so the kernel writes at most that many bytes into it.
    let rc = unsafe {
        libc::getsockopt(socket.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, info.as_mut_ptr().cast(), &mut len)
    };
    // Kernels before 4.2 return a shorter struct, without the counter.
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_segs_in) + std::mem::size_of::<u32>();
    if rc != 0 || (len as usize) < needed {
        return None;
    }
    // SAFETY: zero-initialised, then written by the kernel: every field holds a valid integer.
    Some(unsafe { info.assume_init() }.tcpi_segs_in)
}

fn queued_icmp_sender(socket: BorrowedFd<'_>) -> Option<IpAddr> {
    queued_icmp(socket).flatten()
}

/// Reads the first ICMP error of the socket's error queue (without waiting): `Some(sender)`
/// for one that came by ICMP (the sender `None` when the kernel did not name it), `None`
/// when nothing ICMP is queued.
fn queued_icmp(socket: BorrowedFd<'_>) -> Option<Option<IpAddr>> {
    let mut data = [0u8; 64];
    let mut control = [0u8; 256];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    // SAFETY: an all-zero msghdr is a valid empty one (null name, no buffers).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    // SAFETY: the descriptor is borrowed for the whole call; `msg` points to the live `iov`
    // and `control` buffers with their lengths, which bound what the kernel writes.
    let rc = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if rc < 0 {
        return None;
    }
    let written = (msg.msg_controllen as usize).min(control.len());
    icmp_in_control(&control[..written])
}

/// Finds an `IP_RECVERR`/`IPV6_RECVERR` control message holding an ICMP error, and its
/// sender (`SO_EE_OFFENDER`: the address that follows the `sock_extended_err`).
fn icmp_in_control(control: &[u8]) -> Option<Option<IpAddr>> {
    let header = std::mem::size_of::<libc::cmsghdr>();
    let align = |n: usize| n.next_multiple_of(std::mem::size_of::<usize>());
    let mut rest = control;
    while rest.len() >= header {
        let len = usize::from_ne_bytes(rest[..std::mem::size_of::<usize>()].try_into().ok()?);
        let level = read_i32(rest, std::mem::size_of::<usize>())?;
        let kind = read_i32(rest, std::mem::size_of::<usize>() + 4)?;
        if len < header || len > rest.len() {
            return None;
        }
        let body = &rest[align(header)..len];
        let recverr = (level == libc::SOL_IP && kind == libc::IP_RECVERR)
            || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR);
        if recverr && let Some(found) = icmp_error(body) {
            return Some(found);
        }
        rest = rest.get(align(len)..)?;
    }
    None
}

/// `struct sock_extended_err` then the offender's `sockaddr`.
fn icmp_error(body: &[u8]) -> Option<Option<IpAddr>> {
    const EXTENDED_ERR: usize = 16;
    let origin = *body.get(4)?;
    if origin != libc::SO_EE_ORIGIN_ICMP && origin != libc::SO_EE_ORIGIN_ICMP6 {
        return None;
    }
    Some(sockaddr_ip(body.get(EXTENDED_ERR..).unwrap_or_default()))
}

fn sockaddr_ip(addr: &[u8]) -> Option<IpAddr> {
    let family = i32::from(u16::from_ne_bytes(addr.get(..2)?.try_into().ok()?));
    match family {
        libc::AF_INET => {
            let octets: [u8; 4] = addr.get(4..8)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        libc::AF_INET6 => {
            let octets: [u8; 16] = addr.get(8..24)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 66, 1, 11));
    const NODE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 66, 0, 1));

    #[test]
    fn a_refusal_is_blocked_when_a_filter_sent_it() {
        use Evidence::*;
        use Transport::{Tcp, Udp};
        let table = [
            (Tcp, TcpReset, Observed::Refused),
            (Tcp, Icmp { from: Some(NODE) }, Observed::Unreachable),
            // From the destination's own address: still no reset, so still a filter.
            (Tcp, Icmp { from: Some(POD) }, Observed::Unreachable),
            (Tcp, Icmp { from: None }, Observed::Unreachable),
            (Tcp, Unknown, Observed::Refused),
            (Udp, Icmp { from: Some(NODE) }, Observed::Unreachable),
            (Udp, Icmp { from: Some(POD) }, Observed::Refused),
            (Udp, Icmp { from: None }, Observed::Refused),
            (Udp, Unknown, Observed::Refused),
        ];
        for (transport, evidence, want) in table {
            let got = judge("connect", transport, POD, evidence);
            assert_eq!(got.observed, want, "{transport:?} {evidence:?}: {:?}", got.detail);
        }
        let v4_mapped = IpAddr::V6(Ipv4Addr::new(10, 66, 1, 11).to_ipv6_mapped());
        assert_eq!(judge("recv", Udp, POD, Icmp { from: Some(v4_mapped) }).observed, Observed::Refused);
    }

    #[test]
    fn the_detail_names_the_sender() {
        let got = judge("recv", Transport::Udp, POD, Evidence::Icmp { from: Some(NODE) });
        assert_eq!(
            got.detail.as_deref(),
            Some(
                "recv: rejected by a filter: ICMP port unreachable from 10.66.0.1, not from the destination 10.66.1.11"
            )
        );
    }

    /// A control message as the kernel writes it for an ICMP port unreachable on IPv4.
    fn control_message(origin: u8, family: i32, addr: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(libc::ECONNREFUSED as u32).to_ne_bytes());
        body.extend_from_slice(&[origin, 3, 3, 0]);
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&(family as u16).to_ne_bytes());
        body.extend_from_slice(&[0; 2]);
        body.extend_from_slice(addr);
        body.extend_from_slice(&[0; 8]);
        let header = std::mem::size_of::<libc::cmsghdr>();
        let mut out = Vec::new();
        out.extend_from_slice(&(header + body.len()).to_ne_bytes());
        out.extend_from_slice(&libc::SOL_IP.to_ne_bytes());
        out.extend_from_slice(&libc::IP_RECVERR.to_ne_bytes());
        out.resize(header.next_multiple_of(std::mem::size_of::<usize>()), 0);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn reads_the_sender_of_a_queued_icmp_error() {
        let control = control_message(libc::SO_EE_ORIGIN_ICMP, libc::AF_INET, &[10, 66, 0, 1]);
        assert_eq!(icmp_in_control(&control), Some(Some(NODE)));
        let unnamed = control_message(libc::SO_EE_ORIGIN_ICMP, 0, &[0; 4]);
        assert_eq!(icmp_in_control(&unnamed), Some(None));
        let local = control_message(libc::SO_EE_ORIGIN_LOCAL, libc::AF_INET, &[10, 66, 0, 1]);
        assert_eq!(icmp_in_control(&local), None);
        assert_eq!(icmp_in_control(&control[..10]), None);
        assert_eq!(icmp_in_control(&[]), None);
    }
}
