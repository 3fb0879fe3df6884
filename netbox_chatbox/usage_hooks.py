"""What a chat session reports about usage: metrics when a turn is stored and when an agent starts or
stops, and the release of the user's budget reservation when a turn ends (one call each in sessions/)."""

from asgiref.sync import sync_to_async

from . import budgets, metrics
from .events import Complete, Error
from .tools import TOOLS


def _tool_name(name) -> str:
    """A registered tool's name (the Claude CLI prefixes ``mcp__<server>__``); anything else is 'unknown'."""
    name = str(name or "").rsplit("__", 1)[-1]
    return name if name in TOOLS else "unknown"


def turn_stored(session, answer, end, message):
    """One turn ended with ``end`` (Complete or Error) and is stored: count it with the stored figures."""
    complete = end if isinstance(end, Complete) else None
    agent = session.agent
    metrics.turn_finished(
        session.model.id,
        agent.model.path if agent else session.model.path,
        outcome="error" if isinstance(end, Error) else ("interrupted" if complete.interrupted else "ok"),
        code=end.code if isinstance(end, Error) else None,
        fallback=bool(agent and agent.fallback) and (complete is not None or bool(answer.text or answer.tools)),
        input_tokens=complete and complete.input_tokens,
        output_tokens=complete and complete.output_tokens,
        cost_usd=complete and complete.cost_usd,
        duration_ms=message.duration_ms
        if message is not None and message.duration_ms is not None
        else answer.elapsed_ms,
        first_token_s=answer.first_text - answer.started if answer.first_text else None,
        tools=[{"tool": _tool_name(t.get("tool")), "ok": t.get("ok", False)} for t in answer.tools.values()],
    )


async def turn_ended(session):
    """Free the user's budget reservation (after the answer is stored, so the next check counts it)."""
    reservation, session._budget = session._budget, None
    if reservation:
        await sync_to_async(budgets.release, thread_sensitive=False)(reservation)


def agent_opened(agent):
    metrics.agent_opened(agent.model.path)


def agent_closed(agent):
    metrics.agent_closed(agent.model.path)
