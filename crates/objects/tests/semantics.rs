//! Edge cases of NetworkPolicy semantics, one upstream rule per test, each checked on both
//! the explained path and the bulk matrix.

mod common;

use common::{allowed, cluster, pod, verdict};
use netcanary_policy::{Endpoint, Note, Tier};

const TWO_PODS: &str = "";

fn two_pods(extra: &str) -> String {
    format!(
        "{}{}{TWO_PODS}{extra}",
        pod("p", "client", "app: client", "10.0.0.1", "- {containerPort: 80}"),
        pod("p", "server", "app: server", "10.0.0.2", "- {containerPort: 80}\n- {containerPort: 53, protocol: UDP}")
    )
}

#[test]
fn no_policy_means_default_allow() {
    let c = cluster(&two_pods(""));
    let v = verdict(&c, "p/client", "p/server", "80/TCP");
    assert!(v.allowed && !v.ingress.isolated && !v.egress.isolated);
    assert_eq!(v.ingress.tier, Tier::Default);
}

#[test]
fn omitted_policy_types_default_to_ingress_only_without_egress_rules() {
    let c = cluster(&two_pods(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: p}\nspec:\n  podSelector: {}\n  egress: []\n",
    ));
    let v = verdict(&c, "p/client", "p/server", "80/TCP");
    assert!(v.ingress.isolated, "Ingress is always implied");
    assert!(!v.egress.isolated, "an empty egress list does not imply Egress");
    assert!(!v.allowed);
}

#[test]
fn omitted_policy_types_include_egress_when_egress_rules_exist() {
    // ingress is absent, so the implied Ingress type denies all ingress.
    let c = cluster(&two_pods(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: p}\nspec:\n  podSelector: {matchLabels: {app: client}}\n  egress: [{}]\n",
    ));
    let v = verdict(&c, "p/client", "p/server", "80/TCP");
    assert!(v.egress.isolated && v.egress.allowed, "egress [{{}}] allows all");
    assert!(allowed(&c, "p/client", "p/server", "80/TCP"));
    let back = verdict(&c, "p/server", "p/client", "80/TCP");
    assert!(back.ingress.isolated && !back.ingress.allowed, "implied Ingress with no rules denies");
}

#[test]
fn empty_rule_allows_all_but_empty_list_denies_all() {
    let policy = |ingress: &str| {
        cluster(&two_pods(&format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: p}}\nspec:\n  podSelector: {{}}\n  policyTypes: [Ingress]\n  ingress: {ingress}\n"
        )))
    };
    assert!(allowed(&policy("[{}]"), "p/client", "p/server", "80/TCP"));
    assert!(!allowed(&policy("[]"), "p/client", "p/server", "80/TCP"));
    assert!(!allowed(&policy("null"), "p/client", "p/server", "80/TCP"));
}

#[test]
fn policies_are_a_union_and_both_directions_must_allow() {
    let c = cluster(&two_pods(
        r#"---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: p}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-in, namespace: p}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]
"#,
    ));
    let v = verdict(&c, "p/client", "p/server", "80/TCP");
    assert!(v.ingress.allowed, "server-in allows the ingress");
    assert_eq!(v.ingress.policies, ["p/deny-all", "p/server-in"]);
    assert_eq!(v.ingress.allowed_by[0].rule.to_string(), "p/server-in ingress[0]");
    assert_eq!(v.ingress.allowed_by[0].says, "from pods app=client in namespace p, on any port");
    assert!(!v.egress.allowed, "the client's egress is still denied");
    assert!(!v.allowed);
    assert_eq!(v.denied_by().unwrap().direction.as_str(), "egress");
}

#[test]
fn protocol_defaults_to_tcp_and_ranges_are_inclusive() {
    let c = cluster(&two_pods(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: p}\nspec:\n  podSelector: {matchLabels: {app: server}}\n  ingress: [{ports: [{port: 80}, {port: 1000, endPort: 1002, protocol: UDP}]}]\n",
    ));
    assert!(allowed(&c, "p/client", "p/server", "80/TCP"));
    assert!(!allowed(&c, "p/client", "p/server", "80/UDP"));
    assert!(!allowed(&c, "p/client", "p/server", "80/SCTP"));
    assert!(allowed(&c, "p/client", "p/server", "1000/UDP"));
    assert!(allowed(&c, "p/client", "p/server", "1002/UDP"));
    assert!(!allowed(&c, "p/client", "p/server", "1003/UDP"));
    assert!(!allowed(&c, "p/client", "p/server", "1001/TCP"));
}

#[test]
fn rule_with_ports_but_no_peers_and_peers_but_no_ports() {
    let c = cluster(&format!(
        "{}{}{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: p}}\nspec:\n  podSelector: {{matchLabels: {{app: server}}}}\n  ingress:\n    - ports: [{{port: 80}}]\n    - from: [{{podSelector: {{matchLabels: {{app: admin}}}}}}]\n",
        pod("p", "client", "app: client", "10.0.0.1", ""),
        pod("p", "admin", "app: admin", "10.0.0.3", ""),
        pod("p", "server", "app: server", "10.0.0.2", "- {containerPort: 80}")
    ));
    assert!(allowed(&c, "p/client", "p/server", "80/TCP"), "ports-only rule: any source");
    assert!(!allowed(&c, "p/client", "p/server", "81/TCP"));
    assert!(allowed(&c, "p/admin", "p/server", "81/TCP"), "peers-only rule: any port");
    assert!(allowed(&c, "p/admin", "p/server", "9/UDP"));
}

#[test]
fn named_ports_resolve_against_the_destination_in_both_directions() {
    let c = cluster(&format!(
        "{}{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: p}}\nspec:\n  podSelector: {{}}\n  policyTypes: [Ingress, Egress]\n  ingress: [{{ports: [{{port: http}}]}}]\n  egress: [{{ports: [{{port: http}}]}}]\n",
        pod("p", "a", "app: a", "10.0.0.1", "- {containerPort: 8080, name: http}"),
        pod(
            "p",
            "b",
            "app: b",
            "10.0.0.2",
            "- {containerPort: 80, name: http}\n- {containerPort: 53, name: dns, protocol: UDP}"
        )
    ));
    assert!(allowed(&c, "p/a", "p/b", "80/TCP"), "http is 80 on the destination");
    assert!(!allowed(&c, "p/a", "p/b", "8080/TCP"), "the source's own http port does not count");
    assert!(allowed(&c, "p/b", "p/a", "8080/TCP"));
    let v = verdict(&c, "p/a", "p/b", "8080/TCP");
    assert!(v.egress.misses[0].reason.contains("8080/TCP is not in [http/TCP]"), "{:?}", v.egress.misses);
}

#[test]
fn named_port_needs_the_same_protocol() {
    let c = cluster(&format!(
        "{}{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: p}}\nspec:\n  podSelector: {{matchLabels: {{app: b}}}}\n  ingress: [{{ports: [{{port: dns, protocol: TCP}}]}}]\n",
        pod("p", "a", "app: a", "10.0.0.1", ""),
        pod("p", "b", "app: b", "10.0.0.2", "- {containerPort: 53, name: dns, protocol: UDP}")
    ));
    let v = verdict(&c, "p/a", "p/b", "53/TCP");
    assert!(!v.allowed);
    assert!(v.ingress.misses[0].reason.contains("declares no such named port"), "{:?}", v.ingress.misses);
}

#[test]
fn not_in_matches_pods_without_the_key() {
    let c = cluster(&format!(
        "{}{}{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: p}}\nspec:\n  podSelector: {{matchLabels: {{app: server}}}}\n  ingress: [{{from: [{{podSelector: {{matchExpressions: [{{key: env, operator: NotIn, values: [dev]}}]}}}}]}}]\n",
        pod("p", "plain", "app: client", "10.0.0.1", ""),
        pod("p", "dev", "app: client, env: dev", "10.0.0.3", ""),
        pod("p", "server", "app: server", "10.0.0.2", "")
    ));
    assert!(allowed(&c, "p/plain", "p/server", "80/TCP"));
    assert!(!allowed(&c, "p/dev", "p/server", "80/TCP"));
}

#[test]
fn namespace_and_pod_selector_in_one_peer_mean_and_in_two_peers_mean_or() {
    let objects = format!(
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: dev, labels: {{team: a}}}}\n{}{}{}",
        pod("dev", "api", "app: api", "10.0.1.1", ""),
        pod("dev", "web", "app: web", "10.0.1.2", ""),
        pod("prod", "db", "app: db", "10.0.2.1", "")
    );
    let policy = |from: &str| {
        cluster(&format!(
            "{objects}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: prod}}\nspec:\n  podSelector: {{}}\n  ingress: [{{from: {from}}}]\n"
        ))
    };
    let and = policy("[{namespaceSelector: {matchLabels: {team: a}}, podSelector: {matchLabels: {app: api}}}]");
    assert!(allowed(&and, "dev/api", "prod/db", "80"));
    assert!(!allowed(&and, "dev/web", "prod/db", "80"));
    let or = policy("[{namespaceSelector: {matchLabels: {team: a}}}, {podSelector: {matchLabels: {app: api}}}]");
    assert!(allowed(&or, "dev/web", "prod/db", "80"), "any pod in team-a namespaces");
    let pods_only = policy("[{podSelector: {matchLabels: {app: api}}}]");
    assert!(!allowed(&pods_only, "dev/api", "prod/db", "80"), "podSelector alone means the policy's namespace");
    let all_ns = policy("[{namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}]");
    assert!(allowed(&all_ns, "dev/api", "prod/db", "80"));
}

#[test]
fn namespaces_always_carry_their_name_label() {
    let c = cluster(&format!(
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: given, labels: {{other: x}}}}\n{}{}{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: prod}}\nspec:\n  podSelector: {{}}\n  ingress: [{{from: [{{namespaceSelector: {{matchExpressions: [{{key: kubernetes.io/metadata.name, operator: In, values: [given, implied]}}]}}}}]}}]\n",
        pod("given", "a", "app: a", "10.0.1.1", ""),
        pod("implied", "b", "app: b", "10.0.1.2", ""),
        pod("prod", "db", "app: db", "10.0.2.1", "")
    ));
    assert!(allowed(&c, "given/a", "prod/db", "80"), "a Namespace object with labels keeps the name label");
    assert!(allowed(&c, "implied/b", "prod/db", "80"), "a namespace with no object has the name label");
}

#[test]
fn ip_blocks_with_except_for_pods_and_external_addresses() {
    let mut c = cluster(&format!(
        "{}{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: p}}\nspec:\n  podSelector: {{matchLabels: {{app: api}}}}\n  policyTypes: [Egress]\n  egress:\n    - to: [{{ipBlock: {{cidr: 0.0.0.0/0, except: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]}}}}]\n      ports: [{{port: 443}}]\n    - to: [{{ipBlock: {{cidr: 10.0.0.0/24, except: [10.0.0.2/32]}}}}]\n",
        pod("p", "api", "app: api", "10.0.0.1", ""),
        pod("p", "db", "app: db", "10.0.0.2", "")
    ));
    for ip in ["1.1.1.1", "10.1.2.3", "10.0.0.9", "2001:db8::1"] {
        c.add_endpoint(Endpoint::external(ip.parse().unwrap()));
    }
    assert!(allowed(&c, "p/api", "1.1.1.1", "443"));
    assert!(!allowed(&c, "p/api", "1.1.1.1", "80"));
    assert!(!allowed(&c, "p/api", "10.1.2.3", "443"), "RFC1918 is excepted");
    assert!(allowed(&c, "p/api", "10.0.0.9", "5432"), "second rule: 10.0.0.0/24 any port");
    assert!(!allowed(&c, "p/api", "p/db", "5432"), "db's IP is excepted");
    assert!(!allowed(&c, "p/api", "2001:db8::1", "443"), "an IPv4 block never matches IPv6");
    let v = verdict(&c, "1.1.1.1", "p/api", "80");
    assert!(v.allowed, "nothing isolates api's ingress");
    assert_eq!(v.egress.notes, [Note::OutsideCluster]);
    assert_eq!(
        v.egress.describe_notes(c.endpoint("1.1.1.1").unwrap(), c.endpoint("p/api").unwrap()),
        ["1.1.1.1 is outside the cluster: pod policy does not govern its egress"]
    );
}

#[test]
fn ipv6_ip_blocks_match_ingress_sources() {
    let mut c = cluster(&format!(
        "{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: p}}\nspec:\n  podSelector: {{}}\n  ingress: [{{from: [{{ipBlock: {{cidr: '2001:db8::/32', except: ['2001:db8:bad::/48']}}}}]}}]\n",
        pod("p", "web", "app: web", "fd00::2", ""),
    ));
    c.add_endpoint(Endpoint::external("2001:db8:1::5".parse().unwrap()));
    c.add_endpoint(Endpoint::external("2001:db8:bad::5".parse().unwrap()));
    assert!(allowed(&c, "2001:db8:1::5", "p/web", "443"));
    assert!(!allowed(&c, "2001:db8:bad::5", "p/web", "443"));
}

#[test]
fn dual_stack_sources_use_the_destination_family() {
    let c = cluster(&format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: client, namespace: p, labels: {{app: client}}}}\nspec: {{containers: [{{name: c, image: x}}]}}\nstatus:\n  podIP: 10.0.0.1\n  podIPs: [{{ip: 10.0.0.1}}, {{ip: 'fd00::1'}}]\n{}{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: p}}\nspec:\n  podSelector: {{}}\n  ingress: [{{from: [{{ipBlock: {{cidr: 'fd00::/64'}}}}]}}]\n",
        pod("p", "v6", "app: v6", "fd00::2", ""),
        pod("p", "v4", "app: v4", "10.0.0.2", "")
    ));
    assert!(allowed(&c, "p/client", "p/v6", "80"), "an IPv6 connection comes from the client's IPv6 address");
    assert!(!allowed(&c, "p/client", "p/v4", "80"), "an IPv4 connection comes from 10.0.0.1");
}

#[test]
fn self_pairs_get_the_policy_answer_flagged() {
    let c = cluster(&two_pods(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: p}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n",
    ));
    let v = verdict(&c, "p/server", "p/server", "80/TCP");
    assert!(v.self_pair && v.implementation_defined() && !v.allowed);
    let other = verdict(&c, "p/client", "p/server", "80/TCP");
    assert!(!other.self_pair && !other.implementation_defined());
}

#[test]
fn host_network_pods_are_not_governed() {
    let c = cluster(&format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: node-agent, namespace: p, labels: {{app: agent}}}}\nspec: {{hostNetwork: true, containers: [{{name: c, image: x}}]}}\nstatus: {{podIP: 192.168.1.10}}\n{}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: p}}\nspec:\n  podSelector: {{}}\n  policyTypes: [Ingress, Egress]\n  ingress: [{{from: [{{podSelector: {{}}}}]}}]\n",
        pod("p", "web", "app: web", "10.0.0.2", "")
    ));
    let (web, agent) = (c.endpoint("p/web").unwrap(), c.endpoint("p/node-agent").unwrap());
    let inbound = verdict(&c, "p/web", "p/node-agent", "80");
    assert!(inbound.ingress.allowed && !inbound.ingress.isolated);
    assert_eq!(inbound.ingress.notes, [Note::HostNetwork]);
    assert_eq!(
        inbound.ingress.describe_notes(web, agent),
        ["p/node-agent uses the host network: pod policy does not govern its ingress"]
    );
    let outbound = verdict(&c, "p/node-agent", "p/web", "80");
    assert!(outbound.egress.allowed);
    assert_eq!(
        outbound.egress.describe_notes(agent, web),
        ["p/node-agent uses the host network: pod policy does not govern its egress"]
    );
    assert!(!outbound.ingress.allowed, "a podSelector peer does not match a host-network pod");
    assert!(inbound.implementation_defined() && outbound.implementation_defined(), "the spec leaves it undefined");
    assert!(inbound.host_network && !inbound.self_pair);
}

#[test]
fn workloads_have_no_ip_so_ip_blocks_never_match_them() {
    let c = cluster(
        r#"---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: prod}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: x, ports: [{containerPort: 8080, name: http}]}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: prod}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: report}}
        spec: {restartPolicy: Never, containers: [{name: r, image: x}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}]}]
"#,
    );
    let v = verdict(&c, "prod/cronjob/report", "prod/deployment/api", "8080");
    assert!(!v.allowed);
    assert_eq!(v.ingress.notes, [Note::FarEndHasNoIp]);
    assert_eq!(
        v.ingress
            .describe_notes(c.endpoint("prod/cronjob/report").unwrap(), c.endpoint("prod/deployment/api").unwrap()),
        ["prod/cronjob/report is a workload template with no IP yet, so no ipBlock can match it"]
    );
}

#[test]
fn ignored_ingress_rules_when_policy_types_exclude_them() {
    let loaded = common::load(&two_pods(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: p}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  ingress: [{}]\n  egress: [{}]\n",
    ));
    assert!(
        loaded.diagnostics.iter().any(|d| d.field.as_deref() == Some("spec.ingress") && d.message.contains("ignored"))
    );
    let v = verdict(&loaded.cluster, "p/client", "p/server", "80");
    assert!(!v.ingress.isolated);
}

#[test]
fn sctp_is_its_own_protocol() {
    let c = cluster(&two_pods(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: p}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: 80, protocol: SCTP}]}]\n",
    ));
    assert!(allowed(&c, "p/client", "p/server", "80/SCTP"));
    assert!(!allowed(&c, "p/client", "p/server", "80/TCP"));
}
