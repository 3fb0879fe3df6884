"""Issue 11: Claude's availability is measured (GET /v1/models with the key, cached), a failed turn marks
it down, and the admin's fallback_order decides who answers instead (the fallback event says so)."""

import pytest

from netbox_chatbox import catalog, health
from netbox_chatbox.agents import create_agent
from tests.fakes.fixtures import FAKE_ANTHROPIC_KEY
from tests.fakes.helpers import run
from tests.fakes.server import HttpError


def status_of(model_id):
    return run(health.model_status, catalog.get_model(model_id))


def test_claude_is_available_when_the_api_accepts_the_key_and_the_check_is_cached(use_fake_anthropic):
    assert status_of("auto") == (True, "")
    assert status_of("claude-opus-4") == (True, "")  # cached: path A models share one check
    (request,) = use_fake_anthropic.model_list_requests
    assert request.headers["x-api-key"] == FAKE_ANTHROPIC_KEY and request.query == {"limit": "1"}
    assert use_fake_anthropic.requests == []  # no completion, no tokens


def test_a_rejected_key_or_an_outage_is_unavailable(use_fake_anthropic, chatbox_config):
    chatbox_config(health_cache_ttl=0)
    use_fake_anthropic.override("/v1/models", HttpError(401, {"type": "error"}))
    assert status_of("auto") == (False, "The Anthropic API rejected the configured API key.")
    use_fake_anthropic.override("/v1/models", HttpError(529, {"type": "error"}))
    assert status_of("auto") == (False, "The Anthropic API answered with an error (HTTP 529).")
    with use_fake_anthropic.offline():
        assert status_of("auto") == (False, "The Anthropic API is not reachable.")


def test_a_failed_turn_marks_claude_down_for_the_ttl(use_fake_anthropic, chatbox_config):
    chatbox_config(health_cache_ttl=30)
    assert status_of("auto") == (True, "")
    health.mark_down(catalog.get_model("auto"), "Claude is temporarily unavailable (HTTP 529).")
    assert status_of("claude-haiku-4-5") == (False, "Claude is temporarily unavailable (HTTP 529).")
    assert len(use_fake_anthropic.model_list_requests) == 1  # not asked again within the TTL


def test_the_models_api_never_says_available_for_a_provider_that_is_down(api, chat_user, use_fake_anthropic, db):
    use_fake_anthropic.override("/v1/models", HttpError(500, {"type": "error"}))
    models = {m["id"]: m for m in api(chat_user).get("/api/plugins/chatbox/models/").json()["models"]}
    assert models["auto"]["available"] is False and "HTTP 500" in models["auto"]["unavailable_reason"]


@pytest.mark.parametrize("order, expected", [(["auto", "ollama-qwen2.5"], "ollama-qwen2.5"), (["auto"], None)])
def test_fallback_order_decides_who_answers_when_claude_is_down(
    use_fake_anthropic, use_fake_ollama, chatbox_config, chat_user, order, expected
):
    chatbox_config(
        fallback_order=order, litellm_enabled=True, litellm_proxy_url="", ollama_base_url=use_fake_ollama.url
    )
    use_fake_anthropic.override("/v1/models", HttpError(500, {"type": "error"}))

    async def scenario():
        agent = await create_agent("claude-sonnet-4-5", chat_user)
        await agent.close()
        return agent

    if expected is None:
        from netbox_chatbox.agents import AgentUnavailable

        with pytest.raises(AgentUnavailable, match="HTTP 500"):
            run(scenario)
        return
    agent = run(scenario)
    assert agent.model.id == expected
    fallback = agent.fallback.as_dict()
    assert fallback["requested_model"] == "claude-sonnet-4-5" and fallback["actual_model"] == "ollama-qwen2.5"
    assert (
        "Claude Sonnet 4.5 is unavailable: The Anthropic API answered with an error (HTTP 500)." in fallback["reason"]
    )
