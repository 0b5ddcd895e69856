//! Host names in a plan are resolved right before their probe, through the DNS server the
//! probe names (`resolver`: the cluster DNS Service, for the `dns` path), else the system
//! resolver (the pod's `/etc/resolv.conf`). A failure here is the probe's own failure (`error`), never
//! "blocked": an unresolvable name says nothing about the policy between the two pods.

use std::net::SocketAddr;
use std::time::Duration;

use crate::plan::{Host, HostPort};

/// The address to probe for `endpoint`, or a reason for an `error` outcome.
pub async fn endpoint(endpoint: &HostPort, timeout: Duration) -> Result<SocketAddr, String> {
    let name = match &endpoint.host {
        Host::Ip(ip) => return Ok(SocketAddr::new(*ip, endpoint.port)),
        Host::Name(name) => name,
    };
    if let Some(server) = endpoint.resolver {
        return crate::dns::lookup(name, server, timeout).await.map(|ip| SocketAddr::new(ip, endpoint.port));
    }
    let lookup = tokio::net::lookup_host((name.as_str(), endpoint.port));
    match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| format!("host {name:?} resolved to no address")),
        Ok(Err(err)) => Err(format!("cannot resolve host {name:?}: {err}")),
        Err(_elapsed) => Err(format!("resolving host {name:?} took longer than {} ms", timeout.as_millis())),
    }
}
