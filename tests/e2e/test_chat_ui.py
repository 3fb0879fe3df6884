"""Issue 6 in a real browser: NetBox + plugin under uvicorn (WebSocket), fake model providers.

Screenshots of the main states go to artifacts/screenshots/ (not committed).
"""

import re

import pytest
from playwright.sync_api import expect

from netbox_chatbox.models import Conversation, Message
from netbox_chatbox.preferences import PREFERENCE_PATH

from .conftest import CHAT_PATH, EVIL_NAME, alices_chat, send, wait_answered

# One worker runs all browser tests (pytest-xdist): one Chromium, servers started per module.
pytestmark = [pytest.mark.usefixtures("e2e_data"), pytest.mark.xdist_group("browser")]

QWEN = "Qwen 2.5 14B Instruct"


@pytest.fixture
def server(asgi_server):
    return asgi_server


def answers(page):
    return page.locator("#chatbox-messages .chatbox-msg-assistant")


# --- the main flow -----------------------------------------------------------------------------


def test_navbar_stream_switch_archive_and_preference(
    server, browsing, fake_anthropic, fake_ollama, e2e_data, db_access
):
    b = browsing(server)
    page = b.page
    b.login("e2e-alice")

    # Open the chat from NetBox's navigation menu.
    page.locator('#sidebar-menu button.dropdown-toggle[aria-label="Chat"]').click()
    page.locator(f'#sidebar-menu a[href="{CHAT_PATH}"]').click()
    page.wait_for_url(f"**{CHAT_PATH}")
    b.wait_connected()
    expect(page.locator("#chatbox-model-indicator")).to_have_text("Claude (Automatic)")
    expect(page.locator("#chatbox-history")).to_contain_text("No conversations yet.")
    b.screenshot("01-chat-empty-light")

    # Send with Enter and watch the answer arrive token by token, rendered as Markdown.
    fake_anthropic.reply(
        "Two devices ",
        "are at **e2e-DC1**:\n\n",
        "| Device | Status |\n|---|---|\n",
        "| e2e-core-1 | active |\n",
        "| e2e-core-2 | active |\n",
        chunk_delay=0.5,
    )
    send(page, "Which devices are at e2e-DC1?")
    answer = answers(page).last.locator(".chatbox-answer")
    expect(answer).to_contain_text("Two devices")
    expect(page.locator("#chatbox-stop")).to_be_visible()  # still streaming…
    assert "e2e-core-2" not in answer.inner_text()  # …so the rest has not arrived yet
    b.screenshot("02-streaming")
    expect(answer.locator("table tbody tr")).to_have_count(2)
    expect(answer.locator("strong")).to_have_text("e2e-DC1")
    wait_answered(page)
    expect(answers(page).last.locator(".chatbox-meta")).to_contain_text("Answered by")
    current = page.locator(".chatbox-history-item").first
    expect(current).to_contain_text("Which devices are at e2e-DC1?")
    expect(current).to_contain_text("Current")

    # The model selector: one card per model, the recommended one first, the current one marked.
    page.click("#chatbox-settings")
    selector = page.locator("#chatbox-model-modal")
    expect(selector).to_be_visible()
    cards = selector.locator(".chatbox-model-card")
    expect(cards).to_have_count(5)
    expect(cards.first).to_contain_text("Claude (Automatic)")
    expect(cards.first).to_contain_text("Recommended")
    expect(cards.first.locator(".chatbox-current")).to_have_text("Current")
    expect(cards.first.locator("input")).to_be_checked()
    qwen = selector.locator('.chatbox-model-card[data-model-id="ollama-qwen2.5"]')
    expect(qwen).to_contain_text("Local Ollama model")
    expect(qwen).to_contain_text("8,192 tokens of context")
    expect(qwen).to_contain_text("Available")
    b.screenshot("03-model-selector")

    # Choosing another model warns first: this conversation will be archived.
    qwen.click()
    selector.get_by_role("button", name="Apply").click()
    warning = page.locator("#chatbox-switch-modal")
    expect(warning).to_be_visible()
    expect(selector).to_be_hidden()
    expect(warning.locator("#chatbox-switch-current")).to_have_text("Claude (Automatic)")
    expect(warning.locator("#chatbox-switch-new")).to_have_text(QWEN)
    expect(warning.locator("#chatbox-switch-count")).to_have_text("2 messages will be archived")
    b.screenshot("04-switch-warning")
    warning.get_by_role("button", name="Start New Conversation").click()

    expect(page.locator("#chatbox-model-indicator")).to_have_text(QWEN)
    expect(page.locator(".chatbox-notice")).to_contain_text("(2 messages) was archived")
    expect(page.locator("#chatbox-messages .chatbox-msg")).to_have_count(0)
    archived = page.locator('.chatbox-history-item[data-archived="true"]')
    expect(archived).to_have_count(1)
    expect(archived).to_contain_text("Archived")
    b.screenshot("05-switched-old-conversation-archived")

    # The new model answers in a new conversation.
    fake_ollama.reply("Hello ", "from ", "Qwen.", chunk_delay=0.2)
    send(page, "Who are you?")
    expect(answers(page).last.locator(".chatbox-answer")).to_have_text("Hello from Qwen.")
    wait_answered(page)

    # The archived conversation opens read-only.
    archived.locator(".chatbox-history-open").click()
    banner = page.locator("#chatbox-readonly")
    expect(banner).to_contain_text("Archived conversation with Claude (Automatic)")
    expect(banner).to_contain_text("read-only")
    expect(page.locator(".chatbox-msg-user")).to_have_text(re.compile("Which devices are at e2e-DC1"))
    expect(answers(page).locator("table tbody tr")).to_have_count(2)
    expect(page.locator("#chatbox-input")).to_be_disabled()
    expect(page.locator("#chatbox-continue")).to_be_hidden()
    b.screenshot("06-archived-read-only")
    page.click("#chatbox-back")
    expect(answers(page).last).to_contain_text("Hello from Qwen.")
    expect(page.locator("#chatbox-input")).to_be_enabled()

    # Stored: the old conversation archived on its model, the new one on Qwen, the preference in UserConfig.
    alice = e2e_data["alice"]
    conversations = {c.model_id: c for c in Conversation.objects.filter(owner=alice)}
    assert conversations["auto"].archived and conversations["auto"].messages.count() == 2
    assert not conversations["ollama-qwen2.5"].archived
    alice.config.refresh_from_db()
    assert alice.config.get(PREFERENCE_PATH) == "ollama-qwen2.5"

    # The choice survives a reload, shows on NetBox's Preferences page, and follows the user elsewhere.
    page.reload()
    b.wait_connected()
    expect(page.locator("#chatbox-model-indicator")).to_have_text(QWEN)
    page.goto("/user/preferences/")
    expect(page.locator('select[name="plugins.netbox_chatbox.model"]')).to_have_value("ollama-qwen2.5")
    other_device = browsing(server, viewport={"width": 1024, "height": 768})
    other_device.login("e2e-alice", CHAT_PATH)
    other_device.wait_connected()
    expect(other_device.page.locator("#chatbox-model-indicator")).to_have_text(QWEN)


def test_cancel_in_the_switch_warning_changes_nothing(
    server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access
):
    page = alices_chat(browsing, server)
    fake_ollama.reply("Sure.")
    send(page, "Hi")
    wait_answered(page)
    page.click("#chatbox-settings")
    page.locator('.chatbox-model-card[data-model-id="claude-opus-4"]').click()
    page.locator("#chatbox-model-apply").click()
    warning = page.locator("#chatbox-switch-modal")
    expect(warning).to_be_visible()
    warning.get_by_role("button", name="Cancel").click()
    expect(warning).to_be_hidden()
    expect(page.locator("#chatbox-model-indicator")).to_have_text(QWEN)
    expect(answers(page)).to_have_count(1)
    assert not Conversation.objects.filter(owner=e2e_data["alice"], archived=True).exists()
    e2e_data["alice"].config.refresh_from_db()
    assert e2e_data["alice"].config.get(PREFERENCE_PATH) == "ollama-qwen2.5"


def test_preference_set_on_netboxs_preferences_page_is_used_by_the_chat(server, browsing):
    b = browsing(server)
    b.login("e2e-alice", "/user/preferences/")
    page = b.page
    page.select_option('select[name="plugins.netbox_chatbox.model"]', "claude-haiku-4-5")
    page.locator("form").filter(has=page.locator('select[name="plugins.netbox_chatbox.model"]')).locator(
        "button[type=submit]"
    ).last.click()
    b.open_chat()
    expect(page.locator("#chatbox-model-indicator")).to_have_text("Claude Haiku 4.5")


# --- what the assistant shows --------------------------------------------------------------------

XSS_ANSWER = (
    'Look: <img src=x onerror="window.xssHit=1"> and <script>window.xssHit=2</script>\n\n'
    "[click me](javascript:window.xssHit=3) [data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) "
    "[docs](https://docs.example.com/x) [devices](/dcim/devices/)\n\n"
    '<a href="javascript:window.xssHit=4">raw link</a> <svg onload="window.xssHit=5"></svg> '
    '<iframe src="javascript:window.xssHit=6"></iframe>\n\n'
    "```html\n<script>window.xssHit=7</script>\n```\n"
)


def assert_inert(page, base_url):
    messages = page.locator("#chatbox-messages")
    answer = answers(page).last
    expect(answer).to_contain_text("click me")
    for tag in ("img", "script", "svg", "iframe", "object", "embed", "style"):
        expect(messages.locator(tag)).to_have_count(0)
    expect(answer).to_contain_text('<img src=x onerror="window.xssHit=1">')  # shown as text
    hrefs = answer.locator("a").evaluate_all("(links) => links.map((a) => a.getAttribute('href'))")
    assert sorted(hrefs) == sorted(["https://docs.example.com/x", f"{base_url}/dcim/devices/"]), hrefs
    external = answer.get_by_role("link", name="docs")
    expect(external).to_have_attribute("target", "_blank")
    expect(external).to_have_attribute("rel", "noopener noreferrer")
    expect(answer.locator("pre code")).to_have_text("<script>window.xssHit=7</script>")
    answer.get_by_text("click me").click()
    answer.get_by_text("raw link").click()
    assert page.evaluate("window.xssHit") is None
    # Nothing else on the page carries event handlers or javascript: URLs from the answer.
    assert (
        page.evaluate("""() => [...document.querySelectorAll('#chatbox-messages *')].filter((el) =>
        [...el.attributes].some((a) => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value))).length""")
        == 0
    )


def test_script_injection_in_an_answer_is_inert(server, browsing, fake_ollama, alice_on_qwen):
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    fake_ollama.reply(*[XSS_ANSWER[i : i + 40] for i in range(0, len(XSS_ANSWER), 40)], chunk_delay=0.05)
    send(page, "Show me something nasty")
    wait_answered(page)
    assert_inert(page, server)
    b.screenshot("07-xss-inert")

    # The stored answer, rendered again after a reload (the address names the conversation), is just as inert.
    page.reload()
    b.wait_connected()
    expect(page.locator("#chatbox-messages .chatbox-msg-assistant .chatbox-md")).to_have_count(1)
    assert_inert(page, server)


def test_netbox_data_shown_in_the_chat_is_inert(server, browsing, fake_anthropic, e2e_data):
    """A device whose name is an XSS payload: on the Ask-about banner, in the question, in the object links."""
    evil = e2e_data["evil"]
    b = browsing(server)
    b.login("e2e-alice", evil.get_absolute_url())
    page = b.page
    page.get_by_role("link", name="Ask about this").click()  # the panel, on the device's page
    expect(page.locator("#chatbox-panel-context")).to_contain_text(EVIL_NAME)
    expect(page.locator("#chatbox-panel-input")).to_have_value(re.compile(re.escape(EVIL_NAME)))
    expect(page.locator("#page-content img, #chatbox-panel img")).to_have_count(0)
    page.goto(f"{CHAT_PATH}?about=dcim.device:{evil.pk}")  # and the Chat page
    b.wait_connected()
    expect(page.locator("#chatbox-about")).to_contain_text(EVIL_NAME)
    expect(page.locator("#chatbox-input")).to_have_value(re.compile(re.escape(EVIL_NAME)))
    fake_anthropic.tool_call(
        "mcp__netbox__query_objects", {"object_type": "dcim.device", "filters": {"site": "e2e-evil"}}
    )
    fake_anthropic.reply("Here it is.")
    page.press("#chatbox-input", "Enter")
    link = answers(page).last.locator(".chatbox-objects a")
    expect(link).to_have_text(EVIL_NAME)
    expect(link).to_have_attribute("href", f"{server}{evil.get_absolute_url()}")
    expect(page.locator(".chatbox-msg-user .chatbox-text")).to_contain_text(EVIL_NAME)
    expect(page.locator("#page-content img")).to_have_count(0)
    assert page.evaluate("window.xssHit") is None


def test_tool_activity_and_links_to_the_objects_found(server, browsing, fake_anthropic, e2e_data):
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    # Record what the activity indicator shows while the answer runs (it may be brief).
    page.evaluate("""() => {
        window.activitySeen = [];
        const bar = document.getElementById('chatbox-activity');
        new MutationObserver(() => {
            if (!bar.classList.contains('d-none')) window.activitySeen.push(bar.innerText);
        }).observe(bar, {attributes: true, childList: true, subtree: true, characterData: true});
    }""")
    fake_anthropic.tool_call(
        "mcp__netbox__query_objects", {"object_type": "dcim.device", "filters": {"site": "e2e-dc1"}}
    )
    fake_anthropic.reply("Found ", "**2** devices.", chunk_delay=0.3)
    send(page, "Which devices are at e2e-dc1?")
    wait_answered(page)
    answer = answers(page).last
    expect(answer.locator(".chatbox-answer")).to_have_text("Found 2 devices.")
    assert any("Working: querying dcim.device" in text for text in page.evaluate("window.activitySeen")), page.evaluate(
        "window.activitySeen"
    )
    tool = answer.locator(".chatbox-tool")
    expect(tool).to_contain_text("querying dcim.device (site=e2e-dc1) — 2 found")
    expect(tool.locator(".mdi-check")).to_have_count(1)
    expect(page.locator("#chatbox-activity")).to_be_hidden()
    links = answer.locator(".chatbox-objects a")
    expect(links).to_have_count(2)
    expect(links.first).to_contain_text("e2e-core-1")
    b.screenshot("08-tool-activity-object-links")

    # Reopened from history, the stored answer still shows what the tool did and the links.
    page.reload()
    b.wait_connected()
    page.locator(".chatbox-history-item .chatbox-history-open").first.click()
    stored = answers(page).last
    expect(stored.locator(".chatbox-tool")).to_contain_text("query_objects — 2 found")
    links = stored.locator(".chatbox-objects a")
    expect(links).to_have_count(2)
    device = e2e_data["devices"][0]
    links.first.click()
    page.wait_for_url(f"**{device.get_absolute_url()}")
    expect(page.locator("h1.page-title")).to_contain_text("e2e-core-1")


def test_stop_interrupts_the_answer(server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access):
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    fake_ollama.reply(*[f"word{i} " for i in range(60)], chunk_delay=0.25)
    send(page, "Tell me a long story")
    answer = answers(page).last
    expect(answer.locator(".chatbox-answer")).to_contain_text("word1 ")
    page.click("#chatbox-stop")
    wait_answered(page)
    expect(answer.locator(".chatbox-meta")).to_contain_text("Stopped")
    b.screenshot("09-stopped")
    shown = answer.locator(".chatbox-answer").inner_text()
    assert "word59" not in shown
    page.wait_for_timeout(1000)  # nothing more arrives after Stop
    assert answer.locator(".chatbox-answer").inner_text() == shown
    stored = Message.objects.get(conversation__owner=e2e_data["alice"], role="assistant")
    assert stored.interrupted and "word59" not in stored.content

    # The conversation goes on after a stop.
    fake_ollama.reply("Short one.")
    send(page, "A short one then")
    expect(answers(page).last.locator(".chatbox-answer")).to_have_text("Short one.")


def test_provider_errors_are_readable_and_say_what_to_do(server, browsing, fake_ollama, alice_on_qwen):
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    for _ in range(5):  # every retry fails too
        fake_ollama.error(500, "model runner has unexpectedly stopped")
    send(page, "Hello?")
    error = page.locator(".chatbox-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Try again")  # what happened…
    expect(error.locator(".chatbox-hint")).to_contain_text("Model settings")  # …and what to do
    b.screenshot("10-error-readable")
    wait_answered(page)
    # The page stays usable: the next message is answered.
    fake_ollama.reset()
    fake_ollama.reply("Back again.")
    send(page, "Hello again")
    expect(answers(page).last.locator(".chatbox-answer")).to_have_text("Back again.")


def test_fallback_shows_which_model_answered_and_why(server, browsing, fake_anthropic, fake_ollama, alice_on_qwen):
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    expect(page.locator("#chatbox-model-indicator")).to_have_text(QWEN)
    fake_anthropic.reply("Claude ", "here.")
    with fake_ollama.offline():
        send(page, "Hello")
        expect(answers(page).last.locator(".chatbox-answer")).to_have_text("Claude here.")
        # The selector shows the health check's verdict: Qwen cannot be picked while it is down.
        page.click("#chatbox-settings")
        qwen = page.locator('.chatbox-model-card[data-model-id="ollama-qwen2.5"]')
        expect(qwen).to_contain_text("Unavailable")
        expect(qwen).to_contain_text("not reachable")
        expect(page.locator('.chatbox-model-card[data-model-id="claude-opus-4"]')).to_contain_text("Available")
        b.screenshot("10-model-unavailable")
        page.locator("#chatbox-model-modal").get_by_role("button", name="Cancel").click()
    indicator = page.locator("#chatbox-model-indicator")
    expect(indicator).to_have_text("Claude (Automatic)")
    expect(indicator).to_have_class(re.compile("bg-yellow-lt"))
    expect(page.locator("#chatbox-fallback")).to_contain_text(f"Fallback: {QWEN} is unavailable")
    expect(answers(page).last.locator(".chatbox-fallback-note")).to_contain_text(
        f"Claude (Automatic) answers instead of {QWEN}"
    )
    b.screenshot("10-fallback")


def test_reconnects_and_resumes_after_a_server_restart(
    restartable_server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access
):
    server = restartable_server
    b = browsing(server.url)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    fake_ollama.reply("Before the restart.")
    send(page, "Hello")
    expect(answers(page).last.locator(".chatbox-answer")).to_have_text("Before the restart.")
    wait_answered(page)

    port = int(server.url.rsplit(":", 1)[1])
    server.stop()
    expect(page.locator("#chatbox-connection")).to_have_attribute("data-status", "reconnecting")
    expect(page.locator("#chatbox-connection")).to_contain_text("reconnecting")
    b.screenshot("17-reconnecting")
    server.start(port)
    expect(page.locator("#chatbox-connection")).to_have_attribute("data-status", "live", timeout=60_000)

    # The page resumed its conversation: the next message continues it, with its context.
    expect(answers(page)).to_have_count(1)
    fake_ollama.reply("After the restart.")
    send(page, "Still there?")
    expect(answers(page).last.locator(".chatbox-answer")).to_have_text("After the restart.")
    wait_answered(page)  # the complete event comes after the answer is stored
    conversation = Conversation.objects.get(owner=e2e_data["alice"])
    assert conversation.messages.count() == 4


# --- history -------------------------------------------------------------------------------------


def test_history_continue_rename_and_delete(server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access):
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    fake_ollama.reply("First answer.")
    send(page, "First question")
    wait_answered(page)
    first = Conversation.objects.get(owner=e2e_data["alice"])

    # A reload keeps the conversation (its id is in the address)…
    page.reload()
    b.wait_connected()
    expect(page.locator("#chatbox-messages .chatbox-msg-user .chatbox-text")).to_have_text(["First question"])
    # …a question about an object starts another one; the first stays in history, not archived…
    page.goto(f"{CHAT_PATH}?about=dcim.site:{e2e_data['site'].pk}")
    b.wait_connected()
    page.click("#chatbox-about-remove")
    expect(page.locator("#chatbox-messages .chatbox-msg")).to_have_count(0)
    fake_ollama.reply("Second answer.")
    send(page, "Second question")
    wait_answered(page)
    items = page.locator(".chatbox-history-item")
    expect(items).to_have_count(2)

    # …and can be continued: it opens, then "Continue" makes it the active conversation again.
    page.locator(f'.chatbox-history-item[data-id="{first.pk}"] .chatbox-history-open').click()
    expect(page.locator("#chatbox-readonly")).to_be_visible()
    page.click("#chatbox-continue")
    expect(page.locator("#chatbox-readonly")).to_be_hidden()
    expect(page.locator(".chatbox-msg-user .chatbox-text")).to_have_text(["First question"])
    fake_ollama.reply("Continued.")
    send(page, "Follow-up")
    expect(answers(page).last.locator(".chatbox-answer")).to_have_text("Continued.")
    wait_answered(page)
    assert first.messages.count() == 4
    # The model saw the earlier turn: context is kept within a conversation.
    history = fake_ollama.chat_requests()[-1]["messages"]
    assert any(m.get("content") == "First question" for m in history)

    # Another user's chat page lists only their own conversations, even for a superuser.
    admin = browsing(server)
    admin.login("e2e-admin", CHAT_PATH)
    admin.wait_connected()
    expect(admin.page.locator("#chatbox-history")).to_contain_text("No conversations yet.")

    # Rename.
    item = page.locator(f'.chatbox-history-item[data-id="{first.pk}"]')
    item.get_by_role("button", name=re.compile("^Rename")).click()
    page.fill("#chatbox-rename-input", "Renamed <b>chat</b>")
    page.locator("#chatbox-rename-modal").get_by_role("button", name="Save").click()
    expect(item.locator(".chatbox-history-open")).to_contain_text("Renamed <b>chat</b>")
    first.refresh_from_db()
    assert first.title == "Renamed <b>chat</b>"
    b.screenshot("11-history")

    # Delete.
    item.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.locator("#chatbox-delete-modal")).to_contain_text("Renamed <b>chat</b>")
    page.locator("#chatbox-delete-confirm").click()
    expect(page.locator(f'.chatbox-history-item[data-id="{first.pk}"]')).to_have_count(0)
    assert not Conversation.objects.filter(pk=first.pk).exists()
    expect(page.locator("#chatbox-messages .chatbox-msg")).to_have_count(0)  # it was the active one


# --- object pages, permissions, layout -----------------------------------------------------------


def test_ask_about_this_device_on_the_chat_page(server, browsing, fake_ollama, alice_on_qwen, e2e_data):
    """?about= (the button's link, for the Chat page): a human question, the object sent as context, removable."""
    device = e2e_data["devices"][1]
    b = browsing(server)
    b.login("e2e-alice", f"{CHAT_PATH}?about=dcim.device:{device.pk}")
    b.wait_connected()
    page = b.page
    expect(page.locator("#chatbox-about")).to_contain_text("e2e-core-2")
    expect(page.locator("#chatbox-input")).to_have_value('Tell me about the device "e2e-core-2".')
    expect(page.locator("#chatbox-input")).to_be_focused()
    b.screenshot("12-ask-about-device")
    fake_ollama.reply("It is a router.")
    page.press("#chatbox-input", "Enter")
    expect(answers(page).last).to_contain_text("It is a router.")
    sent = fake_ollama.chat_requests()[-1]["messages"][-1]["content"]
    assert f"(dcim.device, id {device.pk}, {device.get_absolute_url()})" in sent
    page.click("#chatbox-about-remove")
    expect(page.locator("#chatbox-about")).to_have_count(0)
    fake_ollama.reply("Ok.")
    send(page, "Anything else?")
    expect(answers(page).last).to_contain_text("Ok.")
    assert fake_ollama.chat_requests()[-1]["messages"][-1]["content"] == "Anything else?"


def test_chat_menu_and_page_only_for_users_who_may_chat(server, browsing):
    bob = browsing(server)
    bob.login("e2e-bob")
    expect(bob.page.locator('#sidebar-menu button.dropdown-toggle[aria-label="Chat"]')).to_have_count(0)
    response = bob.page.goto(CHAT_PATH)
    assert response.status == 403
    device_page = bob.page.goto("/dcim/devices/")
    assert device_page.status == 200
    expect(bob.page.get_by_role("link", name="Ask about this")).to_have_count(0)

    admin = browsing(server)
    admin.login("e2e-admin")
    admin.page.locator('#sidebar-menu button.dropdown-toggle[aria-label="Chat"]').click()
    admin.page.locator(f'#sidebar-menu a[href="{CHAT_PATH}"]').click()
    admin.wait_connected()


def test_keyboard_and_narrow_window(server, browsing, fake_ollama, alice_on_qwen):
    b = browsing(server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    box = page.locator("#chatbox-input")
    box.fill("line one")
    box.press("Shift+Enter")
    box.type("line two")
    expect(box).to_have_value("line one\nline two")  # Shift+Enter: a new line, nothing sent
    expect(page.locator(".chatbox-msg")).to_have_count(0)
    fake_ollama.reply("Two lines received.")
    box.press("Enter")
    expect(page.locator(".chatbox-msg-user .chatbox-text")).to_have_text("line one\nline two")
    expect(answers(page).last).to_contain_text("Two lines received.")
    expect(box).to_have_value("")
    # Usable on a phone: everything fits the width, the input and buttons are on screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    expect(page.locator("#chatbox-send")).to_be_in_viewport()
    b.screenshot("13-narrow-window")


def test_dark_theme(server, browsing, fake_ollama, alice_on_qwen):
    b = browsing(server, color_scheme="dark")
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    assert page.evaluate("document.documentElement.dataset.bsTheme") == "dark"
    fake_ollama.reply("Sites:\n\n| Site | Devices |\n|---|---:|\n| e2e-DC1 | 2 |\n\n```\nshow version\n```\n")
    send(page, "Summarize")
    wait_answered(page)
    # Text is light on a dark bubble (NetBox's theme variables, not hard-coded colours).
    luminance = page.evaluate("""() => {
        const lum = (c) => { const [r, g, b] = c.match(/\\d+/g).map(Number);
            return (0.2126*r + 0.7152*g + 0.0722*b) / 255;
        };
        const bubble = document.querySelector('.chatbox-msg-assistant .chatbox-bubble');
        return [lum(getComputedStyle(bubble).color), lum(getComputedStyle(bubble).backgroundColor)];
    }""")
    assert luminance[0] > 0.6 and luminance[1] < 0.3, luminance
    b.screenshot("14-dark-conversation")
    page.click("#chatbox-settings")
    expect(page.locator("#chatbox-model-modal")).to_be_visible()
    b.screenshot("15-dark-model-selector")
