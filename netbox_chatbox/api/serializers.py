from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from users.api.serializers import UserSerializer

from .. import catalog
from ..grounding import public as public_grounding
from ..models import Conversation, Message
from ..sessions import turn_running


class ModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    provider_model_id = serializers.CharField(
        allow_blank=True,
        help_text=("The provider's id for it (answers name the model that way); empty for auto: the SDK's default"),
    )
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


class StatusSerializer(serializers.Serializer):
    pid = serializers.IntegerField(help_text="The NetBox process that answered (each worker counts its own)")
    cli_slots_in_use = serializers.IntegerField(help_text="Claude sessions open (max_active_sessions slots)")
    cli_slots_max = serializers.IntegerField()
    cli_processes = serializers.IntegerField(help_text="Claude CLI processes running")
    temp_homes = serializers.IntegerField(help_text="The CLI processes' temporary home folders on disk")


class PreferenceSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="A model id from GET models/")


class ChatRequestSerializer(serializers.Serializer):
    message = serializers.CharField(trim_whitespace=False, help_text="What the user asks")
    conversation = serializers.IntegerField(required=False, help_text="Continue this conversation of yours")
    model = serializers.CharField(required=False, help_text="A model id from GET models/ (default: your preference)")
    context = serializers.CharField(
        required=False,
        max_length=2000,
        help_text=(
            "The NetBox page asked from (path and query, e.g. /dcim/devices/5/): the object or list you may view "
            "there is described to the model; otherwise ignored"
        ),
    )


class ChatResponseSerializer(serializers.Serializer):
    conversation = serializers.IntegerField(allow_null=True)
    model = serializers.CharField()
    answer = serializers.CharField(allow_blank=True)
    events = serializers.ListField(child=serializers.DictField(), help_text="The turn's events, as on the WebSocket")


def _model_name(model_id) -> str:
    """The catalog's name for a model id (the id itself when the catalog no longer has it)."""
    entry = catalog.get_catalog().get(model_id)
    return entry.name if entry else model_id


class MessageSerializer(serializers.ModelSerializer):
    model_name = serializers.SerializerMethodField(help_text="The catalog name of the model that answered")
    grounding = serializers.SerializerMethodField(
        help_text="{ungrounded: [{text, kind}], withheld}: what the answer names that the data it read lacks"
    )

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_grounding(self, message):
        return public_grounding(message.grounding)

    def get_model_name(self, message) -> str:
        return _model_name(message.model) if message.model else ""

    class Meta:
        model = Message
        fields = (
            "id",
            "role",
            "content",
            "model",
            "model_name",
            "tool_calls",
            "grounding",
            "interrupted",
            "truncated",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "usage_estimated",
            "duration_ms",
            "created",
        )


class ConversationSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="plugins-api:netbox_chatbox-api:conversation-detail")
    display = serializers.CharField(source="__str__", read_only=True)
    owner = UserSerializer(nested=True, read_only=True)
    message_count = serializers.IntegerField(read_only=True)
    model_name = serializers.SerializerMethodField(help_text="The catalog name of the conversation's model")

    class Meta:
        model = Conversation
        fields = (
            "id",
            "url",
            "display",
            "title",
            "owner",
            "model_id",
            "model_name",
            "path",
            "archived",
            "created",
            "last_updated",
            "message_count",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "duration_ms",
        )
        read_only_fields = tuple(f for f in fields if f != "title")

    def get_model_name(self, conversation) -> str:
        return _model_name(conversation.model_id)


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True, read_only=True)
    answering = serializers.SerializerMethodField(
        help_text="An answer is being written (e.g. from a page the user left)"
    )

    class Meta(ConversationSerializer.Meta):
        fields = ConversationSerializer.Meta.fields + ("messages", "answering")

    def get_answering(self, conversation) -> bool:
        return turn_running(conversation.pk)
