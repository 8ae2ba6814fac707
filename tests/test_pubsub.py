"""Pub/Sub across connections, checked on Ambry and real redis-server.

Each test runs on both servers (``server`` is parametrized) and states the
exact bytes Redis 7.0.15 sends.  Orders Redis leaves to its hash tables
(several patterns matching one channel, UNSUBSCRIBE without arguments) are
compared as sets.  The absence of a message is shown with a PING round trip.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from conftest import ServerProcess
from differential import ConnectionClosed, RespConn, encode_command

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
SUB_PONG = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"


def bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def frame(resp3: bool, *items: bytes | int | None) -> bytes:
    """A pub/sub frame: RESP3 push or RESP2 array."""
    out = (b">%d\r\n" if resp3 else b"*%d\r\n") % len(items)
    for x in items:
        if x is None:
            out += b"_\r\n" if resp3 else b"$-1\r\n"
        elif isinstance(x, int):
            out += b":%d\r\n" % x
        else:
            out += bulk(x)
    return out


class Conn:
    def __init__(self, server: ServerProcess, resp3: bool = False) -> None:
        self.raw: RespConn = server.conn(timeout=10.0)
        self.resp3 = resp3
        if resp3:
            self.raw.command("HELLO", "3")

    def cmd(self, *args: bytes | str | int) -> bytes:
        return self.raw.command(*args)

    def send(self, *args: bytes | str | int) -> None:
        self.raw.send(encode_command([a if isinstance(a, bytes) else str(a).encode() for a in args]))

    def read(self) -> bytes:
        return self.raw.read_reply()

    def reads(self, n: int) -> list[bytes]:
        return [self.raw.read_reply() for _ in range(n)]

    def sync(self) -> bytes:
        """Everything that arrives before the reply to a PING."""
        self.send("PING")
        got = b""
        while True:
            r = self.raw.read_reply()
            if r in (PONG, SUB_PONG):
                return got
            got += r

    def close(self) -> None:
        self.raw.close()


@pytest.fixture(params=["ambry", "redis"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield request.getfixturevalue(request.param)


@pytest.fixture
def conns(server: ServerProcess) -> Iterator[list[Conn]]:
    opened: list[Conn] = []
    yield opened
    for c in opened:
        c.close()


def open_conn(server: ServerProcess, conns: list[Conn], resp3: bool = False) -> Conn:
    c = Conn(server, resp3)
    conns.append(c)
    return c


# -- subscribing -----------------------------------------------------------------------


@pytest.mark.parametrize("resp3", [False, True])
def test_subscribe_replies_count_channels_and_patterns(server: ServerProcess, conns: list[Conn],
                                                       resp3: bool) -> None:
    s = open_conn(server, conns, resp3)
    s.send("SUBSCRIBE", "a", "b", "a")
    assert s.reads(3) == [frame(resp3, b"subscribe", b"a", 1), frame(resp3, b"subscribe", b"b", 2),
                          frame(resp3, b"subscribe", b"a", 2)]
    s.send("PSUBSCRIBE", "p*", "p*")
    assert s.reads(2) == [frame(resp3, b"psubscribe", b"p*", 3), frame(resp3, b"psubscribe", b"p*", 3)]
    # Shard channels are counted apart.
    s.send("SSUBSCRIBE", "s1", "s2")
    assert s.reads(2) == [frame(resp3, b"ssubscribe", b"s1", 1), frame(resp3, b"ssubscribe", b"s2", 2)]
    s.send("UNSUBSCRIBE", "b", "zz")
    assert s.reads(2) == [frame(resp3, b"unsubscribe", b"b", 2), frame(resp3, b"unsubscribe", b"zz", 2)]
    s.send("SUNSUBSCRIBE", "s1")
    assert s.read() == frame(resp3, b"sunsubscribe", b"s1", 1)


@pytest.mark.parametrize("resp3", [False, True])
def test_unsubscribe_without_arguments(server: ServerProcess, conns: list[Conn], resp3: bool) -> None:
    s = open_conn(server, conns, resp3)
    s.send("SUBSCRIBE", "a", "b", "c")
    s.reads(3)
    s.send("PSUBSCRIBE", "x*")
    s.read()
    s.send("UNSUBSCRIBE")
    got = s.reads(3)
    # Redis walks its hash table: any channel order, the count going down.
    assert [g[-4:] for g in got] == [b":3\r\n", b":2\r\n", b":1\r\n"]
    assert {g[:-4] for g in got} == {frame(resp3, b"unsubscribe", ch, 0)[:-4] for ch in (b"a", b"b", b"c")}
    s.send("PUNSUBSCRIBE")
    assert s.read() == frame(resp3, b"punsubscribe", b"x*", 0)
    # Nothing left: one reply with a null name.
    for kind in ("UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"):
        assert s.cmd(kind) == frame(resp3, kind.lower().encode(), None, 0)
    # Out of subscribed mode again: normal commands work in RESP2 too.
    assert s.cmd("PING") == PONG


def test_resp2_subscribed_mode_allows_only_the_subscribe_family(server: ServerProcess,
                                                                conns: list[Conn]) -> None:
    s = open_conn(server, conns)
    s.cmd("SUBSCRIBE", "ch")
    for args, name in ((["GET", "x"], "get"), (["CLIENT", "ID"], "client|id"), (["MULTI"], "multi"),
                       (["HELLO", "3"], "hello"), (["PUBLISH", "ch", "m"], "publish")):
        assert s.cmd(*args) == (
            b"-ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
            b"are allowed in this context\r\n" % name.encode())
    # Unknown commands and wrong arity are reported as such first.
    assert s.cmd("NOSUCH").startswith(b"-ERR unknown command 'NOSUCH'")
    assert s.cmd("SUBSCRIBE") == b"-ERR wrong number of arguments for 'subscribe' command\r\n"
    assert s.cmd("PING") == SUB_PONG
    assert s.cmd("PING", "hi") == b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"
    assert s.cmd("SSUBSCRIBE", "sh") == frame(False, b"ssubscribe", b"sh", 1)
    assert s.cmd("RESET") == b"+RESET\r\n"
    assert s.cmd("GET", "x") == b"$-1\r\n"
    s.cmd("SUBSCRIBE", "ch")
    assert s.cmd("QUIT") == OK
    with pytest.raises(ConnectionClosed):
        s.read()


def test_resp3_client_runs_any_command_while_subscribed(server: ServerProcess, conns: list[Conn]) -> None:
    s = open_conn(server, conns, resp3=True)
    p = open_conn(server, conns)
    s.cmd("SUBSCRIBE", "ch")
    assert s.cmd("SET", "k", "v") == OK
    assert s.cmd("GET", "k") == b"$1\r\nv\r\n"
    assert s.cmd("PING") == PONG
    assert p.cmd("PUBLISH", "ch", "m") == b":1\r\n"
    assert s.read() == frame(True, b"message", b"ch", b"m")
    # Publishing to its own channel: the push comes before the reply.
    s.send("PUBLISH", "ch", "self")
    assert s.reads(2) == [frame(True, b"message", b"ch", b"self"), b":1\r\n"]


def test_resp3_messages_to_self_inside_exec_come_inside_its_array(server: ServerProcess, conns: list[Conn],
                                                                  notifications: None) -> None:
    """Redis writes EXEC's array header first, then each command's reply
    after the command ran: a message the client gets from its own PUBLISH
    (or a keyspace event of its own write) lands inside the array, before
    the reply of the command that caused it."""
    s = open_conn(server, conns, resp3=True)
    s.cmd("SUBSCRIBE", "ch")
    s.cmd("SUBSCRIBE", "__keyspace@0__:k")
    assert s.cmd("MULTI") == OK
    for args in (("PING",), ("PUBLISH", "ch", "m"), ("SET", "k", "v"), ("PUBLISH", "none", "x")):
        assert s.cmd(*args) == b"+QUEUED\r\n"
    s.send("EXEC")
    got = s.sync()
    assert got == (b"*4\r\n+PONG\r\n" + frame(True, b"message", b"ch", b"m") + b":1\r\n"
                   + frame(True, b"message", b"__keyspace@0__:k", b"set") + b"+OK\r\n:0\r\n")


# -- delivery ----------------------------------------------------------------------------


@pytest.mark.parametrize("resp3", [False, True])
def test_messages_arrive_in_publish_order(server: ServerProcess, conns: list[Conn], resp3: bool) -> None:
    s = open_conn(server, conns, resp3)
    p = open_conn(server, conns)
    s.send("SUBSCRIBE", "a", "b")
    s.reads(2)
    expected = []
    for i in range(50):
        ch = b"a" if i % 3 else b"b"
        assert p.cmd("PUBLISH", ch, b"m%d" % i) == b":1\r\n"
        expected.append(frame(resp3, b"message", ch, b"m%d" % i))
    # And a pipelined burst.
    p.raw.send(b"".join(encode_command([b"PUBLISH", b"a", b"burst%d" % i]) for i in range(50)))
    assert p.reads(50) == [b":1\r\n"] * 50
    expected += [frame(resp3, b"message", b"a", b"burst%d" % i) for i in range(50)]
    assert s.reads(100) == expected
    assert s.sync() == b""


@pytest.mark.parametrize("resp3", [False, True])
def test_channel_and_pattern_both_deliver(server: ServerProcess, conns: list[Conn], resp3: bool) -> None:
    s = open_conn(server, conns, resp3)
    s2 = open_conn(server, conns, resp3)
    p = open_conn(server, conns)
    s.cmd("SUBSCRIBE", "news.art")
    s.send("PSUBSCRIBE", "news.*", "*")
    s.reads(2)
    s2.cmd("PSUBSCRIBE", "news.*")
    assert p.cmd("PUBLISH", "news.art", "hello") == b":4\r\n"
    # The channel subscription first, then the patterns (in Redis's hash order).
    got = s.reads(3)
    assert got[0] == frame(resp3, b"message", b"news.art", b"hello")
    assert set(got[1:]) == {frame(resp3, b"pmessage", pat, b"news.art", b"hello") for pat in (b"news.*", b"*")}
    assert s2.read() == frame(resp3, b"pmessage", b"news.*", b"news.art", b"hello")
    assert p.cmd("PUBLISH", "other", "x") == b":1\r\n"
    assert s.read() == frame(resp3, b"pmessage", b"*", b"other", b"x")
    assert s.sync() == b"" and s2.sync() == b""


def test_shard_channels(server: ServerProcess, conns: list[Conn]) -> None:
    s = open_conn(server, conns, resp3=True)
    s2 = open_conn(server, conns)
    p = open_conn(server, conns)
    s.cmd("SSUBSCRIBE", "sh")
    s2.cmd("SSUBSCRIBE", "sh")
    s2.cmd("SUBSCRIBE", "sh")
    assert p.cmd("SPUBLISH", "sh", "m") == b":2\r\n"
    assert s.read() == frame(True, b"smessage", b"sh", b"m")
    assert s2.read() == frame(False, b"smessage", b"sh", b"m")
    assert p.cmd("PUBLISH", "sh", "n") == b":1\r\n"
    assert s2.read() == frame(False, b"message", b"sh", b"n")
    assert p.cmd("PUBSUB", "SHARDNUMSUB", "sh", "none") == b"*4\r\n$2\r\nsh\r\n:2\r\n$4\r\nnone\r\n:0\r\n"
    assert p.cmd("PUBSUB", "SHARDCHANNELS") == b"*1\r\n$2\r\nsh\r\n"
    assert p.cmd("PUBSUB", "NUMSUB", "sh") == b"*2\r\n$2\r\nsh\r\n:1\r\n"
    assert s.sync() == b""


def test_pubsub_introspection_follows_subscriptions(server: ServerProcess, conns: list[Conn]) -> None:
    s = open_conn(server, conns)
    s2 = open_conn(server, conns)
    p = open_conn(server, conns)
    s.send("SUBSCRIBE", "c1", "c2")
    s.reads(2)
    s2.cmd("SUBSCRIBE", "c1")
    s.cmd("PSUBSCRIBE", "c*")
    s2.cmd("PSUBSCRIBE", "c*")
    assert p.cmd("PUBSUB", "NUMSUB", "c1", "c2", "c3") == (
        b"*6\r\n$2\r\nc1\r\n:2\r\n$2\r\nc2\r\n:1\r\n$2\r\nc3\r\n:0\r\n")
    assert p.cmd("PUBSUB", "NUMSUB") == b"*0\r\n"
    assert p.cmd("PUBSUB", "NUMPAT") == b":1\r\n"  # distinct patterns
    assert p.cmd("PUBSUB", "CHANNELS", "*2") == b"*1\r\n$2\r\nc2\r\n"
    s.close()
    conns.remove(s)
    for _ in range(200):
        if p.cmd("PUBSUB", "NUMSUB", "c2") == b"*2\r\n$2\r\nc2\r\n:0\r\n":
            break
    assert p.cmd("PUBSUB", "CHANNELS") == b"*1\r\n$2\r\nc1\r\n"
    assert p.cmd("PUBSUB", "NUMPAT") == b":1\r\n"
    assert p.cmd("PUBLISH", "c1", "x") == b":2\r\n"


def test_subscribe_inside_multi(server: ServerProcess, conns: list[Conn]) -> None:
    s = open_conn(server, conns)
    s.cmd("MULTI")
    assert s.cmd("SUBSCRIBE", "m1", "m2") == b"+QUEUED\r\n"
    assert s.cmd("PSUBSCRIBE", "m*") == b"+QUEUED\r\n"
    # Two commands, three frames: the array header counts the commands.
    s.send("EXEC")
    assert s.reads(2) == [b"*2\r\n" + frame(False, b"subscribe", b"m1", 1) + frame(False, b"subscribe", b"m2", 2),
                          frame(False, b"psubscribe", b"m*", 3)]
    assert s.cmd("GET", "x").startswith(b"-ERR Can't execute 'get'")


# -- keyspace notifications ------------------------------------------------------------------


@pytest.fixture
def notifications(server: ServerProcess) -> Iterator[None]:
    c = server.conn()
    assert c.command("CONFIG", "SET", "notify-keyspace-events", "KEA") == OK
    yield
    c.command("CONFIG", "SET", "notify-keyspace-events", "")
    c.close()


@pytest.mark.parametrize("resp3", [False, True])
def test_keyspace_notifications_for_string_and_generic_events(server: ServerProcess, conns: list[Conn],
                                                              notifications: None, resp3: bool) -> None:
    s = open_conn(server, conns, resp3)
    w = open_conn(server, conns)
    s.cmd("PSUBSCRIBE", "__keyevent@0__:*")
    s.cmd("SUBSCRIBE", "__keyspace@0__:k")

    def ev(event: bytes, key: bytes) -> bytes:
        return frame(resp3, b"pmessage", b"__keyevent@0__:*", b"__keyevent@0__:" + event, key)

    def sp(event: bytes) -> bytes:
        return frame(resp3, b"message", b"__keyspace@0__:k", event)

    cases = [
        (["SET", "k", "v"], [sp(b"set"), ev(b"set", b"k")]),
        (["APPEND", "k", "x"], [sp(b"append"), ev(b"append", b"k")]),
        (["SETRANGE", "k", "1", "zz"], [sp(b"setrange"), ev(b"setrange", b"k")]),
        (["EXPIRE", "k", "100"], [sp(b"expire"), ev(b"expire", b"k")]),
        (["PERSIST", "k"], [sp(b"persist"), ev(b"persist", b"k")]),
        (["INCRBY", "n", "2"], [ev(b"incrby", b"n")]),
        (["INCRBYFLOAT", "n", "1.5"], [ev(b"incrbyfloat", b"n")]),
        (["RENAME", "n", "k"], [ev(b"rename_from", b"n"), sp(b"rename_to"), ev(b"rename_to", b"k")]),
        (["DEL", "k", "none"], [sp(b"del"), ev(b"del", b"k")]),
        (["DEL", "none"], []),
        (["MSET", "k", "1", "j", "2"], [sp(b"set"), ev(b"set", b"k"), ev(b"set", b"j")]),
        (["GETDEL", "j"], [ev(b"del", b"j")]),
        (["EXPIRE", "k", "0"], [sp(b"del"), ev(b"del", b"k")]),
    ]
    for cmd, want in cases:
        w.cmd(*cmd)
        assert s.sync() == b"".join(want), cmd
    # An expiry: "expired" for the key.
    w.cmd("SET", "k", "1", "PX", "1")
    assert s.read() == sp(b"set")
    assert s.read() == ev(b"set", b"k")
    assert s.read() == sp(b"expire")
    assert s.read() == ev(b"expire", b"k")
    assert s.read() == sp(b"expired")
    assert s.read() == ev(b"expired", b"k")


# -- killing and limits ---------------------------------------------------------------------


def test_client_kill_of_subscribers(server: ServerProcess, conns: list[Conn]) -> None:
    s = open_conn(server, conns)
    s3 = open_conn(server, conns, resp3=True)
    n = open_conn(server, conns)
    p = open_conn(server, conns)
    s.cmd("SUBSCRIBE", "ch")
    s3.cmd("PSUBSCRIBE", "c*")
    n.cmd("PING")
    assert p.cmd("CLIENT", "KILL", "TYPE", "pubsub") == b":2\r\n"
    for c in (s, s3):
        with pytest.raises(ConnectionClosed):
            c.read()
    for _ in range(200):
        if p.cmd("PUBSUB", "NUMPAT") == b":0\r\n" and p.cmd("PUBSUB", "NUMSUB", "ch") == b"*2\r\n$2\r\nch\r\n:0\r\n":
            break
    assert p.cmd("PUBLISH", "ch", "x") == b":0\r\n"
    assert n.cmd("PING") == PONG
    # A subscriber killed by id.
    s = open_conn(server, conns)
    sid = int(s.cmd("CLIENT", "ID")[1:-2])
    s.cmd("SUBSCRIBE", "ch")
    assert p.cmd("CLIENT", "KILL", "ID", sid) == b":1\r\n"
    with pytest.raises(ConnectionClosed):
        s.read()


def test_pubsub_output_buffer_limit_disconnects_a_slow_subscriber(server: ServerProcess,
                                                                  conns: list[Conn]) -> None:
    p = open_conn(server, conns)
    assert p.cmd("CONFIG", "SET", "client-output-buffer-limit", "pubsub 262144 0 0") == OK
    try:
        s = open_conn(server, conns)
        # A small receive window: the server's buffer fills sooner.
        s.raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert s.cmd("SUBSCRIBE", "ch") == frame(False, b"subscribe", b"ch", 1)
        # The subscriber reads nothing; 20 MB of messages cannot all sit in
        # kernel buffers, so the server's own buffer passes the hard limit.
        payload = b"x" * 65536
        receivers = []
        for _ in range(320):
            receivers.append(p.cmd("PUBLISH", "ch", payload))
            if receivers[-1] == b":0\r\n":
                break
        assert receivers[-1] == b":0\r\n", "the slow subscriber was never disconnected"
        assert p.cmd("PUBSUB", "NUMSUB", "ch") == b"*2\r\n$2\r\nch\r\n:0\r\n"
        # A subscriber that keeps up is not affected.
        f = open_conn(server, conns)
        f.cmd("SUBSCRIBE", "ch")
        for i in range(20):
            assert p.cmd("PUBLISH", "ch", b"%d" % i + b"y" * 60000) == b":1\r\n"
            assert f.read() == frame(False, b"message", b"ch", b"%d" % i + b"y" * 60000)
    finally:
        p.cmd("CONFIG", "SET", "client-output-buffer-limit", "pubsub 33554432 8388608 60")


def test_one_message_past_the_hard_limit_disconnects_before_sending(server: ServerProcess,
                                                                    conns: list[Conn]) -> None:
    """Redis counts a reply against the limits as it queues it (beyond its
    16 KB static buffer): a single message over the hard limit closes the
    subscriber at once and nothing of it is sent."""
    p = open_conn(server, conns)
    assert p.cmd("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1048576 0 0") == OK
    try:
        s = open_conn(server, conns)
        assert s.cmd("SUBSCRIBE", "ch") == frame(False, b"subscribe", b"ch", 1)
        assert p.cmd("PUBLISH", "ch", b"a" * 500_000) == b":1\r\n"
        assert s.read() == frame(False, b"message", b"ch", b"a" * 500_000)
        p.cmd("PUBLISH", "ch", b"b" * 2_000_000)
        s.raw.sock.settimeout(5)
        got = b""
        while True:
            chunk = s.raw.sock.recv(65536)
            if not chunk:
                break
            got += chunk
        assert got == b""
        assert p.cmd("PUBSUB", "NUMSUB", "ch") == b"*2\r\n$2\r\nch\r\n:0\r\n"
    finally:
        p.cmd("CONFIG", "SET", "client-output-buffer-limit", "pubsub 33554432 8388608 60")
