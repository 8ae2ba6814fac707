"""aof-rewrite: offline compaction of an AOF (or conversion of an RDB) into a
fresh multi-part AOF directory: one new base, an empty incr file, a new
manifest.

Compacting a command log needs the semantics of every command it holds
(what ``HINCRBYFLOAT`` leaves behind, what a ``MULTI`` block does, when a
``PEXPIREAT`` deletes).  This tool does not carry a second implementation
of them: it runs the product's own engine, ``ambry-server``, as a private
subprocess (``--engine`` names another Redis-compatible server, e.g.
``redis-server``):

1. a COPY of the input goes into a work directory next to the output and
   is checked (:mod:`ambry.persistence.aof.check`): a damaged input is
   refused (``--load-truncated`` accepts a truncated tail, as
   ``aof-load-truncated yes`` would);
2. the engine starts in the work directory, on a Unix socket only (no
   TCP port), with ``save ""`` and active expiry off as soon as it
   answers, and loads the copy (an AOF through the AOF loader, a bare RDB
   through the RDB loader);
3. ``DEBUG DIGEST`` records the dataset, then ``BGREWRITEAOF`` (or, for an
   RDB, ``CONFIG SET appendonly yes``) writes the new base with
   ``aof-use-rdb-preamble`` set from ``--preamble``;
4. ``DEBUG LOADAOF`` reloads the engine from the rewritten files and the
   digest (and the function libraries) must be the same -- this verifies
   the very bytes that will be installed;
5. the base is renamed into a staging directory with a new manifest and
   an empty incr file (sequence numbers restart at 1), everything is
   fsynced, and the staging directory is renamed to OUTPUT.

The input is only ever read; nothing is written next to it.  The work
directory is removed on every path, the engine is always stopped.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Final

import redis
from ambry.persistence.aof import Manifest, is_rdb, manifest_name, parse_manifest
from ambry.persistence.aof.check import Report, check_source
from ambry.persistence.aof.source import AOFSource, open_source
from redis.backoff import NoBackoff
from redis.retry import Retry

from .aof_common import (
    EXIT_CODES_HELP,
    EXIT_IO,
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    ArgParser,
    Formatter,
    Progress,
    ToolError,
    fsync_dir,
    human_bytes,
    print_json,
    run,
)

PROG: Final = "aof-rewrite"

#: Databases the engine is started with: enough for any SELECT a real
#: server accepted (a SELECT beyond the engine's count would fail while
#: loading and the commands after it would land in the wrong db).
DEFAULT_DATABASES: Final = 256

#: How long the engine gets to stop after SIGTERM.
_STOP_TIMEOUT: Final = 30.0

DESCRIPTION: Final = """\
Compact an AOF offline into a new multi-part AOF directory, or turn an RDB
dump into one: OUTPUT receives a new base (an RDB with --preamble rdb, the
default, or commands with --preamble aof), an empty incr file and a new
manifest. Loading OUTPUT gives the same dataset as loading INPUT; this is
verified before anything is installed.

INPUT is an AOF directory (or a server's working directory holding one),
a manifest, an old-style single-file AOF (with or without an RDB
preamble), or an RDB file.

How: the rewrite needs the semantics of every command in the log, and this
tool does not re-implement them. It starts the product's own engine
(ambry-server, or the server named by --engine, e.g. redis-server) as a
private subprocess listening on a Unix socket only, in a work directory
holding a COPY of the input; the engine loads it, records DEBUG DIGEST,
runs BGREWRITEAOF (CONFIG SET appendonly yes for an RDB), reloads the
result with DEBUG LOADAOF and must report the same digest and the same
function libraries. The new base is then installed with sequence numbers
starting again at 1: the work happens in a temporary directory next to
OUTPUT, which is renamed into place once complete and fsynced. The input
is only read. Keys already expired in an RDB input are dropped, as a
server loading it would; in an AOF input they are kept with their TTL.

The input is checked first (as aof-check does) and refused when damaged;
--load-truncated accepts a truncated tail or an unfinished MULTI in the
last file and leaves them out, like a server with aof-load-truncated yes.

OUTPUT must not exist, or be an empty directory. To replace a server's
AOF: stop the server, run aof-rewrite into a new directory, move the old
appendonlydir aside and the new one in its place.
"""

EPILOG: Final = EXIT_CODES_HELP + """
examples:
  aof-rewrite /var/lib/redis/appendonlydir /var/lib/redis/appendonlydir.new
  aof-rewrite appendonlydir compact --preamble aof --json
  aof-rewrite dump.rdb appendonlydir                 # start a server on AOF from a dump
  aof-rewrite appendonlydir out --engine redis-server
"""


def build_parser() -> ArgParser:
    p = ArgParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("input", metavar="INPUT", help="AOF directory, manifest, single AOF file, or RDB file")
    p.add_argument("output", metavar="OUTPUT", help="directory to create with the rewritten AOF")
    p.add_argument("--preamble", choices=("rdb", "aof"), default="rdb",
                   help="base format: an RDB (aof-use-rdb-preamble yes) or commands (no); default rdb")
    p.add_argument("--appendfilename", metavar="NAME",
                   help="file name stem of the output (default: the input's, or appendonly.aof)")
    p.add_argument("--timestamps", action="store_true",
                   help="aof-timestamp-enabled yes: a RESP base starts with a #TS: annotation")
    p.add_argument("--load-truncated", action="store_true",
                   help="accept a truncated tail in the last file (left out of the result)")
    p.add_argument("--engine", metavar="CMD",
                   help="server command to run (default: this installation's ambry-server)")
    p.add_argument("--databases", metavar="N", type=int, default=DEFAULT_DATABASES,
                   help=f"databases of the engine (default {DEFAULT_DATABASES})")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the reload of the result and the digest comparison")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return p


# -- the engine -----------------------------------------------------------------------------------


class Engine:
    """A private server process: started with options, reached through a
    Unix socket (a free 127.0.0.1 port when the socket path would be too
    long), stopped with SIGTERM (killed if it does not go)."""

    def __init__(self, command: list[str], workdir: str, options: list[str]) -> None:
        self.command = command
        self.workdir = workdir
        self.options = options
        self.log_path = os.path.join(workdir, "engine.log")
        self.out_path = os.path.join(workdir, "engine.out")
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: redis.Redis | None = None
        self._sockdir: str | None = None

    def start(self) -> None:
        self._sockdir = tempfile.mkdtemp(prefix="aofrw-")
        sock = os.path.join(self._sockdir, "engine.sock")
        if len(sock) < 100:
            listen = ["--port", "0", "--unixsocket", sock, "--unixsocketperm", "700"]
            conn: dict[str, Any] = {"unix_socket_path": sock}
        else:  # pragma: no cover - depends on TMPDIR's length
            port = _free_port()
            listen = ["--port", str(port), "--bind", "127.0.0.1"]
            conn = {"host": "127.0.0.1", "port": port}
        argv = [*self.command, *listen, "--dir", self.workdir, "--logfile", self.log_path, *self.options]
        out = open(self.out_path, "wb")  # noqa: SIM115 - the child holds it; closed below
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.workdir, start_new_session=True)
        except OSError as e:
            raise ToolError(f"cannot start the engine {shlex.join(self.command)}: {e.strerror}", EXIT_IO) from None
        finally:
            out.close()
        # No transparent retries: a connection error must reach wait_ready / died().
        self.client = redis.Redis(socket_timeout=None, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0),
                                  **conn)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_problems(self) -> str:
        """The warnings of the engine's log (and anything it printed)."""
        lines: list[str] = []
        for path in (self.out_path, self.log_path):
            try:
                with open(path, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            for line in text.splitlines():
                if " # " in line or (path == self.out_path and line.strip() and " * " not in line):
                    lines.append("  " + line.strip())
        return "\n".join(lines[-20:]) or "  (the engine logged nothing)"

    def died(self, what: str) -> ToolError:
        code = self.proc.returncode if self.proc is not None else None
        return ToolError(f"the engine exited (code {code}) while {what}; its log says:\n{self.log_problems()}",
                         EXIT_PROBLEM)

    def call(self, *args: Any) -> Any:
        assert self.client is not None
        try:
            return self.client.execute_command(*args)
        except redis.ResponseError as e:
            raise ToolError(f"the engine refused {' '.join(str(a) for a in args[:2])}: {e}", EXIT_PROBLEM) from None
        except redis.ConnectionError:
            if not self.alive():
                raise self.died(f"running {args[0]}") from None
            raise

    def info(self, section: str) -> dict[str, Any]:
        assert self.client is not None
        return dict(self.client.info(section))

    def wait_ready(self, progress: Progress) -> None:
        """Until the dataset is loaded (PING answers, no -LOADING)."""
        assert self.client is not None
        delay = 0.01
        while True:
            if not self.alive():
                raise self.died("loading the input")
            try:
                self.client.ping()
                return
            except redis.BusyLoadingError:
                try:
                    perc = self.info("persistence").get("loading_loaded_perc", 0)
                    progress.show(f"engine loading the input: {perc}%")
                except redis.RedisError:
                    pass
            except (redis.ConnectionError, redis.TimeoutError):
                pass
            time.sleep(delay)
            delay = min(0.2, delay * 2)

    def wait_rewrite(self, before: int, progress: Progress) -> None:
        """Until the rewrite counted after ``before`` has finished; raises
        when it failed."""
        delay = 0.01
        while True:
            if not self.alive():
                raise self.died("rewriting")
            p = self.info("persistence")
            if (int(p.get("aof_rewrites", 0)) > before and not int(p.get("aof_rewrite_in_progress", 0))
                    and not int(p.get("aof_rewrite_scheduled", 0))):
                if p.get("aof_last_bgrewrite_status") != "ok":
                    raise ToolError("the engine's rewrite failed; its log says:\n" + self.log_problems(),
                                    EXIT_PROBLEM)
                return
            if p.get("aof_last_bgrewrite_status") == "err" and int(p.get("aof_rewrites", 0)) > before \
                    and not int(p.get("aof_rewrite_in_progress", 0)):
                raise ToolError("the engine's rewrite failed; its log says:\n" + self.log_problems(), EXIT_PROBLEM)
            secs = p.get("aof_current_rewrite_time_sec", -1)
            progress.show(f"engine rewriting: {max(0, int(secs))} s")
            time.sleep(delay)
            delay = min(0.2, delay * 2)

    def stop(self) -> None:
        """SIGTERM (with ``save ""`` nothing is saved: a plain shutdown),
        then wait; SIGKILL when it does not exit."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None


def _free_port() -> int:  # pragma: no cover - only for very long TMPDIR paths
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_engine() -> list[str]:
    """This installation's ambry-server, run by the current interpreter."""
    return [sys.executable, "-m", "ambry.server.main"]


# -- the steps -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Staged:
    """How the input copy is laid out for the engine."""

    mode: str  # "aof" (loaded by the AOF loader) or "rdb" (the RDB loader)
    appendfilename: str
    input_bytes: int


def _check_input(src: AOFSource, load_truncated: bool) -> Report:
    rep = check_source(src)
    p = rep.problem
    if p is None:
        return rep
    if load_truncated and p.kind in ("truncated", "unfinished-multi") and rep.fix() is not None:
        return rep
    hint = " (--load-truncated accepts it)" if p.kind in ("truncated", "unfinished-multi") and rep.fix() else ""
    raise ToolError(f"the input is damaged: {p.describe()}{hint}; repair it with aof-check --fix first",
                    EXIT_PROBLEM)


def _copy_input(src: AOFSource, workdir: str) -> AOFSource:
    """Copy the files of ``src`` into ``workdir``; the copy as a source."""
    if src.kind == "manifest":
        assert src.manifest_path is not None
        d = os.path.join(workdir, "appendonlydir")
        os.mkdir(d)
        mpath = os.path.join(d, manifest_name(src.appendfilename))
        shutil.copyfile(src.manifest_path, mpath)
        for f in src.files:
            shutil.copyfile(f.path, os.path.join(d, f.name))
        return open_source(mpath)
    f = src.files[0]
    dst = os.path.join(workdir, os.path.basename(f.path))
    shutil.copyfile(f.path, dst)
    return open_source(dst)


def stage_input(path: str, workdir: str, load_truncated: bool) -> tuple[AOFSource, Staged, Report]:
    """Copy what the engine must load into ``workdir`` and check THE COPY
    (a live directory may grow or rotate meanwhile: what is checked is what
    is loaded).  A manifest's files go into ``appendonlydir/``; a single
    file becomes ``appendonly.aof`` (an old-style AOF, which the engine moves
    into a directory as Redis 7 does) or ``dump.rdb`` (an RDB and nothing
    after it).  A file deleted by a rewrite while being copied: start over
    from the new manifest."""
    for _ in range(5):
        src = open_source(path)
        try:
            copy = _copy_input(src, workdir)
        except FileNotFoundError:
            for name in os.listdir(workdir):
                p = os.path.join(workdir, name)
                if os.path.isdir(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
            time.sleep(0.05)
            continue
        rep = _check_input(copy, load_truncated)
        total = sum(os.path.getsize(f.path) for f in copy.files)
        if src.kind == "manifest":
            return src, Staged("aof", src.appendfilename, total), rep
        mode, name = ("rdb", "dump.rdb") if rep.files and rep.files[0].format == "rdb" else ("aof", "appendonly.aof")
        if copy.files[0].path != os.path.join(workdir, name):
            os.rename(copy.files[0].path, os.path.join(workdir, name))
        return src, Staged(mode, "appendonly.aof", total), rep
    raise ToolError(f"{path} kept changing while it was copied (rewrites in progress); try again", EXIT_IO)


def engine_options(staged: Staged, args: Any) -> list[str]:
    yes_no = {True: "yes", False: "no"}
    return [
        "--daemonize", "no",
        "--save", "",
        "--dbfilename", "dump.rdb",
        "--appendonly", yes_no[staged.mode == "aof"],
        "--appendfilename", staged.appendfilename,
        "--appenddirname", "appendonlydir",
        "--aof-use-rdb-preamble", yes_no[args.preamble == "rdb"],
        "--aof-timestamp-enabled", yes_no[bool(args.timestamps)],
        "--aof-load-truncated", yes_no[bool(args.load_truncated)],
        "--auto-aof-rewrite-percentage", "0",
        "--appendfsync", "everysec",
        "--enable-debug-command", "local",
        "--databases", str(args.databases),
        "--loglevel", "notice",
    ]


def _functions(engine: Engine) -> list[bytes]:
    """The code of every function library, sorted (the code defines the
    library whole; FUNCTION LIST's order of functions is a hash order)."""
    try:
        libs = engine.call("FUNCTION", "LIST", "WITHCODE")
    except ToolError:
        return []
    out = []
    for lib in libs or []:
        d = lib if isinstance(lib, dict) else dict(zip(lib[::2], lib[1::2], strict=False))
        out.append(d.get(b"library_code") or d.get("library_code") or b"")
    return sorted(out)


def _keys(engine: Engine) -> int:
    ks = engine.info("keyspace")
    return sum(int(v.get("keys", 0)) for k, v in ks.items() if k.startswith("db") and isinstance(v, dict))


def rewrite(args: Any, progress: Progress) -> dict[str, Any]:
    """The whole run (see the module docstring); returns the summary."""
    t0 = time.monotonic()
    open_source(args.input)  # a usage error before anything is created
    out = os.path.abspath(args.output)
    parent = os.path.dirname(out)
    if os.path.lexists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ToolError(f"{args.output} already exists and is not an empty directory", EXIT_USAGE)
    if not os.path.isdir(parent):
        raise ToolError(f"{parent} does not exist", EXIT_USAGE)
    if args.databases < 1:
        raise ToolError("--databases must be at least 1", EXIT_USAGE)
    if args.appendfilename is not None and (not args.appendfilename or "/" in args.appendfilename
                                            or args.appendfilename in (".", "..")):
        raise ToolError(f"--appendfilename {args.appendfilename!r}: a file name, not a path", EXIT_USAGE)
    command = shlex.split(args.engine) if args.engine else default_engine()
    work = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.aof-rewrite-", dir=parent)
    engine: Engine | None = None
    try:
        indir = os.path.join(work, "in")
        os.mkdir(indir)
        progress.show("copying the input", force=True)
        src, staged, rep = stage_input(args.input, indir, args.load_truncated)
        appendfilename = args.appendfilename or staged.appendfilename
        engine = Engine(command, indir, engine_options(staged, args))
        engine.start()
        engine.wait_ready(progress)
        try:
            engine.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # nothing may change between the digests
        except ToolError:
            pass
        digest = engine.call("DEBUG", "DIGEST")
        functions = _functions(engine)
        keys = _keys(engine)
        before = int(engine.info("persistence").get("aof_rewrites", 0))
        if staged.mode == "rdb":
            engine.call("CONFIG", "SET", "appendonly", "yes")
        else:
            engine.call("BGREWRITEAOF")
        engine.wait_rewrite(before, progress)
        aofdir = os.path.join(indir, "appendonlydir")
        with open(os.path.join(aofdir, manifest_name(staged.appendfilename)), "rb") as f:
            am = parse_manifest(f.read())
        if am.base is None:
            raise ToolError("the engine's manifest has no base after the rewrite", EXIT_PROBLEM)
        for info in am.incr:
            size = os.path.getsize(os.path.join(aofdir, info.name))
            if size:
                raise ToolError(f"the engine wrote {size} bytes to {info.name} after the rewrite (a write during "
                                f"the rewrite); nothing was installed", EXIT_PROBLEM)
        verified = False
        if not args.no_verify:
            progress.show("verifying: reloading the rewritten AOF", force=True)
            engine.call("DEBUG", "LOADAOF")
            after = engine.call("DEBUG", "DIGEST")
            if after != digest:
                raise ToolError(f"verification failed: the rewritten AOF loads as digest {after.decode()} instead of "
                                f"{digest.decode()}; nothing was installed", EXIT_PROBLEM)
            if _functions(engine) != functions:
                raise ToolError("verification failed: the rewritten AOF loads different function libraries; "
                                "nothing was installed", EXIT_PROBLEM)
            verified = True
        engine.stop()
        base_path = os.path.join(aofdir, am.base.name)
        with open(base_path, "rb") as f:
            head = f.read(5)
        if is_rdb(head) != (args.preamble == "rdb") and os.path.getsize(base_path):
            raise ToolError(f"the engine wrote a {'RDB' if is_rdb(head) else 'RESP'} base although --preamble "
                            f"{args.preamble} was asked", EXIT_PROBLEM)
        # Install: a fresh manifest numbering, a staging directory renamed into place.
        stage = os.path.join(work, "out")
        os.mkdir(stage)
        new = Manifest()
        base_name = new.new_base(appendfilename, args.preamble == "rdb")
        incr_name = new.new_incr(appendfilename)
        os.rename(base_path, os.path.join(stage, base_name))
        with open(os.path.join(stage, incr_name), "wb") as w:
            os.fsync(w.fileno())
        with open(os.path.join(stage, manifest_name(appendfilename)), "wb") as w:
            w.write(new.to_bytes())
            w.flush()
            os.fsync(w.fileno())
        with open(os.path.join(stage, base_name), "rb") as f:
            os.fsync(f.fileno())
        fsync_dir(stage)
        final = check_source(open_source(stage))
        if not final.valid:
            raise ToolError(f"the result does not check: {final.problem.describe() if final.problem else '?'}",
                            EXIT_PROBLEM)
        if os.path.isdir(out):
            os.rmdir(out)  # empty, checked above
        os.rename(stage, out)
        fsync_dir(parent)
        base_size = os.path.getsize(os.path.join(out, base_name))
        return {
            "input": args.input,
            "input_kind": "rdb" if staged.mode == "rdb" else src.kind,
            "input_files": [f.name for f in src.files],
            "input_bytes": staged.input_bytes,
            "input_commands": sum(f.commands for f in rep.files),
            "input_problem_skipped": rep.problem.to_json() if rep.problem is not None else None,
            "output": out,
            "output_files": {"base": base_name, "incr": incr_name, "manifest": manifest_name(appendfilename)},
            "output_bytes": base_size,
            "preamble": args.preamble,
            "keys": keys,
            "function_libraries": len(functions),
            "digest": digest.decode(),
            "verified": verified,
            "engine": shlex.join(command),
            "seconds": round(time.monotonic() - t0, 3),
        }
    finally:
        if engine is not None:
            engine.stop()
        shutil.rmtree(work, ignore_errors=True)
        progress.clear()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        progress = Progress(False if args.quiet or args.json else None)
        doc = rewrite(args, progress)
        if args.json:
            print_json(doc)
        elif not args.quiet:
            ratio = f" ({doc['output_bytes'] * 100 // max(doc['input_bytes'], 1)}% of the input)"
            files = doc["output_files"]
            print(f"Rewrote {doc['input']} ({len(doc['input_files'])} file(s), {human_bytes(doc['input_bytes'])}) "
                  f"into {doc['output']}:")
            print(f"  {files['base']}  {human_bytes(doc['output_bytes'])}{ratio}")
            print(f"  {files['incr']}  empty")
            print(f"  {files['manifest']}")
            check = "verified by reloading it" if doc["verified"] else "not verified (--no-verify)"
            print(f"{doc['keys']} keys, {doc['function_libraries']} function libraries, digest {doc['digest']}, "
                  f"{check}.")
        return EXIT_OK

    return run(PROG, body)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
