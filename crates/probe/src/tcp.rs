//! The TCP probe: a non-blocking connect, classified as connected, refused (RST), timeout,
//! unreachable (ICMP or a local filter) or error.

use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::observed::Outcome;

/// Tries one TCP handshake with `addr`, giving up after `timeout`.
///
/// The connection is closed as soon as it is established: the handshake alone proves the
/// policy let the packets through, and the target sends nothing.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Outcome {
    match connect(addr, Instant::now() + timeout, timeout).await {
        Ok(_stream) => Outcome::connected(),
        Err(outcome) => outcome,
    }
}

/// Connects, or says as an outcome why not. Shared with DNS over TCP.
pub(crate) async fn connect(
    addr: SocketAddr,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, Outcome> {
    let socket = new_socket(addr).map_err(|err| Outcome::error(format!("tcp socket: {err}")))?;
    match tokio::time::timeout_at(deadline, socket.connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) => Err(Outcome::from_io("connect", &err)),
        Err(_elapsed) => Err(Outcome::timeout(timeout)),
    }
}

/// Builds the socket with socket2 (linkerd2-proxy style) and hands it to tokio: options are
/// set before the connect, and tokio only ever sees a non-blocking socket.
fn new_socket(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    // The probe sends no data; no-delay only keeps a future payload from waiting on Nagle.
    socket.set_tcp_nodelay(true)?;
    Ok(TcpSocket::from_std_stream(socket.into()))
}
