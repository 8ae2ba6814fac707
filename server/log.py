"""Server log in Redis's format: ``pid:R dd Mon yyyy hh:mm:ss.mmm L message``.

R is the role character (M primary, S replica, C child, X sentinel) and L the
level mark (``.`` debug, ``-`` verbose, ``*`` notice, ``#`` warning), as
serverLogRaw prints them, so log scrapers written for Redis keep working.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

LEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3, "nothing": 4}
_MARKS = ".-*#"


class Logger:
    def __init__(self) -> None:
        self.level = LEVELS["notice"]
        self.path = ""
        self.role = "M"
        self._file: TextIO | None = None
        self.syslog = False

    def configure(self, level: str, path: str) -> None:
        self.level = LEVELS.get(level, 2)
        if path != self.path:
            if self._file is not None and self._file is not sys.stdout:
                self._file.close()
            self._file = None
            self.path = path

    def _out(self) -> TextIO:
        if self._file is None:
            if self.path:
                self._file = open(self.path, "a", buffering=1)  # noqa: SIM115
            else:
                self._file = sys.stdout
        return self._file

    def log(self, level: int, msg: str) -> None:
        if level < self.level:
            return
        now = time.time()
        tm = time.localtime(now)
        stamp = time.strftime("%d %b %Y %H:%M:%S", tm) + ".%03d" % int((now % 1) * 1000)
        line = f"{os.getpid()}:{self.role} {stamp} {_MARKS[level]} {msg}\n"
        try:
            f = self._out()
            f.write(line)
            f.flush()
        except OSError:
            pass

    def debug(self, msg: str) -> None:
        self.log(0, msg)

    def verbose(self, msg: str) -> None:
        self.log(1, msg)

    def notice(self, msg: str) -> None:
        self.log(2, msg)

    def warning(self, msg: str) -> None:
        self.log(3, msg)


log = Logger()
