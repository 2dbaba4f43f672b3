#!/usr/bin/env python3
"""Command-line MCP client for driving Hangar (or one member directly) in demos and tests.

Built on the official MCP Python SDK (`mcp` 2.x, `mcp.Client`).

Usage:
  client.py URL list                                   # one JSON line per tool
  client.py URL call TOOL [JSONARGS] [--n N] [--concurrency C] [--fresh] [--progress]
  client.py URL ping                                   # ping (legacy) or server/discover (2026-07-28)
  client.py URL info                                   # negotiated version, serverInfo, capabilities
  client.py --stdio "server.py --transport stdio --name s" call add '{"a":1,"b":2}'

Options:
  --mode auto|legacy|2026-07-28  auto (default) probes server/discover and falls back to the
                                 initialize handshake; legacy forces the handshake (and so an
                                 Mcp-Session-Id on stateful servers); 2026-07-28 sends stateless
                                 requests with per-request _meta, no handshake, no session.
  --fresh                        a new connection, and so a new session, for every call, so that a
                                 balancer can spread calls that one session would pin to one member.
  --header 'Name: value'         extra HTTP header on every request (repeatable).
  --timeout S                    per-request read timeout in seconds (default 30).

Output. stdout carries one JSON object per line: one per tool for `list`, one per call for
`call` with the keys i, tool, ok, is_error, structured, text, served_by, progress (with
--progress), ms, protocol_version. A call that failed at the transport or protocol level has
ok:false and error instead. For `call`, stderr ends with
  {"summary": {"calls", "ok", "tool_errors", "failures", "served_by": {NAME: count}, "elapsed_s"}}

Exit status: 0 when every request got a result (an isError result is a result), 1 when any
request failed at the transport or protocol level, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

COMMANDS = ("list", "call", "ping", "info")
MODES = ("auto", "legacy", *MODERN_PROTOCOL_VERSIONS)
MAX_TOOL_PAGES = 100  # a server that keeps handing out cursors must not loop us forever
# Tool errors carry no structured content; the example server names itself in the text.
SERVED_BY_IN_TEXT = re.compile(r"served_by=([\w.-]+)")


def wire_json(model: Any) -> Any:
    """A pydantic model as JSON-able data under its wire (camelCase) names."""
    if hasattr(model, "model_dump"):
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return model


def flatten(exc: BaseException) -> str:
    """The messages inside an exception, with task-group wrappers opened up.

    anyio wraps a transport failure in an ExceptionGroup whose own text ("unhandled
    errors in a TaskGroup") says nothing about the cause.
    """
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(flatten(inner) for inner in exc.exceptions)
    if not isinstance(exc, Exception):
        return f"{type(exc).__name__}: {exc}"
    return str(exc) or type(exc).__name__


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {flatten(exc)}"


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


class Session:
    """The few operations the commands need, over one connected `mcp.Client`."""

    def __init__(self, client: Client):
        self._client = client

    @property
    def protocol_version(self) -> str | None:
        return self._client.protocol_version

    @property
    def modern(self) -> bool:
        return self.protocol_version in MODERN_PROTOCOL_VERSIONS

    async def tools(self) -> list[Any]:
        found: list[Any] = []
        cursor = None
        for _ in range(MAX_TOOL_PAGES):
            page = await self._client.list_tools(cursor=cursor)
            found.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return found

    async def call(self, tool: str, arguments: dict[str, Any], on_progress: Any = None) -> Any:
        return await self._client.call_tool(tool, arguments, progress_callback=on_progress)

    async def ping(self) -> str:
        """Round-trip a liveness probe; returns the method used.

        2026-07-28 removed `ping`, so there the probe is `server/discover`. It goes
        through send_discover because discover() may answer from the result cached
        at connect time without touching the wire.
        """
        session = self._client.session
        if self.modern:
            await session.send_discover(self.protocol_version)
            return "server/discover"
        await session.send_ping()
        return "ping"

    def info(self) -> dict[str, Any]:
        return {
            "protocol_version": self.protocol_version,
            "server_info": wire_json(self._client.server_info),
            "capabilities": wire_json(self._client.server_capabilities),
            "instructions": self._client.instructions,
        }


@contextlib.asynccontextmanager
async def connect(args: argparse.Namespace) -> AsyncIterator[Session]:
    async with contextlib.AsyncExitStack() as stack:
        if args.stdio:
            argv = shlex.split(args.stdio)
            target: Any = StdioServerParameters(command=argv[0], args=argv[1:])
        elif args.headers:
            # Headers need our own HTTP client; the transport leaves closing it to us.
            http = await stack.enter_async_context(create_mcp_http_client(headers=args.headers))
            target = streamable_http_client(args.url, http_client=http)
        else:
            target = args.url
        client = await stack.enter_async_context(
            Client(target, mode=args.mode, read_timeout_seconds=args.timeout)
        )
        yield Session(client)


def call_record(i: int, tool: str, result: Any, ms: float, version: str | None,
                progress: list[list[Any]]) -> dict[str, Any]:
    """One stdout line for a call that got a result (isError or not)."""
    structured = result.structured_content
    texts = [block.text for block in result.content or [] if getattr(block, "type", None) == "text"]
    record: dict[str, Any] = {"i": i, "tool": tool, "ok": True, "is_error": bool(result.is_error)}
    if structured is not None:
        record["structured"] = structured
    record["text"] = "\n".join(texts)
    served_by = served_by_of(structured, texts)
    if served_by is not None:
        record["served_by"] = served_by
    if progress:
        record["progress"] = progress
    record["ms"] = ms
    record["protocol_version"] = version
    return record


def served_by_of(structured: Any, texts: list[str]) -> str | None:
    """Which member answered: structured content first, then the JSON text, then an error text."""
    if isinstance(structured, dict) and structured.get("served_by") is not None:
        return structured["served_by"]
    if not texts:
        return None
    with contextlib.suppress(ValueError, AttributeError):
        named = json.loads(texts[0]).get("served_by")
        if named is not None:
            return named
    match = SERVED_BY_IN_TEXT.search(texts[0])
    return match.group(1) if match else None


def failure_record(i: int, tool: str, error: str, ms: float) -> dict[str, Any]:
    return {"i": i, "tool": tool, "ok": False, "error": error, "ms": ms}


async def run_call(args: argparse.Namespace) -> int:
    n = max(1, args.n)
    concurrency = max(1, min(args.concurrency, n))
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    pending = iter(range(n))

    def record(line: dict[str, Any]) -> None:
        records.append(line)
        emit(line)

    async def call_once(session: Session, i: int) -> None:
        progress: list[list[Any]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append([value, total] if message is None else [value, total, message])

        t0 = time.perf_counter()
        try:
            result = await session.call(args.tool, args.arguments, on_progress if args.progress else None)
        except Exception as exc:  # every failure becomes a line, never a crash
            record(failure_record(i, args.tool, describe(exc), elapsed_ms(t0)))
            return
        record(call_record(i, args.tool, result, elapsed_ms(t0), session.protocol_version, progress))

    async def call_on_new_connection(i: int) -> None:
        t0 = time.perf_counter()
        recorded = len(records)
        try:
            async with connect(args) as session:
                await call_once(session, i)
        except Exception as exc:
            # Only a connection that never carried the call is reported here: a
            # teardown error after the call answered must not add a second line.
            if len(records) == recorded:
                record(failure_record(i, args.tool, f"connect: {describe(exc)}", elapsed_ms(t0)))

    async def worker(session: Session | None) -> None:
        for i in pending:  # the workers share one iterator, so each index is taken once
            if session is None:
                await call_on_new_connection(i)
            else:
                await call_once(session, i)

    try:
        if args.fresh:
            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(worker, None)
        else:
            async with connect(args) as session, anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(worker, session)
    except Exception as exc:
        print(json.dumps({"error": f"connect: {describe(exc)}"}), file=sys.stderr)
        return 1

    answered = [r for r in records if r["ok"]]
    served = Counter(r["served_by"] for r in answered if r.get("served_by") is not None)
    summary = {
        "calls": len(records),
        "ok": len(answered),
        "tool_errors": sum(1 for r in answered if r["is_error"]),
        "failures": len(records) - len(answered),
        "served_by": dict(sorted(served.items())),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    print(json.dumps({"summary": summary}), file=sys.stderr)
    return 0 if summary["failures"] == 0 else 1


async def run_session_command(args: argparse.Namespace) -> int:
    try:
        async with connect(args) as session:
            if args.command == "list":
                for tool in await session.tools():
                    d = wire_json(tool)
                    emit({"name": d.get("name"), "description": d.get("description"),
                          "inputSchema": d.get("inputSchema"), "protocol_version": session.protocol_version})
            elif args.command == "ping":
                t0 = time.perf_counter()
                method = await session.ping()
                emit({"ping": "ok", "method": method, "ms": elapsed_ms(t0),
                      "protocol_version": session.protocol_version})
            else:  # info
                emit(session.info())
    except Exception as exc:
        emit({"ok": False, "command": args.command, "error": describe(exc)})
        return 1
    return 0


async def run(args: argparse.Namespace) -> int:
    if args.command == "call":
        return await run_call(args)
    return await run_session_command(args)


def parse_headers(parser: argparse.ArgumentParser, raw: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, colon, value = item.partition(":")
        if not colon or not name.strip():
            parser.error(f"bad --header {item!r}, expected 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("words", nargs="+", metavar="[URL] COMMAND [TOOL [JSONARGS]]",
                   help=f"COMMAND is one of {', '.join(COMMANDS)}; URL is left out with --stdio")
    p.add_argument("--stdio", metavar="CMD", help="launch CMD (a shell-quoted string) and speak MCP over its stdio")
    p.add_argument("--mode", default="auto", choices=MODES, help="protocol negotiation (default: auto)")
    p.add_argument("--n", type=int, default=1, help="number of calls (call only; default 1)")
    p.add_argument("--concurrency", type=int, default=1, help="calls in flight at once (call only; default 1)")
    p.add_argument("--fresh", action="store_true", help="a new connection and session per call (call only)")
    p.add_argument("--progress", action="store_true", help="ask for progress notifications and record them")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request read timeout in seconds (default 30)")
    p.add_argument("--header", action="append", default=[], metavar="'Name: value'",
                   help="extra HTTP header on every request (repeatable)")
    # Intermixed, so options may come before, between or after the words.
    args = p.parse_intermixed_args(argv)

    words = list(args.words)
    args.url = None
    if not args.stdio:
        if len(words) < 2:
            p.error("need URL and COMMAND (or --stdio CMD and COMMAND)")
        args.url = words.pop(0)
    args.command = words.pop(0)
    if args.command not in COMMANDS:
        p.error(f"COMMAND must be one of {COMMANDS}, got {args.command!r}")
    args.tool = None
    args.arguments = {}
    if args.command == "call":
        if not words:
            p.error("call needs TOOL [JSONARGS]")
        args.tool = words.pop(0)
        raw = words.pop(0) if words else "{}"
        try:
            args.arguments = json.loads(raw)
        except json.JSONDecodeError as exc:
            p.error(f"JSONARGS is not valid JSON: {exc}")
        if not isinstance(args.arguments, dict):
            p.error("JSONARGS must be a JSON object")
    if words:
        p.error(f"unexpected arguments: {words}")
    if args.stdio and not shlex.split(args.stdio):
        p.error("--stdio needs a command")
    args.headers = parse_headers(p, args.header)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return anyio.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
