"""Generic keyspace commands (db.c, object.c, sort.c of Redis 7.0.15).

DEL UNLINK EXISTS TYPE RENAME RENAMENX COPY MOVE SWAPDB KEYS SCAN RANDOMKEY
DBSIZE FLUSHDB FLUSHALL TOUCH OBJECT SORT SORT_RO.

Lookups follow ``lookupKey``'s flags: reads count keyspace hits/misses and
emit ``keymiss``; ``NOTOUCH`` reads (EXISTS, TYPE, TTL, SCAN TYPE, OBJECT)
leave the access clock alone; every lookup lazily expires the key first, so
its DEL joins the current unit before the command's own effect.

Everything here is written over the generic value protocol so later types
plug in without touching this file: ``keyspace.type_name(v)``, ``v.copy()``
(COPY), ``v.encoding()`` (OBJECT ENCODING), ``v.sort_elements()`` (SORT:
the elements in their natural order -- list order, zset rank order, set
iteration order, ascending for an intset as Redis walks it; a zset converts
itself to a skiplist there, as ``zsetConvert`` does), ``v.get(field)`` on hashes (SORT BY/GET ``*->f``) and
:data:`LIST_FACTORY` to build the list SORT ... STORE writes.

SCAN cursors.  Python dicts expose no buckets, so SCAN cannot use Redis's
reverse-binary walk over the hash table.  Instead ``SCAN 0`` takes a
snapshot of the db's key list (``list(db.data)``: one C-level copy), and
the cursor is ``snapshot_id << 32 | position``.  Each call returns the
still-existing keys of the next COUNT positions, so:

* every key present for the whole iteration is in the snapshot and is
  returned exactly once; keys added meanwhile may or may not be (they are
  not), deleted ones are skipped -- Redis's guarantees;
* on an unchanged keyspace the iteration is deterministic: the same batches
  in the same order each time, and re-sending a cursor repeats its batch;
* a db with at most COUNT keys answers in one call with cursor 0, as Redis
  does for small tables, and keeps no snapshot.

Open snapshots are bounded (:data:`SCAN_MAX_SNAPSHOTS`, and their total
length); a cursor whose snapshot was evicted, finished, flushed, swapped
away or never existed restarts from a fresh snapshot: keys may then be
returned twice, which SCAN allows, and none present throughout is missed.
"""

from __future__ import annotations

import math
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..args import ERR_NOT_INT, ERR_SYNTAX
from ..client import Client
from ..keyspace import STR_UNENCODED, STR_UNSHARED, WRONGTYPE, Db, type_name
from ..protocol import string2ll
from ..registry import command
from ..reply import OK, Err, Status
from .help import help_reply
from .strings import string_encoding
from .transactions import exec_holds

NOTIFY_GENERIC = 1 << 2
NOTIFY_LIST = 1 << 4
NOTIFY_KEY_MISS = 1 << 11

ERR_NO_SUCH_KEY = Err("ERR no such key")
ERR_SAME_OBJECT = Err("ERR source and destination objects are the same")
ERR_DB_RANGE = Err("ERR DB index is out of range")
ERR_INVALID_CURSOR = Err("ERR invalid cursor")

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
OBJ_SHARED_INTEGERS = 10000
OBJ_SHARED_REFCOUNT = INT_MAX

# SORT ... STORE builds a list value with this constructor (elements in
# order -> list value); the list type sets it when it is loaded.
LIST_FACTORY: Callable[[list[bytes]], Any] | None = None


# -- lookups ----------------------------------------------------------------------


def notify(srv: Any, cls: int, event: bytes, key: bytes, dbid: int) -> None:
    """notifyKeyspaceEvent, skipped cheaply when notifications are off."""
    if srv.cfg.notify_keyspace_events:
        srv.notify(cls, event, key, dbid)


def lookup_read(db: Db, key: bytes) -> Any:
    """lookupKeyRead: stats, access clock, lazy expiry and ``keymiss``."""
    return db.lookup_read(key)


def lookup_read_notouch(db: Db, key: bytes, keymiss: bool = True) -> Any:
    """lookupKeyReadWithFlags(LOOKUP_NOTOUCH [| LOOKUP_NONOTIFY]): counts
    hits/misses and lazily expires, but leaves the access clock alone."""
    srv = db.srv
    v = db.data.get(key)
    if v is not None and key in db.expires and db.expire_if_needed(key):
        v = None
    if v is None:
        srv.stat_keyspace_misses += 1
        if keymiss:
            notify(srv, NOTIFY_KEY_MISS, b"keymiss", key, db.id)
        return None
    srv.stat_keyspace_hits += 1
    return v


def _signal_ready(db: Db, key: bytes) -> None:
    """signalKeyAsReady for dbAdd-like paths (clients blocked on ``key``)."""
    hook = getattr(db.srv, "signal_key_as_ready", None)
    if hook is not None:
        hook(db, key)


def _no_wrap_if_direct(srv: Any) -> None:
    """Commands flagged "touches arbitrary keys" (SCAN, RANDOMKEY) executed
    directly emit their lazy-expiry DELs without a MULTI/EXEC wrapper."""
    prop = srv.propagator
    if prop.depth == 1 and prop.pending:
        prop.no_wrap = True


def _get_int(arg: bytes, msg: str | None = None) -> int:
    """getIntFromObjectOrReply: an int32, with Redis's two error texts."""
    v = string2ll(arg)
    if v is None:
        raise Err(msg) if msg else ERR_NOT_INT
    if v < INT_MIN or v > INT_MAX:
        raise Err(msg) if msg else Err(
            "ERR value is out of range, value must between -2147483648 and 2147483647"
        )
    return v


def _get_long(arg: bytes) -> int:
    """getLongFromObjectOrReply (long is 64-bit)."""
    v = string2ll(arg)
    if v is None:
        raise ERR_NOT_INT
    return v


def _select(c: Client, dbid: int) -> Db:
    """selectDb's range check."""
    dbs = c.srv.dbs
    if dbid < 0 or dbid >= len(dbs):
        raise ERR_DB_RANGE
    return dbs[dbid]


def _cstr(b: bytes) -> bytes:
    """What C string functions (strchr, strcasecmp...) see of an sds."""
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def _dup_value(v: Any) -> Any:
    """COPY's per-type duplicate (dupStringObject, listTypeDup, ...)."""
    t = type(v)
    if t is bytes:
        # immutable, but a distinct object as dupStringObject makes one (an
        # EXEC's argv references tell OBJECT REFCOUNT apart, value_refcount)
        return bytes(memoryview(v))
    if t is bytearray:
        return bytearray(v)  # stays raw, as dupStringObject keeps RAW
    if t is int:
        return v  # int-encoded; see COPY for its refcount
    dup = getattr(v, "copy", None)
    if dup is None:
        raise Err("ERR unknown type object")
    return dup()


# -- DEL / UNLINK / EXISTS / TYPE / TOUCH -------------------------------------------


def _del_generic(c: Client, argv: list[bytes]) -> int:
    """delGenericCommand: expire first (its DEL is recorded), then delete."""
    db = c.db
    srv = c.srv
    expires = db.expires
    n = 0
    for key in argv[1:]:
        if key in expires:
            db.expire_if_needed(key)
        if db.delete(key):
            notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
            srv.dirty += 1
            n += 1
    return n


@command("del")
def del_(c: Client, argv: list[bytes]) -> Any:
    """DEL key [key ...]: number of keys removed."""
    return _del_generic(c, argv)


@command("unlink")
def unlink(c: Client, argv: list[bytes]) -> Any:
    """UNLINK key [key ...]: DEL whose freeing happens in the background in
    Redis; here the same, and propagated as UNLINK."""
    return _del_generic(c, argv)


@command("exists")
def exists(c: Client, argv: list[bytes]) -> Any:
    """EXISTS key [key ...]: a key named twice counts twice."""
    db = c.db
    n = 0
    for key in argv[1:]:
        if lookup_read_notouch(db, key) is not None:
            n += 1
    return n


@command("type")
def type_(c: Client, argv: list[bytes]) -> Any:
    """TYPE key: status reply, ``none`` when missing."""
    v = lookup_read_notouch(c.db, argv[1])
    return Status(b"none" if v is None else type_name(v))


@command("touch")
def touch(c: Client, argv: list[bytes]) -> Any:
    """TOUCH key [key ...]: a normal read of each key (updates the access clock)."""
    db = c.db
    n = 0
    for key in argv[1:]:
        if lookup_read(db, key) is not None:
            n += 1
    return n


# -- RENAME / COPY / MOVE / SWAPDB --------------------------------------------------


def _rename_generic(c: Client, argv: list[bytes], nx: bool) -> Any:
    """renameGenericCommand: the value object (and its access clock / LFU
    counter) moves to the new name with its TTL; an existing target is
    deleted first; events new, rename_from, rename_to."""
    db = c.db
    src, dst = argv[1], argv[2]
    v = db.lookup_write(src)
    if v is None:
        raise ERR_NO_SUCH_KEY
    if src == dst:
        return 0 if nx else OK
    when = db.get_expire(src)
    acc = db.access.get(src)
    mark = db.strobj.get(src)
    if db.lookup_write(dst) is not None:
        if nx:
            return 0
        db.delete(dst, signal=False)
    db.add(dst, v, signal=False)
    if when != -1:
        db.set_expire(dst, when)
    db.delete(src)  # signalModifiedKey(src), then dst
    if db.watched:
        db.signal_modified(dst)
    if acc is not None:
        db.access[dst] = acc
    if mark:
        db.strobj[dst] = mark
    srv = c.srv
    dbid = db.id
    _signal_ready(db, dst)
    notify(srv, NOTIFY_GENERIC, b"rename_from", src, dbid)
    notify(srv, NOTIFY_GENERIC, b"rename_to", dst, dbid)
    srv.dirty += 1
    return 1 if nx else OK


@command("rename")
def rename(c: Client, argv: list[bytes]) -> Any:
    """RENAME key newkey."""
    return _rename_generic(c, argv, False)


@command("renamenx")
def renamenx(c: Client, argv: list[bytes]) -> Any:
    """RENAMENX key newkey: 0 when newkey exists."""
    return _rename_generic(c, argv, True)


@command("copy")
def copy(c: Client, argv: list[bytes]) -> Any:
    """COPY source destination [DB db] [REPLACE] (copyCommand): a duplicate
    value with the source's TTL; events new, copy_to in the target db."""
    src = dst = c.db
    replace = False
    j = 3
    n = len(argv)
    while j < n:
        opt = argv[j].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and n - j - 1 >= 1:
            dst = _select(c, _get_int(argv[j + 1]))
            j += 1
        else:
            raise ERR_SYNTAX
        j += 1
    key, newkey = argv[1], argv[2]
    if src is dst and key == newkey:
        raise ERR_SAME_OBJECT
    v = lookup_read(src, key)
    if v is None:
        return 0
    when = src.get_expire(key)
    delete = False
    if dst.lookup_write(newkey) is not None:
        if not replace:
            return 0
        delete = True
    newv = _dup_value(v)
    if delete:
        dst.delete(newkey)
    dst.add(newkey, newv)
    if when != -1:
        dst.set_expire(newkey, when)
    mark = src.strobj.get(key)
    if mark:  # dupStringObject keeps the encoding
        dst.strobj[newkey] = mark
    elif (type(newv) is bytes or type(newv) is int) and shared_integer(c.srv, newv):
        dst.strobj[newkey] = STR_UNSHARED  # ... in an object of its own
    dst.signal_modified(newkey)
    srv = c.srv
    _signal_ready(dst, newkey)
    notify(srv, NOTIFY_GENERIC, b"copy_to", newkey, dst.id)
    srv.dirty += 1
    return 1


@command("move")
def move(c: Client, argv: list[bytes]) -> Any:
    """MOVE key db (moveCommand): 0 when missing or already in the target."""
    src = c.db
    dst = _select(c, _get_int(argv[2]))
    if src is dst:
        raise ERR_SAME_OBJECT
    key = argv[1]
    v = src.lookup_write(key)
    if v is None:
        return 0
    when = src.get_expire(key)
    if dst.lookup_write(key) is not None:
        return 0
    acc = src.access.get(key)
    dst.add(key, v)
    if when != -1:
        dst.set_expire(key, when)
    if acc is not None:
        dst.access[key] = acc
    mark = src.strobj.get(key)
    if mark:
        dst.strobj[key] = mark
    src.delete(key)
    srv = c.srv
    _signal_ready(dst, key)
    notify(srv, NOTIFY_GENERIC, b"move_from", key, src.id)
    notify(srv, NOTIFY_GENERIC, b"move_to", key, dst.id)
    srv.dirty += 1
    return 1


def _touch_watched_swap(emptied: Db, replaced_with: Db) -> None:
    """touchAllWatchedKeysInDb(emptied, replaced_with): a WATCHed key of
    ``emptied`` that exists on either side of the swap is touched, except
    where the change is no logical change: a key already expired when
    WATCHed that is now gone or still expired, or a missing key replaced
    by an expired one (then flagged as expired when WATCHed)."""
    for key, clients in emptied.watched.items():
        exists = key in emptied.data
        incoming = key in replaced_with.data
        if not (exists or incoming):
            continue
        for cl, was_expired in clients.items():
            if was_expired:
                if not incoming:
                    clients[cl] = False
                    continue
                if replaced_with.is_expired(key):
                    continue
            elif not exists and replaced_with.is_expired(key):
                clients[cl] = True
                continue
            cl.dirty_cas = True


def swap_databases(srv: Any, id1: int, id2: int) -> None:
    """dbSwapDatabases: the contents move, the Db objects (and so clients'
    selected db, WATCHed keys and blocked keys) stay."""
    if id1 == id2:
        return
    a, b = srv.dbs[id1], srv.dbs[id2]
    _touch_watched_swap(a, b)
    _touch_watched_swap(b, a)
    a.data, b.data = b.data, a.data
    a.expires, b.expires = b.expires, a.expires
    a.access, b.access = b.access, a.access
    a.strobj, b.strobj = b.strobj, a.strobj
    a.avg_ttl, b.avg_ttl = b.avg_ttl, a.avg_ttl
    a.expires_cursor, b.expires_cursor = b.expires_cursor, a.expires_cursor
    _scan_state(srv).forget_db(id1, id2)
    hook = getattr(srv, "scan_database_for_ready_keys", None)
    if hook is not None:  # clients blocked on keys that now exist get served
        hook(a)
        hook(b)


@command("swapdb")
def swapdb(c: Client, argv: list[bytes]) -> Any:
    """SWAPDB index1 index2."""
    id1 = _get_int(argv[1], "ERR invalid first DB index")
    id2 = _get_int(argv[2], "ERR invalid second DB index")
    n = len(c.srv.dbs)
    if id1 < 0 or id1 >= n or id2 < 0 or id2 >= n:
        raise ERR_DB_RANGE
    swap_databases(c.srv, id1, id2)
    c.srv.dirty += 1
    return OK


# -- KEYS / SCAN / RANDOMKEY / DBSIZE -------------------------------------------------


def _matcher(pattern: bytes) -> Callable[[bytes], bool] | None:
    """None for ``*`` (match everything, even the empty key), else the glob."""
    from ..util import compile_pattern, is_match_all

    if is_match_all(pattern):
        return None
    return compile_pattern(pattern)


@command("keys")
def keys(c: Client, argv: list[bytes]) -> Any:
    """KEYS pattern: logically expired keys are hidden, not deleted
    (keyIsExpired: expired when now > when; never while loading)."""
    db = c.db
    srv = c.srv
    match = _matcher(argv[1])
    expires = db.expires
    check_ttl = bool(expires) and not srv.loading
    now = srv.now_ms
    found = list(db.data) if match is None else [k for k in db.data if match(k)]
    if not check_ttl:
        return found
    get = expires.get
    return [k for k in found if (when := get(k)) is None or now <= when]


SCAN_DEFAULT_COUNT = 10
SCAN_MAX_SNAPSHOTS = 64
SCAN_SNAPSHOT_SLACK = 1 << 20  # entries allowed beyond 2x the keyspace
_ULONG_MAX = (1 << 64) - 1
_C_SPACE = b" \t\n\v\f\r"


class _ScanState:
    """A server's open SCAN snapshots: id -> (db id, key list), LRU ordered."""

    __slots__ = ("snaps", "next_id", "total")

    def __init__(self) -> None:
        self.snaps: OrderedDict[int, tuple[int, list[bytes]]] = OrderedDict()
        self.next_id = 1
        self.total = 0

    def open(self, srv: Any, dbid: int, keys: list[bytes]) -> int:
        sid = self.next_id
        self.next_id = sid + 1 if sid < INT_MAX else 1
        self.snaps[sid] = (dbid, keys)
        self.total += len(keys)
        budget = 2 * sum(len(d.data) for d in srv.dbs) + SCAN_SNAPSHOT_SLACK
        while len(self.snaps) > 1 and (len(self.snaps) > SCAN_MAX_SNAPSHOTS or self.total > budget):
            _, (_, old) = self.snaps.popitem(last=False)
            self.total -= len(old)
        return sid

    def get(self, sid: int, dbid: int) -> list[bytes] | None:
        ent = self.snaps.get(sid)
        if ent is None or ent[0] != dbid:
            return None
        self.snaps.move_to_end(sid)
        return ent[1]

    def close(self, sid: int) -> None:
        ent = self.snaps.pop(sid, None)
        if ent is not None:
            self.total -= len(ent[1])

    def forget_db(self, *dbids: int) -> None:
        """FLUSHDB/FLUSHALL/SWAPDB: free those dbs' snapshots (their cursors restart)."""
        for sid in [s for s, (d, _) in self.snaps.items() if d in dbids]:
            self.close(sid)


_SCAN_STATES: weakref.WeakKeyDictionary[Any, _ScanState] = weakref.WeakKeyDictionary()


def _scan_state(srv: Any) -> _ScanState:
    st = _SCAN_STATES.get(srv)
    if st is None:
        st = _SCAN_STATES[srv] = _ScanState()
    return st


def parse_scan_cursor(arg: bytes) -> int:
    """parseScanCursorOrReply: C ``strtoul`` on the string (so ``+5``, ``-1``
    and ``""`` are accepted), refusing a leading space, trailing bytes and
    overflow."""
    s = _cstr(arg)
    if s[:1] and s[0] in _C_SPACE:
        raise ERR_INVALID_CURSOR
    body = s
    neg = False
    if body[:1] in (b"+", b"-"):
        neg = body[:1] == b"-"
        body = body[1:]
    if not body:
        if s:  # a sign alone: no conversion, end points at the sign
            raise ERR_INVALID_CURSOR
        return 0
    if not body.isdigit():
        raise ERR_INVALID_CURSOR
    v = int(body)
    if v > _ULONG_MAX:
        raise ERR_INVALID_CURSOR
    return (-v) & _ULONG_MAX if neg else v


def _scan_filter(c: Client, db: Db, batch: list[bytes], pat: bytes | None, typename: bytes | None) -> list[bytes]:
    """scanGenericCommand's filters in Redis's order: pattern, TYPE (a
    NOTOUCH read: counts stats, may lazily expire), then expiry."""
    match = _matcher(pat) if pat is not None else None
    want = _cstr(typename).lower() if typename is not None else None
    data = db.data
    expires = db.expires
    out = []
    for key in batch:
        if key not in data:
            continue
        if match is not None and not match(key):
            continue
        if want is not None:
            v = lookup_read_notouch(db, key)
            if (b"none" if v is None else type_name(v)) != want:
                continue
        if key in expires and db.expire_if_needed(key):
            continue
        out.append(key)
    return out


@command("scan")
def scan(c: Client, argv: list[bytes]) -> Any:
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] (see the module
    doc for the cursor scheme)."""
    cursor = parse_scan_cursor(argv[1])
    count = SCAN_DEFAULT_COUNT
    pat: bytes | None = None
    typename: bytes | None = None
    i = 2
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"count" and n - i >= 2:
            count = _get_long(argv[i + 1])
            if count < 1:
                raise ERR_SYNTAX
            i += 2
        elif opt == b"match" and n - i >= 2:
            pat = argv[i + 1]
            i += 2
        elif opt == b"type" and n - i >= 2:
            typename = argv[i + 1]
            i += 2
        else:
            raise ERR_SYNTAX
    srv = c.srv
    db = c.db
    st = _scan_state(srv)
    snap: list[bytes] | None = None
    sid = 0
    pos = 0
    if cursor:
        sid, pos = cursor >> 32, cursor & 0xFFFFFFFF
        snap = st.get(sid, db.id)
    if snap is None:
        # SCAN 0, or a cursor whose snapshot is gone: start over.
        pos = 0
        if len(db.data) <= count:
            out = _scan_filter(c, db, list(db.data), pat, typename)
            _no_wrap_if_direct(srv)
            return [b"0", out]
        snap = list(db.data)
        sid = st.open(srv, db.id, snap)
    end = pos + count
    batch = snap[pos:end]
    if end >= len(snap):
        st.close(sid)
        nxt = 0
    else:
        nxt = (sid << 32) | end
    out = _scan_filter(c, db, batch, pat, typename)
    _no_wrap_if_direct(srv)
    return [b"%d" % nxt, out]


@command("randomkey")
def randomkey(c: Client, argv: list[bytes]) -> Any:
    """RANDOMKEY: a random live key (expired picks are deleted), or null."""
    key = c.db.random_key()
    _no_wrap_if_direct(c.srv)
    return key


@command("dbsize")
def dbsize(c: Client, argv: list[bytes]) -> Any:
    """DBSIZE: keys in the db, including logically expired ones not yet removed."""
    return len(c.db.data)


# -- FLUSHDB / FLUSHALL --------------------------------------------------------------


def _flush_flags(argv: list[bytes]) -> None:
    """getFlushCommandFlags: an optional ASYNC or SYNC, nothing else."""
    if len(argv) == 2:
        if argv[1].lower() not in (b"sync", b"async"):
            raise ERR_SYNTAX
    elif len(argv) > 2:
        raise ERR_SYNTAX


def _empty_db(srv: Any, dbid: int) -> int:
    """emptyData for one db (-1: all): WATCHed keys that exist are touched
    (signalFlushedDb, done by Db.clear: once, as a second pass would dirty
    the watchers of an already-expired key whose flag the first cleared),
    open SCAN snapshots are freed and every tracking client is told that
    all its keys are invalid; returns the number of keys removed."""
    dbs = srv.dbs if dbid < 0 else [srv.dbs[dbid]]
    removed = 0
    for db in dbs:
        removed += db.clear()
    _scan_state(srv).forget_db(*[db.id for db in dbs])
    if srv.tracking is not None:  # signalFlushedDb -> trackingInvalidateKeysOnFlush
        srv.tracking.invalidate_on_flush()
    return removed


@command("flushdb")
def flushdb(c: Client, argv: list[bytes]) -> Any:
    """FLUSHDB [ASYNC|SYNC]: dirty grows by the keys removed; always
    propagated verbatim (forceCommandPropagation), even on an empty db."""
    _flush_flags(argv)
    srv = c.srv
    srv.dirty += _empty_db(srv, c.db.id)
    c.prevent_prop = True
    srv.propagator.add(c.db.id, list(argv))
    return OK


@command("flushall")
def flushall(c: Client, argv: list[bytes]) -> Any:
    """FLUSHALL [ASYNC|SYNC] (flushAllDataAndResetRDB, 7.0.15): dirty grows
    by the keys removed; the persistence layer's ``after_flushall`` hook
    stops a saving child and, with save points configured, saves an RDB
    right away -- a successful save resets dirty, as rdbSave does (checked
    against redis-server: INFO rdb_changes_since_last_save is 0 after it).
    Always propagated verbatim (forceCommandPropagation)."""
    _flush_flags(argv)
    srv = c.srv
    srv.dirty += _empty_db(srv, -1)
    hook = getattr(srv, "after_flushall", None)
    if hook is not None:
        hook()  # server/rdb.py: kill the RDB child, save when save points exist
    c.prevent_prop = True
    srv.propagator.add(c.db.id, list(argv))
    return OK


# -- OBJECT ---------------------------------------------------------------------------

_OBJECT_HELP = [
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
]

_LFU_SELECTED = (
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching "
    "between policies at runtime LRU and LFU data will take some time to adjust."
)
_LFU_NOT_SELECTED = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)


def _policy(srv: Any) -> str:
    from .introspection import maxmemory_policy

    return maxmemory_policy(srv)


def lfu_policy(srv: Any) -> bool:
    """MAXMEMORY_FLAG_LFU: volatile-lfu / allkeys-lfu."""
    return _policy(srv).endswith("-lfu")


def _shared_integers_allowed(srv: Any) -> bool:
    """MAXMEMORY_FLAG_NO_SHARED_INTEGERS: with maxmemory and an LRU/LFU
    policy, values do not share the 0..9999 integer objects."""
    return not (srv.cfg.maxmemory and _policy(srv).endswith(("-lru", "-lfu")))


def shared_integer(srv: Any, v: bytes | int) -> bool:
    """tryObjectEncoding (or a counter command, for an ``int``) would store
    ``v`` as one of the shared 0..9999 integer objects."""
    if type(v) is int:
        return 0 <= v < OBJ_SHARED_INTEGERS and _shared_integers_allowed(srv)
    if len(v) > 4 or not _shared_integers_allowed(srv):
        return False
    n = string2ll(v)
    return n is not None and 0 <= n < OBJ_SHARED_INTEGERS


def object_encoding(v: Any, unencoded: bool = False) -> bytes:
    """strEncoding(o->encoding) for any value; ``unencoded``: the key is in
    marked ``STR_UNENCODED`` (see :func:`strings.string_encoding`)."""
    t = type(v)
    if t is bytes or t is bytearray or t is int:
        return string_encoding(v, unencoded)
    enc = getattr(v, "encoding", None)
    if enc is None:
        raise Err("ERR unknown type object")
    e = enc() if callable(enc) else enc
    return e.encode() if isinstance(e, str) else bytes(e)


def _object_lookup(c: Client, key: bytes) -> Any:
    """objectCommandLookup: NOTOUCH | NONOTIFY (stats are still counted)."""
    return lookup_read_notouch(c.db, key, keymiss=False)


@command("object|help")
def object_help(c: Client, argv: list[bytes]) -> Any:
    """OBJECT HELP."""
    return help_reply(argv[0].upper().decode("utf-8", "replace"), _OBJECT_HELP)


@command("object|encoding")
def object_enc(c: Client, argv: list[bytes]) -> Any:
    """OBJECT ENCODING key: null when missing."""
    key = argv[2]
    v = _object_lookup(c, key)
    return None if v is None else object_encoding(v, c.db.strobj.get(key) == STR_UNENCODED)


def value_refcount(c: Client, key: bytes, v: Any) -> int:
    """o->refcount as OBJECT REFCOUNT and DEBUG OBJECT show it: INT_MAX for
    the shared 0..9999 integers; 2 for a string an EXEC stored from one of
    its queued arguments (the transaction's argv keeps a reference until it
    ends, e.g. ``MULTI, SET k v, OBJECT REFCOUNT k, EXEC``); else 1."""
    t = type(v)
    if t is not bytes and t is not int:
        return 1
    if key not in c.db.strobj and shared_integer(c.srv, v):
        return OBJ_SHARED_REFCOUNT
    return 2 if t is bytes and exec_holds(c, key, v) else 1


@command("object|refcount")
def object_refcount(c: Client, argv: list[bytes]) -> Any:
    """OBJECT REFCOUNT key: see :func:`value_refcount`."""
    v = _object_lookup(c, argv[2])
    if v is None:
        return None
    return value_refcount(c, argv[2], v)


@command("object|idletime")
def object_idletime(c: Client, argv: list[bytes]) -> Any:
    """OBJECT IDLETIME key: seconds since the last access (LRU clock)."""
    key = argv[2]
    v = _object_lookup(c, key)
    if v is None:
        return None
    srv = c.srv
    if lfu_policy(srv):
        raise Err(_LFU_SELECTED)
    now = srv.lru_clock
    return max(0, now - c.db.access.get(key, now))


@command("object|freq")
def object_freq(c: Client, argv: list[bytes]) -> Any:
    """OBJECT FREQ key: the LFU counter; an error unless an LFU policy is set."""
    key = argv[2]
    v = _object_lookup(c, key)
    if v is None:
        return None
    srv = c.srv
    if not lfu_policy(srv):
        raise Err(_LFU_NOT_SELECTED)
    from .introspection import lfu_decr_and_return

    return lfu_decr_and_return(srv, c.db.access.get(key))


# -- SORT / SORT_RO -------------------------------------------------------------------

_STRTOD_RE = re.compile(
    rb"[ \t\n\v\f\r]*[+-]?(?:"
    rb"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?"
    rb"|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?"
    rb")"
)
_DBL_MIN = 2.2250738585072014e-308


def sort_strtod(b: bytes) -> float | None:
    """SORT's numeric weight: ``strtod`` on the C string, an error (None)
    unless it consumed everything, on ERANGE and on NaN.  Nothing
    convertible at all leaves the end at the start, so ``""`` weighs 0."""
    s = _cstr(b)
    m = _STRTOD_RE.match(s)
    if m is None:
        return 0.0 if not s else None
    if m.end() != len(s):
        return None
    text = m.group().strip(_C_SPACE)
    body = text.lstrip(b"+-")
    low = body.lower()
    if low.startswith(b"nan"):
        return None
    if low.startswith(b"inf"):
        return -math.inf if text[:1] == b"-" else math.inf
    try:
        v = float.fromhex(text.decode()) if low.startswith(b"0x") else float(text)
    except (ValueError, OverflowError):
        return None  # hex overflow
    if math.isinf(v):
        return None  # ERANGE overflow
    if v == 0.0:
        mant = low[2:] if low.startswith(b"0x") else low
        cut = mant.find(b"p" if low.startswith(b"0x") else b"e")
        if cut >= 0:
            mant = mant[:cut]
        if mant.strip(b"0."):
            return None  # ERANGE underflow to zero
    elif abs(v) < _DBL_MIN and not (low.startswith(b"0x") and _hex_exact(body, v)):
        return None  # ERANGE: an inexact subnormal result
    return v


def _hex_exact(body: bytes, v: float) -> bool:
    """True when the (unsigned) hex float literal ``body`` equals ``v`` exactly."""
    from fractions import Fraction

    digits = body[2:].lower()
    exp = 0
    if b"p" in digits:
        digits, e = digits.split(b"p", 1)
        exp = int(e)
    intpart, _, frac = digits.partition(b".")
    mant = int((intpart + frac) or b"0", 16)
    exact = Fraction(mant) * Fraction(2) ** (exp - 4 * len(frac))
    return exact == Fraction(abs(v))


def _hash_field(h: Any, field: bytes) -> bytes | None:
    """hashTypeGetValueObject through the hash value's ``get``."""
    v = h.get(field)
    if v is None or type(v) is bytes:
        return v
    if isinstance(v, int):
        return b"%d" % v
    return bytes(v)


def lookup_key_by_pattern(db: Db, pattern: bytes, subst: bytes) -> bytes | None:
    """lookupKeyByPattern: ``#`` is the element itself; the first ``*`` is
    replaced by the element; ``key->field`` reads a hash field; a pattern
    without ``*`` yields nothing.  The key is read with lookupKeyRead."""
    if pattern[:1] == b"#" and (len(pattern) == 1 or pattern[1] == 0):
        return subst
    nul = pattern.find(b"\0")
    climit = len(pattern) if nul < 0 else nul
    p = pattern.find(b"*", 0, climit)
    if p < 0:
        return None
    f = pattern.find(b"->", p + 1, climit)
    if f >= 0 and f + 2 < climit:
        fieldlen = len(pattern) - f - 2
        field = pattern[f + 2 :]
    else:
        fieldlen = 0
        field = b""
    postfixlen = len(pattern) - (p + 1) - (fieldlen + 2 if fieldlen else 0)
    key = pattern[:p] + subst + pattern[p + 1 : p + 1 + postfixlen]
    o = lookup_read(db, key)
    if o is None:
        return None
    if fieldlen:
        if type_name(o) != b"hash":
            return None
        return _hash_field(o, field)
    t = type(o)
    if t is bytes:
        return o
    if t is bytearray:
        return bytes(o)
    if t is int:
        return b"%d" % o
    return None


def _wrap64(v: int) -> int:
    """C ``long`` arithmetic wrap-around."""
    return ((v + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)


def _sort_getkeys(argv: list[bytes]) -> list[int]:
    """sortGetKeys: the sorted key, plus the last STORE target (options
    LIMIT/GET/BY skip their arguments)."""
    keys = [1]
    store = -1
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    n = len(argv)
    while i < n:
        a = argv[i].lower()
        if a in skip:
            i += skip[a]
        elif a == b"store" and i + 1 < n:
            store = i + 1
        i += 1
    if store > 0:
        keys.append(store)
    return keys


def _sort_generic(c: Client, argv: list[bytes], readonly: bool) -> Any:
    """sortCommandGeneric (see the module doc for the value protocol)."""
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby: bytes | None = None
    storekey: bytes | None = None
    gets: list[bytes] = []
    # BY and GET patterns read arbitrary keys: only for users who may read
    # every key (Redis checks ACLUserCheckKeyPerm on "*" patterns).
    acl = c.srv.acl
    full_key_access = acl is None or c.cmd is None or acl.unrestricted_key_access(c, c.cmd, argv)
    j = 2
    n = len(argv)
    while j < n:
        opt = argv[j].lower()
        left = n - j - 1
        if opt == b"asc":
            desc = False
        elif opt == b"desc":
            desc = True
        elif opt == b"alpha":
            alpha = True
        elif opt == b"limit" and left >= 2:
            limit_start = _get_long(argv[j + 1])
            limit_count = _get_long(argv[j + 2])
            j += 2
        elif not readonly and opt == b"store" and left >= 1:
            storekey = argv[j + 1]
            j += 1
        elif opt == b"by" and left >= 1:
            sortby = argv[j + 1]
            if b"*" not in _cstr(sortby):
                dontsort = True
            elif not full_key_access:
                raise Err("ERR BY option of SORT denied due to insufficient ACL permissions.")
            j += 1
        elif opt == b"get" and left >= 1:
            if not full_key_access:
                raise Err("ERR GET option of SORT denied due to insufficient ACL permissions.")
            gets.append(argv[j + 1])
            j += 1
        else:
            raise ERR_SYNTAX
        j += 1

    db = c.db
    sortval = lookup_read(db, argv[1])
    if sortval is not None:
        vtype = type_name(sortval)
        if vtype not in (b"list", b"set", b"zset"):
            raise WRONGTYPE
        elements: list[bytes] = list(sortval.sort_elements())
    else:
        vtype = b"list"
        elements = []

    # A set has no order of its own: with STORE or from a script the output
    # must be the same on replicas, so "don't sort" becomes ALPHA.
    if dontsort and vtype == b"set" and (storekey is not None or c.fake):
        dontsort = False
        alpha = True
        sortby = None

    vectorlen = len(elements)
    start = limit_start if limit_start > 0 else 0
    end = vectorlen - 1 if limit_count < 0 else _wrap64(start + limit_count - 1)
    if start >= vectorlen:
        start = vectorlen - 1
        end = vectorlen - 2
    if end >= vectorlen:
        end = vectorlen - 1

    if dontsort and vtype in (b"list", b"zset"):
        # Native order (reversed for DESC); LIMIT applied while loading.
        if end >= start:
            ordered = elements[::-1] if desc else elements
            vector = ordered[start : end + 1]
            end -= start
            start = 0
        elif vtype == b"zset":
            vector = []
            end -= start
            start = 0
        else:
            vector = []
    else:
        vector = elements

    conversion_error = False
    if not dontsort:
        store = storekey is not None
        if alpha:
            if sortby is not None:
                weights: list[Any] = []
                for obj in vector:
                    by = lookup_key_by_pattern(db, sortby, obj)
                    if by is None:
                        weights.append((0, b""))
                    else:
                        weights.append((1, by if store else _cstr(by)))
                order = sorted(range(len(vector)), key=weights.__getitem__, reverse=desc)
                vector = [vector[i] for i in order]
            elif store:
                vector = sorted(vector, reverse=desc)
            else:
                vector = sorted(vector, key=_cstr, reverse=desc)
        else:
            scored: list[tuple[float, bytes]] = []
            for obj in vector:
                if sortby is not None:
                    by = lookup_key_by_pattern(db, sortby, obj)
                    if by is None:
                        scored.append((0.0, obj))
                        continue
                else:
                    by = obj
                score = sort_strtod(by)
                if score is None:
                    conversion_error = True
                    score = 0.0
                scored.append((score, obj))
            scored.sort(reverse=desc)
            vector = [obj for _, obj in scored]

    if conversion_error:
        raise Err("ERR One or more scores can't be converted into double")
    count = end - start + 1 if end >= start else 0
    rows = vector[start : start + count]
    outputlen = len(gets) * count if gets else count

    if storekey is None:
        if not gets:
            return list(rows)
        out: list[Any] = []
        for obj in rows:
            for g in gets:
                out.append(lookup_key_by_pattern(db, g, obj))
        return out

    srv = c.srv
    if outputlen:
        stored: list[bytes] = []
        for obj in rows:
            if not gets:
                stored.append(obj)
                continue
            for g in gets:
                val = lookup_key_by_pattern(db, g, obj)
                stored.append(b"" if val is None else val)
        if LIST_FACTORY is None:
            raise Err("ERR SORT STORE needs the list type, which is not loaded")
        existed = db.lookup_write(storekey) is not None
        db.set_key(storekey, LIST_FACTORY(stored))
        if not existed:  # db.set_key emitted "new"
            _signal_ready(db, storekey)
        notify(srv, NOTIFY_LIST, b"sortstore", storekey, db.id)
        srv.dirty += outputlen
    elif db.delete(storekey):
        notify(srv, NOTIFY_GENERIC, b"del", storekey, db.id)
        srv.dirty += 1
    return outputlen


@command("sort", getkeys=_sort_getkeys)
def sort(c: Client, argv: list[bytes]) -> Any:
    """SORT key [BY pattern] [LIMIT offset count] [GET pattern ...]
    [ASC|DESC] [ALPHA] [STORE destination]."""
    return _sort_generic(c, argv, False)


@command("sort_ro")
def sort_ro(c: Client, argv: list[bytes]) -> Any:
    """SORT_RO: SORT without STORE."""
    return _sort_generic(c, argv, True)
