//! `netcanary target`: thin glue from the command line to `netcanary_probe::target`.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use netcanary_probe::target;
use tracing::info;

/// Listens on TCP and UDP ports inside a target pod and answers netcanary's probes.
///
/// TCP connections are accepted and closed at once. UDP datagrams that carry netcanary's
/// probe header are echoed to their sender; any other datagram gets no reply. Prints one
/// `listening` line on stdout when ready, logs nothing per connection, and exits 0 on
/// SIGTERM or SIGINT.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// TCP ports to accept on: a comma-separated list with ranges, e.g. `80,443,8000-8010`.
    #[arg(long, value_name = "PORTS", env = "NETCANARY_TCP_PORTS", value_parser = parse_ports, default_value = "")]
    tcp: PortList,

    /// UDP ports to echo on, same syntax as `--tcp`.
    #[arg(long, value_name = "PORTS", env = "NETCANARY_UDP_PORTS", value_parser = parse_ports, default_value = "")]
    udp: PortList,

    /// Address to listen on. `::` is dual-stack (IPv4 and IPv6 on one socket) [default: `::`,
    /// or `0.0.0.0` where IPv6 is unavailable].
    #[arg(long, value_name = "ADDR", env = "NETCANARY_LISTEN")]
    listen: Option<IpAddr>,
}

/// Ports parsed from `80,81,8000-8010`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortList(Vec<u16>);

fn parse_ports(text: &str) -> Result<PortList, String> {
    let mut ports = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (parse_port(a)?, parse_port(b)?),
            None => (parse_port(item)?, parse_port(item)?),
        };
        if first > last {
            return Err(format!("port range {item} is backwards"));
        }
        ports.extend(first..=last);
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(PortList(ports))
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(format!("{text:?} is not a port (use 1-65535)")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.tcp.0.is_empty() && args.udp.0.is_empty() {
        anyhow::bail!("nothing to listen on: give --tcp and/or --udp ports");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listeners = target::bind(args.listen, &args.tcp.0, &args.udp.0)?;
        // Signal handlers before the announcement: whoever reads `listening` may stop the
        // target at once, and must see a clean exit.
        let shutdown = super::shutdown_signal()?;
        announce(&listeners.tcp_addrs(), &listeners.udp_addrs())?;
        let stats = target::serve(listeners, shutdown).await;
        info!(
            tcp_accepted = stats.tcp_accepted.load(Ordering::Relaxed),
            udp_echoed = stats.udp_echoed.load(Ordering::Relaxed),
            udp_ignored = stats.udp_ignored.load(Ordering::Relaxed),
            "target stopped"
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// One line on stdout when every port is bound: readiness for scripts and tests.
fn announce(tcp: &[SocketAddr], udp: &[SocketAddr]) -> anyhow::Result<()> {
    let list = |addrs: &[SocketAddr]| addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening tcp={} udp={}", list(tcp), list(udp))?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_port_lists() {
        assert_eq!(parse_ports("80,81").unwrap(), PortList(vec![80, 81]));
        assert_eq!(parse_ports(" 9000-9002, 80,80").unwrap(), PortList(vec![80, 9000, 9001, 9002]));
        assert_eq!(parse_ports("").unwrap(), PortList(vec![]));
        assert!(parse_ports("0").unwrap_err().contains("\"0\" is not a port"));
        assert!(parse_ports("65536").is_err());
        assert!(parse_ports("90-80").unwrap_err().contains("backwards"));
        assert!(parse_ports("http").is_err());
    }
}
