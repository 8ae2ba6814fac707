"""``ambry-server`` as a program: what redis-server accepts, prints and does.

Every behaviour is checked on Ambry and, as an oracle for the test itself,
on a real ``redis-server`` run the same way (interop, skipped when absent):
a config file (redis.conf syntax: comments, quoted arguments, ``include``)
plus ``--directive value`` arguments, a config read from stdin (``-``), the
exact FATAL CONFIG FILE ERROR text and exit code 1, clean shutdown on
SIGTERM/SIGINT with log lines in Redis's format, the pid file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import HOST, free_port
from differential import ConnectionClosed, ReplyTimeout, RespConn

KINDS = ["ambry", pytest.param("redis", marks=pytest.mark.interop)]

# serverLogRaw: "pid:role dd Mon yyyy hh:mm:ss.mmm level message"; the
# signal handler's async-safe variant: "pid:signal-handler (unixtime) message".
LOG_LINE = re.compile(r"^\d+:[MCSX] \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d{3} [.\-*#] ")
SIGNAL_LOG_LINE = re.compile(r"^\d+:signal-handler \(\d+\) ")


def server_cmd(kind: str) -> list[str]:
    """How to run the program: the installed console script when present."""
    if kind == "redis":
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        return ["redis-server"]
    script = Path(sys.executable).with_name("ambry-server")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ambry.server.main"]


def run_fatal(kind: str, args: list[str], cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run a server that is expected to refuse to start."""
    return subprocess.run(
        server_cmd(kind) + args, cwd=cwd, input=stdin, capture_output=True, timeout=60,
    )


class Running:
    """A server started by a CLI test, with its output captured in a file."""

    def __init__(self, kind: str, args: list[str], cwd: Path, port: int, stdin: bytes | None = None) -> None:
        self.port = port
        self.log = cwd / f"{kind}.out"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                server_cmd(kind) + args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll until the server answers on its port (PING, or NOAUTH)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.output()}", pytrace=False)
            try:
                c = RespConn(HOST, self.port, timeout=2)
            except OSError:
                time.sleep(0.02)
                continue
            try:
                if c.command("PING").startswith((b"+PONG", b"-NOAUTH")):
                    return
            except (OSError, ConnectionClosed, ReplyTimeout):
                pass
            finally:
                c.close()
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"server did not answer on port {self.port}:\n{self.output()}", pytrace=False)

    def conn(self) -> RespConn:
        return RespConn(HOST, self.port)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"server ignored signal {sig} for {timeout}s:\n{self.output()}", pytrace=False)
        return self.proc.returncode


@pytest.fixture
def running(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start servers with ``running(kind, args, port)``; all stopped at the end."""
    started: list[Running] = []

    def start(kind: str, args: list[str], port: int, stdin: bytes | None = None) -> Running:
        r = Running(kind, args, tmp_path, port, stdin)
        started.append(r)
        r.wait_ready()
        return r

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def _base(port: int) -> list[str]:
    return ["--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]


# -- config file + directives ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_config_file_include_quotes_and_directives(kind: str, tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    """File, included file, quoted values; a --directive overrides the file."""
    file_port, port = free_port(), free_port()
    (tmp_path / "extra.conf").write_text("# included\ndatabases 4\n")
    conf = tmp_path / "main.conf"
    conf.write_text(
        "# a comment, then blank lines\n\n"
        f"port {file_port}\n"
        f"bind {HOST}\n"
        'save ""\n'
        "appendonly no\n"
        f"include {tmp_path / 'extra.conf'}\n"
        'requirepass "pa ss\\x21"\n'
        "   maxmemory-policy    allkeys-lru   \n"
    )
    r = running(kind, [str(conf), "--port", str(port)], port)
    c = r.conn()
    try:
        assert c.command("PING") == b"-NOAUTH Authentication required.\r\n"
        assert c.command("AUTH", "pa ss!") == b"+OK\r\n"
        assert c.command("SELECT", "3") == b"+OK\r\n"
        assert c.command("SELECT", "4") == b"-ERR DB index is out of range\r\n"
        got = c.command("CONFIG", "GET", "maxmemory-policy")
        if not got.startswith(b"-ERR unknown command"):
            assert got == b"*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n"
            assert c.command("CONFIG", "GET", "port") == b"*2\r\n$4\r\nport\r\n$%d\r\n%d\r\n" % (
                len(str(port)), port)
    finally:
        c.close()
    with pytest.raises(OSError):
        RespConn(HOST, file_port, timeout=1).close()
    assert r.stop() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_config_from_stdin(kind: str, tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    """``server - --directive v``: the config text comes from standard input."""
    port = free_port()
    stdin = f"port {port}\nbind {HOST}\nsave \"\"\nappendonly no\ndatabases 2\n".encode()
    r = running(kind, ["-", "--requirepass", "pw"], port, stdin=stdin)
    c = r.conn()
    try:
        assert c.command("AUTH", "pw") == b"+OK\r\n"
        assert c.command("SELECT", "2") == b"-ERR DB index is out of range\r\n"
    finally:
        c.close()
    assert r.stop() == 0


# -- fatal config errors ---------------------------------------------------------------


def _fatal(line_no: int, line: str, reason: str) -> bytes:
    return (
        f"\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n"
        f"Reading the configuration file, at line {line_no}\n>>> '{line}'\n{reason}\n"
    ).encode()


# (id, args (``{conf}``/``{inc}`` are replaced by file paths), file text, included text, stderr)
FATAL = [
    ("unknown-directive", ["--foo", "bar"], None, None,
     _fatal(2, 'foo "bar"', "Bad directive or wrong number of arguments")),
    ("port-not-an-integer", ["--port", "abc"], None, None,
     _fatal(2, 'port "abc"', "argument couldn't be parsed into an integer")),
    ("port-missing-value", ["--port", "1", "--port"], None, None,
     _fatal(3, "port", "wrong number of arguments")),
    ("enum-bad-value", ["--maxmemory-policy", "foo"], None, None,
     _fatal(2, 'maxmemory-policy "foo"',
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, "
            "volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction")),
    ("bad-line-in-file", ["{conf}", "--port", "5"], "port 1234\n\nbogus 1 2\n", None,
     _fatal(3, "bogus 1 2", "Bad directive or wrong number of arguments")),
    ("bad-line-in-included-file", ["{conf}"], "include {inc}\n", "port 1234\n\nbogus 1 2\n",
     _fatal(3, "bogus 1 2", "Bad directive or wrong number of arguments")),
    ("unbalanced-quotes-in-file", ["{conf}"], 'requirepass "a b\n', None,
     _fatal(1, 'requirepass "a b', "Unbalanced quotes in configuration line")),
]


def _fatal_args(tmp_path: Path, args: list[str], text: str | None, inc: str | None) -> list[str]:
    conf, incf = tmp_path / "test.conf", tmp_path / "inc.conf"
    if inc is not None:
        incf.write_text(inc)
    if text is not None:
        conf.write_text(text.replace("{inc}", str(incf)))
    return [a.replace("{conf}", str(conf)).replace("{inc}", str(incf)) for a in args]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("args,text,inc,stderr", [c[1:] for c in FATAL], ids=[c[0] for c in FATAL])
def test_bad_config_is_fatal(kind: str, tmp_path: Path, args: list[str], text: str | None, inc: str | None,
                             stderr: bytes) -> None:
    """Redis's exact FATAL text on stderr, nothing on stdout, exit code 1."""
    p = run_fatal(kind, _fatal_args(tmp_path, args, text, inc), tmp_path)
    assert (p.returncode, p.stderr, p.stdout) == (1, stderr, b"")


@pytest.mark.interop
@pytest.mark.parametrize("args,text,inc", [c[1:4] for c in FATAL], ids=[c[0] for c in FATAL])
def test_bad_config_output_same_as_redis(tmp_path: Path, args: list[str], text: str | None,
                                         inc: str | None) -> None:
    a = run_fatal("ambry", _fatal_args(tmp_path, args, text, inc), tmp_path)
    r = run_fatal("redis", _fatal_args(tmp_path, args, text, inc), tmp_path)
    assert (a.returncode, a.stderr, a.stdout) == (r.returncode, r.stderr, r.stdout)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_config_file(kind: str, tmp_path: Path) -> None:
    p = run_fatal(kind, [str(tmp_path / "nope.conf")], tmp_path)
    assert p.returncode == 1
    out = (p.stdout + p.stderr).decode()
    assert f"Fatal error, can't open config file '{tmp_path / 'nope.conf'}': No such file or directory" in out


# -- signals, log format, pid file --------------------------------------------------------


def check_log_format(text: str) -> None:
    """Every line is in serverLogRaw's format (or the signal handler's)."""
    bad = [ln for ln in text.splitlines() if ln and not (LOG_LINE.match(ln) or SIGNAL_LOG_LINE.match(ln))]
    assert not bad, "log lines not in Redis's format:\n" + "\n".join(bad)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_shuts_down_cleanly(kind: str, sig: signal.Signals, tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    pidfile = tmp_path / "server.pid"
    r = running(kind, [*_base(port), "--pidfile", str(pidfile)], port)
    assert pidfile.read_text().strip() == str(r.proc.pid)
    c = r.conn()
    try:
        assert c.command("PING") == b"+PONG\r\n"
    finally:
        c.close()
    assert r.stop(sig) == 0
    assert not pidfile.exists(), "the pid file must be removed at shutdown"
    out = r.output()
    check_log_format(out)
    assert re.search(r" Ready to accept connections( tcp)?$", out, re.M), out
    assert f"Received {sig.name} scheduling shutdown..." in out
    assert re.search(r" # User requested shutdown\.\.\.$", out, re.M), out
    assert re.search(r" # \w+ is now ready to exit, bye bye\.\.\.$", out, re.M), out
    assert re.search(r" \* Removing the pid file\.$", out, re.M), out


@pytest.mark.parametrize("kind", KINDS)
def test_port_directive_is_honoured(kind: str, tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    r = running(kind, _base(port), port)
    out = r.output()
    check_log_format(out)
    assert f"port={port}" in out
    assert r.stop() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_command_exits_cleanly(kind: str, tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    pidfile = tmp_path / "s.pid"
    r = running(kind, [*_base(port), "--pidfile", str(pidfile)], port)
    c = r.conn()
    try:
        c.send(b"SHUTDOWN NOSAVE\r\n")
        data, closed = c.read_until_silence(silence=10)
    finally:
        c.close()
    if data.startswith(b"-ERR unknown command"):
        pytest.skip("SHUTDOWN is not implemented yet")
    assert (data, closed) == (b"", True)
    assert r.proc.wait(20) == 0
    assert not pidfile.exists()
    check_log_format(r.output())


def test_console_script_is_installed() -> None:
    """``pip install`` provides the ``ambry-server`` command."""
    script = Path(sys.executable).with_name("ambry-server")
    if not script.exists():
        script_path = shutil.which("ambry-server")
        if script_path is None:
            pytest.fail("ambry-server is not on PATH nor next to the interpreter")
        script = Path(script_path)
    p = subprocess.run([str(script), "--version"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert b" v=" in p.stdout
