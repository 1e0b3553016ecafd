# ruff: noqa
# fmt: off
# testing.rst, "Clients": RoomConsumer and its WSClient test.
#
# Broken in 1.x as written: RoomConsumer.receive misses the ")" closing its
# Channel(...).send( call (a SyntaxError). Kept: the call closed. Broken in 1.x
# past that too: receive() reads self.message.http_session, which 1.x's
# WebsocketConsumer gives only to connect (http_user wraps connect in
# channel_session_user_from_http, every other handler in channel_session_user).

# Context the samples take for granted: imports, and the project's routing.
from django.contrib.auth.models import User

from channels import Channel
from channels.generic.websockets import JsonWebsocketConsumer
from channels.routing import route_class

# consumers.py
class RoomConsumer(JsonWebsocketConsumer):
    http_user = True
    groups = ['rooms_watchers']

    def receive(self, content, **kwargs):
        self.send({'rooms': self.message.http_session.get("rooms", [])})
        Channel("rooms_receive").send({'user': self.message.user.id,
                                       'message': content['message']})


channel_routing = [route_class(RoomConsumer, path=r"^/rooms/$")]  # context

# tests.py
from channels import Group
from channels.test import ChannelTestCase, WSClient


class RoomsTests(ChannelTestCase):

    def test_rooms(self):
        client = WSClient()
        user = User.objects.create_user(
            username='test', email='test@test.com', password='123456')
        client.login(username='test', password='123456')

        client.send_and_consume('websocket.connect', path='/rooms/')
        # check that there is nothing to receive
        self.assertIsNone(client.receive())

        # test that the client in the group
        Group(RoomConsumer.groups[0]).send({'text': 'ok'}, immediately=True)
        self.assertEqual(client.receive(json=False), 'ok')

        client.session['rooms'] = ['test', '1']
        client.session.save()

        client.send_and_consume('websocket.receive',
                                text={'message': 'hey'},
                                path='/rooms/')
        # test 'response'
        self.assertEqual(client.receive(), {'rooms': ['test', '1']})

        self.assertEqual(self.get_next_message('rooms_receive').content,
                         {'user': user.id, 'message': 'hey'})

        # There is nothing to receive
        self.assertIsNone(client.receive())
