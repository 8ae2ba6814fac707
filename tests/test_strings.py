"""String and bit commands: what the differential corpus cannot show.

* effects (spec/propagation.md): every rewrite of SET/SETEX/PSETEX/GETEX/
  GETSET/GETDEL/INCRBYFLOAT, verbatim writes, no-ops that record nothing,
  lazy-expiry DELs before the command's own effect;
* TTLs left by each command, OBJECT ENCODING's int/embstr/raw;
* keyspace notifications in Redis 7.0's order (checked against a real
  redis-server 7.0.15 by hand);
* wrong-type paths (no other type exists yet: a stand-in value is used);
* raw (bytearray) values never leak into replies; size limits refuse before
  allocating; the bit-parallel LCS equals the textbook DP.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from ambry.server.commands.strings import _lcs_at, _lcs_rows, string_encoding
from ambry.server.reply import OK, Err, Map
from conftest import InProcess

WRONGTYPE = Err("WRONGTYPE Operation against a key holding the wrong kind of value")
FAR = 4102444800123  # 2100-01-01, in ms


class FakeList:
    """A value of another type, until the list family exists."""

    redis_type = b"list"

    def copy(self) -> FakeList:
        return FakeList()


@pytest.fixture
def ip() -> InProcess:
    return InProcess()


def effects(ip: InProcess, *cmds: tuple[Any, ...]) -> list[list[bytes]]:
    """Run ``cmds`` with a fresh RecordingSink; the recorded stream minus the
    initial SELECT."""
    sink = ip.record()
    for cmd in cmds:
        ip.call(*cmd)
    out = sink.commands
    if out and out[0] == [b"SELECT", b"0"]:
        out = out[1:]
    return out


def db0(ip: InProcess) -> Any:
    return ip.srv.dbs[0]


def expire_past(ip: InProcess, key: bytes) -> None:
    """Make ``key`` logically expired without touching it."""
    db0(ip).expires[key] = 1


# -- effects: SET and friends ----------------------------------------------------------


def test_plain_set_is_verbatim(ip: InProcess) -> None:
    assert effects(ip, ("SET", "k", "v"), ("set", "k", "w")) == [[b"SET", b"k", b"v"], [b"set", b"k", b"w"]]


@pytest.mark.parametrize(
    "opts, rel_ms",
    [
        (("EX", "100"), 100_000),
        (("ex", "100", "NX"), 100_000),
        (("PX", "100000"), 100_000),
        (("PX", "5", "GET"), 5),
        (("XX", "GET", "EX", "7"), 7_000),
    ],
)
def test_set_relative_expiry_becomes_pxat(ip: InProcess, opts: tuple[str, ...], rel_ms: int) -> None:
    if "XX" in opts:
        ip.call("SET", "k", "old")
    sink = ip.record()
    ip.call("SET", "k", "v", *opts)
    abs_ms = ip.srv.now_ms + rel_ms
    assert sink.commands[-1] == [b"SET", b"k", b"v", b"PXAT", b"%d" % abs_ms]
    assert db0(ip).get_expire(b"k") == abs_ms


@pytest.mark.parametrize(
    "opts, abs_ms",
    [
        (("EXAT", "4102444800"), 4102444800000),
        (("PXAT", str(FAR)), FAR),
        (("PXAT", str(FAR), "NX", "GET"), FAR),
        (("GET", "exat", "4102444800"), 4102444800000),
    ],
)
def test_set_absolute_expiry_is_five_args(ip: InProcess, opts: tuple[str, ...], abs_ms: int) -> None:
    assert effects(ip, ("SET", "k", "v", *opts)) == [[b"SET", b"k", b"v", b"PXAT", b"%d" % abs_ms]]


def test_set_get_without_expiry_drops_every_get(ip: InProcess) -> None:
    ip.call("SET", "k", "old")
    assert effects(ip, ("set", "k", "v", "GET", "XX", "get", "KEEPTTL")) == [
        [b"set", b"k", b"v", b"XX", b"KEEPTTL"]
    ]
    # the key and the value may be called "get"; only options are dropped
    assert effects(ip, ("SET", "get", "get", "GET")) == [[b"SET", b"get", b"get"]]


def test_set_keepttl_and_flags_verbatim(ip: InProcess) -> None:
    ip.call("SET", "k", "v", "PXAT", str(FAR))
    assert effects(ip, ("SET", "k", "v2", "KEEPTTL", "XX")) == [[b"SET", b"k", b"v2", b"KEEPTTL", b"XX"]]
    assert db0(ip).get_expire(b"k") == FAR
    ip.call("SET", "k", "v3")
    assert db0(ip).get_expire(b"k") == -1


def test_set_noops_record_nothing(ip: InProcess) -> None:
    ip.call("SET", "k", "v")
    assert (
        effects(
            ip,
            ("SET", "k", "v", "NX"),
            ("SET", "k", "v", "NX", "GET"),
            ("SET", "nokey", "v", "XX", "EX", "10"),
            ("SET", "k", "v", "EX", "0"),
            ("SET", "k", "v", "EX", "10", "KEEPTTL"),
            ("SETNX", "k", "v"),
        )
        == []
    )


def test_setnx_verbatim(ip: InProcess) -> None:
    assert effects(ip, ("SETNX", "k", "v")) == [[b"SETNX", b"k", b"v"]]


def test_setex_psetex_become_set_pxat(ip: InProcess) -> None:
    sink = ip.record()
    ip.call("SETEX", "k", "100", "v")
    t1 = ip.srv.now_ms + 100_000
    ip.call("psetex", "k2", "5000", "w")
    t2 = ip.srv.now_ms + 5000
    assert sink.commands[1:] == [
        [b"SET", b"k", b"v", b"PXAT", b"%d" % t1],
        [b"SET", b"k2", b"w", b"PXAT", b"%d" % t2],
    ]
    assert db0(ip).get_expire(b"k") == t1


def test_set_with_past_absolute_time_keeps_key_until_touched(ip: InProcess) -> None:
    """7.0 stores the past time (no delete); the first access expires it."""
    sink = ip.record()
    assert ip.call("SET", "k", "v", "PXAT", "1") == OK
    assert b"k" in db0(ip).data
    assert ip.call("GET", "k") is None
    assert sink.commands[1:] == [[b"SET", b"k", b"v", b"PXAT", b"1"], [b"DEL", b"k"]]


def test_write_on_expired_key_records_del_first(ip: InProcess) -> None:
    for cmd in (
        ("SET", "k", "v"),
        ("INCR", "k"),
        ("MSET", "k", "1"),
        ("APPEND", "k", "x"),
        ("GETSET", "k", "v"),
    ):
        ip.call("SET", "k", "1")
        expire_past(ip, b"k")
        argv = [a.encode() for a in cmd]
        if cmd[0] == "GETSET":
            argv[0] = b"SET"
        assert effects(ip, cmd) == [[b"MULTI"], [b"DEL", b"k"], argv, [b"EXEC"]]


def test_getset_becomes_set(ip: InProcess) -> None:
    ip.call("SET", "k", "v", "PXAT", str(FAR))
    assert effects(ip, ("getset", "k", "w")) == [[b"SET", b"k", b"w"]]
    assert db0(ip).get_expire(b"k") == -1


def test_getdel_becomes_del_or_unlink(ip: InProcess) -> None:
    ip.call("SET", "k", "v")
    assert effects(ip, ("GETDEL", "k"), ("GETDEL", "k")) == [[b"DEL", b"k"]]
    ip.srv.cfg.lazyfree_lazy_user_del = True
    ip.call("SET", "k", "v")
    assert effects(ip, ("GETDEL", "k")) == [[b"UNLINK", b"k"]]


def test_getex_rewrites(ip: InProcess) -> None:
    ip.call("SET", "k", "v")
    sink = ip.record()
    ip.call("GETEX", "k")
    assert sink.commands == []
    ip.call("GETEX", "k", "EX", "200")
    t = ip.srv.now_ms + 200_000
    assert sink.commands[1:] == [[b"PEXPIREAT", b"k", b"%d" % t]]
    assert db0(ip).get_expire(b"k") == t
    assert effects(ip, ("GETEX", "k", "PXAT", str(FAR))) == [[b"PEXPIREAT", b"k", b"%d" % FAR]]
    assert effects(ip, ("GETEX", "k", "EXAT", "4102444800")) == [[b"PEXPIREAT", b"k", b"4102444800000"]]
    assert effects(ip, ("GETEX", "k", "PERSIST"), ("GETEX", "k", "PERSIST")) == [[b"PERSIST", b"k"]]
    assert db0(ip).get_expire(b"k") == -1


def test_getex_past_absolute_time_deletes(ip: InProcess) -> None:
    ip.call("SET", "k", "v")
    assert effects(ip, ("GETEX", "k", "PXAT", "1")) == [[b"DEL", b"k"]]
    assert b"k" not in db0(ip).data
    ip.srv.cfg.lazyfree_lazy_expire = True
    ip.call("SET", "k", "v")
    sink = ip.record()
    assert ip.call("GETEX", "k", "EXAT", "1") == b"v"
    assert sink.commands[1:] == [[b"UNLINK", b"k"]]


def test_getex_on_replica_stream_does_not_delete(ip: InProcess) -> None:
    ip.call("SET", "k", "v")
    ip.srv.is_replica = True
    ip.srv.executing_primary_stream = True
    assert ip.call("GETEX", "k", "PXAT", "1") == b"v"
    assert db0(ip).get_expire(b"k") == 1


def test_incrbyfloat_becomes_set_keepttl(ip: InProcess) -> None:
    ip.call("SET", "f", "1", "PXAT", str(FAR))
    assert effects(ip, ("INCRBYFLOAT", "f", "0.25"), ("incrbyfloat", "g", "0.1")) == [
        [b"SET", b"f", b"1.25", b"KEEPTTL"],
        [b"SET", b"g", b"0.1", b"KEEPTTL"],
    ]
    assert db0(ip).get_expire(b"f") == FAR
    assert effects(ip, ("INCRBYFLOAT", "f", "abc"), ("INCRBYFLOAT", "f", "inf")) == []


def test_verbatim_writes(ip: InProcess) -> None:
    cmds = [
        ("MSET", "a", "1", "b", "2"),
        ("MSETNX", "c", "3", "d", "4"),
        ("APPEND", "a", "x"),
        ("APPEND", "a", ""),
        ("SETRANGE", "a", "5", "y"),
        ("INCR", "n"),
        ("DECR", "n"),
        ("INCRBY", "n", "5"),
        ("DECRBY", "n", "2"),
        ("SETBIT", "bits", "7", "1"),
        ("BITFIELD", "bf", "SET", "u8", "0", "200", "INCRBY", "u8", "0", "100"),
        ("BITOP", "AND", "dest", "a", "b"),
    ]
    assert effects(ip, *cmds) == [[a.encode() for a in cmd] for cmd in cmds]


def test_noop_writes_record_nothing(ip: InProcess) -> None:
    ip.call("SET", "a", "1")
    ip.call("SETBIT", "bits", "7", "1")
    ip.call("BITFIELD", "bf", "SET", "u8", "0", "200")
    assert (
        effects(
            ip,
            ("MSETNX", "a", "1", "z", "2"),
            ("SETRANGE", "a", "0", ""),
            ("SETRANGE", "nokey", "3", ""),
            ("SETBIT", "bits", "7", "1"),
            ("SETBIT", "bits", "6", "0"),
            ("BITFIELD", "bf", "SET", "u8", "0", "200"),
            ("BITFIELD", "bf", "INCRBY", "u8", "0", "0", "GET", "u8", "0"),
            ("BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "100"),
            ("BITFIELD", "nofail", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "10"),
            ("BITOP", "OR", "dest", "nokey"),
            ("INCR", "a", "x"),
            ("INCRBY", "a", "x"),
            ("GETDEL", "nokey"),
        )
        == []
    )
    # BITFIELD ... FAIL still created the key (as Redis does), silently
    assert db0(ip).data[b"nofail"] == bytearray(1)


def test_bitop_deleting_destination_is_verbatim(ip: InProcess) -> None:
    ip.call("SET", "dest", "x")
    assert effects(ip, ("BITOP", "AND", "dest", "nokey")) == [[b"BITOP", b"AND", b"dest", b"nokey"]]
    assert b"dest" not in db0(ip).data


def test_set_ex_inside_multi_is_rewritten_and_wrapped(ip: InProcess) -> None:
    sink = ip.record()
    for cmd in (("MULTI",), ("SET", "a", "1", "EX", "10"), ("INCRBYFLOAT", "b", "1.5"), ("EXEC",)):
        ip.call(*cmd)
    t = ip.srv.now_ms + 10_000
    assert sink.commands == [
        [b"SELECT", b"0"],
        [b"MULTI"],
        [b"SET", b"a", b"1", b"PXAT", b"%d" % t],
        [b"SET", b"b", b"1.5", b"KEEPTTL"],
        [b"EXEC"],
    ]


def test_effects_carry_the_clients_db(ip: InProcess) -> None:
    sink = ip.record()
    ip.call("SELECT", "3")
    ip.call("GETSET", "k", "v")
    assert sink.commands == [[b"SELECT", b"3"], [b"SET", b"k", b"v"]]


# -- replies that depend on time or state --------------------------------------------


def test_expire_time_errors_name_the_command(ip: InProcess) -> None:
    assert ip.call("SET", "k", "v", "EX", "0") == Err("ERR invalid expire time in 'set' command")
    assert ip.call("SETEX", "k", "-1", "v") == Err("ERR invalid expire time in 'setex' command")
    assert ip.call("PSETEX", "k", "0", "v") == Err("ERR invalid expire time in 'psetex' command")
    ip.call("SET", "k", "v")
    assert ip.call("GETEX", "k", "EX", "0") == Err("ERR invalid expire time in 'getex' command")
    assert ip.call("SET", "k", "v", "PX", str(2**63 - 1)) == Err("ERR invalid expire time in 'set' command")


def test_ttl_kept_or_dropped(ip: InProcess) -> None:
    db = db0(ip)
    ip.call("SET", "k", "5", "PXAT", str(FAR))
    for cmd in (("INCR", "k"), ("APPEND", "k", "1"), ("SETRANGE", "k", "0", "7"), ("SETBIT", "k", "0", "1")):
        ip.call(*cmd)
        assert db.get_expire(b"k") == FAR, cmd
    for cmd in (("SET", "k", "v"), ("GETSET", "k", "v"), ("MSET", "k", "v")):
        db.set_expire(b"k", FAR)
        ip.call(*cmd)
        assert db.get_expire(b"k") == -1, cmd
    ip.call("SET", "src", "x")
    db.set_expire(b"dest", FAR)
    ip.call("SET", "dest", "y")
    db.set_expire(b"dest", FAR)
    ip.call("BITOP", "OR", "dest", "src")
    assert db.get_expire(b"dest") == -1


def test_expired_key_is_missing_for_every_command(ip: InProcess) -> None:
    ip.call("SET", "k", "10")
    expire_past(ip, b"k")
    assert ip.call("STRLEN", "k") == 0
    ip.call("SET", "k", "10")
    expire_past(ip, b"k")
    assert ip.call("INCR", "k") == 1
    ip.call("SET", "k", "abc")
    expire_past(ip, b"k")
    assert ip.call("SET", "k", "x", "NX") == OK
    expire_past(ip, b"k")
    assert ip.call("MSETNX", "k", "1") == 1
    expire_past(ip, b"k")
    assert ip.call("SETRANGE", "k", "2", "z") == 3
    expire_past(ip, b"k")
    assert ip.call("BITPOS", "k", "0") == 0


# -- OBJECT ENCODING ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, enc",
    [
        (b"0", b"int"),
        (b"-1", b"int"),
        (b"12345678901234567890", b"embstr"),  # > int64
        (b"9223372036854775807", b"int"),
        (b"-9223372036854775808", b"int"),
        (b"01", b"embstr"),
        (b"+1", b"embstr"),
        (b" 1", b"embstr"),
        (b"-0", b"embstr"),
        (b"1.5", b"embstr"),
        (b"", b"embstr"),
        (b"x" * 44, b"embstr"),
        (b"x" * 45, b"raw"),
        (bytearray(b"1"), b"raw"),
        (bytearray(), b"raw"),
    ],
)
def test_string_encoding(value: bytes, enc: bytes) -> None:
    assert string_encoding(value) == enc


def test_in_place_changes_make_raw(ip: InProcess) -> None:
    db = db0(ip)
    ip.call("SET", "a", "12")
    ip.call("APPEND", "a", "3")
    ip.call("APPEND", "new", "12")
    ip.call("SETRANGE", "r", "0", "ab")
    ip.call("SET", "s", "abc")
    ip.call("SETBIT", "s", "0", "0")  # no bit changed, still unshared
    ip.call("SET", "t", "1")
    ip.call("BITOP", "AND", "dest", "t")
    ip.call("SET", "u", "1")
    ip.call("BITFIELD", "u", "GET", "u8", "0")  # reads leave it alone
    ip.call("INCR", "a")
    encs = {k: string_encoding(db.data[k]) for k in (b"a", b"new", b"r", b"s", b"dest", b"u")}
    assert encs == {b"a": b"int", b"new": b"int", b"r": b"raw", b"s": b"raw", b"dest": b"raw", b"u": b"int"}


def test_raw_values_are_copied_into_replies(ip: InProcess) -> None:
    ip.call("APPEND", "k", "ab")
    ip.call("APPEND", "k", "c")
    for cmd in (("GET", "k"), ("GETSET", "k2", "x"), ("GETRANGE", "k", "0", "-1"), ("GETEX", "k")):
        r = ip.call(*cmd)
        assert r is None or type(r) is bytes, cmd
    assert [type(x) for x in ip.call("MGET", "k", "k")] == [bytes, bytes]
    ip.call("MULTI")
    ip.call("GET", "k")
    ip.call("APPEND", "k", "d")
    assert ip.call("EXEC") == [b"abc", 4]


# -- keyspace notifications --------------------------------------------------------------


class Events:
    """Records srv.notify calls as "event:key" (the keyevent view)."""

    def __init__(self, ip: InProcess) -> None:
        self.got: list[str] = []
        ip.srv.cfg.notify_keyspace_events = (1 << 14) - 1
        ip.srv.notify = self.notify  # type: ignore[method-assign]

    def notify(self, cls: int, event: bytes, key: bytes, dbid: int) -> None:
        if event not in (b"new", b"keymiss"):  # "n" and "m" are not in KEA, where these were observed
            self.got.append(f"{event.decode()}:{key.decode()}")

    def take(self) -> list[str]:
        got, self.got = self.got, []
        return got


# Observed on redis-server 7.0.15 (notify-keyspace-events KEA, active expiry off).
NOTIFICATIONS: list[tuple[tuple[str, ...], list[str]]] = [
    (("SET", "k", "v"), ["set:k"]),
    (("SET", "k", "v", "EX", "100"), ["set:k", "expire:k"]),
    (("SET", "k", "v", "KEEPTTL"), ["set:k"]),
    (("SET", "k", "v2", "GET"), ["set:k"]),
    (("SET", "k", "v", "NX"), []),
    (("SETNX", "k", "v"), []),
    (("SETNX", "k2", "v"), ["set:k2"]),
    (("SETEX", "k", "100", "v"), ["set:k", "expire:k"]),
    (("PSETEX", "k", "100000", "v"), ["set:k", "expire:k"]),
    (("GETSET", "k", "v3"), ["set:k"]),
    (("GETEX", "k", "EX", "100"), ["expire:k"]),
    (("GETEX", "k", "PERSIST"), ["persist:k"]),
    (("GETEX", "k", "PERSIST"), []),
    (("GETEX", "k", "PXAT", "1"), ["del:k"]),
    (("SET", "k", "v"), ["set:k"]),
    (("GETDEL", "k"), ["del:k"]),
    (("GETDEL", "k"), []),
    (("MSET", "a", "1", "b", "2"), ["set:a", "set:b"]),
    (("MSETNX", "a", "1", "c", "3"), []),
    (("MSETNX", "c", "1", "d", "3"), ["set:c", "set:d"]),
    (("APPEND", "a", "x"), ["append:a"]),
    (("APPEND", "new", "x"), ["append:new"]),
    (("SETRANGE", "a", "0", "y"), ["setrange:a"]),
    (("SETRANGE", "a", "0", ""), []),
    (("SETRANGE", "new2", "2", "y"), ["setrange:new2"]),
    (("INCR", "n"), ["incrby:n"]),
    (("INCRBY", "n", "5"), ["incrby:n"]),
    (("DECR", "n"), ["incrby:n"]),
    (("DECRBY", "n", "2"), ["incrby:n"]),
    (("INCRBYFLOAT", "f", "1.5"), ["incrbyfloat:f"]),
    (("SETBIT", "bits", "7", "1"), ["setbit:bits"]),
    (("SETBIT", "bits", "7", "1"), []),
    (("SETBIT", "bits", "100", "0"), ["setbit:bits"]),
    (("BITFIELD", "bf", "SET", "u8", "0", "200"), ["setbit:bf"]),
    (("BITFIELD", "bf", "SET", "u8", "0", "200"), []),
    (("BITFIELD", "bf", "GET", "u8", "0"), []),
    (("BITFIELD", "bf2", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "10"), []),
    (("BITOP", "AND", "dest", "a", "b"), ["set:dest"]),
    (("BITOP", "AND", "dest", "nokey"), ["del:dest"]),
    (("BITOP", "AND", "dest", "nokey"), []),
]


def test_keyspace_notifications(ip: InProcess) -> None:
    ev = Events(ip)
    for cmd, expected in NOTIFICATIONS:
        ip.call(*cmd)
        assert ev.take() == expected, cmd


# Observed with a key whose TTL had passed (active expiry off).
EXPIRED_NOTIFICATIONS: list[tuple[tuple[str, ...], list[str]]] = [
    (("GET", "exp"), ["expired:exp"]),
    (("SET", "exp", "v2"), ["expired:exp", "set:exp"]),
    (("MSET", "exp", "1"), ["expired:exp", "set:exp"]),
    (("INCR", "exp"), ["expired:exp", "incrby:exp"]),
    (("GETSET", "exp", "1"), ["expired:exp", "set:exp"]),
    (("MSETNX", "exp", "1", "exp2", "2"), ["expired:exp", "set:exp", "set:exp2"]),
    (("SET", "exp", "v", "GET"), ["expired:exp", "set:exp"]),
    (("SET", "exp", "v", "EXAT", "1"), ["expired:exp", "set:exp", "expire:exp"]),
    # BITOP deletes an expired destination without looking it up first
    (("BITOP", "OR", "exp", "nokey"), ["del:exp"]),
]


@pytest.mark.parametrize(
    "cmd, expected", EXPIRED_NOTIFICATIONS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else ""
)
def test_notifications_on_expired_key(ip: InProcess, cmd: tuple[str, ...], expected: list[str]) -> None:
    ip.call("SET", "exp", "v")
    expire_past(ip, b"exp")
    ev = Events(ip)
    ip.call(*cmd)
    assert ev.take() == expected


# -- WATCH ----------------------------------------------------------------------------------


def test_watch_is_touched_only_by_real_changes(ip: InProcess) -> None:
    c = ip.client
    ip.call("SET", "s", "abc")
    ip.call("WATCH", "s")
    other = ip.new_client()
    for cmd in (
        ("SETBIT", "s", "0", "0"),
        ("SETRANGE", "s", "0", ""),
        ("GETEX", "s"),
        ("GETEX", "s", "PERSIST"),
        ("BITFIELD", "s", "SET", "u8", "0", "97"),
        ("MSETNX", "s", "x"),
    ):
        ip.call(*cmd, client=other)
        assert not c.dirty_cas, cmd
    ip.call("SETBIT", "s", "0", "1", client=other)
    assert c.dirty_cas


@pytest.mark.parametrize(
    "cmd",
    [
        ("APPEND", "s", ""),
        ("GETEX", "s", "EX", "10"),
        ("INCRBYFLOAT", "s", "0"),
        ("GETSET", "s", "1"),
        ("GETDEL", "s"),
        ("SETRANGE", "s", "0", "1"),
    ],
)
def test_watch_touched_by_writes(ip: InProcess, cmd: tuple[str, ...]) -> None:
    ip.call("SET", "s", "1")
    ip.call("WATCH", "s")
    ip.call(*cmd, client=ip.new_client())
    assert ip.client.dirty_cas


# -- wrong type -----------------------------------------------------------------------------


WRONGTYPE_CMDS = [
    ("GET", "l"),
    ("SET", "l", "v", "GET"),
    ("GETSET", "l", "v"),
    ("GETEX", "l", "PERSIST"),
    ("GETEX", "l", "EX", "-1"),
    ("GETDEL", "l"),
    ("APPEND", "l", "x"),
    ("STRLEN", "l"),
    ("SETRANGE", "l", "0", "x"),
    ("SETRANGE", "l", "0", ""),
    ("GETRANGE", "l", "0", "1"),
    ("SUBSTR", "l", "0", "1"),
    ("INCR", "l"),
    ("DECR", "l"),
    ("INCRBY", "l", "1"),
    ("DECRBY", "l", "1"),
    ("INCRBYFLOAT", "l", "1"),
    ("SETBIT", "l", "0", "1"),
    ("GETBIT", "l", "0"),
    ("BITCOUNT", "l"),
    ("BITCOUNT", "l", "0", "x"),
    ("BITPOS", "l", "1"),
    ("BITOP", "AND", "dest", "s", "l"),
    ("BITFIELD", "l", "GET", "u8", "0"),
    ("BITFIELD", "l", "SET", "u8", "0", "1"),
    ("BITFIELD", "l"),
    ("BITFIELD_RO", "l", "GET", "u8", "0"),
]


@pytest.mark.parametrize("cmd", WRONGTYPE_CMDS, ids=lambda c: " ".join(c))
def test_wrongtype(ip: InProcess, cmd: tuple[str, ...]) -> None:
    ip.call("SET", "s", "abc")
    db0(ip).data[b"l"] = FakeList()
    sink = ip.record()
    assert ip.call(*cmd) == WRONGTYPE
    assert sink.commands == []
    assert type(db0(ip).data[b"l"]) is FakeList


def test_wrongtype_errors_come_after_argument_errors(ip: InProcess) -> None:
    db0(ip).data[b"l"] = FakeList()
    assert ip.call("SETRANGE", "l", "-1", "x") == Err("ERR offset is out of range")
    assert ip.call("GETRANGE", "l", "a", "1") == Err("ERR value is not an integer or out of range")
    assert ip.call("SETBIT", "l", "0", "2") == Err("ERR bit is not an integer or out of range")
    assert ip.call("BITPOS", "l", "3") == Err("ERR The bit argument must be 1 or 0.")
    assert ip.call("BITFIELD", "l", "GET", "u64", "0") == Err(
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
    )
    assert ip.call("SET", "l", "v", "GET", "EX", "0") == Err("ERR invalid expire time in 'set' command")
    assert ip.call("INCRBY", "l", "x") == Err("ERR value is not an integer or out of range")


def test_non_strings_in_mget_lcs_and_plain_set(ip: InProcess) -> None:
    db0(ip).data[b"l"] = FakeList()
    ip.call("SET", "s", "abc")
    assert ip.call("MGET", "s", "l", "nokey") == [b"abc", None, None]
    err = Err("ERR The specified keys must contain string values")
    assert ip.call("LCS", "s", "l") == err
    assert ip.call("LCS", "l", "s", "LEN", "foo") == err
    assert ip.call("SET", "l", "v") == OK
    db0(ip).data[b"l"] = FakeList()
    assert ip.call("MSET", "l", "v") == OK
    db0(ip).data[b"l"] = FakeList()
    assert ip.call("MSETNX", "l", "v") == 0
    assert ip.call("SETNX", "l", "v") == 0
    assert ip.call("SETEX", "l", "10", "v") == OK
    assert db0(ip).data[b"l"] == b"v"


# -- size limits ----------------------------------------------------------------------------


def test_size_limits_refuse_before_allocating(ip: InProcess) -> None:
    ip.srv.cfg.proto_max_bulk_len = 1024 * 1024
    too_big = Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    bad_offset = Err("ERR bit offset is not an integer or out of range")
    assert ip.call("SETRANGE", "k", str(1024 * 1024), "a") == too_big
    assert ip.call("SETRANGE", "k", str(2**63 - 1), "a") == too_big
    assert ip.call("SETRANGE", "k", str(1024 * 1024 - 1), "a") == 1024 * 1024
    assert ip.call("APPEND", "k", "b") == too_big
    assert ip.call("SETBIT", "b", str(8 * 1024 * 1024), "1") == bad_offset
    assert ip.call("BITFIELD", "b", "SET", "u8", str(8 * 1024 * 1024), "1") == bad_offset
    assert ip.call("SETBIT", "b", str(8 * 1024 * 1024 - 1), "1") == 0
    ip.call("SET", "x", "a" * 600)
    ip.call("SET", "y", "a" * 600)
    assert ip.call("LCS", "x", "y") == Err(
        "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
    )


def test_primary_link_ignores_size_limits(ip: InProcess) -> None:
    ip.srv.cfg.proto_max_bulk_len = 1024 * 1024
    ip.client.is_primary_link = True
    assert ip.call("SETRANGE", "k", str(1024 * 1024), "a") == 1024 * 1024 + 1
    assert ip.call("SETBIT", "b", str(8 * 1024 * 1024), "1") == 0


# -- LCS --------------------------------------------------------------------------------------


def _lcs_table(a: bytes, b: bytes) -> list[list[int]]:
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
    return t


def test_bit_parallel_lcs_table_matches_dp() -> None:
    rnd = random.Random(1234)
    for _ in range(150):
        alpha = rnd.choice([b"ab", b"ACGT", bytes(range(256))])
        a = bytes(rnd.choice(alpha) for _ in range(rnd.randint(0, 30)))
        b = bytes(rnd.choice(alpha) for _ in range(rnd.randint(0, 30)))
        t = _lcs_table(a, b)
        rows = _lcs_rows(a, b)
        for i in range(len(a) + 1):
            for j in range(len(b) + 1):
                assert _lcs_at(rows, i, j) == t[i][j]


def test_lcs_idx_reply_shape(ip: InProcess) -> None:
    ip.call("MSET", "a", "ohmytext", "b", "mynewtext")
    r = ip.call("LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN")
    assert r == Map([(b"matches", [[[4, 7], [5, 8], 4]]), (b"len", 6)])
    assert ip.call("LCS", "a", "b") == b"mytext"


# -- misc ---------------------------------------------------------------------------------------


def test_bitfield_reply_values(ip: InProcess) -> None:
    assert ip.call("BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "10", "GET", "u2", "0") == [
        None,
        0,
    ]
    assert ip.call("BITFIELD_RO", "bf", "SET", "u8", "0", "1") == Err(
        "ERR BITFIELD_RO only supports the GET subcommand"
    )
    assert ip.call("BITFIELD", "nokey") == []
    assert ip.call("GET", "nokey") is None
    assert ip.call("GETEX", "nokey", "EX", "abc") is None
