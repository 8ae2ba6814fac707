#!/usr/bin/env python3
"""AOF persistence of Ambry against real redis-server: SET throughput with
``appendonly yes``, BGREWRITEAOF time and AOF load time, as ratios
(ambry / redis).

Part ``set`` -- for ``appendfsync everysec`` and ``always`` (and, as the
reference, ``appendonly no``) a redis-server and an ambry-server, each on a
free port in its own directory, ``--save ""``, automatic rewrites off;
``redis-benchmark -t set`` runs against them in alternation, unpipelined
(``-c 50``) and pipelined (``-c 50 -P 16``).  Besides requests per second it
reports the server's CPU microseconds per request (utime+stime from
``/proc/PID/stat`` around the run, bench.py's ``run_benchmark``).

Part ``rewrite`` -- the 1M-key dataset of bench_rdb.py (600k strings, 100k
each of hashes, lists, sets and sorted sets of 10 elements), for
``aof-use-rdb-preamble yes`` and ``no``, redis-server and Ambry taking turns,
one server running at a time:

* a server with ``appendonly yes`` (everysec) in a fresh directory is fed
  the dataset with ``redis-cli --pipe`` (timed, for information);
* BGREWRITEAOF, timed from the command until INFO persistence shows
  ``aof_rewrite_in_progress:0`` with ``aof_rewrites`` incremented (polled
  every 50 ms), best of ``--repeat``; the CPU time of the server and its
  rewrite child meanwhile (utime+stime+cutime+cstime from ``/proc``), which
  a busy machine disturbs less than the wall time; the new base's size;
* the server is stopped (SIGTERM) and started again on its directory; the
  load time runs from the start of the process until PING answers +PONG
  (not -LOADING), best of ``--repeat``; also the server's CPU time at
  that moment (start-up included) and the "DB loaded from append only
  file" time of its log; DBSIZE must equal the generated key count.

    python bench/bench_aof.py              # everything, 1M keys (several minutes)
    python bench/bench_aof.py --quick      # a smoke run (50k keys, short benchmarks)
    python bench/bench_aof.py --part rewrite --keys 200000

The load average is printed before and after: the numbers mean little when
something else keeps the CPUs busy.  Every server started is stopped on exit,
on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rdb import dataset_stream  # noqa: E402

from bench import CLK_TCK, HOST, Server, cpu_ticks, run_benchmark, table  # noqa: E402

REDIS_ARGV = ["redis-server", "--enable-debug-command", "yes"]
AMBRY_ARGV = [sys.executable, "-m", "ambry.server.main"]
#: Both servers alike: no RDB snapshots, no automatic rewrite in the middle of a run.
COMMON = ["--save", "", "--auto-aof-rewrite-percentage", "0"]
#: Target of the issue: rewrite and load within this factor of redis-server.
TARGET = 4.0


def call(port: int, *args: str | bytes, timeout: float = 600.0) -> bytes | int | None:
    """One command over a fresh connection; the reply (bulk/status as bytes,
    integers as int).  An error reply raises RuntimeError."""
    req = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        req.append(b"$%d\r\n%s\r\n" % (len(b), b))
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(b"".join(req))
        buf = b""

        def more() -> None:
            nonlocal buf
            chunk = s.recv(1 << 16)
            if not chunk:
                raise OSError("connection closed")
            buf += chunk

        while b"\r\n" not in buf:
            more()
        line, rest = buf.split(b"\r\n", 1)
        kind, body = line[:1], line[1:]
        if kind == b"-":
            raise RuntimeError(body.decode(errors="replace"))
        if kind == b":":
            return int(body)
        if kind == b"+":
            return body
        if kind == b"$":
            n = int(body)
            if n < 0:
                return None
            buf = rest
            while len(buf) < n + 2:
                more()
            return buf[:n]
        raise RuntimeError(f"unexpected reply {line!r}")


def info(port: int, section: str) -> dict[str, str]:
    """INFO <section> as a dict."""
    text = call(port, "INFO", section)
    assert isinstance(text, bytes)
    out = {}
    for ln in text.decode().splitlines():
        if ":" in ln and not ln.startswith("#"):
            k, v = ln.split(":", 1)
            out[k] = v
    return out


def dbsize(s: Server) -> int:
    n = call(s.port, "DBSIZE")
    assert isinstance(n, int)
    return n


def loadavg() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def ratio(a: float, r: float) -> str:
    return f"{a / r:.2f}" if r else "n/a"


# -- part 1: SET throughput -----------------------------------------------------------------


def bench_set(plain: int, piped: int, clients: int, pipeline: int, root: Path,
              servers: list[Server]) -> tuple[list[list[str]], dict[str, float]]:
    """The SET table and each server's start-up time on an empty directory."""
    rows = [["fsync", "mode", "redis rps", "ambry rps", "rps ratio", "redis us/req", "ambry us/req",
             "CPU ratio"]]
    startup: dict[str, float] = {}
    modes = [(f"-c {clients}", 1, plain), (f"-c {clients} -P {pipeline}", pipeline, piped)]
    for policy in ("no AOF", "everysec", "always"):
        aof = ["--appendonly", "no"] if policy == "no AOF" else ["--appendonly", "yes", "--appendfsync", policy]
        pair = []
        for name, argv in (("redis", REDIS_ARGV), ("ambry", AMBRY_ARGV)):
            d = root / f"set-{policy.replace(' ', '-')}-{name}"
            d.mkdir()
            s = Server(name, argv, COMMON + aof, workdir=d)
            servers.append(s)
            pair.append(s)
            startup.setdefault(name, s.ready_seconds)
        redis, ambry = pair
        for label, p, n in modes:
            r = run_benchmark(redis, "set", n, clients, p)
            a = run_benchmark(ambry, "set", n, clients, p)
            rows.append([policy, label, f"{r.rps:,.0f}", f"{a.rps:,.0f}", ratio(a.rps, r.rps),
                         f"{r.us_per_req:.2f}", f"{a.us_per_req:.2f}", ratio(a.us_per_req, r.us_per_req)])
            print(f"  SET {policy:<9} {label:<12} redis {r.rps:>10,.0f} rps {r.us_per_req:6.2f} us/req   "
                  f"ambry {a.rps:>10,.0f} rps {a.us_per_req:6.2f} us/req", file=sys.stderr, flush=True)
        for s in pair:
            s.stop()
    return rows, startup


# -- part 2: rewrite and load ---------------------------------------------------------------


def timed_rewrite(s: Server, poll: float = 0.05) -> tuple[float, float]:
    """Seconds from BGREWRITEAOF until the rewrite is installed, and the CPU
    seconds the server and its (reaped) rewrite child spent meanwhile."""
    before = int(info(s.port, "persistence")["aof_rewrites"])
    cpu0 = cpu_ticks(s.proc.pid, children=True)
    t0 = time.perf_counter()
    call(s.port, "BGREWRITEAOF")
    while True:
        time.sleep(poll)
        p = info(s.port, "persistence")
        if (p["aof_rewrite_in_progress"] == "0" and p["aof_rewrite_scheduled"] == "0"
                and int(p["aof_rewrites"]) > before):
            dt = time.perf_counter() - t0
            cpu = (cpu_ticks(s.proc.pid, children=True) - cpu0) / CLK_TCK
            break
        if s.proc.poll() is not None:
            raise SystemExit(f"{s.name} died during BGREWRITEAOF:\n{s.log.read_text(errors='replace')[-3000:]}")
    if p["aof_last_bgrewrite_status"] != "ok":
        raise SystemExit(f"{s.name}: BGREWRITEAOF failed:\n{s.log.read_text(errors='replace')[-3000:]}")
    return dt, cpu


def base_size(d: Path) -> int:
    """Size of the base file the manifest in ``d/appendonlydir`` names."""
    adir = d / "appendonlydir"
    for m in adir.glob("*.manifest"):
        for ln in m.read_text().splitlines():
            if " type b" in ln:
                return (adir / ln.split()[1]).stat().st_size
    raise SystemExit(f"no base file listed in {adir}")


def logged_load(s: Server) -> float | None:
    m = re.search(r"DB loaded from append only file: ([0-9.]+) seconds", s.log.read_text(errors="replace"))
    return float(m.group(1)) if m else None


def bench_rewrite(stream: bytes, nkeys: int, repeat: int, root: Path,
                  servers: list[Server]) -> list[list[str]]:
    """Rewrite and load times for both preamble settings."""
    rows = [["metric", "preamble", "redis", "ambry", "ratio"]]
    for preamble in ("yes", "no"):
        res: dict[str, dict[str, float]] = {}
        for name, argv in (("redis", REDIS_ARGV), ("ambry", AMBRY_ARGV)):
            opts = COMMON + ["--appendonly", "yes", "--appendfsync", "everysec",
                             "--aof-use-rdb-preamble", preamble]
            d = root / f"rewrite-{preamble}-{name}"
            d.mkdir()
            s = Server(name, argv, opts, workdir=d)
            servers.append(s)
            t0 = time.perf_counter()
            pipe = subprocess.run(["redis-cli", "-h", HOST, "-p", str(s.port), "--pipe"], input=stream,
                                  capture_output=True)
            fill = time.perf_counter() - t0
            if pipe.returncode != 0 or b"errors: 0," not in pipe.stdout:
                raise SystemExit(f"redis-cli --pipe into {name} failed: {pipe.stdout!r} {pipe.stderr!r}")
            got = dbsize(s)
            if got != nkeys:
                raise SystemExit(f"{name} holds {got} keys after the fill, {nkeys} were generated")
            runs = [timed_rewrite(s) for _ in range(repeat)]
            rewrite = min(r[0] for r in runs)
            rewrite_cpu = min(r[1] for r in runs)
            size = base_size(d)
            s.stop()
            load = logged = load_cpu = float("inf")
            for _ in range(repeat):
                s = Server(name, argv, opts, workdir=d, ready_timeout=3600)
                servers.append(s)
                load = min(load, s.ready_seconds)
                load_cpu = min(load_cpu, cpu_ticks(s.proc.pid) / CLK_TCK)
                logged = min(logged, logged_load(s) or float("inf"))
                got = dbsize(s)
                s.stop()
                print(f"  preamble {preamble}: {name} loaded {got} keys ({nkeys} generated)"
                      f"{'' if got == nkeys else '  MISMATCH'}", file=sys.stderr, flush=True)
                if got != nkeys:
                    raise SystemExit(f"{name} loaded {got} keys from its AOF, {nkeys} were generated")
            res[name] = {"fill": fill, "rewrite": rewrite, "rewrite_cpu": rewrite_cpu, "size": size,
                         "load": load, "load_cpu": load_cpu, "logged": logged}
            print(f"  preamble {preamble}: {name} fill {fill:.2f} s, BGREWRITEAOF {rewrite:.2f} s, "
                  f"base {size / 1e6:.1f} MB, load {load:.2f} s", file=sys.stderr, flush=True)
        r, a = res["redis"], res["ambry"]
        rows += [
            ["BGREWRITEAOF (s)", preamble, f"{r['rewrite']:.3f}", f"{a['rewrite']:.3f}",
             ratio(a["rewrite"], r["rewrite"])],
            ["rewrite CPU (s)", preamble, f"{r['rewrite_cpu']:.2f}", f"{a['rewrite_cpu']:.2f}",
             ratio(a["rewrite_cpu"], r["rewrite_cpu"])],
            ["load to PONG (s)", preamble, f"{r['load']:.3f}", f"{a['load']:.3f}", ratio(a["load"], r["load"])],
            ["load CPU (s)", preamble, f"{r['load_cpu']:.2f}", f"{a['load_cpu']:.2f}",
             ratio(a["load_cpu"], r["load_cpu"])],
            ["load, logged (s)", preamble, f"{r['logged']:.3f}", f"{a['logged']:.3f}",
             ratio(a["logged"], r["logged"])],
            ["base size (MB)", preamble, f"{r['size'] / 1e6:.1f}", f"{a['size'] / 1e6:.1f}",
             ratio(a["size"], r["size"])],
            ["fill --pipe (s)", preamble, f"{r['fill']:.2f}", f"{a['fill']:.2f}", ratio(a["fill"], r["fill"])],
        ]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=None,
                    help="dataset size for the rewrite/load part (default 1000000, 50000 with --quick)")
    ap.add_argument("--requests", type=int, default=None,
                    help="SET requests per run (default 200000 unpipelined, 1000000 pipelined)")
    ap.add_argument("--quick", action="store_true", help="a smoke run (20000 / 100000 requests, 50000 keys)")
    ap.add_argument("--repeat", type=int, default=1, help="rewrites and loads per server (best kept)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--part", choices=["all", "set", "rewrite"], default="all")
    args = ap.parse_args(argv)

    for tool in ("redis-server", "redis-benchmark", "redis-cli"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian: apt-get install redis-server redis-tools)", file=sys.stderr)
            return 2
    plain, piped = (20_000, 100_000) if args.quick else (200_000, 1_000_000)
    if args.requests:
        plain = piped = args.requests
    keys = args.keys or (50_000 if args.quick else 1_000_000)
    scale = keys / 1_000_000
    nkeys = int(600_000 * scale) + 4 * int(100_000 * scale)  # what dataset_stream generates

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    root = Path(tempfile.mkdtemp(prefix="bench-aof-"))
    servers: list[Server] = []
    load_before = loadavg()
    t_start = time.monotonic()
    print(f"{load_before}; {os.cpu_count()} CPUs", file=sys.stderr, flush=True)
    try:
        set_rows: list[list[str]] = []
        startup: dict[str, float] = {}
        rw_rows: list[list[str]] = []
        if args.part in ("all", "set"):
            set_rows, startup = bench_set(plain, piped, args.clients, args.pipeline, root, servers)
        if args.part in ("all", "rewrite"):
            print(f"generating the dataset ({nkeys} keys) ...", file=sys.stderr, flush=True)
            stream = dataset_stream(scale)
            rw_rows = bench_rewrite(stream, nkeys, max(1, args.repeat), root, servers)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)

    if set_rows:
        print("\nSET throughput (redis-benchmark -t set), appendonly yes unless 'no AOF'\n")
        print(table(set_rows))
        print(f"\nredis-benchmark -n {plain} (unpipelined) / {piped} (pipelined); CPU = server "
              f"utime+stime from /proc, SC_CLK_TCK={CLK_TCK}; start-up on an empty directory: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in startup.items()))
    if rw_rows:
        print(f"\nBGREWRITEAOF and load, {nkeys} keys (bench_rdb.py's dataset), best of {max(1, args.repeat)}; "
              f"target ratio <= {TARGET:.0f}\n")
        print(table(rw_rows))
    print(f"\n{time.monotonic() - t_start:.0f} s; before: {load_before}; after: {loadavg()}; "
          f"{os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
