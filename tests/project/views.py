from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse(f"Hello world! You asked for {request.path}")


@csrf_exempt
def echo_form(request):
    return JsonResponse(
        {
            "method": request.method,
            "post": dict(request.POST),
            "get": dict(request.GET),
            "cookies": request.COOKIES,
            "secure": request.is_secure(),
            "script_name": request.META.get("SCRIPT_NAME"),
            "path_info": request.path_info,
            "remote": request.META.get("REMOTE_ADDR"),
        }
    )


@csrf_exempt
def upload(request):
    data = b"".join(f.read() for f in request.FILES.values()) if request.FILES else request.body
    return JsonResponse({"size": len(data), "sum": sum(data) % 65536})


def set_cookie(request):
    response = HttpResponse("cookie set")
    response.set_cookie("flavour", "oatmeal")
    return response


def stream(request):
    return StreamingHttpResponse(b"chunk %d\n" % n for n in range(5))


def boom(request):
    raise RuntimeError("this view fails")


def slow(request):
    import time

    time.sleep(float(request.GET.get("seconds", "2")))
    return HttpResponse("slow done")


@csrf_exempt
def login_view(request):
    from django.contrib.auth import authenticate, login

    user = authenticate(
        request, username=request.POST["username"], password=request.POST["password"]
    )
    if user is None:
        return HttpResponse("bad credentials", status=403)
    login(request, user)
    return JsonResponse({"session_key": request.session.session_key})


def logout_view(request):
    from django.contrib.auth import logout

    logout(request)
    return HttpResponse("logged out")


def private(request):
    """A page for logged-in users only, as ``login_required`` guards it."""
    from django.contrib.auth.decorators import login_required

    return login_required(lambda request: HttpResponse(request.user.username))(request)


def later(request):
    """Long polling: answer later, from another consumer (tests.project.sockets.answer)."""
    from channels import Channel
    from channels.exceptions import ResponseLater

    Channel("test.later").send({"reply_channel": request.reply_channel.name}, immediately=True)
    raise ResponseLater
