"""Time of the usage aggregates (page/API) and of the pre-turn budget check on a large message table.

Inserts ``--messages`` answers and errors of 50 users on 5 models over 90 days (and ``--mcp-calls`` MCP tool
calls of the same users) inside a transaction
that is rolled back at the end (the database is left as it was), then times the usage query for the
last 30 and 90 days (per day, and per month), the tool-call table (the chat's and MCP's per user and tool)
and ``budgets.status`` for one user.

    NETBOX_DB=netbox_chatbox .venv/bin/python bench/usage_bench.py [--messages 200000]

The database must be migrated (scripts/demo.sh makes ``netbox_chatbox``).
"""

import argparse
import datetime
import functools
import os
import statistics
import sys
import time
import zoneinfo
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "devconf")]
os.environ.setdefault("NETBOX_DB", "netbox_chatbox")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from netbox_chatbox import budgets, conf, usage, usage_tools  # noqa: E402
from netbox_chatbox.models import Conversation  # noqa: E402

MODELS = (
    ("auto", "sdk"),
    ("claude-sonnet-4-5", "sdk"),
    ("claude-haiku-4-5", "sdk"),
    ("claude-opus-4", "sdk"),
    ("ollama-qwen2.5", "litellm"),
)


def timed(func, runs=5):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = func()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


class Rollback(Exception):
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--mcp-calls", type=int, default=100_000)
    args = parser.parse_args()
    try:
        with transaction.atomic():
            users = [get_user_model().objects.create_user(f"bench-usage-{i}") for i in range(50)]
            ids = [Conversation.objects.create(owner=u, model_id=m, path=p).pk for u in users for m, p in MODELS]
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO netbox_chatbox_message (conversation_id, role, content, model, tool_calls,
                        interrupted, fallback, input_tokens, output_tokens, cost_usd, duration_ms, created,
                        usage_estimated, truncated)
                    SELECT (%s::bigint[])[1 + floor(random() * %s)::int],
                           CASE WHEN random() < 0.05 THEN 'error' ELSE 'assistant' END, '', '',
                           '[{"tool": "query_objects", "ok": true}]'::jsonb, false, random() < 0.02,
                           (random() * 5000)::int, (random() * 800)::int, (random() * 0.1)::numeric(12, 6),
                           (200 + random() * 30000)::int, now() - random() * interval '90 days', false, false
                    FROM generate_series(1, %s)""",
                    [ids, len(ids), args.messages],
                )
                cursor.execute(
                    """
                    INSERT INTO netbox_chatbox_mcptoolcall (user_id, tool, outcome, duration_ms, result_chars, created)
                    SELECT (%s::bigint[])[1 + floor(random() * %s)::int],
                           (ARRAY['search', 'query_objects', 'get_object'])[1 + floor(random() * 3)::int],
                           CASE WHEN random() < 0.05 THEN 'error' ELSE 'ok' END, (random() * 300)::int,
                           (random() * 20000)::int, now() - random() * interval '90 days'
                    FROM generate_series(1, %s)""",
                    [[u.pk for u in users], len(users), args.mcp_calls],
                )
                cursor.execute("ANALYZE netbox_chatbox_message")
                cursor.execute("ANALYZE netbox_chatbox_mcptoolcall")
            today = timezone.now().date()
            print(f"{args.messages:,} messages, {args.mcp_calls:,} MCP tool calls, 50 users, 5 models, 90 days")
            for days, period in ((30, "day"), (90, "day"), (90, "month")):
                filters = {
                    "period": period,
                    "tz": zoneinfo.ZoneInfo("UTC"),
                    "user": None,
                    "model": None,
                    "since": today - datetime.timedelta(days=days - 1),
                    "until": today,
                }
                ms, rows = timed(functools.partial(usage.usage_rows, filters))
                ms_totals, _ = timed(functools.partial(usage.usage_totals, filters))
                ms_tools, tool_rows = timed(functools.partial(usage_tools.tool_call_rows, filters))
                ms_tool_totals, _ = timed(functools.partial(usage_tools.tool_call_totals, filters, tool_rows))
                print(
                    f"usage rows, {days} days per {period}: {ms:7.1f} ms ({len(rows):,} rows); "
                    f"totals: {ms_totals:6.1f} ms; tool calls: {ms_tools:7.1f} ms ({len(tool_rows):,} rows), "
                    f"their totals: {ms_tool_totals:6.1f} ms"
                )
            config = {**conf._raw_config(), "budgets": {"default": {"day_tokens": 10**9, "month_cost_usd": 10**6}}}
            with override_settings(PLUGINS_CONFIG={"netbox_chatbox": config}):
                ms, _ = timed(lambda: budgets.status(users[0]), runs=20)
                print(f"budget check (day + month, one user): {ms:.1f} ms")
            raise Rollback
    except Rollback:
        pass


if __name__ == "__main__":
    main()
