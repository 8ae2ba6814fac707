"""Streams and consumer groups (t_stream.c of Redis 7.0.15).

XADD XRANGE XREVRANGE XLEN XDEL XTRIM XSETID XREAD XREADGROUP XACK XPENDING
XCLAIM XAUTOCLAIM XGROUP (CREATE SETID DESTROY CREATECONSUMER DELCONSUMER
HELP) XINFO (STREAM [FULL [COUNT n]] GROUPS CONSUMERS HELP).

Storage (:class:`StreamValue`).  Redis keeps a stream as a radix tree of
listpack *nodes*; a node's key is the ID of the first entry added to it
(the master ID), its listpack starts with a master entry (live count,
deleted count, the master field names) and holds entries delta-encoded
against it.  Several observable results depend on that layout, so it is
modelled node by node (:class:`_Node`), byte for byte in size:

* XADD appends to the tail node until ``stream-node-max-bytes`` (the
  listpack's bytes plus the new fields' and values' lengths) or
  ``stream-node-max-entries`` (live entries *and* tombstones) is reached,
  then starts a new node (streamAppendItem);
* XDEL only flags an entry deleted (a tombstone: it keeps its bytes and
  counts toward the node's entries) and frees the node with its last live
  entry; trimming with ``~`` removes whole nodes only, ``=`` also flags
  entries of the first remaining node (streamTrim), so the resulting
  length, XINFO STREAM's ``radix-tree-keys``/``radix-tree-nodes`` and
  MEMORY USAGE (listpack allocation sizes, jemalloc classes, the node
  preallocation of 7.0) all come out as Redis's.

IDs are kept as one 128-bit integer ``ms << 64 | seq``: comparison is
streamCompareID, ``+ 1`` is streamIncrID (the carry moves to the ms part).

Consumer groups hold their PEL and each consumer's PEL as sorted maps of
ID -> :class:`NACK` (the NACK object is shared, as in Redis).  Groups and
consumers are listed in name order (rax order is bytewise).

Effects (spec/propagation.md): XADD records the generated ID and, after
``~`` trimming, ``=`` with the exact outcome (MAXLEN -> the length,
MINID -> the first remaining ID, tombstones included); XTRIM the same;
XREADGROUP/XCLAIM/XAUTOCLAIM record one ``XCLAIM ... FORCE JUSTID LASTID``
per delivered/claimed/dropped entry; NOACK records ``XGROUP SETID ...
ENTRIESREAD`` (and ``XGROUP CREATECONSUMER`` when it created the consumer).

Blocking XREAD/XREADGROUP use server/blocking.py: a client waits for an
entry newer than its ID (for a group: than the group's last delivered ID);
a destroyed group answers ``-NOGROUP``, a deleted or replaced key answers
XREADGROUP clients ``-UNBLOCKED`` (the ``on_gone`` hook).

7.0 details that differ from later versions, all checked against
redis-server 7.0.15: XREADGROUP creates its consumer only when it serves
the key (a history read always does, ``>`` only when there is something
new); consumers have no active-time; only XADD, XDEL, XTRIM and XGROUP
CREATE ... MKSTREAM touch WATCHed keys (not XSETID or group changes);
XSETID has no max-deleted-ID check of its own; the unbalanced STREAMS
error always says XREAD and ``$``.

RDB: :meth:`StreamValue.rdb_body` is the exact RDB type-19 value Redis
7.0 writes (node layout and tombstones included), :meth:`to_rdb` /
:meth:`from_rdb` convert to and from the codec's neutral ``Stream``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import Any

from sortedcontainers import SortedDict

from .. import blocking, keyspace
from ..args import ERR_NOT_INT, ERR_SYNTAX
from ..client import Client
from ..keyspace import WRONGTYPE
from ..protocol import string2ll
from ..registry import arity_error, command
from ..reply import NULL_ARRAY, OK, Err, Map
from ..util import string2ull
from .help import help_reply, subcommand_syntax_error
from .introspection import je_size
from .zsets import lp_int_entry_size

NOTIFY_STREAM = 1 << 10

M64 = (1 << 64) - 1
ID_MAX = (1 << 128) - 1  # UINT64_MAX-UINT64_MAX

# Entry flags (t_stream.c)
FLAG_DELETED = 1
FLAG_SAMEFIELDS = 2

STREAM_LISTPACK_MAX_SIZE = 1 << 30
STREAM_LISTPACK_MAX_PRE_ALLOCATE = 4096
XREAD_BLOCKED_DEFAULT_COUNT = 1000
SCG_INVALID_ENTRIES_READ = -1
# XAUTOCLAIM allocates COUNT stream IDs up front (ztrymalloc): a request no
# 47-bit x86-64 user address space can map fails.  (Redis's real limit is
# whatever jemalloc can map on the machine: 80 TiB on the reference host.)
TRANSIENT_ALLOC_LIMIT = 1 << 47

# objectComputeSize's struct sizes (x86-64, Redis 7.0)
ROBJ = 16
STREAM_STRUCT = 80
CG_STRUCT = 40
NACK_STRUCT = 24
CONSUMER_STRUCT = 24
RAX_NODE_COST = 4 + 8 * 30  # sizeof(raxNode) + the fixed per-node charge

ERR_INVALID_ID = Err("ERR Invalid stream ID specified as stream command argument")
ERR_ID_TOO_SMALL = Err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
ERR_ID_ZERO = Err("ERR The ID specified in XADD must be greater than 0-0")
ERR_EXHAUSTED = Err("ERR The stream has exhausted the last possible ID, unable to add more items")
ERR_TOO_LARGE = Err("ERR Elements are too large to be stored")
ERR_START_ID = Err("ERR invalid start ID for the interval")
ERR_END_ID = Err("ERR invalid end ID for the interval")
ERR_NO_SUCH_KEY = Err("ERR no such key")
ERR_BUSYGROUP = Err("BUSYGROUP Consumer Group name already exists")
ERR_ENTRIESREAD = Err("ERR value for ENTRIESREAD must be positive or -1")
ERR_XGROUP_NOKEY = Err(
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use "
    "the MKSTREAM option to create an empty stream automatically."
)
ERR_UNBALANCED = Err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
ERR_COUNT_TOO_HIGH = Err("ERR Insufficient memory, failed allocating transient memory, COUNT too high.")
ERR_BLOCKED_NOGROUP = Err("NOGROUP the consumer group this client was blocked on no longer exists")
ERR_BLOCKED_GONE = Err("UNBLOCKED the stream key no longer exists")


def _notify(srv: Any, event: bytes, key: bytes, dbid: int) -> None:
    """notifyKeyspaceEvent(NOTIFY_STREAM, ...), skipped cheaply when off."""
    if srv.cfg.notify_keyspace_events:
        srv.notify(NOTIFY_STREAM, event, key, dbid)


def _cs(b: bytes) -> bytes:
    """An argument printed with ``%s``: up to its first NUL."""
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


# -- IDs --------------------------------------------------------------------------------


def id_bytes(i: int) -> bytes:
    """addReplyStreamID's text ``<ms>-<seq>``."""
    return b"%d-%d" % (i >> 64, i & M64)


def parse_id(arg: bytes, missing_seq: int = 0, strict: bool = False, seq_star: bool = False) -> tuple[int, bool]:
    """streamGenericParseIDOrReply: ``(id, seq_given)``.

    ``-``/``+`` are the extremes unless ``strict``; ``<ms>`` alone takes
    ``missing_seq``; ``<ms>-*`` (only with ``seq_star``, XADD) leaves the
    sequence to be generated (``seq_given`` False).  Both parts go through
    ``string2ull`` (strtoull's leniency included) on the argument as a C
    string of at most 127 bytes."""
    if len(arg) > 127:
        raise ERR_INVALID_ID
    nul = arg.find(b"\0")
    if nul >= 0:
        arg = arg[:nul]
    if arg == b"-":
        if strict:
            raise ERR_INVALID_ID
        return 0, True
    if arg == b"+":
        if strict:
            raise ERR_INVALID_ID
        return ID_MAX, True
    dash = arg.find(b"-")
    if dash < 0:
        ms = string2ull(arg)
        if ms is None:
            raise ERR_INVALID_ID
        return ms << 64 | missing_seq, True
    ms = string2ull(arg[:dash])
    if ms is None:
        raise ERR_INVALID_ID
    tail = arg[dash + 1 :]
    if seq_star and tail == b"*":
        return ms << 64, False
    seq = string2ull(tail)
    if seq is None:
        raise ERR_INVALID_ID
    return ms << 64 | seq, True


def parse_strict_id(arg: bytes, missing_seq: int = 0) -> int:
    """streamParseStrictIDOrReply: ``-`` and ``+`` are not IDs."""
    return parse_id(arg, missing_seq, True)[0]


def parse_interval_id(arg: bytes, missing_seq: int) -> tuple[int, bool]:
    """streamParseIntervalIDOrReply: ``(id, exclusive)``; ``(<id>`` is an
    exclusive bound (then strict: ``(-`` is invalid)."""
    if len(arg) > 1 and arg[0] == 40:  # '('
        return parse_id(arg[1:], missing_seq, True)[0], True
    return parse_id(arg, missing_seq)[0], False


def _range_bounds(start_arg: bytes, end_arg: bytes) -> tuple[int, int]:
    """Both bounds of XRANGE-like commands, exclusive ones moved inward."""
    start, startex = parse_interval_id(start_arg, 0)
    if startex:
        if start == ID_MAX:
            raise ERR_START_ID
        start += 1
    end, endex = parse_interval_id(end_arg, M64)
    if endex:
        if end == 0:
            raise ERR_END_ID
        end -= 1
    return start, end


def _i64(v: int) -> int:
    """A uint64 difference as the int64 the listpack stores."""
    v &= M64
    return v - (1 << 64) if v >> 63 else v


# -- listpack sizes ---------------------------------------------------------------------


def _isz(v: int) -> int:
    """Bytes of a listpack integer entry (lpAppendInteger)."""
    if 0 <= v < 128:
        return 2
    return lp_int_entry_size(v)


def _ssz(s: bytes) -> int:
    """Bytes of the listpack entry lpAppend writes for ``s``: an integer
    encoding for a canonical int64 (lpStringToInt64), else a string with a
    1/2/5-byte header and lpEncodeBacklen's 1..5-byte back-length."""
    n = len(s)
    if n and n <= 20 and (s[0] == 45 or 48 <= s[0] <= 57):
        v = string2ll(s)
        if v is not None:
            return 2 if 0 <= v < 128 else lp_int_entry_size(v)
    if n < 64:
        return n + 2
    e = n + 2 if n < 4096 else n + 5
    if e <= 127:
        return e + 1
    if e < 16383:
        return e + 2
    if e < 2097151:
        return e + 3
    if e < 268435455:
        return e + 4
    return e + 5


def _je(n: int) -> int:
    return je_size(n)


class _Node:
    """One listpack of the stream's radix tree (see the module docstring).

    ``ids``/``fvs``/``flags`` are the physical entries, tombstones
    included: the ID, the flat ``[field, value, ...]`` list (replied as
    is) and the entry flags.  ``fixed`` is the master entry's size without
    its two counters, ``ebytes`` the entries' size; ``alloc`` follows the
    listpack's allocation (zmalloc_size) for MEMORY USAGE."""

    __slots__ = ("key", "fields", "ids", "fvs", "flags", "count", "deleted", "fixed", "ebytes", "alloc",
                 "dead_prefix")

    def __init__(self, key: int, fields: list[bytes], prealloc: int) -> None:
        self.key = key
        self.fields = fields
        self.ids: list[int] = []
        self.fvs: list[list[bytes]] = []
        self.flags: list[int] = []
        self.count = 1
        self.deleted = 0
        fixed = _isz(len(fields)) + 2  # num-fields ... the 0 terminator
        for f in fields:
            fixed += _ssz(f)
        self.fixed = fixed
        self.ebytes = 0
        self.alloc = _je(prealloc if prealloc > 7 else 7)  # lpNew(prealloc)
        # entries before this index are all tombstones (flags only ever go
        # from live to deleted, so the hint never goes stale): trims and
        # scans from the head start here instead of walking them again
        self.dead_prefix = 0

    def lp_bytes(self) -> int:
        """lpBytes: header (6) + master entry + entries + end byte."""
        return 7 + _isz(self.count) + _isz(self.deleted) + self.fixed + self.ebytes

    def grown(self, new: int) -> None:
        """lpInsert reallocates when the listpack outgrows its allocation."""
        if new > self.alloc:
            self.alloc = _je(new)

    def set_counts(self, count: int, deleted: int) -> None:
        """Two lpReplaceInteger calls (count, then deleted): each may grow
        the allocation or, when the integer shrinks, realloc it down."""
        old = self.lp_bytes()
        self.count = count
        new = self.lp_bytes()
        if new > old:
            self.grown(new)
        elif new < old:
            self.alloc = _je(new)
        self.deleted = deleted
        newer = self.lp_bytes()
        if newer > new:
            self.grown(newer)
        elif newer < new:
            self.alloc = _je(newer)

    def shrink_to_fit(self) -> None:
        """lpShrinkToFit when the node stops being the tail."""
        b = self.lp_bytes()
        if self.alloc > b:
            self.alloc = _je(b)

    def last_id(self) -> int:
        """lpGetEdgeStreamID(lp, 0): the last physical entry, tombstone or not."""
        return self.ids[-1]

    def copy(self) -> _Node:
        n = _Node.__new__(_Node)
        n.key = self.key
        n.fields = self.fields
        n.ids = self.ids[:]
        n.fvs = self.fvs[:]
        n.flags = self.flags[:]
        n.count = self.count
        n.deleted = self.deleted
        n.fixed = self.fixed
        n.ebytes = self.ebytes
        n.alloc = self.alloc
        n.dead_prefix = self.dead_prefix
        return n


def _entry_size(key: int, eid: int, fv: list[bytes], same: bool) -> int:
    """Bytes streamAppendItem adds for one entry."""
    d = eid - key
    if d < 128:  # same ms, small sequence step: both deltas are 7-bit ints
        size = 6
    else:
        size = 2 + _isz(_i64((eid >> 64) - (key >> 64))) + _isz(_i64(d))
    nf = len(fv) >> 1
    ssz = _ssz
    if same:
        for v in fv[1::2]:
            size += ssz(v)
        return size + _isz(nf + 3)
    for x in fv:
        size += ssz(x)
    return size + _isz(nf) + _isz(2 * nf + 4)


def rax_nodes(keys: list[int], width: int = 16) -> int:
    """``rax->numnodes`` of a radix tree holding ``keys`` (sorted, distinct
    ``width``-byte big-endian integers) in its canonical compressed form:
    one node per branching point, a compressed node for each chain of
    unshared bytes before a branch or a leaf, a node per key.  An empty
    rax is its head node."""
    n = len(keys)
    if n == 0:
        return 1
    if n == 1:
        return 2
    nbits = width * 8
    # LCP in bytes of each adjacent pair
    lcps = [(nbits - (keys[i] ^ keys[i + 1]).bit_length()) >> 3 for i in range(n - 1)]
    total = 0
    last = width
    prev = -1
    for i in range(n):
        nxt = lcps[i] if i < n - 1 else -1
        p = prev if prev > nxt else nxt
        total += 2 if last - (p + 1) > 0 else 1
        prev = nxt
    stack: list[int] = []
    for h in lcps + [-1]:
        while stack and stack[-1] > h:
            d = stack.pop()
            parent = stack[-1] if stack else -1
            if h > parent:
                parent = h
            begin = parent + 1 if parent >= 0 else 0
            total += 2 if d - begin > 0 else 1
        if h >= 0 and (not stack or stack[-1] < h):
            stack.append(h)
    return total


def _rax_usage(keys: list[int], numele: int) -> int:
    """streamRadixTreeMemoryUsage (its ``sizeof(*rax)`` term is overwritten
    in Redis, so it is not counted)."""
    return numele * 16 + rax_nodes(keys) * RAX_NODE_COST


# -- consumer groups --------------------------------------------------------------------


class NACK:
    """streamNACK: a pending entry, shared by the group PEL and its owner's."""

    __slots__ = ("delivery_time", "delivery_count", "consumer")

    def __init__(self, delivery_time: int, delivery_count: int, consumer: Consumer | None) -> None:
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count
        self.consumer = consumer


class Consumer:
    """streamConsumer (7.0: a name, the last time it was seen, its PEL)."""

    __slots__ = ("name", "seen_time", "pel")

    def __init__(self, name: bytes, seen_time: int) -> None:
        self.name = name
        self.seen_time = seen_time
        self.pel: SortedDict = SortedDict()


class Group:
    """streamCG: last delivered ID, logical read counter (-1 unknown),
    the PEL and the consumers."""

    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id: int, entries_read: int) -> None:
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()
        self.consumers: dict[bytes, Consumer] = {}

    def sorted_consumers(self) -> list[Consumer]:
        c = self.consumers
        return [c[k] for k in sorted(c)]


# -- the value --------------------------------------------------------------------------


class StreamValue:
    """A stream: listpack nodes, metadata and consumer groups (see the
    module docstring).  Implements the generic value protocol."""

    __slots__ = ("nodes", "keys", "length", "last_id", "first_id", "max_deleted", "entries_added", "groups",
                 "_rax_cache")

    redis_type = b"stream"

    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self.keys: list[int] = []  # node master IDs, parallel to ``nodes``
        self.length = 0
        self.last_id = 0
        self.first_id = 0
        self.max_deleted = 0
        self.entries_added = 0
        self.groups: dict[bytes, Group] | None = None
        self._rax_cache: int | None = None  # rax_nodes(keys) until the nodes change

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"StreamValue(length={self.length}, last_id={id_bytes(self.last_id)!r}, nodes={len(self.nodes)})"

    # -- appending ---------------------------------------------------------------

    def append(self, eid: int, fv: list[bytes], max_bytes: int, max_entries: int) -> None:
        """streamAppendItem with a checked ID (> last_id)."""
        nodes = self.nodes
        node = nodes[-1] if nodes else None
        if node is not None:
            if max_bytes == 0 or max_bytes > STREAM_LISTPACK_MAX_SIZE:
                max_bytes = STREAM_LISTPACK_MAX_SIZE
            tot = 0
            for x in fv:
                tot += len(x)
            if node.lp_bytes() + tot >= max_bytes or (max_entries and node.count + node.deleted >= max_entries):
                node.shrink_to_fit()
                node = None
        if node is None:
            prealloc = STREAM_LISTPACK_MAX_PRE_ALLOCATE
            cfg_bytes = max_bytes
            if 0 < cfg_bytes < prealloc:
                prealloc = cfg_bytes
            node = _Node(eid, fv[0::2], prealloc)
            nodes.append(node)
            self.keys.append(eid)
            self._rax_cache = None
            same = True
        else:
            node.count += 1
            fields = node.fields
            nf = len(fields)
            if len(fv) == 2 * nf:
                same = True
                for i in range(nf):
                    if fv[2 * i] != fields[i]:
                        same = False
                        break
            else:
                same = False
        node.ids.append(eid)
        node.fvs.append(fv)
        node.flags.append(FLAG_SAMEFIELDS if same else 0)
        node.ebytes += _entry_size(node.key, eid, fv, same)
        node.grown(node.lp_bytes())
        self.length += 1
        self.entries_added += 1
        self.last_id = eid
        if self.length == 1:
            self.first_id = eid

    # -- reading -----------------------------------------------------------------

    def iter_range(self, start: int, end: int) -> Iterator[tuple[int, list[bytes]]]:
        """Live entries with start <= ID <= end, ascending."""
        keys = self.keys
        if not keys:
            return
        i = bisect_right(keys, start) - 1
        if i < 0:
            i = 0
        nodes = self.nodes
        node = nodes[i]
        j = bisect_left(node.ids, start) if start else 0
        if j < node.dead_prefix:
            j = node.dead_prefix
        nn = len(nodes)
        while True:
            ids = node.ids
            flags = node.flags
            fvs = node.fvs
            for k in range(j, len(ids)):
                eid = ids[k]
                if eid > end:
                    return
                if not flags[k] & FLAG_DELETED:
                    yield eid, fvs[k]
            i += 1
            if i >= nn:
                return
            node = nodes[i]
            j = node.dead_prefix

    def iter_range_rev(self, start: int, end: int) -> Iterator[tuple[int, list[bytes]]]:
        """Live entries with start <= ID <= end, descending."""
        keys = self.keys
        i = bisect_right(keys, end) - 1
        if i < 0:
            return
        nodes = self.nodes
        node = nodes[i]
        j = bisect_right(node.ids, end) - 1
        while True:
            ids = node.ids
            flags = node.flags
            fvs = node.fvs
            for k in range(j, -1, -1):
                eid = ids[k]
                if eid < start:
                    return
                if not flags[k] & FLAG_DELETED:
                    yield eid, fvs[k]
            i -= 1
            if i < 0:
                return
            node = nodes[i]
            j = len(node.ids) - 1

    def range(self, start: int, end: int, count: int, rev: bool = False) -> list[list[Any]]:
        """streamReplyWithRange without a group: ``[[id, [f, v, ...]], ...]``
        (``count`` 0: all)."""
        out: list[list[Any]] = []
        if rev:
            for eid, fv in self.iter_range_rev(start, end):
                out.append([b"%d-%d" % (eid >> 64, eid & M64), fv])
                if len(out) == count:
                    break
            return out
        # forward: the common case (XRANGE, XREAD), without a generator
        keys = self.keys
        if not keys:
            return out
        i = bisect_right(keys, start) - 1
        if i < 0:
            i = 0
        nodes = self.nodes
        nn = len(nodes)
        node = nodes[i]
        j = bisect_left(node.ids, start) if start else 0
        if j < node.dead_prefix:
            j = node.dead_prefix
        append = out.append
        left = count if count > 0 else -1
        while True:
            ids = node.ids
            flags = node.flags
            fvs = node.fvs
            for k in range(j, len(ids)):
                eid = ids[k]
                if eid > end:
                    return out
                if not flags[k] & FLAG_DELETED:
                    append([b"%d-%d" % (eid >> 64, eid & M64), fvs[k]])
                    left -= 1
                    if not left:
                        return out
            i += 1
            if i >= nn:
                return out
            node = nodes[i]
            j = node.dead_prefix

    def _locate(self, eid: int) -> tuple[_Node, int] | None:
        """The node and index of the live entry ``eid``."""
        keys = self.keys
        i = bisect_right(keys, eid) - 1
        if i < 0:
            return None
        node = self.nodes[i]
        ids = node.ids
        j = bisect_left(ids, eid)
        if j < len(ids) and ids[j] == eid and not node.flags[j] & FLAG_DELETED:
            return node, j
        return None

    def get_entry(self, eid: int) -> list[bytes] | None:
        """The fields of the live entry ``eid`` (streamEntryExists + fetch)."""
        loc = self._locate(eid)
        if loc is None:
            return None
        node, j = loc
        return node.fvs[j]

    def last_valid_id(self) -> int:
        """streamLastValidID: the last live entry's ID (0 when none)."""
        for node in reversed(self.nodes):
            flags = node.flags
            for k in range(len(flags) - 1, -1, -1):
                if not flags[k] & FLAG_DELETED:
                    return node.ids[k]
        return 0

    def first_edge(self, skip_tombstones: bool) -> int:
        """streamGetEdgeID(s, first=1, ...): the first (live) entry's ID, or
        the maximal ID when there is none."""
        for node in self.nodes:
            if not skip_tombstones:
                return node.ids[0]
            flags = node.flags
            for k in range(node.dead_prefix, len(flags)):
                if not flags[k] & FLAG_DELETED:
                    return node.ids[k]
        return ID_MAX

    # -- deleting ----------------------------------------------------------------

    def _remove_node(self, i: int) -> None:
        del self.nodes[i]
        del self.keys[i]
        self._rax_cache = None

    def delete_entry(self, eid: int) -> bool:
        """streamDeleteItem: flag the entry; a node losing its last live
        entry is freed, tombstones and all."""
        keys = self.keys
        i = bisect_right(keys, eid) - 1
        if i < 0:
            return False
        node = self.nodes[i]
        ids = node.ids
        j = bisect_left(ids, eid)
        if j >= len(ids) or ids[j] != eid or node.flags[j] & FLAG_DELETED:
            return False
        node.flags[j] |= FLAG_DELETED
        if node.count == 1:
            self._remove_node(i)
        else:
            node.set_counts(node.count - 1, node.deleted + 1)
        self.length -= 1
        return True

    def trim(self, maxlen: int, minid: int | None, approx: bool, limit: int) -> int:
        """streamTrim: MAXLEN (``minid`` None) or MINID; returns the number
        of entries removed.  Whole nodes go first; with ``approx`` the
        first node that cannot go entirely stops the trim, otherwise its
        entries are flagged deleted one by one."""
        by_len = minid is None
        deleted = 0
        nodes = self.nodes
        while nodes:
            if by_len and self.length <= maxlen:
                break
            node = nodes[0]
            entries = node.count
            if limit and deleted + entries > limit:
                break
            if by_len:
                remove = self.length - entries >= maxlen
            else:
                remove = node.last_id() < minid  # type: ignore[operator]
            if remove:
                self._remove_node(0)
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            # Redis walks the node from its first entry, stopping at the
            # first entry it must keep; tombstones are skipped either way
            # (a tombstone past a MINID is followed by larger IDs only).
            flags = node.flags
            ids = node.ids
            dfl = 0
            k = node.dead_prefix
            n = len(ids)
            while k < n:
                if flags[k] & FLAG_DELETED:
                    k += 1
                    continue
                if by_len:
                    if self.length <= maxlen:
                        break
                elif ids[k] >= minid:  # type: ignore[operator]
                    break
                flags[k] |= FLAG_DELETED
                dfl += 1
                self.length -= 1
                k += 1
            node.dead_prefix = k
            deleted += dfl
            node.set_counts(entries - dfl, node.deleted + dfl)
            break
        if self.length == 0:
            self.first_id = 0
        elif deleted:
            self.first_id = self.first_edge(True)
        return deleted

    # -- consumer groups ------------------------------------------------------------

    def range_has_tombstones(self, start: int) -> bool:
        """streamRangeHasTombstones(s, start, NULL)."""
        md = self.max_deleted
        if not self.length or not md:
            return False
        if self.first_id > md:
            return False
        return start <= md

    def estimate_distance(self, eid: int) -> int:
        """streamEstimateDistanceFromFirstEverEntry: ``eid``'s logical read
        counter, or -1 when it cannot be known."""
        added = self.entries_added
        if not added:
            return 0
        last = self.last_id
        if not self.length and eid <= last:
            return added
        if eid == last:
            return added
        if eid > last:
            return SCG_INVALID_ENTRIES_READ
        md = self.max_deleted
        first = self.first_id
        if not md or md < first:
            if eid < first:
                return added - self.length
            if eid == first:
                return added - self.length + 1
        return SCG_INVALID_ENTRIES_READ

    def lag(self, g: Group) -> int | None:
        """The group's lag (XINFO), None when it cannot be computed."""
        if not self.entries_added:
            return 0
        if g.entries_read != SCG_INVALID_ENTRIES_READ and not self.range_has_tombstones(g.last_id):
            return self.entries_added - g.entries_read
        er = self.estimate_distance(g.last_id)
        if er != SCG_INVALID_ENTRIES_READ:
            return self.entries_added - er
        return None

    # -- generic value protocol -----------------------------------------------------

    def copy(self) -> StreamValue:
        """A deep copy (COPY): nodes, metadata and groups with their PELs."""
        s = StreamValue()
        s.nodes = [n.copy() for n in self.nodes]
        s.keys = self.keys[:]
        s.length = self.length
        s.last_id = self.last_id
        s.first_id = self.first_id
        s.max_deleted = self.max_deleted
        s.entries_added = self.entries_added
        if self.groups is not None:
            s.groups = {}
            for name, g in self.groups.items():
                ng = Group(g.last_id, g.entries_read)
                for cname, cons in g.consumers.items():
                    nc = Consumer(cons.name, cons.seen_time)
                    ng.consumers[cname] = nc
                for eid, nack in g.pel.items():
                    owner = nack.consumer
                    nc2 = ng.consumers[owner.name] if owner is not None else None
                    nn = NACK(nack.delivery_time, nack.delivery_count, nc2)
                    ng.pel[eid] = nn
                    if nc2 is not None:
                        nc2.pel[eid] = nn
                s.groups[name] = ng
        return s

    def encoding(self) -> bytes:
        return b"stream"

    def digest_kind(self) -> tuple[Any, ...]:
        """Live entries in ID order, field names included (debug.c)."""
        def entries() -> Iterator[tuple[int, int, list[tuple[bytes, bytes]]]]:
            for eid, fv in self.iter_range(0, ID_MAX):
                yield eid >> 64, eid & M64, list(zip(fv[0::2], fv[1::2], strict=True))

        return ("stream", entries())

    def rax_numnodes(self) -> int:
        """``s->rax->numnodes`` (XINFO STREAM radix-tree-nodes), cached
        until the set of nodes changes."""
        v = self._rax_cache
        if v is None:
            v = self._rax_cache = rax_nodes(self.keys)
        return v

    def redis_memory_usage(self, samples: int) -> int:
        """objectComputeSize for a stream: the radix tree, the listpacks'
        allocations (the first ``samples`` averaged for all but the last
        when there are more nodes), and the groups' PELs and consumers."""
        asize = ROBJ + STREAM_STRUCT
        nodes = self.nodes
        numele = len(nodes)
        asize += numele * 16 + self.rax_numnodes() * RAX_NODE_COST
        lpsize = 0
        sampled = 0
        for node in nodes:
            if samples and sampled >= samples:
                break
            lpsize += node.alloc
            sampled += 1
        if numele <= sampled:
            asize += lpsize
        else:
            if sampled:
                lpsize //= sampled
            asize += lpsize * (numele - 1) + nodes[-1].alloc
        if self.groups:
            for g in self.groups.values():
                pel = g.pel
                asize += CG_STRUCT + _rax_usage(list(pel.keys()), len(pel)) + NACK_STRUCT * len(pel)
                for cons in g.consumers.values():
                    cp = cons.pel
                    asize += CONSUMER_STRUCT + len(cons.name) + _rax_usage(list(cp.keys()), len(cp))
        return asize

    # -- RDB ----------------------------------------------------------------------------

    def listpack_nodes(self) -> list[tuple[bytes, bytes]]:
        """The nodes exactly as Redis holds them: (16-byte big-endian master
        ID, listpack bytes), tombstones included."""
        from ...persistence.rdb.containers import lp_build, lp_entry, lp_int_entry

        out = []
        for node in self.nodes:
            fields = node.fields
            ents = [lp_int_entry(node.count), lp_int_entry(node.deleted), lp_int_entry(len(fields))]
            ents.extend(lp_entry(f) for f in fields)
            ents.append(lp_int_entry(0))
            key = node.key
            for eid, fv, fl in zip(node.ids, node.fvs, node.flags, strict=True):
                nf = len(fv) >> 1
                ents.append(lp_int_entry(fl))
                ents.append(lp_int_entry(_i64((eid >> 64) - (key >> 64))))
                ents.append(lp_int_entry(_i64(eid - key)))
                if fl & FLAG_SAMEFIELDS:
                    ents.extend(lp_entry(v) for v in fv[1::2])
                    ents.append(lp_int_entry(nf + 3))
                else:
                    ents.append(lp_int_entry(nf))
                    ents.extend(lp_entry(x) for x in fv)
                    ents.append(lp_int_entry(2 * nf + 4))
            out.append((key.to_bytes(16, "big"), lp_build(ents)))
        return out

    def rdb_body(self, compress: bool = True) -> bytes:
        """rdbSaveObject of the stream as Redis 7.0 writes it (RDB type 19,
        ``RDB_TYPE_STREAM_LISTPACKS_2``), node layout and tombstones
        included: byte-identical to a 7.0 dump of the same stream."""
        from ...persistence.rdb.encoding import enc_len, enc_str

        parts = [enc_len(len(self.nodes))]
        for key, lp in self.listpack_nodes():
            parts.append(enc_str(key, compress))
            parts.append(enc_str(lp, compress))
        for v in (self.length, self.last_id >> 64, self.last_id & M64, self.first_id >> 64, self.first_id & M64,
                  self.max_deleted >> 64, self.max_deleted & M64, self.entries_added):
            parts.append(enc_len(v))
        groups = self.groups or {}
        parts.append(enc_len(len(groups)))
        for name in sorted(groups):
            g = groups[name]
            parts.append(enc_str(name, compress))
            parts.append(enc_len(g.last_id >> 64) + enc_len(g.last_id & M64))
            parts.append(enc_len(g.entries_read & M64))
            parts.append(enc_len(len(g.pel)))
            for eid, nack in g.pel.items():
                parts.append(eid.to_bytes(16, "big") + (nack.delivery_time & M64).to_bytes(8, "little")
                             + enc_len(nack.delivery_count))
            consumers = g.sorted_consumers()
            parts.append(enc_len(len(consumers)))
            for cons in consumers:
                parts.append(enc_str(cons.name, compress) + (cons.seen_time & M64).to_bytes(8, "little"))
                parts.append(enc_len(len(cons.pel)))
                parts.extend(eid.to_bytes(16, "big") for eid in cons.pel)
        return b"".join(parts)

    def _load_node(self, key: int, lp: bytes) -> None:
        """Append a node from its listpack bytes (spec rdb-format 9.5)."""
        from ...persistence.rdb.containers import lp_decode

        flat = lp_decode(lp)
        count, deleted, nf = int(flat[0]), int(flat[1]), int(flat[2])
        fields = [bytes(f) for f in flat[3 : 3 + nf]]
        node = _Node(key, fields, 0)
        node.count = count
        node.deleted = deleted
        i = 4 + nf
        total = len(flat)
        while i < total:
            fl = int(flat[i])
            ms = ((key >> 64) + int(flat[i + 1])) & M64  # each delta wraps on its own
            seq = ((key & M64) + int(flat[i + 2])) & M64
            eid = ms << 64 | seq
            i += 3
            if fl & FLAG_SAMEFIELDS:
                fv = [x for pair in zip(fields, flat[i : i + nf], strict=True) for x in (pair[0], bytes(pair[1]))]
                i += nf
            else:
                n = int(flat[i])
                fv = [bytes(x) for x in flat[i + 1 : i + 1 + 2 * n]]
                i += 1 + 2 * n
            i += 1  # lp-count
            node.ids.append(eid)
            node.fvs.append(fv)
            node.flags.append(fl)
            node.ebytes += _entry_size(key, eid, fv, bool(fl & FLAG_SAMEFIELDS))
        self.nodes.append(node)
        self.keys.append(key)
        self._rax_cache = None

    def serialized_length(self, srv: Any = None) -> int:
        """rdbSavedObjectLen (DEBUG OBJECT serializedlength); ``srv`` tells
        whether rdbcompression is on (default yes)."""
        compress = True if srv is None else bool(srv.cfg.rdbcompression)
        return len(self.rdb_body(compress))

    # -- RDB model --------------------------------------------------------------------

    def to_rdb(self) -> Any:
        """The codec's neutral :class:`~ambry.persistence.rdb.model.Stream`:
        live entries, metadata (``first_id`` is the recorded first entry
        ID), groups with PELs and consumers (7.0 has no active time: it is
        written as the seen time, as 7.0's loader does for type 19).  The
        writer re-packs the entries into fresh nodes (no tombstones)."""
        from ...persistence.rdb.model import (
            Stream,
            StreamConsumer,
            StreamEntry,
            StreamGroup,
            StreamID,
            StreamNACK,
        )

        def sid(i: int) -> StreamID:
            return StreamID(i >> 64, i & M64)

        entries = [
            StreamEntry(sid(eid), list(zip(fv[0::2], fv[1::2], strict=True)))
            for eid, fv in self.iter_range(0, ID_MAX)
        ]
        groups = []
        for name in sorted(self.groups or ()):
            g = self.groups[name]  # type: ignore[index]
            pel = [StreamNACK(sid(eid), n.delivery_time, n.delivery_count) for eid, n in g.pel.items()]
            consumers = [
                StreamConsumer(cons.name, cons.seen_time, cons.seen_time, [sid(eid) for eid in cons.pel])
                for cons in g.sorted_consumers()
            ]
            groups.append(StreamGroup(name, sid(g.last_id), g.entries_read, pel, consumers))
        return Stream(
            entries=entries,
            length=self.length,
            last_id=sid(self.last_id),
            first_id=sid(self.first_id),
            max_deleted_id=sid(self.max_deleted),
            entries_added=self.entries_added,
            groups=groups,
            nodes=len(self.nodes),
        )

    @classmethod
    def from_rdb(cls, stream: Any, srv: Any = None, listpacks: list[tuple[bytes, bytes]] | None = None
                 ) -> StreamValue:
        """Build a value from the codec's ``Stream`` (server/rdb.py calls
        ``from_rdb(stream, srv)``).

        With ``listpacks`` -- the dump's (node key, listpack) pairs, given
        or found as ``stream.listpacks`` -- the nodes are taken as they
        are, tombstones included, as Redis loads them.  Without (the neutral model has live entries only) they are
        rebuilt by appending the entries as XADD would under the server's
        ``stream-node-max-*`` limits (4096/100 without a server).  Either
        way each listpack's allocation is its exact size, as after a load.
        Metadata and groups are restored as stored; PEL entries owned by no
        consumer keep a ``None`` owner."""
        s = cls()
        if listpacks is None:
            listpacks = getattr(stream, "listpacks", None)
        if listpacks is not None:
            for key, lp in listpacks:
                s._load_node(int.from_bytes(key, "big"), lp)
        else:
            max_bytes, max_entries = (4096, 100) if srv is None else _node_limits(srv)
            for e in stream.entries:
                fv: list[bytes] = []
                for f, v in e.fields:
                    fv.append(bytes(f))
                    fv.append(bytes(v))
                s.append(e.id.ms << 64 | e.id.seq, fv, max_bytes, max_entries)
        for node in s.nodes:
            node.alloc = _je(node.lp_bytes())
        s.length = stream.length
        s.last_id = stream.last_id.ms << 64 | stream.last_id.seq
        s.first_id = stream.first_id.ms << 64 | stream.first_id.seq
        s.max_deleted = stream.max_deleted_id.ms << 64 | stream.max_deleted_id.seq
        s.entries_added = stream.entries_added
        if stream.groups:
            s.groups = {}
            for sg in stream.groups:
                g = Group(sg.last_id.ms << 64 | sg.last_id.seq, sg.entries_read)
                for n in sg.pel:
                    g.pel[n.id.ms << 64 | n.id.seq] = NACK(n.delivery_time, n.delivery_count, None)
                for sc in sg.consumers:
                    cons = Consumer(bytes(sc.name), sc.seen_time)
                    for pid in sc.pel:
                        eid = pid.ms << 64 | pid.seq
                        nack = g.pel.get(eid)
                        if nack is not None:
                            nack.consumer = cons
                            cons.pel[eid] = nack
                    g.consumers[cons.name] = cons
                s.groups[bytes(sg.name)] = g
        return s


keyspace.TYPE_NAMES[StreamValue] = b"stream"


def _stream_or_none(v: Any) -> StreamValue | None:
    """checkType for streams: None stays None, another type is WRONGTYPE."""
    if v is None or type(v) is StreamValue:
        return v
    raise WRONGTYPE


def _node_limits(srv: Any) -> tuple[int, int]:
    cfg = srv.cfg
    return cfg.stream_node_max_bytes, cfg.stream_node_max_entries


def _must_obey(c: Client) -> bool:
    """mustObeyClient: the primary's link or the AOF loader (LIMIT ignored)."""
    return c.is_primary_link or c.srv.loading


# -- XADD / XTRIM ------------------------------------------------------------------------

TRIM_NONE = 0
TRIM_MAXLEN = 1
TRIM_MINID = 2


class _TrimArgs:
    """streamAddTrimArgs."""

    __slots__ = ("strategy", "maxlen", "minid", "approx", "limit", "arg_idx", "nomkstream", "id", "id_given",
                 "seq_given", "idpos")

    def __init__(self) -> None:
        self.strategy = TRIM_NONE
        self.maxlen = -1
        self.minid = 0
        self.approx = False
        self.limit = -1
        self.arg_idx = 0
        self.nomkstream = False
        self.id = 0
        self.id_given = False
        self.seq_given = True
        self.idpos = 0


def _parse_add_trim(c: Client, argv: list[bytes], xadd: bool) -> _TrimArgs:
    """streamParseAddOrTrimArgsOrReply: options up to the ID (XADD) or the
    end (XTRIM), checked in Redis's order."""
    a = _TrimArgs()
    limit_given = False
    n = len(argv)
    i = 2
    while i < n:
        more = n - 1 - i
        opt = argv[i]
        if xadd and opt == b"*":
            break
        lo = opt.lower()
        if lo == b"maxlen" and more:
            if a.strategy != TRIM_NONE:
                raise Err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
            a.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt == b"~":
                a.approx = True
                i += 1
            elif more >= 2 and nxt == b"=":
                i += 1
            v = string2ll(argv[i + 1])
            if v is None:
                raise ERR_NOT_INT
            if v < 0:
                raise Err("ERR The MAXLEN argument must be >= 0.")
            a.maxlen = v
            i += 1
            a.strategy = TRIM_MAXLEN
            a.arg_idx = i
        elif lo == b"minid" and more:
            if a.strategy != TRIM_NONE:
                raise Err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
            a.approx = False
            nxt = argv[i + 1]
            if more >= 2 and nxt == b"~":
                a.approx = True
                i += 1
            elif more >= 2 and nxt == b"=":
                i += 1
            a.minid = parse_strict_id(argv[i + 1])
            i += 1
            a.strategy = TRIM_MINID
            a.arg_idx = i
        elif lo == b"limit" and more:
            v = string2ll(argv[i + 1])
            if v is None:
                raise ERR_NOT_INT
            if v < 0:
                raise Err("ERR The LIMIT argument must be >= 0.")
            a.limit = v
            limit_given = True
            i += 1
        elif xadd and lo == b"nomkstream":
            a.nomkstream = True
        elif xadd:
            a.id, a.seq_given = parse_id(opt, 0, True, True)
            a.id_given = True
            break
        else:
            raise ERR_SYNTAX
        i += 1
    a.idpos = i
    if limit_given and a.strategy == TRIM_NONE:
        raise Err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    if not xadd and a.strategy == TRIM_NONE:
        raise Err("ERR syntax error, XTRIM must be called with a trimming strategy")
    if _must_obey(c):
        a.limit = 0
    elif limit_given:
        if not a.approx:
            raise Err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    elif a.approx:
        a.limit = 100 * c.srv.cfg.stream_node_max_entries
        if a.limit <= 0:
            a.limit = 10000
        elif a.limit > 1000000:
            a.limit = 1000000
    else:
        a.limit = 0
    return a


# XADD key * ...: what the parser gives for an auto ID with no option (read only)
_AUTO_ID = _TrimArgs()
_AUTO_ID.idpos = 2
_AUTO_ID.limit = 0


def _trim(s: StreamValue, a: _TrimArgs) -> int:
    if a.strategy == TRIM_MAXLEN:
        return s.trim(a.maxlen, None, a.approx, a.limit)
    return s.trim(0, a.minid, a.approx, a.limit)


def _rewrite_trim(c: Client, argv: list[bytes], s: StreamValue, a: _TrimArgs) -> list[bytes]:
    """streamRewriteApproxSpecifier + streamRewriteTrimArgument: ``~``
    becomes ``=`` and the threshold the exact outcome."""
    out = c.prop_argv if c.prop_argv is not None else list(argv)
    out[a.arg_idx - 1] = b"="
    if a.strategy == TRIM_MAXLEN:
        out[a.arg_idx] = b"%d" % s.length
    else:
        out[a.arg_idx] = id_bytes(s.first_edge(False))
    c.prop_argv = out
    return out


@command("xadd")
def xadd(c: Client, argv: list[bytes]) -> Any:
    """XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]]
    *|id field value [field value ...]: the new entry's ID (a null bulk
    with NOMKSTREAM on a missing key).  Recorded with the generated ID
    and, after ``~`` trimming, the exact threshold."""
    a = _AUTO_ID if argv[2] == b"*" else _parse_add_trim(c, argv, True)
    idpos = a.idpos
    nfv = len(argv) - idpos - 1
    if nfv < 2 or nfv & 1:
        raise arity_error(c.cmd)  # type: ignore[arg-type]
    if a.id_given and a.seq_given and a.id == 0:
        raise ERR_ID_ZERO
    db = c.db
    key = argv[1]
    s = _stream_or_none(db.lookup_write(key))
    srv = c.srv
    if s is None:
        if a.nomkstream:
            return None
        s = StreamValue()
        db.add(key, s)
    if s.last_id == ID_MAX:
        raise ERR_EXHAUSTED
    last = s.last_id
    if not a.id_given:
        ms = srv.now_ms
        eid = ms << 64 if ms > last >> 64 else last + 1
    elif a.seq_given:
        eid = a.id
        if eid <= last:
            raise ERR_ID_TOO_SMALL
    else:
        eid = a.id
        if eid >> 64 == last >> 64:
            if last & M64 == M64:
                raise ERR_ID_TOO_SMALL
            eid = last + 1
        elif eid <= last:
            raise ERR_ID_TOO_SMALL
    fv = argv[idpos + 1 :]
    tot = 0
    for x in fv:
        tot += len(x)
    if tot > STREAM_LISTPACK_MAX_SIZE:
        raise ERR_TOO_LARGE
    max_bytes, max_entries = _node_limits(srv)
    s.append(eid, fv, max_bytes, max_entries)
    reply = id_bytes(eid)
    if db.watched:
        db.signal_modified(key)
    _notify(srv, b"xadd", key, db.id)
    srv.dirty += 1
    if a.strategy != TRIM_NONE:
        if _trim(s, a):
            _notify(srv, b"xtrim", key, db.id)
        if a.approx:
            _rewrite_trim(c, argv, s, a)
    if not a.id_given or not a.seq_given:
        out = c.prop_argv if c.prop_argv is not None else list(argv)
        out[idpos] = reply
        c.prop_argv = out
    blocking.signal_key_as_ready(db, key)
    return reply


@command("xtrim")
def xtrim(c: Client, argv: list[bytes]) -> Any:
    """XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]: entries removed;
    ``~`` trims are recorded with ``=`` and the exact outcome."""
    a = _parse_add_trim(c, argv, False)
    db = c.db
    key = argv[1]
    s = _stream_or_none(db.lookup_write(key))
    if s is None:
        return 0
    deleted = _trim(s, a)
    if deleted:
        srv = c.srv
        _notify(srv, b"xtrim", key, db.id)
        if a.approx:
            _rewrite_trim(c, argv, s, a)
        if db.watched:
            db.signal_modified(key)
        srv.dirty += deleted
    return deleted


# -- XRANGE / XREVRANGE / XLEN / XDEL / XSETID ------------------------------------------


def _xrange(c: Client, argv: list[bytes], rev: bool) -> Any:
    """xrangeGenericCommand."""
    if rev:
        start, end = _range_bounds(argv[3], argv[2])
    else:
        start, end = _range_bounds(argv[2], argv[3])
    count = -1
    n = len(argv)
    j = 4
    while j < n:
        if argv[j].lower() == b"count" and n - j - 1 >= 1:
            count = string2ll(argv[j + 1])  # type: ignore[assignment]
            if count is None:
                raise ERR_NOT_INT
            if count < 0:
                count = 0
            j += 2
        else:
            raise ERR_SYNTAX
    s = _stream_or_none(c.db.lookup_read(argv[1]))
    if s is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return s.range(start, end, 0 if count == -1 else count, rev)


@command("xrange")
def xrange(c: Client, argv: list[bytes]) -> Any:
    """XRANGE key start end [COUNT count] (``(`` for exclusive bounds)."""
    return _xrange(c, argv, False)


@command("xrevrange")
def xrevrange(c: Client, argv: list[bytes]) -> Any:
    """XREVRANGE key end start [COUNT count]."""
    return _xrange(c, argv, True)


@command("xlen")
def xlen(c: Client, argv: list[bytes]) -> Any:
    """XLEN key: live entries."""
    s = _stream_or_none(c.db.lookup_read(argv[1]))
    return 0 if s is None else s.length


@command("xdel")
def xdel(c: Client, argv: list[bytes]) -> Any:
    """XDEL key id [id ...]: entries deleted (all IDs are checked first);
    the stream stays even when emptied; max-deleted-entry-id and the
    recorded first ID follow."""
    db = c.db
    key = argv[1]
    s = _stream_or_none(db.lookup_write(key))
    if s is None:
        return 0
    ids = [parse_strict_id(a) for a in argv[2:]]
    deleted = 0
    first_entry = False
    for eid in ids:
        if s.delete_entry(eid):
            if eid == s.first_id:
                first_entry = True
            if eid > s.max_deleted:
                s.max_deleted = eid
            deleted += 1
    if deleted:
        if s.length == 0:
            s.first_id = 0
        elif first_entry:
            s.first_id = s.first_edge(True)
        if db.watched:
            db.signal_modified(key)
        srv = c.srv
        _notify(srv, b"xdel", key, db.id)
        srv.dirty += deleted
    return deleted


@command("xsetid")
def xsetid(c: Client, argv: list[bytes]) -> Any:
    """XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]."""
    eid = parse_strict_id(argv[2])
    entries_added = -1
    max_xdel = 0
    n = len(argv)
    i = 3
    while i < n:
        more = n - 1 - i
        opt = argv[i].lower()
        if opt == b"entriesadded" and more:
            v = string2ll(argv[i + 1])
            if v is None:
                raise ERR_NOT_INT
            if v < 0:
                raise Err("ERR entries_added must be positive")
            entries_added = v
            i += 2
        elif opt == b"maxdeletedid" and more:
            max_xdel = parse_strict_id(argv[i + 1])
            if eid < max_xdel:
                raise Err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
            i += 2
        else:
            raise ERR_SYNTAX
    db = c.db
    key = argv[1]
    s = _stream_or_none(db.lookup_write(key))
    if s is None:
        raise ERR_NO_SUCH_KEY
    if s.length > 0:
        if eid < s.last_valid_id():
            raise Err("ERR The ID specified in XSETID is smaller than the target stream top item")
        if entries_added != -1 and s.length > entries_added:
            raise Err("ERR The entries_added specified in XSETID is smaller than the target stream length")
    s.last_id = eid
    if entries_added != -1:
        s.entries_added = entries_added
    if max_xdel:
        s.max_deleted = max_xdel
    srv = c.srv
    _notify(srv, b"xsetid", key, db.id)
    srv.dirty += 1
    return OK


# -- delivering to groups ----------------------------------------------------------------


def _create_consumer(c: Client, g: Group, name: bytes, key: bytes) -> Consumer:
    """streamCreateConsumer (SCC_DEFAULT): dirty and ``xgroup-createconsumer``."""
    srv = c.srv
    cons = Consumer(name, srv.now_ms)
    g.consumers[name] = cons
    srv.dirty += 1
    _notify(srv, b"xgroup-createconsumer", key, c.db.id)
    return cons


def _lookup_consumer(c: Client, g: Group, name: bytes, refresh: bool = True) -> Consumer | None:
    """streamLookupConsumer: refreshes seen-time unless SLC_NO_REFRESH."""
    cons = g.consumers.get(name)
    if cons is not None and refresh:
        cons.seen_time = c.srv.now_ms
    return cons


def _prop_xclaim(c: Client, key: bytes, g: Group, gname: bytes, idarg: bytes, nack: NACK) -> None:
    """streamPropagateXCLAIM: an idempotent XCLAIM for one PEL entry."""
    prop = c.srv.propagator
    if not prop.enabled:
        return
    prop.add(c.db.id, [
        b"XCLAIM", key, gname, nack.consumer.name, b"0", idarg,  # type: ignore[union-attr]
        b"TIME", b"%d" % nack.delivery_time, b"RETRYCOUNT", b"%d" % nack.delivery_count,
        b"FORCE", b"JUSTID", b"LASTID", id_bytes(g.last_id),
    ])


def _prop_setid(c: Client, key: bytes, g: Group, gname: bytes) -> None:
    """streamPropagateGroupID: ``XGROUP SETID key g <last id> ENTRIESREAD n``."""
    c.srv.propagator.add(c.db.id, [
        b"XGROUP", b"SETID", key, gname, id_bytes(g.last_id), b"ENTRIESREAD", b"%d" % g.entries_read,
    ])


def _prop_create_consumer(c: Client, key: bytes, gname: bytes, cname: bytes) -> None:
    """streamPropagateConsumerCreation."""
    c.srv.propagator.add(c.db.id, [b"XGROUP", b"CREATECONSUMER", key, gname, cname])


def _deliver(c: Client, s: StreamValue, start: int, count: int, g: Group, cons: Consumer, noack: bool,
             key: bytes, gname: bytes) -> list[list[Any]]:
    """streamReplyWithRange with a group: new entries from ``start``; the
    group's last ID and read counter advance, each entry joins the PELs
    (reassigned when another consumer had it) and is recorded as XCLAIM,
    or with NOACK the new last ID is recorded once."""
    out: list[list[Any]] = []
    now = c.srv.now_ms
    propagate_last = False
    pel = g.pel
    cpel = cons.pel
    for eid, fv in s.iter_range(start, ID_MAX):
        if eid > g.last_id:
            if g.entries_read != SCG_INVALID_ENTRIES_READ and not s.range_has_tombstones(eid):
                g.entries_read += 1
            elif s.entries_added:
                g.entries_read = s.estimate_distance(eid)
            g.last_id = eid
            if noack:
                propagate_last = True
        idb = id_bytes(eid)
        out.append([idb, fv])
        if not noack:
            nack = pel.get(eid)
            if nack is None:
                nack = NACK(now, 1, cons)
                pel[eid] = nack
                cpel[eid] = nack
            else:
                old = nack.consumer
                if old is not None:
                    old.pel.pop(eid, None)
                nack.consumer = cons
                nack.delivery_time = now
                nack.delivery_count = 1
                cpel[eid] = nack
            _prop_xclaim(c, key, g, gname, idb, nack)
        if len(out) == count:
            break
    if propagate_last:
        _prop_setid(c, key, g, gname)
    return out


def _consumer_history(c: Client, s: StreamValue, start: int, count: int, cons: Consumer) -> list[list[Any]]:
    """streamReplyWithRangeFromConsumerPEL: the consumer's own pending
    entries from ``start``; delivery time and count are bumped for entries
    still in the stream, deleted ones answer ``[id, nil]``."""
    out: list[list[Any]] = []
    now = c.srv.now_ms
    cpel = cons.pel
    for eid in list(cpel.irange(minimum=start)):
        if count and len(out) >= count:
            break
        fv = s.get_entry(eid)
        if fv is None:
            out.append([id_bytes(eid), NULL_ARRAY])
        else:
            out.append([id_bytes(eid), fv])
            nack = cpel[eid]
            nack.delivery_time = now
            nack.delivery_count += 1
    return out


# -- XREAD / XREADGROUP -------------------------------------------------------------------


class _ReadState:
    """What a blocked XREAD/XREADGROUP waits for (Redis's c->bpop)."""

    __slots__ = ("ids", "count", "group", "consumer", "noack")

    def __init__(self, ids: dict[bytes, int], count: int, group: bytes | None, consumer: bytes | None,
                 noack: bool) -> None:
        self.ids = ids
        self.count = count
        self.group = group
        self.consumer = consumer
        self.noack = noack


def _xread(c: Client, argv: list[bytes], xreadgroup: bool) -> Any:
    """xreadCommand: parse, resolve groups and IDs, serve what can be served
    at once (one ``[key, entries]`` per served key; a map in RESP3), else
    block or answer a null array."""
    if xreadgroup:
        c.prevent_prop = True
    timeout: int | None = None
    count = 0
    streams_arg = 0
    nstreams = 0
    noack = False
    gname: bytes | None = None
    cname: bytes | None = None
    n = len(argv)
    i = 1
    while i < n:
        more = n - i - 1
        o = argv[i].lower()
        if o == b"block" and more:
            if getattr(c, "is_script", False):
                # CLIENT_LUA (the scripting layer's client sets ``is_script``)
                raise Err(b"ERR " + _cs(argv[0]) + b" command is not allowed with BLOCK option from scripts")
            i += 1
            timeout = blocking.parse_timeout(argv[i], unit_seconds=False)
        elif o == b"count" and more:
            i += 1
            v = string2ll(argv[i])
            if v is None:
                raise ERR_NOT_INT
            count = v if v > 0 else 0
        elif o == b"streams" and more:
            streams_arg = i + 1
            nstreams = n - streams_arg
            if nstreams & 1:
                raise ERR_UNBALANCED  # 7.0's text, XREADGROUP included
            nstreams >>= 1
            break
        elif o == b"group" and more >= 2:
            if not xreadgroup:
                raise Err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
            gname = argv[i + 1]
            cname = argv[i + 2]
            i += 2
        elif o == b"noack":
            if not xreadgroup:
                raise Err("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
            noack = True
        else:
            raise ERR_SYNTAX
        i += 1
    if streams_arg == 0:
        raise ERR_SYNTAX
    if xreadgroup and gname is None:
        raise Err("ERR Missing GROUP option for XREADGROUP")
    db = c.db
    keys = argv[streams_arg : streams_arg + nstreams]
    ids: list[int] = []
    groups: list[Group] = []
    for k, a in zip(keys, argv[streams_arg + nstreams :], strict=True):
        s = _stream_or_none(db.lookup_read(k))
        if gname is not None:
            g = s.groups.get(gname) if s is not None and s.groups else None
            if g is None:
                raise Err(b"NOGROUP No such key '" + _cs(k) + b"' or consumer group '" + _cs(gname)
                          + b"' in XREADGROUP with GROUP option")
            groups.append(g)
        ca = a if len(a) == 1 else _cs(a)
        if ca == b"$":
            if xreadgroup:
                raise Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history "
                          "of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ "
                          "ID would just return an empty result set.")
            ids.append(s.last_id if s is not None else 0)
        elif ca == b">":
            if not xreadgroup:
                raise Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> "
                          "<consumer> option.")
            ids.append(ID_MAX)
        else:
            ids.append(parse_strict_id(a))
    served: list[tuple[bytes, list[list[Any]]]] = []
    srv = c.srv
    for idx, k in enumerate(keys):
        s = db.lookup_read(k)
        if s is None:
            continue
        gt = ids[idx]
        serve = False
        if gname is not None:
            g = groups[idx]
            history = gt != ID_MAX
            if history:
                serve = True
            elif s.length and s.last_valid_id() > g.last_id:
                serve = True
                gt = g.last_id
            if serve:
                # 7.0 looks the consumer up (or creates it) only when serving
                cons = _lookup_consumer(c, g, cname)  # type: ignore[arg-type]
                if cons is None:
                    cons = _create_consumer(c, g, cname, k)  # type: ignore[arg-type]
                    if noack:
                        _prop_create_consumer(c, k, gname, cname)  # type: ignore[arg-type]
                start = (gt + 1) & ID_MAX
                if history:
                    entries = _consumer_history(c, s, start, count, cons)
                else:
                    entries = _deliver(c, s, start, count, g, cons, noack, k, gname)
                served.append((k, entries))
                srv.dirty += 1
        elif s.length and s.last_valid_id() > gt:
            served.append((k, s.range((gt + 1) & ID_MAX, ID_MAX, count)))
    if served:
        if c.resp3:
            return Map(served)
        return [[k, e] for k, e in served]
    if timeout is not None:
        if not blocking.can_block(c):
            return NULL_ARRAY
        first_ids: dict[bytes, int] = {}
        for k, gt in zip(keys, ids, strict=True):
            first_ids.setdefault(bytes(k), gt)  # blockForKeys keeps a repeated key's first ID
        state = _ReadState(first_ids, count or XREAD_BLOCKED_DEFAULT_COUNT, gname, cname, noack)
        return blocking.block_for_keys(
            c, list(keys), timeout, b"stream", _serve_blocked, NULL_ARRAY, state,
            on_gone=_gone_reply if gname is not None else None,
        )
    return NULL_ARRAY


def _serve_blocked(c: Client, key: bytes, s: StreamValue) -> Any:
    """serveClientsBlockedOnStreamKey for one client: entries newer than its
    ID (for a group, than the group's last delivered ID, which earlier
    clients may have moved: they are served first); a vanished group is
    ``-NOGROUP``."""
    st: _ReadState = c.blocked.data
    gt = st.ids.get(key, 0)
    gname = st.group
    g: Group | None = None
    if gname is not None:
        g = s.groups.get(gname) if s.groups else None
        if g is None:
            return ERR_BLOCKED_NOGROUP
        gt = g.last_id
    if s.last_id <= gt:
        return blocking.NOT_SERVED
    start = (gt + 1) & ID_MAX
    if g is not None:
        cname: bytes = st.consumer  # type: ignore[assignment]
        cons = _lookup_consumer(c, g, cname)
        if cons is None:
            cons = _create_consumer(c, g, cname, key)
            if st.noack:
                _prop_create_consumer(c, key, gname, cname)  # type: ignore[arg-type]
        entries = _deliver(c, s, start, st.count, g, cons, st.noack, key, gname)  # type: ignore[arg-type]
    else:
        entries = s.range(start, ID_MAX, st.count)
    if c.resp3:
        return Map([(key, entries)])
    return [[key, entries]]


def _gone_reply(c: Client) -> Any:
    """unblockDeletedStreamReadgroupClients: the key an XREADGROUP waits on
    was deleted or replaced by another type."""
    return ERR_BLOCKED_GONE


@command("xread")
def xread(c: Client, argv: list[bytes]) -> Any:
    """XREAD [COUNT count] [BLOCK ms] STREAMS key [key ...] id [id ...]."""
    return _xread(c, argv, False)


@command("xreadgroup")
def xreadgroup(c: Client, argv: list[bytes]) -> Any:
    """XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK]
    STREAMS key [key ...] id [id ...]: ``>`` delivers new entries, another
    ID re-reads the consumer's pending history.  Never recorded itself."""
    return _xread(c, argv, True)


# -- XACK / XPENDING / XCLAIM / XAUTOCLAIM --------------------------------------------------


def _group_or_none(c: Client, key: bytes, gname: bytes) -> tuple[StreamValue | None, Group | None]:
    s = _stream_or_none(c.db.lookup_read(key))
    if s is None or not s.groups:
        return s, None
    return s, s.groups.get(gname)


def _nogroup(key: bytes, gname: bytes) -> Err:
    return Err(b"NOGROUP No such key '" + _cs(key) + b"' or consumer group '" + _cs(gname) + b"'")


@command("xack")
def xack(c: Client, argv: list[bytes]) -> Any:
    """XACK key group id [id ...]: entries removed from the PELs (IDs are
    only parsed when the key and group exist)."""
    s, g = _group_or_none(c, argv[1], argv[2])
    if s is None or g is None:
        return 0
    ids = [parse_strict_id(a) for a in argv[3:]]
    acked = 0
    pel = g.pel
    srv = c.srv
    for eid in ids:
        nack = pel.pop(eid, None)
        if nack is not None:
            if nack.consumer is not None:
                nack.consumer.pel.pop(eid, None)
            acked += 1
            srv.dirty += 1
    return acked


@command("xpending")
def xpending(c: Client, argv: list[bytes]) -> Any:
    """XPENDING key group [[IDLE min-idle] start end count [consumer]]:
    the summary ``[count, first, last, [[consumer, "n"], ...]]`` or the
    pending entries ``[id, consumer, idle ms, deliveries]``."""
    n = len(argv)
    if n != 3 and (n < 6 or n > 9):
        raise ERR_SYNTAX
    minidle = 0
    count = 0
    start = end = 0
    cname: bytes | None = None
    if n >= 6:
        sidx = 3
        if argv[3].lower() == b"idle":
            v = string2ll(argv[4])
            if v is None:
                raise ERR_NOT_INT
            minidle = v
            if n < 8:
                raise ERR_SYNTAX
            sidx += 2
        v = string2ll(argv[sidx + 2])
        if v is None:
            raise ERR_NOT_INT
        count = v if v > 0 else 0
        start, end = _range_bounds(argv[sidx], argv[sidx + 1])
        if sidx + 3 < n:
            cname = argv[sidx + 3]
    s, g = _group_or_none(c, argv[1], argv[2])
    if g is None:
        raise _nogroup(argv[1], argv[2])
    if n == 3:
        pel = g.pel
        if not pel:
            return [0, None, None, NULL_ARRAY]
        per = [
            [cons.name, b"%d" % len(cons.pel)] for cons in g.sorted_consumers() if cons.pel
        ]
        return [len(pel), id_bytes(pel.keys()[0]), id_bytes(pel.keys()[-1]), per]
    if cname is not None:
        cons = _lookup_consumer(c, g, cname, refresh=False)
        if cons is None:
            return []
        src = cons.pel
    else:
        src = g.pel
    now = c.srv.now_ms
    out: list[list[Any]] = []
    if count:
        for eid in src.irange(minimum=start, maximum=end):
            nack = src[eid]
            if minidle and now - nack.delivery_time < minidle:
                continue
            elapsed = now - nack.delivery_time
            owner = nack.consumer
            out.append([id_bytes(eid), owner.name if owner is not None else b"",
                        elapsed if elapsed > 0 else 0, nack.delivery_count])
            if len(out) == count:
                break
    return out


def _claim_nack(c: Client, g: Group, nack: NACK, eid: int, cons: Consumer) -> None:
    """Move a PEL entry to ``cons`` (both PELs)."""
    old = nack.consumer
    if old is not cons:
        if old is not None:
            old.pel.pop(eid, None)
        cons.pel[eid] = nack
        nack.consumer = cons


def _drop_nack(g: Group, eid: int, nack: NACK) -> None:
    g.pel.pop(eid, None)
    if nack.consumer is not None:
        nack.consumer.pel.pop(eid, None)


@command("xclaim")
def xclaim(c: Client, argv: list[bytes]) -> Any:
    """XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms]
    [TIME ms] [RETRYCOUNT n] [FORCE] [JUSTID] [LASTID id]: claimed entries
    (or IDs).  Entries gone from the stream leave the PEL.  Each change is
    recorded as an idempotent XCLAIM; a LASTID that only moved the group
    is recorded as XGROUP SETID."""
    c.prevent_prop = True
    key, gname = argv[1], argv[2]
    s, g = _group_or_none(c, key, gname)
    if s is None or g is None:
        raise _nogroup(key, gname)
    v = string2ll(argv[4])
    if v is None:
        raise Err("ERR Invalid min-idle-time argument for XCLAIM")
    minidle = v if v > 0 else 0
    n = len(argv)
    ids: list[int] = []
    j = 5
    while j < n:
        try:
            ids.append(parse_strict_id(argv[j]))
        except Err:
            break
        j += 1
    last_id_arg = j - 1
    srv = c.srv
    now = srv.now_ms
    retrycount = -1
    deliverytime = -1
    force = justid = False
    last_id = 0
    while j < n:
        more = n - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            v = string2ll(argv[j])
            if v is None:
                raise Err("ERR Invalid IDLE option argument for XCLAIM")
            deliverytime = now - v
        elif opt == b"time" and more:
            j += 1
            v = string2ll(argv[j])
            if v is None:
                raise Err("ERR Invalid TIME option argument for XCLAIM")
            deliverytime = v
        elif opt == b"retrycount" and more:
            j += 1
            v = string2ll(argv[j])
            if v is None:
                raise Err("ERR Invalid RETRYCOUNT option argument for XCLAIM")
            retrycount = v
        elif opt == b"lastid" and more:
            j += 1
            last_id = parse_strict_id(argv[j])
        else:
            raise Err(b"ERR Unrecognized XCLAIM option '" + _cs(argv[j]) + b"'")
        j += 1
    propagate_last = False
    if last_id > g.last_id:
        g.last_id = last_id
        propagate_last = True
    if deliverytime != -1:
        if deliverytime < 0 or deliverytime > now:
            deliverytime = now
    else:
        deliverytime = now
    cname = argv[3]
    cons: Consumer | None = None
    out: list[Any] = []
    pel = g.pel
    for k in range(5, last_id_arg + 1):
        eid = ids[k - 5]
        nack = pel.get(eid)
        fv = s.get_entry(eid)
        if fv is None:
            if nack is not None:
                _prop_xclaim(c, key, g, gname, argv[k], nack)
                propagate_last = False
                srv.dirty += 1
                _drop_nack(g, eid, nack)
            continue
        if force and nack is None:
            nack = NACK(now, 1, None)  # streamCreateNACK(NULL)
            pel[eid] = nack
        if nack is None:
            continue
        if nack.consumer is not None and minidle and now - nack.delivery_time < minidle:
            continue
        if cons is None:
            cons = _lookup_consumer(c, g, cname)
            if cons is None:
                cons = _create_consumer(c, g, cname, key)
        nack.delivery_time = deliverytime
        if retrycount >= 0:
            nack.delivery_count = retrycount
        elif not justid:
            nack.delivery_count += 1
        _claim_nack(c, g, nack, eid, cons)
        out.append(id_bytes(eid) if justid else [id_bytes(eid), fv])
        _prop_xclaim(c, key, g, gname, argv[k], nack)
        propagate_last = False
        srv.dirty += 1
    if propagate_last:
        _prop_setid(c, key, g, gname)
        srv.dirty += 1
    return out


@command("xautoclaim")
def xautoclaim(c: Client, argv: list[bytes]) -> Any:
    """XAUTOCLAIM key group consumer min-idle-time start [COUNT count]
    [JUSTID]: ``[next cursor, claimed, deleted IDs]``; pending entries no
    longer in the stream are dropped from the PEL and reported (7.0)."""
    c.prevent_prop = True
    key, gname = argv[1], argv[2]
    v = string2ll(argv[4])
    if v is None:
        raise Err("ERR Invalid min-idle-time argument for XAUTOCLAIM")
    minidle = v if v > 0 else 0
    start, startex = parse_interval_id(argv[5], 0)
    if startex:
        if start == ID_MAX:
            raise ERR_START_ID
        start += 1
    count = 100
    justid = False
    n = len(argv)
    j = 6
    max_count = ((1 << 63) - 1) // 16
    while j < n:
        more = n - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and more:
            v = string2ll(argv[j + 1])
            if v is None or v < 1 or v > max_count:
                raise Err("ERR COUNT must be > 0")
            count = v
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise ERR_SYNTAX
        j += 1
    s, g = _group_or_none(c, key, gname)
    if s is None or g is None:
        raise _nogroup(key, gname)
    if count * 16 >= TRANSIENT_ALLOC_LIMIT:
        # ztrymalloc of the deleted-IDs array failed
        raise ERR_COUNT_TOO_HIGH
    attempts = count * 10
    srv = c.srv
    now = srv.now_ms
    cname = argv[3]
    cons: Consumer | None = None
    pel = g.pel
    claimed: list[Any] = []
    deleted_ids: list[bytes] = []
    pos = pel.bisect_left(start)
    while True:
        if not attempts:
            break
        attempts -= 1
        if not count or pos >= len(pel):
            break
        eid = pel.keys()[pos]
        nack = pel[eid]
        fv = s.get_entry(eid)
        if fv is None:
            idb = id_bytes(eid)
            _prop_xclaim(c, key, g, gname, idb, nack)
            srv.dirty += 1
            _drop_nack(g, eid, nack)
            deleted_ids.append(idb)
            count -= 1
            continue
        pos += 1
        if minidle and now - nack.delivery_time < minidle:
            continue
        if cons is None:
            cons = _lookup_consumer(c, g, cname)
            if cons is None:
                cons = _create_consumer(c, g, cname, key)
        nack.delivery_time = now
        if not justid:
            nack.delivery_count += 1
        _claim_nack(c, g, nack, eid, cons)
        idb = id_bytes(eid)
        claimed.append(idb if justid else [idb, fv])
        count -= 1
        _prop_xclaim(c, key, g, gname, idb, nack)
        srv.dirty += 1
    cursor = id_bytes(pel.keys()[pos]) if pos < len(pel) else b"0-0"
    return [cursor, claimed, deleted_ids]


# -- XGROUP --------------------------------------------------------------------------------

_XGROUP_HELP = [
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
]


def _xgroup_prologue(c: Client, argv: list[bytes], mkstream: bool) -> tuple[StreamValue | None, Group | None]:
    """xgroupCommand's common part: the key (WRONGTYPE), the existence
    checks and the group for SETID/CREATECONSUMER/DELCONSUMER."""
    s = _stream_or_none(c.db.lookup_write(argv[2]))
    if mkstream:
        return s, None
    if s is None:
        raise ERR_XGROUP_NOKEY
    g = s.groups.get(argv[3]) if s.groups else None
    if g is None and argv[1].lower() in (b"setid", b"createconsumer", b"delconsumer"):
        raise Err(b"NOGROUP No such consumer group '" + _cs(argv[3]) + b"' for key name '" + _cs(argv[2]) + b"'")
    return s, g


@command("xgroup|create")
def xgroup_create(c: Client, argv: list[bytes]) -> Any:
    """XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n]."""
    n = len(argv)
    mkstream = False
    entries_read = SCG_INVALID_ENTRIES_READ
    if n >= 6:
        i = 5
        while i < n:
            opt = argv[i].lower()
            if opt == b"mkstream":
                mkstream = True
                i += 1
            elif opt == b"entriesread" and i + 1 < n:
                v = string2ll(argv[i + 1])
                if v is None:
                    raise ERR_NOT_INT
                if v < 0 and v != SCG_INVALID_ENTRIES_READ:
                    raise ERR_ENTRIESREAD
                entries_read = v
                i += 2
            else:
                raise subcommand_syntax_error(argv)
    s, _ = _xgroup_prologue(c, argv, mkstream)
    if n > 8:
        raise subcommand_syntax_error(argv)
    if _cs(argv[4]) == b"$":
        eid = s.last_id if s is not None else 0
    else:
        eid = parse_strict_id(argv[4])
    db = c.db
    key = argv[2]
    srv = c.srv
    if s is None:
        s = StreamValue()
        db.add(key, s)
    if s.groups is None:
        s.groups = {}
    gname = argv[3]
    if gname in s.groups:
        raise ERR_BUSYGROUP
    s.groups[bytes(gname)] = Group(eid, entries_read)
    srv.dirty += 1
    _notify(srv, b"xgroup-create", key, db.id)
    return OK


@command("xgroup|setid")
def xgroup_setid(c: Client, argv: list[bytes]) -> Any:
    """XGROUP SETID key group id|$ [ENTRIESREAD n]."""
    s, g = _xgroup_prologue(c, argv, False)
    n = len(argv)
    if n != 5 and n != 7:
        raise subcommand_syntax_error(argv)
    assert s is not None and g is not None
    if _cs(argv[4]) == b"$":
        eid = s.last_id
    else:
        eid = parse_id(argv[4])[0]
    entries_read = SCG_INVALID_ENTRIES_READ
    if n == 7:
        if argv[5].lower() != b"entriesread":
            raise subcommand_syntax_error(argv)
        v = string2ll(argv[6])
        if v is None:
            raise ERR_NOT_INT
        if v < 0 and v != SCG_INVALID_ENTRIES_READ:
            raise ERR_ENTRIESREAD
        entries_read = v
    g.last_id = eid
    g.entries_read = entries_read
    srv = c.srv
    srv.dirty += 1
    _notify(srv, b"xgroup-setid", argv[2], c.db.id)
    return OK


@command("xgroup|destroy")
def xgroup_destroy(c: Client, argv: list[bytes]) -> Any:
    """XGROUP DESTROY key group: 1 when destroyed; clients blocked in it get
    ``-NOGROUP``."""
    s, g = _xgroup_prologue(c, argv, False)
    if g is None:
        return 0
    del s.groups[argv[3]]  # type: ignore[union-attr]
    srv = c.srv
    db = c.db
    srv.dirty += 1
    _notify(srv, b"xgroup-destroy", argv[2], db.id)
    blocking.signal_key_as_ready(db, argv[2])
    return 1


@command("xgroup|createconsumer")
def xgroup_createconsumer(c: Client, argv: list[bytes]) -> Any:
    """XGROUP CREATECONSUMER key group consumer: 1 when created."""
    _, g = _xgroup_prologue(c, argv, False)
    assert g is not None
    if argv[4] in g.consumers:
        return 0
    _create_consumer(c, g, bytes(argv[4]), argv[2])
    return 1


@command("xgroup|delconsumer")
def xgroup_delconsumer(c: Client, argv: list[bytes]) -> Any:
    """XGROUP DELCONSUMER key group consumer: its pending entries, which
    leave the group PEL with it."""
    _, g = _xgroup_prologue(c, argv, False)
    assert g is not None
    cons = g.consumers.get(argv[4])
    if cons is None:
        return 0
    pending = len(cons.pel)
    for eid in cons.pel:
        g.pel.pop(eid, None)
    del g.consumers[argv[4]]
    srv = c.srv
    srv.dirty += 1
    _notify(srv, b"xgroup-delconsumer", argv[2], c.db.id)
    return pending


@command("xgroup|help")
def xgroup_help(c: Client, argv: list[bytes]) -> Any:
    """XGROUP HELP."""
    return help_reply("XGROUP", _XGROUP_HELP)


# -- XINFO ----------------------------------------------------------------------------------

_XINFO_HELP = [
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
]


def _xinfo_stream_of(c: Client, key: bytes) -> StreamValue:
    s = _stream_or_none(c.db.lookup_read(key))
    if s is None:
        raise ERR_NO_SUCH_KEY
    return s


@command("xinfo|help")
def xinfo_help(c: Client, argv: list[bytes]) -> Any:
    """XINFO HELP."""
    return help_reply("XINFO", _XINFO_HELP)


@command("xinfo|consumers")
def xinfo_consumers(c: Client, argv: list[bytes]) -> Any:
    """XINFO CONSUMERS key group: name, pending, idle of each consumer."""
    s = _xinfo_stream_of(c, argv[2])
    g = s.groups.get(argv[3]) if s.groups else None
    if g is None:
        raise Err(b"NOGROUP No such consumer group '" + _cs(argv[3]) + b"' for key name '" + _cs(argv[2]) + b"'")
    now = c.srv.now_ms
    out = []
    for cons in g.sorted_consumers():
        idle = now - cons.seen_time
        out.append(Map([(b"name", cons.name), (b"pending", len(cons.pel)), (b"idle", idle if idle > 0 else 0)]))
    return out


@command("xinfo|groups")
def xinfo_groups(c: Client, argv: list[bytes]) -> Any:
    """XINFO GROUPS key: each group's name, consumers, pending, last ID,
    read counter and lag (nil when unknown)."""
    s = _xinfo_stream_of(c, argv[2])
    out = []
    groups = s.groups or {}
    for name in sorted(groups):
        g = groups[name]
        er = g.entries_read
        out.append(Map([
            (b"name", name),
            (b"consumers", len(g.consumers)),
            (b"pending", len(g.pel)),
            (b"last-delivered-id", id_bytes(g.last_id)),
            (b"entries-read", er if er != SCG_INVALID_ENTRIES_READ else None),
            (b"lag", s.lag(g)),
        ]))
    return out


@command("xinfo|stream")
def xinfo_stream(c: Client, argv: list[bytes]) -> Any:
    """XINFO STREAM key [FULL [COUNT count]] (COUNT defaults to 10, 0 is
    everything)."""
    s = _xinfo_stream_of(c, argv[2])
    n = len(argv)
    full = False
    count = 10
    if n > 3:
        if argv[3].lower() != b"full" or (n != 4 and n != 6):
            raise subcommand_syntax_error(argv)
        full = True
        if n == 6:
            if argv[4].lower() != b"count":
                raise subcommand_syntax_error(argv)
            v = string2ll(argv[5])
            if v is None:
                raise ERR_NOT_INT
            count = v if v >= 0 else 10
    items: list[tuple[bytes, Any]] = [
        (b"length", s.length),
        (b"radix-tree-keys", len(s.nodes)),
        (b"radix-tree-nodes", s.rax_numnodes()),
        (b"last-generated-id", id_bytes(s.last_id)),
        (b"max-deleted-entry-id", id_bytes(s.max_deleted)),
        (b"entries-added", s.entries_added),
        (b"recorded-first-entry-id", id_bytes(s.first_id)),
    ]
    groups = s.groups or {}
    if not full:
        items.append((b"groups", len(groups)))
        first = s.range(0, ID_MAX, 1)
        last = s.range(0, ID_MAX, 1, rev=True)
        items.append((b"first-entry", first[0] if first else None))
        items.append((b"last-entry", last[0] if last else None))
        return Map(items)
    items.append((b"entries", s.range(0, ID_MAX, count)))
    glist = []
    for name in sorted(groups):
        g = groups[name]
        er = g.entries_read
        pending: list[list[Any]] = []
        for eid, nack in g.pel.items():
            if count and len(pending) >= count:
                break
            owner = nack.consumer
            pending.append([id_bytes(eid), owner.name if owner is not None else b"", nack.delivery_time,
                            nack.delivery_count])
        consumers = []
        for cons in g.sorted_consumers():
            cpending: list[list[Any]] = []
            for eid, nack in cons.pel.items():
                if count and len(cpending) >= count:
                    break
                cpending.append([id_bytes(eid), nack.delivery_time, nack.delivery_count])
            consumers.append(Map([
                (b"name", cons.name),
                (b"seen-time", cons.seen_time),
                (b"pel-count", len(cons.pel)),
                (b"pending", cpending),
            ]))
        glist.append(Map([
            (b"name", name),
            (b"last-delivered-id", id_bytes(g.last_id)),
            (b"entries-read", er if er != SCG_INVALID_ENTRIES_READ else None),
            (b"lag", s.lag(g)),
            (b"pel-count", len(g.pel)),
            (b"pending", pending),
            (b"consumers", consumers),
        ]))
    items.append((b"groups", glist))
    return Map(items)


def install(srv: Any) -> None:
    """Blocking XREAD/XREADGROUP need server/blocking.py's hooks; RDB
    loading and saving (server/rdb.py) learn the stream value class."""
    if getattr(srv, "on_ready_keys", None) is None:
        blocking.install(srv)
    from .. import rdb

    rdb.STREAM_TYPE = StreamValue


__all__ = [
    "StreamValue",
    "Group",
    "Consumer",
    "NACK",
    "id_bytes",
    "parse_id",
    "rax_nodes",
]
