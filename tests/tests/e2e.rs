//! End-to-end tests: real control plane, data plane and MCP servers in one
//! process, talking over real gRPC streams and real HTTP on loopback.

mod e2e {
    mod apply;
    mod balancing;
    mod bearer_tokens;
    mod breaker;
    mod client_auth;
    mod client_errors;
    mod dashboard;
    mod failover;
    mod fleet;
    mod front_door;
    mod hangar_call;
    mod interop;
    mod limits;
    mod malformed;
    mod members;
    mod metrics;
    mod mixed_tools;
    mod outliers;
    mod persistence;
    mod policies;
    mod rate_limits;
    mod recovery;
    mod refusal_shapes;
    mod retries;
    mod sealed_sessions;
    mod security;
    mod status_page;
    mod strategies;
    mod traces;
    mod transparent;
}
