"""GET /api/plugins/chatbox/usage/: the usage page's figures as JSON (same filters, same query)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import usage
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


class UsageSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=usage.PERIODS)
    since = serializers.DateField()
    until = serializers.DateField()
    tz = serializers.CharField()
    totals = _Figures()
    results = UsageRowSerializer(many=True)


class UsageView(APIView):
    """Chat usage per period, user and model (needs the ``view_usage`` action on Chatbox | conversation)."""

    permission_classes = [CanViewUsage]

    @extend_schema(
        operation_id="plugins_chatbox_usage_retrieve",
        description="Answers, errors, fallbacks, tool calls, tokens, cost and duration percentiles per period, "
        "user and model, aggregated from the stored messages; no conversation content.",
        parameters=[
            OpenApiParameter("period", OpenApiTypes.STR, enum=usage.PERIODS, description="day (default), week, month"),
            OpenApiParameter("since", OpenApiTypes.DATE, description="First day, inclusive (default: 29 days ago)"),
            OpenApiParameter("until", OpenApiTypes.DATE, description="Last day, inclusive (default: today)"),
            OpenApiParameter("user", OpenApiTypes.STR, many=True, description="Username (repeatable)"),
            OpenApiParameter("model", OpenApiTypes.STR, many=True, description="Model id (repeatable)"),
            OpenApiParameter("tz", OpenApiTypes.STR, description="IANA time zone of the periods (default: NetBox's)"),
        ],
        responses=UsageSerializer,
    )
    def get(self, request):
        form = usage.UsageFilterForm(request.query_params)
        if not form.is_valid():
            return Response({k: [str(e) for e in v] for k, v in form.errors.items()}, status=400)
        filters = form.cleaned_data
        return Response(
            UsageSerializer(
                {
                    "period": filters["period"],
                    "since": filters["since"],
                    "until": filters["until"],
                    "tz": str(filters["tz"]),
                    "totals": usage.usage_totals(filters),
                    "results": usage.usage_rows(filters),
                }
            ).data
        )
