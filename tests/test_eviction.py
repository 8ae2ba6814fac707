"""Eviction acceptance tests (evict.c of Redis 7.0.15) on real server processes.

Each scenario runs on a dedicated ambry-server and, as the reference, a real
redis-server with the same options: used memory held at maxmemory under a
write load, approximated LRU and LFU keeping hot keys, volatile policies
sparing keys without a TTL, noeviction's OOM error.  Sampling makes
eviction approximate by design, so survival is compared as rates with wide
margins that a non-LRU/LFU choice would still miss by far.  How evictions
are propagated (a DEL per key, each its own unit) is checked in-process with
the effects recorder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import InProcess, ServerProcess
from differential import RespConn, encode_command

OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
VALUE = b"v" * 100
MARGIN = 200_000  # room above the filled dataset: client buffers come and go


def info(conn: RespConn, section: str) -> dict[str, str]:
    raw = conn.command("INFO", section)
    body = raw.split(b"\r\n", 1)[1].decode()
    out = {}
    for line in body.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def used_memory(conn: RespConn) -> int:
    return int(info(conn, "memory")["used_memory"])


def pipeline(conn: RespConn, cmds: list[list[bytes]]) -> list[bytes]:
    """Send the commands in batches of 100 (client buffers count as used
    memory too) and read every reply."""
    out: list[bytes] = []
    for i in range(0, len(cmds), 100):
        batch = cmds[i:i + 100]
        conn.send(b"".join(encode_command(c) for c in batch))
        out += [conn.read_reply() for _ in batch]
    return out


def set_keys(conn: RespConn, names: list[bytes], ttl: int | None = None) -> list[bytes]:
    extra = [b"EX", b"%d" % ttl] if ttl else []
    return pipeline(conn, [[b"SET", k, VALUE, *extra] for k in names])


def existing(conn: RespConn, names: list[bytes]) -> list[bytes]:
    """The names that still exist (EXISTS does not touch LRU/LFU data)."""
    replies = pipeline(conn, [[b"EXISTS", k] for k in names])
    return [k for k, r in zip(names, replies, strict=True) if r == b":1\r\n"]


def keys(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}:{i}".encode() for i in range(n)]


Factory = Callable[..., ServerProcess]


@pytest.fixture(params=["ambry", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def start(server_factory: Factory, kind: str, *options: str) -> RespConn:
    s = server_factory(kind, *options)
    return s.conn(timeout=30.0)


# -- memory held at the limit -------------------------------------------------------------


def test_used_memory_stays_within_maxmemory_under_set_load(server_factory: Factory, kind: str) -> None:
    limit = 4 * 1024 * 1024
    c = start(server_factory, kind, "--maxmemory", str(limit), "--maxmemory-policy", "allkeys-lru")
    peak = 0
    written = 0
    for round_ in range(100):
        batch = [b"load:%d" % (round_ * 600 + i) for i in range(600)]
        assert set(pipeline(c, [[b"SET", k, VALUE] for k in batch])) == {b"+OK\r\n"}
        written += len(batch)
        peak = max(peak, used_memory(c))
    stats = info(c, "stats")
    dbsize = int(c.command("DBSIZE")[1:-2])
    evicted = int(stats["evicted_keys"])
    assert evicted > 0
    assert dbsize + evicted == written  # every key written is either there or evicted
    # Eviction runs before each command: at most one command's worth above.
    assert peak <= limit * 1.01, (peak, limit)
    # ... and it frees what it must, not the whole dataset.
    assert used_memory(c) >= limit * 0.9


def test_noeviction_answers_oom_to_writes_only(server_factory: Factory, kind: str) -> None:
    c = start(server_factory, kind, "--maxmemory-policy", "noeviction")
    set_keys(c, keys("k", 2000))
    c.command("CONFIG", "SET", "maxmemory", str(used_memory(c) - 10000))
    assert c.command("SET", "new", "v") == OOM
    assert c.command("LPUSH", "list", "v") == OOM
    assert c.command("GET", "k:1") == b"$100\r\n" + VALUE + b"\r\n"
    assert c.command("DEL", "k:1") == b":1\r\n"  # not denyoom: frees memory
    # Inside MULTI every queued command is refused, and EXEC aborts.
    assert c.command("MULTI") == b"+OK\r\n"
    assert c.command("GET", "k:2") == OOM
    assert c.command("EXEC") == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    assert info(c, "stats")["evicted_keys"] == "0"
    assert int(c.command("DBSIZE")[1:-2]) == 1999


# -- LRU and LFU keep hot keys --------------------------------------------------------------


def _survival(c: RespConn, hot: list[bytes], cold: list[bytes]) -> tuple[float, float]:
    return len(existing(c, hot)) / len(hot), len(existing(c, cold)) / len(cold)


def test_allkeys_lru_keeps_recently_used_keys(server_factory: Factory, kind: str) -> None:
    c = start(server_factory, kind, "--maxmemory-policy", "allkeys-lru")
    old = keys("old", 3000)
    set_keys(c, old)
    c.command("CONFIG", "SET", "maxmemory", str(used_memory(c) + MARGIN))
    # The LRU clock counts seconds: let the first keys age before the hot
    # subset is read again.
    time.sleep(1.2)
    hot, cold = old[:600], old[600:]
    for _ in range(3):
        assert all(r.startswith(b"$100") for r in pipeline(c, [[b"GET", k] for k in hot]))
    set_keys(c, keys("new", 2500))  # about half the old keys must go
    hot_rate, cold_rate = _survival(c, hot, cold)
    assert int(info(c, "stats")["evicted_keys"]) >= 800
    assert hot_rate >= 0.9, (hot_rate, cold_rate)
    assert cold_rate <= 0.7, (hot_rate, cold_rate)


@pytest.mark.parametrize("kind", [
    "ambry",
    "redis",
], indirect=True)
def test_allkeys_lfu_keeps_frequently_used_keys(server_factory: Factory, kind: str) -> None:
    # lfu-log-factor 0: every access increments the counter (no dice rolls).
    c = start(server_factory, kind, "--maxmemory-policy", "allkeys-lfu", "--lfu-log-factor", "0")
    old = keys("old", 3000)
    set_keys(c, old)
    c.command("CONFIG", "SET", "maxmemory", str(used_memory(c) + MARGIN))
    hot, cold = old[:600], old[600:]
    for _ in range(5):
        pipeline(c, [[b"GET", k] for k in hot])
    assert c.command("OBJECT", "FREQ", hot[0]) == b":10\r\n"  # LFU_INIT_VAL 5 + 5 reads
    assert c.command("OBJECT", "FREQ", cold[0]) == b":5\r\n"
    set_keys(c, keys("new", 2500))
    hot_rate, cold_rate = _survival(c, hot, cold)
    assert int(info(c, "stats")["evicted_keys"]) >= 800
    assert hot_rate >= 0.9, (hot_rate, cold_rate)
    assert cold_rate <= 0.7, (hot_rate, cold_rate)


# -- volatile policies -----------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"])
def test_volatile_policies_spare_keys_without_ttl(server_factory: Factory, kind: str, policy: str) -> None:
    c = start(server_factory, kind, "--maxmemory-policy", policy)
    persistent = keys("keep", 1000)
    volatile = keys("vol", 2000)
    set_keys(c, persistent)
    set_keys(c, volatile, ttl=100000)
    c.command("CONFIG", "SET", "maxmemory", str(used_memory(c) + MARGIN))
    # New keys without a TTL: room is made from the volatile keys only.
    added = keys("more", 2000)
    assert set(set_keys(c, added)) == {b"+OK\r\n"}
    assert len(existing(c, persistent)) == len(persistent)
    assert len(existing(c, added)) == len(added)
    gone = len(volatile) - len(existing(c, volatile))
    assert gone >= 500
    assert len(existing(c, volatile)) >= 500
    assert int(info(c, "stats")["evicted_keys"]) == gone
    # Once no volatile key is left, writes get the OOM error.
    replies = set_keys(c, keys("over", 1500))
    assert OOM in replies
    assert existing(c, volatile) == []
    assert len(existing(c, persistent)) == len(persistent)


# -- propagation ------------------------------------------------------------------------------


def test_evictions_propagate_as_bare_dels_each_its_own_unit(inproc: InProcess) -> None:
    from ambry.server.commands import introspection as intro

    srv = inproc.srv
    for i in range(300):
        inproc.call("SET", f"k:{i}", "x" * 100)
    inproc.call("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
    intro._meter(srv).scan(srv)
    sink = inproc.record()
    # CONFIG SET maxmemory evicts at once (updateMaxmemory -> performEvictions);
    # CONFIG SET itself is not propagated, and its evictions are not wrapped
    # in MULTI with each other.
    inproc.call("CONFIG", "SET", "maxmemory", intro.estimate_used_memory(srv) - 5000)
    evicted = srv.stat_evictedkeys
    body = [cmd for cmd in sink.commands if cmd[0] != b"SELECT"]
    assert evicted > 0 and len(body) == evicted and sink.units == evicted
    assert all(cmd[0] == b"DEL" and len(cmd) == 2 and cmd[1] not in srv.dbs[0].data for cmd in body)
    # A write that goes over the limit; the next command evicts first, and
    # its own effect follows the DELs.
    sink.commands.clear()
    assert inproc.call("SET", "big", "x" * 3000) == b"OK"
    before = srv.stat_evictedkeys
    assert inproc.call("SET", "trigger", "v") == b"OK"
    more = srv.stat_evictedkeys - before
    assert more > 0
    body = [cmd for cmd in sink.commands if cmd[0] != b"SELECT"]
    assert body[0] == [b"SET", b"big", b"x" * 3000] and body[-1] == [b"SET", b"trigger", b"v"]
    assert [cmd[0] for cmd in body[1:-1]] == [b"DEL"] * more
    assert [b"MULTI"] not in sink.commands
    reply: Any = inproc.call("INFO", "stats")
    text = reply.text if hasattr(reply, "text") else bytes(reply)
    assert b"evicted_keys:%d\r\n" % srv.stat_evictedkeys in text
