//! Kinds that change who reaches whom but that netcanary does not evaluate: the CNIs' own
//! policy kinds, and secondary networks with their policies. (The cluster-scoped policy
//! tiers around NetworkPolicy are evaluated: see [`crate::cluster_policy`].) Verdicts ignore them, so wherever they exist
//! the verdicts may differ from what the cluster enforces. `analyze` warns about each one
//! in its input; a run counts them in the cluster (and reads nothing else of them) and
//! turns the mismatches they could explain into inconclusive results. The shipped RBAC
//! grants `list` on exactly these resources.

use std::borrow::Cow;

use crate::manifest::{READ_KINDS, group_of};

/// One kind's API: what a manifest names it by and where the API server serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnevaluatedKind {
    pub group: &'static str,
    /// The versions clusters serve it in, newest first.
    pub versions: &'static [&'static str],
    pub kind: &'static str,
    /// The resource name in API paths and RBAC rules.
    pub plural: &'static str,
    pub cluster_scoped: bool,
}

impl UnevaluatedKind {
    /// The kind as reports name it: qualified by its group where the bare kind is one
    /// netcanary reads (Calico's `NetworkPolicy` is `NetworkPolicy.crd.projectcalico.org`).
    pub fn name(&self) -> Cow<'static, str> {
        if READ_KINDS.iter().any(|read| read.kind == self.kind && group_of(read.api_version) != self.group) {
            Cow::Owned(format!("{}.{}", self.kind, self.group))
        } else {
            Cow::Borrowed(self.kind)
        }
    }
}

const fn kind(
    group: &'static str,
    versions: &'static [&'static str],
    kind: &'static str,
    plural: &'static str,
    cluster_scoped: bool,
) -> UnevaluatedKind {
    UnevaluatedKind { group, versions, kind, plural, cluster_scoped }
}

pub const UNEVALUATED_KINDS: [UnevaluatedKind; 10] = [
    // CNI-specific policies, enforced beside NetworkPolicy.
    kind("cilium.io", &["v2"], "CiliumNetworkPolicy", "ciliumnetworkpolicies", false),
    kind("cilium.io", &["v2"], "CiliumClusterwideNetworkPolicy", "ciliumclusterwidenetworkpolicies", true),
    kind("crd.projectcalico.org", &["v1"], "NetworkPolicy", "networkpolicies", false),
    kind("crd.projectcalico.org", &["v1"], "GlobalNetworkPolicy", "globalnetworkpolicies", true),
    kind("projectcalico.org", &["v3"], "NetworkPolicy", "networkpolicies", false),
    kind("projectcalico.org", &["v3"], "GlobalNetworkPolicy", "globalnetworkpolicies", true),
    // Secondary networks and the policies that govern them.
    kind("k8s.cni.cncf.io", &["v1beta2", "v1beta1"], "MultiNetworkPolicy", "multi-networkpolicies", false),
    kind("k8s.cni.cncf.io", &["v1"], "NetworkAttachmentDefinition", "network-attachment-definitions", false),
    kind("k8s.ovn.org", &["v1"], "UserDefinedNetwork", "userdefinednetworks", false),
    kind("k8s.ovn.org", &["v1"], "ClusterUserDefinedNetwork", "clusteruserdefinednetworks", true),
];

/// The unevaluated kind an object's `apiVersion` and `kind` name, whatever the version
/// (a manifest of an older or newer version still changes who reaches whom). Without an
/// `apiVersion`, only a kind no other API uses is recognised.
pub fn unevaluated_kind(api_version: Option<&str>, kind: &str) -> Option<&'static UnevaluatedKind> {
    match api_version {
        Some(api_version) => UNEVALUATED_KINDS.iter().find(|k| k.kind == kind && k.group == group_of(api_version)),
        None => {
            let mut matching = UNEVALUATED_KINDS.iter().filter(|k| k.kind == kind);
            let first = matching.next()?;
            matching.all(|k| k.group == first.group).then_some(first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_by_group_and_kind_whatever_the_version() {
        let found = |api_version, kind| unevaluated_kind(api_version, kind).map(|k| k.name().into_owned());
        assert_eq!(found(Some("cilium.io/v2"), "CiliumNetworkPolicy").as_deref(), Some("CiliumNetworkPolicy"));
        assert_eq!(found(Some("cilium.io/v3"), "CiliumNetworkPolicy").as_deref(), Some("CiliumNetworkPolicy"));
        assert_eq!(
            found(Some("crd.projectcalico.org/v1"), "NetworkPolicy").as_deref(),
            Some("NetworkPolicy.crd.projectcalico.org")
        );
        assert_eq!(
            found(Some("projectcalico.org/v3"), "NetworkPolicy").as_deref(),
            Some("NetworkPolicy.projectcalico.org")
        );
        assert_eq!(found(Some("networking.k8s.io/v1"), "NetworkPolicy"), None, "the kind netcanary reads");
        assert_eq!(found(None, "NetworkPolicy"), None);
        assert_eq!(found(None, "CiliumNetworkPolicy").as_deref(), Some("CiliumNetworkPolicy"));
        assert_eq!(found(Some("policy.networking.k8s.io/v1alpha1"), "AdminNetworkPolicy"), None, "evaluated");
        assert_eq!(found(None, "GlobalNetworkPolicy"), None, "Calico serves it in two groups");
        assert_eq!(found(Some("v1"), "ConfigMap"), None);
    }

    #[test]
    fn each_resource_once() {
        for (i, a) in UNEVALUATED_KINDS.iter().enumerate() {
            assert!(!a.versions.is_empty(), "{} has versions", a.kind);
            for b in &UNEVALUATED_KINDS[i + 1..] {
                assert!((a.group, a.plural) != (b.group, b.plural), "{}.{} twice", a.plural, a.group);
                assert!((a.group, a.kind) != (b.group, b.kind), "{} in {} twice", a.kind, a.group);
            }
        }
    }
}
