"""Set commands: what the differential corpus (corpus/sets.txt) cannot show.

* effects (spec/propagation.md): SPOP -> SREM, SPOP with a count -> one SREM
  per popped member (7.0) or DEL when everything goes, no-ops record nothing;
* randomness: SRANDMEMBER / SPOP count semantics (distinct members for a
  positive count, repeats for a negative one, the whole set when count >=
  size), both SPOP strategies, rough uniformity;
* the encoding a rebuilt set ends up with (SPOP's "new set" strategy);
* SSCAN over a hashtable: every member present throughout comes back, the
  iteration ends, stale cursors restart;
* keyspace events and keyspace hit/miss counters against a real
  redis-server 7.0.15, with the same command sequence on both;
* the intset blob and DEBUG OBJECT's serialized length against DUMP /
  DEBUG OBJECT of a real redis-server.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

import pytest
from ambry.server.commands.sets import SetValue, rdb_string_len
from ambry.server.reply import NULL_ARRAY, Err, SetReply
from conftest import InProcess, ServerProcess
from differential import parse_reply


@pytest.fixture
def ip() -> InProcess:
    return InProcess()


def effects(ip: InProcess, *cmds: tuple[Any, ...]) -> tuple[list[list[bytes]], list[Any]]:
    """Run ``cmds`` with a fresh RecordingSink: (recorded stream minus the
    first SELECT, replies)."""
    sink = ip.record()
    replies = [ip.call(*cmd) for cmd in cmds]
    out = sink.commands
    if out and out[0] == [b"SELECT", b"0"]:
        out = out[1:]
    return out, replies


def members(ip: InProcess, key: str) -> set[bytes]:
    r = ip.call("SMEMBERS", key)
    assert isinstance(r, SetReply)
    return set(r)


def value(ip: InProcess, key: str) -> SetValue:
    v = ip.srv.dbs[0].data[key.encode()]
    assert isinstance(v, SetValue)
    return v


# -- effects ----------------------------------------------------------------------------


def test_sadd_srem_verbatim_and_noops_record_nothing(ip: InProcess) -> None:
    out, _ = effects(
        ip,
        ("SADD", "s", "a", "b"),
        ("SADD", "s", "a"),
        ("SREM", "s", "zz"),
        ("sRem", "s", "a"),
        ("SREM", "nokey", "a"),
    )
    assert out == [[b"SADD", b"s", b"a", b"b"], [b"sRem", b"s", b"a"]]


def test_spop_is_recorded_as_srem_of_the_popped_member(ip: InProcess) -> None:
    ip.call("SADD", "s", "a", "b", "c")
    out, (reply,) = effects(ip, ("SPOP", "s"))
    assert out == [[b"SREM", b"s", reply]]
    assert reply not in members(ip, "s")


def test_spop_last_member_deletes_the_key(ip: InProcess) -> None:
    ip.call("SADD", "s", "7")
    out, (reply,) = effects(ip, ("SPOP", "s"))
    assert reply == b"7"
    assert out == [[b"SREM", b"s", b"7"]]
    assert ip.call("EXISTS", "s") == 0


@pytest.mark.parametrize("initial", [[str(i) for i in range(20)], [f"m{i}" for i in range(20)]],
                         ids=["intset", "hashtable"])
@pytest.mark.parametrize("count", [1, 3, 17, 19])
def test_spop_count_records_one_srem_per_member(ip: InProcess, initial: list[str], count: int) -> None:
    """Both strategies (few pops: remove one by one; many: rebuild from the
    kept members) pop distinct members and record each as its own SREM,
    wrapped in MULTI/EXEC when there are several."""
    ip.call("SADD", "s", *initial)
    out, (reply,) = effects(ip, ("SPOP", "s", count))
    assert isinstance(reply, SetReply)
    popped = list(reply)
    assert len(popped) == len(set(popped)) == count
    assert set(popped) <= {m.encode() for m in initial}
    srems = [[b"SREM", b"s", m] for m in popped]
    assert out == (srems if count == 1 else [[b"MULTI"], *srems, [b"EXEC"]])
    assert members(ip, "s") == {m.encode() for m in initial} - set(popped)


def test_spop_count_of_everything_is_recorded_as_del(ip: InProcess) -> None:
    ip.call("SADD", "s", "3", "1", "2")
    out, (reply,) = effects(ip, ("SPOP", "s", "3"))
    assert reply == SetReply([b"1", b"2", b"3"])  # a fresh intset: ascending
    assert out == [[b"DEL", b"s"]]
    assert ip.call("EXISTS", "s") == 0
    ip.call("SADD", "h", "x", "y")
    out, (reply,) = effects(ip, ("SPOP", "h", "100"))
    assert sorted(reply) == [b"x", b"y"]
    assert out == [[b"DEL", b"h"]]


def test_spop_zero_missing_and_errors_record_nothing(ip: InProcess) -> None:
    ip.call("SADD", "s", "a")
    out, replies = effects(ip, ("SPOP", "s", "0"), ("SPOP", "nokey"), ("SPOP", "nokey", "2"),
                           ("SPOP", "s", "-1"))
    assert out == []
    assert replies[:3] == [SetReply(), None, SetReply()]
    assert replies[3] == Err("ERR value is out of range, must be positive")


def test_spop_count_inside_multi_is_one_wrapper(ip: InProcess) -> None:
    ip.call("SADD", "s", "a", "b", "c", "d")
    out, replies = effects(ip, ("MULTI",), ("SPOP", "s", "2"), ("SADD", "t", "x"), ("EXEC",))
    popped = list(replies[-1][0])
    assert out == [[b"MULTI"], [b"SREM", b"s", popped[0]], [b"SREM", b"s", popped[1]],
                   [b"SADD", b"t", b"x"], [b"EXEC"]]


def test_spop_on_an_expired_key_records_only_the_del(ip: InProcess) -> None:
    ip.call("SADD", "s", "a")
    ip.srv.dbs[0].expires[b"s"] = 1
    out, replies = effects(ip, ("SPOP", "s"))
    assert replies == [None]
    assert out == [[b"DEL", b"s"]]


def test_smove_and_store_commands_verbatim(ip: InProcess) -> None:
    ip.call("SADD", "a", "1", "2")
    ip.call("SADD", "b", "2", "3")
    out, replies = effects(
        ip,
        ("SMOVE", "a", "b", "1"),
        ("SMOVE", "a", "b", "9"),  # not a member: nothing
        ("SMOVE", "a", "a", "2"),  # same set: nothing
        ("SINTERSTORE", "none", "a", "nokey"),  # empty result, no destination: nothing
        ("SUNIONSTORE", "u", "a", "b"),
        ("SDIFFSTORE", "u", "a", "a"),  # empty result deletes u
        ("SINTERSTORE", "i", "a", "b"),
    )
    assert replies == [1, 0, 1, 0, 3, 0, 1]
    assert out == [
        [b"SMOVE", b"a", b"b", b"1"],
        [b"SUNIONSTORE", b"u", b"a", b"b"],
        [b"SDIFFSTORE", b"u", b"a", b"a"],
        [b"SINTERSTORE", b"i", b"a", b"b"],
    ]


def test_store_over_an_expired_destination_records_its_del_first(ip: InProcess) -> None:
    ip.call("SADD", "a", "1")
    ip.call("SET", "d", "v")
    ip.srv.dbs[0].expires[b"d"] = 1
    out, _ = effects(ip, ("SUNIONSTORE", "d", "a"))
    assert out == [[b"MULTI"], [b"DEL", b"d"], [b"SUNIONSTORE", b"d", b"a"], [b"EXEC"]]


# -- randomness -------------------------------------------------------------------------


SOURCES = {
    "intset": [str(i) for i in range(30)],
    "hashtable": [f"m{i}" for i in range(30)],
}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_srandmember_positive_count_is_distinct(ip: InProcess, kind: str) -> None:
    ip.call("SADD", "s", *SOURCES[kind])
    universe = {m.encode() for m in SOURCES[kind]}
    for count in (1, 2, 9, 10, 11, 29):
        r = ip.call("SRANDMEMBER", "s", count)
        assert type(r) is list  # an array in RESP3 too
        assert len(r) == len(set(r)) == count
        assert set(r) <= universe
    whole = ip.call("SRANDMEMBER", "s", 30)
    assert sorted(whole) == sorted(universe)
    assert ip.call("SRANDMEMBER", "s", 1000) == whole  # iteration order, all of it
    assert ip.call("SCARD", "s") == 30


@pytest.mark.parametrize("kind", list(SOURCES))
def test_srandmember_negative_count_repeats(ip: InProcess, kind: str) -> None:
    ip.call("SADD", "s", *SOURCES[kind][:2])
    r = ip.call("SRANDMEMBER", "s", -200)
    assert type(r) is list and len(r) == 200
    assert set(r) == {m.encode() for m in SOURCES[kind][:2]}  # both seen, so repeats
    assert ip.encode(r, resp3=True).startswith(b"*200\r\n")


def test_srandmember_is_roughly_uniform(ip: InProcess) -> None:
    ip.call("SADD", "s", "a", "b", "c", "d")
    counts = Counter(ip.call("SRANDMEMBER", "s", -8000))
    assert set(counts) == {b"a", b"b", b"c", b"d"}
    assert all(1600 < n < 2400 for n in counts.values()), counts
    single = Counter(ip.call("SRANDMEMBER", "s") for _ in range(2000))
    assert all(300 < n < 700 for n in single.values()), single


def test_srandmember_huge_negative_count_is_refused_not_built(ip: InProcess) -> None:
    ip.call("SADD", "s", "a")
    r = ip.call("SRANDMEMBER", "s", -(2**62))
    assert isinstance(r, Err)


def test_spop_single_pops_every_member_eventually(ip: InProcess) -> None:
    seen = Counter()
    for _ in range(300):
        ip.call("SADD", "s", "a", "b", "c")
        seen[ip.call("SPOP", "s")] += 1
        ip.call("DEL", "s")
    assert set(seen) == {b"a", b"b", b"c"}


@pytest.mark.parametrize("max_intset", [512, 2])
def test_spop_rebuilt_set_takes_the_encoding_of_what_remains(ip: InProcess, max_intset: int) -> None:
    """SPOP's "new set" strategy (remaining * 5 <= count) builds the kept
    members into a fresh set: an intset when they are all integers and fit."""
    ip.call("CONFIG", "SET", "set-max-intset-entries", max_intset)
    for _ in range(30):
        ip.call("DEL", "s")
        ip.call("SADD", "s", "x", *[str(i) for i in range(19)])
        assert value(ip, "s").encoding() == b"hashtable"
        ip.call("SPOP", "s", 17)  # keeps 3: 3 * 5 <= 17
        kept = members(ip, "s")
        assert len(kept) == 3
        expect = b"intset" if b"x" not in kept and len(kept) <= max_intset else b"hashtable"
        assert ip.call("OBJECT", "ENCODING", "s") == expect
        if expect == b"intset":
            assert list(ip.call("SMEMBERS", "s")) == sorted(kept, key=int)
    ip.call("DEL", "s")
    ip.call("SADD", "s", "x", *[str(i) for i in range(19)])
    ip.call("SPOP", "s", 16)  # keeps 4: 4 * 5 > 16, removed one by one
    assert ip.call("OBJECT", "ENCODING", "s") == b"hashtable"


# -- SSCAN over a hashtable ---------------------------------------------------------------


def _sscan_all(ip: InProcess, key: str, count: int, during: Any = None) -> list[bytes]:
    got: list[bytes] = []
    cursor = b"0"
    for step in range(10000):
        cursor, batch = ip.call("SSCAN", key, cursor, "COUNT", count)
        got.extend(batch)
        if during is not None:
            during(step)
        if cursor == b"0":
            return got
    raise AssertionError("SSCAN did not finish")


def test_sscan_hashtable_returns_each_member_once(ip: InProcess) -> None:
    ms = [f"m{i}" for i in range(100)]
    ip.call("SADD", "s", *ms)
    got = _sscan_all(ip, "s", 7)
    assert sorted(got) == sorted(m.encode() for m in ms)
    first = ip.call("SSCAN", "s", 0, "COUNT", 7)
    assert first[0] != b"0" and len(first[1]) == 7
    # re-sending a cursor repeats its batch on an unchanged set
    nxt = ip.call("SSCAN", "s", first[0], "COUNT", 7)
    assert ip.call("SSCAN", "s", first[0], "COUNT", 7) == nxt


def test_sscan_with_concurrent_changes_keeps_scan_guarantees(ip: InProcess) -> None:
    ms = [f"m{i}" for i in range(200)]
    ip.call("SADD", "s", *ms)
    removed = set()

    def churn(step: int) -> None:
        victim = f"m{150 + step}"
        ip.call("SREM", "s", victim)
        removed.add(victim.encode())
        ip.call("SADD", "s", f"new{step}")

    steps = []
    got = _sscan_all(ip, "s", 5, lambda step: (steps.append(step), churn(step)))
    stable = {m.encode() for m in ms} - removed
    assert stable <= set(got)
    assert len(steps) == 40  # the snapshot of 200 members, 5 at a time
    assert not removed & set(got[-5:])  # members already removed are skipped


def test_sscan_stale_or_foreign_cursor_restarts(ip: InProcess) -> None:
    ip.call("SADD", "s", *[f"m{i}" for i in range(50)])
    cursor, _ = ip.call("SSCAN", "s", 0, "COUNT", 5)
    ip.call("DEL", "s")
    ip.call("SADD", "s", *[f"n{i}" for i in range(50)])
    got: list[bytes] = []
    while True:
        cursor, batch = ip.call("SSCAN", "s", cursor, "COUNT", 5)
        got.extend(batch)
        if cursor == b"0":
            break
    assert sorted(got) == sorted(f"n{i}".encode() for i in range(50))
    assert ip.call("SSCAN", "s", str(12345 << 32 | 7), "COUNT", 100)[0] == b"0"


def test_sscan_match_filters_after_the_batch(ip: InProcess) -> None:
    ip.call("SADD", "s", *[f"k{i}" for i in range(30)])
    got = []
    cursor = b"0"
    while True:
        cursor, batch = ip.call("SSCAN", "s", cursor, "MATCH", "k1*", "COUNT", 4)
        got.extend(batch)
        if cursor == b"0":
            break
    assert sorted(got) == sorted(f"k{i}".encode() for i in range(30) if str(i).startswith("1"))


# -- the value --------------------------------------------------------------------------


def test_intset_width_only_grows(ip: InProcess) -> None:
    ip.call("SADD", "s", "1", "70000")
    v = value(ip, "s")
    assert v.width == 4
    ip.call("SREM", "s", "70000")
    assert v.width == 4
    assert v.intset_blob() == (4).to_bytes(4, "little") + (1).to_bytes(4, "little") + (1).to_bytes(4, "little")


def test_copy_is_deep(ip: InProcess) -> None:
    ip.call("SADD", "a", "x", "y")
    ip.call("COPY", "a", "b")
    ip.call("SADD", "b", "z")
    assert members(ip, "a") == {b"x", b"y"}
    assert members(ip, "b") == {b"x", b"y", b"z"}


def test_watch_sees_in_place_changes(ip: InProcess) -> None:
    other = ip.new_client()
    ip.call("SADD", "s", "a")
    for change, aborted in [(("SADD", "s", "b"), True), (("SADD", "s", "a"), False),
                            (("SREM", "s", "zz"), False), (("SPOP", "s"), True),
                            (("SMOVE", "s", "t", "zz"), False), (("SINTERSTORE", "s", "s"), True)]:
        ip.call("WATCH", "s")
        ip.call(*change, client=other)
        ip.call("MULTI")
        ip.call("SCARD", "s")
        assert (ip.call("EXEC") is NULL_ARRAY) == aborted, change


# -- against a real redis-server -----------------------------------------------------------


def collect_events(server: ServerProcess, cmds: list[tuple[Any, ...]]) -> list[list[tuple[bytes, bytes]]]:
    """Keyspace + keyevent notifications (KEA plus new and keymiss) each
    command emits, in order, on ``server``; a PUBLISH on a private channel
    marks the end of each command's events."""
    setup = server.conn()
    sub = server.conn()
    cli = server.conn()
    try:
        assert setup.command("CONFIG", "SET", "notify-keyspace-events", "KEAnm") == b"+OK\r\n"
        sub.command("PSUBSCRIBE", "__key*__:*")
        sub.command("SUBSCRIBE", "sync")
        out = []
        for cmd in cmds:
            cli.command(*cmd)
            cli.command("PUBLISH", "sync", "x")
            got = []
            while True:
                tree, _ = parse_reply(sub.read_reply())
                parts = [p[1] for p in tree[1]]
                if parts[0] == b"message":
                    break
                got.append((parts[2], parts[3]))
            out.append(got)
        return out
    finally:
        setup.command("CONFIG", "SET", "notify-keyspace-events", "")
        for c in (setup, sub, cli):
            c.close()


SET_EVENT_SCRIPT: list[tuple[Any, ...]] = [
    ("SADD", "s", "1", "2", "3"),
    ("SADD", "s", "1"),
    ("SADD", "s", "x"),
    ("SREM", "s", "9"),
    ("SREM", "s", "1", "2"),
    ("SISMEMBER", "nokey", "1"),
    ("SMEMBERS", "nokey"),
    ("SCARD", "s"),
    ("SMOVE", "s", "t", "3"),
    ("SMOVE", "s", "t", "x"),
    ("SMOVE", "t", "t", "3"),
    ("SMOVE", "nokey", "t", "3"),
    ("SADD", "p", "a", "b", "c", "d", "e", "f"),
    ("SPOP", "p"),
    ("SPOP", "p", "0"),
    ("SPOP", "p", "2"),
    ("SPOP", "p", "100"),
    ("SPOP", "nokey"),
    ("SADD", "one", "z"),
    ("SPOP", "one"),
    ("SRANDMEMBER", "nokey"),
    ("SRANDMEMBER", "t", "-3"),
    ("SADD", "a", "1", "2"),
    ("SADD", "b", "2", "3"),
    ("SINTERSTORE", "d", "a", "b"),
    ("SINTERSTORE", "d", "a", "b"),
    ("SINTERSTORE", "d", "a", "nokey"),
    ("SINTERSTORE", "d", "a", "nokey"),
    ("SUNIONSTORE", "d", "a", "b"),
    ("SDIFFSTORE", "d", "a", "b"),
    ("SDIFFSTORE", "d", "a", "a"),
    ("SET", "d", "v"),
    ("SUNIONSTORE", "d", "a"),
    ("SINTERCARD", "2", "a", "nokey"),
    ("SINTER", "a", "nokey", "b"),
    ("SUNION", "nokey", "a"),
    ("SDIFF", "nokey2", "a"),
    ("SSCAN", "nokey", "0"),
    ("SMISMEMBER", "nokey", "a"),
    ("SREM", "a", "1", "2"),
]


def test_keyspace_events_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    want = collect_events(redis, SET_EVENT_SCRIPT)
    got = collect_events(ambry, SET_EVENT_SCRIPT)
    assert sum(map(len, want)) > 60 and (b"__keyevent@0__:keymiss", b"nokey") in want[5]
    diffs = [(cmd, w, g) for cmd, w, g in zip(SET_EVENT_SCRIPT, want, got, strict=True) if w != g]
    assert not diffs, "\n".join(f"{cmd}: redis {w} ambry {g}" for cmd, w, g in diffs)


def _stats(s: ServerProcess) -> tuple[int, int]:
    info = s.command("INFO", "stats").decode()
    hits = int(re.search(r"keyspace_hits:(\d+)", info).group(1))  # type: ignore[union-attr]
    misses = int(re.search(r"keyspace_misses:(\d+)", info).group(1))  # type: ignore[union-attr]
    return hits, misses


def test_keyspace_hits_and_misses_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    """Reads use lookupKeyRead (the STORE variants' sources too), writes
    lookupKeyWrite (no statistics)."""
    for s in (redis, ambry):
        for cmd in (("SADD", "a", "1"), ("SADD", "b", "x"), ("CONFIG", "RESETSTAT")):
            s.command(*cmd)
    cmds = [("SUNIONSTORE", "q", "a", "nokey"), ("SINTERSTORE", "q", "a", "b"),
            ("SDIFFSTORE", "q", "nokey", "a"), ("SMOVE", "a", "q", "1"), ("SINTERCARD", "2", "b", "zz"),
            ("SISMEMBER", "b", "x"), ("SPOP", "zz"), ("SRANDMEMBER", "b"), ("SSCAN", "b", "0"),
            ("SMEMBERS", "nokey"), ("SREM", "b", "y")]
    for cmd in cmds:
        assert _stats(redis) == _stats(ambry), cmd
        redis.command(*cmd)
        ambry.command(*cmd)
    assert _stats(redis) == _stats(ambry)


def _dump_object(raw_reply: bytes) -> bytes:
    """The object part of a DUMP payload (type byte, then the saved string),
    LZF-decompressed when it was compressed."""
    tree, _ = parse_reply(raw_reply)
    payload = tree[1]
    body = payload[1:-10]
    first = body[0]
    if first == 0xC3:  # RDB_ENC_LZF
        import lzf

        pos = 1
        clen, pos = _rdb_len(body, pos)
        ulen, pos = _rdb_len(body, pos)
        return lzf.decompress(body[pos : pos + clen], ulen)
    n, pos = _rdb_len(body, 0)
    return body[pos : pos + n]


def _rdb_len(b: bytes, pos: int) -> tuple[int, int]:
    t = b[pos] >> 6
    if t == 0:
        return b[pos] & 63, pos + 1
    if t == 1:
        return ((b[pos] & 63) << 8) | b[pos + 1], pos + 2
    if b[pos] == 0x80:
        return int.from_bytes(b[pos + 1 : pos + 5], "big"), pos + 5
    return int.from_bytes(b[pos + 1 : pos + 9], "big"), pos + 9


@pytest.mark.parametrize("ints", [[1, 2, 3], [-5, 40000], [7, 2**40, -(2**63)], list(range(0, 600, 3))])
def test_intset_blob_and_sizes_match_redis(redis: ServerProcess, ints: list[int]) -> None:
    redis.command("SADD", "s", *ints)
    v = SetValue()
    for i in ints:
        v.add(b"%d" % i, 512)
    assert v.encoding() == b"intset"
    assert _dump_object(redis.command("DUMP", "s")) == v.intset_blob()
    info = redis.command("DEBUG", "OBJECT", "s").decode()
    assert f"serializedlength:{v.serialized_length()} " in info
    mem = int(redis.command("MEMORY", "USAGE", "s")[1:-2])
    assert mem == v.redis_memory_usage(5) + 8 + 24  # key "s": sds 8, dictEntry 24


def test_hashtable_serialized_length_matches_redis(redis: ServerProcess) -> None:
    rnd = random.Random(7)
    ms = [b"m" * rnd.randrange(1, 40) + b"%d" % i for i in range(40)] + [b"12", b"-7", b"70000", b"x" * 300]
    redis.command("SADD", "s", *ms)
    v = SetValue.hashtable(ms)
    info = redis.command("DEBUG", "OBJECT", "s").decode()
    assert f"serializedlength:{v.serialized_length()} " in info
    assert rdb_string_len(b"12") == 2 and rdb_string_len(b"70000") == 5


# -- randomized differential ----------------------------------------------------------------

SMALL_LIMITS = {"set-max-intset-entries": ("5", "512"), "hash-max-listpack-entries": ("6", "512"),
                "hash-max-listpack-value": ("8", "64")}


def run_random_sequences(redis: ServerProcess, ambry: ServerProcess, gen: Any, seed: int,
                         sequences: int, steps: int) -> None:
    """Random command sequences on a few keys, with small encoding limits so
    conversions happen: scalar replies compare exactly, collections as
    multisets (hashtable order is Redis's own); after every command the
    touched keys' TYPE and OBJECT ENCODING, and MEMORY USAGE of intsets and
    listpacks, compare exactly; DEBUG DIGEST at the end of each sequence.
    The key of a command with a random effect (SPOP) is deleted on both
    sides afterwards so the datasets stay equal."""
    from differential import unordered

    rnd = random.Random(seed)
    conns = [redis.conn(), ambry.conn()]
    try:
        for c in conns:
            for name, (small, _) in SMALL_LIMITS.items():
                assert c.command("CONFIG", "SET", name, small) == b"+OK\r\n"
        for seq in range(sequences):
            for c in conns:
                c.command("FLUSHALL")
            history: list[tuple[bytes, ...]] = []
            for _ in range(steps):
                cmd, keys, random_reply = gen(rnd)
                history.append(cmd)
                raw = [c.command(*cmd) for c in conns]
                trees = [parse_reply(r)[0] for r in raw]
                if random_reply:
                    same = trees[0][0] == trees[1][0]
                    if cmd[0] == b"SPOP":
                        for c in conns:
                            c.command("DEL", cmd[1])
                        history.append((b"DEL", cmd[1]))
                        keys = []
                else:
                    same = unordered(trees[0]) == unordered(trees[1])
                assert same, f"seed {seed} seq {seq}: {history}\nredis {raw[0]!r}\nambry {raw[1]!r}"
                for k in keys:
                    for probe in (("TYPE", k), ("OBJECT", "ENCODING", k)):
                        got = [c.command(*probe) for c in conns]
                        assert got[0] == got[1], f"seed {seed} seq {seq}: {history} {probe}: {got}"
                    if got[0] in (b"$6\r\nintset\r\n", b"$8\r\nlistpack\r\n"):
                        mem = [c.command("MEMORY", "USAGE", k) for c in conns]
                        assert mem[0] == mem[1], f"seed {seed} seq {seq}: {history} MEMORY USAGE {k!r}: {mem}"
            digests = [c.command("DEBUG", "DIGEST") for c in conns]
            assert digests[0] == digests[1], f"seed {seed} seq {seq}: {history}"
    finally:
        for c in conns:
            for name, (_, default) in SMALL_LIMITS.items():
                c.command("CONFIG", "SET", name, default)
            c.close()


SET_KEYS = [b"s1", b"s2", b"s3", b"str"]


def _set_member(rnd: random.Random) -> bytes:
    r = rnd.random()
    if r < 0.5:
        return b"%d" % rnd.choice([0, 1, 2, 3, 4, 5, 6, 7, -1, 40000, 2**40, -(2**63)])
    if r < 0.9:
        return rnd.choice([b"a", b"b", b"c", b"d", b"e"])
    return rnd.choice([b"", b"01", b"-0", b" 1", b"x" * 70])


def gen_set_command(rnd: random.Random) -> tuple[tuple[bytes, ...], list[bytes], bool]:
    """(argv, keys to probe afterwards, whether the reply is random)."""
    k = rnd.choice(SET_KEYS)
    k2 = rnd.choice(SET_KEYS)
    ks = rnd.sample(SET_KEYS, rnd.randrange(1, 4))
    ms = [_set_member(rnd) for _ in range(rnd.randrange(1, 5))]
    op = rnd.randrange(16)
    if op < 5:
        return (b"SADD", k, *ms), [k], False
    if op == 5:
        return (b"SREM", k, *ms), [k], False
    if op == 6:
        return (b"SMOVE", k, k2, ms[0]), [k, k2], False
    if op == 7:
        return (rnd.choice([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"]), k, *ks), [k], False
    if op == 8:
        return (rnd.choice([b"SINTER", b"SUNION", b"SDIFF"]), *ks), [], False
    if op == 9:
        return (b"SINTERCARD", b"%d" % len(ks), *ks, b"LIMIT", b"%d" % rnd.randrange(0, 4)), [], False
    if op == 10:
        return (b"SMISMEMBER", k, *ms), [], False
    if op == 11:
        return (b"SCARD", k), [], False
    if op == 12:
        count = rnd.choice([0, 1, 2, 3, 20, -3])
        return (b"SPOP", k, b"%d" % count) if rnd.random() < 0.7 else (b"SPOP", k), [k], True
    if op == 13:
        return (b"SRANDMEMBER", k, b"%d" % rnd.choice([0, 1, 2, 20, -3])), [], True
    if op == 14:
        return (b"SSCAN", k, b"0", b"COUNT", b"100"), [], False
    return (b"SET", b"str", b"v"), [b"str"], False


def test_random_set_sequences_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    run_random_sequences(redis, ambry, gen_set_command, seed=2024, sequences=60, steps=40)
