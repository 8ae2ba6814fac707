"""aof-check: validate a Redis 7 multi-part AOF (or one AOF file) and repair
a damaged tail.

It reads what a server would load -- the manifest, the base (an RDB, with
its checksum, or commands), every incr file -- with
:mod:`ambry.persistence.aof.check` (redis-check-aof's rules), and reports
per file its format, size, commands and last valid offset, then the first
problem with its file and offset.

``--fix`` truncates the last file to the end of its last complete command
outside an unfinished MULTI (what redis-check-aof --fix does), after
confirmation and after copying the file aside; ``--truncate-to-timestamp``
cuts the AOF at the first ``#TS:`` annotation newer than a time.  Exit
codes are in ``aof-check --help``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Any, Final

from ambry.persistence.aof.check import FileReport, Report, check_path, check_source
from ambry.persistence.aof.source import open_source

from .aof_common import (
    EXIT_CODES_HELP,
    EXIT_IO,
    EXIT_OK,
    EXIT_PROBLEM,
    ArgParser,
    Formatter,
    Progress,
    ToolError,
    confirm,
    parse_timestamp,
    print_json,
    run,
)

PROG: Final = "aof-check"

DESCRIPTION: Final = """\
Check a Redis 7 multi-part AOF the way a server loading it would read it,
and repair a damaged tail.

PATH is an AOF directory (the one holding *.manifest; a server's working
directory with a single appendonlydir/ works too), a manifest file, or one
AOF file (an old-style single-file AOF with or without an RDB preamble, a
base or incr file, an RDB).

Every file the manifest lists for loading is read in order: an RDB part
(a base written with aof-use-rdb-preamble yes, or an old-style preamble)
record by record with its CRC-64 checksum, then the commands with
redis-check-aof's strict framing (*N / $N headers, CRLF after every
argument, MULTI/EXEC pairing, #TS: annotations). For each file it reports
the format, size, number of commands and the last valid offset; then the
first problem in load order: its file, the offset where the bad bytes
start, and what is wrong.

Repairs:
  --fix    truncates the LAST file of the manifest to the end of its last
           complete command outside an unfinished MULTI (an incomplete
           transaction is dropped whole, so a restarted server never
           appends after a dangling MULTI). A damaged record in the middle
           of the file is cut with everything after it, as redis-check-aof
           --fix does; the backup keeps the rest. A problem in any other
           file (or in an RDB part, or in the manifest) cannot be repaired by
           truncating and is refused.
  --truncate-to-timestamp TS
           cuts the AOF at the first '#TS:<unix seconds>' annotation newer
           than TS (written with aof-timestamp-enabled yes), so that loading
           it gives the dataset as of TS: point-in-time recovery. Only the
           last file can be cut.

Both ask for confirmation on the terminal (--yes answers for scripts) and
first copy the file to BACKUP (--backup-dir, default: next to the file,
named <file>.<YYYYmmdd-HHMMSS>.bak). Stop the server before repairing the
files it is writing.
"""

EPILOG: Final = EXIT_CODES_HELP + """
examples:
  aof-check /var/lib/redis/appendonlydir
  aof-check appendonlydir --json | jq .problem
  aof-check appendonlydir --fix                   # asks, keeps a backup
  aof-check appendonlydir --fix --yes --backup-dir /backups
  aof-check appendonlydir --truncate-to-timestamp 1795480113 --yes
"""


def build_parser() -> ArgParser:
    p = ArgParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter)
    p.add_argument("path", metavar="PATH", help="AOF directory, manifest file, or single AOF file")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fix", action="store_true",
                   help="truncate the last file to its last complete command outside an unfinished MULTI")
    g.add_argument("--truncate-to-timestamp", metavar="TS", type=parse_timestamp,
                   help="cut at the first #TS: annotation newer than TS (unix seconds)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation (scripts)")
    p.add_argument("--backup-dir", metavar="DIR",
                   help="where to copy a file before changing it (default: next to the file)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON document on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line (or nothing with --json)")
    return p


# -- report ---------------------------------------------------------------------------------------


def _file_line(fr: FileReport) -> str:
    """One line per file: role, name, size, what it holds, verdict."""
    if fr.size is None:
        what = "cannot be read"
    else:
        parts = [f"{fr.size} bytes"]
        if fr.rdb is not None:
            r = fr.rdb
            parts.append(f"RDB v{r.version}: {r.keys} keys ({r.expires} with TTL), {r.functions} function "
                         f"libraries, checksum {r.checksum or 'not reached'}")
        if fr.resp is not None:
            c = fr.resp
            text = f"{c.commands} commands"
            if fr.rdb is not None:
                text = f"RESP tail: {text}"
            if c.annotations:
                text += f", {c.annotations} annotations"
                if c.first_ts is not None:
                    text += f" (#TS {c.first_ts}..{c.last_ts})"
            if c.truncate_at is not None:
                text += f" before the first #TS newer than the cut, at offset {c.truncate_at} (not read further)"
            parts.append(text)
        elif fr.format == "empty":
            parts.append("empty")
        what = ", ".join(parts)
    if fr.problem is None:
        verdict = "ok"
    elif fr.problem.valid_up_to is not None:
        verdict = f"DAMAGED, valid up to offset {fr.problem.valid_up_to}"
    else:
        verdict = "DAMAGED"
    return f"  {fr.file.role:<4}  {fr.name}  {what}  [{verdict}]"


def _summary(rep: Report) -> str:
    cmds = sum(f.commands for f in rep.files)
    keys = sum(f.rdb.keys for f in rep.files if f.rdb is not None)
    n = len(rep.files)
    if rep.problem is None:
        return f"The AOF is valid: {n} file{'s' if n != 1 else ''}, {cmds} commands, {keys} keys in RDB parts."
    return f"The AOF is NOT valid: {rep.problem.describe()}"


def print_report(rep: Report, out: Any) -> None:
    src = rep.source
    if src is not None:
        kind = "Multi-part AOF" if src.kind == "manifest" else "Single AOF file"
        where = src.manifest_path if src.kind == "manifest" else src.input
        out.write(f"{kind} {where}: {len(rep.files)} file{'s' if len(rep.files) != 1 else ''} to load\n")
        if src.manifest is not None and src.manifest.history:
            names = ", ".join(h.name for h in src.manifest.history)
            out.write(f"  (history files, not loaded: {names})\n")
    for fr in rep.files:
        out.write(_file_line(fr) + "\n")
    out.write(_summary(rep) + "\n")
    p = rep.problem
    if p is None:
        return
    fr_fix = rep.fix()
    if fr_fix is not None:
        fr, to = fr_fix
        assert fr.size is not None
        out.write(f"Last valid offset: {to} in {fr.name} ({fr.size - to} bytes after it)\n")
        out.write(f"Run with --fix to truncate {fr.name} to {to} bytes (a backup copy is kept).\n")
    else:
        why = rep.fix_refusal()
        if p.valid_up_to is not None:
            out.write(f"Last valid offset: {p.valid_up_to} in {p.file}\n")
        if why:
            out.write(f"Not repairable by truncating: {why}.\n")


def report_json(rep: Report) -> dict[str, Any]:
    src = rep.source
    fix = rep.fix()
    return {
        "input": rep.input,
        "kind": src.kind if src is not None else None,
        "manifest": src.manifest_path if src is not None else None,
        "history": [h.name for h in src.manifest.history] if src is not None and src.manifest else [],
        "valid": rep.valid,
        "files": [f.to_json() for f in rep.files],
        "commands": sum(f.commands for f in rep.files),
        "problem": rep.problem.to_json() if rep.problem is not None else None,
        "fixable": fix is not None,
        "fix_truncates_to": {"file": fix[0].name, "size": fix[1]} if fix is not None else None,
        "not_fixable_because": rep.fix_refusal(),
    }


# -- repairs --------------------------------------------------------------------------------------


def backup_path(path: str, backup_dir: str | None) -> str:
    """``<dir>/<file>.<YYYYmmdd-HHMMSS>.bak``, with a counter when taken."""
    d = backup_dir or os.path.dirname(os.path.abspath(path))
    stem = os.path.join(d, f"{os.path.basename(path)}.{time.strftime('%Y%m%d-%H%M%S')}")
    cand = stem + ".bak"
    n = 1
    while os.path.exists(cand):
        cand = f"{stem}.{n}.bak"
        n += 1
    return cand


def truncate_with_backup(path: str, size: int, backup_dir: str | None) -> str:
    """Copy ``path`` aside (fsynced), then truncate it to ``size`` bytes
    (fsynced).  Returns the backup's path."""
    if backup_dir is not None and not os.path.isdir(backup_dir):
        raise ToolError(f"backup directory {backup_dir} does not exist", EXIT_IO)
    bak = backup_path(path, backup_dir)
    shutil.copyfile(path, bak)
    with open(bak, "rb+") as f:
        os.fsync(f.fileno())
    with open(path, "rb+") as f:
        f.truncate(size)
        os.fsync(f.fileno())
    return bak


def _apply(rep: Report, fr: FileReport, to: int, why: str, args: Any, out: Any, doc: dict[str, Any]) -> int:
    """Confirm, back up, truncate, check again."""
    assert fr.size is not None
    dropped = fr.size - to
    question = (f"{why}\nThis will truncate {fr.file.path} from {fr.size} to {to} bytes, dropping {dropped} bytes "
                f"(a copy is kept first). Continue?")
    if not confirm(question, args.yes):
        out.write("Nothing changed.\n")
        doc["action"] = {"file": fr.name, "truncate_to": to, "applied": False}
        return EXIT_PROBLEM
    bak = truncate_with_backup(fr.file.path, to, args.backup_dir)
    out.write(f"Truncated {fr.name} from {fr.size} to {to} bytes; the original is in {bak}\n")
    after = check_source(open_source(args.path))
    doc["action"] = {"file": fr.name, "truncate_to": to, "applied": True, "backup": bak,
                     "valid_after": after.valid}
    if after.valid:
        out.write(_summary(after) + "\n")
        return EXIT_OK
    out.write(f"Still not valid: {after.problem.describe() if after.problem else '?'}\n")
    return EXIT_PROBLEM


def _fix(rep: Report, args: Any, out: Any, doc: dict[str, Any]) -> int:
    if rep.valid:
        out.write("Nothing to fix.\n")
        return EXIT_OK
    target = rep.fix()
    if target is None:
        out.write(f"Cannot fix: {rep.fix_refusal()}.\n")
        return EXIT_PROBLEM
    fr, to = target
    p = rep.problem
    assert p is not None
    why = f"Problem: {p.describe()}"
    if p.kind in ("format", "corrupt") and fr.size is not None and p.offset is not None and p.offset < fr.size:
        why += (f"\nWarning: the damage is at offset {p.offset} of {fr.size}: everything after it is dropped too, "
                f"valid commands included (the backup keeps them)")
    return _apply(rep, fr, to, why, args, out, doc)


def _truncate_to_timestamp(rep: Report, args: Any, out: Any, doc: dict[str, Any]) -> int:
    ts = args.truncate_to_timestamp
    cut = rep.timestamp_cut
    if cut is None:
        out.write(f"Nothing to truncate: no #TS annotation is newer than {ts}.\n")
        return EXIT_OK if rep.valid else EXIT_PROBLEM
    fr, off = cut
    last = rep.last
    if last is None or fr is not last:
        out.write(f"Cannot truncate: the first annotation newer than {ts} is in {fr.name} at offset {off}, which "
                  f"is not the last file of the manifest (the files after it hold later writes; remove them from "
                  f"the manifest first if you accept losing them).\n")
        return EXIT_PROBLEM
    if rep.problem is not None:
        out.write(f"Cannot truncate: {rep.problem.describe()} (before the cut at offset {off}); repair with --fix "
                  f"first.\n")
        return EXIT_PROBLEM
    why = f"The first annotation newer than {ts} is at offset {off} of {fr.name}."
    return _apply(rep, fr, off, why, args, out, doc)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        progress = Progress(None if not args.json else False)

        def step(name: str, done: int, total: int) -> None:
            progress.show(f"checking {name}: {done * 100 // max(total, 1)}%")

        rep = check_path(args.path, to_timestamp=args.truncate_to_timestamp, progress=step)
        progress.clear()
        out = sys.stderr if args.json else sys.stdout
        quiet = args.quiet
        if not args.json:
            if quiet:
                out.write(_summary(rep) + "\n")
            else:
                print_report(rep, out)
        doc = report_json(rep)
        sink: Any = open(os.devnull, "w") if quiet and args.json else out  # noqa: SIM115
        try:
            if args.fix:
                code = _fix(rep, args, sink, doc)
            elif args.truncate_to_timestamp is not None:
                code = _truncate_to_timestamp(rep, args, sink, doc)
            else:
                code = EXIT_OK if rep.valid else EXIT_PROBLEM
        finally:
            if sink is not out:
                sink.close()
        if args.json:
            print_json(doc)
        return code

    return run(PROG, body)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
