from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("netbox_chatbox", "0003_openai"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="grounding",
            field=models.JSONField(
                blank=True,
                help_text="Names and values the answer mentions that no tool result held (see grounding.py)",
                null=True,
            ),
        ),
    ]
