"""Tests for ambry.server.digest (DEBUG DIGEST / DIGEST-VALUE, Redis 7.0).

The worked examples come from /work/shared/spec/debug-digest.md section 7; the
``interop`` test compares with a real redis-server on a mixed dataset."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ambry.server.digest import (
    TYPE_HASH,
    TYPE_LIST,
    TYPE_SET,
    TYPE_STREAM,
    TYPE_STRING,
    TYPE_ZSET,
    ZERO_DIGEST,
    ZERO_DIGEST_HEX,
    DigestConfig,
    digest_dataset,
    digest_value,
    digest_value_hex,
    mix_digest,
    score_text,
    value_digest,
    xor_digest,
)


class Val:
    """A duck-typed non-string value for the digest protocol."""

    def __init__(self, *kind: Any) -> None:
        self.kind = kind

    def digest_kind(self) -> tuple[Any, ...]:
        return self.kind


def sha1(b: bytes) -> bytes:
    return hashlib.sha1(b).digest()


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------


def test_primitives() -> None:
    acc = bytearray(20)
    xor_digest(acc, b"abc")
    assert bytes(acc) == sha1(b"abc")
    xor_digest(acc, b"abc")
    assert bytes(acc) == ZERO_DIGEST
    mix_digest(acc, b"abc")
    assert bytes(acc) == sha1(sha1(b"abc"))
    before = bytes(acc)
    mix_digest(acc, b"x")
    assert bytes(acc) == sha1(xor(before, sha1(b"x")))


def test_step_by_step_example() -> None:
    # Spec section 7, "SET foo bar" in db 0, recomputed from the primitives.
    z = bytearray(20)
    f = bytearray(z)
    mix_digest(f, (0).to_bytes(4, "big"))
    k = bytearray(20)
    mix_digest(k, b"foo")
    mix_digest(k, (0).to_bytes(4, "big"))
    mix_digest(k, b"bar")
    xor_digest(f, bytes(k))
    assert bytes(f).hex() == "d2ab4820c1be0580ea28efbfe8bfa1dc05bb802a"
    assert digest_dataset([(0, [(b"foo", b"bar", False)])]) == bytes(f).hex()


# ---------------------------------------------------------------------------
# Worked examples (spec section 7)
# ---------------------------------------------------------------------------


def _example_keys() -> list[tuple[bytes, Any, bool]]:
    return [
        (b"foo", b"bar", False),
        (b"mylist", Val("list", [b"a", b"b", 1]), False),
        (b"myset", Val("set", [b"y", b"x"]), False),
        (b"myz", Val("zset", [(b"n", 2.0), (b"m", 1.5)], True), False),
        (b"myh", Val("hash", [(b"f", b"v")]), False),
    ]


def test_empty() -> None:
    assert digest_dataset([]) == ZERO_DIGEST_HEX
    assert digest_dataset([(0, []), (3, iter(()))]) == ZERO_DIGEST_HEX


def test_set_foo_bar() -> None:
    assert digest_dataset([(0, [(b"foo", b"bar", False)])]) == "d2ab4820c1be0580ea28efbfe8bfa1dc05bb802a"
    assert digest_value(b"bar").hex() == "68467c70ae30376e7ce005bcc8827f5ba7fd67dc"
    assert digest_value_hex(bytearray(b"bar")) == "68467c70ae30376e7ce005bcc8827f5ba7fd67dc"
    assert digest_value(memoryview(b"bar")).hex() == "68467c70ae30376e7ce005bcc8827f5ba7fd67dc"
    assert value_digest(TYPE_STRING, b"bar").hex() == "68467c70ae30376e7ce005bcc8827f5ba7fd67dc"


def test_set_foo_bar_with_expire() -> None:
    assert digest_dataset([(0, [(b"foo", b"bar", True)])]) == "8b0c6d22108f15467022bc27c005787072eb4c4b"


def test_mixed_example() -> None:
    keys = _example_keys()
    assert digest_dataset([(0, keys)]) == "c48fdb0903a83063851afd3e1d86cecc852efbdf"
    # key order inside a db does not matter
    assert digest_dataset([(0, list(reversed(keys)))]) == "c48fdb0903a83063851afd3e1d86cecc852efbdf"
    values = {name: v for name, v, _ in keys}
    assert digest_value(values[b"mylist"]).hex() == "981fd62c1655c074205cff40b800bd5a5bfdcd41"
    assert digest_value(values[b"myset"]).hex() == "36846f8a92fb6b6b824c73bf468c5bbcf5075ede"
    assert digest_value(values[b"myz"]).hex() == "908aeffe4e922542b456cb5c8f5b1961a763d7dd"
    assert digest_value(values[b"myh"]).hex() == "90c76e9e9f4c62d642a34fc97c7dad503b51f906"
    # the same through value_digest(type_code, elements)
    assert value_digest(TYPE_LIST, [b"a", b"b", b"1"]).hex() == "981fd62c1655c074205cff40b800bd5a5bfdcd41"
    assert value_digest(TYPE_SET, [b"x", b"y"]).hex() == "36846f8a92fb6b6b824c73bf468c5bbcf5075ede"
    assert (
        value_digest(TYPE_ZSET, [(b"m", 1.5), (b"n", 2)]).hex() == "908aeffe4e922542b456cb5c8f5b1961a763d7dd"
    )
    assert value_digest(TYPE_HASH, [(b"f", b"v")]).hex() == "90c76e9e9f4c62d642a34fc97c7dad503b51f906"


def test_second_db() -> None:
    dbs = [(0, _example_keys()), (1, [(b"foo", b"bar", False)])]
    assert digest_dataset(dbs) == "52aeab4326ed43827540dcf92098f19b2c68ffaa"
    assert digest_dataset(list(reversed(dbs))) == "52aeab4326ed43827540dcf92098f19b2c68ffaa"
    # an empty db in between contributes nothing
    assert digest_dataset([(0, _example_keys()), (1, [(b"foo", b"bar", False)]), (2, [])]) == (
        "52aeab4326ed43827540dcf92098f19b2c68ffaa"
    )
    # moving data to another db changes the digest
    assert digest_dataset([(0, _example_keys()), (2, [(b"foo", b"bar", False)])]) != (
        "52aeab4326ed43827540dcf92098f19b2c68ffaa"
    )


def test_zset_point_one() -> None:
    z = Val("zset", [(b"a", 0.1)], True)
    assert digest_dataset([(0, [(b"z", z, False)])]) == "0c28187f8992cf2cb1e5b823521b468cb3b37674"
    assert digest_value(z).hex() == "b07654932c32238dbd9b8626f0dc40f18d973527"


# ---------------------------------------------------------------------------
# Details
# ---------------------------------------------------------------------------


def test_score_text() -> None:
    assert score_text(0.1) == b"0.10000000000000001"
    assert score_text(1e15) == b"1000000000000000"
    assert score_text(1e21) == b"1e+21"
    assert score_text(float("inf")) == b"inf"
    assert score_text(float("-inf")) == b"-inf"
    assert score_text(-0.0) == b"-0"
    assert score_text(12.0) == b"12"


def test_negative_zero_listpack_normalisation() -> None:
    lp_neg = digest_value(Val("zset", [(b"a", -0.0)], True))
    lp_pos = digest_value(Val("zset", [(b"a", 0.0)], True))
    sk_neg = digest_value(Val("zset", [(b"a", -0.0)], False))
    sk_pos = digest_value(Val("zset", [(b"a", 0.0)], False))
    assert lp_neg == lp_pos == sk_pos
    assert sk_neg != sk_pos
    # Without an explicit encoding the zset-max-listpack-* limits decide.
    assert digest_value(Val("zset", [(b"a", -0.0)], None)) == lp_neg
    assert digest_value(Val("zset", [(b"a", -0.0)])) == lp_neg
    assert digest_value(Val("zset", [(b"a" * 65, -0.0)], None)) == digest_value(
        Val("zset", [(b"a" * 65, -0.0)], False)
    )
    big = [(b"m%d" % i, -0.0 if i == 0 else float(i)) for i in range(129)]
    assert digest_value(Val("zset", big, None)) == digest_value(Val("zset", big, False))
    cfg = DigestConfig(zset_max_listpack_entries=200)
    assert digest_value(Val("zset", big, None), typeinfo=cfg) == digest_value(Val("zset", big, True))


def test_unordered_collections() -> None:
    assert digest_value(Val("set", [b"a", b"b", b"c"])) == digest_value(Val("set", [b"c", b"a", b"b"]))
    h1 = Val("hash", [(b"f1", b"v1"), (b"f2", b"v2")])
    h2 = Val("hash", [(b"f2", b"v2"), (b"f1", b"v1")])
    assert digest_value(h1) == digest_value(h2)
    assert digest_value(Val("hash", [(b"f1", b"v2"), (b"f2", b"v1")])) != digest_value(h1)
    assert digest_value(Val("list", [b"a", b"b"])) != digest_value(Val("list", [b"b", b"a"]))


def test_integers_are_decimal_text() -> None:
    assert digest_value(12345) == digest_value(b"12345")
    assert digest_value(Val("set", [1, 2])) == digest_value(Val("set", [b"2", b"1"]))
    assert digest_value(Val("hash", [(1, 2)])) == digest_value(Val("hash", [(b"1", b"2")]))
    assert digest_value(Val("list", [-7])) == digest_value(Val("list", [b"-7"]))


def test_empty_values_and_type_codes() -> None:
    # An empty stream contributes only its type code; types are told apart.
    seen = set()
    for code, v in [
        (TYPE_STRING, b""),
        (TYPE_LIST, Val("list", [])),
        (TYPE_SET, Val("set", [])),
        (TYPE_ZSET, Val("zset", [], True)),
        (TYPE_HASH, Val("hash", [])),
        (TYPE_STREAM, Val("stream", [])),
    ]:
        acc = bytearray(20)
        mix_digest(acc, code.to_bytes(4, "big"))
        if code == TYPE_STRING:
            mix_digest(acc, b"")
        assert digest_value(v) == bytes(acc)
        seen.add(bytes(acc))
    assert len(seen) == 6


def test_stream() -> None:
    entries = [(1, 0, [(b"a", b"1"), (b"b", b"2")]), (2, 5, [(b"a", b"1"), (b"a", b"3")])]
    acc = bytearray(20)
    mix_digest(acc, TYPE_STREAM.to_bytes(4, "big"))
    for ms, seq, fields in entries:
        mix_digest(acc, b"%d.%d" % (ms, seq))
        for f, v in fields:
            mix_digest(acc, f)
            mix_digest(acc, v)
    assert digest_value(Val("stream", entries)) == bytes(acc)
    xor_digest(acc, b"!!expire!!")
    assert digest_value(Val("stream", entries), has_expire=True) == bytes(acc)
    assert value_digest(TYPE_STREAM, entries, has_expire=True) == bytes(acc)


def test_module() -> None:
    acc = bytearray(20)
    mix_digest(acc, (5).to_bytes(4, "big"))
    assert digest_value(Val("module", None)) == bytes(acc)
    x = bytes(range(20))
    xor_digest(acc, x)
    assert digest_value(Val("module", x)) == bytes(acc)


# ---------------------------------------------------------------------------
# Differential test against redis-server
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private redis-server with DEBUG enabled (stopped at the end of the module)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed")
    redis = pytest.importorskip("redis")
    workdir = tmp_path_factory.mktemp("redis-digest")
    for _attempt in range(3):
        port = _free_port()
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
                "--dir",
                str(workdir),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=port, protocol=2)
        up = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                up = bool(client.ping())
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        if up:
            break
        proc.kill()
        proc.wait()
    else:
        pytest.skip("could not start redis-server")
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _load_dataset(r0: Any, r1: Any, r5: Any) -> None:
    r0.flushall()
    # strings
    r0.set("s:emb", "hello")
    r0.set("s:int", "12345")
    r0.set("s:neg", "-7")
    r0.set("s:empty", "")
    r0.set("s:bin", b"\x00\xff\r\n")
    r0.set("s:raw", "x" * 100)
    r0.set("s:007", "007")
    r0.incrby("s:incr", 41)
    r0.incrbyfloat("s:float", "10.5")
    r0.set("s:ex", "v", ex=1000)
    # lists
    r0.rpush("l:small", "a", "1", "-2", "b")
    r0.rpush("l:big", *[str(i) if i % 3 else f"e{i}" for i in range(2000)])
    r0.rpush("l:ttl", "x", "y")
    r0.pexpire("l:ttl", 100000)
    # sets
    r0.sadd("set:int", 1, 2, 3, 5000000000, -4)
    r0.sadd("set:small", "a", "b", "c")
    r0.sadd("set:big", *[f"m{i}" for i in range(300)])
    # zsets
    r0.zadd(
        "z:lp",
        {
            "a": 1,
            "b": 0.1,
            "c": -2.5,
            "d": 1e21,
            "e": float("inf"),
            "f": float("-inf"),
            "g": 3.0000000000000004,
            "h": 12,
            "i": -0.0,
        },
    )
    r0.zadd("z:sl", {**{f"m{i}": i / 7 for i in range(200)}, "neg0": -0.0, "inf": float("inf")})
    r0.zadd("z:longmember", {"x" * 100: -0.0, "y": 2.5})
    # hashes
    r0.hset("h:lp", mapping={"f1": "v1", "n": "42", "empty": ""})
    r0.hset("h:big", mapping={f"f{i}": f"v{i}" for i in range(600)})
    r0.expire("h:big", 5000)
    # streams
    r0.xadd("st", {"a": "1", "b": "2"}, id="1-1")
    r0.xadd("st", {"a": "3", "b": "4"}, id="1-2")
    r0.xadd("st", {"c": "5"}, id="2-0")
    r0.execute_command("XADD", "st", "3-7", "a", "1", "a", "2")  # duplicate field names
    r0.xdel("st", "1-2")
    r0.xgroup_create("st", "g", id="0")
    r0.xreadgroup("g", "c1", {"st": ">"}, count=1)
    r0.execute_command("XADD", "st:empty", "MAXLEN", "0", "*", "f", "v")
    # other dbs
    r1.set("foo", "bar")
    r1.rpush("l", "x")
    r5.set("k5", "v5", px=900000)


def _read_value(r: Any, key: bytes) -> tuple[Any, bool]:
    t = r.type(key)
    has_expire = r.pttl(key) != -1
    if t == b"string":
        return r.get(key), has_expire
    if t == b"list":
        return Val("list", r.lrange(key, 0, -1)), has_expire
    if t == b"set":
        return Val("set", r.smembers(key)), has_expire
    if t == b"zset":
        listpack = r.object("encoding", key) == b"listpack"
        return Val("zset", r.zrange(key, 0, -1, withscores=True), listpack), has_expire
    if t == b"hash":
        return Val("hash", r.hgetall(key).items()), has_expire
    if t == b"stream":
        entries = []
        for eid, flat in r.execute_command("XRANGE", key, "-", "+"):
            ms, seq = (int(x) for x in eid.split(b"-"))
            entries.append((ms, seq, list(zip(flat[::2], flat[1::2], strict=True))))
        return Val("stream", entries), has_expire
    raise AssertionError(t)


@pytest.mark.interop
def test_digest_vs_redis(redis_port: int) -> None:
    redis = pytest.importorskip("redis")
    clients = {db: redis.Redis(host="127.0.0.1", port=redis_port, db=db, protocol=2) for db in range(16)}
    try:
        for c in clients.values():
            c.set_response_callback("XRANGE", lambda r, **kw: r)  # keep duplicate stream fields
        r0 = clients[0]
        assert r0.execute_command("DEBUG", "DIGEST") == ZERO_DIGEST_HEX.encode()
        _load_dataset(r0, clients[1], clients[5])

        dbs: list[tuple[int, list[tuple[bytes, Any, bool]]]] = []
        checked = 0
        for db, c in clients.items():
            keys = sorted(c.scan_iter(count=1000))
            if not keys:
                continue
            items = []
            real = c.execute_command("DEBUG", "DIGEST-VALUE", *keys)
            for key, real_hex in zip(keys, real, strict=True):
                value, has_expire = _read_value(c, key)
                assert digest_value(value, has_expire).hex() == real_hex.decode(), (db, key)
                items.append((key, value, has_expire))
                checked += 1
            dbs.append((db, items))
        assert checked == 26
        assert {db for db, _ in dbs} == {0, 1, 5}

        real_digest = r0.execute_command("DEBUG", "DIGEST").decode()
        assert digest_dataset(dbs) == real_digest
        assert digest_dataset(reversed(dbs)) == real_digest

        # The listpack rule derived from the default limits agrees here (the
        # zsets were only ever grown).
        def unknown_encoding(v: Any) -> Any:
            if isinstance(v, Val) and v.kind[0] == "zset":
                return Val("zset", v.kind[1], None)
            return v

        derived = [(db, [(k, unknown_encoding(v), e) for k, v, e in items]) for db, items in dbs]
        assert digest_dataset(derived) == real_digest

        assert r0.execute_command("DEBUG", "DIGEST-VALUE", "nosuchkey") == [ZERO_DIGEST_HEX.encode()]
        assert r0.execute_command("DEBUG", "DIGEST-VALUE") == []
    finally:
        clients[0].flushall()
        for c in clients.values():
            c.close()
