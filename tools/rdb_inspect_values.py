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

``to-resp``'s commands come from
:func:`ambry.persistence.aof.rdb_commands.key_commands` (Redis 7.0's AOF
rewrite form), shared with ``aof-replay``.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterator
from operator import itemgetter
from typing import Any, Final

from ambry.persistence.aof import encode_command
from ambry.persistence.aof.rdb_commands import key_commands
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


#: ZRANGE order of (member, score) pairs: by score, then member.
_zset_key: Final = itemgetter(1, 0)


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
    return encode_command(args)
