from channels.routing import route
from tests.project.chat.consumers import chat_in, msg_consumer, slow, whoami

channel_routing = [
    route("chat-in", chat_in),
    route("chat-messages", msg_consumer),
    route(["whoami.a", "whoami.b"], whoami),
    route("slow", slow),
]
