//! What a probe pod copies from the workload it stands in for: only the labels some policy
//! selector reads (so Services, PodDisruptionBudgets and controllers that select on other
//! keys never see it), never a controller-managed label (so no controller adopts or counts
//! it), plus netcanary's own.

use std::collections::HashSet;

use netcanary_policy::Labels;

/// Marks every pod netcanary creates; a later run sweeps what carries it.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "netcanary";
/// Names the run a probe pod belongs to.
pub const RUN_ID_KEY: &str = "netcanary.io/run-id";

/// Labels that controllers set and read to own their pods: copying one could make a
/// ReplicaSet, StatefulSet or Job count or adopt a probe pod.
const CONTROLLER_LABELS: [&str; 5] = [
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "job-name",
    "controller-uid",
];
const CONTROLLER_PREFIX: &str = "batch.kubernetes.io/";

pub fn is_controller_label(key: &str) -> bool {
    CONTROLLER_LABELS.contains(&key) || key.starts_with(CONTROLLER_PREFIX)
}

/// The labels a probe pod for `workload` carries (without netcanary's own), and the
/// policy-relevant keys it had to leave out because controllers own them.
pub fn mirrored_labels(workload: &Labels, selected_keys: &HashSet<&str>) -> (Labels, Vec<String>) {
    let mut labels = Labels::new();
    let mut dropped = Vec::new();
    let copied = |key: &str| selected_keys.contains(key) && key != MANAGED_BY_KEY && key != RUN_ID_KEY;
    for (key, value) in workload.iter().filter(|(k, _)| copied(k)) {
        if is_controller_label(key) {
            dropped.push(key.clone());
        } else {
            labels.insert(key.clone(), value.clone());
        }
    }
    (labels, dropped)
}

/// The labels a probe pod for `workload` really carries: what it copies, and netcanary's
/// own (`run_id` stands for the run's id, which no selector can know in advance).
pub fn probe_pod_labels(workload: &Labels, selected_keys: &HashSet<&str>, run_id: &str) -> Labels {
    with_netcanary_labels(mirrored_labels(workload, selected_keys).0, run_id)
}

/// `labels` plus netcanary's own, which every probe pod of run `run_id` carries (over any
/// copied value of the same key).
pub fn with_netcanary_labels(mut labels: Labels, run_id: &str) -> Labels {
    labels.insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
    labels.insert(RUN_ID_KEY.into(), run_id.into());
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_only_selected_keys_and_never_controller_labels() {
        let workload: Labels = [
            ("app", "api"),
            ("team", "payments"),
            ("pod-template-hash", "7d9f"),
            ("batch.kubernetes.io/job-name", "x"),
            ("statefulset.kubernetes.io/pod-name", "db-0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let selected: HashSet<&str> = ["app", "statefulset.kubernetes.io/pod-name", "pod-template-hash"].into();
        let (labels, dropped) = mirrored_labels(&workload, &selected);
        assert_eq!(labels.into_iter().collect::<Vec<_>>(), [("app".to_string(), "api".to_string())]);
        assert_eq!(dropped, ["pod-template-hash", "statefulset.kubernetes.io/pod-name"]);
    }
}
