"""Checking a whole AOF: redis-check-aof's checkMultiPartAof, with the
details a repair needs.

:func:`check_source` reads every file a load would read (the manifest's
base, then its incr files; or one file), in order:

* an RDB part (a file starting with ``REDIS``) with the RDB reader: every
  record decoded, the CRC-64 trailer compared; the counts of keys,
  expires and function libraries are reported;
* the RESP part (the whole file, or what follows the RDB) with
  :func:`~.parser.check_aof`, redis-check-aof's strict scan: its
  ``ok_up_to`` (the end of the last complete command outside an unfinished
  MULTI), its line counter (continued across files, as the tool does) and
  its messages.

The first problem in load order is the verdict.  It names the file, the
offset where the bad bytes start and the offset a repair would truncate
to; only a problem in the RESP part of the *last* file can be repaired by
truncating (the commands of later files were written after the damaged
ones, so cutting an earlier file would silently reorder history), exactly
redis-check-aof's rule.

Problem kinds: ``manifest`` (does not parse), ``missing`` (a listed file
cannot be read), ``rdb`` (a corrupt RDB part), ``truncated`` (the input
ends inside a record), ``unfinished-multi`` (the file ends after MULTI
without EXEC), ``format`` (a record that starts with neither ``*`` nor
``#``) and ``corrupt`` (bad framing inside a record, nested MULTI, EXEC
without MULTI).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..rdb import Aux, End, FunctionLibrary, Header, Key, RDBError, RDBReader
from .errors import ManifestError
from .parser import CheckResult, check_aof
from .source import AOFFile, AOFSource, locate, open_source

__all__ = ["Problem", "RDBInfo", "FileReport", "Report", "check_source", "check_path", "FIXABLE_KINDS"]

#: Problems that truncating the file at ``valid_up_to`` repairs.
FIXABLE_KINDS = frozenset(("truncated", "unfinished-multi", "format", "corrupt"))

#: A progress callback: (file name, bytes done in it, its size).
ProgressFn = Callable[[str, int, int], None]

_CHUNK = 1 << 20


@dataclass(slots=True)
class Problem:
    """What is wrong, where: ``offset`` is where the bad bytes start,
    ``valid_up_to`` where everything before is sound (the truncation point
    of a repair; None when truncating cannot repair it)."""

    file: str | None
    kind: str
    message: str
    offset: int | None = None
    valid_up_to: int | None = None
    line: int | None = None

    def describe(self) -> str:
        where = self.file or "manifest"
        if self.kind == "manifest" and self.line:
            where += f", line {self.line}"
        elif self.offset is not None:
            where += f" at offset {self.offset}"
        return f"{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "kind": self.kind, "offset": self.offset, "valid_up_to": self.valid_up_to,
                "line": self.line, "message": self.message}


@dataclass(slots=True)
class RDBInfo:
    """The RDB part of a file: its version, where it ends, what it holds."""

    version: int = 0
    end_offset: int | None = None
    keys: int = 0
    expires: int = 0
    functions: int = 0
    aux: dict[str, str] = field(default_factory=dict)
    checksum: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "end_offset": self.end_offset, "keys": self.keys,
                "expires": self.expires, "functions": self.functions, "aux": self.aux, "checksum": self.checksum}


@dataclass(slots=True)
class FileReport:
    """One file's verdict.  ``format``: ``rdb`` (an RDB and nothing else),
    ``rdb+resp`` (an RDB preamble then commands), ``resp``, ``empty`` or
    ``missing``; ``resp`` is the RESP scan (None when there was none)."""

    file: AOFFile
    size: int | None = None
    format: str = "missing"
    rdb: RDBInfo | None = None
    resp: CheckResult | None = None
    problem: Problem | None = None
    line: int = 1

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def commands(self) -> int:
        """Complete commands in the valid part of the RESP part."""
        return self.resp.commands if self.resp is not None else 0

    @property
    def valid_up_to(self) -> int | None:
        if self.problem is not None:
            return self.problem.valid_up_to
        return self.size

    def to_json(self) -> dict[str, Any]:
        r = self.resp
        return {
            "file": self.name, "path": self.file.path, "role": self.file.role, "seq": self.file.seq,
            "size": self.size, "format": self.format, "valid": self.problem is None,
            "valid_up_to": self.valid_up_to, "ok_up_to_line": self.line,
            "rdb": self.rdb.to_json() if self.rdb is not None else None,
            "commands": self.commands, "annotations": r.annotations if r is not None else 0,
            "first_timestamp": r.first_ts if r is not None else None,
            "last_timestamp": r.last_ts if r is not None else None,
            "problem": self.problem.to_json() if self.problem is not None else None,
        }


@dataclass(slots=True)
class Report:
    """The verdict on a whole input.  ``problem`` is the first one in load
    order; ``timestamp_cut`` (with ``to_timestamp``) the file and offset of
    the first ``#TS`` annotation newer than it."""

    input: str
    source: AOFSource | None
    files: list[FileReport] = field(default_factory=list)
    problem: Problem | None = None
    timestamp_cut: tuple[FileReport, int] | None = None

    @property
    def valid(self) -> bool:
        return self.problem is None

    @property
    def last(self) -> FileReport | None:
        return self.files[-1] if self.files else None

    def fix(self) -> tuple[FileReport, int] | None:
        """The file and size ``--fix`` truncates to, or None when the first
        problem cannot be repaired by truncating (see :meth:`fix_refusal`)."""
        p = self.problem
        if p is None or p.kind not in FIXABLE_KINDS or p.valid_up_to is None:
            return None
        fr = self.files[-1]
        if fr.name != p.file:
            return None
        return fr, p.valid_up_to

    def fix_refusal(self) -> str | None:
        """Why the first problem cannot be repaired (None when it can, or
        when there is nothing to repair)."""
        p = self.problem
        if p is None or self.fix() is not None:
            return None
        if p.kind == "manifest":
            return "the manifest itself is damaged; truncating a file cannot repair it"
        if p.kind == "missing":
            return f"{p.file} cannot be read; truncating cannot bring it back"
        if p.kind == "rdb":
            return (f"the RDB part of {p.file} is corrupt; its keys cannot be recovered by truncating "
                    f"(restore the file from a backup, or rebuild it from another copy)")
        return (f"{p.file} is not the last file of the manifest: the files after it hold later writes, and "
                f"cutting it would replay them on top of a different history. Remove the files after it "
                f"from the manifest first if you accept losing them")


def _strip_position(msg: str) -> str:
    """redis-check-aof's messages start with ``0x<offset>: ``."""
    if msg.startswith("0x") and ": " in msg:
        return msg.split(": ", 1)[1]
    return msg


def _check_rdb(fh: Any, size: int, name: str, progress: ProgressFn | None) -> tuple[RDBInfo, RDBError | None]:
    """Read the RDB part of an open file (checksum verified)."""
    info = RDBInfo()
    reader = RDBReader(verify_checksum=True, total_size=size)
    read = fh.read

    def take(events: Any) -> None:
        for ev in events:
            t = type(ev)
            if t is Key:
                info.keys += 1
                if ev.expire_ms is not None:
                    info.expires += 1
            elif t is Aux:
                info.aux[ev.key.decode("utf-8", "backslashreplace")] = ev.value.decode("utf-8", "backslashreplace")
            elif t is FunctionLibrary:
                info.functions += 1
            elif t is Header:
                info.version = ev.version
            elif t is End:
                if ev.checksum is None:
                    info.checksum = "absent (RDB version < 5)"
                elif ev.checksum == 0:
                    info.checksum = "not computed (stored 0)"
                else:
                    info.checksum = "ok"

    try:
        done = 0
        while not reader.done:
            chunk = read(_CHUNK)
            if not chunk:
                take(reader.close())
                break
            done += len(chunk)
            take(reader.feed(chunk))
            if progress is not None:
                progress(name, min(done, size), size)
    except RDBError as e:
        return info, e
    info.end_offset = reader.end_offset
    return info, None


def _resp_problem(name: str, res: CheckResult, data: Any) -> Problem | None:
    """The problem a RESP scan found, in the checker's vocabulary."""
    if res.truncate_at is not None:
        return None  # the timestamp scan stopped early: what it read is sound
    if res.format_error:
        off = res.error_offset if res.error_offset is not None else res.ok_up_to
        got = bytes(data[off:off + 1])
        msg = f"format error: expected a command ('*') or an annotation ('#'), got {got!r}"
        if res.in_multi:
            msg += f", inside the transaction opened at offset {res.ok_up_to}"
        return Problem(name, "format", msg, off, res.ok_up_to, res.line)
    if res.error is not None or not res.valid:
        msg = _strip_position(res.error) if res.error else "the file ends before an argument of its last command"
        if res.truncated:
            kind = "truncated"
            msg = f"truncated record: {msg}"
        elif res.in_multi and res.error is not None and "EOF" in res.error:
            kind = "unfinished-multi"
            msg = (f"the file ends inside a transaction: the MULTI at offset {res.ok_up_to} has no EXEC "
                   f"(redis-check-aof: {msg})")
        else:
            kind = "corrupt"
        if res.in_multi and kind != "unfinished-multi":
            msg += f" (inside the transaction opened at offset {res.ok_up_to}, which a repair drops too)"
        off = res.error_offset if res.error_offset is not None else res.ok_up_to
        return Problem(name, kind, msg, off, res.ok_up_to, res.line)
    if res.tail_annotation is not None:
        return Problem(name, "truncated", "truncated record: the last annotation line has no line end",
                       res.tail_annotation, res.tail_annotation, res.line)
    return None


def check_file(f: AOFFile, *, line: int = 1, to_timestamp: int | None = None,
               progress: ProgressFn | None = None) -> FileReport:
    """Check one file (see the module docstring); ``line`` is the
    redis-check-aof line counter carried over from the previous files."""
    fr = FileReport(f, line=line)
    try:
        fh = open(f.path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        fr.problem = Problem(f.name, "missing", f"cannot open the file: {e.strerror}")
        return fr
    with fh:
        size = os.fstat(fh.fileno()).st_size
        fr.size = size
        if size == 0:
            fr.format = "empty"
            return fr
        start = 0
        if fh.read(5) == b"REDIS":
            fh.seek(0)
            info, err = _check_rdb(fh, size, f.name, progress)
            fr.rdb = info
            if err is not None:
                fr.format = "rdb"
                fr.problem = Problem(f.name, "rdb", f"RDB part: {err}", err.offset, None)
                return fr
            assert info.end_offset is not None
            start = info.end_offset
            fr.format = "rdb" if start == size else "rdb+resp"
        else:
            fr.format = "resp"
        if start >= size:
            fr.resp = None
            return fr
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            res = check_aof(mm, start=start, line=line, to_timestamp=to_timestamp)  # type: ignore[arg-type]
            fr.resp = res
            fr.line = res.line
            fr.problem = _resp_problem(f.name, res, mm)
        finally:
            mm.close()
        if progress is not None:
            progress(f.name, size, size)
    return fr


def check_source(src: AOFSource, *, to_timestamp: int | None = None,
                 progress: ProgressFn | None = None) -> Report:
    """Check every file of ``src`` in load order (see the module docstring)."""
    rep = Report(src.input, src)
    line = 1
    for f in src.files:
        ts = to_timestamp if rep.timestamp_cut is None else None
        fr = check_file(f, line=line, to_timestamp=ts, progress=progress)
        line = fr.line
        rep.files.append(fr)
        if fr.resp is not None and fr.resp.truncate_at is not None and rep.timestamp_cut is None:
            rep.timestamp_cut = (fr, fr.resp.truncate_at)
        if fr.problem is not None and rep.problem is None:
            rep.problem = fr.problem
    if src.kind == "manifest" and not src.files and rep.problem is None:
        rep.problem = Problem(None, "manifest", "the manifest lists no base and no incr file: there is nothing "
                                                "to load")
    return rep


def check_path(path: str, *, to_timestamp: int | None = None, progress: ProgressFn | None = None) -> Report:
    """:func:`~.source.open_source` then :func:`check_source`; a manifest
    that does not parse is reported as the problem (kind ``manifest``).
    Raises :class:`~.source.AOFSourceError` for an unusable path."""
    kind, where = locate(path)
    try:
        src = open_source(path)
    except ManifestError as e:
        name = os.path.basename(where) if kind == "manifest" else None
        return Report(path, None, problem=Problem(name, "manifest", str(e), line=e.line_number or None))
    return check_source(src, to_timestamp=to_timestamp, progress=progress)
