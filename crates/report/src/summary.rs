//! `analyze -o summary`: pair counts per port, then the namespace pairs worth reading — the
//! most denied, the most allowed across environments, and those that differ from their
//! source namespace's default — in a bounded number of lines whatever the cluster's size.
//! `--all-pairs` lists every namespace pair instead, and `-o summary-json` gives scripts
//! every count ([`crate::json::write_summary`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use netcanary_policy::{Analysis, Counts, PortSummary, Summary};

use crate::style::{self, paint};

/// What the summary shows.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    /// Namespace pairs listed per section.
    pub top: usize,
    /// List every namespace pair instead of the sections.
    pub all_pairs: bool,
    /// The namespace label whose values name environments (`production`, `staging`).
    pub environment_label: &'a str,
}

pub fn write(analysis: &Analysis<'_>, options: &Options<'_>, out: &mut impl Write) -> io::Result<()> {
    let summary = analysis.summary();
    if options.all_pairs {
        every_pair(&summary, out)?;
    } else {
        totals(&summary, out)?;
        for port in &summary.ports {
            sections(analysis, &summary, port, options, out)?;
        }
    }
    let unknown: u64 = summary.ports.iter().map(|p| p.total().unknown).sum();
    if unknown > 0 {
        let message =
            format!("{unknown} pair(s) unknown: a cluster policy rule naming domains could decide them either way");
        writeln!(out, "{}", paint(style::WARNING, &message))?;
    }
    let (allowed, denied) =
        summary.ports.iter().map(PortSummary::total).fold((0, 0), |(a, d), c| (a + c.allowed, d + c.denied));
    writeln!(
        out,
        "\n{} sources, {} classes, {} port(s), {} namespaces; pairs counted: {}",
        analysis.sources.len(),
        analysis.index.classes().len(),
        analysis.blocks.len(),
        summary.namespaces.len(),
        allowed + denied
    )?;
    if !options.all_pairs {
        writeln!(out, "--all-pairs lists every namespace pair; -o summary-json gives every count to scripts.")?;
    }
    Ok(())
}

/// A table with left-aligned text columns and right-aligned number columns.
struct Table<const N: usize> {
    headers: [&'static str; N],
    /// Which columns hold numbers.
    numeric: [bool; N],
    rows: Vec<[String; N]>,
}

impl<const N: usize> Table<N> {
    fn new(headers: [&'static str; N], numeric: [bool; N]) -> Self {
        Self { headers, numeric, rows: Vec::new() }
    }

    /// The column widths that fit the headers and `rows`.
    fn widths<'r>(&self, rows: impl IntoIterator<Item = &'r [String; N]>) -> [usize; N] {
        let mut widths = self.headers.map(str::len);
        for row in rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }

    fn line(&self, widths: &[usize; N], cells: [&str; N]) -> String {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let separator = if i == 0 { "" } else { "  " };
            let w = widths[i];
            text += &if self.numeric[i] { format!("{separator}{cell:>w$}") } else { format!("{separator}{cell:<w$}") };
        }
        text.trim_end().to_string()
    }

    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let widths = self.widths(&self.rows);
        writeln!(out, "{}", paint(style::HEADING, &self.line(&widths, self.headers)))?;
        for row in &self.rows {
            writeln!(out, "{}", self.line(&widths, row.each_ref().map(String::as_str)))?;
        }
        Ok(())
    }
}

/// Every namespace pair with its counts, and the total; streamed, with column widths from
/// the longest names and the totals, so that memory does not grow with the pairs.
fn every_pair(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    let table =
        Table::new(["PORT", "FROM NAMESPACE", "TO NAMESPACE", "ALLOWED", "DENIED"], [false, false, false, true, true]);
    let (allowed, denied) =
        summary.ports.iter().map(PortSummary::total).fold((0, 0), |(a, d), c| (a + c.allowed, d + c.denied));
    let port = summary.ports.iter().map(|p| p.port.to_string()).max_by_key(String::len).unwrap_or_default();
    let name = summary.namespaces.iter().max_by_key(|n| n.chars().count()).cloned().unwrap_or_default();
    let total = ["total".into(), String::new(), String::new(), allowed.to_string(), denied.to_string()];
    let widest = [port, name.clone(), name, allowed.to_string(), denied.to_string()];
    let widths = table.widths([&widest, &total]);
    writeln!(out, "{}", paint(style::HEADING, &table.line(&widths, table.headers)))?;
    for port in &summary.ports {
        let port_name = port.port.to_string();
        for (from, to, c) in port.pairs() {
            let [allowed, denied] = [c.allowed, c.denied].map(|n| n.to_string());
            let cells = [port_name.as_str(), &summary.namespaces[from], &summary.namespaces[to], &allowed, &denied];
            writeln!(out, "{}", table.line(&widths, cells))?;
        }
    }
    writeln!(out, "{}", paint(style::HEADING, &table.line(&widths, total.each_ref().map(String::as_str))))
}

/// Allowed, denied and unknown pairs per port.
fn totals(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    let mut table = Table::new(
        ["PORT", "PAIRS", "ALLOWED", "DENIED", "UNKNOWN", "NAMESPACE PAIRS REACHED"],
        [false, true, true, true, true, true],
    );
    for port in &summary.ports {
        let c = port.total();
        let reached = port.reached().count();
        table.rows.push([
            port.port.to_string(),
            (c.allowed + c.denied + c.unknown).to_string(),
            c.allowed.to_string(),
            c.denied.to_string(),
            c.unknown.to_string(),
            reached.to_string(),
        ]);
    }
    table.write(out)
}

/// What every pair of two namespaces gets on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Denied,
    Allowed,
    /// Some pairs allowed and some denied, or some unknown.
    Mixed,
}

impl State {
    fn of(c: &Counts) -> Self {
        match (c.allowed, c.denied, c.unknown) {
            (_, 0, 0) => State::Allowed,
            (0, _, 0) => State::Denied,
            _ => State::Mixed,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            State::Denied => "all denied",
            State::Allowed => "all allowed",
            State::Mixed => "mixed",
        }
    }
}

/// The `limit` largest items by key (ties to the smaller item), and how many were offered,
/// in memory bounded by `limit` however many are.
struct Top<T: Ord> {
    limit: usize,
    offered: usize,
    heap: BinaryHeap<Reverse<(u64, Reverse<T>)>>,
}

impl<T: Ord> Top<T> {
    fn new(limit: usize) -> Self {
        Self { limit, offered: 0, heap: BinaryHeap::new() }
    }

    fn offer(&mut self, key: u64, item: T) {
        self.offered += 1;
        self.heap.push(Reverse((key, Reverse(item))));
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }

    /// Largest key first.
    fn into_sorted(self) -> Vec<T> {
        self.heap.into_sorted_vec().into_iter().map(|Reverse((_, Reverse(item)))| item).collect()
    }
}

/// The namespace pairs worth reading on one port.
fn sections(
    analysis: &Analysis<'_>,
    summary: &Summary,
    port: &PortSummary,
    options: &Options<'_>,
    out: &mut impl Write,
) -> io::Result<()> {
    let name = |i: usize| summary.namespaces[i].as_str();
    let environment: Vec<Option<&str>> = summary
        .namespaces
        .iter()
        .map(|ns| {
            analysis.cluster().namespace_labels(ns).and_then(|l| l.get(options.environment_label)).map(String::as_str)
        })
        .collect();
    let mut denied = Top::new(options.top);
    let mut across = Top::new(options.top);
    for (from, to, counts) in port.pairs() {
        if counts.denied > 0 {
            denied.offer(counts.denied, (from, to, counts.clone()));
        }
        if let (Some(a), Some(b)) = (environment[from], environment[to])
            && a != b
            && counts.allowed > 0
        {
            across.offer(counts.allowed, (from, to, counts));
        }
    }
    let differing = differing(port, options.top);

    write_section(out, &format!("{}: most denied namespace pairs", port.port), denied.offered, {
        let mut table = Table::new(["FROM NAMESPACE", "TO NAMESPACE", "ALLOWED", "DENIED"], [false, false, true, true]);
        for (from, to, c) in denied.into_sorted() {
            table.rows.push([name(from).into(), name(to).into(), c.allowed.to_string(), c.denied.to_string()]);
        }
        table
    })?;
    write_section(
        out,
        &format!("{}: most allowed across environments (namespace label {})", port.port, options.environment_label),
        across.offered,
        {
            let mut table = Table::new(
                ["FROM NAMESPACE", "TO NAMESPACE", "ENVIRONMENTS", "ALLOWED", "DENIED"],
                [false, false, false, true, true],
            );
            for (from, to, c) in across.into_sorted() {
                let environments = format!("{} → {}", environment[from].unwrap_or(""), environment[to].unwrap_or(""));
                table.rows.push([
                    name(from).into(),
                    name(to).into(),
                    environments,
                    c.allowed.to_string(),
                    c.denied.to_string(),
                ]);
            }
            table
        },
    )?;
    write_section(
        out,
        &format!("{}: pairs that differ from their source namespace's default", port.port),
        differing.offered,
        {
            let mut table = Table::new(
                ["FROM NAMESPACE", "TO NAMESPACE", "ALLOWED", "DENIED", "DEFAULT OF FROM NAMESPACE"],
                [false, false, true, true, false],
            );
            for (from, to, c, default) in differing.into_sorted() {
                table.rows.push([
                    name(from).into(),
                    name(to).into(),
                    c.allowed.to_string(),
                    c.denied.to_string(),
                    default.as_str().into(),
                ]);
            }
            table
        },
    )
}

fn write_section<const N: usize>(out: &mut impl Write, title: &str, offered: usize, table: Table<N>) -> io::Result<()> {
    let shown = table.rows.len();
    if shown == 0 {
        return Ok(()); // nothing to read: no lines
    }
    let of = if shown < offered { format!(" ({shown} of {offered})") } else { String::new() };
    writeln!(out, "\n{}{of}", paint(style::HEADING, title))?;
    table.write(out)
}

/// The pairs (to another namespace) whose state is not what most pairs of their source
/// namespace get, ranked by how many of their pairs go against that default.
fn differing(port: &PortSummary, limit: usize) -> Top<(usize, usize, Counts, State)> {
    let mut top = Top::new(limit);
    let destinations = port.destinations.iter().filter(|&&w| w > 0).count();
    let mut reached = port.reached().peekable();
    for from in (0..port.sources.len()).filter(|&i| port.sources[i] > 0) {
        // Pairs that nothing reaches are all denied; count the states of the others.
        let mut states = [0usize; 3];
        let mut own: Vec<(usize, usize, Counts)> = Vec::new();
        while let Some(pair) = reached.next_if(|(f, _, _)| *f == from) {
            if pair.1 != from {
                states[State::of(&pair.2) as usize] += 1;
                own.push(pair);
            }
        }
        let others = destinations - usize::from(port.destinations[from] > 0);
        states[State::Denied as usize] = others - states[1] - states[2];
        // Most pairs decide; a tie goes to denied, then allowed.
        let default = [State::Denied, State::Allowed, State::Mixed]
            .into_iter()
            .max_by_key(|s| (states[*s as usize], Reverse(*s)))
            .unwrap_or(State::Denied);
        let against = |c: &Counts| match default {
            State::Denied => c.allowed + c.unknown,
            State::Allowed => c.denied + c.unknown,
            State::Mixed => c.allowed + c.denied + c.unknown,
        };
        let mut offer = |to: usize, c: Counts| {
            if State::of(&c) != default {
                top.offer(against(&c), (from, to, c, default));
            }
        };
        if default == State::Denied {
            own.into_iter().for_each(|(_, to, c)| offer(to, c));
        } else {
            // Every pair of the namespace, the denied ones included.
            let mut own = own.into_iter().peekable();
            for to in (0..port.destinations.len()).filter(|&i| port.destinations[i] > 0 && i != from) {
                let c = own.next_if(|(_, t, _)| *t == to).map_or_else(
                    || {
                        let pairs = port.sources[from] * port.destinations[to];
                        Counts { allowed: 0, denied: pairs, unknown: 0 }
                    },
                    |(_, _, c)| c,
                );
                offer(to, c);
            }
        }
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_largest_and_on_ties_the_smaller_items() {
        let mut top = Top::new(3);
        for (key, item) in [(5, "e"), (9, "z"), (5, "a"), (1, "b"), (9, "c"), (5, "d")] {
            top.offer(key, item);
        }
        assert_eq!(top.offered, 6);
        assert_eq!(top.into_sorted(), ["c", "z", "a"]);
        let mut none = Top::new(0);
        none.offer(1, "x");
        assert!(none.into_sorted().is_empty());
    }

    #[test]
    fn a_pair_is_allowed_denied_or_mixed() {
        let counts = |allowed, denied, unknown| Counts { allowed, denied, unknown };
        assert_eq!(State::of(&counts(3, 0, 0)), State::Allowed);
        assert_eq!(State::of(&counts(0, 3, 0)), State::Denied);
        assert_eq!(State::of(&counts(1, 2, 0)), State::Mixed);
        assert_eq!(State::of(&counts(0, 2, 1)), State::Mixed, "an unknown pair is neither");
    }
}
