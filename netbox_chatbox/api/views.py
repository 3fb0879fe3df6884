from asgiref.sync import async_to_sync
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import budgets, catalog, health, resources
from ..conf import get_settings
from ..permissions import CanChat
from ..preferences import get_user_model, set_user_model
from .serializers import ModelListSerializer, PreferenceSerializer, StatusSerializer


def model_list(user) -> dict:
    """The catalog as ``user`` may use it: which model is default and which one the user selected.

    Each model says whether it can answer right now (health checks: cached, bounded by a short timeout).
    """
    models = catalog.enabled_models()
    status = async_to_sync(health.models_status)(models)
    return {
        "default": catalog.default_model_id(),
        "selected": get_user_model(user),
        "selection_enabled": get_settings().enable_model_selection,
        "budget": budgets.summary(user),
        "models": [
            {
                **m.as_dict(),
                "provider_model_id": m.sdk_model or (m.litellm_model or "").partition("/")[2],
                "available": status[m.id][0],
                "unavailable_reason": status[m.id][1],
            }
            for m in models
        ],
    }


class ModelListView(APIView):
    """The chat models this NetBox offers, the default one and the one the user selected."""

    permission_classes = [CanChat]

    @extend_schema(responses=ModelListSerializer, operation_id="plugins_chatbox_models_list")
    def get(self, request):
        return Response(model_list(request.user))


class PreferenceView(APIView):
    """The user's chat model, stored in their NetBox preferences (``plugins.netbox_chatbox.model``)."""

    permission_classes = [CanChat]

    @extend_schema(responses=PreferenceSerializer, operation_id="plugins_chatbox_preference_retrieve")
    def get(self, request):
        return Response({"model": get_user_model(request.user)})

    @extend_schema(
        request=PreferenceSerializer, responses=PreferenceSerializer, operation_id="plugins_chatbox_preference_update"
    )
    def put(self, request):
        serializer = PreferenceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not get_settings().enable_model_selection:
            return Response({"model": ["Model selection is disabled by the administrator."]}, status=400)
        try:
            entry = set_user_model(request.user, serializer.validated_data["model"])
        except catalog.ModelNotAvailable as exc:
            return Response({"model": [str(exc)]}, status=400)
        return Response({"model": entry.id})


class IsSuperuser(BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_active and request.user.is_superuser)


class StatusView(APIView):
    """What the NetBox process that answers holds for chats (superusers): a leak shows here before "busy"."""

    permission_classes = [IsSuperuser]

    @extend_schema(responses=StatusSerializer, operation_id="plugins_chatbox_status_retrieve")
    def get(self, request):
        return Response(resources.counts())
