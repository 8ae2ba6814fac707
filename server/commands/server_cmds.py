"""Server commands: INFO, CONFIG, TIME, LASTSAVE, SLOWLOG, LATENCY, MONITOR,
SHUTDOWN, LOLWUT (server.c, config.c, slowlog.c, latency.c, lolwut*.c).

INFO prints every section and field Redis 7.0.15 prints, in its order.
Values come from the server's own counters; the memory figures follow the
model of :mod:`.introspection` (what Redis would account for the same data;
``used_memory_rss`` is the process's real RSS).  Sections owned by other
subsystems (persistence, replication, modules) print their idle values
until the subsystem registers a provider in :data:`INFO_SECTION_PROVIDERS`
(a function returning the section's ``(field, value)`` lines).

The latency monitor keeps, per event, the last 160 one-second samples above
``latency-monitor-threshold`` (latency.c); per-command latency histograms
use HdrHistogram's bucket layout (1 ns .. 1 s, 2 significant digits), so
LATENCY HISTOGRAM and INFO latencystats print the same bucket bounds Redis
does.  :func:`record_command_latency` is what the execution entry calls
after each command.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import random
import resource
import socket
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import registry
from ..args import ERR_SYNTAX, get_ll
from ..client import NOREPLY, Client
from ..config import Config
from ..log import log
from ..registry import command
from ..reply import OK, Err, Map, Verbatim
from ..tracking import info as tracking_info
from ..util import bytes_to_human, cstr
from .help import help_reply
from .introspection import (
    estimate_used_memory,
    evict_until_fits,
    maxmemory_policy,
    memory_overhead,
    rss_bytes,
)

if TYPE_CHECKING:
    from ..core import Server

REDIS_VERSION = "7.0.15"

# Section name -> provider of that section's (field, value) lines, replacing
# the idle defaults below (persistence, replication, modules register here).
INFO_SECTION_PROVIDERS: dict[str, Callable[[Server], list[tuple[str, Any]]]] = {}

# Memory figures owned by other subsystems (Lua VM, function engines, caches,
# backlog, AOF buffer); each a function of the server returning bytes/counts.
MEMORY_PROVIDERS: dict[str, Callable[[Server], int]] = {}

_DEFAULT_SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication",
                     "cpu", "module_list", "errorstats", "cluster", "keyspace")


def _mem(srv: Server, name: str) -> int:
    fn = MEMORY_PROVIDERS.get(name)
    return int(fn(srv)) if fn is not None else 0


def _safe(name: str) -> str:
    """getSafeInfoString: ``# : \\n \\r`` become ``_``."""
    for ch in "#:\n\r":
        name = name.replace(ch, "_")
    return name


_BUILD_ID = hashlib.sha1(b"ambry-0.1.0-redis-7.0.15").hexdigest()[:15]


def _gcc_version() -> str:
    comp = platform.python_compiler()
    for part in comp.split():
        if part[:1].isdigit():
            nums = (part.split(".") + ["0", "0"])[:3]
            if all(n.isdigit() for n in nums):
                return ".".join(nums)
    return "0.0.0"


def _total_system_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _replid(srv: Server) -> tuple[str, str, int, int]:
    """(replid, replid2, master_repl_offset, second_repl_offset)."""
    return (
        getattr(srv, "replid", None) or _state(srv).replid,
        getattr(srv, "replid2", None) or "0" * 40,
        int(getattr(srv, "master_repl_offset", 0)),
        int(getattr(srv, "second_replid_offset", -1)),
    )


class _ServerState:
    """Per-server state of this module: latency histograms, replid fallback."""

    __slots__ = ("hists", "replid", "executable")

    def __init__(self) -> None:
        self.hists = _RawHists()
        self.replid = os.urandom(20).hex()
        self.executable = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""


_STATES: weakref.WeakKeyDictionary[Any, _ServerState] = weakref.WeakKeyDictionary()


def _state(srv: Server) -> _ServerState:
    st = _STATES.get(srv)
    if st is None:
        st = _STATES[srv] = _ServerState()
    return st


# -- INFO -----------------------------------------------------------------------------


def _section_server(srv: Server) -> list[tuple[str, Any]]:
    cfg = srv.cfg
    u = os.uname()
    now = time.time()
    uptime = int(now - srv.start_time)
    supervised = cfg.supervised if cfg.supervised in ("upstart", "systemd") else "no"
    return [
        ("redis_version", REDIS_VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", _BUILD_ID),
        ("redis_mode", "standalone"),
        ("os", f"{u.sysname} {u.release} {u.machine}"),
        ("arch_bits", 64),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "epoll" if sys.platform.startswith("linux") else "kqueue"),
        ("atomicvar_api", "c11-builtin"),
        ("gcc_version", _gcc_version()),
        ("process_id", os.getpid()),
        ("process_supervised", supervised),
        ("run_id", srv.run_id),
        ("tcp_port", cfg.port or cfg.tls_port),
        ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", srv.hz),
        ("configured_hz", cfg.hz),
        ("lru_clock", srv.lru_clock & 0xFFFFFF),
        ("executable", _state(srv).executable),
        ("config_file", cfg.config_file or ""),
        ("io_threads_active", 0),
    ]


def _section_clients(srv: Server) -> list[tuple[str, Any]]:
    maxin = maxout = 0
    replicas = 0
    in_timeout = 0
    for c in srv.clients.values():
        if c.is_replica:
            replicas += 1
        q = c.parser.pending()
        if q > maxin:
            maxin = q
        t = c.transport
        if t is not None and not c.closed:
            o = t.get_write_buffer_size()
            if o > maxout:
                maxout = o
        if c.blocked is not None and getattr(c.blocked, "timeout", 0):
            in_timeout += 1
    return [
        ("connected_clients", len(srv.clients) - replicas),
        ("cluster_connections", 0),
        ("maxclients", srv.cfg.maxclients),
        ("client_recent_max_input_buffer", maxin),
        ("client_recent_max_output_buffer", maxout),
        # clients held by CLIENT PAUSE are blocked (BLOCKED_POSTPONE) in Redis
        ("blocked_clients", srv.blocked_clients + len(srv.paused_clients)),
        ("tracking_clients", srv.tracking_clients),
        ("clients_in_timeout_table", in_timeout),
    ]


def _section_memory(srv: Server) -> list[tuple[str, Any]]:
    cfg = srv.cfg
    mh = memory_overhead(srv)
    used = mh["used"]
    peak = mh["peak"]
    rss = rss_bytes()
    total_sys = _total_system_memory()
    lua = _mem(srv, "used_memory_vm_eval")
    vm_functions = _mem(srv, "used_memory_vm_functions")
    scripts_eval = _mem(srv, "used_memory_scripts_eval")
    functions = _mem(srv, "used_memory_functions")
    frag = rss / used if used else 0.0
    return [
        ("used_memory", used),
        ("used_memory_human", bytes_to_human(used)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", bytes_to_human(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", bytes_to_human(peak)),
        ("used_memory_peak_perc", f"{mh['peak_perc']:.2f}%"),
        ("used_memory_overhead", mh["overhead"]),
        ("used_memory_startup", mh["startup"]),
        ("used_memory_dataset", mh["dataset"]),
        ("used_memory_dataset_perc", f"{mh['dataset_perc']:.2f}%"),
        ("allocator_allocated", used),
        ("allocator_active", used),
        ("allocator_resident", rss),
        ("total_system_memory", total_sys),
        ("total_system_memory_human", bytes_to_human(total_sys)),
        ("used_memory_lua", lua),
        ("used_memory_vm_eval", lua),
        ("used_memory_lua_human", bytes_to_human(lua)),
        ("used_memory_scripts_eval", scripts_eval),
        ("number_of_cached_scripts", _mem(srv, "number_of_cached_scripts")),
        ("number_of_functions", _mem(srv, "number_of_functions")),
        ("number_of_libraries", _mem(srv, "number_of_libraries")),
        ("used_memory_vm_functions", vm_functions),
        ("used_memory_vm_total", vm_functions + lua),
        ("used_memory_vm_total_human", bytes_to_human(vm_functions + lua)),
        ("used_memory_functions", functions),
        ("used_memory_scripts", scripts_eval + functions),
        ("used_memory_scripts_human", bytes_to_human(scripts_eval + functions)),
        ("maxmemory", cfg.maxmemory),
        ("maxmemory_human", bytes_to_human(cfg.maxmemory)),
        ("maxmemory_policy", maxmemory_policy(srv)),
        ("allocator_frag_ratio", "1.00"),
        ("allocator_frag_bytes", 0),
        ("allocator_rss_ratio", f"{frag:.2f}"),
        ("allocator_rss_bytes", rss - used),
        ("rss_overhead_ratio", "1.00"),
        ("rss_overhead_bytes", 0),
        ("mem_fragmentation_ratio", f"{frag:.2f}"),
        ("mem_fragmentation_bytes", rss - used),
        ("mem_not_counted_for_evict", _mem(srv, "mem_not_counted_for_evict")),
        ("mem_replication_backlog", _mem(srv, "mem_replication_backlog")),
        ("mem_total_replication_buffers", _mem(srv, "mem_total_replication_buffers")),
        ("mem_clients_slaves", mh["clients_slaves"]),
        ("mem_clients_normal", mh["clients_normal"]),
        ("mem_cluster_links", 0),
        ("mem_aof_buffer", _mem(srv, "mem_aof_buffer")),
        ("mem_allocator", "libc"),
        ("active_defrag_running", 0),
        ("lazyfree_pending_objects", 0),
        ("lazyfreed_objects", 0),
    ]


def _section_persistence(srv: Server) -> list[tuple[str, Any]]:
    """The persistence section: the RDB fields from server/rdb.py, the AOF
    fields from server/aof.py (its ``aof_current_size``... lines while AOF
    is on), and the ``loading_*`` lines ending the section while loading."""
    from .. import aof, rdb

    head: list[tuple[str, Any]] = rdb.info_rdb_fields(srv)
    tail: list[tuple[str, Any]] = rdb.info_loading_fields(srv)
    return head + aof.info_fields(srv) + [
        ("module_fork_in_progress", 0),
        ("module_fork_last_cow_size", 0),
    ] + aof.info_enabled_fields(srv) + tail


def _section_stats(srv: Server) -> list[tuple[str, Any]]:
    s = srv
    net_in = s.stat_net_input_bytes + s.stat_net_repl_input_bytes
    net_out = s.stat_net_output_bytes + s.stat_net_repl_output_bytes
    return [
        ("total_connections_received", s.stat_numconnections),
        ("total_commands_processed", s.stat_numcommands),
        ("instantaneous_ops_per_sec", int(s.instantaneous(1))),
        ("total_net_input_bytes", net_in),
        ("total_net_output_bytes", net_out),
        ("total_net_repl_input_bytes", s.stat_net_repl_input_bytes),
        ("total_net_repl_output_bytes", s.stat_net_repl_output_bytes),
        ("instantaneous_input_kbps", f"{s.instantaneous(2) / 1024:.2f}"),
        ("instantaneous_output_kbps", f"{s.instantaneous(3) / 1024:.2f}"),
        ("instantaneous_input_repl_kbps", "0.00"),
        ("instantaneous_output_repl_kbps", "0.00"),
        ("rejected_connections", s.stat_rejected_conn),
        ("sync_full", s.stat_sync_full),
        ("sync_partial_ok", s.stat_sync_partial_ok),
        ("sync_partial_err", s.stat_sync_partial_err),
        ("expired_keys", s.stat_expiredkeys),
        ("expired_stale_perc", f"{s.stat_expired_stale_perc * 100:.2f}"),
        ("expired_time_cap_reached_count", s.stat_expired_time_cap_reached_count),
        ("expire_cycle_cpu_milliseconds", s.stat_expire_cycle_time_used // 1000),
        ("evicted_keys", s.stat_evictedkeys),
        ("evicted_clients", s.stat_evictedclients),
        ("total_eviction_exceeded_time", 0),
        ("current_eviction_exceeded_time", 0),
        ("keyspace_hits", s.stat_keyspace_hits),
        ("keyspace_misses", s.stat_keyspace_misses),
        ("pubsub_channels", len(s.pubsub_channels)),
        ("pubsub_patterns", len(s.pubsub_patterns)),
        ("pubsubshard_channels", len(s.pubsub_shard_channels)),
        ("latest_fork_usec", int(getattr(s, "stat_fork_time", 0))),
        ("total_forks", s.stat_total_forks),
        ("migrate_cached_sockets", 0),
        ("slave_expires_tracked_keys", 0),
        ("active_defrag_hits", 0),
        ("active_defrag_misses", 0),
        ("active_defrag_key_hits", 0),
        ("active_defrag_key_misses", 0),
        ("total_active_defrag_time", 0),
        ("current_active_defrag_time", 0),
        *zip(("tracking_total_keys", "tracking_total_items", "tracking_total_prefixes"), tracking_info(s), strict=True),
        ("unexpected_error_replies", s.stat_unexpected_error_replies),
        ("total_error_replies", s.stat_total_error_replies),
        ("dump_payload_sanitizations", s.stat_dump_payload_sanitizations),
        ("total_reads_processed", s.stat_total_reads_processed),
        ("total_writes_processed", s.stat_total_writes_processed),
        ("io_threaded_reads_processed", s.stat_io_reads_processed),
        ("io_threaded_writes_processed", s.stat_io_writes_processed),
        ("reply_buffer_shrinks", 0),
        ("reply_buffer_expands", 0),
    ]


def _section_replication(srv: Server) -> list[tuple[str, Any]]:
    """INFO replication: server/replication.py's fields (spec §17); a bare
    server without the replication state (unit tests) is a lone primary."""
    repl = getattr(srv, "repl", None)
    if repl is not None:
        return repl.info_fields()  # type: ignore[no-any-return]
    replid, replid2, offset, second = _replid(srv)
    return [
        ("role", "slave" if srv.is_replica else "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", replid),
        ("master_replid2", replid2),
        ("master_repl_offset", offset),
        ("second_repl_offset", second),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", srv.cfg.repl_backlog_size),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


def _tv(t: float) -> str:
    sec = int(t)
    usec = int(round((t - sec) * 1_000_000)) % 1_000_000
    return f"{sec}.{usec:06d}"


def _section_cpu(srv: Server) -> list[tuple[str, Any]]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = [
        ("used_cpu_sys", _tv(me.ru_stime)),
        ("used_cpu_user", _tv(me.ru_utime)),
        ("used_cpu_sys_children", _tv(ch.ru_stime)),
        ("used_cpu_user_children", _tv(ch.ru_utime)),
    ]
    thread = getattr(resource, "RUSAGE_THREAD", None)
    if thread is not None:
        th = resource.getrusage(thread)
        out += [("used_cpu_sys_main_thread", _tv(th.ru_stime)), ("used_cpu_user_main_thread", _tv(th.ru_utime))]
    return out


def _section_commandstats(srv: Server) -> list[tuple[str, Any]]:
    out = []
    for cmd in registry.all_commands():
        if cmd.calls or cmd.failed_calls or cmd.rejected_calls:
            per = cmd.usec / cmd.calls if cmd.calls else 0.0
            out.append((
                "cmdstat_" + _safe(cmd.fullname),
                f"calls={cmd.calls},usec={cmd.usec},usec_per_call={per:.2f},"
                f"rejected_calls={cmd.rejected_calls},failed_calls={cmd.failed_calls}",
            ))
    return out


def _section_errorstats(srv: Server) -> list[tuple[str, Any]]:
    return [
        ("errorstat_" + _safe(code.decode("latin-1")), f"count={n}")
        for code, n in sorted(srv.errorstats.items())
    ]


def _percentile_label(p: float) -> str:
    """sprintf("%f") with trailing zeros (and a bare dot) trimmed."""
    s = f"{p:f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _section_latencystats(srv: Server) -> list[tuple[str, Any]]:
    if not srv.cfg.latency_tracking:
        return []
    hists = _state(srv).hists
    pcts = list(srv.cfg.latency_tracking_info_percentiles)
    out = []
    for cmd in registry.all_commands():
        h = hists.get(cmd)
        if h is None:
            continue
        parts = [f"p{_percentile_label(p)}={h.value_at_percentile(p) / 1000.0:.3f}" for p in pcts]
        out.append(("latency_percentiles_usec_" + _safe(cmd.fullname), ",".join(parts)))
    return out


def _section_keyspace(srv: Server) -> list[tuple[str, Any]]:
    out = []
    for db in srv.dbs:
        keys = len(db.data)
        vkeys = len(db.expires)
        if keys or vkeys:
            out.append((f"db{db.id}", f"keys={keys},expires={vkeys},avg_ttl={db.avg_ttl}"))
    return out


_SECTIONS: list[tuple[str, str, Callable[[Server], list[tuple[str, Any]]]]] = [
    ("server", "Server", _section_server),
    ("clients", "Clients", _section_clients),
    ("memory", "Memory", _section_memory),
    ("persistence", "Persistence", _section_persistence),
    ("stats", "Stats", _section_stats),
    ("replication", "Replication", _section_replication),
    ("cpu", "CPU", _section_cpu),
    ("modules", "Modules", lambda srv: []),
    ("commandstats", "Commandstats", _section_commandstats),
    ("errorstats", "Errorstats", _section_errorstats),
    ("latencystats", "Latencystats", _section_latencystats),
    ("cluster", "Cluster", lambda srv: [("cluster_enabled", 0)]),
    ("keyspace", "Keyspace", _section_keyspace),
]


def info_sections(args: list[bytes]) -> tuple[set[str], bool]:
    """genInfoSectionDict: (requested section names, all sections)."""
    if not args:
        return set(_DEFAULT_SECTIONS), False
    wanted: set[str] = set()
    everything = False
    for a in args:
        name = a.decode("latin-1").lower()
        if name == "default":
            wanted.update(_DEFAULT_SECTIONS)
        elif name in ("all", "everything"):
            everything = True
        else:
            wanted.add(name)
    return wanted, everything


def gen_info(srv: Server, args: list[bytes]) -> bytes:
    """genRedisInfoString: the INFO text for the given arguments."""
    wanted, all_sections = info_sections(args)
    chunks = []
    for key, title, fn in _SECTIONS:
        if key == "modules":
            if not (all_sections or "modules" in wanted or "module_list" in wanted):
                continue
        elif not (all_sections or key in wanted):
            continue
        provider = INFO_SECTION_PROVIDERS.get(key)
        lines = provider(srv) if provider is not None else fn(srv)
        body = "".join(f"{k}:{v}\r\n" for k, v in lines)
        chunks.append(f"# {title}\r\n{body}")
    return "\r\n".join(chunks).encode("utf-8", "surrogateescape")


@command("info")
def info(c: Client, argv: list[bytes]) -> Any:
    """INFO [section ...]: default, all, everything or named sections."""
    return Verbatim(gen_info(c.srv, argv[1:]))


# -- CONFIG ------------------------------------------------------------------------------


def is_local_client(c: Client) -> bool:
    """islocalClient: a unix socket or a loopback address (fake clients count as local)."""
    if c.fake:
        return True
    t = c.transport
    sock = t.get_extra_info("socket") if t is not None else None
    if sock is not None and getattr(sock, "family", None) == socket.AF_UNIX:
        return True
    host = c.addr.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host == "::1"


def subcommand_syntax_error(argv: list[bytes]) -> Err:
    """addReplySubcommandSyntaxError: a known subcommand with the wrong arguments."""
    return Err(b"ERR unknown subcommand or wrong number of arguments for '" + cstr(argv[1])
               + b"'. Try " + argv[0].upper() + b" HELP.")


@command("config|get")
def config_get(c: Client, argv: list[bytes]) -> Any:
    """CONFIG GET pattern [pattern ...]: a map of matching directives."""
    return Map(c.srv.cfg.get(argv[2:]))


@command("config|set")
def config_set(c: Client, argv: list[bytes]) -> Any:
    """CONFIG SET name value [name value ...], all or nothing; side effects via hooks."""
    if len(argv) % 2:
        raise ERR_SYNTAX
    pairs = [(argv[i], argv[i + 1]) for i in range(2, len(argv), 2)]
    c.srv.cfg.set(pairs, local=is_local_client(c), loading=c.srv.loading)
    return OK


@command("config|resetstat")
def config_resetstat(c: Client, argv: list[bytes]) -> Any:
    """CONFIG RESETSTAT: counters, command stats, error stats, latency histograms."""
    srv = c.srv
    srv.reset_stats()
    from .. import aof

    aof.reset_stats(srv)  # the aof_rewrites / aof_delayed_fsync INFO counters
    _state(srv).hists.clear()
    from .introspection import _meter

    _meter(srv).peak = 0
    return OK


@command("config|rewrite")
def config_rewrite(c: Client, argv: list[bytes]) -> Any:
    try:
        c.srv.cfg.rewrite()
    except Err as e:
        if e.msg.startswith(b"ERR Rewriting"):
            log.warning("CONFIG REWRITE failed: " + e.msg.split(b": ", 1)[-1].decode("utf-8", "replace"))
        raise
    log.notice("CONFIG REWRITE executed with success.")
    return OK


@command("config|help")
def config_help(c: Client, argv: list[bytes]) -> Any:
    return help_reply("CONFIG", [
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
    ])


def _install_config_hooks(srv: Server) -> None:
    """Side effects of CONFIG SET on the running server (config.c apply functions)."""
    cfg = srv.cfg

    def relog(old: Any, new: Any) -> None:
        log.configure(cfg.loglevel, cfg.logfile)

    def hz(old: Any, new: Any) -> None:
        srv.hz = cfg.hz

    def maxmemory(old: Any, new: Any) -> None:
        if cfg.maxmemory:
            used = estimate_used_memory(srv)
            if cfg.maxmemory < used:
                log.warning(
                    f"WARNING: the new maxmemory value set via CONFIG SET ({cfg.maxmemory}) is smaller than "
                    f"the current memory usage ({used}). This will result in key eviction and/or the "
                    "inability to accept new write commands depending on the maxmemory-policy."
                )
            evict_until_fits(srv)

    def latency_tracking(old: Any, new: Any) -> None:
        if not new:
            _state(srv).hists.clear()
        update_latency_hook(srv)

    def latency_threshold(old: Any, new: Any) -> None:
        update_latency_hook(srv)

    for name, fn in (("loglevel", relog), ("logfile", relog), ("hz", hz), ("maxmemory", maxmemory),
                     ("latency-tracking", latency_tracking),
                     ("latency-monitor-threshold", latency_threshold)):
        try:
            cfg.add_hook(name, fn)
        except (KeyError, AttributeError):
            pass


# -- TIME / LASTSAVE ----------------------------------------------------------------------


@command("time")
def time_(c: Client, argv: list[bytes]) -> Any:
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


@command("lastsave")
def lastsave(c: Client, argv: list[bytes]) -> Any:
    return int(c.srv.last_save)


# -- SLOWLOG ----------------------------------------------------------------------------------


@command("slowlog|get")
def slowlog_get(c: Client, argv: list[bytes]) -> Any:
    """SLOWLOG GET [count]: newest first; -1 means all."""
    count = 10
    if len(argv) == 3:
        try:
            count = get_ll(argv[2])
        except Err:
            count = -2
        if count < -1:
            raise Err("ERR count should be greater than or equal to -1")
        if count == -1:
            count = len(c.srv.slowlog)
    elif len(argv) > 3:
        raise subcommand_syntax_error(argv)
    out = []
    for e in list(c.srv.slowlog)[:count]:
        out.append([e.id, e.time, e.duration, list(e.argv), e.addr.encode(), bytes(e.name or b"")])
    return out


@command("slowlog|len")
def slowlog_len(c: Client, argv: list[bytes]) -> Any:
    return len(c.srv.slowlog)


@command("slowlog|reset")
def slowlog_reset(c: Client, argv: list[bytes]) -> Any:
    c.srv.slowlog.clear()
    return OK


@command("slowlog|help")
def slowlog_help(c: Client, argv: list[bytes]) -> Any:
    return help_reply("SLOWLOG", [
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
    ])


# -- latency monitor and histograms --------------------------------------------------------

LATENCY_TS_LEN = 160


def latency_add_sample(srv: Server, event: str, latency_ms: int) -> None:
    """latencyAddSample: one sample per second per event, keeping the worst."""
    ts = srv.latency_events.get(event)
    now = int(time.time())
    if ts is None:
        ts = srv.latency_events[event] = deque(maxlen=LATENCY_TS_LEN)
    if latency_ms > srv.latency_max.get(event, 0):
        srv.latency_max[event] = latency_ms
    if ts and ts[-1][0] == now:
        if latency_ms > ts[-1][1]:
            ts[-1] = (now, latency_ms)
        return
    ts.append((now, latency_ms))


def latency_add_sample_if_needed(srv: Server, event: str, latency_ms: int) -> None:
    """latencyAddSampleIfNeeded: only at or above latency-monitor-threshold."""
    thr = srv.cfg.latency_monitor_threshold
    if thr and latency_ms >= thr:
        latency_add_sample(srv, event, latency_ms)


_HDR_MAX = 1_000_000_000  # LATENCY_HISTOGRAM_MAX_VALUE (ns)
_HDR_COUNTS_LEN = 3072  # (23 buckets + 1) * 128 for 1 ns .. 1 s at 2 significant digits


def _hdr_bucket(v: int) -> tuple[int, int]:
    b = (v | 255).bit_length() - 8
    return b, v >> b


def _hdr_value_at_index(idx: int) -> int:
    bucket = (idx >> 7) - 1
    sub = (idx & 127) + 128
    if bucket < 0:
        sub -= 128
        bucket = 0
    return sub << bucket


def _hdr_lowest_equivalent(v: int) -> int:
    b, sub = _hdr_bucket(v)
    return sub << b


def _hdr_highest_equivalent(v: int) -> int:
    b, sub = _hdr_bucket(v)
    size = 1 << (b + 1 if sub >= 256 else b)
    return (sub << b) + size - 1


class LatencyHistogram:
    """An HdrHistogram (1 ns .. 1 s, 2 significant figures) of command durations."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * _HDR_COUNTS_LEN
        self.total = 0

    def record(self, ns: int, n: int = 1) -> None:
        if ns < 1:
            ns = 1
        elif ns > _HDR_MAX:
            ns = _HDR_MAX
        b = (ns | 255).bit_length() - 8
        self.counts[((b + 1) << 7) + (ns >> b) - 128] += n
        self.total += n

    def value_at_percentile(self, p: float) -> int:
        """hdr_value_at_percentile (ns)."""
        want = int((min(p, 100.0) / 100) * self.total + 0.5)
        want = max(want, 1)
        acc = 0
        for idx, n in enumerate(self.counts):
            acc += n
            if acc >= want:
                v = _hdr_value_at_index(idx)
                return _hdr_lowest_equivalent(v) if p == 0.0 else _hdr_highest_equivalent(v)
        return 0

    def cdf(self) -> list[tuple[int, int]]:
        """fillCommandCDF: (usec upper bound, cumulative calls) at power-of-two levels from 1024 ns."""
        counts = self.counts
        total = self.total
        out: list[tuple[int, int]] = []
        idx = -1
        cumulative = 0
        value = 0
        hev = 0
        level = 1024
        level_leq = _hdr_lowest_equivalent(level)
        prev = 0
        while True:
            if not (cumulative < total or (idx < _HDR_COUNTS_LEN and idx + 1 < _HDR_COUNTS_LEN
                                           and _hdr_value_at_index(idx + 1) > level_leq)):
                break
            # log_iter_next
            while True:
                if value >= level_leq:
                    level *= 2
                    level_leq = _hdr_lowest_equivalent(level)
                    break
                idx += 1
                if idx >= _HDR_COUNTS_LEN:
                    break
                cumulative += counts[idx]
                value = _hdr_value_at_index(idx)
                hev = _hdr_highest_equivalent(value)
            if cumulative > prev:
                out.append((hev // 1000, cumulative))
            prev = cumulative
            if idx >= _HDR_COUNTS_LEN:
                break
        return out


class _RawHists:
    """The latency histograms, built from the per-command counts of exact
    durations (µs) call() keeps in ``Command.lat`` -- the cheapest thing it
    can update -- when LATENCY HISTOGRAM or INFO latencystats read them
    (durations are whole µs, so nothing is lost)."""

    __slots__ = ()

    def get(self, cmd: registry.Command) -> LatencyHistogram | None:
        d = cmd.latency_counts()
        if not d:
            return None
        h = LatencyHistogram()
        for us, n in d.items():
            h.record(us * 1000, n)
        return h

    def clear(self) -> None:
        for cmd in registry.all_commands():
            cmd.lat = [0] * registry.LAT_SMALL
            cmd.lat_big = {}


def record_command_latency(srv: Server, cmd: registry.Command, dur_us: int) -> None:
    """What call() records after a command: its latency histogram (latency-tracking)
    and a latency-monitor sample ("command" / "fast-command") above the threshold."""
    cfg = srv.cfg
    if cfg.latency_tracking:
        cmd.count_latency(dur_us)
    thr = cfg.latency_monitor_threshold
    if thr and dur_us // 1000 >= thr:
        latency_add_sample(srv, "fast-command" if cmd.fast else "command", dur_us // 1000)


def _monitor_latency(srv: Server, cmd: registry.Command, dur_us: int) -> None:
    """The latency monitor's "command" / "fast-command" samples."""
    thr = srv.cfg.latency_monitor_threshold
    if thr and dur_us // 1000 >= thr:
        latency_add_sample(srv, "fast-command" if cmd.fast else "command", dur_us // 1000)


def update_latency_hook(srv: Server) -> None:
    """call() counts durations into ``Command.lat`` while latency-tracking
    is on, and runs ``srv.latency_hook`` while the latency monitor is on, so
    neither costs anything when off."""
    cfg = srv.cfg
    srv.track_latency = bool(cfg.latency_tracking)  # type: ignore[attr-defined]
    hook: Any = _monitor_latency if cfg.latency_monitor_threshold else None
    srv.latency_hook = hook  # type: ignore[attr-defined]


def _hist_reply(h: LatencyHistogram) -> Map:
    return Map([(b"calls", h.total), (b"histogram_usec", Map(h.cdf()))])


@command("latency|histogram")
def latency_histogram(c: Client, argv: list[bytes]) -> Any:
    """LATENCY HISTOGRAM [command ...]: cumulative distributions per command."""
    hists = _state(c.srv).hists
    pairs = []
    if len(argv) == 2:
        for cmd in registry.all_commands():
            h = hists.get(cmd)
            if h is not None:
                pairs.append((cmd.bname, _hist_reply(h)))
        return Map(pairs)
    for name in argv[2:]:
        cmd = registry.lookup_name(name)
        if cmd is None:
            continue
        h = hists.get(cmd)
        if h is not None:
            pairs.append((cmd.bname, _hist_reply(h)))
        for sub in cmd.subcommands.values():
            hs = hists.get(sub)
            if hs is not None:
                pairs.append((sub.bname, _hist_reply(hs)))
    return Map(pairs)


@command("latency|latest")
def latency_latest(c: Client, argv: list[bytes]) -> Any:
    srv = c.srv
    out = []
    for event, ts in srv.latency_events.items():
        t, lat = ts[-1] if ts else (0, 0)
        out.append([event.encode(), t, lat, srv.latency_max.get(event, 0)])
    return out


@command("latency|history")
def latency_history(c: Client, argv: list[bytes]) -> Any:
    ts = c.srv.latency_events.get(argv[2].decode("utf-8", "surrogateescape"))
    if ts is None:
        return []
    return [[t, lat] for t, lat in ts]


@command("latency|reset")
def latency_reset(c: Client, argv: list[bytes]) -> Any:
    """LATENCY RESET [event ...]: the number of event series removed."""
    srv = c.srv
    if len(argv) == 2:
        n = len(srv.latency_events)
        srv.latency_events.clear()
        srv.latency_max.clear()
        return n
    resets = 0
    for name in argv[2:]:
        target = name.decode("utf-8", "surrogateescape").lower()
        for event in list(srv.latency_events):
            if event.lower() == target:
                del srv.latency_events[event]
                srv.latency_max.pop(event, None)
                resets += 1
    return resets


def _sparkline(samples: list[tuple[float, str]], columns: int = 80, rows: int = 4) -> str:
    """sparklineRender with SPARKLINE_FILL (sparkline.c)."""
    charset_fill = "_o#"
    out = []
    if not samples:
        return ""
    values = [v for v, _ in samples]
    lo, hi = min(values), max(values)
    for start in range(0, len(samples), columns):
        part = samples[start:start + columns]
        if start:
            out.append("\n")
        relmax = hi - lo or 1
        steps = 3 * rows
        row = 0
        while True:
            chars = [" "] * len(part)
            loop = False
            for j, (v, label) in enumerate(part):
                step = int(int((v - lo) * steps) / relmax)
                step = min(max(step, 0), steps - 1)
                if row < rows:
                    idx = step - (rows - row - 1) * 3
                    loop = True
                    if 0 <= idx < 3:
                        chars[j] = charset_fill[idx]
                    elif idx >= 3:
                        chars[j] = "|"
                else:
                    if row - rows < 1:
                        loop = True
                        break
                    lc = row - rows - 1
                    if len(label) > lc:
                        loop = True
                        chars[j] = label[lc]
            if not loop:
                break
            row += 1
            out.append("".join(chars) + "\n")
    return "".join(out)


@command("latency|graph")
def latency_graph(c: Client, argv: list[bytes]) -> Any:
    """LATENCY GRAPH event: an ASCII sparkline of the event's samples."""
    srv = c.srv
    name = argv[2].decode("utf-8", "surrogateescape")
    ts = srv.latency_events.get(name)
    if ts is None:
        raise Err(b"ERR No samples available for event '" + argv[2] + b"'")
    now = int(time.time())
    samples = []
    for t, lat in ts:
        elapsed = now - t
        if elapsed < 60:
            label = f"{elapsed}s"
        elif elapsed < 3600:
            label = f"{elapsed // 60}m"
        elif elapsed < 86400:
            label = f"{elapsed // 3600}h"
        else:
            label = f"{elapsed // 86400}d"
        samples.append((float(lat), label))
    lats = [lat for _, lat in ts] or [0]
    text = f"{name} - high {max(lats)} ms, low {min(lats)} ms (all time high {srv.latency_max.get(name, 0)} ms)\n"
    text += "-" * 80 + "\n" + _sparkline(samples)
    return Verbatim(text.encode())


def _anon_huge_pages() -> int:
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def latency_report(srv: Server) -> str:
    """createLatencyReport (LATENCY DOCTOR)."""
    cfg = srv.cfg
    threshold = cfg.latency_monitor_threshold
    if not srv.latency_events and threshold == 0:
        return (
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may "
            "use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't "
            "in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
        )
    adv: dict[str, bool] = {}
    advices = 0
    report = ""
    now = int(time.time())
    eventnum = 0
    for event, ts in srv.latency_events.items():
        eventnum += 1
        if eventnum == 1:
            report += ("Dave, I have observed latency spikes in this Redis instance. You don't mind talking "
                       "about it, do you Dave?\n\n")
        lats = [lat for _, lat in ts]
        samples = len(lats)
        avg = sum(lats) // samples if samples else 0
        mad = sum(abs(avg - x) for x in lats) // samples if samples else 0
        period = now - min(t for t, _ in ts) if samples else 0
        if samples and period == 0:
            period = 1
        report += (
            f"{eventnum}. {event}: {samples} latency spikes (average {avg}ms, mean deviation {mad}ms, "
            f"period {period / samples if samples else 0:.2f} sec). Worst all time event "
            f"{srv.latency_max.get(event, 0)}ms."
        )
        ev = event.lower()
        if ev == "fork":
            rate = float(getattr(srv, "stat_fork_rate", 0.0))
            if rate < 10:
                quality = "terrible"
                adv["better_vm"] = True
                advices += 1
            elif rate < 25:
                quality = "poor"
                adv["better_vm"] = True
                advices += 1
            elif rate < 100:
                quality = "good"
            else:
                quality = "excellent"
            report += f" Fork rate is {rate:.2f} GB/sec ({quality})."
        if ev == "command":
            if cfg.slowlog_log_slower_than < 0:
                adv["slowlog_enabled"] = True
                advices += 1
            elif cfg.slowlog_log_slower_than // 1000 > threshold:
                adv["slowlog_tuning"] = True
                advices += 1
            adv["slowlog_inspect"] = True
            adv["large_objects"] = True
            advices += 2
        if ev == "fast-command":
            adv["scheduler"] = True
            advices += 1
        if ev == "aof-write-pending-fsync":
            for k in ("local_disk", "disk_contention", "ssd", "data_writeback"):
                adv[k] = True
            advices += 4
        if ev == "aof-write-active-child":
            for k in ("no_appendfsync", "data_writeback", "ssd"):
                adv[k] = True
            advices += 3
        if ev == "aof-write-alone":
            for k in ("local_disk", "data_writeback", "ssd"):
                adv[k] = True
            advices += 3
        if ev == "aof-fsync-always":
            adv["relax_fsync_policy"] = True
            advices += 1
        if ev in ("aof-fstat", "rdb-unlink-temp-file"):
            adv["disk_contention"] = adv["local_disk"] = True
            advices += 2
        if ev in ("aof-rewrite-diff-write", "aof-rename"):
            for k in ("write_load_info", "data_writeback", "ssd", "local_disk"):
                adv[k] = True
            advices += 4
        if ev == "expire-cycle":
            adv["hz"] = adv["large_objects"] = True
            advices += 2
        if ev == "eviction-del":
            adv["large_objects"] = True
            advices += 1
        if ev == "eviction-cycle":
            adv["mass_eviction"] = True
            advices += 1
        report += "\n"
    if _anon_huge_pages() > 0:
        adv["disable_thp"] = True
        advices += 1
    if eventnum == 0 and advices == 0:
        return report + (
            "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the "
            "slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think "
            "things over.\n"
        )
    if eventnum > 0 and advices == 0:
        return report + (
            "\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the "
            "Redis community to get some help, providing this report in your help request.\n"
        )
    report += "\nI have a few advices for you:\n\n"
    if adv.get("better_vm"):
        report += (
            "- If you are using a virtual machine, consider upgrading it with a faster one using a hypervisior "
            "that provides less latency during fork() calls. Xen is known to have poor fork() performance. "
            "Even in the context of the same VM provider, certain kinds of instances can execute fork faster "
            "than others.\n")
    if adv.get("slowlog_enabled"):
        report += (
            "- There are latency issues with potentially slow commands you are using. Try to enable the Slow "
            f"Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {threshold * 1000}'. "
            "If the Slow log is disabled Redis is not able to log slow commands execution for you.\n")
    if adv.get("slowlog_tuning"):
        report += (
            "- Your current Slow Log configuration only logs events that are slower than your configured "
            f"latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {threshold * 1000}'.\n")
    if adv.get("slowlog_inspect"):
        report += (
            "- Check your Slow Log to understand what are the commands you are running which are too slow to "
            "execute. Please check https://redis.io/commands/slowlog for more information.\n")
    if adv.get("scheduler"):
        report += (
            "- The system is slow to execute Redis code paths not containing system calls. This usually means "
            "the system does not provide Redis CPU time to run for long periods. You should try to:\n"
            "  1) Lower the system load.\n"
            "  2) Use a computer / VM just for Redis if you are running other software in the same system.\n"
            "  3) Check if you have a \"noisy neighbour\" problem.\n"
            "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n"
            "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are "
            "using Jemalloc. However this may create fragmentation problems.\n")
    if adv.get("local_disk"):
        report += (
            "- It is strongly advised to use local disks for persistence, especially if you are using AOF. "
            "Remote disks provided by platform-as-a-service providers are known to be slow.\n")
    if adv.get("ssd"):
        report += (
            "- SSD disks are able to reduce fsync latency, and total time needed for snapshotting and AOF log "
            "rewriting (resulting in smaller memory usage). With extremely high write load SSD disks can be a "
            "good option. However Redis should perform reasonably with high load using normal disks. Use this "
            "advice as a last resort.\n")
    if adv.get("data_writeback"):
        report += (
            "- Mounting ext3/4 filesystems with data=writeback can provide a performance boost compared to "
            "data=ordered, however this mode of operation provides less guarantees, and sometimes it can "
            "happen that after a hard crash the AOF file will have a half-written command at the end and will "
            "require to be repaired before Redis restarts.\n")
    if adv.get("disk_contention"):
        report += (
            "- Try to lower the disk contention. This is often caused by other disk intensive processes "
            "running in the same computer (including other Redis instances).\n")
    if adv.get("no_appendfsync"):
        report += (
            "- Assuming from the point of view of data safety this is viable in your environment, you could "
            "try to enable the 'no-appendfsync-on-rewrite' option, so that fsync will not be performed while "
            "there is a child rewriting the AOF file or producing an RDB file (the moment where there is high "
            "disk contention).\n")
    if adv.get("relax_fsync_policy") and cfg.appendfsync == "always":
        report += (
            "- Your fsync policy is set to 'always'. It is very hard to get good performances with such a "
            "setup, if possible try to relax the fsync policy to 'onesec'.\n")
    if adv.get("write_load_info"):
        report += (
            "- Latency during the AOF atomic rename operation or when the final difference is flushed to the "
            "AOF file at the end of the rewrite, sometimes is caused by very high write load, causing the AOF "
            "buffer to get very large. If possible try to send less commands to accomplish the same work, or "
            "use Lua scripts to group multiple operations into a single EVALSHA call.\n")
    if adv.get("hz") and srv.hz < 100:
        report += (
            "- In order to make the Redis keys expiring process more incremental, try to set the 'hz' "
            "configuration parameter to 100 using 'CONFIG SET hz 100'.\n")
    if adv.get("large_objects"):
        report += (
            "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking "
            "operation. If you have very large objects that are often deleted, expired, or evicted, try to "
            "fragment those objects into multiple smaller objects.\n")
    if adv.get("mass_eviction"):
        report += (
            "- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via "
            "sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations "
            "(RESTORE command), may create sudden memory pressure forcing the server to block trying to evict "
            "keys. \n")
    if adv.get("disable_thp"):
        report += (
            "- I detected a non zero amount of anonymous huge pages used by your process. This creates very "
            "serious latency events in different conditions, especially when Redis is persisting on disk. To "
            "disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', "
            "make sure to also add it into /etc/rc.local so that the command will be executed again after a "
            "reboot. Note that even if you have already disabled THP, you still need to restart the Redis "
            "process to get rid of the huge pages already created.\n")
    return report


@command("latency|doctor")
def latency_doctor(c: Client, argv: list[bytes]) -> Any:
    return Verbatim(latency_report(c.srv).encode())


@command("latency|help")
def latency_help(c: Client, argv: list[bytes]) -> Any:
    return help_reply("LATENCY", [
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the specified "
        "command names.",
        "    If no commands are specified then all histograms are replied.",
    ])


# -- MONITOR / SHUTDOWN -------------------------------------------------------------------------


@command("monitor")
def monitor(c: Client, argv: list[bytes]) -> Any:
    """MONITOR: stream every command to this client (core.Server.feed_monitors)."""
    if c.in_exec:
        raise Err("ERR MONITOR isn't allowed for DENY BLOCKING client")
    if c.monitor or c.is_replica:
        return NOREPLY  # already a monitor (or a replica): ignored, no reply
    c.monitor = True
    c.srv.monitors.append(c)
    update_gate(c.srv)
    return OK


def update_gate(srv: Server) -> None:
    """Tell the execution entry that a server-wide check (pause, MONITOR) changed."""
    fn = getattr(srv, "update_gate", None)
    if fn is not None:
        fn()


@command("shutdown")
def shutdown(c: Client, argv: list[bytes]) -> Any:
    """SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]."""
    save: bool | None = None
    nosave = dosave = now = force = abort = False
    for a in argv[1:]:
        opt = a.lower()
        if opt == b"nosave":
            nosave = True
        elif opt == b"save":
            dosave = True
        elif opt == b"now":
            now = True
        elif opt == b"force":
            force = True
        elif opt == b"abort":
            abort = True
        else:
            raise ERR_SYNTAX
    if (abort and (nosave or dosave or now or force)) or (nosave and dosave):
        raise ERR_SYNTAX
    if abort:
        abort_fn = getattr(c.srv, "abort_shutdown", None)
        if abort_fn is not None and abort_fn():
            return OK
        raise Err("ERR No shutdown in progress.")
    if not now and c.in_exec:
        raise Err("ERR SHUTDOWN without NOW or ABORT isn't allowed for DENY BLOCKING client")
    if nosave:
        save = False
    elif dosave:
        save = True
    srv = c.srv
    if srv.prepare_shutdown(save, now, force) is not None:
        raise Err("ERR Errors trying to SHUTDOWN. Check logs.")
    srv.exit_code = 0
    srv.stop()
    return NOREPLY


# -- LOLWUT -------------------------------------------------------------------------------------


class _Canvas:
    """lwCanvas: a width x height grid of small integers (colors)."""

    __slots__ = ("width", "height", "pixels")

    def __init__(self, width: int, height: int, bg: int = 0) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray([bg]) * (width * height)

    def draw(self, x: int, y: int, color: int) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.pixels[x + y * self.width] = color

    def get(self, x: int, y: int) -> int:
        if 0 <= x < self.width and 0 <= y < self.height:
            return self.pixels[x + y * self.width]
        return 0

    def line(self, x1: int, y1: int, x2: int, y2: int, color: int) -> None:
        """Bresenham, as lwDrawLine."""
        dx, dy = abs(x2 - x1), abs(y2 - y1)
        sx = 1 if x1 < x2 else -1
        sy = 1 if y1 < y2 else -1
        err = dx - dy
        while True:
            self.draw(x1, y1, color)
            if x1 == x2 and y1 == y2:
                break
            e2 = err * 2
            if e2 > -dy:
                err -= dy
                x1 += sx
            if e2 < dx:
                err += dx
                y1 += sy

    def square(self, x: int, y: int, size: float, angle: float, color: int) -> None:
        """lwDrawSquare: a square centred at x,y rotated by angle."""
        size = _c_round(size / 1.4142135623)
        k = math.pi / 4 + angle
        px, py = [], []
        for _ in range(4):
            px.append(int(_c_round(math.sin(k) * size + x)))
            py.append(int(_c_round(math.cos(k) * size + y)))
            k += math.pi / 2
        for j in range(4):
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color)


def _c_round(v: float) -> float:
    """C round(): halves away from zero."""
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


_RAND_MAX = 2**31 - 1


def _rand() -> int:
    return random.randrange(_RAND_MAX + 1)


def _schotter(cols: int, per_row: int, per_col: int) -> _Canvas:
    """lwDrawSchotter (Georg Nees, 1968): squares growing disorderly row by row."""
    width = cols * 2
    padding = 2 if width > 4 else 0
    side = (width - padding * 2) / per_row
    height = int(side * per_col + padding * 2)
    canvas = _Canvas(width, height, 0)
    for y in range(per_col):
        for x in range(per_row):
            sx = int(x * side + side / 2 + padding)
            sy = int(y * side + side / 2 + padding)
            angle = 0.0
            if y > 1:
                r1 = _rand() / _RAND_MAX / per_col * y
                r2 = _rand() / _RAND_MAX / per_col * y
                r3 = _rand() / _RAND_MAX / per_col * y
                if _rand() % 2:
                    r1 = -r1
                if _rand() % 2:
                    r2 = -r2
                if _rand() % 2:
                    r3 = -r3
                angle = r1
                sx = int(sx + r2 * side / 3)
                sy = int(sy + r3 * side / 3)
            canvas.square(sx, sy, side, angle, 1)
    return canvas


def _render_braille(canvas: _Canvas) -> str:
    """renderCanvas of LOLWUT 5: 2x4 pixel groups as Braille characters."""
    rows = []
    for y in range(0, canvas.height, 4):
        line = []
        for x in range(0, canvas.width, 2):
            g = canvas.get
            byte = (g(x, y) and 1) | (g(x, y + 1) and 2) | (g(x, y + 2) and 4) | (g(x + 1, y) and 8) \
                | (g(x + 1, y + 1) and 16) | (g(x + 1, y + 2) and 32) | (g(x, y + 3) and 64) \
                | (g(x + 1, y + 3) and 128)
            line.append(chr(0x2800 + byte))
        rows.append("".join(line))
    text = ""
    for i, y in enumerate(range(0, canvas.height, 4)):
        text += rows[i]
        if y != canvas.height - 1:
            text += "\n"
    return text


def _lolwut5(args: list[bytes]) -> bytes:
    vals = [66, 8, 12]
    for i, a in enumerate(args[:3]):
        vals[i] = get_ll(a)
    cols = min(max(vals[0], 1), 1000)
    per_row = min(max(vals[1], 1), 200)
    per_col = min(max(vals[2], 1), 200)
    text = _render_braille(_schotter(cols, per_row, per_col))
    text += f"\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {REDIS_VERSION}\n"
    return text.encode()


def _skyscraper(canvas: _Canvas, xoff: int, width: int, height: int, windows: bool, color: int) -> None:
    starty = canvas.height - 1
    endy = starty - height + 1
    for y in range(starty, endy - 1, -1):
        for x in range(xoff, xoff + width):
            if y == endy and (x <= xoff + 1 or x >= xoff + width - 2):
                continue
            c = color
            if windows and xoff + 1 < x < xoff + width - 2 and endy + 1 < y < starty - 1:
                relx = x - (xoff + 1)
                rely = y - (endy + 1)
                if (relx // 2) % 2 and rely % 2:
                    while True:
                        c = 1 + _rand() % 2
                        if c != color:
                            break
                    if relx % 2:
                        c = canvas.get(x - 1, y)
            canvas.draw(x, y, c)


def _skyline(canvas: _Canvas) -> None:
    """generateSkyline of LOLWUT 6 (parallax skyscrapers of 8 bit games)."""
    h = canvas.height
    for color in (2, 1):
        offset = -10
        while offset < canvas.width:
            offset += _rand() % 8
            width = 10 + _rand() % 9
            if color == 2:
                height = h // 2 + (_rand() % h) // 2
            else:
                height = h // 2 + (_rand() % h) // 3
            _skyscraper(canvas, offset, width, height, False, color)
            offset += width // 2 if color == 2 else width + 1
    offset = -10
    while offset < canvas.width:
        offset += _rand() % 8
        width = 5 + _rand() % 14
        if width % 4:
            width += width % 3
        height = h // 3 + (_rand() % h) // 2
        _skyscraper(canvas, offset, width, height, True, 0)
        offset += width + 5


_GRAYS = {0: "0;30;40m", 1: "0;90;100m", 2: "0;37;47m", 3: "0;97;107m"}


def _lolwut6(args: list[bytes]) -> bytes:
    cols, rows = 80, 20
    if len(args) > 0:
        cols = get_ll(args[0])
    if len(args) > 1:
        rows = get_ll(args[1])
    cols = min(max(cols, 1), 1000)
    rows = min(max(rows, 1), 1000)
    canvas = _Canvas(cols, rows, 3)
    _skyline(canvas)
    lines = []
    for y in range(rows):
        lines.append("".join(f"\033[{_GRAYS.get(canvas.get(x, y), _GRAYS[0])} \033[0m" for x in range(cols)))
    text = "\n".join(lines)
    text += ("\nDedicated to the 8 bit game developers of past and present.\n"
             f"Original 8 bit image from Plaguemon by hikikomori. Redis ver. {REDIS_VERSION}\n")
    return text.encode()


@command("lolwut")
def lolwut(c: Client, argv: list[bytes]) -> Any:
    """LOLWUT [VERSION v] [...]: 7.0 has no art of its own, 5 and 6 draw theirs."""
    v = REDIS_VERSION
    args = argv[1:]
    if len(argv) >= 3 and argv[1].lower() == b"version":
        ver = get_ll(argv[2])
        v = f"{ver & 0xFFFFFFFF}.0.0"
        args = argv[3:]
    if (v[0] == "5" and v[1] == "." and v[2] != "9") or (v[0] == "4" and v[1] == "." and v[2] == "9"):
        return Verbatim(_lolwut5(args))
    if (v[0] == "6" and v[1] == "." and v[2] != "9") or (v[0] == "5" and v[1] == "." and v[2] == "9"):
        return Verbatim(_lolwut6(args))
    return Verbatim(f"Redis ver. {REDIS_VERSION}\n".encode())


# -- installation -------------------------------------------------------------------------------


def install(srv: Server) -> None:
    """CONFIG SET side effects and this module's per-server state."""
    _STATES[srv] = _ServerState()
    _install_config_hooks(srv)
    update_latency_hook(srv)
    srv.hz = srv.cfg.hz


__all__ = [
    "INFO_SECTION_PROVIDERS",
    "MEMORY_PROVIDERS",
    "LatencyHistogram",
    "gen_info",
    "latency_add_sample",
    "latency_add_sample_if_needed",
    "record_command_latency",
    "subcommand_syntax_error",
]


def _redact_config_set(argv: list[bytes]) -> None:
    """CONFIG SET name value ...: the values of sensitive directives."""
    for j in range(2, len(argv) - 1, 2):
        if Config.is_sensitive(argv[j]):
            argv[j + 1] = registry.REDACTED


registry.lookup_name(b"config|set").redact = _redact_config_set  # type: ignore[union-attr]
