//! What a plan costs in wall time. Every source pod of a round runs its probes at once, its
//! agent keeping `concurrency` of them in flight; a probe the network drops takes its whole
//! timeout, so a source pod with `n` probes probes for at most `⌈n / concurrency⌉` waves
//! (see [`netcanary_wire::pace`]) and the busiest source pod sets the round's time. The
//! planner gives no source pod more probes than fit in `--max-round-time`, by default one
//! wave: a round then takes one probe timeout however large the plan.
//!
//! Pod start-up, which no plan can know, is bounded by the start-up timeout: the plan's
//! worst case adds it for the target pods and for each round's source pods, with the wait
//! before each round, so that a run can tell before it starts whether its deadline could
//! cut it short.

use std::collections::BTreeMap;
use std::time::Duration;

use netcanary_wire::pace;

use crate::plan::{Destination, Plan, PlannedProbe, ProbePath};

/// How a run spends its time: what the wall-time budget and the plan's estimate count with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Each probe's deadline.
    pub probe_timeout: Duration,
    /// Probes a source pod keeps in flight.
    pub concurrency: usize,
    /// The longest one round's probing may take should every probe time out; `None`: one
    /// wave of the longest probe.
    pub max_round_time: Option<Duration>,
    /// Rounds a disagreeing probe gets.
    pub rounds: u32,
    /// The wait before each retry round (and before the first, when the run makes Services).
    pub round_wait: Duration,
    /// How long a probe pod may take to start.
    pub pod_start_timeout: Duration,
    /// The whole run's deadline.
    pub deadline: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            probe_timeout: Duration::from_secs(2),
            concurrency: pace::DEFAULT_CONCURRENCY,
            max_round_time: None,
            rounds: 3,
            round_wait: Duration::from_secs(5),
            pod_start_timeout: Duration::from_secs(120),
            deadline: Duration::from_secs(600),
        }
    }
}

/// What a plan's probing takes, at worst.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WallTime {
    /// Probes in flight per source pod.
    pub concurrency: usize,
    /// Probes the busiest source pod sends in the first round (retries send fewer).
    pub busiest_source: usize,
    /// The waves it takes.
    pub waves: usize,
    /// The longest one of its probes may take.
    pub longest_probe: Duration,
    /// A round's probing if every probe times out.
    pub round_probing: Duration,
    /// The whole run if every pod takes its whole start-up timeout, every probe times out
    /// and every round runs.
    pub worst_case: Duration,
    /// The run's deadline, to compare with.
    pub deadline: Duration,
}

impl WallTime {
    /// Whether the deadline could cut the run short, pods start-up at its slowest.
    pub fn exceeds_deadline(&self) -> bool {
        self.worst_case > self.deadline
    }
}

impl Timing {
    /// Most probes one source pod may send in a round, its longest probe taking `longest`.
    pub(crate) fn probes_per_source(&self, longest: Duration) -> usize {
        let waves = match self.max_round_time {
            Some(limit) if !longest.is_zero() => (limit.as_nanos() / longest.as_nanos()).max(1),
            _ => 1,
        };
        self.concurrency.max(1).saturating_mul(usize::try_from(waves).unwrap_or(usize::MAX))
    }

    /// The longest one probe of `paths` may take: by a Service's name it resolves the name
    /// first.
    pub(crate) fn longest_probe(&self, paths: &[ProbePath]) -> Duration {
        pace::longest_probe(self.probe_timeout, paths.contains(&ProbePath::Dns))
    }

    /// How long one source pod's `probes` may take at worst, and the longest of them.
    fn source_probing<'p>(&self, probes: impl IntoIterator<Item = &'p PlannedProbe>) -> (usize, Duration, Duration) {
        let (mut count, mut to_a_name) = (0, false);
        for probe in probes {
            count += 1;
            to_a_name |= probe.path == ProbePath::Dns && matches!(probe.to, Destination::Mirror(_));
        }
        let longest = pace::longest_probe(self.probe_timeout, to_a_name);
        (count, longest, pace::probing(count, self.concurrency, longest))
    }

    /// How long the orchestrator waits for a round's source pods once they have started:
    /// the busiest one's agent watchdog, which reports whatever is still unanswered by then.
    pub fn round_watchdog<'p>(&self, by_source: impl IntoIterator<Item = Vec<&'p PlannedProbe>>) -> Duration {
        (by_source.into_iter())
            .map(|probes| {
                let (count, longest, _) = self.source_probing(probes);
                pace::watchdog(count, self.concurrency, longest)
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// The plan's wall time at worst.
    pub fn estimate(&self, plan: &Plan) -> WallTime {
        let mut by_source: BTreeMap<usize, Vec<&PlannedProbe>> = BTreeMap::new();
        for probe in &plan.probes {
            by_source.entry(probe.from).or_default().push(probe);
        }
        let (busiest_source, longest_probe, round_probing) = (by_source.into_values())
            .map(|probes| self.source_probing(probes))
            .max_by_key(|&(count, _, probing)| (probing, count))
            .unwrap_or((0, self.probe_timeout, Duration::ZERO));
        let targets = plan.mirrors.iter().any(|m| !m.listen.is_empty());
        let services = plan.probes.iter().any(|p| matches!(p.to, Destination::Mirror(_)) && p.path.needs_service());
        let mut worst_case = if targets { self.pod_start_timeout } else { Duration::ZERO };
        if !plan.probes.is_empty() {
            for round in 0..self.rounds.max(1) {
                let wait = if round > 0 || services { self.round_wait } else { Duration::ZERO };
                worst_case += self.pod_start_timeout + wait + round_probing;
            }
        }
        WallTime {
            concurrency: self.concurrency,
            busiest_source,
            waves: pace::waves(busiest_source, self.concurrency),
            longest_probe,
            round_probing,
            worst_case,
            deadline: self.deadline,
        }
    }
}

#[cfg(test)]
mod tests {
    use netcanary_policy::PortProto;

    use super::*;
    use crate::plan::{Mirror, Purpose};

    fn probe(from: usize, to: Destination, path: ProbePath) -> PlannedProbe {
        PlannedProbe {
            from,
            to,
            port: PortProto::new(8080, netcanary_policy::Protocol::Tcp),
            expected_allowed: true,
            purpose: Purpose::Sample,
            covers: Vec::new(),
            path,
            intent: None,
        }
    }

    #[test]
    fn the_busiest_source_pod_sets_the_round_and_start_up_bounds_the_rest() {
        let second = Duration::from_secs(1);
        let timing = Timing {
            probe_timeout: second,
            concurrency: 2,
            rounds: 2,
            round_wait: 5 * second,
            pod_start_timeout: 60 * second,
            ..Timing::default()
        };
        let to_target = Destination::Mirror(1);
        let mut probes = vec![probe(0, to_target, ProbePath::Pod); 4];
        probes.push(probe(0, to_target, ProbePath::Dns));
        probes.push(probe(1, Destination::Dns, ProbePath::Service));
        let plan = Plan {
            mirrors: vec![Mirror::example("shop/web", false), Mirror::example("shop/db", true)],
            probes,
            ..Plan::default()
        };
        let time = timing.estimate(&plan);
        // Five probes, one by name (2 s): three waves of two.
        assert_eq!((time.busiest_source, time.waves, time.longest_probe), (5, 3, 2 * second));
        assert_eq!(time.round_probing, 6 * second);
        // Targets start, then each of two rounds: start-up, the wait (a run with Services
        // waits before its first round too) and the probing.
        assert_eq!(time.worst_case, (60 + 2 * (60 + 5 + 6)) * second);
        assert!(!time.exceeds_deadline(), "202 s fit in the default 10 minutes");
        let short = Timing { deadline: 200 * second, ..timing.clone() };
        assert!(short.estimate(&plan).exceeds_deadline(), "202 s do not fit in 200");
        // The orchestrator waits for the agent's watchdog: half a second more per wave and once.
        let by_source = vec![plan.probes.iter().filter(|p| p.from == 0).collect::<Vec<_>>()];
        assert_eq!(timing.round_watchdog(by_source), Duration::from_millis(3 * 2500 + 500));
        // Without a probe, no round probes.
        let empty = timing.estimate(&Plan::default());
        assert_eq!((empty.busiest_source, empty.round_probing, empty.worst_case), (0, Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn a_round_holds_as_many_waves_as_its_time_allows() {
        let second = Duration::from_secs(1);
        let timing = |max_round_time| Timing { concurrency: 10, max_round_time, ..Timing::default() };
        assert_eq!(timing(None).probes_per_source(2 * second), 10, "one wave by default");
        assert_eq!(timing(Some(second)).probes_per_source(2 * second), 10, "never less than one wave");
        assert_eq!(timing(Some(7 * second)).probes_per_source(2 * second), 30);
        assert_eq!(timing(Some(7 * second)).probes_per_source(4 * second), 10, "probes by name take twice as long");
    }
}
