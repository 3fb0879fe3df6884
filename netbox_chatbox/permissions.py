"""Who may chat: superusers, and users an admin granted the custom action ``chat`` on Conversation.

(Admin → Permissions → object type "Chatbox | conversation", additional action "chat"). The MCP
endpoint has an action of its own, ``mcp``: there the user's own AI client, not a model the admin
configured, receives the NetBox data, so an admin grants it separately.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission
from users.models import Token

CHAT_PERMISSION = "netbox_chatbox.chat_conversation"
MCP_PERMISSION = "netbox_chatbox.mcp_conversation"


def can_chat(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(CHAT_PERMISSION))


def can_use_mcp(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(MCP_PERMISSION))


class CanChat(BasePermission):
    """DRF permission: may chat, and a token used for a write must have write enabled."""

    message = "You do not have permission to use the chat assistant."

    def has_permission(self, request, view):
        if isinstance(request.auth, Token) and request.method not in SAFE_METHODS and not request.auth.write_enabled:
            self.message = "This API token is read-only; enable 'write' on it to chat or change preferences."
            return False
        return can_chat(request.user)


USAGE_PERMISSION = "netbox_chatbox.view_usage_conversation"


def can_view_usage(user) -> bool:
    """Usage figures (the custom action ``view_usage`` on Conversation): counts, tokens, cost — no content."""
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(USAGE_PERMISSION))


class CanViewUsage(BasePermission):
    message = "You do not have permission to view chat usage."

    def has_permission(self, request, view):
        return can_view_usage(request.user)
