//! Loading manifests: every kind of bad input gives a located diagnostic, never a panic.

mod common;

use common::load;
use netcanary_objects::{Diagnostic, Severity};

fn find<'a>(diagnostics: &'a [Diagnostic], needle: &str) -> &'a Diagnostic {
    diagnostics
        .iter()
        .find(|d| d.to_string().contains(needle))
        .unwrap_or_else(|| panic!("no diagnostic containing {needle:?} in {diagnostics:#?}"))
}

const POLICY_HEAD: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad, namespace: prod}\nspec:\n  podSelector: {}\n";

fn policy_error(spec_tail: &str, needle: &str) -> Diagnostic {
    let loaded = load(&format!("{POLICY_HEAD}{spec_tail}"));
    assert!(loaded.cluster.policies().is_empty(), "an invalid policy is not used");
    let d = find(&loaded.diagnostics, needle).clone();
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.object.as_deref(), Some("NetworkPolicy prod/bad"));
    d
}

#[test]
fn malformed_yaml_names_file_and_document() {
    let loaded = load("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [unclosed\n");
    let d = find(&loaded.diagnostics, "invalid YAML");
    assert_eq!(d.file, "test.yaml");
    assert_eq!(d.object.as_deref(), Some("document 2"));
    assert!(loaded.cluster.namespace_labels("a").is_some(), "documents before the error are kept");
}

#[test]
fn documents_without_kind_are_errors() {
    let loaded = load("foo: bar\n");
    assert!(find(&loaded.diagnostics, "has no `kind`").severity == Severity::Error);
}

#[test]
fn unknown_kinds_are_skipped_with_a_note() {
    let loaded = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: prod}\n");
    let d = find(&loaded.diagnostics, "ConfigMap prod/c");
    assert_eq!(d.severity, Severity::Note);
    assert!(!loaded.has_errors());
}

#[test]
fn cluster_network_policies_are_read() {
    let loaded =
        load("apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: admin}\n");
    assert_eq!(printed(&loaded), ["error: test.yaml: ClusterNetworkPolicy admin: spec: is required"]);
    let loaded = load(
        "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: admin}\n\
         spec: {tier: Admin, priority: 3, subject: {namespaces: {}}}\n",
    );
    assert_eq!(printed(&loaded), Vec::<String>::new());
    assert_eq!(loaded.cluster.cluster_policies().len(), 1);
}

#[test]
fn invalid_cidrs() {
    let d = policy_error("  ingress: [{from: [{ipBlock: {cidr: 10.0.0.300/8}}]}]\n", "not a valid CIDR");
    assert_eq!(d.field.as_deref(), Some("spec.ingress[0].from[0].ipBlock.cidr"));
    let d = policy_error("  ingress: [{from: [{ipBlock: {cidr: 10.0.0.1}}]}]\n", "add a prefix length");
    assert!(d.message.contains("/32"));
    let d =
        policy_error("  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}}]}]\n", "strict subset");
    assert_eq!(d.field.as_deref(), Some("spec.ingress[0].from[0].ipBlock.except[0]"));
    policy_error("  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.0/16]}}]}]\n", "strict subset");
}

#[test]
fn host_bits_are_masked_with_a_warning() {
    let loaded = load(&format!("{POLICY_HEAD}  ingress: [{{from: [{{ipBlock: {{cidr: 10.0.0.5/8}}}}]}}]\n"));
    let d = find(&loaded.diagnostics, "host bits");
    assert_eq!(d.severity, Severity::Warning);
    assert!(d.message.contains("10.0.0.0/8"));
    assert_eq!(loaded.cluster.policies().len(), 1);
}

#[test]
fn unknown_operators_protocols_and_bad_ports() {
    let d = policy_error(
        "  ingress: [{from: [{podSelector: {matchExpressions: [{key: app, operator: Contains, values: [a]}]}}]}]\n",
        "unknown operator",
    );
    assert_eq!(d.field.as_deref(), Some("spec.ingress[0].from[0].podSelector.matchExpressions[0].operator"));
    policy_error(
        "  ingress: [{from: [{podSelector: {matchExpressions: [{key: app, operator: In}]}}]}]\n",
        "must be non-empty",
    );
    policy_error(
        "  ingress: [{from: [{podSelector: {matchExpressions: [{key: app, operator: Exists, values: [a]}]}}]}]\n",
        "must be empty",
    );
    let d = policy_error("  ingress: [{ports: [{port: 80, protocol: ICMP}]}]\n", "unsupported protocol");
    assert_eq!(d.field.as_deref(), Some("spec.ingress[0].ports[0].protocol"));
    let d = policy_error("  egress: [{ports: [{port: 70000}]}]\n", "from 1 to 65535");
    assert_eq!(d.field.as_deref(), Some("spec.egress[0].ports[0].port"));
    policy_error("  ingress: [{ports: [{port: 0}]}]\n", "from 1 to 65535");
    policy_error("  ingress: [{ports: [{port: 90, endPort: 80}]}]\n", "greater than or equal");
    policy_error("  ingress: [{ports: [{port: http, endPort: 80}]}]\n", "named port");
    policy_error("  ingress: [{ports: [{endPort: 80}]}]\n", "port is not specified");
    policy_error("  ingress: [{ports: [{port: Not_A_Name}]}]\n", "named port");
    policy_error("  policyTypes: [Ingres]\n", "unsupported value");
    policy_error("  ingress: [{from: [{}]}]\n", "must specify podSelector");
    policy_error("  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]\n", "may not specify both");
}

#[test]
fn type_errors_name_the_field_path() {
    let d = policy_error("  ingress: [{ports: [{port: [80]}]}]\n", "spec.ingress[0].ports[0].port");
    assert!(d.message.contains("invalid type"), "{d}");
}

#[test]
fn duplicate_objects_warn_and_the_later_wins() {
    let loaded = load(&format!("{POLICY_HEAD}  policyTypes: [Ingress]\n---\n{POLICY_HEAD}  policyTypes: [Egress]\n"));
    assert_eq!(find(&loaded.diagnostics, "duplicate of NetworkPolicy prod/bad").severity, Severity::Warning);
    assert_eq!(loaded.cluster.policies().len(), 1);
    assert!(loaded.cluster.policies()[0].egress.is_some());
}

#[test]
fn named_ports_no_container_declares_are_warned_about() {
    let loaded = load(&format!(
        "{POLICY_HEAD}  ingress: [{{ports: [{{port: metrics}}]}}]\n{}",
        common::pod("prod", "a", "app: a", "10.0.0.1", "- {containerPort: 9090, name: metrics, protocol: UDP}")
    ));
    let d = find(&loaded.diagnostics, "port named \"metrics\"");
    assert_eq!(d.field.as_deref(), Some("spec.ingress[0].ports[0].port"));
    assert_eq!(d.severity, Severity::Warning);
}

#[test]
fn lists_and_finished_pods() {
    let loaded = load(
        r#"apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: done, namespace: a}
    spec: {containers: [{name: c, image: x}]}
    status: {phase: Succeeded, podIP: 10.0.0.9}
  - apiVersion: v1
    kind: Pod
    metadata: {name: live, namespace: a}
    spec: {containers: [{name: c, image: x}]}
    status: {phase: Running, podIP: 10.0.0.1}
  - apiVersion: v1
    kind: Pod
    metadata: {name: badip, namespace: a}
    spec: {containers: [{name: c, image: x}]}
    status: {podIP: 10.0.0}
"#,
    );
    assert_eq!(loaded.cluster.endpoints().len(), 1);
    assert_eq!(find(&loaded.diagnostics, "Pod a/done").severity, Severity::Note);
    assert_eq!(find(&loaded.diagnostics, "Pod a/badip").field.as_deref(), Some("status.podIP"));
}

#[test]
fn json_files_and_folders_load() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_path_buf();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("ns.json"), r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"j"}}"#).unwrap();
    std::fs::write(dir.join("sub/pod.yml"), common::pod("j", "p", "a: b", "10.0.0.1", "")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not read").unwrap();
    std::fs::write(dir.join("broken.json"), "{").unwrap();
    let loaded = netcanary_objects::load_paths(&[dir.clone(), dir.join("missing.yaml")], "default");
    assert!(loaded.cluster.endpoint("j/p").is_some());
    assert!(find(&loaded.diagnostics, "broken.json").message.contains("invalid JSON"));
    assert!(find(&loaded.diagnostics, "missing.yaml").message.contains("cannot read"));
    assert_eq!(loaded.diagnostics.len(), 2, "{:#?}", loaded.diagnostics);
}

#[test]
fn unquoted_numbers_where_strings_belong_get_a_hint() {
    let loaded = load(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a, labels: {version: 1.10}}\nspec: {containers: []}\n",
    );
    let d = find(&loaded.diagnostics, "metadata.labels.version");
    assert!(d.message.contains("quote the value"), "{d}");
}

#[test]
fn pods_know_their_workload() {
    let loaded = load(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: api-7d9f8b6c5-x2x9z
  namespace: prod
  labels: {app: api, pod-template-hash: 7d9f8b6c5}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: api-7d9f8b6c5, uid: u, controller: true}]
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  namespace: prod
  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: db, uid: u, controller: true}]
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: prod}
spec: {containers: [{name: c, image: x}]}
"#,
    );
    let name = |id: &str| loaded.cluster.endpoint(id).unwrap().workload_name().to_string();
    assert_eq!(name("prod/api-7d9f8b6c5-x2x9z"), "api");
    assert_eq!(name("prod/db-0"), "db");
    assert_eq!(name("prod/debug"), "debug");
}

/// Every diagnostic, as `analyze` prints it.
fn printed(loaded: &netcanary_objects::Loaded) -> Vec<String> {
    loaded.diagnostics.iter().map(ToString::to_string).collect()
}

fn load_file(name: &str, text: &str) -> netcanary_objects::Loaded {
    let mut loader = netcanary_objects::Loader::new("default");
    loader.load_str(name, text);
    loader.finish()
}

/// What `GET /api/v1/namespaces/prod/pods` returns: the items carry neither kind nor
/// apiVersion.
const POD_LIST_JSON: &str = r#"{
  "kind": "PodList",
  "apiVersion": "v1",
  "metadata": {"resourceVersion": "48213"},
  "items": [
    {
      "metadata": {
        "name": "api-7d9f8b6c5-x2x9z", "namespace": "prod", "uid": "0c4c0f9e-9d7e-4b5a-8d0e-3f1f0a3c2b1a",
        "resourceVersion": "48190", "creationTimestamp": "2026-01-10T09:12:44Z",
        "labels": {"app": "api", "pod-template-hash": "7d9f8b6c5"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f8b6c5",
                             "uid": "5b1d6a2e-1f0c-4e8a-9a57-2c0b7d3e4f61", "controller": true, "blockOwnerDeletion": true}]
      },
      "spec": {
        "containers": [{"name": "api", "image": "example/api:1.4", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "resources": {}, "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent"}],
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "serviceAccountName": "default", "nodeName": "node-1"
      },
      "status": {"phase": "Running", "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}], "hostIP": "192.168.1.11"}
    },
    {
      "metadata": {"name": "db-0", "namespace": "prod", "uid": "7e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b", "labels": {"app": "db"}},
      "spec": {"containers": [{"name": "db", "image": "postgres:16", "ports": [{"containerPort": 5432, "protocol": "TCP"}]}]},
      "status": {"phase": "Running", "podIP": "10.244.2.9", "podIPs": [{"ip": "10.244.2.9"}]}
    }
  ]
}"#;

/// Typed lists of other kinds, as `GET /apis/networking.k8s.io/v1/networkpolicies` and
/// friends return them, written as YAML.
const TYPED_LISTS_YAML: &str = r#"kind: NamespaceList
apiVersion: v1
metadata: {resourceVersion: "48213"}
items:
  - metadata:
      name: prod
      uid: 3a2b1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d
      labels: {kubernetes.io/metadata.name: prod, env: production}
    spec: {finalizers: [kubernetes]}
    status: {phase: Active}
---
kind: NetworkPolicyList
apiVersion: networking.k8s.io/v1
metadata: {resourceVersion: "48213"}
items:
  - metadata: {name: db-from-api, namespace: prod, uid: 9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a, generation: 1}
    spec:
      podSelector: {matchLabels: {app: db}}
      policyTypes: [Ingress]
      ingress:
        - from: [{podSelector: {matchLabels: {app: api}}}]
          ports: [{protocol: TCP, port: 5432}]
---
kind: DeploymentList
apiVersion: apps/v1
metadata: {resourceVersion: "48213"}
items:
  - metadata: {name: web, namespace: prod, generation: 3}
    spec:
      replicas: 2
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: web, image: example/web, ports: [{containerPort: 80}]}]}
    status: {replicas: 2, readyReplicas: 2}
---
kind: StatefulSetList
apiVersion: apps/v1
metadata: {resourceVersion: "48213"}
items:
  - metadata: {name: cache, namespace: prod}
    spec:
      serviceName: cache
      selector: {matchLabels: {app: cache}}
      template:
        metadata: {labels: {app: cache}}
        spec: {containers: [{name: redis, image: redis:7, ports: [{containerPort: 6379}]}]}
---
kind: CronJobList
apiVersion: batch/v1
metadata: {}
items:
  - metadata: {name: report, namespace: prod}
    spec:
      schedule: "0 3 * * *"
      jobTemplate:
        spec:
          template:
            metadata: {labels: {app: report}}
            spec: {restartPolicy: OnFailure, containers: [{name: report, image: example/report}]}
"#;

#[test]
fn typed_lists_as_the_api_server_returns_them_are_read() {
    let pods = load_file("pods.json", POD_LIST_JSON);
    assert!(pods.diagnostics.is_empty(), "{:#?}", pods.diagnostics);
    let api = pods.cluster.endpoint("prod/api-7d9f8b6c5-x2x9z").expect("the first pod");
    assert_eq!(api.ips, ["10.244.1.7".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(api.ports[0].name.as_deref(), Some("http"));
    assert_eq!(api.workload_name(), "api");
    assert!(pods.cluster.endpoint("prod/db-0").is_some(), "the second pod");

    let lists = load_file("cluster.yaml", TYPED_LISTS_YAML);
    assert!(lists.diagnostics.is_empty(), "{:#?}", lists.diagnostics);
    assert_eq!(lists.cluster.namespace_labels("prod").unwrap().get("env").map(String::as_str), Some("production"));
    let policy = &lists.cluster.policies()[0];
    assert_eq!(policy.id(), "prod/db-from-api");
    assert_eq!(policy.ingress.as_ref().map(Vec::len), Some(1));
    let ids: Vec<&str> = lists.cluster.endpoints().iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["prod/deployment/web", "prod/statefulset/cache", "prod/cronjob/report"]);
}

/// `kubectl get ns,pods,networkpolicies -A -o json` prints `items` before `kind`: the items
/// are read one at a time all the same, each located by its position.
#[test]
fn json_lists_in_kubectl_order_are_read_item_by_item() {
    let loaded = load_file(
        "cluster.json",
        r#"{"apiVersion": "v1", "items": [
  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "labels": {"env": "production"}}},
  {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "bad", "namespace": "prod"},
   "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]}},
  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "prod"}, "status": {"podIP": "10.0.0.1"}}
], "kind": "List", "metadata": {"resourceVersion": ""}}"#,
    );
    assert_eq!(loaded.cluster.namespace_labels("prod").unwrap().get("env").map(String::as_str), Some("production"));
    assert!(loaded.cluster.endpoint("prod/a").is_some(), "the item after the bad one");
    assert_eq!(
        printed(&loaded),
        [
            "error: cluster.json: NetworkPolicy prod/bad: spec.ingress[0].ports[0].port: 70000 must be a port number from 1 to 65535"
        ]
    );

    let not_a_list = load_file("list.json", r#"{"items": {"kind": "Pod"}, "kind": "List"}"#);
    assert_eq!(printed(&not_a_list), ["error: list.json: List: items: must be a list"]);
    let broken = load_file("broken.json", r#"{"items": [{"kind": "Pod",}], "kind": "List"}"#);
    let d = find(&broken.diagnostics, "invalid JSON");
    assert_eq!((d.file.as_str(), d.severity), ("broken.json", Severity::Error));
    assert!(broken.cluster.endpoints().is_empty());
}

#[test]
fn items_of_a_typed_list_keep_the_kind_and_api_version_they_carry() {
    let loaded = load(
        r#"kind: PodList
apiVersion: v1
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: a, namespace: x}
    status: {podIP: 10.0.0.1}
  - apiVersion: v1
    kind: Namespace
    metadata: {name: y, labels: {team: blue}}
---
kind: DeploymentList
apiVersion: apps/v1
items:
  - apiVersion: extensions/v1beta1
    metadata: {name: b, namespace: x}
    spec: {template: {spec: {containers: [{name: c, image: x}]}}}
"#,
    );
    assert!(loaded.cluster.endpoint("x/a").is_some());
    assert_eq!(loaded.cluster.namespace_labels("y").unwrap().get("team").map(String::as_str), Some("blue"));
    assert_eq!(
        printed(&loaded),
        ["error: test.yaml: Deployment x/b: apiVersion: extensions/v1beta1 is not read; Deployment is read as apps/v1"],
        "an item's own apiVersion stays"
    );
}

#[test]
fn removed_api_versions_name_the_version_that_is_read() {
    let loaded = load(
        r#"apiVersion: batch/v1beta1
kind: CronJob
metadata: {name: nightly, namespace: prod}
spec:
  schedule: "0 2 * * *"
  jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: x}]}}}}
---
apiVersion: extensions/v1beta1
kind: NetworkPolicy
metadata: {name: legacy, namespace: prod}
spec: {podSelector: {}}
---
apiVersion: apps/v1beta2
kind: Deployment
metadata: {name: web, namespace: prod}
spec: {template: {spec: {containers: [{name: c, image: x}]}}}
---
apiVersion: extensions/v1beta1
kind: DaemonSet
metadata: {name: agent, namespace: prod}
spec: {template: {spec: {containers: [{name: c, image: x}]}}}
"#,
    );
    assert_eq!(
        printed(&loaded),
        [
            "error: test.yaml: CronJob prod/nightly: apiVersion: batch/v1beta1 is not read; CronJob is read as batch/v1",
            "error: test.yaml: NetworkPolicy prod/legacy: apiVersion: extensions/v1beta1 is not read; NetworkPolicy is read as networking.k8s.io/v1",
            "error: test.yaml: Deployment prod/web: apiVersion: apps/v1beta2 is not read; Deployment is read as apps/v1",
            "error: test.yaml: DaemonSet prod/agent: apiVersion: extensions/v1beta1 is not read; DaemonSet is read as apps/v1",
        ]
    );
    assert!(loaded.cluster.endpoints().is_empty() && loaded.cluster.policies().is_empty());
}

#[test]
fn another_api_kind_of_the_same_name_is_skipped() {
    let loaded = load(
        "apiVersion: batch.volcano.sh/v1alpha1\nkind: Job\nmetadata: {name: train, namespace: ml}\nspec: {tasks: []}\n",
    );
    assert_eq!(printed(&loaded), ["note: test.yaml: Job ml/train: skipped: netcanary does not use this kind"]);
}

#[test]
fn missing_container_ports_are_missing_not_port_zero() {
    let loaded = load(
        r#"apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod}
spec:
  containers:
    - name: web
      image: example/web
      ports: [{containerport: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: prod}
spec:
  template:
    spec:
      containers:
        - name: api
          image: example/api
          ports: [{name: http, protocol: TCP}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: prod}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, image: x, ports: [{containerPort: 9090, hostport: 9090}]}]
"#,
    );
    assert_eq!(
        printed(&loaded),
        [
            "error: test.yaml: Pod prod/web: spec.containers[0].ports[0].containerPort: is missing (the entry has \"containerport\": field names are case-sensitive)",
            "error: test.yaml: Deployment prod/api: spec.template.spec.containers[0].ports[0].containerPort: is missing",
            "error: test.yaml: CronJob prod/report: spec.jobTemplate.spec.template.spec.containers[0].ports[0].hostport: unknown field: did you mean \"hostPort\"? (field names are case-sensitive)",
        ]
    );
    assert!(loaded.cluster.endpoints().is_empty());
}

#[test]
fn network_policy_fields_that_are_missing_or_misspelt() {
    let loaded = load(&format!(
        "{POLICY_HEAD}  ingress:\n    - form: [{{podSelector: {{matchLabels: {{app: api}}}}}}]\n      ports: [{{Port: 5432}}, {{port: 80, endport: 90}}]\n    - from: [{{ipBlock: {{CIDR: 10.0.0.0/8}}}}, {{namespaceSelector: {{matchlabels: {{team: a}}}}}}]\n  egress:\n    - to: [{{podSelector: {{matchExpressions: [{{key: app, values: [db]}}, {{operator: Exists}}]}}}}]\n"
    ));
    assert_eq!(
        printed(&loaded),
        [
            "error: test.yaml: NetworkPolicy prod/bad: spec.ingress[0].form: unknown field: an ingress rule has from and ports",
            "error: test.yaml: NetworkPolicy prod/bad: spec.ingress[0].ports[0].Port: unknown field: did you mean \"port\"? (field names are case-sensitive)",
            "error: test.yaml: NetworkPolicy prod/bad: spec.ingress[0].ports[1].endport: unknown field: did you mean \"endPort\"? (field names are case-sensitive)",
            "error: test.yaml: NetworkPolicy prod/bad: spec.ingress[1].from[0].ipBlock.cidr: is missing (the entry has \"CIDR\": field names are case-sensitive)",
            "error: test.yaml: NetworkPolicy prod/bad: spec.ingress[1].from[1].namespaceSelector.matchlabels: unknown field: did you mean \"matchLabels\"? (field names are case-sensitive)",
            "error: test.yaml: NetworkPolicy prod/bad: spec.egress[0].to[0].podSelector.matchExpressions[0].operator: is missing",
            "error: test.yaml: NetworkPolicy prod/bad: spec.egress[0].to[0].podSelector.matchExpressions[1].key: is missing",
        ]
    );
    assert!(loaded.cluster.policies().is_empty());
}

/// One object of each kind that changes who reaches whom but is not evaluated, with the
/// object and message each is reported with.
const UNEVALUATED: [(&str, &str, &str); 10] = [
    ("cilium.io/v2", "CiliumNetworkPolicy", "CiliumNetworkPolicy prod/p"),
    ("cilium.io/v2", "CiliumClusterwideNetworkPolicy", "CiliumClusterwideNetworkPolicy p"),
    ("crd.projectcalico.org/v1", "NetworkPolicy", "NetworkPolicy.crd.projectcalico.org prod/p"),
    ("crd.projectcalico.org/v1", "GlobalNetworkPolicy", "GlobalNetworkPolicy p"),
    ("projectcalico.org/v3", "NetworkPolicy", "NetworkPolicy.projectcalico.org prod/p"),
    ("projectcalico.org/v3", "GlobalNetworkPolicy", "GlobalNetworkPolicy p"),
    ("k8s.cni.cncf.io/v1beta1", "MultiNetworkPolicy", "MultiNetworkPolicy prod/p"),
    ("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "NetworkAttachmentDefinition prod/p"),
    ("k8s.ovn.org/v1", "UserDefinedNetwork", "UserDefinedNetwork prod/p"),
    ("k8s.ovn.org/v1", "ClusterUserDefinedNetwork", "ClusterUserDefinedNetwork p"),
];

#[test]
fn kinds_that_change_reachability_but_are_not_evaluated_are_warned_about() {
    for (api_version, kind, object) in UNEVALUATED {
        let loaded = load(&format!(
            "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: p, namespace: prod}}\nspec: {{}}\n"
        ));
        assert_eq!(
            printed(&loaded),
            [format!(
                "warning: test.yaml: {object}: {api_version} {kind} is not evaluated by netcanary: verdicts ignore it, so they may differ from what the cluster enforces"
            )],
            "{api_version} {kind}"
        );
    }
}

#[test]
fn calico_network_policies_are_not_read_as_kubernetes_ones() {
    let loaded = load(
        r#"apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: allow-tcp-6379, namespace: production}
spec:
  selector: role == 'database'
  types: [Ingress, Egress]
  ingress:
    - action: Allow
      protocol: TCP
      source: {selector: role == 'frontend'}
      destination: {ports: [6379]}
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: deny-all, namespace: production}
spec: {selector: all(), types: [Ingress]}
"#,
    );
    assert!(loaded.cluster.policies().is_empty());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let objects: Vec<_> = loaded.diagnostics.iter().map(|d| (d.severity, d.object.clone().unwrap())).collect();
    assert_eq!(
        objects,
        [
            (Severity::Warning, "NetworkPolicy.crd.projectcalico.org production/allow-tcp-6379".to_string()),
            (Severity::Warning, "NetworkPolicy.projectcalico.org production/deny-all".to_string()),
        ]
    );
}

#[test]
fn invalid_cluster_policy_fields_are_located() {
    let loaded = load(include_str!("../../../tests/scenarios/cluster-policies/invalid.yaml"));
    let printed = printed(&loaded);
    let expected = [
        "error: test.yaml: ClusterNetworkPolicy bad: spec.tier: unsupported value \"Middle\": use \"Admin\" or \"Baseline\"",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.priority: 1001 must be from 0 to 1000",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.subject: must set exactly one of namespaces, pods, not namespaces and pods",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.ingress[0].action: unsupported value \"Allow\": use \"Accept\", \"Deny\" or \"Pass\"",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.ingress[1].from: must have at least 1 item(s)",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.ingress[2].from[0].networks: unknown field: the fields here are \"namespaces\", \"pods\"",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.ingress[2].from[0]: must set exactly one of namespaces, pods",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.ingress[2].protocols[0].tcp.destinationPort: is required (the entry must have at least one field)",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.ingress[2].protocols[1].udp.destinationPort.range: Start port must be less than End port (90 is not below 80)",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.ingress[2].protocols[2].sctp.destinationPort.number: 0 must be from 1 to 65535",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.ingress[2].protocols[3]: must set exactly one of tcp, udp, sctp, destinationNamedPort, not tcp and udp",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.egress[0].to[0].networks[0]: Invalid CIDR format provided: \"10.0.0.300/8\"",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.egress[0].to[1].domainNames[0]: \"*kubernetes.io\" is not a domain name (labels of letters, digits, '-' and '_', optionally after \"*.\")",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.egress[0].to[2]: must set exactly one of namespaces, pods, nodes, networks, domainNames, not nodes and pods",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.egress[0]: networks/nodes/domainNames peer cannot be set with named ports since there are no named ports for networks/nodes/domainNames",
        "error: test.yaml: ClusterNetworkPolicy bad: spec.egress[1].to[0].pods.podSelector: is required ({} selects every pod)",
        "error: test.yaml: BaselineAdminNetworkPolicy other: metadata.name: must be \"default\": only one BaselineAdminNetworkPolicy, named default, can exist in a cluster",
        "error: test.yaml: BaselineAdminNetworkPolicy other: spec.priority: unknown field: the fields here are \"subject\", \"ingress\", \"egress\"",
        "error: test.yaml: BaselineAdminNetworkPolicy other: spec.egress[0].action: unsupported value \"Pass\": use \"Allow\" or \"Deny\"",
        "error: test.yaml: AdminNetworkPolicy old: spec.subject.pods.namespaceSelector: is required",
        "error: test.yaml: AdminNetworkPolicy old: spec.ingress[0].from[0].namespaces.namespaceSelector: is the experimental v1alpha1 shape that network-policy-api v0.1.5 removed; today's CRD takes a label selector here (matchLabels, matchExpressions)",
        "error: test.yaml: AdminNetworkPolicy old: spec.ingress[0].from[0].namespaces.sameLabels: is the experimental v1alpha1 shape that network-policy-api v0.1.5 removed; today's CRD takes a label selector here (matchLabels, matchExpressions)",
    ];
    assert_eq!(printed, expected);
    assert!(loaded.cluster.cluster_policies().is_empty());
}
