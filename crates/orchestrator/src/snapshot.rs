//! A snapshot of what policy evaluation needs from the cluster: namespaces, pods,
//! NetworkPolicies, the cluster policy tiers around them (ClusterNetworkPolicy,
//! AdminNetworkPolicy, BaselineAdminNetworkPolicy, where their CRDs are installed) with the
//! Nodes their `nodes` peers select, and the Services that matter for probing (cluster DNS,
//! and Services that publish not-ready addresses). Objects the engine cannot read are
//! reported and skipped, never fatal.

use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, ObjectList};
use kube::core::{ApiResource, GroupVersionKind};
use netcanary_objects::cluster_policy::{self as cluster_policy, CLUSTER_POLICY_APIS, ClusterPolicyApi};
use netcanary_objects::convert::{Problems, Severity};
use netcanary_objects::{UNEVALUATED_KINDS, UnevaluatedKind};
use netcanary_planner::mirror::{MANAGED_BY_KEY, MANAGED_BY_VALUE};
use netcanary_policy::intent::Statement;
use netcanary_policy::{Cluster, ClusterPeer, ClusterPolicyKind, Selector};
use netcanary_verify::SnapshotFacts;
use serde::de::DeserializeOwned;
use tracing::warn;

use crate::error::Error;
use crate::index::{self, Index};
use crate::retry::with_backoff;

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
    /// What the run record's warnings say of the snapshot without it making the run
    /// unverified: cluster policies of both generations, whose relative order no API
    /// defines (a tie across them is inconclusive anyway).
    pub warnings: Vec<String>,
    /// The statements of the cluster's `NetcanaryIntent` objects.
    pub intent: Vec<Statement>,
    /// `NetcanaryIntent` objects that could not be read, and why: what they say is not
    /// verified.
    pub intent_problems: Vec<String>,
}

impl Snapshot {
    /// What the snapshot could not model, for the comparator.
    pub fn facts(&self) -> SnapshotFacts {
        SnapshotFacts { unreadable: self.unreadable.clone(), unevaluated: self.unmodelled.clone() }
    }
}

/// The API of one cluster policy kind, for dynamic requests.
pub fn api_resource(api: &ClusterPolicyApi) -> ApiResource {
    let gvk = GroupVersionKind::gvk(api.group, api.version, api.kind.as_str());
    ApiResource::from_gvk_with_plural(&gvk, api.plural)
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

/// The statements of every `NetcanaryIntent` in the cluster, and a problem for each
/// object that cannot be read (refused whole: a statement read wrong would check the
/// wrong thing). No CRD installed means no intent; a list refused is a problem.
pub async fn intents(client: &Client) -> (Vec<Statement>, Vec<String>) {
    use netcanary_objects::intent::{INTENT_API_VERSION, INTENT_KIND};
    let (group, version) = INTENT_API_VERSION.split_once('/').unwrap_or_default();
    let gvk = GroupVersionKind::gvk(group, version, INTENT_KIND);
    let api: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::from_gvk_with_plural(&gvk, INTENT_PLURAL));
    let params = ListParams::default();
    let list = match with_backoff("list netcanaryintents", || api.list(&params)).await {
        Ok(list) => list,
        Err(Error::Kube { source: kube::Error::Api(status), .. }) if status.code == 404 => {
            return (Vec::new(), Vec::new());
        }
        Err(error) => {
            return (Vec::new(), vec![format!("NetcanaryIntents cannot be listed, so none is verified: {error}")]);
        }
    };
    let mut statements = Vec::new();
    let mut problems = Vec::new();
    for object in list.items {
        let name = object.metadata.name.clone().unwrap_or_default();
        let value = serde_json::json!({"metadata": {"name": name}, "spec": object.data.get("spec")});
        let mut found = Problems::default();
        match netcanary_objects::intent::intent(&value, &mut found) {
            Some(read) => statements.extend(read),
            None => {
                let why: Vec<String> = found
                    .list
                    .iter()
                    .filter(|p| p.severity == Severity::Error)
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect();
                warn!(intent = %name, problems = ?why, "NetcanaryIntent skipped");
                problems.push(format!("NetcanaryIntent {name} cannot be read and is not verified: {}", why.join("; ")));
            }
        }
    }
    (statements, problems)
}

/// The resource name of `NetcanaryIntent` in API paths and RBAC rules.
pub const INTENT_PLURAL: &str = "netcanaryintents";

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
    async fn snapshot(&self, dns: &DnsService) -> Result<Snapshot, Error> {
        Ok(self.list(dns, None).await?.0)
    }
}

impl Listed {
    /// The snapshot, with the value of the annotation `key` on every Namespace and on the
    /// Pods and NetworkPolicies that carry it (lint's rule switches, which the model does
    /// not keep), read from the same lists.
    pub async fn snapshot_annotated(&self, dns: &DnsService, key: &str) -> Result<(Snapshot, Vec<Annotated>), Error> {
        self.list(dns, Some(key)).await
    }

    /// Converts each page as it arrives, so the raw objects of a large cluster (pods
    /// above all) are never all in memory at once.
    async fn list(&self, dns: &DnsService, key: Option<&str>) -> Result<(Snapshot, Vec<Annotated>), Error> {
        let client = &self.0;
        let mut index = Index::default();
        let mut annotated = Vec::new();
        let mut note = |kind: &'static str, meta: &kube::api::ObjectMeta| {
            if let Some(key) = key {
                annotated.extend(Annotated::of(kind, meta, key));
            }
        };
        for_each_page(Api::<Namespace>::all(client.clone()), "list namespaces", |ns| {
            note("Namespace", &ns.metadata);
            index.apply(&ns);
        })
        .await?;
        for_each_page(Api::<Pod>::all(client.clone()), "list pods", |pod| {
            note("Pod", &pod.metadata);
            index.apply(&pod);
        })
        .await?;
        for_each_page(Api::<NetworkPolicy>::all(client.clone()), "list networkpolicies", |np| {
            note("NetworkPolicy", &np.metadata);
            index.apply(&np);
        })
        .await?;
        let mut cluster_scoped = ClusterScoped::default();
        for api in &CLUSTER_POLICY_APIS {
            let what = format!("list {}", api.plural);
            let each = |object| cluster_scoped.policies.push((api.kind, object));
            if let Some(reason) =
                for_each_served(Api::all_with(client.clone(), &api_resource(api)), &what, each).await?
            {
                cluster_scoped.refused.push((api.kind.as_str().to_string(), reason));
            }
        }
        let mut services = Vec::new();
        for_each_page(Api::<Service>::all(client.clone()), "list services", |s| services.push(s)).await?;
        let mut snapshot = index.into_snapshot(cluster_scoped, &services, dns)?;
        read_nodes(client, &mut snapshot).await?;
        snapshot.unmodelled = unmodelled_policies(client).await;
        (snapshot.intent, snapshot.intent_problems) = intents(client).await;
        Ok((snapshot, annotated))
    }
}

/// The cluster policies of a snapshot, of each kind (none when its CRD is not installed).
#[derive(Debug, Default)]
pub struct ClusterScoped {
    pub policies: Vec<(ClusterPolicyKind, DynamicObject)>,
    /// Kinds the API server refused to list (`ClusterNetworkPolicy`), with its message.
    pub refused: Vec<(String, String)>,
}

/// Lists the Nodes into the snapshot when a cluster policy selects Nodes (a `nodes` peer):
/// only then do their labels and addresses matter, so a cluster without such a policy is
/// never asked for them.
pub async fn read_nodes(client: &Client, snapshot: &mut Snapshot) -> Result<(), Error> {
    if !selects_nodes(snapshot) {
        return Ok(());
    }
    let mut nodes = Vec::new();
    let refused = for_each_served(Api::<Node>::all(client.clone()), "list nodes", |node| nodes.push(node)).await?;
    nodes.into_iter().for_each(|node| add_node(snapshot, node));
    refuse(snapshot, "Node", refused);
    Ok(())
}

/// Whether some cluster policy of `snapshot` has a `nodes` peer.
pub fn selects_nodes(snapshot: &Snapshot) -> bool {
    snapshot.cluster.cluster_policies().iter().any(|policy| {
        let mut peers = policy.ingress.iter().chain(&policy.egress).flat_map(|rule| &rule.peers);
        peers.any(|peer| matches!(peer, ClusterPeer::Nodes(_)))
    })
}

pub fn add_node(snapshot: &mut Snapshot, node: Node) {
    let name = format!("Node {}", node.metadata.name.clone().unwrap_or_default());
    if let Some(node) = from_json(snapshot, name, &node, cluster_policy::node) {
        snapshot.cluster.add_node(node);
    }
}

/// Converts a cluster-scoped object with a converter of the objects crate that reads JSON
/// (no typed API exists for the cluster policy CRDs); one it cannot read is recorded as
/// unreadable, under `name`.
fn from_json<T>(
    snapshot: &mut Snapshot,
    name: String,
    object: &impl serde::Serialize,
    convert: impl FnOnce(&serde_json::Value, &mut Problems) -> Option<T>,
) -> Option<T> {
    let mut problems = Problems::default();
    let converted = match serde_json::to_value(object) {
        Ok(value) => convert(&value, &mut problems),
        Err(e) => {
            problems.error("", format!("cannot be read as JSON: {e}"));
            None
        }
    };
    if converted.is_none() {
        // Cluster-scoped: no namespace, so it can decide any pair.
        snapshot.unreadable.extend(index::unreadable(name, String::new(), &problems));
    }
    converted
}

/// A cluster-scoped kind the API server refused to list (`Some` reason): any of its
/// objects could decide any pair, so every probe is inconclusive.
pub fn refuse(snapshot: &mut Snapshot, kind: &str, refused: Option<String>) {
    if let Some(reason) = refused {
        warn!(%kind, %reason, "cannot list a cluster-scoped kind policy reads");
        snapshot.unreadable.push(Unreadable {
            object: format!("every {kind}"),
            namespace: String::new(),
            reason: format!("the API server refused to list them: {reason}"),
        });
    }
}

/// An object of the cluster and the value of one of its annotations, for what the model
/// does not keep (lint's rule switches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotated {
    /// `Namespace`, `Pod` or `NetworkPolicy`.
    pub kind: &'static str,
    /// A Namespace's is its own name.
    pub namespace: String,
    pub name: String,
    /// `None` when the object lacks the annotation (listed for Namespaces only).
    pub value: Option<String>,
}

impl Annotated {
    /// Every Namespace, and an object carrying the annotation `key`.
    fn of(kind: &'static str, meta: &kube::api::ObjectMeta, key: &str) -> Option<Self> {
        let name = meta.name.clone().unwrap_or_default();
        let namespace = if kind == "Namespace" { name.clone() } else { meta.namespace.clone().unwrap_or_default() };
        let value = meta.annotations.as_ref().and_then(|a| a.get(key)).cloned();
        (kind == "Namespace" || value.is_some()).then_some(Annotated { kind, namespace, name, value })
    }
}

/// Builds the snapshot from objects. Pods netcanary created (left over by a crashed run)
/// are not part of it; objects the engine cannot read are recorded and skipped.
pub fn build(
    namespaces: Vec<Namespace>,
    pods: Vec<Pod>,
    policies: Vec<NetworkPolicy>,
    cluster_scoped: ClusterScoped,
    services: &[Service],
    dns: &DnsService,
) -> Result<Snapshot, Error> {
    let mut index = Index::default();
    namespaces.iter().for_each(|ns| index.apply(ns));
    pods.iter().for_each(|pod| index.apply(pod));
    policies.iter().for_each(|np| index.apply(np));
    index.into_snapshot(cluster_scoped, services, dns)
}

/// Adds the cluster policies, converted here rather than kept converted in the [`Index`]:
/// a cluster has a handful, against thousands of pods. A kind refused makes every pair
/// unreadable; policies of both generations are a warning.
pub(crate) fn add_cluster_scoped(snapshot: &mut Snapshot, cluster_scoped: ClusterScoped) {
    let ClusterScoped { policies, refused } = cluster_scoped;
    for (kind, object) in policies {
        let name = format!("{} {}", kind.as_str(), object.metadata.name.clone().unwrap_or_default());
        let convert =
            |value: &serde_json::Value, problems: &mut Problems| cluster_policy::cluster_policy(kind, value, problems);
        if let Some(policy) = from_json(snapshot, name, &object, convert) {
            snapshot.cluster.add_cluster_policy(policy);
        }
    }
    for (kind, reason) in refused {
        refuse(snapshot, &kind, Some(reason));
    }
    if let Some((_, warning)) = cluster_policy::both_generations(snapshot.cluster.cluster_policies()) {
        warn!(%warning, "cluster policies of both generations");
        snapshot.warnings.push(warning);
    }
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

/// What listing a kind the cluster may not serve came to.
pub(crate) enum Listing<T> {
    Listed(T),
    /// The kind is not served (404): it has no objects.
    NotServed,
    /// The API server refused to list it (403), with its message.
    Refused(String),
}

impl<T> Listing<T> {
    /// Reads the answer of a list: 404 and 403 are what they say of the kind, other errors
    /// are errors.
    pub(crate) fn of(listed: Result<T, Error>) -> Result<Self, Error> {
        match listed {
            Ok(found) => Ok(Listing::Listed(found)),
            Err(Error::Kube { source: kube::Error::Api(status), .. }) if status.code == 404 => Ok(Listing::NotServed),
            Err(Error::Kube { source: kube::Error::Api(status), .. }) if status.code == 403 => {
                Ok(Listing::Refused(status.message))
            }
            Err(error) => Err(error),
        }
    }
}

/// Lists a kind the cluster may not serve: a kind not served has no objects; one the API
/// server refuses to list is `Some` of its message; other errors are errors.
async fn for_each_served<K>(api: Api<K>, what: &str, each: impl FnMut(K)) -> Result<Option<String>, Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    match Listing::of(for_each_page(api, what, each).await)? {
        Listing::Listed(()) | Listing::NotServed => Ok(None),
        Listing::Refused(message) => Ok(Some(message)),
    }
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
        let snapshot = build(Vec::new(), Vec::new(), policies, ClusterScoped::default(), &[], &DnsService::default())
            .expect("a snapshot");
        assert_eq!(snapshot.unreadable.len(), 1, "{:?}", snapshot.unreadable);
        let unreadable = &snapshot.unreadable[0];
        assert_eq!((unreadable.object.as_str(), unreadable.namespace.as_str()), ("NetworkPolicy dev/bad", "dev"));
        assert!(unreadable.reason.contains("ipBlock.cidr"), "{}", unreadable.reason);
        let read: Vec<&str> = snapshot.cluster.policies().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(read, ["deny"]);
    }

    #[test]
    fn cluster_policies_are_read_and_a_bad_or_refused_one_is_reported() {
        let object = |kind: ClusterPolicyKind, value| {
            let api = CLUSTER_POLICY_APIS.iter().find(|a| a.kind == kind).expect("an API");
            let mut object: DynamicObject = serde_json::from_value(value).expect("an object");
            object.types = Some(kube::core::TypeMeta {
                api_version: format!("{}/{}", api.group, api.version),
                kind: kind.as_str().into(),
            });
            (kind, object)
        };
        let cluster_scoped = ClusterScoped {
            policies: vec![
                object(
                    ClusterPolicyKind::ClusterNetworkPolicy,
                    json!({"metadata": {"name": "deny-dev"}, "spec": {"tier": "Admin", "priority": 10,
                        "subject": {"namespaces": {}},
                        "ingress": [{"action": "Deny", "from": [{"namespaces": {"matchLabels": {"env": "dev"}}}]}]}}),
                ),
                object(
                    ClusterPolicyKind::ClusterNetworkPolicy,
                    json!({"metadata": {"name": "bad"}, "spec": {"tier": "Middle", "priority": 1, "subject": {"namespaces": {}}}}),
                ),
                object(
                    ClusterPolicyKind::BaselineAdminNetworkPolicy,
                    json!({"metadata": {"name": "default"}, "spec": {"subject": {"namespaces": {}},
                        "egress": [{"action": "Deny", "to": [{"nodes": {}}]}]}}),
                ),
            ],
            refused: vec![("AdminNetworkPolicy".into(), "forbidden".into())],
        };
        let mut snapshot =
            build(Vec::new(), Vec::new(), Vec::new(), cluster_scoped, &[], &DnsService::default()).expect("a snapshot");
        let read: Vec<String> = snapshot.cluster.cluster_policies().iter().map(|p| p.id()).collect();
        assert_eq!(read, ["ClusterNetworkPolicy/deny-dev", "BaselineAdminNetworkPolicy/default"]);
        // A Node's labels and IP addresses (its host name is no address).
        let node = json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}, "status": {"addresses": [
            {"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "n1"}]}});
        add_node(&mut snapshot, serde_json::from_value(node).expect("a Node"));
        let nodes: Vec<(&str, Vec<std::net::IpAddr>)> =
            snapshot.cluster.nodes().iter().map(|n| (n.name.as_str(), n.addresses.clone())).collect();
        assert_eq!(nodes, [("n1", vec!["172.18.0.2".parse().unwrap()])]);
        let unreadable: Vec<(&str, &str)> =
            snapshot.unreadable.iter().map(|u| (u.object.as_str(), u.namespace.as_str())).collect();
        assert_eq!(unreadable, [("ClusterNetworkPolicy bad", ""), ("every AdminNetworkPolicy", "")]);
        assert!(
            snapshot.unreadable[0].reason.contains("spec.tier: unsupported value \"Middle\""),
            "{:?}",
            snapshot.unreadable
        );
        assert!(
            snapshot.warnings.iter().any(|w| w.contains("both policy.networking.k8s.io/v1alpha1 and v1alpha2")),
            "{:?}",
            snapshot.warnings
        );
    }
}
