//! One probe judged on its rounds.
//!
//! A probe is judged on every round it ran: policy takes time to be enforced after a
//! change and UDP loses packets, so a cell that disagrees is probed again before it is
//! called a mismatch, and a cell whose answers change between rounds is reported as
//! converging rather than hidden or alarmed. A probe that could not run is inconclusive,
//! never a pass.

use netcanary_wire::{Observed, Reachability};
use serde::{Deserialize, Serialize};

/// The judgement of one probe (stable: the `result` label of `netcanary_probes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    /// Policy denies it and the network let it through: the dangerous one.
    UnexpectedAllow,
    /// Policy allows it and the network blocked it.
    UnexpectedDeny,
    /// The answers changed between rounds and the last one still disagrees.
    Converging,
    /// The probe could not run (or its result never came back).
    Inconclusive,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Pass, Outcome::UnexpectedAllow, Outcome::UnexpectedDeny, Outcome::Converging, Outcome::Inconclusive];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::UnexpectedAllow => "unexpected_allow",
            Outcome::UnexpectedDeny => "unexpected_deny",
            Outcome::Converging => "converging",
            Outcome::Inconclusive => "inconclusive",
        }
    }

    pub fn is_mismatch(self) -> bool {
        matches!(self, Outcome::UnexpectedAllow | Outcome::UnexpectedDeny)
    }
}

/// Whether this probe should be tried again: its latest answer disagrees with policy or
/// could not be had, and rounds remain.
pub fn needs_retry(expected_allowed: bool, latest: Observed) -> bool {
    agrees(expected_allowed, latest) != Some(true)
}

/// `Some(true)` when `observed` matches the expectation, `None` when it says nothing.
fn agrees(expected_allowed: bool, observed: Observed) -> Option<bool> {
    match observed.reachability() {
        Reachability::Reachable => Some(expected_allowed),
        Reachability::Blocked => Some(!expected_allowed),
        Reachability::Inconclusive => None,
    }
}

/// Judges a probe on its rounds, oldest first.
pub fn judge_rounds(expected_allowed: bool, rounds: &[Observed]) -> Outcome {
    let Some(&last) = rounds.last() else { return Outcome::Inconclusive };
    match agrees(expected_allowed, last) {
        None => Outcome::Inconclusive,
        Some(true) => Outcome::Pass,
        Some(false) => {
            let flapped = rounds.iter().any(|&o| agrees(expected_allowed, o) == Some(true));
            if flapped {
                Outcome::Converging
            } else if expected_allowed {
                Outcome::UnexpectedDeny
            } else {
                Outcome::UnexpectedAllow
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Observed::*;

    #[test]
    fn judgement_table() {
        let cases: [(bool, &[Observed], Outcome); 13] = [
            (true, &[Connected], Outcome::Pass),
            (true, &[Refused], Outcome::Pass),
            (false, &[Timeout], Outcome::Pass),
            (false, &[Unreachable], Outcome::Pass),
            (false, &[Connected, Connected], Outcome::UnexpectedAllow),
            (false, &[Refused], Outcome::UnexpectedAllow),
            (true, &[Timeout, Timeout, Unreachable], Outcome::UnexpectedDeny),
            (true, &[Timeout, Connected], Outcome::Pass),
            (false, &[Timeout, Connected], Outcome::Converging),
            (true, &[Connected, Timeout], Outcome::Converging),
            (true, &[Error], Outcome::Inconclusive),
            (false, &[Connected, Error], Outcome::Inconclusive),
            (true, &[], Outcome::Inconclusive),
        ];
        for (expected, rounds, want) in cases {
            assert_eq!(judge_rounds(expected, rounds), want, "expected allow {expected}, rounds {rounds:?}");
        }
    }

    #[test]
    fn retries_follow_disagreement_and_errors() {
        assert!(!needs_retry(true, Connected));
        assert!(needs_retry(true, Timeout));
        assert!(needs_retry(false, Refused));
        assert!(needs_retry(false, Error));
        assert!(!needs_retry(false, Unreachable));
    }

    #[test]
    fn labels_are_the_metric_vocabulary() {
        let labels: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels, ["pass", "unexpected_allow", "unexpected_deny", "converging", "inconclusive"]);
    }
}
