"""String commands (t_string.c, Redis 7.0.15): GET/SET and their variants,
counters, ranges, APPEND/STRLEN and LCS.

Storage: a string value is ``bytes`` while it is what ``tryObjectEncoding``
would leave as an ``int``/``embstr``/``raw`` object, an ``int`` when a counter
command (INCR, DECRBY...) produced it -- Redis's OBJ_ENCODING_INT, so the next
INCR does no parsing -- and ``bytearray`` once it was changed in place
(APPEND, SETRANGE, SETBIT...), which Redis always leaves ``raw``;
:func:`string_encoding` tells which one OBJECT ENCODING prints.  Readers
take the text with :func:`string_text` / :func:`string_reply`.  A
``bytearray`` is never handed out as a reply: later commands of the same
pipeline, transaction or script may still grow it.

Effects follow spec/propagation.md: SET with an expiry and SETEX/PSETEX are
recorded as ``SET k v PXAT <abs>``, SET ... GET without expiry loses its GET
tokens, GETSET becomes ``SET k v``, GETEX becomes ``PEXPIREAT``/``PERSIST``
(or ``DEL``/``UNLINK`` when the absolute time already passed), GETDEL becomes
``DEL``/``UNLINK`` and INCRBYFLOAT becomes ``SET k <value> KEEPTTL``.
Every write first looks the key up for writing, so a logically expired key
is deleted (and its DEL recorded) before the command's own effect, as
``lookupKeyWrite`` does inside ``setKey``.
"""

from __future__ import annotations

from typing import Any

from ..args import ERR_NOT_INT, ERR_SYNTAX
from ..client import Client
from ..keyspace import STR_UNENCODED, WRONGTYPE
from ..protocol import string2ll
from ..registry import command
from ..reply import OK, Err, Map
from ..util import FloatValueError, incrbyfloat

LLONG_MAX = (1 << 63) - 1
LLONG_MIN = -(1 << 63)

# notify-keyspace-events classes (server.h)
NOTIFY_GENERIC = 1 << 2
NOTIFY_STRING = 1 << 3

# parseExtendedStringArgumentsOrReply flags
OBJ_SET_NX = 1 << 0
OBJ_SET_XX = 1 << 1
OBJ_EX = 1 << 2
OBJ_PX = 1 << 3
OBJ_KEEPTTL = 1 << 4
OBJ_SET_GET = 1 << 5
OBJ_EXAT = 1 << 6
OBJ_PXAT = 1 << 7
OBJ_PERSIST = 1 << 8
_ANY_EXPIRE = OBJ_EX | OBJ_PX | OBJ_EXAT | OBJ_PXAT

COMMAND_GET = 0
COMMAND_SET = 1

ERR_OVERFLOW = Err("ERR increment or decrement would overflow")
ERR_TOO_BIG = Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
ONE = 1
ZERO = 0


def string_encoding(v: bytes | bytearray | int, unencoded: bool = False) -> bytes:
    """OBJECT ENCODING of a string value, as ``tryObjectEncoding`` left it:
    ``int`` for a canonical int64 text of at most 20 chars, ``embstr`` up to
    44 bytes, ``raw`` above and for values modified in place (bytearray).
    ``unencoded``: the key is marked ``STR_UNENCODED`` (an INCRBYFLOAT
    result, never int-encoded)."""
    t = type(v)
    if t is int:
        return b"int"
    if t is bytearray:
        return b"raw"
    n = len(v)
    if n <= 20 and not unencoded and string2ll(v) is not None:
        return b"int"
    return b"embstr" if n <= 44 else b"raw"


def key_string_encoding(db: Any, key: bytes, v: bytes | bytearray | int) -> bytes:
    """:func:`string_encoding` of the string stored at ``key``."""
    return string_encoding(v, db.strobj.get(key) == STR_UNENCODED)


def is_string(v: Any) -> bool:
    """True for a value of Redis type string."""
    t = type(v)
    return t is bytes or t is bytearray or t is int


def string_text(v: Any) -> bytes | bytearray:
    """The bytes of a string value for reading (a bytearray is not copied:
    don't keep or return it), or WRONGTYPE."""
    t = type(v)
    if t is bytes or t is bytearray:
        return v
    if t is int:
        return b"%d" % v
    raise WRONGTYPE


def string_reply(v: Any) -> bytes | None:
    """The string value as an immutable reply (None stays None), or WRONGTYPE."""
    t = type(v)
    if t is bytes or v is None:
        return v
    if t is bytearray:
        return bytes(v)
    if t is int:
        return b"%d" % v
    raise WRONGTYPE


def must_obey(c: Client) -> bool:
    """mustObeyClient: the primary's link and the AOF loader skip size limits."""
    return c.is_primary_link or c.srv.loading


def check_string_length(c: Client, size: int, append: int) -> None:
    """checkStringLength: refuse results above proto-max-bulk-len before
    allocating anything."""
    if must_obey(c):
        return
    if size + append > c.srv.cfg.proto_max_bulk_len:
        raise ERR_TOO_BIG


def unshare(db: Any, key: bytes, v: bytes | bytearray | int) -> bytearray:
    """dbUnshareStringValue: the value as a mutable (raw) string stored in
    place of ``v``; keeps the TTL and does not signal WATCH by itself."""
    t = type(v)
    if t is bytearray:
        return v  # type: ignore[return-value]
    ba = bytearray(b"%d" % v if t is int else v)
    db.data[key] = ba
    if db.strobj:
        db.strobj.pop(key, None)
    return ba


def _notify(c: Client, cls: int, event: bytes, key: bytes) -> None:
    srv = c.srv
    if srv.cfg.notify_keyspace_events:
        srv.notify(cls, event, key, c.db.id)


def _lazy_expire(db: Any, key: bytes) -> None:
    """The lazy-expiry part of lookupKeyWrite, for paths that only overwrite."""
    if key in db.expires:
        db.expire_if_needed(key)


def _get_generic(c: Client, key: bytes) -> bytes | None:
    """getGenericCommand: the string at ``key`` (a copy if raw), None, or WRONGTYPE."""
    return string_reply(c.db.lookup_read(key))


# -- GET / SET family ---------------------------------------------------------


@command("get")
def get(c: Client, argv: list[bytes]) -> Any:
    """GET key."""
    v = c.db.lookup_read(argv[1])
    t = type(v)
    if t is bytes or v is None:
        return v
    return string_reply(v)


def _opt(a: bytes) -> bytes:
    """An option token as the C code sees it: up to the first NUL, lower case."""
    if b"\0" in a:
        a = a[: a.index(b"\0")]
    return a.lower()


def parse_extended_string_args(argv: list[bytes], command_type: int) -> tuple[int, bytes | None]:
    """parseExtendedStringArgumentsOrReply: (flags, expire argument).

    SET accepts NX XX GET KEEPTTL EX PX EXAT PXAT, GETEX accepts PERSIST EX
    PX EXAT PXAT; a repeated option is fine, conflicting ones or a missing
    value are a syntax error."""
    flags = 0
    expire: bytes | None = None
    j = 2 if command_type == COMMAND_GET else 3
    n = len(argv)
    is_set = command_type == COMMAND_SET
    while j < n:
        opt = _opt(argv[j])
        has_next = j + 1 < n
        if opt == b"nx" and is_set and not flags & OBJ_SET_XX:
            flags |= OBJ_SET_NX
        elif opt == b"xx" and is_set and not flags & OBJ_SET_NX:
            flags |= OBJ_SET_XX
        elif opt == b"get" and is_set:
            flags |= OBJ_SET_GET
        elif opt == b"keepttl" and is_set and not flags & (OBJ_PERSIST | _ANY_EXPIRE):
            flags |= OBJ_KEEPTTL
        elif opt == b"persist" and not is_set and not flags & (_ANY_EXPIRE | OBJ_KEEPTTL):
            flags |= OBJ_PERSIST
        elif (
            opt == b"ex"
            and has_next
            and not flags & (OBJ_KEEPTTL | OBJ_PERSIST | OBJ_EXAT | OBJ_PX | OBJ_PXAT)
        ):
            flags |= OBJ_EX
            j += 1
            expire = argv[j]
        elif (
            opt == b"px"
            and has_next
            and not flags & (OBJ_KEEPTTL | OBJ_PERSIST | OBJ_EX | OBJ_EXAT | OBJ_PXAT)
        ):
            flags |= OBJ_PX
            j += 1
            expire = argv[j]
        elif (
            opt == b"exat"
            and has_next
            and not flags & (OBJ_KEEPTTL | OBJ_PERSIST | OBJ_EX | OBJ_PX | OBJ_PXAT)
        ):
            flags |= OBJ_EXAT
            j += 1
            expire = argv[j]
        elif (
            opt == b"pxat"
            and has_next
            and not flags & (OBJ_KEEPTTL | OBJ_PERSIST | OBJ_EX | OBJ_EXAT | OBJ_PX)
        ):
            flags |= OBJ_PXAT
            j += 1
            expire = argv[j]
        else:
            raise ERR_SYNTAX
        j += 1
    return flags, expire


def expire_ms(c: Client, arg: bytes, flags: int, name: str) -> int:
    """getExpireMillisecondsOrReply: the absolute expire time in ms.

    EX/PX are relative to the command's time snapshot; a value <= 0, a
    seconds value whose ms overflow, or an absolute time past int64 is
    "invalid expire time in '<name>' command"."""
    ms = string2ll(arg)
    if ms is None:
        raise ERR_NOT_INT
    seconds = flags & (OBJ_EX | OBJ_EXAT)
    if ms <= 0 or (seconds and ms > LLONG_MAX // 1000):
        raise Err(f"ERR invalid expire time in '{name}' command")
    if seconds:
        ms *= 1000
    if flags & (OBJ_EX | OBJ_PX):
        ms += c.srv.now_ms
        if ms > LLONG_MAX:  # C overflows to a negative time
            raise Err(f"ERR invalid expire time in '{name}' command")
    return ms


def set_generic(
    c: Client,
    flags: int,
    key: bytes,
    val: bytes,
    expire: bytes | None,
    ok_reply: Any,
    abort_reply: Any,
    name: str,
) -> Any:
    """setGenericCommand: SET, SETNX, SETEX, PSETEX."""
    ms = expire_ms(c, expire, flags, name) if expire is not None else 0
    old: bytes | None = None
    if flags & OBJ_SET_GET:
        old = _get_generic(c, key)
    db = c.db
    found = db.lookup_write(key) is not None
    if (flags & OBJ_SET_NX and found) or (flags & OBJ_SET_XX and not found):
        return old if flags & OBJ_SET_GET else abort_reply
    if found:
        db.set_key(key, val, keepttl=bool(flags & OBJ_KEEPTTL))
    else:
        db.add(key, val)
    srv = c.srv
    srv.dirty += 1
    _notify(c, NOTIFY_STRING, b"set", key)
    if expire is not None:
        db.set_expire(key, ms)
        # 7.0 records every expiry form as exactly SET k v PXAT <abs>.
        c.prop_argv = [b"SET", key, val, b"PXAT", b"%d" % ms]
        _notify(c, NOTIFY_GENERIC, b"expire", key)
    if flags & OBJ_SET_GET:
        if expire is None:
            argv = c.argv
            c.prop_argv = argv[:3] + [a for a in argv[3:] if _opt(a) != b"get"]
        return old
    return ok_reply


@command("set")
def set_(c: Client, argv: list[bytes]) -> Any:
    """SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ts|KEEPTTL]."""
    if len(argv) == 3:
        # The common case, kept short: setKey (lazy expiry, TTL dropped,
        # WATCH signalled), dirty++, the "set" event.
        key = argv[1]
        db = c.db
        if key in db.expires:
            db.expire_if_needed(key)
        db.set_key(key, argv[2])
        srv = c.srv
        srv.dirty += 1
        if srv.cfg.notify_keyspace_events:
            srv.notify(NOTIFY_STRING, b"set", key, db.id)
        return OK
    flags, expire = parse_extended_string_args(argv, COMMAND_SET)
    return set_generic(c, flags, argv[1], argv[2], expire, OK, None, "set")


@command("setnx")
def setnx(c: Client, argv: list[bytes]) -> Any:
    """SETNX key value: 1 when set, 0 when the key exists."""
    return set_generic(c, OBJ_SET_NX, argv[1], argv[2], None, ONE, ZERO, "setnx")


@command("setex")
def setex(c: Client, argv: list[bytes]) -> Any:
    """SETEX key seconds value (recorded as SET k v PXAT <abs>)."""
    return set_generic(c, OBJ_EX, argv[1], argv[3], argv[2], OK, None, "setex")


@command("psetex")
def psetex(c: Client, argv: list[bytes]) -> Any:
    """PSETEX key milliseconds value (recorded as SET k v PXAT <abs>)."""
    return set_generic(c, OBJ_PX, argv[1], argv[3], argv[2], OK, None, "psetex")


@command("getset")
def getset(c: Client, argv: list[bytes]) -> Any:
    """GETSET key value: the old value; recorded as SET key value."""
    key = argv[1]
    old = _get_generic(c, key)
    db = c.db
    val = argv[2]
    if db.lookup_write(key) is not None:
        db.set_key(key, val)
    else:
        db.add(key, val)
    _notify(c, NOTIFY_STRING, b"set", key)
    c.srv.dirty += 1
    c.prop_argv = [b"SET", key, val]
    return old


@command("getex")
def getex(c: Client, argv: list[bytes]) -> Any:
    """GETEX key [EX s|PX ms|EXAT ts|PXAT ts|PERSIST].

    Recorded as PEXPIREAT k <abs>, PERSIST k (only when a TTL was removed),
    or DEL/UNLINK k when an EXAT/PXAT time has already passed; nothing for a
    plain GETEX.  A missing key answers null before the time is validated."""
    flags, expire = parse_extended_string_args(argv, COMMAND_GET)
    key = argv[1]
    db = c.db
    v = db.lookup_read(key)
    if v is None:
        return None
    reply = string_reply(v)
    ms = expire_ms(c, expire, flags, "getex") if expire is not None else 0
    srv = c.srv
    if flags & (OBJ_PXAT | OBJ_EXAT) and ms <= srv.now_ms and not srv.loading and not srv.is_replica:
        # checkAlreadyExpired: delete now, as lazy expiry would.
        lazy = srv.cfg.lazyfree_lazy_expire
        db.delete(key)
        c.prop_argv = [b"UNLINK" if lazy else b"DEL", key]
        db.signal_modified(key)
        _notify(c, NOTIFY_GENERIC, b"del", key)
        srv.dirty += 1
    elif expire is not None:
        db.set_expire(key, ms)
        c.prop_argv = [b"PEXPIREAT", key, b"%d" % ms]
        db.signal_modified(key)
        _notify(c, NOTIFY_GENERIC, b"expire", key)
        srv.dirty += 1
    elif flags & OBJ_PERSIST:
        if db.remove_expire(key):
            db.signal_modified(key)
            c.prop_argv = [b"PERSIST", key]
            _notify(c, NOTIFY_GENERIC, b"persist", key)
            srv.dirty += 1
    return reply


@command("getdel")
def getdel(c: Client, argv: list[bytes]) -> Any:
    """GETDEL key: the value, then the key is deleted (recorded as DEL/UNLINK
    per lazyfree-lazy-user-del)."""
    key = argv[1]
    old = _get_generic(c, key)
    if old is not None:
        srv = c.srv
        db = c.db
        if db.delete(key):
            lazy = srv.cfg.lazyfree_lazy_user_del
            c.prop_argv = [b"UNLINK" if lazy else b"DEL", key]
            db.signal_modified(key)
            _notify(c, NOTIFY_GENERIC, b"del", key)
            srv.dirty += 1
    return old


@command("mget")
def mget(c: Client, argv: list[bytes]) -> Any:
    """MGET key [key ...]: null for missing keys and for non-strings."""
    lookup = c.db.lookup_read
    out: list[Any] = []
    append = out.append
    for key in argv[1:]:
        v = lookup(key)
        t = type(v)
        if t is bytes:
            append(v)
        elif t is bytearray:
            append(bytes(v))
        elif t is int:
            append(b"%d" % v)
        else:
            append(None)
    return out


@command("mset")
def mset(c: Client, argv: list[bytes]) -> Any:
    """MSET key value [key value ...]."""
    n = len(argv)
    if not n & 1:
        raise Err("ERR wrong number of arguments for 'mset' command")
    db = c.db
    expires = db.expires
    set_key = db.set_key
    srv = c.srv
    notify = srv.cfg.notify_keyspace_events
    for i in range(1, n, 2):
        key = argv[i]
        if expires and key in expires:
            db.expire_if_needed(key)
        set_key(key, argv[i + 1])
        if notify:
            srv.notify(NOTIFY_STRING, b"set", key, db.id)
    srv.dirty += n >> 1
    return OK


@command("msetnx")
def msetnx(c: Client, argv: list[bytes]) -> Any:
    """MSETNX key value [key value ...]: 0 and nothing set if any key exists."""
    n = len(argv)
    if not n & 1:
        raise Err("ERR wrong number of arguments for 'msetnx' command")
    db = c.db
    for i in range(1, n, 2):
        if db.lookup_write(argv[i]) is not None:
            return ZERO
    for i in range(1, n, 2):
        key = argv[i]
        db.set_key(key, argv[i + 1])
        _notify(c, NOTIFY_STRING, b"set", key)
    c.srv.dirty += n >> 1
    return ONE


# -- in-place changes ------------------------------------------------------------


@command("append")
def append_(c: Client, argv: list[bytes]) -> Any:
    """APPEND key value: the new length; the value becomes raw."""
    key = argv[1]
    val = argv[2]
    db = c.db
    v = db.lookup_write(key)
    if v is None:
        db.add(key, val)
        total = len(val)
    else:
        check_string_length(c, len(string_text(v)), len(val))
        ba = unshare(db, key, v)
        ba += val
        total = len(ba)
    db.signal_modified(key)
    _notify(c, NOTIFY_STRING, b"append", key)
    c.srv.dirty += 1
    return total


@command("strlen")
def strlen(c: Client, argv: list[bytes]) -> Any:
    """STRLEN key: 0 when missing."""
    v = c.db.lookup_read(argv[1])
    if v is None:
        return 0
    return len(string_text(v))


@command("setrange")
def setrange(c: Client, argv: list[bytes]) -> Any:
    """SETRANGE key offset value: zero-pads up to ``offset``; a result over
    proto-max-bulk-len is refused before anything is allocated."""
    offset = string2ll(argv[2])
    if offset is None:
        raise ERR_NOT_INT
    if offset < 0:
        raise Err("ERR offset is out of range")
    key = argv[1]
    val = argv[3]
    vlen = len(val)
    db = c.db
    v = db.lookup_write(key)
    if v is None:
        if vlen == 0:
            return 0
        check_string_length(c, offset, vlen)
        ba = bytearray(offset)
        ba += val
        db.add(key, ba)
    else:
        cur = len(string_text(v))  # WRONGTYPE first
        if vlen == 0:
            return cur
        check_string_length(c, offset, vlen)
        ba = unshare(db, key, v)
        end = offset + vlen
        if len(ba) < offset:
            ba += bytes(offset - len(ba))
        ba[offset:end] = val
    db.signal_modified(key)
    _notify(c, NOTIFY_STRING, b"setrange", key)
    c.srv.dirty += 1
    return len(ba)


def _getrange(c: Client, argv: list[bytes]) -> Any:
    start = string2ll(argv[2])
    if start is None:
        raise ERR_NOT_INT
    end = string2ll(argv[3])
    if end is None:
        raise ERR_NOT_INT
    v = c.db.lookup_read(argv[1])
    if v is None:
        return b""
    v = string_text(v)
    if start < 0 and end < 0 and start > end:
        return b""
    n = len(v)
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return b""
    return bytes(v[start : end + 1])


@command("getrange")
def getrange(c: Client, argv: list[bytes]) -> Any:
    """GETRANGE key start end (7.0 clamping: ``GETRANGE k 0 -100`` gives the
    first byte)."""
    return _getrange(c, argv)


@command("substr")
def substr(c: Client, argv: list[bytes]) -> Any:
    """SUBSTR key start end: the old name of GETRANGE."""
    return _getrange(c, argv)


# -- counters ----------------------------------------------------------------------


def incr_decr(c: Client, key: bytes, incr: int) -> int:
    """incrDecrCommand: int64 arithmetic with Redis's overflow error; the
    result is stored int-encoded (a Python ``int``)."""
    db = c.db
    v = db.lookup_write(key)
    if v is None:
        new = incr
        if new > LLONG_MAX or new < LLONG_MIN:
            raise ERR_OVERFLOW
        db.add(key, new)
    else:
        t = type(v)
        if t is int:
            old = v
        elif t is bytes or t is bytearray:
            # string2ll, fast: int() accepts more than Redis (spaces, '+',
            # '_', leading zeros), so the text must also be the canonical form.
            try:
                old = int(v)
            except ValueError:
                raise ERR_NOT_INT from None
            if b"%d" % old != v or old > LLONG_MAX or old < LLONG_MIN:
                raise ERR_NOT_INT
        else:
            raise WRONGTYPE
        new = old + incr
        if new > LLONG_MAX or new < LLONG_MIN:
            raise ERR_OVERFLOW
        # dbOverwrite: lookup_write already refreshed the access time; the
        # TTL stays; WATCHers are signalled.
        db.data[key] = new
        if db.strobj:
            db.strobj.pop(key, None)
        if db.watched:
            db.signal_modified(key)
    srv = c.srv
    if srv.cfg.notify_keyspace_events:
        srv.notify(NOTIFY_STRING, b"incrby", key, db.id)
    srv.dirty += 1
    return new


@command("incr")
def incr(c: Client, argv: list[bytes]) -> Any:
    """INCR key: incr_decr's common case (an int-encoded value without a
    TTL) inlined, as this is one of the hottest commands."""
    key = argv[1]
    db = c.db
    v = db.data.get(key)
    if type(v) is int and v < LLONG_MAX and key not in db.expires:
        v += 1
        db.data[key] = v
        srv = db.srv
        if srv.lfu:
            db.touch(key)
        else:
            db.access[key] = srv.lru_clock
        if db.strobj:
            db.strobj.pop(key, None)
        if db.watched:
            db.signal_modified(key)
        if srv.cfg.notify_keyspace_events:
            srv.notify(NOTIFY_STRING, b"incrby", key, db.id)
        srv.dirty += 1
        return v
    return incr_decr(c, key, 1)


@command("decr")
def decr(c: Client, argv: list[bytes]) -> Any:
    """DECR key."""
    return incr_decr(c, argv[1], -1)


@command("incrby")
def incrby(c: Client, argv: list[bytes]) -> Any:
    """INCRBY key increment."""
    n = string2ll(argv[2])
    if n is None:
        raise ERR_NOT_INT
    return incr_decr(c, argv[1], n)


@command("decrby")
def decrby(c: Client, argv: list[bytes]) -> Any:
    """DECRBY key decrement (LLONG_MIN cannot be negated)."""
    n = string2ll(argv[2])
    if n is None:
        raise ERR_NOT_INT
    if n == LLONG_MIN:
        raise Err("ERR decrement would overflow")
    return incr_decr(c, argv[1], -n)


@command("incrbyfloat")
def incrbyfloat_(c: Client, argv: list[bytes]) -> Any:
    """INCRBYFLOAT key increment: long double arithmetic and ``%.17Lf``
    human formatting (util.incrbyfloat); recorded as SET k <new> KEEPTTL."""
    key = argv[1]
    db = c.db
    v = db.lookup_write(key)
    if v is not None:
        v = string_reply(v)
    try:
        new = incrbyfloat(v, argv[2])
    except FloatValueError as e:
        raise Err(e.msg) from None
    if v is None:
        db.add(key, new)
    else:
        db.set_key(key, new, keepttl=True)
    if len(new) <= 20 and string2ll(new) is not None:
        # createStringObjectFromLongDouble: an embstr even when it reads as
        # an integer ("6", "-5000"), unlike every tryObjectEncoding'd value.
        db.strobj[key] = STR_UNENCODED
    _notify(c, NOTIFY_STRING, b"incrbyfloat", key)
    c.srv.dirty += 1
    c.prop_argv = [b"SET", key, new, b"KEEPTTL"]
    return new


# -- LCS ------------------------------------------------------------------------------


def _lcs_rows(a: bytes, b: bytes) -> list[int]:
    """Bit-parallel LCS table (Hyyrö): row i is a bit vector over ``b`` where
    bit j-1 is clear exactly when LCS(a[:i], b[:j]) > LCS(a[:i], b[:j-1]);
    so LCS(i, j) = j - popcount(row_i & (2^j - 1))."""
    m = len(b)
    full = (1 << m) - 1
    match: dict[int, int] = {}
    for j, ch in enumerate(b):
        match[ch] = match.get(ch, 0) | (1 << j)
    rows = [full]
    v = full
    for ch in a:
        u = v & match.get(ch, 0)
        v = ((v + u) | (v - u)) & full
        rows.append(v)
    return rows


def _lcs_at(rows: list[int], i: int, j: int) -> int:
    return j - (rows[i] & ((1 << j) - 1)).bit_count()


@command("lcs")
def lcs(c: Client, argv: list[bytes]) -> Any:
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN].

    The string, its length, or the matching ranges walked back from the end
    exactly as Redis's DP backtrack does (same ties, same range order)."""
    db = c.db
    oa = db.lookup_read(argv[1])
    ob = db.lookup_read(argv[2])
    if (oa is not None and not is_string(oa)) or (ob is not None and not is_string(ob)):
        raise Err("ERR The specified keys must contain string values")
    a = bytes(string_text(oa)) if oa is not None else b""
    b = bytes(string_text(ob)) if ob is not None else b""
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    j = 3
    n = len(argv)
    while j < n:
        opt = _opt(argv[j])
        if opt == b"idx":
            getidx = True
        elif opt == b"len":
            getlen = True
        elif opt == b"withmatchlen":
            withmatchlen = True
        elif opt == b"minmatchlen" and j + 1 < n:
            mm = string2ll(argv[j + 1])
            if mm is None:
                raise ERR_NOT_INT
            minmatchlen = max(mm, 0)
            j += 1
        else:
            raise ERR_SYNTAX
        j += 1
    if getidx and getlen:
        raise Err("ERR If you want both the length and indexes, please just use IDX.")
    alen = len(a)
    blen = len(b)
    if alen >= 0xFFFFFFFF - 1 or blen >= 0xFFFFFFFF - 1:
        raise Err("ERR String too long for LCS")
    if (alen + 1) * (blen + 1) * 4 > c.srv.cfg.proto_max_bulk_len:
        raise Err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    rows = _lcs_rows(a, b)
    total = _lcs_at(rows, alen, blen)
    if getlen:
        return total
    result = bytearray(total)
    idx = total
    matches: list[Any] = []
    i, j = alen, blen
    arange_start = alen  # alen means "no range open"
    arange_end = brange_start = brange_end = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if arange_start == alen:
                arange_start = arange_end = i - 1
                brange_start = brange_end = j - 1
            elif arange_start == i and brange_start == j:
                arange_start -= 1
                brange_start -= 1
            else:
                emit = True
            if arange_start == 0 or brange_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if _lcs_at(rows, i - 1, j) > _lcs_at(rows, i, j - 1):
                i -= 1
            else:
                j -= 1
            if arange_start != alen:
                emit = True
        if emit:
            match_len = arange_end - arange_start + 1
            if getidx and (minmatchlen == 0 or match_len >= minmatchlen):
                item: list[Any] = [[arange_start, arange_end], [brange_start, brange_end]]
                if withmatchlen:
                    item.append(match_len)
                matches.append(item)
            arange_start = alen
    if getidx:
        return Map([(b"matches", matches), (b"len", total)])
    return bytes(result)
