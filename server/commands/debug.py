"""DEBUG (debug.c ``debugCommand``), gated by ``enable-debug-command``.

Subcommands live in :data:`DEBUG_SUBCOMMANDS` so other subsystems add
theirs (RELOAD and LOADAOF belong to persistence, REPLICATE to
replication) with :func:`debug_subcommand`.  A subcommand answers only for
its exact argument count, as Redis's ``if (!strcasecmp(..) && c->argc == N)``
chain does; anything else is "unknown subcommand or wrong number of
arguments".  HELP prints the lines of the subcommands that exist.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..args import ERR_OUT_OF_RANGE, get_ll
from ..client import Client
from ..keyspace import STR_UNENCODED
from ..log import log
from ..protocol import string2ll
from ..registry import command
from ..reply import OK, BigNumber, Bool, Err, Map, Push, Raw, SetReply, Status, Verbatim
from ..util import cstr
from .help import help_reply

if TYPE_CHECKING:
    from ..core import Server

DEBUG_NOT_ALLOWED = Err(
    "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it "
    "from a local connection, otherwise you need to set this option in the configuration file, and then "
    "restart the server."
)

Handler = Callable[[Client, list[bytes]], Any]


class _Sub:
    __slots__ = ("name", "arity", "handler", "help")

    def __init__(self, name: str, arity: Callable[[int], bool], handler: Handler, help: list[str]) -> None:
        self.name = name
        self.arity = arity
        self.handler = handler
        self.help = help


DEBUG_SUBCOMMANDS: dict[bytes, _Sub] = {}


def debug_subcommand(name: str, arity: Callable[[int], bool], help: list[str]) -> Callable[[Handler], Handler]:
    """Register ``DEBUG <name>``; ``arity(argc)`` says which argument counts it takes
    (argc counts DEBUG and the subcommand name)."""

    def deco(fn: Handler) -> Handler:
        DEBUG_SUBCOMMANDS[name.lower().encode()] = _Sub(name, arity, fn, help)
        return fn

    return deco


def _local(c: Client) -> bool:
    from .server_cmds import is_local_client

    return is_local_client(c)


def debug_allowed(c: Client) -> bool:
    """enable-debug-command: yes, or local for loopback/unix clients."""
    mode = c.srv.cfg.enable_debug_command
    return mode == "yes" or (mode == "local" and _local(c))


@command("debug")
def debug(c: Client, argv: list[bytes]) -> Any:
    if not debug_allowed(c):
        raise DEBUG_NOT_ALLOWED
    sub = DEBUG_SUBCOMMANDS.get(argv[1].lower())
    if sub is None or not sub.arity(len(argv)):
        raise Err(b"ERR unknown subcommand or wrong number of arguments for '" + cstr(argv[1])
                  + b"'. Try DEBUG HELP.")
    return sub.handler(c, argv)


def _eq(n: int) -> Callable[[int], bool]:
    return lambda argc: argc == n


def _ge(n: int) -> Callable[[int], bool]:
    return lambda argc: argc >= n


# -- HELP -----------------------------------------------------------------------------


@debug_subcommand("help", _eq(2), [])
def _help(c: Client, argv: list[bytes]) -> Any:
    lines: list[str] = []
    for name in sorted(DEBUG_SUBCOMMANDS, key=lambda n: _HELP_ORDER.get(n, 1000)):
        lines.extend(DEBUG_SUBCOMMANDS[name].help)
    return help_reply("DEBUG", lines)


# Redis's DEBUG HELP order, for the subcommands that exist here or elsewhere.
_HELP_ORDER = {n.encode(): i for i, n in enumerate([
    "aof-flush-sleep", "assert", "change-repl-id", "config-rewrite-force-all", "crash-and-recover",
    "digest", "digest-value", "error", "leak", "log", "htstats", "htstats-key", "loadaof", "replicate",
    "mallctl", "mallctl-str", "object", "drop-cluster-packet-filter", "oom", "panic", "populate",
    "protocol", "reload", "restart", "sdslen", "segfault", "set-active-expire",
    "quicklist-packed-threshold", "set-skip-checksum-validation", "sleep", "stringmatch-test",
    "structsize", "listpack", "quicklist", "client-eviction", "pause-cron", "replybuffer",
    "clusterlink",
])}


# -- OBJECT ---------------------------------------------------------------------------------


def _len_enc(n: int) -> int:
    """rdbSaveLen's size."""
    if n < 1 << 6:
        return 1
    if n < 1 << 14:
        return 2
    if n <= 0xFFFFFFFF:
        return 5
    return 9


def _int_enc(v: int) -> int:
    """rdbEncodeInteger's size, 0 when the value does not fit 32 bits."""
    if -(1 << 7) <= v < 1 << 7:
        return 2
    if -(1 << 15) <= v < 1 << 15:
        return 3
    if -(1 << 31) <= v < 1 << 31:
        return 5
    return 0


def string_serialized_length(srv: Server, v: bytes | bytearray | int) -> int:
    """rdbSavedObjectLen of a string: integer encoding, LZF (rdbcompression, > 20
    bytes) or plain.  rdbSaveLzfStringObject gives lzf_compress ``len - 4``
    bytes of room; python-lzf passes ``max_length + 1`` to lzf_compress, hence
    ``n - 5`` (the same liblzf 3.6 code as Redis's deps/lzf)."""
    if type(v) is int:  # int-encoded: rdbSaveLongLongAsStringObject
        v = b"%d" % v
    n = len(v)
    if n <= 20:
        iv = string2ll(bytes(v))
        if iv is not None and (n <= 11 or type(v) is bytes):
            enc = _int_enc(iv)
            if enc:
                return enc
            if type(v) is bytes:  # an int-encoded object saved as its decimal text
                return _len_enc(n) + n
    if srv.cfg.rdbcompression and n > 20:
        try:
            import lzf

            packed = lzf.compress(bytes(v), n - 5) if n > 5 else None
        except ImportError:  # pragma: no cover - python-lzf is a dependency
            packed = None
        if packed:
            return 1 + _len_enc(len(packed)) + _len_enc(n) + len(packed)
    return _len_enc(n) + n


def _encoding(srv: Server, v: Any, unencoded: bool = False) -> bytes:
    t = type(v)
    if t is bytes or t is bytearray or t is int:
        from .strings import string_encoding

        return string_encoding(v, unencoded)
    enc = getattr(v, "encoding", None)
    if callable(enc):
        enc = enc()
    if isinstance(enc, str):
        enc = enc.encode()
    return enc if isinstance(enc, bytes) else b"unknown"


@debug_subcommand("object", _eq(3), [
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
])
def _object(c: Client, argv: list[bytes]) -> Any:
    """DEBUG OBJECT key: address, refcount, encoding, serialized length, LRU."""
    srv = c.srv
    db = c.db
    key = argv[2]
    v = db.data.get(key)
    if v is None:
        raise Err("ERR no such key")
    from .keys import value_refcount

    enc = _encoding(srv, v, db.strobj.get(key) == STR_UNENCODED)
    refcount = value_refcount(c, key, v)
    if type(v) in (bytes, bytearray, int):
        serlen = string_serialized_length(srv, v)
        extra = ""
    else:
        fn = getattr(v, "serialized_length", None)
        serlen = int(fn(srv)) if fn is not None else 0
        dbg = getattr(v, "debug_object_extra", None)
        extra = dbg() if dbg is not None else ""
    access = db.access.get(key, srv.lru_clock)
    lru = access & 0xFFFFFF
    idle = max(0, srv.lru_clock - access) if access >= 1 << 24 else 0
    return Status((
        f"Value at:{hex(id(v))} refcount:{refcount} encoding:{enc.decode()} serializedlength:{serlen} "
        f"lru:{lru} lru_seconds_idle:{idle}{extra}"
    ).encode())


# -- DIGEST ----------------------------------------------------------------------------------


@debug_subcommand("digest", _eq(2), [
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
])
def _digest(c: Client, argv: list[bytes]) -> Any:
    """DEBUG DIGEST: the dataset digest of every db (spec/debug-digest.md)."""
    from ..digest import digest_dataset

    dbs = []
    for db in c.srv.dbs:
        if db.data:
            exp = db.expires
            dbs.append((db.id, [(k, v, k in exp) for k, v in db.data.items()]))
    return Status(digest_dataset(dbs).encode())


@debug_subcommand("digest-value", _ge(2), [
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
])
def _digest_value(c: Client, argv: list[bytes]) -> Any:
    """DEBUG DIGEST-VALUE key ...: per key, without expiring it; missing -> zeros."""
    from ..digest import ZERO_DIGEST_HEX, digest_value_hex

    db = c.db
    out = []
    for key in argv[2:]:
        v = db.data.get(key)
        if v is None:
            out.append(Status(ZERO_DIGEST_HEX.encode()))
        else:
            out.append(Status(digest_value_hex(v, key in db.expires).encode()))
    return out


# -- simple switches and helpers ---------------------------------------------------------------


_STRTOD = re.compile(rb"\s*[+-]?(?:inf(?:inity)?|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.I)


def _strtod_prefix(b: bytes) -> float:
    """C strtod of the longest valid prefix (0 when there is none)."""
    m = _STRTOD.match(b)
    if not m:
        return 0.0
    try:
        return float(m.group(0))
    except ValueError:
        return 0.0


def _atoi(b: bytes) -> int:
    m = re.match(rb"\s*([+-]?\d+)", b)
    return int(m.group(1)) if m else 0


@debug_subcommand("sleep", _eq(3), [
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
])
def _sleep(c: Client, argv: list[bytes]) -> Any:
    """DEBUG SLEEP s: block the whole server (strtod; negative sleeps nothing)."""
    d = _strtod_prefix(argv[2])
    if d > 0 and d == d and d != float("inf"):
        time.sleep(int(d * 1_000_000) / 1_000_000)
    return OK


@debug_subcommand("set-active-expire", _eq(3), [
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
])
def _set_active_expire(c: Client, argv: list[bytes]) -> Any:
    c.srv.active_expire_enabled = bool(_atoi(argv[2]))
    return OK


@debug_subcommand("change-repl-id", _eq(2), [
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
])
def _change_repl_id(c: Client, argv: list[bytes]) -> Any:
    """changeReplicationId + clearReplicationId2."""
    srv = c.srv
    log.warning("Changing replication IDs after receiving DEBUG change-repl-id")
    fn = getattr(srv, "change_replication_id", None)
    if fn is not None:
        fn()
    else:
        from .server_cmds import _state

        new = os.urandom(20).hex()
        _state(srv).replid = new
        srv.replid = new  # type: ignore[attr-defined]
        srv.replid2 = "0" * 40  # type: ignore[attr-defined]
        srv.second_replid_offset = -1  # type: ignore[attr-defined]
    return OK


@debug_subcommand("error", _eq(3), [
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
])
def _error(c: Client, argv: list[bytes]) -> Any:
    """The bytes after "-" are the argument as given (no ERR code added), and, as
    in Redis, the reply counts in no error statistics."""
    return Raw(b"-" + argv[2].replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n")


@debug_subcommand("log", _eq(3), [
    "LOG <message>",
    "    Write <message> to the server log.",
])
def _log(c: Client, argv: list[bytes]) -> Any:
    log.warning("DEBUG LOG: " + argv[2].decode("utf-8", "replace"))
    return OK


@debug_subcommand("config-rewrite-force-all", _eq(2), [
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
])
def _config_rewrite_force_all(c: Client, argv: list[bytes]) -> Any:
    cfg = c.srv.cfg
    if cfg.config_file is None:
        raise Err("ERR CONFIG-REWRITE-FORCE-ALL failed: Bad address")
    try:
        cfg.rewrite(force_write=True)
    except Err as e:
        reason = e.msg.split(b": ", 1)[-1] if b": " in e.msg else e.msg
        raise Err(b"ERR CONFIG-REWRITE-FORCE-ALL failed: " + reason) from None
    return OK


@debug_subcommand("populate", lambda argc: 3 <= argc <= 5, [
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
])
def _populate(c: Client, argv: list[bytes]) -> Any:
    """DEBUG POPULATE count [prefix] [size]: existing keys are left alone; nothing propagates."""
    try:
        count = get_ll(argv[2])
    except Err:
        raise ERR_OUT_OF_RANGE from None
    if count < 0:
        raise ERR_OUT_OF_RANGE
    valsize = 0
    if len(argv) == 5:
        try:
            valsize = get_ll(argv[4])
        except Err:
            raise ERR_OUT_OF_RANGE from None
        if valsize < 0:
            raise ERR_OUT_OF_RANGE
    prefix = argv[3] if len(argv) >= 4 else b"key"
    db = c.db
    for j in range(count):
        key = (prefix + b":%d" % j)[:127]
        if db.lookup_write(key) is not None:
            continue
        text = b"value:%d" % j
        if valsize:
            val = text[:valsize] + bytes(max(0, valsize - len(text)))
        else:
            val = text
        db.add(key, val)
    return OK


_PROTOCOL_TYPES = ("string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false")


@debug_subcommand("protocol", _eq(3), [
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
])
def _protocol(c: Client, argv: list[bytes]) -> Any:
    """DEBUG PROTOCOL type: one test value of each RESP3 type."""
    name = argv[2].lower()
    if name == b"string":
        return b"Hello World"
    if name == b"integer":
        return 12345
    if name == b"double":
        return 3.141
    if name == b"bignum":
        return BigNumber(b"1234567999999999999999999999999999999")
    if name == b"null":
        return None
    if name == b"array":
        return [0, 1, 2]
    if name == b"set":
        return SetReply([0, 1, 2])
    if name == b"map":
        return Map([(j, Bool(j == 1)) for j in range(3)])
    if name == b"attrib":
        body = b"Some real reply following the attribute"
        if c.resp3:
            return Raw(b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$%d\r\n%s\r\n"
                       % (len(body), body))
        return body
    if name == b"push":
        if not c.resp3:
            raise Err("ERR RESP2 is not supported by this command")
        c.send(Push([b"server-cpu-usage", 42]))
        return b"Some real reply following the push reply"
    if name == b"true":
        return Bool(True)
    if name == b"false":
        return Bool(False)
    if name == b"verbatim":
        return Verbatim(b"This is a verbatim\nstring")
    raise Err("ERR Wrong protocol type name. Please use one of the following: " + _PROTOCOL_TYPES)


@debug_subcommand("stringmatch-test", _eq(2), [
    "STRINGMATCH-TEST",
    "    Run a fuzz tester against the stringmatchlen() function.",
])
def _stringmatch_test(c: Client, argv: list[bytes]) -> Any:
    """stringmatchlen_fuzz_test: random patterns against random strings."""
    from ..util import stringmatchlen

    rnd = random.Random()
    for _ in range(20000):
        pat = bytes(rnd.randrange(256) for _ in range(rnd.randrange(32)))
        s = bytes(rnd.randrange(256) for _ in range(rnd.randrange(32)))
        stringmatchlen(pat, s)
        stringmatchlen(pat, s, nocase=True)
    return Status(b"Apparently Redis did not crash: test passed")


__all__ = ["DEBUG_SUBCOMMANDS", "debug_subcommand", "debug_allowed", "string_serialized_length"]
