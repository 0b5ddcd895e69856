//! The fence: what netcanary's own ServiceAccount may do to pods, beyond what RBAC can say.
//!
//! RBAC lets netcanary create and delete pods in every namespace, and cannot say "only probe
//! pods". The ValidatingAdmissionPolicy in `manifests/base/core/fence.yaml` can: for requests
//! by netcanary's ServiceAccount, the API server admits a new pod only in the shape
//! [`pods`](crate::pods) builds, and a deletion only of a pod that carries netcanary's label.
//! [`rules`] renders the policy's rules from the builder's own constants; the tests hold the
//! shipped policy to them and to what the builder really builds.

use crate::pods::{
    CPU_LIMIT, DROPPED_CAPABILITIES, MANAGED_BY_KEY, MANAGED_BY_VALUE, MEMORY_LIMIT, NEVER_READY_GATE, NON_ROOT_UID,
    RUN_ID_KEY, SECCOMP_PROFILE, SYSCTLS,
};
use crate::record;

/// The ValidatingAdmissionPolicy's name.
pub const POLICY: &str = "netcanary-fence";
/// The name of the binding that puts the policy in force.
pub const BINDING: &str = "netcanary-fence";
/// The ConfigMap, in netcanary's namespace, that holds the policy's parameters.
pub const PARAMS: &str = "netcanary-fence";
/// The parameter naming the only image a probe pod may run.
pub const IMAGE_PARAM: &str = "image";

/// One rule of the fence: a CEL expression every request it covers must satisfy, and the
/// reason the API server gives when it does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub expression: String,
    pub message: String,
    /// Computed at admission, to name the configured image; `message` when it cannot be.
    pub message_expression: Option<String>,
}

/// The policy's variables, as (name, expression): every container, init containers included,
/// is held to the same rules.
pub fn variables() -> Vec<(&'static str, String)> {
    vec![("containers", "object.spec.containers + object.spec.?initContainers.orValue([])".to_string())]
}

/// The fence's rules, in the order the API server evaluates them (the first that fails is
/// the one a refusal names). Rendered from the pod builder's constants, so that the policy
/// checks what the builder builds.
pub fn rules() -> Vec<Rule> {
    let label = |object: &str, key: &str| format!("{object}.metadata.?labels[?\"{key}\"].orValue(\"\")");
    let containers = |condition: &str| format!("variables.containers.all(c, {condition})");
    let uid = NON_ROOT_UID;
    let owner_api_version = format!("{}/{}", record::GROUP, record::VERSION);
    let kind = record::KIND;
    let sysctls: Vec<String> =
        SYSCTLS.iter().map(|(name, value)| format!("(s.name == \"{name}\" && s.value == \"{value}\")")).collect();
    let sysctls_text: Vec<String> = SYSCTLS.iter().map(|(name, value)| format!("{name}={value}")).collect();

    let delete = Rule {
        expression: format!(
            "request.operation != \"DELETE\" || {} == \"{MANAGED_BY_VALUE}\"",
            label("oldObject", MANAGED_BY_KEY)
        ),
        message: format!("netcanary may delete only pods labelled {MANAGED_BY_KEY}={MANAGED_BY_VALUE}"),
        message_expression: None,
    };
    let create = |condition: String, message: String| Rule {
        expression: format!("request.operation != \"CREATE\" || {condition}"),
        message,
        message_expression: None,
    };
    vec![
        delete,
        create(
            format!("{} == \"{MANAGED_BY_VALUE}\"", label("object", MANAGED_BY_KEY)),
            format!("a probe pod must be labelled {MANAGED_BY_KEY}={MANAGED_BY_VALUE}"),
        ),
        create(
            format!("{} != \"\"", label("object", RUN_ID_KEY)),
            format!("a probe pod must be labelled {RUN_ID_KEY} with its run"),
        ),
        create(
            format!(
                "has(object.metadata.ownerReferences) && size(object.metadata.ownerReferences) == 1 && \
                 object.metadata.ownerReferences.all(r, r.apiVersion == \"{owner_api_version}\" && \
                 r.kind == \"{kind}\" && r.?controller.orValue(false))"
            ),
            format!(
                "a probe pod must have exactly one ownerReference, to its run's {kind} ({owner_api_version}), as \
                 controller"
            ),
        ),
        create(
            "!object.spec.?hostNetwork.orValue(false) && !object.spec.?hostPID.orValue(false) && \
             !object.spec.?hostIPC.orValue(false)"
                .into(),
            "a probe pod must not share the host's network, PID or IPC namespace".into(),
        ),
        create(
            containers("!c.?securityContext.?privileged.orValue(false)"),
            "no container of a probe pod may be privileged".into(),
        ),
        create(
            containers("c.?securityContext.?allowPrivilegeEscalation.orValue(true) == false"),
            "every container of a probe pod must set allowPrivilegeEscalation: false".into(),
        ),
        create(
            containers(&format!(
                "c.?securityContext.?capabilities.?drop.orValue([]).exists(d, d == \"{DROPPED_CAPABILITIES}\") && \
                 c.?securityContext.?capabilities.?add.orValue([]).size() == 0"
            )),
            format!("every container of a probe pod must drop {DROPPED_CAPABILITIES} capabilities and add none"),
        ),
        create(
            format!(
                "object.spec.?securityContext.?runAsNonRoot.orValue(false) && \
                 object.spec.?securityContext.?runAsUser.orValue(0) == {uid} && \
                 object.spec.?securityContext.?runAsGroup.orValue(0) == {uid} && {}",
                containers(&format!(
                    "c.?securityContext.?runAsNonRoot.orValue(true) && \
                     c.?securityContext.?runAsUser.orValue({uid}) == {uid} && \
                     c.?securityContext.?runAsGroup.orValue({uid}) == {uid}"
                ))
            ),
            format!("a probe pod must run as non-root (runAsNonRoot: true), as user and group {uid}"),
        ),
        create(
            containers("c.?securityContext.?readOnlyRootFilesystem.orValue(false)"),
            "every container of a probe pod must have a read-only root filesystem".into(),
        ),
        create(
            format!(
                "object.spec.?securityContext.?seccompProfile.?type.orValue(\"\") == \"{SECCOMP_PROFILE}\" && {}",
                containers(&format!(
                    "c.?securityContext.?seccompProfile.?type.orValue(\"{SECCOMP_PROFILE}\") == \"{SECCOMP_PROFILE}\""
                ))
            ),
            format!("a probe pod must have the {SECCOMP_PROFILE} seccomp profile, in every container"),
        ),
        create(
            format!(
                "!object.spec.?securityContext.?seLinuxOptions.hasValue() && \
                 !object.spec.?securityContext.?appArmorProfile.hasValue() && \
                 !object.spec.?securityContext.?windowsOptions.hasValue() && {}",
                containers(
                    "!c.?securityContext.?seLinuxOptions.hasValue() && \
                     !c.?securityContext.?appArmorProfile.hasValue() && \
                     !c.?securityContext.?windowsOptions.hasValue() && \
                     c.?securityContext.?procMount.orValue(\"Default\") == \"Default\""
                )
            ),
            "a probe pod must set no SELinux options, AppArmor profile, Windows options or procMount".into(),
        ),
        create(
            format!("object.spec.?securityContext.?sysctls.orValue([]).all(s, {})", sysctls.join(" || ")),
            format!("a probe pod may set no sysctl but {}", sysctls_text.join(", ")),
        ),
        Rule {
            message_expression: Some(format!(
                "\"every container of a probe pod must run \" + params.data.{IMAGE_PARAM} + \", the image in the \
                 fence parameters\""
            )),
            ..create(
                containers(&format!("c.image == params.data.{IMAGE_PARAM}")),
                format!(
                    "every container of a probe pod must run the image in the fence parameters (ConfigMap {PARAMS}, \
                     key {IMAGE_PARAM})"
                ),
            )
        },
        create(
            "object.spec.?automountServiceAccountToken.orValue(true) == false".into(),
            "a probe pod must not mount a ServiceAccount token (automountServiceAccountToken: false)".into(),
        ),
        create("object.spec.?volumes.orValue([]).size() == 0".into(), "a probe pod must have no volumes".into()),
        create(
            containers("c.?ports.orValue([]).all(p, p.?hostPort.orValue(0) == 0)"),
            "no container of a probe pod may use a host port".into(),
        ),
        create(
            format!("object.spec.?readinessGates.orValue([]).exists(g, g.conditionType == \"{NEVER_READY_GATE}\")"),
            format!(
                "a probe pod must have the readiness gate {NEVER_READY_GATE}, so that it is never Ready and no \
                 Service sends it traffic"
            ),
        ),
        create(
            containers(&format!(
                "c.?resources.?limits[?\"cpu\"].hasValue() && c.?resources.?limits[?\"memory\"].hasValue() && \
                 quantity(c.resources.limits[\"cpu\"]).compareTo(quantity(\"{CPU_LIMIT}\")) <= 0 && \
                 quantity(c.resources.limits[\"memory\"]).compareTo(quantity(\"{MEMORY_LIMIT}\")) <= 0"
            )),
            format!(
                "every container of a probe pod must have CPU and memory limits of at most {CPU_LIMIT} and {MEMORY_LIMIT}"
            ),
        ),
        create(
            "object.spec.?activeDeadlineSeconds.orValue(0) > 0".into(),
            "a probe pod must have an activeDeadlineSeconds".into(),
        ),
        create(
            "object.spec.?priority.orValue(0) <= 0".into(),
            "a probe pod must not have a priority above 0, which would let it preempt other pods".into(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_guards_one_operation_and_says_what_it_wants() {
        let rules = rules();
        for rule in &rules {
            assert!(
                rule.expression.starts_with("request.operation != \"CREATE\" || ")
                    || rule.expression.starts_with("request.operation != \"DELETE\" || "),
                "{rule:?}"
            );
            assert!(!rule.message.is_empty(), "{rule:?}");
        }
        let messages: std::collections::BTreeSet<&str> = rules.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages.len(), rules.len(), "each rule has its own message");
    }

    #[test]
    fn the_rules_name_the_builders_facts() {
        let all: String = rules().iter().map(|r| format!("{}\n", r.expression)).collect();
        for fact in [
            MANAGED_BY_KEY,
            MANAGED_BY_VALUE,
            RUN_ID_KEY,
            NEVER_READY_GATE,
            SECCOMP_PROFILE,
            DROPPED_CAPABILITIES,
            CPU_LIMIT,
            MEMORY_LIMIT,
            SYSCTLS[0].0,
            record::KIND,
            &NON_ROOT_UID.to_string(),
        ] {
            assert!(all.contains(fact), "no rule checks {fact}");
        }
    }
}
