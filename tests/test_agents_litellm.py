"""Path B (litellm), straight to a fake Ollama and through a real LiteLLM proxy process.

The proxy is started once per test session (tests/fakes/fixtures.py) from config/litellm_config.yaml,
pointed at the session's fake Ollama. Each scenario asserts the user's events and what Ollama received.
"""

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dcim.models import Site

from netbox_chatbox.agents import create_agent
from netbox_chatbox.events import Complete, Error
from tests.conftest import grant
from tests.fakes import FakeOllama
from tests.fakes.helpers import (
    Delta,
    ToolEnd,
    ToolStart,
    abandon_then_ask,
    assert_one_terminal,
    chat,
    collect,
    of_type,
    run,
    text_of,
)
from tests.fakes.ollama import ToolCalls

MODEL = "ollama-qwen2.5"


@pytest.fixture(params=["direct", pytest.param("proxy", marks=pytest.mark.xdist_group("litellm-proxy"))])
def path_b(request, chatbox_config, fake_ollama):
    """Path B in both modes an admin can pick; yields the fake Ollama behind it."""
    if request.param == "direct":
        request.getfixturevalue("use_fake_ollama")
    else:
        request.getfixturevalue("use_litellm_proxy")
    chatbox_config(litellm_max_retries=0)
    return fake_ollama


def test_streaming_answer_with_memory(path_b, chat_user, caplog):
    path_b.reply("Hel", "lo", " there")
    path_b.reply("You greeted me.")

    with caplog.at_level(logging.INFO, logger="netbox_chatbox.telemetry"):
        agent, (first, second) = run(chat, MODEL, chat_user, "hi", "what did I do?")

    assert type(agent).__name__ == "LiteLLMAgent" and agent.fallback is None
    assert [e.text for e in of_type(first, Delta)] == ["Hel", "lo", " there"]
    complete = assert_one_terminal(first)
    assert isinstance(complete, Complete) and not complete.interrupted
    assert "qwen2.5:14b-instruct-8k" in complete.model
    assert (complete.input_tokens, complete.output_tokens, complete.cost_usd) == (20, 3, 0.0)
    assert text_of(second) == "You greeted me."

    first_request, second_request = path_b.chat_requests()
    assert first_request["model"] == "qwen2.5:14b-instruct-8k"
    assert first_request["messages"][0]["role"] == "system"
    assert "You are the NetBox assistant" in first_request["messages"][0]["content"]
    assert {t["function"]["name"] for t in first_request["tools"]} >= {"query_objects", "get_object", "search"}
    assert [(m["role"], m["content"]) for m in second_request["messages"][1:]] == [
        ("user", "hi"),
        ("assistant", "Hello there"),
        ("user", "what did I do?"),
    ]
    response = next(r.chatbox for r in caplog.records if r.chatbox["event"] == "model_response")
    assert (response["path"], response["input_tokens"], response["output_tokens"]) == ("litellm", 20, 3)


@pytest.mark.django_db(transaction=True)  # tools run in their own threads: committed data
def test_tool_round_trip_as_the_user(path_b, chat_user):
    Site.objects.create(name="visible-site", slug="visible-site")
    Site.objects.create(name="hidden-site", slug="hidden-site")
    grant(chat_user, Site, ["view"], constraints={"name": "visible-site"})
    path_b.tool_call("query_objects", {"object_type": "dcim.site"})
    path_b.reply("One site: visible-site.")

    _, (events,) = run(chat, MODEL, chat_user, "which sites?")

    (start,) = of_type(events, ToolStart)
    (end,) = of_type(events, ToolEnd)
    assert start.tool == "query_objects" and "dcim.site" in start.summary
    assert (end.id, end.ok, end.summary) == (start.id, True, "1 found")
    assert [o["display"] for o in end.objects] == ["visible-site"]
    assert text_of(events) == "One site: visible-site." and isinstance(assert_one_terminal(events), Complete)

    tool_messages = [m for m in path_b.chat_requests()[1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1
    assert "visible-site" in tool_messages[0]["content"] and "hidden-site" not in tool_messages[0]["content"]


def test_tool_rounds_are_bounded(path_b, chatbox_config, chat_user):
    chatbox_config(max_tool_rounds=2)
    path_b.always(ToolCalls([("count_objects", {"object_type": "dcim.site"})]))

    _, (events,) = run(chat, MODEL, chat_user, "loop forever")

    error = assert_one_terminal(events)
    assert isinstance(error, Error) and error.code == "tool_limit" and "more than 2 rounds" in error.message
    assert len(of_type(events, ToolEnd)) == 2 and len(path_b.chat_requests()) == 3


def test_interrupt_mid_stream_keeps_partial_answer(path_b, chat_user):
    path_b.reply(*[f"w{i} " for i in range(60)], chunk_delay=0.05)
    path_b.reply("Yes.")

    async def scenario():
        agent = await create_agent(MODEL, chat_user)

        async def stop_after_three(event, events):
            if len(of_type(events, Delta)) == 3:
                await agent.interrupt()

        try:
            interrupted = await collect(agent, "a long answer please", stop_after_three)
            return interrupted, await collect(agent, "still there?")
        finally:
            await agent.close()

    interrupted, after = run(scenario)

    complete = assert_one_terminal(interrupted)
    assert isinstance(complete, Complete) and complete.interrupted
    assert 3 <= len(of_type(interrupted, Delta)) < 60
    assert text_of(after) == "Yes."
    replayed = path_b.chat_requests()[-1]["messages"]
    assert replayed[-2]["role"] == "assistant" and replayed[-2]["content"].startswith("w0 w1 w2 ")


def test_an_abandoned_answer_does_not_leak_into_the_next(path_b, chat_user):
    path_b.reply(*[f"old{i} " for i in range(60)], chunk_delay=0.05)
    path_b.reply("Fresh answer.")

    events = run(abandon_then_ask, MODEL, chat_user, "a long answer please", "new question")

    assert text_of(events) == "Fresh answer." and isinstance(assert_one_terminal(events), Complete)
    roles = [m["role"] for m in path_b.chat_requests()[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # the cut-off answer, then the new question


def test_timeout_is_an_error_event(path_b, chatbox_config, chat_user):
    chatbox_config(litellm_timeout=1)
    path_b.hang(30)

    _, (events,) = run(chat, MODEL, chat_user, "hi")

    error = assert_one_terminal(events)
    assert isinstance(error, Error) and error.code == "timeout" and "1 s" in error.message


def test_ollama_down_mid_conversation(path_b, chat_user):
    async def scenario():
        agent = await create_agent(MODEL, chat_user)  # healthy now
        try:
            with path_b.offline():
                return await collect(agent, "hi")
        finally:
            await agent.close()

    events = run(scenario)

    error = assert_one_terminal(events)
    assert isinstance(error, Error) and error.code == "unavailable"
    assert "127.0.0.1" not in error.message


def test_retries_are_deliberate(path_b, chatbox_config, chat_user):
    """litellm_max_retries retries, once each: the proxy adds none (retries would multiply)."""
    chatbox_config(litellm_max_retries=1)
    path_b.error(500)
    path_b.reply("Recovered.")
    _, (events,) = run(chat, MODEL, chat_user, "hi")
    assert text_of(events) == "Recovered." and len(path_b.chat_requests()) == 2

    path_b.reset()
    chatbox_config(litellm_max_retries=0)
    path_b.error(500)
    _, (events,) = run(chat, MODEL, chat_user, "hi")
    error = assert_one_terminal(events)
    assert isinstance(error, Error) and error.code == "unavailable"
    assert len(path_b.chat_requests()) == 1


# -- proxy-specific failures -----------------------------------------------------------------


def test_proxy_down_mid_conversation(use_litellm_proxy, chatbox_config, chat_user):
    dead = FakeOllama().start()
    dead.stop()

    async def scenario():
        agent = await create_agent(MODEL, chat_user)
        try:
            chatbox_config(litellm_proxy_url=dead.url)  # the proxy is gone
            return await collect(agent, "hi")
        finally:
            await agent.close()

    error = assert_one_terminal(run(scenario))
    assert isinstance(error, Error) and error.code == "unavailable" and "LiteLLM proxy" in error.message


def test_wrong_master_key_mid_conversation(use_litellm_proxy, chatbox_config, fake_ollama, chat_user, caplog):
    async def scenario():
        agent = await create_agent(MODEL, chat_user)
        try:
            chatbox_config(litellm_master_key="sk-not-the-master-key-42")
            return await collect(agent, "hi")
        finally:
            await agent.close()

    with caplog.at_level(logging.INFO, logger="netbox_chatbox"):
        events = run(scenario)

    error = assert_one_terminal(events)
    assert isinstance(error, Error) and error.code == "auth"
    assert fake_ollama.chat_requests() == []  # the proxy refused before reaching Ollama
    assert "sk-not-the-master-key-42" not in caplog.text and use_litellm_proxy.master_key not in caplog.text


# -- the factory's view: unavailable path B falls back to auto ---------------------------------


@pytest.mark.parametrize(
    "breakage, reason",
    [
        ("proxy_down", "The LiteLLM proxy is not reachable."),
        ("wrong_key", "The LiteLLM proxy rejected the configured master key."),
        ("ollama_down", "The Ollama server is not reachable."),
        ("model_missing", "Ollama does not have the model 'qwen2.5:14b-instruct-8k'"),
    ],
)
def test_unavailable_path_b_falls_back_to_auto(
    use_litellm_proxy, use_fake_anthropic, chatbox_config, fake_ollama, chat_user, breakage, reason
):
    dead = FakeOllama().start()
    dead.stop()
    if breakage == "proxy_down":
        chatbox_config(litellm_proxy_url=dead.url)
    elif breakage == "wrong_key":
        chatbox_config(litellm_master_key="sk-wrong")
    elif breakage == "ollama_down":
        chatbox_config(ollama_base_url=dead.url)
    else:
        fake_ollama.models = []

    agent, (events,) = run(chat, MODEL, chat_user, "hi")

    assert agent.model.id == "auto" and type(agent).__name__ == "ClaudeAgent"
    assert agent.fallback.requested_model == MODEL and agent.fallback.actual_path == "sdk"
    assert reason in agent.fallback.reason
    assert text_of(events) == "OK" and len(use_fake_anthropic.requests) == 1
    assert fake_ollama.chat_requests() == []


def test_compose_file_keeps_the_proxy_private():
    """config/docker-compose.litellm.yml: localhost only, master key required, the tested config file."""
    from pathlib import Path

    import yaml

    config = Path(__file__).resolve().parents[1] / "config"
    service = yaml.safe_load((config / "docker-compose.litellm.yml").read_text())["services"]["litellm"]
    assert service["network_mode"] == "host" and "ports" not in service
    assert service["command"][service["command"].index("--host") + 1] == "127.0.0.1"
    assert service["environment"]["LITELLM_MASTER_KEY"].startswith("${LITELLM_MASTER_KEY:?")
    assert "./litellm_config.yaml:/app/config.yaml:ro" in service["volumes"]
    proxy_config = yaml.safe_load((config / "litellm_config.yaml").read_text())
    assert proxy_config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert proxy_config["router_settings"]["num_retries"] == 0
    assert "database_url" not in proxy_config["general_settings"]


def test_anthropic_via_litellm_when_allowed(use_fake_anthropic, chatbox_config, chat_user, caplog):
    """allow_anthropic_via_litellm: an Anthropic model with a litellm_model goes through litellm, with a warning."""
    chatbox_config(
        litellm_enabled=True,
        allow_anthropic_via_litellm=True,
        models={"claude-sonnet-4-5": {"litellm_model": "anthropic/claude-sonnet-4-5-20250929"}},
    )
    use_fake_anthropic.reply("Via ", "LiteLLM.")

    with caplog.at_level(logging.INFO, logger="netbox_chatbox.telemetry"):
        agent, (events,) = run(chat, "claude-sonnet-4-5", chat_user, "hi")

    assert type(agent).__name__ == "LiteLLMAgent" and agent.model.path == "litellm"
    assert text_of(events) == "Via LiteLLM." and isinstance(assert_one_terminal(events), Complete)
    (request,) = use_fake_anthropic.requests
    assert request.json["model"] == "claude-sonnet-4-5-20250929" and request.headers["x-api-key"]
    (warning,) = [r for r in caplog.records if r.chatbox["event"] == "anthropic_via_litellm"]
    assert warning.levelno == logging.WARNING


# -- warm-up: litellm is imported in the background when an ASGI worker starts (agents/warmup.py) --------------


def test_the_warm_up_runs_in_the_background_and_a_chat_during_it_is_not_held_up(
    use_fake_ollama, chat_user, monkeypatch
):
    """The warm-up is a daemon thread of its own; an answer asked meanwhile does not wait for it."""
    from netbox_chatbox.agents import warmup

    importing, release, imported = threading.Event(), threading.Event(), []

    def slow_import(name):  # the warm-up's import, held until the chat below has its answer
        importing.set()
        release.wait(60)
        imported.append(name)

    monkeypatch.setattr(warmup.importlib, "import_module", slow_import)
    thread = warmup.start()
    try:
        assert importing.wait(30) and thread.name == warmup.THREAD_NAME and thread.daemon
        use_fake_ollama.reply("Answered", " meanwhile")
        _, (events,) = run(chat, MODEL, chat_user, "hi")
        assert text_of(events) == "Answered meanwhile" and isinstance(assert_one_terminal(events), Complete)
        assert thread.is_alive(), "the chat was answered while the warm-up was still importing"
    finally:
        release.set()
        thread.join(30)
    assert imported == ["netbox_chatbox.agents.litellm"]


@pytest.mark.parametrize("enabled", [True, False])
def test_an_asgi_worker_warms_litellm_up_only_when_path_b_is_enabled(enabled):
    """Importing the ASGI application starts the warm-up, which imports litellm (path B enabled) or nothing;
    never claude_agent_sdk (it imports mcp: see test_agents.py, NetBox starts without importing the SDKs or mcp)."""
    code = (
        "import sys, threading, django; django.setup(); import netbox_chatbox.asgi;"
        "warm = [t for t in threading.enumerate() if t.name == 'netbox-chatbox-warm-up'];"
        "[t.join(120) for t in warm];"
        "print(len(warm), 'litellm' in sys.modules, 'claude_agent_sdk' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([str(root), str(root / "devconf")]),
        "LITELLM_ENABLED": "1" if enabled else "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-2000:]
    threads, litellm_loaded, sdk_loaded = result.stdout.strip().splitlines()[-1].split()
    assert (litellm_loaded, sdk_loaded) == (str(enabled), "False")
    assert threads == "1" or not enabled  # (with nothing to import, the thread may have ended already)


# -- scale-out: what one worker leaves, another continues (docs/deployment.md, "Several workers") ---------------


@contextlib.contextmanager
def _workers(log_dir, ollama_url, count):
    """``count`` more uvicorn worker processes on the test database, path B pointed at the fake Ollama: started
    together (each spends seconds importing NetBox), stopped on leaving."""
    from django.conf import settings

    from .servers import free_port, uvicorn_command, wait_serving

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "netbox.settings",
        "NETBOX_CONFIGURATION": "configuration",
        "PYTHONPATH": f"{root / 'devconf'}:{root}",
        "NETBOX_DB": settings.DATABASES["default"]["NAME"],
        "LITELLM_ENABLED": "1",
        "OLLAMA_BASE_URL": ollama_url,
        "NETBOX_DEBUG": "0",
    }
    workers = []
    try:
        for index in range(count):
            port, log_path = free_port(), log_dir / f"worker{index}.log"
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    uvicorn_command(port, "--lifespan", "off"), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root
                )
            workers.append((process, f"http://127.0.0.1:{port}", log_path))
        for process, url, log_path in workers:
            wait_serving(process, url, log_path, timeout=300)
        yield [(process, url) for process, url, _ in workers]
    finally:
        for process, _, _ in workers:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_answer_leaves_a_conversation_another_worker_continues(
    chat_user, fake_ollama_server, fake_ollama, tmp_path
):
    import asyncio
    import json
    import signal

    from websockets.asyncio.client import connect

    from netbox_chatbox.models import Conversation
    from netbox_chatbox.preferences import PREFERENCE_PATH
    from netbox_chatbox.sessions.storage import TURN_MARK_TTL

    from .chat_clients import WS_PATH, session_cookie

    chat_user.config.set(PREFERENCE_PATH, MODEL, commit=True)
    cookie = session_cookie(chat_user)
    fake_ollama.reply(*[f"w{i} " for i in range(300)], chunk_delay=0.1)
    fake_ollama.reply("Continued.")

    async def socket(url):
        ws = await connect(url.replace("http", "ws") + WS_PATH, additional_headers={"Cookie": cookie}, origin=url)
        await ws.recv()  # the session event
        return ws

    async def until(ws, *types):
        while (event := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] not in types:
            pass
        return event

    async def ask_then_die(first, first_url):
        async with await socket(first_url) as ws:
            await ws.send(json.dumps({"type": "chat", "message": "Talk for a while"}))
            await until(ws, "delta")
            first.send_signal(signal.SIGKILL)  # the OOM killer, a crash, a redeploy without draining
            first.wait(10)

    async def continue_elsewhere(second_url, conversation):
        async with await socket(second_url) as ws:
            await ws.send(json.dumps({"type": "resume", "conversation": conversation.pk}))
            await until(ws, "session")
            # The dead worker's turn mark expires (TURN_MARK_TTL): until then the turn reads as running.
            deadline = time.monotonic() + TURN_MARK_TTL + 20
            while True:
                await ws.send(json.dumps({"type": "chat", "message": "And then?"}))
                end = await until(ws, "complete", "error")
                if end.get("code") != "in_progress" or time.monotonic() > deadline:
                    return end
                await asyncio.sleep(1)

    with _workers(tmp_path, fake_ollama_server.url, 2) as [(first, first_url), (_, second_url)]:
        asyncio.run(ask_then_die(first, first_url))
        conversation = Conversation.objects.get(owner=chat_user)
        end = asyncio.run(continue_elsewhere(second_url, conversation))
    assert end["type"] == "complete" and end["conversation"] == conversation.pk, end
    asked = [m["content"] for m in fake_ollama.chat_requests()[-1]["messages"] if m["role"] == "user"]
    assert asked[0].endswith("Talk for a while") and asked[-1].endswith("And then?")
    assert list(conversation.messages.values_list("role", "content"))[-1] == ("assistant", "Continued.")
