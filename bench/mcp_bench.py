"""Latency of MCP tool calls through the plugin's endpoint, with the official ``mcp`` client (issue 14).

Against a running NetBox with the plugin (``--url``, a NetBox API token with the ``mcp`` action in
``--token``): one client session calls ``count_objects`` (``--object-type``) ``--calls`` times in a row,
then ``--concurrency`` sessions do so at once. Reported: the first session (initialize and one call; on a
fresh server process it includes the one-off import of ``mcp``), then p50 / p95 / max per call, and calls
per second when concurrent.
Compare the plugin's ASGI application (uvicorn) with gunicorn (the Django view) by pointing at each.

    .venv/bin/python bench/mcp_bench.py --url http://127.0.0.1:8001/api/plugins/chatbox/mcp/ \
        --token "Bearer nbt_<key>.<token>" [--calls 50] [--concurrency 8] [--object-type dcim.device]
"""

import argparse
import asyncio
import statistics
import time

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def session_calls(url, token, calls, object_type):
    times = []
    async with (
        httpx2.AsyncClient(headers={"Authorization": token}, timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for _ in range(calls):
            started = time.perf_counter()
            result = await session.call_tool("count_objects", {"object_type": object_type})
            times.append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result.content[0].text
    return times


def summary(times):
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms (n={len(ordered)})"


async def main(args):
    started = time.perf_counter()
    await session_calls(args.url, args.token, 1, args.object_type)
    print(f"first session (initialize + one call): {(time.perf_counter() - started) * 1000:.0f} ms")
    times = await session_calls(args.url, args.token, args.calls, args.object_type)
    print(f"sequential, one session: {summary(times)}")
    started = time.perf_counter()
    rounds = await asyncio.gather(
        *(session_calls(args.url, args.token, args.calls, args.object_type) for _ in range(args.concurrency))
    )
    elapsed = time.perf_counter() - started
    times = [t for r in rounds for t in r]
    print(f"{args.concurrency} sessions at once: {summary(times)}, {len(times) / elapsed:.0f} calls/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True, help='the Authorization header value, "Bearer nbt_…"')
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--object-type", default="dcim.device")
    asyncio.run(main(parser.parse_args()))
