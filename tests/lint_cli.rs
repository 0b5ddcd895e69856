//! `netcanary lint` as a user runs it: the bundled example (findings worked out by hand from
//! its manifests), the default-deny kit, every format, exit codes and switching rules off.

use serde_json::Value;

#[path = "common/cli.rs"]
mod cli;
#[path = "common/scratch.rs"]
mod scratch;

use cli::{netcanary, stderr, stdout};
use scratch::ScratchDir;

fn lint_json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["lint", "-o", "json"];
    all.extend_from_slice(args);
    let output = netcanary(&all);
    let doc = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&output)));
    (output.status.code(), doc)
}

/// (rule, severity, namespace, kind, name, field) of every finding.
fn summary(doc: &Value) -> Vec<(String, String, String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (s(&f["rule"]), s(&f["severity"]), s(&f["namespace"]), s(&f["kind"]), s(&f["name"]), s(&f["field"])))
        .collect()
}

fn row(
    rule: &str,
    severity: &str,
    namespace: &str,
    kind: &str,
    name: &str,
    field: &str,
) -> (String, String, String, String, String, String) {
    (rule.into(), severity.into(), namespace.into(), kind.into(), name.into(), field.into())
}

/// From the manifests: production and staging have default-deny-all (both directions) and
/// allow-dns to the kube-dns pods, whose namespace isolates nothing, so no DNS finding;
/// every policy selects a workload and every peer something; the named port `postgres` is
/// declared by the db it protects; the ipBlocks hold no pod IP (workloads have none). dev,
/// ingress-nginx and kube-system have no policy at all. production's api has an HTTP
/// readiness probe on its port `http` (8080), and production's ingress admits only the
/// ingress-nginx pods: NC010, on line 15 of its file.
#[test]
fn bundled_example() {
    let (code, doc) = lint_json(&["-f", "examples/cluster"]);
    assert_eq!(code, Some(0), "warnings and info only: below the default --fail-on error");
    let mut expected = Vec::new();
    for namespace in ["dev", "ingress-nginx", "kube-system"] {
        expected.push(row("NC001", "warning", namespace, "Namespace", namespace, "-"));
        expected.push(row("NC002", "info", namespace, "Namespace", namespace, "-"));
    }
    expected.push(row(
        "NC010",
        "info",
        "production",
        "Deployment",
        "api",
        "spec.template.spec.containers[0].readinessProbe",
    ));
    assert_eq!(summary(&doc), expected);
    assert_eq!(doc["findings"][6]["file"], "examples/cluster/workloads/production.yaml");
    assert_eq!(doc["findings"][6]["line"], 15);
    let first = &doc["findings"][0];
    assert_eq!(first["file"], "examples/cluster/namespaces.yaml");
    assert_eq!(first["line"], 11, "Namespace dev is the third document, after two comment lines");
    assert!(first["message"].as_str().unwrap().contains("dev/deployment/api"), "{first}");
    assert!(!first["fix"].as_str().unwrap().is_empty());

    let output = netcanary(&["lint", "-f", "examples/cluster", "--fail-on", "warning"]);
    assert_eq!(output.status.code(), Some(1), "warnings fail with --fail-on warning");
}

#[test]
fn bundled_example_text() {
    let output = netcanary(&["lint", "-f", "examples/cluster", "--color", "never"]);
    let text = stdout(&output);
    assert!(text.starts_with("dev\n  warning  NC001  Namespace dev "), "{text}");
    assert!(text.contains("\ningress-nginx\n") && text.contains("\nkube-system\n"), "{text}");
    assert!(text.contains("7 finding(s): 0 error(s), 3 warning(s), 4 info"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour when asked for none");
    let coloured = stdout(&netcanary(&["lint", "-f", "examples/cluster", "--color", "always"]));
    assert!(coloured.contains("\u{1b}[1m\u{1b}[33m") || coloured.contains("\u{1b}[33m"), "{coloured}");
}

/// The kit has no pods and names no namespace: nothing of it selects nothing, its ingress
/// rule names the controller's namespace (not every one). Placed into the example's
/// namespaces it leaves only what it deliberately leaves open.
#[test]
fn default_deny_kit_is_clean() {
    let (code, doc) = lint_json(&["-f", "manifests/policies/default-deny"]);
    assert_eq!(code, Some(0));
    assert_eq!(summary(&doc), []);

    let (code, doc) = lint_json(&["-f", "manifests/policies/default-deny", "-f", "examples/cluster", "-n", "dev"]);
    assert_eq!(code, Some(0));
    let dev: Vec<_> = summary(&doc).into_iter().filter(|f| f.2 == "dev").collect();
    assert_eq!(dev, [], "the kit closes dev and lets it reach DNS");
}

#[test]
fn findings_from_a_file_fail_on_error_and_disable() {
    let dir = ScratchDir::new("lint-cli");
    let file = dir.write(
        "bad.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}\n\
         spec: {containers: [{name: c, image: i}]}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\n\
         spec: {containers: [{name: c, image: i}]}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: shop}\n\
         spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open, namespace: shop}\n\
         spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}}]}]}\n",
    );
    let path = file.to_str().unwrap();
    let (code, doc) = lint_json(&["-f", path, "--disable", "NC001", "--disable", "nc002"]);
    assert_eq!(code, Some(1), "NC003 for 53/UDP is an error");
    let rules: Vec<String> = summary(&doc).into_iter().map(|f| format!("{} {} {}", f.0, f.1, f.5)).collect();
    assert_eq!(rules, ["NC003 error -", "NC003 warning -", "NC006 warning spec.ingress[0].from[0]"]);
    assert_eq!(doc["findings"][2]["file"], path);
    let lines: Vec<&Value> = doc["findings"].as_array().unwrap().iter().map(|f| &f["line"]).collect();
    assert_eq!(lines, [10, 10, 23], "Pod shop/web starts on line 10, the open policy's one-line spec is on 23");

    let (code, _) = lint_json(&["-f", path, "--disable", "NC003"]);
    assert_eq!(code, Some(0), "nothing at error left");

    let output = netcanary(&["lint", "-f", path, "--disable", "NC999"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown rule"), "{}", stderr(&output));
}

#[test]
fn sarif_output() {
    let output = netcanary(&["lint", "-f", "examples/cluster", "-o", "sarif"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let log: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "netcanary");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().all(|r| r["id"].is_string() && r["help"]["text"].is_string()));
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    assert_eq!(results[0]["ruleId"], "NC001");
    assert_eq!(results[0]["level"], "warning");
    assert_eq!(results[1]["level"], "note");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "examples/cluster/namespaces.yaml"
    );
    assert_eq!(results[0]["locations"][0]["physicalLocation"]["region"]["startLine"], 11);
    assert!(results.iter().all(|r| r["message"]["text"].is_string()));
}

#[test]
fn unreadable_input_exits_2_unless_keep_going() {
    let dir = ScratchDir::new("lint-cli-bad");
    let file = dir.write(
        "broken.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: a}\nspec: {containers: [{name: c, image: i}]}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\n\
         spec: {podSelector: {}, policyTypes: [Sideways]}\n",
    );
    let path = file.to_str().unwrap();
    let output = netcanary(&["lint", "-f", path]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("spec.policyTypes[0]"), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");

    let (code, doc) = lint_json(&["-f", path, "--keep-going"]);
    assert_eq!(code, Some(0));
    assert_eq!(summary(&doc)[0].0, "NC001", "the broken policy is left out");

    let output = netcanary(&["lint", "-f", "no/such/path"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn annotations_switch_rules_off() {
    let dir = ScratchDir::new("lint-cli-annotations");
    let file = dir.write(
        "quiet.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, annotations: {netcanary.io/lint-disable: \"NC001,NC002\"}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: a, labels: {app: web}}\n\
         spec: {containers: [{name: c, image: i}]}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: p, namespace: a, annotations: {netcanary.io/lint-disable: NC004}}\n\
         spec: {podSelector: {matchLabels: {app: nothing}}}\n",
    );
    let (code, doc) = lint_json(&["-f", file.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(summary(&doc), []);
}

/// README's "Linting the bundled example" quotes the text output: it must be what lint prints.
#[test]
fn readme_quotes_the_real_output() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("read README.md");
    let section = &readme[readme.find("### Linting the bundled example").expect("README has the section")..];
    let command = "$ netcanary lint -f examples/cluster\n";
    let block = &section[section.find(command).expect("README quotes the command") + command.len()..];
    let quoted = &block[..block.find("```").expect("the block ends")];
    let output = netcanary(&["lint", "-f", "examples/cluster", "--color", "never"]);
    assert_eq!(stdout(&output), quoted, "README's lint output is not what lint prints");
}
