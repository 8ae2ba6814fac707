"""Errors raised by the AOF codec (manifest, command stream).

Each error says *where* the input went wrong, the way Redis's loader and
``redis-check-aof`` do: a manifest error names the line (number and trimmed
text), a command-stream error the byte offset in the file.
"""

from __future__ import annotations


class AOFError(Exception):
    """Base class of every AOF codec error."""


class ManifestError(AOFError):
    """The manifest breaks Redis 7.0's grammar (aofLoadManifestFromFile).

    ``message`` is Redis's text ("Invalid AOF manifest file format", "Found a
    non-monotonic sequence number", ...); ``line_number`` counts every line
    read (comments included) and ``line`` is the offending line after
    trimming, or None when Redis does not show one (an empty manifest, a too
    long line)."""

    def __init__(self, message: str, line_number: int = 0, line: str | None = None) -> None:
        self.message = message
        self.line_number = line_number
        self.line = line
        super().__init__(message)

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.message} (line {self.line_number}: {self.line!r})"

    def log_lines(self) -> list[str]:
        """What redis-server 7.0 logs before exiting, one entry per log call."""
        out = ["\n*** FATAL AOF MANIFEST FILE ERROR ***\n"]
        if self.line is not None:
            out.append(f"Reading the manifest file, at line {self.line_number}\n")
            out.append(f">>> '{self.line}'\n")
        out.append(f"{self.message}\n")
        return out


class AOFFormatError(AOFError):
    """Bytes that can never become a valid record (a line that is neither a
    ``*`` multibulk header nor a ``#`` annotation, a bad ``$`` header, a bad
    count): Redis refuses these whatever ``aof-load-truncated`` says.

    ``offset`` is where the bad record starts; ``valid_up_to`` the end of the
    last complete command before it."""

    def __init__(self, message: str, offset: int, valid_up_to: int) -> None:
        self.message = message
        self.offset = offset
        self.valid_up_to = valid_up_to
        super().__init__(f"{message} at offset {offset}")


class AOFTruncatedError(AOFError):
    """The input ended inside a record (a crash during a write).

    ``offset`` is where the incomplete record starts (== ``valid_up_to``, the
    end of the last complete record, which is where Redis truncates);
    ``message`` describes what was missing, in redis-check-aof's words where
    it has some ("Expected to read 7 bytes, got 5 bytes")."""

    def __init__(self, message: str, offset: int, valid_up_to: int) -> None:
        self.message = message
        self.offset = offset
        self.valid_up_to = valid_up_to
        super().__init__(f"{message} (record at offset {offset})")
