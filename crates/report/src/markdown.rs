//! `analyze -o markdown`: the matrix as GitHub-flavoured Markdown for pull-request
//! comments, with the legend and the counts.

use std::fmt::Write;

use netcanary_policy::Analysis;

use crate::legend::Legend;

pub fn render(analysis: &Analysis<'_>) -> String {
    let legend = Legend::new(analysis);
    let mut out = String::from(
        "## Reachability by policy\n\nRows are sources, columns destinations: ✅ allowed, ❌ denied. A pod reaching itself is implementation-defined.",
    );
    if analysis.has_host_network() {
        out.push_str(" So is traffic to or from a pod on the host network.");
    }
    out.push_str("\n\n");
    for entry in &legend.entries {
        let _ = writeln!(out, "{}. `{}`", entry.number, entry.label());
    }
    let summary = analysis.summary();
    for block in &analysis.blocks {
        let _ = writeln!(out, "\n### {}\n", block.port);
        let rows = legend.entries_of(analysis, &analysis.sources);
        let columns = legend.entries_of(analysis, &block.destinations);
        out.push_str("| from \\ to |");
        for c in &columns {
            let _ = write!(out, " {} |", c.number);
        }
        out.push_str("\n|---|");
        out.push_str(&":-:|".repeat(columns.len()));
        out.push('\n');
        for r in &rows {
            let _ = write!(out, "| **{}** `{}` |", r.number, r.name);
            for c in &columns {
                out.push_str(if block.matrix.unknown(r.class, c.class) {
                    " ❓ |"
                } else if block.matrix.allowed(r.class, c.class) {
                    " ✅ |"
                } else {
                    " ❌ |"
                });
            }
            out.push('\n');
        }
        let (allowed, denied) = summary
            .ports
            .iter()
            .find(|p| p.port == block.port)
            .map_or((0, 0), |p| (p.total().allowed, p.total().denied));
        let _ = writeln!(out, "\n{allowed} pairs allowed, {denied} denied.");
    }
    out
}
