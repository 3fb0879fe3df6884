"""Fixtures shared by every test: NetBox users at each permission level, and API clients.

Users are real NetBox users; permissions are real ObjectPermissions, checked by NetBox's own
authentication backend. API clients authenticate with a real session or a real v2 token.
"""

import pytest
from core.models import ObjectType
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from netbox_branching.utilities import close_old_branch_connections
from rest_framework.test import APIClient
from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token

# Fake model providers, the LiteLLM proxy process, and the no-outside-traffic trap (tests/fakes/fixtures.py).
pytest_plugins = ["tests.fakes.fixtures"]

# Django's test client keeps its close_old_connections from running around a request (it would close the test's
# own connections); netbox-branching connects a counterpart for branch connections to the same signals. Kept off the
# same way: Django's AsyncClient sends request_finished inside the event loop, where closing a branch connection a
# sync test left open fails (SynchronousOnlyOperation). Servers started by the tests keep it.
request_started.disconnect(close_old_branch_connections)
request_finished.disconnect(close_old_branch_connections)


def grant(user, model, actions, constraints=None, name=None):
    """Give ``user`` a NetBox ObjectPermission on ``model`` (a model class)."""
    perm = ObjectPermission.objects.create(
        name=name or f"{user.username}-{model._meta.label_lower}-{'-'.join(actions)}",
        actions=list(actions),
        constraints=constraints,
    )
    perm.object_types.add(ObjectType.objects.get_for_model(model))
    perm.users.add(user)
    return perm


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """One worker runs the tests that use the LiteLLM proxy, so only one proxy starts (12–15 s, 350 MB)."""
    for item in items:
        if "litellm_proxy" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group("litellm-proxy"))
        if "api_schema" in item.fixturenames:  # its reader is a database user: pytest-django sets the database up
            item.add_marker(pytest.mark.django_db)


@pytest.fixture(scope="session", autouse=True)
def empty_cache():
    """Start from an empty Redis cache: NetBox caches e.g. /api/schema/ for a day, across runs."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def api_schema(django_db_setup, django_db_blocker):
    """The OpenAPI document an API client reads at /api/schema/, fetched once per worker: rendering it costs
    15–20 s of CPU (every model's serializers), and several modules look for the plugin's endpoints in it."""
    from django.db import transaction

    with django_db_blocker.unblock(), transaction.atomic():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=token_for(get_user_model().objects.create_user("schema-reader")))
        response = client.get("/api/schema/", {"format": "json"})
        transaction.set_rollback(True)  # the reader is gone again: tests start from an empty database
    assert response.status_code == 200, response.content[:1000]
    return response.json()


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_user("admin", password="admin-pass-123", is_superuser=True)


@pytest.fixture
def chat_user(db):
    """A regular user allowed to chat (the custom 'chat' action on Conversation), nothing else."""
    from netbox_chatbox.models import Conversation

    user = get_user_model().objects.create_user("alice", password="alice-pass-123")
    grant(user, Conversation, ["chat"])
    return user


@pytest.fixture
def plain_user(db):
    """A logged-in user without the chat permission."""
    return get_user_model().objects.create_user("bob", password="bob-pass-123")


def token_for(user, write_enabled=True) -> str:
    token = Token(user=user, write_enabled=write_enabled)
    token.save()
    return f"Bearer {TOKEN_PREFIX}{token.key}.{token.token}"


@pytest.fixture
def api():
    """Build an APIClient for a user: api(user) logs in with a session, api(user, token=True) uses a v2 token."""

    def make(user=None, token=False, write_enabled=True):
        client = APIClient(enforce_csrf_checks=not token)
        if user is not None and token:
            client.credentials(HTTP_AUTHORIZATION=token_for(user, write_enabled))
        elif user is not None:
            client.force_login(user)
        return client

    return make
