"""Issue 16: the usage view and API — figures per period, user and model equal the stored messages.

Expected figures are computed here in Python from the same rows (by local date in the requested time
zone, percentiles by linear interpolation like PostgreSQL's percentile_cont) and compared with what the
page, its CSV export and the API show.
"""

import csv
import datetime
import io
import random
import re
import zoneinfo
from collections import defaultdict
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from netbox_chatbox.models import Conversation, Message

from .conftest import grant

API = "/api/plugins/chatbox/usage/"
PAGE = "/plugins/chatbox/usage/"
SECRET_TITLE = "Firewall passwords of AMS1"
SECRET_TEXT = "the core switch admin password is hunter2"
NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture
def auditor(db):
    """May see usage (the custom action view_usage), nothing else."""
    user = get_user_model().objects.create_user("dora", password="dora-pass-123")
    grant(user, Conversation, ["view_usage"])
    return user


def _message(conversation, role, created, **fields):
    message = Message.objects.create(conversation=conversation, role=role, content=fields.pop("content", "x"), **fields)
    Message.objects.filter(pk=message.pk).update(created=created)
    return message


@pytest.fixture
def history(db, chat_user):
    """40 days of answers and errors by two users on three models, many of them near midnight UTC."""
    carol = get_user_model().objects.create_user("carol", password="carol-pass-123")
    rng = random.Random(16)
    conversations = {}
    for user in (chat_user, carol):
        for model_id, path in (("claude-sonnet-4-5", "sdk"), ("auto", "sdk"), ("ollama-qwen2.5", "litellm")):
            conversations[user.username, model_id] = Conversation.objects.create(
                owner=user, title=SECRET_TITLE, model_id=model_id, path=path
            )
    start = NOW.replace(hour=0, minute=0, second=0, microsecond=0) - datetime.timedelta(days=39)
    messages = []
    for _ in range(160):
        conversation = rng.choice(list(conversations.values()))
        created = start + datetime.timedelta(
            days=rng.randrange(40), hours=rng.choice((0, 0, 11, 12, 23, 23)), minutes=rng.randrange(60)
        )
        created = min(created, NOW - datetime.timedelta(minutes=1))
        messages.append(Message(conversation=conversation, role="user", content=SECRET_TEXT, created=created))
        if rng.random() < 0.15:
            messages.append(
                Message(conversation=conversation, role="error", content="The model provider failed", created=created)
            )
            continue
        local = conversation.model_id == "ollama-qwen2.5"
        messages.append(
            Message(
                conversation=conversation,
                role="assistant",
                content=SECRET_TEXT,
                model=conversation.model_id,
                input_tokens=rng.randrange(10, 5000),
                output_tokens=rng.randrange(1, 900),
                cost_usd=None if local else Decimal(rng.randrange(1, 90000)) / 10**6,
                duration_ms=rng.randrange(200, 30000),
                fallback=local and rng.random() < 0.3,
                tool_calls=[{"id": str(i), "tool": "query", "ok": True} for i in range(rng.randrange(4))],
                interrupted=rng.random() < 0.1,
                created=created,
            )
        )
    times = [m.created for m in messages]
    messages = Message.objects.bulk_create(messages)  # (auto_now_add sets "now"…)
    for message, created in zip(messages, times, strict=True):
        message.created = created
    Message.objects.bulk_update(messages, ["created"])  # (…so the times are set afterwards)
    return [chat_user, carol]


def _percentile(values, fraction):
    if not values:
        return None
    values = sorted(values)
    position = (len(values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return round(values[low] + (values[high] - values[low]) * (position - low), 1)


def _bucket(created, period, tz):
    day = created.astimezone(tz).date()
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def expected(period, tz, since, until, users=None, models=None):
    """{(period start, username, model): figures} from the stored rows, computed in Python."""
    groups = defaultdict(
        lambda: {
            "answers": 0,
            "errors": 0,
            "fallbacks": 0,
            "tool_calls": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": Decimal(0),
            "durations": [],
        }
    )
    for m in Message.objects.filter(role__in=("assistant", "error")).select_related("conversation__owner"):
        local_day = m.created.astimezone(tz).date()
        if not since <= local_day <= until:
            continue
        username, model_id = m.conversation.owner.username, m.conversation.model_id
        if (users and username not in users) or (models and model_id not in models):
            continue
        g = groups[_bucket(m.created, period, tz), username, model_id]
        if m.role == "error":
            g["errors"] += 1
            continue
        g["answers"] += 1
        g["fallbacks"] += m.fallback
        g["tool_calls"] += len(m.tool_calls)
        g["input_tokens"] += m.input_tokens or 0
        g["output_tokens"] += m.output_tokens or 0
        g["cost_usd"] += m.cost_usd or 0
        g["durations"].append(m.duration_ms)
    result = {}
    for key, g in groups.items():
        durations = g.pop("durations")
        result[key] = {
            **g,
            "duration_p50_ms": _percentile(durations, 0.5),
            "duration_p95_ms": _percentile(durations, 0.95),
        }
    return result


def _api_rows(body):
    return {
        (datetime.date.fromisoformat(r["period_start"]), r["username"], r["model"]): {
            **{
                k: r[k]
                for k in (
                    "answers",
                    "errors",
                    "fallbacks",
                    "tool_calls",
                    "input_tokens",
                    "output_tokens",
                    "duration_p50_ms",
                    "duration_p95_ms",
                )
            },
            "cost_usd": Decimal(str(r["cost_usd"])),
        }
        for r in body["results"]
    }


@pytest.mark.parametrize("tz_name", ["UTC", "Pacific/Auckland", "America/Los_Angeles"])
@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_api_figures_equal_the_stored_messages(api, auditor, history, period, tz_name):
    tz = zoneinfo.ZoneInfo(tz_name)
    until = NOW.astimezone(tz).date()
    since = until - datetime.timedelta(days=45)
    response = api(auditor, token=True).get(
        API, {"period": period, "tz": tz_name, "since": since.isoformat(), "until": until.isoformat()}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    want = expected(period, tz, since, until)
    got = _api_rows(body)
    for key in want:
        assert got.get(key) == want[key], key
    assert got == want
    # The totals are the sums of the rows (and of the stored messages), percentiles over all answers.
    for figure in ("answers", "errors", "fallbacks", "tool_calls", "input_tokens", "output_tokens"):
        assert body["totals"][figure] == sum(g[figure] for g in want.values())
    assert Decimal(str(body["totals"]["cost_usd"])) == sum(g["cost_usd"] for g in want.values())
    answers = Message.objects.filter(role="assistant")
    assert body["totals"]["answers"] == answers.count()
    assert body["totals"]["duration_p50_ms"] == _percentile(list(answers.values_list("duration_ms", flat=True)), 0.5)


def test_time_zone_moves_an_answer_to_another_day(api, auditor, chat_user):
    """23:30 UTC on the 1st is the 2nd in Auckland and still the 1st in Los Angeles."""
    conversation = Conversation.objects.create(owner=chat_user, model_id="auto", path="sdk")
    day = (NOW - datetime.timedelta(days=3)).date()
    _message(
        conversation,
        "assistant",
        datetime.datetime.combine(day, datetime.time(23, 30), tzinfo=datetime.UTC),
        input_tokens=7,
        output_tokens=3,
        duration_ms=100,
    )
    client = api(auditor)
    for tz_name, local_day in (
        ("UTC", day),
        ("Pacific/Auckland", day + datetime.timedelta(days=1)),
        ("America/Los_Angeles", day),
    ):
        rows = client.get(API, {"tz": tz_name}).json()["results"]
        assert [(r["period_start"], r["input_tokens"]) for r in rows] == [(local_day.isoformat(), 7)], tz_name


def test_filters_by_user_model_and_range(api, auditor, history):
    until = NOW.date()
    since = until - datetime.timedelta(days=9)
    response = api(auditor).get(
        API, {"user": "alice", "model": ["auto", "ollama-qwen2.5"], "since": since, "until": until, "tz": "UTC"}
    )
    assert response.status_code == 200
    rows = _api_rows(response.json())
    assert rows == expected("day", datetime.UTC, since, until, users={"alice"}, models={"auto", "ollama-qwen2.5"})
    assert rows and {user for _, user, _ in rows} == {"alice"}


@pytest.mark.parametrize(
    "params, field",
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"period": "year"}, "period"),
        ({"since": "2026-02-30"}, "since"),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "__all__"),
        ({"user": "nobody"}, "user"),
        ({"since": "2000-01-01", "until": "2026-01-01"}, "__all__"),
    ],
)
def test_bad_filters_are_a_clear_400(api, auditor, params, field):
    response = api(auditor).get(API, params)
    assert response.status_code == 400
    assert field in response.json()


def test_without_the_permission_page_and_api_are_403(api, client, chat_user, plain_user, history):
    for user in (chat_user, plain_user):
        assert api(user, token=True).get(API).status_code == 403
        client.force_login(user)
        assert client.get(PAGE).status_code == 403
    assert api().get(API).status_code in (401, 403)


def test_usage_shows_figures_never_conversation_content(api, client, auditor, history):
    client.force_login(auditor)
    page = client.get(PAGE).content.decode()
    body = api(auditor).get(API).content.decode()
    export = client.get(PAGE, {"export": "csv"}).content.decode()
    for text in (page, body, export):
        assert "alice" in text and "carol" in text
        assert SECRET_TITLE not in text and SECRET_TEXT not in text and "hunter2" not in text


def test_page_table_sorts_and_exports_csv_like_netbox(client, auditor, history):
    client.force_login(auditor)
    response = client.get(PAGE, {"period": "month", "tz": "UTC", "sort": "-cost_usd"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Chat usage" in html and 'id="chatbox-usage-table"' in html
    want = expected("month", datetime.UTC, NOW.date() - datetime.timedelta(days=29), NOW.date())
    export = client.get(PAGE, {"period": "month", "tz": "UTC", "sort": "-cost_usd", "export": "csv"})
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    assert "netbox_chatbox_usage.csv" in export["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert list(rows[0])[:4] == ["Period", "User", "Model", "Answers"]
    costs = [Decimal(r["Cost (USD)"]) for r in rows]
    assert costs == sorted(costs, reverse=True)
    assert {
        (r["Period"], r["User"], r["Model"]): (int(r["Answers"]), int(r["Tokens in"]), Decimal(r["Cost (USD)"]))
        for r in rows
    } == {(k[0].isoformat(), k[1], k[2]): (v["answers"], v["input_tokens"], v["cost_usd"]) for k, v in want.items()}


def test_chart_draws_each_model_per_period(client, auditor, history):
    client.force_login(auditor)
    html = client.get(PAGE, {"period": "week", "tz": "UTC", "chart": "answers"}).content.decode()
    assert "<svg" in html and 'aria-label="Answers per period"' in html
    want = expected("week", datetime.UTC, NOW.date() - datetime.timedelta(days=29), NOW.date())
    per_model = defaultdict(int)
    for (_, _, model_id), g in want.items():
        per_model[model_id] += g["answers"]
    drawn = defaultdict(int)
    for model_id, value in re.findall(r'data-model="([^"]+)" data-value="(\d+)"', html):
        drawn[model_id] += int(value)
    assert dict(drawn) == {k: v for k, v in per_model.items() if v}


def test_menu_shows_usage_only_with_the_permission(client, auditor, chat_user):
    client.force_login(auditor)
    assert PAGE in client.get("/").content.decode()
    client.force_login(chat_user)
    assert PAGE not in client.get("/").content.decode()


@pytest.mark.parametrize("period, tz_name", [("day", "Pacific/Auckland"), ("week", "America/Los_Angeles")])
def test_chat_tool_calls_per_tool_equal_the_stored_answers(api, auditor, history, period, tz_name):
    """The tool-call table's chat rows (unnested in PostgreSQL) bucket like the answers do."""
    tz = zoneinfo.ZoneInfo(tz_name)
    until = NOW.astimezone(tz).date()
    since = until - datetime.timedelta(days=45)
    body = api(auditor).get(API, {"period": period, "tz": tz_name, "since": since, "until": until}).json()
    want = defaultdict(int)
    for m in Message.objects.filter(role="assistant").select_related("conversation__owner"):
        for call in m.tool_calls:
            want[_bucket(m.created, period, tz).isoformat(), m.conversation.owner.username, call["tool"]] += 1
    got = {(r["period_start"], r["username"], r["tool"]): r["calls"] for r in body["tool_calls"]}
    assert got == dict(want) and want
    assert {r["source"] for r in body["tool_calls"]} == {"chat"}
    assert body["tool_call_totals"]["chat"]["calls"] == body["totals"]["tool_calls"] == sum(want.values())
