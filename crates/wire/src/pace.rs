//! How long an agent may take over its plan. It keeps `concurrency` probes in flight, and
//! a probe the network drops takes its whole timeout (one to a host name gets as long again
//! to resolve the name first), so `n` probes run in at most `⌈n / concurrency⌉` waves of the
//! longest probe. The agent's watchdog and the orchestrator's budget and waits all count
//! with these functions, so that a plan the planner accepts is one the agent finishes and
//! the orchestrator waits for.

use std::time::Duration;

/// Probes an agent keeps in flight unless its plan says otherwise: high enough that 2,000
/// probes run as one wave and finish in about one timeout.
pub const DEFAULT_CONCURRENCY: usize = 4096;

/// How long past the probes' own deadlines the agent's watchdog waits, per wave and once
/// more at the end, before giving up on them.
pub const WATCHDOG_MARGIN: Duration = Duration::from_millis(500);

/// The longest one probe may take: a probe to a host name resolves it within its own
/// timeout before connecting within another, so that a slow resolver never turns into a
/// false "timeout".
pub fn longest_probe(timeout: Duration, to_a_name: bool) -> Duration {
    if to_a_name { timeout.saturating_mul(2) } else { timeout }
}

/// The waves `probes` probes take with `concurrency` in flight.
pub fn waves(probes: usize, concurrency: usize) -> usize {
    probes.div_ceil(concurrency.max(1))
}

/// How long `probes` probes may take at worst, the longest of them taking `longest`: every
/// wave as long as its longest probe.
pub fn probing(probes: usize, concurrency: usize, longest: Duration) -> Duration {
    longest.saturating_mul(u32::try_from(waves(probes, concurrency)).unwrap_or(u32::MAX))
}

/// How long the agent's watchdog lets `probes` probes run before it reports the rest as
/// unanswered: [`probing`] with [`WATCHDOG_MARGIN`] added to every wave and once more.
pub fn watchdog(probes: usize, concurrency: usize, longest: Duration) -> Duration {
    probing(probes, concurrency, longest + WATCHDOG_MARGIN) + WATCHDOG_MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn probes_run_in_waves_of_the_longest_probe() {
        assert_eq!(waves(0, 4096), 0);
        assert_eq!(waves(4096, 4096), 1);
        assert_eq!(waves(4097, 4096), 2);
        assert_eq!(waves(3, 0), 3, "a concurrency of 0 is taken as 1");
        assert_eq!(probing(2000, 4096, 2 * SECOND), 2 * SECOND, "2,000 probes take one timeout");
        assert_eq!(probing(10_000, 4096, longest_probe(2 * SECOND, true)), 12 * SECOND);
        assert_eq!(watchdog(10_000, 4096, 2 * SECOND), Duration::from_millis(3 * 2500 + 500));
        assert_eq!(probing(0, 4096, 2 * SECOND), Duration::ZERO);
    }
}
