"""Tool calls per period, user, source and tool: the chat's next to those of users' own AI clients (MCP).

The chat's are read from the stored answers (each assistant message's ``tool_calls``, unnested in
PostgreSQL), MCP's from :class:`~netbox_chatbox.usage_models.MCPToolCall` rows, with the same filters as
the rest of the usage view (:class:`~netbox_chatbox.usage.UsageFilterForm`). A ``model`` filter keeps only
the chat's (MCP calls have no model); ``source`` picks one side; ``tool`` narrows both.
"""

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, Trunc

from .models import Conversation, Message
from .usage import PercentileCont, bounds, in_range, rounded
from .usage_models import MCPToolCall

FIGURES = ("calls", "errors", "refused", "duration_p50_ms", "duration_p95_ms", "result_chars")
_RAN = Q(outcome__in=("ok", "error"))  # calls that ran (not refused before the tool started)


def _wants(filters, source) -> bool:
    return filters.get("source") in (None, "", source) and not (source == "mcp" and filters.get("model"))


def _chat_sql(filters):
    """One query over the answers in range, their tool calls unnested (only the two fields read), grouped by
    the stored tool name; ``ok`` missing counts as an error, as in the metrics."""
    start, end = bounds(filters)
    where = ["m.role = 'assistant'", "m.tool_calls <> '[]'::jsonb", "m.created >= %s", "m.created < %s"]
    params = [start, end]
    if filters.get("user"):
        where.append("c.owner_id = ANY(%s)")
        params.append([user.pk for user in filters["user"]])
    if filters.get("model"):
        where.append("c.model_id = ANY(%s)")
        params.append(list(filters["model"]))
    if filters.get("tool"):
        where.append("(call.tool = ANY(%s) OR left(call.tool, 5) = 'mcp__')")  # prefixed: narrowed in Python
        params.append(list(filters["tool"]))
    sql = f"""
        SELECT (date_trunc(%s, m.created AT TIME ZONE %s))::date, c.owner_id, call.tool,
               count(*), count(*) FILTER (WHERE call.ok IS NOT TRUE)
        FROM {Message._meta.db_table} m
        JOIN {Conversation._meta.db_table} c ON c.id = m.conversation_id
        CROSS JOIN LATERAL jsonb_to_recordset(m.tool_calls) AS call(tool text, ok boolean)
        WHERE {" AND ".join(where)}
        GROUP BY 1, 2, 3
    """
    return sql, [filters["period"], str(filters["tz"]), *params]


def _chat_rows(filters) -> list[dict]:
    """The chat's rows; the Claude CLI's ``mcp__<server>__`` prefix is dropped here (cheaper than in SQL)."""
    if not _wants(filters, "chat"):
        return []
    with connection.cursor() as cursor:
        cursor.execute(*_chat_sql(filters))
        found = cursor.fetchall()
    names = dict(get_user_model().objects.filter(pk__in={row[1] for row in found}).values_list("pk", "username"))
    wanted = set(filters.get("tool") or ())
    rows = {}
    for period_start, user_id, tool, calls, errors in found:
        tool = str(tool or "unknown").rsplit("__", 1)[-1]
        if wanted and tool not in wanted:
            continue
        row = rows.setdefault(
            (period_start, user_id, tool),
            {
                "period_start": period_start,
                "user_id": user_id,
                "username": names.get(user_id, ""),
                "source": "chat",
                "tool": tool,
                "calls": 0,
                "errors": 0,
                "refused": 0,
                "duration_p50_ms": None,  # the chat stores no per-call durations (the answer's is stored)
                "duration_p95_ms": None,
                "result_chars": None,
            },
        )
        row["calls"] += calls
        row["errors"] += errors
    return list(rows.values())


def _mcp_calls(filters):
    calls = in_range(MCPToolCall.objects.all(), filters, "user")
    if filters.get("tool"):
        calls = calls.filter(tool__in=filters["tool"])
    return calls


def _mcp_figures():
    return {
        "calls": Count("pk"),
        "errors": Count("pk", filter=Q(outcome="error")),
        "refused": Count("pk", filter=~_RAN),
        "duration_p50_ms": PercentileCont("duration_ms", 0.5, filter=_RAN),
        "duration_p95_ms": PercentileCont("duration_ms", 0.95, filter=_RAN),
        "result_chars": Coalesce(Sum("result_chars"), 0),
    }


def _mcp_rows(filters) -> list[dict]:
    if not _wants(filters, "mcp"):
        return []
    rows = (
        _mcp_calls(filters)
        .annotate(period_start=Trunc("created", filters["period"], tzinfo=filters["tz"]), username=F("user__username"))
        .values("period_start", "user_id", "username", "tool")
        .annotate(**_mcp_figures())
    )
    return [
        rounded({**row, "period_start": row["period_start"].astimezone(filters["tz"]).date(), "source": "mcp"})
        for row in rows
    ]


def tool_call_rows(filters) -> list[dict]:
    """One row per (period start, user, source, tool) with calls, in that order."""
    rows = _chat_rows(filters) + _mcp_rows(filters)
    return sorted(rows, key=lambda r: (r["period_start"], r["username"], r["source"], r["tool"]))


def tool_call_totals(filters, rows) -> dict:
    """{source: figures} over the whole range: the chat's summed from ``rows``, MCP's aggregated (percentiles)."""
    chat = [r for r in rows if r["source"] == "chat"]
    totals = {
        "chat": {
            **dict.fromkeys(FIGURES),
            "calls": sum(r["calls"] for r in chat),
            "errors": sum(r["errors"] for r in chat),
            "refused": 0,
        }
    }
    if _wants(filters, "mcp"):
        totals["mcp"] = rounded(_mcp_calls(filters).aggregate(**_mcp_figures()))
    else:
        totals["mcp"] = {**dict.fromkeys(FIGURES), "calls": 0, "errors": 0, "refused": 0, "result_chars": 0}
    return totals
