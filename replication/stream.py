"""Framing of the primary's command stream on a replica, with exact byte counts.

After the RDB (or right after ``+CONTINUE``) a primary sends its propagated
effects as RESP arrays of bulk strings (replication.md §5: commands, ``SELECT``,
lowercase ``ping``, ``REPLCONF GETACK *``).  A replica must know exactly how
many stream bytes each command occupied: its processed offset advances by that
amount after the command ran (§1), ``REPLCONF ACK`` reports it (§7), and the
same bytes go to its backlog and sub-replicas (§10).

:class:`StreamParser` mirrors ``processMultibulkBuffer``/``processInlineBuffer``
of networking.c for a client flagged as the primary:

* ``*<n>\\r\\n`` followed by ``n`` elements ``$<len>\\r\\n<payload>\\r\\n``; the
  line ends are located by searching for ``\\r`` and the two bytes after a
  count or a payload are skipped without being checked, as Redis does.
  ``*0`` / ``*-1`` are consumed as commands with no arguments.  There is no
  ``proto-max-bulk-len`` limit for the primary.
* An empty inline line (``\\n`` or ``\\r\\n``) is a keepalive: it is returned
  as ``([], size)`` so the caller counts its bytes and runs nothing.  Any other
  inline data means the stream is out of sync (§5: "inline (non-RESP) data
  from the primary is a protocol error"), and Redis drops the link.
* A line of more than 64 KiB without its terminator is an error, as in Redis.

Errors raise :class:`StreamProtocolError` with Redis's texts; the parser then
stays failed (the caller drops the link and resynchronises).

The parser is on the replica's hot path.  Whole chunks are kept as ``bytes``
and walked with an offset; arguments are single slices.  Fed chunks wait in a
list and are joined with the unparsed tail only when parsing gets stuck at the
end of the current buffer and the bytes now available can complete the
element it is waiting for, so a large bulk arriving in many pieces is joined
once, and a command with many arguments is never re-parsed from its start.
"""

from __future__ import annotations

# The canonical RESP form of one command (one implementation, persistence's).
from ..persistence.aof.writer import encode_command as encode_command

PROTO_INLINE_MAX_SIZE = 64 * 1024
_INT_MAX = 2**31 - 1

# Canonical decimal spellings of small lengths: one dict lookup both parses and
# validates (leading zeros, signs and spaces are simply absent).
_SMALL_INTS: dict[bytes, int] = {b"%d" % i: i for i in range(4096)}


class StreamProtocolError(Exception):
    """The primary's stream is not valid RESP; the link must be dropped."""


def _string2ll(s: bytes) -> int | None:
    """Redis's strict ``string2ll``: optional '-', digits, no leading zeros."""
    n = len(s)
    if n == 0 or n > 20:
        return None
    if n == 1:
        c = s[0]
        return c - 48 if 48 <= c <= 57 else None
    if s[0] == 45:  # '-'
        if s[1] == 48 or not s[1:].isdigit():
            return None
    elif s[0] == 48 or not s.isdigit():
        return None
    v = int(s)
    if v > 9223372036854775807 or v < -9223372036854775808:
        return None
    return v


class StreamParser:
    """Incremental splitter of a primary's stream into (argv, byte count) pairs.

    Feed bytes as they arrive with :meth:`feed`; call :meth:`next_command`
    until it returns None.  The byte counts of all returned commands add up to
    exactly the bytes fed, once the stream is on a command boundary.
    """

    __slots__ = ("_buf", "_pos", "_pending", "_pending_len", "_need", "_left", "_args", "_start", "_carry", "_error")

    def __init__(self) -> None:
        self._buf = b""  # current chunk; bytes before _pos are consumed
        self._pos = 0
        self._pending: list[bytes] = []  # fed, not yet joined into _buf
        self._pending_len = 0
        self._need = 1  # bytes needed from _pos before parsing can progress
        self._left = 0  # elements still expected by the open multibulk (0: between commands)
        self._args: list[bytes] = []  # elements of the open multibulk
        self._start = 0  # where the open multibulk began in _buf
        self._carry = 0  # bytes of the open multibulk in chunks already dropped
        self._error: StreamProtocolError | None = None

    def feed(self, data: bytes) -> None:
        """Queue bytes received from the primary (copied if not ``bytes``)."""
        if data:
            self._pending.append(bytes(data))
            self._pending_len += len(data)

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned as part of a complete command."""
        b = len(self._buf) - self._pos + self._pending_len
        if self._left:
            b += self._pos - self._start + self._carry
        return b

    def next_command(self) -> tuple[list[bytes], int] | None:
        """The next complete command and the stream bytes it occupied, or None."""
        need = self._need
        if need:
            if len(self._buf) - self._pos + self._pending_len < need:
                if self._error is not None:
                    raise self._error
                return None
            self._need = 0
            if self._pending:
                self._merge()
        while True:
            r = self._parse()
            if r.__class__ is tuple:
                return r
            assert isinstance(r, int)
            if self._pending and len(self._buf) - self._pos + self._pending_len >= r:
                self._merge()
                continue
            self._need = r
            return None

    def _merge(self) -> None:
        """Join the unparsed tail of the buffer with the queued chunks."""
        buf, p = self._buf, self._pos
        pending = self._pending
        if p < len(buf):
            pending.insert(0, memoryview(buf)[p:])  # type: ignore[arg-type]
        if self._left:
            self._carry += p - self._start
            self._start = 0
        self._buf = pending[0] if len(pending) == 1 and p >= len(buf) else b"".join(pending)
        self._pos = 0
        self._pending = []
        self._pending_len = 0

    def _fail(self, message: str) -> StreamProtocolError:
        """Record a fatal framing error (the parser stays failed)."""
        self._error = StreamProtocolError(message)
        self._need = 1 << 62  # never parse again
        return self._error

    def _parse(self) -> tuple[list[bytes], int] | int:
        """Parse from the current position: a command, or the bytes needed to go on."""
        buf = self._buf
        p = self._pos
        n = len(buf)
        left = self._left
        resumed = left != 0
        if resumed:
            args = self._args
            start = self._start
            carry = self._carry
        else:
            if p >= n:
                return 1
            start = p
            if buf[p] != 42:  # not '*': an inline line
                nl = buf.find(b"\n", p)
                if nl < 0:
                    if n - p > PROTO_INLINE_MAX_SIZE:
                        raise self._fail("Protocol error: too big inline request")
                    return n - p + 1
                end = nl - 1 if nl > p and buf[nl - 1] == 13 else nl
                if end != p:
                    raise self._fail("Master using the inline protocol. Desync?")
                self._pos = nl + 1
                return [], nl + 1 - p
            nl = buf.find(b"\r", p + 1)
            if nl < 0 or nl + 1 >= n:
                if nl < 0 and n - p > PROTO_INLINE_MAX_SIZE:
                    raise self._fail("Protocol error: too big mbulk count string")
                return (n - p + 1) if nl < 0 else (nl + 2 - p)
            ll = _SMALL_INTS.get(buf[p + 1 : nl])
            if ll is None:
                ll = _string2ll(buf[p + 1 : nl])
                if ll is None or ll > _INT_MAX:
                    raise self._fail("Protocol error: invalid multibulk length")
            p = nl + 2
            if ll <= 0:
                self._pos = p
                return [], p - start
            left = ll
            args = []
            carry = 0
        find = buf.find
        small = _SMALL_INTS.get
        while left:
            nl = find(b"\r", p)
            if nl < 0 or nl + 1 >= n:
                if nl < 0 and n - p > PROTO_INLINE_MAX_SIZE:
                    raise self._fail("Protocol error: too big bulk count string")
                self._save(p, left, args, start, carry)
                return (n - p + 1) if nl < 0 else (nl + 2 - p)
            if buf[p] != 36:  # '$'
                raise self._fail(f"Protocol error: expected '$', got '{chr(buf[p])}'")
            ll = small(buf[p + 1 : nl])
            if ll is None:
                ll = _string2ll(buf[p + 1 : nl])
                if ll is None or ll < 0:
                    raise self._fail("Protocol error: invalid bulk length")
            end = nl + 2 + ll
            if end + 2 > n:
                self._save(p, left, args, start, carry)
                return end + 2 - p
            args.append(buf[nl + 2 : end])
            p = end + 2
            left -= 1
        self._pos = p
        if resumed:
            self._left = 0
            self._args = []
        return args, p - start + carry

    def _save(self, p: int, left: int, args: list[bytes], start: int, carry: int) -> None:
        """Remember an open multibulk whose next element has not fully arrived."""
        self._pos = p
        self._left = left
        self._args = args
        self._start = start
        self._carry = carry
