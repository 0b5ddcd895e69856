//! The TCP probe: a non-blocking connect, classified as connected, refused (RST), timeout,
//! unreachable (ICMP, a filter's reject or a local filter) or error.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use rustix::io::Errno;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::observation::Observation;
use crate::refusal;

/// The first look for a soft error; an ICMP from next door arrives well within it.
const FIRST_SOFT_ERROR_CHECK: Duration = Duration::from_millis(5);
const MAX_SOFT_ERROR_CHECK: Duration = Duration::from_millis(100);

/// Tries one TCP handshake with `addr`, giving up after `timeout`.
///
/// The connection is closed as soon as it is established: the handshake alone proves the
/// policy let the packets through, and the target sends nothing.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Observation {
    match connect(addr, Instant::now() + timeout, timeout).await {
        Ok(_stream) => Observation::connected(),
        Err(outcome) => outcome,
    }
}

/// Connects, or says as an outcome why not. Shared with DNS over TCP.
///
/// The connect is driven by hand (socket2 `connect`, then tokio's writability) rather than
/// by `TcpSocket::connect`, so that the socket outlives a timeout: an ICMP error that
/// arrives while the kernel still holds the socket inside `connect(2)` — which is what a
/// reject next door does — is kept only as a "soft" error, and the handshake silently waits
/// for a SYN retransmission. `SO_ERROR` returns that soft error, so a deadline that passes
/// with one pending is the ICMP's verdict (unreachable or refused), not a false timeout. It
/// is checked at growing intervals while waiting, so a reject is reported within
/// milliseconds instead of at the deadline.
pub(crate) async fn connect(addr: SocketAddr, deadline: Instant, timeout: Duration) -> Result<TcpStream, Observation> {
    let socket = new_socket(addr).map_err(|err| Observation::error(format!("tcp socket: {err}")))?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(err) if Errno::from_io_error(&err) == Some(Errno::INPROGRESS) => {}
        Err(err) => return Err(failed("connect", &err, socket.as_fd(), addr)),
    }
    let stream = TcpStream::from_std(socket.into()).map_err(|err| Observation::error(format!("tcp socket: {err}")))?;
    let mut check_every = FIRST_SOFT_ERROR_CHECK;
    loop {
        let check_at = (Instant::now() + check_every).min(deadline);
        match tokio::time::timeout_at(check_at, stream.writable()).await {
            Ok(Ok(())) => {
                return match pending_error(&stream) {
                    None => Ok(stream),
                    Some(err) => Err(failed("connect", &err, stream.as_fd(), addr)),
                };
            }
            Ok(Err(err)) => return Err(failed("connect", &err, stream.as_fd(), addr)),
            Err(_elapsed) => {
                if let Some(err) = pending_error(&stream) {
                    return Err(failed("connect (ICMP during the handshake)", &err, stream.as_fd(), addr));
                }
                if Instant::now() >= deadline {
                    return Err(Observation::timeout(timeout));
                }
                check_every = (check_every * 2).min(MAX_SOFT_ERROR_CHECK);
            }
        }
    }
}

/// The outcome of a failed connect; a refusal is judged by who sent it (see [`refusal`]).
fn failed(op: &str, err: &io::Error, socket: BorrowedFd<'_>, addr: SocketAddr) -> Observation {
    if Errno::from_io_error(err) == Some(Errno::CONNREFUSED) {
        return refusal::judge(op, refusal::Transport::Tcp, addr.ip(), refusal::tcp_evidence(socket));
    }
    Observation::from_io(op, err)
}

/// The socket's pending error (hard, else soft), via `SO_ERROR`.
fn pending_error(stream: &TcpStream) -> Option<io::Error> {
    match stream.take_error() {
        Ok(pending) => pending,
        Err(err) => Some(err),
    }
}

/// Builds the socket with socket2 (linkerd2-proxy style): options are set before the
/// connect, and tokio only ever sees a non-blocking socket.
fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
    // The probe sends no data; no-delay only keeps a future payload from waiting on Nagle.
    socket.set_tcp_nodelay(true)?;
    // The error queue then names the sender of an ICMP error, for the detail of a reject.
    refusal::enable_recverr(socket.as_fd(), addr.is_ipv6())?;
    Ok(socket)
}
