"""Writing the AOF command stream as Redis 7.0 does (spec/aof-format.md §1, §4.3, §6, §7).

* :func:`encode_command` -- catAppendOnlyGenericCommand: ``*N`` then
  ``$len``/bytes per argument, CRLF-terminated, arguments binary safe;
* :class:`AOFWriter` -- feedAppendOnlyFile's framing: a ``#TS:<seconds>``
  annotation when the second changed (with ``aof-timestamp-enabled``) and a
  ``SELECT <db>`` when the command's db differs from the last one written
  (db -1 never selects);
* :class:`RewriteEmitter` -- rewriteAppendOnlyFileRio: the commands that
  rebuild a dataset in a RESP-form base file (``FUNCTION LOAD`` per library,
  ``SELECT`` per non-empty db, ``SET``/``RPUSH``/``SADD``/``ZADD``/``HMSET``
  in batches of 64 items, streams with ``XADD``/``XSETID``/``XGROUP``/
  ``XCLAIM``, then ``PEXPIREAT`` for a key with a TTL).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..rdb.model import Stream, StreamID

#: AOF_REWRITE_ITEMS_PER_CMD: elements per RPUSH/SADD/ZADD/HMSET of a rewrite.
ITEMS_PER_CMD = 64

_HDR = [b"*%d\r\n" % i for i in range(128)]
_BULK = [b"$%d\r\n" % i for i in range(1024)]
_FMT2, _FMT3, _FMT4 = (b"*%d\r\n" % n + b"$%d\r\n%b\r\n" * n for n in (2, 3, 4))


def encode_command(argv: Iterable[bytes]) -> bytes:
    """The RESP multibulk form of one command."""
    args = argv if type(argv) is list else list(argv)
    n = len(args)
    # The commonest effects (DEL k, SET k v, HSET k f v...) in one format.
    if n == 3:
        a, b, c = args
        return _FMT3 % (len(a), a, len(b), b, len(c), c)
    if n == 2:
        a, b = args
        return _FMT2 % (len(a), a, len(b), b)
    if n == 4:
        a, b, c, d = args
        return _FMT4 % (len(a), a, len(b), b, len(c), c, len(d), d)
    parts = [_HDR[n] if n < 128 else b"*%d\r\n" % n]
    ap = parts.append
    bulk = _BULK
    for a in args:
        ln = len(a)
        ap(bulk[ln] if ln < 1024 else b"$%d\r\n" % ln)
        ap(a)
        ap(b"\r\n")
    return b"".join(parts)


def select_command(db: int) -> bytes:
    """``SELECT <db>`` as feedAppendOnlyFile spells it."""
    d = b"%d" % db
    return b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n" % (len(d), d)


def timestamp_annotation(unix_seconds: int) -> bytes:
    """``#TS:<seconds>\\r\\n``"""
    return b"#TS:%d\r\n" % unix_seconds


class AOFWriter:
    """The framing state of one AOF stream: the db of the last command
    written (-1 unknown, so the first command selects) and the last
    timestamp annotation written."""

    __slots__ = ("selected_db", "timestamps", "cur_timestamp")

    def __init__(self, *, timestamps: bool = False) -> None:
        self.selected_db = -1
        self.timestamps = timestamps
        self.cur_timestamp = 0

    def reset_db(self) -> None:
        """Force a SELECT before the next command (a new incr file)."""
        self.selected_db = -1

    def command(self, db: int, argv: Iterable[bytes], now: int = 0) -> bytes:
        """The bytes feedAppendOnlyFile appends for ``argv`` bound to ``db``
        (``now``: the server's unix time in seconds, for annotations)."""
        if db == self.selected_db and not self.timestamps:
            return encode_command(argv)  # the common case
        head = b""
        if self.timestamps and now > self.cur_timestamp:
            self.cur_timestamp = now
            head = timestamp_annotation(now)
        if db >= 0 and db != self.selected_db:
            self.selected_db = db
            head += select_command(db)
        return head + encode_command(argv)


def format_double(d: float) -> bytes:
    """rioWriteBulkDouble: ``%.17g`` (``inf``/``-inf`` spelled as C does)."""
    return b"%.17g" % d


def stream_id(i: StreamID) -> bytes:
    return b"%d-%d" % (i.ms, i.seq)


class RewriteEmitter:
    """Builds a RESP-form base file's commands, one key at a time.

    Each method returns the encoded commands for one value; the caller
    writes them in Redis's order (functions, then each non-empty db after
    :meth:`select`, its keys each followed by :meth:`expire` when it has a
    TTL)."""

    @staticmethod
    def timestamp(unix_seconds: int) -> bytes:
        """The annotation a rewrite starts with when timestamps are on."""
        return timestamp_annotation(unix_seconds)

    @staticmethod
    def function_load(code: bytes) -> bytes:
        return encode_command([b"FUNCTION", b"LOAD", code])

    @staticmethod
    def select(db: int) -> bytes:
        """rewriteAppendOnlyFileRio's ``SELECT`` (the db number as a bulk)."""
        return encode_command([b"SELECT", b"%d" % db])

    @staticmethod
    def string_value(key: bytes, value: bytes) -> bytes:
        return encode_command([b"SET", key, value])

    @staticmethod
    def expire(key: bytes, when_ms: int) -> bytes:
        return encode_command([b"PEXPIREAT", key, b"%d" % when_ms])

    @staticmethod
    def _batches(name: bytes, key: bytes, items: list[bytes], per: int) -> bytes:
        """``name key item...`` commands of at most ITEMS_PER_CMD elements
        (``per`` arguments per element)."""
        out = []
        step = ITEMS_PER_CMD * per
        for i in range(0, len(items), step):
            out.append(encode_command([name, key, *items[i : i + step]]))
        return b"".join(out)

    @classmethod
    def list_value(cls, key: bytes, elements: Iterable[bytes]) -> bytes:
        """rewriteListObject: RPUSH batches, head to tail."""
        return cls._batches(b"RPUSH", key, list(elements), 1)

    @classmethod
    def set_value(cls, key: bytes, members: Iterable[bytes]) -> bytes:
        """rewriteSetObject: SADD batches."""
        return cls._batches(b"SADD", key, list(members), 1)

    @classmethod
    def zset_value(cls, key: bytes, pairs: Iterable[tuple[bytes, float]]) -> bytes:
        """rewriteSortedSetObject: ZADD batches of score/member pairs, the
        score as ``%.17g``."""
        flat: list[bytes] = []
        for member, score in pairs:
            flat.append(format_double(score))
            flat.append(member)
        return cls._batches(b"ZADD", key, flat, 2)

    @classmethod
    def hash_value(cls, key: bytes, pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
        """rewriteHashObject: HMSET batches of field/value pairs."""
        flat: list[bytes] = []
        for f, v in pairs:
            flat.append(f)
            flat.append(v)
        return cls._batches(b"HMSET", key, flat, 2)

    @staticmethod
    def stream_value(key: bytes, s: Stream) -> bytes:
        """rewriteStreamObject: one XADD per entry (an empty stream through
        ``XADD key MAXLEN 0 0-1 x y``), XSETID with ENTRIESADDED and
        MAXDELETEDID, then per group (by name) XGROUP CREATE ... ENTRIESREAD
        and, per consumer (by name), XGROUP CREATECONSUMER when it owns no
        pending entry or one XCLAIM ... JUSTID FORCE per pending entry."""
        out: list[bytes] = []
        ap = out.append
        if s.entries:
            for e in s.entries:
                argv = [b"XADD", key, stream_id(e.id)]
                for f, v in e.fields:
                    argv.append(f)
                    argv.append(v)
                ap(encode_command(argv))
        else:
            ap(encode_command([b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]))
        ap(encode_command([b"XSETID", key, stream_id(s.last_id), b"ENTRIESADDED", b"%d" % s.entries_added,
                           b"MAXDELETEDID", stream_id(s.max_deleted_id)]))
        for g in sorted(s.groups, key=lambda g: g.name):
            ap(encode_command([b"XGROUP", b"CREATE", key, g.name, stream_id(g.last_id), b"ENTRIESREAD",
                               b"%d" % g.entries_read]))
            nacks = {n.id: n for n in g.pel}
            for cons in sorted(g.consumers, key=lambda c: c.name):
                if not cons.pel:
                    ap(encode_command([b"XGROUP", b"CREATECONSUMER", key, g.name, cons.name]))
                    continue
                for pid in sorted(cons.pel):
                    n = nacks.get(pid)
                    dtime = n.delivery_time if n is not None else 0
                    dcount = n.delivery_count if n is not None else 0
                    ap(encode_command([b"XCLAIM", key, g.name, cons.name, b"0", stream_id(pid), b"TIME",
                                       b"%d" % dtime, b"RETRYCOUNT", b"%d" % dcount, b"JUSTID", b"FORCE"]))
        return b"".join(out)
