"""/api/plugins/chatbox/proposals/: the user's own change proposals; apply or discard one.

Only the owner sees a proposal (anyone else gets 404, as for one that does not exist). Apply and
discard are writes: a session with its CSRF token or a write-enabled API token (CanChat).
"""

from core.models import ObjectChange
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from netbox.api.viewsets.mixins import discard_events_on_rollback
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from ..conf import get_settings
from ..permissions import CanChat
from ..proposals import branching, engine
from ..proposals.jobs import EXPIRED
from ..proposals.models import Proposal
from ..proposals.tools import describe

MESSAGE_PREFIX = "Applied from the chat assistant: "


class ProposalSerializer(serializers.Serializer):
    """A proposal as the card shows it: per object, the fields that change (secrets removed)."""

    proposal_id = serializers.IntegerField()
    summary = serializers.CharField()
    status = serializers.ChoiceField(choices=Proposal.STATUS_CHOICES)
    count = serializers.IntegerField()
    expires = serializers.DateTimeField()
    changes = serializers.ListField(child=serializers.DictField())
    apply_url = serializers.CharField()
    conversation_url = serializers.CharField(required=False)
    branch = serializers.CharField(required=False, help_text="the netbox-branching branch it applies in (absent: main)")
    changelog_url = serializers.CharField(required=False, help_text="the change-log entries of an applied proposal")
    error = serializers.CharField(required=False)


def _body(proposal, user, outcomes=None, error=""):
    body = describe(proposal, user, outcomes)
    body.pop("note")
    if proposal.conversation_id:
        body["conversation_url"] = proposal.conversation.get_absolute_url()
    if proposal.status == "applied" and user.has_perm("core.view_objectchange"):
        try:
            branch = branching.get(proposal.branch)
        except branching.BranchUnavailable:  # merged, archived or deleted since: its change log is not at hand
            branch = None
        else:
            with branching.activated(branch):  # a branch's change log is in its schema
                request_id = (
                    ObjectChange.objects.restrict(user, "view")
                    .filter(
                        user=proposal.owner,
                        message__startswith=MESSAGE_PREFIX,
                        message__contains=f"(proposal {proposal.pk}",
                    )
                    .values_list("request_id", flat=True)
                    .first()
                )
            if request_id:
                # In a branch, the link activates it (netbox-branching's query parameter), as its own links do.
                where = f"&{branching.url_parameter(branch)}" if branch else ""
                body["changelog_url"] = f"{reverse('core:objectchange_list')}?request_id={request_id}{where}"
    if error or proposal.error:
        body["error"] = error or proposal.error
    return body


def _message(proposal) -> str:
    """The change log message: what was applied, and from which conversation."""
    text = f"{MESSAGE_PREFIX}{proposal.summary} (proposal {proposal.pk}"
    if proposal.conversation_id:
        text += f", {proposal.conversation.get_absolute_url()}"
    return text + ")"


class ProposalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your change proposals, newest first; apply one (all operations or none) or discard it."""

    queryset = Proposal.objects.all()  # for the schema; requests use get_queryset()
    serializer_class = ProposalSerializer
    permission_classes = [CanChat]
    lookup_value_regex = r"\d{1,18}"

    def get_queryset(self):
        return Proposal.objects.filter(owner=self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([_body(p, request.user) for p in page])

    def retrieve(self, request, *args, **kwargs):
        return Response(_body(self.get_object(), request.user))

    def _locked(self, pk) -> Proposal:
        """The owner's proposal, row-locked until the transaction ends: concurrent applies take turns."""
        proposal = self.get_queryset().select_for_update().filter(pk=pk).first()
        if proposal is None:
            raise NotFound("No such proposal.")
        return proposal

    @extend_schema(
        request=None,
        responses={
            200: ProposalSerializer,
            400: ProposalSerializer,
            409: OpenApiResponse(ProposalSerializer, "stale, expired or not pending"),
        },
        operation_id="plugins_chatbox_proposals_apply",
    )
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Apply every operation as you, in one transaction, through NetBox's validation, permissions and
        change log. Refused (nothing applied) when an object changed since the proposal: the answer then
        carries the fresh diff, and applying again applies what it shows."""
        if not get_settings().enable_changes:
            return Response({"detail": "Changes through the chat are disabled by the administrator."}, status=403)
        with transaction.atomic():
            proposal = self._locked(pk)
            if proposal.status != "pending":
                return Response(
                    _body(proposal, request.user, error=f"This proposal is {proposal.status}; nothing was applied."),
                    status=409,
                )
            if proposal.expired:
                proposal.status, proposal.error = "expired", EXPIRED
                proposal.save(update_fields=["status", "error"])
                return Response(_body(proposal, request.user), status=409)
            try:
                branch = branching.get(proposal.branch)
            except branching.BranchUnavailable as e:
                return Response(_body(proposal, request.user, error=f"{e}; nothing was applied."), status=409)
            with branching.activated(branch):  # where it was proposed, whichever branch the request has active
                return self._apply(request, proposal)

    def _apply(self, request, proposal):
        """Apply a pending proposal (locked, in its branch); the response."""
        try:
            with branching.atomic(proposal.operations), discard_events_on_rollback(self):
                outcomes = engine.perform(
                    proposal.operations,
                    request.user,
                    message=_message(proposal),
                    request=request,
                    fingerprints=proposal.fingerprints,
                )
        except engine.StaleError as e:  # show what the user would now apply; the next apply applies it
            proposal.before = [o["before"] for o in e.outcome]
            proposal.after = [o["after"] for o in e.outcome]
            proposal.fingerprints = [o["fingerprint"] for o in e.outcome]
            proposal.save(update_fields=["before", "after", "fingerprints"])
            return Response(_body(proposal, request.user, e.outcome, error=str(e)), status=409)
        except engine.ProposalError as e:
            proposal.status, proposal.error = "failed", str(e)
            proposal.save(update_fields=["status", "error"])
            return Response(_body(proposal, request.user), status=400)
        proposal.status, proposal.applied, proposal.error = "applied", timezone.now(), ""
        for outcome in outcomes:  # the objects' ids (a created one's is known only now), for the links
            if outcome["after"] is not None:
                outcome["after"]["id"] = outcome["id"]
        proposal.after = [o["after"] for o in outcomes]
        proposal.save(update_fields=["status", "applied", "error", "after"])
        return Response(_body(proposal, request.user, outcomes))

    @extend_schema(
        request=None,
        responses={200: ProposalSerializer, 409: ProposalSerializer},
        operation_id="plugins_chatbox_proposals_discard",
    )
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        """Discard a pending proposal; NetBox is left untouched."""
        with transaction.atomic():
            proposal = self._locked(pk)
            if proposal.status != "pending":
                return Response(_body(proposal, request.user, error=f"This proposal is {proposal.status}."), status=409)
            proposal.status = "discarded"
            proposal.save(update_fields=["status"])
        return Response(_body(proposal, request.user))
