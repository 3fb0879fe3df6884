"""The usage page (/plugins/chatbox/usage/): figures per period, user and model, a chart, CSV export.

Who may see it: superusers, and users granted the custom action ``view_usage`` on "Chatbox |
conversation". It shows figures and usernames only, never a conversation's title or content.
"""

import django_tables2 as tables
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views import View
from django_tables2.export import TableExport

from . import usage, usage_chart
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


class UsageTable(tables.Table):
    """Aggregated rows (dicts), sortable by any column like NetBox's lists (``?sort=-cost_usd``)."""

    period_start = tables.DateColumn(verbose_name="Period", format="Y-m-d")
    username = tables.Column(verbose_name="User")
    model = tables.Column(verbose_name="Model")
    answers = _Number()
    errors = _Number()
    fallbacks = _Number()
    tool_calls = _Number(verbose_name="Tool calls")
    input_tokens = _Number(verbose_name="Tokens in")
    output_tokens = _Number(verbose_name="Tokens out")
    cost_usd = _Number(verbose_name="Cost (USD)")
    duration_p50_ms = _Number(verbose_name="Median duration (ms)", default="—")
    duration_p95_ms = _Number(verbose_name="p95 duration (ms)", default="—")

    class Meta:
        attrs = {"class": "table table-hover object-list"}
        template_name = "django_tables2/bootstrap5.html"
        empty_text = "No usage in this range."


def _chart(rows, figure):
    if figure == "tokens":
        for row in rows:
            row["tokens"] = row["input_tokens"] + row["output_tokens"]
    periods, series = usage.chart_series(rows, figure)
    return usage_chart.render(periods, series, CHART_FIGURES[figure], money=figure == "cost_usd")


class UsageView(LoginRequiredMixin, View):
    def get(self, request):
        if not can_view_usage(request.user):
            raise PermissionDenied("You do not have permission to view chat usage.")
        form = usage.UsageFilterForm(request.GET or {"period": "day"})
        filters = form.cleaned_data if form.is_valid() else None
        rows = usage.usage_rows(filters) if filters else []
        table = UsageTable(rows)
        export = request.GET.get("export") in ("csv", "table")
        tables.RequestConfig(request, paginate=False if export else {"per_page": 50}).configure(table)
        if export:  # the filtered, sorted rows, all pages
            return TableExport(TableExport.CSV, table).response(filename="netbox_chatbox_usage.csv")
        figure = request.GET.get("chart") if request.GET.get("chart") in CHART_FIGURES else "tokens"
        query = request.GET.copy()
        for key in ("export", "page", "chart"):
            query.pop(key, None)
        return render(
            request,
            "netbox_chatbox/usage.html",
            {
                "form": form,
                "filters": filters,
                "table": table,
                "totals": usage.usage_totals(filters) if filters else None,
                "chart": _chart(rows, figure) if filters else "",
                "chart_figure": figure,
                "chart_title": CHART_FIGURES[figure],
                "chart_figures": CHART_FIGURES,
                "query": query.urlencode(),
            },
        )
