"""A replication link that keeps breaking (spec/replication.md §5, §6, §9):
the link runs through tests/replproxy.py, which cuts it every 200-500 ms
and slows it down at times, while a write load of every type, MULTI/EXEC,
EVAL and FCALL runs on the primary.  Once the proxy is healthy again the
replica must catch up and hold exactly the primary's data (DEBUG DIGEST).
Ambry on both sides, and Ambry against a real redis-server either way."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest
from conftest import ServerProcess
from replproxy import Proxy
from test_replication import assert_same_data, info, make_replica, workload

FAULT_SECONDS = 6.0


class Load(threading.Thread):
    """``workload`` rounds on the primary until stopped; an exception ends
    the thread and is kept for the test to raise."""

    def __init__(self, primary: ServerProcess, seed: int) -> None:
        super().__init__(daemon=True)
        self.primary = primary
        self.seed = seed
        self.stop_flag = threading.Event()
        self.rounds = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_flag.is_set():
                workload(self.primary, self.seed * 1000 + self.rounds, rounds=30)
                self.rounds += 1
        except BaseException as e:  # noqa: BLE001 - re-raised by the test
            self.error = e


def break_link_under_load(primary: ServerProcess, replica: ServerProcess, seed: int) -> None:
    """Follow ``primary`` through a proxy, cut and delay the link repeatedly
    under load, heal it, and compare the data."""
    proxy = Proxy(primary.port).start()
    load = Load(primary, seed)
    try:
        workload(primary, seed, rounds=30)
        make_replica(replica, ("127.0.0.1", proxy.port))
        load.start()
        rng = random.Random(seed)
        deadline = time.monotonic() + FAULT_SECONDS
        cuts = 0
        while time.monotonic() < deadline and load.is_alive():
            time.sleep(rng.uniform(0.2, 0.5))
            proxy.delay = rng.choice([0.0, 0.0, 0.005, 0.02, 0.05])
            proxy.split = rng.random() < 0.5
            proxy.cut()
            cuts += 1
        proxy.delay = 0.0
        proxy.split = False
        load.stop_flag.set()
        load.join(60)
        assert not load.is_alive(), "the write load did not stop"
        if load.error is not None:
            raise load.error
        assert load.rounds >= 1 and cuts >= 10
        assert_same_data(primary, replica)
        # the link was really re-established after cuts
        assert proxy.accepted >= 3, f"only {proxy.accepted} replication connections"
        stats = info(primary, "stats")
        assert int(stats["sync_partial_ok"]) + int(stats["sync_full"]) >= 3
        ir = info(replica)
        offsets = (ir["slave_read_repl_offset"], ir["slave_repl_offset"], info(primary)["master_repl_offset"])
        assert len(set(offsets)) == 1, f"replica read/applied offsets and primary offset differ: {offsets}"
    except BaseException:
        load.stop_flag.set()
        load.join(30)
        print(f"--- primary ({primary.kind}) log ---\n{primary.log_text(150)}")
        print(f"--- replica ({replica.kind}) log ---\n{replica.log_text(150)}")
        raise
    finally:
        proxy.close()


@pytest.mark.parametrize("backlog", ["1mb", "16kb"])
def test_ambry_replica_of_ambry_survives_a_flapping_link(server_factory: Callable[..., ServerProcess],
                                                         backlog: str) -> None:
    # 16kb: the backlog cannot cover a drop, so most reconnections are full
    # syncs, themselves cut in the middle.
    primary = server_factory("ambry", "--repl-diskless-sync-delay", "0", "--repl-backlog-size", backlog)
    replica = server_factory("ambry")
    break_link_under_load(primary, replica, seed=101 if backlog == "1mb" else 102)


@pytest.mark.interop
def test_real_redis_replica_of_ambry_survives_a_flapping_link(server_factory: Callable[..., ServerProcess]) -> None:
    primary = server_factory("ambry", "--repl-diskless-sync-delay", "0")
    replica = server_factory("redis")
    break_link_under_load(primary, replica, seed=103)


@pytest.mark.interop
def test_ambry_replica_of_real_redis_survives_a_flapping_link(server_factory: Callable[..., ServerProcess]) -> None:
    primary = server_factory("redis", "--repl-diskless-sync-delay", "0")
    replica = server_factory("ambry")
    break_link_under_load(primary, replica, seed=104)
