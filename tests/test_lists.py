"""Lists (server/commands/lists.py) beyond what the differential corpus says.

* The quicklist model: after random mixes of pushes, pops, LINSERT, LSET,
  LREM, LTRIM, LMOVE and LMPOP, MEMORY USAGE and DEBUG OBJECT's node fields
  and serializedlength equal redis-server's, for several
  ``list-max-listpack-size`` settings.
* Keyspace notifications and WATCH of every list write, against Redis.
* Effects recorded on the one path (no-op writes record nothing).
* The value against a plain Python list (a property test).
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from conftest import InProcess, ServerProcess
from differential import ReplyTimeout, RespConn
from hypothesis import given, settings
from hypothesis import strategies as st

# -- the quicklist model against redis-server ---------------------------------------------


def _debug_object(conn: RespConn, key: str) -> str:
    """DEBUG OBJECT without the address and the LRU fields."""
    raw = conn.command("DEBUG", "OBJECT", key).decode()
    raw = re.sub(r"Value at:\S+ ", "", raw)
    return re.sub(r" lru:\d+ lru_seconds_idle:\d+", "", raw)


def _bulk(raw: bytes) -> bytes:
    return raw.split(b"\r\n")[1]


class _Model:
    """Random list writes sent to both servers, checked after each one."""

    def __init__(self, redis: RespConn, ambry: RespConn, seed: int) -> None:
        self.r = redis
        self.a = ambry
        self.rnd = random.Random(seed)
        self.problems: list[str] = []

    def value(self) -> str:
        rnd = self.rnd
        k = rnd.random()
        if k < 0.3:
            return str(rnd.choice([rnd.randint(-100, 200), rnd.randint(-10**6, 10**6), rnd.randint(-2**40, 2**40)]))
        if k < 0.6:
            return "x" * rnd.randint(0, 70)
        if k < 0.9:
            return "y" * rnd.randint(100, 900)
        return "z" * rnd.randint(1000, 5000)

    def pivot(self, llen: int) -> bytes:
        return _bulk(self.r.command("LINDEX", "L", self.rnd.randint(0, llen - 1)))

    def step(self) -> tuple[Any, ...]:
        rnd = self.rnd
        llen = int(self.r.command("LLEN", "L")[1:-2])
        op = rnd.random()
        if op < 0.35 or llen == 0:
            return (rnd.choice(["RPUSH", "LPUSH"]), "L", *(self.value() for _ in range(rnd.randint(1, 5))))
        if op < 0.45:
            return (rnd.choice(["LPOP", "RPOP"]), "L", rnd.randint(1, 4))
        if op < 0.6:
            return ("LINSERT", "L", rnd.choice(["BEFORE", "AFTER"]), self.pivot(llen), self.value())
        if op < 0.7:
            return ("LSET", "L", rnd.randint(-llen, llen - 1), self.value())
        if op < 0.78:
            return ("LREM", "L", rnd.randint(-2, 2), self.pivot(llen))
        if op < 0.85:
            return ("LTRIM", "L", rnd.randint(0, 3), rnd.randint(-3, -1))
        if op < 0.9:
            return ("LMOVE", "L", "L", rnd.choice(["LEFT", "RIGHT"]), rnd.choice(["LEFT", "RIGHT"]))
        return ("LMPOP", 1, "L", rnd.choice(["LEFT", "RIGHT"]), "COUNT", rnd.randint(1, 3))

    def run(self, steps: int) -> None:
        for i in range(steps):
            cmd = self.step()
            checks: list[tuple[Any, ...]] = [cmd, ("MEMORY", "USAGE", "L"), ("LRANGE", "L", 0, -1)]
            for chk in checks:
                x, y = self.r.command(*chk), self.a.command(*chk)
                if x != y:
                    self.problems.append(f"step {i} {chk[:3]}: redis {x[:120]!r} ambry {y[:120]!r}")
            if self.r.command("EXISTS", "L") == b":1\r\n":
                x, y = _debug_object(self.r, "L"), _debug_object(self.a, "L")
                if x != y:
                    self.problems.append(f"step {i} after {cmd[:3]}: DEBUG OBJECT\n  redis {x}\n  ambry {y}")
            if len(self.problems) > 5:
                return


@pytest.mark.parametrize("fill", [-2, -1, -5, 0, 1, 3])
def test_quicklist_layout_matches_redis(fill: int, redis: ServerProcess, ambry: ServerProcess) -> None:
    r, a = redis.conn(), ambry.conn()
    try:
        for conn in (r, a):
            assert conn.command("CONFIG", "SET", "list-max-listpack-size", fill) == b"+OK\r\n"
        model = _Model(r, a, seed=1000 + fill)
        model.run(300)
        assert not model.problems, "\n".join(model.problems)
        # COPY duplicates the nodes as they are (quicklistDup)
        for conn in (r, a):
            conn.command("RPUSH", "L", "end")
            conn.command("COPY", "L", "C")
        assert _debug_object(r, "C") == _debug_object(a, "C")
        assert r.command("MEMORY", "USAGE", "C") == a.command("MEMORY", "USAGE", "C")
    finally:
        for conn in (r, a):
            conn.command("CONFIG", "SET", "list-max-listpack-size", -2)
            conn.close()


def test_big_lists_memory_and_encoding(redis: ServerProcess, ambry: ServerProcess) -> None:
    """Thousands of elements over many nodes, pushed from both ends."""
    r, a = redis.conn(), ambry.conn()
    try:
        for conn in (r, a):
            for i in range(0, 3000, 100):
                conn.command("RPUSH", "big", *[f"element:{j}" for j in range(i, i + 100)])
                conn.command("LPUSH", "big", *[str(j * 7919) for j in range(i, i + 100)])
        for chk in (("MEMORY", "USAGE", "big"), ("MEMORY", "USAGE", "big", "SAMPLES", 0),
                    ("MEMORY", "USAGE", "big", "SAMPLES", 1), ("OBJECT", "ENCODING", "big"),
                    ("LLEN", "big"), ("LRANGE", "big", 2990, 3010), ("LINDEX", "big", -1234),
                    ("LPOS", "big", "element:2999", "RANK", -1), ("DEBUG", "DIGEST-VALUE", "big")):
            assert r.command(*chk) == a.command(*chk), chk
        assert _debug_object(r, "big") == _debug_object(a, "big")
        for conn in (r, a):
            conn.command("LTRIM", "big", 1000, -1000)
            conn.command("LREM", "big", 0, "element:1500")
        assert r.command("MEMORY", "USAGE", "big") == a.command("MEMORY", "USAGE", "big")
        assert _debug_object(r, "big") == _debug_object(a, "big")
    finally:
        r.close()
        a.close()


# -- notifications and WATCH against redis-server -----------------------------------------


_EVENTS_SCRIPT: list[tuple[Any, ...]] = [
    ("RPUSH", "l", "a", "b", "c"),
    ("LPUSH", "l", "z"),
    ("LPUSHX", "nokey", "x"),
    ("RPUSHX", "l", "d"),
    ("LINSERT", "l", "BEFORE", "a", "y"),
    ("LINSERT", "l", "BEFORE", "nopivot", "y"),
    ("LSET", "l", 0, "Z"),
    ("LTRIM", "l", 0, 100),
    ("LTRIM", "l", 1, -1),
    ("LREM", "l", 0, "nothing"),
    ("LREM", "l", 1, "a"),
    ("LPOP", "l", 0),
    ("LPOP", "l"),
    ("RPOP", "l", 2),
    ("LMOVE", "l", "l2", "LEFT", "RIGHT"),
    ("RPOPLPUSH", "l2", "l2"),
    ("LMPOP", 1, "l2", "LEFT", "COUNT", 5),
    ("RPUSH", "s", 3, 1, 2),
    ("SORT", "s", "STORE", "dst"),
    ("SORT", "nokey", "STORE", "dst"),
    ("RPUSH", "t", "x"),
    ("LTRIM", "t", 5, 10),
    ("BLPOP", "s", 0),
    ("BRPOP", "s", 0),
    ("BLMPOP", 0, 1, "s", "RIGHT", "COUNT", 2),
    ("RPUSH", "m", 1),
    ("BLMOVE", "m", "m2", "RIGHT", "LEFT", 0),
    ("BRPOPLPUSH", "m2", "m", 0),
]


def _events(server: ServerProcess) -> list[bytes]:
    sub, conn = server.conn(), server.conn()
    try:
        conn.command("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub.command("SUBSCRIBE", "__keyspace@0__:l", "__keyspace@0__:l2", "__keyspace@0__:dst",
                    "__keyspace@0__:s", "__keyspace@0__:t", "__keyspace@0__:m", "__keyspace@0__:m2",
                    "__keyspace@0__:nokey")
        for _ in range(7):
            sub.read_reply()
        replies = [conn.command(*argv) for argv in _EVENTS_SCRIPT]
        conn.command("CONFIG", "SET", "notify-keyspace-events", "")
        out: list[bytes] = []
        while True:
            try:
                out.append(sub.read_reply(0.2))
            except ReplyTimeout:
                break
        return replies + [b"--"] + out
    finally:
        conn.command("CONFIG", "SET", "notify-keyspace-events", "")
        sub.close()
        conn.close()


def test_keyspace_events_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    theirs, ours = _events(redis), _events(ambry)
    assert ours == theirs
    assert len(theirs) > len(_EVENTS_SCRIPT) + 20


_WATCH_CASES: list[tuple[tuple[Any, ...], ...]] = [
    (("RPUSH", "k", "a"), ("LTRIM", "k", 0, -1)),  # nothing removed: still a change
    (("RPUSH", "k", "a"), ("LREM", "k", 0, "zzz")),  # nothing removed: no change
    (("RPUSH", "k", "a"), ("LINSERT", "k", "BEFORE", "zzz", "v")),
    (("RPUSH", "k", "a"), ("LSET", "k", 0, "a")),
    (("RPUSH", "k", "a"), ("LPOP", "k", 0)),
    (("RPUSH", "k", "a"), ("LPOP", "k")),
    (("SET", "x", "1"), ("LPUSHX", "k", "v")),
    (("RPUSH", "k", "a"), ("LMOVE", "k", "k", "LEFT", "LEFT")),
    (("RPUSH", "o", "a"), ("LMOVE", "o", "k", "LEFT", "LEFT")),
    (("RPUSH", "k", "a"), ("LRANGE", "k", 0, -1)),
    (("RPUSH", "k", "a"), ("LMPOP", 1, "k", "LEFT")),
]


@pytest.mark.parametrize("case", _WATCH_CASES, ids=[" ".join(map(str, c[1][:2])) for c in _WATCH_CASES])
def test_watch_sees_list_changes_as_redis(case: tuple[tuple[Any, ...], ...], redis: ServerProcess,
                                          ambry: ServerProcess) -> None:
    setup, touch = case
    results = []
    for server in (redis, ambry):
        w, other = server.conn(), server.conn()
        try:
            w.command(*setup)
            w.command("WATCH", "k")
            other.command(*touch)
            w.command("MULTI")
            w.command("PING")
            results.append(w.command("EXEC"))
        finally:
            w.close()
            other.close()
    assert results[0] == results[1]


# -- effects -----------------------------------------------------------------------------------


def test_list_writes_record_their_effects(inproc: InProcess) -> None:
    sink = inproc.record()
    for argv in [
        ("RPUSH", "l", "a", "b", "c", "d"),
        ("LPUSHX", "nokey", "x"),  # nothing
        ("LINSERT", "l", "AFTER", "nopivot", "v"),  # nothing
        ("LINSERT", "l", "AFTER", "a", "v"),
        ("LSET", "l", 0, "A"),
        ("LTRIM", "l", 0, -1),  # nothing removed: nothing recorded
        ("LREM", "l", 0, "zzz"),  # nothing
        ("LREM", "l", 1, "v"),
        ("LPOP", "l", 0),  # nothing
        ("LPOP", "l", 2),
        ("RPOPLPUSH", "l", "l2"),
        ("LMOVE", "l2", "l", "left", "RIGHT"),
        ("LMPOP", 2, "nokey", "l", "RIGHT", "COUNT", 9),
        ("LMPOP", 1, "nokey", "LEFT"),  # nothing
    ]:
        inproc.call(*argv)
    assert sink.commands == [
        [b"SELECT", b"0"],
        [b"RPUSH", b"l", b"a", b"b", b"c", b"d"],
        [b"LINSERT", b"l", b"AFTER", b"a", b"v"],
        [b"LSET", b"l", b"0", b"A"],
        [b"LREM", b"l", b"1", b"v"],
        [b"LPOP", b"l", b"2"],
        [b"RPOPLPUSH", b"l", b"l2"],
        [b"LMOVE", b"l2", b"l", b"left", b"RIGHT"],
        [b"RPOP", b"l", b"2"],
    ]
    assert inproc.call("EXISTS", "l", "l2") == 0


def test_lazily_expired_list_is_deleted_before_the_write(inproc: InProcess) -> None:
    import time

    sink = inproc.record()
    inproc.call("RPUSH", "l", "a")
    inproc.call("PEXPIRE", "l", 1)
    time.sleep(0.01)
    inproc.call("RPUSH", "l", "b")
    assert sink.commands[-4:] == [[b"MULTI"], [b"DEL", b"l"], [b"RPUSH", b"l", b"b"], [b"EXEC"]]
    assert inproc.call("LRANGE", "l", 0, -1) == [b"b"]


def test_sort_store_builds_a_list_with_the_configured_node_size(inproc: InProcess) -> None:
    from ambry.server.commands.lists import ListValue

    inproc.call("CONFIG", "SET", "list-max-listpack-size", "2")
    inproc.call("RPUSH", "src", 5, 4, 3, 2, 1)
    assert inproc.call("SORT", "src", "STORE", "dst") == 5
    v = inproc.srv.dbs[0].data[b"dst"]
    assert isinstance(v, ListValue)
    assert [n[0] for n in v.nodes] == [2, 2, 1]
    assert inproc.call("LRANGE", "dst", 0, -1) == [b"1", b"2", b"3", b"4", b"5"]


# -- the value against a Python list ----------------------------------------------------------

_elements = st.one_of(st.integers(-(2**63), 2**63 - 1).map(lambda i: str(i).encode()),
                      st.binary(max_size=80), st.sampled_from([b"a", b"b", b"01", b"-0", b"x" * 300]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["lpush", "rpush", "lpop", "rpop", "lrem", "ltrim", "linsert",
                                           "lset", "popn"]),
                          _elements, st.integers(-6, 6), st.integers(-6, 6)), max_size=60))
def test_list_value_behaves_like_a_python_list(ops: list[tuple[str, bytes, int, int]]) -> None:
    from ambry.server.commands.lists import LIST_HEAD, LIST_TAIL, LP_HDR_EOF, ListValue, entry_size

    lv = ListValue(fill=3)
    ref: list[bytes] = []
    for op, v, i, j in ops:
        if op == "lpush":
            lv.push_head([v, v + b"1"])
            ref[:0] = [v + b"1", v]
        elif op == "rpush":
            lv.push_tail([v])
            ref.append(v)
        elif not ref:
            continue
        elif op == "lpop":
            assert lv.pop_head() == ref.pop(0)
        elif op == "rpop":
            assert lv.pop_tail() == ref.pop()
        elif op == "popn":
            n = abs(i) + 1
            where = LIST_HEAD if j >= 0 else LIST_TAIL
            got = lv.pop_many(where, n)
            want = ref[:n] if where == LIST_HEAD else ref[::-1][:n]
            ref = ref[n:] if where == LIST_HEAD else ref[: max(0, len(ref) - n)]
            assert got == want
        elif op == "lrem":
            target = ref[i % len(ref)]
            removed = lv.remove(target, j)
            idx = [k for k, x in enumerate(ref) if x == target]
            idx = idx[: j] if j > 0 else (idx[j:] if j < 0 else idx)
            assert removed == len(idx)
            for k in reversed(idx):
                del ref[k]
        elif op == "ltrim":
            lo, hi = abs(i) % len(ref), abs(j) % len(ref)
            lv.trim(lo, hi if lo + hi <= len(ref) else len(ref) - lo)
            hi = hi if lo + hi <= len(ref) else len(ref) - lo
            ref = ref[lo: len(ref) - hi]
        elif op == "linsert":
            k = i % len(ref)
            lv.insert(k, v, j >= 0)
            ref.insert(k + 1 if j >= 0 else k, v)
        elif op == "lset":
            k = i % len(ref)
            assert lv.replace(k, v)
            ref[k] = v
        assert list(lv.items) == ref
        assert sum(n[0] for n in lv.nodes) == len(ref)
        assert all(n[0] > 0 for n in lv.nodes)
        chunks = lv.node_chunks()
        assert [LP_HDR_EOF + sum(map(entry_size, c)) for c in chunks] == [n[1] for n in lv.nodes]
