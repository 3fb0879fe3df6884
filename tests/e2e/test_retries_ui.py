"""Issue 19 in a real browser: an answer whose stream broke mid-way and was retried by the Claude CLI is shown
once, on the Chat page and in the panel. The fake Anthropic drops the connection after two pieces; the CLI
retries; the plugin withdraws what the retry does not say again (a ``retract`` event) and the page draws it.
"""

import json

import pytest
from playwright.sync_api import expect

from netbox_chatbox.models import Message

from .conftest import CHAT_PATH, send, wait_answered

pytestmark = [pytest.mark.usefixtures("e2e_data"), pytest.mark.xdist_group("browser")]

BROKEN = ("PART-A ", "PART-B ", "REST.")


@pytest.fixture
def server(asgi_server):
    return asgi_server


def received_events(page) -> list:
    """The chat events the page receives over its WebSocket (register before the page opens the socket)."""
    events = []

    def on_socket(socket):
        socket.on("framereceived", lambda payload: events.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return events


def stored_answer(user):
    return list(Message.objects.filter(conversation__owner=user).exclude(role="user").values_list("role", "content"))


@pytest.mark.parametrize(
    "retry, shown",
    [
        (("PART-A ", "PART-C ", "REST."), "PART-A PART-C REST."),  # the retry says something else
        (("PART-A",), "PART-A"),  # the retry says less than the broken attempt
    ],
)
def test_a_dropped_and_retried_answer_shows_once_on_the_chat_page(
    server, browsing, fake_anthropic, e2e_data, db_access, retry, shown
):
    fake_anthropic.reply(*BROKEN, drop_after=2, chunk_delay=0.2)
    fake_anthropic.reply(*retry)
    b = browsing(server)
    events = received_events(b.page)
    b.login("e2e-alice", CHAT_PATH)  # on Claude (Automatic), the default
    b.wait_connected()
    page = b.page
    send(page, "Which sites?")
    wait_answered(page)
    answer = page.locator("#chatbox-messages .chatbox-msg-assistant").last.locator(".chatbox-answer")
    expect(answer).to_have_text(shown)
    assert answer.inner_text().count("PART-A") == 1
    assert any(event.get("type") == "retract" for event in events), events  # the page did withdraw text
    assert len(fake_anthropic.conversation_requests()) == 2  # the broken attempt and its retry
    assert stored_answer(e2e_data["alice"]) == [("assistant", shown)]
    # Drawn from what was stored, after a reload: the same text.
    page.reload()
    b.wait_connected()
    expect(page.locator("#chatbox-messages .chatbox-msg-assistant .chatbox-answer").last).to_have_text(shown)


def test_a_dropped_and_retried_answer_shows_once_in_the_panel(server, browsing, fake_anthropic, e2e_data, db_access):
    fake_anthropic.reply(*BROKEN, drop_after=2, chunk_delay=0.2)
    fake_anthropic.reply("PART-A")  # the retry says less: "PART-B " must go
    b = browsing(server)
    events = received_events(b.page)
    b.login("e2e-alice", "/dcim/sites/")
    page = b.page
    page.locator("header .chatbox-panel-toggle").click()
    expect(page.locator("#chatbox-panel-connection")).to_have_attribute("data-status", "live")
    page.fill("#chatbox-panel-input", "Which sites?")
    page.press("#chatbox-panel-input", "Enter")
    answer = page.locator("#chatbox-panel .chatbox-msg-assistant").last
    expect(answer.locator(".chatbox-meta")).to_be_visible()  # the turn ended
    expect(answer.locator(".chatbox-answer")).to_have_text("PART-A")
    assert any(event.get("type") == "retract" for event in events), events
    assert stored_answer(e2e_data["alice"]) == [("assistant", "PART-A")]
