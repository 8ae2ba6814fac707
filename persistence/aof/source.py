"""An AOF as the offline tools meet it, and its files as one record stream.

:func:`open_source` resolves what a user names on a command line, the way
``redis-check-aof`` decides what its argument is:

* a **directory**: the AOF directory holding one ``*.manifest`` (or a
  server's working directory with exactly one sub-directory that does,
  e.g. ``/var/lib/redis`` -> ``appendonlydir/``);
* a **manifest** file (named ``*.manifest``, or whose first non-comment
  line starts with ``file``): the multi-part AOF it lists;
* any **other file**: one AOF file read on its own -- an old-style
  single-file AOF (RESP, or an RDB preamble then RESP), a base or incr
  file, or a bare RDB.

The files to read, in load order, are the manifest's base then its incr
files (history files are never loaded).

:class:`RecordReader` is the push reader of one file: an RDB part (a file
that starts with ``REDIS``) is read by the RDB reader and turned into the
commands that rebuild it (:mod:`.rdb_commands`), the rest by
:class:`~.parser.AOFParser`, with offsets absolute in the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from ..rdb import RDBReader
from .errors import AOFError
from .manifest import MANIFEST_SUFFIX, TEMP_PREFIX, Manifest, parse_manifest
from .parser import AOFParser, Event
from .rdb_commands import RDBCommandStream

__all__ = ["AOFFile", "AOFSource", "AOFSourceError", "RecordReader", "open_source", "locate", "looks_like_manifest",
           "load_manifest_source", "source_from_manifest", "file_records",
           "ROLE_BASE", "ROLE_INCR", "ROLE_FILE"]

ROLE_BASE = "base"
ROLE_INCR = "incr"
ROLE_FILE = "file"  # a single file read on its own

#: redis-check-aof reads this much of a file to decide whether it is a manifest.
_SNIFF = 4096


class AOFSourceError(AOFError):
    """The input is not something an AOF tool can read (no such path, a
    directory without a manifest, several manifests)."""

    def __init__(self, message: str, path: str) -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}")


@dataclass(slots=True)
class AOFFile:
    """One file to read: its name (as the manifest spells it), its path, its
    role (``base``, ``incr`` or ``file``) and its manifest sequence number."""

    name: str
    path: str
    role: str
    seq: int | None = None


@dataclass(slots=True)
class AOFSource:
    """A resolved input.  ``kind`` is ``manifest`` or ``file``;
    ``appendfilename`` is the AOF's base name (the manifest's name without
    ``.manifest``, or the file's own name); ``manifest`` is None for a
    single file."""

    input: str
    kind: str
    dirpath: str
    appendfilename: str
    manifest_path: str | None = None
    manifest: Manifest | None = None
    files: list[AOFFile] = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "manifest":
            return f"multi-part AOF {self.manifest_path}"
        return f"single AOF file {self.input}"


def looks_like_manifest(head: bytes) -> bool:
    """fileIsManifest: the first line that is not a ``#`` comment starts
    with ``file``."""
    for line in head.split(b"\n"):
        stripped = line.strip(b" \t\r")
        if not stripped or stripped[:1] == b"#":
            continue
        return stripped.startswith(b"file ") or stripped == b"file"
    return False


def _manifests_in(dirpath: str) -> list[str]:
    try:
        names = os.listdir(dirpath)
    except OSError as e:
        raise AOFSourceError(f"cannot list the directory: {e.strerror}", dirpath) from None
    return sorted(n for n in names if n.endswith(MANIFEST_SUFFIX) and not n.startswith(TEMP_PREFIX)
                  and os.path.isfile(os.path.join(dirpath, n)))


def _find_manifest(dirpath: str) -> str:
    found = _manifests_in(dirpath)
    if len(found) > 1:
        raise AOFSourceError(f"several AOF manifests ({', '.join(found)}): name the one to use", dirpath)
    if found:
        return os.path.join(dirpath, found[0])
    candidates: list[str] = []
    for sub in sorted(os.listdir(dirpath)):
        p = os.path.join(dirpath, sub)
        if os.path.isdir(p) and not os.path.islink(p):
            try:
                inner = _manifests_in(p)
            except AOFSourceError:
                continue
            candidates.extend(os.path.join(p, m) for m in inner)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise AOFSourceError("several AOF directories (" + ", ".join(candidates) + "): name the one to use",
                             dirpath)
    raise AOFSourceError("no AOF manifest (*.manifest) in this directory or its sub-directories", dirpath)


def locate(path: str) -> tuple[str, str]:
    """What ``path`` names: ``("manifest", <manifest path>)`` or
    ``("file", path)`` (see the module docstring); raises
    :class:`AOFSourceError` when it names nothing usable."""
    if not os.path.exists(path):
        raise AOFSourceError("no such file or directory", path)
    if os.path.isdir(path):
        return "manifest", _find_manifest(path)
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except OSError as e:
        raise AOFSourceError(f"cannot read: {e.strerror}", path) from None
    if path.endswith(MANIFEST_SUFFIX) or looks_like_manifest(head):
        return "manifest", path
    return "file", path


def open_source(path: str) -> AOFSource:
    """Resolve ``path`` (see the module docstring).  Raises
    :class:`AOFSourceError` for a path that cannot be used and
    :class:`~.errors.ManifestError` (Redis's message and line) for a
    manifest that does not parse; missing data files are not checked here
    (the checker reports them)."""
    kind, where = locate(path)
    if kind == "file":
        name = os.path.basename(path)
        return AOFSource(path, "file", os.path.dirname(os.path.abspath(path)), name,
                         files=[AOFFile(name, path, ROLE_FILE)])
    return load_manifest_source(where, given=path)


def load_manifest_source(mpath: str, *, given: str | None = None) -> AOFSource:
    """The :class:`AOFSource` of the manifest at ``mpath`` (re-read each
    time: a follower calls it again after every change)."""
    try:
        with open(mpath, "rb") as f:
            data = f.read()
    except OSError as e:
        raise AOFSourceError(f"cannot read the manifest: {e.strerror}", mpath) from None
    return source_from_manifest(mpath, data, given=given)


def source_from_manifest(mpath: str, data: bytes, *, given: str | None = None) -> AOFSource:
    """The :class:`AOFSource` of manifest bytes ``data`` read from ``mpath``."""
    am = parse_manifest(data)
    dirpath = os.path.dirname(mpath) or "."
    base = os.path.basename(mpath)
    appendfilename = base[: -len(MANIFEST_SUFFIX)] if base.endswith(MANIFEST_SUFFIX) else base
    src = AOFSource(given or mpath, "manifest", dirpath, appendfilename, mpath, am)
    for info in am.files():
        role = ROLE_BASE if info is am.base else ROLE_INCR
        src.files.append(AOFFile(info.name, os.path.join(dirpath, info.name), role, info.seq))
    return src


class RecordReader:
    """Push reader of one AOF file (see the module docstring): ``feed``
    bytes from ``start`` on, get :class:`~.parser.Command` and
    :class:`~.parser.Annotation` records; ``close`` at the end of input
    raises :class:`~.errors.AOFTruncatedError` for an incomplete last
    record.  Errors: :class:`~.errors.AOFFormatError` (RESP part) and
    :class:`~ambry.persistence.rdb.RDBError` (RDB part), both with offsets.

    ``offset`` is the end of the last complete record (in the RDB part: the
    bytes read so far, as RDB records cannot be resumed from the middle);
    ``rdb_end`` the end of the RDB part once read (None for a RESP file)."""

    def __init__(self, *, start: int = 0, verify_checksum: bool = True) -> None:
        self._head = b""
        self._start = start
        self._verify = verify_checksum
        self._rdb: RDBReader | None = None
        self._cmds: RDBCommandStream | None = None
        self._resp: AOFParser | None = AOFParser(base_offset=start) if start else None
        self.rdb_end: int | None = None
        self.rdb_keys = 0

    @property
    def offset(self) -> int:
        if self._resp is not None:
            return self._resp.offset
        if self._rdb is not None:
            return self._rdb.offset
        return self._start

    @property
    def in_rdb(self) -> bool:
        """True while reading an RDB part."""
        return self._rdb is not None and self._resp is None

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet part of a complete record."""
        if self._resp is not None:
            return self._resp.buffered
        return len(self._head)

    def feed(self, data: bytes) -> Iterator[Event]:
        if self._resp is not None:
            return self._resp.feed(data)
        if self._rdb is None:
            self._head += data
            if len(self._head) < 5:
                return iter(())
            data, self._head = self._head, b""
            if data[:5] != b"REDIS":
                self._resp = AOFParser(base_offset=self._start)
                return self._resp.feed(data)
            self._rdb = RDBReader(verify_checksum=self._verify)
            self._cmds = RDBCommandStream()
        return self._rdb_feed(data)

    def _rdb_feed(self, data: bytes) -> Iterator[Event]:
        assert self._rdb is not None and self._cmds is not None
        rdb = self._rdb
        out: list[Event] = []
        try:
            for ev in rdb.feed(data):
                out.extend(self._cmds.commands(ev))
        except Exception as e:  # an RDBError: deliver what came before it first
            return _then_raise(out, e)
        if rdb.done:
            end = rdb.end_offset
            assert end is not None
            self.rdb_end = end
            self.rdb_keys = self._cmds.keys
            self._resp = AOFParser(base_offset=end)
            tail = rdb.unused_data
            if tail:
                try:
                    out.extend(self._resp.feed(tail))
                except Exception as e:  # an AOFFormatError in the RESP tail
                    return _then_raise(out, e)
        return iter(out)

    def close(self) -> Iterator[Event]:
        """End of input: the last records of an RDB part, then raises if the
        input stopped inside a record.  (Like :meth:`feed`, the work is done
        at once; the iterator delivers the records, then raises.)"""
        if self._resp is None and self._rdb is None:
            if not self._head:
                return iter(())
            # Fewer than five bytes: not an RDB; the RESP parser judges them.
            self._resp = AOFParser(base_offset=self._start)
            events = list(self._resp.feed(self._head))
            self._head = b""
            self._resp.close()
            return iter(events)
        if self._resp is None:
            return self._rdb_close()
        self._resp.close()
        return iter(())

    def _rdb_close(self) -> Iterator[Event]:
        assert self._rdb is not None and self._cmds is not None
        out: list[Event] = []
        try:
            for ev in self._rdb.close():
                out.extend(self._cmds.commands(ev))
        except Exception as e:
            return _then_raise(out, e)
        self.rdb_end = self._rdb.end_offset
        self.rdb_keys = self._cmds.keys
        return iter(out)


def _then_raise(events: list[Event], err: Exception) -> Iterator[Event]:
    yield from events
    raise err


def file_records(f: IO[bytes], *, start: int = 0, chunk_size: int = 1 << 20) -> Iterator[Event]:
    """Every record of a file object read to its end (raises as
    :class:`RecordReader` does)."""
    if start:
        f.seek(start)
    r = RecordReader(start=start)
    read = f.read
    while True:
        chunk = read(chunk_size)
        if not chunk:
            yield from r.close()
            return
        yield from r.feed(chunk)

