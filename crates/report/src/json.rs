//! `analyze -o json`: one verdict per (source, destination, destination port), per the
//! stable contract in DESIGN.md. Extra keys (`implementationDefined`, `tier`, `rule`,
//! `action`, `unknown`, `allowedBy`, `notes`) add evidence without changing the contract's
//! keys; `allowed` is `null` only where policy's answer is unknown.

use std::collections::HashMap;
use std::io::{self, Write};

use netcanary_policy::{Analysis, DirectionVerdict, Endpoint, Verdict, evaluate};
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

/// Streams the document to `out`: large clusters produce many verdicts, so nothing is
/// collected in memory beyond one explained verdict per class pair. That verdict holds for
/// every pair of the two classes; what names an endpoint (notes, self pairs) is worked
/// out for each pair. `diagnostics` are the input's, as the manifest reader serializes them.
pub fn write(analysis: &Analysis<'_>, diagnostics: &impl Serialize, out: &mut impl Write) -> io::Result<()> {
    let endpoints = analysis.cluster().endpoints();
    let classes = analysis.index.classes();
    out.write_all(b"{\"verdicts\": [")?;
    let mut first = true;
    for block in &analysis.blocks {
        let mut by_class: HashMap<(usize, usize), Verdict> = HashMap::new();
        for &source in &analysis.sources {
            for &destination in &block.destinations {
                let key = (classes.class_of(source), classes.class_of(destination));
                let verdict = by_class.entry(key).or_insert_with(|| analysis.verdict(source, destination, block.port));
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
