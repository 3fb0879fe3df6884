"""Issue 5: the chat WebSocket under NetBox auth — who may connect, the protocol, bad input.

Runs the plugin's real ASGI application (netbox_chatbox.asgi) through Channels' communicator, with
real NetBox sessions and tokens; turns run on path B against the fake Ollama (tests/fakes).
"""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from netbox_chatbox.models import Conversation, Message
from netbox_chatbox.preferences import PREFERENCE_PATH

from .chat_clients import only_answer, open_socket
from .conftest import grant, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def _stored(conversation_id):
    return list(Message.objects.filter(conversation_id=conversation_id).values_list("role", "content"))


stored_messages = sync_to_async(_stored)


def sent_to_model(fake_ollama):
    """The conversation the model got in its latest request, as (role, content), without the system prompt."""
    return [(m["role"], m["content"]) for m in fake_ollama.chat_requests()[-1]["messages"] if m["role"] != "system"]


# --- who may connect -------------------------------------------------------------------------


async def test_anonymous_socket_is_refused():
    socket, code = await open_socket()
    assert socket is None  # denied at the handshake (HTTP 403 on a server: see test_transport_server)


async def test_user_without_chat_permission_is_refused(plain_user):
    socket, _ = await open_socket(plain_user)
    assert socket is None


async def test_inactive_user_is_refused(chat_user):
    cookie_user = chat_user
    await sync_to_async(get_user_model().objects.filter(pk=chat_user.pk).update)(is_active=False)
    socket, _ = await open_socket(cookie_user)
    assert socket is None


async def test_logged_in_user_gets_a_session_on_their_model(chat_user):
    await sync_to_async(chat_user.config.set)(PREFERENCE_PATH, "claude-haiku-4-5", commit=True)
    socket, _ = await open_socket(chat_user)
    event = await socket.event()
    assert event == {
        "type": "session",
        "conversation": None,
        "selection_enabled": True,
        "model": {"id": "claude-haiku-4-5", "name": "Claude Haiku 4.5", "path": "sdk", "provider": "anthropic"},
    }
    await socket.close()


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://testserver.evil.example"])
async def test_cookie_from_another_sites_page_is_refused(chat_user, origin):
    socket, _ = await open_socket(chat_user, origin=origin)
    assert socket is None


async def test_behind_a_proxy_the_forwarded_host_is_the_origin_to_match(chat_user):
    """NetBox's contrib/nginx.conf passes the browser's host as X-Forwarded-Host, not as Host."""
    proxied = [(b"x-forwarded-host", b"netbox.example.com")]
    socket, _ = await open_socket(chat_user, origin="https://netbox.example.com", headers=proxied)
    assert socket is not None
    await socket.close()
    refused, _ = await open_socket(chat_user, origin="https://evil.example", headers=proxied)
    assert refused is None


async def test_script_without_origin_header_is_accepted(chat_user):
    socket, _ = await open_socket(chat_user, origin=None)
    assert (await socket.event())["type"] == "session"
    await socket.close()


async def test_api_token_in_authorization_header(chat_user):
    token = await sync_to_async(token_for)(chat_user)
    socket, _ = await open_socket(token=token, origin=None)
    assert (await socket.event())["type"] == "session"
    await socket.close()


async def test_bad_or_read_only_token_is_refused(chat_user):
    read_only = await sync_to_async(token_for)(chat_user, write_enabled=False)
    assert (await open_socket(token=read_only, origin=None))[0] is None
    assert (await open_socket(token="Bearer nbt_nokey.notatoken", origin=None))[0] is None
    assert (await open_socket(token="Bearer garbage", origin=None))[0] is None


# --- bad input: a clear error event, the socket stays open -----------------------------------


async def test_malformed_and_unknown_requests_get_errors_and_the_socket_stays_open(chat_user):
    socket, _ = await open_socket(chat_user)
    await socket.event()
    for payload, text in [
        ("{not json", "Send JSON objects"),
        ('["chat", "hi"]', "Send JSON objects"),
        ({"type": "dance"}, "Unknown message type 'dance'"),
        ({"message": "no type"}, "Unknown message type None"),
        ({"type": "chat"}, "'message' must be a non-empty string"),
        ({"type": "chat", "message": "   "}, "'message' must be a non-empty string"),
        ({"type": "model_change"}, "'model' must be a model id"),
        ({"type": "resume", "conversation": "7"}, "must be a conversation id"),
        ({"type": "chat", "message": "nul\u0000byte"}, "must not contain NUL characters"),
    ]:
        await socket.send(payload)
        event = await socket.event()
        assert event["type"] == "error" and event["code"] == "bad_request", (payload, event)
        assert text in event["message"], (payload, event)
    await socket.send_bytes(b"\x00\x01")
    assert (await socket.event())["code"] == "bad_request"
    # Still the same open session.
    await socket.send({"type": "reset"})
    assert (await socket.event())["type"] == "session"
    await socket.close()


async def test_message_over_the_size_cap_is_refused_and_nothing_stored(chat_user, chatbox_config):
    chatbox_config(max_message_chars=50)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    await socket.send({"type": "chat", "message": "x" * 51})
    event = await socket.event()
    assert event["code"] == "message_too_long" and "51 characters; the limit is 50" in event["message"]
    await socket.close()
    assert not await sync_to_async(Conversation.objects.exists)()


async def test_unknown_model_is_refused_and_the_preference_is_unchanged(chat_user):
    socket, _ = await open_socket(chat_user)
    before = (await socket.event())["model"]["id"]
    await socket.send({"type": "model_change", "model": "gpt-9"})
    event = await socket.event()
    assert event["code"] == "unknown_model" and "Unknown model 'gpt-9'" in event["message"]
    await socket.send({"type": "reset"})
    assert (await socket.event())["model"]["id"] == before
    await sync_to_async(chat_user.refresh_from_db)()
    assert await sync_to_async(lambda: chat_user.config.get(PREFERENCE_PATH))() is None
    await socket.close()


async def test_resuming_someone_elses_conversation_is_not_found(chat_user):
    def other_conversation():
        carol = get_user_model().objects.create_user("carol", password="carol-pass-123")
        grant(carol, Conversation, ["chat"])
        return Conversation.objects.create(owner=carol, title="private", model_id="auto", path="sdk").pk

    theirs = await sync_to_async(other_conversation)()
    socket, _ = await open_socket(chat_user)
    await socket.event()
    await socket.send({"type": "resume", "conversation": theirs})
    event = await socket.event()
    assert event["code"] == "not_found" and event["message"] == f"Conversation {theirs} does not exist."
    await socket.send({"type": "resume", "conversation": theirs + 1000})
    assert (await socket.event())["message"] == f"Conversation {theirs + 1000} does not exist."
    await socket.send({"type": "resume", "conversation": 10**30})  # beyond bigint: still just "not found"
    assert (await socket.event())["code"] == "not_found"
    await socket.close()


# --- chatting on path B (LiteLLM → fake Ollama) ----------------------------------------------


@pytest.fixture
def on_ollama(chat_user, use_fake_ollama):
    """alice chats with the local model; the fake Ollama answers."""
    chat_user.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    return use_fake_ollama


def _conversation(pk):
    return Conversation.objects.get(pk=pk)


async def test_chat_streams_deltas_then_complete_and_stores_the_turn(chat_user, on_ollama):
    on_ollama.reply("There are ", "3 sites", " in Berlin.")
    socket, _ = await open_socket(chat_user)
    assert (await socket.event())["model"]["id"] == "ollama-qwen2.5"
    events = await socket.chat("How many sites are in Berlin?")
    types = [e["type"] for e in events]
    assert types[-1] == "complete" and set(types[:-1]) == {"delta"}
    assert "".join(e["text"] for e in events[:-1]) == "There are 3 sites in Berlin."
    complete = events[-1]
    assert complete["interrupted"] is False and complete["input_tokens"] == 20 and complete["output_tokens"] == 3
    # What the model was asked, and what is stored (and readable after a reload).
    assert sent_to_model(on_ollama) == [("user", "How many sites are in Berlin?")]
    assert await stored_messages(complete["conversation"]) == [
        ("user", "How many sites are in Berlin?"),
        ("assistant", "There are 3 sites in Berlin."),
    ]
    conversation = await sync_to_async(_conversation)(complete["conversation"])
    assert (conversation.owner_id, conversation.model_id, conversation.path) == (
        chat_user.pk,
        "ollama-qwen2.5",
        "litellm",
    )
    assert conversation.title == "How many sites are in Berlin?"
    assert (conversation.input_tokens, conversation.output_tokens) == (20, 3)
    answer = await sync_to_async(Message.objects.get)(pk=complete["message"])
    assert answer.role == "assistant" and answer.output_tokens == 3 and answer.duration_ms is not None
    await socket.close()


async def test_second_turn_continues_the_same_conversation_with_context(chat_user, on_ollama):
    on_ollama.reply("Three.")
    on_ollama.reply("Berlin-1, Berlin-2 and Berlin-3.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    first = (await socket.chat("How many sites in Berlin?"))[-1]
    second = (await socket.chat("Name them."))[-1]
    assert first["conversation"] == second["conversation"]
    sent = sent_to_model(on_ollama)
    assert sent == [("user", "How many sites in Berlin?"), ("assistant", "Three."), ("user", "Name them.")]
    await socket.close()


async def test_interrupt_stops_the_answer_keeps_it_and_the_socket_stays_usable(chat_user, on_ollama):
    on_ollama.reply(*[f"word{i} " for i in range(50)], chunk_delay=0.1)
    on_ollama.reply("Still here.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    await socket.send({"type": "chat", "message": "Tell me a long story"})
    first = await socket.until("delta")
    await socket.send({"type": "interrupt"})
    events = first + await socket.until("complete", "error", timeout=10)
    complete = events[-1]
    assert complete["type"] == "complete" and complete["interrupted"] is True
    partial = "".join(e["text"] for e in events if e["type"] == "delta")
    assert partial.startswith("word0 ") and len(partial.split()) < 50
    stored = await sync_to_async(Message.objects.get)(pk=complete["message"])
    assert stored.interrupted is True and stored.content == partial
    # A new question on the same socket gets an answer.
    assert "".join(e.get("text", "") for e in await socket.chat("Are you there?")) == "Still here."
    await socket.close()


async def test_second_chat_while_answering_is_refused_without_harm(chat_user, on_ollama):
    on_ollama.reply("slow ", "answer", chunk_delay=0.5)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    await socket.send({"type": "chat", "message": "first"})
    await socket.send({"type": "chat", "message": "second"})
    events = await socket.until("complete", timeout=20)
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["in_progress"]
    assert await stored_messages(events[-1]["conversation"]) == [("user", "first"), ("assistant", "slow answer")]
    await socket.close()


async def test_disconnect_mid_answer_stores_the_partial_answer(chat_user, on_ollama):
    on_ollama.reply(*[f"w{i} " for i in range(100)], chunk_delay=0.1)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    await socket.send({"type": "chat", "message": "Talk for a while"})
    await socket.until("delta")
    await socket.close()  # returns once the server side has finished with the connection

    answer = await only_answer(chat_user)
    assert answer.interrupted is True and answer.content.startswith("w0 ") and len(answer.content.split()) < 100


async def test_rate_limit_per_user_holds_across_connections(chat_user, on_ollama, chatbox_config):
    chatbox_config(rate_limit_per_minute=2)
    first, _ = await open_socket(chat_user)
    second, _ = await open_socket(chat_user)
    await first.event()
    await second.event()
    assert (await first.chat("one"))[-1]["type"] == "complete"
    assert (await second.chat("two"))[-1]["type"] == "complete"
    refused = await second.chat("three")
    assert [e["type"] for e in refused] == ["error"]
    assert refused[0]["code"] == "rate_limited" and "2 messages per minute" in refused[0]["message"]
    assert await sync_to_async(Message.objects.filter(content="three").exists)() is False
    await first.close()
    await second.close()


# --- sessions: reset, model switch, reconnect, resume ------------------------------------------

TWIN = {
    "ollama-twin": {"name": "Qwen twin", "provider": "ollama", "litellm_model": "ollama_chat/qwen2.5:14b-instruct-8k"}
}


async def test_model_change_archives_resets_context_and_is_the_users_preference(
    chat_user, on_ollama, chatbox_config, api
):
    chatbox_config(models=TWIN)
    on_ollama.reply("Three.")
    on_ollama.reply("Hello from the twin.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    old = (await socket.chat("How many sites in Berlin?"))[-1]["conversation"]
    await socket.send({"type": "model_change", "model": "ollama-twin"})
    changed = await socket.event()
    assert changed == {
        "type": "model_changed",
        "old_model": "ollama-qwen2.5",
        "new_model": "ollama-twin",
        "archived_message_count": 2,
        "context_reset": True,
        "conversation": None,
    }
    session = await socket.event()
    assert session["type"] == "session" and session["conversation"] is None
    assert session["model"]["id"] == "ollama-twin"
    # The old conversation is archived, not lost.
    old_conversation = await sync_to_async(_conversation)(old)
    assert old_conversation.archived is True
    assert await stored_messages(old) == [("user", "How many sites in Berlin?"), ("assistant", "Three.")]
    # Context reset: the next request to the provider carries nothing of the old conversation.
    new = (await socket.chat("Hi"))[-1]
    sent = sent_to_model(on_ollama)
    assert sent == [("user", "Hi")]
    assert new["conversation"] != old
    # Same UserConfig value the preference API reads.
    response = await sync_to_async(lambda: api(chat_user).get("/api/plugins/chatbox/preference/"))()
    assert response.json() == {"model": "ollama-twin"}
    await socket.close()
    # Reconnecting keeps the model.
    again, _ = await open_socket(chat_user)
    assert (await again.event())["model"]["id"] == "ollama-twin"
    await again.close()


async def test_preference_set_by_the_api_is_the_model_of_the_next_socket(chat_user, on_ollama, api):
    response = await sync_to_async(
        lambda: api(chat_user, token=True).put(
            "/api/plugins/chatbox/preference/", {"model": "claude-opus-4"}, format="json"
        )
    )()
    assert response.status_code == 200
    socket, _ = await open_socket(chat_user)
    assert (await socket.event())["model"]["id"] == "claude-opus-4"
    await socket.close()


async def test_reset_archives_and_starts_a_new_conversation_on_the_same_model(chat_user, on_ollama):
    on_ollama.reply("One.")
    on_ollama.reply("Two.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    old = (await socket.chat("first question"))[-1]["conversation"]
    await socket.send({"type": "reset"})
    session = await socket.event()
    assert session["conversation"] is None and session["model"]["id"] == "ollama-qwen2.5"
    new = (await socket.chat("second question"))[-1]["conversation"]
    assert new != old and (await sync_to_async(_conversation)(old)).archived is True
    assert sent_to_model(on_ollama) == [("user", "second question")]
    await socket.close()


async def test_resume_continues_a_stored_conversation_with_its_history(chat_user, on_ollama):
    on_ollama.reply("Three.")
    on_ollama.reply("Berlin-1 to Berlin-3.")
    first, _ = await open_socket(chat_user)
    await first.event()
    conversation = (await first.chat("How many sites in Berlin?"))[-1]["conversation"]
    await first.close()
    # A reload: a new socket, a new session, then resume.
    second, _ = await open_socket(chat_user)
    assert (await second.event())["conversation"] is None
    await second.send({"type": "resume", "conversation": conversation})
    assert (await second.event())["conversation"] == conversation
    complete = (await second.chat("Name them."))[-1]
    assert complete["conversation"] == conversation
    sent = sent_to_model(on_ollama)
    assert sent == [("user", "How many sites in Berlin?"), ("assistant", "Three."), ("user", "Name them.")]
    assert len(await stored_messages(conversation)) == 4
    await second.close()


async def test_archived_conversation_cannot_be_resumed(chat_user, on_ollama):
    on_ollama.reply("One.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    old = (await socket.chat("question"))[-1]["conversation"]
    await socket.send({"type": "reset"})
    await socket.event()
    await socket.send({"type": "resume", "conversation": old})
    event = await socket.event()
    assert event["code"] == "archived" and "read-only" in event["message"]
    await socket.close()


async def test_a_conversation_archived_elsewhere_is_not_continued(chat_user, on_ollama, api):
    """Another tab or a script archives (or deletes) the conversation a socket is in: it stays read-only."""
    on_ollama.reply("One.")
    on_ollama.reply("Two.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    conversation = (await socket.chat("question"))[-1]["conversation"]
    script = await sync_to_async(api)(chat_user, token=True)
    archived = await sync_to_async(script.post)(f"/api/plugins/chatbox/conversations/{conversation}/archive/")
    assert archived.status_code == 200 and archived.json()["archived"] is True
    events = await socket.chat("another question")
    assert [(e["type"], e["code"]) for e in events] == [("error", "archived")]
    assert "read-only" in events[0]["message"]
    assert await stored_messages(conversation) == [("user", "question"), ("assistant", "One.")]
    assert len(on_ollama.chat_requests()) == 1  # the model was not asked
    # A new chat on the same socket works.
    await socket.send({"type": "reset"})
    await socket.event()
    complete = (await socket.chat("another question"))[-1]
    assert complete["type"] == "complete" and complete["conversation"] != conversation
    await socket.close()


async def test_provider_failure_is_an_error_event_stored_and_the_socket_stays(chat_user, on_ollama):
    on_ollama.error(500, "model runner has unexpectedly stopped")
    on_ollama.error(500, "model runner has unexpectedly stopped")
    on_ollama.error(500, "model runner has unexpectedly stopped")
    on_ollama.reply("Recovered.")
    socket, _ = await open_socket(chat_user)
    await socket.event()
    events = await socket.chat("hello?")
    assert events[-1]["type"] == "error"
    error = events[-1]
    stored = await sync_to_async(
        lambda: list(Message.objects.filter(conversation__owner=chat_user).values_list("role", "content"))
    )()
    assert stored == [("user", "hello?"), ("error", error["message"])]
    on_ollama.reset()
    on_ollama.reply("Recovered.")
    assert (await socket.chat("again?"))[-1]["type"] == "complete"
    await socket.close()


async def test_model_change_refused_when_the_admin_disabled_selection(chat_user, chatbox_config):
    chatbox_config(enable_model_selection=False)
    socket, _ = await open_socket(chat_user)
    session = await socket.event()
    assert session["selection_enabled"] is False and session["model"]["id"] == "auto"
    await socket.send({"type": "model_change", "model": "claude-opus-4"})
    event = await socket.event()
    assert event["code"] == "selection_disabled"
    await sync_to_async(chat_user.refresh_from_db)()
    assert await sync_to_async(lambda: chat_user.config.get(PREFERENCE_PATH))() is None
    await socket.close()


async def test_stop_pressed_right_after_sending_stops_that_answer(chat_user, on_ollama):
    on_ollama.reply(*[f"w{i} " for i in range(50)], chunk_delay=0.1)
    socket, _ = await open_socket(chat_user)
    await socket.event()
    await socket.send({"type": "chat", "message": "never mind"})
    await socket.send({"type": "interrupt"})
    events = await socket.until("complete", "error", timeout=10)
    assert events[-1]["type"] == "complete" and events[-1]["interrupted"] is True
    assert len("".join(e["text"] for e in events if e["type"] == "delta").split()) < 50
    stored = await sync_to_async(Message.objects.get)(pk=events[-1]["message"])
    assert stored.interrupted is True
    await socket.close()
