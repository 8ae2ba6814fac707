"""Every ``tests/corpus/*.txt`` file run, in lockstep, on a redis-server and
an ambry-server primary (AOF on, ``appendfsync always``), each with a replica
of its kind attached.  Afterwards: does the replica hold the primary's
dataset, and does the primary restarted from its AOF hold it too (DEBUG
DIGEST, and INFO keyspace's key counts)?  Ambry must answer yes wherever
redis-server does.

The corpus drives the same connections redis-py or redis-benchmark would,
so its commands take the server's inlined execution path: this checks that
whatever they change reaches the AOF and the replica as the same effects.
(The replies themselves are compared by test_differential.py.)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ServerProcess
from differential import RespConn, Runner

CORPUS = Path(__file__).resolve().parent / "corpus"
FILES = sorted(CORPUS.glob("*.txt"))
# Keys whose TTL ends within this many ms are waited out before the digests
# are taken, so no key expires between the digest and the restart.
SETTLE_MS = 6000


def _dbs(c: RespConn) -> list[int]:
    info = c.command("INFO", "keyspace").decode()
    return [int(n) for n in re.findall(r"^db(\d+):", info, re.M)]


def _settle(c: RespConn) -> None:
    """Expire what is due on the primary (lazily, by touching each key: the
    DELs go to the AOF and the replica), waiting out TTLs that end soon."""
    c.command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    deadline = time.monotonic() + SETTLE_MS / 1000 + 2
    while True:
        soonest = 0
        for db in _dbs(c):
            c.command("SELECT", db)
            keys = c.command("KEYS", "*")
            for key in re.findall(rb"\$\d+\r\n(.*?)\r\n", keys, re.S):
                ttl = int(c.command("PTTL", key)[1:-2])
                if 0 < ttl <= SETTLE_MS:
                    soonest = max(soonest, ttl)
        c.command("SELECT", 0)
        if not soonest:
            return
        assert time.monotonic() < deadline
        time.sleep(soonest / 1000 + 0.05)


def _field(c: RespConn, name: str) -> int:
    m = re.search(rb"^%s:(\d+)" % name.encode(), c.command("INFO", "replication"), re.M)
    assert m is not None
    return int(m.group(1))


def _digests(c: RespConn) -> tuple[bytes, bytes]:
    """DEBUG DIGEST (the whole dataset) and the key counts of INFO keyspace."""
    counts = re.findall(rb"^db\d+:keys=\d+", c.command("INFO", "keyspace"), re.M)
    return c.command("DEBUG", "DIGEST"), b",".join(counts)


def _catch_up(primary: RespConn, replica: RespConn) -> None:
    """Until the replica has applied everything the primary has sent (WAIT
    would not do: the connection asking wrote nothing, so it waits for nothing)."""
    deadline = time.monotonic() + 30
    while _field(replica, "slave_repl_offset") != _field(primary, "master_repl_offset"):
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)


class _Pair:
    """A primary (AOF on, fsync always) and its replica, of one kind."""

    def __init__(self, kind: str, factory: Callable[..., ServerProcess]) -> None:
        self.kind = kind
        self.primary = factory(kind, "--appendonly", "yes", "--appendfsync", "always",
                               "--repl-diskless-sync-delay", "0")
        self.replica = factory(kind)
        rc = self.replica.conn()
        rc.command("REPLICAOF", self.primary.host, self.primary.port)
        deadline = time.monotonic() + 20
        while b"master_link_status:up" not in rc.command("INFO", "replication"):
            assert time.monotonic() < deadline, f"the {kind} replica did not connect"
            time.sleep(0.05)
        rc.close()

    def outcome(self) -> tuple[bool, bool]:
        """(the replica holds the primary's dataset, so does the primary
        restarted from its AOF)."""
        self.primary.check_alive()
        pc, rc = self.primary.conn(), self.replica.conn()
        pc.command("AUTH", "default", "")  # in case the file changed the default user
        _settle(pc)
        want = _digests(pc)
        _catch_up(pc, rc)
        replica_ok = _digests(rc) == want
        pc.close()
        rc.close()
        self.primary.restart()
        pc = self.primary.conn()
        aof_ok = _digests(pc) == want
        pc.close()
        return replica_ok, aof_ok


@pytest.mark.interop
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_effects_reach_the_aof_and_the_replica(path: Path, server_factory: Callable[..., ServerProcess]) -> None:
    """Wherever redis-server's replica and AOF reproduce its primary's
    dataset after the file, Ambry's do too.  (Where Redis's do not -- a
    BITFIELD whose every write failed creates its key without propagating
    it; HLL encodings follow each server's own hll-sparse-max-bytes -- the
    check has nothing to demand.)"""
    redis = _Pair("redis", server_factory)
    ambry = _Pair("ambry", server_factory)
    Runner(redis.primary.addr, ambry.primary.addr).run_file(path, resp3=False)
    theirs = redis.outcome()
    mine = ambry.outcome()
    assert mine[0] or not theirs[0], "the replica's dataset differs from the primary's"
    assert mine[1] or not theirs[1], "the dataset loaded from the AOF differs from the one written"
