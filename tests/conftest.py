"""Shared fixtures: real servers on free ports and an in-process server.

* ``ambry`` / ``redis``: an ``ambry-server`` / real ``redis-server`` subprocess
  (session-scoped, one per xdist worker) bound to 127.0.0.1 on a free port,
  with FLUSHALL + CONFIG RESETSTAT (and script/function/slowlog resets)
  before each test.  Start-up is detected by polling PING, never by a blind
  sleep; a server that died is reported loudly with its log.
* ``server_factory``: start extra servers with their own options (stopped
  at the end of the test).
* ``inproc``: a :class:`InProcess` server (``Server`` + a fake ``Client``),
  no socket, for unit tests; ``inproc.record()`` attaches a RecordingSink.

Tests that use a real redis-server are marked ``interop`` automatically and
skipped when ``redis-server`` is not on PATH.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from differential import ConnectionClosed, ReplyTimeout, RespConn  # noqa: E402

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def ambry_argv(port: int) -> list[str]:
    """The command line of a test ambry-server (same options as redis)."""
    return [sys.executable, "-m", "ambry.server.main", *base_options(port)]


def redis_argv(port: int) -> list[str]:
    return ["redis-server", *base_options(port)]


def base_options(port: int) -> list[str]:
    return [
        "--port", str(port),
        "--bind", HOST,
        "--save", "",
        "--appendonly", "no",
        "--enable-debug-command", "yes",
    ]


class ServerProcess:
    """A server subprocess: start, wait for PING, check health, stop.

    ``kind`` is "ambry" or "redis"; extra options are appended after the
    base ones.  The server runs in its own temporary directory (so dump.rdb
    and the like never land in the work tree) and logs to ``log_path``."""

    def __init__(self, kind: str, extra: list[str] | None = None, port: int | None = None) -> None:
        self.kind = kind
        self.extra = list(extra or [])
        self.port = port or free_port()
        self.host = HOST
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ambry-test-{kind}-"))
        self.log_path = self.workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped = False

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    def argv(self) -> list[str]:
        base = ambry_argv(self.port) if self.kind == "ambry" else redis_argv(self.port)
        return base + self.extra

    def start(self) -> ServerProcess:
        for attempt in range(3):
            if attempt:
                self.port = free_port()
            self.stopped = False
            log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            self.proc = subprocess.Popen(
                self.argv(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env,
            )
            log.close()
            if self._wait_ready():
                return self
            # The port was taken between our check and the bind: try another.
            if "already in use" not in self.log_text() and "Could not create server" not in self.log_text():
                break
        self.kill()
        raise RuntimeError(f"{self.kind}-server did not start on port {self.port}:\n{self.log_text()}")

    def _wait_ready(self) -> bool:
        """Poll PING until it answers (or the process exits)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                conn = RespConn(self.host, self.port, timeout=2.0)
            except OSError:
                time.sleep(0.02)
                continue
            try:
                r = conn.command(b"PING")
                if r.startswith((b"+PONG", b"-NOAUTH")):
                    return True
            except (OSError, ConnectionClosed, ReplyTimeout):
                pass
            finally:
                conn.close()
            time.sleep(0.02)
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, tail: int = 300) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-tail:])

    def check_alive(self) -> None:
        """Fail the test loudly, with the server's log, if it died."""
        if self.proc is not None and not self.stopped and self.proc.poll() is not None:
            pytest.fail(
                f"{self.kind}-server (port {self.port}) exited with code {self.proc.returncode}; log:\n"
                f"{self.log_text()}",
                pytrace=False,
            )

    def conn(self, timeout: float = 10.0) -> RespConn:
        return RespConn(self.host, self.port, timeout=timeout)

    def command(self, *args: bytes | str | int) -> bytes:
        """One command on a short-lived connection; the raw reply."""
        c = self.conn()
        try:
            return c.command(*args)
        finally:
            c.close()

    def reset(self) -> None:
        """Back to an empty, counter-free server between tests.

        Commands the server does not implement just answer an error."""
        c = self.conn()
        try:
            for cmd in (
                ("FLUSHALL",),
                ("CONFIG", "RESETSTAT"),
                ("SCRIPT", "FLUSH"),
                ("FUNCTION", "FLUSH"),
                ("SLOWLOG", "RESET"),
                ("LATENCY", "RESET"),
            ):
                c.command(*cmd)
        finally:
            c.close()

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop the server; returns its exit code (None if it had to be killed)."""
        self.stopped = True
        p = self.proc
        if p is None:
            return None
        if p.poll() is not None:
            return p.returncode
        p.send_signal(sig)
        try:
            return p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None

    def kill(self) -> None:
        self.stopped = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        """Stop and start again on the same port (fresh state and config)."""
        self.stop()
        self.proc = None
        self.start()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def have_redis() -> bool:
    return shutil.which("redis-server") is not None


# -- collection -------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that talk to a real redis-server are interop tests."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "redis" in names or "redis_server" in names:
            item.add_marker(pytest.mark.interop)


# -- servers ----------------------------------------------------------------------


class _Registry:
    """Servers started by a fixture; checked and stopped at its end."""

    def __init__(self) -> None:
        self.servers: list[ServerProcess] = []

    def start(self, kind: str, *extra: str) -> ServerProcess:
        if kind == "redis" and not have_redis():
            pytest.skip("redis-server is not installed")
        s = ServerProcess(kind, list(extra)).start()
        self.servers.append(s)
        return s

    def finish(self) -> None:
        crashed = []
        for s in self.servers:
            if s.proc is not None and not s.stopped and s.proc.poll() is not None:
                crashed.append(s)
        for s in self.servers:
            if s.proc is not None and not s.stopped:
                s.stop()
        for s in self.servers:
            if s not in crashed:
                s.cleanup()
        if crashed:
            msg = "\n\n".join(
                f"{s.kind}-server (port {s.port}) crashed with code {s.proc.returncode if s.proc else '?'}; "
                f"log:\n{s.log_text()}"
                for s in crashed
            )
            for s in crashed:
                s.cleanup()
            pytest.fail(msg, pytrace=False)


@pytest.fixture(scope="session")
def ambry_server() -> Iterator[ServerProcess]:
    """The session's ambry-server (one per xdist worker)."""
    reg = _Registry()
    s = reg.start("ambry")
    yield s
    reg.finish()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess]:
    """The session's real redis-server; skips when it is not installed."""
    if not have_redis():
        pytest.skip("redis-server is not installed")
    reg = _Registry()
    s = reg.start("redis")
    yield s
    reg.finish()


def _fresh(s: ServerProcess) -> Iterator[ServerProcess]:
    """Reset the shared server around one test.  A server that died during
    the test fails that test with its log and is started again, so the
    tests after it still run."""
    if not s.alive():
        s.restart()
    s.reset()
    yield s
    if s.proc is not None and s.proc.poll() is not None:
        msg = f"{s.kind}-server (port {s.port}) died with code {s.proc.returncode}; log:\n{s.log_text()}"
        s.restart()
        pytest.fail(msg, pytrace=False)


@pytest.fixture
def ambry(ambry_server: ServerProcess) -> Iterator[ServerProcess]:
    """The shared ambry-server, emptied and with reset counters."""
    yield from _fresh(ambry_server)


@pytest.fixture
def redis(redis_server: ServerProcess) -> Iterator[ServerProcess]:
    """The shared real redis-server, emptied and with reset counters."""
    yield from _fresh(redis_server)


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """``server_factory("ambry" | "redis", *options)``: a server of the test's own."""
    reg = _Registry()
    yield reg.start
    reg.finish()


# -- in-process server -------------------------------------------------------------


class InProcess:
    """An Ambry server without sockets: commands go straight to ``process``.

    ``call(*args)`` returns the reply value (``Err`` instances for errors, as
    ``process`` returns them); ``record()`` attaches a RecordingSink so the
    effects that would reach the AOF and replicas can be inspected."""

    def __init__(self) -> None:
        import ambry.server.commands as cmds
        from ambry.server.client import Client
        from ambry.server.config import Config
        from ambry.server.core import Server

        self._client_cls = Client
        cfg = Config()
        cfg.apply_args(["--save", ""])  # as the real test servers: no RDB from FLUSHALL/SHUTDOWN
        self.srv = Server(cfg)
        cmds.install(self.srv)
        self.client = self.new_client()

    def new_client(self) -> Any:
        return self._client_cls(self.srv, fake=True)

    def call(self, *args: bytes | str | int, client: Any = None) -> Any:
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        c = self.client if client is None else client
        return self.srv.process(c, argv)

    def record(self, targets: int | None = None) -> Any:
        """Attach a RecordingSink (all targets, or e.g. ``effects.TARGET_AOF``)."""
        from ambry.server.effects import TARGET_ALL, RecordingSink

        sink = RecordingSink(TARGET_ALL if targets is None else targets)
        self.srv.propagator.add_sink(sink)
        return sink

    def encode(self, reply: Any, resp3: bool = False) -> bytes:
        """The reply's wire bytes (RESP2 or RESP3)."""
        from ambry.server.reply import to_bytes

        return to_bytes(reply, resp3)


@pytest.fixture
def inproc() -> InProcess:
    """A fresh in-process server with one fake client."""
    return InProcess()
