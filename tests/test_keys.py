"""Keyspace and expiry behaviour the differential corpus cannot show: effects
as recorded for the AOF/replicas (RecordingSink), keyspace events, WATCH
invalidation, the active expiry cycle, SCAN's guarantees and SORT over list,
set and zset values (stand-in value classes until the real types exist;
expected outputs were taken from redis-server 7.0.15)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from ambry.server import registry
from ambry.server.commands import expire as expire_mod
from ambry.server.commands import keys as keys_mod
from ambry.server.reply import NULL_ARRAY, OK, Err, Status
from conftest import InProcess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# -- helpers ------------------------------------------------------------------------


def past(inproc: InProcess, key: bytes, dbid: int = 0, ms: int = 10) -> None:
    """Make ``key`` logically expired without sleeping (the cron is not running)."""
    inproc.srv.dbs[dbid].expires[key] = int(time.time() * 1000) - ms


def record_events(inproc: InProcess) -> list[tuple[bytes, bytes, int]]:
    """Turn on every keyspace event class and collect (event, key, db)."""
    srv = inproc.srv
    srv.cfg.notify_keyspace_events = (1 << 14) - 1 - (1 << 12) - 1  # E + all classes, no K
    events: list[tuple[bytes, bytes, int]] = []
    orig = srv.publish

    def publish(channel: bytes, message: bytes) -> int:
        if channel.startswith(b"__keyevent@"):
            db, ev = channel[len(b"__keyevent@") :].split(b"__:", 1)
            events.append((ev, message, int(db)))
        return orig(channel, message)

    srv.publish = publish  # type: ignore[method-assign]
    return events


def has(name: str) -> bool:
    return registry.lookup_name(name.encode()) is not None


class FakeList:
    """Stand-in list value: the generic protocol keys.py relies on."""

    redis_type = b"list"

    def __init__(self, items: Any) -> None:
        self.items = [bytes(x) if not isinstance(x, str) else x.encode() for x in items]

    def sort_elements(self) -> list[bytes]:
        return list(self.items)

    def copy(self) -> FakeList:
        return type(self)(self.items)

    def encoding(self) -> bytes:
        return b"quicklist"


class FakeSet(FakeList):
    redis_type = b"set"

    def encoding(self) -> bytes:
        return b"hashtable"


class FakeZset(FakeList):
    """Members given in rank order."""

    redis_type = b"zset"

    def encoding(self) -> bytes:
        return b"skiplist"


class FakeHash:
    redis_type = b"hash"

    def __init__(self, d: dict[bytes, bytes]) -> None:
        self.d = dict(d)

    def get(self, f: bytes) -> bytes | None:
        return self.d.get(f)

    def copy(self) -> FakeHash:
        return FakeHash(self.d)


def put(inproc: InProcess, key: str, value: Any, dbid: int = 0) -> None:
    inproc.srv.dbs[dbid].add(key.encode(), value)


def b(*xs: Any) -> list[Any]:
    return [x if x is None or isinstance(x, bytes) else str(x).encode() for x in xs]


# -- effects: expiry commands ---------------------------------------------------------


def test_expire_is_recorded_as_pexpireat_with_absolute_ms(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "k", "v")
    t0 = int(time.time() * 1000)
    assert inproc.call("EXPIRE", "k", "100") == 1
    t1 = int(time.time() * 1000)
    cmd = sink.commands[-1]
    assert cmd[:2] == [b"PEXPIREAT", b"k"] and len(cmd) == 3
    assert t0 + 100_000 <= int(cmd[2]) <= t1 + 100_000
    assert inproc.srv.dbs[0].expires[b"k"] == int(cmd[2])


def test_expire_flags_keep_their_spelling(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "k", "v", "EX", "10")
    assert inproc.call("expire", "k", "100", "gt") == 1
    assert sink.commands[-1][0] == b"PEXPIREAT" and sink.commands[-1][3:] == [b"gt"]
    assert inproc.call("PEXPIRE", "k", "50000", "Lt") == 1
    assert sink.commands[-1][3:] == [b"Lt"]
    assert inproc.call("EXPIREAT", "k", "4102444800", "XX") == 1
    assert sink.commands[-1] == [b"PEXPIREAT", b"k", b"4102444800000", b"XX"]


def test_pexpireat_is_recorded_verbatim(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "k", "v")
    inproc.call("pexpireat", "k", "4102444800123", "nx")
    assert sink.commands[-1] == [b"pexpireat", b"k", b"4102444800123", b"nx"]


@pytest.mark.parametrize(
    "cmd",
    [("EXPIRE", "k", "-1"), ("PEXPIRE", "k", "0"), ("EXPIREAT", "k", "1"), ("PEXPIREAT", "k", "1000"),
     ("EXPIRE", "k", "-1", "LT")],
)
def test_past_expire_time_deletes_and_records_del(inproc: InProcess, cmd: tuple[str, ...]) -> None:
    sink = inproc.record()
    inproc.call("SET", "k", "v", "EX", "100")
    events = record_events(inproc)
    assert inproc.call(*cmd) == 1
    assert sink.commands[-1] == [b"DEL", b"k"]
    assert b"k" not in inproc.srv.dbs[0].data
    assert events == [(b"del", b"k", 0)]


def test_past_expire_time_records_unlink_with_lazyfree_lazy_expire(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.srv.cfg.lazyfree_lazy_expire = True
    inproc.call("SET", "k", "v")
    inproc.call("EXPIRE", "k", "-5")
    assert sink.commands[-1] == [b"UNLINK", b"k"]


@pytest.mark.parametrize("flag", ["replica", "loading"])
def test_past_expire_time_is_stored_on_replicas_and_while_loading(inproc: InProcess, flag: str) -> None:
    inproc.call("SET", "k", "v")
    argv = [b"PEXPIREAT", b"k", b"1000"]
    if flag == "replica":
        inproc.srv.is_replica = True
        assert inproc.call(*argv) == 1
    else:  # the AOF loader enters through call(), past the LOADING check
        inproc.srv.loading = True
        cmd = registry.lookup(argv)
        assert cmd is not None
        assert inproc.srv.call(inproc.client, cmd, argv) == 1
    db = inproc.srv.dbs[0]
    assert b"k" in db.data and db.expires[b"k"] == 1000


def test_expire_that_changes_nothing_records_nothing(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "k", "v", "EX", "100")
    n = len(sink.commands)
    assert inproc.call("EXPIRE", "nokey", "10") == 0
    assert inproc.call("EXPIRE", "k", "10", "NX") == 0
    assert inproc.call("EXPIRE", "k", "10", "GT") == 0
    assert inproc.call("EXPIRE", "k", "1000", "LT") == 0
    assert inproc.call("PERSIST", "nokey") == 0
    assert isinstance(inproc.call("EXPIRE", "k", "10", "NX", "XX"), Err)
    assert len(sink.commands) == n


def test_persist_is_recorded_only_when_a_ttl_was_removed(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "k", "v")
    inproc.call("PERSIST", "k")
    assert sink.commands[-1] == [b"SET", b"k", b"v"]
    inproc.call("EXPIRE", "k", "100")
    assert inproc.call("persist", "k") == 1
    assert sink.commands[-1] == [b"persist", b"k"]


def test_expire_events(inproc: InProcess) -> None:
    inproc.call("SET", "k", "v")
    events = record_events(inproc)
    inproc.call("EXPIRE", "k", "100")
    inproc.call("EXPIRE", "k", "50", "NX")
    inproc.call("PERSIST", "k")
    inproc.call("PEXPIREAT", "k", "1")
    assert events == [(b"expire", b"k", 0), (b"persist", b"k", 0), (b"del", b"k", 0)]


def test_ttl_of_logically_expired_key_is_minus_two_and_deletes_it(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "k", "v", "EX", "100")
    past(inproc, b"k")
    assert inproc.call("TTL", "k") == -2
    assert sink.commands[-1] == [b"DEL", b"k"]
    assert inproc.srv.stat_keyspace_misses == 1


def test_expire_arithmetic_overflow_errors(inproc: InProcess) -> None:
    inproc.call("SET", "k", "v")
    assert inproc.call("EXPIRE", "k", "9223372036854776") == Err("ERR invalid expire time in 'expire' command")
    assert inproc.call("EXPIRE", "k", "-9223372036854776") == Err("ERR invalid expire time in 'expire' command")
    assert inproc.call("EXPIREAT", "k", "-9223372036854775") == 1  # C division truncates toward zero
    inproc.call("SET", "k", "v")
    assert inproc.call("pexpire", "k", "9223372036854775807") == Err(
        "ERR invalid expire time in 'pexpire' command"
    )


# -- effects: lazy expiry ---------------------------------------------------------------


def test_lazy_expiry_on_get_records_del_alone(inproc: InProcess) -> None:
    if not has("get"):
        pytest.skip("GET is not registered yet")
    sink = inproc.record()
    inproc.call("SET", "k", "v", "PX", "100000")
    past(inproc, b"k")
    n = len(sink.commands)
    assert inproc.call("GET", "k") is None
    assert sink.commands[n:] == [[b"DEL", b"k"]]


def test_incr_on_expired_key_is_wrapped_with_its_del(inproc: InProcess) -> None:
    if not has("incr"):
        pytest.skip("INCR is not registered yet")
    sink = inproc.record()
    inproc.call("SET", "k", "5", "PX", "100000")
    past(inproc, b"k")
    n = len(sink.commands)
    assert inproc.call("incr", "k") == 1
    assert sink.commands[n:] == [[b"MULTI"], [b"DEL", b"k"], [b"incr", b"k"], [b"EXEC"]]


def test_del_of_expired_key_records_only_the_expiry(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "k", "v")
    past(inproc, b"k")
    events = record_events(inproc)
    n = len(sink.commands)
    assert inproc.call("DEL", "k") == 0
    assert sink.commands[n:] == [[b"DEL", b"k"]]
    assert events == [(b"expired", b"k", 0)]


def test_scan_expiring_keys_emits_bare_dels(inproc: InProcess) -> None:
    sink = inproc.record()
    for k in ("a", "b", "c"):
        inproc.call("SET", k, "v")
        past(inproc, k.encode())
    inproc.call("SET", "live", "v")
    n = len(sink.commands)
    reply = inproc.call("SCAN", "0")
    assert reply == [b"0", [b"live"]]
    assert sorted(map(tuple, sink.commands[n:])) == [(b"DEL", b"a"), (b"DEL", b"b"), (b"DEL", b"c")]
    # inside a transaction the same DELs are wrapped with the unit
    for k in ("d", "e"):
        inproc.call("SET", k, "v")
        past(inproc, k.encode())
    n = len(sink.commands)
    inproc.call("MULTI")
    inproc.call("SCAN", "0")
    inproc.call("EXEC")
    assert sink.commands[n] == [b"MULTI"] and sink.commands[-1] == [b"EXEC"]


def test_randomkey_expiring_keys_emits_bare_dels(inproc: InProcess) -> None:
    sink = inproc.record()
    for k in ("a", "b"):
        inproc.call("SET", k, "v")
        past(inproc, k.encode())
    n = len(sink.commands)
    assert inproc.call("RANDOMKEY") is None
    assert sorted(map(tuple, sink.commands[n:])) == [(b"DEL", b"a"), (b"DEL", b"b")]


# -- effects: generic commands ----------------------------------------------------------


def test_generic_writes_are_recorded_verbatim(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "a", "1")
    inproc.call("DEL", "nokey")
    inproc.call("rename", "a", "b")
    inproc.call("COPY", "b", "c", "DB", "2")
    inproc.call("MOVE", "b", "1")
    inproc.call("SWAPDB", "1", "2")
    inproc.call("UNLINK", "nokey")
    inproc.call("renamenx", "nokey", "x")
    assert sink.commands == [
        [b"SELECT", b"0"], [b"SET", b"a", b"1"], [b"rename", b"a", b"b"], [b"COPY", b"b", b"c", b"DB", b"2"],
        [b"MOVE", b"b", b"1"], [b"SWAPDB", b"1", b"2"],
    ]


def test_flushes_are_always_recorded_and_count_dirty_like_redis(inproc: InProcess) -> None:
    sink = inproc.record()
    srv = inproc.srv
    d0 = srv.dirty
    inproc.call("FLUSHDB")
    assert sink.commands[-1] == [b"FLUSHDB"] and srv.dirty == d0
    inproc.call("SET", "a", "1")
    inproc.call("SET", "b", "1")
    d0 = srv.dirty
    inproc.call("FLUSHDB", "async")
    assert sink.commands[-1] == [b"FLUSHDB", b"async"] and srv.dirty == d0 + 2
    d0 = srv.dirty
    inproc.call("FLUSHALL")  # an empty dataset: dirty unchanged, still propagated
    assert sink.commands[-1] == [b"FLUSHALL"] and srv.dirty == d0
    inproc.call("SET", "a", "1")
    inproc.call("SELECT", "3")
    inproc.call("SET", "b", "1")
    inproc.call("SET", "c", "1")
    d0 = srv.dirty
    inproc.call("FLUSHALL", "SYNC")
    assert sink.commands[-1] == [b"FLUSHALL", b"SYNC"]
    assert srv.dirty == d0 + 3
    assert all(len(db) == 0 for db in srv.dbs)


def test_flushall_save_hook_runs_after_the_flush_and_may_reset_dirty(inproc: InProcess) -> None:
    """flushAllDataAndResetRDB: with save points, the synchronous rdbSave
    after the flush resets dirty (redis-server: rdb_changes_since_last_save
    is 0 right after FLUSHALL)."""
    srv = inproc.srv
    saved: list[int] = []

    def after_flushall() -> None:
        saved.append(srv.dirty)
        srv.dirty = 0  # what a synchronous rdbSave does

    srv.after_flushall = after_flushall  # type: ignore[attr-defined]
    inproc.call("SET", "a", "1")
    d0 = srv.dirty
    inproc.call("FLUSHALL")
    assert saved == [d0 + 1] and srv.dirty == 0


def test_sort_store_of_empty_result_deletes_target(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "dst", "v")
    events = record_events(inproc)
    assert inproc.call("SORT", "nokey", "STORE", "dst") == 0
    assert sink.commands[-1] == [b"SORT", b"nokey", b"STORE", b"dst"]
    assert events == [(b"keymiss", b"nokey", 0), (b"del", b"dst", 0)]
    n = len(sink.commands)
    assert inproc.call("SORT", "nokey", "STORE", "dst") == 0
    assert len(sink.commands) == n


# -- keyspace events -------------------------------------------------------------------


def test_generic_command_events_match_redis(inproc: InProcess) -> None:
    inproc.call("SET", "a", "1")
    events = record_events(inproc)
    inproc.call("RENAME", "a", "b")
    inproc.call("COPY", "b", "d")
    inproc.call("COPY", "b", "e", "DB", "1")
    inproc.call("MOVE", "d", "3")
    inproc.call("RENAMENX", "b", "b")
    inproc.call("DEL", "e", "nokey")
    for cmd in (("EXISTS", "nokey"), ("TYPE", "nokey"), ("TTL", "nokey"), ("OBJECT", "ENCODING", "nokey"),
                ("TOUCH", "nokey"), ("COPY", "nokey", "x"), ("EXPIRE", "nokey", "1"), ("SORT", "nokey")):
        inproc.call(*cmd)
    assert events == [
        (b"new", b"b", 0), (b"rename_from", b"a", 0), (b"rename_to", b"b", 0),
        (b"new", b"d", 0), (b"copy_to", b"d", 0),
        (b"new", b"e", 1), (b"copy_to", b"e", 1),
        (b"new", b"d", 3), (b"move_from", b"d", 0), (b"move_to", b"d", 3),
        (b"keymiss", b"nokey", 0), (b"keymiss", b"nokey", 0), (b"keymiss", b"nokey", 0),
        (b"keymiss", b"nokey", 0), (b"keymiss", b"nokey", 0), (b"keymiss", b"nokey", 0),
    ]


def test_flush_and_swapdb_emit_no_events(inproc: InProcess) -> None:
    inproc.call("SET", "a", "1")
    events = record_events(inproc)
    inproc.call("SWAPDB", "0", "1")
    inproc.call("FLUSHDB")
    inproc.call("FLUSHALL")
    assert events == []


# -- WATCH invalidation ----------------------------------------------------------------------


def test_watch_is_invalidated_by_active_expiry(inproc: InProcess) -> None:
    inproc.call("SET", "k", "v", "PX", "100000")
    inproc.call("WATCH", "k")
    past(inproc, b"k")
    expire_mod.active_expire_cycle(inproc.srv)
    assert b"k" not in inproc.srv.dbs[0].data
    inproc.call("MULTI")
    inproc.call("SET", "x", "1")
    assert inproc.call("EXEC") is NULL_ARRAY


def test_watch_is_invalidated_by_lazy_expiry_from_another_client(inproc: InProcess) -> None:
    other = inproc.new_client()
    inproc.call("SET", "k", "v", "PX", "100000")
    inproc.call("WATCH", "k")
    past(inproc, b"k")
    assert inproc.call("EXISTS", "k", client=other) == 0
    inproc.call("MULTI")
    assert inproc.call("EXEC") is NULL_ARRAY


@pytest.mark.parametrize("flush", [("FLUSHALL",), ("FLUSHALL", "ASYNC"), ("FLUSHDB",)])
def test_watch_is_invalidated_by_flush(inproc: InProcess, flush: tuple[str, ...]) -> None:
    other = inproc.new_client()
    inproc.call("SET", "k", "v")
    inproc.call("WATCH", "k")
    inproc.call(*flush, client=other)
    inproc.call("MULTI")
    inproc.call("SET", "x", "1")
    assert inproc.call("EXEC") is NULL_ARRAY


def test_flush_leaves_watch_of_missing_keys_and_other_dbs_alone(inproc: InProcess) -> None:
    other = inproc.new_client()
    inproc.call("SET", "k", "v")
    inproc.call("WATCH", "nokey", "k")
    inproc.call("SELECT", "1", client=other)
    inproc.call("SET", "j", "v", client=other)
    inproc.call("FLUSHDB", client=other)
    inproc.call("MULTI")
    inproc.call("SET", "x", "1")
    assert inproc.call("EXEC") == [OK]
    inproc.call("DEL", "k")
    inproc.call("WATCH", "k")
    inproc.call("FLUSHALL", client=other)
    inproc.call("MULTI")
    assert inproc.call("EXEC") == []


def test_watch_is_invalidated_by_swapdb_bringing_the_key(inproc: InProcess) -> None:
    other = inproc.new_client()
    inproc.call("SELECT", "1", client=other)
    inproc.call("SET", "k", "from1", client=other)
    inproc.call("WATCH", "k")
    inproc.call("SWAPDB", "0", "1", client=other)
    inproc.call("MULTI")
    assert inproc.call("EXEC") is NULL_ARRAY
    assert inproc.call("DBSIZE") == 1


# -- active expiry ----------------------------------------------------------------------------


def test_active_expiry_deletes_each_key_in_its_own_unit(inproc: InProcess) -> None:
    sink = inproc.record()
    srv = inproc.srv
    for i in range(5):
        inproc.call("SET", f"k{i}", "v", "PX", "100000")
        past(inproc, f"k{i}".encode())
    inproc.call("SET", "live", "v", "EX", "100")
    inproc.call("SELECT", "2")
    inproc.call("SET", "d2", "v", "PX", "100000")
    past(inproc, b"d2", dbid=2)
    sink.commands.clear()
    units = sink.units
    events = record_events(inproc)
    expire_mod.active_expire_cycle(srv)
    assert [b"MULTI"] not in sink.commands and [b"EXEC"] not in sink.commands
    dels = [c for c in sink.commands if c[0] != b"SELECT"]
    assert sorted(map(tuple, dels)) == [(b"DEL", b"d2")] + [(b"DEL", f"k{i}".encode()) for i in range(5)]
    assert sink.units - units == 6
    assert srv.stat_expiredkeys == 6
    assert sorted(events) == sorted([(b"expired", f"k{i}".encode(), 0) for i in range(5)] + [(b"expired", b"d2", 2)])
    assert set(srv.dbs[0].data) == {b"live"}


def test_active_expiry_uses_unlink_with_lazyfree_lazy_expire(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.srv.cfg.lazyfree_lazy_expire = True
    inproc.call("SET", "k", "v", "PX", "100000")
    past(inproc, b"k")
    expire_mod.active_expire_cycle(inproc.srv)
    assert sink.commands[-1] == [b"UNLINK", b"k"]


@pytest.mark.parametrize("why", ["disabled", "replica", "loading", "paused"])
def test_active_expiry_does_not_run(inproc: InProcess, why: str) -> None:
    srv = inproc.srv
    inproc.call("SET", "k", "v", "PX", "100000")
    past(inproc, b"k")
    if why == "disabled":
        srv.active_expire_enabled = False
    elif why == "replica":
        srv.is_replica = True
    elif why == "loading":
        srv.loading = True
    else:
        srv.pause_type = "write"
        srv.pause_until = time.monotonic() + 60
    expire_mod.active_expire_cycle(srv)
    assert b"k" in srv.dbs[0].data


def test_active_expiry_reclaims_a_mostly_expired_db_quickly(inproc: InProcess) -> None:
    srv = inproc.srv
    db = srv.dbs[0]
    now = int(time.time() * 1000)
    for i in range(3000):
        db.data[b"x%d" % i] = b"v"
        db.expires[b"x%d" % i] = now - 1 if i % 10 else now + 10_000_000
    for _ in range(60):
        expire_mod.active_expire_cycle(srv)
        if len(db.expires) == 300:
            break
    assert len(db.data) == 300 and all(db.expires[k] > now for k in db.expires)
    assert srv.stat_expiredkeys == 2700


def test_active_expiry_cost_does_not_grow_with_the_keyspace(inproc: InProcess) -> None:
    srv = inproc.srv
    db = srv.dbs[0]
    far = int(time.time() * 1000) + 10_000_000
    for i in range(200_000):
        k = b"k%d" % i
        db.data[k] = b"v"
        db.expires[k] = far
    expire_mod.active_expire_cycle(srv)  # first pass takes the snapshot
    t0 = time.perf_counter()
    for _ in range(20):
        expire_mod.active_expire_cycle(srv)
    per_call = (time.perf_counter() - t0) / 20
    assert per_call < 0.005, per_call
    # A key that expires deep in the dict is still found within one pass.
    victim = b"k199990"
    db.expires[victim] = int(time.time() * 1000) - 1
    for _ in range(20_000):
        expire_mod.active_expire_cycle(srv)
        if victim not in db.data:
            break
    assert victim not in db.data


def test_active_expiry_respects_the_time_limit(inproc: InProcess) -> None:
    srv = inproc.srv
    db = srv.dbs[0]
    now = int(time.time() * 1000)
    for i in range(100_000):
        k = b"e%d" % i
        db.data[k] = b"v"
        db.expires[k] = now - 1
    t0 = time.perf_counter()
    expire_mod.active_expire_cycle(srv)
    took = time.perf_counter() - t0
    assert 0 < srv.stat_expiredkeys < 100_000
    assert took < 0.025 + 0.05, took  # 25% of a 100 ms cron period, plus slack
    assert srv.stat_expired_time_cap_reached_count == 1


# -- SCAN ------------------------------------------------------------------------------------


def full_scan(inproc: InProcess, *opts: str, client: Any = None) -> list[list[bytes]]:
    """The batches of one whole iteration."""
    batches = []
    cursor = b"0"
    for _ in range(100_000):
        cursor, batch = inproc.call("SCAN", cursor, *opts, client=client)
        batches.append(batch)
        if cursor == b"0":
            return batches
    raise AssertionError("SCAN did not terminate")


def test_scan_on_an_unchanged_keyspace_is_stable_and_exact(inproc: InProcess) -> None:
    keys = [f"key:{i}" for i in range(1000)]
    for k in keys:
        inproc.call("SET", k, "v")
    a = full_scan(inproc, "COUNT", "7")
    b_ = full_scan(inproc, "COUNT", "7")
    assert a == b_
    flat = [k for batch in a for k in batch]
    assert sorted(flat) == sorted(k.encode() for k in keys)  # each key exactly once
    assert len(a) == -(-1000 // 7)


def test_scan_repeating_a_cursor_repeats_its_batch(inproc: InProcess) -> None:
    for i in range(50):
        inproc.call("SET", f"k{i}", "v")
    cur, first = inproc.call("SCAN", "0", "COUNT", "10")
    again = inproc.call("SCAN", cur, "COUNT", "10")
    assert inproc.call("SCAN", cur, "COUNT", "10") == again
    assert set(first).isdisjoint(again[1])


def test_scan_small_db_answers_in_one_call(inproc: InProcess) -> None:
    for i in range(10):
        inproc.call("SET", f"k{i}", "v")
    cur, batch = inproc.call("SCAN", "0")
    assert cur == b"0" and len(batch) == 10
    assert not keys_mod._scan_state(inproc.srv).snaps  # no snapshot kept


def test_scan_count_is_about_positions_and_filters_after(inproc: InProcess) -> None:
    for i in range(40):
        inproc.call("SET", f"{'a' if i % 2 else 'b'}{i}", "v")
    batches = full_scan(inproc, "MATCH", "a*", "COUNT", "10")
    assert len(batches) == 4
    assert sorted(k for bt in batches for k in bt) == sorted(f"a{i}".encode() for i in range(1, 40, 2))


def test_scan_type_filter_with_other_types(inproc: InProcess) -> None:
    inproc.call("SET", "s", "v")
    put(inproc, "l", FakeList(["a"]))
    put(inproc, "h", FakeHash({b"f": b"v"}))
    assert inproc.call("SCAN", "0", "TYPE", "list") == [b"0", [b"l"]]
    assert inproc.call("SCAN", "0", "TYPE", "HASH") == [b"0", [b"h"]]
    assert inproc.call("TYPE", "l") == Status(b"list")


def test_scan_cursor_of_another_db_or_after_flush_restarts(inproc: InProcess) -> None:
    for i in range(30):
        inproc.call("SET", f"k{i}", "v")
    cur, first = inproc.call("SCAN", "0", "COUNT", "10")
    inproc.call("FLUSHALL")
    for i in range(30):
        inproc.call("SET", f"n{i}", "v")
    rest = full_scan_from(inproc, cur, "COUNT", "10")
    assert sorted(rest) == sorted(f"n{i}".encode() for i in range(30))


def full_scan_from(inproc: InProcess, cursor: bytes, *opts: str) -> list[bytes]:
    out: list[bytes] = []
    while True:
        cursor, batch = inproc.call("SCAN", cursor, *opts)
        out.extend(batch)
        if cursor == b"0":
            return out


@pytest.mark.parametrize(
    "arg,expect",
    [(b"0", 0), (b"", 0), (b"+7", 7), (b"-1", 2**64 - 1), (b"-0", 0), (b"18446744073709551615", 2**64 - 1),
     (b"5\x00junk", 5), (b"007", 7)],
)
def test_scan_cursor_parsing_accepts_what_strtoul_accepts(arg: bytes, expect: int) -> None:
    assert keys_mod.parse_scan_cursor(arg) == expect


@pytest.mark.parametrize("arg", [b" 0", b"\t1", b"x", b"0x", b"1.5", b"-", b"+", b"18446744073709551616", b"1 "])
def test_scan_cursor_parsing_rejects(arg: bytes) -> None:
    with pytest.raises(Err):
        keys_mod.parse_scan_cursor(arg)


_key_names = st.integers(0, 300).map(lambda i: b"k%d" % i)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    initial=st.sets(_key_names, max_size=120),
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "del", "scan", "other_scan", "flushdb1"]), st.integers(0, 400)),
        max_size=120,
    ),
    count=st.integers(1, 25),
    max_snapshots=st.sampled_from([1, 2, 64]),
)
def test_scan_returns_every_key_present_for_the_whole_iteration(
    initial: set[bytes], ops: list[tuple[str, int]], count: int, max_snapshots: int
) -> None:
    """Whatever happens meanwhile (writes, deletes, other clients' scans
    evicting snapshots, other dbs flushed), a key that exists from the first
    to the last SCAN call is returned at least once."""
    old = keys_mod.SCAN_MAX_SNAPSHOTS
    keys_mod.SCAN_MAX_SNAPSHOTS = max_snapshots
    try:
        inproc = InProcess()
        other = inproc.new_client()
        for k in initial:
            inproc.call("SET", k, "v")
        ever_deleted: set[bytes] = set()
        returned: set[bytes] = set()
        cursor, batch = inproc.call("SCAN", "0", "COUNT", str(count))
        returned.update(batch)
        calls = 1
        for op, n in ops:
            if cursor == b"0":
                break
            key = b"k%d" % (n % 301)
            if op == "add":
                inproc.call("SET", key, "v")
            elif op == "del":
                if inproc.call("DEL", key):
                    ever_deleted.add(key)
            elif op == "other_scan":
                inproc.call("SCAN", "0", "COUNT", "1", client=other)
            elif op == "flushdb1":
                inproc.call("SELECT", "1", client=other)
                inproc.call("SET", "x", "y", client=other)
                inproc.call("FLUSHDB", client=other)
                inproc.call("SELECT", "0", client=other)
            else:
                cursor, batch = inproc.call("SCAN", cursor, "COUNT", str(count))
                returned.update(batch)
                calls += 1
        while cursor != b"0":
            cursor, batch = inproc.call("SCAN", cursor, "COUNT", str(count))
            returned.update(batch)
            calls += 1
            assert calls < 10_000
        assert (initial - ever_deleted) <= returned
    finally:
        keys_mod.SCAN_MAX_SNAPSHOTS = old


def test_scan_snapshots_are_bounded(inproc: InProcess) -> None:
    for i in range(100):
        inproc.call("SET", f"k{i}", "v")
    for _ in range(500):
        inproc.call("SCAN", "0", "COUNT", "1")
    st_ = keys_mod._scan_state(inproc.srv)
    assert len(st_.snaps) <= keys_mod.SCAN_MAX_SNAPSHOTS
    assert st_.total == sum(len(v[1]) for v in st_.snaps.values())


# -- KEYS / RANDOMKEY / TOUCH / OBJECT --------------------------------------------------------------


def test_keys_hides_expired_keys_without_deleting_them(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("SET", "a", "v")
    inproc.call("SET", "b", "v")
    past(inproc, b"b")
    n = len(sink.commands)
    assert inproc.call("KEYS", "*") == [b"a"]
    assert b"b" in inproc.srv.dbs[0].data and len(sink.commands) == n


def test_touch_updates_the_access_clock_and_exists_does_not(inproc: InProcess) -> None:
    srv = inproc.srv
    db = srv.dbs[0]
    inproc.call("SET", "k", "abc")
    db.access[b"k"] = srv.lru_clock - 100
    inproc.call("EXISTS", "k")
    inproc.call("TYPE", "k")
    inproc.call("TTL", "k")
    inproc.call("OBJECT", "ENCODING", "k")
    assert inproc.call("OBJECT", "IDLETIME", "k") == 100
    assert inproc.call("TOUCH", "k", "nokey") == 1
    assert inproc.call("OBJECT", "IDLETIME", "k") == 0


def test_rename_and_move_carry_the_access_stamp(inproc: InProcess) -> None:
    srv = inproc.srv
    db = srv.dbs[0]
    inproc.call("SET", "k", "abc")
    db.access[b"k"] = 12345
    inproc.call("RENAME", "k", "k2")
    # lookupKeyWrite touched the value first; the stamp then moves with it
    assert db.access == {b"k2": srv.lru_clock}
    inproc.call("MOVE", "k2", "1")
    assert db.access == {} and srv.dbs[1].access == {b"k2": srv.lru_clock}


def test_read_lookups_count_hits_and_misses(inproc: InProcess) -> None:
    srv = inproc.srv
    inproc.call("SET", "k", "v")
    h, m = srv.stat_keyspace_hits, srv.stat_keyspace_misses
    inproc.call("EXISTS", "k", "nokey", "k")
    inproc.call("TYPE", "nokey")
    inproc.call("OBJECT", "REFCOUNT", "k")
    assert (srv.stat_keyspace_hits - h, srv.stat_keyspace_misses - m) == (3, 2)


def test_object_of_other_types_and_freq_with_lfu(inproc: InProcess) -> None:
    put(inproc, "l", FakeList(["a"]))
    assert inproc.call("OBJECT", "ENCODING", "l") == b"quicklist"
    assert inproc.call("OBJECT", "REFCOUNT", "l") == 1
    srv = inproc.srv
    srv.cfg.maxmemory_policy = "allkeys-lfu"
    minutes = (int(time.time()) // 60) & 0xFFFF
    srv.dbs[0].access[b"l"] = (minutes << 8) | 7
    assert inproc.call("OBJECT", "FREQ", "l") == 7
    srv.cfg.lfu_decay_time = 1
    srv.dbs[0].access[b"l"] = (((minutes - 3) & 0xFFFF) << 8) | 7
    assert inproc.call("OBJECT", "FREQ", "l") == 4
    assert isinstance(inproc.call("OBJECT", "IDLETIME", "l"), Err)


def test_object_refcount_shared_integers_follow_maxmemory_policy(inproc: InProcess) -> None:
    srv = inproc.srv
    inproc.call("SET", "k", "42")
    assert inproc.call("OBJECT", "REFCOUNT", "k") == 2147483647
    srv.cfg.maxmemory = 1 << 30
    srv.cfg.maxmemory_policy = "allkeys-lru"
    assert inproc.call("OBJECT", "REFCOUNT", "k") == 1
    srv.cfg.maxmemory_policy = "volatile-ttl"
    assert inproc.call("OBJECT", "REFCOUNT", "k") == 2147483647


def test_copy_duplicates_other_types(inproc: InProcess) -> None:
    v = FakeList(["a", "b"])
    put(inproc, "l", v)
    assert inproc.call("COPY", "l", "l2", "DB", "4") == 1
    v2 = inproc.srv.dbs[4].data[b"l2"]
    assert v2 is not v and v2.items == v.items


# -- SORT over list / set / zset values (outputs from redis-server 7.0.15) ------------------------


@pytest.fixture
def sortdb(inproc: InProcess, monkeypatch: pytest.MonkeyPatch) -> InProcess:
    monkeypatch.setattr(keys_mod, "LIST_FACTORY", FakeList)
    put(inproc, "l", FakeList(["3", "1", "2", "10", "-5", "1.5", "2"]))
    inproc.call("MSET", "w_3", "30", "w_1", "10", "w_2", "20", "w_10", "5", "w_-5", "100", "w_1.5", "1.5",
                "o_3", "three", "o_1", "one")
    put(inproc, "h_1", FakeHash({b"f": b"one-f"}))
    put(inproc, "h_3", FakeHash({b"f": b"three-f", b"g": b"x"}))
    put(inproc, "words", FakeList(["banana", "apple", "Cherry", "apple", "10", "9"]))
    put(inproc, "n2", FakeList([str(i) for i in range(1, 11)]))
    return inproc


SORT_CASES = [
    (("SORT", "l"), b(-5, 1, 1.5, 2, 2, 3, 10)),
    (("SORT", "l", "DESC"), b(10, 3, 2, 2, 1.5, 1, -5)),
    (("SORT", "l", "ALPHA"), b(-5, 1, 1.5, 10, 2, 2, 3)),
    (("SORT", "l", "alpha", "desc"), b(3, 2, 2, 10, 1.5, 1, -5)),
    (("SORT", "l", "LIMIT", "1", "3"), b(1, 1.5, 2)),
    (("SORT", "l", "LIMIT", "5", "10"), b(3, 10)),
    (("SORT", "l", "LIMIT", "10", "2"), []),
    (("SORT", "l", "LIMIT", "-1", "2"), b(-5, 1)),
    (("SORT", "l", "LIMIT", "0", "0"), []),
    (("SORT", "l", "BY", "nosort"), b(3, 1, 2, 10, -5, 1.5, 2)),
    (("SORT", "l", "BY", "nosort", "DESC"), b(2, 1.5, -5, 10, 2, 1, 3)),
    (("SORT", "l", "BY", "nosort", "LIMIT", "2", "3"), b(2, 10, -5)),
    (("SORT", "l", "BY", "nosort", "DESC", "LIMIT", "2", "3"), b(-5, 10, 2)),
    (("SORT", "l", "BY", "nosort", "LIMIT", "10", "3"), []),
    (("SORT", "l", "BY", "w_*"), b(1.5, 10, 1, 2, 2, 3, -5)),
    (("SORT", "l", "BY", "w_*", "DESC"), b(-5, 3, 2, 2, 1, 10, 1.5)),
    (("SORT", "l", "BY", "w_*", "GET", "o_*", "GET", "#"),
     b(None, 1.5, None, 10, "one", 1, None, 2, None, 2, "three", 3, None, -5)),
    (("SORT", "l", "BY", "w_*", "ALPHA"), b(1.5, 1, -5, 2, 2, 3, 10)),
    (("SORT", "l", "BY", "nosuch_*", "GET", "#"), b(-5, 1, 1.5, 10, 2, 2, 3)),
    (("SORT", "l", "BY", "nosuch_*", "ALPHA", "GET", "#"), b(3, 1, 2, 10, -5, 1.5, 2)),
    (("SORT", "l", "GET", "o_*", "GET", "#", "GET", "nostar", "GET", "o_*->f"),
     b(None, -5, None, None, "one", 1, None, None, None, 1.5, None, None, None, 2, None, None, None, 2, None, None,
       "three", 3, None, None, None, 10, None, None)),
    (("SORT", "l", "BY", "h_*->f", "ALPHA", "GET", "h_*->f", "GET", "#"),
     b(None, 2, None, 10, None, -5, None, 1.5, None, 2, "one-f", 1, "three-f", 3)),
    (("SORT", "l", "BY", "h_*->f", "GET", "#"), Err("ERR One or more scores can't be converted into double")),
    (("SORT", "words", "ALPHA"), b(10, 9, "Cherry", "apple", "apple", "banana")),
    (("SORT", "words"), Err("ERR One or more scores can't be converted into double")),
    (("SORT", "words", "BY", "nosort", "ALPHA"), b("banana", "apple", "Cherry", "apple", 10, 9)),
    (("SORT", "n2", "BY", "w_*", "LIMIT", "0", "3", "GET", "#"), b(4, 5, 6)),
    (("SORT", "l", "BY", "w_*", "DESC", "LIMIT", "1", "2"), b(3, 2)),
    (("SORT_RO", "l", "LIMIT", "1", "3"), b(1, 1.5, 2)),
]


@pytest.mark.parametrize("cmd,expect", SORT_CASES, ids=[" ".join(c) for c, _ in SORT_CASES])
def test_sort_matches_redis(sortdb: InProcess, cmd: tuple[str, ...], expect: Any) -> None:
    assert sortdb.call(*cmd) == expect


def test_sort_store_writes_a_list_and_is_recorded(sortdb: InProcess) -> None:
    sink = sortdb.record()
    events = record_events(sortdb)
    sortdb.call("SET", "out", "old", "EX", "100")
    events.clear()
    assert sortdb.call("SORT", "l", "STORE", "out") == 7
    db = sortdb.srv.dbs[0]
    assert db.data[b"out"].items == b(-5, 1, 1.5, 2, 2, 3, 10) and b"out" not in db.expires
    assert sink.commands[-1] == [b"SORT", b"l", b"STORE", b"out"]
    assert events == [(b"sortstore", b"out", 0)]
    assert sortdb.call("SORT", "l", "BY", "nosort", "GET", "o_*", "STORE", "out2") == 7
    assert db.data[b"out2"].items == b("three", "one", "", "", "", "", "")
    assert events[-2:] == [(b"new", b"out2", 0), (b"sortstore", b"out2", 0)]


def test_sort_of_sets_and_zsets(sortdb: InProcess) -> None:
    put(sortdb, "s", FakeSet(["b", "10", "a", "2"]))
    put(sortdb, "z", FakeZset(["x", "y", "z", "w"]))
    assert sortdb.call("SORT", "s", "ALPHA") == b(10, 2, "a", "b")
    # a set is forced to ALPHA when not sorted and the output must be
    # reproducible (STORE, or a script: fake clients count as one)
    assert sortdb.call("SORT", "s", "BY", "nosort") == b(10, 2, "a", "b")
    assert sortdb.call("SORT", "s", "BY", "nosort", "STORE", "ss") == 4
    assert sortdb.srv.dbs[0].data[b"ss"].items == b(10, 2, "a", "b")
    assert sortdb.call("SORT", "z", "BY", "nosort") == b("x", "y", "z", "w")
    assert sortdb.call("SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2") == b("z", "y")
    assert sortdb.call("SORT", "z", "BY", "nosort", "LIMIT", "9", "2") == []
    assert sortdb.call("SORT", "z", "ALPHA", "DESC") == b("z", "y", "x", "w")
    assert sortdb.call("SORT", "words", "ALPHA", "LIMIT", "1", "2", "STORE", "dst") == 2


def test_sort_getkeys_reports_the_store_target() -> None:
    cmd = registry.lookup_name(b"sort")
    assert cmd is not None
    argv = [b"SORT", b"k", b"LIMIT", b"0", b"1", b"GET", b"store", b"STORE", b"d1", b"STORE", b"d2"]
    assert cmd.key_positions(argv) == [1, 10]
    assert cmd.key_positions([b"SORT", b"k", b"BY", b"store"]) == [1]


@pytest.mark.parametrize(
    "text,value",
    [(b"", 0.0), (b"  3", 3.0), (b"3 ", None), (b"inf", float("inf")), (b"-Infinity", float("-inf")),
     (b"nan", None), (b"1e999", None), (b"1e-400", None), (b"1e-310", None), (b"0x10", 16.0),
     (b"0x1p-1074", 5e-324), (b"0x", None), (b".", None), (b"-", None), (b"  ", None), (b"5\x00x", 5.0),
     (b"1_0", None), (b"+.5e3", 500.0)],
)
def test_sort_weights_use_c_strtod(text: bytes, value: float | None) -> None:
    assert keys_mod.sort_strtod(text) == value


def test_lookup_key_by_pattern_c_string_quirks(inproc: InProcess) -> None:
    db = inproc.srv.dbs[0]
    inproc.call("SET", "w_x", "1")
    put(inproc, "h_x", FakeHash({b"f->g": b"deep", b"f": b"flat"}))
    assert keys_mod.lookup_key_by_pattern(db, b"#", b"x") == b"x"
    assert keys_mod.lookup_key_by_pattern(db, b"#\x00junk", b"x") == b"x"
    assert keys_mod.lookup_key_by_pattern(db, b"w_*", b"x") == b"1"
    assert keys_mod.lookup_key_by_pattern(db, b"nostar", b"x") is None
    assert keys_mod.lookup_key_by_pattern(db, b"h_*->f", b"x") == b"flat"
    assert keys_mod.lookup_key_by_pattern(db, b"h_*->f->g", b"x") == b"deep"
    assert keys_mod.lookup_key_by_pattern(db, b"w_*->", b"x") is None  # "w_x->" does not exist
    assert keys_mod.lookup_key_by_pattern(db, b"h_*->f", b"nohash") is None
    assert keys_mod.lookup_key_by_pattern(db, b"w_*->f", b"x") is None  # not a hash
