// Interop client on the official TypeScript MCP SDK (v1 line) that spawns
// its server as a child process and speaks stdio to it, the way desktop MCP
// hosts run local servers.
//
// usage: node stdio_client.mjs TOOL JSONARGS -- COMMAND ARGS...
//
// Prints two JSON lines on stdout, which the Rust tests parse:
//   1. {"tools": [names]} from tools/list;
//   2. the tools/call result exactly as the SDK returns it.
// The child's stderr is discarded: servers log there, and a test should see
// only what the client reports. Any failure is thrown, so node exits non-zero.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const argv = process.argv.slice(2);
const separator = argv.indexOf("--");
if (separator < 2 || separator === argv.length - 1) {
  console.error("usage: node stdio_client.mjs TOOL JSONARGS -- COMMAND ARGS...");
  process.exit(2);
}
const [toolName, rawArguments] = argv.slice(0, separator);
const [command, ...commandArgs] = argv.slice(separator + 1);
const toolArguments = JSON.parse(rawArguments);
const emit = (value) => console.log(JSON.stringify(value));

const client = new Client({ name: "hangar-interop-ts-stdio", version: "1.0.0" });
await client.connect(new StdioClientTransport({ command, args: commandArgs, stderr: "ignore" }));

const listed = await client.listTools();
emit({ tools: listed.tools.map((tool) => tool.name) });

emit(await client.callTool({ name: toolName, arguments: toolArguments }));

await client.close();
