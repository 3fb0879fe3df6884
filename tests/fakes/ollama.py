"""A scripted fake Ollama server: ``/api/tags``, ``/api/version``, ``/api/show`` and ``/api/chat``.

``/api/chat`` streams NDJSON (or answers one JSON object when ``"stream": false``), with native
tool calls, the way Ollama does; litellm's ``ollama_chat/`` provider and the LiteLLM proxy run
against it unchanged.

    fake = FakeOllama().start()
    fake.reply("The answer", " is 42")
    fake.tool_call("get_object", {"object_type": "dcim.site", "id": 1})
    fake.error(500, "model runner has unexpectedly stopped")
    fake.reply("Half", " an answer", done=False)          # the stream ends without Ollama's final ``done`` record
    fake.reply("Hi", " there", error_after=1)             # an ``{"error": …}`` line mid-stream (HTTP 200 sent)
    fake.reply("Hi", " there", garbage_after=1)           # a malformed line mid-stream, then no ``done``
    fake.reply("Hi", drop_after=1)                        # the connection is cut mid-stream
    fake.reply("Cut", done_reason="length")               # the answer was cut by the output limit
    fake.reply("Hi", usage=False)                         # the final record without token counts
    fake.tool_calls(("a", {}), ("b", {}), separate=True)  # parallel calls, each in its own chunk

Ollama's OpenAI-compatible ``/v1/chat/completions`` streams the same replies as OpenAI chunks (SSE);
``repeat_names=True`` on a tool-call reply repeats the function name in every chunk of a call, as
llama.cpp's servers do, with its arguments split over several chunks.
    fake.models = []            # /api/tags no longer lists the configured model
    fake.chat_requests()        # what the model was sent
"""

import json
from dataclasses import dataclass

from .server import DROP, FakeServer, Hang, HttpError

DEFAULT_MODEL = "qwen2.5:14b-instruct-8k"
_CREATED = "2026-11-23T12:00:00.000000000Z"


@dataclass
class Text:
    """A text answer; the fault fields (see the module docstring) default to an answer that ends well."""

    chunks: list
    chunk_delay: float = 0.0
    prompt_eval_count: int = 20
    done: bool = True
    usage: bool = True
    done_reason: str = "stop"
    error_after: int | None = None
    garbage_after: int | None = None
    drop_after: int | None = None


@dataclass
class ToolCalls:
    """The model calls tools: ``calls`` is a list of (name, arguments); ``separate``: one chunk each."""

    calls: list
    text: str = ""
    prompt_eval_count: int = 20
    separate: bool = False
    repeat_names: bool = False
    done: bool = True
    usage: bool = True
    done_reason: str = "stop"
    error_after: int | None = None
    garbage_after: int | None = None
    drop_after: int | None = None


class FakeOllama(FakeServer):
    def __init__(self, port: int = 0, models=(DEFAULT_MODEL,)):
        super().__init__(port)
        self.models = list(models)
        self.default_text = "OK"

    # scripting helpers
    def reply(self, *chunks, chunk_delay=0.0, prompt_eval_count=20, **faults):
        return self.enqueue(Text(list(chunks), chunk_delay, prompt_eval_count, **faults))

    def tool_call(self, name, arguments, text="", **faults):
        return self.enqueue(ToolCalls(calls=[(name, arguments)], text=text, **faults))

    def tool_calls(self, *calls, text="", separate=False, repeat_names=False, **faults):
        return self.enqueue(
            ToolCalls(calls=list(calls), text=text, separate=separate, repeat_names=repeat_names, **faults)
        )

    def error(self, status, message="model runner has unexpectedly stopped", always=False):
        error = HttpError(status, {"error": message})
        return self.always(error) if always else self.enqueue(error)

    def hang(self, seconds=300):
        return self.enqueue(Hang(seconds))

    def default_reply(self, request):
        return Text([self.default_text])

    def chat_requests(self):
        """The ``/api/chat`` and ``/v1/chat/completions`` request bodies, oldest first."""
        return [r.json for r in self.requests if r.path in ("/api/chat", "/v1/chat/completions")]

    # protocol
    def handle(self, request, respond):
        if request.path == "/api/version":
            return respond.json({"version": "0.12.6"})
        if request.path == "/api/tags":
            return respond.json({"models": [self._model_info(name) for name in self.models]})
        if request.path == "/api/show" and request.method == "POST":
            name = (request.json or {}).get("model") or (request.json or {}).get("name")
            if name not in self.models:
                return respond.error(HttpError(404, {"error": f"model '{name}' not found"}))
            return respond.json(
                {
                    "modelfile": f"FROM {name}",
                    "parameters": "num_ctx 8192",
                    "template": "{{ .Prompt }}",
                    "details": self._model_info(name)["details"],
                    "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 8192},
                    "capabilities": ["completion", "tools"],
                }
            )
        if request.path == "/api/chat" and request.method == "POST":
            return self._chat(request, respond)
        if request.path == "/v1/chat/completions" and request.method == "POST":
            return self._openai_chat(request, respond)
        return respond.error(HttpError(404, {"error": "404 page not found"}))

    def _chat(self, request, respond):
        body = request.json
        model = body.get("model")
        if model not in self.models:
            return respond.error(HttpError(404, {"error": f"model '{model}' not found, try pulling it first"}))
        reply = self.next_reply(request)
        if isinstance(reply, HttpError):
            return respond.error(reply)
        if isinstance(reply, Hang):
            return respond.hang(reply)
        chunks = self._chunks(reply, model)
        if body.get("stream", True):
            return respond.stream(
                "application/x-ndjson", self._lines(reply, chunks), getattr(reply, "chunk_delay", 0.0)
            )
        final = dict(chunks[-1])
        final["message"] = {"role": "assistant", "content": "".join(c["message"]["content"] for c in chunks)}
        calls = [call for c in chunks for call in c["message"].get("tool_calls", ())]
        if calls:
            final["message"]["tool_calls"] = calls
        return respond.json(final)

    @staticmethod
    def _lines(reply, chunks):
        """The NDJSON lines of a streamed answer, with the reply's faults."""
        final = chunks.pop()
        for i, chunk in enumerate(chunks):
            if i == reply.drop_after:
                yield DROP
                return
            if i == reply.error_after:
                yield _line({"error": "an error was encountered while running the model: unexpected EOF"})
                return
            if i == reply.garbage_after:
                yield b'{"model": "qwen2.5", "message": {"role": "assis\n'
                return
            yield _line(chunk)
        if reply.done:
            yield _line(final)

    def _openai_chat(self, request, respond):
        body = request.json
        reply = self.next_reply(request)
        if isinstance(reply, HttpError):
            return respond.error(
                HttpError(reply.status, {"error": {"message": reply.body.get("error"), "type": "api_error"}})
            )
        if isinstance(reply, Hang):
            return respond.hang(reply)
        model = body.get("model")

        def chunk(delta, finish_reason=None, **extra):
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1764417600,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }

        chunks = [chunk({"role": "assistant", "content": ""})]
        if isinstance(reply, Text):
            chunks += [chunk({"content": text}) for text in reply.chunks]
            output = len(reply.chunks)
        else:
            if reply.text:
                chunks.append(chunk({"content": reply.text}))
            for index, (name, arguments) in enumerate(reply.calls):
                text = json.dumps(arguments)
                pieces = [text[: len(text) // 2], text[len(text) // 2 :]]
                for i, piece in enumerate(pieces):
                    call = {"index": index, "function": {"arguments": piece}}
                    if i == 0 or reply.repeat_names:
                        call.update(id=f"call_{index}", type="function")
                        call["function"]["name"] = name
                    chunks.append(chunk({"tool_calls": [call]}))
            output = 5
        finish = (
            "tool_calls" if isinstance(reply, ToolCalls) else ("length" if reply.done_reason == "length" else "stop")
        )
        chunks.append(chunk({}, finish))
        chunks.append(
            {
                **chunk({}),
                "choices": [],
                "usage": {
                    "prompt_tokens": reply.prompt_eval_count,
                    "completion_tokens": output,
                    "total_tokens": reply.prompt_eval_count + output,
                },
            }
        )
        lines = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]
        return respond.stream("text/event-stream", lines, getattr(reply, "chunk_delay", 0.0))

    def _chunks(self, reply, model):
        def chunk(message, done=False, **extra):
            return {
                "model": model,
                "created_at": _CREATED,
                "message": {"role": "assistant", **message},
                "done": done,
                **extra,
            }

        if isinstance(reply, Text):
            parts = [chunk({"content": text}) for text in reply.chunks]
            eval_count = len(reply.chunks)
        else:
            parts = [chunk({"content": reply.text})] if reply.text else []
            calls = [{"function": {"name": name, "arguments": arguments}} for name, arguments in reply.calls]
            for group in [[call] for call in calls] if reply.separate else [calls]:
                parts.append(chunk({"content": "", "tool_calls": group}))
            eval_count = 5
        counts = (
            dict(
                prompt_eval_count=reply.prompt_eval_count,
                prompt_eval_duration=200_000,
                eval_count=eval_count,
                eval_duration=500_000,
            )
            if reply.usage
            else {}
        )
        parts.append(
            chunk(
                {"content": ""},
                done=True,
                done_reason=reply.done_reason,
                total_duration=1_000_000,
                load_duration=100_000,
                **counts,
            )
        )
        return parts

    def _model_info(self, name):
        return {
            "name": name,
            "model": name,
            "modified_at": _CREATED,
            "size": 9_000_000_000,
            "digest": "0" * 64,
            "details": {
                "format": "gguf",
                "family": "qwen2",
                "families": ["qwen2"],
                "parameter_size": "14.8B",
                "quantization_level": "Q4_K_M",
            },
        }


def _line(data) -> bytes:
    return (json.dumps(data) + "\n").encode()
