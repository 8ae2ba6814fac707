"""Hash commands (t_hash.c, Redis 7.0.15) and the hash value.

HSET HSETNX HMSET HGET HMGET HGETALL HDEL HLEN HSTRLEN HEXISTS HKEYS HVALS
HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN.

A hash is a :class:`HashValue`, a ``dict`` of field -> value (insertion
ordered, which is exactly a listpack's order: new fields are appended,
updates stay in place, deletions close the gap) plus its Redis encoding:

* ``listpack`` while it has at most ``hash-max-listpack-entries`` fields and
  no field or value longer than ``hash-max-listpack-value`` bytes; HGETALL,
  HKEYS, HSCAN... of a listpack hash are therefore byte-identical to Redis;
* ``hashtable`` from the first write that breaks a limit (HSET/HSETNX check
  every argument before writing, ``hashTypeSet`` checks the field and value
  of HINCRBY*, the entry count is checked after each write); never back.
  ``slots`` follows the dict's bucket count for MEMORY USAGE.

MEMORY USAGE of a listpack hash is exact: the listpack's byte size is
computed entry by entry as listpack.c encodes it (integers in 1..9 bytes,
strings with a 1/2/5-byte header, a 1..5-byte back-length) and rounded to
the jemalloc size class.  :meth:`HashValue.listpack_blob` produces the bytes
themselves (RDB ``RDB_TYPE_HASH_LISTPACK``).

Effects (spec/propagation.md): HINCRBYFLOAT is recorded as ``HSET k f
<new value>``; every other write verbatim (HSET/HMSET even when no value
changed, since Redis counts each pair as a change).  Events: ``hset`` (also
HMSET/HSETNX), ``hdel`` then ``del`` when emptied, ``hincrby``,
``hincrbyfloat``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from itertools import islice
from typing import Any

import numpy as np
from ambry.persistence.rdb.containers import lp_entry_size

from .. import keyspace
from ..args import ERR_NOT_FLOAT, ERR_NOT_INT, ERR_SYNTAX
from ..client import Client
from ..keyspace import WRONGTYPE, Db
from ..protocol import string2ll
from ..registry import command
from ..reply import OK, Err, Map
from ..util import FloatValueError, hincrbyfloat, string2ld
from .introspection import je_size, sds_alloc
from .keys import parse_scan_cursor
from .sets import (
    DICT_ENTRY,
    DICT_HT_INITIAL_SIZE,
    DICT_STRUCT,
    ERR_RANGE_LONG,
    ERR_REPLY_TOO_LARGE,
    LONG_MAX,
    MAX_RANDOM_REPLY,
    ROBJ,
    parse_scan_options,
    pow2_slots,
    rdb_len_size,
    rdb_string_len,
    scan_elements,
)

NOTIFY_GENERIC = 1 << 2
NOTIFY_HASH = 1 << 6

LLONG_MAX = (1 << 63) - 1
LLONG_MIN = -(1 << 63)

LP_HDR_SIZE = 6
LISTPACK_MAX_SAFETY_SIZE = 1 << 30
# HSET's short path measures the listpack only past this many bytes of
# worst-case size (a margin below the 1 GB safety size for the new pair).
_SAFE_BOUND = LISTPACK_MAX_SAFETY_SIZE // 2
HRANDFIELD_SUB_STRATEGY_MUL = 3

ERR_HASH_NOT_INT = Err("ERR hash value is not an integer")
ERR_OVERFLOW = Err("ERR increment or decrement would overflow")
ERR_NAN_INF = Err("ERR value is NaN or Infinity")


# -- listpack sizes and bytes (listpack.c) ---------------------------------------------


def lp_backlen_size(enc: int) -> int:
    """lpEncodeBacklen's size for an entry whose encoding takes ``enc`` bytes."""
    if enc <= 127:
        return 1
    if enc < 16383:
        return 2
    if enc < 2097151:
        return 3
    if enc < 268435455:
        return 4
    return 5


def lp_encode_entry(s: bytes) -> bytes:
    """One listpack entry (encoding, data, back-length) as listpack.c writes it."""
    n = len(s)
    v = string2ll(s) if n <= 20 else None
    if v is not None:
        if 0 <= v <= 127:
            enc = bytes((v,))
        elif -4096 <= v <= 4095:
            u = v & 0x1FFF
            enc = bytes((0xC0 | (u >> 8), u & 0xFF))
        elif -32768 <= v <= 32767:
            enc = b"\xf1" + v.to_bytes(2, "little", signed=True)
        elif -8388608 <= v <= 8388607:
            enc = b"\xf2" + v.to_bytes(3, "little", signed=True)
        elif -2147483648 <= v <= 2147483647:
            enc = b"\xf3" + v.to_bytes(4, "little", signed=True)
        else:
            enc = b"\xf4" + v.to_bytes(8, "little", signed=True)
    elif n < 64:
        enc = bytes((0x80 | n,)) + s
    elif n < 4096:
        enc = bytes((0xE0 | (n >> 8), n & 0xFF)) + s
    else:
        enc = b"\xf0" + n.to_bytes(4, "little") + s
    ln = len(enc)
    if ln <= 127:
        back = bytes((ln,))
    else:
        k = lp_backlen_size(ln)
        groups = [(ln >> (7 * i)) & 127 for i in range(k)]  # least significant first
        back = bytes([groups[-1]] + [g | 128 for g in reversed(groups[:-1])])
    return enc + back


def _lp_wrap(body: bytes, n: int) -> bytes:
    """Header (total bytes, element count; 65535 means "count them") and
    terminator around the entries."""
    total = LP_HDR_SIZE + len(body) + 1
    return total.to_bytes(4, "little") + min(n, 65535).to_bytes(2, "little") + body + b"\xff"


# -- the value ----------------------------------------------------------------------


class HashValue(dict):  # type: ignore[type-arg]
    """A Redis hash: field -> value (bytes), listpack order, ``ht`` once
    converted to a hashtable of ``slots`` buckets.  ``lpsize`` caches the
    listpack's byte size (-1: unknown); whoever changes a listpack hash
    resets it, so MEMORY USAGE and the maxmemory estimate stay O(1)."""

    __slots__ = ("ht", "slots", "lpsize", "__weakref__")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ht = False
        self.slots = 0
        self.lpsize = -1

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bytes, bytes]], listpack: bool) -> HashValue:
        """A hash with these fields in this order, in the given encoding (the
        RDB loader says which one the file holds)."""
        h = cls.__new__(cls)  # every slot is set here, as __init__ does (a load builds many)
        dict.update(h, pairs)
        h.lpsize = -1
        if listpack:
            h.ht = False
            h.slots = 0
        else:
            h.ht = True
            h.slots = pow2_slots(len(h))
        return h

    def convert(self) -> None:
        """hashTypeConvert(OBJ_ENCODING_HT): presized to the current length."""
        self.ht = True
        self.slots = pow2_slots(len(self))

    def grow(self) -> None:
        """_dictExpandIfNeeded after adds (see sets.SetValue.grow)."""
        n = len(self)
        s = self.slots
        if n > s:
            s = s or DICT_HT_INITIAL_SIZE
            while s < n:
                s <<= 1
            self.slots = s

    def shrink(self) -> None:
        """htNeedsResize + dictResize after a delete."""
        s = self.slots
        if s > DICT_HT_INITIAL_SIZE and len(self) * 10 < s:
            self.slots = pow2_slots(len(self))

    # -- the generic value protocol ---------------------------------------------

    def copy(self) -> HashValue:  # type: ignore[override]
        """hashTypeDup: a listpack copied as is, a dict presized."""
        h = HashValue(self)
        if self.ht:
            h.ht = True
            h.slots = pow2_slots(len(h))
        else:
            h.lpsize = self.lpsize
        return h

    def encoding(self) -> bytes:
        return b"hashtable" if self.ht else b"listpack"

    def digest_kind(self) -> tuple[str, list[tuple[bytes, bytes]]]:
        return ("hash", list(self.items()))

    def listpack_size(self) -> int:
        """lpBytes of the listpack holding these fields and values."""
        size = self.lpsize
        if size >= 0 and not self.ht:
            return size
        size = LP_HDR_SIZE + 1
        for f, v in self.items():
            size += lp_entry_size(f) + lp_entry_size(v)
        if not self.ht:
            self.lpsize = size
        return size

    def listpack_blob(self) -> bytes:
        """The listpack itself, field, value, field, value..."""
        body = b"".join(lp_encode_entry(f) + lp_encode_entry(v) for f, v in self.items())
        return _lp_wrap(body, 2 * len(self))

    def redis_memory_usage(self, samples: int) -> int:
        """objectComputeSize: robj + the listpack allocation, or robj + dict
        + buckets + the sampled average entry (dictEntry + field sds + value
        sds) times the size."""
        if not self.ht:
            return ROBJ + je_size(self.listpack_size())
        asize = ROBJ + DICT_STRUCT + 8 * self.slots
        elesize = 0
        k = 0
        for f, v in self.items():
            if k >= samples:
                break
            elesize += DICT_ENTRY + sds_alloc(len(f)) + sds_alloc(len(v))
            k += 1
        if k:
            return int(asize + elesize / k * len(self))
        return asize

    def serialized_length(self, srv: Any = None) -> int:
        """rdbSavedObjectLen (DEBUG OBJECT): the listpack saved as one string,
        or the count then every field and value; ``srv`` tells whether
        rdbcompression is on (default yes)."""
        compress = True if srv is None else bool(srv.cfg.rdbcompression)
        if not self.ht:
            return rdb_string_len(self.listpack_blob(), compress)
        n = rdb_len_size(len(self))
        for f, v in self.items():
            n += rdb_string_len(f, compress) + rdb_string_len(v, compress)
        return n


keyspace.TYPE_NAMES[HashValue] = b"hash"


# -- helpers ----------------------------------------------------------------------------


def _notify(srv: Any, cls: int, event: bytes, key: bytes, dbid: int) -> None:
    if srv.cfg.notify_keyspace_events:
        srv.notify(cls, event, key, dbid)


def _read_hash(db: Db, key: bytes) -> HashValue | None:
    """lookupKeyRead + checkType."""
    h = db.lookup_read(key)
    if h is None:
        return None
    if type(h) is not HashValue:
        raise WRONGTYPE
    return h


def _write_or_create(db: Db, key: bytes) -> HashValue:
    """hashTypeLookupWriteOrCreate: an empty listpack hash is added (event
    ``new``) before anything else can fail."""
    h = db.lookup_write(key)
    if h is None:
        h = HashValue()
        db.add(key, h)
        return h
    if type(h) is not HashValue:
        raise WRONGTYPE
    return h


def _try_conversion(h: HashValue, args: Iterable[bytes], max_value: int) -> None:
    """hashTypeTryConversion: a listpack becomes a hashtable before the write
    when any argument is longer than hash-max-listpack-value, or when the
    listpack would grow past its 1 GB safety size."""
    total = 0
    for a in args:
        n = len(a)
        if n > max_value:
            h.convert()
            return
        total += n
    # lpSafeToAdd, measured only when the listpack could be that big at all
    # (each entry takes at most its bytes + 11).
    if (2 * len(h) + 2) * (max_value + 11) + total > LISTPACK_MAX_SAFETY_SIZE:
        if h.listpack_size() + total > LISTPACK_MAX_SAFETY_SIZE:
            h.convert()


def _set_field(h: HashValue, field: bytes, value: bytes, cfg: Any) -> None:
    """hashTypeSet for HINCRBY*: a field or value too long for a listpack
    converts first; too many entries convert after."""
    if not h.ht:
        maxv = cfg.hash_max_listpack_value
        if len(field) > maxv or len(value) > maxv:
            h.convert()
    h[field] = value
    h.lpsize = -1
    if h.ht:
        h.grow()
    elif len(h) > cfg.hash_max_listpack_entries:
        h.convert()


# -- HSET / HMSET / HSETNX ---------------------------------------------------------------


@command("hset")
def hset(c: Client, argv: list[bytes]) -> Any:
    """HSET key field value [field value ...]: the number of new fields
    (hsetCommand: every pair counts as a change, dirty += pairs; event
    ``hset``).  One pair takes a short path."""
    if len(argv) != 4:
        return _hset_generic(c, argv, False)
    key = argv[1]
    db = c.db
    h = db.lookup_write(key)
    if h is None:
        h = HashValue()
        db.add(key, h)
    elif type(h) is not HashValue:
        raise WRONGTYPE
    srv = c.srv
    f = argv[2]
    v = argv[3]
    created = 0 if f in h else 1
    if h.ht:
        h[f] = v
        if created and len(h) > h.slots:
            h.grow()
    else:
        cfg = srv.cfg
        maxv = cfg.hash_max_listpack_value
        if len(f) > maxv or len(v) > maxv:
            h.convert()
        elif len(h) * (2 * maxv + 22) + len(f) + len(v) > _SAFE_BOUND:
            _try_conversion(h, (f, v), maxv)
        h[f] = v
        h.lpsize = -1
        if h.ht:
            h.grow()
        elif len(h) > cfg.hash_max_listpack_entries:
            h.convert()
    if db.watched:
        db.signal_modified(key)
    if srv.cfg.notify_keyspace_events:
        srv.notify(NOTIFY_HASH, b"hset", key, db.id)
    srv.dirty += 1
    return created


@command("hmset")
def hmset(c: Client, argv: list[bytes]) -> Any:
    """HMSET key field value [field value ...] (deprecated): OK."""
    return _hset_generic(c, argv, True)


def _hset_generic(c: Client, argv: list[bytes], ok: bool) -> Any:
    """hsetCommand: arguments are checked for the listpack limits before any
    write, the entry count after each one."""
    n = len(argv)
    if n & 1:
        name = c.cmd.fullname if c.cmd is not None else ("hmset" if ok else "hset")
        raise Err(f"ERR wrong number of arguments for '{name}' command")
    key = argv[1]
    db = c.db
    h = db.lookup_write(key)
    if h is None:
        h = HashValue()
        db.add(key, h)
    elif type(h) is not HashValue:
        raise WRONGTYPE
    srv = c.srv
    created = 0
    if h.ht:
        for i in range(2, n, 2):
            f = argv[i]
            if f not in h:
                created += 1
            h[f] = argv[i + 1]
        if len(h) > h.slots:
            h.grow()
    else:
        cfg = srv.cfg
        _try_conversion(h, islice(argv, 2, None), cfg.hash_max_listpack_value)
        maxe = cfg.hash_max_listpack_entries
        for i in range(2, n, 2):
            f = argv[i]
            if f not in h:
                created += 1
            h[f] = argv[i + 1]
            if not h.ht and len(h) > maxe:
                h.convert()
        h.lpsize = -1
        if h.ht:
            h.grow()
    if db.watched:
        db.signal_modified(key)
    if srv.cfg.notify_keyspace_events:
        srv.notify(NOTIFY_HASH, b"hset", key, db.id)
    srv.dirty += (n - 2) // 2
    return OK if ok else created


@command("hsetnx")
def hsetnx(c: Client, argv: list[bytes]) -> Any:
    """HSETNX key field value: 1 when the field was set, 0 when it existed."""
    key = argv[1]
    db = c.db
    h = _write_or_create(db, key)
    field = argv[2]
    if field in h:
        return 0
    srv = c.srv
    cfg = srv.cfg
    if not h.ht:
        _try_conversion(h, (field, argv[3]), cfg.hash_max_listpack_value)
    _set_field(h, field, argv[3], cfg)
    if db.watched:
        db.signal_modified(key)
    _notify(srv, NOTIFY_HASH, b"hset", key, db.id)
    srv.dirty += 1
    return 1


# -- HINCRBY / HINCRBYFLOAT ---------------------------------------------------------------


@command("hincrby")
def hincrby(c: Client, argv: list[bytes]) -> Any:
    """HINCRBY key field increment: 64-bit signed arithmetic, overflow refused."""
    incr = string2ll(argv[3])
    if incr is None:
        raise ERR_NOT_INT
    key = argv[1]
    db = c.db
    h = _write_or_create(db, key)
    field = argv[2]
    cur = h.get(field)
    if cur is None:
        value = 0
    else:
        v = string2ll(cur)
        if v is None:
            raise ERR_HASH_NOT_INT
        value = v
    if (incr < 0 and value < 0 and incr < LLONG_MIN - value) or (
        incr > 0 and value > 0 and incr > LLONG_MAX - value
    ):
        raise ERR_OVERFLOW
    value += incr
    srv = c.srv
    _set_field(h, field, b"%d" % value, srv.cfg)
    if db.watched:
        db.signal_modified(key)
    _notify(srv, NOTIFY_HASH, b"hincrby", key, db.id)
    srv.dirty += 1
    return value


@command("hincrbyfloat")
def hincrbyfloat_(c: Client, argv: list[bytes]) -> Any:
    """HINCRBYFLOAT key field increment: long double arithmetic and human
    formatting (util.hincrbyfloat); recorded as ``HSET k f <new value>``."""
    inc = string2ld(argv[3])
    if inc is None:
        raise ERR_NOT_FLOAT
    if not np.isfinite(inc):
        raise ERR_NAN_INF
    key = argv[1]
    db = c.db
    h = _write_or_create(db, key)
    field = argv[2]
    try:
        new = hincrbyfloat(h.get(field), argv[3])
    except FloatValueError as e:
        raise Err(e.msg) from None
    srv = c.srv
    _set_field(h, field, new, srv.cfg)
    if db.watched:
        db.signal_modified(key)
    _notify(srv, NOTIFY_HASH, b"hincrbyfloat", key, db.id)
    srv.dirty += 1
    c.prop_argv = [b"HSET", key, field, new]
    return new


# -- reads -----------------------------------------------------------------------------


@command("hget")
def hget(c: Client, argv: list[bytes]) -> Any:
    """HGET key field."""
    h = _read_hash(c.db, argv[1])
    return None if h is None else h.get(argv[2])


@command("hmget")
def hmget(c: Client, argv: list[bytes]) -> Any:
    """HMGET key field [field ...]: nulls for missing fields (or a missing key)."""
    h = _read_hash(c.db, argv[1])
    if h is None:
        return [None] * (len(argv) - 2)
    get = h.get
    return [get(f) for f in islice(argv, 2, None)]


@command("hlen")
def hlen(c: Client, argv: list[bytes]) -> Any:
    """HLEN key."""
    h = _read_hash(c.db, argv[1])
    return 0 if h is None else len(h)


@command("hstrlen")
def hstrlen(c: Client, argv: list[bytes]) -> Any:
    """HSTRLEN key field: 0 for a missing field."""
    h = _read_hash(c.db, argv[1])
    if h is None:
        return 0
    v = h.get(argv[2])
    return 0 if v is None else len(v)


@command("hexists")
def hexists(c: Client, argv: list[bytes]) -> Any:
    """HEXISTS key field."""
    h = _read_hash(c.db, argv[1])
    return 1 if h is not None and argv[2] in h else 0


@command("hkeys")
def hkeys(c: Client, argv: list[bytes]) -> Any:
    """HKEYS key: the fields in iteration order."""
    h = _read_hash(c.db, argv[1])
    return [] if h is None else list(h)


@command("hvals")
def hvals(c: Client, argv: list[bytes]) -> Any:
    """HVALS key."""
    h = _read_hash(c.db, argv[1])
    return [] if h is None else list(h.values())


@command("hgetall")
def hgetall(c: Client, argv: list[bytes]) -> Any:
    """HGETALL key: a map (RESP2: field, value, field, value...)."""
    h = _read_hash(c.db, argv[1])
    return Map([]) if h is None else Map(h.items())


# -- HDEL ------------------------------------------------------------------------------


@command("hdel")
def hdel(c: Client, argv: list[bytes]) -> Any:
    """HDEL key field [field ...]: fields removed; an emptied hash is deleted."""
    key = argv[1]
    db = c.db
    h = db.lookup_write(key)
    if h is None:
        return 0
    if type(h) is not HashValue:
        raise WRONGTYPE
    deleted = 0
    removed = False
    for f in islice(argv, 2, None):
        if f in h:
            del h[f]
            deleted += 1
            if not h:
                db.delete(key)
                removed = True
                break
            if h.ht:
                h.shrink()
    if deleted:
        h.lpsize = -1
        srv = c.srv
        if db.watched:
            db.signal_modified(key)
        _notify(srv, NOTIFY_HASH, b"hdel", key, db.id)
        if removed:
            _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
        srv.dirty += deleted
    return deleted


# -- HRANDFIELD ----------------------------------------------------------------------------


def _random_field(h: HashValue) -> bytes:
    """A uniformly random field (dicts have no random access: a C-level skip)."""
    return next(islice(iter(h), random.randrange(len(h)), None))


def _pairs_reply(pairs: Iterable[tuple[bytes, bytes]], resp3: bool) -> list[Any]:
    """HRANDFIELD ... WITHVALUES: flat in RESP2, [field, value] pairs in RESP3."""
    if resp3:
        return [[f, v] for f, v in pairs]
    out: list[Any] = []
    for f, v in pairs:
        out.append(f)
        out.append(v)
    return out


@command("hrandfield")
def hrandfield(c: Client, argv: list[bytes]) -> Any:
    """HRANDFIELD key [count [WITHVALUES]] (hrandfieldCommand): a bulk, or an
    array: distinct fields for a positive count (the whole hash in order when
    count >= size), picks with repetition for a negative one."""
    n = len(argv)
    if n < 3:
        h = _read_hash(c.db, argv[1])
        return None if h is None else _random_field(h)
    count = string2ll(argv[2])
    if count is None:
        raise ERR_NOT_INT
    if count < -LONG_MAX:
        raise ERR_RANGE_LONG
    withvalues = False
    if n > 4:
        raise ERR_SYNTAX
    if n == 4:
        opt = argv[3]
        nul = opt.find(b"\0")
        if (opt if nul < 0 else opt[:nul]).lower() != b"withvalues":
            raise ERR_SYNTAX
        withvalues = True
        if count < -(LONG_MAX // 2) or count > LONG_MAX // 2:
            raise Err("ERR value is out of range")
    h = _read_hash(c.db, argv[1])
    if h is None or count == 0:
        return []
    resp3 = c.resp3
    size = len(h)
    if count < 0 or count == 1:
        k = -count if count < 0 else 1
        if k > MAX_RANDOM_REPLY:
            raise ERR_REPLY_TOO_LARGE
        fields = random.choices(list(h), k=k) if k > 1 else [_random_field(h)]
        if not withvalues:
            return fields
        return _pairs_reply(((f, h[f]) for f in fields), resp3)
    if count >= size:
        if not withvalues:
            return list(h)
        return _pairs_reply(h.items(), resp3)
    if not h.ht and count * HRANDFIELD_SUB_STRATEGY_MUL <= size:
        # lpRandomPairsUnique: a random subset in listpack order.
        picks = sorted(random.sample(range(size), count))
        items = list(h.items())
        chosen = [items[i] for i in picks]
    else:
        chosen = random.sample(list(h.items()), count)
    if not withvalues:
        return [f for f, _ in chosen]
    return _pairs_reply(chosen, resp3)


# -- HSCAN -----------------------------------------------------------------------------


@command("hscan")
def hscan(c: Client, argv: list[bytes]) -> Any:
    """HSCAN key cursor [MATCH pattern] [COUNT count]: a listpack answers
    whole with cursor 0, as Redis does; a hashtable is walked with the
    cursor scheme of sets.scan_elements.  MATCH filters on the field and
    drops its value with it."""
    cursor = parse_scan_cursor(argv[2])
    h = _read_hash(c.db, argv[1])
    if h is None:
        return [b"0", []]
    count, match = parse_scan_options(argv, 3)
    if not h.ht:
        nxt = 0
        fields: Iterable[bytes] = h
    else:
        nxt, fields = scan_elements(c.srv, h, cursor, count, lambda: list(h))
    out: list[bytes] = []
    get = h.get
    for f in fields:
        if match is not None and not match(f):
            continue
        v = get(f)
        if v is not None:
            out.append(f)
            out.append(v)
    return [b"%d" % nxt, out]
