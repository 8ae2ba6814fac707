"""What the three AOF tools share: exit codes, error reporting without
tracebacks, the progress line, command formatting and JSON output.

The file formats themselves are :mod:`ambry.persistence.aof`'s business;
nothing here parses a file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Final, NoReturn

from ambry.persistence.aof import AOFError, AOFSourceError
from ambry.persistence.aof.manifest import quote_arg
from ambry.persistence.rdb import RDBError

EXIT_OK: Final = 0
EXIT_PROBLEM: Final = 1
EXIT_USAGE: Final = 2
EXIT_IO: Final = 3
EXIT_INTERRUPTED: Final = 130

EXIT_CODES_HELP: Final = """\
exit status:
  0    success (aof-check: the AOF is valid, or was repaired)
  1    a problem was found and not (or not fully) dealt with: a damaged
       AOF, a repair declined or impossible, a rewrite whose result did not
       verify, commands refused by the target, records lost while following
  2    usage error: bad options, or the path names no AOF
  3    I/O or environment error: a file that cannot be read or written, an
       unreachable server, an engine that would not start
  130  interrupted
"""


class ToolError(Exception):
    """A failure to report as ``<prog>: <message>`` with an exit code."""

    def __init__(self, message: str, code: int = EXIT_PROBLEM) -> None:
        self.message = message
        self.code = code
        super().__init__(message)


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' own line breaks; wider option column."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


class ArgParser(argparse.ArgumentParser):
    """argparse with exit code 2 and a one-line error (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def warn(prog: str, message: str) -> None:
    sys.stderr.write(f"{prog}: {message}\n")
    sys.stderr.flush()


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a tool's body; every failure becomes a message and an exit code,
    never a traceback."""
    try:
        return body()
    except ToolError as e:
        warn(prog, e.message)
        return e.code
    except AOFSourceError as e:
        warn(prog, str(e))
        return EXIT_USAGE
    except (AOFError, RDBError) as e:
        warn(prog, str(e))
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        warn(prog, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (| head): nothing more to say.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the interpreter's final flush
        except OSError:
            pass
        return EXIT_OK
    except OSError as e:
        where = f" {e.filename}" if e.filename else ""
        warn(prog, f"I/O error{where}: {e.strerror or e}")
        return EXIT_IO
    except Exception as e:  # a defect: still a message, never a traceback (AMBRY_DEBUG=1 shows it)
        if os.environ.get("AMBRY_DEBUG"):
            raise
        warn(prog, f"internal error: {type(e).__name__}: {e} (set AMBRY_DEBUG=1 for the traceback)")
        return EXIT_PROBLEM


class Progress:
    """One status line on stderr, redrawn at most five times a second, only
    when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._next = 0.0
        self._drawn = False

    def show(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + 0.2
        sys.stderr.write("\r\x1b[K" + text[:200])
        sys.stderr.flush()
        self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._drawn = False


def format_command(argv: list[bytes]) -> str:
    """A command the way redis-cli shows one: plain arguments bare, the
    others double-quoted with C escapes."""
    return " ".join(quote_arg(a).decode("latin-1") for a in argv)


def human_bytes(n: int) -> str:
    """``512 B``, ``3.5 KiB``, ``1.2 GiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def print_json(doc: Any, stream: Any = None) -> None:
    (stream or sys.stdout).write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def confirm(question: str, assume_yes: bool) -> bool:
    """Ask on stderr, read the answer from stdin (``y``/``yes``); ``--yes``
    answers for the user.  A closed stdin answers no."""
    if assume_yes:
        return True
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        answer = ""
    if not sys.stdin.isatty():
        sys.stderr.write(answer if answer.endswith("\n") else answer + "\n")
    return answer.strip().lower() in ("y", "yes")


def parse_timestamp(text: str) -> int:
    """A unix time in seconds, as ``#TS:`` annotations carry it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid unix timestamp {text!r} (seconds since the epoch)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid unix timestamp {text!r}: negative")
    return value


def fsync_dir(path: str) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
