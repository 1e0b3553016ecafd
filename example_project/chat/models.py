from django.conf import settings
from django.db import models


class Room(models.Model):
    """A chat room; its slug is in the URL, and names its group and presence ``chat-<slug>``."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=100)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def group_name(self) -> str:
        return self.group_name_of(self.slug)

    @staticmethod
    def group_name_of(slug: str) -> str:
        """Return the group (and presence) name of the room *slug*, even once it is gone."""
        return f"chat-{slug}"


class ChatMessage(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.TextField(max_length=2000)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.user}: {self.text[:40]}"

    def as_event(self) -> dict:
        """What the browser receives for this message (JSON)."""
        return {
            "type": "message",
            "id": self.id,
            "user": self.user.get_username(),
            "text": self.text,
            "created": self.created.isoformat(),
        }
