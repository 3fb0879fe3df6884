"""netbox-branching (optional): the branch a request works in, and transactions that cover it.

With netbox-branching installed and a branch active (its cookie or header, set by its middleware), NetBox's
database router sends the branch's objects to another connection (the branch's schema). A plain
``transaction.atomic()`` covers only the default connection and would leave those writes in autocommit:
a dry run would commit into the branch and an apply would not be all or nothing. :func:`atomic` covers
every connection the operations write to. Without netbox-branching this is one ordinary transaction.
"""

from contextlib import ExitStack, contextmanager, suppress

from django.db import DEFAULT_DB_ALIAS, router, transaction

from ..tools.types import ToolError, get_object_type


def active_branch_name() -> str | None:
    """The active netbox-branching branch, or None (not installed, or working in main)."""
    try:
        from netbox_branching.contextvars import active_branch
    except ImportError:
        return None
    branch = active_branch.get()
    return str(branch) if branch else None


def _aliases(operations) -> list[str]:
    aliases = {DEFAULT_DB_ALIAS}
    for op in operations:
        with suppress(ToolError):  # an unknown type: perform() refuses it with its message
            aliases.add(router.db_for_write(get_object_type(op["object_type"]).model))
    return sorted(aliases)


@contextmanager
def atomic(operations, rollback=False):
    """One transaction on each database the operations write to; ``rollback``: undo all of it at the end."""
    aliases = _aliases(operations)
    with ExitStack() as stack:
        for alias in aliases:
            stack.enter_context(transaction.atomic(using=alias))
        yield
        if rollback:
            for alias in aliases:
                transaction.set_rollback(True, using=alias)
