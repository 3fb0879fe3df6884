"""A turn's answer as it will be stored, and a conversation's stored messages as an agent's context."""

import time

from .events import Delta, Proposed, Retract, ToolEnd, ToolStart


class Answer:
    """What the assistant produced in one turn, as it will be stored."""

    def __init__(self, asked_at=None):
        self.parts = []
        self.tools = {}  # tool-call id → {id, tool, summary, ok, objects}, in call order
        self.facts = {}  # tool-call id → what the answer may cite from its result (grounding.py)
        self.started = time.monotonic()  # the model is asked (metrics: time to first token)
        self.asked_at = asked_at or self.started  # the question arrived (the duration users see)
        self.first_text = None  # when the first text arrived (metrics: time to first token)

    def add(self, event):
        if isinstance(event, Delta):
            self.first_text = self.first_text or time.monotonic()
            self.parts.append(event.text)
        elif isinstance(event, Retract):
            self.parts = [self.text[: len(self.text) - event.chars]]
        elif isinstance(event, ToolStart):
            self.tools[event.id] = {"id": event.id, "tool": event.tool, "summary": event.summary}
        elif isinstance(event, ToolEnd):
            self.tools.setdefault(event.id, {"id": event.id, "tool": event.tool}).update(
                summary=event.summary, ok=event.ok, objects=event.objects
            )
            self.facts[event.id] = event.facts
        elif isinstance(event, Proposed):  # stored with the call: History and reloads draw its card
            self.tools.setdefault(event.id, {"id": event.id}).update(proposal=event.proposal["proposal_id"])

    @property
    def proposals(self) -> list[int]:
        return [tool["proposal"] for tool in self.tools.values() if "proposal" in tool]

    @property
    def text(self):
        return "".join(self.parts)

    @property
    def elapsed_ms(self):
        return int((time.monotonic() - self.asked_at) * 1000)


def stored_history(conversation) -> list[dict]:
    """The conversation's user and assistant messages, as [{role, content}], for a new agent.

    A turn that ended in an error is left out, as the agents forget it: asked again, it is asked once.
    """
    history, turn, failed = [], [], False
    for role, content in conversation.messages.values_list("role", "content"):
        if role == "user":
            history += [] if failed else turn
            turn, failed = [], False
        if role == "error":
            failed = True
        elif role in ("user", "assistant") and content:
            turn.append({"role": role, "content": content})
    return history + ([] if failed else turn)
