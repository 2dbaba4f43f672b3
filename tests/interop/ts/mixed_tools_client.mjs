// One session on the v1 line of the official TypeScript MCP SDK
// (@modelcontextprotocol/sdk 1.x), over Streamable HTTP, calling several
// tools in turn: a group whose members list different tools must serve
// every tool it lists in the one session.
//
// usage: node mixed_tools_client.mjs URL CALLS_JSON
//   CALLS_JSON: [{"name": TOOL, "arguments": {...}}, ...]
//
// Prints {"tools": [names]} from tools/list, then one line per call:
// {"ok": true, "result"} or {"ok": false, "error"}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [endpoint, rawCalls] = process.argv.slice(2);
if (!endpoint || !rawCalls) {
  console.error("usage: node mixed_tools_client.mjs URL CALLS_JSON");
  process.exit(2);
}
const emit = (value) => console.log(JSON.stringify(value));

const transport = new StreamableHTTPClientTransport(new URL(endpoint));
const client = new Client({ name: "hangar-mixed-tools-ts", version: "1.0.0" });
await client.connect(transport);

const listed = await client.listTools();
emit({ tools: listed.tools.map((tool) => tool.name) });

for (const call of JSON.parse(rawCalls)) {
  try {
    emit({ ok: true, result: await client.callTool(call) });
  } catch (error) {
    emit({ ok: false, error: String(error?.message ?? error) });
  }
}
await transport.terminateSession().catch(() => {});
await client.close();
