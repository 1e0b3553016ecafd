"""Who is online is now channels.Presence, kept by the channel layer, not the database."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("chat", "0002_default_rooms")]

    operations = [
        migrations.DeleteModel(name="Presence"),
        migrations.RemoveField(model_name="room", name="presence_version"),
    ]
