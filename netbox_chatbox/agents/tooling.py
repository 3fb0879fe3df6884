"""Running NetBox tools for an agent, and the ToolStart/ToolEnd events both paths emit."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

from channels.db import database_sync_to_async

from .. import grounding
from ..events import Proposed, ToolEnd, ToolStart
from ..proposals import branching
from ..tools import TOOLS, result_objects, run_tool

# Tool calls have threads of their own, not the one thread that thread-sensitive sync_to_async
# shares across every chat on the server: there, one slow query (up to tool_statement_timeout_ms)
# held up every other user's tool calls.
_tool_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="netbox-chatbox-tools")


class ToolScope:
    """Whom and where an agent's tool calls run for: the user and, per turn (:meth:`start_turn`), the
    netbox-branching branch the chat works in and the conversation its proposals link to.

    An object the agent holds, not context variables: the Claude SDK calls tools from tasks it started when
    the agent connected, which would keep the first turn's values."""

    def __init__(self, user):
        self.user = user
        self.branch = None
        self.conversation = None
        self._session = self._question = None

    def start_turn(self, session, question) -> None:
        """A turn of ``session`` begins; ``question``: the task storing its question (and a new conversation)."""
        self.branch, self.conversation = session.branch, session.conversation
        self._session, self._question = session, question

    async def settle(self) -> None:
        """Wait until the turn's question is stored, so that a proposal links to its conversation at once
        (an Apply pressed while the answer streams then names it in the change log)."""
        if self._question is not None:  # (stored: no wait)
            with suppress(Exception):  # a refused question ends the turn; its error is the turn's to report
                await asyncio.shield(self._question)
                self.conversation = self._session.conversation

    def run(self, name, arguments) -> dict:
        with branching.activated(self.branch):
            return run_tool(name, arguments, self.user, self.conversation)


async def call_tool(name: str, arguments, scope: ToolScope) -> dict:
    """Run a tool for ``scope``, off the event loop (each call is its own read-only transaction)."""
    await scope.settle()
    return await database_sync_to_async(scope.run, thread_sensitive=False, executor=_tool_threads)(name, arguments)


def result_text(result: dict) -> str:
    """What the model reads: the result as compact JSON."""
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


def tool_start(call_id: str, name: str, arguments) -> ToolStart:
    tool = TOOLS.get(name)
    summary = tool.summarize(arguments) if tool else f"unknown tool {name[:60]}"
    return ToolStart(id=call_id, tool=name, summary=summary)


def tool_end(call_id: str, name: str, result) -> ToolEnd:
    """A UI-safe outcome: ok, a short summary, and links to the NetBox objects the result names."""
    if not isinstance(result, dict):
        return ToolEnd(id=call_id, tool=name, ok=False, summary="no result")
    if "error" in result:
        error = str(result["error"])
        return ToolEnd(id=call_id, tool=name, ok=False, summary=error if len(error) <= 160 else error[:159] + "…")
    if "proposal_id" in result:
        summary = f"proposed {result['count']} change{'s' if result['count'] != 1 else ''} for your review"
    elif "count" in result:
        summary = f"{result['count']} found"
    elif "object" in result:
        summary = "found"
    else:
        summary = "done"
    return ToolEnd(
        id=call_id, tool=name, ok=True, summary=summary, objects=result_objects(result), facts=grounding.facts(result)
    )


PROPOSAL_KEYS = ("proposal_id", "summary", "status", "count", "expires", "changes", "apply_url", "branch")


def tool_events(call_id: str, name: str, result) -> list:
    """The tool's ToolEnd and, when it stored a change proposal, the Proposed event its card is drawn from."""
    end = tool_end(call_id, name, result)
    if not (end.ok and "proposal_id" in result):
        return [end]
    return [end, Proposed(id=call_id, proposal={key: result[key] for key in PROPOSAL_KEYS if key in result})]
