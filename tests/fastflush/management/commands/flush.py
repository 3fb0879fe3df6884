"""A faster ``flush`` for the test database, which Django runs after every transactional test.

Django's own flush TRUNCATEs all ~210 NetBox tables, then re-creates content types, object types
and permissions (post_migrate): about 1.2 s per test, over a minute for the suite. This one
deletes the rows of the tables that have any, in one transaction (NetBox's foreign keys are
deferred), and keeps the rows that migrating put there, so nothing needs re-creating: ~40 ms.
The database ends as it started: freshly migrated and empty.
"""

from django.core.management.commands import flush
from django.db import connections, transaction

# Filled by migrate and post_migrate; the snapshot the test database comes from has rows only here.
MIGRATION_TABLES = {"django_migrations", "django_content_type", "auth_permission", "core_objecttype"}


class Command(flush.Command):
    def handle(self, **options):
        if options["interactive"]:  # a person at the prompt: Django's own command
            return super().handle(**options)
        connection = connections[options["database"]]
        quote = connection.ops.quote_name
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            tables = [t for t in connection.introspection.table_names(cursor) if t not in MIGRATION_TABLES]
            cursor.execute(
                " UNION ALL ".join(
                    f"SELECT {i} FROM (SELECT 1 FROM {quote(table)} LIMIT 1) AS t{i}" for i, table in enumerate(tables)
                )
            )
            for (index,) in cursor.fetchall():
                cursor.execute(f"DELETE FROM {quote(tables[index])}")
