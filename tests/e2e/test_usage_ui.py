"""Issue 16 in a real browser: the usage page, its server-drawn chart and its CSV export.

Screenshots: artifacts/screenshots/usage-*.png.
"""

import datetime
import random
import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from netbox_chatbox.models import Conversation, Message

from .conftest import SCREENSHOTS, alices_chat, send, wait_answered

pytestmark = [pytest.mark.usefixtures("e2e_data"), pytest.mark.xdist_group("browser")]

USAGE_PATH = "/plugins/chatbox/usage/"


@pytest.fixture
def usage_history(e2e_data, db_access):
    """30 days of answers by e2e-alice and e2e-admin on three models; e2e-bob may view usage."""
    from tests.conftest import grant

    grant(e2e_data["bob"], Conversation, ["view_usage"], name="e2e-bob-usage")
    rng = random.Random(7)
    now = datetime.datetime.now(datetime.UTC)
    total_answers = 0
    for user in (e2e_data["alice"], e2e_data["admin"]):
        for model_id, path in (("auto", "sdk"), ("claude-haiku-4-5", "sdk"), ("ollama-qwen2.5", "litellm")):
            conversation = Conversation.objects.create(owner=user, title="private", model_id=model_id, path=path)
            for day in range(30):
                for _ in range(rng.randrange(0, 4)):
                    message = Message.objects.create(
                        conversation=conversation,
                        role="assistant",
                        content="private answer",
                        model=model_id,
                        input_tokens=rng.randrange(500, 4000),
                        output_tokens=rng.randrange(50, 600),
                        cost_usd=None if path == "litellm" else Decimal(rng.randrange(100, 9000)) / 10**5,
                        duration_ms=rng.randrange(800, 20000),
                        tool_calls=[{"tool": "query_objects", "ok": True}],
                    )
                    Message.objects.filter(pk=message.pk).update(created=now - datetime.timedelta(days=day))
                    total_answers += 1
    yield total_answers
    from users.models import ObjectPermission

    ObjectPermission.objects.filter(name="e2e-bob-usage").delete()


def test_usage_page_draws_the_chart_and_exports(asgi_server, browsing, usage_history):
    b = browsing(asgi_server)
    page = b.page
    b.login("e2e-bob")
    page.locator('#sidebar-menu button.dropdown-toggle[aria-label="Chat"]').click()
    page.locator(f'#sidebar-menu a[href="{USAGE_PATH}"]').click()
    page.wait_for_url(f"**{USAGE_PATH}")
    expect(page.locator("h1.page-title")).to_have_text("Chat usage")
    expect(page.locator('[data-total="answers"]')).to_have_text(f"{usage_history:,}")

    chart = page.locator("#chatbox-usage-chart svg")
    expect(chart).to_be_visible()
    bars = chart.locator("rect[data-model]")
    assert bars.count() > 30
    box = bars.first.bounding_box()
    assert box and box["height"] > 0 and box["width"] > 0  # drawn, not just present
    expect(chart).to_contain_text("ollama-qwen2.5")  # the legend
    expect(page.locator("#chatbox-usage-table tbody tr")).not_to_have_count(0)
    assert "private" not in page.locator("#chatbox-usage-table").inner_text()
    b.screenshot("usage-tokens-per-day")

    page.get_by_role("link", name="Cost (USD)", exact=True).first.click()
    expect(page.locator("#chatbox-usage-chart .card-title")).to_have_text("Cost (USD)")
    page.select_option("#id_period", "week")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#chatbox-usage-chart .card-title")).to_have_text("Cost (USD)")  # the figure is kept
    expect(page.locator("#chatbox-usage-chart svg rect[data-model]").first).to_be_visible()
    expect(page.locator("#chatbox-usage-chart svg")).not_to_contain_text("ollama-qwen2.5")  # local: no cost
    b.screenshot("usage-cost-per-week")

    with page.expect_download() as download:
        page.locator("#chatbox-usage-export").click()
    content = Path(download.value.path()).read_text(encoding="utf-8")
    assert content.splitlines()[0].startswith("Period,User,Model,Answers")
    assert "e2e-alice" in content and "private" not in content


@pytest.fixture
def alice_limited(e2e_data, db_access, alice_on_qwen):
    """Alice is in e2e-limited (1,000 tokens a day, see configuration.py) and has used 900 today."""
    from users.models import Group

    group = Group.objects.create(name="e2e-limited")
    e2e_data["alice"].groups.add(group)
    conversation = Conversation.objects.create(
        owner=e2e_data["alice"], model_id="ollama-qwen2.5", path="litellm", archived=True, title="earlier"
    )
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="…",
        model="ollama-qwen2.5",
        input_tokens=800,
        output_tokens=100,
        duration_ms=10,
    )
    yield
    group.delete()


def test_chat_shows_what_is_left_and_refuses_at_the_limit(asgi_server, browsing, fake_ollama, alice_limited):
    page = alices_chat(browsing, asgi_server)
    budget = page.locator("#chatbox-budget")
    expect(budget).to_have_text("100 tokens left today")
    fake_ollama.reply("Three ", "sites.", prompt_eval_count=150)
    send(page, "How many sites?")
    wait_answered(page)
    expect(page.locator("#chatbox-messages .chatbox-msg-assistant").last).to_contain_text("Three sites.")
    expect(budget).to_have_text("0 tokens left today")  # the answer that crossed the limit finished
    expect(budget).to_have_class(re.compile("text-danger"))
    send(page, "And racks?")
    alert = page.locator('#chatbox-messages [data-code="budget_exceeded"]')
    expect(alert).to_contain_text("You have reached your daily chat limit of 1,000 tokens (used: 1,052).")
    expect(alert).to_contain_text("It resets at")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "usage-budget-reached.png", animations="disabled")
