"""Create the demo users (alice, bob and carol by default), all with one password.

alice is also an admin (staff and superuser), so that she can rename and
delete rooms in the admin and watch the open room lists follow.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEFAULT_USERS = ["alice", "bob", "carol"]
DEFAULT_ADMINS = ["alice"]
DEFAULT_PASSWORD = "channels-demo"


class Command(BaseCommand):
    help = "Create demo users for the chat (development only); existing ones get the password."

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*", default=DEFAULT_USERS)
        parser.add_argument("--password", default=DEFAULT_PASSWORD)
        parser.add_argument(
            "--admin",
            action="append",
            dest="admins",
            metavar="USERNAME",
            help="make this user an admin (repeat for more; default: alice)",
        )

    def handle(self, *args, **options):
        users = get_user_model().objects
        admins = set(DEFAULT_ADMINS if options["admins"] is None else options["admins"])
        for username in options["usernames"]:
            user, created = users.get_or_create(username=username)
            user.set_password(options["password"])
            user.is_staff = user.is_superuser = username in admins
            user.save()
            verb = "Created" if created else "Updated"
            role = "admin" if username in admins else "user"
            self.stdout.write(f"{verb} {role} {username!r} with password {options['password']!r}")
