"""What a session stores: the question, the answer with its usage, the archive, and the cross-worker turn mark.

The functions are synchronous ORM work for :func:`db` (the sessions' own threads). They take the session
(anything with ``user``, ``model``, ``conversation`` and ``agent``) because a new conversation is created by
the question's storage and must be the session's at once, even if the turn is cancelled meanwhile.
"""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from channels.db import database_sync_to_async
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import budgets, catalog, grounding
from ..answers import Answer, stored_history
from ..conf import get_settings
from ..events import Complete, Error
from ..models import Conversation, Message
from ..page_context import question_of
from ..preferences import set_user_model
from ..proposals.tools import adopt as adopt_proposals
from .refusals import IN_PROGRESS, Refused, pick_model

TITLE_CHARS = 80
# The running turn refreshes its mark every TURN_MARK_REFRESH seconds; the mark of a worker that died
# mid-turn (OOM killer, a redeploy without draining) expires after TURN_MARK_TTL, so the conversation is
# refused as "in progress" for at most that long, never for good.
TURN_MARK_TTL = 15
TURN_MARK_REFRESH = 5

# Threads for the sessions' short database and cache calls (each call is its own transaction).
_blocking = ThreadPoolExecutor(max_workers=8, thread_name_prefix="netbox-chatbox")


def db(func):
    """Run a short ORM or cache call off the event loop, in the sessions' own threads.

    Not in the one thread-sensitive thread that sync_to_async uses by default, nor in the loop's
    default executor: with 50 chats starting at once, every turn's storage queued there, and the
    agents' own thread work waited behind it (measured: seconds, then hundreds of ms).
    """
    return database_sync_to_async(func, thread_sensitive=False, executor=_blocking)


def turn_key(conversation_id) -> str:
    """The Redis key that marks a turn running in a conversation (one turn at a time, across workers)."""
    return f"netbox_chatbox:turn:{conversation_id}"


def refresh_marks(session) -> None:
    """Keep a running turn's marks alive (``touch`` never recreates a mark the turn's end deleted)."""
    if session.conversation is not None:
        cache.touch(turn_key(session.conversation.pk), TURN_MARK_TTL)
    budgets.refresh(session._budget)


def turn_running(conversation_id) -> bool:
    """Whether a turn is answering in this conversation (any worker: Redis), so archiving must wait."""
    return bool(cache.get(turn_key(conversation_id)))


def select_model(user, model_id) -> catalog.ModelEntry:
    """Validate a model and store it as the user's choice (the same UserConfig value the API sets)."""
    entry = pick_model(model_id)
    if get_settings().enable_model_selection:
        set_user_model(user, entry.id)
    return entry


def history(conversation) -> list[dict]:
    return stored_history(conversation) if conversation else []


def store_question(session, text):
    """Store the user's message (creating the conversation on the first one) and mark the turn running."""
    with transaction.atomic():
        if session.conversation is None:
            title = " ".join(question_of(text).split())[:TITLE_CHARS]
            session.conversation = Conversation.objects.create(
                owner=session.user, title=title, model_id=session.model.id, path=session.model.path
            )
        # The row lock orders this against an archive of the same conversation (the API's archive
        # takes it too): either the archive comes first and this refuses, or it finds the turn mark.
        elif not Conversation.objects.select_for_update().filter(pk=session.conversation.pk, archived=False):
            raise Refused(
                "archived",
                "This conversation was archived or deleted meanwhile (read-only); start a new chat to continue.",
            )
        # One turn at a time per conversation, across requests, sockets and workers (until store_answer).
        if not cache.add(turn_key(session.conversation.pk), True, TURN_MARK_TTL):
            raise Refused("in_progress", IN_PROGRESS)
        try:
            Message.objects.create(conversation=session.conversation, role="user", content=text)
        except BaseException:
            cache.delete(turn_key(session.conversation.pk))
            raise


def store_answer(session, answer: Answer, end, first_question=None) -> Message:
    """Store the answer (and an error, if the turn ended with one); add usage to the conversation.

    ``first_question``: the question of a turn that started the conversation, so its only message so far
    (other turns wait for this one's mark): grounding need not read it back."""
    conversation, agent = session.conversation, session.agent
    cost = Decimal(str(end.cost_usd)) if isinstance(end, Complete) and end.cost_usd is not None else None
    complete = end if isinstance(end, Complete) else None
    duration = answer.elapsed_ms  # from the question's arrival: a first answer counts the agent's start
    with transaction.atomic():
        message = None
        if complete or answer.text or answer.tools:
            stored = None if first_question is None else [("user", first_question, None)]
            content, grounded = grounding.apply(
                conversation, answer.text, list(answer.tools.values()), answer.facts, stored
            )
            message = Message.objects.create(
                conversation=conversation,
                role="assistant",
                content=content,
                grounding=grounded,
                model=complete.model if complete else (agent.model.id if agent else session.model.id),
                tool_calls=list(answer.tools.values()),
                interrupted=complete.interrupted if complete else True,
                truncated=bool(complete and complete.truncated),
                fallback=bool(agent and agent.fallback),
                input_tokens=complete.input_tokens if complete else None,
                output_tokens=complete.output_tokens if complete else None,
                cost_usd=cost,
                duration_ms=duration,
                usage_estimated=bool(complete and complete.usage_estimated),
            )
            adopt_proposals(session.user, answer.proposals, conversation)
        if isinstance(end, Error):
            message = Message.objects.create(conversation=conversation, role="error", content=end.message)
        usage = {
            "input_tokens": F("input_tokens") + ((complete and complete.input_tokens) or 0),
            "output_tokens": F("output_tokens") + ((complete and complete.output_tokens) or 0),
            "duration_ms": F("duration_ms") + duration,
            "last_updated": timezone.now(),
        }
        if cost is not None:
            usage["cost_usd"] = Coalesce(F("cost_usd"), Value(Decimal(0))) + Value(cost)
        Conversation.objects.filter(pk=conversation.pk).update(**usage)
    cache.delete(turn_key(conversation.pk))
    return message


def archive(conversation) -> int:
    """Archive the conversation (read-only from now on); return its message count."""
    if conversation is None:
        return 0
    conversation.archive()
    return conversation.messages.count()
