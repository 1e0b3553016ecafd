"""Context for getting-started.rst "Models": the ChatMessage model it assumes.

"assuming we have a ChatMessage model with ``message`` and ``room`` fields".
The test creates its table itself (this package is not an installed app).
"""

from django.db import models


class ChatMessage(models.Model):
    room = models.CharField(max_length=100)
    message = models.TextField()

    class Meta:
        app_label = "docs1x"

    def __str__(self) -> str:
        return f"{self.room}: {self.message}"
