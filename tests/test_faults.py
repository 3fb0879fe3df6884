"""Issue 19: faults never corrupt an answer, strand a user or leak capacity.

Real claude-agent-sdk + its CLI and real litellm against the fake providers, which inject each fault at
the HTTP edge. One test per defect of the issue (numbered as there).
"""

import asyncio
import glob
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from netbox_chatbox import resources
from netbox_chatbox.models import Message
from netbox_chatbox.preferences import PREFERENCE_PATH

from .chat_clients import only_answer, open_socket
from .fakes.helpers import Complete, Error, assert_one_terminal, chat, run, text_of
from .fakes.server import Hang
from .servers import free_port, uvicorn_command
from .test_agents_litellm import path_b  # noqa: F401  (the fixture: path B direct and through the proxy)
from .test_sessions import asked, cli_processes, wait_until_gone
from .test_transport_http import CHAT_URL, SSE, parse_sse

STATUS_URL = "/api/plugins/chatbox/status/"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path, monkeypatch):
    """The CLI homes of this test go to a folder of its own (other test runs on the machine make theirs)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def temp_homes() -> set[str]:
    """The Claude CLI's private HOME folders that exist now (in this test's temporary folder)."""
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "netbox-chatbox-claude-*")))


def read_until_complete(response) -> list[dict]:
    """An SSE client that reads up to the ``complete`` (or ``error``) line, then hangs up at once."""
    events = []
    for chunk in response.streaming_content:
        events += parse_sse(chunk.decode())
        if events[-1]["type"] in ("complete", "error"):
            break
    response.close()  # what the WSGI server does when the client disconnects
    return events


# -- 1: an SSE client closing right after `complete` ---------------------------------------------------------


def status(api, superuser) -> dict:
    """What an admin sees: GET /api/plugins/chatbox/status/."""
    response = api(superuser, token=True).get(STATUS_URL)
    assert response.status_code == 200
    return response.json()


def test_sse_client_hanging_up_after_complete_frees_the_claude_slot(
    api, chat_user, superuser, use_fake_anthropic, chatbox_config
):
    chatbox_config(max_active_sessions=2)
    before_cli, before_homes = cli_processes(), temp_homes()
    client = api(chat_user, token=True)
    for i in range(3):  # one more than the slots: a leak shows as "busy"
        use_fake_anthropic.reply(f"Answer {i}.")
        response = client.post(CHAT_URL, {"message": f"q{i}", "model": "claude-haiku-4-5"}, format="json", **SSE)
        events = read_until_complete(response)
        assert events[-1]["type"] == "complete", events
        assert status(api, superuser)["cli_slots_in_use"] == 0
    assert cli_processes() - before_cli == set(), "no CLI process may outlive its request"
    assert temp_homes() - before_homes == set(), "no CLI home folder may outlive its request"
    assert status(api, superuser) == {
        "pid": os.getpid(),
        "cli_slots_in_use": 0,
        "cli_slots_max": 2,
        "cli_processes": 0,
        "temp_homes": 0,
    }
    assert Message.objects.filter(role="assistant").count() == 3


def test_status_is_for_superusers_only(api, chat_user, superuser, use_fake_anthropic):
    assert api(chat_user, token=True).get(STATUS_URL).status_code == 403
    assert api().get(STATUS_URL).status_code == 403
    use_fake_anthropic.reply("Hi.")
    from asgiref.sync import async_to_sync

    from netbox_chatbox.sessions import ChatSession

    async def hold_then_close():  # a socket-style session keeps its CLI between turns
        session = ChatSession.for_request(chat_user, "claude-haiku-4-5")
        events = [e async for e in session.stream("hi")]
        held = await sync_to_async(status)(api, superuser)
        await session.close()
        return events, held, await sync_to_async(status)(api, superuser)

    events, held, freed = async_to_sync(hold_then_close)()
    assert events[-1]["type"] == "complete"
    assert (held["cli_slots_in_use"], held["cli_processes"], held["temp_homes"]) == (1, 1, 1)
    assert (freed["cli_slots_in_use"], freed["cli_processes"], freed["temp_homes"]) == (0, 0, 0)


# -- 5: a Claude CLI killed mid-answer ------------------------------------------------------------------------


@pytest.fixture
def on_claude(chat_user, use_fake_anthropic):
    chat_user.config.set(PREFERENCE_PATH, "claude-haiku-4-5", commit=True)
    return use_fake_anthropic


async def test_killed_cli_is_replaced_and_the_conversation_continues(chat_user, on_claude):
    before = cli_processes()
    on_claude.reply("Three sites.")
    on_claude.reply(*[f"w{i} " for i in range(100)], chunk_delay=0.1)
    on_claude.reply("Berlin-1, Berlin-2, Berlin-3.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    conversation = (await socket.chat("How many sites in Berlin?"))[-1]["conversation"]
    await socket.send({"type": "chat", "message": "Talk for a while"})
    await socket.until("delta", timeout=60)
    (killed,) = cli_processes() - before
    os.kill(killed, signal.SIGKILL)  # the OOM killer, an admin
    error = (await socket.until("complete", "error", timeout=30))[-1]
    assert error["type"] == "error" and "new conversation" not in error["message"]

    complete = (await socket.chat("Name them."))[-1]
    assert complete["type"] == "complete" and complete["conversation"] == conversation
    assert len(cli_processes() - before - {killed}) == 1, "a new CLI answers"
    assert "How many sites in Berlin?" in json.dumps(asked(on_claude, "Name them.")[-1]), "with the history"
    await socket.close()
    assert await wait_until_gone(cli_processes() - before) == set()
    assert resources.sdk_slots.in_use == 0


# -- 16: a question that failed is not remembered twice -------------------------------------------------------


def times_asked(requests, question) -> int:
    """How often ``question`` is in the last request's messages (as the user's text)."""
    text = json.dumps([m for m in requests[-1]["messages"] if m["role"] == "user"])
    return text.count(question)


async def test_a_failed_question_asked_again_is_sent_once_on_claude(chat_user, on_claude):
    on_claude.error(401, "authentication_error", "invalid x-api-key", always=True)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    assert (await socket.chat("Is core-sw1 up?"))[-1]["type"] == "error"
    on_claude.reset()
    on_claude.reply("It is up.")
    assert (await socket.chat("Is core-sw1 up?"))[-1]["type"] == "complete"
    assert times_asked(on_claude.conversation_requests(), "Is core-sw1 up?") == 1
    await socket.close()
    assert resources.sdk_slots.in_use == 0


async def test_a_failed_question_asked_again_is_sent_once_on_ollama(chat_user, use_fake_ollama, chatbox_config):
    chatbox_config(litellm_max_retries=0)
    await sync_to_async(chat_user.config.set)(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    use_fake_ollama.reply("Hello.")
    use_fake_ollama.error(500)
    use_fake_ollama.reply("It is up.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    assert (await socket.chat("hi"))[-1]["type"] == "complete"
    assert (await socket.chat("Is core-sw1 up?"))[-1]["type"] == "error"
    assert (await socket.chat("Is core-sw1 up?"))[-1]["type"] == "complete"
    sent = [(m["role"], m["content"]) for m in use_fake_ollama.chat_requests()[-1]["messages"][1:]]
    assert sent == [("user", "hi"), ("assistant", "Hello."), ("user", "Is core-sw1 up?")]
    await socket.close()


# -- 6: CLI processes die with the worker that started them ---------------------------------------------------


async def test_cli_dies_with_a_worker_killed_mid_answer(chat_user, fake_anthropic, tmp_path):
    """A real uvicorn worker on the test database answers on Claude; it is SIGKILLed mid-answer."""
    from django.conf import settings
    from websockets.asyncio.client import connect

    from .chat_clients import WS_PATH, child_pids, process_alive, session_cookie
    from .fakes.fixtures import FAKE_ANTHROPIC_KEY
    from .test_transport_server import ROOT

    await sync_to_async(chat_user.config.set)(PREFERENCE_PATH, "claude-haiku-4-5", commit=True)
    fake_anthropic.reply(*[f"w{i} " for i in range(300)], chunk_delay=0.1)
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "netbox.settings",
        "NETBOX_CONFIGURATION": "configuration",
        "PYTHONPATH": f"{ROOT / 'devconf'}:{ROOT}",
        "NETBOX_DB": settings.DATABASES["default"]["NAME"],
        "ANTHROPIC_API_KEY": FAKE_ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": fake_anthropic.url,
        "NETBOX_DEBUG": "0",
    }
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(
            uvicorn_command(port, "--lifespan", "off"),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        cookie = await sync_to_async(session_cookie)(chat_user)
        for _ in range(300):
            try:
                ws = await connect(
                    url.replace("http", "ws") + WS_PATH, additional_headers={"Cookie": cookie}, origin=url
                )
                break
            except OSError:
                await asyncio.sleep(0.3)
        async with ws:
            await ws.recv()  # session
            await ws.send(json.dumps({"type": "chat", "message": "Talk for a while"}))
            while json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "delta":
                pass
            cli = {pid for pid in child_pids(server.pid) if b"claude" in Path(f"/proc/{pid}/cmdline").read_bytes()}
            assert len(cli) == 1
            server.kill()
            server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    deadline = time.monotonic() + 10
    while any(map(process_alive, cli)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not any(map(process_alive, cli)), "the CLI must die with its worker"


# -- 2: a request the CLI retries mid-stream ------------------------------------------------------------------


def client_text(events) -> str:
    """The answer as a client shows it: deltas appended, ``retract`` withdrawing the last characters."""
    text = ""
    for event in events:
        if event["type"] == "delta":
            text += event["text"]
        elif event["type"] == "retract":
            text = text[: len(text) - event["chars"]]
    return text


def stored_answers(user):
    return list(
        Message.objects.filter(conversation__owner=user)
        .exclude(role="user")
        .values_list("role", "content", "interrupted")
    )


@pytest.mark.parametrize(
    "retry, shown",
    [
        (("PART-A ", "PART-B ", "REST."), "PART-A PART-B REST."),  # the retry says the same
        (("PART-A ", "PART-C ", "REST."), "PART-A PART-C REST."),  # the retry says something else
        (("PART-A",), "PART-A"),  # the retry says less
    ],
)
async def test_a_retried_request_is_streamed_and_stored_once(chat_user, on_claude, retry, shown):
    on_claude.reply("PART-A ", "PART-B ", "REST.", drop_after=2, chunk_delay=0.2)
    on_claude.reply(*retry)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    events = await socket.chat("hi")
    assert events[-1]["type"] == "complete" and len(on_claude.conversation_requests()) == 2
    assert client_text(events) == shown
    assert (await sync_to_async(stored_answers)(chat_user)) == [("assistant", shown, False)]
    await socket.close()


async def test_a_stream_broken_on_every_attempt_shows_its_text_once_then_the_error(chat_user, on_claude):
    for _ in range(3):  # the first request and the CLI's two retries
        on_claude.reply("PART-A ", "PART-B ", "REST.", drop_after=2, chunk_delay=0.2)
    on_claude.error(500, always=True)  # and its last try, not streamed
    socket, _ = await open_socket(chat_user)
    await socket.event()
    events = await socket.chat("hi", timeout=90)
    assert events[-1]["type"] == "error", (events, [r.json.get("stream") for r in on_claude.requests])
    assert client_text(events) == "PART-A PART-B "
    assert (await sync_to_async(stored_answers)(chat_user)) == [
        ("assistant", "PART-A PART-B ", True),
        ("error", events[-1]["message"], False),
    ]
    await socket.close()


# -- 3: the Claude timeout holds for the whole request, the CLI's retries included ----------------------------


async def test_a_silent_provider_is_a_timeout_within_the_configured_time(chat_user, on_claude, chatbox_config):
    chatbox_config(anthropic_timeout=4)
    on_claude.always(Hang(60))  # every attempt stalls
    socket, _ = await open_socket(chat_user)
    await socket.event()
    events = await socket.chat("hi", timeout=120)
    elapsed = time.monotonic() - on_claude.requests[0].received_at  # from the first request to the error
    assert events[-1]["type"] == "error" and events[-1]["code"] == "timeout", events
    assert "4 s" in events[-1]["message"]
    assert elapsed < 4 + 2, f"answered {elapsed:.1f} s after the first request"
    on_claude.reset()  # the CLI was replaced: the next question is answered
    on_claude.reply("Back.")
    assert (await socket.chat("again?"))[-1]["type"] == "complete"
    await socket.close()
    assert resources.sdk_slots.in_use == 0


# -- 4, 7, 13: a stream that did not end the way its protocol ends is an error, not an answer ----------------

BROKEN_STREAMS = {
    "no done record": dict(done=False),  # 4 and 13: the backend stopped after HTTP 200
    "malformed line": dict(garbage_after=1),  # 4: litellm skips it; the stream then ends without `done`
    "error line": dict(error_after=1),  # 7: Ollama's {"error": …} mid-stream
    "cut connection": dict(drop_after=1),
}
# Behind a LiteLLM proxy, the proxy's own litellm ends a stream that just stopped with finish_reason "stop"
# (and usage it estimated); the plugin tells it by the finishing chunk's id (agents/lean_stream.py).


@pytest.mark.parametrize("fault", BROKEN_STREAMS.keys())
def test_a_broken_path_b_stream_is_an_error_that_keeps_the_text(path_b, chat_user, fault):
    path_b.reply("Half ", "an answer", **BROKEN_STREAMS[fault])
    path_b.reply("Whole.")
    _, (broken, retried) = run(chat, "ollama-qwen2.5", chat_user, "hi", "hi")
    error = assert_one_terminal(broken)
    assert isinstance(error, Error) and error.code in ("provider_error", "unavailable"), broken
    assert "Half an answer".startswith(text_of(broken)), "only what really came"
    assert isinstance(assert_one_terminal(retried), Complete) and text_of(retried) == "Whole."


def test_an_empty_stream_is_an_error_not_an_empty_answer(path_b, chat_user):
    path_b.reply(done=False)  # 13: no text, no tool call, no end
    _, (events,) = run(chat, "ollama-qwen2.5", chat_user, "hi")
    assert [type(e) for e in events] == [Error] and events[0].code == "provider_error"


@pytest.mark.parametrize("recovers", [True, False])
def test_anthropic_error_event_after_the_stream_started(use_fake_anthropic, chat_user, recovers):
    """7: `event: error` (overloaded) with HTTP 200, after message_start and some text; the CLI retries."""
    use_fake_anthropic.reply("Half ", "an answer", error_after=1)
    if recovers:
        use_fake_anthropic.reply("Half ", "an answer")
    else:
        use_fake_anthropic.error(529, "overloaded_error", "Overloaded", always=True)
    _, (events,) = run(chat, "claude-haiku-4-5", chat_user, "hi")
    end = assert_one_terminal(events)
    if recovers:
        assert isinstance(end, Complete) and text_of(events) == "Half an answer"
    else:
        assert isinstance(end, Error) and end.code == "unavailable" and text_of(events) == "Half "


async def test_a_broken_stream_is_stored_as_kept_text_and_an_error(chat_user, use_fake_ollama, chatbox_config):
    chatbox_config(litellm_max_retries=0)
    await sync_to_async(chat_user.config.set)(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    use_fake_ollama.reply("Half ", "an answer", done=False)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    events = await socket.chat("hi")
    assert events[-1]["type"] == "error"
    assert await sync_to_async(stored_answers)(chat_user) == [
        ("assistant", "Half an answer", True),
        ("error", events[-1]["message"], False),
    ]
    await socket.close()


# -- 8, 12: tool calls as real servers stream them ------------------------------------------------------------


@pytest.fixture
def sites(db):
    from dcim.models import Site

    Site.objects.create(name="ams1", slug="ams1", status="active")
    Site.objects.create(name="ber1", slug="ber1", status="planned")


@pytest.mark.django_db(transaction=True)
def test_parallel_tool_calls_in_separate_chunks_are_two_calls(path_b, chat_user, sites):
    """8: Ollama sends each parallel call in its own chunk; litellm numbers each call 0."""
    from dcim.models import Site

    from .conftest import grant

    grant(chat_user, Site, ["view"])
    path_b.tool_calls(("count_objects", {"object_type": "dcim.site"}), ("search", {"query": "ams1"}), separate=True)
    path_b.reply("Two sites.")
    _, (events,) = run(chat, "ollama-qwen2.5", chat_user, "Sites?")
    starts = [e for e in events if type(e).__name__ == "ToolStart"]
    ends = [e for e in events if type(e).__name__ == "ToolEnd"]
    assert [e.tool for e in starts] == ["count_objects", "search"]
    assert [e.ok for e in ends] == [True, True], ends
    tool_messages = [m for m in path_b.chat_requests()[-1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 2 and '"count":2' in tool_messages[0]["content"]
    assert "ams1" in tool_messages[1]["content"]
    assert isinstance(assert_one_terminal(events), Complete)


@pytest.mark.django_db(transaction=True)
def test_tool_names_repeated_in_every_chunk_are_one_name(use_fake_ollama, chat_user, sites, monkeypatch):
    """12: llama.cpp's OpenAI-compatible servers repeat the name in each chunk of a call."""
    from dcim.models import Site

    from netbox_chatbox.agents.litellm import LiteLLMAgent

    from .conftest import grant

    grant(chat_user, Site, ["view"])
    monkeypatch.setattr(
        LiteLLMAgent,
        "call_arguments",
        lambda self: {
            "model": "openai/qwen2.5",
            "api_base": f"{use_fake_ollama.url}/v1",
            "api_key": "none",
            "timeout": 30,
            "num_retries": 0,
        },
    )
    use_fake_ollama.tool_calls(
        ("count_objects", {"object_type": "dcim.site"}), ("search", {"query": "ams1"}), repeat_names=True
    )
    use_fake_ollama.reply("Two sites.")
    _, (events,) = run(chat, "ollama-qwen2.5", chat_user, "How many sites?")
    starts = [e for e in events if type(e).__name__ == "ToolStart"]
    assert [e.tool for e in starts] == ["count_objects", "search"]
    ends = [e for e in events if type(e).__name__ == "ToolEnd"]
    assert [e.ok for e in ends] == [True, True], ends
    sent = use_fake_ollama.chat_requests()[-1]["messages"]
    assert [c["function"]["name"] for m in sent if m.get("tool_calls") for c in m["tool_calls"]] == [
        "count_objects",
        "search",
    ]
    assert text_of(events) == "Two sites."


# -- 9, 14: a bounded output, and an answer cut by it is marked ----------------------------------------------


def test_path_b_sends_the_output_cap_and_marks_a_cut_answer(path_b, chatbox_config, chat_user):
    chatbox_config(max_output_tokens=321)
    path_b.reply("A long answer that", done_reason="length")
    _, (events,) = run(chat, "ollama-qwen2.5", chat_user, "Tell me everything")
    complete = assert_one_terminal(events)
    assert isinstance(complete, Complete) and complete.truncated is True
    assert path_b.chat_requests()[-1]["options"]["num_predict"] == 321


def test_claude_gets_the_output_cap_and_a_cut_answer_is_marked(use_fake_anthropic, chatbox_config, chat_user):
    """The CLI asks the model to resume a cut answer a few times; when every part is cut, the answer is."""
    from .fakes.anthropic import Text

    chatbox_config(max_output_tokens=321)
    use_fake_anthropic.reply("A long answer ", stop_reason="max_tokens")
    use_fake_anthropic.reply("resumed.")
    _, (resumed,) = run(chat, "claude-haiku-4-5", chat_user, "Tell me everything")
    assert assert_one_terminal(resumed).truncated is False and text_of(resumed) == "A long answer resumed."
    use_fake_anthropic.always(Text(["and on "], stop_reason="max_tokens"))
    _, (events,) = run(chat, "claude-haiku-4-5", chat_user, "Tell me everything")
    complete = assert_one_terminal(events)
    assert isinstance(complete, Complete) and complete.truncated is True
    assert {r["max_tokens"] for r in use_fake_anthropic.conversation_requests()} == {321}


async def test_a_cut_answer_is_stored_and_sent_as_truncated(chat_user, use_fake_ollama):
    await sync_to_async(chat_user.config.set)(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    use_fake_ollama.reply("A long answer that", done_reason="length")
    use_fake_ollama.reply("Short.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    cut, whole = (await socket.chat("Tell me everything"))[-1], (await socket.chat("Briefly?"))[-1]
    assert (cut["type"], cut["truncated"], whole["truncated"]) == ("complete", True, False)
    stored = await sync_to_async(
        lambda: list(Message.objects.filter(role="assistant").values_list("truncated", flat=True))
    )()
    assert stored == [True, False]
    await socket.close()


# -- 10: one turn at a time per conversation, across requests (and workers: the mark is in Redis) -----------


def test_a_second_http_turn_on_a_busy_conversation_is_refused(api, chat_user, use_fake_ollama):
    use_fake_ollama.reply("First.")
    use_fake_ollama.reply(*[f"w{i} " for i in range(50)], chunk_delay=0.1)
    client = api(chat_user, token=True)
    conversation = client.post(CHAT_URL, {"message": "one", "model": "ollama-qwen2.5"}, format="json").json()[
        "conversation"
    ]
    running = client.post(CHAT_URL, {"message": "two", "conversation": conversation}, format="json", **SSE)
    chunks = iter(running.streaming_content)
    assert parse_sse(next(chunks).decode())[0]["type"] == "delta"  # the second turn is answering
    refused = client.post(CHAT_URL, {"message": "three", "conversation": conversation}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "in_progress"
    events = parse_sse(b"".join(chunks).decode())
    assert events[-1]["type"] == "complete"
    again = client.post(CHAT_URL, {"message": "three", "conversation": conversation}, format="json")
    assert again.status_code == 200, "the conversation is free again after the turn"
    assert list(Message.objects.filter(role="user").values_list("content", flat=True)) == ["one", "two", "three"]


def test_the_turn_mark_refuses_a_racing_turn_that_passed_the_first_check(chat_user, use_fake_ollama):
    """Two requests that both passed ``check()``: storing the second question is refused (cache.add)."""
    from asgiref.sync import async_to_sync
    from django.core.cache import cache

    from netbox_chatbox.sessions import ChatSession, turn_key

    async def turn(session, text):
        try:
            return [e async for e in session.stream(text)]
        finally:
            await session.close()

    use_fake_ollama.reply("First.")
    first = ChatSession.for_request(chat_user, "ollama-qwen2.5")
    async_to_sync(turn)(first, "one")
    second = ChatSession.for_request(chat_user, conversation_id=first.conversation.pk)
    second.check("two")
    cache.set(turn_key(first.conversation.pk), True, 60)  # another worker's turn started meanwhile
    try:
        events = async_to_sync(turn)(second, "two")
    finally:
        cache.delete(turn_key(first.conversation.pk))
    assert [(e["type"], e["code"]) for e in events] == [("error", "in_progress")]
    assert not Message.objects.filter(content="two").exists()


def test_a_turn_longer_than_its_marks_lifetime_keeps_it(chat_user, use_fake_ollama, monkeypatch):
    """The mark of a dead worker expires (TURN_MARK_TTL); a live turn refreshes its own, however long it runs."""
    import time

    from asgiref.sync import async_to_sync, sync_to_async

    from netbox_chatbox.sessions import ChatSession, storage, turn_running

    monkeypatch.setattr(storage, "TURN_MARK_TTL", 1)
    monkeypatch.setattr(storage, "TURN_MARK_REFRESH", 0.25)
    use_fake_ollama.reply(*[f"w{i} " for i in range(40)], chunk_delay=0.1)  # about 4 s: four lifetimes
    session = ChatSession.for_request(chat_user, "ollama-qwen2.5")
    marked = []

    async def turn():
        first = None
        try:
            async for event in session.stream("Talk for a while"):
                if event["type"] == "delta":
                    first = first or time.monotonic()
                    if time.monotonic() - first > 2.5 and not marked:
                        marked.append(await sync_to_async(turn_running)(session.conversation.pk))
                yield_type = event["type"]
            return yield_type
        finally:
            await session.close()

    assert async_to_sync(turn)() == "complete"
    assert marked == [True], "the running turn's mark outlived its TTL"
    assert not turn_running(session.conversation.pk), "the end of the turn removes the mark"


# -- 11, 15: usage adds up, across turns; estimates are said to be; interrupted turns keep their tokens --------


def conversation_usage(conversation_id):
    from netbox_chatbox.models import Conversation

    conversation = Conversation.objects.get(pk=conversation_id)
    messages = list(
        conversation.messages.filter(role="assistant").values_list(
            "input_tokens", "output_tokens", "cost_usd", "usage_estimated"
        )
    )
    return conversation, messages


def test_usage_sums_across_claude_turns_with_cache_tokens(api, chat_user, use_fake_anthropic):
    use_fake_anthropic.reply("One.", input_tokens=12)
    use_fake_anthropic.reply("Two.", input_tokens=12, cache_read_input_tokens=300)
    client = api(chat_user, token=True)
    first = client.post(CHAT_URL, {"message": "a", "model": "claude-haiku-4-5"}, format="json").json()
    client.post(CHAT_URL, {"message": "b", "conversation": first["conversation"]}, format="json")
    conversation, messages = conversation_usage(first["conversation"])
    assert len(messages) == 2 and messages[1][0] >= messages[0][0] + 300, "cache reads are input tokens"
    assert conversation.input_tokens == sum(m[0] for m in messages)
    assert conversation.output_tokens == sum(m[1] for m in messages)
    assert conversation.cost_usd == sum(m[2] for m in messages) and all(m[2] > 0 for m in messages)


def test_usage_sums_across_path_b_turns_and_estimates_are_flagged(api, chat_user, use_fake_ollama):
    use_fake_ollama.reply("One.", prompt_eval_count=1500)
    use_fake_ollama.reply("Two.", usage=False)  # the backend reports no usage: it is estimated
    client = api(chat_user, token=True)
    first = client.post(CHAT_URL, {"message": "a", "model": "ollama-qwen2.5"}, format="json").json()
    second = client.post(CHAT_URL, {"message": "b", "conversation": first["conversation"]}, format="json").json()
    assert (first["events"][-1]["usage_estimated"], second["events"][-1]["usage_estimated"]) == (False, True)
    conversation, messages = conversation_usage(first["conversation"])
    assert [m[0] for m in messages][0] == 1500
    assert messages[1][0] > 1000, "the estimate counts the tool schemas sent with every request"
    assert [m[3] for m in messages] == [False, True]
    assert conversation.input_tokens == messages[0][0] + messages[1][0]
    assert conversation.cost_usd == 0 and [m[2] for m in messages] == [0, 0], "a local model costs nothing"


async def test_an_interrupted_claude_turn_keeps_its_tokens(chat_user, on_claude):
    on_claude.reply(*[f"w{i} " for i in range(100)], chunk_delay=0.1, input_tokens=40)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    await socket.send({"type": "chat", "message": "Talk for a while"})
    await socket.until("delta", timeout=60)
    await socket.send({"type": "interrupt"})
    complete = (await socket.until("complete", "error", timeout=30))[-1]
    assert complete["type"] == "complete" and complete["interrupted"] is True
    stored = await only_answer(chat_user)
    assert stored.interrupted and stored.input_tokens and stored.input_tokens >= 40
    await socket.close()


# -- the soak: connect → ask → switch → drop, on both transports, clients leaving at every point ---------------

ANSWER = "Alpha beta gamma delta."
LEAVE_AT = ("sent", "delta", "complete", "switch")


async def socket_cycle(user, model, question, leave_at):
    socket, _ = await open_socket(user)
    await socket.event()
    await socket.send({"type": "model_change", "model": model})
    await socket.until("session", timeout=30)
    await socket.send({"type": "chat", "message": question})
    if leave_at != "sent":
        end = (await socket.until("delta" if leave_at == "delta" else "complete", "error", timeout=60))[-1]
        assert end["type"] != "error", end
    if leave_at == "switch":
        other = "ollama-qwen2.5" if model != "ollama-qwen2.5" else "claude-haiku-4-5"
        await socket.send({"type": "model_change", "model": other})
        await socket.until("session", timeout=30)
    await socket.close()


def http_cycle(client, model, question, leave_at):
    response = client.post(CHAT_URL, {"message": question, "model": model}, format="json", **SSE)
    assert response.status_code == 200, response.content
    events = []
    for chunk in response.streaming_content:
        if leave_at == "sent":
            break
        events += parse_sse(chunk.decode())
        if events[-1]["type"] == ("delta" if leave_at == "delta" else "complete"):
            break
    if leave_at == "switch" and events and events[-1].get("conversation"):  # continue it, then leave at once
        follow = client.post(
            CHAT_URL, {"message": question + "+", "conversation": events[-1]["conversation"]}, format="json", **SSE
        )
        next(iter(follow.streaming_content))
        follow.close()
    response.close()


async def test_soak_leaves_no_slot_process_home_or_repeated_text(
    api, chat_user, use_fake_anthropic, use_fake_ollama, chatbox_config
):
    from .fakes import anthropic, ollama

    chatbox_config(max_active_sessions=3, rate_limit_per_minute=0)
    use_fake_anthropic.always(anthropic.Text(ANSWER.split(" "), chunk_delay=0.02))
    use_fake_ollama.always(ollama.Text([w + " " for w in ANSWER.split(" ")], chunk_delay=0.02))
    before_cli, before_homes = cli_processes(), temp_homes()
    client = await sync_to_async(api)(chat_user, token=True)
    questions = []
    for i in range(30):
        model = "claude-haiku-4-5" if i % 3 == 0 else "ollama-qwen2.5"
        leave_at, question = LEAVE_AT[i % 4], f"question {i}"
        questions.append(question)
        if i % 2:
            await socket_cycle(chat_user, model, question, leave_at)
        else:
            await sync_to_async(http_cycle, thread_sensitive=False)(client, model, question, leave_at)

    assert resources.sdk_slots.in_use == 0
    assert await wait_until_gone(cli_processes() - before_cli) == set(), "no CLI process left"
    assert temp_homes() - before_homes == set(), "no temporary home left"

    def stored():
        users = list(Message.objects.filter(role="user").values_list("content", flat=True))
        answers = list(Message.objects.filter(role="assistant").values_list("content", flat=True))
        return users, answers

    users, answers = await sync_to_async(stored)()
    assert all(users.count(q) <= 1 for q in questions), "no question stored twice"
    assert sum(q in users for q in questions) >= 22, "the questions of clients that stayed past sending are stored"
    plain = ANSWER.replace(" ", "")
    for answer in answers:  # each answer is the answer or a part of it, never repeated text
        assert plain.startswith(answer.replace(" ", "")), answer
