"""Every ``tests/corpus/*.txt`` against real redis-server and Ambry, RESP2 and RESP3.

Each file is one test case per protocol; the replies of every line must be
identical byte for byte (or per the line's ``~``/``?`` mode, see
differential.py).  All mismatches of a file are reported together.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServerProcess
from differential import Runner, format_mismatches, parse_corpus

CORPUS = Path(__file__).resolve().parent / "corpus"
FILES = sorted(CORPUS.glob("*.txt"))

# Commands whose effects outlive FLUSHALL/CONFIG RESETSTAT (configuration,
# debug switches, users, pauses, roles): after a file using them both
# servers are restarted so the next file starts from defaults.
_GLOBAL = {
    (b"config", b"set"),
    (b"debug", None),
    (b"acl", None),
    (b"client", b"pause"),
    (b"client", b"no-evict"),
    (b"client", b"no-touch"),
    (b"replicaof", None),
    (b"slaveof", None),
    (b"module", None),
}


def _touches_global_state(path: Path) -> bool:
    for ln in parse_corpus(path):
        if ln.kind != "cmd":
            continue
        cmd = ln.args[0].lower()
        sub = ln.args[1].lower() if len(ln.args) > 1 else None
        if (cmd, None) in _GLOBAL or (cmd, sub) in _GLOBAL:
            return True
    return False


@pytest.mark.interop
@pytest.mark.parametrize("resp", [2, 3], ids=["resp2", "resp3"])
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus(path: Path, resp: int, redis: ServerProcess, ambry: ServerProcess) -> None:
    """The file's replies from Ambry equal redis-server's."""
    runner = Runner(redis.addr, ambry.addr)
    try:
        mism = runner.run_file(path, resp3=resp == 3)
    finally:
        ambry.check_alive()
        redis.check_alive()
        if _touches_global_state(path):
            redis.restart()
            ambry.restart()
    if mism:
        pytest.fail(format_mismatches(path, f"RESP{resp}", mism), pytrace=False)


def test_corpus_files_parse() -> None:
    """Every corpus line is a command or a known directive."""
    bad = []
    for path in FILES:
        for ln in parse_corpus(path):
            if ln.kind == "error":
                bad.append(f"{path.name}:{ln.lineno}: {ln.raw.decode()}: {ln.text}")
    assert not bad, "\n".join(bad)


# -- the runner itself ---------------------------------------------------------------

RESP_SAMPLES = [
    b"+OK\r\n",
    b"-ERR x\r\n",
    b":-12\r\n",
    b"$-1\r\n",
    b"$0\r\n\r\n",
    b"$5\r\na\r\nbc\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
    b"_\r\n",
    b",3.5\r\n",
    b"#t\r\n",
    b"(12345678901234567890\r\n",
    b"!3\r\nERR\r\n",
    b"=7\r\ntxt:abc\r\n",
    b"%1\r\n+k\r\n~2\r\n:1\r\n:2\r\n",
    b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
    b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
]


@pytest.mark.parametrize("raw", RESP_SAMPLES, ids=[repr(r[:1])[2:-1] + str(i) for i, r in enumerate(RESP_SAMPLES)])
def test_reply_framing(raw: bytes) -> None:
    """Each RESP2/RESP3 reply is recognised whole, and never from a prefix."""
    from differential import parse_one, reply_end

    assert reply_end(raw + b"+NEXT\r\n") == len(raw)
    for cut in range(len(raw)):
        assert reply_end(raw[:cut]) is None
    parse_one(raw)


def test_unordered_compares_multisets_one_level_deep() -> None:
    from differential import _equal

    assert _equal(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", b"*2\r\n$1\r\nb\r\n$1\r\na\r\n", "unordered")
    assert not _equal(b"*2\r\n$1\r\na\r\n$1\r\na\r\n", b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", "unordered")
    # [cursor, [keys]]: the inner array is a multiset too
    a = b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n"
    b = b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\ny\r\n$1\r\nx\r\n"
    assert _equal(a, b, "unordered")
    assert not _equal(a, b, "exact")
    # a set and an array with the same members are different types
    assert not _equal(b"~1\r\n:1\r\n", b"*1\r\n:1\r\n", "unordered")
    assert _equal(b":1\r\n", b":2\r\n", "type")
    assert not _equal(b":1\r\n", b"$1\r\n1\r\n", "type")


def test_corpus_line_forms(tmp_path: Path) -> None:
    from differential import parse_corpus

    f = tmp_path / "x.txt"
    f.write_bytes(
        b"# comment\n\nSET k \"a b\"\r\n~ SMEMBERS s\n? TIME\n!sleep 0.1\n!raw b\"*1\\r\\n\"\n"
        b"!reconnect\nSET \"unbalanced\n!bogus\n!raw notbytes\n"
    )
    lines = parse_corpus(f)
    assert [(ln.lineno, ln.kind, ln.mode) for ln in lines] == [
        (3, "cmd", "exact"), (4, "cmd", "unordered"), (5, "cmd", "type"), (6, "sleep", "exact"),
        (7, "raw", "exact"), (8, "reconnect", "exact"), (9, "error", "exact"), (10, "error", "exact"),
        (11, "error", "exact"),
    ]
    assert lines[0].args == [b"SET", b"k", b"a b"]
    assert lines[1].args == [b"SMEMBERS", b"s"]
    assert lines[4].raw == b"*1\r\n"


@pytest.fixture(scope="module")
def redis_twin() -> Iterator[ServerProcess]:
    """A second real redis-server, to check the corpus against itself."""
    from conftest import _Registry, have_redis

    if not have_redis():
        pytest.skip("redis-server is not installed")
    reg = _Registry()
    yield reg.start("redis")
    reg.finish()


@pytest.mark.interop
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_is_deterministic_on_redis(path: Path, redis: ServerProcess, redis_twin: ServerProcess) -> None:
    """Two real redis-servers agree on every line (RESP3): a line that differs
    here needs ``~`` or ``?``, whatever Ambry does."""
    redis_twin.reset()
    try:
        mism = Runner(redis.addr, redis_twin.addr).run_file(path, resp3=True)
    finally:
        if _touches_global_state(path):
            redis.restart()
            redis_twin.restart()
    if mism:
        pytest.fail(format_mismatches(path, "RESP3, redis vs redis", mism), pytrace=False)
