"""Issue 2: the plugin loads, its settings are checked, and page/API/preference behave for each kind of user."""

import subprocess
import sys

import pytest
from django.core.checks import run_checks
from django.test import override_settings
from django.urls import reverse

from netbox_chatbox import catalog
from netbox_chatbox.preferences import PREFERENCE_PATH

CHAT_URL = "/plugins/chatbox/"
MODELS_URL = "/api/plugins/chatbox/models/"
PREF_URL = "/api/plugins/chatbox/preference/"


def chatbox_config(**values):
    """override_settings for PLUGINS_CONFIG['netbox_chatbox'] (the plugin re-reads it on change)."""
    from django.conf import settings

    return override_settings(PLUGINS_CONFIG={**settings.PLUGINS_CONFIG, "netbox_chatbox": values})


def chatbox_problems():
    return [m for m in run_checks() if m.id and m.id.startswith("netbox_chatbox.")]


# --- loading and system checks ---------------------------------------------------------------


def test_netbox_check_is_clean_with_the_dev_configuration():
    """`netbox check` (the real command, a fresh process) loads the plugin and reports no errors."""
    result = subprocess.run(
        [sys.executable, "-m", "netbox", "check"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "ANTHROPIC_API_KEY": "sk-test"},
    )
    if result.returncode != 0 and "No module named netbox.__main__" in result.stderr:
        result = subprocess.run(
            ["netbox", "check"],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "ANTHROPIC_API_KEY": "sk-test"},
        )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_plugin_is_registered_with_netbox():
    from django.apps import apps

    config = apps.get_app_config("netbox_chatbox")
    assert config.base_url == "chatbox" and config.min_version == "4.7.0"
    assert reverse("plugins:netbox_chatbox:chat") == CHAT_URL


@pytest.mark.parametrize(
    "values, message",
    [
        ({"default_model": "gpt-9"}, "Unknown model 'gpt-9'"),
        ({"health_cache_ttl": "soon"}, "'health_cache_ttl' must be a number"),
        ({"litellm_proxy_url": "localhost:4000"}, "'litellm_proxy_url' must be an http(s) URL"),
        ({"litellm_enabled": "yes"}, "'litellm_enabled' must be True or False"),
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"models": {"mine": {"name": "Mine"}}}, "a new model needs ['provider']"),
        ({"models": {"auto": {"speed": 3}}}, "unknown fields ['speed']"),
        ({"litellm_enabled": True, "litellm_proxy_url": "http://127.0.0.1:4000"}, "'litellm_master_key' is required"),
    ],
)
def test_bad_plugins_config_is_reported_by_a_system_check(values, message, monkeypatch):
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    with chatbox_config(**values):
        errors = [m for m in chatbox_problems() if m.level >= 40]
        assert any(message in m.msg for m in errors), [m.msg for m in errors]
        # NetBox keeps working: the catalog still answers with a usable default.
        assert catalog.default_model_id() == "auto"


def test_good_config_has_no_errors_and_warns_about_anthropic_via_litellm():
    with chatbox_config(
        anthropic_api_key="sk-x",
        allow_anthropic_via_litellm=True,
        models={"claude-sonnet-4-5": {"litellm_model": "anthropic/claude-sonnet-4-5"}},
        litellm_enabled=True,
    ):
        problems = chatbox_problems()
        assert [p.id for p in problems] == ["netbox_chatbox.W001"]
        assert catalog.get_model("claude-sonnet-4-5").path == "litellm"
        assert catalog.get_model("claude-opus-4").path == "sdk"


def test_missing_anthropic_key_is_a_warning_not_an_error(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with chatbox_config():
        assert [p.id for p in chatbox_problems()] == ["netbox_chatbox.W002"]


def test_anthropic_key_falls_back_to_the_environment(monkeypatch):
    from netbox_chatbox.conf import get_settings

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    with chatbox_config():
        assert get_settings().anthropic_api_key == "sk-from-env"
    with chatbox_config(anthropic_api_key="sk-from-config"):
        assert get_settings().anthropic_api_key == "sk-from-config"


# --- catalog ---------------------------------------------------------------------------------


def test_default_catalog_is_the_routing_table():
    with chatbox_config(litellm_enabled=True):
        table = {m.id: (m.provider, m.path, m.sdk_model, m.litellm_model) for m in catalog.enabled_models()}
    assert table == {
        "auto": ("anthropic", "sdk", None, None),
        "claude-sonnet-4-5": ("anthropic", "sdk", "claude-sonnet-4-5-20250929", None),
        "claude-opus-4": ("anthropic", "sdk", "claude-opus-4-20250514", None),
        "claude-haiku-4-5": ("anthropic", "sdk", "claude-haiku-4-5-20251001", None),
        "ollama-qwen2.5": ("ollama", "litellm", None, "ollama_chat/qwen2.5:14b-instruct-8k"),
    }


@pytest.mark.parametrize("model_id", ["gpt-4", "", None, 42, "AUTO", "auto "])
def test_catalog_rejects_unknown_ids(model_id):
    with pytest.raises(catalog.ModelNotAvailable, match="Unknown model"):
        catalog.get_model(model_id)


def test_admin_overrides_remove_disable_change_and_add_models():
    with chatbox_config(
        litellm_enabled=True,
        models={
            "claude-opus-4": None,
            "claude-haiku-4-5": {"enabled": False},
            "claude-sonnet-4-5": {"sdk_model": "claude-sonnet-4-5-20991231", "name": "Sonnet (pinned)"},
            "ollama-llama3": {"name": "Llama 3", "provider": "ollama", "litellm_model": "ollama_chat/llama3"},
        },
    ):
        ids = [m.id for m in catalog.enabled_models()]
        assert ids[0] == "auto" and "claude-opus-4" not in ids and "ollama-llama3" in ids
        with pytest.raises(catalog.ModelNotAvailable, match="disabled"):
            catalog.get_model("claude-haiku-4-5")
        assert catalog.get_model("claude-sonnet-4-5").sdk_model == "claude-sonnet-4-5-20991231"
        assert catalog.get_model("ollama-llama3").path == "litellm"


def test_litellm_models_need_litellm_enabled():
    with chatbox_config(litellm_enabled=False):
        assert "ollama-qwen2.5" not in [m.id for m in catalog.enabled_models()]
        with pytest.raises(catalog.ModelNotAvailable, match="LiteLLM"):
            catalog.get_model("ollama-qwen2.5")


# --- page and API auth -----------------------------------------------------------------------


def test_anonymous_is_sent_to_login_and_refused_by_the_api(client, api, db):
    response = client.get(CHAT_URL)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert api().get(MODELS_URL).status_code == 403


def test_user_without_chat_permission_gets_403_everywhere(client, api, plain_user):
    client.force_login(plain_user)
    assert client.get(CHAT_URL).status_code == 403
    for client_ in (api(plain_user), api(plain_user, token=True)):
        assert client_.get(MODELS_URL).status_code == 403
        assert client_.get(PREF_URL).status_code == 403


@pytest.mark.parametrize("who", ["chat_user", "superuser"])
def test_permitted_users_and_superusers_get_page_and_api(who, request, client, api):
    user = request.getfixturevalue(who)
    client.force_login(user)
    page = client.get(CHAT_URL)
    assert page.status_code == 200
    assert b"Claude (Automatic)" in page.content  # the active model is shown
    for client_ in (api(user), api(user, token=True)):
        response = client_.get(MODELS_URL)
        assert response.status_code == 200
        body = response.json()
        assert body["default"] == "auto" and body["selected"] == "auto"
        assert body["models"][0]["id"] == "auto" and body["models"][0]["recommended"] is True


def test_navbar_shows_chat_only_to_users_who_may_chat(client, chat_user, plain_user):
    client.force_login(chat_user)
    assert f'href="{CHAT_URL}"'.encode() in client.get("/").content
    client.force_login(plain_user)
    assert f'href="{CHAT_URL}"'.encode() not in client.get("/").content


def test_chat_permission_is_offered_on_netboxs_permission_form(client, superuser):
    """Admins grant chat with NetBox's own permission form: the 'chat' action is listed for conversations."""
    client.force_login(superuser)
    page = client.get("/users/permissions/add/")
    assert page.status_code == 200
    assert b"Chat with the AI assistant" in page.content


def test_openapi_schema_renders_and_lists_the_plugin_endpoints(api_schema):
    paths = api_schema["paths"]
    assert "/api/plugins/chatbox/models/" in paths and "/api/plugins/chatbox/preference/" in paths
    assert "/api/plugins/chatbox/usage/" in paths  # issue 16


# --- preference ------------------------------------------------------------------------------


def test_preference_round_trip_through_api_and_userconfig(api, chat_user):
    client = api(chat_user, token=True)
    assert client.get(PREF_URL).json() == {"model": "auto"}
    response = client.put(PREF_URL, {"model": "claude-opus-4"}, format="json")
    assert response.status_code == 200 and response.json() == {"model": "claude-opus-4"}
    chat_user.config.refresh_from_db()
    assert chat_user.config.get(PREFERENCE_PATH) == "claude-opus-4"
    assert client.get(MODELS_URL).json()["selected"] == "claude-opus-4"
    # ...and a value stored through UserConfig (e.g. NetBox's Preferences page) is what the API reads.
    chat_user.config.set(PREFERENCE_PATH, "claude-haiku-4-5", commit=True)
    assert client.get(PREF_URL).json() == {"model": "claude-haiku-4-5"}


def test_preference_appears_on_netboxs_preferences_page(client, chat_user):
    client.force_login(chat_user)
    page = client.get("/user/preferences/")
    assert page.status_code == 200
    assert b"Chat model" in page.content and b"plugins.netbox_chatbox.model" in page.content


@pytest.mark.parametrize("body", [{"model": "gpt-4"}, {"model": ""}, {}, {"model": ["auto"]}])
def test_bad_preference_values_get_a_readable_400(api, chat_user, body):
    client = api(chat_user, token=True)
    response = client.put(PREF_URL, body, format="json")
    assert response.status_code == 400
    assert "model" in response.json()
    assert client.get(PREF_URL).json() == {"model": "auto"}  # nothing stored


def test_stale_preference_falls_back_to_the_default(api, chat_user):
    chat_user.config.set(PREFERENCE_PATH, "claude-2", commit=True)  # removed from the catalog since
    assert api(chat_user).get(PREF_URL).json() == {"model": "auto"}


def test_read_only_token_cannot_change_the_preference(api, chat_user):
    response = api(chat_user, token=True, write_enabled=False).put(PREF_URL, {"model": "claude-opus-4"}, format="json")
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]


def test_session_put_needs_csrf(api, chat_user):
    assert api(chat_user).put(PREF_URL, {"model": "claude-opus-4"}, format="json").status_code == 403


def test_selection_disabled_refuses_changes(api, chat_user):
    chat_user.config.set(PREFERENCE_PATH, "claude-opus-4", commit=True)
    with chatbox_config(enable_model_selection=False):
        # Everyone uses the default; a stored choice is ignored, not shown.
        assert api(chat_user).get(PREF_URL).json() == {"model": "auto"}
        assert api(chat_user).get(MODELS_URL).json()["selected"] == "auto"
        response = api(chat_user, token=True).put(PREF_URL, {"model": "claude-opus-4"}, format="json")
        assert response.status_code == 400 and "disabled" in response.json()["model"][0]
