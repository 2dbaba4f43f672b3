//! The shared config store: one key in etcd that every replica reads,
//! writes with compare-and-swap, and watches.
//!
//! `{prefix}/config` holds the JSON of `StoredConfig`. A write names the
//! etcd `mod_revision` of the config it was derived from and only succeeds
//! if the key still has it, so two replicas applying at once cannot both
//! make version N: the loser learns what is stored instead. Each replica
//! follows the key with a watch and publishes what it sees, so an apply on
//! any replica reaches every replica's data planes.

use std::time::Duration;

use futures::{StreamExt, future, stream};
use hangar_etcd_api::etcdserverpb::{
    Compare, LeaseGrantRequest, LeaseRevokeRequest, PutRequest, RangeRequest, RangeResponse,
    RequestOp, TxnRequest, WatchCreateRequest, WatchRequest, compare, kv_client::KvClient,
    lease_client::LeaseClient, request_op, response_op, watch_client::WatchClient, watch_request,
};
use hangar_etcd_api::mvccpb::{KeyValue, event::EventType};
use hangar_runtime::error_chain;
use tonic::transport::{Channel, Endpoint};

use crate::stored::{Revision, Saved, StoreError, StoredConfig};

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
#[derive(Debug, Clone)]
pub struct EtcdStore {
    /// One channel balanced over every member; clones share its connections.
    channel: Channel,
    key: String,
    prefix: String,
    endpoints: String,
}

// === impl EtcdStore ===

impl EtcdStore {
    /// Makes a client for the members; connections are opened on first use,
    /// so this succeeds while etcd is down.
    pub async fn connect(settings: &EtcdSettings) -> Result<Self, StoreError> {
        let endpoints = settings.endpoints.join(",");
        let mut members = Vec::with_capacity(settings.endpoints.len());
        for url in &settings.endpoints {
            let member =
                Endpoint::from_shared(url.clone()).map_err(|source| StoreError::Unavailable {
                    endpoints: endpoints.clone(),
                    source: source.into(),
                })?;
            members.push(
                member
                    .connect_timeout(CONNECT_TIMEOUT)
                    .http2_keep_alive_interval(KEEP_ALIVE.0)
                    .keep_alive_timeout(KEEP_ALIVE.1)
                    .keep_alive_while_idle(true),
            );
        }
        // A balanced channel even for one member: a member that goes away
        // is left until it answers again while requests go to the others.
        let channel = Channel::balance_list(members.into_iter());
        Ok(Self {
            channel,
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
        let response = self.get(self.key.as_bytes().to_vec(), Vec::new()).await?;
        response.kvs.first().map(|kv| self.decode(kv)).transpose()
    }

    /// Stores `config` if the key is still at `base` (0: absent), else
    /// reports what is stored now.
    pub async fn save(&self, config: &StoredConfig, base: Revision) -> Result<Saved, StoreError> {
        let body = serde_json::to_vec(config).expect("StoredConfig always serializes");
        let key = self.key.as_bytes().to_vec();
        let unchanged = unchanged_since(&key, base);
        let txn = TxnRequest {
            compare: vec![unchanged],
            success: vec![put(key.clone(), body, 0)],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key,
                    ..RangeRequest::default()
                })),
            }],
        };
        let mut kv = KvClient::new(self.channel.clone());
        let response = self.timed(kv.txn(txn)).await?.into_inner();
        if response.succeeded {
            // The put happened at the revision of the whole transaction.
            let revision = response.header.map_or(0, |h| h.revision);
            return Ok(Saved::Done { revision });
        }
        let stored = response
            .responses
            .into_iter()
            .find_map(|op| match op.response {
                Some(response_op::Response::ResponseRange(mut range)) if !range.kvs.is_empty() => {
                    Some(range.kvs.swap_remove(0))
                }
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

    /// The value of `{prefix}/{name}` and its revision, if it exists: for
    /// documents beside the config, such as the session keys.
    pub(crate) async fn get_document(
        &self,
        name: &str,
    ) -> Result<Option<(Vec<u8>, Revision)>, StoreError> {
        let key = format!("{}/{name}", self.prefix).into_bytes();
        let response = self.get(key, Vec::new()).await?;
        Ok(response
            .kvs
            .into_iter()
            .next()
            .map(|kv| (kv.value, kv.mod_revision)))
    }

    /// Writes `{prefix}/{name}` if it is still at revision `base` (0: if
    /// it does not exist); false when another writer got there first.
    pub(crate) async fn put_document(
        &self,
        name: &str,
        value: Vec<u8>,
        base: Revision,
    ) -> Result<bool, StoreError> {
        let key = format!("{}/{name}", self.prefix).into_bytes();
        let unchanged = unchanged_since(&key, base);
        let txn = TxnRequest {
            compare: vec![unchanged],
            success: vec![put(key, value, 0)],
            failure: Vec::new(),
        };
        let mut kv = KvClient::new(self.channel.clone());
        Ok(self.timed(kv.txn(txn)).await?.into_inner().succeeded)
    }

    /// Reports every config stored after revision `after`, first the
    /// latest one (if newer) and then each change as it happens, until
    /// the connection to etcd fails; returns that failure.
    pub async fn follow(
        &self,
        after: Revision,
        mut on_change: impl FnMut(StoredConfig, Revision),
    ) -> StoreError {
        // Read first, then watch from just past that read: nothing between
        // the two is missed, and a revision compacted away during an outage
        // is never asked for.
        let response = match self.get(self.key.as_bytes().to_vec(), Vec::new()).await {
            Ok(response) => response,
            Err(err) => return err,
        };
        let read_at = response.header.map_or(0, |h| h.revision);
        if let Some(kv) = response.kvs.first() {
            match self.decode(kv) {
                Ok((stored, revision)) if revision > after => on_change(stored, revision),
                Ok(_) => {}
                Err(err) => tracing::error!(error = %error_chain(&err), "ignoring stored config"),
            }
        }
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: self.key.as_bytes().to_vec(),
                    start_revision: read_at + 1,
                    ..WatchCreateRequest::default()
                },
            )),
        };
        // etcd ends a watch when its request stream ends: send the one
        // request, then keep the stream open.
        let requests = stream::once(future::ready(create)).chain(stream::pending());
        let mut watch = WatchClient::new(self.channel.clone());
        let mut stream = match self.timed(watch.watch(requests)).await {
            Ok(stream) => stream.into_inner(),
            Err(err) => return err,
        };
        loop {
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => return self.unavailable("the watch stream ended"),
                Err(source) => return self.unavailable(readable(source)),
            };
            if response.canceled {
                return self.unavailable(format!(
                    "etcd cancelled the watch: {}",
                    response.cancel_reason
                ));
            }
            for event in &response.events {
                let Some(kv) = &event.kv else { continue };
                if event.r#type() == EventType::Delete {
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
        let ttl = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let mut leases = LeaseClient::new(self.channel.clone());
        let lease = self
            .timed(leases.lease_grant(LeaseGrantRequest { ttl, id: 0 }))
            .await?
            .into_inner()
            .id;
        // One transaction per batch rather than one request per data plane;
        // etcd caps a transaction at 128 operations by default.
        let mut puts: Vec<RequestOp> = records
            .into_iter()
            .map(|(node, value)| {
                let key = format!("{}/health/{replica}/{node}", self.prefix);
                put(key.into_bytes(), value, lease)
            })
            .collect();
        let mut kv = KvClient::new(self.channel.clone());
        while !puts.is_empty() {
            let rest = puts.split_off(puts.len().min(HEALTH_BATCH));
            let txn = TxnRequest {
                success: std::mem::replace(&mut puts, rest),
                ..TxnRequest::default()
            };
            self.timed(kv.txn(txn)).await?;
        }
        if let Some(previous) = previous {
            self.revoke(previous).await;
        }
        Ok(lease)
    }

    /// Deletes the reports on `lease` now rather than when it runs out.
    /// Failing only leaves them listed until then.
    pub async fn revoke(&self, lease: i64) {
        let mut leases = LeaseClient::new(self.channel.clone());
        if let Err(err) = self
            .timed(leases.lease_revoke(LeaseRevokeRequest { id: lease }))
            .await
        {
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
        let all = format!("{}/health/", self.prefix);
        let own = format!("{all}{replica}/");
        let range_end = prefix_end(all.as_bytes());
        let mut kv = KvClient::new(self.channel.clone());
        let read = kv.range(RangeRequest {
            key: all.into_bytes(),
            range_end,
            ..RangeRequest::default()
        });
        let response = match tokio::time::timeout(patience, read).await {
            Ok(result) => result
                .map_err(|source| self.unavailable(readable(source)))?
                .into_inner(),
            Err(_) => return Err(self.unavailable(format!("no answer within {patience:?}"))),
        };
        Ok(response
            .kvs
            .into_iter()
            .filter(|kv| !kv.key.starts_with(own.as_bytes()))
            .map(|kv| kv.value)
            .collect())
    }

    /// Reads `key` (or the range up to `range_end`, when not empty).
    async fn get(&self, key: Vec<u8>, range_end: Vec<u8>) -> Result<RangeResponse, StoreError> {
        let mut kv = KvClient::new(self.channel.clone());
        let request = RangeRequest {
            key,
            range_end,
            ..RangeRequest::default()
        };
        Ok(self.timed(kv.range(request)).await?.into_inner())
    }

    fn decode(&self, kv: &KeyValue) -> Result<(StoredConfig, Revision), StoreError> {
        serde_json::from_slice(&kv.value)
            .map(|stored| (stored, kv.mod_revision))
            .map_err(|source| StoreError::CorruptKey {
                key: self.key.clone(),
                source,
            })
    }

    async fn timed<T>(
        &self,
        request: impl Future<Output = Result<T, tonic::Status>>,
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

/// A `Compare` of `key` for equality; the caller sets what is compared.
/// The condition of a compare-and-swap: `key` is still at revision `base`,
/// or for a `base` of 0 was not created meanwhile.
fn unchanged_since(key: &[u8], base: Revision) -> Compare {
    if base == 0 {
        Compare {
            target: compare::CompareTarget::Create.into(),
            target_union: Some(compare::TargetUnion::CreateRevision(0)),
            ..equal(key)
        }
    } else {
        Compare {
            target: compare::CompareTarget::Mod.into(),
            target_union: Some(compare::TargetUnion::ModRevision(base)),
            ..equal(key)
        }
    }
}

fn equal(key: &[u8]) -> Compare {
    Compare {
        result: compare::CompareResult::Equal.into(),
        key: key.to_vec(),
        ..Compare::default()
    }
}

/// A put of `value` at `key` as one operation of a transaction; lease 0 is none.
fn put(key: Vec<u8>, value: Vec<u8>, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key,
            value,
            lease,
            ..PutRequest::default()
        })),
    }
}

/// The end of the range of every key that starts with `prefix`: etcd reads
/// `[key, range_end)`, so the prefix with its last byte raised by one.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): to the end of the keyspace.
    vec![0]
}

/// A failed etcd request as a reader wants it: the gRPC status's message
/// and then every cause beneath it ("connection refused"), each said once.
fn readable(status: tonic::Status) -> Box<dyn std::error::Error + Send + Sync> {
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
    fn prefix_ranges_end_past_every_key_of_the_prefix() {
        assert_eq!(prefix_end(b"/hangar/health/"), b"/hangar/health0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), [0]);
    }

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
