#!/usr/bin/env python3
"""Example MCP server: the demo's and the interop tests' member.

A small server on the official MCP Python SDK (`mcp` 2.x, `MCPServer`). It is
dual-era: the SDK answers `initialize` and `ping` for protocol versions up to
2025-11-25, and `server/discover` with stateless per-request `_meta` for
2026-07-28 (where `ping` no longer exists and gets -32601).

Usage:
  server.py --port 8080 --name a                  # stateful Streamable HTTP at /mcp
  server.py --port 8081 --name b --stateless      # no Mcp-Session-Id, a fresh transport per request
  server.py --port 8082 --name c --json-response  # application/json answers instead of SSE
  server.py --transport stdio --name s            # newline-delimited JSON-RPC on stdin/stdout

Other flags: --host (default 127.0.0.1), --path (default /mcp), --latency-ms N
(delay added to every tool call), --log-level.

Tools. Each result names the member that served it, in structuredContent and as
JSON in the text block, so a caller behind a balancer can see where it landed:
  add(a, b)        {"sum": a+b, "served_by": NAME}
  echo(text)       {"text": text, "served_by": NAME}
  sleep(ms)        sleeps; sends notifications/progress every 100 ms when the request
                   carries a progressToken; then
                   {"slept_ms": ms, "served_by": NAME, "in_flight_at_start": N}
  fail(message?)   isError result, text "Error executing tool fail: MESSAGE (served_by=NAME)"
  whoami()         {"served_by": NAME, "pid": PID, "port": PORT, "calls": N, "in_flight": N}

serverInfo.name is "example-NAME". Over HTTP, GET /healthz answers 200 "ok NAME"
(plain HTTP, for readiness checks).
At start one line goes to stderr:
  example_server name=a url=http://127.0.0.1:8080/mcp mode=stateful json_response=False sdk=mcp2 pid=1234
SIGTERM or SIGINT stops the server with exit status 0.
"""

from __future__ import annotations

import os
import signal
import sys


def _stop_before_serving(_sig: int, _frame: object) -> None:
    sys.exit(0)


# Importing the SDK takes about a second. A harness that stops a member in that
# window (common with stdio members) should see a clean exit, not death by
# signal. Installed unconditionally: a member started with `&` from a script
# inherits an ignored SIGINT, and `kill -INT` should still stop it. The serving
# code replaces these handlers with its own.
if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop_before_serving)
    signal.signal(signal.SIGINT, _stop_before_serving)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import uvicorn  # noqa: E402
from mcp.server.mcpserver import Context, MCPServer  # noqa: E402
from mcp.server.mcpserver.exceptions import ToolError  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402

PROGRESS_INTERVAL_MS = 100
# Long enough for in-flight calls to answer, short enough that a held-open SSE
# stream cannot keep a stopped member alive.
GRACEFUL_SHUTDOWN_S = 3


@dataclass
class Counters:
    """Per-process load figures that whoami reports and sleep samples."""

    calls: int = 0
    in_flight: int = 0


def build_server(name: str, port: int, latency_ms: int, log_level: str) -> MCPServer:
    # serverInfo.name: the interop tests read it to tell which member answered initialize.
    server = MCPServer(name=f"example-{name}", version="1.0.0", log_level=log_level)
    counters = Counters()
    latency_s = max(0, latency_ms) / 1000.0

    @contextlib.asynccontextmanager
    async def counted():
        """Account for one tool call; yields how many others were in flight when it began.

        The artificial latency is spent inside the accounting, so a slow member
        shows up as in flight the way a really slow one would.
        """
        others = counters.in_flight
        counters.calls += 1
        counters.in_flight += 1
        try:
            if latency_s:
                await asyncio.sleep(latency_s)
            yield others
        finally:
            counters.in_flight -= 1

    @server.tool()
    async def add(a: int | float, b: int | float) -> dict[str, Any]:
        """Return a + b and the name of the member that computed it."""
        async with counted():
            return {"sum": a + b, "served_by": name}

    @server.tool()
    async def echo(text: str) -> dict[str, Any]:
        """Return the text unchanged and the name of the member that served it."""
        async with counted():
            return {"text": text, "served_by": name}

    @server.tool()
    async def sleep(ms: int, ctx: Context) -> dict[str, Any]:
        """Wait ms milliseconds, reporting progress every 100 ms if the caller asked for it."""
        async with counted() as others:
            total = max(0, ms)
            done = 0
            while done < total:
                step = min(PROGRESS_INTERVAL_MS, total - done)
                await asyncio.sleep(step / 1000.0)
                done += step
                # The SDK sends nothing unless the request carried a progressToken.
                # A caller that hung up mid-call must not turn the sleep into a tool error.
                with contextlib.suppress(Exception):
                    await ctx.report_progress(progress=done, total=total)
            return {"slept_ms": ms, "served_by": name, "in_flight_at_start": others}

    @server.tool()
    async def fail(message: str = "intentional failure") -> dict[str, Any]:
        """Always answer with a tool error (isError=true) that names this member."""
        async with counted():
            # ToolError is the SDK's "anticipated failure": the client gets an isError
            # result carrying this text, prefixed with "Error executing tool fail: ".
            raise ToolError(f"{message} (served_by={name})")

    @server.tool()
    async def whoami() -> dict[str, Any]:
        """Report this member's identity and load counters."""
        # Not counted: probing a member must not change what it reports.
        return {
            "served_by": name,
            "pid": os.getpid(),
            "port": port,
            "calls": counters.calls,
            "in_flight": counters.in_flight,
        }

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"ok {name}")

    return server


class _QuietExitServer(uvicorn.Server):
    """uvicorn.Server whose SIGTERM/SIGINT end in a plain return.

    Stock uvicorn shuts down gracefully and then re-raises the signal it caught,
    so the process dies of SIGTERM (status 143) or prints a KeyboardInterrupt
    traceback. Harnesses that stop members by PID read status 0 as "stopped
    cleanly", so the signal is consumed here instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The handler stays a bound method of this server: sse-starlette finds the
        # server through it to end open SSE streams when shutdown starts.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve_http(server: MCPServer, args: argparse.Namespace) -> None:
    app = server.streamable_http_app(
        streamable_http_path=args.path,
        stateless_http=args.stateless,
        json_response=args.json_response,
        host=args.host,  # the SDK derives its DNS-rebinding protection from the bind address
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    _QuietExitServer(config).run()


def serve_stdio(server: MCPServer) -> None:
    # The SDK reads stdin in a worker thread that cancellation cannot interrupt,
    # so a graceful unwind would wait for the peer's next line. A stdio member
    # holds nothing worth flushing: on a signal, leave at once.
    def leave(_sig: int, _frame: Any) -> None:
        os._exit(0)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    server.run("stdio")  # returns when the peer closes stdin


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="a", help="member name reported as served_by (default: a)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default: 8080)")
    p.add_argument("--path", default="/mcp", help="MCP endpoint path (default: /mcp)")
    p.add_argument("--transport", choices=["http", "streamable-http", "stdio"], default="http",
                   help="http (Streamable HTTP, the default; 'streamable-http' is the same) or stdio")
    sessions = p.add_mutually_exclusive_group()
    sessions.add_argument("--stateless", dest="stateless", action="store_true",
                          help="no Mcp-Session-Id; the SDK builds a fresh transport for every request")
    sessions.add_argument("--stateful", dest="stateless", action="store_false",
                          help="issue an Mcp-Session-Id at initialize (the default)")
    p.set_defaults(stateless=False)
    p.add_argument("--json-response", action="store_true",
                   help="answer POSTs with application/json instead of an SSE stream")
    p.add_argument("--latency-ms", type=int, default=0, help="delay added to every tool call (default: 0)")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                   help="SDK and uvicorn log level (default: WARNING)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = build_server(args.name, args.port, args.latency_ms, args.log_level)
    if args.transport == "stdio":
        serve_stdio(server)
        return 0

    mode = "stateless" if args.stateless else "stateful"
    print(
        f"example_server name={args.name} url=http://{args.host}:{args.port}{args.path} "
        f"mode={mode} json_response={args.json_response} sdk=mcp2 pid={os.getpid()}",
        file=sys.stderr,
        flush=True,
    )
    serve_http(server, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
