"""COMMAND and MEMORY, the memory model, and maxmemory eviction.

COMMAND (server.c ``command*Command``) answers from the registry: the table
captured from Redis 7.0.15 plus whatever is implemented.  COMMAND GETKEYS
follows db.c ``getKeysFromCommandWithSpecs``: key specs first, and the
command's own key-finding procedure when the specs are incomplete, have
variable flags, or do not match the arguments.

The memory model (MEMORY USAGE / STATS / DOCTOR, INFO memory, maxmemory)
reports what Redis 7.0 (jemalloc, 64 bit) would account for the same data,
not the Python heap (INFO's ``used_memory_rss`` is the process's real RSS):

* a key costs a ``dictEntry`` (24 bytes) plus its sds allocation (header
  1/3/5/9/17 bytes by length class, the bytes, a NUL), rounded up to the
  jemalloc size class; a key with a TTL adds a ``dictEntry`` in ``expires``;
* a string value costs a ``robj`` (16) when integer-encoded, one allocation
  of robj + sdshdr8 + bytes + NUL when embstr (<= 44 bytes), or robj + its
  own sds allocation when raw; a string modified in place (``bytearray``) is
  charged sds's greedy preallocation (twice its length below 1 MB);
* values of other types report ``redis_memory_usage(samples)`` themselves;
* each database's hash tables cost 8 bytes per bucket (buckets: the next
  power of two >= the number of keys), as ``getMemoryOverheadData`` counts;
* ``used_memory`` = Redis 7.0.15's measured start-up allocation
  (:data:`STARTUP_ALLOCATED`) + the keys (entries, names, values, expire
  entries) + the hash tables' bucket arrays + clients; MEMORY STATS splits it
  into overhead and dataset with Redis's formula.

Verified against the real server: ``SET foo bar`` -> 64, an integer -> 48,
44/45-byte values -> 96/112, 300 -> 368, 5000 -> 5168, 70000 -> 81968, a
40-byte key with a 1-byte value -> 104, ``APPEND`` "barx"-style -> 64.

``estimate_used_memory`` must be cheap enough for every write when
``maxmemory`` is set, so the dataset total is measured by a full scan that is
rate-limited to at most ~10% of the time (a scan runs again only when the
data changed and at least ten times the last scan's duration has passed);
between scans the total is extrapolated from the key count with the last
measured average, and evictions subtract each evicted key's exact cost.
"""

from __future__ import annotations

import random
import time
import weakref
from bisect import insort
from typing import TYPE_CHECKING, Any

from .. import keyspace, registry
from ..args import ERR_SYNTAX, get_ll
from ..client import Client
from ..keyspace import STR_UNENCODED
from ..protocol import string2ll
from ..registry import command
from ..reply import OK, Err, Map, SetReply, Status, Verbatim
from .help import help_reply

if TYPE_CHECKING:
    from ..core import Server
    from ..keyspace import Db

# -- COMMAND ------------------------------------------------------------------------

_ACL_CATEGORIES = {
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
    "dangerous", "connection", "transaction", "scripting",
}

# addReplyFlagsForKeyArgs order.
_KEY_FLAG_ORDER = ("RO", "RW", "OW", "RM", "access", "update", "insert", "delete",
                   "not_key", "incomplete", "variable_flags")


def _top_level() -> list[registry.Command]:
    return list(registry.COMMANDS.values())


@command("command")
def command_(c: Client, argv: list[bytes]) -> Any:
    """COMMAND: the info entry of every command."""
    return [cmd.info_reply() for cmd in _top_level()]


@command("command|count")
def command_count(c: Client, argv: list[bytes]) -> Any:
    return len(registry.COMMANDS)


@command("command|info")
def command_info(c: Client, argv: list[bytes]) -> Any:
    """COMMAND INFO [name ...]: null for an unknown name (``container|sub`` works)."""
    if len(argv) == 2:
        return [cmd.info_reply() for cmd in _top_level()]
    out: list[Any] = []
    for name in argv[2:]:
        cmd = registry.lookup_name(name)
        out.append(cmd.info_reply() if cmd is not None else None)
    return out


@command("command|docs")
def command_docs(c: Client, argv: list[bytes]) -> Any:
    """COMMAND DOCS [name ...]: a map; unknown names are skipped."""
    if len(argv) == 2:
        return Map([(cmd.bname, cmd.docs_reply()) for cmd in _top_level()])
    pairs = []
    for name in argv[2:]:
        cmd = registry.lookup_name(name)
        if cmd is not None:
            pairs.append((cmd.bname, cmd.docs_reply()))
    return Map(pairs)


@command("command|list")
def command_list(c: Client, argv: list[bytes]) -> Any:
    """COMMAND LIST [FILTERBY MODULE m | ACLCAT cat | PATTERN p]; subcommands included."""
    filt: tuple[bytes, bytes] | None = None
    i = 2
    while i < len(argv):
        if argv[i].lower() == b"filterby" and len(argv) - 1 - i == 2:
            kind = argv[i + 1].lower()
            if kind not in (b"module", b"aclcat", b"pattern"):
                raise ERR_SYNTAX
            filt = (kind, argv[i + 2])
            i += 3
        else:
            raise ERR_SYNTAX
    names = [cmd.bname for cmd in registry.all_commands()]
    if filt is None:
        return names
    kind, arg = filt
    if kind == b"module":
        return []  # no module commands exist
    if kind == b"aclcat":
        cat = arg.decode("latin-1").lower()
        if cat not in _ACL_CATEGORIES:
            return []
        return [cmd.bname for cmd in registry.all_commands() if cat in cmd.acl_categories]
    from ..util import stringmatchlen

    return [n for n in names if stringmatchlen(arg, n, nocase=True)]


@command("command|help")
def command_help(c: Client, argv: list[bytes]) -> Any:
    return help_reply("COMMAND", [
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
    ])


# Key positions with flags: list of (argv index, flags tuple).
KeyRefs = list[tuple[int, tuple[str, ...]]]


def _atoi(b: bytes) -> int:
    """C ``atoi``: optional spaces and sign, then digits up to the first non-digit."""
    s = b.lstrip(b" \t\n\r\v\f")
    neg = False
    if s[:1] in (b"-", b"+"):
        neg = s[:1] == b"-"
        s = s[1:]
    n = 0
    for ch in s:
        if 48 <= ch <= 57:
            n = n * 10 + ch - 48
        else:
            break
    n = -n if neg else n
    return ((n + 2**31) % 2**32) - 2**31  # int wrap-around


def _generic_getkeys(store: int, count_ofs: int, first: int, step: int, argv: list[bytes]) -> KeyRefs:
    """genericGetKeys: ``[destkey] numkeys key ...``; nothing when numkeys is bad."""
    num = _atoi(argv[count_ofs])
    if num < 1 or num > (len(argv) - first) // step:
        return []
    keys: KeyRefs = [(first + i * step, ()) for i in range(num)]
    if store:
        keys.append((store, ()))
    return keys


def _sort_getkeys(argv: list[bytes]) -> KeyRefs:
    keys: KeyRefs = [(1, ("RO", "access"))]
    store: tuple[int, tuple[str, ...]] | None = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    argc = len(argv)
    while i < argc:
        a = argv[i].lower()
        if a in skip:
            i += skip[a]
        elif a == b"store" and i + 1 < argc:
            store = (i + 1, ("OW", "update"))
        i += 1
    if store is not None:
        keys.append(store)
    return keys


def _migrate_getkeys(argv: list[bytes]) -> KeyRefs:
    first, num = 3, 1
    argc = len(argv)
    if argc > 6:
        for i in range(6, argc):
            if argv[i].lower() == b"keys" and len(argv[3]) == 0:
                first = i + 1
                num = argc - first
                break
    return [(first + i, ("RW", "access", "delete")) for i in range(num)]


def _georadius_getkeys(argv: list[bytes]) -> KeyRefs:
    stored = -1
    i = 5
    while i < len(argv):
        if argv[i].lower() in (b"store", b"storedist") and i + 1 < len(argv):
            stored = i + 1
            i += 1
        i += 1
    keys: KeyRefs = [(1, ())]
    if stored != -1:
        keys.append((stored, ()))
    return keys


def _xread_getkeys(argv: list[bytes]) -> KeyRefs:
    streams_pos = -1
    i = 1
    argc = len(argv)
    while i < argc:
        a = argv[i].lower()
        if a in (b"block", b"count"):
            i += 1
        elif a == b"group":
            i += 2
        elif a == b"noack":
            pass
        elif a == b"streams":
            streams_pos = i
            break
        else:
            break
        i += 1
    num = argc - streams_pos - 1 if streams_pos != -1 else 0
    if streams_pos == -1 or num == 0 or num % 2:
        return []
    num //= 2
    return [(i, ()) for i in range(streams_pos + 1, argc - num)]


def _set_getkeys(argv: list[bytes]) -> KeyRefs:
    for a in argv[3:]:
        if a.lower() == b"get":
            return [(1, ("RW", "access", "update"))]
    return [(1, ("OW", "update"))]


def _bitfield_getkeys(argv: list[bytes]) -> KeyRefs:
    argc = len(argv)
    for i in range(2, argc):
        if argv[i].lower() == b"get" and argc - i - 1 >= 2:
            return [(1, ("RO", "access"))]
    return [(1, ("RW", "access", "update"))]


def _gk(store: int, cnt: int, first: int) -> Any:
    return lambda argv: _generic_getkeys(store, cnt, first, 1, argv)


# The commands that have a getkeys_proc in Redis 7.0's table.
GETKEYS_PROCS: dict[str, Any] = {
    **{n: _gk(0, 2, 3) for n in ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro",
                                  "blmpop", "bzmpop")},
    **{n: _gk(1, 2, 3) for n in ("zunionstore", "zinterstore", "zdiffstore")},
    **{n: _gk(0, 1, 2) for n in ("zunion", "zinter", "zdiff", "sintercard", "zintercard", "lmpop", "zmpop")},
    "sort": _sort_getkeys,
    "sort_ro": lambda argv: [(1, ("RO", "access"))],
    "migrate": _migrate_getkeys,
    "georadius": _georadius_getkeys,
    "georadiusbymember": _georadius_getkeys,
    "xread": _xread_getkeys,
    "xreadgroup": _xread_getkeys,
    "set": _set_getkeys,
    "bitfield": _bitfield_getkeys,
}


def _keys_from_specs(cmd: registry.Command, argv: list[bytes]) -> KeyRefs | None:
    """getKeysUsingKeySpecs; None when a spec is invalid or incomplete."""
    argc = len(argv)
    out: KeyRefs = []
    for spec in cmd.key_specs:
        flags = tuple(spec.get("flags", ()))
        if "not_key" in flags:
            continue
        bs = spec.get("begin_search", {})
        fk = spec.get("find_keys", {})
        btype = bs.get("type")
        if btype == "index":
            first = bs["spec"]["index"]
        elif btype == "keyword":
            kw = bs["spec"]["keyword"].encode().lower()
            startfrom = bs["spec"]["startfrom"]
            start = startfrom if startfrom > 0 else argc + startfrom
            end = argc - 1 if startfrom > 0 else 1
            first = 0
            i = start
            while i != end:
                if i >= argc or i < 1:
                    break
                if argv[i].lower() == kw:
                    first = i + 1
                    break
                i = i + 1 if start <= end else i - 1
            if not first:
                continue
        else:
            return None
        ftype = fk.get("type")
        if ftype == "range":
            rs = fk["spec"]
            step = rs["keystep"]
            if rs["lastkey"] >= 0:
                last = first + rs["lastkey"]
            elif not rs["limit"]:
                last = argc + rs["lastkey"]
            else:
                last = first + ((argc - first) // rs["limit"] + rs["lastkey"])
        elif ftype == "keynum":
            ks = fk["spec"]
            step = ks["keystep"]
            if ks["keynumidx"] >= argc or first + ks["keynumidx"] >= argc:
                return None
            numkeys = string2ll(argv[first + ks["keynumidx"]])
            if numkeys is None or numkeys < 0:
                return None
            first += ks["firstkey"]
            last = first + numkeys - 1
        else:
            return None
        if last >= argc or last < first or first >= argc:
            return None
        i = first
        while i <= last:
            out.append((i, flags))
            i += step
        if "incomplete" in flags:
            return None
    return out


def _has_keyspec(cmd: registry.Command) -> bool:
    return any("not_key" not in ks.get("flags", ()) for ks in cmd.key_specs)


def command_has_keys(cmd: registry.Command) -> bool:
    """doesCommandHaveKeys."""
    return cmd.fullname in GETKEYS_PROCS or _has_keyspec(cmd)


def get_keys_with_flags(cmd: registry.Command, argv: list[bytes]) -> KeyRefs:
    """getKeysFromCommandWithSpecs: specs when reliable, else the command's procedure."""
    varflags = any("variable_flags" in ks.get("flags", ()) for ks in cmd.key_specs)
    if _has_keyspec(cmd) and not varflags:
        res = _keys_from_specs(cmd, argv)
        if res is not None:
            return res
    proc = GETKEYS_PROCS.get(cmd.fullname)
    if proc is not None:
        return proc(argv)  # type: ignore[no-any-return]
    return []


def _lookup_command(args: list[bytes]) -> registry.Command | None:
    """lookupCommand: a container with a second argument resolves the subcommand."""
    base = registry.COMMANDS.get(args[0].lower())
    if base is None or len(args) == 1 or not base.subcommands:
        return base
    return base.subcommands.get(args[1].lower())


def _getkeys(argv: list[bytes], with_flags: bool) -> Any:
    args = argv[2:]
    cmd = _lookup_command(args)
    if cmd is None:
        raise Err("ERR Invalid command specified")
    if not command_has_keys(cmd):
        raise Err("ERR The command has no key arguments")
    n = len(args)
    if (cmd.arity > 0 and cmd.arity != n) or n < -cmd.arity:
        raise Err("ERR Invalid number of arguments specified for command")
    keys = get_keys_with_flags(cmd, args)
    if not keys:
        if "no_mandatory_keys" in cmd.flags:
            return []
        raise Err("ERR Invalid arguments specified for command")
    if not with_flags:
        return [args[pos] for pos, _ in keys]
    return [
        [args[pos], SetReply(Status(f.encode()) for f in _KEY_FLAG_ORDER if f in flags)]
        for pos, flags in keys
    ]


@command("command|getkeys")
def command_getkeys(c: Client, argv: list[bytes]) -> Any:
    return _getkeys(argv, False)


@command("command|getkeysandflags")
def command_getkeysandflags(c: Client, argv: list[bytes]) -> Any:
    return _getkeys(argv, True)


# -- the memory model -------------------------------------------------------------

ROBJ = 16
DICT_ENTRY = 24
POINTER = 8
EMBSTR_LIMIT = 44
SDS_MAX_PREALLOC = 1024 * 1024
OBJ_COMPUTE_SIZE_DEF_SAMPLES = 5
# used_memory_startup of redis-server 7.0.15 (Debian, 16 dbs), measured.
STARTUP_ALLOCATED = 876304


def je_size(n: int) -> int:
    """jemalloc 5 size class for a request of ``n`` bytes (16-byte quantum)."""
    if n <= 8:
        return 8
    if n <= 64:
        return (n + 15) & ~15
    base = 1 << ((n - 1).bit_length() - 1)
    delta = base >> 2
    return (n + delta - 1) // delta * delta


def _sds_hdr(length: int, allow5: bool = True) -> int:
    """Header size of the sds type Redis picks for ``length`` (sdsReqType)."""
    if length < 32 and allow5 and length > 0:
        return 1
    if length < 256:
        return 3
    if length < 65536:
        return 5
    if length < 2**32:
        return 9
    return 17


def sds_alloc(length: int, allow5: bool = True) -> int:
    """sdsZmallocSize of a fresh sds holding ``length`` bytes."""
    return je_size(_sds_hdr(length, allow5) + length + 1)


def _int_encodable(v: bytes) -> bool:
    return len(v) <= 20 and string2ll(v) is not None


def string_object_size(v: bytes | bytearray | int, unencoded: bool = False) -> int:
    """objectComputeSize for a string value (robj included); ``unencoded``:
    an integer-looking value kept as embstr (``keyspace.STR_UNENCODED``)."""
    if type(v) is int:
        return ROBJ  # OBJ_ENCODING_INT: the value lives in the robj's pointer
    n = len(v)
    if type(v) is bytearray:
        alloc = n * 2 if n < SDS_MAX_PREALLOC else n + SDS_MAX_PREALLOC
        return ROBJ + je_size(_sds_hdr(alloc, False) + alloc + 1)
    if n <= 20 and not unencoded and _int_encodable(v):
        return ROBJ
    if n <= EMBSTR_LIMIT:
        return je_size(ROBJ + 3 + n + 1)
    return ROBJ + sds_alloc(n, False)


def object_size(v: Any, samples: int = OBJ_COMPUTE_SIZE_DEF_SAMPLES, unencoded: bool = False) -> int:
    """objectComputeSize: strings here, other types ask the value."""
    t = type(v)
    if t is bytes or t is bytearray or t is int:
        return string_object_size(v, unencoded)
    fn = getattr(v, "redis_memory_usage", None)
    if fn is not None:
        return int(fn(samples))
    try:
        n = len(v)
    except TypeError:
        n = 0
    return ROBJ + 64 * n  # a rough charge for types that do not report a size


def key_usage(key: bytes, value: Any, samples: int = OBJ_COMPUTE_SIZE_DEF_SAMPLES,
              unencoded: bool = False) -> int:
    """MEMORY USAGE: value + key sds + its dictEntry."""
    return object_size(value, samples, unencoded) + sds_alloc(len(key)) + DICT_ENTRY


def _key_cost(db: Db, key: bytes, value: Any) -> int:
    cost = key_usage(key, value, unencoded=db.strobj.get(key) == STR_UNENCODED)
    if key in db.expires:
        cost += DICT_ENTRY
    return cost


def _slots(n: int) -> int:
    if n == 0:
        return 0
    return max(4, 1 << (n - 1).bit_length())


def db_overhead(db: Db) -> tuple[int, int]:
    """(overhead.hashtable.main, overhead.hashtable.expires) as getMemoryOverheadData."""
    n = len(db.data)
    e = len(db.expires)
    return (n * DICT_ENTRY + _slots(n) * POINTER + n * ROBJ, e * DICT_ENTRY + _slots(e) * POINTER)


class _MemMeter:
    """The dataset size of one server, measured by rate-limited full scans."""

    __slots__ = ("total", "keys", "when", "cost", "dirty", "peak")

    def __init__(self) -> None:
        self.total = 0
        self.keys = 0
        self.when = 0.0
        self.cost = 0.0
        self.dirty = -1
        self.peak = 0

    def scan(self, srv: Server) -> None:
        t0 = time.perf_counter()
        total = 0
        keys = 0
        for db in srv.dbs:
            data = db.data
            if not data:
                continue
            keys += len(data)
            exp = db.expires
            unenc = db.strobj
            for k, v in data.items():
                t = type(v)
                if t is bytes:
                    n = len(v)
                    if n <= 20 and _int_encodable(v) and not (unenc and unenc.get(k) == STR_UNENCODED):
                        vs = ROBJ
                    elif n <= EMBSTR_LIMIT:
                        vs = je_size(ROBJ + 4 + n)
                    else:
                        vs = ROBJ + sds_alloc(n, False)
                else:
                    vs = object_size(v)
                total += vs + sds_alloc(len(k)) + DICT_ENTRY
                if exp and k in exp:
                    total += DICT_ENTRY
        self.total = total
        self.keys = keys
        now = time.perf_counter()
        self.when = now
        self.cost = now - t0
        self.dirty = srv.dirty

    def dataset(self, srv: Server, nkeys: int = -1) -> int:
        """Bytes of keys and values (rescanned when stale and affordable);
        ``nkeys`` is the current number of keys when the caller counted them."""
        if srv.dirty != self.dirty and time.perf_counter() - self.when >= 10 * self.cost:
            self.scan(srv)
        if nkeys < 0:
            nkeys = 0
            for db in srv.dbs:
                nkeys += len(db.data)
        if nkeys == self.keys:
            return self.total
        if self.keys:
            return max(0, self.total + (nkeys - self.keys) * self.total // self.keys)
        return nkeys * 64

    def forget(self, cost: int) -> None:
        """An evicted key's exact cost leaves the measured total."""
        self.total = max(0, self.total - cost)
        self.keys = max(0, self.keys - 1)


_METERS: weakref.WeakKeyDictionary[Any, _MemMeter] = weakref.WeakKeyDictionary()


def _meter(srv: Server) -> _MemMeter:
    m = _METERS.get(srv)
    if m is None:
        m = _METERS[srv] = _MemMeter()
    return m


def client_memory(c: Client) -> int:
    """A client's memory as CLIENT LIST's tot-mem counts it (an idle
    client holds no argv)."""
    qbuf = c.parser.pending()
    t = c.transport
    omem = t.get_write_buffer_size() if t is not None and not c.closed else 0
    return 1024 + qbuf + omem


def clients_memory(srv: Server) -> tuple[int, int]:
    """(clients.normal, clients.slaves)."""
    normal = replicas = 0
    for c in srv.clients.values():
        if c.is_replica:
            replicas += client_memory(c)
        else:
            normal += client_memory(c)
    return normal, replicas


def memory_overhead(srv: Server) -> dict[str, Any]:
    """getMemoryOverheadData: the figures MEMORY STATS and INFO memory print."""
    dataset_keys = _meter(srv).dataset(srv)
    normal, replicas = clients_memory(srv)
    dbs = []
    ht_total = 0
    buckets = 0
    keys = 0
    for db in srv.dbs:
        if not db.data and not db.expires:
            continue
        main, exp = db_overhead(db)
        dbs.append((db.id, main, exp))
        ht_total += main + exp
        buckets += (_slots(len(db.data)) + _slots(len(db.expires))) * POINTER
        keys += len(db.data)
    # dictEntries and robjs are inside the keys' measured cost; only the
    # bucket arrays come on top.  "overhead" is Redis's accounting split.
    used = STARTUP_ALLOCATED + buckets + dataset_keys + normal + replicas
    m = _meter(srv)
    if used > m.peak:
        m.peak = used
    overhead = STARTUP_ALLOCATED + normal + replicas + ht_total
    dataset = used - overhead
    net = used - STARTUP_ALLOCATED if used > STARTUP_ALLOCATED else 1
    return {
        "used": used,
        "peak": m.peak,
        "startup": STARTUP_ALLOCATED,
        "clients_normal": normal,
        "clients_slaves": replicas,
        "dbs": dbs,
        "overhead": overhead,
        "dataset": dataset,
        "keys": keys,
        "dataset_perc": dataset * 100 / net,
        "peak_perc": used * 100 / m.peak if m.peak else 100.0,
        "bytes_per_key": net // keys if keys else 0,
    }


def estimate_used_memory(srv: Server) -> int:
    """used_memory for maxmemory and INFO: start-up + hash tables + data + clients."""
    ht = 0
    nkeys = 0
    for db in srv.dbs:
        n = len(db.data)
        if n:
            nkeys += n
            ht += (1 << (n - 1).bit_length() if n > 4 else 4) * POINTER
            e = len(db.expires)
            if e:
                ht += (1 << (e - 1).bit_length() if e > 4 else 4) * POINTER
    dataset = _meter(srv).dataset(srv, nkeys)
    normal = 0
    for c in srv.clients.values():
        if not c.is_replica:
            normal += 1024 + c.parser.pending()
    return STARTUP_ALLOCATED + ht + dataset + normal


def peak_memory(srv: Server) -> int:
    m = _meter(srv)
    used = estimate_used_memory(srv)
    if used > m.peak:
        m.peak = used
    return m.peak


def rss_bytes() -> int:
    """The process's resident set size (INFO used_memory_rss)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- MEMORY ---------------------------------------------------------------------------


@command("memory|usage")
def memory_usage(c: Client, argv: list[bytes]) -> Any:
    """MEMORY USAGE key [SAMPLES n]: the key is looked up without expiring it."""
    samples = OBJ_COMPUTE_SIZE_DEF_SAMPLES
    j = 3
    while j < len(argv):
        if argv[j].lower() == b"samples" and j + 1 < len(argv):
            samples = get_ll(argv[j + 1])
            if samples < 0:
                raise ERR_SYNTAX
            if samples == 0:
                samples = 2**63 - 1
            j += 2
        else:
            raise ERR_SYNTAX
    key = argv[2]
    value = c.db.data.get(key)
    if value is None:
        return None
    return key_usage(key, value, samples, c.db.strobj.get(key) == STR_UNENCODED)


@command("memory|stats")
def memory_stats(c: Client, argv: list[bytes]) -> Any:
    """MEMORY STATS: the overhead breakdown; allocator figures are the process RSS."""
    mh = memory_overhead(c.srv)
    rss = rss_bytes()
    used = mh["used"]
    pairs: list[tuple[Any, Any]] = [
        (b"peak.allocated", mh["peak"]),
        (b"total.allocated", used),
        (b"startup.allocated", mh["startup"]),
        (b"replication.backlog", 0),
        (b"clients.slaves", mh["clients_slaves"]),
        (b"clients.normal", mh["clients_normal"]),
        (b"cluster.links", 0),
        (b"aof.buffer", 0),
        (b"lua.caches", 0),
        (b"functions.caches", 0),
    ]
    for dbid, main, exp in mh["dbs"]:
        pairs.append((b"db.%d" % dbid, Map([
            (b"overhead.hashtable.main", main),
            (b"overhead.hashtable.expires", exp),
            (b"overhead.hashtable.slot-to-keys", 0),
        ])))
    frag = rss / used if used else 0.0
    pairs += [
        (b"overhead.total", mh["overhead"]),
        (b"keys.count", mh["keys"]),
        (b"keys.bytes-per-key", mh["bytes_per_key"]),
        (b"dataset.bytes", mh["dataset"]),
        (b"dataset.percentage", float(mh["dataset_perc"])),
        (b"peak.percentage", float(mh["peak_perc"])),
        (b"allocator.allocated", used),
        (b"allocator.active", used),
        (b"allocator.resident", rss),
        (b"allocator-fragmentation.ratio", 1.0),
        (b"allocator-fragmentation.bytes", 0),
        (b"allocator-rss.ratio", frag),
        (b"allocator-rss.bytes", rss - used),
        (b"rss-overhead.ratio", 1.0),
        (b"rss-overhead.bytes", 0),
        (b"fragmentation", frag),
        (b"fragmentation.bytes", rss - used),
    ]
    return Map(pairs)


_DOCTOR_EMPTY = (
    "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in "
    "these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and "
    "I will be back to our programming as soon as I finished rebooting.\n"
)
_DOCTOR_OK = (
    "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
)


@command("memory|doctor")
def memory_doctor(c: Client, argv: list[bytes]) -> Any:
    """MEMORY DOCTOR: getMemoryDoctorReport's checks that apply to the model."""
    srv = c.srv
    mh = memory_overhead(srv)
    used = mh["used"]
    if used < 5 * 1024 * 1024:
        return Verbatim(_DOCTOR_EMPTY.encode())
    issues = []
    if mh["peak"] / used > 1.5:
        issues.append(
            " * Peak memory: In the past this instance used more than 150% the memory that is currently "
            "using. The allocator is normally not able to release memory after a peak, so you can expect to "
            "see a big fragmentation ratio, however this is actually harmless and is only due to the memory "
            "peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the "
            "memory will be used as soon as you fill the Redis instance with more data. If the memory peak "
            "was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, "
            "otherwise the only other option is to shutdown and restart the instance.\n\n"
        )
    nclients = sum(1 for cl in srv.clients.values() if not cl.is_replica) or 1
    if mh["clients_normal"] // nclients > 1024 * 200:
        issues.append(
            " * Big client buffers: The clients output buffers in this instance are greater than 200K per "
            "client (on average). This may result from different causes, like Pub/Sub clients subscribed to "
            "channels bot not receiving data fast enough, so that data piles on the Redis instance output "
            "buffer, or clients sending commands with large replies or very large sequences of commands in "
            "the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it "
            "causes problems in your instance, or to understand better why certain clients are using a big "
            "amount of memory.\n\n"
        )
    if not issues:
        return Verbatim(_DOCTOR_OK.encode())
    text = "Sam, I detected a few issues in this Redis instance memory implants:\n\n" + "".join(issues)
    text += "I'm here to keep you safe, Sam. I want to help you.\n"
    return Verbatim(text.encode())


@command("memory|malloc-stats")
def memory_malloc_stats(c: Client, argv: list[bytes]) -> Any:
    """MEMORY MALLOC-STATS: Redis's answer when not built with jemalloc."""
    return b"Stats not supported for the current allocator"


@command("memory|purge")
def memory_purge(c: Client, argv: list[bytes]) -> Any:
    """MEMORY PURGE: collect garbage and hand free heap pages back (malloc_trim)."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return OK


@command("memory|help")
def memory_help(c: Client, argv: list[bytes]) -> Any:
    return help_reply("MEMORY", [
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
    ])


# -- LRU / LFU (evict.c) ---------------------------------------------------------------

LFU_INIT_VAL = 5
_LFU_LIMIT = 1 << 24  # db.access values above this are LRU clock stamps (seconds)


def lfu_time_minutes() -> int:
    return (int(time.time()) // 60) & 65535


def lfu_decr_and_return(srv: Server, access: int | None) -> int:
    """LFUDecrAndReturn on an access stamp (an LRU stamp reads as a fresh key)."""
    if access is None or access >= _LFU_LIMIT:
        return LFU_INIT_VAL
    ldt = access >> 8
    counter = access & 255
    decay = _cfg_int(srv, "lfu_decay_time", 1)
    if decay:
        now = lfu_time_minutes()
        elapsed = now - ldt if now >= ldt else 65535 - ldt + now
        periods = elapsed // decay
        if periods:
            counter = 0 if periods > counter else counter - periods
    return counter


def lfu_log_incr(srv: Server, counter: int) -> int:
    """LFULogIncr: logarithmic increment with lfu-log-factor."""
    if counter == 255:
        return 255
    base = max(0, counter - LFU_INIT_VAL)
    p = 1.0 / (base * _cfg_int(srv, "lfu_log_factor", 10) + 1)
    return counter + 1 if random.random() < p else counter


def lfu_touch(srv: Server, db: Db, key: bytes) -> None:
    """updateLFU: what a key access does to the access stamp under an LFU policy."""
    counter = lfu_log_incr(srv, lfu_decr_and_return(srv, db.access.get(key)))
    db.access[key] = (lfu_time_minutes() << 8) | counter


def _cfg_int(srv: Server, name: str, default: int) -> int:
    v = getattr(srv.cfg, name, default)
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def maxmemory_policy(srv: Server) -> str:
    p = getattr(srv.cfg, "maxmemory_policy", "noeviction")
    if isinstance(p, bytes):
        p = p.decode()
    return str(p).lower()


# -- eviction (evict.c performEvictions) --------------------------------------------------

EVPOOL_SIZE = 16


class _Evictor:
    """Per-server eviction state: the candidate pool and key snapshots to sample from."""

    __slots__ = ("pool", "snapshots", "next_db", "running")

    def __init__(self) -> None:
        # (idle, dbid, key), ascending idle: the best candidate is last.
        self.pool: list[tuple[int, int, bytes]] = []
        # (db id, volatile) -> (key list, size when taken, ghosts seen)
        self.snapshots: dict[tuple[int, bool], list[Any]] = {}
        self.next_db = 0
        self.running = False

    def sample(self, db: Db, volatile: bool, count: int) -> list[bytes]:
        """dictGetSomeKeys: up to ``count`` random keys (``expires`` keys when volatile).

        Python dicts have no random access, so samples come from a snapshot
        of the key list, taken again when it drifted from the dict."""
        d = db.expires if volatile else db.data
        n = len(d)
        if n == 0:
            return []
        snap = self.snapshots.get((db.id, volatile))
        if snap is None or snap[2] * 4 > max(16, len(snap[0])) or not (n // 2 <= snap[1] <= n * 2) \
                or (len(snap[0]) < 64 and snap[1] != n):
            snap = [list(d), n, 0]
            self.snapshots[(db.id, volatile)] = snap
        keys = snap[0]
        out = []
        for _ in range(min(count, len(keys))):
            k = keys[random.randrange(len(keys))]
            if k in d:
                out.append(k)
            else:
                snap[2] += 1
        return out


_EVICTORS: weakref.WeakKeyDictionary[Any, _Evictor] = weakref.WeakKeyDictionary()


def _evictor(srv: Server) -> _Evictor:
    e = _EVICTORS.get(srv)
    if e is None:
        e = _EVICTORS[srv] = _Evictor()
    return e


def _idle_score(srv: Server, db: Db, key: bytes, policy: str) -> int:
    """The pool's ordering value: greater means a better candidate."""
    if policy.endswith("-ttl"):
        return 2**64 - 1 - db.expires.get(key, 0)
    access = db.access.get(key)
    if policy.endswith("-lfu"):
        return 255 - lfu_decr_and_return(srv, access)
    if access is None:
        return 0
    if access < _LFU_LIMIT:  # an LFU stamp left from an earlier policy: minutes -> ms
        return max(0, lfu_time_minutes() - (access >> 8)) * 60000
    return max(0, srv.lru_clock - access) * 1000


def _pool_populate(srv: Server, ev: _Evictor, db: Db, policy: str, samples: int) -> None:
    """evictionPoolPopulate."""
    pool = ev.pool
    volatile = policy.startswith("volatile")
    for key in ev.sample(db, volatile, samples):
        idle = _idle_score(srv, db, key, policy)
        if len(pool) >= EVPOOL_SIZE:
            if idle < pool[0][0]:
                continue
            pool.pop(0)
        insort(pool, (idle, db.id, key))


def _pick_victim(srv: Server, ev: _Evictor, policy: str) -> tuple[Db, bytes] | None:
    volatile = policy.startswith("volatile")
    dbs = srv.dbs
    if policy.endswith("-random"):
        n = len(dbs)
        for _ in range(n):
            ev.next_db = (ev.next_db + 1) % n
            db = dbs[ev.next_db]
            keys = ev.sample(db, volatile, 1)
            if keys:
                return db, keys[0]
            if (db.expires if volatile else db.data):
                # only ghosts sampled: try again with a fresh snapshot
                ev.snapshots.pop((db.id, volatile), None)
                keys = ev.sample(db, volatile, 1)
                if keys:
                    return db, keys[0]
        return None
    samples = max(1, _cfg_int(srv, "maxmemory_samples", 5))
    while True:
        total = 0
        for db in dbs:
            d = db.expires if volatile else db.data
            if d:
                total += len(d)
                _pool_populate(srv, ev, db, policy, samples)
        if not total:
            return None
        pool = ev.pool
        while pool:
            _, dbid, key = pool.pop()
            db = dbs[dbid]
            if key in (db.expires if volatile else db.data):
                return db, key
        # every pooled key was a ghost: sample again


def _over_limit(srv: Server) -> int:
    """Bytes over maxmemory (0 when under), not counting replica buffers."""
    limit = srv.cfg.maxmemory
    if not limit:
        return 0
    used = estimate_used_memory(srv)
    return used - limit if used > limit else 0


OOM_ERR = Err("OOM command not allowed when used memory > 'maxmemory'.")


def _eviction_time_limit(srv: Server) -> float:
    """evictionTimeLimitUs, scaled for Python (seconds; inf when tenacity is 100)."""
    tenacity = _cfg_int(srv, "maxmemory_eviction_tenacity", 10)
    if tenacity >= 100:
        return float("inf")
    if tenacity <= 10:
        us = 50.0 * tenacity
    else:
        us = 500.0 * 1.15 ** (tenacity - 10)
    return us * 20 / 1e6  # Python deletes ~20x slower than C


def evict_until_fits(srv: Server) -> Err | None:
    """performEvictions: evict per maxmemory-policy until under maxmemory.

    Each evicted key is its own execution unit propagating a bare DEL (UNLINK
    with lazyfree-lazy-eviction), fires the ``evicted`` event and counts in
    ``evicted_keys``.  Returns the OOM error when nothing more can be evicted;
    when the time budget runs out the rest continues from the event loop and
    the command is allowed, as Redis's eviction time proc does."""
    if srv.loading or (srv.is_replica and getattr(srv.cfg, "replica_ignore_maxmemory", True)):
        return None
    if not _over_limit(srv):
        return None
    policy = maxmemory_policy(srv)
    if policy == "noeviction":
        return OOM_ERR
    ev = _evictor(srv)
    meter = _meter(srv)
    lazy = bool(getattr(srv.cfg, "lazyfree_lazy_eviction", False))
    prop = srv.propagator
    threshold = _cfg_int(srv, "latency_monitor_threshold", 0)
    t_start = time.perf_counter()
    budget = _eviction_time_limit(srv)
    freed = 0
    while _over_limit(srv):
        victim = _pick_victim(srv, ev, policy)
        if victim is None:
            _cycle_latency(srv, t_start, threshold)
            return OOM_ERR
        db, key = victim
        cost = _key_cost(db, key, db.data[key])
        t0 = time.perf_counter()
        outer = prop.depth
        if outer:
            # Evicting from inside a command (CONFIG SET maxmemory): the key
            # is still a unit of its own, emitted now as a bare DEL, not
            # folded (and MULTI-wrapped) into the command's unit.
            held = (prop.pending, prop.no_wrap)
            prop.pending, prop.depth, prop.no_wrap = [], 0, False
        prop.begin_unit()
        try:
            trk = srv.tracking
            if trk is not None:
                trk.hold = True
            db.delete(key)
            if trk is not None:
                # signalModifiedKey(NULL, ...): changed by no client, before the event
                trk.deleted_by_server(key)
            meter.forget(cost)
            srv.stat_evictedkeys += 1
            srv.notify(srv.NOTIFY_EVICTED, b"evicted", key, db.id)
            prop.add(db.id, [b"UNLINK" if lazy else b"DEL", key])
        finally:
            prop.end_unit()
            if outer:
                prop.pending, prop.no_wrap = held
                prop.depth = outer
        if threshold:
            ms = int((time.perf_counter() - t0) * 1000)
            if ms >= threshold:
                from .server_cmds import latency_add_sample

                latency_add_sample(srv, "eviction-del", ms)
        freed += 1
        if freed % 16 == 0 and time.perf_counter() - t_start > budget:
            _schedule_more(srv, ev)
            break
    _cycle_latency(srv, t_start, threshold)
    return None


def _cycle_latency(srv: Server, t_start: float, threshold: int) -> None:
    if threshold:
        ms = int((time.perf_counter() - t_start) * 1000)
        if ms >= threshold:
            from .server_cmds import latency_add_sample

            latency_add_sample(srv, "eviction-cycle", ms)


def _schedule_more(srv: Server, ev: _Evictor) -> None:
    """startEvictionTimeProc: keep evicting from the event loop."""
    loop = srv.loop
    if loop is None or ev.running:
        return
    ev.running = True

    def proc() -> None:
        ev.running = False
        if _over_limit(srv) and maxmemory_policy(srv) != "noeviction":
            evict_until_fits(srv)

    loop.call_soon(proc)


def lfu_init() -> int:
    """A new object's access stamp under an LFU policy (createObject)."""
    return (lfu_time_minutes() << 8) | LFU_INIT_VAL


def install(srv: Server) -> None:
    """Fresh per-server memory and eviction state; key accesses update LFU
    counters (``srv.lfu``) while the maxmemory-policy is an LFU one."""
    _METERS[srv] = _MemMeter()
    _EVICTORS[srv] = _Evictor()
    keyspace.LFU_TOUCH = lfu_touch
    keyspace.LFU_INIT = lfu_init

    def follow_policy(old: Any = None, new: Any = None) -> None:
        srv.lfu = maxmemory_policy(srv).endswith("-lfu")

    follow_policy()
    srv.cfg.add_hook("maxmemory-policy", follow_policy)
