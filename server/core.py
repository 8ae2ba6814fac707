"""The server: databases, clients, the execution entry and the cron.

``process`` is the one execution entry (processCommand in server.c): a
client's request, a queued command inside EXEC, a script's ``redis.call``,
an AOF record and a primary's stream all go through ``process``/``call``.
``call`` runs the handler inside an execution unit and records its effect on
the one path (effects.py).  Checks happen in Redis's order: unknown command,
arity, authentication, MULTI queueing, pub/sub context, loading, OOM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections import deque
from typing import Any

from . import registry
from .client import NOREPLY, Client
from .config import Config
from .effects import Propagator
from .keyspace import Db
from .log import log
from .registry import LAT_SMALL
from .reply import QUEUED, Err, Push

_COMMANDS = registry.COMMANDS
_BY_NAME = registry.BY_NAME
_time = time.time
_perf_ns = time.perf_counter_ns

VERSION = "7.0.15"
VERSION_NUM = 0x0007000F

# notify-keyspace-events bits (server.h)
NOTIFY_KEYSPACE = 1 << 0
NOTIFY_KEYEVENT = 1 << 1
NOTIFY_GENERIC = 1 << 2
NOTIFY_STRING = 1 << 3
NOTIFY_LIST = 1 << 4
NOTIFY_SET = 1 << 5
NOTIFY_HASH = 1 << 6
NOTIFY_ZSET = 1 << 7
NOTIFY_EXPIRED = 1 << 8
NOTIFY_EVICTED = 1 << 9
NOTIFY_STREAM = 1 << 10
NOTIFY_KEY_MISS = 1 << 11
NOTIFY_LOADING = 1 << 12
NOTIFY_NEW = 1 << 13

_MULTI_ALLOWED = {b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"}
# Commands whose flags a script can redefine (scripting.py CmdFlagsView).
_SCRIPT_COMMANDS = frozenset((b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall", b"fcall_ro"))
_PUBSUB_ALLOWED = {b"ping", b"subscribe", b"ssubscribe", b"unsubscribe", b"sunsubscribe",
                   b"psubscribe", b"punsubscribe", b"quit", b"reset"}


class SlowlogEntry:
    __slots__ = ("id", "time", "duration", "argv", "addr", "name")

    def __init__(self, id: int, t: int, duration: int, argv: list[bytes], addr: str, name: bytes) -> None:
        self.id = id
        self.time = t
        self.duration = duration
        self.argv = argv
        self.addr = addr
        self.name = name


class Server:
    NOTIFY_GENERIC = NOTIFY_GENERIC
    NOTIFY_STRING = NOTIFY_STRING
    NOTIFY_LIST = NOTIFY_LIST
    NOTIFY_SET = NOTIFY_SET
    NOTIFY_HASH = NOTIFY_HASH
    NOTIFY_ZSET = NOTIFY_ZSET
    NOTIFY_EXPIRED = NOTIFY_EXPIRED
    NOTIFY_EVICTED = NOTIFY_EVICTED
    NOTIFY_STREAM = NOTIFY_STREAM
    NOTIFY_KEY_MISS = NOTIFY_KEY_MISS
    NOTIFY_NEW = NOTIFY_NEW

    def __init__(self, cfg: Config | None = None) -> None:
        self.cfg = cfg if cfg is not None else Config()
        self.log = log
        self.pid = os.getpid()
        self.dbs = [Db(self, i) for i in range(self.cfg.databases)]
        self.clients: dict[int, Client] = {}
        self._client_id = 0
        self.propagator = Propagator()
        self._loading = False
        self.gate = False
        # an LFU maxmemory-policy is on: key accesses update LFU counters
        # (kept by commands.introspection from the config)
        self.lfu = False
        # ACL (server/acl.py; commands.acl_cmd.install sets ``acl``): while
        # some user lacks +@all ~* &*, ``acl_restricted`` keeps the gate
        # closed so every command reaches the permission check.
        self.acl: Any = None
        self.acl_restricted = False
        self.is_replica = False
        self.executing_primary_stream = False
        # Replication (server/replication.py, created by commands.replication_cmd).
        self.repl: Any = None
        self.clock_offset_ns = time.time_ns() - time.perf_counter_ns()
        # Keys that may unblock clients, served when the outermost unit ends;
        # ``on_ready_keys`` is installed by the blocking machinery.
        self.ready_keys: list[Any] = []
        self.on_ready_keys: Any = None
        self.now_ms = int(time.time() * 1000)
        self.lru_clock = int(time.time())
        self.dirty = 0
        self.start_time = time.time()
        self.start_monotonic = time.monotonic()
        self.run_id = os.urandom(20).hex()
        self.shutdown_asap = False
        self.exit_code = 0
        self.monitors: list[Client] = []
        self.pubsub_channels: dict[bytes, dict[Client, None]] = {}
        self.pubsub_patterns: dict[bytes, dict[Client, None]] = {}
        self.pubsub_shard_channels: dict[bytes, dict[Client, None]] = {}
        self.pause_until = 0.0
        self.pause_type: str | None = None  # "write" | "all"
        self.paused_clients: list[Client] = []
        self.active_expire_enabled = True
        self.slowlog: deque[SlowlogEntry] = deque()
        self.slowlog_next_id = 0
        self.latency_events: dict[str, deque[tuple[int, int]]] = {}
        self.latency_max: dict[str, int] = {}
        self.errorstats: dict[bytes, int] = {}
        self.servers: list[asyncio.AbstractServer] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        # Replies to requests read in this event-loop iteration, written
        # once every ready client has been served (see defer_flush).
        self.pending_writes: dict[Client, None] = {}
        self.writes_scheduled = False
        self.cron_handle: asyncio.TimerHandle | None = None
        self.cronloops = 0
        # commands.server_cmds sets these: per-command duration counts while
        # latency-tracking is on, and a hook while the latency monitor is on.
        # latency-tracking: call() counts each duration into Command.lat
        self.track_latency = False
        self.latency_hook: Any = None
        self.replid = os.urandom(20).hex()
        self.replid2 = "0" * 40
        self.master_repl_offset = 0
        self.second_replid_offset = -1
        self.cron_hooks: list[Any] = []
        self.startup_hooks: list[Any] = []
        # run once the dataset is loaded at start-up (replication ids from the RDB)
        self.loaded_hooks: list[Any] = []
        self.last_save = int(time.time())
        self.blocked_clients = 0
        self.tracking_clients = 0
        # Client-side caching state (server/tracking.py) while in use, else None.
        self.tracking: Any = None
        self.unit_db = 0
        # modules of the server that want a say at shutdown / in INFO
        self.shutdown_hooks: list[Any] = []
        # Set by the persistence layer: save an RDB now (SHUTDOWN, FLUSHALL
        # with save points); returns an error text or None.
        self.save_hook: Any = None
        # Set by the persistence layer (server/rdb.py): the -MISCONF error
        # while writes are refused after a failed background save
        # (stop-writes-on-bgsave-error), and the start-up load coroutine.
        self.misconf: Err | None = None
        self.startup_load: Any = None
        # Scripting (server/scripting.py): the run context of a script past
        # busy-reply-threshold (other clients get -BUSY while it is set), the
        # hook deriving EVAL/FCALL's flags from the script's declared flags,
        # and whether the server was out of memory when the current command
        # was dispatched (server.pre_command_oom_state).
        self.busy_script: Any = None
        self.script_cmd_flags: Any = None
        self.pre_command_oom_state = False
        # AOF hook (server/aof.py): ``aof_pending`` is set while effects wait
        # in the AOF buffer; Client.flush then calls ``aof_flush(client)``
        # before any reply is written (Redis writes the AOF in beforeSleep,
        # before it writes to clients), so appendfsync always never
        # acknowledges a write that is not on disk.  A true result means the
        # replies wait for the AOF write of this loop iteration.
        self.aof_pending = False
        self.aof_flush: Any = None
        self.reset_stats()
        self.stat_numconnections = 0
        self.port = self.cfg.port
        self.hz = self.cfg.hz
        self.cfg.add_hook("proto-max-bulk-len", self._on_parser_limits)
        self.cfg.add_hook("client-query-buffer-limit", self._on_parser_limits)
        self.slowlog_threshold = self.cfg.slowlog_log_slower_than
        self.cfg.add_hook(
            "slowlog-log-slower-than", lambda old, new: setattr(self, "slowlog_threshold", new)
        )
        self.cfg.add_hook("maxmemory", lambda old, new: self.update_gate())
        self.cfg.add_hook("hz", lambda old, new: setattr(self, "hz", max(1, min(500, new))))
        self.update_gate()  # a maxmemory from the config file or command line

    def _on_parser_limits(self, old: Any, new: Any) -> None:
        for c in self.clients.values():
            c.parser.max_bulk = self.cfg.proto_max_bulk_len
            c.parser.querybuf_limit = self.cfg.client_query_buffer_limit

    # -- statistics ------------------------------------------------------------

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: counters, not gauges."""
        self.stat_numconnections = getattr(self, "stat_numconnections", 0)
        self.stat_rejected_conn = 0
        self.stat_expiredkeys = 0
        self.stat_expired_stale_perc = 0.0
        self.stat_expired_time_cap_reached_count = 0
        self.stat_expire_cycle_time_used = 0
        self.stat_evictedkeys = 0
        self.stat_evictedclients = 0
        self.stat_keyspace_hits = 0
        self.stat_keyspace_misses = 0
        self.stat_net_input_bytes = 0
        self.stat_net_output_bytes = 0
        self.stat_net_repl_input_bytes = 0
        self.stat_net_repl_output_bytes = 0
        self.stat_total_error_replies = 0
        self.stat_unexpected_error_replies = 0
        self.stat_total_reads_processed = 0
        self.stat_total_writes_processed = 0
        self.stat_client_qbuf_limit_disconnections = 0
        self.stat_client_outbuf_limit_disconnections = 0
        self.stat_dump_payload_sanitizations = 0
        self.stat_total_forks = 0
        self.stat_sync_full = 0
        self.stat_sync_partial_ok = 0
        self.stat_sync_partial_err = 0
        self.stat_io_reads_processed = 0
        self.stat_io_writes_processed = 0
        self.errorstats = {}
        self.ops_samples: deque[tuple[float, int, int, int]] = deque(maxlen=16)
        for cmd in registry.all_commands():
            cmd.reset_stats()

    @property
    def stat_numcommands(self) -> int:
        """total_commands_processed: every call(), nested ones included, as
        the per-command counters already record (kept off the hot path)."""
        return sum(cmd.calls for cmd in registry.all_commands())

    def count_error(self, code: bytes) -> None:
        if len(self.errorstats) >= 128 and code not in self.errorstats:
            return
        self.errorstats[code] = self.errorstats.get(code, 0) + 1

    def next_client_id(self) -> int:
        self._client_id += 1
        return self._client_id

    # -- clients ---------------------------------------------------------------

    def auth_required(self) -> bool:
        """authRequired's server half: the default user has a password or is off."""
        acl = self.acl
        if acl is not None:
            return acl.auth_required()  # type: ignore[no-any-return]
        return bool(self.cfg.requirepass)

    def accept_client(self, c: Client) -> bool:
        self.stat_numconnections += 1
        if len(self.clients) >= self.cfg.maxclients:
            self.stat_rejected_conn += 1
            if c.transport is not None:
                c.transport.write(b"-ERR max number of clients reached\r\n")
                c.transport.close()
            c.closed = True
            return False
        if self.cfg.protected_mode and c.transport is not None and (
            self.acl.default_nopass() if self.acl is not None else not self.cfg.requirepass
        ):
            # Redis 7.0: with no password for the default user, only loopback
            # and unix-socket clients are served, whatever "bind" says.
            peer = c.transport.get_extra_info("peername")
            if isinstance(peer, tuple) and not _is_loopback(peer[0]):
                c.transport.write(_PROTECTED_MODE_ERR)
                c.transport.close()
                c.closed = True
                return False
        self.clients[c.id] = c
        return True

    def free_client(self, c: Client) -> None:
        if self.clients.pop(c.id, None) is None:
            return
        c.closed = True
        from .commands import pubsub, transactions

        transactions.unwatch_all(c)
        pubsub.unsubscribe_all(c)
        if c.tracking is not None:  # freeClient -> disableTracking
            from .tracking import disable

            disable(c)
        if c.monitor and c in self.monitors:
            self.monitors.remove(c)
            self.update_gate()
        if c.blocked is not None:
            c.blocked.cancel(c)
            c.blocked = None
        if c in self.paused_clients:
            self.paused_clients.remove(c)
        if c.repl is not None:
            self.repl.remove_replica(c)

    def client_flags(self, c: Client) -> str:
        """CLIENT LIST flags in Redis 7.0's order."""
        f = ""
        if c.monitor:
            f += "O"
        elif c.is_replica:
            f += "S"
        if c.is_primary_link:
            f += "M"
        if c.in_pubsub_mode():
            f += "P"
        if c.mstate is not None or c.in_exec:
            f += "x"  # EXEC keeps CLIENT_MULTI until its last command ran
        if c.blocked is not None or c.paused_waiting:
            f += "b"  # held by CLIENT PAUSE: blocked (BLOCKED_POSTPONE) in Redis
        ct = c.tracking
        if ct is not None:
            f += "t"
            if ct.broken_redirect:
                f += "R"
            if ct.bcast:
                f += "B"
        if c.dirty_cas:
            f += "d"
        if c.close_after_reply:
            f += "c"
        if c.addr.startswith("/") or c.addr == ":0":
            f += "U"
        if c.no_evict:
            f += "e"
        return f or "N"

    def client_info_line(self, c: Client, caller: Client | None = None) -> str:
        """One CLIENT LIST line; ``caller`` is the client running the command:
        only it has an argv (Redis frees a client's argv after each command)."""
        now = time.time()
        mono = time.monotonic()
        flags = self.client_flags(c)
        events = "r" + ("w" if c.out else "")
        cmd = c.lastcmd.fullname if c.lastcmd is not None else "NULL"
        name = (c.name or b"").decode("utf-8", "replace")
        if c.mstate is not None:
            multi = len(c.mstate)
        elif c.in_exec and c.exec_state is not None:
            multi = len(c.exec_state.queue)
        else:
            multi = -1
        # Redis keeps a command's argv while it runs, blocks or waits out a pause.
        if c.in_exec and c.exec_state is not None:
            argv: Any = c.exec_state.argv
        elif c is caller or c.blocked is not None:
            argv = c.argv
        elif c.paused_waiting and c.pending:
            argv = c.pending[0]
        else:
            argv = ()
        qbuf = c.parser.pending()
        obl = 0
        oll = 0
        omem = c.transport.get_write_buffer_size() if c.transport is not None and not c.closed else 0
        tot_mem = 1024 + qbuf + omem
        return (
            f"id={c.id} addr={c.addr} laddr={c.laddr} fd={c.fd} name={name} age={int(now - c.ctime)} "
            f"idle={int(mono - c.last_interaction)} flags={flags} db={c.db.id} sub={len(c.channels)} "
            f"psub={len(c.patterns)} ssub={len(c.shard_channels)} multi={multi} qbuf={qbuf} "
            f"qbuf-free={max(0, 20474 - qbuf) if qbuf else 0} argv-mem={sum(map(len, argv))} "
            f"multi-mem=0 rbs=1024 rbp=0 obl={obl} oll={oll} omem={omem} tot-mem={tot_mem} "
            f"events={events} cmd={cmd} user={c.user.decode('utf-8', 'replace')} redir={c.tracking.redirect if c.tracking is not None else -1} resp={3 if c.resp3 else 2}"
        )

    # -- the execution entry -----------------------------------------------------

    def process(self, c: Client, argv: list[bytes]) -> Any:
        """processCommand: checks in Redis's order, MULTI queueing, then call().

        The common case (a known command, right arity, an authenticated
        client outside MULTI and pub/sub, no maxmemory/loading/pause/monitor
        on the server) is decided with a handful of attribute reads."""
        name = argv[0]
        cmd = _BY_NAME.get(name)
        if cmd is None:
            name = name.lower()
            cmd = _COMMANDS.get(name)
        else:
            name = cmd.bname
        if cmd is None or cmd.subcommands:
            if cmd is None:
                c.lastcmd = None
                return self._reject(registry.unknown_command_error(argv), c)
            if len(argv) > 1:
                sub = cmd.subcommands.get(argv[1].lower())
                if sub is None:
                    c.lastcmd = None
                    return self._reject(registry.unknown_subcommand_error(argv), c)
                cmd = sub
            elif cmd.handler is None:
                c.lastcmd = cmd
                return self._reject(registry.arity_error(cmd), c, cmd)
        c.lastcmd = cmd  # even when refused below, as processCommand does
        arity = cmd.arity
        n = len(argv)
        if (arity > 0 and n != arity) or n < -arity:
            return self._reject(registry.arity_error(cmd), c, cmd)
        if (
            self.gate
            or c.mstate is not None
            or not c.authenticated
            or c.channels
            or c.patterns
            or c.shard_channels
        ):
            return self._process_checked(c, cmd, argv, name)
        return self.call(c, cmd, argv)

    def _process_checked(self, c: Client, cmd: registry.Command, argv: list[bytes], name: bytes) -> Any:
        if not c.authenticated and not cmd.no_auth and self.auth_required():
            return self._reject(Err("NOAUTH Authentication required."), c, cmd)
        in_multi = c.mstate is not None
        if in_multi and cmd.no_multi:
            return self._reject(Err("ERR Command not allowed inside a transaction"), c, cmd)
        if self.acl_restricted:
            # ACLCheckAllPerm (NOPERM + an ACL LOG entry), where Redis 7.0's
            # processCommand checks it: after NOAUTH and no-multi.
            err = self.acl.check_command(c, cmd, argv)
            if err is not None:
                return self._reject(err, c, cmd)
        # Scripting: an EVAL/FCALL whose script declares flags is checked
        # with the flags they derive (evalGetCommandFlags).
        fl: Any = cmd
        if self.script_cmd_flags is not None and name in _SCRIPT_COMMANDS:
            fl = self.script_cmd_flags(c, cmd, argv)
        if self.cfg.maxmemory and not self.executing_primary_stream and self.busy_script is None:
            # Eviction runs before every command; only commands that may grow
            # memory (or anything queued in MULTI) are refused when it fails.
            err = self.perform_evictions()
            if err is not None and (
                fl.denyoom or (in_multi and name not in (b"exec", b"discard", b"quit", b"reset"))
            ):
                return self._reject(err, c, cmd)
            self.pre_command_oom_state = err is not None
        if self.misconf is not None and not c.is_primary_link and (
            fl.is_write or name == b"ping"
            or (name == b"exec" and c.mstate and any(q.is_write for q, _ in c.mstate))
        ):
            # writeCommandsDeniedByDiskError (server/rdb.py keeps misconf).
            return self._reject(self.misconf, c, cmd)
        repl = self.repl
        if not c.is_primary_link and self.repl_checks() and (
            fl.is_write or (name == b"exec" and c.mstate and any(q.is_write for q, _ in c.mstate))
        ):
            if not self.is_replica and not repl.min_replicas_ok():
                return self._reject(Err("NOREPLICAS Not enough good replicas to write."), c, cmd)
            if self.is_replica and self.cfg.replica_read_only:
                return self._reject(Err("READONLY You can't write against a read only replica."), c, cmd)
        if not c.resp3 and (c.channels or c.patterns or c.shard_channels) and name not in _PUBSUB_ALLOWED:
            return self._reject(
                Err(
                    f"ERR Can't execute '{cmd.fullname}': only (P|S)SUBSCRIBE / "
                    "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
                ),
                c,
                cmd,
            )
        if (
            self.is_replica and not self.cfg.replica_serve_stale_data and not cmd.stale_ok
            and repl.link_state != "connected"
        ):
            return self._reject(
                Err("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), c, cmd
            )
        if self._loading and not cmd.loading_ok:
            return self._reject(Err("LOADING Redis is loading the dataset in memory"), c, cmd)
        busy = self.busy_script
        if busy is not None and (
            not cmd.allow_busy
            or (name == b"shutdown" and not any(a.lower() == b"nosave" for a in argv[1:]))
        ):
            # A script past busy-reply-threshold is serving clients from its
            # hook (scripting.py): only allow-busy commands run, and SHUTDOWN
            # only with NOSAVE.
            return self._reject(busy.busy_error(), c, cmd)
        if self.pause_type is not None and not c.is_primary_link and self._must_pause(c, fl):
            c.paused_waiting = True
            c.pending.appendleft(argv)
            self.paused_clients.append(c)
            return NOREPLY
        if in_multi and name not in _MULTI_ALLOWED:
            c.mstate.append((cmd, argv))  # type: ignore[union-attr]
            return QUEUED
        return self.call(c, cmd, argv)

    # -- the gate: server-wide conditions that need the checked path ------------

    @property
    def loading(self) -> bool:
        return self._loading

    @loading.setter
    def loading(self, value: bool) -> None:
        self._loading = value
        self.propagator.set_loading(value)
        self.update_gate()

    def update_gate(self) -> None:
        """Recompute ``gate`` after maxmemory, loading, pause or MONITOR change."""
        self.gate = bool(
            self.cfg.maxmemory or self._loading or self.pause_type or self.monitors or self.acl_restricted
            or self.misconf is not None or self.busy_script is not None or self.repl_checks()
        )

    def defer_flush(self, c: Client) -> None:
        """Write ``c``'s replies after every client whose requests arrived in
        this event-loop iteration has been served, as Redis's beforeSleep
        does (handleClientsWithPendingWrites): the writes leave in one burst,
        so a peer waiting on several connections wakes once, not per reply."""
        self.pending_writes[c] = None
        if not self.writes_scheduled:
            self.writes_scheduled = True
            assert self.loop is not None
            self.loop.call_soon(self.write_pending)

    def write_pending(self) -> None:
        self.writes_scheduled = False
        clients = self.pending_writes
        self.pending_writes = {}
        for c in clients:
            c.flush()

    def repl_checks(self) -> bool:
        """Replication's conditions on commands: a replica (READONLY,
        MASTERDOWN) or min-replicas-to-write on a primary (NOREPLICAS)."""
        return self.is_replica or bool(self.cfg.min_replicas_to_write and self.cfg.min_replicas_max_lag)

    def _reject(self, err: Err, c: Client, cmd: registry.Command | None = None) -> Err:
        """rejectCommand: count it, flag an open transaction; a rejected EXEC
        discards the transaction and says why (execCommandAbort)."""
        if cmd is not None:
            cmd.rejected_calls += 1
        if c.mstate is not None:
            c.dirty_exec = True
        if cmd is not None and cmd.fullname == "exec":
            from .commands.transactions import discard_transaction

            discard_transaction(c)
            msg = err.msg[4:] if err.msg.startswith(b"ERR ") else err.msg
            err = Err(b"EXECABORT Transaction discarded because of: " + msg)
        if c.tracking is not None and c.mstate is None:
            c.tracking.caching = False  # resetClient: CLIENT CACHING lasts one command
        self.stat_total_error_replies += 1
        self.count_error(err.code)
        return err

    def count_rejected(self, cmd: registry.Command | None) -> None:
        if cmd is not None:
            cmd.rejected_calls += 1

    def call(self, c: Client, cmd: registry.Command, argv: list[bytes]) -> Any:
        """Run one command inside an execution unit and record its effect.

        This is Redis's call(): time snapshot for the outermost unit, dirty
        accounting, the command's own effect (its argv or the rewrite it
        left in ``c.prop_argv``) appended after any effects it added itself
        (lazy-expiry DELs...), emission when the outermost unit ends, then
        commandstats and the slow log.  ``Client.run_requests`` carries an
        inlined copy of this for top-level commands: keep the two in step."""
        prop = self.propagator
        depth = prop.depth
        t0 = _perf_ns()
        if depth == 0:
            # The wall clock in ms, from the monotonic clock the duration
            # needs anyway (the offset is refreshed by the cron).
            self.now_ms = (t0 + self.clock_offset_ns) // 1_000_000
        else:
            # prop_argv / prevent_prop are cleared after use (finish_call),
            # so they are clear when a top-level handler starts; a nested
            # call (EXEC, a script) clears what its caller may have left.
            c.prop_argv = None
            c.prevent_prop = False
        prop.depth = depth + 1
        dirty = self.dirty
        c.cmd = cmd
        c.argv = argv
        if c.tracking is not None:
            # Client-side caching: this tracking client is the current one.
            self.tracking.before_call(c, depth)
        try:
            reply = cmd.handler(c, argv)
        except Err as e:
            reply = e
        except Exception as e:  # noqa: BLE001 - a bug answers an error, the connection lives
            reply = internal_error(cmd, e)
        dur = (_perf_ns() - t0) // 1000
        prop.depth = depth
        rd = cmd.redact
        if rd is not None:
            rd(argv)
        if (
            type(reply) is Err
            or c.prevent_prop
            or c.prop_argv is not None
            or (self.dirty > dirty and prop.enabled)
            or (depth == 0 and (prop.pending or self.ready_keys))
        ):
            self.finish_call(c, argv, reply, dirty, depth)
        cmd.calls += 1
        cmd.usec += dur
        if self.track_latency:
            if dur < LAT_SMALL:
                cmd.lat[dur] += 1
            else:
                cmd.count_latency(dur)
        if dur >= self.rare_call_threshold():
            self.account_rare(c, cmd, argv, dur)
        if self.monitors and not cmd.skip_monitor and not cmd.admin and not self._loading:
            # As call() in Redis: after the command ran, so commands inside
            # EXEC and scripts show too, in execution order.
            self.feed_monitors(c, argv)
        trk = self.tracking
        if trk is not None and trk.current is not None:
            # Client-side caching (tracking.py): remember the keys a read
            # fetched; after the top-level command, the invalidations it
            # caused to its own client follow its reply.
            reply = trk.after_call(c, cmd, argv, reply, depth)
        return reply

    def finish_call(self, c: Client, argv: list[bytes], reply: Any, dirty_before: int, depth: int) -> None:
        """The part of call() after the handler that only matters when
        something happened beyond a plain reply: error stats, the command's
        effect (unless it recorded its own), and -- when the outermost unit
        ends -- emission of the unit's effects, then serving clients blocked
        on keys that became ready (handleClientsBlockedOnKeys), in that order."""
        if type(reply) is Err:
            c.cmd.failed_calls += 1  # type: ignore[union-attr]
            self.stat_total_error_replies += 1
            self.count_error(reply.code)
        prop = self.propagator
        if c.prevent_prop:
            c.prevent_prop = False
        elif self.dirty > dirty_before and prop.enabled:  # call(): a negative delta counts as none
            pa = c.prop_argv
            prop.pending.append((c.db.id, pa if pa is not None else argv, 3))
        if depth == 0:
            # A nested call leaves its rewrite for its caller (EXEC keeps the
            # rewritten argv of each queued command).
            c.prop_argv = None
            if prop.pending:
                off = self.master_repl_offset
                prop.emit()
                if self.master_repl_offset != off:
                    # WAIT's offset: right after the client's last propagated write.
                    c.woff = self.master_repl_offset
            if self.ready_keys and self.on_ready_keys is not None:
                self.on_ready_keys()

    def rare_call_threshold(self) -> int:
        """The duration (us) from which call() needs account_rare: the slow
        log's threshold, or 0 while the latency monitor wants every call."""
        if self.latency_hook is not None:
            return 0
        thr = self.slowlog_threshold
        return thr if thr >= 0 else 1 << 62

    def account_rare(self, c: Client, cmd: registry.Command, argv: list[bytes], dur: int) -> None:
        """call()'s bookkeeping that rarely applies: the latency monitor and the slow log."""
        lh = self.latency_hook
        if lh is not None:
            lh(self, cmd, dur)
        if dur >= self.slowlog_threshold >= 0 and not cmd.skip_slowlog:
            self.slowlog_push(c, argv, dur)

    def slowlog_push(self, c: Client, argv: list[bytes], dur: int) -> None:
        maxlen = self.cfg.slowlog_max_len
        args = argv[:32]
        shown: list[bytes] = []
        for a in args:
            if len(a) > 128:
                shown.append(a[:128] + b"... (%d more bytes)" % (len(a) - 128))
            else:
                shown.append(bytes(a))
        if len(argv) > 32:
            shown[-1] = b"... (%d more arguments)" % (len(argv) - 31)
        self.slowlog.appendleft(
            SlowlogEntry(self.slowlog_next_id, int(time.time()), dur, shown, c.addr, c.name or b"")
        )
        self.slowlog_next_id += 1
        while len(self.slowlog) > maxlen:
            self.slowlog.pop()

    def _must_pause(self, c: Client, cmd: registry.Command) -> bool:
        if time.monotonic() >= self.pause_until:
            self.unpause()
            return False
        if self.pause_type == "all":
            return True
        # WRITE pause: writes, and commands that may write (EVAL, PUBLISH...);
        # a queued script counts with the flags it declares.
        if cmd.is_write or cmd.may_replicate:
            return True
        if cmd.fullname != "exec" or c.mstate is None:
            return False
        sf = self.script_cmd_flags
        for q, qargv in c.mstate:
            fq: Any = sf(c, q, qargv) if sf is not None and q.bname in _SCRIPT_COMMANDS else q
            if fq.is_write or fq.may_replicate:
                return True
        return False

    def expire_paused(self) -> bool:
        return self.pause_type is not None and time.monotonic() < self.pause_until

    def unpause(self) -> None:
        self.pause_type = None
        self.pause_until = 0.0
        self.update_gate()
        waiting = self.paused_clients
        self.paused_clients = []
        for c in waiting:
            c.paused_waiting = False
            if not c.closed:
                c.resume_soon()  # (a held BLPOP may then block)

    def feed_monitors(self, c: Client, argv: list[bytes]) -> None:
        now = time.time()
        parts = []
        for a in argv:
            parts.append('"' + _repr_arg(a) + '"')
        line = f"+{now:.6f} [{c.db.id} {'lua' if c.fake else c.addr}] " + " ".join(parts) + "\r\n"
        data = line.encode("latin-1", "replace")
        for m in list(self.monitors):
            if m is not c or True:
                m.out.append(data)
                m.flush()

    # -- eviction ---------------------------------------------------------------

    def used_memory(self) -> int:
        from .commands.introspection import estimate_used_memory

        return estimate_used_memory(self)

    def perform_evictions(self) -> Err | None:
        """Free memory down to maxmemory per policy; an OOM error when not possible."""
        from .commands.introspection import evict_until_fits

        return evict_until_fits(self)

    # -- keyspace notifications ------------------------------------------------

    def notify(self, cls: int, event: bytes, key: bytes, dbid: int) -> None:
        flags = self.cfg.notify_keyspace_events
        if not (flags & cls):
            return
        if flags & NOTIFY_KEYSPACE:
            self.publish(b"__keyspace@%d__:" % dbid + key, event)
        if flags & NOTIFY_KEYEVENT:
            self.publish(b"__keyevent@%d__:" % dbid + event, key)

    def publish(self, channel: bytes, message: bytes) -> int:
        receivers = 0
        subs = self.pubsub_channels.get(channel)
        if subs:
            for c in list(subs):
                c.send(Push([b"message", channel, message]))
                c.flush()
                receivers += 1
        if self.pubsub_patterns:
            from .util import stringmatchlen

            for pat, clients in list(self.pubsub_patterns.items()):
                if stringmatchlen(pat, channel):
                    for c in list(clients):
                        c.send(Push([b"pmessage", pat, channel, message]))
                        c.flush()
                        receivers += 1
        return receivers

    # -- cron ---------------------------------------------------------------------

    def cron(self) -> None:
        """serverCron: active expiry, client timeouts, stats, pause expiry."""
        assert self.loop is not None
        self.cronloops += 1
        now = time.time()
        self.lru_clock = int(now)
        # Follow wall-clock steps (call() derives now_ms from perf_counter).
        self.clock_offset_ns = time.time_ns() - time.perf_counter_ns()
        try:
            if self.pause_type is not None and time.monotonic() >= self.pause_until:
                self.unpause()
            if self.active_expire_enabled and not self.is_replica and not self.loading:
                from .commands.expire import active_expire_cycle

                active_expire_cycle(self)
            if self.cronloops % max(1, self.hz // 10 or 1) == 0:
                self._sample_ops()
            if self.cfg.timeout and self.cronloops % self.hz == 0:
                self._close_timedout_clients()
            for hook in self.cron_hooks:
                hook()
        except Exception as e:  # keep the cron alive whatever a hook does
            log.warning(f"cron error: {e!r}")
        if self.shutdown_asap:
            self.shutdown_asap = False
            if self.prepare_shutdown(save=None, now=False, force=False) is None:
                self.stop()
                return
        self.cron_handle = self.loop.call_later(1.0 / self.hz, self.cron)

    def _sample_ops(self) -> None:
        self.ops_samples.append(
            (time.monotonic(), self.stat_numcommands, self.stat_net_input_bytes, self.stat_net_output_bytes)
        )

    def instantaneous(self, idx: int) -> float:
        s = self.ops_samples
        if len(s) < 2:
            return 0.0
        t0, t1 = s[0][0], s[-1][0]
        if t1 <= t0:
            return 0.0
        return (s[-1][idx] - s[0][idx]) / (t1 - t0)

    def _close_timedout_clients(self) -> None:
        limit = self.cfg.timeout
        now = time.monotonic()
        for c in list(self.clients.values()):
            if c.is_replica or c.is_primary_link or c.blocked is not None or c.in_pubsub_mode():
                continue
            if now - c.last_interaction > limit:
                log.verbose("Closing idle client")
                c.transport_close()

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        cfg = self.cfg
        binds = cfg.bind or ["*", "-::*"]
        if cfg.port:
            for addr in binds:
                optional = addr.startswith("-")
                host = addr.lstrip("-")
                if host == "*":
                    host = "0.0.0.0"
                elif host == "::*":
                    host = "::"
                try:
                    family = socket.AF_INET6 if ":" in host else socket.AF_INET
                    srv = await self.loop.create_server(
                        lambda: Client(self),
                        host=host,
                        port=cfg.port,
                        family=family,
                        reuse_address=True,
                        backlog=cfg.tcp_backlog,
                    )
                except OSError as e:
                    if optional:
                        continue
                    log.warning(f"Warning: Could not create server TCP listening socket {addr}:{cfg.port}: {e.strerror}")
                    log.warning(f"Failed listening on port {cfg.port} (tcp), aborting.")
                    raise SystemExit(1) from None
                self.servers.append(srv)
        if cfg.unixsocket:
            try:
                os.unlink(cfg.unixsocket)
            except FileNotFoundError:
                pass
            srv = await self.loop.create_unix_server(lambda: Client(self), path=cfg.unixsocket)
            os.chmod(cfg.unixsocket, cfg.unixsocketperm or 0o700)
            self.servers.append(srv)
        for hook in self.startup_hooks:
            hook()
        if self.startup_load is not None:
            # Persistence (server/rdb.py): load the dataset before the cron
            # starts; the listeners are open, so clients get -LOADING.  A
            # damaged file raises SystemExit(1).
            await self.startup_load()
        for hook in self.loaded_hooks:
            hook()
        self.cron_handle = self.loop.call_later(1.0 / self.hz, self.cron)
        if cfg.port:
            log.notice("Ready to accept connections tcp")
        if cfg.unixsocket:
            log.notice("Ready to accept connections unix")

    def prepare_shutdown(self, save: bool | None, now: bool, force: bool) -> Err | None:
        """finishShutdown's checks; None when the server may exit."""
        log.warning("User requested shutdown...")
        if self.save_hook is None:
            # No RDB writer in this build yet: never pretend a save happened.
            if save:
                log.warning("Error trying to save the DB: RDB snapshots are not available in this build")
                if not force:
                    return Err("ERR Errors trying to SHUTDOWN. Check logs.")
            elif save is None and self.cfg.save:
                log.warning("Not saving the DB on shutdown: RDB snapshots are not available in this build")
        else:
            if save or (save is None and self.cfg.save):
                log.notice("Saving the final RDB snapshot before exiting.")
                err = self.save_hook()
                if err is not None and not force:
                    log.warning("Error trying to save the DB, can't exit.")
                    return Err("ERR Errors trying to SHUTDOWN. Check logs.")
        for hook in self.shutdown_hooks:
            err = hook(save, now, force)
            if err is not None and not force:
                return err
        if self.cfg.pidfile and self.cfg.daemonize:
            try:
                os.unlink(self.cfg.pidfile)
            except OSError:
                pass
        elif self.cfg.pidfile:
            log.notice("Removing the pid file.")
            try:
                os.unlink(self.cfg.pidfile)
            except OSError:
                pass
        if self.cfg.unixsocket:
            try:
                os.unlink(self.cfg.unixsocket)
            except OSError:
                pass
        log.warning("Redis is now ready to exit, bye bye...")
        return None

    def stop(self) -> None:
        for s in self.servers:
            s.close()
        for c in list(self.clients.values()):
            c.flush()
            if c.transport is not None:
                c.transport.close()
        if self.loop is not None:
            self.loop.stop()

    def install_signal_handlers(self) -> None:
        assert self.loop is not None

        def on_signal(signame: str) -> None:
            if self.shutdown_asap and signame == "SIGINT":
                log.warning("You insist... exiting now.")
                os._exit(1)
            log.warning(f"Received {signame} scheduling shutdown...")
            self.shutdown_asap = True

        self.loop.add_signal_handler(signal.SIGTERM, on_signal, "SIGTERM")
        self.loop.add_signal_handler(signal.SIGINT, on_signal, "SIGINT")


def internal_error(cmd: registry.Command, e: Exception) -> Err:
    """An unexpected exception in a command: logged with its traceback and
    answered as an error, so one bug never drops the client's connection or
    the server."""
    import traceback

    log.warning(f"Internal error executing '{cmd.fullname}': {e!r}\n" + "".join(traceback.format_exc()))
    return Err(f"ERR internal error executing '{cmd.fullname}': {type(e).__name__}")


def _is_loopback(host: str) -> bool:
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")


def _repr_arg(a: bytes) -> str:
    """sdscatrepr without the surrounding quotes."""
    out = []
    for ch in a:
        if ch == 0x5C:
            out.append("\\\\")
        elif ch == 0x22:
            out.append('\\"')
        elif ch == 10:
            out.append("\\n")
        elif ch == 13:
            out.append("\\r")
        elif ch == 9:
            out.append("\\t")
        elif ch == 7:
            out.append("\\a")
        elif ch == 8:
            out.append("\\b")
        elif 32 <= ch < 127:
            out.append(chr(ch))
        else:
            out.append("\\x%02x" % ch)
    return "".join(out)


_PROTECTED_MODE_ERR = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
    b"for the default user. In this mode connections are only accepted from the loopback interface. If you "
    b"want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just "
    b"disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    b"connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly "
    b"accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    b"Alternatively you can just disable the protected mode by editing the Redis configuration file, and "
    b"setting the protected mode option to 'no', and then restarting the server. 3) If you started the server "
    b"manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an "
    b"authentication password for the default user. NOTE: You only need to do one of the above things in "
    b"order for the server to start accepting connections from the outside.\r\n"
)

__all__ = ["Server", "VERSION", "sys"]
