"""pytest fixtures for the fake providers (loaded by tests/conftest.py via ``pytest_plugins``).

- ``outside_traffic_trap`` (session, autouse): the whole test run has HTTP(S)_PROXY pointing at a
  refusing local proxy; every fixture below fails its test if anything tried to get out meanwhile.
- ``fake_anthropic`` / ``fake_ollama``: a clean scripted fake per test (one server per session).
- ``litellm_proxy``: one real LiteLLM proxy process per session, in front of the session's fake Ollama.
- ``chatbox_config(**keys)``: set PLUGINS_CONFIG['netbox_chatbox'] keys for one test.
- ``use_fake_anthropic`` / ``use_fake_ollama`` / ``use_litellm_proxy``: the plugin configured to
  talk to those fakes (path A / path B direct / path B through the proxy).
"""
import pytest

from .anthropic import FakeAnthropic
from .litellm_proxy import LiteLLMProxy
from .ollama import FakeOllama
from .trap import OutsideTrafficTrap

FAKE_ANTHROPIC_KEY = "sk-ant-fake-key-for-tests-0123456789"


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


@pytest.fixture(scope="session")
def litellm_proxy(fake_ollama_server):
    with LiteLLMProxy(ollama_url=fake_ollama_server.url) as proxy:
        yield proxy


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


@pytest.fixture
def use_litellm_proxy(chatbox_config, fake_ollama, litellm_proxy):
    chatbox_config(litellm_enabled=True, litellm_proxy_url=litellm_proxy.url,
                   litellm_master_key=litellm_proxy.master_key, ollama_base_url=fake_ollama.url)
    return litellm_proxy
