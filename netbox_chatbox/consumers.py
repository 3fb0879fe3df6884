"""The chat WebSocket: ``/plugins/chatbox/ws/``, under NetBox's own authentication.

Browsers authenticate with the NetBox session cookie (and the Origin must be this NetBox); scripts
send ``Authorization: Bearer nbt_<key>.<token>`` on the handshake, checked by NetBox's own token
authentication (expiry, allowed IPs, enabled, write). Anonymous, inactive and unpermitted users are
refused at the handshake (HTTP 403). The protocol is in docs/protocol.md; every turn runs through
:class:`netbox_chatbox.sessions.ChatSession`, the same code as the HTTP API.
"""

import asyncio
import json
import logging
from urllib.parse import urlparse

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http import HttpRequest
from django.http.request import validate_host
from rest_framework.exceptions import AuthenticationFailed

from .page_context import with_context
from .permissions import can_chat
from .proposals import branching
from .sessions import ChatSession, Refused, db

logger = logging.getLogger("netbox_chatbox.consumers")

CLIENT_TYPES = ("chat", "interrupt", "reset", "model_change", "resume")


def origin_allowed(origin: str, host: str) -> bool:
    """Whether a page at ``origin`` may open a socket to this NetBox (reached as ``host``).

    Channels' AllowedHostsOriginValidator accepts every Origin when ALLOWED_HOSTS is ``['*']`` (a common
    NetBox setting), so we check same-origin ourselves: the Origin's host equals the Host header, or is
    a CSRF_TRUSTED_ORIGINS entry, or matches a non-wildcard ALLOWED_HOSTS entry.
    """
    parsed = urlparse(origin)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return False
    if host and parsed.netloc.lower() == host.lower():
        return True
    if origin.lower().rstrip("/") in (o.lower().rstrip("/") for o in settings.CSRF_TRUSTED_ORIGINS):
        return True
    return validate_host(parsed.hostname, [h for h in settings.ALLOWED_HOSTS if h != "*"])


class SameOriginValidator:
    """ASGI middleware: refuse sockets that pages of other sites open (cross-site WebSocket hijacking).

    Clients without an Origin header are not browsers and cannot ride a user's cookie; they pass.
    """

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin")
        # The host the browser reached, as Django's request.get_host() sees it: behind a proxy that sets
        # X-Forwarded-Host (NetBox's contrib/nginx.conf; NetBox sets USE_X_FORWARDED_HOST), that one.
        host = headers.get(b"host", b"")
        if settings.USE_X_FORWARDED_HOST and b"x-forwarded-host" in headers:
            host = headers[b"x-forwarded-host"]
        if origin is None or origin_allowed(origin.decode("latin1"), host.decode("latin1")):
            return await self.application(scope, receive, send)
        logger.warning("refused a chat socket from origin %s", origin.decode("latin1"))
        return await WebsocketDenier.as_asgi()(scope, receive, send)


def _token_user(scope):
    """Authenticate ``Authorization: Bearer …`` on the handshake with NetBox's TokenAuthentication."""
    from netbox.api.authentication import TokenAuthentication

    request = HttpRequest()
    for name, value in scope.get("headers", []):
        request.META["HTTP_" + name.decode("latin1").upper().replace("-", "_")] = value.decode("latin1")
    if scope.get("client"):
        request.META["REMOTE_ADDR"] = scope["client"][0]
    try:
        result = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as exc:
        logger.info("chat socket token refused: %s", exc.detail)
        return None
    if result is None:
        return None
    user, token = result
    # Chatting creates conversations: like any API write, it needs a write-enabled token.
    return user if token.write_enabled else None


def authenticate(scope):
    """The NetBox user of a socket handshake who may chat, or None (sync: database)."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        user = _token_user(scope)
    if user is None or not can_chat(user):
        return None
    return user


def open_session(scope):
    """The chat session of a socket handshake, or None to refuse it (sync: one trip to the sessions' threads
    for the user, the branch and the user's model). Raises Refused when no model can answer."""
    user = authenticate(scope)
    if user is None:
        return None
    try:  # netbox-branching's active branch, as its middleware reads it for requests
        branch = branching.from_scope(scope)
    except branching.BranchUnavailable as exc:
        logger.info("chat socket refused: %s", exc)
        return None  # a header naming no usable branch: refused, as netbox-branching refuses the request
    return ChatSession.for_user(user, branch)


def checked_question(session, request) -> str:
    """The question as the model gets it, once the session accepted it (sync: one trip to the threads)."""
    text = session.check(request.get("message"))
    # The page it was asked from (the panel's chip), resolved as the user: never taken on trust.
    return branching.run_in(session.branch, with_context, session.user, text, request.get("context"))


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser tab (or script) chatting: one :class:`ChatSession` per connection."""

    session = None
    closed = False
    finish_if_closed = False  # the running turn asked to be finished even if the socket closes

    async def connect(self):
        try:
            self.session = await db(open_session)(self.scope)
        except Refused as exc:  # no usable model at all: say why, then close
            await self.accept()
            await self.send_event(exc.event.as_dict())
            await self.close(code=4000)
            return
        if self.session is None:
            await self.close()  # before accept(): the handshake is answered with HTTP 403
            return
        await self.accept()
        await self.send_event(self.session.describe())

    async def disconnect(self, code):
        self.closed = True
        if self.session is None:
            return
        if self.session.in_turn and self.finish_if_closed:
            # The user navigated away mid-answer (the panel follows them to the next page): the answer is
            # finished and stored, and shown when the conversation is opened again; then the session closes.
            task = asyncio.create_task(_close_after_turn(self.session))
            _finishing.add(task)
            task.add_done_callback(_finishing.discard)
            return
        await self.session.close()

    async def send_event(self, event: dict):
        """Send one event; after a disconnect, events are dropped (the session still stores the turn)."""
        if self.closed:
            return
        try:
            await self.send(text_data=json.dumps(event))
        except Exception:
            self.closed = True

    async def receive(self, text_data=None, bytes_data=None):
        try:
            request = json.loads(text_data) if text_data is not None else None
        except ValueError:
            request = None
        if not isinstance(request, dict):
            await self.send_event(_bad_request('Send JSON objects, e.g. {"type": "chat", "message": "…"}.'))
            return
        kind = request.get("type")
        if kind not in CLIENT_TYPES:
            await self.send_event(_bad_request(f"Unknown message type {kind!r}; valid: {', '.join(CLIENT_TYPES)}."))
            return
        try:
            await getattr(self, f"on_{kind}")(request)
        except Refused as exc:
            await self.send_event(exc.event.as_dict())

    async def on_chat(self, request):
        text = await db(checked_question)(self.session, request)
        self.finish_if_closed = request.get("finish_if_closed") is True
        self.session.start(text, self.send_event)

    async def on_interrupt(self, request):
        await self.session.interrupt()

    async def on_reset(self, request):
        await self.session.reset()
        await self.send_event(self.session.describe())

    async def on_model_change(self, request):
        model = request.get("model")
        if not isinstance(model, str):
            raise Refused("bad_request", "'model' must be a model id from GET /api/plugins/chatbox/models/.")
        await self.send_event(await self.session.switch_model(model))
        await self.send_event(self.session.describe())

    async def on_resume(self, request):
        await self.session.resume(request.get("conversation"))
        await self.send_event(self.session.describe())


_finishing: set[asyncio.Task] = set()  # sessions finishing an answer after their socket closed
FINISH_LIMIT = 600  # seconds; then the session closes and keeps what was answered (interrupted)


async def _close_after_turn(session):
    try:
        async with asyncio.timeout(FINISH_LIMIT):
            while session.in_turn:
                await asyncio.sleep(0.2)
    except TimeoutError:
        logger.warning("an answer of a closed chat socket did not finish in %s s; stopping it", FINISH_LIMIT)
    finally:
        await session.close()


def _bad_request(message):
    return {"type": "error", "code": "bad_request", "message": message}
