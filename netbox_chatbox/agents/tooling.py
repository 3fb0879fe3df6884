"""Running NetBox tools for an agent, and the ToolStart/ToolEnd events both paths emit."""

import json
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async

from .. import grounding
from ..events import Proposed, ToolEnd, ToolStart
from ..tools import TOOLS, result_objects, run_tool

# Tool calls have threads of their own, not the one thread that thread-sensitive sync_to_async
# shares across every chat on the server: there, one slow query (up to tool_statement_timeout_ms)
# held up every other user's tool calls.
_tool_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="netbox-chatbox-tools")


async def call_tool(name: str, arguments, user) -> dict:
    """Run a tool as ``user``, off the event loop (each call is its own read-only transaction)."""
    return await database_sync_to_async(run_tool, thread_sensitive=False, executor=_tool_threads)(name, arguments, user)


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
