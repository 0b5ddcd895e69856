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
    /// The network did what declared intent forbids, or refused what it requires, round
    /// after round, whatever policy says.
    IntentViolation,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Pass,
        Outcome::UnexpectedAllow,
        Outcome::UnexpectedDeny,
        Outcome::Converging,
        Outcome::Inconclusive,
        Outcome::IntentViolation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::UnexpectedAllow => "unexpected_allow",
            Outcome::UnexpectedDeny => "unexpected_deny",
            Outcome::Converging => "converging",
            Outcome::Inconclusive => "inconclusive",
            Outcome::IntentViolation => "intent_violation",
        }
    }

    /// A disagreement someone must act on: with policy, or with declared intent.
    pub fn is_mismatch(self) -> bool {
        matches!(self, Outcome::UnexpectedAllow | Outcome::UnexpectedDeny | Outcome::IntentViolation)
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

/// Judges a probe against policy and, when it falls under a statement of declared intent
/// (`intent_allows`), against intent as well: a settled answer that contradicts intent is
/// an intent violation whatever policy says, and takes the place of the policy outcome
/// (the record keeps policy's expectation beside it). An inconclusive probe stays
/// inconclusive, and answers that change between rounds are judged by policy alone.
///
/// `expected_allowed` is `None` when policy's answer is not known (a rule naming domains, a
/// tie between cluster policies): the probe is then inconclusive unless the network did
/// what intent forbids, which no answer of policy could excuse.
pub fn judge_with_intent(expected_allowed: Option<bool>, intent_allows: Option<bool>, rounds: &[Observed]) -> Outcome {
    let policy = expected_allowed.map_or(Outcome::Inconclusive, |allowed| judge_rounds(allowed, rounds));
    match intent_allows.map(|allows| judge_rounds(allows, rounds)) {
        Some(Outcome::UnexpectedAllow | Outcome::UnexpectedDeny)
            if policy != Outcome::Inconclusive || expected_allowed.is_none() =>
        {
            Outcome::IntentViolation
        }
        _ => policy,
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
        assert_eq!(
            labels,
            ["pass", "unexpected_allow", "unexpected_deny", "converging", "inconclusive", "intent_violation"]
        );
    }

    /// (policy allows, intent allows, rounds, outcome); `None`: not known / no intent.
    type IntentCase = (Option<bool>, Option<bool>, &'static [Observed], Outcome);

    #[test]
    fn intent_judgement_table() {
        let cases: [IntentCase; 13] = [
            (Some(true), Some(false), &[Connected], Outcome::IntentViolation),
            (Some(true), Some(false), &[Refused], Outcome::IntentViolation),
            (Some(false), Some(false), &[Connected, Connected], Outcome::IntentViolation),
            (Some(false), Some(true), &[Timeout, Timeout], Outcome::IntentViolation),
            (Some(false), Some(false), &[Timeout], Outcome::Pass),
            (Some(true), Some(true), &[Connected], Outcome::Pass),
            (Some(true), None, &[Connected], Outcome::Pass),
            (Some(true), Some(false), &[Connected, Error], Outcome::Inconclusive),
            (Some(false), Some(false), &[Connected, Timeout], Outcome::Pass),
            // Policy's answer not known: only a contradiction of intent is a verdict.
            (None, Some(false), &[Connected], Outcome::IntentViolation),
            (None, Some(false), &[Timeout], Outcome::Inconclusive),
            (None, Some(false), &[Connected, Error], Outcome::Inconclusive),
            (None, None, &[Connected], Outcome::Inconclusive),
        ];
        for (policy, intent, rounds, want) in cases {
            assert_eq!(
                judge_with_intent(policy, intent, rounds),
                want,
                "policy allows {policy:?}, intent allows {intent:?}, rounds {rounds:?}"
            );
        }
    }
}
