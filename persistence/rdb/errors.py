"""Errors raised by the RDB codec.

Every failure of the reader is an :class:`RDBError` carrying the file offset
where the bad or missing data is and, when the failure happened inside a key
record, the key being read, so a tool can say *where* a dump is damaged
("Internal error in RDB reading offset N ... Reading key 'k'" in Redis's
``redis-check-rdb``).  Nothing else escapes the reader: index errors, struct
errors, bad LZF data and the like inside a record are turned into
:class:`RDBCorruptError`.
"""

from __future__ import annotations


class RDBError(Exception):
    """Base class: ``offset`` (absolute, in the input) and ``key`` (or None)."""

    def __init__(self, message: str, *, offset: int | None = None, key: bytes | None = None) -> None:
        self.message = message
        self.offset = offset
        self.key = key
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.offset is not None:
            parts.append(f"at offset {self.offset}")
        if self.key is not None:
            parts.append(f"while reading key {self.key!r}")
        return " ".join(parts)


class RDBCorruptError(RDBError):
    """The bytes are not a valid RDB structure (bad opcode, bad length,
    inconsistent listpack/ziplist/intset, bad LZF data, NaN score ...)."""


class RDBTruncatedError(RDBCorruptError):
    """The input ended in the middle of a record (or before EOF)."""


class RDBSignatureError(RDBCorruptError):
    """The file does not start with ``REDIS`` and four digits (Redis: "Wrong
    signature trying to load DB from file")."""


class RDBVersionError(RDBError):
    """The RDB version is outside what the reader was told to accept (Redis:
    "Can't handle RDB format version N")."""


class RDBChecksumError(RDBCorruptError):
    """The CRC-64 trailer does not match the data (Redis: "Wrong RDB checksum")."""


class RDBModuleError(RDBError):
    """A module value or module aux record whose module type is not
    registered (Redis: "no matching module type 'NAME'"), or that the
    registered type failed to load."""

    def __init__(
        self, message: str, *, module_id: int, module_name: str, offset: int | None = None,
        key: bytes | None = None,
    ) -> None:
        self.module_id = module_id
        self.module_name = module_name
        super().__init__(message, offset=offset, key=key)


class RDBWriteError(ValueError):
    """The writer was asked for something the chosen RDB version (or the
    format) cannot express: hash-field TTLs before version 12, functions in a
    version-9 file, a NaN score, an unregistered module value ..."""
