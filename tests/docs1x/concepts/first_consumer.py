# ruff: noqa
# fmt: off
# concepts.rst, "How do we use channels?": a consumer and a dict routing to it.

def my_consumer(message):
    pass

channel_routing = {
    "some-channel": "myapp.consumers.my_consumer",
}
