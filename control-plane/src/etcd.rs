//! The shared config store: one key in etcd that every replica reads,
//! writes with compare-and-swap, and watches.
//!
//! `{prefix}/config` holds the JSON of [`StoredConfig`]. A write names the
//! etcd `mod_revision` of the config it was derived from and only succeeds
//! if the key still has it, so two replicas applying at once cannot both
//! make version N: the loser learns what is stored instead. Each replica
//! follows the key with a watch and publishes what it sees, so an apply on
//! any replica reaches every replica's data planes.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, PutOptions, Txn,
    TxnOp, TxnOpResponse, WatchOptions,
};

use crate::error_chain;
use crate::store::{Revision, Saved, StoreError, StoredConfig};

/// How long one etcd request may take before the store counts as
/// unavailable. The client waits for a reachable member indefinitely, so
/// without this an apply during an outage would hang instead of failing.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long to try to open a connection to one member.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// HTTP/2 pings on idle connections, so that a member that vanished without
/// closing its sockets ends the watch instead of leaving it silent forever.
const KEEP_ALIVE: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(3));

/// Health reports written per transaction (etcd's default cap is 128).
const HEALTH_BATCH: usize = 100;

/// Where the shared store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    /// Client URLs of the etcd members (`http://HOST:PORT`).
    pub endpoints: Vec<String>,
    /// Key prefix of this Hangar deployment, e.g. `/hangar`.
    pub prefix: String,
}

impl EtcdSettings {
    /// Default of [`EtcdSettings::prefix`].
    pub const DEFAULT_PREFIX: &'static str = "/hangar";

    /// Parses `etcd://HOST:PORT[,HOST:PORT...]`.
    pub fn parse(url: &str, prefix: &str) -> Result<Self, String> {
        let Some(hosts) = url.strip_prefix("etcd://") else {
            return Err(format!(
                "'{url}' is not an etcd URL: expected etcd://HOST:PORT[,HOST:PORT...]"
            ));
        };
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            let valid = host
                .rsplit_once(':')
                .is_some_and(|(name, port)| !name.is_empty() && port.parse::<u16>().is_ok());
            if !valid || host.contains('/') {
                return Err(format!(
                    "'{host}' in '{url}' is not HOST:PORT (e.g. 127.0.0.1:2379)"
                ));
            }
            endpoints.push(format!("http://{host}"));
        }
        if !prefix.starts_with('/') || prefix.ends_with('/') {
            return Err(format!(
                "etcd prefix '{prefix}' must start with '/' and not end with one (e.g. /hangar)"
            ));
        }
        Ok(Self {
            endpoints,
            prefix: prefix.to_owned(),
        })
    }
}

/// The config key in etcd, shared by every replica of a deployment.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    key: String,
    prefix: String,
    endpoints: String,
}

// === impl EtcdStore ===

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client has no Debug of its own.
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Makes a client for the members; connections are opened on first use,
    /// so this succeeds while etcd is down.
    pub async fn connect(settings: &EtcdSettings) -> Result<Self, StoreError> {
        let endpoints = settings.endpoints.join(",");
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEP_ALIVE.0, KEEP_ALIVE.1)
            .with_keep_alive_while_idle(true);
        let client = Client::connect(&settings.endpoints, Some(options))
            .await
            .map_err(|source| StoreError::Unavailable {
                endpoints: endpoints.clone(),
                source: readable(source),
            })?;
        Ok(Self {
            client,
            key: format!("{}/config", settings.prefix),
            prefix: settings.prefix.clone(),
            endpoints,
        })
    }

    /// The members, comma separated, for logs and errors.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// The stored config and its revision, or `None` when nothing was applied yet.
    pub async fn load(&self) -> Result<Option<(StoredConfig, Revision)>, StoreError> {
        let mut client = self.client.clone();
        let response = self.timed(client.get(self.key.as_str(), None)).await?;
        response.kvs().first().map(|kv| self.decode(kv)).transpose()
    }

    /// Stores `config` if the key is still at `base` (0: absent), else
    /// reports what is stored now.
    pub async fn save(&self, config: &StoredConfig, base: Revision) -> Result<Saved, StoreError> {
        let body = serde_json::to_vec(config).expect("StoredConfig always serializes");
        let unchanged = if base == 0 {
            // No config yet: the key must not have been created meanwhile.
            Compare::create_revision(self.key.as_str(), CompareOp::Equal, 0)
        } else {
            Compare::mod_revision(self.key.as_str(), CompareOp::Equal, base)
        };
        let txn = Txn::new()
            .when([unchanged])
            .and_then([TxnOp::put(self.key.as_str(), body, None)])
            .or_else([TxnOp::get(self.key.as_str(), None)]);
        let mut client = self.client.clone();
        let response = self.timed(client.txn(txn)).await?;
        if response.succeeded() {
            // The put happened at the revision of the whole transaction.
            let revision = response.header().map_or(0, |h| h.revision());
            return Ok(Saved::Done { revision });
        }
        let stored = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().cloned(),
            _ => None,
        });
        match stored {
            Some(kv) => {
                let (latest, revision) = self.decode(&kv)?;
                Ok(Saved::Conflict { latest, revision })
            }
            // Deleted by hand since we last saw it: nothing to build on.
            None => Err(StoreError::Missing {
                key: self.key.clone(),
            }),
        }
    }

    /// Reports every config stored after revision `after`, first the
    /// latest one (if newer) and then each change as it happens, until
    /// the connection to etcd fails; returns that failure.
    pub async fn follow(
        &self,
        after: Revision,
        mut on_change: impl FnMut(StoredConfig, Revision),
    ) -> StoreError {
        let mut client = self.client.clone();
        // Read first, then watch from just past that read: nothing between
        // the two is missed, and a revision compacted away during an outage
        // is never asked for.
        let response = match self.timed(client.get(self.key.as_str(), None)).await {
            Ok(response) => response,
            Err(err) => return err,
        };
        let read_at = response.header().map_or(0, |h| h.revision());
        if let Some(kv) = response.kvs().first() {
            match self.decode(kv) {
                Ok((stored, revision)) if revision > after => on_change(stored, revision),
                Ok(_) => {}
                Err(err) => tracing::error!(error = %error_chain(&err), "ignoring stored config"),
            }
        }
        let options = WatchOptions::new().with_start_revision(read_at + 1);
        let mut stream = match self
            .timed(client.watch(self.key.as_str(), Some(options)))
            .await
        {
            Ok(stream) => stream,
            Err(err) => return err,
        };
        loop {
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => return self.unavailable("the watch stream ended"),
                Err(source) => return self.unavailable(readable(source)),
            };
            if response.canceled() {
                return self.unavailable(format!(
                    "etcd cancelled the watch: {}",
                    response.cancel_reason()
                ));
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                if event.event_type() == EventType::Delete {
                    tracing::warn!(etcd.key = %self.key, "config key deleted in etcd; keeping the config in force");
                    continue;
                }
                match self.decode(kv) {
                    Ok((stored, revision)) => on_change(stored, revision),
                    Err(err) => {
                        tracing::error!(error = %error_chain(&err), "ignoring stored config")
                    }
                }
            }
        }
    }

    /// Writes `records` (node id, value) as this replica's health reports
    /// on a fresh lease of `ttl`, then revokes `previous`: a report is
    /// moved to the new lease, so revoking removes only data planes this
    /// replica no longer knows. Returns the new lease; a replica that dies
    /// leaves reports that vanish after `ttl`.
    pub async fn share_health(
        &self,
        replica: &str,
        records: Vec<(String, Vec<u8>)>,
        ttl: Duration,
        previous: Option<i64>,
    ) -> Result<i64, StoreError> {
        let mut client = self.client.clone();
        let ttl = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let lease = self.timed(client.lease_grant(ttl, None)).await?.id();
        // One transaction per batch rather than one request per data plane;
        // etcd caps a transaction at 128 operations by default.
        let puts: Vec<TxnOp> = records
            .into_iter()
            .map(|(node, value)| {
                let key = format!("{}/health/{replica}/{node}", self.prefix);
                TxnOp::put(key, value, Some(PutOptions::new().with_lease(lease)))
            })
            .collect();
        for batch in puts.chunks(HEALTH_BATCH) {
            let txn = Txn::new().and_then(batch.to_vec());
            self.timed(client.txn(txn)).await?;
        }
        if let Some(previous) = previous {
            self.revoke(previous).await;
        }
        Ok(lease)
    }

    /// Deletes the reports on `lease` now rather than when it runs out.
    /// Failing only leaves them listed until then.
    pub async fn revoke(&self, lease: i64) {
        let mut client = self.client.clone();
        if let Err(err) = self.timed(client.lease_revoke(lease)).await {
            tracing::debug!(error = %error_chain(&err), "cannot revoke a health lease");
        }
    }

    /// The health reports of every replica but `replica`, as written by
    /// [`EtcdStore::share_health`]; waits at most `patience`.
    pub async fn other_health(
        &self,
        replica: &str,
        patience: Duration,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut client = self.client.clone();
        let all = format!("{}/health/", self.prefix);
        let own = format!("{all}{replica}/");
        let read = client.get(all.as_str(), Some(GetOptions::new().with_prefix()));
        let response = match tokio::time::timeout(patience, read).await {
            Ok(result) => result.map_err(|source| self.unavailable(readable(source)))?,
            Err(_) => return Err(self.unavailable(format!("no answer within {patience:?}"))),
        };
        Ok(response
            .kvs()
            .iter()
            .filter(|kv| !kv.key().starts_with(own.as_bytes()))
            .map(|kv| kv.value().to_vec())
            .collect())
    }

    fn decode(&self, kv: &KeyValue) -> Result<(StoredConfig, Revision), StoreError> {
        serde_json::from_slice(kv.value())
            .map(|stored| (stored, kv.mod_revision()))
            .map_err(|source| StoreError::CorruptKey {
                key: self.key.clone(),
                source,
            })
    }

    async fn timed<T>(
        &self,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(result) => result.map_err(|source| self.unavailable(readable(source))),
            Err(_) => Err(self.unavailable(format!("no answer within {REQUEST_TIMEOUT:?}"))),
        }
    }

    fn unavailable(
        &self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Unavailable {
            endpoints: self.endpoints.clone(),
            source: source.into(),
        }
    }
}

/// An etcd client error as a reader wants it: the client shows a failed
/// request as the Debug form of its gRPC status, which buries the cause
/// ("connection refused") in struct syntax.
fn readable(err: etcd_client::Error) -> Box<dyn std::error::Error + Send + Sync> {
    let etcd_client::Error::GRpcStatus(status) = err else {
        return Box::new(err);
    };
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(&status);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Transport errors repeat their inner error's text in their own.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every member becomes an http endpoint; bad input is refused with the reason.
    #[test]
    fn parses_store_urls() {
        let s = EtcdSettings::parse("etcd://127.0.0.1:2379,etcd-2:2379", "/hangar").unwrap();
        assert_eq!(s.endpoints, ["http://127.0.0.1:2379", "http://etcd-2:2379"]);
        for bad in [
            "http://x:1",
            "etcd://",
            "etcd://host",
            "etcd://h:port",
            "etcd://h:1/x",
        ] {
            assert!(EtcdSettings::parse(bad, "/hangar").is_err(), "{bad}");
        }
        for bad in ["hangar", "/hangar/", ""] {
            assert!(EtcdSettings::parse("etcd://h:1", bad).is_err(), "{bad}");
        }
    }
}
