"""Issue 16: usage limits (PLUGINS_CONFIG ``budgets``) — refused at the limit with a clear message, the
group override wins, the count resets at the period boundary, and concurrent turns can't both slip past.

Path B against the fake Ollama (the local model is made non-exempt where a turn must count).
"""

import datetime
import threading
import zoneinfo

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import close_old_connections
from django.utils import timezone
from users.models import Group

from netbox_chatbox import conf
from netbox_chatbox.models import Conversation, Message
from netbox_chatbox.preferences import PREFERENCE_PATH
from netbox_chatbox.sessions import ChatSession, Refused

from .chat_clients import open_socket

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "/api/plugins/chatbox/chat/"


@pytest.fixture
def on_ollama(chat_user, use_fake_ollama):
    chat_user.config.set(PREFERENCE_PATH, "ollama-qwen2.5", commit=True)
    return use_fake_ollama


@pytest.fixture
def budgets(chatbox_config):
    def configure(**budgets):
        chatbox_config(budgets={"exempt_local_models": False, **budgets})

    return configure


def used(user, tokens, when=None, model_id="ollama-qwen2.5", cost=None):
    """An answer of ``tokens`` tokens stored for ``user`` at ``when`` (default: now)."""
    conversation = Conversation.objects.create(owner=user, model_id=model_id, path="litellm", archived=True)
    message = Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="…",
        model=model_id,
        input_tokens=tokens,
        output_tokens=0,
        cost_usd=cost,
        duration_ms=10,
    )
    if when is not None:
        Message.objects.filter(pk=message.pk).update(created=when)


def ask(api, user, text="How many sites?"):
    return api(user, token=True).post(CHAT, {"message": text}, format="json")


def start_of_today(tz_name="UTC"):
    tz = zoneinfo.ZoneInfo(tz_name)
    return timezone.now().astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)


def refusals(limit):
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("netbox_chatbox_budget_refusals_total", {"limit": limit}) or 0


def test_at_the_limit_the_next_question_is_refused_saying_which_limit_and_when(
    api, chat_user, on_ollama, budgets, settings
):
    settings.METRICS_ENABLED = True
    budgets(default={"day_tokens": 1000})
    used(chat_user, 1000)
    before = refusals("day_tokens")
    response = ask(api, chat_user)
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "budget_exceeded"
    tomorrow = (start_of_today() + datetime.timedelta(days=1)).strftime("%Y-%m-%d 00:00 UTC")
    assert body["message"] == (
        f"You have reached your daily chat limit of 1,000 tokens (used: 1,000). It resets at {tomorrow}."
    )
    assert on_ollama.chat_requests() == []  # the model was never asked
    assert not Message.objects.filter(role="user").exists()  # nothing stored
    assert refusals("day_tokens") == before + 1  # in /metrics


def test_a_turn_that_crosses_the_limit_finishes_then_the_next_is_refused(api, chat_user, on_ollama, budgets):
    budgets(default={"day_tokens": 1000})
    used(chat_user, 990)
    on_ollama.reply("There are ", "three ", "sites.", prompt_eval_count=40)
    response = ask(api, chat_user)
    assert response.status_code == 200, response.content
    assert response.json()["answer"] == "There are three sites."  # not cut at the limit
    refused = ask(api, chat_user, "And racks?")
    assert refused.status_code == 429 and "used: 1,033" in refused.json()["message"]


def test_cost_limit_per_month(api, chat_user, on_ollama, budgets):
    budgets(default={"month_cost_usd": 5})
    used(chat_user, 10, cost="5.000001")
    body = ask(api, chat_user).json()
    assert body["code"] == "budget_exceeded" and "monthly chat limit of $5.00" in body["message"]


def test_local_models_are_exempt_unless_configured_otherwise(api, chat_user, on_ollama, chatbox_config):
    chatbox_config(budgets={"default": {"day_tokens": 10}})  # exempt_local_models defaults to True
    used(chat_user, 500)
    on_ollama.reply("Fine.")
    assert ask(api, chat_user).status_code == 200


def test_group_override_wins_over_the_default(api, chat_user, on_ollama, budgets):
    budgets(default={"day_tokens": 100}, groups={"noc": {"day_tokens": 10_000}, "interns": {"day_tokens": 10}})
    used(chat_user, 500)
    assert ask(api, chat_user).status_code == 429
    chat_user.groups.add(Group.objects.create(name="noc"))
    on_ollama.reply("Allowed now.")
    response = ask(api, chat_user)
    assert response.status_code == 200 and response.json()["answer"] == "Allowed now."
    # A stricter group's limit wins over the default too (the interns' 10 tokens).
    carol = get_user_model().objects.create_user("carol")
    carol.groups.add(Group.objects.create(name="interns"))
    from .conftest import grant

    grant(carol, Conversation, ["chat"])
    used(carol, 50)
    assert "limit of 10 tokens" in ask(api, carol).json()["message"]


def test_the_count_resets_at_the_boundary_in_netboxs_time_zone(api, chat_user, on_ollama, budgets, settings):
    settings.TIME_ZONE = "Pacific/Auckland"
    budgets(default={"day_tokens": 100})
    midnight = start_of_today("Pacific/Auckland")
    used(chat_user, 5000, when=midnight - datetime.timedelta(seconds=1))  # yesterday, in Auckland
    on_ollama.reply("A new day.")
    assert ask(api, chat_user).status_code == 200
    used(chat_user, 100, when=midnight + datetime.timedelta(seconds=1))
    body = ask(api, chat_user).json()
    assert body["code"] == "budget_exceeded"
    assert (midnight + datetime.timedelta(days=1)).strftime("%Y-%m-%d 00:00 NZ") in body["message"]


def test_the_monthly_count_starts_again_on_the_first(api, chat_user, on_ollama, budgets):
    budgets(default={"month_tokens": 100})
    first = start_of_today().replace(day=1)
    used(chat_user, 5000, when=first - datetime.timedelta(seconds=1))  # last month
    on_ollama.reply("A new month.")
    assert ask(api, chat_user).status_code == 200
    used(chat_user, 100, when=first)
    body = ask(api, chat_user).json()
    next_first = (first + datetime.timedelta(days=32)).replace(day=1)
    assert body["code"] == "budget_exceeded"
    assert "monthly chat limit of 100 tokens" in body["message"]
    assert next_first.strftime("%Y-%m-%d 00:00 UTC") in body["message"]


def test_models_api_shows_what_is_left(api, chat_user, on_ollama, budgets):
    budgets(default={"day_tokens": 1000, "month_tokens": 50_000})
    used(chat_user, 250)
    used(
        chat_user,
        700,
        when=start_of_today() - datetime.timedelta(days=1) if start_of_today().day > 1 else start_of_today(),
    )
    budget = api(chat_user).get("/api/plugins/chatbox/models/").json()["budget"]
    limits = {entry["limit"]: entry for entry in budget["limits"]}
    assert limits["day_tokens"]["remaining"] == (750 if start_of_today().day > 1 else 50)
    assert limits["month_tokens"]["used"] == 950 and limits["month_tokens"]["remaining"] == 49_050
    assert limits["day_tokens"]["resets"].startswith((start_of_today() + datetime.timedelta(days=1)).date().isoformat())
    assert budget["exempt_models"] == []


def test_no_budget_field_without_limits(api, chat_user, on_ollama):
    assert api(chat_user).get("/api/plugins/chatbox/models/").json()["budget"] is None


def test_simultaneous_questions_from_one_user_let_only_one_start(chat_user, on_ollama, budgets):
    """Eight questions at once (as from eight tabs or workers), 1 token below the limit: exactly one starts."""
    budgets(default={"day_tokens": 1000})
    used(chat_user, 999)
    barrier = threading.Barrier(8)
    outcomes = []

    def check():
        try:
            session = ChatSession.for_user(chat_user)
            barrier.wait()
            session.check("How many sites?")
            outcomes.append("started")
        except Refused as exc:
            outcomes.append(exc.event.code)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["in_progress"] * 7 + ["started"]
    cache.delete(f"netbox_chatbox:budget:{chat_user.pk}")  # the started turn would release it when it ends


async def test_a_second_tab_waits_for_the_running_answer_then_the_limit_applies(chat_user, on_ollama, budgets):
    await sync_to_async(budgets)(default={"day_tokens": 1000})
    await sync_to_async(used)(chat_user, 990)
    on_ollama.reply("Counting ", "the ", "racks ", "now.", chunk_delay=0.3, prompt_eval_count=30)
    first, _ = await open_socket(chat_user)
    second, _ = await open_socket(chat_user)
    await first.event(), await second.event()  # session events
    await first.send({"type": "chat", "message": "How many racks?"})
    assert (await first.event())["type"] == "delta"  # answering
    refused = await second.chat("And sites?")
    assert refused[-1]["code"] == "in_progress"
    done = await first.until("complete", "error")
    assert done[-1]["type"] == "complete"
    refused = await second.chat("And sites?")
    assert refused[-1]["code"] == "budget_exceeded"
    await first.close(), await second.close()


def test_bad_budgets_are_reported_by_netbox_check(chatbox_config):
    from netbox_chatbox.checks import check_settings

    chatbox_config(budgets={"default": {"day_tokens": "lots"}})
    errors = [e for e in check_settings() if e.id == "netbox_chatbox.E001"]
    assert [e.msg for e in errors] == [
        "PLUGINS_CONFIG['netbox_chatbox']: 'budgets'['default']['day_tokens'] must be a number ≥ 0 or None, not 'lots'"
    ]

    values, errors = conf.validate(
        {
            "budgets": {
                "default": {"day_tokens": -1, "weekly": 5},
                "groups": {"noc": "lots"},
                "exempt_local_models": "yes",
            }
        }
    )
    assert values["budgets"] == {"default": {}, "groups": {"noc": {}}, "exempt_local_models": True}
    text = "\n".join(errors)
    assert "'budgets'['default']['day_tokens'] must be a number ≥ 0 or None, not -1" in text
    assert "unknown limit 'weekly'" in text and "'budgets'['groups']['noc'] must be a dict" in text
    assert "'exempt_local_models'] must be True or False" in text
