//! A control plane and one data plane with a config applied.

use crate::control_plane::ControlPlane;
use crate::data_plane::{DataPlane, McpClient};

/// A running control plane and data plane.
#[derive(Debug)]
pub struct Stack {
    /// The control plane.
    pub cp: ControlPlane,
    /// The data plane, node id `dp-1`.
    pub dp: DataPlane,
}

impl Stack {
    /// Starts both, applies `yaml` and waits until the data plane acked it.
    pub async fn start(yaml: &str) -> Self {
        let cp = ControlPlane::start().await;
        let dp = DataPlane::start(&cp.url(), "dp-1").await;
        cp.apply_and_wait(yaml, 1).await;
        Self { cp, dp }
    }

    /// As [`Stack::start`], with the data plane's HTTP `limits`.
    pub async fn start_with_limits(yaml: &str, limits: hangar_data_plane::Limits) -> Self {
        let cp = ControlPlane::start().await;
        let settings = hangar_data_plane::Settings::new(cp.url(), "dp-1");
        let dp = DataPlane::start_with_limits(settings, limits).await;
        cp.apply_and_wait(yaml, 1).await;
        Self { cp, dp }
    }

    /// The transparent endpoint of `group` on the data plane.
    pub fn group_url(&self, group: &str) -> String {
        format!("http://{}/groups/{group}/mcp", self.dp.addr())
    }

    /// An MCP client session with the data plane.
    pub async fn client(&self) -> McpClient {
        self.dp.client().await
    }

    /// Stops the data plane, then the control plane.
    pub async fn stop(self) {
        self.dp.stop().await;
        self.cp.stop().await;
    }
}
