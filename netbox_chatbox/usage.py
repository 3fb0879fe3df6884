"""Usage figures per period, user and model, aggregated in PostgreSQL from the stored messages.

One query serves the page, its CSV export, its chart and the API, so they always agree with each other
and with the messages themselves: an answer is an assistant message, an error an error message, both
counted for the conversation's owner and model (the model the user chose; ``fallbacks`` counts answers
another model gave instead). Periods are calendar days, ISO weeks (from Monday) or months in a time zone
(NetBox's ``TIME_ZONE`` unless the request names another); ``since``/``until`` are whole days there.
Tool calls per tool, the chat's next to those of users' own AI clients (MCP), are in :mod:`.usage_tools`.
"""

import datetime
import zoneinfo
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Aggregate, Count, F, FloatField, Func, IntegerField, Q, Sum
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from . import catalog
from .models import Conversation, Message
from .tools import TOOLS

PERIODS = ("day", "week", "month")
SOURCES = {"chat": "Chat", "mcp": "MCP"}  # where a tool call came from
MAX_DAYS = 3 * 366  # the longest range one request may cover
DEFAULT_DAYS = 30
FIGURES = (
    "answers",
    "errors",
    "fallbacks",
    "tool_calls",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "duration_p50_ms",
    "duration_p95_ms",
)
ADDITIVE = FIGURES[:7]  # figures a total may add up (the percentiles cannot be)


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(f) WITHIN GROUP (ORDER BY expr)`` (continuous: interpolates)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)%(filter)s"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


class _ToolCount(Func):
    function = "jsonb_array_length"
    output_field = IntegerField()


class UsageFilterForm(forms.Form):
    """The filters of the page and the API (validated once, the same way for both)."""

    period = forms.ChoiceField(choices=[(p, p.capitalize()) for p in PERIODS], required=False, initial="day")
    since = forms.DateField(required=False, help_text="First day (inclusive), YYYY-MM-DD")
    until = forms.DateField(required=False, help_text="Last day (inclusive), YYYY-MM-DD")
    user = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.order_by("username"), to_field_name="username", required=False
    )
    model = forms.MultipleChoiceField(required=False, help_text="Chat only: MCP tool calls have no model")
    source = forms.ChoiceField(
        choices=[("", "Chat and MCP"), *SOURCES.items()],
        required=False,
        help_text="chat: the assistant in NetBox; mcp: users' own AI clients",
    )
    tool = forms.MultipleChoiceField(required=False, help_text="Tool calls only")
    tz = forms.CharField(required=False, label="Time zone", help_text="An IANA name, e.g. Europe/Berlin")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = Conversation.objects.order_by().values_list("model_id", flat=True).distinct()
        ids = sorted({*catalog.get_catalog(), *stored})  # models removed from the catalog keep their usage
        self.fields["model"].choices = [(i, i) for i in ids]
        self.fields["tool"].choices = [(name, name) for name in sorted(TOOLS)]

    def clean_tz(self):
        name = self.cleaned_data.get("tz") or ""
        if not name:
            return timezone.get_current_timezone()
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(
                f"Unknown time zone {name[:60]!r} (use an IANA name like Europe/Berlin)."
            ) from None

    def clean(self):
        data = super().clean()
        data["period"] = data.get("period") or "day"
        if self.errors:
            return data
        today = timezone.now().astimezone(data["tz"]).date()
        until = data.get("until") or today
        since = data.get("since") or until - datetime.timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise forms.ValidationError("'since' must not be after 'until'.")
        if (until - since).days >= MAX_DAYS:
            raise forms.ValidationError(f"A range may span at most {MAX_DAYS} days.")
        data["since"], data["until"] = since, until
        return data


def bounds(filters) -> tuple[datetime.datetime, datetime.datetime]:
    """The filtered range as [start, end) instants: whole days in the requested time zone."""
    tz = filters["tz"]
    start = datetime.datetime.combine(filters["since"], datetime.time.min, tzinfo=tz)
    return start, datetime.datetime.combine(filters["until"] + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz)


def in_range(queryset, filters, owner: str):
    """The rows created in the filtered range, of the filtered users (``owner``: the lookup to the user)."""
    start, end = bounds(filters)
    queryset = queryset.order_by().filter(created__gte=start, created__lt=end)
    if filters.get("user"):
        queryset = queryset.filter(**{f"{owner}__in": filters["user"]})
    return queryset


def rounded(row: dict) -> dict:
    """Percentiles to one decimal (PostgreSQL returns them as floats)."""
    for key in ("duration_p50_ms", "duration_p95_ms"):
        if row[key] is not None:
            row[key] = round(row[key], 1)
    return row


def _messages(filters):
    """The assistant and error messages in the filtered range (one query's FROM/WHERE)."""
    messages = in_range(Message.objects.filter(role__in=("assistant", "error")), filters, "conversation__owner")
    if filters.get("source") == "mcp":  # answers are the chat's
        messages = messages.none()
    if filters.get("model"):
        messages = messages.filter(conversation__model_id__in=filters["model"])
    return messages


def _figures():
    answer = Q(role="assistant")
    return {
        "answers": Count("pk", filter=answer),
        "errors": Count("pk", filter=Q(role="error")),
        "fallbacks": Count("pk", filter=answer & Q(fallback=True)),
        "tool_calls": Coalesce(Sum(_ToolCount("tool_calls"), filter=answer), 0),
        "input_tokens": Coalesce(Sum("input_tokens"), 0),
        "output_tokens": Coalesce(Sum("output_tokens"), 0),
        "cost_usd": Sum("cost_usd"),
        "duration_p50_ms": PercentileCont("duration_ms", 0.5, filter=answer),
        "duration_p95_ms": PercentileCont("duration_ms", 0.95, filter=answer),
    }


def _clean(row):
    if row["cost_usd"] is None:
        row["cost_usd"] = Decimal("0")
    return rounded(row)


def usage_rows(filters) -> list[dict]:
    """One row per (period start, user, model) that has answers or errors, oldest period first."""
    rows = (
        _messages(filters)
        .annotate(
            period_start=Trunc("created", filters["period"], tzinfo=filters["tz"]),
            user_id=F("conversation__owner_id"),
            username=F("conversation__owner__username"),
            model_id=F("conversation__model_id"),
        )
        .values("period_start", "user_id", "username", "model_id")
        .annotate(**_figures())
        .order_by("period_start", "username", "model_id")
    )
    result = []
    for row in rows:
        row["period_start"] = row["period_start"].astimezone(filters["tz"]).date()
        row["model"] = row.pop("model_id")
        result.append(_clean(row))
    return result


def usage_totals(filters) -> dict:
    """The same figures over the whole filtered range (percentiles over all its answers)."""
    return _clean(_messages(filters).aggregate(**_figures()))


def chart_series(rows, figure: str) -> tuple[list[datetime.date], dict[str, list]]:
    """(period starts, {model: [value per period]}) of one additive figure, summed over users; models
    with nothing to show (e.g. no cost for a local model) are left out."""
    periods = sorted({r["period_start"] for r in rows})
    index = {p: i for i, p in enumerate(periods)}
    series: dict[str, list] = {}
    for row in rows:
        values = series.setdefault(row["model"], [0] * len(periods))
        values[index[row["period_start"]]] += row[figure]
    return periods, {model: values for model, values in sorted(series.items()) if any(values)}
