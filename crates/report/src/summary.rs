//! `analyze -o summary`: allowed and denied pair counts per port and namespace pair, which
//! stays small and fast for clusters with thousands of pods.

use std::fmt::Write;

use netcanary_policy::Analysis;

use crate::style::{self, paint};

pub fn render(analysis: &Analysis<'_>) -> String {
    let summary = analysis.summary();
    let headers = ["PORT", "FROM NAMESPACE", "TO NAMESPACE", "ALLOWED", "DENIED"];
    let rows: Vec<[String; 5]> = summary
        .iter()
        .map(|((port, from, to), c)| {
            [port.to_string(), from.clone(), to.clone(), c.allowed.to_string(), c.denied.to_string()]
        })
        .collect();
    let (allowed, denied) = summary.values().fold((0u64, 0u64), |(a, d), c| (a + c.allowed, d + c.denied));
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths[3] = widths[3].max(allowed.to_string().len());
    widths[4] = widths[4].max(denied.to_string().len());
    let line = |cells: [&str; 5]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        )
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", paint(style::HEADING, &line(headers)));
    for row in &rows {
        let _ = writeln!(out, "{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    let _ =
        writeln!(out, "{}", paint(style::HEADING, &line(["total", "", "", &allowed.to_string(), &denied.to_string()])));
    let unknown: u64 = summary.values().map(|c| c.unknown).sum();
    if unknown > 0 {
        let _ = writeln!(
            out,
            "{}",
            paint(
                style::WARNING,
                &format!(
                    "{unknown} pair(s) unknown: a cluster policy rule naming domains could decide them either way"
                )
            )
        );
    }
    let classes = analysis.index.classes().len();
    let _ = writeln!(
        out,
        "\n{} sources, {} classes, {} port(s); pairs counted: {}",
        analysis.sources.len(),
        classes,
        analysis.blocks.len(),
        allowed + denied
    );
    out
}
