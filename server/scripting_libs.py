"""The C libraries Redis links into its Lua: bit (LuaBitOp 1.0.2), struct
(Roberto Ierusalimschy's struct.c), cjson (lua-cjson 2.1.0 with Redis's
patches) and cmsgpack (lua-cmsgpack 0.4.0), reimplemented in Python with
the same results and error texts.

Each function is exposed to Lua as a Python callable (a C function to Lua),
takes its arguments as lupa hands them over (bytes, int/float, bool, None,
lupa table objects) and raises errors through the VM's helpers, which give
them the caller's position like ``luaL_error`` does.  Tables are only read
raw (``lua_next`` order, no metamethods), as the C libraries do.
"""

from __future__ import annotations

import math
import struct as _struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .scripting import LuaVM

INT_MAX = 2147483647


def _is_table(vm: LuaVM, v: Any) -> bool:
    return vm.typename(v) == b"table"


def _items(v: Any) -> list[tuple[Any, Any]]:
    """A table's pairs in ``next()`` order (lupa iterates with lua_next)."""
    return list(v.items())


# -- bit ----------------------------------------------------------------------------------

_BIAS = 6755399441055744.0  # 2^52 + 2^51


def _tobit(n: float | int) -> int:
    """barg: add 2^52+2^51 and take the low 32 bits of the double."""
    b = _struct.unpack("<Q", _struct.pack("<d", float(n) + _BIAS))[0] & 0xFFFFFFFF
    return b


def _sret(b: int) -> int:
    b &= 0xFFFFFFFF
    return b - (1 << 32) if b >= 1 << 31 else b


class Bit:
    """LuaBitOp: 32-bit operations on numbers, results as signed numbers."""

    def __init__(self, vm: LuaVM) -> None:
        self.vm = vm

    def barg(self, narg: int, args: tuple[Any, ...]) -> int:
        v = args[narg - 1] if len(args) >= narg else None
        t = type(v)
        n: Any = None
        if t is int or t is float:
            n = v
        elif t is bytes:
            n = self.vm.lua_tonumber(v)
        b = _tobit(n) if n is not None else 0
        if b == 0 and n is None:
            raise self.vm.type_error(narg, b"number", args)
        return b

    def tobit(self, *a: Any) -> int:
        return _sret(self.barg(1, a))

    def bnot(self, *a: Any) -> int:
        return _sret(~self.barg(1, a))

    def _fold(self, a: tuple[Any, ...], op: int) -> int:
        b = self.barg(1, a)
        for i in range(len(a), 1, -1):
            x = self.barg(i, a)
            if op == 0:
                b &= x
            elif op == 1:
                b |= x
            else:
                b ^= x
        return _sret(b)

    def band(self, *a: Any) -> int:
        return self._fold(a, 0)

    def bor(self, *a: Any) -> int:
        return self._fold(a, 1)

    def bxor(self, *a: Any) -> int:
        return self._fold(a, 2)

    def _sh(self, a: tuple[Any, ...]) -> tuple[int, int]:
        b = self.barg(1, a)
        n = self.barg(2, a) & 31
        return b, n

    def lshift(self, *a: Any) -> int:
        b, n = self._sh(a)
        return _sret(b << n)

    def rshift(self, *a: Any) -> int:
        b, n = self._sh(a)
        return _sret(b >> n)

    def arshift(self, *a: Any) -> int:
        b, n = self._sh(a)
        return _sret(_sret(b) >> n)

    def rol(self, *a: Any) -> int:
        b, n = self._sh(a)
        return _sret((b << n) | (b >> (32 - n)))

    def ror(self, *a: Any) -> int:
        b, n = self._sh(a)
        return _sret((b << (32 - n)) | (b >> n))

    def bswap(self, *a: Any) -> int:
        b = self.barg(1, a)
        b = (b >> 24) | ((b >> 8) & 0xFF00) | ((b & 0xFF00) << 8) | (b << 24)
        return _sret(b)

    def tohex(self, *a: Any) -> bytes:
        b = self.barg(1, a)
        n = 8 if len(a) < 2 else _sret(self.barg(2, a))
        digits = b"0123456789abcdef"
        if n < 0:
            n = -n
            digits = b"0123456789ABCDEF"
        if n > 8:
            n = 8
        out = bytearray(n)
        for i in range(n - 1, -1, -1):
            out[i] = digits[b & 15]
            b >>= 4
        return bytes(out)


# -- struct -------------------------------------------------------------------------------

_MAXINTSIZE = 32
_MAXALIGN = 8
_BIG, _LITTLE = 0, 1
_ISDIGIT = frozenset(b"0123456789")


def _float32(x: float) -> bytes:
    """C's (float) cast, as 4 native (little-endian) bytes."""
    with np.errstate(over="ignore"):
        return np.float32(x).tobytes()


def _c_to_u64(n: float) -> int:
    """putinteger: (Uinttype)(Inttype)n for negatives, (Uinttype)n otherwise,
    as gcc compiles them on x86-64."""
    if n != n:
        return 0
    if n < 0:
        if n < -9.223372036854775808e18:
            return 1 << 63
        return int(n) & 0xFFFFFFFFFFFFFFFF
    if n >= 18446744073709551616.0:
        return 0
    return int(n)


class Struct:
    """struct.pack / struct.unpack / struct.size."""

    def __init__(self, vm: LuaVM) -> None:
        self.vm = vm

    def _fmt(self, args: tuple[Any, ...]) -> bytes:
        f = self.vm.check_string(1, args)
        return f.split(b"\x00", 1)[0]

    def _getnum(self, fmt: bytes, i: int, df: int) -> tuple[int, int]:
        if i >= len(fmt) or fmt[i] not in _ISDIGIT:
            return df, i
        a = 0
        while i < len(fmt) and fmt[i] in _ISDIGIT:
            d = fmt[i] - 48
            if a > INT_MAX // 10 or a * 10 > INT_MAX - d:
                raise self.vm.lib_error(b"integral size overflow")
            a = a * 10 + d
            i += 1
        return a, i

    def _optsize(self, opt: int, fmt: bytes, i: int) -> tuple[int, int]:
        c = chr(opt)
        if c in "Bb":
            return 1, i
        if c in "Hh":
            return 2, i
        if c in "LlT":
            return 8, i
        if c == "f":
            return 4, i
        if c == "d":
            return 8, i
        if c == "x":
            return 1, i
        if c == "c":
            return self._getnum(fmt, i, 1)
        if c in "iI":
            sz, i = self._getnum(fmt, i, 4)
            if sz > _MAXINTSIZE:
                raise self.vm.lib_error(b"integral size %d is larger than limit of %d" % (sz, _MAXINTSIZE))
            return sz, i
        return 0, i

    @staticmethod
    def _toalign(length: int, align: int, opt: int, size: int) -> int:
        if size == 0 or opt == 99:  # 'c'
            return 0
        if size > align:
            size = align
        return (size - (length & (size - 1))) & (size - 1)

    def _control(self, opt: int, fmt: bytes, i: int, h: list[int]) -> int:
        if opt == 32:
            return i
        if opt == 62:  # '>'
            h[0] = _BIG
            return i
        if opt == 60:  # '<'
            h[0] = _LITTLE
            return i
        if opt == 33:  # '!'
            a, i = self._getnum(fmt, i, _MAXALIGN)
            if not (a > 0 and (a & (a - 1)) == 0):
                raise self.vm.lib_error(b"alignment %d is not a power of 2" % a)
            h[1] = a
            return i
        raise self.vm.arg_error(1, b"invalid format option '" + bytes([opt]) + b"'")

    def pack(self, *args: Any) -> bytes:
        vm = self.vm
        fmt = self._fmt(args)
        # b_pack pushes a nil right after its arguments: a missing first
        # value reads "got nil", the ones after it "got no value".
        args = args + (None,)
        h = [_LITTLE, 1]
        arg = 2
        out = bytearray()
        total = 0
        i = 0
        while i < len(fmt):
            opt = fmt[i]
            i += 1
            size, i = self._optsize(opt, fmt, i)
            toalign = self._toalign(total, h[1], opt, size)
            total += toalign
            out += b"\x00" * toalign
            c = chr(opt)
            if c in "bBhHlLTiI":
                n = vm.check_number(arg, args)
                arg += 1
                value = _c_to_u64(float(n)) if type(n) is float else (int(n) & 0xFFFFFFFFFFFFFFFF)
                raw = bytearray()
                for _ in range(size):
                    raw.append(value & 0xFF)
                    value >>= 8
                if h[0] == _BIG:
                    raw.reverse()
                out += raw
            elif c == "x":
                out.append(0)
            elif c == "f":
                n = vm.check_number(arg, args)
                arg += 1
                b = _float32(float(n))
                out += b[::-1] if h[0] == _BIG else b
            elif c == "d":
                n = vm.check_number(arg, args)
                arg += 1
                b = _struct.pack("<d", float(n))
                out += b[::-1] if h[0] == _BIG else b
            elif c in "cs":
                s = vm.check_string(arg, args)
                arg += 1
                if size == 0:
                    size = len(s)
                if len(s) < size:
                    raise vm.arg_error(arg, b"string too short")
                out += s[:size]
                if c == "s":
                    out.append(0)
                    size += 1
            else:
                i = self._control(opt, fmt, i, h)
            total += size
        vm.room(len(out))
        return bytes(out)

    def unpack(self, *args: Any) -> Any:
        vm = self.vm
        fmt = self._fmt(args)
        data = vm.check_string(2, args)
        ld = len(data)
        vm.room(2 * ld + 4096)
        pos = 1
        if len(args) >= 3 and args[2] is not None:
            p = vm.check_number(3, args)
            pos = int(p) if p == p and abs(p) < 9.2e18 else -(1 << 63)
        if pos <= 0:
            raise vm.arg_error(3, b"offset must be 1 or greater")
        pos -= 1
        h = [_LITTLE, 1]
        res: list[Any] = []
        i = 0
        while i < len(fmt):
            opt = fmt[i]
            i += 1
            size, i = self._optsize(opt, fmt, i)
            pos += self._toalign(pos, h[1], opt, size)
            if not (size <= ld and pos <= ld - size):
                raise vm.arg_error(2, b"data string too short")
            c = chr(opt)
            if c in "bBhHlLTiI":
                chunk = data[pos:pos + size]
                if h[0] == _LITTLE:
                    chunk = chunk[::-1]
                v = 0
                for byte in chunk:
                    v = ((v << 8) | byte) & 0xFFFFFFFFFFFFFFFF
                if c.islower():
                    bits = (size * 8 - 1) & 63
                    mask = (0xFFFFFFFFFFFFFFFF << bits) & 0xFFFFFFFFFFFFFFFF
                    if v & mask:
                        v |= mask
                    if v >= 1 << 63:
                        v -= 1 << 64
                res.append(float(v))
            elif c == "x":
                pass
            elif c == "f":
                b = data[pos:pos + 4]
                if h[0] == _BIG:
                    b = b[::-1]
                res.append(float(np.frombuffer(b, dtype="<f4")[0]))
            elif c == "d":
                b = data[pos:pos + 8]
                if h[0] == _BIG:
                    b = b[::-1]
                res.append(_struct.unpack("<d", b)[0])
            elif c == "c":
                if size == 0:
                    prev = res[-1] if res else None
                    if prev is None or type(prev) not in (int, float):
                        raise vm.lib_error(b"format 'c0' needs a previous size")
                    res.pop()
                    size = int(prev) if prev >= 0 else -1
                    if not (0 <= size <= ld and pos <= ld - size):
                        raise vm.arg_error(2, b"data string too short")
                res.append(data[pos:pos + size])
            elif c == "s":
                e = data.find(b"\x00", pos)
                if e < 0:
                    raise vm.lib_error(b"unfinished string in data")
                size = e - pos + 1
                res.append(data[pos:e])
            else:
                i = self._control(opt, fmt, i, h)
            pos += size
        res.append(pos + 1)
        return tuple(res) if len(res) > 1 else res[0]

    def size(self, *args: Any) -> int:
        fmt = self._fmt(args)
        h = [_LITTLE, 1]
        pos = 0
        i = 0
        while i < len(fmt):
            opt = fmt[i]
            i += 1
            size, i = self._optsize(opt, fmt, i)
            pos += self._toalign(pos, h[1], opt, size)
            if opt == 115:  # 's'
                raise self.vm.arg_error(1, b"option 's' has no fixed size")
            if opt == 99 and size == 0:
                raise self.vm.arg_error(1, b"option 'c0' has no fixed size")
            if not chr(opt).isalnum():
                i = self._control(opt, fmt, i, h)
            pos += size
        return pos


# -- cjson --------------------------------------------------------------------------------

_ESCAPES: dict[int, bytes] = {i: b"\\u%04x" % i for i in range(32)}
_ESCAPES.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r", 0x22: b'\\"', 0x5C: b"\\\\",
                 0x2F: b"\\/", 0x7F: b"\\u007f"})
_ESCAPE_TABLE = {k: v.decode("latin-1") for k, v in _ESCAPES.items()}

T_OBJ_BEGIN, T_OBJ_END, T_ARR_BEGIN, T_ARR_END, T_STRING, T_NUMBER, T_BOOLEAN, T_NULL, T_COLON, T_COMMA, \
    T_END, T_WHITESPACE, T_ERROR, T_UNKNOWN = range(14)
_TOKEN_NAMES = [b"T_OBJ_BEGIN", b"T_OBJ_END", b"T_ARR_BEGIN", b"T_ARR_END", b"T_STRING", b"T_NUMBER",
                b"T_BOOLEAN", b"T_NULL", b"T_COLON", b"T_COMMA", b"T_END", b"T_WHITESPACE", b"T_ERROR",
                b"T_UNKNOWN"]
_CH2TOKEN = [T_ERROR] * 256
for _s, _t in ((b"{", T_OBJ_BEGIN), (b"}", T_OBJ_END), (b"[", T_ARR_BEGIN), (b"]", T_ARR_END),
               (b",", T_COMMA), (b":", T_COLON), (b"\x00", T_END), (b" ", T_WHITESPACE),
               (b"\t", T_WHITESPACE), (b"\n", T_WHITESPACE), (b"\r", T_WHITESPACE)):
    _CH2TOKEN[_s[0]] = _t
for _c in b"fiInNt\"+-0123456789":
    _CH2TOKEN[_c] = T_UNKNOWN
_ESCAPE2CHAR = {ord('"'): 34, ord("\\"): 92, ord("/"): 47, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("f"): 12,
                ord("r"): 13, ord("u"): 117}
_HEXD = frozenset(b"0123456789abcdefABCDEF")


def c_strtod(s: bytes, i: int) -> tuple[float, int]:
    """glibc strtod on ``s[i:]`` (no leading spaces here): (value, end)."""
    n = len(s)
    j = i
    neg = False
    if j < n and s[j] in b"+-":
        neg = s[j] == 45
        j += 1
    low = s[j:j + 8].lower()
    if low.startswith(b"inf"):
        end = j + (8 if low == b"infinity" else 3)
        return (-math.inf if neg else math.inf), end
    if low.startswith(b"nan"):
        end = j + 3
        if end < n and s[end] == 40:  # nan(chars)
            k = end + 1
            while k < n and (chr(s[k]).isalnum() or s[k] == 95):
                k += 1
            if k < n and s[k] == 41:
                end = k + 1
        v = math.nan
        return (-v if neg else v), end
    if s[j:j + 2].lower() == b"0x" and j + 2 < n and (s[j + 2] in _HEXD or
                                                      (s[j + 2] == 46 and j + 3 < n and s[j + 3] in _HEXD)):
        k = j + 2
        while k < n and s[k] in _HEXD:
            k += 1
        if k < n and s[k] == 46:
            k += 1
            while k < n and s[k] in _HEXD:
                k += 1
        mant_end = k
        if k < n and s[k] in b"pP":
            m = k + 1
            if m < n and s[m] in b"+-":
                m += 1
            if m < n and s[m] in _ISDIGIT:
                while m < n and s[m] in _ISDIGIT:
                    m += 1
                k = m
        text = s[j:k].decode()
        if k == mant_end:
            text += "p0"
        try:
            v = float.fromhex(text)
        except OverflowError:
            v = math.inf
        return (-v if neg else v), k
    k = j
    digits = 0
    while k < n and s[k] in _ISDIGIT:
        k += 1
        digits += 1
    if k < n and s[k] == 46:
        k += 1
        while k < n and s[k] in _ISDIGIT:
            k += 1
            digits += 1
    if digits == 0:
        return 0.0, i
    if k < n and s[k] in b"eE":
        m = k + 1
        if m < n and s[m] in b"+-":
            m += 1
        if m < n and s[m] in _ISDIGIT:
            while m < n and s[m] in _ISDIGIT:
                m += 1
            k = m
    v = float(s[j:k])
    return (-v if neg else v), k


class _Token:
    __slots__ = ("type", "index", "value")

    def __init__(self) -> None:
        self.type = T_END
        self.index = 0
        self.value: Any = None


class CJson:
    """One cjson module instance (``cjson.new()`` makes more), with its
    configuration (json_config_t)."""

    def __init__(self, vm: LuaVM) -> None:
        self.vm = vm
        self.sparse_convert = 0
        self.sparse_ratio = 2
        self.sparse_safe = 10
        self.encode_max_depth = 1000
        self.decode_max_depth = 1000
        self.precision = 14
        self.keep_buffer = 1
        self.encode_invalid = 0
        self.decode_invalid = 1

    def functions(self, prefix: bytes) -> dict[bytes, Any]:
        return {
            prefix + b"encode": self.encode, prefix + b"decode": self.decode,
            prefix + b"encode_sparse_array": self.cfg_sparse, prefix + b"encode_max_depth": self.cfg_enc_depth,
            prefix + b"decode_max_depth": self.cfg_dec_depth,
            prefix + b"encode_number_precision": self.cfg_precision,
            prefix + b"encode_keep_buffer": self.cfg_keep_buffer,
            prefix + b"encode_invalid_numbers": self.cfg_enc_invalid,
            prefix + b"decode_invalid_numbers": self.cfg_dec_invalid,
            prefix + b"new": self.new,
        }

    # -- configuration ----------------------------------------------------------------

    def _arg_init(self, args: tuple[Any, ...], n: int) -> tuple[Any, ...]:
        if len(args) > n:
            raise self.vm.arg_error(n + 1, b"found too many arguments")
        return args + (None,) * (n - len(args))

    def _int_opt(self, args: tuple[Any, ...], idx: int, attr: str, lo: int, hi: int) -> int:
        v = args[idx - 1]
        if v is not None:
            n = self.vm.check_number(idx, args)
            value = int(n) if n == n and abs(n) < 9.2e18 else -(1 << 63)
            if not lo <= value <= hi:
                raise self.vm.arg_error(1, b"expected integer between %d and %d" % (lo, hi))
            setattr(self, attr, value)
        return int(getattr(self, attr))

    def _enum_opt(self, args: tuple[Any, ...], idx: int, attr: str, options: list[bytes]) -> Any:
        v = args[idx - 1]
        if v is not None:
            if type(v) is bool:
                setattr(self, attr, int(v))
            else:
                s = v if type(v) is bytes else None
                if s is None and type(v) in (int, float):
                    from .scripting import lua_num2str

                    s = lua_num2str(v)
                if s is None:
                    raise self.vm.type_error(idx, b"string", args)
                if s not in options:
                    raise self.vm.arg_error(idx, b"invalid option '" + s + b"'")
                setattr(self, attr, options.index(s))
        cur = getattr(self, attr)
        if cur in (0, 1):
            return bool(cur)
        return options[cur]

    def cfg_sparse(self, *args: Any) -> Any:
        a = self._arg_init(args, 3)
        conv = self._enum_opt(a, 1, "sparse_convert", [b"off", b"on"])
        ratio = self._int_opt(a, 2, "sparse_ratio", 0, INT_MAX)
        safe = self._int_opt(a, 3, "sparse_safe", 0, INT_MAX)
        return (conv, ratio, safe)

    def cfg_enc_depth(self, *args: Any) -> int:
        return self._int_opt(self._arg_init(args, 1), 1, "encode_max_depth", 1, INT_MAX)

    def cfg_dec_depth(self, *args: Any) -> int:
        return self._int_opt(self._arg_init(args, 1), 1, "decode_max_depth", 1, INT_MAX)

    def cfg_precision(self, *args: Any) -> int:
        return self._int_opt(self._arg_init(args, 1), 1, "precision", 1, 14)

    def cfg_keep_buffer(self, *args: Any) -> Any:
        return self._enum_opt(self._arg_init(args, 1), 1, "keep_buffer", [b"off", b"on"])

    def cfg_enc_invalid(self, *args: Any) -> Any:
        return self._enum_opt(self._arg_init(args, 1), 1, "encode_invalid", [b"off", b"on", b"null"])

    def cfg_dec_invalid(self, *args: Any) -> Any:
        return self._enum_opt(self._arg_init(args, 1), 1, "decode_invalid", [b"off", b"on"])

    def new(self, *args: Any) -> Any:
        """cjson.new(): a fresh module table with its own configuration."""
        from .scripting import PyFn

        vm = self.vm
        inst = CJson(vm)
        t = vm.lua.table()
        for name, fn in inst.functions(b"").items():
            t[name] = PyFn(fn)
        vm.api[b"mark_table"](t)
        t[b"null"] = vm.null
        t[b"_NAME"] = b"cjson"
        t[b"_VERSION"] = b"2.1.0"
        return t

    # -- encode ---------------------------------------------------------------------

    def _exception(self, v: Any, reason: bytes) -> Exception:
        return self.vm.lib_error(b"Cannot serialise " + self.vm.typename(v) + b": " + reason)

    def _number(self, v: float | int, out: list[bytes]) -> None:
        f = float(v)
        if math.isinf(f) or f != f:
            if self.encode_invalid == 0:
                raise self._exception(v, b"must not be NaN or Inf")
            if self.encode_invalid == 1:
                if f != f:
                    out.append(b"nan")
                    return
            else:
                out.append(b"null")
                return
        if type(v) is int and abs(v) < 10 ** self.precision:
            out.append(b"%d" % v)
        else:
            out.append(b"%.*g" % (self.precision, f))

    @staticmethod
    def _string(s: bytes, out: list[bytes]) -> None:
        out.append(b'"' + s.decode("latin-1").translate(_ESCAPE_TABLE).encode("latin-1") + b'"')

    def encode(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise self.vm.arg_error(1, b"expected 1 argument")
        out: list[bytes] = []
        self._data(args[0], out)
        res = b"".join(out)
        self.vm.room(len(res))
        return res

    def _array_length(self, items: list[tuple[Any, Any]]) -> int:
        mx = 0
        for k, _ in items:
            if type(k) in (int, float) and k:
                if k == math.floor(k) and k >= 1:
                    if k > mx:
                        mx = int(k) if k < 2 ** 63 else -1
                    continue
            return -1
        n = len(items)
        if self.sparse_ratio > 0 and mx > n * self.sparse_ratio and mx > self.sparse_safe:
            if not self.sparse_convert:
                raise self.vm.lib_error(b"Cannot serialise table: excessively sparse array")
            return -1
        return mx

    def _data(self, root: Any, out: list[bytes]) -> None:
        """json_append_data, with an explicit stack: entries are values (with
        their depth), literal bytes, or object keys, handled in the order the
        C recursion handles them (so the first error met is the same)."""
        vm = self.vm
        work: list[Any] = [(root, 0)]
        pop = work.pop
        while work:
            item = pop()
            ti = type(item)
            if ti is bytes:
                out.append(item)
                continue
            if ti is _Key:
                k = item.key
                tk = type(k)
                if tk is int or tk is float:
                    out.append(b'"')
                    self._number(k, out)
                    out.append(b'":')
                elif tk is bytes:
                    self._string(k, out)
                    out.append(b":")
                else:
                    raise self._exception(k, b"table key must be a number or string")
                continue
            v, depth = item
            t = type(v)
            if t is bytes:
                self._string(v, out)
            elif t is int or t is float:
                self._number(v, out)
            elif t is bool:
                out.append(b"true" if v else b"false")
            elif v is None:
                out.append(b"null")
            elif vm.typename(v) == b"table":
                depth += 1
                if depth > self.encode_max_depth:
                    raise vm.lib_error(b"Cannot serialise, excessive nesting (%d)" % depth)
                items = _items(v)
                n = self._array_length(items)
                if n > 0:
                    vals = dict(items)
                    out.append(b"[")
                    work.append(b"]")
                    for i in range(n, 0, -1):
                        work.append((vals.get(i), depth))
                        if i > 1:
                            work.append(b",")
                else:
                    out.append(b"{")
                    work.append(b"}")
                    for j in range(len(items) - 1, -1, -1):
                        k, val = items[j]
                        work.append((val, depth))
                        work.append(_Key(k))
                        if j > 0:
                            work.append(b",")
            elif vm.is_null(v):
                out.append(b"null")
            else:
                raise self._exception(v, b"type not supported")

    # -- decode ---------------------------------------------------------------------

    def decode(self, *args: Any) -> Any:
        vm = self.vm
        if len(args) != 1:
            raise vm.arg_error(1, b"expected 1 argument")
        data = vm.check_string(1, args)
        vm.room(len(data) * 32 + 4096)
        if len(data) >= 2 and (data[0] == 0 or data[1] == 0):
            raise vm.lib_error(b"JSON parser does not support UTF-16 or UTF-32")
        self._data_buf = data + b"\x00"
        self._ptr = 0
        self._depth = 0
        tok = _Token()
        self._next_token(tok)
        value = self._value(tok)
        self._next_token(tok)
        if tok.type != T_END:
            raise self._parse_error(b"the end", tok)
        return value

    def _parse_error(self, exp: bytes, tok: _Token) -> Exception:
        found = tok.value if tok.type == T_ERROR else _TOKEN_NAMES[tok.type]
        return self.vm.lib_error(b"Expected %s but found %s at character %d" % (exp, found, tok.index + 1))

    def _set_error(self, tok: _Token, msg: bytes) -> None:
        tok.type = T_ERROR
        tok.index = self._ptr
        tok.value = msg

    def _is_invalid_number(self) -> bool:
        s = self._data_buf
        p = self._ptr
        if s[p] == 43:  # '+'
            return True
        if s[p] == 45:
            p += 1
        if s[p] == 48:
            ch2 = s[p + 1] if p + 1 < len(s) else 0
            return (ch2 | 0x20) == 120 or 48 <= ch2 <= 57
        if s[p] <= 57:
            return False
        w = s[p:p + 3].lower()
        return w in (b"inf", b"nan")

    def _next_token(self, tok: _Token) -> None:
        s = self._data_buf
        while True:
            ch = s[self._ptr]
            tok.type = _CH2TOKEN[ch]
            if tok.type != T_WHITESPACE:
                break
            self._ptr += 1
        tok.index = self._ptr
        if tok.type == T_ERROR:
            self._set_error(tok, b"invalid token")
            return
        if tok.type == T_END:
            return
        if tok.type != T_UNKNOWN:
            self._ptr += 1
            return
        p = self._ptr
        if ch == 34:
            self._string_token(tok)
        elif ch == 45 or 48 <= ch <= 57:
            if not self.decode_invalid and self._is_invalid_number():
                self._set_error(tok, b"invalid number")
                return
            self._number_token(tok)
        elif s.startswith(b"true", p):
            tok.type = T_BOOLEAN
            tok.value = True
            self._ptr += 4
        elif s.startswith(b"false", p):
            tok.type = T_BOOLEAN
            tok.value = False
            self._ptr += 5
        elif s.startswith(b"null", p):
            tok.type = T_NULL
            self._ptr += 4
        elif self.decode_invalid and self._is_invalid_number():
            self._number_token(tok)
        else:
            self._set_error(tok, b"invalid token")

    def _number_token(self, tok: _Token) -> None:
        tok.type = T_NUMBER
        v, end = c_strtod(self._data_buf, self._ptr)
        if end == self._ptr:
            self._set_error(tok, b"invalid number")
        else:
            tok.value = v
            self._ptr = end

    def _string_token(self, tok: _Token) -> None:
        s = self._data_buf
        self._ptr += 1
        out = bytearray()
        while True:
            ch = s[self._ptr]
            if ch == 34:
                break
            if ch == 0:
                self._set_error(tok, b"unexpected end of string")
                return
            if ch == 92:
                esc = _ESCAPE2CHAR.get(s[self._ptr + 1], 0)
                if esc == 117:
                    if self._unicode_escape(out) == 0:
                        continue
                    self._set_error(tok, b"invalid unicode escape code")
                    return
                if not esc:
                    self._set_error(tok, b"invalid escape code")
                    return
                self._ptr += 1
                ch = esc
            out.append(ch)
            self._ptr += 1
        self._ptr += 1
        tok.type = T_STRING
        tok.value = bytes(out)

    def _hex4(self, p: int) -> int:
        h = self._data_buf[p:p + 4]
        if len(h) < 4 or any(c not in _HEXD for c in h):
            return -1
        return int(h, 16)

    def _unicode_escape(self, out: bytearray) -> int:
        p = self._ptr
        cp = self._hex4(p + 2)
        if cp < 0:
            return -1
        esc_len = 6
        if (cp & 0xF800) == 0xD800:
            if cp & 0x400:
                return -1
            s = self._data_buf
            if s[p + 6:p + 8] != b"\\u":
                return -1
            low = self._hex4(p + 8)
            if low < 0 or (low & 0xFC00) != 0xDC00:
                return -1
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000
            esc_len = 12
        out += chr(cp).encode("utf-8", "surrogatepass")
        self._ptr += esc_len
        return 0

    def _descend(self) -> None:
        self._depth += 1
        if self._depth > self.decode_max_depth:
            raise self.vm.lib_error(b"Found too many nested data structures (%d) at character %d"
                                    % (self._depth, self._ptr))

    def _scalar(self, tok: _Token) -> Any:
        t = tok.type
        if t == T_STRING or t == T_NUMBER or t == T_BOOLEAN:
            return tok.value
        if t == T_NULL:
            return self.vm.null
        raise self._parse_error(b"value", tok)

    def _value(self, tok: _Token) -> Any:
        """json_process_value and the object/array contexts, with an explicit
        stack of open containers ([table, is_object, next index or key])."""
        new_table = self.vm.lua.table
        stack: list[list[Any]] = []
        while True:
            # -- a value starts at tok
            if tok.type == T_OBJ_BEGIN:
                self._descend()
                t = new_table()
                self._next_token(tok)
                if tok.type != T_OBJ_END:
                    stack.append([t, True, self._object_key(tok)])
                    self._next_token(tok)
                    continue
                self._depth -= 1
                value = t
            elif tok.type == T_ARR_BEGIN:
                self._descend()
                t = new_table()
                self._next_token(tok)
                if tok.type != T_ARR_END:
                    stack.append([t, False, 1])
                    continue
                self._depth -= 1
                value = t
            else:
                value = self._scalar(tok)
            # -- the value is complete: store it, then the container's next step
            while True:
                if not stack:
                    return value
                frame = stack[-1]
                frame[0][frame[2]] = value
                self._next_token(tok)
                end = T_OBJ_END if frame[1] else T_ARR_END
                if tok.type == end:
                    self._depth -= 1
                    value = frame[0]
                    stack.pop()
                    continue
                if tok.type != T_COMMA:
                    raise self._parse_error(b"comma or object end" if frame[1] else b"comma or array end", tok)
                self._next_token(tok)
                if frame[1]:
                    frame[2] = self._object_key(tok)
                    self._next_token(tok)
                else:
                    frame[2] += 1
                break

    def _object_key(self, tok: _Token) -> bytes:
        """A key string and its colon; tok is then the colon."""
        if tok.type != T_STRING:
            raise self._parse_error(b"object key string", tok)
        key = tok.value
        self._next_token(tok)
        if tok.type != T_COLON:
            raise self._parse_error(b"colon", tok)
        return key  # type: ignore[no-any-return]


class _Key:
    """An object key waiting in cjson's encode stack."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key


# -- cmsgpack -----------------------------------------------------------------------------

_MAX_NESTING = 16


class _Eof(Exception):
    pass


class _BadFmt(Exception):
    pass


class MsgPack:
    """cmsgpack.pack / unpack / unpack_one / unpack_limit."""

    def __init__(self, vm: LuaVM) -> None:
        self.vm = vm

    # -- pack ------------------------------------------------------------------------

    def pack(self, *args: Any) -> bytes:
        if not args:
            raise self.vm.arg_error(0, b"MessagePack pack needs input.")
        out = bytearray()
        for a in args:
            self._encode(a, out, 0)
        self.vm.room(len(out))
        return bytes(out)

    def _encode(self, v: Any, out: bytearray, level: int) -> None:
        t = type(v)
        if t is bytes:
            n = len(v)
            if n < 32:
                out.append(0xA0 | n)
            elif n <= 0xFF:
                out += bytes((0xD9, n))
            elif n <= 0xFFFF:
                out += b"\xda" + n.to_bytes(2, "big")
            else:
                out += b"\xdb" + (n & 0xFFFFFFFF).to_bytes(4, "big")
            out += v
        elif t is bool:
            out.append(0xC3 if v else 0xC2)
        elif t is int or t is float:
            self._number(v, out)
        elif v is not None and self.vm.typename(v) == b"table" and level < _MAX_NESTING:
            items = _items(v)
            mx = 0
            is_array = True
            for k, _ in items:
                if type(k) not in (int, float) or k <= 0 or math.isinf(k) or k != int(k) or \
                        not -(1 << 31) <= k < (1 << 31):
                    is_array = False
                    break
                if k > mx:
                    mx = int(k)
            if is_array and mx == len(items):
                vals = dict(items)
                self._hdr(len(items), out, 0x90, 0xDC, 0xDD)
                for i in range(1, mx + 1):
                    self._encode(vals.get(i), out, level + 1)
            else:
                self._hdr(len(items), out, 0x80, 0xDE, 0xDF)
                for k, val in items:
                    self._encode(k, out, level + 1)
                    self._encode(val, out, level + 1)
        else:
            out.append(0xC0)

    @staticmethod
    def _hdr(n: int, out: bytearray, fix: int, b16: int, b32: int) -> None:
        if n <= 15:
            out.append(fix | n)
        elif n <= 0xFFFF:
            out.append(b16)
            out += n.to_bytes(2, "big")
        else:
            out.append(b32)
            out += (n & 0xFFFFFFFF).to_bytes(4, "big")

    @staticmethod
    def _number(v: float | int, out: bytearray) -> None:
        f = float(v)
        if not math.isinf(f) and f == f and -9.223372036854775808e18 <= f < 9.223372036854775808e18 \
                and int(f) == f:
            n = int(f)
            if n >= 0:
                if n <= 127:
                    out.append(n)
                elif n <= 0xFF:
                    out += bytes((0xCC, n))
                elif n <= 0xFFFF:
                    out += b"\xcd" + n.to_bytes(2, "big")
                elif n <= 0xFFFFFFFF:
                    out += b"\xce" + n.to_bytes(4, "big")
                else:
                    out += b"\xcf" + n.to_bytes(8, "big")
            else:
                if n >= -32:
                    out.append(n & 0xFF)
                elif n >= -128:
                    out += bytes((0xD0, n & 0xFF))
                elif n >= -32768:
                    out += b"\xd1" + n.to_bytes(2, "big", signed=True)
                elif n >= -2147483648:
                    out += b"\xd2" + n.to_bytes(4, "big", signed=True)
                else:
                    out += b"\xd3" + n.to_bytes(8, "big", signed=True)
            return
        f32 = _float32(f)
        if float(np.frombuffer(f32, dtype="<f4")[0]) == f:
            out += b"\xca" + f32[::-1]
        else:
            out += b"\xcb" + _struct.pack(">d", f)

    # -- unpack ----------------------------------------------------------------------

    def unpack(self, *args: Any) -> Any:
        return self._unpack_full(args, 0, 0)

    def unpack_one(self, *args: Any) -> Any:
        offset = self._optint(args, 2, 0)
        return self._unpack_full(args[:1], 1, offset)

    def unpack_limit(self, *args: Any) -> Any:
        limit = self._int(self.vm.check_number(2, args))
        offset = self._optint(args, 3, 0)
        return self._unpack_full(args[:1], limit, offset)

    @staticmethod
    def _int(n: float | int) -> int:
        """(int) of a lua_Integer: 64-bit truncation, then the low 32 bits."""
        from .scripting import lua_toint

        return lua_toint(n)

    def _optint(self, args: tuple[Any, ...], narg: int, df: int) -> int:
        if len(args) < narg or args[narg - 1] is None:
            return df
        return self._int(self.vm.check_number(narg, args))

    def _unpack_full(self, args: tuple[Any, ...], limit: int, offset: int) -> Any:
        vm = self.vm
        s = vm.check_string(1, args)
        n = len(s)
        decode_all = not limit and not offset
        if offset < 0 or limit < 0:
            raise vm.lib_error(b"Invalid request to unpack with offset of %d and limit of %d." % (offset, n))
        if offset > n:
            raise vm.lib_error(b"Start offset %d greater than input length %d." % (offset, n))
        if decode_all:
            limit = INT_MAX
        vm.room(len(s) * 64 + 4096)
        self._s = s
        self._pos = offset
        values: list[Any] = []
        # The C decoder keeps every value on the Lua stack (the string
        # argument first); luaL_checkstack fails at LUAI_MAXCSTACK.
        self._slots = 1
        try:
            while self._pos < n and len(values) < limit:
                values.append(self._decode())
                self._slots += 1
        except _Eof:
            raise vm.lib_error(b"Missing bytes in input.") from None
        except _BadFmt:
            raise vm.lib_error(b"Bad data format in input.") from None
        if not decode_all:
            values.insert(0, -1 if self._pos >= n else self._pos)
        if not values:
            return ()
        return tuple(values) if len(values) > 1 else values[0]

    def _need(self, k: int) -> None:
        if len(self._s) - self._pos < k:
            raise _Eof()

    def _check_stack(self, extra: int, what: bytes) -> None:
        if self._slots + extra > _MAXCSTACK:
            raise self.vm.lib_error(b"stack overflow (" + what + b")")

    def _decode(self) -> Any:
        """mp_decode_to_lua_type, with an explicit stack of open containers
        ([table, elements left, next index | None, pending key])."""
        new_table = self.vm.lua.table
        stack: list[list[Any]] = []
        while True:
            self._need(1)
            self._check_stack(1, _TOO_MANY)
            s = self._s
            pos = self._pos
            b = s[pos]
            count = -1
            is_map = False
            if b < 0x80:
                value: Any = b
                self._pos += 1
            elif b >= 0xE0:
                value = b - 256
                self._pos += 1
            elif 0xA0 <= b <= 0xBF:
                ln = b & 0x1F
                self._need(1 + ln)
                value = s[pos + 1:pos + 1 + ln]
                self._pos += 1 + ln
            elif 0x90 <= b <= 0x9F:
                count = b & 0xF
                self._pos += 1
            elif 0x80 <= b <= 0x8F:
                count, is_map = b & 0xF, True
                self._pos += 1
            elif b == 0xC0:
                value = None
                self._pos += 1
            elif b == 0xC2 or b == 0xC3:
                value = b == 0xC3
                self._pos += 1
            elif b in _FIXED_INTS:
                size, signed = _FIXED_INTS[b]
                self._need(1 + size)
                v = int.from_bytes(s[pos + 1:pos + 1 + size], "big", signed=signed)
                if size == 8:
                    # lua_pushinteger of a 64-bit integer: a double
                    if v >= 1 << 63:
                        v -= 1 << 64
                    value = float(v)
                else:
                    value = v
                self._pos += 1 + size
            elif b == 0xCA:
                self._need(5)
                value = float(np.frombuffer(s[pos + 1:pos + 5][::-1], dtype="<f4")[0])
                self._pos += 5
            elif b == 0xCB:
                self._need(9)
                value = _struct.unpack(">d", s[pos + 1:pos + 9])[0]
                self._pos += 9
            elif b in (0xD9, 0xDA, 0xDB):
                hl = 1 if b == 0xD9 else (2 if b == 0xDA else 4)
                self._need(1 + hl)
                ln = int.from_bytes(s[pos + 1:pos + 1 + hl], "big")
                self._need(1 + hl + ln)
                value = s[pos + 1 + hl:pos + 1 + hl + ln]
                self._pos += 1 + hl + ln
            elif b in (0xDC, 0xDD, 0xDE, 0xDF):
                hl = 2 if b in (0xDC, 0xDE) else 4
                self._need(1 + hl)
                count = int.from_bytes(s[pos + 1:pos + 1 + hl], "big")
                is_map = b >= 0xDE
                self._pos += 1 + hl
            else:
                raise _BadFmt()
            if count >= 0:
                t = new_table()
                self._slots += 1
                if not is_map:
                    self._check_stack(1, b"in function mp_decode_to_lua_array")
                if count:
                    stack.append([t, count, None if is_map else 1, _NOKEY])
                    if not is_map:
                        self._slots += 1  # the index, pushed before the element
                    continue
                self._slots -= 1
                value = t
            # a value is complete: store it in the innermost open container
            while True:
                if not stack:
                    return value
                frame = stack[-1]
                t = frame[0]
                if frame[2] is not None:  # array: t[index] = value
                    if value is not None:
                        t[frame[2]] = value
                    frame[2] += 1
                    self._slots -= 1
                elif frame[3] is _NOKEY:  # map: that was the key
                    frame[3] = value
                    self._slots += 1
                    break
                else:
                    key = frame[3]
                    if key is None:
                        raise LuaRaiseProxy(b"table index is nil")
                    if type(key) is float and key != key:
                        raise LuaRaiseProxy(b"table index is NaN")
                    t[key] = value
                    frame[3] = _NOKEY
                    self._slots -= 1
                frame[1] -= 1
                if frame[1]:
                    if frame[2] is not None:
                        self._slots += 1
                    break
                stack.pop()
                self._slots -= 1
                value = t


_MAXCSTACK = 8000
_TOO_MANY = b"too many return values at once; use unpack_one or unpack_limit instead."
_FIXED_INTS = {0xCC: (1, False), 0xCD: (2, False), 0xCE: (4, False), 0xCF: (8, False),
               0xD0: (1, True), 0xD1: (2, True), 0xD2: (4, True), 0xD3: (8, True)}
_NOKEY: Any = object()


class LuaRaiseProxy(Exception):
    """An error raised from C code without a position (luaG_runerror)."""

    def __init__(self, msg: bytes) -> None:
        super().__init__(msg)
        self.msg = msg


# -- registry -------------------------------------------------------------------------------


class Libs:
    """The libraries of one interpreter: name -> Python callable."""

    def __init__(self, vm: LuaVM) -> None:
        self.bit = Bit(vm)
        self.struct = Struct(vm)
        self.cjson = CJson(vm)
        self.msgpack = MsgPack(vm)
        self.vm = vm

    def functions(self) -> dict[bytes, Any]:
        b = self.bit
        fns: dict[bytes, Any] = {
            b"bit_tobit": b.tobit, b"bit_bnot": b.bnot, b"bit_band": b.band, b"bit_bor": b.bor,
            b"bit_bxor": b.bxor, b"bit_lshift": b.lshift, b"bit_rshift": b.rshift, b"bit_arshift": b.arshift,
            b"bit_rol": b.rol, b"bit_ror": b.ror, b"bit_bswap": b.bswap, b"bit_tohex": b.tohex,
            b"struct_pack": self.struct.pack, b"struct_unpack": self.struct.unpack,
            b"struct_size": self.struct.size,
            b"msgpack_pack": self.msgpack.pack, b"msgpack_unpack": self._wrap(self.msgpack.unpack),
            b"msgpack_unpack_one": self._wrap(self.msgpack.unpack_one),
            b"msgpack_unpack_limit": self._wrap(self.msgpack.unpack_limit),
        }
        fns.update(self.cjson.functions(b"cjson_"))
        return fns

    def _wrap(self, fn: Any) -> Any:
        from .scripting import LuaRaise

        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except LuaRaiseProxy as e:
                raise LuaRaise(e.msg) from None

        return call
