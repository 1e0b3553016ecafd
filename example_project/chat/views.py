from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify

from .models import Room

#: How many past messages the room page shows.
HISTORY = 50


@login_required
def room_list(request):
    """List the rooms; a POST opens a room (creating it if it is new) and goes there."""
    error = ""
    if request.method == "POST":
        title = request.POST.get("title", "").strip()[:100]
        slug = slugify(title)[:50]
        if slug:
            # Saving a new room is all it takes: RoomBinding tells the open lists.
            room, _ = Room.objects.get_or_create(slug=slug, defaults={"title": title})
            return redirect("room", slug=room.slug)
        error = "Give the room a name with some letters or digits in it."
    return render(request, "chat/room_list.html", {"rooms": Room.objects.all(), "error": error})


@login_required
def room(request, slug):
    room = get_object_or_404(Room, slug=slug)
    history = list(room.messages.select_related("user").order_by("-id")[:HISTORY])[::-1]
    config = {
        "room": room.slug,
        "roomPk": room.pk,
        "lastId": history[-1].id if history else 0,
        "user": request.user.get_username(),
    }
    return render(
        request,
        "chat/room.html",
        {"room": room, "rooms": Room.objects.all(), "history": history, "chat_config": config},
    )
