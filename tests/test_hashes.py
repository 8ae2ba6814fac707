"""Hash commands: what the differential corpus (corpus/hashes.txt) cannot show.

* effects (spec/propagation.md): HINCRBYFLOAT -> HSET k f <value>, HSET/HMSET
  verbatim even when nothing changed, no-ops and errors record nothing;
* HRANDFIELD count semantics and reply shapes (RESP3 WITHVALUES pairs);
* HSCAN over a hashtable: cursor guarantees;
* keyspace events, hit/miss counters, MEMORY USAGE of random listpacks,
  the listpack bytes (DUMP) and DEBUG OBJECT's serialized length, all
  against a real redis-server 7.0.15.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from ambry.server.commands.hashes import HashValue, lp_encode_entry, lp_entry_size
from ambry.server.reply import NULL_ARRAY, Err, Map
from conftest import InProcess, ServerProcess
from test_sets import _dump_object, _stats, collect_events, effects


@pytest.fixture
def ip() -> InProcess:
    return InProcess()


def value(ip: InProcess, key: str) -> HashValue:
    v = ip.srv.dbs[0].data[key.encode()]
    assert isinstance(v, HashValue)
    return v


# -- effects ----------------------------------------------------------------------------


def test_hset_family_effects(ip: InProcess) -> None:
    out, replies = effects(
        ip,
        ("HSET", "h", "a", "1", "b", "2"),
        ("HSET", "h", "a", "1"),  # same value: still a change for Redis
        ("hmset", "h", "c", "3"),
        ("HSETNX", "h", "a", "x"),  # exists: nothing
        ("HSETNX", "h", "d", "4"),
        ("HSET", "h", "a"),  # arity error: nothing
        ("HDEL", "h", "zz"),  # nothing
        ("HDEL", "h", "a", "zz"),
        ("HDEL", "nokey", "a"),
    )
    assert replies[:5] == [2, 0, b"OK", 0, 1]
    assert replies[5] == Err("ERR wrong number of arguments for 'hset' command")
    assert out == [
        [b"HSET", b"h", b"a", b"1", b"b", b"2"],
        [b"HSET", b"h", b"a", b"1"],
        [b"hmset", b"h", b"c", b"3"],
        [b"HSETNX", b"h", b"d", b"4"],
        [b"HDEL", b"h", b"a", b"zz"],
    ]


def test_hincrbyfloat_is_recorded_as_hset_of_the_result(ip: InProcess) -> None:
    out, replies = effects(
        ip,
        ("HINCRBYFLOAT", "h", "f", "0.1"),
        ("hincrbyfloat", "h", "f", "0.2"),
        ("HINCRBYFLOAT", "h", "f", "x"),
        ("HINCRBYFLOAT", "h", "f", "inf"),
        ("HINCRBYFLOAT", "h", "g", "1e3"),
    )
    assert replies[:2] == [b"0.1", b"0.3"]
    assert replies[2] == Err("ERR value is not a valid float")
    assert replies[3] == Err("ERR value is NaN or Infinity")
    assert out == [
        [b"HSET", b"h", b"f", b"0.1"],
        [b"HSET", b"h", b"f", b"0.3"],
        [b"HSET", b"h", b"g", b"1000"],
    ]


def test_hincrby_verbatim_and_errors_record_nothing(ip: InProcess) -> None:
    ip.call("HSET", "h", "s", "abc", "big", str(2**63 - 1))
    out, replies = effects(
        ip,
        ("HINCRBY", "h", "n", "5"),
        ("HINCRBY", "h", "s", "1"),
        ("HINCRBY", "h", "big", "1"),
        ("HINCRBY", "h", "n", "x"),
    )
    assert replies[0] == 5
    assert replies[1] == Err("ERR hash value is not an integer")
    assert replies[2] == Err("ERR increment or decrement would overflow")
    assert replies[3] == Err("ERR value is not an integer or out of range")
    assert out == [[b"HINCRBY", b"h", b"n", b"5"]]


def test_hdel_emptying_and_expired_keys(ip: InProcess) -> None:
    ip.call("HSET", "h", "a", "1")
    out, replies = effects(ip, ("HDEL", "h", "a"))
    assert replies == [1] and out == [[b"HDEL", b"h", b"a"]]
    assert ip.call("EXISTS", "h") == 0
    ip.call("HSET", "h", "a", "1")
    ip.srv.dbs[0].expires[b"h"] = 1
    out, replies = effects(ip, ("HDEL", "h", "a"))
    assert replies == [0] and out == [[b"DEL", b"h"]]
    ip.call("HSET", "h", "a", "1")
    ip.srv.dbs[0].expires[b"h"] = 1
    out, replies = effects(ip, ("HINCRBY", "h", "a", "2"))
    assert replies == [2]
    assert out == [[b"MULTI"], [b"DEL", b"h"], [b"HINCRBY", b"h", b"a", b"2"], [b"EXEC"]]


def test_watch_sees_in_place_changes(ip: InProcess) -> None:
    other = ip.new_client()
    ip.call("HSET", "h", "a", "1")
    for change, aborted in [(("HSET", "h", "a", "1"), True), (("HSETNX", "h", "a", "2"), False),
                            (("HDEL", "h", "zz"), False), (("HINCRBY", "h", "n", "1"), True),
                            (("HINCRBYFLOAT", "h", "n", "1"), True), (("HDEL", "h", "n"), True),
                            (("HGET", "h", "a"), False)]:
        ip.call("WATCH", "h")
        ip.call(*change, client=other)
        ip.call("MULTI")
        ip.call("HLEN", "h")
        assert (ip.call("EXEC") is NULL_ARRAY) == aborted, change


# -- HRANDFIELD -------------------------------------------------------------------------


def _fill(ip: InProcess, n: int, ht: bool) -> dict[bytes, bytes]:
    pairs = {b"f%d" % i: b"v%d" % i for i in range(n)}
    args: list[bytes] = []
    for f, v in pairs.items():
        args += [f, v]
    ip.call("HSET", "h", *args)
    if ht:
        ip.call("HSET", "h", "big", "x" * 100)
        ip.call("HDEL", "h", "big")
    assert ip.call("OBJECT", "ENCODING", "h") == (b"hashtable" if ht else b"listpack")
    return pairs


@pytest.mark.parametrize("ht", [False, True], ids=["listpack", "hashtable"])
def test_hrandfield_positive_count_is_distinct(ip: InProcess, ht: bool) -> None:
    pairs = _fill(ip, 30, ht)
    for count in (1, 2, 9, 10, 11, 29):
        r = ip.call("HRANDFIELD", "h", count)
        assert len(r) == len(set(r)) == count and set(r) <= set(pairs)
        rv = ip.call("HRANDFIELD", "h", count, "WITHVALUES")
        assert len(rv) == 2 * count
        assert all(pairs[rv[i]] == rv[i + 1] for i in range(0, len(rv), 2))
    assert ip.call("HRANDFIELD", "h", 30) == list(pairs)
    assert ip.call("HRANDFIELD", "h", 100, "WITHVALUES") == [x for kv in pairs.items() for x in kv]


def test_hrandfield_small_sample_of_a_listpack_keeps_its_order(ip: InProcess) -> None:
    """lpRandomPairsUnique (count * 3 <= size): a random subset in listpack order."""
    pairs = _fill(ip, 30, False)
    order = {f: i for i, f in enumerate(pairs)}
    for _ in range(20):
        r = ip.call("HRANDFIELD", "h", 5)
        assert [order[f] for f in r] == sorted(order[f] for f in r)


@pytest.mark.parametrize("ht", [False, True], ids=["listpack", "hashtable"])
def test_hrandfield_negative_count_repeats(ip: InProcess, ht: bool) -> None:
    pairs = _fill(ip, 2, ht)
    r = ip.call("HRANDFIELD", "h", -100)
    assert len(r) == 100 and set(r) == set(pairs)
    rv = ip.call("HRANDFIELD", "h", -50, "WITHVALUES")
    assert len(rv) == 100
    assert all(pairs[rv[i]] == rv[i + 1] for i in range(0, 100, 2))


def test_hrandfield_withvalues_is_pairs_in_resp3(ip: InProcess) -> None:
    ip.call("HSET", "h", "a", "1", "b", "2")
    ip.call("HELLO", "3")
    r = ip.call("HRANDFIELD", "h", 5, "WITHVALUES")
    assert r == [[b"a", b"1"], [b"b", b"2"]]
    assert ip.encode(r, resp3=True).startswith(b"*2\r\n*2\r\n$1\r\na\r\n")
    r = ip.call("HRANDFIELD", "h", -3, "WITHVALUES")
    assert len(r) == 3 and all(p in ([b"a", b"1"], [b"b", b"2"]) for p in r)
    assert ip.call("HRANDFIELD", "h", 1, "WITHVALUES")[0] in ([b"a", b"1"], [b"b", b"2"])
    assert ip.call("HRANDFIELD", "h", 2) == [b"a", b"b"]  # no values: flat
    assert ip.call("HGETALL", "h") == Map([(b"a", b"1"), (b"b", b"2")])


def test_hrandfield_is_roughly_uniform(ip: InProcess) -> None:
    ip.call("HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4")
    counts = Counter(ip.call("HRANDFIELD", "h", -8000))
    assert all(1600 < n < 2400 for n in counts.values()), counts
    single = Counter(ip.call("HRANDFIELD", "h") for _ in range(2000))
    assert set(single) == {b"a", b"b", b"c", b"d"}
    assert all(300 < n < 700 for n in single.values()), single


def test_hrandfield_huge_negative_count_is_refused_not_built(ip: InProcess) -> None:
    ip.call("HSET", "h", "a", "1")
    assert isinstance(ip.call("HRANDFIELD", "h", -(2**62)), Err)


# -- HSCAN over a hashtable -----------------------------------------------------------------


def test_hscan_hashtable_cursor(ip: InProcess) -> None:
    pairs = _fill(ip, 100, True)
    got: dict[bytes, bytes] = {}
    cursor = b"0"
    calls = 0
    while True:
        cursor, flat = ip.call("HSCAN", "h", cursor, "COUNT", 7)
        calls += 1
        for i in range(0, len(flat), 2):
            assert flat[i] not in got
            got[flat[i]] = flat[i + 1]
        if calls == 3:
            ip.call("HSET", "h", "f50", "changed")
            ip.call("HDEL", "h", "f99")
        if cursor == b"0":
            break
    assert calls == 15
    assert got[b"f50"] == b"changed" and b"f99" not in got
    assert {f: v for f, v in pairs.items() if f not in (b"f50", b"f99")}.items() <= got.items()
    r = ip.call("HSCAN", "h", 0, "COUNT", 1000, "MATCH", "f1?")
    assert r[0] == b"0" and sorted(r[1][::2]) == sorted(b"f1%d" % i for i in range(10))


# -- the value --------------------------------------------------------------------------


def test_listpack_entry_sizes_match_the_encoder() -> None:
    rnd = random.Random(3)
    samples = [b"", b"0", b"-1", b"127", b"128", b"-4096", b"4095", b"-4097", b"32767", b"-32769",
               b"8388607", b"-8388609", b"2147483647", b"-2147483649", b"9223372036854775807",
               b"-9223372036854775808", b"9223372036854775808", b"01", b"-0", b"+1", b"1.0"]
    samples += [b"x" * n for n in (1, 63, 64, 127, 4095, 4096, 16377, 16378, 16379)]
    samples += [str(rnd.randrange(-(2**63), 2**63)).encode() for _ in range(50)]
    for s in samples:
        assert lp_entry_size(s) == len(lp_encode_entry(s)), s


def test_copy_is_deep_and_keeps_the_encoding(ip: InProcess) -> None:
    ip.call("HSET", "a", "f", "v")
    ip.call("COPY", "a", "b")
    ip.call("HSET", "b", "g", "w")
    assert ip.call("HLEN", "a") == 1 and ip.call("HLEN", "b") == 2
    assert value(ip, "b").encoding() == b"listpack"


# -- against a real redis-server -----------------------------------------------------------

HASH_EVENT_SCRIPT: list[tuple[Any, ...]] = [
    ("HSET", "h", "a", "1", "b", "2"),
    ("HSET", "h", "a", "1"),
    ("HMSET", "h", "c", "3"),
    ("HSETNX", "h", "c", "x"),
    ("HSETNX", "h", "d", "4"),
    ("HSETNX", "new", "d", "4"),
    ("HINCRBY", "h", "n", "1"),
    ("HINCRBY", "h", "a", "x"),
    ("HINCRBY", "h", "c", "-5"),
    ("HINCRBYFLOAT", "h", "fl", "1.5"),
    ("HINCRBYFLOAT", "inc", "fl", "1.5"),
    ("HINCRBYFLOAT", "h", "fl", "nan"),
    ("HGET", "nokey", "a"),
    ("HGETALL", "nokey"),
    ("HMGET", "h", "a"),
    ("HRANDFIELD", "nokey", "3"),
    ("HSCAN", "nokey", "0"),
    ("HDEL", "h", "zz"),
    ("HDEL", "h", "a", "b"),
    ("HDEL", "new", "d"),
    ("HSET", "e", "f", "v"),
    ("HDEL", "e", "f", "g"),
    ("HLEN", "e"),
]


def test_keyspace_events_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    want = collect_events(redis, HASH_EVENT_SCRIPT)
    got = collect_events(ambry, HASH_EVENT_SCRIPT)
    assert sum(map(len, want)) > 40
    diffs = [(cmd, w, g) for cmd, w, g in zip(HASH_EVENT_SCRIPT, want, got, strict=True) if w != g]
    assert not diffs, "\n".join(f"{cmd}: redis {w} ambry {g}" for cmd, w, g in diffs)


def test_keyspace_hits_and_misses_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    cmds = [("HSET", "h", "a", "1"), ("HGET", "h", "a"), ("HGET", "zz", "a"), ("HSETNX", "h", "a", "2"),
            ("HINCRBY", "zz2", "a", "1"), ("HMGET", "h", "x"), ("HEXISTS", "zz", "x"), ("HSTRLEN", "h", "a"),
            ("HKEYS", "h"), ("HVALS", "zz"), ("HGETALL", "h"), ("HLEN", "h"), ("HRANDFIELD", "h"),
            ("HRANDFIELD", "zz", "2"), ("HSCAN", "h", "0"), ("HDEL", "h", "q")]
    for cmd in cmds:
        assert _stats(redis) == _stats(ambry), cmd
        redis.command(*cmd)
        ambry.command(*cmd)
    assert _stats(redis) == _stats(ambry)


def _random_value(rnd: random.Random) -> bytes:
    kind = rnd.randrange(4)
    if kind == 0:
        return str(rnd.choice([0, 1, 127, 128, -1, 4095, -4096, 32767, 40000, 8388608, 2**31, 2**40])).encode()
    if kind == 1:
        return str(rnd.randrange(-(2**63), 2**63)).encode()
    if kind == 2:
        return b"s" * rnd.randrange(0, 65)
    return bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64)))


def test_listpack_bytes_memory_and_serialized_length_match_redis(redis: ServerProcess) -> None:
    """Random listpack hashes: the listpack bytes equal DUMP's, MEMORY
    USAGE and DEBUG OBJECT's serializedlength are Redis's."""
    rnd = random.Random(11)
    for trial in range(40):
        h = HashValue()
        key = b"h%d" % trial
        for _ in range(rnd.randrange(1, 60)):
            f, v = _random_value(rnd), _random_value(rnd)
            h[f] = v
            redis.command("HSET", key, f, v)
        if rnd.random() < 0.3:
            for f in rnd.sample(list(h), len(h) // 2):
                del h[f]
                redis.command("HDEL", key, f)
        assert redis.command("OBJECT", "ENCODING", key) == b"$8\r\nlistpack\r\n"
        assert _dump_object(redis.command("DUMP", key)) == h.listpack_blob()
        mem = int(redis.command("MEMORY", "USAGE", key)[1:-2])
        assert mem == h.redis_memory_usage(5) + 8 + 24, trial  # key sds + dictEntry
        info = redis.command("DEBUG", "OBJECT", key).decode()
        assert f"serializedlength:{h.serialized_length()} " in info, trial


def test_hashtable_memory_and_serialized_length_match_redis(redis: ServerProcess) -> None:
    """A converted (presized, not rehashing) hashtable with uniform sizes:
    MEMORY USAGE is exact; serializedlength always."""
    args: list[bytes] = []
    h = HashValue()
    for i in range(10, 99):
        f, v = b"field%d" % i, b"value%d" % i
        args += [f, v]
        h[f] = v
    redis.command("HSET", "h", *args, "long", "x" * 70)
    h[b"long"] = b"x" * 70
    h.convert()
    h.slots = 128  # converted on the long value with 89 fields: dictExpand(89)
    assert redis.command("OBJECT", "ENCODING", "h") == b"$9\r\nhashtable\r\n"
    info = redis.command("DEBUG", "OBJECT", "h").decode()
    assert f"serializedlength:{h.serialized_length()} " in info
    redis.command("HDEL", "h", "long")
    del h[b"long"]
    mem = int(redis.command("MEMORY", "USAGE", "h", "SAMPLES", "0")[1:-2])
    assert mem == h.redis_memory_usage(2**63) + 8 + 24


# -- randomized differential ----------------------------------------------------------------

HASH_KEYS = [b"h1", b"h2", b"str"]


def _hash_word(rnd: random.Random) -> bytes:
    r = rnd.random()
    if r < 0.35:
        return rnd.choice([b"f1", b"f2", b"f3", b"f4", b"f5", b"f6", b"f7", b""])
    if r < 0.7:
        return b"%d" % rnd.choice([0, 1, -1, 127, 128, 4095, -4097, 40000, 2**31, -(2**63), 2**63 - 1])
    if r < 0.85:
        return rnd.choice([b"1.5", b"-0.25", b"1e3", b"abc", b"01", b" 1", b"inf"])
    return b"x" * rnd.choice([7, 8, 9, 20])


def gen_hash_command(rnd: random.Random) -> tuple[tuple[bytes, ...], list[bytes], bool]:
    """(argv, keys to probe afterwards, whether the reply is random)."""
    k = rnd.choice(HASH_KEYS)
    f = _hash_word(rnd)
    op = rnd.randrange(15)
    if op < 4:
        pairs: list[bytes] = []
        for _ in range(rnd.randrange(1, 4)):
            pairs += [_hash_word(rnd), _hash_word(rnd)]
        return (rnd.choice([b"HSET", b"HMSET"]), k, *pairs), [k], False
    if op == 4:
        return (b"HSETNX", k, f, _hash_word(rnd)), [k], False
    if op == 5:
        return (b"HDEL", k, f, _hash_word(rnd)), [k], False
    if op == 6:
        return (b"HINCRBY", k, f, rnd.choice([b"1", b"-5", b"100000", b"9223372036854775807", b"x"])), [k], False
    if op == 7:
        return (b"HINCRBYFLOAT", k, f, rnd.choice([b"0.1", b"-2.5", b"1e10", b"3", b"x", b"inf"])), [k], False
    if op == 8:
        return (b"HMGET", k, f, _hash_word(rnd)), [], False
    if op == 9:
        return (rnd.choice([b"HGETALL", b"HKEYS", b"HVALS", b"HLEN"]), k), [], False
    if op == 10:
        return (rnd.choice([b"HGET", b"HSTRLEN", b"HEXISTS"]), k, f), [], False
    if op == 11:
        count = rnd.choice([b"0", b"1", b"3", b"50", b"-3"])
        extra = (b"WITHVALUES",) if rnd.random() < 0.5 else ()
        return (b"HRANDFIELD", k, count, *extra), [], count not in (b"0", b"50")
    if op == 12:
        return (b"HSCAN", k, b"0", b"COUNT", b"100", b"MATCH", rnd.choice([b"*", b"f*", b"1*"])), [], False
    if op == 13:
        return (b"SET", b"str", b"v"), [b"str"], False
    return (b"HRANDFIELD", k), [], True


def test_random_hash_sequences_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    from test_sets import run_random_sequences

    run_random_sequences(redis, ambry, gen_hash_command, seed=77, sequences=60, steps=40)
