"""Validate and apply proposed operations the way NetBox's REST API writes objects.

One function, :func:`perform`, does both: it writes every operation through the model's own REST
serializer (``is_valid`` runs the model's ``full_clean``), checks the user's permissions as NetBox's
API viewsets do (the action on the type, then the saved object inside ``restrict(user, action)``),
and returns per-object before/after snapshots. Proposing calls it in a transaction that is rolled
back with change logging switched off; applying calls it in the transaction that commits, under
NetBox's request context, so the change log records the user and the request id.
"""

import hashlib
import json
import uuid

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import ProtectedError, RestrictedError
from django.test import RequestFactory
from netbox.context import current_request, events_queue
from utilities.api import get_serializer_for_model

from ..tools.types import ToolError, get_object_type, is_secret_name, scrub
from . import branching
from .display import Namer

# Operation → NetBox permission action (for has_perm and restrict)
ACTIONS = {"create": "add", "update": "change", "delete": "delete"}
MAX_ERROR_CHARS = 1000  # validation errors can quote the proposed values


class ProposalError(ToolError):
    """An operation NetBox would refuse; the message says which one and why."""


class StaleError(ProposalError):
    """An object changed since the proposal; ``outcome`` is the fresh before/after."""

    def __init__(self, message, outcome):
        super().__init__(message)
        self.outcome = outcome


def snapshot(obj) -> dict:
    """The object as NetBox's change log serializes it (JSON-safe)."""
    data = obj.serialize_object() if hasattr(obj, "serialize_object") else {}
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def fingerprint(data: dict | None) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, cls=DjangoJSONEncoder).encode()).hexdigest()


def _describe(number, op) -> str:
    target = f"{op.get('object_type')}" + (f" #{op['id']}" if op.get("id") is not None else "")
    return f"operation {number} ({op.get('action')} {target})"


def _errors(detail, prefix="") -> list[str]:
    """DRF's nested error detail as flat "field: message" lines."""
    if isinstance(detail, dict):
        return [
            line
            for key, value in detail.items()
            for line in _errors(
                value, f"{prefix}{'' if key == 'non_field_errors' else key}{'' if key == 'non_field_errors' else ': '}"
            )
        ]
    if isinstance(detail, (list, tuple)):
        return [line for value in detail for line in _errors(value, prefix)]
    return [f"{prefix}{detail}"]


def serializer_context(user, request=None) -> dict:
    """NetBox serializers read the request (user, URLs); proposing has none, so build one for the user."""
    if request is None:
        request = RequestFactory().post("/api/")
        request.user, request.id = user, uuid.uuid4()
    return {"request": request}


def perform(operations: list[dict], user, *, message: str = "", request=None, fingerprints=None) -> list[dict]:
    """Write ``operations`` in order in the caller's transaction as ``user``; the caller commits or rolls back.

    Returns one outcome per operation: {before, after, fingerprint, id, display}. Raises
    :class:`ProposalError` for anything NetBox's API would refuse, and :class:`StaleError` when
    ``fingerprints`` are given and an object no longer matches its snapshot from proposal time.
    """
    context = serializer_context(user, request)
    outcomes, stale = [], []
    for number, op in enumerate(operations, 1):
        action, where = op["action"], _describe(number, op)
        info = get_object_type(op["object_type"])
        model, meta = info.model, info.model._meta
        if not user.has_perm(f"{meta.app_label}.{ACTIONS[action]}_{meta.model_name}"):
            raise ProposalError(f"{where}: you have no permission to {action} {info.label} objects in NetBox")
        data = dict(op.get("data") or {})
        if secret := next((k for k in data if is_secret_name(k)), None):
            raise ProposalError(f"{where}: '{secret}' is a secret field; set it in NetBox itself, not through the chat")
        before = instance = None
        if action != "create":
            instance = model.objects.restrict(user, "view").filter(pk=op["id"]).first()
            if instance is None:
                raise ProposalError(f"{where}: no {info.label} with id {op['id']} (deleted, or not visible to you)")
            if not model.objects.restrict(user, ACTIONS[action]).filter(pk=instance.pk).exists():
                raise ProposalError(f"{where}: your permissions do not allow you to {action} {instance}")
            before = snapshot(instance)
            if fingerprints is not None and fingerprints[number - 1] != fingerprint(before):
                stale.append(where)
            if hasattr(instance, "snapshot"):
                instance.snapshot()  # the change log's "before"
        try:
            if action == "delete":
                instance._changelog_message = message
                instance.delete()
                after = None
            else:
                if message:
                    data["changelog_message"] = message
                serializer = get_serializer_for_model(model)(
                    instance, data=data, partial=instance is not None, context=context
                )
                if not serializer.is_valid():
                    raise ProposalError(f"{where}: " + "; ".join(_errors(serializer.errors))[:MAX_ERROR_CHARS])
                instance = serializer.save()
                # NetBox's API check: the saved object must still be within what the user may do.
                if not model.objects.restrict(user, ACTIONS[action]).filter(pk=instance.pk).exists():
                    raise ProposalError(
                        f"{where}: the result would be outside what your permissions allow you to {action}"
                    )
                after = snapshot(model.objects.get(pk=instance.pk))
        except (ProtectedError, RestrictedError) as e:
            raise ProposalError(
                f"{where}: other objects depend on {instance}: {', '.join(str(o) for o in list(e.args[1])[:5])}"
            ) from None
        except ValidationError as e:
            raise ProposalError(f"{where}: " + "; ".join(e.messages)) from None
        except ObjectDoesNotExist as e:
            raise ProposalError(f"{where}: {e}") from None
        outcomes.append(
            {
                "before": before,
                "after": after,
                "fingerprint": fingerprint(before) if before else "",
                "id": instance.pk,
                "display": str(instance),
            }
        )
    if stale:
        raise StaleError(
            f"changed in NetBox since the proposal: {', '.join(stale)}; review the fresh diff and apply again", outcomes
        )
    return outcomes


def dry_run(operations: list[dict], user) -> list[dict]:
    """Validate by writing and rolling back, with no change log, events or webhooks (no request context)."""
    request_token, queue_token = current_request.set(None), events_queue.set({})
    try:
        with branching.atomic(operations, rollback=True):  # every connection written, a branch's too
            outcomes = perform(operations, user)
    finally:
        current_request.reset(request_token)
        events_queue.reset(queue_token)
    return outcomes


def diff(operations: list[dict], outcomes: list[dict], user=None) -> list[dict]:
    """Per object: the fields that change, before → after, secrets removed (what the model and the card show).

    With ``user``, related objects are named and the object itself linked, as far as that user may view them
    (display.py). A created object is linked only once it exists (its snapshot then carries its id)."""
    namer, result = Namer(user), []
    for op, outcome in zip(operations, outcomes, strict=True):
        before, after = scrub(outcome["before"] or {}), scrub(outcome["after"] or {})
        model = get_object_type(op["object_type"]).model
        changes = {}
        if op["action"] != "delete":
            for key in sorted(set(before) | set(after)):
                if key in ("last_updated", "created", "id") or before.get(key) == after.get(key):
                    continue
                if op["action"] == "create" and after.get(key) in (None, "", [], {}):
                    continue
                changes[key] = {
                    "before": namer.value(model, key, before.get(key)),
                    "after": namer.value(model, key, after.get(key)),
                }
        entry = {
            "action": op["action"],
            "object_type": op["object_type"],
            "display": outcome["display"],
            "changes": changes,
        }
        if op["action"] != "create":
            entry["id"] = outcome["id"]
        pk = after.get("id") if op["action"] == "create" else outcome["id"]
        if link := namer.object(op["object_type"], pk):  # gone once a delete is applied
            entry["url"] = link.get("url")
        result.append(entry)
    return result
