"""One long-lived session on the official MCP Python SDK's client, over
Streamable HTTP, as an agent keeps one: the tests say when to call, so they
can break the session's member in between.

usage: python session_client.py URL

Prints {"protocol_version"} after the handshake, then for every line on
stdin calls `whoami` once and prints {"ok": true, "served_by"} or
{"ok": false, "error"}; the session is kept across failures, as the SDK
keeps it. Exits when stdin closes.
"""

from __future__ import annotations

import json
import sys

import anyio
from mcp import Client


def emit(value: object) -> None:
    print(json.dumps(value), flush=True)


async def main(url: str) -> None:
    async with Client(url, mode="legacy", read_timeout_seconds=30) as client:
        emit({"protocol_version": client.protocol_version})
        stdin = anyio.wrap_file(sys.stdin)
        async for _line in stdin:
            try:
                result = await client.call_tool("whoami", {})
                served_by = (result.structured_content or {}).get("served_by")
                emit({"ok": not result.is_error, "served_by": served_by})
            except Exception as error:  # noqa: BLE001 - any failure is the test's data
                emit({"ok": False, "error": str(error)})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python session_client.py URL", file=sys.stderr)
        sys.exit(2)
    anyio.run(main, sys.argv[1])
