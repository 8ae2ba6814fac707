"""Request framing: RESP multibulk and inline commands, with Redis's limits.

The fast path hands whole chunks to ``hiredis.Reader`` (C).  hiredis neither
parses inline commands, nor reports how many bytes it consumed, nor enforces
Redis's limits (``proto-max-bulk-len``, unauthenticated sizes, element type
``$``), so a chunk that ends mid-request, contains inline text or fails to
parse is handed to the pure-Python incremental parser below, which mirrors
``processMultibulkBuffer``/``processInlineBuffer`` in networking.c and
produces Redis's exact ``Protocol error: ...`` texts.  Once the Python parser
is back on a request boundary with nothing buffered, the next chunk takes the
fast path again.  Large bulk payloads are collected as a list of chunks and
joined once, so a 500 MB value costs one copy, not a quadratic series.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import hiredis

PROTO_INLINE_MAX_SIZE = 64 * 1024
INT_MAX = 2**31 - 1


class ProtocolError(Exception):
    """A framing error: the reply text (without ``-ERR``) and the log reason."""

    def __init__(self, reply: str, reason: str) -> None:
        super().__init__(reply)
        self.reply = reply
        self.reason = reason


class QueryBufferLimit(Exception):
    """The client's pending query exceeded ``client-query-buffer-limit``."""


def string2ll(s: bytes) -> int | None:
    """Redis's strict integer parser: no spaces, no '+', no leading zeros."""
    n = len(s)
    if n == 0 or n > 20:
        return None
    if n == 1:
        c = s[0]
        return c - 48 if 48 <= c <= 57 else None
    c0 = s[0]
    if c0 == 45:  # '-'
        if n == 1 or s[1] == 48 or not s[1:].isdigit():
            return None
    elif c0 == 48 or not s.isdigit():
        return None
    v = int(s)
    if v > 9223372036854775807 or v < -9223372036854775808:
        return None
    return v


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list[bytes] | None:
    """``sdssplitargs``: split an inline command line, honouring quotes.

    Returns None on unbalanced quotes (or a closing quote not followed by a
    space), as Redis does."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \n\r\t\v\f\x00":
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        inq = insq = False
        while True:
            if inq:
                if i >= n:
                    return None
                c = line[i]
                if (
                    c == 92
                    and i + 3 < n
                    and line[i + 1] == 120
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f\x00":
                        return None
                    i += 1
                    break
                else:
                    cur.append(c)
            elif insq:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in b" \n\r\t\v\f\x00":
                        return None
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \n\r\t\x00":
                    break
                if c == 34:
                    inq = True
                elif c == 39:
                    insq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


# Decimal digits of every length below 64 KiB, so a request's size is
# computed by C-level map/sum instead of a Python loop over its arguments.
_DIGITS = bytes(len(str(i)) for i in range(65536))
_digits_of = _DIGITS.__getitem__


# RESP types hiredis returns like bulk strings or arrays but which Redis
# never takes in a request: simple (+) and verbatim (=) strings, big
# numbers ((), sets (~), pushes (>) and attributes (|).  A line can only start with one of them
# right after a CRLF; the byte scans are cheap, the CRLF ones run only when
# the byte occurs at all (XRANGE's "+", XADD's "~" and XREADGROUP's ">" are
# common arguments, so most hits are not type bytes).
def _attribute_lines(data: bytes) -> bool:
    return b"|" in data and b"\r\n|" in data


def _lookalike_lines(data: bytes) -> bool:
    return (
        (b"+" in data and b"\r\n+" in data)
        or (b"=" in data and b"\r\n=" in data)
        or (b"~" in data and b"\r\n~" in data)
        or (b">" in data and b"\r\n>" in data)
        or (b"(" in data and b"\r\n(" in data)
    )


def _canonical_run(data: bytes, reqs: list[list[bytes]]) -> bool:
    """``data`` is exactly ``reqs`` encoded as multibulk requests of bulk
    strings, back to back: then Redis's parser reads the same requests.
    (A simple or verbatim string, a set or a push looks like a bulk string
    or an array once hiredis has parsed it; re-encoding tells.)"""
    pos = 0
    for r in reqs:
        enc = b"*%d\r\n" % len(r) + b"".join([b"$%d\r\n%s\r\n" % (len(a), a) for a in r])
        if not data.startswith(enc, pos):
            return False
        pos += len(enc)
    return pos == len(data)


# hiredis's command packer: the canonical multibulk form of a request.
_pack = hiredis.pack_command
# Above this a chunk is checked without re-encoding it (no copy of big values).
_PACK_CHECK_MAX = 4096


def _msg_size(args: list[bytes]) -> int:
    """Bytes a well-formed multibulk request with these args occupies."""
    n = len(args)
    lens = list(map(len, args))
    try:
        digits = sum(map(_digits_of, lens))
    except IndexError:
        digits = sum(len(str(la)) for la in lens)
    return 3 + (_DIGITS[n] if n < 65536 else len(str(n))) + 5 * n + digits + sum(lens)


class RequestParser:
    """Turns a byte stream into argument vectors for one client."""

    __slots__ = (
        "reader",
        "slow",
        "buf",
        "chunks",
        "chunks_len",
        "bulk_need",
        "multibulk_left",
        "args",
        "max_bulk",
        "querybuf_limit",
        "is_primary",
        "inline_seen",
    )

    def __init__(self, max_bulk: int = 512 * 1024 * 1024, querybuf_limit: int = 1024**3) -> None:
        self.reader = hiredis.Reader()
        self.slow = False
        self.buf = b""  # unparsed header bytes (slow path)
        self.chunks: list[bytes] = []  # pieces of a bulk payload in progress
        self.chunks_len = 0
        self.bulk_need = -1  # bytes (incl. CRLF) the current bulk still needs
        self.multibulk_left = 0
        self.args: list[bytes] = []
        self.max_bulk = max_bulk
        self.querybuf_limit = querybuf_limit
        self.is_primary = False
        self.inline_seen = False

    def pending(self) -> int:
        """Bytes buffered and not yet turned into a request (qbuf in CLIENT LIST)."""
        return len(self.buf) + self.chunks_len

    def has_buffered(self) -> bool:
        """Unparsed bytes held back (after one request of an unauthenticated client)."""
        return self.slow and bool(self.buf) and self.bulk_need < 0

    def feed(self, data: bytes, auth_required: bool, out: list[list[bytes]]) -> None:
        """Parse ``data``, appending complete requests to ``out``.

        Raises ProtocolError after appending every request that preceded the
        bad bytes, so the caller runs those first, as Redis does."""
        # hiredis checks lengths exactly as Redis does (string2ll: no sign,
        # no leading zero), but it parses all of RESP3: every argument must
        # be a bulk string, a chunk with attribute lines goes to the exact
        # path, and one with other RESP3 look-alikes (see _lookalike_lines)
        # is re-framed to prove it holds none.
        if not self.slow and data[:1] == b"*" and not auth_required:
            reader = self.reader
            reader.feed(data)
            start = len(out)
            try:
                first: Any = False
                if len(data) <= _PACK_CHECK_MAX:
                    req = first = reader.gets()
                    if req is not False and not reader.has_data():
                        # One short request (the unpipelined case): it is the
                        # whole chunk exactly when hiredis's packer (C code)
                        # gives the chunk back from it -- no RESP3 look-alike,
                        # attribute or non-bulk element survives that.
                        if _pack(tuple(req)) == data:
                            out.append(req)
                            return
                        raise ValueError
                if _attribute_lines(data):
                    raise ValueError
                reqs = iter(reader.gets, False)
                for req in reqs if first is False else chain((first,), reqs):
                    if type(req) is not list:
                        raise ValueError  # e.g. "*-1": the Python path skips it exactly
                    for a in req:
                        if type(a) is not bytes:
                            raise ValueError
                    out.append(req)  # "*0" yields [], which the caller skips
            except (hiredis.ProtocolError, ValueError, TypeError, hiredis.ReplyError):
                self._resume_exact(data, start, auth_required, out)
                return
            # hiredis does not say how far it read (has_data() is False right
            # after a header line of a split request), so the chunk is on a
            # request boundary only if it ends exactly with the last request:
            # its last argument at the very end and its "*<argc>" header where
            # its size says it starts.  Otherwise a request is split across
            # reads and the Python path takes over from where the complete
            # ones ended.
            got = len(out) - start
            if got == 1 and data[-1] == 10:
                # One request (the unpipelined case): it is the whole chunk
                # exactly when its canonical size is the chunk's.
                if _msg_size(out[-1]) == len(data) and (
                    not _lookalike_lines(data) or _canonical_run(data, out[start:])
                ):
                    return
            elif got and data[-1] == 10 and not reader.has_data():
                last = out[-1]
                if last:
                    arg = last[-1]
                    if data.endswith(b"$%d\r\n%s\r\n" % (len(arg), arg)) and data.startswith(
                        b"*%d\r\n" % len(last), len(data) - _msg_size(last)
                    ):
                        if not _lookalike_lines(data) or _canonical_run(data, out[start:]):
                            return
            self._resume_exact(data, start, auth_required, out)
            return
        if not self.slow:
            self._enter_slow(data, auth_required, out)
        else:
            self._feed_slow(data, auth_required, out)

    def _resume_exact(self, data: bytes, start: int, auth_required: bool, out: list[list[bytes]]) -> None:
        """Hand the rest of ``data`` to the exact path: after the requests
        hiredis completed, whose canonical sizes say where they end -- unless
        RESP3 look-alikes may have made one shorter, then from the start of
        the chunk (nothing of it has run yet)."""
        self.reader = hiredis.Reader()
        if _lookalike_lines(data):
            del out[start:]
            consumed = 0
        else:
            consumed = sum(_msg_size(r) for r in out[start:])
        self._enter_slow(data[consumed:] if consumed else data, auth_required, out)

    def _enter_slow(self, data: bytes, auth_required: bool, out: list[list[bytes]]) -> None:
        self.slow = True
        self.buf = b""
        self._feed_slow(data, auth_required, out)

    def _feed_slow(self, data: bytes, auth_required: bool, out: list[list[bytes]]) -> None:
        if self.bulk_need >= 0:
            # Collecting a big payload: don't rescan it.
            if len(data) < self.bulk_need - self.chunks_len:
                self.chunks.append(data)
                self.chunks_len += len(data)
                if self.chunks_len > self.querybuf_limit:
                    raise QueryBufferLimit
                return
            take = self.bulk_need - self.chunks_len
            self.chunks.append(data[:take])
            payload = b"".join(self.chunks)
            self.chunks = []
            self.chunks_len = 0
            self.bulk_need = -1
            self.args.append(payload[:-2])
            self.multibulk_left -= 1
            if self.multibulk_left == 0:
                out.append(self.args)
                self.args = []
            data = data[take:]
            buf = data
        else:
            buf = self.buf + data if self.buf else data
        pos = 0
        n = len(buf)
        try:
            while pos < n:
                if self.multibulk_left == 0:
                    if buf[pos] != 42:  # inline command
                        nl = buf.find(b"\n", pos)
                        if nl < 0:
                            if n - pos > PROTO_INLINE_MAX_SIZE:
                                raise ProtocolError(
                                    "Protocol error: too big inline request", "too big inline request"
                                )
                            break
                        line = buf[pos:nl]
                        if line.endswith(b"\r"):
                            line = line[:-1]
                        pos = nl + 1
                        argv = split_args(line)
                        if argv is None:
                            raise ProtocolError(
                                "Protocol error: unbalanced quotes in request",
                                "unbalanced quotes in inline request",
                            )
                        if argv:
                            self.inline_seen = True
                            out.append(argv)
                            if auth_required:
                                break  # limits may change once this runs (AUTH)
                        continue
                    nl = buf.find(b"\r", pos)
                    if nl < 0:
                        if n - pos > PROTO_INLINE_MAX_SIZE:
                            raise ProtocolError(
                                "Protocol error: too big mbulk count string", "too big mbulk count string"
                            )
                        break
                    if nl + 1 >= n:
                        break  # the \n has not arrived yet
                    ll = string2ll(buf[pos + 1 : nl])
                    if ll is None or ll > INT_MAX:
                        raise ProtocolError("Protocol error: invalid multibulk length", "invalid mbulk count")
                    if ll > 10 and auth_required:
                        raise ProtocolError(
                            "Protocol error: unauthenticated multibulk length",
                            "unauth mbulk count",
                        )
                    pos = nl + 2
                    if ll <= 0:
                        continue
                    self.multibulk_left = ll
                    self.args = []
                # Inside a multibulk: read "$len\r\n" then the payload.
                nl = buf.find(b"\r", pos)
                if nl < 0:
                    if n - pos > PROTO_INLINE_MAX_SIZE:
                        raise ProtocolError(
                            "Protocol error: too big bulk count string", "too big bulk count string"
                        )
                    break
                if nl + 1 >= n:
                    break
                if buf[pos] != 36:
                    ch = chr(buf[pos])
                    raise ProtocolError(f"Protocol error: expected '$', got '{ch}'", "expected $ but got something else")
                ll = string2ll(buf[pos + 1 : nl])
                if ll is None or ll < 0 or (not self.is_primary and ll > self.max_bulk):
                    raise ProtocolError("Protocol error: invalid bulk length", "invalid bulk length")
                if ll > 16384 and auth_required:
                    raise ProtocolError("Protocol error: unauthenticated bulk length", "unauth bulk length")
                start = nl + 2
                end = start + ll
                if end + 2 > n:
                    # Incomplete payload: keep what we have and wait.
                    self.bulk_need = ll + 2
                    piece = buf[start:]
                    self.chunks = [piece]
                    self.chunks_len = len(piece)
                    self.buf = b""
                    if self.chunks_len > self.querybuf_limit:
                        raise QueryBufferLimit
                    return
                self.args.append(buf[start:end])
                pos = end + 2
                self.multibulk_left -= 1
                if self.multibulk_left == 0:
                    out.append(self.args)
                    self.args = []
                    if auth_required:
                        break  # limits may change once this runs (AUTH)
        except ProtocolError:
            self.buf = b""
            raise
        rest = buf[pos:]
        self.buf = rest
        if len(rest) > self.querybuf_limit:
            raise QueryBufferLimit
        if not rest and self.multibulk_left == 0:
            self.slow = False  # back on a boundary: next chunk may take the fast path


def parse_all(data: bytes) -> list[Any]:
    """Parse a complete byte string of requests (tests, AOF tools)."""
    p = RequestParser()
    out: list[list[bytes]] = []
    p.feed(data, False, out)
    return out
