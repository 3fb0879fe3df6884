"""/api/plugins/chatbox/conversations/: list, read, rename and delete stored conversations.

Users see and change their own; NetBox ObjectPermissions on "Chatbox | conversation" (view, change,
delete; constraints honoured) extend that to other users' conversations, e.g. for auditors. Anything
else is a 404, exactly like a conversation that does not exist.
"""
from django.db.models import Count, Q
from rest_framework import mixins, viewsets
from rest_framework.permissions import SAFE_METHODS, BasePermission
from users.models import Token

from ..models import Conversation
from ..permissions import can_chat
from .serializers import ConversationDetailSerializer, ConversationSerializer

_ACTIONS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "PATCH": "change", "DELETE": "delete"}


class ConversationPermission(BasePermission):
    """Chat users (for their own) or holders of the view permission; writes need a write-enabled token."""

    message = "You do not have permission to read chat conversations."

    def has_permission(self, request, view):
        user = request.user
        if isinstance(request.auth, Token) and request.method not in SAFE_METHODS and not request.auth.write_enabled:
            self.message = "This API token is read-only; enable 'write' on it to change conversations."
            return False
        return bool(user and user.is_authenticated and user.is_active
                    and (can_chat(user) or user.has_perm("netbox_chatbox.view_conversation")))


class ConversationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                          mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your chat conversations (newest first); one with its messages; rename (PATCH title); delete."""

    queryset = Conversation.objects.all()  # for the schema; requests use get_queryset()
    permission_classes = [ConversationPermission]
    http_method_names = ["get", "patch", "delete", "head", "options"]
    lookup_value_regex = r"\d{1,18}"  # anything else is no conversation: 404, not a database error
    filterset_fields = ["archived", "model_id"]

    def get_queryset(self):
        user = self.request.user
        action = _ACTIONS.get(self.request.method, "view")
        permitted = Conversation.objects.restrict(user, action).values("pk")
        queryset = Conversation.objects.filter(Q(owner=user) | Q(pk__in=permitted)).select_related("owner")
        queryset = queryset.annotate(message_count=Count("messages")).order_by(*Conversation._meta.ordering)
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("messages")
        return queryset

    def get_serializer_class(self):
        return ConversationDetailSerializer if self.action == "retrieve" else ConversationSerializer
