"""Redis's compact containers: listpack (read/write), ziplist, zipmap (read
only, legacy), intset (read/write).  Spec: rdb-format.md §9.

Decoders take one complete blob and raise :class:`RDBCorruptError` (without
an offset; the reader adds it) on any inconsistency, never IndexError.
Integer entries come back as the bytes of their decimal text unless
``text=False`` (then as ``int``), which is what the stream and zset decoders
want.

The checks are Redis's "shallow" validation (header sizes, terminator,
element count) plus whatever walking the entries reveals; ``deep`` adds the
checks Redis only does with ``sanitize-dump-payload yes`` (listpack back
lengths, intset order).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from operator import itemgetter
from typing import Final

from .encoding import canonical_int
from .errors import RDBCorruptError

_LP_HDR: Final = struct.Struct("<IH")
_U32: Final = struct.Struct("<I")
_I16: Final = struct.Struct("<h")
_I32: Final = struct.Struct("<i")
_I64: Final = struct.Struct("<q")
_ZL_HDR: Final = struct.Struct("<IIH")

#: Decimal text of 0..127 (listpack 7-bit ints) and -4096..4095 (13-bit).
_TXT7: Final = [b"%d" % i for i in range(128)]
_TXT13: Final = [b"%d" % (i - 8192 if i >= 4096 else i) for i in range(8192)]
_INT7: Final = list(range(128))
_INT13: Final = [i - 8192 if i >= 4096 else i for i in range(8192)]

LP_HEADER_SIZE: Final = 6
LP_EMPTY: Final = b"\x07\x00\x00\x00\x00\x00\xff"


def _backlen_size(n: int) -> int:
    """Bytes of the back-length of an entry whose header+payload is ``n``
    bytes (Redis's lpEncodeBacklen thresholds)."""
    if n <= 127:
        return 1
    if n < 16383:
        return 2
    if n < 2097151:
        return 3
    if n < 268435455:
        return 4
    return 5


def _backlen_bytes(n: int) -> bytes:
    """The back-length bytes in file order: most significant 7-bit group
    first (high bit clear), the rest with the high bit set."""
    if n <= 127:
        return bytes((n,))
    if n < 16383:
        return bytes((n >> 7, (n & 127) | 128))
    if n < 2097151:
        return bytes((n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128))
    if n < 268435455:
        return bytes((n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128))
    return bytes((n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128,
                  ((n >> 7) & 127) | 128, (n & 127) | 128))


def _backlen_value(blob: bytes, end: int) -> int:
    """Read a back-length that ends just before ``end`` (walking backwards)."""
    v = 0
    shift = 0
    p = end - 1
    while True:
        b = blob[p]
        v |= (b & 127) << shift
        if not b & 128:
            return v
        shift += 7
        p -= 1
        if shift > 28:
            raise RDBCorruptError("listpack back-length too long")


# -- listpack ------------------------------------------------------------------------


# -- listpack layouts ------------------------------------------------------------------
#
# Decoding a listpack means walking it entry by entry, and that Python loop is
# most of the cost of loading a dump.  But the keys of real data tend to have
# the same shape (the same fields, values of the same lengths), and two
# listpacks of the same shape have the same *layout*: the same entries at the
# same positions.  So the layout of a small listpack made of short strings and
# 7-bit integers is remembered, by its size, entry count and first byte, as
# the positions of its entries and one struct format that extracts every
# element at once.  A listpack like that uses it when the bytes at those
# positions say the same entry sizes (a string's header byte is its length,
# any 7-bit integer entry takes two bytes): the walk would then visit exactly
# these positions, so the result is the walk's.  Nothing else is needed: the
# walk itself reads nothing but those bytes (back-lengths are checked apart,
# in deep mode).  When layouts stop matching
# (data without repeated shapes), they are set aside for a while and the walk
# is used alone.

#: Header bytes mapped to what decides an entry's size: every 7-bit integer
#: to 0, a 6-bit string header to itself (its length); anything else is not
#: in a layout, and keeps a value no layout has at that place.
_SIZE_CLASS: Final = bytes(0 if b < 0x80 else b for b in range(256))
_LAYOUT_MAX_ENTRIES: Final = 256
_LAYOUTS_MAX: Final = 4096  # layouts remembered; the table is emptied when full
_LAYOUT_PROBE: Final = 2048  # lookups between two looks at the hit rate
_LAYOUT_REST: Final = 32768  # listpacks walked without layouts after a poor rate
_LAYOUT_MISSES: Final = 8  # consecutive mismatches that retire a layout


class _Layout:
    """Where a listpack's entries are and how to take them out.  The string
    headers at their positions must be the ones seen (their lengths); the
    integer entries only have to be 7-bit integers, which shows in the
    values the struct reads there (a header byte below 0x80)."""

    __slots__ = ("strings", "headers", "unpack", "count", "ints", "misses")

    def __init__(self, blob: bytes, positions: list[int], fmt: str, ints: list[int]) -> None:
        int_set = set(ints)
        strings = [pos for i, pos in enumerate(positions) if i not in int_set]
        self.strings = itemgetter(*strings) if strings else None
        self.headers = self.strings(blob) if self.strings is not None else None
        self.unpack = struct.Struct(fmt).unpack_from
        self.count = len(positions)
        # The integer elements, as a slice when evenly spaced (a zset's
        # scores, a hash's values) so that checking them and giving their
        # text are one C-level pass each.
        self.ints: slice | list[int] | None = None
        if ints:
            step = ints[1] - ints[0] if len(ints) > 1 else 1
            regular = ints == list(range(ints[0], ints[-1] + 1, step))
            self.ints = slice(ints[0], ints[-1] + 1, step) if regular else ints
        self.misses = 0


def _layout_of(blob: bytes) -> _Layout | None:
    """The layout of ``blob`` if it has one (2 to 256 entries, all short
    strings or 7-bit integers), walking it once."""
    pos = 6
    end = len(blob) - 1
    positions: list[int] = []
    ints: list[int] = []
    fmt = ["<6x"]
    while pos < end:
        b = blob[pos]
        if b < 0x80:
            ints.append(len(positions))
            fmt.append("Bx")
            positions.append(pos)
            pos += 2
        elif b < 0xC0:
            fmt.append(f"x{b & 0x3F}sx")
            positions.append(pos)
            pos += (b & 0x3F) + 2
        else:
            return None
        if len(positions) > _LAYOUT_MAX_ENTRIES:
            return None
    if pos != end or len(positions) < 2:
        return None
    return _Layout(blob, positions, "".join(fmt), ints)


_layouts: dict[int, _Layout | None] = {}
#: [lookups since the last look at the rate, hits among them, walks left to rest]
_layout_stats: list[int] = [0, 0, 0]


def _lp_by_layout(blob: bytes, count: int, text: bool) -> list | None:
    """The elements of ``blob`` taken by a remembered layout, or None (then
    it is walked).  Learns the layout of a size seen for the first time."""
    stats = _layout_stats
    if stats[2]:
        stats[2] -= 1
        return None
    stats[0] += 1
    if stats[0] >= _LAYOUT_PROBE:
        if stats[1] * 4 < stats[0]:
            stats[2] = _LAYOUT_REST
        stats[0] = stats[1] = 0
    # Listpacks of different kinds (a hash's, a list node's) often share a
    # size; their entry count and first header byte tell most apart.
    key = len(blob) | count << 32 | blob[6] << 48
    lay = _layouts.get(key)
    if lay is None:
        if key in _layouts:
            return None  # known to have no layout
        if len(_layouts) >= _LAYOUTS_MAX:
            _layouts.clear()
        lay = _layouts[key] = _layout_of(blob)
        if lay is None:
            return None
    if lay.strings is not None and lay.strings(blob) != lay.headers:
        _layout_missed(lay, key)
        return None
    out = list(lay.unpack(blob))
    ints = lay.ints
    if ints is not None:
        if type(ints) is slice:
            vals = out[ints]
            if max(vals) >= 0x80:
                _layout_missed(lay, key)
                return None
            if text:
                out[ints] = map(_TXT7.__getitem__, vals)
        else:
            for i in ints:
                if out[i] >= 0x80:
                    _layout_missed(lay, key)
                    return None
            if text:
                t7 = _TXT7
                for i in ints:
                    out[i] = t7[out[i]]
    if count != lay.count and count != 65535:
        raise RDBCorruptError(f"listpack header says {count} elements, found {lay.count}")
    lay.misses = 0
    stats[1] += 1
    return out


def _layout_missed(lay: _Layout, key: int) -> None:
    """A listpack that does not fit the layout of its size is walked; a
    layout that keeps missing is dropped (the next listpack like this one
    brings its own)."""
    lay.misses += 1
    if lay.misses >= _LAYOUT_MISSES:
        _layouts.pop(key, None)


def lp_decode(blob: bytes, text: bool = True, deep: bool = False) -> list:
    """The elements of a listpack, head to tail (ints as decimal bytes when
    ``text``).

    A listpack of a layout seen before is taken apart by it (see above);
    otherwise it is walked: the encodings are tested in the order real data
    has them (short strings, then small integers), ints come from lookup
    tables, and nothing else happens per entry -- a malformed entry shows as
    a walk that does not end exactly on the terminator.  ``deep`` checks the
    back-lengths in a second walk."""
    n = len(blob)
    if n < 7:
        raise RDBCorruptError("listpack shorter than its header")
    total, count = _LP_HDR.unpack_from(blob, 0)
    if total != n:
        raise RDBCorruptError(f"listpack header says {total} bytes, blob has {n}")
    if blob[n - 1] != 0xFF:
        raise RDBCorruptError("listpack does not end with 0xFF")
    if n <= 4096:
        out = _lp_by_layout(blob, count, text)
        if out is not None:
            if deep:
                _lp_check_backlens(blob)
            return out
    out = []
    append = out.append
    t7 = _TXT7 if text else _INT7
    t13 = _TXT13 if text else _INT13
    pos = 6
    end = n - 1
    try:
        while pos < end:
            b = blob[pos]
            if b & 0xC0 == 0x80:  # string, 6-bit length: 10LLLLLL data backlen
                q = pos + b - 127
                append(blob[pos + 1:q])
                pos = q + 1
            elif b < 0x80:  # 7-bit unsigned int
                append(t7[b])
                pos += 2
            elif b < 0xE0:  # 13-bit signed int
                append(t13[((b & 0x1F) << 8) | blob[pos + 1]])
                pos += 3
            elif b < 0xF0:  # string, 12-bit length
                ln = ((b & 0x0F) << 8) | blob[pos + 1]
                p = pos + 2
                q = p + ln
                append(blob[p:q])
                pos = q + (1 if ln + 2 <= 127 else 2)
            elif b == 0xF0:  # string, 32-bit length
                ln = _U32.unpack_from(blob, pos + 1)[0]
                p = pos + 5
                q = p + ln
                append(blob[p:q])
                pos = q + _backlen_size(ln + 5)
            elif b == 0xF1:
                v = _I16.unpack_from(blob, pos + 1)[0]
                append(b"%d" % v if text else v)
                pos += 4
            elif b == 0xF2:
                v = int.from_bytes(blob[pos + 1:pos + 4], "little", signed=True)
                append(b"%d" % v if text else v)
                pos += 5
            elif b == 0xF3:
                v = _I32.unpack_from(blob, pos + 1)[0]
                append(b"%d" % v if text else v)
                pos += 6
            elif b == 0xF4:
                v = _I64.unpack_from(blob, pos + 1)[0]
                append(b"%d" % v if text else v)
                pos += 10
            else:
                raise RDBCorruptError(f"invalid listpack entry encoding 0x{b:02x} at blob offset {pos}")
    except (IndexError, struct.error):
        raise RDBCorruptError("listpack entry runs past the end of the blob") from None
    if pos != end:
        raise RDBCorruptError("listpack entry runs past the end of the blob")
    if count != 65535 and count != len(out):
        raise RDBCorruptError(f"listpack header says {count} elements, found {len(out)}")
    if deep:
        _lp_check_backlens(blob)
    return out


def _lp_entry_end(blob: bytes, pos: int) -> int:
    """Where the entry at ``pos`` ends (after its back-length), from its
    encoding byte (lpCurrentEncodedSizeUnsafe + lpEncodeBacklen)."""
    b = blob[pos]
    if b < 0x80:
        return pos + 2
    if b < 0xC0:
        return pos + (b & 0x3F) + 2
    if b < 0xE0:
        return pos + 3
    if b < 0xF0:
        ln = ((b & 0x0F) << 8) | blob[pos + 1]
        return pos + ln + 2 + _backlen_size(ln + 2)
    if b == 0xF0:
        ln = _U32.unpack_from(blob, pos + 1)[0]
        return pos + ln + 5 + _backlen_size(ln + 5)
    return pos + (4, 5, 6, 10)[b - 0xF1]


def _lp_check_backlen(blob: bytes, pos: int, end: int) -> None:
    """Deep check of the entry ending at ``pos``: its back-length must give
    back the entry's start (Redis's lpValidateNext)."""
    if pos > end:
        raise RDBCorruptError("listpack entry runs past the end of the blob")
    # Find the back-length's first byte: walk back over continuation bytes.
    p = pos - 1
    while blob[p] & 128:
        p -= 1
    ln = _backlen_value(blob, pos)
    if _backlen_size(ln) != pos - p:
        raise RDBCorruptError("listpack back-length does not match its entry")


def _lp_check_backlens(blob: bytes) -> None:
    """Deep check of a listpack already walked by :func:`lp_decode`: every
    entry's back-length gives back the entry's size (lpValidateNext)."""
    pos = 6
    end = len(blob) - 1
    while pos < end:
        pos = _lp_entry_end(blob, pos)
        _lp_check_backlen(blob, pos, end)


def lp_validate_count(blob: bytes) -> int:
    """Validate a listpack's header and terminator; its declared count."""
    n = len(blob)
    if n < 7:
        raise RDBCorruptError("listpack shorter than its header")
    total, count = _LP_HDR.unpack_from(blob, 0)
    if total != n or blob[n - 1] != 0xFF:
        raise RDBCorruptError("listpack header or terminator is inconsistent")
    return int(count)


def lp_int_entry(v: int) -> bytes:
    """The listpack entry (encoding + payload + back-length) of an integer,
    in the smallest encoding (Redis's lpEncodeIntegerGetType)."""
    if 0 <= v <= 127:
        return bytes((v, 1))
    if -4096 <= v <= 4095:
        u = v & 0x1FFF
        return bytes((0xC0 | (u >> 8), u & 0xFF, 2))
    if -32768 <= v <= 32767:
        return b"\xf1" + _I16.pack(v) + b"\x03"
    if -8388608 <= v <= 8388607:
        return b"\xf2" + (v & 0xFFFFFF).to_bytes(3, "little") + b"\x04"
    if -2147483648 <= v <= 2147483647:
        return b"\xf3" + _I32.pack(v) + b"\x05"
    return b"\xf4" + _I64.pack(v) + b"\x09"


def lp_str_entry(s: bytes) -> bytes:
    """The listpack entry of a string stored as a string (no int check)."""
    n = len(s)
    if n < 64:
        return bytes((0x80 | n,)) + s + bytes((n + 1,))
    if n < 4096:
        return bytes((0xE0 | (n >> 8), n & 0xFF)) + s + _backlen_bytes(n + 2)
    return b"\xf0" + _U32.pack(n) + s + _backlen_bytes(n + 5)


def lp_entry(s: bytes | int) -> bytes:
    """The listpack entry Redis writes for ``s``: canonical integers (or an
    ``int``) get an integer encoding, everything else a string encoding."""
    if isinstance(s, int):
        return lp_int_entry(s)
    if len(s) < 21:
        v = canonical_int(s)
        if v is not None:
            return lp_int_entry(v)
    return lp_str_entry(s)


def lp_entry_size(s: bytes | int) -> int:
    """``len(lp_entry(s))`` without building it."""
    if not isinstance(s, int):
        v = canonical_int(s) if len(s) < 21 else None
        if v is None:
            n = len(s)
            if n < 64:
                return n + 2
            if n < 4096:
                return n + 2 + _backlen_size(n + 2)
            return n + 5 + _backlen_size(n + 5)
        s = v
    if 0 <= s <= 127:
        return 2
    if -4096 <= s <= 4095:
        return 3
    if -32768 <= s <= 32767:
        return 4
    if -8388608 <= s <= 8388607:
        return 5
    if -2147483648 <= s <= 2147483647:
        return 6
    return 10


def lp_build(entries: list[bytes]) -> bytes:
    """A listpack from already encoded entries."""
    body = b"".join(entries)
    n = len(entries)
    return _LP_HDR.pack(len(body) + 7, n if n < 65535 else 65535) + body + b"\xff"


def lp_encode(items: Iterable[bytes | int]) -> bytes:
    """A listpack holding ``items`` in order, encoded as Redis would."""
    return lp_build([lp_entry(x) for x in items])


# -- ziplist (legacy, read only) --------------------------------------------------------


def ziplist_decode(blob: bytes, text: bool = True) -> list:
    """The entries of a ziplist (RDB types 10, 12, 13 and quicklist v1 nodes),
    with Redis's integrity checks: header size, tail offset, terminator,
    every prevlen equal to the previous entry's size, and the count."""
    n = len(blob)
    if n < 11:
        raise RDBCorruptError("ziplist shorter than its header")
    zlbytes, zltail, zllen = _ZL_HDR.unpack_from(blob, 0)
    if zlbytes != n:
        raise RDBCorruptError(f"ziplist header says {zlbytes} bytes, blob has {n}")
    if blob[n - 1] != 0xFF:
        raise RDBCorruptError("ziplist does not end with 0xFF")
    if zltail > n - 1:
        raise RDBCorruptError("ziplist tail offset out of range")
    out: list = []
    append = out.append
    pos = 10
    end = n - 1
    prev_size = 0
    last_start = 10
    try:
        while pos < end:
            start = pos
            b = blob[pos]
            if b < 0xFE:
                prevlen = b
                pos += 1
            elif b == 0xFE:
                prevlen = _U32.unpack_from(blob, pos + 1)[0]
                pos += 5
            else:
                raise RDBCorruptError("ziplist entry has an invalid prevlen byte")
            if prevlen != prev_size:
                raise RDBCorruptError(f"ziplist prevlen {prevlen} does not match the previous entry ({prev_size})")
            e = blob[pos]
            kind = e >> 6
            if kind == 0:
                ln = e & 0x3F
                p = pos + 1
            elif kind == 1:
                ln = ((e & 0x3F) << 8) | blob[pos + 1]
                p = pos + 2
            elif kind == 2:
                if e != 0x80:
                    raise RDBCorruptError(f"invalid ziplist string encoding 0x{e:02x}")
                ln = int.from_bytes(blob[pos + 1:pos + 5], "big")
                p = pos + 5
            else:
                ln = -1
                p = pos + 1
                if e == 0xC0:
                    v = _I16.unpack_from(blob, p)[0]
                    p += 2
                elif e == 0xD0:
                    v = _I32.unpack_from(blob, p)[0]
                    p += 4
                elif e == 0xE0:
                    v = _I64.unpack_from(blob, p)[0]
                    p += 8
                elif e == 0xF0:
                    if p + 3 > end:
                        raise RDBCorruptError("ziplist entry runs past the end of the blob")
                    v = int.from_bytes(blob[p:p + 3], "little", signed=True)
                    p += 3
                elif e == 0xFE:
                    v = blob[p] - 256 if blob[p] >= 128 else blob[p]
                    p += 1
                elif 0xF1 <= e <= 0xFD:
                    v = (e & 0x0F) - 1
                else:
                    raise RDBCorruptError(f"invalid ziplist entry encoding 0x{e:02x}")
                append(b"%d" % v if text else v)
            if ln >= 0:
                q = p + ln
                if q > end:
                    raise RDBCorruptError("ziplist entry runs past the end of the blob")
                append(blob[p:q])
                p = q
            if p > end:
                raise RDBCorruptError("ziplist entry runs past the end of the blob")
            prev_size = p - start
            last_start = start
            pos = p
    except (IndexError, struct.error):
        raise RDBCorruptError("ziplist entry runs past the end of the blob") from None
    if out and zltail != last_start:
        raise RDBCorruptError("ziplist tail offset does not point at the last entry")
    if zllen != 65535 and zllen != len(out):
        raise RDBCorruptError(f"ziplist header says {zllen} entries, found {len(out)}")
    return out


# -- zipmap (legacy hash, read only) ---------------------------------------------------


def zipmap_decode(blob: bytes) -> list[tuple[bytes, bytes]]:
    """The (field, value) pairs of a zipmap (RDB type 9), with Redis's
    zipmapValidateIntegrity checks (the count byte must be 254 -- unknown --
    or the real count; no duplicate fields)."""
    n = len(blob)
    if n < 2:
        raise RDBCorruptError("zipmap shorter than its header")
    zmlen = blob[0]
    pos = 1
    out: list[tuple[bytes, bytes]] = []
    try:
        while True:
            b = blob[pos]
            if b == 0xFF:
                pos += 1
                break
            if b == 0xFE:
                klen = _U32.unpack_from(blob, pos + 1)[0]
                pos += 5
            else:
                klen = b
                pos += 1
            if pos + klen > n:
                raise RDBCorruptError("zipmap entry runs past the end of the blob")
            k = blob[pos:pos + klen]
            pos += klen
            b = blob[pos]
            if b == 0xFF:
                raise RDBCorruptError("zipmap field without a value")
            if b == 0xFE:
                vlen = _U32.unpack_from(blob, pos + 1)[0]
                pos += 5
            else:
                vlen = b
                pos += 1
            free = blob[pos]
            pos += 1
            if pos + vlen + free > n:
                raise RDBCorruptError("zipmap entry runs past the end of the blob")
            out.append((k, blob[pos:pos + vlen]))
            pos += vlen + free
    except (IndexError, struct.error):
        raise RDBCorruptError("zipmap runs past the end of the blob") from None
    if pos != n:
        raise RDBCorruptError("zipmap has bytes after its end marker")
    if zmlen != 254 and zmlen != len(out):
        raise RDBCorruptError(f"zipmap integrity check failed: header count {zmlen}, found {len(out)}")
    if len({k for k, _ in out}) != len(out):
        raise RDBCorruptError("zipmap has a duplicate field")
    return out


# -- intset ---------------------------------------------------------------------------

_INTSET_FMT: Final = {2: "h", 4: "i", 8: "q"}


def intset_decode(blob: bytes, text: bool = True, deep: bool = False) -> list:
    """The members of an intset (RDB type 11), ascending; Redis's checks:
    width 2/4/8, size = 8 + count * width, count > 0 (deep: strictly
    ascending)."""
    n = len(blob)
    if n < 8:
        raise RDBCorruptError("intset shorter than its header")
    width, count = struct.unpack_from("<II", blob, 0)
    fmt = _INTSET_FMT.get(width)
    if fmt is None:
        raise RDBCorruptError(f"intset has invalid encoding {width}")
    if 8 + count * width != n:
        raise RDBCorruptError(f"intset header says {count} members of {width} bytes, blob has {n} bytes")
    if count == 0:
        raise RDBCorruptError("intset is empty")
    vals = list(struct.unpack_from(f"<{count}{fmt}", blob, 8))
    if deep and any(a >= b for a, b in zip(vals, vals[1:], strict=False)):
        raise RDBCorruptError("intset members are not strictly ascending")
    if text:
        return [b"%d" % v for v in vals]
    return vals


def intset_encode(values: Iterable[int]) -> bytes:
    """An intset of ``values`` (sorted, deduplicated) in the narrowest width."""
    vals = sorted(set(values))
    if not vals:
        raise ValueError("an intset cannot be empty")
    lo, hi = vals[0], vals[-1]
    if lo >= -32768 and hi <= 32767:
        width = 2
    elif lo >= -2147483648 and hi <= 2147483647:
        width = 4
    else:
        width = 8
    return struct.pack(f"<II{len(vals)}{_INTSET_FMT[width]}", width, len(vals), *vals)
