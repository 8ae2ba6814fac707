#!/usr/bin/env python3
"""Throughput and CPU per request of Ambry against real redis-server.

Starts ``redis-server`` and ``ambry-server`` on free loopback ports (no
persistence), then runs ``redis-benchmark`` against each in alternation, in
the same run, for PING, SET, GET, INCR, MSET, LPUSH, LPOP, LRANGE_100,
SADD, HSET, SPOP and ZADD, without pipelining
(``-c 50``) and pipelined (``-c 50 -P 16``).  Around every run it reads the
server's utime+stime from ``/proc/PID/stat``, so besides requests per second
it reports CPU microseconds per request:

    us/req = delta ticks / SC_CLK_TCK * 1e6 / requests

and prints one table: test, mode, redis rps, ambry rps, rps ratio
(ambry/redis), redis us/req, ambry us/req, CPU ratio (ambry/redis).

    python bench/bench.py            # about a minute
    python bench/bench.py --quick    # a smoke run, seconds
    python bench/bench.py --requests 200000

Both servers are stopped on exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
TESTS = ["ping_mbulk", "set", "get", "incr", "mset", "lpush", "lpop", "lrange_100", "sadd", "hset", "spop", "zadd"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_ticks(pid: int, children: bool = False) -> int:
    """utime + stime of a process, in clock ticks (/proc/PID/stat fields 14, 15);
    with ``children`` plus cutime + cstime (16, 17: its reaped children, such
    as snapshot forks)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15
    ticks = int(fields[11]) + int(fields[12])
    return ticks + int(fields[13]) + int(fields[14]) if children else ticks


class Server:
    """One server subprocess on a free port, in a scratch directory."""

    def __init__(self, name: str, argv: list[str], extra: Sequence[str] = (), workdir: Path | None = None,
                 ready_timeout: float = 60.0) -> None:
        """``extra`` options follow (and override) the defaults; a given
        ``workdir`` is used as is and left in place by :meth:`stop`."""
        self.name = name
        self.port = free_port()
        self.own_dir = workdir is None
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-")) if workdir is None else workdir
        self.log = self.dir / "server.log"
        opts = ["--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no", *extra]
        t0 = time.monotonic()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv + opts, cwd=self.dir, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        try:
            self._wait_ready(ready_timeout)
        except BaseException:  # a server that never answered is not left behind
            self.proc.kill()
            self.proc.wait()
            raise
        #: seconds from the start of the process to its first +PONG (start-up and load)
        self.ready_seconds = time.monotonic() - t0

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited at start-up:\n{self.log.read_text(errors='replace')}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise SystemExit(f"{self.name} did not answer PING within {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


# One request per redis-benchmark test, to check the server implements it
# (redis-benchmark counts error replies as answered requests).
PROBES = {
    "ping_mbulk": b"*1\r\n$4\r\nPING\r\n",
    "ping_inline": b"PING\r\n",
    "set": b"SET key:__rand_int__ xxx\r\n",
    "get": b"GET key:__rand_int__\r\n",
    "incr": b"INCR counter:__rand_int__\r\n",
    "mset": b"MSET key:__rand_int__ xxx\r\n",
}


def probe(server: Server, test: str) -> str | None:
    """The error the server answers to the test's command, if any."""
    req = PROBES.get(test)
    if req is None:
        return None
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        s.sendall(req)
        reply = s.recv(4096)
    if reply.startswith(b"-"):
        return reply[1:].split(b"\r\n")[0].decode(errors="replace")
    return None


@dataclass
class Result:
    rps: float
    us_per_req: float


def run_benchmark(server: Server, test: str, requests: int, clients: int, pipeline: int) -> Result:
    """One redis-benchmark run; rps from its CSV, CPU from /proc."""
    if server.proc.poll() is not None:
        raise SystemExit(f"{server.name} died:\n{server.log.read_text(errors='replace')[-3000:]}")
    cmd = [
        "redis-benchmark", "-h", HOST, "-p", str(server.port), "-c", str(clients), "-n", str(requests),
        "-P", str(pipeline), "-t", test, "--csv",
    ]
    before = cpu_ticks(server.proc.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    after = cpu_ticks(server.proc.pid)
    if out.returncode != 0:
        raise SystemExit(f"redis-benchmark failed against {server.name}:\n{out.stderr}")
    rows = [r for r in csv.reader(io.StringIO(out.stdout)) if r and r[0] != "test"]
    if not rows:
        raise SystemExit(f"no result from redis-benchmark against {server.name}:\n{out.stdout}\n{out.stderr}")
    rps = float(rows[-1][1])
    return Result(rps, (after - before) / CLK_TCK * 1e6 / requests)


def table(rows: list[list[str]]) -> str:
    """A Markdown table (readable as plain text too)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("| " + " | ".join(c.rjust(w) if n and i > 1 else c.ljust(w)
                                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=None,
                    help="requests per run (default 200000 unpipelined, 1000000 pipelined)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (20000 / 100000 requests)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--tests", default=",".join(TESTS), help="comma-separated redis-benchmark -t names")
    args = ap.parse_args(argv)

    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian: apt-get install redis-server redis-tools)", file=sys.stderr)
            return 2
    plain, piped = (20_000, 100_000) if args.quick else (200_000, 1_000_000)
    if args.requests:
        plain = piped = args.requests
    modes = [
        (f"-c {args.clients}", 1, plain),
        (f"-c {args.clients} -P {args.pipeline}", args.pipeline, piped),
    ]

    servers: list[Server] = []

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        redis = Server("redis", ["redis-server"])
        servers.append(redis)
        ambry = Server("ambry", [sys.executable, "-m", "ambry.server.main"])
        servers.append(ambry)
        rows = [["test", "mode", "redis rps", "ambry rps", "rps ratio", "redis us/req", "ambry us/req",
                 "CPU ratio"]]
        t0 = time.monotonic()
        for label, pipeline, n in modes:
            for test in args.tests.split(","):
                err = probe(ambry, test)
                if err is not None:
                    rows.append([test, label, "-", "-", "-", "-", "-", f"ambry: {err[:40]}"])
                    continue
                # alternate: redis, ambry, one after the other for each cell
                r = run_benchmark(redis, test, n, args.clients, pipeline)
                a = run_benchmark(ambry, test, n, args.clients, pipeline)
                rows.append([
                    test, label, f"{r.rps:,.0f}", f"{a.rps:,.0f}", f"{a.rps / r.rps:.2f}",
                    f"{r.us_per_req:.2f}", f"{a.us_per_req:.2f}",
                    f"{a.us_per_req / r.us_per_req:.1f}" if r.us_per_req else "n/a",
                ])
                print(f"  {test:<10} {label:<12} redis {r.rps:>12,.0f} rps   ambry {a.rps:>12,.0f} rps",
                      file=sys.stderr, flush=True)
        print()
        print(table(rows))
        print(f"\n{len(rows) - 1} cells, {time.monotonic() - t0:.0f} s; redis-benchmark -n {plain} "
              f"(unpipelined) / {piped} (pipelined); CPU = server utime+stime from /proc, "
              f"SC_CLK_TCK={CLK_TCK}; {os.cpu_count()} CPUs")
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for s in servers:
            s.stop()


if __name__ == "__main__":
    sys.exit(main())
