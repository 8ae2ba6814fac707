"""Client-side caching: key tracking and invalidation (tracking.c, Redis 7.0.15).

A client turns tracking on with CLIENT TRACKING (commands/tracking_cmd.py).
Two modes:

* default: the keys of every read-only command a tracking client runs are
  remembered in the *tracking table* (key -> ids of the clients that may
  cache it); when such a key changes, each of those clients is sent one
  invalidation and the key leaves the table.  OPTIN / OPTOUT with CLIENT
  CACHING decide which reads are remembered.
* BCAST: nothing is remembered; the client subscribes to key prefixes and,
  once per event-loop iteration (beforeSleep), gets the sorted list of keys
  under each prefix modified since the last round.

Delivery (sendTrackingMessage): a RESP3 push ``>2 invalidate [keys]``; with
REDIRECT the message goes to the other client instead, as a push when it
speaks RESP3, or as a pub/sub ``message`` on ``__redis__:invalidate`` when it
is a RESP2 client in subscribed mode (anything else is dropped).  A flush
(FLUSHALL/FLUSHDB/emptyData) sends a null instead of keys to every tracking
client -- spelled in the *tracking* client's protocol, as Redis does -- and
empties the table.  A redirect to a client that is gone sets the broken
redirect flag and, to a RESP3 client, says ``tracking-redir-broken id``.

Invariants and hooks:

* ``srv.tracking`` is the :class:`Tracking` state while client-side caching
  is in use (a tracking client, or leftover table/prefix entries), else
  None.  While it exists every Db's ``watched`` dict holds the
  :data:`TRACKING_MARK` entry, so the call sites that skip
  ``Db.signal_modified`` when nobody WATCHes (``if db.watched:``) do call it,
  and ``signal_modified`` forwards each changed key to
  :meth:`Tracking.invalidate_key` (signalModifiedKey ->
  trackingInvalidateKey).  With no tracking the write path pays nothing.
* ``Client.tracking`` is the client's :class:`ClientTracking` options while
  tracking is on, else None.  Tracking clients leave the request loop's
  inlined fast path (``Client.is_plain``) so every command they run goes
  through ``Server.call``, which calls :meth:`Tracking.before_call` and
  :meth:`Tracking.after_call` around the handler: the *current client*
  (server.current_client) is known while its command runs, the keys it read
  are remembered afterwards (trackingRememberKeys), and invalidations its
  own command caused are delivered after its reply, as 7.0.15 does with
  ``tracking_pending_keys`` (the reply and the pushes go out as one
  :class:`~.reply.Multi`; inside MULTI/EXEC they follow EXEC's reply).
* The table is capped by ``tracking-table-max-keys`` (trackingLimitUsedSlots):
  before each command of a tracking client and from the cron, random keys
  are evicted from the table with an invalidation as if they had changed.
* CLIENT CACHING lasts for the next command (or transaction): ``after_call``
  clears it after a top-level command outside MULTI other than CLIENT's,
  and ``Server._reject`` after a rejected one, as resetClient does.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from .client import NOREPLY
from .reply import Multi, Push, Raw

if TYPE_CHECKING:
    from .client import Client
    from .core import Server
    from .registry import Command

TRACKING_CHANNEL = b"__redis__:invalidate"
_NULL_RESP2 = Raw(b"$-1\r\n")
_NULL_RESP3 = Raw(b"_\r\n")
_FLUSH = None  # a pending "all keys" invalidation

# Read-only commands whose own keys are not remembered: the read-only script
# commands (the commands the script runs are, through their own call()).
_SCRIPT_RO = frozenset(("eval_ro", "evalsha_ro", "fcall_ro"))

# getKeysFromCommand (commands.introspection), bound on first use.
_get_keys: Any = None


class _TrackingMark:
    """The entry :class:`Tracking` keeps in each ``Db.watched`` while active.

    It is no key (not bytes, never in ``Db.data``) and has no watchers, so
    WATCH bookkeeping ignores it; it only makes ``if db.watched`` true."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<tracking mark>"


TRACKING_MARK = _TrackingMark()
_NO_WATCHERS: dict[Any, bool] = {}


class ClientTracking:
    """A tracking client's options: CLIENT_TRACKING_* flags, the redirection
    id (0: none) and, in BCAST mode, its prefixes."""

    __slots__ = ("redirect", "bcast", "optin", "optout", "noloop", "caching", "broken_redirect", "prefixes")

    def __init__(self) -> None:
        self.redirect = 0
        self.bcast = False
        self.optin = False
        self.optout = False
        self.noloop = False
        self.caching = False  # CLIENT CACHING yes (OPTIN) / no (OPTOUT) for the next command
        self.broken_redirect = False
        self.prefixes: dict[bytes, None] = {}


class _BcastState:
    """bcastState: keys modified under a prefix since the last broadcast
    (key -> the client that last changed it, for NOLOOP) and its clients."""

    __slots__ = ("keys", "clients")

    def __init__(self) -> None:
        self.keys: dict[bytes, Client | None] = {}
        self.clients: dict[Client, None] = {}


class Tracking:
    """The server's client-side caching state (TrackingTable, PrefixTable)."""

    __slots__ = ("srv", "table", "items", "key_list", "prefixes", "current", "executing", "pending",
                 "hold", "bcast_due", "limit_rounds", "flush_due", "to_flush")

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        # key -> {client id: None}; ``items`` counts the ids over all keys.
        self.table: dict[bytes, dict[int, None]] = {}
        self.items = 0
        # The table's keys in a list for random picks (eviction); entries for
        # keys that left the table are dropped lazily when picked.
        self.key_list: list[bytes] = []
        self.prefixes: dict[bytes, _BcastState] = {}
        # server.current_client while a tracking client's command runs, and
        # whether its handler is running (CLIENT_EXECUTING_COMMAND).
        self.current: Client | None = None
        self.executing = False
        # Invalidations for the current client, sent after its reply.
        self.pending: list[bytes | None] = []
        # Set while an expiry or eviction deletes a key: its invalidation is
        # sent by ``deleted_by_server`` (as changed by no client), after the
        # "expired" event (deleteExpiredKeyAndPropagate) and before the
        # "evicted" one (performEvictions).
        self.hold = False
        self.bcast_due = False
        self.limit_rounds = 0
        self.flush_due = False
        self.to_flush: dict[Client, None] = {}

    # -- the execution entry's hooks ------------------------------------------------

    def before_call(self, c: Client, depth: int) -> None:
        """Server.call, before the handler of a tracking client's command."""
        self.current = c
        if depth == 0:
            self.executing = False
            limit = self.srv.cfg.tracking_table_max_keys
            if limit and len(self.table) > limit:
                self.limit_used_slots()
            self.executing = True

    def after_call(self, c: Client, cmd: Command, argv: list[bytes], reply: Any, depth: int) -> Any:
        """Server.call, after any command while a tracking client is current:
        remember the keys of a read (for the current client, with the keys
        of the command actually run: a script's reads count for its caller),
        and when the top-level command ends, clear CLIENT CACHING and deliver
        the invalidations it caused to the client itself after its reply."""
        cur = self.current
        assert cur is not None
        ct = cur.tracking
        if ct is not None and cmd.is_readonly and not ct.bcast and cmd.fullname not in _SCRIPT_RO:
            self.remember_keys(cur, ct, cmd, argv)
        if depth:
            return reply
        self.current = None
        self.executing = False
        if ct is not None and ct.caching and c.mstate is None and not cmd.fullname.startswith("client|"):
            # resetClient: CACHING lasts for the next command (a whole
            # transaction), CLIENT subcommands leave it alone.
            ct.caching = False
        if not self.pending:
            return reply
        pending = self.pending
        self.pending = []
        own: list[Push] = []
        for item in pending:
            got = self._message(cur, item)
            if got is None:
                continue
            dest, msg = got
            if dest is cur:
                own.append(msg)
            else:
                self._deliver(dest, msg)
        if not own:
            return reply
        if reply is NOREPLY or cur.reply_mode != "on":
            # No reply will be written for this command: the pushes go alone
            # (push messages ignore CLIENT REPLY OFF/SKIP).
            for msg in own:
                cur.send(msg)
            return reply
        return Multi([reply, *own])

    # -- remembering keys --------------------------------------------------------------

    def remember_keys(self, cur: Client, ct: ClientTracking, cmd: Command, argv: list[bytes]) -> None:
        """trackingRememberKeys: the command's keys now map to ``cur``."""
        if cmd.pubsub:
            return  # shard channels are keys of a sort, never cached
        if ct.caching if ct.optout else (ct.optin and not ct.caching):
            return
        global _get_keys
        if _get_keys is None:
            from .commands.introspection import get_keys_with_flags as _get_keys
        table = self.table
        cid = cur.id
        for pos, _flags in _get_keys(cmd, argv):
            key = bytes(argv[pos])
            ids = table.get(key)
            if ids is None:
                ids = table[key] = {}
                self.key_list.append(key)
            if cid not in ids:
                ids[cid] = None
                self.items += 1
        kl = self.key_list
        if len(kl) > 2 * len(table) + 64:
            self.key_list = list(table)

    # -- invalidation ----------------------------------------------------------------------

    def invalidate_key(self, key: bytes, bcast: bool = True, by_server: bool = False) -> None:
        """trackingInvalidateKey: ``key`` changed (or left the table).
        ``by_server``: no client changed it (BCAST NOLOOP clients hear of it)."""
        if self.hold:
            return
        if bcast and self.prefixes:
            self._remember_for_broadcast(key, None if by_server else self.current)
        ids = self.table.pop(key, None)
        if ids is None:
            return
        self.items -= len(ids)
        clients = self.srv.clients
        cur = self.current
        for cid in ids:
            target = clients.get(cid)
            if target is None:
                continue
            ct = target.tracking
            # A client that switched to BCAST since gets nothing from the table.
            if ct is None or ct.bcast:
                continue
            if target is cur:
                if ct.noloop:
                    continue
                if self.executing:
                    self.pending.append(key)
                    continue
            self._send(target, key)
        if not self.srv.tracking_clients:
            self.maybe_deactivate()

    def invalidate_on_flush(self) -> None:
        """trackingInvalidateKeysOnFlush: a null ("every key") to each
        tracking client -- after its reply for the current one -- and an
        empty table."""
        cur = self.current
        for c in list(self.srv.clients.values()):
            if c.tracking is not None:
                if c is cur:
                    self.pending.append(_FLUSH)
                else:
                    self._send(c, _FLUSH)
        self.table = {}
        self.items = 0
        self.key_list = []
        self.maybe_deactivate()

    def limit_used_slots(self) -> None:
        """trackingLimitUsedSlots: evict random keys (with invalidations)
        until the table fits tracking-table-max-keys, with an effort that
        grows while it keeps failing."""
        limit = self.srv.cfg.tracking_table_max_keys
        table = self.table
        if not limit or len(table) <= limit:
            self.limit_rounds = 0
            return
        effort = 100 * (self.limit_rounds + 1)
        kl = self.key_list
        while effort > 0 and kl:
            effort -= 1
            i = random.randrange(len(kl))
            key = kl[i]
            kl[i] = kl[-1]
            kl.pop()
            if key not in table:
                continue
            self.invalidate_key(key, bcast=False)
            if len(table) <= limit:
                self.limit_rounds = 0
                return
        self.limit_rounds += 1

    # -- BCAST -------------------------------------------------------------------------------

    def deleted_by_server(self, key: bytes) -> None:
        """An expired or evicted key is gone: signalModifiedKey(NULL, ...),
        the deletion's own signal having been held."""
        self.hold = False
        self.invalidate_key(key, by_server=True)

    def _remember_for_broadcast(self, key: bytes, modifier: Client | None) -> None:
        """trackingRememberKeyToBroadcast: note ``key`` under each matching
        prefix with the client that changed it."""
        hit = False
        for prefix, bs in self.prefixes.items():
            if key.startswith(prefix):
                bs.keys[key] = modifier
                hit = True
        if hit and not self.bcast_due:
            self.bcast_due = True
            loop = self.srv.loop
            if loop is not None:
                loop.call_soon(self.broadcast)

    def broadcast(self) -> None:
        """trackingBroadcastInvalidationMessages (beforeSleep): per prefix in
        order, the sorted keys changed under it to each of its clients (a
        NOLOOP client without the keys it changed itself, nothing if none)."""
        self.bcast_due = False
        for prefix in sorted(self.prefixes):
            bs = self.prefixes[prefix]
            if not bs.keys:
                continue
            changed = bs.keys
            keys = sorted(changed)
            for c in list(bs.clients):
                ct = c.tracking
                if ct is not None and ct.noloop:
                    own = [k for k in keys if changed[k] is not c]
                    if own:
                        self._send(c, own)
                else:
                    self._send(c, keys)
            bs.keys = {}

    # -- delivery ----------------------------------------------------------------------------

    def _message(self, c: Client, payload: bytes | list[bytes] | None) -> tuple[Client, Push] | None:
        """sendTrackingMessage's choice: (receiving client, message), or None
        when the message cannot be delivered."""
        ct = c.tracking
        redirect = ct.redirect if ct is not None else 0
        via_redirect = False
        value: Any
        if payload is None:
            value = _NULL_RESP3 if c.resp3 else _NULL_RESP2
        elif type(payload) is list:
            value = payload
        else:
            value = [payload]
        if redirect:
            dest = self.srv.clients.get(redirect)
            if dest is None or dest.closed:
                assert ct is not None
                ct.broken_redirect = True
                if c.resp3:
                    return c, Push([b"tracking-redir-broken", redirect])
                return None
            c = dest
            via_redirect = True
        if c.resp3:
            return c, Push([b"invalidate", value])
        if via_redirect and c.in_pubsub_mode():
            return c, Push([b"message", TRACKING_CHANNEL, value])
        return None

    def _send(self, c: Client, payload: bytes | list[bytes] | None) -> None:
        got = self._message(c, payload)
        if got is not None:
            self._deliver(*got)

    def _deliver(self, dest: Client, msg: Push) -> None:
        """Queue the message; the client's output is written once per loop
        iteration (immediately without an event loop)."""
        dest.send(msg)
        loop = self.srv.loop
        if loop is None:
            dest.flush()
            return
        self.to_flush[dest] = None
        if not self.flush_due:
            self.flush_due = True
            loop.call_soon(self._flush_clients)

    def _flush_clients(self) -> None:
        self.flush_due = False
        clients = self.to_flush
        self.to_flush = {}
        for c in clients:
            if not c.closed:
                c.flush()

    # -- life cycle ---------------------------------------------------------------------------

    def maybe_deactivate(self) -> None:
        """Drop the state (and the Db marks) once nothing is tracked any more."""
        srv = self.srv
        if srv.tracking_clients or self.table or self.prefixes or self.pending or srv.tracking is not self:
            return
        srv.tracking = None
        for db in srv.dbs:
            db.watched.pop(TRACKING_MARK, None)  # type: ignore[call-overload]


def state(srv: Server) -> Tracking:
    """The server's tracking state, created (with the Db marks) on first use."""
    trk: Tracking | None = srv.tracking
    if trk is None:
        trk = srv.tracking = Tracking(srv)
        for db in srv.dbs:
            db.watched[TRACKING_MARK] = _NO_WATCHERS  # type: ignore[index]
    return trk


# -- enabling and disabling (networking.c / tracking.c) ---------------------------------------


def prefix_collision(c: Client, prefixes: list[bytes]) -> tuple[bytes, int] | None:
    """checkPrefixCollisionsOrReply: the error text and Redis's return value
    for the first collision -- with a prefix the client has, or between two
    given ones -- or None.  Redis returns the index of the colliding given
    prefix in the second case, which its caller reads as success when it is
    not 0: the error is then followed by +OK and tracking is enabled."""
    mine = c.tracking.prefixes if c.tracking is not None else {}
    for i, p in enumerate(prefixes):
        for old in sorted(mine):
            if p.startswith(old) or old.startswith(p):
                return (b"ERR Prefix '" + _cstr(p) + b"' overlaps with an existing prefix '" + _cstr(old)
                        + b"'. Prefixes for a single client must not overlap.", 0)
        for q in prefixes[i + 1:]:
            if p.startswith(q) or q.startswith(p):
                return (b"ERR Prefix '" + _cstr(p) + b"' overlaps with another provided prefix '" + _cstr(q)
                        + b"'. Prefixes for a single client must not overlap.", i)
    return None


def _cstr(b: bytes) -> bytes:
    """``%s`` of an sds: up to the first NUL."""
    i = b.find(b"\x00")
    return b if i < 0 else b[:i]


def enable(c: Client, redirect: int, bcast: bool, optin: bool, optout: bool, noloop: bool,
           prefixes: list[bytes]) -> None:
    """enableTracking: (re)enable with new options; BCAST prefixes add up
    (no prefix means every key: the empty prefix)."""
    srv = c.srv
    trk = state(srv)
    ct = c.tracking
    if ct is None:
        ct = c.tracking = ClientTracking()
        srv.tracking_clients += 1
    ct.broken_redirect = ct.bcast = ct.optin = ct.optout = ct.noloop = False
    ct.redirect = redirect
    if bcast:
        ct.bcast = True
        for p in prefixes or [b""]:
            bs = trk.prefixes.get(p)
            if bs is None:
                bs = trk.prefixes[p] = _BcastState()
            if c not in bs.clients:
                bs.clients[c] = None
                ct.prefixes[p] = None
    ct.optin = optin
    ct.optout = optout
    ct.noloop = noloop


def disable(c: Client) -> None:
    """disableTracking: leave the prefixes, clear every tracking flag.  The
    client's ids stay in the table and are skipped lazily, as in Redis."""
    ct = c.tracking
    if ct is None:
        return
    srv = c.srv
    trk = srv.tracking
    c.tracking = None
    srv.tracking_clients -= 1
    if trk is None:
        return
    if ct.bcast:
        for p in ct.prefixes:
            bs = trk.prefixes.get(p)
            if bs is not None:
                bs.clients.pop(c, None)
                if not bs.clients:
                    del trk.prefixes[p]
    if trk.current is c:
        trk.current = None
        trk.executing = False
        trk.pending = []
    trk.maybe_deactivate()


def info(srv: Server) -> tuple[int, int, int]:
    """INFO stats: tracking_total_keys, tracking_total_items, tracking_total_prefixes."""
    trk = srv.tracking
    if trk is None:
        return 0, 0, 0
    return len(trk.table), trk.items, len(trk.prefixes)


def cron(srv: Server) -> None:
    """serverCron: keep the table within tracking-table-max-keys when idle."""
    trk = srv.tracking
    if trk is not None and srv.tracking_clients:
        trk.limit_used_slots()
