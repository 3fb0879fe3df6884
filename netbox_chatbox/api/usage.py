"""GET /api/plugins/chatbox/usage/: the usage page's figures as JSON (same filters, same query)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import usage, usage_tools
from ..permissions import CanViewUsage


class _Figures(serializers.Serializer):
    answers = serializers.IntegerField()
    errors = serializers.IntegerField()
    fallbacks = serializers.IntegerField(help_text="Answers given by the fallback model instead of the chosen one")
    tool_calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=6)
    duration_p50_ms = serializers.FloatField(allow_null=True, help_text="Median answer duration")
    duration_p95_ms = serializers.FloatField(allow_null=True)


class UsageRowSerializer(_Figures):
    period_start = serializers.DateField(help_text="First day of the period, in the time zone `tz`")
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    model = serializers.CharField(help_text="The model chosen for the conversation (catalog id)")


class _ToolFigures(serializers.Serializer):
    calls = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Calls the tool answered with an error")
    refused = serializers.IntegerField(help_text="MCP calls refused before the tool ran (rate limit, read-only token)")
    duration_p50_ms = serializers.FloatField(allow_null=True, help_text="MCP only: median call duration")
    duration_p95_ms = serializers.FloatField(allow_null=True, help_text="MCP only")
    result_chars = serializers.IntegerField(allow_null=True, help_text="MCP only: characters of results returned")


class ToolCallRowSerializer(_ToolFigures):
    period_start = serializers.DateField()
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    source = serializers.ChoiceField(choices=list(usage.SOURCES), help_text="chat, or mcp (users' own AI clients)")
    tool = serializers.CharField()


class ToolCallTotalsSerializer(serializers.Serializer):
    chat = _ToolFigures()
    mcp = _ToolFigures()


class UsageSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=usage.PERIODS)
    since = serializers.DateField()
    until = serializers.DateField()
    tz = serializers.CharField()
    totals = _Figures()
    results = UsageRowSerializer(many=True)
    tool_call_totals = ToolCallTotalsSerializer()
    tool_calls = ToolCallRowSerializer(many=True, help_text="Per period, user, source and tool")


class UsageView(APIView):
    """Chat usage per period, user and model, and tool calls (the chat's and MCP's) per period, user and tool
    (needs the ``view_usage`` action on Chatbox | conversation)."""

    permission_classes = [CanViewUsage]

    @extend_schema(
        operation_id="plugins_chatbox_usage_retrieve",
        description="Answers, errors, fallbacks, tool calls, tokens, cost and duration percentiles per period, "
        "user and model, aggregated from the stored messages, and tool calls per period, user, source (chat, or "
        "mcp: users' own AI clients) and tool; no conversation content, no tool arguments or results.",
        parameters=[
            OpenApiParameter("period", OpenApiTypes.STR, enum=usage.PERIODS, description="day (default), week, month"),
            OpenApiParameter("since", OpenApiTypes.DATE, description="First day, inclusive (default: 29 days ago)"),
            OpenApiParameter("until", OpenApiTypes.DATE, description="Last day, inclusive (default: today)"),
            OpenApiParameter("user", OpenApiTypes.STR, many=True, description="Username (repeatable)"),
            OpenApiParameter("model", OpenApiTypes.STR, many=True, description="Model id (repeatable; chat only)"),
            OpenApiParameter("source", OpenApiTypes.STR, enum=list(usage.SOURCES), description="chat or mcp"),
            OpenApiParameter("tool", OpenApiTypes.STR, many=True, description="Tool name (repeatable; tool calls)"),
            OpenApiParameter("tz", OpenApiTypes.STR, description="IANA time zone of the periods (default: NetBox's)"),
        ],
        responses=UsageSerializer,
    )
    def get(self, request):
        form = usage.UsageFilterForm(request.query_params)
        if not form.is_valid():
            return Response({k: [str(e) for e in v] for k, v in form.errors.items()}, status=400)
        filters = form.cleaned_data
        tool_calls = usage_tools.tool_call_rows(filters)
        return Response(
            UsageSerializer(
                {
                    "period": filters["period"],
                    "since": filters["since"],
                    "until": filters["until"],
                    "tz": str(filters["tz"]),
                    "totals": usage.usage_totals(filters),
                    "results": usage.usage_rows(filters),
                    "tool_call_totals": usage_tools.tool_call_totals(filters, tool_calls),
                    "tool_calls": tool_calls,
                }
            ).data
        )
