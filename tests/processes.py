"""Real child processes for the tests and the benchmarks: daphne, runworker, anything.

One harness, used by ``tests/`` and ``benchmarks/`` alike. A
:class:`ManagedProcess` reads its child's output on a thread, so a caller
waits for a line (an event) rather than for a guess of seconds. daphne starts
on port 0 and the port it got is read back from its ``Listening on TCP
address`` line, as ``daphne.testing.DaphneProcess`` reads it from the server:
no free port is picked first and raced for.

Standard library only (and :mod:`tests.waiting`): the benchmarks load it inside
the anchor virtualenvs (Channels 4), where neither our ``channels`` nor the
test dependencies are installed.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from tests.waiting import WaitTimeout, wait_until

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"

#: daphne's line once an endpoint listens (``daphne.server.Server.listen_success``).
DAPHNE_LISTENING = re.compile(r"Listening on TCP address (?P<host>\S+):(?P<port>\d+)\s*$")
#: The port of a ``-e tcp:PORT...`` / ``-e ssl:port=PORT...`` endpoint description.
_ENDPOINT_PORT = re.compile(r"^(?:tcp|ssl|tcp6):(?:port=)?(\d+)")

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: The end of a child's output, put on the line queue after its last line.
_EOF = None

P = TypeVar("P", bound="ManagedProcess")


def project_env(**extra: str) -> dict[str, str]:
    """Environment for a process running the test project."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.project.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def django_command(*args: str) -> list[str]:
    """``python -m django *args`` with this interpreter."""
    return [sys.executable, "-m", "django", *args]


# Ports -------------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on *host* that is free right now.

    Only for servers that cannot bind port 0 and say which port they got
    (redis-server, where ``--port 0`` means "no TCP"; Django's runserver, whose
    banner prints the port asked for). Another process may take the port before
    the server binds it: prefer port 0 where the server reports its port.
    """
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def accepts(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on *host*:*port* now."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_for_port(port: int, timeout: float = 20, host: str = LOOPBACK) -> None:
    """Wait until something accepts connections on *host*:*port*.

    For servers that print nothing when they listen; a server that prints a
    line should be waited for with :meth:`ManagedProcess.wait_for`.
    """
    wait_until(lambda: accepts(port, host), timeout, f"nothing listens on {host}:{port}")


# Processes ---------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds of process *pid* (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the ")" that ends the command name: fields[11] is utime, fields[12] stime.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Return the resident memory (VmRSS) of process *pid* in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class ManagedProcess:
    """A child process whose output lines can be waited for, and that stops when told.

    stdout and stderr are merged and read by a thread into :attr:`output` (every
    line so far) and :attr:`lines` (the lines not yet consumed by
    :meth:`wait_for`).
    """

    #: Seconds :meth:`stop` gives the process after SIGTERM before SIGKILL.
    stop_timeout = 10.0

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        cwd: Path = ROOT,
        name: str | None = None,
    ) -> None:
        self.args = list(args)
        self.name = name or Path(self.args[0]).name
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            self.args,
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        stdout = self.process.stdout
        if stdout is None:  # pragma: no cover - Popen above always pipes stdout
            return
        for line in stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(_EOF)

    def tail(self, lines: int = 20) -> str:
        """Return the last *lines* lines the process printed."""
        return "".join(self.output[-lines:])

    def wait_for(self, pattern: str, timeout: float = 30) -> str:
        """Return the first new output line matching *pattern*, or fail after *timeout*.

        Blocks on the output itself: it returns as soon as the line is printed,
        and fails at once if the process closes its output (it exited) first.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise WaitTimeout(
                    f"{self.name}: {pattern!r} not seen within {timeout:g} s; "
                    f"output:\n{''.join(self.output)}"
                ) from None
            if line is _EOF:
                self.lines.put(_EOF)  # later waits fail at once too
                try:
                    returncode: int | None = self.process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:  # it closed its output but runs on
                    returncode = None
                raise WaitTimeout(
                    f"{self.name} exited ({returncode}) before {pattern!r}; "
                    f"output:\n{''.join(self.output)}"
                )
            if regex.search(line):
                return line

    def cpu_seconds(self) -> float:
        """CPU seconds the process has used so far."""
        return process_cpu_seconds(self.pid)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to exit; return its exit code."""
        code = self.process.wait(timeout)
        self._close()
        return code

    def _close(self) -> None:
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after :attr:`stop_timeout`); reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close()


def ready(process: P, wait: Callable[[], object]) -> P:
    """Return *process* once ``wait()`` returns; stop it if that fails, so nothing is left."""
    try:
        wait()
    except BaseException:
        process.stop()
        raise
    return process


# daphne and runworker ------------------------------------------------------------


class DaphneProcess(ManagedProcess):
    """daphne in a child process; :attr:`port` is the TCP port its ``-p`` endpoint got."""

    port: int


def _verbosity(flags: Sequence[str]) -> str:
    for option in ("-v", "--verbosity"):
        if option in flags[:-1]:
            return flags[list(flags).index(option) + 1]
    return "1"


def _endpoint_ports(flags: Sequence[str]) -> set[int]:
    """The ports named by ``-e``/``--endpoint`` flags (their lines are not ``-p``'s)."""
    ports = set()
    for index, flag in enumerate(flags[:-1]):
        if flag in ("-e", "--endpoint"):
            found = _ENDPOINT_PORT.match(flags[index + 1])
            if found:
                ports.add(int(found[1]))
    return ports


def listening_port(daphne: ManagedProcess, timeout: float, exclude: Collection[int] = ()) -> int:
    """Wait for daphne's ``Listening on TCP address`` line; return the port (not in *exclude*)."""
    deadline = time.monotonic() + timeout
    while True:
        line = daphne.wait_for(
            DAPHNE_LISTENING.pattern, timeout=max(0.001, deadline - time.monotonic())
        )
        found = DAPHNE_LISTENING.search(line)
        if found is not None and int(found["port"]) not in exclude:
            return int(found["port"])


def start_daphne(
    application: str,
    env: Mapping[str, str],
    *flags: str,
    port: int = 0,
    host: str = LOOPBACK,
    python: str | Path = sys.executable,
    cwd: Path = ROOT,
    name: str = "daphne",
    timeout: float = 30,
    prefix: Sequence[str] = (),
) -> DaphneProcess:
    """Start ``python -m daphne`` serving *application* on *host*; return it once it listens.

    With ``port=0`` (the default) the kernel picks the port and it is read back
    from daphne's log line, so no other process can take it in between. At
    ``-v 0`` daphne logs nothing, so a free port is picked first and waited for.
    Endpoints given with ``-e`` need ports of their own (not 0). *prefix* runs
    the command under another, e.g. ``ip netns exec NAME`` (:mod:`tests.netns`);
    it cannot be combined with ``-v 0``, whose port is picked and waited for here.
    """
    quiet = _verbosity(flags) == "0"
    if quiet and prefix:
        raise ValueError("start_daphne(prefix=...) needs daphne's log line: drop -v 0")
    if quiet and port == 0:
        port = free_port(host)
    daphne = DaphneProcess(
        [*prefix, str(python), "-m", "daphne", "-b", host, "-p", str(port), *flags, application],
        env,
        cwd,
        name,
    )

    def wait() -> None:
        if quiet:
            wait_for_port(port, timeout, host)
            daphne.port = port
        else:
            daphne.port = listening_port(daphne, timeout, exclude=_endpoint_ports(flags))

    return ready(daphne, wait)


def start_runworker(
    env: Mapping[str, str],
    *flags: str,
    python: str | Path = sys.executable,
    cwd: Path = ROOT,
    name: str = "runworker",
    timeout: float = 30,
    prefix: Sequence[str] = (),
) -> ManagedProcess:
    """Start ``python -m django runworker``; return it once it listens on its channels.

    *prefix* runs it under another command, e.g. ``ip netns exec NAME``.
    """
    command = [*prefix, str(python), "-m", "django", "runworker", *flags]
    worker = ManagedProcess(command, env, cwd, name)
    return ready(worker, lambda: worker.wait_for("Listening on channels", timeout))
