//! The agent's results: what `netcanary agent` prints on stdout, one entry per probe.

use serde::{Deserialize, Serialize};

use crate::observed::Observed;

/// One probe's result (the stable JSON contract: `id`, `observed`, `millis`; the rest is
/// extra detail for people and metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub observed: Observed,
    pub millis: u64,
    #[serde(default)]
    pub micros: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What `netcanary agent` prints on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    pub results: Vec<ProbeResult>,
    #[serde(default)]
    pub timeout_ms: u64,
    #[serde(default)]
    pub concurrency: usize,
    #[serde(default)]
    pub elapsed_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_contract_example_and_keeps_extra_keys_optional() {
        let report: AgentReport =
            serde_json::from_str(r#"{"results": [{"id": "1", "observed": "connected", "millis": 1}]}"#).unwrap();
        assert_eq!(report.results.len(), 1);
        assert_eq!(report.results[0].observed, Observed::Connected);
        assert_eq!(report.results[0].detail, None);
        let written = serde_json::to_string(&report.results[0]).unwrap();
        assert_eq!(written, r#"{"id":"1","observed":"connected","millis":1,"micros":0}"#);
    }
}
