"""The statement timeout: a tool query that runs too long is cancelled and said so.

A second database connection holds a lock on the table the tool reads, so the tool's query
really waits in PostgreSQL until ``tool_statement_timeout_ms`` cancels it. (Its own module:
the shared data fixture keeps a transaction open whose locks would block the lock taker.)
"""

import asyncio
import threading
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection

from netbox_chatbox.agents.tooling import ToolScope, call_tool
from tests.fakes.helpers import run
from tests.test_tools import call, plugins_config


@contextmanager
def table_locked(table):
    """Another connection holds an exclusive lock on ``table`` (SQL: schema-qualified if need be) until the block
    ends or ``release()``, which the block receives."""
    db = connection.settings_dict
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with psycopg.connect(dbname=db["NAME"], host=db["HOST"], port=db["PORT"], user=db["USER"]) as other:
            other.execute("SET lock_timeout = '5s'")
            other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(20)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10), "could not take the lock"
        yield release.set
    finally:
        release.set()
        holder.join(25)


def test_statement_timeout_cancels_a_slow_query_and_the_connection_stays_usable(superuser):
    with table_locked("circuits_provider"), plugins_config(tool_statement_timeout_ms=200):
        result = call(superuser, "count_objects", object_type="circuits.provider")
    assert result == {
        "error": "the query took longer than 200 ms and was cancelled; narrow it with filters or a smaller limit"
    }
    assert call(superuser, "count_objects", object_type="circuits.provider") == {
        "object_type": "circuits.provider",
        "count": 0,
    }
    with connection.cursor() as cursor:  # the timeout and read-only mode ended with the tool call
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
        cursor.execute("SHOW transaction_read_only")
        assert cursor.fetchone()[0] == "off"


@pytest.mark.django_db(transaction=True)
def test_a_slow_tool_call_does_not_hold_up_other_chats(superuser):
    """Tool calls (as the agents make them) run side by side: one stuck on a slow query blocks no other."""

    async def slow_then_fast(release):
        slow = asyncio.ensure_future(
            call_tool("count_objects", {"object_type": "circuits.provider"}, ToolScope(superuser))
        )
        await asyncio.sleep(0.3)  # the slow call is now waiting for the lock
        fast = await asyncio.wait_for(
            call_tool("count_objects", {"object_type": "dcim.site"}, ToolScope(superuser)), 10
        )
        slow_was_waiting = not slow.done()
        release()
        return fast, slow_was_waiting, await slow

    with table_locked("circuits_provider") as release, plugins_config(tool_statement_timeout_ms=15000):
        fast, slow_was_waiting, slow = run(slow_then_fast, release)
    assert fast == {"object_type": "dcim.site", "count": 0} and slow_was_waiting
    assert slow == {"object_type": "circuits.provider", "count": 0}
