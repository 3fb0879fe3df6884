"""The per-token path of the two common path B modes, read without litellm's per-call and per-chunk machinery.

``litellm.acompletion`` costs ~9 ms of CPU per call before the first byte (for Ollama it also asks the
server's ``/api/show`` twice, synchronously, in a thread) and its stream wrapper ~0.5 ms per chunk: more
than the rest of an answer together (bench/ws_bench.py). For Ollama's native API (``ollama_chat/``) and
the LiteLLM proxy's OpenAI-compatible API, this module sends the same request and reads the same stream
with httpx, and keeps litellm for what it is for: the request's translation (litellm's own
``OllamaChatConfig``), the chunks' parsing (its Ollama chunk parser; the proxy's chunks are OpenAI's) and
the errors (its exception mapping, so retries and messages are as with ``acompletion``). Every other
provider goes through ``litellm.acompletion`` as before.
"""

import json
import uuid
import weakref

import httpx
import litellm
from litellm.litellm_core_utils.exception_mapping_utils import exception_type
from litellm.llms.ollama.chat.transformation import OllamaChatCompletionResponseIterator, OllamaChatConfig
from litellm.llms.ollama.common_utils import OllamaError
from litellm.llms.openai.common_utils import OpenAIError
from litellm.types.utils import ModelResponseStream

_clients = weakref.WeakKeyDictionary()  # event loop → its httpx clients (a client's connections belong to one loop)
# Streams are spread over this many clients per loop: httpcore's pool scans all its connections (partly in
# nested loops) whenever a request starts or a response ends, which with 200 streams in one pool cost more
# CPU than reading them (py-spy, bench/ws_bench.py); the idle connections kept stay 100 in all.
POOLS = 8


def supports(arguments: dict) -> bool:
    """Whether this module reads the stream of a call with these litellm arguments."""
    return arguments["model"].startswith(("ollama_chat/", "litellm_proxy/"))


async def open_stream(arguments: dict, messages: list, tools: list, max_tokens: int, ollama=False) -> "LeanStream":
    """Send the request; raise what ``litellm.acompletion`` raises when it fails before streaming.

    ``ollama``: the proxy serves this model from Ollama (see :class:`LeanStream` for what that tells)."""
    provider, model = arguments["model"].split("/", 1)
    api_base, api_key = arguments.get("api_base"), arguments.get("api_key")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    if provider == "ollama_chat":
        config = OllamaChatConfig()
        url = config.get_complete_url(api_base, api_key, model, {}, {})
        body = config.transform_request(
            model, messages, {"stream": True, "num_predict": max_tokens, "tools": tools}, {}, headers
        )
    else:
        url = f"{api_base.rstrip('/')}/chat/completions"
        body = {
            "model": model,
            "messages": messages,
            "tools": tools,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
        }
    client = _client()
    try:
        request = client.build_request("POST", url, json=body, headers=headers, timeout=arguments["timeout"])
        response = await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise litellm.Timeout(str(exc) or "timed out", model=model, llm_provider=provider) from exc
    except httpx.TransportError as exc:
        raise litellm.APIConnectionError(repr(exc), llm_provider=provider, model=model) from exc
    if response.status_code != 200:
        text = (await response.aread()).decode(errors="replace")
        await response.aclose()
        error_class = OllamaError if provider == "ollama_chat" else OpenAIError
        raise exception_type(
            model=arguments["model"],
            original_exception=error_class(status_code=response.status_code, message=text, headers=response.headers),
            custom_llm_provider=provider,
        )
    return LeanStream(provider, response, ollama)


class LeanStream:
    """The chunks (litellm's ``ModelResponseStream``) of one streamed answer, and how the provider ended it.

    Behind the LiteLLM proxy (1.106) an Ollama stream that just stopped — no final ``done`` record, after
    a malformed line, or nothing at all — still ends with ``finish_reason: "stop"``, [DONE] and usage
    the proxy estimated. What differs is the finishing chunk's id: the proxy's Ollama parser gives every
    chunk it reads a fresh uuid, while the finish the proxy makes up repeats the previous chunk's id, or
    is a ``chatcmpl-`` id of the proxy's own when nothing came (docs/deployment.md shows the bytes).
    So for a model the proxy serves from Ollama, such a finish is no finish.
    """

    def __init__(self, provider, response, ollama=False):
        self.response = response
        self.finish_reason = None  # as the provider sent it: None if the stream just stopped
        self.reported_usage = False
        self._ollama_behind_proxy = ollama and provider == "litellm_proxy"
        if provider == "ollama_chat":
            self._chunks = _ollama_chunks(response.aiter_lines())
        else:
            self._chunks = _openai_chunks(response.aiter_lines())

    def __aiter__(self):
        return self._read()

    async def _read(self):
        seen_ids = set()
        try:
            async for chunk in self._chunks:
                if not isinstance(chunk, (ModelResponseStream, _Text)):
                    continue  # a line litellm's parser skipped (blank, malformed)
                if getattr(chunk, "usage", None):
                    self.reported_usage = True
                if chunk.choices and chunk.choices[0].finish_reason and not self._made_up(chunk.id, seen_ids):
                    self.finish_reason = chunk.choices[0].finish_reason
                seen_ids.add(chunk.id)
                yield chunk
        except httpx.TimeoutException as exc:
            raise litellm.Timeout(str(exc) or "timed out", model="", llm_provider="") from exc
        except httpx.TransportError as exc:  # a cut connection: for the agent, like litellm's
            raise litellm.APIConnectionError(repr(exc), llm_provider="", model="") from exc
        except (OllamaError, RuntimeError) as exc:  # an {"error": …} line, an unreadable one
            raise litellm.APIError(500, str(exc), llm_provider="ollama_chat", model="") from exc
        finally:
            await self.response.aclose()

    def _made_up(self, chunk_id, seen_ids) -> bool:
        """Whether the proxy, not Ollama, finished the stream (see the class's docstring). Only a repeated
        per-chunk uuid counts, so a proxy that gave all chunks one ``chatcmpl-`` id would not fail every answer."""
        if not self._ollama_behind_proxy:
            return False
        if chunk_id in seen_ids:
            return _is_uuid(chunk_id)
        return not seen_ids and str(chunk_id).startswith("chatcmpl-")


class _Text:
    """A chunk of plain text, as litellm's chunk object would read for the agent, without building one
    (pydantic: ~80 µs a chunk, the largest cost left on the per-token path)."""

    __slots__ = ("id", "model", "choices")
    usage = None

    def __init__(self, id_, model, content):
        self.id, self.model, self.choices = id_, model, (_Choice(content),)


class _Choice:
    __slots__ = ("delta",)
    finish_reason = None

    def __init__(self, content):
        self.delta = _Delta(content)


class _Delta:
    __slots__ = ("content",)
    tool_calls = None

    def __init__(self, content):
        self.content = content


async def _ollama_chunks(lines):
    """Ollama's NDJSON records, parsed by litellm's Ollama parser; plain text (the bulk) the same, more cheaply."""
    parser = OllamaChatCompletionResponseIterator(None, sync_stream=False)
    async for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # skipped, as litellm's parser does; the stream then lacks its `done` record
        if not isinstance(record, dict):
            continue
        message = record.get("message")
        if (
            record.get("done") is False
            and isinstance(message, dict)
            and message.keys() <= {"role", "content"}
            and isinstance(content := message.get("content"), str)
            and "think>" not in content
            and not parser.started_reasoning_content
        ):
            yield _Text(None, record.get("model"), content or None)
        else:
            try:
                yield parser.chunk_parser(record)
            except ValueError as exc:
                raise RuntimeError(f"Error parsing chunk: {exc}") from exc


async def _openai_chunks(lines):
    """OpenAI's streamed chunks (Server-Sent Events ``data:`` lines) as litellm's chunk objects; plain text
    the same, more cheaply."""
    async for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            continue
        if "error" in chunk:  # the proxy's error event after it started streaming
            raise litellm.APIError(500, str(chunk["error"]), llm_provider="litellm_proxy", model="")
        choices = chunk.get("choices")
        if (
            not chunk.get("usage")
            and isinstance(choices, list)
            and len(choices) == 1
            and isinstance(choice := choices[0], dict)
            and not choice.get("finish_reason")
            and isinstance(delta := choice.get("delta"), dict)
            and delta.keys() <= {"role", "content"}
            and isinstance(content := delta.get("content"), str)
        ):
            yield _Text(chunk.get("id"), chunk.get("model"), content or None)
        else:
            yield ModelResponseStream(**chunk)


def _is_uuid(text) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except (TypeError, ValueError):
        return False


def _client() -> httpx.AsyncClient:
    """The loop's next client, in turn (each made on its first use)."""
    import asyncio

    loop = asyncio.get_running_loop()
    if (pools := _clients.get(loop)) is None:
        pools = _clients[loop] = {"clients": [None] * POOLS, "next": 0}
    index = pools["next"]
    pools["next"] = (index + 1) % POOLS
    if (client := pools["clients"][index]) is None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=100 // POOLS)
        client = pools["clients"][index] = httpx.AsyncClient(limits=limits)
    return client
