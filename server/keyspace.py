"""The keyspace: numbered databases of keys, their expires and access times.

Invariants (mirroring db.c / expire.c):
* a key with a TTL is in ``expires`` exactly while it is in ``data``;
* every change of a key goes through :meth:`Db.signal_modified` (directly or
  via :meth:`set_key` / :meth:`delete`) so WATCH and client-side caching
  see it; call sites may skip it while ``watched`` is empty, which is why
  ``watched`` also holds ``tracking.TRACKING_MARK`` (no key, no watchers)
  while any client tracks keys (server/tracking.py);
* lazy expiry deletes a logically expired key on access and records a DEL
  (or UNLINK with ``lazyfree-lazy-expire``) in the current execution unit,
  before the command's own effect; a replica never deletes on its own and
  only hides such keys from reads; nothing expires while loading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .reply import Err

if TYPE_CHECKING:
    from .core import Server

NOTIFY_KEY_MISS = 1 << 11
NOTIFY_NEW = 1 << 13  # notify-keyspace-events "n" (dbAdd's "new" event)

# Db.strobj marks
STR_UNENCODED = 1  # integer-looking text kept as embstr: INCRBYFLOAT's result
STR_UNSHARED = 2  # a 0..9999 integer in an object of its own (COPY's dupStringObject)

# Installed by commands.introspection: updateLFU on an access, and the stamp
# of a new object, used while ``srv.lfu`` (an LFU maxmemory-policy) is on;
# otherwise the access stamp is the LRU clock.
LFU_TOUCH: Any = None
LFU_INIT: Any = None

WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")

# Python type of a value -> Redis type name.  Later types register here.
TYPE_NAMES: dict[type, bytes] = {bytes: b"string", bytearray: b"string", int: b"string"}

# DEBUG DIGEST type codes.
TYPE_CODES: dict[bytes, int] = {
    b"string": 0,
    b"list": 1,
    b"set": 2,
    b"zset": 3,
    b"hash": 4,
    b"module": 5,
    b"stream": 6,
}


def type_name(v: Any) -> bytes:
    t = TYPE_NAMES.get(type(v))
    if t is not None:
        return t
    return getattr(v, "redis_type", b"none")


class Db:
    """One numbered database."""

    __slots__ = ("id", "data", "expires", "srv", "watched", "access", "avg_ttl", "expires_cursor", "strobj",
                 "blocking_keys", "ready_keys")

    def __init__(self, srv: Server, dbid: int) -> None:
        self.id = dbid
        self.srv = srv
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}
        # key -> {client WATCHing it: whether the key was already logically
        # expired when WATCHed (then its deletion is not a change)}
        self.watched: dict[bytes, dict[Any, bool]] = {}
        # key -> LRU clock (seconds) or LFU counter, as OBJECT IDLETIME/FREQ need
        self.access: dict[bytes, int] = {}
        # key -> STR_UNENCODED | STR_UNSHARED for the few string objects whose
        # text alone does not say how Redis holds them.  Only OBJECT
        # ENCODING/REFCOUNT, DEBUG OBJECT and MEMORY USAGE tell; storing any
        # value drops the mark (set_key/add/delete), RENAME/MOVE/COPY/SWAPDB
        # carry it.
        self.strobj: dict[bytes, int] = {}
        self.avg_ttl = 0
        self.expires_cursor = 0
        # blocking.py: key -> clients blocked on it (in blocking order), and
        # the keys already queued in ``srv.ready_keys``.  They stay with the
        # Db object (SWAPDB and FLUSH leave blocked clients where they are).
        self.blocking_keys: dict[bytes, dict[Any, None]] = {}
        self.ready_keys: set[bytes] = set()

    def __len__(self) -> int:
        return len(self.data)

    # -- expiry --------------------------------------------------------------

    def is_expired(self, key: bytes) -> bool:
        when = self.expires.get(key)
        if when is None:
            return False
        srv = self.srv
        if srv.loading:
            return False
        return when < srv.now_ms

    def expire_if_needed(self, key: bytes) -> bool:
        """True when ``key`` is logically expired (and deleted on a primary)."""
        when = self.expires.get(key)
        if when is None:
            return False
        srv = self.srv
        if srv.loading or when >= srv.now_ms:  # keyIsExpired: now > when
            return False
        if srv.is_replica and not srv.executing_primary_stream:
            # Replicas wait for their primary's DEL; the key is only hidden.
            return True
        if srv.expire_paused():
            return True
        self.delete_expired(key)
        return True

    def delete_expired(self, key: bytes) -> None:
        srv = self.srv
        trk = srv.tracking
        if trk is not None:  # client-side caching: invalidate after the event
            trk.hold = True
        self.delete(key)
        srv.stat_expiredkeys += 1
        srv.notify(srv.NOTIFY_EXPIRED, b"expired", key, self.id)
        if trk is not None:
            trk.deleted_by_server(key)
        lazy = srv.cfg.lazyfree_lazy_expire
        srv.propagator.add(self.id, [b"UNLINK" if lazy else b"DEL", key])

    # -- lookups -------------------------------------------------------------

    def lookup_read(self, key: bytes) -> Any:
        """The value for a read, or None (missing or expired); counts hits."""
        v = self.data.get(key)
        srv = self.srv
        if v is None or (key in self.expires and self.expire_if_needed(key)):
            srv.stat_keyspace_misses += 1
            if srv.cfg.notify_keyspace_events & NOTIFY_KEY_MISS:
                srv.notify(NOTIFY_KEY_MISS, b"keymiss", key, self.id)
            return None
        srv.stat_keyspace_hits += 1
        if srv.lfu:
            LFU_TOUCH(srv, self, key)
        else:
            self.access[key] = srv.lru_clock
        return v

    def lookup_write(self, key: bytes) -> Any:
        """The value for a write, or None; expired keys are deleted first."""
        v = self.data.get(key)
        if v is None:
            return None
        if key in self.expires and self.expire_if_needed(key):
            return None
        srv = self.srv
        if srv.lfu:
            LFU_TOUCH(srv, self, key)
        else:
            self.access[key] = srv.lru_clock
        return v

    def touch(self, key: bytes) -> None:
        """The access stamp update of a lookup (LRU clock, or updateLFU)."""
        srv = self.srv
        if srv.lfu:
            LFU_TOUCH(srv, self, key)
        else:
            self.access[key] = srv.lru_clock

    def lookup_nostat(self, key: bytes) -> Any:
        """Existence checks that must not touch stats or LRU (OBJECT, TYPE...)."""
        v = self.data.get(key)
        if v is None:
            return None
        if key in self.expires and self.expire_if_needed(key):
            return None
        return v

    def exists(self, key: bytes) -> bool:
        return self.lookup_nostat(key) is not None

    # -- changes -------------------------------------------------------------

    def signal_modified(self, key: bytes) -> None:
        """signalModifiedKey: invalidate transactions WATCHing ``key``
        (touchWatchedKey) and clients caching it (trackingInvalidateKey)."""
        w = self.watched.get(key)
        if w:
            for c, was_expired in w.items():
                if was_expired:
                    if key not in self.data:
                        # The already-expired key is now gone: no logical change.
                        w[c] = False
                        continue
                    w[c] = False
                c.dirty_cas = True
        trk = self.srv.tracking
        if trk is not None:
            trk.invalidate_key(key)

    def set_key(self, key: bytes, value: Any, keepttl: bool = False) -> None:
        """setKey: store, drop the TTL unless KEEPTTL, signal WATCH.  Clients
        blocked on the key are signalled both by dbAdd and (for XREADGROUP's
        sake, signalDeletedKeyAsReady) by dbOverwrite.  Under an LFU policy
        an overwritten key keeps its counter, as dbOverwrite does."""
        srv = self.srv
        data = self.data
        new = key not in data
        if new and srv.cfg.notify_keyspace_events & NOTIFY_NEW:
            data[key] = value
            srv.notify(NOTIFY_NEW, b"new", key, self.id)
        data[key] = value
        if self.blocking_keys and key in self.blocking_keys:
            from .blocking import signal_key_as_ready

            signal_key_as_ready(self, key)
        if not keepttl and self.expires:
            self.expires.pop(key, None)
        if self.strobj:
            self.strobj.pop(key, None)
        if not srv.lfu:
            self.access[key] = srv.lru_clock
        elif new:
            self.access[key] = LFU_INIT()
        if self.watched:
            self.signal_modified(key)

    def add(self, key: bytes, value: Any, signal: bool = True) -> None:
        """dbAdd: a new key (the caller has checked it is missing).  WATCH is
        signalled here for convenience (Redis's callers do it right after);
        ``signal=False`` for the one caller that does not: a bit command
        creating the key it then leaves unchanged (BITFIELD whose every write
        failed with OVERFLOW FAIL)."""
        self.data[key] = value
        if self.blocking_keys:  # signalKeyAsReady, as dbAdd does
            from .blocking import signal_key_as_ready

            signal_key_as_ready(self, key)
        srv = self.srv
        if srv.cfg.notify_keyspace_events & NOTIFY_NEW:
            srv.notify(NOTIFY_NEW, b"new", key, self.id)
        self.access[key] = LFU_INIT() if srv.lfu else srv.lru_clock
        if self.strobj:
            self.strobj.pop(key, None)
        if signal and self.watched:
            self.signal_modified(key)

    def delete(self, key: bytes, signal: bool = True) -> bool:
        """dbDelete, plus signalModifiedKey unless ``signal`` is False (the
        caller signals later, in Redis's order)."""
        if key not in self.data:
            return False
        del self.data[key]
        self.access.pop(key, None)
        if self.expires:
            self.expires.pop(key, None)
        if self.strobj:
            self.strobj.pop(key, None)
        if signal and self.watched:
            self.signal_modified(key)
        if self.blocking_keys and key in self.blocking_keys:
            # signalDeletedKeyAsReady: XREADGROUP clients are told
            from .blocking import signal_key_as_ready

            signal_key_as_ready(self, key)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        self.expires[key] = when_ms

    def get_expire(self, key: bytes) -> int:
        """Absolute ms, or -1 when the key has no TTL."""
        return self.expires.get(key, -1)

    def remove_expire(self, key: bytes) -> bool:
        return self.expires.pop(key, None) is not None

    def clear(self) -> int:
        """Empty the db (FLUSHDB); watched keys that existed are touched and
        clients blocked on them signalled (signalDeletedKeyAsReady)."""
        n = len(self.data)
        gone = [k for k in self.blocking_keys if k in self.data] if self.blocking_keys else []
        if self.watched:
            for key, w in self.watched.items():
                if key in self.data:
                    for c, was_expired in w.items():
                        if was_expired:
                            w[c] = False
                        else:
                            c.dirty_cas = True
        self.data = {}
        self.expires = {}
        self.access = {}
        self.strobj = {}
        self.avg_ttl = 0
        if gone:
            from .blocking import signal_key_as_ready

            for key in gone:
                signal_key_as_ready(self, key)
        return n

    def random_key(self) -> bytes | None:
        """RANDOMKEY: a random live key; expired picks are deleted and retried."""
        import random

        tries = 0
        while self.data:
            key = random.choice(list(self.data)) if len(self.data) < 64 else _sample_key(self.data)
            if key in self.expires:
                tries += 1
                allvolatile = len(self.expires) == len(self.data)
                if allvolatile and self.srv.is_replica and tries > 100:
                    return key
                if self.expire_if_needed(key):
                    continue
            return key
        return None


def _sample_key(d: dict[bytes, Any]) -> bytes:
    import itertools
    import random

    i = random.randrange(len(d))
    return next(itertools.islice(iter(d), i, None))
