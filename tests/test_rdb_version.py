"""The hidden ``rdb-version`` directive: which RDB version SAVE / BGSAVE
write (10 as Redis 7.0 by default; 11 and 12 for 7.2 / 7.4 readers, 9 for
Redis 5/6 and the tools that only know their formats).

* the directive is hidden (CONFIG GET * stays 7.0's list), bounded to 9-12
  with Redis's config error texts;
* 11 and 12 change the header and nothing else;
* 9 writes only the formats Redis 5/6 read (no listpack, no quicklist v2,
  streams v1, no function libraries), loads back in Ambry with the same
  DEBUG DIGEST, in redis-server 7.0 too, and is read by rdbtools (a
  Python tool that refuses RDB 10+) when it is installed;
* DUMP payloads keep version 10 whatever the directive says.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ambry.persistence.rdb import FunctionLibrary, Header, Key, read_file
from ambry.persistence.rdb import constants as C
from ambry.server.config import Config, ConfigError
from ambry.server.reply import Err

_LIB = "#!lua name=vlib\nredis.register_function('vf', function() return 1 end)"


def call(inproc: Any, *args: Any) -> Any:
    r = inproc.call(*args)
    if isinstance(r, Err):
        raise AssertionError(f"{args!r} -> {r.msg!r}")
    return r


def fill(inproc: Any) -> None:
    """Every type in its compact and its large form, a stream with a group,
    expires, two dbs and a function library."""
    inproc.srv.cfg.enable_debug_command = "yes"
    for db in (0, 3):
        call(inproc, "SELECT", db)
        call(inproc, "SET", "s:int", 12345)
        call(inproc, "SET", "s:lzf", "x" * 100)
        call(inproc, "SET", "s:ttl", "v", "PX", 10**9)
        call(inproc, "RPUSH", "l:small", "a", "1", "-5")
        call(inproc, "RPUSH", "l:big", *[f"e{i}" for i in range(700)])
        call(inproc, "SADD", "set:int", 1, 2, -70000, 2**40)
        call(inproc, "SADD", "set:ht", "a", "b", "1")
        call(inproc, "HSET", "h:lp", "f", "v", "n", "12")
        call(inproc, "HSET", "h:ht", *[x for i in range(200) for x in (f"f{i}", f"v{i}")])
        call(inproc, "ZADD", "z:lp", 1, "a", 2.5, "b", "-inf", "c")
        call(inproc, "ZADD", "z:sl", *[x for i in range(200) for x in (i / 3, f"m{i}")])
        for i in range(1, 120):
            call(inproc, "XADD", "x:s", f"{i}-1", "f", i)
        call(inproc, "XDEL", "x:s", "5-1")
        call(inproc, "XGROUP", "CREATE", "x:s", "g", "0")
        call(inproc, "XREADGROUP", "GROUP", "g", "alice", "COUNT", 3, "STREAMS", "x:s", ">")
    call(inproc, "SELECT", 0)
    call(inproc, "FUNCTION", "LOAD", _LIB)


def save_at(inproc: Any, tmp: Path, version: int) -> Path:
    """SAVE with ``rdb-version`` set, into ``tmp``/dump.rdb (the test's
    working directory)."""
    assert Path.cwd() == tmp
    call(inproc, "CONFIG", "SET", "rdb-version", version)
    assert call(inproc, "SAVE") == b"OK"
    return tmp / "dump.rdb"


# -- the directive -------------------------------------------------------------------------------


def test_rdb_version_is_hidden_and_bounded(inproc: Any) -> None:
    assert call(inproc, "CONFIG", "GET", "rdb-version").items == [(b"rdb-version", b"10")]
    assert b"rdb-version" not in dict(call(inproc, "CONFIG", "GET", "*").items)
    assert call(inproc, "CONFIG", "GET", "rdb-vers*").items == []
    for v in (9, 11, 12, 10):
        assert call(inproc, "CONFIG", "SET", "rdb-version", v) == b"OK"
        assert inproc.srv.cfg.rdb_version == v
    for bad in ("8", "13", "-1", "ten"):
        r = inproc.call("CONFIG", "SET", "rdb-version", bad)
        assert isinstance(r, Err) and r.msg.startswith(
            b"ERR CONFIG SET failed (possibly related to argument 'rdb-version') - "), r
    assert inproc.call("CONFIG", "SET", "rdb-version", "13").msg.endswith(b"argument must be between 9 and 12 inclusive")


def test_rdb_version_in_the_config_file_and_command_line() -> None:
    cfg = Config()
    cfg.apply_args(["--rdb-version", "9"])
    assert cfg.rdb_version == 9
    with pytest.raises(ConfigError) as e:
        Config().apply_args(["--rdb-version", "13"])
    assert "argument must be between 9 and 12 inclusive" in str(e.value)
    assert "FATAL CONFIG FILE ERROR" in str(e.value)


# -- what SAVE writes ----------------------------------------------------------------------------


def _keys(path: Path) -> dict[tuple[int, bytes], Key]:
    return {(e.db, e.key): e for e in read_file(str(path)) if isinstance(e, Key)}


def test_versions_11_and_12_change_only_the_header(inproc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fill(inproc)
    base = save_at(inproc, tmp_path, 10).read_bytes()
    for v in (11, 12):
        data = save_at(inproc, tmp_path, v).read_bytes()
        assert data[:9] == b"REDIS%04d" % v
        events = list(read_file(str(tmp_path / "dump.rdb")))
        assert isinstance(events[0], Header) and events[0].version == v and events[-1].computed is not None
        # The same records after the aux fields (ctime / used-mem may differ).
        assert data[data.index(b"\xf5"):-8] == base[base.index(b"\xf5"):-8]


@pytest.mark.parametrize("version", [11, 12])
def test_dumps_at_11_and_12_load_back(server_factory: Any, version: int) -> None:
    from test_rdb_server import build_dataset

    a = server_factory("ambry", "--rdb-version", str(version))
    build_dataset(a)
    digest = a.command("DEBUG", "DIGEST")
    assert a.command("SAVE") == b"+OK\r\n"
    assert (a.workdir / "dump.rdb").read_bytes()[:9] == b"REDIS%04d" % version
    assert a.command("DEBUG", "RELOAD") == b"+OK\r\n"
    assert a.command("DEBUG", "DIGEST") == digest


def test_version_9_uses_only_formats_redis_6_reads(inproc: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fill(inproc)
    digest = call(inproc, "DEBUG", "DIGEST")
    path = save_at(inproc, tmp_path, 9)
    events = list(read_file(str(path)))
    assert isinstance(events[0], Header) and events[0].version == 9
    assert not [e for e in events if isinstance(e, FunctionLibrary)]
    types = {k.rdb_type for k in events if isinstance(k, Key)}
    assert types <= {C.TYPE_STRING, C.TYPE_LIST, C.TYPE_SET, C.TYPE_HASH, C.TYPE_ZSET_2, C.TYPE_SET_INTSET,
                     C.TYPE_STREAM_LISTPACKS}
    assert C.TYPE_STREAM_LISTPACKS in types and C.TYPE_SET_INTSET in types
    keys = _keys(path)
    assert keys[(3, b"s:ttl")].expire_ms is not None
    stream = keys[(0, b"x:s")].value
    assert stream.length == 118 and stream.groups[0].name == b"g"  # type: ignore[attr-defined]
    # Ambry loads it back: same dataset (the library is not in the file).
    assert call(inproc, "DEBUG", "RELOAD", "NOSAVE") == b"OK"
    assert call(inproc, "DEBUG", "DIGEST") == digest
    assert call(inproc, "FUNCTION", "LIST") == []


def test_dump_payloads_stay_at_version_10(inproc: Any) -> None:
    call(inproc, "CONFIG", "SET", "rdb-version", 9)
    call(inproc, "HSET", "h", "f", "v")
    payload = call(inproc, "DUMP", "h")
    assert payload[0] == C.TYPE_HASH_LISTPACK and payload[-10:-8] == b"\x0a\x00"


# -- real readers of version 9 ---------------------------------------------------------------------


def _ambry_dump_v9(server_factory: Any) -> tuple[Path, bytes]:
    """A version-9 dump of a dataset built in ambry-server, and its digest."""
    from test_rdb_server import build_dataset

    a = server_factory("ambry", "--rdb-version", "9")
    build_dataset(a)
    assert a.command("SAVE") == b"+OK\r\n"
    return a.workdir / "dump.rdb", a.command("DEBUG", "DIGEST")


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_7_loads_a_version_9_dump(server_factory: Any, tmp_path: Path) -> None:
    path, digest = _ambry_dump_v9(server_factory)
    assert path.read_bytes()[:9] == b"REDIS0009"
    check = subprocess.run(["redis-check-rdb", str(path)], capture_output=True, text=True)
    assert check.returncode == 0 and "RDB looks OK" in check.stdout, check.stdout
    d = tmp_path / "redis"
    d.mkdir()
    shutil.copy(path, d / "dump.rdb")
    r = server_factory("redis", "--dir", str(d))
    assert r.command("DEBUG", "DIGEST") == digest


def _rdbtools() -> str | None:
    """The ``rdb`` script of rdbtools next to this Python, if installed."""
    exe = Path(sys.executable).parent / "rdb"
    if not exe.exists():
        return None
    probe = subprocess.run([sys.executable, "-c", "import rdbtools"], capture_output=True)
    return str(exe) if probe.returncode == 0 else None


@pytest.mark.skipif(_rdbtools() is None, reason="rdbtools is not installed (pip install '.[bench]')")
def test_rdbtools_reads_a_version_9_dump(server_factory: Any, tmp_path: Path) -> None:
    """rdbtools (which refuses RDB 10+) parses every key of the dump."""
    path, _ = _ambry_dump_v9(server_factory)
    rdb = _rdbtools()
    assert rdb is not None
    v10 = tmp_path / "v10.rdb"
    data = bytearray(path.read_bytes())
    data[5:9] = b"0010"
    v10.write_bytes(bytes(data[:-8]) + b"\0" * 8)
    refused = subprocess.run([rdb, "--command", "json", str(v10)], capture_output=True, text=True)
    assert refused.returncode != 0  # the tool really is limited to RDB <= 9
    got = subprocess.run([rdb, "--command", "json", str(path)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert got.returncode == 0, got.stderr
    dbs = json.loads(got.stdout)
    ours = _keys(path)
    assert sum(len(db) for db in dbs) == len(ours)
    db0 = dbs[0]
    assert db0["str:short"] == "hello" and db0["list:small"] == ["a", "1", "-5", "b" * 70]
    assert sorted(db0["set:ht"]) == ["1", "a", "b"] and db0["hash:lp"] == {"f": "v", "n": "12", "e": ""}
    assert float(db0["zset:lp"]["b"]) == 2.5
