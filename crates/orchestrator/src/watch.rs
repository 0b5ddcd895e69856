//! Watch caches for `serve`: watches keep namespaces, pods and NetworkPolicies converted in
//! an [`Index`] (an event converts one object; a run assembles its snapshot from what is
//! converted), and reflectors keep the Services, the cluster policy tiers
//! (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy) and, once a
//! `nodes` peer needs them, the Nodes' labels and addresses, so a scheduled
//! run starts from memory instead of listing the cluster. Watch errors are retried with
//! backoff and logged; a bad object never stops them.

use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::{Namespace, Node, NodeStatus, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DynamicObject, ListParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use netcanary_objects::cluster_policy::{CLUSTER_POLICY_APIS, ClusterPolicyApi};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::error::Error;
use crate::index::{Index, Indexed};
use crate::retry::with_backoff;
use crate::snapshot::{self, ClusterScoped, DnsService, Listing, Snapshot, SnapshotSource};

/// The index and the Services a snapshot needs, kept current.
#[derive(Clone)]
pub struct Watched {
    client: Client,
    index: Arc<Mutex<Index>>,
    /// Turns true once every watch of the index has listed its objects once.
    synced: watch::Receiver<bool>,
    services: Store<Service>,
    cluster_policies: Arc<[(ClusterPolicyApi, LazyWatch<DynamicObject>); 3]>,
    /// Started at the first run with a `nodes` peer.
    nodes: Arc<LazyWatch<Node>>,
}

/// The watch of a kind most clusters do not serve or most runs do not need (the cluster
/// policy tiers; Nodes, needed only by a `nodes` peer), started at the first run that needs
/// it and finds it served: a watch of a kind not served would only fail, over and over. A
/// CRD installed later is picked up by the next run. Each run still asks, with one list of
/// a single item, whether the kind is served and readable: a CRD deleted means no objects
/// from the next run on, although the watch's cache may still hold the last ones (the watch
/// retries until the CRD is back, then lists it anew), and a kind netcanary may no longer
/// list is refused rather than read from what the cache held.
struct LazyWatch<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash,
{
    api: Api<K>,
    dyntype: K::DynamicType,
    /// What the cache drops of each object beyond managed fields and annotations.
    trim: fn(&mut K),
    store: OnceLock<Store<K>>,
}

impl<K> LazyWatch<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    fn new(api: Api<K>, dyntype: K::DynamicType, trim: fn(&mut K)) -> Self {
        Self { api, dyntype, trim, store: OnceLock::new() }
    }

    /// What a run finds of the kind.
    async fn objects(&self) -> Result<Listing<Vec<K>>, Error> {
        let kind = K::kind(&self.dyntype).into_owned();
        let what = format!("list {}", K::plural(&self.dyntype));
        let first = ListParams::default().limit(1);
        match Listing::of(with_backoff(&what, || self.api.list_metadata(&first)).await)? {
            Listing::Listed(_) => {}
            Listing::NotServed => return Ok(Listing::NotServed),
            Listing::Refused(message) => return Ok(Listing::Refused(message)),
        }
        let store = self.store.get_or_init(|| {
            info!(%kind, "served: watching it");
            reflect(self.api.clone(), self.dyntype.clone(), self.trim)
        });
        // The first list is what this run reads; only a reflector whose task ended fails here.
        let _ = store.wait_until_ready().await;
        Ok(Listing::Listed(owned(store)))
    }
}

/// Of a Node, a `nodes` peer reads the labels and the addresses: the rest of its status
/// (images above all) is most of its size.
fn trim_node(node: &mut Node) {
    let addresses = node.status.take().and_then(|status| status.addresses);
    node.status = Some(NodeStatus { addresses, ..NodeStatus::default() });
    node.spec = None;
}

impl Watched {
    /// Starts the watches on the current runtime; they run until the process ends.
    pub fn start(client: &Client) -> Self {
        let index = Arc::new(Mutex::new(Index::default()));
        let (set_synced, synced) = watch::channel(false);
        let set_synced = Arc::new(set_synced);
        index_kind::<Namespace>(client, &index, &set_synced);
        index_kind::<Pod>(client, &index, &set_synced);
        index_kind::<NetworkPolicy>(client, &index, &set_synced);
        let unstarted = |api: ClusterPolicyApi| {
            let resource = snapshot::api_resource(&api);
            (api, LazyWatch::new(Api::all_with(client.clone(), &resource), resource, |_| {}))
        };
        Self {
            client: client.clone(),
            index,
            synced,
            services: reflect(Api::all(client.clone()), (), |_| {}),
            cluster_policies: Arc::new(CLUSTER_POLICY_APIS.map(unstarted)),
            nodes: Arc::new(LazyWatch::new(Api::all(client.clone()), (), trim_node)),
        }
    }

    /// Completes once every watch has listed its objects once.
    pub async fn synced(&self) {
        let mut synced = self.synced.clone();
        let _ = tokio::join!(synced.wait_for(|synced| *synced), self.services.wait_until_ready());
    }
}

/// Watches one kind into the index; every event is applied as it comes.
fn index_kind<K>(client: &Client, index: &Arc<Mutex<Index>>, set_synced: &Arc<watch::Sender<bool>>)
where
    K: Indexed + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let (index, set_synced) = (Arc::clone(index), Arc::clone(set_synced));
    let events = watcher(Api::<K>::all(client.clone()), watcher::Config::default()).default_backoff();
    tokio::spawn(events.for_each(move |event| {
        match event {
            Ok(event) => {
                let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
                index.event(event);
                if index.synced() {
                    set_synced.send_if_modified(|synced| !std::mem::replace(synced, true));
                }
            }
            Err(error) => warn!(kind = %K::kind(&()), %error, "watch error; retrying"),
        }
        future::ready(())
    }));
}

fn reflect<K>(api: Api<K>, dyntype: K::DynamicType, trim: fn(&mut K)) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let kind = K::kind(&dyntype).into_owned();
    let writer = reflector::store::Writer::new(dyntype);
    let reader = writer.as_reader();
    // Managed fields and annotations (kubectl's last-applied copy above all) are most of an
    // object's size and nothing policy reads: the cache keeps neither.
    let trimmed = watcher(api, watcher::Config::default()).modify(move |object: &mut K| {
        object.managed_fields_mut().clear();
        object.annotations_mut().clear();
        trim(object);
    });
    let stream = reflector::reflector(writer, trimmed).default_backoff().for_each(move |event| {
        if let Err(error) = event {
            warn!(%kind, %error, "watch error; retrying");
        }
        future::ready(())
    });
    tokio::spawn(stream);
    reader
}

fn owned<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store.state().iter().map(|object: &Arc<K>| K::clone(object)).collect()
}

impl SnapshotSource for Watched {
    async fn snapshot(&self, dns: &DnsService) -> Result<Snapshot, Error> {
        let mut cluster_scoped = ClusterScoped::default();
        for (api, watch) in self.cluster_policies.iter() {
            let kind = api.kind;
            match watch.objects().await? {
                Listing::Listed(objects) => cluster_scoped.policies.extend(objects.into_iter().map(|o| (kind, o))),
                Listing::NotServed => {}
                Listing::Refused(reason) => cluster_scoped.refused.push((kind.as_str().to_string(), reason)),
            }
        }
        let services = owned(&self.services);
        let mut snapshot =
            self.index.lock().unwrap_or_else(PoisonError::into_inner).snapshot(cluster_scoped, &services, dns)?;
        // Rare and small (as NetcanaryIntents): listed at each run rather than watched.
        snapshot.unmodelled = snapshot::unmodelled_policies(&self.client).await;
        if snapshot::selects_nodes(&snapshot) {
            match self.nodes.objects().await? {
                Listing::Listed(nodes) => nodes.into_iter().for_each(|node| snapshot::add_node(&mut snapshot, node)),
                Listing::NotServed => {}
                Listing::Refused(reason) => snapshot::refuse(&mut snapshot, "Node", Some(reason)),
            }
        }
        (snapshot.intent, snapshot.intent_problems) = snapshot::intents(&self.client).await;
        Ok(snapshot)
    }
}
