//! `analyze -o json`: one verdict per (source, destination, destination port), per the
//! stable contract in DESIGN.md. Extra keys (`implementationDefined`, `tier`, `rule`,
//! `action`, `unknown`, `allowedBy`, `notes`) add evidence without changing the contract's
//! keys; `allowed` is `null` only where policy's answer is unknown.

use std::collections::HashMap;
use std::io::{self, Write};

use netcanary_policy::{Analysis, DirectionVerdict, Endpoint, Matrix, Verdict, evaluate};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerdictJson<'a> {
    from: &'a str,
    to: &'a str,
    port: u16,
    protocol: &'static str,
    /// `null` when a rule naming domains could decide either way (see `unknown`).
    allowed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown: Option<&'a str>,
    egress: DirectionJson<'a>,
    ingress: DirectionJson<'a>,
    /// A pod reaching its own IP, or a host-network pod at either end: CNIs differ, and
    /// neither the NetworkPolicy spec nor upstream conformance says what is right.
    implementation_defined: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DirectionJson<'a> {
    allowed: Option<bool>,
    isolated: bool,
    policies: &'a [String],
    tier: &'static str,
    rule: Option<&'a str>,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    implementation_defined: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_by: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

impl<'a> DirectionJson<'a> {
    /// `d` for the connection from `from` to `to`, whose notes it names.
    fn new(d: &'a DirectionVerdict, from: &Endpoint, to: &Endpoint) -> Self {
        Self {
            allowed: d.unknown.is_none().then_some(d.allowed),
            isolated: d.isolated,
            policies: &d.policies,
            tier: d.tier.as_str(),
            rule: d.decision.rule.as_deref(),
            action: d.decision.action.as_str(),
            unknown: d.unknown.as_deref(),
            implementation_defined: d.tie.as_deref(),
            allowed_by: d.allowed_by.iter().map(|hit| hit.rule.to_string()).collect(),
            notes: d.describe_notes(from, to),
        }
    }
}

/// Which verdicts `-o json` lists (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    Allowed,
    Denied,
    /// Where a rule naming domains could decide either way.
    Unknown,
}

impl Only {
    /// Whether the matrix's answer for a class pair is this one: decided before the pair
    /// is explained, so that filtered-out pairs cost a bit lookup.
    fn matches(self, matrix: &Matrix, source: usize, destination: usize) -> bool {
        let unknown = matrix.unknown(source, destination);
        match self {
            Only::Unknown => unknown,
            Only::Allowed => !unknown && matrix.allowed(source, destination),
            Only::Denied => !unknown && !matrix.allowed(source, destination),
        }
    }
}

/// Streams the document to `out`, one verdict at a time: memory holds at most one
/// explained verdict per destination class, for the source class at hand (sources of one
/// class, replicas, usually come together), however many verdicts are written. That
/// verdict holds for every pair of the two classes; what names an endpoint (notes, self
/// pairs) is worked out for each pair. `only` keeps the verdicts with that answer.
/// `diagnostics` are the input's, as the manifest reader serializes them.
pub fn write(
    analysis: &Analysis<'_>,
    only: Option<Only>,
    diagnostics: &impl Serialize,
    out: &mut impl Write,
) -> io::Result<()> {
    let endpoints = analysis.cluster().endpoints();
    let classes = analysis.index.classes();
    out.write_all(b"{\"verdicts\": [")?;
    let mut first = true;
    for block in &analysis.blocks {
        let mut row: HashMap<usize, Verdict> = HashMap::new();
        let mut row_class = None;
        for &source in &analysis.sources {
            let source_class = classes.class_of(source);
            if row_class != Some(source_class) {
                row.clear();
                row_class = Some(source_class);
            }
            for &destination in &block.destinations {
                let destination_class = classes.class_of(destination);
                if only.is_some_and(|only| !only.matches(&block.matrix, source_class, destination_class)) {
                    continue;
                }
                let verdict =
                    row.entry(destination_class).or_insert_with(|| analysis.verdict(source, destination, block.port));
                let (from, to) = (&endpoints[source], &endpoints[destination]);
                let json = VerdictJson {
                    from: &from.id,
                    to: &to.id,
                    port: block.port.port,
                    protocol: block.port.protocol.as_str(),
                    allowed: verdict.unknown().is_none().then_some(verdict.allowed),
                    unknown: verdict.unknown(),
                    egress: DirectionJson::new(&verdict.egress, from, to),
                    ingress: DirectionJson::new(&verdict.ingress, from, to),
                    implementation_defined: verdict.host_network
                        || evaluate::is_self_pair(from, to)
                        || verdict.egress.tie.is_some()
                        || verdict.ingress.tie.is_some(),
                };
                out.write_all(if first { b"\n  " } else { b",\n  " })?;
                first = false;
                serde_json::to_writer(&mut *out, &json)?;
            }
        }
    }
    out.write_all(b"\n],\n\"diagnostics\": ")?;
    serde_json::to_writer(&mut *out, diagnostics)?;
    out.write_all(b"}\n")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PairJson<'a> {
    from: &'a str,
    to: &'a str,
    allowed: u64,
    denied: u64,
    unknown: u64,
}

/// `analyze -o summary-json`: the summary's counts per port and every namespace pair with
/// a source and a destination, streamed one pair per line.
pub fn write_summary(analysis: &Analysis<'_>, diagnostics: &impl Serialize, out: &mut impl Write) -> io::Result<()> {
    let summary = analysis.summary();
    write!(
        out,
        "{{\"sources\": {}, \"classes\": {}, \"ports\": [",
        analysis.sources.len(),
        analysis.index.classes().len()
    )?;
    for (i, port) in summary.ports.iter().enumerate() {
        let total = port.total();
        write!(
            out,
            "{}\n{{\"port\": {}, \"protocol\": \"{}\", \"allowed\": {}, \"denied\": {}, \"unknown\": {}, \"namespacePairs\": [",
            if i == 0 { "" } else { "," },
            port.port.port,
            port.port.protocol.as_str(),
            total.allowed,
            total.denied,
            total.unknown
        )?;
        for (j, (from, to, c)) in port.pairs().enumerate() {
            out.write_all(if j == 0 { b"\n  " } else { b",\n  " })?;
            let pair = PairJson {
                from: &summary.namespaces[from],
                to: &summary.namespaces[to],
                allowed: c.allowed,
                denied: c.denied,
                unknown: c.unknown,
            };
            serde_json::to_writer(&mut *out, &pair)?;
        }
        out.write_all(b"\n]}")?;
    }
    out.write_all(b"\n],\n\"diagnostics\": ")?;
    serde_json::to_writer(&mut *out, diagnostics)?;
    out.write_all(b"}\n")
}
