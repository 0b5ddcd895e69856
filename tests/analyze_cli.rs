//! `netcanary analyze` as a user runs it: the bundled example, every output format, the
//! JSON contract of DESIGN.md, external endpoints, explanations and bad input.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

#[path = "common/cli.rs"]
mod cli;
#[path = "common/scratch.rs"]
mod scratch;

use cli::{netcanary, stderr, stdout};
use scratch::ScratchDir;

fn json(args: &[&str]) -> Value {
    let mut all = vec!["analyze", "-o", "json"];
    all.extend_from_slice(args);
    let output = netcanary(&all);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("valid JSON")
}

fn find<'a>(doc: &'a Value, from: &str, to: &str, port: u64, protocol: &str) -> &'a Value {
    doc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["from"] == from && v["to"] == to && v["port"] == port && v["protocol"] == protocol)
        .unwrap_or_else(|| panic!("no verdict {from} -> {to} {port}/{protocol}"))
}

#[test]
fn example_matrix_prints_every_port_block() {
    let output = netcanary(&["analyze", "-f", "examples/cluster", "--color", "never"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for heading in ["53/UDP", "53/TCP", "5432/TCP", "8080/TCP"] {
        assert!(text.lines().any(|l| l.starts_with(heading)), "missing block {heading}:\n{text}");
    }
    assert!(text.contains("production/statefulset/db"));
    assert!(!text.contains('\u{1b}'), "no colour when asked for none");
    let coloured = stdout(&netcanary(&["analyze", "-f", "examples/cluster", "--color", "always"]));
    assert!(coloured.contains("\u{1b}[32m"), "colour when asked for it");
}

#[test]
fn json_follows_the_contract() {
    let doc = json(&["-f", "examples/cluster"]);
    let allowed = find(&doc, "production/deployment/api", "production/statefulset/db", 5432, "TCP");
    assert_eq!(allowed["allowed"], true);
    assert_eq!(allowed["egress"]["isolated"], true);
    assert_eq!(allowed["ingress"]["allowed"], true);
    let ingress_policies: Vec<&str> =
        allowed["ingress"]["policies"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(
        ingress_policies.contains(&"production/allow-api-to-db")
            && ingress_policies.contains(&"production/default-deny-all")
    );
    assert_eq!(allowed["ingress"]["allowedBy"][0], "production/allow-api-to-db ingress[0]");

    let denied = find(&doc, "staging/deployment/api", "staging/statefulset/db", 5432, "TCP");
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["egress"]["allowed"], false, "the api's egress is what denies it");
    assert_eq!(denied["ingress"]["allowed"], true);

    let open = find(&doc, "dev/deployment/api", "dev/statefulset/db", 5432, "TCP");
    assert_eq!(open["egress"]["isolated"], false);
    assert_eq!(open["egress"]["policies"].as_array().unwrap().len(), 0);
    assert_eq!(open["implementationDefined"], false);
    let own = find(&doc, "dev/statefulset/db", "dev/statefulset/db", 5432, "TCP");
    assert_eq!(own["implementationDefined"], true);

    // 11 sources; each port block has the destinations that declare it.
    let blocks = [("53/UDP", 1), ("53/TCP", 1), ("80/TCP", 1), ("443/TCP", 1), ("5432/TCP", 3), ("8080/TCP", 3)];
    let expected: usize = blocks.iter().map(|(_, d)| 11 * d).sum();
    assert_eq!(doc["verdicts"].as_array().unwrap().len(), expected);
}

#[test]
fn json_matches_design_example() {
    let dir = ScratchDir::new("design");
    let pod = |name: &str, ip: &str| {
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: x, labels: {{pod: {name}}}}}\nspec: {{containers: [{{name: c, image: i, ports: [{{containerPort: 80}}]}}]}}\nstatus: {{podIP: {ip}}}\n"
        )
    };
    let policy = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: x}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n";
    let file = dir.write("x.yaml", format!("{}{}{policy}", pod("a", "10.0.0.1"), pod("b", "10.0.0.2")));
    let doc = json(&["-f", file.to_str().unwrap()]);
    let v = find(&doc, "x/a", "x/b", 80, "TCP");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["egress"]["allowed"], true);
    assert_eq!(v["egress"]["isolated"], false);
    assert_eq!(v["egress"]["policies"], serde_json::json!([]));
    assert_eq!(v["ingress"]["allowed"], false);
    assert_eq!(v["ingress"]["isolated"], true);
    assert_eq!(v["ingress"]["policies"], serde_json::json!(["x/deny-all"]));
    assert_eq!(doc["verdicts"].as_array().unwrap().len(), 4, "self pairs included");
}

#[test]
fn explicit_ports_and_external_destinations() {
    let doc =
        json(&["-f", "examples/cluster", "--port", "5432/tcp", "--to", "1.1.1.1:443/TCP", "--to", "10.1.2.3:443"]);
    let verdicts = doc["verdicts"].as_array().unwrap();
    assert!(verdicts.iter().all(|v| v["port"] == 5432 || v["to"] == "1.1.1.1" || v["to"] == "10.1.2.3"));
    assert_eq!(
        verdicts.iter().filter(|v| v["port"] == 5432).count(),
        11 * 11,
        "--port applies to every in-cluster destination"
    );
    assert_eq!(find(&doc, "production/deployment/api", "1.1.1.1", 443, "TCP")["allowed"], true);
    assert_eq!(find(&doc, "production/deployment/api", "10.1.2.3", 443, "TCP")["allowed"], false, "RFC1918 excepted");
    assert_eq!(find(&doc, "production/deployment/worker", "1.1.1.1", 443, "TCP")["allowed"], false);
    assert_eq!(find(&doc, "dev/deployment/worker", "1.1.1.1", 443, "TCP")["allowed"], true);
}

#[test]
fn external_sources_meet_ingress_policy() {
    let doc = json(&["-f", "examples/cluster", "--from", "203.0.113.7", "--port", "8080"]);
    assert_eq!(find(&doc, "203.0.113.7", "production/deployment/api", 8080, "TCP")["allowed"], false);
    assert_eq!(find(&doc, "203.0.113.7", "dev/deployment/api", 8080, "TCP")["allowed"], true);
}

#[test]
fn summary_counts_agree_with_json() {
    let doc = json(&["-f", "examples/cluster"]);
    let verdicts = doc["verdicts"].as_array().unwrap();
    let allowed = verdicts.iter().filter(|v| v["allowed"] == true).count();
    let denied = verdicts.len() - allowed;
    let text = stdout(&netcanary(&["analyze", "-f", "examples/cluster", "-o", "summary", "--all-pairs"]));
    let total = text.lines().find(|l| l.starts_with("total")).expect("a total line");
    let numbers: Vec<usize> = total.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect();
    assert_eq!(numbers, [allowed, denied], "{text}");
    assert!(text.contains("5432/TCP  dev             production           0       3"), "{text}");
}

/// (port, source namespace, destination namespace) to (allowed, denied) of `-o json`'s
/// verdicts: the explained path, one verdict per pod pair.
fn counts_of_verdicts(doc: &Value) -> BTreeMap<(String, String, String), (u64, u64)> {
    let mut counts: BTreeMap<(String, String, String), (u64, u64)> = BTreeMap::new();
    for v in doc["verdicts"].as_array().unwrap() {
        let namespace = |key: &str| v[key].as_str().unwrap().split('/').next().unwrap().to_string();
        let port = format!("{}/{}", v["port"], v["protocol"].as_str().unwrap());
        let entry = counts.entry((port, namespace("from"), namespace("to"))).or_default();
        if v["allowed"] == true {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    counts
}

#[test]
fn summary_json_counts_every_namespace_pair_as_the_verdicts_do() {
    let expected = counts_of_verdicts(&json(&["-f", "examples/cluster"]));
    let output = netcanary(&["analyze", "-f", "examples/cluster", "-o", "summary-json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let doc: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let mut counted = BTreeMap::new();
    for port in doc["ports"].as_array().unwrap() {
        let name = format!("{}/{}", port["port"], port["protocol"].as_str().unwrap());
        let (mut allowed, mut denied) = (0, 0);
        for pair in port["namespacePairs"].as_array().unwrap() {
            let key =
                (name.clone(), pair["from"].as_str().unwrap().to_string(), pair["to"].as_str().unwrap().to_string());
            let counts = (pair["allowed"].as_u64().unwrap(), pair["denied"].as_u64().unwrap());
            assert_eq!(pair["unknown"], 0, "{pair}");
            allowed += counts.0;
            denied += counts.1;
            counted.insert(key, counts);
        }
        assert_eq!((port["allowed"].as_u64().unwrap(), port["denied"].as_u64().unwrap()), (allowed, denied), "{name}");
    }
    assert_eq!(counted, expected);
    // By hand, from README's 5432/TCP matrix: the ingress controller reaches the one
    // database of production; dev's three workloads reach none of it.
    let pair = |from: &str, to: &str| counted[&("5432/TCP".to_string(), from.to_string(), to.to_string())];
    assert_eq!(pair("ingress-nginx", "production"), (1, 0));
    assert_eq!(pair("dev", "production"), (0, 3));
    assert_eq!(pair("production", "production"), (2, 1));
    assert_eq!(doc["sources"], 11);
    assert_eq!(doc["diagnostics"], Value::Array(vec![]));
}

#[test]
fn summary_lists_totals_and_the_pairs_that_matter() {
    let output = netcanary(&["analyze", "-f", "examples/cluster", "-o", "summary", "--top", "2", "--color", "never"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    // README's 5432/TCP matrix: 11 sources x 3 databases, 9 cells allowed (dev's three
    // workloads, the ingress controller's three, coredns to dev's, production's api and
    // worker to production's), in 6 namespace pairs.
    assert_eq!(lines[0], "PORT      PAIRS  ALLOWED  DENIED  UNKNOWN  NAMESPACE PAIRS REACHED", "{text}");
    let row = lines.iter().find(|l| l.starts_with("5432/TCP ")).expect("a 5432/TCP row");
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["5432/TCP", "33", "9", "24", "0", "6"], "{text}");
    // DNS: every source reaches coredns on 53, so no pair is denied and nothing is listed.
    assert!(!text.contains("53/UDP: "), "{text}");
    let section = |title: &str| {
        let start = lines.iter().position(|l| l.starts_with(title)).unwrap_or_else(|| panic!("no {title:?}:\n{text}"));
        lines[start + 1..].iter().take_while(|l| !l.is_empty()).copied().collect::<Vec<_>>()
    };
    // Seven pairs are denied 3 times (dev to production and staging, production to dev and
    // staging, staging to all three); equal counts list the earlier names first.
    assert_eq!(
        section("5432/TCP: most denied namespace pairs (2 of 10)"),
        [
            "FROM NAMESPACE  TO NAMESPACE  ALLOWED  DENIED",
            "dev             production          0       3",
            "dev             staging             0       3"
        ],
        "{text}"
    );
    // Allowed pairs between namespaces whose env labels differ: none (ingress-nginx and
    // kube-system carry no env label; production and staging reach only their own), so the
    // section is left out.
    assert!(!text.contains("5432/TCP: most allowed across environments"), "{text}");
    // Against the default of its source namespace (to other namespaces): kube-system reaches
    // dev's database but not production's or staging's. ingress-nginx reaches all three,
    // which is its default.
    assert_eq!(
        section("5432/TCP: pairs that differ from their source namespace's default"),
        [
            "FROM NAMESPACE  TO NAMESPACE  ALLOWED  DENIED  DEFAULT OF FROM NAMESPACE",
            "kube-system     dev                 1       0  all denied"
        ],
        "{text}"
    );
}

/// A pod `p` of `namespace` at `ip`, listening on 80/TCP, as a YAML document.
fn pod_yaml(namespace: &str, ip: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: {namespace}}}\nspec: {{containers: [{{name: c, image: x, ports: [{{containerPort: 80}}]}}]}}\nstatus: {{podIP: {ip}}}\n"
    )
}

#[test]
fn summary_lists_pairs_against_an_allowing_default() {
    let dir = ScratchDir::new("default");
    let deny = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: vault}\nspec: {podSelector: {}}\n";
    let text = ["lab", "shop", "shop2", "vault"]
        .iter()
        .enumerate()
        .map(|(i, ns)| pod_yaml(ns, &format!("10.0.0.{}", i + 1)))
        .collect::<String>()
        + deny;
    let file = dir.write("cluster.yaml", text);
    let output = netcanary(&["analyze", "-f", file.to_str().unwrap(), "-o", "summary"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    // Only vault's ingress is isolated: from lab, shop and shop2, two of the three other
    // namespaces are reached, so their default is "all allowed" and vault differs; vault
    // itself reaches the three others, its default, so nothing of it is listed.
    let start = out.lines().position(|l| l == "80/TCP: pairs that differ from their source namespace's default");
    let lines: Vec<&str> = out
        .lines()
        .skip(start.unwrap_or_else(|| panic!("no section:\n{out}")) + 1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        [
            "FROM NAMESPACE  TO NAMESPACE  ALLOWED  DENIED  DEFAULT OF FROM NAMESPACE",
            "lab             vault               0       1  all allowed",
            "shop            vault               0       1  all allowed",
            "shop2           vault               0       1  all allowed",
        ],
        "{out}"
    );
}

#[test]
fn summary_lists_pairs_allowed_across_environments() {
    let dir = ScratchDir::new("environments");
    let text = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: shop, labels: {{stage: prod}}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: lab, labels: {{stage: test}}}}\n{}{}{}",
        pod_yaml("shop", "10.0.0.1"),
        pod_yaml("lab", "10.0.0.2"),
        // The same environment: not across.
        pod_yaml("shop2", "10.0.0.3"),
    ) + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop2, labels: {stage: prod}}\n";
    let file = dir.write("cluster.yaml", &text);
    let output = netcanary(&["analyze", "-f", file.to_str().unwrap(), "-o", "summary", "--environment-label", "stage"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    // No policy: every pair is allowed; across stage values: lab to shop and shop2, and back.
    let start = out.lines().position(|l| l == "80/TCP: most allowed across environments (namespace label stage)");
    let lines: Vec<&str> =
        out.lines().skip(start.unwrap_or_else(|| panic!("no section:\n{out}")) + 1).take(5).collect();
    assert_eq!(
        lines,
        [
            "FROM NAMESPACE  TO NAMESPACE  ENVIRONMENTS  ALLOWED  DENIED",
            "lab             shop          test → prod         1       0",
            "lab             shop2         test → prod         1       0",
            "shop            lab           prod → test         1       0",
            "shop2           lab           prod → test         1       0",
        ],
        "{out}"
    );
    assert!(!out.contains("most denied"), "nothing is denied: {out}");
}

#[test]
fn json_filters_by_answer_and_namespace() {
    let all = json(&["-f", "examples/cluster"]);
    let filtered = json(&[
        "-f",
        "examples/cluster",
        "--only",
        "allowed",
        "--from-namespace",
        "dev",
        "--to-namespace",
        "production",
        "--to-namespace",
        "staging",
    ]);
    let expected: Vec<&Value> = all["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            v["allowed"] == true
                && v["from"].as_str().unwrap().starts_with("dev/")
                && ["production/", "staging/"].iter().any(|ns| v["to"].as_str().unwrap().starts_with(ns))
        })
        .collect();
    let got: Vec<&Value> = filtered["verdicts"].as_array().unwrap().iter().collect();
    assert_eq!(got, expected);
    // By hand: production and staging admit dev on nothing (their ingress is default deny
    // plus ingress-nginx and their own apps), so nothing is left.
    assert!(got.is_empty(), "{got:?}");
    let denied = json(&[
        "-f",
        "examples/cluster",
        "--only",
        "denied",
        "--from-namespace",
        "dev",
        "--to-namespace",
        "production",
        "--port",
        "5432",
    ]);
    let pairs: Vec<(&str, &str)> = denied["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["from"].as_str().unwrap(), v["to"].as_str().unwrap()))
        .collect();
    assert_eq!(pairs.len(), 3 * 3, "dev's 3 workloads to production's api, worker and db: {pairs:?}");
    assert!(pairs.iter().all(|(f, t)| f.starts_with("dev/") && t.starts_with("production/")));
}

#[test]
fn filters_that_cannot_apply_are_errors() {
    let only = netcanary(&["analyze", "-f", "examples/cluster", "-o", "summary", "--only", "allowed"]);
    assert_eq!(only.status.code(), Some(2), "{}", stderr(&only));
    assert!(stderr(&only).contains("--only filters the verdicts of -o json"), "{}", stderr(&only));
    let missing = netcanary(&["analyze", "-f", "examples/cluster", "--from-namespace", "prod"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("no namespace \"prod\" in the input"), "{}", stderr(&missing));
}

#[test]
fn markdown_has_a_table_per_port() {
    let text = stdout(&netcanary(&["analyze", "-f", "examples/cluster", "-o", "markdown"]));
    assert!(text.contains("### 5432/TCP"));
    assert!(text.contains("| from \\ to |"));
    assert!(text.contains("| **6** `production/deployment/api` |"), "{text}");
}

#[test]
fn explain_names_policies_and_rules() {
    let output = netcanary(&[
        "analyze",
        "-f",
        "examples/cluster",
        "--color",
        "never",
        "--explain",
        "staging/api",
        "staging/db",
        "5432/TCP",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("staging/deployment/api → staging/statefulset/db on 5432/TCP: DENIED"), "{text}");
    assert!(
        text.contains("not by        staging/allow-api-egress egress[0]: port 5432/TCP is not in [443/TCP]"),
        "{text}"
    );
    assert!(
        text.contains(
            "allowed by    staging/allow-api-to-db ingress[0]: from pods app=api in namespace staging, on 5432/TCP"
        ),
        "{text}"
    );
    let unknown = netcanary(&["analyze", "-f", "examples/cluster", "--explain", "nope/x", "staging/db", "80"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("no pod, workload or address \"nope/x\""));
}

#[test]
fn bad_input_names_file_object_and_field_and_exits_2() {
    let dir = ScratchDir::new("bad");
    let file: PathBuf = dir.write(
        "bad.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: prod}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: 70000}]}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
    );
    let path = file.to_str().unwrap();
    let output = netcanary(&["analyze", "-f", path, "--color", "never"]);
    let keep_going = netcanary(&["analyze", "-f", path, "--keep-going", "--port", "80"]);
    let notes = netcanary(&["analyze", "-f", path, "--keep-going", "--all-diagnostics", "--port", "80"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("error: {path}: NetworkPolicy prod/broken: spec.ingress[0].ports[0].port: 70000 must be a port number from 1 to 65535")),
        "{err}"
    );
    assert!(err.contains("1 object(s) skipped on purpose"), "{err}");
    assert!(err.contains("--keep-going"));
    assert!(keep_going.status.success(), "{}", stderr(&keep_going));
    assert!(stderr(&notes).contains("Service default/s: skipped"));
}

#[test]
fn missing_files_and_bad_flags_are_clear() {
    let output = netcanary(&["analyze", "-f", "does-not-exist.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("does-not-exist.yaml: cannot read"));
    let output = netcanary(&["analyze", "-f", "examples/cluster", "--to", "1.1.1.1"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("is not ADDRESS:PORT"), "{}", stderr(&output));
}

#[test]
fn wide_matrices_are_split_to_fit_the_terminal() {
    let output = cli::command(&["analyze", "-f", "examples/cluster", "--port", "80", "--color", "never"])
        .env("COLUMNS", "70")
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(text.contains("80/TCP (columns 1-"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 70), "every line fits 70 columns:\n{text}");
    let chunks = text.lines().filter(|l| l.starts_with("80/TCP")).count();
    assert!(chunks >= 2, "{text}");
}

/// Namespace x: host-network pods h1 and h2, a regular pod p, and a deny-all policy.
fn host_network_cluster(dir: &ScratchDir) -> PathBuf {
    let pod = |name: &str, ip: &str, host_network: bool| {
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: x}}\nspec: {{hostNetwork: {host_network}, containers: [{{name: c, image: i, ports: [{{containerPort: 80}}]}}]}}\nstatus: {{podIP: {ip}}}\n"
        )
    };
    let policy = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: x}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n";
    let text = [pod("h1", "192.168.1.11", true), pod("h2", "192.168.1.12", true), pod("p", "10.0.0.3", false)];
    dir.write("x.yaml", format!("{}{policy}", text.concat()))
}

#[test]
fn host_network_notes_name_the_side_they_are_about_and_verdicts_are_implementation_defined() {
    let dir = ScratchDir::new("host-network");
    let file = host_network_cluster(&dir);
    let doc = json(&["-f", file.to_str().unwrap()]);
    let notes = |v: &Value, side: &str| v[side]["notes"].clone();
    for (from, to) in [("x/h1", "x/h1"), ("x/h1", "x/h2"), ("x/h2", "x/h1"), ("x/h2", "x/h2")] {
        let v = find(&doc, from, to, 80, "TCP");
        assert_eq!(v["allowed"], true, "{from} -> {to}");
        assert_eq!(
            notes(v, "egress"),
            serde_json::json!([format!("{from} uses the host network: pod policy does not govern its egress")]),
            "{from} -> {to}"
        );
        assert_eq!(
            notes(v, "ingress"),
            serde_json::json!([format!("{to} uses the host network: pod policy does not govern its ingress")]),
            "{from} -> {to}"
        );
        assert_eq!(v["implementationDefined"], true, "{from} -> {to}: host network");
    }
    let out = find(&doc, "x/h2", "x/p", 80, "TCP");
    assert_eq!(out["allowed"], false, "p's ingress is isolated");
    assert_eq!(
        notes(out, "egress"),
        serde_json::json!(["x/h2 uses the host network: pod policy does not govern its egress"])
    );
    assert_eq!(out["implementationDefined"], true);
    let into = find(&doc, "x/p", "x/h2", 80, "TCP");
    assert_eq!(
        notes(into, "ingress"),
        serde_json::json!(["x/h2 uses the host network: pod policy does not govern its ingress"])
    );
    assert_eq!(into["implementationDefined"], true);
    assert_eq!(find(&doc, "x/p", "x/p", 80, "TCP")["implementationDefined"], true, "a self pair");
}

#[test]
fn host_network_verdicts_are_marked_in_the_table_and_explained() {
    let dir = ScratchDir::new("host-network-table");
    let file = host_network_cluster(&dir);
    let path = file.to_str().unwrap();
    let table = stdout(&netcanary(&["analyze", "-f", path, "--color", "never"]));
    assert!(table.contains("dim self pair or host network (implementation-defined)"), "{table}");
    let markdown = stdout(&netcanary(&["analyze", "-f", path, "-o", "markdown"]));
    assert!(markdown.contains("So is traffic to or from a pod on the host network"), "{markdown}");
    let explained = stdout(&netcanary(&["analyze", "-f", path, "--color", "never", "--explain", "x/h2", "x/h1", "80"]));
    assert!(explained.contains("x/h2 uses the host network: pod policy does not govern its egress"), "{explained}");
    assert!(explained.contains("x/h1 uses the host network: pod policy does not govern its ingress"), "{explained}");
    assert!(explained.contains("the NetworkPolicy spec leaves traffic of host-network pods undefined"), "{explained}");
    let plain = stdout(&netcanary(&["analyze", "-f", "examples/cluster", "--color", "never"]));
    assert!(plain.contains("dim self pair (implementation-defined)"), "no host network, no mention:\n{plain}");
}

#[test]
fn cluster_policies_name_tier_rule_and_action_and_unknown_cells_are_null() {
    let doc = json(&["-f", "tests/scenarios/cluster-policies/tiers.yaml"]);
    let v = find(&doc, "x/a", "y/b", 80, "TCP");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["ingress"]["tier"], "Baseline");
    assert_eq!(v["ingress"]["rule"], "ClusterNetworkPolicy/baseline ingress[0]");
    assert_eq!(v["ingress"]["action"], "Deny");
    assert_eq!(v["egress"]["tier"], "Default");
    assert_eq!(v["egress"]["action"], "Accept");
    assert_eq!(v["egress"]["rule"], Value::Null);
    // y/b's egress: an Accept rule naming domains before a Deny of every IPv4 address.
    let v = find(&doc, "y/b", "x/a", 80, "TCP");
    assert_eq!(v["egress"]["allowed"], Value::Null);
    assert!(v["egress"]["unknown"].as_str().unwrap().contains("names domains"), "{v}");
    assert_eq!(v["allowed"], false, "the known Baseline Deny on x/a's ingress decides the cell");
    let explained = stdout(&netcanary(&[
        "analyze",
        "-f",
        "tests/scenarios/cluster-policies/tiers.yaml",
        "--color",
        "never",
        "--explain",
        "x/a",
        "y/b",
        "80/TCP",
    ]));
    let ingress = &explained[explained.find("ingress of y/b").expect("an ingress section")..];
    let lines: Vec<&str> = ingress.lines().map(str::trim).collect();
    let at = |prefix: &str| {
        lines.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}: {explained}"))
    };
    assert!(at("Admin tier") < at("Pass") && at("Pass") < at("NetworkPolicy tier"), "{explained}");
    assert!(lines[at("Pass")].ends_with("passed to the NetworkPolicy tier"), "{explained}");
    assert!(
        explained.contains("decided by    Baseline tier: ClusterNetworkPolicy/baseline ingress[0] (Deny)"),
        "{explained}"
    );
}

/// Intent with mistakes is refused whole, each mistake named by file, intent, statement
/// and field, and nothing is checked: exit 2. A statement that holds exits 0.
#[test]
fn intent_with_errors_exits_2_and_intent_that_holds_exits_0() {
    let dir = ScratchDir::new("analyze-intent");
    let bad = dir.write(
        "bad.yaml",
        "apiVersion: netcanary.io/v1alpha1\nkind: NetcanaryIntent\nmetadata: {name: prod}\nspec:\n  statements:\n\
         \x20   - {from: {namespaceSelecter: {}}, to: {}, ports: [{port: 5432}], expect: deny}\n\
         \x20   - {from: {}, to: {}, ports: [{port: dns, protocol: UDP}], expect: allow}\n",
    );
    let output = netcanary(&["analyze", "-f", "examples/cluster", "--intent", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let errors = stderr(&output);
    let file = bad.display();
    assert!(
        errors.contains(&format!(
            "error: {file}: NetcanaryIntent prod: spec.statements[0].from.namespaceSelecter: unknown field"
        )),
        "{errors}"
    );
    assert!(
        errors.contains(&format!(
            "error: {file}: NetcanaryIntent prod: spec.statements[1].ports[0].port: \"dns\" must be a port number"
        )),
        "{errors}"
    );
    assert_eq!(stdout(&output), "", "nothing is checked");

    let holds = dir.write(
        "holds.yaml",
        "apiVersion: netcanary.io/v1alpha1\nkind: NetcanaryIntent\nmetadata: {name: staging}\nspec:\n  statements:\n\
         \x20   - name: dev-never-reaches-staging-db\n\
         \x20     from: {namespaceSelector: {matchLabels: {env: dev}}}\n\
         \x20     to: {namespaceSelector: {matchLabels: {env: staging}}, podSelector: {matchLabels: {app: db}}}\n\
         \x20     ports: [{port: 5432}]\n\
         \x20     expect: deny\n",
    );
    let output = netcanary(&["analyze", "-f", "examples/cluster", "--intent", holds.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("intent staging/dev-never-reaches-staging-db: holds"), "{}", stdout(&output));
}
