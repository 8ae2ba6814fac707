"""Replication end to end (spec/replication.md): Ambry as primary and as
replica, with real redis-server on the other side and with itself; full
sync disk-based and diskless, partial resync after a link drop, a full sync
forced by a small backlog, chained replicas, promotion, restarts, WAIT and
the replica's command rules.  Equality is DEBUG DIGEST on both sides plus
the function libraries."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis as redis_client
from conftest import ServerProcess
from replproxy import Proxy

LIB = """#!lua name=repllib
redis.register_function('bump', function(keys, args)
  local t = redis.call('TIME')
  redis.call('HSET', keys[1], 'at', t[1], 'r', tostring(math.random(1000)))
  return redis.call('INCR', keys[1] .. ':n')
end)
"""


def cli(s: ServerProcess) -> redis_client.Redis:
    return redis_client.Redis(host=s.host, port=s.port, socket_timeout=20)


def info(s: ServerProcess, section: str = "replication") -> dict[str, Any]:
    return cli(s).info(section)  # type: ignore[no-any-return]


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def link_up(replica: ServerProcess) -> bool:
    i = info(replica)
    return i.get("master_link_status") == "up" and not i.get("master_sync_in_progress")


def caught_up(primary: ServerProcess, replica: ServerProcess) -> bool:
    if not link_up(replica):
        return False
    return int(info(primary)["master_repl_offset"]) == int(info(replica)["master_repl_offset"])


def digest(s: ServerProcess) -> bytes:
    return cli(s).execute_command("DEBUG", "DIGEST")  # type: ignore[no-any-return]


def assert_same_data(primary: ServerProcess, replica: ServerProcess) -> None:
    """Equal digests once the replica has caught up.  Keys with short TTLs
    may expire on the primary between the two reads (its DEL then moves the
    offset), so the comparison is repeated until both agree."""

    def same() -> bool:
        p, r = cli(primary), cli(replica)
        return (
            caught_up(primary, replica) and digest(primary) == digest(replica) and p.dbsize() == r.dbsize()
            and caught_up(primary, replica)
        )

    wait_for(same, what="the replica to catch up with an equal digest and key count")
    p, r = cli(primary), cli(replica)
    assert p.execute_command("FUNCTION", "LIST") == r.execute_command("FUNCTION", "LIST")


def workload(s: ServerProcess, seed: int, rounds: int = 60) -> None:
    """Every type, MULTI/EXEC, EVAL and FCALL (TIME, math.random), SPOP,
    expiries, blocking pops served, several dbs."""
    rng = random.Random(seed)
    r = cli(s)
    if not r.execute_command("FUNCTION", "LIST", "LIBRARYNAME", "repllib"):
        r.execute_command("FUNCTION", "LOAD", LIB)
    r1 = redis_client.Redis(host=s.host, port=s.port, db=1, socket_timeout=20)
    for i in range(rounds):
        k = f"{seed}:{i % 17}"
        op = rng.randrange(14)
        if op == 0:
            r.set(f"s{k}", rng.randbytes(rng.randrange(1, 60)))
        elif op == 1:
            r.rpush(f"l{k}", *[rng.randrange(1000) for _ in range(rng.randrange(1, 8))])
            r.lpop(f"l{k}")
        elif op == 2:
            r.hset(f"h{k}", mapping={f"f{j}": rng.random() for j in range(rng.randrange(1, 6))})
            r.hincrbyfloat(f"h{k}", "x", 1.5)
        elif op == 3:
            r.sadd(f"S{k}", *[rng.randrange(50) for _ in range(5)])
            r.spop(f"S{k}")
        elif op == 4:
            r.zadd(f"z{k}", {f"m{j}": rng.random() for j in range(4)})
            r.zincrby(f"z{k}", 2, "m1")
        elif op == 5:
            r.xadd(f"x{k}", {"a": rng.randrange(100)})
        elif op == 6:
            p = r.pipeline(transaction=True)
            p.incr(f"c{k}")
            p.incrbyfloat(f"f{k}", 0.25)
            p.expire(f"c{k}", 100)
            p.execute()
        elif op == 7:
            r.eval("redis.call('SET', KEYS[1], redis.call('TIME')[1]) "
                   "return redis.call('RPUSH', KEYS[2], math.random(100))", 2, f"e{k}", f"el{k}")
        elif op == 8:
            r.fcall("bump", 1, f"fn{k}")
        elif op == 9:
            r.set(f"t{k}", "v", px=rng.choice([1, 30, 100000]))
        elif op == 10:
            r1.set(f"db1:{k}", i)
            r1.pfadd(f"hll{k}", *[rng.randrange(1000) for _ in range(10)])
        elif op == 11:
            r.delete(f"s{k}")
            r.setrange(f"sr{k}", rng.randrange(20), "xyz")
        elif op == 12:
            # a blocked client served by a push
            b = cli(s)
            t = threading.Thread(target=b.blpop, args=(f"bq{k}",), kwargs={"timeout": 5})
            t.start()
            time.sleep(0.05)
            r.rpush(f"bq{k}", "a", "b")
            t.join()
            b.close()
        else:
            r.geoadd(f"g{k}", (13.36 + rng.random(), 38.11, f"p{i}"))
    r1.close()
    r.close()


def make_replica(replica: ServerProcess, primary: ServerProcess | tuple[str, int]) -> None:
    host, port = primary if isinstance(primary, tuple) else (primary.host, primary.port)
    assert cli(replica).execute_command("REPLICAOF", host, port) in (b"OK", "OK", True)
    wait_for(lambda: link_up(replica), what="the link to come up")


# -- interop with real redis-server ---------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_real_redis_replica_of_ambry_primary(server_factory: Callable[..., ServerProcess], diskless: str) -> None:
    primary = server_factory("ambry", "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0")
    replica = server_factory("redis")
    workload(primary, 1)
    make_replica(replica, primary)
    workload(primary, 2)
    assert_same_data(primary, replica)
    # a link drop: the replica resumes with PSYNC and gets +CONTINUE
    before = int(info(primary, "stats")["sync_partial_ok"])
    cli(primary).execute_command("CLIENT", "KILL", "TYPE", "replica")
    workload(primary, 3, rounds=20)
    wait_for(lambda: int(info(primary, "stats")["sync_partial_ok"]) == before + 1, what="a partial resync")
    workload(primary, 4, rounds=20)
    assert_same_data(primary, replica)
    assert int(info(primary, "stats")["sync_full"]) == 1


@pytest.mark.interop
@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_ambry_replica_of_real_redis_primary(server_factory: Callable[..., ServerProcess], diskless: str) -> None:
    primary = server_factory("redis", "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0")
    replica = server_factory("ambry")
    workload(primary, 5)
    make_replica(replica, primary)
    workload(primary, 6)
    assert_same_data(primary, replica)
    before = int(info(primary, "stats")["sync_partial_ok"])
    cli(primary).execute_command("CLIENT", "KILL", "TYPE", "replica")
    workload(primary, 7, rounds=20)
    wait_for(lambda: int(info(primary, "stats")["sync_partial_ok"]) == before + 1, what="a partial resync")
    workload(primary, 8, rounds=20)
    assert_same_data(primary, replica)
    # the replica side of a drop: killing the primary's link on the replica
    before = int(info(primary, "stats")["sync_partial_ok"])
    cli(replica).execute_command("CLIENT", "KILL", "TYPE", "master")
    wait_for(lambda: int(info(primary, "stats")["sync_partial_ok"]) == before + 1, what="a partial resync")
    assert_same_data(primary, replica)


@pytest.mark.interop
@pytest.mark.parametrize("kinds", [("ambry", "redis"), ("redis", "ambry")])
def test_a_too_small_backlog_forces_a_full_sync(server_factory: Callable[..., ServerProcess],
                                                kinds: tuple[str, str]) -> None:
    primary = server_factory(kinds[0], "--repl-backlog-size", "16kb", "--repl-diskless-sync-delay", "0")
    replica = server_factory(kinds[1])
    proxy = Proxy(primary.port).start()
    try:
        workload(primary, 9, rounds=20)
        make_replica(replica, ("127.0.0.1", proxy.port))
        assert_same_data(primary, replica)
        proxy.refusing = True
        proxy.cut()
        wait_for(lambda: info(replica)["master_link_status"] == "down", what="the link to drop")
        r = cli(primary)
        for i in range(200):
            r.set(f"big{i}", "x" * 500)  # 100 KB: more than the backlog holds
        proxy.refusing = False
        wait_for(lambda: int(info(primary, "stats")["sync_full"]) == 2, what="a second full sync")
        assert int(info(primary, "stats")["sync_partial_ok"]) == 0
        assert_same_data(primary, replica)
    finally:
        proxy.close()


# -- Ambry to Ambry -------------------------------------------------------------------------


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_ambry_to_ambry_full_sync_and_chained_replica(server_factory: Callable[..., ServerProcess],
                                                       diskless: str) -> None:
    opts = ("--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0")
    a = server_factory("ambry", *opts)
    b = server_factory("ambry", *opts)
    c = server_factory("ambry", *opts)
    workload(a, 10)
    make_replica(b, a)
    make_replica(c, b)  # chained: c follows b, which forwards a's stream
    workload(a, 11)
    assert_same_data(a, b)
    assert_same_data(a, c)
    ia, ic = info(a), info(c)
    assert ia["master_replid"] == ic["master_replid"]
    assert ia["master_repl_offset"] == ic["master_repl_offset"]
    assert cli(b).execute_command("ROLE")[0] == b"slave"
    role = cli(a).execute_command("ROLE")
    assert role[0] == b"master" and len(role[2]) == 1 and role[2][0][1] == str(b.port).encode()


def test_promotion_lets_the_sibling_resync_partially(server_factory: Callable[..., ServerProcess]) -> None:
    a = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    b = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    c = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    workload(a, 12)
    make_replica(b, a)
    make_replica(c, a)
    workload(a, 13, rounds=30)
    assert_same_data(a, b)
    assert_same_data(a, c)
    old_id = info(a)["master_replid"]
    assert cli(b).execute_command("REPLICAOF", "NO", "ONE") in (b"OK", True)
    ib = info(b)
    assert ib["role"] == "master" and ib["master_replid2"] == old_id
    assert int(ib["second_repl_offset"]) == int(ib["master_repl_offset"]) + 1
    make_replica(c, b)
    assert int(info(b, "stats")["sync_partial_ok"]) == 1
    assert int(info(b, "stats")["sync_full"]) == 0
    workload(b, 14, rounds=30)
    assert_same_data(b, c)
    assert info(c)["master_replid"] == info(b)["master_replid"]


def test_restarted_replica_and_primary_resync_partially(server_factory: Callable[..., ServerProcess]) -> None:
    a = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    b = server_factory("ambry")
    workload(a, 15, rounds=30)
    make_replica(b, a)
    assert_same_data(a, b)
    # the replica restarts from its own RDB (repl-id / repl-offset AUX fields)
    cli(b).execute_command("CONFIG", "SET", "save", "3600 1")
    b.stop()
    workload(a, 16, rounds=20)
    b.extra += ["--replicaof", a.host, str(a.port)]
    b.start()
    wait_for(lambda: link_up(b), what="the restarted replica's link")
    assert int(info(a, "stats")["sync_partial_ok"]) == 1
    assert_same_data(a, b)
    # the primary restarts: its former replica continues through replid2
    old_id = info(a)["master_replid"]
    with pytest.raises(redis_client.ConnectionError):
        cli(a).execute_command("SHUTDOWN", "SAVE")
    a.stopped = True
    a.proc.wait(15)  # type: ignore[union-attr]
    a.start()
    ia = info(a)
    assert ia["master_replid2"] == old_id
    wait_for(lambda: int(info(a, "stats")["sync_partial_ok"]) == 1, what="the replica to continue")
    assert int(info(a, "stats")["sync_full"]) == 0
    workload(a, 17, rounds=20)
    assert_same_data(a, b)


# -- commands and rules ----------------------------------------------------------------------


def test_wait_counts_acknowledging_replicas(server_factory: Callable[..., ServerProcess]) -> None:
    a = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    b = server_factory("ambry")
    r = cli(a)
    assert r.execute_command("WAIT", 1, 100) == 0  # no replica: times out with 0
    make_replica(b, a)
    r.set("k", "v")
    assert r.execute_command("WAIT", 1, 5000) == 1
    assert r.execute_command("WAIT", 2, 200) == 1
    with pytest.raises(redis_client.ResponseError, match="WAIT cannot be used with replica instances"):
        cli(b).execute_command("WAIT", 1, 10)


def test_replica_rules_readonly_masterdown_and_expiry(server_factory: Callable[..., ServerProcess]) -> None:
    a = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    b = server_factory("ambry")
    make_replica(b, a)
    rb = cli(b)
    with pytest.raises(redis_client.ReadOnlyError):
        rb.set("x", 1)
    with pytest.raises(redis_client.ReadOnlyError, match="read only replica"):
        rb.eval("return redis.call('SET', 'x', 1)", 0)
    # a logically expired key is hidden on the replica but kept until the primary's DEL
    ra = cli(a)
    ra.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    ra.set("gone", "v", px=50)
    wait_for(lambda: caught_up(a, b), what="catch up")
    time.sleep(0.1)
    assert rb.get("gone") is None
    assert rb.dbsize() == 1
    ra.get("gone")  # lazy expiry on the primary sends DEL
    wait_for(lambda: rb.dbsize() == 0, what="the DEL from the primary")
    # replica-serve-stale-data no: MASTERDOWN while the link is down
    rb.config_set("replica-serve-stale-data", "no")
    a.stop()
    wait_for(lambda: info(b)["master_link_status"] == "down", what="link down")
    with pytest.raises(redis_client.exceptions.MasterDownError, match="replica-serve-stale-data is set to 'no'"):
        rb.get("x")
    with pytest.raises(redis_client.exceptions.MasterDownError):
        rb.ping()  # PING has no "stale" flag (Sentinel counts -MASTERDOWN as alive)
    i = info(b)
    assert i["master_link_down_since_seconds"] >= 0 and i["slave_repl_offset"] > 0


def test_min_replicas_to_write(server_factory: Callable[..., ServerProcess]) -> None:
    a = server_factory("ambry", "--repl-diskless-sync-delay", "0", "--min-replicas-to-write", "1")
    r = cli(a)
    with pytest.raises(redis_client.ResponseError, match="NOREPLICAS Not enough good replicas to write."):
        r.set("k", 1)
    assert r.get("k") is None
    b = server_factory("ambry")
    make_replica(b, a)
    wait_for(lambda: b"min_slaves_good_slaves:1" in a.command("INFO", "replication"), what="a good replica")
    assert r.set("k", 1)


def test_replicaof_errors_and_info_layout(server_factory: Callable[..., ServerProcess]) -> None:
    a = server_factory("ambry")
    r = cli(a)
    with pytest.raises(redis_client.ResponseError, match="Invalid master port"):
        r.execute_command("REPLICAOF", "127.0.0.1", "70000")
    with pytest.raises(redis_client.ResponseError, match="Unrecognized REPLCONF option: foo"):
        r.execute_command("REPLCONF", "foo", "bar")
    assert r.execute_command("REPLICAOF", "NO", "ONE") in (b"OK", True)
    raw = a.command("INFO", "replication")
    text = raw[raw.index(b"\r\n") + 2:].decode()
    keys = [line.split(":")[0] for line in text.split("\r\n")[1:] if line]
    assert keys == ["role", "connected_slaves", "master_failover_state", "master_replid", "master_replid2",
                    "master_repl_offset", "second_repl_offset", "repl_backlog_active", "repl_backlog_size",
                    "repl_backlog_first_byte_offset", "repl_backlog_histlen"]
    assert r.execute_command("ROLE") == [b"master", 0, []]


def test_failover_switches_roles_and_keeps_every_write(server_factory: Callable[..., ServerProcess]) -> None:
    a = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    b = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    workload(a, 18, rounds=30)
    make_replica(b, a)
    wait_for(lambda: info(a).get("slave0", {}).get("state") == "online", what="the replica online")
    ra = cli(a)
    with pytest.raises(redis_client.ResponseError, match="No failover in progress."):
        ra.execute_command("FAILOVER", "ABORT")
    with pytest.raises(redis_client.ResponseError, match="FAILOVER target HOST and PORT is not a replica."):
        ra.execute_command("FAILOVER", "TO", "127.0.0.1", 1)
    with pytest.raises(redis_client.ResponseError, match="requires both a timeout and target"):
        ra.execute_command("FAILOVER", "FORCE")
    with pytest.raises(redis_client.ResponseError, match="FAILOVER is not valid when server is a replica."):
        cli(b).execute_command("FAILOVER")
    assert ra.execute_command("FAILOVER", "TO", "127.0.0.1", b.port, "TIMEOUT", 5000) in (b"OK", True)
    wait_for(lambda: info(b)["role"] == "master" and info(a)["role"] == "slave", what="the switch")
    wait_for(lambda: link_up(a) and info(a)["master_failover_state"] == "no-failover", what="the old primary to follow")
    assert int(info(b, "stats")["sync_partial_ok"]) == 1
    workload(b, 19, rounds=20)
    assert_same_data(b, a)
    # and back, to any replica
    assert cli(b).execute_command("FAILOVER") in (b"OK", True)
    wait_for(lambda: info(a)["role"] == "master" and link_up(b), what="the switch back")
    assert_same_data(a, b)


def _info_keys(s: ServerProcess) -> list[str]:
    raw = s.command("INFO", "replication")
    text = raw[raw.index(b"\r\n") + 2:].decode()
    return [line.split(":")[0] for line in text.split("\r\n")[1:] if line]


@pytest.mark.interop
def test_info_replication_lists_the_fields_redis_lists(server_factory: Callable[..., ServerProcess]) -> None:
    primary = server_factory("redis", "--repl-diskless-sync-delay", "0")
    ambry_replica = server_factory("ambry")
    redis_replica = server_factory("redis")
    make_replica(ambry_replica, primary)
    make_replica(redis_replica, primary)
    assert _info_keys(ambry_replica) == _info_keys(redis_replica)
    # as primaries with one replica each
    a = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    make_replica(ambry_replica, a)
    wait_for(lambda: info(a).get("slave0", {}).get("state") == "online", what="online")
    assert _info_keys(a) == _info_keys(primary)
    role = cli(ambry_replica).execute_command("ROLE")
    assert role[:4] == [b"slave", b"127.0.0.1", a.port, b"connected"]


def test_a_replica_past_its_output_buffer_limit_is_dropped(server_factory: Callable[..., ServerProcess]) -> None:
    a = server_factory("ambry", "--repl-diskless-sync-delay", "0",
                       "--client-output-buffer-limit", "replica 256kb 0 0")
    b = server_factory("ambry")
    make_replica(b, a)
    wait_for(lambda: info(a).get("connected_slaves") == 1, what="the replica")
    assert b.proc is not None
    b.proc.send_signal(19)  # SIGSTOP: the replica stops reading
    try:
        r = cli(a)
        value = "v" * 10000
        deadline = time.monotonic() + 20
        while info(a)["connected_slaves"] and time.monotonic() < deadline:
            for i in range(100):
                r.set(f"k{i}", value)
        assert info(a)["connected_slaves"] == 0
        assert "scheduled to be closed ASAP for overcoming of output buffer limits" in a.log_text()
    finally:
        b.proc.send_signal(18)  # SIGCONT
    # it comes back and syncs again
    wait_for(lambda: caught_up(a, b), what="the replica to resync")
    assert digest(a) == digest(b)


def test_a_replica_with_aof_keeps_the_applied_stream(server_factory: Callable[..., ServerProcess]) -> None:
    a = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    b = server_factory("ambry", "--appendonly", "yes")
    workload(a, 20, rounds=30)
    make_replica(b, a)
    workload(a, 21, rounds=40)
    assert_same_data(a, b)
    wait_for(lambda: int(info(b, "persistence")["aof_rewrite_in_progress"]) == 0, what="the AOF rewrite")
    expected = digest(a)
    b.stop()  # restarts without replicaof: the AOF alone rebuilds the data
    b.start()
    assert digest(b) == expected


def _read_command(sock: Any, buf: bytearray) -> list[bytes]:
    """One RESP array from a raw socket (skipping bare newlines)."""
    from replication_helpers import parse_command  # noqa: PLC0415

    while True:
        got = parse_command(buf)
        if got is not None:
            return got
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data


@pytest.mark.parametrize("aof", ["no", "yes"])
def test_replica_acks_a_scripted_primary_with_the_offset_before_getack(
        server_factory: Callable[..., ServerProcess], aof: str) -> None:
    """A fake primary (spec §20): PING, REPLCONFs, PSYNC, +FULLRESYNC, a $len
    RDB; then SELECT+SET (50 bytes) and GETACK (37 bytes): the ACK says 1050."""
    import socket

    from ambry.persistence.rdb.writer import RDBWriter

    replica = server_factory("ambry", "--appendonly", aof)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    try:
        cli(replica).execute_command("REPLICAOF", "127.0.0.1", lsock.getsockname()[1])
        lsock.settimeout(10)
        conn, _ = lsock.accept()
        conn.settimeout(10)
        buf = bytearray()
        assert _read_command(conn, buf)[0].upper() == b"PING"
        conn.sendall(b"+PONG\r\n")
        assert _read_command(conn, buf)[:2] == [b"REPLCONF", b"listening-port"]
        assert _read_command(conn, buf) == [b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]
        conn.sendall(b"+OK\r\n+OK\r\n")
        psync = _read_command(conn, buf)
        # a demoted primary offers its own history (spec §2: its replid and offset + 1)
        assert psync[0] == b"PSYNC" and psync[2] == b"1" and len(psync[1]) == 40
        rdb = RDBWriter(10).header() + b"\xff" + b"\x00" * 8
        rid = "0123456789abcdef0123456789abcdef01234567"
        conn.sendall(b"\n+FULLRESYNC " + rid.encode() + b" 1000\r\n\n$%d\r\n" % len(rdb) + rdb)
        wait_for(lambda: link_up(replica), what="the link")
        stream = (b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n")
        getack = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n"
        assert len(stream) == 50 and len(getack) == 37
        conn.sendall(stream + getack)
        while True:
            ack = _read_command(conn, buf)
            if ack[2] == b"1050":
                break
            assert ack[2] == b"1000"  # a periodic ACK sent before the stream arrived
        assert ack[:2] == [b"REPLCONF", b"ACK"]
        if aof == "yes":
            assert ack[3] == b"FACK"
        else:
            assert len(ack) == 3
        assert cli(replica).get("x") == b"1"
        i = info(replica)
        assert i["master_replid"] == rid
        wait_for(lambda: int(info(replica)["slave_repl_offset"]) == 1087, what="the GETACK counted")
        conn.close()
    finally:
        lsock.close()


@pytest.mark.parametrize("mode", ["disabled", "swapdb"])
def test_a_damaged_transfer_keeps_the_old_dataset_only_with_swapdb(
        server_factory: Callable[..., ServerProcess], mode: str) -> None:
    """repl-diskless-load swapdb puts the old dataset back when the primary's
    RDB fails to load; disabled has flushed it first, as Redis does."""
    import socket

    from ambry.persistence.rdb.writer import RDBWriter

    replica = server_factory("ambry", "--repl-diskless-load", mode)
    cli(replica).set("old", "1")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    lsock.settimeout(10)
    try:
        cli(replica).execute_command("REPLICAOF", "127.0.0.1", lsock.getsockname()[1])
        conn, _ = lsock.accept()
        conn.settimeout(10)
        buf = bytearray()
        _read_command(conn, buf)
        conn.sendall(b"+PONG\r\n")
        _read_command(conn, buf)
        _read_command(conn, buf)
        conn.sendall(b"+OK\r\n+OK\r\n")
        _read_command(conn, buf)
        bad = RDBWriter(10).header() + b"\xff" + b"\x01" * 8  # a wrong CRC-64
        conn.sendall(b"+FULLRESYNC " + b"a" * 40 + b" 7\r\n$%d\r\n" % len(bad) + bad)
        wait_for(lambda: "Failed trying to load the MASTER synchronization DB" in replica.log_text(),
                 what="the failed load")
        r = cli(replica)
        if mode == "swapdb":
            assert r.get("old") == b"1"
        else:
            assert r.dbsize() == 0
        conn.close()
    finally:
        lsock.close()
