"""Grounding in the browser: an ungrounded name is marked quietly with its tooltip, the answer lists its
sources as links, and both are still there when the conversation is reopened after a reload."""

import pytest
from playwright.sync_api import expect

from .conftest import CHAT_PATH, send, wait_answered

pytestmark = [pytest.mark.usefixtures("e2e_data"), pytest.mark.xdist_group("browser")]


@pytest.fixture
def server(asgi_server):
    return asgi_server


def test_ungrounded_names_are_marked_and_sources_linked(server, browsing, fake_ollama, alice_on_qwen, e2e_data):
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    expect(page.locator("#chatbox-empty")).to_contain_text(
        "What is connected to the interfaces of"
    )  # a computed tool's question
    fake_ollama.tool_call("query_objects", {"object_type": "dcim.device", "filters": {"site": "e2e-dc1"}})
    fake_ollama.reply("The devices are e2e-core-1 and ", "ghost-rtr9.")
    send(page, "Which devices are at e2e-dc1?")
    wait_answered(page)

    def check(answer):
        marks = answer.locator("mark.chatbox-ungrounded")
        expect(marks).to_have_count(1)
        expect(marks).to_have_text("ghost-rtr9")
        expect(marks).to_have_attribute("title", "not found in the data the assistant read")
        expect(answer.locator(".chatbox-answer")).to_have_text("The devices are e2e-core-1 and ghost-rtr9.")
        sources = answer.locator("details.chatbox-sources")
        expect(sources.locator("summary")).to_contain_text("Sources (1)")
        sources.locator("summary").click()
        expect(sources.locator("li")).to_contain_text("query_objects")
        link = sources.locator("a", has_text="e2e-core-1")
        expect(link).to_have_attribute("href", f"{server}{e2e_data['devices'][0].get_absolute_url()}")

    check(page.locator("#chatbox-messages .chatbox-msg-assistant").last)
    b.screenshot("20-grounding-marks-and-sources")
    page.reload()
    b.wait_connected()
    page.locator(".chatbox-history-item .chatbox-history-open").first.click()
    check(page.locator("#chatbox-messages .chatbox-msg-assistant").last)
