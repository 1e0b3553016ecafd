from __future__ import annotations

from django.db import models


class DelayedMessage(models.Model):
    """A message waiting for its due time; ``content`` is the layer's msgpack encoding."""

    due_date = models.DateTimeField(db_index=True)
    channel_name = models.CharField(max_length=100)
    content = models.BinaryField()

    class Meta:
        ordering = ["due_date", "id"]

    def __str__(self) -> str:
        return f"to {self.channel_name} at {self.due_date.isoformat()}"
