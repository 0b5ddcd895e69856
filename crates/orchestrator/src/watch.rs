//! Watch caches for `serve`: watches keep namespaces, pods and NetworkPolicies converted in
//! an [`Index`] (an event converts one object; a run assembles its snapshot from what is
//! converted), and a reflector keeps the Services, so a scheduled run starts from memory
//! instead of listing the cluster. Watch errors are retried with backoff and logged; a bad
//! object never stops them.

use std::sync::{Arc, Mutex, PoisonError};

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::warn;

use crate::error::Error;
use crate::index::{Index, Indexed};
use crate::snapshot::{self, DnsService, Snapshot, SnapshotSource};

/// The index and the Services a snapshot needs, kept current.
#[derive(Clone)]
pub struct Watched {
    client: Client,
    index: Arc<Mutex<Index>>,
    /// Turns true once every watch of the index has listed its objects once.
    synced: watch::Receiver<bool>,
    services: Store<Service>,
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
        Self { client: client.clone(), index, synced, services: reflect(Api::all(client.clone())) }
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

fn reflect<K>(api: Api<K>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    // Managed fields and annotations (kubectl's last-applied copy above all) are most of an
    // object's size and nothing policy reads: the cache keeps neither.
    let trimmed = watcher(api, watcher::Config::default()).modify(|object: &mut K| {
        object.managed_fields_mut().clear();
        object.annotations_mut().clear();
    });
    let stream = reflector::reflector(writer, trimmed).default_backoff().for_each(|event| {
        if let Err(error) = event {
            warn!(kind = %K::kind(&()), %error, "watch error; retrying");
        }
        future::ready(())
    });
    tokio::spawn(stream);
    reader
}

impl SnapshotSource for Watched {
    async fn snapshot(&self, dns: &DnsService) -> Result<Snapshot, Error> {
        let services: Vec<Service> = self.services.state().iter().map(|s| Service::clone(s)).collect();
        let mut snapshot = self.index.lock().unwrap_or_else(PoisonError::into_inner).snapshot(&services, dns)?;
        // Rare and small: listed at each run rather than watched.
        snapshot.unmodelled = snapshot::unmodelled_policies(&self.client).await;
        Ok(snapshot)
    }
}
