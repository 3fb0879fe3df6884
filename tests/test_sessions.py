"""Issue 5: sessions on path A — the Claude CLI process lives exactly as long as its session.

Real claude-agent-sdk + its bundled CLI against the fake Anthropic API; the CLI processes are found
as children of this test process in /proc.
"""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from netbox_chatbox.models import Conversation, Message
from netbox_chatbox.preferences import PREFERENCE_PATH

from .chat_clients import child_pids, only_answer, open_socket
from .fakes.fixtures import FAKE_ANTHROPIC_KEY

pytestmark = pytest.mark.django_db(transaction=True)


def cli_processes() -> set[int]:
    """The Claude CLI processes this test process started (and that are still running)."""
    found = set()
    for pid in child_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"claude" in f.read():
                    found.add(pid)
        except FileNotFoundError:
            pass
    return found


async def wait_until_gone(pids, timeout=10) -> set[int]:
    """Wait for processes to exit; return the ones still running after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (alive := pids & cli_processes()) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    return alive


def asked(fake_anthropic, question) -> list[dict]:
    """The requests to the fake Anthropic API whose last user message is ``question``."""

    def last_text(body):
        content = body["messages"][-1]["content"]
        return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)

    return [body for body in fake_anthropic.conversation_requests() if question in last_text(body)]


@pytest.fixture
def on_claude(chat_user, use_fake_anthropic):
    chat_user.config.set(PREFERENCE_PATH, "claude-haiku-4-5", commit=True)
    return use_fake_anthropic


async def test_model_switch_closes_the_cli_archives_and_resets_context(chat_user, on_claude, use_fake_ollama):
    before = cli_processes()
    on_claude.reply("There are ", "three sites.")
    use_fake_ollama.reply("Hello from Qwen.")
    socket, _ = await open_socket(chat_user)
    assert (await socket.event())["model"]["path"] == "sdk"
    events = await socket.chat("How many sites in Berlin?")
    assert events[-1]["type"] == "complete", events
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "There are three sites."
    old = events[-1]["conversation"]
    cli = cli_processes() - before
    assert len(cli) == 1, "one CLI process for the session"

    await socket.send({"type": "model_change", "model": "ollama-qwen2.5"})
    changed = await socket.event(timeout=30)
    assert changed["type"] == "model_changed" and changed["archived_message_count"] == 2
    assert await wait_until_gone(cli, timeout=5) == set(), "the old session's CLI process must be gone"
    assert (await socket.event())["model"]["id"] == "ollama-qwen2.5"

    events = await socket.chat("Hi")
    assert events[-1]["type"] == "complete"
    sent = [(m["role"], m["content"]) for m in use_fake_ollama.chat_requests()[-1]["messages"] if m["role"] != "system"]
    assert sent == [("user", "Hi")]
    assert cli_processes() - before == set(), "path B starts no CLI"
    assert (await sync_to_async(Conversation.objects.get)(pk=old)).archived is True
    await socket.close()


async def test_switch_back_to_claude_starts_a_fresh_cli_without_the_old_context(chat_user, on_claude):
    before = cli_processes()
    on_claude.reply("Paris.")
    on_claude.reply("Fresh start.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    assert (await socket.chat("Capital of France?"))[-1]["type"] == "complete"
    first_cli = cli_processes() - before
    await socket.send({"type": "model_change", "model": "claude-sonnet-4-5"})
    await socket.until("session", timeout=30)
    assert await wait_until_gone(first_cli) == set()
    assert (await socket.chat("What did I ask before?"))[-1]["type"] == "complete"
    second_cli = cli_processes() - before
    assert len(second_cli) == 1 and not second_cli & first_cli
    request = asked(on_claude, "What did I ask before?")[-1]
    assert "Capital of France" not in json.dumps(request), "no context may cross a model switch"
    assert request["model"] == "claude-sonnet-4-5-20250929"
    await socket.close()
    assert await wait_until_gone(second_cli) == set()


async def test_disconnect_mid_answer_interrupts_stores_partial_and_ends_the_cli(chat_user, on_claude):
    before = cli_processes()
    on_claude.reply(*[f"w{i} " for i in range(100)], chunk_delay=0.1)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    await socket.send({"type": "chat", "message": "Talk for a while"})
    await socket.until("delta", timeout=60)
    cli = cli_processes() - before
    assert len(cli) == 1
    await socket.close()
    assert await wait_until_gone(cli) == set(), "no CLI process may outlive its socket"

    stored = await only_answer(chat_user)
    assert stored.interrupted is True and stored.content.startswith("w0 ") and len(stored.content.split()) < 100


async def test_beyond_max_active_sessions_a_clear_busy_error(chat_user, on_claude, chatbox_config):
    chatbox_config(max_active_sessions=1)
    first, _ = await open_socket(chat_user)
    second, _ = await open_socket(chat_user)
    await first.event()
    await second.event()
    assert (await first.chat("one"))[-1]["type"] == "complete"  # holds the only CLI slot
    busy = await second.chat("two")
    assert [e["type"] for e in busy] == ["error"]
    assert busy[0]["code"] == "busy" and "try again" in busy[0]["message"]
    assert not await sync_to_async(Message.objects.filter(content="two").exists)()
    await first.close()  # frees the slot
    assert (await second.chat("two again"))[-1]["type"] == "complete"
    await second.close()


async def test_idle_session_frees_its_cli_and_resumes_with_history(chat_user, on_claude, chatbox_config):
    chatbox_config(session_idle_timeout=10)  # the smallest value the settings accept
    before = cli_processes()
    on_claude.reply("Three sites.")
    on_claude.reply("Berlin-1, Berlin-2, Berlin-3.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    conversation = (await socket.chat("How many sites in Berlin?"))[-1]["conversation"]
    cli = cli_processes() - before
    assert len(cli) == 1
    await asyncio.sleep(10)
    assert await wait_until_gone(cli, timeout=5) == set(), "an idle session's CLI process is closed"
    # The socket and the conversation are still there; the next message starts a new CLI with the history.
    complete = (await socket.chat("Name them."))[-1]
    assert complete["type"] == "complete" and complete["conversation"] == conversation
    assert "How many sites in Berlin?" in json.dumps(asked(on_claude, "Name them.")[-1])
    await socket.close()


async def test_fallback_to_claude_is_announced_and_counts_as_a_cli_session(
    chat_user, on_claude, use_fake_ollama, chatbox_config
):
    chatbox_config(max_active_sessions=1)
    use_fake_ollama.models = []  # Ollama no longer offers the model: path B cannot answer
    on_claude.reply("Claude here.")
    before = cli_processes()
    await sync_to_async(chat_user.config.set)(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    first, _ = await open_socket(chat_user)
    assert (await first.event())["model"]["id"] == "ollama-qwen2.5"
    events = await first.chat("hello?")
    assert events[0]["type"] == "fallback"
    assert (events[0]["requested_model"], events[0]["actual_model"]) == ("ollama-qwen2.5", "auto")
    assert (events[0]["requested_path"], events[0]["actual_path"]) == ("litellm", "sdk")
    assert events[-1]["type"] == "complete"
    assert len(cli_processes() - before) == 1
    # The fallback agent is a Claude CLI session: it takes the only slot.
    second, _ = await open_socket(chat_user)
    await second.event()
    await second.send({"type": "model_change", "model": "claude-haiku-4-5"})
    await second.until("session")
    busy = await second.chat("me too")
    assert busy[-1]["code"] == "busy"
    await first.close()
    assert await wait_until_gone(cli_processes() - before) == set()
    await second.close()


async def test_no_cli_starts_beyond_the_limit_when_a_path_b_model_is_down(
    chat_user, on_claude, use_fake_ollama, chatbox_config
):
    chatbox_config(max_active_sessions=1)
    before = cli_processes()
    holder, _ = await open_socket(chat_user)  # alice on Claude holds the only CLI slot
    await holder.event()
    assert (await holder.chat("one"))[-1]["type"] == "complete"
    assert len(cli_processes() - before) == 1
    use_fake_ollama.models = []  # the local model is down: its chats would fall back to Claude
    await sync_to_async(chat_user.config.set)(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    sockets = [(await open_socket(chat_user))[0] for _ in range(3)]
    for socket in sockets:
        await socket.event()
    results = await asyncio.gather(*(socket.chat(f"q{i}") for i, socket in enumerate(sockets)))
    for events in results:
        assert [e["type"] for e in events] == ["error"] and events[0]["code"] == "busy"
        assert "Qwen 2.5 14B Instruct is unavailable right now" in events[0]["message"]
    assert len(cli_processes() - before) == 1, "no CLI process may start only to be refused"
    for socket in [holder, *sockets]:
        await socket.close()


async def test_an_agent_that_cannot_start_gives_its_cli_slot_back(chat_user, on_claude, chatbox_config):
    from netbox_chatbox import resources

    chatbox_config(max_active_sessions=1)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    chatbox_config(anthropic_api_key="")  # the admin removed the key: Claude cannot start
    for _ in range(2):  # the second question is refused for the same reason, not as "busy"
        events = await socket.chat("hello?")
        assert [e["type"] for e in events] == ["error"] and events[0]["code"] == "unavailable", events
    assert resources.sdk_slots.in_use == 0
    chatbox_config(anthropic_api_key=FAKE_ANTHROPIC_KEY)
    on_claude.reply("Back.")
    assert (await socket.chat("hello again?"))[-1]["type"] == "complete"
    await socket.close()
