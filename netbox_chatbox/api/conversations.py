"""/api/plugins/chatbox/conversations/: list, read, rename, archive and delete stored conversations.

Users see and change their own; NetBox ObjectPermissions on "Chatbox | conversation" (view, change,
delete; constraints honoured) extend that to other users' conversations, e.g. for auditors. Anything
else is a 404, exactly like a conversation that does not exist.
"""

from django.db import transaction
from django.db.models import Count, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from users.models import Token

from ..filtersets import ConversationFilterSet
from ..models import Conversation
from ..permissions import can_chat
from ..sessions import turn_running
from .export import MarkdownRenderer
from .serializers import ConversationDetailSerializer, ConversationSerializer

_ACTIONS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "PATCH": "change", "POST": "change", "DELETE": "delete"}


class ConversationPermission(BasePermission):
    """Chat users (for their own) or holders of the view permission; writes need a write-enabled token."""

    message = "You do not have permission to read chat conversations."

    def has_permission(self, request, view):
        user = request.user
        if isinstance(request.auth, Token) and request.method not in SAFE_METHODS and not request.auth.write_enabled:
            self.message = "This API token is read-only; enable 'write' on it to change conversations."
            return False
        return bool(
            user
            and user.is_authenticated
            and user.is_active
            and (can_chat(user) or user.has_perm("netbox_chatbox.view_conversation"))
        )


class TurnInProgress(APIException):
    status_code = 409
    default_detail = "The assistant is still answering in this conversation; wait for it or stop it, then archive."
    default_code = "in_progress"


class ConversationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your chat conversations (newest first); one with its messages; rename (PATCH title); archive; delete."""

    queryset = Conversation.objects.all()  # for the schema; requests use get_queryset()
    permission_classes = [ConversationPermission]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_regex = r"\d{1,18}"  # anything else is no conversation: 404, not a database error
    filterset_class = ConversationFilterSet

    def get_queryset(self):
        user = self.request.user
        action = _ACTIONS.get(self.request.method, "view")
        permitted = Conversation.objects.restrict(user, action).values("pk")
        queryset = Conversation.objects.filter(Q(owner=user) | Q(pk__in=permitted)).select_related("owner")
        queryset = queryset.annotate(message_count=Count("messages")).order_by(*Conversation._meta.ordering)
        if self.action in ("retrieve", "export"):
            queryset = queryset.prefetch_related("messages")
        return queryset

    def get_serializer_class(self):
        return ConversationDetailSerializer if self.action in ("retrieve", "export") else ConversationSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=["md", "json"],
                default="json",
                description="md: a Markdown document; json: the conversation with its messages",
            )
        ],
        responses={(200, "application/json"): ConversationDetailSerializer, (200, "text/markdown"): OpenApiTypes.STR},
    )
    @action(detail=True, methods=["get"], filter_backends=[], renderer_classes=[JSONRenderer, MarkdownRenderer])
    def export(self, request, pk=None):
        """Download the conversation with all its messages, as Markdown or JSON (a file: Content-Disposition)."""
        data = self.get_serializer(self.get_object()).data
        extension = request.accepted_renderer.format
        return Response(
            data, headers={"Content-Disposition": f'attachment; filename="conversation-{data["id"]}.{extension}"'}
        )

    @extend_schema(
        request=None,
        responses={
            200: ConversationSerializer,
            409: OpenApiResponse(description="A turn is still answering in this conversation"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def archive(self, request, pk=None):
        """Archive the conversation (read-only from now on), as a model switch or reset does on the WebSocket.

        For clients without a socket. Archiving an archived conversation changes nothing and answers the same.
        """
        conversation = self.get_object()
        with transaction.atomic():  # the row lock orders this against a turn storing its question
            if not Conversation.objects.select_for_update().get(pk=conversation.pk).archived:
                if turn_running(conversation.pk):
                    raise TurnInProgress()
                conversation.archive()
        return Response(self.get_serializer(conversation).data)
