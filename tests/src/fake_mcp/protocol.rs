//! JSON-RPC framing and MCP constants shared by the legacy and modern handlers.
//!
//! Incoming messages are parsed into small borrowed structs (only the fields the
//! fake server reads), and replies are written straight into one byte buffer
//! that may already hold the SSE `event: message` prefix, so a request costs a
//! parse, the tool's own output and one body allocation.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Protocol versions answered with the `initialize` handshake (the legacy era).
pub(super) const LEGACY_VERSIONS: [&str; 4] =
    ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// What `initialize` answers when the client asks for a version it does not know.
pub(super) const LATEST_LEGACY: &str = "2025-11-25";
/// The stateless protocol revision, sent per request in `_meta`.
pub(super) const MODERN_VERSION: &str = "2026-07-28";

/// Header that carries the legacy session id.
pub(super) const MCP_SESSION_ID: &str = "mcp-session-id";
/// Header that carries the protocol version (required on modern requests).
pub(super) const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// Modern mirror of the JSON-RPC method.
pub(super) const MCP_METHOD: &str = "mcp-method";
/// Modern mirror of `params.name` for `tools/call`.
pub(super) const MCP_NAME: &str = "mcp-name";

/// JSON-RPC and MCP error codes used by the fake server.
pub(super) mod code {
    /// Invalid JSON.
    pub(crate) const PARSE_ERROR: i64 = -32700;
    /// Session errors, as the Python SDK reports them.
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    /// Unknown method.
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    /// Message or params of the wrong shape.
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    /// A modern mirror header disagrees with the body.
    pub(crate) const HEADER_MISMATCH: i64 = -32020;
    /// A modern request names a version the server does not speak.
    pub(crate) const UNSUPPORTED_VERSION: i64 = -32022;
}

// === impl Message ===

/// One incoming JSON-RPC message; unknown members are skipped without allocating.
#[derive(Debug, Deserialize)]
pub(super) struct Message<'a> {
    #[serde(borrow, default)]
    pub(super) jsonrpc: Option<Cow<'a, str>>,
    /// Absent (or null) for notifications.
    #[serde(default)]
    pub(super) id: Option<Value>,
    /// Absent when the client posts a response.
    #[serde(borrow, default)]
    pub(super) method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) params: Option<Params<'a>>,
}

/// The `params` members read by any method the fake server answers.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Params<'a> {
    /// Tool name for `tools/call`.
    #[serde(borrow, default)]
    pub(super) name: Option<Cow<'a, str>>,
    /// Requested version for `initialize`.
    #[serde(rename = "protocolVersion", borrow, default)]
    pub(super) protocol_version: Option<Cow<'a, str>>,
    /// Tool arguments for `tools/call`.
    #[serde(default)]
    pub(super) arguments: Option<Arguments>,
    #[serde(rename = "_meta", borrow, default)]
    pub(super) meta: Option<Meta<'a>>,
}

/// Every argument any example tool takes. `Value` keeps a wrongly typed argument a
/// tool error (as in the Python SDK) instead of a parse failure; numbers do not allocate.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Arguments {
    #[serde(default)]
    pub(super) a: Option<Value>,
    #[serde(default)]
    pub(super) b: Option<Value>,
    #[serde(default)]
    pub(super) text: Option<Value>,
    #[serde(default)]
    pub(super) ms: Option<Value>,
    #[serde(default)]
    pub(super) message: Option<Value>,
}

/// The `params._meta` members the fake server reads.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Meta<'a> {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow, default)]
    pub(super) protocol_version: Option<Cow<'a, str>>,
}

impl<'a> Message<'a> {
    /// Parses a POST body, mapping failures to the Python SDK's answers:
    /// invalid JSON is `-32700`, a batch or a wrongly shaped message `-32602`.
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, (i64, String)> {
        if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err((
                code::INVALID_PARAMS,
                "Validation error: batching is not supported".to_owned(),
            ));
        }
        let msg: Self = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                (code::INVALID_PARAMS, format!("Validation error: {e}"))
            } else {
                (code::PARSE_ERROR, format!("Parse error: {e}"))
            }
        })?;
        if msg.jsonrpc.as_deref() != Some("2.0") {
            return Err((
                code::INVALID_PARAMS,
                "Validation error: jsonrpc must be \"2.0\"".to_owned(),
            ));
        }
        if msg.method.is_none() && msg.id.is_none() {
            return Err((
                code::INVALID_PARAMS,
                "Validation error: not a JSON-RPC message".to_owned(),
            ));
        }
        Ok(msg)
    }

    /// The tool name of a `tools/call`, if any.
    pub(super) fn tool_name(&self) -> Option<&str> {
        self.params.as_ref()?.name.as_deref()
    }

    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, if any.
    pub(super) fn meta_version(&self) -> Option<&str> {
        self.params
            .as_ref()?
            .meta
            .as_ref()?
            .protocol_version
            .as_deref()
    }

    /// Takes the tool arguments out of the message.
    pub(super) fn take_arguments(&mut self) -> Arguments {
        self.params
            .as_mut()
            .and_then(|p| p.arguments.take())
            .unwrap_or_default()
    }
}

// === impl Body ===

/// A reply body under construction: a JSON-RPC envelope, optionally framed as
/// one SSE `message` event.
#[derive(Debug)]
pub(super) struct Body {
    buf: Vec<u8>,
    sse: bool,
}

const SSE_PREFIX: &[u8] = b"event: message\ndata: ";
const SSE_SUFFIX: &[u8] = b"\n\n";

impl Body {
    /// Starts a body; `sse` frames it as one `event: message`.
    pub(super) fn new(sse: bool, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 64);
        if sse {
            buf.extend_from_slice(SSE_PREFIX);
        }
        Self { buf, sse }
    }

    /// Whether the body is framed as SSE.
    pub(super) fn is_sse(&self) -> bool {
        self.sse
    }

    /// `{"jsonrpc":"2.0","id":ID,"result":RESULT}` where `result` is a rendered
    /// JSON object; `extra` (members starting with `,`) is spliced into it.
    pub(super) fn result(mut self, id: &Value, result: &[u8], extra: &[u8]) -> Vec<u8> {
        self.envelope(id, b"result");
        match result.split_last() {
            Some((b'}', members)) if !extra.is_empty() => {
                self.buf.extend_from_slice(members);
                self.buf.extend_from_slice(extra);
                self.buf.push(b'}');
            }
            _ => self.buf.extend_from_slice(result),
        }
        self.finish()
    }

    /// `{"jsonrpc":"2.0","id":ID,"error":{"code":..,"message":..,"data":..}}`.
    pub(super) fn error(
        mut self,
        id: Option<&Value>,
        code: i64,
        message: &str,
        data: Option<&Value>,
    ) -> Vec<u8> {
        self.envelope(id.unwrap_or(&Value::Null), b"error");
        write_json(
            &mut self.buf,
            &ErrorObject {
                code,
                message,
                data,
            },
        );
        self.finish()
    }

    fn envelope(&mut self, id: &Value, member: &[u8]) {
        self.buf.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        write_json(&mut self.buf, id);
        self.buf.extend_from_slice(b",\"");
        self.buf.extend_from_slice(member);
        self.buf.extend_from_slice(b"\":");
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        if self.sse {
            self.buf.extend_from_slice(SSE_SUFFIX);
        }
        self.buf
    }
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    code: i64,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
}

/// Serializes `value` onto `buf`.
pub(super) fn write_json(buf: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    // Invariant: the values written here are plain structs, strings and
    // `serde_json::Value`s with string keys, which cannot fail to serialize,
    // and writing to a Vec cannot fail either.
    serde_json::to_writer(buf, value)
        .expect("serializing a string-keyed value to a Vec cannot fail");
}

/// Renders `value` as a JSON byte string.
pub(super) fn to_json(value: &(impl Serialize + ?Sized)) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    write_json(&mut buf, value);
    buf
}

// === results ===

/// `serverInfo` as reported by `initialize` and modern `_meta`.
#[derive(Debug, Serialize)]
pub(super) struct ServerInfo {
    pub(super) name: String,
    pub(super) version: &'static str,
}

#[derive(Serialize)]
struct Capabilities {
    tools: Empty,
}

#[derive(Serialize)]
struct Empty {}

const CAPABILITIES: Capabilities = Capabilities { tools: Empty {} };

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InitializeResult<'a> {
    protocol_version: &'a str,
    capabilities: Capabilities,
    server_info: &'a ServerInfo,
}

/// The `initialize` result: the requested version if known, else the latest legacy one.
pub(super) fn initialize_result(requested: Option<&str>, info: &ServerInfo) -> Vec<u8> {
    let protocol_version = requested
        .and_then(|v| LEGACY_VERSIONS.iter().find(|known| **known == v))
        .copied()
        .unwrap_or(LATEST_LEGACY);
    to_json(&InitializeResult {
        protocol_version,
        capabilities: CAPABILITIES,
        server_info: info,
    })
}

#[derive(Serialize)]
struct ModernMeta<'a> {
    #[serde(rename = "io.modelcontextprotocol/serverInfo")]
    server_info: &'a ServerInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiscoverResult<'a> {
    supported_versions: [&'static str; 1],
    capabilities: Capabilities,
    result_type: &'static str,
    ttl_ms: u64,
    cache_scope: &'static str,
    #[serde(rename = "_meta")]
    meta: ModernMeta<'a>,
}

/// The `server/discover` result, rendered once per server.
pub(super) fn discover_result(info: &ServerInfo) -> Vec<u8> {
    to_json(&DiscoverResult {
        supported_versions: [MODERN_VERSION],
        capabilities: CAPABILITIES,
        result_type: "complete",
        ttl_ms: 0,
        cache_scope: "private",
        meta: ModernMeta { server_info: info },
    })
}

/// Members every modern result carries (`resultType` and `_meta.serverInfo`),
/// as a `,`-led fragment for [`Body::result`].
pub(super) fn modern_members(info: &ServerInfo) -> Vec<u8> {
    let mut buf = br#","resultType":"complete","_meta":"#.to_vec();
    write_json(&mut buf, &ModernMeta { server_info: info });
    buf
}
