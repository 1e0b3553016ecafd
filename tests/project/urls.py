from django.urls import include, path

from tests.project import views

urlpatterns = [
    path("", views.hello),
    path("hello/", views.hello),
    path("form/", views.echo_form),
    path("upload/", views.upload),
    path("cookie/", views.set_cookie),
    path("stream/", views.stream),
    path("boom/", views.boom),
    path("slow/", views.slow),
    path("login/", views.login_view),
    path("later/", views.later),
    path("logout/", views.logout_view),
    path("private/", views.private),
    path("jsclient/", include("tests.jsclient.urls")),
]
