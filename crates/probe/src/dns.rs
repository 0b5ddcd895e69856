//! The DNS probe: one query for an A record of `name`, sent to one given server over UDP or
//! TCP. Any DNS answer proves the server was reached — NXDOMAIN, NODATA and error codes
//! such as REFUSED included — because what is being tested is the network path to the
//! server, not the server's data.
//!
//! The message is built and parsed with hickory (through `hickory-resolver`'s re-export of
//! its protocol crate), but the sockets are this crate's own: hickory's resolver sends UDP
//! from an unconnected socket, which never sees ICMP errors, and its retries across
//! transports and caches would blur what one server on one transport did. Reusing the UDP
//! and TCP probes' sockets gives DNS exactly the same outcome classification.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, Query};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::observation::{Observation, Observed};
use crate::{tcp, udp};
use netcanary_wire::Transport;

/// Resolves `name` through `server` over `transport`, giving up after `timeout`.
pub async fn probe(name: &str, server: SocketAddr, transport: Transport, timeout: Duration) -> Observation {
    let (id, request) = match build_query(name) {
        Ok(query) => query,
        Err(detail) => return Observation::error(detail),
    };
    match transport {
        Transport::Udp => behind_a_service(udp::exchange(server, timeout, &request, |reply| answer(id, reply)).await),
        Transport::Tcp => over_tcp(server, timeout, id, &request).await,
    }
}

/// A UDP probe to a Service's address that got an ICMP port unreachable is blocked, whoever
/// sent it: for a connection to a Service address connection tracking rewrites every ICMP
/// error about it to come from that address, so a filter's reject on the node
/// (kube-router's, after kube-proxy translated the address) reads exactly like a backend
/// where nothing listens (see [`crate::refusal`]). A DNS query to the cluster DNS Service
/// resolves no name either way; a netcanary target listens on every port it is probed on.
/// Over TCP a reset still tells them apart.
pub(crate) fn behind_a_service(outcome: Observation) -> Observation {
    if outcome.observed != Observed::Refused {
        return outcome;
    }
    let detail = outcome.detail.unwrap_or_default();
    Observation::new(
        Observed::Unreachable,
        format!("{detail}; behind a Service's address a filter's reject cannot be told from a closed port: no answer"),
    )
}

/// The first IPv4 address `server` gives for `name`, asked over UDP: how the `dns` path
/// resolves a Service's name through the cluster DNS Service the plan names, exactly as a
/// pod's resolver would, without depending on the prober's own `/etc/resolv.conf`.
/// Any failure is the probe's own (`error`): a name that does not resolve says nothing about
/// the policy between the two pods.
pub async fn lookup(name: &str, server: SocketAddr, timeout: Duration) -> Result<IpAddr, String> {
    let (id, request) = build_query(name)?;
    let mut found = None;
    let outcome = udp::exchange(server, timeout, &request, |reply| {
        let message = Message::from_vec(reply).ok()?;
        if message.metadata.id != id || message.metadata.message_type != MessageType::Response {
            return None;
        }
        found = message.answers.iter().find_map(|record| match &record.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        });
        Some(Observation::new(Observed::Connected, format!("{}", message.metadata.response_code)))
    })
    .await;
    match (found, outcome.observed) {
        (Some(ip), _) => Ok(ip),
        (None, Observed::Connected) => {
            Err(format!("{name:?} has no IPv4 address at {server} ({})", outcome.detail.unwrap_or_default()))
        }
        (None, observed) => Err(format!(
            "cannot resolve {name:?} through {server}: {observed} ({})",
            outcome.detail.unwrap_or_default()
        )),
    }
}

fn build_query(name: &str) -> Result<(u16, Vec<u8>), String> {
    let mut fqdn = Name::from_ascii(name).map_err(|err| format!("bad dns name {name:?}: {err}"))?;
    // The plan names exactly what to ask: no search-domain expansion.
    fqdn.set_fqdn(true);
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(fqdn, RecordType::A));
    let bytes = message.to_vec().map_err(|err| format!("cannot encode dns query: {err}"))?;
    Ok((message.metadata.id, bytes))
}

/// The outcome for a reply to query `id`, or `None` for a datagram that is not that reply.
fn answer(id: u16, reply: &[u8]) -> Option<Observation> {
    let message = Message::from_vec(reply).ok()?;
    if message.metadata.id != id || message.metadata.message_type != MessageType::Response {
        return None;
    }
    let detail = format!("{} with {} answer(s)", message.metadata.response_code, message.answers.len());
    Some(Observation::new(Observed::Connected, detail))
}

async fn over_tcp(server: SocketAddr, timeout: Duration, id: u16, request: &[u8]) -> Observation {
    let deadline = Instant::now() + timeout;
    let mut stream = match tcp::connect(server, deadline, timeout).await {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    match tokio::time::timeout_at(deadline, exchange_tcp(&mut stream, request)).await {
        Ok(Ok(reply)) => answer(id, &reply)
            .unwrap_or_else(|| reached_without_answer("the reply was not an answer to the query".to_owned())),
        Ok(Err(err)) => reached_without_answer(format!("tcp exchange: {err}")),
        Err(_elapsed) => reached_without_answer(format!("no dns answer within {} ms", timeout.as_millis())),
    }
}

/// The TCP handshake completed, so the network let the probe through: that is the policy
/// question, even when the server then says nothing useful.
fn reached_without_answer(why: String) -> Observation {
    Observation::new(Observed::Connected, format!("tcp handshake completed but {why}"))
}

/// DNS over TCP: a two-byte length prefix on both the query and the answer (RFC 1035 4.2.2).
async fn exchange_tcp(stream: &mut TcpStream, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(request.len()).map_err(std::io::Error::other)?;
    let mut framed = Vec::with_capacity(request.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(request);
    stream.write_all(&framed).await?;
    let reply_len = stream.read_u16().await?;
    let mut reply = vec![0u8; usize::from(reply_len)];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_match_the_query_id_only() {
        let (id, request) = build_query("example.test").unwrap();
        // A query is not an answer.
        assert_eq!(answer(id, &request), None);
        let mut reply = Message::from_vec(&request).unwrap();
        reply.metadata.message_type = MessageType::Response;
        reply.metadata.response_code = hickory_resolver::proto::op::ResponseCode::NXDomain;
        let bytes = reply.to_vec().unwrap();
        let outcome = answer(id, &bytes).expect("an answer");
        assert_eq!(outcome.observed, Observed::Connected);
        assert!(outcome.detail.unwrap().contains("Non-Existent Domain"));
        assert_eq!(answer(id.wrapping_add(1), &bytes), None);
        assert_eq!(answer(id, b"garbage"), None);
    }
}
