//! The terminal matrix: sources down, destinations across, one block per port, like the
//! truth tables of the upstream conformance tests, split into column chunks that fit the
//! terminal.

use std::fmt::Write;

use netcanary_policy::Analysis;

use crate::legend::{Entry, Legend};
use crate::style::{self, paint};

pub const ALLOWED_MARK: &str = "✓";
pub const DENIED_MARK: &str = "✗";

/// Renders every block. `width` is the terminal width to fit.
pub fn render(analysis: &Analysis<'_>, width: usize) -> String {
    let legend = Legend::new(analysis);
    let mut out = String::new();
    if analysis.blocks.is_empty() {
        out.push_str("No destination ports to analyse: no container declares a port. Name ports with --port, e.g. --port 80/TCP.\n");
        return out;
    }
    let tiers = !analysis.cluster().cluster_policies().is_empty();
    let _ = writeln!(
        out,
        "{}: rows are sources, columns destinations\n{} allowed   {} denied   {}{} self pair{}{} (implementation-defined)\n",
        paint(style::HEADING, "Reachability by policy"),
        paint(style::ALLOWED, ALLOWED_MARK),
        paint(style::DENIED, DENIED_MARK),
        if tiers { format!("{} unknown (domain names)   ", paint(style::WARNING, "?")) } else { String::new() },
        paint(style::DIM, "dim"),
        if analysis.has_host_network() { " or host network" } else { "" },
        if tiers { ", equal cluster policy priorities" } else { "" },
    );
    let digits = legend.entries.len().to_string().len();
    // Labels get at most half the width, so that some columns always fit beside them.
    let label_width =
        legend.entries.iter().map(|e| e.label().chars().count()).max().unwrap_or(0).min(60).min(width / 2);
    for block in &analysis.blocks {
        let rows = legend.entries_of(analysis, &analysis.sources);
        let columns = legend.entries_of(analysis, &block.destinations);
        let prefix = digits + 2 + label_width + 1;
        let cell = digits + 1;
        let per_chunk = (width.saturating_sub(prefix) / cell).max(1);
        for (c, chunk) in columns.chunks(per_chunk).enumerate() {
            let title = if columns.len() > per_chunk {
                format!("{} (columns {}-{})", block.port, c * per_chunk + 1, c * per_chunk + chunk.len())
            } else {
                block.port.to_string()
            };
            let _ = write!(
                out,
                "{}{}",
                paint(style::HEADING, &title),
                " ".repeat(prefix.saturating_sub(title.chars().count()))
            );
            for column in chunk {
                let _ = write!(out, "{:>cell$}", column.number);
            }
            out.push('\n');
            for row in &rows {
                let _ = write!(out, "{:>digits$}  {:<label_width$} ", row.number, truncate(&row.label(), label_width));
                for column in chunk {
                    out.push_str(&" ".repeat(cell - 1));
                    out.push_str(&mark(analysis, block, row, column));
                }
                out.push('\n');
            }
            out.push('\n');
        }
    }
    let externals: Vec<&Entry> = legend
        .entries
        .iter()
        .filter(|e| !analysis.sources.iter().any(|&s| analysis.index.classes().class_of(s) == e.class))
        .collect();
    for entry in externals {
        let _ = writeln!(out, "{:>digits$}  {} (destination only)", entry.number, entry.label());
    }
    out
}

fn mark(analysis: &Analysis<'_>, block: &netcanary_policy::Block, row: &Entry, column: &Entry) -> String {
    let allowed = block.matrix.allowed(row.class, column.class);
    let (text, style) = if block.matrix.unknown(row.class, column.class) {
        ("?", style::WARNING)
    } else if allowed {
        (ALLOWED_MARK, style::ALLOWED)
    } else {
        (DENIED_MARK, style::DENIED)
    };
    let tie = block.matrix.tie(row.class, column.class);
    // A one-member class on the diagonal is a pod reaching itself.
    let self_pair = row.class == column.class && row.members == 1 && !representative(analysis, row.class).is_external();
    let host_network = [row.class, column.class].into_iter().any(|c| representative(analysis, c).host_network);
    paint(if self_pair || host_network || tie { style::DIM } else { style }, text)
}

/// What a class's members share: external or not, on the host network or not.
fn representative<'c>(analysis: &Analysis<'c>, class: usize) -> &'c netcanary_policy::Endpoint {
    &analysis.cluster().endpoints()[analysis.index.classes().representative(class)]
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
