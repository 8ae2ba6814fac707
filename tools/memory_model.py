"""What a key from an RDB file costs in a Redis 7.0 server's memory.

``rdb-inspect memory`` (and ``bigkeys``, ``prefixes``, ``report``) estimate
for every key the number ``MEMORY USAGE key SAMPLES 0`` would answer on a
64-bit Redis 7.0 (jemalloc) right after loading the file.  The model follows
what ``rdbLoadObject`` builds and what ``objectComputeSize`` counts
(object.c), with every allocation rounded up to its jemalloc size class:

* every key: its ``dictEntry`` (24 bytes) and its name as an sds (header of
  1/3/5/9 bytes by length -- sds type 5 below 32 bytes, except the empty
  name -- plus the bytes and a NUL);
* strings: 16 bytes (``robj``) for an integer (``OBJ_ENCODING_INT``: a
  canonical integer of at most 20 characters); one allocation of robj +
  sdshdr8 + bytes + NUL for ``embstr`` (at most 44 bytes); robj + a separate
  sds for ``raw``;
* hashes and zsets in ``listpack`` encoding, and sets in ``intset`` encoding:
  robj + the listpack/intset allocation, computed byte for byte from the
  elements (listpack entry encodings, ``%.17g``-or-integer zset scores,
  intset width);
* ``hashtable`` sets and hashes: robj + dict (56) + 8 bytes per bucket (the
  table is pre-sized to the next power of two >= the length on load) + per
  element a dictEntry and the sds of the member (field and value);
* ``skiplist`` zsets: robj + zset + zskiplist + dict + buckets (pre-sized,
  or, for a listpack converted on load, grown one add at a time with the
  incremental rehash's two tables) + the 32-level header node, and per
  member its sds, a dictEntry and a skiplist node of 24 + 16 * level bytes.  The level is random in Redis
  (``zslRandomLevel``), so the node is counted at the mean size over the
  level distribution (P(level = k) = 0.75 * 0.25^(k-1)): MEMORY USAGE on a
  real server differs from the model by the luck of the draw (well under
  1% for zsets of a few hundred members);
* lists (always ``quicklist`` in 7.0): robj + quicklist (40) + per node 40
  bytes and its listpack allocation.  A load keeps a quicklist's nodes, but
  the reader gives the elements, not the node boundaries, so the nodes are
  cut again the way ``quicklistPushTail`` cuts them, with the first
  ``list-max-listpack-size`` that yields the file's node count (exactly the
  file's layout for lists built by pushes; even runs otherwise);
* streams: robj + stream (80), the radix tree of listpack nodes counted as
  ``streamRadixTreeMemoryUsage`` does (16 bytes per element and 244 per rax
  node, the node count of the canonical compressed radix tree of the
  128-bit master IDs), the listpacks' allocations, and for each
  consumer group its struct (40), its PEL's radix tree and NACKs (24 each),
  each consumer's struct (24), name and PEL tree.  Node boundaries are
  recomputed from the live entries (``stream-node-max-bytes`` /
  ``-entries`` limits that yield the file's node count); entries deleted by
  XDEL or an exact XTRIM but still held in a listpack are not in the
  file's decoded form and are not counted (a few bytes each);
* module values: the serialized size (Redis asks the module).

Encodings on load follow 7.0's rdbLoadObject: a hashtable-typed hash or set
small enough becomes a listpack or intset, a listpack or ziplist over the
``*-max-listpack-entries`` threshold becomes a hashtable/skiplist, a
plain-typed zset within both thresholds becomes a listpack, legacy ziplist
and zipmap values become listpacks, and 7.2+ types (set listpack, hash
field TTLs) are modelled as what 7.0 would hold for the same data.
:class:`LoadConfig` carries the thresholds (Redis's defaults unless told).

Checked against ``MEMORY USAGE ... SAMPLES 0`` of redis-server 7.0.15 after
it loaded the same file (tests/test_rdb_inspect.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from itertools import chain
from operator import itemgetter
from typing import Any, Final

from ambry.persistence.rdb import Key, Stream, StreamID
from ambry.persistence.rdb.encoding import canonical_int

__all__ = [
    "LoadConfig",
    "KeyMemory",
    "estimate",
    "loaded_encoding",
    "element_count",
    "je_size",
    "sds_alloc",
    "rax_nodes",
    "CONFIG_DIRECTIVES",
]

ROBJ: Final = 16
DICT_ENTRY: Final = 24
DICT_STRUCT: Final = 56
POINTER: Final = 8
EMBSTR_LIMIT: Final = 44
QUICKLIST_STRUCT: Final = 40
QUICKLIST_NODE: Final = 40
ZSET_STRUCT: Final = 16
ZSKIPLIST_STRUCT: Final = 32
INTSET_HEADER: Final = 8
STREAM_STRUCT: Final = 80
STREAM_CG: Final = 40
STREAM_NACK: Final = 24
STREAM_CONSUMER: Final = 24
RAX_ELE: Final = 16  # sizeof(streamID) per element
RAX_NODE: Final = 4 + 8 * 30  # sizeof(raxNode) + the fixed per-node charge of object.c
LP_OVERHEAD: Final = 7  # listpack header (6) + end byte
SIZE_SAFETY_LIMIT: Final = 8192
SIZE_ESTIMATE_OVERHEAD: Final = 8
OPTIMIZATION_LEVEL: Final = (4096, 8192, 16384, 32768, 65536)
STREAM_LISTPACK_MAX_SIZE: Final = 1 << 30


def je_size(n: int) -> int:
    """The jemalloc 5 size class serving a request of ``n`` bytes (what
    ``zmalloc_size`` answers): 8, then 16-byte steps to 128, then four
    classes per power of two."""
    if n <= 8:
        return 8
    if n <= 128:
        return (n + 15) & ~15
    delta = 1 << ((n - 1).bit_length() - 3)
    return (n + delta - 1) & ~(delta - 1)


def _sds_hdr(n: int) -> int:
    """sdsHdrSize(sdsReqType(n)), with type 5 promoted to 8 for "" as
    ``_sdsnewlen`` does."""
    if n < 32:
        return 1 if n else 3
    if n < 256:
        return 3
    if n < 65536:
        return 5
    if n < 1 << 32:
        return 9
    return 17


def sds_alloc(n: int) -> int:
    """``sdsZmallocSize`` of a fresh sds of ``n`` bytes (sdsnewlen)."""
    return je_size(_sds_hdr(n) + n + 1)


# sds_alloc for short lengths, the common case, without the arithmetic.
_SDS_SMALL: Final = [sds_alloc(i) for i in range(256)]


def _sds(n: int) -> int:
    return _SDS_SMALL[n] if n < 256 else sds_alloc(n)


def _string_value(v: bytes) -> tuple[int, str]:
    """objectComputeSize and OBJECT ENCODING of a string value as
    tryObjectEncoding leaves it after the load."""
    n = len(v)
    if n <= 20 and canonical_int(v) is not None:
        return ROBJ, "int"
    if n <= EMBSTR_LIMIT:
        return je_size(ROBJ + 3 + n + 1), "embstr"
    return ROBJ + sds_alloc(n), "raw"


# -- listpack sizes ----------------------------------------------------------------


def _backlen(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16384 else 3 if n < 2097152 else 4 if n < 268435456 else 5


def _lp_int(v: int) -> int:
    if 0 <= v <= 127:
        return 2
    if -4096 <= v <= 4095:
        return 3
    if -32768 <= v <= 32767:
        return 4
    if -8388608 <= v <= 8388607:
        return 5
    if -2147483648 <= v <= 2147483647:
        return 6
    return 10


def lp_entry_size(s: bytes) -> int:
    """Bytes of the listpack entry Redis writes for ``s`` (lpAppend: a
    canonical integer gets an integer encoding)."""
    n = len(s)
    if n < 21:
        if n and (48 <= s[0] <= 57 or s[0] == 45):
            v = canonical_int(s)
            if v is not None:
                return _lp_int(v)
        return n + 2
    if n < 64:
        return n + 2
    if n < 4096:
        return n + 2 + _backlen(n + 2)
    return n + 5 + _backlen(n + 5)


_POW_2_52: Final = 4503599627370496.0


def _score_text(score: float) -> bytes:
    """The text 7.0's d2string gives a score kept in a listpack: an integral
    value within +-2^52 as an integer, otherwise ``%.17g`` (inf as "inf")."""
    if score != score:
        return b"nan"
    if score == float("inf"):
        return b"inf"
    if score == float("-inf"):
        return b"-inf"
    if -_POW_2_52 < score < _POW_2_52 and score == int(score):
        return b"%d" % int(score)
    return b"%.17g" % score


def _score_entry_size(score: float) -> int:
    size = _SMALL_SCORE_SIZES.get(score)
    if size is None:
        return lp_entry_size(_score_text(score))
    return size


#: The listpack entry size of each small integral score (most real scores).
_SMALL_SCORE_SIZES: Final[dict[float, int]] = {
    float(i): lp_entry_size(b"%d" % i) for i in range(-4096, 4096)}


# -- radix tree ---------------------------------------------------------------------


def rax_nodes(keys: list[int], width: int = 16) -> int:
    """``rax->numnodes`` of a Redis radix tree holding ``keys`` (sorted,
    distinct, ``width``-byte big-endian integers).

    Insert-only raxes are the compressed trie of their keys: the head, every
    child of a branching node, and the node after each chain of
    single-child bytes (a branching node or a key's leaf).  With the
    adjacent longest-common-prefixes ``lcp`` of the sorted keys: nodes =
    1 + B + (n - 1) + leaves whose deepest neighbour LCP is < width - 1 +
    branching nodes whose nearest branching ancestor is more than one byte
    up, B being the number of distinct branching nodes."""
    n = len(keys)
    if n == 0:
        return 1
    nbits = width * 8
    lcps = [(nbits - (keys[i] ^ keys[i + 1]).bit_length()) >> 3 for i in range(n - 1)]
    total = 1 + (n - 1)
    last = width - 1
    prev = -1
    for i in range(n):
        nxt = lcps[i] if i < n - 1 else -1
        if (prev if prev > nxt else nxt) < last:
            total += 1  # the leaf ends a compressed chain
        prev = nxt
    stack: list[int] = []
    for h in lcps + [-1]:
        while stack and stack[-1] > h:
            d = stack.pop()
            parent = stack[-1] if stack else -1
            if h > parent:
                parent = h
            total += 1  # a distinct branching node (B)
            if d >= 1 and parent < d - 1:
                total += 1  # ... reached through a compressed chain
        if h >= 0 and (not stack or stack[-1] < h):
            stack.append(h)
    return total


def _rax_usage(ids: list[StreamID]) -> int:
    """streamRadixTreeMemoryUsage of a rax keyed by stream IDs (7.0
    overwrites its ``sizeof(*rax)`` term, so it is not counted)."""
    keys = sorted({(ms << 64) | seq for ms, seq in ids})
    return len(ids) * RAX_ELE + rax_nodes(keys) * RAX_NODE


# -- configuration -------------------------------------------------------------------


@dataclass(slots=True)
class LoadConfig:
    """The redis.conf directives that decide encodings when 7.0 loads a file
    (names with ``_`` for ``-``), at Redis 7.0's defaults."""

    hash_max_listpack_entries: int = 512
    hash_max_listpack_value: int = 64
    set_max_intset_entries: int = 512
    zset_max_listpack_entries: int = 128
    zset_max_listpack_value: int = 64
    list_max_listpack_size: int = -2
    stream_node_max_bytes: int = 4096
    stream_node_max_entries: int = 100

    def set(self, directive: str, value: str) -> None:
        """Apply ``hash-max-listpack-entries 4``-style settings (the 6.x
        ``ziplist`` spellings are accepted as aliases, as Redis does)."""
        name = directive.strip().lower().replace("-", "_").replace("ziplist", "listpack")
        if name not in CONFIG_DIRECTIVES:
            raise ValueError(f"unknown directive {directive!r} (known: "
                             f"{', '.join(d.replace('_', '-') for d in CONFIG_DIRECTIVES)})")
        try:
            setattr(self, name, int(value))
        except ValueError:
            raise ValueError(f"{directive} needs an integer, not {value!r}") from None


CONFIG_DIRECTIVES: Final = tuple(f.name for f in fields(LoadConfig))


# -- the estimate -------------------------------------------------------------------


@dataclass(slots=True)
class KeyMemory:
    """One key's estimate: ``memory`` is what ``MEMORY USAGE key SAMPLES 0``
    would answer (value + key name + dictEntry), ``encoding`` OBJECT ENCODING
    after the load, ``elements`` the length (bytes for a string, entries for
    a stream), ``largest`` the longest element (or field/value) in bytes."""

    memory: int
    encoding: str
    elements: int
    largest: int


def _key_overhead(key: bytes) -> int:
    return _sds(len(key)) + DICT_ENTRY


def _sampled(base: int, elesize: int, n: int) -> int:
    """``asize += (double)elesize/samples*n`` with every element sampled:
    the average is taken in double precision and the sum truncated, which
    can lose a byte (e.g. 28215 for 28216 bytes of quicklist nodes)."""
    if not n:
        return base
    return int(base + elesize / n * n)


def _slots(n: int) -> int:
    """Buckets of a dict pre-sized for ``n`` entries (_dictNextExp, min 4)."""
    return 4 if n <= 4 else 1 << (n - 1).bit_length()


def _intset_width(values: list[int]) -> int:
    lo = min(values)
    hi = max(values)
    if lo >= -32768 and hi <= 32767:
        return 2
    if lo >= -2147483648 and hi <= 2147483647:
        return 4
    return 8


def _as_ints(members: list[bytes]) -> list[int] | None:
    """The members as integers when every one is (string2ll), else None."""
    out = []
    for m in members:
        v = canonical_int(m)
        if v is None:
            return None
        out.append(v)
    return out


def _set_value(ev: Key, cfg: LoadConfig) -> tuple[int, str, int]:
    members: list[bytes] = ev.value  # type: ignore[assignment]
    n = len(members)
    largest = max(map(len, members)) if members else 0
    if n <= cfg.set_max_intset_entries:
        ints = _as_ints(members)
        if ints is not None and n:
            return ROBJ + je_size(INTSET_HEADER + _intset_width(ints) * n), "intset", largest
    ele = DICT_ENTRY * n
    for m in members:
        ele += _sds(len(m))
    return _sampled(ROBJ + DICT_STRUCT + POINTER * _slots(n), ele, n), "hashtable", largest


def _hash_value(ev: Key, cfg: LoadConfig) -> tuple[int, str, int]:
    pairs: list[tuple[bytes, bytes]] = ev.value  # type: ignore[assignment]
    n = len(pairs)
    largest = 0
    for f, v in pairs:
        lf = len(f)
        lv = len(v)
        if lf > largest:
            largest = lf
        if lv > largest:
            largest = lv
    t = ev.rdb_type
    listpack = n <= cfg.hash_max_listpack_entries
    if listpack and t not in (13, 16) and largest > cfg.hash_max_listpack_value:
        # plain hashes (and zipmaps, 7.2+ TTL hashes) check every length on load
        listpack = False
    if listpack:
        total = LP_OVERHEAD
        for f, v in pairs:
            total += lp_entry_size(f) + lp_entry_size(v)
        return ROBJ + je_size(total), "listpack", largest
    ele = DICT_ENTRY * n
    for f, v in pairs:
        ele += _sds(len(f)) + _sds(len(v))
    return _sampled(ROBJ + DICT_STRUCT + POINTER * _slots(n), ele, n), "hashtable", largest


# Mean zmalloc_size of a skiplist node of a random level (zslRandomLevel:
# P(level = k) = 0.75 * 0.25^(k-1), capped at 32; node = 24 + 16 * level).
_ZSL_NODE_MEAN: Final = sum(
    (0.75 * 0.25 ** (k - 1) if k < 32 else 0.25 ** 31) * je_size(24 + 16 * k) for k in range(1, 33))
_ZSL_HEADER: Final = je_size(24 + 16 * 32)


def _grown_slots(n: int) -> int:
    """Buckets of a dict grown one dictAdd at a time (no pre-sizing), as
    zsetConvert builds a skiplist's dict: it doubles when full, and the
    incremental rehash then moves one non-empty bucket per add, so right
    after a doubling both tables are counted (dictSlots = old + new).  The
    rehash is taken as finished once the adds since the doubling reach the
    expected number of non-empty old buckets, S * (1 - (1 - 1/S)^S)."""
    size = 4
    while n > size:
        size *= 2
    if size == 4:
        return 4
    old = size // 2
    steps = n - old - 1
    return size if steps >= old * (1 - (1 - 1 / old) ** old) else size + old


def _zset_value(ev: Key, cfg: LoadConfig) -> tuple[int, str, int]:
    pairs: list[tuple[bytes, float]] = ev.value  # type: ignore[assignment]
    n = len(pairs)
    largest = max((len(m) for m, _ in pairs), default=0)
    if n <= cfg.zset_max_listpack_entries and (ev.rdb_type in (12, 17) or largest <= cfg.zset_max_listpack_value):
        total = LP_OVERHEAD
        for m, s in pairs:
            total += lp_entry_size(m) + _score_entry_size(s)
        return ROBJ + je_size(total), "listpack", largest
    # A listpack converted on load grows its dict; a skiplist from the file is pre-sized.
    slots = _grown_slots(n) if ev.rdb_type in (12, 17) else _slots(n)
    size = ROBJ + ZSET_STRUCT + ZSKIPLIST_STRUCT + DICT_STRUCT + POINTER * slots + _ZSL_HEADER
    ele = 0
    for m, _ in pairs:
        ele += _sds(len(m))
    size += ele + int(n * (DICT_ENTRY + _ZSL_NODE_MEAN))
    return size, "skiplist", largest


def quicklist_node_sizes(items: list[bytes], fill: int) -> list[int]:
    """The listpack bytes of each node ``quicklistPushTail`` makes when the
    items are pushed in order (7.0: ``fill`` < 0 limits a node's bytes to
    4/8/16/32/64 KB, ``fill`` > 0 its count, with the 8 KB safety limit)."""
    if fill > 1 << 15:
        fill = 1 << 15
    if fill < -5:
        fill = -5
    limit = OPTIMIZATION_LEVEL[-fill - 1] if fill < 0 else 0
    sizes: list[int] = []
    cur = 0  # listpack bytes of the node being filled (0 = none yet)
    count = 0
    for e in items:
        sz = len(e)
        ent = lp_entry_size(e)
        if cur:
            new = cur + sz + SIZE_ESTIMATE_OVERHEAD
            if (new <= limit) if limit else (new <= SIZE_SAFETY_LIMIT and count < fill):
                cur += ent
                count += 1
                continue
            sizes.append(cur)
        cur = LP_OVERHEAD + ent
        count = 1
    if cur:
        sizes.append(cur)
    return sizes


def _even_split(sizes: list[int], nodes: int) -> list[list[int]]:
    """``sizes`` cut into ``nodes`` contiguous runs of about equal bytes (the
    fallback when the file's node boundaries cannot be reproduced)."""
    total = sum(sizes) or 1
    runs: list[list[int]] = [[] for _ in range(nodes)]
    acc = 0
    for s in sizes:
        runs[min(nodes - 1, acc * nodes // total)].append(s)
        acc += s
    return [r for r in runs if r] or [[]]


def _list_nodes(ev: Key, cfg: LoadConfig) -> list[int]:
    """Listpack bytes of each quicklist node after the load.  Plain and
    ziplist lists are pushed again with the loading config; quicklists keep
    the file's nodes, whose cut is reproduced with the first fill that gives
    the file's node count (the load config's, then 8, 4, 16, 32, 64 KB, then
    the count limit that would), or else approximated by even runs."""
    items: list[bytes] = ev.value  # type: ignore[assignment]
    fill = cfg.list_max_listpack_size
    sizes = quicklist_node_sizes(items, fill)
    want = ev.nodes
    if ev.rdb_type not in (14, 18) or not want or len(sizes) == want:
        return sizes
    per_node = -(-len(items) // want)  # the count limit that gives `want` nodes
    for other in (-2, -1, -3, -4, -5, per_node):
        if other != fill:
            alt = quicklist_node_sizes(items, other)
            if len(alt) == want:
                return alt
    runs = _even_split([lp_entry_size(e) for e in items], want)
    return [LP_OVERHEAD + sum(r) for r in runs]


def _list_value(ev: Key, cfg: LoadConfig) -> tuple[int, str, int]:
    items: list[bytes] = ev.value  # type: ignore[assignment]
    largest = max(map(len, items)) if items else 0
    sizes = _list_nodes(ev, cfg)
    ele = QUICKLIST_NODE * len(sizes)
    for s in sizes:
        ele += je_size(s)
    return _sampled(ROBJ + QUICKLIST_STRUCT, ele, len(sizes)), "quicklist", largest


def _entry_size(fields: list[tuple[bytes, bytes]], master: list[bytes], dms: int, dseq: int) -> int:
    """Listpack bytes of one stream entry after the master entry: flags, the
    ID deltas, the values (with the field names unless they are the
    master's), and the lp-count."""
    n = len(fields)
    ent = 2 + _lp_int(dms) + _lp_int(dseq)
    if n == len(master) and all(f == mf for (f, _), mf in zip(fields, master, strict=True)):
        for _, v in fields:
            ent += lp_entry_size(v)
        return ent + _lp_int(n + 3)
    ent += _lp_int(n)
    for f, v in fields:
        ent += lp_entry_size(f) + lp_entry_size(v)
    return ent + _lp_int(2 * n + 4)


def _master_size(master: list[bytes]) -> int:
    """Listpack bytes of an empty node: header, deleted count (0), the
    field count, the field names, the master's 0 terminator and end byte
    (the live count is added by the caller)."""
    size = LP_OVERHEAD + 2 + _lp_int(len(master)) + 2
    for f in master:
        size += lp_entry_size(f)
    return size


def _stream_nodes(s: Stream, max_bytes: int, max_entries: int) -> tuple[list[int], list[int]]:
    """(master IDs as 128-bit ints, listpack bytes) of the nodes
    streamAppendItem builds when the live entries are added in order."""
    if max_bytes <= 0 or max_bytes > STREAM_LISTPACK_MAX_SIZE:
        max_bytes = STREAM_LISTPACK_MAX_SIZE
    masters: list[int] = []
    sizes: list[int] = []
    cur = 0  # bytes of the node being filled, its live count excluded
    count = 0
    master_ms = master_seq = 0
    master: list[bytes] = []
    for e in s.entries:
        flds = e.fields
        if cur:
            tot = 0
            for f, v in flds:
                tot += len(f) + len(v)
            if cur + _lp_int(count) + tot >= max_bytes or (max_entries and count >= max_entries):
                sizes.append(cur + _lp_int(count))
                cur = 0
        ms, seq = e.id
        if not cur:
            master_ms, master_seq = ms, seq
            masters.append((ms << 64) | seq)
            master = [f for f, _ in flds]
            cur = _master_size(master)
            count = 0
        cur += _entry_size(flds, master, ms - master_ms, seq - master_seq)
        count += 1
    if cur:
        sizes.append(cur + _lp_int(count))
    return masters, sizes


def _stream_layout(ev: Key, cfg: LoadConfig) -> tuple[list[int], list[int]]:
    """The file's stream nodes (a load keeps them): cut again with the load
    config's node limits, Redis's defaults or the entry limit that would
    give the file's node count, whichever does; otherwise even runs of
    entries."""
    s: Stream = ev.value  # type: ignore[assignment]
    want = ev.nodes
    masters, sizes = _stream_nodes(s, cfg.stream_node_max_bytes, cfg.stream_node_max_entries)
    if not want or len(sizes) == want or not s.entries:
        return masters, sizes
    per_node = -(-len(s.entries) // want)  # the entry limit that gives `want` nodes
    for limits in ((4096, 100), (4096, per_node), (0, per_node)):
        if limits != (cfg.stream_node_max_bytes, cfg.stream_node_max_entries):
            masters2, sizes2 = _stream_nodes(s, *limits)
            if len(sizes2) == want:
                return masters2, sizes2
    entries = s.entries
    n = len(entries)
    want = min(want, n)
    masters = []
    sizes = []
    for k in range(want):
        run = entries[k * n // want:(k + 1) * n // want]
        first = run[0]
        ms0, seq0 = first.id
        master = [f for f, _ in first.fields]
        size = _master_size(master) + _lp_int(len(run))
        for e in run:
            size += _entry_size(e.fields, master, e.id[0] - ms0, e.id[1] - seq0)
        masters.append((ms0 << 64) | seq0)
        sizes.append(size)
    return masters, sizes


def _stream_value(ev: Key, cfg: LoadConfig) -> tuple[int, str, int]:
    s: Stream = ev.value  # type: ignore[assignment]
    masters, sizes = _stream_layout(ev, cfg)
    size = ROBJ + STREAM_STRUCT + len(masters) * RAX_ELE + rax_nodes(masters) * RAX_NODE
    for lp in sizes:
        size += je_size(lp)
    largest = 0
    for e in s.entries:
        for f, v in e.fields:
            if len(v) > largest:
                largest = len(v)
            if len(f) > largest:
                largest = len(f)
    for g in s.groups:
        size += STREAM_CG + _rax_usage([nack.id for nack in g.pel]) + STREAM_NACK * len(g.pel)
        for c in g.consumers:
            size += STREAM_CONSUMER + len(c.name) + _rax_usage(c.pel)
    return size, "stream", largest


def _string_len(v: Any) -> int:
    return len(v)


def element_count(ev: Key) -> int:
    """Length the way redis-cli --bigkeys counts it: STRLEN for strings,
    the entries of a stream, elements (pairs) of the other types.  A
    collection read in the reader's ``check_only`` mode is its count."""
    v = ev.value
    if type(v) is int:
        return v
    if ev.type == "stream":
        return v.length  # type: ignore[union-attr, no-any-return]
    if ev.type == "module":
        return 0
    return len(v)  # type: ignore[arg-type]


def estimate(ev: Key, cfg: LoadConfig) -> KeyMemory:
    """The Redis 7.0 memory estimate of one key (see the module docstring)."""
    t = ev.type
    if t == "string":
        v: Any = ev.value
        size, enc = _string_value(v)
        n = len(v)
        return KeyMemory(size + _key_overhead(ev.key), enc, n, n)
    if t == "hash":
        size, enc, largest = _hash_value(ev, cfg)
    elif t == "list":
        size, enc, largest = _list_value(ev, cfg)
    elif t == "set":
        size, enc, largest = _set_value(ev, cfg)
    elif t == "zset":
        size, enc, largest = _zset_value(ev, cfg)
    elif t == "stream":
        size, enc, largest = _stream_value(ev, cfg)
    else:
        size, enc, largest = ROBJ + ev.size, "module", 0
    return KeyMemory(size + _key_overhead(ev.key), enc, element_count(ev), largest)


def loaded_encoding(ev: Key, cfg: LoadConfig) -> str:
    """OBJECT ENCODING of the key once Redis 7.0 has loaded it (cheaper than
    :func:`estimate` for the common types)."""
    t = ev.type
    v: Any = ev.value
    if t == "string":
        n = len(v)
        if n <= 20 and canonical_int(v) is not None:
            return "int"
        return "embstr" if n <= EMBSTR_LIMIT else "raw"
    if t == "list":
        return "quicklist"
    if t == "stream":
        return "stream"
    if t == "module":
        return "module"
    if t == "set":
        if len(v) <= cfg.set_max_intset_entries and v and _as_ints(v) is not None:
            return "intset"
        return "hashtable"
    if t == "hash":
        if len(v) > cfg.hash_max_listpack_entries:
            return "hashtable"
        if ev.rdb_type in (13, 16):
            return "listpack"
        if v and max(map(len, chain.from_iterable(v))) > cfg.hash_max_listpack_value:
            return "hashtable"
        return "listpack"
    if t == "zset":
        if len(v) > cfg.zset_max_listpack_entries:
            return "skiplist"
        if ev.rdb_type in (12, 17):
            return "listpack"
        if v and max(map(len, map(itemgetter(0), v))) > cfg.zset_max_listpack_value:
            return "skiplist"
        return "listpack"
    return ev.encoding
