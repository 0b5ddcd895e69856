//! A snapshot of what policy evaluation needs from the cluster: namespaces, pods,
//! NetworkPolicies, and the Services that matter for probing (cluster DNS, and Services
//! that publish not-ready addresses). Objects the engine cannot read are reported and
//! skipped, never fatal.

use std::net::{IpAddr, SocketAddr};

use crate::error::Error;
use crate::index::Index;
use crate::retry::with_backoff;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, ObjectList};
use kube::core::{ApiResource, GroupVersionKind};
use netcanary_objects::{UNEVALUATED_KINDS, UnevaluatedKind};
use netcanary_planner::mirror::{MANAGED_BY_KEY, MANAGED_BY_VALUE};
use netcanary_policy::{Cluster, Selector};
use netcanary_verify::SnapshotFacts;
use serde::de::DeserializeOwned;

/// Page size for lists, so that a large cluster is read in bounded pieces.
const PAGE: u32 = 500;

/// The cluster DNS as probes see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterDns {
    /// The Service's ClusterIP and port 53.
    pub server: SocketAddr,
    /// The pods behind it (`ns/name`), whose policies decide DNS traffic.
    pub endpoints: Vec<String>,
}

pub use netcanary_verify::Unreadable;

#[derive(Debug, Default)]
pub struct Snapshot {
    pub cluster: Cluster,
    pub dns: Option<ClusterDns>,
    /// Services publishing not-ready addresses, by namespace.
    pub not_ready_services: Vec<(String, Selector)>,
    /// Policies skipped: the pairs they could affect cannot be judged.
    pub unreadable: Vec<Unreadable>,
    /// Objects in the cluster of kinds that change who reaches whom but that the engine
    /// does not evaluate (`3 ClusterNetworkPolicy`, `1 CiliumNetworkPolicy`): they can
    /// decide any pair, whatever NetworkPolicy says.
    pub unmodelled: Vec<String>,
}

impl Snapshot {
    /// What the snapshot could not model, for the comparator.
    pub fn facts(&self) -> SnapshotFacts {
        SnapshotFacts { unreadable: self.unreadable.clone(), unevaluated: self.unmodelled.clone() }
    }
}

/// Counts the objects of each kind of [`UNEVALUATED_KINDS`] the cluster serves, all kinds
/// at once. A kind served in none of its versions is simply absent; one that cannot be
/// read is reported as such.
pub async fn unmodelled_policies(client: &Client) -> Vec<String> {
    let counts = UNEVALUATED_KINDS.iter().map(|kind| count(client, kind));
    futures::future::join_all(counts).await.into_iter().flatten().collect()
}

/// `3 ClusterNetworkPolicy` for the first version of `kind` the server serves; `None`
/// when there are none, or the server serves no version of it (a 404).
async fn count(client: &Client, kind: &UnevaluatedKind) -> Option<String> {
    for version in kind.versions {
        let gvk = GroupVersionKind::gvk(kind.group, version, kind.kind);
        let api: Api<DynamicObject> =
            Api::all_with(client.clone(), &ApiResource::from_gvk_with_plural(&gvk, kind.plural));
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Ok(list) if list.items.is_empty() => return None,
            Ok(list) => {
                let more = list.metadata.remaining_item_count.unwrap_or(0).max(0);
                return Some(format!("{} {}", list.items.len() as i64 + more, kind.name()));
            }
            Err(error) => return Some(format!("{} (cannot be listed: {error})", kind.name())),
        }
    }
    None
}

/// Where the cluster DNS Service lives (`kube-system/kube-dns` on most clusters).
#[derive(Clone, Debug)]
pub struct DnsService {
    pub namespace: String,
    pub name: String,
}

impl Default for DnsService {
    fn default() -> Self {
        Self { namespace: "kube-system".into(), name: "kube-dns".into() }
    }
}

/// Where a run gets its snapshot: listed fresh (`run`), or from watch caches (`serve`).
pub trait SnapshotSource {
    fn snapshot(&self, dns: &DnsService) -> impl std::future::Future<Output = Result<Snapshot, Error>> + Send;
}

/// Lists everything from the API server, page by page.
pub struct Listed(pub Client);

impl SnapshotSource for Listed {
    /// Converts each page as it arrives, so the raw objects of a large cluster (pods
    /// above all) are never all in memory at once.
    async fn snapshot(&self, dns: &DnsService) -> Result<Snapshot, Error> {
        let client = &self.0;
        let mut index = Index::default();
        for_each_page(Api::<Namespace>::all(client.clone()), "list namespaces", |ns| index.apply(&ns)).await?;
        for_each_page(Api::<Pod>::all(client.clone()), "list pods", |pod| index.apply(&pod)).await?;
        for_each_page(Api::<NetworkPolicy>::all(client.clone()), "list networkpolicies", |np| index.apply(&np)).await?;
        let mut services = Vec::new();
        for_each_page(Api::<Service>::all(client.clone()), "list services", |s| services.push(s)).await?;
        let mut snapshot = index.into_snapshot(&services, dns)?;
        snapshot.unmodelled = unmodelled_policies(client).await;
        Ok(snapshot)
    }
}

/// Builds the snapshot from objects. Pods netcanary created (left over by a crashed run)
/// are not part of it; objects the engine cannot read are recorded and skipped.
pub fn build(
    namespaces: Vec<Namespace>,
    pods: Vec<Pod>,
    policies: Vec<NetworkPolicy>,
    services: &[Service],
    dns: &DnsService,
) -> Result<Snapshot, Error> {
    let mut index = Index::default();
    namespaces.iter().for_each(|ns| index.apply(ns));
    pods.iter().for_each(|pod| index.apply(pod));
    policies.iter().for_each(|np| index.apply(np));
    index.into_snapshot(services, dns)
}

/// Adds what Services say: which publish not-ready addresses, and where cluster DNS is.
/// Last, since the cluster DNS Service's endpoints are pods.
pub(crate) fn add_services(snapshot: &mut Snapshot, services: &[Service], dns: &DnsService) -> Result<(), Error> {
    for service in services {
        let spec = service.spec.clone().unwrap_or_default();
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        if spec.publish_not_ready_addresses == Some(true)
            && let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty())
        {
            snapshot.not_ready_services.push((
                namespace.clone(),
                Selector::from_labels(selector.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            ));
        }
        if namespace == dns.namespace && service.metadata.name.as_deref() == Some(dns.name.as_str()) {
            snapshot.dns = Some(cluster_dns(&snapshot.cluster, service, &spec)?);
        }
    }
    Ok(())
}

fn cluster_dns(
    cluster: &Cluster,
    service: &Service,
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
) -> Result<ClusterDns, Error> {
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let id = format!("{namespace}/{}", service.metadata.name.clone().unwrap_or_default());
    let ip: IpAddr =
        spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok()).ok_or_else(|| Error::NoDnsAddress(id.clone()))?;
    let selector = spec.selector.clone().unwrap_or_default();
    let selector = Selector::from_labels(selector.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let endpoints = cluster
        .endpoints()
        .iter()
        .filter(|e| {
            e.namespace.as_deref() == Some(namespace.as_str())
                && !selector.is_everything()
                && selector.matches(&e.labels)
        })
        .map(|e| e.id.clone())
        .collect();
    Ok(ClusterDns { server: SocketAddr::new(ip, 53), endpoints })
}

/// Whether netcanary created this pod (they are never part of what is verified).
pub fn is_ours(pod: &Pod) -> bool {
    pod.metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY_KEY)).is_some_and(|v| v == MANAGED_BY_VALUE)
}

/// Lists every object, page by page, handing each to `each` as its page arrives.
async fn for_each_page<K>(api: Api<K>, what: &str, mut each: impl FnMut(K)) -> Result<(), Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page: ObjectList<K> = with_backoff(what, || api.list(&params)).await?;
        page.items.into_iter().for_each(&mut each);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_policy_the_engine_cannot_read_is_reported_and_the_rest_is_read() {
        // The API server refuses such a policy (it validates what the engine checks), but a
        // cache or another server version may hold one: the snapshot must go on without it.
        let policy = |value| serde_json::from_value::<NetworkPolicy>(value).expect("a NetworkPolicy");
        let policies = vec![
            policy(json!({
                "metadata": {"name": "bad", "namespace": "dev"},
                "spec": {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "not-a-cidr"}}]}]}
            })),
            policy(json!({
                "metadata": {"name": "deny", "namespace": "prod"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}
            })),
        ];
        let snapshot = build(Vec::new(), Vec::new(), policies, &[], &DnsService::default()).expect("a snapshot");
        assert_eq!(snapshot.unreadable.len(), 1, "{:?}", snapshot.unreadable);
        let unreadable = &snapshot.unreadable[0];
        assert_eq!((unreadable.object.as_str(), unreadable.namespace.as_str()), ("NetworkPolicy dev/bad", "dev"));
        assert!(unreadable.reason.contains("ipBlock.cidr"), "{}", unreadable.reason);
        let read: Vec<&str> = snapshot.cluster.policies().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(read, ["deny"]);
    }
}
