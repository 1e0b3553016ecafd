"""The admin: rename or delete a room here and every open room list shows it."""

from django.contrib import admin

from .models import ChatMessage, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    list_display = ["room", "user", "created", "text"]
    list_filter = ["room"]
