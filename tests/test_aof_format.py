"""The AOF codec (ambry.persistence.aof) against Redis 7.0.15's own files and tools.

Every fixture directory under ``aof/redis-7.0/`` (written by a real
redis-server 7.0.15) is read back: manifests parse and serialize to the same
bytes, command files parse to the commands ``expected.json`` lists and
re-encode to the same bytes, truncated and corrupt files are reported where
``redis-check-aof`` and the server say, and ``check_aof`` reproduces
redis-check-aof's verdicts (ok_up_to, the line counter, its messages).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from ambry.persistence.aof import (
    TYPE_BASE,
    TYPE_HIST,
    TYPE_INCR,
    Annotation,
    AOFFormatError,
    AOFInfo,
    AOFParser,
    AOFTruncatedError,
    AOFWriter,
    Command,
    Manifest,
    ManifestError,
    RewriteEmitter,
    base_name,
    check_aof,
    encode_command,
    incr_name,
    is_rdb,
    parse_manifest,
    select_command,
    temp_incr_name,
    temp_manifest_name,
)
from ambry.persistence.rdb import (
    RDBReader,
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamNACK,
)


def shared_fixtures() -> Path:
    env = os.environ.get("AMBRY_SHARED_FIXTURES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


FIXTURES = shared_fixtures() / "aof" / "redis-7.0"
pytestmark = pytest.mark.skipif(not FIXTURES.exists(), reason=f"shared fixtures not found at {FIXTURES}")

DIRS = sorted(p.name for p in FIXTURES.iterdir() if (p / "appendonlydir").is_dir()) if FIXTURES.exists() else []
DAMAGED = ["truncated", "truncated-in-multi", "truncated-in-multi-mid-command", "corrupt-middle"]


def _b(v: Any) -> bytes:
    """The fixtures' binary-safe JSON: str is UTF-8, else {"base64": ...}."""
    if isinstance(v, dict):
        return base64.b64decode(v["base64"])
    return str(v).encode()


def _expected(name: str) -> dict[str, Any]:
    with open(FIXTURES / name / "expected.json") as f:
        return json.load(f)  # type: ignore[no-any-return]


def _dir(name: str) -> Path:
    return FIXTURES / name / "appendonlydir"


def _rdb_end(data: bytes) -> int:
    """Where the RESP part of a file starts (after an RDB preamble)."""
    if not is_rdb(data):
        return 0
    r = RDBReader()
    list(r.feed(data))
    list(r.close())
    assert r.end_offset is not None
    return r.end_offset


def _parse_all(data: bytes, start: int = 0, chunk: int | None = None) -> list[Any]:
    p = AOFParser(base_offset=start)
    body = data[start:]
    out: list[Any] = []
    step = chunk or max(1, len(body))
    for i in range(0, len(body), step):
        out.extend(p.feed(body[i : i + step]))
    p.close()
    return out


def _as_json_commands(events: list[Any]) -> list[Any]:
    """Events in expected.json's form: argv lists, {"annotation": text}."""
    out: list[Any] = []
    for ev in events:
        if type(ev) is Annotation:
            out.append({"annotation": ev.text.decode()})
        else:
            out.append(ev.argv)
    return out


def _json_commands(cmds: list[Any]) -> list[Any]:
    return [c if isinstance(c, dict) and "annotation" in c else [_b(a) for a in c] for c in cmds]


# -- manifest ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DIRS)
def test_fixture_manifest_parses_and_serializes_to_the_same_bytes(name: str) -> None:
    data = (_dir(name) / "appendonly.aof.manifest").read_bytes()
    am = parse_manifest(data)
    assert am.to_bytes() == data
    want = _expected(name)["manifest"]
    got = ([am.base] if am.base else []) + am.history + am.incr
    assert [(i.name, i.seq, i.type) for i in got] == [(m["file"], m["seq"], m["type"]) for m in want]
    assert am.files() == [i for i in got if i.type != TYPE_HIST]


def test_file_names_follow_redis_naming() -> None:
    assert base_name("appendonly.aof", 3, True) == "appendonly.aof.3.base.rdb"
    assert base_name("appendonly.aof", 3, False) == "appendonly.aof.3.base.aof"
    assert incr_name("my.aof", 12) == "my.aof.12.incr.aof"
    assert temp_manifest_name("appendonly.aof") == "temp-appendonly.aof.manifest"
    assert temp_incr_name("appendonly.aof") == "temp-appendonly.aof.incr"


def test_manifest_writer_order_is_base_history_incr() -> None:
    am = Manifest(
        base=AOFInfo("a.2.base.rdb", 2, TYPE_BASE),
        incr=[AOFInfo("a.4.incr.aof", 4, TYPE_INCR), AOFInfo("a.5.incr.aof", 5, TYPE_INCR)],
        history=[AOFInfo("a.1.incr.aof", 1, TYPE_HIST)],
    )
    assert am.to_bytes() == (
        b"file a.2.base.rdb seq 2 type b\n"
        b"file a.1.incr.aof seq 1 type h\n"
        b"file a.4.incr.aof seq 4 type i\n"
        b"file a.5.incr.aof seq 5 type i\n"
    )


def test_manifest_names_needing_quotes_are_written_with_sdscatrepr_and_read_back() -> None:
    for name in ["with space.aof", 'q"uote', "tab\there", "nl\nx", "caf\u00e9", "\x01ctl"]:
        am = Manifest(base=AOFInfo(name, 1, TYPE_BASE))
        line = am.to_bytes()
        assert line.startswith(b'file "'), line
        assert parse_manifest(line).base == AOFInfo(name, 1, TYPE_BASE)
    assert Manifest(base=AOFInfo("x y", 1, "b")).to_bytes() == b'file "x y" seq 1 type b\n'
    assert Manifest(base=AOFInfo("caf\u00e9", 1, "b")).to_bytes() == b'file "caf\\xc3\\xa9" seq 1 type b\n'


def test_manifest_accepts_comments_unknown_keys_any_key_case_and_single_quotes() -> None:
    data = (
        b"# a comment\n"
        b"FILE a.1.base.rdb SEQ 1 TYPE b extra value\n"
        b"  file 'a.1.incr.aof' seq 1 type incr  \r\n"
    )
    am = parse_manifest(data)
    assert am.base == AOFInfo("a.1.base.rdb", 1, "b")
    assert am.incr == [AOFInfo("a.1.incr.aof", 1, "i")]  # only the type's first character counts
    assert (am.curr_base_seq, am.curr_incr_seq) == (1, 1)


@pytest.mark.parametrize("data,message,line_number,line", [
    (b"", "Found an empty AOF manifest", 0, None),
    (b"file a seq 1 type b\n\n", "Invalid AOF manifest file format", 2, ""),
    (b"file a seq 1 type b\ngarbage line\n", "Invalid AOF manifest file format", 2, "garbage line"),
    (b"file a seq 1 type b", "The AOF manifest file contains too long line", 1, None),  # no newline at the end
    (b"file " + b"x" * 1100 + b" seq 1 type b\n", "The AOF manifest file contains too long line", 1, None),
    (b"file a seq 1 type\n", "Invalid AOF manifest file format", 1, "file a seq 1 type"),
    (b"file a seq 0 type b\n", "Invalid AOF manifest file format", 1, "file a seq 0 type b"),
    (b"file a seq x type b\n", "Invalid AOF manifest file format", 1, "file a seq x type b"),
    (b"name a seq 1 type b\n", "Invalid AOF manifest file format", 1, "name a seq 1 type b"),
    (b'file "a seq 1 type b\n', "Invalid AOF manifest file format", 1, 'file "a seq 1 type b'),
    (b"file d/a seq 1 type b\n", "File can't be a path, just a filename", 1, "file d/a seq 1 type b"),
    (b'file "d\\\\a" seq 1 type b\n', "File can't be a path, just a filename", 1, 'file "d\\\\a" seq 1 type b'),
    (b"file a seq 1 type b\nfile b seq 2 type b\n", "Found duplicate base file information", 2,
     "file b seq 2 type b"),
    (b"file a seq 2 type i\nfile b seq 2 type i\n", "Found a non-monotonic sequence number", 2,
     "file b seq 2 type i"),
    (b"file a seq 1 type x\n", "Unknown AOF file type", 1, "file a seq 1 type x"),
])
def test_manifest_grammar_errors_carry_redis_messages(data: bytes, message: str, line_number: int,
                                                      line: str | None) -> None:
    with pytest.raises(ManifestError) as ei:
        parse_manifest(data)
    e = ei.value
    assert (e.message, e.line_number, e.line) == (message, line_number, line)
    logged = e.log_lines()
    assert logged[0] == "\n*** FATAL AOF MANIFEST FILE ERROR ***\n"
    assert logged[-1] == message + "\n"
    if line is not None:
        assert logged[1:3] == [f"Reading the manifest file, at line {line_number}\n", f">>> '{line}'\n"]


def test_a_1023_byte_line_fits_the_fgets_buffer_and_1024_does_not() -> None:
    head = b"file a seq 1 type b "
    ok = head + b"k" * (1024 - len(head) - 4) + b" v \n"
    assert len(ok) == 1024
    parse_manifest(ok)
    with pytest.raises(ManifestError, match="too long"):
        parse_manifest(ok[:-1] + b"x\n")


def test_manifest_operations_number_and_retire_files_as_redis() -> None:
    am = Manifest()
    assert am.last_incr("appendonly.aof") == "appendonly.aof.1.incr.aof"  # created when none exists
    assert am.new_base("appendonly.aof", True) == "appendonly.aof.1.base.rdb"
    am.dirty = False
    # a rewrite: a new incr first, then the new base, then the old files become history
    assert am.new_incr("appendonly.aof") == "appendonly.aof.2.incr.aof"
    assert am.new_base("appendonly.aof", False) == "appendonly.aof.2.base.aof"
    am.mark_rewritten_incr_as_history(keep_last=True)
    assert am.dirty
    assert am.to_bytes() == (
        b"file appendonly.aof.2.base.aof seq 2 type b\n"
        b"file appendonly.aof.1.incr.aof seq 1 type h\n"
        b"file appendonly.aof.1.base.rdb seq 1 type h\n"
        b"file appendonly.aof.2.incr.aof seq 2 type i\n"
    )
    copy = am.copy()
    copy.mark_rewritten_incr_as_history(keep_last=False)  # AOF off: every incr file is retired
    assert copy.incr == [] and len(am.incr) == 1
    assert parse_manifest(am.to_bytes()).to_bytes() == am.to_bytes()


# -- the command stream ------------------------------------------------------------------------


def _fixture_files() -> list[tuple[str, str, dict[str, Any]]]:
    """Every intact command file of the fixtures (the damaged incr files
    have tests of their own below)."""
    out = []
    for name in DIRS:
        exp = _expected(name)
        for f in exp["files"]:
            if name in DAMAGED and f["file"] == exp["incr_file"]:
                continue
            if "commands" in f or "resp_tail_commands" in f:
                out.append((name, f["file"], f))
    return out


@pytest.mark.parametrize("name,fname,info", _fixture_files(), ids=lambda x: x if isinstance(x, str) else "")
def test_fixture_files_parse_to_the_listed_commands_and_reencode_byte_for_byte(
        name: str, fname: str, info: dict[str, Any]) -> None:
    data = (_dir(name) / fname).read_bytes()
    start = _rdb_end(data)
    if "rdb_end_offset" in info:
        assert start == info["rdb_end_offset"]
    want = _json_commands(info.get("commands") or info.get("resp_tail_commands") or [])
    events = _parse_all(data, start)
    assert _as_json_commands(events) == want
    # Redis's framing, byte for byte: each command re-encoded, annotations kept.
    rebuilt = b"".join(
        ev.text + b"\r\n" if type(ev) is Annotation else encode_command(ev.argv) for ev in events)
    assert rebuilt == data[start:]
    # offsets tile the file
    pos = start
    for ev in events:
        assert ev.offset == pos
        pos = ev.end
    assert pos == len(data)


def test_an_old_style_aof_is_an_rdb_preamble_followed_by_a_resp_tail() -> None:
    data = (_dir("legacy-upgrade") / "appendonly.aof").read_bytes()
    assert is_rdb(data)
    r = RDBReader()
    list(r.feed(data))
    assert r.done and r.end_offset == _expected("legacy-upgrade")["files"][0]["rdb_end_offset"]
    tail = r.unused_data  # what follows the RDB's checksum
    assert tail == data[r.end_offset :]
    p = AOFParser(base_offset=r.end_offset)
    events = list(p.feed(tail))
    p.close()
    assert [ev.argv for ev in events] == [[b"SELECT", b"0"], [b"set", b"k3", b"v3"]]
    assert events[0].offset == r.end_offset and events[-1].end == len(data)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1000])
def test_parsing_does_not_depend_on_how_the_input_is_chunked(chunk: int) -> None:
    data = (_dir("preamble-yes") / "appendonly.aof.2.incr.aof").read_bytes()
    assert _parse_all(data, chunk=chunk) == _parse_all(data)


def test_truncated_fixture_stops_at_the_last_complete_command() -> None:
    exp = _expected("truncated")
    data = (_dir("truncated") / exp["incr_file"]).read_bytes()
    p = AOFParser()
    events = list(p.feed(data))
    with pytest.raises(AOFTruncatedError) as ei:
        p.close()
    assert ei.value.valid_up_to == p.offset == 190  # where redis-server truncates ("at offset 190")
    assert "Expected to read 7 bytes, got 5 bytes" in ei.value.message  # redis-check-aof's words
    assert _as_json_commands(events) == _json_commands(exp["check_aof_fix"]["incr_after"]["commands"])


def test_truncated_in_multi_fixtures_parse_up_to_the_cut() -> None:
    # The parser reports complete commands; cutting before an open MULTI is
    # the loader's business (tests/test_aof_server.py).
    data = (_dir("truncated-in-multi") / "appendonly.aof.1.incr.aof").read_bytes()
    events = _parse_all(data)
    assert [ev.argv[0] for ev in events] == [b"SELECT", b"SET", b"RPUSH", b"MULTI", b"SET"]
    data = (_dir("truncated-in-multi-mid-command") / "appendonly.aof.1.incr.aof").read_bytes()
    p = AOFParser()
    events = list(p.feed(data))
    with pytest.raises(AOFTruncatedError) as ei:
        p.close()
    assert [ev.argv[0] for ev in events] == [b"SELECT", b"SET", b"RPUSH", b"MULTI", b"SET"]
    assert ei.value.valid_up_to == 128  # mid-command: the end of SET b 2, inside the MULTI


def test_corrupt_middle_is_a_format_error_after_the_good_commands() -> None:
    data = (_dir("corrupt-middle") / "appendonly.aof.1.incr.aof").read_bytes()
    p = AOFParser()
    got: list[Any] = []
    with pytest.raises(AOFFormatError) as ei:
        for ev in p.feed(data):
            got.append(ev)
    assert data[ei.value.offset : ei.value.offset + 7] == b"GARBAGE"
    assert [ev.argv[0] for ev in got] == [b"SELECT", b"SET", b"RPUSH", b"MULTI"]
    with pytest.raises(AOFFormatError):  # the parser stays failed
        p.feed(b"*1\r\n$4\r\nPING\r\n")


@pytest.mark.parametrize("data,why", [
    (b"GARBAGE\r\n", "not * or #"),
    (b"*0\r\n", "count < 1"),
    (b"*-1\r\n", "count < 1"),
    (b"*x\r\n", "count < 1 (atoi)"),
    (b"*1\r\n+OK\r\n", "argument header not $"),
    (b"*1\r\n$-2\r\n", "negative length"),
    (b"*1\r\n$3\r\nabc\r\n\r\n", "a blank line after a command"),
    (b"*1" + b"1" * 2000 + b"\r\n", "header longer than the loader's line buffer"),
])
def test_format_errors_are_never_truncation(data: bytes, why: str) -> None:
    p = AOFParser()
    with pytest.raises(AOFFormatError):
        list(p.feed(data))
        p.close()


def test_crlf_after_arguments_is_skipped_like_the_server_or_checked_like_redis_check_aof() -> None:
    data = b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n"
    assert [ev.argv for ev in _parse_all(data)] == [[b"PING"], [b"PING"]]
    with pytest.raises(AOFFormatError):
        list(AOFParser(check_crlf=True).feed(data))


def test_binary_arguments_and_empty_arguments_round_trip() -> None:
    argv = [b"SET", b"k\r\n\x00\xff", b"", b"*2\r\n$1\r\n"]
    data = encode_command(argv)
    assert data == b"*4\r\n$3\r\nSET\r\n$5\r\nk\r\n\x00\xff\r\n$0\r\n\r\n$8\r\n*2\r\n$1\r\n\r\n"
    assert [ev.argv for ev in _parse_all(data)] == [argv]


def test_a_cut_at_every_byte_yields_a_prefix_of_the_commands_and_never_wrong_data() -> None:
    data = (_dir("timestamps") / "appendonly.aof.1.incr.aof").read_bytes()
    full = _parse_all(data)
    ends = {0} | {ev.end for ev in full}
    for cut in range(len(data) + 1):
        p = AOFParser()
        events = list(p.feed(data[:cut]))
        assert events == full[: len(events)]
        if cut in ends:
            p.close()
            assert p.offset == cut
        else:
            with pytest.raises(AOFTruncatedError) as ei:
                p.close()
            # the cut point a loader truncates to: the end of the last complete record
            assert ei.value.valid_up_to == max(e for e in ends if e <= cut)


def test_a_half_written_annotation_is_truncation_not_a_line() -> None:
    # Redis 7.0's loader would skip "#TS:17" as a line and then glue the next
    # write onto it; a cut annotation is a truncated record here.
    p = AOFParser()
    list(p.feed(b"*1\r\n$4\r\nPING\r\n#TS:17"))
    with pytest.raises(AOFTruncatedError) as ei:
        p.close()
    assert ei.value.valid_up_to == 14


# -- redis-check-aof ----------------------------------------------------------------------------


def _analyzed(lines: list[str], fname: str) -> tuple[int, int, int]:
    for line in lines:
        if line.startswith(f"AOF analyzed: filename={fname},"):
            fields = dict(kv.split("=") for kv in line.split(": ", 1)[1].split(", "))
            return int(fields["ok_up_to"]), int(fields["ok_up_to_line"]), int(fields["diff"])
    raise AssertionError(f"no analysis line for {fname}")


@pytest.mark.parametrize("name", DAMAGED)
def test_check_aof_reproduces_redis_check_aof(name: str) -> None:
    exp = _expected(name)
    out = exp["check_aof"]["output"]
    line = 1
    for info in parse_manifest((_dir(name) / "appendonly.aof.manifest").read_bytes()).files():
        data = (_dir(name) / info.name).read_bytes()
        res = check_aof(data, start=_rdb_end(data), line=line)
        assert (res.ok_up_to, res.line, res.diff) == _analyzed(out, info.name)
        line = res.line
        if info.name == exp["incr_file"]:
            assert not res.valid
            if res.format_error:
                assert f"AOF {info.name} format error" in out
            else:
                assert res.error in out
            assert res.ok_up_to == exp["check_aof_fix"]["incr_size_after"]


def test_check_aof_truncate_to_timestamp_stops_at_the_first_newer_annotation() -> None:
    exp = _expected("timestamps")["truncate_to_timestamp"]
    data = (_dir("timestamps") / "appendonly.aof.1.incr.aof").read_bytes()
    res = check_aof(data, to_timestamp=exp["timestamp"])
    want = [f for f in exp["files_after"] if f["file"] == "appendonly.aof.1.incr.aof"][0]
    assert res.truncate_at == want["size"]
    assert _as_json_commands(_parse_all(data[: res.truncate_at])) == _json_commands(want["commands"])


# -- writing ------------------------------------------------------------------------------------


def test_writer_selects_the_db_only_when_it_changes_and_never_for_db_minus_one() -> None:
    w = AOFWriter()
    out = w.command(0, [b"SET", b"a", b"1"])
    out += w.command(0, [b"SET", b"b", b"2"])
    out += w.command(-1, [b"PING"])
    out += w.command(3, [b"DEL", b"c"])
    assert out == (select_command(0) + encode_command([b"SET", b"a", b"1"]) + encode_command([b"SET", b"b", b"2"])
                   + encode_command([b"PING"]) + select_command(3) + encode_command([b"DEL", b"c"]))
    assert select_command(12) == b"*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n"
    w.reset_db()
    assert w.command(3, [b"X"]).startswith(select_command(3))


def test_writer_reproduces_the_timestamps_fixture_byte_for_byte() -> None:
    data = (_dir("timestamps") / "appendonly.aof.1.incr.aof").read_bytes()
    w = AOFWriter(timestamps=True)
    out = b""
    now = db = 0
    for ev in _parse_all(data):
        if type(ev) is Annotation:
            now = int(ev.text[4:])
        elif ev.argv[0] == b"SELECT":
            db = int(ev.argv[1])  # the writer emits the SELECT itself
        else:
            out += w.command(db, ev.argv, now)
    assert out == data
    # within the same second no second annotation is written
    assert not w.command(0, [b"PING"], now).startswith(b"#")


def test_rewrite_emitter_batches_64_items_and_formats_scores_with_17_digits() -> None:
    em = RewriteEmitter
    cmds = _parse_all(em.list_value(b"l", [b"%d" % i for i in range(130)]))
    assert [len(c.argv) - 2 for c in cmds] == [64, 64, 2]
    assert all(c.argv[:2] == [b"RPUSH", b"l"] for c in cmds)
    cmds = _parse_all(em.zset_value(b"z", [(b"m%d" % i, i / 10) for i in range(65)]))
    assert [len(c.argv) for c in cmds] == [2 + 128, 2 + 2]
    assert cmds[0].argv[2:6] == [b"0", b"m0", b"0.10000000000000001", b"m1"]
    assert _parse_all(em.zset_value(b"z", [(b"a", float("inf")), (b"b", float("-inf"))]))[0].argv[2:] == [
        b"inf", b"a", b"-inf", b"b"]
    cmds = _parse_all(em.hash_value(b"h", [(b"f%d" % i, b"v") for i in range(64)]))
    assert [c.argv[0] for c in cmds] == [b"HMSET"] and len(cmds[0].argv) == 130
    assert _parse_all(em.set_value(b"s", [b"a"]))[0].argv == [b"SADD", b"s", b"a"]
    assert _parse_all(em.expire(b"k", 4102444800123))[0].argv == [b"PEXPIREAT", b"k", b"4102444800123"]
    assert _parse_all(em.select(5))[0].argv == [b"SELECT", b"5"]


def test_rewrite_emitter_rebuilds_a_stream_with_groups_consumers_and_pending_entries() -> None:
    s = Stream(
        entries=[StreamEntry(StreamID(1, 1), [(b"f", b"v")]), StreamEntry(StreamID(2, 0), [(b"a", b"1"), (b"b", b"2")])],
        length=2, last_id=StreamID(5, 0), max_deleted_id=StreamID(3, 0), entries_added=4,
        groups=[StreamGroup(b"g2", StreamID(0, 0), -1),
                StreamGroup(b"g1", StreamID(2, 0), 2, pel=[StreamNACK(StreamID(1, 1), 1000, 3)],
                            consumers=[StreamConsumer(b"c2", 0, 0), StreamConsumer(b"c1", 0, 0, [StreamID(1, 1)])])],
    )
    got = [c.argv for c in _parse_all(RewriteEmitter.stream_value(b"x", s))]
    assert got == [
        [b"XADD", b"x", b"1-1", b"f", b"v"],
        [b"XADD", b"x", b"2-0", b"a", b"1", b"b", b"2"],
        [b"XSETID", b"x", b"5-0", b"ENTRIESADDED", b"4", b"MAXDELETEDID", b"3-0"],
        [b"XGROUP", b"CREATE", b"x", b"g1", b"2-0", b"ENTRIESREAD", b"2"],
        [b"XCLAIM", b"x", b"g1", b"c1", b"0", b"1-1", b"TIME", b"1000", b"RETRYCOUNT", b"3", b"JUSTID", b"FORCE"],
        [b"XGROUP", b"CREATECONSUMER", b"x", b"g1", b"c2"],
        [b"XGROUP", b"CREATE", b"x", b"g2", b"0-0", b"ENTRIESREAD", b"-1"],
    ]
    empty = [c.argv for c in _parse_all(RewriteEmitter.stream_value(b"e", Stream()))]
    assert empty[0] == [b"XADD", b"e", b"MAXLEN", b"0", b"0-1", b"x", b"y"]


def test_fixture_resp_base_uses_the_rewrite_command_forms() -> None:
    """The RESP-form base Redis wrote (preamble-no) uses exactly the command
    shapes the emitter produces."""
    data = (_dir("preamble-no") / "appendonly.aof.2.base.aof").read_bytes()
    events = _parse_all(data)
    assert all(type(ev) is Command for ev in events)
    names = {ev.argv[0] for ev in events}
    assert names <= {b"FUNCTION", b"SELECT", b"SET", b"RPUSH", b"SADD", b"ZADD", b"HMSET", b"XADD", b"XSETID",
                     b"XGROUP", b"XCLAIM", b"PEXPIREAT"}
    for ev in events:
        if ev.argv[0] in (b"RPUSH", b"SADD"):
            assert len(ev.argv) - 2 <= 64
        elif ev.argv[0] in (b"ZADD", b"HMSET"):
            assert len(ev.argv) - 2 <= 128
        elif ev.argv[0] == b"XCLAIM":
            assert (ev.argv[6], ev.argv[8], ev.argv[10:]) == (b"TIME", b"RETRYCOUNT", [b"JUSTID", b"FORCE"])
