"""Issue 11, take-away: GET /api/plugins/chatbox/conversations/<id>/export/?format=md|json."""

import json

import pytest

from .test_conversations import detail_url, other_user, stored_conversation  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def export_url(pk, fmt):
    return f"{detail_url(pk)}export/?format={fmt}"


def test_json_export_is_the_stored_conversation(api, chat_user):
    conversation = stored_conversation(chat_user)
    response = api(chat_user, token=True).get(export_url(conversation.pk, "json"))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == f'attachment; filename="conversation-{conversation.pk}.json"'
    data = json.loads(response.content)
    assert data["id"] == conversation.pk and data["title"] == "Sites in Berlin"
    assert [(m["role"], m["content"], m["model"]) for m in data["messages"]] == [
        (m.role, m.content, m.model) for m in conversation.messages.all()
    ]


def test_markdown_export_reads_as_the_conversation(api, chat_user):
    conversation = stored_conversation(chat_user, messages=("How many sites?", "| Site |\n|---|\n| DC1 |"))
    response = api(chat_user, token=True).get(export_url(conversation.pk, "md"))
    assert response.status_code == 200 and response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="conversation-{conversation.pk}.md"'
    text = response.content.decode()
    assert text.startswith("# Sites in Berlin\n")
    assert f"Conversation {conversation.pk} with Qwen 2.5 14B Instruct (ollama-qwen2.5)" in text
    assert "## You\n\nHow many sites?\n" in text
    assert "## Assistant — Qwen 2.5 14B Instruct (ollama-qwen2.5)\n\n| Site |\n|---|\n| DC1 |\n" in text


def test_export_of_another_users_conversation_is_a_404(api, chat_user, other_user):  # noqa: F811
    conversation = stored_conversation(other_user)
    for fmt in ("md", "json"):
        assert api(chat_user, token=True).get(export_url(conversation.pk, fmt)).status_code == 404


def test_export_is_in_the_api_schema(api_schema):
    operation = api_schema["paths"]["/api/plugins/chatbox/conversations/{id}/export/"]["get"]
    assert {"application/json", "text/markdown"} <= set(operation["responses"]["200"]["content"])
    assert any(p["name"] == "format" for p in operation["parameters"])
