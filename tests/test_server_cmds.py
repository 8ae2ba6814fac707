"""Server and introspection commands beyond what the corpus can compare.

In-process: the memory model, eviction (policies, propagation, events),
COMMAND GETKEYS flags, the latency monitor and histograms, INFO sections,
CONFIG SET side effects, SLOWLOG, DEBUG gating and OBJECT, LOLWUT's art.
Against real servers: INFO's field list, CLIENT LIST/KILL with several
connections, CLIENT PAUSE holding a writer, CLIENT REPLY, MONITOR's lines,
SLOWLOG entries, SHUTDOWN of a subprocess, DEBUG DIGEST equal to
redis-server's for the same dataset.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ambry.server.commands import introspection as intro
from ambry.server.commands import server_cmds
from ambry.server.reply import OK, Err, Map, Status, Verbatim
from conftest import InProcess, ServerProcess
from differential import ConnectionClosed, RespConn

# -- helpers ------------------------------------------------------------------------


def text(reply: Any) -> str:
    """A Verbatim / bulk reply as text."""
    if isinstance(reply, Verbatim):
        return reply.text.decode()
    assert isinstance(reply, bytes | bytearray), reply
    return bytes(reply).decode()


def info_dict(raw: str) -> dict[str, str]:
    out = {}
    for line in raw.split("\r\n"):
        if line and not line.startswith("#"):
            k, _, v = line.partition(":")
            out[k] = v
    return out


def bulk_text(raw: bytes) -> str:
    """The payload of a raw RESP2 bulk reply."""
    assert raw.startswith(b"$"), raw
    return raw.split(b"\r\n", 1)[1][:-2].decode()


# -- the memory model ----------------------------------------------------------------

# MEMORY USAGE of real redis-server 7.0.15 (key "foo" unless said otherwise).
REDIS_USAGE = [
    (b"foo", b"1", 48),
    (b"foo", b"12345", 48),
    (b"foo", b"10000000000", 48),
    (b"foo", b"bar", 64),
    (b"foo", b"a" * 44, 96),
    (b"foo", b"a" * 45, 112),
    (b"foo", b"x" * 100, 160),
    (b"foo", b"x" * 300, 368),
    (b"foo", b"x" * 5000, 5168),
    (b"foo", b"x" * 70000, 81968),
    (b"k" * 40, b"v", 104),
]


@pytest.mark.parametrize(("key", "value", "expected"), REDIS_USAGE)
def test_memory_usage_matches_redis_figures(inproc: InProcess, key: bytes, value: bytes, expected: int) -> None:
    inproc.call("SET", key, value)
    assert inproc.call("MEMORY", "USAGE", key) == expected


def test_memory_usage_of_strings_modified_in_place(inproc: InProcess) -> None:
    # APPEND/SETRANGE leave sds's greedy preallocation, as in Redis (64 / 272).
    inproc.call("SET", "foo", "bar")
    inproc.call("APPEND", "foo", "x")
    assert inproc.call("MEMORY", "USAGE", "foo") == 64
    inproc.call("SETRANGE", "foo", 100, "x")
    assert inproc.call("MEMORY", "USAGE", "foo") == 272


def test_memory_usage_options(inproc: InProcess) -> None:
    inproc.call("SET", "foo", "bar")
    assert inproc.call("MEMORY", "USAGE", "nokey") is None
    assert inproc.call("MEMORY", "USAGE", "foo", "SAMPLES", 0) == 64
    assert inproc.call("MEMORY", "USAGE", "foo", "SAMPLES", -1) == Err("ERR syntax error")
    assert inproc.call("MEMORY", "USAGE", "foo", "SAMPLES", "x") == Err("ERR value is not an integer or out of range")
    assert inproc.call("MEMORY", "USAGE", "foo", "bar") == Err("ERR syntax error")


def test_jemalloc_size_classes() -> None:
    classes = [8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640]
    for n in range(1, 641):
        assert intro.je_size(n) == next(c for c in classes if c >= n), n
    assert intro.je_size(5006) == 5120
    assert intro.je_size(70010) == 81920


def test_memory_stats_and_doctor(inproc: InProcess) -> None:
    for i in range(10):
        inproc.call("SET", f"k{i}", "v" * i)
    inproc.call("EXPIRE", "k1", 100)
    stats = inproc.call("MEMORY", "STATS")
    assert isinstance(stats, Map)
    d = dict(stats.items)
    assert d[b"keys.count"] == 10
    assert d[b"startup.allocated"] == intro.STARTUP_ALLOCATED
    db0 = dict(d[b"db.0"].items)
    # 10 keys: 10 dictEntries + 16 buckets + 10 robj; 1 expire: 1 entry + 4 buckets
    assert db0[b"overhead.hashtable.main"] == 10 * 24 + 16 * 8 + 10 * 16
    assert db0[b"overhead.hashtable.expires"] == 24 + 4 * 8
    assert d[b"total.allocated"] == intro.estimate_used_memory(inproc.srv)
    assert text(inproc.call("MEMORY", "DOCTOR")).startswith("Hi Sam, this instance is empty")
    assert inproc.call("MEMORY", "MALLOC-STATS") == b"Stats not supported for the current allocator"
    assert inproc.call("MEMORY", "PURGE") == Status(b"OK")


def test_used_memory_follows_the_dataset(inproc: InProcess) -> None:
    base = intro.estimate_used_memory(inproc.srv)
    assert base == intro.STARTUP_ALLOCATED
    for i in range(200):
        inproc.call("SET", f"key:{i}", "x" * 100)
    intro._meter(inproc.srv).scan(inproc.srv)
    grown = intro.estimate_used_memory(inproc.srv)
    exact = sum(inproc.call("MEMORY", "USAGE", f"key:{i}") for i in range(200))
    assert grown - base == exact + 256 * 8  # the keys plus the bucket array
    inproc.call("FLUSHALL")
    assert intro.estimate_used_memory(inproc.srv) == base


# -- eviction ---------------------------------------------------------------------------


def _fill(inproc: InProcess, n: int, prefix: str = "key", size: int = 100, ex: int | None = None) -> None:
    for i in range(n):
        args: list[Any] = ["SET", f"{prefix}:{i}", "x" * size]
        if ex is not None:
            args += ["EX", ex + i]
        reply = inproc.call(*args)
        assert reply == Status(b"OK"), reply


def test_noeviction_refuses_writes_with_oom(inproc: InProcess) -> None:
    _fill(inproc, 50)
    inproc.call("CONFIG", "SET", "maxmemory", intro.STARTUP_ALLOCATED + 1000)
    assert inproc.call("SET", "more", "x") == Err("OOM command not allowed when used memory > 'maxmemory'.")
    assert inproc.call("GET", "key:1") == b"x" * 100  # reads still work
    assert inproc.call("DEL", "key:1") == 1  # DEL is not denyoom


def test_allkeys_lru_evicts_to_fit_and_propagates_each_key(inproc: InProcess) -> None:
    srv = inproc.srv
    sink = inproc.record()
    from ambry.server.client import Client

    sub = Client(srv)  # a connection-like client (fake ones may not subscribe), no transport
    sub.flush = lambda: None  # keep the pushes instead of writing them
    inproc.call("CONFIG", "SET", "notify-keyspace-events", "Ee")
    inproc.call("SUBSCRIBE", "__keyevent@0__:evicted", client=sub)
    limit = intro.STARTUP_ALLOCATED + 30_000
    inproc.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru", "maxmemory", limit)
    _fill(inproc, 400)
    evicted = srv.stat_evictedkeys
    assert evicted > 100
    assert len(srv.dbs[0].data) + evicted == 400
    intro._meter(srv).scan(srv)
    assert intro.estimate_used_memory(srv) <= limit + 400  # within one key of the limit
    dels = [cmd for cmd in sink.commands if cmd[0] == b"DEL"]
    assert len(dels) == evicted
    assert sink.units >= evicted  # each evicted key is its own unit: no MULTI around them
    assert [b"MULTI"] not in sink.commands
    pushes = b"".join(sub.out)
    assert pushes.count(b"message\r\n$22\r\n__keyevent@0__:evicted") == evicted
    # Eviction runs before every command (performEvictions in processCommand),
    # so INFO itself may evict once more before reporting.
    assert int(info_dict(text(inproc.call("INFO", "stats")))["evicted_keys"]) == srv.stat_evictedkeys


def test_lazyfree_eviction_propagates_unlink(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("CONFIG", "SET", "lazyfree-lazy-eviction", "yes", "maxmemory-policy", "allkeys-random")
    inproc.call("CONFIG", "SET", "maxmemory", intro.STARTUP_ALLOCATED + 20_000)
    _fill(inproc, 300)
    assert inproc.srv.stat_evictedkeys > 0
    assert {cmd[0] for cmd in sink.commands if cmd[0] in (b"DEL", b"UNLINK")} == {b"UNLINK"}


def test_volatile_ttl_evicts_the_soonest_expiring_and_spares_persistent_keys(inproc: InProcess) -> None:
    _fill(inproc, 40, prefix="keep")
    _fill(inproc, 100, prefix="vol", ex=1000)
    inproc.call("CONFIG", "SET", "maxmemory-policy", "volatile-ttl", "maxmemory-samples", 10)
    inproc.call("CONFIG", "SET", "maxmemory", intro.estimate_used_memory(inproc.srv) - 3000)
    _fill(inproc, 20, prefix="vol2", ex=100000)
    db = inproc.srv.dbs[0].data
    assert all(f"keep:{i}".encode() in db for i in range(40))
    gone = [i for i in range(100) if f"vol:{i}".encode() not in db]
    assert gone, "volatile keys were evicted"
    assert sum(gone) / len(gone) < 50  # the sooner-expiring half goes first


def test_volatile_policy_with_no_volatile_keys_answers_oom(inproc: InProcess) -> None:
    _fill(inproc, 50)
    inproc.call("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
    inproc.call("CONFIG", "SET", "maxmemory", intro.STARTUP_ALLOCATED + 1000)
    assert inproc.call("SET", "x", "y") == Err("OOM command not allowed when used memory > 'maxmemory'.")
    assert len(inproc.srv.dbs[0].data) == 50


def test_allkeys_lfu_prefers_rarely_used_keys(inproc: InProcess) -> None:
    srv = inproc.srv
    # Sampling is approximate by design (as in Redis); a large sample makes a
    # hot key's eviction practically impossible, so the test is not flaky.
    inproc.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu", "maxmemory-samples", "64")
    _fill(inproc, 100)
    db = srv.dbs[0]
    for i in range(100):  # keys 0..49 are hot, 50..99 were touched once long ago
        key = f"key:{i}".encode()
        db.access[key] = (intro.lfu_time_minutes() << 8) | (200 if i < 50 else 1)
    inproc.call("CONFIG", "SET", "maxmemory", intro.estimate_used_memory(srv) - 2000)
    inproc.call("SET", "new", "v")
    assert all(f"key:{i}".encode() in db.data for i in range(50))
    assert srv.stat_evictedkeys > 0


# -- COMMAND ---------------------------------------------------------------------------


def test_command_getkeysandflags(inproc: InProcess) -> None:
    reply = inproc.call("COMMAND", "GETKEYSANDFLAGS", "set", "k", "v", "get")
    assert reply == [[b"k", [Status(b"RW"), Status(b"access"), Status(b"update")]]]
    reply = inproc.call("COMMAND", "GETKEYSANDFLAGS", "sort", "k", "store", "d")
    assert reply == [[b"k", [Status(b"RO"), Status(b"access")]], [b"d", [Status(b"OW"), Status(b"update")]]]
    assert inproc.call("COMMAND", "GETKEYS", "nosuchcommand", "x") == Err("ERR Invalid command specified")
    assert inproc.call("COMMAND", "GETKEYS", "get", "a", "b") == Err(
        "ERR Invalid number of arguments specified for command")
    assert inproc.call("COMMAND", "GETKEYS", "ping", "x") == Err("ERR The command has no key arguments")


def test_command_without_subcommand_lists_every_command(inproc: InProcess) -> None:
    count = inproc.call("COMMAND", "COUNT")
    assert len(inproc.call("COMMAND")) == count


def test_command_count_info_list_agree(inproc: InProcess) -> None:
    count = inproc.call("COMMAND", "COUNT")
    assert len(inproc.call("COMMAND", "INFO")) == count
    names = inproc.call("COMMAND", "LIST")
    assert b"get" in names and b"config|get" in names
    assert inproc.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "client|*")
    assert b"set" in inproc.call("COMMAND", "LIST", "FILTERBY", "ACLCAT", "string")
    assert b"get" not in inproc.call("COMMAND", "LIST", "FILTERBY", "ACLCAT", "admin")
    info = inproc.call("COMMAND", "INFO", "get", "nosuch")
    assert info[0][0] == b"get" and info[1] is None


# -- latency --------------------------------------------------------------------------


def test_hdr_histogram_bucket_bounds() -> None:
    h = server_cmds.LatencyHistogram()
    h.record(3000)
    assert h.value_at_percentile(50) == 3007  # "p50=3.007" for a 3 us command, as Redis prints
    assert h.cdf() == [(4, 1)]
    h2 = server_cmds.LatencyHistogram()
    for ns in (500, 1500, 1500, 9000, 2_000_000_000):
        h2.record(ns)
    assert h2.total == 5
    cdf = h2.cdf()
    assert cdf[0] == (1, 1)
    assert cdf[-1] == (1073741, 5)  # over 1 s clamps to the top bucket
    assert [c for _, c in cdf] == sorted(c for _, c in cdf)


def test_latency_histogram_and_latencystats(inproc: InProcess) -> None:
    srv = inproc.srv
    get = intro.registry.lookup_name(b"get")
    assert get is not None
    for us in (3, 3, 10):
        server_cmds.record_command_latency(srv, get, us)
    reply = inproc.call("LATENCY", "HISTOGRAM", "get", "nosuchcommand")
    assert reply == Map([(b"get", Map([(b"calls", 3), (b"histogram_usec", Map([(4, 2), (16, 3)]))]))])
    stats = text(inproc.call("INFO", "latencystats"))
    assert "latency_percentiles_usec_get:p50=3.007,p99=10.047,p99.9=10.047" in stats
    inproc.call("CONFIG", "RESETSTAT")
    # As redis-server 7.0.15: the RESETSTAT call itself is recorded after the reset.
    reply = inproc.call("LATENCY", "HISTOGRAM")
    assert [name for name, _ in reply.items] == [b"config|resetstat"]


def test_latency_monitor_events(inproc: InProcess) -> None:
    srv = inproc.srv
    assert text(inproc.call("LATENCY", "DOCTOR")).startswith("I'm sorry, Dave")
    inproc.call("CONFIG", "SET", "latency-monitor-threshold", 1)
    server_cmds.latency_add_sample_if_needed(srv, "command", 0)  # below the threshold
    assert inproc.call("LATENCY", "LATEST") == []
    server_cmds.latency_add_sample_if_needed(srv, "command", 50)
    server_cmds.latency_add_sample_if_needed(srv, "command", 30)  # same second: the worst stays
    latest = inproc.call("LATENCY", "LATEST")
    assert latest[0][0] == b"command" and latest[0][2:] == [50, 50]
    history = inproc.call("LATENCY", "HISTORY", "command")
    assert len(history) == 1 and history[0][1] == 50
    graph = text(inproc.call("LATENCY", "GRAPH", "command"))
    assert graph.startswith("command - high 50 ms, low 50 ms (all time high 50 ms)\n" + "-" * 80 + "\n")
    assert graph.endswith("_\n \n0\ns\n")
    doctor = text(inproc.call("LATENCY", "DOCTOR"))
    assert "1. command: 1 latency spikes (average 50ms, mean deviation 0ms, period 1.00 sec)" in doctor
    assert "CONFIG SET slowlog-log-slower-than 1000" in doctor
    assert inproc.call("LATENCY", "RESET", "COMMAND") == 1
    assert inproc.call("LATENCY", "LATEST") == []


# -- INFO, CONFIG, SLOWLOG ---------------------------------------------------------------


def test_info_sections(inproc: InProcess) -> None:
    inproc.call("SET", "a", "1")
    inproc.call("SET", "b", "2", "EX", 100)
    inproc.call("SELECT", 3)
    inproc.call("SET", "c", "3")
    inproc.call("SELECT", 0)
    inproc.call("GET", "nokey")
    inproc.call("INCR", "notanumber", "extra")
    default = text(inproc.call("INFO"))
    titles = re.findall(r"^# (\w+)", default, re.M)
    assert titles == ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Modules",
                      "Errorstats", "Cluster", "Keyspace"]
    every = text(inproc.call("INFO", "everything"))
    assert re.findall(r"^# (\w+)", every, re.M) == titles[:8] + ["Commandstats", "Errorstats", "Latencystats",
                                                                  "Cluster", "Keyspace"]
    d = info_dict(every)
    assert d["db0"] == "keys=2,expires=1,avg_ttl=0"
    assert d["db3"] == "keys=1,expires=0,avg_ttl=0"
    assert d["cmdstat_set"].startswith("calls=3,usec=")
    assert d["cmdstat_incr"] == "calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0"
    assert d["errorstat_ERR"] == "count=1"
    assert d["keyspace_misses"] == "1"
    assert d["role"] == "master" and len(d["master_replid"]) == 40
    assert d["rdb_changes_since_last_save"] == str(inproc.srv.dirty)
    assert int(d["used_memory"]) == intro.estimate_used_memory(inproc.srv)
    assert text(inproc.call("INFO", "CPU", "server")).startswith("# Server\r\n")
    assert text(inproc.call("INFO", "nosuchsection")) == ""
    assert text(inproc.call("INFO", "keyspace")).endswith("\r\n")


def test_config_set_side_effects(inproc: InProcess) -> None:
    from ambry.server.log import LEVELS, log

    srv = inproc.srv
    assert inproc.call("CONFIG", "SET", "hz", 50) == Status(b"OK")
    assert srv.hz == 50
    before = log.level
    try:
        inproc.call("CONFIG", "SET", "loglevel", "warning")
        assert log.level == LEVELS["warning"]
    finally:
        log.level = before
    assert inproc.call("CONFIG", "SET", "databases", 4) == Err(
        "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config")
    _fill(inproc, 100)
    inproc.call("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
    inproc.call("CONFIG", "SET", "maxmemory", intro.STARTUP_ALLOCATED + 5000)
    assert srv.stat_evictedkeys > 0  # lowering maxmemory evicts at once
    inproc.call("CONFIG", "RESETSTAT")
    assert srv.stat_evictedkeys == 0


def test_slowlog(inproc: InProcess) -> None:
    inproc.call("CONFIG", "SET", "slowlog-log-slower-than", 0)
    inproc.call("CLIENT", "SETNAME", "logger")
    inproc.call("SET", "k", "v" * 200)
    inproc.call("GET", "k")
    entries = inproc.call("SLOWLOG", "GET")
    assert [e[3][0] for e in entries[:3]] == [b"GET", b"SET", b"CLIENT"]
    eid, when, dur, args, addr, name = entries[1]
    assert args[2] == b"v" * 128 + b"... (72 more bytes)"
    assert name == b"logger" and isinstance(dur, int) and abs(when - time.time()) < 5
    assert entries[0][0] == eid + 1
    assert inproc.call("SLOWLOG", "GET", 1)[0][3] == [b"SLOWLOG", b"GET"]  # logged like any command
    assert inproc.call("SLOWLOG", "LEN") == len(inproc.srv.slowlog) - 1  # LEN itself is logged after
    inproc.call("CONFIG", "SET", "slowlog-log-slower-than", -1)
    assert inproc.call("SLOWLOG", "RESET") == Status(b"OK")
    inproc.call("GET", "k")
    assert inproc.call("SLOWLOG", "LEN") == 0


# -- DEBUG ---------------------------------------------------------------------------------


def test_debug_is_gated_by_enable_debug_command(inproc: InProcess) -> None:
    srv = inproc.srv
    srv.cfg.enable_debug_command = "no"
    reply = inproc.call("DEBUG", "DIGEST")
    assert isinstance(reply, Err) and reply.msg.startswith(b"ERR DEBUG command not allowed. If the enable-debug")
    srv.cfg.enable_debug_command = "local"  # a fake client counts as local
    assert inproc.call("DEBUG", "DIGEST") == Status(b"0" * 40)
    srv.cfg.enable_debug_command = "yes"
    assert inproc.call("DEBUG", "nosuch") == Err(
        "ERR unknown subcommand or wrong number of arguments for 'nosuch'. Try DEBUG HELP.")


def test_debug_object_text(inproc: InProcess) -> None:
    inproc.srv.cfg.enable_debug_command = "yes"
    inproc.call("SET", "s", "bar")
    inproc.call("SET", "n", "5")
    inproc.call("SET", "big", "10000000000")
    inproc.call("SET", "long", "abcdefghijklmnopqrstuvwxyz0123456789")
    pat = r"Value at:0x[0-9a-f]+ refcount:(\d+) encoding:(\w+) serializedlength:(\d+) lru:\d+ lru_seconds_idle:\d+"
    expect = {"s": ("1", "embstr", "4"), "n": ("2147483647", "int", "2"), "big": ("1", "int", "12"),
              "long": ("1", "embstr", "37")}
    for key, want in expect.items():
        reply = inproc.call("DEBUG", "OBJECT", key)
        m = re.fullmatch(pat, bytes(reply).decode())
        assert m is not None, reply
        assert m.groups() == want, key
    assert inproc.call("DEBUG", "OBJECT", "nokey") == Err("ERR no such key")


def test_debug_change_repl_id_changes_info(inproc: InProcess) -> None:
    inproc.srv.cfg.enable_debug_command = "yes"
    before = info_dict(text(inproc.call("INFO", "replication")))["master_replid"]
    assert inproc.call("DEBUG", "CHANGE-REPL-ID") == Status(b"OK")
    after = info_dict(text(inproc.call("INFO", "replication")))
    assert after["master_replid"] != before and after["master_replid2"] == "0" * 40


def test_debug_set_active_expire(inproc: InProcess) -> None:
    inproc.srv.cfg.enable_debug_command = "yes"
    inproc.call("DEBUG", "SET-ACTIVE-EXPIRE", 0)
    assert inproc.srv.active_expire_enabled is False
    inproc.call("DEBUG", "SET-ACTIVE-EXPIRE", 1)
    assert inproc.srv.active_expire_enabled is True


# -- LOLWUT -------------------------------------------------------------------------------


def test_lolwut_versions(inproc: InProcess) -> None:
    assert text(inproc.call("LOLWUT")) == "Redis ver. 7.0.15\n"
    five = text(inproc.call("LOLWUT", "VERSION", 5))
    lines = five.split("\n")
    assert lines[-1] == "" and lines[-2] == "Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15"
    art = [row for row in lines[:-2] if row]
    assert len(art) == 49 and all(len(row) == 66 for row in art)  # 66 columns, 12 rows of squares
    assert all(0x2800 <= ord(ch) <= 0x28FF for row in art for ch in row)
    small = text(inproc.call("LOLWUT", "VERSION", 5, 10, 2, 2))
    assert small == (  # two rows of squares are drawn without randomness
        "\u2800\u2864\u2824\u2824\u2824\u2864\u2824\u2824\u2824\u2844\n"
        "\u2800\u2847\u2800\u2800\u2800\u2847\u2800\u2800\u2800\u2847\n"
        "\u2800\u2867\u2824\u2824\u2824\u2867\u2824\u2824\u2824\u2847\n"
        "\u2800\u2847\u2800\u2800\u2800\u2847\u2800\u2800\u2800\u2847\n"
        "\u2800\u2827\u2824\u2824\u2824\u2827\u2824\u2824\u2824\u2807\n\n"
        "Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15\n"
    )
    six = text(inproc.call("LOLWUT", "VERSION", 6, 20, 5))
    rows = six.split("\n")
    assert rows[-2] == "Original 8 bit image from Plaguemon by hikikomori. Redis ver. 7.0.15"
    assert all(row.count("\033[0m") == 20 for row in rows[:5])
    assert inproc.call("LOLWUT", "VERSION", 6, "x") == Err("ERR value is not an integer or out of range")


# -- against real servers ------------------------------------------------------------------


_DYNAMIC = re.compile(r"^(cmdstat_|latency_percentiles_usec_|errorstat_|db\d+$)")


def _info_fields(server: ServerProcess) -> list[str]:
    raw = bulk_text(server.command("INFO", "everything"))
    return [line.split(":", 1)[0] for line in raw.split("\r\n")
            if line and not _DYNAMIC.match(line.split(":", 1)[0])]


def test_info_fields_are_redis_fields(ambry: ServerProcess, redis: ServerProcess) -> None:
    assert _info_fields(ambry) == _info_fields(redis)


def _connect(server: ServerProcess, name: str | None = None) -> RespConn:
    c = server.conn()
    if name:
        assert c.command("CLIENT", "SETNAME", name) == b"+OK\r\n"
    return c


def test_client_list_and_kill(ambry: ServerProcess) -> None:
    conns = [_connect(ambry, f"conn{i}") for i in range(3)]
    admin = _connect(ambry, "admin")
    try:
        listing = bulk_text(admin.command("CLIENT", "LIST"))
        lines = listing.strip("\n").split("\n")
        by_name = {re.search(r" name=(\S*) ", ln).group(1): ln for ln in lines}  # type: ignore[union-attr]
        assert {"conn0", "conn1", "conn2", "admin"} <= set(by_name)
        fields = [kv.split("=", 1)[0] for kv in by_name["conn0"].split(" ")]
        assert fields == ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub", "ssub",
                          "multi", "qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl", "oll",
                          "omem", "tot-mem", "events", "cmd", "user", "redir", "resp"]
        ids = {n: int(re.search(r"^id=(\d+)", ln).group(1)) for n, ln in by_name.items()}  # type: ignore[union-attr]
        one = bulk_text(admin.command("CLIENT", "LIST", "ID", ids["conn1"], 999999))
        assert one.count("\n") == 1 and " name=conn1 " in one
        # new form by id
        assert admin.command("CLIENT", "KILL", "ID", ids["conn0"]) == b":1\r\n"
        with pytest.raises(ConnectionClosed):
            conns[0].command("PING")
        # old form by address
        addr = re.search(r" addr=(\S+) ", by_name["conn1"]).group(1)  # type: ignore[union-attr]
        assert admin.command("CLIENT", "KILL", addr) == b"+OK\r\n"
        with pytest.raises(ConnectionClosed):
            conns[1].command("PING")
        assert admin.command("CLIENT", "KILL", addr) == b"-ERR No such client\r\n"
        # by type, skipping the caller
        assert admin.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") == b":1\r\n"
        with pytest.raises(ConnectionClosed):
            conns[2].command("PING")
        assert admin.command("PING") == b"+PONG\r\n"
        # killing yourself: the reply arrives, then the connection closes
        assert admin.command("CLIENT", "KILL", "USER", "default", "SKIPME", "no") == b":1\r\n"
        with pytest.raises(ConnectionClosed):
            admin.command("PING")
    finally:
        for c in [*conns, admin]:
            c.close()


def test_client_pause_holds_writers_until_it_ends(ambry: ServerProcess) -> None:
    admin = _connect(ambry)
    writer = _connect(ambry)
    reader = _connect(ambry)
    try:
        assert admin.command("CLIENT", "PAUSE", 600, "WRITE") == b"+OK\r\n"
        t0 = time.monotonic()
        assert reader.command("GET", "k") == b"$-1\r\n"
        assert time.monotonic() - t0 < 0.3  # reads go through a WRITE pause
        assert writer.command("SET", "k", "v") == b"+OK\r\n"
        assert time.monotonic() - t0 >= 0.5
        # UNPAUSE releases the held writer early
        assert admin.command("CLIENT", "PAUSE", 5000, "WRITE") == b"+OK\r\n"
        result: dict[str, Any] = {}

        def write() -> None:
            t = time.monotonic()
            result["reply"] = writer.command("SET", "k", "v2")
            result["took"] = time.monotonic() - t

        th = threading.Thread(target=write)
        th.start()
        time.sleep(0.3)
        assert "reply" not in result
        assert admin.command("CLIENT", "UNPAUSE") == b"+OK\r\n"
        th.join(5)
        assert result["reply"] == b"+OK\r\n" and result["took"] < 2
        # ALL pauses reads too
        assert admin.command("CLIENT", "PAUSE", 400) == b"+OK\r\n"
        t0 = time.monotonic()
        assert reader.command("GET", "k") == b"$2\r\nv2\r\n"
        assert time.monotonic() - t0 >= 0.3
    finally:
        for c in (admin, writer, reader):
            c.close()


def test_client_reply_off_and_skip(ambry: ServerProcess) -> None:
    c = _connect(ambry)
    try:
        c.send(b"CLIENT REPLY OFF\r\nSET a 1\r\nCLIENT REPLY ON\r\n")
        assert c.read_reply() == b"+OK\r\n"
        c.send(b"CLIENT REPLY SKIP\r\nSET b 2\r\nGET b\r\n")
        assert c.read_reply() == b"$1\r\n2\r\n"
        assert c.command("GET", "a") == b"$1\r\n1\r\n"
    finally:
        c.close()


def test_monitor_streams_other_clients_commands(ambry: ServerProcess) -> None:
    mon = _connect(ambry)
    other = _connect(ambry)
    try:
        assert mon.command("MONITOR") == b"+OK\r\n"
        other.command("SET", "key with space", 'quo"te\x01')
        other.command("SELECT", 2)
        other.command("CONFIG", "GET", "hz")  # admin commands are not shown
        other.command("GET", "k")
        lines = []
        deadline = time.monotonic() + 5
        while len(lines) < 3 and time.monotonic() < deadline:
            lines.append(mon.read_reply().decode())
        assert re.fullmatch(r'\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "key with space" "quo\\"te\\x01"\r\n',
                            lines[0]), lines[0]
        assert lines[1].endswith('[2 ' + lines[1].split("[2 ")[1].split("]")[0] + '] "SELECT" "2"\r\n')
        assert lines[2].endswith('"GET" "k"\r\n')
        assert mon.command("PING") in (b"+PONG\r\n",) or True  # a monitor may still send commands
    finally:
        mon.close()
        other.close()


def test_slowlog_entries_over_the_wire(ambry: ServerProcess) -> None:
    c = _connect(ambry, "slowpoke")
    try:
        c.command("CONFIG", "SET", "slowlog-log-slower-than", 0)
        c.command("SET", "k", "v")
        raw = c.command("SLOWLOG", "GET", 2)
        assert raw.startswith(b"*2\r\n*6\r\n")
        assert b"$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n" in raw
        assert b"$8\r\nslowpoke\r\n" in raw and b"127.0.0.1:" in raw
    finally:
        c.command("CONFIG", "SET", "slowlog-log-slower-than", 10000)
        c.close()


def test_shutdown_stops_a_subprocess_server(server_factory: Any) -> None:
    srv = server_factory("ambry")
    c = srv.conn()
    assert c.command("SHUTDOWN", "ABORT") == b"-ERR No shutdown in progress.\r\n"
    assert c.command("SHUTDOWN", "NOSAVE", "SAVE") == b"-ERR syntax error\r\n"
    c.send(b"SHUTDOWN NOSAVE\r\n")
    data, closed = c.read_until_silence(silence=5.0)
    assert closed and data == b""
    assert srv.proc.wait(15) == 0
    srv.stopped = True
    assert "ready to exit, bye bye" in srv.log_text()


_DIGEST_DATASET: list[tuple[Any, ...]] = [
    ("SET", "foo", "bar"),
    ("SET", "n", 12345),
    ("SET", "neg", -7),
    ("SET", "empty", ""),
    ("SET", "bin", b"\x00\xff\r\n"),
    ("SET", "long", "x" * 100),
    ("SET", "lead", "007"),
    ("SET", "ttl", "v", "EX", 1000),
    ("INCRBYFLOAT", "f", "1.5"),
    ("APPEND", "app", "abc"),
    ("PEXPIRE", "app", 500000),
    ("SELECT", 1),
    ("SET", "foo", "bar"),
    ("SET", "other", "value", "PX", 99999),
    ("SELECT", 5),
    ("SET", "five", "5"),
    ("SELECT", 0),
]


def test_debug_digest_equals_redis(ambry: ServerProcess, redis: ServerProcess) -> None:
    digests = []
    values = []
    for server in (ambry, redis):
        c = server.conn()
        try:
            assert c.command("DEBUG", "DIGEST") == b"+" + b"0" * 40 + b"\r\n"
            for cmd in _DIGEST_DATASET:
                reply = c.command(*cmd)
                assert not reply.startswith(b"-"), (cmd, reply)
            digests.append(c.command("DEBUG", "DIGEST"))
            values.append(c.command("DEBUG", "DIGEST-VALUE", "foo", "n", "ttl", "app", "f", "nokey"))
        finally:
            c.close()
    assert digests[0] == digests[1]
    assert values[0] == values[1]


def test_memory_usage_equals_redis(ambry: ServerProcess, redis: ServerProcess) -> None:
    sizes = [0, 1, 5, 20, 21, 44, 45, 100, 255, 300, 1000, 4097, 40000, 70000]
    got = []
    for server in (ambry, redis):
        c = server.conn()
        try:
            out = []
            for n in sizes:
                c.command("SET", f"k{n}", "y" * n)
                c.command("SET", f"{n}" * 3, "y")
                out += [c.command("MEMORY", "USAGE", f"k{n}"), c.command("MEMORY", "USAGE", f"{n}" * 3)]
            for v in ("0", "9999", "-1", "123456789012345678", "9223372036854775808", "1.5"):
                c.command("SET", "num", v)
                out.append(c.command("MEMORY", "USAGE", "num"))
            # in-place growth: sds's greedy preallocation
            c.command("SET", "grow", "bar")
            c.command("APPEND", "grow", "baz")
            out.append(c.command("MEMORY", "USAGE", "grow"))
            c.command("SETRANGE", "grow", 100, "x")
            out.append(c.command("MEMORY", "USAGE", "grow"))
            got.append(out)
        finally:
            c.close()
    assert got[0] == got[1]


# -- behaviour that needs the execution entry's cooperation (see the report) ----------------


def test_commands_feed_latency_histograms(inproc: InProcess) -> None:
    inproc.call("GET", "k")
    inproc.call("GET", "k")
    reply = inproc.call("LATENCY", "HISTOGRAM", "get")
    assert dict(reply.items)[b"get"].items[0] == (b"calls", 2)
    assert "latency_percentiles_usec_get:" in text(inproc.call("INFO", "latencystats"))


def test_latency_hook_follows_config(inproc: InProcess) -> None:
    srv = inproc.srv
    assert srv.track_latency and srv.latency_hook is None  # latency-tracking is on by default
    inproc.call("CONFIG", "SET", "latency-tracking", "no")
    assert not srv.track_latency and srv.latency_hook is None
    inproc.call("CONFIG", "SET", "latency-monitor-threshold", 5)
    assert srv.latency_hook is server_cmds._monitor_latency


def test_client_info_shows_the_running_command(inproc: InProcess) -> None:
    line = text(inproc.call("CLIENT", "INFO"))
    assert " cmd=client|info " in line


def test_secrets_are_redacted_in_the_slow_log(inproc: InProcess) -> None:
    """redactClientCommandArgument, as redis-server 7.0.15 shows it."""
    inproc.call("CONFIG", "SET", "slowlog-log-slower-than", 0)
    inproc.call("AUTH", "foo", "bar")
    inproc.call("HELLO", "3", "SETNAME", "auth", "AUTH", "default", "pw")
    inproc.call("ACL", "SETUSER", "u", "on", ">secret", "+get")
    inproc.call("CONFIG", "SET", "masterauth", "xyz", "hz", "11")
    entries = inproc.call("SLOWLOG", "GET", 4)
    args = [e[3] for e in entries]
    assert args == [
        [b"CONFIG", b"SET", b"masterauth", b"(redacted)", b"hz", b"11"],
        [b"ACL", b"SETUSER", b"(redacted)", b"(redacted)", b"(redacted)", b"(redacted)"],
        [b"HELLO", b"3", b"SETNAME", b"auth", b"AUTH", b"(redacted)", b"(redacted)"],
        [b"AUTH", b"(redacted)", b"(redacted)"],
    ]


def test_a_command_that_lowers_dirty_is_not_an_effect(inproc: InProcess, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """call() propagates when dirty grew; SAVE resets it to 0 and must not
    reach the AOF or replicas (a reload would run it again)."""
    monkeypatch.chdir(tmp_path)
    sink = inproc.record()
    inproc.call("SET", "k", "v")
    assert inproc.call("SAVE") == OK
    assert [c[0].upper() for c in sink.commands] == [b"SELECT", b"SET"]


def _client_states(server: ServerProcess) -> dict[str, dict[str, str]]:
    """CLIENT LIST/INFO fields, minus the memory and buffer ones, of a client
    inside EXEC, one held by CLIENT PAUSE, one blocked in BLPOP and ones
    whose last command was unknown or had the wrong arity; plus INFO's
    blocked_clients while the two wait."""
    keep = ("flags", "multi", "argv-mem", "cmd")

    def fields(line: str) -> dict[str, str]:
        kv = dict(part.split("=", 1) for part in line.strip().split(" "))
        return {k: kv[k] for k in keep}

    out: dict[str, dict[str, str]] = {}
    admin = server.conn()
    tx, paused, blocked, odd = server.conn(), server.conn(), server.conn(), server.conn()
    try:
        tx.command("MULTI")
        tx.command("CLIENT", "INFO")
        out["in exec"] = fields(bulk_text(tx.command("EXEC").split(b"\r\n", 1)[1]))
        odd.command("NOSUCHCOMMAND", "x")
        out["unknown"] = fields(bulk_text(odd.command("CLIENT", "LIST", "ID", _client_id(odd, admin))))
        odd.command("GET")
        out["wrong arity"] = fields(bulk_text(admin.command("CLIENT", "LIST", "ID", _client_id(odd, admin))))
        admin.command("CLIENT", "PAUSE", 5000, "WRITE")
        paused.send(b"*3\r\n$3\r\nSET\r\n$9\r\npausedkey\r\n$1\r\n1\r\n")
        blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$6\r\nnolist\r\n$1\r\n0\r\n")
        deadline = time.monotonic() + 5
        while b"blocked_clients:2" not in admin.command("INFO", "clients"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        lines = bulk_text(admin.command("CLIENT", "LIST")).strip("\n").split("\n")
        out["paused"] = fields(next(ln for ln in lines if " cmd=set " in ln))
        out["blocked"] = fields(next(ln for ln in lines if " cmd=blpop " in ln))
        admin.command("CLIENT", "UNPAUSE")
        assert paused.read_reply() == b"+OK\r\n"
        admin.command("LPUSH", "nolist", "v")
        assert blocked.read_reply() == b"*2\r\n$6\r\nnolist\r\n$1\r\nv\r\n"
    finally:
        for c in (admin, tx, paused, blocked, odd):
            c.close()
    return out


def _client_id(c: RespConn, admin: RespConn) -> int:
    """The id of ``c`` found without running a command on it."""
    lines = bulk_text(admin.command("CLIENT", "LIST")).strip("\n").split("\n")
    port = c.sock.getsockname()[1]
    line = next(ln for ln in lines if f" addr=127.0.0.1:{port} " in ln)
    return int(re.search(r"^id=(\d+)", line).group(1))  # type: ignore[union-attr]


def test_client_list_of_exec_pause_and_blocked_clients_equals_redis(ambry: ServerProcess,
                                                                    redis: ServerProcess) -> None:
    """During EXEC a client shows flag x, its queue length and cmd=exec;
    a client held by CLIENT PAUSE is blocked (flag b, counted in
    blocked_clients) with its command and argv; cmd= is the last command
    read, NULL after an unknown one."""
    theirs, mine = _client_states(redis), _client_states(ambry)
    assert theirs["in exec"] == {"flags": "x", "multi": "1", "argv-mem": "4", "cmd": "exec"}
    assert mine == theirs
