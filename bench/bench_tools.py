#!/usr/bin/env python3
"""rdb-inspect against the tools people use for the same jobs, on the same
files, in the same run: time and peak memory, as ratios.

The dataset is bench_rdb.py's (600k strings and 100k each of hashes, lists,
sets and sorted sets with 10 elements), built in ``redis-server`` and saved
by it: that is the version-10 file.  ``ambry-server --rdb-version 9`` loads
it and saves it again as RDB version 9, the newest format rdbtools (the
``rdb`` command of the PyPI package ``rdbtools``) reads.  Then, each tool a
subprocess with its output thrown away, best of ``--repeat`` wall times:

====================================  ==============================  ========
rdb-inspect                           against                         target
====================================  ==============================  ========
``summary`` (v9 file)                 ``rdb --command json`` (v9)     >= 10x faster
``dump --ndjson`` (v9)                ``rdb --command json`` (v9)     >= 3x faster
``memory`` (v9)                       ``rdb --command memory`` (v9)   >= 5x faster
``verify`` (v10 file)                 ``redis-check-rdb`` (v10)       within 3x
====================================  ==============================  ========

Peak memory is each tool's maximum resident set size (GNU time's ``%M``;
``wait4``'s rusage without it, which then also counts this script's pages).
Without rdbtools its rows are skipped with a note on how to install it
(``pip install '.[bench]'``).

    python bench/bench_tools.py                 # the 1M-key dataset (several minutes)
    python bench/bench_tools.py --keys 50000    # a smoke run

Every server started is stopped on exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rdb import Server, dataset_stream  # noqa: E402 - the dataset is bench_rdb's

#: (name, ours, theirs, file, target, kind): kind "faster" wants theirs/ours
#: >= target, "within" wants ours/theirs <= target.
ROWS = [
    ("summary", ["summary"], ["json"], "v9", 10.0, "faster"),
    ("dump --ndjson", ["dump", "--ndjson"], ["json"], "v9", 3.0, "faster"),
    ("memory", ["memory"], ["memory"], "v9", 5.0, "faster"),
    ("verify", ["verify"], None, "v10", 3.0, "within"),
]


def script(name: str) -> str | None:
    """A console script next to this Python (no shell shim in between),
    else the one on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def have_rdbtools() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import rdbtools, lzf"], capture_output=True)
    return probe.returncode == 0 and script("rdb") is not None


#: GNU time measures the peak RSS of the tool alone: a child forked from
#: this (large) Python would count this process's pages until its exec.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one child, output discarded."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        cmd = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv] if GNU_TIME else argv
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read() if p.stderr else b""
        if p.stderr:
            p.stderr.close()
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")
        kb = int(rss.read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return dt, kb * 1024


def best(argv: list[str], repeat: int) -> tuple[float, int]:
    runs = [run(argv) for _ in range(max(1, repeat))]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def make_files(root: Path, keys: int, redis: str) -> tuple[Path, Path, int]:
    """The version-10 file (redis-server's) and the version-9 file
    (ambry-server's, rdb-version 9), and the key count."""
    servers: list[Server] = []
    try:
        d = root / "redis"
        d.mkdir()
        r = Server("redis", [redis], d)
        servers.append(r)
        stream = dataset_stream(keys / 1_000_000)
        pipe = subprocess.run(["redis-cli", "-p", str(r.port), "--pipe"], input=stream, capture_output=True)
        if pipe.returncode != 0:
            raise SystemExit(f"redis-cli --pipe failed: {pipe.stdout!r} {pipe.stderr!r}")
        nkeys = int(r.command("DBSIZE")[1:])
        if r.command("SAVE") != b"+OK":
            raise SystemExit("redis SAVE failed")
        r.stop()
        v10 = root / "v10.rdb"
        shutil.move(d / "dump.rdb", v10)
        d = root / "ambry"
        d.mkdir()
        shutil.copy(v10, d / "dump.rdb")
        a = Server("ambry", [sys.executable, "-m", "ambry.server.main", "--rdb-version", "9"], d)
        servers.append(a)
        if int(a.command("DBSIZE")[1:]) != nkeys:
            raise SystemExit("ambry-server did not load every key")
        if a.command("SAVE") != b"+OK":
            raise SystemExit("ambry SAVE failed")
        a.stop()
        v9 = root / "v9.rdb"
        shutil.move(d / "dump.rdb", v9)
        if v9.read_bytes()[:9] != b"REDIS0009":
            raise SystemExit("the rdb-version 9 dump is not version 9")
        return v10, v9, nkeys
    finally:
        for s in servers:
            s.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1_000_000, help="dataset size in keys (1,000,000)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool (best time kept)")
    ap.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    args = ap.parse_args(argv)

    inspect = script("rdb-inspect")
    check = shutil.which("redis-check-rdb")
    if inspect is None or check is None:
        raise SystemExit("needs rdb-inspect (pip install -e .) and redis-check-rdb")
    rdbtools = have_rdbtools()
    if not rdbtools:
        print("rdbtools is not installed: its rows are skipped. Install it with\n"
              "    pip install '.[bench]'      (rdbtools and python-lzf)", file=sys.stderr)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    root = Path(tempfile.mkdtemp(prefix="bench-tools-"))
    try:
        print(f"building {args.keys} keys in redis-server, re-saving them as RDB 9 from ambry-server ...",
              file=sys.stderr)
        v10, v9, nkeys = make_files(root, args.keys, args.redis)
        files = {"v9": v9, "v10": v10}
        sizes = ", ".join(f"RDB {k[1:]} {p.stat().st_size / 1e6:.1f} MB" for k, p in files.items())
        results = []
        for name, ours, theirs, which, target, kind in ROWS:
            path = str(files[which])
            if theirs is None:
                other_name = "redis-check-rdb"
                other = [check, path]
            elif rdbtools:
                other_name = f"rdb --command {theirs[0]}"
                other = [str(script("rdb")), "--command", theirs[0], path]
            else:
                continue
            print(f"timing {name} ...", file=sys.stderr)
            a_t, a_m = best([inspect, *ours, "--no-progress", path], args.repeat)
            o_t, o_m = best(other, args.repeat)
            results.append((f"{name} ({which})", other_name, a_t, o_t, a_m, o_m, target, kind))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"dataset: {nkeys} keys; {sizes}")
    head = (f"{'rdb-inspect':<22}{'against':<22}{'ours s':>9}{'theirs s':>10}{'ratio':>8}{'target':>13}"
            f"{'ours MB':>9}{'theirs MB':>11}  ok")
    print(head)
    for label, other_name, a_t, o_t, a_m, o_m, target, kind in results:
        if kind == "faster":
            ratio = o_t / a_t
            ok = ratio >= target
            want = f">= {target:g}x fast"
            shown = f"{ratio:.1f}x"
        else:
            ratio = a_t / o_t
            ok = ratio <= target
            want = f"<= {target:g}x time"
            shown = f"{ratio:.2f}x"
        print(f"{label:<22}{other_name:<22}{a_t:>9.2f}{o_t:>10.2f}{shown:>8}{want:>13}"
              f"{a_m / 1e6:>9.1f}{o_m / 1e6:>11.1f}  {'yes' if ok else 'NO'}")
    if not rdbtools:
        print("(rdbtools rows skipped: pip install '.[bench]')")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
