//! The probe header: what makes a UDP datagram "netcanary's", so that a target answers only
//! netcanary (a safety rule) and an agent accepts only the echo of its own datagram.
//!
//! A probe datagram is exactly [`PROBE_LEN`] bytes of ASCII: the magic `netcanary/1 `
//! followed by a 128-bit nonce in lowercase hex. ASCII keeps it readable in a packet capture
//! and lets a person send one by hand (`printf 'netcanary/1 %032x' 1 | nc -u host port`).
//! The exact length keeps the target strict: it never reflects anything longer than what
//! it received, and never anything that is not a probe.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Identifies the header and its version.
pub const MAGIC: &[u8; 12] = b"netcanary/1 ";
const NONCE_HEX_LEN: usize = 32;
/// The length of every probe datagram.
pub const PROBE_LEN: usize = MAGIC.len() + NONCE_HEX_LEN;

/// A per-probe random value, so that an echo can be matched to the probe that sent it.
/// Unpredictability is not a security property here, only a guard against crossed wires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce(pub u128);

impl Nonce {
    /// A fresh nonce from the standard library's randomly keyed hasher (no extra dependency),
    /// mixed with a counter and the clock so that two calls never collide in practice.
    pub fn random() -> Nonce {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let half = |salt: u64| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(salt);
            hasher.write_u64(count);
            hasher.write_u128(nanos);
            hasher.finish()
        };
        Nonce((u128::from(half(1)) << 64) | u128::from(half(2)))
    }
}

/// The datagram an agent sends for `nonce`.
pub fn encode(nonce: Nonce) -> [u8; PROBE_LEN] {
    let mut datagram = [0u8; PROBE_LEN];
    datagram[..MAGIC.len()].copy_from_slice(MAGIC);
    let hex = format!("{:032x}", nonce.0);
    datagram[MAGIC.len()..].copy_from_slice(hex.as_bytes());
    datagram
}

/// The nonce of a well-formed probe datagram, or `None` for anything else.
pub fn decode(datagram: &[u8]) -> Option<Nonce> {
    let hex = datagram.strip_prefix(MAGIC.as_slice())?;
    if hex.len() != NONCE_HEX_LEN || !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let text = std::str::from_utf8(hex).ok()?;
    u128::from_str_radix(text, 16).ok().map(Nonce)
}

/// Whether a target should echo `datagram`.
pub fn is_probe(datagram: &[u8]) -> bool {
    decode(datagram).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_everything_else() {
        let nonce = Nonce::random();
        let datagram = encode(nonce);
        assert_eq!(decode(&datagram), Some(nonce));
        assert!(datagram.starts_with(b"netcanary/1 "));

        let mut longer = datagram.to_vec();
        longer.push(b'\n');
        let mut upper = datagram;
        upper[PROBE_LEN - 1] = b'F';
        let not_probes: [&[u8]; 5] = [b"", b"hello", &datagram[..PROBE_LEN - 1], &longer, &upper];
        for bytes in not_probes {
            assert!(!is_probe(bytes), "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn nonces_differ() {
        let a = Nonce::random();
        let b = Nonce::random();
        assert_ne!(a, b);
    }
}
