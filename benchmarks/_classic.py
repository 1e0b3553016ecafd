"""The original Channels 1.1.8 stack: daphne 1.4.2 + runworkers on asgi_redis.

Its venv (``benchmarks/.cache/anchor-classic-118``) holds Django 2.2 and the
last Channels 1.x releases; the project is ``anchor_projects/classic``.
daphne 1.4.2 is started as the venv's ``bin/daphne`` script (it has no
``__main__``); with ``txredisapi`` installed it receives natively in Twisted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks import _harness, _support
from tests.processes import free_port, ready, wait_for_port

CLASSIC_VENV = _support.AnchorVenv(
    name="anchor-classic-118",
    requirements=[
        "Django==2.2.28",
        "channels==1.1.8",
        "daphne==1.4.2",
        "asgiref==1.1.2",
        "asgi_redis==1.4.3",
        "msgpack==0.6.2",
        "msgpack-python==0.5.6",
        "redis==2.10.6",
        "txredisapi",
    ],
    imports=["channels.asgi", "asgi_redis", "daphne.server", "django", "txredisapi"],
)


def classic_env(redis_url: str, prefix: str) -> dict[str, str]:
    """Environment of the Channels 1.1.8 processes (``anchor_projects/classic``)."""
    return {
        **_harness.clean_environ(),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(_harness.ANCHOR_PROJECTS),
        "DJANGO_SETTINGS_MODULE": "classic.settings",
        "BENCH_REDIS_URL": redis_url,
        "BENCH_PREFIX": prefix,
    }


def _start_daphne(python: Path, port: int, env: dict[str, str]) -> _harness.ServerProcess:
    # daphne 1.4.2's log lines are not those of daphne 4, so its port is picked here
    # and waited for rather than read back from its output.
    daphne = _harness.ServerProcess(
        [
            str(python.parent / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "classic.asgi:channel_layer",
        ],
        env,
        _harness.ANCHOR_PROJECTS,
        "classic-daphne",
    )
    return ready(daphne, lambda: wait_for_port(port, timeout=60))


def _start_worker(python: Path, env: dict[str, str], n: int) -> _harness.ServerProcess:
    worker = _harness.ServerProcess(
        [str(python), "-s", "-m", "django", "runworker"],
        env,
        _harness.ANCHOR_PROJECTS,
        f"classic-runworker-{n}",
    )
    return ready(worker, lambda: worker.wait_for("Running worker", timeout=60))


def start_classic_stack(
    python: Path, redis_url: str, prefix: str, label: str, workers: int = 2
) -> _harness.Stack:
    """Channels 1.1.8: daphne 1.4.2 plus *workers* runworkers, all on asgi_redis."""
    env = classic_env(redis_url, prefix)
    port = free_port()
    stack = _harness.Stack("classic", label, port)
    starters: list[Callable[[], _harness.ServerProcess]] = [
        lambda n=n: _start_worker(python, env, n) for n in range(1, workers + 1)
    ]
    starters.append(lambda: _start_daphne(python, port, env))
    return _harness._start_all(stack, starters)
