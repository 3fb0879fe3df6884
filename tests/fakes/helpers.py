"""Helpers for driving agents (path A or B) from sync tests.

Agent tests are sync tests that run their coroutine with ``async_to_sync``: the tools' ORM calls
(``sync_to_async``) then come back to the test's thread and see the test's database transaction.
"""

from asgiref.sync import async_to_sync

from netbox_chatbox.events import Complete, Delta, Error, ToolEnd, ToolStart


def run(coroutine_function, *args, **kwargs):
    return async_to_sync(coroutine_function)(*args, **kwargs)


async def collect(agent, message, on_event=None) -> list:
    """All events of one turn; ``on_event(event, events)`` may act mid-stream (e.g. interrupt)."""
    events = []
    async for event in agent.stream(message):
        events.append(event)
        if on_event:
            await on_event(event, events)
    return events


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


def of_type(events, kind) -> list:
    return [e for e in events if isinstance(e, kind)]


def assert_one_terminal(events):
    """A turn ends with exactly one Complete or Error, as its last event."""
    terminals = [e for e in events if isinstance(e, (Complete, Error))]
    assert len(terminals) == 1, events
    assert events[-1] is terminals[0], events
    return terminals[0]


async def chat(model_id, user, *messages, history=()):
    """Create an agent with the factory, ask ``messages`` in turn, close it; (agent, [events per turn])."""
    from netbox_chatbox.agents import create_agent

    agent = await create_agent(model_id, user, history=history)
    try:
        return agent, [await collect(agent, message) for message in messages]
    finally:
        await agent.close()


async def abandon_then_ask(model_id, user, first, second):
    """Stop reading ``first``'s answer after its first delta, then ask ``second``; its events."""
    from netbox_chatbox.agents import create_agent

    agent = await create_agent(model_id, user)
    try:
        async for event in agent.stream(first):
            if isinstance(event, Delta):
                break
        return await collect(agent, second)
    finally:
        await agent.close()


__all__ = (
    "Complete",
    "Delta",
    "Error",
    "ToolEnd",
    "ToolStart",
    "abandon_then_ask",
    "assert_one_terminal",
    "chat",
    "collect",
    "of_type",
    "run",
    "text_of",
)
