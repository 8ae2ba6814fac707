"""The multi-part AOF manifest of Redis 7.0 (spec/aof-format.md §2-§3).

A manifest lists the files of an AOF directory, one per line::

    file appendonly.aof.2.base.rdb seq 2 type b
    file appendonly.aof.1.incr.aof seq 1 type h
    file appendonly.aof.3.incr.aof seq 3 type i

:func:`parse_manifest` accepts exactly what Redis 7.0's
``aofLoadManifestFromFile`` accepts (and refuses the rest with Redis's
message and line), :meth:`Manifest.to_bytes` writes exactly what
``getAofManifestAsString`` writes: the base first, then history, then incr
files, names quoted with ``sdscatrepr`` when they need it.  The editing
methods are Redis's manifest operations (new base, new incr, rewritten incr
files to history), so the server and the offline tools follow one set of
naming and numbering rules.

File names are ``str`` (bytes decoded with ``os.fsdecode``, so any name
round-trips to the same bytes on disk).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import ManifestError

TYPE_BASE = "b"
TYPE_HIST = "h"
TYPE_INCR = "i"

BASE_SUFFIX = ".base"
INCR_SUFFIX = ".incr"
RDB_SUFFIX = ".rdb"
AOF_SUFFIX = ".aof"
MANIFEST_SUFFIX = ".manifest"
TEMP_PREFIX = "temp-"

#: fgets buffer of aofLoadManifestFromFile: a line (with its newline) must fit.
MANIFEST_MAX_LINE = 1024


# -- file names ------------------------------------------------------------------------


def manifest_name(appendfilename: str) -> str:
    """``appendonly.aof.manifest``"""
    return appendfilename + MANIFEST_SUFFIX


def temp_manifest_name(appendfilename: str) -> str:
    """``temp-appendonly.aof.manifest`` (written, fsynced, renamed over the manifest)."""
    return TEMP_PREFIX + appendfilename + MANIFEST_SUFFIX


def temp_incr_name(appendfilename: str) -> str:
    """``temp-appendonly.aof.incr``: the incr file while AOF is being turned on."""
    return TEMP_PREFIX + appendfilename + INCR_SUFFIX


def base_name(appendfilename: str, seq: int, rdb: bool) -> str:
    """``appendonly.aof.<seq>.base.rdb`` (RDB preamble) or ``.base.aof``."""
    return f"{appendfilename}.{seq}{BASE_SUFFIX}{RDB_SUFFIX if rdb else AOF_SUFFIX}"


def incr_name(appendfilename: str, seq: int) -> str:
    """``appendonly.aof.<seq>.incr.aof``"""
    return f"{appendfilename}.{seq}{INCR_SUFFIX}{AOF_SUFFIX}"


def is_base_name(name: str) -> bool:
    """pathIsBaseName: no directory separator in the name."""
    return "/" not in name and "\\" not in name


# -- the model -------------------------------------------------------------------------


@dataclass(slots=True)
class AOFInfo:
    """One manifest line: the file's name, its sequence number, its type
    (``b`` base, ``h`` history, ``i`` incr)."""

    name: str
    seq: int
    type: str

    def line(self) -> bytes:
        """aofInfoFormat: ``file <name> seq <seq> type <t>\\n``."""
        raw = os.fsencode(self.name)
        shown = _repr(raw) if _needs_repr(raw) else raw
        return b"file " + shown + b" seq %d type " % self.seq + self.type.encode("latin-1") + b"\n"


@dataclass(slots=True)
class Manifest:
    """aofManifest: the base (at most one), history and incr files, and the
    last sequence numbers handed out (base and incr counters are independent).
    ``dirty`` says the in-memory manifest differs from the file on disk."""

    base: AOFInfo | None = None
    incr: list[AOFInfo] = field(default_factory=list)
    history: list[AOFInfo] = field(default_factory=list)
    curr_base_seq: int = 0
    curr_incr_seq: int = 0
    dirty: bool = False

    def copy(self) -> Manifest:
        """aofManifestDup: edits are made on a copy and swapped in once the
        copy is safely on disk."""
        return Manifest(
            None if self.base is None else AOFInfo(self.base.name, self.base.seq, self.base.type),
            [AOFInfo(a.name, a.seq, a.type) for a in self.incr],
            [AOFInfo(a.name, a.seq, a.type) for a in self.history],
            self.curr_base_seq, self.curr_incr_seq, self.dirty,
        )

    def to_bytes(self) -> bytes:
        """getAofManifestAsString: base, then history, then incr lines."""
        parts = [] if self.base is None else [self.base.line()]
        parts.extend(a.line() for a in self.history)
        parts.extend(a.line() for a in self.incr)
        return b"".join(parts)

    def files(self) -> list[AOFInfo]:
        """The files a load reads, in order: the base, then every incr file."""
        return ([self.base] if self.base is not None else []) + list(self.incr)

    def is_empty(self) -> bool:
        """Neither a base nor an incr file: nothing to load."""
        return self.base is None and not self.incr

    # -- Redis's manifest operations ---------------------------------------------------

    def new_base(self, appendfilename: str, rdb: bool) -> str:
        """getNewBaseFileNameAndMarkPreAsHistory: the previous base (if any)
        becomes the first history entry; returns the new base's name."""
        if self.base is not None:
            self.base.type = TYPE_HIST
            self.history.insert(0, self.base)
        self.curr_base_seq += 1
        self.base = AOFInfo(base_name(appendfilename, self.curr_base_seq, rdb), self.curr_base_seq, TYPE_BASE)
        self.dirty = True
        return self.base.name

    def new_incr(self, appendfilename: str) -> str:
        """getNewIncrAofName: a new incr file at the end of the list."""
        self.curr_incr_seq += 1
        info = AOFInfo(incr_name(appendfilename, self.curr_incr_seq), self.curr_incr_seq, TYPE_INCR)
        self.incr.append(info)
        self.dirty = True
        return info.name

    def last_incr(self, appendfilename: str) -> str:
        """getLastIncrAofName: the incr file to append to (a new one when the
        manifest has none)."""
        if not self.incr:
            return self.new_incr(appendfilename)
        return self.incr[-1].name

    def mark_rewritten_incr_as_history(self, keep_last: bool) -> None:
        """markRewrittenIncrAofAsHistory: after a successful rewrite every
        incr file except the one being written (``keep_last``, when AOF is
        on) becomes history; each is put first in the history list, walking
        from the newest, as Redis does."""
        if not self.incr:
            return
        kept = [self.incr[-1]] if keep_last else []
        rewritten = self.incr[:-1] if keep_last else self.incr
        for info in reversed(rewritten):
            info.type = TYPE_HIST
            self.history.insert(0, info)
        self.incr = kept
        self.dirty = True


# -- parsing -----------------------------------------------------------------------------


def parse_manifest(data: bytes) -> Manifest:
    """aofLoadManifestFromFile on the manifest's bytes; raises
    :class:`ManifestError` with Redis's message (and line) on any violation.

    Lines are read as ``fgets`` does with Redis's 1025-byte buffer, so a line
    of 1024 bytes or more, a last line without a newline and a NUL before
    the newline are "too long" lines, exactly as in Redis."""
    am = Manifest()
    linenum = 0
    maxseq = 0
    pos = 0
    n = len(data)
    while pos < n:
        nl = data.find(b"\n", pos, pos + MANIFEST_MAX_LINE)
        end = nl + 1 if nl >= 0 else min(n, pos + MANIFEST_MAX_LINE)
        raw = data[pos:end]
        pos = end
        linenum += 1
        if raw[:1] == b"#":
            continue
        text = raw.split(b"\0", 1)[0]  # the C string functions stop at a NUL
        if b"\n" not in text:
            raise ManifestError("The AOF manifest file contains too long line", linenum)
        line = text.strip(b" \t\r\n")
        shown = os.fsdecode(line)
        if not line:
            raise ManifestError("Invalid AOF manifest file format", linenum, shown)
        argv = split_args(line)
        if argv is None or len(argv) < 6 or len(argv) % 2:
            raise ManifestError("Invalid AOF manifest file format", linenum, shown)
        name: str | None = None
        seq = 0
        ftype = ""
        for i in range(0, len(argv), 2):
            k = argv[i].lower()
            if k == b"file":
                name = os.fsdecode(argv[i + 1])
                if not is_base_name(name):
                    raise ManifestError("File can't be a path, just a filename", linenum, shown)
            elif k == b"seq":
                seq = _atoll(argv[i + 1])
            elif k == b"type":
                ftype = argv[i + 1][:1].decode("latin-1")
            # other keys: ignored, for forward compatibility (as Redis)
        if name is None or not seq or not ftype:
            raise ManifestError("Invalid AOF manifest file format", linenum, shown)
        info = AOFInfo(name, seq, ftype)
        if ftype == TYPE_BASE:
            if am.base is not None:
                raise ManifestError("Found duplicate base file information", linenum, shown)
            am.base = info
            am.curr_base_seq = seq
        elif ftype == TYPE_HIST:
            am.history.append(info)
        elif ftype == TYPE_INCR:
            if seq <= maxseq:
                raise ManifestError("Found a non-monotonic sequence number", linenum, shown)
            am.incr.append(info)
            am.curr_incr_seq = seq
            maxseq = seq
        else:
            raise ManifestError("Unknown AOF file type", linenum, shown)
    if linenum == 0:
        raise ManifestError("Found an empty AOF manifest")
    return am


def _atoll(s: bytes) -> int:
    """atoll: optional blanks and sign, then the leading digits (0 if none)."""
    s = s.lstrip(b" \t\n\v\f\r")
    neg = s[:1] == b"-"
    if s[:1] in (b"-", b"+"):
        s = s[1:]
    i = 0
    while i < len(s) and 48 <= s[i] <= 57:
        i += 1
    v = int(s[:i]) if i else 0
    return -v if neg else v


_SPACE = b" \n\r\t\v\f"
_HEX = b"0123456789abcdefABCDEF"
_ESC = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}


def split_args(line: bytes) -> list[bytes] | None:
    """sdssplitargs: blank-separated arguments; "double quotes" with the
    escapes \\n \\r \\t \\b \\a \\xHH and \\<c>, 'single quotes' with only \\';
    a closing quote must be followed by a blank or the end.  None for
    unbalanced quotes."""
    out: list[bytes] = []
    n = len(line)
    i = 0
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return out
        inq = insq = False
        cur = bytearray()
        while True:
            c = line[i] if i < n else -1
            if inq:
                if c == 0x5C and i + 3 < n and line[i + 1] == 0x78 and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    cur += _ESC.get(line[i], bytes((line[i],)))
                elif c == 0x22:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                elif c < 0:
                    return None
                else:
                    cur.append(c)
            elif insq:
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    cur.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                elif c < 0:
                    return None
                else:
                    cur.append(c)
            else:
                if c < 0 or c in b" \n\r\t":
                    if c >= 0:
                        i += 1
                    break
                if c == 0x22:
                    inq = True
                elif c == 0x27:
                    insq = True
                else:
                    cur.append(c)
            i += 1
        out.append(bytes(cur))


def quote_arg(s: bytes) -> bytes:
    """An argument as Redis shows it (a manifest line, redis-cli): bare when
    it is plain printable text, else sdscatrepr's double-quoted form."""
    return _repr(s) if not s or _needs_repr(s) else s


def _needs_repr(s: bytes) -> bool:
    """sdsneedsrepr: a backslash, a quote, a blank or a non-printable byte."""
    return any(b in b'\\"' or b <= 0x20 or b >= 0x7F for b in s)


def _repr(s: bytes) -> bytes:
    """sdscatrepr: the name in double quotes with C escapes."""
    out = bytearray(b'"')
    for b in s:
        if b == 0x5C:
            out += b"\\\\"
        elif b == 0x22:
            out += b'\\"'
        elif b == 0x0A:
            out += b"\\n"
        elif b == 0x0D:
            out += b"\\r"
        elif b == 0x09:
            out += b"\\t"
        elif b == 0x07:
            out += b"\\a"
        elif b == 0x08:
            out += b"\\b"
        elif 0x20 <= b < 0x7F:
            out.append(b)
        else:
            out += b"\\x%02x" % b
    out.append(0x22)
    return bytes(out)
