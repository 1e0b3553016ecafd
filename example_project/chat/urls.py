from django.urls import path

from . import views

urlpatterns = [
    path("", views.room_list, name="room-list"),
    path("chat/<slug:slug>/", views.room, name="room"),
]
