"""Streams beyond what tests/corpus/streams.txt can express.

* blocking XREAD/XREADGROUP with several real connections, run against
  redis-server and Ambry and compared reply by reply (serving order, a
  group's fairness, transactions, destroyed groups, deleted keys,
  timeouts, CLIENT UNBLOCK);
* effects: what Ambry records on the one path against what redis-server
  7.0 writes to its AOF for the same commands (clock-derived values
  compared as "now"), and served blocked clients in-process;
* keyspace notifications, compared with a subscriber on both servers;
* RDB: ``streams.rdb`` read back to the expected JSON, round trips through
  the codec, DUMP payloads accepted by redis-server with an equal digest;
* the radix-tree node count against redis-server's XINFO, and a randomized
  differential run of every stream command (idle times masked).
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ambry.server.client import NOREPLY
from conftest import InProcess, ServerProcess
from differential import ReplyTimeout, RespConn, encode_command, parse_one, parse_reply, render

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
STREAMS_RDB = SHARED / "rdb" / "redis-7.0" / "streams.rdb"
STREAMS_JSON = SHARED / "rdb" / "redis-7.0" / "streams.expected.json"

Scenario = Callable[["Session"], None]


# -- several connections, both servers -----------------------------------------------------------


class Session:
    """Named connections to one server and what they received, in order."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.conns: dict[str, RespConn] = {}
        self.seen: list[tuple[str, bytes]] = []
        self.admin = server.conn()

    def conn(self, name: str) -> RespConn:
        c = self.conns.get(name)
        if c is None:
            c = self.conns[name] = self.server.conn()
            if name.endswith("3"):
                c.command("HELLO", "3")
        return c

    def send(self, name: str, *args: Any) -> None:
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.conn(name).send(encode_command(argv))

    def read(self, name: str, timeout: float = 5.0) -> bytes:
        r = self.conn(name).read_reply(timeout)
        self.seen.append((name, r))
        return r

    def cmd(self, name: str, *args: Any) -> bytes:
        self.send(name, *args)
        return self.read(name)

    def blocked(self) -> int:
        for line in self.admin.command("INFO", "clients").decode().split("\r\n"):
            if line.startswith("blocked_clients:"):
                return int(line.split(":", 1)[1])
        raise AssertionError("no blocked_clients in INFO clients")

    def wait_blocked(self, n: int, timeout: float = 5.0) -> None:
        """Poll INFO until ``n`` clients are blocked."""
        deadline = time.monotonic() + timeout
        while self.blocked() != n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} blocked clients, have {self.blocked()}")
            time.sleep(0.005)

    def silent(self, name: str, wait: float = 0.15) -> bool:
        """True when nothing arrives on ``name`` for ``wait`` seconds."""
        try:
            r = self.conn(name).read_reply(wait)
        except ReplyTimeout:
            return True
        self.seen.append((name + " (unexpected)", r))
        return False

    def drain(self, name: str, wait: float = 0.2) -> None:
        while True:
            try:
                self.read(name, wait)
            except ReplyTimeout:
                return

    def close(self) -> None:
        for c in self.conns.values():
            c.close()
        self.admin.close()


def run_both(redis: ServerProcess, ambry: ServerProcess, scenario: Scenario) -> list[tuple[str, bytes]]:
    """Run ``scenario`` on both servers; what every connection saw must be equal."""
    out = []
    for server in (redis, ambry):
        s = Session(server)
        try:
            scenario(s)
            s.wait_blocked(0)
        finally:
            s.close()
        out.append(s.seen)
    theirs, ours = out
    assert ours == theirs, "\n".join(
        f"{i}: redis {a!r}\n   ambry {b!r}" for i, (a, b) in enumerate(zip(theirs, ours, strict=False)) if a != b
    ) or f"lengths differ: {len(theirs)} vs {len(ours)}"
    return ours


# -- blocking XREAD -------------------------------------------------------------------------------


def test_xread_block_is_served_by_a_later_xadd(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "XADD", "s", "1-1", "f", "old")
        s.send("a", "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        s.send("b3", "XREAD", "BLOCK", 0, "STREAMS", "nokey", "s", "0", "1-1")
        s.send("c", "XREAD", "COUNT", 1, "BLOCK", 0, "STREAMS", "s", "1-1")
        s.wait_blocked(3)
        s.cmd("p", "XADD", "s", "2-1", "f", "new", "g", "x")
        s.read("a")
        s.read("b3")  # RESP3: a map
        s.read("c")
        # the first ready key among several serves; '$' of a missing key is 0-0
        s.send("a", "XREAD", "BLOCK", 0, "STREAMS", "k1", "k2", "$", "$")
        s.wait_blocked(1)
        s.cmd("p", "XADD", "k2", "5-5", "f", "v")
        s.read("a")
        # a key given twice waits with its first ID
        s.send("a", "XREAD", "BLOCK", 0, "STREAMS", "k2", "k2", "5-5", "9-9")
        s.wait_blocked(1)
        s.cmd("p", "XADD", "k2", "6-6", "f", "v")
        s.read("a")

    run_both(redis, ambry, sc)


def test_xread_block_count_caps_what_a_served_client_gets(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "XADD", "s", "1", "f", "v")
        s.send("a", "XREAD", "COUNT", 2, "BLOCK", 0, "STREAMS", "s", "$")
        s.send("b", "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        s.wait_blocked(2)
        s.cmd("p", "MULTI")
        for i in range(2, 6):
            s.cmd("p", "XADD", "s", i, "f", i)
        s.cmd("p", "EXEC")
        s.read("a")
        s.read("b")

    run_both(redis, ambry, sc)


def test_xread_timeout_and_non_blocking_contexts(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("a", "XREAD", "BLOCK", 30, "STREAMS", "s", "$")
        s.cmd("a3", "XREAD", "BLOCK", 30, "STREAMS", "s", "0")
        s.cmd("p", "MULTI")
        s.cmd("p", "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        s.cmd("p", "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        s.cmd("p", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")
        s.cmd("p", "EXEC")
        # a history read never blocks, even with nothing pending
        s.cmd("a", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", "0")
        s.cmd("a", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 20, "STREAMS", "s", ">")

    run_both(redis, ambry, sc)


def test_xread_tombstone_only_update_serves_an_empty_batch(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "XADD", "s", "1", "f", "v")
        s.cmd("p", "XGROUP", "CREATE", "s", "g", "$")
        s.send("a", "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        s.send("b", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")
        s.wait_blocked(2)
        s.cmd("p", "MULTI")
        s.cmd("p", "XADD", "s", "2", "f", "v")
        s.cmd("p", "XDEL", "s", "2")
        s.cmd("p", "EXEC")
        s.read("a")
        s.read("b")
        s.cmd("p", "XINFO", "GROUPS", "s")

    run_both(redis, ambry, sc)


def test_client_unblock_of_stream_readers(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        ida = s.cmd("a", "CLIENT", "ID")[1:-2]
        idb = s.cmd("b", "CLIENT", "ID")[1:-2]
        s.seen.clear()  # the ids differ between the servers
        s.send("a", "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        s.wait_blocked(1)
        s.cmd("p", "CLIENT", "UNBLOCK", ida, "TIMEOUT")
        s.read("a")
        s.cmd("p", "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        s.send("b", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")
        s.wait_blocked(1)
        s.cmd("p", "CLIENT", "UNBLOCK", idb, "ERROR")
        s.read("b")
        s.cmd("p", "XINFO", "CONSUMERS", "s", "g")  # 7.0 creates the consumer only when serving

    run_both(redis, ambry, sc)


# -- blocking XREADGROUP --------------------------------------------------------------------------


def test_xreadgroup_blocked_consumers_are_served_fairly(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        s.send("a", "XREADGROUP", "GROUP", "g", "alice", "BLOCK", 0, "STREAMS", "s", ">")
        s.wait_blocked(1)
        s.send("b", "XREADGROUP", "GROUP", "g", "bob", "COUNT", 10, "BLOCK", 0, "STREAMS", "s", ">")
        s.wait_blocked(2)
        s.send("c3", "XREADGROUP", "GROUP", "g", "carol", "NOACK", "BLOCK", 0, "STREAMS", "s", ">")
        s.wait_blocked(3)
        s.cmd("p", "XADD", "s", "1-1", "f", "v1")
        s.read("a")  # the first to block gets the entry; the others wait on
        assert s.silent("b")
        s.cmd("p", "XADD", "s", "1-2", "f", "v2")
        s.read("b")
        s.cmd("p", "XADD", "s", "1-3", "f", "v3")
        s.read("c3")
        s.cmd("p", "XPENDING", "s", "g")
        s.cmd("p", "XINFO", "GROUPS", "s")
        s.cmd("p", "XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0")
        s.cmd("p", "XGROUP", "DELCONSUMER", "s", "g", "carol")

    run_both(redis, ambry, sc)


def test_xreadgroup_served_after_exec_and_per_group(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "XGROUP", "CREATE", "s", "g1", "$", "MKSTREAM")
        s.cmd("p", "XGROUP", "CREATE", "s", "g2", "$")
        s.send("a", "XREADGROUP", "GROUP", "g1", "c", "BLOCK", 0, "STREAMS", "s", ">")
        s.send("b", "XREADGROUP", "GROUP", "g2", "c", "COUNT", 1, "BLOCK", 0, "STREAMS", "s", ">")
        s.send("x", "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        s.wait_blocked(3)
        s.cmd("p", "MULTI")
        s.cmd("p", "XADD", "s", "1", "f", "a")
        s.cmd("p", "XADD", "s", "2", "f", "b")
        s.cmd("p", "EXEC")
        s.read("a")
        s.read("b")
        s.read("x")
        s.cmd("p", "XINFO", "GROUPS", "s")
        s.cmd("p", "XPENDING", "s", "g2")

    run_both(redis, ambry, sc)


def test_xreadgroup_blocked_on_a_destroyed_group(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        s.cmd("p", "XGROUP", "CREATE", "s", "other", "$")
        s.send("a", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")
        s.send("b", "XREADGROUP", "GROUP", "other", "c", "BLOCK", 0, "STREAMS", "s", ">")
        s.send("x", "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        s.wait_blocked(3)
        s.cmd("p", "XGROUP", "DESTROY", "s", "g")
        s.read("a")
        assert s.silent("b")
        assert s.silent("x")
        s.cmd("p", "XADD", "s", "1", "f", "v")
        s.read("b")
        s.read("x")

    run_both(redis, ambry, sc)


def test_xreadgroup_blocked_on_a_deleted_or_replaced_key(redis: ServerProcess, ambry: ServerProcess) -> None:
    removals = [("DEL", "s"), ("UNLINK", "s"), ("SET", "s", "x"), ("FLUSHALL",), ("FLUSHDB",),
                ("RENAME", "s", "t"), ("MOVE", "s", "1"), ("SWAPDB", "0", "2"), ("PEXPIRE", "s", "1")]

    def sc(s: Session) -> None:
        for op in removals:
            s.cmd("p", "FLUSHALL")
            s.cmd("p", "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
            s.send("a", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")
            s.send("x", "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
            s.wait_blocked(2)
            s.cmd("p", *op)
            if op[0] == "PEXPIRE":
                time.sleep(0.01)
                s.cmd("p", "EXISTS", "s")  # expired (lazily, or already by the cycle)
            s.read("a")  # -UNBLOCKED
            assert s.silent("x", 0.05)  # XREAD keeps waiting for the key to exist
            s.cmd("p", "DEL", "s")
            s.cmd("p", "XADD", "s", "1", "f", "v")
            s.read("x")
        # deleted and re-created in one transaction: the group is gone
        s.cmd("p", "FLUSHALL")
        s.cmd("p", "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        s.send("a", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")
        s.wait_blocked(1)
        s.cmd("p", "MULTI")
        s.cmd("p", "DEL", "s")
        s.cmd("p", "XADD", "s", "1", "f", "v")
        s.cmd("p", "EXEC")
        s.read("a")  # -NOGROUP
        s.cmd("p", "FLUSHALL")
        # replaced by another stream (SWAPDB): served, but the group is not there
        s.cmd("p", "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        s.cmd("p", "SELECT", "3")
        s.cmd("p", "XADD", "s", "1", "f", "v")
        s.cmd("p", "SELECT", "0")
        s.send("a", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")
        s.wait_blocked(1)
        s.cmd("p", "SWAPDB", "0", "3")
        s.read("a")
        s.cmd("p", "FLUSHALL")

    run_both(redis, ambry, sc)


def test_scripts_unblock_stream_readers_and_never_block(redis: ServerProcess, ambry: ServerProcess) -> None:
    if ambry.command("EVAL", "return 1", 0).startswith(b"-ERR unknown command"):
        pytest.skip("EVAL is not implemented yet")

    def sc(s: Session) -> None:
        s.cmd("p", "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        s.send("a", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">")
        s.send("x", "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        s.wait_blocked(2)
        s.cmd("p", "EVAL", "redis.call('xadd', KEYS[1], '1-1', 'f', 'a'); return redis.call('xadd', KEYS[1], "
                           "'1-2', 'f', 'b')", 1, "s")
        s.read("a")  # served after the script, both entries
        s.read("x")
        s.cmd("p", "EVAL", "return redis.call('xread', 'BLOCK', 0, 'STREAMS', KEYS[1], '0')", 1, "s")
        s.cmd("p", "EVAL", "return redis.call('XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK', 0, 'STREAMS', KEYS[1], "
                           "'>')", 1, "s")
        s.cmd("p", "EVAL", "return redis.call('xreadgroup', 'GROUP', 'g', 'c', 'STREAMS', KEYS[1], '>')", 1, "s")

    run_both(redis, ambry, sc)


# -- effects against redis-server's AOF -------------------------------------------------------------


def _aof_commands(server: ServerProcess) -> list[list[bytes]]:
    """The commands of the server's current INCR AOF file."""
    d = server.workdir / "appendonlydir"
    incr = sorted(d.glob("*.incr.aof"))[-1]
    data = incr.read_bytes()
    out: list[list[bytes]] = []
    pos = 0
    while pos < len(data):
        tree, pos = parse_reply(data, pos)
        out.append([x[1] for x in tree[1]])
    return out


_CLOCK = re.compile(rb"^(\d{13})(-\d+)?$")


def _timeless(cmds: list[list[bytes]], now_ms: int) -> list[list[bytes]]:
    """Values derived from the clock (auto IDs, delivery times) as ``T``."""
    out = []
    for c in cmds:
        row = []
        for a in c:
            m = _CLOCK.match(bytes(a))
            if m and abs(int(m.group(1)) - now_ms) < 600_000:
                a = b"T"  # an auto ID's sequence depends on timing too
            row.append(bytes(a))
        out.append(row)
    return out


EFFECT_SCRIPT: list[tuple[Any, ...]] = [
    ("CONFIG", "SET", "stream-node-max-entries", "2"),
    ("XADD", "s", "1-1", "f", "a"),
    ("XADD", "s", "1-*", "f", "b"),
    ("XADD", "s", "*", "f", "c"),
    ("XADD", "s", "MAXLEN", "~", "1", "*", "f", "d"),
    ("XADD", "t", "1", "f", "a"),
    ("XADD", "t", "2", "f", "b"),
    ("XADD", "t", "3", "f", "c"),
    ("XADD", "t", "4", "f", "d"),
    ("XADD", "t", "5", "f", "e"),
    ("XDEL", "t", "3"),
    ("XTRIM", "t", "MINID", "~", "4"),
    ("XTRIM", "t", "MINID", "~", "9", "LIMIT", "1"),
    ("XTRIM", "t", "MAXLEN", "~", "0"),
    ("XTRIM", "t", "MAXLEN", "=", "1"),
    ("XTRIM", "t", "MAXLEN", "5"),
    ("XADD", "t", "MINID", "=", "0", "6", "f", "g"),
    ("XADD", "q", "1-1", "f", "a"),
    ("XADD", "q", "1-2", "f", "b"),
    ("XADD", "q", "1-3", "f", "c"),
    ("XADD", "q", "1-4", "f", "d"),
    ("XGROUP", "CREATE", "q", "g", "0"),
    ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "q", ">"),
    ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "q", "0"),
    ("XREADGROUP", "GROUP", "g", "c9", "STREAMS", "q", "0"),
    ("XREADGROUP", "GROUP", "g", "c2", "NOACK", "COUNT", "1", "STREAMS", "q", ">"),
    ("XREADGROUP", "GROUP", "g", "c2", "NOACK", "STREAMS", "q", ">"),
    ("XREADGROUP", "GROUP", "g", "c3", "NOACK", "STREAMS", "q", ">"),
    ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "q", ">"),
    ("XGROUP", "SETID", "q", "g", "0"),
    ("XREADGROUP", "GROUP", "g", "c3", "COUNT", "1", "STREAMS", "q", ">"),
    ("XCLAIM", "q", "g", "c4", "0", "1-2", "1", "TIME", "1000", "RETRYCOUNT", "9"),
    ("XCLAIM", "q", "g", "c4", "0", "1-2", "JUSTID", "LASTID", "1-4"),
    ("XCLAIM", "q", "g", "c4", "0", "1-4", "FORCE", "JUSTID"),
    ("XCLAIM", "q", "g", "c4", "0", "9-9", "LASTID", "5-5"),
    ("XCLAIM", "q", "g", "c4", "0", "9-9", "LASTID", "1-1"),
    ("XDEL", "q", "1-2"),
    ("XCLAIM", "q", "g", "c5", "0", "1-2", "1-4"),
    ("XDEL", "q", "1-4"),
    ("XAUTOCLAIM", "q", "g", "c6", "0", "0", "COUNT", "5"),
    ("XAUTOCLAIM", "q", "g", "c6", "0", "0", "JUSTID"),
    ("XACK", "q", "g", "1-1", "1-3", "7-7"),
    ("XACK", "q", "g", "7-7"),
    ("XGROUP", "CREATECONSUMER", "q", "g", "c7"),
    ("XGROUP", "CREATECONSUMER", "q", "g", "c7"),
    ("XGROUP", "DELCONSUMER", "q", "g", "c7"),
    ("XGROUP", "DELCONSUMER", "q", "g", "c7"),
    ("XGROUP", "SETID", "q", "g", "$", "ENTRIESREAD", "3"),
    ("XGROUP", "CREATE", "q", "g2", "$", "ENTRIESREAD", "4"),
    ("XGROUP", "CREATE", "q2", "g", "$", "MKSTREAM"),
    ("XGROUP", "DESTROY", "q2", "g"),
    ("XGROUP", "DESTROY", "q2", "g"),
    ("XSETID", "q", "99-0", "ENTRIESADDED", "10", "MAXDELETEDID", "50-0"),
    ("MULTI",),
    ("XADD", "q", "100-0", "f", "x"),
    ("XREADGROUP", "GROUP", "g2", "c1", "STREAMS", "q", ">"),
    ("EXEC",),
    ("XADD", "nokey", "NOMKSTREAM", "*", "f", "v"),
    ("XTRIM", "nokey", "MAXLEN", "0"),
    ("XDEL", "q", "12345"),
    ("CONFIG", "SET", "stream-node-max-entries", "100"),
]


def test_effects_equal_redis_aof(server_factory: Callable[..., ServerProcess], inproc: InProcess) -> None:
    """Every stream write records what redis-server 7.0 appends to its AOF."""
    real = server_factory("redis", "--appendonly", "yes", "--appendfsync", "always")
    conn = real.conn()
    sink = inproc.record()
    now = int(time.time() * 1000)
    try:
        for argv in EFFECT_SCRIPT:
            r_reply = render(parse_one(conn.command(*argv)))
            a_reply = render(parse_one(inproc.encode(inproc.call(*argv))))
            if argv[0] == "XADD" and "*" in argv:
                continue  # the generated IDs differ
            assert a_reply == r_reply, f"{argv}: {a_reply} != {r_reply}"
    finally:
        conn.close()
    theirs = _timeless(_aof_commands(real), now)
    ours = _timeless([list(c) for c in sink.commands], now)
    assert ours == theirs


def _blocked_client(ip: InProcess, *argv: Any) -> Any:
    c = ip.new_client()
    assert ip.call(*argv, client=c) is NOREPLY
    return c


def test_served_xreadgroup_is_recorded_after_the_xadd_as_its_own_unit(inproc: InProcess) -> None:
    ip = inproc
    ip.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    sink = ip.record()
    a = _blocked_client(ip, "XREADGROUP", "GROUP", "g", "alice", "COUNT", 5, "BLOCK", 0, "STREAMS", "s", ">")
    b = _blocked_client(ip, "XREADGROUP", "GROUP", "g", "bob", "NOACK", "BLOCK", 0, "STREAMS", "s", ">")
    x = _blocked_client(ip, "XREAD", "BLOCK", 0, "STREAMS", "s", "$")
    ip.call("MULTI")
    ip.call("XADD", "s", "1-1", "f", "a")
    ip.call("XADD", "s", "1-2", "f", "b")
    ip.call("EXEC")
    assert a.blocked is None and x.blocked is None and b.blocked is not None
    t = sink.commands[6][7]
    assert sink.commands[1:] == [
        [b"MULTI"], [b"XADD", b"s", b"1-1", b"f", b"a"], [b"XADD", b"s", b"1-2", b"f", b"b"], [b"EXEC"],
        [b"MULTI"],
        [b"XCLAIM", b"s", b"g", b"alice", b"0", b"1-1", b"TIME", t, b"RETRYCOUNT", b"1", b"FORCE", b"JUSTID",
         b"LASTID", b"1-1"],
        [b"XCLAIM", b"s", b"g", b"alice", b"0", b"1-2", b"TIME", t, b"RETRYCOUNT", b"1", b"FORCE", b"JUSTID",
         b"LASTID", b"1-2"],
        [b"EXEC"],
    ]
    ip.call("XADD", "s", "2-0", "f", "c")
    assert b.blocked is None
    # NOACK: the consumer's creation and the group's new last ID
    assert sink.commands[-5:] == [
        [b"XADD", b"s", b"2-0", b"f", b"c"],
        [b"MULTI"], [b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"bob"],
        [b"XGROUP", b"SETID", b"s", b"g", b"2-0", b"ENTRIESREAD", b"3"], [b"EXEC"],
    ]


def test_replaying_the_effects_rebuilds_the_groups(inproc: InProcess) -> None:
    """The recorded effects, applied by a primary's link, give the same
    entries, groups, PELs (owners, delivery times and counts) and last
    delivered IDs.  Not compared, as in Redis: read counters (XCLAIM ...
    LASTID does not carry them, so entries-read and lag may differ) and
    consumers created by a read that delivered nothing (never recorded)."""
    ip = inproc
    sink = ip.record()
    for argv in EFFECT_SCRIPT:
        if argv[0] != "CONFIG":
            ip.call(*argv)
    replica = InProcess()
    replica.client.is_primary_link = True
    for argv in sink.commands:
        assert not isinstance(replica.call(*argv), Exception), argv
    ip.call("XGROUP", "DELCONSUMER", "q", "g", "c9")  # the one that never reached the AOF
    mask = re.compile(rb"(seen-time|entries-read|lag)\r\n(:\d+|\$-1|_)")
    for key in ("s", "t", "q"):
        for cmd in (("XINFO", "STREAM", key, "FULL", "COUNT", 0), ("DEBUG", "DIGEST-VALUE", key)):
            theirs = mask.sub(rb"\1", replica.encode(replica.call(*cmd)))
            ours = mask.sub(rb"\1", ip.encode(ip.call(*cmd)))
            assert ours == theirs, cmd


# -- keyspace notifications -------------------------------------------------------------------------


def test_keyspace_events_of_stream_commands(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "CONFIG", "SET", "notify-keyspace-events", "KEA")
        try:
            s.cmd("sub", "PSUBSCRIBE", "__keyevent@0__:*")
            s.cmd("p", "XADD", "s", "1", "f", "v")
            s.cmd("p", "XADD", "s", "MAXLEN", "1", "2", "f", "v")
            s.cmd("p", "XADD", "s", "MAXLEN", "5", "3", "f", "v")
            s.cmd("p", "XADD", "nokey", "NOMKSTREAM", "1", "f", "v")
            s.cmd("p", "XDEL", "s", "2")
            s.cmd("p", "XDEL", "s", "2")
            s.cmd("p", "XTRIM", "s", "MAXLEN", "0")
            s.cmd("p", "XTRIM", "s", "MAXLEN", "0")
            s.cmd("p", "XSETID", "s", "10")
            s.cmd("p", "XGROUP", "CREATE", "s", "g", "$")
            s.cmd("p", "XGROUP", "CREATE", "s2", "g", "$", "MKSTREAM")
            s.cmd("p", "XGROUP", "SETID", "s", "g", "0")
            s.cmd("p", "XGROUP", "CREATECONSUMER", "s", "g", "c")
            s.cmd("p", "XGROUP", "CREATECONSUMER", "s", "g", "c")
            s.cmd("p", "XGROUP", "DELCONSUMER", "s", "g", "c")
            s.cmd("p", "XGROUP", "DELCONSUMER", "s", "g", "c")
            s.cmd("p", "XADD", "s", "11", "f", "v")
            s.cmd("p", "XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">")
            s.cmd("p", "XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">")
            s.cmd("p", "XCLAIM", "s", "g", "c3", "0", "11")
            s.cmd("p", "XAUTOCLAIM", "s", "g", "c4", "0", "0")
            s.cmd("p", "XACK", "s", "g", "11")
            s.cmd("p", "XGROUP", "DESTROY", "s", "g")
            s.cmd("p", "XGROUP", "DESTROY", "s", "g")
            s.drain("sub")
        finally:
            s.cmd("p", "CONFIG", "SET", "notify-keyspace-events", "")

    seen = run_both(redis, ambry, sc)
    events = [raw for name, raw in seen if name == "sub"]
    assert any(b"xgroup-createconsumer" in e for e in events)


# -- RDB --------------------------------------------------------------------------------------------


def _jb(v: Any) -> bytes:
    """The fixtures' binary-safe JSON strings: text, or {"base64": ...}."""
    if isinstance(v, dict):
        return base64.b64decode(v["base64"])
    return str(v).encode()


def _load_fixture_streams() -> dict[bytes, Any]:
    from ambry.persistence.rdb import Key, read_file
    from ambry.server.commands.streams import StreamValue

    return {
        ev.key: StreamValue.from_rdb(ev.value)
        for ev in read_file(STREAMS_RDB)
        if isinstance(ev, Key) and ev.type == "stream"
    }


@pytest.mark.skipif(not STREAMS_RDB.exists(), reason="shared RDB fixtures not found")
def test_streams_rdb_loads_to_its_expected_contents() -> None:
    from ambry.server.commands.streams import id_bytes

    expected = json.loads(STREAMS_JSON.read_text())
    loaded = _load_fixture_streams()
    assert len(loaded) == len(expected["keys"])
    for k in expected["keys"]:
        s = loaded[_jb(k["key"])]
        v = k["value"]
        assert s.length == v["length"]
        assert id_bytes(s.last_id) == _jb(v["last_generated_id"])
        assert id_bytes(s.max_deleted) == _jb(v["max_deleted_entry_id"])
        assert s.entries_added == v["entries_added"]
        assert id_bytes(s.first_id) == _jb(v["recorded_first_entry_id"])
        entries = [(id_bytes(eid), fv) for eid, fv in s.iter_range(0, (1 << 128) - 1)]
        assert entries == [(_jb(e["id"]), [_jb(x) for pair in e["fields"] for x in pair]) for e in v["entries"]]
        groups = []
        for name in sorted(s.groups or {}):
            g = s.groups[name]  # type: ignore[index]
            groups.append((
                name, id_bytes(g.last_id), None if g.entries_read == -1 else g.entries_read, s.lag(g),
                [(id_bytes(eid), n.consumer.name, n.delivery_time, n.delivery_count) for eid, n in g.pel.items()],
                [(c.name, c.seen_time, [id_bytes(eid) for eid in c.pel]) for c in g.sorted_consumers()],
            ))
        assert groups == [
            (_jb(g["name"]), _jb(g["last_delivered_id"]), g["entries_read"], g["lag"],
             [(_jb(n["id"]), _jb(n["consumer"]), n["delivery_time_ms"], n["delivery_count"]) for n in g["pel"]],
             [(_jb(c["name"]), c["seen_time_ms"], [_jb(i) for i in c["pel"]]) for c in g["consumers"]])
            for g in sorted(v["groups"], key=lambda g: _jb(g["name"]))
        ]


def _built_stream(ip: InProcess) -> Any:
    for argv in EFFECT_SCRIPT:
        if argv[0] != "CONFIG":
            ip.call(*argv)
    ip.call("XADD", "bin", "1", "\x00f", "\xff" * 300, "123", "-7")
    ip.call("XGROUP", "CREATE", "bin", "g\x00x", "0")
    ip.call("XREADGROUP", "GROUP", "g\x00x", "c", "STREAMS", "bin", ">")
    ip.call("XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM")
    return ip.srv.dbs[0].data


def test_values_survive_the_rdb_codec(inproc: InProcess) -> None:
    from ambry.persistence.rdb import dump_payload, load_dump_payload
    from ambry.server.commands.streams import StreamValue

    data = _built_stream(inproc)
    other = InProcess()
    for key, value in data.items():
        if not isinstance(value, StreamValue):
            continue
        payload = dump_payload("stream", value.to_rdb())
        dv = load_dump_payload(payload)
        assert dv.type == "stream"
        other.srv.dbs[0].data[key] = StreamValue.from_rdb(dv.value, other.srv)
        for cmd in (("XINFO", "STREAM", key, "FULL", "COUNT", 0), ("XINFO", "GROUPS", key),
                    ("DEBUG", "DIGEST-VALUE", key)):
            ours = inproc.encode(inproc.call(*cmd))
            theirs = other.encode(other.call(*cmd))
            # the idle-free parts must agree; node layout is re-packed without tombstones
            strip = re.compile(rb"radix-tree-(keys|nodes)\r\n:\d+")
            assert strip.sub(b"", theirs) == strip.sub(b"", ours), (key, cmd)


def test_redis_loads_ambry_streams_with_an_equal_digest(redis: ServerProcess, inproc: InProcess) -> None:
    from ambry.persistence.rdb import dump_payload, load_dump_payload
    from ambry.server.commands.streams import StreamValue
    from ambry.server.digest import digest_value_hex

    data = _built_stream(inproc)
    conn = redis.conn()
    try:
        for key, value in data.items():
            if not isinstance(value, StreamValue):
                continue
            payload = dump_payload("stream", value.to_rdb(), version=10)
            assert conn.command("RESTORE", key, 0, payload, "REPLACE") == b"+OK\r\n"
            ours = digest_value_hex(value).encode()
            assert conn.command("DEBUG", "DIGEST-VALUE", key) == b"*1\r\n+" + ours + b"\r\n"
            theirs = conn.command("XINFO", "GROUPS", key)
            assert theirs == inproc.encode(inproc.call("XINFO", "GROUPS", key))
            # and back: redis-server's own DUMP loads into an equal value
            raw = parse_one(conn.command("DUMP", key))[1]
            back = StreamValue.from_rdb(load_dump_payload(raw).value)
            assert back.to_rdb() == value.to_rdb()
    finally:
        conn.close()


LAYOUT_SCRIPT: list[tuple[Any, ...]] = [
    ("CONFIG", "SET", "stream-node-max-entries", "4"),
    *[("XADD", "s", f"{i}-{i % 3}", "f", "x" * (i % 7), "n", str(i * 1000003)) for i in range(1, 30)],
    ("XADD", "s", "40-0", "other", "fields", "n", "-5"),
    ("XADD", "s", "41-0", "f", "y" * 300),
    ("XADD", "s", "42-0", "f", "z" * 16378),  # a 32-bit string header: 3-byte back-length
    ("XADD", "s", "43-0", "f", "w" * 5000),
    ("XDEL", "s", "2-2", "3-0", "9-0", "29-2", "40-0"),
    ("XTRIM", "s", "MINID", "5"),
    ("XTRIM", "s", "MAXLEN", "~", "20"),
    ("XSETID", "s", "50-0", "ENTRIESADDED", "100", "MAXDELETEDID", "45-0"),
    ("XGROUP", "CREATE", "s", "g1", "0"),
    ("XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "77"),
    ("XGROUP", "CREATE", "s", "g\x00bin", "7-1"),
    ("XGROUP", "CREATE", "e", "g", "$", "MKSTREAM"),
    ("XADD", "d", "1", "f", "v"),
    ("XDEL", "d", "1"),
    ("CONFIG", "SET", "stream-node-max-entries", "100"),
]


def test_dump_of_ambry_streams_is_byte_identical_to_redis(redis: ServerProcess, inproc: InProcess) -> None:
    """rdb_body() is what redis-server 7.0 serializes: node layout,
    tombstones, LZF-compressed listpacks, metadata and groups."""
    conn = redis.conn()
    try:
        for argv in LAYOUT_SCRIPT:
            assert render(parse_one(conn.command(*argv))) == render(parse_one(inproc.encode(inproc.call(*argv))))
        for key in (b"s", b"e", b"d"):
            value = inproc.srv.dbs[0].data[key]
            payload = parse_one(conn.command("DUMP", key))[1]
            assert payload[:-10] == b"\x13" + value.rdb_body(), key
            uncompressed = value.rdb_body(compress=False)
            assert value.serialized_length() == len(payload) - 11
            assert len(uncompressed) > value.serialized_length() or key != b"s"
            assert conn.command("MEMORY", "USAGE", key, "SAMPLES", "0") == inproc.encode(
                inproc.call("MEMORY", "USAGE", key, "SAMPLES", "0"))
        # with consumers (seen times differ, their size does not)
        for argv in (("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", "s", ">"),
                     ("XCLAIM", "s", "g1", "bob", "0", "30-0", "FORCE", "JUSTID")):
            conn.command(*argv)
            inproc.call(*argv)
        info = conn.command("DEBUG", "OBJECT", "s")
        m = re.search(rb"serializedlength:(\d+)", info)
        assert m is not None and int(m.group(1)) == inproc.srv.dbs[0].data[b"s"].serialized_length()
    finally:
        conn.command("CONFIG", "SET", "stream-node-max-entries", "100")
        conn.close()


def _dump_listpacks(body: bytes) -> list[tuple[bytes, bytes]]:
    """The (node key, listpack) pairs at the start of a stream's RDB value."""
    from ambry.persistence.rdb.encoding import read_len, read_str

    n, p = read_len(body, 0)
    out = []
    for _ in range(n):
        key, p = read_str(body, p)
        lp, p = read_str(body, p)
        out.append((key, lp))
    return out


def test_redis_dumps_load_with_their_node_layout(redis: ServerProcess, inproc: InProcess) -> None:
    """Given the dump's listpacks, a loaded stream keeps Redis's nodes and
    tombstones: the same XINFO, MEMORY USAGE and, saved again, the same bytes."""
    from ambry.persistence.rdb import load_dump_payload
    from ambry.server.commands.streams import StreamValue

    conn = redis.conn()
    try:
        for argv in LAYOUT_SCRIPT:
            conn.command(*argv)
        for key in (b"s", b"e", b"d"):
            payload = parse_one(conn.command("DUMP", key))[1]
            value = StreamValue.from_rdb(load_dump_payload(payload).value, inproc.srv,
                                         _dump_listpacks(payload[1:-10]))
            assert b"\x13" + value.rdb_body() == payload[:-10]
            inproc.srv.dbs[0].data[key] = value
            for cmd in (("XINFO", "STREAM", key, "FULL"), ("MEMORY", "USAGE", key)):
                assert conn.command(*cmd) == inproc.encode(inproc.call(*cmd)), cmd
            # and appending to the loaded tail node goes on as in Redis
            for argv in (("XADD", key, "60-0", "f", "v"), ("XINFO", "STREAM", key), ("MEMORY", "USAGE", key)):
                assert conn.command(*argv) == inproc.encode(inproc.call(*argv)), argv
    finally:
        conn.command("CONFIG", "SET", "stream-node-max-entries", "100")
        conn.close()


def test_modelled_listpack_sizes_are_the_real_ones(inproc: InProcess) -> None:
    """Each node's byte count, kept incrementally, equals the listpack it
    describes, through appends, deletions and trims."""
    rng = random.Random(3)
    inproc.call("CONFIG", "SET", "stream-node-max-entries", "7")

    def value_of() -> bytes:
        return rng.choice([b"", b"x" * rng.randint(1, 200), b"%d" % rng.randint(-(2**63), 2**63 - 1),
                           b"%d" % rng.randint(-5000, 5000), b"\x00" * 70, b"y" * 4100])

    ids: list[bytes] = []
    for i in range(400):
        ms = i // 3 + rng.choice([0, 0, 2**40])
        r = inproc.call("XADD", "s", f"{ms}-*", rng.choice([b"f", b"g", b"123"]), value_of(), "k", value_of())
        if isinstance(r, bytes):
            ids.append(r)
        if rng.random() < 0.2 and ids:
            inproc.call("XDEL", "s", rng.choice(ids))
        if rng.random() < 0.02:
            inproc.call("XTRIM", "s", "MAXLEN", rng.choice(["~", "="]), rng.randint(0, 200))
        s = inproc.srv.dbs[0].data[b"s"]
        for node, (_, lp) in zip(s.nodes, s.listpack_nodes(), strict=True):
            assert node.lp_bytes() == len(lp)
            assert node.alloc >= len(lp)


# -- the radix tree ---------------------------------------------------------------------------------


def test_radix_tree_node_count_matches_redis(redis: ServerProcess) -> None:
    """XINFO STREAM's radix-tree-nodes for node keys spread over every
    byte of the 128-bit ID, then thinned out by XDEL."""
    from ambry.server.commands.streams import rax_nodes

    rng = random.Random(7)
    conn = redis.conn()
    try:
        conn.command("CONFIG", "SET", "stream-node-max-entries", "1")
        for _ in range(6):
            conn.command("DEL", "s")
            ids = sorted({(rng.getrandbits(rng.choice([8, 16, 40, 64])) << 64) | rng.getrandbits(rng.choice([0, 4, 64]))
                          for _ in range(rng.randint(1, 60))})
            ids = [i for i in ids if i]
            for i in ids:
                conn.command("XADD", "s", f"{i >> 64}-{i & ((1 << 64) - 1)}", "f", "v")
            for _ in range(2):
                info = parse_one(conn.command("XINFO", "STREAM", "s"))[1]
                nodes = int(info[5][1])
                assert nodes == rax_nodes(ids), ids
                drop = rng.sample(ids, len(ids) // 2)
                for i in drop:
                    conn.command("XDEL", "s", f"{i >> 64}-{i & ((1 << 64) - 1)}")
                ids = [i for i in ids if i not in drop]
    finally:
        conn.command("CONFIG", "SET", "stream-node-max-entries", "100")
        conn.close()


# -- randomized differential ------------------------------------------------------------------------


def _mask(raw: bytes, argv: list[bytes]) -> str:
    """A reply with clock-dependent values masked: times near now, idle
    times of XPENDING's extended form and XINFO CONSUMERS."""
    now = time.time() * 1000

    def walk(t: Any) -> Any:
        if isinstance(t, tuple) and len(t) == 2 and isinstance(t[0], str):
            kind, v = t
            if kind == ":" and abs(int(v) - now) < 600_000:
                return (":", b"T")
            if isinstance(v, tuple):
                return (kind, tuple(walk(x) for x in v))
            return t
        if isinstance(t, tuple):
            return tuple(walk(x) for x in t)
        return t

    tree = walk(parse_one(raw))
    head = [a.upper() for a in argv[:2]]
    if head[0] == b"XPENDING" and len(argv) > 3 and tree[0] == "*":
        tree = ("*", tuple(("*", (r[1][0], r[1][1], (":", b"I"), r[1][3])) if r[0] == "*" else r
                           for r in tree[1]))
    text = render(tree)
    if head == [b"XINFO", b"CONSUMERS"]:
        text = re.sub(r"idle(, |: )\d+", "idle, I", text)
    return text


class _Fuzz:
    """Random stream commands with explicit IDs on two streams."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.last = {b"s1": 0, b"s2": 0}
        self.ids: dict[bytes, list[bytes]] = {b"s1": [], b"s2": []}

    def anyid(self, k: bytes) -> bytes:
        rng = self.rng
        if self.ids[k] and rng.random() < 0.7:
            return rng.choice(self.ids[k])
        return b"%d-%d" % (rng.randint(0, 30), rng.randint(0, 5))

    def bound(self, k: bytes) -> bytes:
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            return b"-"
        if r < 0.3:
            return b"+"
        x = self.anyid(k)
        return b"(" + x if rng.random() < 0.3 else x

    def value(self) -> bytes:
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            return b"%d" % rng.randint(-100000, 100000)
        if r < 0.4:
            return b"%d" % rng.randint(-(2**63), 2**63 - 1)
        if r < 0.85:
            return bytes(rng.choice(b"abcdef") for _ in range(rng.randint(0, 10)))
        return b"v" * rng.randint(50, 300)

    def command(self) -> list[bytes]:
        rng = self.rng
        k = rng.choice([b"s1", b"s2"])
        g = rng.choice([b"g1", b"g2"])
        c = rng.choice([b"c1", b"c2", b"c3"])
        op = rng.random()
        if op < 0.35:
            last = self.last[k]
            ms, seq = last >> 64, last & 0xFFFF
            if rng.random() < 0.5:
                ms += rng.randint(0, 3)
            seq = seq + 1 if ms == last >> 64 else rng.randint(0, 3)
            argv = [b"XADD", k]
            if rng.random() < 0.25:
                strat = rng.choice([b"MAXLEN", b"MINID"])
                argv.append(strat)
                approx = rng.choice([b"~", b"=", None])
                if approx:
                    argv.append(approx)
                argv.append(b"%d" % rng.randint(0, 12) if strat == b"MAXLEN" else self.anyid(k))
                if approx == b"~" and rng.random() < 0.4:
                    argv += [b"LIMIT", b"%d" % rng.randint(0, 12)]
            argv.append(b"%d-*" % ms if rng.random() < 0.1 else b"%d-%d" % (ms, seq))
            for f in rng.choice([[b"f"], [b"a", b"b"], [b"x", b"y", b"z"], [b"123", b"f"]]):
                argv += [f, self.value()]
            return argv
        if op < 0.40:
            return [b"XDEL", k] + [self.anyid(k) for _ in range(rng.randint(1, 3))]
        if op < 0.45:
            strat = rng.choice([b"MAXLEN", b"MINID"])
            argv = [b"XTRIM", k, strat, rng.choice([b"~", b"="])]
            argv.append(b"%d" % rng.randint(0, 12) if strat == b"MAXLEN" else self.anyid(k))
            if argv[3] == b"~" and rng.random() < 0.4:
                argv += [b"LIMIT", b"%d" % rng.randint(0, 12)]
            return argv
        if op < 0.52:
            argv = [rng.choice([b"XRANGE", b"XREVRANGE"]), k, self.bound(k), self.bound(k)]
            return argv + ([b"COUNT", b"%d" % rng.randint(-1, 5)] if rng.random() < 0.3 else [])
        if op < 0.56:
            return [b"XINFO", b"STREAM", k] + ([b"FULL", b"COUNT", b"%d" % rng.randint(0, 4)]
                                               if rng.random() < 0.5 else [])
        if op < 0.59:
            return rng.choice([[b"MEMORY", b"USAGE", k, b"SAMPLES", b"%d" % rng.choice([0, 1, 5])],
                               [b"DEBUG", b"DIGEST-VALUE", k], [b"XLEN", k], [b"XINFO", b"GROUPS", k],
                               [b"XINFO", b"CONSUMERS", k, g]])
        if op < 0.65:
            sub = rng.choice([b"CREATE", b"SETID", b"CREATECONSUMER", b"DELCONSUMER", b"DESTROY"])
            if sub in (b"CREATE", b"SETID"):
                argv = [b"XGROUP", sub, k, g, rng.choice([b"$", b"0", self.anyid(k)])]
                if sub == b"CREATE" and rng.random() < 0.5:
                    argv.append(b"MKSTREAM")
                if rng.random() < 0.3:
                    argv += [b"ENTRIESREAD", b"%d" % rng.randint(-1, 10)]
                return argv
            return [b"XGROUP", sub, k, g] + ([] if sub == b"DESTROY" else [c])
        if op < 0.77:
            argv = [b"XREADGROUP", b"GROUP", g, c]
            if rng.random() < 0.5:
                argv += [b"COUNT", b"%d" % rng.randint(0, 4)]
            if rng.random() < 0.2:
                argv.append(b"NOACK")
            return argv + [b"STREAMS", k, b">" if rng.random() < 0.7 else self.anyid(k)]
        if op < 0.80:
            return [b"XACK", k, g] + [self.anyid(k) for _ in range(rng.randint(1, 3))]
        if op < 0.85:
            argv = [b"XCLAIM", k, g, c, b"0"] + [self.anyid(k) for _ in range(rng.randint(1, 3))]
            for opt in ([b"TIME", b"1000"], [b"RETRYCOUNT", b"%d" % rng.randint(0, 5)], [b"FORCE"], [b"JUSTID"],
                        [b"LASTID", self.anyid(k)]):
                if rng.random() < 0.25:
                    argv += opt
            return argv
        if op < 0.88:
            argv = [b"XAUTOCLAIM", k, g, c, b"0", self.bound(k).replace(b"+", b"0")]
            return argv + ([b"COUNT", b"%d" % rng.randint(1, 4)] if rng.random() < 0.5 else []) + (
                [b"JUSTID"] if rng.random() < 0.3 else [])
        if op < 0.93:
            if rng.random() < 0.4:
                return [b"XPENDING", k, g]
            argv = [b"XPENDING", k, g] + ([b"IDLE", b"0"] if rng.random() < 0.3 else [])
            argv += [self.bound(k), self.bound(k), b"%d" % rng.randint(-1, 5)]
            return argv + ([c] if rng.random() < 0.4 else [])
        if op < 0.96:
            argv = [b"XSETID", k, self.anyid(k)]
            if rng.random() < 0.3:
                argv += [b"ENTRIESADDED", b"%d" % rng.randint(0, 20)]
            if rng.random() < 0.3:
                argv += [b"MAXDELETEDID", self.anyid(k)]
            return argv
        return [b"XREAD"] + ([b"COUNT", b"%d" % rng.randint(0, 4)] if rng.random() < 0.5 else []) + [
            b"STREAMS", k, self.anyid(k)]

    def learn(self, argv: list[bytes], raw: bytes) -> None:
        """Follow the streams' last IDs (XADD's reply, a successful XSETID)."""
        k = argv[1] if len(argv) > 1 else b""
        if argv[0] == b"XADD" and raw.startswith(b"$") and not raw.startswith(b"$-1"):
            idb = raw.split(b"\r\n")[1]
            ms, seq = idb.split(b"-")
            self.last[k] = int(ms) << 64 | int(seq)
            self.ids[k].append(idb)
        elif argv[0] == b"XSETID" and raw == b"+OK\r\n":
            ms, _, seq = argv[2].partition(b"-")
            self.last[k] = int(ms) << 64 | int(seq or b"0")


@pytest.mark.parametrize("seed", range(6))
def test_random_stream_commands_match_redis(seed: int, redis: ServerProcess, ambry: ServerProcess) -> None:
    rng = random.Random(seed)
    resp3 = seed % 2 == 1
    conns = [redis.conn(), ambry.conn()]
    fz = _Fuzz(rng)
    history: list[list[bytes]] = []
    limits = ((b"stream-node-max-entries", rng.choice([0, 1, 2, 3, 5, 100])),
              (b"stream-node-max-bytes", rng.choice([0, 1, 60, 200, 4096])))
    try:
        for c in conns:
            if resp3:
                c.command("HELLO", "3")
            for name, v in limits:
                c.command("CONFIG", "SET", name, v)
        for _ in range(150):
            argv = fz.command()
            history.append(argv)
            theirs, ours = (c.command(*argv) for c in conns)
            if theirs != ours and _mask(theirs, argv) != _mask(ours, argv):
                shown = "\n".join(b" ".join(a)[:160].decode("latin-1") for a in history[-40:])
                pytest.fail(f"seed {seed}: {argv!r}\n redis {theirs!r}\n ambry {ours!r}\nlast commands:\n{shown}")
            fz.learn(argv, theirs)
        for k in (b"s1", b"s2"):
            for argv in ([b"XINFO", b"STREAM", k, b"FULL", b"COUNT", b"0"], [b"MEMORY", b"USAGE", k, b"SAMPLES", b"0"]):
                theirs, ours = (c.command(*argv) for c in conns)
                assert _mask(theirs, argv) == _mask(ours, argv)
    finally:
        for c in conns:
            c.command("CONFIG", "SET", "stream-node-max-entries", "100")
            c.command("CONFIG", "SET", "stream-node-max-bytes", "4096")
            c.close()
