"""The official MCP Python SDK's client carrying a credential header, as a
keyed service or an agent with a bearer token connects to a shared gateway.

usage: python auth_client.py URL HEADER VALUE ALLOWED_TOOL DENIED_TOOL

Connects with `HEADER: VALUE` on every request, lists the tools, calls
ALLOWED_TOOL and DENIED_TOOL (each with no arguments but a `text` for echo),
and prints one JSON line: {"tools": [...], "allowed": {...}, "denied":
{...}}, each call as {"ok", "text"} or {"ok": false, "error"}. A refused
connection prints {"connect_error"}.
"""

from __future__ import annotations

import json
import sys

import anyio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def call(client: Client, tool: str) -> dict[str, object]:
    try:
        result = await client.call_tool(tool, {"text": "hi"})
        text = " ".join(getattr(block, "text", "") for block in result.content)
        return {"ok": not result.is_error, "text": text}
    except Exception as error:  # noqa: BLE001 - any failure is the test's data
        return {"ok": False, "error": str(error)}


async def main(url: str, header: str, value: str, allowed: str, denied: str) -> None:
    http = create_mcp_http_client(headers={header: value})
    try:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            tools = await client.list_tools()
            report = {
                "tools": sorted(tool.name for tool in tools.tools),
                "allowed": await call(client, allowed),
                "denied": await call(client, denied),
            }
    except Exception as error:  # noqa: BLE001 - a refused connection is the test's data
        report = {"connect_error": str(error)}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print("usage: python auth_client.py URL HEADER VALUE ALLOWED_TOOL DENIED_TOOL", file=sys.stderr)
        sys.exit(2)
    anyio.run(main, *sys.argv[1:])
