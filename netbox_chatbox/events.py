"""The one stream of chat events.

Both model paths (agents.claude, agents.litellm) produce these; both transports (the WebSocket
consumer and the streamed HTTP API) send them to clients as JSON, unchanged, via ``as_dict()``.
"""

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Event:
    type = "event"

    def as_dict(self) -> dict:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class Delta(Event):
    """A piece of the assistant's answer text."""

    text: str
    type = "delta"

    def as_dict(self) -> dict:
        return {"type": "delta", "text": self.text}  # one per token: asdict() costs 5x as much


@dataclass(frozen=True)
class Retract(Event):
    """Withdraw the last ``chars`` characters of the answer's text: the provider retried and said otherwise."""

    chars: int
    type = "retract"


@dataclass(frozen=True)
class ToolStart(Event):
    """The model asked for a NetBox tool; ``summary`` is safe to show ("querying dcim.device")."""

    id: str
    tool: str
    summary: str
    type = "tool_start"


@dataclass(frozen=True)
class ToolEnd(Event):
    """A tool finished; ``objects`` are NetBox objects it returned, as {display, url} for links.
    ``facts`` (what an answer may cite from the result, see grounding.py) stay on the server."""

    id: str
    tool: str
    ok: bool
    summary: str
    objects: list = field(default_factory=list)
    facts: list = field(default_factory=list, repr=False)
    type = "tool_end"

    def as_dict(self) -> dict:
        data = super().as_dict()
        del data["facts"]
        return data


@dataclass(frozen=True)
class Proposed(Event):
    """A proposal tool stored a change proposal for the user's review (docs/changes.md): the card's content.

    ``id`` is the tool call's; ``proposal`` is what GET /api/plugins/chatbox/proposals/<id>/ answers
    (proposal_id, summary, status, count, expires, changes, apply_url). Nothing is applied yet."""

    id: str
    proposal: dict
    type = "proposal"


@dataclass(frozen=True)
class Complete(Event):
    """The answer is finished. ``model`` is the model that actually answered; a ``truncated`` one was cut
    by the output limit (max_output_tokens).

    ``usage_estimated``: the server sent no token counts, so they are litellm's estimate.
    """

    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    duration_ms: int | None = None
    interrupted: bool = False
    truncated: bool = False
    usage_estimated: bool = False
    type = "complete"


@dataclass(frozen=True)
class Error(Event):
    """Something went wrong; ``message`` is written for the user, ``code`` for programs."""

    code: str
    message: str
    type = "error"


@dataclass(frozen=True)
class Fallback(Event):
    """The requested model could not be used; another one answers instead."""

    requested_model: str
    actual_model: str
    requested_path: str
    actual_path: str
    reason: str
    type = "fallback"
