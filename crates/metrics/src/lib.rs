//! netcanary's metrics, with the names alerts and dashboards use (DESIGN.md): one
//! registry, one prefix, labels bounded to namespaces, workloads, ports and outcomes —
//! never pod names or UIDs.
//!
//! `serve` exposes the registry on `/metrics`; a `run` in a CronJob pushes it to a
//! Pushgateway.

pub mod http;

use netcanary_verify::{Canary, RunRecord};
use prometheus::{Encoder, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry, TextEncoder};

fn set(gauge: &GaugeVec, value: f64) {
    gauge.with_label_values::<&str>(&[]).set(value);
}

/// Probe latency buckets, in seconds: from loopback-fast to the longest probe deadline.
const LATENCY_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// How long a push may take, connecting included.
pub const PUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Every series appears only once a run has set it: a gauge exported at 0 before the first
/// run would read as "the canary connected" or "the run failed" and page someone.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    run_timestamp: GaugeVec,
    run_success: GaugeVec,
    run_duration: GaugeVec,
    probes: GaugeVec,
    mismatch: GaugeVec,
    namespace_pairs: GaugeVec,
    probe_duration: HistogramVec,
    rules_covered: GaugeVec,
    rules_planned: GaugeVec,
    canary: GaugeVec,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push to {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The Pushgateway refused the push; it says why in the body.
    #[error("push to {url}: the Pushgateway answered {status}: {body}")]
    Refused { url: String, status: u16, body: String },
    #[error("encode metrics: {0}")]
    Encode(#[from] prometheus::Error),
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("registered once");
            g
        };
        let gauge = |name: &str, help: &str| gauge_vec(name, help, &[]);
        let probe_duration = HistogramVec::new(
            HistogramOpts::new(
                "netcanary_probe_duration_seconds",
                "How long probes took, by protocol and what they observed.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["protocol", "observed"],
        )
        .expect("valid metric");
        registry.register(Box::new(probe_duration.clone())).expect("registered once");
        Self {
            run_timestamp: gauge("netcanary_run_timestamp_seconds", "Unix time at which the last run finished."),
            run_success: gauge("netcanary_run_success", "1 when the last run verified everything it planned, else 0."),
            run_duration: gauge("netcanary_run_duration_seconds", "How long the last run took."),
            probes: gauge_vec("netcanary_probes", "Probes of the last run, by judgement.", &["result"]),
            mismatch: gauge_vec(
                "netcanary_mismatch",
                "1 for every open mismatch between policy and network, or intent violation, in the last run.",
                &["src_namespace", "src_workload", "dst_namespace", "dst_workload", "port", "protocol", "kind", "path"],
            ),
            namespace_pairs: gauge_vec(
                "netcanary_namespace_pair_probes",
                "Probes of the last run from one namespace to another, by what policy expects and their judgement.",
                &["src_namespace", "dst_namespace", "expected", "result"],
            ),
            rules_covered: gauge(
                "netcanary_policy_rules_covered_ratio",
                "Fraction of policy rules the last run exercised: by a probe that ran and got an answer.",
            ),
            rules_planned: gauge(
                "netcanary_policy_rules_planned_ratio",
                "Fraction of policy rules the last run planned to exercise (what it would cover if every probe answered).",
            ),
            canary: gauge(
                "netcanary_enforcement_canary",
                "1 when the enforcement canary was blocked as policy says; 0 when the network enforces nothing.",
            ),
            probe_duration,
            registry,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Replaces the last run's state with `run`'s (mismatches no longer seen disappear).
    pub fn record(&self, run: &RunRecord) {
        set(&self.run_timestamp, run.finished_at);
        set(&self.run_success, if run.verified() { 1.0 } else { 0.0 });
        set(&self.run_duration, run.duration_seconds());
        for (outcome, count) in run.counts() {
            self.probes.with_label_values(&[outcome.as_str()]).set(count as f64);
        }
        self.mismatch.reset();
        for probe in run.mismatches() {
            let port = probe.port.to_string();
            self.mismatch
                .with_label_values(&[
                    probe.source.namespace.as_str(),
                    probe.source.workload.as_str(),
                    probe.destination.namespace.as_str(),
                    probe.destination.workload.as_str(),
                    port.as_str(),
                    probe.protocol.as_str(),
                    probe.outcome.as_str(),
                    probe.path.as_str(),
                ])
                .set(1.0);
        }
        // The reachability matrix counts only the pairs this run probed, so a pair the plan no
        // longer holds disappears. DNS probes count towards the DNS Service's namespace; the
        // canary is no probe of the cluster's workloads (it has a gauge of its own).
        self.namespace_pairs.reset();
        for probe in &run.probes {
            self.namespace_pairs
                .with_label_values(&[
                    probe.source.namespace.as_str(),
                    probe.destination.namespace.as_str(),
                    probe.expected.as_str(),
                    probe.outcome.as_str(),
                ])
                .inc();
            if let (Some(millis), Some(observed)) = (probe.millis, probe.observed.last()) {
                self.probe_duration
                    .with_label_values(&[probe.protocol.as_str(), observed.as_str()])
                    .observe(millis as f64 / 1000.0);
            }
        }
        // A run that ended before it planned knows nothing of coverage: neither 0 nor 1.
        set(&self.rules_covered, run.coverage.map_or(f64::NAN, |c| c.exercised_ratio()));
        set(&self.rules_planned, run.coverage.map_or(f64::NAN, |c| c.planned_ratio()));
        set(
            &self.canary,
            match run.canary {
                Canary::Enforced => 1.0,
                Canary::NotEnforced => 0.0,
                // Neither: an alert on `== 0` must not fire when the canary could not be judged.
                Canary::Unknown(_) => f64::NAN,
            },
        );
    }

    /// The Prometheus text exposition format.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }

    /// Replaces the `job` group on a Pushgateway with these metrics (HTTP PUT, so metrics
    /// of the previous run do not linger). Blocking, for at most [`PUSH_TIMEOUT`]: a gateway
    /// that drops packets must not hold a finished run until its Job is killed.
    pub fn push(&self, gateway: &str, job: &str) -> Result<(), PushError> {
        self.push_within(gateway, job, PUSH_TIMEOUT)
    }

    fn push_within(&self, gateway: &str, job: &str, timeout: std::time::Duration) -> Result<(), PushError> {
        let url = format!("{}/metrics/job/{job}", gateway.trim_end_matches('/'));
        let body = self.encode()?;
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        let http = |source| PushError::Http { url: url.clone(), source: Box::new(source) };
        let mut response =
            agent.put(&url).header("Content-Type", "text/plain; version=0.0.4").send(body).map_err(http)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Err(PushError::Refused { url, status: status.as_u16(), body: body.trim().to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use netcanary_verify::record::Observed;
    use netcanary_verify::sample::{self, run};
    use netcanary_verify::{Expectation, Outcome, ProbeRecord, WorkloadRef};

    use super::*;

    fn probe(outcome: Outcome, observed: Observed) -> ProbeRecord {
        sample::probe(outcome, false, observed)
    }

    #[test]
    fn a_run_becomes_the_design_metrics() {
        let metrics = Metrics::new();
        metrics.record(&run(
            vec![probe(Outcome::UnexpectedAllow, Observed::Connected), probe(Outcome::Pass, Observed::Timeout)],
            Canary::NotEnforced,
        ));
        let text = metrics.encode().unwrap();
        for line in [
            "netcanary_run_timestamp_seconds 104",
            "netcanary_run_duration_seconds 4",
            "netcanary_run_success 1",
            "netcanary_probes{result=\"unexpected_allow\"} 1",
            "netcanary_probes{result=\"pass\"} 1",
            "netcanary_probes{result=\"inconclusive\"} 0",
            "netcanary_mismatch{dst_namespace=\"prod\",dst_workload=\"db\",kind=\"unexpected_allow\",path=\"pod\",port=\"5432\",protocol=\"TCP\",src_namespace=\"dev\",src_workload=\"api\"} 1",
            "netcanary_policy_rules_covered_ratio 0.75",
            "netcanary_policy_rules_planned_ratio 1",
            "netcanary_enforcement_canary 0",
            "netcanary_probe_duration_seconds_count{observed=\"connected\",protocol=\"TCP\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // The next run saw no mismatch: the series disappears rather than staying at 1.
        metrics.record(&run(vec![probe(Outcome::Pass, Observed::Timeout)], Canary::Enforced));
        let text = metrics.encode().unwrap();
        assert!(!text.contains("netcanary_mismatch{"), "{text}");
        assert!(text.contains("netcanary_enforcement_canary 1"));
    }

    /// Policy allows dev/api to prod/db and the network lets it through, but intent forbids
    /// it: its own result, and its own kind of mismatch.
    #[test]
    fn an_intent_violation_is_a_result_and_a_mismatch_kind() {
        let metrics = Metrics::new();
        let violation = sample::probe(Outcome::IntentViolation, true, Observed::Connected);
        metrics.record(&run(vec![violation], Canary::Enforced));
        let text = metrics.encode().unwrap();
        for line in [
            "netcanary_probes{result=\"intent_violation\"} 1",
            "netcanary_probes{result=\"unexpected_allow\"} 0",
            "netcanary_mismatch{dst_namespace=\"prod\",dst_workload=\"db\",kind=\"intent_violation\",path=\"pod\",port=\"5432\",protocol=\"TCP\",src_namespace=\"dev\",src_workload=\"api\"} 1",
            "netcanary_run_success 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    /// The reachability matrix's samples, as exposed.
    fn namespace_pairs(metrics: &Metrics) -> Vec<String> {
        let text = metrics.encode().unwrap();
        text.lines().filter(|l| l.starts_with("netcanary_namespace_pair_probes{")).map(str::to_owned).collect()
    }

    #[test]
    fn namespace_pairs_count_the_last_run_by_expectation_and_result() {
        let metrics = Metrics::new();
        let mut dns = sample::probe(Outcome::UnexpectedDeny, true, Observed::Timeout);
        dns.destination = WorkloadRef { namespace: "kube-system".into(), workload: "kube-dns".into() };
        dns.kind = "dns".into();
        let never_started = sample::expected_probe(Outcome::Inconclusive, Expectation::Unknown, Observed::Error);
        metrics.record(&run(
            vec![
                probe(Outcome::UnexpectedAllow, Observed::Connected),
                probe(Outcome::UnexpectedAllow, Observed::Refused),
                sample::probe(Outcome::Pass, true, Observed::Connected),
                dns,
                never_started,
            ],
            Canary::NotEnforced,
        ));
        assert_eq!(
            namespace_pairs(&metrics),
            [
                "netcanary_namespace_pair_probes{dst_namespace=\"kube-system\",expected=\"allow\",result=\"unexpected_deny\",src_namespace=\"dev\"} 1",
                "netcanary_namespace_pair_probes{dst_namespace=\"prod\",expected=\"allow\",result=\"pass\",src_namespace=\"dev\"} 1",
                "netcanary_namespace_pair_probes{dst_namespace=\"prod\",expected=\"deny\",result=\"unexpected_allow\",src_namespace=\"dev\"} 2",
                "netcanary_namespace_pair_probes{dst_namespace=\"prod\",expected=\"unknown\",result=\"inconclusive\",src_namespace=\"dev\"} 1",
            ]
        );
        // A pair the next run did not probe disappears; the next run's counts replace the last's.
        metrics.record(&run(vec![sample::probe(Outcome::Pass, true, Observed::Connected)], Canary::Enforced));
        assert_eq!(
            namespace_pairs(&metrics),
            [
                "netcanary_namespace_pair_probes{dst_namespace=\"prod\",expected=\"allow\",result=\"pass\",src_namespace=\"dev\"} 1"
            ]
        );
    }

    #[test]
    fn an_unjudged_canary_is_neither_enforced_nor_not() {
        let metrics = Metrics::new();
        metrics.record(&run(vec![], Canary::Unknown("no policy".into())));
        assert!(metrics.encode().unwrap().contains("netcanary_enforcement_canary NaN"));
    }

    #[test]
    fn coverage_of_a_run_that_never_planned_is_unknown_not_zero_or_full() {
        let metrics = Metrics::new();
        let mut unplanned = run(vec![], Canary::Unknown("the run ended before the canary".into()));
        unplanned.coverage = None;
        metrics.record(&unplanned);
        let text = metrics.encode().unwrap();
        assert!(text.lines().any(|l| l == "netcanary_policy_rules_covered_ratio NaN"), "{text}");
        assert!(text.lines().any(|l| l == "netcanary_policy_rules_planned_ratio NaN"), "{text}");
    }

    /// A one-request Pushgateway on loopback that gives `answer` (a whole HTTP response);
    /// the thread returns the request line and body it got.
    fn gateway(answer: &'static str) -> (std::net::SocketAddr, std::thread::JoinHandle<(String, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header == "\r\n" {
                    break;
                }
                if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream.write_all(answer.as_bytes()).unwrap();
            (request_line, String::from_utf8(body).unwrap())
        });
        (address, server)
    }

    #[test]
    fn pushes_with_put_to_the_job_group() {
        let (address, server) = gateway("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        let metrics = Metrics::new();
        metrics.record(&run(vec![], Canary::Enforced));
        metrics.push(&format!("http://{address}/"), "netcanary-prod").unwrap();
        let (request_line, body) = server.join().unwrap();
        assert_eq!(request_line.trim(), "PUT /metrics/job/netcanary-prod HTTP/1.1");
        assert!(body.contains("netcanary_enforcement_canary 1"));
    }

    #[test]
    fn a_refused_push_says_what_the_gateway_said() {
        let (address, server) = gateway(
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 64\r\n\r\npushed metrics are invalid or inconsistent with existing metrics",
        );
        let error = Metrics::new().push(&format!("http://{address}"), "netcanary").unwrap_err();
        server.join().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "push to http://{address}/metrics/job/netcanary: the Pushgateway answered 400: pushed metrics are \
                 invalid or inconsistent with existing metrics"
            )
        );
    }

    #[test]
    fn push_failures_name_the_url() {
        let error = Metrics::new().push("http://127.0.0.1:1", "netcanary").unwrap_err();
        assert!(error.to_string().starts_with("push to http://127.0.0.1:1/metrics/job/netcanary"), "{error}");
    }

    #[test]
    fn a_gateway_that_never_answers_gives_up_in_time() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts and then says nothing, like a gateway behind a policy that drops replies.
        let silent = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
        let started = std::time::Instant::now();
        let result = Metrics::new().push_within(&format!("http://{address}"), "netcanary", Duration::from_millis(300));
        let took = started.elapsed();
        assert!(result.is_err(), "a push nobody answers must fail, got {result:?}");
        assert!(took < Duration::from_secs(5), "the push waited {took:?} despite a 300 ms timeout");
        drop(silent.join());
    }
}
