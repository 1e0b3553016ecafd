"""URLs of the Channels 1.1.8 anchor project."""

from django.conf.urls import url

from classic import views

urlpatterns = [url(r"^hello/$", views.hello)]
