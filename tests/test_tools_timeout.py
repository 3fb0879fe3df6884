"""The statement timeout: a tool query that runs too long is cancelled and said so.

A second database connection holds a lock on the table the tool reads, so the tool's query
really waits in PostgreSQL until ``tool_statement_timeout_ms`` cancels it. (Its own module:
the shared data fixture keeps a transaction open whose locks would block the lock taker.)
"""
import threading

import psycopg
from django.db import connection

from tests.test_tools import call, plugins_config


def test_statement_timeout_cancels_a_slow_query_and_the_connection_stays_usable(superuser):
    db = connection.settings_dict
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with psycopg.connect(dbname=db["NAME"], host=db["HOST"], port=db["PORT"], user=db["USER"]) as other:
            other.execute("SET lock_timeout = '5s'")
            other.execute("LOCK TABLE circuits_provider IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10), "could not take the lock"
        with plugins_config(tool_statement_timeout_ms=200):
            result = call(superuser, "count_objects", object_type="circuits.provider")
    finally:
        release.set()
        holder.join(15)
    assert result == {"error": "the query took longer than 200 ms and was cancelled; narrow it with filters "
                               "or a smaller limit"}
    assert call(superuser, "count_objects", object_type="circuits.provider") == {
        "object_type": "circuits.provider", "count": 0}
    with connection.cursor() as cursor:  # the timeout and read-only mode ended with the tool call
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
        cursor.execute("SHOW transaction_read_only")
        assert cursor.fetchone()[0] == "off"
