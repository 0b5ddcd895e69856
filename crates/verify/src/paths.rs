//! A cell probed by several paths expects the same of each: policy is the backend pod's after
//! the Service's address is translated. When the pod path agrees with policy and a Service
//! path does not, the fault is in the translation (kube-proxy, a CNI's Service handling, the
//! cluster DNS), not in the policy or its enforcement at the pod: the report says so, since
//! that is where to look.

use std::collections::BTreeSet;

use crate::record::{ProbePath, ProbeRecord, WorkloadRef};
use crate::rounds::Outcome;

/// The words that mark a mismatch seen only through a Service.
pub const ONLY_THROUGH_A_SERVICE: &str = "only through the Service";

/// Adds to the detail of every service or dns mismatch whose cell passed by the pod path
/// that it is seen only through the Service.
pub fn say_where_only_a_service_disagrees(probes: &mut [ProbeRecord]) {
    type Cell<'a> = (&'a WorkloadRef, &'a WorkloadRef, u16, &'a str);
    let passed_by_pod: BTreeSet<Cell> = probes
        .iter()
        .filter(|p| p.path == ProbePath::Pod && p.outcome == Outcome::Pass)
        .map(|p| (&p.source, &p.destination, p.port, p.protocol.as_str()))
        .collect();
    let only_through_a_service: Vec<usize> = probes
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.path != ProbePath::Pod
                && p.outcome.is_mismatch()
                && passed_by_pod.contains(&(&p.source, &p.destination, p.port, p.protocol.as_str()))
        })
        .map(|(index, _)| index)
        .collect();
    for index in only_through_a_service {
        let probe = &mut probes[index];
        let how = match probe.path {
            ProbePath::Dns => "by the Service's name",
            _ => "by the Service's ClusterIP",
        };
        let note = format!(
            "{ONLY_THROUGH_A_SERVICE} ({how}): the same cell passed by the pod's own address, so the Service's \
             translation (kube-proxy, the CNI's Service handling, cluster DNS) is what differs"
        );
        probe.detail = Some(match probe.detail.take() {
            Some(detail) => format!("{note}; {detail}"),
            None => note,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Observed;
    use crate::sample::probe;

    fn by(path: ProbePath, outcome: Outcome, observed: Observed) -> ProbeRecord {
        ProbeRecord { path, ..probe(outcome, false, observed) }
    }

    #[test]
    fn a_mismatch_only_through_a_service_says_so_and_one_the_pod_path_shares_does_not() {
        let mut probes = vec![
            by(ProbePath::Pod, Outcome::Pass, Observed::Timeout),
            by(ProbePath::Service, Outcome::UnexpectedAllow, Observed::Connected),
            by(ProbePath::Dns, Outcome::UnexpectedAllow, Observed::Connected),
        ];
        say_where_only_a_service_disagrees(&mut probes);
        assert_eq!(probes[0].detail, None);
        let service = probes[1].detail.as_deref().unwrap();
        assert!(service.starts_with("only through the Service (by the Service's ClusterIP)"), "{service}");
        let dns = probes[2].detail.as_deref().unwrap();
        assert!(dns.starts_with("only through the Service (by the Service's name)"), "{dns}");

        // Seen by the pod path too: an enforcement problem, not a translation one.
        let mut probes = vec![
            by(ProbePath::Pod, Outcome::UnexpectedAllow, Observed::Connected),
            by(ProbePath::Service, Outcome::UnexpectedAllow, Observed::Connected),
        ];
        say_where_only_a_service_disagrees(&mut probes);
        assert!(probes.iter().all(|p| p.detail.is_none()), "{probes:?}");

        // Another port's pass says nothing of this cell.
        let mut probes = vec![
            ProbeRecord { port: 80, ..by(ProbePath::Pod, Outcome::Pass, Observed::Timeout) },
            by(ProbePath::Service, Outcome::UnexpectedAllow, Observed::Connected),
        ];
        say_where_only_a_service_disagrees(&mut probes);
        assert!(probes[1].detail.is_none());
    }
}
