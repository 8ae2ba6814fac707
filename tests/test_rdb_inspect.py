"""rdb-inspect (ambry.tools.rdb_inspect): every subcommand on the shared
fixtures and on dumps written by a real redis-server 7.0.15 and by Ambry.

* ``dump`` equals the fixtures' expected JSON (what the live server held)
  and what a real server holds for a dataset it saved;
* ``memory`` equals ``MEMORY USAGE key SAMPLES 0`` of redis-server 7.0.15
  after it loaded the same file (exactly, except skiplist nodes, whose
  random levels the model counts at their mean);
* ``to-resp`` piped into ``redis-cli --pipe`` rebuilds a server with the
  same DEBUG DIGEST, function libraries and stream groups;
* ``diff`` of a file with itself is empty; real changes are found;
* ``verify`` names the offset and key of damage;
* ``report`` renders in headless Chromium (screenshot and DOM checks).
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ambry.persistence.rdb import Key, RDBWriter, StreamID, read_file
from ambry.persistence.rdb.writer import EncodingOptions
from ambry.tools import rdb_inspect as ri
from ambry.tools.memory_model import CONFIG_DIRECTIVES, LoadConfig, estimate, je_size, rax_nodes
from ambry.tools.rdb_inspect import main, redis_glob
from ambry.tools.rdb_inspect_stats import PrefixTree, TopN, ttl_bucket

FIXTURES = Path("/work/shared/fixtures/rdb")
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared RDB fixtures are absent")
_no_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


def needs_redis(f: Callable[..., Any]) -> Callable[..., Any]:
    """A test against a real redis-server: marked interop, skipped without one."""
    return pytest.mark.interop(_no_redis(f))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def fixture_files(pattern: str) -> list[Path]:
    return sorted(FIXTURES.glob(pattern)) if FIXTURES.is_dir() else []


REDIS70 = fixture_files("redis-7.0/*.rdb")
LEGACY = [p for p in fixture_files("*/*.loaded-by-redis-7.0.json")
          if (json.loads(p.read_text()).get("load") or {}).get("dataset")]
ALL_RDB = fixture_files("*/*.rdb")
BAD_RDB = {"corrupt_ziplist.rdb", "zipmap_big_len.rdb"}


def jb(v: Any) -> bytes:
    return v.encode() if isinstance(v, str) else base64.b64decode(v["base64"])


def cli(capsysbinary: Any, *argv: str) -> tuple[int, bytes, str]:
    """Run rdb-inspect in-process: (exit code, stdout bytes, stderr text)."""
    code = main(list(argv))
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


def cli_json(capsysbinary: Any, *argv: str) -> Any:
    code, out, err = cli(capsysbinary, *argv)
    assert code == 0, err
    return json.loads(out)


def ndjson(data: bytes) -> list[Any]:
    return [json.loads(line) for line in data.splitlines() if line]


def load_config_args(exp: dict[str, Any]) -> list[str]:
    """--config options for the encoding thresholds a fixture was written with."""
    args = exp.get("server_args", [])
    out = []
    for i in range(0, len(args) - 1, 2):
        name = args[i].lstrip("-")
        if name.replace("-", "_").replace("ziplist", "listpack") in CONFIG_DIRECTIVES:
            out += ["--config", f"{name}={args[i + 1]}"]
    return out


def key_order(k: dict[str, Any]) -> tuple[int, bytes]:
    return (k["db"], jb(k["key"]))


# -- dump vs the fixtures ------------------------------------------------------------------


def _comparable(k: dict[str, Any]) -> dict[str, Any]:
    """A fixture key object without what an RDB file cannot know: embstr
    versus raw (an in-memory detail), DEBUG OBJECT's quicklist info,
    XINFO's computed lag and the generator's expired-at-save flag."""
    k = json.loads(json.dumps(k))
    k.pop("quicklist", None)
    k.pop("expired_at_save", None)
    if k["type"] == "string" and k["encoding"] in ("embstr", "raw"):
        k["encoding"] = "embstr|raw"
    if k["type"] == "stream":
        for g in k["value"]["groups"]:
            g.pop("lag", None)
    return k


@needs_fixtures
@pytest.mark.parametrize("path", REDIS70, ids=lambda p: p.name)
def test_dump_equals_the_expected_json_of_every_redis70_fixture(path: Path, capsysbinary: Any) -> None:
    exp = json.loads(path.with_name(path.stem + ".expected.json").read_text())
    doc = cli_json(capsysbinary, "dump", str(path), *load_config_args(exp))
    assert doc["rdb_version"] == exp["rdb_version"]
    assert doc["db_sizes"] == exp["db_sizes"]
    assert sorted((f["library_name"], f["engine"], f["code"]) for f in doc["functions"]) == \
        sorted((f["library_name"], f["engine"], f["code"]) for f in exp["functions"])
    for name, value in exp["aux"].items():
        if name in ("redis-ver", "redis-bits", "aof-base"):
            assert doc["aux"][name] == value
    assert set(doc["aux"]) == set(exp["aux"])
    got = sorted((_comparable(k) for k in doc["keys"]), key=key_order)
    want = [_comparable(k) for k in exp["keys"]]
    assert [key_order(k) for k in got] == [key_order(k) for k in want]
    for g, w in zip(got, want, strict=True):
        if "lru_idle_s" in w:
            assert abs(g.pop("lru_idle_s") - w.pop("lru_idle_s")) <= 1
        assert g == w, w["key"]
    if path.name == "nochecksum.rdb":
        assert doc["checksum"]["status"] == "disabled (stored as 0)"
    else:
        assert doc["checksum"]["status"] == "OK"


@needs_fixtures
@pytest.mark.parametrize("jpath", LEGACY, ids=lambda p: p.name.split(".")[0])
def test_dump_of_legacy_fixtures_equals_what_redis70_loads(jpath: Path, capsysbinary: Any) -> None:
    """Other producers' files (RDB 2-10): values and the encodings 7.0 gives
    them on load (default config) -- the memory model's load rules."""
    ds = json.loads(jpath.read_text())["load"]["dataset"]
    path = jpath.with_name(jpath.name.replace(".loaded-by-redis-7.0.json", ".rdb"))
    doc = cli_json(capsysbinary, "dump", str(path))
    got = {key_order(k): _comparable(k) for k in doc["keys"]}
    for w in map(_comparable, ds["keys"]):
        g = got[key_order(w)]  # keys 7.0 dropped (expired) are absent from ds only
        g.pop("lru_idle_s", None)
        g.pop("lfu_freq", None)
        if w["type"] == "stream":
            for grp in g["value"]["groups"]:  # 7.0 estimates entries_read of type-15 groups itself
                grp.pop("entries_read")
            for grp in w["value"]["groups"]:
                grp.pop("entries_read")
            w["value"].pop("listpack_nodes")
            g["value"].pop("listpack_nodes")
        assert g["rdb_type"] != w["rdb_type"] or g == w, w["key"]
        g.pop("rdb_type")
        w.pop("rdb_type")  # the reloaded dataset reports the type 7.0 would write
        assert g == w, w["key"]


@needs_fixtures
def test_ndjson_lines_are_the_document_keys(capsysbinary: Any) -> None:
    path = str(FIXTURES / "redis-7.0/all-types.rdb")
    doc = cli_json(capsysbinary, "dump", path)
    code, out, _ = cli(capsysbinary, "dump", "--ndjson", path)
    assert code == 0
    assert ndjson(out) == doc["keys"]
    code, out, _ = cli(capsysbinary, "dump", "--ndjson", "--meta", path)
    lines = ndjson(out)
    records = [x["record"] for x in lines if "record" in x]
    assert records[0] == "header" and records[-1] == "end"
    assert records.count("aux") == 5 and records.count("function") == 2
    assert [x for x in lines if "record" not in x] == doc["keys"]


@needs_fixtures
def test_dump_is_binary_safe(capsysbinary: Any) -> None:
    doc = cli_json(capsysbinary, "dump", str(FIXTURES / "redis-7.0/binary.rdb"))
    keys = {jb(k["key"]): k for k in doc["keys"]}
    assert b"\xff\xfe\xfd" in keys and keys[b"\xff\xfe\xfd"]["key"] == {"base64": "//79"}
    assert b"*1\r\n$4\r\nPING\r\n" in keys
    raw = json.dumps(doc)
    assert "\\u0000" in raw  # NUL bytes stay JSON-escaped inside strings


@needs_fixtures
def test_file_order_keeps_the_stored_order(capsysbinary: Any) -> None:
    path = str(FIXTURES / "redis-7.0/zsets.rdb")
    events = {e.key: e for e in read_file(path) if isinstance(e, Key)}
    doc = cli_json(capsysbinary, "dump", "--file-order", "--type", "zset", path)
    for k in doc["keys"]:
        ev = events[jb(k["key"])]
        assert [jb(m) for m, _ in k["value"]] == [m for m, _ in ev.value]  # type: ignore[attr-defined]


def test_orjson_and_json_give_the_same_documents(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "x.rdb"
    _write_dataset(path, EncodingOptions())
    out1 = tmp_path / "a.json"
    out2 = tmp_path / "b.json"
    assert main(["dump", str(path), "-o", str(out1)]) == 0
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    monkeypatch.setattr(ri, "_dumps", lambda o: enc.encode(o).encode())
    assert main(["dump", str(path), "-o", str(out2)]) == 0
    assert json.loads(out1.read_bytes()) == json.loads(out2.read_bytes())


# -- filters ---------------------------------------------------------------------------------


@needs_fixtures
def test_filters_of_the_rdbtools_parser_filters_fixture(capsysbinary: Any) -> None:
    path = str(FIXTURES / "rdbtools/parser_filters.rdb")

    def keys(*opts: str) -> list[bytes]:
        code, out, err = cli(capsysbinary, "dump", "--ndjson", path, *opts)
        assert code == 0, err
        return sorted(jb(k["key"]) for k in ndjson(out))

    everything = keys()
    assert len(everything) == 43
    assert keys("--key", "k[0-9]") == [b"k1", b"k3"]
    assert keys("--type", "sortedset") == [b"z1", b"z2", b"z3", b"z4"]
    assert keys("--type", "zset", "--not-key", "z[12]") == [b"z3", b"z4"]
    assert keys("--key-regex", "^z[34]$", "--key-regex", "^k1$") == [b"k1", b"z3", b"z4"]
    assert keys("--key", "k*", "--key", "z1") == sorted(k for k in everything if k.startswith(b"k") or k == b"z1")
    assert len(keys("--limit", "5")) == 5
    assert keys("--db", "1") == []


@needs_fixtures
def test_db_and_ttl_filters(capsysbinary: Any) -> None:
    path = str(FIXTURES / "redis-7.0/expire.rdb")
    exp = json.loads((FIXTURES / "redis-7.0/expire.expected.json").read_text())

    def keys(*opts: str) -> set[tuple[int, bytes]]:
        code, out, _ = cli(capsysbinary, "dump", "--ndjson", path, *opts)
        assert code == 0
        return {key_order(k) for k in ndjson(out)}

    assert keys("--expiring") == {key_order(k) for k in exp["keys"] if k["expire_ms"] is not None}
    assert keys("--persistent") == {key_order(k) for k in exp["keys"] if k["expire_ms"] is None}
    assert keys("--db", "1") == {key_order(k) for k in exp["keys"] if k["db"] == 1}
    assert keys("--db", "1", "--expiring") == {key_order(k) for k in exp["keys"]
                                              if k["db"] == 1 and k["expire_ms"] is not None}


def test_limit_stops_reading(tmp_path: Path, capsysbinary: Any) -> None:
    """--limit ends the scan: a file damaged after the first keys still dumps them."""
    path = tmp_path / "x.rdb"
    _write_dataset(path, EncodingOptions())
    data = path.read_bytes()
    (tmp_path / "cut.rdb").write_bytes(data[:len(data) * 2 // 3])
    code, out, err = cli(capsysbinary, "dump", "--ndjson", "--limit", "3", str(tmp_path / "cut.rdb"))
    assert code == 0 and len(ndjson(out)) == 3, err
    code, out, err = cli(capsysbinary, "dump", "--ndjson", str(tmp_path / "cut.rdb"))
    assert code == ri.EXIT_BAD_RDB and "unexpected end of input" in err


GLOB_KEYS = [b"a", b"ab", b"abc", b"a*c", b"a?c", b"a[c", b"a]c", b"a\\c", b"hello", b"hallo", b"hxllo",
             b"heeeello", b"h\xffllo", b"a-c", b"a^c", b"", b"x\ny", b"B", b"b"]
GLOB_PATTERNS = [b"*", b"a*", b"*c", b"a?c", b"a\\*c", b"a\\?c", b"h[ae]llo", b"h[^e]llo", b"h[a-b]llo",
                 b"h[b-a]llo", b"a[\\]]c", b"a[]c", b"h*llo", b"h?llo", b"a[c", b"*\\\\*", b"[^a]*", b"a[-]c",
                 b"x?y", b"[B]", b"[a-z]", b"a[\\-]c", b"a[*]c"]


@needs_redis
def test_key_globs_match_like_redis_keys(server_factory: Callable[..., Any]) -> None:
    import redis as redis_py

    s = server_factory("redis")
    r = redis_py.Redis(host=s.host, port=s.port)
    for k in GLOB_KEYS:
        r.set(k, b"1")
    for pat in GLOB_PATTERNS:
        want = set(r.keys(pat))
        got = {k for k in GLOB_KEYS if redis_glob(pat).match(k)}
        assert got == want, pat
    r.close()


# -- summary ------------------------------------------------------------------------------------


@needs_fixtures
def test_summary_counts_match_the_fixture(capsysbinary: Any) -> None:
    path = FIXTURES / "redis-7.0/all-types.rdb"
    exp = json.loads((FIXTURES / "redis-7.0/all-types.expected.json").read_text())
    d = cli_json(capsysbinary, "summary", "--json", "--memory", str(path))
    assert d["rdb_version"] == 10 and d["file_bytes"] == path.stat().st_size
    assert d["keys"] == len(exp["keys"])
    by_type: dict[str, int] = {}
    for k in exp["keys"]:
        by_type[k["type"]] = by_type.get(k["type"], 0) + 1
    assert {t: v["keys"] for t, v in d["types"].items()} == by_type
    assert {db: {"keys": v["keys"], "expires": v["expires"]} for db, v in d["dbs"].items()} == exp["db_sizes"]
    assert all(v["resize_hint"] == [exp["db_sizes"][db]["keys"], exp["db_sizes"][db]["expires"]]
               for db, v in d["dbs"].items())
    assert d["expires"] == sum(1 for k in exp["keys"] if k["expire_ms"] is not None)
    assert sum(d["ttl"]["histogram"].values()) == d["expires"]
    assert d["ttl"]["min_expire_ms"] == min(k["expire_ms"] for k in exp["keys"] if k["expire_ms"])
    assert sorted(f["library_name"] for f in d["functions"]) == sorted(f["library_name"] for f in exp["functions"])
    events = [e for e in read_file(str(path)) if isinstance(e, Key)]
    assert d["serialized_bytes"] == sum(e.size for e in events)
    assert d["memory"] == sum(estimate(e, LoadConfig()).memory for e in events)
    assert d["checksum"]["status"] == "OK"
    assert d["biggest_records"][0]["serialized_bytes"] == max(e.size for e in events)
    assert sum(e["keys"] for e in d["encodings"]) == d["keys"]
    code, out, _ = cli(capsysbinary, "summary", str(path))
    text = out.decode()
    assert code == 0
    for part in ("RDB version      10", "redis-ver", "By type", "By database", "Expiry spread", "mylib",
                 "Checksum         OK"):
        assert part in text


@needs_fixtures
def test_summary_ttl_spread_follows_now(capsysbinary: Any) -> None:
    path = str(FIXTURES / "redis-7.0/expire.rdb")
    keys = [e for e in read_file(path) if isinstance(e, Key) and e.expire_ms is not None]
    now = 4102444800123 + 5  # in the middle of the fixed 2100-01-01 expiries
    d = cli_json(capsysbinary, "summary", "--json", "--now", str(now), path)
    assert d["already_expired"] == sum(1 for k in keys if k.expire_ms - now <= 0)  # type: ignore[operator]
    assert d["ttl"]["histogram"]["expired"] == d["already_expired"] > 0


# -- verify -------------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("path", [p for p in ALL_RDB if p.name not in BAD_RDB], ids=lambda p: p.name)
def test_verify_accepts_every_valid_fixture(path: Path, capsysbinary: Any) -> None:
    code, out, err = cli(capsysbinary, "verify", str(path))
    assert code == 0, out + err.encode()
    assert b"RDB looks OK" in out


@needs_fixtures
def test_verify_names_offset_and_key_of_damage(capsysbinary: Any) -> None:
    path = str(FIXTURES / "redis-tests/corrupt_ziplist.rdb")
    code, out, _ = cli(capsysbinary, "verify", path)
    assert code == ri.EXIT_BAD_RDB
    assert b"--- RDB ERROR DETECTED ---" in out and b"[offset 488]" in out
    assert b"While reading key 'key:000000000091'" in out
    d = json.loads(cli(capsysbinary, "verify", "--json", path)[1])
    assert d["ok"] is False and d["error"]["offset"] == 488 and d["error"]["key"] == "key:000000000091"
    assert cli(capsysbinary, "verify", "-q", path)[:2] == (ri.EXIT_BAD_RDB, b"")


def test_verify_catches_truncation_and_checksum(tmp_path: Path, capsysbinary: Any) -> None:
    path = tmp_path / "x.rdb"
    _write_dataset(path, EncodingOptions())
    data = path.read_bytes()
    assert cli(capsysbinary, "verify", str(path))[0] == 0
    bad = bytearray(data)
    bad[-3] ^= 0x40  # in the CRC trailer
    (tmp_path / "crc.rdb").write_bytes(bytes(bad))
    code, out, _ = cli(capsysbinary, "verify", str(tmp_path / "crc.rdb"))
    assert code == ri.EXIT_BAD_RDB and b"Wrong RDB checksum" in out
    events = [e for e in read_file(str(path)) if isinstance(e, Key)]
    victim = events[len(events) // 2]
    (tmp_path / "cut.rdb").write_bytes(data[:victim.offset + victim.size - 2])
    d = json.loads(cli(capsysbinary, "verify", "--json", str(tmp_path / "cut.rdb"))[1])
    assert d["ok"] is False and d["error"]["type"] == "RDBTruncatedError"
    assert jb(d["error"]["key"]) == victim.key and d["keys"] == len(events) // 2
    # other commands fail the same way, with a message and no traceback
    code, _, err = cli(capsysbinary, "summary", str(tmp_path / "cut.rdb"))
    assert code == ri.EXIT_BAD_RDB and err.startswith("rdb-inspect: unexpected end of input") and "Traceback" not in err


def test_verify_deep_finds_what_the_shallow_check_allows(tmp_path: Path, capsysbinary: Any) -> None:
    """A duplicate set member in an intset passes the plain check (Redis's
    default) and fails --deep (sanitize-dump-payload yes)."""
    from ambry.persistence.rdb.encoding import crc64, enc_str

    intset = struct.pack("<II", 2, 2) + struct.pack("<hh", 5, 5)
    body = b"REDIS0010" + b"\xfe\x00" + b"\x0b" + enc_str(b"s") + enc_str(intset) + b"\xff"
    (tmp_path / "d.rdb").write_bytes(body + struct.pack("<Q", crc64(body)))
    assert cli(capsysbinary, "verify", str(tmp_path / "d.rdb"))[0] == 0
    code, out, _ = cli(capsysbinary, "verify", "--deep", str(tmp_path / "d.rdb"))
    assert code == ri.EXIT_BAD_RDB and b"While reading key 's'" in out


# -- memory, bigkeys, prefixes ---------------------------------------------------------------------


def test_jemalloc_classes_and_rax_nodes() -> None:
    assert [je_size(n) for n in (1, 8, 9, 16, 17, 48, 65, 128, 129, 160, 161, 4096, 4097, 20000)] == \
        [8, 8, 16, 16, 32, 48, 80, 128, 160, 160, 192, 4096, 5120, 20480]
    assert rax_nodes([]) == 1 and rax_nodes([5]) == 2
    assert rax_nodes([0x100, 0x101]) == 4  # head (compressed 15 bytes), branch, two leaves


def _rax_by_trie(keys: list[bytes]) -> int:
    """Node count of a radix tree built from an explicit byte trie: the
    head, every child of a branching node, and every node that ends a chain
    of single-child nodes (a branching node or a leaf)."""
    trie: dict[int, Any] = {}
    for k in keys:
        node = trie
        for b in k:
            node = node.setdefault(b, {})

    def count(node: dict[int, Any]) -> int:
        n = 0
        for child in node.values():
            if len(node) >= 2 or len(child) != 1:
                n += 1
            n += count(child)
        return n

    return 1 + count(trie)


def test_rax_nodes_equals_an_explicit_trie() -> None:
    rnd = random.Random(7)
    for _ in range(300):
        n = rnd.randrange(1, 40)
        base = rnd.randrange(0, 1 << 20)
        keys = sorted({(base + rnd.randrange(0, 1 << rnd.choice((4, 8, 12, 20, 40)))) for _ in range(n)})
        assert rax_nodes(keys) == _rax_by_trie([k.to_bytes(16, "big") for k in keys]), keys


@needs_redis
def test_rax_nodes_equals_xinfo_radix_tree_nodes(server_factory: Callable[..., Any]) -> None:
    """Against Redis itself: one entry per stream node, so the rax holds
    exactly the chosen IDs (XINFO STREAM radix-tree-keys/-nodes)."""
    import redis as redis_py

    s = server_factory("redis", "--stream-node-max-entries", "1")
    r = redis_py.Redis(host=s.host, port=s.port)
    rnd = random.Random(3)
    for i in range(40):
        ids = sorted({(rnd.randrange(1, 1 << rnd.choice((8, 16, 40, 63))), rnd.randrange(0, 1 << rnd.choice((1, 8, 30))))
                      for _ in range(rnd.randrange(1, 30))})
        for ms, seq in ids:
            r.xadd(b"s%d" % i, {b"f": b"v"}, id=f"{ms}-{seq}")
        info = r.xinfo_stream(b"s%d" % i)
        assert info["radix-tree-keys"] == len(ids)
        assert info["radix-tree-nodes"] == rax_nodes([(ms << 64) | seq for ms, seq in ids]), ids
    r.close()


def _populate(r: Any, rnd: random.Random, functions: bool = True) -> None:
    """A dataset touching every type and encoding Redis 7.0 has (and a
    function library when ``functions``)."""
    def rs(n: int) -> bytes:
        return bytes(rnd.randrange(97, 123) for _ in range(n))

    for n in (0, 1, 20, 21, 31, 32, 44, 45, 100, 300, 5000, 70000):
        r.set(b"s:%d" % n, rs(n))
    for v in (b"0", b"123", b"-5", b"12345678901", b"9223372036854775807", b"007", b"1.5"):
        r.set(b"i:" + v, v)
    r.set(b"", b"the empty key")
    r.set(b"bin:\xff\x00", b"\x00\xff\r\n")
    r.set(b"k" * 40, b"long key")
    for n in (1, 10, 128, 1000, 5000):
        r.rpush(b"l:%d" % n, *[rs(rnd.randrange(1, 30)) for _ in range(n)])
    r.rpush(b"l:ints", *range(-500, 500))
    r.rpush(b"l:big", *[rs(3000) for _ in range(10)])
    for n in (1, 10, 512, 513):
        r.sadd(b"si:%d" % n, *range(0, n * 3, 3))
    r.sadd(b"si:wide", *[2**40 + i for i in range(20)])
    for n in (1, 5, 17, 1000):
        r.sadd(b"ss:%d" % n, *[rs(rnd.randrange(1, 40)) for _ in range(n)])
    for n in (1, 10, 128, 600):
        r.hset(b"h:%d" % n, mapping={b"f%d" % i: rs(rnd.randrange(1, 50)) for i in range(n)})
    r.hset(b"h:long", mapping={b"a": rs(100), b"b": b"1"})
    r.hset(b"h:ints", mapping={b"%d" % i: i * 7 for i in range(50)})
    for n in (1, 10, 128):
        r.zadd(b"z:%d" % n, {b"m%d" % i: rnd.choice([1, 2.5, 0.1, -3, 1e300, 2**53 + 1, rnd.random()])
                             for i in range(n)})
    r.zadd(b"z:special", {b"a": float("inf"), b"b": float("-inf"), b"c": 0, b"d": 5e-324})
    r.zadd(b"z:long", {rs(100): 1, b"x": 2})
    for n in (129, 1000):
        r.zadd(b"zs:%d" % n, {b"m%d" % i: rnd.random() for i in range(n)})
    for n in (1, 5, 100, 101, 500):
        for i in range(n):
            r.xadd(b"x:%d" % n, {b"f": rs(5), b"n": i} if i % 7 else {b"other": b"v"})
    r.xgroup_create(b"x:100", b"g1", id="0")
    r.xreadgroup(b"g1", b"alice", {b"x:100": ">"}, count=10)
    r.xreadgroup(b"g1", b"bob", {b"x:100": ">"}, count=3)
    r.xgroup_createconsumer(b"x:100", b"g1", b"carol")
    r.xgroup_create(b"x:500", b"g2", id="0")
    r.xreadgroup(b"g2", b"c", {b"x:500": ">"}, count=300)
    r.xgroup_create(b"x:empty", b"g", id="$", mkstream=True)
    r.xadd(b"x:deleted", {b"a": b"1"}, id=b"5-1")
    r.xadd(b"x:deleted", {b"a": b"2"}, id=b"5-2")
    r.xdel(b"x:deleted", b"5-2")
    r.set(b"ttl:str", b"v", px=10**9)
    r.rpush(b"ttl:list", b"a", b"b")
    r.pexpireat(b"ttl:list", 4102444800123)
    if functions:
        r.execute_command("FUNCTION", "LOAD",
                          "#!lua name=lib1\nredis.register_function('f1', function(keys, args) return 1 end)")
    r.execute_command("SELECT", 2)
    r.set(b"s:other-db", b"x")
    r.hset(b"h:other-db", b"f", b"v")
    r.execute_command("SELECT", 0)


def _saved_server(server_factory: Callable[..., Any], *extra: str, seed: int = 5) -> tuple[Any, Path]:
    """A real redis-server holding the _populate dataset, SAVEd: (server, dump)."""
    import redis as redis_py

    s = server_factory("redis", *extra)
    r = redis_py.Redis(host=s.host, port=s.port)
    _populate(r, random.Random(seed))
    r.save()
    r.close()
    return s, Path(s.workdir) / "dump.rdb"


def _loaded_server(server_factory: Callable[..., Any], dump: Path, tmp: Path, *extra: str) -> Any:
    """A fresh redis-server started from ``dump``."""
    d = tmp / f"load-{random.randrange(1 << 30)}"
    d.mkdir()
    shutil.copy(dump, d / "dump.rdb")
    return server_factory("redis", "--dir", str(d), "--dbfilename", "dump.rdb", *extra)


SMALL = ["--hash-max-listpack-entries", "4", "--hash-max-listpack-value", "20", "--zset-max-listpack-entries",
         "4", "--zset-max-listpack-value", "10", "--set-max-intset-entries", "8", "--list-max-listpack-size",
         "5", "--stream-node-max-entries", "7"]


def _as_config(opts: list[str]) -> list[str]:
    out = []
    for i in range(0, len(opts), 2):
        out += ["--config", f"{opts[i][2:]}={opts[i + 1]}"]
    return out


@needs_redis
@pytest.mark.parametrize("save_opts,load_opts", [([], []), (SMALL, SMALL), ([], SMALL), (SMALL, [])],
                         ids=["default", "small", "converted-on-load-small", "converted-on-load-default"])
def test_memory_equals_memory_usage_of_redis_7_0(server_factory: Callable[..., Any], tmp_path: Path,
                                                   save_opts: list[str], load_opts: list[str],
                                                   capsysbinary: Any) -> None:
    """The model against MEMORY USAGE key SAMPLES 0 after a real load:
    exact, except skiplist zsets (random node levels) within 3%."""
    import redis as redis_py

    _, dump = _saved_server(server_factory, *save_opts)
    s = _loaded_server(server_factory, dump, tmp_path, *load_opts)
    r = redis_py.Redis(host=s.host, port=s.port)
    code, out, err = cli(capsysbinary, "memory", "--format", "ndjson", str(dump), *_as_config(load_opts))
    assert code == 0, err
    rows = ndjson(out)
    assert len(rows) == r.dbsize() + 2  # db 0, and the two keys of db 2
    checked = 0
    for row in rows:
        if row["db"] != 0:
            continue
        key = jb(row["key"])
        real = r.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
        enc = r.object("encoding", key).decode()
        assert row["encoding"] == enc, key
        if enc == "skiplist":
            # node levels are random: about 10 bytes of deviation per member, with a long tail
            assert abs(row["memory"] - real) <= 0.03 * real + 50 * row["elements"] ** 0.5 + 64, \
                (key, row["memory"], real)
        elif key == b"x:deleted":  # its XDEL tombstone is in the file's listpack, not in the decoded value
            assert 0 < real - row["memory"] <= 32, (row["memory"], real)
        else:
            assert row["memory"] == real, (key, row["type"], enc, row["memory"], real)
        checked += 1
    assert checked > 50
    r.close()


def test_memory_csv_and_json_forms(tmp_path: Path, capsysbinary: Any) -> None:
    path = tmp_path / "x.rdb"
    _write_dataset(path, EncodingOptions())
    code, out, _ = cli(capsysbinary, "memory", str(path))
    assert code == 0
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(out.decode())))
    assert list(rows[0]) == ri.MEMORY_FIELDS
    js = ndjson(cli(capsysbinary, "memory", "--format", "ndjson", str(path))[1])
    doc = json.loads(cli(capsysbinary, "memory", "--format", "json", str(path))[1])
    assert js == doc and len(js) == len(rows)
    for row, j in zip(rows, js, strict=True):
        key = row["key"].encode() if not row["key_base64"] else base64.b64decode(row["key_base64"])
        assert key == jb(j["key"]) and int(row["memory"]) == j["memory"] and row["encoding"] == j["encoding"]
    assert any(r["key_base64"] for r in rows)  # the binary key
    big = [j for j in js if j["memory"] >= 1000]
    assert ndjson(cli(capsysbinary, "memory", "--format", "ndjson", "--min-memory", "1000", str(path))[1]) == big


def test_bigkeys_lists_the_biggest_by_memory_and_by_length(tmp_path: Path, capsysbinary: Any) -> None:
    path = tmp_path / "x.rdb"
    _write_dataset(path, EncodingOptions())
    rows = ndjson(cli(capsysbinary, "memory", "--format", "ndjson", str(path))[1])
    d = cli_json(capsysbinary, "bigkeys", "--json", "--top", "3", str(path))
    assert [x["memory"] for x in d["top_by_memory"]] == sorted((r["memory"] for r in rows), reverse=True)[:3]
    assert [x["elements"] for x in d["top_by_elements"]] == sorted((r["elements"] for r in rows), reverse=True)[:3]
    assert d["keys"] == len(rows) and d["memory"] == sum(r["memory"] for r in rows)
    for t, v in d["types"].items():
        mine = [r for r in rows if r["type"] == t]
        assert v["keys"] == len(mine) and v["biggest"]["memory"] == max(r["memory"] for r in mine)
    code, out, _ = cli(capsysbinary, "bigkeys", str(path))
    assert code == 0 and b"Biggest keys by memory" in out and b"Biggest keys by element count" in out


@needs_fixtures
def test_prefixes_tree_of_the_hdt3213_tree_fixture(capsysbinary: Any) -> None:
    path = str(FIXTURES / "hdt3213/tree.rdb")
    keys = [e for e in read_file(path) if isinstance(e, Key)]
    mem = {e.key: estimate(e, LoadConfig()).memory for e in keys}
    tree = cli_json(capsysbinary, "prefixes", "--json", "--min-share", "0", "--depth", "3", "--no-group-ids", path)
    assert tree["memory"] == sum(mem.values()) and tree["keys"] == len(keys)

    def check(node: dict[str, Any]) -> None:
        prefix = jb(node["prefix"])
        under = [k for k in mem if k.startswith(prefix)] if prefix.endswith(b":") else [prefix]
        assert node["keys"] == len(under) and node["memory"] == sum(mem[k] for k in under), prefix
        kids = node.get("children", [])
        assert [c["memory"] for c in kids] == sorted((c["memory"] for c in kids), reverse=True)
        for c in kids:
            check(c)

    for c in tree["children"]:
        check(c)
    code, out, _ = cli(capsysbinary, "prefixes", path)
    assert code == 0 and b"prefix" in out


def test_prefix_tree_stays_bounded_and_keeps_totals() -> None:
    tree = PrefixTree(b":", 2, max_children=10)
    total = 0
    for i in range(5000):
        mem = 1000 if i % 500 == 0 else 10
        tree.add(b"user:%d:x" % i, mem)
        tree.add(b"big%d" % (i % 3), 5)
        total += mem + 5
    assert tree.root.memory == total
    user = tree.root.children[b"user:"]
    assert len(user.children) <= 20 and user.other is not None
    assert user.memory == sum(c.memory for c in user.children.values()) + user.other.memory
    kept = {c.name for c in user.children.values() if c.memory == 1000}
    assert len(kept) >= 5  # the big children survive folding
    walked = list(tree.walk())
    assert walked[0][1] == b"user:" and any(n.folded for _, _, n in walked)


def test_prefix_tree_groups_identifier_segments() -> None:
    tree = PrefixTree(b":", 3, group_ids=True)
    for key in (b"user:1:name", b"user:22:name", b"user:-3:tags", b"s:deadbeef01:x", b"s:550e8400-e29b-41d4-a716-446655440000:x",
                b"s:abcdefgh:x", b"s:cafe:x", b"user:7"):
        tree.add(key, 10)
    paths = {p: (n.keys, n.memory) for _, p, n in tree.walk()}
    assert paths[b"user:*:"] == (3, 30) and paths[b"user:*:name"] == (2, 20) and paths[b"user:*"] == (1, 10)
    assert paths[b"s:*:"] == (2, 20)  # hex with digits and UUIDs
    assert b"s:abcdefgh:" in paths and b"s:cafe:" in paths  # words and short hex stay
    plain = PrefixTree(b":", 3)
    plain.add(b"user:1:name", 1)
    assert [p for _, p, _ in plain.walk()] == [b"user:", b"user:1:", b"user:1:name"]


def test_topn_and_ttl_buckets() -> None:
    t = TopN[str](3)
    for i, s in enumerate([5, 1, 9, 9, 3, 7]):
        t.add(s, f"k{i}")
    assert t.items() == [(9, "k2"), (9, "k3"), (7, "k5")]
    none = TopN[str](0)
    none.add(5, "x")
    assert not none.would_take(10**9) and none.items() == []
    assert [ttl_bucket(x, 1000) for x in (0, 1000, 1001, 1000 + 59_999, 1000 + 60_000, 1000 + 10**12)] == \
        [0, 0, 1, 1, 2, 9]


# -- dumps written by real servers ---------------------------------------------------------------


def _server_view(r: Any) -> dict[tuple[int, bytes], tuple[str, Any, int]]:
    """What a live server holds: (db, key) -> (type, comparable value, PEXPIRETIME)."""
    view = {}
    for db in range(16):
        r.execute_command("SELECT", db)
        for key in r.scan_iter(count=1000):
            t = r.type(key).decode()
            if t == "string":
                v: Any = r.get(key)
            elif t == "list":
                v = r.lrange(key, 0, -1)
            elif t == "set":
                v = sorted(r.smembers(key))
            elif t == "hash":
                v = sorted(r.hgetall(key).items())
            elif t == "zset":
                v = [(m, float(s)) for m, s in r.zrange(key, 0, -1, withscores=True)]
            else:
                v = [(i.decode(), sorted(f.items())) for i, f in r.xrange(key)]
            view[(db, key)] = (t, v, r.execute_command("PEXPIRETIME", key))
    r.execute_command("SELECT", 0)
    return view


def _dump_view(rows: list[dict[str, Any]]) -> dict[tuple[int, bytes], tuple[str, Any, int]]:
    view = {}
    for k in rows:
        t = k["type"]
        v = k["value"]
        if t == "string":
            val: Any = jb(v)
        elif t in ("list", "set"):
            val = [jb(x) for x in v]
        elif t == "hash":
            val = [(jb(f), jb(x)) for f, x in v]
        elif t == "zset":
            val = [(jb(m), float(s)) for m, s in v]
        else:
            val = [(e["id"], sorted((jb(f), jb(x)) for f, x in e["fields"])) for e in v["entries"]]
        view[key_order(k)] = (t, val, -1 if k["expire_ms"] is None else k["expire_ms"])
    return view


@needs_redis
@pytest.mark.parametrize("kind", ["redis", "ambry"])
def test_dump_of_a_server_dump_equals_the_server(kind: str, server_factory: Callable[..., Any],
                                                 capsysbinary: Any) -> None:
    """Dumps written by redis-server 7.0.15 and by Ambry: every key, value,
    type and expiry as the server answers them."""
    import redis as redis_py

    s = server_factory(kind)
    r = redis_py.Redis(host=s.host, port=s.port)
    try:
        r.execute_command("FUNCTION", "LIST")
        functions = True
    except redis_py.ResponseError:  # a server without functions (yet)
        functions = False
    _populate(r, random.Random(11), functions)
    want = _server_view(r)
    assert r.save()
    dump = str(Path(s.workdir) / "dump.rdb")
    code, out, err = cli(capsysbinary, "dump", "--ndjson", dump)
    assert code == 0, err
    assert _dump_view(ndjson(out)) == want
    doc = cli_json(capsysbinary, "dump", dump)
    assert [f["library_name"] for f in doc["functions"]] == (["lib1"] if functions else [])
    for cmd in (["summary"], ["memory"], ["bigkeys"], ["prefixes"], ["verify"], ["to-resp"], ["diff", dump]):
        assert cli(capsysbinary, cmd[0], dump, *cmd[1:])[0] == 0, cmd
    r.close()


# -- to-resp -------------------------------------------------------------------------------------


def _pipe(server: Any, resp: bytes) -> str:
    res = subprocess.run(["redis-cli", "-h", server.host, "-p", str(server.port), "--pipe"], input=resp,
                         capture_output=True, timeout=120)
    text = res.stdout.decode()
    assert res.returncode == 0 and "errors: 0" in text, text + res.stderr.decode()
    return text


def _functions(r: Any) -> list[Any]:
    libs = r.execute_command("FUNCTION", "LIST", "WITHCODE")
    out = []
    for lib in libs:
        lib = dict(lib) if not isinstance(lib, dict) else lib
        funcs = sorted(str(sorted(f.items())) if isinstance(f, dict) else str(f) for f in lib[b"functions"])
        out.append((lib[b"library_name"], lib[b"library_code"], funcs))
    return sorted(out)


def _stream_groups(r: Any, key: bytes) -> Any:
    """XINFO STREAM FULL minus what a rebuild cannot keep (consumers'
    seen-time, which XCLAIM sets to now)."""
    info = r.execute_command("XINFO", "STREAM", key, "FULL")
    groups = []
    for g in info[b"groups"]:
        consumers = sorted((c[b"name"], [p[0] for p in c[b"pending"]]) for c in g[b"consumers"])
        groups.append((g[b"name"], g[b"last-delivered-id"], g[b"entries-read"], g[b"lag"], g[b"pel-count"],
                       [(p[0], p[1], p[2], p[3]) for p in g[b"pending"]], consumers))
    return (info[b"length"], info[b"last-generated-id"], info[b"max-deleted-entry-id"], info[b"entries-added"],
            info[b"recorded-first-entry-id"], info[b"entries"], groups)


@needs_redis
@pytest.mark.parametrize("restore", [False, True], ids=["commands", "restore"])
def test_to_resp_rebuilds_a_server_with_the_same_digest(restore: bool, server_factory: Callable[..., Any],
                                                         tmp_path: Path, capsysbinary: Any) -> None:
    import redis as redis_py

    src, dump = _saved_server(server_factory)
    dst = server_factory("redis")
    code, resp, err = cli(capsysbinary, "to-resp", str(dump), *(["--restore"] if restore else []))
    assert code == 0, err
    _pipe(dst, resp)
    a = redis_py.Redis(host=src.host, port=src.port)
    b = redis_py.Redis(host=dst.host, port=dst.port)
    assert a.execute_command("DEBUG", "DIGEST") == b.execute_command("DEBUG", "DIGEST") != b"0" * 40
    assert _functions(a) == _functions(b)
    for key in (b"x:100", b"x:500", b"x:empty", b"x:deleted"):
        assert _stream_groups(a, key) == _stream_groups(b, key), key
    assert a.pexpiretime(b"ttl:list") == b.pexpiretime(b"ttl:list") == 4102444800123
    for db in (0, 2):
        a.execute_command("SELECT", db)
        b.execute_command("SELECT", db)
        assert a.dbsize() == b.dbsize()
    a.close()
    b.close()


@needs_redis
@needs_fixtures
@pytest.mark.parametrize("path", REDIS70
                         + [j.with_name(j.name.replace(".loaded-by-redis-7.0.json", ".rdb")) for j in LEGACY],
                         ids=lambda p: p.name)
def test_to_resp_of_fixtures_reproduces_the_loaded_digest(path: Path, server_factory: Callable[..., Any],
                                                          tmp_path: Path, capsysbinary: Any) -> None:
    import redis as redis_py

    src = _loaded_server(server_factory, path, tmp_path)
    dst = server_factory("redis")
    code, resp, err = cli(capsysbinary, "to-resp", str(path))
    assert code == 0, err
    _pipe(dst, resp)
    a = redis_py.Redis(host=src.host, port=src.port)
    b = redis_py.Redis(host=dst.host, port=dst.port)
    assert a.execute_command("DEBUG", "DIGEST") == b.execute_command("DEBUG", "DIGEST")
    assert _functions(a) == _functions(b)
    a.close()
    b.close()


def test_to_resp_commands_for_each_type() -> None:
    from ambry.tools.rdb_inspect_values import key_commands

    ev = Key(0, b"h", "hash", [(b"f%d" % i, b"v") for i in range(100)], expire_ms=123,
             field_expires={b"f1": 50, b"f2": 50, b"f3": 60})
    cmds = list(key_commands(ev))
    assert [c[0] for c in cmds] == [b"HSET", b"HSET", b"HPEXPIREAT", b"HPEXPIREAT", b"PEXPIREAT"]
    assert len(cmds[0]) == 2 + 2 * 64 and cmds[2] == [b"HPEXPIREAT", b"h", b"50", b"FIELDS", b"2", b"f1", b"f2"]
    assert cmds[-1] == [b"PEXPIREAT", b"h", b"123"]
    z = list(key_commands(Key(0, b"z", "zset", [(b"a", float("inf")), (b"b", 0.1)]), replace=True))
    assert z == [[b"DEL", b"z"], [b"ZADD", b"z", b"inf", b"a", b"0.1", b"b"]]
    r = list(key_commands(Key(0, b"k", "string", b"v", expire_ms=9, lfu_freq=3), restore=True, replace=True,
                          payload=lambda e: b"P"))
    assert r == [[b"RESTORE", b"k", b"9", b"P", b"REPLACE", b"ABSTTL", b"FREQ", b"3"]]


@needs_fixtures
def test_to_resp_restore_needs_a_version_that_can_hold_the_value(capsysbinary: Any) -> None:
    path = str(FIXTURES / "hdt3213/hash_with_hfe.rdb")
    code, _, err = cli(capsysbinary, "to-resp", "--restore", path)
    assert code == ri.EXIT_USAGE and "--rdb-version 12" in err
    code, out, _ = cli(capsysbinary, "to-resp", "--restore", "--rdb-version", "12", path)
    assert code == 0 and b"RESTORE" in out
    code, out, _ = cli(capsysbinary, "to-resp", path)
    assert code == 0 and b"HPEXPIREAT" in out


# -- diff ------------------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("path", [p for p in ALL_RDB if p.name not in BAD_RDB], ids=lambda p: p.name)
def test_diff_of_a_file_with_itself_is_empty(path: Path, capsysbinary: Any) -> None:
    code, out, err = cli(capsysbinary, "diff", "--json", str(path), str(path))
    assert code == 0, err
    d = json.loads(out)
    assert d["differences"] == [] and d["summary"]["changed"] == 0


def _write_dataset(path: Path, options: EncodingOptions, *, mutate: bool = False) -> None:
    """A small mixed dataset written by the codec's writer (``options``
    choose the encodings; ``mutate`` makes a few known changes)."""
    w = RDBWriter(10, options=options)
    keys: list[tuple[bytes, str, Any, int | None]] = [
        (b"str", "string", b"v", None),
        (b"bin:\xff", "string", b"\x00\x01", None),
        (b"int", "string", b"12345", None),
        (b"list", "list", [b"a", b"b", b"c"] * 50, None),
        (b"set", "set", [b"%d" % i for i in range(20)] + [b"x"], None),
        (b"hash", "hash", [(b"f%d" % i, b"v%d" % i) for i in range(20)], 4102444800000),
        (b"zset", "zset", [(b"m%d" % i, i / 3) for i in range(20)], None),
        (b"gone", "string", b"only in A", None),
        (b"retyped", "string", b"s", None),
        (b"ttl", "string", b"t", None),
    ]
    if mutate:
        keys = [k for k in keys if k[0] != b"gone"]
        keys = [(k, t, v if k != b"list" else v + [b"d"], e if k != b"ttl" else 4102444800999)
                for k, t, v, e in keys]
        keys = [(k, "hash", [(b"f", b"v")], e) if k == b"retyped" else (k, t, v, e) for k, t, v, e in keys]
        keys.append((b"new", "set", [b"n"], None))
    parts = [w.header(), w.standard_aux(used_mem=1), w.select_db(0), w.resize_db(len(keys), 1)]
    for k, t, v, e in keys:
        parts.append(w.key(k, t, v, expire_ms=e))
    parts.append(w.select_db(3))
    parts.append(w.key(b"str", "string", b"db3", expire_ms=None))
    parts.append(w.eof())
    path.write_bytes(b"".join(parts))


def test_diff_is_insensitive_to_encodings_and_finds_changes(tmp_path: Path, capsysbinary: Any) -> None:
    a = tmp_path / "a.rdb"
    a2 = tmp_path / "a2.rdb"
    b = tmp_path / "b.rdb"
    _write_dataset(a, EncodingOptions())
    _write_dataset(a2, EncodingOptions(hash_max_listpack_entries=2, zset_max_listpack_entries=2,
                                       set_max_intset_entries=2, list_max_listpack_size=2))
    _write_dataset(b, EncodingOptions(), mutate=True)
    encs = {e.rdb_type for e in read_file(str(a)) if isinstance(e, Key)} ^ \
        {e.rdb_type for e in read_file(str(a2)) if isinstance(e, Key)}
    assert encs  # the two files really store different encodings
    assert cli(capsysbinary, "diff", str(a), str(a2))[:2] == (0, b"0 only in A, 0 only in B, 0 changed, 11 identical\n")
    code, out, _ = cli(capsysbinary, "diff", "--json", str(a), str(b))
    assert code == ri.EXIT_DIFFERENT
    d = json.loads(out)
    got = {(x["status"], jb(x["key"]), tuple(x.get("changes", ()))) for x in d["differences"]}
    assert got == {("only_in_a", b"gone", ()), ("only_in_b", b"new", ()), ("changed", b"list", ("value",)),
                   ("changed", b"retyped", ("type",)), ("changed", b"ttl", ("ttl",))}
    assert d["summary"] == {"only_in_a": 1, "only_in_b": 1, "changed": 3, "identical": 7}
    code, out, _ = cli(capsysbinary, "diff", str(a), str(b))
    text = out.decode()
    assert "- db0 gone  (string)" in text and "+ db0 new  (set)" in text and "~ db0 retyped  type string -> hash" in text
    assert "~ db0 ttl  ttl none -> 4102444800999" in text
    assert cli(capsysbinary, "diff", "-q", str(a), str(b))[:2] == (ri.EXIT_DIFFERENT, b"")
    code, out, _ = cli(capsysbinary, "diff", "--json", "--ignore-ttl", "--not-key", "list", str(a), str(b))
    assert {jb(x["key"]) for x in json.loads(out)["differences"]} == {b"gone", b"new", b"retyped"}


@needs_redis
def test_diff_of_real_server_dumps(server_factory: Callable[..., Any], capsysbinary: Any) -> None:
    import redis as redis_py

    s = server_factory("redis")
    r = redis_py.Redis(host=s.host, port=s.port)
    _populate(r, random.Random(3))
    r.save()
    a = Path(s.workdir) / "a.rdb"
    shutil.move(Path(s.workdir) / "dump.rdb", a)
    r.hset(b"h:600", b"f7", b"changed")
    r.xack(b"x:100", b"g1", r.xpending_range(b"x:100", b"g1", "-", "+", 1)[0]["message_id"])
    r.delete(b"s:100")
    r.pexpire(b"s:5000", 10**9)
    r.save()
    code, out, err = cli(capsysbinary, "diff", "--json", str(a), str(Path(s.workdir) / "dump.rdb"))
    assert code == 1, err
    got = {(x["status"], jb(x["key"]), tuple(x.get("changes", ()))) for x in json.loads(out)["differences"]}
    assert got == {("changed", b"h:600", ("value",)), ("changed", b"x:100", ("value",)),
                   ("only_in_a", b"s:100", ()), ("changed", b"s:5000", ("ttl",))}
    r.close()


# -- report ----------------------------------------------------------------------------------------


def _report(capsysbinary: Any, src: Path, out: Path) -> str:
    code, _, err = cli(capsysbinary, "report", str(src), "--html", str(out), "--now", "1795000000000")
    assert code == 0, err
    return out.read_text()


@needs_fixtures
def test_report_is_self_contained(tmp_path: Path, capsysbinary: Any) -> None:
    page = _report(capsysbinary, FIXTURES / "redis-7.0/all-types.rdb", tmp_path / "r.html")
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for needle in ("<link", "src=", "@import", "url(", "https://", "fetch(", "xmlhttprequest"):
        assert needle not in lowered, needle
    assert lowered.count("http://") == lowered.count('xmlns="http://www.w3.org/2000/svg"')
    for chart in ('id="treemap"', 'id="by-type"', 'id="by-encoding"', 'id="ttl-histogram"', 'id="top-keys"'):
        assert chart in page


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[bytes]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={tmp / 'chromium-profile'}", *args],
                          capture_output=True, timeout=120)


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG: (width, height, rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    idat = b""
    width = height = 0
    channels = 4
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[j:j + 3]) for r in rows for j in range(0, stride, channels)]  # type: ignore[misc]


@needs_fixtures
@needs_chromium
def test_report_renders_in_headless_chromium(tmp_path: Path, capsysbinary: Any) -> None:
    html_path = tmp_path / "report.html"
    _report(capsysbinary, FIXTURES / "redis-7.0/all-types.rdb", html_path)
    url = html_path.as_uri()
    dom = _chromium("--dump-dom", url, tmp=tmp_path)
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    text = dom.stdout.decode()
    assert 'data-ready="1"' in text  # the inline script ran
    cells = text.count('class="tm-node')
    assert cells > 20 and f"interactive: {cells} treemap cells" in text
    assert text.count('class="hist-bar"') == 10
    assert text.count("<tr>") >= 30 + 1  # the top keys table is filled
    assert "list:" in text and "mylib" in text
    shot = tmp_path / "shot.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1280,1800", "--hide-scrollbars", url, tmp=tmp_path)
    assert res.returncode == 0 and shot.is_file(), res.stderr.decode()[-2000:]
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 1800)
    colors = {}
    for p in pixels[::7]:
        colors[p] = colors.get(p, 0) + 1
    assert len(colors) > 50  # not a blank page
    # the treemap's palette is on screen (the first prefix's color, #4e79a7-ish in some shade)
    assert any(abs(p[0] - 0x4E) < 8 and abs(p[1] - 0x79) < 8 and abs(p[2] - 0xA7) < 8 for p in colors)


# -- command line ----------------------------------------------------------------------------------


SUBCOMMANDS = ["summary", "dump", "memory", "bigkeys", "prefixes", "diff", "to-resp", "verify", "report"]


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help_of_each_subcommand(cmd: str, capsys: Any) -> None:
    assert main([cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and f"rdb-inspect {cmd}" in out


def test_usage_and_io_errors(tmp_path: Path, capsysbinary: Any) -> None:
    assert cli(capsysbinary)[0] == ri.EXIT_USAGE
    assert cli(capsysbinary, "dump", "--limit", "0", "x")[0] == ri.EXIT_USAGE
    code, _, err = cli(capsysbinary, "dump", str(tmp_path / "missing.rdb"))
    assert code == ri.EXIT_IO and "No such file" in err
    (tmp_path / "junk").write_bytes(b"hello world, not a dump")
    code, _, err = cli(capsysbinary, "summary", str(tmp_path / "junk"))
    assert code == ri.EXIT_BAD_RDB and "Wrong signature" in err
    path = tmp_path / "x.rdb"
    _write_dataset(path, EncodingOptions())
    assert cli(capsysbinary, "dump", "--type", "nope", str(path))[0] == ri.EXIT_USAGE
    assert cli(capsysbinary, "dump", "--key-regex", "(", str(path))[0] == ri.EXIT_USAGE
    assert cli(capsysbinary, "dump", "--config", "nope=1", str(path))[0] == ri.EXIT_USAGE
    code, _, err = cli(capsysbinary, "dump", str(path), "-o", str(tmp_path / "no/such/dir/out"))
    assert code == ri.EXIT_IO


@needs_fixtures
def test_valkey_files_are_read(capsysbinary: Any) -> None:
    """Valkey 9's VALKEY080 file: every subcommand reads it; its type-22
    hash comes with its field TTLs (HDT3213's expected commands for it:
    HPEXPIREAT F1 2715785640000, F2 2400425640000, none for F3)."""
    path = str(FIXTURES / "hdt3213/valkey_hash2_with_hfe.rdb")
    d = cli_json(capsysbinary, "summary", "--json", path)
    assert (d["rdb_version"], d["magic"], d["keys"]) == (80, "VALKEY", 1)
    assert d["aux"]["valkey-ver"] == "9.0.1"
    code, out, _ = cli(capsysbinary, "summary", path)
    assert code == 0 and b"80 (Valkey file, magic VALKEY080)" in out
    (k,) = [json.loads(line) for line in cli(capsysbinary, "dump", "--ndjson", path)[1].splitlines()
            if b'"key"' in line]
    assert (k["key"], k["type"], k["rdb_type"]) == ("hash2-hfe", "hash", 22)
    assert k["value"] == [["F1", "V1"], ["F2", "V2"], ["F3", "V3"]]
    assert k["field_expires"] == [["F1", 2715785640000], ["F2", 2400425640000]]
    code, out, _ = cli(capsysbinary, "verify", path)
    assert code == 0 and b"RDB version 80 (Valkey)" in out and b"1 keys read" in out
    resp = cli(capsysbinary, "to-resp", path)[1]
    assert b"HPEXPIREAT\r\n$9\r\nhash2-hfe\r\n$13\r\n2715785640000\r\n$6\r\nFIELDS\r\n$1\r\n1\r\n$2\r\nF1" \
        in resp
    assert b"HPEXPIREAT\r\n$9\r\nhash2-hfe\r\n$13\r\n2400425640000\r\n$6\r\nFIELDS\r\n$1\r\n1\r\n$2\r\nF2" \
        in resp
    assert cli(capsysbinary, "memory", path)[0] == 0


def test_console_script_reads_stdin_and_exits_quietly_on_a_closed_pipe(tmp_path: Path) -> None:
    path = tmp_path / "x.rdb"
    _write_dataset(path, EncodingOptions())
    exe = shutil.which("rdb-inspect") or pytest.skip("the rdb-inspect script is not installed")
    assert exe is not None
    res = subprocess.run([exe, "dump", "--ndjson", "-"], input=path.read_bytes(), capture_output=True, timeout=60)
    assert res.returncode == 0 and len(ndjson(res.stdout)) == 11 and res.stderr == b""
    head = subprocess.Popen(f"'{exe}' dump --ndjson '{path}' | head -c 10", shell=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = head.communicate(timeout=60)
    assert len(out) == 10 and b"Traceback" not in err


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    fake = Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    p = ri.Progress(1000, "x.rdb")
    assert p.enabled
    p._next = 0
    p.update(500, 42)
    assert "50.0%" in fake.getvalue() and "42 keys" in fake.getvalue()
    p.close()
    assert fake.getvalue().endswith("\r\x1b[K")
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    q = ri.Progress(1000, "x.rdb")
    q._next = 0
    q.update(500, 1)
    q.close()
    assert not q.enabled and plain.getvalue() == ""


# -- streaming -------------------------------------------------------------------------------------


def _peak_rss_kb(argv: list[str]) -> int:
    """Peak resident memory of rdb-inspect ARGV in a fresh process (VmHWM:
    unlike ru_maxrss it is not inherited from the forking process)."""
    code = ("import sys\n"
            "from ambry.tools.rdb_inspect import main\n"
            "rc = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
            "print(hwm, file=sys.stderr)\n"
            "sys.exit(rc)\n")
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    return int(res.stderr.decode().strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_stays_bounded_by_the_biggest_value(tmp_path: Path) -> None:
    """Many keys cost nothing extra; one big key costs a small multiple of itself."""
    small = tmp_path / "many.rdb"
    big = tmp_path / "big.rdb"
    w = RDBWriter(10)
    with open(small, "wb") as f:
        f.write(w.header() + w.select_db(0))
        for i in range(200_000):
            f.write(w.key(b"key:%d" % i, "string", b"value %d" % i))
        f.write(w.eof())
    w = RDBWriter(10, compression=False)
    blob = os.urandom(30 << 20)
    with open(big, "wb") as f:
        f.write(w.header() + w.select_db(0))
        f.write(w.key(b"big", "list", [blob[i:i + 1000] for i in range(0, len(blob), 1000)]))
        f.write(w.eof())
    base = _peak_rss_kb(["verify", "-q", str(small)])
    for cmd in (["dump", "--ndjson", "-o", os.devnull], ["summary"], ["memory", "-o", os.devnull]):
        assert _peak_rss_kb([*cmd, str(small)]) < base + 30_000, cmd
    for cmd in (["dump", "--ndjson", "-o", os.devnull], ["memory", "-o", os.devnull], ["verify", "-q"]):
        assert _peak_rss_kb([*cmd, str(big)]) < base + 8 * 30 * 1024, cmd


def test_stream_ids_in_json_are_text() -> None:
    from ambry.persistence.rdb import Stream, StreamEntry
    from ambry.tools.rdb_inspect_values import stream_json

    s = Stream([StreamEntry(StreamID(1, 2), [(b"f", b"v")])], 1, StreamID(1, 2), StreamID(1, 2))
    j = stream_json(s, 19)
    assert j["entries"] == [{"id": "1-2", "fields": [["f", "v"]]}] and j["last_generated_id"] == "1-2"


def test_checksum_summed_by_a_child_process(tmp_path: Path, capsysbinary: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Large files have their CRC-64 summed by a forked child while the
    parent parses: the same verdicts as the reader's own check, a damaged
    trailer still found, data after the RDB (an old AOF's tail) summed in
    the parent instead."""
    monkeypatch.setattr(ri.FileCRC, "MIN_SIZE", 0)
    path = tmp_path / "x.rdb"
    _write_dataset(path, EncodingOptions())
    data = path.read_bytes()
    for cmd in (["verify"], ["summary", "--json"], ["dump", "--ndjson"], ["memory"]):
        assert cli(capsysbinary, *cmd, str(path))[0] == 0, cmd
    d = json.loads(cli(capsysbinary, "summary", "--json", str(path))[1])
    assert d["checksum"]["status"] == "OK" and d["checksum"]["stored"] == d["checksum"]["computed"]
    bad = bytearray(data)
    bad[-3] ^= 0x40
    (tmp_path / "crc.rdb").write_bytes(bytes(bad))
    for cmd in (["verify"], ["summary"], ["dump", "--ndjson"]):
        code, out, err = cli(capsysbinary, *cmd, str(tmp_path / "crc.rdb"))
        assert code == ri.EXIT_BAD_RDB and b"Wrong RDB checksum" in out + err.encode(), cmd
    (tmp_path / "tail.rdb").write_bytes(data + b"*1\r\n$4\r\nPING\r\n")
    code, out, _ = cli(capsysbinary, "verify", str(tmp_path / "tail.rdb"))
    assert code == 0 and b"Checksum OK" in out and b"bytes after the end of the RDB data" in out
    zero = data[:-8] + bytes(8)  # rdbchecksum no: nothing to compare
    (tmp_path / "zero.rdb").write_bytes(zero)
    assert cli(capsysbinary, "verify", str(tmp_path / "zero.rdb"))[0] == 0


def _mixed_dump(path: Path, n: int) -> None:
    """``n`` keys of every kind interleaved, with int and LZF strings,
    expiries and two dbs: what the batch paths of summary and dump see."""
    w = RDBWriter(10)
    body = [w.header(), w.standard_aux(ctime=1, used_mem=1)]
    for db in (0, 5):
        body.append(w.select_db(db))
        for i in range(n):
            kind = i % 7
            k = b"k:%d:%d" % (db, i)
            exp = 4102444800000 + i if i % 5 == 0 else (1000 if i % 11 == 0 else None)
            if kind == 0:
                body.append(w.key(k, "string", b"v%d" % i, expire_ms=exp))
            elif kind == 1:
                body.append(w.key(k, "string", b"%d" % (i * 7919), expire_ms=exp))
            elif kind == 2:
                body.append(w.key(k, "string", b"x" * (30 + i % 50), expire_ms=exp))
            elif kind == 3:
                body.append(w.key(k, "hash", [(b"f%d" % j, b"v") for j in range(1 + i % 4)], expire_ms=exp))
            elif kind == 4:
                body.append(w.key(k, "zset", [(b"m%d" % j, j / 3) for j in range(1 + i % 6)], expire_ms=exp))
            elif kind == 5:
                body.append(w.key(k, "list", [b"e%d" % j for j in range(1 + i % 9)], expire_ms=exp))
            else:
                body.append(w.key(k, "set", [b"s%d" % j for j in range(1 + i % 3)], expire_ms=exp))
    body.append(w.eof())
    path.write_bytes(b"".join(body))


def test_summary_by_batches_equals_summary_key_by_key(tmp_path: Path, capsysbinary: Any) -> None:
    """Without filters summary counts keys a batch at a time (element
    counts, record sizes, string encodings from the reader's skim mode);
    a filter that keeps everything takes the key-by-key path: the same
    document, biggest records and ties included."""
    path = tmp_path / "mixed.rdb"
    _mixed_dump(path, 3000)
    files = [str(path)] + [str(p) for p in REDIS70 + LEGACY if p.suffix == ".rdb"]
    files += [str(p.with_name(p.name.replace(".loaded-by-redis-7.0.json", ".rdb"))) for p in LEGACY]
    for f in files:
        fast = cli_json(capsysbinary, "summary", "--json", "--now", "1700000000000", "--top", "7", f)
        dbs = [x for d in fast["dbs"] for x in ("--db", d)]
        slow = cli_json(capsysbinary, "summary", "--json", "--now", "1700000000000", "--top", "7", *dbs, f)
        assert fast == slow, f
    d = cli_json(capsysbinary, "summary", "--json", str(path))
    encs = {(e["type"], e["encoding"]): e["keys"] for e in d["encodings"]}
    assert encs[("string", "int")] > 0 and encs[("string", "lzf")] > 0 and encs[("string", "raw")] > 0
    assert d["keys"] == 6000


def test_dump_ndjson_writes_every_line_of_a_large_file(tmp_path: Path, capsysbinary: Any) -> None:
    path = tmp_path / "mixed.rdb"
    _mixed_dump(path, 1500)
    out = cli(capsysbinary, "dump", "--ndjson", "--meta", str(path))[1]
    lines = [json.loads(x) for x in out.splitlines()]
    keys = [x for x in lines if "record" not in x]
    assert len(keys) == 3000 and lines[0]["record"] == "header" and lines[-1]["record"] == "end"
    assert len(cli(capsysbinary, "dump", "--ndjson", "--limit", "1025", str(path))[1].splitlines()) == 1025
    csv_rows = cli(capsysbinary, "memory", str(path))[1].splitlines()
    assert len(csv_rows) == 3001


@needs_fixtures
def test_verify_counts_empty_keys(capsysbinary: Any) -> None:
    """The 9 empty collections of corrupt_empty_keys.rdb (Redis skips them
    on load), each in another encoding, found without building values."""
    path = str(FIXTURES / "redis-tests/corrupt_empty_keys.rdb")
    d = json.loads(cli(capsysbinary, "verify", "--json", path)[1])
    assert d["ok"] and d["keys"] == 9 and d["empty_keys"] == 9
    d = json.loads(cli(capsysbinary, "verify", "--json", "--deep", path)[1])
    assert d["empty_keys"] == 9
