import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("netbox_chatbox", "0006_faults"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="MCPToolCall",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("tool", models.CharField(max_length=100)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("ok", "OK"),
                            ("error", "Error"),
                            ("rate_limited", "Rate limited"),
                            ("read_only_token", "Read-only token"),
                        ],
                        max_length=20,
                    ),
                ),
                ("duration_ms", models.PositiveIntegerField(blank=True, null=True)),
                (
                    "result_chars",
                    models.PositiveIntegerField(
                        blank=True, help_text="Length of the result the client read", null=True
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "MCP tool call",
                "ordering": ("created", "pk"),
                "indexes": [models.Index(fields=["created"], name="netbox_chatbox_mcp_created")],
            },
        ),
    ]
