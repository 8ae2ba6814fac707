"""HyperLogLog as Redis 7.0.15 stores it (hyperloglog.c), byte for byte.

An HLL is an ordinary string value: a 16-byte header then the registers.

    +------+---+-----+----------+
    | HYLL | E | N/U | Cardin.  |     magic, encoding (0 dense, 1 sparse),
    +------+---+-----+----------+     3 unused bytes, cached cardinality
                                      (uint64 little endian; the MSB of the
                                      last byte set = cache invalid)

* dense: 16384 registers of 6 bits packed LSB first (12288 bytes), so the
  whole string is exactly ``HLL_DENSE_SIZE`` (12304) bytes;
* sparse: a run-length code of ZERO ``00xxxxxx`` (1..64 zero registers),
  XZERO ``01xxxxxx yyyyyyyy`` (1..16384 zero registers) and VAL ``1vvvvvxx``
  (1..4 registers of value 1..32).  An HLL is created sparse
  (``XZERO:16384``) and promoted to dense when a register needs a value
  above 32 or an update would grow the string past ``hll-sparse-max-bytes``.

Elements are hashed with MurmurHash64A (seed 0xadc83b19): the low 14 bits
pick the register, the position of the first 1 bit in the remaining 50 bits
(plus one) is the candidate register value.  The cardinality is the 7.0
estimator of Otmar Ertl ("New cardinality estimation algorithms for
HyperLogLog sketches", arXiv:1702.01284) over the histogram of register
values, computed with the same double arithmetic as the C code.

Everything works on the stored ``bytearray`` in place, as Redis works on the
sds: sparse updates follow ``hllSparseSet`` step by step (including the
greedy merge of adjacent VAL opcodes, whose result depends on the order of
the updates), so the bytes stay identical to what Redis holds.  Corrupted
values behave as in C where that is defined; where C reads the byte just
past the string (an XZERO cut in half at the end) it reads the sds
terminator, which is 0 here too.  (Known gap: when an update splits such a
cut XZERO, C writes the last byte of the new opcodes over the terminator and
later reads see it; Ambry keeps no byte past the string, so only the GET
bytes of that first update agree.  Only a hand-made value can get there.)

numpy does the whole-register work (unpacking 6-bit registers, histograms,
merges, sparse parsing of long strings); single-register updates touch the
two bytes concerned and nothing else.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from struct import unpack_from

import numpy as np

HLL_P = 14
HLL_Q = 64 - HLL_P
HLL_REGISTERS = 1 << HLL_P
HLL_P_MASK = HLL_REGISTERS - 1
HLL_BITS = 6
HLL_REGISTER_MAX = (1 << HLL_BITS) - 1
HLL_HDR_SIZE = 16
HLL_DENSE_SIZE = HLL_HDR_SIZE + (HLL_REGISTERS * HLL_BITS + 7) // 8
HLL_DENSE = 0
HLL_SPARSE = 1
HLL_MAX_ENCODING = 1

HLL_SPARSE_VAL_MAX_VALUE = 32
HLL_SPARSE_VAL_MAX_LEN = 4
HLL_SPARSE_ZERO_MAX_LEN = 64
HLL_SPARSE_XZERO_MAX_LEN = 16384
HLL_ALPHA_INF = 0.721347520444481703680  # 0.5/ln(2)

HLL_SEED = 0xADC83B19
_M = 0xC6A4A7935BD1E995
_MASK64 = (1 << 64) - 1
_TERMINATE = 1 << HLL_Q  # makes the zero-run count stop at Q+1

CACHE_INVALID_BIT = 0x80  # in byte 15, the MSB of the cached cardinality

# createHLLObject: sparse, cache 0 (valid), one XZERO covering every register.
EMPTY_SPARSE = b"HYLL\x01\x00\x00\x00" + b"\x00" * 8 + b"\x7f\xff"

# Below this many sparse bytes a Python scan beats numpy's fixed overhead.
_NP_SPARSE_MIN = 160


class InvalidHLL(Exception):
    """The value is an HLL whose registers cannot be decoded (INVALIDOBJ)."""


# -- hashing -----------------------------------------------------------------


def murmurhash64a(data: bytes | bytearray, seed: int = HLL_SEED) -> int:
    """MurmurHash64A as Redis compiles it on a little-endian machine."""
    n = len(data)
    m = _M
    mask = _MASK64
    h = (seed ^ (n * m)) & mask
    nblocks = n >> 3
    if nblocks:
        for k in unpack_from("<%dQ" % nblocks, data):
            k = (k * m) & mask
            k ^= k >> 47
            h ^= (k * m) & mask
            h = (h * m) & mask
    rem = n & 7
    if rem:
        h ^= int.from_bytes(data[n - rem :], "little")
        h = (h * m) & mask
    h ^= h >> 47
    h = (h * m) & mask
    return h ^ (h >> 47)


def pat_len(ele: bytes | bytearray) -> tuple[int, int]:
    """hllPatLen: (register index, length of the 000..1 pattern)."""
    h = murmurhash64a(ele)
    x = (h >> HLL_P) | _TERMINATE
    return h & HLL_P_MASK, (x & -x).bit_length()


def murmurhash64a_u64(keys: np.ndarray, seed: int = HLL_SEED) -> np.ndarray:
    """MurmurHash64A of many 8-byte little-endian keys at once (uint64 array)."""
    m = np.uint64(_M)
    r = np.uint64(47)
    k = keys.astype(np.uint64) * m
    k ^= k >> r
    k *= m
    h = np.uint64((seed ^ (8 * _M)) & _MASK64) ^ k
    h *= m
    h ^= h >> r
    h *= m
    h ^= h >> r
    return h


def pat_len_u64(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """hllPatLen of many 8-byte keys: (indexes, counts) arrays."""
    h = murmurhash64a_u64(keys)
    idx = (h & np.uint64(HLL_P_MASK)).astype(np.intp)
    x = (h >> np.uint64(HLL_P)) | np.uint64(_TERMINATE)
    low = x & (~x + np.uint64(1))  # lowest set bit, a power of two <= 2**50
    cnt = np.log2(low.astype(np.float64)).astype(np.uint8) + np.uint8(1)
    return idx, cnt


# -- header ------------------------------------------------------------------


def is_hll(v: bytes | bytearray) -> bool:
    """isHLLObjectOrReply without the type check: magic, encoding, size."""
    n = len(v)
    if n < HLL_HDR_SIZE or v[:4] != b"HYLL":
        return False
    enc = v[4]
    if enc > HLL_MAX_ENCODING:
        return False
    return not (enc == HLL_DENSE and n != HLL_DENSE_SIZE)


def cache_valid(buf: bytes | bytearray) -> bool:
    """HLL_VALID_CACHE."""
    return not buf[15] & CACHE_INVALID_BIT


def cached_card(buf: bytes | bytearray) -> int:
    return int.from_bytes(buf[8:16], "little")


def set_cached_card(buf: bytearray, card: int) -> None:
    buf[8:16] = card.to_bytes(8, "little")


def invalidate_cache(buf: bytearray) -> None:
    """HLL_INVALIDATE_CACHE."""
    buf[15] |= CACHE_INVALID_BIT


# -- dense representation ----------------------------------------------------


def dense_get(buf: bytes | bytearray, regnum: int) -> int:
    """HLL_DENSE_GET_REGISTER on a whole HLL string."""
    bit = regnum * 6
    pos = HLL_HDR_SIZE + (bit >> 3)
    fb = bit & 7
    if fb <= 2:  # the 6 bits sit in one byte (always so for the last register)
        return (buf[pos] >> fb) & 63
    return ((buf[pos] >> fb) | (buf[pos + 1] << (8 - fb))) & 63


def dense_set(buf: bytearray, regnum: int, val: int) -> None:
    """HLL_DENSE_SET_REGISTER on a whole HLL string."""
    bit = regnum * 6
    pos = HLL_HDR_SIZE + (bit >> 3)
    fb = bit & 7
    if fb <= 2:
        buf[pos] = (buf[pos] & ~(63 << fb) & 0xFF) | (val << fb)
    else:
        fb8 = 8 - fb
        buf[pos] = (buf[pos] & ~(63 << fb) & 0xFF) | ((val << fb) & 0xFF)
        buf[pos + 1] = (buf[pos + 1] & ~(63 >> fb8) & 0xFF) | (val >> fb8)


def dense_update(buf: bytearray, regnum: int, count: int) -> int:
    """hllDenseSet: raise the register to ``count``; 1 when it changed."""
    bit = regnum * 6
    pos = HLL_HDR_SIZE + (bit >> 3)
    fb = bit & 7
    b0 = buf[pos]
    if fb <= 2:
        if count <= (b0 >> fb) & 63:
            return 0
        buf[pos] = (b0 & ~(63 << fb) & 0xFF) | (count << fb)
        return 1
    b1 = buf[pos + 1]
    fb8 = 8 - fb
    if count <= ((b0 >> fb) | (b1 << fb8)) & 63:
        return 0
    buf[pos] = (b0 & ~(63 << fb) & 0xFF) | ((count << fb) & 0xFF)
    buf[pos + 1] = (b1 & ~(63 >> fb8) & 0xFF) | (count >> fb8)
    return 1


def dense_add_many(buf: bytearray, eles: Iterable[bytes]) -> int:
    """hllDenseAdd for each element; how many registers changed.

    The PFADD hot path: hash inline, touch one or two bytes per element."""
    m = _M
    mask = _MASK64
    hdr = HLL_HDR_SIZE
    updated = 0
    for ele in eles:
        n = len(ele)
        if n < 8:  # no 8-byte block: only the tail mix
            h = (HLL_SEED ^ (n * m)) & mask
            if n:
                h ^= int.from_bytes(ele, "little")
                h = (h * m) & mask
            h ^= h >> 47
            h = (h * m) & mask
            h ^= h >> 47
        else:
            h = murmurhash64a(ele)
        x = (h >> 14) | _TERMINATE
        count = (x & -x).bit_length()
        bit = (h & 16383) * 6
        pos = hdr + (bit >> 3)
        fb = bit & 7
        b0 = buf[pos]
        if fb <= 2:
            if count > (b0 >> fb) & 63:
                buf[pos] = (b0 & ~(63 << fb) & 0xFF) | (count << fb)
                updated += 1
        else:
            b1 = buf[pos + 1]
            fb8 = 8 - fb
            if count > ((b0 >> fb) | (b1 << fb8)) & 63:
                buf[pos] = (b0 & ~(63 << fb) & 0xFF) | ((count << fb) & 0xFF)
                buf[pos + 1] = (b1 & ~(63 >> fb8) & 0xFF) | (count >> fb8)
                updated += 1
    return updated


def unpack_dense(buf: bytes | bytearray) -> np.ndarray:
    """The 16384 registers of a dense HLL string as a uint8 array."""
    b = np.frombuffer(bytes(buf[HLL_HDR_SIZE:HLL_DENSE_SIZE]), dtype=np.uint8).reshape(-1, 3)
    b0 = b[:, 0]
    b1 = b[:, 1]
    b2 = b[:, 2]
    r = np.empty((HLL_REGISTERS // 4, 4), dtype=np.uint8)
    r[:, 0] = b0 & 63
    r[:, 1] = ((b0 >> 6) | (b1 << 2)) & 63
    r[:, 2] = ((b1 >> 4) | (b2 << 4)) & 63
    r[:, 3] = b2 >> 2
    return r.reshape(-1)


def pack_dense(regs: np.ndarray) -> bytes:
    """The 12288 register bytes for 16384 register values (each <= 63)."""
    r = regs.astype(np.uint8).reshape(-1, 4)
    out = np.empty((HLL_REGISTERS // 4, 3), dtype=np.uint8)
    out[:, 0] = r[:, 0] | (r[:, 1] << 6)
    out[:, 1] = (r[:, 1] >> 2) | (r[:, 2] << 4)
    out[:, 2] = (r[:, 2] >> 4) | (r[:, 3] << 2)
    return out.tobytes()


# -- sparse representation ---------------------------------------------------


def _parse_sparse(buf: bytes | bytearray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Opcode start offsets (into ``buf``), register spans and values (0 for
    ZERO/XZERO) of a sparse HLL, read as C reads it: an XZERO cut at the end
    takes its second byte from the terminator (0)."""
    arr = np.frombuffer(bytes(buf[HLL_HDR_SIZE:]) + b"\x00", dtype=np.uint8)
    n = arr.size - 1
    body = arr[:n]
    cand = np.flatnonzero((body & 0xC0) == 0x40)
    mask = np.ones(n, dtype=bool)
    if cand.size:
        # A 01xxxxxx byte starts an XZERO unless it is the second byte of
        # one.  In a run of consecutive such bytes the first one starts an
        # opcode (the byte before it is no XZERO start), so starts and
        # second bytes alternate from there.
        brk = np.empty(cand.size, dtype=bool)
        brk[0] = True
        np.not_equal(np.diff(cand), 1, out=brk[1:])
        run_start = np.maximum.accumulate(np.where(brk, cand, 0))
        seconds = cand[((cand - run_start) & 1) == 0] + 1
        mask[seconds[seconds < n]] = False
    starts = np.flatnonzero(mask)
    b = body[starts].astype(np.int64)
    isval = b >= 0x80
    iszero = b < 0x40
    xlen = ((b & 0x3F) << 8) | arr[starts + 1]
    spans = np.where(iszero, (b & 0x3F) + 1, np.where(isval, (b & 3) + 1, xlen + 1))
    values = np.where(isval, ((b >> 2) & 0x1F) + 1, 0)
    return starts + HLL_HDR_SIZE, spans, values


def _sparse_registers(buf: bytes | bytearray) -> np.ndarray | None:
    """The registers of a sparse HLL as hllSparseToDense / hllMerge decode
    them, or None when the representation is invalid.

    Both walk the opcodes adding up runs and fail on a VAL that would pass
    register 16384 or when the walk does not end exactly at 16384: so the
    runs must add up to exactly 16384."""
    _starts, spans, values = _parse_sparse(buf)
    if int(spans.sum()) != HLL_REGISTERS:
        return None
    return np.repeat(values.astype(np.uint8), spans)


def sparse_to_dense(buf: bytearray) -> bool:
    """hllSparseToDense in place; False (string untouched) when corrupted.

    The header is copied as it is (magic, unused bytes, cached cardinality
    and its validity bit), only the encoding byte changes."""
    if buf[4] == HLL_DENSE:
        return True
    regs = _sparse_registers(buf)
    if regs is None:
        return False
    buf[:] = bytes(buf[:4]) + b"\x00" + bytes(buf[5:16]) + pack_dense(regs)
    return True


def _opcode(buf: bytearray, p: int, end: int) -> tuple[int, int]:
    """(registers covered, bytes) of the sparse opcode at ``p``: ZERO,
    VAL or XZERO (a cut-off XZERO reads its missing byte as 0)."""
    b = buf[p]
    if b < 0x40:
        return (b & 0x3F) + 1, 1
    if b & 0x80:
        return (b & 3) + 1, 1
    return (((b & 0x3F) << 8) | (buf[p + 1] if p + 1 < end else 0)) + 1, 2


def _sparse_locate(buf: bytearray, index: int) -> tuple[int, int, int, int] | None:
    """Step 1 of hllSparseSet: the opcode covering register ``index``.

    Returns (p, prev, first, span): its offset, the previous opcode's
    offset (-1 when p is the first one), the first register it covers and
    how many; None when no opcode covers it (invalid HLL).  Long strings
    are parsed by numpy, short ones walked as C walks them."""
    end = len(buf)
    if end - HLL_HDR_SIZE >= _NP_SPARSE_MIN:
        starts, spans, _values = _parse_sparse(buf)
        ends = np.cumsum(spans)
        k = int(np.searchsorted(ends, index, side="right"))
        if k >= ends.size:
            return None
        span = int(spans[k])
        prev = int(starts[k - 1]) if k else -1
        return int(starts[k]), prev, int(ends[k]) - span, span
    p = HLL_HDR_SIZE
    first = 0
    prev = -1
    while p < end:
        span, oplen = _opcode(buf, p, end)
        if index <= first + span - 1:
            return p, prev, first, span
        prev = p
        p += oplen
        first += span
    return None


class SparseCursor:
    """Resume point for hllSparseSet calls in ascending register order
    (PFMERGE into a sparse destination).

    An update never touches the bytes before the opcode preceding the one
    it changes ('prev'), and that opcode still starts at the same register
    afterwards.  So the next, higher, update can resume the walk at 'prev'
    instead of the start, provided it also knows the opcodes before it
    (to name its own 'prev'): ``hist`` keeps (offset, first register) of
    every opcode before the resume point."""

    __slots__ = ("p", "first", "hist", "dead")

    def __init__(self) -> None:
        self.p = -1  # -1: walk from the first opcode
        self.first = 0
        self.hist: list[tuple[int, int]] = []
        self.dead = False

    def locate(self, buf: bytearray, index: int) -> tuple[int, int, int, int] | None:
        """_sparse_locate from the resume point; moves the resume point to
        the 'prev' of the opcode found."""
        if self.dead:
            return None
        end = len(buf)
        hist = self.hist
        if self.p < 0:
            p, first = HLL_HDR_SIZE, 0
        else:
            p, first = self.p, self.first
        while p < end:
            span, oplen = _opcode(buf, p, end)
            if index <= first + span - 1:
                if hist:
                    self.p, self.first = hist.pop()
                    return p, self.p, first, span
                self.p = -1
                return p, -1, first, span
            hist.append((p, first))
            p += oplen
            first += span
        # No opcode covers it; higher registers will not be covered either.
        self.dead = True
        return None


def _val(value: int, length: int) -> int:
    """HLL_SPARSE_VAL_SET."""
    return ((value - 1) << 2) | (length - 1) | 0x80


def _zero_seq(length: int) -> bytes:
    """A ZERO or XZERO opcode for ``length`` zero registers, as a split makes it."""
    if length > HLL_SPARSE_ZERO_MAX_LEN:
        n = length - 1
        return bytes(((n >> 8) | 0x40, n & 0xFF))
    return bytes((length - 1,))


def sparse_set(buf: bytearray, index: int, count: int, max_bytes: int,
               cursor: SparseCursor | None = None) -> int:
    """hllSparseSet: raise register ``index`` to ``count`` in a sparse HLL.

    1 when the register changed, 0 when it already held ``count`` or more,
    -1 when the representation is invalid.  May promote the HLL to dense
    (``count`` above 32, or the update would make the string longer than
    ``max_bytes``).  ``cursor``: for updates in ascending register order,
    the scan resumes where the previous update left the opcodes unchanged."""
    if count > HLL_SPARSE_VAL_MAX_VALUE:
        return _promote(buf, index, count)
    loc = _sparse_locate(buf, index) if cursor is None else cursor.locate(buf, index)
    if loc is None:
        return -1
    p, prev, first, span = loc
    end = len(buf)
    op = buf[p]
    if op & 0x80:
        runlen = (op & 3) + 1
        oldcount = ((op >> 2) & 0x1F) + 1
        if oldcount >= count:
            return 0  # case A
        if runlen == 1:
            buf[p] = _val(count, 1)  # case B
            return _merge_adjacent(buf, prev)
        curval = oldcount
        is_xzero = False
    elif op < 0x40:
        runlen = (op & 0x3F) + 1
        if runlen == 1:
            buf[p] = _val(count, 1)  # case C
            return _merge_adjacent(buf, prev)
        curval = 0
        is_xzero = False
    else:
        curval = 0
        is_xzero = True

    # Case D: split the opcode around the register.
    last = first + span - 1
    if curval:
        seq = bytearray()
        if index != first:
            seq.append(_val(curval, index - first))
        seq.append(_val(count, 1))
        if index != last:
            seq.append(_val(curval, last - index))
    else:
        seq = bytearray()
        if index != first:
            seq += _zero_seq(index - first)
        seq.append(_val(count, 1))
        if index != last:
            seq += _zero_seq(last - index)
    seqlen = len(seq)
    oldlen = 2 if is_xzero else 1
    deltalen = seqlen - oldlen
    if deltalen > 0 and end + deltalen > max_bytes:
        return _promote(buf, index, count)
    if p + oldlen <= end:
        buf[p : p + oldlen] = seq
    else:
        # An XZERO cut at the end: C writes the sequence over the terminator,
        # the string ends one byte short of it.
        buf[p:] = seq[: end + deltalen - p]
    return _merge_adjacent(buf, prev)


def _merge_adjacent(buf: bytearray, prev: int) -> int:
    """Step 4 of hllSparseSet: merge equal adjacent VALs over up to 5
    opcodes from ``prev``, then invalidate the cached cardinality."""
    p = prev if prev >= 0 else HLL_HDR_SIZE
    end = len(buf)
    scanlen = 5
    while p < end and scanlen:
        scanlen -= 1
        op = buf[p]
        if op & 0xC0 == 0x40:
            p += 2
            continue
        if op < 0x40:
            p += 1
            continue
        if p + 1 < end:
            nxt = buf[p + 1]
            if nxt & 0x80 and (op >> 2) & 0x1F == (nxt >> 2) & 0x1F:
                length = (op & 3) + (nxt & 3) + 2
                if length <= HLL_SPARSE_VAL_MAX_LEN:
                    buf[p + 1] = (nxt & 0xFC) | (length - 1)
                    del buf[p]
                    end -= 1
                    continue
        p += 1
    buf[15] |= CACHE_INVALID_BIT
    return 1


def _promote(buf: bytearray, index: int, count: int) -> int:
    """The promote: label of hllSparseSet."""
    if not sparse_to_dense(buf):
        return -1
    return dense_update(buf, index, count)


def add_many(buf: bytearray, eles: Sequence[bytes], max_bytes: int) -> int:
    """hllAdd for each element in order; the number of updated registers.

    Raises InvalidHLL at the first element that meets a corrupted sparse
    representation; the updates made before stay (as in Redis)."""
    updated = 0
    i = 0
    n = len(eles)
    while i < n:
        if buf[4] == HLL_DENSE:
            return updated + dense_add_many(buf, eles[i:] if i else eles)
        index, count = pat_len(eles[i])
        r = sparse_set(buf, index, count, max_bytes)
        if r < 0:
            raise InvalidHLL
        updated += r
        i += 1
    return updated


# -- histogram and count -----------------------------------------------------


def histogram(buf: bytes | bytearray) -> tuple[list[int], bool]:
    """hllDenseRegHisto / hllSparseRegHisto: (64 counters, invalid).

    A sparse HLL is invalid when its runs do not add up to 16384."""
    if buf[4] == HLL_DENSE:
        return np.bincount(unpack_dense(buf), minlength=64).tolist(), False
    if len(buf) - HLL_HDR_SIZE >= _NP_SPARSE_MIN:
        _starts, spans, values = _parse_sparse(buf)
        hist = np.bincount(values, weights=spans, minlength=64).astype(np.int64).tolist()
        return hist, int(spans.sum()) != HLL_REGISTERS
    hist = [0] * 64
    idx = 0
    p = HLL_HDR_SIZE
    end = len(buf)
    while p < end:
        b = buf[p]
        if b < 0x40:
            runlen = (b & 0x3F) + 1
            hist[0] += runlen
            p += 1
        elif b & 0x80:
            runlen = (b & 3) + 1
            hist[((b >> 2) & 0x1F) + 1] += runlen
            p += 1
        else:
            runlen = (((b & 0x3F) << 8) | (buf[p + 1] if p + 1 < end else 0)) + 1
            hist[0] += runlen
            p += 2
        idx += runlen
    return hist, idx != HLL_REGISTERS


def raw_histogram(regs: np.ndarray) -> list[int]:
    """hllRawRegHisto: the histogram of one-byte-per-register registers."""
    return np.bincount(regs, minlength=64).tolist()


def _sigma(x: float) -> float:
    """hllSigma (Ertl)."""
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    """hllTau (Ertl)."""
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


_LLONG_MIN_AS_U64 = 1 << 63


def count_from_histogram(hist: Sequence[int]) -> int:
    """The estimator of hllCount (Redis 7.0) as an unsigned 64-bit value.

    Rounded half away from zero as llroundl does; an estimate beyond the
    long long range (only reachable with forged registers: all at 51 or
    more gives z = 0, one lone high register gives ~2^77) comes out of
    llroundl on x86-64 as LLONG_MIN, i.e. 2^63 once cast to uint64."""
    m = float(HLL_REGISTERS)
    z = m * _tau((m - hist[HLL_Q + 1]) / m)
    for j in range(HLL_Q, 0, -1):
        z += hist[j]
        z *= 0.5
    z += m * _sigma(hist[0] / m)
    if z == 0.0:
        return _LLONG_MIN_AS_U64
    e = HLL_ALPHA_INF * m * m / z
    if not e < 9223372036854775807.0:
        return _LLONG_MIN_AS_U64
    f = math.floor(e)
    return int(f) + 1 if e - f >= 0.5 else int(f)


def count(buf: bytes | bytearray) -> tuple[int, bool]:
    """hllCount of a dense or sparse HLL string: (cardinality, invalid)."""
    hist, invalid = histogram(buf)
    return count_from_histogram(hist), invalid


# -- merge -------------------------------------------------------------------


def merge_into(maxregs: np.ndarray, buf: bytes | bytearray) -> bool:
    """hllMerge: maxregs = max(maxregs, registers of buf); False when a
    sparse HLL is invalid (maxregs is then left unchanged)."""
    if buf[4] == HLL_DENSE:
        regs = unpack_dense(buf)
    else:
        sregs = _sparse_registers(buf)
        if sregs is None:
            return False
        regs = sregs
    np.maximum(maxregs, regs, out=maxregs)
    return True


def store_merged(buf: bytearray, maxregs: np.ndarray, use_dense: bool, max_bytes: int) -> bool:
    """The write half of PFMERGE on the (valid) destination string.

    Dense destination (or ``use_dense``: converted first): every register
    is raised to maxregs.  Sparse destination: hllSparseSet for each
    non-zero register in ascending order, exactly as Redis, so the opcodes
    come out identical; if that promotes, the rest is set densely.  False
    when the destination could not be converted (corrupted)."""
    if use_dense and not sparse_to_dense(buf):
        return False
    if buf[4] == HLL_SPARSE:
        cursor = SparseCursor()
        nz = np.flatnonzero(maxregs)
        vals = maxregs[nz].tolist()
        for j, v in zip(nz.tolist(), vals, strict=True):
            sparse_set(buf, j, v, max_bytes, cursor)
            if buf[4] == HLL_DENSE:
                break
        else:
            invalidate_cache(buf)
            return True
    regs = np.maximum(unpack_dense(buf), maxregs)
    buf[HLL_HDR_SIZE:] = pack_dense(regs)
    invalidate_cache(buf)
    return True


# -- debugging ---------------------------------------------------------------


def decode_sparse(buf: bytes | bytearray) -> bytes:
    """PFDEBUG DECODE: the opcodes as ``z:N``, ``Z:N``, ``v:V,N``."""
    out = []
    p = HLL_HDR_SIZE
    end = len(buf)
    while p < end:
        b = buf[p]
        if b < 0x40:
            out.append(b"z:%d" % ((b & 0x3F) + 1))
            p += 1
        elif b & 0x80:
            out.append(b"v:%d,%d" % (((b >> 2) & 0x1F) + 1, (b & 3) + 1))
            p += 1
        else:
            out.append(b"Z:%d" % ((((b & 0x3F) << 8) | (buf[p + 1] if p + 1 < end else 0)) + 1))
            p += 2
    return b" ".join(out)


def selftest(max_bytes: int, scalar_limit: int = 10_000, total: int = 10_000_000,
             register_cycles: int = 3) -> str | None:
    """PFSELFTEST: None when the implementation passes, else the
    ``TESTFAILED ...`` text.

    Test 1 (register access): random values set register by register must
    read back unchanged through the scalar accessors and through the
    vectorized unpacking, and pack to the same bytes.  Test 2 (estimation
    error): unique 8-byte elements go into a dense HLL and into a sparse one
    through the real add paths; at every power of ten the sparse one must
    still be sparse while small, both must count the same, and the error
    must stay within six standard errors (1 at cardinality 10).  Past
    ``scalar_limit`` elements the elements are hashed in bulk (checked
    against the scalar hash) up to ``total``, as Redis goes to 10^7."""
    rng = random.Random()
    dense = bytearray(HLL_DENSE_SIZE)
    dense[:5] = b"HYLL\x00"
    for _ in range(register_cycles):
        values = [rng.getrandbits(6) for _ in range(HLL_REGISTERS)]
        for i, r in enumerate(values):
            dense_set(dense, i, r)
        for i, r in enumerate(values):
            got = dense_get(dense, i)
            if got != r:
                return "TESTFAILED Register %d should be %d but is %d" % (i, r, got)
        unpacked = unpack_dense(dense).tolist()
        for i, r in enumerate(values):
            if unpacked[i] != r:
                return "TESTFAILED Register %d should be %d but is %d" % (i, r, unpacked[i])
        if pack_dense(np.array(values, dtype=np.uint8)) != bytes(dense[HLL_HDR_SIZE:]):
            return "TESTFAILED packed registers differ"

    dense[HLL_HDR_SIZE:] = bytes(HLL_DENSE_SIZE - HLL_HDR_SIZE)
    sparse = bytearray(EMPTY_SPARSE)
    relerr = 1.04 / math.sqrt(HLL_REGISTERS)
    seed = rng.getrandbits(64)
    checkpoint = 1

    def check(j: int, card: int) -> str | None:
        maxerr = math.ceil(relerr * 6 * j)
        if j == 10:
            maxerr = 1
        abserr = abs(j - card)
        if abserr > maxerr:
            return "TESTFAILED Too big error. card:%d abserr:%d" % (j, abserr)
        return None

    limit = min(scalar_limit, total)
    for j in range(1, limit + 1):
        ele = (j ^ seed).to_bytes(8, "little")
        dense_add_many(dense, (ele,))
        if add_many(sparse, (ele,), max_bytes) < 0:
            return "TESTFAILED sparse add failed"
        if j == checkpoint:
            if j < max_bytes // 2 and sparse[4] != HLL_SPARSE:
                return "TESTFAILED sparse encoding not used"
            card = count(dense)[0]
            if card != count(sparse)[0]:
                return "TESTFAILED dense/sparse disagree"
            err = check(j, card)
            if err:
                return err
            checkpoint *= 10

    # Bulk phase: the same elements, hashed vectorized into raw registers.
    sample = np.arange(1, 1001, dtype=np.uint64) ^ np.uint64(seed)
    bidx, bcnt = pat_len_u64(sample)
    for k, key in enumerate(sample.tolist()):
        if pat_len(key.to_bytes(8, "little")) != (int(bidx[k]), int(bcnt[k])):
            return "TESTFAILED bulk hash differs from MurmurHash64A"
    raw = unpack_dense(dense)
    if not merge_into(raw, sparse):
        return "TESTFAILED sparse merge failed"
    if raw_histogram(raw) != histogram(dense)[0]:
        return "TESTFAILED dense/sparse disagree"
    j = limit
    chunk = 1 << 20
    while checkpoint <= total:
        stop = min(checkpoint, j + chunk)
        keys = np.arange(j + 1, stop + 1, dtype=np.uint64) ^ np.uint64(seed)
        idx, cnt = pat_len_u64(keys)
        np.maximum.at(raw, idx, cnt)
        j = stop
        if j == checkpoint:
            dense[HLL_HDR_SIZE:] = pack_dense(raw)
            card = count(dense)[0]
            if card != count_from_histogram(raw_histogram(raw)):
                return "TESTFAILED dense/raw disagree"
            err = check(j, card)
            if err:
                return err
            checkpoint *= 10
    return None
