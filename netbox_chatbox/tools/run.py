"""Running one tool: arguments validated against its schema, the handler run as the asking user in a
read-only transaction with a statement timeout, errors capped, and the result kept under the size caps."""

import json
import logging

from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..conf import get_settings
from ..proposals import branching, tools as proposal_tools
from .registry import TOOLS, Tool
from .types import ToolError, scrub
from .visibility import one_call

logger = logging.getLogger("netbox_chatbox.tools")

_validators = {name: Draft202012Validator(tool.input_schema) for name, tool in TOOLS.items()}


def _argument_error(name, arguments) -> str | None:
    if not isinstance(arguments, dict):
        return "arguments must be a JSON object"
    error = best_match(_validators[name].iter_errors(arguments))
    if error is None:
        return None
    where = ".".join(str(p)[:60] for p in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:299] + "…"
    return f"invalid arguments for {name}: {where + ': ' if where else ''}{message}"


MAX_ERROR_CHARS = 500


def enabled_tools() -> dict[str, Tool]:
    """The tools offered to models and MCP clients: proposal tools only when the admin enabled changes."""
    changes = get_settings().enable_changes
    return {name: tool for name, tool in TOOLS.items() if changes or not tool.writes_proposal}


def run_tool(name: str, arguments: dict, user, conversation=None) -> dict:
    """Run one tool as ``user``. Never raises: bad input comes back as {"error": "…"} for the model,
    at most MAX_ERROR_CHARS long (an error never echoes unbounded input).

    Read tools run in a read-only transaction (on the active branch's connection too); a proposal tool's writes
    are rolled back and only the Proposal (linked to ``conversation``) is stored afterwards, in a transaction
    of its own."""
    result = _run(name, arguments, user, conversation)
    if isinstance(result.get("error"), str) and len(result["error"]) > MAX_ERROR_CHARS:
        result["error"] = result["error"][: MAX_ERROR_CHARS - 1] + "…"
    return result


def _run(name, arguments, user, conversation) -> dict:
    tools = enabled_tools()
    tool = tools.get(name)
    if tool is None:
        return {"error": f"unknown tool {str(name)[:60]!r}; available tools: {', '.join(tools)}"}
    if arguments is None:
        arguments = {}
    if isinstance(arguments, dict):  # models often send null for an argument they mean to omit
        arguments = {key: value for key, value in arguments.items() if value is not None}
    if message := _argument_error(name, arguments):
        return {"error": message}
    settings = get_settings()
    try:
        # Every connection the tool may read through: in a netbox-branching branch, its schema's too.
        with branching.atomic(rollback=True) as used:
            for connection in used:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT set_config('statement_timeout', %s, true), "
                        "set_config('transaction_read_only', %s, true)",
                        [str(settings.tool_statement_timeout_ms), "off" if tool.writes_proposal else "on"],
                    )
            with one_call():
                result = tool.handler(user, **arguments)
            # Serialize inside the transaction (lazy values), then roll back: tools never write, and
            # the local settings above must not outlive the call (e.g. inside a caller's transaction).
            if not tool.writes_proposal:  # a proposal's draft is JSON already; store() keeps it whole
                result = json.loads(json.dumps(scrub(result), cls=DjangoJSONEncoder))
        if tool.writes_proposal:  # stored only now, outside the rolled-back transaction
            result = proposal_tools.store(user, result, conversation)
    except ToolError as e:
        return {"error": str(e)}
    except OperationalError as e:
        if getattr(e.__cause__, "sqlstate", None) == "57014":  # query_canceled
            return {
                "error": f"the query took longer than {settings.tool_statement_timeout_ms} ms and was "
                "cancelled; narrow it with filters or a smaller limit"
            }
        logger.exception("tool %s failed", name)
        return {"error": f"{name} failed because of a database error; try again or change the arguments"}
    except Exception:
        logger.exception("tool %s failed", name)
        return {"error": f"{name} failed unexpectedly; try different arguments"}
    return fit(result, settings.tool_max_chars)


LIST_KEYS = ("results", "changes", "groups")


def fit(result: dict, max_chars: int) -> dict:
    """Keep a result under ``max_chars`` of JSON: drop trailing items first, then shorten long values.

    Whatever is cut is said so in ``truncated``, and ``has_more`` / ``next_offset`` say how to get the rest.
    """

    def size(value):
        return len(json.dumps(value, ensure_ascii=False))

    if size(result) <= max_chars:
        return result
    key = next((k for k in LIST_KEYS if isinstance(result.get(k), list) and result[k]), None)
    if key:
        items, low, high = result[key], 0, len(result[key])
        while low < high:  # the most items that fit
            middle = (low + high + 1) // 2
            if size({**result, key: items[:middle]}) + 200 <= max_chars:
                low = middle
            else:
                high = middle - 1
        if low:
            kept = {**result, key: items[:low], "returned": low, "has_more": True}
            if "offset" in result:
                kept["next_offset"] = result["offset"] + low
            kept["truncated"] = (
                f"only {low} of {len(items)} items fit the {max_chars}-character limit; "
                "ask for fewer fields or page with offset"
            )
            return kept
    shortened = _shorten(result, 200)
    shortened["truncated"] = f"long values were cut to stay under the {max_chars}-character limit"
    if size(shortened) <= max_chars:
        return shortened
    return {
        "truncated": f"the result exceeds the {max_chars}-character limit; ask for fewer fields or a smaller limit",
        "has_more": True,
    }


def _shorten(value, chars):
    if isinstance(value, dict):
        return {k: _shorten(v, chars) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, chars) for v in value]
    if isinstance(value, str) and len(value) > chars:
        return value[:chars] + "…"
    return value


def result_objects(result: dict) -> list[dict]:
    """Up to 10 NetBox objects a result mentions, as {display, url}, for links in the UI."""
    if not isinstance(result, dict):
        return []
    found, candidates = [], [result.get("object")]
    for key in LIST_KEYS:
        for item in result.get(key) or []:  # change log entries name their object under "object"
            candidates.append(item.get("object") if isinstance(item, dict) and "object" in item else item)
    for item in candidates:
        if isinstance(item, dict) and item.get("url") and item.get("display"):
            link = {"display": str(item["display"]), "url": item["url"]}
            if link not in found:
                found.append(link)
        if len(found) == 10:
            break
    return found
