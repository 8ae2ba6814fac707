"""Sorted sets: what the differential corpus (tests/corpus/zsets.txt) cannot show.

* effects as recorded for the AOF and replicas (spec/propagation.md): verbatim
  writes, no-ops that record nothing, ZMPOP/BZMPOP/BZPOPMIN rewrites, a
  blocked client served later as a unit of its own, lazy-expiry DELs first;
* blocking pops across connections and keyspace events, compared with a real
  redis-server 7.0.15 byte for byte;
* random replies (ZRANDMEMBER) by their properties, ZSCAN over a skiplist
  across calls and concurrent changes;
* the value class: encodings, ``-0`` in a listpack, RDB-load encoding rules,
  the strtod and lex-range parsers.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from typing import Any

import pytest
from ambry.server import blocking
from ambry.server.commands.zsets import LexRange, ZSetValue, load_zset, strtod_full
from ambry.server.config import Config
from ambry.server.reply import NULL_ARRAY, Err
from conftest import InProcess, ServerProcess

# -- helpers ---------------------------------------------------------------------------


def effects(ip: InProcess, *cmds: tuple[Any, ...]) -> list[list[bytes]]:
    """Run ``cmds`` with a fresh RecordingSink; the stream minus a leading SELECT 0."""
    sink = ip.record()
    for cmd in cmds:
        ip.call(*cmd)
    out = sink.commands
    if out and out[0] == [b"SELECT", b"0"]:
        out = out[1:]
    return out


def b(*xs: Any) -> list[bytes]:
    return [x if isinstance(x, bytes) else str(x).encode() for x in xs]


def expire_past(ip: InProcess, key: bytes) -> None:
    ip.srv.dbs[0].expires[key] = int(time.time() * 1000) - 10


def capture_replies(client: Any) -> list[Any]:
    """Replies sent to ``client`` outside the request loop (a served blocked client)."""
    got: list[Any] = []
    client.send = got.append
    return got


# -- effects ---------------------------------------------------------------------------


def test_zset_writes_are_recorded_verbatim(inproc: InProcess) -> None:
    cmds = [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c"),
        ("zadd", "z", "GT", "CH", "5", "a"),
        ("ZADD", "z", "INCR", "5", "a"),
        ("ZINCRBY", "z", "0.5", "b"),
        ("ZREM", "z", "c", "nomember"),
        ("ZPOPMIN", "z", "5"),
        ("ZADD", "z2", "1", "x", "2", "y"),
        ("ZREMRANGEBYSCORE", "z2", "-inf", "1"),
        ("ZUNIONSTORE", "u", "2", "z2", "nokey"),
        ("ZRANGESTORE", "r", "u", "0", "-1"),
    ]
    assert effects(inproc, *cmds) == [b(*c) for c in cmds]


def test_writes_that_change_nothing_record_nothing(inproc: InProcess) -> None:
    inproc.call("ZADD", "z", "1", "a")
    assert effects(
        inproc,
        ("ZADD", "z", "NX", "5", "a"),
        ("ZADD", "z", "1", "a"),
        ("ZADD", "z", "GT", "0", "a"),
        ("ZADD", "nokey", "XX", "1", "a"),
        ("ZINCRBY", "z", "0", "a"),
        ("ZREM", "z", "nomember"),
        ("ZREM", "nokey", "a"),
        ("ZREMRANGEBYRANK", "z", "5", "10"),
        ("ZREMRANGEBYLEX", "z", "[x", "[y"),
        ("ZUNIONSTORE", "dst", "1", "nokey"),
        ("ZRANGESTORE", "dst", "nokey", "0", "-1"),
        ("ZPOPMIN", "nokey"),
        ("ZPOPMAX", "z", "0"),
        ("ZMPOP", "1", "nokey", "MIN"),
        ("ZADD", "z", "INCR", "1", "a", "1", "b"),
    ) == []


def test_zadd_incr_nan_records_nothing_and_leaves_the_score(inproc: InProcess) -> None:
    inproc.call("ZADD", "z", "inf", "a")
    assert effects(inproc, ("ZADD", "z", "INCR", "-inf", "a")) == []
    assert inproc.call("ZADD", "z", "INCR", "-inf", "a") == Err("ERR resulting score is not a number (NaN)")
    assert inproc.call("ZSCORE", "z", "a") == math.inf


def test_store_of_an_empty_result_deletes_the_destination_and_is_recorded(inproc: InProcess) -> None:
    inproc.call("SET", "dst", "v")
    inproc.call("SET", "dst2", "v")
    assert effects(
        inproc, ("ZINTERSTORE", "dst", "2", "a", "b"), ("ZRANGESTORE", "dst2", "nokey", "0", "-1")
    ) == [b("ZINTERSTORE", "dst", "2", "a", "b"), b("ZRANGESTORE", "dst2", "nokey", "0", "-1")]
    assert inproc.call("EXISTS", "dst", "dst2") == 0


def test_zmpop_is_recorded_as_zpop_with_the_count_popped(inproc: InProcess) -> None:
    inproc.call("ZADD", "a", "1", "x", "2", "y")
    inproc.call("ZADD", "b", "1", "p", "2", "q", "3", "r")
    assert effects(
        inproc,
        ("ZMPOP", "2", "nokey", "a", "MIN", "COUNT", "10"),
        ("zmpop", "1", "b", "max"),
        ("ZMPOP", "1", "b", "MAX", "COUNT", "1"),
    ) == [b("ZPOPMIN", "a", "2"), b("ZPOPMAX", "b", "1"), b("ZPOPMAX", "b", "1")]


def test_bzpop_served_at_once_is_recorded_as_zpop(inproc: InProcess) -> None:
    inproc.call("ZADD", "k2", "1", "a", "2", "b", "3", "c")
    assert effects(
        inproc,
        ("BZPOPMIN", "k1", "k2", "0"),
        ("BZPOPMAX", "k2", "0"),
        ("BZMPOP", "0", "2", "k1", "k2", "MIN", "COUNT", "5"),
    ) == [b("ZPOPMIN", "k2"), b("ZPOPMAX", "k2"), b("ZPOPMIN", "k2", "1")]


def test_blocked_bzpopmin_is_served_later_as_its_own_unit(inproc: InProcess) -> None:
    sink = inproc.record()
    waiter = inproc.new_client()
    got = capture_replies(waiter)
    assert inproc.call("BZPOPMIN", "k1", "k2", "0", client=waiter) is not None
    assert waiter.blocked is not None
    units_before = sink.units
    inproc.call("ZADD", "k2", "5", "m", "6", "n")
    assert got == [[b"k2", b"m", 5.0]]
    assert waiter.blocked is None
    assert sink.commands[1:] == [b("ZADD", "k2", "5", "m", "6", "n"), b("ZPOPMIN", "k2")]
    assert sink.units - units_before == 2
    assert inproc.call("ZRANGE", "k2", "0", "-1") == [b"n"]


def test_blocked_bzmpop_is_served_with_the_count_popped(inproc: InProcess) -> None:
    sink = inproc.record()
    waiter = inproc.new_client()
    got = capture_replies(waiter)
    inproc.call("BZMPOP", "0", "1", "k", "MAX", "COUNT", "5", client=waiter)
    inproc.call("ZADD", "k", "1", "a", "2", "b")
    assert got == [[b"k", [[b"b", 2.0], [b"a", 1.0]]]]
    assert sink.commands[-1] == b("ZPOPMAX", "k", "2")
    assert inproc.call("EXISTS", "k") == 0


def test_blocked_clients_are_served_in_blocking_order_while_members_last(inproc: InProcess) -> None:
    first, second, third = inproc.new_client(), inproc.new_client(), inproc.new_client()
    replies = [capture_replies(c) for c in (first, second, third)]
    for c in (first, second, third):
        inproc.call("BZPOPMIN", "k", "0", client=c)
    inproc.call("ZADD", "k", "1", "a", "2", "b")
    assert replies[0] == [[b"k", b"a", 1.0]]
    assert replies[1] == [[b"k", b"b", 2.0]]
    assert replies[2] == [] and third.blocked is not None


def test_bzpop_times_out_with_a_null_array(inproc: InProcess) -> None:
    waiter = inproc.new_client()
    got = capture_replies(waiter)
    inproc.call("BZPOPMAX", "k", "0.01", client=waiter)
    assert waiter.blocked is not None
    blocking.handle_timeouts(inproc.srv, int(time.time() * 1000) + 60_000)
    assert got == [NULL_ARRAY]
    assert waiter.blocked is None


def test_bzpop_inside_multi_answers_at_once_and_records_nothing(inproc: InProcess) -> None:
    c = inproc.new_client()
    for cmd in (("MULTI",), ("BZPOPMIN", "k", "0"), ("BZMPOP", "0", "1", "k", "MIN")):
        inproc.call(*cmd, client=c)
    sink = inproc.record()
    assert inproc.call("EXEC", client=c) == [NULL_ARRAY, NULL_ARRAY]
    assert c.blocked is None
    assert sink.commands == []


def test_bzpop_errors_come_before_blocking(inproc: InProcess) -> None:
    inproc.call("SET", "s", "v")
    assert inproc.call("BZPOPMIN", "k", "s", "0") == Err(
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    )
    assert inproc.call("BZPOPMIN", "k", "-1") == Err("ERR timeout is negative")
    assert inproc.call("BZPOPMIN", "k", "x") == Err("ERR timeout is not a float or out of range")
    # BZMPOP checks its own arguments before the timeout
    assert inproc.call("BZMPOP", "x", "0", "k", "MIN") == Err("ERR numkeys should be greater than 0")
    assert inproc.call("BZMPOP", "x", "1", "k", "LEFT") == Err("ERR syntax error")
    assert inproc.call("BZMPOP", "x", "1", "k", "MIN") == Err("ERR timeout is not a float or out of range")


def test_lazy_expiry_del_comes_before_the_zset_write(inproc: InProcess) -> None:
    inproc.call("ZADD", "z", "1", "a")
    expire_past(inproc, b"z")
    assert effects(inproc, ("ZADD", "z", "2", "b")) == [
        b("MULTI"), b("DEL", "z"), b("ZADD", "z", "2", "b"), b("EXEC")
    ]
    assert inproc.call("ZRANGE", "z", "0", "-1") == [b"b"]


def test_store_into_an_expired_destination_records_its_del_first(inproc: InProcess) -> None:
    inproc.call("ZADD", "src", "1", "a")
    inproc.call("SET", "dst", "v")
    expire_past(inproc, b"dst")
    assert effects(inproc, ("ZUNIONSTORE", "dst", "1", "src")) == [
        b("MULTI"), b("DEL", "dst"), b("ZUNIONSTORE", "dst", "1", "src"), b("EXEC")
    ]


def test_store_drops_the_destination_ttl(inproc: InProcess) -> None:
    inproc.call("ZADD", "src", "1", "a")
    inproc.call("SET", "dst", "v", "EX", "100")
    inproc.call("ZRANGESTORE", "dst", "src", "0", "-1")
    assert inproc.call("TTL", "dst") == -1


def test_reads_record_nothing(inproc: InProcess) -> None:
    inproc.call("ZADD", "z", "1", "a", "2", "b")
    assert effects(
        inproc,
        ("ZRANGE", "z", "0", "-1"),
        ("ZRANDMEMBER", "z", "2"),
        ("ZSCAN", "z", "0"),
        ("ZUNION", "1", "z"),
        ("ZINTERCARD", "1", "z"),
        ("ZSCORE", "z", "a"),
    ) == []


def test_watch_is_invalidated_by_changes_only(inproc: InProcess) -> None:
    inproc.call("ZADD", "z", "1", "a")
    c = inproc.new_client()
    inproc.call("WATCH", "z", client=c)
    inproc.call("ZADD", "z", "1", "a")
    inproc.call("ZREM", "z", "nomember")
    assert not c.dirty_cas
    inproc.call("ZINCRBY", "z", "1", "a")
    assert c.dirty_cas


# -- against redis-server: blocking and events ------------------------------------------


def _wait_blocked(server: ServerProcess, n: int = 1) -> None:
    """Poll INFO until ``n`` clients are blocked."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = server.command("INFO", "clients")
        if b"blocked_clients:%d\r\n" % n in info:
            return
        time.sleep(0.005)
    raise AssertionError("client did not block")


def _blocking_script(server: ServerProcess, resp3: bool) -> list[bytes]:
    """Blocking pops in several shapes; the raw replies of the waiter."""
    waiter = server.conn()
    other = server.conn()
    out: list[bytes] = []
    try:
        if resp3:
            waiter.command("HELLO", "3")
            other.command("HELLO", "3")
        from ambry.server.effects import encode_command

        def blocked(argv: list[bytes], *writes: tuple[Any, ...]) -> None:
            waiter.send(encode_command(argv))
            _wait_blocked(server)
            for w in writes:
                out.append(other.command(*w))
            out.append(waiter.read_reply())

        blocked(b("BZPOPMIN", "k1", "k2", "0"), ("ZADD", "k2", "2", "b", "1", "a"))
        blocked(b("BZPOPMAX", "k1", "k7", "0"), ("ZADD", "k1", "3", "c"))
        blocked(b("BZMPOP", "0", "2", "k3", "k4", "MAX", "COUNT", "10"), ("ZADD", "k4", "1", "x", "2", "y"))
        blocked(b("BZMPOP", "0", "1", "k5", "MIN"), ("SET", "k5", "str"), ("DEL", "k5"), ("ZADD", "k5", "7", "z"))
        out.append(waiter.command("BZPOPMIN", "k2", "0"))  # k2 still holds "b"
        out.append(waiter.command("BZPOPMIN", "nokey", "0.01"))
        out.append(waiter.command("BZMPOP", "0.01", "1", "nokey", "MIN"))
        out.append(waiter.command("ZADD", "k6", "1", "a", "2", "b", "3", "c"))
        out.append(waiter.command("BZMPOP", "0", "1", "k6", "MIN", "COUNT", "2"))
        out.append(waiter.command("BZPOPMAX", "k6", "0"))
        out.append(waiter.command("EXISTS", "k6"))
        out.append(waiter.command("SET", "s", "v"))
        out.append(waiter.command("BZPOPMIN", "nokey", "s", "0"))
        for cmd in (("MULTI",), ("BZPOPMIN", "nokey", "0"), ("BZMPOP", "0", "1", "nokey", "MAX"), ("EXEC",)):
            out.append(waiter.command(*cmd))
    finally:
        waiter.close()
        other.close()
    return out


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_blocking_pops_match_redis(redis: ServerProcess, ambry: ServerProcess, resp3: bool) -> None:
    assert _blocking_script(ambry, resp3) == _blocking_script(redis, resp3)


_EVENT_SCRIPT: list[tuple[Any, ...]] = [
    ("ZADD", "z", "1", "a", "2", "b", "3", "c"),
    ("ZADD", "z", "1", "a"),
    ("ZADD", "z", "CH", "5", "a"),
    ("ZADD", "z", "INCR", "1", "a"),
    ("ZINCRBY", "z", "1", "b"),
    ("ZREM", "z", "nomember"),
    ("ZREM", "z", "a"),
    ("ZADD", "y", "1", "p", "2", "q"),
    ("ZREM", "y", "p", "q", "r"),
    ("ZADD", "y", "1", "p", "2", "q", "3", "r"),
    ("ZREMRANGEBYSCORE", "y", "1", "1"),
    ("ZREMRANGEBYRANK", "y", "0", "-1"),
    ("ZADD", "y", "0", "p", "0", "q"),
    ("ZREMRANGEBYLEX", "y", "-", "+"),
    ("ZADD", "p", "1", "a", "2", "b", "3", "c"),
    ("ZPOPMIN", "p"),
    ("ZPOPMAX", "p", "5"),
    ("ZADD", "p", "1", "a", "2", "b"),
    ("ZMPOP", "1", "p", "MIN", "COUNT", "5"),
    ("ZADD", "p", "1", "a"),
    ("BZPOPMAX", "p", "0"),
    ("ZADD", "u1", "1", "a", "2", "b"),
    ("ZADD", "u2", "1", "b", "2", "c"),
    ("ZUNIONSTORE", "dst", "2", "u1", "u2"),
    ("ZINTERSTORE", "dst", "2", "u1", "u2"),
    ("ZDIFFSTORE", "dst", "2", "u1", "u2"),
    ("ZINTERSTORE", "dst", "2", "u1", "nokey"),
    ("ZINTERSTORE", "dst", "2", "u1", "nokey"),
    ("ZRANGESTORE", "dst", "u1", "0", "-1"),
    ("ZRANGESTORE", "dst", "u1", "5", "10"),
    ("ZUNIONSTORE", "u1", "1", "u2"),
    ("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
    ("GEOADD", "g", "13.361389", "38.115556", "Palermo"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gdst"),
    ("GEOSEARCHSTORE", "gdst", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST"),
    ("GEOSEARCHSTORE", "gdst", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
    ("GEORADIUSBYMEMBER", "g", "Palermo", "10", "km", "STORE", "gdst"),
    ("ZADD", "e", "1", "a"),
    ("PEXPIRE", "e", "1"),
]


def _events(server: ServerProcess) -> list[bytes]:
    sub = server.conn()
    c = server.conn()
    try:
        c.command("CONFIG", "SET", "notify-keyspace-events", "KEAn")
        sub.command("PSUBSCRIBE", "__key*__:*")
        for cmd in _EVENT_SCRIPT:
            c.command(*cmd)
        time.sleep(0.01)
        c.command("ZADD", "e", "2", "b")  # e expired: "expired", then "new", "zadd"
        sub.send(b"*1\r\n$4\r\nPING\r\n")
        out = []
        while True:
            raw = sub.read_reply()
            if b"pong" in raw.lower():
                return out
            out.append(raw)
    finally:
        c.command("CONFIG", "SET", "notify-keyspace-events", "")
        sub.close()
        c.close()


def test_keyspace_events_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    assert _events(ambry) == _events(redis)


# -- random replies ---------------------------------------------------------------------


@pytest.fixture
def ip() -> InProcess:
    return InProcess()


@pytest.mark.parametrize("entries", ["128", "0"], ids=["listpack", "skiplist"])
def test_zrandmember_properties(ip: InProcess, entries: str) -> None:
    ip.call("CONFIG", "SET", "zset-max-listpack-entries", entries)
    members = {b"m%d" % i: float(i) for i in range(20)}
    ip.call("ZADD", "z", *[x for m, s in members.items() for x in (str(s), m)])
    assert ip.call("OBJECT", "ENCODING", "z") == (b"listpack" if entries == "128" else b"skiplist")
    for count in (1, 2, 5, 7, 19):
        got = ip.call("ZRANDMEMBER", "z", str(count))
        assert len(got) == count and len(set(got)) == count and set(got) <= set(members)
        if entries == "128" and count * 3 <= 20:
            # CASE 4 on a listpack: lpRandomPairsUnique keeps listpack order
            assert got == sorted(got, key=members.__getitem__)
    rep = ip.call("ZRANDMEMBER", "z", "-50", "WITHSCORES")
    assert len(rep) == 100
    for m, s in zip(rep[::2], rep[1::2], strict=True):
        assert members[m] == s
    c = ip.new_client()
    c.resp3 = True
    pairs = ip.call("ZRANDMEMBER", "z", "3", "WITHSCORES", client=c)
    assert all(len(p) == 2 and members[p[0]] == p[1] for p in pairs)
    assert ip.call("ZRANDMEMBER", "z", "100") == sorted(members, key=members.__getitem__, reverse=True)


def test_zrandmember_is_roughly_uniform(ip: InProcess) -> None:
    ip.call("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d")
    seen = Counter(ip.call("ZRANDMEMBER", "z", "-4000"))
    assert set(seen) == {b"a", b"b", b"c", b"d"}
    assert all(700 < n < 1300 for n in seen.values())
    singles = Counter(ip.call("ZRANDMEMBER", "z") for _ in range(2000))
    assert all(300 < n < 700 for n in singles.values())


# -- ZSCAN over a skiplist ---------------------------------------------------------------


def _scan_all(ip: InProcess, key: str, *opts: str, mutate: Any = None) -> list[bytes]:
    cursor = b"0"
    out: list[bytes] = []
    calls = 0
    while True:
        cursor, batch = ip.call("ZSCAN", key, cursor, *opts)
        out.extend(batch)
        calls += 1
        if mutate is not None:
            mutate(calls)
        if cursor == b"0":
            return out
        assert calls < 10_000


def test_zscan_skiplist_returns_every_member_once_when_unchanged(ip: InProcess) -> None:
    ip.call("ZADD", "z", *[x for i in range(500) for x in (str(i / 7), "m%d" % i)])
    assert ip.call("OBJECT", "ENCODING", "z") == b"skiplist"
    flat = _scan_all(ip, "z", "COUNT", "17")
    members = flat[::2]
    assert sorted(members) == sorted(b"m%d" % i for i in range(500))
    assert all(float(s) == int(m[1:]) / 7 for m, s in zip(members, flat[1::2], strict=True))
    assert ip.call("ZSCAN", "z", "0", "COUNT", "10")[0] != b"0"


def test_zscan_skiplist_survives_concurrent_changes(ip: InProcess) -> None:
    ip.call("ZADD", "z", *[x for i in range(300) for x in (str(i), "keep%d" % i)])
    rng = random.Random(7)

    def mutate(calls: int) -> None:
        ip.call("ZADD", "z", str(rng.random()), "new%d" % calls)
        ip.call("ZREM", "z", "gone%d" % calls)
        ip.call("ZADD", "z", "5", "gone%d" % (calls + 1))
        ip.call("ZINCRBY", "z", "1000", "keep%d" % rng.randrange(300))

    members = set(_scan_all(ip, "z", "COUNT", "10", mutate=mutate)[::2])
    assert {b"keep%d" % i for i in range(300)} <= members


def test_zscan_match_and_count(ip: InProcess) -> None:
    ip.call("ZADD", "z", *[x for i in range(200) for x in (str(i), "%s%d" % ("ab"[i % 2], i))])
    got = _scan_all(ip, "z", "MATCH", "a*", "COUNT", "5")
    assert sorted(got[::2]) == sorted(b"a%d" % i for i in range(0, 200, 2))
    cursor, batch = ip.call("ZSCAN", "z", "0", "COUNT", "5")
    assert len(batch) == 10


# -- the value class and parsers ---------------------------------------------------------


def test_listpack_stores_integral_scores_as_integers_so_minus_zero_is_zero() -> None:
    z = ZSetValue(True)
    z.insert(b"a", -0.0)
    assert math.copysign(1.0, z.scores[b"a"]) == 1.0
    s = ZSetValue(False)
    s.insert(b"a", -0.0)
    assert math.copysign(1.0, s.scores[b"a"]) == -1.0
    s.to_listpack()
    assert math.copysign(1.0, s.scores[b"a"]) == 1.0 and list(s.sl) == [(0.0, b"a")]


def test_sort_converts_a_zset_to_a_skiplist() -> None:
    z = ZSetValue(True)
    z.insert(b"b", 2.0)
    z.insert(b"a", 1.0)
    assert z.sort_elements() == [b"a", b"b"]
    assert z.encoding() == b"skiplist"


def test_copy_is_deep_and_keeps_the_encoding() -> None:
    z = ZSetValue(False)
    z.insert(b"a", 1.0)
    c = z.copy()
    c.insert(b"b", 2.0)
    assert len(z) == 1 and c.encoding() == b"skiplist" and c.rank(b"b", False) == 1


def test_rdb_load_encoding_rules() -> None:
    cfg = Config()
    cfg.zset_max_listpack_entries = 2
    cfg.zset_max_listpack_value = 4
    assert load_zset([(b"a", 1.0), (b"b", 2.0)], False, cfg).encoding() == b"listpack"
    assert load_zset([(b"a", 1.0), (b"toolong", 2.0)], False, cfg).encoding() == b"skiplist"
    assert load_zset([(b"a", 1.0), (b"b", 2.0), (b"c", 3.0)], True, cfg).encoding() == b"skiplist"
    assert load_zset([(b"a", -0.0)], False, cfg).scores[b"a"] == 0.0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"1", 1.0), (b"-1.5", -1.5), (b"", 0.0), (b" 2", 2.0), (b"\t\n3", 3.0), (b"1e400", math.inf),
        (b"-1e400", -math.inf), (b"1e-400", 0.0), (b"0x10", 16.0), (b"0x1p-2", 0.25), (b"inf", math.inf),
        (b"-Infinity", -math.inf), (b"5\x00junk", 5.0), (b"\x00", 0.0), (b".5", 0.5), (b"5.", 5.0),
        (b"0x1p99999", math.inf),
    ],
)
def test_strtod_accepts_what_zslparserange_accepts(text: bytes, value: float) -> None:
    assert strtod_full(text) == value


@pytest.mark.parametrize("text", [b"2 ", b"abc", b"1e", b"0x", b"nan", b"-nan", b" ", b"1_0", b"infinit", b"++1"])
def test_strtod_refuses_trailing_bytes_and_nan(text: bytes) -> None:
    v = strtod_full(text)
    assert v is None or v != v


@pytest.mark.parametrize(
    ("lo", "hi", "empty"),
    [(b"-", b"+", False), (b"+", b"-", True), (b"-", b"-", True), (b"[a", b"[a", False), (b"(a", b"[a", True),
     (b"[b", b"[a", True), (b"+", b"+", True), (b"[a", b"+", False), (b"-", b"(a", False)],
)
def test_lex_range_emptiness(lo: bytes, hi: bytes, empty: bool) -> None:
    assert LexRange(lo, hi).empty() is empty


@pytest.mark.parametrize("bad", [b"", b"a", b"+a", b"-x", b"{a"])
def test_lex_range_items_need_a_prefix(bad: bytes) -> None:
    with pytest.raises(Err, match="min or max not valid string range item"):
        LexRange(bad, b"+")


def _random_session(seed: int) -> list[Any]:
    """Replies of a seeded random zset workload on a fresh in-process server."""
    ip = InProcess()
    rng = random.Random(seed)
    out: list[Any] = []
    members = ["m%d" % i for i in range(40)]
    for _ in range(1500):
        k = rng.choice(["a", "b"])
        op = rng.randrange(12)
        if op < 4:
            out.append(ip.call("ZADD", k, str(rng.choice([0, 1, 2, 2.5, -1, 7])), rng.choice(members)))
        elif op == 4:
            out.append(ip.call("ZREM", k, rng.choice(members)))
        elif op == 5:
            out.append(ip.call("ZRANGE", k, str(rng.randrange(-5, 5)), str(rng.randrange(-5, 50)), "WITHSCORES"))
        elif op == 6:
            out.append(ip.call("ZRANGE", k, "(1", "7", "BYSCORE", "REV", "LIMIT", "1", "5"))
        elif op == 7:
            out.append(ip.call("ZRANK", k, rng.choice(members)))
        elif op == 8:
            out.append(ip.call("ZPOPMIN", k, "2"))
        elif op == 9:
            out.append(ip.call("ZREMRANGEBYRANK", k, "0", "1"))
        elif op == 10:
            out.append(ip.call("ZUNIONSTORE", "c", "2", "a", "b", "WEIGHTS", "1", "2"))
            out.append(ip.call("ZRANGE", "c", "0", "-1", "WITHSCORES"))
        else:
            out.append(ip.call("ZCOUNT", k, "0", "(2"))
    return out


def test_sortedlist_and_small_list_containers_answer_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    from ambry.server.commands import zsets

    small = _random_session(3)
    monkeypatch.setattr(zsets, "SMALL_MAX", 3)
    big = _random_session(3)
    assert small == big


# -- listpack back-lengths (lpEncodeBacklen) ------------------------------------------------------


def test_listpack_backlen_sizes_follow_lpencodebacklen() -> None:
    """lpEncodeBacklen: 1 byte up to 127, then 2 below 16383, 3 below
    2097151, 4 below 268435455, else 5 -- each limit itself takes the
    larger size (one below a power of 128, not the power)."""
    from ambry.server.commands.zsets import _lp_backlen

    sizes = {127: 1, 128: 2, 16382: 2, 16383: 3, 16384: 3, 2097150: 3, 2097151: 4, 2097152: 4,
             268435454: 4, 268435455: 5, 268435456: 5}
    assert {n: _lp_backlen(n) for n in sizes} == sizes


# (first member length, second member length): the first member's entry is
# 5 + n bytes with a 32-bit length header, so 16378 and 2097146 put it right on
# lpEncodeBacklen's limits (16383, 2097151); the second member pads the
# listpack so that one byte more or less crosses a jemalloc size class
# (20480 -> 24576, 2.5 MiB -> 3 MiB).
_BACKLEN_CASES = [
    (16377, 4080), (16378, 4080), (16379, 4080), (16378, 4079),
    (2097145, 524267), (2097146, 524267), (2097147, 524267), (2097146, 524266),
]


@pytest.mark.parametrize(("n1", "n2"), _BACKLEN_CASES)
def test_memory_usage_of_members_on_backlen_limits_matches_redis(redis: ServerProcess, ambry: ServerProcess,
                                                                 n1: int, n2: int) -> None:
    """MEMORY USAGE of a listpack zset counts each entry's back-length as
    listpack.c sizes it: members whose entries land on the limits give
    Redis's exact numbers."""
    replies = []
    for server in (redis, ambry):
        c = server.conn(timeout=30)
        try:
            assert c.command("CONFIG", "SET", "zset-max-listpack-value", 3000000) == b"+OK\r\n"
            c.command("ZADD", "z", 1, b"a" * n1, 2, b"b" * n2)
            assert c.command("OBJECT", "ENCODING", "z") == b"$8\r\nlistpack\r\n"
            replies.append(c.command("MEMORY", "USAGE", "z"))
        finally:
            c.command("CONFIG", "SET", "zset-max-listpack-value", 64)
            c.close()
    assert replies[1] == replies[0]
