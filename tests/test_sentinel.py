"""Failover under real Redis Sentinel (spec/replication.md §18): a
``redis-sentinel`` monitors an Ambry primary with two Ambry replicas; the
primary is killed with SIGKILL under a write load whose writes are each
confirmed by ``WAIT 1``.  Sentinel must promote a replica (SLAVEOF NO ONE in
MULTI with CONFIG REWRITE and CLIENT KILL), every confirmed write must be on
the new primary, and the old primary, restarted on its port, must be turned
into a replica of the new one by Sentinel and end with the same data."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_client
from conftest import HOST, ServerProcess, ambry_argv, free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-sentinel") is None, reason="redis-sentinel is not installed")

MASTER = "mymaster"
# Not less than 2 s: after a switch Sentinel may reconnect to the new primary
# only a second later (its reconnect period), while the down-after timer
# starts at the switch -- with 1 s the new primary can be judged down
# before Sentinel even asked it, real Redis or not.
DOWN_AFTER_MS = 2000
# Sentinel waits failover-timeout before it turns a restarted old primary
# (which says role:master) into a replica, so a short one keeps the test short.
FAILOVER_TIMEOUT_MS = 4000


class ConfiguredAmbry(ServerProcess):
    """An ambry-server started with a config file as its first argument, so
    CONFIG REWRITE (which Sentinel sends in every reconfiguration) works."""

    def __init__(self, extra: list[str]) -> None:
        super().__init__("ambry", extra)
        self.conf_path = self.workdir / "ambry.conf"
        self.conf_path.write_text("# ambry test server\n")

    def argv(self) -> list[str]:
        base = ambry_argv(self.port)
        return [*base[:3], str(self.conf_path), *base[3:], *self.extra]


class Sentinel:
    """A redis-sentinel process with a writable config file in its own
    directory; its log is kept for failure messages."""

    def __init__(self, primary_port: int) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ambry-test-sentinel-"))
        self.conf = self.dir / "sentinel.conf"
        self.log_path = self.dir / "sentinel.log"
        self.conf.write_text(
            f"port {self.port}\n"
            f"bind {HOST}\n"
            f"dir {self.dir}\n"
            f"logfile {self.log_path}\n"
            "loglevel debug\n"
            "sentinel resolve-hostnames no\n"
            f"sentinel monitor {MASTER} {HOST} {primary_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER} 2\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sentinel:
        self.proc = subprocess.Popen(
            ["redis-sentinel", str(self.conf)], cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-sentinel exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if self.cli().ping():
                    return self
            except redis_client.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-sentinel did not start:\n{self.log_text()}")

    def cli(self) -> redis_client.Redis:
        return redis_client.Redis(host=HOST, port=self.port, socket_timeout=10, decode_responses=True)

    def primary_addr(self) -> tuple[str, int] | None:
        r = self.cli().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return (r[0], int(r[1])) if r else None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no sentinel log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Deployment:
    """The processes of one test: configured ambry-servers and Sentinels,
    all killed by ``stop_all`` whatever happened; ``wait_for`` fails with
    every log in its message."""

    def __init__(self) -> None:
        self.servers: list[ConfiguredAmbry] = []
        self.sentinels: list[Sentinel] = []

    def ambry(self, *extra: str) -> ConfiguredAmbry:
        s = ConfiguredAmbry(list(extra))
        self.servers.append(s)
        s.start()
        return s

    def sentinel(self, primary_port: int) -> Sentinel:
        sn = Sentinel(primary_port)
        self.sentinels.append(sn)
        return sn.start()

    def logs(self) -> str:
        out = [f"--- sentinel :{sn.port} log ---\n{sn.log_text()}" for sn in self.sentinels]
        out += [f"--- ambry-server :{s.port} log ---\n{s.log_text(200)}" for s in self.servers]
        return "\n".join(out)

    def wait_for(self, cond: Callable[[], bool], what: str, timeout: float = 40.0) -> None:
        """Poll ``cond``; on timeout fail with Sentinel's and the servers' logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def stop_all(self) -> None:
        for sn in self.sentinels:
            sn.stop()
        for s in self.servers:
            s.cleanup()


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    d = Deployment()
    try:
        yield d
    finally:
        d.stop_all()


def cli(s: ServerProcess) -> redis_client.Redis:
    return redis_client.Redis(host=s.host, port=s.port, socket_timeout=10, decode_responses=True)


def try_info(s: ServerProcess) -> dict[str, object]:
    try:
        return cli(s).info("replication")  # type: ignore[no-any-return]
    except redis_client.RedisError:
        return {}


def follows(replica: ServerProcess, primary: ServerProcess) -> bool:
    i = try_info(replica)
    return (i.get("role") == "slave" and i.get("master_port") == primary.port
            and i.get("master_link_status") == "up" and not i.get("master_sync_in_progress"))


def known_replicas(sentinel: Sentinel) -> set[int]:
    """Ports of the replicas Sentinel knows, with their INFO already read."""
    out = set()
    for r in sentinel.cli().execute_command("SENTINEL", "REPLICAS", MASTER):
        d = dict(zip(r[::2], r[1::2], strict=True)) if isinstance(r, list) else r
        if d.get("master-link-status") == "ok" and "s_down" not in d.get("flags", ""):
            out.add(int(d["port"]))
    return out


class ConfirmedWriter(threading.Thread):
    """Writes keys to the primary, each followed by ``WAIT 1 1000``; the keys
    WAIT confirmed (>= 1 replica) are recorded with their values.  Stops at
    the first connection error (the primary was killed) or when asked."""

    def __init__(self, primary: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.primary = primary
        self.confirmed: dict[str, str] = {}
        self.unconfirmed = 0
        self.stop_flag = False
        self.error: BaseException | None = None

    def run(self) -> None:
        r = cli(self.primary)
        i = 0
        try:
            while not self.stop_flag:
                key, value = f"k:{i}", f"v{i}:" + "x" * (i % 50)
                p = r.pipeline(transaction=True)
                p.set(key, value)
                p.rpush("log", i)
                p.hset("h", f"f{i % 100}", i)
                p.execute()
                if r.execute_command("WAIT", 1, 1000) >= 1:
                    self.confirmed[key] = value
                else:
                    self.unconfirmed += 1
                i += 1
        except (redis_client.ConnectionError, redis_client.TimeoutError):
            pass  # the primary is gone
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def sentinel_links(s: ServerProcess) -> set[str]:
    """The names of Sentinel's connections to ``s`` (cmd and pubsub links)."""
    out = set()
    for kind in ("normal", "pubsub"):
        for c in cli(s).client_list(_type=kind):
            if c.get("name", "").startswith("sentinel-"):
                out.add(f"{kind}:{c['name'].rsplit('-', 1)[1]}")
    return out


def test_sentinel_fails_over_and_keeps_confirmed_writes(deployment: Deployment) -> None:
    d = deployment
    opts = ("--repl-diskless-sync-delay", "0")
    a = d.ambry(*opts)
    b = d.ambry(*opts, "--replicaof", HOST, str(a.port))
    c = d.ambry(*opts, "--replicaof", HOST, str(a.port))
    ra = cli(a)
    for i in range(200):
        ra.set(f"pre:{i}", i)
    d.wait_for(lambda: follows(b, a) and follows(c, a), "both replicas to sync")

    sentinel = d.sentinel(a.port)
    d.wait_for(lambda: known_replicas(sentinel) == {b.port, c.port}, "Sentinel to discover both replicas")
    d.wait_for(lambda: sentinel_links(a) == {"normal:cmd", "pubsub:pubsub"}, "Sentinel's two links to the primary")

    writer = ConfirmedWriter(a)
    writer.start()
    deadline = time.monotonic() + 30
    while len(writer.confirmed) < 300 and writer.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(writer.confirmed) >= 300, f"the load did not get going: {writer.error!r}\n{d.logs()}"
    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)  # under load
    a.proc.wait()
    a.stopped = True
    writer.join(15)
    assert not writer.is_alive()
    assert writer.error is None, repr(writer.error)

    # Sentinel promotes one of the replicas (SLAVEOF NO ONE, CONFIG REWRITE, CLIENT KILL in MULTI)
    d.wait_for(lambda: sentinel.primary_addr() in ((HOST, b.port), (HOST, c.port)), "Sentinel to switch primaries")
    new, other = (b, c) if sentinel.primary_addr() == (HOST, b.port) else (c, b)
    d.wait_for(lambda: try_info(new).get("role") == "master", "the promoted replica to say role:master")
    rn = cli(new)
    assert rn.execute_command("ROLE")[0] == "master"
    missing = [k for k, v in writer.confirmed.items() if rn.get(k) != v]
    assert not missing, f"{len(missing)} WAIT-confirmed writes lost, e.g. {missing[:5]}\n{d.logs()}"
    assert rn.dbsize() >= 200 + len(writer.confirmed)
    conf = new.conf_path.read_text()
    assert "# Generated by CONFIG REWRITE" in conf and "replicaof" not in conf, conf

    # the other replica is pointed at the new primary
    d.wait_for(lambda: follows(other, new), "the other replica to follow the new primary")
    assert f"replicaof {HOST} {new.port}" in other.conf_path.read_text()
    # Sentinel's links to the new primary, the pub/sub one killed by CLIENT KILL TYPE pubsub and reopened
    d.wait_for(lambda: sentinel_links(new) == {"normal:cmd", "pubsub:pubsub"}, "Sentinel's links to the new primary")

    # the old primary restarts (empty, as a primary) and Sentinel turns it into a replica
    a.proc = None
    a.start()
    d.wait_for(lambda: follows(a, new), "the restarted old primary to follow the new primary")
    assert "+convert-to-slave" in sentinel.log_text()
    assert f"replicaof {HOST} {new.port}" in a.conf_path.read_text()  # CONFIG REWRITE ran

    for i in range(100):
        rn.set(f"post:{i}", i)
    assert rn.execute_command("WAIT", 2, 5000) == 2
    for s in (a, other):
        d.wait_for(lambda s=s: try_info(s).get("slave_repl_offset") == try_info(new).get("master_repl_offset"),
                   f"replica :{s.port} to catch up ({try_info(s)} vs {try_info(new)})")
        assert cli(s).execute_command("DEBUG", "DIGEST") == rn.execute_command("DEBUG", "DIGEST")
    assert sentinel.primary_addr() == (HOST, new.port)
    for s in d.servers:
        s.check_alive()
