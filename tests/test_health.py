"""Provider health: up, down, slow (bounded by health_check_timeout), cached for health_cache_ttl.

Real HTTP against the fakes and the real LiteLLM proxy; the models API shows the outcome to users.
"""

import asyncio
import time

import pytest

from netbox_chatbox import catalog, health
from tests.fakes import FakeOllama
from tests.fakes.helpers import run
from tests.fakes.server import HttpError

MODEL = "ollama-qwen2.5"


def status_of(model_id):
    return run(health.model_status, catalog.get_model(model_id))


def dead_url():
    dead = FakeOllama().start()
    dead.stop()
    return dead.url


def test_ollama_up(use_fake_ollama):
    assert status_of(MODEL) == (True, "")
    assert [r.path for r in use_fake_ollama.requests] == ["/api/tags"]


def test_a_burst_of_cold_checks_asks_the_provider_once(use_fake_ollama):
    async def burst():
        return await asyncio.gather(*(health.model_status(catalog.get_model(MODEL)) for _ in range(20)))

    assert run(burst) == [(True, "")] * 20
    assert [r.path for r in use_fake_ollama.requests] == ["/api/tags"]


def test_a_check_under_way_at_a_reset_is_not_cached_after_it(use_fake_ollama, chatbox_config):
    """Settings changed (tests reset health) while a check ran: its result is not kept."""
    entry = catalog.get_model(MODEL)
    use_fake_ollama.delay = 1

    async def scenario():
        before = asyncio.ensure_future(health.model_status(entry))
        await asyncio.sleep(0.3)  # the check is under way
        health.reset()
        assert await before == (True, "")
        use_fake_ollama.delay, use_fake_ollama.models = 0, []
        return await health.model_status(entry)

    assert run(scenario)[0] is False


def test_ollama_down(use_fake_ollama, chatbox_config):
    chatbox_config(ollama_base_url=dead_url())
    assert status_of(MODEL) == (False, "The Ollama server is not reachable.")


def test_ollama_failing(use_fake_ollama):
    use_fake_ollama.override("/api/tags", HttpError(500, {"error": "boom"}))
    assert status_of(MODEL) == (False, "The Ollama server answered with an error (HTTP 500).")


def test_ollama_without_the_model(use_fake_ollama):
    use_fake_ollama.models = ["llama3:8b"]
    available, reason = status_of(MODEL)
    assert not available and reason == (
        "Ollama does not have the model 'qwen2.5:14b-instruct-8k' (ollama pull qwen2.5:14b-instruct-8k)."
    )


def test_slow_service_is_bounded_by_the_timeout(use_fake_ollama, chatbox_config):
    chatbox_config(health_check_timeout=0.5)
    use_fake_ollama.delay = 5
    started = time.monotonic()
    available, reason = status_of(MODEL)
    elapsed = time.monotonic() - started
    assert not available and reason == "The Ollama server did not answer within 0.5 s."
    assert elapsed < 1.5


def test_results_are_cached_for_the_ttl(use_fake_ollama, chatbox_config):
    chatbox_config(health_cache_ttl=1)
    assert status_of(MODEL) == (True, "")
    with use_fake_ollama.offline():
        assert status_of(MODEL) == (True, "")  # cached: no request made
        assert len(use_fake_ollama.requests) == 1
        time.sleep(1.1)
        assert status_of(MODEL) == (False, "The Ollama server is not reachable.")  # expired: checked again
    assert len(use_fake_ollama.requests) == 1


def test_ttl_zero_checks_every_time(use_fake_ollama, chatbox_config):
    chatbox_config(health_cache_ttl=0)
    for _ in range(3):
        status_of(MODEL)
    assert len(use_fake_ollama.requests) == 3


def test_litellm_disabled(chatbox_config):
    chatbox_config(litellm_enabled=False)
    entry = catalog.get_catalog()[MODEL]
    assert run(health.model_status, entry) == (False, "LiteLLM is not enabled on this NetBox.")


def test_anthropic_needs_a_key(chatbox_config, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    chatbox_config(anthropic_api_key="")
    assert status_of("auto") == (False, "No Anthropic API key is configured on this NetBox.")
    # A key alone is not enough any more: the API must accept it (tests/test_health_anthropic.py).


def test_proxy_up(use_litellm_proxy, fake_ollama):
    assert status_of(MODEL) == (True, "")
    assert [r.path for r in fake_ollama.requests] == ["/api/tags"]  # never a completion (/health would make one)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"litellm_master_key": "sk-wrong-key"}, "The LiteLLM proxy rejected the configured master key."),
        (
            {"models": {MODEL: {"litellm_model": "ollama_chat/mistral:7b"}}},
            "The LiteLLM proxy does not offer the model 'ollama_chat/mistral:7b'.",
        ),
    ],
)
def test_proxy_misconfigured(use_litellm_proxy, chatbox_config, change, reason):
    chatbox_config(**change)
    assert status_of(MODEL) == (False, reason)


def test_proxy_down(use_litellm_proxy, chatbox_config):
    chatbox_config(litellm_proxy_url=dead_url())
    assert status_of(MODEL) == (False, "The LiteLLM proxy is not reachable.")


def test_state_changes_are_logged_once(use_fake_ollama, chatbox_config, caplog):
    chatbox_config(health_cache_ttl=0)
    with caplog.at_level("INFO", logger="netbox_chatbox.telemetry"):
        status_of(MODEL)
        status_of(MODEL)
        with use_fake_ollama.offline():
            status_of(MODEL)
            status_of(MODEL)
    changes = [(r.chatbox["service"], r.chatbox["ok"]) for r in caplog.records if r.chatbox["event"] == "health"]
    assert changes == [("ollama", True), ("ollama", False)]


def test_models_api_marks_unavailable_models(use_fake_anthropic, use_fake_ollama, chat_user, api, chatbox_config):
    client = api(chat_user)
    models = {m["id"]: m for m in client.get("/api/plugins/chatbox/models/").json()["models"]}
    assert models[MODEL]["available"] is True and models[MODEL]["unavailable_reason"] == ""
    assert models["auto"]["available"] is True

    chatbox_config(ollama_base_url=dead_url())
    models = {m["id"]: m for m in client.get("/api/plugins/chatbox/models/").json()["models"]}
    assert models[MODEL]["available"] is False
    assert models[MODEL]["unavailable_reason"] == "The Ollama server is not reachable."
    assert models["auto"]["available"] is True
