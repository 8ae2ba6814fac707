"""Byte-level helpers for replication tests that play one side by hand."""

from __future__ import annotations


def parse_command(buf: bytearray) -> list[bytes] | None:
    """Take one RESP array of bulk strings off the front of ``buf`` (bare
    newlines before it are dropped); None while incomplete."""
    while buf[:1] in (b"\n", b"\r") and buf:
        del buf[:1]
    if not buf:
        return None
    if buf[:1] != b"*":
        end = buf.find(b"\n")
        if end < 0:
            return None
        line = bytes(buf[:end]).strip()
        del buf[:end + 1]
        return line.split()
    end = buf.find(b"\r\n")
    if end < 0:
        return None
    n = int(buf[1:end])
    pos = end + 2
    out: list[bytes] = []
    for _ in range(n):
        e = buf.find(b"\r\n", pos)
        if e < 0:
            return None
        size = int(buf[pos + 1:e])
        start = e + 2
        if len(buf) < start + size + 2:
            return None
        out.append(bytes(buf[start:start + size]))
        pos = start + size + 2
    del buf[:pos]
    return out
