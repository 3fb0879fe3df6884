from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("netbox_chatbox", "0007_mcp_usage"),
    ]

    operations = [
        migrations.AddField(
            model_name="proposal",
            name="branch",
            field=models.CharField(blank=True, max_length=100),
        ),
    ]
