"""NetBox for any AI client: the assistant's tools over MCP (Streamable HTTP), as the token's own user.

``/api/plugins/chatbox/mcp/`` serves the one tool registry (:data:`netbox_chatbox.tools.TOOLS`) with the
official ``mcp`` package: its low-level ``Server`` answers ``tools/list`` and ``tools/call``, its
``StreamableHTTPSessionManager`` speaks the transport (stateless, JSON responses: every request stands
alone, so any worker process of any server can answer it and nothing is kept between requests).

Around it, NetBox's rules: the client sends a NetBox API token (``Authorization: Bearer nbt_…``, or a
v1 ``Token …``), checked by NetBox's own ``TokenAuthentication`` (expiry, allowed IPs, enabled); the
token's user needs the ``mcp`` action on *Chatbox | conversation* (superusers always have it). Every
tool call runs as that user through the chat's own path (:func:`netbox_chatbox.agents.tooling.call_tool`:
its threads, a read-only transaction, the statement timeout and size caps) and counts against the
chat's per-user rate limit. Cookies are never used, so a web page cannot borrow a user's session; a
request from a browser page of another site (``Origin``) is refused, as the MCP spec requires.

Two entry points share everything: :class:`MCPApplication` (ASGI; the plugin's ``asgi.py`` routes the
path here) and :func:`mcp_view` (a plain Django view, for a NetBox served by gunicorn only).
"""
import asyncio
import io
import json
import logging
import threading
import time

import mcp_types as types
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from netbox.api.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from . import __version__, telemetry
from .agents.tooling import call_tool, result_text
from .conf import get_settings
from .consumers import origin_allowed
from .permissions import can_use_mcp
from .sessions import Refused, check_rate
from .tools import TOOLS

logger = logging.getLogger("netbox_chatbox.mcp")

PATH = f"{settings.BASE_PATH}api/plugins/chatbox/mcp/"
MAX_BODY_BYTES = 256 * 1024  # a tool call is a few hundred bytes; the SDK's own default is 4 MiB
USER_KEY = "netbox_chatbox.user"  # where the ASGI scope carries the authenticated user to the tool handler
INSTRUCTIONS = (
    "NetBox, the source of truth for this network, read-only and limited to what your NetBox user may view "
    "(objects you may not view look nonexistent). Start with list_object_types or search; describe_object_type "
    "lists an object type's fields and filters. Results link to NetBox (url)."
)


# --- the MCP server: the registry's tools ----------------------------------------------------------

def tool_definitions() -> list[types.Tool]:
    """Every registered tool with its JSON schema; all of them only read."""
    hints = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                  open_world_hint=False)
    return [types.Tool(name=tool.name, description=tool.description, input_schema=tool.input_schema,
                       annotations=hints) for tool in TOOLS.values()]


async def _list_tools(ctx, params) -> types.ListToolsResult:
    return types.ListToolsResult(tools=tool_definitions())


async def _call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    """Run one tool as the request's user. Tool errors (bad arguments, not found…) are results the model reads."""
    user = ctx.request.scope[USER_KEY]
    if params.name not in TOOLS:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name[:100]}")
    started = time.monotonic()
    try:
        await sync_to_async(check_rate, thread_sensitive=False)(user)
    except Refused:  # check_rate refuses only for the rate limit
        telemetry.tool_call(params.name, user, via="mcp", ok=False, error="rate_limited")
        limit = get_settings().rate_limit_per_minute
        return types.CallToolResult(is_error=True, content=[types.TextContent(
            text=f"Rate limited: {limit} tool calls or chat messages per minute per user; wait a moment.")])
    result = await call_tool(params.name, params.arguments, user)
    ok = "error" not in result
    telemetry.tool_call(params.name, user, via="mcp", ok=ok, duration_ms=int((time.monotonic() - started) * 1000))
    return types.CallToolResult(content=[types.TextContent(text=result_text(result))], is_error=not ok)


server = Server("netbox", version=__version__, title="NetBox (chatbox)", instructions=INSTRUCTIONS,
                on_list_tools=_list_tools, on_call_tool=_call_tool)


def session_manager() -> StreamableHTTPSessionManager:
    """Stateless with JSON responses: no session to find again, so several workers and WSGI both work."""
    return StreamableHTTPSessionManager(server, stateless=True, json_response=True,
                                        max_request_body_size=MAX_BODY_BYTES)


# --- NetBox's side: who is asking, and may they -------------------------------------------------------

class Denied(Exception):
    """A request refused before it reaches the MCP server: HTTP status and a JSON-RPC error body."""

    def __init__(self, status: int, message: str, headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, list(headers)

    def body(self) -> bytes:
        code = types.INVALID_REQUEST if self.status < 500 else types.INTERNAL_ERROR
        return json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": self.message}}).encode()


def authorize(request):
    """The user behind the request's NetBox API token, or :class:`Denied` (400, 401, 403, 404, 405)."""
    if not get_settings().mcp_enabled:
        raise Denied(404, "The MCP endpoint is disabled on this NetBox.")
    if request.method != "POST":  # GET would open a server-to-client stream, which a stateless server never uses
        raise Denied(405, "Method not allowed: send JSON-RPC messages with POST.", [("Allow", "POST")])
    try:
        host = request.get_host()
    except DisallowedHost:
        raise Denied(400, "Invalid Host header.") from None
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, host):
        logger.warning("refused an MCP request from origin %s", origin[:200])
        raise Denied(403, "Requests from this Origin are not allowed.")
    challenge = [("WWW-Authenticate", 'Bearer realm="NetBox"')]
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as failed:
        raise Denied(401, str(failed.detail), challenge) from None
    except ValueError:  # a malformed client IP header, while checking a token's allowed IPs
        raise Denied(400, "Invalid client IP address header.") from None
    if found is None:
        raise Denied(401, "Authentication required: send a NetBox API token as 'Authorization: Bearer "
                          "nbt_<key>.<token>'.", challenge)
    user, _token = found
    if not can_use_mcp(user):
        raise Denied(403, "This NetBox user may not use the MCP endpoint (it needs the 'mcp' action on "
                          "Chatbox | conversation).")
    return user


class _Slots:
    """How many MCP requests one process serves at once; more get 503 (stateless: no sessions to count)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._busy = 0

    def take(self):
        with self._lock:
            if self._busy >= get_settings().mcp_max_concurrent_requests:
                raise Denied(503, "Too many MCP requests at once on this server; try again shortly.",
                             [("Retry-After", "1")])
            self._busy += 1

    def give(self):
        with self._lock:
            self._busy -= 1


_slots = _Slots()


# --- ASGI: the plugin's asgi.py routes PATH here ------------------------------------------------------

async def _send_denied(send, denied: Denied):
    headers = [(b"content-type", b"application/json")]
    headers += [(name.lower().encode(), value.encode()) for name, value in denied.headers]
    await send({"type": "http.response.start", "status": denied.status, "headers": headers})
    await send({"type": "http.response.body", "body": denied.body()})


class MCPApplication:
    """The endpoint as an ASGI app. One session manager per process, started with the first request
    (Channels' router has no lifespan events to start it from)."""

    def __init__(self):
        self._manager = None
        self._ready = None

    async def _started(self) -> StreamableHTTPSessionManager:
        if self._manager is None:
            self._manager, self._ready = session_manager(), asyncio.Event()

            async def run(manager, ready):
                async with manager.run():
                    ready.set()
                    await asyncio.Event().wait()  # until the server process ends

            self._task = asyncio.get_running_loop().create_task(run(self._manager, self._ready))
        await self._ready.wait()
        return self._manager

    async def __call__(self, scope, receive, send):
        request = ASGIRequest(scope, io.BytesIO())
        try:
            user = await database_sync_to_async(authorize, thread_sensitive=False)(request)
            _slots.take()
        except Denied as denied:
            return await _send_denied(send, denied)
        try:
            manager = await self._started()
            await manager.handle_request({**scope, USER_KEY: user}, receive, send)
        finally:
            _slots.give()


# --- WSGI: the same endpoint as a Django view (gunicorn-only NetBox) ----------------------------------

async def _serve_once(scope, body: bytes):
    """Run one request through a session manager of its own (each call of async_to_sync has its own loop)."""
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


def _denied_response(denied: Denied) -> HttpResponse:
    response = HttpResponse(denied.body(), status=denied.status, content_type="application/json")
    for name, value in denied.headers:
        response[name] = value
    return response


@csrf_exempt
def mcp_view(request):
    """``/api/plugins/chatbox/mcp/`` under WSGI. Holds a worker thread only for the request's tool call."""
    try:
        user = authorize(request)
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            raise Denied(413, "Request body too large.")
        _slots.take()
    except Denied as denied:
        return _denied_response(denied)
    except ValueError:
        return _denied_response(Denied(400, "Invalid Content-Length header."))
    try:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "scheme": request.scheme, "path": request.path, "raw_path": request.path.encode(), "root_path": "",
            "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
            "headers": [(name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in request.headers.items()],
            "client": (request.META.get("REMOTE_ADDR", ""), 0), "server": None, USER_KEY: user,
        }
        # Read at most one byte more than allowed (also without Content-Length): the manager answers 413.
        answer = async_to_sync(_serve_once)(scope, request.read(MAX_BODY_BYTES + 1))
    finally:
        _slots.give()
    response = HttpResponse(b"".join(answer["body"]), status=answer["status"])
    for name, value in answer["headers"]:
        response[name.decode("latin-1")] = value.decode("latin-1")
    return response
