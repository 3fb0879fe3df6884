"""Issue 11: what the chat panel and "Ask about this" cost every NetBox page, in SQL queries.

The plugin's template content runs on every page a chatting user opens: the permission check, and the page's
object resolved as the user for the context chip. Counted against the same page without the plugin's template
content, so a change that makes every NetBox page slower shows here (time is measured in bench/, not here).
"""

import pytest
from dcim.models import Site
from django.db import connection
from django.test.utils import CaptureQueriesContext
from netbox.registry import registry

from tests.conftest import grant

pytestmark = pytest.mark.django_db

# Measured (Nov 2026): 1 query on an object page (the object, fetched as the user for the chip), none on a list page
# (the chat and view permissions come from NetBox's per-request cache; the type catalog is built once per process).
MAX_ADDED_QUERIES = 2


def queries(client, url) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content


def without_plugin_content(monkeypatch):
    """NetBox's registry of template extensions without this plugin's (those for every model: key None)."""
    extensions = registry["plugins"]["template_extensions"]
    others = [e for e in extensions.get(None, []) if not e.__module__.startswith("netbox_chatbox.")]
    monkeypatch.setitem(extensions, None, others)


@pytest.mark.parametrize("url", ["/dcim/sites/{pk}/", "/dcim/sites/"])
def test_the_panel_adds_a_few_queries_to_a_netbox_page(client, chat_user, monkeypatch, url):
    site = Site.objects.create(name="DC1", slug="dc1")
    grant(chat_user, Site, ["view"])
    client.force_login(chat_user)
    url = url.format(pk=site.pk)
    queries(client, url)  # NetBox's and the plugin's per-process caches, as on a running server
    with_panel, content = queries(client, url)
    assert b'id="chatbox-panel-config"' in content
    with monkeypatch.context() as patched:
        without_plugin_content(patched)
        without, content = queries(client, url)
        assert b'id="chatbox-panel-config"' not in content and b"Ask about this" not in content
    assert with_panel - without <= MAX_ADDED_QUERIES, (with_panel, without)
