"""DUMP / RESTORE (cluster.c restoreCommand, Redis 7.0.15): payloads that
cross between Ambry and redis-server both ways, the checks in Redis's order
with its texts, effects (ABSTTL rewrite, DEL for an already expired
REPLACE), keyspace events, LRU/LFU options, sanitize-dump-payload, and a
fuzz test: no payload changes anything unless RESTORE says OK."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from ambry.persistence.rdb.containers import lp_build, lp_str_entry
from ambry.persistence.rdb.encoding import crc64, enc_str
from ambry.server.reply import Err
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def call(inproc: Any, *args: Any) -> Any:
    return inproc.call(*args)


def ok(inproc: Any, *args: Any) -> Any:
    r = inproc.call(*args)
    assert not isinstance(r, Err), (args, r)
    return r


def err(inproc: Any, *args: Any) -> bytes:
    r = inproc.call(*args)
    assert isinstance(r, Err), (args, r)
    return r.msg


def payload(t: int, body: bytes, version: int = 10) -> bytes:
    data = bytes((t,)) + body + struct.pack("<H", version)
    return data + struct.pack("<Q", crc64(data))


@pytest.fixture
def srv(inproc: Any) -> Any:
    inproc.srv.cfg.enable_debug_command = "yes"
    return inproc


# -- DUMP ---------------------------------------------------------------------------------


def test_dump_of_a_missing_key_is_null(srv: Any) -> None:
    assert call(srv, "DUMP", "nope") is None


def test_dump_restore_round_trip_keeps_value_and_encoding(srv: Any) -> None:
    ok(srv, "SET", "s", "12345")
    ok(srv, "RPUSH", "l", *range(300))
    ok(srv, "SADD", "si", 1, 2, 3)
    ok(srv, "SADD", "sh", "a", "b")
    ok(srv, "HSET", "h", "f", "v")
    ok(srv, "HSET", "hh", "f", "x" * 100)
    ok(srv, "ZADD", "z", 1, "a", 2, "b")
    ok(srv, "ZADD", "zz", 1, "m" * 100)
    for k in (b"s", b"l", b"si", b"sh", b"h", b"hh", b"z", b"zz"):
        p = ok(srv, "DUMP", k)
        digest = ok(srv, "DEBUG", "DIGEST-VALUE", k)
        enc = ok(srv, "OBJECT", "ENCODING", k)
        assert ok(srv, "RESTORE", k + b"2", 0, p) == b"OK"
        assert ok(srv, "DEBUG", "DIGEST-VALUE", k + b"2") == digest
        assert ok(srv, "OBJECT", "ENCODING", k + b"2") == enc
        assert ok(srv, "DUMP", k + b"2") == p


# -- RESTORE: the checks and their order ------------------------------------------------------


def test_restore_errors_in_redis_order(srv: Any) -> None:
    ok(srv, "SET", "s", "v")
    p = ok(srv, "DUMP", "s")
    assert err(srv, "RESTORE", "x", 0, p, "FOO") == b"ERR syntax error"
    assert err(srv, "RESTORE", "x", 0, p, "IDLETIME") == b"ERR syntax error"
    assert err(srv, "RESTORE", "x", 0, p, "IDLETIME", 1, "FREQ", 2) == b"ERR syntax error"
    assert err(srv, "RESTORE", "x", 0, p, "FREQ", 2, "IDLETIME", 1) == b"ERR syntax error"
    assert err(srv, "RESTORE", "x", 0, p, "IDLETIME", "x") == b"ERR value is not an integer or out of range"
    assert err(srv, "RESTORE", "x", 0, p, "IDLETIME", -1) == b"ERR Invalid IDLETIME value, must be >= 0"
    assert err(srv, "RESTORE", "x", 0, p, "FREQ", 256) == b"ERR Invalid FREQ value, must be >= 0 and <= 255"
    # BUSYKEY comes before the TTL and the payload are looked at.
    assert err(srv, "RESTORE", "s", -1, b"junk") == b"BUSYKEY Target key name already exists."
    assert err(srv, "RESTORE", "x", "abc", p) == b"ERR value is not an integer or out of range"
    assert err(srv, "RESTORE", "x", -1, p) == b"ERR Invalid TTL value, must be >= 0"
    assert err(srv, "RESTORE", "x", 0, b"short") == b"ERR DUMP payload version or checksum are wrong"
    assert err(srv, "RESTORE", "x", 0, p[:-1] + bytes((p[-1] ^ 1,))) == \
        b"ERR DUMP payload version or checksum are wrong"
    assert err(srv, "RESTORE", "x", 0, p[:-8] + b"\0" * 8) == b"ERR DUMP payload version or checksum are wrong"
    v11 = payload(0, enc_str(b"v"), version=11)
    assert err(srv, "RESTORE", "x", 0, v11) == b"ERR DUMP payload version or checksum are wrong"
    # A value running into the footer: Redis 7.0 reads the version/CRC bytes as
    # data (and may accept it); Ambry decodes the value part only.
    assert err(srv, "RESTORE", "x", 0, payload(0, b"\x05hel")) == b"ERR Bad data format"
    assert err(srv, "RESTORE", "x", 0, payload(21, b"\x00")) == b"ERR Bad data format"  # a 7.2 type
    assert err(srv, "RESTORE", "x", 0, payload(2, b"\x00")) == b"ERR Bad data format"  # an empty set
    assert call(srv, "EXISTS", "x") == 0
    assert srv.call("RESTORE-ASKING", "x", 0, p) == b"OK"


def test_a_bad_payload_with_replace_leaves_the_old_key(srv: Any) -> None:
    ok(srv, "SET", "k", "old")
    assert err(srv, "RESTORE", "k", 0, payload(0, b"\x05hel"), "REPLACE") == b"ERR Bad data format"
    assert call(srv, "GET", "k") == b"old"


def test_skip_checksum_validation(srv: Any) -> None:
    ok(srv, "SET", "s", "v")
    p = ok(srv, "DUMP", "s")
    bad = p[:-8] + b"\x01" * 8
    assert err(srv, "RESTORE", "x", 0, bad).startswith(b"ERR DUMP payload")
    ok(srv, "DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", 1)
    assert ok(srv, "RESTORE", "x", 0, bad) == b"OK"
    ok(srv, "DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", 0)


def test_sanitize_dump_payload_catches_duplicate_fields(srv: Any) -> None:
    lp = lp_build([lp_str_entry(b"f"), lp_str_entry(b"1"), lp_str_entry(b"f"), lp_str_entry(b"2")])
    p = payload(16, enc_str(lp, False))
    ok(srv, "CONFIG", "SET", "sanitize-dump-payload", "yes")
    before = srv.srv.stat_dump_payload_sanitizations
    assert err(srv, "RESTORE", "h", 0, p) == b"ERR Bad data format"
    assert srv.srv.stat_dump_payload_sanitizations == before + 1
    ok(srv, "CONFIG", "SET", "sanitize-dump-payload", "no")
    assert ok(srv, "RESTORE", "h", 0, p) == b"OK"


# -- TTLs and effects -------------------------------------------------------------------------


def test_relative_ttl_is_propagated_as_absttl(srv: Any) -> None:
    ok(srv, "SET", "s", "v")
    p = ok(srv, "DUMP", "s")
    sink = srv.record()
    ok(srv, "restore", "a", 0, p)
    assert sink.commands[-1] == [b"restore", b"a", b"0", p]
    ok(srv, "restore", "b", 100000, p, "IDLETIME", 5)
    cmd = sink.commands[-1]
    when = int(cmd[2])
    assert cmd == [b"restore", b"b", cmd[2], p, b"IDLETIME", b"5", b"ABSTTL"]
    assert call(srv, "PEXPIRETIME", "b") == when
    assert 0 < when - srv.srv.now_ms <= 100000
    ok(srv, "RESTORE", "c", 4102444800000, p, "ABSTTL")
    assert sink.commands[-1] == [b"RESTORE", b"c", b"4102444800000", p, b"ABSTTL"]
    assert call(srv, "PEXPIRETIME", "c") == 4102444800000


def test_already_expired_restore(srv: Any) -> None:
    ok(srv, "SET", "s", "v")
    p = ok(srv, "DUMP", "s")
    sink = srv.record()
    n = len(sink.commands)
    d = srv.srv.dirty
    assert ok(srv, "RESTORE", "gone", 1, p, "ABSTTL") == b"OK"
    assert call(srv, "EXISTS", "gone") == 0 and len(sink.commands) == n and srv.srv.dirty == d
    assert ok(srv, "RESTORE", "s", 1, p, "ABSTTL", "REPLACE") == b"OK"
    assert call(srv, "EXISTS", "s") == 0
    assert sink.commands[-1] == [b"DEL", b"s"] and srv.srv.dirty == d + 1


def test_restore_keyspace_events(srv: Any) -> None:
    ok(srv, "CONFIG", "SET", "notify-keyspace-events", "KEA")
    events: list[tuple[bytes, bytes]] = []
    real = srv.srv.publish

    def publish(channel: bytes, message: bytes) -> int:
        if channel.startswith(b"__keyevent"):
            events.append((channel.split(b":", 1)[1], message))
        return real(channel, message)

    srv.srv.publish = publish
    ok(srv, "SET", "s", "v")
    p = ok(srv, "DUMP", "s")
    events.clear()
    ok(srv, "RESTORE", "k", 0, p)
    assert events == [(b"restore", b"k")]
    events.clear()
    ok(srv, "RESTORE", "k", 1, p, "ABSTTL", "REPLACE")
    assert events == [(b"del", b"k")]


def test_idletime_and_freq_are_kept(srv: Any) -> None:
    ok(srv, "SET", "s", "v")
    p = ok(srv, "DUMP", "s")
    ok(srv, "RESTORE", "i", 0, p, "IDLETIME", 1000)
    assert 1000 <= call(srv, "OBJECT", "IDLETIME", "i") <= 1002
    ok(srv, "RESTORE", "f", 0, p, "FREQ", 100)  # ignored without an LFU policy
    ok(srv, "CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    ok(srv, "RESTORE", "g", 0, p, "FREQ", 100)
    assert call(srv, "OBJECT", "FREQ", "g") == 100
    assert call(srv, "OBJECT", "FREQ", "f") == 5  # LFU_INIT_VAL


def test_restore_is_a_change_for_watch_and_dirty(srv: Any) -> None:
    ok(srv, "SET", "s", "v")
    p = ok(srv, "DUMP", "s")
    other = srv.new_client()
    srv.call("WATCH", "k", client=other)
    d = srv.srv.dirty
    assert not other.dirty_cas
    ok(srv, "RESTORE", "k", 0, p)
    assert srv.srv.dirty == d + 1
    assert other.dirty_cas  # the WATCHing transaction will abort


# -- no payload changes anything unless RESTORE says OK -------------------------------------------


def _seed_payloads() -> list[bytes]:
    from ambry.server import rdb
    from ambry.server.commands.hashes import HashValue
    from ambry.server.commands.lists import ListValue
    from ambry.server.commands.sets import SetValue
    from ambry.server.commands.zsets import ZSetValue

    values: list[Any] = [
        b"hello", b"x" * 100, 12345,
        ListValue.from_elements([b"a", b"1", b"b" * 70] * 30),
        SetValue.from_intset([1, 2, 70000]), SetValue.hashtable([b"a", b"b"]),
        HashValue.from_pairs([(b"f", b"v"), (b"n", b"1")], True),
        HashValue.from_pairs([(b"f%d" % i, b"v") for i in range(20)], False),
        ZSetValue.from_pairs([(b"a", 1.0), (b"b", 2.5)], True),
        ZSetValue.from_pairs([(b"m%d" % i, i / 3) for i in range(20)], False),
    ]
    return [rdb.dump_payload(v) for v in values]


_PAYLOADS = _seed_payloads()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_payloads_change_nothing_unless_accepted(srv: Any, data: st.DataObject) -> None:
    src = bytearray(data.draw(st.sampled_from(_PAYLOADS)))
    body = bytearray(src[:-10])
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, max(0, len(body) - 1)))
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and body:
            body[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del body[pos:]
        else:
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=6))
    fix_crc = data.draw(st.booleans())
    p = bytes(body) + bytes(src[-10:-8])
    p += struct.pack("<Q", crc64(p)) if fix_crc else bytes(src[-8:])
    ok(srv, "FLUSHALL")
    ok(srv, "SET", "k", "old")
    digest = ok(srv, "DEBUG", "DIGEST")
    r = call(srv, "RESTORE", "k", 0, p, "REPLACE")
    if isinstance(r, Err):
        assert r.msg in (b"ERR Bad data format", b"ERR DUMP payload version or checksum are wrong")
        assert ok(srv, "DEBUG", "DIGEST") == digest
    else:
        assert r == b"OK"
        # What was accepted is a usable value.
        ok(srv, "DEBUG", "DIGEST-VALUE", "k")
        ok(srv, "DUMP", "k")


# -- across servers ---------------------------------------------------------------------------------


def _payload_of(server: Any, key: str) -> bytes:
    raw = server.command("DUMP", key)
    assert raw.startswith(b"$"), raw
    return raw.split(b"\r\n", 1)[1][:-2]


def test_payloads_cross_both_ways(ambry: Any, redis: Any) -> None:
    setup = [
        ("SET", "s", "hello"), ("SET", "n", "123456"), ("SET", "big", "y" * 300),
        ("RPUSH", "l", *[str(i) for i in range(500)]),
        ("LPUSH", "lp", *[f"item{i}" for i in range(1500)]),
        ("SADD", "si", "1", "2", "-3"), ("SADD", "sh", "a", "b", "c"),
        ("HSET", "h", "f", "v", "n", "1"), ("HSET", "hh", *[x for i in range(150) for x in (f"f{i}", "v")]),
        ("ZADD", "z", "1", "a", "2.5", "b", "-inf", "c"),
        ("ZADD", "zz", *[x for i in range(150) for x in (str(i / 7), f"m{i}")]),
        ("XADD", "x", "1-1", "f", "v"), ("XADD", "x", "2-1", "f", "w", "g", "z"),
    ]
    for cmd in setup:
        ambry.command(*cmd)
        redis.command(*cmd)
    for key in ("s", "n", "big", "l", "lp", "si", "h", "z", "zz", "x"):
        a = _payload_of(ambry, key)
        r = _payload_of(redis, key)
        assert a == r, key  # deterministic encodings: byte-identical payloads
    for key in ("sh", "hh"):  # hashtables: same content, dict order may differ
        assert len(_payload_of(ambry, key)) == len(_payload_of(redis, key))
    for key in ("s", "l", "lp", "si", "sh", "h", "hh", "z", "zz", "x"):
        digest = ambry.command("DEBUG", "DIGEST-VALUE", key)
        assert redis.command("RESTORE", f"from-ambry:{key}", "0", _payload_of(ambry, key)) == b"+OK\r\n"
        assert redis.command("DEBUG", "DIGEST-VALUE", f"from-ambry:{key}") == digest
        assert ambry.command("RESTORE", f"from-redis:{key}", "0", _payload_of(redis, key)) == b"+OK\r\n"
        assert ambry.command("DEBUG", "DIGEST-VALUE", f"from-redis:{key}") == digest
        assert ambry.command("OBJECT", "ENCODING", f"from-redis:{key}") == \
            redis.command("OBJECT", "ENCODING", f"from-ambry:{key}")
