"""Scripted stand-ins for Anthropic and Ollama, for trying the chat without a real model.

    python scripts/fake_providers.py          # serves until Ctrl-C; prints the environment to use

Both answer every question the same way: they ask NetBox's `search` tool for the words of the
question, then summarize what came back, so the demo shows streaming, tool activity and object
links. They are the fakes the test suite uses (tests/fakes/), with a demo default reply.
"""

import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import anthropic, ollama  # noqa: E402

CLAUDE_TOOL_PREFIX = "mcp__netbox__"


def _summary(result_text: str) -> list[str]:
    try:
        result = json.loads(result_text)
    except (TypeError, ValueError):
        return ["NetBox answered: ", str(result_text)[:500]]
    items = result.get("results") or result.get("items") or []
    if not items:
        return ["(fake model) ", "I searched NetBox but found nothing you can see for that."]
    lines = [f"- [{i.get('display') or i.get('name') or i.get('id')}]({i.get('url', '')})\n" for i in items[:10]]
    return ["(fake model) ", f"NetBox has {len(items)} matching objects", " you can see:\n\n", *lines]


def _keyword(question: str) -> str:
    """The longest word of the question: a crude stand-in for understanding it."""
    words = [w.strip("?.!,'\"") for w in question.split()] or ["netbox"]
    return max(words, key=len)


class DemoAnthropic(anthropic.FakeAnthropic):
    def default_reply(self, request):
        last = [m for m in request.json["messages"] if m["role"] == "user"][-1]
        if isinstance(last["content"], list) and any(b.get("type") == "tool_result" for b in last["content"]):
            block = next(b for b in last["content"] if b.get("type") == "tool_result")
            content = block.get("content")
            text = "".join(p.get("text", "") for p in content) if isinstance(content, list) else content
            return anthropic.Text(_summary(text), chunk_delay=0.05)
        question = (
            last["content"]
            if isinstance(last["content"], str)
            else " ".join(b.get("text", "") for b in last["content"] if b.get("type") == "text")
        )
        # The Claude CLI adds <system-reminder> context blocks around the user's words.
        question = re.sub(r"<system-reminder>.*?</system-reminder>", " ", question, flags=re.S)
        return anthropic.ToolUse(CLAUDE_TOOL_PREFIX + "search", {"query": _keyword(question)})


class DemoOllama(ollama.FakeOllama):
    def default_reply(self, request):
        last = request.json["messages"][-1]
        if last["role"] == "tool":
            return ollama.Text(_summary(last["content"]), chunk_delay=0.05)
        return ollama.ToolCalls([("search", {"query": _keyword(last["content"])})])


if __name__ == "__main__":
    # Free ports, so a second demo (or the test that runs this script) never collides with the first.
    anthropic_fake, ollama_fake = DemoAnthropic().start(), DemoOllama().start()
    print(
        f"export ANTHROPIC_BASE_URL={anthropic_fake.url} ANTHROPIC_API_KEY=fake-demo-key "
        f"LITELLM_ENABLED=1 OLLAMA_BASE_URL={ollama_fake.url}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
