"""Client-side caching (CLIENT TRACKING), checked on Ambry and real redis-server.

Every test runs against both servers (``server`` is parametrized) with the
exact bytes Redis 7.0.15 sends, over raw RESP2/RESP3 connections, so the
expectations are verified on the reference too.  The absence of a message
is shown with a PING round trip: an invalidation already due would arrive
before the PONG on the same connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import ServerProcess
from differential import RespConn, encode_command

PONG = b"+PONG\r\n"
SUB_PONG = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
OK = b"+OK\r\n"


def push_keys(*keys: bytes) -> bytes:
    """A RESP3 ``invalidate`` push for ``keys``."""
    body = b"".join(b"$%d\r\n%s\r\n" % (len(k), k) for k in keys)
    return b">2\r\n$10\r\ninvalidate\r\n*%d\r\n" % len(keys) + body


PUSH_NULL = b">2\r\n$10\r\ninvalidate\r\n_\r\n"


def message_keys(*keys: bytes) -> bytes:
    """A RESP2 pub/sub message on __redis__:invalidate for ``keys``."""
    body = b"".join(b"$%d\r\n%s\r\n" % (len(k), k) for k in keys)
    return b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*%d\r\n" % len(keys) + body


class Conn:
    """A raw connection: one reply per command, pushes read explicitly."""

    def __init__(self, server: ServerProcess, resp3: bool = False) -> None:
        self.raw: RespConn = server.conn(timeout=10.0)
        self.resp3 = resp3
        self.subscribed = False
        if resp3:
            self.raw.command("HELLO", "3")

    def cmd(self, *args: bytes | str | int) -> bytes:
        return self.raw.command(*args)

    def id(self) -> int:
        return int(self.cmd("CLIENT", "ID")[1:-2])

    def read(self) -> bytes:
        """The next reply or push (waits for it)."""
        return self.raw.read_reply()

    def sync(self) -> bytes:
        """Everything that arrives before the reply to a PING."""
        self.raw.send(encode_command([b"PING"]))
        got = b""
        while True:
            r = self.raw.read_reply()
            if r in (PONG, SUB_PONG):
                return got
            got += r

    def pipeline(self, *cmds: list[str]) -> bytes:
        """Send the commands in one write; everything up to a final PING's reply."""
        self.raw.send(b"".join(encode_command([a.encode() for a in c]) for c in cmds))
        out = b""
        for _ in cmds:
            out += self.raw.read_reply()
        return out + self.sync()

    def close(self) -> None:
        self.raw.close()


@pytest.fixture(params=["ambry", "redis"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """The shared Ambry and real Redis servers in turn (emptied)."""
    yield request.getfixturevalue(request.param)


@pytest.fixture
def conns(server: ServerProcess) -> Iterator[list[Conn]]:
    """Connections opened by a test, closed at its end."""
    opened: list[Conn] = []
    yield opened
    for c in opened:
        c.close()


def open_conn(server: ServerProcess, conns: list[Conn], resp3: bool = False) -> Conn:
    c = Conn(server, resp3)
    conns.append(c)
    return c


def info_field(c: Conn, section: str, name: str) -> str:
    text = c.cmd("INFO", section).decode()
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    raise AssertionError(f"{name} not in INFO {section}")


# -- default mode --------------------------------------------------------------------


def test_read_key_is_invalidated_once_when_another_client_writes_it(server: ServerProcess,
                                                                   conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    assert t.cmd("CLIENT", "TRACKING", "on") == OK
    assert t.cmd("GET", "k") == b"_\r\n"
    assert w.cmd("SET", "k", "1") == OK
    assert t.read() == push_keys(b"k")
    # The key left the table: a second change says nothing until it is read again.
    assert w.cmd("SET", "k", "2") == OK
    assert t.sync() == b""
    assert t.cmd("MGET", "k", "k2") == b"*2\r\n$1\r\n2\r\n_\r\n"
    # Deleting a missing key changes nothing: k2 stays remembered.
    assert w.cmd("DEL", "k", "k2", "k3") == b":1\r\n"
    assert t.read() == push_keys(b"k")
    assert t.sync() == b""
    w.cmd("SET", "k2", "1")
    assert t.read() == push_keys(b"k2")


def test_own_write_invalidation_follows_the_reply(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    assert t.cmd("CLIENT", "TRACKING", "on") == OK
    t.cmd("GET", "k")
    assert t.cmd("SET", "k", "1") == OK
    assert t.read() == push_keys(b"k")
    # Pipelined: the push sits right after the reply of the write that caused it.
    got = t.pipeline(["GET", "k"], ["SET", "k", "2"], ["GET", "k"])
    assert got == b"$1\r\n1\r\n" + OK + push_keys(b"k") + b"$1\r\n2\r\n"


def test_invalidations_inside_exec_follow_exec_reply(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    t.cmd("CLIENT", "TRACKING", "on")
    t.cmd("GET", "a")
    t.cmd("GET", "b")
    got = t.pipeline(["MULTI"], ["SET", "a", "1"], ["GET", "b"], ["SET", "b", "2"], ["EXEC"])
    assert got == (OK + b"+QUEUED\r\n" * 3 + b"*3\r\n+OK\r\n_\r\n+OK\r\n"
                   + push_keys(b"a") + push_keys(b"b"))


def test_flush_sends_a_null_invalidation_to_every_tracking_client(server: ServerProcess,
                                                                   conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    other = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    t.cmd("CLIENT", "TRACKING", "on")
    other.cmd("CLIENT", "TRACKING", "on", "bcast")
    t.cmd("GET", "k")
    assert w.cmd("SELECT", "3") == OK
    assert w.cmd("FLUSHDB") == OK  # another db: caching is not per db
    assert t.read() == PUSH_NULL
    assert other.read() == PUSH_NULL
    # The table was emptied: a change of k says nothing.
    assert w.cmd("SELECT", "0") == OK
    w.cmd("SET", "k", "1")
    assert t.sync() == b""
    # FLUSHALL by the tracking client itself: after its reply.
    assert t.pipeline(["FLUSHALL"]) == OK + PUSH_NULL
    assert other.read() == push_keys(b"k")
    assert other.read() == PUSH_NULL


def test_resp2_client_without_redirect_gets_nothing(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns)
    w = open_conn(server, conns)
    assert t.cmd("CLIENT", "TRACKING", "on") == OK
    t.cmd("GET", "k")
    w.cmd("SET", "k", "1")
    assert t.sync() == b""
    assert t.cmd("CLIENT", "TRACKINGINFO") == (
        b"*6\r\n$5\r\nflags\r\n*1\r\n$2\r\non\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n")


# -- redirection ---------------------------------------------------------------------


def test_redirect_to_resp2_subscriber_gets_pubsub_messages(server: ServerProcess, conns: list[Conn]) -> None:
    r = open_conn(server, conns)
    rid = r.id()
    assert r.cmd("SUBSCRIBE", "__redis__:invalidate") == (
        b"*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n")
    t = open_conn(server, conns)
    assert t.cmd("CLIENT", "TRACKING", "on", "REDIRECT", rid) == OK
    assert t.cmd("CLIENT", "GETREDIR") == b":%d\r\n" % rid
    t.cmd("GET", "k")
    assert t.cmd("SET", "k", "v") == OK
    assert r.read() == message_keys(b"k")
    t.cmd("GET", "k")
    assert t.cmd("FLUSHALL") == OK
    # The null is spelled in the tracking client's protocol (RESP2 here).
    assert r.read() == b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"
    assert r.sync() == b""


def test_redirect_to_unsubscribed_resp2_client_drops_messages(server: ServerProcess,
                                                              conns: list[Conn]) -> None:
    r = open_conn(server, conns)
    t = open_conn(server, conns)
    assert t.cmd("CLIENT", "TRACKING", "on", "REDIRECT", r.id()) == OK
    t.cmd("GET", "k")
    t.cmd("SET", "k", "v")
    assert r.sync() == b""
    # Any subscription will do: the message is sent in subscribed mode.
    r.cmd("PSUBSCRIBE", "nothing*")
    t.cmd("GET", "k")
    t.cmd("SET", "k", "w")
    assert r.read() == message_keys(b"k")


def test_redirect_to_resp3_client_with_resp2_null(server: ServerProcess, conns: list[Conn]) -> None:
    r = open_conn(server, conns, resp3=True)
    t = open_conn(server, conns)
    t.cmd("CLIENT", "TRACKING", "on", "REDIRECT", r.id())
    t.cmd("GET", "k")
    t.cmd("SET", "k", "1")
    assert r.read() == push_keys(b"k")
    t.cmd("FLUSHDB")
    assert r.read() == b">2\r\n$10\r\ninvalidate\r\n$-1\r\n"
    assert t.sync() == b""


def test_broken_redirect_is_reported(server: ServerProcess, conns: list[Conn]) -> None:
    r = open_conn(server, conns, resp3=True)
    rid = r.id()
    t = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    t.cmd("CLIENT", "TRACKING", "on", "REDIRECT", rid)
    t.cmd("GET", "k")
    r.close()
    conns.remove(r)
    # Wait until the server has seen the disconnection.
    for _ in range(200):
        if f"id={rid} " not in w.cmd("CLIENT", "LIST").decode():
            break
    w.cmd("SET", "k", "1")
    assert t.read() == b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % rid
    assert t.cmd("CLIENT", "TRACKINGINFO") == (
        b"%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n$8\r\nredirect\r\n:"
        + b"%d\r\n$8\r\nprefixes\r\n*0\r\n" % rid)
    info = t.cmd("CLIENT", "INFO").decode()
    assert " flags=tR " in info and f" redir={rid} " in info
    assert t.cmd("CLIENT", "GETREDIR") == b":%d\r\n" % rid


# -- OPTIN / OPTOUT / NOLOOP -------------------------------------------------------------


def test_optin_remembers_only_reads_after_caching_yes(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    assert t.cmd("CLIENT", "TRACKING", "on", "OPTIN") == OK
    t.cmd("GET", "a")
    assert t.cmd("CLIENT", "CACHING", "yes") == OK
    t.cmd("CLIENT", "ID")  # other CLIENT subcommands keep the flag
    t.cmd("GET", "b")
    t.cmd("GET", "c")
    w.cmd("MSET", "a", "1", "b", "1", "c", "1")
    assert t.read() == push_keys(b"b")
    assert t.sync() == b""
    # For a whole transaction.
    t.pipeline(["CLIENT", "CACHING", "yes"], ["MULTI"], ["GET", "a"], ["GET", "b"], ["EXEC"], ["GET", "c"])
    w.cmd("MSET", "a", "2", "b", "2", "c", "2")
    assert t.read() + t.read() == push_keys(b"a") + push_keys(b"b")
    assert t.sync() == b""
    # Any other command, even a rejected one, ends it.
    for other in (["PING"], ["NOSUCHCMD"], ["GET"]):
        t.cmd("CLIENT", "CACHING", "yes")
        t.cmd(*other)
        t.cmd("GET", "a")
        w.cmd("SET", "a", "3")
        assert t.sync() == b"", other


def test_optout_skips_reads_after_caching_no(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    assert t.cmd("CLIENT", "TRACKING", "on", "OPTOUT") == OK
    t.cmd("GET", "a")
    assert t.cmd("CLIENT", "CACHING", "no") == OK
    t.cmd("GET", "b")
    t.cmd("GET", "c")
    w.cmd("MSET", "a", "1", "b", "1", "c", "1")
    assert t.read() + t.read() == push_keys(b"a") + push_keys(b"c")
    assert t.sync() == b""


def test_noloop_skips_own_changes(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    t.cmd("CLIENT", "TRACKING", "on", "NOLOOP")
    t.cmd("GET", "a")
    t.cmd("GET", "b")
    assert t.pipeline(["SET", "a", "2"]) == OK
    w.cmd("MSET", "a", "1", "b", "1")
    assert t.read() == push_keys(b"b")
    assert t.sync() == b""


# -- BCAST -------------------------------------------------------------------------------


def test_bcast_sends_sorted_keys_per_prefix(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    u = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    assert t.cmd("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b", "PREFIX", "a") == OK
    assert u.cmd("CLIENT", "TRACKING", "on", "BCAST", "NOLOOP") == OK
    w.pipeline(["SET", "ab", "1"], ["SET", "aa", "1"], ["SET", "bz", "1"], ["SET", "cz", "1"], ["DEL", "nokey"])
    assert t.read() == push_keys(b"aa", b"ab")
    assert t.read() == push_keys(b"bz")
    assert u.read() == push_keys(b"aa", b"ab", b"bz", b"cz")
    # NOLOOP: u's own changes are left out, t hears of them.
    assert u.pipeline(["MSET", "a1", "1", "zz", "2"]) == OK
    assert t.read() == push_keys(b"a1")
    w.cmd("SET", "zz", "3")
    assert u.read() == push_keys(b"zz")
    assert t.sync() == b"" and u.sync() == b""
    info = t.cmd("CLIENT", "TRACKINGINFO")
    assert info.endswith(b"$8\r\nprefixes\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n")
    assert b"bcast" in info
    assert " flags=tB " in t.cmd("CLIENT", "INFO").decode()


def test_bcast_reads_are_not_remembered(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    t.cmd("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x")
    t.cmd("GET", "k")
    w.cmd("SET", "k", "1")
    assert t.sync() == b""


# -- what counts as a read or a change ------------------------------------------------------


def test_readonly_commands_remember_their_keys(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    w.cmd("RPUSH", "l", "x")
    t.cmd("CLIENT", "TRACKING", "on")
    for read in (["EXISTS", "l"], ["TYPE", "l"], ["TTL", "l"], ["OBJECT", "ENCODING", "l"], ["LRANGE", "l", "0", "-1"],
                 ["STRLEN", "l"], ["GET", "l"], ["MEMORY", "USAGE", "l"]):
        t.cmd(*read)  # an error reply (WRONGTYPE) still remembers the key
        w.cmd("RPUSH", "l", "y")
        assert t.read() == push_keys(b"l"), read
    for other in (["DBSIZE"], ["KEYS", "*"], ["SCAN", "0"], ["RANDOMKEY"], ["GET"]):
        t.cmd(*other)
        w.cmd("RPUSH", "l", "y")
        assert t.sync() == b"", other


def test_expiry_eviction_and_key_changes_invalidate(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    t.cmd("CLIENT", "TRACKING", "on")
    changes = [
        (["EXPIRE", "a", "100"], True),
        (["PERSIST", "a"], True),
        (["PERSIST", "a"], False),
        (["SET", "a", "1", "NX"], False),
        (["TOUCH", "a"], False),
        (["GETEX", "a"], False),
        (["APPEND", "a", "x"], True),
        (["MOVE", "a", "1"], True),
    ]
    w.cmd("SET", "a", "1")
    for change, invalidates in changes:
        t.cmd("GET", "a")
        w.cmd(*change)
        assert t.sync() == (push_keys(b"a") if invalidates else b""), change
    # SWAPDB does not invalidate.
    t.cmd("GET", "a")
    w.cmd("SWAPDB", "0", "1")
    assert t.sync() == b""
    w.cmd("SWAPDB", "0", "1")
    # Active expiry.
    w.cmd("SET", "e", "1", "PX", "500")
    assert t.cmd("GET", "e") == b"$1\r\n1\r\n"
    assert t.read() == push_keys(b"e")


def test_lazy_expiry_by_a_noloop_client(server: ServerProcess, conns: list[Conn]) -> None:
    """A key its own NOLOOP client expires on access: the default mode skips
    it (the current client changed it), BCAST NOLOOP hears of it (an expiry
    is no client's change)."""
    t = open_conn(server, conns, resp3=True)
    b = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    assert w.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "0") == OK
    try:
        t.cmd("CLIENT", "TRACKING", "on", "NOLOOP")
        b.cmd("CLIENT", "TRACKING", "on", "BCAST", "NOLOOP")
        w.cmd("SET", "k", "1", "PX", "100")
        assert b.read() == push_keys(b"k")
        assert t.cmd("GET", "k") == b"$1\r\n1\r\n"
        time.sleep(0.2)  # let the TTL pass (any lookup would expire the key)
        assert t.cmd("GET", "k") == b"_\r\n"
        assert t.sync() == b""
        assert b.read() == push_keys(b"k")
        w.cmd("SET", "k", "1", "PX", "100")
        assert t.read() == push_keys(b"k")
        assert b.read() == push_keys(b"k")
        time.sleep(0.2)
        assert b.cmd("GET", "k") == b"_\r\n"
        assert b.read() == push_keys(b"k")
        assert t.sync() == b"" and b.sync() == b""
    finally:
        w.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_tracking_table_max_keys_evicts_with_invalidations(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    t.cmd("CLIENT", "TRACKING", "on")
    for i in range(10):
        t.cmd("GET", f"k{i}")
    try:
        assert w.cmd("CONFIG", "SET", "tracking-table-max-keys", "5") == OK
        w.cmd("PING")
        evicted = {t.read() for _ in range(5)}
        assert evicted <= {push_keys(b"k%d" % i) for i in range(10)} and len(evicted) == 5
        assert t.sync() == b""
        t.cmd("GET", "x")  # 6 keys now: one goes before the next command (or from the cron)
        assert t.sync() in {push_keys(k) for k in [b"x"] + [b"k%d" % i for i in range(10)]}
    finally:
        w.cmd("CONFIG", "SET", "tracking-table-max-keys", "1000000")


@pytest.mark.parametrize("server", ["ambry", "redis"], indirect=True)
def test_info_tracking_fields(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns, resp3=True)
    t2 = open_conn(server, conns, resp3=True)
    b = open_conn(server, conns, resp3=True)
    w = open_conn(server, conns)
    t.cmd("CLIENT", "TRACKING", "on")
    t2.cmd("CLIENT", "TRACKING", "on")
    b.cmd("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p", "PREFIX", "q")
    t.cmd("MGET", "a", "b", "c")
    t2.cmd("GET", "a")
    assert info_field(w, "clients", "tracking_clients") == "3"
    assert info_field(w, "stats", "tracking_total_keys") == "3"
    assert info_field(w, "stats", "tracking_total_items") == "4"
    assert info_field(w, "stats", "tracking_total_prefixes") == "2"
    b.cmd("CLIENT", "TRACKING", "off")
    t2.close()
    conns.remove(t2)
    for _ in range(200):
        if info_field(w, "clients", "tracking_clients") == "1":
            break
    assert info_field(w, "clients", "tracking_clients") == "1"
    assert info_field(w, "stats", "tracking_total_prefixes") == "0"
    w.cmd("SET", "a", "1")
    assert info_field(w, "stats", "tracking_total_keys") == "2"
    assert info_field(w, "stats", "tracking_total_items") == "2"


def test_client_list_flags_and_redir(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns)
    w = open_conn(server, conns)
    wid = w.id()
    assert " flags=N " in t.cmd("CLIENT", "INFO").decode()
    assert " redir=-1 " in t.cmd("CLIENT", "INFO").decode()
    t.cmd("CLIENT", "TRACKING", "on", "REDIRECT", wid)
    info = t.cmd("CLIENT", "INFO").decode()
    assert " flags=t " in info and f" redir={wid} " in info
    assert t.cmd("CLIENT", "TRACKING", "off") == OK
    assert " flags=N " in t.cmd("CLIENT", "INFO").decode()


@pytest.mark.parametrize("server", ["ambry", "redis"], indirect=True)
def test_reset_turns_tracking_off(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns)
    t.cmd("CLIENT", "TRACKING", "on", "BCAST")
    assert t.cmd("RESET") == b"+RESET\r\n"
    assert " flags=N " in t.cmd("CLIENT", "INFO").decode()
    assert t.cmd("CLIENT", "GETREDIR") == b":-1\r\n"


# -- the command's own checks -------------------------------------------------------------


def test_overlap_between_given_prefixes_after_the_first_also_enables(server: ServerProcess,
                                                                      conns: list[Conn]) -> None:
    """Redis 7.0 answers an error *and* +OK when the overlap is found for a
    prefix other than the first, and tracking is on with every prefix."""
    t = open_conn(server, conns)
    got = t.pipeline(["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x", "PREFIX", "a", "PREFIX", "ab"])
    assert got == (b"-ERR Prefix 'a' overlaps with another provided prefix 'ab'. "
                   b"Prefixes for a single client must not overlap.\r\n" + OK)
    assert t.cmd("CLIENT", "TRACKINGINFO") == (
        b"*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n"
        b"$8\r\nprefixes\r\n*3\r\n$1\r\na\r\n$2\r\nab\r\n$1\r\nx\r\n")
    got = t.pipeline(["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "b"])
    assert got == (b"-ERR Prefix 'a' overlaps with an existing prefix 'a'. "
                   b"Prefixes for a single client must not overlap.\r\n")


def test_redirect_errors(server: ServerProcess, conns: list[Conn]) -> None:
    t = open_conn(server, conns)
    w = open_conn(server, conns)
    wid = w.id()
    assert t.cmd("CLIENT", "TRACKING", "on", "REDIRECT", wid, "REDIRECT", wid) == (
        b"-ERR A client can only redirect to a single other client\r\n")
    assert t.cmd("CLIENT", "TRACKING", "on", "REDIRECT", "0") == (
        b"-ERR The client ID you want redirect to does not exist\r\n")
    assert t.cmd("CLIENT", "TRACKING", "off", "REDIRECT", "x") == (
        b"-ERR value is not an integer or out of range\r\n")
    assert t.cmd("CLIENT", "TRACKING", "off", "PREFIX", "p", "BCAST", "OPTIN") == OK
