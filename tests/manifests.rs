//! `kubectl apply -k manifests/` installs netcanary, and the policy kits mean what they say.
//!
//! Every kustomization under `manifests/` is rendered with the kustomize that kubectl uses
//! (the fixture binary's `kustomize` subcommand, so no kubectl is needed), and every object
//! it renders is applied to a real kube-apiserver as a server-side dry run with strict field
//! validation: against the project's NetcanaryRun CRD and minimal stand-ins for the
//! Prometheus Operator's and Kyverno's CRDs (`tests/crds/`). Every pod the manifests run is
//! created (dry run) in netcanary's namespace, whose PodSecurity admission enforces
//! "restricted". The on-demand Job is checked against the CronJob's pod, the images against
//! this release, and the NetworkPolicies against their comments with netcanary's own engine
//! (`netcanary analyze`) on a few example pods.
//!
//! Needs the kube-apiserver fixture (rendering needs only its binary): see
//! `tests/common/kube_fixture.rs` for how a test skips or fails without it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::bed::{api_for, apply, describe, install_netcanary, objects, wait_for_crd};
use common::kube_fixture::{KubeFixture, skip_or_panic};
use common::scratch::ScratchDir;
use common::{assert_ok, read_repo_file, relative, repo_file};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_netcanary");
/// The policy kits: kustomizations that name no namespace, applied with `kubectl apply -n`.
const KITS: &str = "manifests/policies";
/// The namespace the kits are applied into here.
const APP_NAMESPACE: &str = "shop";
/// The on-demand Job, a plain file for `kubectl create -f`.
const VERIFY_JOB: &str = "manifests/jobs/verify.yaml";
/// The stand-ins for CRDs the manifests use but do not ship, with the names they define.
const CRD_STAND_INS: [&str; 3] =
    ["servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com", "clusterpolicies.kyverno.io"];

/// One kustomization and what it renders.
struct Rendered {
    /// Relative to the repository, as a user types it after `kubectl apply -k`.
    dir: String,
    yaml: String,
    objects: Vec<DynamicObject>,
}

impl Rendered {
    fn is_kit(&self) -> bool {
        self.dir.starts_with(KITS)
    }

    fn find(&self, kind: &str, name: &str) -> &DynamicObject {
        self.objects
            .iter()
            .find(|o| o.types.as_ref().is_some_and(|t| t.kind == kind) && o.name_any() == name)
            .unwrap_or_else(|| panic!("{} renders no {kind} {name}", self.dir))
    }
}

/// Renders the kustomization in `dir` (relative to the repository); `None` when the test is
/// skipped.
fn render(test: &str, dir: &str) -> Option<Rendered> {
    let yaml = KubeFixture::kustomize(&repo_file(dir)).map_or_else(|e| skip_or_panic(test, e), Some)?;
    let objects = objects(&yaml);
    Some(Rendered { dir: dir.to_string(), yaml, objects })
}

/// Every kustomization under `manifests/`, rendered. Components are not built on their
/// own (kustomize cannot): they render inside the kustomizations that use them.
fn render_all(test: &str) -> Option<Vec<Rendered>> {
    let mut dirs = Vec::new();
    kustomizations(Path::new("manifests"), &mut dirs);
    dirs.sort();
    for documented in [
        "manifests",
        "manifests/overlays/without-prometheus-operator",
        "manifests/overlays/ci",
        "manifests/overlays/cronjob-only",
        "manifests/overlays/serve-only",
        "manifests/policies/default-deny",
        "manifests/policies/gotchas",
        "manifests/policies/kyverno",
    ] {
        assert!(dirs.iter().any(|d| d == documented), "no kustomization in {documented}; found {dirs:?}");
    }
    dirs.iter().map(|dir| render(test, dir)).collect()
}

/// Adds `dir` (relative to the repository) and every directory below it that holds a
/// kustomization other than a Component.
fn kustomizations(dir: &Path, found: &mut Vec<String>) {
    let absolute = repo_file(dir);
    let file = absolute.join("kustomization.yaml");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let value: serde_norway::Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if value["kind"].as_str() != Some("Component") {
            found.push(dir.display().to_string());
        }
    }
    let entries = std::fs::read_dir(&absolute).unwrap_or_else(|e| panic!("read {}: {e}", absolute.display()));
    for entry in entries {
        let entry = entry.expect("a directory entry");
        if entry.file_type().expect("a file type").is_dir() {
            kustomizations(&dir.join(entry.file_name()), found);
        }
    }
}

/// The only object of `manifests/jobs/verify.yaml`.
fn verify_job() -> DynamicObject {
    let mut all = objects(&read_repo_file(VERIFY_JOB));
    assert_eq!(all.len(), 1, "{VERIFY_JOB} holds one Job");
    all.remove(0)
}

/// A server-side apply of `object` as a dry run with strict field validation: what
/// `kubectl apply --server-side --dry-run=server --validate=strict` sends.
async fn dry_run_apply(client: &Client, object: &DynamicObject, namespace: Option<&str>) -> Result<(), String> {
    let api = api_for(client, object, namespace).await?;
    let params = PatchParams::apply("netcanary-manifests-test").force().dry_run().validation_strict();
    api.patch(&object.name_any(), &params, &Patch::Apply(object))
        .await
        .map(drop)
        .map_err(|error| format!("{}: {}", describe(object), refusal(error)))
}

/// The API server's answer in its own words, without the client's wrapping.
fn refusal(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} {}", status.code, status.message),
        error => error.to_string(),
    }
}

/// The pod template of a CronJob, Deployment or Job.
fn pod_template(object: &DynamicObject) -> &Value {
    let spec = &object.data["spec"];
    match object.types.as_ref().map(|t| t.kind.as_str()) {
        Some("CronJob") => &spec["jobTemplate"]["spec"]["template"],
        _ => &spec["template"],
    }
}

/// The one container of a pod template.
fn container(template: &Value) -> &Value {
    &template["spec"]["containers"][0]
}

/// The value of the container's environment variable `name`.
fn env<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"].as_array()?.iter().find(|e| e["name"] == name)?["value"].as_str()
}

/// The Kyverno ClusterPolicy's generate rules, each as the NetworkPolicy it creates in a new
/// namespace `namespace`.
fn generated_policies(kit: &Rendered, namespace: &str) -> Vec<DynamicObject> {
    let policy = kit.find("ClusterPolicy", "default-deny-new-namespaces");
    let rules = policy.data["spec"]["rules"].as_array().expect("spec.rules");
    rules
        .iter()
        .map(|rule| {
            let generate = &rule["generate"];
            serde_json::from_value(json!({
                "apiVersion": generate["apiVersion"],
                "kind": generate["kind"],
                "metadata": {"name": generate["name"], "namespace": namespace},
                "spec": generate["data"]["spec"],
            }))
            .expect("a generated object")
        })
        .collect()
}

#[tokio::test]
async fn every_rendered_object_passes_a_strict_server_side_dry_run() {
    let test = "every_rendered_object_passes_a_strict_server_side_dry_run";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let rendered = render_all(test).expect("the fixture's binary renders");
    let client = kube.client().await;
    // Installed for real: the CRDs, netcanary's namespace (objects in it need it), the kits'.
    for name in CRD_STAND_INS {
        apply(&client, &read_repo_file(&format!("tests/crds/{name}.yaml"))).await;
        wait_for_crd(&client, name).await;
    }
    install_netcanary(&client).await;
    apply(&client, &format!("{{apiVersion: v1, kind: Namespace, metadata: {{name: {APP_NAMESPACE}}}}}")).await;
    // And the namespaces an overlay's objects name (the namespaced overlay's Roles).
    let named: std::collections::BTreeSet<String> =
        rendered.iter().flat_map(|r| r.objects.iter().filter_map(|o| o.namespace())).collect();
    for namespace in named {
        apply(&client, &format!("{{apiVersion: v1, kind: Namespace, metadata: {{name: {namespace}}}}}")).await;
    }

    let mut refused = Vec::new();
    let mut applied = 0;
    for kustomization in &rendered {
        let namespace = kustomization.is_kit().then_some(APP_NAMESPACE);
        for object in &kustomization.objects {
            if kustomization.is_kit() {
                assert!(
                    object.namespace().is_none(),
                    "{}: {}: a policy kit names no namespace, so `kubectl apply -n` places it",
                    kustomization.dir,
                    describe(object)
                );
            }
            match dry_run_apply(&client, object, namespace).await {
                Ok(()) => applied += 1,
                Err(error) => refused.push(format!("  {}: {error}", kustomization.dir)),
            }
        }
    }
    let kyverno = rendered.iter().find(|r| r.dir == "manifests/policies/kyverno").expect("the Kyverno kit");
    for generated in generated_policies(kyverno, APP_NAMESPACE) {
        if let Err(error) = dry_run_apply(&client, &generated, None).await {
            refused.push(format!("  {}: what its ClusterPolicy generates: {error}", kyverno.dir));
        }
    }
    assert!(refused.is_empty(), "the API server refuses rendered objects:\n{}", refused.join("\n"));
    eprintln!("{applied} objects from {} kustomizations accepted", rendered.len());

    // The dry run has teeth: one misspelt field is refused, in a custom resource (whose
    // stand-in CRD must be closed for that) and in a built-in kind.
    let install = rendered.iter().find(|r| r.dir == "manifests").expect("the top-level kustomization");
    for (kind, field, misspelt) in
        [("ServiceMonitor", "endpoints", "endpoint"), ("CronJob", "concurrencyPolicy", "concurencyPolicy")]
    {
        let mut object = install.find(kind, "netcanary").clone();
        let spec = object.data["spec"].as_object_mut().expect("a spec");
        let value = spec.remove(field).unwrap_or_else(|| panic!("{kind} netcanary has no spec.{field}"));
        spec.insert(misspelt.into(), value);
        match dry_run_apply(&client, &object, None).await {
            Err(error) => {
                assert!(error.contains(misspelt), "{kind} with spec.{misspelt}: refused, but not naming it: {error}")
            }
            Ok(()) => panic!("{kind} with the misspelt spec.{misspelt} was accepted: the dry run would miss typos"),
        }
    }
}

#[tokio::test]
async fn every_pod_passes_pod_security_restricted() {
    let test = "every_pod_passes_pod_security_restricted";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let install = render(test, "manifests").expect("the fixture's binary renders");
    let client = kube.client().await;
    install_netcanary(&client).await;
    let pods: Api<Pod> = Api::namespaced(client, "netcanary");
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    let pod = |template: &Value| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"generateName": "netcanary-", "labels": template["metadata"]["labels"]},
            "spec": template["spec"],
        }))
        .expect("a pod template makes a Pod")
    };

    let verify = verify_job();
    let controllers =
        [("manifests", install.find("CronJob", "netcanary")), ("manifests", install.find("Deployment", "netcanary"))];
    let mut refused = Vec::new();
    for (source, object) in controllers.into_iter().chain([(VERIFY_JOB, &verify)]) {
        if let Err(error) = pods.create(&dry_run, &pod(pod_template(object))).await {
            refused.push(format!("  {source}: {}: its pod: {}", describe(object), refusal(error)));
        }
    }
    assert!(refused.is_empty(), "pods refused in namespace netcanary:\n{}", refused.join("\n"));

    // The namespace really enforces "restricted": the same pod without its security
    // contexts is refused, by PodSecurity.
    let mut template = pod_template(&verify).clone();
    template["spec"].as_object_mut().expect("a pod spec").remove("securityContext");
    template["spec"]["containers"][0].as_object_mut().expect("a container").remove("securityContext");
    match pods.create(&dry_run, &pod(&template)).await {
        Err(kube::Error::Api(status)) => assert!(
            status.code == 403 && status.message.contains("violates PodSecurity \"restricted:latest\""),
            "a pod without security contexts: want PodSecurity's refusal, got {status:?}"
        ),
        other => panic!("a pod without security contexts in namespace netcanary: want a refusal, got {other:?}"),
    }
}

#[test]
fn the_verify_job_is_the_cronjob_pod() {
    let Some(install) = render("the_verify_job_is_the_cronjob_pod", "manifests") else { return };
    let cronjob = install.find("CronJob", "netcanary");
    let verify = verify_job();

    // The CronJob's Job, reporting a table for people instead of JSON and pushing nothing.
    let job_template = &cronjob.data["spec"]["jobTemplate"];
    let mut expected = job_template["spec"].clone();
    let container = &mut expected["template"]["spec"]["containers"][0];
    container["args"] = json!(["run", "--output", "table"]);
    container["env"].as_array_mut().expect("env").retain(|e| e["name"] != "NETCANARY_PUSHGATEWAY");
    let mut actual = verify.data["spec"].clone();
    actual.as_object_mut().expect("a spec").remove("ttlSecondsAfterFinished");
    assert!(
        actual == expected,
        "{VERIFY_JOB}: spec differs from the CronJob's jobTemplate.spec beyond the report format, the \
         Pushgateway and ttlSecondsAfterFinished.\nwant:\n{}\ngot:\n{}",
        serde_json::to_string_pretty(&expected).unwrap(),
        serde_json::to_string_pretty(&actual).unwrap()
    );
    assert_eq!(
        serde_json::to_value(verify.labels()).unwrap(),
        job_template["metadata"]["labels"],
        "{VERIFY_JOB}: metadata.labels differ from the CronJob's jobTemplate.metadata.labels"
    );
}

/// The manifests configure netcanary through arguments and `NETCANARY_*` variables. clap
/// ignores a variable it does not know, so a misspelt name would silently run with the
/// default: every name must be one the verb reads, and the arguments and values together
/// must parse (the run then stops at the kubeconfig, which names a file that is not there).
#[test]
fn every_controller_container_sets_flags_the_binary_reads() {
    let Some(install) = render("every_controller_container_sets_flags_the_binary_reads", "manifests") else {
        return;
    };
    let verify = verify_job();
    let workloads = [install.find("CronJob", "netcanary"), install.find("Deployment", "netcanary"), &verify];
    for workload in workloads {
        let what = format!("{} {}", workload.types.as_ref().map_or("", |t| t.kind.as_str()), workload.name_any());
        let container = container(pod_template(workload));
        let args: Vec<&str> = container["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
        let help = Command::new(BIN).args([args[0], "--help"]).output().expect("run netcanary --help");
        let help = String::from_utf8_lossy(&help.stdout);
        let mut command = Command::new(BIN);
        command.args(&args).env("NETCANARY_KUBECONFIG", "/nonexistent/kubeconfig");
        for variable in container["env"].as_array().expect("env") {
            let name = variable["name"].as_str().expect("env[].name");
            assert!(help.contains(&format!("[env: {name}=")), "{what}: `netcanary {}` reads no {name}", args[0]);
            // Values from the downward API: the namespace the manifests install into.
            command.env(name, variable["value"].as_str().unwrap_or("netcanary"));
        }
        let out = command.output().expect("run netcanary");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("read kubeconfig /nonexistent/kubeconfig"),
            "{what}: `netcanary {}` with its env did not get as far as the kubeconfig:\n{stderr}",
            args.join(" ")
        );
    }
}

/// The single-scheduler overlays keep one scheduler with what it needs, drop the other with
/// everything only it needs, and keep the alerts.
#[test]
fn single_scheduler_overlays_keep_one_scheduler() {
    let test = "single_scheduler_overlays_keep_one_scheduler";
    let kinds_and_names = |rendered: &Rendered| -> Vec<(String, String)> {
        let kind = |o: &DynamicObject| o.types.as_ref().map_or_else(String::new, |t| t.kind.clone());
        rendered.objects.iter().map(|o| (kind(o), o.name_any())).collect()
    };
    let serve_only = [
        ("Deployment", "netcanary"),
        ("Service", "netcanary"),
        ("ServiceMonitor", "netcanary"),
        ("NetworkPolicy", "netcanary-serve-scrape"),
    ];
    let cronjob_only = [("CronJob", "netcanary"), ("NetworkPolicy", "netcanary-run-to-pushgateway")];
    for (dir, kept, dropped) in [
        ("manifests/overlays/cronjob-only", &cronjob_only[..], &serve_only[..]),
        ("manifests/overlays/serve-only", &serve_only[..], &cronjob_only[..]),
    ] {
        let Some(rendered) = render(test, dir) else { return };
        let present = kinds_and_names(&rendered);
        let has = |(kind, name): &(&str, &str)| present.iter().any(|(k, n)| k == kind && n == name);
        for object in
            kept.iter().chain([&("PrometheusRule", "netcanary"), &("NetworkPolicy", "netcanary-default-deny")])
        {
            assert!(has(object), "{dir}: {} {} is missing; it renders {present:?}", object.0, object.1);
        }
        for object in dropped {
            assert!(!has(object), "{dir}: {} {} belongs to the other scheduler", object.0, object.1);
        }
    }
}

#[test]
fn the_cronjob_job_outlives_the_run_deadline() {
    let Some(install) = render("the_cronjob_job_outlives_the_run_deadline", "manifests") else { return };
    let cronjob = install.find("CronJob", "netcanary");
    let job = &cronjob.data["spec"]["jobTemplate"]["spec"];
    let deadline = env(container(pod_template(cronjob)), "NETCANARY_DEADLINE").expect("NETCANARY_DEADLINE");
    let deadline = humantime::parse_duration(deadline).expect("NETCANARY_DEADLINE is a duration");
    // Past its deadline a run takes up to 15 s to delete its pods and 15 s to record its
    // result; a Job killed before then leaves pods for the next run to sweep.
    let needed = deadline + Duration::from_secs(30);
    let active = job["activeDeadlineSeconds"].as_u64().expect("spec.jobTemplate.spec.activeDeadlineSeconds");
    assert!(
        Duration::from_secs(active) > needed,
        "CronJob netcanary: activeDeadlineSeconds {active} must exceed NETCANARY_DEADLINE plus the 30 s \
         wrap-up ({} s)",
        needed.as_secs()
    );
    assert_eq!(job["backoffLimit"], 0, "CronJob netcanary: a failed run is not retried");
}

#[test]
fn controller_pods_run_this_release_and_probe_pods_follow_image_overrides() {
    let test = "controller_pods_run_this_release_and_probe_pods_follow_image_overrides";
    let Some(install) = render(test, "manifests") else { return };
    let release = format!("ghcr.io/netcanary/netcanary:{}", env!("CARGO_PKG_VERSION"));
    let verify = verify_job();
    let shipped = [
        ("manifests", install.find("CronJob", "netcanary")),
        ("manifests", install.find("Deployment", "netcanary")),
        (VERIFY_JOB, &verify),
    ];
    for (source, object) in shipped {
        let container = container(pod_template(object));
        assert_eq!(container["image"], release.as_str(), "{source}: {}: image", describe(object));
        assert_eq!(
            env(container, "NETCANARY_IMAGE"),
            Some(release.as_str()),
            "{source}: {}: NETCANARY_IMAGE (the probe pods' image)",
            describe(object)
        );
    }

    // A user's overlay that mirrors and pins the image, and moves the Pushgateway.
    let overlay = ScratchDir::new(test);
    let mirrored =
        "registry.example.com/mirror/netcanary@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let (name, digest) = mirrored.split_once('@').expect("a digest");
    let pushgateway = "http://pushgateway.observability.svc:9091";
    let kustomization = format!(
        "resources: [{}]
images:
  - {{name: ghcr.io/netcanary/netcanary, newName: {name}, digest: {digest}}}
patches:
  - patch: |-
      apiVersion: batch/v1
      kind: CronJob
      metadata: {{name: netcanary, namespace: netcanary}}
      spec:
        jobTemplate:
          spec:
            template:
              spec:
                containers:
                  - name: netcanary
                    env:
                      - {{name: NETCANARY_PUSHGATEWAY, value: \"{pushgateway}\"}}
",
        // kustomize takes a base only by a relative path.
        relative(overlay.path(), &repo_file("manifests")).display()
    );
    overlay.write("kustomization.yaml", &kustomization);
    let rendered = KubeFixture::kustomize(overlay.path()).unwrap_or_else(|e| panic!("{e}"));
    let customised = Rendered { dir: "a user's overlay".into(), objects: objects(&rendered), yaml: rendered };
    for kind in ["CronJob", "Deployment"] {
        let container = container(pod_template(customised.find(kind, "netcanary")));
        assert_eq!(container["image"], mirrored, "{kind} netcanary: image under the user's `images:`");
        assert_eq!(
            env(container, "NETCANARY_IMAGE"),
            Some(mirrored),
            "{kind} netcanary: NETCANARY_IMAGE must follow the user's `images:`, or probe pods pull another image"
        );
    }
    let cronjob = container(pod_template(customised.find("CronJob", "netcanary")));
    assert_eq!(env(cronjob, "NETCANARY_PUSHGATEWAY"), Some(pushgateway), "CronJob netcanary: the patched Pushgateway");
}

/// What a policy should say about one connection, and why.
struct Expect {
    from: &'static str,
    to: &'static str,
    /// `PORT/PROTOCOL`.
    port: &'static str,
    allowed: bool,
    because: &'static str,
}

const fn allowed(from: &'static str, to: &'static str, port: &'static str, because: &'static str) -> Expect {
    Expect { from, to, port, allowed: true, because }
}

const fn denied(from: &'static str, to: &'static str, port: &'static str, because: &'static str) -> Expect {
    Expect { from, to, port, allowed: false, because }
}

/// A pod with labels and ports (`name`, number, protocol; an empty name for none). No IP:
/// only the external addresses below fall in an ipBlock.
fn pod(namespace: &str, name: &str, labels: &[(&str, &str)], ports: &[(&str, u16, &str)]) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let ports: Vec<Value> = ports
        .iter()
        .map(|(port_name, port, protocol)| {
            let mut port = json!({"containerPort": port, "protocol": protocol});
            if !port_name.is_empty() {
                port["name"] = json!(port_name);
            }
            port
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "example/image", "ports": ports}]},
    })
}

/// The pods around an application namespace, labelled as their usual charts label them.
fn neighbours() -> Vec<Value> {
    vec![
        pod("kube-system", "coredns", &[("k8s-app", "kube-dns")], &[("", 53, "UDP"), ("", 53, "TCP")]),
        pod("ingress-nginx", "controller", &[("app.kubernetes.io/name", "ingress-nginx")], &[("", 80, "TCP")]),
        pod("monitoring", "prometheus", &[("app.kubernetes.io/name", "prometheus")], &[("", 9090, "TCP")]),
        pod("monitoring", "grafana", &[("app.kubernetes.io/name", "grafana")], &[("", 3000, "TCP")]),
        pod("monitoring", "pushgateway", &[("app.kubernetes.io/name", "prometheus-pushgateway")], &[("", 9091, "TCP")]),
        // Labelled like the application, in a namespace no policy names.
        pod("elsewhere", "web", &[("app", "web")], &[("", 8080, "TCP")]),
    ]
}

/// Writes `items` as a `kind: List` to the file `name` in `dir`.
fn write_list(dir: &ScratchDir, name: &str, items: Vec<Value>) -> PathBuf {
    dir.write(name, json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string())
}

/// `netcanary analyze` over the same input for every question.
struct Analysis {
    args: Vec<String>,
    /// allowed, by (from, to, PORT/PROTOCOL).
    verdicts: BTreeMap<(String, String, String), bool>,
}

impl Analysis {
    /// Panics when the engine finds anything suspicious in the input (a warning or an
    /// error: host bits in a CIDR, a named port no container declares, ...).
    fn new(args: Vec<String>) -> Analysis {
        let out = analyze(&args, &["-o", "json"]);
        let doc: Value = serde_json::from_str(&out).expect("analyze -o json prints JSON");
        let diagnostics = doc["diagnostics"].as_array().expect("diagnostics");
        let suspicious: Vec<&Value> = diagnostics.iter().filter(|d| d["severity"] != "note").collect();
        assert!(suspicious.is_empty(), "netcanary analyze {args:?} finds the input suspicious: {suspicious:#?}");
        let verdicts = doc["verdicts"]
            .as_array()
            .expect("verdicts")
            .iter()
            .map(|v| {
                let key = (
                    v["from"].as_str().expect("from").to_string(),
                    v["to"].as_str().expect("to").to_string(),
                    format!("{}/{}", v["port"], v["protocol"].as_str().expect("protocol")),
                );
                (key, v["allowed"].as_bool().expect("allowed"))
            })
            .collect();
        Analysis { args, verdicts }
    }

    /// Every expectation policy does not meet, with the engine's explanation.
    fn wrong(&self, expectations: &[Expect]) -> Vec<String> {
        let mut wrong = Vec::new();
        for e in expectations {
            let key = (e.from.to_string(), e.to.to_string(), e.port.to_string());
            let want = if e.allowed { "allowed" } else { "denied" };
            match self.verdicts.get(&key) {
                Some(&allowed) if allowed == e.allowed => {}
                Some(_) => wrong.push(format!(
                    "{} → {} on {}: want {want} ({}), policy says otherwise:\n{}",
                    e.from,
                    e.to,
                    e.port,
                    e.because,
                    analyze(&self.args, &["--explain", e.from, e.to, e.port])
                )),
                None => wrong
                    .push(format!("{} → {} on {}: no verdict (is the endpoint in the input?)", e.from, e.to, e.port)),
            }
        }
        wrong
    }
}

/// `netcanary analyze ARGS EXTRA`'s stdout; panics with its stderr when it fails.
fn analyze(args: &[String], extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("analyze")
        .args(args)
        .args(extra)
        // Their defaults are what the arguments assume.
        .env_remove("NETCANARY_OUTPUT")
        .env_remove("NETCANARY_NAMESPACE")
        .env("NO_COLOR", "1")
        .output()
        .expect("run netcanary analyze");
    assert_ok(&out, &format!("netcanary analyze {args:?} {extra:?}"));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn policy_kits_mean_what_they_say() {
    let test = "policy_kits_mean_what_they_say";
    let Some(default_deny) = render(test, "manifests/policies/default-deny") else { return };
    let Some(gotchas) = render(test, "manifests/policies/gotchas") else { return };
    let Some(kyverno) = render(test, "manifests/policies/kyverno") else { return };

    // What the Kyverno policy's engine cannot judge: which namespaces get the policy.
    let policy = kyverno.find("ClusterPolicy", "default-deny-new-namespaces");
    for rule in policy.data["spec"]["rules"].as_array().expect("spec.rules") {
        let name = &rule["name"];
        assert_eq!(rule["match"]["any"][0]["resources"]["kinds"], json!(["Namespace"]), "rule {name}: every namespace");
        assert_eq!(
            rule["exclude"]["any"][0]["resources"]["names"],
            json!(["kube-system", "kube-public"]),
            "rule {name}: except kube-system and kube-public"
        );
        assert_eq!(
            rule["generate"]["namespace"], "{{request.object.metadata.name}}",
            "rule {name}: into the new namespace"
        );
        assert_eq!(rule["generate"]["synchronize"], true, "rule {name}: kept in sync");
    }

    // The default-deny and gotchas kits in `shop` (as `kubectl apply -n shop -k` places
    // them), and what Kyverno generates in a new namespace `fresh`.
    let scratch = ScratchDir::new(test);
    let generated: Vec<Value> =
        generated_policies(&kyverno, "fresh").iter().map(|p| serde_json::to_value(p).expect("JSON")).collect();
    let mut pods = neighbours();
    pods.push(pod(APP_NAMESPACE, "app", &[("app", "web")], &[("", 8080, "TCP")]));
    pods.push(pod("fresh", "app", &[("app", "web")], &[("", 8080, "TCP")]));
    let files = [
        scratch.write("default-deny.yaml", &default_deny.yaml),
        scratch.write("gotchas.yaml", &gotchas.yaml),
        write_list(&scratch, "generated.json", generated),
        write_list(&scratch, "pods.json", pods),
    ];
    let mut args: Vec<String> = vec!["-n".into(), APP_NAMESPACE.into()];
    for file in &files {
        args.extend(["-f".into(), file.display().to_string()]);
    }
    // A node inside the kubelet policy's placeholder CIDR, an address outside it, and the internet.
    args.extend(["--from", "192.0.2.10", "--from", "198.51.100.7", "--to", "1.1.1.1:443/TCP"].map(String::from));
    let analysis = Analysis::new(args);

    let wrong = analysis.wrong(&[
        allowed("shop/app", "kube-system/coredns", "53/UDP", "default-deny/allow-dns"),
        allowed("shop/app", "kube-system/coredns", "53/TCP", "default-deny/allow-dns: large answers"),
        allowed("ingress-nginx/controller", "shop/app", "8080/TCP", "default-deny/allow-ingress-controller"),
        denied("elsewhere/web", "shop/app", "8080/TCP", "default-deny-all: not the ingress controller's namespace"),
        denied("kube-system/coredns", "shop/app", "8080/TCP", "default-deny-all"),
        allowed("monitoring/prometheus", "shop/app", "8080/TCP", "gotchas/allow-prometheus-scrape"),
        denied("monitoring/grafana", "shop/app", "8080/TCP", "gotchas/allow-prometheus-scrape: Prometheus only"),
        allowed("192.0.2.10", "shop/app", "8080/TCP", "gotchas/allow-kubelet-health-checks: a node in the CIDR"),
        denied("198.51.100.7", "shop/app", "8080/TCP", "gotchas/allow-kubelet-health-checks: outside the CIDR"),
        denied("shop/app", "elsewhere/web", "8080/TCP", "default-deny-all: egress"),
        denied("shop/app", "monitoring/prometheus", "9090/TCP", "default-deny-all: egress"),
        denied("shop/app", "1.1.1.1", "443/TCP", "default-deny-all: egress"),
        allowed("fresh/app", "kube-system/coredns", "53/UDP", "Kyverno's default-deny allows DNS"),
        allowed("fresh/app", "kube-system/coredns", "53/TCP", "Kyverno's default-deny allows DNS"),
        denied("fresh/app", "elsewhere/web", "8080/TCP", "Kyverno's default-deny: egress"),
        denied("ingress-nginx/controller", "fresh/app", "8080/TCP", "Kyverno's default-deny: ingress"),
        denied("monitoring/prometheus", "fresh/app", "8080/TCP", "Kyverno's default-deny: ingress"),
    ]);
    assert!(wrong.is_empty(), "the policy kits do not mean what they say:\n\n{}", wrong.join("\n\n"));
}

#[test]
fn netcanary_namespace_policies_open_the_controllers_and_never_the_canary() {
    let test = "netcanary_namespace_policies_open_the_controllers_and_never_the_canary";
    let Some(install) = render(test, "manifests") else { return };
    let scratch = ScratchDir::new(test);
    let probe = [("app.kubernetes.io/managed-by", "netcanary"), ("netcanary.io/run-id", "r1")];
    // A probe pod standing in for a controller pod copies its labels; it must stay closed.
    let mirror = |component| {
        let mut labels = vec![("app.kubernetes.io/name", "netcanary"), ("app.kubernetes.io/component", component)];
        labels.extend(probe);
        labels
    };
    let mut pods = neighbours();
    pods.extend([
        pod("netcanary", "canary-source", &probe, &[("", 8080, "TCP")]),
        pod("netcanary", "canary-target", &probe, &[("", 8080, "TCP")]),
        pod("netcanary", "serve-mirror", &mirror("serve"), &[("metrics", 9090, "TCP")]),
        pod("netcanary", "run-mirror", &mirror("run"), &[]),
    ]);
    let manifests = scratch.write("manifests.yaml", &install.yaml);
    let pods = write_list(&scratch, "pods.json", pods);
    let mut args: Vec<String> = Vec::new();
    for file in [&manifests, &pods] {
        args.extend(["-f".into(), file.display().to_string()]);
    }
    // The API server: no pod, an address on its two usual ports.
    args.extend(["--to", "192.0.2.1:443/TCP", "--to", "192.0.2.1:6443/TCP"].map(String::from));
    let analysis = Analysis::new(args);

    const CRONJOB: &str = "netcanary/cronjob/netcanary";
    const SERVE: &str = "netcanary/deployment/netcanary";
    let wrong = analysis.wrong(&[
        denied("netcanary/canary-source", "netcanary/canary-target", "8080/TCP", "the enforcement canary"),
        denied("netcanary/canary-target", "netcanary/canary-source", "8080/TCP", "the enforcement canary"),
        denied("netcanary/canary-source", "kube-system/coredns", "53/UDP", "the canary reaches nothing"),
        denied("netcanary/canary-source", "192.0.2.1", "443/TCP", "the canary reaches nothing"),
        allowed("monitoring/prometheus", SERVE, "9090/TCP", "netcanary-serve-scrape"),
        denied("elsewhere/web", SERVE, "9090/TCP", "netcanary-default-deny: only monitoring scrapes"),
        denied("monitoring/prometheus", "netcanary/serve-mirror", "9090/TCP", "probe pods never match allow rules"),
        allowed(CRONJOB, "monitoring/pushgateway", "9091/TCP", "netcanary-run-to-pushgateway"),
        denied(SERVE, "monitoring/pushgateway", "9091/TCP", "serve pushes nothing"),
        denied("netcanary/run-mirror", "monitoring/pushgateway", "9091/TCP", "probe pods never match allow rules"),
        allowed(CRONJOB, "kube-system/coredns", "53/UDP", "netcanary-controllers-egress: DNS"),
        allowed(CRONJOB, "kube-system/coredns", "53/TCP", "netcanary-controllers-egress: DNS"),
        allowed(SERVE, "kube-system/coredns", "53/UDP", "netcanary-controllers-egress: DNS"),
        allowed(CRONJOB, "192.0.2.1", "443/TCP", "netcanary-controllers-egress: the API server"),
        allowed(SERVE, "192.0.2.1", "6443/TCP", "netcanary-controllers-egress: the API server"),
        denied("netcanary/run-mirror", "192.0.2.1", "443/TCP", "probe pods never match allow rules"),
        denied(CRONJOB, "elsewhere/web", "8080/TCP", "netcanary-default-deny: egress"),
    ]);
    assert!(wrong.is_empty(), "netcanary's own policies do not mean what they say:\n\n{}", wrong.join("\n\n"));
}

/// The example intent is what the NetcanaryIntent CRD accepts, field for field, and the CRD
/// is closed: a misspelt selector is refused rather than stored as "every pod".
#[tokio::test]
async fn the_example_intent_passes_the_intent_crd() {
    let test = "the_example_intent_passes_the_intent_crd";
    let Some(kube) = KubeFixture::start_or_skip(test) else { return };
    let client = kube.client().await;
    install_netcanary(&client).await;
    wait_for_crd(&client, "netcanaryintents.netcanary.io").await;
    let intents = objects(&read_repo_file("examples/intent.yaml"));
    assert_eq!(intents.len(), 2, "examples/intent.yaml holds two intents");
    for intent in &intents {
        dry_run_apply(&client, intent, None).await.unwrap_or_else(|e| panic!("the example intent is refused: {e}"));
    }
    let mut misspelt = intents[0].clone();
    let from = &mut misspelt.data["spec"]["statements"][0]["from"];
    let selector = from.as_object_mut().expect("from").remove("namespaceSelector").expect("a namespaceSelector");
    from["namespaceSelecter"] = selector;
    let error = dry_run_apply(&client, &misspelt, None).await.expect_err("a misspelt selector is refused");
    assert!(error.contains("namespaceSelecter"), "refused, but not naming the field: {error}");
    let mut named_port = intents[0].clone();
    named_port.data["spec"]["statements"][0]["ports"][0]["port"] = json!("postgres");
    dry_run_apply(&client, &named_port, None).await.expect_err("a named port is refused");
}
