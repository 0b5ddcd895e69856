//! The fence: what netcanary's own ServiceAccount may do to pods and Services, beyond what
//! RBAC can say.
//!
//! RBAC lets netcanary create and delete pods and Services in every namespace, and cannot
//! say "only probe pods". The ValidatingAdmissionPolicy in `manifests/base/core/fence.yaml`
//! can: for requests by netcanary's ServiceAccount, the API server admits a new pod only in
//! the shape [`pods`](crate::pods) builds, a new Service only in the shape
//! [`services`](crate::services) builds (selecting its run's probe pods, never a workload's),
//! and a deletion only of an object that carries netcanary's label.
//! [`rules`] renders the policy's rules from the builder's own constants; the tests hold the
//! shipped policy to them and to what the builder really builds. [`check`] tells a run
//! whether the fence is in place: a run without it verifies as well, but the cluster should
//! know that netcanary's power is unfenced.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, Validation,
};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::Client;
use kube::api::{Api, PostParams};
use tracing::warn;

use crate::pods::{
    CPU_LIMIT, DROPPED_CAPABILITIES, MANAGED_BY_KEY, MANAGED_BY_VALUE, MEMORY_LIMIT, NEVER_READY_GATE, NON_ROOT_UID,
    RUN_ID_KEY, SECCOMP_PROFILE, SYSCTLS,
};
use crate::record;
use crate::services::{SERVICE_TYPE, TARGET_KEY};

/// The ValidatingAdmissionPolicy's name.
pub const POLICY: &str = "netcanary-fence";
/// The name of the binding that puts the policy in force.
pub const BINDING: &str = "netcanary-fence";
/// The ConfigMap, in netcanary's namespace, that holds the policy's parameters.
pub const PARAMS: &str = "netcanary-fence";
/// The parameter naming the only image a probe pod may run.
pub const IMAGE_PARAM: &str = "image";

/// How long the fence check may take: it must not hold a run whose API server is slow.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// One rule of the fence: a CEL expression every request it covers must satisfy, and the
/// reason the API server gives when it does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub expression: String,
    pub message: String,
    /// Computed at admission, to name the configured image; `message` when it cannot be.
    pub message_expression: Option<String>,
}

impl Rule {
    /// The rule as a validation of the ValidatingAdmissionPolicy.
    pub fn into_validation(self) -> Validation {
        Validation {
            expression: self.expression,
            message: Some(self.message),
            message_expression: self.message_expression,
            reason: Some("Forbidden".into()),
        }
    }
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
        message: format!("netcanary may delete only pods and Services labelled {MANAGED_BY_KEY}={MANAGED_BY_VALUE}"),
        message_expression: None,
    };
    // Rules for both kinds, then for pods only, then for Services only.
    let create = |condition: String, message: String| Rule {
        expression: format!("request.operation != \"CREATE\" || {condition}"),
        message,
        message_expression: None,
    };
    let create_a = |resource: &str, condition: String, message: String| {
        create(format!("request.resource.resource != \"{resource}\" || {condition}"), message)
    };
    let create_pod = |condition: String, message: String| create_a("pods", condition, message);
    let selector = |key: &str| format!("object.spec.?selector[?\"{key}\"].orValue(\"\")");
    let service_rules = vec![
        create_a(
            "services",
            format!(
                "{} == \"{MANAGED_BY_VALUE}\" && {} == {} && {} != \"\"",
                selector(MANAGED_BY_KEY),
                selector(RUN_ID_KEY),
                label("object", RUN_ID_KEY),
                selector(TARGET_KEY)
            ),
            format!(
                "a netcanary Service must select one probe pod of its own run: {MANAGED_BY_KEY}={MANAGED_BY_VALUE}, \
                 the run's {RUN_ID_KEY} and {TARGET_KEY} in its selector"
            ),
        ),
        create_a(
            "services",
            format!(
                "object.spec.?type.orValue(\"{SERVICE_TYPE}\") == \"{SERVICE_TYPE}\" && \
                 object.spec.?externalIPs.orValue([]).size() == 0"
            ),
            format!("a netcanary Service must be of type {SERVICE_TYPE}, with no external IPs"),
        ),
    ];
    let mut rules = vec![
        delete,
        create(
            format!("{} == \"{MANAGED_BY_VALUE}\"", label("object", MANAGED_BY_KEY)),
            format!("a probe pod or Service must be labelled {MANAGED_BY_KEY}={MANAGED_BY_VALUE}"),
        ),
        create(
            format!("{} != \"\"", label("object", RUN_ID_KEY)),
            format!("a probe pod or Service must be labelled {RUN_ID_KEY} with its run"),
        ),
        create(
            format!(
                "has(object.metadata.ownerReferences) && size(object.metadata.ownerReferences) == 1 && \
                 object.metadata.ownerReferences.all(r, r.apiVersion == \"{owner_api_version}\" && \
                 r.kind == \"{kind}\" && r.?controller.orValue(false))"
            ),
            format!(
                "a probe pod or Service must have exactly one ownerReference, to its run's {kind} \
                 ({owner_api_version}), as controller"
            ),
        ),
        create_pod(
            "!object.spec.?hostNetwork.orValue(false) && !object.spec.?hostPID.orValue(false) && \
             !object.spec.?hostIPC.orValue(false)"
                .into(),
            "a probe pod must not share the host's network, PID or IPC namespace".into(),
        ),
        create_pod(
            containers("!c.?securityContext.?privileged.orValue(false)"),
            "no container of a probe pod may be privileged".into(),
        ),
        create_pod(
            containers("c.?securityContext.?allowPrivilegeEscalation.orValue(true) == false"),
            "every container of a probe pod must set allowPrivilegeEscalation: false".into(),
        ),
        create_pod(
            containers(&format!(
                "c.?securityContext.?capabilities.?drop.orValue([]).exists(d, d == \"{DROPPED_CAPABILITIES}\") && \
                 c.?securityContext.?capabilities.?add.orValue([]).size() == 0"
            )),
            format!("every container of a probe pod must drop {DROPPED_CAPABILITIES} capabilities and add none"),
        ),
        create_pod(
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
        create_pod(
            containers("c.?securityContext.?readOnlyRootFilesystem.orValue(false)"),
            "every container of a probe pod must have a read-only root filesystem".into(),
        ),
        create_pod(
            format!(
                "object.spec.?securityContext.?seccompProfile.?type.orValue(\"\") == \"{SECCOMP_PROFILE}\" && {}",
                containers(&format!(
                    "c.?securityContext.?seccompProfile.?type.orValue(\"{SECCOMP_PROFILE}\") == \"{SECCOMP_PROFILE}\""
                ))
            ),
            format!("a probe pod must have the {SECCOMP_PROFILE} seccomp profile, in every container"),
        ),
        create_pod(
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
        create_pod(
            format!("object.spec.?securityContext.?sysctls.orValue([]).all(s, {})", sysctls.join(" || ")),
            format!("a probe pod may set no sysctl but {}", sysctls_text.join(", ")),
        ),
        Rule {
            message_expression: Some(format!(
                "\"every container of a probe pod must run \" + params.data.{IMAGE_PARAM} + \", the image in the \
                 fence parameters\""
            )),
            ..create_pod(
                containers(&format!("c.image == params.data.{IMAGE_PARAM}")),
                format!(
                    "every container of a probe pod must run the image in the fence parameters (ConfigMap {PARAMS}, \
                     key {IMAGE_PARAM})"
                ),
            )
        },
        create_pod(
            "object.spec.?automountServiceAccountToken.orValue(true) == false".into(),
            "a probe pod must not mount a ServiceAccount token (automountServiceAccountToken: false)".into(),
        ),
        create_pod("object.spec.?volumes.orValue([]).size() == 0".into(), "a probe pod must have no volumes".into()),
        create_pod(
            containers("c.?ports.orValue([]).all(p, p.?hostPort.orValue(0) == 0)"),
            "no container of a probe pod may use a host port".into(),
        ),
        create_pod(
            format!("object.spec.?readinessGates.orValue([]).exists(g, g.conditionType == \"{NEVER_READY_GATE}\")"),
            format!(
                "a probe pod must have the readiness gate {NEVER_READY_GATE}, so that it is never Ready and no \
                 Service sends it traffic"
            ),
        ),
        create_pod(
            containers(&format!(
                "c.?resources.?limits[?\"cpu\"].hasValue() && c.?resources.?limits[?\"memory\"].hasValue() && \
                 quantity(c.resources.limits[\"cpu\"]).compareTo(quantity(\"{CPU_LIMIT}\")) <= 0 && \
                 quantity(c.resources.limits[\"memory\"]).compareTo(quantity(\"{MEMORY_LIMIT}\")) <= 0"
            )),
            format!(
                "every container of a probe pod must have CPU and memory limits of at most {CPU_LIMIT} and {MEMORY_LIMIT}"
            ),
        ),
        create_pod(
            "object.spec.?activeDeadlineSeconds.orValue(0) > 0".into(),
            "a probe pod must have an activeDeadlineSeconds".into(),
        ),
        create_pod(
            "object.spec.?priority.orValue(0) <= 0".into(),
            "a probe pod must not have a priority above 0, which would let it preempt other pods".into(),
        ),
    ];
    rules.extend(service_rules);
    rules
}

/// The fence as the API server holds it: each object, absent, or why it could not be read.
#[derive(Clone, Debug)]
pub struct Installed {
    pub policy: Result<Option<ValidatingAdmissionPolicy>, String>,
    pub binding: Result<Option<ValidatingAdmissionPolicyBinding>, String>,
    /// Who the run is, as the API server names it (and the fence's matchConditions must);
    /// `None` when the API server would not say.
    pub identity: Option<String>,
}

/// Reads the fence and says what is wrong with it, as warnings for the run record (each also
/// logged). Empty when the fence is in place with this version's rules.
pub async fn check(client: &Client) -> Vec<String> {
    let read = async {
        let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
        let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
        let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
        let (review, params) = (SelfSubjectReview::default(), PostParams::default());
        let (policy, binding, review) =
            futures::join!(policies.get_opt(POLICY), bindings.get_opt(BINDING), reviews.create(&params, &review));
        let identity = review.ok().and_then(|r| r.status?.user_info?.username);
        Installed { policy: policy.map_err(|e| e.to_string()), binding: binding.map_err(|e| e.to_string()), identity }
    };
    let warnings = match tokio::time::timeout(CHECK_TIMEOUT, read).await {
        Ok(installed) => assess(&installed),
        Err(_) => vec![format!(
            "cannot tell whether the fence is in place: the API server gave no answer within {} s",
            CHECK_TIMEOUT.as_secs()
        )],
    };
    for warning in &warnings {
        warn!(%warning, "fence");
    }
    warnings
}

/// What is wrong with the fence as installed, in words for people.
pub fn assess(installed: &Installed) -> Vec<String> {
    let unfenced = "netcanary's ServiceAccount may create and delete any pod its RBAC allows; apply netcanary's \
                    manifests again (manifests/base/core/fence.yaml)";
    let (policy, binding) = match (&installed.policy, &installed.binding) {
        (Err(error), _) | (_, Err(error)) => {
            return vec![format!(
                "cannot tell whether the fence is in place: {error} (netcanary's ClusterRole grants get on \
                 ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding {POLICY})"
            )];
        }
        (Ok(policy), Ok(binding)) => (policy, binding),
    };
    let missing: Vec<String> = [
        policy.is_none().then(|| format!("ValidatingAdmissionPolicy {POLICY}")),
        binding.is_none().then(|| format!("ValidatingAdmissionPolicyBinding {BINDING}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (Some(policy), Some(binding)) = (policy, binding) else {
        return vec![format!("the fence is not in place: no {}; {unfenced}", missing.join(" and no "))];
    };
    let mut warnings = Vec::new();
    let spec = binding.spec.clone().unwrap_or_default();
    if spec.policy_name.as_deref() != Some(POLICY) {
        warnings.push(format!(
            "the fence is not in place: ValidatingAdmissionPolicyBinding {BINDING} binds {:?}, not {POLICY}; \
             {unfenced}",
            spec.policy_name.unwrap_or_default()
        ));
    }
    let actions = spec.validation_actions.unwrap_or_default();
    if !actions.iter().any(|a| a == "Deny") {
        warnings.push(format!(
            "the fence refuses nothing: ValidatingAdmissionPolicyBinding {BINDING} has validationActions \
             {actions:?}, without Deny; {unfenced}"
        ));
    }
    if spec.param_ref.and_then(|p| p.parameter_not_found_action).as_deref() != Some("Deny") {
        warnings.push(format!(
            "the fence opens when its parameters are missing: ValidatingAdmissionPolicyBinding {BINDING} lacks \
             paramRef.parameterNotFoundAction: Deny"
        ));
    }
    let policy_spec = policy.spec.clone().unwrap_or_default();
    if let Some(user) = &installed.identity {
        let conditions = policy_spec.match_conditions.clone().unwrap_or_default();
        if !conditions.iter().any(|c| c.expression.contains(&format!("\"{user}\""))) {
            warnings.push(format!(
                "the fence does not apply to this run: its matchConditions do not name {user}, whom the API server \
                 knows this run as (a ServiceAccount in another namespace than the manifests name needs the \
                 condition patched)"
            ));
        }
    }
    if policy_spec.failure_policy.as_deref() == Some("Ignore") {
        warnings.push(format!(
            "the fence opens when it cannot be evaluated: ValidatingAdmissionPolicy {POLICY} has failurePolicy \
             Ignore, not Fail"
        ));
    }
    let installed_rules = policy_spec.validations.unwrap_or_default();
    let absent: Vec<Rule> =
        rules().into_iter().filter(|r| !installed_rules.iter().any(|v| v.expression == r.expression)).collect();
    if let Some(first) = absent.first() {
        warnings.push(format!(
            "the fence in the cluster lacks {} of this version's {} rules (the first: \"{}\"); apply this version's \
             manifests",
            absent.len(),
            rules().len(),
            first.message
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::admissionregistration::v1::{
        MatchCondition, ParamRef, ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec,
    };

    use super::*;

    const SA: &str = "system:serviceaccount:netcanary:netcanary";

    fn policy() -> ValidatingAdmissionPolicy {
        let validations = rules().into_iter().map(Rule::into_validation).collect();
        ValidatingAdmissionPolicy {
            spec: Some(ValidatingAdmissionPolicySpec {
                failure_policy: Some("Fail".into()),
                match_conditions: Some(vec![MatchCondition {
                    name: "netcanary-service-accounts".into(),
                    expression: format!("request.userInfo.username in [\"{SA}\"]"),
                }]),
                validations: Some(validations),
                ..ValidatingAdmissionPolicySpec::default()
            }),
            ..ValidatingAdmissionPolicy::default()
        }
    }

    fn binding() -> ValidatingAdmissionPolicyBinding {
        ValidatingAdmissionPolicyBinding {
            spec: Some(ValidatingAdmissionPolicyBindingSpec {
                policy_name: Some(POLICY.into()),
                validation_actions: Some(vec!["Deny".into()]),
                param_ref: Some(ParamRef {
                    name: Some(PARAMS.into()),
                    namespace: Some("netcanary".into()),
                    parameter_not_found_action: Some("Deny".into()),
                    selector: None,
                }),
                match_resources: None,
            }),
            ..ValidatingAdmissionPolicyBinding::default()
        }
    }

    fn installed(
        policy: Option<ValidatingAdmissionPolicy>,
        binding: Option<ValidatingAdmissionPolicyBinding>,
    ) -> Installed {
        Installed { policy: Ok(policy), binding: Ok(binding), identity: Some(SA.into()) }
    }

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
            TARGET_KEY,
            SERVICE_TYPE,
            &NON_ROOT_UID.to_string(),
        ] {
            assert!(all.contains(fact), "no rule checks {fact}");
        }
    }

    #[test]
    fn a_complete_fence_gives_no_warning() {
        assert_eq!(assess(&installed(Some(policy()), Some(binding()))), Vec::<String>::new());
        let unknown = Installed { identity: None, ..installed(Some(policy()), Some(binding())) };
        assert_eq!(assess(&unknown), Vec::<String>::new(), "who the run is, unknown: no guess");
    }

    #[test]
    fn what_is_wrong_with_the_fence() {
        let with_binding = |change: fn(&mut ValidatingAdmissionPolicyBindingSpec)| {
            let mut binding = binding();
            change(binding.spec.as_mut().unwrap());
            installed(Some(policy()), Some(binding))
        };
        let with_policy = |change: fn(&mut ValidatingAdmissionPolicySpec)| {
            let mut policy = policy();
            change(policy.spec.as_mut().unwrap());
            installed(Some(policy), Some(binding()))
        };
        let cases = [
            (
                "no binding",
                installed(Some(policy()), None),
                "not in place: no ValidatingAdmissionPolicyBinding netcanary-fence;",
            ),
            (
                "no policy",
                installed(None, Some(binding())),
                "not in place: no ValidatingAdmissionPolicy netcanary-fence;",
            ),
            (
                "neither",
                installed(None, None),
                "no ValidatingAdmissionPolicy netcanary-fence and no ValidatingAdmissionPolicyBinding",
            ),
            (
                "unreadable",
                Installed { policy: Err("403 forbidden".into()), binding: Ok(Some(binding())), identity: None },
                "cannot tell whether the fence is in place: 403 forbidden",
            ),
            (
                "another user",
                Installed {
                    identity: Some("system:serviceaccount:tools:netcanary".into()),
                    ..installed(Some(policy()), Some(binding()))
                },
                "does not apply to this run: its matchConditions do not name system:serviceaccount:tools:netcanary",
            ),
            ("another policy", with_binding(|s| s.policy_name = Some("other".into())), "binds \"other\""),
            ("audit only", with_binding(|s| s.validation_actions = Some(vec!["Audit".into()])), "refuses nothing"),
            (
                "allowed without parameters",
                with_binding(|s| s.param_ref.as_mut().unwrap().parameter_not_found_action = Some("Allow".into())),
                "opens when its parameters are missing",
            ),
            ("ignoring failures", with_policy(|s| s.failure_policy = Some("Ignore".into())), "failurePolicy Ignore"),
            (
                "an older fence",
                with_policy(|s| {
                    s.validations.as_mut().unwrap().remove(3);
                }),
                "lacks 1 of this version's",
            ),
        ];
        for (case, installed, want) in cases {
            let warnings = assess(&installed);
            assert_eq!(warnings.len(), 1, "{case}: {warnings:?}");
            assert!(warnings[0].contains(want), "{case}: want {want:?} in {warnings:?}");
        }
    }
}
