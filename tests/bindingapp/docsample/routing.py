# ruff: noqa
# fmt: off
# Channels 1.1.8 docs/binding.rst, "Getting Started": the third sample, as written.
from channels import route_class, route
from .consumers import Demultiplexer
from .models import IntegerValueBinding

channel_routing = [
    route_class(Demultiplexer, path="^/binding/"),
]
