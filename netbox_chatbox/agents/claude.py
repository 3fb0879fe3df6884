"""Path A: Claude through the Claude Agent SDK and its bundled CLI, one CLI process per session.

The CLI is locked down: no built-in tools (no shell, files or web), only our NetBox tools (an
in-process SDK MCP server running as the asking user), no settings, CLAUDE.md or MCP config read
from disk, a private HOME/config dir (removed on close), no transcripts on disk, no traffic other
than the model API, and prompts delivered verbatim (no ``@file`` expansion, no slash commands).
Importing this module imports claude_agent_sdk (1–2 s): the factory does that in a worker thread.
"""

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import claude_agent_sdk
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ClaudeSDKError,
    ResultMessage,
    SdkMcpTool,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ToolAnnotations,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    create_sdk_mcp_server,
)

from .. import resources, telemetry
from ..conf import get_settings
from ..events import Complete, Error
from ..prompts import system_prompt
from ..tools import enabled_tools
from .base import BaseAgent
from .retries import RetriedText
from .tooling import call_tool, result_text, tool_events, tool_start

logger = logging.getLogger("netbox_chatbox.agents")

MCP_SERVER = "netbox"
TOOL_PREFIX = f"mcp__{MCP_SERVER}__"
CLI_RETRIES = 2  # CLI-side retries per API call; 3 overloaded answers in a row switch to fallback_model


# The CLI is started through this launcher: it asks Linux to kill it when the thread that started it ends
# (prctl PR_SET_PDEATHSIG; the SDK's subprocess options offer no preexec hook), so a NetBox worker that
# dies (OOM killer, SIGKILL, a crash) takes its CLI processes with it instead of leaving ~250 MB orphans
# that keep reading the provider's stream. The check of the parent closes the race with a parent that died
# before prctl ran.
_LAUNCHER = """#!{python} -IS
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != {parent}:
    sys.exit("netbox-chatbox: the NetBox process that started the Claude CLI is gone")
os.execv({cli!r}, [{cli!r}, *sys.argv[1:]])
"""


def bundled_cli() -> str | None:
    """The CLI that claude-agent-sdk's wheel bundles (None: the SDK looks for one itself)."""
    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    return str(path) if path.is_file() else shutil.which("claude")


def cli_launcher(home: str) -> str | None:
    """Write the launcher into the CLI's private home; its path is the SDK's ``cli_path`` (Linux only)."""
    cli = bundled_cli()
    if cli is None or not sys.platform.startswith("linux"):
        return None
    path = Path(home) / "claude-launcher"
    path.write_text(_LAUNCHER.format(python=sys.executable, parent=os.getpid(), cli=cli))
    path.chmod(0o700)
    return str(path)


def mcp_tool_names() -> list[str]:
    """The names the CLI gives our tools, i.e. the only tools it may use."""
    return [TOOL_PREFIX + name for name in enabled_tools()]


class ClaudeAgent(BaseAgent):
    """One Claude conversation: a connected ClaudeSDKClient holds its memory."""

    keeps_failed_turns = True  # the CLI's memory cannot drop a question that failed

    def __init__(self, model, user, fallback=None, history=()):
        super().__init__(model, user, fallback)
        self.history = list(history)
        self._client = None
        self._process = None  # the CLI process, once started
        self.home = None  # the CLI's private HOME, config dir and cwd; removed on close
        self._cli_model = None  # the model the CLI chose (reported at start; matters for "auto")
        self._cost_so_far = 0.0  # the CLI reports the session's running cost
        self._current = None  # the running turn
        self._awaiting_result = False  # a question was sent and its result not read yet
        self._broken = False
        self._closed = False

    @property
    def broken(self) -> bool:
        return self._broken or self._closed

    # -- lifecycle ------------------------------------------------------------------------

    def options(self) -> ClaudeAgentOptions:
        settings = get_settings()
        if not self.home:
            self.home = tempfile.mkdtemp(prefix="netbox-chatbox-claude-")
            resources.temp_homes.add(self.home)
        env = {
            "ANTHROPIC_API_KEY": settings.anthropic_api_key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # else the CLI calls out (measured)
            "DISABLE_AUTOUPDATER": "1",
            "ENABLE_TOOL_SEARCH": "false",
            "HOME": self.home,
            "CLAUDE_CONFIG_DIR": self.home,
            "API_TIMEOUT_MS": str(int(settings.anthropic_timeout * 1000)),
            "CLAUDE_CODE_MAX_RETRIES": str(CLI_RETRIES),
            "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(settings.max_output_tokens),
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
            cli_path=cli_launcher(self.home),
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
        return SdkMcpTool(
            tool.name,
            tool.description,
            tool.input_schema,
            handler,
            ToolAnnotations(readOnlyHint=True, maxResultSizeChars=limit),
        )

    async def start(self):
        self._client = ClaudeSDKClient(self.options())
        try:
            await self._client.connect()
        except BaseException:
            await self.close()
            raise
        # The CLI's process (the SDK keeps it on its transport), so close() can make sure it ends.
        self._process = getattr(getattr(self._client, "_transport", None), "_process", None)
        if self._process is not None:
            resources.cli_processes[self._process.pid] = self._process

    async def close(self):
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if self._broken:  # mid-request or dead: nothing to end gracefully (the SDK would wait 5 s for it)
            self._kill()
        try:
            if client is not None:
                await client.disconnect()
        finally:
            # The SDK's own escalation is skipped when an asyncio cancellation reaches disconnect()
            # (e.g. a client that hung up): then the CLI would live on. Killing is synchronous.
            self._kill()
            if self._process is not None:
                resources.cli_processes.pop(self._process.pid, None)
            if self.home:
                shutil.rmtree(self.home, ignore_errors=True)
                resources.temp_homes.discard(self.home)

    def _kill(self):
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()

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
            yield self._error(turn, "unavailable", "This Claude session has ended; start a new conversation.", started)
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
            async for sdk_message in self._provider_messages(turn):
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
                yield self._error(
                    turn,
                    "unavailable",
                    "The Claude session stopped unexpectedly; please ask again.",
                    started,
                    "CLI exited without a result",
                )
        except _ProviderSilent:
            self._broken = True  # mid-request: the session replaces this CLI
            yield self._error(
                turn,
                "timeout",
                f"Claude did not answer within {get_settings().anthropic_timeout} s. Try again.",
                started,
                "no answer within anthropic_timeout, retries included",
            )
        except (ClaudeSDKError, TimeoutError) as exc:
            self._broken = True
            yield self._error(
                turn, "unavailable", "The Claude session stopped unexpectedly; please ask again.", started, repr(exc)
            )
        except Exception as exc:
            logger.exception("path A turn failed")
            yield self._error(
                turn, "internal_error", "Something went wrong while answering; please try again.", started, repr(exc)
            )
        finally:
            if self._current is turn:
                self._current = None

    async def _provider_messages(self, turn):
        """The CLI's messages for this turn, ending in _ProviderSilent when the provider has been silent
        for ``anthropic_timeout`` s: the CLI's retries included (its retry notes are no answer; its own
        timeout is per attempt), the time our tools take excepted."""
        limit = get_settings().anthropic_timeout
        loop = asyncio.get_running_loop()
        messages = aiter(self._client.receive_response())
        deadline = loop.time() + limit
        while True:
            try:
                async with asyncio.timeout_at(None if turn.tools_running else deadline):
                    message = await anext(messages)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise _ProviderSilent from None
            if not (isinstance(message, SystemMessage) and message.subtype in ("api_retry", "status")):
                deadline = loop.time() + limit
            yield message

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
            # an aborted request may have no usage in the result: what its stream reported then
            usage = result.usage if (result.usage or {}).get("input_tokens") else turn.streamed_usage()
            return self._complete(turn, started, interrupted=True, usage=usage, cost=cost)
        truncated = "max_tokens" in (result.stop_reason, turn.stop_reason)
        if not result.is_error or truncated:  # (the CLI resumes a cut answer a few times, then calls it an error)
            return self._complete(turn, started, usage=result.usage or {}, cost=cost, truncated=truncated)
        code, message = _describe_failure(result, turn.api_error)
        return self._error(
            turn,
            code,
            message,
            started,
            f"subtype={result.subtype} status={result.api_error_status} {result.result or ''}",
        )

    def _complete(self, turn, started, interrupted=False, usage=None, cost=None, truncated=False):
        usage = usage or {}
        input_tokens = (
            sum(usage.get(k) or 0 for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
            or None
        )
        event = Complete(
            model=turn.model or self._cli_model or self.model.sdk_model or self.model.id,
            input_tokens=input_tokens,
            output_tokens=usage.get("output_tokens"),
            cost_usd=cost,
            duration_ms=_ms_since(started),
            interrupted=interrupted,
            truncated=truncated,
        )
        telemetry.model_response(
            self.model.id,
            self.model.path,
            duration_ms=event.duration_ms,
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
            cost_usd=cost,
            tool_calls=turn.tool_calls,
            interrupted=interrupted,
            answered_by=event.model,
            user=self.user,
        )
        return event

    def _error(self, turn, code, message, started, detail=""):
        telemetry.model_error(self.model.id, self.model.path, code, detail, self.user, _ms_since(started))
        return Error(code=code, message=message)


class _ProviderSilent(Exception):
    """The provider did not answer within ``anthropic_timeout``."""


class _Turn:
    """Turns the SDK's messages for one answer into chat events."""

    def __init__(self, agent: ClaudeAgent):
        self.agent = agent
        self.interrupted = False
        self.model = None  # the model that answered (from the API's own messages)
        self.api_error = None  # the CLI's error category, from its synthetic error message
        self.tool_calls = 0
        self.tools_running = 0  # tool calls whose result is not back yet
        self._tools = {}  # tool_use id → our tool name
        self._streamed = set()  # API message ids whose text arrived as deltas
        self.text = RetriedText()
        self._usage = {}  # API message id → its usage, as its stream reported it
        self._message_id = None
        self.stop_reason = None  # of the last API message that ended as its protocol ends

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
                    # not streamed (e.g. the CLI's non-streaming retry): a whole message at once
                    self._streamed.add(message.message_id)
                    self.text.start()
                    yield from self.text.text(block.text)
                    yield from self.text.stop()
                elif isinstance(block, ToolUseBlock):
                    name = block.name.removeprefix(TOOL_PREFIX)
                    self._tools[block.id] = name
                    self.tool_calls += 1
                    self.tools_running += 1
                    yield tool_start(block.id, name, block.input)
        elif isinstance(message, UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock) and block.tool_use_id in self._tools:
                    self.tools_running = max(self.tools_running - 1, 0)
                    yield from tool_events(block.tool_use_id, self._tools[block.tool_use_id], _parse_result(block))
        elif isinstance(message, SystemMessage) and message.subtype == "init":
            self.agent._cli_model = message.data.get("model")

    def streamed_usage(self) -> dict:
        """The turn's usage as the API messages' streams reported it (for a turn without a result's)."""
        return _sum_usage(self._usage.values())

    def _stream_event(self, event):
        kind = event.get("type")
        if kind == "message_start":
            self._streamed.add(event["message"].get("id"))
            self._message_id = event["message"].get("id")
            self._usage[self._message_id] = dict(event["message"].get("usage") or {})
            self.text.start()
        elif kind == "content_block_delta" and event["delta"].get("type") == "text_delta":
            yield from self.text.text(event["delta"]["text"])
        if kind == "message_delta" and event.get("usage"):
            self._usage.setdefault(self._message_id, {}).update(event["usage"])
        if kind == "message_delta" and event.get("delta", {}).get("stop_reason"):
            self.stop_reason = event["delta"]["stop_reason"]
            yield from self.text.stop()


def _sum_usage(usages) -> dict:
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    return {key: sum(usage.get(key) or 0 for usage in usages) for key in keys}


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
    "authentication_failed": _BY_STATUS[401],
    "billing_error": _BY_STATUS[402],
    "rate_limit": _BY_STATUS[429],
    "invalid_request": _BY_STATUS[400],
}


def _describe_failure(result: ResultMessage, category) -> tuple[str, str]:
    """(code, user message) for a failed turn; never the raw provider text."""
    if result.subtype == "error_max_turns":
        rounds = get_settings().max_tool_rounds
        return "tool_limit", (f"Answering needed more than {rounds} rounds of NetBox lookups. Ask a narrower question.")
    status = result.api_error_status
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if category in _BY_CATEGORY:
        return _BY_CATEGORY[category]
    if status is None and "timed out" in (result.result or "").lower():
        return "timeout", f"Claude did not answer within {get_settings().anthropic_timeout} s. Try again."
    if status is None:
        return "unavailable", (
            "Claude could not be reached. Try again in a moment; if it keeps happening, ask your NetBox administrator."
        )
    return "unavailable", f"Claude is temporarily unavailable (HTTP {status}). Try again in a moment."


def _ms_since(started) -> int:
    return int((time.monotonic() - started) * 1000)
