"""aof-replay: send the commands of an AOF to a live Redis-compatible server.

The input is read with :mod:`ambry.persistence.aof` (an RDB base becomes
the commands that rebuild it, :mod:`~ambry.persistence.aof.rdb_commands`);
the commands go to the target pipelined through the ``redis`` client's
connection (AUTH, SELECT, and RESP framing are its business).  On the way:

* databases: ``SELECT`` records set the source db; the target connection
  is sent ``SELECT <mapped db>`` right before the first command that needs
  it (``--db SRC:DST`` maps; the db arguments of MOVE, COPY ... DB and
  SWAPDB are mapped too);
* time: ``#TS:<unix seconds>`` annotations (aof-timestamp-enabled) date the
  commands after them; ``--from-ts`` skips what is older, ``--to-ts``
  stops at the first annotation newer; a MULTI/EXEC block is kept or
  skipped whole;
* ``--dry-run`` prints the commands instead (text, or RESP for
  ``redis-cli --pipe``).

``--follow`` keeps reading after the end of the input: it watches the
directory (watchdog, with polling as a fallback), reads records as they
are appended and follows the manifest through rewrites with
:class:`~ambry.persistence.aof.follow.ManifestTracker` -- the new base is
never replayed (its contents were already sent as the old files), the new
incr file is read from its start.  The manifest is re-read in the watchdog
thread as soon as the server renames a new one in, and every newly listed
file is opened there and then: an open file stays readable after the
server deletes it, so a follower busy replaying cannot lose a file.  (Writes
made while the server's ``appendonly`` was off reach no incr file: the
base written when it is turned on again holds them, and it is not
replayed; a follower cannot see them.)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any, Final

import redis
from ambry.persistence.aof import (
    Annotation,
    AOFFormatError,
    AOFTruncatedError,
    Event,
    ManifestError,
    encode_command,
)
from ambry.persistence.aof.follow import FollowGap, ManifestTracker
from ambry.persistence.aof.parser import c_atol
from ambry.persistence.aof.source import AOFFile, AOFSource, RecordReader, open_source, source_from_manifest
from ambry.persistence.rdb import RDBError
from redis.backoff import NoBackoff
from redis.retry import Retry

from .aof_common import (
    EXIT_CODES_HELP,
    EXIT_IO,
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    ArgParser,
    Formatter,
    Progress,
    ToolError,
    format_command,
    parse_timestamp,
    print_json,
    run,
    warn,
)

PROG: Final = "aof-replay"
_CHUNK: Final = 1 << 20
#: Errors shown one by one; the rest are only counted.
_SHOWN_ERRORS: Final = 10

DESCRIPTION: Final = """\
Replay an AOF into a live Redis-compatible server (Ambry, Redis, Valkey...),
pipelined, or print its commands.

INPUT is an AOF directory (or a server's working directory holding one), a
manifest, or one AOF file. A multi-part AOF is replayed as a server loads
it: the base (an RDB base is turned into the commands that rebuild it:
FUNCTION LOAD, SET, RPUSH, HSET, ZADD, XADD..., PEXPIREAT), then every incr
file in manifest order. Commands are sent as they are, so a FLUSHALL in the
AOF empties the whole target.

Databases: the AOF's SELECT commands choose the source database; --db
SRC:DST (repeatable, or comma-separated) sends database SRC to DST instead,
also in MOVE, COPY ... DB and SWAPDB. Unmapped databases keep their number.

Time windows use the '#TS:<unix seconds>' annotations a server writes with
aof-timestamp-enabled yes: a command is dated by the last annotation before
it (commands before the first annotation, the base included, are older
than any time). --from-ts TS skips commands dated before TS, --to-ts TS
stops at the first annotation after TS (point-in-time recovery). A
MULTI/EXEC block is replayed or skipped as a whole.

--follow keeps going at the end: new records are sent as the server
appends them, and a rewrite (BGREWRITEAOF: a new incr file, then a new base)
is followed without losing or repeating a command -- the new base is not
replayed, since it holds what the old files already sent. The directory is
watched (inotify through watchdog; polling every --poll seconds as well).
Stop with Ctrl-C or SIGTERM: pending commands are sent and acknowledged
first. If an incr file is created and deleted before the follower could
open it, it stops with an error instead of leaving a hole. Writes made while
the server's appendonly was off are in no incr file and cannot be followed.

Without --follow, an incomplete record at the very end of the last file
(a write in progress, or a crash) is left out with a warning, as a server
with aof-load-truncated yes does; any other damage stops the replay at the
damaged record (everything before it has been sent) with exit status 1.
Replies that are errors are counted and the first ones shown with the
file and offset of the command; they make the exit status 1.

Progress is shown on stderr when it is a terminal; a summary is printed at
the end (on stderr with --dry-run, whose stdout is the commands).
"""

EPILOG: Final = EXIT_CODES_HELP + """
examples:
  aof-replay /var/lib/redis/appendonlydir --to 127.0.0.1:6380
  aof-replay appendonlydir --to 10.0.0.5:6379 --user admin --password s3cret --db 0:5
  aof-replay appendonlydir --dry-run | less
  aof-replay appendonlydir --dry-run --format resp | redis-cli -p 6380 --pipe
  aof-replay appendonlydir --to localhost:6380 --to-ts 1795480113     # the dataset as of that second
  aof-replay /var/lib/redis/appendonlydir --to replica-host:6379 --follow
"""


def _db_map(text: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in text.split(","):
        src, sep, dst = part.partition(":")
        try:
            a, b = int(src), int(dst)
        except ValueError:
            a = b = -1
        if not sep or a < 0 or b < 0:
            import argparse

            raise argparse.ArgumentTypeError(f"invalid db mapping {part!r}: expected SRC:DST, e.g. 0:3")
        out[a] = b
    return out


def build_parser() -> ArgParser:
    p = ArgParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("input", metavar="INPUT", help="AOF directory, manifest, or single AOF file")
    t = p.add_argument_group("target")
    t.add_argument("--to", metavar="HOST:PORT",
                   help="the server to replay into (also unix:/path/to.sock); required unless --dry-run")
    t.add_argument("--user", metavar="NAME", help="ACL user name (AUTH user password)")
    t.add_argument("--password", metavar="PASS",
                   help="password (AUTH); the environment variable REDISCLI_AUTH is used when not given")
    t.add_argument("--pipeline", metavar="N", type=int, default=1000,
                   help="commands in flight per round trip (default 1000)")
    t.add_argument("--timeout", metavar="SECONDS", type=float, default=60.0,
                   help="how long to wait for a reply (default 60)")
    s = p.add_argument_group("selection")
    s.add_argument("--db", metavar="SRC:DST", type=_db_map, action="append", default=[],
                   help="send database SRC to DST (repeatable)")
    s.add_argument("--from-ts", metavar="TS", type=parse_timestamp, help="skip commands dated before TS")
    s.add_argument("--to-ts", metavar="TS", type=parse_timestamp,
                   help="stop at the first #TS annotation after TS")
    m = p.add_argument_group("mode")
    m.add_argument("--dry-run", action="store_true", help="print the commands instead of sending them")
    m.add_argument("--format", choices=("text", "resp"), default="text",
                   help="--dry-run output: one command per line (text) or RESP")
    m.add_argument("-f", "--follow", action="store_true", help="keep following the AOF as it grows")
    m.add_argument("--poll", metavar="SECONDS", type=float, default=1.0,
                   help="with --follow: look for changes at least this often (default 1)")
    m.add_argument("--json", action="store_true", help="print the summary as JSON")
    m.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    return p


# -- sinks: where commands go ---------------------------------------------------------------------


@dataclass(slots=True)
class Counters:
    sent: int = 0
    errors: int = 0
    shown: list[dict[str, Any]] = field(default_factory=list)


class TargetSink:
    """Pipelined sending on one connection: commands are buffered, sent in
    one write per batch, then every reply is read; an error reply is
    counted and reported with the file and offset of its command."""

    def __init__(self, conn: redis.connection.AbstractConnection, label: str, pipeline: int,
                 quiet_errors: bool) -> None:
        self.conn = conn
        self.label = label
        self.pipeline = max(1, pipeline)
        self.quiet_errors = quiet_errors
        self.buf: list[bytes] = []
        self.size = 0
        self.origins: list[tuple[str, int, bytes]] = []
        self.c = Counters()
        self.acked: tuple[str, int] | None = None

    def send(self, argv: list[bytes], origin: tuple[str, int]) -> None:
        data = encode_command(argv)
        self.buf.append(data)
        self.size += len(data)
        self.origins.append((origin[0], origin[1], argv[0]))
        if len(self.origins) >= self.pipeline or self.size >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.origins:
            return
        origins = self.origins
        data = self.buf[0] if len(self.buf) == 1 else b"".join(self.buf)
        self.buf = []
        self.size = 0
        self.origins = []
        conn = self.conn
        try:
            conn.send_packed_command([data], check_health=False)
            for origin in origins:
                try:
                    reply = conn.read_response()
                except redis.ResponseError as e:
                    self._error(origin, e)
                else:
                    if type(reply) is list:
                        for item in reply:
                            if isinstance(item, redis.ResponseError):
                                self._error(origin, item)
                self.acked = (origin[0], origin[1])
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            where = f" (last acknowledged command: {self.acked[0]} offset {self.acked[1]})" if self.acked else ""
            raise ToolError(f"connection to {self.label} lost after {self.c.sent} acknowledged commands{where}: "
                            f"{e}", EXIT_IO) from None
        self.c.sent += len(origins)

    def _error(self, origin: tuple[str, int, bytes], e: Exception) -> None:
        self.c.errors += 1
        name = origin[2].decode("latin-1")
        if len(self.c.shown) < _SHOWN_ERRORS:
            self.c.shown.append({"file": origin[0], "offset": origin[1], "command": name, "error": str(e)})
            if not self.quiet_errors:
                warn(PROG, f"{self.label} refused {name} from {origin[0]} offset {origin[1]}: {e}")
        elif len(self.c.shown) == _SHOWN_ERRORS and self.c.errors == _SHOWN_ERRORS + 1 and not self.quiet_errors:
            warn(PROG, "more errors: only counted from now on")

    def close(self) -> None:
        self.flush()
        self.conn.disconnect()


class PrintSink:
    """``--dry-run``: the commands on stdout, as text or RESP."""

    def __init__(self, out: IO[bytes], resp: bool) -> None:
        self.out = out
        self.resp = resp
        self.c = Counters()

    def send(self, argv: list[bytes], origin: tuple[str, int]) -> None:
        if self.resp:
            self.out.write(encode_command(argv))
        else:
            self.out.write(format_command(argv).encode("latin-1") + b"\n")
        self.c.sent += 1

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


Sink = TargetSink | PrintSink


# -- the replay logic -----------------------------------------------------------------------------


class Replayer:
    """Turns AOF records into the commands sent (see the module docstring:
    db tracking and mapping, time window, transactions kept whole)."""

    def __init__(self, sink: Sink, dbmap: dict[int, int], from_ts: int | None, to_ts: int | None) -> None:
        self.sink = sink
        self.dbmap = dbmap
        self.from_ts = from_ts
        self.to_ts = to_ts
        self.src_db = 0  # a loader's client starts on db 0
        self.tgt_db: int | None = None  # unknown: the first command selects
        self.ts: int | None = None
        self.annotated = False
        self.multi = False
        self.multi_sent = False
        self.select_in_multi = False
        self.stop_pending: tuple[str, int, int] | None = None
        self.stopped_at: tuple[str, int, int] | None = None
        self.read = 0
        self.skipped = 0
        self.multi_origin: tuple[str, int] | None = None

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    def _in_window(self) -> bool:
        return self.from_ts is None or (self.ts is not None and self.ts >= self.from_ts)

    def _map(self, db: int) -> int:
        return self.dbmap.get(db, db)

    def _select(self, origin: tuple[str, int]) -> None:
        db = self._map(self.src_db)
        if db != self.tgt_db:
            self.sink.send([b"SELECT", b"%d" % db], origin)
            self.tgt_db = db
            if self.multi:
                self.select_in_multi = True

    def _remap(self, argv: list[bytes]) -> list[bytes]:
        """The db arguments of MOVE, COPY ... DB and SWAPDB, mapped."""
        name = argv[0].lower()
        try:
            if name == b"move" and len(argv) == 3:
                return [*argv[:2], b"%d" % self._map(int(argv[2]))]
            if name == b"swapdb" and len(argv) == 3:
                return [argv[0], b"%d" % self._map(int(argv[1])), b"%d" % self._map(int(argv[2]))]
            if name == b"copy":
                out = list(argv)
                for i in range(3, len(out) - 1):
                    if out[i].lower() == b"db":
                        out[i + 1] = b"%d" % self._map(int(out[i + 1]))
                        break
                return out
        except ValueError:
            pass  # not a number: sent as it is, the target answers the error
        return argv

    def feed(self, ev: Event, fname: str) -> None:
        """One record of file ``fname``."""
        if type(ev) is Annotation:
            text = ev.text
            if text[:4] == b"#TS:":
                ts = c_atol(text[4:])
                self.annotated = True
                if self.to_ts is not None and ts > self.to_ts:
                    if self.multi:
                        self.stop_pending = (fname, ev.offset, ts)
                    else:
                        self.stopped_at = (fname, ev.offset, ts)
                    return
                self.ts = ts
            return
        argv = ev.argv
        self.read += 1
        origin = (fname, ev.offset)
        name = argv[0].lower()
        if name == b"select" and len(argv) == 2:
            self.src_db = c_atol(argv[1])
            return
        if name == b"multi":
            self.multi = True
            self.multi_sent = self._in_window()
            self.select_in_multi = False
            self.multi_origin = origin
            if self.multi_sent:
                self._select(origin)
                self.sink.send(argv, origin)
            else:
                self.skipped += 1
            return
        if name == b"exec" and self.multi:
            if self.multi_sent:
                self.sink.send(argv, origin)
                if self.select_in_multi:
                    self.tgt_db = None  # a SELECT queued in the block only counts if EXEC ran it
            else:
                self.skipped += 1
            self.multi = self.multi_sent = False
            if self.stop_pending is not None:
                self.stopped_at, self.stop_pending = self.stop_pending, None
            return
        if not (self.multi_sent if self.multi else self._in_window()):
            self.skipped += 1
            return
        self._select(origin)
        self.sink.send(self._remap(argv) if self.dbmap else argv, origin)

    def abort_transaction(self) -> bool:
        """At the end of input inside MULTI: DISCARD what was queued.
        Returns whether a transaction was open."""
        if not self.multi:
            return False
        if self.multi_sent:
            self.sink.send([b"DISCARD"], self.multi_origin or ("", 0))
            self.tgt_db = None
        self.multi = self.multi_sent = False
        return True


# -- reading --------------------------------------------------------------------------------------


class OpenFile:
    """A file being replayed: kept open from the moment it is queued."""

    def __init__(self, f: AOFFile) -> None:
        self.info = f
        self.fh = open(f.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.reader = RecordReader()
        self.pos = 0  # bytes fed to the reader

    @property
    def name(self) -> str:
        return self.info.name

    def close(self) -> None:
        self.fh.close()


def _feed(replayer: Replayer, of: OpenFile, data: bytes) -> None:
    feed = replayer.feed
    name = of.name
    for ev in of.reader.feed(data):
        feed(ev, name)
        if replayer.stopped:
            return


def _damaged(of: OpenFile, e: Exception) -> ToolError:
    if isinstance(e, AOFFormatError):
        return ToolError(f"{of.name}: {e.message} at offset {e.offset}; the replay stopped there "
                         f"(the commands before it were sent); check the file with aof-check", EXIT_PROBLEM)
    if isinstance(e, RDBError):
        return ToolError(f"{of.name}: RDB part: {e}; check the file with aof-check", EXIT_PROBLEM)
    if isinstance(e, AOFTruncatedError):
        return ToolError(f"{of.name}: the file ends inside a record at offset {e.offset} ({e.message}) although "
                         f"a later file follows it; check the AOF with aof-check", EXIT_PROBLEM)
    return ToolError(f"{of.name}: {e}", EXIT_PROBLEM)


def _open_all(files: list[AOFFile]) -> list[OpenFile]:
    opened: list[OpenFile] = []
    try:
        for f in files:
            opened.append(OpenFile(f))
    except OSError:
        for of in opened:
            of.close()
        raise
    return opened


def _open_source_files(args: Any) -> tuple[AOFSource, list[OpenFile]]:
    """Resolve the input and open every file to read.  A rewrite finishing
    between reading the manifest and opening its files deletes some of them:
    read the manifest again (nothing has been replayed yet)."""
    last: OSError | None = None
    for _ in range(10):
        src = open_source(args.input)
        try:
            return src, _open_all(src.files)
        except FileNotFoundError as e:
            last = e
            time.sleep(0.05)
    assert last is not None
    raise last


@dataclass(slots=True)
class Outcome:
    warnings: list[str] = field(default_factory=list)
    rewrites: int = 0
    files: list[str] = field(default_factory=list)


def replay_once(args: Any, replayer: Replayer, progress: Progress, out: Outcome) -> None:
    """Read the input to its end (no following)."""
    src, opened = _open_source_files(args)
    try:
        for i, of in enumerate(opened):
            last = i == len(opened) - 1
            out.files.append(of.name)
            size = os.fstat(of.fh.fileno()).st_size
            try:
                while not replayer.stopped:
                    data = of.fh.read(_CHUNK)
                    if not data:
                        for ev in of.reader.close():
                            replayer.feed(ev, of.name)
                        break
                    of.pos += len(data)
                    _feed(replayer, of, data)
                    progress.show(f"{of.name}: {of.pos * 100 // max(size, 1)}%, {replayer.sink.c.sent} commands sent")
            except AOFTruncatedError as e:
                if not last:
                    raise _damaged(of, e) from None
                out.warnings.append(f"{of.name} ends with an incomplete record at offset {e.offset} ({e.message}); "
                                    f"it was left out, as a server with aof-load-truncated yes does")
            except (AOFFormatError, RDBError) as e:
                raise _damaged(of, e) from None
            if replayer.stopped:
                break
    finally:
        for of in opened:
            of.close()


class ManifestWatcher:
    """Reads the manifest again whenever it may have changed -- from the
    watchdog thread as soon as the server renames a new one in, and from the
    main loop as a fallback -- and opens every newly listed incr file at
    once, so a follower busy replaying never lets a file be created and
    deleted unseen.  The :class:`ManifestTracker` is only touched under
    the lock; the main loop collects the opened files with :meth:`take`."""

    def __init__(self, src: AOFSource) -> None:
        assert src.manifest is not None and src.manifest_path is not None
        self.path = src.manifest_path
        self.dirpath = src.dirpath
        self.tracker = ManifestTracker(src.manifest)
        with open(self.path, "rb") as f:
            self.data = f.read()
        self.lock = threading.Lock()
        self.pending: list[OpenFile] = []
        self.error: Exception | None = None

    @property
    def rewrites(self) -> int:
        return self.tracker.rewrites

    def poll(self) -> None:
        """Look at the manifest; any thread."""
        with self.lock:
            if self.error is not None:
                return
            try:
                self._poll()
            except Exception as e:  # noqa: BLE001 - handed to the main loop by take()
                self.error = e

    def _poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return  # between an unlink and a rename: the next event or poll sees the new one
        if data == self.data:
            return
        try:
            am = source_from_manifest(self.path, data).manifest
        except ManifestError as e:
            raise ToolError(f"{self.path}: {e}", EXIT_PROBLEM) from None
        assert am is not None
        for info in self.tracker.update(am):
            path = os.path.join(self.dirpath, info.name)
            try:
                self.pending.append(OpenFile(AOFFile(info.name, path, "incr", info.seq)))
            except FileNotFoundError:
                raise FollowGap(f"incr file {info.name} was deleted before it could be opened") from None
        self.data = data

    def take(self) -> list[OpenFile]:
        """The files opened since the last call; raises what went wrong."""
        with self.lock:
            if self.error is not None:
                raise self.error
            out, self.pending = self.pending, []
            return out

    def close(self) -> None:
        with self.lock:
            for of in self.pending:
                of.close()
            self.pending = []


class _Wake:
    """What wakes the follower: filesystem events (watchdog) and signals.
    A change of the manifest is handled in the watchdog thread itself
    (:meth:`ManifestWatcher.poll`)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.stop = False
        self.observer: Any = None

    def watch(self, dirpath: str, watcher: ManifestWatcher | None) -> str | None:
        """Start watching; returns a warning when only polling is possible."""
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - watchdog is a dependency
            return "watchdog is not installed: polling only"
        wake = self.event
        manifest = os.path.basename(watcher.path) if watcher is not None else None

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if watcher is not None:
                    for p in (event.src_path, getattr(event, "dest_path", "")):
                        if p and os.path.basename(os.fsdecode(p)) == manifest:
                            watcher.poll()
                            break
                wake.set()

        try:
            obs = Observer()
            obs.schedule(Handler(), dirpath, recursive=False)
            obs.daemon = True
            obs.start()
        except OSError as e:  # e.g. the inotify watch limit
            return f"cannot watch {dirpath} ({e.strerror or e}): polling only"
        self.observer = obs
        return None

    def close(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(5)
            self.observer = None


def follow(args: Any, replayer: Replayer, progress: Progress, out: Outcome, wake: _Wake) -> None:
    """Replay, then keep following (see the module docstring)."""
    src, opened = _open_source_files(args)
    queue: deque[OpenFile] = deque(opened)
    watcher = ManifestWatcher(src) if src.kind == "manifest" else None
    note = wake.watch(src.dirpath, watcher)
    if note:
        out.warnings.append(note)
    for of in queue:
        out.files.append(of.name)
    poll = max(0.05, args.poll)
    next_poll = 0.0
    try:
        while not wake.stop and not replayer.stopped:
            if watcher is not None:
                now = time.monotonic()
                if now >= next_poll:
                    watcher.poll()  # the fallback of the watchdog events
                    next_poll = now + poll
                for of in watcher.take():
                    queue.append(of)
                    out.files.append(of.name)
                out.rewrites = watcher.rewrites
            cur = queue[0]
            # What the current file holds (bounded, so new files are noticed regularly).
            budget = 8 * _CHUNK
            got = 0
            try:
                while got < budget and not replayer.stopped:
                    data = cur.fh.read(_CHUNK)
                    if not data:
                        break
                    cur.pos += len(data)
                    got += len(data)
                    _feed(replayer, cur, data)
            except (AOFFormatError, RDBError) as e:
                raise _damaged(cur, e) from None
            if replayer.stopped:
                break
            if got:
                progress.show(f"following {cur.name} @ {cur.pos}: {replayer.sink.c.sent} commands sent, "
                              f"{out.rewrites} rewrites followed")
                continue
            if len(queue) > 1:
                # A newer file is listed: this one is complete (the server moved its writes on
                # before listing the new file, and this one was read to its end after that).
                try:
                    for ev in cur.reader.close():
                        replayer.feed(ev, cur.name)
                except (AOFTruncatedError, AOFFormatError, RDBError) as e:
                    raise _damaged(cur, e) from None
                cur.close()
                queue.popleft()
                continue
            # Caught up: acknowledge what is pending, then wait for news.
            replayer.sink.flush()
            progress.show(f"following {cur.name} @ {cur.pos}: {replayer.sink.c.sent} commands sent, "
                          f"{out.rewrites} rewrites followed (idle)", force=True)
            _check_shrink(cur)
            wake.event.wait(poll)
            wake.event.clear()
    finally:
        wake.close()
        if watcher is not None:
            watcher.close()
        for of in queue:
            of.close()


def _check_shrink(of: OpenFile) -> None:
    """A server restarted with aof-load-truncated cuts an incomplete tail and
    appends after it: go back to the end of the last complete record."""
    size = os.fstat(of.fh.fileno()).st_size
    if size >= of.pos:
        return
    committed = of.reader.offset
    if of.reader.in_rdb or size < committed:
        raise ToolError(f"{of.name} shrank to {size} bytes, below what was already replayed (offset {committed}): "
                        f"the file was replaced; replay again from scratch", EXIT_PROBLEM)
    of.fh.seek(committed)
    of.pos = committed
    of.reader = RecordReader(start=committed)


# -- command line ---------------------------------------------------------------------------------


def _connect(args: Any) -> TargetSink:
    to = args.to
    password = args.password if args.password is not None else os.environ.get("REDISCLI_AUTH")
    common: dict[str, Any] = {
        "username": args.user, "password": password, "socket_timeout": args.timeout,
        "socket_connect_timeout": min(args.timeout, 10.0), "retry": Retry(NoBackoff(), 0),
        "client_name": None,
    }
    conn: redis.connection.AbstractConnection
    if to.startswith("unix:") or to.startswith("/"):
        path = to[5:] if to.startswith("unix:") else to
        conn = redis.UnixDomainSocketConnection(path=path, **common)  # type: ignore[abstract]
        label = path
    else:
        host, sep, port_s = to.rpartition(":")
        if not sep or not port_s.isdigit() or not host:
            raise ToolError(f"--to {to!r}: expected HOST:PORT (or unix:/path)", EXIT_USAGE)
        host = host.strip("[]")
        conn = redis.Connection(host=host, port=int(port_s), **common)
        label = to
    try:
        conn.connect()
    except redis.AuthenticationError as e:
        raise ToolError(f"{label}: authentication failed: {e}", EXIT_IO) from None
    except redis.ResponseError as e:
        raise ToolError(f"{label}: {e}", EXIT_IO) from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
        raise ToolError(f"cannot connect to {label}: {e}", EXIT_IO) from None
    return TargetSink(conn, label, args.pipeline, quiet_errors=False)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.dry_run and not args.to:
        build_parser().error("--to HOST:PORT is required (or --dry-run)")
    if args.dry_run and args.to:
        build_parser().error("--dry-run and --to exclude each other")
    if args.from_ts is not None and args.to_ts is not None and args.from_ts > args.to_ts:
        build_parser().error("--from-ts is after --to-ts")
    if args.pipeline < 1:
        build_parser().error("--pipeline must be at least 1")
    dbmap: dict[int, int] = {}
    for m in args.db:
        dbmap.update(m)
    wake = _Wake()

    def body() -> int:
        t0 = time.monotonic()
        progress = Progress(False if args.quiet or args.json else None)
        sink: Sink = PrintSink(sys.stdout.buffer, args.format == "resp") if args.dry_run else _connect(args)
        replayer = Replayer(sink, dbmap, args.from_ts, args.to_ts)
        out = Outcome()
        restore: list[tuple[signal.Signals, Any]] = []
        if args.follow:
            def on_signal(signum: int, frame: Any) -> None:
                wake.stop = True
                wake.event.set()

            for sig in (signal.SIGINT, signal.SIGTERM):
                restore.append((sig, signal.signal(sig, on_signal)))
        failure: ToolError | None = None
        try:
            if args.follow:
                follow(args, replayer, progress, out, wake)
            else:
                replay_once(args, replayer, progress, out)
        except FollowGap as e:
            failure = ToolError(f"cannot keep following: {e}", EXIT_PROBLEM)
        except ToolError as e:
            if e.code != EXIT_PROBLEM:
                raise  # the target is gone: nothing more can be sent
            failure = e  # damaged input: what came before the damage is sent and acknowledged below
        finally:
            progress.clear()
            for sig, old in restore:
                signal.signal(sig, old)
        if replayer.abort_transaction():
            out.warnings.append("the input ends inside MULTI without EXEC: the transaction was discarded")
        sink.close()
        if args.from_ts is not None and not replayer.annotated:
            out.warnings.append("no #TS annotation in the input (aof-timestamp-enabled was off): --from-ts "
                                "skipped every command")
        for w in out.warnings:
            warn(PROG, "warning: " + w)
        c = sink.c
        doc = {
            "input": args.input,
            "target": None if args.dry_run else args.to,
            "dry_run": bool(args.dry_run),
            "files": out.files,
            "commands_read": replayer.read,
            "commands_sent": c.sent,
            "skipped": replayer.skipped,
            "errors": c.errors,
            "first_errors": c.shown,
            "stopped_at": None if replayer.stopped_at is None else
            {"file": replayer.stopped_at[0], "offset": replayer.stopped_at[1], "timestamp": replayer.stopped_at[2]},
            "rewrites_followed": out.rewrites,
            "warnings": out.warnings,
            "seconds": round(time.monotonic() - t0, 3),
        }
        stream = sys.stderr if args.dry_run else sys.stdout
        if args.json:
            print_json(doc, stream)
        elif not args.quiet:
            where = "printed" if args.dry_run else f"sent to {args.to}"
            line = (f"{c.sent} commands {where} ({replayer.read} read from {len(out.files)} file"
                    f"{'s' if len(out.files) != 1 else ''}")
            if replayer.skipped:
                line += f", {replayer.skipped} outside the time window"
            line += f"), {c.errors} error{'s' if c.errors != 1 else ''}"
            if args.follow:
                line += f", {out.rewrites} rewrite{'s' if out.rewrites != 1 else ''} followed"
            if replayer.stopped_at is not None:
                line += f"; stopped at #TS:{replayer.stopped_at[2]} in {replayer.stopped_at[0]} offset " \
                        f"{replayer.stopped_at[1]}"
            stream.write(line + ".\n")
            stream.flush()
        if failure is not None:
            raise failure
        return EXIT_PROBLEM if c.errors else EXIT_OK

    return run(PROG, body)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
