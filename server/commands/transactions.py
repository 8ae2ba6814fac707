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
from ..reply import NULL_ARRAY, OK, Err, Multi, Push, Raw


class ExecState:
    """What a running EXEC keeps referenced: the queue (every queued argv)
    and the argv rewrites its commands left (INCRBYFLOAT's ``SET k <new>``,
    SET's ``PXAT`` form...), plus how far it got, and EXEC's own argv (CLIENT
    LIST's argv-mem while it runs), and the messages pushed to the client
    itself meanwhile (a RESP3 subscriber publishing to its own channel)."""

    __slots__ = ("queue", "rewrites", "pos", "argv", "pushes")

    def __init__(self, queue: list[tuple[Any, list[bytes]]], argv: list[bytes]) -> None:
        self.queue = queue
        self.argv = argv
        self.pushes: list[tuple[int, Push]] = []  # (queue index, message)
        self.rewrites: dict[int, list[bytes]] = {}  # queue index -> rewritten argv
        self.pos = 0


def exec_holds(c: Client, key: bytes, v: Any) -> bool:
    """True while ``c`` runs an EXEC that stored ``v`` at ``key`` from one of
    its queued (or rewritten) arguments: Redis frees the transaction's argv
    only when EXEC ends, so such a value shows refcount 2 until then.  Found
    by identity, which is only ambiguous for the 0/1-byte bytes objects
    CPython shares: those must also be at a key a write of this EXEC named.
    Computed here, on demand, to keep EXEC itself lean."""
    st = c.exec_state
    if st is None:
        return False
    argvs = [qargv for _, qargv in st.queue] + list(st.rewrites.values())
    if not any(a is v for args in argvs for a in args):
        return False
    if len(v) > 1:
        return True
    # A shared 0/1-byte object: held only if a command of this EXEC stored
    # it at the key from its arguments (or RENAMEd such a key to it).
    holders: set[bytes] = set()
    for i, (cmd, qargv) in enumerate(st.queue[: st.pos]):
        name = cmd.bname
        if name in _STORES_ARGUMENT:
            args = st.rewrites.get(i, qargv)
            holders.update(args[j] for j in range(1, len(args) - 1) if args[j + 1] is v)
        elif name in (b"rename", b"renamenx") and qargv[1] in holders:
            holders.add(qargv[2])
    return key in holders


# Commands that store one of their arguments as the string value right
# after its key, in their argv or in the rewrite they leave (INCRBYFLOAT's
# and SETEX's become SET k v ...).
_STORES_ARGUMENT = frozenset((b"set", b"setnx", b"setex", b"psetex", b"getset", b"mset", b"msetnx", b"append",
                              b"incrbyfloat"))


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
    # The queued argv and their rewrites stay referenced until EXEC ends
    # (exec_holds).
    state = ExecState(queue, argv)
    c.exec_state = state
    rewrites = state.rewrites
    # EXEC itself never propagates; the queued commands' effects collect
    # in the unit that call() opened for EXEC.
    try:
        for i, (cmd, qargv) in enumerate(queue):
            state.pos = i
            if srv.acl_restricted:
                # execCommand re-checks each queued command: the rules may
                # have changed since it was queued.
                err = srv.acl.exec_check(c, cmd, qargv)
                if err is not None:
                    srv.stat_total_error_replies += 1
                    srv.count_error(err.code)
                    replies.append(err)
                    continue
            if srv.is_replica and cmd.is_write and srv.cfg.replica_read_only and not c.is_primary_link:
                replies.append(Err("READONLY You can't write against a read only replica."))
                continue
            replies.append(srv.call(c, cmd, qargv))
            pa = c.prop_argv
            if pa is not None:
                rewrites[i] = pa
    finally:
        c.exec_state = None
        c.in_exec = False
        c.dirty_cas = False
        c.dirty_exec = False
    c.prevent_prop = True
    if state.pushes:
        return _with_pushes(replies, state.pushes)
    return replies


def _with_pushes(replies: list[Any], pushes: list[tuple[int, Push]]) -> Multi:
    """EXEC's reply with the messages pushed to its own client where Redis
    writes them: inside the array, before the reply of the command that
    caused each (the header went out first, each reply after its command)."""
    out = Multi([Raw(b"*%d\r\n" % len(replies))])
    k = 0
    for i, r in enumerate(replies):
        while k < len(pushes) and pushes[k][0] <= i:
            out.append(pushes[k][1])
            k += 1
        out.append(r)
    out.extend(p for _, p in pushes[k:])
    return out
