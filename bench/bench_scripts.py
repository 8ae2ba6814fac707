#!/usr/bin/env python3
"""Lua scripting throughput and CPU per call of Ambry against redis-server.

Loads ``return redis.call('INCR', KEYS[1])`` with SCRIPT LOAD and the same
body as a library function (``FUNCTION LOAD``) on both servers, then runs

    redis-benchmark -r 100000 -n N -c 50 [-P 16] evalsha <sha> 1 key:__rand_int__
    redis-benchmark -r 100000 -n N -c 50 [-P 16] fcall incr 1 key:__rand_int__

against each in alternation (``-r`` placed before the command so the keys
vary).  CPU per call is the server's utime+stime from /proc around each run,
as bench.py measures it; the table gives the ratios ambry/redis.

    python bench/bench_scripts.py            # about half a minute
    python bench/bench_scripts.py --quick    # a smoke run
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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import CLK_TCK, HOST, Result, Server, cpu_ticks, table  # noqa: E402

SCRIPT = b"return redis.call('INCR', KEYS[1])"
LIBRARY = b"#!lua name=benchlib\nredis.register_function('incr', function(keys) return redis.call('INCR', keys[1]) end)"


def command(server: Server, *args: bytes) -> bytes:
    """One request; the first reply line (bulk payloads included)."""
    req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    with socket.create_connection((HOST, server.port), timeout=10) as s:
        s.sendall(req)
        data = s.recv(65536)
    if data.startswith(b"$"):
        return data.split(b"\r\n")[1]
    return data.split(b"\r\n")[0]


def prepare(server: Server) -> dict[str, list[str]]:
    """Load the script and the library; the redis-benchmark command of each case."""
    sha = command(server, b"SCRIPT", b"LOAD", SCRIPT)
    if len(sha) != 40:
        raise SystemExit(f"{server.name}: SCRIPT LOAD failed: {sha!r}")
    cases = {"evalsha": ["evalsha", sha.decode(), "1", "key:__rand_int__"]}
    lib = command(server, b"FUNCTION", b"LOAD", b"REPLACE", LIBRARY)
    if lib == b"benchlib":
        cases["fcall"] = ["fcall", "incr", "1", "key:__rand_int__"]
    return cases


def run(server: Server, cmd: list[str], requests: int, clients: int, pipeline: int) -> Result:
    if server.proc.poll() is not None:
        raise SystemExit(f"{server.name} died:\n{server.log.read_text(errors='replace')[-3000:]}")
    argv = ["redis-benchmark", "-h", HOST, "-p", str(server.port), "-c", str(clients), "-n", str(requests),
            "-P", str(pipeline), "-r", "100000", "--csv", *cmd]
    before = cpu_ticks(server.proc.pid)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    after = cpu_ticks(server.proc.pid)
    if out.returncode != 0:
        raise SystemExit(f"redis-benchmark failed against {server.name}:\n{out.stderr}")
    rows = [r for r in csv.reader(io.StringIO(out.stdout)) if r and r[0] != "test"]
    if not rows:
        raise SystemExit(f"no result from redis-benchmark against {server.name}:\n{out.stdout}\n{out.stderr}")
    return Result(float(rows[-1][1]), (after - before) / CLK_TCK * 1e6 / requests)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=None,
                    help="requests per run (default 200000 unpipelined, 500000 pipelined)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=16)
    args = ap.parse_args(argv)
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    plain, piped = (20_000, 50_000) if args.quick else (200_000, 500_000)
    if args.requests:
        plain = piped = args.requests
    modes = [(f"-c {args.clients}", 1, plain), (f"-c {args.clients} -P {args.pipeline}", args.pipeline, piped)]

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    servers: list[Server] = []
    try:
        redis = Server("redis", ["redis-server"])
        servers.append(redis)
        ambry = Server("ambry", [sys.executable, "-m", "ambry.server.main"])
        servers.append(ambry)
        rcases, acases = prepare(redis), prepare(ambry)
        rows = [["test", "mode", "redis rps", "ambry rps", "rps ratio", "redis us/call", "ambry us/call",
                 "CPU ratio"]]
        t0 = time.monotonic()
        for label, pipeline, n in modes:
            for name, rcmd in rcases.items():
                acmd = acases.get(name)
                if acmd is None:
                    rows.append([name, label, "-", "-", "-", "-", "-", "ambry: not available"])
                    continue
                r = run(redis, rcmd, n, args.clients, pipeline)
                a = run(ambry, acmd, n, args.clients, pipeline)
                rows.append([
                    name, label, f"{r.rps:,.0f}", f"{a.rps:,.0f}", f"{a.rps / r.rps:.2f}",
                    f"{r.us_per_req:.2f}", f"{a.us_per_req:.2f}",
                    f"{a.us_per_req / r.us_per_req:.1f}" if r.us_per_req else "n/a",
                ])
                print(f"  {name:<8} {label:<12} redis {r.rps:>10,.0f} rps   ambry {a.rps:>10,.0f} rps",
                      file=sys.stderr, flush=True)
        print()
        print(table(rows))
        print(f"\n{len(rows) - 1} cells, {time.monotonic() - t0:.0f} s; {plain} requests unpipelined, {piped} "
              f"pipelined; -r 100000; CPU = server utime+stime from /proc, SC_CLK_TCK={CLK_TCK}; "
              f"{os.cpu_count()} CPUs")
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for s in servers:
            s.stop()


if __name__ == "__main__":
    sys.exit(main())
