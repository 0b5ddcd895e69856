//! The cluster policy tiers around NetworkPolicy (ClusterNetworkPolicy, and the v1alpha1
//! AdminNetworkPolicy and BaselineAdminNetworkPolicy), from manifests through the engine,
//! each checked on the explained path and the bulk matrix. Expectations follow the API's
//! own words (apis/v1alpha2/clusternetworkpolicy_types.go) and the NPEPs.

mod common;

use common::{cluster, load, pod, verdict};
use netcanary_objects::Severity;
use netcanary_policy::{Action, PolicyIndex, PortProto, Tier, evaluate};

fn pods() -> String {
    format!(
        "{}{}{}{}",
        pod("x", "client", "app: client", "10.0.0.1", "- {containerPort: 80}"),
        pod("z", "other", "app: other", "10.0.2.1", "- {containerPort: 80}"),
        pod(
            "y",
            "server",
            "app: server",
            "10.0.1.1",
            "- {containerPort: 80, name: web}\n- {containerPort: 85}\n- {containerPort: 53, protocol: UDP, name: dns}\n- {containerPort: 9003, protocol: SCTP}"
        ),
        pod("y", "plain", "app: plain", "10.0.1.2", "- {containerPort: 80}"),
    )
}

fn cnp(name: &str, tier: &str, priority: u32, body: &str) -> String {
    format!(
        "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  tier: {tier}\n  priority: {priority}\n  subject: {{namespaces: {{matchLabels: {{kubernetes.io/metadata.name: y}}}}}}\n{body}"
    )
}

const DENY_ALL_NP: &str = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: y}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n";

fn from_any(action: &str, extra: &str) -> String {
    format!("  ingress:\n  - action: {action}\n    from: [{{namespaces: {{}}}}]\n{extra}")
}

#[test]
fn pass_at_the_end_of_an_admin_chain_hands_over_to_network_policy() {
    let admin = cnp(
        "chain",
        "Admin",
        1,
        "  ingress:\n  - {action: Deny, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: z}}}]}\n  - {name: rest, action: Pass, from: [{namespaces: {}}]}\n",
    );
    let baseline = cnp("default", "Baseline", 1, &from_any("Accept", ""));
    // NetworkPolicy isolates the server: after Pass, only its rules decide (none allow).
    let c = cluster(&format!("{}{admin}{baseline}{DENY_ALL_NP}", pods()));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert!(!v.allowed);
    assert_eq!(v.ingress.tier, Tier::NetworkPolicy);
    let step = &v.ingress.steps[0];
    assert_eq!(
        step.hit.as_ref().map(|h| (h.rule.to_string(), h.action)),
        Some(("ClusterNetworkPolicy/chain ingress \"rest\"".into(), Action::Pass))
    );
    // The Deny before it still applies to z.
    let v = verdict(&c, "z/other", "y/server", "80/TCP");
    assert_eq!((v.allowed, v.ingress.tier), (false, Tier::Admin));
    // No NetworkPolicy: after Pass the Baseline tier decides.
    let c = cluster(&format!("{}{admin}{baseline}", pods()));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert_eq!((v.allowed, v.ingress.tier, v.ingress.decision.action), (true, Tier::Baseline, Action::Accept));
    // Nothing after Pass: default allow.
    let c = cluster(&format!("{}{admin}", pods()));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert_eq!((v.allowed, v.ingress.tier), (true, Tier::Default));
}

#[test]
fn admin_accept_overrides_network_policy_and_baseline_deny_yields_to_it() {
    let admin = cnp("accept", "Admin", 1, &from_any("Accept", ""));
    let c = cluster(&format!("{}{admin}{DENY_ALL_NP}", pods()));
    assert!(verdict(&c, "x/client", "y/server", "80/TCP").allowed, "Admin Accept is final");
    let allow_np = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow, namespace: y}\nspec: {podSelector: {}, ingress: [{}]}\n";
    let baseline = cnp("default", "Baseline", 1, &from_any("Deny", ""));
    let c = cluster(&format!("{}{baseline}{allow_np}", pods()));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert_eq!((v.allowed, v.ingress.tier), (true, Tier::NetworkPolicy), "NetworkPolicy overrides Baseline");
    let c = cluster(&format!("{}{baseline}", pods()));
    assert_eq!(verdict(&c, "x/client", "y/server", "80/TCP").ingress.tier, Tier::Baseline);
}

#[test]
fn a_rule_without_protocols_matches_every_port_and_protocol() {
    let c = cluster(&format!("{}{}", pods(), cnp("deny", "Admin", 1, &from_any("Deny", ""))));
    for port in ["80/TCP", "53/UDP", "9003/SCTP", "12345/TCP"] {
        assert!(!verdict(&c, "x/client", "y/server", port).allowed, "{port}");
    }
    // An empty list is not the same: the CRD requires at least one entry.
    let loaded = load(&format!("{}{}", pods(), cnp("deny", "Admin", 1, &from_any("Deny", "    protocols: []\n"))));
    let d = loaded.diagnostics.iter().find(|d| d.severity == Severity::Error).expect("an error");
    assert_eq!(d.field.as_deref(), Some("spec.ingress[0].protocols"));
}

#[test]
fn overlapping_ranges_the_first_rule_wins() {
    let rules = |first: &str, second: &str| {
        format!(
            "  ingress:\n  - action: {first}\n    from: [{{namespaces: {{}}}}]\n    protocols: [{{tcp: {{destinationPort: {{range: {{start: 80, end: 90}}}}}}}}]\n  - action: {second}\n    from: [{{namespaces: {{}}}}]\n    protocols: [{{tcp: {{destinationPort: {{number: 85}}}}}}]\n"
        )
    };
    let c = cluster(&format!("{}{}", pods(), cnp("ranges", "Admin", 1, &rules("Accept", "Deny"))));
    assert!(verdict(&c, "x/client", "y/server", "85/TCP").allowed, "85 is in the range accepted first");
    let swapped = "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols: [{tcp: {destinationPort: {number: 85}}}]\n  - action: Accept\n    from: [{namespaces: {}}]\n    protocols: [{tcp: {destinationPort: {range: {start: 80, end: 90}}}}]\n";
    let c = cluster(&format!("{}{}", pods(), cnp("ranges", "Admin", 1, swapped)));
    assert!(!verdict(&c, "x/client", "y/server", "85/TCP").allowed);
    assert!(verdict(&c, "x/client", "y/server", "80/TCP").allowed);
    assert!(verdict(&c, "x/client", "y/server", "90/TCP").allowed, "ranges are inclusive");
    assert_eq!(verdict(&c, "x/client", "y/server", "85/UDP").ingress.tier, Tier::Default, "UDP is in no tcp range");
}

#[test]
fn a_named_port_absent_on_the_destination_matches_nothing() {
    let body = "  ingress:\n  - action: Accept\n    from: [{namespaces: {}}]\n    protocols: [{destinationNamedPort: web}]\n  - action: Deny\n    from: [{namespaces: {}}]\n";
    let c = cluster(&format!("{}{}", pods(), cnp("named", "Admin", 1, body)));
    assert!(verdict(&c, "x/client", "y/server", "80/TCP").allowed, "web is 80/TCP on the server");
    assert!(!verdict(&c, "x/client", "y/server", "80/UDP").allowed, "the named port's protocol is TCP");
    assert!(!verdict(&c, "x/client", "y/plain", "80/TCP").allowed, "plain declares no port named web");
    // The named port takes its protocol from the container port.
    let dns = body.replace("web", "dns");
    let c = cluster(&format!("{}{}", pods(), cnp("named", "Admin", 1, &dns)));
    assert!(verdict(&c, "x/client", "y/server", "53/UDP").allowed);
}

#[test]
fn equal_priorities_with_different_actions_are_implementation_defined() {
    let deny = cnp("a-deny", "Admin", 5, &from_any("Deny", ""));
    let accept = cnp("b-accept", "Admin", 5, &from_any("Accept", ""));
    let c = cluster(&format!("{}{deny}{accept}", pods()));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert!(v.ingress.tie.is_some() && v.implementation_defined(), "{v:?}");
    assert!(!v.allowed, "the answer shown is the first policy by name");
    // Same action: no ambiguity.
    let deny2 = cnp("b-deny", "Admin", 5, &from_any("Deny", ""));
    let c = cluster(&format!("{}{deny}{deny2}", pods()));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert!(v.ingress.tie.is_none() && !v.implementation_defined());
    // Different priorities: the lower decides.
    let accept = cnp("b-accept", "Admin", 4, &from_any("Accept", ""));
    let c = cluster(&format!("{}{deny}{accept}", pods()));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert!(v.allowed && v.ingress.tie.is_none());
}

#[test]
fn domain_names_make_a_cell_unknown_only_where_they_could_change_it() {
    let body =
        |after: &str| format!("  egress:\n  - action: Accept\n    to: [{{domainNames: [example.com]}}]\n{after}");
    let subject_x = |text: String| text.replace("kubernetes.io/metadata.name: y}}", "kubernetes.io/metadata.name: x}}");
    let deny_rest = "  - action: Deny\n    to: [{networks: [0.0.0.0/0]}]\n";
    let c = cluster(&format!("{}{}", pods(), subject_x(cnp("fqdn", "Admin", 1, &body(deny_rest)))));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert!(v.unknown().is_some(), "{v:?}");
    let index = PolicyIndex::new(&c);
    let matrix = index.matrix("80/TCP".parse::<PortProto>().unwrap());
    let position = |id: &str| c.endpoints().iter().position(|e| e.id == id).unwrap();
    let (f, t) = (index.classes().class_of(position("x/client")), index.classes().class_of(position("y/server")));
    assert!(matrix.unknown(f, t));
    // Nothing denies after it: allowed either way, so known.
    let c = cluster(&format!("{}{}", pods(), subject_x(cnp("fqdn", "Admin", 1, &body("")))));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert!(v.unknown().is_none() && v.allowed);
    // A known denial on the other side decides the cell.
    let c = cluster(&format!("{}{}{DENY_ALL_NP}", pods(), subject_x(cnp("fqdn", "Admin", 1, &body(deny_rest)))));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert!(v.unknown().is_none() && !v.allowed);
    assert!(v.egress.unknown.is_some());
}

#[test]
fn v1alpha1_policies_map_onto_the_same_tiers() {
    let anp = "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: anp}\nspec:\n  priority: 3\n  subject: {pods: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}, podSelector: {matchLabels: {app: server}}}}\n  ingress:\n  - {action: Allow, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}}], ports: [{portNumber: {port: 80}}, {namedPort: dns}]}\n  - {action: Pass, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: z}}}]}\n";
    let banp = "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec:\n  subject: {namespaces: {}}\n  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n";
    let c = cluster(&format!("{}{anp}{banp}{DENY_ALL_NP}", pods()));
    let v = verdict(&c, "x/client", "y/server", "80/TCP");
    assert_eq!((v.allowed, v.ingress.tier), (true, Tier::Admin), "Allow is Accept");
    assert!(verdict(&c, "x/client", "y/server", "53/UDP").allowed, "namedPort dns");
    assert!(!verdict(&c, "x/client", "y/server", "85/TCP").allowed);
    let v = verdict(&c, "z/other", "y/server", "80/TCP");
    assert_eq!(v.ingress.tier, Tier::NetworkPolicy, "Pass hands over to NetworkPolicy");
    let v = verdict(&c, "x/client", "y/plain", "80/TCP");
    assert_eq!(v.ingress.tier, Tier::NetworkPolicy);
    let c = cluster(&format!("{}{anp}{banp}", pods()));
    let v = verdict(&c, "z/other", "y/server", "80/TCP");
    assert_eq!((v.allowed, v.ingress.tier), (false, Tier::Baseline));
    // Both generations present: a warning says how they are combined.
    let loaded = load(&format!("{}{anp}{}", pods(), cnp("new", "Admin", 3, &from_any("Deny", ""))));
    let warning =
        loaded.diagnostics.iter().find(|d| d.message.contains("both policy.networking.k8s.io/v1alpha1 and v1alpha2"));
    assert_eq!(warning.map(|d| d.severity), Some(Severity::Warning));
    // On one priority scale, ANP 3 beside CNP 3 is a tie.
    let v = verdict(&loaded.cluster, "x/client", "y/server", "80/TCP");
    assert!(v.ingress.tie.is_some(), "{v:?}");
}

/// NPEP-126's CIDR example, written as v1alpha2 with concrete networks (its POD_CIDR,
/// NODE_CIDR and SERVICE_CIDR placeholders as 10.0.0.0/16, 172.18.0.0/16, 10.96.0.0/12),
/// against the four outcomes the NPEP lists.
#[test]
fn npep_126_networks_example() {
    let admin = "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: network-as-egress-peer}\nspec:\n  priority: 70\n  tier: Admin\n  subject: {namespaces: {}}\n  egress:\n  - name: deny-egress-to-external-dns-servers\n    action: Deny\n    to: [{networks: [194.0.2.0/24, 205.0.113.15/32, 199.51.100.10/32]}]\n    protocols: [{udp: {destinationPort: {number: 53}}}]\n  - name: allow-all-egress-to-intranet\n    action: Accept\n    to: [{networks: [192.0.2.0/24, 203.0.113.0/24, 198.51.100.0/24]}]\n  - name: allow-all-intra-cluster-traffic\n    action: Accept\n    to: [{networks: [10.0.0.0/16, 172.18.0.0/16, 10.96.0.0/12]}]\n  - name: pass-all-egress-to-internet\n    action: Pass\n    to: [{networks: [0.0.0.0/0]}]\n";
    let baseline = "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: default}\nspec:\n  priority: 0\n  tier: Baseline\n  subject: {namespaces: {}}\n  egress:\n  - name: deny-all-egress-to-internet\n    action: Deny\n    to: [{networks: [0.0.0.0/0]}]\n";
    let mut c = cluster(&format!("{}{admin}{baseline}", pods()));
    let at = |c: &mut netcanary_policy::Cluster, ip: &str, port: &str| {
        let port: PortProto = port.parse().unwrap();
        let to = netcanary_policy::resolve(c, ip).unwrap();
        let from = c.endpoints().iter().position(|e| e.id == "x/client").unwrap();
        evaluate::verdict(c, &c.endpoints()[from], &c.endpoints()[to], port)
    };
    assert!(!at(&mut c, "194.0.2.10", "53/UDP").allowed, "no pod talks to the intranet DNS servers");
    assert!(at(&mut c, "198.51.100.10", "443/TCP").allowed, "every pod talks to the rest of the intranet");
    assert!(verdict(&c, "x/client", "y/server", "80/TCP").allowed, "pods talk to pods");
    let v = at(&mut c, "1.1.1.1", "443/TCP");
    assert_eq!(
        (v.allowed, v.egress.tier),
        (false, Tier::Baseline),
        "no pod talks to the internet: Pass, then the baseline guardrail"
    );
}
