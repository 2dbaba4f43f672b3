// Interop client on the official TypeScript MCP SDK (v1 line) that spawns
// its server as a child process over stdio, calls one tool, and waits for
// the first log message the server sends outside any request.
//
// usage: node stdio_notifications.mjs TOOL -- COMMAND ARGS...
//
// Prints one JSON line on stdout: {"notification": params} of the first
// notifications/message, or {"notification": null} when none came within
// 20 s. Any failure is thrown, so node exits non-zero.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const argv = process.argv.slice(2);
const separator = argv.indexOf("--");
if (separator !== 1 || separator === argv.length - 1) {
  console.error("usage: node stdio_notifications.mjs TOOL -- COMMAND ARGS...");
  process.exit(2);
}
const toolName = argv[0];
const [command, ...commandArgs] = argv.slice(separator + 1);

const client = new Client({ name: "hangar-interop-ts-notifications", version: "1.0.0" });
const first = new Promise((resolve) => {
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => resolve(n.params));
});
await client.connect(new StdioClientTransport({ command, args: commandArgs, stderr: "ignore" }));
await client.callTool({ name: toolName, arguments: {} });
let timer;
const timeout = new Promise((resolve) => {
  timer = setTimeout(() => resolve(null), 20000);
});
console.log(JSON.stringify({ notification: await Promise.race([first, timeout]) }));
clearTimeout(timer);
await client.close();
