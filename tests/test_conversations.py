"""Issue 5: the conversations API — users list, read, rename and delete their own conversations only."""
import pytest
from django.contrib.auth import get_user_model

from netbox_chatbox.models import Conversation, Message

from .conftest import grant

LIST_URL = "/api/plugins/chatbox/conversations/"


def detail_url(pk):
    return f"{LIST_URL}{pk}/"


def stored_conversation(owner, title="Sites in Berlin", archived=False, messages=("How many sites?", "Three.")):
    """A conversation as the session stores it (rows in PostgreSQL), with alternating user/assistant messages."""
    conversation = Conversation.objects.create(owner=owner, title=title, model_id="ollama-qwen2.5", path="litellm",
                                               archived=archived, input_tokens=30, output_tokens=12)
    for i, text in enumerate(messages):
        Message.objects.create(conversation=conversation, role="user" if i % 2 == 0 else "assistant", content=text,
                               model="" if i % 2 == 0 else "ollama-qwen2.5")
    return conversation


@pytest.fixture
def other_user(db):
    from netbox_chatbox.models import Conversation as C

    user = get_user_model().objects.create_user("carol", password="carol-pass-123")
    grant(user, C, ["chat"])
    return user


def test_list_shows_only_own_conversations_newest_first(api, chat_user, other_user):
    older = stored_conversation(chat_user, "older")
    newer = stored_conversation(chat_user, "newer", archived=True)
    stored_conversation(other_user, "carol's")
    response = api(chat_user).get(LIST_URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2  # NetBox-style pagination
    assert [c["title"] for c in body["results"]] == ["newer", "older"]
    first = body["results"][0]
    assert first["id"] == newer.pk and first["archived"] is True and first["message_count"] == 2
    assert first["owner"]["username"] == "alice"
    assert first["model_id"] == "ollama-qwen2.5" and first["path"] == "litellm"
    assert first["input_tokens"] == 30 and first["output_tokens"] == 12
    assert first["url"].endswith(detail_url(newer.pk))
    assert "messages" not in first
    # Filter: only the active ones (what the chat page offers to resume).
    active = api(chat_user).get(LIST_URL, {"archived": "false"}).json()
    assert [c["id"] for c in active["results"]] == [older.pk]


def test_read_one_with_messages_in_order(api, chat_user):
    conversation = stored_conversation(chat_user, messages=("Q1", "A1", "Q2", "A2"))
    response = api(chat_user, token=True).get(detail_url(conversation.pk))
    assert response.status_code == 200
    messages = response.json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2")]
    assert messages[1]["model"] == "ollama-qwen2.5" and messages[1]["interrupted"] is False


def test_another_users_conversation_is_404_for_read_rename_and_delete(api, chat_user, other_user):
    theirs = stored_conversation(other_user, "private")
    client = api(chat_user, token=True)
    assert client.get(detail_url(theirs.pk)).status_code == 404
    assert client.patch(detail_url(theirs.pk), {"title": "mine now"}, format="json").status_code == 404
    assert client.delete(detail_url(theirs.pk)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.title == "private"
    # Same answer as for an id that never existed: hidden == missing.
    assert client.get(detail_url(theirs.pk + 1000)).status_code == 404
    assert client.get(detail_url(10**30)).status_code == 404
    assert client.get(detail_url("abc")).status_code == 404


def test_rename_changes_only_the_title(api, chat_user):
    conversation = stored_conversation(chat_user)
    response = api(chat_user, token=True).patch(
        detail_url(conversation.pk), {"title": "Berlin sites", "archived": False, "model_id": "auto"}, format="json")
    assert response.status_code == 200
    assert response.json()["title"] == "Berlin sites"
    conversation.refresh_from_db()
    assert (conversation.title, conversation.model_id) == ("Berlin sites", "ollama-qwen2.5")


def test_delete_removes_conversation_and_its_messages(api, chat_user):
    conversation = stored_conversation(chat_user)
    response = api(chat_user, token=True).delete(detail_url(conversation.pk))
    assert response.status_code == 204
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()


def test_session_auth_needs_csrf_for_changes(api, chat_user):
    conversation = stored_conversation(chat_user)
    response = api(chat_user).patch(detail_url(conversation.pk), {"title": "x"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_read_only_token_can_list_but_not_change(api, chat_user):
    conversation = stored_conversation(chat_user)
    client = api(chat_user, token=True, write_enabled=False)
    assert client.get(LIST_URL).json()["count"] == 1
    response = client.delete(detail_url(conversation.pk))
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_user_without_chat_permission_is_refused(api, plain_user):
    assert api(plain_user).get(LIST_URL).status_code == 403
    assert api().get(LIST_URL).status_code == 403


def test_auditor_with_view_permission_sees_all_but_cannot_delete_others(api, chat_user, other_user):
    auditor = get_user_model().objects.create_user("auditor", password="auditor-pass-123")
    grant(auditor, Conversation, ["view"])
    stored_conversation(chat_user, "alice's")
    carols = stored_conversation(other_user, "carol's")
    client = api(auditor, token=True)
    assert sorted(c["title"] for c in client.get(LIST_URL).json()["results"]) == ["alice's", "carol's"]
    assert client.get(detail_url(carols.pk)).json()["messages"][0]["content"] == "How many sites?"
    assert client.delete(detail_url(carols.pk)).status_code == 404


def test_superuser_sees_everyones_conversations(api, superuser, chat_user, other_user):
    stored_conversation(chat_user)
    stored_conversation(other_user)
    assert api(superuser).get(LIST_URL).json()["count"] == 2


def test_openapi_schema_renders_with_the_chat_endpoints(api, superuser):
    response = api(superuser).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/plugins/chatbox/chat/" in paths
    assert "/api/plugins/chatbox/conversations/{id}/" in paths
    assert paths["/api/plugins/chatbox/chat/"]["post"]["operationId"] == "plugins_chatbox_chat_create"
