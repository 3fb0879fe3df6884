"""Path A (Claude Agent SDK + its real CLI) and the agent factory, against the fake Anthropic API.

Everything real but the provider: the SDK, its bundled CLI process, our in-process MCP tools over
NetBox's ORM with real ObjectPermissions. Assertions are on what a user sees (events) and on what
the provider received (the fake's request log).
"""

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from dcim.models import Site

from netbox_chatbox import catalog
from netbox_chatbox.agents import AgentUnavailable, create_agent
from netbox_chatbox.events import Fallback
from tests.conftest import grant
from tests.fakes import FakeAnthropic, OutsideTrafficTrap
from tests.fakes.fixtures import FAKE_ANTHROPIC_KEY
from tests.fakes.helpers import (
    Complete,
    Delta,
    Error,
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

OUR_TOOLS = {
    "mcp__netbox__list_object_types",
    "mcp__netbox__describe_object_type",
    "mcp__netbox__query_objects",
    "mcp__netbox__get_object",
    "mcp__netbox__search",
    "mcp__netbox__count_objects",
    "mcp__netbox__get_changelog",
    # computed answers
    "mcp__netbox__available_ips",
    "mcp__netbox__available_prefixes",
    "mcp__netbox__prefix_utilization",
    "mcp__netbox__available_vlans",
    "mcp__netbox__available_asns",
    "mcp__netbox__rack_space",
    "mcp__netbox__trace_cable",
    "mcp__netbox__device_connections",
    "mcp__netbox__device_config",
}


def test_plain_answer_streams_and_remembers(use_fake_anthropic, chat_user):
    fake = use_fake_anthropic
    fake.reply("Hello", " from", " Claude")
    fake.reply("You said hi.")

    agent, (first, second) = run(chat, "claude-sonnet-4-5", chat_user, "hi there", "what did I say?")

    assert [e.text for e in of_type(first, Delta)] == ["Hello", " from", " Claude"]
    complete = assert_one_terminal(first)
    assert isinstance(complete, Complete) and not complete.interrupted
    assert complete.model == "claude-sonnet-4-5-20250929"
    assert complete.input_tokens == 12 and complete.output_tokens == 3
    assert complete.cost_usd > 0 and complete.duration_ms >= 0
    assert text_of(second) == "You said hi." and isinstance(assert_one_terminal(second), Complete)
    assert agent.fallback is None

    requests = fake.requests
    assert all(r.path == "/v1/messages" for r in requests) and len(requests) == 2
    assert requests[0].headers["x-api-key"] == FAKE_ANTHROPIC_KEY
    first_request, second_request = (r.json for r in requests)
    system = " ".join(block["text"] for block in first_request["system"])
    assert "You are the NetBox assistant" in system and "the user alice may view" in system
    assert {tool["name"] for tool in first_request["tools"]} == OUR_TOOLS  # no Bash, Read, WebFetch, …
    # Memory lives in the session: the second request carries the first exchange.
    contents = [str(m["content"]) for m in second_request["messages"]]
    assert any("hi there" in c for c in contents) and any("Hello from Claude" in c for c in contents)


@pytest.mark.parametrize("model_id", ["claude-sonnet-4-5", "claude-haiku-4-5"])
def test_explicit_model_ids_are_sent_verbatim(use_fake_anthropic, chat_user, model_id):
    _, (events,) = run(chat, model_id, chat_user, "hi")

    sdk_model = catalog.get_model(model_id).sdk_model
    assert [r.json["model"] for r in use_fake_anthropic.requests] == [sdk_model]
    assert assert_one_terminal(events).model == sdk_model


def test_retired_model_id_reports_the_model_that_answered(use_fake_anthropic, chat_user):
    """The CLI replaces ids Anthropic has retired (Opus 4, retired 2026-06-15) by the current model.

    The user is told which model actually answered, not the one the catalog asked for.
    """
    _, (events,) = run(chat, "claude-opus-4", chat_user, "hi")

    sent = use_fake_anthropic.requests[0].json["model"]
    assert sent != "claude-opus-4-20250514" and "opus" in sent
    assert assert_one_terminal(events).model == sent


def test_auto_lets_the_cli_choose(use_fake_anthropic, chat_user):
    _, (events,) = run(chat, "auto", chat_user, "hi")

    sent = use_fake_anthropic.requests[0].json["model"]
    explicit = {entry.sdk_model for entry in catalog.get_catalog().values()}
    assert sent and sent not in explicit  # we passed no model: the CLI used its own default
    assert assert_one_terminal(events).model == sent


@pytest.fixture
def sites(db):
    return Site.objects.create(name="visible-site", slug="visible-site"), Site.objects.create(
        name="hidden-site", slug="hidden-site"
    )


@pytest.mark.django_db(transaction=True)  # tools run in their own threads: committed data
def test_tool_call_runs_as_the_user(use_fake_anthropic, chat_user, sites):
    """The model's tool call runs our tool in-process with the user's permissions; hidden objects never leave."""
    grant(chat_user, Site, ["view"], constraints={"name": "visible-site"})
    fake = use_fake_anthropic
    fake.tool_call("mcp__netbox__query_objects", {"object_type": "dcim.site"}, text="Let me look.", id="toolu_sites")
    fake.reply("You can see one site: visible-site.")

    _, (events,) = run(chat, "auto", chat_user, "which sites are there?")

    (start,) = of_type(events, ToolStart)
    (end,) = of_type(events, ToolEnd)
    assert (start.id, start.tool) == ("toolu_sites", "query_objects") and "dcim.site" in start.summary
    assert (end.id, end.tool, end.ok, end.summary) == ("toolu_sites", "query_objects", True, "1 found")
    assert [o["display"] for o in end.objects] == ["visible-site"]
    assert end.objects[0]["url"].endswith(f"/dcim/sites/{sites[0].pk}/")
    assert events.index(start) < events.index(end)
    assert text_of(events) == "Let me look.You can see one site: visible-site."
    assert isinstance(assert_one_terminal(events), Complete)

    result = fake.tool_results()["toolu_sites"]
    assert "visible-site" in result and "hidden-site" not in result


@pytest.mark.django_db(transaction=True)  # tools run in their own threads: committed data
def test_large_tool_results_reach_the_model_inline(use_fake_anthropic, chatbox_config, chat_user):
    """The CLI would save results over ~50k characters to a file and show the model a path instead."""
    chatbox_config(tool_max_chars=200000, tool_max_results=500)
    Site.objects.bulk_create(
        Site(name=f"site-{i:03d}", slug=f"site-{i:03d}", description="d" * 200) for i in range(300)
    )
    grant(chat_user, Site, ["view"])
    use_fake_anthropic.tool_call(
        "mcp__netbox__query_objects",
        {"object_type": "dcim.site", "fields": ["name", "description"], "limit": 300},
        id="toolu_big",
    )
    use_fake_anthropic.reply("300 sites.")

    _, (events,) = run(chat, "auto", chat_user, "list all sites")

    result = use_fake_anthropic.tool_results()["toolu_big"]
    assert len(result) > 60000 and len(json.loads(result)["results"]) == 300
    assert isinstance(assert_one_terminal(events), Complete)


def test_tool_errors_go_back_to_the_model(use_fake_anthropic, chat_user):
    fake = use_fake_anthropic
    fake.tool_call("mcp__netbox__get_object", {"object_type": "dcim.nonsense", "id": 1}, id="toolu_bad")
    fake.reply("That type does not exist.")

    _, (events,) = run(chat, "auto", chat_user, "get it")

    (end,) = of_type(events, ToolEnd)
    assert not end.ok and "unknown object type" in end.summary
    assert "unknown object type" in fake.tool_results()["toolu_bad"]
    assert isinstance(assert_one_terminal(events), Complete)


@pytest.mark.parametrize(
    "status, kind, code",
    [
        (401, "authentication_error", "auth"),
        (429, "rate_limit_error", "rate_limited"),
        (500, "api_error", "unavailable"),
    ],
)
def test_upstream_errors_are_error_events(use_fake_anthropic, chat_user, caplog, status, kind, code):
    fake = use_fake_anthropic
    fake.error(status, kind, f"upstream says no ({FAKE_ANTHROPIC_KEY})", always=True)

    async def scenario():
        agent = await create_agent("auto", chat_user)
        try:
            failed = await collect(agent, "hi")
            fake.reset()
            fake.reply("Back again.")
            recovered = await collect(agent, "and now?")
            return failed, recovered
        finally:
            await agent.close()

    with caplog.at_level(logging.INFO, logger="netbox_chatbox"):
        failed, recovered = run(scenario)

    error = assert_one_terminal(failed)
    assert isinstance(error, Error) and error.code == code
    assert not of_type(failed, Delta)  # the CLI's own error text is not passed off as an answer
    assert "upstream says no" not in error.message and FAKE_ANTHROPIC_KEY not in error.message
    assert text_of(recovered) == "Back again."  # the session survives an upstream error
    assert FAKE_ANTHROPIC_KEY not in caplog.text
    errors = [r.chatbox for r in caplog.records if getattr(r, "chatbox", {}).get("event") == "model_error"]
    assert errors and errors[0]["code"] == code


def test_overloaded_model_switches_to_fallback_model(use_fake_anthropic, chat_user, chatbox_config):
    chatbox_config(fallback_model="claude-haiku-4-5-20251001")
    fake = use_fake_anthropic
    for _ in range(3):
        fake.error(529, "overloaded_error", "Overloaded")
    fake.reply("Haiku here.")

    _, (events,) = run(chat, "claude-sonnet-4-5", chat_user, "hi")

    assert [r.json["model"] for r in fake.requests] == ["claude-sonnet-4-5-20250929"] * 3 + [
        "claude-haiku-4-5-20251001"
    ]
    complete = assert_one_terminal(events)
    assert complete.model == "claude-haiku-4-5-20251001" and text_of(events) == "Haiku here."


def test_interrupt_mid_stream_keeps_the_session(use_fake_anthropic, chat_user):
    fake = use_fake_anthropic
    fake.reply(*[f"word{i} " for i in range(50)], chunk_delay=0.05)
    fake.reply("Still here.")

    async def scenario():
        agent = await create_agent("auto", chat_user)

        async def stop_after_three(event, events):
            if len(of_type(events, Delta)) == 3:
                await agent.interrupt()

        try:
            interrupted = await collect(agent, "tell me a long story", stop_after_three)
            after = await collect(agent, "are you there?")
            return interrupted, after
        finally:
            await agent.close()

    interrupted, after = run(scenario)

    complete = assert_one_terminal(interrupted)
    assert isinstance(complete, Complete) and complete.interrupted
    assert 3 <= len(of_type(interrupted, Delta)) < 50
    assert text_of(interrupted).startswith("word0 word1 word2 ")
    assert text_of(after) == "Still here." and not assert_one_terminal(after).interrupted


def test_an_abandoned_answer_does_not_leak_into_the_next(use_fake_anthropic, chat_user):
    """A transport that stops reading mid-answer (without closing the stream) and asks again."""
    fake = use_fake_anthropic
    fake.reply(*[f"old{i} " for i in range(50)], chunk_delay=0.05)
    fake.reply("Fresh answer.")

    events = run(abandon_then_ask, "auto", chat_user, "tell me a long story", "new question")

    assert text_of(events) == "Fresh answer."
    complete = assert_one_terminal(events)
    assert isinstance(complete, Complete) and not complete.interrupted


def test_prompts_are_delivered_verbatim(use_fake_anthropic, chat_user, tmp_path):
    """No '@file' expansion (it would read the NetBox server's files) and no CLI slash commands."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    question = f"what is in @{secret} ?"

    _, turns = run(chat, "auto", chat_user, question, "/cost")

    bodies = [r.body.decode() for r in use_fake_anthropic.requests]
    assert len(bodies) == 2 and all(isinstance(assert_one_terminal(events), Complete) for events in turns)
    assert not any("TOP-SECRET-CONTENT" in body for body in bodies)
    user_texts = [m["content"] for m in use_fake_anthropic.requests[1].json["messages"] if m["role"] == "user"]
    assert question in str(user_texts) and "/cost" in str(user_texts)


@pytest.mark.django_db(transaction=True)  # tools run in their own threads: committed data
def test_cli_leaves_nothing_behind(use_fake_anthropic, chat_user):
    before = {p.name for p in Path(tempfile.gettempdir()).glob("netbox-chatbox-claude-*")}

    async def scenario():
        agent = await create_agent("auto", chat_user)
        home = Path(agent.home)
        during = home.exists()
        await collect(agent, "hi")
        await agent.close()
        await agent.close()  # idempotent
        return home, during

    home, existed_during = run(scenario)

    assert existed_during and not home.exists()
    assert {p.name for p in Path(tempfile.gettempdir()).glob("netbox-chatbox-claude-*")} == before


def test_resumed_history_reaches_the_model(use_fake_anthropic, chat_user):
    history = [{"role": "user", "content": "My favourite rack is R42."}, {"role": "assistant", "content": "Noted."}]

    run(chat, "auto", chat_user, "which rack do I like?", history=history)

    system = " ".join(block["text"] for block in use_fake_anthropic.requests[0].json["system"])
    assert "User: My favourite rack is R42." in system and "Assistant: Noted." in system


def test_cli_traffic_goes_only_to_the_configured_api(fake_anthropic, tmp_path):
    """Positive control for the suite's no-internet guarantee: the trap catches a CLI that calls out.

    The same bare CLI without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC tries api.anthropic.com
    through the (trap) proxy; with our setting (as ClaudeAgent runs it) nothing gets out.
    """
    from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient

    async def bare_turn(environment):
        client = ClaudeSDKClient(
            ClaudeAgentOptions(
                tools=[],
                setting_sources=[],
                cwd=str(tmp_path),
                extra_args={"no-session-persistence": None},
                env={
                    "ANTHROPIC_BASE_URL": fake_anthropic.url,
                    "ANTHROPIC_API_KEY": "sk-ant-control",
                    "HOME": str(tmp_path),
                    "CLAUDE_CONFIG_DIR": str(tmp_path),
                    **environment,
                },
            )
        )
        await client.connect()
        try:
            await client.query("hi")
            async for _ in client.receive_response():
                pass
        finally:
            await client.disconnect()

    for locked_down in (False, True):
        control = OutsideTrafficTrap()
        proxy = {name: control.url for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}
        extra = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"} if locked_down else {}
        run(bare_turn, {**proxy, **extra})
        control.close()
        if locked_down:
            assert control.attempts == []
        else:
            assert any("anthropic.com" in attempt for attempt in control.attempts), control.attempts
    assert len(fake_anthropic.requests) == 2  # both answered by the fake


# -- the factory ---------------------------------------------------------------------------


def test_unknown_model_falls_back_to_auto(use_fake_anthropic, chat_user, caplog):
    with caplog.at_level(logging.INFO, logger="netbox_chatbox.telemetry"):
        agent, (events,) = run(chat, "gpt-17-turbo", chat_user, "hi")

    assert agent.model.id == "auto" and agent.model.path == catalog.PATH_SDK
    assert agent.fallback == Fallback(
        requested_model="gpt-17-turbo",
        actual_model="auto",
        requested_path="unknown",
        actual_path="sdk",
        reason=agent.fallback.reason,
    )
    assert "Unknown model 'gpt-17-turbo'" in agent.fallback.reason
    assert isinstance(assert_one_terminal(events), Complete)
    (decision,) = [r for r in caplog.records if r.chatbox["event"] == "routing_decision"]
    assert decision.levelno == logging.WARNING and decision.chatbox["fallback"] is True


def test_unavailable_local_model_falls_back_to_auto(use_fake_anthropic, chatbox_config, chat_user):
    dead = FakeAnthropic().start()
    dead.stop()  # a port nothing listens on
    chatbox_config(litellm_enabled=True, litellm_proxy_url="", ollama_base_url=dead.url)

    agent, (events,) = run(chat, "ollama-qwen2.5", chat_user, "hi")

    assert agent.model.id == "auto"
    fallback = agent.fallback
    assert (fallback.requested_model, fallback.requested_path, fallback.actual_path) == (
        "ollama-qwen2.5",
        "litellm",
        "sdk",
    )
    assert fallback.reason == "Qwen 2.5 14B Instruct is unavailable: The Ollama server is not reachable."
    assert text_of(events) == "OK" and len(use_fake_anthropic.requests) == 1


def test_disabled_litellm_falls_back_to_auto(use_fake_anthropic, chatbox_config, chat_user):
    chatbox_config(litellm_enabled=False)

    agent, _ = run(chat, "ollama-qwen2.5", chat_user)

    assert agent.model.id == "auto" and "LiteLLM, which is not enabled" in agent.fallback.reason


def test_no_api_key_is_said_clearly(chatbox_config, chat_user, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    chatbox_config(anthropic_api_key="", litellm_enabled=False)

    for model_id in ("auto", "claude-opus-4", "ollama-qwen2.5"):
        with pytest.raises(AgentUnavailable, match="No Anthropic API key is configured"):
            run(create_agent, model_id, chat_user)


def test_usage_logging_follows_log_model_usage(use_fake_anthropic, chatbox_config, chat_user, caplog):
    question = "how many devices are in rack SECRET-RACK-9?"
    for enabled in (True, False):
        chatbox_config(log_model_usage=enabled)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="netbox_chatbox.telemetry"):
            run(chat, "claude-haiku-4-5", chat_user, question)
        events = {r.chatbox["event"]: r.chatbox for r in caplog.records}
        assert "routing_decision" in events
        if enabled:
            response = events["model_response"]
            assert events["model_request"]["model"] == "claude-haiku-4-5"
            assert (response["answered_by"], response["input_tokens"], response["output_tokens"]) == (
                "claude-haiku-4-5-20251001",
                12,
                1,
            )
            assert response["duration_ms"] >= 0 and response["cost_usd"] > 0 and response["user"] == "alice"
        else:
            assert "model_request" not in events and "model_response" not in events
        assert "SECRET-RACK-9" not in caplog.text and FAKE_ANTHROPIC_KEY not in caplog.text


def test_netbox_with_the_plugin_starts_without_importing_the_sdks_or_mcp():
    """litellm (4–6 s), claude_agent_sdk (1–2 s) and mcp (seconds) are imported on first use, not with NetBox:
    processes that never serve them do not pay for them. (One probe: each NetBox start costs ~10 s of CPU.)"""
    code = (
        "import sys, django; django.setup();"
        "from django.urls import get_resolver, resolve; get_resolver().url_patterns;"
        "import netbox_chatbox.agents, netbox_chatbox.asgi, netbox_chatbox.health, netbox_chatbox.telemetry,"
        " netbox_chatbox.api.views;"
        "resolve('/api/plugins/chatbox/mcp/');"
        "print(sorted({name.partition('.')[0] for name in sys.modules} & {'litellm', 'claude_agent_sdk', 'mcp'}))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {  # NetBox's own settings with the development configuration, as a deployment runs it
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "netbox.settings",
        "NETBOX_CONFIGURATION": "configuration",
        "PYTHONPATH": os.pathsep.join([str(root / "devconf"), str(root)]),
        "NETBOX_DEBUG": "0",
        "LITELLM_ENABLED": "0",  # with path B on, the ASGI app warms litellm up on purpose (test_agents_litellm.py)
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
