"""POST /api/plugins/chatbox/chat/: one chat turn over HTTP, streamed (SSE) or as one JSON answer.

For API clients and for deployments that keep NetBox on gunicorn (no WebSocket). Authentication,
CSRF and the token write flag are NetBox's (DRF); the turn itself is :class:`ChatSession`'s, so the
events are exactly the WebSocket's. Each request is its own session: the agent lives for one turn
and is closed at the end (or when the client disconnects mid-answer).
"""

import asyncio
import contextlib
import json
import queue
import threading

from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ..page_context import with_context
from ..permissions import CanChat
from ..sessions import HTTP_STATUS, ChatSession, Refused
from .serializers import ChatRequestSerializer, ChatResponseSerializer

_STATUS_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "bad_request", 429: "rate_limited"}


def sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class EventStreamRenderer(BaseRenderer):
    """``Accept: text/event-stream``. Turns stream their own events; this renders refusals as one error event."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and data.get("type") == "error":
            return sse(data)
        status = renderer_context["response"].status_code if renderer_context else 400
        detail = data.get("detail") if isinstance(data, dict) else None
        message = str(detail) if detail else json.dumps(data)
        return sse({"type": "error", "code": _STATUS_CODES.get(status, "bad_request"), "message": message})


async def _events(session: ChatSession, text: str):
    """The turn's events; the session (and its agent) is closed however the stream ends."""
    try:
        async for event in session.stream(text):
            yield event
    finally:
        await session.close()


async def _sse_async(session, text):
    async for event in _events(session, text):
        yield sse(event)


def _sse_sync(session, text):
    """Under WSGI: run the whole turn as ONE task on a private event loop in a helper thread.

    One task, because the Claude SDK's anyio scopes must be entered and left in the same task (stepping
    the generator with one run_until_complete per event breaks that). Events come over a queue. If the
    client disconnects, the server closes this generator; cancelling the task then runs the session's
    cleanup (interrupt, store the partial answer, close the agent).
    """
    chunks = queue.SimpleQueue()

    async def pump():
        try:
            async for event in _events(session, text):
                chunks.put(sse(event))
        finally:
            chunks.put(None)

    def run():
        with contextlib.suppress(asyncio.CancelledError):  # the client left; pump's cleanup has run
            loop.run_until_complete(task)

    loop = asyncio.new_event_loop()
    task = loop.create_task(pump())
    thread = threading.Thread(target=run, name="chatbox-sse", daemon=True)
    thread.start()
    try:
        while (chunk := chunks.get()) is not None:
            yield chunk
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _collect(session, text) -> list[dict]:
    return [event async for event in _events(session, text)]


class ChatView(APIView):
    """Send a message; get the answer as Server-Sent Events (``Accept: text/event-stream``) or as JSON."""

    permission_classes = [CanChat]
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        request=ChatRequestSerializer,
        responses={
            200: OpenApiResponse(
                ChatResponseSerializer,
                description=(
                    "JSON: the whole turn. With `Accept: text/event-stream`: one SSE event per chat event "
                    "(`event: <type>` + `data: <json>`), ending with `complete` or `error`."
                ),
            )
        },
        operation_id="plugins_chatbox_chat_create",
        description="One chat turn, in a new conversation or continuing one of yours.",
    )
    def post(self, request):
        serializer = ChatRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            session = ChatSession.for_request(request.user, data.get("model"), data.get("conversation"))
            text = with_context(request.user, session.check(data["message"]), data.get("context"))
        except Refused as exc:
            return Response(exc.event.as_dict(), status=exc.status)

        if request.accepted_renderer.format == "sse":
            stream = _sse_async if isinstance(request._request, ASGIRequest) else _sse_sync
            response = StreamingHttpResponse(stream(session, text), content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
            return response

        events = async_to_sync(_collect)(session, text)
        last = events[-1] if events else {}
        status = HTTP_STATUS.get(last.get("code"), 502) if last.get("type") == "error" else 200
        return Response(
            {
                "conversation": session.conversation.pk if session.conversation else None,
                "model": session.model.id,
                "answer": last["content"]
                if "content" in last
                else "".join(e["text"] for e in events if e["type"] == "delta"),
                "events": events,
            },
            status=status,
        )
