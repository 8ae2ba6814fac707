"""The AOF's durability promise, proven by crashing the server.

* ``appendfsync always``: ``kill -9`` in the middle of a write load from
  several clients; after a restart every acknowledged write is there (and
  nothing that was never sent).
* ``appendfsync everysec``: the same crash loses at most what was
  acknowledged in the last ~2 seconds (a process crash normally loses
  nothing: the write(2) happens before the reply).
* A cut at every byte position of a small AOF either loads a prefix of
  whole execution units (``aof-load-truncated yes``, the file cut at the end
  of that prefix) or refuses to start (``no``) -- never wrong data.
* A randomized workload over every type (expiries, MULTI/EXEC, SPOP,
  INCRBYFLOAT, served blocking pops, scripts when they exist) with rewrites
  in the middle replays to the same DEBUG DIGEST, in Ambry and in real
  redis-server 7.0.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from ambry.persistence.aof import AOFParser, Command
from conftest import ambry_argv, free_port, have_redis, redis_argv

# -- helpers ------------------------------------------------------------------------------------


class Proc:
    """A server process in a directory that survives restarts."""

    def __init__(self, kind: str, workdir: Path, *extra: str) -> None:
        self.kind = kind
        self.workdir = workdir
        self.extra = ["--enable-debug-command", "yes", *extra]
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> redis_py.Redis:
        argv = (ambry_argv if self.kind == "ambry" else redis_argv)(self.port) + self.extra
        self.proc = subprocess.Popen(argv + ["--logfile", "server.log"], cwd=self.workdir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        r = redis_py.Redis(port=self.port)
        deadline = time.monotonic() + 60
        while True:
            try:
                r.ping()
                return r
            except (redis_py.ConnectionError, redis_py.BusyLoadingError):
                assert self.proc.poll() is None, f"server exited:\n{self.log()}"
                assert time.monotonic() < deadline
                time.sleep(0.02)

    def log(self) -> str:
        try:
            return (self.workdir / "server.log").read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Any]:
    made: list[Proc] = []

    def make(kind: str, *extra: str, workdir: Path | None = None) -> Proc:
        if kind == "redis" and not have_redis():
            pytest.skip("redis-server is not installed")
        p = Proc(kind, workdir or tmp_path, *extra)
        made.append(p)
        return p

    yield make
    for p in made:
        p.kill9()


def _write_load(port: int, clients: int, stop: threading.Event
                ) -> tuple[list[dict[str, Any]], list[threading.Thread]]:
    """Each client INCRs its own counter and RPUSHes to its own list; the
    last acknowledged value and the time of each ack are recorded."""
    results: list[dict[str, Any]] = [{"counter": 0, "list": 0, "acks": []} for _ in range(clients)]

    def run(i: int) -> None:
        r = redis_py.Redis(port=port, socket_timeout=10)
        res = results[i]
        n = 0
        try:
            while not stop.is_set():
                n += 1
                if n % 2:
                    v = r.incr(f"counter:{i}")
                    res["counter"] = v
                else:
                    v = r.rpush(f"list:{i}", n)
                    res["list"] = v
                res["acks"].append((time.monotonic(), "counter" if n % 2 else "list", v))
        except (redis_py.ConnectionError, redis_py.TimeoutError):
            pass  # the server was killed under us

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    return results, threads


# -- kill -9 --------------------------------------------------------------------------------------


def test_kill_9_with_appendfsync_always_loses_no_acknowledged_write(procs: Any) -> None:
    p = procs("ambry", "--appendonly", "yes", "--appendfsync", "always")
    p.start()
    stop = threading.Event()
    results, threads = _write_load(p.port, 4, stop)
    time.sleep(2.0)
    p.kill9()  # mid-load: some replies are in flight
    stop.set()
    for t in threads:
        t.join(30)
    r = p.start()
    for i, res in enumerate(results):
        counter = int(r.get(f"counter:{i}") or 0)
        length = r.llen(f"list:{i}")
        # every acknowledged write is there; at most the one in flight beyond it
        assert res["counter"] <= counter <= res["counter"] + 1, (i, res["counter"], counter)
        assert res["list"] <= length <= res["list"] + 1, (i, res["list"], length)
        # the list holds its writes in order, without holes
        items = [int(x) for x in r.lrange(f"list:{i}", 0, -1)]
        assert items == sorted(items) and items == list(range(2, 2 * length + 1, 2))
    assert sum(res["counter"] for res in results) > 10, "the load did not run"


def test_kill_9_with_appendfsync_everysec_loses_at_most_the_last_two_seconds(procs: Any) -> None:
    p = procs("ambry", "--appendonly", "yes", "--appendfsync", "everysec")
    p.start()
    stop = threading.Event()
    results, threads = _write_load(p.port, 4, stop)
    time.sleep(2.5)
    killed_at = time.monotonic()
    p.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    r = p.start()
    for i, res in enumerate(results):
        counter = int(r.get(f"counter:{i}") or 0)
        # what is missing was acknowledged within ~2 s of the crash
        missing = [a for a in res["acks"] if a[1] == "counter" and a[2] > counter]
        assert all(killed_at - t <= 2.5 for t, _, _ in missing), missing[:3]
        assert counter <= res["counter"] + 1


# -- every cut of a small AOF ---------------------------------------------------------------------


class _Node:
    def __init__(self, *args: str) -> None:
        import ambry.server.commands as cmds
        from ambry.server import aof
        from ambry.server.client import Client
        from ambry.server.config import Config
        from ambry.server.core import Server

        cfg = Config()
        cfg.apply_args(["--save", "", "--enable-debug-command", "yes", *args])
        self.srv = Server(cfg)
        cmds.install(self.srv)
        self.client = Client(self.srv, fake=True)
        self.exit_code = 0
        try:
            asyncio.run(aof.startup_load(self.srv, None))
        except SystemExit as e:
            self.exit_code = int(e.code or 0)
        self.aof = aof.state(self.srv)

    def call(self, *args: str) -> Any:
        r = self.srv.process(self.client, [a.encode() for a in args])
        self.client.flush()
        return r

    def close(self) -> None:
        if self.aof.fd != -1:
            self.aof.bio.drain()
            os.close(self.aof.fd)
            self.aof.fd = -1


@pytest.fixture
def quiet_log() -> Iterator[io.StringIO]:
    from ambry.server.log import log

    buf = io.StringIO()
    saved = log._file
    log._file = buf
    yield buf
    log._file = saved


def test_a_cut_at_every_byte_loads_a_prefix_of_whole_units_or_refuses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet_log: io.StringIO) -> None:
    src = tmp_path / "src"
    src.mkdir()
    monkeypatch.chdir(src)
    n = _Node("--appendonly", "yes")
    n.call("SET", "a", "1")
    n.call("RPUSH", "l", "x", "y")
    n.call("MULTI")
    n.call("SET", "b", "2")
    n.call("INCR", "a")
    n.call("EXEC")
    n.call("SELECT", "3")
    n.call("HSET", "h", "f", "value-with-some-length")
    n.call("SADD", "s", "m1", "m2")
    n.call("SPOP", "s", "1")
    n.call("SET", "e", "v", "PX", "100000000")
    n.close()
    incr = src / "appendonlydir" / "appendonly.aof.1.incr.aof"
    data = incr.read_bytes()
    # ends of whole execution units (never inside MULTI ... EXEC)
    units = [0]
    in_multi = False
    p = AOFParser()
    for ev in p.feed(data):
        assert type(ev) is Command
        name = ev.argv[0].upper()
        in_multi = (in_multi or name == b"MULTI") and name != b"EXEC"
        if not in_multi:
            units.append(ev.end)

    def load(cut: int, truncated: str) -> tuple[int, bytes | None, int]:
        d = tmp_path / f"cut-{truncated}-{cut}"
        shutil.copytree(src / "appendonlydir", d / "appendonlydir")
        (d / "appendonlydir" / "appendonly.aof.1.incr.aof").write_bytes(data[:cut])
        monkeypatch.chdir(d)
        m = _Node("--appendonly", "yes", "--aof-load-truncated", truncated)
        digest = None if m.exit_code else bytes(m.call("DEBUG", "DIGEST"))
        m.close()
        size = (d / "appendonlydir" / "appendonly.aof.1.incr.aof").stat().st_size
        shutil.rmtree(d)
        return m.exit_code, digest, size

    clean = {u: load(u, "no")[1] for u in units}
    assert None not in clean.values() and len(set(clean.values())) >= 7  # SELECTs change nothing
    for cut in range(len(data) + 1):
        prefix = max(u for u in units if u <= cut)
        code, digest, size = load(cut, "yes")
        assert (code, digest, size) == (0, clean[prefix], prefix), cut
        code, digest, size = load(cut, "no")
        if cut in clean:
            assert (code, digest) == (0, clean[cut])
        else:
            assert (code, digest, size) == (1, None, cut), cut  # refused, nothing cut


# -- randomized workload with rewrites --------------------------------------------------------------


# A library whose function writes what TIME returns (a non-deterministic input).
_LIBRARY = """#!lua name=aoftest
redis.register_function('stamp', function(keys, args)
  local t = redis.call('TIME')
  redis.call('HSET', keys[1], 'at', t[1] .. '.' .. t[2], args[1], args[2])
  return redis.call('SPOP', keys[1] .. ':s') or redis.call('SADD', keys[1] .. ':s', 'a', 'b', 'c')
end)
"""


def _random_workload(r: redis_py.Redis, port: int, rng: random.Random, rounds: int) -> None:
    """Every type, TTLs, MULTI/EXEC, SPOP, INCRBYFLOAT, served blocking pops,
    scripts and functions when they exist; BGREWRITEAOF now and then."""
    try:
        r.eval("return 1", 0)
        r.execute_command("FUNCTION", "LOAD", "REPLACE", _LIBRARY)
        have_eval = True
    except redis_py.ResponseError:  # scripting not implemented (yet)
        have_eval = False
    keys = [f"k{i}" for i in range(40)]
    for step in range(rounds):
        k = rng.choice(keys)
        op = rng.randrange(22)
        try:
            if op == 0:
                r.set(k, rng.randbytes(rng.randrange(1, 60)))
            elif op == 1:
                r.incrbyfloat(f"f{k}", rng.choice(["0.1", "1.5", "-3.25", "1e3"]))
            elif op == 2:
                r.rpush(f"l{k}", *[rng.randrange(1000) for _ in range(rng.randrange(1, 80))])
            elif op == 3:
                r.lpop(f"l{k}", rng.randrange(1, 5))
            elif op == 4:
                r.sadd(f"s{k}", *[rng.choice(["a", "b", "c", "d", 1, 2, 3, 700]) for _ in range(5)])
            elif op == 5:
                r.spop(f"s{k}", rng.randrange(1, 3))
            elif op == 6:
                r.hset(f"h{k}", mapping={f"f{rng.randrange(100)}": rng.randrange(10 ** 6) for _ in range(8)})
            elif op == 7:
                r.hincrbyfloat(f"h{k}", "fl", 0.5)
            elif op == 8:
                r.zadd(f"z{k}", {f"m{rng.randrange(200)}": rng.uniform(-100, 100) for _ in range(6)})
            elif op == 9:
                r.zincrby(f"z{k}", 1.25, "m1")
            elif op == 10:
                r.expire(rng.choice([f"l{k}", f"s{k}", k]), rng.randrange(100, 1000))
            elif op == 11:
                r.set(f"short{k}", "v", px=rng.randrange(1, 30))
            elif op == 12:
                r.get(f"short{rng.choice(keys)}")  # lazy expiry -> DEL
            elif op == 13:
                with r.pipeline(transaction=True) as tx:
                    tx.incr(f"c{k}")
                    tx.rpush(f"l{k}", "tx")
                    tx.expire(f"c{k}", 500)
                    tx.execute()
            elif op == 14:
                r.xadd(f"x{k}", {"f": rng.randrange(100)}, maxlen=20, approximate=False)
            elif op == 15:
                try:
                    r.xgroup_create(f"x{k}", "g", id="0", mkstream=True)
                except redis_py.ResponseError:
                    pass
                r.xreadgroup("g", f"c{rng.randrange(3)}", {f"x{k}": ">"}, count=2)
            elif op == 16:
                # a blocked client served by another client's push
                def blocker(key: str = f"bl{k}") -> None:
                    redis_py.Redis(port=port).blpop([key], timeout=5)

                t = threading.Thread(target=blocker)
                t.start()
                time.sleep(0.05)
                r.rpush(f"bl{k}", "x", "y")
                t.join(10)
            elif op == 17:
                r.delete(rng.choice(keys))
            elif op == 18:
                redis_py.Redis(port=port, db=rng.randrange(1, 4)).set(k, step)
            elif op == 19 and have_eval:
                if rng.random() < 0.5:
                    r.eval("redis.call('set', KEYS[1], math.random()); return redis.call('incr', KEYS[2])", 2,
                           f"ev{k}", f"evc{k}")
                else:
                    r.fcall("stamp", 1, f"fh{k}", "x", rng.randrange(100))
            elif op == 20:
                r.getex(k, px=rng.randrange(100_000, 1_000_000)) if r.exists(k) else None
            elif op == 21 and rng.random() < 0.15:
                r.execute_command("BGREWRITEAOF")
        except redis_py.ResponseError as e:
            if "WRONGTYPE" not in str(e) and "already in progress" not in str(e):
                raise


def _wait_rewrites(r: redis_py.Redis) -> None:
    deadline = time.monotonic() + 60
    while True:
        info = r.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_a_random_workload_with_rewrites_replays_to_the_same_digest(procs: Any, preamble: str) -> None:
    p = procs("ambry", "--appendonly", "yes", "--aof-use-rdb-preamble", preamble)
    r = p.start()
    rng = random.Random(7 if preamble == "yes" else 11)
    _random_workload(r, p.port, rng, 500)
    _wait_rewrites(r)
    r.execute_command("BGREWRITEAOF")
    _random_workload(r, p.port, rng, 200)  # writes while the rewrite runs land in the new incr file
    _wait_rewrites(r)
    assert r.info("persistence")["aof_rewrites"] >= 1
    assert r.info("persistence")["aof_last_bgrewrite_status"] == "ok"
    # Let the short TTLs lapse and expire them by lookups (their DELs reach
    # the AOF): a restarted server then has nothing left to expire.
    time.sleep(0.1)
    for db in range(4):
        c = redis_py.Redis(port=p.port, db=db)
        for i in range(40):
            c.exists(f"shortk{i}")
    live = r.execute_command("DEBUG", "DIGEST")
    assert r.execute_command("DEBUG", "LOADAOF") == b"OK"
    assert r.execute_command("DEBUG", "DIGEST") == live
    p.stop()
    r = p.start()
    assert r.execute_command("DEBUG", "DIGEST") == live
    p.stop()
    if have_redis():
        real = procs("redis", "--appendonly", "yes", workdir=p.workdir)
        rr = real.start()
        assert rr.execute_command("DEBUG", "DIGEST") == live
        real.stop()
