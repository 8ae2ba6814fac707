"""Value forms shared by the rdb-inspect subcommands: binary-safe JSON,
order-insensitive digests (``diff``) and the RESP commands that rebuild a
key (``to-resp``).

Binary-safe JSON is the convention of ``shared/fixtures/rdb/*/README.md``:
a byte string is a JSON string when it is valid UTF-8, otherwise
``{"base64": "..."}``.  A key is the fixtures' key object (``db``, ``key``,
``type``, ``encoding``, ``rdb_type``, ``expire_ms``, ``length``, ``value``)
with values in the fixtures' canonical order unless the file order is asked
for: sets and hashes sorted by raw bytes, zsets in ZRANGE order with the
score as the shortest round-trip text (``"0.1"``, ``"42.0"``, ``"inf"``).

``to-resp`` mirrors Redis 7.0's AOF rewrite (aof.c ``rewrite*Object``):
variadic pushes in batches, streams rebuilt by XADD, XSETID, XGROUP CREATE
... ENTRIESREAD, XCLAIM ... TIME RETRYCOUNT JUSTID FORCE and XGROUP
CREATECONSUMER, the expiry as PEXPIREAT.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Iterator
from typing import Any, Final

from ambry.persistence.rdb import FunctionLibrary, Key, ModuleValue, Stream, StreamGroup

__all__ = [
    "jb",
    "key_json",
    "value_json",
    "stream_json",
    "function_json",
    "value_digest",
    "resp_command",
    "key_commands",
    "score_text",
]

_B64 = base64.b64encode


def jb(b: bytes) -> Any:
    """A byte string as binary-safe JSON: str when valid UTF-8, else
    ``{"base64": ...}``."""
    try:
        return b.decode()
    except UnicodeDecodeError:
        return {"base64": _B64(b).decode("ascii")}


def _jb_list(items: list[bytes]) -> list[Any]:
    """jb over a list, fast when every element is valid UTF-8."""
    try:
        return [x.decode() for x in items]
    except UnicodeDecodeError:
        return [jb(x) for x in items]


def score_text(score: float) -> str:
    """The shortest text that reads back as the same double (repr), with
    Redis's spelling of the infinities."""
    return repr(score)


def _zset_key(p: tuple[bytes, float]) -> tuple[float, bytes]:
    return (p[1], p[0])


def _id(i: Any) -> str:
    return f"{i[0]}-{i[1]}"


def stream_json(s: Stream, rdb_type: int) -> dict[str, Any]:
    """A stream the way the fixtures describe it (XINFO STREAM FULL's
    vocabulary); consumers carry ``active_time_ms`` only when the file
    stores it (RDB type 21)."""
    groups = []
    with_active = rdb_type >= 21
    for g in s.groups:
        owner = {}
        for c in g.consumers:
            for i in c.pel:
                owner[i] = c.name
        consumers = []
        for c in g.consumers:
            cj: dict[str, Any] = {"name": jb(c.name), "seen_time_ms": c.seen_time}
            if with_active:
                cj["active_time_ms"] = c.active_time
            cj["pel"] = [_id(i) for i in c.pel]
            consumers.append(cj)
        groups.append({
            "name": jb(g.name),
            "last_delivered_id": _id(g.last_id),
            "entries_read": None if g.entries_read < 0 else g.entries_read,
            "pel": [{"id": _id(n.id), "consumer": jb(owner[n.id]) if n.id in owner else None,
                     "delivery_time_ms": n.delivery_time, "delivery_count": n.delivery_count}
                    for n in g.pel],
            "consumers": consumers,
        })
    return {
        "length": s.length,
        "last_generated_id": _id(s.last_id),
        "max_deleted_entry_id": _id(s.max_deleted_id),
        "entries_added": s.entries_added,
        "recorded_first_entry_id": _id(s.first_id),
        "listpack_nodes": s.nodes,
        "entries": [{"id": _id(e.id), "fields": [[jb(f), jb(v)] for f, v in e.fields]} for e in s.entries],
        "groups": groups,
    }


_MODULE_OPS: Final = {1: "sint", 2: "uint", 3: "float", 4: "double", 5: "string"}


def module_json(m: ModuleValue) -> dict[str, Any]:
    """A module value as its type name, id and raw MODULE_2 items (floats as
    repr text so NaN and infinities stay valid JSON)."""
    items: list[list[Any]] = []
    for op, v in m.items:
        name = _MODULE_OPS.get(op, str(op))
        if op == 5:
            items.append([name, jb(v)])  # type: ignore[arg-type]
        elif op in (3, 4):
            items.append([name, repr(v)])
        else:
            items.append([name, v])
    return {"module": m.name, "module_id": m.module_id, "encver": m.encver, "items": items}


def value_json(ev: Key, file_order: bool = False) -> Any:
    """The binary-safe JSON form of a key's value (see the module docstring)."""
    t = ev.type
    v: Any = ev.value
    if t == "string":
        return jb(v)
    if t == "list":
        return _jb_list(v)
    if t == "set":
        return _jb_list(v if file_order else sorted(v))
    if t == "hash":
        pairs = v if file_order else sorted(v)
        try:
            return [[f.decode(), x.decode()] for f, x in pairs]
        except UnicodeDecodeError:
            return [[jb(f), jb(x)] for f, x in pairs]
    if t == "zset":
        pairs = v if file_order else sorted(v, key=_zset_key)
        try:
            return [[m.decode(), repr(s)] for m, s in pairs]
        except UnicodeDecodeError:
            return [[jb(m), repr(s)] for m, s in pairs]
    if t == "stream":
        return stream_json(v, ev.rdb_type)
    if isinstance(v, ModuleValue):
        return module_json(v)
    return None


_AGGREGATES: Final = frozenset(("list", "set", "zset", "hash"))


def key_json(ev: Key, encoding: str, file_order: bool = False) -> dict[str, Any]:
    """One key as the fixtures' key object; ``encoding`` is OBJECT ENCODING
    after a load (the memory model's answer).  ``lfu_freq`` and
    ``lru_idle_s`` appear when the file has them, ``field_expires`` for
    hashes with field TTLs (RDB 12)."""
    d: dict[str, Any] = {
        "db": ev.db, "key": jb(ev.key), "type": ev.type, "encoding": encoding,
        "rdb_type": ev.rdb_type, "expire_ms": ev.expire_ms,
    }
    if ev.lfu_freq is not None:
        d["lfu_freq"] = ev.lfu_freq
    if ev.lru_idle is not None:
        d["lru_idle_s"] = ev.lru_idle
    if ev.type in _AGGREGATES:
        d["length"] = len(ev.value)  # type: ignore[arg-type]
    d["value"] = value_json(ev, file_order)
    if ev.field_expires:
        d["field_expires"] = [[jb(f), ms] for f, ms in sorted(ev.field_expires.items())]
    return d


def function_json(lib: FunctionLibrary) -> dict[str, Any]:
    """A function library: its name and engine (from the shebang, engine
    spelled as FUNCTION LIST does) and its code."""
    return {"library_name": lib.name, "engine": (lib.engine or "").upper() or None, "code": jb(lib.code)}


# -- digests (diff) --------------------------------------------------------------------

_LEN = struct.Struct("<Q")
_sha1 = hashlib.sha1


def _feed_all(h: Any, items: Iterator[bytes] | list[bytes]) -> None:
    """Length-prefixed items into a hash, so ``[b"ab"]`` and ``[b"a", b"b"]``
    never collide."""
    pack = _LEN.pack
    upd = h.update
    for x in items:
        upd(pack(len(x)))
        upd(x)


def _stream_bytes(s: Stream) -> Iterator[bytes]:
    yield b"%d %d-%d %d-%d %d-%d %d" % (s.length, *s.last_id, *s.first_id, *s.max_deleted_id, s.entries_added)
    for e in s.entries:
        yield b"%d-%d" % tuple(e.id)
        yield b"%d" % len(e.fields)
        for f, v in e.fields:
            yield f
            yield v
    for g in sorted(s.groups, key=lambda g: g.name):
        yield from _group_bytes(g)


def _group_bytes(g: StreamGroup) -> Iterator[bytes]:
    yield g.name
    yield b"%d-%d %d" % (*g.last_id, g.entries_read)
    for n in sorted(g.pel, key=lambda n: n.id):
        yield b"%d-%d %d %d" % (*n.id, n.delivery_time, n.delivery_count)
    for c in sorted(g.consumers, key=lambda c: c.name):
        yield c.name
        yield b"%d %d" % (c.seen_time, c.active_time)
        for i in sorted(c.pel):
            yield b"%d-%d" % tuple(i)


def value_digest(ev: Key) -> bytes:
    """SHA-1 of the key's type and value in a canonical order (sets and
    hashes sorted, zsets by member), so the same data digests the same
    whatever the encoding or the file order; hash field TTLs included."""
    t = ev.type
    v: Any = ev.value
    if t == "string":
        return _sha1(b"string\0" + v).digest()
    h = _sha1(t.encode() + b"\0")
    if t == "list":
        _feed_all(h, v)
    elif t == "set":
        _feed_all(h, sorted(v))
    elif t == "hash":
        pack = _LEN.pack
        for f, x in sorted(v):
            h.update(pack(len(f)) + f + pack(len(x)))
            h.update(x)
        if ev.field_expires:
            for f, ms in sorted(ev.field_expires.items()):
                h.update(pack(len(f)) + f + b"%d" % ms)
    elif t == "zset":
        pack = _LEN.pack
        for m, s in sorted(v):
            h.update(pack(len(m)) + m + struct.pack("<d", s + 0.0))
    elif t == "stream":
        _feed_all(h, _stream_bytes(v))
    elif isinstance(v, ModuleValue):
        h.update(b"%d" % v.module_id)
        h.update(repr(v.items).encode())
    return h.digest()


# -- RESP (to-resp) --------------------------------------------------------------------


def resp_command(args: list[bytes]) -> bytes:
    """One command in RESP: ``*N`` then a bulk string per argument."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n" % len(a))
        parts.append(a)
        parts.append(b"\r\n")
    return b"".join(parts)


#: Elements per variadic command and bytes per command before a new batch
#: starts (what aof.c's AOF_REWRITE_ITEMS_PER_CMD does, plus a size cap so a
#: few huge elements do not make one enormous command).
ITEMS_PER_CMD: Final = 64
BYTES_PER_CMD: Final = 1 << 20


def _batched(cmd: bytes, key: bytes, items: list[bytes], per_item: int) -> Iterator[list[bytes]]:
    """``cmd key item...`` commands; ``per_item`` arguments make one element."""
    args: list[bytes] = [cmd, key]
    size = 0
    count = 0
    n = len(items)
    i = 0
    while i < n:
        group = items[i:i + per_item]
        i += per_item
        args.extend(group)
        count += 1
        for x in group:
            size += len(x)
        if count >= ITEMS_PER_CMD or size >= BYTES_PER_CMD:
            yield args
            args = [cmd, key]
            size = count = 0
    if count:
        yield args


def _sid(i: Any) -> bytes:
    return b"%d-%d" % (i[0], i[1])


def _stream_commands(key: bytes, s: Stream) -> Iterator[list[bytes]]:
    """aof.c rewriteStreamObject: the entries by XADD (or the ``MAXLEN 0``
    trick for a stream without entries), XSETID with the counters, then
    per group XGROUP CREATE with ENTRIESREAD, an XCLAIM per pending entry
    (delivery time and count kept) and XGROUP CREATECONSUMER for consumers
    without pending entries."""
    if s.entries:
        for e in s.entries:
            args = [b"XADD", key, _sid(e.id)]
            for f, v in e.fields:
                args.append(f)
                args.append(v)
            yield args
    else:
        yield [b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]
    yield [b"XSETID", key, _sid(s.last_id), b"ENTRIESADDED", b"%d" % s.entries_added,
           b"MAXDELETEDID", _sid(s.max_deleted_id)]
    for g in s.groups:
        yield [b"XGROUP", b"CREATE", key, g.name, _sid(g.last_id), b"ENTRIESREAD", b"%d" % g.entries_read]
        nacks = {n.id: n for n in g.pel}
        for c in g.consumers:
            if not c.pel:
                yield [b"XGROUP", b"CREATECONSUMER", key, g.name, c.name]
                continue
            for i in c.pel:
                n = nacks.get(i)
                if n is None:
                    continue
                yield [b"XCLAIM", key, g.name, c.name, b"0", _sid(i), b"TIME", b"%d" % n.delivery_time,
                       b"RETRYCOUNT", b"%d" % n.delivery_count, b"JUSTID", b"FORCE"]


def key_commands(
    ev: Key, *, replace: bool = False, restore: bool = False,
    payload: Callable[[Key], bytes] | None = None,
) -> Iterator[list[bytes]]:
    """The commands that rebuild one key on any Redis-compatible server:
    type-specific writes then PEXPIREAT, or with ``restore`` one RESTORE of
    ``payload(ev)`` (ABSTTL, IDLETIME/FREQ kept).  Module values have no
    command form and always use RESTORE.  ``replace`` deletes an existing
    key first (RESTORE ... REPLACE)."""
    key = ev.key
    t = ev.type
    v: Any = ev.value
    if restore or t == "module":
        assert payload is not None
        args = [b"RESTORE", key, b"%d" % (ev.expire_ms or 0), payload(ev)]
        if replace:
            args.append(b"REPLACE")
        if ev.expire_ms is not None:
            args.append(b"ABSTTL")
        if ev.lru_idle is not None:
            args += [b"IDLETIME", b"%d" % ev.lru_idle]
        if ev.lfu_freq is not None:
            args += [b"FREQ", b"%d" % ev.lfu_freq]
        yield args
        return
    if replace:
        yield [b"DEL", key]
    if t == "string":
        yield [b"SET", key, v]
    elif t == "list":
        yield from _batched(b"RPUSH", key, v, 1)
    elif t == "set":
        yield from _batched(b"SADD", key, v, 1)
    elif t == "hash":
        flat = [x for pair in v for x in pair]
        yield from _batched(b"HSET", key, flat, 2)
        if ev.field_expires:
            by_time: dict[int, list[bytes]] = {}
            for f, ms in ev.field_expires.items():
                by_time.setdefault(ms, []).append(f)
            for ms, fs in sorted(by_time.items()):
                yield [b"HPEXPIREAT", key, b"%d" % ms, b"FIELDS", b"%d" % len(fs), *fs]
    elif t == "zset":
        flat = []
        for m, s in v:
            flat.append(repr(s).encode())
            flat.append(m)
        yield from _batched(b"ZADD", key, flat, 2)
    elif t == "stream":
        yield from _stream_commands(key, v)
    if ev.expire_ms is not None:
        yield [b"PEXPIREAT", key, b"%d" % ev.expire_ms]
