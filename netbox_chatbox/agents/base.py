"""The interface both model paths implement; transports only ever talk to this."""

from collections.abc import AsyncIterator

from ..catalog import ModelEntry
from ..events import Event, Fallback
from .tooling import ToolScope


class BaseAgent:
    """One conversation with one model, for one NetBox user.

    Lifecycle: ``await start()`` once (``agents.create_agent`` returns agents already started), then
    ``stream(message)`` per user turn (an async iterator of events ending with exactly one Complete or
    Error; failures are Error events, never exceptions), ``await interrupt()`` to stop the current turn
    (the stream then ends with Complete(interrupted=True); the text streamed so far stays in the
    conversation), and ``await close()`` when the session ends (frees every resource, e.g. the Claude
    CLI process; safe to call twice). The conversation memory lives in the agent; one turn at a time.
    """

    # Whether the agent's memory keeps a turn that ended in an error (the Claude CLI's does): the session
    # then replaces the agent, from the stored history, so a retried question is not asked twice.
    keeps_failed_turns = False

    @property
    def broken(self) -> bool:
        """The agent cannot answer any more (e.g. its process died): the session replaces it."""
        return False

    def __init__(self, model: ModelEntry, user, fallback: Fallback | None = None):
        self.model = model  # the catalog entry that will answer (after any fallback)
        self.user = user  # the NetBox user whose permissions every tool call runs under
        self.tool_scope = ToolScope(user)  # and, per turn, the branch and conversation (the session sets them)
        self.fallback = fallback  # set by the factory when the requested model could not be used

    async def start(self) -> None:
        raise NotImplementedError

    def stream(self, message: str) -> AsyncIterator[Event]:
        raise NotImplementedError

    async def interrupt(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError
