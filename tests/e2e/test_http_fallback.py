"""Issue 6: the chat page on a NetBox that serves no WebSocket (gunicorn, as NetBox ships).

The page cannot open its socket, so it streams answers from POST /api/plugins/chatbox/chat/
(Server-Sent Events read with fetch); Stop aborts that request; a model switch or "New chat" archives
the conversation through POST …/conversations/<id>/archive/.
"""

import time

import pytest
from playwright.sync_api import expect

from netbox_chatbox.models import Conversation, Message
from netbox_chatbox.preferences import PREFERENCE_PATH

from .conftest import CHAT_PATH, alices_chat, send, wait_answered

# One worker runs all browser tests (pytest-xdist): one Chromium, servers started per module.
pytestmark = [pytest.mark.usefixtures("e2e_data"), pytest.mark.xdist_group("browser-own-server")]


@pytest.fixture
def server(wsgi_server):
    return wsgi_server


def answer_text(page):
    return page.locator("#chatbox-messages .chatbox-msg-assistant .chatbox-answer").last


def test_without_a_socket_answers_stream_over_http(server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access):
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected("http")
    page = b.page
    expect(page.locator("#chatbox-connection")).to_contain_text("Live (HTTP streaming)")

    fake_ollama.reply("Streamed ", "over ", "HTTP ", "too.", chunk_delay=0.6)
    send(page, "Hello")
    expect(answer_text(page)).to_contain_text("Streamed")
    expect(page.locator("#chatbox-stop")).to_be_visible()
    assert "too." not in answer_text(page).inner_text()  # token by token, not all at the end
    expect(answer_text(page)).to_have_text("Streamed over HTTP too.")
    wait_answered(page)
    b.screenshot("16-http-fallback")

    # The next message continues the same conversation.
    fake_ollama.reply("Second.")
    send(page, "Again")
    expect(answer_text(page)).to_have_text("Second.")
    wait_answered(page)  # the complete event comes after the answer is stored
    conversation = Conversation.objects.get(owner=e2e_data["alice"])
    assert conversation.messages.count() == 4 and conversation.model_id == "ollama-qwen2.5"
    expect(page.locator(f'.chatbox-history-item[data-id="{conversation.pk}"]')).to_contain_text("Current")


def test_stop_aborts_the_streamed_request(server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access):
    page = alices_chat(browsing, server, "http")
    fake_ollama.reply(*[f"word{i} " for i in range(60)], chunk_delay=0.25)
    send(page, "Tell me a long story")
    expect(answer_text(page)).to_contain_text("word1 ")
    page.click("#chatbox-stop")
    wait_answered(page)
    expect(page.locator(".chatbox-msg-assistant .chatbox-meta").last).to_contain_text("Stopped")
    shown = answer_text(page).inner_text()
    assert "word59" not in shown
    # The server noticed the client went away and kept the partial answer, marked interrupted.
    deadline = time.monotonic() + 20
    while not Message.objects.filter(conversation__owner=e2e_data["alice"], role="assistant").exists():
        assert time.monotonic() < deadline, "the interrupted answer was not stored"
        time.sleep(0.2)
    stored = Message.objects.get(conversation__owner=e2e_data["alice"], role="assistant")
    assert stored.interrupted and "word59" not in stored.content


def switch_to(page, model_id):
    page.click("#chatbox-settings")
    page.locator(f'.chatbox-model-card[data-model-id="{model_id}"]').click()
    page.locator("#chatbox-model-apply").click()


def test_model_switch_without_a_socket_archives_the_old_conversation(
    server, browsing, fake_anthropic, fake_ollama, alice_on_qwen, e2e_data, db_access
):
    page = alices_chat(browsing, server, "http")
    fake_ollama.reply("Qwen answer.")
    send(page, "First")
    expect(answer_text(page)).to_have_text("Qwen answer.")
    wait_answered(page)
    old = Conversation.objects.get(owner=e2e_data["alice"])

    switch_to(page, "claude-haiku-4-5")
    warning = page.locator("#chatbox-switch-modal")
    expect(warning.locator("#chatbox-switch-count")).to_have_text("2 messages will be archived")
    expect(warning).to_contain_text("Your current conversation will be archived")
    warning.get_by_role("button", name="Start New Conversation").click()
    expect(page.locator("#chatbox-model-indicator")).to_have_text("Claude Haiku 4.5")
    expect(page.locator(".chatbox-notice")).to_contain_text("(2 messages) was archived")
    expect(page.locator("#chatbox-messages .chatbox-msg")).to_have_count(0)
    expect(page.locator(f'.chatbox-history-item[data-id="{old.pk}"]')).to_have_attribute("data-archived", "true")
    old.refresh_from_db()
    assert old.archived and old.messages.count() == 2
    e2e_data["alice"].config.refresh_from_db()
    assert e2e_data["alice"].config.get(PREFERENCE_PATH) == "claude-haiku-4-5"

    fake_anthropic.reply("Haiku ", "answer.")
    send(page, "Second")
    expect(answer_text(page)).to_have_text("Haiku answer.")
    wait_answered(page)
    conversations = {c.model_id: c for c in Conversation.objects.filter(owner=e2e_data["alice"])}
    assert sorted(conversations) == ["claude-haiku-4-5", "ollama-qwen2.5"]  # a new conversation on the new model
    assert conversations["ollama-qwen2.5"].archived and not conversations["claude-haiku-4-5"].archived
    assert conversations["ollama-qwen2.5"].messages.count() == 2  # nothing was added to the archived one


def test_switch_while_answering_archives_once_the_partial_answer_is_stored(
    server, browsing, fake_anthropic, fake_ollama, alice_on_qwen, e2e_data, db_access
):
    page = alices_chat(browsing, server, "http")
    fake_ollama.reply("Short.")
    send(page, "First")
    wait_answered(page)
    fake_ollama.reply(*[f"word{i} " for i in range(60)], chunk_delay=0.25)
    send(page, "Tell me a long story")
    expect(answer_text(page)).to_contain_text("word1 ")

    # The page stops the answer, then archives; the server answers 409 until the partial answer is stored.
    switch_to(page, "claude-haiku-4-5")
    page.locator("#chatbox-switch-modal").get_by_role("button", name="Start New Conversation").click()
    expect(page.locator(".chatbox-notice")).to_contain_text("(4 messages) was archived")
    old = Conversation.objects.get(owner=e2e_data["alice"], model_id="ollama-qwen2.5")
    assert old.archived
    stored = list(old.messages.values_list("role", "interrupted"))
    assert stored == [("user", False), ("assistant", False), ("user", False), ("assistant", True)]
    expect(page.locator(".chatbox-error")).to_have_count(0)


def test_new_chat_without_a_socket_archives_the_previous_conversation(
    server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access
):
    page = alices_chat(browsing, server, "http")
    fake_ollama.reply("One.")
    send(page, "First")
    wait_answered(page)
    first = Conversation.objects.get(owner=e2e_data["alice"])

    page.click("#chatbox-new")
    expect(page.locator("#chatbox-messages .chatbox-msg")).to_have_count(0)
    expect(page.locator(f'.chatbox-history-item[data-id="{first.pk}"]')).to_have_attribute("data-archived", "true")
    first.refresh_from_db()
    assert first.archived and first.messages.count() == 2

    fake_ollama.reply("Two.")
    send(page, "Second")
    expect(answer_text(page)).to_have_text("Two.")
    wait_answered(page)
    second = Conversation.objects.exclude(pk=first.pk).get(owner=e2e_data["alice"])
    assert not second.archived and second.messages.count() == 2
    expect(page.locator(f'.chatbox-history-item[data-id="{second.pk}"]')).to_contain_text("Current")

    # A superuser's page asks the API for their own conversations only (owner_id): Alice's are not listed.
    admin = browsing(server)
    history_requests = []
    admin.page.on(
        "request",
        lambda request: "/api/plugins/chatbox/conversations/?" in request.url and history_requests.append(request.url),
    )
    admin.login("e2e-admin", CHAT_PATH)
    admin.wait_connected("http")
    expect(admin.page.locator("#chatbox-history")).to_contain_text("No conversations yet.")
    assert history_requests and all(f"owner_id={e2e_data['admin'].pk}" in url for url in history_requests)
