// The v1 line of the official TypeScript MCP SDK carrying a credential
// header (`requestInit.headers`), as a keyed service or an agent with a
// bearer token connects to a shared gateway.
//
// usage: node auth_client.mjs URL HEADER VALUE ALLOWED_TOOL DENIED_TOOL
//
// Lists the tools, calls ALLOWED_TOOL and DENIED_TOOL (with a `text` for
// echo), and prints one JSON line: {"tools", "allowed", "denied"}, each
// call as {"ok", "text"} or {"ok": false, "error"}. A refused connection
// prints {"connect_error"}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [endpoint, header, value, allowed, denied] = process.argv.slice(2);
if (!denied) {
  console.error("usage: node auth_client.mjs URL HEADER VALUE ALLOWED_TOOL DENIED_TOOL");
  process.exit(2);
}

async function call(client, name) {
  try {
    const result = await client.callTool({ name, arguments: { text: "hi" } });
    const text = (result.content ?? []).map((block) => block.text ?? "").join(" ");
    return { ok: !result.isError, text };
  } catch (error) {
    return { ok: false, error: String(error?.message ?? error) };
  }
}

const transport = new StreamableHTTPClientTransport(new URL(endpoint), {
  requestInit: { headers: { [header]: value } },
});
const client = new Client({ name: "hangar-auth-ts", version: "1.0.0" });
let report;
try {
  await client.connect(transport);
  const { tools } = await client.listTools();
  report = {
    tools: tools.map((tool) => tool.name).sort(),
    allowed: await call(client, allowed),
    denied: await call(client, denied),
  };
  await client.close();
} catch (error) {
  report = { connect_error: String(error?.message ?? error) };
}
console.log(JSON.stringify(report));
