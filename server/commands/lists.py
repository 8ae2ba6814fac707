"""List commands (t_list.c, quicklist.c, listpack.c of Redis 7.0.15).

LPUSH RPUSH LPUSHX RPUSHX LINSERT LLEN LINDEX LSET LPOP RPOP LRANGE LTRIM
LREM LPOS RPOPLPUSH LMOVE LMPOP and the blocking BLPOP BRPOP BRPOPLPUSH
BLMOVE BLMPOP (on top of server/blocking.py).

The value, :class:`ListValue`, keeps the elements in a ``deque`` and, next
to them, the shape Redis 7.0 would give the same list: a quicklist of
listpack nodes, each ``[count, bytes]``.  Pushes fill the end node while
``bytes + len(element) + 8`` stays within ``list-max-listpack-size``
(``_quicklistNodeAllowInsert``); pops, LTRIM and LREM shrink or drop nodes
without merging; LINSERT splits and merges nodes as ``_quicklistInsert``
does; LSET replaces in place.  The model is what OBJECT ENCODING (always
``quicklist`` in 7.0), MEMORY USAGE (``objectComputeSize`` samples the first
nodes), DEBUG OBJECT (``ql_*`` fields, ``serializedlength``) and the RDB
writer (:meth:`ListValue.node_chunks`, :func:`listpack_bytes`) read.  Node
compression (``list-compress-depth``) is not modelled: sizes are those of
uncompressed nodes.

Effects follow spec/propagation.md: a blocking command served at once is
recorded in its non-blocking form (BLPOP -> ``LPOP k``, BLMPOP/LMPOP ->
``LPOP k n`` with ``n`` what was popped, BLMOVE -> ``LMOVE``, BRPOPLPUSH ->
``RPOPLPUSH``); one served later is its own unit with the same forms
(``LMOVE s d left right`` in lower case, as Redis writes it).
Notifications keep Redis's order: ``lpush``/``rpush`` on the destination
before ``lpop``/``rpop`` on the source for LMOVE, the pop event before
``del`` when a list is emptied.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from ambry.persistence.rdb.containers import lp_entry_size as entry_size

from .. import blocking, keyspace
from ..args import ERR_SYNTAX
from ..client import Client
from ..keyspace import WRONGTYPE, Db
from ..protocol import string2ll
from ..registry import command
from ..reply import NULL_ARRAY, OK, Bulks, Err
from . import keys as keys_mod

NOTIFY_GENERIC = 1 << 2
NOTIFY_LIST = 1 << 4

LIST_HEAD = 0
LIST_TAIL = 1

LONG_MIN = -(1 << 63)

ERR_NOT_INT = Err("ERR value is not an integer or out of range")
ERR_NO_SUCH_KEY = Err("ERR no such key")
ERR_INDEX = Err("ERR index out of range")
ERR_POSITIVE = Err("ERR value is out of range, must be positive")
ERR_RANK_ZERO = Err(
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
ERR_COUNT_NEGATIVE = Err("ERR COUNT can't be negative")
ERR_MAXLEN_NEGATIVE = Err("ERR MAXLEN can't be negative")
ERR_NUMKEYS = Err("ERR numkeys should be greater than 0")
ERR_COUNT_ZERO = Err("ERR count should be greater than 0")

# -- listpack / quicklist geometry ----------------------------------------------------

LP_HDR_EOF = 7  # listpack header (6) + end byte (1)
SIZE_ESTIMATE_OVERHEAD = 8  # _quicklistNodeAllowInsert's per-entry guess
SIZE_SAFETY_LIMIT = 8192
OPTIMIZATION_LEVEL = (4096, 8192, 16384, 32768, 65536)
FILL_MAX = (1 << 15) - 1
QUICKLIST_STRUCT = 40  # sizeof(quicklist)
QUICKLIST_NODE = 40  # sizeof(quicklistNode)
ROBJ = 16

_INT_START = frozenset(b"-0123456789")


def _backlen(n: int) -> bytes:
    """lpEncodeBacklen: the entry length, 7 bits a byte, read right to left."""
    if n <= 127:
        return bytes((n,))
    if n < 16383:
        return bytes((n >> 7, (n & 127) | 128))
    if n < 2097151:
        return bytes((n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128))
    if n < 268435455:
        return bytes((n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128))
    return bytes((n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128,
                  (n & 127) | 128))


def _lp_entry(v: bytes) -> bytes:
    """One listpack entry as lpInsert writes it (lpEncodeString / integers)."""
    n = len(v)
    i = string2ll(v) if n <= 20 and n and v[0] in _INT_START else None
    if i is not None:
        if 0 <= i <= 127:
            enc = bytes((i,))
        elif -4096 <= i <= 4095:
            u = i & 0x1FFF
            enc = bytes((0xC0 | (u >> 8), u & 0xFF))
        elif -32768 <= i <= 32767:
            enc = b"\xf1" + struct.pack("<h", i)
        elif -8388608 <= i <= 8388607:
            enc = b"\xf2" + struct.pack("<i", i)[:3]
        elif -2147483648 <= i <= 2147483647:
            enc = b"\xf3" + struct.pack("<i", i)
        else:
            enc = b"\xf4" + struct.pack("<q", i)
    elif n < 64:
        enc = bytes((0x80 | n,)) + v
    elif n < 4096:
        enc = bytes((0xE0 | (n >> 8), n & 0xFF)) + v
    else:
        enc = b"\xf0" + struct.pack("<I", n) + v
    return enc + _backlen(len(enc))


def listpack_bytes(elements: Iterable[bytes]) -> bytes:
    """The listpack Redis 7.0 builds for ``elements`` (a quicklist node, or
    the blob an RDB ``QUICKLIST_2`` node stores)."""
    els = [bytes(v) for v in elements]
    body = b"".join(map(_lp_entry, els))
    total = 6 + len(body) + 1
    return struct.pack("<IH", total, min(len(els), 65535)) + body + b"\xff"


def _limits(fill: int) -> tuple[int, int]:
    """(size limit, count limit) of a node for ``list-max-listpack-size``
    (quicklistSetFill clamps it to -5..32767): negative fills limit the
    listpack's bytes, positive ones its entries (and 8 KB as a safety)."""
    if fill < 0:
        return OPTIMIZATION_LEVEL[-fill - 1], 1 << 30
    return SIZE_SAFETY_LIMIT, fill


def _lenenc(n: int) -> int:
    """rdbSaveLen's size."""
    if n < 1 << 6:
        return 1
    if n < 1 << 14:
        return 2
    if n <= 0xFFFFFFFF:
        return 5
    return 9


def _raw_string_len(blob: bytes, compress: bool = True) -> int:
    """rdbSaveRawString of a binary blob: with rdbcompression, LZF when
    longer than 20 bytes and it saves something (python-lzf passes
    ``max_length + 1``, hence ``n - 5`` for Redis's ``n - 4``)."""
    n = len(blob)
    if compress and n > 20:
        try:
            import lzf

            packed = lzf.compress(blob, n - 5)
        except ImportError:  # pragma: no cover - python-lzf is a dependency
            packed = None
        if packed:
            return 1 + _lenenc(len(packed)) + _lenenc(n) + len(packed)
    return _lenenc(n) + n


class ListValue:
    """A Redis list: elements in a deque plus the quicklist node model.

    ``nodes`` holds ``[count, listpack bytes]`` per quicklist node, head to
    tail; the counts add up to ``len(items)``.  Never empty once stored."""

    __slots__ = ("items", "nodes", "fill", "compress", "size_limit", "count_limit")

    redis_type = b"list"

    def __init__(self, fill: int = -2, compress: int = 0) -> None:
        self.items: deque[bytes] = deque()
        self.nodes: deque[list[int]] = deque()
        self.fill = max(-5, min(FILL_MAX, fill))
        self.compress = compress
        self.size_limit, self.count_limit = _limits(self.fill)

    @classmethod
    def from_elements(cls, elements: Iterable[bytes], fill: int = -2, compress: int = 0) -> ListValue:
        """A list built by RPUSHing ``elements`` (SORT ... STORE does that)."""
        lv = cls(fill, compress)
        lv.push_tail(elements)
        return lv

    @classmethod
    def from_nodes(cls, chunks: Iterable[Sequence[bytes]], fill: int = -2, compress: int = 0,
                   sizes: Sequence[int] | None = None) -> ListValue:
        """A list with the given node layout: rdbLoadObject keeps a
        quicklist's nodes as the dump has them (quicklistAppendListpack),
        whatever ``list-max-listpack-size`` says; empty nodes are skipped.
        ``sizes`` are the nodes' listpack sizes in bytes when known (the
        blob length of an RDB ``QUICKLIST_2`` node; a negative one is
        computed, as it is without ``sizes``)."""
        lv = cls.__new__(cls)  # every slot is set here, as __init__ does (a load builds many)
        if not -5 <= fill <= FILL_MAX:
            fill = max(-5, min(FILL_MAX, fill))
        lv.fill = fill
        lv.compress = compress
        lv.size_limit, lv.count_limit = _limits(fill)
        items: deque[bytes] = deque()
        nodes: deque[list[int]] = deque()
        lv.items = items
        lv.nodes = nodes
        for i, chunk in enumerate(chunks):
            if chunk:
                size = -1 if sizes is None else sizes[i]
                items.extend(chunk)
                nodes.append([len(chunk), size if size >= 0 else LP_HDR_EOF + sum(map(entry_size, chunk))])
        return lv

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"ListValue({list(self.items)!r})"

    # -- generic value protocol --------------------------------------------------

    def copy(self) -> ListValue:
        """quicklistDup: same elements, same nodes."""
        lv = ListValue.__new__(ListValue)
        lv.items = deque(self.items)
        lv.nodes = deque([n[0], n[1]] for n in self.nodes)
        lv.fill = self.fill
        lv.compress = self.compress
        lv.size_limit = self.size_limit
        lv.count_limit = self.count_limit
        return lv

    def encoding(self) -> bytes:
        return b"quicklist"

    def digest_kind(self) -> tuple[str, Iterable[bytes]]:
        return ("list", self.items)

    def sort_elements(self) -> Iterable[bytes]:
        return self.items

    def redis_memory_usage(self, samples: int) -> int:
        """objectComputeSize for a quicklist: robj + quicklist, plus the
        average of the first ``samples`` nodes (node struct + listpack
        allocation) times the number of nodes."""
        from .introspection import je_size

        if samples <= 0:
            samples = 1 << 62
        elesize = 0
        n = 0
        for node in self.nodes:
            elesize += QUICKLIST_NODE + je_size(node[1])
            n += 1
            if n >= samples:
                break
        asize = ROBJ + QUICKLIST_STRUCT
        if n:
            # size_t += double: the sum is taken in double, then truncated
            asize = int(asize + elesize / n * len(self.nodes))
        return asize

    def serialized_length(self, srv: Any = None) -> int:
        """rdbSavedObjectLen of a QUICKLIST_2 list (DEBUG OBJECT): per node
        its container and its listpack as a string; ``srv`` tells whether
        rdbcompression is on (default yes)."""
        compress = True if srv is None else bool(srv.cfg.rdbcompression)
        total = _lenenc(len(self.nodes))
        for chunk in self.node_chunks():
            total += 1 + _raw_string_len(listpack_bytes(chunk), compress)
        return total

    def debug_object_extra(self) -> str:
        """DEBUG OBJECT's quicklist fields."""
        nodes = self.nodes
        n = len(nodes)
        avg = len(self.items) / n if n else 0.0
        return (
            f" ql_nodes:{n} ql_avg_node:{avg:.2f} ql_listpack_max:{self.fill} "
            f"ql_compressed:{1 if self.compress else 0} "
            f"ql_uncompressed_size:{sum(node[1] for node in nodes)}"
        )

    def node_chunks(self) -> list[list[bytes]]:
        """The elements of each quicklist node, head to tail."""
        out = []
        it = iter(self.items)
        for node in self.nodes:
            out.append(list(islice(it, node[0])))
        return out

    # -- pushes and pops at the ends ----------------------------------------------

    def push_tail(self, values: Iterable[bytes]) -> None:
        """quicklistPushTail for each value."""
        items = self.items
        nodes = self.nodes
        lim = self.size_limit
        clim = self.count_limit
        tail = nodes[-1] if nodes else None
        for v in values:
            items.append(v)
            n = len(v)
            es = n + 2 if n < 64 and (not n or v[0] not in _INT_START) else entry_size(v)
            if tail is not None and tail[1] + n + SIZE_ESTIMATE_OVERHEAD <= lim and tail[0] < clim:
                tail[0] += 1
                tail[1] += es
            else:
                tail = [1, LP_HDR_EOF + es]
                nodes.append(tail)

    def push_head(self, values: Iterable[bytes]) -> None:
        """quicklistPushHead for each value."""
        items = self.items
        nodes = self.nodes
        lim = self.size_limit
        clim = self.count_limit
        head = nodes[0] if nodes else None
        for v in values:
            items.appendleft(v)
            n = len(v)
            es = n + 2 if n < 64 and (not n or v[0] not in _INT_START) else entry_size(v)
            if head is not None and head[1] + n + SIZE_ESTIMATE_OVERHEAD <= lim and head[0] < clim:
                head[0] += 1
                head[1] += es
            else:
                head = [1, LP_HDR_EOF + es]
                nodes.appendleft(head)

    def push(self, v: bytes, where: int) -> None:
        if where == LIST_HEAD:
            self.push_head((v,))
        else:
            self.push_tail((v,))

    def pop_head(self) -> bytes:
        v = self.items.popleft()
        node = self.nodes[0]
        if node[0] == 1:
            self.nodes.popleft()
        else:
            node[0] -= 1
            n = len(v)
            node[1] -= n + 2 if n < 64 and (not n or v[0] not in _INT_START) else entry_size(v)
        return v

    def pop_tail(self) -> bytes:
        v = self.items.pop()
        node = self.nodes[-1]
        if node[0] == 1:
            self.nodes.pop()
        else:
            node[0] -= 1
            n = len(v)
            node[1] -= n + 2 if n < 64 and (not n or v[0] not in _INT_START) else entry_size(v)
        return v

    def pop(self, where: int) -> bytes:
        return self.pop_head() if where == LIST_HEAD else self.pop_tail()

    def pop_many(self, where: int, count: int) -> list[bytes]:
        """listPopRange: up to ``count`` elements from one end, in pop order."""
        n = len(self.items)
        if count > n:
            count = n
        if where == LIST_HEAD:
            out = list(islice(self.items, count))
            self._del_range(0, count)
        else:
            out = list(islice(reversed(self.items), count))
            self._del_range(n - count, count)
        return out

    # -- positional operations ----------------------------------------------------

    def range(self, start: int, end: int) -> Bulks:
        """Elements ``start..end`` (inclusive, already clamped)."""
        items = self.items
        n = len(items)
        if start == 0 and end >= n - 1:
            return Bulks(items)
        if start > n - 1 - end:
            out = Bulks(islice(reversed(items), n - 1 - end, n - start))
            out.reverse()
            return out
        return Bulks(islice(items, start, end + 1))

    def index(self, i: int) -> bytes | None:
        n = len(self.items)
        if i < 0:
            i += n
        if 0 <= i < n:
            return self.items[i]
        return None

    def _locate(self, idx: int) -> tuple[int, int]:
        """(node number, offset in that node) of element ``idx``."""
        nodes = self.nodes
        n = len(self.items)
        if idx < n // 2:
            pos = 0
            for ni, node in enumerate(nodes):
                if idx < pos + node[0]:
                    return ni, idx - pos
                pos += node[0]
        else:
            pos = n
            last = len(nodes) - 1
            for k, node in enumerate(reversed(nodes)):
                pos -= node[0]
                if idx >= pos:
                    return last - k, idx - pos
        raise IndexError(idx)

    def replace(self, i: int, v: bytes) -> bool:
        """quicklistReplaceAtIndex (LSET): the listpack entry is replaced in place."""
        n = len(self.items)
        if i < 0:
            i += n
        if not 0 <= i < n:
            return False
        old = self.items[i]
        ni, _ = self._locate(i)
        node = self.nodes[ni]
        node[1] += entry_size(v) - entry_size(old)
        self.items[i] = v
        return True

    def _allow_insert(self, node: list[int] | None, vlen: int) -> bool:
        return (
            node is not None
            and node[1] + vlen + SIZE_ESTIMATE_OVERHEAD <= self.size_limit
            and node[0] < self.count_limit
        )

    def _allow_merge(self, a: list[int], b: list[int]) -> bool:
        """_quicklistNodeAllowMerge: the merged listpack loses one header."""
        return a[1] + b[1] - LP_HDR_EOF <= self.size_limit and a[0] + b[0] <= self.count_limit

    def insert(self, idx: int, v: bytes, after: bool) -> None:
        """_quicklistInsert next to element ``idx`` (LINSERT): into its node
        when there is room, else into the neighbour at an edge, else a new
        node at an edge, else the node is split and the pieces merged with
        their neighbours where they fit."""
        nodes = list(self.nodes)
        ni, off = self._locate(idx)
        node = nodes[ni]
        vlen = len(v)
        es = entry_size(v)
        full = not self._allow_insert(node, vlen)
        at_tail = after and off == node[0] - 1
        at_head = not after and off == 0
        nxt = nodes[ni + 1] if ni + 1 < len(nodes) else None
        prv = nodes[ni - 1] if ni > 0 else None
        if not full:
            node[0] += 1
            node[1] += es
        elif at_tail and self._allow_insert(nxt, vlen):
            assert nxt is not None
            nxt[0] += 1
            nxt[1] += es
        elif at_head and self._allow_insert(prv, vlen):
            assert prv is not None
            prv[0] += 1
            prv[1] += es
        elif at_tail or at_head:
            nodes.insert(ni + 1 if after else ni, [1, LP_HDR_EOF + es])
        else:
            start = idx - off
            elems = list(islice(self.items, start, start + node[0]))
            if after:
                keep, moved = elems[: off + 1], elems[off + 1:]
            else:
                keep, moved = elems[off:], elems[:off]
            node[0] = len(keep)
            node[1] = LP_HDR_EOF + sum(map(entry_size, keep))
            new = [len(moved) + 1, LP_HDR_EOF + sum(map(entry_size, moved)) + es]
            if after:
                nodes.insert(ni + 1, new)
                center = ni
            else:
                nodes.insert(ni, new)
                center = ni + 1
            self._merge_around(nodes, center)
        self.nodes = deque(nodes)
        self.items.insert(idx + 1 if after else idx, v)

    def _merge_around(self, nodes: list[list[int]], c: int) -> None:
        """_quicklistMergeNodes: (prev-prev, prev), (next, next-next),
        (prev, center), then (center or the merge, next)."""
        merge = self._allow_merge
        if c >= 2 and merge(nodes[c - 1], nodes[c - 2]):
            a, b = nodes[c - 2], nodes[c - 1]
            nodes[c - 2] = [a[0] + b[0], a[1] + b[1] - LP_HDR_EOF]
            del nodes[c - 1]
            c -= 1
        if c + 2 < len(nodes) and merge(nodes[c + 1], nodes[c + 2]):
            a, b = nodes[c + 1], nodes[c + 2]
            nodes[c + 1] = [a[0] + b[0], a[1] + b[1] - LP_HDR_EOF]
            del nodes[c + 2]
        target = c
        if c >= 1 and merge(nodes[c], nodes[c - 1]):
            a, b = nodes[c - 1], nodes[c]
            nodes[c - 1] = [a[0] + b[0], a[1] + b[1] - LP_HDR_EOF]
            del nodes[c]
            target = c - 1
        if target + 1 < len(nodes) and merge(nodes[target], nodes[target + 1]):
            a, b = nodes[target], nodes[target + 1]
            nodes[target] = [a[0] + b[0], a[1] + b[1] - LP_HDR_EOF]
            del nodes[target + 1]

    def _del_range(self, start: int, count: int) -> None:
        """quicklistDelRange: whole nodes go, partial ones shrink; no merging."""
        if count <= 0:
            return
        items = self.items
        end = start + count
        pos = 0
        kept: deque[list[int]] = deque()
        for node in self.nodes:
            nstart = pos
            pos += node[0]
            lo = max(nstart, start)
            hi = min(pos, end)
            if lo < hi:
                if lo == nstart and hi == pos:
                    continue
                node[0] -= hi - lo
                node[1] -= sum(map(entry_size, islice(items, lo, hi)))
            kept.append(node)
        self.nodes = kept
        n = len(items)
        if start == 0:
            if count * 4 < n:
                for _ in range(count):
                    items.popleft()
            else:
                self.items = deque(islice(items, count, None))
        elif end >= n:
            if count * 4 < n:
                for _ in range(count):
                    items.pop()
            else:
                self.items = deque(islice(items, start))
        else:
            lst = list(items)
            del lst[start:end]
            self.items = deque(lst)

    def trim(self, ltrim: int, rtrim: int) -> None:
        """LTRIM's two quicklistDelRange calls."""
        self._del_range(0, ltrim)
        if rtrim:
            self._del_range(len(self.items) - rtrim, rtrim)

    def remove(self, value: bytes, count: int) -> int:
        """LREM: delete up to ``count`` matches (0 = all) from the head, or
        from the tail for a negative count; entries go one by one
        (quicklistDelEntry), emptied nodes are dropped, none merged."""
        items = self.items
        n = len(items)
        positions: list[int] = []
        if count >= 0:
            for i, x in enumerate(items):
                if x == value:
                    positions.append(i)
                    if len(positions) == count:
                        break
        else:
            want = -count
            for k, x in enumerate(reversed(items)):
                if x == value:
                    positions.append(n - 1 - k)
                    if len(positions) == want:
                        break
            positions.reverse()
        if not positions:
            return 0
        es = entry_size(value)  # every match is the same element
        pos = 0
        j = 0
        kept: deque[list[int]] = deque()
        np_ = len(positions)
        for node in self.nodes:
            nend = pos + node[0]
            k = 0
            while j < np_ and positions[j] < nend:
                j += 1
                k += 1
            if k:
                node[0] -= k
                node[1] -= k * es
            if node[0]:
                kept.append(node)
            pos = nend
        self.nodes = kept
        if np_ <= 16:
            for i in reversed(positions):
                del items[i]
        else:
            drop = set(positions)
            self.items = deque(x for i, x in enumerate(items) if i not in drop)
        return np_


keyspace.TYPE_NAMES[ListValue] = b"list"


def _default_factory(elements: list[bytes]) -> ListValue:
    return ListValue.from_elements(elements)


keys_mod.LIST_FACTORY = _default_factory


def new_list(srv: Any) -> ListValue:
    """createQuicklistObject with the server's list-max-listpack-size and
    list-compress-depth (a list keeps the settings it was created with)."""
    cfg = srv.cfg
    return ListValue(cfg.list_max_listpack_size, cfg.list_compress_depth)


# -- helpers ----------------------------------------------------------------------------


def _notify(srv: Any, cls: int, event: bytes, key: bytes, dbid: int) -> None:
    """notifyKeyspaceEvent, skipped cheaply when notifications are off."""
    if srv.cfg.notify_keyspace_events:
        srv.notify(cls, event, key, dbid)


def _get_long(arg: bytes, err: Err = ERR_NOT_INT) -> int:
    """getLongFromObjectOrReply."""
    v = string2ll(arg)
    if v is None:
        raise err
    return v


def _get_positive(arg: bytes, err: Err) -> int:
    """getPositiveLongFromObjectOrReply with a message: the message for a
    non-integer too (getRangeLongFromObjectOrReply passes it down)."""
    v = string2ll(arg)
    if v is None or v < 0:
        raise err
    return v


def _get_range(arg: bytes, lo: int, err: Err) -> int:
    """getRangeLongFromObjectOrReply(lo, LONG_MAX, msg)."""
    v = string2ll(arg)
    if v is None or v < lo:
        raise err
    return v


def _where(arg: bytes) -> int:
    """getListPositionFromObjectOrReply: LEFT or RIGHT, any case."""
    a = arg.lower()
    if a == b"left":
        return LIST_HEAD
    if a == b"right":
        return LIST_TAIL
    raise ERR_SYNTAX


def _lookup_write_list(db: Db, key: bytes) -> ListValue | None:
    v = db.lookup_write(key)
    if v is not None and type(v) is not ListValue:
        raise WRONGTYPE
    return v


def _lookup_read_list(db: Db, key: bytes) -> ListValue | None:
    v = db.lookup_read(key)
    if v is not None and type(v) is not ListValue:
        raise WRONGTYPE
    return v


def _elements_removed(c: Client, db: Db, key: bytes, where: int, lv: ListValue, count: int) -> None:
    """listElementsRemoved: pop event, the key deleted when emptied (then
    ``del``), WATCH signalled, dirty += count."""
    srv = c.srv
    if srv.cfg.notify_keyspace_events:
        srv.notify(NOTIFY_LIST, b"lpop" if where == LIST_HEAD else b"rpop", key, db.id)
    if not lv.items:
        db.delete(key)
        _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
    elif db.watched:
        db.signal_modified(key)
    srv.dirty += count


def _range_bounds(start: int, end: int, llen: int) -> tuple[int, int] | None:
    """addListRangeReply's index arithmetic; None for an empty range."""
    if start < 0:
        start += llen
    if end < 0:
        end += llen
    if start < 0:
        start = 0
    if start > end or start >= llen:
        return None
    if end >= llen:
        end = llen - 1
    return start, end


# -- pushes -----------------------------------------------------------------------------


def _push(c: Client, argv: list[bytes], where: int, xx: bool) -> Any:
    """pushGenericCommand: create the list unless X, push every element,
    one ``lpush``/``rpush`` event."""
    db = c.db
    key = argv[1]
    lv = db.data.get(key)
    if lv is None or key in db.expires:
        lv = db.lookup_write(key)
    elif c.srv.lfu:
        db.touch(key)
    else:
        db.access[key] = c.srv.lru_clock
    if lv is None:
        if xx:
            return 0
        lv = new_list(c.srv)
        db.add(key, lv, False)
    elif type(lv) is not ListValue:
        raise WRONGTYPE
    values = argv[2:]
    if where == LIST_HEAD:
        lv.push_head(values)
    else:
        lv.push_tail(values)
    srv = c.srv
    srv.dirty += len(argv) - 2
    if db.watched:
        db.signal_modified(key)
    if srv.cfg.notify_keyspace_events:
        srv.notify(NOTIFY_LIST, b"lpush" if where == LIST_HEAD else b"rpush", key, db.id)
    return len(lv.items)


@command("lpush")
def lpush(c: Client, argv: list[bytes]) -> Any:
    """LPUSH key element [element ...]."""
    return _push(c, argv, LIST_HEAD, False)


@command("rpush")
def rpush(c: Client, argv: list[bytes]) -> Any:
    """RPUSH key element [element ...]."""
    return _push(c, argv, LIST_TAIL, False)


@command("lpushx")
def lpushx(c: Client, argv: list[bytes]) -> Any:
    """LPUSHX key element [element ...]: only onto an existing list."""
    return _push(c, argv, LIST_HEAD, True)


@command("rpushx")
def rpushx(c: Client, argv: list[bytes]) -> Any:
    """RPUSHX key element [element ...]: only onto an existing list."""
    return _push(c, argv, LIST_TAIL, True)


@command("linsert")
def linsert(c: Client, argv: list[bytes]) -> Any:
    """LINSERT key BEFORE|AFTER pivot element: the new length, 0 for a
    missing key, -1 when the pivot is not found."""
    where = argv[2].lower()
    if where == b"after":
        after = True
    elif where == b"before":
        after = False
    else:
        raise ERR_SYNTAX
    db = c.db
    key = argv[1]
    lv = _lookup_write_list(db, key)
    if lv is None:
        return 0
    try:
        idx = lv.items.index(argv[3])
    except ValueError:
        return -1
    lv.insert(idx, argv[4], after)
    srv = c.srv
    db.signal_modified(key)
    _notify(srv, NOTIFY_LIST, b"linsert", key, db.id)
    srv.dirty += 1
    return len(lv.items)


# -- reads ------------------------------------------------------------------------------


@command("llen")
def llen(c: Client, argv: list[bytes]) -> Any:
    """LLEN key."""
    lv = _lookup_read_list(c.db, argv[1])
    return 0 if lv is None else len(lv.items)


@command("lindex")
def lindex(c: Client, argv: list[bytes]) -> Any:
    """LINDEX key index: the key is looked up before the index is parsed."""
    lv = _lookup_read_list(c.db, argv[1])
    if lv is None:
        return None
    return lv.index(_get_long(argv[2]))


@command("lrange")
def lrange(c: Client, argv: list[bytes]) -> Any:
    """LRANGE key start stop (negative indexes count from the tail)."""
    start = _get_long(argv[2])
    end = _get_long(argv[3])
    lv = _lookup_read_list(c.db, argv[1])
    if lv is None:
        return []
    b = _range_bounds(start, end, len(lv.items))
    if b is None:
        return []
    return lv.range(b[0], b[1])


@command("lpos")
def lpos(c: Client, argv: list[bytes]) -> Any:
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]."""
    ele = argv[2]
    rank = 1
    count = -1
    maxlen = 0
    j = 3
    argc = len(argv)
    while j < argc:
        opt = argv[j].lower()
        more = argc - 1 - j
        if opt == b"rank" and more:
            j += 1
            rank = _get_long(argv[j])
            if rank == 0:
                raise ERR_RANK_ZERO
        elif opt == b"count" and more:
            j += 1
            count = _get_positive(argv[j], ERR_COUNT_NEGATIVE)
        elif opt == b"maxlen" and more:
            j += 1
            maxlen = _get_positive(argv[j], ERR_MAXLEN_NEGATIVE)
        else:
            raise ERR_SYNTAX
        j += 1
    from_tail = rank < 0
    if from_tail:
        # -LONG_MIN overflows back to LONG_MIN in C: every match qualifies.
        rank = -rank if rank != LONG_MIN else LONG_MIN
    lv = _lookup_read_list(c.db, argv[1])
    if lv is None:
        return [] if count != -1 else None
    items = lv.items
    llen = len(items)
    seq: Iterable[bytes] = reversed(items) if from_tail else items
    if maxlen:
        seq = islice(seq, maxlen)
    matches = 0
    out: list[int] = []
    for index, x in enumerate(seq):
        if x == ele:
            matches += 1
            if matches >= rank:
                pos = llen - index - 1 if from_tail else index
                if count == -1:
                    return pos
                out.append(pos)
                # (with rank LONG_MIN the C sum wraps negative: never stops)
                if count and rank != LONG_MIN and matches - rank + 1 >= count:
                    break
    return out if count != -1 else None


# -- writes in place --------------------------------------------------------------------


@command("lset")
def lset(c: Client, argv: list[bytes]) -> Any:
    """LSET key index element."""
    db = c.db
    key = argv[1]
    lv = _lookup_write_list(db, key)
    if lv is None:
        raise ERR_NO_SUCH_KEY
    index = _get_long(argv[2])
    if not lv.replace(index, argv[3]):
        raise ERR_INDEX
    srv = c.srv
    db.signal_modified(key)
    _notify(srv, NOTIFY_LIST, b"lset", key, db.id)
    srv.dirty += 1
    return OK


@command("ltrim")
def ltrim(c: Client, argv: list[bytes]) -> Any:
    """LTRIM key start stop: always an ``ltrim`` event and a WATCH signal,
    the key deleted when nothing is left."""
    start = _get_long(argv[2])
    end = _get_long(argv[3])
    db = c.db
    key = argv[1]
    lv = _lookup_write_list(db, key)
    if lv is None:
        return OK
    llen = len(lv.items)
    b = _range_bounds(start, end, llen)
    if b is None:
        ltrim_n, rtrim_n = llen, 0
    else:
        ltrim_n, rtrim_n = b[0], llen - b[1] - 1
    lv.trim(ltrim_n, rtrim_n)
    srv = c.srv
    _notify(srv, NOTIFY_LIST, b"ltrim", key, db.id)
    if not lv.items:
        db.delete(key)
        _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
    db.signal_modified(key)
    srv.dirty += ltrim_n + rtrim_n
    return OK


@command("lrem")
def lrem(c: Client, argv: list[bytes]) -> Any:
    """LREM key count element."""
    toremove = _get_long(argv[2])
    db = c.db
    key = argv[1]
    lv = _lookup_write_list(db, key)
    if lv is None:
        return 0
    removed = lv.remove(argv[3], toremove)
    srv = c.srv
    srv.dirty += removed
    if removed:
        _notify(srv, NOTIFY_LIST, b"lrem", key, db.id)
    if not lv.items:
        db.delete(key)
        _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
    if removed:
        db.signal_modified(key)
    return removed


# -- pops -------------------------------------------------------------------------------


def _pop(c: Client, argv: list[bytes], where: int) -> Any:
    """popGenericCommand: one element (bulk) or, with a count, an array."""
    hascount = len(argv) == 3
    count = 0
    if hascount:
        count = _get_positive(argv[2], ERR_POSITIVE)
    db = c.db
    key = argv[1]
    lv = _lookup_write_list(db, key)
    if lv is None:
        return NULL_ARRAY if hascount else None
    if hascount and not count:
        return []
    if not count:
        v = lv.pop_head() if where == LIST_HEAD else lv.pop_tail()
        srv = c.srv
        if lv.items and not srv.cfg.notify_keyspace_events:
            # listElementsRemoved's common case: no event, the key stays
            if db.watched:
                db.signal_modified(key)
            srv.dirty += 1
        else:
            _elements_removed(c, db, key, where, lv, 1)
        return v
    out = lv.pop_many(where, count)
    _elements_removed(c, db, key, where, lv, len(out))
    return out


@command("lpop")
def lpop(c: Client, argv: list[bytes]) -> Any:
    """LPOP key [count]."""
    if len(argv) > 3:
        raise Err("ERR wrong number of arguments for 'lpop' command")
    return _pop(c, argv, LIST_HEAD)


@command("rpop")
def rpop(c: Client, argv: list[bytes]) -> Any:
    """RPOP key [count]: with a count, tail first."""
    if len(argv) > 3:
        raise Err("ERR wrong number of arguments for 'rpop' command")
    return _pop(c, argv, LIST_TAIL)


def _pop_range_reply(c: Client, db: Db, key: bytes, lv: ListValue, where: int, count: int) -> list[Any]:
    """listPopRangeAndReplyWithKey: ``[key, [elements]]``."""
    out = lv.pop_many(where, count)
    _elements_removed(c, db, key, where, lv, len(out))
    return [key, out]


def _parse_mpop(argv: list[bytes], numkeys_idx: int) -> tuple[list[bytes], int, int]:
    """lmpopGenericCommand's parsing: numkeys, keys, LEFT|RIGHT, [COUNT n]."""
    numkeys = _get_range(argv[numkeys_idx], 1, ERR_NUMKEYS)
    where_idx = numkeys_idx + numkeys + 1
    if where_idx >= len(argv):
        raise ERR_SYNTAX
    where = _where(argv[where_idx])
    count = -1
    j = where_idx + 1
    argc = len(argv)
    while j < argc:
        if count == -1 and argv[j].lower() == b"count" and argc - 1 - j:
            j += 1
            count = _get_range(argv[j], 1, ERR_COUNT_ZERO)
        else:
            raise ERR_SYNTAX
        j += 1
    if count == -1:
        count = 1
    return argv[numkeys_idx + 1: where_idx], where, count


@command("lmpop")
def lmpop(c: Client, argv: list[bytes]) -> Any:
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: from the first
    non-empty list, recorded as ``LPOP|RPOP key n``; else a null array."""
    keys, where, count = _parse_mpop(argv, 1)
    db = c.db
    for key in keys:
        lv = _lookup_write_list(db, key)
        if lv is None:
            continue
        n = min(count, len(lv.items))
        reply = _pop_range_reply(c, db, key, lv, where, count)
        c.prop_argv = [b"LPOP" if where == LIST_HEAD else b"RPOP", key, b"%d" % n]
        return reply
    return NULL_ARRAY


# -- moves ------------------------------------------------------------------------------


def _move_push(c: Client, db: Db, dst: bytes, dobj: ListValue | None, value: bytes, where: int) -> None:
    """lmoveHandlePush: create the destination if needed, push, event."""
    if dobj is None:
        dobj = new_list(c.srv)
        db.add(dst, dobj, False)
    db.signal_modified(dst)
    dobj.push(value, where)
    _notify(c.srv, NOTIFY_LIST, b"lpush" if where == LIST_HEAD else b"rpush", dst, db.id)


def _move(c: Client, src: bytes, dst: bytes, wherefrom: int, whereto: int) -> Any:
    """lmoveGenericCommand: pop from ``src``, push onto ``dst`` (WRONGTYPE
    checked on both before anything changes); the same key rotates."""
    db = c.db
    sobj = _lookup_write_list(db, src)
    if sobj is None:
        return None
    dobj = _lookup_write_list(db, dst)
    value = sobj.pop(wherefrom)
    _move_push(c, db, dst, dobj, value, whereto)
    srv = c.srv
    _notify(srv, NOTIFY_LIST, b"lpop" if wherefrom == LIST_HEAD else b"rpop", src, db.id)
    if not sobj.items:
        db.delete(src)
        _notify(srv, NOTIFY_GENERIC, b"del", src, db.id)
    db.signal_modified(src)
    srv.dirty += 1
    return value


@command("lmove")
def lmove(c: Client, argv: list[bytes]) -> Any:
    """LMOVE source destination LEFT|RIGHT LEFT|RIGHT."""
    wherefrom = _where(argv[3])
    whereto = _where(argv[4])
    return _move(c, argv[1], argv[2], wherefrom, whereto)


@command("rpoplpush")
def rpoplpush(c: Client, argv: list[bytes]) -> Any:
    """RPOPLPUSH source destination."""
    return _move(c, argv[1], argv[2], LIST_TAIL, LIST_HEAD)


# -- blocking ---------------------------------------------------------------------------

# What a blocked list client does when served (first item of c.blocked.data).
_K_POP = 0  # BLPOP / BRPOP
_K_MPOP = 1  # BLMPOP
_K_MOVE = 2  # BLMOVE
_K_RPOPLPUSH = 3  # BRPOPLPUSH

_SIDE = (b"left", b"right")  # getStringObjectFromListPosition


def _serve(c: Client, key: bytes, lv: Any) -> Any:
    """serveClientBlockedOnList: the blocked command's non-blocking form
    against the list at ``key``, recorded as its own effect."""
    st = c.blocked
    kind, wherefrom, dst, whereto, count = st.data
    db = st.db
    srv = c.srv
    prop = srv.propagator
    popname = b"LPOP" if wherefrom == LIST_HEAD else b"RPOP"
    if kind == _K_POP:
        prop.add(db.id, [popname, key])
        value = lv.pop(wherefrom)
        _notify(srv, NOTIFY_LIST, b"lpop" if wherefrom == LIST_HEAD else b"rpop", key, db.id)
        if not lv.items:
            db.delete(key)
            _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
        return [key, value]
    if kind == _K_MPOP:
        prop.add(db.id, [popname, key, b"%d" % min(count, len(lv.items))])
        return _pop_range_reply(c, db, key, lv, wherefrom, count)
    # BLMOVE / BRPOPLPUSH: a destination of the wrong type is an error for
    # the served client and the element stays where it is.
    dobj = _lookup_write_list(db, dst)
    value = lv.pop(wherefrom)
    _move_push(c, db, dst, dobj, value, whereto)
    if kind == _K_RPOPLPUSH:
        prop.add(db.id, [b"RPOPLPUSH", key, dst])
    else:
        prop.add(db.id, [b"LMOVE", key, dst, _SIDE[wherefrom], _SIDE[whereto]])
    _notify(srv, NOTIFY_LIST, b"lpop" if wherefrom == LIST_HEAD else b"rpop", key, db.id)
    if not lv.items:
        db.delete(key)
        _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
    return value


def _blocking_pop(c: Client, keys: list[bytes], where: int, timeout: int, count: int) -> Any:
    """blockingPopGenericCommand: pop from the first non-empty list (WRONGTYPE
    for a key of another type met before one), else block."""
    db = c.db
    for key in keys:
        lv = _lookup_write_list(db, key)
        if lv is None:
            continue
        if count != -1:
            n = min(count, len(lv.items))
            reply = _pop_range_reply(c, db, key, lv, where, count)
            c.prop_argv = [b"LPOP" if where == LIST_HEAD else b"RPOP", key, b"%d" % n]
            return reply
        value = lv.pop(where)
        _elements_removed(c, db, key, where, lv, 1)
        c.prop_argv = [b"LPOP" if where == LIST_HEAD else b"RPOP", key]
        return [key, value]
    if not blocking.can_block(c):
        return NULL_ARRAY
    kind = _K_POP if count == -1 else _K_MPOP
    return blocking.block_for_keys(c, keys, timeout, b"list", _serve, NULL_ARRAY,
                                   (kind, where, None, 0, count))


@command("blpop")
def blpop(c: Client, argv: list[bytes]) -> Any:
    """BLPOP key [key ...] timeout."""
    timeout = blocking.parse_timeout(argv[-1])
    return _blocking_pop(c, argv[1:-1], LIST_HEAD, timeout, -1)


@command("brpop")
def brpop(c: Client, argv: list[bytes]) -> Any:
    """BRPOP key [key ...] timeout."""
    timeout = blocking.parse_timeout(argv[-1])
    return _blocking_pop(c, argv[1:-1], LIST_TAIL, timeout, -1)


@command("blmpop")
def blmpop(c: Client, argv: list[bytes]) -> Any:
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]: the
    timeout is parsed after the rest, as Redis does."""
    keys, where, count = _parse_mpop(argv, 2)
    timeout = blocking.parse_timeout(argv[1])
    return _blocking_pop(c, keys, where, timeout, count)


def _blocking_move(c: Client, argv: list[bytes], wherefrom: int, whereto: int, timeout: int, kind: int) -> Any:
    """blmoveGenericCommand: LMOVE when the source has elements (recorded
    in that form), else block -- whatever the destination holds."""
    src = argv[1]
    if _lookup_write_list(c.db, src) is None:
        if not blocking.can_block(c):
            return None
        return blocking.block_for_keys(c, [src], timeout, b"list", _serve, NULL_ARRAY,
                                       (kind, wherefrom, bytes(argv[2]), whereto, -1))
    reply = _move(c, src, argv[2], wherefrom, whereto)
    if kind == _K_RPOPLPUSH:
        c.prop_argv = [b"RPOPLPUSH", src, argv[2]]
    else:
        c.prop_argv = [b"LMOVE", src, argv[2], argv[3], argv[4]]
    return reply


@command("blmove")
def blmove(c: Client, argv: list[bytes]) -> Any:
    """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout."""
    wherefrom = _where(argv[3])
    whereto = _where(argv[4])
    timeout = blocking.parse_timeout(argv[5])
    return _blocking_move(c, argv, wherefrom, whereto, timeout, _K_MOVE)


@command("brpoplpush")
def brpoplpush(c: Client, argv: list[bytes]) -> Any:
    """BRPOPLPUSH source destination timeout."""
    timeout = blocking.parse_timeout(argv[3])
    return _blocking_move(c, argv, LIST_TAIL, LIST_HEAD, timeout, _K_RPOPLPUSH)


def install(srv: Any) -> None:
    """The blocking machinery for this server; SORT ... STORE builds lists
    with its list-max-listpack-size."""
    blocking.install(srv)

    def factory(elements: list[bytes]) -> ListValue:
        return ListValue.from_elements(elements, srv.cfg.list_max_listpack_size, srv.cfg.list_compress_depth)

    keys_mod.LIST_FACTORY = factory
