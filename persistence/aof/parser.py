"""A streaming, sans-IO parser for the AOF command stream (spec/aof-format.md §1).

An AOF incr file, a RESP-form base file and the tail of an old-style
preamble AOF are a concatenation of commands in RESP multibulk form
(``*<argc>\\r\\n`` then ``$<len>\\r\\n<bytes>\\r\\n`` per argument) and
``#`` annotation lines (``#TS:<unix seconds>``).  Feed bytes, get events::

    p = AOFParser()
    for chunk in chunks:
        for ev in p.feed(chunk):
            if type(ev) is Command: ...
    p.close()   # raises AOFTruncatedError if the input ends inside a record

Strictness follows Redis 7.0's loader (loadSingleAppendOnlyFile):

* a record must start with ``*`` (or ``#`` for an annotation) and have a
  count >= 1, and each argument header must start with ``$``, else
  :class:`AOFFormatError` -- never tolerated, whatever
  ``aof-load-truncated`` says;
* header lines (and annotations) longer than the loader's 1024-byte line
  buffer are format errors;
* the two bytes after an argument are skipped unchecked, as Redis's loader
  does; ``check_crlf=True`` checks them as ``redis-check-aof`` does;
* running out of input inside a record (an annotation included: Redis would
  otherwise glue the next write onto the half line) is *truncation*,
  reported by :meth:`AOFParser.close` with the end of the last complete
  record, where a loader truncates the file.

:func:`check_aof` is ``redis-check-aof``'s analysis of one file (MULTI/EXEC
pairing, ``ok_up_to``, the line counter, its messages).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import AOFFormatError, AOFTruncatedError

#: AOF_ANNOTATION_LINE_MAX_LEN: the loader reads header lines with this buffer.
LINE_MAX = 1024


class Command(NamedTuple):
    """One command: its arguments, the offset of its ``*`` and the offset
    just past its last CRLF (both absolute in the input)."""

    argv: list[bytes]
    offset: int
    end: int


class Annotation(NamedTuple):
    """A ``#`` line; ``text`` excludes the line terminator."""

    text: bytes
    offset: int
    end: int


Event = Command | Annotation

_WS = b" \t\n\v\f\r"


def c_atol(s: bytes) -> int:
    """atoi/strtol(s, NULL, 10): optional blanks and sign, then the leading
    digits; 0 when there are none."""
    s = s.lstrip(_WS)
    neg = s[:1] == b"-"
    if s[:1] in (b"-", b"+"):
        s = s[1:]
    i = 0
    n = len(s)
    while i < n and 48 <= s[i] <= 57:
        i += 1
    v = int(s[:i]) if i else 0
    return -v if neg else v


def _count(line: bytes) -> int:
    """The number of a ``*N``/``$N`` header line (without its prefix): the
    common ``digits\\r\\n`` form fast, anything else as atoi reads it."""
    if line.isdigit():
        return int(line)
    return c_atol(line)


_tuple_new = tuple.__new__
#: ``$%d\r\n`` repeated argc times, per argc: the canonical argument headers.
_HEADS: dict[int, bytes] = {}


def _parse_canonical(buf: bytes, base: int, events: list[Event]) -> tuple[int, int]:
    """The fast path of :meth:`AOFParser._parse`: complete records at the
    start of ``buf`` in the canonical form every writer produces (CRLF line
    ends, ``*<argc>`` and ``$<len>`` in plain decimal, each argument
    followed by CRLF; ``#`` lines without a bare LF).  ``buf`` is split on
    CRLF once and a record is taken whole: its arguments are every other
    token, its headers must equal ``$%d\\r\\n`` of their lengths.  Stops
    at the first record that is anything else (incomplete, an argument
    holding CRLF, an odd header: the general loop decides those, so
    errors and offsets do not depend on this path).  Returns (bytes
    consumed, commands)."""
    toks = buf.split(b"\r\n")
    last = len(toks) - 1  # toks[last] has no CRLF after it: never complete here
    heads = _HEADS
    crlf = b"\r\n"
    join = crlf.join
    append = events.append
    i = pos = ncmd = 0
    while i < last:
        h = toks[i]
        c = h[:1]
        if c == b"#":
            if b"\n" in h or len(h) + 2 > LINE_MAX:
                break
            end = pos + len(h) + 2
            append(_tuple_new(Annotation, (h, base + pos, base + end)))
            pos = end
            i += 1
            continue
        hd = h[1:]
        if c != b"*" or not hd.isdigit():
            break
        argc = int(hd)
        j = i + 1 + 2 * argc
        if argc < 1 or j > last:
            break
        argv = toks[i + 2 : j : 2]
        t = heads.get(argc)
        if t is None:
            t = heads[argc] = b"$%d\r\n" * argc
        lens = tuple(map(len, argv))
        hl = t % lens
        if join(toks[i + 1 : j : 2]) + crlf != hl:
            break
        end = pos + len(h) + 2 + len(hl) + sum(lens) + 2 * argc
        append(_tuple_new(Command, (argv, base + pos, base + end)))
        ncmd += 1
        pos = end
        i = j
    return pos, ncmd


class AOFParser:
    """Push parser for the AOF command stream (see the module docstring).

    ``offset`` is the absolute offset of the end of the last complete
    record (``base_offset`` is where the first fed byte sits: the RDB
    preamble's size for an old-style AOF tail)."""

    __slots__ = ("check_crlf", "_chunks", "_pending", "_need", "_base", "commands", "error")

    def __init__(self, *, check_crlf: bool = False, base_offset: int = 0) -> None:
        self.check_crlf = check_crlf
        self._chunks: list[bytes] = []
        self._pending = 0  # bytes in _chunks
        self._need = 1  # bytes needed before parsing can progress
        self._base = base_offset  # absolute offset of _chunks' first byte
        self.commands = 0
        self.error: AOFFormatError | None = None

    @property
    def offset(self) -> int:
        """End of the last complete record (where a truncating loader cuts)."""
        return self._base

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet part of a complete record."""
        return self._pending

    def feed(self, data: bytes) -> Iterator[Event]:
        """Add input; returns an iterator over the records it completed.  At
        a malformed record the iterator yields the records before it, then
        raises :class:`AOFFormatError` (and so does every later call)."""
        if self.error is not None:
            raise self.error
        if data:
            self._chunks.append(data)
            self._pending += len(data)
        if self._pending < self._need:
            return iter(())
        buf = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        events: list[Event] = []
        try:
            pos = self._parse(buf, events)
        except AOFFormatError as e:
            self.error = e
            self._chunks = []
            self._pending = 0
            return _then_raise(events, e)
        rest = buf[pos:]
        self._chunks = [rest] if rest else []
        self._pending = len(rest)
        return iter(events)

    def close(self) -> None:
        """End of input: raises :class:`AOFTruncatedError` if it stopped
        inside a record."""
        if self.error is not None:
            raise self.error
        if self._pending:
            buf = b"".join(self._chunks)
            raise AOFTruncatedError(_describe_incomplete(buf, self.check_crlf), self._base, self._base)

    def _parse(self, buf: bytes, events: list[Event]) -> int:
        """Parse complete records from ``buf``; returns where the first
        incomplete one starts (and sets ``_need``)."""
        n = len(buf)
        base = self._base
        pos, ncmd = _parse_canonical(buf, base, events)
        find = buf.find
        crlf = self.check_crlf
        append = events.append
        while pos < n:
            start = pos
            c = buf[pos]
            if c == 0x2A:  # '*'
                nl = find(b"\n", pos, pos + LINE_MAX)
                if nl < 0:
                    if n - pos >= LINE_MAX:
                        self._fail("the multibulk count line is too long", base, start)
                    self._need = n - pos + 1
                    break
                argc = _count(buf[pos + 1 : nl - 1] if buf[nl - 1] == 0x0D else buf[pos + 1 : nl])
                if argc < 1:
                    self._fail(f"bad multibulk count {buf[pos:nl + 1]!r}", base, start)
                p = nl + 1
                argv: list[bytes] = []
                ok = True
                for _ in range(argc):
                    if p >= n:
                        ok = False
                        self._need = p - start + 1
                        break
                    if buf[p] != 0x24:  # '$'
                        self._fail(f"expected '$', got {buf[p:p + 1]!r}", base, start)
                    nl = find(b"\n", p, p + LINE_MAX)
                    if nl < 0:
                        if n - p >= LINE_MAX:
                            self._fail("the bulk length line is too long", base, start)
                        ok = False
                        self._need = n - start + 1
                        break
                    ln = _count(buf[p + 1 : nl - 1] if buf[nl - 1] == 0x0D else buf[p + 1 : nl])
                    if ln < 0:
                        self._fail(f"bad bulk length {buf[p:nl + 1]!r}", base, start)
                    q = nl + 1 + ln
                    if q + 2 > n:
                        ok = False
                        self._need = q + 2 - start
                        break
                    if crlf and buf[q : q + 2] != b"\r\n":
                        self._fail(f"expected \\r\\n after an argument, got {buf[q:q + 2]!r}", base, start)
                    argv.append(buf[nl + 1 : q])
                    p = q + 2
                if not ok:
                    break
                append(Command(argv, base + start, base + p))
                ncmd += 1
                pos = p
            elif c == 0x23:  # '#': an annotation line
                nl = find(b"\n", pos, pos + LINE_MAX)
                if nl < 0:
                    if n - pos >= LINE_MAX:
                        self._fail("the annotation line is too long", base, start)
                    self._need = n - pos + 1
                    break
                text = buf[pos : nl - 1] if buf[nl - 1] == 0x0D else buf[pos:nl]
                append(Annotation(text, base + pos, base + nl + 1))
                pos = nl + 1
            else:
                self._fail(f"expected '*' or '#', got {buf[pos:pos + 1]!r}", base, start)
        else:
            self._need = 1
        self.commands += ncmd
        self._base = base + pos
        return pos

    def _fail(self, message: str, base: int, start: int) -> None:
        self._base = base + start
        raise AOFFormatError(message, base + start, base + start)


def _then_raise(events: list[Event], err: AOFFormatError) -> Iterator[Event]:
    yield from events
    raise err


def _describe_incomplete(buf: bytes, crlf: bool) -> str:
    """What an incomplete record lacks, for logs and tools."""
    if buf[:1] == b"#":
        return "the input ends inside an annotation line"
    nl = buf.find(b"\n")
    if nl < 0:
        return "the input ends inside the multibulk count line"
    argc = _count(buf[1:nl].rstrip(b"\r"))
    p = nl + 1
    for i in range(argc):
        if p >= len(buf):
            return f"the input ends before argument {i + 1} of {argc}"
        nl = buf.find(b"\n", p)
        if nl < 0:
            return f"the input ends inside the length line of argument {i + 1} of {argc}"
        ln = _count(buf[p + 1 : nl].rstrip(b"\r"))
        want = ln + 2
        got = len(buf) - nl - 1
        if got < want:
            return f"Expected to read {want} bytes, got {got} bytes (argument {i + 1} of {argc})"
        p = nl + 1 + want
    return "the input ends inside a record"


# -- redis-check-aof ------------------------------------------------------------------------


@dataclass(slots=True)
class CheckResult:
    """redis-check-aof's verdict on one file.

    ``ok_up_to`` is the end of the last complete command outside an open
    MULTI (what ``--fix`` truncates to), ``line`` the tool's line counter
    after the scan (it starts at the value passed in and keeps counting
    across the files of a manifest), ``error`` its message (``0x<offset>:
    ...`` like the tool prints, or None), ``format_error`` whether a line
    started with something else than ``*``/``#`` ("AOF <f> format error"),
    ``truncate_at`` the offset of the first ``#TS`` annotation newer than
    the ``to_timestamp`` asked for (None when none is).

    Beyond the tool's output: ``commands`` counts the complete commands
    before ``ok_up_to`` (MULTI and EXEC included), ``annotations`` the ``#``
    lines read, ``first_ts``/``last_ts`` the first and last ``#TS:`` value
    seen (None without any); ``error_offset`` is where the problem starts
    (the record or header that failed, the unmatched MULTI's position is
    ``ok_up_to``), ``truncated`` says the input ran out inside a record and
    ``in_multi`` that the scan ended inside a transaction.
    ``tail_annotation`` is the offset of a ``#`` line cut by the end of the
    input: redis-check-aof accepts it, the server's loader treats it as a
    truncated record (it would glue the next write onto the half line)."""

    size: int
    ok_up_to: int
    line: int
    error: str | None = None
    format_error: bool = False
    truncate_at: int | None = None
    commands: int = 0
    annotations: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    error_offset: int | None = None
    truncated: bool = False
    in_multi: bool = False
    tail_annotation: int | None = None

    @property
    def diff(self) -> int:
        return self.size - self.ok_up_to

    @property
    def valid(self) -> bool:
        return self.diff == 0


def check_aof(data: bytes, *, start: int = 0, line: int = 1, to_timestamp: int | None = None) -> CheckResult:
    """checkSingleAof's RESP part over ``data[start:]`` (``start`` is the end
    of an RDB preamble).  Strict framing: ``*N``/``$N`` headers followed by
    CRLF, every argument followed by CRLF; nested MULTI or an EXEC without
    MULTI is an error; the end of input inside MULTI is reported as
    "Reached EOF before reading EXEC for MULTI".  With ``to_timestamp`` the
    scan stops at the first ``#TS:`` annotation greater than it.

    ``data`` may be any buffer with bytes' indexing, slicing and ``find``
    (an ``mmap`` of the file keeps memory flat on big files)."""
    size = len(data)
    pos = start
    ok = start
    multi = 0
    epos = start
    err: str | None = None
    ncmd = ok_cmds = nann = 0
    first_ts: int | None = None
    last_ts: int | None = None
    truncated = False
    tail_annotation: int | None = None

    def error(msg: str) -> str:
        return "0x%16x: %s" % (epos, msg)

    def result(**kw: Any) -> CheckResult:
        return CheckResult(size, ok, line, commands=ok_cmds, annotations=nann, first_ts=first_ts,
                           last_ts=last_ts, **kw)

    while True:
        if not multi:
            ok = pos
            ok_cmds = ncmd
        if pos >= size:
            break
        c = data[pos]
        if c == 0x23:  # '#'
            epos = pos
            nl = data.find(b"\n", pos)
            text = data[pos : nl + 1 if nl >= 0 else size]
            if text.startswith(b"#TS:"):
                ts = c_atol(text[4:])
                if to_timestamp is not None and ts > to_timestamp:
                    return result(truncate_at=pos)
                if first_ts is None:
                    first_ts = ts
                last_ts = ts
            nann += 1
            if nl < 0:
                tail_annotation = pos
            pos = nl + 1 if nl >= 0 else size
            continue
        if c != 0x2A:
            return result(format_error=True, error_offset=pos)
        failed = False
        # readArgc
        epos = pos
        nl = data.find(b"\n", pos, pos + 127)
        hdr = data[pos : nl + 1] if nl >= 0 else data[pos : pos + 127]
        argc, rest = _strtol(hdr[1:])
        if rest[:2] != b"\r\n":
            err = error("Expected \\r\\n, got: %02x%02x" % _two(rest))
            truncated = nl < 0 and pos + len(hdr) >= size
            break
        pos += len(hdr)
        line += 1
        for i in range(argc):
            # readString -> readLong('$')
            epos = pos
            if pos >= size:
                failed = truncated = True
                break
            nl = data.find(b"\n", pos, pos + 127)
            hdr = data[pos : nl + 1] if nl >= 0 else data[pos : pos + 127]
            if hdr[:1] != b"$":
                err = error("Expected prefix '$', got: '%s'" % chr(hdr[0]))
                failed = True
                break
            ln, rest = _strtol(hdr[1:])
            if rest[:2] != b"\r\n":
                err = error("Expected \\r\\n, got: %02x%02x" % _two(rest))
                truncated = nl < 0 and pos + len(hdr) >= size
                failed = True
                break
            pos += len(hdr)
            line += 1
            if ln < 0:
                err = error(f"Expected to read string of {ln} bytes, which is not in the suitable range")
                failed = True
                break
            epos = pos
            want = ln + 2
            got = min(want, size - pos)
            if got != want:
                err = error(f"Expected to read {want} bytes, got {got} bytes")
                pos += got
                failed = truncated = True
                break
            arg = data[pos : pos + ln]
            if data[pos + ln : pos + want] != b"\r\n":
                err = error("Expected \\r\\n, got: %02x%02x" % _two(data[pos + ln : pos + want]))
                failed = True
                break
            pos += want
            line += 1
            if i == 0:
                low = arg.lower()
                if low == b"multi":
                    multi += 1
                    if multi > 1:
                        err = error("Unexpected MULTI")
                        failed = True
                        break
                elif low == b"exec":
                    multi -= 1
                    if multi:
                        err = error("Unexpected EXEC")
                        failed = True
                        break
        if failed:
            break
        ncmd += 1
    at_eof = pos >= size
    eoff: int | None = None
    if at_eof and multi and err is None:
        err = error("Reached EOF before reading EXEC for MULTI")
        eoff = epos if truncated else ok  # the short read, or the MULTI never closed
    elif err is not None or truncated:
        eoff = epos
    return result(error=err, error_offset=eoff, truncated=truncated, in_multi=multi > 0,
                  tail_annotation=tail_annotation)


def _strtol(s: bytes) -> tuple[int, bytes]:
    """strtol(s, &end, 10): the value and what follows the digits."""
    i = 0
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    j = i
    if j < n and s[j] in b"+-":
        j += 1
    k = j
    while k < n and 48 <= s[k] <= 57:
        k += 1
    if k == j:
        return 0, s
    return int(s[i:k]), s[k:]


def _two(b: bytes) -> tuple[int, int]:
    """The two bytes printed by consumeNewline (0 past the end)."""
    b = b + b"\0\0"
    return b[0], b[1]
