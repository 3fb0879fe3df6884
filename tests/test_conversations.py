"""Issue 5: the conversations API — users list, filter, read, rename, archive and delete their own conversations."""

import pytest
from django.contrib.auth import get_user_model

from netbox_chatbox.models import Conversation, Message

from .conftest import grant

LIST_URL = "/api/plugins/chatbox/conversations/"


def detail_url(pk):
    return f"{LIST_URL}{pk}/"


def stored_conversation(owner, title="Sites in Berlin", archived=False, messages=("How many sites?", "Three.")):
    """A conversation as the session stores it (rows in PostgreSQL), with alternating user/assistant messages."""
    conversation = Conversation.objects.create(
        owner=owner,
        title=title,
        model_id="ollama-qwen2.5",
        path="litellm",
        archived=archived,
        input_tokens=30,
        output_tokens=12,
    )
    for i, text in enumerate(messages):
        Message.objects.create(
            conversation=conversation,
            role="user" if i % 2 == 0 else "assistant",
            content=text,
            model="" if i % 2 == 0 else "ollama-qwen2.5",
        )
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
        ("user", "Q1"),
        ("assistant", "A1"),
        ("user", "Q2"),
        ("assistant", "A2"),
    ]
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
        detail_url(conversation.pk), {"title": "Berlin sites", "archived": False, "model_id": "auto"}, format="json"
    )
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


def test_openapi_schema_renders_with_the_chat_endpoints(api_schema):
    paths = api_schema["paths"]
    assert "/api/plugins/chatbox/chat/" in paths
    assert "/api/plugins/chatbox/conversations/{id}/" in paths
    assert "post" in paths["/api/plugins/chatbox/conversations/{id}/archive/"]
    params = {p["name"] for p in paths["/api/plugins/chatbox/conversations/"]["get"]["parameters"]}
    assert {"owner_id", "owner", "archived", "model_id"} <= params
    assert paths["/api/plugins/chatbox/chat/"]["post"]["operationId"] == "plugins_chatbox_chat_create"


# --- filtering by owner ----------------------------------------------------------------------------


def test_owner_filter_for_a_chat_user_only_ever_finds_their_own(api, chat_user, other_user):
    mine = stored_conversation(chat_user, "mine")
    stored_conversation(other_user, "carol's")
    nobody = get_user_model().objects.create_user("dave", password="dave-pass-123")  # no conversations
    client = api(chat_user, token=True)
    for query in ({"owner_id": chat_user.pk}, {"owner": "alice"}):
        assert [c["id"] for c in client.get(LIST_URL, query).json()["results"]] == [mine.pk]
    # Another user's conversations, a user without any and a user that does not exist: the same empty list.
    answers = [
        client.get(LIST_URL, query)
        for query in (
            {"owner_id": other_user.pk},
            {"owner_id": nobody.pk},
            {"owner_id": 999999},
            {"owner": "carol"},
            {"owner": "dave"},
            {"owner": "nobody-at-all"},
        )
    ]
    assert {(r.status_code, r.content) for r in answers} == {
        (200, b'{"count":0,"next":null,"previous":null,"results":[]}')
    }


def test_owner_filter_for_auditor_and_superuser(api, superuser, chat_user, other_user):
    auditor = get_user_model().objects.create_user("auditor", password="auditor-pass-123")
    grant(auditor, Conversation, ["view"])
    alices = stored_conversation(chat_user, "alice's")
    carols = stored_conversation(other_user, "carol's")
    archived = stored_conversation(other_user, "carol's old", archived=True)
    for client in (api(auditor, token=True), api(superuser)):

        def ids(query, client=client):
            response = client.get(LIST_URL, query)
            assert response.status_code == 200
            return sorted(c["id"] for c in response.json()["results"])

        assert ids({"owner_id": other_user.pk}) == sorted([carols.pk, archived.pk])
        assert ids({"owner": "alice"}) == [alices.pk]
        assert ids({"owner_id": [chat_user.pk, other_user.pk]}) == sorted([alices.pk, carols.pk, archived.pk])
        assert ids({"owner_id__n": other_user.pk}) == [alices.pk]  # NetBox's lookups come with the filterset
        assert ids({"owner_id": other_user.pk, "archived": "false"}) == [carols.pk]
        assert ids({"owner": "carol", "model_id": "auto"}) == []
        assert ids({"owner_id": auditor.pk}) == []  # their own: none


def test_bad_filter_values_are_a_clear_400(api, chat_user):
    stored_conversation(chat_user)
    client = api(chat_user, token=True)
    response = client.get(LIST_URL, {"owner_id": "alice"})
    assert response.status_code == 400 and response.json() == {"owner_id": ["Enter a whole number."]}
    response = client.get(LIST_URL, {"id": "1.5"})
    assert response.status_code == 400 and "id" in response.json()
    # No user can have an id beyond bigint: an empty list, not a database error.
    assert client.get(LIST_URL, {"owner_id": 10**30}).json()["count"] == 0
    # model_id and archived keep working as before.
    assert client.get(LIST_URL, {"model_id": "ollama-qwen2.5"}).json()["count"] == 1
    assert client.get(LIST_URL, {"model_id": "auto"}).json()["count"] == 0
    assert client.get(LIST_URL, {"archived": "true"}).json()["count"] == 0


# --- archiving over HTTP ---------------------------------------------------------------------------


def archive_url(pk):
    return f"{detail_url(pk)}archive/"


def test_owner_archives_a_conversation_and_a_second_archive_changes_nothing(api, chat_user):
    conversation = stored_conversation(chat_user, messages=("Q1", "A1", "Q2"))
    client = api(chat_user, token=True)
    response = client.post(archive_url(conversation.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == conversation.pk and body["archived"] is True and body["message_count"] == 3
    conversation.refresh_from_db()
    assert conversation.archived
    archived_at = conversation.last_updated
    assert body["last_updated"] == client.get(detail_url(conversation.pk)).json()["last_updated"]

    again = client.post(archive_url(conversation.pk))
    assert again.status_code == 200 and again.json() == body  # idempotent: same answer, nothing changed
    conversation.refresh_from_db()
    assert conversation.last_updated == archived_at
    assert [c["id"] for c in client.get(LIST_URL, {"archived": "true"}).json()["results"]] == [conversation.pk]


def test_archive_with_session_needs_csrf(chat_user):
    from django.test import Client

    conversation = stored_conversation(chat_user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(chat_user)
    assert client.post(archive_url(conversation.pk)).status_code == 403
    client.get("/plugins/chatbox/")  # the chat page sets the CSRF cookie, as in a browser
    response = client.post(archive_url(conversation.pk), HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code == 200 and response.json()["archived"] is True


def test_another_users_conversation_cannot_be_archived_and_looks_missing(api, chat_user, other_user):
    theirs = stored_conversation(other_user)
    client = api(chat_user, token=True)
    hidden = client.post(archive_url(theirs.pk))
    missing = client.post(archive_url(theirs.pk + 1000))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert client.post(archive_url(10**30)).status_code == 404
    # An auditor who may only view others' conversations cannot archive them either.
    auditor = get_user_model().objects.create_user("auditor", password="auditor-pass-123")
    grant(auditor, Conversation, ["view"])
    assert api(auditor, token=True).post(archive_url(theirs.pk)).status_code == 404
    theirs.refresh_from_db()
    assert not theirs.archived
    # POST on the list is no way to create conversations.
    assert client.post(LIST_URL, {"title": "x"}, format="json").status_code == 405


def test_change_permission_allows_archiving_others_conversations(api, chat_user, other_user):
    moderator = get_user_model().objects.create_user("moderator", password="moderator-pass-123")
    grant(moderator, Conversation, ["view", "change"])
    theirs = stored_conversation(other_user)
    response = api(moderator, token=True).post(archive_url(theirs.pk))
    assert response.status_code == 200 and response.json()["owner"]["username"] == "carol"
    theirs.refresh_from_db()
    assert theirs.archived


def test_read_only_token_cannot_archive(api, chat_user):
    conversation = stored_conversation(chat_user)
    response = api(chat_user, token=True, write_enabled=False).post(archive_url(conversation.pk))
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    conversation.refresh_from_db()
    assert not conversation.archived


@pytest.mark.django_db(transaction=True)
def test_archive_waits_for_a_running_answer_and_then_the_conversation_is_read_only(api, chat_user, use_fake_ollama):
    from netbox_chatbox.preferences import PREFERENCE_PATH

    from .test_transport_http import CHAT_URL, SSE, parse_sse

    chat_user.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    client = api(chat_user, token=True)
    use_fake_ollama.reply("First.")
    conversation = client.post(CHAT_URL, {"message": "Hi"}, format="json").json()["conversation"]

    use_fake_ollama.reply(*[f"w{i} " for i in range(20)], chunk_delay=0.1)
    streaming = client.post(CHAT_URL, {"message": "Talk a while", "conversation": conversation}, format="json", **SSE)
    chunks = iter(streaming.streaming_content)
    assert parse_sse(next(chunks).decode())[0]["type"] == "delta"
    refused = client.post(archive_url(conversation))
    assert refused.status_code == 409 and "still answering" in refused.json()["detail"]
    assert not Conversation.objects.get(pk=conversation).archived
    assert parse_sse(b"".join(chunks).decode())[-1]["type"] == "complete"

    archived = client.post(archive_url(conversation))
    assert archived.status_code == 200 and archived.json()["message_count"] == 4
    # Archived: read-only, as after a model switch on the socket.
    response = client.post(CHAT_URL, {"message": "More?", "conversation": conversation}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "archived"
    assert Message.objects.filter(conversation_id=conversation).count() == 4
