//! The target: accepts TCP connections (and closes them at once) and echoes UDP datagrams
//! that carry netcanary's probe header back to their sender. Anything else gets no reply —
//! a target must answer only netcanary (DESIGN.md, probe-pod safety rules).
//!
//! Shaped like mini-redis: [`bind`] makes the listeners, [`serve`] runs them until a
//! shutdown future completes, so tests bind `127.0.0.1:0` and run the server in-process.
//! Nothing is logged per connection: thousands of probes must not flood the pod's log.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::header;

/// Room for a burst of thousands of simultaneous handshakes.
const LISTEN_BACKLOG: i32 = 4096;
/// Room for a burst of thousands of datagrams; the kernel caps it at `net.core.rmem_max`.
const UDP_RECV_BUFFER: usize = 4 << 20;
/// Pause after an accept error such as EMFILE, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// The bound sockets a target serves.
#[derive(Debug, Default)]
pub struct Listeners {
    pub tcp: Vec<TcpListener>,
    pub udp: Vec<UdpSocket>,
}

impl Listeners {
    /// The bound addresses, for the readiness line and for tests that bound port 0.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp.iter().filter_map(|s| s.local_addr().ok()).collect()
    }
}

/// What a target did, reported when it stops.
#[derive(Debug, Default)]
pub struct ServeStats {
    pub tcp_accepted: AtomicU64,
    pub udp_echoed: AtomicU64,
    pub udp_ignored: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot listen on {proto} {addr}: {source}")]
    Bind { proto: &'static str, addr: SocketAddr, source: io::Error },
    #[error("cannot listen on [::] ({v6}) nor on 0.0.0.0 ({v4})")]
    NoStack { v6: Box<TargetError>, v4: Box<TargetError> },
}

/// Binds every port on `listen`. With no address, `::` (dual-stack: IPv4 and IPv6) is used,
/// falling back to `0.0.0.0` on a host without IPv6. Must run inside a tokio runtime.
pub fn bind(listen: Option<IpAddr>, tcp_ports: &[u16], udp_ports: &[u16]) -> Result<Listeners, TargetError> {
    if let Some(ip) = listen {
        return bind_on(ip, tcp_ports, udp_ports);
    }
    match bind_on(Ipv6Addr::UNSPECIFIED.into(), tcp_ports, udp_ports) {
        Ok(listeners) => Ok(listeners),
        Err(v6) => {
            warn!(error = %v6, "IPv6 unavailable, listening on IPv4 only");
            bind_on(Ipv4Addr::UNSPECIFIED.into(), tcp_ports, udp_ports)
                .map_err(|v4| TargetError::NoStack { v6: Box::new(v6), v4: Box::new(v4) })
        }
    }
}

fn bind_on(ip: IpAddr, tcp_ports: &[u16], udp_ports: &[u16]) -> Result<Listeners, TargetError> {
    let mut listeners = Listeners::default();
    for &port in tcp_ports {
        let addr = SocketAddr::new(ip, port);
        let listener = tcp_listener(addr).map_err(|source| TargetError::Bind { proto: "tcp", addr, source })?;
        listeners.tcp.push(listener);
    }
    for &port in udp_ports {
        let addr = SocketAddr::new(ip, port);
        let socket = udp_socket(addr).map_err(|source| TargetError::Bind { proto: "udp", addr, source })?;
        listeners.udp.push(socket);
    }
    Ok(listeners)
}

/// A socket2 socket for `addr`; on the IPv6 wildcard it is dual-stack (`IPV6_V6ONLY` off),
/// so one socket answers IPv4 (as v4-mapped addresses) and IPv6 alike.
fn new_socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty.nonblocking().cloexec(), Some(protocol))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    Ok(socket)
}

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    // A restarted target must not wait for the previous one's TIME_WAIT sockets.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    if let Err(err) = socket.set_recv_buffer_size(UDP_RECV_BUFFER) {
        debug!(%err, "cannot enlarge the udp receive buffer");
    }
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Serves `listeners` until `shutdown` completes, then returns what was done.
pub async fn serve(listeners: Listeners, shutdown: impl Future<Output = ()>) -> Arc<ServeStats> {
    let stats = Arc::new(ServeStats::default());
    let mut tasks = JoinSet::new();
    for listener in listeners.tcp {
        tasks.spawn(accept_and_close(listener, stats.clone()));
    }
    for socket in listeners.udp {
        tasks.spawn(echo_probes(socket, stats.clone()));
    }
    shutdown.await;
    // Dropping the set aborts every loop and closes every socket.
    tasks.shutdown().await;
    stats
}

async fn accept_and_close(listener: TcpListener, stats: Arc<ServeStats>) {
    loop {
        match listener.accept().await {
            // Dropping the stream closes it: the handshake was the whole point.
            Ok((_stream, _peer)) => {
                stats.tcp_accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                warn!(%err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn echo_probes(socket: UdpSocket, stats: Arc<ServeStats>) {
    let mut buf = [0u8; 2048];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(err) => {
                debug!(%err, "udp receive failed");
                continue;
            }
        };
        let datagram = &buf[..len];
        if !header::is_probe(datagram) {
            stats.udp_ignored.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match socket.send_to(datagram, peer).await {
            Ok(_) => stats.udp_echoed.fetch_add(1, Ordering::Relaxed),
            Err(err) => {
                debug!(%err, %peer, "udp echo failed");
                continue;
            }
        };
    }
}
