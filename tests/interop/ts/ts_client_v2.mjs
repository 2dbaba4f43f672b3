// Interop client on the v2 line of the official TypeScript MCP SDK
// (@modelcontextprotocol/client 2.x), over Streamable HTTP, in a chosen
// protocol era.
//
// usage: node ts_client_v2.mjs URL TOOL JSONARGS ERA
//   ERA = legacy      initialize handshake (2025 revisions, sessions)
//       | auto        probe server/discover first, fall back to initialize
//       | 2026-07-28  (or any other revision) pinned modern era, stateless
//
// Prints three JSON lines on stdout, which the Rust tests parse:
//   1. {"era", "negotiated", "sessionId"} once connected; sessionId is null
//      when the connection has none (always so in the modern era);
//   2. {"tools": [names]} from tools/list;
//   3. the tools/call result exactly as the SDK returns it.
// Any failure is thrown, so node exits non-zero with the error on stderr.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const [endpoint, toolName = "add", rawArguments = '{"a":1,"b":2}', era = "auto"] =
  process.argv.slice(2);
if (!endpoint) {
  console.error("usage: node ts_client_v2.mjs URL TOOL JSONARGS legacy|auto|2026-07-28");
  process.exit(2);
}
const toolArguments = JSON.parse(rawArguments);
const emit = (value) => console.log(JSON.stringify(value));

// The SDK names two modes; anything else is a revision to pin to.
const negotiationMode = era === "legacy" || era === "auto" ? era : { pin: era };

const transport = new StreamableHTTPClientTransport(new URL(endpoint));
const client = new Client(
  { name: "hangar-interop-ts-v2", version: "1.0.0" },
  { versionNegotiation: { mode: negotiationMode } },
);

await client.connect(transport);
// Older 2.x builds lack getNegotiatedProtocolVersion; the transport's header
// value is the same answer there.
const negotiated = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion;
emit({ era, negotiated, sessionId: transport.sessionId ?? null });

const listed = await client.listTools();
emit({ tools: listed.tools.map((tool) => tool.name) });

emit(await client.callTool({ name: toolName, arguments: toolArguments }));

await client.close();
