//! The connected data planes and what they last told us.
//!
//! Each data-plane stream registers itself here with a connection id. A data
//! plane that reconnects under the same node id replaces its old entry; the
//! old stream's late disconnect is ignored because its connection id no
//! longer matches.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use hangar_proto::v1::{HealthReport, Hello, MemberHealth};
use parking_lot::Mutex;
use tokio::time::Instant;

/// Identifies one stream of one data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The data plane's node id.
    pub node_id: String,
    id: u64,
}

/// What the control plane knows about one connected data plane.
#[derive(Debug, Clone)]
pub struct DataPlane {
    /// Node id from the data plane's hello.
    pub node_id: String,
    /// Peer address of the stream.
    pub address: Option<SocketAddr>,
    /// Address the data plane serves MCP on, as it said in its hello.
    pub listen_addr: String,
    /// Labels from the hello.
    pub labels: HashMap<String, String>,
    /// When the stream opened.
    pub connected_at: Instant,
    /// Last message of any kind on the stream.
    pub last_seen: Instant,
    /// Last version the data plane acknowledged (0 = none).
    pub acked_version: u64,
    /// Reason of the last NACK, if the data plane rejected a snapshot.
    pub last_nack: Option<String>,
    /// Member health from the last report, by server id.
    pub health: BTreeMap<String, MemberHealth>,
    connection: u64,
}

/// Registry of connected data planes.
#[derive(Debug, Default)]
pub struct Fleet {
    planes: Mutex<BTreeMap<String, DataPlane>>,
    next_connection: AtomicU64,
}

// === impl Fleet ===

impl Fleet {
    /// Registers a new stream from a data plane.
    pub fn connect(&self, hello: &Hello, address: Option<SocketAddr>) -> Connection {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let plane = DataPlane {
            node_id: hello.node_id.clone(),
            address,
            listen_addr: hello.listen_addr.clone(),
            labels: hello.labels.clone(),
            connected_at: now,
            last_seen: now,
            acked_version: hello.held_version,
            last_nack: None,
            health: BTreeMap::new(),
            connection: id,
        };
        self.planes.lock().insert(hello.node_id.clone(), plane);
        Connection {
            node_id: hello.node_id.clone(),
            id,
        }
    }

    /// Removes a data plane whose stream ended.
    pub fn disconnect(&self, conn: &Connection) {
        let mut planes = self.planes.lock();
        if planes.get(&conn.node_id).map(|p| p.connection) == Some(conn.id) {
            planes.remove(&conn.node_id);
        }
    }

    /// Records that the data plane applied `version`.
    pub fn ack(&self, conn: &Connection, version: u64) {
        self.update(conn, |p| {
            p.acked_version = version;
            p.last_nack = None;
        });
    }

    /// Records that the data plane rejected `version`.
    pub fn nack(&self, conn: &Connection, version: u64, reason: String) {
        self.update(conn, |p| {
            p.last_nack = Some(format!("version {version}: {reason}"))
        });
    }

    /// Replaces the data plane's member health with a new report.
    pub fn report(&self, conn: &Connection, report: HealthReport) {
        self.update(conn, |p| {
            p.health = report
                .members
                .into_iter()
                .map(|m| (m.server_id.clone(), m))
                .collect();
        });
    }

    /// A copy of every connected data plane, ordered by node id.
    pub fn planes(&self) -> Vec<DataPlane> {
        self.planes.lock().values().cloned().collect()
    }

    fn update(&self, conn: &Connection, f: impl FnOnce(&mut DataPlane)) {
        let mut planes = self.planes.lock();
        if let Some(plane) = planes.get_mut(&conn.node_id)
            && plane.connection == conn.id
        {
            plane.last_seen = Instant::now();
            f(plane);
        }
    }
}
