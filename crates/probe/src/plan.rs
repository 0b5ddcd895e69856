//! The probe plan: what the orchestrator asks an agent to try (stable JSON contract).
//!
//! ```json
//! {"timeout_ms": 1000, "probes": [
//!   {"id": "1", "kind": "tcp", "host": "10.0.0.2", "port": 80},
//!   {"id": "2", "kind": "udp", "host": "10.0.0.2", "port": 81},
//!   {"id": "3", "kind": "dns", "name": "kubernetes.default.svc.cluster.local", "server": "10.96.0.10:53"}
//! ]}
//! ```
//!
//! Optional keys: `"concurrency"` at the top; `"transport": "udp" | "tcp"` on a dns probe;
//! `"path"` and `"resolver"` on a tcp or udp probe (see the wire plan).
//!
//! Validation is per probe on purpose: one bad probe (unknown kind, bad address, port 0,
//! duplicate id) must not cost the results of the others, so it becomes a [`PlanEntry`]
//! whose spec is `Err(detail)` and is reported as `error`. Only a plan that cannot be read or
//! parsed as a whole is a [`PlanError`].

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use netcanary_wire::plan::{DEFAULT_TIMEOUT, DNS_PORT, MAX_TIMEOUT_MS};
use netcanary_wire::{ProbePath, Transport};

/// A parsed plan: every probe is kept, valid or not, in plan order.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePlan {
    /// Each probe's own deadline, counted from when that probe starts.
    pub timeout: Duration,
    /// How many probes may be in flight at once, when the plan asks for a bound.
    pub concurrency: Option<usize>,
    /// How long to wait before the first probe (see the plan's `delay_ms`).
    pub delay: Duration,
    pub probes: Vec<PlanEntry>,
}

/// One entry of the plan: its id and either what to do or why it cannot be done.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    pub id: String,
    pub spec: Result<ProbeSpec, String>,
}

/// What one probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeSpec {
    Tcp(HostPort),
    Udp(HostPort),
    Dns { name: String, server: SocketAddr, transport: Transport },
}

impl ProbeSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Udp(_) => "udp",
            ProbeSpec::Dns { .. } => "dns",
        }
    }

    /// A short description of where the probe goes, for results and logs.
    pub fn target(&self) -> String {
        match self {
            ProbeSpec::Tcp(endpoint) | ProbeSpec::Udp(endpoint) => endpoint.to_string(),
            ProbeSpec::Dns { name, server, transport } => format!("{name} via {server}/{transport}"),
        }
    }
}

/// A host and port; the host may still need resolving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: Host,
    pub port: u16,
    /// The DNS server that resolves a host name; `None`: the system resolver.
    pub resolver: Option<SocketAddr>,
    /// How the probe reaches its target: through a Service's address, a refusal cannot
    /// name who sent it (see [`crate::dns::behind_a_service`]).
    pub path: ProbePath,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(ip) => SocketAddr::new(*ip, self.port).fmt(f),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    /// A DNS name, resolved by the agent right before the probe.
    Name(String),
}

/// A plan that cannot be used at all (as opposed to a bad probe inside it).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan {source_name}: {source}")]
    Read { source_name: String, source: std::io::Error },
    #[error("plan {source_name} is not a valid plan at line {line}, column {column} (at `{json_path}`): {message}")]
    Parse { source_name: String, json_path: String, line: usize, column: usize, message: String },
    #[error("plan {source_name}: `timeout_ms` must be between 1 and {MAX_TIMEOUT_MS}, got {got}")]
    Timeout { source_name: String, got: u64 },
    #[error("plan {source_name}: `concurrency` must be at least 1")]
    Concurrency { source_name: String },
    #[error("plan {source_name}: `delay_ms` must be at most {MAX_TIMEOUT_MS}, got {got}")]
    Delay { source_name: String, got: u64 },
}

/// The top level is checked strictly (with the JSON path on error); probes are kept as raw
/// values so that each can be judged on its own.
#[derive(Deserialize)]
struct RawPlan {
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    delay_ms: Option<u64>,
    probes: Vec<Value>,
}

/// Where a plan comes from: a file, or standard input (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanSource {
    Stdin,
    File(PathBuf),
}

impl PlanSource {
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" { PlanSource::Stdin } else { PlanSource::File(PathBuf::from(arg)) }
    }

    fn name(&self) -> String {
        match self {
            PlanSource::Stdin => "<stdin>".to_owned(),
            PlanSource::File(path) => path.display().to_string(),
        }
    }
}

impl ProbePlan {
    /// Reads and parses a plan from a file or standard input.
    pub fn load(source: &PlanSource) -> Result<ProbePlan, PlanError> {
        let read = match source {
            PlanSource::Stdin => std::io::read_to_string(std::io::stdin()),
            PlanSource::File(path) => read_file(path),
        };
        let text = read.map_err(|source_err| PlanError::Read { source_name: source.name(), source: source_err })?;
        ProbePlan::parse(&text, &source.name())
    }

    /// Parses a plan; `source_name` only labels errors.
    pub fn parse(text: &str, source_name: &str) -> Result<ProbePlan, PlanError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let raw: RawPlan = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| (err.path().to_string(), err.into_inner()))
            .and_then(|raw| deserializer.end().map(|()| raw).map_err(|err| (".".to_owned(), err)))
            .map_err(|(json_path, inner)| PlanError::Parse {
                source_name: source_name.to_owned(),
                json_path,
                line: inner.line(),
                column: inner.column(),
                message: without_position(&inner),
            })?;
        let timeout = match raw.timeout_ms {
            None => DEFAULT_TIMEOUT,
            Some(ms @ 1..=MAX_TIMEOUT_MS) => Duration::from_millis(ms),
            Some(got) => {
                return Err(PlanError::Timeout { source_name: source_name.to_owned(), got });
            }
        };
        if raw.concurrency == Some(0) {
            return Err(PlanError::Concurrency { source_name: source_name.to_owned() });
        }
        let delay = match raw.delay_ms.unwrap_or(0) {
            ms @ 0..=MAX_TIMEOUT_MS => Duration::from_millis(ms),
            got => return Err(PlanError::Delay { source_name: source_name.to_owned(), got }),
        };
        let probes = raw.probes.iter().enumerate().map(|(index, value)| parse_probe(index, value)).collect();
        Ok(ProbePlan { timeout, concurrency: raw.concurrency, delay, probes: reject_duplicate_ids(probes) })
    }

    /// How many probes are valid and will really be sent.
    pub fn runnable(&self) -> usize {
        self.probes.iter().filter(|p| p.spec.is_ok()).count()
    }
}

/// serde_json appends "at line L column C" to its messages; the error shows it once already.
fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    message.strip_suffix(&suffix).map(str::to_owned).unwrap_or(message)
}

fn read_file(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn parse_probe(index: usize, value: &Value) -> PlanEntry {
    let Some(object) = value.as_object() else {
        return PlanEntry { id: format!("probes[{index}]"), spec: Err(format!("probes[{index}] is not an object")) };
    };
    let id = match object.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        // A numeric id is accepted as its decimal spelling: generous input, exact output.
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err("`id` must be a non-empty string"),
        None => Err("`id` is missing"),
    };
    match id {
        Ok(id) => {
            let spec = parse_spec(object).map_err(|detail| format!("probe {id:?}: {detail}"));
            PlanEntry { id, spec }
        }
        Err(detail) => PlanEntry { id: format!("probes[{index}]"), spec: Err(format!("probes[{index}]: {detail}")) },
    }
}

fn parse_spec(object: &Map<String, Value>) -> Result<ProbeSpec, String> {
    let kind = str_field(object, "kind")?;
    match kind {
        "tcp" => Ok(ProbeSpec::Tcp(parse_host_port(object)?)),
        "udp" => Ok(ProbeSpec::Udp(parse_host_port(object)?)),
        "dns" => {
            let name = str_field(object, "name")?;
            if !is_dns_name(name.trim_end_matches('.')) {
                return Err(format!("`name` {name:?} is not a valid DNS name"));
            }
            let server = parse_server(str_field(object, "server")?)?;
            let transport = match object.get("transport") {
                None => Transport::Udp,
                Some(Value::String(t)) if t == "udp" => Transport::Udp,
                Some(Value::String(t)) if t == "tcp" => Transport::Tcp,
                Some(other) => {
                    return Err(format!("`transport` must be \"udp\" or \"tcp\", got {other}"));
                }
            };
            Ok(ProbeSpec::Dns { name: name.to_owned(), server, transport })
        }
        other => Err(format!("unknown probe kind {other:?} (expected \"tcp\", \"udp\" or \"dns\")")),
    }
}

fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(other) => Err(format!("`{key}` must be a non-empty string, got {other}")),
        None => Err(format!("`{key}` is missing")),
    }
}

fn parse_host_port(object: &Map<String, Value>) -> Result<HostPort, String> {
    let host = parse_host(str_field(object, "host")?)?;
    let port = match object.get("port") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => return Err("port 0 is not a valid port (use 1-65535)".to_owned()),
            Some(p) => u16::try_from(p).map_err(|_| format!("port {p} is out of range (use 1-65535)"))?,
            None => return Err(format!("port {n} is not an integer in 1-65535")),
        },
        Some(other) => return Err(format!("`port` must be an integer in 1-65535, got {other}")),
        None => return Err("`port` is missing".to_owned()),
    };
    let resolver = match object.get("resolver") {
        None => None,
        Some(Value::String(text)) => Some(parse_server(text).map_err(|e| e.replace("`server`", "`resolver`"))?),
        Some(other) => return Err(format!("`resolver` must be a DNS server address, got {other}")),
    };
    // The path says how the plan meant to reach the target; its shape must fit it.
    let path = match object.get("path").map(|p| p.as_str().map(str::parse::<ProbePath>)) {
        None => ProbePath::Pod,
        Some(Some(Ok(path))) => path,
        Some(Some(Err(unknown))) => return Err(unknown.to_string()),
        Some(None) => return Err("`path` must be \"pod\", \"service\" or \"dns\"".to_owned()),
    };
    match (path, &host) {
        (ProbePath::Dns, Host::Ip(_)) => return Err("path \"dns\" needs a host name, not an address".to_owned()),
        (ProbePath::Pod | ProbePath::Service, Host::Name(_)) if object.contains_key("path") => {
            return Err("paths \"pod\" and \"service\" need an IP address, not a host name".to_owned());
        }
        _ => {}
    }
    Ok(HostPort { host, port, resolver, path })
}

fn parse_host(text: &str) -> Result<Host, String> {
    let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if is_dns_name(text.trim_end_matches('.')) {
        Ok(Host::Name(text.to_owned()))
    } else {
        Err(format!("bad address {text:?}: neither an IP address nor a host name"))
    }
}

/// Host-name syntax (RFC 1123 labels, plus `_` that service records use). A name whose last
/// label is all digits is rejected, so a mistyped IPv4 address such as `10.0.0.256` is
/// reported as a bad address instead of being sent to DNS.
fn is_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && !labels.last().is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
}

/// `ip`, `ip:port`, `[v6]` or `[v6]:port`; the port defaults to 53.
fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("`server` {text:?} has port 0 (use 1-65535)"));
        }
        return Ok(addr);
    }
    match parse_host(text) {
        Ok(Host::Ip(ip)) => Ok(SocketAddr::new(ip, DNS_PORT)),
        _ => Err(format!(
            "`server` {text:?} is not an IP address with an optional port (e.g. 10.96.0.10:53 or [fd00::a]:53)"
        )),
    }
}

/// Every probe sharing an id becomes an error: results are matched by id, so running either
/// would hand the orchestrator an answer it could attribute to the wrong probe.
fn reject_duplicate_ids(mut probes: Vec<PlanEntry>) -> Vec<PlanEntry> {
    let mut positions: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, probe) in probes.iter().enumerate() {
        positions.entry(probe.id.clone()).or_default().push(index);
    }
    for (id, indexes) in positions {
        if indexes.len() < 2 {
            continue;
        }
        let listed: Vec<String> = indexes.iter().map(|i| format!("probes[{i}]")).collect();
        let detail = format!("duplicate id {id:?} (at {})", listed.join(", "));
        for index in indexes {
            probes[index].spec = Err(detail.clone());
        }
    }
    probes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ProbePlan {
        ProbePlan::parse(text, "test.json").expect("plan parses")
    }

    fn only_error(plan: &ProbePlan, id: &str) -> String {
        let probe = plan.probes.iter().find(|p| p.id == id).expect("probe id");
        probe.spec.clone().expect_err("probe should be invalid")
    }

    #[test]
    fn parses_the_contract_example() {
        let plan = parse(
            r#"{"timeout_ms": 1000, "probes": [
              {"id": "1", "kind": "tcp", "host": "10.0.0.2", "port": 80},
              {"id": "2", "kind": "udp", "host": "10.0.0.2", "port": 81},
              {"id": "3", "kind": "dns", "name": "kubernetes.default.svc.cluster.local", "server": "10.96.0.10:53"}
            ]}"#,
        );
        assert_eq!(plan.timeout, Duration::from_millis(1000));
        let specs: Vec<ProbeSpec> = plan.probes.iter().map(|p| p.spec.clone().unwrap()).collect();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            specs[0],
            ProbeSpec::Tcp(HostPort { host: Host::Ip(ip), port: 80, resolver: None, path: ProbePath::Pod })
        );
        assert_eq!(
            specs[1],
            ProbeSpec::Udp(HostPort { host: Host::Ip(ip), port: 81, resolver: None, path: ProbePath::Pod })
        );
        assert_eq!(
            specs[2],
            ProbeSpec::Dns {
                name: "kubernetes.default.svc.cluster.local".into(),
                server: "10.96.0.10:53".parse().unwrap(),
                transport: Transport::Udp,
            }
        );
    }

    #[test]
    fn reads_every_plan_the_wire_types_write() {
        use netcanary_wire::{AgentPlan, AgentProbe, ProbeTarget};
        let server: SocketAddr = "[fd00::a]:53".parse().unwrap();
        let written = AgentPlan {
            timeout_ms: 250,
            concurrency: Some(4),
            delay_ms: Some(1500),
            probes: vec![
                AgentProbe::new("1".into(), ProbeTarget::to_address(Transport::Tcp, "fd00::2".parse().unwrap(), 8080)),
                AgentProbe::new("2".into(), ProbeTarget::to_address(Transport::Udp, "10.0.0.2".parse().unwrap(), 53)),
                AgentProbe::new(
                    "3".into(),
                    ProbeTarget::Dns { name: "a.test".into(), server, transport: Transport::Tcp },
                ),
                AgentProbe {
                    id: "4".into(),
                    target: ProbeTarget::Tcp { host: "web.shop.svc.cluster.local".into(), port: 8080 },
                    path: ProbePath::Dns,
                    resolver: Some(server),
                },
            ],
        };
        let plan = parse(&serde_json::to_string(&written).unwrap());
        assert_eq!(plan.timeout, Duration::from_millis(250));
        assert_eq!(plan.concurrency, Some(4));
        assert_eq!(plan.delay, Duration::from_millis(1500));
        let specs: Vec<ProbeSpec> = plan.probes.iter().map(|p| p.spec.clone().unwrap()).collect();
        assert_eq!(
            specs[0],
            ProbeSpec::Tcp(HostPort {
                host: Host::Ip("fd00::2".parse().unwrap()),
                port: 8080,
                resolver: None,
                path: ProbePath::Pod
            })
        );
        assert_eq!(
            specs[1],
            ProbeSpec::Udp(HostPort {
                host: Host::Ip("10.0.0.2".parse().unwrap()),
                port: 53,
                resolver: None,
                path: ProbePath::Pod
            })
        );
        assert_eq!(specs[2], ProbeSpec::Dns { name: "a.test".into(), server, transport: Transport::Tcp });
        let by_name = HostPort {
            host: Host::Name("web.shop.svc.cluster.local".into()),
            port: 8080,
            resolver: Some(server),
            path: ProbePath::Dns,
        };
        assert_eq!(specs[3], ProbeSpec::Tcp(by_name));
    }

    #[test]
    fn accepts_ipv6_names_and_optional_keys() {
        let plan = parse(
            r#"{"concurrency": 8, "probes": [
              {"id": "a", "kind": "tcp", "host": "[fd00::2]", "port": 443, "extra": true},
              {"id": "b", "kind": "udp", "host": "my-svc.ns.svc", "port": 53},
              {"id": "c", "kind": "dns", "name": "example.test.", "server": "fd00::53", "transport": "tcp"},
              {"id": 7, "kind": "dns", "name": "example.test", "server": "[fd00::53]:5353"}
            ]}"#,
        );
        assert_eq!(plan.timeout, DEFAULT_TIMEOUT);
        assert_eq!(plan.concurrency, Some(8));
        assert_eq!(plan.runnable(), 4);
        assert_eq!(plan.probes[0].spec.as_ref().unwrap().target(), "[fd00::2]:443");
        assert_eq!(plan.probes[1].spec.as_ref().unwrap().target(), "my-svc.ns.svc:53");
        assert_eq!(plan.probes[2].spec.as_ref().unwrap().target(), "example.test. via [fd00::53]:53/tcp");
        assert_eq!(plan.probes[3].id, "7");
    }

    #[test]
    fn bad_probes_are_errors_naming_the_probe_and_the_rest_still_run() {
        let plan = parse(
            r#"{"probes": [
              {"id": "ok", "kind": "tcp", "host": "127.0.0.1", "port": 80},
              {"id": "http", "kind": "http", "host": "127.0.0.1", "port": 80},
              {"id": "ip", "kind": "tcp", "host": "10.0.0.256", "port": 80},
              {"id": "p0", "kind": "tcp", "host": "127.0.0.1", "port": 0},
              {"id": "big", "kind": "udp", "host": "127.0.0.1", "port": 70000},
              {"id": "neg", "kind": "udp", "host": "127.0.0.1", "port": -1},
              {"id": "noport", "kind": "udp", "host": "127.0.0.1"},
              {"id": "srv", "kind": "dns", "name": "a.test", "server": "dns.example:53"},
              {"id": "tr", "kind": "dns", "name": "a.test", "server": "10.0.0.1", "transport": "quic"},
              {"id": "path", "kind": "tcp", "host": "127.0.0.1", "port": 1, "path": "mesh"},
              {"id": "dnsip", "kind": "tcp", "host": "127.0.0.1", "port": 1, "path": "dns"},
              {"id": "svcname", "kind": "udp", "host": "a.test", "port": 1, "path": "service"},
              {"id": "res", "kind": "tcp", "host": "a.test", "port": 1, "resolver": "a.test"},
              {"id": "dup", "kind": "tcp", "host": "127.0.0.1", "port": 1},
              {"id": "dup", "kind": "tcp", "host": "127.0.0.1", "port": 2},
              {"kind": "tcp", "host": "127.0.0.1", "port": 1},
              "nonsense"
            ]}"#,
        );
        assert_eq!(plan.runnable(), 1);
        assert!(plan.probes[0].spec.is_ok());
        let cases = [
            ("http", "unknown probe kind \"http\""),
            ("ip", "bad address \"10.0.0.256\""),
            ("p0", "port 0 is not a valid port"),
            ("big", "port 70000 is out of range"),
            ("neg", "port -1 is not an integer"),
            ("noport", "`port` is missing"),
            ("srv", "`server` \"dns.example:53\" is not an IP address"),
            ("tr", "`transport` must be"),
            ("path", "unknown probe path \"mesh\""),
            ("dnsip", "path \"dns\" needs a host name"),
            ("svcname", "need an IP address, not a host name"),
            ("res", "`resolver` \"a.test\" is not an IP address"),
            ("dup", "duplicate id \"dup\" (at probes[13], probes[14])"),
            ("probes[15]", "probes[15]: `id` is missing"),
            ("probes[16]", "probes[16] is not an object"),
        ];
        for (id, want) in cases {
            let detail = only_error(&plan, id);
            assert!(detail.contains(want), "probe {id}: {detail:?} lacks {want:?}");
            if !id.starts_with("probes[") && id != "dup" {
                assert!(detail.contains(&format!("probe {id:?}")), "{detail} names the probe");
            }
        }
    }

    #[test]
    fn unparseable_plans_name_the_file_line_and_path() {
        let err = ProbePlan::parse("{\"probes\": [\n], \"timeout_ms\": \"soon\"}", "plan.json").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("plan.json"), "{message}");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("timeout_ms"), "{message}");

        let err = ProbePlan::parse("{\"probes\": [] } trailing", "p").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");

        let err = ProbePlan::parse("{}", "p").unwrap_err();
        assert!(err.to_string().contains("missing field `probes`"), "{err}");

        let err = ProbePlan::parse(r#"{"timeout_ms": 0, "probes": []}"#, "p").unwrap_err();
        assert!(matches!(err, PlanError::Timeout { got: 0, .. }), "{err}");

        let err = ProbePlan::parse(r#"{"delay_ms": 60001, "probes": []}"#, "p").unwrap_err();
        assert!(err.to_string().contains("`delay_ms` must be at most 60000, got 60001"), "{err}");
        let err = ProbePlan::parse(r#"{"concurrency": 0, "probes": []}"#, "p").unwrap_err();
        assert!(matches!(err, PlanError::Concurrency { .. }), "{err}");

        let err = ProbePlan::load(&PlanSource::File("/nonexistent/plan.json".into())).unwrap_err();
        assert!(err.to_string().starts_with("cannot read plan /nonexistent/plan.json"), "{err}");
    }
}
