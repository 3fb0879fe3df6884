"""The usage page (/plugins/chatbox/usage/): figures per period, user and model, a chart, and tool calls per
period, user, source (chat, MCP) and tool; each table sorts, pages and exports CSV like NetBox's lists.

Who may see it: superusers, and users granted the custom action ``view_usage`` on "Chatbox |
conversation". It shows figures and usernames only, never a conversation's title or content.
"""

import django_tables2 as tables
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views import View
from django_tables2.export import TableExport

from . import usage, usage_chart, usage_tools
from .permissions import can_view_usage

CHART_FIGURES = {
    "answers": "Answers",
    "tokens": "Tokens (in + out)",
    "cost_usd": "Cost (USD)",
    "errors": "Errors",
    "fallbacks": "Fallbacks",
    "tool_calls": "Tool calls",
}


class _Number(tables.Column):
    attrs = {"td": {"class": "text-end"}, "th": {"class": "text-end"}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, attrs=self.attrs, **kwargs)


class _FiguresTable(tables.Table):
    """Aggregated rows (dicts), sortable by any column like NetBox's lists (``?sort=-cost_usd``), exported as CSV."""

    period_start = tables.DateColumn(verbose_name="Period", format="Y-m-d")
    username = tables.Column(verbose_name="User")
    duration_p50_ms = _Number(verbose_name="Median duration (ms)", default="—")
    duration_p95_ms = _Number(verbose_name="p95 duration (ms)", default="—")

    class Meta:
        attrs = {"class": "table table-hover object-list"}
        template_name = "django_tables2/bootstrap5.html"


class UsageTable(_FiguresTable):
    model = tables.Column(verbose_name="Model")
    answers = _Number()
    errors = _Number()
    fallbacks = _Number()
    tool_calls = _Number(verbose_name="Tool calls")
    input_tokens = _Number(verbose_name="Tokens in")
    output_tokens = _Number(verbose_name="Tokens out")
    cost_usd = _Number(verbose_name="Cost (USD)")

    class Meta(_FiguresTable.Meta):
        empty_text = "No usage in this range."
        sequence = ("period_start", "username", "model", "...", "duration_p50_ms", "duration_p95_ms")


class ToolCallTable(_FiguresTable):
    """Tool calls per period, user, source and tool; its own sort and page parameters (``tools-sort``)."""

    source = tables.Column(verbose_name="Source")
    tool = tables.Column(verbose_name="Tool")
    calls = _Number()
    errors = _Number()
    refused = _Number(verbose_name="Refused")
    result_chars = _Number(verbose_name="Result size (chars)", default="—")

    class Meta(_FiguresTable.Meta):
        empty_text = "No tool calls in this range."
        prefix = "tools-"
        sequence = ("period_start", "username", "source", "tool", "calls", "errors", "refused", "...")

    def render_source(self, value):
        return usage.SOURCES.get(value, value)

    def value_source(self, value):
        return value


MCP_SERIES = "MCP (own AI clients)"


def _chart(rows, figure, tool_rows):
    if figure == "tokens":
        for row in rows:
            row["tokens"] = row["input_tokens"] + row["output_tokens"]
    if figure == "tool_calls":  # the chat's per model, and MCP's as a series of its own
        rows = rows + [
            {"period_start": r["period_start"], "model": MCP_SERIES, "tool_calls": r["calls"]}
            for r in tool_rows
            if r["source"] == "mcp"
        ]
    periods, series = usage.chart_series(rows, figure)
    return usage_chart.render(periods, series, CHART_FIGURES[figure], money=figure == "cost_usd")


class UsageView(LoginRequiredMixin, View):
    def get(self, request):
        if not can_view_usage(request.user):
            raise PermissionDenied("You do not have permission to view chat usage.")
        form = usage.UsageFilterForm(request.GET or {"period": "day"})
        filters = form.cleaned_data if form.is_valid() else None
        rows = usage.usage_rows(filters) if filters else []
        tool_rows = usage_tools.tool_call_rows(filters) if filters else []
        table, tool_table = UsageTable(rows), ToolCallTable(tool_rows)
        export = request.GET.get("export")
        for each in (table, tool_table):
            tables.RequestConfig(request, paginate=False if export else {"per_page": 50}).configure(each)
        if export in ("csv", "table"):  # the filtered, sorted rows, all pages
            return TableExport(TableExport.CSV, table).response(filename="netbox_chatbox_usage.csv")
        if export == "tool_calls":
            return TableExport(TableExport.CSV, tool_table).response(filename="netbox_chatbox_tool_calls.csv")
        figure = request.GET.get("chart") if request.GET.get("chart") in CHART_FIGURES else "tokens"
        query = request.GET.copy()
        for key in ("export", "page", "tools-page", "chart"):
            query.pop(key, None)
        return render(
            request,
            "netbox_chatbox/usage.html",
            {
                "form": form,
                "filters": filters,
                "table": table,
                "tool_table": tool_table,
                "totals": usage.usage_totals(filters) if filters else None,
                "tool_totals": usage_tools.tool_call_totals(filters, tool_rows) if filters else None,
                "chart": _chart(rows, figure, tool_rows) if filters else "",
                "chart_figure": figure,
                "chart_title": CHART_FIGURES[figure],
                "chart_figures": CHART_FIGURES,
                "query": query.urlencode(),
                "tools_sort": request.GET.get("tools-sort"),
            },
        )
