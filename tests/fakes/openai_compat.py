"""A scripted fake OpenAI-compatible server (vLLM, llama.cpp's ``llama-server``, LM Studio): ``/v1/models``
and streamed ``/v1/chat/completions`` (Server-Sent Events ``data:`` lines ending with ``data: [DONE]``).

Tool calls stream the way those servers send them: the call's id and name in its first chunk, then
the arguments in pieces (vLLM); with ``repeat_tool_names = True`` the id and full name come again in
every chunk (llama-cpp-python). Usage is sent, when the request asks for it, as a last chunk without
choices; ``send_usage = False`` omits it, as servers without ``stream_options`` support do.

    fake = FakeOpenAICompatible(models=["llama-3.2-3b"], api_key="sk-local-1").start()
    fake.reply("Hel", "lo")
    fake.tool_call("query_objects", {"object_type": "dcim.site"})
    fake.error(503, "server overloaded")
    fake.chat_requests()      # what the model was sent
"""

import json
import time
from dataclasses import dataclass

from .server import FakeServer, Hang, HttpError

DEFAULT_MODEL = "llama-3.2-3b-instruct"


@dataclass
class Text:
    chunks: list
    chunk_delay: float = 0.0
    prompt_tokens: int = 30


@dataclass
class ToolCalls:
    """The model calls tools: ``calls`` is a list of (name, arguments)."""

    calls: list
    text: str = ""
    prompt_tokens: int = 30


class FakeOpenAICompatible(FakeServer):
    def __init__(self, port: int = 0, models=(DEFAULT_MODEL,), api_key=None):
        super().__init__(port)
        self.models = list(models)
        self.api_key = api_key  # None: the server takes any key, or none
        self.repeat_tool_names = False
        self.send_usage = True
        self.default_text = "OK"

    # scripting helpers
    def reply(self, *chunks, chunk_delay=0.0):
        return self.enqueue(Text(list(chunks), chunk_delay))

    def tool_call(self, name, arguments, text=""):
        return self.enqueue(ToolCalls([(name, arguments)], text))

    def error(self, status, message="server error", always=False):
        error = HttpError(status, {"error": {"message": message, "type": "server_error", "code": status}})
        return self.always(error) if always else self.enqueue(error)

    def default_reply(self, request):
        return Text([self.default_text])

    def chat_requests(self):
        """The ``/v1/chat/completions`` request bodies, oldest first."""
        return [r.json for r in self.requests if r.path == "/v1/chat/completions"]

    def reset(self):
        super().reset()
        self.repeat_tool_names, self.send_usage = False, True

    # protocol
    def handle(self, request, respond):
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return respond.error(
                HttpError(
                    401,
                    {
                        "error": {
                            "message": "Invalid API Key",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    },
                )
            )
        if request.path == "/v1/models" and request.method == "GET":
            return respond.json(
                {
                    "object": "list",
                    "data": [
                        {"id": name, "object": "model", "created": 1764000000, "owned_by": "local"}
                        for name in self.models
                    ],
                }
            )
        if request.path == "/v1/chat/completions" and request.method == "POST":
            return self._chat(request, respond)
        return respond.error(HttpError(404, {"error": {"message": "Not Found", "type": "not_found_error"}}))

    def _chat(self, request, respond):
        body = request.json
        model = body.get("model")
        if not body.get("stream"):  # the plugin always streams
            return respond.error(HttpError(400, {"error": {"message": "this fake only streams"}}))
        if model not in self.models:
            return respond.error(
                HttpError(
                    404,
                    {
                        "error": {
                            "message": f"The model `{model}` does not exist.",
                            "type": "NotFoundError",
                            "code": 404,
                        }
                    },
                )
            )
        reply = self.next_reply(request)
        if isinstance(reply, HttpError):
            return respond.error(reply)
        if isinstance(reply, Hang):
            return respond.hang(reply)
        chunks = self._chunks(reply, model)
        wants_usage = (body.get("stream_options") or {}).get("include_usage") and self.send_usage
        if not wants_usage:
            chunks = [c for c in chunks if c["choices"]]
        lines = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
        return respond.stream("text/event-stream", lines, getattr(reply, "chunk_delay", 0.0))

    def _chunks(self, reply, model):
        created = int(time.time())

        def chunk(delta, finish_reason=None):
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }

        parts = [chunk({"role": "assistant", "content": ""})]
        if isinstance(reply, Text):
            parts += [chunk({"content": text}) for text in reply.chunks]
            parts.append(chunk({}, "stop"))
            completion = len(reply.chunks)
        else:
            if reply.text:
                parts.append(chunk({"content": reply.text}))
            for index, (name, arguments) in enumerate(reply.calls):
                call_id, text = f"call_{index}_fake", json.dumps(arguments)
                pieces = [text[i : i + 12] for i in range(0, len(text), 12)] or [""]
                first = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                parts.append(chunk({"tool_calls": [first]}))
                for piece in pieces:
                    call = {"index": index, "function": {"arguments": piece}}
                    if self.repeat_tool_names:
                        call = {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": piece},
                        }
                    parts.append(chunk({"tool_calls": [call]}))
            parts.append(chunk({}, "tool_calls"))
            completion = 7
        parts.append(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": completion,
                    "total_tokens": reply.prompt_tokens + completion,
                },
            }
        )
        return parts
