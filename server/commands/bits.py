"""Bit operations on strings (bitops.c, Redis 7.0.15): SETBIT, GETBIT,
BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO.

Strings are read as bit arrays, most significant bit of byte 0 first.
Writers make the value raw (a ``bytearray``, see strings.py) and grow it with
zero bytes; like Redis 7.0 they count as a change (dirty, WATCH, the
"setbit" event, propagation) only when the string was created or grew or a
bit really flipped.  Offsets are limited to proto-max-bulk-len bytes, so a
huge offset is an error, never an allocation.  BITFIELD's overflow handling
emulates the C int64/uint64 arithmetic, quirks included.
"""

from __future__ import annotations

from typing import Any

from ..args import ERR_NOT_INT, ERR_SYNTAX
from ..client import Client
from ..keyspace import WRONGTYPE
from ..protocol import string2ll
from ..registry import command
from ..reply import Err
from .strings import NOTIFY_GENERIC, NOTIFY_STRING, is_string, must_obey, string_text, unshare

ERR_BIT_OFFSET = Err("ERR bit offset is not an integer or out of range")
ERR_BIT_VALUE = Err("ERR bit is not an integer or out of range")
ERR_BITFIELD_TYPE = Err(
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
)

U64 = (1 << 64) - 1
I64_MAX = (1 << 63) - 1


def _i64(x: int) -> int:
    """Wrap to a C int64_t."""
    x &= U64
    return x - (1 << 64) if x >> 63 else x


def _notify(c: Client, cls: int, event: bytes, key: bytes) -> None:
    srv = c.srv
    if srv.cfg.notify_keyspace_events:
        srv.notify(cls, event, key, c.db.id)


def get_bit_offset(c: Client, arg: bytes, hash_ok: bool = False, bits: int = 0) -> int:
    """getBitOffsetFromArgument: a bit offset, or ``#n`` (n * bits) for
    BITFIELD; negative or beyond proto-max-bulk-len bytes is an error (the
    multiplication wraps like C's)."""
    usehash = hash_ok and bits > 0 and arg[:1] == b"#"
    off = string2ll(arg[1:] if usehash else arg)
    if off is None:
        raise ERR_BIT_OFFSET
    if usehash:
        off = _i64(off * bits)
    if off < 0 or (not must_obey(c) and (off >> 3) >= c.srv.cfg.proto_max_bulk_len):
        raise ERR_BIT_OFFSET
    return off


def lookup_string_for_bit(c: Client, key: bytes, maxbit: int) -> tuple[bytearray, bool]:
    """lookupStringForBitCommand: the raw string at ``key`` grown to hold
    ``maxbit`` (created when missing); the flag tells if it was created or
    grew."""
    need = (maxbit >> 3) + 1
    db = c.db
    v = db.lookup_write(key)
    if v is None:
        # dbAdd alone: WATCH is touched by the caller only if a bit changes.
        ba = bytearray(need)
        db.add(key, ba, signal=False)
        return ba, True
    if not is_string(v):
        raise WRONGTYPE
    ba = unshare(db, key, v)
    old = len(ba)
    if old < need:
        ba += bytes(need - old)
        return ba, True
    return ba, False


def _read_string(v: Any) -> bytes | bytearray | None:
    if v is None:
        return None
    return string_text(v)


# -- SETBIT / GETBIT --------------------------------------------------------------


@command("setbit")
def setbit(c: Client, argv: list[bytes]) -> Any:
    """SETBIT key offset 0|1: the previous bit."""
    off = get_bit_offset(c, argv[2])
    on = string2ll(argv[3])
    if on is None or on & ~1:
        raise ERR_BIT_VALUE
    key = argv[1]
    ba, dirty = lookup_string_for_bit(c, key, off)
    byte = off >> 3
    shift = 7 - (off & 7)
    byteval = ba[byte]
    bitval = (byteval >> shift) & 1
    if dirty or bitval != on:
        ba[byte] = (byteval & ~(1 << shift)) | (on << shift)
        c.db.signal_modified(key)
        _notify(c, NOTIFY_STRING, b"setbit", key)
        c.srv.dirty += 1
    return bitval


@command("getbit")
def getbit(c: Client, argv: list[bytes]) -> Any:
    """GETBIT key offset: 0 beyond the end or for a missing key."""
    off = get_bit_offset(c, argv[2])
    v = _read_string(c.db.lookup_read(argv[1]))
    if v is None:
        return 0
    byte = off >> 3
    if byte >= len(v):
        return 0
    return (v[byte] >> (7 - (off & 7))) & 1


# -- ranges shared by BITCOUNT / BITPOS ------------------------------------------------


def _unit_is_bit(arg: bytes) -> bool:
    a = arg.lower()
    if a == b"bit":
        return True
    if a == b"byte":
        return False
    raise ERR_SYNTAX


@command("bitcount")
def bitcount(c: Client, argv: list[bytes]) -> Any:
    """BITCOUNT key [start end [BYTE|BIT]]; 7.0 looks the key up first, so a
    missing key answers 0 whatever the arguments."""
    v = _read_string(c.db.lookup_read(argv[1]))
    if v is None:
        return 0
    n = len(argv)
    strlen = len(v)
    if n == 4 or n == 5:
        start = string2ll(argv[2])
        if start is None:
            raise ERR_NOT_INT
        end = string2ll(argv[3])
        if end is None:
            raise ERR_NOT_INT
        if start < 0 and end < 0 and start > end:
            return 0
        isbit = _unit_is_bit(argv[4]) if n == 5 else False
        total = strlen * 8 if isbit else strlen
        if start < 0:
            start += total
        if end < 0:
            end += total
        if start < 0:
            start = 0
        if end < 0:
            end = 0
        if end >= total:
            end = total - 1
        if start > end:
            return 0
        if isbit:
            first = start >> 3
            last = end >> 3
            x = int.from_bytes(v[first : last + 1], "big")
            nbits = (last - first + 1) * 8
            lo = start - first * 8  # bits to drop at the front
            hi = (last * 8 + 7) - end  # bits to drop at the back
            x &= (1 << (nbits - lo)) - 1
            x >>= hi
            return x.bit_count()
        return int.from_bytes(v[start : end + 1], "big").bit_count()
    if n == 2:
        return int.from_bytes(v, "big").bit_count()
    raise ERR_SYNTAX


@command("bitpos")
def bitpos(c: Client, argv: list[bytes]) -> Any:
    """BITPOS key bit [start [end [BYTE|BIT]]]: the first ``bit`` in range.

    Looking for 0 without an explicit end treats the string as padded with
    zeros on the right (the answer can be just past the end); with an
    explicit end, no 0 in range is -1."""
    bit = string2ll(argv[2])
    if bit is None:
        raise ERR_NOT_INT
    if bit != 0 and bit != 1:
        raise Err("ERR The bit argument must be 1 or 0.")
    v = c.db.lookup_read(argv[1])
    if v is None:
        return -1 if bit else 0
    v = string_text(v)
    n = len(argv)
    strlen = len(v)
    end_given = False
    isbit = False
    if 4 <= n <= 6:
        start = string2ll(argv[3])
        if start is None:
            raise ERR_NOT_INT
        if n == 6:
            isbit = _unit_is_bit(argv[5])
        if n >= 5:
            end = string2ll(argv[4])
            if end is None:
                raise ERR_NOT_INT
            end_given = True
        else:
            end = strlen - 1
        total = strlen * 8 if isbit else strlen
        if start < 0:
            start += total
        if end < 0:
            end += total
        if start < 0:
            start = 0
        if end < 0:
            end = 0
        if end >= total:
            end = total - 1
    elif n == 3:
        start = 0
        end = strlen - 1
    else:
        raise ERR_SYNTAX
    if start > end:
        return -1
    # Work in bits: [sbit, ebit] inclusive, read from whole bytes.
    if isbit:
        sbit, ebit = start, end
    else:
        sbit, ebit = start * 8, end * 8 + 7
    first = sbit >> 3
    last = ebit >> 3
    nbits = (last - first + 1) * 8
    x = int.from_bytes(v[first : last + 1], "big")
    if bit == 0:
        x ^= (1 << nbits) - 1
    lo = sbit - first * 8
    hi = (last * 8 + 7) - ebit
    x &= (1 << (nbits - lo)) - 1
    x >>= hi
    if x:
        # x spans (ebit - sbit + 1) bits; its top bit is position sbit.
        return sbit + (ebit - sbit + 1) - x.bit_length()
    if bit == 1 or end_given:
        return -1
    return ebit + 1


# -- BITOP --------------------------------------------------------------------------

_NOT_TABLE = bytes(255 - i for i in range(256))


@command("bitop")
def bitop(c: Client, argv: list[bytes]) -> Any:
    """BITOP AND|OR|XOR|NOT destkey key [key ...]: missing keys are empty
    strings, shorter ones are zero-padded; an empty result deletes destkey."""
    op = argv[1].lower()
    if op not in (b"and", b"or", b"xor", b"not"):
        raise ERR_SYNTAX
    if op == b"not" and len(argv) != 4:
        raise Err("ERR BITOP NOT must be called with a single source key.")
    db = c.db
    srcs: list[bytes | bytearray] = []
    for key in argv[3:]:
        v = db.lookup_read(key)
        if v is None:
            srcs.append(b"")
            continue
        srcs.append(string_text(v))
    maxlen = max(len(s) for s in srcs)
    target = argv[2]
    srv = c.srv
    if maxlen:
        if op == b"not":
            res = bytearray(bytes(srcs[0]).translate(_NOT_TABLE))
        else:
            acc = -1 if op == b"and" else 0
            for s in srcs:
                x = int.from_bytes(s, "big") << ((maxlen - len(s)) * 8)
                if op == b"and":
                    acc &= x
                elif op == b"or":
                    acc |= x
                else:
                    acc ^= x
            res = bytearray((acc & ((1 << (maxlen * 8)) - 1)).to_bytes(maxlen, "big"))
        if db.lookup_write(target) is not None:
            db.set_key(target, res)
        else:
            db.add(target, res)
        _notify(c, NOTIFY_STRING, b"set", target)
        srv.dirty += 1
    elif db.delete(target):
        # dbDelete without a lookup (the target may be an expired key still
        # there); Db.delete already touched WATCH, once, as Redis does.
        _notify(c, NOTIFY_GENERIC, b"del", target)
        srv.dirty += 1
    return maxlen


# -- BITFIELD -----------------------------------------------------------------------

OP_GET = 0
OP_SET = 1
OP_INCRBY = 2
OV_WRAP = 0
OV_SAT = 1
OV_FAIL = 2


def _bitfield_type(arg: bytes) -> tuple[bool, int]:
    """getBitfieldTypeFromArgument: (signed, bits) for i1..i64 / u1..u63."""
    p0 = arg[:1]  # lower case only in 7.0
    if p0 == b"i":
        sign = True
    elif p0 == b"u":
        sign = False
    else:
        raise ERR_BITFIELD_TYPE
    rest = arg[1:]
    if b"\0" in rest:  # the C code reads a C string
        rest = rest[: rest.index(b"\0")]
    bits = string2ll(rest)
    if bits is None or bits < 1 or (sign and bits > 64) or (not sign and bits > 63):
        raise ERR_BITFIELD_TYPE
    return sign, bits


def _get_unsigned(buf: bytes | bytearray, offset: int, bits: int) -> int:
    """getUnsignedBitfield over a buffer long enough (or zero-padded here)."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = buf[first : last + 1]
    width = (last - first + 1) * 8
    x = int.from_bytes(chunk, "big") << ((width // 8 - len(chunk)) * 8)
    shift = width - (offset - first * 8) - bits
    return (x >> shift) & ((1 << bits) - 1)


def _get_signed(buf: bytes | bytearray, offset: int, bits: int) -> int:
    u = _get_unsigned(buf, offset, bits)
    if u >> (bits - 1):
        u -= 1 << bits
    return u


def _set_unsigned(ba: bytearray, offset: int, bits: int, value: int) -> None:
    """setUnsignedBitfield: the low ``bits`` of ``value`` at ``offset``."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    width = (last - first + 1) * 8
    shift = width - (offset - first * 8) - bits
    mask = ((1 << bits) - 1) << shift
    x = int.from_bytes(ba[first : last + 1], "big")
    x = (x & ~mask) | (((value & ((1 << bits) - 1)) << shift) & mask)
    ba[first : last + 1] = x.to_bytes(width // 8, "big")


def _check_unsigned_overflow(value: int, incr: int, bits: int, owtype: int) -> tuple[int, int]:
    """checkUnsignedBitfieldOverflow with uint64 ``value``: (overflow, limit)."""
    mx = (1 << bits) - 1
    maxincr = _i64(mx - value)
    minincr = _i64(-value)
    if value > mx or (incr > 0 and incr > maxincr):
        if owtype == OV_WRAP:
            return 1, (value + incr) & mx
        return 1, mx
    if incr < 0 and incr < minincr:
        if owtype == OV_WRAP:
            return -1, (value + incr) & mx
        return -1, 0
    return 0, 0


def _check_signed_overflow(value: int, incr: int, bits: int, owtype: int) -> tuple[int, int]:
    """checkSignedBitfieldOverflow with int64 wrap-around, as compiled."""
    mx = I64_MAX if bits == 64 else (1 << (bits - 1)) - 1
    mn = -mx - 1
    maxincr = _i64(mx - value)
    minincr = _i64(mn - value)
    over = 0
    if value > mx or (bits != 64 and incr > maxincr) or (value >= 0 and incr > 0 and incr > maxincr):
        over = 1
        limit = mx
    elif value < mn or (bits != 64 and incr < minincr) or (value < 0 and incr < 0 and incr < minincr):
        over = -1
        limit = mn
    else:
        return 0, 0
    if owtype == OV_WRAP:
        cval = (value + incr) & U64
        if bits < 64:
            m = U64 ^ ((1 << bits) - 1)
            if cval & (1 << (bits - 1)):
                cval |= m
            else:
                cval &= ~m & U64
        return over, _i64(cval)
    return over, limit


def bitfield_generic(c: Client, argv: list[bytes], readonly_cmd: bool) -> Any:
    """bitfieldGeneric: parse every operation first (errors before any work),
    then run them in order on one string."""
    ops: list[tuple[int, int, int, int, bool, int]] = []
    owtype = OV_WRAP
    readonly = True
    highest = 0
    j = 2
    n = len(argv)
    while j < n:
        remargs = n - j - 1
        sub = argv[j].lower()
        if sub == b"get" and remargs >= 2:
            opcode = OP_GET
        elif sub == b"set" and remargs >= 3:
            opcode = OP_SET
        elif sub == b"incrby" and remargs >= 3:
            opcode = OP_INCRBY
        elif sub == b"overflow" and remargs >= 1:
            name = argv[j + 1].lower()
            j += 2
            if name == b"wrap":
                owtype = OV_WRAP
            elif name == b"sat":
                owtype = OV_SAT
            elif name == b"fail":
                owtype = OV_FAIL
            else:
                raise Err("ERR Invalid OVERFLOW type specified")
            continue
        else:
            raise ERR_SYNTAX
        sign, bits = _bitfield_type(argv[j + 1])
        off = get_bit_offset(c, argv[j + 2], True, bits)
        i64 = 0
        if opcode != OP_GET:
            readonly = False
            if highest < off + bits - 1:
                highest = off + bits - 1
            v = string2ll(argv[j + 3])
            if v is None:
                raise ERR_NOT_INT
            i64 = v
        ops.append((opcode, off, bits, owtype, sign, i64))
        j += 3 if opcode == OP_GET else 4

    key = argv[1]
    o: Any
    if readonly:
        o = _read_string(c.db.lookup_read(key))
        dirty = False
    else:
        if readonly_cmd:
            raise Err("ERR BITFIELD_RO only supports the GET subcommand")
        o, dirty = lookup_string_for_bit(c, key, highest)

    out: list[Any] = []
    changes = 0
    for opcode, off, bits, ow, sign, i64 in ops:
        if opcode == OP_GET:
            if o is None:
                out.append(0)
            elif sign:
                out.append(_get_signed(o, off, bits))
            else:
                out.append(_get_unsigned(o, off, bits))
            continue
        if sign:
            oldval = _get_signed(o, off, bits)
            if opcode == OP_INCRBY:
                over, wrapped = _check_signed_overflow(oldval, i64, bits, ow)
                newval = wrapped if over else _i64(oldval + i64)
                retval = newval
            else:
                newval = i64
                over, wrapped = _check_signed_overflow(newval, 0, bits, ow)
                if over:
                    newval = wrapped
                retval = oldval
        else:
            oldval = _get_unsigned(o, off, bits)
            if opcode == OP_INCRBY:
                newval = (oldval + i64) & U64
                over, wrapped = _check_unsigned_overflow(oldval, i64, bits, ow)
                if over:
                    newval = wrapped
                retval = newval
            else:
                newval = i64 & U64
                over, wrapped = _check_unsigned_overflow(newval, 0, bits, ow)
                if over:
                    newval = wrapped
                retval = oldval
        if over and ow == OV_FAIL:
            out.append(None)
            continue
        out.append(_i64(retval))
        _set_unsigned(o, off, bits, newval & U64)
        if dirty or oldval != newval:
            changes += 1
    if changes:
        c.db.signal_modified(key)
        _notify(c, NOTIFY_STRING, b"setbit", key)
        c.srv.dirty += changes
    return out


@command("bitfield")
def bitfield(c: Client, argv: list[bytes]) -> Any:
    """BITFIELD key [GET type off] [SET type off v] [INCRBY type off inc]
    [OVERFLOW WRAP|SAT|FAIL] ..."""
    return bitfield_generic(c, argv, False)


@command("bitfield_ro")
def bitfield_ro(c: Client, argv: list[bytes]) -> Any:
    """BITFIELD_RO key [GET type off ...]: the read-only variant."""
    return bitfield_generic(c, argv, True)
