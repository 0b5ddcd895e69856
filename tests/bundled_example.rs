//! The bundled example (`examples/cluster`) as README shows it: what its policies mean,
//! worked out by hand from the manifests and checked against `analyze -o json`; and the
//! output README quotes, checked against what `analyze` prints, so README cannot drift.

use std::process::Output;

use serde_json::Value;

#[path = "common/cli.rs"]
mod cli;

fn netcanary(args: &[&str]) -> Output {
    let output = cli::command(args).env("NO_COLOR", "1").env("COLUMNS", "200").output().expect("run netcanary");
    assert!(
        output.status.success(),
        "netcanary {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn analyze_json(extra: &[&str]) -> Value {
    let mut args = vec!["analyze", "-f", "examples/cluster", "-o", "json"];
    args.extend_from_slice(extra);
    serde_json::from_slice(&netcanary(&args).stdout).expect("valid JSON")
}

fn verdict<'a>(doc: &'a Value, from: &str, to: &str, port: u64, protocol: &str) -> &'a Value {
    doc["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .find(|v| v["from"] == from && v["to"] == to && v["port"] == port && v["protocol"] == protocol)
        .unwrap_or_else(|| panic!("no verdict {from} -> {to} on {port}/{protocol}"))
}

const DEV_DB: &str = "dev/statefulset/db";
const PROD_DB: &str = "production/statefulset/db";
const STAGING_DB: &str = "staging/statefulset/db";

/// Every cell of the 5432/TCP matrix README shows, worked out from the manifests:
/// (source, destination, allowed, the source's egress allows, the destination's ingress
/// allows).
///
/// Egress: dev, ingress-nginx and kube-system have no policy, so their egress is open.
/// production's default-deny-all isolates every pod's egress; allow-dns opens only 53, and
/// only api (allow-api-egress egress[0]) and worker (allow-worker-egress) may reach pods
/// app=db of their own namespace on 5432. staging's api has only HTTPS (allow-api-egress)
/// besides DNS, so nothing in staging may send to 5432.
///
/// Ingress: dev/db is not isolated. production/db admits app in (api, worker) of
/// production on its named port postgres (5432), and every pod of ingress-nginx
/// (allow-ingress-controller, any port). staging/db admits app=api of staging on 5432, and
/// ingress-nginx.
const MATRIX_5432: [(&str, &str, bool, bool, bool); 33] = [
    ("dev/deployment/api", DEV_DB, true, true, true),
    ("dev/deployment/api", PROD_DB, false, true, false),
    ("dev/deployment/api", STAGING_DB, false, true, false),
    ("dev/deployment/worker", DEV_DB, true, true, true),
    ("dev/deployment/worker", PROD_DB, false, true, false),
    ("dev/deployment/worker", STAGING_DB, false, true, false),
    (DEV_DB, DEV_DB, true, true, true),
    (DEV_DB, PROD_DB, false, true, false),
    (DEV_DB, STAGING_DB, false, true, false),
    ("ingress-nginx/deployment/ingress-nginx-controller", DEV_DB, true, true, true),
    ("ingress-nginx/deployment/ingress-nginx-controller", PROD_DB, true, true, true),
    ("ingress-nginx/deployment/ingress-nginx-controller", STAGING_DB, true, true, true),
    ("kube-system/deployment/coredns", DEV_DB, true, true, true),
    ("kube-system/deployment/coredns", PROD_DB, false, true, false),
    ("kube-system/deployment/coredns", STAGING_DB, false, true, false),
    ("production/deployment/api", DEV_DB, false, false, true),
    ("production/deployment/api", PROD_DB, true, true, true),
    ("production/deployment/api", STAGING_DB, false, false, false),
    ("production/deployment/worker", DEV_DB, false, false, true),
    ("production/deployment/worker", PROD_DB, true, true, true),
    ("production/deployment/worker", STAGING_DB, false, false, false),
    (PROD_DB, DEV_DB, false, false, true),
    (PROD_DB, PROD_DB, false, false, false),
    (PROD_DB, STAGING_DB, false, false, false),
    ("staging/deployment/api", DEV_DB, false, false, true),
    ("staging/deployment/api", PROD_DB, false, false, false),
    ("staging/deployment/api", STAGING_DB, false, false, true),
    ("staging/deployment/worker", DEV_DB, false, false, true),
    ("staging/deployment/worker", PROD_DB, false, false, false),
    ("staging/deployment/worker", STAGING_DB, false, false, false),
    (STAGING_DB, DEV_DB, false, false, true),
    (STAGING_DB, PROD_DB, false, false, false),
    (STAGING_DB, STAGING_DB, false, false, false),
];

#[test]
fn the_5432_matrix_is_what_the_policies_say() {
    let doc = analyze_json(&[]);
    let mut wrong = Vec::new();
    for (from, to, allowed, egress, ingress) in MATRIX_5432 {
        let v = verdict(&doc, from, to, 5432, "TCP");
        let got = (v["allowed"].as_bool(), v["egress"]["allowed"].as_bool(), v["ingress"]["allowed"].as_bool());
        if got != (Some(allowed), Some(egress), Some(ingress)) {
            wrong.push(format!(
                "  {from} -> {to}: want allowed {allowed} (egress {egress}, ingress {ingress}), got {got:?}"
            ));
        }
    }
    let destinations = doc["verdicts"].as_array().unwrap().iter().filter(|v| v["port"] == 5432).count();
    assert_eq!(destinations, MATRIX_5432.len(), "11 sources x the 3 databases on 5432/TCP");
    assert!(wrong.is_empty(), "the 5432/TCP matrix disagrees with the policies:\n{}", wrong.join("\n"));
}

#[test]
fn staging_api_to_its_database_is_denied_by_its_own_egress() {
    let doc = analyze_json(&[]);
    let v = verdict(&doc, "staging/deployment/api", STAGING_DB, 5432, "TCP");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["egress"]["allowed"], false, "default-deny-all isolates the api's egress; nothing opens 5432");
    assert_eq!(v["egress"]["isolated"], true);
    assert_eq!(
        v["egress"]["policies"],
        serde_json::json!(["staging/allow-api-egress", "staging/allow-dns", "staging/default-deny-all"])
    );
    assert_eq!(v["egress"]["allowedBy"], Value::Null, "no egress rule allows it");
    assert_eq!(v["ingress"]["allowed"], true, "the database admits the api");
    assert_eq!(v["ingress"]["allowedBy"], serde_json::json!(["staging/allow-api-to-db ingress[0]"]));
}

#[test]
fn production_api_reaches_https_outside_but_not_private_ranges() {
    let doc = analyze_json(&["--to", "1.1.1.1:443/TCP", "--to", "10.20.30.40:443/TCP"]);
    let out = verdict(&doc, "production/deployment/api", "1.1.1.1", 443, "TCP");
    assert_eq!(out["allowed"], true);
    assert_eq!(out["egress"]["allowedBy"], serde_json::json!(["production/allow-api-egress egress[1]"]));
    assert_eq!(out["ingress"]["isolated"], false, "pod policy does not govern an address outside the cluster");
    let private = verdict(&doc, "production/deployment/api", "10.20.30.40", 443, "TCP");
    assert_eq!(private["allowed"], false, "10.0.0.0/8 is excepted");
    let worker = verdict(&doc, "production/deployment/worker", "1.1.1.1", 443, "TCP");
    assert_eq!(worker["allowed"], false, "only the api has HTTPS egress");
    assert_eq!(verdict(&doc, "staging/deployment/api", "1.1.1.1", 443, "TCP")["allowed"], true);
    assert_eq!(verdict(&doc, "staging/deployment/worker", "1.1.1.1", 443, "TCP")["allowed"], false);
}

/// DNS and the ingress controller, as the starter kit means them.
#[test]
fn dns_and_the_ingress_controller_as_the_starter_kit_means_them() {
    let doc = analyze_json(&[]);
    const COREDNS: &str = "kube-system/deployment/coredns";
    for from in
        ["production/deployment/api", "production/statefulset/db", "staging/deployment/worker", "dev/deployment/api"]
    {
        for protocol in ["UDP", "TCP"] {
            assert_eq!(verdict(&doc, from, COREDNS, 53, protocol)["allowed"], true, "{from} -> DNS on 53/{protocol}");
        }
    }
    let controller = "ingress-nginx/deployment/ingress-nginx-controller";
    assert_eq!(verdict(&doc, controller, "production/deployment/api", 8080, "TCP")["allowed"], true);
    assert_eq!(verdict(&doc, "dev/deployment/api", "production/deployment/api", 8080, "TCP")["allowed"], false);
    assert_eq!(
        verdict(&doc, "production/deployment/worker", "production/deployment/api", 8080, "TCP")["allowed"],
        false
    );
    assert_eq!(verdict(&doc, "staging/deployment/api", "dev/deployment/api", 8080, "TCP")["allowed"], false);
    assert_eq!(verdict(&doc, "dev/deployment/worker", "dev/deployment/api", 8080, "TCP")["allowed"], true);
}

/// `examples/intent.yaml` against the example's policies, worked out by hand:
/// - dev never reaches production's db: dev has 3 workloads, and production/db admits only
///   api and worker of production, and ingress-nginx: holds, 3 connections.
/// - ingress-nginx never reaches production's db: the starter kit's
///   allow-ingress-controller admits every pod of ingress-nginx on every port, and
///   ingress-nginx has no egress policy: the one violation.
/// - production's api reaches its db: allow-api-egress egress[0] and allow-api-to-db.
/// - every namespace reaches kube-dns on 53 UDP and TCP: production and staging allow it
///   (allow-dns), the rest have no egress policy and kube-system none for ingress: holds
///   for the 10 other workloads on 2 ports (coredns to itself is not checked).
#[test]
fn the_example_intent_is_checked_against_the_policies() {
    let output = cli::command(&["analyze", "-f", "examples/cluster", "--intent", "examples/intent.yaml", "-o", "json"])
        .output()
        .expect("run netcanary");
    assert_eq!(output.status.code(), Some(1), "a violation exits 1: {}", String::from_utf8_lossy(&output.stderr));
    let doc: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let statements = doc["statements"].as_array().expect("statements");
    let summary: Vec<(&str, u64, usize)> = statements
        .iter()
        .map(|s| {
            (s["name"].as_str().unwrap(), s["checked"].as_u64().unwrap(), s["violations"].as_array().unwrap().len())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("dev-never-reaches-production-db", 3, 0),
            ("only-backends-reach-production-db", 1, 1),
            ("api-reaches-its-db", 1, 0),
            ("every-namespace-reaches-kube-dns", 20, 0),
        ]
    );
    let violation = &statements[1]["violations"][0];
    assert_eq!(violation["from"], "ingress-nginx/deployment/ingress-nginx-controller");
    assert_eq!(violation["to"], PROD_DB);
    assert_eq!(violation["policy"], "allow");
    let rules: Vec<(&str, &Value)> = violation["responsible"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["direction"].as_str().unwrap(), &r["rule"]))
        .collect();
    assert_eq!(
        rules,
        [("egress", &Value::Null), ("ingress", &Value::from("production/allow-ingress-controller ingress[0]"))]
    );
    assert_eq!(doc["violations"], 1);
    assert_eq!(doc["matchingNothing"], 0);
}

/// The output blocks of README's "The bundled example": each starts with
/// `$ netcanary ARGS`, and `...` stands for lines README leaves out.
fn readme_examples() -> Vec<(Vec<String>, Vec<String>)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("read README.md");
    let start = readme.find("### The bundled example").expect("README has the bundled example");
    let section = &readme[start..];
    let section = &section[..section[4..].find("\n### ").map_or(section.len(), |end| end + 4)];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```" {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let Some(command) = body.first().and_then(|l| l.strip_prefix("$ netcanary ")) else { continue };
        let args = command.split_whitespace().map(str::to_string).collect();
        blocks.push((args, body[1..].iter().map(|l| l.trim_end().to_string()).collect()));
    }
    blocks
}

#[test]
fn readme_shows_what_analyze_prints() {
    let blocks = readme_examples();
    assert_eq!(blocks.len(), 5, "the matrix, two explanations, the intent check and the summary");
    assert!(blocks[0].1.iter().any(|l| l.starts_with("5432/TCP")), "the matrix block shows 5432/TCP");
    for (args, shown) in blocks {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let printed = if args.contains(&"--intent") {
            let output = cli::command(&args).env("NO_COLOR", "1").output().expect("run netcanary");
            assert_eq!(output.status.code(), Some(1), "the example's intent has a violation");
            String::from_utf8(output.stdout).expect("UTF-8")
        } else {
            String::from_utf8(netcanary(&args).stdout).expect("UTF-8")
        };
        let printed: Vec<&str> = printed.lines().map(str::trim_end).collect();
        // Each run of lines between `...` must appear in order; the first at the top.
        let mut at = 0;
        for (n, part) in shown.split(|l| l.trim() == "...").enumerate() {
            if part.is_empty() {
                continue;
            }
            let found = (at..=printed.len().saturating_sub(part.len()))
                .find(|&i| (n > 0 || i == 0) && printed[i..i + part.len()] == *part)
                .unwrap_or_else(|| {
                    panic!(
                        "README's output of `netcanary {}` is not what it prints; README shows:\n{}\n\nit prints:\n{}",
                        args.join(" "),
                        part.join("\n"),
                        printed.join("\n")
                    )
                });
            at = found + part.len();
        }
    }
}
