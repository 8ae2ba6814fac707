"""The replication backlog (spec/replication.md §6).

A history of the last ``size`` bytes of the replication stream, addressed by
stream offset: the first byte of a stream has offset 1.  As in Redis 7 the
history is kept in blocks (16 KiB, PROTO_REPLY_CHUNK_BYTES) and trimmed a
whole block at a time, so the bytes held may exceed ``size`` by less than
one block; otherwise it behaves as a ring buffer.

Pure data structure: no I/O, no server.
"""

from __future__ import annotations

from collections import deque

BLOCK = 16 * 1024
MIN_SIZE = 16 * 1024  # CONFIG_REPL_BACKLOG_MIN_SIZE


class Backlog:
    """``first_byte_offset`` .. ``end_offset`` (inclusive) are held;
    ``histlen`` bytes in all.  A new backlog starts empty just after the
    stream's current offset."""

    __slots__ = ("size", "first_byte_offset", "histlen", "_blocks")

    def __init__(self, size: int, offset: int) -> None:
        """``offset``: the stream offset reached so far (master_repl_offset);
        the next byte appended has offset ``offset + 1``."""
        self.size = max(size, MIN_SIZE)
        self.first_byte_offset = offset + 1
        self.histlen = 0
        self._blocks: deque[bytearray] = deque()

    @property
    def end_offset(self) -> int:
        """The offset of the last byte held (== master_repl_offset)."""
        return self.first_byte_offset + self.histlen - 1

    def append(self, data: bytes) -> None:
        """feedReplicationBuffer: add stream bytes, then trim old blocks."""
        if not data:
            return
        blocks = self._blocks
        n = len(data)
        if blocks:
            last = blocks[-1]
            room = BLOCK - len(last)
            if room > 0:
                if n <= room:
                    last += data
                    self.histlen += n
                    self._trim()
                    return
                last += data[:room]
                data = data[room:]
        mv = memoryview(data)
        for i in range(0, len(mv), BLOCK):
            blocks.append(bytearray(mv[i:i + BLOCK]))
        self.histlen += n
        self._trim()

    def _trim(self) -> None:
        """incrementalTrimReplicationBacklog: drop whole leading blocks while
        what remains still covers ``size`` bytes."""
        blocks = self._blocks
        while len(blocks) > 1 and self.histlen - len(blocks[0]) >= self.size:
            first = blocks.popleft()
            self.histlen -= len(first)
            self.first_byte_offset += len(first)

    def resize(self, size: int) -> None:
        """resizeReplicationBacklog: a new configured size (trim if smaller)."""
        self.size = max(size, MIN_SIZE)
        self._trim()

    def can_serve(self, offset: int) -> bool:
        """addReplyReplicationBacklog's precondition: ``offset`` is the next
        byte the requester needs; up to end_offset + 1 (nothing to send)."""
        return self.first_byte_offset <= offset <= self.first_byte_offset + self.histlen

    def read_from(self, offset: int) -> bytes:
        """The held bytes from ``offset`` to the end (``can_serve`` first)."""
        if not self.can_serve(offset):
            raise ValueError(f"offset {offset} is outside the backlog")
        skip = offset - self.first_byte_offset
        out: list[bytes] = []
        for block in self._blocks:
            if skip >= len(block):
                skip -= len(block)
                continue
            out.append(bytes(block[skip:]) if skip else bytes(block))
            skip = 0
        return b"".join(out)
