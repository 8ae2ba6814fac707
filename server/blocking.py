"""Clients blocked on keys (blocked.c of Redis 7.0.15): the generic machinery.

BLPOP & co (lists), BZPOPMIN & co (sorted sets), XREAD/XREADGROUP BLOCK
(streams) and WAIT all park a client here; the family decides what
"ready" means and what the served client gets.

API for command families
========================

``parse_timeout(arg, unit_seconds=True) -> int``
    getTimeoutFromObjectOrReply: the absolute deadline in unix ms, or 0 for
    "forever".  Seconds may be fractional (``0.1``); ``unit_seconds=False``
    is the milliseconds form (XREAD BLOCK, WAIT).  Raises Redis's errors
    (``timeout is not a float or out of range``, ``timeout is negative``...).
    Parse it where Redis does (usually before looking at any key).

``can_block(c) -> bool``
    False inside MULTI/EXEC, inside a script or function (any nested call),
    while loading and for a primary's link.  Redis's CLIENT_DENY_BLOCKING:
    the command must then behave as its non-blocking form and answer what a
    timeout answers (BLPOP a null array, BLMOVE a null...), at once.

``block_for_keys(c, keys, timeout, vtype, serve, timeout_reply=NULL_ARRAY, data=None) -> NOREPLY``
    blockForKeys: park ``c`` on ``keys`` of ``c.db`` (duplicates ignored)
    until one of them is served, the deadline ``timeout`` (absolute ms, 0 =
    never) passes, CLIENT UNBLOCK, or the client disconnects.  Return its
    result from the handler.  ``vtype`` is the Redis type name (``b"list"``,
    ``b"zset"``, ``b"stream"``) the client waits for; ``data`` is anything
    the family needs later (direction, destination key, count, stream
    ids...), kept as ``c.blocked.data``.  ``timeout_reply`` is the reply on
    timeout or ``CLIENT UNBLOCK id TIMEOUT``: a value, or a callable
    ``(c) -> reply`` (WAIT counts acks then).  ``keys`` may be empty (WAIT).

``serve(c, key, value) -> reply | NOT_SERVED``
    The family's callback, run by :func:`handle_clients_blocked_on_keys`
    after the outermost command (or EXEC, or script) that made ``key``
    ready has finished and emitted its own effects.  ``value`` is the live
    value at ``key`` (already of type ``vtype``).  It runs as an execution
    unit of its own (``srv.now_ms`` refreshed), so it must do exactly what
    the non-blocking form does -- change the data, ``srv.dirty``,
    notifications -- and record its effect explicitly with
    ``c.srv.propagator.add(db.id, argv)`` in the non-blocking form (BLPOP ->
    ``LPOP k``, BZPOPMIN -> ``ZPOPMIN k``...): nothing is recorded for it
    automatically.  Use ``c.blocked.db`` (== ``c.db``).  Return the reply
    (an ``Err`` instance, returned or raised, is an error reply), or
    ``NOT_SERVED`` to stay blocked (e.g. XREAD: no entry newer than the
    client's id).  Clients blocked on a key are offered it in the order they
    blocked; the loop for a key stops once serving empties or replaces it
    (a key found gone still visits every client, for ``on_gone``).

``on_gone`` (keyword of ``block_for_keys``): ``(c) -> reply | NOT_SERVED``
    signalDeletedKeyAsReady's side: when a ready key turns out to be gone
    or to hold another type, a client blocked with ``on_gone`` is answered
    what it returns (XREADGROUP: ``-UNBLOCKED the stream key no longer
    exists``); the others stay blocked.  The key must have been signalled
    (the keyspace signals deleted and overwritten keys clients wait on).

``signal_key_as_ready(db, key)``
    signalKeyAsReady.  ``Db.add`` and a ``Db.set_key`` creating a key call
    it already (dbAdd does in Redis); a command that makes an *existing* key
    servable without creating it (XADD to an existing stream, for instance)
    calls it itself.  Cheap: nothing happens unless a client is blocked on
    ``key``.

``unblock(c, reply)``
    Reply to a blocked client and let it go (WAIT's acks, a module...).

``unblock_on_request(c, error)``
    CLIENT UNBLOCK: the timeout reply, or ``-UNBLOCKED client unblocked via
    CLIENT UNBLOCK``.  False when ``c`` is not blocked.

Invariants
==========

* ``c.blocked`` is the client's :class:`BlockState` exactly while it is
  blocked (CLIENT LIST flag ``b``; ``core.Server.free_client`` calls its
  ``cancel``); ``srv.blocked_clients`` counts them (INFO ``blocked_clients``,
  and ``clients_in_timeout_table`` counts those with a ``timeout``).
* ``db.blocking_keys[key]`` holds the clients blocked on ``key`` in blocking
  order; an entry is removed with its last client.  ``db.ready_keys`` are
  the keys queued in ``srv.ready_keys`` (each queued once until served).
* A served client's reply goes out at once (``Client.send``); requests it
  pipelined behind the blocking command run on the next loop iteration, as
  Redis runs unblocked clients from ``beforeSleep``, never inside the loop
  that serves other clients.
* Timeouts run on event-loop timers (Redis checks them in ``beforeSleep``
  every cron tick: ours fire on time, not up to ``1/hz`` late); without an
  event loop (in-process tests) :func:`handle_timeouts` does it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .client import NOREPLY
from .reply import NULL_ARRAY, Err
from .util import string2ld

if TYPE_CHECKING:
    from .client import Client
    from .core import Server
    from .keyspace import Db

__all__ = [
    "NOT_SERVED",
    "BlockState",
    "parse_timeout",
    "can_block",
    "block_for_keys",
    "signal_key_as_ready",
    "scan_database_for_ready_keys",
    "handle_clients_blocked_on_keys",
    "handle_timeouts",
    "unblock",
    "unblock_on_request",
    "install",
]

LLONG_MIN = -(1 << 63)
_TWO63 = np.longdouble(2.0) ** 63
_THOUSAND = np.longdouble(1000)
# Timers further away than this are not armed (a deadline centuries away,
# which Redis accepts as well): the client waits until served or unblocked.
_MAX_TIMER_S = 10**9

ERR_TIMEOUT_NOT_FLOAT = Err("ERR timeout is not a float or out of range")
ERR_TIMEOUT_NOT_INT = Err("ERR timeout is not an integer or out of range")
ERR_TIMEOUT_NEGATIVE = Err("ERR timeout is negative")
ERR_UNBLOCKED = Err("UNBLOCKED client unblocked via CLIENT UNBLOCK")


class _NotServed:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_SERVED"


NOT_SERVED: Any = _NotServed()

ServeFn = Callable[["Client", bytes, Any], Any]


class BlockState:
    """Why and how a client is blocked (Redis's ``c->bpop``)."""

    __slots__ = ("db", "keys", "timeout", "vtype", "serve", "timeout_reply", "data", "timer", "deadline",
                 "active", "on_gone")

    def __init__(
        self, db: Db, keys: list[bytes], timeout: int, vtype: bytes, serve: ServeFn | None,
        timeout_reply: Any, data: Any,
    ) -> None:
        self.db = db
        self.keys = keys
        self.timeout = timeout  # absolute unix ms, 0 = forever
        self.vtype = vtype
        self.serve = serve
        self.timeout_reply = timeout_reply
        self.data = data
        self.timer: Any = None
        self.deadline = 0.0  # time.monotonic() of the timeout, for the timer
        self.active = True
        self.on_gone: Callable[[Client], Any] | None = None

    def cancel(self, c: Client) -> None:
        """Forget the blocking without replying (disconnect, unblock); once."""
        if not self.active:
            return
        self.active = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        bk = self.db.blocking_keys
        for key in self.keys:
            waiting = bk.get(key)
            if waiting is not None:
                waiting.pop(c, None)
                if not waiting:
                    del bk[key]
        self.keys = []
        c.srv.blocked_clients -= 1


# -- blocking ---------------------------------------------------------------------


def parse_timeout(arg: bytes, unit_seconds: bool = True) -> int:
    """getTimeoutFromObjectOrReply (Redis 7.0.15): absolute unix ms, 0 = forever.

    Seconds go through ``strtold``, are scaled to ms and rounded up (any
    positive timeout, ``1e-10`` included, is at least 1 ms; a tiny negative
    such as ``-0.0001`` becomes 0, i.e. forever -- both checked against
    redis-server 7.0.15); the conversion to ``long long`` turns anything out
    of the 64-bit range (``inf``, ``1e30``) into LLONG_MIN on x86-64, hence
    "timeout is negative".  No upper bound is checked."""
    if unit_seconds:
        ld = string2ld(arg)
        if ld is None:
            raise ERR_TIMEOUT_NOT_FLOAT
        ms = np.ceil(ld * _THOUSAND)
        tval = int(ms) if -_TWO63 <= ms < _TWO63 else LLONG_MIN
    else:
        from .protocol import string2ll

        v = string2ll(arg)
        if v is None:
            raise ERR_TIMEOUT_NOT_INT
        tval = v
    if tval < 0:
        raise ERR_TIMEOUT_NEGATIVE
    if tval > 0:
        tval += int(time.time() * 1000)
    return tval


def can_block(c: Client) -> bool:
    """Not CLIENT_DENY_BLOCKING: a top-level command of a real client."""
    srv = c.srv
    return (
        srv.propagator.depth <= 1
        and not c.in_exec
        and not c.is_primary_link
        and not srv.loading
    )


def block_for_keys(
    c: Client,
    keys: list[bytes],
    timeout: int,
    vtype: bytes,
    serve: ServeFn | None,
    timeout_reply: Any = NULL_ARRAY,
    data: Any = None,
    on_gone: Callable[[Client], Any] | None = None,
) -> Any:
    """blockForKeys + blockClient; returns NOREPLY for the handler to return."""
    db = c.db
    bk = db.blocking_keys
    unique: list[bytes] = []
    for key in keys:
        key = bytes(key)
        waiting = bk.get(key)
        if waiting is None:
            bk[key] = {c: None}
        elif c in waiting:
            continue  # BLPOP k k 0: once
        else:
            waiting[c] = None
        unique.append(key)
    st = BlockState(db, unique, timeout, vtype, serve, timeout_reply, data)
    st.on_gone = on_gone
    c.blocked = st
    srv = c.srv
    srv.blocked_clients += 1
    if timeout:
        loop = srv.loop
        if loop is not None:
            # The deadline is wall-clock ms, as Redis keeps it, and passed
            # once the clock's whole ms exceed it (``timeout < mstime()``);
            # the timer runs on the monotonic clock, which the wall clock
            # may drift from.
            delay = max(0.0, (timeout + 1 - time.time() * 1000) / 1000)
            if delay < _MAX_TIMER_S:
                st.deadline = time.monotonic() + delay
                st.timer = loop.call_later(delay, _timed_out, c, st)
    return NOREPLY


# -- ready keys -------------------------------------------------------------------


def signal_key_as_ready(db: Db, key: bytes) -> None:
    """signalKeyAsReady: queue ``key`` if clients wait on it (once)."""
    if key in db.blocking_keys and key not in db.ready_keys:
        key = bytes(key)
        db.ready_keys.add(key)
        db.srv.ready_keys.append((db, key))


def scan_database_for_ready_keys(db: Db) -> None:
    """scanDatabaseForReadyKeys + scanDatabaseForDeletedStreams (after
    SWAPDB): every blocked-on key that exists now may serve its clients,
    and one that is gone may answer clients blocked with ``on_gone``."""
    data = db.data
    for key, waiting in list(db.blocking_keys.items()):
        if key in data or any(c.blocked is not None and c.blocked.on_gone is not None for c in waiting):
            signal_key_as_ready(db, key)


def handle_clients_blocked_on_keys(srv: Server) -> None:
    """handleClientsBlockedOnKeys: serve ready keys until none is left.

    Serving may make more keys ready (BLMOVE pushes to its destination), so
    the queue is swapped and drained again, as Redis does.  Each served
    client is an execution unit of its own: its effect is emitted alone,
    after the effects of the command that made the key ready."""
    from .keyspace import type_name

    prop = srv.propagator
    while srv.ready_keys:
        ready = srv.ready_keys
        srv.ready_keys = []
        for db, key in ready:
            db.ready_keys.discard(key)
            waiting = db.blocking_keys.get(key)
            if not waiting:
                continue
            for c in list(waiting):
                st = c.blocked
                if st is None or st.db is not db or c not in waiting:
                    continue  # unblocked meanwhile (a disconnect, an earlier key)
                depth = prop.depth
                prop.depth = depth + 1
                srv.now_ms = int(time.time() * 1000)
                stop = False
                try:
                    v = db.lookup_nostat(key)
                    if v is None or (st.on_gone is not None and type_name(v) != st.vtype):
                        # Gone or replaced (unblockDeletedStreamReadgroupClients):
                        # every waiting client is still visited for on_gone.
                        gone = st.on_gone
                        reply: Any = NOT_SERVED if gone is None else gone(c)
                    elif type_name(v) != st.vtype or st.serve is None:
                        reply = NOT_SERVED
                        if db.data.get(key) is not v:
                            stop = True
                    else:
                        reply = st.serve(c, key, v)
                        # the key gone (emptied) or replaced: later clients
                        # are not offered it
                        stop = db.data.get(key) is not v
                except Err as e:
                    reply = e
                finally:
                    prop.depth = depth
                    if depth == 0 and prop.pending:
                        prop.emit()
                if reply is not NOT_SERVED:
                    if type(reply) is Err:
                        cmd = c.cmd
                        if cmd is not None:
                            cmd.failed_calls += 1
                    unblock(c, reply)
                if stop:
                    break


# -- unblocking -------------------------------------------------------------------


def unblock(c: Client, reply: Any) -> None:
    """unblockClient + the reply: release ``c``, answer, and let its
    pipelined requests run on the next loop iteration."""
    st = c.blocked
    if st is None:
        return
    st.cancel(c)
    c.blocked = None
    srv = c.srv
    if type(reply) is Err:
        srv.stat_total_error_replies += 1
        srv.count_error(reply.code)
    mode = c.reply_mode
    if mode == "on":
        c.send(reply)
    elif mode == "skip":  # CLIENT REPLY SKIP before the blocking command
        c.reply_mode = "on"
    c.flush()
    if c.pending and not c.closed:
        c.resume_soon()


def _timeout_reply(c: Client, st: BlockState) -> Any:
    r = st.timeout_reply
    return r(c) if callable(r) else r


def _timed_out(c: Client, st: BlockState) -> None:
    """replyToBlockedClientTimedOut, from the client's timer.  The loop's
    clock is cached per iteration and its timers have millisecond ticks, so
    a timer may fire a little early: then it is armed again for the rest."""
    if c.blocked is not st:
        return
    st.timer = None
    left = st.deadline - time.monotonic()
    loop = c.srv.loop
    if left > 0 and loop is not None:
        st.timer = loop.call_later(left + 0.0005, _timed_out, c, st)
        return
    unblock(c, _timeout_reply(c, st))


def handle_timeouts(srv: Server, now_ms: int | None = None) -> int:
    """Time out every blocked client whose deadline has passed (for callers
    without timers, e.g. in-process tests); returns how many."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    n = 0
    for c in list(srv.clients.values()) + _unlisted(srv):
        st = c.blocked
        if st is not None and st.timeout and st.timeout < now_ms:
            unblock(c, _timeout_reply(c, st))
            n += 1
    return n


def _unlisted(srv: Server) -> list[Client]:
    """Blocked clients not in ``srv.clients`` (fake clients of tests)."""
    seen = set(srv.clients.values())
    out: list[Client] = []
    for db in srv.dbs:
        for waiting in db.blocking_keys.values():
            for c in waiting:
                if c not in seen:
                    seen.add(c)
                    out.append(c)
    return out


def unblock_on_request(c: Client, error: bool) -> bool:
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: True when ``c`` was blocked."""
    st = c.blocked
    if st is None:
        return False
    if error:
        cmd = c.cmd
        if cmd is not None:
            cmd.failed_calls += 1
        unblock(c, ERR_UNBLOCKED)
    else:
        unblock(c, _timeout_reply(c, st))
    return True


def install(srv: Server) -> None:
    """Wire the machinery into a server (once; lists.install does it, other
    families may call it too): the ready-key hook ``call()`` runs when the
    outermost unit ends, the hooks keys.py looks up (RENAME, COPY, MOVE,
    SORT STORE signal keys; SWAPDB rescans), and a cron check for keys made
    ready outside any command."""
    if getattr(srv, "_blocking_installed", False):
        return
    srv._blocking_installed = True  # type: ignore[attr-defined]
    srv.on_ready_keys = lambda: handle_clients_blocked_on_keys(srv)
    srv.signal_key_as_ready = signal_key_as_ready  # type: ignore[attr-defined]
    srv.scan_database_for_ready_keys = scan_database_for_ready_keys  # type: ignore[attr-defined]

    def cron() -> None:
        # Keys made ready outside any command (a replica's RDB load...):
        # Redis serves them from beforeSleep.
        if srv.ready_keys and srv.propagator.depth == 0:
            handle_clients_blocked_on_keys(srv)

    srv.cron_hooks.append(cron)
