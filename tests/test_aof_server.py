"""The AOF on the server (server/aof.py): writing through the effect path,
loading, rewriting, turning it on and off, and what real redis-server 7.0.15
does with the same files.

In-process tests drive a ``Server`` in a temporary directory (the rewrite
child is a real fork); process tests start ``ambry-server`` (and
``redis-server`` for interop) in their own directories.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from ambry.persistence.aof import AOFParser, Command, encode_command, parse_manifest
from ambry.server import aof as aofmod
from ambry.server import registry
from ambry.server.effects import RecordingSink
from conftest import ambry_argv, free_port, have_redis, redis_argv
from differential import RespConn

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "aof" / "redis-7.0"
if os.environ.get("AMBRY_SHARED_FIXTURES"):
    FIXTURES = Path(os.environ["AMBRY_SHARED_FIXTURES"]) / "aof" / "redis-7.0"

need_fixtures = pytest.mark.skipif(not FIXTURES.exists(), reason=f"shared fixtures not found at {FIXTURES}")
need_redis = pytest.mark.skipif(not have_redis(), reason="redis-server is not installed")


# -- an in-process server in a directory ---------------------------------------------------------


class Node:
    """A Server started (AOF start-up included) in the current directory."""

    def __init__(self, *args: str) -> None:
        import ambry.server.commands as cmds
        from ambry.server.client import Client
        from ambry.server.config import Config
        from ambry.server.core import Server

        cfg = Config()
        cfg.apply_args(["--save", "", *args])
        self.srv = Server(cfg)
        cmds.install(self.srv)
        self.client = Client(self.srv, fake=True)
        self.exit_code: int | None = None
        try:
            asyncio.run(aofmod.startup_load(self.srv, None))
        except SystemExit as e:
            self.exit_code = int(e.code or 0)

    @property
    def aof(self) -> aofmod.AOF:
        return aofmod.state(self.srv)

    def call(self, *args: bytes | str | int) -> Any:
        """A command and its reply, flushed as a client's reply would be
        (the AOF is written before)."""
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        r = self.srv.process(self.client, argv)
        self.client.flush()
        return r

    def digest(self) -> bytes:
        return bytes(self.call("DEBUG", "DIGEST"))

    def wait_rewrite(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.srv.child_type == "aof":  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "rewrite child did not finish"
            time.sleep(0.01)
            aofmod.server_cron(self.srv)
        aofmod.server_cron(self.srv)

    def info(self) -> dict[str, str]:
        text = self.call("INFO", "persistence").text.decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def close(self) -> None:
        aofmod.kill_child(self.srv)
        st = self.aof
        if st.fd != -1:
            st.bio.drain()
            os.close(st.fd)
            st.fd = -1


@pytest.fixture
def node_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Node]]:
    monkeypatch.chdir(tmp_path)
    nodes: list[Node] = []

    def make(*args: str) -> Node:
        n = Node("--enable-debug-command", "yes", *args)
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.close()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the server logs during the test."""
    from ambry.server.log import log

    buf = io.StringIO()
    saved = log._file
    log._file = buf
    yield buf
    log._file = saved


def incr_commands(path: Path) -> list[list[bytes]]:
    p = AOFParser()
    out = [ev.argv for ev in p.feed(path.read_bytes()) if type(ev) is Command]
    p.close()
    return out


def manifest_text(d: Path = Path("appendonlydir")) -> bytes:
    return (d / "appendonly.aof.manifest").read_bytes()


# -- writing -------------------------------------------------------------------------------------


def test_start_with_an_empty_dataset_creates_base_incr_and_manifest_named_as_redis(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes")
    assert n.exit_code is None
    assert sorted(os.listdir("appendonlydir")) == [
        "appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"]
    assert manifest_text() == (b"file appendonly.aof.1.base.rdb seq 1 type b\n"
                               b"file appendonly.aof.1.incr.aof seq 1 type i\n")
    base = Path("appendonlydir/appendonly.aof.1.base.rdb").read_bytes()
    assert base.startswith(b"REDIS0010") and b"aof-base" in base
    assert Path("appendonlydir/appendonly.aof.1.incr.aof").read_bytes() == b""
    info = n.info()
    assert info["aof_enabled"] == "1" and info["aof_current_size"] == "0" and info["aof_base_size"] == "0"


def test_preamble_no_creates_a_resp_base(node_in: Callable[..., Node]) -> None:
    node_in("--appendonly", "yes", "--aof-use-rdb-preamble", "no")
    assert Path("appendonlydir/appendonly.aof.1.base.aof").read_bytes() == b""  # empty dataset: no commands


def test_effects_reach_the_incr_file_exactly_as_the_effect_path_emits_them(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes")
    rec = RecordingSink()
    n.srv.propagator.add_sink(rec)
    script = [
        ("SET", "a", "1"), ("INCR", "a"), ("SET", "k", "v", "EX", "100"), ("SELECT", "3"), ("RPUSH", "l", "x", "y"),
        ("MULTI",), ("SET", "x", "1"), ("SET", "y", "2"), ("EXEC",), ("SELECT", "0"), ("SADD", "s", "a", "b", "c"),
        ("SPOP", "s", "2"), ("HINCRBYFLOAT", "h", "f", "0.5"), ("GET", "a"), ("DEL", "nosuchkey"),
        ("EXPIRE", "a", "-1"), ("FLUSHDB",),
    ]
    for cmd in script:
        n.call(*cmd)
    data = Path("appendonlydir/appendonly.aof.1.incr.aof").read_bytes()
    assert data == b"".join(encode_command(c) for c in rec.commands)
    cmds = incr_commands(Path("appendonlydir/appendonly.aof.1.incr.aof"))
    # Redis 7.0's layout of a transaction on db 3: SELECT before MULTI
    i = cmds.index([b"MULTI"])
    assert cmds[i - 2 : i + 4] == [[b"SELECT", b"3"], [b"RPUSH", b"l", b"x", b"y"], [b"MULTI"], [b"SET", b"x", b"1"],
                                   [b"SET", b"y", b"2"], [b"EXEC"]]
    assert [b"GET", b"a"] not in cmds and [b"DEL", b"nosuchkey"] not in cmds
    assert cmds[-2:] == [[b"DEL", b"a"], [b"FLUSHDB"]]
    assert n.info()["aof_current_size"] == str(len(data))


def test_the_aof_is_written_before_the_reply_leaves(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes", "--appendfsync", "always")
    path = Path("appendonlydir/appendonly.aof.1.incr.aof")
    n.srv.process(n.client, [b"SET", b"a", b"1"])
    assert path.read_bytes() == b""  # buffered: nothing replied yet
    assert n.srv.aof_pending
    n.client.flush()  # the reply's way out writes (and fsyncs) the AOF first
    assert path.read_bytes().endswith(encode_command([b"SET", b"a", b"1"]))
    assert not n.srv.aof_pending and n.aof.fsync_offset == n.aof.current_size


def test_timestamp_annotations_precede_writes_of_a_new_second(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes", "--aof-timestamp-enabled", "yes")
    n.call("SET", "a", "1")
    n.call("SET", "b", "2")
    data = Path("appendonlydir/appendonly.aof.1.incr.aof").read_bytes()
    assert data.startswith(b"#TS:")
    ts = int(data[4 : data.index(b"\r\n")])
    assert abs(ts - time.time()) < 5
    assert data.count(b"#TS:") in (1, 2)  # one per second in which something was written


def test_everysec_fsyncs_in_the_background_and_no_never_fsyncs(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes", "--appendfsync", "everysec")
    n.aof.last_fsync = 0  # a second has passed since the last fsync
    n.call("SET", "a", "1")
    n.aof.bio.drain()
    assert n.aof.fsync_offset == n.aof.current_size > 0
    n.call("CONFIG", "SET", "appendfsync", "no")
    n.aof.last_fsync = 0
    n.call("SET", "b", "2")
    assert n.aof.fsync_offset < n.aof.current_size


def test_everysec_postpones_a_write_behind_a_running_fsync_for_up_to_two_seconds(
        node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes", "--appendfsync", "everysec")
    path = Path("appendonlydir/appendonly.aof.1.incr.aof")
    n.aof.bio.fsync_pending = 1  # a background fsync is still running
    n.call("SET", "a", "1")
    assert path.read_bytes() == b"" and int(n.info()["aof_buffer_length"]) > 0
    aofmod.server_cron(n.srv)  # still within 2 seconds: postponed again
    assert path.read_bytes() == b""
    n.aof.flush_postponed_start -= 2
    aofmod.server_cron(n.srv)  # waited long enough: written anyway, and counted
    assert path.read_bytes().endswith(encode_command([b"SET", b"a", b"1"]))
    assert n.info()["aof_delayed_fsync"] == "1"
    n.aof.bio.fsync_pending = 0


# -- rewriting ---------------------------------------------------------------------------------


def populate(n: Node) -> None:
    """Every type, a TTL, a stream with a group and pending entries, a second
    db -- all through commands (DEBUG POPULATE is not propagated, in Redis
    neither)."""
    n.call("MSET", *[x for i in range(200) for x in (f"key:{i}", f"value:{i}")])
    n.call("RPUSH", "list", *[str(i) for i in range(150)])
    n.call("SADD", "intset", "1", "2", "3")
    n.call("SADD", "set", *[f"m{i}" for i in range(70)])
    n.call("HSET", "hash", *[x for i in range(70) for x in (f"f{i}", f"v{i}")])
    n.call("HSET", "small", "a", "1")
    n.call("SET", "ttl", "v", "PX", "100000000")
    n.call("XADD", "stream", "1-1", "f", "v")
    n.call("XADD", "stream", "2-1", "f", "v2")
    n.call("XGROUP", "CREATE", "stream", "g", "0")
    n.call("XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "stream", ">")
    n.call("XGROUP", "CREATECONSUMER", "stream", "g", "idle")
    n.call("SELECT", "2")
    n.call("SET", "in2", "x")
    n.call("SELECT", "0")


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_bgrewriteaof_rotates_files_and_the_result_loads_to_the_same_digest(
        node_in: Callable[..., Node], preamble: str) -> None:
    n = node_in("--appendonly", "yes", "--aof-use-rdb-preamble", preamble)
    populate(n)
    assert n.call("BGREWRITEAOF") == b"Background append only file rewriting started"
    # the new incr file exists and is listed before the child is done
    assert Path("appendonlydir/appendonly.aof.2.incr.aof").exists()
    assert parse_manifest(manifest_text()).incr[-1].name == "appendonly.aof.2.incr.aof"
    assert n.call("BGREWRITEAOF").msg == b"ERR Background append only file rewriting already in progress"
    n.call("SET", "during", "1")
    n.wait_rewrite()
    n.call("SET", "after", "1")
    ext = "rdb" if preamble == "yes" else "aof"
    assert manifest_text() == (f"file appendonly.aof.2.base.{ext} seq 2 type b\n"
                               "file appendonly.aof.2.incr.aof seq 2 type i\n").encode()
    n.aof.bio.drain()
    assert sorted(os.listdir("appendonlydir")) == sorted(
        [f"appendonly.aof.2.base.{ext}", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"])
    assert not [f for f in os.listdir(".") if f.startswith("temp-")]
    info = n.info()
    assert info["aof_rewrites"] == "1" and info["aof_last_bgrewrite_status"] == "ok"
    assert info["aof_rewrite_in_progress"] == "0" and info["aof_last_rewrite_time_sec"] != "-1"
    base = os.path.getsize(f"appendonlydir/appendonly.aof.2.base.{ext}")
    incr = os.path.getsize("appendonlydir/appendonly.aof.2.incr.aof")
    assert int(info["aof_current_size"]) == base + incr
    before = n.digest()
    assert n.call("DEBUG", "LOADAOF") == b"OK"
    assert n.digest() == before
    assert n.srv.dbs[2].data[b"in2"] == b"x"
    n.call("CONFIG", "RESETSTAT")
    assert n.info()["aof_rewrites"] == "0"


def test_a_rewrite_whose_child_is_killed_leaves_the_previous_aof_loadable(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes", "--rdb-key-save-delay", "100000")
    populate(n)
    n.call("BGREWRITEAOF")
    n.call("SET", "during", "1")
    os.kill(n.srv.child_pid, signal.SIGKILL)  # type: ignore[attr-defined]
    n.wait_rewrite()
    info = n.info()
    assert info["aof_last_bgrewrite_status"] == "err" and info["aof_rewrites_consecutive_failures"] == "1"
    # the old base and both incr files stay listed, as in the multi-incr fixture
    assert manifest_text() == (b"file appendonly.aof.1.base.rdb seq 1 type b\n"
                               b"file appendonly.aof.1.incr.aof seq 1 type i\n"
                               b"file appendonly.aof.2.incr.aof seq 2 type i\n")
    assert not [f for f in os.listdir(".") if f.startswith("temp-")]
    before = n.digest()
    n.call("DEBUG", "LOADAOF")
    assert n.digest() == before and n.call("GET", "during") == b"1"
    # the next rewrite retires every old file
    n.call("CONFIG", "SET", "rdb-key-save-delay", "0")
    n.call("BGREWRITEAOF")
    n.wait_rewrite()
    assert manifest_text() == (b"file appendonly.aof.2.base.rdb seq 2 type b\n"
                               b"file appendonly.aof.3.incr.aof seq 3 type i\n")
    assert n.info()["aof_last_bgrewrite_status"] == "ok"


def test_a_rewrite_failing_to_install_its_base_keeps_the_manifest(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes")
    n.call("SET", "a", "1")
    os.mkdir("appendonlydir/appendonly.aof.2.base.rdb")  # the rename onto it must fail
    os.mkdir("appendonlydir/appendonly.aof.2.base.rdb/x")
    n.call("BGREWRITEAOF")
    n.wait_rewrite()
    assert n.info()["aof_last_bgrewrite_status"] == "err"
    assert parse_manifest(manifest_text()).base.name == "appendonly.aof.1.base.rdb"  # type: ignore[union-attr]
    n.call("SET", "b", "2")
    before = n.digest()
    n.call("DEBUG", "LOADAOF")
    assert n.digest() == before


def test_bgrewriteaof_inside_multi_is_scheduled_and_the_cron_starts_it(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes")
    n.call("MULTI")
    n.call("BGREWRITEAOF")
    assert n.call("EXEC") == [b"Background append only file rewriting scheduled"]
    assert n.info()["aof_rewrite_scheduled"] == "1"
    aofmod.server_cron(n.srv)
    assert n.srv.child_type == "aof"  # type: ignore[attr-defined]
    n.wait_rewrite()
    assert n.info()["aof_rewrite_scheduled"] == "0"


def test_automatic_rewrite_on_growth(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes", "--auto-aof-rewrite-min-size", "1000", "--auto-aof-rewrite-percentage", "100")
    n.call("SET", "k", "x" * 500)
    aofmod.server_cron(n.srv)
    assert n.srv.child_type is None  # type: ignore[attr-defined]
    n.call("SET", "k", "x" * 600)  # past the minimum size, and more than 100% over a zero base
    aofmod.server_cron(n.srv)
    assert n.srv.child_type == "aof"  # type: ignore[attr-defined]
    n.wait_rewrite()
    info = n.info()
    assert info["aof_rewrites"] == "1"
    assert info["aof_base_size"] == info["aof_current_size"]  # the reference for the next growth


def test_config_set_appendonly_yes_rewrites_first_then_no_closes(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "no", "--rdb-key-save-delay", "20000")
    n.call("SET", "before", "1")
    n.call("DEBUG", "POPULATE", "20")
    assert n.call("CONFIG", "SET", "appendonly", "yes") == b"OK"
    info = n.info()
    assert info["aof_enabled"] == "1" and info["aof_rewrite_in_progress"] == "1"  # as 7.0 reports it
    assert os.listdir("appendonlydir") == ["temp-appendonly.aof.incr"]
    n.call("SET", "during", "1")
    n.wait_rewrite()
    assert manifest_text() == (b"file appendonly.aof.1.base.rdb seq 1 type b\n"
                               b"file appendonly.aof.1.incr.aof seq 1 type i\n")
    assert incr_commands(Path("appendonlydir/appendonly.aof.1.incr.aof")) == [[b"SELECT", b"0"],
                                                                           [b"SET", b"during", b"1"]]
    n.call("SET", "after", "1")
    before = n.digest()
    n.call("DEBUG", "LOADAOF")
    assert n.digest() == before
    assert n.call("CONFIG", "SET", "appendonly", "no") == b"OK"
    assert n.info()["aof_enabled"] == "0" and n.aof.fd == -1
    n.call("SET", "off", "1")
    assert [b"SET", b"off", b"1"] not in incr_commands(Path("appendonlydir/appendonly.aof.1.incr.aof"))


def test_shutdown_refuses_while_the_first_rewrite_runs_unless_forced(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "no", "--rdb-key-save-delay", "1000000")
    n.call("DEBUG", "POPULATE", "5")
    n.call("CONFIG", "SET", "appendonly", "yes")
    assert aofmod._shutdown_hook(n.srv, None, False, False) is not None
    assert aofmod._shutdown_hook(n.srv, None, False, True) is None
    assert n.srv.child_type is None  # type: ignore[attr-defined]


# -- loading -----------------------------------------------------------------------------------


def copy_fixture(name: str, dest: Path = Path(".")) -> None:
    shutil.copytree(FIXTURES / name / "appendonlydir", dest / "appendonlydir")
    for p in (dest / "appendonlydir").iterdir():
        p.chmod(0o644)


def fixture_commands_known(name: str) -> str | None:
    """The first command of the fixture Ambry does not implement (None: all known)."""
    d = FIXTURES / name / "appendonlydir"
    am = parse_manifest((d / "appendonly.aof.manifest").read_bytes())
    for info in am.files():
        data = (d / info.name).read_bytes()
        start = 0
        if data[:5] == b"REDIS":
            from ambry.persistence.rdb import RDBReader

            r = RDBReader()
            list(r.feed(data))
            start = r.end_offset or 0
        p = AOFParser()
        for ev in p.feed(data[start:]):
            if type(ev) is Command and registry.lookup(ev.argv) is None:
                return ev.argv[0].decode()
    return None


def describe(n: Node) -> dict[tuple[int, bytes], Any]:
    """The dataset in expected.json's terms (values, TTLs)."""
    from ambry.server import rdb

    out: dict[tuple[int, bytes], Any] = {}
    for db in n.srv.dbs:
        for key, v in db.data.items():
            t = type(v).__name__
            if isinstance(v, (bytes, bytearray, int)):
                val: Any = bytes(v) if not isinstance(v, int) else b"%d" % v
            elif t == "ListValue":
                val = list(v)
            elif t == "SetValue":
                val = sorted(v.elements())
            elif t == "HashValue":
                val = sorted((bytes(f), bytes(x)) for f, x in v.items())
            elif t == "ZSetValue":
                val = [(m, s) for m, s in v.pairs()]
            elif rdb.STREAM_TYPE is not None and type(v) is rdb.STREAM_TYPE:
                s = v.to_rdb()
                val = (s.length, str(s.last_id), [(str(e.id), e.fields) for e in s.entries],
                       sorted((g.name, str(g.last_id), sorted(c.name for c in g.consumers),
                               sorted((str(x.id), x.delivery_count) for x in g.pel)) for g in s.groups))
            else:
                val = repr(v)
            out[(db.id, key)] = (val, db.expires.get(key))
    return out


def expected_dataset(keys: list[dict[str, Any]]) -> dict[tuple[int, bytes], Any]:
    def b(x: Any) -> bytes:
        if isinstance(x, dict):  # the fixtures' binary-safe form
            return base64.b64decode(x["base64"])
        return str(x).encode()

    out: dict[tuple[int, bytes], Any] = {}
    for k in keys:
        t = k["type"]
        v = k["value"]
        if t == "string":
            val: Any = b(v)
        elif t == "list":
            val = [b(x) for x in v]
        elif t == "set":
            val = sorted(b(x) for x in v)
        elif t == "hash":
            val = sorted((b(f), b(x)) for f, x in v)
        elif t == "zset":
            val = [(b(m), float(s)) for m, s in v]
        elif t == "stream":
            val = (v["length"], v["last_generated_id"],
                   [(e["id"], [(b(f), b(x)) for f, x in e["fields"]]) for e in v["entries"]],
                   sorted((b(g["name"]), g["last_delivered_id"], sorted(b(c["name"]) for c in g["consumers"]),
                           sorted((p["id"], p["delivery_count"]) for p in g["pel"])) for g in v["groups"]))
        else:
            val = v
        out[(k["db"], b(k["key"]))] = (val, k["expire_ms"])
    return out


LOADABLE = ["truncated", "truncated-in-multi", "multi-incr", "legacy-upgrade", "timestamps", "preamble-yes",
            "preamble-no", "effects"]


@need_fixtures
@pytest.mark.parametrize("name", LOADABLE)
def test_every_fixture_directory_loads_to_its_expected_dataset(node_in: Callable[..., Node], name: str) -> None:
    missing = fixture_commands_known(name)
    if missing is not None:
        pytest.skip(f"the fixture replays {missing}, not implemented in Ambry yet")
    copy_fixture(name)
    n = node_in("--appendonly", "yes")
    assert n.exit_code is None
    exp = json.loads((FIXTURES / name / "expected.json").read_text())
    keys = exp["keys"] if "keys" in exp else exp["server_load_aof_load_truncated_yes"]["dataset"]["keys"]
    got = describe(n)
    want = expected_dataset(keys)
    if name == "effects":
        # the XREADGROUP NOACK row replays as XGROUP SETID ... ENTRIESREAD: Redis's own replay
        # differs from its live dataset there too (reload_check in expected.json)
        got.pop((0, b"x"), None)
        want.pop((0, b"x"), None)
    assert got == want


@need_fixtures
def test_truncated_tail_is_cut_at_the_last_complete_command_and_logged_as_redis(
        node_in: Callable[..., Node], logs: Any) -> None:
    copy_fixture("truncated")
    n = node_in("--appendonly", "yes")
    assert n.exit_code is None
    log = logs.getvalue()
    exp = json.loads((FIXTURES / "truncated" / "expected.json").read_text())["server_load_aof_load_truncated_yes"]
    for line in exp["log"]:
        if "seconds" not in line and "Configuration" not in line and "fsync" not in line:
            assert line[2:] in log, line
    assert os.path.getsize("appendonlydir/appendonly.aof.1.incr.aof") == exp["incr_size_after_load"]
    assert "DB loaded from append only file" in log


@need_fixtures
def test_a_truncated_transaction_is_dropped_whole_even_when_cut_inside_a_command(
        node_in: Callable[..., Node], logs: Any) -> None:
    """Redis 7.0 cuts this file after ``MULTI; SET b 2`` and then appends the
    next write after the dangling MULTI, so it is lost at the next restart
    (post_recovery_key_survived: false in the fixture).  Ambry cuts before
    the MULTI."""
    copy_fixture("truncated-in-multi-mid-command")
    n = node_in("--appendonly", "yes")
    assert n.exit_code is None
    assert "Revert incomplete MULTI/EXEC transaction" in logs.getvalue()
    assert os.path.getsize("appendonlydir/appendonly.aof.1.incr.aof") == 86
    assert sorted(k for _, k in describe(n)) == [b"a", b"l"]
    n.call("SET", "post-recovery", "1")
    n.close()
    again = node_in("--appendonly", "yes")
    assert again.call("GET", "post-recovery") == b"1"


@need_fixtures
@pytest.mark.parametrize("name", ["truncated", "truncated-in-multi", "truncated-in-multi-mid-command"])
def test_aof_load_truncated_no_refuses_to_start(node_in: Callable[..., Node], logs: Any,
                                                 name: str) -> None:
    copy_fixture(name)
    size = os.path.getsize("appendonlydir/appendonly.aof.1.incr.aof")
    n = node_in("--appendonly", "yes", "--aof-load-truncated", "no")
    assert n.exit_code == 1
    assert ("Unexpected end of file reading the append only file appendonly.aof.1.incr.aof. You can: 1) Make a "
            "backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you "
            "can set the 'aof-load-truncated' configuration option to yes and restart the server."
            ) in logs.getvalue()
    assert os.path.getsize("appendonlydir/appendonly.aof.1.incr.aof") == size  # nothing cut


@need_fixtures
@pytest.mark.parametrize("truncated", ["yes", "no"])
def test_a_corrupt_record_in_the_middle_is_always_fatal(node_in: Callable[..., Node],
                                                       logs: Any, truncated: str) -> None:
    copy_fixture("corrupt-middle")
    n = node_in("--appendonly", "yes", "--aof-load-truncated", truncated)
    assert n.exit_code == 1
    exp = json.loads((FIXTURES / "corrupt-middle" / "expected.json").read_text())
    out = logs.getvalue()
    assert exp[f"server_load_aof_load_truncated_{truncated}"]["log"][-1][2:] in out
    assert ("AOF appendonly.aof.1.incr.aof: expected '*' or '#', got b'G' at offset 101 "
            "(commands are valid up to offset 101)") in out
    assert os.path.getsize("appendonlydir/appendonly.aof.1.incr.aof") == 260


@need_fixtures
def test_a_truncated_file_that_is_not_the_last_is_fatal_and_not_cut(node_in: Callable[..., Node]) -> None:
    copy_fixture("multi-incr")
    path = Path("appendonlydir/appendonly.aof.1.incr.aof")
    path.write_bytes(path.read_bytes()[:-3])
    n = node_in("--appendonly", "yes")
    assert n.exit_code == 1
    assert path.stat().st_size == 81


@need_fixtures
def test_an_old_single_file_aof_is_upgraded_into_a_manifest(node_in: Callable[..., Node],
                                                            logs: Any) -> None:
    shutil.copy(FIXTURES / "legacy-upgrade" / "appendonlydir" / "appendonly.aof", "appendonly.aof")
    os.chmod("appendonly.aof", 0o644)
    n = node_in("--appendonly", "yes")
    assert n.exit_code is None
    log = logs.getvalue()
    assert ("Successfully migrated an old-style AOF file (appendonly.aof) into the AOF directory (appendonlydir)."
            in log)
    assert "Reading RDB preamble from AOF file..." in log and "Reading the remaining AOF tail..." in log
    assert "Creating AOF incr file appendonly.aof.1.incr.aof on server start" in log
    assert not os.path.exists("appendonly.aof")
    assert manifest_text() == (b"file appendonly.aof seq 1 type b\n"
                               b"file appendonly.aof.1.incr.aof seq 1 type i\n")
    assert sorted(k for _, k in describe(n)) == [b"k1", b"k2", b"k3"]


def test_a_missing_listed_file_is_fatal(node_in: Callable[..., Node], logs: Any) -> None:
    n = node_in("--appendonly", "yes")
    n.call("SET", "a", "1")
    n.close()
    os.unlink("appendonlydir/appendonly.aof.1.incr.aof")
    again = node_in("--appendonly", "yes")
    assert again.exit_code == 1
    assert "Unable to obtain the AOF file appendonly.aof.1.incr.aof length. stat: No such file or directory" in (
        logs.getvalue())


@pytest.mark.parametrize("appendonly", ["yes", "no"])
def test_a_damaged_manifest_stops_the_server_even_with_aof_off(node_in: Callable[..., Node],
                                                               logs: Any,
                                                               appendonly: str) -> None:
    n = node_in("--appendonly", "yes")
    n.close()
    with open("appendonlydir/appendonly.aof.manifest", "ab") as f:
        f.write(b"garbage line\n")
    again = node_in("--appendonly", appendonly)
    assert again.exit_code == 1
    out = logs.getvalue()
    assert "*** FATAL AOF MANIFEST FILE ERROR ***" in out
    assert "Reading the manifest file, at line 3" in out and ">>> 'garbage line'" in out
    assert "Invalid AOF manifest file format" in out


def test_the_aof_wins_over_the_rdb_and_restart_replays_everything(node_in: Callable[..., Node]) -> None:
    n = node_in("--appendonly", "yes")
    populate(n)
    n.call("SAVE")  # a dump.rdb exists too
    n.call("SET", "only-in-aof", "1")
    before = n.digest()
    n.close()
    again = node_in("--appendonly", "yes")
    assert again.digest() == before
    info = again.info()
    assert int(info["aof_current_size"]) == sum(
        os.path.getsize(f"appendonlydir/{f.name}") for f in parse_manifest(manifest_text()).files())
    assert info["aof_base_size"] == str(os.path.getsize("appendonlydir/appendonly.aof.1.base.rdb"))


def test_debug_loadaof_without_an_aof_stops_the_server_as_redis(tmp_path: Path) -> None:
    """Redis 7.0 exits when DEBUG LOADAOF finds no AOF to load."""
    port = free_port()
    proc = subprocess.Popen(ambry_argv(port), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        r = _wait_client(port, proc)
        r.set("a", "1")
        with pytest.raises(redis_py.ConnectionError):
            r.execute_command("DEBUG", "LOADAOF")
        assert proc.wait(10) == 1
    finally:
        proc.kill()
        proc.wait()


# -- processes -----------------------------------------------------------------------------------


def _wait_client(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> redis_py.Redis:
    r = redis_py.Redis(port=port)
    deadline = time.monotonic() + timeout
    while True:
        try:
            r.ping()
            return r
        except redis_py.BusyLoadingError:
            return r
        except redis_py.ConnectionError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}") from None
            assert time.monotonic() < deadline
            time.sleep(0.02)


class Proc:
    """A server process of one kind in a given directory (kept between starts)."""

    def __init__(self, kind: str, workdir: Path, *extra: str) -> None:
        self.kind = kind
        self.workdir = workdir
        self.extra = list(extra)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *more: str, wait: bool = True) -> Proc:
        argv = (ambry_argv if self.kind == "ambry" else redis_argv)(self.port) + self.extra + list(more)
        argv += ["--logfile", "server.log"]
        self.proc = subprocess.Popen(argv, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        if wait:
            self.client = _wait_client(self.port, self.proc)
        return self

    def log(self) -> str:
        try:
            return (self.workdir / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    made: list[Proc] = []

    def make(kind: str, *extra: str, workdir: Path | None = None) -> Proc:
        if kind == "redis" and not have_redis():
            pytest.skip("redis-server is not installed")
        p = Proc(kind, workdir or tmp_path, "--enable-debug-command", "yes", *extra)
        made.append(p)
        return p

    yield make
    for p in made:
        p.kill()


def test_clients_get_loading_during_a_long_load(procs: Callable[..., Proc]) -> None:
    a = procs("ambry", "--appendonly", "yes")
    a.start()
    for i in range(30):
        a.client.set(f"k{i}", i)
    a.stop()
    a.start("--key-load-delay", "100000", wait=False)  # 0.1 s per command
    assert a.proc is not None
    deadline = time.monotonic() + 60
    seen_loading = False
    reply = b""
    while time.monotonic() < deadline:
        try:
            conn = RespConn("127.0.0.1", a.port)
        except OSError:
            assert a.proc.poll() is None
            time.sleep(0.02)
            continue
        try:
            reply = conn.command(b"DBSIZE")
            if reply.startswith(b"-LOADING"):
                seen_loading = True
                assert b"loading:1\r\n" in conn.command(b"INFO", b"persistence")
            else:
                break
        finally:
            conn.close()
        time.sleep(0.05)
    assert seen_loading
    assert reply == b":30\r\n"
    assert "DB loaded from append only file" in a.log()


@need_redis
@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_real_redis_loads_ambrys_aof_directory_to_the_same_digest(procs: Callable[..., Proc], preamble: str) -> None:
    a = procs("ambry", "--appendonly", "yes", "--aof-use-rdb-preamble", preamble)
    a.start()
    r = a.client
    r.execute_command("DEBUG", "POPULATE", "500")
    r.rpush("list", *range(200))
    r.sadd("intset", 1, 2, 3)
    r.sadd("set", *[f"m{i}" for i in range(100)])
    r.hset("hash", mapping={f"f{i}": i for i in range(100)})
    r.set("ttl", "v", px=100_000_000)
    r.xadd("stream", {"f": "v"}, id="1-1")
    r.xgroup_create("stream", "g", id="0")
    r.xreadgroup("g", "c1", {"stream": ">"})
    r.execute_command("BGREWRITEAOF")
    r.incrbyfloat("during", 1.5)
    deadline = time.monotonic() + 30
    while r.info("persistence")["aof_rewrite_in_progress"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    redis_py.Redis(port=a.port, db=3).set("in3", "x")
    r.spop("set")
    digest = r.execute_command("DEBUG", "DIGEST")
    a.stop()
    real = procs("redis", "--appendonly", "yes", workdir=a.workdir)
    real.start()
    assert real.client.execute_command("DEBUG", "DIGEST") == digest
    # and back: what redis appended, Ambry loads
    real.client.set("from-redis", "1")
    real.client.execute_command("BGREWRITEAOF")
    real.client.set("during-redis-rewrite", "1")
    deadline = time.monotonic() + 30
    while real.client.info("persistence")["aof_rewrite_in_progress"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    real.client.set("after-redis-rewrite", "1")
    digest = real.client.execute_command("DEBUG", "DIGEST")
    real.stop()
    a.start()
    assert a.client.execute_command("DEBUG", "DIGEST") == digest


@need_redis
@need_fixtures
@pytest.mark.parametrize("extra", [[], ["--aof-load-truncated", "no"]])
def test_startup_with_the_truncated_fixture_matches_real_redis(procs: Callable[..., Proc], tmp_path: Path,
                                                               extra: list[str]) -> None:
    results = {}
    for kind in ("redis", "ambry"):
        d = tmp_path / kind
        d.mkdir()
        copy_fixture("truncated", d)
        p = procs(kind, "--appendonly", "yes", *extra, workdir=d)
        p.start(wait=False)
        assert p.proc is not None
        try:
            p.client = _wait_client(p.port, p.proc)
            results[kind] = ("up", sorted(p.client.keys()), os.path.getsize(d / "appendonlydir/appendonly.aof.1.incr.aof"))
        except RuntimeError:
            results[kind] = ("exit", p.proc.returncode, os.path.getsize(d / "appendonlydir/appendonly.aof.1.incr.aof"))
        p.kill()
    assert results["ambry"] == results["redis"]


@need_redis
@pytest.mark.parametrize("manifest,log", [
    (b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n# note\n", None),
    (b"file appendonly.aof.1.base.rdb seq 1 type b\ngarbage line\n", "Invalid AOF manifest file format"),
    (b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.base.rdb seq 2 type b\n",
     "Found duplicate base file information"),
    (b"file appendonly.aof.1.incr.aof seq 2 type i\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
     "Found a non-monotonic sequence number"),
    (b"file appendonly.aof.1.base.rdb seq 1 type z\n", "Unknown AOF file type"),
    (b"file dir/appendonly.aof.1.base.rdb seq 1 type b\n", "File can't be a path, just a filename"),
    (b"file appendonly.aof.1.base.rdb seq 1 type b", "The AOF manifest file contains too long line"),
    (b"", "Found an empty AOF manifest"),
])
def test_manifest_verdicts_match_real_redis(procs: Callable[..., Proc], tmp_path: Path, manifest: bytes,
                                            log: str | None) -> None:
    outcome = {}
    for kind in ("redis", "ambry"):
        d = tmp_path / kind
        (d / "appendonlydir").mkdir(parents=True)
        (d / "appendonlydir" / "appendonly.aof.1.base.rdb").write_bytes(
            (FIXTURES / "truncated" / "appendonlydir" / "appendonly.aof.1.base.rdb").read_bytes()
            if FIXTURES.exists() else b"")
        (d / "appendonlydir" / "appendonly.aof.1.incr.aof").write_bytes(b"")
        (d / "appendonlydir" / "appendonly.aof.manifest").write_bytes(manifest)
        p = procs(kind, "--appendonly", "yes", workdir=d)
        p.start(wait=False)
        assert p.proc is not None
        try:
            _wait_client(p.port, p.proc)
            outcome[kind] = "up"
        except RuntimeError:
            outcome[kind] = "exit"
            if log is not None:
                assert log in p.log(), (kind, p.log())
        p.kill()
    assert outcome["ambry"] == outcome["redis"] == ("up" if log is None else "exit")


def _aof_on_dev_full(d: Path) -> None:
    """An AOF directory whose incr file is /dev/full: every write fails with ENOSPC."""
    (d / "appendonlydir").mkdir()
    (d / "appendonlydir" / "appendonly.aof.manifest").write_bytes(
        b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n")
    (d / "appendonlydir" / "appendonly.aof.1.base.rdb").write_bytes(b"")
    os.symlink("/dev/full", d / "appendonlydir" / "appendonly.aof.1.incr.aof")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failing_write_with_appendfsync_always_exits_before_replying(procs: Callable[..., Proc],
                                                                      tmp_path: Path) -> None:
    _aof_on_dev_full(tmp_path)
    a = procs("ambry", "--appendonly", "yes", "--appendfsync", "always")
    a.start()
    with pytest.raises(redis_py.ConnectionError):
        a.client.set("k", "v")  # no reply: the process exits instead of acknowledging
    assert a.proc is not None and a.proc.wait(10) == 1
    assert ("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting..." in a.log())


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failing_write_with_everysec_refuses_writes_with_misconf(procs: Callable[..., Proc],
                                                                  tmp_path: Path) -> None:
    _aof_on_dev_full(tmp_path)
    a = procs("ambry", "--appendonly", "yes", "--appendfsync", "everysec")
    a.start()
    a.client.set("k", "v")  # acknowledged: the write failed after the command ran
    deadline = time.monotonic() + 10
    while True:
        try:
            a.client.set("k2", "v")
        except redis_py.ResponseError as e:
            assert str(e) == "MISCONF Errors writing to the AOF file: No space left on device"
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert a.client.get("k") == b"v"  # reads still work
    info = a.client.info("persistence")
    assert info["aof_last_write_status"] == "err" and info["aof_buffer_length"] > 0
    assert "Error writing to the AOF file: No space left on device" in a.log()


def _aof_dir_after(procs: Callable[..., Proc], d: Path, script: list[tuple[Any, ...]],
                   run: Callable[[RespConn, tuple[Any, ...], Path], None] | None = None) -> Path:
    """The appendonlydir a server of kind ``d.name`` (AOF on, fsync always)
    leaves in ``d`` after ``script`` (each command sent by ``run``)."""
    d.mkdir()
    p = procs(d.name, "--appendonly", "yes", "--appendfsync", "always", workdir=d)
    p.start()
    c = RespConn("127.0.0.1", p.port)
    for argv in script:
        if run is None:
            c.command(*argv)
        else:
            run(c, argv, d)
    c.close()
    p.stop()
    return d / "appendonlydir"


@need_redis
def test_incr_files_and_manifests_match_real_redis_byte_for_byte(procs: Callable[..., Proc], tmp_path: Path) -> None:
    """The same deterministic commands on redis-server 7.0.15 and on Ambry
    (appendfsync always, a rewrite in the middle): the same file names, the
    same manifest and the same incr files, byte for byte."""
    script: list[tuple[Any, ...]] = [
        ("SET", "a", "1"), ("set", "b", "2"), ("INCRBYFLOAT", "f", "1.5"), ("SELECT", 3), ("RPUSH", "l", "x", "y"),
        ("MULTI",), ("SET", "t1", "1"), ("INCR", "t1"), ("EXPIREAT", "t1", "4102444800"), ("EXEC",),
        ("SELECT", 0), ("HSET", "h", "f", "v"), ("HINCRBYFLOAT", "h", "n", "0.25"), ("GETDEL", "b"),
        ("DEL", "nosuchkey"), ("SET", "k", "v", "PXAT", "4102444800123", "NX"), ("LPOP", "nolist"),
        ("BGREWRITEAOF",), ("SELECT", 0), ("SET", "after", "1"), ("SWAPDB", 0, 1), ("SELECT", 1), ("FLUSHDB",),
        ("SET", "z", "9"), ("PUBLISH", "ch", "m"),
    ]
    first_incr = {}

    def run(c: RespConn, argv: tuple[Any, ...], d: Path) -> None:
        if argv[0] == "BGREWRITEAOF":  # the file retired by the rewrite
            first_incr[d.name] = (d / "appendonlydir" / "appendonly.aof.1.incr.aof").read_bytes()
        c.command(*argv)
        if argv[0] == "BGREWRITEAOF":
            deadline = time.monotonic() + 30
            while b"aof_rewrite_in_progress:0" not in c.command("INFO", "persistence"):
                assert time.monotonic() < deadline
                time.sleep(0.05)

    dirs = {kind: _aof_dir_after(procs, tmp_path / kind, script, run) for kind in ("redis", "ambry")}
    assert first_incr["ambry"] == first_incr["redis"]
    assert sorted(os.listdir(dirs["ambry"])) == sorted(os.listdir(dirs["redis"]))
    assert manifest_text(dirs["ambry"]) == manifest_text(dirs["redis"])
    for name in os.listdir(dirs["redis"]):
        if ".incr." in name:
            assert (dirs["ambry"] / name).read_bytes() == (dirs["redis"] / name).read_bytes(), name


@need_redis
def test_commands_served_on_the_fast_path_log_their_own_rewrites_as_redis(procs: Callable[..., Proc],
                                                                           tmp_path: Path) -> None:
    """Replies and effects of plain clients' commands come from the server's
    inlined execution path: the effects a handler derives from the request
    itself (SET ... GET drops GET) reach the incr file as redis-server's."""
    script: list[tuple[Any, ...]] = [
        ("SET", "a", "1"), ("SET", "a", "2", "GET"), ("set", "b", "3", "get"), ("SET", "c", "4", "XX", "GET"),
        ("SET", "a", "5", "KEEPTTL", "GET"), ("SET", "d", "6", "NX", "GET"), ("SET", "d", "7", "NX", "GET"),
        ("GETSET", "a", "8"), ("SET", "e", "9", "PXAT", "4102444800123", "GET"),
    ]
    incr = {kind: (_aof_dir_after(procs, tmp_path / kind, script) / "appendonly.aof.1.incr.aof").read_bytes()
            for kind in ("redis", "ambry")}
    assert b"GET" not in incr["redis"].upper().replace(b"GETSET", b"")
    assert incr["ambry"] == incr["redis"]
