from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from users.api.serializers import UserSerializer

from ..grounding import public as public_grounding
from ..models import Conversation, Message


class ModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    provider = serializers.CharField()
    description = serializers.CharField()
    context_length = serializers.IntegerField()
    path = serializers.ChoiceField(choices=["sdk", "litellm"])
    is_automatic = serializers.BooleanField()
    recommended = serializers.BooleanField()
    local = serializers.BooleanField(help_text="Runs on this organisation's own server: its tokens cost nothing")
    available = serializers.BooleanField(help_text="Whether the model's provider passed its last health check")
    unavailable_reason = serializers.CharField(allow_blank=True)


class BudgetLimitSerializer(serializers.Serializer):
    limit = serializers.ChoiceField(choices=["day_tokens", "month_tokens", "day_cost_usd", "month_cost_usd"])
    period = serializers.ChoiceField(choices=["day", "month"])
    measure = serializers.ChoiceField(choices=["tokens", "cost_usd"])
    max = serializers.FloatField()
    used = serializers.FloatField()
    remaining = serializers.FloatField()
    resets = serializers.DateTimeField(help_text="When this limit's period ends")


class BudgetSerializer(serializers.Serializer):
    limits = BudgetLimitSerializer(many=True)
    exempt_models = serializers.ListField(child=serializers.CharField(), help_text="Models no limit applies to")


class ModelListSerializer(serializers.Serializer):
    default = serializers.CharField()
    selected = serializers.CharField()
    selection_enabled = serializers.BooleanField()
    budget = BudgetSerializer(allow_null=True, help_text="Your usage limits and what is left; null: no limits")
    models = ModelSerializer(many=True)


class PreferenceSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="A model id from GET models/")


class ChatRequestSerializer(serializers.Serializer):
    message = serializers.CharField(trim_whitespace=False, help_text="What the user asks")
    conversation = serializers.IntegerField(required=False, help_text="Continue this conversation of yours")
    model = serializers.CharField(required=False, help_text="A model id from GET models/ (default: your preference)")


class ChatResponseSerializer(serializers.Serializer):
    conversation = serializers.IntegerField(allow_null=True)
    model = serializers.CharField()
    answer = serializers.CharField(allow_blank=True)
    events = serializers.ListField(child=serializers.DictField(), help_text="The turn's events, as on the WebSocket")


class MessageSerializer(serializers.ModelSerializer):
    grounding = serializers.SerializerMethodField(
        help_text="{ungrounded: [{text, kind}], withheld}: what the answer names that the data it read lacks")

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_grounding(self, message):
        return public_grounding(message.grounding)

    class Meta:
        model = Message
        fields = ("id", "role", "content", "model", "tool_calls", "grounding", "interrupted", "input_tokens",
                  "output_tokens", "cost_usd", "usage_estimated", "duration_ms", "created")


class ConversationSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="plugins-api:netbox_chatbox-api:conversation-detail")
    display = serializers.CharField(source="__str__", read_only=True)
    owner = UserSerializer(nested=True, read_only=True)
    message_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Conversation
        fields = ("id", "url", "display", "title", "owner", "model_id", "path", "archived", "created",
                  "last_updated", "message_count", "input_tokens", "output_tokens", "cost_usd", "duration_ms")
        read_only_fields = tuple(f for f in fields if f != "title")


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(ConversationSerializer.Meta):
        fields = ConversationSerializer.Meta.fields + ("messages",)
