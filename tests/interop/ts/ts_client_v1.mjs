// Interop client on the v1 line of the official TypeScript MCP SDK
// (@modelcontextprotocol/sdk 1.x), over Streamable HTTP.
//
// usage: node ts_client_v1.mjs URL TOOL JSONARGS
//
// Prints three JSON lines on stdout, which the Rust tests parse:
//   1. {"sessionId", "protocolVersion"} after the initialize handshake
//      (a key is left out when the transport has no value for it);
//   2. {"tools": [names]} from tools/list;
//   3. the tools/call result exactly as the SDK returns it.
// Any failure is thrown, so node exits non-zero with the error on stderr.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [endpoint, toolName = "add", rawArguments = '{"a":1,"b":2}'] = process.argv.slice(2);
if (!endpoint) {
  console.error("usage: node ts_client_v1.mjs URL TOOL JSONARGS");
  process.exit(2);
}
const toolArguments = JSON.parse(rawArguments);
const emit = (value) => console.log(JSON.stringify(value));

const transport = new StreamableHTTPClientTransport(new URL(endpoint));
const client = new Client({ name: "hangar-interop-ts-v1", version: "1.0.0" });

await client.connect(transport);
// What the handshake left on the transport shows whether the proxy minted a
// session and which protocol revision it agreed to.
emit({ sessionId: transport.sessionId, protocolVersion: transport.protocolVersion });

const listed = await client.listTools();
emit({ tools: listed.tools.map((tool) => tool.name) });

emit(await client.callTool({ name: toolName, arguments: toolArguments }));

// Ending the session explicitly (HTTP DELETE) exercises the proxy's session
// teardown path; a server that does not support it is no test failure.
await transport.terminateSession().catch(() => {});
await client.close();
