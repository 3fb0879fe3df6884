"""netbox-branching (optional): the branch a chat works in, and transactions that cover it.

With netbox-branching installed and a branch active, NetBox's database router sends the branch's objects to
another connection (the branch's schema). Its request processor activates the branch named by its cookie (or,
for the REST API, its header) for each request; a chat turn outlives its request (SSE) or has none (the
WebSocket), so the session keeps the branch (:func:`from_scope`, :func:`active_branch`) and its tool calls run
inside :func:`activated`. A plain ``transaction.atomic()`` covers only the default connection and would leave
a branch's writes in autocommit: a dry run would commit into the branch and an apply would not be all or
nothing; :func:`atomic` covers every connection used. Without netbox-branching the branch is always None
and all of this is ordinary single-connection work.
"""

from contextlib import ExitStack, contextmanager, nullcontext, suppress
from http.cookies import SimpleCookie

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction

from ..tools.types import ToolError, get_object_type


class BranchUnavailable(ToolError):
    """A branch named by the client or a proposal that does not exist or is not ready; the message says which."""


def installed() -> bool:
    return apps.is_installed("netbox_branching")


def active_branch():
    """The active netbox-branching Branch, or None (not installed, or working in main)."""
    if not installed():
        return None
    from netbox_branching.contextvars import active_branch as var

    return var.get()


def activated(branch):
    """Work in ``branch`` (None: main, even inside a request that has a branch active)."""
    if not installed():
        return nullcontext()
    from netbox_branching.utilities import activate_branch

    return activate_branch(branch)


def run_in(branch, func, *args):
    """``func(*args)`` in ``branch`` (for work off the request, e.g. the socket's, in the session's threads)."""
    with activated(branch):
        return func(*args)


def alias(branch) -> str:
    """The database connection of a branch's schema (netbox-branching's router names it so)."""
    from netbox_branching.database import BranchAwareRouter

    return f"{BranchAwareRouter.connection_prefix}{branch.schema_name}"


def url_parameter(branch) -> str:
    """``_branch=<schema id>``: a NetBox link with it activates the branch (netbox-branching's query parameter)."""
    from netbox_branching.constants import QUERY_PARAM

    return f"{QUERY_PARAM}={branch.schema_id}"


def connection_aliases() -> list[str]:
    """The connections queries may use now: the default one and, with a branch active, the branch's."""
    branch = active_branch()
    return [DEFAULT_DB_ALIAS, alias(branch)] if branch else [DEFAULT_DB_ALIAS]


def get(schema_id: str):
    """The ready branch with this id (``""``: main, None). Raises :class:`BranchUnavailable` (sync: database)."""
    if not schema_id:
        return None
    if not installed():
        raise BranchUnavailable(f"branch {schema_id} cannot be used: netbox-branching is not installed")
    from netbox_branching.models import Branch

    branch = Branch.objects.filter(schema_id=schema_id).first()
    if branch is None:
        raise BranchUnavailable(f"branch {schema_id} no longer exists")
    if not branch.ready:
        raise BranchUnavailable(f"branch {branch} is not ready for use (status: {branch.status})")
    return branch


def from_scope(scope):
    """The branch a WebSocket handshake asks for, as netbox-branching reads a request: its header
    (``X-NetBox-Branch``, for scripts), else its cookie. A header naming no ready branch raises
    :class:`BranchUnavailable` (its middleware answers 400); a stale cookie means main, as there."""
    if not installed():
        return None
    from netbox_branching.constants import BRANCH_HEADER, COOKIE_NAME

    headers = {name.decode("latin1").lower(): value.decode("latin1") for name, value in scope.get("headers", [])}
    if schema_id := headers.get(BRANCH_HEADER.lower()):
        return get(schema_id)
    cookie = SimpleCookie()
    with suppress(Exception):  # a malformed cookie header: no branch, as Django's parsing would give
        cookie.load(headers.get("cookie", ""))
    if COOKIE_NAME in cookie:
        with suppress(BranchUnavailable):
            return get(cookie[COOKIE_NAME].value)
    return None


def refreshed(branch):
    """``branch`` as stored now; raises :class:`BranchUnavailable` if it was deleted or is not ready (sync)."""
    return get(branch.schema_id) if branch is not None else None


def _aliases(operations) -> list[str]:
    aliases = {DEFAULT_DB_ALIAS}
    for op in operations:
        with suppress(ToolError):  # an unknown type: perform() refuses it with its message
            aliases.add(router.db_for_write(get_object_type(op["object_type"]).model))
    return sorted(aliases)


@contextmanager
def atomic(operations=None, rollback=False):
    """One transaction on each database the operations write to (without ``operations``: every connection
    in use, see :func:`connection_aliases`); ``rollback``: undo all of it at the end. Yields the aliases."""
    aliases = _aliases(operations) if operations is not None else connection_aliases()
    with ExitStack() as stack:
        for name in aliases:
            stack.enter_context(transaction.atomic(using=name))
        yield [connections[name] for name in aliases]
        if rollback:
            for name in aliases:
                transaction.set_rollback(True, using=name)
