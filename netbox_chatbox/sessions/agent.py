"""A session's agent and what it holds while it lives: a Claude CLI slot (path A) and an idle timer.

Apart from the turn because the accounting here must hold whatever a turn does: an agent starts only with a
slot when it may start a CLI, gives the slot back when it ends (even when cancelled: a slot held by nobody
is a "busy" for everybody), and ends after ``session_idle_timeout`` unused (the conversation stays; the next
question starts a new agent from the stored history).
"""

import asyncio
import logging

from .. import catalog, usage_hooks
from ..conf import get_settings
from ..resources import sdk_slots
from .refusals import Refused
from .storage import db, history

logger = logging.getLogger("netbox_chatbox.sessions")


class CliSlot:
    """One session's claim on the worker's ``max_active_sessions`` Claude CLI slots (held at most once)."""

    def __init__(self):
        self.held = False

    def take(self, why="All Claude chat sessions on this server are in use"):
        """Hold a slot (no-op when held); raise Refused("busy") when all are in use."""
        if self.held:
            return
        if not sdk_slots.acquire():
            raise Refused("busy", f"{why}; please try again in a minute.")
        self.held = True

    def release(self):
        if self.held:
            self.held = False
            sdk_slots.release()


class AgentLease:
    """A session's lease on an agent: opened on the first question, closed on switch, reset, idle or close."""

    def __init__(self):
        self.agent = None
        self.slot = CliSlot()
        self._idle_timer = None
        self._idle_task = None

    async def open(self, user, model: catalog.ModelEntry, conversation):
        """Create the agent on first use; return its Fallback event (or None). Raises Refused."""
        if self.agent is not None:
            return None
        from .. import health
        from ..agents import AgentUnavailable, create_agent

        # Reserve the CLI slot before a CLI can start: for Claude models, and for a path B model whose
        # provider is down (the factory then answers with Claude). Measured without this: a burst of 200
        # path B chats on a worker whose Ollama check timed out started 200 CLI processes (7 GB).
        if model.path == catalog.PATH_SDK:
            self.slot.take()
        elif not (await health.model_status(model))[0]:
            self.slot.take(
                f"{model.name} is unavailable right now, and all Claude sessions that could answer instead are in use"
            )
        past = await db(history)(conversation) if conversation else []
        agent = None
        try:
            agent = await create_agent(model.id, user, history=past)
        except AgentUnavailable as exc:
            raise Refused("unavailable", str(exc)) from None
        except Exception:
            logger.exception("creating the agent for model %s failed", model.id)
            raise Refused("unavailable", "The assistant could not start; please try again later.") from None
        finally:
            if agent is None:
                self.slot.release()
        # The provider's state may have changed meanwhile: hold a slot exactly for a path A agent.
        if agent.model.path == catalog.PATH_SDK and not self.slot.held:
            try:
                self.slot.take()
            except Refused:
                await agent.close()
                raise
        elif agent.model.path != catalog.PATH_SDK:
            self.slot.release()
        self.agent = agent
        usage_hooks.agent_opened(agent)
        return agent.fallback

    async def close(self, keep_slot=False):
        """Close the agent; ``keep_slot``: for the agent that replaces it (a user is never refused mid-chat)."""
        agent, self.agent = self.agent, None
        try:
            if agent is not None:
                usage_hooks.agent_closed(agent)
                await agent.close()
        except Exception:
            logger.exception("closing the agent for model %s failed", agent.model.id)
        finally:  # even when cancelled: a slot held by nobody is a "busy" for everybody
            if not keep_slot:
                self.slot.release()

    def arm_idle_timer(self, busy, description=""):
        """Close an unused agent after ``session_idle_timeout`` unless ``busy()`` says a turn runs then."""
        self.cancel_idle_timer()
        if self.agent is not None:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(get_settings().session_idle_timeout, self._on_idle, busy, description)

    def cancel_idle_timer(self):
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _on_idle(self, busy, description):
        self._idle_timer = None
        if not busy():
            logger.info("closing idle chat session (%s)", description)
            self._idle_task = asyncio.ensure_future(self.close())
