"""Tests for ambry.server.util: unit cases taken from Redis 7.0 behaviour, property
tests of the fast glob matcher against the line-by-line port, and differential
tests against a real redis-server (marked ``interop``)."""

from __future__ import annotations

import math
import random
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from ambry.server import util
from ambry.server.util import (
    FloatValueError,
    bytes_to_human,
    compile_pattern,
    d2string,
    double2ll,
    format_double_reply,
    hincrbyfloat,
    incrbyfloat,
    is_match_all,
    ld2string_human,
    parse_memory,
    string2d,
    string2l,
    string2ld,
    string2ll,
    string2ull,
    stringmatchlen,
    stringmatchlen_port,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# ---------------------------------------------------------------------------
# Integers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "s,expected",
    [
        (b"0", 0),
        (b"1", 1),
        (b"99", 99),
        (b"-1", -1),
        (b"-99", -99),
        (b"-9223372036854775808", -(2**63)),
        (b"9223372036854775807", 2**63 - 1),
        (b"-9223372036854775809", None),
        (b"9223372036854775808", None),
        (b"18446744073709551616", None),
        (b"+1", None),
        (b" 1", None),
        (b"1 ", None),
        (b"01", None),
        (b"00", None),
        (b"-0", None),
        (b"-01", None),
        (b"-", None),
        (b"", None),
        (b"1.0", None),
        (b"1e3", None),
        (b"0x10", None),
        (b"1\x00", None),
        ("١".encode(), None),
        (b"12345678901234567890123", None),
    ],
)
def test_string2ll(s: bytes, expected: int | None) -> None:
    assert string2ll(s) == expected
    assert string2l(s) == expected


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_string2ll_roundtrip(n: int) -> None:
    assert string2ll(b"%d" % n) == n


@pytest.mark.parametrize(
    "s,expected",
    [
        (b"12", 12),
        (b"0", 0),
        (b"18446744073709551615", 2**64 - 1),
        (b"18446744073709551616", None),
        (b" 12", 12),
        (b"\t12", 12),
        (b"+12", 12),
        (b"00012", 12),
        (b"-1", None),  # string2ll succeeds with a negative -> rejected
        (b"-0", 0),  # strtoull
        (b"-18446744073709551615", 1),
        (b"-18446744073709551614", 2),
        (b"-18446744073709551616", None),
        (b"-9223372036854775809", 2**63 - 1),
        (b"- 1", None),
        (b"", None),
        (b"1 ", None),
        (b"0x10", None),
        (b"12\x00junk", 12),  # C string
        (b"-", None),
        (b"+", None),
    ],
)
def test_string2ull(s: bytes, expected: int | None) -> None:
    assert string2ull(s) == expected


# ---------------------------------------------------------------------------
# Doubles
# ---------------------------------------------------------------------------

# (input, expected) as observed on redis-server 7.0.15 through ZADD/ZSCORE.
STRING2D_CASES: list[tuple[bytes, float | None]] = [
    (b"inf", math.inf),
    (b"+inf", math.inf),
    (b"-inf", -math.inf),
    (b"infinity", math.inf),
    (b"INF", math.inf),
    (b"-Infinity", -math.inf),
    (b"infin", None),
    (b"nan", None),
    (b"-nan", None),
    (b"nan(1)", None),
    (b" 1", None),
    (b"\t1", None),
    (b"1 ", None),
    (b"0x10", 16.0),
    (b"0X1P-2", 0.25),
    (b"0x1.8p1", 3.0),
    (b"0x.8", 0.5),
    (b"0x1e3", 483.0),
    (b"0x", None),
    (b"0x1p", None),
    (b"0x1p-1075", None),
    (b"0x1p-1074", 5e-324),
    (b"0x1p1024", None),
    (b"0x0p-5000", 0.0),
    (b"1e400", None),
    (b"1e-400", None),
    (b"1e-310", 1e-310),
    (b"2e-324", None),
    (b"3e-324", 5e-324),
    (b"0e-999", 0.0),
    (b"+5", 5.0),
    (b"1_0", None),
    (b"5.", 5.0),
    (b".5", 0.5),
    (b"", None),
    (b".", None),
    (b"e5", None),
    (b"1e", None),
    (b"1e+", None),
    (b"1\x00", None),
    (b"-0", -0.0),
    (b"1.7976931348623157e308", 1.7976931348623157e308),
    (b"1.7976931348623159e308", None),
    (b"1.797693134862315807e308", 1.7976931348623157e308),
    (b"00012", 12.0),
    (b"1E5", 100000.0),
    (b"\xa01", None),
    ("١".encode(), None),
]


@pytest.mark.parametrize("s,expected", STRING2D_CASES)
def test_string2d(s: bytes, expected: float | None) -> None:
    got = string2d(s)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert struct.pack("<d", got) == struct.pack("<d", expected)


@given(st.floats(allow_nan=False))
def test_string2d_roundtrip(d: float) -> None:
    assert string2d(b"%.17g" % d) == d
    assert string2d(repr(d).encode()) == d


@pytest.mark.parametrize(
    "d,text",
    [
        (0.0, b"0"),
        (-0.0, b"-0"),
        (math.inf, b"inf"),
        (-math.inf, b"-inf"),
        (math.nan, b"nan"),
        (1.0, b"1"),
        (-3.0, b"-3"),
        (1.5, b"1.5"),
        (0.1, b"0.10000000000000001"),
        (1e17, b"100000000000000000"),
        (2.0**62, b"4611686018427387904"),
        (-(2.0**62), b"-4611686018427387904"),
        (2.0**63, b"9.2233720368547758e+18"),
        (1e20, b"1e+20"),
        (123456789.25, b"123456789.25"),
    ],
)
def test_d2string(d: float, text: bytes) -> None:
    assert d2string(d) == text


def test_double2ll() -> None:
    assert double2ll(-0.0) == 0
    assert double2ll(2.0**62) == 2**62
    assert double2ll(2.0**62 + 2048) is None
    assert double2ll(0.5) is None
    assert double2ll(math.inf) is None


@given(st.floats())
def test_format_double_reply(d: float) -> None:
    from ambry.server.reply import format_double

    assert format_double_reply(d) == format_double(d)
    if not math.isnan(d):
        assert float(format_double_reply(d)) == d
        if double2ll(d) is None or d == 0:
            assert d2string(d) == format_double_reply(d)


# ---------------------------------------------------------------------------
# Long doubles / INCRBYFLOAT
# ---------------------------------------------------------------------------

# (current, increment, reply or error) as observed on redis-server 7.0.15.
INCRBYFLOAT_CASES: list[tuple[bytes | None, bytes, bytes | str]] = [
    (None, b"0.1", b"0.1"),
    (b"0.1", b"0.2", b"0.3"),
    (None, b"5.0e3", b"5000"),
    (None, b"1e40", b"9999999999999999999783686092270256259072"),
    (None, b"0.000003814697265625", b"0.00000381469726562"),  # tie -> even
    (None, b"123456789012345678901234567890", b"123456789012345678899921813504"),
    (None, b"-0.0", b"0"),
    (None, b"1.5e-17", b"0.00000000000000002"),
    (None, b"5e-18", b"0"),
    (None, b"5.1e-18", b"0.00000000000000001"),
    (None, b"-5e-18", b"0"),
    (None, b"-5.1e-18", b"-0.00000000000000001"),
    (None, b"3.0e-20", b"0"),
    (None, b"1.0000000000000000000001", b"1"),
    (None, b"0x10", b"16"),
    (None, b"0x1p-3", b"0.125"),
    (None, b"+5", b"5"),
    (None, b".5", b"0.5"),
    (None, b"5.", b"5"),
    (None, b"1e-4950", b"0"),
    (b"10", b"-10", b"0"),
    (b"7", b"1", b"8"),
    (None, b"  1", "ERR value is not a valid float"),
    (None, b"1 ", "ERR value is not a valid float"),
    (None, b"abc", "ERR value is not a valid float"),
    (None, b"", "ERR value is not a valid float"),
    (None, b"nan", "ERR value is not a valid float"),
    (None, b"1_0", "ERR value is not a valid float"),
    (None, b"1e5000", "ERR value is not a valid float"),
    (None, b"1e-5000", "ERR value is not a valid float"),
    (b"1e5000", b"1", "ERR value is not a valid float"),
    (b"abc", b"1", "ERR value is not a valid float"),
    (None, b"inf", "ERR increment would produce NaN or Infinity"),
    (None, b"infinity", "ERR increment would produce NaN or Infinity"),
    (b"1e4932", b"1e4932", "ERR increment would produce NaN or Infinity"),
]


def _ibf(current: bytes | None, incr: bytes) -> bytes | str:
    try:
        return incrbyfloat(current, incr)
    except FloatValueError as e:
        return e.msg


@pytest.mark.parametrize("current,incr,expected", INCRBYFLOAT_CASES)
def test_incrbyfloat(current: bytes | None, incr: bytes, expected: bytes | str) -> None:
    assert _ibf(current, incr) == expected


def test_incrbyfloat_big_values() -> None:
    # 1e308 + 1e308 fits a long double: Redis prints all 309 digits.
    out = incrbyfloat(b"1e308", b"1e308")
    assert len(out) == 309 and out.startswith(b"199999999999999999993371759311")
    out = incrbyfloat(b"1.1e4932", b"0")  # beyond Python's int->str digit limit
    assert len(out) == 4933 and out.startswith(b"109999999999999999997437310752")
    # The long double limit is 5k characters of input.
    assert string2ld(b"1" + b"0" * 5118) is None
    assert string2ld(b"0." + b"0" * 5000 + b"1") is None  # underflow to zero
    assert string2ld(b"0." + b"0" * 5116 + b"1") is None  # too long


def test_hincrbyfloat_errors() -> None:
    assert hincrbyfloat(None, b"1.5") == b"1.5"
    with pytest.raises(FloatValueError) as ei:
        hincrbyfloat(b"abc", b"1")
    assert ei.value.msg == "ERR hash value is not a float"
    with pytest.raises(FloatValueError) as ei:
        hincrbyfloat(b"abc", b"x")  # the increment is checked first
    assert ei.value.msg == "ERR value is not a valid float"


def test_ld2string_human() -> None:
    ld = np.longdouble
    assert ld2string_human(ld(0)) == b"0"
    assert ld2string_human(-ld(0)) == b"0"
    assert ld2string_human(ld(100)) == b"100"
    assert ld2string_human(ld(-2.5)) == b"-2.5"
    assert ld2string_human(ld("inf")) == b"inf"
    assert ld2string_human(-ld("inf")) == b"-inf"


def test_string2ld_is_extended_precision() -> None:
    v = string2ld(b"0.1")
    assert v is not None and v.as_integer_ratio() == (14757395258967641293, 147573952589676412928)
    assert util.strtold_redis is string2ld


# ---------------------------------------------------------------------------
# Glob matching
# ---------------------------------------------------------------------------

GLOB_CASES: list[tuple[bytes, bytes, bool, bool]] = [
    # pattern, string, nocase, expected
    (b"*", b"", False, False),  # C quirk: empty subject matches only ""
    (b"**", b"", False, False),
    (b"", b"", False, True),
    (b"", b"a", False, False),
    (b"*", b"anything", False, True),
    (b"h?llo", b"hello", False, True),
    (b"h?llo", b"hllo", False, False),
    (b"h*llo", b"heeeello", False, True),
    (b"h*llo", b"hllo", False, True),
    (b"h[ae]llo", b"hallo", False, True),
    (b"h[ae]llo", b"hillo", False, False),
    (b"h[^e]llo", b"hallo", False, True),
    (b"h[^e]llo", b"hello", False, False),
    (b"h[a-b]llo", b"hbllo", False, True),
    (b"h[b-a]llo", b"hallo", False, True),  # reversed range is swapped
    (b"h\\*llo", b"h*llo", False, True),
    (b"h\\*llo", b"hello", False, False),
    (b"a\\", b"a\\", False, True),  # trailing backslash is literal
    (b"[", b"a", False, False),  # unterminated empty class
    (b"[^", b"a", False, True),
    (b"[]", b"]", False, False),
    (b"[^]", b"x", False, True),
    (b"[a-]x", b"bx", False, False),
    (b"[a-]x]", b"]", False, True),  # '-' range eats ']', class continues
    (b"[\\]]", b"]", False, True),
    (b"[\\", b"\\", False, True),
    (b"a*", b"a", False, True),
    (b"a*b", b"a", False, False),
    (b"*a*b*c", b"xxaxxbxxc", False, True),
    (b"*a*b*c", b"xxaxxcxxb", False, False),
    (b"HELLO", b"hello", True, True),
    (b"h[A-Z]llo", b"hello", True, True),
    (b"[Z-a]", b"q", True, False),  # nocase lowers range ends: z..a is empty
    (b"[Z-a]", b"_", False, True),
    (b"[a-\xff]", b"\xff", False, True),  # signed chars: -1..97
    (b"[a-\xff]", b"b", False, False),
    (b"[a-\xff]", b"\x00", False, True),
    (b"user:*", b"user:1", False, True),
    (b"USER:*", b"user:1", True, True),
    (b"*:1", b"user:1", False, True),
    (b"*er:*", b"user:1", False, True),
]


@pytest.mark.parametrize("pattern,string,nocase,expected", GLOB_CASES)
def test_stringmatchlen_cases(pattern: bytes, string: bytes, nocase: bool, expected: bool) -> None:
    assert stringmatchlen_port(pattern, string, nocase) is expected
    assert stringmatchlen(pattern, string, nocase) is expected
    assert compile_pattern(pattern, nocase)(string) is expected


def test_is_match_all() -> None:
    assert is_match_all(b"*") and not is_match_all(b"**")


def test_stringmatchlen_no_catastrophic_backtracking() -> None:
    pat = b"*a*a*a*a*a*a*a*a*a*a*b"
    s = b"a" * 5000
    t0 = time.monotonic()
    assert stringmatchlen(pat, s) is False
    assert stringmatchlen(pat, s + b"b") is True
    assert time.monotonic() - t0 < 1.0


_PAT_ALPHABET = b"ab*?[]^-\\A\x00\xff\x80Zz_"
_STR_ALPHABET = b"abAB]-^\\*?[\x00\xff\x80Zz_"

patterns = st.lists(st.sampled_from(list(_PAT_ALPHABET)), max_size=10).map(bytes)
subjects = st.lists(st.sampled_from(list(_STR_ALPHABET)), max_size=10).map(bytes)


@settings(max_examples=3000, deadline=None)
@given(patterns, subjects, st.booleans())
def test_stringmatchlen_matches_port(pattern: bytes, string: bytes, nocase: bool) -> None:
    assert stringmatchlen(pattern, string, nocase) == stringmatchlen_port(pattern, string, nocase)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=8), st.binary(max_size=8), st.booleans())
def test_stringmatchlen_matches_port_any_bytes(pattern: bytes, string: bytes, nocase: bool) -> None:
    assert stringmatchlen(pattern, string, nocase) == stringmatchlen_port(pattern, string, nocase)


# ---------------------------------------------------------------------------
# Memory sizes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "s,expected",
    [
        ("", 0),
        ("gb", 0),
        ("5", 5),
        ("5B", 5),
        ("1k", 1000),
        ("1KB", 1024),
        ("1Mb", 1048576),
        ("1m", 1000000),
        ("1g", 1000000000),
        ("1GB", 1073741824),
        ("007k", 7000),
        (b"100mb", 104857600),
        ("-5", None),
        ("+5", None),
        ("5 b", None),
        ("1t", None),
        ("1.5mb", None),
        ("99999999999999999999", 2**64 - 1),
        ("17179869184gb", 0),  # wraps modulo 2^64
        ("1" * 128, None),
    ],
)
def test_parse_memory(s: bytes | str, expected: int | None) -> None:
    assert parse_memory(s) == expected


@pytest.mark.parametrize(
    "n,text",
    [
        (0, "0B"),
        (1023, "1023B"),
        (1024, "1.00K"),
        (1025, "1.00K"),
        (883584, "862.88K"),
        (1048575, "1024.00K"),
        (1310720, "1.25M"),
        (1000000000, "953.67M"),
        (1073741824, "1.00G"),
        (1099511627775, "1024.00G"),
        (1099511627776, "1.00T"),
        (1125899906842624, "1.00P"),
        (1152921504606846976, "1152921504606846976B"),
        (2**64 - 1, "18446744073709551615B"),
    ],
)
def test_bytes_to_human(n: int, text: str) -> None:
    assert bytes_to_human(n) == text


# ---------------------------------------------------------------------------
# Differential tests against redis-server
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RawClient:
    """Minimal pipelining RESP2 client (hiredis parser, no reply post-processing)."""

    def __init__(self, port: int) -> None:
        import hiredis

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.reader = hiredis.Reader()
        self.error_type = hiredis.ReplyError

    def close(self) -> None:
        self.sock.close()

    def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        out = []
        for c in commands:
            args = [a if isinstance(a, bytes) else str(a).encode() for a in c]
            out.append(b"*%d\r\n" % len(args))
            for a in args:
                out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        replies: list[Any] = []
        while len(replies) < len(commands):
            r = self.reader.gets()
            if r is False:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("redis-server closed the connection")
                self.reader.feed(data)
            else:
                replies.append(r)
        return replies

    def __call__(self, *args: Any) -> Any:
        return self.pipeline([args])[0]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawClient]:
    """A private redis-server (stopped at the end of the module)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed")
    pytest.importorskip("hiredis")
    workdir = tmp_path_factory.mktemp("redis-oracle")
    for _attempt in range(3):
        port = _free_port()
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
                "--dir",
                str(workdir),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        client = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                client = RawClient(port)
                if client("PING") == b"PONG":
                    break
            except OSError:
                time.sleep(0.05)
            client = None
        if client is not None:
            break
        proc.kill()
        proc.wait()
    else:
        pytest.skip("could not start redis-server")
    try:
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run(client: RawClient, commands: list[tuple[Any, ...]]) -> list[Any]:
    return client.pipeline(commands)


def _err(x: Any) -> str | None:
    return str(x) if isinstance(x, Exception) else None


def _random_decimal(rng: random.Random) -> bytes:
    sign = rng.choice(["", "", "-", "+"])
    kind = rng.randrange(6)
    if kind == 0:
        return (sign + str(rng.randrange(10 ** rng.randint(1, 25)))).encode()
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
    point = rng.randint(0, len(digits))
    mant = digits[:point] + "." + digits[point:] if kind != 1 else digits
    if mant == ".":
        mant = "0."
    exp = "" if kind in (2, 3) else f"e{rng.choice([rng.randint(-30, 40), rng.randint(-4960, 4940)])}"
    return (sign + mant + exp).encode()


@pytest.mark.interop
def test_incrbyfloat_vs_redis(oracle: RawClient) -> None:
    rng = random.Random(7001)
    cases: list[tuple[bytes | None, bytes]] = [(c, i) for c, i, _ in INCRBYFLOAT_CASES]
    specials = [
        b"0x1.8p3",
        b"-0x.1p4",
        b"0X10P-2",
        b"INF",
        b"-Infinity",
        b"+inf",
        b"0x",
        b"1e",
        b".",
        b"-",
        b"+.5e1",
        b"1e+5",
        b"1E-5",
        b"00001.5",
        b"\t1",
        b"1\x00",
        b"1e4932",
        b"1.2e4932",
        b"3.6e-4951",
        b"1e-4951",
        b"0e-99999",
        b"-nan",
        b"1.",
        b"0.0000000000000000050000000001",
    ]
    cases += [(None, s) for s in specials] + [(s, b"1") for s in specials]
    for _ in range(1500):
        cur = _random_decimal(rng) if rng.random() < 0.6 else None
        cases.append((cur, _random_decimal(rng)))
    cmds: list[tuple[Any, ...]] = []
    for cur, inc in cases:
        cmds.append(("DEL", "f"))
        if cur is not None:
            cmds.append(("SET", "f", cur))
        cmds.append(("INCRBYFLOAT", "f", inc))
    replies = _run(oracle, cmds)
    pos = 0
    for cur, inc in cases:
        pos += 2 if cur is not None else 1
        real = replies[pos]
        pos += 1
        expected = _err(real) or real
        assert _ibf(cur, inc) == expected, (cur, inc)


@pytest.mark.interop
def test_hincrbyfloat_vs_redis(oracle: RawClient) -> None:
    cases = [
        (None, b"1.5"),
        (b"abc", b"1"),
        (b"abc", b"x"),
        (b"10", b"0.1"),
        (b"1e4932", b"1e4932"),
        (b" 1", b"1"),
        (None, b"5.0e3"),
    ]
    cmds: list[tuple[Any, ...]] = []
    for cur, inc in cases:
        cmds.append(("DEL", "h"))
        cmds.append(("HSET", "h", "x", "y") if cur is None else ("HSET", "h", "f", cur))
        cmds.append(("HINCRBYFLOAT", "h", "f", inc))
    replies = _run(oracle, cmds)[2::3]
    for (cur, inc), real in zip(cases, replies, strict=True):
        try:
            mine: bytes | str = hincrbyfloat(cur, inc)
        except FloatValueError as e:
            mine = e.msg
        assert mine == (_err(real) or real), (cur, inc)


@pytest.mark.interop
def test_string2d_vs_redis(oracle: RawClient) -> None:
    rng = random.Random(7002)
    inputs = [s for s, _ in STRING2D_CASES] + [_random_decimal(rng) for _ in range(1500)]
    inputs += [b"%.17g" % rng.uniform(-1e300, 1e300) for _ in range(100)]
    inputs += [(b"%.17g" % struct.unpack("<d", rng.randbytes(8))[0]) for _ in range(200)]
    cmds: list[tuple[Any, ...]] = []
    for s in inputs:
        cmds += [("DEL", "z"), ("ZADD", "z", s, "m"), ("ZSCORE", "z", "m")]
    # A skiplist zset keeps -0.0 (a listpack would store the integer 0).
    oracle("CONFIG", "SET", "zset-max-listpack-entries", "0")
    try:
        replies = _run(oracle, cmds)
    finally:
        oracle("CONFIG", "SET", "zset-max-listpack-entries", "128")
    for i, s in enumerate(inputs):
        added, score = replies[3 * i + 1], replies[3 * i + 2]
        mine = string2d(s)
        if isinstance(added, Exception):
            assert mine is None, s
        else:
            assert mine is not None, s
            assert format_double_reply(mine) == score, s


def _glob_keys(rng: random.Random) -> list[bytes]:
    keys = {b"", b"a", b"b", b"ab", b"ba", b"[", b"]", b"\\", b"*", b"?", b"-", b"^"}
    alphabet = b"abAB[]^-\\*?\x00\xff\x80z_"
    while len(keys) < 400:
        keys.add(bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 8))))
    return sorted(keys)


def _glob_pattern(rng: random.Random) -> bytes:
    alphabet = b"ab*?[]^-\\A\x00\xff\x80z"
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))


@pytest.mark.interop
def test_glob_vs_redis_keys(oracle: RawClient) -> None:
    rng = random.Random(7003)
    keys = _glob_keys(rng)
    oracle("FLUSHALL")
    oracle.pipeline([("SET", k, b"1") for k in keys])
    pats = {_glob_pattern(rng) for _ in range(1500)} | {b"**", b"", b"[^", b"a\\", b"[a-]]", b"*\\"}
    for _ in range(700):  # patterns derived from keys, so that many of them match
        k = bytearray(rng.choice(keys) or b"a")
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(k))
            k[i : i + 1] = rng.choice(
                [b"?", b"*", b"[%c-z]" % k[i], b"[^b]", b"\\%c" % k[i], b"[\\%c]" % k[i]]
            )
        pats.add(bytes(k))
    pats.discard(b"*")  # KEYS short-circuits "*" without calling the matcher
    pats_l = sorted(pats)
    replies = _run(oracle, [("KEYS", p) for p in pats_l])
    for p, real in zip(pats_l, replies, strict=True):
        f = compile_pattern(p)
        assert sorted(real) == [k for k in keys if f(k)], p
    oracle("FLUSHALL")


@pytest.mark.interop
def test_glob_nocase_vs_redis_command_list(oracle: RawClient) -> None:
    # COMMAND LIST FILTERBY PATTERN matches command names with nocase=1.
    names = sorted(oracle("COMMAND", "LIST"))
    rng = random.Random(7004)
    alphabet = b"acegilnorstCEGLS*?[]^-\\|A-Z"
    pats = sorted(
        {bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 7))) for _ in range(800)}
        | {b"*GET*", b"[A-C]*", b"[Z-a]*", b"CONFIG|*", b"?ET", b"[^a-z]*", b"*|[^s]*"}
    )
    replies = _run(oracle, [("COMMAND", "LIST", "FILTERBY", "PATTERN", p) for p in pats])
    for p, real in zip(pats, replies, strict=True):
        f = compile_pattern(p, True)
        assert sorted(real) == [n for n in names if f(n)], p


@pytest.mark.interop
def test_string2ull_vs_redis_stream_ids(oracle: RawClient) -> None:
    # XRANGE parses "<ms>-<seq>": the text after the first '-' goes through string2ull.
    rng = random.Random(7005)
    inputs = [
        b"12",
        b" 12",
        b"\t3",
        b"+12",
        b"-0",
        b"-1",
        b"- 1",
        b"00012",
        b"0x10",
        b"",
        b"1 ",
        b"-18446744073709551615",
        b"-18446744073709551614",
        b"-18446744073709551616",
        b"-9223372036854775809",
        b"18446744073709551615",
        b"18446744073709551616",
        b"12\x00",
        b"--1",
        b"+-1",
        b"9223372036854775808",
    ]
    inputs += [
        rng.choice([b"", b"-", b"+", b" "]) + str(rng.randrange(2 ** rng.randint(1, 66))).encode()
        for _ in range(200)
    ]
    oracle("DEL", "s")
    accepted = {s: string2ull(s) for s in inputs}
    ids = sorted({v for v in accepted.values() if v is not None})
    oracle.pipeline([("XADD", "s", b"1-%d" % v, "f", "v") for v in ids])
    replies = _run(oracle, [("XRANGE", "s", b"1-" + s, b"1-" + s) for s in inputs])
    for s, real in zip(inputs, replies, strict=True):
        mine = accepted[s]
        if isinstance(real, Exception):
            assert mine is None, s
        else:
            assert mine is not None, s
            assert [e[0] for e in real] == [b"1-%d" % mine], s
    oracle("DEL", "s")


@pytest.mark.interop
def test_memory_config_vs_redis(oracle: RawClient) -> None:
    rng = random.Random(7006)
    inputs = [
        "",
        "gb",
        "5",
        "5B",
        "1k",
        "1KB",
        "1Mb",
        "1g",
        "1GB",
        "-5",
        "+5",
        "5 b",
        "1t",
        "007k",
        "1.5mb",
        "99999999999999999999",
        "18446744073709551615",
        "17179869184gb",
        "1023",
        "1024",
        "1048575",
        "1099511627775",
        "1125899906842624",
        "1152921504606846976",
    ]
    inputs += [str(rng.randrange(2 ** rng.randint(1, 63))) for _ in range(150)]
    inputs += [
        str(rng.randrange(10**4)) + rng.choice(["k", "kb", "m", "mb", "g", "gb", "K", "Gb"])
        for _ in range(50)
    ]
    try:
        for s in inputs:
            mine = parse_memory(s)
            if isinstance(oracle("CONFIG", "SET", "maxmemory", s), Exception):
                assert mine is None, s
                continue
            assert mine is not None, s
            got = oracle("CONFIG", "GET", "maxmemory")
            assert got == [b"maxmemory", str(mine).encode()], s
            info = oracle("INFO", "memory")
            line = [ln for ln in info.split(b"\r\n") if ln.startswith(b"maxmemory_human:")][0]
            assert line.split(b":", 1)[1].decode() == bytes_to_human(mine), s
    finally:
        oracle("CONFIG", "SET", "maxmemory", "0")
