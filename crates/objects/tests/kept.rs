//! What the model keeps beyond what evaluation needs, for lint: the kubelet probes that
//! reach a pod's IP, and the two mesh-injection annotations.

mod common;

use common::cluster;
use netcanary_policy::{KubeletProbe, ProbeHandler};

#[test]
fn probes_that_reach_the_pod_ip_with_named_ports_resolved() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: a, annotations: {linkerd.io/inject: enabled, \
                kubectl.kubernetes.io/last-applied-configuration: \"{}\"}}\nspec:\n  containers:\n\
                \x20   - name: app\n      image: i\n      ports: [{name: http, containerPort: 8080}]\n\
                \x20     livenessProbe: {httpGet: {port: http}}\n\
                \x20     readinessProbe: {tcpSocket: {port: 9000, host: 10.1.1.1}}\n\
                \x20     startupProbe: {httpGet: {port: nosuch}}\n\
                \x20   - name: grpc\n      image: i\n      readinessProbe: {grpc: {port: 9090}}\n\
                \x20     livenessProbe: {exec: {command: [\"true\"]}}\n\
                \x20 initContainers:\n\
                \x20   - {name: proxy, image: i, restartPolicy: Always, readinessProbe: {tcpSocket: {port: 4191}}}\n\
                \x20   - {name: setup, image: i}\n";
    let cluster = cluster(yaml);
    let pod = cluster.endpoint("a/web").expect("the pod");
    let probe = |field: &str, handler, port| KubeletProbe { field: field.to_string(), handler, port };
    assert_eq!(
        pod.kubelet_probes,
        [
            probe("containers[0].livenessProbe", ProbeHandler::Http, 8080),
            probe("containers[1].readinessProbe", ProbeHandler::Grpc, 9090),
            probe("initContainers[0].readinessProbe", ProbeHandler::Tcp, 4191),
        ],
        "another host, an unresolved name and exec are left out; a sidecar's probe is kept"
    );
    let annotations: Vec<(&str, &str)> = pod.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(annotations, [("linkerd.io/inject", "enabled")], "only the mesh annotations are kept");
}

#[test]
fn namespace_and_template_annotations_are_kept() {
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, annotations: {linkerd.io/inject: enabled, other: x}}\n---\n\
                apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: a}\nspec:\n\
                \x20 selector: {matchLabels: {app: web}}\n  template:\n\
                \x20   metadata: {labels: {app: web}, annotations: {sidecar.istio.io/inject: \"false\"}}\n\
                \x20   spec: {containers: [{name: c, image: i, readinessProbe: {httpGet: {port: 80}}}]}\n";
    let cluster = cluster(yaml);
    assert_eq!(cluster.namespace_annotation("a", "linkerd.io/inject"), Some("enabled"));
    assert_eq!(cluster.namespace_annotation("a", "other"), None);
    let web = cluster.endpoint("a/deployment/web").expect("the workload");
    assert_eq!(web.annotations.get("sidecar.istio.io/inject").map(String::as_str), Some("false"));
    assert_eq!(web.kubelet_probes.len(), 1);
}
