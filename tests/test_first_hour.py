"""The first hour with channels: each mistake is reported where it is, once, with the fix.

Commands run as real processes (runserver, runworker, daphne) against a real
Redis where one is needed; the checks and the routing import run in process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.core import checks
from django.test import override_settings

from channels.asgi import ChannelLayerWrapper
from channels.checks import check_channel_layers, check_deploy_layers
from channels.exceptions import InvalidChannelLayerError, RoutingImportError
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer
from tests.interface import http, wait_for_port
from tests.processes import ROOT, ManagedProcess, django_command, project_env
from tests.redis_server import RedisServer, free_port
from tests.waiting import wait_until

StartWorker = Callable[..., ManagedProcess]


@pytest.fixture
def processes() -> Iterator[list[ManagedProcess]]:
    """Processes a test starts; all are stopped afterwards."""
    started: list[ManagedProcess] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture
def start_worker(processes: list[ManagedProcess], unique_prefix: str) -> StartWorker:
    def start(
        redis_url: str,
        *flags: str,
        ready: str = "Listening on channels",
        routing: str = "tests.first_hour_routing.worker_routing",
        **env: str,
    ) -> ManagedProcess:
        environment = project_env(
            CHANNELS_TEST_REDIS_URL=redis_url,
            CHANNELS_TEST_PREFIX=unique_prefix,
            CHANNELS_TEST_ROUTING=routing,
            **env,
        )
        worker = ManagedProcess(django_command("runworker", *flags), environment)
        processes.append(worker)
        worker.wait_for(ready)
        return worker

    return start


def run_command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = project_env(**env)
    environment.pop("CHANNELS_TEST_REDIS_URL", None)
    return subprocess.run(
        django_command(*args), env=environment, capture_output=True, text=True, timeout=60
    )


def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    """Wait for *condition* (a cheap query of a real server), failing after *timeout*."""
    wait_until(condition, timeout, "condition not met in time")


def connections_received(client: redis.Redis) -> int:
    return int(client.info("stats")["total_connections_received"])


# runserver --------------------------------------------------------------


def test_runserver_on_a_taken_port_exits_non_zero_saying_so() -> None:
    """Under the autoreloader too: the process ends instead of listening nowhere."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ManagedProcess(
            django_command("runserver", f"127.0.0.1:{port}"),
            {**project_env(), "CHANNELS_TEST_REDIS_URL": ""},
        )
        try:
            code = server.wait(60)
        finally:
            server.stop()
    output = "".join(server.output)
    assert code == 1, output
    assert "Error: That port is already in use." in output
    assert f"manage.py runserver {port + 1}" in output


def _write(path: Path, text: str) -> None:
    """Write *path* and move its mtime on, so a stat reloader sees the change at once."""
    path.write_text(textwrap.dedent(text))
    later = time.time() + 2
    os.utime(path, (later, later))


def save_until(process: ManagedProcess, path: Path, text: str, seen: str) -> None:
    """Save *path* until *process* prints *seen*; fail after 30 s.

    A stat reloader takes a file's first mtime as its baseline, so a save made
    before its first look at the file goes unnoticed; a person saves again,
    and so does this.
    """
    deadline = time.monotonic() + 30
    for attempt in range(1, 1000):
        path.write_text(textwrap.dedent(text))
        later = time.time() + 2 * attempt
        os.utime(path, (later, later))
        try:
            process.wait_for(seen, timeout=3)
            return
        except AssertionError:
            if time.monotonic() > deadline or process.process.poll() is not None:
                raise


GOOD_ROUTING = """
    from django.http import HttpResponse

    from channels.handler import AsgiHandler
    from channels.routing import route


    def hello(message):
        for reply in AsgiHandler.encode_response(HttpResponse("routing is fixed")):
            message.reply_channel.send(reply)


    channel_routing = [route("http.request", hello, path=r"^/hello/")]
"""


def test_runserver_survives_a_broken_routing_and_recovers_when_it_is_fixed(
    tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    package = tmp_path / "brokenproject"
    package.mkdir()
    (package / "__init__.py").write_text("")
    routing = package / "routing.py"
    _write(routing, "channel_routing = [\n")  # a SyntaxError
    port = free_port()
    env = project_env(CHANNELS_TEST_ROUTING="brokenproject.routing.channel_routing")
    env.pop("CHANNELS_TEST_REDIS_URL", None)
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{tmp_path}"
    server = ManagedProcess(django_command("runserver", f"127.0.0.1:{port}"), env)
    processes.append(server)
    server.wait_for("The server restarts when you save a fix")
    server.wait_for("SyntaxError")
    server.wait_for(r"Importing the routing module 'brokenproject\.routing' raised SyntaxError")
    assert server.process.poll() is None, "the reloader died with the routing"
    save_until(server, routing, GOOD_ROUTING, "Quit the server with")
    wait_for_port(port)
    status, _, body = http(f"http://127.0.0.1:{port}/hello/", timeout=20)
    assert (status, body) == (200, b"routing is fixed")


def test_a_missing_routing_attribute_keeps_the_hint() -> None:
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", "tests.first_hour_routing.nope")
    with pytest.raises(InvalidChannelLayerError, match=r"has no 'nope'.*Point ROUTING at a list"):
        layer.resolve_routing()


def test_an_error_inside_the_routing_module_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "raising_routing.py").write_text("import os\nchannel_routing = 1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    layer = ChannelLayerWrapper(
        InMemoryChannelLayer(), "default", "raising_routing.channel_routing"
    )
    with pytest.raises(RoutingImportError) as raised:
        layer.resolve_routing()
    assert raised.value.filename == str(tmp_path / "raising_routing.py")
    assert "raised ZeroDivisionError: division by zero" in str(raised.value)
    assert "raising_routing.py, line 2" in str(raised.value)
    assert "Point ROUTING" not in str(raised.value)
    assert isinstance(raised.value.__cause__, ZeroDivisionError)


def test_an_import_error_inside_the_routing_module_is_not_taken_for_a_wrong_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "importing_routing.py").write_text("import no_such_package_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", "importing_routing.routes")
    with pytest.raises(RoutingImportError, match=r"ModuleNotFoundError.*no_such_package_here"):
        layer.resolve_routing()


def test_runserver_noworker_refuses_the_in_memory_layer() -> None:
    result = run_command("runserver", "--noworker", "--noreload")
    assert result.returncode == 1
    assert "runserver --noworker cannot serve channel layer 'default'" in result.stderr
    assert "in-memory layer" in result.stderr


def test_runserver_help_says_what_its_options_do_here() -> None:
    result = run_command("runserver", "--help")
    text = " ".join(result.stdout.split())
    assert "Run one worker thread instead of 4" in text
    assert "CHANNELS_HTTP_TIMEOUT setting (60 seconds by default, then a 503)" in text
    assert "no timeout" not in text


# runworker set-up mistakes --------------------------------------------------


def test_runworker_with_an_unknown_layer_lists_the_aliases() -> None:
    result = run_command("runworker", "--layer", "defualt")
    assert result.returncode == 1
    assert "There is no channel layer 'defualt' in CHANNEL_LAYERS" in result.stderr
    assert "'default'" in result.stderr


def test_runworker_without_routing_says_where_to_set_it() -> None:
    result = run_command("runworker", DJANGO_SETTINGS_MODULE="tests.first_hour_settings")
    assert result.returncode == 1
    assert "Channel layer 'default' has no ROUTING" in result.stderr
    assert "CHANNEL_LAYERS['default']['ROUTING']" in result.stderr


def test_runworker_with_a_module_as_routing_says_to_point_at_the_list() -> None:
    result = run_command(
        "runworker",
        "--skip-checks",  # else channels.E002 says the same first
        DJANGO_SETTINGS_MODULE="tests.first_hour_settings",
        FIRST_HOUR_ROUTING="tests.first_hour_routing",
    )
    assert result.returncode == 1
    assert "is the module 'tests.first_hour_routing', not a list of routes" in result.stderr
    assert "'tests.first_hour_routing.http_routing'" in result.stderr


# System checks --------------------------------------------------------------


def test_a_misspelt_asgi_channel_is_a_warning_naming_the_route_and_the_fix() -> None:
    layers = {
        "default": {
            "BACKEND": "asgiref.inmemory.ChannelLayer",
            "ROUTING": "tests.first_hour_routing.typo_routing",
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        found = check_channel_layers()
    assert [message.id for message in found] == ["channels.W003"]
    assert "'websocket.recieve'" in found[0].msg
    assert "route('websocket.recieve'" in found[0].msg
    assert found[0].hint.startswith("Did you mean 'websocket.receive'?")


def test_a_module_as_routing_is_a_check_error() -> None:
    layers = {
        "default": {
            "BACKEND": "asgiref.inmemory.ChannelLayer",
            "ROUTING": "tests.first_hour_routing",
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        found = check_channel_layers()
    assert [message.id for message in found] == ["channels.E002"]
    assert "point it at the list in the module" in found[0].msg


def test_check_deploy_warns_about_the_in_memory_layer_without_debug() -> None:
    layers = {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=layers, DEBUG=False):
        found = check_deploy_layers()
        assert "channels.W004" in {m.id for m in checks.run_checks(include_deployment_checks=True)}
    assert [message.id for message in found] == ["channels.W004"]
    with override_settings(CHANNEL_LAYERS=layers, DEBUG=True):
        assert check_deploy_layers() == []


# Consumers that fail or forget to answer ------------------------------------


@pytest.mark.parametrize("debug", ["1", "0"])
def test_a_failing_http_consumer_gets_a_500_at_once(deployments, debug: str) -> None:
    deployment = deployments(
        "daphne", "tests.first_hour_routing.http_routing", workers=1, CHANNELS_TEST_DEBUG=debug
    )
    started = time.monotonic()
    status, headers, body = http(deployment.url + "/fail/?q=1", timeout=20)
    assert status == 500
    assert time.monotonic() - started < 10  # not the 60 s wait for a 503
    if debug == "1":
        assert b"boom from the http consumer" in body
        assert b"ValueError" in body
        assert "text/html" in headers["Content-Type"]
    else:
        assert b"Server Error (500)" in body
        assert b"boom" not in body
    deployment.processes[1].wait_for("Error in consumer tests.first_hour_routing.failing_view")


def test_a_connect_consumer_that_never_accepts_is_warned_about_once(
    start_worker: StartWorker, redis_url: str, unique_prefix: str
) -> None:
    worker = start_worker(redis_url, routing="tests.first_hour_routing.connect_routing")
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    try:
        for n in range(2):
            layer.send("websocket.connect", {"reply_channel": f"test.reply!{n}", "path": "/"})
            name, _ = layer.receive(["test.events"], block=True, timeout=20)
            assert name == "test.events"
        layer.send("first.fail", {})  # a later line to synchronise on
        worker.wait_for("Error in consumer tests.first_hour_routing.failing")
    finally:
        layer.flush()
        layer.close()
    output = "".join(worker.output)
    assert output.count("handled websocket.connect without accepting") == 1, output
    assert "tests.first_hour_routing.silent_connect handled websocket.connect" in output
    assert "message.reply_channel.send({'accept': True})" in output
    assert "If another consumer accepts it later on purpose, ignore this" in output


# Redis: down, locked, misnumbered -------------------------------------------


def test_runworker_reports_redis_down_at_start_once_and_recovers(
    start_worker: StartWorker, unique_prefix: str
) -> None:
    port = free_port()
    worker = start_worker(
        f"redis://127.0.0.1:{port}/0", ready=rf"Redis at 127\.0\.0\.1:{port} is unreachable"
    )
    worker.wait_for("Listening on channels")
    server = RedisServer(port=port).start()
    try:
        worker.wait_for("is reachable again")
        layer = RedisChannelLayer(hosts=[server.url], prefix=unique_prefix)
        try:
            layer.send("whoami.a", {"reply_channel": "test.reply"})
            _, reply = layer.receive(["test.reply"], block=True, timeout=20)
            assert reply["pid"] == worker.process.pid
        finally:
            layer.close()
        output = "".join(worker.output)
        assert output.count("is unreachable") == 1, output
    finally:
        server.cleanup()


def test_runworker_says_once_that_redis_wants_a_password_and_recovers(
    redis_server: RedisServer, start_worker: StartWorker, unique_prefix: str
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("requirepass", "s3cret")  # as redis-server --requirepass s3cret
    admin = redis.Redis.from_url(redis_server.url, password="s3cret")
    try:
        worker = start_worker(
            redis_server.url, ready="requires a password and the layer sends none"
        )
        before = connections_received(admin)
        until(lambda: connections_received(admin) >= before + 2)  # it retried, silently
        admin.config_set("requirepass", "")
        worker.wait_for("is reachable again")
        layer = RedisChannelLayer(hosts=[redis_server.url], prefix=unique_prefix)
        try:
            layer.send("whoami.a", {"reply_channel": "test.reply"})
            assert layer.receive(["test.reply"], block=True, timeout=20)[0] == "test.reply"
        finally:
            layer.close()
    finally:
        admin.close()
    output = "".join(worker.output)
    assert output.count("requires a password") == 1, output
    assert "Traceback" not in output
    assert "CONFIG['hosts'] ('redis://:PASSWORD@host:6379/0')" in output


def test_runworker_says_the_password_is_wrong(
    redis_server: RedisServer, start_worker: StartWorker
) -> None:
    redis.Redis.from_url(redis_server.url).config_set("requirepass", "s3cret")
    url = f"redis://:wrong@127.0.0.1:{redis_server.port}/0"
    worker = start_worker(url, ready="refused the layer's credentials")
    assert "check the password (and user) in CONFIG['hosts']" in "".join(worker.output)
    assert "wrong" not in "".join(worker.output)  # the password is never shown


def test_runworker_says_the_database_does_not_exist(
    redis_server: RedisServer, start_worker: StartWorker
) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/99"
    worker = start_worker(url, ready="is misconfigured")
    line = next(line for line in worker.output if "is misconfigured" in line)
    assert "has 16 databases, db 99 does not exist: use a db from 0 to 15" in line
    worker.wait_for("Listening on channels")
    client = redis.Redis.from_url(redis_server.url)
    before = connections_received(client)
    until(lambda: connections_received(client) >= before + 2)
    client.close()
    assert sum("does not exist" in line for line in worker.output) == 1


# Stopping and reloading -----------------------------------------------------


def test_a_graceful_stop_says_what_it_waits_for(
    start_worker: StartWorker, redis_url: str, unique_prefix: str
) -> None:
    worker = start_worker(redis_url)
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    try:
        layer.send("slow", {"reply_channel": "test.reply", "seconds": 2})
        _, reply = layer.receive(["test.reply"], block=True, timeout=20)
        assert "started" in reply
        worker.signal(signal.SIGTERM)
        worker.wait_for(
            r"Stopping: waiting for 1 running consumer to finish "
            r"\(press Ctrl\+C again to stop now\)"
        )
        assert worker.wait(30) == 0
    finally:
        layer.flush()
        layer.close()


def test_runworker_autoreload_restarts_when_the_code_changes(
    tmp_path: Path, start_worker: StartWorker, redis_url: str
) -> None:
    module = tmp_path / "reloaded_routing.py"
    _write(module, "from tests.first_hour_routing import worker_routing as routes\n")
    worker = start_worker(
        redis_url,
        "--autoreload",
        routing="reloaded_routing.routes",
        PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}",
    )
    new_routing = "from tests.first_hour_routing import connect_routing as routes\n"
    save_until(worker, module, new_routing, r"Listening on channels: .*first\.fail")
    assert worker.process.poll() is None


def test_runworker_autoreload_is_off_by_default() -> None:
    result = run_command("runworker", "--help")
    assert "--autoreload" in result.stdout
    assert "off by default" in " ".join(result.stdout.split())


def test_daphne_says_at_start_that_redis_is_down_and_when_it_is_back(unique_prefix: str) -> None:
    """The interface server checks its layer when it loads it, answers 503 meanwhile, recovers."""
    from tests.interface import start_daphne

    port = free_port()
    env = project_env(
        CHANNELS_TEST_REDIS_URL=f"redis://127.0.0.1:{port}/0", CHANNELS_TEST_PREFIX=unique_prefix
    )
    daphne = start_daphne(env)
    server = None
    try:
        # Said before daphne listens, when the application is loaded.
        assert f"Redis at 127.0.0.1:{port} is unreachable" in "".join(daphne.output)
        assert http(f"http://127.0.0.1:{daphne.port}/hello/", timeout=30)[0] == 503
        server = RedisServer(port=port).start()
        # The reply loop, started by that request, keeps trying and says when it is back.
        daphne.wait_for("is reachable again")
        output = "".join(daphne.output)
        assert output.count("is unreachable") == 1, output
        assert "Traceback" not in output
    finally:
        daphne.stop()
        if server is not None:
            server.cleanup()
