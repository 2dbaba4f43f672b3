// An MCP client on the official TypeScript SDK (v1) that spawns its server
// and speaks stdio to it. usage: node stdio_client.mjs TOOL JSONARGS -- COMMAND ARGS...
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const argv = process.argv.slice(2);
const split = argv.indexOf("--");
const [tool, args] = argv.slice(0, split);
const [command, ...commandArgs] = argv.slice(split + 1);
const client = new Client({ name: "ts-stdio-client", version: "1.0.0" });
await client.connect(new StdioClientTransport({ command, args: commandArgs, stderr: "ignore" }));
const { tools } = await client.listTools();
console.log(JSON.stringify({ tools: tools.map((t) => t.name) }));
const res = await client.callTool({ name: tool, arguments: JSON.parse(args) });
console.log(JSON.stringify(res));
await client.close();
