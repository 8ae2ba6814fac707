"""One client connection: framing in, replies out, per-client state.

Replies of a whole read batch are encoded into one list and written with a
single ``transport.write``, so pipelining costs one syscall per batch.  A
client that blocks (BLPOP...) or is paused keeps its remaining requests in
``pending`` and resumes from there, preserving order.  Output-buffer limits
per class (normal / replica / pubsub) are checked after each write against
the transport's buffered size, as Redis checks the reply list's size.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .protocol import ProtocolError, QueryBufferLimit, RequestParser
from .registry import BY_NAME as _BY_NAME
from .registry import LAT_SMALL
from .reply import _BULK_HDR, _INT_CACHE, Err, Push, Status, encode

_perf_ns = time.perf_counter_ns
_STATIC_REPLY_BUF = 16 * 1024  # PROTO_REPLY_CHUNK_BYTES: not counted by the output limits

if TYPE_CHECKING:
    from .core import Server
    from .keyspace import Db
    from .registry import Command

NOREPLY: Any = object()  # a command that answers later (blocked) or never (REPLY OFF)

# Client flags shown by CLIENT LIST.
CLASS_NORMAL = "normal"
CLASS_REPLICA = "replica"
CLASS_PUBSUB = "pubsub"


class Client(asyncio.Protocol):
    """Per-connection state and the asyncio protocol feeding the server."""

    def __init__(self, srv: Server, fake: bool = False) -> None:
        self.srv = srv
        self.id = srv.next_client_id()
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser(srv.cfg.proto_max_bulk_len, srv.cfg.client_query_buffer_limit)
        self.db: Db = srv.dbs[0]
        self.resp3 = False
        self.name: bytes | None = None
        self.lib_name = b""
        self.lib_ver = b""
        self.authenticated = not srv.auth_required()
        self.user = b"default"
        self.fake = fake
        self.addr = "?:0"
        self.laddr = "?:0"
        self.fd = -1
        self.ctime = time.time()
        self.last_interaction = time.monotonic()
        self.cmd: Command | None = None  # the command running (c->cmd)
        self.lastcmd: Command | None = None  # the last one read (CLIENT LIST's cmd=)
        self.argv: list[bytes] = []
        # the argv to propagate instead of the typed one (a rewrite), or
        # PREVENT when the command records its own effects
        self.prop_argv: list[bytes] | None = None
        self.prevent_prop = False
        # MULTI/EXEC
        self.mstate: list[tuple[Command, list[bytes]]] | None = None
        self.dirty_cas = False
        self.dirty_exec = False
        self.watched: list[tuple[Db, bytes]] = []
        self.in_exec = False
        # pub/sub
        self.channels: set[bytes] = set()
        self.patterns: set[bytes] = set()
        self.shard_channels: set[bytes] = set()
        # blocking / pausing
        self.pending: deque[list[bytes]] = deque()
        self.blocked: Any = None
        self.paused_waiting = False
        # replies
        self.reply_mode = "on"  # on | off | skip_next | skip
        self.close_after_reply = False
        self.closed = False
        self.monitor = False
        self.is_primary_link = False
        self.is_replica = False
        # server/replication.py's ReplicaInfo once the client speaks REPLCONF/SYNC
        self.repl: Any = None
        # the primary's offset after this client's last propagated write (WAIT)
        self.woff = 0
        self.flags_extra = ""
        self.obl_soft_since = 0.0
        self.no_evict = False
        self.no_touch = False
        # CLIENT TRACKING options while tracking is on (tracking.ClientTracking)
        self.tracking: Any = None
        # transactions.ExecState while this client runs EXEC
        self.exec_state: Any = None
        self.tot_net_in = 0
        self.tot_net_out = 0
        self.out: list[bytes] = []

    # -- asyncio protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        srv = self.srv
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.fd = sock.fileno()
        if isinstance(peer, tuple):
            host = peer[0]
            self.addr = f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
            local = transport.get_extra_info("sockname")
            if isinstance(local, tuple):
                lh = local[0]
                self.laddr = f"[{lh}]:{local[1]}" if ":" in lh else f"{lh}:{local[1]}"
        else:
            self.addr = f"{peer or ''}:0"
            self.laddr = f"{transport.get_extra_info('sockname') or ''}:0"
        if not srv.accept_client(self):
            return

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.srv.free_client(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        srv = self.srv
        self.tot_net_in += len(data)
        srv.stat_net_input_bytes += len(data)
        srv.stat_total_reads_processed += 1
        self.last_interaction = time.monotonic()
        if self.is_replica and self.repl is not None:
            self.repl.ack_time = self.last_interaction  # ACKs and "\n" keepalives
        reqs: list[list[bytes]] = []
        err: ProtocolError | None = None
        auth_required = not self.authenticated and srv.auth_required()
        try:
            self.parser.feed(data, auth_required, reqs)
            self._run_or_queue(reqs)
            # An unauthenticated client's requests are parsed one at a time:
            # after an AUTH the rest of the read is held to the normal limits.
            while auth_required and self.parser.has_buffered() and not self.closed:
                auth_required = not self.authenticated and srv.auth_required()
                reqs = []
                self.parser.feed(b"", auth_required, reqs)
                if not reqs:
                    break
                self._run_or_queue(reqs)
        except ProtocolError as e:
            err = e
        except QueryBufferLimit:
            srv.log.warning(
                f"Closing client that reached max query buffer length: {self.describe()} "
                "(qbuf initial bytes: ...)"
            )
            srv.stat_client_qbuf_limit_disconnections += 1
            srv.free_client(self)
            self.transport_close()
            return
        if err is not None:
            # Requests parsed before the bad bytes run first, as in Redis.
            self._run_or_queue(reqs)
        if err is not None:
            self.srv.stat_total_error_replies += 1
            self.srv.count_error(b"ERR")
            self.srv.log.verbose(f"Protocol error ({err.reason}) from client: {self.describe()}.")
            self.out.append(b"-ERR " + err.reply.encode() + b"\r\n")
            self.close_after_reply = True
        if srv.loop is None or srv.aof_pending or srv.busy_script is not None:
            # Without an event loop to come back to (a busy script serves
            # clients from its hook) replies go at once; with AOF data
            # pending, the AOF's own hook defers them.
            self.flush()
        elif self.out or self.close_after_reply:
            srv.defer_flush(self)

    def _run_or_queue(self, reqs: list[list[bytes]]) -> None:
        if self.pending or self.blocked is not None or self.paused_waiting:
            self.pending.extend(reqs)
        else:
            self.run_requests(reqs)

    def run_requests(self, reqs: list[list[bytes]] | deque[list[bytes]]) -> None:
        """Execute requests in order; stops when the client blocks or pauses.

        The common case -- a known top-level command with the right arity,
        no server-wide gate (see ``Server.update_gate``), a plain client
        (authenticated, outside MULTI and pub/sub, replies on) -- runs
        ``Server.call`` inlined: the same steps in the same order, with
        everything beyond a plain reply and commandstats (errors, effects,
        emission, the slow log) handed to ``Server.finish_call``.  Anything
        else takes ``Server.process`` with all of Redis's checks; commands
        that change the client's mode (``Command.inline`` is False) always
        do, and the state the fast path relies on is re-read after each."""
        srv = self.srv
        process = srv.process
        by_name = _BY_NAME
        prop = srv.propagator
        perf_ns = _perf_ns
        out = self.out
        append = out.append
        plain = self.is_plain()
        latency = srv.track_latency
        rare = srv.rare_call_threshold()
        # One clock read per command: a command's end starts the next one's
        # time (its reply's encoding counts in its duration, as addReply does
        # in Redis); the cached ms clock is recomputed when it ticks over.
        t0 = perf_ns()
        edge = 0
        i = 0
        for argv in reqs:
            i += 1
            if not argv:
                continue
            cmd = by_name.get(argv[0])
            if (
                plain
                and cmd is not None
                and cmd.inline
                and not srv.gate
                and ((a := cmd.arity) == len(argv) or (a < 0 and len(argv) >= -a))
                and not prop.depth
            ):
                # -- Server.call, inlined for a top-level command -------------
                if t0 >= edge:
                    now_ns = t0 + srv.clock_offset_ns
                    srv.now_ms = now_ms = now_ns // 1_000_000
                    edge = t0 + (now_ms + 1) * 1_000_000 - now_ns
                prop.depth = 1
                dirty = srv.dirty
                self.cmd = self.lastcmd = cmd
                self.argv = argv
                try:
                    reply = cmd.handler(self, argv)
                except Err as e:
                    reply = e
                except Exception as e:  # noqa: BLE001 - see core.internal_error
                    from .core import internal_error

                    reply = internal_error(cmd, e)
                t1 = perf_ns()
                dur = (t1 - t0) // 1000
                t0 = t1
                prop.depth = 0
                if (
                    type(reply) is Err
                    or prop.pending
                    or srv.ready_keys
                    or self.prevent_prop
                    or self.prop_argv is not None
                    or (srv.dirty > dirty and prop.enabled)
                ):
                    srv.finish_call(self, argv, reply, dirty, 0)
                    edge = 0  # it may have served blocked clients, set the clock
                cmd.calls += 1
                cmd.usec += dur
                if latency:
                    if dur < LAT_SMALL:
                        cmd.lat[dur] += 1
                    else:
                        cmd.count_latency(dur)
                if dur >= rare:
                    srv.account_rare(self, cmd, argv, dur)
                # -- encode(), with the commonest replies spelled out ---------
                t = type(reply)
                if t is Status:
                    append(b"+" + reply + b"\r\n")
                elif t is bytes:
                    n = len(reply)
                    append(_BULK_HDR[n] if n < 10000 else b"$%d\r\n" % n)
                    append(reply)
                    append(b"\r\n")
                elif t is int:
                    append(_INT_CACHE[reply] if 0 <= reply < 10000 else b":%d\r\n" % reply)
                elif reply is NOREPLY:
                    if self.blocked is not None or self.paused_waiting:
                        self.pending.extend(list(reqs)[i:])
                        return
                else:
                    encode(reply, self.resp3, out)
                continue
            reply = process(self, argv)
            t0 = perf_ns()
            edge = 0
            plain = self.is_plain()
            latency = srv.track_latency
            rare = srv.rare_call_threshold()
            if reply is NOREPLY:
                if self.blocked is not None or self.paused_waiting:
                    self.pending.extend(list(reqs)[i:])
                    return
                continue
            mode = self.reply_mode
            if mode != "on":
                # CLIENT REPLY: "skip_next" is set by SKIP itself (no reply),
                # "skip" swallows the following command's reply.
                if mode == "skip_next":
                    self.reply_mode = "skip"
                elif mode == "skip":
                    self.reply_mode = "on"
                continue
            encode(reply, self.resp3, out)  # HELLO answers in the new protocol
            if self.close_after_reply:
                return

    def is_plain(self) -> bool:
        """The client state run_requests's fast path relies on: authenticated,
        outside MULTI and pub/sub, replies on, not closing, not tracking keys
        (Server.call's tracking hooks must see its commands)."""
        return (
            self.mstate is None
            and self.authenticated
            and not (self.channels or self.patterns or self.shard_channels)
            and self.reply_mode == "on"
            and not self.close_after_reply
            and self.tracking is None
        )

    def resume_soon(self) -> None:
        """Continue with the queued requests from the event loop (as Redis's
        beforeSleep serves unblocked clients): they run as top-level
        commands, after the command that released the client."""
        loop = self.srv.loop
        if loop is not None:
            loop.call_soon(self.resume)
        else:
            self.resume()

    def resume(self) -> None:
        """Continue with requests queued while blocked or paused."""
        while self.pending and self.blocked is None and not self.paused_waiting and not self.closed:
            reqs = list(self.pending)
            self.pending.clear()
            self.run_requests(reqs)
        self.flush()

    # -- output --------------------------------------------------------------

    def send(self, reply: Any) -> None:
        """Queue a reply outside the request loop (unblocking, push messages)."""
        if self.reply_mode != "on" and not isinstance(reply, Push):
            return
        if self.in_exec and type(reply) is Push and self.exec_state is not None:
            # A message to the client running EXEC: it goes inside EXEC's reply
            st = self.exec_state
            st.pushes.append((st.pos, reply))
            return
        encode(reply, self.resp3, self.out)

    def flush(self) -> None:
        if self.srv.aof_pending and self.srv.aof_flush(self):
            # AOF data waits to be written: these replies leave once it is in
            # the file (and, with appendfsync always, on disk) -- server/aof.py
            # writes it once per event-loop iteration, then flushes again.
            return
        out = self.out
        if out:
            data = b"".join(out)
            out.clear()
            t = self.transport
            if t is not None and not self.closed:
                if len(data) > _STATIC_REPLY_BUF and self.check_output_limits(len(data) - _STATIC_REPLY_BUF):
                    return  # one batch alone past the limit: nothing is sent, as in Redis
                t.write(data)
                self.tot_net_out += len(data)
                srv = self.srv
                srv.stat_net_output_bytes += len(data)
                srv.stat_total_writes_processed += 1
                if t.get_write_buffer_size() > 0:
                    self.check_output_limits()
        if self.close_after_reply and not self.closed:
            self.transport_close()

    def check_output_limits(self, pending: int = 0) -> bool:
        """closeClientOnOutputBufferLimitReached: True when the client was
        closed.  ``pending`` is reply data not yet handed to the transport
        beyond the 16 KB Redis keeps in its static buffer (counted as Redis
        counts its reply list, before anything is written)."""
        t = self.transport
        if t is None:
            return False
        used = t.get_write_buffer_size() + pending
        cls = self.output_class()
        hard, soft, secs = self.srv.cfg.client_output_buffer_limit[cls]
        over = False
        if hard and used >= hard:
            over = True
        elif soft and used >= soft:
            now = time.monotonic()
            if not self.obl_soft_since:
                self.obl_soft_since = now
            elif now - self.obl_soft_since >= secs:
                over = True
        else:
            self.obl_soft_since = 0.0
        if over:
            self.srv.log.warning(
                f"Client {self.describe()} scheduled to be closed ASAP for overcoming of output buffer limits."
            )
            self.srv.stat_client_outbuf_limit_disconnections += 1
            self.transport_close(abort=True)
        return over

    def output_class(self) -> str:
        if self.is_replica:
            return CLASS_REPLICA
        if self.channels or self.patterns or self.shard_channels:
            return CLASS_PUBSUB
        return CLASS_NORMAL

    def transport_close(self, abort: bool = False) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            if abort:
                t.abort()
            else:
                t.close()
        if not self.closed:
            self.closed = True
            self.srv.free_client(self)

    # -- helpers ---------------------------------------------------------------

    def describe(self) -> str:
        return self.srv.client_info_line(self)

    def subscription_count(self) -> int:
        return len(self.channels) + len(self.patterns)

    def in_pubsub_mode(self) -> bool:
        return bool(self.channels or self.patterns or self.shard_channels)

    def error(self, msg: str) -> Err:
        return Err(msg)
