# ruff: noqa
# fmt: off
# routing.rst, "Filters": its route()/include() fragments, each given a name.
#
# Broken in 1.x as written: include("blog_includes", ...) is not an import path
# 1.x could resolve (Router.resolve_routing splits "module.variable" at the
# last dot: a bare name raises ValueError). Kept: a dotted path to a routing list.

# Context the fragments take for granted: the helpers and the consumers they name.
import types

from channels import Channel
from channels.routing import include, route


def _record(name):
    def consumer(message, **kwargs):
        Channel("docs.routed").send({"consumer": name, "kwargs": kwargs})
    return consumer


consumers = types.SimpleNamespace(ws_connect=_record("ws_connect"))
comment_response = _record("comment_response")
connect_blog = _record("connect_blog")

# "you use regular expressions, like so":
chat = route("websocket.connect", consumers.ws_connect, path=r"^/chat/$")

# "You can have multiple filters":
email = route("email.receive", comment_response, to_address=r".*@example.com$", subject="^reply")

# "Filters can capture keyword arguments":
blog = route("websocket.connect", connect_blog, path=r'^/liveblog/(?P<slug>[^/]+)/stream/$')

# "this arrangement matches URLs like /liveblog/stream/":
inner_routes = [
    route("websocket.connect", connect_blog, path=r'^/stream/'),
]

routing = [
    include(inner_routes, path=r'^/liveblog')
]

# "You can also specify filters on an include" (a dotted path, see above; after
# inner_routes, which it imports):
blog_includes = include("tests.docs1x.routing_page.inner_routes", path=r'^/liveblog')
