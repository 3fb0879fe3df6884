"""Issue 11, server side: the page a question is asked from is resolved as the user, never trusted.

Also the panel's injection on NetBox's own pages (template extensions) for who may chat, and the
"Ask about this" button on any object's page.
"""

import json
import re

import pytest
from dcim.models import Device, DeviceRole, DeviceType, Manufacturer, Site
from django.test import override_settings

from netbox_chatbox.page_context import resolve_page, with_context
from netbox_chatbox.preferences import PREFERENCE_PATH
from tests.conftest import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def sites(db):
    return Site.objects.create(name="DC1", slug="dc1"), Site.objects.create(name="DC2", slug="dc2")


def chatbox_config(**values):
    from django.conf import settings

    return override_settings(PLUGINS_CONFIG={**settings.PLUGINS_CONFIG, "netbox_chatbox": values})


def test_an_object_page_is_the_object_the_user_may_view(chat_user, sites):
    dc1, dc2 = sites
    grant(chat_user, Site, ["view"], constraints={"slug": "dc1"})
    page = resolve_page(chat_user, f"/dcim/sites/{dc1.pk}/")
    assert page == {
        "kind": "object",
        "type": "dcim.site",
        "type_name": "site",
        "id": dc1.pk,
        "display": "DC1",
        "url": dc1.get_absolute_url(),
    }
    assert resolve_page(chat_user, f"/dcim/sites/{dc1.pk}/changelog/")["id"] == dc1.pk  # a tab of the object
    # Hidden by a constraint, missing, or not viewable at all: no context, no difference between them.
    assert resolve_page(chat_user, f"/dcim/sites/{dc2.pk}/") is None
    assert resolve_page(chat_user, "/dcim/sites/999999/") is None
    assert resolve_page(chat_user, "/dcim/devices/") is None  # no view permission on devices


def test_a_list_page_keeps_only_its_filterset_filters(chat_user, sites):
    grant(chat_user, Device, ["view"])
    page = resolve_page(
        chat_user, f"/dcim/devices/?site_id={sites[0].pk}&status=active&status=offline&bogus=<b>&per_page=5&sort=name"
    )
    assert page["kind"] == "list" and page["type"] == "dcim.device" and page["type_name"] == "devices"
    assert page["filters"] == {"site_id": [str(sites[0].pk)], "status": ["active", "offline"]}
    assert page["url"] == f"/dcim/devices/?site_id={sites[0].pk}&status=active&status=offline"
    text = with_context(chat_user, "How many?", "/dcim/devices/?status=active")
    assert text == (
        "How many?\n\n[Context: the user is viewing the list of devices (dcim.device) "
        "filtered by status=active, /dcim/devices/?status=active.]"
    )


@pytest.mark.parametrize(
    "address",
    [
        "https://evil.example/dcim/sites/1/",
        "//evil.example/dcim/sites/",
        "dcim/sites/",
        "/nope/",
        "/",
        "",
        "/plugins/chatbox/",
        "/api/dcim/sites/",
        "/dcim/sites/add/",
        "/users/tokens/",
        "/" + "a" * 3000,
        None,
        5,
        {"path": "/dcim/sites/"},
    ],
)
def test_anything_else_gives_no_context(superuser, sites, address):
    assert resolve_page(superuser, address) is None
    assert with_context(superuser, "Hi", address) == "Hi"


def test_excluded_models_give_no_context(superuser, sites):
    with chatbox_config(excluded_models=["dcim.site"]):
        assert resolve_page(superuser, f"/dcim/sites/{sites[0].pk}/") is None
        assert resolve_page(superuser, "/dcim/sites/") is None


@pytest.mark.django_db(transaction=True)
def test_the_api_resolves_context_as_the_user(api, chat_user, sites, use_fake_ollama):
    chat_user.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    grant(chat_user, Site, ["view"], constraints={"slug": "dc1"})
    client = api(chat_user, token=True)
    for site, expected in (
        (sites[0], f'the site "DC1" (dcim.site, id {sites[0].pk}, /dcim/sites/{sites[0].pk}/)'),
        (sites[1], None),
    ):
        use_fake_ollama.reply("Ok.")
        response = client.post(
            "/api/plugins/chatbox/chat/",
            {"message": "What is it?", "context": f"/dcim/sites/{site.pk}/"},
            format="json",
        )
        assert response.status_code == 200
        asked = use_fake_ollama.chat_requests()[-1]["messages"][-1]["content"]
        if expected:
            assert expected in asked
        else:
            assert asked == "What is it?"  # the hidden site: not even its id reaches the model


def panel_config(response):
    match = re.search(
        rb'<script id="chatbox-panel-config" type="application/json">(.*?)</script>', response.content, re.S
    )
    return json.loads(match.group(1)) if match else None


def test_the_panel_is_on_netbox_pages_for_who_may_chat_only(client, chat_user, plain_user, sites):
    grant(chat_user, Site, ["view"])
    grant(plain_user, Site, ["view"])
    client.force_login(chat_user)
    page = client.get(f"/dcim/sites/{sites[0].pk}/")
    config = panel_config(page)
    assert config["page"]["display"] == "DC1" and config["apiRoot"] == "/api/plugins/chatbox/"
    assert b'type="module" src="/static/netbox_chatbox/panel.js"' in page.content
    assert page.content.count(b"chatbox-panel-toggle") == 2  # the header's desktop and mobile menus
    assert b"Ask about this" in page.content
    assert panel_config(client.get("/plugins/chatbox/")) is None  # the Chat page is the chat already

    client.force_login(plain_user)
    page = client.get(f"/dcim/sites/{sites[0].pk}/")
    assert page.status_code == 200 and panel_config(page) is None
    assert b"chatbox-panel-toggle" not in page.content and b"Ask about this" not in page.content


def test_ask_about_this_on_any_readable_type(client, superuser, db):
    maker = Manufacturer.objects.create(name="Acme", slug="acme")
    role = DeviceRole.objects.create(name="Router", slug="router")
    client.force_login(superuser)
    for obj in (maker, role, DeviceType.objects.create(manufacturer=maker, model="R1", slug="r1")):
        page = client.get(obj.get_absolute_url())
        assert f"?about={obj._meta.label_lower}:{obj.pk}".encode() in page.content, obj
