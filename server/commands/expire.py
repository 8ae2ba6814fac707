"""Key expiry (expire.c of Redis 7.0.15): EXPIRE PEXPIRE EXPIREAT PEXPIREAT
PERSIST TTL PTTL EXPIRETIME PEXPIRETIME, and the active expiry cycle.

Effects (spec/propagation.md §4-5):
* EXPIRE / PEXPIRE / EXPIREAT are recorded as ``PEXPIREAT k <abs ms>``
  followed by their NX/XX/GT/LT flags as typed; PEXPIREAT is recorded as
  typed;
* a resulting time already reached deletes the key at once and is recorded
  as ``DEL k`` (``UNLINK k`` with lazyfree-lazy-expire), with a ``del``
  event -- except on a replica or while loading, where the past time is
  stored and the primary's DEL awaited;
* nothing is recorded when nothing changed (missing key, failed condition).

Active expiry (activeExpireCycle, slow cycle, run by the cron at ``hz``):
per db, loops of up to 20 keys (scaled by active-expire-effort) sampled from
the keys with a TTL, repeated while more than 10% of a loop was expired,
within 25% of the cron period.  Python dicts have no buckets to scan, so the
sample walks a per-db snapshot of ``db.expires``'s keys (``list()``, one
C-level copy per full pass) from a saved position: each call costs O(keys
sampled), every key with a TTL is visited once per pass, and keys that got
their TTL after the snapshot are seen in the next pass.  Each expired key is
its own execution unit, so it reaches the AOF and replicas as a bare
DEL/UNLINK.  Never on a replica, while loading, while paused by CLIENT PAUSE
or with DEBUG SET-ACTIVE-EXPIRE 0.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from ..args import ERR_NOT_INT
from ..client import Client
from ..keyspace import Db
from ..protocol import string2ll
from ..registry import command
from ..reply import Err
from .keys import NOTIFY_GENERIC, lookup_read_notouch, notify

LLONG_MAX = (1 << 63) - 1
LLONG_MIN = -(1 << 63)

EXPIRE_NX = 1 << 0
EXPIRE_XX = 1 << 1
EXPIRE_GT = 1 << 2
EXPIRE_LT = 1 << 3
_FLAG_OF = {b"nx": EXPIRE_NX, b"xx": EXPIRE_XX, b"gt": EXPIRE_GT, b"lt": EXPIRE_LT}

ERR_NX_COMBO = Err("ERR NX and XX, GT or LT options at the same time are not compatible")
ERR_GT_LT = Err("ERR GT and LT options at the same time are not compatible")


def _ctrunc_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


_SEC_MAX = _ctrunc_div(LLONG_MAX, 1000)
_SEC_MIN = _ctrunc_div(LLONG_MIN, 1000)


def parse_expire_flags(argv: list[bytes]) -> int:
    """parseExtendedExpireArgumentsOrReply: NX|XX|GT|LT after the time."""
    flags = 0
    for opt in argv[3:]:
        f = _FLAG_OF.get(opt.lower())
        if f is None:
            raise Err(b"ERR Unsupported option " + opt.split(b"\0", 1)[0])
        flags |= f
    if flags & EXPIRE_NX and flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT):
        raise ERR_NX_COMBO
    if flags & EXPIRE_GT and flags & EXPIRE_LT:
        raise ERR_GT_LT
    return flags


def _invalid_expire_time(c: Client) -> Err:
    """addReplyErrorExpireTime."""
    name = c.cmd.fullname if c.cmd is not None else "expire"
    return Err(f"ERR invalid expire time in '{name}' command")


def expire_generic(c: Client, argv: list[bytes], basetime: int, seconds: bool, verbatim: bool) -> int:
    """expireGenericCommand: set (or, for a time already reached, apply) an
    absolute expire time in ms; ``verbatim`` for PEXPIREAT, which needs no
    rewrite."""
    flags = parse_expire_flags(argv) if len(argv) > 3 else 0
    when = string2ll(argv[2])
    if when is None:
        raise ERR_NOT_INT
    if seconds:
        if when > _SEC_MAX or when < _SEC_MIN:
            raise _invalid_expire_time(c)
        when *= 1000
    if when > LLONG_MAX - basetime:
        raise _invalid_expire_time(c)
    when += basetime
    db = c.db
    key = argv[1]
    if db.lookup_write(key) is None:
        return 0
    if flags:
        current = db.get_expire(key)
        if flags & EXPIRE_NX and current != -1:
            return 0
        if flags & EXPIRE_XX and current == -1:
            return 0
        if flags & EXPIRE_GT and (current == -1 or when <= current):
            return 0
        if flags & EXPIRE_LT and current != -1 and when >= current:
            return 0
    srv = c.srv
    if when <= srv.now_ms and not srv.loading and not srv.is_replica:
        db.delete(key)
        srv.dirty += 1
        c.prop_argv = [b"UNLINK" if srv.cfg.lazyfree_lazy_expire else b"DEL", key]
        notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
        return 1
    db.set_expire(key, when)
    if not verbatim:
        c.prop_argv = [b"PEXPIREAT", key, b"%d" % when, *argv[3:]]
    db.signal_modified(key)
    notify(srv, NOTIFY_GENERIC, b"expire", key, db.id)
    srv.dirty += 1
    return 1


@command("expire")
def expire(c: Client, argv: list[bytes]) -> Any:
    """EXPIRE key seconds [NX|XX|GT|LT]."""
    return expire_generic(c, argv, c.srv.now_ms, True, False)


@command("pexpire")
def pexpire(c: Client, argv: list[bytes]) -> Any:
    """PEXPIRE key milliseconds [NX|XX|GT|LT]."""
    return expire_generic(c, argv, c.srv.now_ms, False, False)


@command("expireat")
def expireat(c: Client, argv: list[bytes]) -> Any:
    """EXPIREAT key unix-time-seconds [NX|XX|GT|LT]."""
    return expire_generic(c, argv, 0, True, False)


@command("pexpireat")
def pexpireat(c: Client, argv: list[bytes]) -> Any:
    """PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]."""
    return expire_generic(c, argv, 0, False, True)


@command("persist")
def persist(c: Client, argv: list[bytes]) -> Any:
    """PERSIST key: 1 when a TTL was removed."""
    db = c.db
    key = argv[1]
    if db.lookup_write(key) is None or not db.remove_expire(key):
        return 0
    db.signal_modified(key)
    srv = c.srv
    notify(srv, NOTIFY_GENERIC, b"persist", key, db.id)
    srv.dirty += 1
    return 1


def _ttl_generic(c: Client, key: bytes, output_ms: bool, output_abs: bool) -> int:
    """ttlGenericCommand: -2 missing, -1 no TTL; seconds are rounded."""
    db = c.db
    if lookup_read_notouch(db, key) is None:
        return -2
    when = db.get_expire(key)
    if when == -1:
        return -1
    ttl = when if output_abs else when - c.srv.now_ms
    if ttl < 0:
        ttl = 0
    return ttl if output_ms else (ttl + 500) // 1000


@command("ttl")
def ttl(c: Client, argv: list[bytes]) -> Any:
    """TTL key."""
    return _ttl_generic(c, argv[1], False, False)


@command("pttl")
def pttl(c: Client, argv: list[bytes]) -> Any:
    """PTTL key."""
    return _ttl_generic(c, argv[1], True, False)


@command("expiretime")
def expiretime(c: Client, argv: list[bytes]) -> Any:
    """EXPIRETIME key: absolute unix time in seconds."""
    return _ttl_generic(c, argv[1], False, True)


@command("pexpiretime")
def pexpiretime(c: Client, argv: list[bytes]) -> Any:
    """PEXPIRETIME key: absolute unix time in ms."""
    return _ttl_generic(c, argv[1], True, True)


# -- active expiry ----------------------------------------------------------------------

ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP = 20
ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC = 25
ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE = 10
CRON_DBS_PER_CALL = 16


class _DbCursor:
    """Where the cycle is in one db: a snapshot of the TTL keys and a position."""

    __slots__ = ("source", "keys", "pos")

    def __init__(self) -> None:
        self.source = 0  # id() of the expires dict the snapshot was taken from
        self.keys: list[bytes] = []
        self.pos = 0


class _ExpireState:
    """activeExpireCycle's statics: next db, time-limit flag, per-db cursors."""

    __slots__ = ("current_db", "timelimit_exit", "cursors")

    def __init__(self) -> None:
        self.current_db = 0
        self.timelimit_exit = False
        self.cursors: dict[int, _DbCursor] = {}


_STATES: weakref.WeakKeyDictionary[Any, _ExpireState] = weakref.WeakKeyDictionary()


def _state(srv: Any) -> _ExpireState:
    st = _STATES.get(srv)
    if st is None:
        st = _STATES[srv] = _ExpireState()
    return st


def _expire_loop(srv: Any, db: Db, cur: _DbCursor, num: int, now: int) -> tuple[int, int, int, int]:
    """One sampling loop: up to ``num`` keys that still have a TTL, checking
    at most ``num * 20`` snapshot entries (stale ones cost little, like empty
    buckets).  Returns (sampled, expired, ttl_sum, ttl_samples)."""
    expires = db.expires
    if cur.source != id(expires):
        cur.source = id(expires)
        cur.keys = []
        cur.pos = 0
    keys = cur.keys
    pos = cur.pos
    prop = srv.propagator
    sampled = expired = ttl_sum = ttl_samples = checked = 0
    max_checks = num * 20
    fresh = False
    while sampled < num and checked < max_checks:
        if pos >= len(keys):
            if fresh:
                break  # a whole fresh pass found nothing more
            keys = cur.keys = list(expires)
            pos = 0
            fresh = True
            if not keys:
                break
        key = keys[pos]
        pos += 1
        checked += 1
        when = expires.get(key)
        if when is None:
            continue
        sampled += 1
        ttl = when - now
        if now > when:
            prop.begin_unit()
            try:
                db.delete_expired(key)
            finally:
                prop.end_unit()
            expired += 1
        elif ttl > 0:
            ttl_sum += ttl
            ttl_samples += 1
    cur.pos = pos
    return sampled, expired, ttl_sum, ttl_samples


def active_expire_cycle(srv: Any) -> None:
    """activeExpireCycle(ACTIVE_EXPIRE_CYCLE_SLOW), called from the cron."""
    if not srv.active_expire_enabled or srv.is_replica or srv.loading or srv.expire_paused():
        return
    cfg = srv.cfg
    effort = getattr(cfg, "active_expire_effort", 1) - 1
    keys_per_loop = ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP + ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP // 4 * effort
    time_perc = ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC + 2 * effort
    acceptable_stale = ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE - effort
    st = _state(srv)
    dbs = srv.dbs
    dbnum = len(dbs)
    dbs_per_call = dbnum if (CRON_DBS_PER_CALL > dbnum or st.timelimit_exit) else CRON_DBS_PER_CALL
    hz = getattr(srv, "hz", 0) or cfg.hz or 10
    start = time.perf_counter()
    timelimit = max(time_perc / 100 / hz, 1e-6)
    st.timelimit_exit = False
    total_sampled = total_expired = 0
    iteration = 0
    for _ in range(dbs_per_call):
        if st.timelimit_exit:
            break
        db = dbs[st.current_db % dbnum]
        st.current_db += 1
        cur = st.cursors.get(db.id)
        if cur is None:
            cur = st.cursors[db.id] = _DbCursor()
        while True:
            iteration += 1
            num = len(db.expires)
            if num == 0:
                db.avg_ttl = 0
                break
            now = int(time.time() * 1000)
            sampled, expired, ttl_sum, ttl_samples = _expire_loop(
                srv, db, cur, min(num, keys_per_loop), now
            )
            total_sampled += sampled
            total_expired += expired
            if ttl_samples:
                avg = ttl_sum // ttl_samples
                if db.avg_ttl == 0:
                    db.avg_ttl = avg
                db.avg_ttl = (db.avg_ttl // 50) * 49 + avg // 50
            # Python loops are slower than Redis's: check the clock every
            # loop rather than every 16.
            if time.perf_counter() - start > timelimit:
                st.timelimit_exit = True
                srv.stat_expired_time_cap_reached_count += 1
                break
            # Repeat while the loop found too many stale keys (or sampled
            # nothing: only deleted keys in that stretch of the snapshot).
            if sampled and expired * 100 // sampled <= acceptable_stale:
                break
    elapsed_us = int((time.perf_counter() - start) * 1_000_000)
    srv.stat_expire_cycle_time_used += elapsed_us
    perc = total_expired / total_sampled if total_sampled else 0.0
    srv.stat_expired_stale_perc = perc * 0.05 + srv.stat_expired_stale_perc * 0.95
