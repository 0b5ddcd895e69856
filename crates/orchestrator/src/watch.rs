//! Watch caches for `serve`: reflectors keep namespaces, pods, NetworkPolicies and
//! Services current, so a scheduled run starts from memory instead of listing the cluster.
//! Watch errors are retried with backoff and logged; a bad object never stops them.

use std::sync::Arc;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::warn;

use crate::error::Error;
use crate::snapshot::{self, DnsService, Snapshot, SnapshotSource};

/// Reflector stores for everything a snapshot needs.
#[derive(Clone)]
pub struct Watched {
    client: Client,
    namespaces: Store<Namespace>,
    pods: Store<Pod>,
    policies: Store<NetworkPolicy>,
    services: Store<Service>,
}

impl Watched {
    /// Starts the watches on the current runtime; they run until the process ends.
    pub fn start(client: &Client) -> Self {
        Self {
            client: client.clone(),
            namespaces: reflect(Api::all(client.clone())),
            pods: reflect(Api::all(client.clone())),
            policies: reflect(Api::all(client.clone())),
            services: reflect(Api::all(client.clone())),
        }
    }

    /// Completes once every watch has listed its objects once.
    pub async fn synced(&self) {
        let _ = tokio::join!(
            self.namespaces.wait_until_ready(),
            self.pods.wait_until_ready(),
            self.policies.wait_until_ready(),
            self.services.wait_until_ready(),
        );
    }
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

fn owned<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.state().iter().map(|object: &Arc<K>| K::clone(object)).collect()
}

impl SnapshotSource for Watched {
    async fn snapshot(&self, dns: &DnsService) -> Result<Snapshot, Error> {
        let mut snapshot = snapshot::build(
            owned(&self.namespaces),
            owned(&self.pods),
            owned(&self.policies),
            &owned(&self.services),
            dns,
        )?;
        // Rare and small (as NetcanaryIntents): listed at each run rather than watched.
        snapshot.unmodelled = snapshot::unmodelled_policies(&self.client).await;
        (snapshot.intent, snapshot.intent_problems) = snapshot::intents(&self.client).await;
        Ok(snapshot)
    }
}
