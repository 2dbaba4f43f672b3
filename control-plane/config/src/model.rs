//! The validated config model: what [`crate::load`] returns.
//!
//! Every value here has passed validation, so consumers need no further
//! checks: endpoints are http(s) URLs with a path, member ids name remote
//! servers of the same config, numbers are in range.

use std::time::Duration;

pub use hangar_balance::StrategyKind;
use hangar_template::Template;
use indexmap::IndexMap;
use url::Url;

/// A whole config file (`mcp_servers:` in MCP Hangar's `config.yaml`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Servers and groups by id, in file order.
    pub servers: IndexMap<String, Server>,
    /// `retry:`: when a call that reached a member may be sent again.
    pub retry: RetrySettings,
    /// The top-level `rate_limit:`: every tool call, whatever it names.
    pub rate_limit: Option<RateLimit>,
    /// The top-level `auth:`: how data planes authenticate MCP clients.
    pub auth: Option<ClientAuth>,
    /// The top-level `access:`: which principals may call what. Empty: no
    /// rule, every authenticated caller may call every tool; otherwise a
    /// call no rule allows is refused.
    pub access: Vec<AccessRule>,
}

/// MCP Hangar's `auth:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// `enabled` (default false): MCP requests need a credential.
    pub enabled: bool,
    /// `allow_anonymous` (default false): requests without one are served
    /// too, as anonymous.
    pub allow_anonymous: bool,
    /// `api_key.header_name` (default `X-API-Key`); `None` with
    /// `api_key.enabled: false`.
    pub api_key_header: Option<String>,
    /// `jwt`: bearer tokens an identity provider signed.
    pub jwt: Option<JwtAuth>,
    /// `oauth`: what the protected resource metadata (RFC 9728) tells
    /// OAuth clients; only with `jwt`.
    pub oauth: Option<OAuthMetadata>,
}

/// `auth.jwt`: how a bearer token is checked and whom it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuth {
    /// `issuer`: the `iss` a token must carry.
    pub issuer: String,
    /// `audience` (one or a list): a token's `aud` must name one of these
    /// (an origin alone, such as `https://mcp.example.com`, names every
    /// URL under it).
    pub audiences: Vec<String>,
    /// Where the signing keys come from.
    pub jwks: JwksSource,
    /// `principal_claim` (default `sub`): the claim that names the caller.
    pub principal_claim: String,
    /// `roles_claim` (default `roles`): a claim holding a list of roles
    /// (or a space-separated string); dots reach into objects
    /// (`realm_access.roles`).
    pub roles_claim: String,
    /// `algorithms` (default RS256, ES256, EdDSA).
    pub algorithms: Vec<String>,
    /// `leeway_s` (default 30): clock skew allowed on `exp` and `nbf`.
    pub leeway_s: u32,
}

impl JwtAuth {
    /// The algorithms accepted when `algorithms` is not given.
    pub const DEFAULT_ALGORITHMS: [&'static str; 3] = ["RS256", "ES256", "EdDSA"];
    /// Every asymmetric algorithm a token may be signed with.
    pub const ALGORITHMS: [&'static str; 8] = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA",
    ];
    /// The clock skew allowed when `leeway_s` is not given.
    pub const DEFAULT_LEEWAY_S: u32 = 30;
}

/// The signing keys of `auth.jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwks_url`: fetched by every data plane, and again now and then.
    Url(Url),
    /// `jwks`: the key set itself, as JSON text.
    Inline(String),
}

/// `auth.oauth`: the protected resource metadata's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthMetadata {
    /// `authorization_servers` (default: the JWT issuer).
    pub authorization_servers: Vec<String>,
    /// `scopes_supported` (default none listed).
    pub scopes_supported: Vec<String>,
}

/// One `access:` rule: the callers it speaks of, and what they may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// `principals`: patterns of principal names (`service:*`);
    /// `anonymous` names callers without a credential.
    pub principals: Vec<String>,
    /// `roles`: a caller holding any of these matches.
    pub roles: Vec<String>,
    /// `allow`: `<server or group>/<tool>` patterns.
    pub allow: Vec<String>,
}

impl ClientAuth {
    /// MCP Hangar's API key header.
    pub const DEFAULT_HEADER: &'static str = "X-API-Key";
}

/// A `rate_limit:` block (top level, a group or a server): token buckets on
/// the calls it covers. Without one nothing is limited.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// `rps` and `burst`: the bucket all callers share; `None` when the
    /// block gives only `per_caller`.
    pub all: Option<RateSize>,
    /// `per_caller`: a bucket for each caller (its MCP session, else its
    /// address).
    pub per_caller: Option<RateSize>,
    /// `scope` (default fleet).
    pub scope: RateScope,
    /// `methods`: the requests counted; empty means `tools/call` alone.
    pub methods: Vec<String>,
    /// `tools`: limits of single tools, by name (groups and servers only).
    pub tools: IndexMap<String, RateLimit>,
}

/// A `tools:` access policy: which tools may be called through the server,
/// group or member it sits on. A tool passes when it matches a pattern of
/// `allow` (if any was given) and none of `deny`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPolicy {
    /// `allow_list` patterns.
    pub allow: Vec<String>,
    /// True when `allow_list` was given (an empty one allows nothing).
    pub allow_given: bool,
    /// `deny_list` patterns.
    pub deny: Vec<String>,
}

/// One bucket's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSize {
    /// `rps`: tokens added a second, more than 0.
    pub rps: f64,
    /// `burst`: calls at once, at least 1 (default: one second's worth).
    pub burst: u32,
}

/// Whose budget a `rate_limit` is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RateScope {
    /// The fleet's: the control plane divides it among the data planes by
    /// their demand.
    #[default]
    Fleet,
    /// `scope: data_plane`: each data plane's own, as in MCP Hangar (three
    /// data planes at 10 rps admit 30).
    DataPlane,
}

/// MCP Hangar's top-level `retry:` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetrySettings {
    /// `default_policy`, for every server and group without its own.
    pub default_policy: Option<RetryPolicy>,
    /// `per_mcp_server`: policies by server or group id.
    pub per_server: IndexMap<String, RetryPolicy>,
}

impl RetrySettings {
    /// The policy of the server or group `id`, if any.
    pub fn policy_for(&self, id: &str) -> Option<&RetryPolicy> {
        self.per_server.get(id).or(self.default_policy.as_ref())
    }
}

/// One retry policy. Hangar resends a call that reached a member only on
/// another member of a group, and only for tools that member marks
/// `readOnlyHint` or `idempotentHint`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// `max_attempts` (default 3): tries of one call, the first included.
    pub max_attempts: u32,
    /// `backoff` (default exponential).
    pub backoff: Backoff,
    /// `initial_delay` (default 1 s): the wait before the first retry.
    pub initial_delay: Duration,
    /// `max_delay` (default 30 s): the longest wait.
    pub max_delay: Duration,
    /// `retry_on`: the failures that may be retried; empty for Hangar's
    /// default (timeouts, connection and transport errors, HTTP 5xx).
    pub retry_on: Vec<String>,
    /// `jitter` (default true) and `jitter_factor` (default 0.1): each wait
    /// varies by up to this share.
    pub jitter_factor: f64,
}

/// How the wait between retries grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// `initial_delay` doubles each time.
    Exponential,
    /// `initial_delay` times the retry's number.
    Linear,
    /// Always `initial_delay`.
    Constant,
}

/// One entry under `mcp_servers`, chosen by its `mode`.
#[derive(Debug, Clone, PartialEq)]
pub enum Server {
    /// `mode: remote`: an MCP server reached over Streamable HTTP.
    Remote(RemoteServer),
    /// `mode: subprocess`: a stdio MCP server each data plane runs itself.
    Subprocess(SubprocessServer),
    /// `mode: group`: servers balanced behind one id.
    Group(Group),
}

/// A `mode: remote` server.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteServer {
    /// Full URL of the MCP endpoint. A bare authority in the file
    /// (`http://host:8080`) is normalised to the `/mcp` path.
    pub endpoint: Url,
    /// Active probe period (`health_check_interval_s`, default 60 s).
    pub health_check_interval: Duration,
    /// Consecutive failures before the server leaves rotation
    /// (`max_consecutive_failures`, default 3, at least 1).
    pub max_consecutive_failures: u32,
    /// Free text for humans.
    pub description: Option<String>,
    /// Headers sent on every request, from `headers`, `http.headers` and
    /// `auth` (bearer and API key), names in file order. Values keep their
    /// `${...}` references: the data plane resolves them.
    pub headers: IndexMap<String, Template>,
    /// `auth: {type: basic}`: sent as `Authorization: Basic`, encoded on the
    /// data plane once the references are resolved.
    pub basic_auth: Option<BasicAuth>,
    /// `tls`: certificate checks for https endpoints.
    pub tls: TlsSettings,
    /// `http.connect_timeout` (default 10 s).
    pub connect_timeout: Duration,
    /// `http.read_timeout` (default 30 s): the longest wait for the next
    /// bytes of an answer, so a tool that streams progress may run longer.
    pub read_timeout: Duration,
    /// `max_concurrency`: calls in flight to this server per data plane.
    pub max_concurrency: Option<u32>,
    /// `stall_timeout_s` (default 2 s; 0 turns it off): with calls
    /// outstanding, this long without a byte from the server makes the data
    /// plane probe it, and a failed probe takes it out of rotation at once.
    pub stall_timeout: Duration,
    /// `rate_limit`: calls to this server, whatever group they come through.
    pub rate_limit: Option<RateLimit>,
    /// `tools`: which of its tools may be called.
    pub tools: Option<ToolPolicy>,
}

/// `auth: {type: basic, username, password}`.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicAuth {
    /// User name; may hold references.
    pub username: Template,
    /// Password; may hold references.
    pub password: Template,
}

/// The `tls` block of a remote server.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// `verify_ssl` (default true); false accepts any certificate.
    pub verify: bool,
    /// `ca_cert_path`: a PEM bundle on the data plane's machine, trusted
    /// instead of the system roots.
    pub ca_cert_path: Option<String>,
}

/// A `mode: subprocess` server: MCP over the stdin and stdout of a program
/// that every data plane starts for itself.
#[derive(Debug, Clone, PartialEq)]
pub struct SubprocessServer {
    /// Program and arguments: `command` (a string or a list) followed by
    /// `args`. Never empty.
    pub command: Vec<String>,
    /// Extra environment, in file order; values may hold references.
    pub env: IndexMap<String, Template>,
    /// Working directory (`cwd`); the data plane's own when absent.
    pub cwd: Option<String>,
    /// Copies each data plane runs and balances across (`replicas`,
    /// default 1).
    pub replicas: u32,
    /// Active probe period (`health_check_interval_s`, default 60 s).
    pub health_check_interval: Duration,
    /// Consecutive failures before a copy leaves rotation.
    pub max_consecutive_failures: u32,
    /// Free text for humans.
    pub description: Option<String>,
    /// `max_concurrency`: calls in flight to one copy.
    pub max_concurrency: Option<u32>,
    /// `stall_timeout_s`, as for a remote server.
    pub stall_timeout: Duration,
    /// `rate_limit`: calls to this server (all its copies), whatever group
    /// they come through.
    pub rate_limit: Option<RateLimit>,
    /// `tools`: which of its tools may be called.
    pub tools: Option<ToolPolicy>,
}

/// A `mode: group` server.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// How members are picked (default [`StrategyKind::RoundRobin`]).
    pub strategy: StrategyKind,
    /// Healthy members needed for the group to count as healthy (default 1,
    /// at most the number of members).
    pub min_healthy: u32,
    /// Members in file order; never empty, ids unique.
    pub members: Vec<Member>,
    /// Free text for humans.
    pub description: Option<String>,
    /// `max_concurrency`: calls in flight through the group per data plane.
    pub max_concurrency: Option<u32>,
    /// `circuit_breaker.failure_threshold`: failed calls in a row through
    /// the group that open its circuit (default 10, at least 1).
    pub circuit_failure_threshold: u32,
    /// `session_recovery` (default true): a client session of the group's
    /// transparent endpoint whose member is gone is re-opened on another
    /// member; false answers 404, for servers whose per-session state must
    /// not be silently lost.
    pub session_recovery: bool,
    /// `outlier_detection`: members whose calls keep failing leave the
    /// group for a time that grows with each ejection; `None` when the
    /// config turns it off (`enabled: false`).
    pub outlier_detection: Option<OutlierDetection>,
    /// `rate_limit`: calls through the group.
    pub rate_limit: Option<RateLimit>,
    /// `tools`: which tools may be called through the group.
    pub tools: Option<ToolPolicy>,
}

/// A group's `outlier_detection:` block (passive health, as Envoy's):
/// delivered calls that fail in a row eject a member from the group for a
/// while, whatever its probes say.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    /// `consecutive_failures`: delivered calls in a row that failed
    /// (transport, 5xx, timeout; never a tool error) and eject the member.
    pub consecutive_failures: u32,
    /// `base_ejection_time_s`: the first ejection's length; the n-th lasts
    /// n times as long.
    pub base_ejection_time: Duration,
    /// `max_ejection_time_s`: the longest ejection.
    pub max_ejection_time: Duration,
    /// `max_ejection_percent`: most of the group's members ejected at once
    /// (one is always allowed).
    pub max_ejection_percent: u32,
    /// `slow_start_s`: a member back in rotation gets a share that grows
    /// from a tenth to full over this time; zero for none.
    pub slow_start: Duration,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 50,
            slow_start: Duration::from_secs(10),
        }
    }
}

/// One entry of a group's `members` list.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Id of a [`Server::Remote`] or [`Server::Subprocess`] in the same config.
    pub id: String,
    /// Share for weighted strategies (default 1, at least 1).
    pub weight: u32,
    /// Rank for [`StrategyKind::Priority`] (default 1, any `i32`); the balancer
    /// defines which end of the range it prefers.
    pub priority: i32,
    /// `tools`: which tools of this member the group may call.
    pub tools: Option<ToolPolicy>,
}

// === impl Config ===

impl Config {
    /// The `mode: group` entries, in file order.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &Group)> {
        self.servers.iter().filter_map(|(id, server)| match server {
            Server::Group(group) => Some((id.as_str(), group)),
            Server::Remote(_) | Server::Subprocess(_) => None,
        })
    }

    /// The `mode: subprocess` entries, in file order.
    pub fn subprocesses(&self) -> impl Iterator<Item = (&str, &SubprocessServer)> {
        self.servers.iter().filter_map(|(id, server)| match server {
            Server::Subprocess(sub) => Some((id.as_str(), sub)),
            Server::Remote(_) | Server::Group(_) => None,
        })
    }

    /// Every rate limit with its id (`hangar_rate::ids`): the top-level one,
    /// then those of each group and server and their tools, in file order.
    pub fn rate_limits(&self) -> Vec<(String, &RateLimit)> {
        use hangar_rate::ids::{self, On};
        let mut out: Vec<(String, &RateLimit)> = Vec::new();
        if let Some(top) = &self.rate_limit {
            out.push((ids::TOP.to_owned(), top));
        }
        for (id, server) in &self.servers {
            let (on, limit) = match server {
                Server::Group(g) => (On::Group, &g.rate_limit),
                Server::Remote(r) => (On::Server, &r.rate_limit),
                Server::Subprocess(s) => (On::Server, &s.rate_limit),
            };
            let Some(limit) = limit else { continue };
            if limit.all.is_some() || limit.per_caller.is_some() {
                out.push((ids::of(on, id, None), limit));
            }
            for (tool, limit) in &limit.tools {
                out.push((ids::of(on, id, Some(tool)), limit));
            }
        }
        out
    }

    /// The `mode: remote` entries, in file order.
    pub fn remotes(&self) -> impl Iterator<Item = (&str, &RemoteServer)> {
        self.servers.iter().filter_map(|(id, server)| match server {
            Server::Remote(remote) => Some((id.as_str(), remote)),
            Server::Subprocess(_) | Server::Group(_) => None,
        })
    }
}

// === impl RemoteServer ===

impl RemoteServer {
    /// `health_check_interval_s` when the file leaves it out.
    pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(60);
    /// `max_consecutive_failures` when the file leaves it out.
    pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 3;
    /// `http.connect_timeout` when the file leaves it out (MCP Hangar's).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// `http.read_timeout` when the file leaves it out (MCP Hangar's).
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
    /// `stall_timeout_s` when the file leaves it out (remote and
    /// subprocess servers alike).
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(2);
}

// === impl SubprocessServer ===

impl SubprocessServer {
    /// The most `replicas` one server may ask of a data plane.
    pub const MAX_REPLICAS: u32 = 64;
}

// === impl Group ===

impl Group {
    /// `min_healthy` when the file leaves it out.
    pub const DEFAULT_MIN_HEALTHY: u32 = 1;
    /// `circuit_breaker.failure_threshold` when the file leaves it out, as
    /// in MCP Hangar.
    pub const DEFAULT_FAILURE_THRESHOLD: u32 = 10;
}

// === impl Member ===

impl Member {
    /// `weight` when the file leaves it out.
    pub const DEFAULT_WEIGHT: u32 = 1;
    /// `priority` when the file leaves it out.
    pub const DEFAULT_PRIORITY: i32 = 1;
}
