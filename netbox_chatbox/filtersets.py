"""Filters of /api/plugins/chatbox/conversations/ (NetBox's BaseFilterSet: ``__n``, ``__ic``… lookups included)."""

from netbox.filtersets import BaseFilterSet
from utilities.filters import MultiValueCharFilter, MultiValueNumberFilter

from .models import Conversation


class ConversationFilterSet(BaseFilterSet):
    """Filters applied after visibility: only conversations the user may see are ever filtered.

    The owner filters are plain values, not NetBox's usual user choice fields: those answer 400 for a
    user that does not exist, which would tell a chat user which user ids and usernames exist. Here an
    unknown owner, like one whose conversations you may not see, simply matches nothing.
    """

    owner_id = MultiValueNumberFilter(field_name="owner", label="Owner (ID)")
    owner = MultiValueCharFilter(field_name="owner__username", label="Owner (username)")

    class Meta:
        model = Conversation
        fields = ("id", "archived", "model_id")
