//! The Services a run makes so that probes can take the `service` and `dns` paths: one per
//! target pod, selecting that pod alone, never any workload pod.
//!
//! Probe pods are never Ready, so no real Service ever sends them traffic; a run that probes
//! through a Service therefore makes its own: it selects netcanary's label, the run's id and
//! the target's own name label (which only that target pod carries), publishes not-ready
//! addresses (the target is never Ready), is a plain ClusterIP Service on exactly the
//! target's ports, and is owned by the run like its pods, so that it goes with them: deleted
//! when the run ends, swept or garbage-collected with the run record if the run dies. The
//! fence ([`crate::fence`]) admits no other Service from netcanary's ServiceAccount.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use netcanary_planner::Mirror;
use netcanary_planner::mirror::with_netcanary_labels;

use crate::pods::{MANAGED_BY_KEY, MANAGED_BY_VALUE, PodSettings, RUN_ID_KEY};

/// The label only one target pod carries, its own name: what its Service selects.
pub const TARGET_KEY: &str = "netcanary.io/target";
/// The only Service type netcanary makes: reachable inside the cluster only.
pub const SERVICE_TYPE: &str = "ClusterIP";

/// The Service in front of the target pod `pod_name`, which stands for `mirror`: same name,
/// same namespace, the ports the target listens on.
pub fn target_service(settings: &PodSettings, pod_name: &str, mirror: &Mirror) -> Service {
    let selector = BTreeMap::from([
        (MANAGED_BY_KEY.to_string(), MANAGED_BY_VALUE.to_string()),
        (RUN_ID_KEY.to_string(), settings.run_id.clone()),
        (TARGET_KEY.to_string(), pod_name.to_string()),
    ]);
    let ports = mirror
        .listen
        .iter()
        .map(|p| ServicePort {
            // Names are required with several ports, and must be unique: the port and protocol.
            name: Some(format!("{}-{}", p.protocol.as_str().to_ascii_lowercase(), p.port)),
            port: i32::from(p.port),
            target_port: Some(IntOrString::Int(i32::from(p.port))),
            protocol: Some(p.protocol.to_string()),
            ..ServicePort::default()
        })
        .collect();
    Service {
        metadata: ObjectMeta {
            name: Some(pod_name.to_string()),
            namespace: Some(mirror.namespace.clone()),
            labels: Some(with_netcanary_labels(BTreeMap::new(), &settings.run_id)),
            annotations: Some(BTreeMap::from([("netcanary.io/stands-for".to_string(), mirror.stands_for.clone())])),
            owner_references: Some(vec![settings.owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(SERVICE_TYPE.into()),
            selector: Some(selector),
            publish_not_ready_addresses: Some(true),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The name a `dns` probe resolves for the Service `name` in `namespace`.
pub fn dns_name(name: &str, namespace: &str, cluster_domain: &str) -> String {
    format!("{name}.{namespace}.svc.{}", cluster_domain.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use netcanary_policy::{Labels, PortProto};

    use super::*;

    #[test]
    fn a_target_service_selects_its_target_pod_alone_on_its_ports() {
        let mirror = Mirror {
            class: 0,
            namespace: "shop".into(),
            labels: Labels::from([("app".to_string(), "api".to_string())]),
            dropped_labels: vec![],
            stands_for: "shop/api-0".into(),
            workload: "api".into(),
            members: 1,
            listen: ["8080/TCP", "53/UDP"].iter().map(|p| p.parse::<PortProto>().unwrap()).collect(),
            port_names: BTreeMap::new(),
        };
        let service = target_service(&crate::pods::test_settings(), "netcanary-r1-t2", &mirror);
        assert_eq!(service.metadata.name.as_deref(), Some("netcanary-r1-t2"));
        assert_eq!(service.metadata.namespace.as_deref(), Some("shop"));
        let labels = service.metadata.labels.unwrap();
        assert_eq!(labels.len(), 2, "netcanary's labels only, never the workload's: {labels:?}");
        assert_eq!(labels[MANAGED_BY_KEY], "netcanary");
        assert_eq!(labels[RUN_ID_KEY], "r1");
        assert_eq!(service.metadata.owner_references.unwrap()[0].kind, "NetcanaryRun");
        let spec = service.spec.unwrap();
        let selector = spec.selector.unwrap();
        assert_eq!(
            selector,
            BTreeMap::from([
                ("app.kubernetes.io/managed-by".to_string(), "netcanary".to_string()),
                ("netcanary.io/run-id".to_string(), "r1".to_string()),
                ("netcanary.io/target".to_string(), "netcanary-r1-t2".to_string()),
            ])
        );
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true), "the target is never Ready");
        let ports: Vec<(Option<String>, i32, Option<String>)> =
            spec.ports.unwrap().into_iter().map(|p| (p.name, p.port, p.protocol)).collect();
        assert_eq!(
            ports,
            [(Some("udp-53".into()), 53, Some("UDP".into())), (Some("tcp-8080".into()), 8080, Some("TCP".into()))]
        );
        assert_eq!(dns_name("netcanary-r1-t2", "shop", "cluster.local."), "netcanary-r1-t2.shop.svc.cluster.local");
    }
}
