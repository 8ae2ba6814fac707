"""Bounded-memory aggregates for rdb-inspect: the key-prefix tree, the top-N
keys and the TTL histogram, fed one key at a time while the file streams.

Nothing here keeps all the keys: :class:`TopN` is a heap of N entries and
:class:`PrefixTree` folds the smallest children of a node into one
``(other)`` child whenever the node has more than twice ``max_children``,
so a keyspace of a million ``user:<id>`` keys costs a few hundred nodes,
not a million (the big children are kept; the folded ones only lose their
names).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

__all__ = ["PrefixNode", "PrefixTree", "TopN", "TTL_BUCKETS", "ttl_bucket", "human_bytes", "human_ms"]

T = TypeVar("T")

#: The label the folded children of a prefix node go under.
OTHER: Final = b"(other)"


@dataclass(slots=True)
class PrefixNode:
    """One prefix: the keys under it and their estimated memory.  ``name``
    is its segment (with the separator when keys continue below it)."""

    name: bytes
    memory: int = 0
    keys: int = 0
    children: dict[bytes, PrefixNode] = field(default_factory=dict)
    other: PrefixNode | None = None  # the folded children, merged
    folded: bool = False  # this node is an (other) bucket


#: Key segments that look like identifiers: decimal numbers, hex strings of
#: 8+ digits (with at least one digit), UUIDs.
ID_SEGMENT: Final = re.compile(
    rb"(?:-?[0-9]+|(?=[a-fA-F]*[0-9])[0-9a-fA-F]{8,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    rb"[0-9a-fA-F]{12})\Z")
ID_PLACEHOLDER: Final = b"*"


class PrefixTree:
    """Memory and key counts by key prefix: a key ``a:b:c`` with ``sep=b":"``
    and ``depth=2`` counts under ``a:`` and ``a:b:``; a key with fewer
    segments ends in a leaf named by its last segment (``a:x`` -> ``a:``,
    ``x``).  With ``group_ids`` a segment that looks like an identifier
    (``user:1234:name``) is counted as ``*`` (``user:*:``), so a keyspace
    of a million users is one branch, not a million."""

    def __init__(self, sep: bytes = b":", depth: int = 2, max_children: int = 200,
                 group_ids: bool = False) -> None:
        if not sep:
            raise ValueError("the separator must not be empty")
        if depth < 1:
            raise ValueError("the depth must be at least 1")
        self.sep = sep
        self.depth = depth
        self.max_children = max(1, max_children)
        self.group_ids = group_ids
        self.root = PrefixNode(b"")

    def add(self, key: bytes, memory: int) -> None:
        """Count one key."""
        root = self.root
        root.memory += memory
        root.keys += 1
        sep = self.sep
        parts = key.split(sep, self.depth)
        n = len(parts)
        last = n - 1 if n <= self.depth else n - 2  # index of the deepest node
        node = root
        is_id = ID_SEGMENT.match if self.group_ids else None
        for i in range(last + 1):
            seg = parts[i]
            if is_id is not None and is_id(seg):
                seg = ID_PLACEHOLDER
            name = seg + sep if i < n - 1 else seg
            children = node.children
            child = children.get(name)
            if child is None:
                if len(children) >= 2 * self.max_children:
                    self._fold(node)
                    children = node.children
                child = children[name] = PrefixNode(name)
            child.memory += memory
            child.keys += 1
            node = child

    def _fold(self, node: PrefixNode) -> None:
        """Keep the ``max_children`` biggest children, merge the rest into
        the node's ``(other)`` child (their subtrees are dropped)."""
        other = node.other
        if other is None:
            other = node.other = PrefixNode(OTHER, folded=True)
        ranked = sorted(node.children.values(), key=lambda c: c.memory, reverse=True)
        for c in ranked[self.max_children:]:
            other.memory += c.memory
            other.keys += c.keys
        node.children = {c.name: c for c in ranked[:self.max_children]}

    def walk(self, min_memory: int = 0) -> Iterator[tuple[int, bytes, PrefixNode]]:
        """(depth, full prefix, node) depth-first, biggest children first,
        skipping nodes below ``min_memory``."""
        def rec(node: PrefixNode, level: int, path: bytes) -> Iterator[tuple[int, bytes, PrefixNode]]:
            for c in self.children_of(node):
                if c.memory < min_memory:
                    continue
                full = path + c.name
                yield level, full, c
                if c.children:
                    yield from rec(c, level + 1, full)

        yield from rec(self.root, 0, b"")


    @staticmethod
    def children_of(node: PrefixNode) -> list[PrefixNode]:
        """A node's children, biggest first, its ``(other)`` bucket last."""
        out = sorted(node.children.values(), key=lambda c: (-c.memory, c.name))
        if node.other is not None:
            out.append(node.other)
        return out


class TopN(Generic[T]):
    """The N entries with the largest scores (a min-heap of N; ties keep the
    first seen)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._heap: list[tuple[int, int, T]] = []
        self._seq = 0

    def add(self, score: int, item: T) -> None:
        heap = self._heap
        self._seq -= 1  # earlier items win ties
        if self.n <= 0:
            return
        if len(heap) < self.n:
            heapq.heappush(heap, (score, self._seq, item))
        elif score > heap[0][0]:
            heapq.heapreplace(heap, (score, self._seq, item))

    def would_take(self, score: int) -> bool:
        """Whether an item of this score would enter (lets callers skip
        building the item)."""
        if len(self._heap) < self.n:
            return True
        return self.n > 0 and score > self._heap[0][0]

    def items(self) -> list[tuple[int, T]]:
        """(score, item), largest first."""
        return [(s, it) for s, _, it in sorted(self._heap, reverse=True)]


_S: Final = 1000
_M: Final = 60 * _S
_H: Final = 60 * _M
_D: Final = 24 * _H

#: TTL histogram buckets: (label, upper bound of the remaining time in ms).
TTL_BUCKETS: Final[list[tuple[str, float]]] = [
    ("expired", 0),
    ("< 1 min", _M),
    ("< 10 min", 10 * _M),
    ("< 1 hour", _H),
    ("< 6 hours", 6 * _H),
    ("< 1 day", _D),
    ("< 1 week", 7 * _D),
    ("< 30 days", 30 * _D),
    ("< 1 year", 365 * _D),
    (">= 1 year", float("inf")),
]


def ttl_bucket(expire_ms: int, now_ms: int) -> int:
    """Index in :data:`TTL_BUCKETS` of an absolute expiry time."""
    left = expire_ms - now_ms
    if left <= 0:
        return 0
    for i in range(1, len(TTL_BUCKETS)):
        if left < TTL_BUCKETS[i][1]:
            return i
    return len(TTL_BUCKETS) - 1


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KB`` (binary multiples, as Redis's INFO *_human)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover - unreachable


def human_ms(ms: float) -> str:
    """A duration in the largest unit that keeps it readable."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    for unit, size in (("d", _D), ("h", _H), ("min", _M), ("s", _S)):
        if ms >= size:
            return f"{sign}{ms / size:.1f} {unit}"
    return f"{sign}{ms:.0f} ms"


def counter_rows(d: dict[Any, list[int]]) -> list[tuple[Any, list[int]]]:
    """Rows of a ``{name: [count, ...]}`` table, largest count first."""
    return sorted(d.items(), key=lambda kv: (-kv[1][0], str(kv[0])))
