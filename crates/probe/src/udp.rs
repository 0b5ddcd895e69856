//! The UDP probe: send a datagram carrying a fresh nonce and wait for the target's echo.
//!
//! The socket is *connected*, which is what makes ICMP visible: Linux reports an ICMP port
//! unreachable as `ECONNREFUSED` and ICMP host unreachable / admin-prohibited as
//! `EHOSTUNREACH`/`EACCES` (unreachable) on the next `send` or `recv` of a connected socket,
//! and never on an unconnected one. `IP_RECVERR` is needed too: without it Linux drops the
//! "soft" ICMP errors (host or net unreachable) for UDP and only reports the "hard" ones; and
//! its error queue names who sent a port unreachable: the destination (refused: nothing
//! listens) or a filter on the way (unreachable; see [`refusal`]). UDP loses packets, so the
//! datagram is sent again with growing intervals until the deadline; only silence for the
//! whole timeout is `timeout`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use rustix::io::Errno;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::header::{self, Nonce};
use crate::observation::Observation;
use crate::refusal;

/// The first retry waits this long (or a quarter of the timeout, if shorter).
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// Sends netcanary's probe datagram to `addr` and waits up to `timeout` for its echo.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Observation {
    let datagram = header::encode(Nonce::random());
    exchange(addr, timeout, &datagram, |reply| (reply == datagram).then(Observation::connected)).await
}

/// Sends `request` until `answer` accepts a reply, an ICMP error arrives, or `timeout` passes.
/// `answer` returns `None` for datagrams to ignore (strays, or replies to someone else).
/// Shared with DNS over UDP.
pub(crate) async fn exchange(
    addr: SocketAddr,
    timeout: Duration,
    request: &[u8],
    mut answer: impl FnMut(&[u8]) -> Option<Observation>,
) -> Observation {
    let deadline = Instant::now() + timeout;
    let socket = match connected_socket(addr).await {
        Ok(socket) => socket,
        Err(outcome) => return outcome,
    };
    let mut buf = [0u8; 4096];
    let mut interval = FIRST_RETRY.min(timeout / 4);
    loop {
        if let Err(err) = socket.send(request).await {
            return failed("send", &err, &socket, addr);
        }
        let resend_at = (Instant::now() + interval).min(deadline);
        loop {
            match tokio::time::timeout_at(resend_at, socket.recv(&mut buf)).await {
                Ok(Ok(len)) => {
                    if let Some(outcome) = answer(&buf[..len]) {
                        return outcome;
                    }
                }
                Ok(Err(err)) => return failed("recv", &err, &socket, addr),
                Err(_elapsed) => break,
            }
        }
        if Instant::now() >= deadline {
            return Observation::timeout(timeout);
        }
        interval = (interval * 2).min(timeout / 2);
    }
}

async fn connected_socket(addr: SocketAddr) -> Result<UdpSocket, Observation> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(|err| Observation::error(format!("udp socket: {err}")))?;
    refusal::enable_recverr(socket.as_fd(), addr.is_ipv6())
        .map_err(|err| Observation::error(format!("udp socket: IP_RECVERR: {err}")))?;
    // Connecting a UDP socket sends nothing; it fails only when there is no route, which
    // the kernel reports as ENETUNREACH (unreachable) or EADDRNOTAVAIL (error).
    socket.connect(addr).await.map_err(|err| Observation::from_io("connect", &err))?;
    Ok(socket)
}

/// The outcome of a failed `send` or `recv`; a refusal is judged by who sent it.
fn failed(op: &str, err: &io::Error, socket: &UdpSocket, addr: SocketAddr) -> Observation {
    if Errno::from_io_error(err) == Some(Errno::CONNREFUSED) {
        return refusal::judge(op, refusal::Transport::Udp, addr.ip(), refusal::udp_evidence(socket.as_fd()));
    }
    Observation::from_io(op, err)
}
