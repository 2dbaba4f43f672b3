//! Step 3 of loading: compile a [`Config`] into the [`v1::Snapshot`] the
//! control plane pushes to data planes.

use std::time::Duration;

use hangar_proto::v1;

use hangar_template::Template;
use indexmap::IndexMap;

use crate::model::{
    Backoff, ClientAuth, Config, Group, JwksSource, OutlierDetection, RateLimit, RateScope,
    RateSize, RemoteServer, RetryPolicy, Server, SubprocessServer, ToolPolicy,
};

impl Config {
    /// The snapshot for config `version` (0 is reserved for "no config").
    ///
    /// Servers and groups keep file order. Every member starts `eligible`;
    /// taking members out of rotation fleet-wide is the control plane's call.
    pub fn to_snapshot(&self, version: u64) -> v1::Snapshot {
        v1::Snapshot {
            version,
            servers: self
                .servers
                .iter()
                .filter_map(|(id, s)| match s {
                    Server::Remote(remote) => Some(remote_server(id, remote)),
                    Server::Subprocess(sub) => Some(subprocess_server(id, sub)),
                    Server::Group(_) => None,
                })
                .collect(),
            groups: self
                .groups()
                .map(|(id, g)| {
                    let mut group = group(id, g);
                    group.retry = self.retry.policy_for(id).map(retry_policy);
                    group
                })
                .collect(),
            rate_limit: self.rate_limit.as_ref().map(rate_limit),
            client_auth: self.auth.as_ref().map(client_auth),
            access: self
                .access
                .iter()
                .map(|rule| v1::AccessRule {
                    principals: rule.principals.clone(),
                    roles: rule.roles.clone(),
                    allow: rule.allow.clone(),
                })
                .collect(),
        }
    }
}

fn client_auth(auth: &ClientAuth) -> v1::ClientAuth {
    v1::ClientAuth {
        enabled: auth.enabled,
        allow_anonymous: auth.allow_anonymous,
        api_key_header: auth.api_key_header.clone().unwrap_or_default(),
        jwt: auth.jwt.as_ref().map(|jwt| v1::JwtAuth {
            issuer: jwt.issuer.clone(),
            audiences: jwt.audiences.clone(),
            jwks_url: match &jwt.jwks {
                JwksSource::Url(url) => url.to_string(),
                JwksSource::Inline(_) => String::new(),
            },
            jwks_json: match &jwt.jwks {
                JwksSource::Inline(json) => json.clone(),
                JwksSource::Url(_) => String::new(),
            },
            principal_claim: jwt.principal_claim.clone(),
            roles_claim: jwt.roles_claim.clone(),
            algorithms: jwt.algorithms.clone(),
            leeway_s: jwt.leeway_s,
        }),
        oauth: auth.oauth.as_ref().map(|oauth| v1::OAuthMetadata {
            authorization_servers: oauth.authorization_servers.clone(),
            scopes_supported: oauth.scopes_supported.clone(),
        }),
    }
}

fn remote_server(id: &str, server: &RemoteServer) -> v1::Server {
    v1::Server {
        id: id.to_owned(),
        transport: Some(v1::server::Transport::Endpoint(server.endpoint.to_string())),
        probe_interval_ms: millis_ceil(server.health_check_interval),
        max_consecutive_failures: server.max_consecutive_failures,
        // Fleet health is not config; the control plane sets it when sending.
        fleet_unhealthy: false,
        headers: headers(&server.headers),
        tls: Some(v1::Tls {
            skip_verify: !server.tls.verify,
            ca_cert_path: server.tls.ca_cert_path.clone().unwrap_or_default(),
        }),
        connect_timeout_ms: millis_ceil(server.connect_timeout),
        read_timeout_ms: millis_ceil(server.read_timeout),
        stall_timeout_ms: millis_ceil(server.stall_timeout),
        max_concurrency: server.max_concurrency.unwrap_or(0),
        rate_limit: server.rate_limit.as_ref().map(rate_limit),
        tools: server.tools.as_ref().map(tool_policy),
        basic_auth: server.basic_auth.as_ref().map(|basic| v1::BasicAuth {
            username: basic.username.to_string(),
            password: basic.password.to_string(),
        }),
    }
}

fn subprocess_server(id: &str, server: &SubprocessServer) -> v1::Server {
    v1::Server {
        id: id.to_owned(),
        probe_interval_ms: millis_ceil(server.health_check_interval),
        max_consecutive_failures: server.max_consecutive_failures,
        fleet_unhealthy: false,
        headers: Vec::new(),
        tls: None,
        connect_timeout_ms: 0,
        // A call fails when the process writes nothing for as long as a
        // remote server's default read timeout.
        read_timeout_ms: millis_ceil(RemoteServer::DEFAULT_READ_TIMEOUT),
        stall_timeout_ms: millis_ceil(server.stall_timeout),
        max_concurrency: server.max_concurrency.unwrap_or(0),
        rate_limit: server.rate_limit.as_ref().map(rate_limit),
        tools: server.tools.as_ref().map(tool_policy),
        transport: Some(v1::server::Transport::Subprocess(v1::Subprocess {
            command: server.command.clone(),
            env: headers(&server.env),
            cwd: server.cwd.clone().unwrap_or_default(),
            replicas: server.replicas,
        })),
        basic_auth: None,
    }
}

/// Name and value pairs with the references as written.
fn headers(map: &IndexMap<String, Template>) -> Vec<v1::Header> {
    map.iter()
        .map(|(name, value)| v1::Header {
            name: name.clone(),
            value: value.to_string(),
        })
        .collect()
}

fn retry_policy(policy: &RetryPolicy) -> v1::RetryPolicy {
    v1::RetryPolicy {
        max_attempts: policy.max_attempts,
        backoff: match policy.backoff {
            Backoff::Exponential => "exponential",
            Backoff::Linear => "linear",
            Backoff::Constant => "constant",
        }
        .to_owned(),
        initial_delay_ms: millis_ceil(policy.initial_delay),
        max_delay_ms: millis_ceil(policy.max_delay),
        retry_on: policy.retry_on.clone(),
        jitter_factor: policy.jitter_factor,
    }
}

fn group(id: &str, group: &Group) -> v1::Group {
    let members = group.members.iter().map(|m| v1::Member {
        server_id: m.id.clone(),
        weight: m.weight,
        priority: m.priority,
        eligible: true,
        tools: m.tools.as_ref().map(tool_policy),
    });
    v1::Group {
        id: id.to_owned(),
        strategy: v1::Strategy::from(group.strategy).into(),
        min_healthy: group.min_healthy,
        members: members.collect(),
        max_concurrency: group.max_concurrency.unwrap_or(0),
        circuit_failure_threshold: group.circuit_failure_threshold,
        session_recovery: group.session_recovery,
        retry: None,
        outlier_detection: group.outlier_detection.as_ref().map(outlier_detection),
        rate_limit: group.rate_limit.as_ref().map(rate_limit),
        tools: group.tools.as_ref().map(tool_policy),
    }
}

fn tool_policy(policy: &ToolPolicy) -> v1::ToolPolicy {
    v1::ToolPolicy {
        allow: policy.allow.clone(),
        allow_given: policy.allow_given,
        deny: policy.deny.clone(),
    }
}

fn rate_limit(limit: &RateLimit) -> v1::RateLimit {
    let size = |s: &RateSize| v1::RateSize {
        rps: s.rps,
        burst: s.burst,
    };
    v1::RateLimit {
        all: limit.all.as_ref().map(size),
        per_caller: limit.per_caller.as_ref().map(size),
        per_data_plane: limit.scope == RateScope::DataPlane,
        methods: limit.methods.clone(),
        tools: limit
            .tools
            .iter()
            .map(|(name, tool)| (name.clone(), rate_limit(tool)))
            .collect(),
    }
}

fn outlier_detection(o: &OutlierDetection) -> v1::OutlierDetection {
    v1::OutlierDetection {
        consecutive_failures: o.consecutive_failures,
        base_ejection_time_ms: millis_ceil(o.base_ejection_time),
        max_ejection_time_ms: millis_ceil(o.max_ejection_time),
        max_ejection_percent: o.max_ejection_percent,
        slow_start_ms: millis_ceil(o.slow_start),
    }
}

/// Rounds up, so a positive interval (validation rejects 0) never becomes
/// 0 ms; saturates instead of wrapping.
fn millis_ceil(d: Duration) -> u64 {
    let millis = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_up_to_whole_millis() {
        assert_eq!(millis_ceil(Duration::from_secs(10)), 10_000);
        assert_eq!(millis_ceil(Duration::from_micros(1)), 1);
        assert_eq!(millis_ceil(Duration::from_secs_f64(0.0015)), 2);
        assert_eq!(millis_ceil(Duration::MAX), u64::MAX);
    }
}
