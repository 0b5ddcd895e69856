//! Each rule on a manifest that fires it and one that does not, read the way `lint` reads
//! them: the manifest loader for the model, the metadata pass for files and annotations.

use netcanary_lint::{Finding, Level, Options, Sources, lint};
use netcanary_objects::Loader;

fn run(name: &str, yaml: &str, options: &Options) -> Vec<Finding> {
    let mut loader = Loader::new("default");
    loader.load_str("case.yaml", yaml);
    let loaded = loader.finish();
    assert!(!loaded.has_errors(), "{name}: fixture has errors: {:?}\n{yaml}", loaded.diagnostics);
    let mut sources = Sources::new("default");
    sources.read_str("case.yaml", yaml);
    lint(&loaded.cluster, &sources, options)
}

fn pod(namespace: &str, name: &str, labels: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{{labels}}}}}\n\
         spec:\n  containers: [{{name: c, image: i{extra}}}]\n"
    )
}

fn host_pod(namespace: &str, name: &str, labels: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{{labels}}}}}\n\
         spec:\n  hostNetwork: true\n  containers: [{{name: c, image: i}}]\n"
    )
}

fn deny_all(namespace: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny-all, namespace: {namespace}}}\n\
         spec: {{podSelector: {{}}, policyTypes: [Ingress, Egress]}}\n"
    )
}

fn policy(namespace: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n"
    )
}

fn namespace(name: &str, labels: &str) -> String {
    format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n")
}

fn dns() -> String {
    pod("kube-system", "coredns", "k8s-app: kube-dns", "")
}

fn allow_dns(namespace: &str, ports: &str) -> String {
    policy(
        namespace,
        "allow-dns",
        &format!(
            "{{podSelector: {{}}, policyTypes: [Egress], egress: [{{to: [{{namespaceSelector: {{}}, podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}}}], ports: [{ports}]}}]}}"
        ),
    )
}

struct Case {
    name: &'static str,
    yaml: String,
    options: Options,
    rule: &'static str,
    /// (level, field) of each finding of `rule` expected, in order.
    expect: Vec<(Level, Option<&'static str>)>,
}

fn case(name: &'static str, rule: &'static str, yaml: String, expect: Vec<(Level, Option<&'static str>)>) -> Case {
    Case { name, yaml, options: Options::default(), rule, expect }
}

fn cases() -> Vec<Case> {
    let both_dns_ports = "{protocol: UDP, port: 53}, {protocol: TCP, port: 53}";
    let metrics = ", ports: [{name: metrics, containerPort: 9090}]";
    vec![
        case(
            "NC001 fires: a pod no policy isolates",
            "NC001",
            pod("a", "web", "app: web", ""),
            vec![(Level::Warning, None)],
        ),
        case("NC001 quiet: default deny", "NC001", pod("a", "web", "app: web", "") + &deny_all("a"), vec![]),
        case("NC001 quiet: no pods at all", "NC001", policy("a", "p", "{podSelector: {}}"), vec![]),
        case("NC001 quiet: host-network pods are not governed", "NC001", host_pod("a", "agent", "app: agent"), vec![]),
        case(
            "NC002 fires: egress open",
            "NC002",
            pod("a", "web", "app: web", "") + &policy("a", "in", "{podSelector: {}}"),
            vec![(Level::Info, None)],
        ),
        case("NC002 quiet: default deny", "NC002", pod("a", "web", "app: web", "") + &deny_all("a"), vec![]),
        case(
            "NC003 fires: deny-all without DNS, UDP error and TCP warning",
            "NC003",
            dns() + &pod("a", "web", "app: web", "") + &deny_all("a"),
            vec![(Level::Error, None), (Level::Warning, None)],
        ),
        case(
            "NC003 fires: only UDP allowed",
            "NC003",
            dns() + &pod("a", "web", "app: web", "") + &deny_all("a") + &allow_dns("a", "{protocol: UDP, port: 53}"),
            vec![(Level::Warning, None)],
        ),
        case(
            "NC003 quiet: DNS allowed both ways",
            "NC003",
            dns() + &pod("a", "web", "app: web", "") + &deny_all("a") + &allow_dns("a", both_dns_ports),
            vec![],
        ),
        case(
            "NC003 fires: DNS pods isolated for ingress",
            "NC003",
            dns()
                + &pod("a", "web", "app: web", "")
                + &deny_all("a")
                + &allow_dns("a", both_dns_ports)
                + &deny_all("kube-system"),
            vec![(Level::Error, None), (Level::Warning, None)],
        ),
        case(
            "NC004 fires: selector matches no pod",
            "NC004",
            pod("a", "web", "app: web", "") + &policy("a", "p", "{podSelector: {matchLabels: {app: wbe}}}"),
            vec![(Level::Warning, Some("spec.podSelector"))],
        ),
        case(
            "NC004 quiet: selector matches",
            "NC004",
            pod("a", "web", "app: web", "") + &policy("a", "p", "{podSelector: {matchLabels: {app: web}}}"),
            vec![],
        ),
        case(
            "NC004 quiet: no pods in the input",
            "NC004",
            policy("a", "p", "{podSelector: {matchLabels: {app: x}}}"),
            vec![],
        ),
        case(
            "NC005 fires: namespaceSelector matches no namespace",
            "NC005",
            namespace("a", "")
                + &policy(
                    "a",
                    "p",
                    "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {name: monitoring}}}]}]}",
                ),
            vec![(Level::Warning, Some("spec.ingress[0].from[0].namespaceSelector"))],
        ),
        case(
            "NC005 fires: podSelector matches no pod",
            "NC005",
            pod("a", "web", "app: web", "")
                + &policy(
                    "a",
                    "p",
                    "{podSelector: {}, ingress: [{from: [{podSelector: {matchLabels: {app: nope}}}]}]}",
                ),
            vec![(Level::Warning, Some("spec.ingress[0].from[0].podSelector"))],
        ),
        case(
            "NC005 quiet: peers match",
            "NC005",
            namespace("a", "team: a")
                + &pod("a", "web", "app: web", "")
                + &policy(
                    "a",
                    "p",
                    "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: a}}, podSelector: {matchLabels: {app: web}}}]}]}",
                ),
            vec![],
        ),
        case(
            "NC005 quiet: no namespaces or pods in the input",
            "NC005",
            policy(
                "a",
                "p",
                "{podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {name: x}}, podSelector: {matchLabels: {app: y}}}]}]}",
            ),
            vec![],
        ),
        case(
            "NC006 fires: namespaceSelector {} alone",
            "NC006",
            pod("a", "web", "app: web", "")
                + &policy("a", "p", "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}}]}]}"),
            vec![(Level::Warning, Some("spec.ingress[0].from[0]"))],
        ),
        case(
            "NC006 fires: a rule without from",
            "NC006",
            pod("a", "web", "app: web", "") + &policy("a", "p", "{podSelector: {}, ingress: [{ports: [{port: 80}]}]}"),
            vec![(Level::Warning, Some("spec.ingress[0]"))],
        ),
        case(
            "NC006 quiet: namespaceSelector {} with a podSelector",
            "NC006",
            pod("a", "web", "app: web", "")
                + &policy(
                    "a",
                    "p",
                    "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: prometheus}}}]}]}",
                ),
            vec![],
        ),
        case(
            "NC007 fires: metrics port isolated from Prometheus",
            "NC007",
            pod("monitoring", "prometheus-0", "app.kubernetes.io/name: prometheus", "")
                + &pod("a", "web", "app: web", metrics)
                + &deny_all("a"),
            vec![(Level::Warning, Some("spec.containers[].ports[name=metrics]"))],
        ),
        case(
            "NC007 quiet: scrape allowed",
            "NC007",
            pod("monitoring", "prometheus-0", "app: prometheus", "")
                + &pod("a", "web", "app: web", metrics)
                + &deny_all("a")
                + &policy(
                    "a",
                    "scrape",
                    "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: prometheus}}}], ports: [{port: metrics}]}]}",
                ),
            vec![],
        ),
        case(
            "NC007 quiet: not isolated",
            "NC007",
            pod("monitoring", "prometheus-0", "app: prometheus", "") + &pod("a", "web", "app: web", metrics),
            vec![],
        ),
        case(
            "NC008 fires: named port the destination does not declare",
            "NC008",
            pod("a", "db", "app: db", ", ports: [{name: postgres, containerPort: 5432}]")
                + &policy(
                    "a",
                    "p",
                    "{podSelector: {matchLabels: {app: db}}, ingress: [{ports: [{port: postgresql}]}]}",
                ),
            vec![(Level::Warning, Some("spec.ingress[0].ports[0].port"))],
        ),
        case(
            "NC008 fires: egress to a named port the peers do not declare",
            "NC008",
            pod("a", "db", "app: db", ", ports: [{name: postgres, containerPort: 5432}]")
                + &pod("a", "api", "app: api", ", ports: [{name: http, containerPort: 8080}]")
                + &policy(
                    "a",
                    "p",
                    "{podSelector: {matchLabels: {app: db}}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: api}}}], ports: [{port: postgres}]}]}",
                ),
            vec![(Level::Warning, Some("spec.egress[0].ports[0].port"))],
        ),
        case(
            "NC008 quiet: the name is declared",
            "NC008",
            pod("a", "db", "app: db", ", ports: [{name: postgres, containerPort: 5432}]")
                + &policy("a", "p", "{podSelector: {matchLabels: {app: db}}, ingress: [{ports: [{port: postgres}]}]}"),
            vec![],
        ),
        case(
            "NC009 fires: ipBlock holds a pod IP",
            "NC009",
            pod("a", "web", "app: web", "")
                + "status: {podIP: 10.244.1.5}\n"
                + &policy("a", "p", "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}"),
            vec![(Level::Info, Some("spec.ingress[0].from[0].ipBlock"))],
        ),
        case(
            "NC009 quiet: except leaves the pod network out",
            "NC009",
            pod("a", "web", "app: web", "")
                + "status: {podIP: 10.244.1.5}\n"
                + &policy(
                    "a",
                    "p",
                    "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.244.0.0/16]}}]}]}",
                ),
            vec![],
        ),
        case(
            "NC012 fires: policy selects a host-network pod",
            "NC012",
            host_pod("a", "agent", "app: agent") + &policy("a", "p", "{podSelector: {matchLabels: {app: agent}}}"),
            vec![(Level::Warning, Some("spec.podSelector"))],
        ),
        case(
            "NC012 quiet: pod-network pods only",
            "NC012",
            pod("a", "web", "app: web", "") + &policy("a", "p", "{podSelector: {}}"),
            vec![],
        ),
        case(
            "NC010 fires: HTTP and TCP probes into a default-deny pod, one finding per port",
            "NC010",
            pod(
                "a",
                "web",
                "app: web",
                &probes("readinessProbe: {httpGet: {port: 8080}}, livenessProbe: {tcpSocket: {port: 9000}}"),
            ) + &deny_all("a"),
            vec![
                (Level::Info, Some("spec.containers[0].livenessProbe")),
                (Level::Info, Some("spec.containers[0].readinessProbe")),
            ],
        ),
        case(
            "NC010 fires: a workload's template, liveness and readiness on one port",
            "NC010",
            deployment(
                "a",
                "web",
                &probes("livenessProbe: {httpGet: {port: 8080}}, readinessProbe: {httpGet: {port: 8080}}"),
            ) + &deny_all("a"),
            vec![(Level::Info, Some("spec.template.spec.containers[0].livenessProbe"))],
        ),
        case(
            "NC010 fires: an ipBlock that does not hold the node",
            "NC010",
            pod("a", "web", "app: web", &probes("readinessProbe: {tcpSocket: {port: 8080}}"))
                + &node("192.168.1.10")
                + &policy("a", "p", "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}"),
            vec![(Level::Info, Some("spec.containers[0].readinessProbe"))],
        ),
        case(
            "NC010 quiet: the ipBlock holds the node's address",
            "NC010",
            pod("a", "web", "app: web", &probes("readinessProbe: {tcpSocket: {port: 8080}}"))
                + &node("192.168.1.10")
                + &policy(
                    "a",
                    "p",
                    "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 192.168.1.0/24}}], ports: [{port: 8080}]}]}",
                ),
            vec![],
        ),
        case(
            "NC010 quiet: a named probe port a rule without from admits by name",
            "NC010",
            pod(
                "a",
                "web",
                "app: web",
                ", ports: [{name: http, containerPort: 8080}], readinessProbe: {httpGet: {port: http}}",
            ) + &policy("a", "p", "{podSelector: {}, ingress: [{ports: [{port: http}]}]}"),
            vec![],
        ),
        case(
            "NC010 quiet: exec probes do not use the network",
            "NC010",
            pod("a", "web", "app: web", &probes("livenessProbe: {exec: {command: [\"true\"]}}")) + &deny_all("a"),
            vec![],
        ),
        case(
            "NC010 quiet: not isolated for ingress",
            "NC010",
            pod("a", "web", "app: web", &probes("readinessProbe: {httpGet: {port: 8080}}")),
            vec![],
        ),
        case(
            "NC011 fires: Istio namespace with default deny, both directions",
            "NC011",
            namespace("a", "istio-injection: enabled") + &pod("a", "web", "app: web", "") + &deny_all("a"),
            vec![(Level::Info, None), (Level::Info, None)],
        ),
        case(
            "NC011 fires: Linkerd namespace annotation, egress isolated with DNS only",
            "NC011",
            linkerd_namespace("a") + &pod("a", "web", "app: web", "") + &allow_dns("a", "{protocol: UDP, port: 53}"),
            vec![(Level::Info, None)],
        ),
        case(
            "NC011 quiet: Istio's inbound ports admitted, egress open",
            "NC011",
            namespace("a", "istio-injection: enabled")
                + &pod("a", "web", "app: web", "")
                + &policy(
                    "a",
                    "p",
                    "{podSelector: {}, ingress: [{ports: [{port: 15020}, {port: 15021}, {port: 15090}]}]}",
                ),
            vec![],
        ),
        case(
            "NC011 quiet: the pod opts out of Istio",
            "NC011",
            namespace("a", "istio-injection: enabled")
                + &pod("a", "web", "app: web, sidecar.istio.io/inject: \"false\"", "")
                + &deny_all("a"),
            vec![],
        ),
        case(
            "NC011 quiet: the namespace disables Istio whatever the pod's revision",
            "NC011",
            namespace("a", "istio-injection: disabled")
                + &pod("a", "web", "app: web, istio.io/rev: canary", "")
                + &deny_all("a"),
            vec![],
        ),
        case(
            "NC011 fires: the pod's revision label",
            "NC011",
            namespace("a", "") + &pod("a", "web", "app: web, istio.io/rev: canary", "") + &deny_all("a"),
            vec![(Level::Info, None), (Level::Info, None)],
        ),
        case(
            "NC011 quiet: no mesh",
            "NC011",
            namespace("a", "") + &pod("a", "web", "app: web", "") + &deny_all("a"),
            vec![],
        ),
    ]
}

/// `, readinessProbe: ...` for a container of [`pod`].
fn probes(probes: &str) -> String {
    format!(", {probes}")
}

fn deployment(namespace: &str, name: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n\
         \x20   spec:\n      containers: [{{name: c, image: i{extra}}}]\n"
    )
}

fn node(address: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-1}}\nstatus: {{addresses: [{{type: InternalIP, address: \"{address}\"}}]}}\n"
    )
}

fn linkerd_namespace(name: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, annotations: {{linkerd.io/inject: enabled}}}}\n"
    )
}

#[test]
fn mesh_and_probe_findings_name_what_to_allow() {
    let yaml = namespace("a", "istio-injection: enabled")
        + &pod("a", "web", "app: web", &probes("readinessProbe: {httpGet: {port: 8080}}"))
        + &deny_all("a");
    let findings = run("messages", &yaml, &Options::default());
    let messages: Vec<(&str, &str)> =
        findings.iter().filter(|f| f.rule >= "NC010").map(|f| (f.rule, f.message.as_str())).collect();
    assert_eq!(
        messages,
        [
            (
                "NC010",
                "readinessProbe httpGet on 8080/TCP of a/web: the kubelet probes from the node, and ingress is isolated by \
                 a/deny-all with no rule admitting the node; most CNIs let node traffic through anyway, not all do"
            ),
            (
                "NC011",
                "Istio injects its proxy into a/web (namespace a labelled istio-injection: enabled), and no egress rule of \
                 a/deny-all admits 15012/TCP (istiod: configuration and certificates)"
            ),
            (
                "NC011",
                "Istio injects its proxy into a/web (namespace a labelled istio-injection: enabled), and no ingress rule of \
                 a/deny-all admits 15020/TCP (merged metrics and the application's probes, rewritten to the sidecar), \
                 15021/TCP (the sidecar's readiness probe), 15090/TCP (Envoy's Prometheus stats)"
            ),
        ]
    );
    let fixes: Vec<&str> = findings.iter().filter(|f| f.rule >= "NC010").map(|f| f.fix.as_str()).collect();
    assert!(fixes[0].contains("ipBlock: {cidr: <node CIDR>}") && fixes[0].contains("port: 8080"), "{}", fixes[0]);
    assert_eq!(fixes[1], "allow egress to the Istio control plane on 15012/TCP");
    assert_eq!(
        fixes[2],
        "allow ingress on 15020/TCP, 15021/TCP, 15090/TCP (from the nodes, Prometheus and meshed clients)"
    );
}

#[test]
fn each_rule_fires_and_stays_quiet() {
    for c in cases() {
        let findings = run(c.name, &c.yaml, &c.options);
        let got: Vec<(Level, Option<&str>)> =
            findings.iter().filter(|f| f.rule == c.rule).map(|f| (f.severity, f.field.as_deref())).collect();
        assert_eq!(got, c.expect, "{}: {:#?}", c.name, findings);
    }
}

#[test]
fn rules_are_switched_off_by_option_object_and_namespace() {
    let yaml = namespace("a", "")
        + &pod("a", "web", "app: web", "")
        + &policy("a", "p", "{podSelector: {matchLabels: {app: x}}}");
    let rules = |findings: Vec<Finding>| findings.iter().map(|f| f.rule).collect::<Vec<_>>();
    assert_eq!(rules(run("all on", &yaml, &Options::default())), ["NC001", "NC002", "NC004"]);

    let options = Options { disabled: ["NC002".to_string()].into(), ..Options::default() };
    assert_eq!(rules(run("--disable", &yaml, &options)), ["NC001", "NC004"]);

    let on_policy = yaml.replace(
        "name: p, namespace: a",
        "name: p, namespace: a, annotations: {netcanary.io/lint-disable: \"nc004, NC001\"}",
    );
    assert_eq!(
        rules(run("object annotation", &on_policy, &Options::default())),
        ["NC001", "NC002"],
        "NC001 is not the policy's"
    );

    let on_namespace = yaml.replace(
        "name: a, labels: {}",
        "name: a, labels: {}, annotations: {netcanary.io/lint-disable: \"NC001,NC004\"}",
    );
    assert_eq!(rules(run("namespace annotation", &on_namespace, &Options::default())), ["NC002"]);
}

#[test]
fn dns_and_prometheus_can_be_named() {
    let yaml = pod("infra", "resolver", "app: dns", "")
        + &pod("a", "web", "app: web", ", ports: [{name: http-metrics, containerPort: 8080}]")
        + &deny_all("a");
    let options = Options { dns: vec!["infra/resolver".into()], ..Options::default() };
    let dns: Vec<_> = run("--dns", &yaml, &options).into_iter().filter(|f| f.rule == "NC003").collect();
    assert_eq!(dns.len(), 2, "{dns:#?}");
    assert!(dns[0].message.contains("infra/resolver"), "{}", dns[0].message);
    assert!(
        run("no DNS pods", &yaml, &Options::default()).iter().all(|f| f.rule != "NC003"),
        "no DNS pods known: no check"
    );

    let options = Options { monitoring_namespace: Some("monitoring".into()), ..Options::default() };
    let scrape: Vec<_> =
        run("--monitoring-namespace", &yaml, &options).into_iter().filter(|f| f.rule == "NC007").collect();
    assert_eq!(scrape.len(), 1, "{scrape:#?}");
    assert!(scrape[0].message.contains("monitoring/prometheus"), "{}", scrape[0].message);
}

/// A pod of a ReplicaSet `owner` (the Deployment's name with the template hash).
fn replica(namespace: &str, name: &str, labels: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{pod-template-hash: 5d8f, {labels}}}\n\
         \x20 ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f, uid: u1, controller: true}}]\n\
         spec:\n  containers: [{{name: c, image: i}}]\n"
    )
}

/// A live cluster lists every replica: their findings are one finding per problem, naming
/// the first pod and listing the others; a replica that differs keeps its own.
#[test]
fn replicas_with_the_same_problem_are_one_finding() {
    let yaml = dns()
        + &deny_all("a")
        + &replica("a", "web-5d8f-a", "app: web")
        + &replica("a", "web-5d8f-b", "app: web")
        + &replica("a", "web-5d8f-c", "app: web")
        + &replica("a", "web-5d8f-d", "app: web, dns: allowed")
        + &pod("a", "solo", "app: web", "")
        + &policy(
            "a",
            "dns-for-some",
            "{podSelector: {matchLabels: {dns: allowed}}, policyTypes: [Egress], egress: [{ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}]}",
        );
    let findings = run("replicas", &yaml, &Options::default());
    let dns: Vec<(&str, &str)> =
        findings.iter().filter(|f| f.rule == "NC003").map(|f| (f.name.as_str(), f.message.as_str())).collect();
    assert_eq!(
        dns,
        [
            (
                "solo",
                "a/solo cannot reach cluster DNS (kube-system/coredns) on 53/UDP: egress denied, isolated by a/deny-all"
            ),
            (
                "solo",
                "a/solo cannot reach cluster DNS (kube-system/coredns) on 53/TCP: egress denied, isolated by a/deny-all"
            ),
            (
                "web-5d8f-a",
                "a/web-5d8f-a cannot reach cluster DNS (kube-system/coredns) on 53/UDP: egress denied, isolated by \
                 a/deny-all (as do 2 more pods of web: a/web-5d8f-b, a/web-5d8f-c)"
            ),
            (
                "web-5d8f-a",
                "a/web-5d8f-a cannot reach cluster DNS (kube-system/coredns) on 53/TCP: egress denied, isolated by \
                 a/deny-all (as do 2 more pods of web: a/web-5d8f-b, a/web-5d8f-c)"
            ),
        ]
    );
}
