"""Stored conversations: history survives reloads, restarts and model switches."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from utilities.querysets import RestrictedQuerySet


class Conversation(models.Model):
    """One conversation with one model. A model switch archives it and starts a new one."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chatbox_conversations")
    title = models.CharField(max_length=200, blank=True)
    model_id = models.CharField(max_length=100)
    path = models.CharField(max_length=20)
    archived = models.BooleanField(default=False, help_text="Closed by a model switch or reset; read-only context")
    created = models.DateTimeField(auto_now_add=True)
    last_updated = models.DateTimeField(auto_now=True)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(default=0)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ("-last_updated", "-pk")

    def __str__(self):
        return self.title or f"Conversation {self.pk}"

    def get_absolute_url(self):
        return reverse("plugins:netbox_chatbox:chat") + f"?conversation={self.pk}"

    def archive(self):
        """Make it read-only (a model switch, a reset, the API's archive). Only these two columns are
        written: a turn may be adding its usage to the same row."""
        self.archived, self.last_updated = True, timezone.now()
        Conversation.objects.filter(pk=self.pk).update(archived=True, last_updated=self.last_updated)


class Message(models.Model):
    ROLE_CHOICES = (("user", "User"), ("assistant", "Assistant"), ("error", "Error"))

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=20, choices=ROLE_CHOICES)
    content = models.TextField(blank=True)
    model = models.CharField(max_length=100, blank=True, help_text="The model that actually answered")
    tool_calls = models.JSONField(default=list, blank=True)
    grounding = models.JSONField(
        null=True,
        blank=True,
        help_text="Names and values the answer mentions that no tool result held (see grounding.py)",
    )
    interrupted = models.BooleanField(default=False)
    truncated = models.BooleanField(default=False, help_text="The answer was cut by the output limit")
    fallback = models.BooleanField(default=False, help_text="Answered by the fallback model (the chosen one was down)")
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    usage_estimated = models.BooleanField(
        default=False, help_text="The model server sent no token counts: they are estimated"
    )
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ("created", "pk")
        indexes = [models.Index(fields=("created",), name="netbox_chatbox_msg_created")]  # usage by period

    def __str__(self):
        return f"{self.role}: {self.content[:40]}"


from .proposals.models import Proposal  # noqa: E402,F401  (a model of this app, kept in its own module)
from .usage_models import MCPToolCall  # noqa: E402,F401  (MCP tool calls, for the usage view)
