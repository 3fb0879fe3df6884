"""Running NetBox tools for an agent, and the ToolStart/ToolEnd events both paths emit."""
import json

from asgiref.sync import sync_to_async

from ..events import ToolEnd, ToolStart
from ..tools import TOOLS, result_objects, run_tool


async def call_tool(name: str, arguments, user) -> dict:
    """Run a tool as ``user``; the ORM work runs in Django's sync thread, briefly."""
    return await sync_to_async(run_tool)(name, arguments, user)


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
    if "count" in result:
        summary = f"{result['count']} found"
    elif "object" in result:
        summary = "found"
    else:
        summary = "done"
    return ToolEnd(id=call_id, tool=name, ok=True, summary=summary, objects=result_objects(result))
