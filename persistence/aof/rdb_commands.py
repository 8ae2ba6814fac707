"""The commands that rebuild an RDB's contents on a Redis-compatible server.

An RDB (a dump, or the RDB part of an AOF base) becomes commands in the AOF
rewrite form of Redis 7.0 (aof.c ``rewrite*Object``): ``FUNCTION LOAD`` per
library, ``SELECT`` when the db changes, variadic pushes in batches of
:data:`~.writer.ITEMS_PER_CMD` elements, streams rebuilt by ``XADD``,
``XSETID ... ENTRIESADDED ... MAXDELETEDID``, ``XGROUP CREATE ...
ENTRIESREAD``, ``XCLAIM ... TIME RETRYCOUNT JUSTID FORCE`` and ``XGROUP
CREATECONSUMER``, the expiry as ``PEXPIREAT``.  Module values have no command
form: they become ``RESTORE`` of a DUMP payload.

``rdb-inspect to-resp`` and ``aof-replay`` (for an RDB base) both use
:func:`key_commands`; :func:`rdb_commands` turns a whole RDB event stream
into :class:`~.parser.Command` records, so an RDB base reads like a
RESP-form one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from ..rdb import FunctionLibrary, Key, RDBWriteError, Stream, dump_payload
from .parser import Command
from .writer import ITEMS_PER_CMD

__all__ = ["key_commands", "rdb_commands", "RDBCommandStream", "function_command", "BYTES_PER_CMD", "AGGREGATE_TYPES"]

#: Bytes of elements per command before a new batch starts, so a few huge
#: elements do not make one enormous command.
BYTES_PER_CMD: Final = 1 << 20

#: Types whose empty values Redis skips on load (and RESTORE refuses).
AGGREGATE_TYPES: Final = frozenset(("list", "set", "zset", "hash"))


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


def function_command(lib: FunctionLibrary, *, replace: bool = False) -> list[bytes]:
    """``FUNCTION LOAD [REPLACE] <code>`` for one library."""
    return [b"FUNCTION", b"LOAD"] + ([b"REPLACE"] if replace else []) + [lib.code]


def _module_payload(ev: Key) -> bytes:
    """A module value's DUMP payload, for RESTORE."""
    try:
        return dump_payload(ev.type, ev.value, field_expires=ev.field_expires)
    except RDBWriteError as e:
        raise RDBWriteError(f"key {ev.key!r} has no command form and no DUMP payload: {e}") from None


class RDBCommandStream:
    """Turns RDB events into AOF command records, one event at a time:
    FUNCTION LOAD per library, ``SELECT <db>`` before the first key of each
    db, then each key's commands.  Every command carries the offset of the
    RDB record it comes from (``offset``) and of the record after it
    (``end``), so a problem can be located in the file.  Empty aggregates
    are skipped, as Redis skips them when it loads the file.  ``keys``
    counts the keys turned into commands."""

    __slots__ = ("db", "keys")

    def __init__(self) -> None:
        self.db: int | None = None
        self.keys = 0

    def commands(self, ev: Any) -> list[Command]:
        t = type(ev)
        if t is Key:
            assert isinstance(ev, Key)
            if ev.type in AGGREGATE_TYPES and not ev.value:
                return []
            end = ev.offset + ev.size
            out: list[Command] = []
            if ev.db != self.db:
                self.db = ev.db
                out.append(Command([b"SELECT", b"%d" % ev.db], ev.offset, ev.offset))
            out.extend(Command(argv, ev.offset, end) for argv in key_commands(ev, payload=_module_payload))
            self.keys += 1
            return out
        if t is FunctionLibrary:
            assert isinstance(ev, FunctionLibrary)
            return [Command(function_command(ev), ev.offset, ev.offset)]
        return []  # SELECT is written before a db's first key; aux fields carry no data


def rdb_commands(events: Iterable[Any]) -> Iterator[Command]:
    """A whole RDB event stream as AOF command records (see
    :class:`RDBCommandStream`)."""
    stream = RDBCommandStream()
    for ev in events:
        yield from stream.commands(ev)
