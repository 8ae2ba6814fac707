"""Sorted set commands (t_zset.c of Redis 7.0.15).

ZADD ZINCRBY ZREM ZCARD ZCOUNT ZLEXCOUNT ZSCORE ZMSCORE ZRANK ZREVRANK
ZRANGE ZRANGESTORE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX
ZREVRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX ZUNION ZINTER
ZDIFF ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZINTERCARD ZPOPMIN ZPOPMAX ZMPOP
ZRANDMEMBER ZSCAN, and BZPOPMIN BZPOPMAX BZMPOP on top of server/blocking.py.

Storage (:class:`ZSetValue`): a dict member -> score for O(1) lookups plus
the ``(score, member)`` tuples in order -- a ``sortedcontainers.SortedList``
once the zset has more than :data:`SMALL_MAX` members, a plain list kept
sorted with ``bisect`` below that (:class:`SortedPairs`, same methods).
Tuples order ties by member bytes exactly as the skiplist does (``sdscmp``
is memcmp then length, Python's bytes comparison).  The Redis encoding is a
flag, independent of the container:

* ``listpack`` while the zset is small; a listpack stores an integral score
  in [-2^62, 2^62] as an integer (so ``-0`` reads back as ``0``) and any
  other score as its ``%.17g`` text, which round-trips exactly.  ZSCAN,
  MEMORY USAGE and DEBUG DIGEST show the difference; :meth:`ZSetValue.insert`
  normalises ``-0.0`` while the flag is set.
* ``skiplist`` after ``zsetConvert``: a new member past
  ``zset-max-listpack-entries`` or longer than ``zset-max-listpack-value``,
  a key created by ZADD whose first member is too long (or entries is 0),
  SORT on the key.  7.0 never converts back except where it builds a new
  value: ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE and GEO*STORE results
  (``zsetConvertToListpackIfNeeded``); ZRANGESTORE starts its result as a
  skiplist when the rank range is longer than the entries limit.

Ranges: score ranges are found by bisection (the order is by score, so this
is exact).  Lex ranges assume equal scores, as Redis does; when the scores
differ the listpack walk (first member >= min from the head, then while
<= max) is emulated literally, which is what a listpack zset answers (a
skiplist's answer then depends on its nodes' random levels: undefined).

Effects (spec/propagation.md): writes are verbatim except ZMPOP/BZMPOP
(``ZPOPMIN|ZPOPMAX key n`` with ``n = min(count, card)``) and BZPOPMIN/BZPOPMAX
(``ZPOPMIN|ZPOPMAX key``).  Replies follow ``addReplyDouble``: scores are
``%.17g`` bulk strings in RESP2 and doubles in RESP3; WITHSCORES answers a
flat array in RESP2 and ``[member, score]`` pairs in RESP3.
"""

from __future__ import annotations

import math
import random
import re
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
from itertools import repeat
from operator import add as _add
from typing import Any

from ambry.persistence.rdb.containers import lp_entry_size
from sortedcontainers import SortedList

from .. import keyspace
from ..args import ERR_NOT_INT, ERR_SYNTAX
from ..client import Client
from ..keyspace import WRONGTYPE, Db, type_name
from ..protocol import string2ll
from ..registry import command
from ..reply import NULL_ARRAY, Err
from ..util import compile_pattern, double2ll, string2d

# notify-keyspace-events classes (server.h)
NOTIFY_GENERIC = 1 << 2
NOTIFY_ZSET = 1 << 7

LONG_MAX = (1 << 63) - 1
INF = math.inf
_nextafter = math.nextafter

ERR_MINMAX_FLOAT = Err("ERR min or max is not a float")
ERR_MINMAX_LEX = Err("ERR min or max not valid string range item")
ERR_NAN = Err("ERR resulting score is not a number (NaN)")
ERR_NOT_FLOAT = Err("ERR value is not a valid float")
ERR_WEIGHT = Err("ERR weight value is not a float")
ERR_POSITIVE = Err("ERR value is out of range, must be positive")

# zsetAdd input flags / output flags
ZADD_IN_INCR = 1
ZADD_IN_NX = 2
ZADD_IN_XX = 4
ZADD_IN_GT = 8
ZADD_IN_LT = 16
ZADD_OUT_NOP = 1
ZADD_OUT_NAN = 2
ZADD_OUT_ADDED = 4
ZADD_OUT_UPDATED = 8

# Aggregates of ZUNION/ZINTER
AGGR_SUM = 1
AGGR_MIN = 2
AGGR_MAX = 3

# zunionInterDiffGenericCommand operations
OP_UNION = 0
OP_INTER = 1
OP_DIFF = 2


def _notify(srv: Any, cls: int, event: bytes, key: bytes, dbid: int) -> None:
    """notifyKeyspaceEvent, skipped cheaply when notifications are off."""
    if srv.cfg.notify_keyspace_events:
        srv.notify(cls, event, key, dbid)


# -- listpack sizes (listpack.c) ------------------------------------------------------


def _lp_backlen(enc: int) -> int:
    """lpEncodeBacklen's size for an entry of ``enc`` bytes: its limits are
    ``<= 127``, ``< 16383``, ``< 2097151``, ``< 268435455`` (one below each
    power of 128 from the second on, exactly as listpack.c has them)."""
    if enc <= 127:
        return 1
    if enc < 16383:
        return 2
    if enc < 2097151:
        return 3
    if enc < 268435455:
        return 4
    return 5


def lp_int_entry_size(v: int) -> int:
    """Bytes of a listpack integer entry (encoding + backlen)."""
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


def lp_score_text(score: float) -> bytes:
    """A score as a listpack holds it (zzlInsertAt): an integer when
    ``double2ll`` accepts it, else ``d2string``'s ``%.17g``."""
    i = double2ll(score)
    if i is not None:
        return b"%d" % i
    return _fmt17(score)


def _fmt17(score: float) -> bytes:
    """``%.17g`` with C's spelling of infinities (``inf``/``-inf``)."""
    if score == INF:
        return b"inf"
    if score == -INF:
        return b"-inf"
    return b"%.17g" % score


def lp_score_entry_size(score: float) -> int:
    i = double2ll(score)
    if i is not None:
        return lp_int_entry_size(i)
    n = len(_fmt17(score))
    enc = 1 + n if n < 64 else 2 + n
    return enc + _lp_backlen(enc)


def _je_size(n: int) -> int:
    """jemalloc size class (same model as introspection.je_size)."""
    if n <= 8:
        return 8
    if n <= 64:
        return (n + 15) & ~15
    base = 1 << ((n - 1).bit_length() - 1)
    delta = base >> 2
    return (n + delta - 1) // delta * delta


# zmalloc_size of a skiplist node averaged over zslRandomLevel's levels
# (P(level = k) = 0.75 * 0.25^(k-1), node = 24 + 16 * level bytes).
_ZSL_NODE_MEAN = sum(0.75 * 0.25 ** (k - 1) * _je_size(24 + 16 * k) for k in range(1, 33))


def _sds_alloc(length: int) -> int:
    hdr = 1 if 0 < length < 32 else (3 if length < 256 else (5 if length < 65536 else 9))
    return _je_size(hdr + length + 1)


# -- the value --------------------------------------------------------------------------

# SortedList probes: (score,) sorts before every (score, member).
_EMPTY = b""

# Past this many members a zset's order lives in a SortedList; below it a
# plain list kept sorted with bisect is faster and costs the garbage
# collector fewer containers (SortedList keeps the same kind of list per
# 1000 elements inside).
SMALL_MAX = 2048


class SortedPairs(list):  # type: ignore[type-arg]
    """A small zset's ``(score, member)`` tuples in order: a list sorted with
    ``bisect``, offering the subset of SortedList's API the zset uses
    (``add``, ``remove``, ``bisect_left/right``, ``islice``, ``copy``)."""

    __slots__ = ()

    def add(self, value: tuple[float, bytes]) -> None:
        insort(self, value)

    def remove(self, value: tuple[float, bytes]) -> None:  # type: ignore[override]
        del self[bisect_left(self, value)]

    def bisect_left(self, value: Any) -> int:
        return bisect_left(self, value)

    def bisect_right(self, value: Any) -> int:
        return bisect_right(self, value)

    def islice(self, start: int | None = None, stop: int | None = None, reverse: bool = False) -> list[Any]:
        part = self[start:stop]
        if reverse:
            part.reverse()
        return part

    def copy(self) -> SortedPairs:
        return SortedPairs(self)


def _sorted_pairs(items: Iterable[tuple[float, bytes]]) -> Any:
    """The order container for ``items`` (any order): small list or SortedList."""
    pairs = sorted(items)
    if len(pairs) > SMALL_MAX:
        return SortedList(pairs)
    return SortedPairs(pairs)


class ZSetValue:
    """A sorted set: ``scores`` (member -> score), ``sl`` (SortedList of
    ``(score, member)``) and ``lp`` (True while Redis would hold it as a
    listpack).  Implements the generic value protocol of keys.py."""

    __slots__ = ("scores", "sl", "lp", "_scan")

    redis_type = b"zset"

    def __init__(self, listpack: bool = True) -> None:
        self.scores: dict[bytes, float] = {}
        self.sl: Any = SortedPairs()
        self.lp = listpack
        self._scan: list[tuple[int, bytes]] | None = None

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bytes, float]], listpack: bool) -> ZSetValue:
        """A zset holding ``(member, score)`` pairs (RDB load, RESTORE);
        ``listpack`` is the encoding to report.  Later pairs win."""
        z = cls(listpack)
        scores = z.scores
        for m, s in pairs:
            if listpack and s == 0.0:
                s = 0.0
            scores[bytes(m)] = s
        z.sl = _sorted_pairs((s, m) for m, s in scores.items())
        return z

    @classmethod
    def from_lists(cls, members: list[bytes], scores: list[float], listpack: bool) -> ZSetValue:
        """:meth:`from_pairs` for members and their scores in parallel lists
        (the RDB loader's form), in C-level passes; later pairs win."""
        if listpack and 0.0 in scores and (
                scores.count(0.0) > 1 or math.copysign(1.0, scores[scores.index(0.0)]) < 0):
            scores = list(map(_add, scores, repeat(0.0)))  # -0.0 + 0.0 is 0.0; nothing else changes
        z = cls.__new__(cls)  # every slot is set here: no throw-away containers from __init__
        z.lp = listpack
        z._scan = None
        # Equal lengths by contract; zip's strict= costs a keyword call per zset.
        d = dict(zip(members, scores))  # noqa: B905
        z.scores = d
        if len(d) == len(members) and len(d) <= SMALL_MAX:
            sl = SortedPairs(zip(scores, members))  # noqa: B905
            sl.sort()  # linear when the input is in order, as a listpack is
            z.sl = sl
        else:
            z.sl = _sorted_pairs((s, m) for m, s in d.items())
        return z

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        enc = "listpack" if self.lp else "skiplist"
        return f"<ZSetValue {enc} {list(self.sl)!r}>"

    # -- primitive changes (callers keep the encoding rules) --

    def insert(self, member: bytes, score: float) -> None:
        """Add a member known to be absent."""
        if self.lp and score == 0.0:
            score = 0.0  # a listpack stores an integral score as an integer: no -0
        self.scores[member] = score
        sl = self.sl
        sl.add((score, member))
        if len(sl) > SMALL_MAX and type(sl) is SortedPairs:
            self.sl = SortedList(sl)
        self._scan = None

    def set_score(self, member: bytes, old: float, new: float) -> None:
        """Move an existing member from ``old`` to ``new``."""
        if self.lp and new == 0.0:
            new = 0.0
        sl = self.sl
        sl.remove((old, member))
        sl.add((new, member))
        self.scores[member] = new

    def delete(self, member: bytes) -> bool:
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self.sl.remove((score, member))
        self._scan = None
        return True

    def delete_slice(self, start: int, stop: int) -> int:
        """Remove the members of ranks [start, stop); returns how many."""
        sl = self.sl
        if stop <= start:
            return 0
        scores = self.scores
        for _, m in sl.islice(start, stop):
            del scores[m]
        del sl[start:stop]
        self._scan = None
        return stop - start

    def to_skiplist(self) -> None:
        """zsetConvert(OBJ_ENCODING_SKIPLIST): only the flag changes."""
        self.lp = False

    def to_listpack(self) -> None:
        """zsetConvert(OBJ_ENCODING_LISTPACK): scores pass through the
        listpack's integer encoding, so a ``-0`` becomes ``0``."""
        if not self.lp:
            self.lp = True
            for m, s in self.scores.items():
                if s == 0.0 and math.copysign(1.0, s) < 0:
                    self.set_score(m, s, 0.0)

    def maybe_to_listpack(self, max_entries: int, max_value: int) -> None:
        """zsetConvertToListpackIfNeeded with the result's longest member."""
        if self.lp:
            return
        if len(self.scores) <= max_entries and (
            not self.scores or max(map(len, self.scores)) <= max_value
        ):
            self.to_listpack()

    def add(self, score: float, member: bytes, flags: int, max_entries: int, max_value: int) -> tuple[int, float]:
        """zsetAdd: returns (ZADD_OUT_* flags, new score).  ``flags`` are
        ZADD_IN_*; a new member past the listpack limits converts first."""
        if score != score:
            return ZADD_OUT_NAN, score
        cur = self.scores.get(member)
        if cur is not None:
            if flags & ZADD_IN_NX:
                return ZADD_OUT_NOP, score
            if flags & ZADD_IN_INCR:
                score += cur
                if score != score:
                    return ZADD_OUT_NAN, score
            if (flags & ZADD_IN_LT and score >= cur) or (flags & ZADD_IN_GT and score <= cur):
                return ZADD_OUT_NOP, score
            if score != cur:
                self.set_score(member, cur, score)
                return ZADD_OUT_UPDATED, score
            return 0, score
        if flags & ZADD_IN_XX:
            return ZADD_OUT_NOP, score
        if self.lp and (len(self.scores) + 1 > max_entries or len(member) > max_value):
            self.lp = False
        self.insert(member, score)
        return ZADD_OUT_ADDED, score

    # -- reads --

    def rank(self, member: bytes, reverse: bool) -> int | None:
        score = self.scores.get(member)
        if score is None:
            return None
        r = self.sl.bisect_left((score, member))
        return len(self.scores) - 1 - r if reverse else r

    def score_span(self, mn: float, minex: bool, mx: float, maxex: bool) -> tuple[int, int]:
        """Ranks [lo, hi) of the members inside a score range."""
        sl = self.sl
        if minex:
            lo = len(sl) if mn == INF else sl.bisect_left((_nextafter(mn, INF),))
        else:
            lo = sl.bisect_left((mn,))
        if maxex:
            hi = 0 if mx == -INF else sl.bisect_left((mx,))
        else:
            hi = len(sl) if mx == INF else sl.bisect_left((_nextafter(mx, INF),))
        return lo, hi

    def _uniform(self) -> bool:
        sl = self.sl
        return sl[0][0] == sl[-1][0]

    def lex_first(self, spec: LexRange) -> int | None:
        """zzlFirstInLexRange: rank of the first member >= min, if it is <= max."""
        sl = self.sl
        n = len(sl)
        if not n or spec.empty() or not spec.gte_min(sl[-1][1]) or not spec.lte_max(sl[0][1]):
            return None
        if self._uniform():
            i = spec.bisect_min(sl, sl[0][0])
            if i >= n:
                return None
        else:
            gte = spec.gte_min
            i = 0
            while i < n and not gte(sl[i][1]):
                i += 1
            if i >= n:
                return None
        return i if spec.lte_max(sl[i][1]) else None

    def lex_last(self, spec: LexRange) -> int | None:
        """zzlLastInLexRange: rank of the last member <= max, if it is >= min."""
        sl = self.sl
        n = len(sl)
        if not n or spec.empty() or not spec.gte_min(sl[-1][1]) or not spec.lte_max(sl[0][1]):
            return None
        if self._uniform():
            i = spec.bisect_max(sl, sl[0][0]) - 1
            if i < 0:
                return None
        else:
            lte = spec.lte_max
            i = n - 1
            while i >= 0 and not lte(sl[i][1]):
                i -= 1
            if i < 0:
                return None
        return i if spec.gte_min(sl[i][1]) else None

    def lex_forward_end(self, spec: LexRange, start: int) -> int:
        """From ``start``, the first rank whose member is past max."""
        sl = self.sl
        if self._uniform():
            return max(start, spec.bisect_max(sl, sl[0][0]))
        lte = spec.lte_max
        n = len(sl)
        i = start
        while i < n and lte(sl[i][1]):
            i += 1
        return i

    def lex_backward_end(self, spec: LexRange, start: int) -> int:
        """From ``start`` going down, the last rank + 1 whose member is below min
        (so members [result, start] are >= min)."""
        sl = self.sl
        if self._uniform():
            return min(start + 1, spec.bisect_min(sl, sl[0][0]))
        gte = spec.gte_min
        i = start
        while i >= 0 and gte(sl[i][1]):
            i -= 1
        return i + 1

    def lex_span(self, spec: LexRange) -> tuple[int, int]:
        """Ranks [lo, hi) a forward lex walk visits (ZLEXCOUNT, ZREMRANGEBYLEX)."""
        first = self.lex_first(spec)
        if first is None:
            return 0, 0
        return first, self.lex_forward_end(spec, first)

    def pairs(self) -> list[tuple[bytes, float]]:
        """(member, score) in rank order."""
        return [(m, s) for s, m in self.sl]

    # -- the generic value protocol (keys.py, digest.py, introspection) --

    def copy(self) -> ZSetValue:
        z = ZSetValue(self.lp)
        z.scores = dict(self.scores)
        z.sl = self.sl.copy()
        return z

    def encoding(self) -> bytes:
        return b"listpack" if self.lp else b"skiplist"

    def digest_kind(self) -> tuple[Any, ...]:
        return ("zset", list(self.scores.items()), self.lp)

    def sort_elements(self) -> list[bytes]:
        """SORT's input in rank order; SORT converts the zset to a skiplist
        (``zsetConvert`` in sortCommandGeneric), and so do we."""
        self.lp = False
        return [m for _, m in self.sl]

    def listpack_bytes(self) -> int:
        """lpBytes of the listpack Redis would hold for these pairs."""
        total = 7  # header (6) + end marker (1)
        for s, m in self.sl:
            total += lp_entry_size(m) + lp_score_entry_size(s)
        return total

    def redis_memory_usage(self, samples: int) -> int:
        """objectComputeSize for a zset: the listpack allocation exactly, or
        the skiplist estimate from the first ``samples`` nodes, each node
        counted at the mean size of its random level (Redis's own answer
        varies with the levels the nodes happened to get)."""
        if self.lp:
            return 16 + _je_size(self.listpack_bytes())
        n = len(self.scores)
        slots = 0 if n == 0 else max(4, 1 << (n - 1).bit_length())
        # robj + zset + zskiplist + dict + table + the 32-level header node
        size = 16 + 16 + 32 + 56 + 8 * slots + 640
        k = n if samples <= 0 else min(samples, n)
        if k:
            ele = 0.0
            for _, m in self.sl.islice(0, k):
                ele += _sds_alloc(len(m)) + 24 + _ZSL_NODE_MEAN
            size += int(ele / k * n)
        return size

    # -- ZSCAN order (skiplist) --

    def scan_order(self) -> list[tuple[int, bytes]]:
        """Members ordered by a fixed per-process hash (never 0), the cursor
        space of ZSCAN on a skiplist zset: an element present for the whole
        iteration is returned whatever is added or removed meanwhile."""
        order = self._scan
        if order is None:
            order = sorted(((hash(m) & 0x7FFFFFFFFFFFFFFF) | 1, m) for m in self.scores)
            self._scan = order
        return order


keyspace.TYPE_NAMES[ZSetValue] = b"zset"


def new_zset(cfg: Any, first_member_len: int) -> ZSetValue:
    """The zset ZADD creates for a missing key (7.0: a skiplist when
    entries is 0 or the first member is longer than the value limit)."""
    return ZSetValue(
        not (cfg.zset_max_listpack_entries == 0 or cfg.zset_max_listpack_value < first_member_len)
    )


def load_zset(pairs: Iterable[tuple[bytes, float]], listpack: bool, cfg: Any) -> ZSetValue:
    """A zset read from an RDB/RESTORE payload with rdbLoadObject's encoding
    rules: a skiplist small enough becomes a listpack, a listpack with more
    entries than ``zset-max-listpack-entries`` becomes a skiplist."""
    return _load_rules(ZSetValue.from_pairs(pairs, listpack), listpack, cfg)


def load_zset_lists(members: list[bytes], scores: list[float], listpack: bool, cfg: Any) -> ZSetValue:
    """:func:`load_zset` for members and their scores in parallel lists
    (the RDB loader's form)."""
    return _load_rules(ZSetValue.from_lists(members, scores, listpack), listpack, cfg)


def _load_rules(z: ZSetValue, listpack: bool, cfg: Any) -> ZSetValue:
    """rdbLoadObject's zset conversions after loading (see load_zset)."""
    if listpack:
        if len(z.scores) > cfg.zset_max_listpack_entries:
            z.to_skiplist()
    else:
        z.maybe_to_listpack(cfg.zset_max_listpack_entries, cfg.zset_max_listpack_value)
    return z


# -- argument parsing -----------------------------------------------------------------

_DEC_DEL = b"0123456789+-.eE"
_C_SPACE = b" \t\n\v\f\r"
_STRTOD_RE = re.compile(
    rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|(0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
)


def strtod_full(s: bytes) -> float | None:
    """``strtod(s, &eptr)`` accepted only when ``*eptr == '\\0'`` and the
    value is not NaN (zslParseRange): leading whitespace is skipped, the
    string ends at a NUL, the empty string is 0, overflow gives +-inf."""
    if s and not s.translate(None, _DEC_DEL):
        try:
            return float(s)
        except ValueError:
            return None
    nul = s.find(b"\0")
    if nul >= 0:
        s = s[:nul]
    if not s:
        return 0.0
    body = s.lstrip(_C_SPACE)
    m = _STRTOD_RE.fullmatch(body)
    if m is None:
        return None
    if m.group(1) is not None:
        try:
            return float.fromhex(body.decode())
        except OverflowError:
            return -INF if body[:1] == b"-" else INF
    return float(body)


def parse_score_range(a: bytes, b: bytes) -> tuple[float, bool, float, bool]:
    """zslParseRange: ``(`` makes a bound exclusive; NaN is refused."""
    minex = a[:1] == b"("
    mn = strtod_full(a[1:] if minex else a)
    maxex = b[:1] == b"("
    mx = strtod_full(b[1:] if maxex else b)
    if mn is None or mx is None or mn != mn or mx != mx:
        raise ERR_MINMAX_FLOAT
    return mn, minex, mx, maxex


class LexRange:
    """zlexrangespec: bounds are ``(kind, value)`` with kind -1 for ``-``
    (shared.minstring), 1 for ``+`` (shared.maxstring), 0 for a value."""

    __slots__ = ("minkind", "min", "minex", "maxkind", "max", "maxex")

    def __init__(self, a: bytes, b: bytes) -> None:
        self.minkind, self.min, self.minex = _lex_item(a)
        self.maxkind, self.max, self.maxex = _lex_item(b)

    def empty(self) -> bool:
        """sdscmplex(min, max) > 0, or == 0 with an exclusive end."""
        mk, xk = self.minkind, self.maxkind
        if mk and mk == xk:
            cmp = 0
        elif mk == -1 or xk == 1:
            cmp = -1
        elif mk == 1 or xk == -1:
            cmp = 1
        else:
            cmp = (self.min > self.max) - (self.min < self.max)
        return cmp > 0 or (cmp == 0 and (self.minex or self.maxex))

    def gte_min(self, m: bytes) -> bool:
        k = self.minkind
        if k:
            return k < 0
        return m > self.min if self.minex else m >= self.min

    def lte_max(self, m: bytes) -> bool:
        k = self.maxkind
        if k:
            return k > 0
        return m < self.max if self.maxex else m <= self.max

    def bisect_min(self, sl: Any, score: float) -> int:
        """First rank >= min among members that all have ``score``."""
        k = self.minkind
        if k:
            return 0 if k < 0 else len(sl)
        if self.minex:
            return sl.bisect_right((score, self.min))
        return sl.bisect_left((score, self.min))

    def bisect_max(self, sl: Any, score: float) -> int:
        """First rank past max among members that all have ``score``."""
        k = self.maxkind
        if k:
            return len(sl) if k > 0 else 0
        if self.maxex:
            return sl.bisect_left((score, self.max))
        return sl.bisect_right((score, self.max))


def _lex_item(s: bytes) -> tuple[int, bytes, bool]:
    """zslParseLexRangeItem: ``+``/``-`` alone (up to a NUL), ``(x``, ``[x``."""
    c = s[:1]
    if c == b"+" or c == b"-":
        if len(s) > 1 and s[1] != 0:
            raise ERR_MINMAX_LEX
        return (1 if c == b"+" else -1), _EMPTY, True
    if c == b"(":
        return 0, s[1:], True
    if c == b"[":
        return 0, s[1:], False
    raise ERR_MINMAX_LEX


def _get_long(arg: bytes) -> int:
    """getLongFromObjectOrReply."""
    v = string2ll(arg)
    if v is None:
        raise ERR_NOT_INT
    return v


def _get_range_long(arg: bytes, lo: int, hi: int, msg: str | None) -> int:
    """getRangeLongFromObjectOrReply (its message covers both failures)."""
    v = string2ll(arg)
    if v is None:
        raise Err("ERR " + msg) if msg else ERR_NOT_INT
    if v < lo or v > hi:
        if msg:
            raise Err("ERR " + msg)
        raise Err(f"ERR value is out of range, value must between {lo} and {hi}")
    return v


def _get_positive(arg: bytes, msg: str | None = None) -> int:
    """getPositiveLongFromObjectOrReply: a range check [0, LONG_MAX] whose
    message (default "value is out of range, must be positive") also
    covers a non-integer."""
    v = string2ll(arg)
    if v is None or v < 0:
        raise Err("ERR " + msg) if msg else ERR_POSITIVE
    return v


def _zset_or_none(v: Any) -> ZSetValue | None:
    if v is None:
        return None
    if type(v) is not ZSetValue:
        raise WRONGTYPE
    return v  # type: ignore[no-any-return]


def _with_scores(c: Client, pairs: Iterable[tuple[bytes, float]]) -> list[Any]:
    """WITHSCORES: flat in RESP2, [member, score] pairs in RESP3."""
    if c.resp3:
        return [[m, s] for m, s in pairs]
    out: list[Any] = []
    app = out.append
    for m, s in pairs:
        app(m)
        app(s)
    return out


# -- ZADD / ZINCRBY / ZREM ------------------------------------------------------------


_ZADD_OPT_FIRST = frozenset(b"nNxXcCiIgGlL")


def _zadd_generic(c: Client, argv: list[bytes], flags: int) -> Any:
    """zaddGenericCommand: options, all scores parsed before any change,
    the key created on demand, then zsetAdd per pair."""
    n = len(argv)
    scoreidx = 2
    ch = False
    while scoreidx < n:
        opt = argv[scoreidx]
        if len(opt) > 4 or not opt or opt[0] not in _ZADD_OPT_FIRST:
            break  # a score: options are nx xx ch incr gt lt
        o = opt.lower()
        if o == b"nx":
            flags |= ZADD_IN_NX
        elif o == b"xx":
            flags |= ZADD_IN_XX
        elif o == b"ch":
            ch = True
        elif o == b"incr":
            flags |= ZADD_IN_INCR
        elif o == b"gt":
            flags |= ZADD_IN_GT
        elif o == b"lt":
            flags |= ZADD_IN_LT
        else:
            break
        scoreidx += 1
    elements = n - scoreidx
    if elements % 2 or not elements:
        raise ERR_SYNTAX
    elements //= 2
    nx = flags & ZADD_IN_NX
    gt = flags & ZADD_IN_GT
    lt = flags & ZADD_IN_LT
    if nx and flags & ZADD_IN_XX:
        raise Err("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise Err("ERR GT, LT, and/or NX options at the same time are not compatible")
    incr = flags & ZADD_IN_INCR
    if incr and elements > 1:
        raise Err("ERR INCR option supports a single increment-element pair")
    scores = []
    for j in range(scoreidx, n, 2):
        d = string2d(argv[j])
        if d is None:
            raise ERR_NOT_FLOAT
        scores.append(d)

    srv = c.srv
    db = c.db
    key = argv[1]
    zobj = db.lookup_write(key)
    added = updated = processed = 0
    score = 0.0
    if zobj is None:
        if flags & ZADD_IN_XX:
            if incr:
                return None
            return 0
        zobj = new_zset(srv.cfg, len(argv[scoreidx + 1]))
        db.add(key, zobj)  # dbAdd: also signals clients blocked on the key
    elif type(zobj) is not ZSetValue:
        raise WRONGTYPE
    cfg = srv.cfg
    max_entries = cfg.zset_max_listpack_entries
    max_value = cfg.zset_max_listpack_value
    err = None
    add = zobj.add
    for j in range(elements):
        retflags, score = add(scores[j], argv[scoreidx + 1 + 2 * j], flags, max_entries, max_value)
        if retflags & ZADD_OUT_NAN:
            err = ERR_NAN
            break
        if retflags & ZADD_OUT_ADDED:
            added += 1
        elif retflags & ZADD_OUT_UPDATED:
            updated += 1
        if not retflags & ZADD_OUT_NOP:
            processed += 1
    if err is None:
        srv.dirty += added + updated
    if added or updated:
        if db.watched:
            db.signal_modified(key)
        _notify(srv, NOTIFY_ZSET, b"zincr" if incr else b"zadd", key, db.id)
    if err is not None:
        raise err
    if incr:
        return score if processed else None
    return added + updated if ch else added


@command("zadd")
def zadd(c: Client, argv: list[bytes]) -> Any:
    """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...].

    The commonest form, one score and member without options on an existing
    zset, skips the generic option parsing (same steps, same order)."""
    if len(argv) == 4:
        a = argv[2]
        if a and a[0] not in _ZADD_OPT_FIRST:
            d = string2d(a)  # never NaN
            if d is not None:
                db = c.db
                key = argv[1]
                z = db.lookup_write(key)
                if type(z) is ZSetValue:
                    srv = c.srv
                    cfg = srv.cfg
                    ret = z.add(d, argv[3], 0, cfg.zset_max_listpack_entries, cfg.zset_max_listpack_value)[0]
                    if ret & (ZADD_OUT_ADDED | ZADD_OUT_UPDATED):
                        srv.dirty += 1
                        if db.watched:
                            db.signal_modified(key)
                        _notify(srv, NOTIFY_ZSET, b"zadd", key, db.id)
                        return 1 if ret & ZADD_OUT_ADDED else 0
                    return 0
    return _zadd_generic(c, argv, 0)


@command("zincrby")
def zincrby(c: Client, argv: list[bytes]) -> Any:
    """ZINCRBY key increment member (ZADD's code with INCR)."""
    return _zadd_generic(c, argv, ZADD_IN_INCR)


@command("zrem")
def zrem(c: Client, argv: list[bytes]) -> Any:
    """ZREM key member [member ...]: stops once the zset is empty (and deleted)."""
    db = c.db
    key = argv[1]
    zobj = _zset_or_none(db.lookup_write(key))
    if zobj is None:
        return 0
    deleted = 0
    removed = False
    for m in argv[2:]:
        if zobj.delete(m):
            deleted += 1
        if not zobj.scores:
            db.delete(key)
            removed = True
            break
    if deleted:
        srv = c.srv
        _notify(srv, NOTIFY_ZSET, b"zrem", key, db.id)
        if removed:
            _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
        elif db.watched:
            db.signal_modified(key)
        srv.dirty += deleted
    return deleted


# -- ZREMRANGEBY* ----------------------------------------------------------------------


def _zremrange(c: Client, argv: list[bytes], kind: int) -> Any:
    """zremrangeGenericCommand (kind: 0 rank, 1 score, 2 lex)."""
    if kind == 0:
        event = b"zremrangebyrank"
        start = _get_long(argv[2])
        end = _get_long(argv[3])
    elif kind == 1:
        event = b"zremrangebyscore"
        srange = parse_score_range(argv[2], argv[3])
    else:
        event = b"zremrangebylex"
        lrange = LexRange(argv[2], argv[3])
    db = c.db
    key = argv[1]
    zobj = _zset_or_none(db.lookup_write(key))
    if zobj is None:
        return 0
    if kind == 0:
        llen = len(zobj)
        if start < 0:
            start += llen
        if end < 0:
            end += llen
        if start < 0:
            start = 0
        if start > end or start >= llen:
            return 0
        if end >= llen:
            end = llen - 1
        lo, hi = start, end + 1
    elif kind == 1:
        lo, hi = zobj.score_span(*srange)
    else:
        lo, hi = zobj.lex_span(lrange)
    deleted = zobj.delete_slice(lo, hi)
    srv = c.srv
    if deleted:
        removed = not zobj.scores
        if removed:
            db.delete(key)
        elif db.watched:
            db.signal_modified(key)
        _notify(srv, NOTIFY_ZSET, event, key, db.id)
        if removed:
            _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
        srv.dirty += deleted
    return deleted


@command("zremrangebyrank")
def zremrangebyrank(c: Client, argv: list[bytes]) -> Any:
    """ZREMRANGEBYRANK key start stop."""
    return _zremrange(c, argv, 0)


@command("zremrangebyscore")
def zremrangebyscore(c: Client, argv: list[bytes]) -> Any:
    """ZREMRANGEBYSCORE key min max."""
    return _zremrange(c, argv, 1)


@command("zremrangebylex")
def zremrangebylex(c: Client, argv: list[bytes]) -> Any:
    """ZREMRANGEBYLEX key min max."""
    return _zremrange(c, argv, 2)


# -- ZCARD / ZSCORE / ZMSCORE / ZRANK / ZCOUNT / ZLEXCOUNT ---------------------------


@command("zcard")
def zcard(c: Client, argv: list[bytes]) -> Any:
    """ZCARD key."""
    zobj = _zset_or_none(c.db.lookup_read(argv[1]))
    return 0 if zobj is None else len(zobj.scores)


@command("zscore")
def zscore(c: Client, argv: list[bytes]) -> Any:
    """ZSCORE key member: a double, or null."""
    zobj = _zset_or_none(c.db.lookup_read(argv[1]))
    if zobj is None:
        return None
    return zobj.scores.get(argv[2])


@command("zmscore")
def zmscore(c: Client, argv: list[bytes]) -> Any:
    """ZMSCORE key member [member ...]: a missing key is an empty zset."""
    zobj = _zset_or_none(c.db.lookup_read(argv[1]))
    if zobj is None:
        return [None] * (len(argv) - 2)
    get = zobj.scores.get
    return [get(m) for m in argv[2:]]


def _zrank(c: Client, argv: list[bytes], reverse: bool) -> Any:
    zobj = _zset_or_none(c.db.lookup_read(argv[1]))
    if zobj is None:
        return None
    return zobj.rank(argv[2], reverse)


@command("zrank")
def zrank(c: Client, argv: list[bytes]) -> Any:
    """ZRANK key member."""
    return _zrank(c, argv, False)


@command("zrevrank")
def zrevrank(c: Client, argv: list[bytes]) -> Any:
    """ZREVRANK key member."""
    return _zrank(c, argv, True)


@command("zcount")
def zcount(c: Client, argv: list[bytes]) -> Any:
    """ZCOUNT key min max (the range is parsed before the lookup)."""
    srange = parse_score_range(argv[2], argv[3])
    zobj = _zset_or_none(c.db.lookup_read(argv[1]))
    if zobj is None:
        return 0
    lo, hi = zobj.score_span(*srange)
    return hi - lo if hi > lo else 0


@command("zlexcount")
def zlexcount(c: Client, argv: list[bytes]) -> Any:
    """ZLEXCOUNT key min max."""
    lrange = LexRange(argv[2], argv[3])
    zobj = _zset_or_none(c.db.lookup_read(argv[1]))
    if zobj is None:
        return 0
    lo, hi = zobj.lex_span(lrange)
    return hi - lo


# -- ZRANGE and friends -----------------------------------------------------------------

RANGE_AUTO = 0
RANGE_RANK = 1
RANGE_SCORE = 2
RANGE_LEX = 3
DIR_AUTO = 0
DIR_FORWARD = 1
DIR_REVERSE = 2


def rank_range(zobj: ZSetValue, start: int, end: int, reverse: bool) -> list[tuple[bytes, float]]:
    """genericZrangebyrankCommand's selection, as (member, score) pairs."""
    llen = len(zobj.scores)
    if start < 0:
        start += llen
    if end < 0:
        end += llen
    if start < 0:
        start = 0
    if start > end or start >= llen:
        return []
    if end >= llen:
        end = llen - 1
    sl = zobj.sl
    if reverse:
        it = sl.islice(llen - 1 - end, llen - start, reverse=True)
    else:
        it = sl.islice(start, end + 1)
    return [(m, s) for s, m in it]


def score_range(
    zobj: ZSetValue, srange: tuple[float, bool, float, bool], offset: int, limit: int, reverse: bool
) -> list[tuple[bytes, float]]:
    """genericZrangebyscoreCommand: start at the first (last) member in
    range, skip ``offset`` members, emit up to ``limit`` (negative: all)
    while in range; a negative offset walks off the end (empty)."""
    lo, hi = zobj.score_span(*srange)
    if hi <= lo or offset < 0 or limit == 0:
        return []
    sl = zobj.sl
    if reverse:
        top = hi - offset
        if top <= lo:
            return []
        bottom = lo if limit < 0 else max(lo, top - limit)
        it = sl.islice(bottom, top, reverse=True)
    else:
        first = lo + offset
        if first >= hi:
            return []
        stop = hi if limit < 0 else min(hi, first + limit)
        it = sl.islice(first, stop)
    return [(m, s) for s, m in it]


def lex_range(zobj: ZSetValue, lrange: LexRange, offset: int, limit: int, reverse: bool) -> list[tuple[bytes, float]]:
    """genericZrangebylexCommand with the same offset/limit walk."""
    if offset < 0 or limit == 0:
        return []
    sl = zobj.sl
    if reverse:
        last = zobj.lex_last(lrange)
        if last is None:
            return []
        top = last - offset
        if top < 0:
            return []
        bottom = zobj.lex_backward_end(lrange, top)
        if limit >= 0:
            bottom = max(bottom, top + 1 - limit)
        if bottom > top:
            return []
        it = sl.islice(bottom, top + 1, reverse=True)
    else:
        first = zobj.lex_first(lrange)
        if first is None:
            return []
        start = first + offset
        if start >= len(sl):
            return []
        stop = zobj.lex_forward_end(lrange, start)
        if limit >= 0:
            stop = min(stop, start + limit)
        it = sl.islice(start, stop)
    return [(m, s) for s, m in it]


def _zrange_generic(
    c: Client, argv: list[bytes], argc_start: int, store: bool, rangetype: int, direction: int
) -> Any:
    """zrangeGenericCommand for ZRANGE, ZRANGESTORE and the deprecated
    Z[REV]RANGE[BYSCORE|BYLEX] forms: options, conflicts, range parsing,
    then the lookup (a missing source still runs the store path)."""
    key = argv[argc_start]
    minidx = argc_start + 1
    maxidx = argc_start + 2
    withscores = False
    offset = 0
    limit = -1
    n = len(argv)
    j = argc_start + 3
    while j < n:
        leftargs = n - j - 1
        opt = argv[j].lower()
        if not store and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and leftargs >= 2:
            offset = _get_long(argv[j + 1])
            limit = _get_long(argv[j + 2])
            j += 2
        elif direction == DIR_AUTO and opt == b"rev":
            direction = DIR_REVERSE
        elif rangetype == RANGE_AUTO and opt == b"bylex":
            rangetype = RANGE_LEX
        elif rangetype == RANGE_AUTO and opt == b"byscore":
            rangetype = RANGE_SCORE
        else:
            raise ERR_SYNTAX
        j += 1
    if direction == DIR_AUTO:
        direction = DIR_FORWARD
    if rangetype == RANGE_AUTO:
        rangetype = RANGE_RANK
    if limit != -1 and rangetype == RANGE_RANK:
        raise Err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    if withscores and rangetype == RANGE_LEX:
        raise Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    reverse = direction == DIR_REVERSE
    if reverse and rangetype != RANGE_RANK:
        minidx, maxidx = maxidx, minidx
    if rangetype == RANGE_RANK:
        start = _get_long(argv[minidx])
        end = _get_long(argv[maxidx])
    elif rangetype == RANGE_SCORE:
        srange = parse_score_range(argv[minidx], argv[maxidx])
    else:
        lrange = LexRange(argv[minidx], argv[maxidx])

    db = c.db
    zobj = db.lookup_read(key)
    if zobj is None:
        if store:
            return _store_range(c, argv[1], [], -1)
        return []
    if type(zobj) is not ZSetValue:
        raise WRONGTYPE
    if rangetype == RANGE_RANK:
        pairs = rank_range(zobj, start, end, reverse)
        hint = len(pairs)
    elif rangetype == RANGE_SCORE:
        pairs = score_range(zobj, srange, offset, limit, reverse)
        hint = -1
    else:
        pairs = lex_range(zobj, lrange, offset, limit, reverse)
        hint = -1
    if store:
        return _store_range(c, argv[1], pairs, hint)
    if withscores:
        return _with_scores(c, pairs)
    return [m for m, _ in pairs]


def _store_range(c: Client, dst: bytes, pairs: list[tuple[bytes, float]], hint: int) -> int:
    """zrangeResultBeginStore/EmitForStore/FinalizeStore: the result starts
    as a skiplist when the known length is past the entries limit, members
    are added with zsetAdd (so listpack limits convert on the way)."""
    srv = c.srv
    db = c.db
    if pairs:
        cfg = srv.cfg
        max_entries = cfg.zset_max_listpack_entries
        max_value = cfg.zset_max_listpack_value
        dstobj = ZSetValue(not hint > max_entries)
        add = dstobj.add
        for m, s in pairs:
            add(s, m, 0, max_entries, max_value)
        _set_key(db, dst, dstobj)
        _notify(srv, NOTIFY_ZSET, b"zrangestore", dst, db.id)
        srv.dirty += 1
        return len(pairs)
    if db.delete(dst):
        _notify(srv, NOTIFY_GENERIC, b"del", dst, db.id)
        srv.dirty += 1
    return 0


def _set_key(db: Db, key: bytes, value: ZSetValue) -> None:
    """setKey: lazily expire the old value (lookupKeyWrite), then store,
    drop the TTL and signal WATCH (Db.set_key; a new key also wakes clients
    blocked on it, as dbAdd does)."""
    db.lookup_write(key)
    db.set_key(key, value)


@command("zrange")
def zrange(c: Client, argv: list[bytes]) -> Any:
    """ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]."""
    return _zrange_generic(c, argv, 1, False, RANGE_AUTO, DIR_AUTO)


@command("zrangestore")
def zrangestore(c: Client, argv: list[bytes]) -> Any:
    """ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]."""
    return _zrange_generic(c, argv, 2, True, RANGE_AUTO, DIR_AUTO)


@command("zrevrange")
def zrevrange(c: Client, argv: list[bytes]) -> Any:
    """ZREVRANGE key start stop [WITHSCORES]."""
    return _zrange_generic(c, argv, 1, False, RANGE_RANK, DIR_REVERSE)


@command("zrangebyscore")
def zrangebyscore(c: Client, argv: list[bytes]) -> Any:
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]."""
    return _zrange_generic(c, argv, 1, False, RANGE_SCORE, DIR_FORWARD)


@command("zrevrangebyscore")
def zrevrangebyscore(c: Client, argv: list[bytes]) -> Any:
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]."""
    return _zrange_generic(c, argv, 1, False, RANGE_SCORE, DIR_REVERSE)


@command("zrangebylex")
def zrangebylex(c: Client, argv: list[bytes]) -> Any:
    """ZRANGEBYLEX key min max [LIMIT offset count]."""
    return _zrange_generic(c, argv, 1, False, RANGE_LEX, DIR_FORWARD)


@command("zrevrangebylex")
def zrevrangebylex(c: Client, argv: list[bytes]) -> Any:
    """ZREVRANGEBYLEX key max min [LIMIT offset count]."""
    return _zrange_generic(c, argv, 1, False, RANGE_LEX, DIR_REVERSE)


# -- ZUNION / ZINTER / ZDIFF and their STORE forms, ZINTERCARD ---------------------------


class _Src:
    """zsetopsrc: one input of a set operation (a zset, a set or missing)."""

    __slots__ = ("value", "scores", "weight")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.weight = 1.0
        if value is None:
            self.scores: dict[bytes, float] = {}
        elif type(value) is ZSetValue:
            self.scores = value.scores
        else:
            # A set: every member scores 1 (intset members as decimal text).
            self.scores = dict.fromkeys(
                (b"%d" % m if type(m) is int else bytes(m) for m in value.sort_elements()), 1.0
            )


def _aggregate(target: float, val: float, aggregate: int) -> float:
    """zunionInterAggregate: SUM turns NaN (inf + -inf) into 0."""
    if aggregate == AGGR_SUM:
        t = target + val
        return 0.0 if t != t else t
    if aggregate == AGGR_MIN:
        return val if val < target else target
    return val if val > target else target


def _setop(c: Client, argv: list[bytes], dstkey: bytes | None, numkeys_idx: int, op: int, card_only: bool) -> Any:
    """zunionInterDiffGenericCommand."""
    setnum = _get_long(argv[numkeys_idx])
    if setnum < 1:
        raise Err(f"ERR at least 1 input key is needed for '{c.cmd.fullname if c.cmd else ''}' command")
    n = len(argv)
    if setnum > n - (numkeys_idx + 1):
        raise ERR_SYNTAX
    db = c.db
    srcs: list[_Src] = []
    j = numkeys_idx + 1
    for _ in range(setnum):
        v = db.lookup_read(argv[j])
        if v is not None and type(v) is not ZSetValue and type_name(v) != b"set":
            raise WRONGTYPE
        srcs.append(_Src(v))
        j += 1
    aggregate = AGGR_SUM
    withscores = False
    limit = 0
    while j < n:
        remaining = n - j
        opt = argv[j].lower()
        if op != OP_DIFF and not card_only and remaining >= setnum + 1 and opt == b"weights":
            j += 1
            for src in srcs:
                w = string2d(argv[j])
                if w is None:
                    raise ERR_WEIGHT
                src.weight = w
                j += 1
        elif op != OP_DIFF and not card_only and remaining >= 2 and opt == b"aggregate":
            a = argv[j + 1].lower()
            if a == b"sum":
                aggregate = AGGR_SUM
            elif a == b"min":
                aggregate = AGGR_MIN
            elif a == b"max":
                aggregate = AGGR_MAX
            else:
                raise ERR_SYNTAX
            j += 2
        elif remaining >= 1 and dstkey is None and not card_only and opt == b"withscores":
            withscores = True
            j += 1
        elif card_only and remaining >= 2 and opt == b"limit":
            limit = _get_positive(argv[j + 1], "LIMIT can't be negative")
            j += 2
        else:
            raise ERR_SYNTAX

    if op != OP_DIFF:
        srcs.sort(key=lambda s: len(s.scores))  # qsort by cardinality (glibc's is stable)

    result: dict[bytes, float] = {}
    if op == OP_INTER:
        first = srcs[0]
        cardinality = 0
        if first.scores:
            w0 = first.weight
            rest = srcs[1:]
            for m, s in first.scores.items():
                score = w0 * s
                if score != score:
                    score = 0.0
                for src in rest:
                    if src.value is first.value:
                        score = _aggregate(score, s * src.weight, aggregate)
                        continue
                    v = src.scores.get(m)
                    if v is None:
                        break
                    score = _aggregate(score, v * src.weight, aggregate)
                else:
                    if card_only:
                        cardinality += 1
                        if limit and cardinality >= limit:
                            break
                    else:
                        result[m] = score
        if card_only:
            return cardinality
    elif op == OP_UNION:
        for src in srcs:
            w = src.weight
            for m, s in src.scores.items():
                score = w * s
                if score != score:
                    score = 0.0
                old = result.get(m)
                result[m] = score if old is None else _aggregate(old, score, aggregate)
    else:
        first = srcs[0]
        if first.scores:
            others = srcs[1:]
            if not any(o.value is first.value and o.value is not None for o in others):
                for m, s in first.scores.items():
                    for o in others:
                        if m in o.scores:
                            break
                    else:
                        result[m] = s

    srv = c.srv
    if dstkey is not None:
        if result:
            dstobj = ZSetValue.from_pairs(result.items(), False)
            cfg = srv.cfg
            dstobj.maybe_to_listpack(cfg.zset_max_listpack_entries, cfg.zset_max_listpack_value)
            _set_key(db, dstkey, dstobj)
            event = (b"zunionstore", b"zinterstore", b"zdiffstore")[op]
            _notify(srv, NOTIFY_ZSET, event, dstkey, db.id)
            srv.dirty += 1
            return len(result)
        if db.delete(dstkey):
            _notify(srv, NOTIFY_GENERIC, b"del", dstkey, db.id)
            srv.dirty += 1
        return 0
    ordered = sorted((s, m) for m, s in result.items())
    if withscores:
        return _with_scores(c, ((m, s) for s, m in ordered))
    return [m for _, m in ordered]


@command("zunionstore")
def zunionstore(c: Client, argv: list[bytes]) -> Any:
    """ZUNIONSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]."""
    return _setop(c, argv, argv[1], 2, OP_UNION, False)


@command("zinterstore")
def zinterstore(c: Client, argv: list[bytes]) -> Any:
    """ZINTERSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]."""
    return _setop(c, argv, argv[1], 2, OP_INTER, False)


@command("zdiffstore")
def zdiffstore(c: Client, argv: list[bytes]) -> Any:
    """ZDIFFSTORE dst numkeys key [key ...]."""
    return _setop(c, argv, argv[1], 2, OP_DIFF, False)


@command("zunion")
def zunion(c: Client, argv: list[bytes]) -> Any:
    """ZUNION numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE ...] [WITHSCORES]."""
    return _setop(c, argv, None, 1, OP_UNION, False)


@command("zinter")
def zinter(c: Client, argv: list[bytes]) -> Any:
    """ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE ...] [WITHSCORES]."""
    return _setop(c, argv, None, 1, OP_INTER, False)


@command("zdiff")
def zdiff(c: Client, argv: list[bytes]) -> Any:
    """ZDIFF numkeys key [key ...] [WITHSCORES]."""
    return _setop(c, argv, None, 1, OP_DIFF, False)


@command("zintercard")
def zintercard(c: Client, argv: list[bytes]) -> Any:
    """ZINTERCARD numkeys key [key ...] [LIMIT limit]."""
    return _setop(c, argv, None, 1, OP_INTER, True)


# -- ZPOPMIN / ZPOPMAX / ZMPOP ------------------------------------------------------------


def pop_members(c: Client, key: bytes, zobj: ZSetValue, where_max: bool, count: int) -> list[tuple[bytes, float]]:
    """The removal half of genericZpopCommand on a non-empty zset: pops
    ``min(count, card)`` members from the chosen end, notifies
    ``zpopmin``/``zpopmax`` (and ``del`` when emptied), counts dirty."""
    db = c.db
    srv = c.srv
    sl = zobj.sl
    llen = len(sl)
    k = count if count < llen else llen
    if where_max:
        picked = [(m, s) for s, m in sl.islice(llen - k, llen, reverse=True)]
        zobj.delete_slice(llen - k, llen)
    else:
        picked = [(m, s) for s, m in sl.islice(0, k)]
        zobj.delete_slice(0, k)
    srv.dirty += k
    _notify(srv, NOTIFY_ZSET, b"zpopmax" if where_max else b"zpopmin", key, db.id)
    if not zobj.scores:
        db.delete(key)
        _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
    elif db.watched:
        db.signal_modified(key)
    return picked


def _zpop_minmax(c: Client, argv: list[bytes], where_max: bool) -> Any:
    """ZPOPMIN/ZPOPMAX key [count]: flat pairs, nested in RESP3 with a count."""
    if len(argv) > 3:
        raise ERR_SYNTAX
    count = -1
    if len(argv) == 3:
        count = _get_positive(argv[2])
    zobj = _zset_or_none(c.db.lookup_write(argv[1]))
    if zobj is None or count == 0:
        return []
    picked = pop_members(c, argv[1], zobj, where_max, 1 if count == -1 else count)
    if c.resp3 and count != -1:
        return [[m, s] for m, s in picked]
    out: list[Any] = []
    for m, s in picked:
        out.append(m)
        out.append(s)
    return out


@command("zpopmin")
def zpopmin(c: Client, argv: list[bytes]) -> Any:
    """ZPOPMIN key [count]."""
    return _zpop_minmax(c, argv, False)


@command("zpopmax")
def zpopmax(c: Client, argv: list[bytes]) -> Any:
    """ZPOPMAX key [count]."""
    return _zpop_minmax(c, argv, True)


def parse_zmpop(argv: list[bytes], numkeys_idx: int) -> tuple[list[bytes], bool, int]:
    """zmpopGenericCommand's arguments: (keys, where_max, count)."""
    numkeys = _get_range_long(argv[numkeys_idx], 1, LONG_MAX, "numkeys should be greater than 0")
    where_idx = numkeys_idx + numkeys + 1
    n = len(argv)
    if where_idx >= n:
        raise ERR_SYNTAX
    where = argv[where_idx].lower()
    if where == b"min":
        where_max = False
    elif where == b"max":
        where_max = True
    else:
        raise ERR_SYNTAX
    count = -1
    j = where_idx + 1
    while j < n:
        if count == -1 and argv[j].lower() == b"count" and n - 1 - j > 0:
            count = _get_range_long(argv[j + 1], 1, LONG_MAX, "count should be greater than 0")
            j += 2
        else:
            raise ERR_SYNTAX
    if count == -1:
        count = 1
    return argv[numkeys_idx + 1 : where_idx], where_max, count


def mpop_reply(c: Client, key: bytes, zobj: ZSetValue, where_max: bool, count: int) -> list[Any]:
    """Pop for ZMPOP/BZMPOP: ``[key, [[member, score], ...]]`` and the
    ``ZPOPMIN|ZPOPMAX key n`` rewrite."""
    n = min(count, len(zobj.scores))
    picked = pop_members(c, key, zobj, where_max, count)
    c.prop_argv = [b"ZPOPMAX" if where_max else b"ZPOPMIN", key, b"%d" % n]
    return [key, [[m, s] for m, s in picked]]


@command("zmpop")
def zmpop(c: Client, argv: list[bytes]) -> Any:
    """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: the first
    non-empty key, or a null array."""
    keys, where_max, count = parse_zmpop(argv, 1)
    db = c.db
    for key in keys:
        zobj = _zset_or_none(db.lookup_write(key))
        if zobj is not None:
            return mpop_reply(c, key, zobj, where_max, count)
    return NULL_ARRAY


# -- BZPOPMIN / BZPOPMAX / BZMPOP (server/blocking.py) --------------------------------


def _serve_bzpop(c: Client, key: bytes, zobj: Any) -> Any:
    """serveClientBlockedOnKey for a zset: pop as the non-blocking form
    does and record ``ZPOPMIN|ZPOPMAX key [n]`` (``n = min(count, card)``
    for BZMPOP)."""
    where_max, count = c.blocked.data
    name = b"ZPOPMAX" if where_max else b"ZPOPMIN"
    db = c.blocked.db
    if count == -1:
        picked = pop_members(c, key, zobj, where_max, 1)
        c.srv.propagator.add(db.id, [name, key])
        m, s = picked[0]
        return [key, m, s]
    n = min(count, len(zobj.scores))
    picked = pop_members(c, key, zobj, where_max, count)
    c.srv.propagator.add(db.id, [name, key, b"%d" % n])
    return [key, [[m, s] for m, s in picked]]


def _blocking_zpop(c: Client, keys: list[bytes], where_max: bool, timeout_arg: bytes, count: int) -> Any:
    """blockingGenericZpopCommand: the timeout is parsed first; the first
    non-empty zset among ``keys`` is popped at once (recorded as
    ``ZPOPMIN|ZPOPMAX key`` or, with a count, ``... key n``); otherwise the
    client blocks, or gets a null array where it may not block (MULTI,
    scripts)."""
    from .. import blocking

    timeout = blocking.parse_timeout(timeout_arg)
    db = c.db
    for key in keys:
        zobj = _zset_or_none(db.lookup_write(key))
        if zobj is None:
            continue
        name = b"ZPOPMAX" if where_max else b"ZPOPMIN"
        if count == -1:
            m, s = pop_members(c, key, zobj, where_max, 1)[0]
            c.prop_argv = [name, key]
            return [key, m, s]
        return mpop_reply(c, key, zobj, where_max, count)
    if not blocking.can_block(c):
        return NULL_ARRAY
    return blocking.block_for_keys(c, keys, timeout, b"zset", _serve_bzpop, NULL_ARRAY, (where_max, count))


@command("bzpopmin")
def bzpopmin(c: Client, argv: list[bytes]) -> Any:
    """BZPOPMIN key [key ...] timeout: [key, member, score] or a null array."""
    return _blocking_zpop(c, argv[1:-1], False, argv[-1], -1)


@command("bzpopmax")
def bzpopmax(c: Client, argv: list[bytes]) -> Any:
    """BZPOPMAX key [key ...] timeout."""
    return _blocking_zpop(c, argv[1:-1], True, argv[-1], -1)


@command("bzmpop")
def bzmpop(c: Client, argv: list[bytes]) -> Any:
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]: the
    arguments after the timeout are checked first, as zmpopGenericCommand does."""
    keys, where_max, count = parse_zmpop(argv, 2)
    return _blocking_zpop(c, keys, where_max, argv[1], count)


def install(srv: Any) -> None:
    """The blocking pops need server/blocking.py's hooks on the server;
    install them unless another family already did."""
    if getattr(srv, "on_ready_keys", None) is None:
        from .. import blocking

        blocking.install(srv)


# -- ZRANDMEMBER ------------------------------------------------------------------------

ZRANDMEMBER_SUB_STRATEGY_MUL = 3


@command("zrandmember")
def zrandmember(c: Client, argv: list[bytes]) -> Any:
    """ZRANDMEMBER key [count [WITHSCORES]] (zrandmemberWithCountCommand's
    cases: repetition for a negative count, the whole zset from the highest
    score down when count >= card, a listpack's sample in rank order)."""
    n = len(argv)
    if n >= 3:
        lcount = _get_range_long(argv[2], -LONG_MAX, LONG_MAX, None)
        if n > 4 or (n == 4 and argv[3].lower() != b"withscores"):
            raise ERR_SYNTAX
        withscores = n == 4
        if withscores and (lcount < -LONG_MAX // 2 or lcount > LONG_MAX // 2):
            raise Err("ERR value is out of range")
        return _zrandmember_count(c, argv[1], lcount, withscores)
    zobj = _zset_or_none(c.db.lookup_read(argv[1]))
    if zobj is None:
        return None
    return zobj.sl[random.randrange(len(zobj.sl))][1]


def _zrandmember_count(c: Client, key: bytes, lcount: int, withscores: bool) -> Any:
    zobj = _zset_or_none(c.db.lookup_read(key))
    if zobj is None:
        return []
    sl = zobj.sl
    size = len(sl)
    uniq = lcount >= 0
    count = lcount if uniq else -lcount
    if count == 0:
        return []
    picked: list[tuple[bytes, float]]
    if not uniq or count == 1:
        rr = random.randrange
        picked = []
        for _ in range(count):
            s, m = sl[rr(size)]
            picked.append((m, s))
    elif count >= size:
        picked = [(m, s) for s, m in reversed(sl)]
    elif count * ZRANDMEMBER_SUB_STRATEGY_MUL > size:
        idx = random.sample(range(size), count)
        picked = [(sl[i][1], sl[i][0]) for i in idx]
    elif zobj.lp:
        idx = sorted(random.sample(range(size), count))
        picked = [(sl[i][1], sl[i][0]) for i in idx]
    else:
        idx = random.sample(range(size), count)
        picked = [(sl[i][1], sl[i][0]) for i in idx]
    if withscores:
        return _with_scores(c, picked)
    return [m for m, _ in picked]


# -- ZSCAN ---------------------------------------------------------------------------------


@command("zscan")
def zscan(c: Client, argv: list[bytes]) -> Any:
    """ZSCAN key cursor [MATCH pattern] [COUNT count].  A listpack answers
    everything at once with cursor 0; a skiplist walks its members in a
    fixed hash order, the cursor being the next member's hash (see
    :meth:`ZSetValue.scan_order`)."""
    from .keys import parse_scan_cursor

    cursor = parse_scan_cursor(argv[2])
    zobj = _zset_or_none(c.db.lookup_read(argv[1]))
    if zobj is None:
        return [b"0", []]
    count = 10
    pat: bytes | None = None
    i = 3
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        left = n - i
        if opt == b"count" and left >= 2:
            count = _get_long(argv[i + 1])
            if count < 1:
                raise ERR_SYNTAX
            i += 2
        elif opt == b"match" and left >= 2:
            pat = argv[i + 1]
            i += 2
        else:
            raise ERR_SYNTAX
    match: Callable[[bytes], bool] | None = None
    if pat is not None and pat != b"*":
        match = compile_pattern(pat)
    out: list[bytes] = []
    if zobj.lp:
        for s, m in zobj.sl:
            if match is None or match(m):
                out.append(m)
                out.append(lp_score_text(s))
        return [b"0", out]
    order = zobj.scan_order()

    pos = bisect_left(order, (cursor,)) if cursor else 0
    end = pos + count
    scores = zobj.scores
    for _, m in order[pos:end]:
        if match is None or match(m):
            out.append(m)
            out.append(_fmt17(scores[m]))
    nxt = order[end][0] if end < len(order) else 0
    return [b"%d" % nxt, out]


__all__ = [
    "ZSetValue",
    "LexRange",
    "load_zset",
    "load_zset_lists",
    "new_zset",
    "parse_score_range",
    "strtod_full",
]
