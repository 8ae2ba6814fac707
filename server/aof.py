"""AOF persistence on the server side (aof.c and the AOF parts of server.c,
debug.c of Redis 7.0.15; spec/aof-format.md).

The bytes are the codec's business (``ambry.persistence.aof``: manifest,
command parser, writer); this module joins them to the server:

* **writing** -- :class:`AOF` is a sink of the one path for effects
  (effects.py): every emitted entry arrives already rewritten, with its db,
  and is framed as feedAppendOnlyFile does (``#TS`` annotation, ``SELECT``
  when the db changes) into an in-memory buffer.  :meth:`AOF.flush` is
  flushAppendOnlyFile: one ``write`` of the buffer, then ``fdatasync`` in
  the main thread (``appendfsync always``), a background fsync at most once
  a second in the :class:`_Bio` thread (``everysec``; a write is postponed
  for up to 2 s while an fsync is still running), or nothing (``no``).
* **before replies** -- Redis writes the AOF in beforeSleep, before it
  writes to clients.  Here replies of a read batch leave in
  ``Client.flush``; while the buffer holds data ``srv.aof_pending`` is set
  and ``Client.flush`` calls :meth:`AOF.flush` first (one attribute test
  when nothing is pending), so with ``appendfsync always`` no reply can
  acknowledge a write that is not on disk, and with the other policies not
  one that has not reached the kernel.  The cron flushes what no reply
  triggered (active-expiry DELs) and retries failed or postponed writes.
* **loading** -- :func:`load_steps` is loadAppendOnlyFiles: the manifest's
  base (an RDB through server/rdb.py's loader when it starts with
  ``REDIS``, its RESP tail for an old-style file) then each incr file,
  replayed command by command through ``Server.call`` by a fake client
  while ``srv.loading`` is set (MULTI queues, EXEC runs the queue, nothing
  is propagated, nothing expires, nothing blocks).  A truncated tail is cut
  at the end of the last complete command -- before an unfinished MULTI,
  also when the cut is inside a command of that MULTI (Redis 7.0 cuts after
  the last complete command there and leaves a dangling MULTI that swallows
  the next write; not copied) -- when ``aof-load-truncated`` is on and the
  file is the last one; a format error is always fatal.
* **rewriting** -- :func:`rewrite_background` is
  rewriteAppendOnlyFileBackground: a new incr file is opened first (so no
  write made during the rewrite is lost), then a forked child writes the
  dataset (RDB through server/rdb.py's writer, or commands) to
  ``temp-rewriteaof-bg-<pid>.aof``; the cron reaps it and
  :func:`_rewrite_done` installs it as the next base, turns the old base
  and incr files into history, persists the manifest atomically (temp file,
  fsync, rename, directory fsync) and deletes history files in the
  background.  A rewrite that fails at any step leaves the previous files
  and manifest loadable.

Invariants:

* the manifest on disk always lists only complete files: a new file is
  created before it is listed, and a listed file is removed only after a
  manifest without it is on disk;
* at most one child process (``srv.child_type``, shared with BGSAVE);
* while loading, the sink is not registered and ``srv.loading`` keeps the
  propagator off, so replayed commands are never written back.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ambry.persistence.aof import (
    TYPE_BASE,
    Annotation,
    AOFFormatError,
    AOFInfo,
    AOFParser,
    AOFTruncatedError,
    AOFWriter,
    Manifest,
    ManifestError,
    RewriteEmitter,
    is_rdb,
    manifest_name,
    parse_manifest,
    temp_incr_name,
    temp_manifest_name,
)

from . import rdb, registry
from .client import Client
from .effects import TARGET_AOF
from .log import log
from .reply import Err

if TYPE_CHECKING:
    from .core import Server

# aof_state
AOF_OFF = 0
AOF_ON = 1
AOF_WAIT_REWRITE = 2

# loadSingleAppendOnlyFile / loadAppendOnlyFiles results
AOF_OK = 0
AOF_NOT_EXIST = 1
AOF_EMPTY = 2
AOF_OPEN_ERR = 3
AOF_FAILED = 4
AOF_TRUNCATED = 5

#: AOF_WRITE_LOG_ERROR_RATE: seconds between two logs of a failing write.
WRITE_LOG_ERROR_RATE = 30
#: REDIS_AUTOSYNC_BYTES with aof-rewrite-incremental-fsync.
AUTOSYNC_BYTES = 4 * 1024 * 1024
#: AOF_REWRITE_LIMITE_THRESHOLD / _MAX_MINUTES: failed rewrites before the
#: automatic ones back off, and the longest back-off.
REWRITE_LIMIT_THRESHOLD = 3
REWRITE_LIMIT_MAX_MINUTES = 60
#: Bytes gathered before a write to a rewrite's output file.
_WRITE_CHUNK = 1 << 20
#: The exit code of a child that caught SIGUSR1 (SERVER_CHILD_NOERROR_RETVAL).
_CHILD_NOERROR_RETVAL = 255

_MISCONF_AOF = "MISCONF Errors writing to the AOF file: "


class _Bio:
    """bio.c's AOF jobs in one background thread: fsync of the current file
    (everysec), fsync-and-close of a retired incr file, unlink of history and
    temp files.  ``fsync_pending`` is bioPendingJobsOfType(BIO_AOF_FSYNC);
    ``fsync_errno`` the last background fsync error (0 when the last one
    succeeded), which refuses writes with -MISCONF as Redis does."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.jobs: deque[tuple[str, Any]] = deque()
        self.fsync_pending = 0
        self.fsync_errno = 0
        self.thread: threading.Thread | None = None

    def submit(self, kind: str, arg: Any) -> None:
        with self.cond:
            self.jobs.append((kind, arg))
            if kind == "fsync":
                self.fsync_pending += 1
            self.cond.notify()
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="ambry-bio-aof", daemon=True)
            self.thread.start()

    def drain(self) -> None:
        """bioDrainWorker: wait until every queued job is done."""
        with self.cond:
            while self.jobs:
                self.cond.wait(0.1)

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.jobs:
                    self.cond.wait()
                kind, arg = self.jobs[0]
            try:
                if kind == "fsync":
                    os.fdatasync(arg)
                    self.fsync_errno = 0
                elif kind == "close":
                    try:
                        os.fdatasync(arg)
                    finally:
                        os.close(arg)
                elif kind == "unlink":
                    os.unlink(arg)
            except OSError as e:
                # The fd may have been closed meanwhile (AOF turned off):
                # only a real I/O error marks the AOF as failing.
                if kind == "fsync" and e.errno not in (errno.EBADF, errno.EINVAL):
                    self.fsync_errno = e.errno or errno.EIO
            with self.cond:
                self.jobs.popleft()
                if kind == "fsync":
                    self.fsync_pending -= 1
                self.cond.notify_all()


class AOF:
    """The server's AOF state (the ``aof_*`` fields of redisServer) and the
    AOF sink of the effect path (``targets``/``write``/``flush_unit``)."""

    targets = TARGET_AOF

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.state = AOF_OFF
        self.manifest = Manifest()
        self.fd = -1
        self.buf: list[bytes] = []
        self.buf_len = 0
        self.writer = AOFWriter()
        self.current_size = 0
        self.last_incr_size = 0
        self.rewrite_base_size = 0
        self.fsync_offset = 0
        self.last_fsync = int(time.time())
        self.flush_postponed_start = 0
        self.delayed_fsync = 0
        self.last_write_ok = True
        self.last_write_errno = 0
        self.last_write_error_log = 0
        self.rewrite_scheduled = False
        self.rewrite_time_start = -1
        self.rewrite_time_last = -1
        self.lastbgrewrite_ok = True
        self.rewrites = 0
        self.consecutive_failures = 0
        self.limit_next_delay = 0
        self.limit_next_time = 0
        self.bio = _Bio()
        self.sink_added = False
        # clients whose replies wait for this loop iteration's AOF write
        self.held: dict[Client, None] = {}
        self.write_scheduled = False

    # -- configuration shortcuts ---------------------------------------------------------

    @property
    def dirname(self) -> str:
        return str(self.srv.cfg.appenddirname)

    @property
    def filename(self) -> str:
        return str(self.srv.cfg.appendfilename)

    def path(self, name: str) -> str:
        """makePath(aof_dirname, name)"""
        return os.path.join(self.dirname, name)

    # -- the sink (feedAppendOnlyFile) -------------------------------------------------------

    def write(self, db: int, argv: list[bytes]) -> None:
        """feedAppendOnlyFile: frame one entry and buffer it -- while AOF is
        on, or while it is being turned on and the rewrite child runs (the
        child's snapshot covers what came before)."""
        srv = self.srv
        w = self.writer
        if w.timestamps:
            data = w.command(db, argv, int(time.time()))
        else:
            data = w.command(db, argv)
        if self.state == AOF_ON or (self.state == AOF_WAIT_REWRITE and srv.child_type == "aof"):  # type: ignore[attr-defined]
            self.buf.append(data)
            self.buf_len += len(data)
            srv.aof_pending = True

    def flush_unit(self) -> None:
        """Units need nothing more: the buffer reaches the file before the
        next reply (Client.flush) or at the next cron tick."""

    def attach(self) -> None:
        """Start receiving the effect stream."""
        if not self.sink_added:
            self.writer.timestamps = bool(self.srv.cfg.aof_timestamp_enabled)
            self.srv.propagator.add_sink(self)
            self.sink_added = True

    def detach(self) -> None:
        if self.sink_added:
            self.srv.propagator.remove_sink(self)
            self.sink_added = False

    # -- flushAppendOnlyFile ---------------------------------------------------------------

    def before_reply(self, c: Client) -> bool:
        """Client.flush's hook (``srv.aof_flush``), called while the buffer
        holds data: what beforeSleep does before replies are written.  In a
        running server the client's replies are held and the buffer is
        written (and fsynced) once for every client served in this
        event-loop iteration (:meth:`_write_then_reply`); True tells
        Client.flush to hold them.  Without an event loop (tests, the
        start-up) the buffer is written at once."""
        loop = self.srv.loop
        if loop is None or not loop.is_running():
            self.flush(False)
            return False
        self.held[c] = None
        if not self.write_scheduled:
            self.write_scheduled = True
            loop.call_soon(self._write_then_reply)
        return True

    def _write_then_reply(self) -> None:
        """beforeSleep: flushAppendOnlyFile, then handleClientsWithPendingWrites."""
        self.write_scheduled = False
        self.flush(False)
        held = self.held
        self.held = {}
        srv = self.srv
        # A write postponed behind a slow background fsync (everysec) lets the
        # replies go, as Redis does; the data follows within 2 seconds.
        pending = srv.aof_pending
        srv.aof_pending = False
        try:
            for c in held:
                c.flush()
        finally:
            srv.aof_pending = pending or bool(self.buf)

    def flush(self, force: bool) -> None:
        """flushAppendOnlyFile: write the buffer (one write), then fsync as
        the policy says.  Errors: ``always`` exits (a reply may already be
        queued and the change cannot be undone); otherwise the unwritten part
        stays buffered, a partial write is truncated away, and writes are
        refused with -MISCONF until a write succeeds."""
        srv = self.srv
        cfg = srv.cfg
        policy = cfg.appendfsync
        sync_in_progress = False
        now = int(time.time())
        if not self.buf:
            srv.aof_pending = False
            # everysec: data written but not yet fsynced gets its fsync even
            # when nothing new arrives.
            if (policy == "everysec" and self.fd != -1 and self.fsync_offset != self.current_size
                    and now > self.last_fsync and not self.bio.fsync_pending):
                self._try_fsync(policy, False, now)
            return
        if self.fd == -1:
            return
        if policy == "everysec":
            sync_in_progress = self.bio.fsync_pending > 0
            if sync_in_progress and not force:
                # A background fsync is still running: postpone the write
                # (write(2) would block behind it), for at most 2 seconds.
                if self.flush_postponed_start == 0:
                    self.flush_postponed_start = now
                    return
                if now - self.flush_postponed_start < 2:
                    return
                self.delayed_fsync += 1
                log.notice("Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer "
                           "without waiting for fsync to complete, this may slow down Redis.")
        data = self.buf[0] if len(self.buf) == 1 else b"".join(self.buf)
        monitor = cfg.latency_monitor_threshold
        t0 = time.perf_counter() if monitor else 0.0
        nwritten, err = _write_all(self.fd, data)
        if monitor:
            ms = int((time.perf_counter() - t0) * 1000)
            if sync_in_progress:
                _latency(srv, "aof-write-pending-fsync", ms)
            elif srv.child_type is not None:  # type: ignore[attr-defined]
                _latency(srv, "aof-write-active-child", ms)
            else:
                _latency(srv, "aof-write-alone", ms)
            _latency(srv, "aof-write", ms)
        self.flush_postponed_start = 0
        if nwritten != len(data):
            can_log = now - self.last_write_error_log > WRITE_LOG_ERROR_RATE
            if can_log:
                self.last_write_error_log = now
            if nwritten < 0:
                if can_log:
                    log.warning(f"Error writing to the AOF file: {os.strerror(err)}")
                self.last_write_errno = err
            else:
                if can_log:
                    log.warning(f"Short write while writing to the AOF file: (nwritten={nwritten}, "
                                f"expected={len(data)})")
                try:
                    os.ftruncate(self.fd, self.last_incr_size)
                    nwritten = -1  # nothing partial is left in the file
                except OSError as e:
                    if can_log:
                        log.warning("Could not remove short write from the append-only file.  Redis may refuse "
                                    f"to load the AOF the next time it starts.  ftruncate: {e.strerror}")
                self.last_write_errno = errno.ENOSPC
            if policy == "always":
                log.warning("Can't recover from AOF write error when the AOF fsync policy is 'always'. "
                            "Exiting...")
                rdb.terminate(1)
            self.last_write_ok = False
            self._update_misconf()
            if nwritten > 0:
                self.current_size += nwritten
                self.last_incr_size += nwritten
                rest = data[nwritten:]
                self.buf = [rest]
                self.buf_len = len(rest)
            else:
                self.buf = [data]
                self.buf_len = len(data)
            return
        if not self.last_write_ok:
            log.warning("AOF write error looks solved, Redis can write again.")
            self.last_write_ok = True
            self._update_misconf()
        self.current_size += nwritten
        self.last_incr_size += nwritten
        self.buf = []
        self.buf_len = 0
        srv.aof_pending = False
        self._try_fsync(policy, sync_in_progress, now)

    def _try_fsync(self, policy: str, sync_in_progress: bool, now: int) -> None:
        """flushAppendOnlyFile's try_fsync part."""
        srv = self.srv
        if srv.cfg.no_appendfsync_on_rewrite and srv.child_type is not None:  # type: ignore[attr-defined]
            return
        if policy == "always":
            t0 = time.perf_counter()
            try:
                os.fdatasync(self.fd)
            except OSError as e:
                log.warning("Can't persist AOF for fsync error when the AOF fsync policy is 'always': "
                            f"{e.strerror}. Exiting...")
                rdb.terminate(1)
            if srv.cfg.latency_monitor_threshold:
                _latency(srv, "aof-fsync-always", int((time.perf_counter() - t0) * 1000))
            self.fsync_offset = self.current_size
            self.last_fsync = now
        elif policy == "everysec" and now > self.last_fsync:
            if not sync_in_progress:
                self.bio.submit("fsync", self.fd)
                self.fsync_offset = self.current_size
            self.last_fsync = now

    def _update_misconf(self) -> None:
        """writeCommandsDeniedByDiskError's AOF half, kept in
        ``srv.aof_misconf`` for server/rdb.py's update_misconf."""
        srv = self.srv
        err = None
        if self.state != AOF_OFF:
            if not self.last_write_ok:
                err = Err(_MISCONF_AOF + os.strerror(self.last_write_errno or errno.EIO))
            elif self.bio.fsync_errno:
                err = Err(_MISCONF_AOF + os.strerror(self.bio.fsync_errno))
        if (srv.aof_misconf is None) != (err is None):  # type: ignore[attr-defined]
            srv.aof_misconf = err  # type: ignore[attr-defined]
            rdb.update_misconf(srv)

    # -- manifest on disk --------------------------------------------------------------

    def persist_manifest(self, am: Manifest) -> bool:
        """persistAofManifest: when changed, write ``temp-<F>.manifest``,
        fsync it, rename it over the manifest and fsync the directory."""
        if not am.dirty:
            return True
        name = manifest_name(self.filename)
        tmp = temp_manifest_name(self.filename)
        data = am.to_bytes()
        try:
            fd = os.open(self.path(tmp), os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
        except OSError as e:
            log.warning(f"Can't open the AOF manifest file {tmp}: {e.strerror}")
            return False
        try:
            n, err = _write_all(fd, data)
            if n != len(data):
                log.warning(f"Error trying to write the temporary AOF manifest file {tmp}: "
                            f"{os.strerror(err or errno.ENOSPC)}")
                return False
            try:
                os.fsync(fd)
            except OSError as e:
                log.warning(f"Fail to fsync the temp AOF file {tmp}: {e.strerror}.")
                return False
            try:
                os.rename(self.path(tmp), self.path(name))
            except OSError as e:
                log.warning(f"Error trying to rename the temporary AOF manifest file {tmp} into {name}: "
                            f"{e.strerror}")
                return False
            try:
                _fsync_dir(self.dirname)
            except OSError as e:
                log.warning(f"Fail to fsync AOF directory {self.path(name)}: {e.strerror}.")
                return False
        finally:
            os.close(fd)
        am.dirty = False
        return True

    def load_manifest_from_disk(self) -> None:
        """aofLoadManifestFromDisk: an absent directory or manifest is an
        empty manifest; a damaged one raises ManifestError."""
        self.manifest = Manifest()
        if not os.path.isdir(self.dirname):
            log.debug(f"The AOF directory {self.dirname} doesn't exist")
            return
        name = manifest_name(self.filename)
        path = self.path(name)
        if not os.path.exists(path):
            log.debug(f"The AOF manifest file {name} doesn't exist")
            return
        with open(path, "rb") as f:
            data = f.read()
        self.manifest = parse_manifest(data)

    def del_history_files(self) -> bool:
        """aofDelHistoryFiles: unlink history files in the background and
        persist the manifest without them (unless aof-disable-auto-gc)."""
        am = self.manifest
        if self.srv.cfg.aof_disable_auto_gc or not am.history:
            return True
        for info in am.history:
            log.notice(f"Removing the history file {info.name} in the background")
            self.bio.submit("unlink", self.path(info.name))
        am.history = []
        am.dirty = True
        return self.persist_manifest(am)

    def file_size(self, name: str) -> int | None:
        """getAppendOnlyFileSize; None (logged) when the file cannot be stat'ed."""
        try:
            return os.stat(self.path(name)).st_size
        except OSError as e:
            log.warning(f"Unable to obtain the AOF file {name} length. stat: {e.strerror}")
            return None

    # -- opening files ---------------------------------------------------------------------

    def open_on_server_start(self) -> None:
        """aofOpenIfNeededOnServerStart: with AOF on, make sure a base exists
        (an empty dataset gets one now), open the last incr file for
        appending (a new one when there is none) and persist the manifest.
        Raises SystemExit(1) on failure, as Redis exits."""
        if self.state != AOF_ON:
            return
        try:
            os.makedirs(self.dirname, exist_ok=True)
        except OSError as e:
            log.warning(f"Can't open or create append-only dir {self.dirname}: {e.strerror}")
            raise SystemExit(1) from None
        am = self.manifest
        had_incr = bool(am.incr)
        if am.base is None and not am.incr:
            name = am.new_base(self.filename, bool(self.srv.cfg.aof_use_rdb_preamble))
            if not rewrite_file(self.srv, self.path(name)):
                raise SystemExit(1)
            log.notice(f"Creating AOF base file {name} on server start")
        name = am.last_incr(self.filename)
        try:
            self.fd = os.open(self.path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            log.warning(f"Can't open the append-only file {name}: {e.strerror}")
            raise SystemExit(1) from None
        if not self.persist_manifest(am):
            raise SystemExit(1)
        self.last_incr_size = self.file_size(name) or 0
        if had_incr:
            log.notice(f"Opening AOF incr file {name} on server start")
        else:
            log.notice(f"Creating AOF incr file {name} on server start")
        self.attach()

    def open_new_incr_for_append(self) -> bool:
        """openNewIncrAofForAppend: at the start of a rewrite, writes go to a
        new incr file (listed in the manifest first, so a crash at any
        point leaves a loadable directory); while AOF is being turned on,
        to ``temp-<F>.incr``, renamed into the manifest when the rewrite
        succeeds.  The old file is fsynced and closed in the background."""
        if self.state == AOF_OFF:
            return True
        temp_am: Manifest | None = None
        if self.state == AOF_WAIT_REWRITE:
            name = temp_incr_name(self.filename)
        else:
            temp_am = self.manifest.copy()
            name = temp_am.new_incr(self.filename)
        try:
            newfd = os.open(self.path(name), os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
        except OSError as e:
            log.warning(f"Can't open the append-only file {name}: {e.strerror}")
            return False
        if temp_am is not None and not self.persist_manifest(temp_am):
            os.close(newfd)
            return False
        log.notice(f"Creating AOF incr file {name} on background rewrite")
        if self.fd != -1:
            self.bio.submit("close", self.fd)
            self.fsync_offset = self.current_size
            self.last_fsync = int(time.time())
        self.fd = newfd
        self.last_incr_size = 0
        if temp_am is not None:
            self.manifest = temp_am
        return True

    # -- on / off ------------------------------------------------------------------------

    def start(self) -> bool:
        """startAppendOnly (CONFIG SET appendonly yes): wait for a rewrite,
        started now or scheduled when another child runs or inside EXEC."""
        srv = self.srv
        self.state = AOF_WAIT_REWRITE
        self.attach()
        child = srv.child_type  # type: ignore[attr-defined]
        if child is not None and child != "aof":
            self.rewrite_scheduled = True
            log.warning("AOF was enabled but there is already another background operation. An AOF background "
                        "was scheduled to start when possible.")
        elif srv.propagator.depth > 1:
            self.rewrite_scheduled = True
            log.warning("AOF was enabled during a transaction. An AOF background was scheduled to start when "
                        "possible.")
        else:
            if child == "aof":
                log.warning("AOF was enabled but there is already an AOF rewriting in background. Stopping "
                            "background AOF and starting a rewrite now.")
                kill_child(srv)
            if not rewrite_background(srv):
                self.state = AOF_OFF
                self.detach()
                log.warning("Redis needs to enable the AOF but can't trigger a background AOF rewrite "
                            "operation. Check the above logs for more info about the error.")
                return False
        self.last_fsync = int(time.time())
        if self.bio.fsync_errno:
            log.warning("AOF reopen, just ignore the AOF fsync error in bio job")
            self.bio.fsync_errno = 0
        if not self.last_write_ok:
            log.warning("AOF reopen, just ignore the last error.")
            self.last_write_ok = True
        self._update_misconf()
        return True

    def stop(self) -> None:
        """stopAppendOnly (CONFIG SET appendonly no): flush, fsync and close
        the file, stop a rewrite child; the files stay on disk."""
        self.flush(True)
        if self.fd != -1:
            self.bio.drain()
            try:
                os.fdatasync(self.fd)
                self.fsync_offset = self.current_size
                self.last_fsync = int(time.time())
            except OSError as e:
                log.warning(f"Fail to fsync the AOF file: {e.strerror}")
            os.close(self.fd)
        self.fd = -1
        self.writer.reset_db()
        self.state = AOF_OFF
        self.rewrite_scheduled = False
        self.last_incr_size = 0
        kill_child(self.srv)
        self.buf = []
        self.buf_len = 0
        self.srv.aof_pending = False
        self.detach()
        self._update_misconf()


def state(srv: Server) -> AOF:
    """The server's :class:`AOF` (created by :func:`install`)."""
    st: AOF = srv.aof  # type: ignore[attr-defined]
    return st


def _write_all(fd: int, data: bytes) -> tuple[int, int]:
    """aofWrite: write everything, retrying short writes; returns (bytes
    written or -1 when nothing was, errno of the failure or 0)."""
    total = 0
    view = memoryview(data)
    n = len(data)
    while total < n:
        try:
            w = os.write(fd, view[total:])
        except OSError as e:
            return (total if total else -1), (e.errno or errno.EIO)
        if w == 0:
            return total, errno.ENOSPC
        total += w
    return total, 0


def _fsync_dir(path: str) -> None:
    """fsyncFileDir on a directory: make renames inside it durable."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _latency(srv: Server, event: str, ms: int) -> None:
    from .commands.server_cmds import latency_add_sample_if_needed

    latency_add_sample_if_needed(srv, event, ms)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- loading ------------------------------------------------------------------------------


class _Loader:
    """What loadAppendOnlyFiles keeps across files: progress for INFO and
    the yield points that let the event loop answer -LOADING."""

    def __init__(self, srv: Server, total: int) -> None:
        self.srv = srv
        self.rst = rdb.state(srv)
        self.loaded_before = 0  # bytes of the files already loaded
        cfg = srv.cfg
        self.interval = max(1024, int(cfg.loading_process_events_interval_bytes))
        self.chunk = max(1024, min(1 << 20, self.interval))
        self.delay = int(getattr(cfg, "key_load_delay", 0) or 0)
        self.rst.loading_start_time = int(time.time())
        self.rst.loading_total_bytes = total
        self.rst.loading_loaded_bytes = 0


def load_steps(srv: Server, *, startup: bool = False) -> Generator[None, None, int]:
    """loadAppendOnlyFiles for ``srv.aof.manifest``: upgrade an old-style
    single file first, then load the base and the incr files in order.
    Yields whenever the event loop should run; returns one of the AOF_*
    results (AOF_FAILED / AOF_OPEN_ERR after logging why).  ``startup``
    (the load before serving): what was loaded leaves the cyclic
    collector's generations (gc.freeze), as rdb.load_steps does."""
    aof = state(srv)
    am = aof.manifest
    fname = aof.filename
    if os.path.isfile(fname) and (
        not os.path.isdir(aof.dirname)
        or am.is_empty()
        or (am.base is not None and not am.incr and am.base.name == fname
            and not os.path.exists(aof.path(fname)))
    ):
        _upgrade_prepare(aof)
    if am.is_empty():
        return AOF_NOT_EXIST
    files = am.files()
    total = 0
    for info in files:
        size = aof.file_size(info.name)
        if size is None:
            return AOF_FAILED
        total += size
    if total == 0:
        return AOF_EMPTY
    loader = _Loader(srv, total)
    gc_was_enabled = gc.isenabled()
    srv.loading = True
    gc.disable()  # millions of new containers, none cyclic: full collections would find nothing
    ret = AOF_OK
    base_size = 0
    try:
        for i, info in enumerate(files):
            last = i == len(files) - 1
            is_base = info is am.base
            if is_base:
                base_size = aof.file_size(info.name) or 0
            t0 = time.perf_counter()
            ret = yield from _load_file(srv, loader, info.name, last)
            if ret == AOF_OK or (ret == AOF_TRUNCATED and last):
                kind = "base" if is_base else "incr"
                log.notice(f"DB loaded from {kind} file {info.name}: {time.perf_counter() - t0:.3f} seconds")
            if ret == AOF_NOT_EXIST:
                ret = AOF_FAILED
            if ret == AOF_EMPTY and not is_base:
                ret = AOF_OK
            if ret in (AOF_OPEN_ERR, AOF_FAILED):
                return ret
            loader.loaded_before += aof.file_size(info.name) or 0
        aof.current_size = total
        aof.rewrite_base_size = base_size
        aof.fsync_offset = total
        return ret
    finally:
        srv.loading = False
        if startup:
            # With everything loaded still in generation 0, the first
            # allocation after gc.enable() would traverse every loaded
            # container (a third of a second per million keys) to find nothing.
            gc.freeze()
        if gc_was_enabled:
            gc.enable()


def _upgrade_prepare(aof: AOF) -> None:
    """aofUpgradePrepare: move a pre-7.0 single-file AOF into the directory
    as the base (its name kept) of a new manifest.  Any step failing exits,
    and a crash in between is retried at the next start."""
    fname = aof.filename
    try:
        os.makedirs(aof.dirname, exist_ok=True)
    except OSError as e:
        log.warning(f"Can't open or create append-only dir {aof.dirname}: {e.strerror}")
        raise SystemExit(1) from None
    am = aof.manifest
    am.base = AOFInfo(fname, 1, TYPE_BASE)
    am.curr_base_seq = 1
    am.dirty = True
    if not aof.persist_manifest(am):
        raise SystemExit(1)
    try:
        os.rename(fname, aof.path(fname))
    except OSError as e:
        log.warning(f"Error trying to rename the existing AOF to old AOF file: {e.strerror}. "
                    "Please check the permissions of the AOF directory.")
        raise SystemExit(1) from None
    log.notice(f"Successfully migrated an old-style AOF file ({fname}) into the AOF directory ({aof.dirname}).")


def _load_file(srv: Server, loader: _Loader, name: str, last_file: bool) -> Generator[None, None, int]:
    """loadSingleAppendOnlyFile: an RDB part (a base file or an old-style
    preamble) through server/rdb.py's loader, then the commands, replayed
    by a fresh AOF client through Server.call."""
    aof = state(srv)
    path = aof.path(name)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError as e:
        log.warning(f"The append log file {name} doesn't exist: {e.strerror}")
        return AOF_NOT_EXIST
    except OSError as e:
        log.warning(f"Fatal error: can't open the append log file {name} for reading: {e.strerror}")
        return AOF_OPEN_ERR
    try:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return AOF_EMPTY
        c = Client(srv, fake=True)  # createAOFClient: one per file, never blocks, no replies
        c.name = None
        start = 0
        if is_rdb(f.read(5)):
            old_style = name == aof.filename
            log.notice("Reading RDB preamble from AOF file..." if old_style else
                       "Reading RDB base file on AOF loading...")
            f.seek(0)
            try:
                start = yield from rdb.load_stream(srv, f, size)
            except rdb.LoadError as e:
                for line in e.lines:
                    log.warning(line)
                if old_style:
                    log.warning(f"Error reading the RDB preamble of the AOF file {name}, AOF loading aborted")
                else:
                    log.warning(f"Error reading the RDB base file {name}, AOF loading aborted")
                return AOF_FAILED
            loader.rst.loading_loaded_bytes = loader.loaded_before + start
            if old_style:
                log.notice("Reading the remaining AOF tail...")
        f.seek(start)
        return (yield from _replay(srv, loader, c, f, name, start, last_file))
    finally:
        f.close()


def _replay(srv: Server, loader: _Loader, c: Client, f: Any, name: str, start: int, last_file: bool
            ) -> Generator[None, None, int]:
    """The command loop of loadSingleAppendOnlyFile and its endings: clean
    EOF, a dangling MULTI, a truncated record, a format error."""
    parser = AOFParser(base_offset=start)
    lookup = registry.lookup
    call = srv.call
    valid_up_to = start
    valid_before_multi = start
    multi_cmd = registry.COMMANDS[b"multi"]
    exec_cmd = registry.COMMANDS[b"exec"]
    rst = loader.rst
    interval = loader.interval
    chunk_size = loader.chunk
    delay = loader.delay
    since_yield = 0
    last_yield = time.monotonic()
    truncated = False
    read = f.read
    while True:
        chunk = read(chunk_size)
        try:
            for ev in parser.feed(chunk):
                if type(ev) is Annotation:
                    continue
                argv = ev.argv
                cmd = lookup(argv)
                if cmd is None or cmd.handler is None:
                    log.warning(f"Unknown command '{argv[0].decode('utf-8', 'backslashreplace')}' reading the "
                                f"append only file {name}")
                    return AOF_FAILED
                arity = cmd.arity
                if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
                    log.warning(f"Wrong number of arguments for '{cmd.fullname}' reading the append only "
                                f"file {name}")
                    return AOF_FAILED
                if cmd is multi_cmd:
                    valid_before_multi = valid_up_to
                if c.mstate is not None and cmd is not exec_cmd:
                    c.mstate.append((cmd, argv))  # queueMultiCommand
                else:
                    # Redis runs a replayed command's proc without call(): it
                    # stays out of the command stats and latency histograms
                    # (what EXEC runs does not).
                    calls, usec, failed = cmd.calls, cmd.usec, cmd.failed_calls
                    track, srv.track_latency = srv.track_latency, False
                    call(c, cmd, argv)
                    srv.track_latency = track
                    cmd.calls, cmd.usec, cmd.failed_calls = calls, usec, failed
                valid_up_to = ev.end
                if delay > 0:
                    time.sleep(delay / 1e6)
                    if time.monotonic() - last_yield >= 0.05:
                        rst.loading_loaded_bytes = loader.loaded_before + valid_up_to
                        yield
                        last_yield = time.monotonic()
            if not chunk:
                parser.close()
                break
        except AOFFormatError as e:
            log.warning(f"Bad file format reading the append only file {name}: make a backup of your AOF file, "
                        "then use ./redis-check-aof --fix <filename.manifest>")
            # Where and what, beyond Redis's message.
            log.warning(f"AOF {name}: {e.message} at offset {e.offset} (commands are valid up to offset "
                        f"{valid_up_to})")
            return AOF_FAILED
        except AOFTruncatedError:
            truncated = True
            break
        rst.loading_loaded_bytes = loader.loaded_before + parser.offset
        since_yield += len(chunk)
        if since_yield >= interval:
            since_yield = 0
            yield
            last_yield = time.monotonic()
    if c.mstate is None and not truncated:
        return AOF_OK
    if c.mstate is not None:
        # The file ends inside a transaction (cleanly or in the middle of a
        # queued command): drop the whole transaction, cut before its MULTI.
        log.warning(f"Revert incomplete MULTI/EXEC transaction in AOF file {name}")
        valid_up_to = valid_before_multi
        c.mstate = None
    return _unexpected_eof(srv, name, valid_up_to, last_file)


def _unexpected_eof(srv: Server, name: str, valid_up_to: int, last_file: bool) -> int:
    """loadSingleAppendOnlyFile's uxeof: with aof-load-truncated, cut the
    last file at the end of its last complete command and go on; anything
    else is fatal.  (A truncated file that is not the last one is refused
    before it is cut: the commands after it could not be trusted.)"""
    aof = state(srv)
    if srv.cfg.aof_load_truncated:
        log.warning(f"!!! Warning: short read while loading the AOF file {name}!!!")
        if not last_file:
            log.warning("Fatal error: the truncated file is not the last file")
            return AOF_FAILED
        log.warning(f"!!! Truncating the AOF {name} at offset {valid_up_to} !!!")
        try:
            os.truncate(aof.path(name), valid_up_to)
        except OSError as e:
            log.warning(f"Error truncating the AOF file {name}: {e.strerror}")
        else:
            log.warning(f"AOF {name} loaded anyway because aof-load-truncated is enabled")
            return AOF_TRUNCATED
    log.warning(f"Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your "
                "AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the "
                "'aof-load-truncated' configuration option to yes and restart the server.")
    return AOF_FAILED


def _log_manifest_error(e: ManifestError) -> None:
    for line in e.log_lines():
        log.warning(line)


async def startup_load(srv: Server, rdb_startup: Any) -> None:
    """main()'s persistence start-up: aofLoadManifestFromDisk (always: a
    damaged manifest stops the server even with AOF off), loadDataFromDisk
    (the AOF wins over the RDB when AOF is on), aofOpenIfNeededOnServerStart
    and aofDelHistoryFiles.  Failures raise SystemExit(1)."""
    aof = state(srv)
    try:
        aof.load_manifest_from_disk()
    except ManifestError as e:
        _log_manifest_error(e)
        raise SystemExit(1) from None
    except OSError as e:
        log.warning(f"Fatal error: can't open the AOF manifest file {manifest_name(aof.filename)} for reading: "
                    f"{e.strerror}")
        raise SystemExit(1) from None
    if srv.cfg.appendonly:
        aof.state = AOF_ON
        t0 = time.perf_counter()
        steps = load_steps(srv, startup=True)
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                ret = stop.value
                break
            await asyncio.sleep(0)
        if ret in (AOF_FAILED, AOF_OPEN_ERR):
            raise SystemExit(1)
        if ret != AOF_NOT_EXIST:
            log.notice(f"DB loaded from append only file: {time.perf_counter() - t0:.3f} seconds")
    elif rdb_startup is not None:
        await rdb_startup()
    aof.open_on_server_start()
    aof.del_history_files()


def load_sync(srv: Server) -> int:
    """loadAppendOnlyFiles without giving the event loop a turn (DEBUG LOADAOF)."""
    steps = load_steps(srv)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return int(stop.value)


# -- rewriting ----------------------------------------------------------------------------


def rewrite_file(srv: Server, filename: str) -> bool:
    """rewriteAppendOnlyFile: the dataset to ``temp-rewriteaof-<pid>.aof`` (an
    RDB with AUX aof-base, or commands), flushed and fsynced, then renamed
    to ``filename``.  Logs and returns False on failure (the temp file is
    removed, ``filename`` untouched)."""
    tmp = f"temp-rewriteaof-{os.getpid()}.aof"
    try:
        f = open(tmp, "wb")  # noqa: SIM115 - closed below on every path
    except OSError as e:
        log.warning(f"Opening the temp file for AOF rewrite in rewriteAppendOnlyFile(): {e.strerror}")
        return False
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with f:
            if srv.cfg.aof_use_rdb_preamble:
                rdb.write_snapshot(srv, f, aof_base=True)
            else:
                write_commands(srv, f)
            f.flush()
            os.fsync(f.fileno())
    except (OSError, ValueError, rdb.RDBError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        log.warning(f"Write error writing append only file on disk: {reason}")
        _unlink(tmp)
        return False
    finally:
        if gc_was_enabled:
            gc.enable()
    try:
        os.rename(tmp, filename)
    except OSError as e:
        log.warning(f"Error moving temp append only file on the final destination: {e.strerror}")
        _unlink(tmp)
        return False
    return True


def write_commands(srv: Server, f: Any) -> int:
    """rewriteAppendOnlyFileRio: the dataset as commands (a ``#TS`` first with
    aof-timestamp-enabled, FUNCTION LOAD per library, then per non-empty db a
    SELECT and each key's commands, PEXPIREAT after a key with a TTL).
    Returns the bytes written."""
    from .commands.hashes import HashValue
    from .commands.lists import ListValue
    from .commands.sets import SetValue
    from .commands.zsets import ZSetValue

    em = RewriteEmitter
    cfg = srv.cfg
    delay = int(getattr(cfg, "rdb_key_save_delay", 0) or 0)
    fsync_every = AUTOSYNC_BYTES if cfg.aof_rewrite_incremental_fsync else 0
    out: list[bytes] = []
    size = total = synced = 0

    def flush() -> None:
        nonlocal size, total, synced
        data = b"".join(out)
        out.clear()
        size = 0
        f.write(data)
        total += len(data)
        if fsync_every and total - synced >= fsync_every:
            f.flush()
            os.fsync(f.fileno())
            synced = total

    if cfg.aof_timestamp_enabled:
        out.append(em.timestamp(int(time.time())))
    for code in srv.function_libraries.values():  # type: ignore[attr-defined]
        out.append(em.function_load(code))
    stream_type = rdb.STREAM_TYPE
    for db in srv.dbs:
        data = db.data
        if not data:
            continue
        expires = db.expires
        out.append(em.select(db.id))
        for key, val in data.items():
            t = type(val)
            if t is bytes:
                rec = em.string_value(key, val)
            elif t is int:
                rec = em.string_value(key, b"%d" % val)
            elif t is bytearray:
                rec = em.string_value(key, bytes(val))
            elif t is ListValue:
                rec = em.list_value(key, val)
            elif t is SetValue:
                rec = em.set_value(key, val.elements())
            elif t is ZSetValue:
                rec = em.zset_value(key, val.pairs())
            elif t is HashValue:
                rec = em.hash_value(key, val.items())
            elif stream_type is not None and t is stream_type:
                rec = em.stream_value(key, val.to_rdb())
            else:
                raise ValueError(f"no AOF rewrite for a value of type {t.__name__}")
            out.append(rec)
            size += len(rec)
            if expires:
                when = expires.get(key)
                if when is not None:
                    out.append(em.expire(key, when))
            if size >= _WRITE_CHUNK:
                flush()
            if delay > 0:
                time.sleep(delay / 1e6)
    flush()
    return total


def child_active(srv: Server) -> bool:
    """hasActiveChildProcess"""
    return srv.child_type is not None  # type: ignore[attr-defined]


def rewrite_background(srv: Server) -> bool:
    """rewriteAppendOnlyFileBackground: flush, switch to a new incr file,
    fork a child writing the new base.  False (logged, and
    aof_last_bgrewrite_status:err) when it cannot start."""
    aof = state(srv)
    if child_active(srv):
        return False
    try:
        os.makedirs(aof.dirname, exist_ok=True)
    except OSError as e:
        log.warning(f"Can't open or create append-only dir {aof.dirname}: {e.strerror}")
        aof.lastbgrewrite_ok = False
        return False
    aof.writer.reset_db()  # the first command of the new incr file selects its db
    aof.flush(True)
    if not aof.open_new_incr_for_append():
        aof.lastbgrewrite_ok = False
        return False
    aof.rewrites += 1
    t0 = time.perf_counter()
    try:
        pid = os.fork()
    except OSError as e:
        aof.lastbgrewrite_ok = False
        log.warning(f"Can't rewrite append only file in background: fork: {e.strerror}")
        return False
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        _child_main(srv)
    rdb._record_fork(srv, int((time.perf_counter() - t0) * 1e6))
    srv.child_type = "aof"  # type: ignore[attr-defined]
    srv.child_pid = pid  # type: ignore[attr-defined]
    log.notice(f"Background append only file rewriting started by pid {pid}")
    aof.rewrite_scheduled = False
    aof.rewrite_time_start = int(time.time())
    return True


def _child_main(srv: Server) -> None:  # pragma: no cover - child process
    """The BGREWRITEAOF child: write the new base to
    ``temp-rewriteaof-bg-<pid>.aof`` and exit; never returns."""
    code = 1
    try:
        rdb.child_setup(srv)
        tmp = f"temp-rewriteaof-bg-{os.getpid()}.aof"
        if rewrite_file(srv, tmp):
            log.notice(f"Successfully created the temporary AOF base file {tmp}")
            code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the child must exit here
        code = 1
    finally:
        os._exit(code)


def _remove_temp_files(pid: int) -> None:
    """aofRemoveTempFile"""
    _unlink(f"temp-rewriteaof-bg-{pid}.aof")
    _unlink(f"temp-rewriteaof-{pid}.aof")


def kill_child(srv: Server) -> None:
    """killAppendOnlyChild: SIGUSR1 to a rewriting child, wait for it, remove
    its temp files."""
    if srv.child_type != "aof":  # type: ignore[attr-defined]
        return
    pid = srv.child_pid  # type: ignore[attr-defined]
    log.notice(f"Killing running AOF rewrite child: {pid}")
    try:
        os.kill(pid, signal.SIGUSR1)
        os.waitpid(pid, 0)
    except (OSError, ChildProcessError):
        pass
    _remove_temp_files(pid)
    srv.child_type = None  # type: ignore[attr-defined]
    srv.child_pid = -1  # type: ignore[attr-defined]
    state(srv).rewrite_time_start = -1


def check_child_done(srv: Server) -> None:
    """checkChildrenDone for the rewrite child (waitpid WNOHANG)."""
    if srv.child_type != "aof":  # type: ignore[attr-defined]
        return
    pid = srv.child_pid  # type: ignore[attr-defined]
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        done, status = pid, 1 << 8
    if done == 0:
        return
    bysignal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    exitcode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    if exitcode == _CHILD_NOERROR_RETVAL:
        bysignal, exitcode = signal.SIGUSR1, 1
    try:
        _rewrite_done(srv, pid, exitcode, bysignal)
    finally:
        srv.child_type = None  # type: ignore[attr-defined]
        srv.child_pid = -1  # type: ignore[attr-defined]


def _rewrite_done(srv: Server, pid: int, exitcode: int, bysignal: int) -> None:
    """backgroundRewriteDoneHandler."""
    aof = state(srv)
    if not bysignal and exitcode == 0:
        log.notice("Background AOF rewrite terminated with success")
        _install_new_base(srv, pid)
    elif not bysignal:
        aof.lastbgrewrite_ok = False
        aof.consecutive_failures += 1
        log.warning("Background AOF rewrite terminated with error")
    else:
        if bysignal != signal.SIGUSR1:
            aof.lastbgrewrite_ok = False
            aof.consecutive_failures += 1
        log.warning(f"Background AOF rewrite terminated by signal {bysignal}")
    _remove_temp_files(pid)
    if aof.state == AOF_WAIT_REWRITE:
        # Clear what was written meanwhile and drop the temp incr file: the
        # next rewrite starts over.
        aof.buf = []
        aof.buf_len = 0
        srv.aof_pending = False
        name = temp_incr_name(aof.filename)
        log.notice(f"Removing the temp incr aof file {name} in the background")
        aof.bio.submit("unlink", aof.path(name))
    aof.rewrite_time_last = int(time.time()) - aof.rewrite_time_start
    aof.rewrite_time_start = -1
    if aof.state == AOF_WAIT_REWRITE:
        aof.rewrite_scheduled = True


def _install_new_base(srv: Server, pid: int) -> None:
    """The success half of backgroundRewriteDoneHandler: every change is
    made on a copy of the manifest, which replaces the live one only once
    it is on disk; any failure leaves the previous base and incr files in
    charge."""
    aof = state(srv)
    tmpfile = f"temp-rewriteaof-bg-{pid}.aof"
    temp_am = aof.manifest.copy()
    new_base = temp_am.new_base(aof.filename, bool(srv.cfg.aof_use_rdb_preamble))
    new_base_path = aof.path(new_base)
    try:
        os.rename(tmpfile, new_base_path)
    except OSError as e:
        log.warning(f"Error trying to rename the temporary AOF base file {tmpfile} into {new_base_path}: "
                    f"{e.strerror}")
        aof.lastbgrewrite_ok = False
        aof.consecutive_failures += 1
        return
    log.notice(f"Successfully renamed the temporary AOF base file {tmpfile} into {new_base}")
    new_incr_path: str | None = None
    if aof.state == AOF_WAIT_REWRITE:
        temp_incr = temp_incr_name(aof.filename)
        temp_incr_path = aof.path(temp_incr)
        new_incr = temp_am.new_incr(aof.filename)
        new_incr_path = aof.path(new_incr)
        try:
            os.rename(temp_incr_path, new_incr_path)
        except OSError as e:
            log.warning(f"Error trying to rename the temporary AOF incr file {temp_incr_path} into "
                        f"{new_incr_path}: {e.strerror}")
            aof.bio.submit("unlink", new_base_path)
            aof.lastbgrewrite_ok = False
            aof.consecutive_failures += 1
            return
        log.notice(f"Successfully renamed the temporary AOF incr file {temp_incr} into {new_incr}")
    temp_am.mark_rewritten_incr_as_history(keep_last=aof.fd != -1)
    if not aof.persist_manifest(temp_am):
        aof.bio.submit("unlink", new_base_path)
        if new_incr_path is not None:
            aof.bio.submit("unlink", new_incr_path)
        aof.lastbgrewrite_ok = False
        aof.consecutive_failures += 1
        return
    aof.manifest = temp_am
    if aof.fd != -1:
        aof.writer.reset_db()
        aof.current_size = (aof.file_size(new_base) or 0) + aof.last_incr_size
        aof.rewrite_base_size = aof.current_size
        aof.fsync_offset = aof.current_size
        aof.last_fsync = int(time.time())
    aof.del_history_files()
    aof.lastbgrewrite_ok = True
    aof.consecutive_failures = 0
    log.notice("Background AOF rewrite finished successfully")
    if aof.state == AOF_WAIT_REWRITE:
        aof.state = AOF_ON


def rewrite_limited(aof: AOF) -> bool:
    """aofRewriteLimited: after 3 consecutive failures, automatic rewrites
    wait 1, 2, 4 ... up to 60 minutes."""
    if aof.consecutive_failures < REWRITE_LIMIT_THRESHOLD:
        aof.limit_next_delay = 0
        aof.limit_next_time = 0
        return False
    now = int(time.time())
    if aof.limit_next_time:
        if now < aof.limit_next_time:
            return True
        aof.limit_next_time = 0
        return False
    aof.limit_next_delay = min(REWRITE_LIMIT_MAX_MINUTES, aof.limit_next_delay * 2 if aof.limit_next_delay else 1)
    aof.limit_next_time = now + aof.limit_next_delay * 60
    log.warning("Background AOF rewrite has repeatedly failed and triggered the limit, will retry in "
                f"{aof.limit_next_delay} minutes")
    return True


def server_cron(srv: Server) -> None:
    """serverCron's AOF part: start a scheduled rewrite, reap the rewrite
    child, start an automatic rewrite on growth, retry a postponed or
    failed write, and flush what no reply triggered (beforeSleep)."""
    aof = state(srv)
    if not child_active(srv) and aof.rewrite_scheduled and not rewrite_limited(aof):
        rewrite_background(srv)
    if srv.child_type == "aof":  # type: ignore[attr-defined]
        check_child_done(srv)
    elif not child_active(srv):
        cfg = srv.cfg
        perc = cfg.auto_aof_rewrite_percentage
        if aof.state == AOF_ON and perc and aof.current_size > cfg.auto_aof_rewrite_min_size:
            base = aof.rewrite_base_size or 1
            growth = (aof.current_size * 100 // base) - 100
            if growth >= perc and not rewrite_limited(aof):
                log.notice(f"Starting automatic rewriting of AOF on {growth}% growth")
                rewrite_background(srv)
    if aof.state != AOF_OFF:
        if aof.bio.fsync_errno or not aof.last_write_ok or srv.aof_misconf is not None:  # type: ignore[attr-defined]
            aof._update_misconf()
        aof.flush(False)


# -- INFO, shutdown, hooks ----------------------------------------------------------------


def info_fields(srv: Server) -> list[tuple[str, Any]]:
    """INFO persistence from ``aof_enabled`` to ``aof_last_cow_size``."""
    aof = state(srv)
    in_progress = srv.child_type == "aof"  # type: ignore[attr-defined]
    return [
        ("aof_enabled", 1 if aof.state != AOF_OFF else 0),
        ("aof_rewrite_in_progress", 1 if in_progress else 0),
        ("aof_rewrite_scheduled", 1 if aof.rewrite_scheduled else 0),
        ("aof_last_rewrite_time_sec", aof.rewrite_time_last),
        ("aof_current_rewrite_time_sec", int(time.time()) - aof.rewrite_time_start if in_progress else -1),
        ("aof_last_bgrewrite_status", "ok" if aof.lastbgrewrite_ok else "err"),
        ("aof_rewrites", aof.rewrites),
        ("aof_rewrites_consecutive_failures", aof.consecutive_failures),
        ("aof_last_write_status", "ok" if aof.last_write_ok and not aof.bio.fsync_errno else "err"),
        ("aof_last_cow_size", 0),
    ]


def info_enabled_fields(srv: Server) -> list[tuple[str, Any]]:
    """The lines INFO persistence adds while AOF is on (after the module
    fork fields)."""
    aof = state(srv)
    if aof.state == AOF_OFF:
        return []
    return [
        ("aof_current_size", aof.current_size),
        ("aof_base_size", aof.rewrite_base_size),
        ("aof_pending_rewrite", 1 if aof.rewrite_scheduled else 0),
        ("aof_buffer_length", aof.buf_len),
        ("aof_pending_bio_fsync", aof.bio.fsync_pending),
        ("aof_delayed_fsync", aof.delayed_fsync),
    ]


def reset_stats(srv: Server) -> None:
    """CONFIG RESETSTAT's AOF counters (resetServerStats)."""
    if hasattr(srv, "aof"):
        st = state(srv)
        st.rewrites = 0
        st.delayed_fsync = 0


def _shutdown_hook(srv: Server, save: bool | None, now: bool, force: bool) -> Err | None:
    """prepareForShutdown's AOF part: a rewrite child is killed (refused
    while it writes the very first AOF, unless FORCE), then the buffer is
    written and fsynced."""
    aof = state(srv)
    if srv.child_type == "aof":  # type: ignore[attr-defined]
        if aof.state == AOF_WAIT_REWRITE:
            if force:
                log.warning("Writing initial AOF. Exit anyway.")
            else:
                log.warning("Writing initial AOF, can't exit.")
                return Err("ERR Errors trying to SHUTDOWN. Check logs.")
        log.warning("There is a child rewriting the AOF. Killing it!")
        kill_child(srv)
    if aof.state != AOF_OFF:
        log.notice("Calling fsync() on the AOF file.")
        aof.flush(True)
        if aof.fd != -1:
            try:
                os.fdatasync(aof.fd)
            except OSError as e:
                log.warning(f"Fail to fsync the AOF file: {e.strerror}.")
    return None


def _on_appendonly(srv: Server, new: bool) -> None:
    """updateAppendonly: CONFIG SET appendonly yes/no."""
    aof = state(srv)
    if not new and aof.state != AOF_OFF:
        aof.stop()
    elif new and aof.state == AOF_OFF and not aof.start():
        raise Err("Unable to turn on AOF. Check server logs.")


def install(srv: Server) -> None:
    """Attach the AOF state and hooks to a server (called from
    commands.aof_cmd.install, after the RDB machinery is installed)."""
    if hasattr(srv, "aof"):
        return
    rdb.install(srv)
    aof = AOF(srv)
    srv.aof = aof  # type: ignore[attr-defined]
    srv.aof_misconf = None  # type: ignore[attr-defined]
    srv.aof_flush = aof.before_reply
    srv.aof_pending = False
    rdb_startup = srv.startup_load
    srv.startup_load = lambda: startup_load(srv, rdb_startup)
    srv.cron_hooks.append(lambda: server_cron(srv))
    srv.shutdown_hooks.append(lambda save, now, force: _shutdown_hook(srv, save, now, force))
    cfg = srv.cfg
    cfg.add_hook("appendonly", lambda old, new: _on_appendonly(srv, bool(new)))
    cfg.add_hook("aof-timestamp-enabled", lambda old, new: setattr(aof.writer, "timestamps", bool(new)))
    from .commands.server_cmds import MEMORY_PROVIDERS

    MEMORY_PROVIDERS["mem_aof_buffer"] = lambda s: state(s).buf_len if hasattr(s, "aof") else 0
