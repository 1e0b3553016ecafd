from channels.routing import route

channel_routing = [route("fixture.channel", "channels.consumers.ignore")]
