from __future__ import annotations

from datetime import datetime

from django.db import models


class DelayedMessage(models.Model):
    """A message waiting for its due time; ``content`` is the layer's msgpack encoding."""

    # Annotated for mypy, which runs without django-stubs' plugin.
    due_date: models.DateTimeField[datetime, datetime] = models.DateTimeField(db_index=True)
    channel_name: models.CharField[str, str] = models.CharField(max_length=100)
    content: models.BinaryField[bytes, bytes | memoryview] = models.BinaryField()

    class Meta:
        ordering = ["due_date", "id"]

    def __str__(self) -> str:
        return f"to {self.channel_name} at {self.due_date.isoformat()}"
