channel_routing = ["a routing list"]
