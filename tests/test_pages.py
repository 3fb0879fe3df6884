"""Issue 6, server side: what the chat page and the "Ask about this" buttons render for each user.

The browser behaviour (streaming, modals, history) is covered in tests/e2e/.
"""

import json
import re
from pathlib import Path

import pytest
from circuits.models import Circuit, CircuitType, Provider
from dcim.models import Device, DeviceRole, DeviceType, Manufacturer, Site
from django.contrib.staticfiles import finders
from django.test import override_settings
from ipam.models import VLAN, IPAddress, Prefix

from netbox_chatbox.models import Conversation
from netbox_chatbox.preferences import PREFERENCE_PATH
from tests.conftest import grant

CHAT_URL = "/plugins/chatbox/"
EVIL = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def chatbox_config(**values):
    from django.conf import settings

    return override_settings(PLUGINS_CONFIG={**settings.PLUGINS_CONFIG, "netbox_chatbox": values})


def page_config(response) -> dict:
    """The JSON the page hands to page.js (Django's json_script)."""
    match = re.search(rb'<script id="chatbox-config" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "chat page has no chatbox-config"
    return json.loads(match.group(1))


@pytest.fixture
def objects(db):
    """One object of each type that gets an "Ask about this" button."""
    site = Site.objects.create(name="DC1", slug="dc1")
    maker = Manufacturer.objects.create(name="Acme", slug="acme")
    device = Device.objects.create(
        name="core-rtr-1",
        site=site,
        device_type=DeviceType.objects.create(manufacturer=maker, model="R1", slug="r1"),
        role=DeviceRole.objects.create(name="Router", slug="router"),
    )
    provider = Provider.objects.create(name="Telco", slug="telco")
    return {
        "dcim.device": device,
        "dcim.site": site,
        "ipam.prefix": Prefix.objects.create(prefix="10.1.0.0/24"),
        "ipam.ipaddress": IPAddress.objects.create(address="10.1.0.1/24"),
        "ipam.vlan": VLAN.objects.create(vid=100, name="users"),
        "circuits.circuit": Circuit.objects.create(
            cid="CID-1", provider=provider, type=CircuitType.objects.create(name="Transit", slug="transit")
        ),
    }


def test_page_hands_chat_js_its_endpoints_and_the_users_model(client, chat_user):
    chat_user.config.set(PREFERENCE_PATH, "claude-opus-4", commit=True)
    client.force_login(chat_user)
    page = client.get(CHAT_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="chatbox-model-indicator" data-model-id="claude-opus-4"' in html and ">Claude Opus 4<" in html
    assert '<script type="module" src="/static/netbox_chatbox/page.js">' in html
    assert "/static/netbox_chatbox/chat.css" in html
    assert 'id="chatbox-settings"' in html  # the settings button opens the model selector
    config = page_config(page)
    assert config["wsUrl"] == "/plugins/chatbox/ws/"
    assert config["apiRoot"] == "/api/plugins/chatbox/"
    assert config["activeModel"] == {
        "id": "claude-opus-4",
        "name": "Claude Opus 4",
        "provider": "anthropic",
        "path": "sdk",
    }
    assert config["selectionEnabled"] is True and config["maxMessageChars"] == 8000
    assert config["userId"] == chat_user.pk
    assert config["conversation"] is None and config["about"] is None


BROWSER_MODULES = ("dom", "markdown", "client", "messages", "modals", "history", "page", "panel")


def test_static_files_ship_with_the_plugin():
    for name in [f"netbox_chatbox/{module}.js" for module in BROWSER_MODULES] + ["netbox_chatbox/chat.css"]:
        path = finders.find(name)
        assert path, f"{name} is not found by Django's static finders"
        content = Path(path).read_text()
        assert "http://" not in content and "https://" not in content  # nothing loaded from elsewhere


def test_browser_code_never_parses_html_from_data():
    """The safe-Markdown promise, checked in the source: no innerHTML/outerHTML/insertAdjacentHTML/eval."""
    for module in BROWSER_MODULES:
        source = Path(finders.find(f"netbox_chatbox/{module}.js")).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, (module, sink)


def test_settings_button_hidden_when_selection_is_disabled(client, chat_user):
    client.force_login(chat_user)
    with chatbox_config(enable_model_selection=False):
        page = client.get(CHAT_URL)
    assert page.status_code == 200
    assert b'id="chatbox-settings"' not in page.content
    assert page_config(page)["selectionEnabled"] is False


@pytest.mark.parametrize("configured", [{}, {"anthropic_api_key": "sk-ant-x"}, {"litellm_enabled": True}])
def test_without_any_provider_the_page_says_what_to_set_and_takes_no_message(
    configured, client, chat_user, monkeypatch
):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    client.force_login(chat_user)
    with chatbox_config(**configured):
        page = client.get(CHAT_URL).content.decode()
    disabled_input = re.search(r'<fieldset[^>]*\bdisabled>\s*<textarea[^>]*id="chatbox-input"', page)
    if configured:
        assert 'id="chatbox-unconfigured"' not in page and not disabled_input
        return
    notice = re.search(r'<div[^>]*id="chatbox-unconfigured".*?</div>', page, re.S)[0]
    assert "No model provider is configured" in notice
    for setting in (
        '"anthropic_api_key"',
        "ANTHROPIC_API_KEY",
        '"litellm_enabled": True',
        '"ollama_base_url"',
        '"litellm_proxy_url"',
        '"litellm_master_key"',
    ):
        assert setting in notice, setting
    assert disabled_input  # a disabled fieldset: the page's script cannot enable the input again


def test_conversation_parameter_is_passed_as_a_number_only(client, chat_user):
    client.force_login(chat_user)
    assert page_config(client.get(CHAT_URL, {"conversation": "42"}))["conversation"] == 42
    assert page_config(client.get(CHAT_URL, {"conversation": "42;alert(1)"}))["conversation"] is None


def test_conversation_absolute_url_opens_the_chat_page(client, chat_user):
    conversation = Conversation.objects.create(owner=chat_user, model_id="auto", path="sdk")
    client.force_login(chat_user)
    page = client.get(conversation.get_absolute_url())
    assert page.status_code == 200 and page_config(page)["conversation"] == conversation.pk


@pytest.mark.parametrize(
    "label", ["dcim.device", "dcim.site", "ipam.prefix", "ipam.ipaddress", "ipam.vlan", "circuits.circuit"]
)
def test_ask_about_button_on_object_pages(label, client, chat_user, plain_user, objects):
    obj = objects[label]
    for user in (chat_user, plain_user):
        grant(user, type(obj), ["view"])
    client.force_login(chat_user)
    page = client.get(obj.get_absolute_url())
    assert page.status_code == 200
    about = f"{CHAT_URL}?about={label}:{obj.pk}"
    assert f'href="{about}"'.encode() in page.content and b"Ask about this" in page.content

    # The chat page it opens names the object, links to it and pre-fills a question.
    chat = client.get(about)
    config = page_config(chat)["about"]
    assert (config["type"], config["id"], config["url"]) == (label, obj.pk, obj.get_absolute_url())
    # A human question: the object's name, not "(dcim.device id 1)"; the id travels as context.
    assert config["question"] == f'Tell me about the {obj._meta.verbose_name} "{obj}".'
    assert f'<a href="{obj.get_absolute_url()}">'.encode() in chat.content

    # A user who may view the object but not chat gets no button.
    client.force_login(plain_user)
    page = client.get(obj.get_absolute_url())
    assert page.status_code == 200 and b"Ask about this" not in page.content


def test_superuser_sees_the_button(client, superuser, objects):
    client.force_login(superuser)
    assert b"Ask about this" in client.get(objects["dcim.device"].get_absolute_url()).content


def test_about_an_object_the_user_may_not_view_looks_like_a_missing_one(client, chat_user, objects):
    """No view permission on devices: the page must not reveal the device's name (hidden == missing)."""
    device = objects["dcim.device"]
    client.force_login(chat_user)
    hidden = client.get(CHAT_URL, {"about": f"dcim.device:{device.pk}"})
    missing = client.get(CHAT_URL, {"about": "dcim.device:999999"})
    for page in (hidden, missing):
        assert page.status_code == 200
        assert b"not found, or you may not view it" in page.content
        assert device.name.encode() not in page.content
        assert page_config(page)["about"] is None


def test_about_respects_permission_constraints(client, chat_user, objects):
    site = objects["dcim.site"]
    other = Site.objects.create(name="DC2", slug="dc2")
    grant(chat_user, Site, ["view"], constraints={"slug": "dc1"})
    client.force_login(chat_user)
    assert page_config(client.get(CHAT_URL, {"about": f"dcim.site:{site.pk}"}))["about"]["display"] == "DC1"
    assert page_config(client.get(CHAT_URL, {"about": f"dcim.site:{other.pk}"}))["about"] is None


@pytest.mark.parametrize("value", ["users.token:1", "dcim.device", "dcim.device:abc", "nope:1", ":", "dcim.device:-1"])
def test_bad_about_values_are_ignored_with_a_message(value, client, superuser):
    client.force_login(superuser)
    page = client.get(CHAT_URL, {"about": value})
    assert page.status_code == 200
    assert b"not found, or you may not view it" in page.content and page_config(page)["about"] is None


def test_excluded_models_get_no_button_and_no_context(client, superuser, objects):
    device = objects["dcim.device"]
    client.force_login(superuser)
    with chatbox_config(excluded_models=["dcim.device"]):
        assert b"Ask about this" not in client.get(device.get_absolute_url()).content
        assert page_config(client.get(CHAT_URL, {"about": f"dcim.device:{device.pk}"}))["about"] is None


def test_object_names_are_escaped_on_the_chat_page(client, superuser, objects):
    """NetBox data is untrusted too: a device named like an XSS payload stays text."""
    device = objects["dcim.device"]
    device.name = EVIL
    device.save()
    client.force_login(superuser)
    page = client.get(CHAT_URL, {"about": f"dcim.device:{device.pk}"})
    assert page.status_code == 200
    assert EVIL.encode() not in page.content
    assert b"&lt;img src=x onerror=" in page.content  # shown as text in the context banner
    assert page_config(page)["about"]["display"] == EVIL  # and handed to page.js as data, not markup
