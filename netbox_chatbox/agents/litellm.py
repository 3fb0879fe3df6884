"""Path B: models behind LiteLLM, through the LiteLLM proxy or straight to Ollama.

Proxy mode (``litellm_proxy_url`` set): the catalog's ``litellm_model`` is a model name in the
proxy's config; the master key goes as a Bearer key. Direct mode: ``litellm_model`` is a LiteLLM
model string (``ollama_chat/…`` calls ``ollama_base_url``). The tool loop runs here, at most
``max_tool_rounds`` rounds of tool calls per answer. Conversation memory is the message list.
Importing this module imports litellm (4–6 s): the factory does that in a worker thread.
"""

import asyncio
import logging
import os
import time

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # else litellm downloads a price list at import

import litellm  # noqa: E402
import openai  # noqa: E402  (litellm's exceptions subclass openai's)

from .. import endpoints, telemetry  # noqa: E402
from ..conf import get_settings  # noqa: E402
from ..events import Complete, Delta, Error  # noqa: E402
from ..prompts import system_prompt  # noqa: E402
from ..tools import enabled_tools  # noqa: E402
from . import lean_stream  # noqa: E402
from .base import BaseAgent  # noqa: E402
from .streamed_calls import StreamedCalls  # noqa: E402
from .tooling import call_tool, result_text, tool_events, tool_start  # noqa: E402

litellm.suppress_debug_info = True
# Else counting a "llama…" model's tokens downloads a tokenizer from huggingface.co (tens of seconds offline).
litellm.disable_hf_tokenizer_download = True
logger = logging.getLogger("netbox_chatbox.agents")

_DONE = object()


def function_schemas() -> list[dict]:
    """The NetBox tools as OpenAI-style function definitions."""
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}
        for t in enabled_tools().values()
    ]


class LiteLLMAgent(BaseAgent):
    def __init__(self, model, user, fallback=None, history=()):
        super().__init__(model, user, fallback)
        self.messages = [{"role": "system", "content": system_prompt(user)}]
        self.messages += [
            {"role": m["role"], "content": m["content"]}
            for m in history
            if m.get("role") in ("user", "assistant") and m.get("content")
        ]
        self._task = None  # the running turn
        self._closed = False

    def call_arguments(self) -> dict:
        """Model, endpoint and key for litellm, per the admin's mode; ConfigurationError if misconfigured."""
        settings = get_settings()
        common = {"timeout": settings.litellm_timeout, "num_retries": 0}  # we retry: see _open_stream
        if settings.litellm_proxy_url:
            return {
                "model": f"litellm_proxy/{self.model.litellm_model}",
                "api_base": settings.litellm_proxy_url,
                "api_key": settings.litellm_master_key,
                **common,
            }
        if self.model.provider == "anthropic":  # allow_anthropic_via_litellm, direct mode
            extra = {"api_base": settings.anthropic_base_url} if settings.anthropic_base_url else {}
            return {"model": self.model.litellm_model, "api_key": settings.anthropic_api_key, **extra, **common}
        return {**endpoints.direct_arguments(self.model), **common}

    async def start(self):
        pass  # nothing to open: each turn is one or more HTTP requests

    async def close(self):
        self._closed = True
        await self.interrupt()

    async def interrupt(self):
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _stop_running_turn(self):
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def stream(self, message):
        """Run the turn in its own task (so interrupt() can cancel it) and pass its events on."""
        if self._closed:
            yield Error(code="unavailable", message="This chat session has ended; start a new conversation.")
            return
        await self._stop_running_turn()  # one whose listener went away without closing its stream
        queue = asyncio.Queue()
        self._task = asyncio.ensure_future(self._turn(message, queue))
        try:
            while (event := await queue.get()) is not _DONE:
                yield event
        finally:
            if not self._task.done():  # the consumer stopped listening
                self._task.cancel()

    async def _turn(self, message, queue):
        started = time.monotonic()
        turn = _Usage()
        before = len(self.messages)
        self.messages.append({"role": "user", "content": message})
        telemetry.model_request(self.model.id, self.model.path, self.user)
        try:
            end = await self._answer(queue, turn, started)
            if isinstance(end, Error):
                del self.messages[before:]  # a failed turn leaves no trace: asking again is not asked twice
            await queue.put(end)
        except asyncio.CancelledError:
            if turn.text:  # keep what was said, so the next question has that context
                self.messages.append({"role": "assistant", "content": turn.text})
            await queue.put(self._complete(turn, started, interrupted=True))
        except Exception as exc:
            del self.messages[before:]
            code, text = _describe_failure(exc)
            if code == "internal_error":
                logger.exception("path B turn failed")
            elif code == "configuration":
                logger.error(
                    "model %s is not configured correctly: %s",
                    self.model.id,
                    telemetry.redact(_configuration_problem(exc)),
                )
            telemetry.model_error(self.model.id, self.model.path, code, repr(exc), self.user, _ms_since(started))
            await queue.put(Error(code=code, message=text))
        finally:
            await queue.put(_DONE)

    async def _answer(self, queue, turn, started):
        settings = get_settings()
        tools = function_schemas()
        for round_ in range(settings.max_tool_rounds + 1):
            text, calls = await self._call_model(queue, turn, tools)
            turn.text = ""
            if not calls:
                self.messages.append({"role": "assistant", "content": text})
                return self._complete(turn, started)
            if round_ == settings.max_tool_rounds:
                break
            self.messages.append(
                {
                    "role": "assistant",
                    "content": text or None,
                    "tool_calls": [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                        for c in calls
                    ],
                }
            )
            for call in calls:
                await queue.put(tool_start(call["id"], call["name"], call["parsed"]))
                if isinstance(call["parsed"], dict):
                    result = await call_tool(call["name"], call["parsed"], self.tool_scope)
                else:
                    result = {"error": "the tool arguments were not a JSON object"}
                turn.tool_calls += 1
                for event in tool_events(call["id"], call["name"], result):  # ToolEnd (and Proposed)
                    await queue.put(event)
                self.messages.append({"role": "tool", "tool_call_id": call["id"], "content": result_text(result)})
        telemetry.model_error(self.model.id, self.model.path, "tool_limit", "", self.user, _ms_since(started))
        return Error(
            code="tool_limit",
            message=f"Answering needed more than {settings.max_tool_rounds} rounds "
            "of NetBox lookups. Ask a narrower question.",
        )

    async def _call_model(self, queue, turn, tools):
        """One streamed completion: text goes out as deltas; returns (text, tool calls)."""
        arguments = self.call_arguments()
        response = await self._open_stream(tools, arguments)
        calls = StreamedCalls()
        usage = None
        async for chunk in _with_idle_timeout(response, arguments["timeout"]):
            turn.model = turn.model or getattr(chunk, "model", None)
            usage = getattr(chunk, "usage", None) or usage
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta.content:
                turn.text += delta.content
                await queue.put(Delta(delta.content))
            for piece in delta.tool_calls or ():
                calls.add(piece)
        if not _provider_finished(response):  # e.g. a crash after HTTP 200, or a line litellm skipped
            raise StreamBroken("the stream ended without the provider's finish reason")
        turn.truncated = turn.truncated or _finish_reason(response) == "length"
        self._count_usage(turn, usage, response, tools)
        return turn.text, calls.result()

    def _count_usage(self, turn, usage, response, tools):
        """Add one call's tokens and cost to the turn; estimate (and say so) what the provider did not report.

        litellm's own estimate leaves the tool schemas out of the prompt (measured: 203–537 tokens
        counted against ~1,460 sent), so the prompt is counted again here with them."""
        prompt, completion = (usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else (0, 0)
        if not _provider_reported_usage(response):
            turn.usage_estimated = True
            try:
                prompt = litellm.token_counter(model=self.model.litellm_model, messages=self.messages, tools=tools)
            except Exception:
                logger.debug("counting the prompt's tokens failed", exc_info=True)
        turn.add_usage(prompt, completion, self.model)

    async def _open_stream(self, tools, arguments):
        """Start a streamed completion, retrying ``litellm_max_retries`` times what failed before streaming.

        Our own loop: litellm's num_retries needs tenacity (absent: it silently does not retry) and
        counts attempts, not retries. The proxy's config does not retry, so retries never multiply.
        """
        retries = get_settings().litellm_max_retries
        for attempt in range(retries + 1):
            try:
                if lean_stream.supports(arguments):
                    return await lean_stream.open_stream(
                        arguments,
                        self.messages,
                        tools,
                        get_settings().max_output_tokens,
                        ollama=self.model.provider == "ollama",
                    )
                return await litellm.acompletion(
                    messages=self.messages,
                    tools=tools,
                    stream=True,
                    stream_options={"include_usage": True},
                    max_tokens=get_settings().max_output_tokens,
                    **arguments,
                )
            except openai.APIError as exc:
                if attempt == retries or not _retryable(exc):
                    raise
                logger.info("model call failed (%s), retry %d of %d", type(exc).__name__, attempt + 1, retries)
                await asyncio.sleep(min(0.25 * 2**attempt, 4))

    def _complete(self, turn, started, interrupted=False):
        event = Complete(
            model=turn.model or self.model.litellm_model,
            input_tokens=turn.input_tokens,
            output_tokens=turn.output_tokens,
            cost_usd=turn.cost,
            duration_ms=_ms_since(started),
            interrupted=interrupted,
            truncated=turn.truncated,
            usage_estimated=turn.usage_estimated,
        )
        telemetry.model_response(
            self.model.id,
            self.model.path,
            duration_ms=event.duration_ms,
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
            cost_usd=event.cost_usd,
            tool_calls=turn.tool_calls,
            interrupted=interrupted,
            answered_by=event.model,
            user=self.user,
        )
        return event


class _Usage:
    """What one answer used, over all its model calls."""

    def __init__(self):
        self.model = None
        self.text = ""  # of the current model call
        self.input_tokens = None
        self.output_tokens = None
        self.cost = None
        self.tool_calls = 0
        self.truncated = False
        self.usage_estimated = False

    def add_usage(self, prompt, completion, entry):
        self.input_tokens = (self.input_tokens or 0) + prompt
        self.output_tokens = (self.output_tokens or 0) + completion
        try:
            cost = (
                0.0
                if entry.is_local
                else sum(
                    litellm.cost_per_token(
                        model=entry.litellm_model, prompt_tokens=prompt, completion_tokens=completion
                    )
                )
            )
        except Exception:  # not in LiteLLM's price list
            cost = None
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


class StreamBroken(Exception):
    """A stream that started did not end the way its protocol ends: an error, not an answer."""


def _provider_reported_usage(response) -> bool:
    """Whether the provider's own chunks carried usage (litellm estimates it at the end otherwise)."""
    if isinstance(response, lean_stream.LeanStream):
        return response.reported_usage
    chunks = getattr(response, "chunks", None)
    if chunks is None:
        return True  # not litellm's wrapper: nothing to tell
    return any(getattr(chunk, "usage", None) for chunk in chunks)


def _finish_reason(response):
    if isinstance(response, lean_stream.LeanStream):
        return response.finish_reason
    return getattr(response, "received_finish_reason", None) or getattr(response, "intermittent_finish_reason", None)


def _provider_finished(response) -> bool:
    """Whether the provider itself ended the stream (Ollama's ``done`` record, an OpenAI finish_reason).

    litellm's stream wrapper adds ``finish_reason: "stop"`` to a stream that just stopped; what the
    provider really sent is in its ``received_finish_reason``/``intermittent_finish_reason``. (Behind a
    LiteLLM proxy the proxy's own litellm has already added it: there the cut is not visible.)
    """
    if not isinstance(response, lean_stream.LeanStream) and not hasattr(response, "received_finish_reason"):
        return True  # not litellm's wrapper: nothing to tell
    return bool(_finish_reason(response))


async def _with_idle_timeout(response, seconds):
    """The stream's chunks, failing with litellm.Timeout if the provider goes silent for ``seconds``
    and with StreamBroken if it fails once it has started (an error line, a cut connection)."""
    iterator = response.__aiter__()
    started = False
    while True:
        try:
            async with asyncio.timeout(seconds):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise litellm.Timeout(f"no data for {seconds} s", model="", llm_provider="") from None
        except (openai.APIError, litellm.exceptions.APIError, ValueError, OSError) as exc:
            if not started or _configuration_problem(exc):
                raise
            raise StreamBroken(repr(exc)) from exc
        started = True
        yield chunk


def _retryable(exc) -> bool:
    """Server-side trouble worth one more try; not timeouts (they would double the wait) or our mistakes."""
    if isinstance(exc, openai.APITimeoutError) or _configuration_problem(exc):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _describe_failure(exc) -> tuple[str, str]:
    """(code, user message) for a failed call; never the raw provider text (it may name hosts or keys)."""
    settings = get_settings()
    server = "The LiteLLM proxy" if settings.litellm_proxy_url else "The model server"
    if _configuration_problem(exc):
        return "configuration", endpoints.MISCONFIGURED
    if isinstance(exc, StreamBroken):
        return "provider_error", "The model's answer broke off before its end. Try again."
    if isinstance(exc, litellm.Timeout):
        return "timeout", f"The model did not answer within {settings.litellm_timeout} s. Try again."
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)) or (
        # a LiteLLM proxy without a database answers an unknown key with 400 "No connected db."
        isinstance(exc, litellm.BadRequestError) and "no connected db" in str(exc).lower()
    ):
        return "auth", f"{server} rejected this NetBox's credentials. Ask your NetBox administrator to check them."
    if isinstance(exc, litellm.ContextWindowExceededError):
        return "bad_request", "The conversation is too long for this model; start a new conversation."
    if isinstance(exc, litellm.NotFoundError):
        return "model_not_found", f"{server} does not offer this model. Ask your NetBox administrator."
    if isinstance(exc, litellm.RateLimitError):
        return "rate_limited", "The model is receiving too many requests right now. Try again in a minute."
    if isinstance(exc, litellm.BadRequestError):
        return "bad_request", "The model could not process this request. Try rephrasing it."
    if isinstance(exc, openai.APIConnectionError):
        return "unavailable", f"{server} is not reachable. Try again later or pick another model."
    if isinstance(exc, openai.APIError):
        return "unavailable", f"{server} failed to answer. Try again in a moment."
    return "internal_error", "Something went wrong while answering; please try again."


# What litellm says when this NetBox's settings, not the server, are at fault (litellm 1.106).
_CONFIGURATION_MESSAGES = ("llm provider not provided", "missing credentials", "api_key client option must be set")


def _configuration_problem(exc) -> str:
    """The admin's part of ``exc`` when it comes from this NetBox's configuration, else ""."""
    if isinstance(exc, endpoints.ConfigurationError):
        return str(exc)
    text = str(exc)
    if isinstance(exc, openai.OpenAIError) and any(marker in text.lower() for marker in _CONFIGURATION_MESSAGES):
        return text
    return ""


def _ms_since(started) -> int:
    return int((time.monotonic() - started) * 1000)
