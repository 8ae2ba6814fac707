"""Clients blocked on keys (server/blocking.py, Redis 7.0.15 blocked.c),
through the list commands, with several real connections per test.

Each differential scenario runs the same steps against redis-server and
Ambry and compares every reply byte for byte.  A step that must wait for
another connection to block polls ``INFO clients`` (never a blind sleep);
only "nothing arrives" checks wait, briefly.  Effects of served clients are
checked in-process on the one effect path (``inproc.record()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import InProcess, ServerProcess
from differential import ReplyTimeout, RespConn, encode_command

Scenario = Callable[["Session"], None]


class Session:
    """Named connections to one server and the replies they got, in order."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.conns: dict[str, RespConn] = {}
        self.seen: list[tuple[str, bytes]] = []
        self.admin = server.conn()

    def conn(self, name: str, resp3: bool = False) -> RespConn:
        c = self.conns.get(name)
        if c is None:
            c = self.conns[name] = self.server.conn()
            if resp3:
                c.command("HELLO", "3")
        return c

    def send(self, name: str, *args: Any) -> None:
        """Send a command without reading its reply (it may block)."""
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.conn(name).send(encode_command(argv))

    def read(self, name: str, timeout: float = 5.0) -> bytes:
        r = self.conn(name).read_reply(timeout)
        self.seen.append((name, r))
        return r

    def cmd(self, name: str, *args: Any) -> bytes:
        self.send(name, *args)
        return self.read(name)

    def note(self, label: str, value: Any) -> None:
        """Record something observed outside a reply (compared too)."""
        self.seen.append((label, repr(value).encode()))

    def info_field(self, field: str) -> int:
        raw = self.admin.command("INFO", "clients").decode()
        for line in raw.split("\r\n"):
            if line.startswith(field + ":"):
                return int(line.split(":", 1)[1])
        raise AssertionError(f"{field} not in INFO clients")

    def wait_blocked(self, n: int, timeout: float = 5.0) -> None:
        """Poll until ``n`` clients are blocked (the sends have been read)."""
        deadline = time.monotonic() + timeout
        while self.info_field("blocked_clients") != n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} blocked clients, have {self.info_field('blocked_clients')}")
            time.sleep(0.005)

    def silent(self, name: str, wait: float = 0.15) -> bool:
        """True when nothing arrives on ``name`` for ``wait`` seconds."""
        try:
            r = self.conn(name).read_reply(wait)
        except ReplyTimeout:
            return True
        self.seen.append((name + " (unexpected)", r))
        return False

    def drain(self, name: str, wait: float = 0.2) -> None:
        """Record everything that arrives on ``name`` until it is quiet."""
        while True:
            try:
                self.read(name, wait)
            except ReplyTimeout:
                return

    def client_id(self, name: str) -> int:
        return int(self.conn(name).command("CLIENT", "ID")[1:-2])

    def close(self) -> None:
        for c in self.conns.values():
            c.close()
        self.admin.close()


def run_both(redis: ServerProcess, ambry: ServerProcess, scenario: Scenario) -> list[tuple[str, bytes]]:
    """Run ``scenario`` on both servers; their observations must be equal."""
    out = []
    for server in (redis, ambry):
        s = Session(server)
        try:
            scenario(s)
            s.wait_blocked(0)
        finally:
            s.close()
        out.append(s.seen)
    theirs, ours = out
    assert ours == theirs, "\n".join(
        f"{i}: redis {a!r}\n   ambry {b!r}" for i, (a, b) in enumerate(zip(theirs, ours, strict=False)) if a != b
    ) or f"lengths differ: {len(theirs)} vs {len(ours)}"
    return ours


# -- differential scenarios ---------------------------------------------------------------


def test_clients_are_served_in_the_order_they_blocked(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        for i, name in enumerate(("a", "b", "c")):
            s.send(name, "BLPOP", "k", 0)
            s.wait_blocked(i + 1)
        s.cmd("p", "RPUSH", "k", "x", "y")
        s.read("a")
        s.read("b")
        assert s.silent("c")
        s.cmd("p", "LPUSH", "k", "z")
        s.read("c")
        s.cmd("p", "EXISTS", "k")

    seen = run_both(redis, ambry, sc)
    assert (("a", b"*2\r\n$1\r\nk\r\n$1\r\nx\r\n")) in seen


def test_first_ready_key_of_several_serves(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.send("a", "BRPOP", "k1", "k2", "k3", 0)
        s.wait_blocked(1)
        s.cmd("p", "RPUSH", "k2", "x", "y")
        s.read("a")
        s.cmd("p", "LRANGE", "k2", 0, -1)
        # the same key twice counts once
        s.send("a", "BLPOP", "k9", "k9", 0)
        s.wait_blocked(1)
        s.cmd("p", "RPUSH", "k9", "v")
        s.read("a")
        s.cmd("p", "EXISTS", "k9")

    run_both(redis, ambry, sc)


def test_push_inside_multi_exec_serves_after_exec(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.send("a", "BLPOP", "k", 0)
        s.send("b", "BLPOP", "k", 0)
        s.wait_blocked(2)
        s.cmd("p", "MULTI")
        s.cmd("p", "RPUSH", "k", "1", "2", "3")
        s.cmd("p", "LPOP", "k")
        s.cmd("p", "EXEC")
        s.read("a")
        s.read("b")
        s.cmd("p", "LRANGE", "k", 0, -1)
        # pushed and emptied again inside the transaction: nobody is served
        s.send("a", "BLPOP", "q", 0)
        s.wait_blocked(1)
        s.cmd("p", "MULTI")
        s.cmd("p", "RPUSH", "q", "x")
        s.cmd("p", "DEL", "q")
        s.cmd("p", "EXEC")
        assert s.silent("a")
        s.cmd("p", "RPUSH", "q", "y")
        s.read("a")

    run_both(redis, ambry, sc)


def test_pushing_several_keys_in_one_exec(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.send("a", "BLPOP", "k1", "k2", 0)
        s.wait_blocked(1)
        s.send("b", "BLPOP", "k2", 0)
        s.wait_blocked(2)
        s.cmd("p", "MULTI")
        s.cmd("p", "RPUSH", "k2", "a")
        s.cmd("p", "RPUSH", "k1", "b")
        s.cmd("p", "EXEC")
        s.read("a")  # k2 became ready first: a takes k2's element
        assert s.silent("b")
        s.cmd("p", "LRANGE", "k1", 0, -1)
        s.cmd("p", "RPUSH", "k2", "c")
        s.read("b")

    run_both(redis, ambry, sc)


def test_blocking_commands_in_multi_do_not_block(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("a", "MULTI")
        for argv in (("BLPOP", "k", 0), ("BRPOP", "k", 0), ("BLMPOP", 0, 1, "k", "LEFT"),
                     ("BLMOVE", "k", "d", "LEFT", "LEFT", 0), ("BRPOPLPUSH", "k", "d", 0)):
            s.cmd("a", *argv)
        s.cmd("a", "EXEC")
        s.cmd("a", "EXISTS", "d")

    run_both(redis, ambry, sc)


def test_timeouts_fractional_seconds(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        for argv in (("BLPOP", "k", "0.05"), ("BRPOP", "k1", "k2", "0.05"), ("BLMPOP", "0.05", 1, "k", "RIGHT"),
                     ("BLMOVE", "k", "d", "RIGHT", "LEFT", "0.05"), ("BRPOPLPUSH", "k", "d", "0.05")):
            t0 = time.monotonic()
            s.cmd("a", *argv)
            s.note("waited >= 50ms", time.monotonic() - t0 >= 0.05)
        s.conn("r3", resp3=True)
        s.cmd("r3", "BLMOVE", "k", "d", "RIGHT", "LEFT", "0.01")
        s.cmd("r3", "BLPOP", "k", "0.01")
        s.cmd("a", "EXISTS", "d")

    run_both(redis, ambry, sc)


def test_timeout_does_not_fire_early_or_late(ambry: ServerProcess) -> None:
    c = ambry.conn()
    try:
        t0 = time.monotonic()
        assert c.command("BLPOP", "k", "0.3") == b"*-1\r\n"
        took = time.monotonic() - t0
        assert 0.3 <= took < 1.0
    finally:
        c.close()


def test_pipelined_requests_wait_for_the_blocked_command(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        c = s.conn("a")
        c.send(encode_command([b"BLPOP", b"k", b"0"]) + encode_command([b"RPUSH", b"k2", b"after"])
               + encode_command([b"BLPOP", b"k", b"0"]) + encode_command([b"PING"]))
        s.wait_blocked(1)
        s.cmd("p", "EXISTS", "k2")  # RPUSH k2 has not run yet
        s.cmd("p", "RPUSH", "k", "1", "2")
        s.read("a")
        s.read("a")
        s.read("a")  # the second BLPOP finds "2" at once
        s.read("a")
        s.cmd("p", "LRANGE", "k2", 0, -1)

    run_both(redis, ambry, sc)


def test_client_unblock_timeout_and_error(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        ida = s.client_id("a")
        idb = s.client_id("b")
        s.send("a", "BLPOP", "k", 0)
        s.send("b", "BLMOVE", "k", "d", "LEFT", "LEFT", 0)
        s.wait_blocked(2)
        s.send("p", "CLIENT", "UNBLOCK", ida)
        s.read("p")
        s.read("a")
        s.send("p", "CLIENT", "UNBLOCK", idb, "ERROR")
        s.read("p")
        s.read("b")
        s.send("p", "CLIENT", "UNBLOCK", ida, "ERROR")
        s.read("p")  # not blocked any more: 0
        s.send("p", "CLIENT", "UNBLOCK", idb, "timeout")
        s.read("p")
        s.send("b", "BRPOPLPUSH", "k", "d", 0)
        s.wait_blocked(1)
        s.send("p", "CLIENT", "UNBLOCK", idb, "TIMEOUT")
        s.read("p")
        s.read("b")
        s.cmd("p", "CLIENT", "UNBLOCK", ida, "maybe")
        s.cmd("p", "CLIENT", "UNBLOCK", "x")
        s.cmd("p", "CLIENT", "UNBLOCK", 999999)
        s.cmd("p", "CLIENT", "UNBLOCK", ida, "TIMEOUT", "extra")
        s.cmd("a", "PING")
        raw = s.admin.command("INFO", "errorstats").decode()
        s.note("UNBLOCKED counted", "errorstat_UNBLOCKED:count=1" in raw)

    run_both(redis, ambry, sc)


def test_blocked_clients_in_info_and_client_list(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.note("before", s.info_field("blocked_clients"))
        s.send("a", "BLPOP", "k", 0)
        s.send("b", "BRPOP", "k", "100")
        s.wait_blocked(2)
        s.note("in timeout table", s.info_field("clients_in_timeout_table"))
        listing = s.admin.command("CLIENT", "LIST").decode()
        flags = sorted(part for line in listing.split("\n") for part in line.split() if part.startswith("flags="))
        s.note("flags", flags)
        cmds = sorted(part for line in listing.split("\n") for part in line.split() if part.startswith("cmd=b"))
        s.note("cmds", cmds)
        s.cmd("p", "RPUSH", "k", "1", "2")
        s.read("a")
        s.read("b")
        s.note("after", s.info_field("blocked_clients"))

    run_both(redis, ambry, sc)


def test_disconnected_blocked_client_is_forgotten(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.send("a", "BLPOP", "k", 0)
        s.send("b", "BLPOP", "k", 0)
        s.wait_blocked(2)
        s.conns.pop("a").close()
        s.wait_blocked(1)
        s.cmd("p", "RPUSH", "k", "x", "y")
        s.read("b")
        s.cmd("p", "LRANGE", "k", 0, -1)
        idc = s.client_id("c")
        s.send("c", "BLPOP", "k2", 0)
        s.wait_blocked(1)
        s.cmd("p", "CLIENT", "KILL", "ID", idc)
        s.wait_blocked(0)
        s.cmd("p", "RPUSH", "k2", "z")
        s.cmd("p", "LRANGE", "k2", 0, -1)

    run_both(redis, ambry, sc)


def test_key_deleted_or_of_another_type_keeps_clients_waiting(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.send("a", "BLPOP", "k", 0)
        s.wait_blocked(1)
        s.cmd("p", "SET", "k", "string")
        assert s.silent("a")
        s.cmd("p", "DEL", "k")
        s.cmd("p", "ZADD", "k", 1, "m")
        assert s.silent("a")
        s.cmd("p", "DEL", "k")
        s.cmd("p", "RPUSH", "k", "v")
        s.read("a")
        # WRONGTYPE right away when the key holds another type
        s.cmd("p", "SET", "str", "x")
        s.cmd("a", "BLPOP", "nokey", "str", 0)
        s.cmd("a", "BLMOVE", "str", "d", "LEFT", "LEFT", 0)
        s.cmd("a", "BLMPOP", 0, 2, "nokey", "str", "LEFT")

    run_both(redis, ambry, sc)


def test_blmove_served_and_chained(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.send("a", "BLMOVE", "s", "d", "RIGHT", "LEFT", 0)
        s.wait_blocked(1)
        s.send("b", "BLPOP", "d", 0)
        s.wait_blocked(2)
        s.send("c", "BRPOPLPUSH", "s", "d2", 0)
        s.wait_blocked(3)
        s.cmd("p", "RPUSH", "s", "1", "2")
        s.read("a")  # takes "2" from the tail, pushes it to d ...
        s.read("c")  # ... then c takes "1" ...
        s.read("b")  # ... and b gets what a pushed to d
        s.cmd("p", "LRANGE", "d2", 0, -1)
        s.cmd("p", "EXISTS", "s", "d")
        # source and destination the same key
        s.send("a", "BLMOVE", "r", "r", "LEFT", "RIGHT", 0)
        s.wait_blocked(1)
        s.cmd("p", "RPUSH", "r", "x")
        s.read("a")
        s.cmd("p", "LRANGE", "r", 0, -1)

    run_both(redis, ambry, sc)


def test_blmove_to_a_key_of_another_type(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "SET", "d", "string")
        s.send("a", "BLMOVE", "s", "d", "LEFT", "LEFT", 0)
        s.wait_blocked(1)
        s.send("b", "BLPOP", "s", 0)
        s.wait_blocked(2)
        s.cmd("p", "RPUSH", "s", "x")
        s.read("a")  # WRONGTYPE, the element stays ...
        s.read("b")  # ... for the next client
        s.cmd("p", "EXISTS", "s")

    run_both(redis, ambry, sc)


def test_blmpop_served_with_count(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.send("a", "BLMPOP", 0, 2, "k1", "k2", "RIGHT", "COUNT", 2)
        s.send("b", "BLMPOP", 0, 1, "k2", "LEFT", "COUNT", 10)
        s.wait_blocked(2)
        s.cmd("p", "RPUSH", "k2", "a", "b", "c", "d", "e")
        s.read("a")
        s.read("b")
        s.cmd("p", "EXISTS", "k2")

    run_both(redis, ambry, sc)


def test_keys_made_ready_by_rename_copy_move_sort_swapdb(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "RPUSH", "src", "a", "b", "c", "d")
        for name, key in (("a", "k1"), ("b", "k2"), ("c", "k3")):
            s.send(name, "BLPOP", key, 0)
        s.wait_blocked(3)
        s.cmd("p", "COPY", "src", "k1")
        s.read("a")
        s.cmd("p", "SORT", "src", "ALPHA", "DESC", "STORE", "k2")
        s.read("b")
        s.cmd("p", "RENAME", "src", "k3")
        s.read("c")
        s.cmd("p", "SELECT", 1)
        s.cmd("p", "RPUSH", "m", "x")
        s.cmd("p", "RPUSH", "o", "y")
        s.cmd("p", "SELECT", 0)
        s.send("a", "BLPOP", "m", 0)
        s.send("b", "BLPOP", "o", 0)
        s.wait_blocked(2)
        s.cmd("p", "SELECT", 1)
        s.cmd("p", "MOVE", "o", 0)
        s.read("b")
        s.cmd("p", "SWAPDB", 0, 1)
        s.read("a")
        s.cmd("p", "DBSIZE")

    run_both(redis, ambry, sc)


def test_served_client_replies_in_resp3(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.conn("a", resp3=True)
        s.send("a", "BLMPOP", 0, 1, "k", "LEFT")
        s.wait_blocked(1)
        s.cmd("p", "RPUSH", "k", "x")
        s.read("a")
        s.send("a", "BLPOP", "k", "0.01")
        s.read("a")

    run_both(redis, ambry, sc)


def test_keyspace_events_of_served_clients(redis: ServerProcess, ambry: ServerProcess) -> None:
    def sc(s: Session) -> None:
        s.cmd("p", "CONFIG", "SET", "notify-keyspace-events", "KEA")
        try:
            s.cmd("sub", "PSUBSCRIBE", "__keyevent@0__:*")
            s.send("a", "BLMOVE", "s", "d", "LEFT", "RIGHT", 0)
            s.send("b", "BLPOP", "d", 0)
            s.wait_blocked(2)
            s.cmd("p", "RPUSH", "s", "x")
            s.read("a")
            s.read("b")
            s.cmd("p", "RPUSH", "l", "1", "2")
            s.cmd("p", "LMOVE", "l", "l2", "LEFT", "LEFT")
            s.cmd("p", "RPOPLPUSH", "l", "l2")
            s.cmd("p", "LPOP", "l2", 2)
            s.drain("sub")
        finally:
            s.cmd("p", "CONFIG", "SET", "notify-keyspace-events", "")

    seen = run_both(redis, ambry, sc)
    messages = [raw.split(b"\r\n") for name, raw in seen if name == "sub"][1:]
    events = [(m[-4].split(b":")[1], m[-2]) for m in messages]
    # BLMOVE served: rpush on the destination, then lpop and del on the
    # source; then BLPOP served from the destination.
    assert events[:6] == [(b"rpush", b"s"), (b"rpush", b"d"), (b"lpop", b"s"), (b"del", b"s"), (b"lpop", b"d"),
                          (b"del", b"d")]


def test_scripts_unblock_clients_and_never_block(redis: ServerProcess, ambry: ServerProcess) -> None:
    probe = ambry.command("EVAL", "return 1", 0)
    if probe.startswith(b"-ERR unknown command"):
        pytest.skip("EVAL is not implemented yet")

    def sc(s: Session) -> None:
        s.send("a", "BLPOP", "k", 0)
        s.wait_blocked(1)
        s.cmd("p", "EVAL", "redis.call('rpush', KEYS[1], 'x', 'y'); return redis.call('lpop', KEYS[1])", 1, "k")
        s.read("a")  # served after the script, with what it left
        s.cmd("p", "EVAL", "return redis.call('blpop', KEYS[1], 0)", 1, "nokey")
        s.cmd("p", "EVAL", "return redis.call('blmove', KEYS[1], KEYS[2], 'LEFT', 'LEFT', 0)", 2, "nokey", "d")
        s.cmd("p", "EVAL", "return redis.call('blmpop', 0, 1, KEYS[1], 'LEFT')", 1, "nokey")

    run_both(redis, ambry, sc)


# -- effects (the one path), in-process ---------------------------------------------------


def _blocked_client(ip: InProcess, *argv: Any) -> Any:
    c = ip.new_client()
    r = ip.call(*argv, client=c)
    from ambry.server.client import NOREPLY

    assert r is NOREPLY
    return c


def test_served_pop_is_recorded_after_the_push_as_its_own_unit(inproc: InProcess) -> None:
    sink = inproc.record()
    _blocked_client(inproc, "BLPOP", "k", 0)
    _blocked_client(inproc, "BRPOP", "k", 0)
    inproc.call("RPUSH", "k", "a", "b", "c")
    assert sink.commands == [[b"SELECT", b"0"], [b"RPUSH", b"k", b"a", b"b", b"c"], [b"LPOP", b"k"],
                             [b"RPOP", b"k"]]
    assert sink.units == 3
    assert inproc.call("LRANGE", "k", 0, -1) == [b"b"]


def test_served_forms_of_every_blocking_command(inproc: InProcess) -> None:
    sink = inproc.record()
    _blocked_client(inproc, "BLMOVE", "s", "d", "RIGHT", "LEFT", 0)
    _blocked_client(inproc, "BRPOPLPUSH", "s", "d2", 0)
    _blocked_client(inproc, "BLMPOP", 0, 1, "s", "LEFT", "COUNT", 5)
    inproc.call("RPUSH", "s", "1", "2", "3", "4")
    assert sink.commands[1:] == [
        [b"RPUSH", b"s", b"1", b"2", b"3", b"4"],
        [b"LMOVE", b"s", b"d", b"right", b"left"],
        [b"RPOPLPUSH", b"s", b"d2"],
        [b"LPOP", b"s", b"2"],
    ]
    assert inproc.call("EXISTS", "s") == 0


def test_served_after_exec_follows_the_transaction(inproc: InProcess) -> None:
    sink = inproc.record()
    _blocked_client(inproc, "BLPOP", "q", 0)
    for argv in (("MULTI",), ("RPUSH", "q", "a"), ("RPUSH", "q", "b"), ("EXEC",)):
        inproc.call(*argv)
    assert sink.commands[1:] == [[b"MULTI"], [b"RPUSH", b"q", b"a"], [b"RPUSH", b"q", b"b"], [b"EXEC"],
                                 [b"LPOP", b"q"]]


def test_immediate_blocking_forms_are_rewritten(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("RPUSH", "k", "a", "b", "c", "d", "e")
    inproc.call("BLPOP", "nokey", "k", 0)
    inproc.call("BRPOP", "k", 0)
    inproc.call("BLMPOP", 0, 1, "k", "RIGHT", "COUNT", 1)
    inproc.call("BLMOVE", "k", "d", "left", "Right", 0)
    inproc.call("BRPOPLPUSH", "k", "d", 0)
    inproc.call("LMPOP", 1, "d", "LEFT", "COUNT", 10)
    assert sink.commands[2:] == [
        [b"LPOP", b"k"],
        [b"RPOP", b"k"],
        [b"RPOP", b"k", b"1"],
        [b"LMOVE", b"k", b"d", b"left", b"Right"],
        [b"RPOPLPUSH", b"k", b"d"],
        [b"LPOP", b"d", b"2"],
    ]


def test_wrongtype_destination_records_nothing(inproc: InProcess) -> None:
    from ambry.server.reply import Err

    sink = inproc.record()
    inproc.call("SET", "d", "x")
    c = _blocked_client(inproc, "BLMOVE", "s", "d", "LEFT", "LEFT", 0)
    inproc.call("RPUSH", "s", "v")
    assert c.blocked is None
    assert sink.commands[1:] == [[b"SET", b"d", b"x"], [b"RPUSH", b"s", b"v"]]
    assert inproc.call("LRANGE", "s", 0, -1) == [b"v"]
    assert inproc.srv.errorstats.get(b"WRONGTYPE") == 1
    assert isinstance(inproc.call("LPUSH", "d", "x"), Err)


def test_timeouts_without_an_event_loop(inproc: InProcess) -> None:
    from ambry.server import blocking

    c = _blocked_client(inproc, "BLPOP", "k", "0.01")
    forever = _blocked_client(inproc, "BLPOP", "k", 0)
    assert inproc.srv.blocked_clients == 2
    assert blocking.handle_timeouts(inproc.srv, int(time.time() * 1000) + 20) == 1
    assert c.blocked is None and forever.blocked is not None
    assert inproc.srv.blocked_clients == 1


def test_disconnect_cleans_up(inproc: InProcess) -> None:
    c = _blocked_client(inproc, "BLPOP", "k1", "k2", 0)
    db = inproc.srv.dbs[0]
    assert set(db.blocking_keys) == {b"k1", b"k2"}
    inproc.srv.clients[c.id] = c
    inproc.srv.free_client(c)
    assert db.blocking_keys == {} and inproc.srv.blocked_clients == 0
    inproc.call("RPUSH", "k1", "x")
    assert inproc.call("LLEN", "k1") == 1


@pytest.mark.parametrize(
    ("arg", "error"),
    [
        ("-1", "ERR timeout is negative"),
        ("inf", "ERR timeout is negative"),
        ("1e30", "ERR timeout is negative"),
        ("nan", "ERR timeout is not a float or out of range"),
        (" 1", "ERR timeout is not a float or out of range"),
        ("", "ERR timeout is not a float or out of range"),
    ],
)
def test_parse_timeout_errors(arg: str, error: str) -> None:
    from ambry.server.blocking import parse_timeout
    from ambry.server.reply import Err

    with pytest.raises(Err) as e:
        parse_timeout(arg.encode())
    assert e.value.msg == error.encode()


def test_parse_timeout_rounds_up_to_whole_milliseconds() -> None:
    from ambry.server.blocking import parse_timeout

    now = int(time.time() * 1000)
    assert parse_timeout(b"0") == 0
    assert parse_timeout(b"-0.0001") == 0
    assert 1 <= parse_timeout(b"1e-10") - now <= 50
    assert 1 <= parse_timeout(b"0.001") - now <= 50
    assert 1500 <= parse_timeout(b"1.5") - now <= 1550
    assert 5 <= parse_timeout(b"5", unit_seconds=False) - now <= 50
