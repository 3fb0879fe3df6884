"""pytest fixtures for the fake providers (loaded by tests/conftest.py via ``pytest_plugins``).

- ``outside_traffic_trap`` (session, autouse): the whole test run has HTTP(S)_PROXY pointing at a
  refusing local proxy; every fixture below fails its test if anything tried to get out meanwhile.
- ``fake_anthropic`` / ``fake_ollama`` / ``fake_openai``: a clean scripted fake per test (one server per
  session); ``fake_openai`` is an OpenAI-compatible server (vLLM, llama.cpp…) that wants a key.
- ``litellm_proxy``: one real LiteLLM proxy process per session, in front of the session's fake Ollama
  and fake OpenAI-compatible server.
- ``chatbox_config(**keys)``: set PLUGINS_CONFIG['netbox_chatbox'] keys for one test.
- ``use_fake_anthropic`` / ``use_fake_ollama`` / ``use_litellm_proxy``: the plugin configured to
  talk to those fakes (path A / path B direct / path B through the proxy).
- ``use_fake_openai``: path B direct with a catalog entry (``OPENAI_MODEL``) for the fake OpenAI-compatible
  server, its key in an environment variable.
"""

import os

import pytest

from .anthropic import FakeAnthropic
from .litellm_proxy import LiteLLMProxy
from .ollama import FakeOllama
from .openai_compat import DEFAULT_MODEL as OPENAI_SERVED_MODEL, FakeOpenAICompatible
from .trap import OutsideTrafficTrap

FAKE_ANTHROPIC_KEY = "sk-ant-fake-key-for-tests-0123456789"
FAKE_OPENAI_KEY = "local-server-key-for-tests-9876543210"
OPENAI_KEY_ENV = "CHATBOX_TEST_LOCAL_KEY"
OPENAI_MODEL = "local-llama"  # the catalog id of the fake OpenAI-compatible server's model
OPENAI_LITELLM_MODEL = f"openai/{OPENAI_SERVED_MODEL}"  # in the catalog and as the proxy's model name
PROXY_KEYLESS_MODEL = f"openai/{OPENAI_SERVED_MODEL}-keyless"


@pytest.fixture(scope="session", autouse=True)
def outside_traffic_trap():
    trap = OutsideTrafficTrap().install()
    yield trap
    trap.uninstall()
    trap.close()


def _assert_no_outside_traffic(trap, before):
    attempts = trap.attempts[before:]
    assert not attempts, f"a test tried to reach the outside: {attempts}"


@pytest.fixture(scope="session")
def fake_anthropic_server():
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_ollama_server():
    with FakeOllama() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_openai_server():
    with FakeOpenAICompatible(api_key=FAKE_OPENAI_KEY) as fake:
        yield fake


@pytest.fixture
def fake_anthropic(fake_anthropic_server, outside_traffic_trap):
    fake_anthropic_server.reset()
    before = len(outside_traffic_trap.attempts)
    yield fake_anthropic_server
    fake_anthropic_server.reset()
    _assert_no_outside_traffic(outside_traffic_trap, before)


@pytest.fixture
def fake_ollama(fake_ollama_server, outside_traffic_trap):
    fake_ollama_server.reset()
    fake_ollama_server.models = ["qwen2.5:14b-instruct-8k"]
    before = len(outside_traffic_trap.attempts)
    yield fake_ollama_server
    fake_ollama_server.reset()
    fake_ollama_server.models = ["qwen2.5:14b-instruct-8k"]
    _assert_no_outside_traffic(outside_traffic_trap, before)


@pytest.fixture
def fake_openai(fake_openai_server, outside_traffic_trap):
    fake_openai_server.reset()
    fake_openai_server.models, fake_openai_server.api_key = [OPENAI_SERVED_MODEL], FAKE_OPENAI_KEY
    before = len(outside_traffic_trap.attempts)
    yield fake_openai_server
    fake_openai_server.reset()
    fake_openai_server.models, fake_openai_server.api_key = [OPENAI_SERVED_MODEL], FAKE_OPENAI_KEY
    _assert_no_outside_traffic(outside_traffic_trap, before)


@pytest.fixture(scope="session")
def litellm_proxy(fake_ollama_server, fake_openai_server):
    openai_models = {
        OPENAI_LITELLM_MODEL: {
            "model": OPENAI_LITELLM_MODEL,
            "api_base": f"{fake_openai_server.url}/v1",
            "api_key": FAKE_OPENAI_KEY,
        },
        # a proxy-side mistake: no key for the openai provider (and none in the proxy's environment)
        PROXY_KEYLESS_MODEL: {"model": PROXY_KEYLESS_MODEL, "api_base": f"{fake_openai_server.url}/v1"},
    }
    env_key = os.environ.pop("OPENAI_API_KEY", None)  # the proxy process must not see one
    proxy = LiteLLMProxy(ollama_url=fake_ollama_server.url, openai_models=openai_models)
    try:
        proxy.start()
    finally:
        if env_key is not None:
            os.environ["OPENAI_API_KEY"] = env_key
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def chatbox_config(settings):
    """``chatbox_config(key=value, …)`` sets plugin settings for this test (settings/catalog/health reset)."""
    from netbox_chatbox import health

    def configure(**keys):
        current = dict(settings.PLUGINS_CONFIG.get("netbox_chatbox", {}))
        settings.PLUGINS_CONFIG = {**settings.PLUGINS_CONFIG, "netbox_chatbox": {**current, **keys}}
        health.reset()

    yield configure
    health.reset()


@pytest.fixture
def use_fake_anthropic(chatbox_config, fake_anthropic):
    chatbox_config(anthropic_api_key=FAKE_ANTHROPIC_KEY, anthropic_base_url=fake_anthropic.url)
    return fake_anthropic


@pytest.fixture
def use_fake_ollama(chatbox_config, fake_ollama):
    chatbox_config(litellm_enabled=True, litellm_proxy_url="", ollama_base_url=fake_ollama.url)
    return fake_ollama


def openai_entry(fake, **changes) -> dict:
    """The catalog entry (PLUGINS_CONFIG ``models``) for the fake OpenAI-compatible server's model."""
    return {
        OPENAI_MODEL: {
            "name": "Llama 3.2 3B (vLLM)",
            "provider": "vllm",
            "litellm_model": OPENAI_LITELLM_MODEL,
            "api_base": f"{fake.url}/v1",
            "api_key_env": OPENAI_KEY_ENV,
            **changes,
        }
    }


@pytest.fixture
def use_fake_openai(chatbox_config, fake_openai, monkeypatch):
    monkeypatch.setenv(OPENAI_KEY_ENV, FAKE_OPENAI_KEY)
    chatbox_config(litellm_enabled=True, litellm_proxy_url="", models=openai_entry(fake_openai))
    return fake_openai


@pytest.fixture
def use_litellm_proxy(chatbox_config, fake_ollama, litellm_proxy):
    chatbox_config(
        litellm_enabled=True,
        litellm_proxy_url=litellm_proxy.url,
        litellm_master_key=litellm_proxy.master_key,
        ollama_base_url=fake_ollama.url,
    )
    return litellm_proxy
