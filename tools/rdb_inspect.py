"""rdb-inspect: look inside Redis dump files (RDB 1-12) without a server.

Every subcommand streams the file through :mod:`ambry.persistence.rdb`'s
reader, so memory stays at about the size of the largest single value
whatever the size of the file, and reports errors as a message naming the
offset and the key, never a traceback.  A progress bar is drawn on stderr
when stderr is a terminal.

Subcommands: ``summary``, ``dump``, ``memory``, ``bigkeys``, ``prefixes``,
``diff``, ``to-resp``, ``verify``, ``report`` (see ``rdb-inspect CMD
--help``).

Exit codes (the same for every subcommand):

* 0 -- success (``diff``: the files hold the same data)
* 1 -- ``diff`` only: the files differ
* 2 -- bad command line
* 3 -- a file could not be read or written
* 4 -- the input is not a valid RDB file (corrupt, truncated, wrong
  checksum, unsupported version); ``verify`` fails with this code
* 130 -- interrupted
"""

from __future__ import annotations

import argparse
import base64
import csv
import gc
import hashlib
import io
import json
import os
import re
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import compress, islice
from typing import IO, Any, Final

from ambry.persistence.rdb import (
    Aux,
    End,
    Event,
    FunctionLibrary,
    Header,
    Key,
    KeyBatch,
    ModuleAux,
    RDBChecksumError,
    RDBError,
    RDBReader,
    RDBWriteError,
    ResizeDB,
    SelectDB,
    dump_payload,
)
from ambry.persistence.rdb.checksum import ForkedCRC
from ambry.persistence.rdb.constants import ENCODING_OF_TYPE, KIND_OF_TYPE

from .memory_model import CONFIG_DIRECTIVES, LoadConfig, element_count, estimate, loaded_encoding
from .rdb_inspect_stats import TTL_BUCKETS, PrefixTree, TopN, human_bytes, ttl_bucket
from .rdb_inspect_values import (
    function_json,
    jb,
    key_commands,
    key_json,
    module_json,
    resp_command,
    value_digest,
)

__all__ = ["main", "build_parser", "redis_glob", "KeyFilter", "EXIT_OK", "EXIT_DIFFERENT", "EXIT_USAGE",
           "EXIT_IO", "EXIT_BAD_RDB", "EXIT_INTERRUPTED"]

EXIT_OK: Final = 0
EXIT_DIFFERENT: Final = 1
EXIT_USAGE: Final = 2
EXIT_IO: Final = 3
EXIT_BAD_RDB: Final = 4
EXIT_INTERRUPTED: Final = 130

PROG: Final = "rdb-inspect"

try:  # optional: orjson is several times faster than json and gives the same documents
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _dumps_line(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
except ImportError:  # pragma: no cover - depends on the environment
    _json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def _dumps(obj: Any) -> bytes:
        return _json_encoder.encode(obj).encode()

    def _dumps_line(obj: Any) -> bytes:
        return _json_encoder.encode(obj).encode() + b"\n"


class UsageError(Exception):
    """A bad option value found after argparse (exit code 2)."""


# -- input, output, progress -------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a
    terminal and at most five times a second."""

    def __init__(self, total: int | None, label: str, enabled: bool | None = None) -> None:
        self.total = total
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self._next = self.start + 0.2
        self._drawn = False

    def update(self, pos: int, keys: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 0.2
        rate = pos / max(now - self.start, 1e-6)
        if self.total:
            frac = min(pos / self.total, 1.0)
            width = 30
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            eta = (self.total - pos) / rate if rate > 0 else 0
            line = (f"{self.label} [{bar}] {frac * 100:5.1f}% {human_bytes(pos)}/{human_bytes(self.total)} "
                    f"{keys:,} keys {human_bytes(rate)}/s ETA {eta:.0f}s")
        else:
            line = f"{self.label} {human_bytes(pos)} {keys:,} keys {human_bytes(rate)}/s"
        sys.stderr.write("\r" + line[:200] + "\x1b[K")
        sys.stderr.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._drawn = False


def _input_size(f: IO[bytes]) -> int | None:
    try:
        st = os.fstat(f.fileno())
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return None
    import stat

    return st.st_size if stat.S_ISREG(st.st_mode) else None


class FileCRC(ForkedCRC):
    """A dump file's CRC-64 computed by a forked child while this process
    parses the file (persistence's :class:`ForkedCRC`, as the server's
    start-up load does).  A file whose RDB data ends elsewhere than 8 bytes
    before its end (an AOF tail after it) is summed here instead."""

    #: Smaller files are summed in the parse itself (a fork costs a few ms).
    MIN_SIZE: Final = 4 << 20

    @classmethod
    def open_for(cls, f: IO[bytes]) -> ForkedCRC | None:
        """Fork the child for a regular file of at least MIN_SIZE bytes."""
        size = _input_size(f)
        if size is None or size < cls.MIN_SIZE:
            return None
        try:
            file_fd = f.fileno()
        except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
            return None
        return cls.start(file_fd, size)


def check_end(crc: ForkedCRC, end: End) -> End:
    """The End event with the computed CRC; raises RDBChecksumError on a
    mismatch, as the reader does (a stored 0 means "not computed")."""
    if end.checksum is None:  # RDB < 5: no trailer
        crc.close()
        return end
    computed = crc.crc(end.offset + 1)
    if end.checksum != 0 and end.checksum != computed:
        raise RDBChecksumError(
            f"Wrong RDB checksum expected: ({end.checksum:#018x}) got: ({computed:#018x})",
            offset=end.offset + 1)
    return End(end.checksum, computed, end.offset)


def read_events(path: str, args: argparse.Namespace, *, verify_checksum: bool = True,
                deep: bool = False, label: str | None = None, counts: bool = False,
                batches: bool = False) -> Iterator[Event]:
    """The events of the RDB at ``path`` (``-`` = stdin), with a progress bar.
    Module values of modules nobody registered are kept raw (their items).
    ``counts``: values come as their element counts (the reader's skim
    mode), for commands that need no value; ``batches``: keys
    come as KeyBatch events."""
    f: IO[bytes]
    if path == "-":
        f = sys.stdin.buffer
        close = False
    else:
        f = open(path, "rb")  # noqa: SIM115 - closed below, generators cannot use with across yields safely
        close = True
    progress = Progress(_input_size(f), label or os.path.basename(path),
                        enabled=None if not getattr(args, "no_progress", False) else False)
    crc = FileCRC.open_for(f) if verify_checksum else None
    try:
        reader = RDBReader(verify_checksum=verify_checksum and crc is None, unknown_modules="raw",
                           deep_sanitize=deep, valkey=True, skim=counts, batch_keys=batches,
                           total_size=_remaining_size(f))
        # The reader driven here, without generator layers in between: a
        # dump has a million events.
        read = f.read
        show = progress.enabled
        keys = 0
        while True:
            chunk = read(1 << 20)
            for ev in reader.feed(chunk) if chunk else reader.close():
                if crc is not None and type(ev) is End:
                    ev = check_end(crc, ev)  # type: ignore[arg-type]
                if show:
                    if type(ev) is Key:
                        keys += 1
                    elif type(ev) is KeyBatch:
                        keys += len(ev.keys)  # type: ignore[union-attr]
                yield ev
            if show:
                progress.update(reader.offset, keys)
            if not chunk or reader.done:
                break
    finally:
        progress.close()
        if crc is not None:
            crc.close()
        if close:
            f.close()


def _remaining_size(f: IO[bytes]) -> int | None:
    """Bytes left in a regular file from its position (None otherwise)."""
    size = _input_size(f)
    if size is None:
        return None
    try:
        return size - f.tell()
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


class Output:
    """Binary output to a file or stdout; ``-o -`` and no ``-o`` mean stdout."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        if path is None or path == "-":
            self.f: IO[bytes] = sys.stdout.buffer
            self._own = False
        else:
            self.f = open(path, "wb")  # noqa: SIM115 - closed by close()
            self._own = True
        self.write = self.f.write

    def text(self, s: str) -> None:
        self.f.write(s.encode())

    def close(self) -> None:
        self.f.flush()
        if self._own:
            self.f.close()


def _arg_bytes(s: str) -> bytes:
    """A command-line argument back to the bytes the user typed."""
    return os.fsencode(s)


def _show_key(key: bytes) -> str:
    """A key for people: UTF-8 with \\x escapes for other bytes."""
    return key.decode("utf-8", "backslashreplace")


def _load_config(args: argparse.Namespace) -> LoadConfig:
    cfg = LoadConfig()
    for item in getattr(args, "config", None) or []:
        name, sep, value = item.partition("=")
        if not sep:
            name, _, value = item.strip().partition(" ")
        try:
            cfg.set(name, value.strip())
        except ValueError as e:
            raise UsageError(f"--config {item}: {e}") from None
    return cfg


def _now_ms(args: argparse.Namespace) -> int:
    now = getattr(args, "now", None)
    return int(time.time() * 1000) if now is None else now


# -- key filters ---------------------------------------------------------------------------


def redis_glob(pattern: bytes) -> re.Pattern[bytes]:
    """Redis's KEYS/SCAN MATCH pattern (util.c stringmatchlen) as a regex:
    ``*`` and ``?``, ``[abc]``, ``[^abc]``, ranges ``[a-z]`` (either order),
    ``\\x`` escapes; an unclosed ``[`` runs to the end of the pattern."""
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i:i + 1]
        if c == b"*":
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i:i + 1]))
        elif c == b"[":
            i += 1
            neg = i < n and pattern[i:i + 1] == b"^"
            if neg:
                i += 1
            parts = []
            while i < n and pattern[i:i + 1] != b"]":
                ch = pattern[i]
                if ch == 0x5C and i + 1 < n:  # backslash: the next byte literally
                    i += 1
                    parts.append(re.escape(pattern[i:i + 1]))
                elif i + 2 < n and pattern[i + 1:i + 2] == b"-" and pattern[i + 2:i + 3] != b"]":
                    lo, hi = ch, pattern[i + 2]
                    if lo > hi:
                        lo, hi = hi, lo
                    parts.append(re.escape(bytes((lo,))) + b"-" + re.escape(bytes((hi,))))
                    i += 2
                else:
                    parts.append(re.escape(bytes((ch,))))
                i += 1
            body = b"".join(parts)
            if not body:
                out.append(b"[^\\s\\S]" if not neg else b"[\\s\\S]")
            else:
                out.append(b"[" + (b"^" if neg else b"") + body + b"]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile(b"".join(out) + b"\\Z", re.DOTALL)


TYPE_ALIASES: Final = {
    "string": "string", "list": "list", "set": "set", "zset": "zset", "sortedset": "zset",
    "sorted_set": "zset", "hash": "hash", "stream": "stream", "module": "module",
}


class KeyFilter:
    """The key filters of the command line: ``--db``, ``--type``, ``--key``
    (any of the globs), ``--key-regex`` (any, searched), ``--not-key`` (none
    of the globs), ``--expiring``/``--persistent``.  ``--limit`` is applied
    by the callers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.dbs = set(getattr(args, "db", None) or [])
        types = set()
        for t in getattr(args, "type", None) or []:
            name = TYPE_ALIASES.get(t.lower())
            if name is None:
                raise UsageError(f"unknown type {t!r} (one of {', '.join(sorted(set(TYPE_ALIASES.values())))})")
            types.add(name)
        self.types = types
        self.globs = [redis_glob(_arg_bytes(p)).match for p in getattr(args, "key", None) or []]
        try:
            self.regexes = [re.compile(_arg_bytes(p)).search for p in getattr(args, "key_regex", None) or []]
        except re.error as e:
            raise UsageError(f"--key-regex: {e}") from None
        self.not_globs = [redis_glob(_arg_bytes(p)).match for p in getattr(args, "not_key", None) or []]
        self.expiring = getattr(args, "expiring", False)
        self.persistent = getattr(args, "persistent", False)
        self.limit = getattr(args, "limit", None)
        self.trivial = not (self.dbs or types or self.globs or self.regexes or self.not_globs
                            or self.expiring or self.persistent)

    def __call__(self, ev: Key) -> bool:
        if self.trivial:
            return True
        if self.dbs and ev.db not in self.dbs:
            return False
        if self.types and ev.type not in self.types:
            return False
        if self.expiring and ev.expire_ms is None:
            return False
        if self.persistent and ev.expire_ms is not None:
            return False
        key = ev.key
        if self.globs and not any(m(key) for m in self.globs):
            return False
        if self.regexes and not any(m(key) for m in self.regexes):
            return False
        return not any(m(key) for m in self.not_globs)


def filtered_keys(events: Iterator[Event], flt: KeyFilter) -> Iterator[Key]:
    """The keys passing the filter, stopping (and so no longer reading the
    file) after ``--limit`` of them."""
    limit = flt.limit
    n = 0
    for ev in events:
        if type(ev) is Key and flt(ev):
            yield ev
            n += 1
            if limit is not None and n >= limit:
                return


# -- summary ----------------------------------------------------------------------------------


def _checksum_json(end: End | None) -> dict[str, Any] | None:
    if end is None:
        return None
    return {
        "stored": None if end.checksum is None else f"{end.checksum:016x}",
        "computed": None if end.computed is None else f"{end.computed:016x}",
        "status": _checksum_status(end),
    }


def _checksum_status(end: End) -> str:
    if end.checksum is None:
        return "absent (RDB < 5)"
    if end.checksum == 0:
        return "disabled (stored as 0)"
    if end.computed is None:
        return "not verified"
    return "OK" if end.checksum == end.computed else "MISMATCH"


def cmd_summary(args: argparse.Namespace) -> int:
    """Version, aux fields, counts by db/type/encoding, serialized sizes,
    TTLs and their spread, function libraries and module aux data."""
    flt = KeyFilter(args)
    cfg = _load_config(args)
    now = _now_ms(args)
    with_memory = args.memory
    version = None
    magic = "REDIS"
    aux: list[tuple[bytes, bytes]] = []
    libs: list[FunctionLibrary] = []
    mods: list[ModuleAux] = []
    resize: dict[int, tuple[int, int]] = {}
    dbs: dict[int, list[int]] = {}  # db -> [keys, expires, bytes]
    types: dict[str, list[int]] = {}  # type -> [keys, elements, bytes, memory]
    encs: dict[tuple[str, str], list[int]] = {}  # (type, rdb encoding) -> [keys, bytes]
    ttl = [0] * len(TTL_BUCKETS)
    exp_min: int | None = None
    exp_max: int | None = None
    biggest = TopN[tuple[int, bytes, str]](args.top)
    end: End | None = None
    db = 0
    total_keys = 0
    # Without --memory no value is needed: element counts are enough, and
    # without a filter the keys are counted batch by batch.
    fast = not with_memory and flt.trivial and flt.limit is None
    for ev in read_events(args.file, args, counts=not with_memory, batches=fast):
        t = type(ev)
        if t is KeyBatch:
            assert isinstance(ev, KeyBatch)
            nb = len(ev.keys)
            total_keys += nb
            sizes = ev.sizes
            d = dbs.get(ev.db)
            if d is None:
                d = dbs[ev.db] = [0, 0, 0]
            d[0] += nb
            d[2] += sum(sizes)
            rts = ev.types
            vals: list[int] = ev.values  # type: ignore[assignment]
            present = Counter(rts)
            if len(present) == 1:
                sums = {rts[0]: [sum(sizes), sum(vals)]}
            else:
                sums = {rt: [0, 0] for rt in present}
                for rt, sz, el in zip(rts, sizes, vals, strict=True):
                    acc = sums[rt]
                    acc[0] += sz
                    acc[1] += el
            for rt, cnt in present.items():
                sz, el = sums[rt]
                kt = KIND_OF_TYPE[rt]
                row = types.get(kt)
                if row is None:
                    row = types[kt] = [0, 0, 0, 0]
                row[0] += cnt
                row[1] += el
                row[2] += sz
                e = encs.get((kt, ENCODING_OF_TYPE[rt]))
                if e is None:
                    e = encs[(kt, ENCODING_OF_TYPE[rt])] = [0, 0]
                e[0] += cnt
                e[1] += sz
            for i, enc in ev.encodings:  # int / LZF strings were counted as raw
                sz = sizes[i]
                raw = encs[("string", "raw")]
                raw[0] -= 1
                raw[1] -= sz
                e = encs.get(("string", enc))
                if e is None:
                    e = encs[("string", enc)] = [0, 0]
                e[0] += 1
                e[1] += sz
            for _, x, _, _ in ev.meta:
                if x is not None:
                    d[1] += 1
                    ttl[ttl_bucket(x, now)] += 1
                    if exp_min is None or x < exp_min:
                        exp_min = x
                    if exp_max is None or x > exp_max:
                        exp_max = x
            # The biggest records: those above the current threshold, in
            # order, as the key-by-key path would offer them.
            i = 0
            while i < nb and biggest.would_take(-1):
                biggest.add(sizes[i], (ev.db, ev.keys[i], KIND_OF_TYPE[rts[i]]))
                i += 1
            if i < nb and biggest.n > 0:
                floor = biggest.items()[-1][0]
                for j in compress(range(i, nb), map(floor.__lt__, islice(sizes, i, None))):
                    if biggest.would_take(sizes[j]):
                        biggest.add(sizes[j], (ev.db, ev.keys[j], KIND_OF_TYPE[rts[j]]))
            continue
        if t is Key:
            assert isinstance(ev, Key)
            if not flt(ev):
                continue
            total_keys += 1
            kt = ev.type
            size = ev.size
            d = dbs.get(ev.db)
            if d is None:
                d = dbs[ev.db] = [0, 0, 0]
            d[0] += 1
            d[2] += size
            row = types.get(kt)
            if row is None:
                row = types[kt] = [0, 0, 0, 0]
            row[0] += 1
            row[1] += element_count(ev)
            row[2] += size
            if with_memory:
                row[3] += estimate(ev, cfg).memory
            e = encs.get((kt, ev.encoding))
            if e is None:
                e = encs[(kt, ev.encoding)] = [0, 0]
            e[0] += 1
            e[1] += size
            x = ev.expire_ms
            if x is not None:
                d[1] += 1
                ttl[ttl_bucket(x, now)] += 1
                if exp_min is None or x < exp_min:
                    exp_min = x
                if exp_max is None or x > exp_max:
                    exp_max = x
            if biggest.would_take(size):
                biggest.add(size, (ev.db, ev.key, kt))
            if flt.limit is not None and total_keys >= flt.limit:
                break
        elif t is Aux:
            aux.append((ev.key, ev.value))  # type: ignore[union-attr]
        elif t is SelectDB:
            db = ev.db  # type: ignore[union-attr]
        elif t is ResizeDB:
            resize[db] = (ev.db_size, ev.expires_size)  # type: ignore[union-attr]
        elif t is FunctionLibrary:
            libs.append(ev)  # type: ignore[arg-type]
        elif t is ModuleAux:
            mods.append(ev)  # type: ignore[arg-type]
        elif t is Header:
            version = ev.version  # type: ignore[union-attr]
            magic = ev.magic  # type: ignore[union-attr]
        elif t is End:
            end = ev  # type: ignore[assignment]
    encs = {k: v for k, v in encs.items() if v[0]}
    total_bytes = sum(r[2] for r in types.values())
    expires = sum(d[1] for d in dbs.values())
    size = None if args.file == "-" else os.path.getsize(args.file)
    doc: dict[str, Any] = {
        "file": args.file,
        "file_bytes": size,
        "rdb_version": version,
        "magic": magic,
        "aux": {_aux_name(k): jb(v) for k, v in aux},
        "keys": total_keys,
        "expires": expires,
        "already_expired": ttl[0],
        "serialized_bytes": total_bytes,
        "dbs": {str(k): {"keys": v[0], "expires": v[1], "serialized_bytes": v[2],
                         "resize_hint": list(resize[k]) if k in resize else None}
                for k, v in sorted(dbs.items())},
        "types": {k: {"keys": v[0], "elements": v[1], "serialized_bytes": v[2],
                      **({"memory": v[3]} if with_memory else {})}
                  for k, v in sorted(types.items(), key=lambda kv: -kv[1][2])},
        "encodings": [{"type": k[0], "encoding": k[1], "keys": v[0], "serialized_bytes": v[1]}
                      for k, v in sorted(encs.items(), key=lambda kv: (-kv[1][0], kv[0]))],
        "ttl": {
            "now_ms": now,
            "min_expire_ms": exp_min,
            "max_expire_ms": exp_max,
            "histogram": {TTL_BUCKETS[i][0]: ttl[i] for i in range(len(TTL_BUCKETS))},
        },
        "functions": [{"library_name": lib.name, "engine": (lib.engine or "").upper() or None,
                       "code_bytes": len(lib.code)} for lib in libs],
        "module_aux": [{"module": m.value.name, "when": m.when} for m in mods],
        "biggest_records": [{"db": k[0], "key": jb(k[1]), "type": k[2], "serialized_bytes": s}
                            for s, k in biggest.items()],
        "checksum": _checksum_json(end),
    }
    if with_memory:
        doc["memory"] = sum(r[3] for r in types.values())
    out = Output(args.output)
    try:
        if args.json:
            out.write(_dumps(doc) + b"\n")
        else:
            out.text(_summary_text(doc, with_memory))
    finally:
        out.close()
    return EXIT_OK


def _aux_name(k: bytes) -> str:
    try:
        return k.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(k).decode()


def _jtext(v: Any) -> str:
    """A binary-safe JSON value back to display text."""
    if isinstance(v, dict):
        return "base64:" + v["base64"]
    return str(v)


def _table(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join("  " + line for line in lines) + "\n"


def _fmt_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d} UTC"
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"


def _summary_text(d: dict[str, Any], with_memory: bool) -> str:
    out = []
    size = f" ({d['file_bytes']:,} bytes)" if d["file_bytes"] is not None else ""
    out.append(f"File             {d['file']}{size}\n")
    valkey = f" (Valkey file, magic VALKEY{d['rdb_version']:03d})" if d.get("magic") == "VALKEY" else ""
    out.append(f"RDB version      {d['rdb_version']}{valkey}\n")
    if d["aux"]:
        out.append("Aux fields\n")
        for k, v in d["aux"].items():
            extra = ""
            if k == "ctime" and isinstance(v, str) and v.isdigit():
                extra = f"  ({_fmt_time(int(v) * 1000)})"
            out.append(f"  {k:<22} {_jtext(v)}{extra}\n")
    cs = d["checksum"]
    out.append(f"Checksum         {cs['status'] if cs else 'not reached (stopped early)'}"
               f"{'  ' + cs['stored'] if cs and cs['stored'] else ''}\n")
    out.append(f"Keys             {d['keys']:,} in {len(d['dbs'])} database(s), {d['expires']:,} with a TTL "
               f"({d['already_expired']:,} already expired)\n")
    out.append(f"Serialized size  {d['serialized_bytes']:,} bytes of key records"
               f" ({human_bytes(d['serialized_bytes'])})\n")
    if with_memory:
        out.append(f"Memory estimate  {d['memory']:,} bytes ({human_bytes(d['memory'])}) in Redis 7.0\n")
    if d["dbs"]:
        out.append("\nBy database\n")
        rows = [["db", "keys", "expires", "serialized", "RESIZEDB hint"]]
        for k, v in d["dbs"].items():
            hint = "-" if v["resize_hint"] is None else f"{v['resize_hint'][0]}/{v['resize_hint'][1]}"
            rows.append([k, f"{v['keys']:,}", f"{v['expires']:,}", human_bytes(v["serialized_bytes"]), hint])
        out.append(_table(rows, {1, 2, 3}))
    if d["types"]:
        out.append("\nBy type\n")
        head = ["type", "keys", "elements", "serialized", "share"] + (["memory"] if with_memory else [])
        rows = [head]
        total = d["serialized_bytes"] or 1
        for k, v in d["types"].items():
            row = [k, f"{v['keys']:,}", f"{v['elements']:,}", human_bytes(v["serialized_bytes"]),
                   f"{v['serialized_bytes'] * 100 / total:.1f}%"]
            if with_memory:
                row.append(human_bytes(v["memory"]))
            rows.append(row)
        out.append(_table(rows, {1, 2, 3, 4, 5}))
        out.append("\nBy type and encoding (as stored in the file)\n")
        rows = [["type", "encoding", "keys", "serialized"]]
        for e in d["encodings"]:
            rows.append([e["type"], e["encoding"], f"{e['keys']:,}", human_bytes(e["serialized_bytes"])])
        out.append(_table(rows, {2, 3}))
    if d["expires"]:
        t = d["ttl"]
        out.append(f"\nExpiry spread (relative to {_fmt_time(t['now_ms'])})\n")
        out.append(f"  earliest {_fmt_time(t['min_expire_ms'])}, latest {_fmt_time(t['max_expire_ms'])}\n")
        rows = [[label, f"{n:,}"] for label, n in t["histogram"].items()]
        out.append(_table(rows, {1}))
    if d["functions"]:
        out.append("\nFunction libraries\n")
        for f in d["functions"]:
            out.append(f"  {f['library_name']} ({f['engine'] or '?'}, {f['code_bytes']:,} bytes of code)\n")
    if d["module_aux"]:
        out.append("\nModule aux data\n")
        for m in d["module_aux"]:
            out.append(f"  {m['module']} (when={m['when']})\n")
    if d["biggest_records"]:
        out.append("\nBiggest key records (serialized)\n")
        rows = [["bytes", "type", "db", "key"]]
        for b in d["biggest_records"]:
            rows.append([f"{b['serialized_bytes']:,}", b["type"], str(b["db"]), _jtext(b["key"])])
        out.append(_table(rows, {0}))
    return "".join(out)


# -- dump ---------------------------------------------------------------------------------------


def _meta_json(ev: Event) -> dict[str, Any] | None:
    """A non-key record as an NDJSON ``--meta`` line."""
    if isinstance(ev, Header):
        return {"record": "header", "rdb_version": ev.version}
    if isinstance(ev, Aux):
        return {"record": "aux", "name": jb(ev.key), "value": jb(ev.value)}
    if isinstance(ev, FunctionLibrary):
        return {"record": "function", **function_json(ev)}
    if isinstance(ev, ModuleAux):
        return {"record": "module_aux", "when": ev.when, **module_json(ev.value)}
    if isinstance(ev, SelectDB):
        return {"record": "select_db", "db": ev.db}
    if isinstance(ev, ResizeDB):
        return {"record": "resize_db", "keys": ev.db_size, "expires": ev.expires_size}
    if isinstance(ev, End):
        return {"record": "end", "checksum": _checksum_json(ev)}
    return None


def cmd_dump(args: argparse.Namespace) -> int:
    """Every key as binary-safe JSON, streamed: NDJSON (a line per key) or
    one JSON document written incrementally."""
    flt = KeyFilter(args)
    cfg = _load_config(args)
    file_order = args.file_order
    out = Output(args.output)
    write = out.write
    try:
        if args.ndjson:
            limit = flt.limit
            n = 0
            line = _dumps_line
            lines: list[bytes] = []  # written 1024 at a time
            add = lines.append
            for ev in read_events(args.file, args):
                if type(ev) is Key:
                    if flt(ev):
                        add(line(key_json(ev, loaded_encoding(ev, cfg), file_order)))  # type: ignore[arg-type]
                        n += 1
                        if not n & 1023:
                            write(b"".join(lines))
                            lines.clear()
                        if limit is not None and n >= limit:
                            break
                elif args.meta:
                    meta = _meta_json(ev)
                    if meta is not None:
                        add(line(meta))
            write(b"".join(lines))
            return EXIT_OK
        _dump_document(args, flt, cfg, file_order, write)
        return EXIT_OK
    finally:
        out.close()


def _dump_document(args: argparse.Namespace, flt: KeyFilter, cfg: LoadConfig, file_order: bool,
                   write: Callable[[bytes], Any]) -> None:
    """``{"rdb_version", "aux", "functions", "module_aux", "keys": [...],
    "db_sizes", "checksum"}`` -- the head is written when the first key
    record arrives, each key as soon as it is read; records found after the
    first key go to ``*_after_keys`` members of the tail."""
    dumps = _dumps
    head: dict[str, Any] = {"rdb_version": None, "aux": {}, "functions": [], "module_aux": []}
    tail: dict[str, Any] = {}
    sizes: dict[str, dict[str, int]] = {}
    started = False
    first = True
    n = 0
    limit = flt.limit
    db = 0
    end: End | None = None
    stopped = False

    def start() -> None:
        nonlocal started
        started = True
        write(dumps(head)[:-1] + b',"keys":[')

    for ev in read_events(args.file, args):
        t = type(ev)
        if t is Key:
            if not started:
                start()
            if not flt(ev):  # type: ignore[arg-type]
                continue
            doc = dumps(key_json(ev, loaded_encoding(ev, cfg), file_order))  # type: ignore[arg-type]
            if first:
                write(b"\n" + doc)
                first = False
            else:
                write(b",\n" + doc)
            n += 1
            if limit is not None and n >= limit:
                stopped = True
                break
        elif t is Header:
            head["rdb_version"] = ev.version  # type: ignore[union-attr]
        elif t is Aux:
            target = head["aux"] if not started else tail.setdefault("aux_after_keys", {})
            target[_aux_name(ev.key)] = jb(ev.value)  # type: ignore[union-attr]
        elif t is FunctionLibrary:
            lst = head["functions"] if not started else tail.setdefault("functions_after_keys", [])
            lst.append(function_json(ev))  # type: ignore[arg-type]
        elif t is ModuleAux:
            lst = head["module_aux"] if not started else tail.setdefault("module_aux_after_keys", [])
            lst.append({"when": ev.when, **module_json(ev.value)})  # type: ignore[union-attr]
        elif t is SelectDB:
            db = ev.db  # type: ignore[union-attr]
        elif t is ResizeDB:
            sizes[str(db)] = {"keys": ev.db_size, "expires": ev.expires_size}  # type: ignore[union-attr]
        elif t is End:
            end = ev  # type: ignore[assignment]
    if not started:
        start()
    tail["db_sizes"] = sizes
    tail["checksum"] = _checksum_json(end)
    if stopped:
        tail["stopped_at_limit"] = True
    write(b"\n]," + dumps(tail)[1:] + b"\n")


# -- memory, bigkeys, prefixes ---------------------------------------------------------------

MEMORY_FIELDS: Final = ["db", "key", "key_base64", "type", "encoding", "memory", "elements",
                        "largest_element", "expire_ms", "rdb_bytes"]


def cmd_memory(args: argparse.Namespace) -> int:
    """Per key: the estimated Redis 7.0 memory (see memory_model), the
    encoding after a load, the element count and the largest element."""
    flt = KeyFilter(args)
    cfg = _load_config(args)
    min_mem = args.min_memory
    fmt = args.format
    out = Output(args.output)
    dumps = _dumps
    try:
        if fmt == "csv":
            text = io.TextIOWrapper(out.f, encoding="utf-8", newline="")
            w = csv.writer(text, lineterminator="\n")
            w.writerow(MEMORY_FIELDS)
            rows: list[list[Any]] = []  # written 1024 at a time
            add = rows.append
            for ev in filtered_keys(read_events(args.file, args), flt):
                m = estimate(ev, cfg)
                if m.memory < min_mem:
                    continue
                try:
                    k, kb = ev.key.decode(), ""
                except UnicodeDecodeError:
                    k, kb = "", base64.b64encode(ev.key).decode()
                add([ev.db, k, kb, ev.type, m.encoding, m.memory, m.elements, m.largest,
                     "" if ev.expire_ms is None else ev.expire_ms, ev.size])
                if len(rows) >= 1024:
                    w.writerows(rows)
                    rows.clear()
            w.writerows(rows)
            text.flush()
            text.detach()
            return EXIT_OK
        first = True
        if fmt == "json":
            out.write(b"[")
        for ev in filtered_keys(read_events(args.file, args), flt):
            m = estimate(ev, cfg)
            if m.memory < min_mem:
                continue
            line = dumps({"db": ev.db, "key": jb(ev.key), "type": ev.type, "encoding": m.encoding,
                          "memory": m.memory, "elements": m.elements, "largest_element": m.largest,
                          "expire_ms": ev.expire_ms, "rdb_bytes": ev.size})
            if fmt == "json":
                out.write((b"\n" if first else b",\n") + line)
                first = False
            else:
                out.write(line + b"\n")
        if fmt == "json":
            out.write(b"\n]\n")
        return EXIT_OK
    finally:
        out.close()


def cmd_bigkeys(args: argparse.Namespace) -> int:
    """The N biggest keys by estimated memory and by element count, the
    biggest of each type, and per-type totals (like ``redis-cli --bigkeys``
    and ``--memkeys`` together, but exact and offline)."""
    flt = KeyFilter(args)
    cfg = _load_config(args)
    by_mem = TopN[dict[str, Any]](args.top)
    by_len = TopN[dict[str, Any]](args.top)
    per_type: dict[str, dict[str, Any]] = {}
    total_keys = 0
    total_mem = 0
    for ev in filtered_keys(read_events(args.file, args), flt):
        m = estimate(ev, cfg)
        total_keys += 1
        total_mem += m.memory
        t = ev.type
        row = per_type.get(t)
        if row is None:
            row = per_type[t] = {"keys": 0, "memory": 0, "elements": 0, "biggest": None, "biggest_memory": -1}
        row["keys"] += 1
        row["memory"] += m.memory
        row["elements"] += m.elements
        take_mem = by_mem.would_take(m.memory)
        take_len = by_len.would_take(m.elements)
        if take_mem or take_len or m.memory > row["biggest_memory"]:
            info = {"db": ev.db, "key": jb(ev.key), "type": t, "encoding": m.encoding, "memory": m.memory,
                    "elements": m.elements, "expire_ms": ev.expire_ms}
            if take_mem:
                by_mem.add(m.memory, info)
            if take_len:
                by_len.add(m.elements, info)
            if m.memory > row["biggest_memory"]:
                row["biggest_memory"] = m.memory
                row["biggest"] = info
    doc: dict[str, Any] = {
        "keys": total_keys,
        "memory": total_mem,
        "top_by_memory": [i for _, i in by_mem.items()],
        "top_by_elements": [i for _, i in by_len.items()],
        "types": {t: {"keys": r["keys"], "memory": r["memory"], "elements": r["elements"], "biggest": r["biggest"]}
                  for t, r in sorted(per_type.items(), key=lambda kv: -kv[1]["memory"])},
    }
    out = Output(args.output)
    try:
        if args.json:
            out.write(_dumps(doc) + b"\n")
            return EXIT_OK
        parts = [f"{total_keys:,} keys, {human_bytes(total_mem)} estimated in Redis 7.0\n"]
        for title, items in (("Biggest keys by memory", doc["top_by_memory"]),
                             ("Biggest keys by element count", doc["top_by_elements"])):
            parts.append(f"\n{title}\n")
            rows = [["#", "memory", "elements", "type", "encoding", "db", "key"]]
            for i, it in enumerate(items, 1):
                rows.append([str(i), f"{it['memory']:,}", f"{it['elements']:,}", it["type"], it["encoding"],
                             str(it["db"]), _jtext(it["key"])])
            parts.append(_table(rows, {0, 1, 2}) if len(rows) > 1 else "  (no keys)\n")
        parts.append("\nBy type\n")
        rows = [["type", "keys", "memory", "avg", "elements", "biggest key (memory)"]]
        for t, r in doc["types"].items():
            b = r["biggest"]
            rows.append([t, f"{r['keys']:,}", human_bytes(r["memory"]), human_bytes(r["memory"] / max(r["keys"], 1)),
                         f"{r['elements']:,}", f"{_jtext(b['key'])} ({human_bytes(b['memory'])})" if b else "-"])
        parts.append(_table(rows, {1, 2, 3, 4}) if len(rows) > 1 else "  (no keys)\n")
        out.text("".join(parts))
        return EXIT_OK
    finally:
        out.close()


def build_prefix_tree(args: argparse.Namespace, cfg: LoadConfig, flt: KeyFilter) -> PrefixTree:
    tree = PrefixTree(_arg_bytes(args.sep), args.depth, args.max_children, group_ids=not args.no_group_ids)
    add = tree.add
    for ev in filtered_keys(read_events(args.file, args), flt):
        add(ev.key, estimate(ev, cfg).memory)
    return tree


def _tree_json(tree: PrefixTree, min_memory: int) -> dict[str, Any]:
    def rec(node: Any, path: bytes) -> dict[str, Any]:
        full = path + node.name
        d: dict[str, Any] = {"prefix": jb(full), "memory": node.memory, "keys": node.keys}
        if node.folded:
            d["folded"] = True
        kids = [rec(c, full) for c in tree.children_of(node) if c.memory >= min_memory]
        if kids:
            d["children"] = kids
        return d

    return rec(tree.root, b"")


def cmd_prefixes(args: argparse.Namespace) -> int:
    """Estimated memory and key counts by key prefix, as a tree."""
    flt = KeyFilter(args)
    cfg = _load_config(args)
    try:
        tree = build_prefix_tree(args, cfg, flt)
    except ValueError as e:
        raise UsageError(str(e)) from None
    total = tree.root.memory
    min_memory = int(total * args.min_share / 100)
    out = Output(args.output)
    try:
        if args.json:
            out.write(_dumps(_tree_json(tree, min_memory)) + b"\n")
            return EXIT_OK
        rows = [["memory", "share", "keys", "prefix"]]
        for level, full, node in tree.walk(min_memory):
            name = _show_key(full)
            rows.append([human_bytes(node.memory), f"{node.memory * 100 / (total or 1):.1f}%", f"{node.keys:,}",
                         "  " * level + (name if not node.folded else name + " (folded)")])
        out.text(f"{tree.root.keys:,} keys, {human_bytes(total)} estimated in Redis 7.0 "
                 f"(separator {args.sep!r}, depth {args.depth})\n")
        out.text(_table(rows, {0, 1, 2}))
        return EXIT_OK
    finally:
        out.close()


# -- diff ---------------------------------------------------------------------------------------

_NO_TTL: Final = -(1 << 63)
_DIFF_BATCH: Final = 4096


_KEY_HASHERS: dict[int, Any] = {}


def _key_id(db: int, key: bytes) -> int:
    """A 128-bit hash of (db, key): how file A's keys are found again."""
    base = _KEY_HASHERS.get(db)
    if base is None:
        base = _KEY_HASHERS[db] = hashlib.blake2b(digest_size=16, salt=db.to_bytes(8, "little", signed=True))
    h = base.copy()
    h.update(key)
    return int.from_bytes(h.digest(), "big")


class _Side:
    """File A's keys, compact: per key a 128-bit hash of (db, key), the
    SHA-1 of its value, its expiry and type -- about 70 bytes, whatever the
    key and value sizes.  After :meth:`freeze` the hashes are sorted (numpy)
    and looked up by binary search, a batch of B's keys at a time."""

    def __init__(self) -> None:
        self.ids = bytearray()
        self.digests = bytearray()
        self.expires = array("q")
        self.types: list[str] = []
        self._type_codes: dict[str, str] = {}

    def add(self, ev: Key) -> None:
        self.ids += _key_id(ev.db, ev.key).to_bytes(16, "big")
        self.digests += value_digest(ev)
        self.expires.append(_NO_TTL if ev.expire_ms is None else ev.expire_ms)
        t = self._type_codes.setdefault(ev.type, ev.type)  # one shared str per type
        self.types.append(t)

    def __len__(self) -> int:
        return len(self.expires)

    def freeze(self) -> None:
        import numpy as np

        n = len(self)
        pairs = np.frombuffer(bytes(self.ids), dtype=">u8").reshape(n, 2)
        hi = pairs[:, 0].astype(np.uint64)
        lo = pairs[:, 1].astype(np.uint64)
        self.ids = bytearray()
        order = np.lexsort((lo, hi))
        self.hi = hi[order]
        self.lo = lo[order]
        self.order = order
        self.seen = np.zeros(n, dtype=bool)  # by position in A

    def lookup(self, kids: list[int]) -> list[int]:
        """Positions in A (file order) of the keys with these hashes, -1
        when A lacks them."""
        import numpy as np

        n = len(self)
        if not n or not kids:
            return [-1] * len(kids)
        his = [k >> 64 for k in kids]
        pos = np.searchsorted(self.hi, np.array(his, dtype=np.uint64)).tolist()
        hi = self.hi
        lo = self.lo
        out = []
        for k, h, p in zip(kids, his, pos, strict=True):
            low = k & 0xFFFFFFFFFFFFFFFF
            found = -1
            while p < n and int(hi[p]) == h:
                if int(lo[p]) == low:
                    found = int(self.order[p])
                    break
                p += 1
            out.append(found)
        return out

    def unmatched(self) -> set[int]:
        """Hashes of A's keys that B did not have."""
        left = (~self.seen[self.order]).nonzero()[0]
        return {(int(self.hi[p]) << 64) | int(self.lo[p]) for p in left.tolist()}


def cmd_diff(args: argparse.Namespace) -> int:
    """Keys only in A, only in B, and changed (type, value, TTL)."""
    flt = KeyFilter(args)
    side = _Side()
    add = side.add
    for ev in filtered_keys(read_events(args.a, args, label="A " + os.path.basename(args.a)), flt):
        add(ev)
    side.freeze()
    out = Output(args.output)
    counts = {"only_in_a": 0, "only_in_b": 0, "changed": 0, "identical": 0}
    as_json = args.json
    quiet = args.quiet
    first = [True]

    def emit(rec: dict[str, Any]) -> None:
        counts[rec["status"]] += 1
        if quiet:
            return
        if as_json:
            out.write((b"\n" if first[0] else b",\n") + _dumps(rec))
            first[0] = False
            return
        mark = {"only_in_a": "-", "only_in_b": "+", "changed": "~"}[rec["status"]]
        if rec["status"] == "changed":
            what = []
            for c in rec["changes"]:
                if c == "type":
                    what.append(f"type {rec['type_a']} -> {rec['type_b']}")
                elif c == "ttl":
                    what.append(f"ttl {_ttl_text(rec['expire_ms_a'])} -> {_ttl_text(rec['expire_ms_b'])}")
                else:
                    what.append("value differs")
            detail = "; ".join(what)
        else:
            detail = f"({rec['type_a'] if rec['status'] == 'only_in_a' else rec['type_b']})"
        out.text(f"{mark} db{rec['db']} {_show_key(jb_bytes(rec['key']))}  {detail}\n")

    ignore_ttl = args.ignore_ttl
    digests = side.digests
    seen = side.seen

    def compare(batch: list[tuple[Key, int, bytes]]) -> None:
        for (ev, _, digest), i in zip(batch, side.lookup([kid for _, kid, _ in batch]), strict=True):
            exp_b = ev.expire_ms
            if i < 0:
                emit({"status": "only_in_b", "db": ev.db, "key": jb(ev.key), "type_b": ev.type,
                      "expire_ms_b": exp_b})
                continue
            if seen[i]:
                continue  # a duplicate key in B: Redis would refuse the file; the first one counts
            seen[i] = True
            changes = []
            ta = side.types[i]
            if ta != ev.type:
                changes.append("type")
            elif digests[20 * i:20 * i + 20] != digest:
                changes.append("value")
            ea = side.expires[i]
            exp_a = None if ea == _NO_TTL else ea
            if not ignore_ttl and exp_a != exp_b:
                changes.append("ttl")
            if changes:
                emit({"status": "changed", "db": ev.db, "key": jb(ev.key), "changes": changes,
                      "type_a": ta, "type_b": ev.type, "expire_ms_a": exp_a, "expire_ms_b": exp_b})
            else:
                counts["identical"] += 1

    try:
        if as_json and not quiet:
            out.write(_dumps({"a": args.a, "b": args.b})[:-1] + b',"differences":[')
        batch: list[tuple[Key, int, bytes]] = []
        for ev in filtered_keys(read_events(args.b, args, label="B " + os.path.basename(args.b)), flt):
            # keep the key's name, not its value: the digest is taken now
            slim = Key(ev.db, ev.key, ev.type, None, ev.expire_ms)
            batch.append((slim, _key_id(ev.db, ev.key), value_digest(ev)))
            if len(batch) >= _DIFF_BATCH:
                compare(batch)
                batch = []
        compare(batch)
        missing = side.unmatched()
        if missing:
            # Name the keys only A has: read A again (nothing of them was kept).
            for ev in filtered_keys(read_events(args.a, args, label="A " + os.path.basename(args.a)), flt):
                kid = _key_id(ev.db, ev.key)
                if kid in missing:
                    missing.discard(kid)
                    emit({"status": "only_in_a", "db": ev.db, "key": jb(ev.key), "type_a": ev.type,
                          "expire_ms_a": ev.expire_ms})
                    if not missing:
                        break
        if as_json and not quiet:
            out.write(b"\n]," + _dumps({"summary": counts})[1:] + b"\n")
        elif not quiet:
            out.text(f"{counts['only_in_a']} only in A, {counts['only_in_b']} only in B, "
                     f"{counts['changed']} changed, {counts['identical']} identical\n")
    finally:
        out.close()
    differ = counts["only_in_a"] or counts["only_in_b"] or counts["changed"]
    return EXIT_DIFFERENT if differ else EXIT_OK


def jb_bytes(v: Any) -> bytes:
    """The bytes of a binary-safe JSON value (see jb)."""
    return v.encode() if isinstance(v, str) else base64.b64decode(v["base64"])


def _ttl_text(ms: int | None) -> str:
    return "none" if ms is None else f"{ms} ({_fmt_time(ms)})"


# -- to-resp ------------------------------------------------------------------------------------

_AGGREGATE_TYPES: Final = frozenset(("list", "set", "zset", "hash"))


def cmd_to_resp(args: argparse.Namespace) -> int:
    """RESP commands (or RESTORE payloads) that rebuild the dataset, for
    ``redis-cli --pipe``: function libraries first (FUNCTION LOAD), SELECT
    per database, then each key's writes and PEXPIREAT."""
    flt = KeyFilter(args)
    version = args.rdb_version
    replace = args.replace
    restore = args.restore
    out = Output(args.output)
    write = out.write
    warned: set[str] = set()
    empty = 0

    def payload(ev: Key) -> bytes:
        try:
            return dump_payload(ev.type, ev.value, version=version, field_expires=ev.field_expires)
        except RDBWriteError as e:
            raise UsageError(f"key {_show_key(ev.key)!r} cannot be written as an RDB {version} payload: {e} "
                             f"(try --rdb-version 12)") from None

    try:
        cur_db: int | None = None
        n = 0
        limit = flt.limit
        buf: list[bytes] = []
        size = 0
        for ev in read_events(args.file, args):
            t = type(ev)
            if t is Key:
                assert isinstance(ev, Key)
                if not flt(ev):
                    continue
                if ev.type in _AGGREGATE_TYPES and not ev.value:
                    empty += 1  # Redis skips empty keys on load, and RESTORE refuses them
                    continue
                if ev.db != cur_db:
                    buf.append(resp_command([b"SELECT", b"%d" % ev.db]))
                    cur_db = ev.db
                if ev.type == "module" and not restore and "module" not in warned:
                    warned.add("module")
                    sys.stderr.write(f"{PROG}: module values have no command form; writing RESTORE payloads "
                                     f"for them (the target needs the module loaded)\n")
                for cmd in key_commands(ev, replace=replace, restore=restore, payload=payload):
                    chunk = resp_command(cmd)
                    buf.append(chunk)
                    size += len(chunk)
                if size >= 1 << 16:
                    write(b"".join(buf))
                    buf.clear()
                    size = 0
                n += 1
                if limit is not None and n >= limit:
                    break
            elif t is FunctionLibrary and not args.no_functions:
                assert isinstance(ev, FunctionLibrary)
                cmd = [b"FUNCTION", b"LOAD"] + ([b"REPLACE"] if replace else []) + [ev.code]
                buf.append(resp_command(cmd))
        write(b"".join(buf))
    finally:
        out.close()
    if empty:
        sys.stderr.write(f"{PROG}: skipped {empty} empty key(s), as Redis does when it loads the file\n")
    return EXIT_OK


# -- verify -------------------------------------------------------------------------------------

#: An empty string or stream is a value (Redis keeps it), not an empty key.
_NEVER_EMPTY: Final = frozenset((0, 15, 19, 21))


def cmd_verify(args: argparse.Namespace) -> int:
    """Check the structure of every record and the CRC-64 trailer, as
    redis-check-rdb does; a failure names the offset and the key."""
    now = _now_ms(args)
    keys = expires = expired = empty = 0
    version = None
    end: End | None = None
    error: RDBError | None = None
    last_db = None
    trailing = 0
    verbose = not args.quiet and not args.json
    out = Output(args.output)

    def say(line: str) -> None:
        if verbose:
            out.text(line + "\n")

    try:
        say(f"[offset 0] Checking RDB file {args.file}")
        f: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
        try:
            total = _input_size(f)
            # check_only: every record checked, no value built (batches of
            # keys); the CRC-64 summed by a child meanwhile when it can.
            crc = FileCRC.open_for(f)
            reader = RDBReader(verify_checksum=crc is None, unknown_modules="raw", deep_sanitize=args.deep,
                               total_size=total, valkey=True, check_only=True, batch_keys=True)
            progress = Progress(total, os.path.basename(args.file),
                                enabled=None if not args.no_progress else False)
            try:
                while True:
                    chunk = f.read(1 << 20)
                    evs = reader.feed(chunk) if chunk else reader.close()
                    for ev in evs:
                        t = type(ev)
                        if t is KeyBatch:
                            keys += len(ev.keys)  # type: ignore[union-attr]
                            vals = ev.values  # type: ignore[union-attr]
                            if 0 in vals:  # element counts: 0 is an empty collection, not a string or stream
                                empty += sum(1 for v, rt in zip(vals, ev.types, strict=True)  # type: ignore[union-attr]
                                             if v == 0 and rt not in _NEVER_EMPTY)
                            for _, x, _, _ in ev.meta:  # type: ignore[union-attr]
                                if x is not None:
                                    expires += 1
                                    if x < now:
                                        expired += 1
                        elif t is Aux:
                            say(f"[offset {ev.offset}] AUX FIELD {_show_key(ev.key)} = "  # type: ignore[union-attr]
                                f"'{_show_key(ev.value)}'")  # type: ignore[union-attr]
                        elif t is SelectDB:
                            last_db = ev.db  # type: ignore[union-attr]
                            say(f"[offset {ev.offset}] Selecting DB ID {last_db}")
                        elif t is Header:
                            version = ev.version  # type: ignore[union-attr]
                            say(f"[offset 0] RDB version {version}"
                                + (" (Valkey)" if ev.magic == "VALKEY" else ""))  # type: ignore[union-attr]
                        elif t is FunctionLibrary:
                            say(f"[offset {ev.offset}] Function library {ev.name}")  # type: ignore[union-attr]
                        elif t is ModuleAux:
                            say(f"[offset {ev.offset}] Module aux data of {ev.value.name}")  # type: ignore[union-attr]
                        elif t is End:
                            end = check_end(crc, ev) if crc is not None else ev  # type: ignore[arg-type]
                    progress.update(reader.offset, keys)
                    if not chunk or reader.done:
                        break
                if reader.done:
                    rest = f.read(1 << 20)
                    trailing = len(reader.unused_data) + len(rest)
                    while rest:
                        rest = f.read(1 << 20)
                        trailing += len(rest)
            finally:
                progress.close()
                if crc is not None:
                    crc.close()
        except RDBError as e:
            error = e
        finally:
            if f is not sys.stdin.buffer:
                f.close()
        info = {"keys": keys, "expires": expires, "already_expired": expired, "empty_keys": empty}
        if error is not None:
            if args.json:
                out.write(_dumps({"ok": False, "file": args.file, "rdb_version": version,
                                  "error": {"message": error.message, "type": type(error).__name__,
                                            "offset": error.offset,
                                            "key": None if error.key is None else jb(error.key)},
                                  **info}) + b"\n")
            elif not args.quiet:
                out.text("--- RDB ERROR DETECTED ---\n")
                out.text(f"[offset {error.offset}] {error.message}\n")
                if error.key is not None:
                    out.text(f"[additional info] While reading key '{_show_key(error.key)}'\n")
                if last_db is not None:
                    out.text(f"[additional info] In DB {last_db}\n")
                out.text(f"[info] {keys} keys read\n[info] {expires} expires\n[info] {expired} already expired\n")
            return EXIT_BAD_RDB
        assert end is not None
        status = _checksum_status(end)
        if args.json:
            out.write(_dumps({"ok": True, "file": args.file, "rdb_version": version,
                              "checksum": _checksum_json(end), "trailing_bytes": trailing, **info}) + b"\n")
        elif verbose:
            say(f"[offset {end.offset}] Checksum {status}")
            if trailing:
                say(f"[offset {reader.end_offset}] {trailing} bytes after the end of the RDB data "
                    f"(an AOF tail?)")
            say("[info] \\o/ RDB looks OK! \\o/")
            say(f"[info] {keys} keys read")
            say(f"[info] {expires} expires")
            say(f"[info] {expired} already expired")
            if empty:
                say(f"[info] {empty} empty keys (Redis skips them on load)")
        return EXIT_OK
    finally:
        out.close()


# -- report ---------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    """A self-contained HTML page with charts (see html_report)."""
    from .html_report import collect, render

    flt = KeyFilter(args)
    cfg = _load_config(args)
    try:
        data = collect(read_events(args.file, args), args.file, flt, cfg, now_ms=_now_ms(args),
                       sep=_arg_bytes(args.sep), depth=args.depth, top=args.top, group_ids=not args.no_group_ids)
    except ValueError as e:
        raise UsageError(str(e)) from None
    page = render(data).encode()
    out = Output(args.html)
    try:
        out.write(page)
    finally:
        out.close()
    if args.html not in (None, "-") and not args.quiet:
        sys.stderr.write(f"{PROG}: wrote {args.html} ({human_bytes(len(page))})\n")
    return EXIT_OK


# -- command line -----------------------------------------------------------------------------

EXIT_CODES_HELP: Final = """\
exit codes:
  0    success (diff: no differences)
  1    diff: the files differ
  2    bad command line
  3    a file could not be read or written
  4    the input is not a valid RDB file (corrupt, truncated, bad checksum,
       unsupported version); verify fails with this code
  130  interrupted
"""

FILTERS_HELP: Final = """\
key filters: every filter given must hold; a repeated --db, --type, --key or
--key-regex accepts any of its values, each --not-key excludes its matches.
GLOB is Redis's KEYS/SCAN pattern: * ? [abc] [^abc] [a-z] and \\x for a literal x.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=100)


def _non_negative(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {s}")
    return v


def _positive(s: str) -> int:
    v = _non_negative(s)
    if v == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return v


def _add_input(p: argparse.ArgumentParser, name: str = "file") -> None:
    p.add_argument(name, metavar=name.upper(), help="the RDB file ('-' reads standard input)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="never draw the progress bar on stderr")


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="OUT", help="write here instead of standard output")


def _add_filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("key filters")
    g.add_argument("--db", type=_non_negative, action="append", metavar="N", help="only database N")
    g.add_argument("--type", action="append", metavar="TYPE",
                   help="only keys of this type: string list set zset hash stream module")
    g.add_argument("--key", action="append", metavar="GLOB", help="only keys matching this Redis glob")
    g.add_argument("--key-regex", action="append", metavar="RE", help="only keys where this regex matches")
    g.add_argument("--not-key", action="append", metavar="GLOB", help="skip keys matching this glob")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--expiring", action="store_true", help="only keys with a TTL")
    x.add_argument("--persistent", action="store_true", help="only keys without a TTL")
    g.add_argument("--limit", type=_positive, metavar="N", help="stop after N matching keys")


def _add_report_options(p: argparse.ArgumentParser) -> None:
    """The options every per-key report shares: memory-model config,
    output, the common flags and the key filters, in that order."""
    _add_config(p)
    _add_output(p)
    _add_common(p)
    _add_filters(p)


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="append", metavar="DIRECTIVE=VALUE",
                   help="an encoding threshold of the Redis that would load the file, e.g. "
                        "hash-max-listpack-entries=128 (repeatable; known: "
                        + ", ".join(d.replace("_", "-") for d in CONFIG_DIRECTIVES) + ")")


def _add_now(p: argparse.ArgumentParser) -> None:
    p.add_argument("--now", type=int, metavar="MS", help="the time TTLs are measured from, in unix ms "
                   "(default: now)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of rdb-inspect (one subparser per subcommand)."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter,
        description="Inspect Redis RDB dump files (RDB versions 1-12, Redis 2.x to 7.4 and Ambry; "
                    "Valkey 9's VALKEY080 files too) "
                    "without a server.\nEvery subcommand streams the file: memory stays near the size "
                    "of its largest value.\nA progress bar is drawn on stderr when it is a terminal.",
        epilog="Run '%(prog)s COMMAND --help' for the options of each command.\n\n" + EXIT_CODES_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("summary", formatter_class=_Formatter, help="version, aux fields, counts and sizes",
                       description="Version, aux fields, keys by database, type and stored encoding, "
                                   "serialized sizes, TTLs and their spread, function libraries, module "
                                   "aux data, checksum status and the biggest key records.",
                       epilog=EXIT_CODES_HELP)
    _add_input(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--memory", action="store_true", help="also estimate Redis 7.0 memory per type (slower)")
    p.add_argument("--top", type=_non_negative, default=5, metavar="N",
                   help="list the N biggest key records (default 5)")
    _add_now(p)
    _add_report_options(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("dump", formatter_class=_Formatter, help="the keys as binary-safe JSON or NDJSON",
                       description="Every key with its value, type, OBJECT ENCODING after a load into Redis "
                                   "7.0, RDB type id, expiry (unix ms) and LRU/LFU data, as one JSON "
                                   "document (streamed) or NDJSON, a line per key.\n\nByte strings are JSON "
                                   "strings when valid UTF-8, else {\"base64\": \"...\"}. Sets and hashes "
                                   "are sorted by raw bytes and zsets listed in ZRANGE order with the "
                                   "score as its shortest round-trip text, unless --file-order.",
                       epilog=FILTERS_HELP + "\nexamples:\n  rdb-inspect dump dump.rdb --ndjson --key 'user:*' "
                              "| jq .value\n  rdb-inspect dump dump.rdb --type stream -o streams.json\n\n"
                              + EXIT_CODES_HELP)
    _add_input(p)
    p.add_argument("--ndjson", action="store_true", help="one JSON object per line per key")
    p.add_argument("--meta", action="store_true",
                   help="with --ndjson: also a line per header, aux field, function library, module aux, "
                        "select/resize db and end record (with a \"record\" member)")
    p.add_argument("--file-order", action="store_true",
                   help="keep the elements in file order instead of sorting sets, hashes and zsets")
    _add_report_options(p)
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("memory", formatter_class=_Formatter, help="estimated Redis 7.0 memory per key",
                       description="For each key the memory Redis 7.0 (64 bit, jemalloc) would use after "
                                   "loading the file -- what MEMORY USAGE key SAMPLES 0 answers: the key's "
                                   "dictEntry and name, the robj and the value's allocations (sds headers, "
                                   "listpacks, intsets, dicts, quicklist nodes, skiplist nodes, stream radix "
                                   "trees and consumer groups), each rounded to its jemalloc size class -- "
                                   "and the encoding the load gives, the element count and the largest "
                                   "element.\n\nCSV columns: " + ",".join(MEMORY_FIELDS) + " (key_base64 "
                                   "instead of key when the key is not UTF-8).",
                       epilog=FILTERS_HELP + "\n" + EXIT_CODES_HELP)
    _add_input(p)
    p.add_argument("--format", choices=("csv", "json", "ndjson"), default="csv", help="output format (csv)")
    p.add_argument("--min-memory", type=_non_negative, default=0, metavar="BYTES",
                   help="only keys estimated at BYTES or more")
    _add_report_options(p)
    p.set_defaults(func=cmd_memory)

    p = sub.add_parser("bigkeys", formatter_class=_Formatter, help="the biggest keys by memory and by length",
                       description="The N biggest keys by estimated memory and by element count (string "
                                   "length for strings, entries for streams), the biggest key of each type "
                                   "and per-type totals.",
                       epilog=FILTERS_HELP + "\n" + EXIT_CODES_HELP)
    _add_input(p)
    p.add_argument("--top", type=_positive, default=10, metavar="N", help="how many keys to list (10)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_report_options(p)
    p.set_defaults(func=cmd_bigkeys)

    p = sub.add_parser("prefixes", formatter_class=_Formatter, help="memory by key prefix, as a tree",
                       description="Estimated memory and key counts by key prefix: a key a:b:c counts under "
                                   "'a:' and, at depth 2, 'a:b:'. Segments that look like identifiers "
                                   "(numbers, hex strings of 8+ digits, UUIDs) count as '*', so user:1:name "
                                   "and user:2:name both fall under 'user:*:'. To bound memory, a prefix with "
                                   "more than 2 x --max-children children keeps the biggest --max-children "
                                   "and folds the others into '(other)'.",
                       epilog=FILTERS_HELP + "\n" + EXIT_CODES_HELP)
    _add_input(p)
    p.add_argument("--sep", default=":", help="the separator between key segments (':')")
    p.add_argument("--depth", type=_positive, default=2, metavar="N", help="levels of prefixes (2)")
    p.add_argument("--min-share", type=float, default=0.5, metavar="PCT",
                   help="hide prefixes holding less than PCT%% of the memory (0.5)")
    p.add_argument("--max-children", type=_positive, default=200, metavar="N",
                   help="children kept per prefix before folding (200)")
    p.add_argument("--no-group-ids", action="store_true",
                   help="keep numeric, hex and UUID segments apart instead of counting them as '*'")
    p.add_argument("--json", action="store_true", help="the tree as nested JSON")
    _add_report_options(p)
    p.set_defaults(func=cmd_prefixes)

    p = sub.add_parser("diff", formatter_class=_Formatter, help="keys only in A, only in B, or changed",
                       description="Compares two RDB files key by key: keys only in A ('-'), only in B "
                                   "('+'), and keys whose type, value or TTL changed ('~'). Values are "
                                   "compared by a SHA-1 of their canonical form (sets and hashes in sorted "
                                   "order), so encodings and element order do not matter, and only about "
                                   "70 bytes per key of A are kept in memory (no names, no values); the "
                                   "keys only A has are named by reading A a second time.",
                       epilog=FILTERS_HELP + "\n" + EXIT_CODES_HELP)
    p.add_argument("a", metavar="A", help="the first RDB file")
    p.add_argument("b", metavar="B", help="the second RDB file")
    p.add_argument("--json", action="store_true",
                   help='a JSON document: {"a", "b", "differences": [...], "summary": {...}}')
    p.add_argument("--ignore-ttl", action="store_true", help="do not compare expiry times")
    p.add_argument("-q", "--quiet", action="store_true", help="no output, only the exit code")
    _add_output(p)
    _add_common(p)
    _add_filters(p)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("to-resp", formatter_class=_Formatter, help="RESP commands that rebuild the dataset",
                       description="Writes the commands that rebuild the file's dataset in any "
                                   "Redis-compatible server, in RESP, ready for redis-cli --pipe: FUNCTION "
                                   "LOAD per function library, SELECT per database, then per key SET / "
                                   "RPUSH / SADD / HSET / ZADD (batched), streams by XADD, XSETID, XGROUP "
                                   "CREATE ... ENTRIESREAD, XCLAIM (pending entries) and XGROUP "
                                   "CREATECONSUMER, hash field TTLs by HPEXPIREAT, and the expiry by "
                                   "PEXPIREAT. With --restore each key is one RESTORE ... ABSTTL of a DUMP "
                                   "payload instead (module values always are).",
                       epilog=FILTERS_HELP + "\nexample:\n  rdb-inspect to-resp dump.rdb | redis-cli -p 6380 "
                              "--pipe\n\n" + EXIT_CODES_HELP)
    _add_input(p)
    p.add_argument("--restore", action="store_true", help="RESTORE payloads instead of commands")
    p.add_argument("--replace", action="store_true",
                   help="overwrite existing keys and libraries (DEL first, RESTORE/FUNCTION LOAD REPLACE)")
    p.add_argument("--rdb-version", type=int, default=10, choices=range(9, 13), metavar="N",
                   help="RDB version of RESTORE payloads (10 = Redis 7.0, the default; 9 for 5.x/6.x, "
                        "11 for 7.2, 12 for 7.4)")
    p.add_argument("--no-functions", action="store_true", help="leave out the function libraries")
    _add_output(p)
    _add_common(p)
    _add_filters(p)
    p.set_defaults(func=cmd_to_resp)

    p = sub.add_parser("verify", formatter_class=_Formatter, help="check structure and checksum",
                       description="Reads every record, checks each value's internal structure and the "
                                   "CRC-64 trailer, like redis-check-rdb. On failure prints the offset and "
                                   "the key being read and exits with 4.",
                       epilog=EXIT_CODES_HELP)
    _add_input(p)
    p.add_argument("--deep", action="store_true",
                   help="also the checks of sanitize-dump-payload yes (listpack back-lengths, duplicate "
                        "elements, intset order, stream consistency)")
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.add_argument("-q", "--quiet", action="store_true", help="no output, only the exit code")
    _add_now(p)
    _add_output(p)
    _add_common(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("report", formatter_class=_Formatter, help="a self-contained HTML report with charts",
                       description="Writes one HTML page with inline CSS, JavaScript and SVG (no network "
                                   "access): a treemap of estimated memory by key prefix, memory and keys by "
                                   "type and encoding, a TTL histogram, the biggest keys and the file's "
                                   "metadata.",
                       epilog=FILTERS_HELP + "\n" + EXIT_CODES_HELP)
    _add_input(p)
    p.add_argument("--html", required=True, metavar="OUT", help="the HTML file to write ('-' = stdout)")
    p.add_argument("--sep", default=":", help="key segment separator for the prefix treemap (':')")
    p.add_argument("--depth", type=_positive, default=2, metavar="N", help="prefix levels in the treemap (2)")
    p.add_argument("--top", type=_positive, default=30, metavar="N", help="biggest keys listed (30)")
    p.add_argument("--no-group-ids", action="store_true",
                   help="keep numeric, hex and UUID key segments apart in the treemap instead of '*'")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print where the report went")
    _add_now(p)
    _add_config(p)
    _add_common(p)
    _add_filters(p)
    p.set_defaults(func=cmd_report)
    return parser


def _error(msg: str) -> None:
    sys.stderr.write(f"{PROG}: {msg}\n")


def _describe_rdb_error(e: RDBError, args: argparse.Namespace) -> str:
    parts = [e.message]
    if e.offset is not None:
        parts.append(f"at offset {e.offset}")
    if e.key is not None:
        parts.append(f"while reading key '{_show_key(e.key)}'")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """The ``rdb-inspect`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    # A dump's values are millions of short-lived lists and tuples without
    # reference cycles: reference counting frees them, and the cyclic
    # collector would only rescan them (15-20% of the run).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return int(args.func(args))
    except UsageError as e:
        _error(str(e))
        return EXIT_USAGE
    except RDBError as e:
        _error(_describe_rdb_error(e, args))
        return EXIT_BAD_RDB
    except BrokenPipeError:
        # The reader of our output went away (| head): not an error of ours.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_OK
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        _error(f"{where}{e.strerror or e}")
        return EXIT_IO
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    finally:
        if gc_was_enabled:
            gc.enable()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
