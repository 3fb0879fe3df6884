"""Housekeeping: pending proposals past their expiry are stored as ``expired``, as NetBox's own system jobs
clean up (run by ``netbox rqworker``, hourly). Reads already show such a proposal as expired (tools.describe)
and applying one is refused, so the job only keeps the stored status true for lists and the admin."""

from core.choices import JobIntervalChoices
from django.utils import timezone
from netbox.jobs import JobRunner, system_job

from .models import Proposal

EXPIRED = "The proposal expired before it was applied."


def expire_proposals(now=None) -> int:
    """Mark every pending proposal past its expiry as expired; the number marked."""
    return Proposal.objects.filter(status="pending", expires__lte=now or timezone.now()).update(
        status="expired", error=EXPIRED
    )


@system_job(interval=JobIntervalChoices.INTERVAL_HOURLY)
class ExpireProposalsJob(JobRunner):
    class Meta:
        name = "Chatbox: expire change proposals"

    def run(self, *args, **kwargs):
        self.logger.info("%d change proposals expired", expire_proposals())
