// One long-lived session on the v1 line of the official TypeScript MCP SDK
// (@modelcontextprotocol/sdk 1.x), over Streamable HTTP, as an IDE keeps
// one: the tests say when to call, so they can break the session's member
// in between.
//
// usage: node session_client.mjs URL
//
// Prints {"sessionId"} after the handshake, then for every line on stdin
// calls `whoami` once and prints {"ok": true, "served_by", "sessionId"} or
// {"ok": false, "error"}; the session is kept across failures, as the SDK
// keeps it. Exits when stdin closes.
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [endpoint] = process.argv.slice(2);
if (!endpoint) {
  console.error("usage: node session_client.mjs URL");
  process.exit(2);
}
const emit = (value) => console.log(JSON.stringify(value));

const transport = new StreamableHTTPClientTransport(new URL(endpoint));
const client = new Client({ name: "hangar-session-ts", version: "1.0.0" });
await client.connect(transport);
emit({ sessionId: transport.sessionId });

for await (const _line of createInterface({ input: process.stdin })) {
  try {
    const result = await client.callTool({ name: "whoami", arguments: {} });
    emit({ ok: true, served_by: result.structuredContent?.served_by, sessionId: transport.sessionId });
  } catch (error) {
    emit({ ok: false, error: String(error?.message ?? error) });
  }
}
await client.close();
