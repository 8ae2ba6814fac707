"""The streaming RDB reader (ambry.persistence.rdb): every shared fixture
against what Redis 7.0 holds after loading it, every encoding, streaming in
arbitrary chunks, and corrupt/truncated input always giving an RDBError with
the offset and key -- never another exception, never a hang."""

from __future__ import annotations

import io
import random
import struct
import time
from collections import Counter
from pathlib import Path

import pytest
from ambry.persistence.rdb import (
    Aux,
    End,
    FunctionLibrary,
    Header,
    Key,
    KeyBatch,
    ModuleAux,
    ModuleLoadIO,
    ModuleRegistry,
    ModuleType,
    RDBChecksumError,
    RDBCorruptError,
    RDBError,
    RDBModuleError,
    RDBReader,
    RDBSignatureError,
    RDBTruncatedError,
    RDBVersionError,
    RDBWriter,
    ResizeDB,
    SelectDB,
    SlotImport,
    SlotInfo,
    Stream,
    StreamID,
    iter_events,
    load_dump_payload,
    module_id,
    module_name,
    read_bytes,
    read_file,
)
from ambry.persistence.rdb.constants import OPCODE_NAMES, TYPE_NAMES
from ambry.persistence.rdb.containers import intset_decode, lp_decode, lp_encode, ziplist_decode
from ambry.persistence.rdb.encoding import crc64, enc_len, enc_str
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rdb_support import (
    FIXTURES,
    fixture_files,
    jb,
    json_stream,
    json_value,
    load_json,
    needs_fixtures,
    norm_value,
    redis70_loaded,
    stream_for_json,
)

REDIS70 = fixture_files("redis-7.0/*.rdb")
LEGACY = fixture_files("*/*.loaded-by-redis-7.0.json")


def keys_of(events: list) -> list[Key]:
    return [e for e in events if isinstance(e, Key)]


def with_crc(body: bytes) -> bytes:
    """A file body ending in EOF, with its CRC-64 trailer."""
    return body + struct.pack("<Q", crc64(body))


def chunked(data: bytes, sizes: list[int]) -> list:
    """Feed ``data`` to a fresh reader in chunks of the given sizes (cycled)."""
    r = RDBReader()
    out: list = []
    i = 0
    k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.extend(r.feed(data[i:i + n]))
        i += n
        k += 1
    out.extend(r.close())
    return out


# -- the spec's worked examples -----------------------------------------------------------------

SPEC_FILE = bytes.fromhex(
    "524544495330303130"
    "fa0972656469732d766572" "06372e302e3135"
    "fe00" "fb0201"
    "fc00d8c32cbb03000000" "016b" "0176"
    "00016e" "c1d204"
    "ff" "d3df6dcc0539d3b7"
)


def test_spec_minimal_file_decodes_to_its_two_keys() -> None:
    events = read_bytes(SPEC_FILE)
    assert events[0] == Header(10, 0)
    assert events[1] == Aux(b"redis-ver", b"7.0.15", 9)
    assert events[2] == SelectDB(0, 27)
    assert events[3] == ResizeDB(2, 1, 29)
    k, n = keys_of(events)
    assert (k.key, k.value, k.expire_ms, k.encoding, k.rdb_type) == (b"k", b"v", 4102444800000, "raw", 0)
    assert (n.key, n.value, n.expire_ms, n.encoding) == (b"n", b"1234", None, "int")
    assert k.offset == 0x29 and k.size == 5
    end = events[-1]
    assert isinstance(end, End) and end.checksum == end.computed == 0xB7D33905CC6DDFD3 and end.offset == 0x34


def test_spec_dump_payloads_decode() -> None:
    s = load_dump_payload(bytes.fromhex("000568656c6c6f0a006372df7665342 00a".replace(" ", "")))
    assert (s.type, s.value, s.rdb_version) == ("string", b"hello", 10)
    # Type-21 stream from the spec, 7.2.6 (DUMP footer removed, re-footered for version 11).
    body = bytes.fromhex(
        "1501" "10" "00000000000000010000000000000001" "1d" "1d0000000a00"
        "0101" "0001" "0101" "816602" "0001"
        "0201" "0001" "0001" "817602" "0401" "ff"
        "01" "0101" "0101" "0000" "01" "01" "0167" "0101" "01" "01"
        "00000000000000010000000000000001" "82f1f20aa2010000" "01"
        "01" "0163" "82f1f20aa2010000" "82f1f20aa2010000" "01" "00000000000000010000000000000001"
    )
    payload = body + b"\x0b\x00"
    payload += struct.pack("<Q", crc64(payload))
    v = load_dump_payload(payload)
    s2 = v.value
    assert isinstance(s2, Stream) and v.rdb_type == 21
    assert [(str(e.id), e.fields) for e in s2.entries] == [("1-1", [(b"f", b"v")])]
    g = s2.groups[0]
    assert (g.name, g.last_id, g.entries_read) == (b"g", StreamID(1, 1), 1)
    assert g.pel[0].id == StreamID(1, 1) and g.pel[0].delivery_count == 1
    assert g.consumers[0].name == b"c" and g.consumers[0].pel == [StreamID(1, 1)]


def test_dump_payload_checks_version_and_crc() -> None:
    good = bytes.fromhex("000568656c6c6f0a006372df76653420 0a".replace(" ", ""))
    with pytest.raises(RDBChecksumError):
        load_dump_payload(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(RDBVersionError):
        load_dump_payload(good, max_version=9)
    with pytest.raises(RDBCorruptError):
        load_dump_payload(b"\x00\x05he")
    truncated = b"\x00\x05hel\x0a\x00"
    with pytest.raises(RDBCorruptError):
        load_dump_payload(truncated + struct.pack("<Q", crc64(truncated)))


def test_spec_listpack_and_intset_examples() -> None:
    assert lp_decode(bytes.fromhex("12000000040081660281760281 6e020101".replace(" ", "") + "ff")) == [
        b"f", b"v", b"n", b"1"]
    assert lp_decode(bytes.fromhex("0f000000030081610264 01dffd02ff".replace(" ", ""))) == [b"a", b"100", b"-3"]
    assert lp_encode([b"a", b"100", b"-3"]) == bytes.fromhex("0f0000000300816102640 1dffd02ff".replace(" ", ""))
    assert intset_decode(bytes.fromhex("020000000300000001000200 2c01".replace(" ", ""))) == [b"1", b"2", b"300"]


# -- the Redis 7.0 fixtures: exact contents -------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("path", REDIS70, ids=lambda p: p.name)
def test_redis70_fixture_matches_expected_json(path: Path) -> None:
    exp = load_json(path.with_name(path.stem + ".expected.json"))
    events = list(read_file(str(path)))
    assert isinstance(events[0], Header) and events[0].version == exp["rdb_version"]
    end = events[-1]
    assert isinstance(end, End)
    if path.name == "nochecksum.rdb":
        assert end.checksum == 0
    else:
        assert end.checksum == end.computed != 0

    aux = {e.key.decode(): e.value.decode() for e in events if isinstance(e, Aux)}
    assert set(aux) == set(exp["aux"])
    lo, hi = exp["saved_at_ms"]
    for k, v in exp["aux"].items():
        if k == "ctime":
            assert lo // 1000 <= int(aux[k]) <= hi // 1000 + 1
        elif k in ("used-mem", "repl-offset"):
            assert int(aux[k]) > 0
        elif k == "repl-id":
            assert len(aux[k]) == 40 and int(aux[k], 16) >= 0
        else:
            assert aux[k] == v, k

    libs = {e.name: e for e in events if isinstance(e, FunctionLibrary)}
    assert set(libs) == {f["library_name"] for f in exp["functions"]}
    for f in exp["functions"]:
        lib = libs[f["library_name"]]
        assert lib.code.decode() == f["code"] and (lib.engine or "").upper() == f["engine"]

    sizes: dict[str, dict[str, int]] = {}
    db = 0
    for e in events:
        if isinstance(e, SelectDB):
            db = e.db
        elif isinstance(e, ResizeDB):
            sizes[str(db)] = {"keys": e.db_size, "expires": e.expires_size}
    assert sizes == exp["db_sizes"]

    got = {(k.db, k.key): k for k in keys_of(events)}
    assert sorted(got) == [(x["db"], jb(x["key"])) for x in exp["keys"]]
    for x in exp["keys"]:
        k = got[(x["db"], jb(x["key"]))]
        assert (k.type, k.rdb_type, k.expire_ms) == (x["type"], x["rdb_type"], x["expire_ms"]), k.key
        if x["type"] == "string":
            # RDB integer encodings hold int32 only; larger "int" strings are plain.
            small_int = x["encoding"] == "int" and -(2**31) <= int(k.value) < 2**31  # type: ignore[call-overload]
            assert (k.encoding == "int") == small_int, k.key
        else:
            assert k.encoding == x["encoding"], k.key
        if x["type"] == "stream":
            assert stream_for_json(k.value) == json_stream(x["value"]), k.key  # type: ignore[arg-type]
            assert k.nodes == x["value"]["listpack_nodes"]
        else:
            assert norm_value(k.type, k.value) == json_value(x["type"], x["value"]), k.key
        if "length" in x:
            assert len(k.value) == x["length"]  # type: ignore[arg-type]
        if "quicklist" in x:
            assert k.nodes == x["quicklist"]["nodes"], k.key
        assert k.lfu_freq == x.get("lfu_freq")
        if "lru_idle_s" in x:
            assert k.lru_idle is not None and abs(k.lru_idle - x["lru_idle_s"]) <= 1
        else:
            assert k.lru_idle is None


# -- the legacy fixtures (other producers, RDB 2-12): census and Redis 7.0's view -------------------


def _census_of(path: Path, events: list, reader_end: int | None, unused: int) -> dict:
    """The parts of rdb_census.py's census our events can reproduce."""
    header = events[0]
    keys = keys_of(events)
    opcodes: Counter[str] = Counter()
    for e in events:
        name = {Aux: "AUX", SelectDB: "SELECTDB", ResizeDB: "RESIZEDB", End: "EOF", FunctionLibrary: "FUNCTION2",
                ModuleAux: "MODULE_AUX", SlotInfo: "SLOT_INFO"}.get(type(e))
        if name:
            opcodes[name] += 1
    opcodes["EXPIRETIME_MS" if header.version >= 3 else "EXPIRETIME"] += sum(k.expire_ms is not None for k in keys)
    opcodes["IDLE"] += sum(k.lru_idle is not None for k in keys)
    opcodes["FREQ"] += sum(k.lfu_freq is not None for k in keys)
    end = events[-1]
    streams = [k.value for k in keys if k.type == "stream"]
    stream: Counter[str] = Counter()
    if streams:
        stream["stream_listpacks"] = sum(s.nodes for s in streams)
        stream["stream_groups"] = sum(len(s.groups) for s in streams)
        if any(s.groups for s in streams):
            stream["stream_pel"] = sum(len(g.pel) for s in streams for g in s.groups)
            stream["stream_consumers"] = sum(len(g.consumers) for s in streams for g in s.groups)
    mods = sum(k.type == "module" for k in keys)
    if mods:
        stream["module_values"] = mods
    auxmods = sum(isinstance(e, ModuleAux) for e in events)
    if auxmods:
        stream["module_aux"] = auxmods
    ql: Counter[str] = Counter()
    for k in keys:
        if k.rdb_type == 14:
            ql["v1_nodes"] += k.nodes or 0
        elif k.rdb_type == 18:
            ql["packed"] += k.nodes or 0
    return {
        "rdb_version": header.version,
        "aux": {e.key.decode(): e.value.decode() for e in events if isinstance(e, Aux)},
        "opcodes": {k: v for k, v in opcodes.items() if v},
        "selectdb": [e.db for e in events if isinstance(e, SelectDB)],
        "types": dict(Counter(TYPE_NAMES[k.rdb_type] for k in keys)),
        "checksum": "none (RDB version < 5)" if end.checksum is None else struct.pack("<Q", end.checksum).hex(),
        "rdb_end_offset": reader_end,
        "trailing_bytes": unused,
        "quicklist_nodes": dict(ql),
        "stream": dict(stream),
    }


def _read_all(path: Path, **options: object) -> tuple[list, RDBReader]:
    r = RDBReader(**options)  # type: ignore[arg-type]
    data = path.read_bytes()
    events = list(r.feed(data))
    events.extend(r.close())
    return events, r


@needs_fixtures
@pytest.mark.parametrize("jpath", LEGACY, ids=lambda p: p.name.split(".")[0])
def test_legacy_fixture_matches_census_and_redis70_load(jpath: Path) -> None:
    exp = load_json(jpath)
    path = jpath.with_name(jpath.name.replace(".loaded-by-redis-7.0.json", ".rdb"))
    census = exp["census"]
    log = "\n".join(exp["load"]["log"])
    if "magic" in census:
        with pytest.raises(RDBSignatureError, match="Wrong signature"):
            _read_all(path)
        return
    if "Can't handle RDB format version" in log:
        # Redis 7.0 refuses newer files; so do we when told to be 7.0.
        with pytest.raises(RDBVersionError, match=f"Can't handle RDB format version {census['rdb_version']}"):
            _read_all(path, max_version=10)
    if "integrity check failed" in log:
        check = exp["redis_check_rdb"]["output"]
        bad_key = next(line for line in check if line.startswith("Reading key")).split("'")[1]
        with pytest.raises(RDBCorruptError) as ei:
            _read_all(path)
        assert ei.value.key == bad_key.encode() and ei.value.offset is not None
        return
    if "module data I can't load" in log or "AUX module data" in log:
        with pytest.raises(RDBModuleError) as mi:
            _read_all(path)
        assert mi.value.module_name in log
        events, reader = _read_all(path, unknown_modules="raw")
    else:
        events, reader = _read_all(path)
    mine = _census_of(path, events, reader.end_offset, len(reader.unused_data))
    for field, value in mine.items():
        if field in census:
            assert value == census[field], field
    dataset = exp["load"]["dataset"]
    if dataset is None:
        return
    loaded = redis70_loaded(keys_of(events))
    assert sorted(loaded) == sorted((x["db"], jb(x["key"])) for x in dataset["keys"])
    writer = RDBWriter(10)  # Redis 7.0's default thresholds
    for x in dataset["keys"]:
        k = loaded[(x["db"], jb(x["key"]))]
        assert k.type == x["type"] and k.expire_ms == x["expire_ms"]
        # The writer picks the encoding 7.0 ends up with after loading the value
        # (except that 7.0 converts a ziplist hash by its entry count only, so
        # long values stay in a listpack there).
        if not (k.rdb_type == 13 and any(len(v) > 64 for _f, v in k.value)):  # type: ignore[attr-defined]
            assert writer.encode_value(k.type, k.value)[0] == x["rdb_type"], k.key
        if k.type == "stream":
            assert stream_for_json(k.value) == json_stream(x["value"]), k.key  # type: ignore[arg-type]
        else:
            assert norm_value(k.type, k.value) == json_value(x["type"], x["value"]), k.key


@needs_fixtures
def test_v1_stream_fixups_follow_redis() -> None:
    """Type-15 streams get entries_added = length, first id = first entry,
    estimated entries_read and active_time = seen_time."""
    events = list(read_file(str(FIXTURES / "rdbtools/redis_50_with_streams.rdb")))
    s = next(k.value for k in keys_of(events) if k.key == b"mystream")
    assert isinstance(s, Stream)
    assert s.entries_added == s.length == 4 and s.first_id == s.entries[0].id
    assert s.max_deleted_id == StreamID(0, 0)
    assert [g.entries_read for g in s.groups] == [-1, -1]
    c = s.groups[0].consumers[0]
    assert c.active_time == c.seen_time


@needs_fixtures
@pytest.mark.parametrize("name", ["hash_with_hfe", "hash_as_listpack_with_hfe"])
def test_hash_field_ttls_match_the_reference_aof(name: str) -> None:
    """The 7.4 HFE types: field TTLs equal the HPEXPIREAT commands of the
    reference conversion shipped with the fixture."""
    events = list(read_file(str(FIXTURES / f"hdt3213/{name}.rdb")))
    (k,) = keys_of(events)
    aof = (FIXTURES / f"hdt3213/{name}.aof").read_bytes()
    expected: dict[bytes, int] = {}
    fields: dict[bytes, bytes] = {}
    for cmd in _resp_commands(aof):
        if cmd[0].upper() == b"HPEXPIREAT":
            for f in cmd[5:]:
                expected[f] = int(cmd[2])
        elif cmd[0].upper() == b"HMSET":
            fields.update(zip(cmd[2::2], cmd[3::2], strict=True))
    assert k.type == "hash" and dict(k.value) == fields  # type: ignore[arg-type]
    assert k.field_expires == expected


def _resp_commands(data: bytes) -> list[list[bytes]]:
    out = []
    f = io.BytesIO(data)
    while line := f.readline():
        assert line.startswith(b"*")
        args = []
        for _ in range(int(line[1:])):
            n = int(f.readline()[1:])
            args.append(f.read(n))
            f.read(2)
        out.append(args)
    return out


# -- streaming ----------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("path", [p for p in REDIS70 if p.stat().st_size < 30000] + fixture_files(
    "hdt3213/stream_listpacks_1.rdb") + fixture_files("rdbtools/zipmap_with_big_values.rdb"),
    ids=lambda p: p.name)
def test_any_chunking_gives_the_same_events(path: Path) -> None:
    data = path.read_bytes()
    whole = read_bytes(data)
    for sizes in ([1], [7, 1, 300], [4096]):
        assert chunked(data, sizes) == whole


@needs_fixtures
def test_iter_events_reads_chunks_and_stops_at_the_end() -> None:
    data = (FIXTURES / "rdbtools/redis_40_with_module.rdb").read_bytes()
    events = list(iter_events(io.BytesIO(data), chunk_size=5, unknown_modules="raw"))
    assert isinstance(events[-1], End)
    r = RDBReader(unknown_modules="raw")
    list(r.feed(data))
    assert r.done and r.end_offset == 248 and r.unused_data == data[248:]


def test_reader_does_not_keep_consumed_bytes() -> None:
    from ambry.persistence.rdb import RDBWriter

    w = RDBWriter()
    body = [w.header(), w.select_db(0)]
    body += [w.key(b"key:%d" % i, "string", b"x" * (i % 50)) for i in range(40000)]
    body.append(w.eof())
    data = b"".join(body)
    r = RDBReader()
    held = 0
    n = 0
    for i in range(0, len(data), 65536):
        for ev in r.feed(data[i:i + 65536]):
            n += isinstance(ev, Key)
        held = max(held, len(r._buf) - r._pos + r._pending_len)
    list(r.close())
    assert n == 40000 and held <= 2 * 65536


def test_a_huge_key_in_small_chunks_is_linear() -> None:
    from ambry.persistence.rdb import RDBWriter

    w = RDBWriter(compression=False)
    big = [b"%d-element" % i for i in range(300000)]
    data = w.header() + w.key(b"big", "list", big) + w.key(b"set", "set", big[:100000]) + w.eof()
    t = time.perf_counter()
    events = chunked(data, [4096])
    assert time.perf_counter() - t < 20
    k = keys_of(events)
    assert k[0].value == big and sorted(k[1].value) == sorted(big[:100000])  # type: ignore[type-var]


# -- corrupt and truncated input ----------------------------------------------------------------


def _tiny_files() -> list[bytes]:
    """Small files covering many record kinds (for exhaustive cuts/flips)."""
    from ambry.persistence.rdb import EncodingOptions, RDBWriter
    from test_rdb_support import random_stream

    files = []
    for version in (9, 10, 11, 12):
        w = RDBWriter(version, options=EncodingOptions(hash_max_listpack_entries=2, zset_max_listpack_entries=2,
                                                       set_max_intset_entries=2, list_max_listpack_size=2))
        parts = [w.header(), w.aux("redis-ver", "7.0.15")]
        if version >= 10:
            parts.append(w.function(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)"))
        parts += [w.select_db(0), w.resize_db(9, 1)]
        parts += [
            w.key(b"s", "string", b"hello", expire_ms=4102444800000),
            w.key(b"i", "string", b"-1234", lru_idle=5),
            w.key(b"l", "list", [b"a", b"1", b"bb", b"x" * 30], lfu_freq=3),
            w.key(b"si", "set", [b"1", b"2"]),
            w.key(b"ss", "set", [b"a", b"b", b"c"]),
            w.key(b"h", "hash", [(b"f", b"v"), (b"n", b"1")]),
            w.key(b"hh", "hash", [(b"f", b"v"), (b"n", b"1"), (b"g", b"w")],
                  field_expires={b"g": 4102444800000} if version >= 12 else None),
            w.key(b"z", "zset", [(b"m", 1.5), (b"n", 2.0)]),
            w.key(b"zz", "zset", [(b"m", 1.5), (b"n", 2.0), (b"o", float("inf"))]),
            w.key(b"x", "stream", random_stream(random.Random(3), 3)),
            w.eof(),
        ]
        files.append(b"".join(parts))
    return files


@pytest.mark.parametrize("version_index", range(4))
def test_every_truncation_is_a_truncated_error(version_index: int) -> None:
    data = _tiny_files()[version_index]
    assert keys_of(read_bytes(data))
    for cut in range(len(data)):
        r = RDBReader()
        got = []
        with pytest.raises(RDBTruncatedError) as ei:
            for ev in r.feed(data[:cut]):
                got.append(ev)
            for ev in r.close():
                got.append(ev)
        assert ei.value.offset == cut
        # Nothing complete is lost: every key wholly before the cut was delivered.
        whole = [k for k in keys_of(read_bytes(data)) if k.offset + k.size <= cut]
        assert [k.key for k in keys_of(got)] == [k.key for k in whole]


SMALL_REAL = [p for p in fixture_files("*/*.rdb") if p.stat().st_size < 2000 and p.name not in (
    "valkey_hash2_with_hfe.rdb", "zipmap_big_len.rdb", "corrupt_ziplist.rdb", "redis_40_with_module.rdb",
    "redis_60_with_module_aux.rdb")]


@needs_fixtures
@pytest.mark.parametrize("path", SMALL_REAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_files_cut_or_flipped_anywhere_raise_rdb_errors_only(path: Path) -> None:
    data = path.read_bytes()
    end = RDBReader()
    list(end.feed(data))
    size = end.end_offset or len(data)
    for cut in range(size):
        with pytest.raises(RDBTruncatedError):
            read_bytes(data[:cut])
    for pos in range(size):
        bad = data[:pos] + bytes([data[pos] ^ 0x5A]) + data[pos + 1:]
        for verify in (True, False):
            try:
                read_bytes(bad, verify_checksum=verify)
            except RDBError:
                pass


@needs_fixtures
def test_old_aof_preamble_ends_where_the_resp_tail_starts() -> None:
    data = (FIXTURES / "redis-tests/rdb-preamble.aof").read_bytes()
    r = RDBReader()
    events = list(r.feed(data))
    assert r.done and sorted(k.key for k in keys_of(events)) == [b"k1", b"k2"]
    assert r.unused_data == data[r.end_offset:] and r.unused_data.startswith(b"*2\r\n$6\r\nSELECT")
    aux = {e.key: e.value for e in events if isinstance(e, Aux)}
    assert aux[b"aof-preamble"] == b"1"


def test_truncation_inside_a_key_names_it() -> None:
    data = _tiny_files()[1]
    k = next(k for k in keys_of(read_bytes(data)) if k.key == b"l")
    with pytest.raises(RDBTruncatedError) as ei:
        read_bytes(data[: k.offset + k.size - 2])
    assert ei.value.key == b"l"
    assert "b'l'" in str(ei.value) and str(k.offset) in str(ei.value)


@pytest.mark.parametrize("version_index", range(4))
def test_every_flipped_byte_is_caught(version_index: int) -> None:
    """With a checksum every single-byte corruption is an RDBError; without
    verification the reader still raises nothing but RDBError."""
    data = _tiny_files()[version_index]
    for pos in range(len(data)):
        for mask in (0xFF, 0x01, 0x80, 0x40):
            bad = data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1:]
            if 5 <= pos < 9 and bad[5:9].isdigit() and int(bad[5:9]) < 5:
                continue  # now a checksum-less (pre-v5) file: the trailer is ignored data
            with pytest.raises(RDBError):
                read_bytes(bad)
            try:
                read_bytes(bad, verify_checksum=False)
            except RDBError:
                pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.sampled_from([b"REDIS0003", b"REDIS0009", b"REDIS0010", b"REDIS0012"]))
def test_garbage_never_escapes_as_another_exception(body: bytes, header: bytes) -> None:
    for verify in (True, False):
        try:
            read_bytes(header + body, verify_checksum=verify)
        except RDBError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_real_files_never_escape(data: st.DataObject) -> None:
    files = _tiny_files()
    raw = bytearray(data.draw(st.sampled_from(files)))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        read_bytes(bytes(raw), verify_checksum=False)
    except RDBError:
        pass


def test_events_before_a_corruption_are_delivered_first() -> None:
    data = _tiny_files()[1]
    k = next(k for k in keys_of(read_bytes(data)) if k.key == b"h")
    bad = bytearray(data)
    bad[k.offset] = 200  # not a type
    r = RDBReader()
    got = []
    with pytest.raises(RDBCorruptError) as ei:
        for ev in r.feed(bytes(bad)):
            got.append(ev)
    assert ei.value.offset == k.offset and "Unknown RDB encoding type 200" in str(ei.value)
    assert [x.key for x in keys_of(got)] == [b"s", b"i", b"l", b"si", b"ss"]
    with pytest.raises(RDBCorruptError):  # the reader stays failed
        r.feed(b"")


def test_checksum_mismatch_and_zero_checksum() -> None:
    data = _tiny_files()[1]
    with pytest.raises(RDBChecksumError, match="Wrong RDB checksum"):
        read_bytes(data[:-8] + bytes(8 - 1) + b"\x01")
    end = read_bytes(data[:-8] + bytes(8))[-1]
    assert isinstance(end, End) and end.checksum == 0
    assert read_bytes(data[:-1] + bytes([data[-1] ^ 1]), verify_checksum=False)[-1].computed is None


def test_signature_and_version_errors() -> None:
    with pytest.raises(RDBSignatureError):
        read_bytes(b"RUDIS")
    with pytest.raises(RDBSignatureError):  # seen as soon as a parse is tried
        list(RDBReader().feed(b"VALKEY080\xff"))
    with pytest.raises(RDBSignatureError):
        read_bytes(b"REDISxxxx\xff")
    with pytest.raises(RDBVersionError, match="Can't handle RDB format version 13"):
        read_bytes(b"REDIS0013\xff" + bytes(8))
    with pytest.raises(RDBVersionError, match="version 0"):
        read_bytes(b"REDIS0000\xff")
    with pytest.raises(RDBTruncatedError):
        read_bytes(b"")


def test_bad_lengths_and_string_encodings_are_corrupt() -> None:
    for body in (b"\x00\x01k\xc4", b"\x00\x01k\x9f", b"\xfe\xc0", b"\x00\x01k\xc3\x05\x40abcde",
                 b"\x12\x01k\x01\x03abc", b"\x12\x01k\x01\x00", b"\x08\x01k\x00"):
        with pytest.raises(RDBCorruptError):
            read_bytes(with_crc(b"REDIS0010" + body + b"\xff"))


def test_an_absurd_length_in_a_file_fails_without_buffering_the_rest() -> None:
    data = b"REDIS0010\xfe\x00" + b"\x00\x01k\x81" + b"\x7f" + b"\xff" * 7 + b"\x00" * 5000
    f = io.BytesIO(data)
    with pytest.raises(RDBTruncatedError):
        list(iter_events(f, chunk_size=64, total_size=len(data)))
    assert f.tell() == 64


# -- encodings one by one ---------------------------------------------------------------------


def _one_key(t: int, value: bytes, version: int = 10) -> Key:
    data = with_crc(b"REDIS%04d" % version + bytes([t]) + b"\x01k" + value + b"\xff")
    (k,) = keys_of(read_bytes(data))
    return k


def test_text_and_binary_zset_scores() -> None:
    k = _one_key(3, b"\x03" + b"\x01a\x031.5" + b"\x01b\xfe" + b"\x01c\xff", version=3)
    assert k.value == [(b"a", 1.5), (b"b", float("inf")), (b"c", float("-inf"))]
    with pytest.raises(RDBCorruptError, match="NAN"):
        _one_key(3, b"\x01\x01a\xfd")
    with pytest.raises(RDBCorruptError, match="NAN"):
        _one_key(5, b"\x01\x01a" + struct.pack("<d", float("nan")))


def test_ziplist_entry_encodings() -> None:
    ents = [b"\x00\x05hello", b"\x07\xc0\x39\x30", b"\x04\xd0\x15\xcd\x5b\x07", b"\x06\xe0" + struct.pack("<q", -2**40),
            b"\x0b\xf0\xff\xff\x7f", b"\x04\xfe\x80", b"\x02\xf1", b"\x01\xfd"]
    # Fix up prevlens: each entry records the previous entry's size.
    fixed = []
    prev = 0
    for e in ents:
        body = e[1:]
        fixed.append(bytes([prev]) + body)
        prev = 1 + len(body)
    zl_body = b"".join(fixed)
    tail = 10 + len(zl_body) - len(fixed[-1])
    zl = struct.pack("<IIH", 10 + len(zl_body) + 1, tail, len(fixed)) + zl_body + b"\xff"
    assert ziplist_decode(zl) == [b"hello", b"12345", b"123456789", b"-1099511627776", b"8388607", b"-128",
                                  b"0", b"12"]
    assert _one_key(10, enc_str(zl, False), version=6).value == ziplist_decode(zl)
    with pytest.raises(RDBCorruptError, match="prevlen"):
        ziplist_decode(zl[:10] + b"\x05" + zl[11:])


def test_quicklist_v2_plain_and_packed_nodes() -> None:
    lp = lp_encode([b"a", b"2"])
    k = _one_key(18, b"\x03" + b"\x02" + enc_str(lp, False) + b"\x01" + enc_str(b"P" * 100) + b"\x02"
                 + enc_str(lp_encode([b"z"]), False))
    assert k.value == [b"a", b"2", b"P" * 100, b"z"] and k.nodes == 3 and k.encoding == "quicklist"
    with pytest.raises(RDBCorruptError, match="container"):
        _one_key(18, b"\x01\x03" + enc_str(lp, False))


def test_set_listpack_and_listpack_ex_types() -> None:
    assert _one_key(20, enc_str(lp_encode([b"a", b"b"]), False), 11).value == [b"a", b"b"]
    lp = lp_encode([b"f", b"v", 4102444800000, b"g", b"1", 0])
    k = _one_key(23, enc_str(lp, False), 12)
    assert k.value == [(b"f", b"v"), (b"g", b"1")] and k.field_expires == {b"f": 4102444800000}
    k = _one_key(22, b"\x02" + enc_len(4102444800001) + b"\x01f\x01v" + b"\x00\x01g\x01w", 12)
    assert k.field_expires == {b"f": 4102444800001} and k.encoding == "hashtable"


def test_pre_ga_function_opcode_becomes_library_source() -> None:
    data = with_crc(b"REDIS0010" + b"\xf6" + b"\x05mylib" + b"\x03LUA" + b"\x01" + b"\x04desc"
                    + enc_str(b"redis.register_function('f', function() return 1 end)") + b"\xff")
    lib = next(e for e in read_bytes(data) if isinstance(e, FunctionLibrary))
    assert lib.code == b"#!LUA name=mylib\nredis.register_function('f', function() return 1 end)"
    assert (lib.engine, lib.name, lib.pre_ga) == ("LUA", "mylib", True)


def test_slot_info_and_seconds_expire() -> None:
    data = with_crc(b"REDIS0012" + b"\xf4\x05\x01\x00" + b"\xfd" + struct.pack("<i", 2000000000)
                    + b"\x00\x01k\x01v" + b"\xff")
    events = read_bytes(data)
    assert SlotInfo(5, 1, 0, 9) in events
    assert keys_of(events)[0].expire_ms == 2000000000000


def test_empty_collections_are_reported_not_dropped() -> None:
    k = _one_key(2, b"\x00")
    assert k.type == "set" and k.value == []


def test_opcode_names_cover_every_opcode() -> None:
    assert sorted(OPCODE_NAMES) == list(range(244, 256))


# -- modules ------------------------------------------------------------------------------------


class _Counter(ModuleType):
    """A toy module type: an unsigned count and a string."""

    name = "counter-t"
    encver = 3

    def rdb_load(self, io: ModuleLoadIO, encver: int) -> object:
        return (io.load_unsigned(), io.load_string(), io.load_double(), encver)

    def aux_load(self, io: ModuleLoadIO, encver: int, when: int) -> object:
        return ("aux", io.load_signed(), when)


def test_module_ids_pack_name_and_version() -> None:
    mid = module_id("ReJSON-RL", 3)
    assert module_name(mid) == ("ReJSON-RL", 3)
    with pytest.raises(ValueError):
        module_id("short", 1)


def test_registered_module_types_load_values_and_aux() -> None:
    mid = module_id("counter-t", 3)
    value = enc_len(mid) + b"\x02\x07" + b"\x05" + enc_str(b"abc") + b"\x04" + struct.pack("<d", 2.5) + b"\x00"
    aux = b"\xf7" + enc_len(mid) + b"\x02\x02" + b"\x01" + enc_len(2**64 - 5) + b"\x00"
    data = with_crc(b"REDIS0010" + aux + b"\x07\x01k" + value + b"\xff")
    reg = ModuleRegistry([_Counter()])
    events = read_bytes(data, modules=reg)
    (k,) = keys_of(events)
    assert k.type == "module" and k.value.parsed == (7, b"abc", 2.5, 3)  # type: ignore[attr-defined]
    ma = next(e for e in events if isinstance(e, ModuleAux))
    assert ma.value.parsed == ("aux", -5, 2) and ma.when == 2
    with pytest.raises(RDBModuleError) as ei:
        read_bytes(data)
    assert ei.value.module_name == "counter-t" and ei.value.module_id == mid
    raw = keys_of(read_bytes(data, unknown_modules="raw"))[0].value
    assert raw.items == [(2, 7), (5, b"abc"), (4, 2.5)]  # type: ignore[attr-defined]


def test_pre_ga_module_values_need_the_module() -> None:
    mid = module_id("counter-t", 3)
    value = enc_len(mid) + enc_len(9) + enc_str(b"xy") + struct.pack("<d", 1.0)
    data = with_crc(b"REDIS0008" + b"\x06\x01k" + value + b"\x00\x01n\x01v" + b"\xff")
    events = read_bytes(data, modules=ModuleRegistry([_Counter()]))
    assert keys_of(events)[0].value.parsed == (9, b"xy", 1.0, 3)  # type: ignore[attr-defined]
    assert keys_of(events)[1].value == b"v"
    with pytest.raises(RDBModuleError, match="counter-t"):
        read_bytes(data, unknown_modules="raw")


def test_a_module_that_reads_too_little_is_an_error() -> None:
    class Lazy(_Counter):
        def rdb_load(self, io: ModuleLoadIO, encver: int) -> object:
            return io.load_unsigned()

    mid = module_id("counter-t", 3)
    data = with_crc(b"REDIS0010\x07\x01k" + enc_len(mid) + b"\x02\x07\x02\x08\x00\xff")
    with pytest.raises(RDBModuleError):
        read_bytes(data, modules=ModuleRegistry([Lazy()]))


@needs_fixtures
def test_rejson_fixture_reads_raw_with_its_module_name() -> None:
    events = list(read_file(str(FIXTURES / "rdbtools/redis_40_with_module.rdb"), unknown_modules="raw"))
    k = next(k for k in keys_of(events) if k.type == "module")
    assert k.value.name == "ReJSON-RL" and k.value.items  # type: ignore[attr-defined]


# -- batches and builders -----------------------------------------------------------------------


def _batched(data: bytes, sizes: list[int], **options: object) -> list:
    """Events of ``data`` fed in chunks, with ``batch_keys=True``."""
    r = RDBReader(batch_keys=True, **options)  # type: ignore[arg-type]
    out: list = []
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.extend(r.feed(data[i:i + n]))
        i += n
        k += 1
    out.extend(r.close())
    return out


def _unbatch(events: list) -> list[tuple]:
    """(db, key, type id, value, expire, idle, freq) of every key, in order."""
    from ambry.persistence.rdb import KeyBatch

    out = []
    for ev in events:
        assert not isinstance(ev, Key)
        if isinstance(ev, KeyBatch):
            meta = {m[0]: m[1:] for m in ev.meta}
            assert ev.skipped == [] and len(ev.keys) == len(ev.values) == len(ev.types)
            for i, (k, v, t) in enumerate(zip(ev.keys, ev.values, ev.types, strict=True)):
                out.append((ev.db, k, t, v, *meta.get(i, (None, None, None))))
    return out


@needs_fixtures
@pytest.mark.parametrize("path", [p for p in REDIS70 if p.stat().st_size < 30000] + fixture_files(
    "hdt3213/stream_listpacks_1.rdb"), ids=lambda p: p.name)
def test_key_batches_carry_exactly_the_key_events(path: Path) -> None:
    """Batch mode gives every key with the same value and prefixes as Key
    events, in file order, whatever the chunking (a record cut by a chunk
    boundary is read again and must not appear twice)."""
    data = path.read_bytes()
    expected = [(k.db, k.key, k.rdb_type, k.value, k.expire_ms, k.lru_idle, k.lfu_freq)
                for k in keys_of(read_bytes(data))]
    others = [e for e in read_bytes(data) if not isinstance(e, Key)]
    for sizes in ([1], [7, 1, 300], [1 << 20]):
        events = _batched(data, sizes)
        assert _unbatch(events) == expected
        from ambry.persistence.rdb import KeyBatch
        assert [e for e in events if not isinstance(e, KeyBatch)] == others


def test_string_runs_and_prefixed_keys_in_a_batch() -> None:
    """Runs of plain short strings take the fast path; a key with an expire,
    an LRU or an LFU prefix, an integer or LZF value, or a long key ends the
    run and is read by the general path, its prefixes in ``meta``."""
    from ambry.persistence.rdb import KeyBatch

    w = RDBWriter(10)
    body = w.header() + w.select_db(0)
    body += w.key(b"a", "string", b"1x") + w.key(b"b", "string", b"2")
    body += w.key(b"c", "string", b"v", expire_ms=5000) + w.key(b"d", "string", b"z" * 100)
    body += w.key(b"k" * 70, "string", b"v", lru_idle=7) + w.key(b"e", "string", b"v", lfu_freq=3)
    body += w.key(b"f", "list", [b"x"]) + w.key(b"g", "string", b"")
    data = body + w.eof()
    (batch,) = [e for e in _batched(data, [len(data)]) if isinstance(e, KeyBatch)]
    assert batch.keys == [b"a", b"b", b"c", b"d", b"k" * 70, b"e", b"f", b"g"]
    assert batch.values == [b"1x", b"2", b"v", b"z" * 100, b"v", b"v", [b"x"], b""]
    assert batch.types == [0, 0, 0, 0, 0, 0, 18, 0]
    assert batch.meta == [(2, 5000, None, None), (4, None, 7, None), (5, None, None, 3)]
    for n in range(1, 40):
        assert _unbatch(_batched(data, [n])) == _unbatch(_batched(data, [len(data)]))


class _Shapes:
    """A builder recording what the reader hands over (lists node by node,
    intsets with their width) and dropping empty collections."""

    def __init__(self) -> None:
        from ambry.persistence.rdb import ValueBuilder

        class B(ValueBuilder):
            def list_value(s, t, nodes, sizes):  # noqa: N805
                return ("list", t, nodes, sizes) if nodes else None

            def intset_value(s, t, ints, width):  # noqa: N805
                return ("intset", ints, width)

            def set_value(s, t, members):  # noqa: N805
                return ("set", members) if members else None

            def zset_value(s, t, members, scores):  # noqa: N805
                return ("zset", members, scores)

            def hash_value(s, t, flat):  # noqa: N805
                return ("hash", flat)

        self.builder = B()


def test_a_builder_gets_quicklist_nodes_and_intset_widths() -> None:
    from ambry.persistence.rdb.writer import EncodingOptions

    w = RDBWriter(10, options=EncodingOptions(list_max_listpack_size=3))
    body = w.header() + w.select_db(0)
    body += w.key(b"l", "list", [b"%d" % i for i in range(7)] + [b"x" * 30])
    body += w._out(b"\x0b\x01s" + enc_str(struct.pack("<II3i", 4, 3, -1, 2, 3), False))  # a 32-bit intset
    body += w.key(b"z", "zset", [(b"m", 2.0), (b"n", 0.5)]) + w.key(b"h", "hash", [(b"f", b"1")])
    body += w._out(b"\x02\x01e\x00")  # an empty set: dropped by this builder
    data = body + w.eof()
    from ambry.persistence.rdb import KeyBatch

    events = _batched(data, [len(data)], builder=_Shapes().builder)
    (batch,) = [e for e in events if isinstance(e, KeyBatch)]
    lst, intset, zset, hsh = batch.values
    nodes = [[b"0", b"1", b"2"], [b"3", b"4", b"5"], [b"6", b"x" * 30]]
    assert lst == ("list", 18, nodes, [len(lp_encode(n)) for n in nodes])
    assert intset == ("intset", [-1, 2, 3], 4)
    assert zset == ("zset", [b"n", b"m"], [0.5, 2.0])
    assert hsh == ("hash", [b"f", b"1"])
    assert batch.skipped == [b"e"]
    # The same builder through load_dump_payload (RESTORE's path).
    from ambry.persistence.rdb import dump_payload

    dv = load_dump_payload(dump_payload("list", [b"a"] * 5, options=EncodingOptions(list_max_listpack_size=2)),
                           builder=_Shapes().builder)
    assert dv.value[2] == [[b"a", b"a"], [b"a", b"a"], [b"a"]]


def test_types_outside_the_accepted_set_are_unknown() -> None:
    w = RDBWriter(11)
    data = w.header() + w.select_db(0) + w.key(b"s", "set", [b"a", b"b"]) + w.eof()  # a 7.2 listpack set
    assert keys_of(read_bytes(data))[0].rdb_type == 20
    with pytest.raises(RDBCorruptError, match="Unknown RDB encoding type 20") as ei:
        read_bytes(data, types=frozenset(range(20)))
    assert ei.value.key == b"s"
    with pytest.raises(RDBCorruptError, match="Unknown RDB encoding type 20"):
        load_dump_payload(dump_payload_of(w, "set", [b"a"]), types=frozenset(range(20)))


def dump_payload_of(w: RDBWriter, kind: str, value: object) -> bytes:
    t, body = w.encode_value(kind, value)
    data = bytes((t,)) + body + struct.pack("<H", w.version)
    return data + struct.pack("<Q", crc64(data))


def test_a_builder_that_refuses_a_value_gives_a_corrupt_error_at_the_key() -> None:
    from ambry.persistence.rdb import ValueBuilder

    class Refuse(ValueBuilder):
        def hash_value(self, rdb_type: int, flat: list[bytes]) -> object:
            raise TypeError("no hashes here")

    w = RDBWriter(10)
    data = w.header() + w.select_db(0) + w.key(b"ok", "string", b"v") + w.key(b"h", "hash", [(b"f", b"v")])
    data += w.eof()
    with pytest.raises(RDBCorruptError, match="cannot build the hash value .TypeError: no hashes here") as ei:
        read_bytes(data, builder=Refuse())
    assert ei.value.key == b"h"


@needs_fixtures
def test_streams_keep_their_listpacks_out_of_equality() -> None:
    """Stream.listpacks holds the file's nodes, tombstones included; two
    streams with the same entries and metadata compare equal whatever
    their layout."""
    data = (FIXTURES / "redis-7.0" / "streams.rdb").read_bytes()
    tombstones = 0
    for k in keys_of(read_bytes(data)):
        s = k.value
        assert isinstance(s, Stream) and s.listpacks is not None and len(s.listpacks) == s.nodes == k.nodes
        for nodekey, _ in s.listpacks:
            assert len(nodekey) == 16 and nodekey in data
        # Each listpack's master entry: live entries, then deleted ones.
        assert sum(int(lp_decode(lp)[0]) for _, lp in s.listpacks) == len(s.entries) == s.length
        tombstones += sum(int(lp_decode(lp)[1]) for _, lp in s.listpacks)
        assert Stream(s.entries, s.length, s.last_id, s.first_id, s.max_deleted_id, s.entries_added, s.groups,
                      s.nodes) == s
    assert tombstones > 0


# -- listpack layouts ---------------------------------------------------------------------------


def _walked(blob: bytes, text: bool = True) -> object:
    """lp_decode with remembered layouts set aside: the plain walk (or the
    error it raises, as a string)."""
    from ambry.persistence.rdb import containers

    saved = containers._layout_stats[2]
    containers._layout_stats[2] = 1 << 60
    try:
        return lp_decode(blob, text)
    except RDBCorruptError as e:
        return f"error: {e.message}"
    finally:
        containers._layout_stats[2] = saved


def _decoded(blob: bytes, text: bool = True) -> object:
    try:
        return lp_decode(blob, text)
    except RDBCorruptError as e:
        return f"error: {e.message}"


_lp_elements = st.lists(st.one_of(
    st.binary(max_size=8), st.integers(0, 127).map(lambda i: b"%d" % i), st.integers(-4096, 4095).map(lambda i: b"%d" % i),
    st.sampled_from([b"", b"x" * 63, b"y" * 64, b"-5", b"100000"])), min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(shapes=st.lists(_lp_elements, min_size=1, max_size=6), flips=st.lists(
    st.tuples(st.integers(0, 1000), st.integers(1, 255)), max_size=3), text=st.booleans())
def test_listpacks_taken_by_a_remembered_layout_read_as_walked(shapes: list[list[bytes]],
                                                                flips: list[tuple[int, int]], text: bool) -> None:
    """Whatever layouts earlier listpacks left (same sizes, other shapes,
    corrupted bytes), a listpack decodes exactly as the walk decodes it."""
    from ambry.persistence.rdb import containers

    containers._layouts.clear()
    containers._layout_stats[:] = [0, 0, 0]
    blobs = []
    for elements in shapes:
        blob = lp_encode(elements)
        blobs += [blob, blob]
        for pos, x in flips:  # the same size, other bytes
            b = bytearray(blob)
            b[pos % len(b)] ^= x
            blobs.append(bytes(b))
    for blob in blobs * 2:
        assert _decoded(blob, text) == _walked(blob, text)


def test_a_layout_is_used_for_listpacks_of_the_same_shape_only() -> None:
    from ambry.persistence.rdb import containers

    containers._layouts.clear()
    containers._layout_stats[:] = [0, 0, 0]
    a = lp_encode([b"name", b"alice", b"age", 30])
    b = lp_encode([b"name", b"carol", b"age", 41])
    c = lp_encode([b"nick", 100, b"alice", b"xyz"])  # same size, count and first byte; other layout
    assert len(a) == len(c) and a[4:7] == c[4:7]
    assert lp_decode(a) == [b"name", b"alice", b"age", b"30"]
    hits = containers._layout_stats[1]
    assert lp_decode(b) == [b"name", b"carol", b"age", b"41"] and containers._layout_stats[1] == hits + 1
    assert lp_decode(c) == [b"nick", b"100", b"alice", b"xyz"] == _walked(c)
    assert lp_decode(b, text=False) == [b"name", b"carol", b"age", 41]
    with pytest.raises(RDBCorruptError, match="says 3 elements, found 4"):
        lp_decode(b[:4] + b"\x03\x00" + b[6:])


@settings(max_examples=300, deadline=None)
@given(first=st.binary(min_size=1, max_size=4), rest=st.lists(st.one_of(st.integers(0, 127), st.binary(max_size=3)),
                                                              min_size=1, max_size=8),
       data=st.data(), text=st.booleans())
def test_same_size_listpacks_with_other_layouts_are_walked(first: bytes, rest: list, data: st.DataObject,
                                                           text: bool) -> None:
    """Listpacks that share size, count and first byte but not layout:
    their entries permuted, or 7-bit integers (2 bytes) swapped with empty
    strings (2 bytes too)."""
    from ambry.persistence.rdb import containers

    containers._layouts.clear()
    containers._layout_stats[:] = [0, 0, 0]
    others = [[first, *data.draw(st.permutations(rest))],
              [first, *[b"" if isinstance(x, int) else x for x in rest]],
              [first, *[7 if x == b"" else x for x in rest]]]
    blob = lp_encode([first, *rest])
    assert _decoded(blob, text) == _walked(blob, text)
    for elements in others:
        other = lp_encode(elements)
        assert _decoded(other, text) == _walked(other, text)
        assert _decoded(blob, text) == _walked(blob, text)


def test_a_module_type_without_a_callback_refuses_with_a_module_error() -> None:
    from ambry.persistence.rdb import RDBModuleError

    class _LoadOnly(ModuleType):
        name = "loadonly1"
        encver = 1

    with pytest.raises(RDBModuleError) as ei:
        _LoadOnly().aux_save(None, None, 0)  # type: ignore[arg-type]
    assert "loadonly1" in str(ei.value.message)


# -- check_only: structure without values (rdb-inspect verify) ------------------------------------


def _checked(data: bytes, **options: object) -> tuple[int, int]:
    """(keys, empty values) the check-only reader reports, in batches."""
    keys = empty = 0
    for ev in read_bytes(data, check_only=True, batch_keys=True, **options):  # type: ignore[arg-type]
        if isinstance(ev, KeyBatch):
            keys += len(ev.keys)
            empty += sum(1 for v, t in zip(ev.values, ev.types, strict=True) if v == 0 and t not in (0, 15, 19, 21))
            assert len(ev.sizes) == len(ev.keys)
    return keys, empty


def _empty(v: object) -> bool:
    return isinstance(v, list) and not v


@needs_fixtures
@pytest.mark.parametrize("path", [p for p in fixture_files("*/*.rdb") if p.name not in (
    "valkey_hash2_with_hfe.rdb", "zipmap_big_len.rdb", "corrupt_ziplist.rdb", "redis_40_with_module.rdb")],
    ids=lambda p: f"{p.parent.name}/{p.name}")
def test_check_only_values_are_element_counts(path: Path) -> None:
    from ambry.tools.memory_model import element_count

    data = path.read_bytes()
    full = keys_of(read_bytes(data, unknown_modules="raw"))
    counted = keys_of(read_bytes(data, unknown_modules="raw", check_only=True))
    assert [(k.key, k.type, k.rdb_type, k.expire_ms, k.offset, k.size) for k in counted] == \
        [(k.key, k.type, k.rdb_type, k.expire_ms, k.offset, k.size) for k in full]
    assert [element_count(k) for k in counted] == [element_count(k) for k in full]
    # in batches: the same counts, plus each record's size and the non-raw string encodings
    sizes: list[int] = []
    values: list[object] = []
    encs: list[tuple[int, str]] = []
    for ev in read_bytes(data, unknown_modules="raw", check_only=True, batch_keys=True):
        if isinstance(ev, KeyBatch):
            encs += [(len(sizes) + i, e) for i, e in ev.encodings]
            sizes += ev.sizes
            values += ev.values
    assert sizes == [k.size for k in full] and values == [element_count(k) for k in full]
    assert encs == [(i, k.encoding) for i, k in enumerate(full) if k.type == "string" and k.encoding != "raw"]


CHECKABLE = [p for p in fixture_files("*/*.rdb") if p.name not in (
    "valkey_hash2_with_hfe.rdb", "zipmap_big_len.rdb", "corrupt_ziplist.rdb", "redis_40_with_module.rdb")]


@needs_fixtures
@pytest.mark.parametrize("path", CHECKABLE, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("deep", [False, True])
def test_check_only_counts_what_the_full_reader_reads(path: Path, deep: bool) -> None:
    data = path.read_bytes()
    full = keys_of(read_bytes(data, unknown_modules="raw"))
    got = _checked(data, unknown_modules="raw", deep_sanitize=deep)
    assert got == (len(full), sum(1 for k in full if _empty(k.value)))


@needs_fixtures
def test_check_only_stops_where_the_full_reader_stops() -> None:
    data = (FIXTURES / "redis-tests/corrupt_ziplist.rdb").read_bytes()
    with pytest.raises(RDBCorruptError) as full:
        read_bytes(data)
    with pytest.raises(RDBCorruptError) as checked:
        _checked(data)
    assert (checked.value.offset, checked.value.key) == (full.value.offset, full.value.key) == \
        (488, b"key:000000000091")


def _one_record_file(record: bytes) -> bytes:
    """A version-10 file holding one raw key record (type byte first)."""
    w = RDBWriter(10)
    return w.header() + w.select_db(0) + w._out(record) + w.eof()


def _hash_record(key: bytes = b"h") -> tuple[bytes, bytes]:
    """(record, listpack) of a small listpack hash, stored without LZF."""
    lp = lp_encode([b"f", b"v", b"g", b"w"])
    return b"\x10" + enc_str(key) + enc_str(lp, compress=False), lp


def test_check_only_accepts_what_it_should_and_reports_empties() -> None:
    rec, _ = _hash_record()
    assert _checked(_one_record_file(rec)) == (1, 0)
    empty_lp = lp_encode([])
    for t in (0x10, 0x11, 0x14):  # hash, zset and set listpacks with no element
        assert _checked(_one_record_file(bytes((t,)) + enc_str(b"e") + enc_str(empty_lp, compress=False))) == (1, 1)
    # a quicklist whose only node is an empty listpack is an empty list
    assert _checked(_one_record_file(b"\x12" + enc_str(b"l") + b"\x01\x02" + enc_str(empty_lp, compress=False))) == (1, 1)
    # every kind the writer makes, compressed or not, at every version it writes
    values = {"string": b"x" * 40, "list": [b"a", b"1", b"b" * 30] * 50, "set": [b"m%d" % i for i in range(300)],
              "zset": [(b"z%d" % i, i / 7) for i in range(200)], "hash": [(b"f%d" % i, b"v") for i in range(700)]}
    for version in (9, 10, 11):
        for compress in (True, False):
            w = RDBWriter(version, compression=compress)
            body = w.header() + w.select_db(0)
            for kind, v in values.items():
                body += w.key(kind.encode(), kind, v) + w.key(kind.encode() + b"2", kind, v[:3])
            data = body + w.eof()
            assert _checked(data) == (10, 0), (version, compress)


@pytest.mark.parametrize("case", ["lp-total", "lp-end", "lp-odd", "set-dup", "hash-dup", "zset-nan",
                                  "ql-container", "lzf", "truncated"])
def test_check_only_finds_damage_and_names_offset_and_key(case: str) -> None:
    rec, lp = _hash_record(b"victim")
    at = 1 + len(enc_str(b"victim")) + len(enc_str(lp, compress=False)) - len(lp)  # the blob in the record
    if case == "lp-total":
        bad = rec[:at] + struct.pack("<I", len(lp) + 1) + rec[at + 4:]
    elif case == "lp-end":
        bad = rec[:-1] + b"\xfe"
    elif case == "lp-odd":
        odd = lp_encode([b"f", b"v", b"g"])
        bad = b"\x10" + enc_str(b"victim") + enc_str(odd, compress=False)
    elif case == "set-dup":
        bad = b"\x02" + enc_str(b"victim") + b"\x02" + enc_str(b"a") + enc_str(b"a")
    elif case == "hash-dup":
        bad = b"\x04" + enc_str(b"victim") + b"\x02" + enc_str(b"f") + enc_str(b"1") + enc_str(b"f") + enc_str(b"2")
    elif case == "zset-nan":
        bad = b"\x05" + enc_str(b"victim") + b"\x01" + enc_str(b"m") + struct.pack("<d", float("nan"))
    elif case == "ql-container":
        bad = b"\x12" + enc_str(b"victim") + b"\x01\x07" + enc_str(lp, compress=False)
    elif case == "lzf":
        bad = b"\x00" + enc_str(b"victim") + b"\xc3\x05\x40\x00" + b"\x1f" * 5
    else:
        bad = rec[:-3]
    w = RDBWriter(10)
    head = w.header() + w.select_db(0)
    before = head + w._out(b"\x00" + enc_str(b"ok") + enc_str(b"1"))
    body = before + w._out(bad) + w.eof()
    expect = RDBTruncatedError if case == "truncated" else RDBCorruptError
    with pytest.raises(expect) as ei:
        _checked(body[:-9] if case == "truncated" else body)
    assert ei.value.key == b"victim"
    assert len(before) <= (ei.value.offset or 0) <= len(body)


# -- Valkey 9 files --------------------------------------------------------------------------------


def _valkey(body: bytes, version: int = 80) -> bytes:
    return with_crc(b"VALKEY%03d" % version + body + b"\xff")


@needs_fixtures
def test_valkey_hash2_fixture_is_read_with_field_expiry() -> None:
    """Valkey 9's own file: VALKEY080, a type-22 hash with two field TTLs
    (HDT3213's expected commands: HPEXPIREAT F1 2715785640000, F2 2400425640000)."""
    path = FIXTURES / "hdt3213/valkey_hash2_with_hfe.rdb"
    with pytest.raises(RDBSignatureError, match="Wrong signature"):
        read_bytes(path.read_bytes())  # as Redis: only when asked
    events = read_bytes(path.read_bytes(), valkey=True)
    head = events[0]
    assert isinstance(head, Header) and (head.version, head.magic) == (80, "VALKEY")
    assert (Aux(b"valkey-ver", b"9.0.1", 9)) in events
    (k,) = keys_of(events)
    assert (k.key, k.type, k.rdb_type, k.encoding) == (b"hash2-hfe", "hash", 22, "hashtable")
    assert k.value == [(b"F1", b"V1"), (b"F2", b"V2"), (b"F3", b"V3")]
    assert k.field_expires == {b"F1": 2715785640000, b"F2": 2400425640000}
    end = events[-1]
    assert isinstance(end, End) and end.checksum == end.computed
    assert _checked(path.read_bytes(), valkey=True) == (1, 0)


def test_valkey_versions_types_and_slot_import() -> None:
    rec = b"\x16" + enc_str(b"h") + b"\x01" + enc_str(b"f") + enc_str(b"v") + struct.pack("<q", -1)
    (k,) = keys_of(read_bytes(_valkey(b"\xfe\x00" + rec), valkey=True))
    assert k.value == [(b"f", b"v")] and k.field_expires == {}
    for v in (11, 79, 82):
        with pytest.raises(RDBVersionError, match=f"Can't handle RDB format version {v}"):
            read_bytes(_valkey(b"", v), valkey=True)
    assert keys_of(read_bytes(_valkey(b"\xfe\x00" + rec, 81), valkey=True))
    # type 23 (Valkey's path hash) and 24/25 (Redis 7.4's) are not Valkey types this reader knows
    for t, note in ((23, "Valkey PATH_HASH"), (24, ""), (25, "")):
        with pytest.raises(RDBCorruptError, match=f"Unknown RDB encoding type {t}") as ei:
            read_bytes(_valkey(b"\xfe\x00" + bytes((t,)) + enc_str(b"k") + b"\x00"), valkey=True)
        assert note in ei.value.message and ei.value.offset == 11
    # a REDIS file keeps Redis's meaning of 22 (HASH_METADATA_PRE_GA: ttl first)
    redis22 = with_crc(b"REDIS0012\xfe\x00\x16" + enc_str(b"h") + b"\x01\x00" + enc_str(b"f") + enc_str(b"v") + b"\xff")
    (k,) = keys_of(read_bytes(redis22, valkey=True))
    assert k.value == [(b"f", b"v")]
    # SLOT_IMPORT: a job name and slot ranges, between keys
    imp = b"\xf3" + enc_str(b"j" * 40) + b"\x02" + enc_len(0) + enc_len(99) + enc_len(16000) + enc_len(16383)
    events = read_bytes(_valkey(imp + b"\xfe\x00" + rec), valkey=True)
    (si,) = [e for e in events if isinstance(e, SlotImport)]
    assert si.job_name == b"j" * 40 and si.ranges == [(0, 99), (16000, 16383)] and si.offset == 9
    assert len(keys_of(events)) == 1
    with pytest.raises(RDBCorruptError, match="Unknown RDB encoding type 243"):
        read_bytes(with_crc(b"REDIS0010" + imp + b"\xff"), valkey=True)
    # a field expire time below -1 is corrupt
    bad = b"\x16" + enc_str(b"h") + b"\x01" + enc_str(b"f") + enc_str(b"v") + struct.pack("<q", -5)
    with pytest.raises(RDBCorruptError, match="invalid hash field expire time -5") as ei:
        read_bytes(_valkey(b"\xfe\x00" + bad), valkey=True)
    assert ei.value.key == b"h"
