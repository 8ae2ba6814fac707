"""Replication in the server: both sides of PSYNC2 (spec/replication.md).

The sans-IO pieces live in ``ambry.replication`` (the backlog, the replica's
handshake machine, the stream framing); this module connects them to the
server: sockets, the forked snapshot, the execution entry and INFO.

Primary side
    :class:`ReplSink` is the replication target of the one path for effects
    (server/effects.py): each unit's effects are encoded once, appended to
    the backlog (``master_repl_offset`` grows by every byte) and queued to
    the online replicas, written once per event-loop iteration.  A replica
    connection is a normal client that sent SYNC/PSYNC; its
    :class:`ReplicaInfo` (``c.repl``) tracks Redis's replstate:
    ``wait_bgsave`` (waiting for a snapshot to start, or for it to finish),
    ``send_bulk`` (a disk snapshot being sent) and ``online``.  Snapshots for
    replicas are forked like BGSAVE: to the RDB file (disk) or into a pipe
    whose bytes the parent relays with the ``$EOF:<mark>`` framing (diskless).

Replica side
    :class:`PrimaryLink` is the connection to the primary, driven by the
    handshake machine; the RDB it receives is written to a temp file and
    loaded with the same loader as start-up; then the stream is applied by a
    client flagged ``is_primary_link`` through ``Server.call``, counting
    bytes exactly, and the applied bytes are forwarded verbatim to this
    server's backlog and sub-replicas (chained replication).
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ..replication.backlog import Backlog
from ..replication.handshake import (
    Continue,
    Failed,
    FullResync,
    HandshakeConfig,
    Keepalive,
    Legacy,
    RdbBegin,
    RdbChunk,
    RdbEnd,
    ReplicaHandshake,
    Send,
    StreamData,
)
from ..replication.stream import StreamParser, StreamProtocolError
from . import registry
from .effects import TARGET_REPL, SelectTracker, encode_command
from .log import log
from .reply import Err

if TYPE_CHECKING:
    from .client import Client
    from .core import Server

# replstate of a replica connection (INFO slaveN state=...)
WAIT_BGSAVE_START = "wait_bgsave_start"
WAIT_BGSAVE_END = "wait_bgsave_end"
SEND_BULK = "send_bulk"
ONLINE = "online"

PING_BYTES = b"*1\r\n$4\r\nping\r\n"
GETACK_BYTES = encode_command([b"REPLCONF", b"GETACK", b"*"])

_SEND_HIGH_WATER = 4 * 1024 * 1024  # bytes queued in a transport before a bulk sender waits
_RELAY_HIGH_WATER = 16 * 1024 * 1024
# Stream bytes a replica applies per event-loop turn before it lets its
# clients run: the transport reads up to 32 chunks of 256 KB per wakeup,
# seconds of work when the replica is behind (Redis reads 16 KB per event).
_APPLY_BURST = 256 * 1024


def new_replid() -> str:
    return os.urandom(20).hex()


class ReplicaInfo:
    """The primary's view of one replica connection (the SLAVE flag)."""

    __slots__ = ("client", "state", "capa_eof", "capa_psync2", "port", "ip", "ack_off", "fack_off", "ack_time",
                 "legacy", "rdb_only", "buf", "buf_len", "wait_ack", "socket_sync", "initial_offset",
                 "bulk_task")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.state = WAIT_BGSAVE_START
        self.capa_eof = False
        self.capa_psync2 = False
        self.port = 0
        self.ip = ""
        self.ack_off = 0
        self.fack_off = 0  # the replica's AOF-fsynced offset (7.2's FACK)
        self.ack_time = time.monotonic()
        self.legacy = False
        self.rdb_only = False
        self.buf: list[bytes] = []  # stream accumulated since the snapshot point
        self.buf_len = 0
        self.wait_ack = False  # online after a diskless transfer, stream held until the first ACK
        self.socket_sync = False
        self.initial_offset = -1
        self.bulk_task: Any = None

    def peer_ip(self) -> str:
        if self.ip:
            return self.ip
        addr = self.client.addr
        host = addr.rsplit(":", 1)[0]
        return host[1:-1] if host.startswith("[") else host


class ReplSink:
    """The replication target of the effect path (a ``Sink``)."""

    targets = TARGET_REPL

    def __init__(self, repl: Replication) -> None:
        self.repl = repl
        self.tracker = SelectTracker()
        self.parts: list[bytes] = []

    def write(self, db: int, argv: list[bytes]) -> None:
        for cmd in self.tracker.commands_for(db, argv):
            self.parts.append(encode_command(cmd))

    def flush_unit(self) -> None:
        if self.parts:
            data = b"".join(self.parts)
            self.parts = []
            self.repl.feed(data)


class Replication:
    """The server's replication state, both roles (``srv.repl``)."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.backlog: Backlog | None = None
        self.sink = ReplSink(self)
        self.sink_attached = False
        self.replicas: list[ReplicaInfo] = []
        self.no_replicas_since = time.monotonic()
        self.flush_scheduled = False
        self.getack_pending = False
        self.waiting: list[Client] = []  # clients blocked in WAIT
        # snapshot for replicas
        self.snapshot_socket = False
        self.snapshot_active = False
        self.relay_fd = -1
        self.relay_targets: list[ReplicaInfo] = []
        self.relay_eof = False
        self.relay_child_ok: bool | None = None
        self.relay_paused = False
        self.diskless_wait_since = 0.0
        self.cron_ticks = 0
        self.last_second = 0.0
        # replica side
        self.master_host: str | None = None
        self.master_port = 0
        self.link: PrimaryLink | None = None
        self.link_state = "none"  # none | connect | connecting | handshake | sync | connected
        self.primary: Client | None = None  # the client applying the primary's stream
        self.cached: tuple[str, int, int] | None = None  # (replid, offset, db) for PSYNC
        self.reploff = 0  # processed offset (== srv.master_repl_offset on a replica)
        self.read_reploff = 0
        self.link_down_since = 0.0  # monotonic; 0 = never up
        self.last_io = 0.0
        self.connect_at = 0.0
        self.fack = 0  # last offset reported fsynced to the AOF (REPLCONF ACK ... FACK)
        self.failover_state = "no-failover"
        self.failover_target: tuple[str, int] | None = None
        self.failover_end = 0.0
        self.failover_force = False

    # -- identity ------------------------------------------------------------------------

    @property
    def is_replica(self) -> bool:
        return self.master_host is not None

    def change_replid(self) -> None:
        srv = self.srv
        srv.replid = new_replid()

    def clear_replid2(self) -> None:
        srv = self.srv
        srv.replid2 = "0" * 40
        srv.second_replid_offset = -1

    def shift_replid(self) -> None:
        """shiftReplicationId: the current history becomes the second one."""
        srv = self.srv
        srv.replid2 = srv.replid
        srv.second_replid_offset = srv.master_repl_offset + 1
        self.change_replid()
        log.notice(f"Setting secondary replication ID to {srv.replid2}, valid up to offset: "
                   f"{srv.second_replid_offset}. New replication ID is {srv.replid}")

    # -- backlog and the stream ------------------------------------------------------------

    def create_backlog(self) -> None:
        """createReplicationBacklog: empty, just after the current offset."""
        srv = self.srv
        self.backlog = Backlog(int(srv.cfg.repl_backlog_size), srv.master_repl_offset)
        self._update_sink()

    def free_backlog(self) -> None:
        self.backlog = None
        self._update_sink()

    def _update_sink(self) -> None:
        """The effect path feeds replicas only on a primary with a backlog."""
        want = self.backlog is not None and not self.is_replica
        prop = self.srv.propagator
        if want and not self.sink_attached:
            prop.add_sink(self.sink)
            self.sink_attached = True
        elif not want and self.sink_attached:
            prop.remove_sink(self.sink)
            self.sink_attached = False

    def feed(self, data: bytes) -> None:
        """replicationFeedSlaves' tail: bytes of the stream, counted, kept in
        the backlog and sent to (or buffered for) every replica."""
        srv = self.srv
        backlog = self.backlog
        if backlog is None:
            return
        backlog.append(data)
        srv.master_repl_offset += len(data)
        for r in self.replicas:
            st = r.state
            if st == WAIT_BGSAVE_START or r.rdb_only:
                continue  # the snapshot will contain it
            r.buf.append(data)
            r.buf_len += len(data)
            if st != ONLINE or r.wait_ack:
                if r.client.check_output_limits(r.buf_len):
                    continue
        if not self.flush_scheduled:
            loop = srv.loop
            if loop is not None:
                self.flush_scheduled = True
                loop.call_soon(self.flush_replicas)
            else:
                self.flush_replicas()

    def flush_replicas(self) -> None:
        """Write what online replicas have pending (once per loop iteration)."""
        self.flush_scheduled = False
        for r in self.replicas:
            if r.state == ONLINE and not r.wait_ack and r.buf:
                self._write_buf(r)

    def _write_buf(self, r: ReplicaInfo) -> None:
        c = r.client
        data = b"".join(r.buf) if len(r.buf) > 1 else r.buf[0]
        r.buf = []
        r.buf_len = 0
        t = c.transport
        if t is None or c.closed:
            return
        t.write(data)
        c.tot_net_out += len(data)
        self.srv.stat_net_repl_output_bytes += len(data)
        if t.get_write_buffer_size() > 0:
            c.check_output_limits()

    def feed_raw_from_primary(self, data: bytes) -> None:
        """replicationFeedStreamFromMasterStream: a replica forwards exactly
        the bytes it applied (its offset and backlog follow its primary's)."""
        if self.backlog is None:
            self.create_backlog()
        self.feed(data)

    # -- replicas (primary side) -------------------------------------------------------------

    def replica_of(self, c: Client) -> ReplicaInfo | None:
        return getattr(c, "repl", None)

    def add_replica(self, c: Client) -> ReplicaInfo:
        r: ReplicaInfo | None = getattr(c, "repl", None)
        if r is None:
            r = ReplicaInfo(c)
            c.repl = r  # type: ignore[attr-defined]
        if r not in self.replicas:
            self.replicas.append(r)
        c.is_replica = True
        return r

    def remove_replica(self, c: Client) -> None:
        r: ReplicaInfo | None = getattr(c, "repl", None)
        if r is None or r not in self.replicas:
            return
        self.replicas.remove(r)
        if r in self.relay_targets:
            self.relay_targets.remove(r)
        if r.bulk_task is not None:
            r.bulk_task.cancel()
        if r.state == ONLINE:
            log.notice(f"Connection with replica {r.peer_ip()}:{r.port} lost.")
        if not self.replicas:
            self.no_replicas_since = time.monotonic()
        self.check_waiting()

    def psync(self, c: Client, argv: list[bytes]) -> Any:
        """syncCommand for SYNC and PSYNC (spec §3)."""
        from .client import NOREPLY

        srv = self.srv
        if c.is_replica:
            return NOREPLY
        is_psync = argv[0].lower() == b"psync"
        if is_psync and len(argv) > 3:
            if argv[3].lower() != b"failover":
                raise Err("ERR syntax error")
            if not self.is_replica:
                raise Err("ERR PSYNC FAILOVER can't be sent to a master.")
            if argv[1].decode("latin-1") != srv.replid:
                raise Err("ERR PSYNC FAILOVER replid must match my replid.")
            log.notice(f"Failover request received for replid {argv[1].decode('latin-1')}.")
            self.promote()
        if self.failover_state != "no-failover":
            raise Err("NOMASTERLINK Can't SYNC while failing over")
        if self.is_replica and self.link_state != "connected":
            raise Err("NOMASTERLINK Can't SYNC while not connected with my master")
        if c.out:
            raise Err("ERR SYNC and PSYNC are invalid with pending output")
        r = self.add_replica(c)
        if r.rdb_only and not r.capa_eof and getattr(r, "filter_only", False):
            raise Err("ERR Filtered replica requires EOF capability")
        log.notice(f"Replica {r.peer_ip()}:{r.port} asks for synchronization")
        if is_psync:
            replid = argv[1].decode("latin-1")
            try:
                offset = int(argv[2])
            except ValueError:
                offset = -1
            if self._try_partial(r, replid, offset):
                srv.stat_sync_partial_ok += 1
                return NOREPLY
            if replid != "?":
                srv.stat_sync_partial_err += 1
        else:
            r.legacy = True
        srv.stat_sync_full += 1
        r.state = WAIT_BGSAVE_START
        if self.backlog is None:
            # The first replica: a new history.
            self.change_replid()
            self.clear_replid2()
            self.create_backlog()
            log.notice(f"Replication backlog created, my new replication IDs are '{srv.replid}' and "
                       f"'{srv.replid2}'")
        # A snapshot for replicas already being written to disk: join it
        # if another replica waits for that very snapshot.
        if self.snapshot_active and not self.snapshot_socket:
            for other in self.replicas:
                if other is not r and other.state == WAIT_BGSAVE_END and not other.socket_sync:
                    r.state = WAIT_BGSAVE_END
                    r.initial_offset = other.initial_offset
                    r.buf = list(other.buf)
                    r.buf_len = other.buf_len
                    self._send_fullresync(r, other.initial_offset)
                    log.notice("Waiting for end of BGSAVE for SYNC")
                    return NOREPLY
        # syncCommand: a diskless sync waits in the cron only for a delay.
        if not self._child_active() and (not srv.cfg.repl_diskless_sync or not r.capa_eof
                                         or not srv.cfg.repl_diskless_sync_delay):
            self.start_snapshot()
        elif srv.cfg.repl_diskless_sync and r.capa_eof and not self._child_active():
            if not self.diskless_wait_since:
                self.diskless_wait_since = time.monotonic()
            if srv.cfg.repl_diskless_sync_delay:
                log.notice("Delay next BGSAVE for diskless SYNC")
        return NOREPLY

    def _try_partial(self, r: ReplicaInfo, replid: str, offset: int) -> bool:
        """masterTryPartialResynchronization (spec §3)."""
        srv = self.srv
        backlog = self.backlog
        if replid == "?" :
            return False
        if replid != srv.replid and (replid != srv.replid2 or offset > srv.second_replid_offset):
            if replid != srv.replid and replid != srv.replid2:
                log.notice(f"Partial resynchronization not accepted: Replication ID mismatch (Replica asked for "
                           f"'{replid}', my replication IDs are '{srv.replid}' and '{srv.replid2}')")
            else:
                log.notice(f"Partial resynchronization not accepted: Requested offset for second ID was "
                           f"{offset}, but I can reply up to {srv.second_replid_offset}")
            return False
        if backlog is None or not backlog.can_serve(offset):
            log.notice(f"Unable to partial resync with replica {r.peer_ip()}:{r.port} for lack of backlog "
                       f"(Replica request was: {offset}).")
            return False
        r.state = ONLINE
        r.ack_time = time.monotonic()
        line = f"+CONTINUE {srv.replid}\r\n" if r.capa_psync2 else "+CONTINUE\r\n"
        data = line.encode() + backlog.read_from(offset)
        t = r.client.transport
        if t is not None:
            t.write(data)
            srv.stat_net_repl_output_bytes += len(data)
        log.notice(f"Partial resynchronization request from {r.peer_ip()}:{r.port} accepted. Sending "
                   f"{srv.master_repl_offset - offset + 1} bytes of backlog starting from offset {offset}.")
        return True

    def _send_fullresync(self, r: ReplicaInfo, offset: int) -> None:
        """replicationSetupSlaveForFullResync."""
        r.initial_offset = offset
        r.state = WAIT_BGSAVE_END
        if r.legacy:
            return
        t = r.client.transport
        if t is not None:
            t.write(f"+FULLRESYNC {self.srv.replid} {offset}\r\n".encode())
        log.notice(f"Full resync requested by replica {r.peer_ip()}:{r.port}")

    def _child_active(self) -> bool:
        return self.srv.child_type is not None  # type: ignore[attr-defined]

    # -- snapshots for replicas --------------------------------------------------------------

    def start_snapshot(self) -> bool:
        """startBgsaveForReplication for every replica waiting to start."""
        from . import rdb

        srv = self.srv
        waiting = [r for r in self.replicas if r.state == WAIT_BGSAVE_START]
        if not waiting or self._child_active():
            return False
        self.diskless_wait_since = 0.0
        socket_target = bool(srv.cfg.repl_diskless_sync) and all(r.capa_eof for r in waiting)
        # The stream after the snapshot starts with a SELECT.
        self.sink.tracker.reset()
        offset = srv.master_repl_offset
        if socket_target:
            ok = self._fork_socket_snapshot(waiting)
        else:
            log.notice("Starting BGSAVE for SYNC with target: disk")
            ok = rdb.bgsave(srv)
        if not ok:
            log.warning("BGSAVE for replication failed")
            for r in waiting:
                self._drop(r, "")
            return False
        self.snapshot_active = True
        self.snapshot_socket = socket_target
        for r in waiting:
            r.socket_sync = socket_target
            self._send_fullresync(r, offset)
        if socket_target:
            self.relay_targets = list(waiting)
            self.relay_eof = False
            self.relay_child_ok = None
            self._arm_relay()
        return True

    def _fork_socket_snapshot(self, waiting: list[ReplicaInfo]) -> bool:
        """rdbSaveToSlavesSockets: a child writes ``$EOF:<mark>\\r\\n`` + the
        RDB + the mark into a pipe; the parent relays it."""
        from . import rdb

        srv = self.srv
        mark = os.urandom(20).hex().encode()
        rfd, wfd = os.pipe()
        t0 = time.perf_counter()
        try:
            pid = os.fork()
        except OSError as e:
            os.close(rfd)
            os.close(wfd)
            log.warning(f"Can't save in background: fork: {e.strerror}")
            return False
        if pid == 0:  # pragma: no cover - child
            code = 1
            try:
                os.close(rfd)
                rdb.child_setup(srv)
                # A pipe cannot be fsynced (EINVAL past the first 32 MB of
                # incremental fsync): like rioInitWithFd, no autosync here.
                srv.cfg.rdb_save_incremental_fsync = 0
                with os.fdopen(wfd, "wb", buffering=1 << 16) as f:
                    f.write(b"$EOF:" + mark + b"\r\n")
                    rdb.write_snapshot(srv, f)
                    f.write(mark)
                code = 0
            except BaseException:  # noqa: BLE001 - the child exits here whatever happens
                code = 1
            finally:
                os._exit(code)
        os.close(wfd)
        os.set_blocking(rfd, False)
        rdb._record_fork(srv, int((time.perf_counter() - t0) * 1e6))
        srv.child_type = "rdb"  # type: ignore[attr-defined]
        srv.child_pid = pid  # type: ignore[attr-defined]
        st = rdb.state(srv)
        st.save_time_start = int(time.time())
        st.socket_target = True
        self.relay_fd = rfd
        log.notice("Starting BGSAVE for SYNC with target: replicas sockets")
        log.notice(f"Background RDB transfer started by pid {pid}")
        return True

    def _arm_relay(self) -> None:
        loop = self.srv.loop
        if loop is not None and self.relay_fd >= 0:
            loop.add_reader(self.relay_fd, self._relay)
            self.relay_paused = False

    def _relay(self) -> None:
        """rdbPipeReadHandler: pass the child's bytes to every target."""
        fd = self.relay_fd
        if fd < 0:
            return
        total = 0
        while total < (4 << 20):
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self._relay_done()
                return
            total += len(data)
            for r in list(self.relay_targets):
                t = r.client.transport
                if t is None or r.client.closed:
                    self.relay_targets.remove(r)
                    continue
                t.write(data)
                self.srv.stat_net_repl_output_bytes += len(data)
        if any((r.client.transport is not None and r.client.transport.get_write_buffer_size() > _RELAY_HIGH_WATER)
               for r in self.relay_targets):
            loop = self.srv.loop
            if loop is not None:
                loop.remove_reader(fd)
                self.relay_paused = True
                loop.call_later(0.01, self._relay_resume)

    def _relay_resume(self) -> None:
        if self.relay_fd < 0 or not self.relay_paused:
            return
        if any((r.client.transport is not None and r.client.transport.get_write_buffer_size() > _RELAY_HIGH_WATER)
               for r in self.relay_targets):
            loop = self.srv.loop
            if loop is not None:
                loop.call_later(0.01, self._relay_resume)
            return
        self._arm_relay()

    def _relay_done(self) -> None:
        loop = self.srv.loop
        if self.relay_fd >= 0:
            if loop is not None and not self.relay_paused:
                loop.remove_reader(self.relay_fd)
            os.close(self.relay_fd)
            self.relay_fd = -1
        self.relay_eof = True
        self._finish_socket_snapshot()

    def snapshot_done(self, ok: bool, socket_target: bool) -> None:
        """updateSlavesWaitingBgsave: called when the snapshot child exits."""
        self.snapshot_active = False
        if socket_target:
            self.relay_child_ok = ok
            if not ok and self.relay_fd >= 0:
                self._relay_done()
                return
            self._finish_socket_snapshot()
        else:
            for r in list(self.replicas):
                if r.state == WAIT_BGSAVE_END and not r.socket_sync:
                    if not ok:
                        self._drop(r, "SYNC failed. BGSAVE child returned an error")
                        continue
                    self._send_bulk(r)
        # Replicas that arrived meanwhile need a new snapshot.
        if any(r.state == WAIT_BGSAVE_START for r in self.replicas):
            loop = self.srv.loop
            if loop is not None:
                loop.call_soon(self._maybe_start_snapshot)

    def _finish_socket_snapshot(self) -> None:
        if not self.relay_eof or self.relay_child_ok is None:
            return
        targets = self.relay_targets
        self.relay_targets = []
        for r in targets:
            if r not in self.replicas or r.state != WAIT_BGSAVE_END:
                continue
            if not self.relay_child_ok:
                self._drop(r, "Diskless rdb transfer failed")
                continue
            log.notice(f"Streamed RDB transfer with replica {r.peer_ip()}:{r.port} succeeded (socket). Waiting "
                       f"for REPLCONF ACK from replica to enable streaming")
            if r.rdb_only:
                r.client.close_after_reply = True
                r.client.transport_close()
                continue
            r.state = ONLINE
            r.wait_ack = True
            r.ack_time = time.monotonic()

    def _send_bulk(self, r: ReplicaInfo) -> None:
        """sendBulkToSlave: ``$<len>\\r\\n`` + the RDB file, then online."""
        path = self.srv.cfg.dbfilename
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the task
            size = os.fstat(f.fileno()).st_size
        except OSError as e:
            log.warning(f"SYNC failed. Can't open/stat DB after BGSAVE: {e.strerror}")
            self._drop(r, "")
            return
        r.state = SEND_BULK
        loop = self.srv.loop
        assert loop is not None
        r.bulk_task = loop.create_task(self._bulk(r, f, size))

    async def _bulk(self, r: ReplicaInfo, f: Any, size: int) -> None:
        srv = self.srv
        c = r.client
        try:
            with f:
                t = c.transport
                if t is None:
                    return
                t.write(b"$%d\r\n" % size)
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    if c.closed:
                        return
                    t.write(chunk)
                    srv.stat_net_repl_output_bytes += len(chunk)
                    while not c.closed and t.get_write_buffer_size() > _SEND_HIGH_WATER:
                        await asyncio.sleep(0.002)
        except OSError as e:
            log.warning(f"Read error sending DB to replica: {e.strerror}")
            self._drop(r, "")
            return
        finally:
            r.bulk_task = None
        if c.closed or r not in self.replicas:
            return
        log.notice(f"Synchronization with replica {r.peer_ip()}:{r.port} succeeded")
        if r.rdb_only:
            c.transport_close()
            return
        r.state = ONLINE
        r.ack_time = time.monotonic()
        if r.buf:
            self._write_buf(r)

    def _maybe_start_snapshot(self) -> None:
        """replicationStartPendingFork: start a snapshot for waiting replicas
        (diskless ones after ``repl-diskless-sync-delay``)."""
        srv = self.srv
        waiting = [r for r in self.replicas if r.state == WAIT_BGSAVE_START]
        if not waiting or self._child_active():
            return
        diskless = bool(srv.cfg.repl_diskless_sync) and all(r.capa_eof for r in waiting)
        if diskless:
            if not self.diskless_wait_since:
                self.diskless_wait_since = time.monotonic()
            delay = int(srv.cfg.repl_diskless_sync_delay)
            maxr = int(srv.cfg.repl_diskless_sync_max_replicas)
            if (time.monotonic() - self.diskless_wait_since < delay
                    and not (maxr and len(waiting) >= maxr)):
                return
        self.start_snapshot()

    def _drop(self, r: ReplicaInfo, why: str) -> None:
        c = r.client
        if why:
            log.warning(why)
        t = c.transport
        if t is not None and why and not c.closed:
            t.write(b"-ERR " + why.encode() + b"\r\n")
        c.transport_close()

    # -- acknowledgements and WAIT --------------------------------------------------------

    def ack(self, r: ReplicaInfo, offset: int, fack: int | None = None) -> None:
        """REPLCONF ACK <offset> [FACK <aof offset>] from a replica; values only move forward."""
        if offset > r.ack_off:
            r.ack_off = offset
        if fack is not None and fack > r.fack_off:
            r.fack_off = fack
        r.ack_time = time.monotonic()
        if r.wait_ack:
            # The first ACK after a diskless transfer starts the stream.
            r.wait_ack = False
            if r.buf:
                self._write_buf(r)
        if self.waiting:
            self.check_waiting()
        self.check_failover()

    def good_replicas(self, offset: int) -> int:
        return sum(1 for r in self.replicas if r.state == ONLINE and not r.rdb_only and r.ack_off >= offset)

    def check_waiting(self) -> None:
        """processClientsWaitingReplicas."""
        from .blocking import unblock

        for c in list(self.waiting):
            st = c.blocked
            if st is None or c.closed:
                self.waiting.remove(c)
                continue
            need, woff = st.data
            n = self.good_replicas(woff)
            if n >= need:
                self.waiting.remove(c)
                unblock(c, n)

    def request_acks(self) -> None:
        """replicationRequestAckFromSlaves, done before the loop sleeps."""
        if self.getack_pending:
            return
        self.getack_pending = True
        loop = self.srv.loop
        if loop is not None:
            loop.call_soon(self._send_getack)
        else:
            self._send_getack()

    def _send_getack(self) -> None:
        self.getack_pending = False
        if self.replicas and self.backlog is not None and not self.is_replica and not self._writes_paused():
            self.feed(GETACK_BYTES)

    def _writes_paused(self) -> bool:
        srv = self.srv
        return srv.pause_type is not None and time.monotonic() < srv.pause_until

    def min_replicas_ok(self) -> bool:
        """checkGoodReplicasStatus for min-replicas-to-write."""
        cfg = self.srv.cfg
        need = int(cfg.min_replicas_to_write)
        if self.is_replica or not need or not cfg.min_replicas_max_lag:
            return True
        return self.good_lag_replicas() >= need

    def good_lag_replicas(self) -> int:
        lag = int(self.srv.cfg.min_replicas_max_lag)
        now = time.monotonic()
        return sum(1 for r in self.replicas if r.state == ONLINE and not r.rdb_only and now - r.ack_time <= lag)

    # -- promotion / demotion ------------------------------------------------------------

    def replicaof(self, host: str, port: int) -> None:
        """replicationSetMaster."""
        srv = self.srv
        was_primary = not self.is_replica
        if self.primary is not None and self.link_state == "connected":
            # freeClient(server.master) caches it: PSYNC with its history.
            self.cached = (srv.replid, self.reploff, self.primary.db.id)
            self.read_reploff = self.reploff
        self._drop_link()
        self.master_host = host
        self.master_port = port
        srv.cfg.replicaof = (host, port)  # CONFIG GET / CONFIG REWRITE show server.masterhost
        srv.is_replica = True
        self._update_sink()
        srv.update_gate()
        self._disconnect_blocked()
        if was_primary:
            # replicationCacheMasterUsingMyself: PSYNC with our own history.
            self.cached = (srv.replid, srv.master_repl_offset, 0)
            self.reploff = srv.master_repl_offset
            self.read_reploff = self.reploff
            # Sub-replicas must learn the new history through us.
            self.disconnect_replicas()
        self.link_state = "connect"
        self.link_down_since = time.monotonic()
        log.notice(f"Connecting to MASTER {host}:{port}")
        self.connect()

    def promote(self) -> None:
        """REPLICAOF NO ONE (replicationUnsetMaster)."""
        srv = self.srv
        if not self.is_replica:
            return
        log.notice("MASTER MODE enabled")
        self.master_host = None
        self.master_port = 0
        srv.cfg.replicaof = None
        self._drop_link()
        self.cached = None
        self.link_state = "none"
        self.shift_replid()
        srv.is_replica = False
        self.disconnect_replicas()
        self.sink.tracker.reset()
        if self.backlog is None:
            self.create_backlog()
        self._update_sink()
        srv.update_gate()
        self._disconnect_blocked()
        self.no_replicas_since = time.monotonic()
        self.aof_restart()

    def _disconnect_blocked(self) -> None:
        """disconnectAllBlockedClients: -UNBLOCKED, then close."""
        from .blocking import unblock

        for c in list(self.srv.clients.values()):
            if c.blocked is not None:
                unblock(c, Err("UNBLOCKED force unblock from blocking operation, instance state changed "
                               "(master -> replica?)"))
                c.close_after_reply = True
                c.flush()

    def disconnect_replicas(self) -> None:
        for r in list(self.replicas):
            r.client.transport_close()

    # -- replica side: the link ------------------------------------------------------------

    def connect(self) -> None:
        srv = self.srv
        loop = srv.loop
        if loop is None or self.master_host is None:
            return
        self.link_state = "connecting"
        self.connect_at = time.monotonic()
        self.last_io = time.monotonic()
        link = PrimaryLink(self)
        self.link = link
        host, port = self.master_host, self.master_port

        async def go() -> None:
            try:
                await loop.create_connection(lambda: link, host, port)
            except OSError as e:
                if self.link is link:
                    log.warning(f"Error condition on socket for SYNC: {e.strerror or e}")
                    self.link = None
                    self.link_state = "connect"

        loop.create_task(go())

    def _drop_link(self) -> None:
        link = self.link
        self.link = None
        if link is not None:
            link.close()
        p = self.primary
        if p is not None:
            self.primary = None
            p.closed = True
            self.srv.clients.pop(p.id, None)

    def link_lost(self, link: PrimaryLink) -> None:
        """The connection to the primary ended (or an attempt failed)."""
        if self.link is not link:
            return
        self.link = None
        srv = self.srv
        if self.link_state == "connected" and self.primary is not None:
            # replicationCacheMaster: keep the history to PSYNC later.
            log.notice("Connection with master lost.")
            log.notice("Caching the disconnected master state.")
            self.cached = (srv.replid, self.reploff, self.primary.db.id)
            # A partly read command (or open MULTI) is sent again after PSYNC.
            self.read_reploff = self.reploff
            self.link_down_since = time.monotonic()
        p = self.primary
        if p is not None:
            self.primary = None
            p.closed = True
            srv.clients.pop(p.id, None)
        if self.is_replica:
            self.link_state = "connect"
            # Reconnect at the next replication cron (about a second later).

    def replication_cron(self) -> None:
        """replicationCron (once a second)."""
        srv = self.srv
        now = time.monotonic()
        cfg = srv.cfg
        timeout = int(cfg.repl_timeout)
        if self.is_replica:
            link = self.link
            if link is not None and self.link_state in ("connecting", "handshake", "sync") and \
                    now - self.last_io > timeout:
                log.warning("Timeout connecting to the MASTER..." if self.link_state != "sync" else
                            "Timeout receiving bulk data from MASTER... If the problem persists try to set the "
                            "'repl-timeout' parameter in redis.conf to a larger value.")
                link.close()
                self.link_lost(link)
            elif link is not None and self.link_state == "connected" and now - self.last_io > timeout:
                log.warning("MASTER timeout: no data nor PING received...")
                link.close()
                self.link_lost(link)
            if self.link is None and self.link_state == "connect":
                log.notice(f"Connecting to MASTER {self.master_host}:{self.master_port}")
                self.connect()
            if self.link is not None and self.link_state == "connected" and not self.link.legacy:
                self.link.send_ack()
        # primary side
        for r in list(self.replicas):
            if r.state == ONLINE and not r.legacy and not r.rdb_only and now - r.ack_time > timeout:
                log.warning(f"Disconnecting timedout replica (streaming sync): {r.peer_ip()}:{r.port}")
                r.client.transport_close()
                continue
            if r.state == WAIT_BGSAVE_START or (r.state == WAIT_BGSAVE_END and not r.socket_sync):
                t = r.client.transport
                if t is not None and not r.client.closed:
                    t.write(b"\n")
        if self.replicas and not self.is_replica and self.backlog is not None:
            period = max(1, int(cfg.repl_ping_replica_period))
            if self.cron_ticks % period == 0 and not self._writes_paused():
                self.feed(PING_BYTES)
        self.cron_ticks += 1
        # repl-backlog-ttl on a primary without replicas
        ttl = int(cfg.repl_backlog_ttl)
        if (ttl and self.backlog is not None and not self.replicas and not self.is_replica
                and now - self.no_replicas_since > ttl):
            self.change_replid()
            self.clear_replid2()
            self.free_backlog()
            log.notice(f"Replication backlog freed after {ttl} seconds without connected replicas.")

    def cron(self) -> None:
        """Every server cron tick: pending snapshots; once a second the rest."""
        if any(r.state == WAIT_BGSAVE_START for r in self.replicas):
            self._maybe_start_snapshot()
        if self.failover_state == "waiting-for-sync":
            self.check_failover()
        now = time.monotonic()
        if now - self.last_second >= 1.0:
            self.last_second = now
            self.replication_cron()

    # -- replica side: applying the stream ----------------------------------------------------

    def make_primary_client(self, db: int, addr: str) -> Client:
        from .client import Client

        srv = self.srv
        c = Client(srv)
        c.is_primary_link = True
        c.authenticated = True
        c.addr = addr
        c.db = srv.dbs[db if 0 <= db < len(srv.dbs) else 0]
        srv.clients[c.id] = c
        self.primary = c
        return c

    def apply(self, link: PrimaryLink, data: bytes) -> None:
        """Run the primary's commands; count and forward what was applied."""
        srv = self.srv
        self.read_reploff += len(data)
        srv.stat_net_repl_input_bytes += len(data)
        link.parser.feed(data)
        link.raw += data
        c = self.primary
        if c is None or srv.loading or link.applying:
            return
        link.applying = True
        # Bytes of the command(s) since the last point outside MULTI; a
        # transaction may span reads, so the count lives on the link.
        consumed = link.consumed
        unforwarded = 0
        try:
            lookup = registry.lookup
            call = srv.call
            while True:
                try:
                    item = link.parser.next_command()
                except StreamProtocolError as e:
                    log.warning(f"Protocol error from master: {e}")
                    link.close()
                    self.link_lost(link)
                    return
                if item is None:
                    break
                argv, n = item
                consumed += n
                if argv:
                    cmd = lookup(argv)
                    if cmd is None or cmd.handler is None or not _arity_ok(cmd, argv):
                        log.warning(f"== CRITICAL == This replica is sending an error to its master: "
                                    f"'unknown command or wrong arity' after processing the command "
                                    f"'{argv[0].decode('utf-8', 'backslashreplace')}'")
                    elif c.mstate is not None and cmd.fullname not in ("exec", "discard", "multi"):
                        c.mstate.append((cmd, argv))
                    else:
                        srv.executing_primary_stream = True
                        try:
                            call(c, cmd, argv)
                        finally:
                            srv.executing_primary_stream = False
                        c.out.clear()
                        if self.primary is not c:
                            return  # the command changed the role (REPLICAOF, FAILOVER...)
                if c.mstate is None:
                    # The processed offset moves by whole commands (a
                    # transaction: at its EXEC), GETACK answers with it.
                    self.reploff += consumed
                    unforwarded += consumed
                    consumed = 0
        finally:
            link.applying = False
            link.consumed = consumed
            if unforwarded and self.primary is c:
                self._forward(link, unforwarded)

    def _forward(self, link: PrimaryLink, n: int) -> None:
        """Forward ``n`` applied bytes to this server's backlog and replicas."""
        raw = link.raw
        data = bytes(raw[:n])
        del raw[:n]
        srv = self.srv
        srv.master_repl_offset = self.reploff - n
        self.feed_raw_from_primary(data)
        srv.master_repl_offset = self.reploff

    # -- INFO / ROLE ----------------------------------------------------------------------------

    def info_fields(self) -> list[tuple[str, Any]]:
        srv = self.srv
        now = time.monotonic()
        out: list[tuple[str, Any]] = [("role", "slave" if self.is_replica else "master")]
        if self.is_replica:
            link = self.link
            up = self.link_state == "connected"
            out += [
                ("master_host", self.master_host),
                ("master_port", self.master_port),
                ("master_link_status", "up" if up else "down"),
                ("master_last_io_seconds_ago", int(now - self.last_io) if link is not None and up else -1),
                ("master_sync_in_progress", 1 if self.link_state == "sync" else 0),
                ("slave_read_repl_offset", self.read_reploff if (up or self.cached) else 1),
                ("slave_repl_offset", self.reploff if (up or self.cached) else 1),
            ]
            if self.link_state == "sync" and link is not None:
                total = link.rdb_size if link.rdb_size is not None else 0
                if link.rdb_size is None and not link.rdb_begun:
                    total = -1
                read = link.rdb_read
                left = max(0, total - read) if total > 0 else 0
                perc = (read * 100 / total) if total > 0 else 0.0
                out += [
                    ("master_sync_total_bytes", total),
                    ("master_sync_read_bytes", read),
                    ("master_sync_left_bytes", left),
                    ("master_sync_perc", f"{perc:.2f}"),
                    ("master_sync_last_io_seconds_ago", int(now - self.last_io)),
                ]
            if not up:
                out.append(("master_link_down_since_seconds",
                            int(now - self.link_down_since) if self.link_down_since else -1))
            out += [
                ("slave_priority", srv.cfg.replica_priority),
                ("slave_read_only", 1 if srv.cfg.replica_read_only else 0),
                ("replica_announced", 1 if srv.cfg.replica_announced else 0),
            ]
        out.append(("connected_slaves", len(self.replicas)))
        cfg = srv.cfg
        if cfg.min_replicas_to_write and cfg.min_replicas_max_lag:
            out.append(("min_slaves_good_slaves", self.good_lag_replicas()))
        i = 0
        for r in self.replicas:
            if r.rdb_only and r.state == ONLINE:
                continue
            st = r.state
            shown = "wait_bgsave" if st in (WAIT_BGSAVE_START, WAIT_BGSAVE_END) else st
            lag = int(now - r.ack_time) if st == ONLINE else 0
            out.append((f"slave{i}", f"ip={r.peer_ip()},port={r.port},state={shown},offset={r.ack_off},lag={lag}"))
            i += 1
        bl = self.backlog
        out += [
            ("master_failover_state", self.failover_state),
            ("master_replid", srv.replid),
            ("master_replid2", srv.replid2),
            ("master_repl_offset", srv.master_repl_offset),
            ("second_repl_offset", srv.second_replid_offset),
            ("repl_backlog_active", 1 if bl is not None else 0),
            ("repl_backlog_size", cfg.repl_backlog_size),
            ("repl_backlog_first_byte_offset", bl.first_byte_offset if bl is not None else 0),
            ("repl_backlog_histlen", bl.histlen if bl is not None else 0),
        ]
        return out

    def role(self) -> list[Any]:
        srv = self.srv
        if self.is_replica:
            up = self.link_state == "connected"
            state = {"none": "none", "connect": "connect", "connecting": "connecting", "handshake": "handshake",
                     "sync": "sync", "connected": "connected"}[self.link_state]
            return [b"slave", (self.master_host or "").encode(), self.master_port, state.encode(),
                    self.reploff if up else -1]
        replicas = []
        for r in self.replicas:
            if r.state != ONLINE or r.rdb_only:
                continue
            replicas.append([r.peer_ip().encode(), str(r.port).encode(), str(r.ack_off).encode()])
        return [b"master", srv.master_repl_offset, replicas]

    # -- RDB integration -------------------------------------------------------------------------

    def save_info(self) -> tuple[int, str, int] | None:
        """rdbPopulateSaveInfo: (repl-stream-db, repl-id, repl-offset) or None."""
        srv = self.srv
        if not self.is_replica:
            if self.backlog is None:
                return None
            db = self.sink.tracker.db
            return (db if db >= 0 else 0, srv.replid, srv.master_repl_offset)
        if self.primary is not None:
            return (self.primary.db.id, srv.replid, self.reploff)
        if self.cached is not None:
            return (self.cached[2], self.cached[0], self.cached[1])
        return None

    def after_startup_load(self) -> None:
        """loadDataFromDisk's replication part (spec §9, restarts)."""
        srv = self.srv
        from . import rdb

        info = rdb.state(srv).loaded_repl
        if info is None:
            return
        db, replid, offset = info
        if self.is_replica:
            self.cached = (replid, offset, db)
            srv.replid = replid
            srv.master_repl_offset = offset
            self.reploff = self.read_reploff = offset
            self.create_backlog()
        else:
            srv.replid2 = replid
            srv.second_replid_offset = offset + 1
            srv.master_repl_offset = offset
            self.create_backlog()

    def aof_fsynced_offset(self) -> int | None:
        """The processed offset known to be fsynced in this replica's AOF
        (None with the AOF off): everything applied once the AOF has no
        pending buffer and its file is fsynced to its end."""
        from . import aof

        srv = self.srv
        st = aof.state(srv)
        if st.state == aof.AOF_OFF:
            return None
        if not srv.aof_pending and not st.buf and st.fsync_offset >= st.current_size:
            self.fack = self.reploff
        return self.fack

    def aof_stop(self) -> bool:
        """stopAppendOnly before loading a primary's RDB; True if it was on."""
        from . import aof

        st = aof.state(self.srv)
        if st.state == aof.AOF_OFF:
            return False
        st.stop()
        return True

    def aof_restart(self) -> None:
        """restartAOFAfterSYNC: with ``appendonly yes``, start it again (a rewrite)."""
        from . import aof

        srv = self.srv
        st = aof.state(srv)
        if srv.cfg.appendonly and st.state == aof.AOF_OFF and not st.start():
            log.warning("Failed enabling the AOF after successful master synchronization! Trying it again "
                        "in one second.")

    # -- FAILOVER (spec §15) ----------------------------------------------------------------

    def find_replica(self, host: str, port: int) -> ReplicaInfo | None:
        """findReplica: by announced (or peer) ip and listening port."""
        for r in self.replicas:
            if r.peer_ip() == host and r.port == port:
                return r
        return None

    def start_failover(self, host: str | None, port: int, timeout_ms: int, force: bool) -> None:
        """failoverCommand's tail: pause writes and wait for a synced replica."""
        srv = self.srv
        self.failover_target = (host, port) if host is not None else None
        self.failover_end = time.monotonic() + timeout_ms / 1000 if timeout_ms else 0.0
        self.failover_force = force
        self.failover_state = "waiting-for-sync"
        if host is not None:
            log.notice(f"FAILOVER requested to {host}:{port}.")
        else:
            log.notice("FAILOVER requested to any replica.")
        # pauseActions(PAUSE_DURING_FAILOVER): client writes wait, no expiry,
        # no PINGs / GETACKs on the stream.
        srv.pause_type = "write"
        srv.pause_until = float("inf")
        srv.update_gate()
        self.request_acks_now()
        self.check_failover()

    def request_acks_now(self) -> None:
        """A GETACK even while paused: the failover needs fresh offsets."""
        if self.replicas and self.backlog is not None and not self.is_replica:
            self.feed(GETACK_BYTES)

    def check_failover(self) -> None:
        """updateFailoverStatus: on each ACK and every cron tick."""
        if self.failover_state != "waiting-for-sync":
            return
        srv = self.srv
        if self.failover_end and time.monotonic() >= self.failover_end:
            if self.failover_force and self.failover_target is not None:
                host, port = self.failover_target
                log.notice(f"FAILOVER to {host}:{port} time out exceeded, failing over.")
                self.failover_state = "failover-in-progress"
                self.replicaof(host, port)
            else:
                self.abort_failover("Replica never caught up before timeout")
            return
        target: ReplicaInfo | None = None
        if self.failover_target is not None:
            target = self.find_replica(*self.failover_target)
        else:
            for r in self.replicas:
                if r.ack_off == srv.master_repl_offset and r.state == ONLINE:
                    target = r
                    self.failover_target = (r.peer_ip(), r.port)
                    break
        if target is not None and target.ack_off == srv.master_repl_offset and self.failover_target is not None:
            host, port = self.failover_target
            self.failover_state = "failover-in-progress"
            log.notice(f"Failover target {host}:{port} is synced, failing over.")
            self.replicaof(host, port)

    def abort_failover(self, why: str) -> None:
        """abortFailover: back to primary if needed, unpause."""
        if self.failover_state == "no-failover":
            return
        if self.failover_target is not None:
            log.notice(f"FAILOVER to {self.failover_target[0]}:{self.failover_target[1]} aborted: {why}")
        else:
            log.notice(f"FAILOVER to any replica aborted: {why}")
        if self.failover_state == "failover-in-progress":
            self.failover_state = "no-failover"
            self.promote()
        self.clear_failover()

    def clear_failover(self) -> None:
        """clearFailoverState: writes resume."""
        srv = self.srv
        self.failover_state = "no-failover"
        self.failover_target = None
        self.failover_end = 0.0
        self.failover_force = False
        if srv.pause_type is not None and srv.pause_until == float("inf"):
            srv.unpause()


def _arity_ok(cmd: registry.Command, argv: list[bytes]) -> bool:
    a = cmd.arity
    return (a > 0 and len(argv) == a) or (a < 0 and len(argv) >= -a)


class PrimaryLink(asyncio.Protocol):
    """The replica's connection to its primary."""

    def __init__(self, repl: Replication) -> None:
        self.repl = repl
        self.transport: asyncio.Transport | None = None
        srv = repl.srv
        cfg = srv.cfg
        cached = repl.cached
        port = int(cfg.replica_announce_port) or int(cfg.port)
        self.hs = ReplicaHandshake(HandshakeConfig(
            listening_port=port,
            announce_ip=cfg.replica_announce_ip or None,
            masteruser=cfg.masteruser or None,
            masterauth=cfg.masterauth or None,
            psync_replid=cached[0] if cached is not None else None,
            psync_offset=cached[1] + 1 if cached is not None else -1,
            failover=repl.failover_state == "failover-in-progress",
        ))
        self.parser = StreamParser()
        self.raw = bytearray()
        self.consumed = 0  # applied bytes of an open MULTI (counted at its EXEC)
        self.applying = False
        self.burst = 0  # stream bytes applied since reading last paused
        self.read_paused = False
        self.legacy = False
        self.closed = False
        self.full: tuple[str, int] | None = None
        self.rdb_size: int | None = None
        self.rdb_begun = False
        self.rdb_read = 0
        self.rdb_file: Any = None
        self.rdb_path = ""
        self.eof_mark = False
        self.loading = False
        self.pending_stream: list[bytes] = []
        self.last_nl = 0.0
        self.peer = ""

    # asyncio protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        repl = self.repl
        if repl.link is not self:
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        log.notice("MASTER <-> REPLICA sync started")
        repl.link_state = "handshake"
        repl.last_io = time.monotonic()
        self._handle(self.hs.start())

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        repl = self.repl
        repl.last_io = time.monotonic()
        if self.hs.state == "connected" and not self.loading and self.rdb_file is None:
            repl.apply(self, data)
            self.burst += len(data)
            if self.burst >= _APPLY_BURST and not self.read_paused:
                self._pause_one_turn()
            return
        self._handle(self.hs.feed(data))

    def _pause_one_turn(self) -> None:
        """Stop reading until the next loop turn, so that clients waiting
        meanwhile are served between two batches of the stream."""
        t = self.transport
        loop = self.repl.srv.loop
        if t is None or loop is None or t.is_closing():
            return
        t.pause_reading()
        self.read_paused = True
        loop.call_soon(self._resume_reading)

    def _resume_reading(self) -> None:
        self.read_paused = False
        self.burst = 0
        t = self.transport
        if t is not None and not self.closed and not t.is_closing():
            t.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._discard_rdb()
        self.repl.link_lost(self)

    def close(self) -> None:
        self.closed = True
        self._discard_rdb()
        t = self.transport
        if t is not None:
            t.close()

    def send(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not self.closed:
            t.write(data)

    def send_ack(self) -> None:
        """REPLCONF ACK <processed offset>, and with the AOF on (as 7.2
        replicas do, for WAITAOF) FACK <offset fsynced to the AOF>; a 7.0
        primary ignores what follows the ACK offset."""
        repl = self.repl
        argv = [b"REPLCONF", b"ACK", str(repl.reploff).encode()]
        fack = repl.aof_fsynced_offset()
        if fack is not None:
            argv += [b"FACK", str(fack).encode()]
        self.send(encode_command(argv))

    # events of the handshake machine
    def _handle(self, events: list[Any]) -> None:
        repl = self.repl
        for ev in events:
            if self.closed:
                return
            t = type(ev)
            if t is Send:
                self.send(ev.data)
            elif t is Keepalive:
                continue
            elif t is FullResync:
                self.full = (ev.replid, ev.offset)
                if repl.failover_state == "failover-in-progress":
                    repl.clear_failover()
                log.notice(f"Full resync from master: {ev.replid}:{ev.offset}")
            elif t is Legacy:
                self.legacy = True
                log.notice("Retrying with SYNC...")
            elif t is Continue:
                self._continue(ev.replid)
                if repl.failover_state == "failover-in-progress":
                    repl.clear_failover()
            elif t is RdbBegin:
                self._rdb_begin(ev.size)
            elif t is RdbChunk:
                self._rdb_chunk(ev.data)
            elif t is RdbEnd:
                self._rdb_end()
            elif t is StreamData:
                if self.loading or self.rdb_file is not None:
                    self.pending_stream.append(ev.data)
                else:
                    repl.apply(self, ev.data)
            elif t is Failed:
                log.warning(f"Master replied with an error during the handshake: {ev.reason}")
                self.close()
                repl.link_lost(self)
                if repl.failover_state == "failover-in-progress":
                    repl.abort_failover("Failover target rejected psync request")
                return

    def _continue(self, new_id: str | None) -> None:
        """+CONTINUE: the cached primary becomes the live one (spec §9)."""
        repl = self.repl
        srv = repl.srv
        cached = repl.cached
        log.notice("Successful partial resynchronization with master.")
        if new_id and new_id != srv.replid:
            srv.replid2 = srv.replid
            srv.second_replid_offset = srv.master_repl_offset + 1
            srv.replid = new_id
            log.notice(f"Master replication ID changed to {new_id}")
            repl.disconnect_replicas()
        db = cached[2] if cached is not None else 0
        repl.cached = None
        repl.make_primary_client(db, self.peer)
        if repl.backlog is None:
            repl.create_backlog()
        repl.link_state = "connected"
        log.notice("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.")

    def _rdb_begin(self, size: int | None) -> None:
        repl = self.repl
        repl.link_state = "sync"
        self.rdb_begun = True
        self.rdb_size = size
        self.eof_mark = size is None
        self.rdb_read = 0
        self.rdb_path = f"temp-{int(time.time())}.{os.getpid()}.rdb"
        try:
            self.rdb_file = open(self.rdb_path, "wb")  # noqa: SIM115 - closed in _rdb_end/_discard_rdb
        except OSError as e:
            log.warning(f"Opening the temp file needed for MASTER <-> REPLICA synchronization: {e.strerror}")
            self.close()
            repl.link_lost(self)
            return
        if size is None:
            log.notice("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk")
        else:
            log.notice(f"MASTER <-> REPLICA sync: receiving {size} bytes from master to disk")

    def _rdb_chunk(self, data: bytes) -> None:
        f = self.rdb_file
        if f is None:
            return
        try:
            f.write(data)
        except OSError as e:
            log.warning(f"Write error or short write writing to the DB dump file needed for MASTER <-> REPLICA "
                        f"synchronization: {e.strerror}")
            self.close()
            self.repl.link_lost(self)
            return
        self.rdb_read += len(data)
        self.repl.srv.stat_net_repl_input_bytes += len(data)

    def _discard_rdb(self) -> None:
        f = self.rdb_file
        if f is not None:
            self.rdb_file = None
            try:
                f.close()
            except OSError:
                pass
            try:
                os.unlink(self.rdb_path)
            except OSError:
                pass

    def _rdb_end(self) -> None:
        f = self.rdb_file
        if f is None:
            return
        try:
            f.flush()
            os.fsync(f.fileno())
            f.close()
        except OSError as e:
            log.warning(f"Failed trying to sync the temp DB to disk in MASTER <-> REPLICA synchronization: "
                        f"{e.strerror}")
            self._discard_rdb()
            self.close()
            self.repl.link_lost(self)
            return
        self.rdb_file = None
        self.loading = True
        loop = self.repl.srv.loop
        assert loop is not None
        loop.create_task(self._load())

    async def _load(self) -> None:
        """readSyncBulkPayload's second half: flush, load, adopt the history."""
        from . import rdb
        from .commands.keys import _empty_db

        repl = self.repl
        srv = repl.srv
        cfg = srv.cfg
        # repl-diskless-load: "disabled" loads from dbfilename (the transfer
        # replaces it); "on-empty-db" does so only when the dataset is empty,
        # otherwise like "disabled"; "swapdb" keeps the old dataset aside
        # and puts it back if the new one fails to load.  The non-disk modes
        # load the received bytes without replacing dbfilename.
        mode = cfg.repl_diskless_load
        empty = not any(db.data for db in srv.dbs)
        disk_load = mode == "disabled" or (mode == "on-empty-db" and not empty)
        swap = mode == "swapdb"
        path = self.rdb_path
        if disk_load:
            try:
                os.rename(path, cfg.dbfilename)
                path = cfg.dbfilename
            except OSError as e:
                log.warning(f"Failed trying to rename the temp DB into {cfg.dbfilename} in MASTER <-> REPLICA "
                            f"synchronization: {e.strerror}")
                self.close()
                repl.link_lost(self)
                return
        aof_was_on = repl.aof_stop()
        # The new history starts here: sub-replicas must resync, the
        # cached primary and our backlog are obsolete.
        repl.cached = None
        repl.disconnect_replicas()
        repl.free_backlog()
        backup: list[tuple[Any, Any, Any, Any]] | None = None
        old_libraries: dict[Any, Any] = {}
        if swap:
            log.notice("MASTER <-> REPLICA sync: Keeping the old dataset aside (swapdb)")
            backup = [(db.data, db.expires, db.access, db.strobj) for db in srv.dbs]
            old_libraries = dict(srv.function_libraries)  # type: ignore[attr-defined]
        else:
            log.notice("MASTER <-> REPLICA sync: Flushing old data")
        _empty_db(srv, -1)
        srv.function_libraries.clear()  # type: ignore[attr-defined]
        log.notice("MASTER <-> REPLICA sync: Loading DB in memory")
        rst = rdb.state(srv)
        ok = True
        # No collections during the load, and what was loaded leaves the
        # collector's generations (gc.freeze, as after a start-up load):
        # else the first allocation after it traverses every loaded
        # container, about 0.3 s per million keys.  Cyclic garbage made so
        # far is collected first, or it would be frozen for good.
        gc_was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            last = time.monotonic()
            for _ in rdb.load_steps(srv, path):
                now = time.monotonic()
                if now - last >= 1.0:
                    last = now
                    self.send(b"\n")  # keepalive while loading
                await asyncio.sleep(0)
                if self.closed:
                    break
        except (OSError, rdb.LoadError) as e:
            lines = e.lines if isinstance(e, rdb.LoadError) else [str(e)]
            for line in lines:
                log.warning(line)
            log.warning("Failed trying to load the MASTER synchronization DB from disk, check server logs.")
            ok = False
        finally:
            gc.freeze()
            if gc_was_enabled:
                gc.enable()
            if not disk_load:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        self.loading = False
        if not ok or self.closed or repl.link is not self:
            _empty_db(srv, -1)
            if backup is not None:
                # swapdb: the half-loaded data goes, the old dataset comes back.
                log.notice("MASTER <-> REPLICA sync: Discarding the half-loaded data, restoring the old dataset")
                srv.function_libraries.clear()  # type: ignore[attr-defined]
                for db, (data, expires, access, strobj) in zip(srv.dbs, backup, strict=True):
                    db.data, db.expires, db.access, db.strobj = data, expires, access, strobj
                for name, code in old_libraries.items():
                    srv.function_libraries[name] = code  # type: ignore[attr-defined]
            if not self.closed:
                self.close()
                repl.link_lost(self)
            if aof_was_on:
                repl.aof_restart()
            return
        loaded = rst.loaded_repl
        stream_db = loaded[0] if loaded is not None else 0
        replid, offset = self.full if self.full is not None else (new_replid(), 0)
        srv.replid = replid
        srv.master_repl_offset = offset
        repl.clear_replid2()
        repl.reploff = offset
        repl.read_reploff = offset
        repl.create_backlog()
        repl.make_primary_client(stream_db, self.peer)
        repl.link_state = "connected"
        log.notice("MASTER <-> REPLICA sync: Finished with success")
        if self.eof_mark:
            self.send_ack()
        if aof_was_on:
            repl.aof_restart()
        pending = b"".join(self.pending_stream)
        self.pending_stream = []
        if pending:
            repl.apply(self, pending)
        if srv.ready_keys and srv.on_ready_keys is not None:
            srv.on_ready_keys()


def install(srv: Server) -> Replication:
    """Create ``srv.repl`` and hook it into the cron and the RDB layer."""
    repl = Replication(srv)
    srv.repl = repl
    srv.cron_hooks.append(repl.cron)
    srv.loaded_hooks.append(repl.after_startup_load)
    srv.cfg.add_hook("min-replicas-to-write", lambda old, new: srv.update_gate())
    srv.cfg.add_hook("min-replicas-max-lag", lambda old, new: srv.update_gate())

    def configured_primary() -> None:
        # The replicaof directive: a replica from the start (its RDB is
        # loaded as a replica's); the cron connects once loaded.
        target = srv.cfg.replicaof
        if target is not None:
            repl.master_host, repl.master_port = target[0], int(target[1])
            srv.is_replica = True
            repl.link_state = "connect"
            srv.update_gate()

    srv.startup_hooks.append(configured_primary)
    srv.cfg.add_hook("repl-backlog-size", lambda old, new: repl.backlog.resize(int(new)) if repl.backlog else None)
    return repl


__all__ = ["Replication", "ReplicaInfo", "PrimaryLink", "install", "new_replid"]
