"""A stored proposal: what the model proposed, as validated, waiting for its owner's Apply or Discard."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Proposal(models.Model):
    STATUS_CHOICES = (
        ("pending", "Pending"),
        ("applied", "Applied"),
        ("discarded", "Discarded"),
        ("expired", "Expired"),
        ("failed", "Failed"),
    )

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chatbox_proposals")
    conversation = models.ForeignKey(
        "netbox_chatbox.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="proposals"
    )
    summary = models.CharField(max_length=300)
    # [{action: create|update|delete, object_type, id?, data}] as the model proposed them (validated)
    operations = models.JSONField(default=list)
    # Per operation: the object as NetBox serializes it for its change log (secrets removed), and a hash
    # of the full snapshot that tells at apply time whether the object changed since.
    before = models.JSONField(default=list)
    after = models.JSONField(default=list)
    fingerprints = models.JSONField(default=list)
    # The netbox-branching branch (its schema id) it was validated in and applies in; empty: main.
    branch = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default="pending")
    error = models.TextField(blank=True)
    expires = models.DateTimeField()
    created = models.DateTimeField(auto_now_add=True)
    applied = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created", "-pk")

    def __str__(self):
        return f"Proposal {self.pk}: {self.summary}"

    @property
    def expired(self) -> bool:
        return timezone.now() >= self.expires

    def get_absolute_url(self):
        return reverse("plugins-api:netbox_chatbox-api:proposal-detail", args=[self.pk])
