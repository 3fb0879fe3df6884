"""The model's proposal tools: validate operations (nothing applied) and store them as a Proposal.

:func:`propose` runs inside run_tool's rolled-back transaction (with writes allowed, see Tool.writes_proposal);
:func:`store` then saves the Proposal in a transaction of its own, so only the proposal row is written.
"""

from datetime import timedelta

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from ..conf import get_settings
from ..tools.types import ToolError
from . import branching, engine
from .models import Proposal

OPERATION_SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["create", "update", "delete"]},
        "object_type": {"type": "string", "description": "'app_label.model', e.g. dcim.device"},
        "id": {"type": "integer", "minimum": 1, "description": "the object to update or delete"},
        "data": {
            "type": "object",
            "description": "fields as NetBox's REST API writes them (related objects "
            'by id), e.g. {"status": "offline"}',
        },
    },
    "required": ["action", "object_type"],
    "additionalProperties": False,
}


def _check(operations):
    if not get_settings().enable_changes:
        raise ToolError("changes through the chat are disabled by the NetBox administrator (enable_changes)")
    cap = get_settings().max_bulk_operations
    if not operations:
        raise ToolError("no operations given")
    if len(operations) > cap:
        raise ToolError(f"{len(operations)} operations exceed the limit of {cap} per proposal; split them")
    for number, op in enumerate(operations, 1):
        if op["action"] != "create" and op.get("id") is None:
            raise ToolError(f"operation {number}: {op['action']} needs the object's id")
        if op["action"] == "create" and op.get("id") is not None:
            raise ToolError(f"operation {number}: create takes no id")
        if op["action"] != "delete" and not op.get("data"):
            raise ToolError(f"operation {number}: {op['action']} needs data (the fields to set)")


def propose(user, operations, summary=""):
    """Validate the operations as the user; the result carries the draft that :func:`store` saves."""
    operations = [{k: v for k, v in op.items() if v is not None} for op in operations]
    _check(operations)
    outcomes = engine.dry_run(operations, user)
    counts = {}
    for op in operations:
        counts[op["action"]] = counts.get(op["action"], 0) + 1
    summary = (summary or ", ".join(f"{n} {action}" for action, n in counts.items()))[:300]
    return {"draft": {"summary": summary, "operations": operations, "outcomes": outcomes}}


def propose_create(user, object_type, data, summary=""):
    return propose(user, [{"action": "create", "object_type": object_type, "data": data}], summary)


def propose_update(user, object_type, id, data, summary=""):
    return propose(user, [{"action": "update", "object_type": object_type, "id": id, "data": data}], summary)


def propose_delete(user, object_type, id, summary=""):
    return propose(user, [{"action": "delete", "object_type": object_type, "id": id}], summary)


def store(user, result: dict, conversation=None) -> dict:
    """Save the validated draft as a pending Proposal, in the active branch (it applies there); return what
    the model reads (never the secrets)."""
    draft = result["draft"]
    operations, outcomes = draft["operations"], draft["outcomes"]
    with transaction.atomic():
        proposal = Proposal.objects.create(
            owner=user,
            conversation=conversation,
            summary=draft["summary"],
            operations=operations,
            before=[o["before"] for o in outcomes],
            after=[o["after"] for o in outcomes],
            fingerprints=[o["fingerprint"] for o in outcomes],
            branch=branch.schema_id if (branch := branching.active_branch()) else "",
            expires=timezone.now() + timedelta(seconds=get_settings().proposal_ttl),
        )
    return describe(proposal, user, outcomes)


def adopt(user, proposal_ids, conversation) -> None:
    """Link the proposals a chat turn made to its conversation (stored with the answer; the agents'
    tool calls may run before a new conversation's row exists)."""
    if proposal_ids and conversation is not None:
        Proposal.objects.filter(pk__in=proposal_ids, owner=user, conversation=None).update(conversation=conversation)


def describe(proposal: Proposal, user, outcomes=None) -> dict:
    """A proposal as the model, the API and the card see it, related objects named as ``user`` may view them.

    A pending proposal past its expiry reads as ``expired`` (evaluated on read; housekeeping stores it)."""
    if outcomes is None:
        outcomes = [
            {"before": b, "after": a, "id": op.get("id"), "display": _display(op, b, a)}
            for op, b, a in zip(proposal.operations, proposal.before, proposal.after, strict=True)
        ]
    return {
        "proposal_id": proposal.pk,
        "summary": proposal.summary,
        "status": "expired" if proposal.status == "pending" and proposal.expired else proposal.status,
        "count": len(proposal.operations),
        "expires": proposal.expires.isoformat(),
        "changes": engine.diff(proposal.operations, outcomes, user),
        "apply_url": reverse("plugins-api:netbox_chatbox-api:proposal-apply", args=[proposal.pk]),
        **({"branch": _branch_name(proposal.branch)} if proposal.branch else {}),
        "note": "Nothing has changed yet: the user reviews this proposal and applies or discards it.",
    }


def _branch_name(schema_id) -> str:
    """The branch's name as netbox-branching shows it; its schema id once the branch is deleted."""
    if branching.installed():
        from netbox_branching.models import Branch

        if branch := Branch.objects.filter(schema_id=schema_id).first():
            return str(branch)
    return schema_id


def _display(op, before, after):
    snapshot = after or before or {}
    return str(snapshot.get("name") or snapshot.get("display") or f"{op['object_type']} #{op.get('id', 'new')}")
