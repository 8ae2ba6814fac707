#!/usr/bin/env python3
"""RDB snapshots of Ambry against real redis-server: SAVE time, load time
and dump size for the same dataset, as ratios (ambry / redis).

The dataset (issue 5's): 600k strings and 100k each of hashes, lists, sets
and sorted sets with 10 elements, built in ``redis-server`` with a pipelined
command stream.  Then:

* redis SAVE, timed round trip (it includes the fsync), best of ``--repeat``;
* redis load: a fresh redis-server started on that dump; the time is the
  "DB loaded from disk: N seconds" line of its log;
* Ambry load: ``ambry-server`` started on the same (Redis-written) dump,
  timed by the same log line; DBSIZE must match;
* both loads best of ``--repeat``, redis and Ambry taking turns (so that
  whatever else runs on the machine weighs on both alike);
* Ambry SAVE (from the last Ambry started), timed round trip, best of
  ``--repeat``;
* sizes: both dumps.

Targets: load and save within 4x of redis-server, size within 1.1x.

    python bench/bench_rdb.py            # the 1M-key dataset (a few minutes)
    python bench/bench_rdb.py --scale 0.05   # a smoke run

Every server started is stopped on exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
TARGETS = {"save": 4.0, "load": 4.0, "size": 1.1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess on a free port, in its own directory."""

    def __init__(self, name: str, argv: list[str], workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.dir = workdir
        self.log = workdir / "server.log"
        opts = ["--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
                "--dir", str(workdir)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv + opts, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited at start-up:\n{self.log.read_text(errors='replace')}")
            try:
                if self.command("PING") == b"+PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"{self.name} did not start")

    def command(self, *args: str | bytes, timeout: float = 600.0) -> bytes:
        """One command; the first reply line (enough for these replies)."""
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a.encode() if isinstance(a, str) else a
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        with socket.create_connection((HOST, self.port), timeout=timeout) as s:
            s.sendall(b"".join(parts))
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("connection closed")
                buf += chunk
        return buf.split(b"\r\n", 1)[0]

    def loaded_seconds(self) -> float:
        m = re.search(r"DB loaded from disk: ([0-9.]+) seconds", self.log.read_text(errors="replace"))
        if m is None:
            raise SystemExit(f"{self.name} logged no load time:\n{self.log.read_text(errors='replace')}")
        return float(m.group(1))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def dataset_stream(scale: float) -> bytes:
    """The dataset as one pipelined RESP stream."""
    out: list[bytes] = []

    def cmd(*a: bytes) -> None:
        out.append(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))

    for i in range(int(600_000 * scale)):
        cmd(b"SET", b"string:%d" % i, b"value-%d-abcdefgh" % i)
    for i in range(int(100_000 * scale)):
        h = [b"HSET", b"hash:%d" % i]
        for j in range(10):
            h += [b"field%d" % j, b"v%d" % (i + j)]
        cmd(*h)
        cmd(b"RPUSH", b"list:%d" % i, *[b"item-%d" % (i + j) for j in range(10)])
        cmd(b"SADD", b"set:%d" % i, *[b"member-%d" % (i + j) for j in range(10)])
        z = [b"ZADD", b"zset:%d" % i]
        for j in range(10):
            z += [b"%d" % (j * 3), b"zm-%d" % (i + j)]
        cmd(*z)
    return b"".join(out)


def timed_save(server: Server, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        reply = server.command("SAVE")
        dt = time.perf_counter() - t0
        if reply != b"+OK":
            raise SystemExit(f"{server.name} SAVE failed: {reply!r}")
        best = min(best, dt)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="dataset size factor (1.0 = 1M keys)")
    ap.add_argument("--repeat", type=int, default=3, help="SAVE runs and loads per server (best kept)")
    ap.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    args = ap.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="bench-rdb-"))
    servers: list[Server] = []

    def start(name: str, argv_: list[str], sub: str) -> Server:
        d = root / sub
        d.mkdir()
        s = Server(name, argv_, d)
        servers.append(s)
        return s

    def start_on(name: str, argv_: list[str], dump: Path, sub: str) -> Server:
        """A server started on a copy of ``dump`` in its own directory."""
        d = root / sub
        d.mkdir()
        shutil.copy(dump, d / "dump.rdb")
        s = Server(name, argv_, d)
        servers.append(s)
        return s

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    ambry_argv = [sys.executable, "-m", "ambry.server.main"]
    try:
        print(f"building the dataset (scale {args.scale}) in redis-server ...", file=sys.stderr)
        r = start("redis", [args.redis], "redis-build")
        stream = dataset_stream(args.scale)
        pipe = subprocess.run(["redis-cli", "-p", str(r.port), "--pipe"], input=stream, capture_output=True)
        if pipe.returncode != 0:
            raise SystemExit(f"redis-cli --pipe failed: {pipe.stdout!r} {pipe.stderr!r}")
        nkeys = int(r.command("DBSIZE")[1:])
        redis_save = timed_save(r, args.repeat)
        redis_dump = r.dir / "dump.rdb"
        redis_size = redis_dump.stat().st_size
        r.stop()

        print("loading it into redis-server and ambry-server ...", file=sys.stderr)
        redis_load = ambry_load = float("inf")
        a: Server | None = None
        for i in range(max(1, args.repeat)):
            if a is not None:
                a.stop()
                shutil.rmtree(a.dir, ignore_errors=True)
            r2 = start_on("redis", [args.redis], redis_dump, f"redis-load-{i}")
            redis_load = min(redis_load, r2.loaded_seconds())
            r2.stop()
            shutil.rmtree(r2.dir, ignore_errors=True)
            a = start_on("ambry", ambry_argv, redis_dump, f"ambry-{i}")
            ambry_load = min(ambry_load, a.loaded_seconds())
            got = int(a.command("DBSIZE")[1:])
            if got != nkeys:
                raise SystemExit(f"ambry loaded {got} keys, redis had {nkeys}")
        assert a is not None
        print("saving it from ambry-server ...", file=sys.stderr)
        ambry_save = timed_save(a, args.repeat)
        ambry_size = (a.dir / "dump.rdb").stat().st_size
        a.stop()
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)

    rows = [
        ("SAVE (s)", redis_save, ambry_save, "save"),
        ("load (s)", redis_load, ambry_load, "load"),
        ("size (bytes)", redis_size, ambry_size, "size"),
    ]
    print(f"dataset: {nkeys} keys; RDB {redis_size / 1e6:.1f} MB")
    print(f"{'metric':<14}{'redis':>14}{'ambry':>14}{'ratio':>9}{'target':>9}  ok")
    for name, rv, av, key in rows:
        ratio = av / rv if rv else float("inf")
        fmt = "{:>14.3f}" if key != "size" else "{:>14d}"
        ok = "yes" if ratio <= TARGETS[key] else "NO"
        print(f"{name:<14}" + fmt.format(rv) + fmt.format(av) + f"{ratio:>9.2f}{TARGETS[key]:>8.1f}x  {ok}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
