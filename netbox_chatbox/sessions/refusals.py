"""What a session refuses before anything runs: bad input, an unknown model, another user's conversation, a
rate limit. Kept apart from the turn so the HTTP API, the socket and MCP refuse alike, with one status table."""

from django.core.cache import cache

from .. import catalog
from ..conf import get_settings
from ..events import Error
from ..models import Conversation
from ..preferences import get_user_model

IN_PROGRESS = "The assistant is still answering in this conversation; wait for it or press Stop."

# HTTP status for each refusal/error code (the HTTP API answers with these; the socket sends the event).
HTTP_STATUS = {
    "bad_request": 400,
    "unknown_model": 400,
    "message_too_long": 400,
    "selection_disabled": 400,
    "archived": 400,
    "in_progress": 409,
    "not_found": 404,
    "rate_limited": 429,
    "busy": 503,
    "unavailable": 503,
    "provider_error": 502,
    "internal_error": 500,
    "timeout": 504,
    "tool_limit": 422,
    "budget_exceeded": 429,
}  # any other error of a turn that ran: 502 (the model provider failed)


class Refused(Exception):
    """A request the session will not carry out; ``event`` is the error event for the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.event = Error(code, message)
        self.status = HTTP_STATUS.get(code, 400)


def check_rate(user) -> None:
    """Count one chat message against the user's per-minute limit (in Redis, so it holds across workers).

    The minute starts at the user's first message (the counter's expiry), not at the clock's minute: with
    clock minutes, two messages a second apart across a minute's turn each got a fresh allowance."""
    limit = get_settings().rate_limit_per_minute
    if not limit:
        return
    key = cache.make_key(f"netbox_chatbox:rate:{user.pk}")
    # One Redis round trip (NetBox's cache is django-redis, which stores integers as plain numbers, so INCR
    # counts them); a second only for the first message of a minute, which starts the counter's expiry.
    client = cache.client.get_client(write=True)
    with client.pipeline(transaction=False) as pipe:
        count, ttl = pipe.incr(key).ttl(key).execute()
    if ttl < 0:
        client.expire(key, 60)
    if count > limit:
        raise Refused("rate_limited", f"You can send {limit} messages per minute; wait a moment and try again.")


def check_message(text) -> str:
    if not isinstance(text, str) or not text.strip():
        raise Refused("bad_request", "'message' must be a non-empty string.")
    if "\x00" in text:  # PostgreSQL text cannot hold it
        raise Refused("bad_request", "'message' must not contain NUL characters.")
    limit = get_settings().max_message_chars
    if len(text) > limit:
        raise Refused("message_too_long", f"Your message has {len(text)} characters; the limit is {limit}.")
    return text


def pick_model(model_id) -> catalog.ModelEntry:
    """Validate a model id a client asked for (honouring ``enable_model_selection``)."""
    try:
        entry = catalog.get_model(model_id)
    except catalog.ModelNotAvailable as exc:
        raise Refused("unknown_model", str(exc)) from None
    if not get_settings().enable_model_selection and entry.id != catalog.default_model_id():
        raise Refused("selection_disabled", "Model selection is disabled by the administrator.")
    return entry


def selected_model(user) -> catalog.ModelEntry:
    """The user's model from UserConfig; the admin's default when selection is disabled."""
    model_id = get_user_model(user) if get_settings().enable_model_selection else catalog.default_model_id()
    return pick_model(model_id)


def own_conversation(user, conversation_id) -> Conversation:
    """The user's own, still active conversation (another user's is as missing as a deleted one)."""
    if isinstance(conversation_id, bool) or not isinstance(conversation_id, int):
        raise Refused("bad_request", "'conversation' must be a conversation id (an integer).")
    conversation = None
    if 0 < conversation_id < 2**63:  # beyond PostgreSQL's bigint no row can exist
        conversation = Conversation.objects.filter(owner=user, pk=conversation_id).first()
    if conversation is None:
        raise Refused("not_found", f"Conversation {conversation_id} does not exist.")
    if conversation.archived:
        raise Refused("archived", f"Conversation {conversation_id} is archived (read-only); start a new one.")
    return conversation
