"""The replica side of the replication handshake (replication/handshake.py),
driven with the bytes real primaries send (replication.md §2-§4, transcripts
of §20), and once against a real redis-server primary."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from ambry.replication.handshake import (
    Continue,
    Event,
    Failed,
    FullResync,
    HandshakeConfig,
    Keepalive,
    Legacy,
    RdbBegin,
    RdbChunk,
    RdbEnd,
    ReplicaHandshake,
    Send,
    StreamData,
)
from ambry.replication.stream import StreamParser
from hypothesis import given, settings
from hypothesis import strategies as st

REPLID = "afe45e8f3e043f9ad382ef14f6571e2814720a45"
FAKE_ID = "0123456789abcdef0123456789abcdef01234567"
MARK = b"d08a6c47baad946db3b9e55d299ddaaea0de1160"
RDB = b"REDIS0010\xfa\tredis-ver\x067.0.15\xff" + bytes(range(256)) + b"\r\n\n" + MARK[:39] + b"x" + MARK[:20]

PING = b"*1\r\n$4\r\nPING\r\n"
REPLCONF_PORT = b"*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$5\r\n24003\r\n"
REPLCONF_CAPA = b"*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n"
PSYNC_NEW = b"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n"
STREAM = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$5\r\nafter\r\n$1\r\n1\r\n*1\r\n$4\r\nping\r\n"


def normalize(events: list[Event]) -> list[Event]:
    """Merge adjacent RDB / stream chunks: their cutting is not significant."""
    out: list[Event] = []
    for e in events:
        if isinstance(e, RdbChunk) and not e.data:
            continue
        if out and isinstance(e, RdbChunk) and isinstance(out[-1], RdbChunk):
            out[-1] = RdbChunk(out[-1].data + e.data)
        elif out and isinstance(e, StreamData) and isinstance(out[-1], StreamData):
            out[-1] = StreamData(out[-1].data + e.data)
        else:
            out.append(e)
    return out


def started(**kw: object) -> ReplicaHandshake:
    """A machine past start(), its PING checked."""
    hs = ReplicaHandshake(HandshakeConfig(listening_port=24003, **kw))  # type: ignore[arg-type]
    assert hs.state == "connecting"
    assert hs.start() == [Send(PING)]
    assert hs.state == "handshake"
    return hs


def at_psync_reply(**kw: object) -> ReplicaHandshake:
    """A machine that has sent PSYNC ? -1 and waits for its reply."""
    hs = started(**kw)
    assert hs.feed(b"+PONG\r\n") == [Send(REPLCONF_PORT + REPLCONF_CAPA)]
    assert hs.feed(b"+OK\r\n+OK\r\n") == [Send(PSYNC_NEW)]
    return hs


# -- §20 transcripts ------------------------------------------------------------


def test_transcript_diskless_from_real_primary() -> None:
    """7.0.15 primary, capa eof: five keepalives, then FULLRESYNC and $EOF."""
    hs = started()
    assert hs.feed(b"+PONG\r\n") == [Send(REPLCONF_PORT + REPLCONF_CAPA)]
    # PSYNC is written only once both REPLCONF replies are in.
    assert hs.feed(b"+OK\r\n") == []
    assert hs.feed(b"+OK\r\n") == [Send(PSYNC_NEW)]
    for _ in range(5):
        assert hs.feed(b"\n") == [Keepalive()]
    assert hs.state == "handshake"
    assert hs.feed(b"\n+FULLRESYNC " + REPLID.encode() + b" 0\r\n") == [Keepalive(), FullResync(REPLID, 0)]
    assert hs.state == "sync"
    assert hs.transfer_size == -1
    events = hs.feed(b"$EOF:" + MARK + b"\r\n" + RDB + MARK)
    assert normalize(events) == [RdbBegin(None), RdbChunk(RDB), RdbEnd()]
    assert hs.state == "connected"
    assert hs.transfer_size == 0
    assert hs.transfer_read == len(RDB) + 40
    assert hs.feed(STREAM) == [StreamData(STREAM)]


def test_transcript_disk_transfer_from_real_primary() -> None:
    """capa psync2 only: ``$388`` and exactly 388 bytes, no CRLF after them."""
    rdb = (b"REDIS0010" + bytes(range(256)) * 2)[:388]
    hs = at_psync_reply()
    assert hs.feed(b"+FULLRESYNC " + REPLID.encode() + b" 82\r\n") == [FullResync(REPLID, 82)]
    assert hs.feed(b"$388\r\n") == [RdbBegin(388)]
    assert hs.transfer_size == 388
    assert normalize(hs.feed(rdb)) == [RdbChunk(rdb), RdbEnd()]
    assert hs.transfer_read == 388
    assert hs.feed(STREAM) == [StreamData(STREAM)]


def test_transcript_fake_primary_keepalives_around_fullresync() -> None:
    """The fake primary of §20: PSYNC <own replid> 1, keepalive newlines on
    both sides of +FULLRESYNC, then the disk form with the stream right after
    the payload in the same chunk."""
    own = "9" * 40
    hs = started(psync_replid=own, psync_offset=1)
    hs.feed(b"+PONG\r\n")
    psync = b"*3\r\n$5\r\nPSYNC\r\n$40\r\n" + own.encode() + b"\r\n$1\r\n1\r\n"
    assert hs.feed(b"+OK\r\n+OK\r\n") == [Send(psync)]
    rdb = b"R" * 61
    select_set = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n"
    assert len(select_set) == 50
    data = b"\n+FULLRESYNC " + FAKE_ID.encode() + b" 1000\r\n\n$61\r\n" + rdb + select_set
    assert hs.feed(data) == [
        Keepalive(),
        FullResync(FAKE_ID, 1000),
        Keepalive(),
        RdbBegin(61),
        RdbChunk(rdb),
        RdbEnd(),
        StreamData(select_set),
    ]


def test_transcript_fake_primary_eof_form() -> None:
    hs = at_psync_reply()
    mark = b"f" * 40
    rdb = b"REDIS0011" + b"\x00" * 52
    events = hs.feed(b"\n+FULLRESYNC " + FAKE_ID.encode() + b" 1000\r\n\n$EOF:" + mark + b"\r\n" + rdb + mark)
    assert normalize(events) == [
        Keepalive(), FullResync(FAKE_ID, 1000), Keepalive(), RdbBegin(None), RdbChunk(rdb), RdbEnd(),
    ]


def test_crlf_keepalives_too() -> None:
    hs = at_psync_reply()
    assert hs.feed(b"\r\n\r\n+FULLRESYNC " + REPLID.encode() + b" 7\r\n\r\n$3\r\nabc") == [
        Keepalive(), Keepalive(), FullResync(REPLID, 7), Keepalive(), RdbBegin(3), RdbChunk(b"abc"), RdbEnd(),
    ]


# -- the EOF mark ----------------------------------------------------------------


def eof_transfer() -> bytes:
    return b"+FULLRESYNC " + REPLID.encode() + b" 0\r\n$EOF:" + MARK + b"\r\n" + RDB + MARK


def test_eof_mark_split_at_every_position() -> None:
    data = eof_transfer() + STREAM
    start = len(data) - len(STREAM) - len(RDB) - 40
    for k in range(start - 3, len(data) + 1):
        hs = at_psync_reply()
        events = hs.feed(data[:k]) + hs.feed(data[k:])
        assert normalize(events) == [
            FullResync(REPLID, 0), RdbBegin(None), RdbChunk(RDB), RdbEnd(), StreamData(STREAM),
        ], k


def test_eof_mark_one_byte_at_a_time_never_leaks_into_chunks() -> None:
    hs = at_psync_reply()
    events: list[Event] = []
    for b in eof_transfer():
        events += hs.feed(bytes([b]))
    chunks = [e.data for e in events if isinstance(e, RdbChunk)]
    assert b"".join(chunks) == RDB
    assert isinstance(events[-1], RdbEnd)


def test_eof_transfer_with_empty_payload() -> None:
    hs = at_psync_reply()
    events = hs.feed(b"+FULLRESYNC " + REPLID.encode() + b" 0\r\n$EOF:" + MARK + b"\r\n" + MARK)
    assert normalize(events) == [FullResync(REPLID, 0), RdbBegin(None), RdbEnd()]


def test_eof_mark_longer_than_40_uses_the_first_40() -> None:
    hs = at_psync_reply()
    hs.feed(b"+FULLRESYNC " + REPLID.encode() + b" 0\r\n")
    assert hs.feed(b"$EOF:" + MARK + b"extra\r\n") == [RdbBegin(None)]
    assert normalize(hs.feed(b"abc" + MARK)) == [RdbChunk(b"abc"), RdbEnd()]


def test_disk_payload_split_everywhere_then_stream() -> None:
    rdb = b"REDIS0009\r\n\n$$\x00" * 5
    data = b"+FULLRESYNC " + REPLID.encode() + b" 5\r\n$%d\r\n" % len(rdb) + rdb + STREAM
    for k in range(len(data) + 1):
        hs = at_psync_reply()
        events = hs.feed(data[:k]) + hs.feed(data[k:])
        assert normalize(events) == [
            FullResync(REPLID, 5), RdbBegin(len(rdb)), RdbChunk(rdb), RdbEnd(), StreamData(STREAM),
        ], k


def test_empty_disk_payload() -> None:
    hs = at_psync_reply()
    hs.feed(b"+FULLRESYNC " + REPLID.encode() + b" 5\r\n")
    assert hs.feed(b"$0\r\n" + STREAM) == [RdbBegin(0), RdbEnd(), StreamData(STREAM)]


# -- PING and AUTH ---------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [b"+PONG", b"+anything", b"-NOAUTH Authentication required.", b"-NOPERM this user has no permissions",
     b"-ERR operation not permitted"],
)
def test_ping_replies_that_let_the_handshake_go_on(reply: bytes) -> None:
    hs = started()
    assert hs.feed(reply + b"\r\n") == [Send(REPLCONF_PORT + REPLCONF_CAPA)]


@pytest.mark.parametrize("reply", [b"-ERR unknown command", b"-LOADING Redis is loading", b":1", b"$5"])
def test_other_ping_replies_fail(reply: bytes) -> None:
    hs = started()
    assert hs.feed(reply + b"\r\n") == [
        Failed(f"Error reply to PING from master: '{reply.decode()}'", False)
    ]
    assert hs.failed
    assert hs.feed(b"+OK\r\n") == []


def test_noauth_ping_reply_then_auth() -> None:
    hs = started(masterauth="s3cret")
    auth = b"*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n"
    assert hs.feed(b"-NOAUTH Authentication required.\r\n") == [Send(auth + REPLCONF_PORT + REPLCONF_CAPA)]
    assert hs.feed(b"+OK\r\n+OK\r\n") == []
    assert hs.feed(b"+OK\r\n") == [Send(PSYNC_NEW)]


def test_auth_with_masteruser() -> None:
    hs = started(masteruser="repl", masterauth="pw")
    auth = b"*3\r\n$4\r\nAUTH\r\n$4\r\nrepl\r\n$2\r\npw\r\n"
    assert hs.feed(b"+PONG\r\n") == [Send(auth + REPLCONF_PORT + REPLCONF_CAPA)]


def test_auth_error_fails() -> None:
    hs = started(masterauth="wrong")
    hs.feed(b"-NOAUTH Authentication required.\r\n")
    events = hs.feed(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+OK\r\n")
    assert events == [
        Failed("Unable to AUTH to MASTER: -WRONGPASS invalid username-password pair or user is disabled.", False)
    ]


def test_replconf_errors_are_ignored_and_announce_ip() -> None:
    hs = started(announce_ip="10.0.0.7")
    ip = b"*3\r\n$8\r\nREPLCONF\r\n$10\r\nip-address\r\n$8\r\n10.0.0.7\r\n"
    assert hs.feed(b"+PONG\r\n") == [Send(REPLCONF_PORT + ip + REPLCONF_CAPA)]
    assert hs.feed(b"-ERR Unrecognized REPLCONF option: listening-port\r\n") == []
    assert hs.feed(b"-ERR Unrecognized REPLCONF option: ip-address\r\n") == []
    assert hs.feed(b"-ERR Unrecognized REPLCONF option: capa\r\n") == [Send(PSYNC_NEW)]


def test_keepalives_while_waiting_for_replies() -> None:
    hs = started()
    assert hs.feed(b"\n+PONG\r\n\r\n+OK\r\n") == [Keepalive(), Send(REPLCONF_PORT + REPLCONF_CAPA), Keepalive()]
    assert hs.feed(b"+OK\r\n") == [Send(PSYNC_NEW)]


# -- PSYNC replies -----------------------------------------------------------------


def test_continue_without_id_and_stream_in_the_same_chunk() -> None:
    hs = started(psync_replid=REPLID, psync_offset=1001)
    hs.feed(b"+PONG\r\n")
    psync = b"*3\r\n$5\r\nPSYNC\r\n$40\r\n" + REPLID.encode() + b"\r\n$4\r\n1001\r\n"
    assert hs.feed(b"+OK\r\n+OK\r\n") == [Send(psync)]
    assert hs.feed(b"+CONTINUE\r\n" + STREAM) == [Continue(None), StreamData(STREAM)]
    assert hs.state == "connected"
    assert hs.feed(b"\n") == [StreamData(b"\n")]  # from here on, newlines are stream bytes


def test_continue_with_new_id() -> None:
    hs = at_psync_reply()
    assert hs.feed(b"\n+CONTINUE " + FAKE_ID.encode() + b"\r\n") == [Keepalive(), Continue(FAKE_ID)]


def test_continue_with_malformed_id_is_taken_as_no_id() -> None:
    hs = at_psync_reply()
    assert hs.feed(b"+CONTINUE abc\r\n") == [Continue(None)]


def test_failover_psync_has_fourth_argument() -> None:
    hs = started(psync_replid=REPLID, psync_offset=84, failover=True)
    hs.feed(b"+PONG\r\n")
    psync = b"*4\r\n$5\r\nPSYNC\r\n$40\r\n" + REPLID.encode() + b"\r\n$2\r\n84\r\n$8\r\nFAILOVER\r\n"
    assert hs.feed(b"+OK\r\n+OK\r\n") == [Send(psync)]
    assert hs.feed(b"+CONTINUE " + FAKE_ID.encode() + b"\r\n") == [Continue(FAKE_ID)]


def test_failover_target_rejecting_psync_fails_without_sync() -> None:
    hs = started(psync_replid=REPLID, psync_offset=84, failover=True)
    hs.feed(b"+PONG\r\n+OK\r\n+OK\r\n")
    events = hs.feed(b"-ERR PSYNC FAILOVER replid must match my replid.\r\n")
    assert events == [
        Failed("Failover target rejected psync request (reply: -ERR PSYNC FAILOVER replid must match my replid.)",
               False)
    ]


@pytest.mark.parametrize(
    "reply",
    [b"-NOMASTERLINK Can't SYNC while not connected with my master", b"-LOADING Redis is loading the dataset"],
)
def test_try_later_replies(reply: bytes) -> None:
    hs = at_psync_reply()
    assert hs.feed(reply + b"\r\n") == [
        Failed(f"Master is currently unable to PSYNC but should be in the future: {reply.decode()}", True)
    ]


@pytest.mark.parametrize("reply", [b"-ERR unknown command 'PSYNC'", b"-ERR SYNC and PSYNC are invalid with pending output", b"+OK"])
def test_sync_fallback(reply: bytes) -> None:
    hs = at_psync_reply()
    assert hs.feed(reply + b"\r\n") == [Send(b"SYNC\r\n"), Legacy()]
    assert hs.legacy
    assert hs.state == "sync"
    # No FULLRESYNC line: keepalives, then the "$" line directly.
    assert hs.feed(b"\n\n$5\r\nhello" + STREAM) == [
        Keepalive(), Keepalive(), RdbBegin(5), RdbChunk(b"hello"), RdbEnd(), StreamData(STREAM),
    ]


@pytest.mark.parametrize(
    "line",
    [b"+FULLRESYNC", b"+FULLRESYNC abc 0", b"+FULLRESYNC " + REPLID.encode(), b"+FULLRESYNC " + REPLID.encode() + b" x"],
)
def test_malformed_fullresync_fails(line: bytes) -> None:
    hs = at_psync_reply()
    assert hs.feed(line + b"\r\n") == [Failed("Master replied with wrong +FULLRESYNC syntax.", False)]


# -- the "$" line -------------------------------------------------------------------


def after_fullresync() -> ReplicaHandshake:
    hs = at_psync_reply()
    hs.feed(b"+FULLRESYNC " + REPLID.encode() + b" 0\r\n")
    return hs


def test_primary_aborts_before_the_payload() -> None:
    hs = after_fullresync()
    assert hs.feed(b"\n-ERR background save failed\r\n") == [
        Keepalive(), Failed("MASTER aborted replication with an error: ERR background save failed", False)
    ]


@pytest.mark.parametrize("line", [b"REDIS0010", b"+OK", b":12"])
def test_bulk_header_not_starting_with_dollar(line: bytes) -> None:
    hs = after_fullresync()
    (ev,) = hs.feed(line + b"\r\n")
    assert isinstance(ev, Failed) and not ev.retry_later
    assert ev.reason.startswith("Bad protocol from MASTER, the first byte is not '$'")


@pytest.mark.parametrize("line", [b"$abc", b"$-1", b"$", b"$EOF:short", b"$ 12"])
def test_bad_bulk_header(line: bytes) -> None:
    hs = after_fullresync()
    (ev,) = hs.feed(line + b"\r\n")
    assert isinstance(ev, Failed)
    assert ev.reason.startswith("Bad protocol from MASTER")


def test_overlong_line_fails() -> None:
    hs = at_psync_reply()
    assert hs.feed(b"+FULL" + b"x" * 70000) == [Failed("Protocol error from MASTER: reply line too long", False)]
    hs = at_psync_reply()
    events = []
    for _ in range(70):
        events += hs.feed(b"x" * 1000)
    assert events == [Failed("Protocol error from MASTER: reply line too long", False)]


def test_feed_before_start_is_a_caller_error() -> None:
    hs = ReplicaHandshake(HandshakeConfig(listening_port=1))
    with pytest.raises(RuntimeError):
        hs.feed(b"+PONG\r\n")


# -- arbitrary splitting -------------------------------------------------------------


def full_session(eof: bool, keep: int, rdb: bytes) -> tuple[bytes, list[Event]]:
    """Everything a primary sends after PSYNC, and the events it must give."""
    ka = b"\n" * keep
    if eof:
        payload = b"$EOF:" + MARK + b"\r\n" + rdb + MARK
        begin = RdbBegin(None)
    else:
        payload = b"$%d\r\n" % len(rdb) + rdb
        begin = RdbBegin(len(rdb))
    data = b"+PONG\r\n+OK\r\n" + ka + b"+OK\r\n" + ka + b"+FULLRESYNC " + REPLID.encode() + b" 42\r\n" + ka
    data += payload + STREAM
    expected: list[Event] = [Send(REPLCONF_PORT + REPLCONF_CAPA)]
    expected += [Keepalive()] * keep + [Send(PSYNC_NEW)] + [Keepalive()] * keep + [FullResync(REPLID, 42)]
    expected += [Keepalive()] * keep + [begin]
    if rdb:
        expected.append(RdbChunk(rdb))
    expected += [RdbEnd(), StreamData(STREAM)]
    return data, expected


def run_split(data: bytes, cuts: list[int]) -> list[Event]:
    hs = started()
    events: list[Event] = []
    prev = 0
    for c in [*sorted(set(cuts)), len(data)]:
        events += hs.feed(data[prev:c])
        prev = c
    return normalize(events)


@settings(max_examples=300, deadline=None)
@given(
    eof=st.booleans(),
    keep=st.integers(0, 3),
    rdb=st.binary(max_size=300).map(lambda b: b + MARK[:39]) | st.binary(max_size=300),
    cuts=st.lists(st.integers(0, 1000), max_size=12),
)
def test_any_split_gives_the_same_events(eof: bool, keep: int, rdb: bytes, cuts: list[int]) -> None:
    data, expected = full_session(eof, keep, rdb)
    assert run_split(data, []) == expected
    assert run_split(data, [c % (len(data) + 1) for c in cuts]) == expected


@settings(max_examples=50, deadline=None)
@given(eof=st.booleans(), keep=st.integers(0, 2), rdb=st.binary(max_size=120))
def test_byte_at_a_time_gives_the_same_events(eof: bool, keep: int, rdb: bytes) -> None:
    data, expected = full_session(eof, keep, rdb)
    assert run_split(data, list(range(len(data)))) == expected


# -- against a real redis-server primary -------------------------------------------------


def drive(sock: socket.socket, hs: ReplicaHandshake, until: Callable[[Event], bool], timeout: float = 30.0) -> list[Event]:
    """Write the machine's Sends and feed it the primary's bytes until ``until``."""
    got: list[Event] = []
    deadline = time.monotonic() + timeout
    while not any(until(e) for e in got):
        left = deadline - time.monotonic()
        assert left > 0, f"primary did not get there; events so far: {got!r}"
        sock.settimeout(left)
        data = sock.recv(65536)
        assert data, f"primary closed the link; events so far: {got!r}"
        for e in hs.feed(data):
            got.append(e)
            if isinstance(e, Send):
                sock.sendall(e.data)
    return got


def connect(addr: tuple[str, int], cfg: HandshakeConfig) -> tuple[socket.socket, ReplicaHandshake]:
    sock = socket.create_connection(addr, timeout=10)
    hs = ReplicaHandshake(cfg)
    for e in hs.start():
        assert isinstance(e, Send)
        sock.sendall(e.data)
    return sock, hs


def ack(offset: int) -> bytes:
    return b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%d\r\n" % (len(str(offset)), offset)


def read_stream(
    sock: socket.socket, hs: ReplicaHandshake, parser: StreamParser, count: int, offset: int
) -> list[tuple[list[bytes], int]]:
    """Parse stream commands until ``count`` non-empty ones arrived, sending
    ``REPLCONF ACK`` twice a second as a replica does (an EOF-mark sync only
    starts streaming on an ACK that arrives once the primary saw the
    transfer finish)."""
    cmds: list[tuple[list[bytes], int]] = []
    deadline = time.monotonic() + 20
    while sum(1 for a, _ in cmds if a) < count:
        assert time.monotonic() < deadline, f"stream so far: {cmds!r}"
        sock.sendall(ack(offset + sum(n for _, n in cmds)))
        sock.settimeout(0.5)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        assert data
        for e in hs.feed(data):
            assert isinstance(e, StreamData)
            parser.feed(e.data)
        while (c := parser.next_command()) is not None:
            cmds.append(c)
    return cmds


def run(srv: object, *cmds: tuple[str, ...]) -> list[bytes]:
    """Commands on a short-lived authenticated connection; raw replies."""
    c = srv.conn()  # type: ignore[attr-defined]
    try:
        assert c.command("AUTH", "pw") == b"+OK\r\n"
        return [c.command(*cmd) for cmd in cmds]
    finally:
        c.close()


def info_field(srv: object, field: bytes) -> bytes:
    (info,) = run(srv, ("INFO", "replication"))
    for line in info.split(b"\r\n"):
        if line.startswith(field + b":"):
            return line.split(b":", 1)[1]
    raise AssertionError(f"{field!r} not in INFO: {info!r}")


@pytest.mark.interop
@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_against_real_primary_full_then_partial(server_factory: Callable[..., object], diskless: str) -> None:
    """Full sync (both transfer forms), exact stream byte accounting against
    the primary's master_repl_offset, then a partial resync with +CONTINUE."""
    primary = server_factory(
        "redis", "--requirepass", "pw", "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0",
    )
    addr = primary.addr  # type: ignore[attr-defined]
    cfg = HandshakeConfig(listening_port=6390, masterauth="pw")
    sock, hs = connect(addr, cfg)
    try:
        events = drive(sock, hs, lambda e: isinstance(e, RdbEnd | Failed))
        kinds = [type(e) for e in normalize(events) if not isinstance(e, Keepalive)]
        assert Failed not in kinds, events
        full = next(e for e in events if isinstance(e, FullResync))
        begin = next(e for e in events if isinstance(e, RdbBegin))
        rdb = b"".join(e.data for e in events if isinstance(e, RdbChunk))
        assert rdb.startswith(b"REDIS00") and rdb[-9] == 0xFF  # EOF opcode then the CRC64
        assert begin.size == (None if diskless == "yes" else len(rdb))
        parser = StreamParser()
        for e in events:
            if isinstance(e, StreamData):
                parser.feed(e.data)
        run(primary, ("SET", "x", "1"), ("INCR", "n"))
        cmds = read_stream(sock, hs, parser, 3, full.offset)
        assert [a for a, _ in cmds if a] == [[b"SELECT", b"0"], [b"SET", b"x", b"1"], [b"INCR", b"n"]]
        processed = full.offset + sum(n for _, n in cmds)
        assert processed == int(info_field(primary, b"master_repl_offset"))
    finally:
        sock.close()

    # Reconnect with PSYNC <replid> <processed + 1>: the backlog serves it.
    cfg = HandshakeConfig(listening_port=6390, masterauth="pw", psync_replid=full.replid, psync_offset=processed + 1)
    sock, hs = connect(addr, cfg)
    try:
        events = drive(sock, hs, lambda e: isinstance(e, Continue | Failed))
        assert Continue(full.replid) in events, events
        assert hs.state == "connected"
        run(primary, ("DEL", "x"))
        parser = StreamParser()
        for e in events:
            if isinstance(e, StreamData):
                parser.feed(e.data)
        cmds = read_stream(sock, hs, parser, 1, processed)
        assert [a for a, _ in cmds if a] == [[b"DEL", b"x"]]
        assert processed + sum(n for _, n in cmds) == int(info_field(primary, b"master_repl_offset"))
    finally:
        sock.close()


@pytest.mark.interop
def test_against_real_primary_wrong_password(server_factory: Callable[..., object]) -> None:
    primary = server_factory("redis", "--requirepass", "pw")
    sock, hs = connect(primary.addr, HandshakeConfig(listening_port=6390, masterauth="nope"))  # type: ignore[attr-defined]
    try:
        events = drive(sock, hs, lambda e: isinstance(e, Failed))
        failed = events[-1]
        assert isinstance(failed, Failed)
        assert failed.reason.startswith("Unable to AUTH to MASTER: -WRONGPASS")
    finally:
        sock.close()
