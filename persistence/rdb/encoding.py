"""Low-level RDB encodings shared by the reader and the writer: the length
encoding (§3), RDB strings with their integer and LZF forms (§4), the
CRC-64/Jones checksum (§11) and Redis's strict integer recognition.

LZF goes through python-lzf (a C binding of liblzf, the library Redis
vendors); CRC-64/Jones through crcmod-plus's C extension.
"""

from __future__ import annotations

import struct
from typing import Final

import crcmod
import lzf

#: CRC-64/Jones as Redis uses it: reflected polynomial 0x95ac9329ac4bc9b5,
#: init 0, no final xor.  ``crc64(data, crc)`` continues a running CRC.
crc64 = crcmod.mkCrcFun(0x1AD93D23594C935A9, initCrc=0, rev=True, xorOut=0)

_U32BE: Final = struct.Struct(">I")
_U64BE: Final = struct.Struct(">Q")
_I8: Final = struct.Struct("<b")
_I16: Final = struct.Struct("<h")
_I32: Final = struct.Struct("<i")

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

#: Precomputed one-byte length headers (0..63).
_LEN6: Final = [bytes((i,)) for i in range(64)]


def canonical_int(s: bytes) -> int | None:
    """The integer whose canonical decimal text is exactly ``s``, or None.

    Mirrors Redis's string2ll/ll2string round trip (and listpack's
    lpStringToInt64): optional ``-``, no leading zeros, no ``+``, no spaces,
    no ``-0``, within the signed 64-bit range."""
    n = len(s)
    if n == 0 or n > 20:
        return None
    if s[0] == 45:  # '-'
        if n == 1 or s[1] == 48 or not s[1:].isdigit():
            return None
    elif not s.isdigit() or (s[0] == 48 and n > 1):
        return None
    v = int(s)
    if v < INT64_MIN or v > INT64_MAX:
        return None
    return v


def enc_len(n: int) -> bytes:
    """The shortest length encoding of ``n`` (6-bit, 14-bit, 32-bit or 64-bit)."""
    if n < 64:
        return _LEN6[n]
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + _U32BE.pack(n)
    return b"\x81" + _U64BE.pack(n & 0xFFFFFFFFFFFFFFFF)


def enc_int_string(v: int) -> bytes | None:
    """The INT8/16/32 string encoding of ``v``, or None when it does not fit
    in 32 bits (Redis's rdbEncodeInteger)."""
    if -128 <= v <= 127:
        return b"\xc0" + _I8.pack(v)
    if -32768 <= v <= 32767:
        return b"\xc1" + _I16.pack(v)
    if -2147483648 <= v <= 2147483647:
        return b"\xc2" + _I32.pack(v)
    return None


def lzf_blob(compressed: bytes, original_len: int) -> bytes:
    """An LZF string (``0xC3 clen ulen data``) from already compressed bytes
    (Redis's rdbSaveLzfBlob)."""
    return b"\xc3" + enc_len(len(compressed)) + enc_len(original_len) + compressed


def _lzf_fits(c: bytes, in_len: int, out_len: int) -> bool:
    """Would Redis's liblzf (3.6) have produced ``c`` within an output buffer
    of ``out_len`` bytes?

    python-lzf emits the same stream but its bounds checks are looser, so at
    a slack under 4 bytes Redis may give up where it does not.  Replaying the
    stream through Redis's checks (the conservative back-reference test, the
    literal test and the "3 bytes can be missing" test before the tail)
    decides exactly, which keeps our files byte-identical to Redis's."""
    if len(c) + 4 <= out_len:
        return True
    if len(c) > out_len:
        return False
    op = 1
    lit = 0
    ip = 0
    main = True
    i = 0
    n = len(c)
    limit = in_len - 2
    while i < n:
        ctrl = c[i]
        i += 1
        if ctrl < 32:
            for _ in range(ctrl + 1):
                if main and ip >= limit:
                    main = False
                    if op + 3 > out_len:
                        return False
                if main and op >= out_len:
                    return False
                lit += 1
                op += 1
                ip += 1
                if lit == 32:
                    lit = 0
                    op += 1
            i += ctrl + 1
        else:
            ln = ctrl >> 5
            size = 2
            if ln == 7:
                ln += c[i]
                i += 1
                size = 3
            i += 1
            if op + 4 >= out_len and op - (lit == 0) + 4 >= out_len:
                return False
            op -= lit == 0
            op += size + 1
            lit = 0
            ip += ln + 2
            if main and ip >= limit:
                main = False
                if op + 3 > out_len:
                    return False
    if main and op + 3 > out_len:
        return False
    return True


def lzf_compress(s: bytes, out_len: int) -> bytes | None:
    """LZF-compress ``s`` the way Redis's lzf_compress does with an output
    buffer of ``out_len`` bytes; None when Redis would give up."""
    c = lzf.compress(s, out_len)
    if c is None or not _lzf_fits(c, len(s), out_len):
        return None
    return c


def enc_str(s: bytes, compress: bool = True) -> bytes:
    """An RDB string the way Redis's rdbSaveRawString writes it: integer
    encoding for short canonical integers that fit in 32 bits, LZF for
    strings over 20 bytes when ``compress`` and it saves at least 4 bytes,
    otherwise the plain length-prefixed bytes."""
    n = len(s)
    if n <= 11 and n:
        v = canonical_int(s)
        if v is not None:
            e = enc_int_string(v)
            if e is not None:
                return e
    if compress and n > 20:
        c = lzf_compress(s, n - 4)
        if c is not None:
            return lzf_blob(c, n)
    if n < 64:
        return _LEN6[n] + s
    return enc_len(n) + s


def enc_int_value(v: int) -> bytes:
    """A string value held as an integer (Redis's rdbSaveLongLongAsStringObject)."""
    e = enc_int_string(v)
    if e is not None:
        return e
    t = b"%d" % v
    return _LEN6[len(t)] + t


def lzf_decompress(data: bytes, ulen: int) -> bytes | None:
    """Decompress LZF data that must expand to exactly ``ulen`` bytes; None
    when it is corrupt.  A claimed length LZF cannot reach from ``len(data)``
    bytes is rejected before anything is allocated for it."""
    if ulen == 0 or not data:
        return None
    # Each LZF item expands at most 264 bytes from 3 input bytes (a long
    # back-reference) or 32 from 33 (a literal run).
    if ulen > 88 * len(data) + 64:
        return None
    try:
        out = lzf.decompress(data, ulen)
    except (ValueError, MemoryError, OverflowError):
        return None
    if out is None or len(out) != ulen:
        return None
    return out


# -- decoding primitives (used by the reader on a possibly incomplete buffer) -----------


class NeedMore(Exception):
    """Internal: the buffer ends before absolute buffer position ``need``;
    the reader waits for more input and parses the record again."""

    __slots__ = ("need",)

    def __init__(self, need: int) -> None:
        self.need = need


class Corrupt(Exception):
    """Internal: invalid data at buffer position ``pos`` (the reader turns it
    into an RDBCorruptError with the absolute offset and the key)."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


_U32BE_unpack = _U32BE.unpack_from
_U64BE_unpack = _U64BE.unpack_from


def read_len(buf: bytes, pos: int) -> tuple[int, int]:
    """A length at ``pos``: (value, position after it)."""
    try:
        b = buf[pos]
    except IndexError:
        raise NeedMore(pos + 1) from None
    if b < 0x40:
        return b, pos + 1
    if b < 0x80:
        if pos + 2 > len(buf):
            raise NeedMore(pos + 2)
        return ((b & 0x3F) << 8) | buf[pos + 1], pos + 2
    if b == 0x80:
        if pos + 5 > len(buf):
            raise NeedMore(pos + 5)
        return _U32BE_unpack(buf, pos + 1)[0], pos + 5
    if b == 0x81:
        if pos + 9 > len(buf):
            raise NeedMore(pos + 9)
        return _U64BE_unpack(buf, pos + 1)[0], pos + 9
    if b >= 0xC0:
        raise Corrupt(f"string encoding byte 0x{b:02x} where a length was expected", pos)
    raise Corrupt(f"invalid length encoding byte 0x{b:02x}", pos)


def read_str(buf: bytes, pos: int) -> tuple[bytes, int]:
    """An RDB string at ``pos`` (integer forms give their decimal text, LZF
    is decompressed): (bytes, position after it)."""
    try:
        b = buf[pos]
    except IndexError:
        raise NeedMore(pos + 1) from None
    if b < 0x40:
        end = pos + 1 + b
        if end > len(buf):
            raise NeedMore(end)
        return buf[pos + 1:end], end
    if b < 0x80:
        if pos + 2 > len(buf):
            raise NeedMore(pos + 2)
        p = pos + 2
        end = p + (((b & 0x3F) << 8) | buf[pos + 1])
        if end > len(buf):
            raise NeedMore(end)
        return buf[p:end], end
    if b < 0xC0:
        n, p = read_len(buf, pos)
        end = p + n
        if end > len(buf):
            raise NeedMore(end)
        return buf[p:end], end
    return _read_special(buf, pos, b)


_lzf_decompress = lzf.decompress


def read_blob(buf: bytes, pos: int) -> tuple[bytes, int]:
    """:func:`read_str` for a string holding a container (a listpack,
    ziplist, intset ...), which Redis writes LZF-compressed whenever that
    saves 4 bytes: the LZF form with 6/14-bit lengths is decoded inline,
    anything else (and every error) goes through :func:`read_str`."""
    n = len(buf)
    p = pos + 1
    if p + 1 < n and buf[pos] == 0xC3:
        c = buf[p]
        if c < 0x40:
            clen = c
            p += 1
        elif c < 0x80 and p + 2 < n:
            clen = ((c & 0x3F) << 8) | buf[p + 1]
            p += 2
        else:
            return read_str(buf, pos)
        u = buf[p]
        if u < 0x40:
            ulen = u
            p += 1
        elif u < 0x80 and p + 1 < n:
            ulen = ((u & 0x3F) << 8) | buf[p + 1]
            p += 2
        else:
            return read_str(buf, pos)
        end = p + clen
        if end <= n and 0 < ulen <= 88 * clen + 64:
            try:
                out = _lzf_decompress(buf[p:end], ulen)
            except (ValueError, MemoryError, OverflowError):
                out = None
            if out is not None and len(out) == ulen:
                return out, end
    return read_str(buf, pos)


def _read_special(buf: bytes, pos: int, b: int) -> tuple[bytes, int]:
    if b == 0xC3:
        clen, p = read_len(buf, pos + 1)
        ulen, p = read_len(buf, p)
        end = p + clen
        if end > len(buf):
            raise NeedMore(end)
        # Each LZF item expands at most 264 bytes from 3 input bytes, so a
        # larger claimed length is corrupt: never allocate for it.
        out = None
        if 0 < ulen <= 88 * clen + 64:
            try:
                out = _lzf_decompress(buf[p:end], ulen)
            except (ValueError, MemoryError, OverflowError):
                out = None
        if out is None or len(out) != ulen:
            raise Corrupt(f"invalid LZF compressed string ({clen} -> {ulen} bytes)", pos)
        return out, end
    if b == 0xC0:
        if pos + 2 > len(buf):
            raise NeedMore(pos + 2)
        v = buf[pos + 1]
        return b"%d" % (v - 256 if v >= 128 else v), pos + 2
    if b == 0xC1:
        if pos + 3 > len(buf):
            raise NeedMore(pos + 3)
        return b"%d" % _I16.unpack_from(buf, pos + 1)[0], pos + 3
    if b == 0xC2:
        if pos + 5 > len(buf):
            raise NeedMore(pos + 5)
        return b"%d" % _I32.unpack_from(buf, pos + 1)[0], pos + 5
    raise Corrupt(f"unknown RDB string encoding 0x{b:02x}", pos)


def string_encoding(first_byte: int) -> str:
    """How an RDB string starting with ``first_byte`` is stored: ``int``,
    ``lzf`` or ``raw``."""
    if first_byte >= 0xC0:
        return "lzf" if first_byte == 0xC3 else "int"
    return "raw"
