from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("netbox_chatbox", "0005_changes"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="truncated",
            field=models.BooleanField(default=False, help_text="The answer was cut by the output limit"),
        ),
    ]
