"""The one path for effects (DESIGN.md, spec/propagation.md).

Every write reaches the AOF and the replicas through :meth:`Propagator.emit`.
A top-level execution unit (a command, an EXEC, a script, an expired or
evicted key, a served blocked client) appends its effects, already in their
deterministic form, with :meth:`Propagator.add`; when the outermost unit
ends, :meth:`Propagator.end_unit` emits them in order: one entry alone, two
or more wrapped in MULTI/EXEC (Redis 7.0 layout: the wrapper carries the db
of the first entry, so a SELECT comes before the MULTI), none at all for no
entries.  Each sink keeps its own "last db written" tracker and inserts
``SELECT`` when the db changes.

Invariants:
* nothing else writes to the AOF or to a replica;
* units nest; only depth 0 emits, so EXEC of scripts yields one wrapper;
* while loading (AOF replay, RDB load) nothing is recorded.
"""

from __future__ import annotations

from typing import Protocol

# The RESP multibulk form of one command, as written to AOF and replicas.
from ..persistence.aof.writer import encode_command as encode_command

TARGET_AOF = 1
TARGET_REPL = 2
TARGET_ALL = 3

Argv = list[bytes]


class Sink(Protocol):
    """A consumer of the effect stream (AOF writer, replication backlog, tests).

    ``targets`` tells which of TARGET_AOF / TARGET_REPL a sink is; a sink
    receives ``(db, argv)`` pairs for entries addressed to it and handles
    its own SELECT tracking through :class:`SelectTracker`."""

    targets: int

    def write(self, db: int, argv: Argv) -> None: ...

    def flush_unit(self) -> None: ...


class SelectTracker:
    """Per-sink "db of the last command written"; -1 means unknown."""

    __slots__ = ("db",)

    def __init__(self) -> None:
        self.db = -1

    def reset(self) -> None:
        self.db = -1

    def commands_for(self, db: int, argv: Argv) -> list[Argv]:
        if db >= 0 and db != self.db:
            self.db = db
            return [[b"SELECT", str(db).encode()], argv]
        return [argv]


class RecordingSink:
    """Keeps the emitted stream (with SELECTs) as argv lists; used by tests
    and by DEBUG-style introspection."""

    def __init__(self, targets: int = TARGET_ALL) -> None:
        self.targets = targets
        self.tracker = SelectTracker()
        self.commands: list[Argv] = []
        self.units = 0

    def write(self, db: int, argv: Argv) -> None:
        self.commands.extend(self.tracker.commands_for(db, argv))

    def flush_unit(self) -> None:
        self.units += 1


class _SinkList(list):  # type: ignore[type-arg]
    """Keeps ``Propagator.enabled`` right however sinks are added or removed."""

    def __init__(self, owner: Propagator) -> None:
        super().__init__()
        self.owner = owner

    def append(self, sink: Sink) -> None:  # type: ignore[override]
        super().append(sink)
        self.owner._update()

    def remove(self, sink: Sink) -> None:  # type: ignore[override]
        super().remove(sink)
        self.owner._update()


class Propagator:
    """Collects the current unit's effects and emits them to the sinks."""

    __slots__ = ("pending", "depth", "sinks", "enabled", "loading", "no_wrap")

    def __init__(self) -> None:
        self.pending: list[tuple[int, Argv, int]] = []
        self.depth = 0
        self.sinks: list[Sink] = _SinkList(self)
        # False while loading or when nothing listens (no AOF, no replicas, no
        # backlog): Redis does not even build the list then.
        self.enabled = False
        self.loading = False
        self.no_wrap = False

    def add_sink(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)

    def set_loading(self, loading: bool) -> None:
        """Nothing is recorded while replaying a file or a primary's RDB."""
        self.loading = loading
        self._update()

    def _update(self) -> None:
        self.enabled = bool(self.sinks) and not self.loading

    def add(self, db: int, argv: Argv, targets: int = TARGET_ALL) -> None:
        if self.enabled and targets:
            self.pending.append((db, argv, targets))

    def begin_unit(self) -> None:
        self.depth += 1

    def end_unit(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.pending:
            self.emit()

    def emit(self) -> None:
        """Send the pending entries, wrapping two or more in MULTI/EXEC."""
        pending = self.pending
        self.pending = []
        if not self.sinks:
            return
        if len(pending) == 1:  # the common unit: one effect, no wrapper
            self.no_wrap = False
            db, argv, t = pending[0]
            for sink in self.sinks:
                if t & sink.targets:
                    sink.write(db, argv)
                sink.flush_unit()
            return
        # As Redis 7.0: the wrapper is decided on the whole unit and sent to
        # every target, MULTI with the first entry's db, EXEC with the last's.
        wrap = len(pending) > 1 and not self.no_wrap
        self.no_wrap = False
        for sink in self.sinks:
            if wrap:
                sink.write(pending[0][0], [b"MULTI"])
            for db, argv, t in pending:
                if t & sink.targets:
                    sink.write(db, argv)
            if wrap:
                sink.write(pending[-1][0], [b"EXEC"])
            sink.flush_unit()
