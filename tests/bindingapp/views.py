"""A view that changes an item in a transaction, committed or rolled back."""

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from tests.bindingapp.bindings import ItemBinding  # noqa: F401 - registers the binding
from tests.bindingapp.models import Item


def change_item(request: HttpRequest, name: str) -> JsonResponse:
    """POST ``value`` (and ``board``, ``rollback=1``): save item *name* in a transaction."""
    with transaction.atomic():
        item = Item.objects.filter(name=name).first() or Item(name=name)
        item.value = int(request.POST["value"])
        item.board = request.POST.get("board", item.board)
        item.save()
        if request.POST.get("rollback"):
            transaction.set_rollback(True)
            return JsonResponse({"rolled_back": True}, status=409)
    return JsonResponse({"pk": item.pk, "value": item.value})
