"""The JavaScript client (``channels.WebSocketBridge``) in real headless Chromium.

Pages come from ``tests/jsclient`` and are served, with the bridge as a static
file, by daphne + runworker on Redis. The tests synchronise on what the page
records (polled with WebDriverWait), never on sleeps; timing options are small.
"""

from __future__ import annotations

import signal
import subprocess
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.interface import Deployment, deploy, http, start_daphne
from tests.processes import django_command, project_env
from tests.redis_server import free_port

ROUTING = "tests.jsclient.routing.channel_routing"
TIMEOUT = 20
#: Small backoff (and restart window) so that reconnections happen within a test's patience.
FAST = {
    "minReconnectionDelay": 50,
    "maxReconnectionDelay": 200,
    "minRestartDelay": 50,
    "maxRestartDelay": 100,
}

browser = pytest.mark.browser


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[Deployment]:
    """The test project on daphne + runworker, with DEBUG on so it serves static files."""
    deployment = deploy(
        "daphne",
        ROUTING,
        redis_url=redis_url,
        prefix=f"jsclient-{uuid.uuid4().hex[:8]}:",
        CHANNELS_TEST_DEBUG="1",
    )
    try:
        yield deployment
    finally:
        deployment.stop()


def until(driver: Any, script: str, condition: Callable[[Any], bool], message: str) -> Any:
    """Poll the value of *script* in the page until *condition(value)*; return the value."""
    from selenium.webdriver.support.ui import WebDriverWait

    def check(driver: Any) -> Any:
        value = driver.execute_script(script)
        return (value,) if condition(value) else False

    return WebDriverWait(driver, TIMEOUT, poll_frequency=0.05).until(check, message)[0]


def harness(chromium: Callable[[], Any], server: Deployment) -> Any:
    driver = chromium()
    driver.get(server.url + "/jsclient/harness/")
    return driver


def make(driver: Any, name: str, url: str | None, **options: Any) -> None:
    """Make bridge *name* on the harness page; see makeBridge() in harness.html."""
    driver.execute_script("makeBridge(...arguments)", name, url, options)


def event_types(driver: Any, name: str) -> list[str]:
    return driver.execute_script("return eventTypes(arguments[0])", name)


def events(driver: Any, name: str) -> list[dict[str, Any]]:
    return driver.execute_script("return record[arguments[0]].events", name)


def wait_open(driver: Any, name: str, times: int = 1) -> None:
    until(
        driver,
        f"return eventTypes({name!r}).filter((type) => type === 'open').length",
        lambda opened: opened >= times,
        f"bridge {name} did not open {times} time(s)",
    )


def wait_received(driver: Any, name: str, count: int) -> list[list[Any]]:
    return until(
        driver,
        f"return record[{name!r}].received",
        lambda received: len(received) >= count,
        f"bridge {name} did not get {count} frame(s) through listen()",
    )


def test_the_bridge_is_a_static_file_of_the_channels_app_at_the_1x_path(server):
    status, headers, body = http(server.url + "/static/channels/js/websocketbridge.js")
    assert status == 200
    assert "javascript" in headers["Content-Type"]
    assert b"WebSocketBridge" in body
    status, headers, body = http(server.url + "/static/channels/js/websocketbridge.mjs")
    assert status == 200
    assert "javascript" in headers["Content-Type"]  # a module must be served as JavaScript
    assert b'import "./websocketbridge.js"' in body  # one copy of the code, not two


# The 1.x docs' samples, as written ---------------------------------------------


@browser
def test_the_1x_docs_listen_send_and_socket_samples_run_as_written(chromium, server):
    driver = chromium()
    driver.get(server.url + "/jsclient/docs_listen/")
    logged = until(
        driver, "return window.logged", lambda logged: len(logged) >= 2, "the samples logged"
    )
    # The frame sent before the socket opened was queued, then sent before "open" ran.
    assert logged == [
        ["log", "Connected to WebSocket"],
        ["log", {"echo": {"prop1": "value1", "prop2": "value1"}}, None],
    ]


@browser
def test_the_1x_docs_demultiplex_and_stream_samples_run_as_written(chromium, server):
    driver = chromium()
    driver.get(server.url + "/jsclient/docs_demultiplex/")
    logged = until(
        driver, "return window.logged", lambda logged: len(logged) >= 3, "the samples logged"
    )
    warning, *callbacks = logged
    # The sample's listen('/ws/') passes a path where a callback goes: said, then ignored.
    assert warning[0] == "warn"
    assert "listen() takes a callback" in warning[1]
    assert "pass it to connect()" in warning[1]
    # connect() without a URL went to "/" on the page's host, the demultiplexer there.
    assert sorted(callbacks, key=str) == sorted(
        [
            ["info", {"greeting": "hello"}, "myotherstream"],
            ["log", {"echo": {"prop1": "value1", "prop2": "value1"}}, "mystream"],
        ],
        key=str,
    )


@browser
def test_the_es_module_exports_the_same_bridge(chromium, server):
    driver = chromium()
    driver.get(server.url + "/jsclient/module/")
    received = until(driver, "return window.received", bool, "the module's bridge got no frame")
    assert received == [[{"echo": {"hello": "module"}}, None]]
    assert driver.execute_script("return window.sameCode") is True


# The 1.x API ---------------------------------------------------------------------


@browser
def test_listen_gets_frames_without_a_stream_and_demultiplex_gets_one_stream(chromium, server):
    driver = harness(chromium, server)
    driver.execute_script(
        """
        // In one script, so that no frame can arrive before the callbacks are set.
        const bridge = makeBridge("b", "/", {}), log = record.b;
        log.streams = [];
        log.frames = [];
        bridge.on("message", (event) => log.frames.push(JSON.parse(event.data)));
        bridge.demultiplex("mystream", (action, stream) => log.streams.push([action, stream]));
        bridge.stream("mystream").send({n: 1});
        bridge.send({no: "stream"});
        """
    )
    # greeting (myotherstream, not demultiplexed here), the echo, the server's error
    frames = until(driver, "return record.b.frames", lambda f: len(f) >= 3, "three frames")
    assert {"stream": "myotherstream", "payload": {"greeting": "hello"}} in frames
    streams = driver.execute_script("return record.b.streams")
    assert streams == [[{"echo": {"n": 1}}, "mystream"]]
    received = driver.execute_script("return record.b.received")
    assert len(received) == 1
    (error, stream), *_ = received
    assert stream is None
    assert "Frames must look like" in error["error"]


@browser
def test_connect_resolves_paths_and_urls_against_the_page(chromium, server):
    driver = harness(chromium, server)
    host = f"127.0.0.1:{server.port}"
    urls = driver.execute_script(
        """
        const bridge = new channels.WebSocketBridge();
        const urls = [];
        for (const url of [undefined, "/ws/", "ws/", "//" + location.host + "/ws/",
                           "http://" + location.host + "/ws/?a=1", "ws://" + location.host]) {
          bridge.connect(url);
          urls.push(bridge.socket.url);
        }
        bridge.close();
        return urls;
        """
    )
    assert urls == [
        f"ws://{host}/",  # as 1.x: the page's host, at "/"
        f"ws://{host}/ws/",
        f"ws://{host}/jsclient/harness/ws/",
        f"ws://{host}/ws/",
        f"ws://{host}/ws/?a=1",
        f"ws://{host}/",
    ]


@browser
def test_mistakes_are_errors_at_the_call_that_say_what_to_do(chromium, server):
    driver = harness(chromium, server)
    errors = driver.execute_script(
        """
        const attempt = (call) => { try { call(); return null; } catch (e) { return e.message; } };
        const bridge = new channels.WebSocketBridge();
        const errors = {
          sendFirst: attempt(() => bridge.send({})),
          scheme: attempt(() => bridge.connect("ftp://" + location.host + "/")),
          option: attempt(() => bridge.connect("/ws/", undefined, {jitter: 2})),
          policy: attempt(() => bridge.connect("/ws/", undefined, {queueOverflow: "block"})),
          demultiplex: attempt(() => bridge.demultiplex("s", "not a function")),
          event: attempt(() => bridge.on("opened", () => {})),
        };
        bridge.connect("/ws/");
        bridge.close();
        errors.afterClose = attempt(() => bridge.send({}));
        return errors;
        """
    )
    assert "call connect() first" in errors["sendFirst"]
    assert "ws://, wss:// or http(s):// URL or a path" in errors["scheme"]
    assert "jitter must be a number from 0 to 1" in errors["option"]
    assert "queueOverflow must be one of drop-oldest, drop-newest, error" in errors["policy"]
    assert "needs a callback function" in errors["demultiplex"]
    assert 'no "opened" event; the events are: open, close' in errors["event"]
    assert "call bridge.connect() again" in errors["afterClose"]


@browser
def test_the_socket_keeps_the_websocket_api_1x_pages_used(chromium, server):
    driver = harness(chromium, server)
    driver.execute_script(
        """
        // In one script with makeBridge(), so that the socket cannot open before onopen is set.
        const socket = makeBridge("s", "/ws/", arguments[0]).socket;
        window.seen = [];
        socket.onopen = () => seen.push("onopen");
        socket.addEventListener("open", () => seen.push("open listener"));
        socket.onmessage = (event) => seen.push(JSON.parse(event.data));
        bridges.s.send({x: 1});
        """,
        FAST,
    )
    seen = until(driver, "return window.seen", lambda seen: len(seen) >= 3, "open + a frame")
    assert seen == ["onopen", "open listener", {"echo": {"x": 1}}]
    assert driver.execute_script("return bridges.s.socket.readyState") == 1
    driver.execute_script("bridges.s.socket.close()")
    until(driver, "return bridges.s.socket.readyState", lambda state: state == 3, "closed")
    closing = until(driver, "return record.s.events", lambda e: len(e) >= 2, "a close event")
    assert closing[1] == {"type": "close", "code": 1000, "reason": "", "wasClean": True}


# Reconnection, queued frames, heartbeat ------------------------------------------


@browser
def test_a_1012_close_reconnects_and_frames_sent_meanwhile_go_out_in_order(chromium, server):
    driver = harness(chromium, server)
    make(driver, "b", "/ws/", counting=True, **FAST)
    wait_open(driver, "b")
    driver.execute_script(
        """
        const bridge = bridges.b;
        bridge.on("close", () => {
          if (window.queuedWhileClosed !== undefined) return;
          bridge.send({n: 1});
          bridge.stream("s").send({n: 2});
          window.queuedWhileClosed = bridge.socket.queue.slice();
        });
        bridge.send({close: 1012});  // "service restart"
        """
    )
    wait_open(driver, "b", times=2)
    queued = ['{"n":1}', '{"stream":"s","payload":{"n":2}}']
    assert driver.execute_script("return window.queuedWhileClosed") == queued
    # Sent in order on the new connection (two workers may answer in either order).
    assert driver.execute_script("return sent[bridges.b.socket.url]") == [
        '{"close":1012}',
        *queued,
    ]
    received = wait_received(driver, "b", 2)
    assert sorted(received, key=str) == [
        [{"echo": {"n": 1}}, None],
        [{"echo": {"stream": "s", "payload": {"n": 2}}}, None],
    ]
    opened, closed, reconnecting, reopened = events(driver, "b")
    assert (opened["type"], reopened["type"]) == ("open", "open")
    assert (closed["type"], closed["code"]) == ("close", 1012)
    assert reconnecting["type"] == "reconnecting"
    assert reconnecting["detail"]["attempt"] == 1
    assert reconnecting["detail"]["code"] == 1012
    assert 50 <= reconnecting["detail"]["delay"] <= 100  # a restart: the restart window


@browser
def test_a_full_queue_follows_its_overflow_policy(chromium, server):
    driver = harness(chromium, server)
    nowhere = f"ws://127.0.0.1:{free_port()}/"  # nothing listens: the socket never opens
    results = driver.execute_script(
        """
        const results = {};
        for (const policy of ["drop-oldest", "drop-newest", "error"]) {
          const bridge = new channels.WebSocketBridge({maxQueuedFrames: 2});
          const dropped = [];
          bridge.on("dropped", (event) => dropped.push(event.detail));
          bridge.connect(arguments[0], undefined, {queueOverflow: policy});
          let error = null;
          try {
            for (const n of [1, 2, 3]) bridge.send({n});
          } catch (e) {
            error = e.message;
          }
          results[policy] = {queue: bridge.socket.queue.slice(), dropped, error};
          bridge.close();
          results[policy].afterClose = bridge.socket.queue.length;
        }
        return results;
        """,
        nowhere,
    )
    full = {"reason": "queue full"}
    assert results["drop-oldest"] == {
        "queue": ['{"n":2}', '{"n":3}'],
        "dropped": [{"data": '{"n":1}', **full}],
        "error": None,
        "afterClose": 0,  # a deliberate close discards what was queued
    }
    assert results["drop-newest"] == {
        "queue": ['{"n":1}', '{"n":2}'],
        "dropped": [{"data": '{"n":3}', **full}],
        "error": None,
        "afterClose": 0,
    }
    assert results["error"]["queue"] == ['{"n":1}', '{"n":2}']
    assert results["error"]["dropped"] == []
    assert "2 frames are already queued" in results["error"]["error"]
    assert "raise maxQueuedFrames" in results["error"]["error"]


@browser
def test_backoff_grows_to_its_cap_and_jitter_spreads_two_bridges(chromium, server):
    driver = harness(chromium, server)
    delays = driver.execute_script(
        """
        const options = {minReconnectionDelay: 100, maxReconnectionDelay: 1000,
                         reconnectionDelayGrowFactor: 2, jitter: 0.5};
        const at = (random) => [0, 1, 2, 3, 4, 5].map(
          (attempt) => channels.backoffDelay(attempt, options, () => random));
        return {ceiling: at(0), middle: at(0.5)};
        """
    )
    assert delays["ceiling"] == [100, 200, 400, 800, 1000, 1000]
    assert delays["middle"] == [75, 150, 300, 600, 750, 750]

    # Two pages dropped together (an application's close code: the backoff) do not come
    # back at the same instant.
    options = {"minReconnectionDelay": 400, "maxReconnectionDelay": 400, "jitter": 0.5}
    for name in ("a", "b"):
        make(driver, name, "/ws/", **options)
    for name in ("a", "b"):
        wait_open(driver, name)
        driver.execute_script("bridges[arguments[0]].send({close: 4000})", name)
    for name in ("a", "b"):
        wait_open(driver, name, times=2)
    first, second = (
        driver.execute_script("return bridges[arguments[0]].socket.reconnectDelays", name)
        for name in ("a", "b")
    )
    assert len(first) == len(second) == 1
    assert 200 <= first[0] <= 400
    assert 200 <= second[0] <= 400
    assert first[0] != second[0]


@browser
def test_a_restart_close_waits_a_random_time_in_the_restart_window(chromium, server):
    """1012 and 1001 spread pages evenly over the window; a restart soon after still backs off."""
    driver = harness(chromium, server)
    drawn = driver.execute_script(
        """
        const options = {minRestartDelay: 500, maxRestartDelay: 3000};
        const attempt = (call) => { try { call(); return null; } catch (e) { return e.message; } };
        return {
          delays: [0, 0.5, 0.999].map((r) => channels.restartDelay(options, () => r)),
          defaults: [channels.DEFAULT_OPTIONS.minRestartDelay,
                     channels.DEFAULT_OPTIONS.maxRestartDelay],
          codes: channels.RESTART_CODES,
          inverted: attempt(() => new channels.WebSocketBridge().connect(
            "/ws/", undefined, {minRestartDelay: 500, maxRestartDelay: 100})),
        };
        """
    )
    assert drawn["delays"] == [500, 1750, 500 + 2500 * 0.999]
    assert drawn["defaults"] == [500, 3000]
    assert drawn["codes"] == [1001, 1012]
    assert "option maxRestartDelay must be a number >= 500" in drawn["inverted"]

    window = {"minRestartDelay": 200, "maxRestartDelay": 400}
    # minUptime: the second close comes before the retry count starts again from zero.
    slow_backoff = {"minReconnectionDelay": 1000, "maxReconnectionDelay": 1000, "jitter": 0}
    make(driver, "a", "/ws/", **(FAST | slow_backoff | window))
    make(driver, "b", "/ws/", **FAST | window)
    for name, code in (("a", 1012), ("b", 1001)):
        wait_open(driver, name)
        driver.execute_script("bridges[arguments[0]].send({close: arguments[1]})", name, code)
    for name in ("a", "b"):
        wait_open(driver, name, times=2)
    driver.execute_script("bridges.a.send({close: 1012})")  # again, within minUptime
    wait_open(driver, "a", times=3)
    first, again = driver.execute_script("return bridges.a.socket.reconnectDelays")
    (going_away,) = driver.execute_script("return bridges.b.socket.reconnectDelays")
    assert 200 <= first <= 400
    assert 200 <= going_away <= 400
    assert again == 1000  # the backoff's (no jitter) was longer than the window's draw


@browser
def test_a_deliberate_close_does_not_reconnect(chromium, server):
    driver = harness(chromium, server)
    make(driver, "a", "/ws/", **FAST)
    make(driver, "clock", "/ws/", **FAST)
    wait_open(driver, "a")
    wait_open(driver, "clock")
    driver.execute_script("bridges.a.close()")
    until(driver, "return eventTypes('a')", lambda types: "close" in types, "a's close event")
    # A barrier: "clock" is dropped and reconnects, which takes longer than "a" would
    # have waited to reconnect, had it been going to.
    driver.execute_script("bridges.clock.send({close: 1012})")
    wait_open(driver, "clock", times=2)
    assert event_types(driver, "a") == ["open", "close"]
    assert driver.execute_script("return bridges.a.socket.state") == "closed"
    assert driver.execute_script("return bridges.a.socket.reconnectDelays") == []


@browser
def test_the_heartbeat_gives_up_on_a_connection_that_does_not_answer(chromium, server):
    driver = harness(chromium, server)
    heartbeat = {"heartbeatInterval": 100, "counting": True, **FAST}
    make(driver, "mute", "/ws/mute/", heartbeatTimeout=200, **heartbeat)
    make(driver, "live", "/ws/", heartbeatTimeout=1000, **heartbeat)
    mute = until(
        driver,
        "return record.mute.events",
        lambda seen: [event["type"] for event in seen[:3]] == ["open", "close", "reconnecting"],
        "the mute connection was not given up",
    )
    assert mute[1] == {
        "type": "close",
        "code": 1006,
        "reason": "no frame came back after a heartbeat",
        "wasClean": False,
    }
    # The live one answers each heartbeat: it stays open past several timeouts, and the
    # answers do not reach listen().
    until(
        driver,
        "return (sent[bridges.live.socket.url] || []).length",
        lambda count: count >= 15,
        "the live bridge did not send 15 heartbeats",
    )
    assert event_types(driver, "live") == ["open"]
    assert driver.execute_script("return record.live.received") == []
    assert set(driver.execute_script("return sent[bridges.live.socket.url]")) == {
        '{"type":"heartbeat"}'
    }


@browser
def test_the_page_reconnects_by_itself_after_a_daphne_restart(
    chromium, deployments, redis_url, unique_prefix
):
    server = deployments("daphne", ROUTING, CHANNELS_TEST_DEBUG="1")
    driver = harness(chromium, server)
    backoff = {"minReconnectionDelay": 100, "maxReconnectionDelay": 500}
    make(driver, "b", "/ws/", minRestartDelay=200, maxRestartDelay=400, **backoff)
    wait_open(driver, "b")
    driver.execute_script("bridges.b.send({n: 'before'})")
    wait_received(driver, "b", 1)

    server.processes[0].stop()  # SIGTERM to daphne, which drains; the runworkers stay
    until(
        driver,
        "return eventTypes('b')",
        lambda types: types[:3] == ["open", "close", "reconnecting"],
        "the page did not notice daphne going away",
    )
    driver.execute_script("bridges.b.send({n: 'while down'})")
    env = project_env(
        CHANNELS_TEST_REDIS_URL=redis_url,
        CHANNELS_TEST_PREFIX=unique_prefix,
        CHANNELS_TEST_ROUTING=ROUTING,
        CHANNELS_TEST_DEBUG="1",
    )
    server.processes[0] = start_daphne(env, server.port)

    wait_open(driver, "b", times=2)
    driver.execute_script("bridges.b.send({n: 'after'})")
    received = wait_received(driver, "b", 3)
    assert received == [
        [{"echo": {"n": "before"}}, None],
        [{"echo": {"n": "while down"}}, None],  # queued, sent on reconnection
        [{"echo": {"n": "after"}}, None],
    ]
    _, closed, restart, *retries = events(driver, "b")
    assert closed["code"] == 1012  # "service restart"
    assert (restart["detail"]["code"], restart["detail"]["attempt"]) == (1012, 1)
    assert 200 <= restart["detail"]["delay"] <= 400  # the restart window
    # Attempts while daphne was down failed (1006) and backed off, jittered, up to the cap.
    for retry in retries:
        if retry["type"] == "reconnecting":
            assert retry["detail"]["code"] == 1006
            assert retry["detail"]["delay"] <= 500


@browser
def test_the_pages_of_a_draining_daphne_reconnect_to_another_spread_over_the_window(
    chromium, deployments
):
    """SIGTERM to the daphne that holds eight pages' sockets, behind a "load balancer".

    The balancer is the page's WebSocket class, which connects wherever
    ``window.upstream`` says, as a balancer sends new connections to the
    servers whose health check passes. Each page is told 1012, waits its own
    random time in the restart window, and reconnects to the other daphne,
    where its frames reach the workers both share.
    """
    draining = deployments("daphne", ROUTING, CHANNELS_TEST_DEBUG="1")
    other = deployments("daphne", ROUTING, workers=0, CHANNELS_TEST_DEBUG="1")
    driver = harness(chromium, draining)
    names = [f"p{n}" for n in range(8)]
    window = {"minRestartDelay": 300, "maxRestartDelay": 1500}
    driver.execute_script(
        """
        window.upstream = arguments[0];
        window.Routed = class extends WebSocket {
          constructor(url, protocols) {
            const routed = new URL(url);
            routed.port = String(window.upstream);
            super(routed.href, protocols);
          }
        };
        for (const name of arguments[1]) {
          makeBridge(name, "/ws/", Object.assign({WebSocket: Routed}, arguments[2]));
        }
        """,
        draining.port,
        names,
        window,
    )
    for name in names:
        wait_open(driver, name)

    driver.execute_script("window.upstream = arguments[0]", other.port)  # health check: 503
    draining.processes[0].signal(signal.SIGTERM)
    for name in names:
        wait_open(driver, name, times=2)
        driver.execute_script("bridges[arguments[0]].send({after: arguments[0]})", name)
    delays = []
    for name in names:
        _, closed, reconnecting, _ = events(driver, name)
        assert closed["code"] == 1012
        assert (reconnecting["detail"]["code"], reconnecting["detail"]["attempt"]) == (1012, 1)
        delays.append(reconnecting["detail"]["delay"])
        assert wait_received(driver, name, 1) == [[{"echo": {"after": name}}, None]]
    assert all(300 <= delay <= 1500 for delay in delays), delays
    assert len(set(delays)) == len(names)  # each page drew its own
    draining.processes[0].wait(30)
    print(
        f"\n{len(names)} pages of a draining daphne closed with 1012 reconnected to the other "
        f"after {min(delays):.0f} to {max(delays):.0f} ms (window 300-1500 ms)"
    )


# Data binding: a model change shown in the page ------------------------------------

BINDING_SETTINGS = "tests.bindingapp.settings"
BINDING_ROUTING = "tests.bindingapp.routing.channel_routing"


@pytest.fixture
def binding_database(tmp_path) -> str:
    """A migrated database for the binding app's daphne and workers."""
    path = str(tmp_path / "db.sqlite3")
    env = project_env(CHANNELS_TEST_DB=path, DJANGO_SETTINGS_MODULE=BINDING_SETTINGS)
    subprocess.run(django_command("migrate", "-v", "0"), env=env, check=True, timeout=120)
    return path


@browser
def test_a_model_change_reaches_the_page_through_a_websocket_binding_and_back(
    chromium, deployments, binding_database
):
    server = deployments(
        "daphne",
        BINDING_ROUTING,
        DJANGO_SETTINGS_MODULE=BINDING_SETTINGS,
        CHANNELS_TEST_DB=binding_database,
        CHANNELS_TEST_DEBUG="1",
    )
    driver = harness(chromium, server)
    driver.execute_script(
        """
        const bridge = makeBridge("items", "/items/lobby/", {});
        record.items.changes = [];
        bridge.demultiplex("items", (payload) => record.items.changes.push(payload));
        """
    )
    wait_open(driver, "items")
    form = urllib.parse.urlencode({"value": "5", "board": "lobby"}).encode()
    status, _, body = http(f"{server.url}/items/first/", data=form, method="POST")
    assert status == 200, body
    (created,) = until(driver, "return record.items.changes", bool, "no change reached the page")
    assert created["action"] == "create"
    assert created["model"] == "bindingapp.item"
    assert (created["data"]["name"], created["data"]["value"]) == ("first", 5)

    # The page changes the model through the binding; the change comes back to it.
    driver.execute_script(
        "bridges.items.stream('items').send({action: 'update', pk: arguments[0], "
        "data: {value: 6}})",
        created["pk"],
    )
    changes = until(driver, "return record.items.changes", lambda c: len(c) >= 2, "no update")
    assert (changes[1]["action"], changes[1]["data"]["value"]) == ("update", 6)
