//! netcanary's alerts and dashboard on real monitoring (`tests/common/monitoring.rs`: a
//! Pushgateway, Prometheus evaluating the shipped rules, an Alertmanager) fed by real runs
//! on the bed of `tests/common/bed.rs`: `netcanary run --pushgateway` against a network
//! that enforces nothing raises NetcanaryUnexpectedReachability for exactly the doors the
//! run found open, and NetcanaryPolicyNotEnforced, at the Alertmanager, which suppresses
//! the first under the second with the shipped inhibit rules; every query of
//! `dashboards/netcanary.json` answers with data; a network that enforces the canary but
//! not the workloads' policies resolves the canary alert and leaves the path alerts
//! paging; once the network enforces policy, the next run resolves them.
//!
//! Needs root, network namespaces, the kube-apiserver fixture and the monitoring
//! binaries: see `tests/common/netns.rs`, `tests/common/kube_fixture.rs` and
//! `tests/common/monitoring.rs` for how it skips or fails without them.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::bed::{Bed, Ran, canary_only_rules, enforcing_rules, summary};
use common::monitoring::{JOB, Monitoring};
use common::read_repo_file;
use netcanary_verify::{Canary, Outcome};
use serde_json::{Value, json};

/// From a push to the Alertmanager: a scrape and an evaluation (1 s each), then the send.
const ALERT_TIMEOUT: Duration = Duration::from_secs(30);
const DASHBOARD: &str = "dashboards/netcanary.json";
/// The alerts about what the network does, which a run raises and resolves.
const NETWORK_ALERTS: [&str; 3] =
    ["NetcanaryUnexpectedReachability", "NetcanaryPolicyNotEnforced", "NetcanaryUnexpectedBlock"];
/// The labels that name a mismatch's path.
const PATH: [&str; 6] = ["src_namespace", "src_workload", "dst_namespace", "dst_workload", "port", "protocol"];
/// Grafana's variables in the dashboard's queries, and what they stand for here.
const GRAFANA_VARIABLES: [(&str, &str); 5] =
    [("${job}", JOB), ("$job", JOB), ("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "1h")];

/// `netcanary run` against the bed, pushing its metrics to the Pushgateway as [`JOB`].
fn pushing(bed: &Bed, monitoring: &Monitoring) -> Command {
    let mut command = bed.command();
    command.arg("--pushgateway").arg(monitoring.pushgateway_url()).args(["--push-job", JOB]);
    command
}

/// The alerts (Prometheus' or the Alertmanager's) named `name`.
fn named<'a>(alerts: &'a [Value], name: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["labels"]["alertname"] == name).collect()
}

/// The fingerprints of the alerts whose inhibit rules suppress an Alertmanager `alert`.
fn inhibited_by(alert: &Value) -> Vec<&str> {
    let fingerprints = alert["status"]["inhibitedBy"].as_array().map(Vec::as_slice).unwrap_or_default();
    fingerprints.iter().filter_map(Value::as_str).collect()
}

/// The path each alert named `name` is about.
fn paths(alerts: &[Value], name: &str) -> BTreeSet<Vec<String>> {
    named(alerts, name)
        .into_iter()
        .map(|a| PATH.iter().map(|l| a["labels"][l].as_str().unwrap_or_default().to_string()).collect())
        .collect()
}

/// The doors the run found open, as alert labels name them.
fn open_doors(ran: &Ran) -> BTreeSet<Vec<String>> {
    ran.record
        .mismatches()
        .filter(|p| p.outcome == Outcome::UnexpectedAllow)
        .map(|p| {
            vec![
                p.source.namespace.clone(),
                p.source.workload.clone(),
                p.destination.namespace.clone(),
                p.destination.workload.clone(),
                p.port.to_string(),
                p.protocol.clone(),
            ]
        })
        .collect()
}

#[tokio::test]
async fn alerts_fire_and_resolve_on_real_monitoring_and_the_dashboard_answers() {
    const TEST: &str = "alerts_fire_and_resolve_on_real_monitoring_and_the_dashboard_answers";
    let started = Instant::now();
    let Some(monitoring) = Monitoring::start_or_skip(TEST) else { return };
    let Some(bed) = Bed::new(TEST, None).await else { return };
    eprintln!("monitoring and bed up after {:?}", started.elapsed());

    // The network enforces nothing (no ruleset on the hub).
    let ran = bed.run_with(pushing(&bed, &monitoring)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(ran.record.canary, Canary::NotEnforced, "{}", summary(&ran.record));
    assert!(!ran.stderr.contains("cannot push"), "{}", ran.stderr);
    let open = open_doors(&ran);
    assert!(!open.is_empty(), "the run found no open door:\n{}", summary(&ran.record));
    // One page: the canary's. The inhibit rules hold back the paths the canary explains.
    let alerts = monitoring.wait_until("the run's alerts at the Alertmanager, paths inhibited", ALERT_TIMEOUT, |m| {
        let alerts = m.alertmanager_alerts();
        let canary = named(&alerts, "NetcanaryPolicyNotEnforced");
        let canary_fingerprint = canary.first().and_then(|c| c["fingerprint"].as_str());
        let by_canary = |alert: &&Value| {
            alert["status"]["state"] == "suppressed" && inhibited_by(alert) == Vec::from_iter(canary_fingerprint)
        };
        let complete = paths(&alerts, "NetcanaryUnexpectedReachability") == open
            && canary.len() == 1
            && named(&alerts, "NetcanaryUnexpectedReachability").iter().all(by_canary);
        complete.then_some(alerts)
    });
    for alert in named(&alerts, "NetcanaryUnexpectedReachability") {
        let labels = &alert["labels"];
        assert_eq!(
            (&labels["severity"], &labels["job"], &labels["kind"]),
            (&json!("critical"), &json!(JOB), &json!("unexpected_allow")),
            "{alert}"
        );
        let [src_ns, src, dst_ns, dst, port, protocol] = PATH.map(|l| labels[l].as_str().unwrap_or_default());
        let path = format!("from {src_ns}/{src} to {dst_ns}/{dst} on {port}/{protocol}");
        assert!(alert["annotations"]["summary"].as_str().is_some_and(|s| s.ends_with(&path)), "{alert}");
    }
    let canary = named(&alerts, "NetcanaryPolicyNotEnforced");
    assert_eq!(canary.len(), 1, "{canary:?}");
    assert_eq!((&canary[0]["labels"]["severity"], &canary[0]["labels"]["job"]), (&json!("critical"), &json!(JOB)));
    assert_eq!(canary[0]["status"]["state"], "active", "the canary alert pages: {}", canary[0]);
    assert!(named(&alerts, "NetcanaryUnexpectedBlock").is_empty(), "nothing was blocked: {alerts:?}");

    // While that run's data is there, every query of the dashboard has an answer.
    check_dashboard(&monitoring);

    // The network blocks the canary but not the doors into prod: the canary alert resolves,
    // and the path alerts, no longer inhibited, page.
    bed.kubelet.net().nft_hub(&canary_only_rules(&bed.kubelet));
    let ran = bed.run_with(pushing(&bed, &monitoring)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(ran.record.canary, Canary::Enforced, "{}", summary(&ran.record));
    let open = open_doors(&ran);
    assert!(!open.is_empty(), "the run found no open door:\n{}", summary(&ran.record));
    monitoring.wait_until("the canary alert resolved, the path alerts paging", ALERT_TIMEOUT, |m| {
        let alerts = m.alertmanager_alerts();
        let reachability = named(&alerts, "NetcanaryUnexpectedReachability");
        let paging = reachability.iter().all(|a| a["status"]["state"] == "active" && inhibited_by(a).is_empty());
        let done = named(&alerts, "NetcanaryPolicyNotEnforced").is_empty()
            && paths(&alerts, "NetcanaryUnexpectedReachability") == open
            && paging;
        done.then_some(())
    });

    // The network enforces policy: the next run verifies it, and the alerts resolve.
    bed.kubelet.net().nft_hub(&enforcing_rules(&bed.kubelet));
    let ran = bed.run_with(pushing(&bed, &monitoring)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    monitoring.wait_until("the alerts resolved at Prometheus and the Alertmanager", ALERT_TIMEOUT, |m| {
        let (firing, held) = (m.firing(), m.alertmanager_alerts());
        NETWORK_ALERTS.iter().all(|name| named(&firing, name).is_empty() && named(&held, name).is_empty()).then_some(())
    });
    eprintln!("the whole test took {:?}", started.elapsed());
}

/// Every panel has a title and the `datasource` variable as its data source; every target
/// query, and every template variable query, answers with data from the run just pushed.
fn check_dashboard(monitoring: &Monitoring) {
    let text = read_repo_file(DASHBOARD);
    let dashboard: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    let datasource = json!({"type": "prometheus", "uid": "${datasource}"});
    let variables = dashboard["templating"]["list"].as_array().cloned().unwrap_or_default();
    assert!(
        variables.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
        "{DASHBOARD}: no `datasource` variable of type prometheus"
    );
    let mut failures = Vec::new();
    let mut queries = 0;
    for variable in variables.iter().filter(|v| v["type"] == "query") {
        let name = variable["name"].as_str().unwrap_or_default();
        if variable["datasource"] != datasource {
            failures.push(format!("variable {name}: datasource {} is not the variable", variable["datasource"]));
        }
        let query = variable["query"].as_str().or(variable["query"]["query"].as_str()).unwrap_or_default();
        let Some((selector, label)) =
            query.strip_prefix("label_values(").and_then(|q| q.strip_suffix(')')).and_then(|q| q.rsplit_once(','))
        else {
            failures.push(format!("variable {name}: {query:?} is not label_values(selector, label)"));
            continue;
        };
        queries += 1;
        match monitoring.label_values(label.trim(), selector.trim()) {
            Ok(values) if values.iter().any(|v| v == JOB) => {}
            answer => failures.push(format!("variable {name}: {query}: {answer:?} lacks {JOB}")),
        }
    }
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    assert!(!panels.is_empty(), "{DASHBOARD} has no panels");
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
        if title.is_empty() {
            failures.push(format!("panel {}: no title", panel["id"]));
        }
        if panel["datasource"] != datasource {
            failures.push(format!("panel {title:?}: datasource {} is not the variable", panel["datasource"]));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            failures.push(format!("panel {title:?}: no query"));
        }
        for target in &targets {
            if target["datasource"] != datasource {
                failures.push(format!(
                    "panel {title:?}: a target's datasource {} is not the variable",
                    target["datasource"]
                ));
            }
            let expr = GRAFANA_VARIABLES
                .iter()
                .fold(target["expr"].as_str().unwrap_or_default().to_string(), |e, (name, value)| {
                    e.replace(name, value)
                });
            queries += 1;
            match monitoring.query(&expr) {
                Ok(result) if result.as_array().is_some_and(|r| !r.is_empty()) => {}
                Ok(result) => failures.push(format!("panel {title:?}: {expr}: no data ({result})")),
                Err(error) => failures.push(format!("panel {title:?}: {expr}: {error}")),
            }
        }
    }
    assert!(failures.is_empty(), "{DASHBOARD}:\n{}", failures.join("\n"));
    eprintln!("{queries} dashboard queries answered");
}
