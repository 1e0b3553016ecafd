# ruff: noqa
# fmt: off
# reference.rst (1.1.8): its code lines, with the context they take for granted.

# Context: a project's routing for the "Channel Layer" section's router.
from channels.exceptions import ConsumeLater
from channels.routing import route


def room_consumer(message, name):
    pass


def later_once(message):
    """Consumers, "ConsumeLater": put back at the end of its channel, once."""
    from channels import Channel
    Channel("docs1x.order").send({"n": message["n"]}, immediately=True)
    if message["n"] == "first" and "__retries__" not in message.content:
        raise ConsumeLater()


def later_always(message):
    """Consumers, "ConsumeLater": never ready, so retried until it is dropped."""
    from channels import Channel
    Channel("docs1x.tries").send(
        {"retries": message.content.get("__retries__", 0)}, immediately=True
    )
    raise ConsumeLater()


channel_routing = [
    route("websocket.connect", room_consumer, path=r"^/room/(?P<name>\w+)/$"),
    route("docs1x.later", later_once),
    route("docs1x.never", later_always),
]

# Channel Layer: "get them by alias".
def get_layer():
    # The sample:
    from channels import channel_layers
    layer = channel_layers["default"]
    # Context:
    return layer
