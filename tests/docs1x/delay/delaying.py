# ruff: noqa
# fmt: off
# delay.rst, "Delaying Messages" (run as a script against a project's layer).

from channels import Channel

delayed_message = {
    'channel': 'example_channel',
    'content': {'x': 1},
    'delay': 10 * 1000
}
# The message will be delayed 10 seconds by the server and then sent
Channel('asgi.delay').send(delayed_message, immediately=True)
