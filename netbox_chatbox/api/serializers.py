from rest_framework import serializers


class ModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    provider = serializers.CharField()
    description = serializers.CharField()
    context_length = serializers.IntegerField()
    path = serializers.ChoiceField(choices=["sdk", "litellm"])
    is_automatic = serializers.BooleanField()
    recommended = serializers.BooleanField()
    available = serializers.BooleanField(help_text="Whether the model's provider passed its last health check")
    unavailable_reason = serializers.CharField(allow_blank=True)


class ModelListSerializer(serializers.Serializer):
    default = serializers.CharField()
    selected = serializers.CharField()
    selection_enabled = serializers.BooleanField()
    models = ModelSerializer(many=True)


class PreferenceSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="A model id from GET models/")
