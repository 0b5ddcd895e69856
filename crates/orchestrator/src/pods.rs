//! The probe and target pods, built to the safety rules: they copy only policy-relevant
//! labels, are never Ready, are owned by their run, pass Pod Security "restricted", carry
//! no token, are small and bounded in time.
//!
//! The constants below are the facts of that shape. The builder uses them, and so does the
//! fence ([`crate::fence`]), the admission policy that lets netcanary's ServiceAccount
//! create no other pods: a change here changes both, and the tests hold the shipped policy
//! to what this module builds.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, Pod, PodReadinessGate, PodSecurityContext, PodSpec,
    ResourceRequirements, SeccompProfile, SecurityContext, Sysctl, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use netcanary_planner::Mirror;
use netcanary_planner::mirror::with_netcanary_labels;
pub use netcanary_planner::mirror::{MANAGED_BY_KEY, MANAGED_BY_VALUE, RUN_ID_KEY};
use netcanary_policy::Protocol;
use netcanary_wire::AgentPlan;
use netcanary_wire::plan_env::{self, PlanTooLong};

/// A readiness gate nobody sets: the pods never become Ready, so no Service (that does not
/// publish not-ready addresses) ever sends them traffic.
pub const NEVER_READY_GATE: &str = "netcanary.io/never-ready";
/// The unprivileged user and group the container runs as (distroless `nonroot`).
pub const NON_ROOT_UID: i64 = 65532;
/// The seccomp profile of the pod; no container overrides it.
pub const SECCOMP_PROFILE: &str = "RuntimeDefault";
/// The capabilities every container drops; it adds none.
pub const DROPPED_CAPABILITIES: &str = "ALL";
/// The only sysctls the pod sets: a safe one, allowed by "restricted", that lets the
/// non-root target bind ports below 1024 without any capability.
pub const SYSCTLS: [(&str, &str); 1] = [("net.ipv4.ip_unprivileged_port_start", "0")];
/// Each container's limits; its requests are smaller.
pub const CPU_LIMIT: &str = "200m";
pub const MEMORY_LIMIT: &str = "64Mi";
const CPU_REQUEST: &str = "10m";
const MEMORY_REQUEST: &str = "16Mi";

/// What every pod of a run shares.
#[derive(Clone, Debug)]
pub struct PodSettings {
    pub image: String,
    pub run_id: String,
    /// The run record that owns the pods, as their controller.
    pub owner: OwnerReference,
    /// Hard bound on a pod's life (`activeDeadlineSeconds`).
    pub deadline_seconds: i64,
    /// Spread the run's pods across nodes, so probes cross node boundaries (where CNIs
    /// enforce policy differently than between pods of one node).
    pub spread_across_nodes: bool,
}

/// The name of a run's pod: short, unique within the run, and telling its role.
pub fn pod_name(run_id: &str, role: &str, index: usize) -> String {
    format!("netcanary-{run_id}-{role}{index}")
}

/// A target pod for `mirror`, listening on the ports probed to it, which it declares with
/// the names the workload gives them: a rule's named port (`port: http`) matches a pod
/// through the pod's own port names, for the network as for the engine. Never Ready, so no
/// Service routes to the names.
pub fn target(settings: &PodSettings, index: usize, mirror: &Mirror) -> Pod {
    let ports = |protocol: Protocol| {
        let list: Vec<String> =
            mirror.listen.iter().filter(|p| p.protocol == protocol).map(|p| p.port.to_string()).collect();
        list.join(",")
    };
    let mut args = vec!["target".to_string()];
    for (flag, list) in [("--tcp", ports(Protocol::Tcp)), ("--udp", ports(Protocol::Udp))] {
        if !list.is_empty() {
            args.extend([flag.to_string(), list]);
        }
    }
    let name = pod_name(&settings.run_id, "t", index);
    let mut pod = build(settings, &name, mirror, args, Vec::new());
    // Its own name, which only it carries: what its Service (for the service and dns paths)
    // selects. No policy selector reads netcanary's keys, so policy sees the same pod.
    if let Some(labels) = pod.metadata.labels.as_mut() {
        labels.insert(crate::services::TARGET_KEY.to_string(), name);
    }
    let declared = mirror
        .listen
        .iter()
        .map(|p| ContainerPort {
            container_port: i32::from(p.port),
            protocol: Some(p.protocol.to_string()),
            name: mirror.port_names.get(p).cloned(),
            ..ContainerPort::default()
        })
        .collect();
    if let Some(container) = pod.spec.as_mut().and_then(|spec| spec.containers.first_mut()) {
        container.ports = Some(declared);
    }
    pod
}

/// A source pod for `mirror` that runs `plan` (the agent's JSON plan) once, the plan in its
/// environment (split in parts when long); none when the plan is too long for one pod.
pub fn source(settings: &PodSettings, name: &str, mirror: &Mirror, plan: &AgentPlan) -> Result<Pod, PlanTooLong> {
    // Plain strings, numbers and addresses: serializing cannot fail.
    let plan = serde_json::to_string(plan).expect("an agent plan serializes");
    let env = plan_env::split(&plan)?
        .into_iter()
        .map(|(name, value)| EnvVar { name, value: Some(value), ..EnvVar::default() })
        .collect();
    Ok(build(settings, name, mirror, vec!["agent".into()], env))
}

fn build(settings: &PodSettings, name: &str, mirror: &Mirror, args: Vec<String>, env: Vec<EnvVar>) -> Pod {
    let labels = with_netcanary_labels(mirror.labels.clone(), &settings.run_id);
    let quantity = |s: &str| Quantity(s.to_string());
    let resources = |cpu: &str, memory: &str| {
        BTreeMap::from([("cpu".to_string(), quantity(cpu)), ("memory".to_string(), quantity(memory))])
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(mirror.namespace.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([("netcanary.io/stands-for".to_string(), mirror.stands_for.clone())])),
            owner_references: Some(vec![settings.owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            active_deadline_seconds: Some(settings.deadline_seconds),
            termination_grace_period_seconds: Some(2),
            readiness_gates: Some(vec![PodReadinessGate { condition_type: NEVER_READY_GATE.into() }]),
            topology_spread_constraints: settings.spread_across_nodes.then(|| {
                vec![TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: "kubernetes.io/hostname".into(),
                    // Best effort: a probe pod that cannot be placed is worse than one on a
                    // busier node.
                    when_unsatisfiable: "ScheduleAnyway".into(),
                    label_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(RUN_ID_KEY.to_string(), settings.run_id.clone())])),
                        ..LabelSelector::default()
                    }),
                    ..TopologySpreadConstraint::default()
                }]
            }),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(NON_ROOT_UID),
                run_as_group: Some(NON_ROOT_UID),
                seccomp_profile: Some(SeccompProfile { type_: SECCOMP_PROFILE.into(), ..SeccompProfile::default() }),
                sysctls: Some(
                    SYSCTLS
                        .iter()
                        .map(|(name, value)| Sysctl { name: name.to_string(), value: value.to_string() })
                        .collect(),
                ),
                ..PodSecurityContext::default()
            }),
            containers: vec![Container {
                name: "netcanary".into(),
                image: Some(settings.image.clone()),
                args: Some(args),
                env: (!env.is_empty()).then_some(env),
                termination_message_policy: Some("File".into()),
                resources: Some(ResourceRequirements {
                    requests: Some(resources(CPU_REQUEST, MEMORY_REQUEST)),
                    limits: Some(resources(CPU_LIMIT, MEMORY_LIMIT)),
                    ..ResourceRequirements::default()
                }),
                security_context: Some(SecurityContext {
                    allow_privilege_escalation: Some(false),
                    privileged: Some(false),
                    read_only_root_filesystem: Some(true),
                    run_as_non_root: Some(true),
                    capabilities: Some(Capabilities { drop: Some(vec![DROPPED_CAPABILITIES.into()]), add: None }),
                    ..SecurityContext::default()
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// The settings of run `r1`, for the tests of what is built from them.
#[cfg(test)]
pub(crate) fn test_settings() -> PodSettings {
    PodSettings {
        image: "netcanary:test".into(),
        run_id: "r1".into(),
        owner: OwnerReference {
            api_version: "netcanary.io/v1alpha1".into(),
            kind: "NetcanaryRun".into(),
            name: "r1".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(false),
        },
        deadline_seconds: 120,
        spread_across_nodes: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcanary_policy::{Labels, PortProto};
    use netcanary_wire::{AgentProbe, ProbeTarget, Transport};

    fn mirror() -> Mirror {
        Mirror {
            class: 0,
            namespace: "prod".into(),
            labels: Labels::from([("app".to_string(), "db".to_string())]),
            dropped_labels: vec![],
            stands_for: "prod/db-0".into(),
            workload: "db".into(),
            members: 1,
            listen: ["5432/TCP", "53/UDP", "53/TCP"].iter().map(|p| p.parse::<PortProto>().unwrap()).collect(),
            port_names: [("53/UDP", "dns"), ("53/TCP", "dns-tcp")]
                .iter()
                .map(|(p, name)| (p.parse::<PortProto>().unwrap(), name.to_string()))
                .collect(),
        }
    }

    #[test]
    fn target_pods_follow_the_safety_rules() {
        let pod = target(&test_settings(), 3, &mirror());
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels.len(), 4, "{labels:?}");
        assert_eq!(labels["app"], "db");
        assert_eq!(labels[crate::services::TARGET_KEY], "netcanary-r1-t3");
        assert_eq!(labels[MANAGED_BY_KEY], MANAGED_BY_VALUE);
        assert_eq!(labels[RUN_ID_KEY], "r1");
        assert_eq!(pod.metadata.name.as_deref(), Some("netcanary-r1-t3"));
        assert_eq!(pod.metadata.owner_references.unwrap()[0].controller, Some(true));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.readiness_gates.unwrap()[0].condition_type, NEVER_READY_GATE);
        assert_eq!(spec.active_deadline_seconds, Some(120));
        let container = &spec.containers[0];
        assert_eq!(container.args.as_ref().unwrap(), &["target", "--tcp", "53,5432", "--udp", "53"]);
        let ports: Vec<(i32, &str, Option<&str>)> = container
            .ports
            .iter()
            .flatten()
            .map(|p| (p.container_port, p.protocol.as_deref().unwrap(), p.name.as_deref()))
            .collect();
        assert_eq!(ports, [(53, "TCP", Some("dns-tcp")), (53, "UDP", Some("dns")), (5432, "TCP", None)]);
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.capabilities.as_ref().unwrap().drop.as_ref().unwrap(), &["ALL"]);
        let pod_security = spec.security_context.unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true));
        assert_eq!(pod_security.seccomp_profile.unwrap().type_, "RuntimeDefault");
        assert!(container.resources.as_ref().unwrap().limits.is_some());
        assert!(spec.topology_spread_constraints.is_none(), "spreading only when asked");
    }

    #[test]
    fn spreading_asks_the_scheduler_for_one_pod_per_node_of_the_run() {
        let settings = PodSettings { spread_across_nodes: true, ..test_settings() };
        let spread = target(&settings, 0, &mirror()).spec.unwrap().topology_spread_constraints.unwrap();
        assert_eq!(spread[0].topology_key, "kubernetes.io/hostname");
        assert_eq!(spread[0].max_skew, 1);
        assert_eq!(spread[0].label_selector.as_ref().unwrap().match_labels.as_ref().unwrap()[RUN_ID_KEY], "r1");
    }

    #[test]
    fn source_pods_carry_their_plan_in_the_environment() {
        let plan = AgentPlan { timeout_ms: 2000, concurrency: None, delay_ms: None, probes: Vec::new() };
        let pod = source(&test_settings(), "netcanary-r1-s0", &mirror(), &plan).unwrap();
        let container = &pod.spec.unwrap().containers[0];
        assert_eq!(container.args.as_ref().unwrap(), &["agent"]);
        let env = container.env.as_ref().unwrap();
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].name, "NETCANARY_PLAN_JSON");
        assert_eq!(env[0].value.as_deref(), Some(r#"{"timeout_ms":2000,"probes":[]}"#));
    }

    #[test]
    fn a_long_plan_is_split_over_variables_and_one_too_long_is_refused() {
        let probe = |i: u32| {
            AgentProbe::new(
                i.to_string(),
                ProbeTarget::to_address(Transport::Tcp, "10.244.1.23".parse().unwrap(), 8080),
            )
        };
        let plan = |n: u32| AgentPlan {
            timeout_ms: 2000,
            concurrency: None,
            delay_ms: None,
            probes: (1..=n).map(probe).collect(),
        };
        let pod = source(&test_settings(), "netcanary-r1-s0", &mirror(), &plan(5000)).unwrap();
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        // About 62 bytes a probe: 310 kB in four parts of at most 96 KiB.
        assert_eq!(
            names,
            [
                "NETCANARY_PLAN_JSON",
                "NETCANARY_PLAN_JSON_1",
                "NETCANARY_PLAN_JSON_2",
                "NETCANARY_PLAN_JSON_3",
                "NETCANARY_PLAN_JSON_PARTS"
            ]
        );
        assert!(env.iter().all(|e| e.value.as_ref().unwrap().len() <= plan_env::PART_BYTES));
        let err = source(&test_settings(), "netcanary-r1-s0", &mirror(), &plan(20_000)).unwrap_err();
        assert!(err.bytes > plan_env::MAX_PLAN_BYTES, "{err}");
    }
}
