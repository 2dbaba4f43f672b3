//! Hangar's gRPC API, generated at build time from `hangar/v1/*.proto`.
//!
//! # Layout
//! - `hangar/v1/config.proto`: [`v1::Snapshot`], the compiled config pushed to data planes.
//! - `hangar/v1/dataplane.proto`: [`v1::data_plane_service_server`], one bidirectional
//!   stream per data plane (snapshots down; hello, ACK/NACK and health reports up).
//! - `hangar/v1/admin.proto`: [`v1::admin_service_server`], the operator API of `hangarctl`.
//! - [`auth`]: bearer tokens, sent by clients and checked by the control plane.
//! - [`client`]: connecting to the control plane (URL, TLS, token).

pub mod auth;
pub mod client;
mod server;
mod strategy;

/// Version 1 of the API.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("hangar.v1");
}
