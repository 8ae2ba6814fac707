"""Shared helpers for the RDB codec tests (imported by test_rdb_reader.py and
test_rdb_writer.py): fixture locations, JSON <-> value normalisation, Redis
7.0's loading rules, random datasets, and building a dataset in a real
redis-server by commands.  The few tests at the bottom check the helpers."""

from __future__ import annotations

import base64
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import pytest
from ambry.persistence.rdb import (
    STREAM_ID_MAX,
    Key,
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamNACK,
)

FIXTURES = Path("/work/shared/fixtures/rdb")

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared RDB fixtures are absent")


def fixture_files(pattern: str) -> list[Path]:
    """Fixture files matching ``pattern`` (empty when the fixtures are absent)."""
    if not FIXTURES.is_dir():
        return []
    return sorted(FIXTURES.glob(pattern))


def jb(v: Any) -> bytes:
    """A BYTES of the fixtures' JSON: a string, or {"base64": ...}."""
    if isinstance(v, str):
        return v.encode()
    return base64.b64decode(v["base64"])


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def parse_id(s: str) -> StreamID:
    return StreamID.parse(s)


# -- normalisation: one comparable form for values from files, JSON and servers --------------


def norm_stream(s: Stream, *, times: bool = True) -> dict[str, Any]:
    """A stream as a dict; consumers' PEL ownership resolved per NACK.
    ``times=False`` drops consumer seen/active times (wall-clock dependent)."""
    groups = []
    for g in sorted(s.groups, key=lambda g: g.name):
        owner = {i: c.name for c in g.consumers for i in c.pel}
        groups.append({
            "name": bytes(g.name),
            "last_id": str(g.last_id),
            "entries_read": g.entries_read,
            "pel": sorted((str(n.id), n.delivery_time, n.delivery_count, owner.get(n.id)) for n in g.pel),
            "consumers": sorted(
                (bytes(c.name), c.seen_time if times else None, c.active_time if times else None,
                 sorted(str(i) for i in c.pel))
                for c in g.consumers),
        })
    return {
        "length": s.length,
        "last_id": str(s.last_id),
        "first_id": str(s.first_id),
        "max_deleted_id": str(s.max_deleted_id),
        "entries_added": s.entries_added,
        "entries": [(str(e.id), [(bytes(f), bytes(v)) for f, v in e.fields]) for e in s.entries],
        "groups": groups,
    }


def norm_value(kind: str, value: Any) -> Any:
    """Order-insensitive comparable form of a neutral-model value."""
    if kind == "string":
        return b"%d" % value if isinstance(value, int) else bytes(value)
    if kind == "list":
        return [bytes(x) for x in value]
    if kind == "set":
        return sorted(bytes(x) for x in value)
    if kind == "hash":
        items = value.items() if isinstance(value, dict) else value
        return sorted((bytes(f), bytes(v)) for f, v in items)
    if kind == "zset":
        items = value.items() if isinstance(value, dict) else value
        return sorted(((bytes(m), float(s)) for m, s in items), key=lambda x: (x[1], x[0]))
    if kind == "stream":
        return norm_stream(value)
    if kind == "module":
        return (value.module_id, value.items)
    raise AssertionError(kind)


def json_value(kind: str, v: Any) -> Any:
    """A fixture JSON VALUE in the norm_value form (streams: see json_stream)."""
    if kind == "string":
        return jb(v)
    if kind == "list":
        return [jb(x) for x in v]
    if kind == "set":
        return sorted(jb(x) for x in v)
    if kind == "hash":
        return sorted((jb(f), jb(x)) for f, x in v)
    if kind == "zset":
        return sorted(((jb(m), float(s)) for m, s in v), key=lambda x: (x[1], x[0]))
    raise AssertionError(kind)


def json_stream(v: dict[str, Any]) -> dict[str, Any]:
    """The comparable parts of a fixture stream (XINFO STREAM FULL)."""
    return {
        "length": v["length"],
        "last_id": v["last_generated_id"],
        "first_id": v["recorded_first_entry_id"],
        "max_deleted_id": v["max_deleted_entry_id"],
        "entries_added": v["entries_added"],
        "entries": [(e["id"], [(jb(f), jb(x)) for f, x in e["fields"]]) for e in v["entries"]],
        "groups": sorted((
            {
                "name": jb(g["name"]),
                "last_id": g["last_delivered_id"],
                "entries_read": -1 if g["entries_read"] is None else g["entries_read"],
                "pel": sorted((p["id"], p["delivery_time_ms"], p["delivery_count"], jb(p["consumer"]))
                              for p in g["pel"]),
                "consumers": sorted((jb(c["name"]), c["seen_time_ms"], sorted(c["pel"]))
                                    for c in g["consumers"]),
            } for g in v["groups"]), key=lambda g: g["name"]),
    }


def stream_for_json(s: Stream) -> dict[str, Any]:
    """norm_stream shaped like json_stream (consumers without active time)."""
    d = norm_stream(s)
    for g in d["groups"]:
        g["consumers"] = sorted((name, seen, pel) for name, seen, _active, pel in g["consumers"])
    return d


def redis70_loaded(keys: list[Key], now_ms: int | None = None) -> dict[tuple[int, bytes], Key]:
    """What a Redis 7.0 primary keeps when loading these keys: expired keys
    and empty collections are dropped (empty streams are kept)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    out: dict[tuple[int, bytes], Key] = {}
    for k in keys:
        if k.expire_ms is not None and k.expire_ms < now:
            continue
        if k.type in ("list", "set", "hash", "zset") and not k.value:
            continue
        out[(k.db, k.key)] = k
    return out


# -- random datasets ----------------------------------------------------------------------------


def _rand_bytes(rng: random.Random, big: bool = False) -> bytes:
    r = rng.random()
    if r < 0.25:
        return str(rng.choice([0, 1, -1, 127, 128, -129, 32767, 2**31, -(2**63), 2**63 - 1,
                                rng.randint(-10**12, 10**12)])).encode()
    if r < 0.35:
        return rng.choice([b"", b"007", b"-0", b"+1", b"1.5", b" 1", b"inf"])
    if r < 0.5:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 12)))
    n = rng.randint(1, 3000 if big else 40)
    if rng.random() < 0.5:
        return (rng.choice([b"ab", b"xyz", b"\x00\xff"]) * n)[:n]
    return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def _rand_score(rng: random.Random) -> float:
    return rng.choice([
        0.0, -0.0, 1.0, -2.5, 0.1, 1 / 3, float("inf"), float("-inf"), 1e300, 5e-324,
        float(2**53 + 1), float(2**62), float(2**62) * 2, rng.uniform(-1e6, 1e6), float(rng.randint(-1000, 1000)),
    ])


def random_stream(rng: random.Random, n: int) -> Stream:
    """A stream with ``n`` entries, mixed field sets, groups, PELs and consumers."""
    fieldsets = [[b"a", b"b"], [b"temp"], [b"x", b"y", b"z"], [b"n"]]
    entries = []
    ms, seq = rng.randint(1, 10**6), 0
    for _ in range(n):
        if rng.random() < 0.3:
            ms += rng.randint(1, 1000)
            seq = 0
        else:
            seq += 1
        fs = rng.choice(fieldsets)
        entries.append(StreamEntry(StreamID(ms, seq), [(f, _rand_bytes(rng)) for f in fs]))
    last = entries[-1].id if entries else StreamID(rng.randint(0, 100), 0)
    first = entries[0].id if entries else StreamID(0, 0)
    groups = []
    for gi in range(rng.randint(0, 3)):
        cons_names = [b"alice", b"bob", b"carol\x00"][: rng.randint(0, 3)]
        pending = rng.sample(entries, min(len(entries), rng.randint(0, 5))) if cons_names else []
        # Past times only: XCLAIM TIME clamps future delivery times to "now".
        pel = [StreamNACK(e.id, rng.randint(10**12, 17 * 10**11), rng.randint(1, 9)) for e in pending]
        consumers = [StreamConsumer(c, rng.randint(10**12, 2 * 10**12), 0, []) for c in cons_names]
        for nack in pel:
            rng.choice(consumers).pel.append(nack.id)
        for c in consumers:
            c.active_time = c.seen_time
        glast = rng.choice([e.id for e in entries]) if entries else StreamID(0, 0)
        groups.append(StreamGroup(b"group%d" % gi, glast, rng.choice([-1, len(entries)]), pel, consumers))
    return Stream(entries, len(entries), last, first, StreamID(0, 0), len(entries), groups)


def random_dataset(rng: random.Random, nkeys: int = 60, dbs: tuple[int, ...] = (0, 1, 5),
                   big: bool = True) -> list[Key]:
    """A dataset exercising every type, small and large encodings, binary
    data, integers, TTLs and several databases."""
    keys: list[Key] = []
    seen: set[tuple[int, bytes]] = set()
    kinds = ["string", "list", "set", "intset", "hash", "zset", "stream"]
    for i in range(nkeys):
        db = rng.choice(dbs)
        key = b"k:%d:" % i + _rand_bytes(rng)[:20]
        if (db, key) in seen:
            continue
        seen.add((db, key))
        kind = kinds[i % len(kinds)]
        large = big and rng.random() < 0.3
        n = rng.randint(130, 700) if large else rng.randint(1, 20)
        value: Any
        if kind == "string":
            value = _rand_bytes(rng, big=large)
        elif kind == "list":
            value = [_rand_bytes(rng, big=large and rng.random() < 0.05) for _ in range(n)]
        elif kind in ("set", "intset"):
            if kind == "intset":
                value = sorted({str(rng.randint(-(2**40), 2**40)).encode() for _ in range(n)})
            else:
                value = sorted({_rand_bytes(rng) for _ in range(n)})
            kind = "set"
        elif kind == "hash":
            value = list({_rand_bytes(rng): _rand_bytes(rng, big=large and rng.random() < 0.05)
                          for _ in range(n)}.items())
        elif kind == "zset":
            value = list({_rand_bytes(rng): _rand_score(rng) for _ in range(n)}.items())
            if large:
                # ZADD fills a new zset as a listpack first, which turns -0.0 into 0
                # before it grows into a skiplist: keep the sign out of the picture.
                value = [(m, s or 0.0) for m, s in value]
        else:
            value = random_stream(rng, rng.randint(0, 250 if large else 12))
        expire = rng.choice([None, None, None, 4102444800000 + rng.randint(0, 10**9)])
        keys.append(Key(db, key, kind, value, expire))
    return keys


# -- a real server -----------------------------------------------------------------------------


def build_in_redis(r: Any, keys: list[Key], functions: list[bytes] = ()) -> None:  # type: ignore[assignment]
    """Create ``keys`` in a redis-server with plain commands (redis-py
    client ``r``, db switching by SELECT on one connection)."""
    for code in functions:
        r.execute_command("FUNCTION", "LOAD", code)
    for k in keys:
        r.execute_command("SELECT", k.db)
        key = k.key
        v = k.value
        if k.type == "string":
            r.execute_command("SET", key, v)
        elif k.type == "list":
            for i in range(0, len(v), 500):
                r.execute_command("RPUSH", key, *v[i:i + 500])
        elif k.type == "set":
            r.execute_command("SADD", key, *v)
        elif k.type == "hash":
            r.execute_command("HSET", key, *[x for fv in v for x in fv])
        elif k.type == "zset":
            args: list[Any] = []
            for m, s in v:
                args += [repr(s) if math.isfinite(s) else ("+inf" if s > 0 else "-inf"), m]
            r.execute_command("ZADD", key, *args)
        elif k.type == "stream":
            _build_stream(r, key, v)
        if k.expire_ms is not None:
            r.execute_command("PEXPIREAT", key, k.expire_ms)
    r.execute_command("SELECT", 0)


def _build_stream(r: Any, key: bytes, s: Stream) -> None:
    for e in s.entries:
        r.execute_command("XADD", key, str(e.id), *[x for fv in e.fields for x in fv])
    if not s.entries:
        r.execute_command("XADD", key, "MAXLEN", "0", "0-1", "f", "v")
    r.execute_command("XSETID", key, str(s.last_id), "ENTRIESADDED", s.entries_added,
                      "MAXDELETEDID", str(s.max_deleted_id))
    for g in s.groups:
        r.execute_command("XGROUP", "CREATE", key, g.name, str(g.last_id))
        r.execute_command("XGROUP", "SETID", key, g.name, str(g.last_id), "ENTRIESREAD", g.entries_read)
        owner = {i: c.name for c in g.consumers for i in c.pel}
        for c in g.consumers:
            r.execute_command("XGROUP", "CREATECONSUMER", key, g.name, c.name)
        for nack in g.pel:
            r.execute_command("XCLAIM", key, g.name, owner[nack.id], 0, str(nack.id), "TIME",
                              nack.delivery_time, "RETRYCOUNT", nack.delivery_count, "FORCE", "JUSTID")


def xinfo_stream(r: Any, key: bytes) -> dict[str, Any]:
    """XINFO STREAM FULL of a server in the norm_stream shape (consumer
    times dropped; a consumer's seen time is the server's wall clock)."""
    raw = r.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", 0)
    info = dict(zip(raw[::2], raw[1::2], strict=True))
    groups = []
    for graw in info[b"groups"]:
        g = dict(zip(graw[::2], graw[1::2], strict=True))
        consumers = []
        for craw in g[b"consumers"]:
            c = dict(zip(craw[::2], craw[1::2], strict=True))
            consumers.append((c[b"name"], None, None, sorted(p[0].decode() for p in c[b"pending"])))
        er = g[b"entries-read"]
        groups.append({
            "name": g[b"name"],
            "last_id": g[b"last-delivered-id"].decode(),
            "entries_read": -1 if er is None else er,
            "pel": sorted((p[0].decode(), p[2], p[3], p[1]) for p in g[b"pending"]),
            "consumers": sorted(consumers),
        })
    return {
        "length": info[b"length"],
        "last_id": info[b"last-generated-id"].decode(),
        "first_id": info[b"recorded-first-entry-id"].decode(),
        "max_deleted_id": info[b"max-deleted-entry-id"].decode(),
        "entries_added": info[b"entries-added"],
        "entries": [(e[0].decode(), list(zip(e[1][::2], e[1][1::2], strict=True))) for e in info[b"entries"]],
        "groups": sorted(groups, key=lambda g: g["name"]),
    }


def server_value(r: Any, key: bytes, kind: str) -> Any:
    """A key's value read from a server by commands, in norm_value form."""
    if kind == "string":
        return r.execute_command("GET", key)
    if kind == "list":
        return r.execute_command("LRANGE", key, 0, -1)
    if kind == "set":
        return sorted(r.execute_command("SMEMBERS", key))
    if kind == "hash":
        flat = r.execute_command("HGETALL", key)
        if isinstance(flat, dict):
            return sorted(flat.items())
        return sorted(zip(flat[::2], flat[1::2], strict=True))
    if kind == "zset":
        flat = r.execute_command("ZRANGE", key, 0, -1, "WITHSCORES")
        pairs = [(m, float(s)) for m, s in zip(flat[::2], flat[1::2], strict=True)]
        return sorted(pairs, key=lambda x: (x[1], x[0]))
    if kind == "stream":
        return xinfo_stream(r, key)
    raise AssertionError(kind)


# -- tests of the helpers -----------------------------------------------------------------------


def test_jb_decodes_both_json_byte_forms() -> None:
    assert jb("a\u0000b") == b"a\x00b"
    assert jb({"base64": "/w=="}) == b"\xff"


def test_random_dataset_is_deterministic_and_covers_every_type() -> None:
    a = random_dataset(random.Random(7))
    b = random_dataset(random.Random(7))
    assert [(k.db, k.key, k.type) for k in a] == [(k.db, k.key, k.type) for k in b]
    assert {k.type for k in a} == {"string", "list", "set", "hash", "zset", "stream"}


def test_redis70_loaded_drops_expired_and_empty_keys() -> None:
    keys = [
        Key(0, b"gone", "string", b"v", 1000),
        Key(0, b"empty", "list", []),
        Key(0, b"stream", "stream", Stream(first_id=STREAM_ID_MAX)),
        Key(0, b"kept", "string", b"v", 2**47),
    ]
    assert sorted(redis70_loaded(keys, now_ms=10**12)) == [(0, b"kept"), (0, b"stream")]
