from django.urls import path

from modern import views

urlpatterns = [
    path("hello/", views.hello),
]
