"""Issue 11 in a real browser: the chat panel on every NetBox page, the conversation that follows the
user, and the Chat page's details (focus, links, tables). NetBox + plugin under uvicorn, fake providers.
"""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from netbox_chatbox.models import Conversation, Message
from tests.fakes.server import HttpError

from .conftest import CHAT_PATH, send, wait_answered

pytestmark = [pytest.mark.usefixtures("e2e_data"), pytest.mark.xdist_group("browser")]

PANEL = "#chatbox-panel"


@pytest.fixture
def server(asgi_server):
    return asgi_server


def open_panel(page):
    page.locator("header .chatbox-panel-toggle").click()
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator("#chatbox-panel-connection")).to_have_attribute("data-status", "live")


def panel_send(page, text):
    page.fill("#chatbox-panel-input", text)
    page.press("#chatbox-panel-input", "Enter")


def panel_answers(page):
    return page.locator(f"{PANEL} .chatbox-msg-assistant")


def panel_answered(page):
    expect(page.locator("#chatbox-panel-send")).to_be_visible()
    expect(page.locator("#chatbox-panel-stop")).to_be_hidden()


def last_question(fake_ollama):
    return fake_ollama.chat_requests()[-1]["messages"][-1]["content"]


def test_panel_on_an_object_page_sends_the_object_and_the_chip_can_be_removed(
    server, browsing, fake_ollama, alice_on_qwen, e2e_data
):
    device = e2e_data["devices"][0]
    b = browsing(server)
    b.login("e2e-alice", device.get_absolute_url())
    page = b.page
    expect(page.locator(PANEL)).to_have_count(0)  # nothing until opened
    open_panel(page)
    expect(page.locator("#chatbox-panel-input")).to_be_focused()
    chip = page.locator("#chatbox-panel-context .chatbox-chip")
    expect(chip).to_contain_text("device: e2e-core-1")
    b.screenshot("20-panel-object")

    fake_ollama.reply("It is a core switch.")
    panel_send(page, "What is this?")
    expect(panel_answers(page).last).to_contain_text("It is a core switch.")
    asked = last_question(fake_ollama)
    assert asked.startswith("What is this?")
    assert f'device "e2e-core-1" (dcim.device, id {device.pk}, {device.get_absolute_url()})' in asked
    # The question shows what was sent with it.
    expect(page.locator(f"{PANEL} .chatbox-msg-user .chatbox-sent-context")).to_have_text("device: e2e-core-1")

    # Removed: the next question goes without it.
    chip.locator(".chatbox-context-remove").click()
    expect(chip).to_have_count(0)
    expect(page.locator("#chatbox-panel-input")).to_be_focused()
    fake_ollama.reply("Fine.")
    panel_send(page, "And in general?")
    expect(panel_answers(page).last).to_contain_text("Fine.")
    assert last_question(fake_ollama) == "And in general?"
    expect(page.locator(f"{PANEL} .chatbox-msg-user .chatbox-sent-context")).to_have_count(1)


def test_panel_on_a_list_page_sends_the_type_and_known_filters(server, browsing, fake_ollama, alice_on_qwen, e2e_data):
    site = e2e_data["site"]
    b = browsing(server)
    b.login("e2e-alice", "/dcim/devices/")
    page = b.page
    page.goto(f"/dcim/devices/?site_id={site.pk}&bogus=1&per_page=5")
    open_panel(page)
    expect(page.locator("#chatbox-panel-context")).to_contain_text(f"List of devices (site_id={site.pk})")
    fake_ollama.reply("Two.")
    panel_send(page, "How many?")
    expect(panel_answers(page).last).to_contain_text("Two.")
    asked = last_question(fake_ollama)
    assert f"list of devices (dcim.device) filtered by site_id={site.pk}" in asked and "bogus" not in asked


def test_ask_about_this_on_any_object_page_opens_the_panel_with_a_human_question(
    server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access
):
    # A type that no list names (the old button knew six types): the manufacturer.
    from dcim.models import Manufacturer

    from tests.conftest import grant

    maker = Manufacturer.objects.get(slug="e2e-maker")
    grant(e2e_data["alice"], Manufacturer, ["view"], name="e2e-alice-maker")
    b = browsing(server)
    b.login("e2e-alice", maker.get_absolute_url())
    page = b.page
    page.get_by_role("link", name="Ask about this").click()
    expect(page.locator(PANEL)).to_be_visible()
    box = page.locator("#chatbox-panel-input")
    expect(box).to_have_value('Tell me about the manufacturer "e2e-maker".')
    expect(box).to_be_focused()
    expect(page.locator("#chatbox-panel-context")).to_contain_text("manufacturer: e2e-maker")
    expect(page.locator("#chatbox-panel-connection")).to_have_attribute("data-status", "live")
    fake_ollama.reply("A maker.")
    page.press("#chatbox-panel-input", "Enter")
    expect(panel_answers(page).last).to_contain_text("A maker.")
    assert f"(dcim.manufacturer, id {maker.pk}" in last_question(fake_ollama)


def test_no_panel_and_no_button_without_the_chat_permission(server, browsing, e2e_data):
    bob = browsing(server)
    bob.login("e2e-bob", e2e_data["devices"][0].get_absolute_url())
    page = bob.page
    expect(page.locator(".chatbox-panel-toggle")).to_have_count(0)
    expect(page.locator("#chatbox-panel-config")).to_have_count(0)
    expect(page.get_by_role("link", name="Ask about this")).to_have_count(0)
    page.keyboard.press("Control+/")
    expect(page.locator(PANEL)).to_have_count(0)


def test_shortcut_opens_and_escape_closes(server, browsing, alice_on_qwen):
    b = browsing(server)
    b.login("e2e-alice", "/dcim/sites/")
    page = b.page
    page.bring_to_front()  # the window has the focus, as when a person types
    page.keyboard.press("Control+/")
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator("#chatbox-panel-input")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(PANEL)).to_be_hidden()
    page.keyboard.press("Control+/")
    expect(page.locator(PANEL)).to_be_visible()


def test_conversation_follows_across_pages_reload_and_links_and_survives_navigating_mid_answer(
    server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access
):
    site = e2e_data["site"]
    b = browsing(server)
    b.login("e2e-alice", "/dcim/devices/")
    page = b.page
    open_panel(page)
    fake_ollama.reply(f"Look at [the site]({site.get_absolute_url()}).")
    panel_send(page, "Where are they?")
    expect(panel_answers(page).last).to_contain_text("Look at the site.")
    panel_answered(page)  # the first tokens do not wait for the conversation's row; the turn's end does
    conversation = Conversation.objects.get(owner=e2e_data["alice"])

    # A link in the answer opens the NetBox page; the panel stays open on the same conversation.
    panel_answers(page).last.get_by_role("link", name="the site").click()
    page.wait_for_url(f"**{site.get_absolute_url()}")
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator(f"{PANEL} .chatbox-msg-user .chatbox-text")).to_have_text(["Where are they?"])
    expect(page.locator("#chatbox-panel-context")).to_contain_text("site: e2e-DC1")

    # Leave mid-answer: the answer is finished and stored, and shown on the next page.
    fake_ollama.reply(*[f"w{i} " for i in range(20)], chunk_delay=0.2)
    panel_send(page, "Talk for a while")
    expect(panel_answers(page).last).to_contain_text("w1")
    page.goto("/dcim/sites/")
    expect(page.locator(PANEL)).to_be_visible()
    expect(panel_answers(page).last).to_contain_text("w19", timeout=30_000)
    panel_answered(page)
    stored = Message.objects.filter(conversation=conversation, role="assistant").last()
    assert not stored.interrupted and stored.content.strip().endswith("w19")

    # A reload and a new tab show the same conversation.
    page.reload()
    expect(page.locator(f"{PANEL} .chatbox-msg-user")).to_have_count(2)
    other = b.context.new_page()
    other.goto("/dcim/devices/")
    other.locator("header .chatbox-panel-toggle").click()
    expect(other.locator(f"{PANEL} .chatbox-msg-user .chatbox-text")).to_have_text(
        ["Where are they?", "Talk for a while"]
    )

    # The Chat page continues it (writable), and its address names it.
    page.locator("#chatbox-panel-full").click()
    page.wait_for_url(f"**{CHAT_PATH}?conversation={conversation.pk}")
    expect(page.locator("#chatbox-connection")).to_have_attribute("data-status", "live")
    expect(page.locator("#chatbox-messages .chatbox-msg-user")).to_have_count(2)
    expect(page.locator("#chatbox-readonly")).to_be_hidden()
    expect(page.locator("#chatbox-input")).to_be_enabled()
    other.close()


def test_panel_dark_and_on_a_phone(server, browsing, fake_ollama, alice_on_qwen):
    b = browsing(server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, color_scheme="dark")
    b.login("e2e-alice", "/dcim/devices/")
    page = b.page
    assert page.evaluate("document.documentElement.dataset.bsTheme") == "dark"
    page.locator(".navbar-nav.d-lg-none .chatbox-panel-toggle").click()
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    expect(page.locator("#chatbox-panel-connection")).to_have_attribute("data-status", "live")
    fake_ollama.reply(
        "| Device | Site | Status | Role | Platform | Serial |\n|---|---|---|---|---|---|\n"
        "| e2e-core-1-with-a-long-name | e2e-DC1 | active | core-router | junos-evolved | ABCDEFGH12345 |\n"
    )
    panel_send(page, "Table please")
    table = panel_answers(page).last.locator("table")
    expect(table).to_be_visible()
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 391, box
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    # The wide table scrolls inside its box; its words stay whole.
    scroller = panel_answers(page).last.locator(".table-responsive")
    assert scroller.evaluate("(node) => node.scrollWidth > node.clientWidth")
    cell = table.locator("td").first
    assert cell.evaluate("(node) => node.getClientRects().length === 1 && node.offsetHeight < 40")
    colors = page.evaluate("""() => {
        const lum = (c) => { const [r, g, b] = c.match(/\\d+/g).map(Number);
            return (0.2126*r + 0.7152*g + 0.0722*b) / 255;
        };
        const panel = document.getElementById('chatbox-panel');
        return [lum(getComputedStyle(panel).color), lum(getComputedStyle(panel).backgroundColor)];
    }""")
    assert colors[0] > 0.6 and colors[1] < 0.3, colors
    b.screenshot("21-panel-phone-dark")


def test_chat_page_focus_links_with_parentheses_rename_focus_and_export(
    server, browsing, fake_ollama, alice_on_qwen, e2e_data, db_access
):
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)
    b.wait_connected()
    page = b.page
    expect(page.locator("#chatbox-input")).to_be_focused()  # on load
    # The empty chat's examples name the user's own data, and a click puts one in the message box.
    example = page.locator(".chatbox-example", has_text='Which devices are at site "e2e-DC1"?')
    example.click()
    expect(page.locator("#chatbox-input")).to_have_value('Which devices are at site "e2e-DC1"?')
    expect(page.locator("#chatbox-input")).to_be_focused()

    fake_ollama.reply("See [Foo (bar)](https://en.wikipedia.org/wiki/Foo_(bar)) and [sites](/dcim/sites/?q=(e2e)).")
    send(page, "Links?")
    wait_answered(page)
    links = page.locator("#chatbox-messages .chatbox-msg-assistant .chatbox-md a")
    expect(links).to_have_count(2)
    assert links.nth(0).get_attribute("href") == "https://en.wikipedia.org/wiki/Foo_(bar)"
    assert links.nth(1).get_attribute("href").endswith("/dcim/sites/?q=(e2e)")
    expect(page.locator("#chatbox-messages .chatbox-msg-assistant .chatbox-md p")).to_have_text(
        "See Foo (bar) and sites."
    )

    # After Stop, the message box has the focus again.
    fake_ollama.reply(*[f"word{i} " for i in range(40)], chunk_delay=0.25)
    send(page, "Long")
    expect(page.locator("#chatbox-stop")).to_be_visible()
    page.click("#chatbox-stop")
    wait_answered(page)
    expect(page.locator("#chatbox-input")).to_be_focused()

    # The rename dialog: typing goes into the title at once; closing it returns to the message box.
    page.locator(".chatbox-history-item").first.get_by_role("button", name=re.compile("^Rename")).click()
    expect(page.locator("#chatbox-rename-input")).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("Typed title")
    page.keyboard.press("Enter")
    expect(page.locator(".chatbox-history-item").first).to_contain_text("Typed title")
    expect(page.locator("#chatbox-rename-modal")).to_be_hidden()
    expect(page.locator("#chatbox-input")).to_be_focused()

    # Take-away: the export downloads match the stored conversation.
    conversation = Conversation.objects.get(owner=e2e_data["alice"])
    stored = list(conversation.messages.values_list("role", "content"))
    page.click("#chatbox-export button")
    with page.expect_download() as download:
        page.click("#chatbox-export-json")
    exported = json.loads(Path(download.value.path()).read_text())
    assert download.value.suggested_filename == f"conversation-{conversation.pk}.json"
    assert [(m["role"], m["content"]) for m in exported["messages"]] == stored and exported["title"] == "Typed title"
    page.click("#chatbox-export button")
    with page.expect_download() as download:
        page.click("#chatbox-export-md")
    markdown = Path(download.value.path()).read_text()
    assert markdown.startswith("# Typed title\n") and "## You\n\nLinks?\n" in markdown
    assert stored[1][1] in markdown and "(stopped)" in markdown


def test_claude_down_is_shown_unavailable_and_the_fallback_order_answers(server, browsing, fake_anthropic, fake_ollama):
    fake_anthropic.override("/v1/models", HttpError(500, {"type": "error", "error": {"type": "api_error"}}))
    b = browsing(server)
    b.login("e2e-alice", CHAT_PATH)  # on Claude (Automatic), the default
    b.wait_connected()
    page = b.page
    page.click("#chatbox-settings")
    claude = page.locator('.chatbox-model-card[data-model-id="auto"]')
    expect(claude).to_contain_text("Unavailable")
    expect(claude).to_contain_text("The Anthropic API answered with an error (HTTP 500).")
    expect(claude).not_to_contain_text("Available")
    expect(page.locator('.chatbox-model-card[data-model-id="ollama-qwen2.5"]')).to_contain_text("Available")
    page.locator("#chatbox-model-modal").get_by_role("button", name="Cancel").click()
    expect(page.locator("#chatbox-input")).to_be_focused()  # back to the message box after the dialog

    fake_ollama.reply("The local model answers.")
    send(page, "Hello?")
    wait_answered(page)
    answer = page.locator("#chatbox-messages .chatbox-msg-assistant").last
    expect(answer.locator(".chatbox-fallback-note")).to_contain_text(
        "Qwen 2.5 14B Instruct answers instead of Claude (Automatic). Claude (Automatic) is unavailable: "
        "The Anthropic API answered with an error (HTTP 500)."
    )
    expect(answer.locator(".chatbox-meta")).to_contain_text("Answered by Qwen 2.5 14B Instruct")
    expect(answer.locator(".chatbox-meta span[title]")).to_have_attribute("title", "qwen2.5:14b-instruct-8k")
    assert fake_anthropic.conversation_requests() == []


@pytest.fixture
def dns_zone(e2e_data, db_access):
    """A zone of a third-party plugin (netbox-plugin-dns, in the tests' configuration) that Alice may view, with
    a constrained permission, and a nameserver she may not; committed for the server, deleted afterwards."""
    from netbox_dns.models import NameServer, View, Zone

    from tests.conftest import grant

    view, made_view = View.objects.get_or_create(default_view=True, defaults={"name": "_default_"})
    nameserver = NameServer.objects.create(name="ns1.e2e.example")
    zone = Zone.objects.create(
        name="e2e.example",
        view=view,
        soa_mname=nameserver,
        soa_rname="hostmaster.e2e.example",
        **{"default_ttl": 3600, "soa_ttl": 3600, "soa_refresh": 3600, "soa_retry": 600, "soa_expire": 86400},
        soa_minimum=300,
    )
    grant(e2e_data["alice"], Zone, ["view"], constraints={"name": "e2e.example"}, name="e2e-alice-zone")
    grant(e2e_data["alice"], View, ["view"], name="e2e-alice-dns-view")
    yield zone
    zone.delete()
    nameserver.delete()
    if made_view:
        View.objects.filter(pk=view.pk).delete()  # the plugin's View.delete() refuses the default view


def test_ask_about_this_on_a_plugin_objects_page_asks_about_it_and_the_tools_read_it(
    server, browsing, fake_ollama, alice_on_qwen, dns_zone
):
    zone = dns_zone
    b = browsing(server)
    b.login("e2e-alice", zone.get_absolute_url())
    page = b.page
    page.get_by_role("link", name="Ask about this").click()
    expect(page.locator(PANEL)).to_be_visible()
    box = page.locator("#chatbox-panel-input")
    expect(box).to_have_value('Tell me about the Zone "e2e.example".')
    expect(box).to_be_focused()
    expect(page.locator("#chatbox-panel-context .chatbox-chip")).to_have_text("Zone: e2e.example")
    expect(page.locator("#chatbox-panel-connection")).to_have_attribute("data-status", "live")
    b.screenshot("22-panel-plugin-object")

    # The model, told which object the page shows, reads it with a tool: as Alice may see it.
    fake_ollama.tool_call("get_object", {"object_type": "netbox_dns.zone", "id": zone.pk})
    fake_ollama.reply("A zone in the default view.")
    page.press("#chatbox-panel-input", "Enter")
    expect(panel_answers(page).last).to_contain_text("A zone in the default view.")
    asked, answered = fake_ollama.chat_requests()[-2:]
    question = asked["messages"][-1]["content"]
    assert question.startswith('Tell me about the Zone "e2e.example".')
    assert f'Zone "e2e.example" (netbox_dns.zone, id {zone.pk}, {zone.get_absolute_url()})' in question
    (tool,) = [message for message in answered["messages"] if message["role"] == "tool"]
    read = json.loads(tool["content"])["object"]
    assert (read["display"], read["url"], read["soa_rname"]) == (
        "e2e.example",
        zone.get_absolute_url(),
        "hostmaster.e2e.example",
    )
    assert read["soa_mname"] is None and "ns1.e2e.example" not in tool["content"]  # a nameserver she may not view
