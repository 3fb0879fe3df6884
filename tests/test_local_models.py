"""Issue 20: local models on any OpenAI-compatible server (vLLM, llama.cpp, LM Studio) on path B.

A fake OpenAI-compatible server at the HTTP edge, called directly by litellm (the catalog entry names
its ``api_base`` and key) and through the real LiteLLM proxy. Each test asserts what the user, an
API client or the admin (``netbox check``, the log) sees.
"""

import logging

import pytest
from dcim.models import Site
from django.core.checks import run_checks

import netbox_chatbox.agents.litellm  # noqa: F401  (a NetBox process has litellm once path B has answered)
from netbox_chatbox import catalog, endpoints
from netbox_chatbox.agents import create_agent
from netbox_chatbox.events import Complete, Error
from netbox_chatbox.models import Message
from tests.conftest import grant
from tests.fakes.fixtures import FAKE_OPENAI_KEY, OPENAI_KEY_ENV, OPENAI_MODEL, PROXY_KEYLESS_MODEL, openai_entry
from tests.fakes.helpers import ToolStart, assert_one_terminal, chat, collect, of_type, run, text_of
from tests.fakes.openai_compat import DEFAULT_MODEL as SERVED_MODEL

CHAT_URL = "/api/plugins/chatbox/chat/"
MODELS_URL = "/api/plugins/chatbox/models/"


@pytest.fixture(params=["direct", pytest.param("proxy", marks=pytest.mark.xdist_group("litellm-proxy"))])
def local_server(request, chatbox_config, fake_openai):
    """The fake OpenAI-compatible server behind path B, in both modes; the catalog entry is the same."""
    if request.param == "direct":
        request.getfixturevalue("use_fake_openai")
    else:
        proxy = request.getfixturevalue("litellm_proxy")
        request.getfixturevalue("monkeypatch").setenv(OPENAI_KEY_ENV, FAKE_OPENAI_KEY)
        chatbox_config(
            litellm_enabled=True,
            litellm_proxy_url=proxy.url,
            litellm_master_key=proxy.master_key,
            models=openai_entry(fake_openai),
        )
    chatbox_config(litellm_max_retries=0)
    fake_openai.mode = request.param
    return fake_openai


def models_api(client) -> dict:
    return {m["id"]: m for m in client.get(MODELS_URL).json()["models"]}


def chat_json(client, message, model=OPENAI_MODEL) -> dict:
    response = client.post(CHAT_URL, {"message": message, "model": model}, format="json")
    return response.json()


@pytest.mark.django_db(transaction=True)  # tools run in their own threads: committed data
def test_a_question_with_a_tool_call_answers(local_server, api, chat_user):
    """llama.cpp-style stream (the tool's name again in every chunk); direct mode without streamed usage."""
    Site.objects.create(name="visible-site", slug="visible-site")
    Site.objects.create(name="hidden-site", slug="hidden-site")
    grant(chat_user, Site, ["view"], constraints={"name": "visible-site"})
    local_server.repeat_tool_names = True
    local_server.send_usage = local_server.mode == "proxy"  # through the proxy the server's counts arrive
    local_server.tool_call("query_objects", {"object_type": "dcim.site"})
    local_server.reply("One site: ", "visible-site.")

    result = chat_json(api(chat_user, token=True), "which sites?")

    events = result["events"]
    assert [e["type"] for e in events] == ["tool_start", "tool_end", "delta", "delta", "complete"], events
    assert events[0]["tool"] == "query_objects" and events[1]["ok"] is True
    assert [o["display"] for o in events[1]["objects"]] == ["visible-site"]
    assert result["answer"] == "One site: visible-site."
    complete = events[-1]
    assert complete["cost_usd"] == 0.0  # a local model costs nothing
    stored = Message.objects.get(pk=complete["message"])
    assert stored.content == "One site: visible-site." and stored.tool_calls[0]["tool"] == "query_objects"
    assert stored.cost_usd == 0
    if local_server.mode == "direct":  # no counts from the server: litellm's estimate, and it says so
        assert complete["usage_estimated"] is True and stored.usage_estimated is True
        assert complete["input_tokens"] > 0
    else:
        assert complete["usage_estimated"] is False and stored.usage_estimated is False
        assert (complete["input_tokens"], complete["output_tokens"]) == (60, 9)

    first, second = local_server.chat_requests()
    assert first["model"] == SERVED_MODEL and first["stream"] is True
    assert {t["function"]["name"] for t in first["tools"]} >= {"query_objects", "get_object"}
    (tool_message,) = [m for m in second["messages"] if m["role"] == "tool"]
    assert "visible-site" in tool_message["content"] and "hidden-site" not in tool_message["content"]
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "query_objects"
    chat_calls = [r for r in local_server.requests if r.path == "/v1/chat/completions"]
    assert {r.headers["authorization"] for r in chat_calls} == {f"Bearer {FAKE_OPENAI_KEY}"}


def test_ollama_counts_are_not_estimates(use_fake_ollama, chat_user):
    use_fake_ollama.reply("Hi.")
    _, (events,) = run(chat, "ollama-qwen2.5", chat_user, "hi")
    complete = assert_one_terminal(events)
    assert isinstance(complete, Complete) and complete.usage_estimated is False and complete.cost_usd == 0.0


def test_health_follows_the_server(local_server, use_fake_anthropic, api, chat_user, chatbox_config):
    chatbox_config(health_cache_ttl=0)
    client = api(chat_user)
    assert models_api(client)[OPENAI_MODEL]["available"] is True
    assert not local_server.chat_requests()  # health never runs a completion

    with local_server.offline():
        model = models_api(client)[OPENAI_MODEL]
        assert (model["available"], model["unavailable_reason"]) == (False, "The model server is not reachable.")
        agent, (events,) = run(chat, OPENAI_MODEL, chat_user, "hi")

    assert agent.model.id == "auto" and agent.fallback.requested_model == OPENAI_MODEL
    assert "The model server is not reachable." in agent.fallback.reason
    assert text_of(events) == "OK" and len(use_fake_anthropic.requests) == 1
    assert models_api(client)[OPENAI_MODEL]["available"] is True  # back up


@pytest.mark.parametrize(
    "breakage, reason",
    [
        ("model_missing", f"The model server does not offer the model '{SERVED_MODEL}'."),
        ("wrong_key", "The model server rejected the configured key."),
    ],
)
def test_health_says_what_is_wrong_with_the_server(use_fake_openai, chat_user, api, monkeypatch, breakage, reason):
    if breakage == "model_missing":
        use_fake_openai.models = ["qwen2.5-7b-instruct"]
    else:
        use_fake_openai.api_key = "another-key-on-the-server"
    model = models_api(api(chat_user))[OPENAI_MODEL]
    assert (model["available"], model["unavailable_reason"]) == (False, reason)


def test_a_server_without_a_key_gets_none(use_fake_openai, chatbox_config, chat_user):
    """LM Studio, llama-server without --api-key: no key configured is fine (no placeholder secret needed)."""
    use_fake_openai.api_key = None
    chatbox_config(models=openai_entry(use_fake_openai, api_key_env=None))
    use_fake_openai.reply("Fine.")
    _, (events,) = run(chat, OPENAI_MODEL, chat_user, "hi")
    assert text_of(events) == "Fine." and isinstance(assert_one_terminal(events), Complete)


def test_a_hosted_endpoint_marked_not_local_is_not_free(use_fake_openai, chatbox_config, chat_user):
    chatbox_config(models=openai_entry(use_fake_openai, local=False))
    use_fake_openai.reply("Hi.")
    _, (events,) = run(chat, OPENAI_MODEL, chat_user, "hi")
    complete = assert_one_terminal(events)
    assert complete.input_tokens == 30 and complete.cost_usd is None  # not in LiteLLM's price list: unknown


def test_clients_never_see_the_endpoint_or_key(use_fake_openai, chatbox_config, api, chat_user):
    chatbox_config(models=openai_entry(use_fake_openai, api_key_env=None, api_key="sk-literal-key-123456789"))
    body = api(chat_user).get(MODELS_URL).content.decode()
    model = models_api(api(chat_user))[OPENAI_MODEL]
    assert model["local"] is True and model["path"] == "litellm"
    assert "sk-literal-key" not in body and use_fake_openai.url not in body and "api_key" not in body
    assert "sk-literal-key" not in repr(catalog.get_model(OPENAI_MODEL))


# -- configuration mistakes: netbox check, the user's message, the admin's log, no retries -------

MISCONFIGURATIONS = [
    pytest.param(
        {"litellm_model": SERVED_MODEL},
        f"models['{OPENAI_MODEL}']['litellm_model'] '{SERVED_MODEL}' has no provider prefix",
        id="no-prefix",
    ),
    pytest.param({"api_base": None}, f"models['{OPENAI_MODEL}'] needs 'api_base'", id="no-endpoint"),
    pytest.param(
        {"api_key_env": "CHATBOX_TEST_UNSET_KEY"},
        "the environment variable CHATBOX_TEST_UNSET_KEY is not set",
        id="key-variable-unset",
    ),
    pytest.param(
        {"litellm_model": "groq/llama-3.1-8b-instant", "api_base": None, "api_key_env": None},
        f"models['{OPENAI_MODEL}'] needs a key for the provider 'groq'",
        id="hosted-without-key",
    ),
    pytest.param({"litellm_model": "llamacpp/llama-3.2"}, "LiteLLM has no provider 'llamacpp'", id="unknown-provider"),
    pytest.param({"api_base": "127.0.0.1:8000/v1"}, "['api_base'] must be an http(s) URL", id="bad-url"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change, problem", MISCONFIGURATIONS)
def test_a_misconfigured_model(
    use_fake_openai, use_fake_anthropic, chatbox_config, api, chat_user, caplog, monkeypatch, change, problem
):
    monkeypatch.delenv("CHATBOX_TEST_UNSET_KEY", raising=False)
    chatbox_config(models=openai_entry(use_fake_openai, **change))

    errors = [m for m in run_checks() if m.id == "netbox_chatbox.E004"]  # what `netbox check` prints
    assert len(errors) == 1 and problem in errors[0].msg, [m.msg for m in errors]

    client = api(chat_user, token=True)
    with caplog.at_level(logging.INFO, logger="netbox_chatbox"):
        model = models_api(client)[OPENAI_MODEL]
        result = chat_json(client, "hi")
    assert (model["available"], model["unavailable_reason"]) == (False, endpoints.MISCONFIGURED)
    fallback = result["events"][0]
    assert fallback["type"] == "fallback" and fallback["actual_model"] == "auto"
    assert endpoints.MISCONFIGURED in fallback["reason"] and result["answer"] == "OK"
    assert problem in caplog.text  # the admin's log says exactly what is wrong
    assert use_fake_openai.chat_requests() == []


def test_configuration_broken_mid_conversation_is_not_retried(
    use_fake_openai, chatbox_config, chat_user, caplog, monkeypatch
):
    chatbox_config(litellm_max_retries=2)

    async def scenario():
        agent = await create_agent(OPENAI_MODEL, chat_user)  # configured correctly now
        try:
            monkeypatch.delenv(OPENAI_KEY_ENV)  # e.g. NetBox restarted by a unit without the variable
            return await collect(agent, "hi")
        finally:
            await agent.close()

    with caplog.at_level(logging.INFO, logger="netbox_chatbox"):
        events = run(scenario)

    error = assert_one_terminal(events)
    assert isinstance(error, Error) and (error.code, error.message) == ("configuration", endpoints.MISCONFIGURED)
    assert f"the environment variable {OPENAI_KEY_ENV} is not set" in caplog.text
    assert use_fake_openai.chat_requests() == []  # nothing sent, nothing retried
    assert not of_type(events, ToolStart)


def test_a_proxy_without_the_servers_key_is_a_configuration_error(
    use_litellm_proxy, chatbox_config, fake_openai, chat_user, caplog
):
    """The proxy's own configuration lacks the key: not "failed to answer, try again", and not retried."""
    chatbox_config(
        litellm_max_retries=2,
        models={"keyless": {"name": "Keyless", "provider": "vllm", "litellm_model": PROXY_KEYLESS_MODEL}},
    )
    with caplog.at_level(logging.INFO, logger="netbox_chatbox"):
        _, (events,) = run(chat, "keyless", chat_user, "hi")
    error = assert_one_terminal(events)
    assert (error.code, error.message) == ("configuration", endpoints.MISCONFIGURED)
    assert "Missing credentials" in caplog.text and "retry" not in caplog.text
    assert fake_openai.chat_requests() == []


def test_with_a_proxy_its_config_routes_the_model(chatbox_config):
    """A proxy model name needs no provider prefix, endpoint or key in the catalog."""
    entry = {"name": "Proxied", "provider": "vllm", "litellm_model": "local-llama"}
    chatbox_config(litellm_enabled=True, models={"proxied": entry})
    assert any("'local-llama' has no provider prefix" in m.msg for m in run_checks() if m.id == "netbox_chatbox.E004")
    chatbox_config(litellm_proxy_url="http://127.0.0.1:4000", litellm_master_key="sk-proxy-key-0123456789")
    assert [m for m in run_checks() if m.id == "netbox_chatbox.E004"] == []
