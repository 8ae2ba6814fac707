"""A dump's CRC-64 computed beside its parse.

A forked child sums the file with ``pread`` while the parent parses it, so
on two cores the trailer check costs the parse nothing.  The server's
start-up load and ``rdb-inspect`` both use it.  Whatever goes wrong on the
child's side (fork, pipe, a short read), :meth:`ForkedCRC.crc` sums the
file in the caller instead.
"""

from __future__ import annotations

import os
import signal
import struct
from collections.abc import Callable

from .encoding import crc64

_QQ = struct.Struct("<QQ")


def file_crc(fd: int, upto: int) -> tuple[int, int]:
    """(CRC-64 of a file's first ``upto`` bytes, bytes read), with pread:
    the file's offset stays where it is."""
    crc = 0
    done = 0
    while done < upto:
        data = os.pread(fd, min(upto - done, 1 << 22), done)
        if not data:
            break
        crc = crc64(data, crc)
        done += len(data)
    return crc, done


class ForkedCRC:
    """A child summing the first ``size - 8`` bytes of ``file_fd`` (a dump
    ends with its 8-byte checksum); ``crc(upto)`` collects the result."""

    __slots__ = ("pid", "fd", "file_fd")

    def __init__(self, pid: int, fd: int, file_fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self.file_fd = file_fd

    @classmethod
    def start(cls, file_fd: int, size: int, child_init: Callable[[], None] | None = None) -> ForkedCRC | None:
        """Fork the child (``child_init`` runs first in it); None when the
        pipe or the fork fails."""
        try:
            r, w = os.pipe()
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            return None
        if pid == 0:  # pragma: no cover - child process
            code = 1
            try:
                if child_init is not None:
                    child_init()
                os.close(r)
                os.write(w, _QQ.pack(*file_crc(file_fd, size - 8)))
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        return cls(pid, r, file_fd)

    def crc(self, upto: int) -> int:
        """The CRC-64 of the file's first ``upto`` bytes: the child's when it
        summed exactly those, else computed here."""
        data = b""
        try:
            while len(data) < 16:
                part = os.read(self.fd, 16 - len(data))
                if not part:
                    break
                data += part
        except OSError:
            data = b""
        self.close()
        if len(data) == 16:
            crc, done = _QQ.unpack(data)
            if done == upto:
                return int(crc)
        return file_crc(self.file_fd, upto)[0]

    def close(self) -> None:
        """Stop the child if it still runs, reap it, close the pipe."""
        if self.pid > 0:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = -1
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
