"""Two rooms to start with; more can be opened from the room list."""

from django.db import migrations

ROOMS = [("lobby", "Lobby"), ("random", "Random")]


def create_rooms(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    for slug, title in ROOMS:
        Room.objects.get_or_create(slug=slug, defaults={"title": title})


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create_rooms, migrations.RunPython.noop)]
