"""Path A: Claude through the Claude Agent SDK and its bundled CLI, one CLI process per session.

The CLI is locked down: no built-in tools (no shell, files or web), only our NetBox tools (an
in-process SDK MCP server running as the asking user), no settings, CLAUDE.md or MCP config read
from disk, a private HOME/config dir (removed on close), no transcripts on disk, no traffic other
than the model API, and prompts delivered verbatim (no ``@file`` expansion, no slash commands).
Importing this module imports claude_agent_sdk (1–2 s): the factory does that in a worker thread.
"""
import asyncio
import json
import logging
import shutil
import tempfile
import time

from claude_agent_sdk import (
    AssistantMessage, ClaudeAgentOptions, ClaudeSDKClient, ClaudeSDKError, ResultMessage, SdkMcpTool, StreamEvent,
    SystemMessage, TextBlock, ToolResultBlock, ToolUseBlock, UserMessage, create_sdk_mcp_server,
)
from claude_agent_sdk import ToolAnnotations

from .. import telemetry
from ..conf import get_settings
from ..events import Complete, Delta, Error
from ..prompts import system_prompt
from ..tools import enabled_tools
from .base import BaseAgent
from .tooling import call_tool, result_text, tool_end, tool_start

logger = logging.getLogger("netbox_chatbox.agents")

MCP_SERVER = "netbox"
TOOL_PREFIX = f"mcp__{MCP_SERVER}__"
CLI_RETRIES = 2  # CLI-side retries per API call; 3 overloaded answers in a row switch to fallback_model


def mcp_tool_names() -> list[str]:
    """The names the CLI gives our tools, i.e. the only tools it may use."""
    return [TOOL_PREFIX + name for name in enabled_tools()]


class ClaudeAgent(BaseAgent):
    """One Claude conversation: a connected ClaudeSDKClient holds its memory."""

    def __init__(self, model, user, fallback=None, history=()):
        super().__init__(model, user, fallback)
        self.history = list(history)
        self._client = None
        self.home = None  # the CLI's private HOME, config dir and cwd; removed on close
        self._cli_model = None  # the model the CLI chose (reported at start; matters for "auto")
        self._cost_so_far = 0.0  # the CLI reports the session's running cost
        self._current = None  # the running turn
        self._awaiting_result = False  # a question was sent and its result not read yet
        self._broken = False
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def options(self) -> ClaudeAgentOptions:
        settings = get_settings()
        self.home = self.home or tempfile.mkdtemp(prefix="netbox-chatbox-claude-")
        env = {
            "ANTHROPIC_API_KEY": settings.anthropic_api_key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # else the CLI calls out (measured)
            "DISABLE_AUTOUPDATER": "1",
            "ENABLE_TOOL_SEARCH": "false",
            "HOME": self.home,
            "CLAUDE_CONFIG_DIR": self.home,
            "API_TIMEOUT_MS": str(int(settings.anthropic_timeout * 1000)),
            "CLAUDE_CODE_MAX_RETRIES": str(CLI_RETRIES),
        }
        if settings.anthropic_base_url:
            env["ANTHROPIC_BASE_URL"] = settings.anthropic_base_url
        fallback_model = settings.fallback_model or None
        server = create_sdk_mcp_server(MCP_SERVER, tools=[self._mcp_tool(tool) for tool in enabled_tools().values()])
        return ClaudeAgentOptions(
            model=self.model.sdk_model,  # None for "auto": the CLI chooses
            fallback_model=fallback_model if fallback_model != self.model.sdk_model else None,
            system_prompt=system_prompt(self.user, self.history),
            mcp_servers={MCP_SERVER: server},
            tools=[],
            allowed_tools=mcp_tool_names(),
            permission_mode="dontAsk",
            setting_sources=[],
            strict_mcp_config=True,
            cwd=self.home,
            env=env,
            extra_args={"no-session-persistence": None},
            include_partial_messages=True,
            verbatim_prompts=True,
            max_turns=settings.max_tool_rounds + 1,
            stderr=lambda line: logger.debug("claude cli: %s", telemetry.redact(line)),
        )

    def _mcp_tool(self, tool) -> SdkMcpTool:
        async def handler(arguments):
            result = await call_tool(tool.name, arguments, self.user)
            return {"content": [{"type": "text", "text": result_text(result)}], "is_error": "error" in result}

        # A result above maxResultSizeChars would be saved to disk for the (disabled) Read tool.
        limit = get_settings().tool_max_chars * 4
        return SdkMcpTool(tool.name, tool.description, tool.input_schema, handler,
                          ToolAnnotations(readOnlyHint=True, maxResultSizeChars=limit))

    async def start(self):
        self._client = ClaudeSDKClient(self.options())
        try:
            await self._client.connect()
        except BaseException:
            await self.close()
            raise

    async def close(self):
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        try:
            if client is not None:
                await client.disconnect()
        finally:
            if self.home:
                shutil.rmtree(self.home, ignore_errors=True)

    async def interrupt(self):
        if self._current is not None and self._client is not None:
            self._current.interrupted = True
            try:
                await self._client.interrupt()
            except ClaudeSDKError:  # the CLI is gone: the stream reports it
                logger.warning("interrupting the Claude CLI failed", exc_info=True)

    # -- a turn ---------------------------------------------------------------------------

    async def stream(self, message):
        started = time.monotonic()
        turn = _Turn(self)
        if self._closed or self._broken:
            yield self._error(turn, "unavailable", "This Claude session has ended; start a new conversation.",
                              started)
            return
        self._current = turn
        telemetry.model_request(self.model.id, self.model.path, self.user)
        try:
            if self._awaiting_result:
                await self._drain_abandoned_turn()
            await self._client.query(message)
            self._awaiting_result = True
            if turn.interrupted:  # the user stopped before the question reached the CLI
                await self._client.interrupt()
            async for sdk_message in self._client.receive_response():
                for event in turn.handle(sdk_message):
                    yield event
                if isinstance(sdk_message, ResultMessage):
                    self._awaiting_result = False
                    yield self._end(turn, sdk_message, started)
                    return
            # The CLI went away without a result.
            self._broken = True
            if self._closed or turn.interrupted:
                yield self._complete(turn, started, interrupted=True)
            else:
                yield self._error(turn, "unavailable", "The Claude session stopped unexpectedly; start a new "
                                  "conversation.", started, "CLI exited without a result")
        except (ClaudeSDKError, TimeoutError) as exc:
            self._broken = True
            yield self._error(turn, "unavailable", "The Claude session stopped unexpectedly; start a new "
                              "conversation.", started, repr(exc))
        except Exception as exc:
            logger.exception("path A turn failed")
            yield self._error(turn, "internal_error", "Something went wrong while answering; please try again.",
                              started, repr(exc))
        finally:
            if self._current is turn:
                self._current = None

    async def _drain_abandoned_turn(self):
        """Stop a turn whose listener went away before its end; skip its messages (else they'd open this one)."""
        await self._client.interrupt()
        async with asyncio.timeout(get_settings().anthropic_timeout):
            async for sdk_message in self._client.receive_response():
                if isinstance(sdk_message, ResultMessage) and sdk_message.total_cost_usd is not None:
                    self._cost_so_far = sdk_message.total_cost_usd
        self._awaiting_result = False

    def _end(self, turn, result: ResultMessage, started):
        cost = None
        if result.total_cost_usd is not None:
            cost = max(result.total_cost_usd - self._cost_so_far, 0.0)
            self._cost_so_far = result.total_cost_usd
        if turn.interrupted or (result.terminal_reason or "").startswith("aborted"):
            return self._complete(turn, started, interrupted=True, cost=cost)
        if not result.is_error:
            return self._complete(turn, started, usage=result.usage or {}, cost=cost)
        code, message = _describe_failure(result, turn.api_error)
        return self._error(turn, code, message, started,
                           f"subtype={result.subtype} status={result.api_error_status} {result.result or ''}")

    def _complete(self, turn, started, interrupted=False, usage=None, cost=None):
        usage = usage or {}
        input_tokens = sum(usage.get(k) or 0 for k in
                           ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")) or None
        event = Complete(
            model=turn.model or self._cli_model or self.model.sdk_model or self.model.id,
            input_tokens=input_tokens, output_tokens=usage.get("output_tokens"), cost_usd=cost,
            duration_ms=_ms_since(started), interrupted=interrupted,
        )
        telemetry.model_response(self.model.id, self.model.path, duration_ms=event.duration_ms,
                                 input_tokens=event.input_tokens, output_tokens=event.output_tokens,
                                 cost_usd=cost, tool_calls=turn.tool_calls, interrupted=interrupted,
                                 answered_by=event.model, user=self.user)
        return event

    def _error(self, turn, code, message, started, detail=""):
        telemetry.model_error(self.model.id, self.model.path, code, detail, self.user, _ms_since(started))
        return Error(code=code, message=message)


class _Turn:
    """Turns the SDK's messages for one answer into chat events."""

    def __init__(self, agent: ClaudeAgent):
        self.agent = agent
        self.interrupted = False
        self.model = None  # the model that answered (from the API's own messages)
        self.api_error = None  # the CLI's error category, from its synthetic error message
        self.tool_calls = 0
        self._tools = {}  # tool_use id → our tool name
        self._streamed = set()  # API message ids whose text arrived as deltas

    def handle(self, message):
        if isinstance(message, StreamEvent):
            if message.parent_tool_use_id is None:
                yield from self._stream_event(message.event)
        elif isinstance(message, AssistantMessage):
            if message.error:
                self.api_error = message.error
                return
            self.model = message.model
            for block in message.content:
                if isinstance(block, TextBlock) and block.text and message.message_id not in self._streamed:
                    yield Delta(block.text)  # not streamed (e.g. the CLI's non-streaming retry)
                elif isinstance(block, ToolUseBlock):
                    name = block.name.removeprefix(TOOL_PREFIX)
                    self._tools[block.id] = name
                    self.tool_calls += 1
                    yield tool_start(block.id, name, block.input)
        elif isinstance(message, UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock) and block.tool_use_id in self._tools:
                    yield tool_end(block.tool_use_id, self._tools[block.tool_use_id], _parse_result(block))
        elif isinstance(message, SystemMessage) and message.subtype == "init":
            self.agent._cli_model = message.data.get("model")

    def _stream_event(self, event):
        kind = event.get("type")
        if kind == "message_start":
            self._streamed.add(event["message"].get("id"))
        elif kind == "content_block_delta" and event["delta"].get("type") == "text_delta":
            yield Delta(event["delta"]["text"])


def _parse_result(block: ToolResultBlock):
    """Our tools answer JSON text; anything else (the SDK's own validation errors) is an error."""
    content = block.content
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    try:
        result = json.loads(content or "")
    except ValueError:
        return {"error": content or "the tool failed"}
    return result if isinstance(result, dict) else {"error": "unexpected tool result"}


_BY_STATUS = {
    401: ("auth", "Claude rejected this NetBox's Anthropic API key. Ask your NetBox administrator to check it."),
    403: ("auth", "Claude rejected this NetBox's Anthropic API key. Ask your NetBox administrator to check it."),
    402: ("billing", "The Anthropic account has a billing problem. Ask your NetBox administrator."),
    404: ("model_not_found", "This Claude model is not available to this NetBox's Anthropic account."),
    429: ("rate_limited", "Claude is receiving too many requests right now. Try again in a minute."),
    400: ("bad_request", "Claude could not process this request. Try rephrasing it or start a new conversation."),
    413: ("bad_request", "The conversation is too long for Claude; start a new conversation."),
}
_BY_CATEGORY = {
    "authentication_failed": _BY_STATUS[401], "billing_error": _BY_STATUS[402],
    "rate_limit": _BY_STATUS[429], "invalid_request": _BY_STATUS[400],
}


def _describe_failure(result: ResultMessage, category) -> tuple[str, str]:
    """(code, user message) for a failed turn; never the raw provider text."""
    if result.subtype == "error_max_turns":
        rounds = get_settings().max_tool_rounds
        return "tool_limit", (f"Answering needed more than {rounds} rounds of NetBox lookups. "
                              "Ask a narrower question.")
    status = result.api_error_status
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if category in _BY_CATEGORY:
        return _BY_CATEGORY[category]
    if status is None and "timed out" in (result.result or "").lower():
        return "timeout", f"Claude did not answer within {get_settings().anthropic_timeout} s. Try again."
    if status is None:
        return "unavailable", ("Claude could not be reached. Try again in a moment; if it keeps happening, "
                               "ask your NetBox administrator.")
    return "unavailable", f"Claude is temporarily unavailable (HTTP {status}). Try again in a moment."


def _ms_since(started) -> int:
    return int((time.monotonic() - started) * 1000)
