"""What the usage view stores besides conversations: one row per MCP tool call.

A chat's tool calls are stored with its answers (``Message.tool_calls``); tool calls from users' own AI
clients (MCP) have no conversation, so each gets a row here: who, which tool, when, how long, the
outcome and the result's size. Never the arguments or the result, which may hold what only that user
may view.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class MCPToolCall(models.Model):
    OUTCOMES = (
        ("ok", "OK"),
        ("error", "Error"),  # the tool answered with an error (bad arguments, not found, timeout, …)
        ("rate_limited", "Rate limited"),
        ("read_only_token", "Read-only token"),  # a proposal tool called with a read-only token
    )

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    tool = models.CharField(max_length=100)
    created = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=20, choices=OUTCOMES)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    result_chars = models.PositiveIntegerField(null=True, blank=True, help_text="Length of the result the client read")

    class Meta:
        ordering = ("created", "pk")
        indexes = [models.Index(fields=("created",), name="netbox_chatbox_mcp_created")]  # usage by period
        verbose_name = "MCP tool call"

    def __str__(self):
        return f"{self.tool} ({self.outcome})"
