#!/usr/bin/env python3
"""Replication of Ambry against real redis-server: full-sync time for the
1M-key dataset and replication lag under a SET load, as ratios of an
ambry-server primary -> ambry-server replica pair to a redis-server ->
redis-server pair measured in the same run.

Every server runs on a free 127.0.0.1 port in its own directory with
``--save ""``; primaries have ``repl-diskless-sync-delay 0``.

Full sync -- both primaries are fed the dataset of bench_rdb.py (600k
strings and 100k each of hashes, lists, sets and sorted sets of 10
elements) with ``redis-cli --pipe``.  Then, for ``repl-diskless-sync yes``
and ``no`` (CONFIG SET on the primary), a fresh empty replica is started and
sent ``REPLICAOF``; the time runs from that command until the replica's
INFO replication shows ``master_link_status:up`` with
``master_sync_in_progress:0`` and its DBSIZE equals the primary's (polled
every 10 ms); best of ``--repeat``.  The primary's CPU (its snapshot fork
included: cutime+cstime) and the replica's CPU over the sync are shown, and
their sum as a ratio to the redis pair's (steadier than the time on a busy
machine).  Target: the Ambry pair's time within 3x of the redis pair's.

Lag -- with the replica of the last sync attached, ``redis-benchmark -t set
-r 100000`` runs against the primary, unpipelined (``-c 50``) and pipelined
(``-c 50 -P 16``), the redis pair and the Ambry pair taking turns.
Meanwhile, every ``--interval-ms`` (10), one INFO replication request goes
to the primary and one to the replica at the same instant (two connections,
both replies awaited together, each time-stamped on arrival):

* lag in bytes per sample: the primary's ``master_repl_offset`` minus the
  replica's ``slave_repl_offset`` (0 when the replica answered later and was
  already past it);
* lag in ms per primary sample: the time until the replica's offset reached
  the primary's sampled offset, the crossing time linearly interpolated
  between the two replica samples around it;
* median and p99 of both, over the samples taken while the load ran; the
  drain: ms from the end of the load until the replica reached the
  primary's final offset; the p99 of the replica's INFO round trip (an
  event loop busy applying the stream shows here -- and makes fewer
  samples: their count is printed);
* the SET throughput (redis-benchmark's) and CPU microseconds per request of
  the primary (over the load) and of the replica (load and drain), from
  utime+stime in ``/proc/PID/stat`` (bench.py's helpers).

After each lag run the replica's DBSIZE must equal the primary's.  With
``--mixed`` the mixed pairs (redis -> ambry, ambry -> redis) are measured
and printed too; the ratios are always Ambry pair / redis pair.

    python bench/bench_repl.py                 # 1M keys (several minutes)
    python bench/bench_repl.py --quick         # a smoke run (50k keys)
    python bench/bench_repl.py --keys 200000 --requests 100000 --mixed

The load average is printed before and after: the numbers mean little when
something else keeps the CPUs busy.  Every server started is stopped on
exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import io
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rdb import dataset_stream  # noqa: E402 - the dataset is bench_rdb's

from bench import CLK_TCK, HOST, Server, cpu_ticks, table  # noqa: E402

REDIS_ARGV = ["redis-server"]
AMBRY_ARGV = [sys.executable, "-m", "ambry.server.main"]
PRIMARY_OPTS = ["--repl-diskless-sync-delay", "0"]
TARGET_FULL_SYNC = 3.0
INFO_REPL = b"*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n"


class ReplyError(Exception):
    """An error reply from a server."""


class Conn:
    """A persistent RESP connection reading simple, error, integer and bulk
    replies (all these benchmarks need)."""

    def __init__(self, port: int, timeout: float = 600.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, *args: str | bytes) -> None:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a.encode() if isinstance(a, str) else a
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(parts))

    def parse(self) -> tuple[bool, bytes | int | None]:
        """(True, reply) when a whole reply is buffered, else (False, None)."""
        end = self.buf.find(b"\r\n")
        if end < 0:
            return False, None
        kind, line = self.buf[:1], self.buf[1:end]
        if kind == b"$":
            n = int(line)
            if n < 0:
                self.buf = self.buf[end + 2 :]
                return True, None
            if len(self.buf) < end + 2 + n + 2:
                return False, None
            value = self.buf[end + 2 : end + 2 + n]
            self.buf = self.buf[end + 2 + n + 2 :]
            return True, value
        self.buf = self.buf[end + 2 :]
        if kind == b"-":
            raise ReplyError(line.decode(errors="replace"))
        if kind == b":":
            return True, int(line)
        if kind == b"+":
            return True, line
        raise ReplyError(f"unexpected reply {kind + line!r}")

    def feed(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise OSError("connection closed by the server")
        self.buf += chunk

    def read(self) -> bytes | int | None:
        while True:
            done, value = self.parse()
            if done:
                return value
            self.feed()

    def call(self, *args: str | bytes) -> bytes | int | None:
        self.send(*args)
        return self.read()

    def info(self, section: str = "replication") -> dict[str, str]:
        return parse_info(self.call("INFO", section))


def parse_info(raw: bytes | int | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if not isinstance(raw, bytes):
        return out
    for line in raw.decode(errors="replace").splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k] = v
    return out


def replica_offset(i: dict[str, str]) -> int:
    return int(i.get("slave_repl_offset", i.get("master_repl_offset", "0")))


def dual_info(primary: Conn, replica: Conn, sel: selectors.BaseSelector) -> tuple[float, int, float, int]:
    """INFO replication sent to both at once; (t, primary offset, t, replica
    offset), each time taken when its reply arrived (perf_counter)."""
    primary.sock.sendall(INFO_REPL)
    replica.sock.sendall(INFO_REPL)
    got: dict[Conn, tuple[float, dict[str, str]]] = {}
    while len(got) < 2:
        for key, _ in sel.select(timeout=600):
            c: Conn = key.data
            if c in got:
                continue
            c.feed()
            done, value = c.parse()
            if done:
                got[c] = (time.perf_counter(), parse_info(value))
    tp, ip = got[primary]
    tr, ir = got[replica]
    return tp, int(ip["master_repl_offset"]), tr, replica_offset(ir)


def loadavg() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def fmt_ratio(a: float, r: float) -> str:
    if r == 0:
        return "n/a" if a else "1.00"
    return f"{a / r:.2f}"


@dataclass
class SyncResult:
    seconds: float
    primary_cpu: float
    replica_cpu: float


@dataclass
class LagResult:
    rps: float
    bytes_median: float
    bytes_p99: float
    ms_median: float
    ms_p99: float
    drain_ms: float
    replica_info_p99_ms: float
    primary_us: float
    replica_us: float
    samples: int


@dataclass
class Pair:
    """A primary and the kind of replica to attach to it."""

    label: str
    primary: Server
    replica_name: str
    replica_argv: list[str]
    replica: Server | None = None
    syncs: dict[str, list[SyncResult]] = field(default_factory=dict)
    lags: dict[str, LagResult] = field(default_factory=dict)


class Bench:
    """The servers of one run, stopped by :meth:`stop_all`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[Server] = []
        self.n = 0

    def start(self, name: str, argv: list[str], extra: list[str]) -> Server:
        self.n += 1
        d = self.root / f"{self.n:02d}-{name}"
        d.mkdir()
        s = Server(name, argv, extra, workdir=d)
        self.servers.append(s)
        return s

    def stop(self, s: Server) -> None:
        s.stop()
        if s in self.servers:
            self.servers.remove(s)
        shutil.rmtree(s.dir, ignore_errors=True)

    def stop_all(self) -> None:
        for s in list(self.servers):
            s.stop()
        self.servers.clear()


def load_dataset(s: Server, stream: bytes) -> float:
    """The dataset into ``s`` with redis-cli --pipe; seconds taken."""
    t0 = time.perf_counter()
    out = subprocess.run(["redis-cli", "-h", HOST, "-p", str(s.port), "--pipe"], input=stream,
                         capture_output=True, timeout=3600)
    if out.returncode != 0 or b"errors: 0," not in out.stdout:
        raise SystemExit(f"redis-cli --pipe into {s.name} failed: {out.stdout[-500:]!r} {out.stderr[-500:]!r}")
    return time.perf_counter() - t0


def dbsize(s: Server) -> int:
    c = Conn(s.port)
    try:
        n = c.call("DBSIZE")
    finally:
        c.close()
    assert isinstance(n, int)
    return n


def alive(s: Server) -> None:
    if s.proc.poll() is not None:
        raise SystemExit(f"{s.name} died:\n{s.log.read_text(errors='replace')[-3000:]}")


def full_sync(b: Bench, pair: Pair, keys: int, timeout: float) -> SyncResult:
    """A fresh replica attached to the pair's primary, timed until it is up
    with the whole dataset; it stays in ``pair.replica``."""
    if pair.replica is not None:
        b.stop(pair.replica)
        pair.replica = None
    p = pair.primary
    r = b.start(pair.replica_name, pair.replica_argv, [])
    pair.replica = r
    c = Conn(r.port)
    try:
        p0, r0 = cpu_ticks(p.proc.pid, children=True), cpu_ticks(r.proc.pid, children=True)
        t0 = time.perf_counter()
        c.call("REPLICAOF", HOST, str(p.port))
        deadline = t0 + timeout
        while True:
            i = c.info()
            if i.get("master_link_status") == "up" and i.get("master_sync_in_progress") == "0":
                n = c.call("DBSIZE")
                if n == keys:
                    break
            if time.perf_counter() > deadline:
                raise SystemExit(f"{pair.label}: no full sync within {timeout:.0f} s: {i}")
            alive(p)
            alive(r)
            time.sleep(0.01)
        dt = time.perf_counter() - t0
        p1, r1 = cpu_ticks(p.proc.pid, children=True), cpu_ticks(r.proc.pid, children=True)
    finally:
        c.close()
    return SyncResult(dt, (p1 - p0) / CLK_TCK, (r1 - r0) / CLK_TCK)


def lag_run(pair: Pair, clients: int, pipeline: int, requests: int, rand: int, interval: float,
            tmp: Path) -> LagResult:
    """One SET load against the pair's primary, sampling both offsets."""
    p, r = pair.primary, pair.replica
    assert r is not None
    pc, rc = Conn(p.port), Conn(r.port)
    sel = selectors.DefaultSelector()
    sel.register(pc.sock, selectors.EVENT_READ, pc)
    sel.register(rc.sock, selectors.EVENT_READ, rc)
    prim: list[tuple[float, int, int]] = []  # (time, primary offset, replica offset at that tick)
    repl: list[tuple[float, int]] = []
    info_ms: list[float] = []  # the replica's INFO round trips during the load
    out_path = tmp / f"bench-{pair.replica_name}-{os.getpid()}.csv"
    try:
        p0, r0 = cpu_ticks(p.proc.pid), cpu_ticks(r.proc.pid)
        cmd = ["redis-benchmark", "-h", HOST, "-p", str(p.port), "-c", str(clients), "-n", str(requests),
               "-P", str(pipeline), "-r", str(rand), "-t", "set", "--csv"]
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        t_start = time.perf_counter()
        while proc.poll() is None:
            tick = time.perf_counter()
            tp, po, tr, ro = dual_info(pc, rc, sel)
            prim.append((tp, po, ro))
            repl.append((tr, ro))
            info_ms.append((tr - tick) * 1000)
            rest = interval - (time.perf_counter() - tick)
            if rest > 0:
                time.sleep(rest)
        t_end = time.perf_counter()
        p1 = cpu_ticks(p.proc.pid)
        final = int(pc.info()["master_repl_offset"])
        deadline = time.monotonic() + 600
        while True:
            tr, ro = time.perf_counter(), replica_offset(rc.info())
            repl.append((tr, ro))
            if ro >= final:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{pair.label}: the replica did not reach offset {final} (at {ro})")
            alive(r)
            time.sleep(0.001)
        drain_ms = max(0.0, (tr - t_end) * 1000)
        r1 = cpu_ticks(r.proc.pid)
        if proc.returncode != 0:
            raise SystemExit(f"redis-benchmark failed against {p.name}:\n{out_path.read_text(errors='replace')}")
        rows = [row for row in csv.reader(io.StringIO(out_path.read_text(errors="replace")))
                if row and row[0] != "test"]
        if not rows:
            raise SystemExit(f"no result from redis-benchmark against {p.name}")
        rps = float(rows[-1][1])
    finally:
        sel.close()
        pc.close()
        rc.close()
        out_path.unlink(missing_ok=True)
    np_, nr = dbsize(p), dbsize(r)
    if np_ != nr:
        raise SystemExit(f"{pair.label}: primary has {np_} keys, replica {nr} after the load")

    # the replica's offsets as a non-decreasing function of time
    repl.sort()
    r_times = [t for t, _ in repl]
    r_offs: list[int] = []
    hi = 0
    for _, o in repl:
        hi = max(hi, o)
        r_offs.append(hi)
    lag_bytes: list[float] = []
    lag_ms: list[float] = []
    for tp, po, ro in prim:
        if not t_start <= tp <= t_end:
            continue
        lag_bytes.append(float(max(0, po - ro)))
        j = bisect.bisect_left(r_offs, po)
        if j >= len(r_offs):
            continue
        if j == 0 or r_times[j] <= tp:
            cross = r_times[j]
        else:
            o0, o1, t0, t1 = r_offs[j - 1], r_offs[j], r_times[j - 1], r_times[j]
            cross = t0 + (po - o0) / (o1 - o0) * (t1 - t0)
        lag_ms.append(max(0.0, (cross - tp) * 1000))
    if not lag_bytes:
        lag_bytes = lag_ms = [0.0]
    return LagResult(
        rps=rps,
        bytes_median=pct(lag_bytes, 50), bytes_p99=pct(lag_bytes, 99),
        ms_median=pct(lag_ms, 50), ms_p99=pct(lag_ms, 99),
        drain_ms=drain_ms,
        replica_info_p99_ms=pct(info_ms, 99) if info_ms else 0.0,
        primary_us=(p1 - p0) / CLK_TCK * 1e6 / requests,
        replica_us=(r1 - r0) / CLK_TCK * 1e6 / requests,
        samples=len(lag_bytes),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=None, help="dataset size for the full sync (default 1000000)")
    ap.add_argument("--requests", type=int, default=None,
                    help="SET requests per lag run (default 200000 unpipelined, 1000000 pipelined)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 50000 keys, 20000 / 100000 requests")
    ap.add_argument("--repeat", type=int, default=1, help="full syncs per mode and pair (best kept)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--random", type=int, default=100_000, help="redis-benchmark -r (SET key space)")
    ap.add_argument("--interval-ms", type=float, default=10.0, help="offset sampling period")
    ap.add_argument("--mixed", action="store_true", help="also redis -> ambry and ambry -> redis")
    ap.add_argument("--sync-timeout", type=float, default=3600.0)
    args = ap.parse_args(argv)

    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian: apt-get install redis-server redis-tools)", file=sys.stderr)
            return 2
    keys = args.keys if args.keys is not None else (50_000 if args.quick else 1_000_000)
    plain, piped = (20_000, 100_000) if args.quick else (200_000, 1_000_000)
    if args.requests:
        plain = piped = args.requests
    loads = [(f"-c {args.clients}", 1, plain), (f"-c {args.clients} -P {args.pipeline}", args.pipeline, piped)]

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    root = Path(tempfile.mkdtemp(prefix="bench-repl-"))
    b = Bench(root)
    t_run = time.monotonic()
    load_before = loadavg()
    print(f"{load_before}; {os.cpu_count()} CPUs", file=sys.stderr)
    try:
        rp = b.start("redis-primary", REDIS_ARGV, PRIMARY_OPTS)
        apri = b.start("ambry-primary", AMBRY_ARGV, PRIMARY_OPTS)
        stream = dataset_stream(keys / 1_000_000)
        fill: dict[str, float] = {}
        for s in (rp, apri):
            print(f"loading the dataset into {s.name} ...", file=sys.stderr, flush=True)
            fill[s.name] = load_dataset(s, stream)
        del stream
        nkeys = dbsize(rp)
        if dbsize(apri) != nkeys:
            raise SystemExit(f"ambry-primary has {dbsize(apri)} keys, redis-primary {nkeys}")
        main_pairs = [Pair("redis -> redis", rp, "redis-replica", REDIS_ARGV),
                      Pair("ambry -> ambry", apri, "ambry-replica", AMBRY_ARGV)]
        mixed_pairs = [Pair("redis -> ambry", rp, "ambry-replica", AMBRY_ARGV),
                       Pair("ambry -> redis", apri, "redis-replica", REDIS_ARGV)] if args.mixed else []
        modes = [("diskless", "yes"), ("disk", "no")]

        # full syncs: every pair and mode before any SET load changes the dataset
        for group in ([main_pairs, mixed_pairs] if mixed_pairs else [main_pairs]):
            for mode, flag in modes:
                for _ in range(args.repeat):
                    for pair in group:
                        c = Conn(pair.primary.port)
                        c.call("CONFIG", "SET", "repl-diskless-sync", flag)
                        c.close()
                        print(f"full sync {mode:<8} {pair.label} ...", file=sys.stderr, flush=True)
                        res = full_sync(b, pair, nkeys, args.sync_timeout)
                        pair.syncs.setdefault(mode, []).append(res)
                        print(f"  {res.seconds:.2f} s", file=sys.stderr, flush=True)
                        if group is mixed_pairs and pair.replica is not None:
                            b.stop(pair.replica)
                            pair.replica = None
        load_mid = loadavg()

        # lag under a SET load, pairs taking turns
        groups = [main_pairs] + ([mixed_pairs] if mixed_pairs else [])
        for group in groups:
            for pair in group:
                if pair.replica is None:
                    print(f"attaching a replica for {pair.label} ...", file=sys.stderr, flush=True)
                    full_sync(b, pair, dbsize(pair.primary), args.sync_timeout)
            for label, pipeline, n in loads:
                for pair in group:
                    print(f"lag {label:<12} {pair.label} ...", file=sys.stderr, flush=True)
                    pair.lags[label] = lag_run(pair, args.clients, pipeline, n, args.random,
                                               args.interval_ms / 1000, root)
            for pair in group:
                if pair.replica is not None:
                    b.stop(pair.replica)
                    pair.replica = None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        b.stop_all()
        shutil.rmtree(root, ignore_errors=True)

    ref, amb = main_pairs
    all_pairs = main_pairs + mixed_pairs
    print(f"\nFull sync: {nkeys:,} keys (dataset fed with redis-cli --pipe: redis {fill['redis-primary']:.1f} s, "
          f"ambry {fill['ambry-primary']:.1f} s); best of {args.repeat}")
    rows = [["mode", "pair", "seconds", "ratio to redis -> redis", "primary CPU s", "replica CPU s", "CPU ratio",
             "target"]]
    for mode, _ in modes:
        base = min(ref.syncs[mode], key=lambda x: x.seconds)
        for pair in all_pairs:
            best = min(pair.syncs[mode], key=lambda x: x.seconds)
            ratio = best.seconds / base.seconds
            target = ""
            if pair is amb:
                target = f"{TARGET_FULL_SYNC:.0f}x {'ok' if ratio <= TARGET_FULL_SYNC else 'MISSED'}"
            cpu = (best.primary_cpu + best.replica_cpu) / ((base.primary_cpu + base.replica_cpu) or float("nan"))
            rows.append([mode, pair.label, f"{best.seconds:.2f}", f"{ratio:.2f}", f"{best.primary_cpu:.2f}",
                         f"{best.replica_cpu:.2f}", f"{cpu:.2f}", target])
    print(table(rows))

    print(f"\nLag under redis-benchmark -t set -r {args.random} (offsets sampled every {args.interval_ms:g} ms)")
    rows = [["load", "pair", "SET rps", "lag B med", "lag B p99", "lag ms med", "lag ms p99", "drain ms",
             "replica INFO p99 ms", "primary us/req", "replica us/req", "samples"]]
    for label, _, n in loads:
        for pair in all_pairs:
            x = pair.lags[label]
            rows.append([f"{label} -n {n}", pair.label, f"{x.rps:,.0f}", f"{x.bytes_median:,.0f}",
                         f"{x.bytes_p99:,.0f}", f"{x.ms_median:.2f}", f"{x.ms_p99:.2f}", f"{x.drain_ms:.1f}",
                         f"{x.replica_info_p99_ms:.1f}", f"{x.primary_us:.2f}", f"{x.replica_us:.2f}", str(x.samples)])
    print(table(rows))
    print("\nRatios, ambry -> ambry / redis -> redis")
    rows = [["load", "SET rps", "lag B med", "lag B p99", "lag ms med", "lag ms p99", "primary CPU", "replica CPU"]]
    for label, _, _ in loads:
        r, a = ref.lags[label], amb.lags[label]
        rows.append([label, fmt_ratio(a.rps, r.rps), fmt_ratio(a.bytes_median, r.bytes_median),
                     fmt_ratio(a.bytes_p99, r.bytes_p99), fmt_ratio(a.ms_median, r.ms_median),
                     fmt_ratio(a.ms_p99, r.ms_p99), fmt_ratio(a.primary_us, r.primary_us),
                     fmt_ratio(a.replica_us, r.replica_us)])
    print(table(rows))
    print(f"\n{time.monotonic() - t_run:.0f} s; CPU = utime+stime from /proc (full sync: the primary's "
          f"reaped children included; CPU ratio: primary + replica against the redis pair's), SC_CLK_TCK={CLK_TCK}; "
          f"{os.cpu_count()} CPUs; "
          f"{load_before} at the start, {load_mid} after the full syncs, {loadavg()} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
