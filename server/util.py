"""Ports of Redis 7.0 ``util.c`` helpers (and a few siblings from ``server.c``).

Everything here is a pure function on bytes/ints/floats and mirrors the C
code's observable behaviour byte for byte, including its quirks:

* :func:`string2ll` / :func:`string2l` / :func:`string2ull` -- strict integer
  parsing (``util.c``), the base of every "value is not an integer" check.
* :func:`string2d` -- ``strtod`` with Redis's extra rejections
  (``getDoubleFromObject``): ZADD scores and other double arguments.
* :func:`string2ld` (alias :func:`strtold_redis`), :func:`ld2string_human`,
  :func:`incrbyfloat`, :func:`hincrbyfloat` -- 80-bit ``long double``
  arithmetic as ``INCRBYFLOAT`` / ``HINCRBYFLOAT`` do it, via
  :class:`numpy.longdouble` (x87 extended precision on x86-64 Linux).
* :func:`d2string` and :func:`format_double_reply` -- double to text.
* :func:`stringmatchlen` -- the glob matcher used by KEYS, SCAN MATCH,
  PSUBSCRIBE, CONFIG GET, ACL key patterns...
* :func:`parse_memory` (``memtoull``) and :func:`bytes_to_human`.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from decimal import Decimal

import numpy as np

__all__ = [
    "LLONG_MAX",
    "LLONG_MIN",
    "ULLONG_MAX",
    "MAX_LONG_DOUBLE_CHARS",
    "FloatValueError",
    "string2ll",
    "string2l",
    "string2ull",
    "string2d",
    "string2ld",
    "strtold_redis",
    "ld2string_human",
    "incrbyfloat",
    "hincrbyfloat",
    "double2ll",
    "d2string",
    "format_double_reply",
    "stringmatchlen",
    "stringmatchlen_port",
    "compile_pattern",
    "is_match_all",
    "parse_memory",
    "bytes_to_human",
]

LLONG_MAX = (1 << 63) - 1
LLONG_MIN = -(1 << 63)
ULLONG_MAX = (1 << 64) - 1
#: ``MAX_LONG_DOUBLE_CHARS`` (5k): longer float strings are rejected.
MAX_LONG_DOUBLE_CHARS = 5 * 1024

_C_SPACE = frozenset(b" \t\n\v\f\r")  # C isspace() in the "C" locale

# --------------------------------------------------------------------------
# Integers
# --------------------------------------------------------------------------


def cstr(s: bytes, limit: int = 128) -> bytes:
    """printf's ``%.<limit>s`` of an argument: at most ``limit`` bytes and
    nothing from the first NUL on, as Redis's error texts quote arguments
    (``unknown subcommand '%.128s'``)."""
    i = s.find(b"\x00", 0, limit)
    return s[:limit] if i < 0 else s[:i]


def string2ll(s: bytes) -> int | None:
    """``string2ll``: the whole of ``s`` must be a canonical int64.

    No spaces, no ``+``, no leading zeros (``"0"`` itself is fine, ``"-0"``
    and ``"00"`` are not), no empty string, range ``[-2^63, 2^63-1]``.
    Returns ``None`` when Redis would reject the string."""
    if s.isdigit():  # non-empty and ASCII digits only (bytes.isdigit)
        n = len(s)
        if n < 19:
            if s[0] == 48 and n > 1:
                return None
            return int(s)
        if n > 19 or s[0] == 48:
            return None
        v = int(s)
        return v if v <= LLONG_MAX else None
    if s[:1] == b"-":
        d = s[1:]
        n = len(d)
        if n == 0 or n > 19 or d[0] == 48 or not d.isdigit():
            return None
        v = -int(d)
        return v if v >= LLONG_MIN else None
    return None


def string2l(s: bytes) -> int | None:
    """``string2l``: ``long`` is 64-bit on LP64, so identical to :func:`string2ll`."""
    return string2ll(s)


def string2ull(s: bytes) -> int | None:
    """``string2ull`` (stream IDs): ``string2ll`` first (negative -> reject),
    else C ``strtoull(s, &end, 10)`` on the NUL-terminated string.

    So it inherits strtoull's leniency: leading whitespace, ``+``, leading
    zeros, and ``-N`` meaning ``2^64 - N`` (``"-0"`` -> 0); overflow rejects."""
    nul = s.find(b"\0")
    if nul >= 0:
        s = s[:nul]  # the C code works on a C string
    v = string2ll(s)
    if v is not None:
        return v if v >= 0 else None
    n = len(s)
    if n == 0:
        return None
    i = 0
    while i < n and s[i] in _C_SPACE:
        i += 1
    neg = False
    if i < n and s[i] in b"+-":
        neg = s[i] == 45
        i += 1
    digits = s[i:]
    if not digits or not digits.isdigit():
        return None  # no digits (end == s) or trailing garbage
    v = int(digits)
    if v > ULLONG_MAX:
        return None  # ERANGE
    return (-v) & ULLONG_MAX if neg else v


# --------------------------------------------------------------------------
# Doubles (strtod) -- string2d
# --------------------------------------------------------------------------

_DEC_CHARS_DEL = b"0123456789+-.eE"
_HEX_RE = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?")
_INF_WORDS = frozenset((b"inf", b"infinity"))


def _mantissa_nonzero(s: bytes, hexa: bool) -> bool:
    """True if the significand of a (validated) numeric literal has a non-zero digit."""
    if hexa:
        body = s.lstrip(b"+-")[2:]
        cut = body.find(b"p")
        if cut < 0:
            cut = body.find(b"P")
    else:
        body = s
        cut = body.find(b"e")
        if cut < 0:
            cut = body.find(b"E")
    if cut >= 0:
        body = body[:cut]
    return bool(body.translate(None, b"0+-.xX"))


def _inf_literal(s: bytes) -> int:
    """+1/-1 if ``s`` is a strtod infinity spelling (``[+-]inf`` / ``infinity``), else 0."""
    if len(s) > 9:
        return 0
    sign = 1
    if s[:1] == b"+":
        s = s[1:]
    elif s[:1] == b"-":
        sign = -1
        s = s[1:]
    return sign if s.lower() in _INF_WORDS else 0


def string2d(s: bytes) -> float | None:
    """``string2d`` / ``getDoubleFromObject``: glibc ``strtod`` over the whole
    string, rejecting empty input, a leading space, trailing garbage (also an
    embedded NUL), overflow to +-HUGE_VAL, underflow to zero and NaN.

    Accepts what strtod accepts: ``+1``, ``.5``, ``5.``, ``1E5``, hex floats
    (``0x1p-3``), ``inf``/``infinity`` in any case with optional sign."""
    if not s:
        return None
    if not s.translate(None, _DEC_CHARS_DEL):
        # Plain decimal alphabet: Python's float() grammar agrees with strtod's
        # here (and both round correctly); only the range checks remain.
        try:
            v = float(s)
        except ValueError:
            return None
        if v == 0.0:
            if s.translate(None, b"0+-.") and _mantissa_nonzero(s, False):
                return None  # underflow: ERANGE with a zero result
        elif v in (math.inf, -math.inf):
            return None  # overflow: ERANGE with HUGE_VAL
        return v
    sign = _inf_literal(s)
    if sign:
        return math.inf if sign > 0 else -math.inf
    if _HEX_RE.fullmatch(s) is None:
        return None  # leading space, nan, junk...
    try:
        v = float.fromhex(s.decode("ascii"))
    except OverflowError:
        return None
    if v == 0.0 and _mantissa_nonzero(s, True):
        return None
    return v


# --------------------------------------------------------------------------
# Long doubles -- INCRBYFLOAT / HINCRBYFLOAT
# --------------------------------------------------------------------------

_LD_INF = np.longdouble("inf")
_LD_NINF = -_LD_INF


class FloatValueError(ValueError):
    """Raised by :func:`incrbyfloat` / :func:`hincrbyfloat`; ``msg`` is the
    complete Redis error text (``"ERR ..."``)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


def _parse_ld(text: str, suspicious: bool) -> np.longdouble:
    # numpy parses long doubles with the C library's strtold, the same
    # routine Redis uses; it only warns (RuntimeWarning) on ERANGE.
    if not suspicious:
        return np.longdouble(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.longdouble(text)


def string2ld(s: bytes) -> np.longdouble | None:
    """``string2ld`` (``getLongDoubleFromObject``): ``strtold`` over the whole
    string; rejects empty input, ``len >= MAX_LONG_DOUBLE_CHARS``, a leading
    space, trailing garbage, ERANGE overflow/underflow-to-zero and NaN.

    Infinity spellings are accepted (INCRBYFLOAT then reports "increment would
    produce NaN or Infinity")."""
    n = len(s)
    if n == 0 or n >= MAX_LONG_DOUBLE_CHARS:
        return None
    if not s.translate(None, _DEC_CHARS_DEL):
        hexa = False
        # Range problems need an exponent or thousands of digits.
        suspicious = n > 4000 or b"e" in s or b"E" in s
    else:
        sign = _inf_literal(s)
        if sign:
            return _LD_INF if sign > 0 else _LD_NINF
        if _HEX_RE.fullmatch(s) is None:
            return None
        hexa = True
        suspicious = True
    try:
        v = _parse_ld(s.decode("ascii"), suspicious)
    except ValueError:
        return None
    if v == 0:
        if _mantissa_nonzero(s, hexa):
            return None
    elif not np.isfinite(v):
        return None  # overflow (HUGE_VAL); nan cannot come from this alphabet
    return v


strtold_redis = string2ld


def ld2string_human(x: np.longdouble) -> bytes:
    """``ld2string(..., LD_STR_HUMAN)``: ``"%.17Lf"`` (exact, round half to
    even), then trailing zeros and a trailing dot are removed, and ``-0``
    becomes ``0``. Infinities print as ``inf``/``-inf``."""
    if not np.isfinite(x):
        if np.isnan(x):
            return b"-nan" if np.signbit(x) else b"nan"
        return b"inf" if x > 0 else b"-inf"
    num, den = x.as_integer_ratio()
    neg = num < 0
    if neg:
        num = -num
    # round(num * 10^17 / den) with ties to even, all in integers.
    q, r = divmod(num * 100000000000000000, den)
    r2 = r * 2
    if r2 > den or (r2 == den and q & 1):
        q += 1
    if q == 0:
        return b"0"  # "0.000..." or "-0.000..." both end up as "0"
    digits = str(q) if q.bit_length() < 13000 else str(Decimal(q))  # dodge int->str limit
    if len(digits) <= 17:
        digits = digits.rjust(18, "0")
    ip, fp = digits[:-17], digits[-17:].rstrip("0")
    out = ip + "." + fp if fp else ip
    return ("-" + out if neg else out).encode("ascii")


_LD_BIG = np.longdouble("1e4900")
_LD_ZERO = np.longdouble(0)


def _ld_add(a: np.longdouble, b: np.longdouble) -> np.longdouble:
    """``a + b`` in long double; overflow quietly gives inf (as in C)."""
    if -_LD_BIG < a < _LD_BIG and -_LD_BIG < b < _LD_BIG:
        return a + b
    with np.errstate(all="ignore"):
        return a + b


_NOT_FLOAT = "ERR value is not a valid float"
_NAN_INF = "ERR increment would produce NaN or Infinity"


def incrbyfloat(current: bytes | None, incr: bytes) -> bytes:
    """``INCRBYFLOAT``: current value (missing -> 0) plus ``incr`` in long
    double, formatted by :func:`ld2string_human`. Raises
    :class:`FloatValueError` with Redis's error text."""
    value = _LD_ZERO if current is None else string2ld(current)
    if value is None:
        raise FloatValueError(_NOT_FLOAT)
    inc = string2ld(incr)
    if inc is None:
        raise FloatValueError(_NOT_FLOAT)
    value = _ld_add(value, inc)
    if not np.isfinite(value):
        raise FloatValueError(_NAN_INF)
    return ld2string_human(value)


def hincrbyfloat(current: bytes | None, incr: bytes) -> bytes:
    """``HINCRBYFLOAT``: like :func:`incrbyfloat` but the increment is checked
    first, and a bad stored value gives "ERR hash value is not a float"."""
    inc = string2ld(incr)
    if inc is None:
        raise FloatValueError(_NOT_FLOAT)
    value = _LD_ZERO if current is None else string2ld(current)
    if value is None:
        raise FloatValueError("ERR hash value is not a float")
    value = _ld_add(value, inc)
    if not np.isfinite(value):
        raise FloatValueError(_NAN_INF)
    return ld2string_human(value)


# --------------------------------------------------------------------------
# Double -> text
# --------------------------------------------------------------------------

_TWO62 = 4611686018427387904.0  # (double)(LLONG_MAX/2)


def double2ll(d: float) -> int | None:
    """``double2ll``: the integer value of ``d`` if it is integral and within
    ``[-2^62, 2^62]``, else ``None`` (``-0.0`` gives ``0``)."""
    if -_TWO62 <= d <= _TWO62:
        i = int(d)
        if i == d:
            return i
    return None


def d2string(d: float) -> bytes:
    """Redis 7.0 ``d2string``: ``nan``, ``inf``/``-inf``, ``0``/``-0``,
    integral values in ``[-2^62, 2^62]`` as integers (``1e17`` ->
    ``100000000000000000``), otherwise ``"%.17g"``."""
    if d != d:
        return b"nan"
    if d == 0.0:
        return b"-0" if math.copysign(1.0, d) < 0 else b"0"
    if -_TWO62 <= d <= _TWO62:
        i = int(d)
        if i == d:
            return b"%d" % i
        return b"%.17g" % d
    if d == math.inf:
        return b"inf"
    if d == -math.inf:
        return b"-inf"
    return b"%.17g" % d


def format_double_reply(d: float) -> bytes:
    """``addReplyDouble`` text in 7.0: ``"%.17g"`` (``inf``/``-inf``/``-0``
    spelled like C). Same output as ``reply.format_double``."""
    if d != d:
        return b"nan"
    if d in (math.inf, -math.inf):
        return b"inf" if d > 0 else b"-inf"
    return b"%.17g" % d


# --------------------------------------------------------------------------
# Glob matching -- stringmatchlen
# --------------------------------------------------------------------------


def _signed(c: int) -> int:
    return c - 256 if c >= 128 else c


def _tolower(c: int) -> int:
    return c + 32 if 65 <= c <= 90 else c


def stringmatchlen_port(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """Line-by-line port of 7.0 ``stringmatchlen_impl`` (with the
    ``skipLongerMatches`` short-cut). Slow; the reference for
    :func:`stringmatchlen`. Reads past the end see the C string's NUL."""
    skip = [False]
    plen_total = len(pattern)
    slen_total = len(string)

    def pat(i: int) -> int:
        return pattern[i] if i < plen_total else 0

    def impl(p: int, s: int) -> bool:
        plen = plen_total - p
        slen = slen_total - s
        while plen and slen:
            c = pattern[p]
            if c == 42:  # '*'
                while plen and pat(p + 1) == 42:
                    p += 1
                    plen -= 1
                if plen == 1:
                    return True
                while slen:
                    if impl(p + 1, s):
                        return True
                    if skip[0]:
                        return False
                    s += 1
                    slen -= 1
                skip[0] = True
                return False
            elif c == 63:  # '?'
                s += 1
                slen -= 1
            elif c == 91:  # '['
                p += 1
                plen -= 1
                neg = pat(p) == 94  # '^'
                if neg:
                    p += 1
                    plen -= 1
                match = False
                sc = string[s]
                while True:
                    pc = pat(p)
                    if pc == 92 and plen >= 2:  # '\\'
                        p += 1
                        plen -= 1
                        if pattern[p] == sc:
                            match = True
                    elif pc == 93:  # ']'
                        break
                    elif plen == 0:
                        p -= 1
                        plen += 1
                        break
                    elif plen >= 3 and pattern[p + 1] == 45:  # '-'
                        start = _signed(pc)
                        end = _signed(pattern[p + 2])
                        ch = _signed(sc)
                        if start > end:
                            start, end = end, start
                        if nocase:
                            start = _tolower(start)
                            end = _tolower(end)
                            ch = _tolower(ch)
                        p += 2
                        plen -= 2
                        if start <= ch <= end:
                            match = True
                    elif not nocase:
                        if pc == sc:
                            match = True
                    elif _tolower(pc) == _tolower(sc):
                        match = True
                    p += 1
                    plen -= 1
                if neg:
                    match = not match
                if not match:
                    return False
                s += 1
                slen -= 1
            else:
                if c == 92 and plen >= 2:  # '\\' escapes the next byte
                    p += 1
                    plen -= 1
                    c = pattern[p]
                if not nocase:
                    if c != string[s]:
                        return False
                elif _tolower(c) != _tolower(string[s]):
                    return False
                s += 1
                slen -= 1
            p += 1
            plen -= 1
            if slen == 0:
                while pat(p) == 42:
                    p += 1
                    plen -= 1
                break
        return plen == 0 and slen == 0

    return impl(0, 0)


def _class_bytes(pattern: bytes, i: int, nocase: bool) -> tuple[bytes, int]:
    """Simulate the ``[...]`` branch starting at ``pattern[i] == '['``.

    Returns the set of subject bytes the class accepts and the index of its
    last pattern byte (the main loop's ``pattern++`` then steps past it).
    Consumption in C depends on the pattern only, so this is exact."""
    n = len(pattern)

    def pat(k: int) -> int:
        return pattern[k] if k < n else 0

    i += 1
    neg = pat(i) == 94
    if neg:
        i += 1
    items: list[tuple[int, int, int]] = []  # (kind, a, b): 0 esc, 1 range, 2 literal
    while True:
        pc = pat(i)
        plen = n - i
        if pc == 92 and plen >= 2:
            i += 1
            items.append((0, pattern[i], 0))
        elif pc == 93:
            break
        elif plen == 0:
            i -= 1
            break
        elif plen >= 3 and pattern[i + 1] == 45:
            items.append((1, pc, pattern[i + 2]))
            i += 2
        else:
            items.append((2, pc, 0))
        i += 1
    accepted = bytearray()
    for sc in range(256):
        match = False
        for kind, a, b in items:
            if kind == 0:
                if a == sc:
                    match = True
            elif kind == 1:
                start, end, ch = _signed(a), _signed(b), _signed(sc)
                if start > end:
                    start, end = end, start
                if nocase:
                    start, end, ch = _tolower(start), _tolower(end), _tolower(ch)
                if start <= ch <= end:
                    match = True
            elif (a == sc) if not nocase else (_tolower(a) == _tolower(sc)):
                match = True
        if match != neg:
            accepted.append(sc)
    return bytes(accepted), i


def _set_regex(accepted: bytes) -> bytes:
    if not accepted:
        return rb"(?!)"
    if len(accepted) == 256:
        return b"."
    parts = []
    j = 0
    n = len(accepted)
    while j < n:
        k = j
        while k + 1 < n and accepted[k + 1] == accepted[k] + 1:
            k += 1
        if k == j:
            parts.append(b"\\x%02x" % accepted[j])
        else:
            parts.append(b"\\x%02x-\\x%02x" % (accepted[j], accepted[k]))
        j = k + 1
    return b"[" + b"".join(parts) + b"]"


def _literal_regex(c: int, nocase: bool) -> bytes:
    if nocase and (65 <= c <= 90 or 97 <= c <= 122):
        return b"[\\x%02x\\x%02x]" % (c & ~32, c | 32)
    return b"\\x%02x" % c


def _tokenize(pattern: bytes, nocase: bool) -> list[bytes | None]:
    """Pattern -> list of single-byte regex atoms, ``None`` for a ``*`` run."""
    toks: list[bytes | None] = []
    n = len(pattern)
    i = 0
    while i < n:
        c = pattern[i]
        if c == 42:
            while i + 1 < n and pattern[i + 1] == 42:
                i += 1
            toks.append(None)
        elif c == 63:
            toks.append(b".")
        elif c == 91:
            accepted, i = _class_bytes(pattern, i, nocase)
            toks.append(_set_regex(accepted))
        else:
            if c == 92 and n - i >= 2:
                i += 1
                c = pattern[i]
            toks.append(_literal_regex(c, nocase))
        i += 1
    return toks


_SPECIAL_DEL = b"*?[\\"


def _build_matcher(pattern: bytes, nocase: bool) -> Callable[[bytes], bool]:
    if pattern == b"*":
        return bool  # any non-empty subject
    if not pattern:
        return lambda s: not s
    if len(pattern.translate(None, _SPECIAL_DEL)) == len(pattern):
        if not nocase:
            return lambda s: s == pattern
        low = pattern.lower()
        return lambda s: s.lower() == low
    # Literal text around stars: "pre*", "*suf", "*mid*" (ASCII case folding).
    inner = pattern.strip(b"*")
    if inner and len(inner.translate(None, _SPECIAL_DEL)) == len(inner):
        lead = pattern[0] == 42
        trail = pattern[-1] == 42 and not pattern.endswith(b"\\*")
        if lead or trail:
            if nocase:
                inner = inner.lower()
            if lead and trail:
                if nocase:
                    return lambda s: inner in s.lower()
                return lambda s: inner in s
            if trail:
                if nocase:
                    return lambda s: s.lower().startswith(inner)
                return lambda s: s.startswith(inner)
            if nocase:
                return lambda s: s.lower().endswith(inner)
            return lambda s: s.endswith(inner)
    # General case: fixed-width segments separated by stars. The first one is
    # anchored at the start, the last at the end, and each middle segment is
    # matched at its leftmost occurrence inside an atomic group (greedy
    # leftmost placement is exact for fixed-width segments, and the atomic
    # groups keep Python's regex engine from backtracking exponentially).
    toks = _tokenize(pattern, nocase)
    segs: list[list[bytes]] = [[]]
    for t in toks:
        if t is None:
            segs.append([])
        else:
            segs[-1].append(t)
    if len(segs) == 1:
        rx = b"".join(segs[0])
    else:
        rx = b"".join(segs[0])
        for mid in segs[1:-1]:
            rx += b"(?>.*?" + b"".join(mid) + b")"
        rx += b".*" + b"".join(segs[-1])
    fm = re.compile(rx, re.DOTALL).fullmatch

    def match(s: bytes) -> bool:
        # C: an empty subject only matches an empty pattern (even "*" fails).
        return bool(s) and fm(s) is not None

    return match


_MATCHER_CACHE: tuple[dict[bytes, Callable[[bytes], bool]], dict[bytes, Callable[[bytes], bool]]] = ({}, {})
_MATCHER_CACHE_MAX = 4096


def compile_pattern(pattern: bytes, nocase: bool = False) -> Callable[[bytes], bool]:
    """A cached predicate ``f(subject) -> bool`` equal to
    ``stringmatchlen(pattern, subject, nocase)``; use it when matching one
    pattern against many subjects (KEYS, SCAN, PUBLISH fan-out)."""
    cache = _MATCHER_CACHE[1 if nocase else 0]
    try:
        return cache[pattern]
    except KeyError:
        pass
    except TypeError:  # bytearray / memoryview
        pattern = bytes(pattern)
        f = cache.get(pattern)
        if f is not None:
            return f
    if len(cache) >= _MATCHER_CACHE_MAX:
        cache.clear()
    f = cache[pattern] = _build_matcher(pattern, bool(nocase))
    return f


def stringmatchlen(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """Redis 7.0 ``stringmatchlen`` glob match of the whole ``string``.

    ``*`` any run, ``?`` one byte, ``[abc]``/``[^a]``/``[a-z]`` classes
    (ranges compare *signed* chars, reversed ranges are swapped), ``\\x``
    escapes; unterminated classes end at the pattern end; ``nocase`` folds
    ASCII only. Quirk kept from C: an empty ``string`` only matches an empty
    pattern -- ``stringmatchlen(b"*", b"")`` is False. Redis callers that
    must treat ``*`` as "everything" (KEYS, SCAN) test for it first; see
    :func:`is_match_all`."""
    if pattern == b"*":
        return len(string) > 0
    return compile_pattern(pattern, nocase)(string)


def is_match_all(pattern: bytes) -> bool:
    """True for the pattern ``*``, which KEYS and SCAN MATCH short-circuit
    (matching every key, even the empty one) instead of calling the matcher."""
    return pattern == b"*"


# --------------------------------------------------------------------------
# Memory sizes
# --------------------------------------------------------------------------

_MEM_UNITS = {
    b"": 1,
    b"b": 1,
    b"k": 1000,
    b"kb": 1024,
    b"m": 1000 * 1000,
    b"mb": 1024 * 1024,
    b"g": 1000 * 1000 * 1000,
    b"gb": 1024 * 1024 * 1024,
}


def parse_memory(s: bytes | str) -> int | None:
    """``memtoull``: ``<digits><unit>`` with unit ``b``, ``k`` (1000), ``kb``
    (1024), ``m``, ``mb``, ``g``, ``gb`` (case-insensitive) or none.

    ``None`` on error (a sign, spaces, decimals, unknown units). Quirks kept:
    no digits means 0 (``""``, ``"gb"``), overflowing digits saturate at
    2^64-1 and the multiplication wraps modulo 2^64."""
    if isinstance(s, str):
        s = s.encode("utf-8", "surrogateescape")
    nul = s.find(b"\0")
    if nul >= 0:
        s = s[:nul]
    if s[:1] == b"-":
        return None
    n = len(s)
    i = 0
    while i < n and 48 <= s[i] <= 57:
        i += 1
    mul = _MEM_UNITS.get(s[i:].lower())
    if mul is None or i >= 128:
        return None
    val = int(s[:i]) if i else 0
    if val > ULLONG_MAX:
        val = ULLONG_MAX  # strtoull's ERANGE is not checked
    return (val * mul) & ULLONG_MAX


_HUMAN_UNITS = (("K", 1024), ("M", 1024**2), ("G", 1024**3), ("T", 1024**4), ("P", 1024**5))


def bytes_to_human(n: int) -> str:
    """``bytesToHuman`` (INFO ``*_human`` fields): ``"1023B"``, ``"1.00K"``,
    ``"862.88K"``, ``"1.25M"``, ... ``"P"``; from 1024^6 on plain ``"<n>B"``."""
    n &= ULLONG_MAX  # unsigned long long argument
    if n < 1024:
        return f"{n}B"
    for unit, scale in _HUMAN_UNITS:
        if n < scale * 1024:
            return f"{float(n) / scale:.2f}{unit}"
    return f"{n}B"
