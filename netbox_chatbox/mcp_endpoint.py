"""NetBox for any AI client: ``/api/plugins/chatbox/mcp/``, the assistant's tools over MCP as the token's own user.

This module is NetBox's side of the endpoint; the MCP protocol itself is :mod:`netbox_chatbox.mcp_server`
(the official ``mcp`` package), imported on first use. Before a request reaches it:

- the client sends a NetBox API token (``Authorization: Bearer nbt_…``, or a v1 ``Token …``), checked by
  NetBox's own ``TokenAuthentication`` (expiry, allowed IPs, enabled); cookies are never used, so a web
  page cannot borrow a logged-in user's session;
- the token's user needs the ``mcp`` action on *Chatbox | conversation* (superusers always have it);
- a request from a browser page of another site (``Origin``) is refused, as the MCP spec requires; the
  body (256 KiB) and the requests served at once per process are bounded.

Two entry points share all of it: :class:`MCPApplication` (ASGI; the plugin's ``asgi.py`` routes the path
here, before Django) and :func:`mcp_view` (a Django view in the plugin's API URLs, for a gunicorn-only NetBox).
"""

import asyncio
import importlib
import io
import json
import logging
import threading

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from netbox.api.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .conf import get_settings
from .consumers import origin_allowed
from .permissions import can_use_mcp

logger = logging.getLogger("netbox_chatbox.mcp")

PATH = f"{settings.BASE_PATH}api/plugins/chatbox/mcp/"
MAX_BODY_BYTES = 256 * 1024  # a tool call is a few hundred bytes; the SDK's own default is 4 MiB
USER_KEY = "netbox_chatbox.user"  # where the ASGI scope carries the authenticated user to the tool handler
WRITE_KEY = "netbox_chatbox.write_enabled"  # and whether the token may write (proposals need it, as chat does)
_INVALID_REQUEST, _INTERNAL_ERROR = -32600, -32603  # JSON-RPC error codes


class Denied(Exception):
    """A request refused before it reaches the MCP server: HTTP status and a JSON-RPC error body."""

    def __init__(self, status: int, message: str, headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, list(headers)

    def body(self) -> bytes:
        code = _INVALID_REQUEST if self.status < 500 else _INTERNAL_ERROR
        return json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": self.message}}).encode()


def authorize(request):
    """(user, token write-enabled) behind the request's NetBox API token, or :class:`Denied` (400, 401, 403,
    404, 405)."""
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
        raise Denied(
            401,
            "Authentication required: send a NetBox API token as 'Authorization: Bearer nbt_<key>.<token>'.",
            challenge,
        )
    user, token = found
    if not can_use_mcp(user):
        raise Denied(
            403, "This NetBox user may not use the MCP endpoint (it needs the 'mcp' action on Chatbox | conversation)."
        )
    return user, token.write_enabled


class _Slots:
    """How many MCP requests one process serves at once; more get 503 (stateless: no sessions to count)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._busy = 0

    def take(self):
        with self._lock:
            if self._busy >= get_settings().mcp_max_concurrent_requests:
                raise Denied(
                    503, "Too many MCP requests at once on this server; try again shortly.", [("Retry-After", "1")]
                )
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
    (Channels' router passes no lifespan events to start it from)."""

    def __init__(self):
        self._ready = None
        self._manager = None
        self._task = None

    async def _started(self):
        if self._ready is None:
            self._ready = asyncio.Event()
            try:  # importing mcp takes seconds: in a thread, so the event loop keeps serving meanwhile
                module = await asyncio.to_thread(importlib.import_module, "netbox_chatbox.mcp_server")
            except BaseException:
                self._ready = None
                raise
            self._manager = module.session_manager()

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
            user, write_enabled = await database_sync_to_async(authorize, thread_sensitive=False)(request)
            _slots.take()
        except Denied as denied:
            return await _send_denied(send, denied)
        try:
            manager = await self._started()
            await manager.handle_request({**scope, USER_KEY: user, WRITE_KEY: write_enabled}, receive, send)
        finally:
            _slots.give()


# --- WSGI: the same endpoint as a Django view (gunicorn-only NetBox) ----------------------------------


def _denied_response(denied: Denied) -> HttpResponse:
    response = HttpResponse(denied.body(), status=denied.status, content_type="application/json")
    for name, value in denied.headers:
        response[name] = value
    return response


@csrf_exempt
def mcp_view(request):
    """``/api/plugins/chatbox/mcp/`` under WSGI. Holds a worker thread only for the request's tool call."""
    try:
        user, write_enabled = authorize(request)
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            raise Denied(413, "Request body too large.")
        _slots.take()
    except Denied as denied:
        return _denied_response(denied)
    except ValueError:
        return _denied_response(Denied(400, "Invalid Content-Length header."))
    try:
        from . import mcp_server

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.scheme,
            "path": request.path,
            "raw_path": request.path.encode(),
            "root_path": "",
            "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.items()
            ],
            "client": (request.META.get("REMOTE_ADDR", ""), 0),
            "server": None,
            USER_KEY: user,
            WRITE_KEY: write_enabled,
        }
        # Read at most one byte more than allowed (also without Content-Length): the manager answers 413.
        answer = async_to_sync(mcp_server.serve_once)(scope, request.read(MAX_BODY_BYTES + 1))
    finally:
        _slots.give()
    response = HttpResponse(b"".join(answer["body"]), status=answer["status"])
    for name, value in answer["headers"]:
        response[name.decode("latin-1")] = value.decode("latin-1")
    return response
