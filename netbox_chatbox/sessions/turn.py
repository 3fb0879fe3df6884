"""One turn: a question and its answer, streamed to the transport and stored, whatever the client does.

Every turn ends in exactly one ``complete`` or one ``error`` event, stored with the answer kept so far; a
client that goes away mid-answer still gets its partial answer stored (:meth:`Turn._abandon`). Apart from
:class:`~.session.ChatSession` so the one loop both transports run reads on its own.
"""

import asyncio
import logging
import time
from contextlib import suppress

from .. import grounding, usage_hooks
from ..answers import Answer
from ..events import Complete, Error
from . import storage
from .refusals import Refused
from .storage import db, refresh_marks, store_answer, store_question

logger = logging.getLogger("netbox_chatbox.sessions")

# A turn that ended so says the provider is down (or refuses the key): health reports it for the TTL.
PROVIDER_DOWN_CODES = ("unavailable", "auth", "billing", "provider_error")


class Turn:
    """Runs one question of a :class:`~.session.ChatSession` through its agent (see the module docstring)."""

    def __init__(self, session, text: str):
        self.session = session
        self.text = text
        self._question = None  # the task storing the question
        self._started_conversation = False  # the question is the conversation's first message

    async def events(self):
        """Yield the turn's event dicts; store both messages."""
        session, text = self.session, self.text
        answer = events = None
        finished = False
        asked_at = time.monotonic()  # the answer's duration is the user's whole wait, the agent's start included
        heartbeat = asyncio.ensure_future(self._keep_marks())
        try:
            try:
                fallback = await session.lease.open(session.user, session.model, session.conversation)
            except Refused as exc:
                finished = True
                yield exc.event.as_dict()
                return
            if fallback:
                yield fallback.as_dict()
            answer = Answer(asked_at)
            continuing = session.conversation is not None
            self._started_conversation = not continuing
            # A new conversation's question is stored while the model starts answering (the first token
            # never waits for the database). A continued one may have been archived or deleted meanwhile
            # (another tab, the HTTP API): that is known before the model is asked.
            self._question = asyncio.ensure_future(db(store_question)(session, text))
            # The turn's tool calls: in the session's branch, their proposals linked to the conversation.
            session.agent.tool_scope.start_turn(session, self._question)
            if continuing:
                try:
                    await self._question
                except Refused as exc:
                    finished = True
                    yield exc.event.as_dict()
                    return
            if session.stop_requested:  # stopped while the agent was starting: nothing to ask it
                finished = True
                yield await self._finish(answer, Complete(model=session.agent.model.id, interrupted=True))
                return
            events = session.agent.stream(text)
            try:
                async for event in events:
                    answer.add(event)
                    if isinstance(event, (Complete, Error)):
                        finished = True
                        if isinstance(event, Error) and (session.agent.broken or session.agent.keeps_failed_turns):
                            await session.lease.close(keep_slot=True)  # the next turn starts a fresh one
                        yield await self._finish(answer, event)
                        return
                    yield event.as_dict()
            except Exception:
                # A bug or an unexpected provider failure: the agent's state is unknown, so close it.
                logger.exception("chat turn failed (model %s, user %s)", session.model.id, session.user)
                finished = True
                await session.lease.close()
                yield await self._finish(
                    answer, Error("provider_error", "The assistant failed while answering; please try again.")
                )
        finally:
            if not finished and answer is not None:
                await self._abandon(events, answer)
            heartbeat.cancel()

    async def _keep_marks(self):
        """Refresh the turn's cross-worker marks while it runs: the conversation's turn mark and the user's
        budget key (see ``storage.TURN_MARK_TTL``); a worker that dies stops refreshing, so they expire."""
        while True:
            await asyncio.sleep(storage.TURN_MARK_REFRESH)
            with suppress(Exception):  # Redis away for a moment: the marks just live their TTL
                await db(refresh_marks)(self.session)

    async def _finish(self, answer, end) -> dict:
        """Store the end of the turn (after the question); return the event for the client."""
        session = self.session
        await self._question
        if isinstance(end, Error) and end.code in PROVIDER_DOWN_CODES and session.agent is not None:
            from .. import health

            health.mark_down(session.agent.model, end.message)  # the selector stops saying "Available"
        stored = await db(store_answer)(session, answer, end, self.text if self._started_conversation else None)
        usage_hooks.turn_stored(session, answer, end, stored)
        await usage_hooks.turn_ended(session)  # before the client hears of the end: it may ask again at once
        if isinstance(end, Complete):
            return {
                **end.as_dict(),
                "duration_ms": stored.duration_ms,  # the whole wait, as stored
                "conversation": session.conversation.pk,
                "message": stored.pk,
                **grounding.event_fields(stored),
            }
        return end.as_dict()

    async def _abandon(self, events, answer):
        """The client went away mid-answer: stop the agent, keep the partial answer, free the agent."""
        session = self.session
        try:
            await asyncio.wait_for(session.agent.interrupt(), 5)
        except Exception:
            logger.warning("interrupting an abandoned turn failed", exc_info=True)
        if events is not None:
            with suppress(Exception):
                await events.aclose()
        await self._finish(answer, Complete(model=session.model.id, interrupted=True))
        await session.lease.close()
