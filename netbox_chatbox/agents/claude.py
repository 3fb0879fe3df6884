"""Path A: Claude through the Claude Agent SDK and its bundled CLI, one CLI process per session.

This module is the agent's life: the CLI process starts, answers turns (a provider silent for
``anthropic_timeout`` ends the turn, retries included), is interrupted, and ends with its private home.
How the CLI is started and locked down is :mod:`.claude_cli`; how its messages become chat events,
:mod:`.claude_turn`. Importing this module imports claude_agent_sdk (1–2 s): the factory does that in a
worker thread.
"""

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time

from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ClaudeSDKError, ResultMessage, SystemMessage

from .. import resources, telemetry
from ..conf import get_settings
from ..events import Complete, Error
from .base import BaseAgent
from .claude_cli import cli_options
from .claude_turn import Turn, describe_failure

logger = logging.getLogger("netbox_chatbox.agents")


class ClaudeAgent(BaseAgent):
    """One Claude conversation: a connected ClaudeSDKClient holds its memory."""

    keeps_failed_turns = True  # the CLI's memory cannot drop a question that failed

    def __init__(self, model, user, fallback=None, history=()):
        super().__init__(model, user, fallback)
        self.history = list(history)
        self._client = None
        self._process = None  # the CLI process, once started
        self.home = None  # the CLI's private HOME, config dir and cwd; removed on close
        self.cli_model = None  # the model the CLI chose (reported at start; matters for "auto")
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
        if not self.home:
            self.home = tempfile.mkdtemp(prefix="netbox-chatbox-claude-")
            resources.temp_homes.add(self.home)
        return cli_options(self.model, self.tool_scope, self.history, self.home)

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
        turn = Turn(self)
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
        code, message = describe_failure(result, turn.api_error)
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
            model=turn.model or self.cli_model or self.model.sdk_model or self.model.id,
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


def _ms_since(started) -> int:
    return int((time.monotonic() - started) * 1000)
