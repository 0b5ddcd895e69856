//! Watch caches for `serve`: watches keep namespaces, pods and NetworkPolicies converted in
//! an [`Index`] (an event converts one object; a run assembles its snapshot from what is
//! converted), and reflectors keep the Services and the cluster policy tiers
//! (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy), so a scheduled
//! run starts from memory instead of listing the cluster. Watch errors are retried with
//! backoff and logged; a bad object never stops them.

use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
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
use crate::snapshot::{self, ClusterScoped, DnsService, Snapshot, SnapshotSource};

/// The index and the Services a snapshot needs, kept current.
#[derive(Clone)]
pub struct Watched {
    client: Client,
    index: Arc<Mutex<Index>>,
    /// Turns true once every watch of the index has listed its objects once.
    synced: watch::Receiver<bool>,
    services: Store<Service>,
    cluster_policies: Arc<[ClusterPolicyWatch; 3]>,
}

/// The watch of one cluster policy kind, started at the first run that finds its CRD
/// served: most clusters have none of these CRDs, and a watch of a kind not served would
/// only fail, over and over. A CRD installed later is picked up by the next run; one
/// deleted leaves no objects from the next run on, although its watch's cache still holds
/// the last ones (the watch retries until the CRD is back, then lists it anew).
struct ClusterPolicyWatch {
    api: ClusterPolicyApi,
    store: OnceLock<Store<DynamicObject>>,
}

/// What a run finds of one cluster policy kind.
enum Found {
    Objects(Vec<DynamicObject>),
    /// The API server refused to list them, with its message.
    Refused(String),
}

impl ClusterPolicyWatch {
    async fn objects(&self, client: &Client) -> Result<Found, Error> {
        let resource = snapshot::api_resource(&self.api);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        // One small request a run, watched or not: whether the kind is still served and
        // readable is what the watch's cache cannot say.
        let what = format!("list {}", self.api.plural);
        let first = ListParams::default().limit(1);
        match with_backoff(&what, || api.list_metadata(&first)).await {
            Ok(_) => {}
            Err(Error::Kube { source: kube::Error::Api(status), .. }) if status.code == 404 => {
                return Ok(Found::Objects(Vec::new()));
            }
            Err(Error::Kube { source: kube::Error::Api(status), .. }) if status.code == 403 => {
                return Ok(Found::Refused(status.message));
            }
            Err(error) => return Err(error),
        }
        let store = self.store.get_or_init(|| {
            info!(kind = %self.api.kind.as_str(), "served: watching it");
            reflect(api, resource)
        });
        // The first list is what this run reads; only a reflector whose task ended fails here.
        let _ = store.wait_until_ready().await;
        Ok(Found::Objects(owned(store)))
    }
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
        let unstarted = |api| ClusterPolicyWatch { api, store: OnceLock::new() };
        Self {
            client: client.clone(),
            index,
            synced,
            services: reflect(Api::all(client.clone()), ()),
            cluster_policies: Arc::new(CLUSTER_POLICY_APIS.map(unstarted)),
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

fn reflect<K>(api: Api<K>, dyntype: K::DynamicType) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let kind = K::kind(&dyntype).into_owned();
    let writer = reflector::store::Writer::new(dyntype);
    let reader = writer.as_reader();
    // Managed fields and annotations (kubectl's last-applied copy above all) are most of an
    // object's size and nothing policy reads: the cache keeps neither.
    let trimmed = watcher(api, watcher::Config::default()).modify(|object: &mut K| {
        object.managed_fields_mut().clear();
        object.annotations_mut().clear();
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
        for watch in self.cluster_policies.iter() {
            let kind = watch.api.kind;
            match watch.objects(&self.client).await? {
                Found::Objects(objects) => cluster_scoped.policies.extend(objects.into_iter().map(|o| (kind, o))),
                Found::Refused(reason) => cluster_scoped.refused.push((kind.as_str().to_string(), reason)),
            }
        }
        let services = owned(&self.services);
        let mut snapshot =
            self.index.lock().unwrap_or_else(PoisonError::into_inner).snapshot(cluster_scoped, &services, dns)?;
        // Rare and small (as NetcanaryIntents): listed at each run rather than watched.
        snapshot.unmodelled = snapshot::unmodelled_policies(&self.client).await;
        snapshot::read_nodes(&self.client, &mut snapshot).await?;
        (snapshot.intent, snapshot.intent_problems) = snapshot::intents(&self.client).await;
        Ok(snapshot)
    }
}
