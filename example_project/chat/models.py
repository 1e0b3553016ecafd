from django.conf import settings
from django.db import models


class Room(models.Model):
    """A chat room; its slug is in the URL, and names its group ``chat-<slug>``."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=100)
    #: Bumped with every join and leave, so clients can drop stale counts.
    presence_version = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def group_name(self) -> str:
        return f"chat-{self.slug}"


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


class Presence(models.Model):
    """One open socket in a room; a user with two tabs open has two."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="presences")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    reply_channel = models.CharField(max_length=200, unique=True)
    connected = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"
