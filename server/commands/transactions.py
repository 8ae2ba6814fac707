"""MULTI / EXEC / DISCARD / WATCH / UNWATCH (multi.c).

EXEC runs the queue inside one execution unit, so its effects leave as one
MULTI/EXEC wrapper only when two or more commands wrote (effects.py).  A
queueing error (unknown command, arity...) marks the transaction and EXEC
answers EXECABORT; a WATCHed key touched by any client, by expiry or by a
FLUSH makes EXEC answer a null array.
"""

from __future__ import annotations

from typing import Any

from ..client import Client
from ..registry import command
from ..reply import NULL_ARRAY, OK, Err


def discard_transaction(c: Client) -> None:
    c.mstate = None
    c.dirty_exec = False
    c.dirty_cas = False
    unwatch_all(c)


def unwatch_all(c: Client) -> None:
    for db, key in c.watched:
        clients = db.watched.get(key)
        if clients is not None:
            clients.pop(c, None)
            if not clients:
                del db.watched[key]
    c.watched = []


def touch_all_watched(srv: Any, dbid: int = -1) -> None:
    """FLUSHDB/FLUSHALL/SWAPDB: touch WATCHed keys that exist (touchAllWatchedKeysInDb)."""
    for db in srv.dbs if dbid < 0 else [srv.dbs[dbid]]:
        for key, clients in db.watched.items():
            if key in db.data:
                for cl, was_expired in clients.items():
                    if was_expired:
                        clients[cl] = False  # an expired key emptied away: no change
                    else:
                        cl.dirty_cas = True


@command("multi")
def multi(c: Client, argv: list[bytes]) -> Any:
    if c.mstate is not None:
        raise Err("ERR MULTI calls can not be nested")
    c.mstate = []
    return OK


@command("discard")
def discard(c: Client, argv: list[bytes]) -> Any:
    if c.mstate is None:
        raise Err("ERR DISCARD without MULTI")
    discard_transaction(c)
    return OK


@command("watch")
def watch(c: Client, argv: list[bytes]) -> Any:
    if c.mstate is not None:
        raise Err("ERR WATCH inside MULTI is not allowed")
    db = c.db
    for key in argv[1:]:
        if any(d is db and k == key for d, k in c.watched):
            continue
        # A key already logically expired when WATCHed counts as missing;
        # Redis 7.0 does not abort if it is then deleted by expiry.
        db.watched.setdefault(key, {})[c] = db.is_expired(key)
        c.watched.append((db, key))
    return OK


@command("unwatch")
def unwatch(c: Client, argv: list[bytes]) -> Any:
    unwatch_all(c)
    c.dirty_cas = False
    return OK


def _watched_expired(c: Client) -> bool:
    """isWatchedKeyExpired: a WATCHed key that expired since counts as touched."""
    for db, key in c.watched:
        if db.watched.get(key, {}).get(c):
            continue  # already expired when WATCHed
        if key in db.data and db.is_expired(key):
            return True
    return False


@command("exec")
def exec_(c: Client, argv: list[bytes]) -> Any:
    srv = c.srv
    if c.mstate is None:
        raise Err("ERR EXEC without MULTI")
    queue = c.mstate
    if c.dirty_exec:
        discard_transaction(c)
        raise Err("EXECABORT Transaction discarded because of previous errors.")
    import time

    srv.now_ms = int(time.time() * 1000)
    if c.dirty_cas or _watched_expired(c):
        discard_transaction(c)
        return NULL_ARRAY
    unwatch_all(c)
    c.mstate = None
    replies: list[Any] = []
    c.in_exec = True
    # EXEC itself never propagates; the queued commands' effects collect
    # in the unit that call() opened for EXEC.
    try:
        for cmd, qargv in queue:
            if srv.is_replica and cmd.is_write and srv.cfg.replica_read_only and not c.is_primary_link:
                replies.append(Err("READONLY You can't write against a read only replica."))
                continue
            replies.append(srv.call(c, cmd, qargv))
    finally:
        c.in_exec = False
        c.dirty_cas = False
        c.dirty_exec = False
    c.prevent_prop = True
    return replies
