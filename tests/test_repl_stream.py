"""The replica's command-stream framing (replication/stream.py): commands and
the exact number of stream bytes each occupied, however the input is split
(replication.md §1, §5)."""

from __future__ import annotations

import pytest
from ambry.replication.stream import (
    PROTO_INLINE_MAX_SIZE,
    StreamParser,
    StreamProtocolError,
    encode_command,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# §20: what a 7.0.15 primary sent after a full sync, and the GETACK after WAIT.
SELECT0 = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
SET_X_1 = b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n"
GETACK = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n"
PING = b"*1\r\n$4\r\nping\r\n"


def drain(p: StreamParser) -> list[tuple[list[bytes], int]]:
    out = []
    while (r := p.next_command()) is not None:
        out.append(r)
    return out


def parse_split(data: bytes, cuts: list[int]) -> list[tuple[list[bytes], int]]:
    """Feed ``data`` cut at the given positions, draining after every piece."""
    p = StreamParser()
    out = []
    prev = 0
    for c in [*sorted(cuts), len(data)]:
        p.feed(data[prev:c])
        out += drain(p)
        prev = c
    return out


def test_transcript_byte_counts() -> None:
    """SELECT 0 + SET x 1 is 50 bytes and GETACK 37 (ACK 1050 at offset 1000)."""
    p = StreamParser()
    p.feed(SELECT0 + SET_X_1 + GETACK + PING)
    got = drain(p)
    assert got == [
        ([b"SELECT", b"0"], 23),
        ([b"SET", b"x", b"1"], 27),
        ([b"REPLCONF", b"GETACK", b"*"], 37),
        ([b"ping"], 14),
    ]
    assert got[0][1] + got[1][1] == 50
    assert p.next_command() is None
    assert p.buffered == 0


def test_empty_lines_are_counted_but_run_nothing() -> None:
    p = StreamParser()
    p.feed(b"\n\r\n" + PING + b"\n")
    assert drain(p) == [([], 1), ([], 2), ([b"ping"], 14), ([], 1)]


def test_zero_and_negative_multibulk_count_are_empty_commands() -> None:
    """Redis consumes ``*0`` and ``*-1`` and runs nothing."""
    p = StreamParser()
    p.feed(b"*0\r\n*-1\r\n" + PING)
    assert drain(p) == [([], 4), ([], 5), ([b"ping"], 14)]


def test_binary_payloads_with_crlf_inside() -> None:
    value = b"a\r\nb\n\r*3\r\n$1\r\n\x00\xff"
    data = encode_command([b"SET", b"k\r\n", value])
    p = StreamParser()
    p.feed(data)
    assert drain(p) == [([b"SET", b"k\r\n", value], len(data))]


def test_empty_argument() -> None:
    data = encode_command([b"SET", b"", b""])
    p = StreamParser()
    p.feed(data)
    assert drain(p) == [([b"SET", b"", b""], len(data))]


def test_payload_terminator_is_skipped_unchecked_like_redis() -> None:
    """processMultibulkBuffer skips the two bytes after a payload unread."""
    p = StreamParser()
    p.feed(b"*1\r\n$4\r\npingXY" + PING)
    assert drain(p) == [([b"ping"], 14), ([b"ping"], 14)]


def test_long_lengths_beyond_the_small_table() -> None:
    big = bytes(range(256)) * 40  # 10240 bytes
    cmds = [[b"SET", b"k" * 5000, big], [b"RPUSH", b"l", *[b"%d" % i for i in range(5000)]]]
    data = b"".join(encode_command(c) for c in cmds)
    p = StreamParser()
    p.feed(data)
    assert drain(p) == [(c, len(encode_command(c))) for c in cmds]


def test_split_at_every_position() -> None:
    data = SELECT0 + b"\n" + SET_X_1 + b"\r\n" + GETACK + b"*0\r\n" + encode_command([b"DEL", b"a\r\nb"])
    whole = parse_split(data, [])
    assert sum(n for _, n in whole) == len(data)
    for k in range(len(data) + 1):
        assert parse_split(data, [k]) == whole, k
    for k in range(0, len(data), 3):
        for j in range(k, len(data), 7):
            assert parse_split(data, [k, j]) == whole, (k, j)


def test_byte_at_a_time() -> None:
    data = SELECT0 + SET_X_1 + b"\n" + GETACK + PING
    p = StreamParser()
    got = []
    for i in range(len(data)):
        p.feed(data[i : i + 1])
        got += drain(p)
    assert got == parse_split(data, [])


def test_feeding_without_draining_in_between() -> None:
    data = b"".join(encode_command([b"SET", b"key:%d" % i, b"v" * (i % 50)]) for i in range(300))
    p = StreamParser()
    for i in range(0, len(data), 37):
        p.feed(data[i : i + 37])
    got = drain(p)
    assert len(got) == 300
    assert sum(n for _, n in got) == len(data)
    assert got[123][0] == [b"SET", b"key:123", b"v" * 23]


def test_large_bulk_in_many_small_pieces() -> None:
    value = bytes(range(256)) * 8192  # 2 MiB
    data = encode_command([b"SET", b"big", value]) + PING
    p = StreamParser()
    got = []
    for i in range(0, len(data), 1000):
        p.feed(data[i : i + 1000])
        got += drain(p)
        if not got:
            # everything fed so far is still waiting for the payload's end
            assert p.buffered == min(i + 1000, len(data))
    assert got == [([b"SET", b"big", value], len(data) - 14), ([b"ping"], 14)]


def test_many_arguments_across_many_feeds() -> None:
    argv = [b"RPUSH", b"list", *[b"element-%d" % i for i in range(20000)]]
    data = encode_command(argv)
    p = StreamParser()
    got = []
    for i in range(0, len(data), 4096):
        p.feed(data[i : i + 4096])
        got += drain(p)
    assert got == [(argv, len(data))]


def test_buffered_counts_partial_command() -> None:
    p = StreamParser()
    p.feed(SET_X_1[:10])
    assert p.next_command() is None
    assert p.buffered == 10
    p.feed(SET_X_1[10:] + PING[:3])
    assert p.next_command() == ([b"SET", b"x", b"1"], 27)
    assert p.next_command() is None
    assert p.buffered == 3


def test_feed_copies_mutable_buffers() -> None:
    buf = bytearray(SET_X_1)
    p = StreamParser()
    p.feed(buf)
    buf[:] = b"\x00" * len(buf)
    p.feed(memoryview(PING))
    assert drain(p) == [([b"SET", b"x", b"1"], 27), ([b"ping"], 14)]


def test_encode_command_is_canonical() -> None:
    assert encode_command([b"SELECT", b"0"]) == SELECT0
    assert encode_command([b"SET", b"x", b"1"]) == SET_X_1
    assert encode_command([b"REPLCONF", b"GETACK", b"*"]) == GETACK
    assert encode_command([]) == b"*0\r\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PING\r\n", "Master using the inline protocol. Desync?"),
        (b" \r\n", "Master using the inline protocol. Desync?"),
        (b"\r\r\n", "Master using the inline protocol. Desync?"),
        (b"*abc\r\n", "Protocol error: invalid multibulk length"),
        (b"*01\r\n$1\r\na\r\n", "Protocol error: invalid multibulk length"),
        (b"*+1\r\n$1\r\na\r\n", "Protocol error: invalid multibulk length"),
        (b"*3000000000\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\n$4\r\nping\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
        (b"*2\r\n$1\r\na\r\n*1\r\n", "Protocol error: expected '$', got '*'"),
        (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$04\r\nping\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$x\r\n", "Protocol error: invalid bulk length"),
        (b"A" * (PROTO_INLINE_MAX_SIZE + 1), "Protocol error: too big inline request"),
        (b"*" + b"1" * (PROTO_INLINE_MAX_SIZE + 1), "Protocol error: too big mbulk count string"),
        (b"*1\r\n$" + b"1" * (PROTO_INLINE_MAX_SIZE + 1), "Protocol error: too big bulk count string"),
    ],
)
def test_protocol_errors(data: bytes, message: str) -> None:
    p = StreamParser()
    p.feed(PING + data)
    assert p.next_command() == ([b"ping"], 14)
    with pytest.raises(StreamProtocolError) as e:
        p.next_command()
    assert str(e.value) == message
    # The parser stays failed: the link must be dropped.
    p.feed(PING)
    with pytest.raises(StreamProtocolError):
        p.next_command()


def test_protocol_error_found_when_split_byte_by_byte() -> None:
    p = StreamParser()
    with pytest.raises(StreamProtocolError, match="expected '\\$', got ':'"):
        for b in b"*2\r\n$1\r\na\r\n:5\r\n":
            p.feed(bytes([b]))
            drain(p)


def test_long_line_below_the_limit_still_waits() -> None:
    """An incomplete count line shorter than 64 KiB is just incomplete."""
    p = StreamParser()
    p.feed(b"*" + b"1" * 100)
    assert p.next_command() is None


argvs = st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(cmds=argvs, keepalives=st.lists(st.booleans(), max_size=12), cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_round_trip_any_split(cmds: list[list[bytes]], keepalives: list[bool], cuts: list[int]) -> None:
    parts: list[bytes] = []
    expected: list[tuple[list[bytes], int]] = []
    for i, argv in enumerate(cmds):
        if i < len(keepalives) and keepalives[i]:
            parts.append(b"\r\n")
            expected.append(([], 2))
        enc = encode_command(argv)
        parts.append(enc)
        expected.append((argv, len(enc)))
    data = b"".join(parts)
    got = parse_split(data, [c % (len(data) + 1) for c in cuts])
    assert got == expected
    assert sum(n for _, n in got) == len(data)
