"""Set commands (t_set.c, Redis 7.0.15) and the set value.

SADD SREM SCARD SISMEMBER SMISMEMBER SMEMBERS SRANDMEMBER SPOP SMOVE
SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN.

Encodings, as 7.0 has them (no listpack sets before 7.2):

* ``intset`` -- a set created by a member that is a canonical int64
  (``string2ll``) stays an intset while every member is one and there are at
  most ``set-max-intset-entries`` of them.  It is kept here as a sorted list
  of ints plus the intset's element width (2/4/8 bytes, which only grows, as
  ``intsetUpgradeAndAdd`` does), so iteration is ascending exactly like
  Redis's and SMEMBERS/SSCAN/SINTER... of an intset match it byte for byte;
* ``hashtable`` -- any other set, and an intset once a non-integer member or
  one member too many arrives; it never converts back.  It is a list of
  members plus a member -> index dict, so a random member (SPOP,
  SRANDMEMBER) is O(1) as ``dictGetFairRandomKey`` is; removal swaps the
  last member into the hole.  ``slots`` follows the dict's bucket count
  (growth when full, ``dictResize`` under 10% fill) for MEMORY USAGE.

Results built by SINTER/SUNION/SDIFF(STORE) and SPOP's "new set" strategy
start as an intset and convert as ``setTypeAdd`` would, so the stored
encoding, and the reply order when the result is an intset, are Redis's.

Effects (spec/propagation.md): SPOP is recorded as ``SREM k m``; SPOP with a
count as one ``SREM k m`` per popped member (7.0), or ``DEL k`` when it pops
the whole set; everything else verbatim.  Keyspace events follow 7.0:
``sadd``, ``srem``, ``spop``, SMOVE's ``srem`` then ``sadd``, the
``*store`` events, and ``del`` when a set is emptied.

HSCAN/SSCAN cursors (:func:`scan_elements`) reuse SCAN's snapshot scheme
(see keys.py): an intset/listpack answers everything at once with cursor 0
as Redis does; a hashtable with more than COUNT elements is walked over a
snapshot of its element list taken at cursor 0.
"""

from __future__ import annotations

import random
import weakref
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from .. import keyspace
from ..args import ERR_NOT_INT, ERR_OUT_OF_RANGE, ERR_SYNTAX
from ..client import Client
from ..keyspace import WRONGTYPE, Db
from ..protocol import string2ll
from ..registry import command
from ..reply import Err, SetReply
from ..util import compile_pattern
from .introspection import je_size, sds_alloc
from .keys import parse_scan_cursor

NOTIFY_GENERIC = 1 << 2
NOTIFY_SET = 1 << 5

LONG_MAX = (1 << 63) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

ROBJ = 16
DICT_STRUCT = 56  # sizeof(dict) in 7.0
DICT_ENTRY = 24
INTSET_HEADER = 8  # encoding + length, uint32 each
DICT_HT_INITIAL_SIZE = 4

# spopWithCountCommand's strategy switch.
SPOP_MOVE_STRATEGY_MUL = 5

# A reply that repeats random picks (negative counts) is built in memory;
# Redis streams it into the client's output buffer and, with the default
# unlimited buffer for normal clients, runs out of memory on absurd counts.
# Ambry refuses those instead of dying.
MAX_RANDOM_REPLY = 1 << 24
ERR_REPLY_TOO_LARGE = Err("ERR count is too large to build the reply")

ERR_RANGE_LONG = Err(
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
)


_random = random.random


def _int_width(v: int) -> int:
    """_intsetValueEncoding: bytes per element an intset needs for ``v``."""
    if INT16_MIN <= v <= INT16_MAX:
        return 2
    if INT32_MIN <= v <= INT32_MAX:
        return 4
    return 8


def pow2_slots(n: int) -> int:
    """_dictNextExp: the bucket count dictExpand(n) gives (a power of two >= 4)."""
    s = DICT_HT_INITIAL_SIZE
    while s < n:
        s <<= 1
    return s


def rdb_len_size(n: int) -> int:
    """rdbSaveLen's size."""
    if n < 1 << 6:
        return 1
    if n < 1 << 14:
        return 2
    if n <= 0xFFFFFFFF:
        return 5
    return 9


def rdb_string_len(s: bytes, compress: bool = True) -> int:
    """rdbSaveRawString's size: a 32-bit-or-less canonical integer of at
    most 11 chars as an integer; with rdbcompression, LZF when it saves
    room (``lzf_compress`` into ``len - 4`` bytes) for more than 20 bytes;
    else length + bytes."""
    n = len(s)
    if n <= 11:
        v = string2ll(s)
        if v is not None:
            if -(1 << 7) <= v < 1 << 7:
                return 2
            if -(1 << 15) <= v < 1 << 15:
                return 3
            if -(1 << 31) <= v < 1 << 31:
                return 5
    if compress and n > 20:
        import lzf

        packed = lzf.compress(bytes(s), n - 5)
        if packed:
            return 1 + rdb_len_size(len(packed)) + rdb_len_size(n) + len(packed)
    return rdb_len_size(n) + n


# -- the value ----------------------------------------------------------------------


class SetValue:
    """A Redis set: intset (``ints`` sorted, ``width``) or hashtable
    (``members`` + ``pos``); exactly one of ``ints`` / ``members`` is set."""

    __slots__ = ("ints", "width", "members", "pos", "slots", "__weakref__")

    def __init__(self) -> None:
        """An empty intset (createIntsetObject)."""
        self.ints: list[int] | None = []
        self.width = 2
        self.members: list[bytes] | None = None
        self.pos: dict[bytes, int] | None = None
        self.slots = 0

    # -- construction ---------------------------------------------------------

    @classmethod
    def create_for(cls, first: bytes) -> SetValue:
        """setTypeCreate: an intset when ``first`` is an integer, else an
        empty hashtable (no buckets yet)."""
        s = cls()
        if string2ll(first) is None:
            s.ints = None
            s.members = []
            s.pos = {}
        return s

    @classmethod
    def from_members(cls, members: Iterable[bytes], max_intset: int) -> SetValue:
        """A set built by adding ``members`` in order to a fresh intset (the
        S*STORE commands' result set)."""
        s = cls()
        s.add_all(members, max_intset)
        return s

    @classmethod
    def from_intset(cls, ints: Iterable[int], width: int | None = None) -> SetValue:
        """An intset with these members (e.g. an RDB intset blob); ``width``
        defaults to the smallest encoding that holds them all."""
        s = cls()
        vals = sorted(set(ints))
        s.ints = vals
        w = 2
        if vals:
            w = max(_int_width(vals[0]), _int_width(vals[-1]))
        s.width = max(w, width or 2)
        return s

    @classmethod
    def hashtable(cls, members: Iterable[bytes]) -> SetValue:
        """A hashtable-encoded set of ``members`` (presized like setTypeDup)."""
        s = cls.__new__(cls)  # every slot is set here (no throw-away intset from __init__)
        s.ints = None
        s.width = 2
        ms = list(members)
        pos = dict(zip(ms, range(len(ms))))  # noqa: B905 - same length
        if len(pos) != len(ms):  # repeated members: the first occurrence counts
            ms = list(dict.fromkeys(ms))
            pos = dict(zip(ms, range(len(ms))))  # noqa: B905
        s.members = ms
        s.pos = pos
        s.slots = pow2_slots(len(ms))
        return s

    def assign(self, other: SetValue) -> None:
        """Take over ``other``'s contents (dbOverwrite with a rebuilt set)."""
        self.ints = other.ints
        self.width = other.width
        self.members = other.members
        self.pos = other.pos
        self.slots = other.slots

    # -- basic protocol -------------------------------------------------------

    def __len__(self) -> int:
        ints = self.ints
        return len(ints) if ints is not None else len(self.members)  # type: ignore[arg-type]

    def __contains__(self, m: bytes) -> bool:
        """setTypeIsMember."""
        ints = self.ints
        if ints is None:
            return m in self.pos  # type: ignore[operator]
        v = string2ll(m)
        if v is None:
            return False
        i = bisect_left(ints, v)
        return i < len(ints) and ints[i] == v

    def __iter__(self) -> Iterator[bytes]:
        """Members in Redis's iteration order (ascending for an intset)."""
        return iter(self.elements())

    def __repr__(self) -> str:
        return f"SetValue({self.encoding()!r}, {self.elements()!r})"

    @property
    def is_intset(self) -> bool:
        return self.ints is not None

    def elements(self) -> list[bytes]:
        """A fresh list of the members in iteration order."""
        ints = self.ints
        if ints is None:
            return list(self.members)  # type: ignore[arg-type]
        return [b"%d" % v for v in ints]

    def container(self) -> Any:
        """Something supporting ``in`` over the members as bytes, without
        copying a hashtable."""
        ints = self.ints
        if ints is None:
            return self.pos
        return {b"%d" % v for v in ints}

    # -- changes ----------------------------------------------------------------

    def convert(self) -> None:
        """setTypeConvert(OBJ_ENCODING_HT): presized to the intset's length."""
        ints = self.ints
        assert ints is not None
        ms = [b"%d" % v for v in ints]
        self.members = ms
        self.pos = {m: i for i, m in enumerate(ms)}
        self.ints = None
        self.slots = pow2_slots(len(ms))

    def grow(self) -> None:
        """_dictExpandIfNeeded after adds: the table doubles whenever it is
        full, so after any run of adds it is the smallest doubling of its
        old size that holds every member."""
        n = len(self.members)  # type: ignore[arg-type]
        s = self.slots
        if n > s:
            s = s or DICT_HT_INITIAL_SIZE
            while s < n:
                s <<= 1
            self.slots = s

    def _shrink(self) -> None:
        """htNeedsResize + dictResize after a removal (fill under 10%)."""
        s = self.slots
        if s > DICT_HT_INITIAL_SIZE:
            n = len(self.members)  # type: ignore[arg-type]
            if n * 10 < s:
                self.slots = pow2_slots(n)

    def add(self, m: bytes, max_intset: int) -> bool:
        """setTypeAdd: True when ``m`` was not a member."""
        ints = self.ints
        if ints is None:
            pos = self.pos
            if m in pos:  # type: ignore[operator]
                return False
            members = self.members
            pos[m] = len(members)  # type: ignore[index,arg-type]
            members.append(m)  # type: ignore[union-attr]
            self.grow()
            return True
        v = string2ll(m)
        if v is None:
            self.convert()
            self.pos[m] = len(self.members)  # type: ignore[index,arg-type]
            self.members.append(m)  # type: ignore[union-attr]
            self.grow()
            return True
        i = bisect_left(ints, v)
        if i < len(ints) and ints[i] == v:
            return False
        ints.insert(i, v)
        w = _int_width(v)
        if w > self.width:
            self.width = w
        if len(ints) > max_intset:
            self.convert()
        return True

    def add_all(self, members: Iterable[bytes], max_intset: int) -> int:
        """SADD's loop; returns how many were new."""
        added = 0
        for m in members:
            if self.ints is None:
                pos = self.pos
                if m not in pos:  # type: ignore[operator]
                    pos[m] = len(self.members)  # type: ignore[index,arg-type]
                    self.members.append(m)  # type: ignore[union-attr]
                    added += 1
            elif self.add(m, max_intset):
                added += 1
        if self.ints is None:
            self.grow()
        return added

    def remove(self, m: bytes) -> bool:
        """setTypeRemove."""
        ints = self.ints
        if ints is None:
            i = self.pos.pop(m, None)  # type: ignore[union-attr]
            if i is None:
                return False
            members = self.members
            last = members.pop()  # type: ignore[union-attr]
            if i < len(members):  # type: ignore[arg-type]
                members[i] = last  # type: ignore[index]
                self.pos[last] = i  # type: ignore[index]
            self._shrink()
            return True
        v = string2ll(m)
        if v is None:
            return False
        i = bisect_left(ints, v)
        if i < len(ints) and ints[i] == v:
            del ints[i]
            return True
        return False

    def random_member(self) -> bytes:
        """setTypeRandomElement of a non-empty set."""
        ints = self.ints
        if ints is None:
            return random.choice(self.members)  # type: ignore[arg-type]
        return b"%d" % random.choice(ints)

    def pop_random(self) -> bytes:
        """SPOP's pick-and-remove (the last member fills the hole)."""
        ints = self.ints
        if ints is None:
            members = self.members
            n = len(members)  # type: ignore[arg-type]
            i = int(_random() * n)
            m = members[i]  # type: ignore[index]
            last = members.pop()  # type: ignore[union-attr]
            pos = self.pos
            del pos[m]  # type: ignore[union-attr]
            if i < n - 1:
                members[i] = last  # type: ignore[index]
                pos[last] = i  # type: ignore[index]
            if self.slots > DICT_HT_INITIAL_SIZE:
                self._shrink()
            return m
        return b"%d" % ints.pop(int(_random() * len(ints)))

    # -- the generic value protocol ---------------------------------------------

    def copy(self) -> SetValue:
        """setTypeDup: an intset blob copied as is; a hashtable presized."""
        s = SetValue()
        if self.ints is not None:
            s.ints = list(self.ints)
            s.width = self.width
        else:
            s.ints = None
            s.members = list(self.members)  # type: ignore[arg-type]
            s.pos = dict(self.pos)  # type: ignore[arg-type]
            s.slots = pow2_slots(len(s.members))
        return s

    def encoding(self) -> bytes:
        return b"intset" if self.ints is not None else b"hashtable"

    def digest_kind(self) -> tuple[str, list[Any]]:
        ints = self.ints
        return ("set", list(ints) if ints is not None else list(self.members))  # type: ignore[arg-type]

    def sort_elements(self) -> list[bytes]:
        return self.elements()

    def intset_blob(self) -> bytes:
        """The intset as Redis lays it out (RDB ``RDB_TYPE_SET_INTSET``):
        little-endian encoding and length, then the sorted elements."""
        ints = self.ints
        assert ints is not None
        w = self.width
        out = bytearray(w.to_bytes(4, "little") + len(ints).to_bytes(4, "little"))
        for v in ints:
            out += v.to_bytes(w, "little", signed=True)
        return bytes(out)

    def serialized_length(self, srv: Any = None) -> int:
        """rdbSavedObjectLen (DEBUG OBJECT): the intset blob saved as one
        string, or the count then every member; ``srv`` tells whether
        rdbcompression is on (default yes)."""
        compress = True if srv is None else bool(srv.cfg.rdbcompression)
        if self.ints is not None:
            return rdb_string_len(self.intset_blob(), compress)
        n = rdb_len_size(len(self.members))  # type: ignore[arg-type]
        for m in self.members:  # type: ignore[union-attr]
            n += rdb_string_len(m, compress)
        return n

    def redis_memory_usage(self, samples: int) -> int:
        """objectComputeSize: robj + the intset allocation, or robj + dict +
        buckets + the sampled average entry (dictEntry + member sds) times
        the size."""
        ints = self.ints
        if ints is not None:
            return ROBJ + je_size(INTSET_HEADER + self.width * len(ints))
        members = self.members
        n = len(members)  # type: ignore[arg-type]
        asize = ROBJ + DICT_STRUCT + 8 * self.slots
        elesize = 0
        k = 0
        for m in members:  # type: ignore[union-attr]
            if k >= samples:
                break
            elesize += DICT_ENTRY + sds_alloc(len(m))
            k += 1
        if k:
            return int(asize + elesize / k * n)
        return asize


keyspace.TYPE_NAMES[SetValue] = b"set"


# -- result sets ------------------------------------------------------------------------


def _ints_of(elems: Iterable[bytes], limit: int) -> list[int] | None:
    """The members as ints when all are canonical integers and there are
    at most ``limit`` of them (a fresh intset would hold them), else None."""
    out = []
    for m in elems:
        v = string2ll(m)
        if v is None:
            return None
        out.append(v)
        if len(out) > limit:
            return None
    return out


def _result(elems: list[bytes], max_intset: int) -> SetValue:
    """What ``dstset = createIntsetObject()`` plus setTypeAdd of every
    result member ends up as: an intset when all are integers and they fit,
    else a hashtable (its bucket count as if it converted on overflow or
    from the start: the exact history is not tracked)."""
    if len(elems) <= max_intset:
        ints = _ints_of(elems, max_intset)
        if ints is not None:
            return SetValue.from_intset(ints)
    s = SetValue.hashtable(elems)
    if len(elems) > max_intset:
        s.slots = max(s.slots, pow2_slots(max_intset + 1))
    return s


def _int_result(ints: Iterable[int], max_intset: int) -> SetValue:
    """A result made only of intset members."""
    vals = list(ints)
    if len(vals) <= max_intset:
        return SetValue.from_intset(vals)
    return _result([b"%d" % v for v in sorted(vals)], max_intset)


# -- helpers ----------------------------------------------------------------------


def _notify(srv: Any, cls: int, event: bytes, key: bytes, dbid: int) -> None:
    if srv.cfg.notify_keyspace_events:
        srv.notify(cls, event, key, dbid)


def _read_set(db: Db, key: bytes) -> SetValue | None:
    """lookupKeyRead + checkType."""
    s = db.lookup_read(key)
    if s is None:
        return None
    if type(s) is not SetValue:
        raise WRONGTYPE
    return s


def _write_set(db: Db, key: bytes) -> SetValue | None:
    """lookupKeyWrite + checkType."""
    s = db.lookup_write(key)
    if s is None:
        return None
    if type(s) is not SetValue:
        raise WRONGTYPE
    return s


def _get_long(arg: bytes) -> int:
    v = string2ll(arg)
    if v is None:
        raise ERR_NOT_INT
    return v


# -- SADD / SREM / SCARD / SISMEMBER / SMISMEMBER ----------------------------------------


@command("sadd")
def sadd(c: Client, argv: list[bytes]) -> Any:
    """SADD key member [member ...]: the number of new members."""
    key = argv[1]
    db = c.db
    s = db.lookup_write(key)
    if s is None:
        s = SetValue.create_for(argv[2])
        db.add(key, s)
    elif type(s) is not SetValue:
        raise WRONGTYPE
    srv = c.srv
    if len(argv) == 3 and s.ints is None:
        # one member into a hashtable: the benchmark's case, kept short
        m = argv[2]
        pos: dict[bytes, int] = s.pos  # type: ignore[assignment]
        if m in pos:
            return 0
        ms: list[bytes] = s.members  # type: ignore[assignment]
        pos[m] = len(ms)
        ms.append(m)
        if len(pos) > s.slots:
            s.grow()
        added = 1
    else:
        added = s.add_all(islice(argv, 2, None), srv.cfg.set_max_intset_entries)
    if added:
        if db.watched:
            db.signal_modified(key)
        if srv.cfg.notify_keyspace_events:
            srv.notify(NOTIFY_SET, b"sadd", key, db.id)
        srv.dirty += added
    return added


@command("srem")
def srem(c: Client, argv: list[bytes]) -> Any:
    """SREM key member [member ...]: the number removed; an emptied set is deleted."""
    key = argv[1]
    db = c.db
    s = _write_set(db, key)
    if s is None:
        return 0
    deleted = 0
    removed = False
    for m in islice(argv, 2, None):
        if s.remove(m):
            deleted += 1
            if not (s.ints or s.members):  # emptied (no __len__ call)
                db.delete(key)
                removed = True
                break
    if deleted:
        srv = c.srv
        if db.watched:
            db.signal_modified(key)
        _notify(srv, NOTIFY_SET, b"srem", key, db.id)
        if removed:
            _notify(srv, NOTIFY_GENERIC, b"del", key, db.id)
        srv.dirty += deleted
    return deleted


@command("scard")
def scard(c: Client, argv: list[bytes]) -> Any:
    """SCARD key."""
    s = _read_set(c.db, argv[1])
    return 0 if s is None else len(s)


@command("sismember")
def sismember(c: Client, argv: list[bytes]) -> Any:
    """SISMEMBER key member: 1 or 0."""
    s = _read_set(c.db, argv[1])
    return 1 if s is not None and argv[2] in s else 0


@command("smismember")
def smismember(c: Client, argv: list[bytes]) -> Any:
    """SMISMEMBER key member [member ...]: an array of 1/0 (zeros for a missing key)."""
    s = _read_set(c.db, argv[1])
    if s is None:
        return [0] * (len(argv) - 2)
    return [1 if m in s else 0 for m in islice(argv, 2, None)]


# -- SMOVE ------------------------------------------------------------------------------


@command("smove")
def smove(c: Client, argv: list[bytes]) -> Any:
    """SMOVE source destination member (smoveCommand): both keys are looked
    up for writing first; a missing source answers 0 before the
    destination's type is checked; the same set on both sides only tells
    membership.  Events: srem (and del) on the source, then sadd."""
    db = c.db
    src, dst, ele = argv[1], argv[2], argv[3]
    srcset = db.lookup_write(src)
    dstset = db.lookup_write(dst)
    if srcset is None:
        return 0
    if type(srcset) is not SetValue or (dstset is not None and type(dstset) is not SetValue):
        raise WRONGTYPE
    if srcset is dstset:
        return 1 if ele in srcset else 0
    if not srcset.remove(ele):
        return 0
    srv = c.srv
    dbid = db.id
    _notify(srv, NOTIFY_SET, b"srem", src, dbid)
    if not (srcset.ints or srcset.members):
        db.delete(src)
        _notify(srv, NOTIFY_GENERIC, b"del", src, dbid)
    if dstset is None:
        dstset = SetValue.create_for(ele)
        db.add(dst, dstset)
    if db.watched:
        db.signal_modified(src)
        db.signal_modified(dst)
    srv.dirty += 1
    if dstset.add(ele, srv.cfg.set_max_intset_entries):
        srv.dirty += 1
        _notify(srv, NOTIFY_SET, b"sadd", dst, dbid)
    return 1


# -- SPOP / SRANDMEMBER ---------------------------------------------------------------------


def _whole_set_reply(s: SetValue, max_intset: int) -> SetReply:
    """sunionDiffGenericCommand over one set: its members re-added to a fresh
    intset, so an intset (or an integers-only hashtable that fits) answers
    in ascending order."""
    if s.ints is not None:
        return SetReply(s.elements())
    return SetReply(_result(s.elements(), max_intset).elements())


@command("spop")
def spop(c: Client, argv: list[bytes]) -> Any:
    """SPOP key [count]: recorded as ``SREM k m``; see :func:`_spop_count`."""
    n = len(argv)
    if n == 3:
        return _spop_count(c, argv)
    if n > 3:
        raise ERR_SYNTAX
    key = argv[1]
    db = c.db
    s = _write_set(db, key)
    if s is None:
        return None
    ele = s.pop_random()
    srv = c.srv
    notify = srv.cfg.notify_keyspace_events
    if notify:
        srv.notify(NOTIFY_SET, b"spop", key, db.id)
    c.prop_argv = [b"SREM", key, ele]
    if not (s.ints or s.members):
        db.delete(key)
        if notify:
            srv.notify(NOTIFY_GENERIC, b"del", key, db.id)
    elif db.watched:
        db.signal_modified(key)
    srv.dirty += 1
    return ele


def _spop_count(c: Client, argv: list[bytes]) -> Any:
    """spopWithCountCommand: count >= size pops everything (recorded as
    ``DEL k``); a small count removes random members one by one; a count
    close to the size keeps ``size - count`` random members in a new set
    (which may come out as an intset) and pops the rest in iteration order.
    Both record one ``SREM k m`` per member popped."""
    count = string2ll(argv[2])  # getPositiveLongFromObjectOrReply: one error text
    if count is None or count < 0:
        raise ERR_OUT_OF_RANGE
    key = argv[1]
    db = c.db
    s = _write_set(db, key)
    if s is None or count == 0:
        return SetReply()
    srv = c.srv
    size = len(s)
    dbid = db.id
    _notify(srv, NOTIFY_SET, b"spop", key, dbid)
    srv.dirty += count
    if count >= size:
        reply = _whole_set_reply(s, srv.cfg.set_max_intset_entries)
        db.delete(key)
        _notify(srv, NOTIFY_GENERIC, b"del", key, dbid)
        c.prop_argv = [b"DEL", key]
        srv.dirty += 1
        return reply
    remaining = size - count
    if remaining * SPOP_MOVE_STRATEGY_MUL > count:
        popped = [s.pop_random() for _ in range(count)]
    else:
        keep = random.sample(s.elements(), remaining)
        new = SetValue.create_for(keep[0])
        new.add_all(keep, srv.cfg.set_max_intset_entries)
        kept = set(keep)
        popped = [m for m in s.elements() if m not in kept]
        s.assign(new)
    prop = srv.propagator
    for m in popped:
        prop.add(dbid, [b"SREM", key, m])
    c.prevent_prop = True
    if db.watched:
        db.signal_modified(key)
    srv.dirty += 1
    return SetReply(popped)


@command("srandmember")
def srandmember(c: Client, argv: list[bytes]) -> Any:
    """SRANDMEMBER key [count]: a bulk, or an array (RESP3 too): distinct
    members for a positive count (the whole set, in iteration order, when
    count >= size), picks with repetition for a negative one."""
    n = len(argv)
    if n == 3:
        return _srandmember_count(c, argv)
    if n > 3:
        raise ERR_SYNTAX
    s = _read_set(c.db, argv[1])
    if s is None:
        return None
    return s.random_member()


def _srandmember_count(c: Client, argv: list[bytes]) -> Any:
    """srandmemberWithCountCommand (count in -LONG_MAX..LONG_MAX)."""
    count = string2ll(argv[2])
    if count is None:
        raise ERR_NOT_INT
    if count < -LONG_MAX:
        raise ERR_RANGE_LONG
    s = _read_set(c.db, argv[1])
    if s is None or count == 0:
        return []
    ints = s.ints
    if count < 0 or count == 1:
        k = -count if count < 0 else 1
        if k > MAX_RANDOM_REPLY:
            raise ERR_REPLY_TOO_LARGE
        if ints is not None:
            return [b"%d" % v for v in random.choices(ints, k=k)]
        return random.choices(s.members, k=k)  # type: ignore[arg-type]
    if count >= len(s):
        return s.elements()
    if ints is not None:
        return [b"%d" % v for v in random.sample(ints, count)]
    return random.sample(s.members, count)  # type: ignore[arg-type]


# -- SINTER / SINTERCARD / SINTERSTORE / SMEMBERS ---------------------------------------------


def _lookup_sets(db: Db, keys: list[bytes]) -> list[SetValue | None]:
    """Every key read (lookupKeyRead, also for the STORE variants) and
    type-checked, missing ones as None: a wrong type is an error even after
    a missing key."""
    out: list[SetValue | None] = []
    for k in keys:
        s = db.lookup_read(k)
        if s is not None and type(s) is not SetValue:
            raise WRONGTYPE
        out.append(s)
    return out


def _store_empty(c: Client, dst: bytes) -> int:
    """An empty result deletes the destination (dbDelete, no expiry check)."""
    db = c.db
    if db.delete(dst):
        srv = c.srv
        _notify(srv, NOTIFY_GENERIC, b"del", dst, db.id)
        srv.dirty += 1
    return 0


def _store(c: Client, dst: bytes, value: SetValue, event: bytes) -> int:
    """setKey of a non-empty result (drops the TTL), then the event."""
    db = c.db
    srv = c.srv
    db.lookup_write(dst)
    db.set_key(dst, value)
    _notify(srv, NOTIFY_SET, event, dst, db.id)
    srv.dirty += 1
    return len(value)


def _intersection(sets: list[SetValue]) -> tuple[SetValue, list[Any]]:
    """The members of every set, in the order of the smallest one (sizes
    sorted stably, as glibc's qsort does); returns (smallest, result), the
    result as ints when the smallest set is an intset."""
    order = sorted(sets, key=len)
    first = order[0]
    others = [o for o in order[1:] if o is not first]
    ints = first.ints
    if ints is not None:
        cand: list[int] = ints
        for o in others:
            if o.ints is not None:
                oset = set(o.ints)
                cand = [v for v in cand if v in oset]
            else:
                pos = o.pos
                cand = [v for v in cand if b"%d" % v in pos]  # type: ignore[operator]
            if not cand:
                break
        return first, cand
    res: list[bytes] = list(first.members)  # type: ignore[arg-type]
    for o in others:
        if o.ints is not None:
            iset = set(o.ints)
            res = [m for m in res if (v := string2ll(m)) is not None and v in iset]
        else:
            pos = o.pos
            res = [m for m in res if m in pos]  # type: ignore[operator]
        if not res:
            break
    return first, res


def _sinter_generic(c: Client, keys: list[bytes], dst: bytes | None) -> Any:
    """sinterGenericCommand (its cardinality mode is SINTERCARD)."""
    sets = _lookup_sets(c.db, keys)
    if any(s is None for s in sets):
        return SetReply() if dst is None else _store_empty(c, dst)
    first, res = _intersection(sets)  # type: ignore[arg-type]
    if dst is None:
        if first.ints is not None:
            return SetReply([b"%d" % v for v in res])
        return SetReply(res)
    if not res:
        return _store_empty(c, dst)
    max_intset = c.srv.cfg.set_max_intset_entries
    value = _int_result(res, max_intset) if first.ints is not None else _result(res, max_intset)
    return _store(c, dst, value, b"sinterstore")


@command("sinter")
def sinter(c: Client, argv: list[bytes]) -> Any:
    """SINTER key [key ...]: a set reply (RESP3 ``~``)."""
    if len(argv) == 2:
        return smembers(c, argv)
    return _sinter_generic(c, argv[1:], None)


@command("smembers")
def smembers(c: Client, argv: list[bytes]) -> Any:
    """SMEMBERS key: SINTER of one set, in iteration order."""
    s = _read_set(c.db, argv[1])
    return SetReply() if s is None else SetReply(s.elements())


@command("sinterstore")
def sinterstore(c: Client, argv: list[bytes]) -> Any:
    """SINTERSTORE destination key [key ...]."""
    return _sinter_generic(c, argv[2:], argv[1])


@command("sintercard")
def sintercard(c: Client, argv: list[bytes]) -> Any:
    """SINTERCARD numkeys key [key ...] [LIMIT limit]: counting stops at LIMIT."""
    numkeys = string2ll(argv[1])
    if numkeys is None or numkeys < 1:
        raise Err("ERR numkeys should be greater than 0")
    n = len(argv)
    if numkeys > n - 2:
        raise Err("ERR Number of keys can't be greater than number of args")
    limit = 0
    j = 2 + numkeys
    while j < n:
        if argv[j].lower() == b"limit" and j < n - 1:
            j += 1
            lim = string2ll(argv[j])
            if lim is None or lim < 0:
                raise Err("ERR LIMIT can't be negative")
            limit = lim
        else:
            raise ERR_SYNTAX
        j += 1
    sets = _lookup_sets(c.db, argv[2 : 2 + numkeys])
    if any(s is None for s in sets):
        return 0
    _, res = _intersection(sets)  # type: ignore[arg-type]
    card = len(res)
    return min(card, limit) if limit else card


# -- SUNION / SDIFF (and STORE) ------------------------------------------------------------

SET_OP_UNION = 0
SET_OP_DIFF = 1


def _union(sets: list[SetValue], max_intset: int) -> SetValue:
    if all(s.ints is not None for s in sets):
        u: set[int] = set()
        for s in sets:
            u.update(s.ints)  # type: ignore[arg-type]
        return _int_result(u, max_intset)
    res: dict[bytes, Any] = {}
    for s in sets:
        if s.ints is not None:
            res.update(dict.fromkeys(s.elements()))
        else:
            res.update(s.pos)  # type: ignore[arg-type]
    return _result(list(res), max_intset)


def _diff(sets: list[SetValue | None], max_intset: int) -> SetValue:
    """sunionDiffGenericCommand's DIFF.  Its algorithm 1 (filter the first
    set) and 2 (add the first set, then remove the others) give the same
    members, but algorithm 2 leaves a hashtable whenever the first set alone
    did not fit an intset, so the choice (same work estimate) is kept."""
    first = sets[0]
    if first is None:
        return SetValue()
    size0 = len(first)
    one = two = 0
    for s in sets:
        if s is not None:
            one += size0
            two += len(s)
    algo2 = one // 2 > two
    others = [s for s in sets[1:] if s is not None]
    force_ht = False
    if algo2:
        force_ht = size0 > max_intset or (
            first.ints is None and _ints_of(first.members, max_intset) is None  # type: ignore[arg-type]
        )
    if any(o is first for o in others):
        res: list[bytes] = []
    elif first.ints is not None and all(o.ints is not None for o in others):
        rem: set[int] = set()
        for o in others:
            rem.update(o.ints)  # type: ignore[arg-type]
        ints = [v for v in first.ints if v not in rem]
        if not force_ht:
            return _int_result(ints, max_intset)
        res = [b"%d" % v for v in ints]
    else:
        res = first.elements()
        for o in others:
            cont = o.container()
            res = [m for m in res if m not in cont]
            if not res:
                break
    if force_ht:
        s = SetValue.hashtable(res)
        s.slots = max(s.slots, pow2_slots(min(size0, max_intset + 1)))
        return s
    return _result(res, max_intset)


def _sunion_diff_generic(c: Client, keys: list[bytes], dst: bytes | None, op: int) -> Any:
    """sunionDiffGenericCommand: missing keys are empty sets; the result is
    a set built from a fresh intset, so its reply order is ascending when
    it is an intset."""
    sets = _lookup_sets(c.db, keys)
    max_intset = c.srv.cfg.set_max_intset_entries
    if op == SET_OP_UNION:
        value = _union([s for s in sets if s is not None], max_intset)
    else:
        value = _diff(sets, max_intset)
    if dst is None:
        return SetReply(value.elements())
    if not len(value):
        return _store_empty(c, dst)
    return _store(c, dst, value, b"sunionstore" if op == SET_OP_UNION else b"sdiffstore")


@command("sunion")
def sunion(c: Client, argv: list[bytes]) -> Any:
    """SUNION key [key ...]."""
    return _sunion_diff_generic(c, argv[1:], None, SET_OP_UNION)


@command("sunionstore")
def sunionstore(c: Client, argv: list[bytes]) -> Any:
    """SUNIONSTORE destination key [key ...]."""
    return _sunion_diff_generic(c, argv[2:], argv[1], SET_OP_UNION)


@command("sdiff")
def sdiff(c: Client, argv: list[bytes]) -> Any:
    """SDIFF key [key ...]."""
    return _sunion_diff_generic(c, argv[1:], None, SET_OP_DIFF)


@command("sdiffstore")
def sdiffstore(c: Client, argv: list[bytes]) -> Any:
    """SDIFFSTORE destination key [key ...]."""
    return _sunion_diff_generic(c, argv[2:], argv[1], SET_OP_DIFF)


# -- HSCAN / SSCAN cursors ---------------------------------------------------------------

SCAN_DEFAULT_COUNT = 10
SCAN_MAX_SNAPSHOTS = 64
SCAN_MAX_ENTRIES = 1 << 22  # snapshot entries kept open, all values together


class _ElementScans:
    """A server's open element snapshots: id -> (weakref to the value, its
    element list), least recently used first."""

    __slots__ = ("snaps", "next_id", "total")

    def __init__(self) -> None:
        self.snaps: OrderedDict[int, tuple[weakref.ref[Any], list[Any]]] = OrderedDict()
        self.next_id = 1
        self.total = 0

    def open(self, value: Any, elements: list[Any]) -> int:
        sid = self.next_id
        self.next_id = sid + 1 if sid < 0x7FFFFFFF else 1
        self.snaps[sid] = (weakref.ref(value), elements)
        self.total += len(elements)
        while len(self.snaps) > 1 and (len(self.snaps) > SCAN_MAX_SNAPSHOTS or self.total > SCAN_MAX_ENTRIES):
            _, (_, old) = self.snaps.popitem(last=False)
            self.total -= len(old)
        return sid

    def get(self, sid: int, value: Any) -> list[Any] | None:
        ent = self.snaps.get(sid)
        if ent is None or ent[0]() is not value:
            return None
        self.snaps.move_to_end(sid)
        return ent[1]

    def close(self, sid: int) -> None:
        ent = self.snaps.pop(sid, None)
        if ent is not None:
            self.total -= len(ent[1])


_SCANS: weakref.WeakKeyDictionary[Any, _ElementScans] = weakref.WeakKeyDictionary()


def parse_scan_options(argv: list[bytes], i: int) -> tuple[int, Callable[[bytes], bool] | None]:
    """scanGenericCommand's options for a key's elements: COUNT (>= 1) and
    MATCH (``*`` matches everything); TYPE is a syntax error here."""
    count = SCAN_DEFAULT_COUNT
    match: Callable[[bytes], bool] | None = None
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"count" and n - i >= 2:
            count = _get_long(argv[i + 1])
            if count < 1:
                raise ERR_SYNTAX
        elif opt == b"match" and n - i >= 2:
            pat = argv[i + 1]
            match = None if pat == b"*" else compile_pattern(pat)
        else:
            raise ERR_SYNTAX
        i += 2
    return count, match


def scan_elements(srv: Any, value: Any, cursor: int, count: int,
                  snapshot: Callable[[], list[Any]]) -> tuple[int, list[Any]]:
    """One HSCAN/SSCAN step over a hashtable-encoded ``value`` (keys.py's
    SCAN scheme): a value of at most ``count`` elements answers in one call
    with cursor 0; else the next ``count`` positions of the snapshot taken
    at cursor 0 (``snapshot()``), the caller skipping elements removed
    since.  An unknown cursor (finished, evicted, or of another value)
    restarts from a fresh snapshot: elements may then repeat, none present
    all along is missed."""
    st = _SCANS.get(srv)
    if st is None:
        st = _SCANS[srv] = _ElementScans()
    snap = None
    sid = pos = 0
    if cursor:
        sid, pos = cursor >> 32, cursor & 0xFFFFFFFF
        snap = st.get(sid, value)
    if snap is None:
        pos = 0
        if len(value) <= count:
            return 0, snapshot()
        snap = snapshot()
        sid = st.open(value, snap)
    end = pos + count
    batch = snap[pos:end]
    if end >= len(snap):
        st.close(sid)
        return 0, batch
    return (sid << 32) | end, batch


@command("sscan")
def sscan(c: Client, argv: list[bytes]) -> Any:
    """SSCAN key cursor [MATCH pattern] [COUNT count]: an intset answers
    whole with cursor 0, as Redis does; see :func:`scan_elements`."""
    cursor = parse_scan_cursor(argv[2])
    s = _read_set(c.db, argv[1])
    if s is None:
        return [b"0", []]
    count, match = parse_scan_options(argv, 3)
    if s.ints is not None:
        nxt = 0
        items = s.elements()
    else:
        nxt, batch = scan_elements(c.srv, s, cursor, count, s.elements)
        pos = s.pos
        items = [m for m in batch if m in pos]  # type: ignore[operator]
    if match is not None:
        items = [m for m in items if match(m)]
    return [b"%d" % nxt, items]
