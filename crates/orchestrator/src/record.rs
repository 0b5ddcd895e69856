//! The run's record in the cluster: a cluster-scoped `NetcanaryRun` (CRD in
//! `manifests/base/core/crds/`) that `kubectl get netcanaryruns` lists, owns the run's pods, and
//! carries the summary and mismatches in its status; plus one Event per mismatch.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use netcanary_verify::{Outcome, RunRecord};
use serde_json::{Value, json};

use crate::error::{Error, KubeContext};

pub const GROUP: &str = "netcanary.io";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "NetcanaryRun";

pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), "netcanaryruns")
}

fn api(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &api_resource())
}

/// Creates the record of a starting run; its owner reference is what the run's pods carry.
/// `spec.deadlineAt` is when the run is over whatever happens to it (see [`is_over`]).
pub async fn create(
    client: &Client,
    run_id: &str,
    started_at: f64,
    deadline: Duration,
) -> Result<OwnerReference, Error> {
    let mut object = DynamicObject::new(run_id, &api_resource());
    let deadline_at = (started_at + deadline.as_secs_f64()).ceil();
    object.data = json!({"spec": {"startedAt": rfc3339(started_at), "deadlineAt": rfc3339(deadline_at)}});
    let created = api(client).create(&PostParams::default(), &object).await.context(format!(
        "create NetcanaryRun {run_id} (is the CRD installed? kubectl apply -k manifests/overlays/ci)"
    ))?;
    Ok(OwnerReference {
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        name: created.name_any(),
        uid: created.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(false),
    })
}

/// Whether the run a record stands for is over at `now` (Unix seconds): it finished, or
/// its deadline passed. A run whose process crashed or lost the API server never finishes
/// its record, and only the deadline tells that its pods are left over: a live run ends at
/// its deadline, so sweeping past it can at most race the run's own cleanup.
pub fn is_over(record: &DynamicObject, now: f64) -> bool {
    let deadline = record
        .data
        .pointer("/spec/deadlineAt")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok());
    record.data.pointer("/status/finishedAt").is_some()
        || deadline.is_some_and(|d| (d.as_millisecond() as f64) / 1000.0 < now)
}

/// Writes the finished run's summary and mismatches into the record's status.
pub async fn finish(client: &Client, record: &RunRecord) -> Result<(), Error> {
    let counts = record.counts();
    let count = |o: Outcome| counts.get(&o).copied().unwrap_or(0);
    let result = match record.exit_code() {
        0 => "Passed",
        1 => "Mismatch",
        _ => "Inconclusive",
    };
    let mismatches: Vec<_> = record
        .mismatches()
        .map(|p| {
            json!({
                "kind": p.outcome.as_str(),
                "source": p.source.to_string(),
                "destination": p.destination.to_string(),
                "port": p.port,
                "protocol": p.protocol,
                "expected": p.expected.as_str(),
                "observed": p.observed.last().map(|o| o.as_str()),
                "because": p.expected_because,
                "intent": p.intent.as_ref().map(|i| format!("{} ({})", i.statement, i.expect)),
            })
        })
        .collect();
    let status = json!({
        "status": {
            "result": result,
            "finishedAt": rfc3339(record.finished_at),
            "pass": count(Outcome::Pass),
            "unexpectedAllow": count(Outcome::UnexpectedAllow),
            "unexpectedDeny": count(Outcome::UnexpectedDeny),
            "converging": count(Outcome::Converging),
            "inconclusive": count(Outcome::Inconclusive),
            "intentViolation": count(Outcome::IntentViolation),
            "coverage": record.coverage.map_or_else(|| "not planned".to_string(), |c| c.to_string()),
            "canary": record.canary,
            "mismatches": mismatches,
            "problems": record.problems,
            "warnings": record.warnings,
        }
    });
    api(client)
        .patch_status(&record.run_id, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .context(format!("update NetcanaryRun {} status", record.run_id))?;
    Ok(())
}

/// One Warning Event per mismatch, on the run record, so `kubectl describe` and event
/// exporters show them.
pub async fn emit_events(client: &Client, record: &RunRecord, owner: &OwnerReference) -> Result<(), Error> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    for (i, probe) in record.mismatches().enumerate() {
        let intent = probe.intent.as_ref().map(|i| format!("intent {} says {}, ", i.statement, i.expect));
        let message = format!(
            "{} -> {} {}/{}: {}policy says {}, the network {} ({})",
            probe.source,
            probe.destination,
            probe.port,
            probe.protocol,
            intent.unwrap_or_default(),
            probe.expected,
            probe.observed.last().map_or("gave no answer", |o| o.as_str()),
            probe.expected_because
        );
        let event = Event {
            metadata: ObjectMeta { name: Some(format!("{}.{i}", record.run_id)), ..ObjectMeta::default() },
            involved_object: ObjectReference {
                api_version: Some(owner.api_version.clone()),
                kind: Some(owner.kind.clone()),
                name: Some(owner.name.clone()),
                uid: Some(owner.uid.clone()),
                ..ObjectReference::default()
            },
            reason: Some(
                match probe.outcome {
                    Outcome::UnexpectedAllow => "UnexpectedAllow",
                    Outcome::IntentViolation => "IntentViolation",
                    _ => "UnexpectedDeny",
                }
                .into(),
            ),
            message: Some(message),
            type_: Some("Warning".into()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now.clone()),
            event_time: Some(MicroTime(now.0)),
            reporting_component: Some("netcanary".into()),
            reporting_instance: Some(record.run_id.clone()),
            action: Some("Probe".into()),
            count: Some(1),
            ..Event::default()
        };
        events.create(&PostParams::default(), &event).await.context("create event")?;
    }
    Ok(())
}

/// Unix seconds as RFC 3339, the way Kubernetes writes times.
pub fn rfc3339(unix_seconds: f64) -> String {
    k8s_openapi::jiff::Timestamp::from_millisecond((unix_seconds * 1000.0) as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: Value) -> DynamicObject {
        let mut object = DynamicObject::new("r", &api_resource());
        object.data = data;
        object
    }

    #[test]
    fn a_run_is_over_when_finished_or_past_its_deadline() {
        let deadline = rfc3339(1000.0);
        let running = record(json!({"spec": {"startedAt": rfc3339(900.0), "deadlineAt": deadline}}));
        assert!(!is_over(&running, 999.0));
        assert!(is_over(&running, 1000.5), "past its deadline");
        let finished = record(json!({"spec": {"deadlineAt": deadline}, "status": {"finishedAt": rfc3339(950.0)}}));
        assert!(is_over(&finished, 960.0));
        // Records without a deadline: only finishing ends them.
        assert!(!is_over(&record(json!({"spec": {"startedAt": rfc3339(0.0)}})), 1e9));
    }
}
