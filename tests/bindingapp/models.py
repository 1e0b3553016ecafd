"""Models the binding tests change; the 1.x docs' sample model is registered here too."""

import uuid

from django.conf import settings
from django.db import models

# The 1.x docs sample defines its model next to its binding; import it so the
# model belongs to this app (and its migration) whichever module imports first.
from tests.bindingapp.docsample.models import IntegerValue  # noqa: F401


class Item(models.Model):
    """An item on a board; sockets watch one board each."""

    name = models.CharField(max_length=100, unique=True)
    board = models.CharField(max_length=50, default="main")
    value = models.IntegerField(default=0)
    secret = models.CharField(max_length=50, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self) -> str:
        return self.name

    @property
    def doubled(self) -> int:
        return self.value * 2

    def shout(self) -> str:
        return self.name.upper()


class Tagged(models.Model):
    """A model with a UUID primary key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name
