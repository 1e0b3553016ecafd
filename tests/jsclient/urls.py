from django.urls import path

from tests.jsclient import views

urlpatterns = [
    path("<str:name>/", views.page),
]
