//! The compact form of an agent's results, written to the termination log so that the
//! orchestrator can read them from the pod's status — without the pod network, which a
//! default-deny namespace may close, and without reading logs. Kubernetes keeps at most
//! 4096 bytes of it, so the encoder picks the richest form that fits:
//!
//! 1. **with latencies** — `nc1 <total>` then `id=<code><millis>` entries joined by `,`:
//!    ```text
//!    nc1 3
//!    1=C2,2=T1001,web%2D1=U0
//!    ```
//! 2. **dense** — when the ids are consecutive integers in plan order (`7`, `8`, `9`...), only
//!    the outcomes, run-length encoded: `nc1 <total> dense <first id>` then `<code>[count]`:
//!    ```text
//!    nc1 2000 dense 1
//!    C1000T999U
//!    ```
//! 3. **without latencies** — `id=<code>` entries, cut at the last entry that fits and then
//!    marked `truncated <kept>` in the header, so a reader knows which results are missing.
//!
//! Codes: `C` connected, `R` refused, `T` timeout, `U` unreachable, `E` error. Ids are
//! percent-encoded outside `[A-Za-z0-9._/:]`. [`decode`] reads all three forms; ids of the
//! form `1..N` in plan order give the orchestrator the densest encoding.

use std::fmt::Write as _;

use crate::observed::Observed;
use crate::report::ProbeResult;

/// What Kubernetes keeps of a termination message.
pub const MAX_BYTES: usize = 4096;
const VERSION: &str = "nc1";

/// One result as the compact form carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactResult {
    pub id: String,
    pub observed: Observed,
    /// Absent when the latencies did not fit.
    pub millis: Option<u64>,
}

/// A decoded termination log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactResults {
    /// How many results the agent had; more than `results.len()` when truncated.
    pub total: usize,
    pub truncated: bool,
    pub results: Vec<CompactResult>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("termination log does not start with the `{VERSION}` header")]
    NotCompactForm,
    #[error("termination log header is malformed: {0:?}")]
    Header(String),
    #[error("termination log entry {index} is malformed: {entry:?}")]
    Entry { index: usize, entry: String },
    #[error("termination log holds {found} results but its header says {expected}")]
    Count { expected: usize, found: usize },
}

/// Encodes `results` in at most `max_bytes` bytes (see the module doc for the forms);
/// `max_bytes` must leave room for the header (a few dozen bytes).
pub fn encode(results: &[ProbeResult], max_bytes: usize) -> String {
    let with_millis = generic(results, true);
    if with_millis.len() <= max_bytes {
        return with_millis;
    }
    if let Some(dense) = dense(results).filter(|d| d.len() <= max_bytes) {
        return dense;
    }
    let complete = generic(results, false);
    if complete.len() <= max_bytes {
        return complete;
    }
    truncated(results, max_bytes)
}

fn generic(results: &[ProbeResult], with_millis: bool) -> String {
    let mut out = format!("{VERSION} {}\n", results.len());
    for (index, result) in results.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_entry(&mut out, result, with_millis);
    }
    out
}

fn push_entry(out: &mut String, result: &ProbeResult, with_millis: bool) {
    push_escaped(out, &result.id);
    out.push('=');
    out.push(code(result.observed));
    if with_millis {
        let _ = write!(out, "{}", result.millis);
    }
}

fn dense(results: &[ProbeResult]) -> Option<String> {
    let first: u64 = parse_canonical_u64(&results.first()?.id)?;
    let consecutive = results
        .iter()
        .enumerate()
        .all(|(offset, result)| parse_canonical_u64(&result.id) == first.checked_add(offset as u64));
    if !consecutive {
        return None;
    }
    let mut out = format!("{VERSION} {} dense {first}\n", results.len());
    let mut runs = results.iter().map(|r| code(r.observed)).peekable();
    while let Some(c) = runs.next() {
        let mut count = 1usize;
        while runs.next_if_eq(&c).is_some() {
            count += 1;
        }
        out.push(c);
        if count > 1 {
            let _ = write!(out, "{count}");
        }
    }
    Some(out)
}

/// Fits as many entries (without latencies) as `max_bytes` allows, in plan order. The
/// header is sized for the worst case first, so the cut never has to be redone.
fn truncated(results: &[ProbeResult], max_bytes: usize) -> String {
    let header_room = format!("{VERSION} {0} truncated {0}\n", results.len()).len();
    let mut body = String::new();
    let mut kept = 0;
    let mut entry = String::new();
    for result in results {
        entry.clear();
        if kept > 0 {
            entry.push(',');
        }
        push_entry(&mut entry, result, false);
        if header_room + body.len() + entry.len() > max_bytes {
            break;
        }
        body.push_str(&entry);
        kept += 1;
    }
    format!("{VERSION} {} truncated {kept}\n{body}", results.len())
}

/// Decodes any form [`encode`] writes. The orchestrator reads the pod's termination message
/// with this.
pub fn decode(text: &str) -> Result<CompactResults, DecodeError> {
    let (header, body) = text.split_once('\n').unwrap_or((text, ""));
    let mut words = header.split(' ');
    if words.next() != Some(VERSION) {
        return Err(DecodeError::NotCompactForm);
    }
    let bad_header = || DecodeError::Header(header.to_owned());
    let total: usize = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad_header)?;
    let rest: Vec<&str> = words.collect();
    let (results, truncated, expected) = match rest.as_slice() {
        [] => (decode_entries(body)?, false, total),
        ["truncated", kept] => {
            let kept: usize = kept.parse().map_err(|_| bad_header())?;
            (decode_entries(body)?, kept < total, kept)
        }
        ["dense", first] => {
            let first: u64 = parse_canonical_u64(first).ok_or_else(bad_header)?;
            (decode_dense(body, first)?, false, total)
        }
        _ => return Err(bad_header()),
    };
    if results.len() != expected {
        return Err(DecodeError::Count { expected, found: results.len() });
    }
    Ok(CompactResults { total, truncated, results })
}

fn decode_entries(body: &str) -> Result<Vec<CompactResult>, DecodeError> {
    let body = body.trim_end_matches('\n');
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split(',')
        .enumerate()
        .map(|(index, entry)| decode_entry(entry).ok_or_else(|| DecodeError::Entry { index, entry: entry.to_owned() }))
        .collect()
}

fn decode_entry(entry: &str) -> Option<CompactResult> {
    let (id, outcome) = entry.split_once('=')?;
    let mut chars = outcome.chars();
    let observed = observed(chars.next()?)?;
    let millis = chars.as_str();
    let millis = if millis.is_empty() { None } else { Some(millis.parse().ok()?) };
    Some(CompactResult { id: unescape(id)?, observed, millis })
}

fn decode_dense(body: &str, first: u64) -> Result<Vec<CompactResult>, DecodeError> {
    let body = body.trim_end_matches('\n');
    let mut results = Vec::new();
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        let index = results.len();
        let bad = || DecodeError::Entry { index, entry: rest.chars().take(16).collect() };
        let observed = observed(c).ok_or_else(bad)?;
        let digits = rest[1..].find(|ch: char| !ch.is_ascii_digit()).map_or(rest.len() - 1, |end| end);
        let count: usize = if digits == 0 { 1 } else { rest[1..=digits].parse().map_err(|_| bad())? };
        for _ in 0..count {
            let offset = results.len() as u64;
            let id = first.checked_add(offset).ok_or_else(bad)?.to_string();
            results.push(CompactResult { id, observed, millis: None });
        }
        rest = &rest[1 + digits..];
    }
    Ok(results)
}

fn code(observed: Observed) -> char {
    match observed {
        Observed::Connected => 'C',
        Observed::Refused => 'R',
        Observed::Timeout => 'T',
        Observed::Unreachable => 'U',
        Observed::Error => 'E',
    }
}

fn observed(code: char) -> Option<Observed> {
    Observed::ALL.into_iter().find(|o| self::code(*o) == code)
}

/// Decimal without leading zeros, so that the id round-trips through `to_string`.
fn parse_canonical_u64(text: &str) -> Option<u64> {
    let value: u64 = text.parse().ok()?;
    (value.to_string() == text).then_some(value)
}

fn push_escaped(out: &mut String, id: &str) {
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'/' | b':') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

fn unescape(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut iter = text.bytes();
    while let Some(byte) = iter.next() {
        if byte == b'%' {
            let hex = [iter.next()?, iter.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            bytes.push(byte);
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, observed: Observed, millis: u64) -> ProbeResult {
        ProbeResult {
            id: id.to_owned(),
            kind: None,
            target: None,
            observed,
            millis,
            micros: millis * 1000,
            detail: Some("ignored by the compact form".into()),
        }
    }

    fn compact(results: &[ProbeResult], with_millis: bool) -> Vec<CompactResult> {
        results
            .iter()
            .map(|r| CompactResult { id: r.id.clone(), observed: r.observed, millis: with_millis.then_some(r.millis) })
            .collect()
    }

    fn many(n: usize, id: impl Fn(usize) -> String) -> Vec<ProbeResult> {
        (0..n).map(|i| result(&id(i), Observed::ALL[(i / 7) % 5], (i % 1000) as u64)).collect()
    }

    #[test]
    fn round_trips_with_latencies_and_odd_ids() {
        let results = vec![
            result("1", Observed::Connected, 2),
            result("web-1,=%", Observed::Timeout, 1001),
            result("ünïcode id", Observed::Unreachable, 0),
            result("x/a:80/TCP", Observed::Refused, 3),
            result("e", Observed::Error, 0),
        ];
        let text = encode(&results, MAX_BYTES);
        assert!(text.starts_with("nc1 5\n1=C2,web%2D1%2C%3D%25=T1001,"), "{text}");
        let decoded = decode(&text).unwrap();
        assert_eq!(decoded.total, 5);
        assert!(!decoded.truncated);
        assert_eq!(decoded.results, compact(&results, true));
    }

    #[test]
    fn empty_results_round_trip() {
        let text = encode(&[], MAX_BYTES);
        assert_eq!(text, "nc1 0\n");
        let decoded = decode(&text).unwrap();
        assert_eq!((decoded.total, decoded.truncated), (0, false));
        assert!(decoded.results.is_empty());
    }

    #[test]
    fn dense_ids_fit_thousands_of_results() {
        let results = many(4000, |i| (i + 1).to_string());
        let text = encode(&results, MAX_BYTES);
        assert!(text.len() <= MAX_BYTES, "{} bytes", text.len());
        assert!(text.starts_with("nc1 4000 dense 1\nC7R7T7U7E7C7"), "{}", &text[..40]);
        let decoded = decode(&text).unwrap();
        assert_eq!(decoded.total, 4000);
        assert!(!decoded.truncated);
        assert_eq!(decoded.results, compact(&results, false));

        // Runs of one compress to the bare code.
        let alternating: Vec<ProbeResult> =
            (0..4).map(|i| result(&(i + 10).to_string(), Observed::ALL[i % 2], 1)).collect();
        assert_eq!(dense(&alternating).unwrap(), "nc1 4 dense 10\nCRCR");
    }

    #[test]
    fn drops_latencies_before_truncating() {
        let results = many(500, |i| format!("p{i}"));
        assert!(generic(&results, true).len() > MAX_BYTES);
        let text = encode(&results, MAX_BYTES);
        assert!(text.len() <= MAX_BYTES);
        assert!(text.starts_with("nc1 500\n"), "not truncated");
        assert_eq!(decode(&text).unwrap().results, compact(&results, false));
    }

    #[test]
    fn truncates_at_an_entry_boundary_and_says_so() {
        let results = many(2000, |i| format!("ns-{i}/pod:80/TCP"));
        for max in [MAX_BYTES, 100, 40] {
            let text = encode(&results, max);
            assert!(text.len() <= max, "{} > {max}", text.len());
            let decoded = decode(&text).unwrap();
            assert_eq!(decoded.total, 2000);
            assert!(decoded.truncated);
            let kept = decoded.results.len();
            assert!(kept < 2000);
            assert!(text.starts_with(&format!("nc1 2000 truncated {kept}\n")), "{text}");
            assert_eq!(decoded.results, compact(&results[..kept], false));
        }
        // 4096 bytes still hold well over a hundred such results.
        assert!(decode(&encode(&results, MAX_BYTES)).unwrap().results.len() > 150);
    }

    #[test]
    fn rejects_what_it_did_not_write() {
        assert_eq!(decode("hello"), Err(DecodeError::NotCompactForm));
        assert!(matches!(decode("nc1 x\n"), Err(DecodeError::Header(_))));
        assert!(matches!(decode("nc1 1 dense 01\nC"), Err(DecodeError::Header(_))));
        assert!(matches!(decode("nc1 1\n1=Q3"), Err(DecodeError::Entry { index: 0, .. })));
        assert!(matches!(decode("nc1 1\n1=C3x"), Err(DecodeError::Entry { .. })));
        assert!(matches!(decode("nc1 1\n%zz=C"), Err(DecodeError::Entry { .. })));
        assert_eq!(decode("nc1 2\n1=C"), Err(DecodeError::Count { expected: 2, found: 1 }));
        assert!(matches!(decode("nc1 3 dense 1\nC2"), Err(DecodeError::Count { .. })));
    }
}
