//! End-to-end tests: real control plane, data plane and MCP servers in one
//! process, talking over real gRPC streams and real HTTP on loopback.

mod e2e {
    mod apply;
    mod balancing;
    mod failover;
    mod fleet;
    mod hangar_call;
    mod interop;
    mod metrics;
    mod persistence;
    mod strategies;
    mod transparent;
}
