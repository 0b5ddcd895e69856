//! The snapshot's inputs, kept converted: each namespace, pod and NetworkPolicy is
//! converted to the engine's model once, when it arrives (a list page or a watch event),
//! and the raw object dropped. A snapshot is assembled from the converted entries without
//! reading a raw object again. So `serve`'s watch caches hold only what the planner reads
//! (a pod's id, labels, addresses and ports: no managed fields, annotations, container
//! specs or conditions), and a pod event costs one conversion, not a rebuild.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Resource;
use kube::runtime::watcher::Event;
use netcanary_objects::convert::{self, Problems, Severity};
use netcanary_policy::{Endpoint, Labels, Policy};
use tracing::warn;

use crate::error::Error;
use crate::snapshot::{self, ClusterScoped, DnsService, Snapshot, Unreadable, is_ours};

/// The converted namespaces, pods and NetworkPolicies, by `namespace/name`.
#[derive(Debug, Default)]
pub struct Index {
    /// A namespace's labels and the annotations the model keeps.
    namespaces: Entries<Option<(Labels, Labels)>>,
    pods: Entries<Converted<Endpoint>>,
    policies: Entries<Converted<Policy>>,
}

/// An object as the engine reads it, or why it cannot (then it is skipped).
#[derive(Clone, Debug)]
pub struct Converted<T> {
    value: Option<T>,
    unreadable: Option<Unreadable>,
}

/// One kind's entries, and the list under way when a watch (re)starts: objects deleted
/// while it was disconnected disappear when the list completes.
#[derive(Debug)]
pub struct Entries<T> {
    current: BTreeMap<String, T>,
    relist: Option<BTreeMap<String, T>>,
    synced: bool,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Self { current: BTreeMap::new(), relist: None, synced: false }
    }
}

impl<T> Entries<T> {
    fn event<K: Resource>(&mut self, event: Event<K>, convert: impl Fn(&K) -> T) {
        match event {
            Event::Apply(object) => {
                self.current.insert(key(&object), convert(&object));
            }
            Event::Delete(object) => {
                self.current.remove(&key(&object));
            }
            Event::Init => self.relist = Some(BTreeMap::new()),
            Event::InitApply(object) => {
                self.relist.get_or_insert_default().insert(key(&object), convert(&object));
            }
            Event::InitDone => {
                if let Some(listed) = self.relist.take() {
                    self.current = listed;
                }
                self.synced = true;
            }
        }
    }
}

fn key<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
}

/// A kind the index keeps.
pub trait Indexed: Resource<DynamicType = ()> + Sized {
    type Entry;
    fn entries(index: &mut Index) -> &mut Entries<Self::Entry>;
    fn convert(&self) -> Self::Entry;
}

impl Indexed for Namespace {
    type Entry = Option<(Labels, Labels)>;

    fn entries(index: &mut Index) -> &mut Entries<Self::Entry> {
        &mut index.namespaces
    }

    fn convert(&self) -> Self::Entry {
        let annotations = convert::kept_annotations(self.metadata.annotations.as_ref());
        convert::namespace(self, &mut Problems::default()).map(|(_, labels)| (labels, annotations))
    }
}

impl Indexed for Pod {
    type Entry = Converted<Endpoint>;

    fn entries(index: &mut Index) -> &mut Entries<Self::Entry> {
        &mut index.pods
    }

    /// Pods netcanary created (left over by a crashed run) are never part of a snapshot.
    fn convert(&self) -> Self::Entry {
        if is_ours(self) {
            return Converted { value: None, unreadable: None };
        }
        let mut problems = Problems::default();
        let value = convert::pod(self, "default", &mut problems);
        Converted { value, unreadable: unreadable_object(self, &problems) }
    }
}

impl Indexed for NetworkPolicy {
    type Entry = Converted<Policy>;

    fn entries(index: &mut Index) -> &mut Entries<Self::Entry> {
        &mut index.policies
    }

    fn convert(&self) -> Self::Entry {
        let mut problems = Problems::default();
        let value = convert::policy(self, "default", &mut problems);
        Converted { value, unreadable: unreadable_object(self, &problems) }
    }
}

impl Index {
    /// Applies one watch event (a listed object is an `Apply`).
    pub fn event<K: Indexed>(&mut self, event: Event<K>) {
        K::entries(self).event(event, K::convert);
    }

    /// Adds or replaces one object.
    pub fn apply<K: Indexed>(&mut self, object: &K) {
        K::entries(self).current.insert(key(object), object.convert());
    }

    /// Whether namespaces, pods and policies have each been listed once.
    pub fn synced(&self) -> bool {
        self.namespaces.synced && self.pods.synced && self.policies.synced
    }

    /// The number of pods indexed (netcanary's own and unreadable ones included).
    pub fn pods(&self) -> usize {
        self.pods.current.len()
    }

    /// A snapshot of what is indexed now, with the cluster policies and the Services that
    /// matter for probing.
    pub fn snapshot(
        &self,
        cluster_scoped: ClusterScoped,
        services: &[Service],
        dns: &DnsService,
    ) -> Result<Snapshot, Error> {
        assemble(
            self.namespaces.current.iter().map(|(k, v)| (k.clone(), v.clone())),
            self.pods.current.values().cloned(),
            self.policies.current.values().cloned(),
            cluster_scoped,
            services,
            dns,
        )
    }

    /// [`Index::snapshot`], moving the entries instead of copying them.
    pub fn into_snapshot(
        self,
        cluster_scoped: ClusterScoped,
        services: &[Service],
        dns: &DnsService,
    ) -> Result<Snapshot, Error> {
        assemble(
            self.namespaces.current.into_iter(),
            self.pods.current.into_values(),
            self.policies.current.into_values(),
            cluster_scoped,
            services,
            dns,
        )
    }
}

fn assemble(
    namespaces: impl Iterator<Item = (String, Option<(Labels, Labels)>)>,
    pods: impl Iterator<Item = Converted<Endpoint>>,
    policies: impl Iterator<Item = Converted<Policy>>,
    cluster_scoped: ClusterScoped,
    services: &[Service],
    dns: &DnsService,
) -> Result<Snapshot, Error> {
    let mut snapshot = Snapshot::default();
    for (key, converted) in namespaces {
        if let Some((labels, annotations)) = converted {
            let name = key.trim_start_matches('/');
            snapshot.cluster.set_namespace(name, labels);
            snapshot.cluster.set_namespace_annotations(name, annotations);
        }
    }
    for pod in pods {
        pod.value.into_iter().for_each(|endpoint| snapshot.cluster.add_endpoint(endpoint));
        snapshot.unreadable.extend(pod.unreadable);
    }
    for policy in policies {
        policy.value.into_iter().for_each(|policy| snapshot.cluster.add_policy(policy));
        snapshot.unreadable.extend(policy.unreadable);
    }
    snapshot::add_cluster_scoped(&mut snapshot, cluster_scoped);
    snapshot::add_services(&mut snapshot, services, dns)?;
    Ok(snapshot)
}

/// Why an object cannot be read, from its conversion problems; `None` when it can.
fn unreadable_object<K: Resource<DynamicType = ()>>(object: &K, problems: &Problems) -> Option<Unreadable> {
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    let name = format!("{} {namespace}/{}", K::kind(&()), object.meta().name.clone().unwrap_or_default());
    unreadable(name, namespace, problems)
}

/// Why the object `name` cannot be read, from its conversion problems, logged; `None` when
/// it can. `namespace` is empty for a cluster-scoped object, which can decide any pair.
pub(crate) fn unreadable(name: String, namespace: String, problems: &Problems) -> Option<Unreadable> {
    let errors: Vec<_> = problems.list.iter().filter(|p| p.severity == Severity::Error).collect();
    for problem in &errors {
        warn!(object = %name, field = %problem.field, message = %problem.message, "cannot read object, skipped");
    }
    (!errors.is_empty()).then(|| Unreadable {
        object: name,
        namespace,
        reason: errors.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "),
    })
}

#[cfg(test)]
mod tests {
    use netcanary_policy::Cluster;
    use serde_json::json;

    use super::*;

    /// The cluster an index holds, without the Services: what the tests compare.
    fn cluster(index: &Index) -> Cluster {
        index
            .snapshot(ClusterScoped::default(), &[], &DnsService::default())
            .expect("no DNS Service to resolve")
            .cluster
    }

    fn pod(name: &str, app: &str, ip: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": app},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
        }))
        .expect("a Pod")
    }

    fn policy(name: &str, cidr: &str) -> NetworkPolicy {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": cidr}}]}]},
        }))
        .expect("a NetworkPolicy")
    }

    fn namespace(name: &str, team: &str) -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}})).expect("a Namespace")
    }

    fn apps(cluster: &Cluster) -> Vec<(String, String)> {
        (cluster.endpoints().iter()).map(|e| (e.id.clone(), e.labels.get("app").cloned().unwrap_or_default())).collect()
    }

    /// A listed index, then pod events: each changes that pod only, as a full relist
    /// would have it.
    #[test]
    fn pod_events_update_the_index_in_place() {
        let mut index = Index::default();
        index.event(Event::<Namespace>::Init);
        index.event(Event::InitApply(namespace("shop", "payments")));
        index.event(Event::<Namespace>::InitDone);
        index.event(Event::<Pod>::Init);
        index.event(Event::InitApply(pod("web", "web", "10.0.0.1")));
        index.event(Event::InitApply(pod("api", "api", "10.0.0.2")));
        assert!(!index.synced(), "pods and policies are still being listed");
        index.event(Event::<Pod>::InitDone);
        index.event(Event::<NetworkPolicy>::Init);
        index.event(Event::<NetworkPolicy>::InitDone);
        assert!(index.synced());
        assert_eq!(apps(&cluster(&index)), [("shop/api".into(), "api".into()), ("shop/web".into(), "web".into())]);

        index.event(Event::Apply(pod("web", "frontend", "10.0.0.1")));
        index.event(Event::Apply(pod("db", "db", "10.0.0.3")));
        index.event(Event::Delete(pod("api", "api", "10.0.0.2")));
        let cluster = cluster(&index);
        assert_eq!(apps(&cluster), [("shop/db".into(), "db".into()), ("shop/web".into(), "frontend".into())]);
        let web = cluster.endpoint("shop/web").expect("web");
        assert_eq!(web.ips, ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(web.ports[0].name.as_deref(), Some("http"), "what the planner reads is kept");
        assert_eq!(cluster.namespace_labels("shop").and_then(|l| l.get("team")).map(String::as_str), Some("payments"));
    }

    /// A watch that restarts relists: what was deleted meanwhile is gone once the list is
    /// complete, and not before (a run in between still sees the last full picture).
    #[test]
    fn a_relist_replaces_the_entries_when_it_completes() {
        let mut index = Index::default();
        index.apply(&pod("web", "web", "10.0.0.1"));
        index.apply(&pod("api", "api", "10.0.0.2"));
        index.event(Event::<Pod>::Init);
        index.event(Event::InitApply(pod("web", "web", "10.0.0.1")));
        assert_eq!(index.pods(), 2, "the relist is not complete");
        index.event(Event::<Pod>::InitDone);
        assert_eq!(apps(&cluster(&index)), [("shop/web".into(), "web".into())]);
    }

    /// An unreadable policy is reported until an event replaces it with a readable one.
    #[test]
    fn an_unreadable_object_is_reported_until_it_is_fixed() {
        let mut index = Index::default();
        index.apply(&policy("egress", "not-a-cidr"));
        let snapshot = index.snapshot(ClusterScoped::default(), &[], &DnsService::default()).unwrap();
        assert_eq!(snapshot.unreadable.len(), 1, "{:?}", snapshot.unreadable);
        assert!(snapshot.unreadable[0].reason.contains("ipBlock.cidr"), "{}", snapshot.unreadable[0].reason);
        assert!(snapshot.cluster.policies().is_empty());
        index.event(Event::Apply(policy("egress", "10.0.0.0/8")));
        let snapshot = index.into_snapshot(ClusterScoped::default(), &[], &DnsService::default()).unwrap();
        assert!(snapshot.unreadable.is_empty(), "{:?}", snapshot.unreadable);
        assert_eq!(snapshot.cluster.policies().len(), 1);
    }
}
