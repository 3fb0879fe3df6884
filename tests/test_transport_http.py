"""Issue 5: POST /api/plugins/chatbox/chat/ — the same events as Server-Sent Events, or one JSON answer.

Under WSGI (Django's test client, as gunicorn would run it) and under ASGI (Django's async client).
Authentication is NetBox's: a session with CSRF, or a v2 token.
"""

import json

import pytest
from django.test import AsyncClient

from netbox_chatbox.models import Conversation, Message
from netbox_chatbox.preferences import PREFERENCE_PATH

from .conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)

CHAT_URL = "/api/plugins/chatbox/chat/"
SSE = {"HTTP_ACCEPT": "text/event-stream"}


def parse_sse(body: str) -> list[dict]:
    """SSE blocks → event dicts; checks each block's ``event:`` line names the event's type."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        event = json.loads(fields["data"])
        assert fields["event"] == event["type"]
        events.append(event)
    return events


def sse_events(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/event-stream")
    return parse_sse(b"".join(response.streaming_content).decode())


@pytest.fixture
def on_ollama(chat_user, use_fake_ollama):
    chat_user.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    return use_fake_ollama


def stored(conversation_id):
    return list(Message.objects.filter(conversation_id=conversation_id).values_list("role", "content"))


def test_sse_streams_the_socket_events_with_a_token(api, chat_user, on_ollama):
    on_ollama.reply("There are ", "3 sites.")
    response = api(chat_user, token=True).post(CHAT_URL, {"message": "How many sites?"}, format="json", **SSE)
    assert response.status_code == 200 and response.streaming
    assert response["Cache-Control"] == "no-cache"
    events = sse_events(response)
    assert [e["type"] for e in events][-1] == "complete"
    assert {e["type"] for e in events[:-1]} == {"delta"}
    assert "".join(e["text"] for e in events[:-1]) == "There are 3 sites."
    complete = events[-1]
    assert complete["interrupted"] is False and complete["output_tokens"] == 2
    assert stored(complete["conversation"]) == [("user", "How many sites?"), ("assistant", "There are 3 sites.")]
    assert Message.objects.get(pk=complete["message"]).role == "assistant"


def test_json_mode_returns_the_whole_turn_and_continues_a_conversation(api, chat_user, on_ollama):
    on_ollama.reply("Three.")
    on_ollama.reply("Berlin-1 to Berlin-3.")
    client = api(chat_user, token=True)
    first = client.post(CHAT_URL, {"message": "How many sites in Berlin?"}, format="json")
    assert first.status_code == 200
    body = first.json()
    assert body["answer"] == "Three." and body["model"] == "ollama-qwen2.5"
    assert body["events"][-1]["type"] == "complete" and body["events"][-1]["conversation"] == body["conversation"]
    second = client.post(CHAT_URL, {"message": "Name them.", "conversation": body["conversation"]}, format="json")
    assert second.status_code == 200 and second.json()["conversation"] == body["conversation"]
    sent = [(m["role"], m["content"]) for m in on_ollama.chat_requests()[-1]["messages"] if m["role"] != "system"]
    assert sent == [("user", "How many sites in Berlin?"), ("assistant", "Three."), ("user", "Name them.")]
    assert len(stored(body["conversation"])) == 4


def test_model_parameter_picks_the_model_for_a_new_conversation(api, chat_user, on_ollama, use_fake_anthropic):
    chat_user.config.set(PREFERENCE_PATH, "auto", commit=True)
    on_ollama.reply("From Qwen.")
    response = api(chat_user, token=True).post(CHAT_URL, {"message": "hi", "model": "ollama-qwen2.5"}, format="json")
    assert response.status_code == 200 and response.json()["answer"] == "From Qwen."
    conversation = Conversation.objects.get(pk=response.json()["conversation"])
    assert (conversation.model_id, conversation.path) == ("ollama-qwen2.5", "litellm")
    chat_user.config.refresh_from_db()
    assert chat_user.config.get(PREFERENCE_PATH) == "auto", "a per-request model is not a preference change"


def test_session_auth_needs_csrf(api, chat_user, on_ollama):
    response = api(chat_user).post(CHAT_URL, {"message": "hi"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Conversation.objects.exists()


def test_session_auth_with_csrf_token_chats(chat_user, on_ollama):
    from django.test import Client

    on_ollama.reply("Hello.")
    client = Client(enforce_csrf_checks=True)
    client.force_login(chat_user)
    client.get("/plugins/chatbox/")  # the chat page sets the CSRF cookie, as in a browser
    token = client.cookies["csrftoken"].value
    response = client.post(CHAT_URL, {"message": "hi"}, content_type="application/json", HTTP_X_CSRFTOKEN=token, **SSE)
    assert response.status_code == 200
    assert sse_events(response)[-1]["type"] == "complete"


def test_refusals_have_clear_codes_in_json_and_in_sse(api, chat_user, on_ollama, chatbox_config):
    chatbox_config(max_message_chars=20)
    client = api(chat_user, token=True)
    too_long = client.post(CHAT_URL, {"message": "x" * 21}, format="json")
    assert too_long.status_code == 400
    assert too_long.json() == {
        "type": "error",
        "code": "message_too_long",
        "message": "Your message has 21 characters; the limit is 20.",
    }
    unknown = client.post(CHAT_URL, {"message": "hi", "model": "gpt-9"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_model"
    missing = client.post(CHAT_URL, {}, format="json")
    assert missing.status_code == 400 and "message" in missing.json()
    # The same refusals as an SSE client reads them: one error event.
    sse_refusal = client.post(CHAT_URL, {"message": "x" * 21}, format="json", **SSE)
    assert sse_refusal.status_code == 400
    assert parse_sse(sse_refusal.content.decode()) == [too_long.json()]
    sse_missing = client.post(CHAT_URL, {}, format="json", **SSE)
    assert parse_sse(sse_missing.content.decode())[0]["code"] == "bad_request"
    assert not Conversation.objects.exists()


def test_other_users_or_archived_conversation_cannot_be_continued(api, chat_user, superuser, on_ollama):
    theirs = Conversation.objects.create(owner=superuser, title="admin's", model_id="ollama-qwen2.5", path="litellm")
    archived = Conversation.objects.create(
        owner=chat_user, title="old", model_id="ollama-qwen2.5", path="litellm", archived=True
    )
    client = api(chat_user, token=True)
    response = client.post(CHAT_URL, {"message": "hi", "conversation": theirs.pk}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    response = client.post(CHAT_URL, {"message": "hi", "conversation": archived.pk}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "archived"
    response = client.post(CHAT_URL, {"message": "hi", "conversation": 10**30}, format="json")
    assert response.status_code == 404
    assert not Message.objects.exists()


def test_rate_limit_answers_429(api, chat_user, on_ollama, chatbox_config):
    chatbox_config(rate_limit_per_minute=1)
    client = api(chat_user, token=True)
    assert client.post(CHAT_URL, {"message": "one"}, format="json").status_code == 200
    response = client.post(CHAT_URL, {"message": "two"}, format="json")
    assert response.status_code == 429 and response.json()["code"] == "rate_limited"


def test_unpermitted_and_read_only_clients_are_refused(api, chat_user, plain_user, on_ollama):
    assert api(plain_user, token=True).post(CHAT_URL, {"message": "hi"}, format="json").status_code == 403
    response = api(chat_user, token=True, write_enabled=False).post(CHAT_URL, {"message": "hi"}, format="json")
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    assert api().post(CHAT_URL, {"message": "hi"}, format="json", **SSE).status_code == 403
    assert not Conversation.objects.exists()


def test_provider_failure_in_json_mode_is_a_5xx_with_the_error_event(api, chat_user, on_ollama):
    from netbox_chatbox.sessions import HTTP_STATUS

    for _ in range(3):
        on_ollama.error(500, "model runner has unexpectedly stopped")
    response = api(chat_user, token=True).post(CHAT_URL, {"message": "hi"}, format="json")
    error = response.json()["events"][-1]
    assert error["type"] == "error" and error["message"]
    assert response.status_code == HTTP_STATUS.get(error["code"], 502) and response.status_code >= 500
    assert stored(response.json()["conversation"]) == [("user", "hi"), ("error", error["message"])]


def test_client_leaving_mid_stream_keeps_the_partial_answer(api, chat_user, on_ollama):
    on_ollama.reply(*[f"w{i} " for i in range(100)], chunk_delay=0.1)
    response = api(chat_user, token=True).post(CHAT_URL, {"message": "Talk for a while"}, format="json", **SSE)
    chunks = iter(response.streaming_content)
    first = parse_sse(next(chunks).decode())
    assert first[0]["type"] == "delta"
    response.close()  # what the WSGI server does when the client disconnects
    answer = Message.objects.get(role="assistant")
    assert answer.interrupted is True and answer.content.startswith("w0 ") and len(answer.content.split()) < 100


async def test_sse_under_asgi_streams_the_same_events(chat_user, on_ollama):
    from asgiref.sync import sync_to_async

    on_ollama.reply("Over ", "ASGI.")
    token = await sync_to_async(token_for)(chat_user)
    client = AsyncClient()
    response = await client.post(
        CHAT_URL,
        {"message": "hi"},
        content_type="application/json",
        headers={"Authorization": token, "Accept": "text/event-stream"},
    )
    assert response.status_code == 200 and response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    events = parse_sse(body)
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Over ASGI."
    assert events[-1]["type"] == "complete" and events[-1]["conversation"]


def test_claude_turn_streams_cleanly_under_wsgi(api, chat_user, use_fake_anthropic, caplog):
    """Path A under gunicorn-style WSGI: the SDK's task-bound scopes must not break, no CLI is left running."""
    from .test_sessions import cli_processes

    before = cli_processes()
    use_fake_anthropic.reply("Claude ", "over ", "SSE.")
    with caplog.at_level("ERROR"):
        response = api(chat_user, token=True).post(
            CHAT_URL, {"message": "hi", "model": "claude-haiku-4-5"}, format="json", **SSE
        )
        events = sse_events(response)
    assert events[-1]["type"] == "complete" and events[-1]["interrupted"] is False
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Claude over SSE."
    assert [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    assert cli_processes() <= before


def test_the_answers_duration_is_the_whole_wait_agent_start_included(api, chat_user, on_ollama, monkeypatch, caplog):
    """The footer's time counts from the question's arrival: a first answer waits for its agent to start
    (the Claude CLI, litellm's import), and that wait is the user's too."""
    import asyncio

    from netbox_chatbox import agents

    real = agents.create_agent

    async def slow_start(*args, **kwargs):
        await asyncio.sleep(0.6)
        return await real(*args, **kwargs)

    monkeypatch.setattr(agents, "create_agent", slow_start)
    caplog.set_level("INFO", logger="netbox_chatbox.telemetry")
    on_ollama.reply("Three sites.")
    response = api(chat_user, token=True).post(CHAT_URL, {"message": "How many sites?"}, format="json", **SSE)
    complete = sse_events(response)[-1]
    (agent_ms,) = [
        r.chatbox["duration_ms"] for r in caplog.records if getattr(r, "chatbox", {}).get("event") == "model_response"
    ]
    assert (
        complete["type"] == "complete" and complete["duration_ms"] >= agent_ms + 600
    )  # the agent's own time, and more
    answer = Message.objects.get(conversation_id=complete["conversation"], role="assistant")
    assert answer.duration_ms == complete["duration_ms"]
