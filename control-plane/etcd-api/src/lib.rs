//! etcd v3's gRPC API, generated at build time from the protos vendored in
//! `proto/` (see its README for their origin and licenses).
//!
//! Only the client side is built. The control plane uses three services of
//! [`etcdserverpb`]: `KV` (range, txn), `Watch` and `Lease`.

/// The `etcdserverpb` package: requests, responses and service clients.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// The `mvccpb` package: stored key-values and watch events.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// The `authpb` package, referenced by `etcdserverpb`'s auth messages.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod authpb {
    tonic::include_proto!("authpb");
}
