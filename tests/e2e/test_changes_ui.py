"""Issue 13 in a real browser: the assistant proposes, the card shows the diff, the user applies or discards.

NetBox + plugin under uvicorn with ``enable_changes`` on (configuration_changes.py), fake providers scripting
the proposal tool calls; what is applied is checked on NetBox's own object page and in the database.
"""

import pytest
from playwright.sync_api import expect

from .conftest import CHAT_PATH, UVICORN, _server_env, alices_chat, send, start_server, stop_server, wait_answered

pytestmark = [pytest.mark.usefixtures("e2e_data"), pytest.mark.xdist_group("browser-own-server")]

CARD = ".chatbox-proposal"
XSS = '<img src=x onerror="window.xssHit=1"><script>window.xssHit=2</script>'


@pytest.fixture(scope="module")
def server(e2e_data, fake_anthropic, fake_ollama, django_db_blocker):
    """The browser tests' server with changes enabled; alice may also change devices."""
    from core.models import ObjectChange
    from dcim.models import Device

    from tests.conftest import grant

    with django_db_blocker.unblock():
        grant(e2e_data["alice"], Device, ["change"], name="e2e-alice-change-device")
        grant(e2e_data["alice"], ObjectChange, ["view"], name="e2e-alice-changelog")
    env = {**_server_env(fake_anthropic, fake_ollama), "NETBOX_CONFIGURATION": "tests.e2e.configuration_changes"}
    process, url, log = start_server(UVICORN, env, "uvicorn-changes")
    yield url
    stop_server(process, log)


@pytest.fixture
def device(e2e_data, db_access):
    """e2e-core-1, put back as it was after the test."""
    device = e2e_data["devices"][0]
    device.refresh_from_db()
    yield device
    device.refresh_from_db()
    device.snapshot()
    device.serial, device.description, device.status = "", "", "active"
    device.save()


def propose(fake, device, data, claude=False):
    name = "propose_update"
    fake.tool_call(
        f"mcp__netbox__{name}" if claude else name, {"object_type": "dcim.device", "id": device.pk, "data": data}
    )
    fake.reply("I have proposed the change; review it below.")


def test_in_a_branch_the_card_names_it_and_apply_changes_the_branch_only(server, browsing, fake_anthropic, device):
    """netbox-branching: the user activates a branch (its link), asks; the card names the branch; Apply writes there."""
    from dcim.models import Device
    from netbox_branching.models import Branch
    from netbox_branching.utilities import activate_branch

    branch = Branch(name="e2e-branch")
    branch.save(provision=False)
    branch.provision(user=None)
    try:
        b = browsing(server)
        b.login("e2e-alice", CHAT_PATH)
        b.open_chat(f"?_branch={branch.schema_id}")  # netbox-branching's activation link: its cookie from now on
        b.wait_connected("live")
        propose(fake_anthropic, device, {"serial": "SN-E2E-BRANCH"}, claude=True)
        send(b.page, "Set the serial of e2e-core-1")
        wait_answered(b.page)
        card = b.page.locator(CARD)
        expect(card.locator(".chatbox-proposal-branch")).to_contain_text("Branch e2e-branch")
        card.locator(".chatbox-proposal-apply").click()
        expect(card).to_have_attribute("data-status", "applied")
        device.refresh_from_db()
        assert device.serial == ""  # main
        with activate_branch(branch):
            assert Device.objects.get(pk=device.pk).serial == "SN-E2E-BRANCH"
    finally:
        branch.delete()  # its schema too


def test_ask_card_apply_and_the_object_page_shows_the_change(server, browsing, fake_anthropic, device):
    """Path A (Claude) over the WebSocket: the card, Apply, the object's page, the change log, a reload."""
    page = alices_chat(browsing, server)
    propose(fake_anthropic, device, {"serial": "SN-E2E-APPLIED", "status": "offline"}, claude=True)
    send(page, "Take e2e-core-1 offline and set its serial")
    wait_answered(page)
    card = page.locator(CARD)
    expect(card).to_have_attribute("data-status", "pending")
    expect(card.locator(".chatbox-proposal-count")).to_have_text("1 change")
    expect(card.locator(".chatbox-proposal-object a")).to_have_text("e2e-core-1")
    expect(card.locator('tr[data-field="serial"] .chatbox-after')).to_have_text("SN-E2E-APPLIED")
    expect(card.locator('tr[data-field="status"] .chatbox-before')).to_have_text("active")
    expect(card.locator('tr[data-field="status"] .chatbox-after')).to_have_text("offline")
    expect(card.locator(".chatbox-proposal-expiry")).to_contain_text("Expires")
    device.refresh_from_db()
    assert device.serial == ""  # nothing applied before the click

    card.locator(".chatbox-proposal-apply").click()
    expect(card).to_have_attribute("data-status", "applied")
    expect(card.locator(".chatbox-proposal-status")).to_have_text("Applied")
    changelog = card.locator("a", has_text="Change log")
    expect(changelog).to_have_attribute("href", f"{server}/core/changelog/?request_id=" + _request_id(device))
    device.refresh_from_db()
    assert (device.serial, device.status) == ("SN-E2E-APPLIED", "offline")

    page.reload()  # the stored answer draws the card again, as it is now
    expect(page.locator(CARD)).to_have_attribute("data-status", "applied")
    page.locator(f"{CARD} .chatbox-proposal-links a", has_text="e2e-core-1").click()
    page.wait_for_url(f"**{device.get_absolute_url()}")
    expect(page.locator("body")).to_contain_text("SN-E2E-APPLIED")
    page.goto(f"/core/changelog/?request_id={_request_id(device)}")
    expect(page.locator("body")).to_contain_text("e2e-core-1")


def _request_id(device):
    from core.models import ObjectChange

    return str(ObjectChange.objects.filter(changed_object_id=device.pk).latest("time").request_id)


def test_discard_leaves_netbox_untouched(server, browsing, fake_ollama, alice_on_qwen, device):
    """Path B (the local model)."""
    from core.models import ObjectChange

    changes = ObjectChange.objects.count()
    page = alices_chat(browsing, server)
    propose(fake_ollama, device, {"serial": "SN-DISCARDED"})
    send(page, "Set the serial")
    wait_answered(page)
    card = page.locator(CARD)
    expect(card).to_have_attribute("data-status", "pending")
    card.locator(".chatbox-proposal-discard").click()
    expect(card).to_have_attribute("data-status", "discarded")
    expect(card.locator(".chatbox-proposal-apply")).to_have_count(0)
    device.refresh_from_db()
    assert device.serial == "" and ObjectChange.objects.count() == changes


def test_a_proposed_value_with_markup_renders_inert(server, browsing, fake_ollama, alice_on_qwen, device):
    page = alices_chat(browsing, server)
    propose(fake_ollama, device, {"description": XSS})
    send(page, "Describe it")
    wait_answered(page)
    card = page.locator(CARD)
    expect(card.locator('tr[data-field="description"] .chatbox-after')).to_have_text(XSS)
    card.locator(".chatbox-proposal-apply").click()
    expect(card).to_have_attribute("data-status", "applied")
    expect(page.locator(f"{CARD} img, {CARD} script")).to_have_count(0)
    assert page.evaluate("window.xssHit") is None
    device.refresh_from_db()
    assert device.description == XSS  # applied as text, as NetBox stores it


def test_the_card_in_the_panel_shows_a_fresh_diff_when_the_object_changed(
    server, browsing, fake_ollama, alice_on_qwen, device
):
    b = browsing(server)
    b.login("e2e-alice", device.get_absolute_url())
    page = b.page
    page.locator("header .chatbox-panel-toggle").click()
    expect(page.locator("#chatbox-panel-connection")).to_have_attribute("data-status", "live")
    propose(fake_ollama, device, {"serial": "SN-PANEL"})
    page.fill("#chatbox-panel-input", "Set the serial")
    page.press("#chatbox-panel-input", "Enter")
    card = page.locator(f"#chatbox-panel {CARD}")
    expect(card).to_have_attribute("data-status", "pending")
    expect(card.locator('tr[data-field="serial"] .chatbox-before')).to_have_text("—")

    device.snapshot()
    device.serial = "SN-MEANWHILE"  # someone else changes it before the click
    device.save()
    card.locator(".chatbox-proposal-apply").click()
    expect(card.locator(".chatbox-proposal-error")).to_contain_text("changed in NetBox since the proposal")
    expect(card.locator('tr[data-field="serial"] .chatbox-before')).to_have_text("SN-MEANWHILE")
    expect(card).to_have_attribute("data-status", "pending")
    device.refresh_from_db()
    assert device.serial == "SN-MEANWHILE"

    card.locator(".chatbox-proposal-apply").click()  # what the card now shows
    expect(card).to_have_attribute("data-status", "applied")
    page.reload()
    expect(page.locator("body")).to_contain_text("SN-PANEL")
    expect(page.locator(f"#chatbox-panel {CARD}")).to_have_attribute("data-status", "applied")  # stored
    b.screenshot("60-changes-panel-applied")
