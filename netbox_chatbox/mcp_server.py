"""The MCP server behind ``/api/plugins/chatbox/mcp/``: the tool registry, spoken with the official ``mcp`` package.

Its low-level ``Server`` answers ``tools/list`` (every tool of :data:`netbox_chatbox.tools.TOOLS` with its
JSON schema) and ``tools/call``; ``StreamableHTTPSessionManager`` speaks the transport, stateless with
JSON responses: every request stands alone, so any worker process of any server can answer it and
nothing is kept between requests. Who asks, and whether they may, is decided before a request gets
here (:mod:`netbox_chatbox.mcp_endpoint`), which puts the NetBox user into the ASGI scope.

Importing ``mcp`` takes 1–2 s, so :mod:`~netbox_chatbox.mcp_endpoint` imports this module on first use.
"""

import asyncio
import logging
import time

import mcp_types as types
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from . import __version__, metrics, telemetry
from .agents.tooling import ToolScope, _tool_threads as tool_threads, call_tool, result_text
from .conf import get_settings
from .mcp_endpoint import MAX_BODY_BYTES, USER_KEY, WRITE_KEY
from .sessions import Refused, check_rate
from .tools import enabled_tools
from .usage_models import MCPToolCall

logger = logging.getLogger("netbox_chatbox.mcp")

INSTRUCTIONS = (
    "NetBox, the source of truth for this network, read-only and limited to what your NetBox user may view "
    "(objects you may not view look nonexistent). Start with list_object_types or search; describe_object_type "
    "lists an object type's fields and filters. Results link to NetBox (url)."
)


def tool_definitions() -> list[types.Tool]:
    """Every offered tool with its JSON schema; they only read, or store a proposal the user applies."""

    def hints(tool):
        return types.ToolAnnotations(
            read_only_hint=not tool.writes_proposal,
            destructive_hint=False,
            idempotent_hint=not tool.writes_proposal,
            open_world_hint=False,
        )

    return [
        types.Tool(
            name=tool.name, description=tool.description, input_schema=tool.input_schema, annotations=hints(tool)
        )
        for tool in enabled_tools().values()
    ]


async def _list_tools(ctx, params) -> types.ListToolsResult:
    return types.ListToolsResult(tools=tool_definitions())


async def _record(tool: str, user, outcome: str, duration_ms=None, result_chars=None):
    """Telemetry, metrics and the usage view's row (one INSERT) for one call; arguments and results are never
    kept. Recording never fails the call: a failure is logged and the client still gets its result."""
    try:
        telemetry.tool_call(
            tool,
            user,
            via="mcp",
            ok=outcome == "ok",
            error=outcome if outcome not in ("ok", "error") else None,
            duration_ms=duration_ms,
        )
        metrics.mcp_tool_call(tool, outcome)
        # On the tools' threads: their connections persist, also under WSGI (where the loop lives for one request).
        await database_sync_to_async(MCPToolCall.objects.create, thread_sensitive=False, executor=tool_threads)(
            user=user, tool=tool, outcome=outcome, duration_ms=duration_ms, result_chars=result_chars
        )
    except Exception as failed:
        logger.warning("MCP tool call of %s not recorded for the usage view: %s", tool, str(failed)[:300])


def _refusal(text: str) -> types.CallToolResult:
    return types.CallToolResult(is_error=True, content=[types.TextContent(text=text)])


async def _call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    """Run one tool as the request's user, on the chat's path (its threads, read-only transaction, timeout,
    caps) and under the chat's per-user rate limit. Tool errors are results the model reads and acts on."""
    user = ctx.request.scope[USER_KEY]
    tool = enabled_tools().get(params.name)
    if tool is None:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name[:100]}")
    if tool.writes_proposal and not ctx.request.scope.get(WRITE_KEY):
        # Storing a proposal is a write, as chatting is: like NetBox's API, a read-only token may not.
        await _record(tool.name, user, "read_only_token")
        return _refusal("Proposing a change needs a write-enabled NetBox API token; this token is read-only.")
    started = time.monotonic()
    try:
        await sync_to_async(check_rate, thread_sensitive=False)(user)
    except Refused:  # check_rate refuses only for the rate limit
        await _record(tool.name, user, "rate_limited")
        limit = get_settings().rate_limit_per_minute
        return _refusal(f"Rate limited: {limit} tool calls or chat messages per minute per user; wait a moment.")
    result = await call_tool(tool.name, params.arguments, ToolScope(user))  # in main
    text, ok = result_text(result), "error" not in result
    duration_ms = int((time.monotonic() - started) * 1000)
    await _record(tool.name, user, "ok" if ok else "error", duration_ms, len(text))
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=not ok)


server = Server(
    "netbox",
    version=__version__,
    title="NetBox (chatbox)",
    instructions=INSTRUCTIONS,
    on_list_tools=_list_tools,
    on_call_tool=_call_tool,
)


def session_manager() -> StreamableHTTPSessionManager:
    return StreamableHTTPSessionManager(
        server, stateless=True, json_response=True, max_request_body_size=MAX_BODY_BYTES
    )


async def serve_once(scope, body: bytes) -> dict:
    """One request through a session manager of its own, for the WSGI view (each async_to_sync call has its
    own event loop, so nothing can outlive the request). Returns {status, headers, body}."""
    response = {"status": 500, "headers": [], "body": []}
    answered = asyncio.Event()
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if incoming:
            return incoming.pop()
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            response["status"], response["headers"] = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            response["body"].append(message.get("body", b""))
            if not message.get("more_body"):
                answered.set()

    manager = session_manager()
    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return response
