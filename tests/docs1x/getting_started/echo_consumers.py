# ruff: noqa
# fmt: off
# getting-started.rst, "First Consumers": the WebSocket echo consumer.

# In consumers.py

def ws_message(message):
    # ASGI WebSocket packet-received and send-packet message types
    # both have a "text" key for their textual data.
    message.reply_channel.send({
        "text": message.content['text'],
    })
