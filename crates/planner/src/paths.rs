//! Which way each probe reaches its target pod. People reach a backend by the pod's IP, by a
//! Service's ClusterIP, or by the Service's DNS name, and policy applies to the backend pod
//! after the address is translated: every path expects what the pod path expects. Sending a
//! cell by several paths catches a dataplane whose translation skips or breaks policy (a
//! kube-proxy mode, a CNI's own Service handling, a mesh) where the pod path is fine.
//!
//! The selection ([`crate::select`]) chooses cells by pod; here each cell to a target pod
//! becomes one probe per path. Probes to the cluster DNS go through its Service already and
//! say so; probes to addresses outside the cluster have only their address.

use std::collections::BTreeSet;

use crate::plan::{Destination, Plan, PlannedProbe, ProbePath};

/// Sends every probe to a target pod once per path of `paths` (in the order pod, service,
/// dns; none given means `pod`), and marks DNS probes as going through a Service. A note says
/// how many probes the extra paths add, since they go beyond `--max-probes`.
///
/// The `dns` path is not sent from the mirrors in `unresolving`, whose policy denies them
/// the cluster DNS: no name resolves there, so such a probe could only be inconclusive, and
/// whether DNS is really denied is their own DNS probe's to say. A note names them.
pub fn by_paths(plan: &mut Plan, paths: &[ProbePath], unresolving: &BTreeSet<usize>) {
    let paths: BTreeSet<ProbePath> = paths.iter().copied().collect();
    let paths: Vec<ProbePath> = if paths.is_empty() { vec![ProbePath::Pod] } else { paths.into_iter().collect() };
    let chosen = plan.probes.len();
    let mut probes = Vec::with_capacity(chosen * paths.len());
    let mut not_by_name = 0;
    for probe in plan.probes.drain(..) {
        match probe.to {
            Destination::Mirror(_) => {
                for &path in &paths {
                    if path == ProbePath::Dns && unresolving.contains(&probe.from) {
                        not_by_name += 1;
                    } else {
                        probes.push(PlannedProbe { path, ..probe.clone() });
                    }
                }
            }
            Destination::Dns => probes.push(PlannedProbe { path: ProbePath::Service, ..probe }),
            Destination::External(_) => probes.push(probe),
        }
    }
    plan.probes = probes;
    let added = plan.probes.len().saturating_sub(chosen);
    if added > 0 {
        let names: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
        plan.notes.push(format!(
            "each probe to a target pod is sent by {} paths ({}): {added} probes beyond the {chosen} chosen",
            paths.len(),
            names.join(", ")
        ));
    }
    if not_by_name > 0 {
        let sources: BTreeSet<&str> = unresolving.iter().map(|&m| plan.mirrors[m].stands_for.as_str()).collect();
        let sources: Vec<&str> = sources.into_iter().collect();
        plan.notes.push(format!(
            "{not_by_name} probes are not sent by the dns path: policy denies their sources ({}) the cluster DNS, so no name resolves there; their DNS probes check that",
            sources.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use netcanary_policy::{PortProto, Protocol};

    use super::*;
    use crate::{Mirror, Purpose};

    fn probe(to: Destination, expected_allowed: bool) -> PlannedProbe {
        PlannedProbe {
            from: 0,
            to,
            port: PortProto { port: 8080, protocol: Protocol::Tcp },
            expected_allowed,
            purpose: Purpose::AllowRule,
            covers: Vec::new(),
            path: ProbePath::Pod,
            intent: None,
        }
    }

    fn plan() -> Plan {
        Plan {
            probes: vec![
                probe(Destination::Dns, true),
                probe(Destination::Mirror(1), true),
                probe(Destination::External("192.0.2.1".parse().unwrap()), false),
                probe(Destination::Mirror(2), false),
            ],
            ..Plan::default()
        }
    }

    fn shape(plan: &Plan) -> Vec<(Destination, ProbePath, bool)> {
        plan.probes.iter().map(|p| (p.to, p.path, p.expected_allowed)).collect()
    }

    #[test]
    fn the_pod_path_alone_changes_nothing_but_the_dns_probes_path() {
        let mut plan = plan();
        by_paths(&mut plan, &[ProbePath::Pod], &BTreeSet::new());
        let external = Destination::External("192.0.2.1".parse().unwrap());
        assert_eq!(
            shape(&plan),
            [
                (Destination::Dns, ProbePath::Service, true),
                (Destination::Mirror(1), ProbePath::Pod, true),
                (external, ProbePath::Pod, false),
                (Destination::Mirror(2), ProbePath::Pod, false),
            ]
        );
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn every_path_expects_what_the_pod_path_expects() {
        let mut plan = plan();
        by_paths(&mut plan, &[ProbePath::Dns, ProbePath::Pod, ProbePath::Service, ProbePath::Dns], &BTreeSet::new());
        let external = Destination::External("192.0.2.1".parse().unwrap());
        assert_eq!(
            shape(&plan),
            [
                (Destination::Dns, ProbePath::Service, true),
                (Destination::Mirror(1), ProbePath::Pod, true),
                (Destination::Mirror(1), ProbePath::Service, true),
                (Destination::Mirror(1), ProbePath::Dns, true),
                (external, ProbePath::Pod, false),
                (Destination::Mirror(2), ProbePath::Pod, false),
                (Destination::Mirror(2), ProbePath::Service, false),
                (Destination::Mirror(2), ProbePath::Dns, false),
            ]
        );
        assert_eq!(
            plan.notes,
            ["each probe to a target pod is sent by 3 paths (pod, service, dns): 4 probes beyond the 4 chosen"]
        );
    }

    #[test]
    fn no_name_is_resolved_where_policy_denies_the_cluster_dns() {
        let mut plan = plan();
        plan.probes.push(PlannedProbe { from: 1, ..probe(Destination::Mirror(2), true) });
        plan.mirrors = ["dev/web-0", "shop/cron-0", "prod/db-0"].map(|pod| Mirror::example(pod, false)).to_vec();
        by_paths(&mut plan, &[ProbePath::Pod, ProbePath::Dns], &BTreeSet::from([0]));
        let from_0: Vec<(Destination, ProbePath)> =
            plan.probes.iter().filter(|p| p.from == 0).map(|p| (p.to, p.path)).collect();
        let external = Destination::External("192.0.2.1".parse().unwrap());
        assert_eq!(
            from_0,
            [
                (Destination::Dns, ProbePath::Service),
                (Destination::Mirror(1), ProbePath::Pod),
                (external, ProbePath::Pod),
                (Destination::Mirror(2), ProbePath::Pod),
            ],
            "no dns path from mirror 0"
        );
        let from_1: Vec<ProbePath> = plan.probes.iter().filter(|p| p.from == 1).map(|p| p.path).collect();
        assert_eq!(from_1, [ProbePath::Pod, ProbePath::Dns], "mirror 1 resolves names");
        assert_eq!(
            plan.notes[1],
            "2 probes are not sent by the dns path: policy denies their sources (dev/web-0) the cluster DNS, so no name resolves there; their DNS probes check that"
        );
    }

    #[test]
    fn without_the_pod_path_a_target_is_probed_only_through_its_service() {
        let mut plan = plan();
        by_paths(&mut plan, &[ProbePath::Service], &BTreeSet::new());
        let paths: Vec<ProbePath> =
            plan.probes.iter().filter(|p| matches!(p.to, Destination::Mirror(_))).map(|p| p.path).collect();
        assert_eq!(paths, [ProbePath::Service, ProbePath::Service]);
        assert!(plan.notes.is_empty());
    }
}
