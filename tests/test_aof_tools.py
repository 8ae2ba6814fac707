"""aof-check, aof-rewrite and aof-replay on Redis 7.0.15's own AOF fixtures,
on directories written live by ambry-server and redis-server, and against
what redis-check-aof and a loading server say.

* aof-check reports what redis-check-aof reports (last valid offset, line
  counter, the problem's file) and ``--fix`` / ``--truncate-to-timestamp``
  leave exactly the bytes redis-check-aof left (fixtures' ``fixed/`` and
  ``truncated-to-timestamp/``), keeping a backup;
* aof-rewrite's output loads (in redis-server) as the same dataset as its
  input, and the input is never modified;
* aof-replay gives the target the dataset a server loading the AOF has;
  ``--follow`` keeps a second server equal (DEBUG DIGEST) while the source
  writes and rewrites its AOF.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from ambry.persistence.aof import (
    AOFInfo,
    AOFParser,
    Command,
    FollowGap,
    Manifest,
    ManifestTracker,
    encode_command,
    parse_manifest,
)
from ambry.persistence.aof.source import RecordReader
from ambry.tools import aof_check, aof_replay, aof_rewrite
from conftest import ServerProcess, have_redis


def shared_fixtures() -> Path:
    env = os.environ.get("AMBRY_SHARED_FIXTURES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


FIXTURES = shared_fixtures() / "aof" / "redis-7.0"
RDB_FIXTURES = shared_fixtures() / "rdb" / "redis-7.0"
needs_fixtures = pytest.mark.skipif(not FIXTURES.exists(), reason=f"shared fixtures not found at {FIXTURES}")
needs_redis = pytest.mark.skipif(not have_redis(), reason="redis-server is not installed")

DAMAGED = ["truncated", "truncated-in-multi", "truncated-in-multi-mid-command", "corrupt-middle"]
VALID = ["effects", "legacy-upgrade", "multi-incr", "preamble-no", "preamble-yes", "timestamps"]
MANIFEST = "appendonly.aof.manifest"

Servers = Callable[..., ServerProcess]


# -- helpers ------------------------------------------------------------------------------------


def _expected(name: str) -> dict[str, Any]:
    with open(FIXTURES / name / "expected.json") as f:
        return json.load(f)  # type: ignore[no-any-return]


def _copy(name: str, tmp: Path, sub: str = "appendonlydir") -> Path:
    """A private copy of a fixture's AOF directory (fixtures are read-only)."""
    dst = tmp / name / "appendonlydir"
    shutil.copytree(FIXTURES / name / sub, dst)
    return dst


def _tree_hash(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def _run(main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str],
         stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    """Run a tool in-process; (exit code, stdout, stderr)."""
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def _analyzed(lines: list[str], fname: str) -> tuple[int, int]:
    """ok_up_to and ok_up_to_line from redis-check-aof's 'AOF analyzed' line."""
    for line in lines:
        if line.startswith(f"AOF analyzed: filename={fname},"):
            fields = dict(kv.split("=") for kv in line.split(": ", 1)[1].split(", "))
            return int(fields["ok_up_to"]), int(fields["ok_up_to_line"])
    raise AssertionError(f"no analysis line for {fname}")


def _client(s: ServerProcess) -> redis_py.Redis:
    return redis_py.Redis(host=s.host, port=s.port, socket_timeout=30)


def _digest(s: ServerProcess) -> bytes:
    return _client(s).execute_command("DEBUG", "DIGEST")  # type: ignore[no-any-return]


def _functions(s: ServerProcess) -> list[bytes]:
    """The function libraries' code, sorted (their functions are listed in hash order)."""
    return sorted(lib[b"library_code"] for lib in _client(s).execute_command("FUNCTION", "LIST", "WITHCODE"))


def _loaded(servers: Servers, aofdir: Path, scratch: Path) -> ServerProcess:
    """A server that loaded ``aofdir``: a copy of it under ``scratch`` (the
    test's own temporary directory; loading may write, and fixtures are
    read-only) -- redis-server when installed, else ambry-server."""
    kind = "redis" if have_redis() else "ambry"
    home = scratch / f"load-{kind}-{time.monotonic_ns()}"
    shutil.copytree(aofdir, home / "appendonlydir")
    return servers(kind, "--dir", str(home), "--appendonly", "yes")


def _wait(pred: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _wait_rewrite(c: redis_py.Redis, before: int) -> None:
    def done() -> bool:
        p = c.info("persistence")
        return int(p["aof_rewrites"]) > before and not p["aof_rewrite_in_progress"] \
            and not p["aof_rewrite_scheduled"]
    _wait(done, what="the AOF rewrite")
    assert c.info("persistence")["aof_last_bgrewrite_status"] == "ok"


def _live_aof(servers: Servers, kind: str, *extra: str) -> ServerProcess:
    """A server with appendonly yes that wrote, rewrote (RDB base), wrote again."""
    s = servers(kind, "--appendonly", "yes", "--appendfsync", "always", *extra)
    c = _client(s)
    for i in range(50):
        c.set(f"k{i}", i)
    c.rpush("list", *range(100))
    c.hset("h", mapping={f"f{i}": i for i in range(20)})
    c.zadd("z", {"a": 1.5, "b": float("inf")})
    c.xadd("st", {"f": "v"})
    c.execute_command("FUNCTION", "LOAD", "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)")
    before = int(c.info("persistence")["aof_rewrites"])
    c.bgrewriteaof()
    _wait_rewrite(c, before)
    pipe = c.pipeline(transaction=True)
    pipe.incr("counter")
    pipe.rpush("list", "tail")
    pipe.execute()
    c.select(3)
    c.set("in-db3", "x")
    c.pexpireat("in-db3", 4102444800123)
    return s


@pytest.fixture(autouse=True, scope="module")
def _fixtures_stay_untouched() -> Any:
    """The shared fixtures are read-only: no test may leave anything there."""
    def listing() -> list[str]:
        return sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*")) if FIXTURES.exists() else []
    before = listing()
    yield
    assert listing() == before, "a test wrote into the shared fixtures"


# -- aof-check ----------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("name", VALID)
def test_check_valid_fixture_reports_each_file_and_its_commands(name: str, capsys: Any) -> None:
    rc, out, _ = _run(aof_check.main, [str(FIXTURES / name / "appendonlydir"), "--json"], capsys)
    assert rc == 0
    doc = json.loads(out)
    assert doc["valid"] and doc["problem"] is None and doc["kind"] == "manifest"
    exp = _expected(name)
    assert [f["file"] for f in doc["files"]] == [m["file"] for m in exp["manifest"] if m["type"] in "bi"]
    for got, want in zip(doc["files"], exp["files"], strict=True):
        assert got["size"] == want["size"] == got["valid_up_to"]
        if want["format"] == "resp":
            assert got["format"] == "resp"
            assert got["commands"] == sum(1 for c in want["commands"] if isinstance(c, list))
            assert got["annotations"] == sum(1 for c in want["commands"] if isinstance(c, dict))
        else:
            assert got["rdb"]["version"] == want["rdb_version"]
            assert got["rdb"]["end_offset"] == want["rdb_end_offset"]
            assert got["rdb"]["checksum"] == "ok"
            assert got["commands"] == len(want.get("resp_tail_commands", []))


@needs_fixtures
@pytest.mark.parametrize("name", DAMAGED)
def test_check_damaged_fixture_finds_what_redis_check_aof_finds(name: str, capsys: Any) -> None:
    exp = _expected(name)
    rc, out, _ = _run(aof_check.main, [str(FIXTURES / name / "appendonlydir"), "--json"], capsys)
    assert rc == 1
    doc = json.loads(out)
    ok_up_to, line = _analyzed(exp["check_aof"]["output"], exp["incr_file"])
    assert not doc["valid"]
    assert doc["problem"]["file"] == exp["incr_file"]
    assert doc["problem"]["valid_up_to"] == ok_up_to
    incr = doc["files"][-1]
    assert (incr["valid_up_to"], incr["ok_up_to_line"]) == (ok_up_to, line)
    assert doc["fixable"] and doc["fix_truncates_to"] == {"file": exp["incr_file"], "size": ok_up_to}
    kind = {"truncated": "truncated", "truncated-in-multi": "unfinished-multi",
            "truncated-in-multi-mid-command": "truncated", "corrupt-middle": "format"}[name]
    assert doc["problem"]["kind"] == kind


@needs_fixtures
def test_check_text_report_names_file_offset_and_last_valid_offset(capsys: Any) -> None:
    rc, out, _ = _run(aof_check.main, [str(FIXTURES / "truncated" / "appendonlydir")], capsys)
    assert rc == 1
    assert "appendonly.aof.1.incr.aof at offset 215: truncated record: Expected to read 7 bytes, got 5 bytes" in out
    assert "Last valid offset: 190 in appendonly.aof.1.incr.aof (30 bytes after it)" in out
    assert "8 commands" in out


@needs_fixtures
@pytest.mark.parametrize("name", DAMAGED)
def test_fix_leaves_the_bytes_redis_check_aof_fix_leaves_and_a_backup(name: str, tmp_path: Path,
                                                                       capsys: Any) -> None:
    d = _copy(name, tmp_path)
    incr = _expected(name)["incr_file"]
    original = (d / incr).read_bytes()
    rc, out, _ = _run(aof_check.main, [str(d), "--fix", "--yes"], capsys)
    assert rc == 0, out
    assert (d / incr).read_bytes() == (FIXTURES / name / "fixed" / "appendonlydir" / incr).read_bytes()
    backups = [p for p in d.iterdir() if p.name.endswith(".bak")]
    assert len(backups) == 1 and backups[0].read_bytes() == original
    rc, _, _ = _run(aof_check.main, [str(d)], capsys)
    assert rc == 0


@needs_fixtures
def test_fix_asks_first_and_a_refusal_changes_nothing(tmp_path: Path, capsys: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    d = _copy("truncated", tmp_path)
    before = _tree_hash(d)
    rc, out, err = _run(aof_check.main, [str(d), "--fix"], capsys, stdin="n\n", monkeypatch=monkeypatch)
    assert rc == 1
    assert "Continue? [y/N]" in err and "Nothing changed" in out
    assert _tree_hash(d) == before
    rc, _, _ = _run(aof_check.main, [str(d), "--fix", "--backup-dir", str(tmp_path)], capsys, stdin="y\n",
                    monkeypatch=monkeypatch)
    assert rc == 0
    assert len(list(tmp_path.glob("appendonly.aof.1.incr.aof.*.bak"))) == 1


@needs_fixtures
def test_fix_refuses_damage_in_a_file_that_is_not_the_last(tmp_path: Path, capsys: Any) -> None:
    d = _copy("multi-incr", tmp_path)
    first = d / "appendonly.aof.1.incr.aof"
    first.write_bytes(first.read_bytes()[:-3])
    before = _tree_hash(d)
    rc, out, _ = _run(aof_check.main, [str(d), "--fix", "--yes"], capsys)
    assert rc == 1
    assert "not the last file" in out
    assert _tree_hash(d) == before


@needs_fixtures
def test_truncate_to_timestamp_gives_what_redis_check_aof_gives(tmp_path: Path, capsys: Any) -> None:
    d = _copy("timestamps", tmp_path)
    ts = _expected("timestamps")["truncate_to_timestamp"]["timestamp"]
    rc, out, _ = _run(aof_check.main, [str(d), "--truncate-to-timestamp", str(ts), "--yes"], capsys)
    assert rc == 0, out
    want = FIXTURES / "timestamps" / "truncated-to-timestamp" / "appendonlydir"
    for f in ("appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof"):
        assert (d / f).read_bytes() == (want / f).read_bytes()
    assert len(list(d.glob("*.bak"))) == 1
    # Nothing newer than a far-future time: nothing to cut.
    rc, out, _ = _run(aof_check.main, [str(d), "--truncate-to-timestamp", "4102444800", "--yes"], capsys)
    assert rc == 0 and "Nothing to truncate" in out


def test_truncate_to_timestamp_refuses_a_cut_before_the_last_file(tmp_path: Path, capsys: Any) -> None:
    d = tmp_path / "aof"
    d.mkdir()
    (d / "appendonly.aof.1.incr.aof").write_bytes(
        b"#TS:100\r\n" + encode_command([b"SELECT", b"0"]) + encode_command([b"SET", b"a", b"1"])
        + b"#TS:200\r\n" + encode_command([b"SET", b"b", b"2"]))
    (d / "appendonly.aof.2.incr.aof").write_bytes(b"#TS:300\r\n" + encode_command([b"SET", b"c", b"3"]))
    (d / MANIFEST).write_bytes(b"file appendonly.aof.1.incr.aof seq 1 type i\n"
                               b"file appendonly.aof.2.incr.aof seq 2 type i\n")
    before = _tree_hash(d)
    rc, out, _ = _run(aof_check.main, [str(d), "--truncate-to-timestamp", "150", "--yes"], capsys)
    assert rc == 1 and "not the last file" in out
    assert _tree_hash(d) == before
    rc, out, _ = _run(aof_check.main, [str(d), "--truncate-to-timestamp", "250", "--yes"], capsys)
    assert rc == 0
    assert (d / "appendonly.aof.2.incr.aof").read_bytes() == b""


def test_check_reports_manifest_errors_missing_files_and_rdb_damage(tmp_path: Path, capsys: Any) -> None:
    d = tmp_path / "aof"
    d.mkdir()
    (d / MANIFEST).write_bytes(b"file appendonly.aof.1.incr.aof seq 1 type i\nbogus line\n")
    rc, out, _ = _run(aof_check.main, [str(d), "--json"], capsys)
    doc = json.loads(out)
    assert rc == 1 and doc["problem"]["kind"] == "manifest" and doc["problem"]["line"] == 2
    assert "Invalid AOF manifest file format" in doc["problem"]["message"]

    (d / MANIFEST).write_bytes(b"file appendonly.aof.1.incr.aof seq 1 type i\n")
    rc, out, _ = _run(aof_check.main, [str(d), "--json"], capsys)
    doc = json.loads(out)
    assert rc == 1 and doc["problem"]["kind"] == "missing" and not doc["fixable"]

    if FIXTURES.exists():
        base = FIXTURES / "preamble-yes" / "appendonlydir" / "appendonly.aof.2.base.rdb"
        data = bytearray(base.read_bytes())
        data[600] ^= 0xFF
        (d / "appendonly.aof.1.base.rdb").write_bytes(bytes(data))
        (d / "appendonly.aof.1.incr.aof").write_bytes(encode_command([b"SET", b"a", b"1"]))
        (d / MANIFEST).write_bytes(b"file appendonly.aof.1.base.rdb seq 1 type b\n"
                                   b"file appendonly.aof.1.incr.aof seq 1 type i\n")
        rc, out, _ = _run(aof_check.main, [str(d), "--json"], capsys)
        doc = json.loads(out)
        assert rc == 1 and doc["problem"]["kind"] == "rdb"
        assert doc["problem"]["file"] == "appendonly.aof.1.base.rdb" and doc["problem"]["offset"] is not None
        assert not doc["fixable"] and "RDB part" in doc["not_fixable_because"]
        rc, out, _ = _run(aof_check.main, [str(d), "--fix", "--yes"], capsys)
        assert rc == 1 and "Cannot fix" in out


@needs_fixtures
def test_check_single_files_old_style_aof_rdb_and_garbage(tmp_path: Path, capsys: Any) -> None:
    rc, out, _ = _run(aof_check.main, [str(FIXTURES / "legacy-upgrade" / "appendonlydir" / "appendonly.aof"),
                                       "--json"], capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["kind"] == "file"
    assert doc["files"][0]["format"] == "rdb+resp" and doc["files"][0]["commands"] == 2
    if RDB_FIXTURES.exists():
        rc, out, _ = _run(aof_check.main, [str(RDB_FIXTURES / "all-types.rdb"), "--json"], capsys)
        assert rc == 0 and json.loads(out)["files"][0]["format"] == "rdb"
    junk = tmp_path / "junk.aof"
    junk.write_bytes(encode_command([b"SET", b"a", b"1"]) + b"hello\r\n")
    rc, out, _ = _run(aof_check.main, [str(junk), "--json"], capsys)
    doc = json.loads(out)
    good = len(encode_command([b"SET", b"a", b"1"]))
    assert rc == 1 and doc["problem"]["kind"] == "format" and doc["problem"]["offset"] == good
    rc, out, _ = _run(aof_check.main, [str(junk), "--fix", "--yes"], capsys)
    assert rc == 0 and junk.read_bytes() == encode_command([b"SET", b"a", b"1"])


def test_check_usage_errors_exit_2(tmp_path: Path, capsys: Any) -> None:
    rc, _, err = _run(aof_check.main, [str(tmp_path / "nope")], capsys)
    assert rc == 2 and "no such file or directory" in err
    rc, _, err = _run(aof_check.main, [str(tmp_path)], capsys)
    assert rc == 2 and "no AOF manifest" in err
    rc, _, err = _run(aof_check.main, [str(tmp_path), "--fix", "--truncate-to-timestamp", "1"], capsys)
    assert rc == 2 and "Traceback" not in err


@pytest.mark.parametrize("kind", ["ambry", "redis"])
def test_check_live_server_directories_and_redis_check_aof_agrees(kind: str, server_factory: Servers,
                                                                   capsys: Any) -> None:
    s = _live_aof(server_factory, kind, "--aof-use-rdb-preamble", "yes")
    d = s.workdir / "appendonlydir"
    rc, out, _ = _run(aof_check.main, [str(d), "--json"], capsys)
    doc = json.loads(out)
    assert rc == 0, out
    assert doc["files"][0]["role"] == "base" and doc["files"][0]["format"] == "rdb"
    assert doc["files"][0]["rdb"]["keys"] == 54 and doc["files"][0]["rdb"]["functions"] == 1
    assert doc["files"][-1]["commands"] >= 6  # SELECT, MULTI, INCR, RPUSH, EXEC, SELECT, SET, PEXPIREAT
    if have_redis():
        r = subprocess.run(["redis-check-aof", str(d / MANIFEST)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout
        assert "All AOF files and manifest are valid" in r.stdout


# -- aof-rewrite --------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize(("name", "preamble"), [("preamble-yes", "rdb"), ("preamble-no", "aof"),
                                                ("multi-incr", "rdb"), ("legacy-upgrade", "aof")])
def test_rewrite_fixture_loads_as_the_same_dataset(name: str, preamble: str, tmp_path: Path,
                                                   server_factory: Servers, capsys: Any) -> None:
    src = FIXTURES / name / "appendonlydir"
    before = _tree_hash(src)
    out_dir = tmp_path / "out" / "appendonlydir"
    out_dir.parent.mkdir()
    rc, out, err = _run(aof_rewrite.main, [str(src), str(out_dir), "--preamble", preamble, "--json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["verified"]
    ext = "rdb" if preamble == "rdb" else "aof"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"appendonly.aof.1.base.{ext}", "appendonly.aof.1.incr.aof", MANIFEST])
    assert (out_dir / "appendonly.aof.1.incr.aof").stat().st_size == 0
    am = parse_manifest((out_dir / MANIFEST).read_bytes())
    assert am.base is not None and am.base.name == f"appendonly.aof.1.base.{ext}"
    assert [i.name for i in am.incr] == ["appendonly.aof.1.incr.aof"]
    assert _tree_hash(src) == before  # the input is only read
    assert list(out_dir.parent.iterdir()) == [out_dir]  # no work directory left behind
    a = _loaded(server_factory, src, tmp_path)
    b = _loaded(server_factory, out_dir, tmp_path)
    assert _digest(a) == _digest(b) == doc["digest"].encode()
    assert _functions(a) == _functions(b)


@needs_fixtures
@needs_redis
def test_rewrite_with_redis_server_as_engine_gives_the_same_dataset(tmp_path: Path, capsys: Any) -> None:
    src = str(FIXTURES / "preamble-yes" / "appendonlydir")
    rc, out, _ = _run(aof_rewrite.main, [src, str(tmp_path / "a"), "--json"], capsys)
    assert rc == 0
    rc, out2, _ = _run(aof_rewrite.main, [src, str(tmp_path / "b"), "--json", "--engine", "redis-server"], capsys)
    assert rc == 0
    assert json.loads(out)["digest"] == json.loads(out2)["digest"]


@pytest.mark.skipif(not RDB_FIXTURES.exists(), reason="RDB fixtures not found")
def test_rewrite_turns_an_rdb_into_an_aof_directory(tmp_path: Path, server_factory: Servers,
                                                    capsys: Any) -> None:
    rdb = RDB_FIXTURES / "all-types.rdb"
    out_dir = tmp_path / "appendonlydir"
    rc, out, err = _run(aof_rewrite.main, [str(rdb), str(out_dir), "--json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["input_kind"] == "rdb" and doc["keys"] > 100
    kind = "redis" if have_redis() else "ambry"
    home = tmp_path / "dump"
    home.mkdir()
    shutil.copyfile(rdb, home / "dump.rdb")
    a = server_factory(kind, "--dir", str(home), "--dbfilename", "dump.rdb")
    b = _loaded(server_factory, out_dir, tmp_path)
    assert _digest(a) == _digest(b)


@needs_fixtures
def test_rewrite_refuses_damaged_input_unless_load_truncated_and_never_overwrites(tmp_path: Path,
                                                                                  capsys: Any) -> None:
    src = FIXTURES / "truncated" / "appendonlydir"
    rc, _, err = _run(aof_rewrite.main, [str(src), str(tmp_path / "o1")], capsys)
    assert rc == 1 and "damaged" in err and "--load-truncated" in err
    assert not (tmp_path / "o1").exists()
    rc, out, err = _run(aof_rewrite.main, [str(src), str(tmp_path / "o1"), "--load-truncated", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["keys"] == 4  # a, b, c, l: the partial HSET is left out
    rc, _, err = _run(aof_rewrite.main, [str(src), str(tmp_path / "o1"), "--load-truncated"], capsys)
    assert rc == 2 and "already exists" in err
    rc, _, err = _run(aof_rewrite.main, [str(FIXTURES / "corrupt-middle" / "appendonlydir"), str(tmp_path / "o2"),
                                         "--load-truncated"], capsys)
    assert rc == 1 and "format error" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o1"]


@pytest.mark.parametrize("kind", ["ambry", "redis"])
def test_rewrite_live_server_directory_matches_the_live_digest(kind: str, tmp_path: Path,
                                                               server_factory: Servers, capsys: Any) -> None:
    s = _live_aof(server_factory, kind)
    live = _digest(s)
    out_dir = tmp_path / "appendonlydir"
    rc, out, err = _run(aof_rewrite.main, [str(s.workdir), str(out_dir), "--preamble", "aof", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["digest"].encode() == live
    assert _digest(_loaded(server_factory, out_dir, tmp_path)) == live


# -- aof-replay ---------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("name", ["preamble-yes", "preamble-no", "multi-incr", "legacy-upgrade", "timestamps"])
def test_replay_gives_the_target_the_dataset_of_a_loading_server(name: str, ambry: ServerProcess,
                                                                server_factory: Servers, tmp_path: Path,
                                                                capsys: Any) -> None:
    src = FIXTURES / name / "appendonlydir"
    rc, out, err = _run(aof_replay.main, [str(src), "--to", f"{ambry.host}:{ambry.port}", "--json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["errors"] == 0 and doc["commands_sent"] > 0
    ref = _loaded(server_factory, src, tmp_path)
    assert _digest(ambry) == _digest(ref)
    assert _functions(ambry) == _functions(ref)


@needs_fixtures
def test_replay_dry_run_prints_text_or_resp(capsys: Any) -> None:
    src = str(FIXTURES / "timestamps" / "appendonlydir")
    rc, out, err = _run(aof_replay.main, [src, "--dry-run"], capsys)
    assert rc == 0
    assert out.splitlines() == ["SELECT 0", "SET t0 a", "SET t1 b", "SET t2 c"]
    assert "4 commands printed" in err
    # RESP output parses back into the commands.
    buf = io.BytesIO()
    orig = sys.stdout
    try:
        sys.stdout = io.TextIOWrapper(buf)
        rc = aof_replay.main([str(FIXTURES / "preamble-yes" / "appendonlydir"), "--dry-run", "--format", "resp",
                              "-q"])
        sys.stdout.flush()
        data = buf.getvalue()
    finally:
        sys.stdout = orig
    assert rc == 0
    p = AOFParser()
    cmds = [ev.argv for ev in p.feed(data) if type(ev) is Command]
    p.close()
    assert cmds[0] == [b"SELECT", b"0"] and [b"SET", b"bin", b"a\x00b\r\n\xff"] in cmds
    assert cmds[-1][0].upper() in (b"DEL", b"SET", b"HSET", b"EXEC", b"XACK", b"LPOP")


@needs_fixtures
def test_replay_time_window_and_db_mapping(capsys: Any) -> None:
    src = str(FIXTURES / "timestamps" / "appendonlydir")
    rc, out, err = _run(aof_replay.main, [src, "--dry-run", "--from-ts", "1795480114", "--db", "0:3"], capsys)
    assert rc == 0
    assert out.splitlines() == ["SELECT 3", "SET t1 b", "SET t2 c"]
    assert "1 outside the time window" in err
    rc, out, err = _run(aof_replay.main, [src, "--dry-run", "--to-ts", "1795480114", "--json"], capsys)
    assert out.splitlines() == ["SELECT 0", "SET t0 a", "SET t1 b"]
    doc = json.loads(err)
    assert doc["stopped_at"] == {"file": "appendonly.aof.1.incr.aof", "offset": 111, "timestamp": 1795480115}
    rc, out, err = _run(aof_replay.main, [str(FIXTURES / "multi-incr" / "appendonlydir"), "--dry-run",
                                          "--from-ts", "1"], capsys)
    assert out == "" and "no #TS annotation" in err


def test_replay_maps_db_arguments_and_keeps_transactions_whole(tmp_path: Path, capsys: Any) -> None:
    f = tmp_path / "one.aof"
    f.write_bytes(b"".join([
        encode_command([b"SELECT", b"1"]), encode_command([b"SET", b"a", b"1"]),
        encode_command([b"MOVE", b"a", b"2"]), encode_command([b"COPY", b"a", b"b", b"DB", b"1"]),
        encode_command([b"SWAPDB", b"1", b"2"]),
        b"#TS:50\r\n", encode_command([b"MULTI"]), encode_command([b"SELECT", b"2"]),
        encode_command([b"INCR", b"n"]), b"#TS:99\r\n", encode_command([b"INCR", b"n"]), encode_command([b"EXEC"]),
        encode_command([b"SET", b"late", b"x"]),
    ]))
    rc, out, _ = _run(aof_replay.main, [str(f), "--dry-run", "--db", "1:5,2:6", "--to-ts", "60"], capsys)
    assert rc == 0
    assert out.splitlines() == [
        "SELECT 5", "SET a 1", "MOVE a 6", "COPY a b DB 5", "SWAPDB 5 6",
        "MULTI", "SELECT 6", "INCR n", "INCR n", "EXEC",  # the block ends before --to-ts stops
    ]


@needs_fixtures
def test_replay_reports_refused_commands_with_file_and_offset(ambry: ServerProcess, capsys: Any) -> None:
    src = str(FIXTURES / "preamble-yes" / "appendonlydir")
    target = f"{ambry.host}:{ambry.port}"
    assert _run(aof_replay.main, [src, "--to", target, "-q"], capsys)[0] == 0
    rc, out, err = _run(aof_replay.main, [src, "--to", target, "--json"], capsys)
    assert rc == 1
    doc = json.loads(out)
    assert doc["errors"] >= 1
    first = doc["first_errors"][0]
    assert first["file"] == "appendonly.aof.2.base.rdb" and first["command"] == "FUNCTION"
    assert "already exists" in first["error"]
    assert f"refused FUNCTION from appendonly.aof.2.base.rdb offset {first['offset']}" in err


@needs_fixtures
def test_replay_stops_at_damage_and_discards_an_open_transaction(ambry: ServerProcess, capsys: Any) -> None:
    rc, _, err = _run(aof_replay.main, [str(FIXTURES / "corrupt-middle" / "appendonlydir"), "--to",
                                        f"{ambry.host}:{ambry.port}"], capsys)
    assert rc == 1 and "at offset 101" in err and "Traceback" not in err
    c = _client(ambry)
    assert sorted(c.keys()) == [b"a", b"l"]
    rc, _, err = _run(aof_replay.main, [str(FIXTURES / "truncated-in-multi-mid-command" / "appendonlydir"),
                                        "--to", f"{ambry.host}:{ambry.port}"], capsys)
    assert rc == 0 and "left out" in err and "discarded" in err
    assert c.get("b") is None


def test_replay_auth_and_connection_errors(server_factory: Servers, tmp_path: Path, capsys: Any) -> None:
    f = tmp_path / "one.aof"
    f.write_bytes(encode_command([b"SET", b"k", b"v"]))
    s = server_factory("ambry", "--requirepass", "sekret")
    target = f"{s.host}:{s.port}"
    rc, _, err = _run(aof_replay.main, [str(f), "--to", target, "--password", "wrong"], capsys)
    assert rc == 3 and "Traceback" not in err
    rc, _, err = _run(aof_replay.main, [str(f), "--to", target, "--password", "sekret"], capsys)
    assert rc == 0, err
    assert _client_auth(s).get("k") == b"v"
    rc, _, err = _run(aof_replay.main, [str(f), "--to", "127.0.0.1:1"], capsys)
    assert rc == 3 and "cannot connect" in err
    rc, _, err = _run(aof_replay.main, [str(f)], capsys)
    assert rc == 2 and "--to" in err


def _client_auth(s: ServerProcess) -> redis_py.Redis:
    return redis_py.Redis(host=s.host, port=s.port, password="sekret")


# -- following ----------------------------------------------------------------------------------


def test_manifest_tracker_follows_rewrites_and_detects_gaps() -> None:
    def m(base: str | None, *incr: int) -> Manifest:
        am = Manifest()
        if base:
            am.base = AOFInfo(base, 1, "b")
        am.incr = [AOFInfo(f"a.{i}.incr.aof", i, "i") for i in incr]
        return am

    t = ManifestTracker(m("a.1.base.rdb", 1))
    assert t.update(m("a.1.base.rdb", 1)) == []
    assert [i.name for i in t.update(m("a.1.base.rdb", 1, 2))] == ["a.2.incr.aof"]  # a rewrite started
    assert t.update(m("a.2.base.rdb", 2)) == [] and t.rewrites == 1  # ... and finished: base not replayed
    assert [i.seq for i in t.update(m("a.3.base.aof", 3))] == [3]  # start and end seen at once
    assert t.rewrites == 2
    with pytest.raises(FollowGap, match="seq 4"):
        t.update(m("a.5.base.rdb", 5))  # incr 4 came and went unseen
    t2 = ManifestTracker(m("a.1.base.rdb", 1, 2))
    with pytest.raises(FollowGap, match="without a new base"):
        t2.update(m("a.1.base.rdb", 1))


@needs_fixtures
def test_record_reader_gives_the_same_records_whatever_the_chunking() -> None:
    for name in ("preamble-yes", "legacy-upgrade"):
        for f in (FIXTURES / name / "appendonlydir").iterdir():
            if f.name.endswith(".manifest"):
                continue
            data = f.read_bytes()
            whole = RecordReader()
            a = list(whole.feed(data)) + list(whole.close())
            small = RecordReader()
            b = []
            for i in range(0, len(data), 3):
                b.extend(small.feed(data[i:i + 3]))
            b.extend(small.close())
            assert a == b and a


def _follower(src: Path, target: ServerProcess, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ambry.tools.aof_replay", str(src), "--to", f"{target.host}:{target.port}",
         "--follow", "--poll", "0.2", "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class _Writer(threading.Thread):
    """Writes non-idempotent commands (a lost or repeated one changes the
    digest) until stopped: INCR, RPUSH, APPEND, HINCRBY, MULTI blocks, and
    writes to db 2."""

    def __init__(self, s: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.c = _client(s)
        self.stop = threading.Event()
        self.n = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                i = self.n
                p = self.c.pipeline(transaction=i % 3 == 0)
                p.incr("counter")
                p.rpush("list", i)
                p.append("log", f"{i},")
                p.hincrby("h", f"f{i % 7}", i)
                if i % 5 == 0:
                    p.execute_command("SELECT", "2")
                    p.incrby("db2-counter", i)
                    p.execute_command("SELECT", "0")
                p.execute()
                self.n += 1
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def _rewrite(c: redis_py.Redis, preamble: str) -> None:
    c.config_set("aof-use-rdb-preamble", preamble)
    before = int(c.info("persistence")["aof_rewrites"])
    c.bgrewriteaof()
    _wait_rewrite(c, before)


@pytest.mark.parametrize("kind", ["ambry", "redis"])
def test_follow_keeps_the_target_equal_across_rewrites(kind: str, server_factory: Servers) -> None:
    # The source writes all the time; BGREWRITEAOF runs three times meanwhile (RDB and RESP bases),
    # each made slow by rdb-key-save-delay so writes land in the new incr file during the rewrite.
    source = server_factory(kind, "--appendonly", "yes", "--appendfsync", "everysec", "--rdb-key-save-delay", "1000")
    target = server_factory("ambry")
    c = _client(source)
    for i in range(300):
        c.set(f"k{i}", i)
    writer = _Writer(source)
    writer.start()
    follower = _follower(source.workdir / "appendonlydir", target)
    try:
        # The follower is replaying the initial base and incr before the first rewrite starts.
        _wait(lambda: _client(target).get("counter") is not None, what="the follower to start replaying")
        for preamble in ("yes", "no", "yes"):
            _rewrite(c, preamble)
            n = writer.n
            _wait(lambda n=n: writer.n > n + 30, what="writes after a rewrite")  # type: ignore[misc]
        writer.stop.set()
        writer.join(10)
        assert writer.error is None, writer.error
        want = _digest(source)
        try:
            _wait(lambda: follower.poll() is not None or _digest(target) == want, timeout=60,
                  what="the follower to catch up")
        except AssertionError:
            pass
        if _digest(target) != want:
            tc, sc = _client(target), _client(source)
            state: dict[str, Any] = {"counter": (sc.get("counter"), tc.get("counter"))}
            state["list"] = (sc.llen("list"), tc.llen("list"))
            state["alive"] = follower.poll() is None
            raise AssertionError(f"the target differs from the source: (source, target) = {state}")
        assert _client(target).get("counter") == str(writer.n).encode()
    finally:
        writer.stop.set()
        if follower.poll() is None:
            follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    doc = json.loads(out)
    assert doc["errors"] == 0 and doc["rewrites_followed"] >= 1, doc
    # Every incr file was read, the new bases never: three rewrites, three new incr files.
    assert doc["files"] == ["appendonly.aof.1.base.rdb"] + [f"appendonly.aof.{i}.incr.aof" for i in range(1, 5)]
    assert doc["commands_sent"] >= writer.n * 4
    am = parse_manifest((source.workdir / "appendonlydir" / MANIFEST).read_bytes())
    assert am.base is not None and am.base.seq >= 4


def test_follow_tails_a_single_file_and_stops_at_to_ts(tmp_path: Path, ambry: ServerProcess) -> None:
    f = tmp_path / "appendonly.aof"
    f.write_bytes(b"#TS:100\r\n" + encode_command([b"SELECT", b"0"]) + encode_command([b"SET", b"a", b"1"]))
    follower = _follower(f, ambry, "--to-ts", "200")
    c = _client(ambry)
    try:
        _wait(lambda: c.get("a") == b"1", what="the first record")
        rec = encode_command([b"SET", b"b", b"2"])
        with open(f, "ab") as w:
            w.write(rec[:7])  # a record being written: nothing is sent until it is complete
            w.flush()
            time.sleep(0.3)
            assert c.get("b") is None
            w.write(rec[7:] + b"#TS:300\r\n" + encode_command([b"SET", b"c", b"3"]))
        out, err = follower.communicate(timeout=30)  # --to-ts ends the replay at #TS:300
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, err
    assert c.get("b") == b"2" and c.get("c") is None
    assert json.loads(out)["stopped_at"]["timestamp"] == 300


# -- command line -------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["aof-check", "aof-rewrite", "aof-replay"])
def test_console_script_help_documents_usage_and_exit_codes(tool: str) -> None:
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed (pip install -e .)")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert "exit status:" in r.stdout and "examples:" in r.stdout
    for code in ("0 ", "1 ", "2 ", "3 "):
        assert f"\n  {code}" in r.stdout
    r = subprocess.run([exe, "--no-such-option"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
