"""Issue 5: the chat WebSocket under NetBox auth — who may connect, the protocol, bad input.

Runs the plugin's real ASGI application (netbox_chatbox.asgi) through Channels' communicator, with
real NetBox sessions and tokens; turns run on path B against the fake Ollama (tests/fakes).
"""
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from netbox_chatbox.models import Conversation, Message
from netbox_chatbox.preferences import PREFERENCE_PATH

from .chat_clients import open_socket
from .conftest import grant, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def _stored(conversation_id):
    return list(Message.objects.filter(conversation_id=conversation_id).values_list("role", "content"))


stored_messages = sync_to_async(_stored)


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
        "type": "session", "conversation": None, "selection_enabled": True,
        "model": {"id": "claude-haiku-4-5", "name": "Claude Haiku 4.5", "path": "sdk", "provider": "anthropic"},
    }
    await socket.close()


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://testserver.evil.example"])
async def test_cookie_from_another_sites_page_is_refused(chat_user, origin):
    socket, _ = await open_socket(chat_user, origin=origin)
    assert socket is None


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


async def test_message_over_the_size_cap_is_refused_and_nothing_stored(chat_user):
    from .chat_clients import chatbox_config

    with chatbox_config(max_message_chars=50):
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
    await socket.close()
