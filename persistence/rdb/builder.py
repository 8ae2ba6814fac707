"""How the reader hands over a decoded value: the last step of Redis's
``rdbLoadObject``, where the decoded containers become objects.

Every value parser of the reader decodes its record into plain lists in the
shape that costs least for that record -- a hash as one flat list of
``field, value, field, value ...``, a sorted set as a list of members and a
list of scores, a list node by node -- and passes them to a
:class:`ValueBuilder`.  What the builder returns is the value the reader
reports (``Key.value``, ``KeyBatch.values``, ``DumpValue.value``).

The default builder gives the neutral model of :mod:`.model`.  A program
with its own in-memory types (a server loading a dump) passes a subclass
that builds them directly: no intermediate pairs or tuples, and what the
neutral model leaves out is available -- each quicklist node's elements and
listpack size (Redis keeps a loaded list's node layout), an intset's integer
width.  Each method gets the record's RDB type id (``constants.TYPE_*``),
which tells the serialized encoding.

Contract: the lists passed in belong to the builder (the reader keeps no
reference); their elements are ``bytes``, integers of listpacks, ziplists
and intsets already as their decimal text except where a method says
otherwise.  The reader has done the format's own checks before calling
(sizes, terminators, counts, and with ``deep_sanitize`` duplicates and
order); a builder raises :class:`~.errors.RDBCorruptError` for what its
types cannot hold, and the reader adds the offset and the key.  In
:class:`~.model.KeyBatch` mode a builder returns ``None`` to drop a record
(Redis skips empty collections): its key is listed in ``KeyBatch.skipped``.
"""

from __future__ import annotations

from typing import Any

from .model import ModuleValue, Stream

__all__ = ["ValueBuilder", "MODEL"]


class ValueBuilder:
    """Builds the neutral model (see :mod:`.model`); subclass to build
    something else."""

    __slots__ = ()

    def list_value(self, rdb_type: int, nodes: list[list[bytes]], sizes: list[int] | None) -> Any:
        """A list, given node by node, head to tail.  ``RDB_TYPE_LIST`` and
        the single-ziplist ``LIST_ZIPLIST`` come as one node holding every
        element (Redis 7.0 re-pushes those into a new quicklist); quicklists
        (v1, v2) as their nodes, a PLAIN node as a one-element node.
        ``sizes`` (``LIST_QUICKLIST_2`` only, else None) is each node's
        listpack size in bytes, -1 for a PLAIN node."""
        if len(nodes) == 1:
            return nodes[0]
        return [x for node in nodes for x in node]

    def set_value(self, rdb_type: int, members: list[bytes]) -> Any:
        """A set stored member by member (``SET``) or as a listpack
        (``SET_LISTPACK``), in file order."""
        return members

    def intset_value(self, rdb_type: int, ints: list[int], width: int) -> Any:
        """A set stored as an intset: its integers (ascending in a valid
        blob) and the blob's width in bytes (2, 4 or 8)."""
        return [b"%d" % v for v in ints]

    def hash_value(self, rdb_type: int, flat: list[bytes]) -> Any:
        """A hash as ``field, value, field, value ...`` in file order (field
        TTLs of the 7.4 types are reported apart, in ``Key.field_expires``)."""
        it = iter(flat)
        return list(zip(it, it, strict=True))

    def zset_value(self, rdb_type: int, members: list[bytes], scores: list[float]) -> Any:
        """A sorted set as parallel lists of members and scores, file order
        (ascending for listpack/ziplist forms, descending for ``ZSET_2``)."""
        return list(zip(members, scores, strict=True))

    def stream_value(self, rdb_type: int, stream: Stream) -> Any:
        """A stream; ``stream.listpacks`` holds the file's nodes."""
        return stream

    def module_value(self, rdb_type: int, value: ModuleValue) -> Any:
        """A module value (of a registered type, or kept raw)."""
        return value


#: The default builder: the neutral model.
MODEL = ValueBuilder()
