"""Chat sessions: the one place that runs a turn, for the WebSocket and the HTTP API alike.

A :class:`ChatSession` is bound to one user and one model. It creates the agent lazily through the
factory (:func:`netbox_chatbox.agents.create_agent`), streams the agent's events to the transport,
stores the user's message and the answer (tokens, cost, duration) in PostgreSQL, and makes sure an
agent never outlives its session: a model switch, a reset, an idle timeout, a disconnect and the end
of an HTTP request all close it (for path A that ends the Claude CLI process).

The plan's rules hold: one session per connection, bound to one model; a model switch archives the
conversation and starts a new one; context never crosses conversations.

The parts, each readable and testable on its own: ``session`` (the session's state and changes), ``turn``
(one question and its answer), ``storage`` (messages, usage, the cross-worker turn mark), ``agent`` (the agent,
its Claude CLI slot and idle timer), ``refusals`` (what is refused before anything runs, and its HTTP status).
"""

from .refusals import HTTP_STATUS, Refused, check_rate
from .session import ChatSession
from .storage import db, turn_key, turn_running

__all__ = ("HTTP_STATUS", "ChatSession", "Refused", "check_rate", "db", "turn_key", "turn_running")
