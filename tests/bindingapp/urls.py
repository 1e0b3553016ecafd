"""The test project's URLs plus the binding view."""

from django.urls import path

from tests.bindingapp import views
from tests.project.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("items/<str:name>/", views.change_item),
]
