from django.db import models


class ChatMessage(models.Model):
    room = models.CharField(max_length=100)
    message = models.TextField()

    def __str__(self) -> str:
        return f"{self.room}: {self.message}"
