"""Create the demo users (alice, bob and carol by default), all with one password."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEFAULT_USERS = ["alice", "bob", "carol"]
DEFAULT_PASSWORD = "channels-demo"


class Command(BaseCommand):
    help = "Create demo users for the chat (development only); existing ones get the password."

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*", default=DEFAULT_USERS)
        parser.add_argument("--password", default=DEFAULT_PASSWORD)

    def handle(self, *args, **options):
        users = get_user_model().objects
        for username in options["usernames"]:
            user, created = users.get_or_create(username=username)
            user.set_password(options["password"])
            user.save()
            verb = "Created" if created else "Updated"
            self.stdout.write(f"{verb} user {username!r} with password {options['password']!r}")
