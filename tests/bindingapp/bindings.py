"""The bindings the tests and the test project's workers use."""

from channels.binding import DELETE
from channels.binding.websockets import WebsocketBinding, WebsocketBindingWithMembers


class ItemBinding(WebsocketBinding):
    """Items, one group per board; anyone may create and update, only staff delete."""

    model = "bindingapp.Item"
    stream = "items"
    fields = ["name", "board", "value", "owner"]

    @classmethod
    def group_names(cls, instance):
        return [f"board-{instance.board}"]

    def has_permission(self, user, action, pk):
        return action != DELETE or user.is_staff


class ItemMembersBinding(WebsocketBindingWithMembers):
    """Items that have an owner, with a property, a method and a dotted member."""

    model = "bindingapp.Item"
    stream = "members"
    exclude = ["secret", "created"]
    send_members = ["doubled", "shout", "owner.username", "created"]

    @classmethod
    def group_names(cls, instance):
        return ["owned"] if instance.owner_id else []


class TaggedBinding(WebsocketBinding):
    """A model with a UUID primary key; every field."""

    model = "bindingapp.Tagged"
    stream = "tagged"
    fields = ["__all__"]

    @classmethod
    def group_names(cls, instance):
        return ["tagged"]

    def has_permission(self, user, action, pk):
        return True
