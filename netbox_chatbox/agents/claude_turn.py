"""What the Claude CLI says during one turn, as chat events: text (once, across retries), tool calls, usage,
and a failed request described for the user. Pure translation, apart from the agent's process handling, so
it can be read and tested against recorded SDK messages on its own.
"""

import json

from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from ..conf import get_settings
from .claude_cli import TOOL_PREFIX
from .retries import RetriedText
from .tooling import tool_events, tool_start


class Turn:
    """Turns the SDK's messages for one answer into chat events."""

    def __init__(self, agent):
        self.agent = agent
        self.interrupted = False
        self.model = None  # the model that answered (from the API's own messages)
        self.api_error = None  # the CLI's error category, from its synthetic error message
        self.tool_calls = 0
        self.tools_running = 0  # tool calls whose result is not back yet
        self._tools = {}  # tool_use id → our tool name
        self._streamed = set()  # API message ids whose text arrived as deltas
        self.text = RetriedText()
        self._usage = {}  # API message id → its usage, as its stream reported it
        self._message_id = None
        self.stop_reason = None  # of the last API message that ended as its protocol ends

    def handle(self, message):
        if isinstance(message, StreamEvent):
            if message.parent_tool_use_id is None:
                yield from self._stream_event(message.event)
        elif isinstance(message, AssistantMessage):
            if message.error:
                self.api_error = message.error
                return
            self.model = message.model
            for block in message.content:
                if isinstance(block, TextBlock) and block.text and message.message_id not in self._streamed:
                    # not streamed (e.g. the CLI's non-streaming retry): a whole message at once
                    self._streamed.add(message.message_id)
                    self.text.start()
                    yield from self.text.text(block.text)
                    yield from self.text.stop()
                elif isinstance(block, ToolUseBlock):
                    name = block.name.removeprefix(TOOL_PREFIX)
                    self._tools[block.id] = name
                    self.tool_calls += 1
                    self.tools_running += 1
                    yield tool_start(block.id, name, block.input)
        elif isinstance(message, UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock) and block.tool_use_id in self._tools:
                    self.tools_running = max(self.tools_running - 1, 0)
                    yield from tool_events(block.tool_use_id, self._tools[block.tool_use_id], _parse_result(block))
        elif isinstance(message, SystemMessage) and message.subtype == "init":
            self.agent.cli_model = message.data.get("model")

    def streamed_usage(self) -> dict:
        """The turn's usage as the API messages' streams reported it (for a turn without a result's)."""
        return _sum_usage(self._usage.values())

    def _stream_event(self, event):
        kind = event.get("type")
        if kind == "message_start":
            self._streamed.add(event["message"].get("id"))
            self._message_id = event["message"].get("id")
            self._usage[self._message_id] = dict(event["message"].get("usage") or {})
            self.text.start()
        elif kind == "content_block_delta" and event["delta"].get("type") == "text_delta":
            yield from self.text.text(event["delta"]["text"])
        if kind == "message_delta" and event.get("usage"):
            self._usage.setdefault(self._message_id, {}).update(event["usage"])
        if kind == "message_delta" and event.get("delta", {}).get("stop_reason"):
            self.stop_reason = event["delta"]["stop_reason"]
            yield from self.text.stop()


def _sum_usage(usages) -> dict:
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    return {key: sum(usage.get(key) or 0 for usage in usages) for key in keys}


def _parse_result(block: ToolResultBlock):
    """Our tools answer JSON text; anything else (the SDK's own validation errors) is an error."""
    content = block.content
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    try:
        result = json.loads(content or "")
    except ValueError:
        return {"error": content or "the tool failed"}
    return result if isinstance(result, dict) else {"error": "unexpected tool result"}


_BY_STATUS = {
    401: ("auth", "Claude rejected this NetBox's Anthropic API key. Ask your NetBox administrator to check it."),
    403: ("auth", "Claude rejected this NetBox's Anthropic API key. Ask your NetBox administrator to check it."),
    402: ("billing", "The Anthropic account has a billing problem. Ask your NetBox administrator."),
    404: ("model_not_found", "This Claude model is not available to this NetBox's Anthropic account."),
    429: ("rate_limited", "Claude is receiving too many requests right now. Try again in a minute."),
    400: ("bad_request", "Claude could not process this request. Try rephrasing it or start a new conversation."),
    413: ("bad_request", "The conversation is too long for Claude; start a new conversation."),
}
_BY_CATEGORY = {
    "authentication_failed": _BY_STATUS[401],
    "billing_error": _BY_STATUS[402],
    "rate_limit": _BY_STATUS[429],
    "invalid_request": _BY_STATUS[400],
}


def describe_failure(result: ResultMessage, category) -> tuple[str, str]:
    """(code, user message) for a failed turn; never the raw provider text."""
    if result.subtype == "error_max_turns":
        rounds = get_settings().max_tool_rounds
        return "tool_limit", (f"Answering needed more than {rounds} rounds of NetBox lookups. Ask a narrower question.")
    status = result.api_error_status
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if category in _BY_CATEGORY:
        return _BY_CATEGORY[category]
    if status is None and "timed out" in (result.result or "").lower():
        return "timeout", f"Claude did not answer within {get_settings().anthropic_timeout} s. Try again."
    if status is None:
        return "unavailable", (
            "Claude could not be reached. Try again in a moment; if it keeps happening, ask your NetBox administrator."
        )
    return "unavailable", f"Claude is temporarily unavailable (HTTP {status}). Try again in a moment."
