"""A scripted fake of the Anthropic Messages API (``POST /v1/messages``), SSE and JSON.

It speaks the wire protocol the Claude Code CLI uses (SSE with ``event:`` lines when the request
says ``"stream": true``, a JSON message otherwise), so the real claude-agent-sdk + CLI run against it.

    fake = FakeAnthropic().start()
    fake.reply("Hello", "world")                 # a text answer, streamed in two pieces
    fake.tool_call("mcp__netbox__get", {"id": 1}) # the model asks for a tool …
    fake.reply("Done")                           # … and answers after seeing its result
    fake.error(401, "authentication_error", "invalid x-api-key")
    fake.reply("PART-A ", "PART-B ", drop_after=2)  # the connection drops after two pieces (the CLI retries)
    fake.reply("Hi", error_after=1)              # an ``event: error`` (overloaded) after HTTP 200 and one piece
    fake.reply("Cut", stop_reason="max_tokens")  # an answer cut by the output limit
    fake.conversation_requests()                 # what the model was sent, turn by turn

The response's ``model`` echoes the request's (as Anthropic does) unless a reply sets it.
"""

import itertools
import json
from dataclasses import dataclass, field

from .server import DROP, FakeServer, Hang, HttpError

_ids = itertools.count(1)


@dataclass
class Text:
    """A text answer, streamed as ``chunks`` with ``chunk_delay`` seconds between them.

    Faults: ``drop_after`` pieces the connection is cut; ``error_after`` pieces an ``event: error`` ends the
    stream (HTTP 200 already sent); ``stop_reason`` "max_tokens" is an answer cut by the output limit.
    """

    chunks: list
    chunk_delay: float = 0.0
    model: str | None = None
    input_tokens: int = 12
    stop_reason: str = "end_turn"
    drop_after: int | None = None
    error_after: int | None = None
    cache_read_input_tokens: int = 0


@dataclass
class ToolUse:
    """The model calls ``name`` with ``input`` (after optional ``text``)."""

    name: str
    input: dict
    id: str = field(default_factory=lambda: f"toolu_fake{next(_ids):04d}")
    text: str = ""
    model: str | None = None
    input_tokens: int = 12


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeAnthropic(FakeServer):
    """Fake ``api.anthropic.com``: answers ``POST /v1/messages`` from the script."""

    def __init__(self, port: int = 0):
        super().__init__(port)
        self.default_text = "OK"
        self.model_list_requests = []  # GET /v1/models (the plugin's health check), kept apart from the chat

    def reset(self):
        super().reset()
        self.model_list_requests = []

    # scripting helpers
    def reply(self, *chunks, chunk_delay=0.0, model=None, input_tokens=12, **faults):
        return self.enqueue(Text(list(chunks), chunk_delay, model, input_tokens, **faults))

    def tool_call(self, name, input, text="", id=None, model=None):
        use = ToolUse(name, input, text=text, model=model)
        if id:
            use.id = id
        return self.enqueue(use)

    def error(self, status, type="api_error", message="Internal server error", headers=None, always=False):
        """An API error; ``always=True``: every later request fails so (the CLI retries some errors)."""
        error = HttpError(
            status,
            {"type": "error", "error": {"type": type, "message": message}},
            {"request-id": f"req_fake{next(_ids)}", **(headers or {})},
        )
        return self.always(error) if always else self.enqueue(error)

    def hang(self, seconds=300):
        return self.enqueue(Hang(seconds))

    def default_reply(self, request):
        return Text([self.default_text])

    # what tests inspect
    def conversation_requests(self):
        """The ``/v1/messages`` requests (parsed JSON bodies), oldest first."""
        return [r.json for r in self.requests if r.method == "POST" and r.path == "/v1/messages"]

    def tool_results(self):
        """Every ``tool_result`` block the model was sent, as {tool_use_id: text}, in order."""
        results = {}
        for body in self.conversation_requests():
            for message in body.get("messages", []):
                if message["role"] != "user" or isinstance(message["content"], str):
                    continue
                for block in message["content"]:
                    if block.get("type") == "tool_result":
                        content = block.get("content")
                        if isinstance(content, list):
                            content = "".join(part.get("text", "") for part in content)
                        results[block["tool_use_id"]] = content
        return results

    # protocol
    def handle(self, request, respond):
        if request.method == "GET" and request.path == "/v1/models":
            return self._models(request, respond)
        if request.method != "POST" or request.path != "/v1/messages":
            return respond.error(
                HttpError(
                    404,
                    {
                        "type": "error",
                        "error": {"type": "not_found_error", "message": f"{request.method} {request.path} not found"},
                    },
                )
            )
        reply = self.next_reply(request)
        if isinstance(reply, HttpError):
            return respond.error(reply)
        if isinstance(reply, Hang):
            return respond.hang(reply)
        body = request.json
        model = reply.model or body.get("model") or "claude-fake"
        if body.get("stream"):
            return respond.stream("text/event-stream", self._events(reply, model), getattr(reply, "chunk_delay", 0.0))
        return respond.json(self._message(reply, model))

    def _models(self, request, respond):
        """``GET /v1/models``: the cheap authenticated request a health check makes (401 without a key)."""
        with self._lock:
            self.requests.remove(request)
            self.model_list_requests.append(request)
        if not request.headers.get("x-api-key") or request.headers.get("anthropic-version") is None:
            return respond.error(
                HttpError(
                    401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
                )
            )
        return respond.json(
            {
                "data": [{"type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5"}],
                "has_more": False,
                "first_id": "claude-sonnet-4-5-20250929",
                "last_id": "claude-sonnet-4-5-20250929",
            }
        )

    def _blocks(self, reply):
        if isinstance(reply, Text):
            return [{"type": "text", "text": "".join(reply.chunks)}]
        blocks = [{"type": "text", "text": reply.text}] if reply.text else []
        return blocks + [{"type": "tool_use", "id": reply.id, "name": reply.name, "input": reply.input}]

    def _message(self, reply, model):
        tool = isinstance(reply, ToolUse)
        return {
            "id": f"msg_fake{next(_ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": self._blocks(reply),
            "stop_reason": "tool_use" if tool else reply.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": reply.input_tokens,
                "output_tokens": self._output_tokens(reply),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": getattr(reply, "cache_read_input_tokens", 0),
            },
        }

    @staticmethod
    def _output_tokens(reply):
        return len(reply.chunks) if isinstance(reply, Text) else 5

    def _events(self, reply, model):
        message = self._message(reply, model)
        start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
        yield _sse("message_start", {"type": "message_start", "message": start})
        yield _sse("ping", {"type": "ping"})
        index = 0
        if isinstance(reply, Text) or reply.text:
            chunks = reply.chunks if isinstance(reply, Text) else [reply.text]
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            )
            for i, chunk in enumerate(chunks):
                if i == getattr(reply, "drop_after", None):
                    yield DROP
                    return
                if i == getattr(reply, "error_after", None):
                    yield _sse(
                        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                    )
                    return
                yield _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": chunk}},
                )
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        if isinstance(reply, ToolUse):
            yield _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": reply.id, "name": reply.name, "input": {}},
                },
            )
            yield _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(reply.input)},
                },
            )
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})
