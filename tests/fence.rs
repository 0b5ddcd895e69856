//! The fence (`manifests/base/core/fence.yaml`): netcanary's ServiceAccount may create only
//! pods shaped like its probe pods and delete only pods that carry its label, although RBAC
//! lets it create and delete any pod.
//!
//! Without a cluster: the shipped policy is the one rendered from the pod builder's constants
//! (`netcanary_orchestrator::fence`), every kustomization that lets a ServiceAccount create or
//! delete pods ships the fence for that ServiceAccount, and the fence's image follows
//! `images:` as the controller's does. On the real kube-apiserver (the fixture), as
//! netcanary's ServiceAccount (impersonated): the pods the real builder makes are admitted,
//! each pod that differs from them in one field is refused with the rule that field breaks,
//! deletions are admitted for netcanary's pods only, and nobody else is affected; the real
//! `netcanary run` creates all its pods through the fence, and says so in its record when the
//! fence is missing.
//!
//! Needs the kube-apiserver fixture (rendering needs only its binary): see
//! `tests/common/kube_fixture.rs` for how the tests skip or fail without it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::bed::{NETCANARY_SA, apply, describe, install_netcanary, objects, run_status, run_without_kubelet};
use common::kube_fixture::{KubeFixture, skip_or_panic};
use common::scratch::ScratchDir;
use common::{read_repo_file, relative, repo_file};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, Validation, Variable,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::{Client, ResourceExt};
use netcanary_orchestrator::fence::{self, BINDING, IMAGE_PARAM, PARAMS, POLICY};
use netcanary_orchestrator::pods::{self, PodSettings};
use netcanary_orchestrator::record;
use netcanary_orchestrator::run::RunOptions;
use netcanary_orchestrator::services;
use netcanary_planner::Mirror;
use netcanary_verify::RunRecord;
use netcanary_wire::{AgentPlan, AgentProbe, ProbeTarget};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_netcanary");
/// The fence as shipped.
const FENCE: &str = "manifests/base/core/fence.yaml";
/// What every denial by the fence starts with.
const DENIED: &str = "ValidatingAdmissionPolicy 'netcanary-fence' with binding 'netcanary-fence' denied request: ";
/// The namespace netcanary is installed into, where the fence's parameters live.
const NAMESPACE: &str = "netcanary";

/// A typed object from the YAML of one of the fence's documents.
fn typed<T: serde::de::DeserializeOwned>(object: &DynamicObject) -> T {
    let value = serde_json::to_value(object).expect("JSON");
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", describe(object)))
}

/// The object of `kind` named `name` among `objects`.
fn find<'a>(objects: &'a [DynamicObject], kind: &str, name: &str) -> Option<&'a DynamicObject> {
    objects.iter().find(|o| o.types.as_ref().is_some_and(|t| t.kind == kind) && o.name_any() == name)
}

/// The shipped fence's three objects.
fn shipped() -> (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, ConfigMap) {
    let all = objects(&read_repo_file(FENCE));
    let get = |kind, name| find(&all, kind, name).unwrap_or_else(|| panic!("{FENCE} has no {kind} {name}"));
    (
        typed(get("ValidatingAdmissionPolicy", POLICY)),
        typed(get("ValidatingAdmissionPolicyBinding", BINDING)),
        typed(get("ConfigMap", PARAMS)),
    )
}

/// The policy's variables and validations as the pod builder's constants render them.
fn rendered() -> (Vec<Variable>, Vec<Validation>) {
    let variables = fence::variables()
        .into_iter()
        .map(|(name, expression)| Variable { name: name.to_string(), expression })
        .collect();
    let validations = fence::rules().into_iter().map(fence::Rule::into_validation).collect();
    (variables, validations)
}

/// The rendered rules as the YAML of the policy's `spec` (two spaces in), to paste into
/// the manifest; long expressions are folded at spaces, which YAML reads back as one line.
fn rendered_yaml() -> String {
    fn folded(text: &str, indent: usize) -> String {
        let width = 100 - indent;
        let mut lines: Vec<String> = vec![String::new()];
        for word in text.split(' ') {
            let line = lines.last_mut().expect("a line");
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(word.to_string());
            } else {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
        }
        let pad = " ".repeat(indent);
        format!(">-\n{}", lines.iter().map(|l| format!("{pad}{l}\n")).collect::<String>())
    }
    let quoted = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let (variables, validations) = rendered();
    let mut out = String::from("  variables:\n");
    for variable in variables {
        out += &format!("    - name: {}\n      expression: {}", variable.name, folded(&variable.expression, 8));
    }
    out += "  validations:\n";
    for validation in validations {
        out += &format!("    - expression: {}", folded(&validation.expression, 8));
        out += &format!("      message: {}\n", quoted(validation.message.as_deref().unwrap_or_default()));
        if let Some(expression) = &validation.message_expression {
            out += &format!("      messageExpression: {}", folded(expression, 8));
        }
        out += &format!("      reason: {}\n", validation.reason.as_deref().unwrap_or_default());
    }
    out
}

#[test]
fn the_shipped_fence_is_rendered_from_the_pod_builder() {
    let (variables, validations) = rendered();
    // What is printed to paste reads back as what the code renders.
    let pasted: Value = serde_norway::from_str(&format!("spec:\n{}", rendered_yaml())).expect("the rendered YAML");
    assert_eq!(pasted["spec"]["validations"], serde_json::to_value(&validations).unwrap(), "the YAML renderer");
    assert_eq!(pasted["spec"]["variables"], serde_json::to_value(&variables).unwrap(), "the YAML renderer");

    let (policy, binding, params) = shipped();
    let spec = policy.spec.expect("the policy's spec");
    if spec.validations.as_ref() != Some(&validations) || spec.variables.as_ref() != Some(&variables) {
        let shipped: BTreeSet<String> =
            spec.validations.iter().flatten().map(|v| v.message.clone().unwrap_or_default()).collect();
        let changed: Vec<&str> = validations
            .iter()
            .filter(|v| !spec.validations.iter().flatten().any(|s| s == *v))
            .map(|v| v.message.as_deref().unwrap_or_default())
            .collect();
        panic!(
            "{FENCE}: the policy's rules differ from those the pod builder renders (rules not shipped as \
             rendered: {changed:?}; shipped messages: {shipped:?}). Replace its `variables:` and `validations:` \
             with:\n{}",
            rendered_yaml()
        );
    }
    assert_eq!(spec.failure_policy.as_deref(), Some("Fail"), "{FENCE}: a fence that cannot judge must refuse");
    let param_kind = spec.param_kind.expect("paramKind");
    assert_eq!((param_kind.api_version.as_deref(), param_kind.kind.as_deref()), (Some("v1"), Some("ConfigMap")));
    let constraints = spec.match_constraints.expect("matchConstraints");
    let resource_rules = constraints.resource_rules.expect("resourceRules");
    assert_eq!(resource_rules.len(), 1, "{FENCE}: one resource rule");
    let rule = &resource_rules[0];
    assert_eq!(rule.api_groups.as_deref(), Some(&[String::new()][..]), "{FENCE}: core pods");
    assert_eq!(
        rule.resources.as_deref(),
        Some(&["pods".to_string(), "services".to_string()][..]),
        "{FENCE}: pods and Services"
    );
    assert_eq!(
        rule.operations.as_deref(),
        Some(&["CREATE".to_string(), "DELETE".to_string()][..]),
        "{FENCE}: what RBAC grants netcanary on pods beyond reading"
    );

    let binding = binding.spec.expect("the binding's spec");
    assert_eq!(binding.policy_name.as_deref(), Some(POLICY));
    assert_eq!(binding.validation_actions, Some(vec!["Deny".to_string()]), "{FENCE}: the binding denies");
    let param_ref = binding.param_ref.expect("paramRef");
    assert_eq!(param_ref.name.as_deref(), Some(PARAMS));
    assert_eq!(param_ref.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(param_ref.parameter_not_found_action.as_deref(), Some("Deny"), "{FENCE}: no parameters, no pods");
    assert_eq!(params.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert!(params.data.unwrap_or_default().contains_key(IMAGE_PARAM), "{FENCE}: the image parameter");
}

/// Every kustomization under `manifests/` (Components render inside those that use them).
fn kustomizations(dir: &Path, found: &mut Vec<String>) {
    let absolute = repo_file(dir);
    if let Ok(text) = std::fs::read_to_string(absolute.join("kustomization.yaml"))
        && !text.contains("kind: Component")
    {
        found.push(dir.display().to_string());
    }
    for entry in std::fs::read_dir(&absolute).unwrap_or_else(|e| panic!("read {}: {e}", absolute.display())) {
        let entry = entry.expect("a directory entry");
        if entry.file_type().expect("a file type").is_dir() {
            kustomizations(&dir.join(entry.file_name()), found);
        }
    }
}

/// Whether RBAC rules grant creating or deleting pods.
fn grants_pods(rules: &Value) -> bool {
    let has = |rule: &Value, field: &str, wanted: &[&str]| {
        rule[field].as_array().is_some_and(|values| values.iter().any(|v| wanted.iter().any(|w| v == w)))
    };
    rules.as_array().into_iter().flatten().any(|rule| {
        has(rule, "apiGroups", &["", "*"])
            && has(rule, "resources", &["pods", "services", "*"])
            && has(rule, "verbs", &["create", "delete", "deletecollection", "*"])
    })
}

/// The ServiceAccounts (as RBAC names them) that `objects` let create or delete pods.
fn pod_writers(objects: &[DynamicObject]) -> BTreeSet<String> {
    let kind = |o: &DynamicObject| o.types.as_ref().map_or(String::new(), |t| t.kind.clone());
    let mut writers = BTreeSet::new();
    for binding in objects.iter().filter(|o| ["RoleBinding", "ClusterRoleBinding"].contains(&kind(o).as_str())) {
        let role = &binding.data["roleRef"];
        let (role_kind, role_name) = (role["kind"].as_str().unwrap_or(""), role["name"].as_str().unwrap_or(""));
        let role_namespace = if role_kind == "Role" { binding.namespace() } else { None };
        let granted = ["cluster-admin", "admin", "edit"].contains(&role_name)
            || objects.iter().any(|o| {
                kind(o) == role_kind && o.name_any() == role_name && o.namespace() == role_namespace && {
                    grants_pods(&o.data["rules"])
                }
            });
        if !granted {
            continue;
        }
        for subject in binding.data["subjects"].as_array().into_iter().flatten() {
            if subject["kind"] == "ServiceAccount" {
                let namespace = subject["namespace"].as_str().map(String::from).or(binding.namespace());
                writers.insert(format!(
                    "system:serviceaccount:{}:{}",
                    namespace.unwrap_or_default(),
                    subject["name"].as_str().unwrap_or("")
                ));
            }
        }
    }
    writers
}

#[test]
fn every_service_account_that_may_create_or_delete_pods_is_fenced() {
    let test = "every_service_account_that_may_create_or_delete_pods_is_fenced";
    let mut dirs = Vec::new();
    kustomizations(Path::new("manifests"), &mut dirs);
    let mut fenced = 0;
    for dir in &dirs {
        let Some(yaml) = KubeFixture::kustomize(&repo_file(dir)).map_or_else(|e| skip_or_panic(test, e), Some) else {
            return;
        };
        let rendered = objects(&yaml);
        let writers = pod_writers(&rendered);
        if writers.is_empty() {
            continue;
        }
        let policy: ValidatingAdmissionPolicy = typed(
            find(&rendered, "ValidatingAdmissionPolicy", POLICY)
                .unwrap_or_else(|| panic!("{dir}: lets {writers:?} create or delete pods, without the fence")),
        );
        for (kind, name) in [("ValidatingAdmissionPolicyBinding", BINDING), ("ConfigMap", PARAMS)] {
            assert!(find(&rendered, kind, name).is_some(), "{dir}: the fence without its {kind} {name}");
        }
        let conditions = policy.spec.and_then(|s| s.match_conditions).unwrap_or_default();
        for writer in &writers {
            assert!(
                conditions.iter().any(|c| c.expression.contains(&format!("\"{writer}\""))),
                "{dir}: {writer} may create or delete pods, and the fence's matchConditions do not name it: \
                 {conditions:?}"
            );
        }
        eprintln!("{dir}: fenced {writers:?}");
        fenced += 1;
    }
    assert!(fenced >= 5, "the top level, base and every overlay ship netcanary's RBAC; only {fenced} fenced");
    assert!(pod_writers(&objects(&read_repo_file("manifests/base/core/rbac.yaml"))).contains(NETCANARY_SA));
}

/// The image the fence's parameters admit, in a rendered kustomization.
fn fenced_image(objects: &[DynamicObject], dir: &str) -> String {
    let params = find(objects, "ConfigMap", PARAMS).unwrap_or_else(|| panic!("{dir}: no ConfigMap {PARAMS}"));
    params.data["data"][IMAGE_PARAM].as_str().unwrap_or_else(|| panic!("{dir}: no data.{IMAGE_PARAM}")).to_string()
}

#[test]
fn the_fence_admits_the_image_the_manifests_deploy() {
    let test = "the_fence_admits_the_image_the_manifests_deploy";
    let render = |dir: &Path| KubeFixture::kustomize(dir).map_or_else(|e| skip_or_panic(test, e), Some);
    // What `run` starts probe pods from by default, and what the shipped controllers set.
    let release = RunOptions::default().image;
    let Some(install) = render(&repo_file("manifests")) else { return };
    let install = objects(&install);
    assert_eq!(fenced_image(&install, "manifests"), release, "manifests: the fence admits this release");
    let cronjob = find(&install, "CronJob", "netcanary").expect("the CronJob");
    let container = &cronjob.data["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], release.as_str(), "manifests: the CronJob runs this release");
    let ci = objects(&render(&repo_file("manifests/overlays/ci")).expect("rendered"));
    assert_eq!(fenced_image(&ci, "manifests/overlays/ci"), release, "the CI overlay admits this release");
    let verify = objects(&read_repo_file("manifests/jobs/verify.yaml"));
    let job = &verify[0].data["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(job["image"], release.as_str(), "manifests/jobs/verify.yaml runs what the CI overlay admits");

    // A user's overlay of the install that mirrors and pins the image, and one of the CI
    // overlay that moves the tag: `images:` moves the fence with the controller.
    let scratch = ScratchDir::new(test);
    let mirrored =
        "registry.example.com/mirror/netcanary@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let (name, digest) = mirrored.split_once('@').expect("a digest");
    for (base, image_entry, want) in [
        ("manifests", format!("{{name: ghcr.io/netcanary/netcanary, newName: {name}, digest: {digest}}}"), mirrored),
        (
            "manifests/overlays/ci",
            "{name: ghcr.io/netcanary/netcanary, newTag: 9.9.9}".to_string(),
            "ghcr.io/netcanary/netcanary:9.9.9",
        ),
    ] {
        let overlay = scratch.path().join(base.replace('/', "-"));
        std::fs::create_dir_all(&overlay).expect("create the overlay's directory");
        // kustomize takes a base only by a relative path.
        let base_path = relative(&overlay, &repo_file(base));
        let kustomization = format!("resources: [{}]\nimages:\n  - {image_entry}\n", base_path.display());
        std::fs::write(overlay.join("kustomization.yaml"), kustomization).expect("write the overlay");
        let customised = objects(&render(&overlay).expect("rendered"));
        assert_eq!(fenced_image(&customised, base), want, "an overlay of {base} with `images:`");
        if let Some(cronjob) = find(&customised, "CronJob", "netcanary") {
            let container = &cronjob.data["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
            let probe_image = container["env"].as_array().expect("env").iter().find(|e| e["name"] == "NETCANARY_IMAGE");
            assert_eq!(probe_image.expect("NETCANARY_IMAGE")["value"], want, "the probe pods' image");
        }
    }
}

/// The cluster with netcanary installed as the CI overlay installs it (CRD, namespace, RBAC,
/// fence), the namespaces `namespaces` with their `default` ServiceAccount (no controller
/// makes it here, and pod admission insists on it), and the fence in force.
async fn install(kube: &KubeFixture, namespaces: &[&str]) -> Client {
    let admin = kube.client().await;
    install_netcanary(&admin).await;
    for namespace in namespaces.iter().filter(|n| **n != NAMESPACE) {
        apply(&admin, &format!("{{apiVersion: v1, kind: Namespace, metadata: {{name: {namespace}}}}}")).await;
    }
    for namespace in namespaces.iter().chain(&[NAMESPACE]) {
        apply(
            &admin,
            &format!("{{apiVersion: v1, kind: ServiceAccount, metadata: {{name: default, namespace: {namespace}}}}}"),
        )
        .await;
    }
    wait_for_the_fence(&kube.client_as(NETCANARY_SA).await, namespaces[0], DENIED).await;
    admin
}

/// Waits until a pod netcanary never builds is refused in `namespace` (one without Pod
/// Security, which would refuse it first) with `want` in the refusal: the API server puts a
/// new policy, binding or parameter in force a moment after it is written.
async fn wait_for_the_fence(netcanary: &Client, namespace: &str, want: &str) {
    let pods: Api<Pod> = Api::namespaced(netcanary.clone(), namespace);
    let plain: Pod = serde_json::from_value(json!({
        "metadata": {"name": "netcanary-fence-check"},
        "spec": {"containers": [{"name": "c", "image": "example/app"}]}
    }))
    .expect("a pod");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = pods.create(&dry_run(), &plain).await;
        match &answer {
            Err(kube::Error::Api(status)) if status.message.contains(want) => return,
            _ if Instant::now() > deadline => panic!("the fence not in force within 30 s: {answer:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn dry_run() -> PostParams {
    PostParams { dry_run: true, ..PostParams::default() }
}

/// The message of the one rule whose message contains `part`.
fn rule(part: &str) -> String {
    let matching: Vec<String> = fence::rules().into_iter().map(|r| r.message).filter(|m| m.contains(part)).collect();
    assert_eq!(matching.len(), 1, "rules whose message contains {part:?}: {matching:?}");
    matching[0].clone()
}

/// `Ok` when admitted; else the refusal's code and message.
fn answer<T>(result: Result<T, kube::Error>) -> Result<(), String> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(format!("{} {}", status.code, status.message)),
        Err(error) => Err(error.to_string()),
    }
}

/// Whether `answer` is the fence's refusal for the rule with `message`.
fn refused_by(answer: &Result<(), String>, message: &str) -> bool {
    answer.as_ref().is_err_and(|e| e.starts_with("403 ") && e.ends_with(&format!("{DENIED}{message}")))
}

/// A change to a pod (as JSON), named, with the refusal it must meet.
type Mutation = (&'static str, Box<dyn Fn(&mut Value)>, String);

/// A mirror as the planner makes them: a class's policy-relevant labels in its namespace.
fn mirror(namespace: &str, labels: &[(&str, &str)], listen: &[&str]) -> Mirror {
    Mirror {
        class: 0,
        namespace: namespace.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        dropped_labels: Vec::new(),
        stands_for: format!("{namespace}/web-0"),
        workload: "web".into(),
        members: 2,
        listen: listen.iter().map(|p| p.parse().expect("PORT/PROTOCOL")).collect(),
        // Target pods name the ports they mirror, as the workload does.
        port_names: listen.iter().take(1).map(|p| (p.parse().expect("PORT/PROTOCOL"), "http".to_string())).collect(),
    }
}

#[tokio::test]
async fn the_fence_admits_probe_pods_and_refuses_every_other_pod() {
    let test = "the_fence_admits_probe_pods_and_refuses_every_other_pod";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let admin = install(&kube, &["shop"]).await;
    let netcanary = kube.client_as(NETCANARY_SA).await;
    let shop = Api::<Pod>::namespaced(netcanary.clone(), "shop");
    apply(
        &admin,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: example/web}]}
---
apiVersion: v1
kind: Pod
metadata: {name: lookalike-0, namespace: shop, labels: {app.kubernetes.io/managed-by: someone-else}}
spec: {containers: [{name: web, image: example/web}]}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: netcanary-test-high}
value: 1000000
"#,
    )
    .await;

    // What netcanary's ServiceAccount could do with RBAC alone (the manifests applied, no
    // fence): delete a pod it never made, start a plain pod, start a privileged host-network
    // pod wearing netcanary's labels.
    let privileged: Pod = serde_json::from_value(json!({
        "metadata": {"name": "lookalike", "labels": {"app.kubernetes.io/managed-by": "netcanary", "netcanary.io/run-id": "x"}},
        "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "example/tools", "securityContext": {"privileged": true}}]}
    }))
    .expect("a pod");
    let plain: Pod = serde_json::from_value(json!({
        "metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": "example/app"}]}
    }))
    .expect("a pod");
    let delete = DeleteParams { dry_run: true, ..DeleteParams::default() };
    let attacks = [
        ("delete a pod it never made", answer(shop.delete("web-0", &delete).await), rule("may delete only")),
        (
            "create a plain pod",
            answer(shop.create(&dry_run(), &plain).await),
            rule("be labelled app.kubernetes.io/managed-by"),
        ),
        (
            "create a privileged host-network pod with netcanary's labels",
            answer(shop.create(&dry_run(), &privileged).await),
            rule("ownerReference"),
        ),
        (
            "delete a pod labelled by someone else",
            answer(shop.delete("lookalike-0", &delete).await),
            rule("may delete only"),
        ),
    ];
    for (what, answer, message) in &attacks {
        eprintln!("{what}: {answer:?}");
        assert!(refused_by(answer, message), "{what}: want the fence's refusal {message:?}, got {answer:?}");
    }

    // The pods the real builder makes, with the settings a run uses: admitted.
    let options = RunOptions::default();
    let owner = record::create(&netcanary, "fencetest", 1.0e9, options.planner.timing.deadline)
        .await
        .expect("create a NetcanaryRun");
    let settings = |spread| PodSettings {
        image: options.image.clone(),
        run_id: "fencetest".into(),
        owner: owner.clone(),
        deadline_seconds: options.planner.timing.deadline.as_secs() as i64,
        spread_across_nodes: spread,
    };
    let web = mirror("shop", &[("app", "web"), ("tier", "front")], &["8080/TCP", "53/UDP", "53/TCP", "80/TCP"]);
    let canary = mirror(NAMESPACE, &[], &["8080/TCP"]);
    let plan = AgentPlan {
        timeout_ms: 2000,
        concurrency: None,
        delay_ms: None,
        probes: vec![AgentProbe::new("1".into(), ProbeTarget::Tcp { host: "10.0.0.2".into(), port: 80 })],
    };
    let built = [
        pods::target(&settings(false), 0, &web),
        pods::target(&settings(true), 1, &web),
        pods::source(&settings(false), "netcanary-fencetest-s0r0", &web, &plan).unwrap(),
        pods::target(&settings(false), 2, &canary),
        pods::source(&settings(false), "netcanary-fencetest-s3r1", &canary, &plan).unwrap(),
    ];
    for pod in &built {
        let api = Api::<Pod>::namespaced(netcanary.clone(), &pod.namespace().expect("a namespace"));
        let answer = answer(api.create(&dry_run(), pod).await);
        assert_eq!(answer, Ok(()), "the builder's pod {}/{} refused", pod.namespace().unwrap(), pod.name_any());
    }

    // One field changed at a time, each refused for the rule it breaks.
    let image_rule =
        format!("every container of a probe pod must run {}, the image in the fence parameters", options.image);
    let container = "/spec/containers/0";
    let mutations: Vec<Mutation> = vec![
        (
            // The API server refuses the builder's network sysctl in the host's network.
            "hostNetwork",
            Box::new(|p| {
                p["spec"]["hostNetwork"] = json!(true);
                p["spec"]["securityContext"].as_object_mut().unwrap().remove("sysctls");
            }),
            rule("host's network"),
        ),
        ("hostPID", Box::new(|p| p["spec"]["hostPID"] = json!(true)), rule("host's network")),
        ("hostIPC", Box::new(|p| p["spec"]["hostIPC"] = json!(true)), rule("host's network")),
        (
            "privileged",
            Box::new(move |p| {
                let security = p.pointer_mut(&format!("{container}/securityContext")).unwrap();
                security["privileged"] = json!(true);
                security.as_object_mut().unwrap().remove("allowPrivilegeEscalation");
            }),
            rule("may be privileged"),
        ),
        (
            "allowPrivilegeEscalation",
            Box::new(move |p| {
                p.pointer_mut(container).unwrap()["securityContext"]["allowPrivilegeEscalation"] = json!(true)
            }),
            rule("allowPrivilegeEscalation"),
        ),
        (
            "a capability added",
            Box::new(move |p| {
                p.pointer_mut(container).unwrap()["securityContext"]["capabilities"]["add"] = json!(["NET_ADMIN"])
            }),
            rule("capabilities"),
        ),
        (
            "capabilities not dropped",
            Box::new(move |p| p.pointer_mut(container).unwrap()["securityContext"]["capabilities"] = json!({})),
            rule("capabilities"),
        ),
        (
            "another image",
            Box::new(move |p| p.pointer_mut(container).unwrap()["image"] = json!("example/tools:1")),
            image_rule.clone(),
        ),
        (
            "an init container of another image",
            Box::new(move |p| {
                let mut init = p.pointer(container).unwrap().clone();
                init["name"] = json!("init");
                init["image"] = json!("example/tools:1");
                p["spec"]["initContainers"] = json!([init]);
            }),
            image_rule.clone(),
        ),
        (
            "automountServiceAccountToken true",
            Box::new(|p| p["spec"]["automountServiceAccountToken"] = json!(true)),
            rule("ServiceAccount token"),
        ),
        (
            "automountServiceAccountToken unset",
            Box::new(|p| {
                p["spec"].as_object_mut().unwrap().remove("automountServiceAccountToken");
            }),
            rule("ServiceAccount token"),
        ),
        (
            "a projected token volume",
            Box::new(|p| {
                p["spec"]["volumes"] =
                    json!([{"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}])
            }),
            rule("no volumes"),
        ),
        (
            "a hostPath volume",
            Box::new(|p| p["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}])),
            rule("no volumes"),
        ),
        (
            "an emptyDir volume",
            Box::new(|p| p["spec"]["volumes"] = json!([{"name": "tmp", "emptyDir": {}}])),
            rule("no volumes"),
        ),
        (
            "a host port",
            Box::new(move |p| {
                p.pointer_mut(container).unwrap()["ports"] = json!([{"containerPort": 8080, "hostPort": 8080}])
            }),
            rule("host port"),
        ),
        (
            "no managed-by label",
            Box::new(|p| {
                p["metadata"]["labels"].as_object_mut().unwrap().remove("app.kubernetes.io/managed-by");
            }),
            rule("be labelled app.kubernetes.io/managed-by"),
        ),
        (
            "another managed-by",
            Box::new(|p| p["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("helm")),
            rule("be labelled app.kubernetes.io/managed-by"),
        ),
        (
            "no run-id label",
            Box::new(|p| {
                p["metadata"]["labels"].as_object_mut().unwrap().remove("netcanary.io/run-id");
            }),
            rule("labelled netcanary.io/run-id"),
        ),
        (
            "no owner",
            Box::new(|p| {
                p["metadata"].as_object_mut().unwrap().remove("ownerReferences");
            }),
            rule("ownerReference"),
        ),
        (
            "a non-controller owner",
            Box::new(|p| p["metadata"]["ownerReferences"][0]["controller"] = json!(false)),
            rule("ownerReference"),
        ),
        (
            "an owner of another kind",
            Box::new(|p| {
                p["metadata"]["ownerReferences"][0]["apiVersion"] = json!("apps/v1");
                p["metadata"]["ownerReferences"][0]["kind"] = json!("ReplicaSet");
            }),
            rule("ownerReference"),
        ),
        (
            "a second owner",
            Box::new(|p| {
                let mut other = p["metadata"]["ownerReferences"][0].clone();
                other["controller"] = json!(false);
                other["name"] = json!("another-run");
                other["uid"] = json!("00000000-0000-4000-8000-000000000002");
                p["metadata"]["ownerReferences"].as_array_mut().unwrap().push(other);
            }),
            rule("ownerReference"),
        ),
        (
            "no readiness gate",
            Box::new(|p| {
                p["spec"].as_object_mut().unwrap().remove("readinessGates");
            }),
            rule("readiness gate"),
        ),
        (
            "no limits",
            Box::new(move |p| {
                p.pointer_mut(&format!("{container}/resources")).unwrap().as_object_mut().unwrap().remove("limits");
            }),
            rule("limits"),
        ),
        (
            "a larger memory limit",
            Box::new(move |p| {
                let resources = p.pointer_mut(&format!("{container}/resources")).unwrap();
                resources["limits"]["memory"] = json!("1Gi");
            }),
            rule("limits"),
        ),
        (
            "no activeDeadlineSeconds",
            Box::new(|p| {
                p["spec"].as_object_mut().unwrap().remove("activeDeadlineSeconds");
            }),
            rule("activeDeadlineSeconds"),
        ),
        (
            "runAsNonRoot false",
            Box::new(|p| p["spec"]["securityContext"]["runAsNonRoot"] = json!(false)),
            rule("non-root"),
        ),
        (
            "a container with runAsNonRoot false",
            Box::new(move |p| p.pointer_mut(container).unwrap()["securityContext"]["runAsNonRoot"] = json!(false)),
            rule("non-root"),
        ),
        ("runAsUser 0", Box::new(|p| p["spec"]["securityContext"]["runAsUser"] = json!(0)), rule("non-root")),
        (
            "a writable root filesystem",
            Box::new(move |p| {
                p.pointer_mut(container).unwrap()["securityContext"]["readOnlyRootFilesystem"] = json!(false)
            }),
            rule("read-only"),
        ),
        (
            "seccomp Unconfined",
            Box::new(|p| p["spec"]["securityContext"]["seccompProfile"]["type"] = json!("Unconfined")),
            rule("seccomp"),
        ),
        (
            "SELinux type spc_t",
            Box::new(|p| p["spec"]["securityContext"]["seLinuxOptions"] = json!({"type": "spc_t"})),
            rule("SELinux"),
        ),
        (
            "AppArmor Unconfined",
            Box::new(move |p| {
                p.pointer_mut(container).unwrap()["securityContext"]["appArmorProfile"] = json!({"type": "Unconfined"})
            }),
            rule("SELinux"),
        ),
        (
            "another sysctl",
            Box::new(|p| {
                p["spec"]["securityContext"]["sysctls"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "kernel.shm_rmid_forced", "value": "1"}))
            }),
            rule("sysctl"),
        ),
        (
            "a priority class above 0",
            Box::new(|p| p["spec"]["priorityClassName"] = json!("netcanary-test-high")),
            rule("priority"),
        ),
    ];
    let base = serde_json::to_value(&built[0]).expect("JSON");
    let mut wrong = Vec::new();
    for (what, mutate, message) in &mutations {
        let mut pod = base.clone();
        mutate(&mut pod);
        let pod: Pod = serde_json::from_value(pod).expect("a pod");
        let answer = answer(shop.create(&dry_run(), &pod).await);
        eprintln!("{what}: {answer:?}");
        if !refused_by(&answer, message) {
            wrong.push(format!("  {what}: want the fence's refusal {message:?}, got {answer:?}"));
        }
        // The same pod from anyone else: the fence stays out of it (the namespace's own
        // admission decides, and it admits everything here).
        assert_eq!(answer_as_admin(&admin, &pod).await, Ok(()), "{what}: the admin's pod must not meet the fence");
    }
    assert!(wrong.is_empty(), "the fence answers one-field changes of a probe pod wrongly:\n{}", wrong.join("\n"));

    // Deleting: netcanary's own pods only; anyone else as RBAC allows.
    let labelled: Pod = serde_json::from_value(json!({
        "metadata": {"name": "netcanary-old-t0", "labels": {"app.kubernetes.io/managed-by": "netcanary", "netcanary.io/run-id": "old"}},
        "spec": {"containers": [{"name": "netcanary", "image": "example/anything"}]}
    }))
    .expect("a pod");
    Api::<Pod>::namespaced(admin.clone(), "shop").create(&PostParams::default(), &labelled).await.expect("create");
    assert_eq!(answer(shop.delete("netcanary-old-t0", &DeleteParams::default()).await), Ok(()), "deleting its own pod");
    assert_eq!(
        answer(Api::<Pod>::namespaced(admin.clone(), "shop").delete("web-0", &delete).await),
        Ok(()),
        "the admin deletes what it likes"
    );
    apply(
        &admin,
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: deployer, namespace: shop}
rules: [{apiGroups: [""], resources: [pods], verbs: [create, delete]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}
subjects: [{kind: ServiceAccount, name: deployer, namespace: shop}]
"#,
    )
    .await;
    let deployer = Api::<Pod>::namespaced(kube.client_as("system:serviceaccount:shop:deployer").await, "shop");
    assert_eq!(answer(deployer.create(&dry_run(), &plain).await), Ok(()), "another ServiceAccount's plain pod");
    assert_eq!(answer(deployer.delete("web-0", &delete).await), Ok(()), "another ServiceAccount deletes a pod");
}

/// The Service the builder puts in front of a target pod is admitted; a Service that could
/// select a workload's pods, or reach beyond the cluster, is refused, and so is deleting a
/// Service netcanary never made.
#[tokio::test]
async fn the_fence_admits_target_services_and_refuses_every_other_service() {
    let test = "the_fence_admits_target_services_and_refuses_every_other_service";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let admin = install(&kube, &["shop"]).await;
    let netcanary = kube.client_as(NETCANARY_SA).await;
    let shop = Api::<Service>::namespaced(netcanary.clone(), "shop");
    apply(&admin, "{apiVersion: v1, kind: Service, metadata: {name: web, namespace: shop}, spec: {selector: {app: web}, ports: [{port: 80}]}}").await;

    let options = RunOptions::default();
    let owner = record::create(&netcanary, "fencesvc", 1.0e9, options.planner.timing.deadline)
        .await
        .expect("create a NetcanaryRun");
    let settings = PodSettings {
        image: options.image.clone(),
        run_id: "fencesvc".into(),
        owner,
        deadline_seconds: 60,
        spread_across_nodes: false,
    };
    let web = mirror("shop", &[("app", "web")], &["8080/TCP", "53/UDP"]);
    let built = services::target_service(&settings, "netcanary-fencesvc-t0", &web);
    assert_eq!(answer(shop.create(&dry_run(), &built).await), Ok(()), "the builder's Service refused");

    let selects_the_workload = rule("select one probe pod of its own run");
    let mutations: Vec<Mutation> = vec![
        (
            "a selector on the workload's labels",
            Box::new(|s| s["spec"]["selector"] = json!({"app": "web"})),
            selects_the_workload.clone(),
        ),
        (
            "netcanary's labels but no target in the selector",
            Box::new(|s| {
                s["spec"]["selector"].as_object_mut().unwrap().remove("netcanary.io/target");
            }),
            selects_the_workload.clone(),
        ),
        (
            "another run's pods",
            Box::new(|s| s["spec"]["selector"]["netcanary.io/run-id"] = json!("other")),
            selects_the_workload.clone(),
        ),
        (
            "no selector (endpoints written by hand)",
            Box::new(|s| {
                s["spec"].as_object_mut().unwrap().remove("selector");
            }),
            selects_the_workload,
        ),
        ("type NodePort", Box::new(|s| s["spec"]["type"] = json!("NodePort")), rule("of type ClusterIP")),
        ("type LoadBalancer", Box::new(|s| s["spec"]["type"] = json!("LoadBalancer")), rule("of type ClusterIP")),
        ("an external IP", Box::new(|s| s["spec"]["externalIPs"] = json!(["192.0.2.10"])), rule("of type ClusterIP")),
        (
            "no owner",
            Box::new(|s| {
                s["metadata"].as_object_mut().unwrap().remove("ownerReferences");
            }),
            rule("or Service must have exactly one ownerReference"),
        ),
        (
            "no managed-by label",
            Box::new(|s| {
                s["metadata"]["labels"].as_object_mut().unwrap().remove("app.kubernetes.io/managed-by");
            }),
            rule("or Service must be labelled app.kubernetes.io/managed-by"),
        ),
    ];
    let base = serde_json::to_value(&built).expect("JSON");
    let mut wrong = Vec::new();
    for (what, mutate, message) in &mutations {
        let mut service = base.clone();
        mutate(&mut service);
        let service: Service = serde_json::from_value(service).expect("a Service");
        let got = answer(shop.create(&dry_run(), &service).await);
        eprintln!("{what}: {got:?}");
        if !refused_by(&got, message) {
            wrong.push(format!("  {what}: want the fence's refusal {message:?}, got {got:?}"));
        }
        // Anyone else's Service: the fence stays out of it.
        let admins = Api::<Service>::namespaced(admin.clone(), "shop");
        assert_eq!(answer(admins.create(&dry_run(), &service).await), Ok(()), "{what}: the admin's Service");
    }
    assert!(wrong.is_empty(), "the fence answers one-field changes of a Service wrongly:\n{}", wrong.join("\n"));

    // Deleting: its own Service only.
    let delete = DeleteParams { dry_run: true, ..DeleteParams::default() };
    assert!(
        refused_by(&answer(shop.delete("web", &delete).await), &rule("may delete only")),
        "deleting a workload's Service"
    );
    shop.create(&PostParams::default(), &built).await.expect("netcanary creates its Service");
    assert_eq!(
        answer(shop.delete("netcanary-fencesvc-t0", &DeleteParams::default()).await),
        Ok(()),
        "deleting its own"
    );
}

async fn answer_as_admin(admin: &Client, pod: &Pod) -> Result<(), String> {
    answer(Api::<Pod>::namespaced(admin.clone(), &pod.namespace().expect("a namespace")).create(&dry_run(), pod).await)
}

/// An app whose policy the plan probes: targets and sources in both namespaces, DNS and
/// the canary in netcanary's.
const APP: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: prod, labels: {app: api}}
spec: {containers: [{name: api, image: example/api, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: dev, labels: {app: web}}
spec: {containers: [{name: web, image: example/web, ports: [{containerPort: 80}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-dev, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dev}}}]
      ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec: {clusterIP: 10.96.0.10, selector: {k8s-app: kube-dns}, ports: [{name: dns, port: 53, protocol: UDP}]}
"#;

/// [`run_without_kubelet`] as netcanary's ServiceAccount.
fn run(kube: &KubeFixture) -> RunRecord {
    run_without_kubelet(&kube.kubeconfig_as(NETCANARY_SA), &[])
}

#[tokio::test]
async fn a_real_run_passes_the_fence_and_records_when_it_is_missing() {
    let test = "a_real_run_passes_the_fence_and_records_when_it_is_missing";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let admin = install(&kube, &["prod", "dev"]).await;
    apply(&admin, APP).await;

    // With the fence: every pod of the run is created (none starts, which is each pod's
    // problem), and the run notices nothing amiss with the fence.
    let ran = run(&kube);
    assert!(ran.warnings.is_empty(), "the fence is in place: {:?}", ran.warnings);
    let refused: Vec<&String> =
        ran.problems.iter().filter(|p| p.contains("create pod") || p.contains(DENIED)).collect();
    assert!(refused.is_empty(), "the fence refused pods the run built: {refused:#?}");
    let never_ran = |part: &str| ran.problems.iter().filter(|p| p.contains("did not run") && p.contains(part)).count();
    for (namespace, role) in [("prod", "-t"), ("dev", "-s"), ("prod", "-s"), (NAMESPACE, "-t"), (NAMESPACE, "-s")] {
        assert!(
            never_ran(&format!("pod {namespace}/netcanary-{}{role}", ran.run_id)) > 0,
            "no {role} pod of the run in {namespace} was created: {:#?}",
            ran.problems
        );
    }
    assert_eq!(run_status(&admin, &ran.run_id).await["warnings"], json!([]), "no warnings in the NetcanaryRun");

    // Run by someone the fence does not name (here the admin), nothing fences the run: it
    // says so.
    let ran = run_without_kubelet(kube.kubeconfig_path(), &[]);
    let want = "the fence does not apply to this run: its matchConditions do not name netcanary-admin";
    assert!(ran.warnings.len() == 1 && ran.warnings[0].starts_with(want), "want {want:?}, got {:?}", ran.warnings);

    // Without its parameters the fence refuses every pod netcanary creates: the run says
    // which, in the API server's words, and creates nothing. With them back, it runs again.
    let params: Api<ConfigMap> = Api::namespaced(admin.clone(), NAMESPACE);
    params.delete(PARAMS, &DeleteParams::default()).await.expect("delete the fence's parameters");
    let no_params = "no params found for policy binding with `Deny` parameterNotFoundAction";
    wait_for_the_fence(&kube.client_as(NETCANARY_SA).await, "prod", no_params).await;
    let ran = run(&kube);
    assert!(ran.warnings.is_empty(), "the fence is there: {:?}", ran.warnings);
    assert!(
        ran.problems.iter().any(|p| p.contains("create pod") && p.contains(no_params)),
        "want a problem naming the refused pod and the missing parameters: {:#?}",
        ran.problems
    );
    apply(&admin, &read_repo_file(FENCE)).await;
    wait_for_the_fence(&kube.client_as(NETCANARY_SA).await, "prod", DENIED).await;

    // Without its binding the policy is in force nowhere; without the policy, the binding
    // binds nothing. Either way the run warns, records it, and still verifies. (Last: once
    // the last binding with ConfigMap parameters is gone, the API server stops following
    // ConfigMaps for admission policies until it restarts, kubernetes/kubernetes#133827.)
    let fence_yaml = read_repo_file(FENCE);
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(admin.clone());
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(admin.clone());
    for (missing, want) in [
        ("binding", format!("the fence is not in place: no ValidatingAdmissionPolicyBinding {BINDING};")),
        ("policy", format!("the fence is not in place: no ValidatingAdmissionPolicy {POLICY};")),
    ] {
        match missing {
            "binding" => bindings.delete(BINDING, &DeleteParams::default()).await.map(drop),
            _ => policies.delete(POLICY, &DeleteParams::default()).await.map(drop),
        }
        .expect("delete a part of the fence");
        let ran = run(&kube);
        assert_eq!(ran.warnings.len(), 1, "without the {missing}: {:?}", ran.warnings);
        assert!(ran.warnings[0].starts_with(&want), "without the {missing}: want {want:?}, got {:?}", ran.warnings);
        assert!(
            !ran.problems.iter().any(|p| p.contains("fence")),
            "a missing fence is no problem: {:#?}",
            ran.problems
        );
        assert_eq!(
            run_status(&admin, &ran.run_id).await["warnings"],
            json!(ran.warnings),
            "in the NetcanaryRun's status"
        );
        apply(&admin, &fence_yaml).await;
    }
}

/// The overlay that grants creating and deleting pods per namespace.
const NAMESPACED: &str = "manifests/overlays/namespaced";

/// The namespaces where `objects` let netcanary's ServiceAccount create pods, by Roles; `*`
/// when a ClusterRole does.
fn pod_namespaces(objects: &[DynamicObject]) -> BTreeSet<String> {
    let mut namespaces = BTreeSet::new();
    for (index, object) in objects.iter().enumerate() {
        let single = &objects[index..=index];
        let binding_kind = object.types.as_ref().map_or("", |t| t.kind.as_str());
        if !["RoleBinding", "ClusterRoleBinding"].contains(&binding_kind) {
            continue;
        }
        let role = objects.iter().filter(|o| {
            o.types.as_ref().is_some_and(|t| Some(t.kind.as_str()) == object.data["roleRef"]["kind"].as_str())
                && Some(o.name_any().as_str()) == object.data["roleRef"]["name"].as_str()
                && (binding_kind == "ClusterRoleBinding" || o.namespace() == object.namespace())
        });
        let with_role: Vec<DynamicObject> = single.iter().cloned().chain(role.cloned()).collect();
        if pod_writers(&with_role).contains(NETCANARY_SA) {
            namespaces.insert(object.namespace().unwrap_or_else(|| "*".into()));
        }
    }
    namespaces
}

#[test]
fn the_namespaced_overlay_grants_pods_only_where_it_probes() {
    let test = "the_namespaced_overlay_grants_pods_only_where_it_probes";
    let Some(yaml) = KubeFixture::kustomize(&repo_file(NAMESPACED)).map_or_else(|e| skip_or_panic(test, e), Some)
    else {
        return;
    };
    let rendered = objects(&yaml);
    let granted = pod_namespaces(&rendered);
    assert!(!granted.contains("*"), "{NAMESPACED}: a ClusterRole still lets netcanary create or delete pods");
    let help = Command::new(BIN).args(["run", "--help"]).output().expect("run netcanary run --help");
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("[env: NETCANARY_NAMESPACES="),
        "run reads NETCANARY_NAMESPACES"
    );
    for (kind, template) in [("CronJob", "/spec/jobTemplate/spec/template"), ("Deployment", "/spec/template")] {
        let object = find(&rendered, kind, "netcanary").unwrap_or_else(|| panic!("{NAMESPACED}: no {kind}"));
        let env = object.data.pointer(&format!("{template}/spec/containers/0/env")).expect("env");
        let probed = env.as_array().expect("env").iter().find(|e| e["name"] == "NETCANARY_NAMESPACES");
        let probed =
            probed.and_then(|e| e["value"].as_str()).unwrap_or_else(|| panic!("{kind}: no NETCANARY_NAMESPACES"));
        let mut want: BTreeSet<String> = probed.split(',').map(String::from).collect();
        want.insert(NAMESPACE.into());
        assert_eq!(granted, want, "{NAMESPACED}: Roles for pods where the {kind} probes, and in netcanary's namespace");
    }
}

#[tokio::test]
async fn a_namespaced_run_creates_pods_only_where_its_roles_let_it() {
    let test = "a_namespaced_run_creates_pods_only_where_its_roles_let_it";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let admin = install(&kube, &["shop", "payments", "other"]).await;
    let overlay = KubeFixture::kustomize(&repo_file(NAMESPACED)).unwrap_or_else(|e| panic!("{e}"));
    apply(&admin, &overlay).await;
    apply(
        &admin,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: example/web, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: ledger-0, namespace: payments, labels: {app: ledger}}
spec: {containers: [{name: ledger, image: example/ledger, ports: [{containerPort: 5432}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: tool-0, namespace: other, labels: {app: tool}}
spec: {containers: [{name: tool, image: example/tool, ports: [{containerPort: 80}]}]}
"#,
    )
    .await;
    let sa = kube.kubeconfig_as(NETCANARY_SA);

    // Where its Roles let it: every pod of the plan is created there, none elsewhere.
    let ran = run_without_kubelet(&sa, &["--namespaces", "shop,payments"]);
    let refused: Vec<&String> = ran.problems.iter().filter(|p| p.contains("create pod")).collect();
    assert!(refused.is_empty(), "pods refused: {refused:#?}");
    let created: BTreeSet<&str> = ran
        .problems
        .iter()
        .filter_map(|p| p.strip_prefix("pod ")?.split_once('/').map(|(namespace, _)| namespace))
        .collect();
    assert_eq!(created, BTreeSet::from(["shop", "payments", NAMESPACE]), "{:#?}", ran.problems);

    // Everywhere: RBAC refuses the pod in `other`, and the run says so.
    let ran = run_without_kubelet(&sa, &[]);
    let forbidden = format!("User \"{NETCANARY_SA}\" cannot create resource \"pods\"");
    assert!(
        ran.problems.iter().any(|p| p.contains("create pod other/") && p.contains(&forbidden)),
        "want RBAC's refusal in namespace other: {:#?}",
        ran.problems
    );
}
