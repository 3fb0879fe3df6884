"""The chat session: one user, one model, one conversation at a time, for the WebSocket and the HTTP API.

What it owns is the session's state and its changes (open, switch, reset, resume, close) and the one running
turn (start, stop); the turn's loop is :mod:`.turn`, its storage :mod:`.storage`, the agent with its CLI slot
and idle timer :mod:`.agent`.
"""

import asyncio
import logging
from contextlib import aclosing

from .. import budgets, catalog, usage_hooks
from ..conf import get_settings
from ..models import Conversation
from ..proposals import branching
from .agent import AgentLease
from .refusals import IN_PROGRESS, Refused, check_message, check_rate, own_conversation, pick_model, selected_model
from .storage import archive, db, select_model, turn_running
from .turn import Turn

logger = logging.getLogger("netbox_chatbox.sessions")

STOP_WAIT = 10  # seconds an interrupted turn gets to finish before it is cancelled


class ChatSession:
    """One user's conversation with one model (see the package docstring)."""

    def __init__(self, user, model: catalog.ModelEntry, conversation: Conversation | None = None, branch=None):
        self.user = user
        # The netbox-branching branch the chat works in (None: main), from the socket's handshake or the
        # request: its tool calls read and propose there (proposals/branching.py).
        self.branch = branch
        self.model = model
        self.conversation = conversation  # created on the first message
        self.lease = AgentLease()  # the agent: created on the first message, closed on switch/reset/idle/close
        self.stop_requested = False  # Stop was pressed during the running turn
        self._task = None  # the socket's running turn
        self._budget = None  # the user's budget reservation for the running turn (budgets.py)
        self._turn_done = asyncio.Event()
        self._turn_done.set()

    @property
    def agent(self):
        return self.lease.agent

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def for_user(cls, user, branch=None) -> "ChatSession":
        """A fresh session on the user's selected model (sync: reads UserConfig)."""
        return cls(user, selected_model(user), branch=branch)

    @classmethod
    def for_request(cls, user, model_id=None, conversation_id=None) -> "ChatSession":
        """A session for one HTTP request, in the branch netbox-branching activated for it: continue a
        conversation, or start one on a model (sync)."""
        branch = branching.active_branch()
        if conversation_id is not None:
            conversation = own_conversation(user, conversation_id)
            model = pick_model(conversation.model_id)
            if model_id is not None and model_id != model.id:
                raise Refused(
                    "bad_request",
                    f"Conversation {conversation.pk} uses model '{model.id}'; "
                    "switching models starts a new conversation (omit 'conversation').",
                )
            return cls(user, model, conversation, branch)
        return cls(user, pick_model(model_id) if model_id is not None else selected_model(user), branch=branch)

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
        try:  # a socket's branch may have been merged or deleted since the handshake
            self.branch = branching.refreshed(self.branch)
        except branching.BranchUnavailable as exc:
            raise Refused("bad_request", f"The chat's {exc}; switch branches in NetBox and reopen the chat.") from None
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
        """Run one turn (:class:`.turn.Turn`): yield event dicts, store both messages. Call :meth:`check` first."""
        self._turn_done.clear()
        self.lease.cancel_idle_timer()
        try:
            async with aclosing(Turn(self, text).events()) as events:
                async for event in events:
                    yield event
        finally:
            await usage_hooks.turn_ended(self)
            self.stop_requested = False  # (not at the start: a Stop may come before the turn's task runs)
            self._turn_done.set()
            self.lease.arm_idle_timer(lambda: self.in_turn, f"model {self.model.id}, user {self.user}")

    async def interrupt(self) -> bool:
        """Stop the running answer (the Stop button); the agent and its context stay."""
        if not self.in_turn:
            return False
        self.stop_requested = True
        if self.agent is not None:
            await self.agent.interrupt()
        return True

    async def _stop_turn(self):
        """Interrupt a running turn and wait until it has stored its partial answer."""
        if not self.in_turn:
            return
        self.stop_requested = True
        try:
            if self.agent is not None:
                await asyncio.wait_for(self.agent.interrupt(), 5)
            await asyncio.wait_for(self._turn_done.wait(), STOP_WAIT)
        except Exception:
            logger.warning("a turn did not stop after interrupt; cancelling it", exc_info=True)
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)

    # -- session changes ---------------------------------------------------------------------

    async def reset(self) -> int:
        """Archive the conversation and start a new one on the same model; return the archived message count."""
        await self._stop_turn()
        await self.lease.close()
        count = await db(archive)(self.conversation)
        self.conversation = None
        return count

    async def switch_model(self, model_id) -> dict:
        """Store the user's new model, archive the conversation, start a new one (the ``model_changed`` event)."""
        entry = await db(select_model)(self.user, model_id)
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
        entry = await db(select_model)(self.user, conversation.model_id)
        await self._stop_turn()
        await self.lease.close()
        self.model, self.conversation = entry, conversation

    async def close(self):
        """End the session: stop any turn (its partial answer is stored) and free the agent.

        Runs to its end even if the caller is cancelled meanwhile (an HTTP client that hung up): the
        cancellation is passed on once the agent, its CLI process and its slot are gone.
        """
        self.lease.cancel_idle_timer()
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
            await self.lease.close()
            await usage_hooks.turn_ended(self)
