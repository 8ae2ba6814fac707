"""RDB persistence in the server (server/rdb.py, commands/persistence_cmd.py).

In-process: every shared fixture loads into the server with the contents
Redis 7.0 has after loading it (or is refused where Redis refuses it), the
server's values are written by their in-memory encoding byte for byte like
the codec's writer, and mutated files never get anything but a clean
refusal.  With real processes: SAVE/BGSAVE/save points/SHUTDOWN/LASTSAVE/
MISCONF, the start-up load (-LOADING meanwhile, exit 1 on damage), and
interop with redis-server both ways (DEBUG DIGEST, redis-check-rdb).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ambry.persistence.rdb import Key, RDBWriter, read_file
from ambry.persistence.rdb.encoding import crc64, enc_len, enc_str
from ambry.server import rdb
from ambry.server.commands.hashes import HashValue
from ambry.server.commands.lists import ListValue
from ambry.server.commands.sets import SetValue
from ambry.server.commands.zsets import ZSetValue
from ambry.server.reply import Err, Map
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rdb_support import FIXTURES as FIXTURES_DIR
from test_rdb_support import fixture_files, jb, json_stream, json_value, load_json, needs_fixtures

REDIS70 = fixture_files("redis-7.0/*.rdb")
LEGACY = fixture_files("*/*.loaded-by-redis-7.0.json")

# The config directives of a fixture's server_config that shape what loading gives.
_SETTABLE = (
    "list-max-listpack-size", "list-compress-depth", "hash-max-listpack-entries",
    "hash-max-listpack-value", "set-max-intset-entries", "zset-max-listpack-entries",
    "zset-max-listpack-value", "maxmemory-policy", "lfu-log-factor", "lfu-decay-time",
)


def _b(v: Any) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


class Srv:
    """Command helper over an InProcess server: errors raise, db switching."""

    def __init__(self, inproc: Any) -> None:
        self.inproc = inproc
        self.srv = inproc.srv
        self.srv.cfg.enable_debug_command = "yes"

    def __call__(self, *args: Any) -> Any:
        r = self.inproc.call(*args)
        if isinstance(r, Err):
            raise AssertionError(f"{args!r} -> {r.msg!r}")
        return r

    def err(self, *args: Any) -> bytes:
        r = self.inproc.call(*args)
        assert isinstance(r, Err), (args, r)
        return r.msg


def _value(s: Srv, key: bytes, kind: str) -> Any:
    """A key's value through commands, in test_rdb_support.norm_value form."""
    if kind == "string":
        return s("GET", key)
    if kind == "list":
        return s("LRANGE", key, 0, -1)
    if kind == "set":
        return sorted(s("SMEMBERS", key))
    if kind == "hash":
        m = s("HGETALL", key)
        return sorted(m.items if isinstance(m, Map) else zip(m[::2], m[1::2], strict=True))
    if kind == "zset":
        flat = s("ZRANGE", key, 0, -1, "WITHSCORES")
        return sorted(((m, float(v)) for m, v in zip(flat[::2], flat[1::2], strict=True)),
                      key=lambda x: (x[1], x[0]))
    if kind == "stream":
        return _xinfo(s, key)
    raise AssertionError(kind)


def _flat(r: Any) -> Any:
    """A reply with maps as RESP2 flat arrays."""
    if isinstance(r, Map):
        return [_flat(x) for kv in r.items for x in kv]
    if isinstance(r, list):
        return [_flat(x) for x in r]
    return r


def _pairs(flat: list[Any]) -> dict[bytes, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _xinfo(s: Srv, key: bytes) -> dict[str, Any]:
    """XINFO STREAM FULL in json_stream's shape, consumer seen times kept."""
    info = _pairs(_flat(s("XINFO", "STREAM", key, "FULL", "COUNT", 0)))
    groups = []
    for graw in info[b"groups"]:
        g = _pairs(graw)
        er = g[b"entries-read"]
        groups.append({
            "name": g[b"name"],
            "last_id": g[b"last-delivered-id"].decode(),
            "entries_read": -1 if er is None else er,
            "pel": sorted((p[0].decode(), p[2], p[3], p[1]) for p in g[b"pending"]),
            "consumers": sorted((c[b"name"], c[b"seen-time"], sorted(p[0].decode() for p in c[b"pending"]))
                                for c in map(_pairs, g[b"consumers"])),
        })
    return {
        "length": info[b"length"],
        "last_id": info[b"last-generated-id"].decode(),
        "first_id": info[b"recorded-first-entry-id"].decode(),
        "max_deleted_id": info[b"max-deleted-entry-id"].decode(),
        "entries_added": info[b"entries-added"],
        "entries": [(e[0].decode(), list(zip(e[1][::2], e[1][1::2], strict=True))) for e in info[b"entries"]],
        "groups": sorted(groups, key=lambda g: g["name"]),
    }


def _expected(kind: str, v: Any) -> Any:
    return json_stream(v) if kind == "stream" else json_value(kind, v)


def dataset(s: Srv) -> dict[tuple[int, bytes], dict[str, Any]]:
    """Everything the server holds, read back by commands."""
    out = {}
    for db in s.srv.dbs:
        s("SELECT", db.id)
        for key in list(db.data):
            kind = bytes(s("TYPE", key)).decode()
            out[(db.id, key)] = {
                "type": kind,
                "encoding": s("OBJECT", "ENCODING", key).decode(),
                "expire_ms": None if s("PEXPIRETIME", key) == -1 else s("PEXPIRETIME", key),
                "value": _value(s, key, kind),
            }
    s("SELECT", 0)
    return out


def _string_encoding_ok(expected: str, got: str, value: bytes) -> bool:
    """A loaded string is re-encoded by tryObjectEncoding: int for a
    canonical integer, embstr up to 44 bytes, raw beyond; the fixture lists
    the encoding the *writer* had (a raw APPEND result, say)."""
    if expected == "int":
        return got == "int"
    return got in ("embstr", "raw") and (got == "raw") == (len(value) > 44)


def _load(s: Srv, path: Path) -> None:
    rdb.load_sync(s.srv, str(path))


# -- the Redis 7.0 fixtures -----------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("path", REDIS70, ids=lambda p: p.name)
def test_redis70_fixture_loads_as_expected(inproc: Any, path: Path) -> None:
    exp = load_json(path.with_name(path.stem + ".expected.json"))
    s = Srv(inproc)
    for k, v in exp["server_config"].items():
        if k in _SETTABLE:
            s("CONFIG", "SET", k, v)
    _load(s, path)
    live = [x for x in exp["keys"] if not x.get("expired_at_save")]
    for x in live:  # before anything reads the keys (reads update LRU/LFU)
        key = jb(x["key"])
        s("SELECT", x["db"])
        if "lfu_freq" in x:
            assert s("OBJECT", "FREQ", key) == x["lfu_freq"]
        if "lru_idle_s" in x:
            assert abs(s("OBJECT", "IDLETIME", key) - x["lru_idle_s"]) <= 1
    got = dataset(s)
    assert sorted(got) == sorted((x["db"], jb(x["key"])) for x in live)
    for x in live:
        g = got[(x["db"], jb(x["key"]))]
        assert g["type"] == x["type"], x["key"]
        assert g["expire_ms"] == x["expire_ms"], x["key"]
        assert g["value"] == _expected(x["type"], x["value"]), x["key"]
        if x["type"] == "string":
            assert _string_encoding_ok(x["encoding"], g["encoding"], g["value"]), x["key"]
        else:
            assert g["encoding"] == x["encoding"], x["key"]
    s("SELECT", 0)
    libs = s.srv.function_libraries
    assert {name: code.decode() for name, code in libs.items()} == {
        f["library_name"]: f["code"] for f in exp["functions"]}
    st_ = rdb.state(s.srv)
    assert st_.last_load_keys_loaded == len(live)
    assert st_.last_load_keys_expired == len(exp["keys"]) - len(live)
    assert not s.srv.loading


# -- fixtures written by other producers: Redis 7.0's verdict ----------------------------------


@needs_fixtures
@pytest.mark.parametrize("jpath", LEGACY, ids=lambda p: p.name.split(".")[0])
def test_legacy_fixture_loads_or_is_refused_like_redis70(inproc: Any, jpath: Path) -> None:
    exp = load_json(jpath)
    path = jpath.with_name(jpath.name.replace(".loaded-by-redis-7.0.json", ".rdb"))
    s = Srv(inproc)
    s("CONFIG", "SET", "sanitize-dump-payload", "yes")  # how the fixtures were loaded
    load = exp["load"]
    if load["dataset"] is None:
        with pytest.raises(rdb.LoadError) as ei:
            _load(s, path)
        redis_said = [line[2:] for line in load["log"]]
        ours = ei.value.lines
        if redis_said[-1] == "Fatal error loading the DB: Invalid argument. Exiting.":
            # The header is refused with Redis's own two lines.
            assert ours == redis_said[-2:]
        else:
            # A damaged record: where (the byte offset) and what.
            assert re.match(r"Internal error in RDB reading offset \d+ -> ", ours[0]), ours
            what = next(line for line in redis_said if "Internal error" in line or "module" in line)
            if "module" in what:
                assert re.search(r"module.*'(ReJSON-RL|test__rdb)'", ours[0]), ours
            else:
                assert "integrity" in ours[0] or "ziplist" in ours[0] or "zipmap" in ours[0], ours
        return
    keys = load["dataset"]["keys"]
    _load(s, path)
    got = dataset(s)
    assert sorted(got) == sorted((x["db"], jb(x["key"])) for x in keys)
    for x in keys:
        g = got[(x["db"], jb(x["key"]))]
        assert (g["type"], g["expire_ms"]) == (x["type"], x["expire_ms"]), x["key"]
        assert g["value"] == _expected(x["type"], x["value"]), x["key"]
        if x["type"] == "string":
            assert _string_encoding_ok(x["encoding"], g["encoding"], g["value"]), x["key"]
        else:
            assert g["encoding"] == x["encoding"], x["key"]
    # Redis's own count of loaded and expired keys ("Done loading RDB, ...").
    done = next(line for line in load["log"] if "Done loading RDB" in line)
    m = re.search(r"keys loaded: (\d+), keys expired: (\d+)", done)
    assert m is not None
    st_ = rdb.state(s.srv)
    assert (st_.last_load_keys_loaded, st_.last_load_keys_expired) == (int(m.group(1)), int(m.group(2)))


def test_empty_collections_are_skipped_and_counted(inproc: Any, tmp_path: Path) -> None:
    w = RDBWriter(10)
    data = w.header() + w.select_db(0)
    # An empty hashtable set (type 2, length 0) and one real key.
    data += w._out(b"\x02" + enc_str(b"empty") + enc_len(0))
    data += w.key(b"k", "string", b"v") + w.eof()
    p = tmp_path / "e.rdb"
    p.write_bytes(data)
    s = Srv(inproc)
    _load(s, p)
    assert list(s.srv.dbs[0].data) == [b"k"]
    assert rdb.state(s.srv).last_load_keys_loaded == 1


def _file(keys: list[tuple[int, bytes, str, Any, int | None]], version: int = 10) -> bytes:
    w = RDBWriter(version)
    out = [w.header(), w.standard_aux()]
    db = -1
    for d, k, kind, v, exp in keys:
        if d != db:
            out.append(w.select_db(d))
            db = d
        out.append(w.key(k, kind, v, expire_ms=exp))
    out.append(w.eof())
    return b"".join(out)


@pytest.mark.parametrize("damage", ["none", "checksum", "trailing bytes", "checksum off"])
def test_the_startup_load_checks_the_checksum_in_a_child(inproc: Any, tmp_path: Path, damage: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up load leaves the CRC-64 to a forked child and checks its
    answer at EOF, as the reader would (a stored 0 means not computed; bytes
    after the dump make the parent compute it itself)."""
    import gc

    children: list[int] = []
    start = rdb.ForkedCRC.start

    def recording_start(fd: int, size: int, child_init: Any = None) -> Any:
        helper = start(fd, size, child_init)
        children.append(helper.pid)
        return helper

    monkeypatch.setattr(rdb.ForkedCRC, "start", staticmethod(recording_start))
    monkeypatch.setattr(rdb, "_CHECKSUM_CHILD_MIN_SIZE", 0)

    data = _file([(0, b"k%d" % i, "string", b"v" * (i % 50), None) for i in range(2000)])
    if damage == "checksum":
        data = data[:-1] + bytes((data[-1] ^ 1,))
    elif damage == "trailing bytes":
        data += b"*1\r\n$4\r\nPING\r\n"
    elif damage == "checksum off":
        data = data[:-8] + bytes(8)
    path = tmp_path / "c.rdb"
    path.write_bytes(data)
    s = Srv(inproc)
    try:
        if damage == "checksum":
            with pytest.raises(rdb.LoadError, match=r"offset \d+ -> Wrong RDB checksum expected"):
                for _ in rdb.load_steps(s.srv, str(path), startup=True):
                    pass
        else:
            for _ in rdb.load_steps(s.srv, str(path), startup=True):
                pass
            assert len(s.srv.dbs[0].data) == 2000
    finally:
        gc.unfreeze()
    assert len(children) == 1 and children[0] > 0
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # the child was reaped


def test_expired_keys_are_dropped_on_a_primary_and_kept_on_a_replica(inproc: Any, tmp_path: Path) -> None:
    p = tmp_path / "x.rdb"
    p.write_bytes(_file([(0, b"old", "string", b"v", 1000), (0, b"new", "string", b"v", 2**45)]))
    s = Srv(inproc)
    _load(s, p)
    assert list(s.srv.dbs[0].data) == [b"new"]
    assert rdb.state(s.srv).last_load_keys_expired == 1
    s.srv.dbs[0].clear()
    s.srv.is_replica = True
    _load(s, p)
    assert sorted(s.srv.dbs[0].data) == [b"new", b"old"]


def test_duplicate_key_is_fatal_unless_merging(inproc: Any, tmp_path: Path) -> None:
    p = tmp_path / "d.rdb"
    p.write_bytes(_file([(0, b"k", "string", b"1", None), (0, b"k", "string", b"2", None)]))
    s = Srv(inproc)
    with pytest.raises(rdb.LoadError, match="duplicated key 'k' in DB 0"):
        _load(s, p)
    s.srv.dbs[0].clear()
    rdb.load_sync(s.srv, str(p), allow_dup=True)
    assert s("GET", "k") == b"2"


def test_too_many_databases_is_fatal(inproc: Any, tmp_path: Path) -> None:
    p = tmp_path / "db.rdb"
    p.write_bytes(_file([(16, b"k", "string", b"v", None)]))
    with pytest.raises(rdb.LoadError, match="more than 16 databases"):
        _load(Srv(inproc), p)


def test_loading_converts_to_this_servers_encodings(inproc: Any, tmp_path: Path) -> None:
    """rdbLoadObject's rules: a hashtable hash or set small enough becomes a
    listpack / intset, a listpack with more entries than allowed grows."""
    s = Srv(inproc)
    p = tmp_path / "c.rdb"
    p.write_bytes(_file([
        (0, b"h", "hash", [(b"f%d" % i, b"v") for i in range(10)], None),
        (0, b"s", "set", [b"%d" % i for i in range(10)], None),
        (0, b"sx", "set", [b"a", b"1"], None),
        (0, b"z", "zset", [(b"m%d" % i, float(i)) for i in range(10)], None),
        (0, b"l", "list", [b"x"] * 10, None),
    ]))
    s("CONFIG", "SET", "hash-max-listpack-entries", "4")
    s("CONFIG", "SET", "set-max-intset-entries", "4")
    s("CONFIG", "SET", "zset-max-listpack-entries", "4")
    _load(s, p)
    enc = {k: s("OBJECT", "ENCODING", k) for k in (b"h", b"s", b"sx", b"z", b"l")}
    assert enc == {b"h": b"hashtable", b"s": b"hashtable", b"sx": b"hashtable", b"z": b"skiplist",
                   b"l": b"quicklist"}
    s.srv.dbs[0].clear()
    for k in ("hash-max-listpack-entries", "set-max-intset-entries", "zset-max-listpack-entries"):
        s("CONFIG", "SET", k, "128")
    _load(s, p)
    enc = {k: s("OBJECT", "ENCODING", k) for k in (b"h", b"s", b"sx", b"z")}
    assert enc == {b"h": b"listpack", b"s": b"intset", b"sx": b"hashtable", b"z": b"listpack"}


def _record_of(data: bytes, key: bytes) -> bytes:
    """The bytes of ``key``'s record (type byte to the end of its value)."""
    (k,) = [e for e in read_bytes_of(data) if isinstance(e, Key) and e.key == key]
    return data[k.offset:k.offset + k.size]


def read_bytes_of(data: bytes) -> list[Any]:
    from ambry.persistence.rdb import read_bytes

    return read_bytes(data)


def test_a_quicklist_keeps_its_node_layout_when_loaded(inproc: Any, tmp_path: Path) -> None:
    """rdbLoadObject appends a quicklist's nodes as the file has them
    (quicklistAppendListpack): a list cut by list-max-listpack-size 3 stays
    cut that way under the default -2, and saves to the same bytes; a plain
    RDB_TYPE_LIST is pushed into nodes of the server's own size."""
    from ambry.persistence.rdb.writer import EncodingOptions

    items = [b"%d" % i for i in range(10)] + [b"x" * 40]
    w = RDBWriter(10, options=EncodingOptions(list_max_listpack_size=3))
    data = w.header() + w.select_db(0) + w.key(b"l", "list", items)
    data += w._out(b"\x01" + enc_str(b"p") + enc_len(len(items)) + b"".join(enc_str(x) for x in items))
    data += w.eof()
    path = tmp_path / "l.rdb"
    path.write_bytes(data)
    s = Srv(inproc)
    _load(s, path)
    lv = s.srv.dbs[0].data[b"l"]
    assert [n[0] for n in lv.nodes] == [3, 3, 3, 2]
    from ambry.server.commands.lists import listpack_bytes

    assert [n[1] for n in lv.nodes] == [len(listpack_bytes(c)) for c in lv.node_chunks()]
    t, body = rdb.encode_value(lv)
    assert bytes((t,)) + enc_str(b"l") + body == _record_of(data, b"l")
    assert [n[0] for n in s.srv.dbs[0].data[b"p"].nodes] == [11]  # RPUSHed under the default size
    assert s("LRANGE", "l", 0, -1) == s("LRANGE", "p", 0, -1) == items


def test_list_nodes_take_the_sizes_they_are_given() -> None:
    from ambry.server.commands.lists import LP_HDR_EOF, entry_size

    chunks = [[b"a", b"12"], [], [b"x" * 100]]
    lv = ListValue.from_nodes(chunks, 3, 1, [99, 7, -1])
    assert [list(n) for n in lv.nodes] == [[2, 99], [1, LP_HDR_EOF + entry_size(b"x" * 100)]]
    assert list(lv) == [b"a", b"12", b"x" * 100] and (lv.fill, lv.compress) == (3, 1)
    assert [list(n) for n in ListValue.from_nodes(chunks).nodes] == [
        [2, LP_HDR_EOF + entry_size(b"a") + entry_size(b"12")], [1, LP_HDR_EOF + entry_size(b"x" * 100)]]


def test_an_intset_keeps_its_width_when_loaded(inproc: Any, tmp_path: Path) -> None:
    """An intset blob is kept as it is: 16-bit members in a 32-bit intset
    (left by SREM of a large member) stay 32-bit, and save the same."""
    w = RDBWriter(10)
    blob = struct.pack("<II3i", 4, 3, -7, 1, 2)
    data = w.header() + w.select_db(0) + w._out(b"\x0b" + enc_str(b"s") + enc_str(blob, False)) + w.eof()
    path = tmp_path / "i.rdb"
    path.write_bytes(data)
    s = Srv(inproc)
    _load(s, path)
    v = s.srv.dbs[0].data[b"s"]
    assert v.is_intset and v.width == 4 and v.intset_blob() == blob
    assert rdb.encode_value(v, False) == (11, enc_str(blob, False))


@pytest.mark.parametrize(("kind", "record", "message"), [
    ("set", b"\x02\x01k\x03\x01a\x01b\x01a", "Duplicate set members detected"),
    ("intset-like set", b"\x02\x01k\x02\x011\x011", "Duplicate set members detected"),
    ("hash", b"\x04\x01k\x02\x01f" + b"\x41\x00" + b"v" * 256 + b"\x01f\x01w", "Duplicate hash fields detected"),
    ("zset", b"\x05\x01k\x02\x01m" + struct.pack("<d", 1) + b"\x01m" + struct.pack("<d", 2),
     "Duplicate zset fields detected"),
])
def test_duplicates_in_member_by_member_values_are_fatal(inproc: Any, tmp_path: Path, kind: str, record: bytes,
                                                         message: str) -> None:
    """rdbLoadObject's dictAdd / intsetAdd of a set, hashtable hash or
    skiplist zset refuses a repeated member whatever sanitize-dump-payload
    says (RESTORE answers "Bad data format")."""
    w = RDBWriter(10)
    data = w.header() + w.select_db(0) + w._out(record) + w.eof()
    path = tmp_path / "d.rdb"
    path.write_bytes(data)
    with pytest.raises(rdb.LoadError, match=message):
        _load(Srv(inproc), path)
    payload = record[:1] + record[3:] + struct.pack("<H", 10)
    payload += struct.pack("<Q", crc64(payload))
    assert inproc.call("RESTORE", "r", 0, payload).msg == b"ERR Bad data format"


def test_a_duplicate_key_is_fatal_in_any_batch_or_when_already_held(inproc: Any, tmp_path: Path) -> None:
    """The whole-batch insert still stops at a key met twice, across input
    chunks, or one the db already holds (DEBUG RELOAD NOFLUSH)."""
    keys = [(0, b"k%d" % i, "string", b"v", None) for i in range(300)] + [(0, b"k7", "string", b"again", None)]
    path = tmp_path / "d.rdb"
    path.write_bytes(_file(keys))
    s = Srv(inproc)
    s("CONFIG", "SET", "loading-process-events-interval-bytes", 1024)  # many batches
    with pytest.raises(rdb.LoadError, match="duplicated key 'k7' in DB 0"):
        _load(s, path)
    s.srv.dbs[0].clear()
    path.write_bytes(_file(keys[:300]))
    s("SET", "k123", "held")
    with pytest.raises(rdb.LoadError, match="duplicated key 'k123' in DB 0"):
        _load(s, path)
    s.srv.dbs[0].clear()
    _load(s, path)
    assert len(s.srv.dbs[0].data) == 300 and rdb.state(s.srv).last_load_keys_loaded == 300


# -- writing by the in-memory encoding ---------------------------------------------------------


_members = st.one_of(
    st.binary(max_size=30),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: b"%d" % i),
    st.sampled_from([b"", b"0", b"-0", b"007", b"-", b"1.5", b"a" * 70, b"9" * 25, b"x" * 5000]),
)
_scores = st.one_of(
    st.floats(allow_nan=False),
    st.integers(-(2**64), 2**64).map(float),
    st.sampled_from([0.0, -0.0, 1.0, 127.0, 128.0, -1.0, 2.0**62, -(2.0**62), 2.0**63, 0.1, 1 / 3]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["hash-lp", "hash-ht", "zset-lp", "zset-sl", "set-ht", "set-int", "list", "str"]),
       members=st.lists(_members, min_size=1, max_size=40, unique=True),
       scores=st.lists(_scores, min_size=40, max_size=40), compress=st.booleans())
def test_server_values_encode_like_the_codec_writer(kind: str, members: list[bytes], scores: list[float],
                                                     compress: bool) -> None:
    """encode_value's fast paths give the codec writer's bytes for the same
    value and encoding (the writer forced to that encoding)."""
    w = rdb._WRITERS[compress]
    if kind.startswith("hash"):
        pairs = list(zip(members, reversed(members), strict=True))
        v: Any = HashValue.from_pairs(pairs, kind == "hash-lp")
        ref = w.encode_value("hash", pairs, encoding="listpack" if kind == "hash-lp" else "hashtable")
    elif kind.startswith("zset"):
        z = ZSetValue.from_pairs(zip(members, scores, strict=False), kind == "zset-lp")
        v = z
        ref = w.encode_value("zset", z.pairs(), encoding="listpack" if z.lp else "skiplist")
    elif kind == "set-ht":
        v = SetValue.hashtable(members)
        ref = w.encode_value("set", members, encoding="hashtable")
    elif kind == "set-int":
        ints = [int(m) for m in members if m.lstrip(b"-").isdigit() and len(m) < 19] or [1]
        v = SetValue.from_intset(ints)
        ref = RDBWriter(10, compression=compress).encode_value("set", [b"%d" % i for i in sorted(set(ints))])
    elif kind == "list":
        v = ListValue.from_elements(members)
        ref = RDBWriter(10, compression=compress).encode_value("list", members)
    else:
        v = members[0]
        ref = w.encode_value("string", members[0])
    assert rdb.encode_value(v, compress) == ref


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c", b"d", b"e"]) | st.binary(max_size=4),
                                st.sampled_from([0.0, -0.0, 1.0, -2.5, 1e300, float("inf")]) | st.floats(
                                    allow_nan=False)), max_size=12),
       listpack=st.booleans(), big=st.booleans())
def test_zsets_from_parallel_lists_are_the_zsets_from_pairs(pairs: list[tuple[bytes, float]], listpack: bool,
                                                            big: bool) -> None:
    """ZSetValue.from_lists (the loader's constructor) builds what from_pairs
    builds: later pairs win, -0 becomes 0 in a listpack, past SMALL_MAX a
    SortedList holds the order."""
    import math

    from ambry.server.commands import zsets

    if big:
        pairs = pairs + [(b"m%d" % i, float(i % 7)) for i in range(zsets.SMALL_MAX + 5)]
    a = ZSetValue.from_lists([m for m, _ in pairs], [s for _, s in pairs], listpack)
    b = ZSetValue.from_pairs(pairs, listpack)
    assert a.lp == b.lp and type(a.sl) is type(b.sl)
    assert [(math.copysign(1, s), s, m) for s, m in a.sl] == [(math.copysign(1, s), s, m) for s, m in b.sl]
    assert {m: (math.copysign(1, s), s) for m, s in a.scores.items()} == {
        m: (math.copysign(1, s), s) for m, s in b.scores.items()}


def test_values_keep_their_encoding_after_the_thresholds_change(inproc: Any) -> None:
    """Redis writes by the current encoding: a listpack hash stays one in
    the dump after CONFIG SET lowered hash-max-listpack-entries."""
    s = Srv(inproc)
    s("HSET", "h", *[x for i in range(10) for x in (f"f{i}", "v")])
    s("CONFIG", "SET", "hash-max-listpack-entries", "2")
    assert rdb.encode_value(s.srv.dbs[0].data[b"h"])[0] == 16  # HASH_LISTPACK
    s("SADD", "s", 1, 2, 3)
    s("SADD", "s", 70000)
    s("SREM", "s", 70000)  # the intset keeps its 32-bit width
    t, body = rdb.encode_value(s.srv.dbs[0].data[b"s"])
    assert t == 11 and body[1:5] == b"\x04\x00\x00\x00"


def test_list_node_layout_is_written_as_held(inproc: Any) -> None:
    """LPUSH fills the head node: the dump keeps the server's node layout."""
    s = Srv(inproc)
    s("CONFIG", "SET", "list-max-listpack-size", "3")
    s("LPUSH", "l", *"abcdefg")
    lv = s.srv.dbs[0].data[b"l"]
    t, body = rdb.encode_value(lv)
    keys = [e for e in read_file_bytes(b"\x12\x01l" + body) if isinstance(e, Key)]
    assert keys[0].nodes == len(lv.node_chunks()) and keys[0].value == list(lv.items)


def read_file_bytes(record: bytes) -> list[Any]:
    """Events of a one-key version-10 file around a key record."""
    from ambry.persistence.rdb import read_bytes

    w = RDBWriter(10)
    return read_bytes(w.header() + w.select_db(0) + w._out(record) + w.eof())


# -- saving in-process -------------------------------------------------------------------------


def test_save_writes_atomically_and_reloads(inproc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Srv(inproc)
    s("SET", "a", "1")
    s("SELECT", 3)
    s("RPUSH", "l", "x", "y")
    s("PEXPIRE", "l", 10**9)
    s("SELECT", 0)
    before = s("DEBUG", "DIGEST")
    assert s.srv.dirty > 0
    assert s("SAVE") == b"OK"
    assert s.srv.dirty == 0 and rdb.state(s.srv).saves == 1
    assert sorted(os.listdir(tmp_path)) == ["dump.rdb"]  # no temp file left
    assert s("DEBUG", "RELOAD") == b"OK"
    assert s("DEBUG", "DIGEST") == before
    s("CONFIG", "SET", "save", "")  # else FLUSHALL would save the empty dataset
    assert s("FLUSHALL") == b"OK"
    assert s("DEBUG", "RELOAD", "NOSAVE") == b"OK"
    assert s("DEBUG", "DIGEST") == before


def test_debug_reload_options(inproc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Srv(inproc)
    assert s.err("DEBUG", "RELOAD", "NOSAVE") == b"ERR Error trying to load the RDB dump"
    assert s.err("DEBUG", "RELOAD", "FOO") == \
        b"ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
    s("SET", "k", "old")
    s("SAVE")
    s("SET", "k", "new")
    s("SET", "other", "1")
    assert s("DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE") == b"OK"
    assert s("GET", "k") == b"old" and s("GET", "other") == b"1"


def test_flushall_saves_when_save_points_exist(inproc: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Srv(inproc)
    s("CONFIG", "SET", "save", "")
    s("MSET", "a", "1", "b", "2", "c", "3")
    d = s.srv.dirty
    s("FLUSHALL")
    assert s.srv.dirty == d + 3 and not (tmp_path / "dump.rdb").exists()
    s("FLUSHALL")
    assert s.srv.dirty == d + 3  # 7.0.15: nothing removed, nothing counted
    s("CONFIG", "SET", "save", "3600 1")
    s("MSET", "a", "1", "b", "2")
    sink = inproc.record()
    s("FLUSHALL")
    assert sink.commands[-1] == [b"FLUSHALL"]
    assert s.srv.dirty == 0  # the save reset it
    assert [e for e in read_file(str(tmp_path / "dump.rdb")) if isinstance(e, Key)] == []


def test_save_point_triggers_bgsave_from_the_cron(inproc: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Srv(inproc)
    s("CONFIG", "SET", "save", "1 2")
    s("SET", "a", "1")
    s.srv.last_save -= 5
    rdb.server_cron(s.srv)
    assert s.srv.child_type is None  # 1 change < 2
    s("SET", "b", "1")
    rdb.server_cron(s.srv)
    assert s.srv.child_type == "rdb"
    _reap(s.srv)
    assert rdb.state(s.srv).bgsave_ok and s.srv.dirty == 0
    assert sorted(k.key for k in read_file(str(tmp_path / "dump.rdb")) if isinstance(k, Key)) == [b"a", b"b"]


def _wait_for(cond: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _reap(srv: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while srv.child_type is not None:
        assert time.monotonic() < deadline, "the BGSAVE child did not finish"
        rdb.check_child_done(srv)
        time.sleep(0.01)


def test_bgsave_child_failure_sets_misconf(inproc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Srv(inproc)
    s("CONFIG", "SET", "save", "3600 1")
    s("CONFIG", "SET", "rdb-key-save-delay", "2000000")
    s("SET", "a", "1")
    assert s("BGSAVE") == b"Background saving started"
    assert s.err("BGSAVE") == b"ERR Background save already in progress"
    assert s.err("SAVE") == b"ERR Background save already in progress"
    os.kill(s.srv.child_pid, signal.SIGKILL)
    _reap(s.srv)
    st_ = rdb.state(s.srv)
    assert not st_.bgsave_ok and s.srv.dirty == 1
    assert s.err("SET", "b", "2").startswith(b"MISCONF Redis is configured to save RDB snapshots")
    assert s.err("PING").startswith(b"MISCONF")
    assert s("GET", "a") == b"1"
    s("CONFIG", "SET", "stop-writes-on-bgsave-error", "no")
    assert s("SET", "b", "2") == b"OK"
    s("CONFIG", "SET", "stop-writes-on-bgsave-error", "yes")
    assert s.err("SET", "b", "2").startswith(b"MISCONF")
    s("CONFIG", "SET", "rdb-key-save-delay", "0")
    assert s("SAVE") == b"OK"
    assert s("SET", "b", "3") == b"OK"
    assert not list(tmp_path.glob("temp-*.rdb"))


def test_bgsave_inside_exec_is_scheduled(inproc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Srv(inproc)
    s("MULTI")
    s("BGSAVE")
    assert s("EXEC") == [b"Background saving scheduled"]
    assert s.srv.child_type is None and rdb.state(s.srv).bgsave_scheduled
    assert s.err("BGSAVE", "FOO") == b"ERR syntax error"
    rdb.server_cron(s.srv)
    assert s.srv.child_type == "rdb" and not rdb.state(s.srv).bgsave_scheduled
    _reap(s.srv)
    assert (tmp_path / "dump.rdb").exists()


def test_info_persistence_fields_follow_a_bgsave(inproc: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Srv(inproc)
    s("DEBUG", "POPULATE", 1500)
    s("CONFIG", "SET", "rdb-key-save-delay", "1000")  # 1.5 s in the child

    def info() -> dict[str, str]:
        text = s("INFO", "persistence").text.decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    started = time.monotonic()
    assert s("BGSAVE") == b"Background saving started"
    i = info()
    assert (i["rdb_bgsave_in_progress"], i["current_save_keys_total"], i["rdb_saves"]) == ("1", "1500", "1")
    assert i["rdb_current_bgsave_time_sec"] == "0"
    # The child reports its progress through the child-info pipe (about once a second).
    _wait_for(lambda: rdb._receive_child_info(s.srv) or rdb.state(s.srv).keys_processed >= 1024)
    i = info()
    assert i["current_save_keys_processed"] == "1024" and i["current_fork_perc"] == "68.27"
    _reap(s.srv)
    i = info()
    assert (i["rdb_bgsave_in_progress"], i["rdb_last_bgsave_status"], i["rdb_changes_since_last_save"]) == \
        ("0", "ok", "0")
    # time(NULL) differences: the 1.5 s of key delays, rounded by the clock's
    # second boundaries, never more than what we waited plus one
    assert 1 <= int(i["rdb_last_bgsave_time_sec"]) <= int(time.monotonic() - started) + 1
    assert int(i["rdb_last_save_time"]) == s("LASTSAVE")


# -- bad input never crashes --------------------------------------------------------------------


def _fuzz_sources() -> list[bytes]:
    files = [p for p in fixture_files("*/*.rdb") if p.stat().st_size < 30000]
    return [p.read_bytes() for p in files] or [_file([(0, b"k", "string", b"v", None)])]


_SOURCES = _fuzz_sources()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_are_loaded_or_refused_cleanly(inproc: Any, tmp_path: Path, data: st.DataObject) -> None:
    """Flipped, inserted, deleted bytes and truncation anywhere in the
    fixtures: the loader either loads or raises LoadError (never another
    exception), and the server is left out of the loading state."""
    src = bytearray(data.draw(st.sampled_from(_SOURCES)))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(0, len(src) - 1)))
        if op == "flip" and src:
            src[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del src[pos:]
        elif op == "insert":
            src[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif src:
            del src[pos:pos + data.draw(st.integers(1, 8))]
    p = tmp_path / "m.rdb"
    p.write_bytes(bytes(src))
    srv = inproc.srv
    for db in srv.dbs:
        db.clear()
    srv.function_libraries.clear()
    try:
        rdb.load_sync(srv, str(p), allow_dup=data.draw(st.booleans()))
    except rdb.LoadError as e:
        assert e.lines and all(isinstance(line, str) for line in e.lines)
    assert not srv.loading
    # Whatever loaded is usable.
    Srv(inproc)("DEBUG", "DIGEST")


# -- real processes -------------------------------------------------------------------------------


def _info(server: Any, section: str = "persistence") -> dict[str, str]:
    raw = server.command("INFO", section)
    text = raw.split(b"\r\n", 1)[1].decode()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def _wait(cond: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_info_persistence_lists_redis70s_fields(ambry: Any, redis: Any) -> None:
    assert list(_info(ambry)) == list(_info(redis))


def test_bgsave_and_lastsave_on_a_real_server(server_factory: Any) -> None:
    a = server_factory("ambry")
    a.command("SET", "k", "v")
    before = int(a.command("LASTSAVE")[1:-2])
    assert a.command("BGSAVE") == b"+Background saving started\r\n"
    _wait(lambda: _info(a)["rdb_bgsave_in_progress"] == "0", what="BGSAVE")
    i = _info(a)
    assert i["rdb_last_bgsave_status"] == "ok" and i["rdb_changes_since_last_save"] == "0"
    assert int(a.command("LASTSAVE")[1:-2]) >= before
    assert "Background saving terminated with success" in a.log_text()
    keys = [e.key for e in read_file(str(a.workdir / "dump.rdb")) if isinstance(e, Key)]
    assert keys == [b"k"]
    assert int(_info(a, "stats")["total_forks"]) == 1


def test_save_points_and_shutdown_save(server_factory: Any) -> None:
    a = server_factory("ambry", "--save", "1", "1")
    a.command("SET", "k", "v")
    _wait(lambda: (a.workdir / "dump.rdb").exists(), what="the save point")
    assert "1 changes in 1 seconds. Saving..." in a.log_text()
    a.command("SET", "k2", "v2")
    assert a.stop() == 0
    assert "Saving the final RDB snapshot before exiting." in a.log_text()
    keys = sorted(e.key for e in read_file(str(a.workdir / "dump.rdb")) if isinstance(e, Key))
    assert keys == [b"k", b"k2"]
    a.start()  # the same directory: the dump loads at start-up
    assert a.command("DBSIZE") == b":2\r\n"
    assert "DB loaded from disk:" in a.log_text()


def test_shutdown_nosave_and_save_arguments(server_factory: Any) -> None:
    a = server_factory("ambry")  # save "" (no save points)
    a.command("SET", "k", "v")
    c = a.conn()
    try:
        c.command("SHUTDOWN", "NOSAVE")
    except Exception:  # noqa: BLE001 - the server closes the connection
        pass
    assert a.proc.wait(15) == 0
    assert not (a.workdir / "dump.rdb").exists()
    a.start()
    a.command("SET", "k", "v")
    c = a.conn()
    try:
        c.command("SHUTDOWN", "SAVE")
    except Exception:  # noqa: BLE001
        pass
    assert a.proc.wait(15) == 0
    a.stopped = True  # an intended exit, not a crash
    assert [e.key for e in read_file(str(a.workdir / "dump.rdb")) if isinstance(e, Key)] == [b"k"]


# -- start-up: -LOADING, and refusing damaged files -----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_ambry(workdir: Path, *extra: str, timeout: float = 60.0) -> tuple[int, str]:
    """Start ambry-server on ``workdir``'s dump.rdb and wait for it to exit
    (a damaged dump) -- or kill it once it serves (returns -1)."""
    port = _free_port()
    log = workdir / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ambry.server.main", "--port", str(port), "--bind", "127.0.0.1",
         "--appendonly", "no", "--save", "", *extra],
        cwd=workdir, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if "Ready to accept connections" in log.read_text(errors="replace"):
                return -1, log.read_text(errors="replace")
            time.sleep(0.05)
        return proc.wait(5), log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _damaged(kind: str) -> bytes:
    good = _file([(0, b"alpha", "string", b"v" * 30, None), (0, b"beta", "list", [b"a", b"b"], None)])
    if kind == "truncated":
        return good[:-20]
    if kind == "checksum":
        return good[:-1] + bytes((good[-1] ^ 1,))
    if kind == "signature":
        return b"REDIX" + good[5:]
    if kind == "version":
        return b"REDIS0011" + good[9:]
    if kind == "unknown-type":
        w = RDBWriter(10)
        return w.header() + w.select_db(0) + w._out(b"\x08\x01k\x00") + w.eof()
    if kind == "length":
        w = RDBWriter(10)
        body = w.header() + w.select_db(0) + b"\x00\x01k\x81" + struct.pack(">Q", 2**62) + b"xx"
        return body + b"\xff" + struct.pack("<Q", crc64(body + b"\xff"))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "checksum", "signature", "version", "unknown-type", "length"])
def test_damaged_dump_stops_the_server_at_startup(tmp_path: Path, kind: str) -> None:
    (tmp_path / "dump.rdb").write_bytes(_damaged(kind))
    code, log = _run_ambry(tmp_path)
    assert code == 1, log
    assert "Ready to accept connections" not in log
    if kind in ("signature", "version"):
        assert "Fatal error loading the DB: Invalid argument. Exiting." in log
    else:
        assert re.search(r"Internal error in RDB reading offset \d+", log), log
        assert "Terminating server after rdb file reading failure." in log


def test_clients_get_loading_while_the_dump_loads(tmp_path: Path) -> None:
    keys = [(0, b"k%d" % i, "string", b"v", None) for i in range(400)]
    (tmp_path / "dump.rdb").write_bytes(_file(keys))
    port = _free_port()
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ambry.server.main", "--port", str(port), "--bind", "127.0.0.1",
         "--appendonly", "no", "--save", "", "--key-load-delay", "10000",
         "--loading-process-events-interval-bytes", "1024"],
        cwd=tmp_path, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    try:
        from differential import RespConn

        conn = None
        deadline = time.monotonic() + 30
        while conn is None:
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            try:
                conn = RespConn("127.0.0.1", port, timeout=10)
            except OSError:
                time.sleep(0.02)
        assert conn.command("GET", "k1") == b"-LOADING Redis is loading the dataset in memory\r\n"
        info = conn.command("INFO", "persistence").decode()
        assert "loading:1" in info and "loading_total_bytes:" in info and "loading_eta_seconds:" in info
        _wait(lambda: conn.command("DBSIZE") == b":400\r\n", what="the load")
        assert b"loading:0" in conn.command("INFO", "persistence")
        conn.close()
        text = log.read_text()
        assert text.index("DB loaded from disk") < text.index("Ready to accept connections")
    finally:
        proc.kill()
        proc.wait()


# -- interop with redis-server -------------------------------------------------------------------


def build_dataset(server: Any) -> None:
    """Every type in both encodings, streams, expires, several dbs."""
    c = server.conn()
    try:
        rng = random.Random(5)
        for db in (0, 1, 9):
            c.command("SELECT", db)
            c.command("SET", "str:int", 12345)
            c.command("SET", "str:big", "12345678901234")
            c.command("SET", "str:short", "hello")
            c.command("SET", "str:lzf", "a" * 200)
            c.command("SET", "str:raw", bytes(rng.getrandbits(8) for _ in range(300)))
            c.command("INCRBYFLOAT", "str:float", "1.5")
            c.command("RPUSH", "list:small", "a", "1", "-5", "b" * 70)
            c.command("RPUSH", "list:big", *[f"e{i}" * (i % 7 + 1) for i in range(3000)])
            c.command("LPUSH", "list:lpush", *[f"v{i}" for i in range(2000)])
            # Quicklist nodes LZF-compressed in memory (written as LZF blobs).
            c.command("CONFIG", "SET", "list-compress-depth", 1)
            c.command("CONFIG", "SET", "list-max-listpack-size", 8)
            c.command("RPUSH", "list:compressed", *[f"abcdefgh{i % 5}" * 4 for i in range(100)])
            c.command("CONFIG", "SET", "list-compress-depth", 0)
            c.command("CONFIG", "SET", "list-max-listpack-size", -2)
            c.command("SADD", "set:int", 1, 2, 3, -70000, 2**40)
            c.command("SADD", "set:ht", "a", "b", "1")
            c.command("SADD", "set:bigint", *range(600))
            c.command("HSET", "hash:lp", "f", "v", "n", "12", "e", "")
            c.command("HSET", "hash:ht", *[x for i in range(200) for x in (f"f{i}", f"v{i}")])
            c.command("HSET", "hash:long", "f", "x" * 100)
            c.command("ZADD", "zset:lp", 1, "a", 2.5, "b", "-inf", "c", 1e300, "d")
            c.command("ZADD", "zset:sl", *[x for i in range(200) for x in (i / 3, f"m{i}")])
            c.command("ZADD", "zset:long", 1, "m" * 100)
            for i in range(1, 250):
                c.command("XADD", "stream:s", f"{i}-1", "f", i, *(["g", "x"] if i % 3 else []))
            c.command("XDEL", "stream:s", "5-1", "6-1")
            c.command("XGROUP", "CREATE", "stream:s", "grp", "0")
            c.command("XREADGROUP", "GROUP", "grp", "alice", "COUNT", 3, "STREAMS", "stream:s", ">")
            c.command("XGROUP", "CREATECONSUMER", "stream:s", "grp", "bob")
            c.command("XADD", "stream:empty", "MAXLEN", "0", "1-1", "f", "v")
            c.command("SET", "exp:str", "v", "PX", 10**9)
            c.command("RPUSH", "exp:list", "x")
            c.command("PEXPIREAT", "exp:list", 4102444800123)
        c.command("SELECT", 0)
    finally:
        c.close()


def _digest(server: Any) -> bytes:
    return server.command("DEBUG", "DIGEST")


def _start_on(server_factory: Any, kind: str, dump: Path, tmp: Path, *extra: str) -> Any:
    d = tmp / f"{kind}-load"
    d.mkdir()
    shutil.copy(dump, d / "dump.rdb")
    return server_factory(kind, "--dir", str(d), *extra)


def test_ambry_and_redis_load_each_others_dumps(server_factory: Any, tmp_path: Path) -> None:
    a = server_factory("ambry")
    r = server_factory("redis")
    build_dataset(a)
    build_dataset(r)
    digest = _digest(r)
    assert _digest(a) == digest
    assert a.command("SAVE") == b"+OK\r\n" and r.command("SAVE") == b"+OK\r\n"
    ambry_dump = a.workdir / "dump.rdb"
    check = subprocess.run(["redis-check-rdb", str(ambry_dump)], capture_output=True, text=True)
    assert check.returncode == 0 and "RDB looks OK" in check.stdout, check.stdout
    r2 = _start_on(server_factory, "redis", ambry_dump, tmp_path)
    assert _digest(r2) == digest
    a2 = _start_on(server_factory, "ambry", r.workdir / "dump.rdb", tmp_path)
    assert _digest(a2) == digest
    # The same dataset in the same encodings: every key record has Redis's
    # type byte and size (the bytes differ only by dict iteration order
    # inside hashtable sets and hashes, and the key order), streams with
    # their XDEL tombstones included.
    assert sorted(_records(ambry_dump)) == sorted(_records(r.workdir / "dump.rdb"))


def _records(path: Path) -> list[tuple[int, bytes, int, int]]:
    """(db, key, rdb type, record size) of every key record."""
    return [(e.db, e.key, e.rdb_type, e.size) for e in read_file(str(path)) if isinstance(e, Key)]


def build_layouts(server: Any) -> None:
    """Values whose bytes depend on their history, not only on their
    contents: lists cut by several list-max-listpack-size values (and
    reshaped by LPUSH, LINSERT, LREM, pops, LSET) with LZF-compressed inner
    nodes, streams with XDEL tombstones and every kind of trim over small
    nodes, consumer groups with pending entries, an emptied stream, an intset
    that keeps its 32-bit width; and the other types in their compact forms."""
    c = server.conn()
    try:
        for fill in (-1, 3, 7, 100):
            c.command("CONFIG", "SET", "list-max-listpack-size", fill)
            key = f"list:{fill}"
            c.command("RPUSH", key, *[f"e{i}-" + "x" * (i % 13) for i in range(300)])
            c.command("LPUSH", key, *[str(i * 7) for i in range(50)])
            c.command("LINSERT", key, "BEFORE", "e100-" + "x" * (100 % 13), "inserted" * 5)
            c.command("LREM", key, 0, "e5-" + "x" * 5)
            c.command("LPOP", key, 3)
            c.command("RPOP", key, 2)
            c.command("LSET", key, 10, "y" * 200)
        c.command("CONFIG", "SET", "list-max-listpack-size", -2)
        c.command("CONFIG", "SET", "stream-node-max-entries", 10)
        for i in range(1, 200):
            c.command("XADD", "stream:deleted", f"{i}-0", "f", i, *(["g", "h" * (i % 5)] if i % 4 else []))
            c.command("XADD", "stream:trimmed", f"{i}-{i % 3}", "f", "v" * (i % 9))
        c.command("XDEL", "stream:deleted", *[f"{i}-0" for i in range(3, 200, 7)])
        c.command("XTRIM", "stream:trimmed", "MAXLEN", "~", 150)
        c.command("XTRIM", "stream:trimmed", "MAXLEN", "=", 120)
        c.command("XTRIM", "stream:trimmed", "MINID", 100)
        c.command("XGROUP", "CREATE", "stream:deleted", "g1", 0)
        c.command("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 10, "STREAMS", "stream:deleted", ">")
        c.command("XACK", "stream:deleted", "g1", "1-0", "2-0")
        c.command("XGROUP", "CREATECONSUMER", "stream:deleted", "g1", "bob")
        c.command("XCLAIM", "stream:deleted", "g1", "bob", 0, "4-0")
        c.command("XADD", "stream:empty", "MAXLEN", 0, "5-5", "f", "v")
        c.command("CONFIG", "SET", "stream-node-max-entries", 100)
        c.command("SET", "str:int", 12345)
        c.command("SET", "str:lzf", "a" * 200)
        c.command("SET", "str:ttl", "v", "PX", 10**9)
        c.command("SADD", "set:int", 1, 2, 3, 70000)
        c.command("SREM", "set:int", 70000)
        c.command("HSET", "hash:lp", "f", "v", "n", 12)
        c.command("ZADD", "zset:lp", 1, "a", 2.5, "b")
        c.command("ZADD", "zset:sl", *[x for i in range(200) for x in (i / 3, f"m{i}")])
    finally:
        c.close()


def _keyspace(path: Path) -> tuple[bytes, dict[tuple[int, bytes], tuple[int | None, bytes]]]:
    """A dump's bytes from its first SELECTDB to its EOF opcode (what is
    left once the AUX fields, whose ctime and used-mem always differ, are
    set aside), and each key's (expire, record bytes)."""
    from ambry.persistence.rdb import End, SelectDB

    data = path.read_bytes()
    events = list(read_file(str(path)))
    start = next(e.offset for e in events if isinstance(e, SelectDB))
    end = next(e.offset for e in events if isinstance(e, End))
    keys = {(e.db, e.key): (e.expire_ms, data[e.offset:e.offset + e.size]) for e in events if isinstance(e, Key)}
    return data[start:end], keys


def test_a_redis_dump_loaded_and_saved_again_keeps_its_bytes(server_factory: Any, tmp_path: Path) -> None:
    """rdbLoadObject keeps a quicklist's nodes and a stream's listpacks
    (tombstones included) as the file has them, whatever the loading
    server's list-max-listpack-size and stream-node-max-*: Ambry loading a
    dump of redis-server 7.0 and saving it writes Redis's bytes again, key
    for key and in the same order.  DUMP agrees, and RESTORE keeps the
    layout too."""
    r = server_factory("redis", "--list-compress-depth", "1")
    build_layouts(r)
    assert r.command("SAVE") == b"+OK\r\n"
    src = r.workdir / "dump.rdb"
    # Loaded with the default node limits: the file's layout must win.
    a = _start_on(server_factory, "ambry", src, tmp_path, "--list-compress-depth", "1")
    assert a.command("SAVE") == b"+OK\r\n"
    theirs, their_keys = _keyspace(src)
    mine, my_keys = _keyspace(tmp_path / "ambry-load" / "dump.rdb")
    assert len(their_keys) == 14
    assert {k for k in my_keys if my_keys[k] != their_keys.get(k)} == set()
    assert mine == theirs
    for _, key in their_keys:
        payload = r.command("DUMP", key)
        assert a.command("DUMP", key) == payload, key
        raw = payload.split(b"\r\n", 1)[1][:-2]
        assert a.command("RESTORE", b"copy:" + key, 0, raw) == b"+OK\r\n"
        assert a.command("DUMP", b"copy:" + key) == payload, key


def test_lru_and_lfu_survive_a_reload(server_factory: Any) -> None:
    """The dump carries LFU counters (FREQ) under an LFU policy and idle
    times (IDLE) under an LRU one; DEBUG RELOAD gives them back."""
    a = server_factory("ambry", "--maxmemory-policy", "allkeys-lfu", "--lfu-decay-time", "0")
    a.command("SET", "k", "v")
    payload = a.command("DUMP", "k").split(b"\r\n", 1)[1][:-2]
    assert a.command("RESTORE", "f", "0", payload, "FREQ", "77") == b"+OK\r\n"
    assert a.command("DEBUG", "RELOAD") == b"+OK\r\n"
    assert a.command("OBJECT", "FREQ", "f") == b":77\r\n"
    assert a.command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == b"+OK\r\n"
    assert a.command("RESTORE", "i", "0", payload, "IDLETIME", "5000") == b"+OK\r\n"
    assert a.command("DEBUG", "RELOAD") == b"+OK\r\n"
    idle = int(a.command("OBJECT", "IDLETIME", "i")[1:-2])
    assert 5000 <= idle <= 5010


@needs_fixtures
def test_function_libraries_survive_a_save(inproc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           server_factory: Any) -> None:
    """Libraries read from a dump are kept as their code and written back
    (FUNCTION2 records) for the scripting layer; Redis loads them."""
    from ambry.persistence.rdb import FunctionLibrary

    monkeypatch.chdir(tmp_path)
    s = Srv(inproc)
    src = FIXTURES_DIR / "redis-7.0" / "functions.rdb"
    _load(s, src)
    want = {e.name: e.code for e in read_file(str(src)) if isinstance(e, FunctionLibrary)}
    assert s.srv.function_libraries == want
    assert s("SAVE") == b"OK"
    got = {e.name: e.code for e in read_file(str(tmp_path / "dump.rdb")) if isinstance(e, FunctionLibrary)}
    assert got == want
    with pytest.raises(rdb.LoadError, match="Library 'mylib' already exists"):
        rdb.load_sync(s.srv, "dump.rdb")  # NOFLUSH without MERGE
    r = _start_on(server_factory, "redis", tmp_path / "dump.rdb", tmp_path)
    listed = r.command("FUNCTION", "LIST")
    assert b"mylib" in listed and b"counters" in listed


def test_debug_reload_of_a_damaged_dump_stops_the_server(server_factory: Any) -> None:
    """rdbReportError during DEBUG RELOAD: the dataset is already flushed and
    partly loaded, so the server exits instead of serving it."""
    a = server_factory("ambry")
    a.command("SET", "k", "v")
    (a.workdir / "dump.rdb").write_bytes(_damaged("truncated"))
    c = a.conn()
    try:
        c.command("DEBUG", "RELOAD", "NOSAVE")
    except Exception:  # noqa: BLE001 - the server goes away without a reply
        pass
    finally:
        c.close()
    assert a.proc.wait(15) == 1
    a.stopped = True
    assert "Terminating server after rdb file reading failure." in a.log_text()
