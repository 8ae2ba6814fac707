"""Randomized differential test: random command sequences to redis-server and Ambry.

A seeded generator (no hypothesis database, so every run is reproducible
from the seed printed in a failure) draws sequences of commands over a tiny
key space (six keys, databases 0 and 1) from the families of the foundation
issue: strings, bits, keys, expiry and transactions (MULTI/EXEC/WATCH with
a second connection touching the watched keys), plus OBJECT ENCODING /
REFCOUNT / FREQ, DEBUG OBJECT / DIGEST-VALUE and KEYS.  Arguments are biased
toward edge cases: empty strings, integers around the int64 limits,
negative offsets, ``1e308``/``inf``/``nan``/``0x10``/`` 1``, binary bytes,
the 44/45-byte embstr boundary, wrong arities and stray options.

Each sequence runs on fresh connections (RESP2 or RESP3, per sequence),
every raw reply is compared byte for byte; for a third of the sequences
keyspace notifications are on (``KEAnm``) and the events each step
publishes must match in order too.  At the end of the sequence ``DEBUG
DIGEST`` of both servers must agree, then every key's existence and DBSIZE
per db.  Active expiry is off while sequences run (DEBUG SET-ACTIVE-EXPIRE),
so a key SET with a past EXAT stays until accessed on both servers, as
DBSIZE and the digests see it.  The first difference ends a
sequence (later replies would only echo it); a failing sequence is shrunk
(greedy deletion of steps) before it is reported, with the seed.

Nondeterministic replies, normalised narrowly:

* ``TTL``/``PTTL``: both positive counts as equal (the remaining time
  depends on when each server ran the command); -1/-2 compare exactly.
* ``EXPIRETIME``/``PEXPIRETIME``: positive values may differ by the few
  milliseconds between the two servers setting a *relative* TTL (10 s /
  10000 ms tolerance; the relative TTLs the generator draws are distinct
  multiples of 1000 s, so GT/LT decisions never depend on that skew).
* ``KEYS``: compared as a multiset (the order is the hash table's).
* ``DEBUG OBJECT``: the object address and the LRU fields are dropped (the
  refcount, encoding and serialized length still compare).
* Inside an ``EXEC`` reply the same rules apply per queued command.

Not generated: MEMORY USAGE (for strings modified in place Ambry's size is
an estimate; Redis's depends on the growth history of each sds
allocation), OBJECT IDLETIME, SCAN and RANDOMKEY (clock or hash-table
order).

Relative TTLs are never short (no key expires while a sequence runs) and
absolute ones are either in the past or far in the future, so expiry is
decided by the command, never by the clock.

Environment knobs (local hunting): ``AMBRY_FUZZ_EXAMPLES`` (number of
sequences, default 1200), ``AMBRY_FUZZ_SEED``, ``AMBRY_FUZZ_STEPS`` (commands
per sequence, default 40).
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import ServerProcess
from differential import (
    BadReply,
    ConnectionClosed,
    ReplyTimeout,
    RespConn,
    encode_command,
    parse_one,
)

EXAMPLES = int(os.environ.get("AMBRY_FUZZ_EXAMPLES", "1200"))
SEED = int(os.environ.get("AMBRY_FUZZ_SEED", "7019"))
STEPS = int(os.environ.get("AMBRY_FUZZ_STEPS", "40"))
CHUNKS = 4
MAX_REPORTED = int(os.environ.get("AMBRY_FUZZ_MAX_REPORTED", "8"))

KEYS = [b"k0", b"k1", b"k2", b"k3", b"k4", b"{k}5"]
ODD_KEYS = [b"", b"missing", b"k0\x00"]
# Commands whose first argument is not a key (the WATCH interference
# redirects the first argument of the others to a watched key).
NOT_KEY_FIRST = {b"OBJECT", b"DEBUG", b"BITOP", b"SELECT", b"SWAPDB", b"DBSIZE", b"FLUSHDB", b"MULTI",
                 b"EXEC", b"DISCARD", b"UNWATCH", b"KEYS"}

# -- argument pools ---------------------------------------------------------------

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

EDGE_VALUES: list[bytes] = [
    b"", b"0", b"1", b"-1", b"10", b"99", b"-0", b"00", b"01", b"+1", b" 1", b"1 ", b"0x10",
    b"9223372036854775807", b"-9223372036854775808", b"9223372036854775806",
    b"-9223372036854775807", b"9223372036854775808", b"-9223372036854775809",
    b"18446744073709551616", b"4294967296", b"2147483647", b"12345678901234567890",
    b"1.5", b"-1.5", b"3.0", b"0.1", b"1e3", b"1E3", b"1e308", b"-1e308", b"1e309",
    b"1.7976931348623157e308", b"5e-324", b"1e-10", b"inf", b"-inf", b"+inf", b"Infinity",
    b"nan", b"-nan", b".5", b"5.", b"1.0000000000000001", b"3.14159265358979323846",
    b"abc", b"hello world", b"\x00", b"\xff\x00\x01", b"\xaa\x55", b"\xff" * 8, b"\x00" * 5,
    b"a" * 44, b"a" * 45, b"x" * 100, b"123456789012345678901", b"9" * 20,
    b"ohmytext", b"mynewtext",
]

INTS: list[int] = [
    0, 1, -1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 63, 64, 100, -2, -3, -5, -8, -100,
    2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
]
BAD_INTS: list[bytes] = [
    b"", b"x", b"1.5", b" 1", b"1 ", b"0x10", b"+1", b"-0", b"9223372036854775808",
    b"-9223372036854775809", b"1e3", b"inf",
]
FLOATS: list[bytes] = [
    b"0", b"1", b"-1", b"0.1", b"-0.1", b"1.5", b"3.0e3", b"1e308", b"-1e308", b"1e309", b"5e-324",
    b"1.7976931348623157e308", b"inf", b"-inf", b"+inf", b"nan", b"0x10", b" 1", b"1 ", b"",
    b"abc", b"10.50", b"5.0e3", b"-5.0e3", b"1e-20", b"123456789.123456789", b"9223372036854775807",
    b"0.30000000000000004", b"1e15", b"1e17", b"-0", b"2.5e-5", b"0x1p3", b"0X1P-2", b"1e", b"e5", b"1e+5",
    b"  1.5", b"1.5\x00", b"infinity", b"INF", b"nan(1)", b"1_000", b"-", b"+", b"1e0", b"0777", b".",
    b"1e-310", b"4.9e-324", b"1.1e4932", b"1e4000", b"-0.0", b"1.00000000000000000001", b"0.000001",
]
PATTERNS: list[bytes] = [
    b"*", b"k*", b"k?", b"k[0-2]", b"k[^0]", b"k[!0]", b"{k}*", b"\\{k}5", b"*5", b"k[", b"[", b"k[a-",
    b"k[2-0]", b"*\x00*", b"k0\x00", b"", b"?", b"??", b"???", b"*[0-9]", b"K*", b"k\\0", b"k[\\]0]",
    b"**", b"*?*", b"m*ing", b"k[0-]", b"k[-0]",
]
# Absolute unix times: past ones (the key goes at once) and far-future ones.
ABS_SECONDS: list[int] = [0, 1, 1000000000, 1600000000, 4102444800, 32503680000, 2**40, 9223372036854775]
ABS_BAD_SECONDS: list[bytes] = [b"9223372036854775807", b"-9223372036854775808", b"-1", b"x", b"1.5"]
BIT_TYPES: list[bytes] = [
    b"u1", b"u2", b"u7", b"u8", b"u16", b"u31", b"u32", b"u63", b"i1", b"i2", b"i8", b"i16", b"i32",
    b"i63", b"i64", b"u64", b"i65", b"i0", b"u0", b"x8", b"U8", b"I8", b"",
]


def _b(x: int | bytes | str) -> bytes:
    if isinstance(x, bytes):
        return x
    return str(x).encode()


# -- the generator -------------------------------------------------------------------


@dataclass
class Step:
    """One command: ``conn`` 0 is the main connection, 1 the second one."""

    conn: int
    argv: list[bytes]

    def text(self) -> str:
        parts = []
        for a in self.argv:
            s = a.decode("latin-1")
            if not a or any(ch in s for ch in ' "\\') or any(b < 33 or b > 126 for b in a):
                s = '"' + "".join(
                    ch if 32 <= ord(ch) < 127 and ch not in '"\\' else f"\\x{ord(ch):02x}" for ch in s
                ) + '"'
            parts.append(s)
        prefix = "B: " if self.conn else ""
        return prefix + " ".join(parts)


class Gen:
    """Draws one sequence of commands from a seeded ``random.Random``."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        # Relative TTLs, in seconds: distinct multiples of 1000 s within one
        # sequence, so that comparing two of them (GT/LT) never depends on
        # the milliseconds between the commands.
        self.rel_pool = self.r.sample(range(10, 100000), 200)

    # -- primitives --

    def key(self) -> bytes:
        r = self.r
        if r.random() < 0.03:
            return r.choice(ODD_KEYS)
        return r.choice(KEYS)

    def keys(self, lo: int = 1, hi: int = 4) -> list[bytes]:
        return [self.key() for _ in range(self.r.randint(lo, hi))]

    def value(self) -> bytes:
        r = self.r
        x = r.random()
        if x < 0.6:
            return r.choice(EDGE_VALUES)
        if x < 0.75:
            return str(r.randint(-1000, 100000)).encode()
        if x < 0.85:
            return bytes(r.randrange(256) for _ in range(r.randint(0, 12)))
        if x < 0.91:
            return "".join(r.choice("abcxyz") for _ in range(r.randint(1, 20))).encode()
        if x < 0.95:
            return self.runs()
        return repr(r.uniform(-1e6, 1e6)).encode()

    def runs(self) -> bytes:
        """Runs of 0x00/0xff and random bytes, up to a few hundred bytes
        (BITPOS/BITCOUNT ranges, LCS with long matches, LZF)."""
        r = self.r
        out = b""
        for _ in range(r.randint(1, 6)):
            kind = r.random()
            n = r.choice([1, 2, 7, 8, 9, 31, 64, 100])
            if kind < 0.35:
                out += b"\x00" * n
            elif kind < 0.7:
                out += b"\xff" * n
            else:
                out += bytes(r.choice(b"ab\x01\x80") for _ in range(n))
        return out

    def int_arg(self, small: bool = False) -> bytes:
        r = self.r
        x = r.random()
        if x < 0.08:
            return r.choice(BAD_INTS)
        if small or x < 0.6:
            return _b(r.randint(-60, 60))
        return _b(r.choice(INTS))

    def offset_arg(self) -> bytes:
        """SETRANGE's offset: mostly small and valid, sometimes not."""
        r = self.r
        if r.random() < 0.8:
            return _b(r.randint(0, 60))
        return self.int_arg()

    def incr_arg(self) -> bytes:
        r = self.r
        x = r.random()
        if x < 0.1:
            return r.choice(BAD_INTS)
        if x < 0.5:
            return _b(r.choice(INTS))
        return _b(r.randint(-1000, 1000))

    def float_arg(self) -> bytes:
        r = self.r
        x = r.random()
        if x < 0.6:
            return r.choice(FLOATS)
        if x < 0.8:
            return f"{r.choice(['', '-'])}{r.randint(1, 99999)}e{r.randint(-40, 40)}".encode()
        return repr(r.uniform(-1e3, 1e3)).encode()

    def rel_seconds(self) -> int:
        """A fresh relative TTL in seconds (distinct within the sequence)."""
        if self.rel_pool:
            return self.rel_pool.pop() * 1000
        return self.r.randint(10, 100000) * 1000

    def ttl_arg(self, unit_ms: bool) -> bytes:
        """A relative TTL argument: long, zero/negative, huge or invalid."""
        r = self.r
        x = r.random()
        if x < 0.6:
            s = self.rel_seconds()
            return _b(s * 1000 + r.randrange(1000) if unit_ms else s)
        if x < 0.75:
            return _b(r.choice([0, -1, -100, INT64_MIN]))
        if x < 0.9:
            # huge: overflow when scaled/added, or fine far in the future
            return _b(r.choice([INT64_MAX, INT64_MAX // 1000, INT64_MAX // 1000 + 1, 2**62,
                                INT64_MAX - 10**13, 10**11 * (1000 if unit_ms else 1)]))
        return r.choice(BAD_INTS)

    def abs_arg(self, unit_ms: bool) -> bytes:
        r = self.r
        if r.random() < 0.1:
            return r.choice(ABS_BAD_SECONDS)
        s = r.choice(ABS_SECONDS)
        if unit_ms:
            ms = s * 1000 + r.choice([0, 123, 999])
            return _b(min(ms, INT64_MAX))
        return _b(s)

    def db(self) -> bytes:
        r = self.r
        if r.random() < 0.08:
            return r.choice([b"16", b"-1", b"x", b"", b"2"])
        return r.choice([b"0", b"1"])

    def bit_offset(self) -> bytes:
        r = self.r
        x = r.random()
        if x < 0.75:
            return _b(r.randint(0, 200))
        if x < 0.9:
            return _b(r.choice([-1, 4294967296, 2**33, INT64_MAX]))
        return r.choice([b"x", b"1.5", b"", b" 1"])

    # -- commands --

    def expire_opts(self) -> list[bytes]:
        r = self.r
        x = r.random()
        if x < 0.5:
            return []
        if x < 0.9:
            return [r.choice([b"NX", b"XX", b"GT", b"LT", b"nx", b"gt"])]
        return r.sample([b"NX", b"XX", b"GT", b"LT", b"FOO"], 2)

    def set_cmd(self) -> list[bytes]:
        r = self.r
        argv = [b"SET", self.key(), self.value()]
        opts: list[list[bytes]] = []
        if r.random() < 0.3:
            opts.append([r.choice([b"NX", b"XX", b"nx"])])
        if r.random() < 0.25:
            opts.append([b"GET"])
        x = r.random()
        if x < 0.1:
            opts.append([b"EX", self.ttl_arg(False)])
        elif x < 0.2:
            opts.append([b"PX", self.ttl_arg(True)])
        elif x < 0.27:
            opts.append([b"EXAT", self.abs_arg(False)])
        elif x < 0.34:
            opts.append([b"PXAT", self.abs_arg(True)])
        elif x < 0.42:
            opts.append([b"KEEPTTL"])
        if r.random() < 0.06:
            opts.append([r.choice([b"NX", b"XX", b"GET", b"KEEPTTL", b"EX", b"PX", b"FOO"])])
        r.shuffle(opts)
        for o in opts:
            argv += o
        return argv

    def getex_cmd(self) -> list[bytes]:
        r = self.r
        argv = [b"GETEX", self.key()]
        x = r.random()
        if x < 0.2:
            argv += [b"EX", self.ttl_arg(False)]
        elif x < 0.4:
            argv += [b"PX", self.ttl_arg(True)]
        elif x < 0.5:
            argv += [b"EXAT", self.abs_arg(False)]
        elif x < 0.6:
            argv += [b"PXAT", self.abs_arg(True)]
        elif x < 0.75:
            argv += [b"PERSIST"]
        elif x < 0.82:
            argv += r.choice([[b"PERSIST", b"EX", b"10"], [b"EX"], [b"KEEPTTL"], [b"EX", b"100000", b"PX", b"5"]])
        return argv

    def lcs_cmd(self) -> list[bytes]:
        r = self.r
        argv = [b"LCS", self.key(), self.key()]
        opts: list[list[bytes]] = []
        if r.random() < 0.3:
            opts.append([b"LEN"])
        if r.random() < 0.4:
            opts.append([b"IDX"])
        if r.random() < 0.3:
            opts.append([b"MINMATCHLEN", r.choice([b"0", b"1", b"2", b"3", b"-1", b"x", b"100"])])
        if r.random() < 0.3:
            opts.append([b"WITHMATCHLEN"])
        if r.random() < 0.05:
            opts.append([r.choice([b"FOO", b"MINMATCHLEN"])])
        r.shuffle(opts)
        for o in opts:
            argv += o
        return argv

    def range_args(self) -> list[bytes]:
        return [self.int_arg(), self.int_arg()]

    def bitcount_cmd(self) -> list[bytes]:
        r = self.r
        argv = [b"BITCOUNT", self.key()]
        x = r.random()
        if x < 0.3:
            return argv
        argv += self.range_args()
        if r.random() < 0.5:
            argv.append(r.choice([b"BYTE", b"BIT", b"bit", b"FOO"]))
        if r.random() < 0.05:
            argv.pop(2)
        return argv

    def bitpos_cmd(self) -> list[bytes]:
        r = self.r
        argv = [b"BITPOS", self.key(), r.choice([b"0", b"1", b"0", b"1", b"2", b"-1", b"x"])]
        n = r.choice([0, 0, 1, 2, 3, 3])
        if n >= 1:
            argv.append(self.int_arg())
        if n >= 2:
            argv.append(self.int_arg())
        if n >= 3:
            argv.append(r.choice([b"BYTE", b"BIT", b"BIT", b"byte", b"FOO"]))
        return argv

    def bitop_cmd(self) -> list[bytes]:
        r = self.r
        op = r.choice([b"AND", b"OR", b"XOR", b"NOT", b"and", b"not", b"NAND"])
        if op.upper() == b"NOT" and r.random() < 0.85:
            srcs = [self.key()]
        else:
            srcs = self.keys(1, 3)
        return [b"BITOP", op, self.key(), *srcs]

    def bitfield_offset(self) -> bytes:
        r = self.r
        x = r.random()
        if x < 0.6:
            return _b(r.randint(0, 100))
        if x < 0.85:
            return b"#" + _b(r.randint(0, 12))
        return r.choice([b"-1", b"#-1", b"x", b"", b"4294967296", b"#4294967296", b"#", b"1.5"])

    def bitfield_value(self) -> bytes:
        r = self.r
        if r.random() < 0.5:
            return _b(r.randint(-300, 300))
        return r.choice([b"0", b"-1", _b(INT64_MAX), _b(INT64_MIN), b"9223372036854775808", b"x",
                         b"255", b"256", b"-128", b"-129", b"127", b"128", b"4294967295", b"1.5"])

    def bitfield_cmd(self, ro: bool = False) -> list[bytes]:
        r = self.r
        argv = [b"BITFIELD_RO" if ro else b"BITFIELD", self.key()]
        for _ in range(r.randint(0 if not ro else 1, 4)):
            x = r.random()
            if ro or x < 0.35:
                argv += [b"GET", r.choice(BIT_TYPES), self.bitfield_offset()]
            elif x < 0.6:
                argv += [b"SET", r.choice(BIT_TYPES), self.bitfield_offset(), self.bitfield_value()]
            elif x < 0.85:
                argv += [b"INCRBY", r.choice(BIT_TYPES), self.bitfield_offset(), self.bitfield_value()]
            elif x < 0.97:
                argv += [b"OVERFLOW", r.choice([b"WRAP", b"SAT", b"FAIL", b"sat", b"BAD"])]
            else:
                argv += [r.choice([b"GET", b"SET", b"FOO", b"INCRBY"]), b"u8"]
        if ro and r.random() < 0.1:
            argv += [b"SET", b"u8", b"0", b"1"]
        return argv

    def copy_cmd(self) -> list[bytes]:
        r = self.r
        argv = [b"COPY", self.key(), self.key()]
        opts: list[list[bytes]] = []
        if r.random() < 0.4:
            opts.append([b"DB", self.db()])
        if r.random() < 0.4:
            opts.append([b"REPLACE"])
        if r.random() < 0.04:
            opts.append([r.choice([b"DB", b"FOO"])])
        r.shuffle(opts)
        for o in opts:
            argv += o
        return argv

    def expire_cmd(self) -> list[bytes]:
        r = self.r
        name = r.choice([b"EXPIRE", b"PEXPIRE", b"EXPIREAT", b"PEXPIREAT"])
        ms = name.startswith(b"P")
        t = self.abs_arg(ms) if name.endswith(b"AT") else self.ttl_arg(ms)
        return [name, self.key(), t, *self.expire_opts()]

    def mset_args(self) -> list[bytes]:
        r = self.r
        out: list[bytes] = []
        for _ in range(r.randint(1, 3)):
            out += [self.key(), self.value()]
        if r.random() < 0.05:
            out.append(self.key())
        return out

    def command(self) -> list[bytes]:
        """One non-transaction command."""
        r = self.r
        table: list[tuple[float, Callable[[], list[bytes]]]] = [
            (6, lambda: [b"GET", self.key()]),
            (10, self.set_cmd),
            (1, lambda: [b"SETNX", self.key(), self.value()]),
            (1, lambda: [b"SETEX", self.key(), self.ttl_arg(False), self.value()]),
            (1, lambda: [b"PSETEX", self.key(), self.ttl_arg(True), self.value()]),
            (1.5, lambda: [b"GETSET", self.key(), self.value()]),
            (2, self.getex_cmd),
            (1.5, lambda: [b"GETDEL", self.key()]),
            (2, lambda: [b"MGET", *self.keys(1, 4)]),
            (2, lambda: [b"MSET", *self.mset_args()]),
            (1, lambda: [b"MSETNX", *self.mset_args()]),
            (3, lambda: [b"APPEND", self.key(), self.value()]),
            (1.5, lambda: [b"STRLEN", self.key()]),
            (3, lambda: [b"SETRANGE", self.key(), self.offset_arg(), self.value()]),
            (2.5, lambda: [r.choice([b"GETRANGE", b"SUBSTR"]), self.key(), *self.range_args()]),
            (3, lambda: [r.choice([b"INCR", b"DECR"]), self.key()]),
            (3, lambda: [r.choice([b"INCRBY", b"DECRBY"]), self.key(), self.incr_arg()]),
            (4, lambda: [b"INCRBYFLOAT", self.key(), self.float_arg()]),
            (2, self.lcs_cmd),
            (3, lambda: [b"SETBIT", self.key(), self.bit_offset(),
                         r.choice([b"0", b"1", b"1", b"2", b"-1", b"x", b""])]),
            (2, lambda: [b"GETBIT", self.key(), self.bit_offset()]),
            (2, self.bitcount_cmd),
            (2, self.bitpos_cmd),
            (2, self.bitop_cmd),
            (3, self.bitfield_cmd),
            (1, lambda: self.bitfield_cmd(ro=True)),
            (2, lambda: [r.choice([b"DEL", b"UNLINK"]), *self.keys(1, 3)]),
            (2, lambda: [b"EXISTS", *self.keys(1, 4)]),
            (1, lambda: [b"TOUCH", *self.keys(1, 3)]),
            (1.5, lambda: [b"TYPE", self.key()]),
            (2, lambda: [r.choice([b"RENAME", b"RENAMENX"]), self.key(), self.key()]),
            (2, self.copy_cmd),
            (1.5, lambda: [b"MOVE", self.key(), self.db()]),
            (0.7, lambda: [b"SWAPDB", self.db(), self.db()]),
            (1, lambda: [b"DBSIZE"]),
            (3, lambda: [b"OBJECT", b"ENCODING", self.key()]),
            (1.5, lambda: [b"SELECT", self.db()]),
            (0.4, lambda: [b"FLUSHDB", *r.choice([[], [], [b"ASYNC"], [b"SYNC"], [b"FOO"]])]),
            (5, self.expire_cmd),
            (1.5, lambda: [b"PERSIST", self.key()]),
            (2, lambda: [r.choice([b"TTL", b"PTTL"]), self.key()]),
            (2, lambda: [r.choice([b"EXPIRETIME", b"PEXPIRETIME"]), self.key()]),
            (1, lambda: [b"DEBUG", b"DIGEST-VALUE", *self.keys(1, 2)]),
            (1.5, lambda: [b"DEBUG", b"OBJECT", self.key()]),
            (1, lambda: [b"OBJECT", r.choice([b"REFCOUNT", b"FREQ", b"refcount"]), self.key()]),
            (1.5, lambda: [b"KEYS", r.choice(PATTERNS)]),
            (0.8, lambda: [r.choice([b"EXEC", b"DISCARD", b"UNWATCH", b"MULTI"])]),
            (0.8, lambda: [b"WATCH", *self.keys(1, 2)]),
        ]
        total = sum(w for w, _ in table)
        x = r.random() * total
        for w, fn in table:
            x -= w
            if x <= 0:
                argv = fn()
                break
        else:
            argv = table[0][1]()
        if r.random() < 0.03:
            # wrong arity or a stray trailing argument
            if len(argv) > 1 and r.random() < 0.5:
                argv = argv[:-1]
            else:
                argv = [*argv, r.choice([b"junk", b"", b"0"])]
        return argv

    def toucher(self, key: bytes) -> list[bytes]:
        """A command that may or may not change ``key`` (or its whole db):
        WATCH must see exactly the changes Redis signals."""
        r = self.r
        return r.choice([
            [b"SET", key, self.value()],
            [b"SET", key, b"v", b"PXAT", b"1000"],
            [b"SET", key, b"v", b"NX"],
            [b"SET", key, b"v", b"XX", b"KEEPTTL"],
            [b"DEL", key],
            [b"EXPIRE", key, b"-1"],
            [b"EXPIRE", key, b"100000", b"NX"],
            [b"PEXPIREAT", key, b"1000"],
            [b"PERSIST", key],
            [b"GETEX", key, b"PERSIST"],
            [b"GETDEL", key],
            [b"APPEND", key, b""],
            [b"SETRANGE", key, b"0", b""],
            [b"SETRANGE", key, b"1", b"x"],
            [b"SETBIT", key, b"3", b"0"],
            [b"BITFIELD", key, b"OVERFLOW", b"FAIL", b"INCRBY", b"u2", b"0", b"5"],
            [b"BITFIELD", key, b"GET", b"u8", b"0"],
            [b"INCRBYFLOAT", key, b"0"],
            [b"INCR", key],
            [b"MOVE", key, r.choice([b"0", b"1"])],
            [b"RENAME", key, self.key()],
            [b"RENAME", self.key(), key],
            [b"COPY", self.key(), key, b"REPLACE"],
            [b"COPY", key, key, b"DB", b"1"],
            [b"SWAPDB", b"0", b"1"],
            [b"FLUSHDB"],
            [b"FLUSHALL"],
            [b"SELECT", r.choice([b"0", b"1"])],
            [b"MSETNX", key, b"x"],
            [b"BITOP", b"AND", key, self.key()],
            [b"GETSET", key, self.value()],
        ])

    def transaction(self) -> list[Step]:
        """WATCH, interference from the second connection, MULTI ... EXEC/DISCARD."""
        r = self.r
        steps: list[Step] = []
        watched: list[bytes] = []
        if r.random() < 0.6:
            watched = self.keys(1, 3)
            steps.append(Step(0, [b"WATCH", *watched]))
        for _ in range(r.randint(0, 2)):
            if watched and r.random() < 0.4:
                steps.append(Step(r.choice([0, 1, 1]), self.toucher(r.choice(watched))))
            elif watched and r.random() < 0.6:
                argv = self.command()
                if len(argv) > 1 and argv[0] not in NOT_KEY_FIRST and r.random() < 0.7:
                    argv[1] = r.choice(watched)
                steps.append(Step(r.choice([0, 1, 1]), argv))
            else:
                steps.append(Step(r.choice([0, 1]), self.command()))
        steps.append(Step(0, [b"MULTI"]))
        for _ in range(r.randint(0, 6)):
            steps.append(Step(0, self.command()))
            if r.random() < 0.15:
                steps.append(Step(1, self.command()))
        steps.append(Step(0, [b"DISCARD"] if r.random() < 0.12 else [b"EXEC"]))
        return steps

    def sequence(self, n: int) -> list[Step]:
        r = self.r
        steps: list[Step] = []
        if r.random() < 0.7:
            # start from a populated keyspace (most commands need a key)
            for db in (b"1", b"0") if r.random() < 0.3 else (b"0",):
                steps.append(Step(0, [b"SELECT", db]))
                steps.append(Step(0, [b"MSET", *[x for k in r.sample(KEYS, r.randint(2, 6))
                                                  for x in (k, self.value())]]))
        while len(steps) < n:
            x = r.random()
            if x < 0.12:
                steps += self.transaction()
            elif x < 0.2:
                steps.append(Step(1, self.command()))
            else:
                steps.append(Step(0, self.command()))
        return steps


# -- comparing ------------------------------------------------------------------------

_TTL = {b"ttl", b"pttl"}
_PONG = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
_EXPIRETIME = {b"expiretime": 10, b"pexpiretime": 10000}


def _int_of(tree: Any) -> int | None:
    if tree[0] == ":":
        return int(tree[1])
    return None


_DEBUG_OBJECT_VOLATILE = re.compile(rb"^Value at:0x[0-9a-f]+ | lru:\d+ lru_seconds_idle:\d+$")


def _debug_object(line: bytes) -> bytes:
    """DEBUG OBJECT without the address and the LRU fields."""
    return _DEBUG_OBJECT_VOLATILE.sub(b"", line)


def _same_tree(argv: list[bytes], rt: Any, at: Any) -> bool:
    """Replies equal up to the documented time normalisations."""
    if rt == at:
        return True
    name = argv[0].lower()
    if name in _TTL:
        ri, ai = _int_of(rt), _int_of(at)
        return ri is not None and ai is not None and ri > 0 and ai > 0
    if name == b"keys" and rt[0] == at[0] == "*" and rt[1] is not None and at[1] is not None:
        return sorted(rt[1]) == sorted(at[1])
    if name == b"debug" and len(argv) > 1 and argv[1].lower() == b"object" and rt[0] == at[0] == "+":
        return _debug_object(rt[1]) == _debug_object(at[1])
    tol = _EXPIRETIME.get(name)
    if tol is not None:
        ri, ai = _int_of(rt), _int_of(at)
        return ri is not None and ai is not None and ri > 0 and ai > 0 and abs(ri - ai) <= tol
    return False


def same_reply(argv: list[bytes], queued: list[list[bytes]], r: bytes, a: bytes) -> bool:
    """``r`` (redis) and ``a`` (Ambry) are the same reply to ``argv``;
    ``queued`` is the transaction an EXEC runs."""
    if r == a:
        return True
    try:
        rt, at = parse_one(r), parse_one(a)
    except (BadReply, ValueError, IndexError):
        return False
    if argv[0].lower() == b"exec" and rt[0] == "*" and at[0] == "*":
        ri, ai = rt[1], at[1]
        if ri is None or ai is None or len(ri) != len(ai) or len(ri) != len(queued):
            return False
        return all(_same_tree(q, x, y) for q, x, y in zip(queued, ri, ai, strict=True))
    return _same_tree(argv, rt, at)


# -- running ----------------------------------------------------------------------------


@dataclass
class Difference:
    """The first difference of a sequence."""

    index: int  # step index, or len(steps) for the final digest
    what: str
    redis: bytes
    ambry: bytes
    detail: str = ""


@dataclass
class Pair:
    """Two connections (one per server) playing one role."""

    redis: RespConn
    ambry: RespConn
    in_multi: bool = False
    queued: list[list[bytes]] = field(default_factory=list)


class Runner:
    """Plays sequences against both servers."""

    def __init__(self, redis: ServerProcess, ambry: ServerProcess) -> None:
        self.redis = redis
        self.ambry = ambry

    def active_expire(self, on: bool) -> None:
        """DEBUG SET-ACTIVE-EXPIRE on both servers.  Off while sequences run:
        a key SET with an EXAT/PXAT in the past stays in the keyspace until
        it is accessed, and DBSIZE, DEBUG DIGEST and DEBUG DIGEST-VALUE see
        it; the background cycle would remove it at a moment of its own."""
        for s in (self.redis, self.ambry):
            s.command(b"DEBUG", b"SET-ACTIVE-EXPIRE", b"1" if on else b"0")

    def _pair(self, resp3: bool) -> Pair:
        p = Pair(self.redis.conn(), self.ambry.conn())
        if resp3:
            for c in (p.redis, p.ambry):
                c.command(b"HELLO", b"3")
        return p

    def _flush(self) -> None:
        for s in (self.redis, self.ambry):
            c = s.conn()
            try:
                c.command(b"FLUSHALL")
            finally:
                c.close()

    def run(self, steps: list[Step], resp3: bool, notify: bool = False) -> Difference | None:
        """Play ``steps``; with ``notify``, keyspace notifications are on and
        the events each step publishes must match too."""
        self._flush()
        pairs = [self._pair(resp3), self._pair(resp3)]
        subs = self._subscribers() if notify else None
        try:
            for i, st in enumerate(steps):
                d = self._step(pairs[st.conn], st, i)
                if d is None and subs is not None:
                    d = self._events(subs, st, i)
                if d is not None:
                    return d
        finally:
            for p in pairs:
                p.redis.close()
                p.ambry.close()
            if subs is not None:
                self._unsubscribe(subs)
        return self._digest(len(steps))

    def _subscribers(self) -> Pair:
        """notify-keyspace-events KEAnm and a PSUBSCRIBE to every event."""
        for s in (self.redis, self.ambry):
            s.command(b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAnm")
        p = Pair(self.redis.conn(), self.ambry.conn())
        for c in (p.redis, p.ambry):
            c.command(b"PSUBSCRIBE", b"__key*__:*")
        return p

    def _unsubscribe(self, subs: Pair) -> None:
        subs.redis.close()
        subs.ambry.close()
        for s in (self.redis, self.ambry):
            if s.alive():
                s.command(b"CONFIG", b"SET", b"notify-keyspace-events", b"")

    def _events(self, subs: Pair, st: Step, i: int) -> Difference | None:
        """The notifications of one step, in order: everything the
        subscriber receives before the reply to a PING sent after the step
        (both servers queue a command's events before answering the next)."""
        got = []
        for c in (subs.redis, subs.ambry):
            out = b""
            try:
                c.send(encode_command([b"PING"]))
                while True:
                    raw = c.read_reply()
                    if raw == _PONG:
                        break
                    out += raw
            except ReplyTimeout:
                out += b"<no reply>"
            except (ConnectionClosed, OSError):
                out += b"<connection closed>"
            got.append(out)
        if got[0] != got[1]:
            return Difference(i, st.text() + " (keyspace events)", got[0], got[1])
        return None

    def _step(self, p: Pair, st: Step, i: int) -> Difference | None:
        req = encode_command(st.argv)
        replies: list[bytes] = []
        for c in (p.redis, p.ambry):
            try:
                c.send(req)
                replies.append(c.read_reply())
            except ReplyTimeout:
                replies.append(b"<no reply>")
            except (ConnectionClosed, OSError):
                replies.append(b"<connection closed>")
        r, a = replies
        name = st.argv[0].lower()
        queued = p.queued
        if p.in_multi and name in (b"exec", b"discard"):
            p.in_multi = False
            p.queued = []
        elif p.in_multi and r == b"+QUEUED\r\n":
            p.queued.append(st.argv)
        elif not p.in_multi and name == b"multi" and r == b"+OK\r\n":
            p.in_multi = True
            p.queued = []
        if not same_reply(st.argv, queued, r, a):
            return Difference(i, st.text(), r, a)
        if r.startswith(b"<"):
            return Difference(i, st.text(), r, a, "no usable reply")
        return None

    def _digest(self, i: int) -> Difference | None:
        """The datasets agree: DEBUG DIGEST (logically expired keys included,
        as Redis has not reclaimed them), then every key's existence (which
        expires them) and DBSIZE per db."""
        got = [s.command(b"DEBUG", b"DIGEST") for s in (self.redis, self.ambry)]
        if got[0] != got[1]:
            return Difference(i, "DEBUG DIGEST (end of sequence)", got[0], got[1], self._dump())
        conns = [self.redis.conn(), self.ambry.conn()]
        try:
            for db in (b"0", b"1"):
                probes = [[b"SELECT", db]] + [[b"EXISTS", k] for k in [*KEYS, *ODD_KEYS]] + [[b"DBSIZE"]]
                for argv in probes:
                    r, a = (c.command(*argv) for c in conns)
                    if r != a:
                        return Difference(i, f"db{db.decode()}: " + Step(0, argv).text() + " (end of sequence)",
                                          r, a)
        finally:
            for c in conns:
                c.close()
        return None

    def _dump(self) -> str:
        """Both datasets, key by key, to explain a digest difference."""
        lines = []
        for s in (self.redis, self.ambry):
            c = s.conn()
            try:
                for db in (b"0", b"1"):
                    c.command(b"SELECT", db)
                    keys = sorted(parse_one(c.command(b"KEYS", b"*"))[1] or ())
                    for _, k in keys:
                        lines.append(
                            f"  {s.kind} db{db.decode()} {k!r}: {c.command(b'GET', k)!r} "
                            f"enc={c.command(b'OBJECT', b'ENCODING', k)!r} "
                            f"pttl>0={int(parse_one(c.command(b'PTTL', k))[1]) > 0}"
                        )
            finally:
                c.close()
        return "\n".join(lines)


def shrink(runner: Runner, steps: list[Step], resp3: bool, notify: bool, first: Difference,
           budget: int = 300) -> tuple[list[Step], Difference]:
    """Greedy deletion: the shortest prefix, then passes that drop steps one
    by one while the sequence still differs somewhere, until a pass removes
    nothing (at most ``budget`` replays)."""
    cur = steps[: first.index + 1]
    diff = first
    progress = True
    while progress and budget > 0:
        progress = False
        i = len(cur) - 2
        while i >= 0 and budget > 0:
            cand = cur[:i] + cur[i + 1 :]
            budget -= 1
            d = runner.run(cand, resp3, notify)
            if d is not None:
                cur = cand[: d.index + 1]
                diff = d
                progress = True
                i = min(i, len(cur) - 1)
            i -= 1
    return cur, diff


def report(seed: int, resp3: bool, notify: bool, steps: list[Step], d: Difference) -> str:
    proto = ("RESP3" if resp3 else "RESP2") + (", keyspace events" if notify else "")
    body = "\n".join(f"  {j:3d} {s.text()}" for j, s in enumerate(steps))
    msg = (f"seed {seed} ({proto}), {len(steps)} steps, differs at step {d.index}: {d.what}\n"
           f"    redis: {d.redis!r}\n    ambry: {d.ambry!r}\n{body}")
    if d.detail:
        msg += "\n" + d.detail
    return msg


def example_seeds(chunk: int) -> list[int]:
    """The seeds of one chunk (examples are spread over CHUNKS tests for xdist)."""
    return [SEED * 1000003 + i for i in range(chunk, EXAMPLES, CHUNKS)]


@pytest.mark.interop
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_sequences_match_redis(chunk: int, redis: ServerProcess, ambry: ServerProcess) -> None:
    """Random command sequences get byte-identical replies and digests."""
    runner = Runner(redis, ambry)
    failures: list[str] = []
    runner.active_expire(False)
    try:
        for seed in example_seeds(chunk):
            steps = Gen(seed).sequence(STEPS)
            resp3 = seed % 2 == 1
            notify = seed // 2 % 3 == 0
            d = runner.run(steps, resp3, notify)
            if d is None:
                continue
            small, sd = shrink(runner, steps, resp3, notify, d)
            failures.append(report(seed, resp3, notify, small, sd))
            ambry.check_alive()
            if len(failures) >= MAX_REPORTED:
                break
    finally:
        if redis.alive() and ambry.alive():
            runner.active_expire(True)
    redis.check_alive()
    ambry.check_alive()
    if failures:
        pytest.fail(f"{len(failures)} differing sequence(s):\n\n" + "\n\n".join(failures), pytrace=False)


def test_generator_is_deterministic() -> None:
    """The same seed gives the same sequence (failures are reproducible)."""
    a = [s.argv for s in Gen(42).sequence(60)]
    b = [s.argv for s in Gen(42).sequence(60)]
    assert a == b
    assert any(s[0] == b"MULTI" for s in a)


def test_time_normalisation_is_narrow() -> None:
    """Only positive TTLs are blurred; -1/-2 and other commands compare exactly."""
    assert same_reply([b"TTL", b"k"], [], b":5\r\n", b":4\r\n")
    assert not same_reply([b"TTL", b"k"], [], b":-1\r\n", b":4\r\n")
    assert not same_reply([b"GET", b"k"], [], b":5\r\n", b":4\r\n")
    assert same_reply([b"PEXPIRETIME", b"k"], [], b":100000\r\n", b":100005\r\n")
    assert not same_reply([b"PEXPIRETIME", b"k"], [], b":100000\r\n", b":200000\r\n")
    q = [[b"TTL", b"k"], [b"GET", b"k"]]
    assert same_reply([b"EXEC"], q, b"*2\r\n:5\r\n$1\r\nv\r\n", b"*2\r\n:4\r\n$1\r\nv\r\n")
    assert not same_reply([b"EXEC"], q, b"*2\r\n:5\r\n$1\r\nv\r\n", b"*2\r\n:4\r\n$1\r\nw\r\n")


@pytest.mark.interop
def test_debug_object_serialized_length_matches_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    """DEBUG OBJECT's serializedlength (LZF above 20 bytes, integer
    encodings below) for strings of many shapes, compared without the
    address and LRU fields.  Redis gives lzf_compress len-4 bytes of room."""
    rng = random.Random(20)
    values: list[bytes] = [b"123456789012345678901", b"a" * 21, b"ab" * 11, b"-2147483648", b"2147483648",
                           b"12345678901", b"-0", b"00", b"x" * 64, b"x" * 16384, b"x" * 16400]
    for _ in range(250):
        alpha = rng.choice([b"ab", b"abc", b"0123456789", bytes(range(256)), b"a", b"hello world "])
        values.append(bytes(rng.choice(alpha) for _ in range(rng.randint(1, 300))))
    conns = [redis.conn(), ambry.conn()]
    try:
        bad = []
        for i, v in enumerate(values):
            for c in conns:
                c.command(b"SET", b"k", v)
                if i % 3 == 0:
                    c.command(b"APPEND", b"k", b"")  # raw (a bytearray in Ambry)
            r, a = (_debug_object(parse_one(c.command(b"DEBUG", b"OBJECT", b"k"))[1]) for c in conns)
            if r != a:
                bad.append(f"{v!r}: redis {r!r} ambry {a!r}")
        assert not bad, "\n".join(bad[:20])
    finally:
        for c in conns:
            c.close()
