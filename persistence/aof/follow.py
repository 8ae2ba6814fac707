"""Following a live multi-part AOF across rewrites, sans-IO.

A server appends to the last incr file of its manifest.  A rewrite
(BGREWRITEAOF, or an automatic one) changes the manifest twice
(spec/aof-format.md §4):

1. at its start a new incr file ``seq k+1`` is created and listed; every
   write from then on goes there, so incr ``k`` is complete;
2. at its end the new base (a snapshot of everything up to the end of incr
   ``k``) replaces the old base, and incr files ``<= k`` become history
   and are deleted soon after.

A follower that has replayed the old base and incr files therefore never
replays the new base: the records it already sent are exactly what the
base holds.  It goes on with the incr files it has not finished, in
sequence order.  Incr sequence numbers grow by one per new file, so a
jump means a file was created and deleted before the follower saw it:
its records are lost to the follower, which must stop rather than go on
with a hole (:class:`FollowGap`).

A follower keeps every file it has queued open: an open file stays
readable after the server deletes it, so a lagging follower still reads
all of incr ``k`` after the rewrite that retires it.

:class:`ManifestTracker` holds that bookkeeping; the I/O (watching the
directory, opening and reading files) is the tool's.
"""

from __future__ import annotations

from .errors import AOFError
from .manifest import AOFInfo, Manifest

__all__ = ["FollowGap", "ManifestTracker"]


class FollowGap(AOFError):
    """The manifest moved on in a way that leaves records the follower can
    never read (a deleted incr file it had not opened, an incr file taken
    out of the manifest without a new base)."""


class ManifestTracker:
    """The manifest state a follower has acted on: the base it started from
    (or adopted after a rewrite) and every incr file it has queued, in
    order.  :meth:`update` takes a newly read manifest and returns the incr
    files to queue (open) now."""

    def __init__(self, manifest: Manifest) -> None:
        self.base: str | None = manifest.base.name if manifest.base is not None else None
        self.queued: list[AOFInfo] = [AOFInfo(i.name, i.seq, i.type) for i in manifest.incr]
        self.rewrites = 0

    @property
    def last_seq(self) -> int:
        return self.queued[-1].seq if self.queued else 0

    def update(self, new: Manifest) -> list[AOFInfo]:
        """The incr files of ``new`` to read after the queued ones (in
        order); raises :class:`FollowGap` when ``new`` cannot follow from
        what was read."""
        known = {i.name for i in self.queued}
        new_base = new.base.name if new.base is not None else None
        fresh = [i for i in new.incr if i.name not in known]
        if new_base == self.base:
            # No rewrite completed: the queued files stay listed, new ones are appended.
            listed = {i.name for i in new.incr}
            first_listed = next((k for k, i in enumerate(self.queued) if i.name in listed), len(self.queued))
            dropped = [i.name for i in self.queued[first_listed:] if i.name not in listed]
            if dropped:
                raise FollowGap(f"incr file(s) {', '.join(dropped)} left the manifest without a new base: "
                                f"the manifest was edited by hand or replaced")
        else:
            self.rewrites += 1
            # The new base covers every incr file that became history; the first incr
            # file it lists continues the history and must be one already queued, or
            # the next one in sequence (its creation was missed between two looks).
        seq = self.last_seq
        for info in fresh:
            if info.seq <= seq:
                raise FollowGap(f"incr file {info.name} (seq {info.seq}) is not newer than the files already "
                                f"read (last seq {seq})")
            if seq and info.seq != seq + 1:
                missing = ", ".join(str(s) for s in range(seq + 1, info.seq))
                raise FollowGap(f"incr file(s) with seq {missing} were created and deleted before they could be "
                                f"read (two rewrites completed while the follower was behind); their records "
                                f"are lost: replay again from scratch")
            seq = info.seq
        self.base = new_base
        self.queued.extend(AOFInfo(i.name, i.seq, i.type) for i in fresh)
        return fresh
