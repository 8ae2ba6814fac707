"""HyperLogLog: what the differential corpus (tests/corpus/hll.txt) cannot show.

* the algorithm on its own: MurmurHash64A (scalar and vectorized), the
  6-bit register packing, sparse updates against a plain register model,
  the resumable scan PFMERGE uses, the estimator on register patterns whose
  counts were observed on redis-server 7.0.15, PFSELFTEST catching a broken
  register accessor;
* effects (spec/propagation.md: PFADD/PFMERGE verbatim when changed, PFCOUNT
  when it refreshed the cache, PFDEBUG when it converted), dirty counts,
  keyspace events (PFMERGE notifies "pfadd"), WATCH (PFDEBUG TODENSE touches
  nothing), TTLs kept by in-place updates;
* against a real redis-server: a seeded random mix of PF commands, corrupted
  values and config changes, byte for byte; WATCH and dirty counts.

``element_for`` inverts MurmurHash64A to build an element that lands in a
chosen register with a chosen run length; the corpus uses such elements too.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from ambry.server import hyperloglog as H
from ambry.server.reply import OK, Err
from conftest import InProcess, ServerProcess

M = 0xC6A4A7935BD1E995
MASK = (1 << 64) - 1
MINV = pow(M, -1, 1 << 64)
INVALIDOBJ = Err("INVALIDOBJ Corrupted HLL object detected")
NOT_HLL = Err("WRONGTYPE Key is not a valid HyperLogLog string value.")


def element_for(index: int, count: int, salt: int = 0) -> bytes:
    """8 bytes hashing to register ``index`` with a 0..01 run of ``count`` (1..51)."""
    target = index if count == 51 else ((salt << (14 + count)) & MASK) | (1 << (13 + count)) | index
    h = target ^ (target >> 47)  # undo h ^= h >> 47 (47 >= 32: one step)
    h = (h * MINV) & MASK
    h ^= h >> 47
    h = (h * MINV) & MASK  # = (seed ^ 8m) ^ k
    k = h ^ ((H.HLL_SEED ^ (8 * M)) & MASK)
    k = (k * MINV) & MASK
    k ^= k >> 47
    return ((k * MINV) & MASK).to_bytes(8, "little")


def registers(buf: bytes | bytearray) -> np.ndarray:
    regs = H.unpack_dense(buf) if buf[4] == H.HLL_DENSE else H._sparse_registers(buf)
    assert regs is not None
    return regs


def xzero(n: int) -> bytes:
    n -= 1
    return bytes(((n >> 8) | 0x40, n & 0xFF))


SPARSE_HDR = b"HYLL\x01\x00\x00\x00" + b"\x00" * 7 + b"\x80"


def dense_blob(regs: list[int]) -> bytes:
    return b"HYLL\x00\x00\x00\x00" + b"\x00" * 7 + b"\x80" + H.pack_dense(np.array(regs, dtype=np.uint8))


# -- the algorithm ------------------------------------------------------------------------


def test_sparse_bytes_of_a_b_c_are_redis_bytes() -> None:
    """PFADD h a b c on redis-server 7.0.15, then GET (cache still invalid)."""
    buf = bytearray(H.EMPTY_SPARSE)
    assert H.add_many(buf, [b"a", b"b", b"c"], 3000) == 3
    assert bytes(buf).hex() == "48594c4c01000000000000000000008060f38050b1844bfb80425a"
    assert H.decode_sparse(buf) == b"Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"
    assert H.count(buf) == (3, False)


def test_element_for_inverts_murmurhash() -> None:
    rng = random.Random(1)
    for _ in range(500):
        i, c, s = rng.randrange(16384), rng.randrange(1, 52), rng.getrandbits(30)
        assert H.pat_len(element_for(i, c, s)) == (i, c)


def test_murmurhash_tail_lengths_and_vectorized_form_agree() -> None:
    rng = random.Random(2)
    keys = [rng.getrandbits(64) for _ in range(2000)]
    idx, cnt = H.pat_len_u64(np.array(keys, dtype=np.uint64))
    for k, i, c in zip(keys, idx.tolist(), cnt.tolist(), strict=True):
        assert H.pat_len(k.to_bytes(8, "little")) == (i, c)
    # The inlined hash of the dense fast path equals the general one at every length.
    for n in range(0, 40):
        ele = bytes(rng.getrandbits(8) for _ in range(n))
        buf = bytearray(H.HLL_DENSE_SIZE)
        buf[:4] = b"HYLL"
        H.dense_add_many(buf, [ele])
        i, c = H.pat_len(ele)
        assert H.dense_get(buf, i) == c
        assert int(np.count_nonzero(H.unpack_dense(buf))) == 1


def test_register_packing_round_trips() -> None:
    rng = np.random.default_rng(3)
    regs = rng.integers(0, 64, 16384, dtype=np.uint8)
    buf = bytearray(b"HYLL\x00" + bytes(11) + H.pack_dense(regs))
    assert np.array_equal(H.unpack_dense(buf), regs)
    for i in (0, 1, 2, 3, 4, 16382, 16383):
        assert H.dense_get(buf, i) == regs[i]
        H.dense_set(buf, i, 63 - int(regs[i]))
        assert H.dense_get(buf, i) == 63 - regs[i]
    assert len(buf) == H.HLL_DENSE_SIZE


@pytest.mark.parametrize("sorted_order", [False, True])
def test_sparse_updates_follow_a_register_model(sorted_order: bool) -> None:
    """Every hllSparseSet outcome (no change, in-place VAL, splits, merges,
    promotion on size or on a value above 32) keeps the registers right."""
    rng = random.Random(4 + sorted_order)
    for _trial in range(40):
        max_bytes = rng.choice([3000, 300, 50, 20000])
        buf = bytearray(H.EMPTY_SPARSE)
        model = np.zeros(16384, dtype=np.uint8)
        idxs = [rng.randrange(16384) for _ in range(rng.choice([10, 100, 1500]))]
        if sorted_order:
            idxs.sort()
        for j in idxs:
            c = rng.choice([1, 1, 1, 2, 2, 3, 4, 8, 20, 32, 33, 51])
            if buf[4] == H.HLL_SPARSE:
                r = H.sparse_set(buf, j, c, max_bytes)
            else:
                r = H.dense_update(buf, j, c)
            assert r == (1 if c > model[j] else 0)
            model[j] = max(model[j], c)
        assert np.array_equal(registers(buf), model)
        if buf[4] == H.HLL_SPARSE:
            assert len(buf) <= max(max_bytes, len(H.EMPTY_SPARSE))
            assert max(model) <= 32
            dense = bytearray(buf)
            assert H.sparse_to_dense(dense)
            assert H.count(dense)[0] == H.count(buf)[0]


def test_merge_into_sparse_destination_matches_one_by_one_updates() -> None:
    """PFMERGE's resumable scan gives the bytes of plain hllSparseSet calls."""
    rng = random.Random(5)
    for trial in range(60):
        max_bytes = rng.choice([12000, 3000, 300, 20000])
        dst = bytearray(H.EMPTY_SPARSE)
        H.add_many(dst, [b"x%d" % rng.randrange(100) for _ in range(rng.choice([0, 1, 5, 30]))], max_bytes)
        src = bytearray(H.EMPTY_SPARSE)
        H.add_many(src, [b"s%d:%d" % (trial, i) for i in range(rng.choice([100, 1000, 3000]))], max_bytes)
        if dst[4] != H.HLL_SPARSE:
            continue
        regs = np.zeros(16384, dtype=np.uint8)
        assert H.merge_into(regs, dst) and H.merge_into(regs, src)
        fast = bytearray(dst)
        assert H.store_merged(fast, regs, False, max_bytes)
        slow = bytearray(dst)
        for j in np.flatnonzero(regs).tolist():
            H.sparse_set(slow, j, int(regs[j]), max_bytes)
            if slow[4] == H.HLL_DENSE:
                slow[16:] = H.pack_dense(np.maximum(H.unpack_dense(slow), regs))
                break
        H.invalidate_cache(slow)
        assert fast == slow
        assert np.array_equal(registers(fast), regs)


def _walk(buf: bytes) -> tuple[list[int], list[int], list[int]]:
    """The opcodes of a sparse string walked one by one, as the C loops do."""
    p, end = 16, len(buf)
    starts: list[int] = []
    spans: list[int] = []
    values: list[int] = []
    while p < end:
        b = buf[p]
        starts.append(p)
        if b < 0x40:
            spans.append((b & 0x3F) + 1)
            values.append(0)
            p += 1
        elif b & 0x80:
            spans.append((b & 3) + 1)
            values.append(((b >> 2) & 0x1F) + 1)
            p += 1
        else:
            spans.append((((b & 0x3F) << 8) | (buf[p + 1] if p + 1 < end else 0)) + 1)
            values.append(0)
            p += 2
    return starts, spans, values


def test_vectorized_sparse_parse_equals_the_walk() -> None:
    """Runs of 01xxxxxx bytes alternate XZERO first/second bytes; a cut
    XZERO at the end reads a 0 second byte."""
    rng = random.Random(9)
    for _ in range(2000):
        body = bytes(rng.choice([rng.randrange(256), rng.randrange(0x40, 0x80)]) for _ in range(rng.randrange(60)))
        buf = SPARSE_HDR + body
        starts, spans, values = H._parse_sparse(buf)
        assert (starts.tolist(), spans.tolist(), values.tolist()) == _walk(buf), body


def test_sparse_validity_is_runs_adding_up_to_16384() -> None:
    """Observed on 7.0.15: even a VAL after a complete run is corrupt; an
    XZERO cut at the end reads the terminator as its second byte."""
    ok = [xzero(16384), xzero(16380) + bytes([0x83]), xzero(255) + b"\x7f"]
    bad = [b"", xzero(16000), xzero(16384) + b"\x00", xzero(16383) + bytes([0x81]),
           xzero(16384) + bytes([0xB3]), xzero(16384)[:1]]
    for body in ok:
        assert H._sparse_registers(SPARSE_HDR + body) is not None
        assert not H.histogram(SPARSE_HDR + body)[1]
    for body in bad:
        v = bytearray(SPARSE_HDR + body)
        assert H._sparse_registers(v) is None
        assert H.histogram(v)[1]
        assert not H.merge_into(np.zeros(16384, dtype=np.uint8), v)
        assert not H.sparse_to_dense(v)
        assert v == SPARSE_HDR + body


# Register patterns and the PFCOUNT redis-server 7.0.15 gave for them.
ESTIMATES = [
    ([0] * 16384, 0),
    ([1] * 16384, 23637),
    ([20] * 16384, 12392656037),
    ([40] * 16384, 12994641697113596),
    ([51] * 8192 + [0] * 8192, 13268),
    ([50] + [0] * 16383, 1),
    ([(i * 7) % 64 for i in range(16384)], 375261),
    ([63] * 16384, 1 << 63),  # z = 0: llroundl(inf) is LLONG_MIN
    ([51] * 16384, 1 << 63),
    ([52] * 16384, 1 << 63),
]


@pytest.mark.parametrize("regs, expected", ESTIMATES, ids=[str(e) for _r, e in ESTIMATES])
def test_estimator_matches_redis(regs: list[int], expected: int) -> None:
    arr = np.array(regs, dtype=np.uint8)
    assert H.count_from_histogram(H.raw_histogram(arr)) == expected
    assert H.count(dense_blob(regs)) == (expected, False)


def test_estimator_error_is_small() -> None:
    buf = bytearray(H.EMPTY_SPARSE)
    for n in (10, 1000, 50000):
        H.add_many(buf, [b"el:%d" % i for i in range(n)], 3000)
        card = H.count(buf)[0]
        assert abs(card - n) <= max(1, 0.05 * n)


def test_selftest_passes_and_catches_a_broken_register_setter(monkeypatch: pytest.MonkeyPatch) -> None:
    assert H.selftest(3000, scalar_limit=20000, total=1_000_000, register_cycles=1) is None

    def broken(buf: bytearray, regnum: int, val: int) -> None:
        real(buf, regnum, val if regnum != 777 else (val + 1) & 63)

    real = H.dense_set
    monkeypatch.setattr(H, "dense_set", broken)
    failure = H.selftest(3000, scalar_limit=10, total=10, register_cycles=1)
    assert failure is not None and failure.startswith("TESTFAILED Register 777 should be ")


# -- in-process: effects, events, WATCH -------------------------------------------------------


@pytest.fixture
def ip() -> InProcess:
    return InProcess()


def effects(ip: InProcess, *cmds: tuple[Any, ...]) -> list[list[bytes]]:
    sink = ip.record()
    for cmd in cmds:
        ip.call(*cmd)
    out = sink.commands
    if out and out[0] == [b"SELECT", b"0"]:
        out = out[1:]
    return out


def test_effects_follow_the_propagation_spec(ip: InProcess) -> None:
    assert effects(ip, ("PFADD", "h", "a", "b")) == [[b"PFADD", b"h", b"a", b"b"]]
    assert effects(ip, ("PFADD", "h", "a")) == []
    assert effects(ip, ("PFADD", "h")) == []
    assert effects(ip, ("PFCOUNT", "h")) == [[b"PFCOUNT", b"h"]]  # cache refreshed
    assert effects(ip, ("PFCOUNT", "h")) == []  # cache valid
    assert effects(ip, ("PFCOUNT", "h", "nokey")) == []  # several keys: nothing cached
    assert effects(ip, ("PFCOUNT", "nokey")) == []
    assert effects(ip, ("PFMERGE", "m", "h")) == [[b"PFMERGE", b"m", b"h"]]
    assert effects(ip, ("PFMERGE", "m")) == [[b"PFMERGE", b"m"]]
    assert effects(ip, ("PFDEBUG", "ENCODING", "m"), ("PFDEBUG", "DECODE", "m")) == []
    assert effects(ip, ("PFDEBUG", "TODENSE", "m")) == [[b"PFDEBUG", b"TODENSE", b"m"]]
    assert effects(ip, ("PFDEBUG", "TODENSE", "m")) == []
    assert effects(ip, ("PFDEBUG", "GETREG", "h")) == [[b"PFDEBUG", b"GETREG", b"h"]]
    assert effects(ip, ("PFDEBUG", "GETREG", "h")) == []


def test_failed_commands_record_nothing(ip: InProcess) -> None:
    ip.call("SET", "s", "not an hll")
    ip.call("SET", "bad", SPARSE_HDR + xzero(100))
    cmds = [("PFADD", "s", "a"), ("PFCOUNT", "s"), ("PFMERGE", "s"), ("PFMERGE", "x", "s"),
            ("PFADD", "bad", "a"), ("PFCOUNT", "bad"), ("PFMERGE", "x", "bad"), ("PFDEBUG", "TODENSE", "bad")]
    sink = ip.record()
    for cmd in cmds:
        assert isinstance(ip.call(*cmd), Err), cmd
    assert sink.commands == []
    assert ip.call("EXISTS", "x") == 0


def test_pfadd_on_an_expired_key_records_the_del_first(ip: InProcess) -> None:
    ip.call("PFADD", "h", "a")
    ip.srv.dbs[0].expires[b"h"] = 1
    assert effects(ip, ("PFADD", "h", "b")) == [[b"MULTI"], [b"DEL", b"h"], [b"PFADD", b"h", b"b"], [b"EXEC"]]
    assert ip.call("PFCOUNT", "h") == 1


def test_dirty_counts_every_changed_register(ip: InProcess) -> None:
    srv = ip.srv
    d0 = srv.dirty
    ip.call("PFADD", "h", element_for(1, 1), element_for(2, 2), element_for(2, 1))
    assert srv.dirty - d0 == 1 + 2  # the creation, then two registers
    d0 = srv.dirty
    ip.call("PFADD", "h", element_for(1, 3), element_for(5, 1), element_for(5, 1))
    assert srv.dirty - d0 == 2
    d0 = srv.dirty
    ip.call("PFCOUNT", "h")
    ip.call("PFCOUNT", "h")
    ip.call("PFMERGE", "h")
    assert srv.dirty - d0 == 2


def test_keyspace_events(ip: InProcess) -> None:
    got: list[tuple[int, bytes, bytes]] = []
    ip.srv.cfg.notify_keyspace_events = (1 << 14) - 1
    ip.srv.notify = lambda cls, event, key, dbid: got.append((cls, event, key))  # type: ignore[method-assign]
    string_cls = ip.srv.NOTIFY_STRING
    new_cls = ip.srv.NOTIFY_NEW
    ip.call("PFADD", "h", "a")
    assert got == [(new_cls, b"new", b"h"), (string_cls, b"pfadd", b"h")]
    got.clear()
    ip.call("PFADD", "h", "a")
    ip.call("PFCOUNT", "h")
    ip.call("PFDEBUG", "TODENSE", "h")
    assert got == []
    ip.call("PFMERGE", "h")
    ip.call("PFMERGE", "m", "h")
    miss_cls = ip.srv.NOTIFY_KEY_MISS  # PFMERGE reads its destination first
    assert got == [(string_cls, b"pfadd", b"h"), (miss_cls, b"keymiss", b"m"), (new_cls, b"new", b"m"),
                   (string_cls, b"pfadd", b"m")]


@pytest.mark.parametrize(
    "cmd, touched",
    [
        (("PFADD", "h", "a"), False),
        (("PFADD", "h"), False),
        (("PFADD", "h", "new element"), True),
        (("PFCOUNT", "h"), True),
        (("PFCOUNT", "h", "h"), False),
        (("PFMERGE", "h"), True),
        (("PFMERGE", "other", "h"), False),
        (("PFDEBUG", "TODENSE", "h"), False),
        (("PFDEBUG", "GETREG", "h"), False),
        (("PFDEBUG", "DECODE", "h"), False),
    ],
)
def test_watch(ip: InProcess, cmd: tuple[str, ...], touched: bool) -> None:
    ip.call("PFADD", "h", "a")
    ip.call("WATCH", "h")
    ip.call(*cmd, client=ip.new_client())
    assert ip.client.dirty_cas is touched


def test_in_place_updates_keep_the_ttl_and_the_value_object(ip: InProcess) -> None:
    ip.call("PFADD", "h", "a")
    ip.call("PEXPIRE", "h", "100000")
    when = ip.srv.dbs[0].expires[b"h"]
    for cmd in (("PFADD", "h", "b"), ("PFCOUNT", "h"), ("PFMERGE", "h"), ("PFDEBUG", "TODENSE", "h"),
                ("PFADD", "h", "c")):
        ip.call(*cmd)
        assert ip.srv.dbs[0].expires.get(b"h") == when, cmd
    v = ip.srv.dbs[0].data[b"h"]
    assert type(v) is bytearray and len(v) == H.HLL_DENSE_SIZE
    assert ip.call("PFCOUNT", "h") == 3
    got = ip.call("GET", "h")
    assert type(got) is bytes and got == bytes(v)


def test_get_and_set_interoperate(ip: InProcess) -> None:
    ip.call("PFADD", "h", *[b"e%d" % i for i in range(500)])
    blob = ip.call("GET", "h")
    assert ip.call("SET", "copy", blob) == OK
    assert ip.call("OBJECT", "ENCODING", "copy") == b"raw"
    assert ip.call("PFCOUNT", "copy") == ip.call("PFCOUNT", "h")
    assert ip.call("PFCOUNT", "copy", "h") == ip.call("PFCOUNT", "h")
    assert ip.call("SET", "emb", H.EMPTY_SPARSE) == OK
    assert ip.call("OBJECT", "ENCODING", "emb") == b"embstr"
    assert ip.call("PFCOUNT", "emb") == 0
    assert ip.call("OBJECT", "ENCODING", "emb") == b"raw"


def test_errors(ip: InProcess) -> None:
    ip.call("SET", "s", "x" * 40)
    assert ip.call("PFADD", "s", "a") == NOT_HLL
    assert ip.call("PFCOUNT", "s", "t") == NOT_HLL
    ip.call("INCR", "n")  # an integer-encoded string
    assert ip.call("PFADD", "n", "a") == NOT_HLL
    assert ip.call("PFCOUNT", "n") == NOT_HLL
    assert ip.call("PFMERGE", "x", "n") == NOT_HLL
    assert ip.call("GET", "n") == b"1"
    assert ip.call("PFDEBUG", "GETREG", "nokey") == Err("ERR The specified key does not exist")
    ip.call("PFADD", "h", "a")
    assert ip.call("PFDEBUG", "what", "h") == Err("ERR Unknown PFDEBUG subcommand 'what'")
    ip.call("PFDEBUG", "TODENSE", "h")
    assert ip.call("PFDEBUG", "DECODE", "h") == Err("ERR HLL encoding is not sparse")
    ip.call("SET", "bad", SPARSE_HDR + xzero(100))
    assert ip.call("PFCOUNT", "bad") == INVALIDOBJ
    assert ip.call("PFCOUNT", "bad", "h") == INVALIDOBJ
    assert ip.call("PFMERGE", "x", "bad") == INVALIDOBJ
    assert ip.call("PFDEBUG", "GETREG", "bad") == INVALIDOBJ
    assert ip.call("PFSELFTEST") == OK


# -- against redis-server ----------------------------------------------------------------------


def _mutate(rng: random.Random, v: bytes) -> bytes:
    b = bytearray(v)
    kind = rng.random()
    if kind < 0.5:
        pos = rng.randrange(16, len(b))
        b[pos] = rng.randrange(256)
    elif kind < 0.6:
        del b[rng.randrange(16, len(b)):]
    elif kind < 0.7:
        b += bytes([rng.randrange(256)])
    elif kind < 0.8:
        b[15] &= 0x7F
    elif kind < 0.9:
        b[4] = rng.choice([0, 1, 2])
    else:
        b[rng.randrange(5, 16)] = rng.randrange(256)
    return bytes(b)


@pytest.mark.interop
def test_random_commands_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    """A seeded mix of PFADD/PFCOUNT/PFMERGE/PFDEBUG, GETs, corrupted
    values (a stored value with bytes changed) and hll-sparse-max-bytes
    changes: replies and every key's bytes stay identical."""
    rng = random.Random(20240101)
    conns = [redis.conn(), ambry.conn()]
    keys = [b"k0", b"k1", b"k2"]
    try:
        for c in conns:
            c.command("CONFIG", "SET", "hll-sparse-max-bytes", "3000")
        for step in range(600):
            k = rng.choice(keys)
            op = rng.random()
            if op < 0.45:
                n = rng.choice([1, 2, 5, 30, 300])
                eles = [rng.randbytes(rng.choice([0, 1, 7, 8, 9, 24])) if rng.random() < 0.5 else
                        b"%d" % rng.randrange(100000) for _ in range(n)]
                if rng.random() < 0.05:
                    eles.append(element_for(rng.randrange(16384), rng.choice([33, 40, 51])))
                cmd: tuple[Any, ...] = ("PFADD", k, *eles)
            elif op < 0.55:
                cmd = ("PFCOUNT", *rng.sample(keys, rng.choice([1, 1, 2, 3])))
            elif op < 0.63:
                cmd = ("PFMERGE", k, *rng.sample(keys, rng.choice([0, 1, 2])))
            elif op < 0.70:
                cmd = ("PFDEBUG", rng.choice(["DECODE", "ENCODING", "TODENSE", "GETREG"]), k)
            elif op < 0.73:
                cmd = ("CONFIG", "SET", "hll-sparse-max-bytes", str(rng.choice([0, 30, 300, 3000, 6000])))
            elif op < 0.83:
                v = conns[0].command("GET", k)
                if not v.startswith(b"$") or v.startswith(b"$-1"):
                    continue
                body = v[v.index(b"\r\n") + 2 : -2]
                if len(body) < 17 or body[4] != 1:
                    continue
                cmd = ("SET", k, _mutate(rng, body))
            elif op < 0.86:
                cmd = ("OBJECT", "ENCODING", k)
            elif op < 0.88:
                cmd = ("DEL", k)
            else:
                cmd = ("APPEND", k, rng.randbytes(2))
            replies = [c.command(*cmd) for c in conns]
            assert replies[0] == replies[1], (step, cmd[:3], replies)
            for key in keys:
                values = [c.command("GET", key) for c in conns]
                assert values[0] == values[1], (step, cmd[:3], key)
    finally:
        for c in conns:
            c.command("CONFIG", "SET", "hll-sparse-max-bytes", "3000")
            c.close()


@pytest.mark.interop
def test_watch_and_dirty_match_redis(redis: ServerProcess, ambry: ServerProcess) -> None:
    """Which PF commands abort a WATCHing transaction, and how much each
    adds to rdb_changes_since_last_save."""
    cases: list[tuple[Any, ...]] = [
        ("PFADD", "h", "a"), ("PFADD", "h", "zz", "yy"), ("PFCOUNT", "h"), ("PFCOUNT", "h"),
        ("PFCOUNT", "h", "h"), ("PFMERGE", "h"), ("PFMERGE", "h2", "h"), ("PFDEBUG", "ENCODING", "h"),
        ("PFDEBUG", "TODENSE", "h"), ("PFDEBUG", "GETREG", "h2"), ("PFDEBUG", "GETREG", "h2"),
        ("PFADD", "new", element_for(1, 1), element_for(2, 2), element_for(2, 1)),
    ]

    def changes(c: Any) -> int:
        info = c.command("INFO", "persistence").decode()
        return int(info.split("rdb_changes_since_last_save:")[1].split("\r\n")[0])

    results = []
    for server in (redis, ambry):
        watcher, other = server.conn(), server.conn()
        out = []
        try:
            for cmd in cases:
                other.command("DEL", "h", "h2", "new")
                other.command("PFADD", "h", "a", "b")
                other.command("PFADD", "h2", "c")
                watcher.command("WATCH", "h", "h2", "new")
                before = changes(other)
                reply = other.command(*cmd)
                delta = changes(other) - before
                watcher.command("MULTI")
                watcher.command("PING")
                out.append((cmd, reply, delta, watcher.command("EXEC")))
        finally:
            watcher.close()
            other.close()
        results.append(out)
    assert results[0] == results[1]


@pytest.mark.interop
@pytest.mark.parametrize("regs, expected", ESTIMATES, ids=[str(e) for _r, e in ESTIMATES])
def test_forged_dense_values_count_like_redis(
    redis: ServerProcess, ambry: ServerProcess, regs: list[int], expected: int
) -> None:
    blob = dense_blob(regs)
    for server in (redis, ambry):
        c = server.conn()
        try:
            c.command("SET", "d", blob)
            signed = expected - (1 << 64) if expected >= 1 << 63 else expected
            assert c.command("PFCOUNT", "d") == b":%d\r\n" % signed
            assert c.command("PFCOUNT", "d", "d") == b":%d\r\n" % signed
            cache = (expected & ((1 << 64) - 1)).to_bytes(8, "little")
            assert c.command("GETRANGE", "d", "8", "15") == b"$8\r\n" + cache + b"\r\n"
        finally:
            c.close()
