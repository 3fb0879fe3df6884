"""Chat sessions: the one place that runs a turn, for the WebSocket and the HTTP API alike.

A :class:`ChatSession` is bound to one user and one model. It creates the agent lazily through the
factory (:func:`netbox_chatbox.agents.create_agent`), streams the agent's events to the transport,
stores the user's message and the answer (tokens, cost, duration) in PostgreSQL, and makes sure an
agent never outlives its session: a model switch, a reset, an idle timeout, a disconnect and the end
of an HTTP request all close it (for path A that ends the Claude CLI process).

The plan's rules hold: one session per connection, bound to one model; a model switch archives the
conversation and starts a new one; context never crosses conversations.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing, suppress
from decimal import Decimal

from channels.db import database_sync_to_async
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import budgets, catalog, grounding, usage_hooks
from .answers import Answer, stored_history
from .conf import get_settings
from .events import Complete, Error
from .models import Conversation, Message
from .page_context import question_of
from .preferences import get_user_model, set_user_model
from .proposals.tools import adopt as adopt_proposals
from .resources import sdk_slots

logger = logging.getLogger("netbox_chatbox.sessions")

TITLE_CHARS = 80
STOP_WAIT = 10  # seconds an interrupted turn gets to finish before it is cancelled
TURN_MARK_TTL = 1800  # seconds; outlives any turn, matters only if a worker dies mid-turn
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


# Threads for the sessions' short database and cache calls (each call is its own transaction).
_blocking = ThreadPoolExecutor(max_workers=8, thread_name_prefix="netbox-chatbox")


def db(func):
    """Run a short ORM or cache call off the event loop, in the sessions' own threads.

    Not in the one thread-sensitive thread that sync_to_async uses by default, nor in the loop's
    default executor: with 50 chats starting at once, every turn's storage queued there, and the
    agents' own thread work waited behind it (measured: seconds, then hundreds of ms).
    """
    return database_sync_to_async(func, thread_sensitive=False, executor=_blocking)


# A turn that ended so says the provider is down (or refuses the key): health reports it for the TTL.
PROVIDER_DOWN_CODES = ("unavailable", "auth", "billing", "provider_error")


def _turn_key(conversation_id) -> str:
    return f"netbox_chatbox:turn:{conversation_id}"


def turn_running(conversation_id) -> bool:
    """Whether a turn is answering in this conversation (any worker: Redis), so archiving must wait."""
    return bool(cache.get(_turn_key(conversation_id)))


class Refused(Exception):
    """A request the session will not carry out; ``event`` is the error event for the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.event = Error(code, message)
        self.status = HTTP_STATUS.get(code, 400)


def check_rate(user) -> None:
    """Count one chat message against the user's per-minute limit (in Redis, so it holds across workers)."""
    limit = get_settings().rate_limit_per_minute
    if not limit:
        return
    key = f"netbox_chatbox:rate:{user.pk}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=120)
    if cache.incr(key) > limit:
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


class ChatSession:
    """One user's conversation with one model (see the module docstring)."""

    def __init__(self, user, model: catalog.ModelEntry, conversation: Conversation | None = None):
        self.user = user
        self.model = model
        self.conversation = conversation  # created on the first message
        self.agent = None  # created on the first message, closed on switch/reset/idle/close
        self._slot = False  # whether this session holds one of the path A slots
        self._idle_timer = None
        self._idle_task = None
        self._task = None  # the socket's running turn
        self._question = None  # the task storing the running turn's question
        self._stop_requested = False
        self._budget = None  # the user's budget reservation for the running turn (budgets.py)
        self._turn_done = asyncio.Event()
        self._turn_done.set()

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def for_user(cls, user) -> "ChatSession":
        """A fresh session on the user's selected model (sync: reads UserConfig)."""
        return cls(user, selected_model(user))

    @classmethod
    def for_request(cls, user, model_id=None, conversation_id=None) -> "ChatSession":
        """A session for one HTTP request: continue a conversation, or start one on a model (sync)."""
        if conversation_id is not None:
            conversation = own_conversation(user, conversation_id)
            model = pick_model(conversation.model_id)
            if model_id is not None and model_id != model.id:
                raise Refused(
                    "bad_request",
                    f"Conversation {conversation.pk} uses model '{model.id}'; "
                    "switching models starts a new conversation (omit 'conversation').",
                )
            return cls(user, model, conversation)
        return cls(user, pick_model(model_id) if model_id is not None else selected_model(user))

    def describe(self) -> dict:
        """The ``session`` event: which conversation and model this session is on."""
        return {
            "type": "session",
            "conversation": self.conversation.pk if self.conversation else None,
            "model": {
                "id": self.model.id,
                "name": self.model.name,
                "path": self.model.path,
                "provider": self.model.provider,
            },
            "selection_enabled": get_settings().enable_model_selection,
        }

    @property
    def in_turn(self) -> bool:
        return not self._turn_done.is_set()

    # -- turns -------------------------------------------------------------------------------

    def check(self, text) -> str:
        """Refuse a message before anything is stored: size, a turn already running, rate (sync: Redis)."""
        text = check_message(text)
        if self.in_turn or (self.conversation is not None and turn_running(self.conversation.pk)):
            raise Refused("in_progress", IN_PROGRESS)
        check_rate(self.user)
        self._budget = budgets.reserve(self.user, self.model)
        return text

    def start(self, text: str, send) -> asyncio.Task:
        """Run a turn in the background (the socket keeps reading, e.g. for ``interrupt``)."""
        self._turn_done.clear()

        async def run():
            async with aclosing(self.stream(text)) as events:
                async for event in events:
                    await send(event)

        self._task = asyncio.create_task(run())
        return self._task

    async def stream(self, text: str):
        """Run one turn: yield event dicts, store both messages. Call :meth:`check` first."""
        self._turn_done.clear()
        self._cancel_idle_timer()
        answer = events = None
        finished = False
        asked_at = time.monotonic()  # the answer's duration is the user's whole wait, the agent's start included
        try:
            try:
                fallback = await self._ensure_agent()
            except Refused as exc:
                finished = True
                yield exc.event.as_dict()
                return
            if fallback:
                yield fallback.as_dict()
            answer = Answer(asked_at)
            continuing = self.conversation is not None
            # A new conversation's question is stored while the model starts answering (the first token
            # never waits for the database). A continued one may have been archived or deleted meanwhile
            # (another tab, the HTTP API): that is known before the model is asked.
            self._question = asyncio.ensure_future(db(self._store_question)(text))
            if continuing:
                try:
                    await self._question
                except Refused as exc:
                    finished = True
                    yield exc.event.as_dict()
                    return
            if self._stop_requested:  # stopped while the agent was starting: nothing to ask it
                finished = True
                yield await self._finish(answer, Complete(model=self.agent.model.id, interrupted=True))
                return
            events = self.agent.stream(text)
            try:
                async for event in events:
                    answer.add(event)
                    if isinstance(event, (Complete, Error)):
                        finished = True
                        if isinstance(event, Error) and (self.agent.broken or self.agent.keeps_failed_turns):
                            await self._close_agent(keep_slot=True)  # the next turn starts a fresh one
                        yield await self._finish(answer, event)
                        return
                    yield event.as_dict()
            except Exception:
                # A bug or an unexpected provider failure: the agent's state is unknown, so close it.
                logger.exception("chat turn failed (model %s, user %s)", self.model.id, self.user)
                finished = True
                await self._close_agent()
                yield await self._finish(
                    answer, Error("provider_error", "The assistant failed while answering; please try again.")
                )
        finally:
            if not finished and answer is not None:
                await self._abandon(events, answer)
            await usage_hooks.turn_ended(self)
            self._stop_requested = False  # (not at the start: a Stop may come before the turn's task runs)
            self._turn_done.set()
            self._arm_idle_timer()

    async def _finish(self, answer, end) -> dict:
        """Store the end of the turn (after the question); return the event for the client."""
        await self._question
        if isinstance(end, Error) and end.code in PROVIDER_DOWN_CODES and self.agent is not None:
            from . import health

            health.mark_down(self.agent.model, end.message)  # the selector stops saying "Available"
        stored = await db(self._store_answer)(answer, end)
        usage_hooks.turn_stored(self, answer, end, stored)
        await usage_hooks.turn_ended(self)  # before the client hears of the end: it may ask again at once
        if isinstance(end, Complete):
            return {
                **end.as_dict(),
                "duration_ms": stored.duration_ms,  # the whole wait, as stored
                "conversation": self.conversation.pk,
                "message": stored.pk,
                **grounding.event_fields(stored),
            }
        return end.as_dict()

    async def _abandon(self, events, answer):
        """The client went away mid-answer: stop the agent, keep the partial answer, free the agent."""
        try:
            await asyncio.wait_for(self.agent.interrupt(), 5)
        except Exception:
            logger.warning("interrupting an abandoned turn failed", exc_info=True)
        if events is not None:
            with suppress(Exception):
                await events.aclose()
        await self._finish(answer, Complete(model=self.model.id, interrupted=True))
        await self._close_agent()

    async def interrupt(self) -> bool:
        """Stop the running answer (the Stop button); the agent and its context stay."""
        if not self.in_turn:
            return False
        self._stop_requested = True
        if self.agent is not None:
            await self.agent.interrupt()
        return True

    async def _stop_turn(self):
        """Interrupt a running turn and wait until it has stored its partial answer."""
        if not self.in_turn:
            return
        self._stop_requested = True
        try:
            if self.agent is not None:
                await asyncio.wait_for(self.agent.interrupt(), 5)
            await asyncio.wait_for(self._turn_done.wait(), STOP_WAIT)
        except Exception:
            logger.warning("a turn did not stop after interrupt; cancelling it", exc_info=True)
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)

    # -- agent lifecycle ---------------------------------------------------------------------

    async def _ensure_agent(self):
        """Create the agent on first use; return its Fallback event (or None). Raises Refused."""
        if self.agent is not None:
            return None
        from . import health
        from .agents import AgentUnavailable, create_agent

        # Reserve the CLI slot before a CLI can start: for Claude models, and for a path B model whose
        # provider is down (the factory then answers with Claude). Measured without this: a burst of 200
        # path B chats on a worker whose Ollama check timed out started 200 CLI processes (7 GB).
        if self.model.path == catalog.PATH_SDK:
            self._take_slot()
        elif not (await health.model_status(self.model))[0]:
            self._take_slot(
                f"{self.model.name} is unavailable right now, and all Claude sessions that could "
                "answer instead are in use"
            )
        history = await db(self._history)() if self.conversation else []
        agent = None
        try:
            agent = await create_agent(self.model.id, self.user, history=history)
        except AgentUnavailable as exc:
            raise Refused("unavailable", str(exc)) from None
        except Exception:
            logger.exception("creating the agent for model %s failed", self.model.id)
            raise Refused("unavailable", "The assistant could not start; please try again later.") from None
        finally:
            if agent is None:
                self._release_slot()
        # The provider's state may have changed meanwhile: hold a slot exactly for a path A agent.
        if agent.model.path == catalog.PATH_SDK and not self._slot:
            try:
                self._take_slot()
            except Refused:
                await agent.close()
                raise
        elif agent.model.path != catalog.PATH_SDK:
            self._release_slot()
        self.agent = agent
        usage_hooks.agent_opened(agent)
        return agent.fallback

    def _take_slot(self, why="All Claude chat sessions on this server are in use"):
        if self._slot:
            return
        if not sdk_slots.acquire():
            raise Refused("busy", f"{why}; please try again in a minute.")
        self._slot = True

    def _release_slot(self):
        if self._slot:
            self._slot = False
            sdk_slots.release()

    async def _close_agent(self, keep_slot=False):
        """Close the agent; ``keep_slot``: for the agent that replaces it (a user is never refused mid-chat)."""
        agent, self.agent = self.agent, None
        try:
            if agent is not None:
                usage_hooks.agent_closed(agent)
                await agent.close()
        except Exception:
            logger.exception("closing the agent for model %s failed", self.model.id)
        finally:  # even when cancelled: a slot held by nobody is a "busy" for everybody
            if not keep_slot:
                self._release_slot()

    def _arm_idle_timer(self):
        """Close an unused agent after ``session_idle_timeout`` (the conversation stays; it resumes)."""
        self._cancel_idle_timer()
        if self.agent is not None:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(get_settings().session_idle_timeout, self._on_idle)

    def _cancel_idle_timer(self):
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _on_idle(self):
        self._idle_timer = None
        if not self.in_turn:
            logger.info("closing idle chat session (model %s, user %s)", self.model.id, self.user)
            self._idle_task = asyncio.ensure_future(self._close_agent())

    # -- session changes ---------------------------------------------------------------------

    async def reset(self) -> int:
        """Archive the conversation and start a new one on the same model; return the archived message count."""
        await self._stop_turn()
        await self._close_agent()
        count = await db(self._archive)()
        self.conversation = None
        return count

    async def switch_model(self, model_id) -> dict:
        """Store the user's new model, archive the conversation, start a new one (the ``model_changed`` event)."""
        entry = await db(self._select)(model_id)
        old = self.model
        count = await self.reset()
        self.model = entry
        return {
            "type": "model_changed",
            "old_model": old.id,
            "new_model": entry.id,
            "archived_message_count": count,
            "context_reset": True,
            "conversation": None,
        }

    async def resume(self, conversation_id):
        """Continue one of the user's active conversations (on its model, which becomes the user's model)."""
        conversation = await db(own_conversation)(self.user, conversation_id)
        if self.conversation is not None and conversation.pk == self.conversation.pk:
            return
        entry = await db(self._select)(conversation.model_id)
        await self._stop_turn()
        await self._close_agent()
        self.model, self.conversation = entry, conversation

    async def close(self):
        """End the session: stop any turn (its partial answer is stored) and free the agent.

        Runs to its end even if the caller is cancelled meanwhile (an HTTP client that hung up): the
        cancellation is passed on once the agent, its CLI process and its slot are gone.
        """
        self._cancel_idle_timer()
        closing = asyncio.ensure_future(self._close())
        cancelled = False
        while not closing.done():
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError
        closing.result()

    async def _close(self):
        try:
            await self._stop_turn()
        finally:
            await self._close_agent()
            await usage_hooks.turn_ended(self)

    # -- storage (sync; called through db()) ---------------------------------------------------

    def _select(self, model_id) -> catalog.ModelEntry:
        """Validate a model and store it as the user's choice (the same UserConfig value the API sets)."""
        entry = pick_model(model_id)
        if get_settings().enable_model_selection:
            set_user_model(self.user, entry.id)
        return entry

    def _history(self) -> list[dict]:
        return stored_history(self.conversation) if self.conversation else []

    def _store_question(self, text):
        with transaction.atomic():
            if self.conversation is None:
                title = " ".join(question_of(text).split())[:TITLE_CHARS]
                self.conversation = Conversation.objects.create(
                    owner=self.user, title=title, model_id=self.model.id, path=self.model.path
                )
            # The row lock orders this against an archive of the same conversation (the API's archive
            # takes it too): either the archive comes first and this refuses, or it finds the turn mark.
            elif not Conversation.objects.select_for_update().filter(pk=self.conversation.pk, archived=False):
                raise Refused(
                    "archived",
                    "This conversation was archived or deleted meanwhile (read-only); start a new chat to continue.",
                )
            # One turn at a time per conversation, across requests, sockets and workers (until _store_answer).
            if not cache.add(_turn_key(self.conversation.pk), True, TURN_MARK_TTL):
                raise Refused("in_progress", IN_PROGRESS)
            try:
                Message.objects.create(conversation=self.conversation, role="user", content=text)
            except BaseException:
                cache.delete(_turn_key(self.conversation.pk))
                raise

    def _store_answer(self, answer: Answer, end) -> Message:
        """Store the answer (and an error, if the turn ended with one); add usage to the conversation."""
        cost = Decimal(str(end.cost_usd)) if isinstance(end, Complete) and end.cost_usd is not None else None
        complete = end if isinstance(end, Complete) else None
        duration = answer.elapsed_ms  # from the question's arrival: a first answer counts the agent's start
        with transaction.atomic():
            message = None
            if complete or answer.text or answer.tools:
                content, grounded = grounding.apply(
                    self.conversation, answer.text, list(answer.tools.values()), answer.facts
                )
                message = Message.objects.create(
                    conversation=self.conversation,
                    role="assistant",
                    content=content,
                    grounding=grounded,
                    model=complete.model if complete else (self.agent.model.id if self.agent else self.model.id),
                    tool_calls=list(answer.tools.values()),
                    interrupted=complete.interrupted if complete else True,
                    truncated=bool(complete and complete.truncated),
                    fallback=bool(self.agent and self.agent.fallback),
                    input_tokens=complete.input_tokens if complete else None,
                    output_tokens=complete.output_tokens if complete else None,
                    cost_usd=cost,
                    duration_ms=duration,
                    usage_estimated=bool(complete and complete.usage_estimated),
                )
                adopt_proposals(self.user, answer.proposals, self.conversation)
            if isinstance(end, Error):
                message = Message.objects.create(conversation=self.conversation, role="error", content=end.message)
            usage = {
                "input_tokens": F("input_tokens") + ((complete and complete.input_tokens) or 0),
                "output_tokens": F("output_tokens") + ((complete and complete.output_tokens) or 0),
                "duration_ms": F("duration_ms") + duration,
                "last_updated": timezone.now(),
            }
            if cost is not None:
                usage["cost_usd"] = Coalesce(F("cost_usd"), Value(Decimal(0))) + Value(cost)
            Conversation.objects.filter(pk=self.conversation.pk).update(**usage)
        cache.delete(_turn_key(self.conversation.pk))
        return message

    def _archive(self) -> int:
        if self.conversation is None:
            return 0
        self.conversation.archive()
        return self.conversation.messages.count()
