"""The command table: implementations registered by decorator, described by data.

Redis generates its command table from ``src/commands/*.json``.  Ambry keeps
the same facts for Redis 7.0 in ``data/command_table.json`` (regenerate with
``gen_command_table.py``): arity, flags, first/last/step, ACL categories,
tips, key specs and the documentation ``COMMAND DOCS`` prints.  A command
exists only when an implementation registers itself with :func:`command`; the
data never makes a command appear.  ``COMMAND``, ACL, MULTI queueing, scripts'
checks and the replica read-only rule all read the flags from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .reply import Err, Map, SetReply, Status
from .util import cstr

# Commands that change how the calling client is served (transaction,
# pub/sub, authentication, protocol, reply mode, monitor, connection end)
# or the server's switches (DEBUG): they always take Server.process, after
# which Client.run_requests re-reads that state.
CLIENT_MODE_COMMANDS = frozenset((
    "multi", "exec", "discard", "auth", "hello", "reset", "quit", "monitor", "shutdown", "debug",
    "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
))

Handler = Callable[..., Any]

# CMD_MAY_REPLICATE: commands that are not writes but may still propagate
# something (a script's effects, a published message, PFCOUNT's cache
# update).  Redis 7.0's table has the flag but its COMMAND INFO never
# prints it, so the captured table lacks it; verified on 7.0.15 by CLIENT
# PAUSE WRITE (these are paused, EVAL_RO/EVALSHA_RO are not) and by
# EVAL_RO (these fail with "Write commands are not allowed from read-only
# scripts.").  CLIENT PAUSE WRITE and read-only scripts treat them as writes.
MAY_REPLICATE = frozenset(("eval", "evalsha", "fcall", "publish", "spublish", "pfcount"))

_TABLE: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).with_name("data") / "command_table.json").read_text()
)


def _to_reply(v: Any) -> Any:
    """Turn the table's tagged JSON into reply values."""
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, list):
        return [_to_reply(x) for x in v]
    if isinstance(v, dict):
        if "s" in v:
            return Status(v["s"].encode())
        if "set" in v:
            return SetReply(_to_reply(x) for x in v["set"])
        if "map" in v:
            return Map([(_to_reply(k), _to_reply(x)) for k, x in v["map"]])
    return v


def _plain(v: Any) -> Any:
    """Tagged JSON to plain Python (for reading flags and key specs)."""
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        if "s" in v:
            return v["s"]
        if "set" in v:
            return [_plain(x) for x in v["set"]]
        if "map" in v:
            return {k: _plain(x) for k, x in v["map"]}
    return v


# Durations (µs) below this are counted in a list, the rest in a dict.
LAT_SMALL = 64


class Command:
    """One entry of the command table (a command or a subcommand)."""

    __slots__ = (
        "name",
        "fullname",
        "bname",
        "handler",
        "arity",
        "flags",
        "first_key",
        "last_key",
        "key_step",
        "acl_categories",
        "tips",
        "key_specs",
        "info_raw",
        "docs_raw",
        "subcommands",
        "parent",
        "id",
        "getkeys",
        # hot-path booleans
        "is_write",
        "is_readonly",
        "denyoom",
        "noscript",
        "loading_ok",
        "stale_ok",
        "fast",
        "admin",
        "pubsub",
        "no_auth",
        "no_multi",
        "blocking",
        "allow_busy",
        "skip_monitor",
        "skip_slowlog",
        "may_replicate",
        "movablekeys",
        "inline",
        "redact",
        # statistics (INFO commandstats)
        "calls",
        "usec",
        "rejected_calls",
        "failed_calls",
        "lat",
        "lat_big",
    )

    def __init__(self, fullname: str, handler: Handler | None, spec: dict[str, Any]) -> None:
        self.fullname = fullname
        self.name = fullname.split("|")[-1]
        self.bname = fullname.encode()
        self.handler = handler
        info = spec.get("info")
        self.info_raw = info
        self.docs_raw = spec.get("docs")
        if info is None:
            raise ValueError(f"no table entry for {fullname}")
        p = _plain(info)
        self.arity: int = p[1]
        self.flags: frozenset[str] = frozenset(p[2])
        self.first_key, self.last_key, self.key_step = p[3], p[4], p[5]
        self.acl_categories: list[str] = [c[1:] for c in p[6]]
        self.tips: list[str] = p[7]
        self.key_specs: list[dict[str, Any]] = p[8]
        self.subcommands: dict[bytes, Command] = {}
        self.parent: Command | None = None
        self.id = 0
        self.getkeys: Callable[[list[bytes]], list[int]] | None = None
        f = self.flags
        self.is_write = "write" in f
        self.is_readonly = "readonly" in f
        self.denyoom = "denyoom" in f
        self.noscript = "noscript" in f
        self.loading_ok = "loading" in f
        self.stale_ok = "stale" in f
        self.fast = "fast" in f
        self.admin = "admin" in f
        self.pubsub = "pubsub" in f
        self.no_auth = "no_auth" in f
        self.no_multi = "no_multi" in f
        self.blocking = "blocking" in f
        self.allow_busy = "allow_busy" in f
        self.skip_monitor = "skip_monitor" in f
        self.skip_slowlog = "skip_slowlog" in f
        self.may_replicate = "may_replicate" in f or fullname in MAY_REPLICATE
        self.movablekeys = any(
            ks.get("begin_search", {}).get("type") == "keyword"
            or ks.get("find_keys", {}).get("type") in ("keynum", "unknown")
            or ks.get("begin_search", {}).get("type") == "unknown"
            for ks in self.key_specs
        )
        # Client.run_requests may run it through its inlined call(): not a
        # container, not blocking, not changing the caller's mode.
        self.inline = not self.blocking and fullname not in CLIENT_MODE_COMMANDS
        # redactClientCommandArgument: ``redact(argv)`` blanks secrets in
        # place once the handler ran, before SLOWLOG and MONITOR see argv
        self.redact: Callable[[list[bytes]], None] | None = None
        self.calls = 0
        self.usec = 0
        self.rejected_calls = 0
        self.failed_calls = 0
        # latency-tracking: calls per exact duration in µs, below LAT_SMALL
        # in a list the execution entry indexes (``lat[dur] += 1``), above in
        # a dict; LATENCY HISTOGRAM and INFO latencystats build from both.
        self.lat = [0] * LAT_SMALL
        self.lat_big: dict[int, int] = {}

    def count_latency(self, dur: int) -> None:
        """One call of ``dur`` µs into the latency-tracking counts."""
        if dur < LAT_SMALL:
            self.lat[dur] += 1
        else:
            self.lat_big[dur] = self.lat_big.get(dur, 0) + 1

    def latency_counts(self) -> dict[int, int]:
        """{duration µs: calls} of every call counted since the last reset."""
        out = {us: n for us, n in enumerate(self.lat) if n}
        out.update(self.lat_big)
        return out

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: the commandstats counters and latency counts."""
        self.calls = self.usec = self.rejected_calls = self.failed_calls = 0
        self.lat = [0] * LAT_SMALL
        self.lat_big = {}

    def __repr__(self) -> str:
        return f"<Command {self.fullname}>"

    # -- introspection -------------------------------------------------------

    def info_reply(self) -> list[Any]:
        """The ``COMMAND INFO`` entry; subcommands are the implemented ones."""
        base = _to_reply(self.info_raw)
        flags = base[2]
        if self.movablekeys and not self.subcommands and Status(b"movablekeys") not in flags:
            flags = SetReply(list(flags) + [Status(b"movablekeys")])
        subs = [s.info_reply() for s in self.subcommands.values()]
        return [base[0], base[1], flags, *base[3:9], subs if subs else SetReply()]

    def docs_reply(self) -> Map:
        m = _to_reply(self.docs_raw) if self.docs_raw else Map([])
        if self.subcommands:
            m.items.append(
                (b"subcommands", Map([(s.bname, s.docs_reply()) for s in self.subcommands.values()]))
            )
        return m

    def key_positions(self, argv: list[bytes]) -> list[int]:
        """Indexes of key arguments, following the 7.0 key specs."""
        if self.getkeys is not None:
            return self.getkeys(argv)
        out: list[int] = []
        argc = len(argv)
        for ks in self.key_specs:
            bs = ks.get("begin_search", {})
            fk = ks.get("find_keys", {})
            if bs.get("type") == "index":
                first = bs["spec"]["index"]
            elif bs.get("type") == "keyword":
                kw = bs["spec"]["keyword"].encode().lower()
                start = bs["spec"]["startfrom"]
                rng = (
                    range(start, argc)
                    if start > 0
                    else range(argc + start, 0, -1)
                )
                first = -1
                for i in rng:
                    if 0 < i < argc and argv[i].lower() == kw:
                        first = i + 1
                        break
                if first < 0:
                    continue
            else:
                continue
            if fk.get("type") == "range":
                spec = fk["spec"]
                last = spec["lastkey"]
                step = spec["keystep"]
                limit = spec["limit"]
                if last >= 0:
                    lastidx = first + last
                else:
                    if limit <= 1:
                        lastidx = argc + last
                    else:
                        lastidx = first + ((argc - first) // limit + last)
                i = first
                while i <= lastidx and i < argc:
                    out.append(i)
                    i += step
            elif fk.get("type") == "keynum":
                spec = fk["spec"]
                kni = first + spec["keynumidx"]
                if kni >= argc:
                    continue
                try:
                    numkeys = int(argv[kni])
                except ValueError:
                    continue
                i = first + spec["firstkey"]
                for _ in range(numkeys):
                    if i >= argc:
                        break
                    out.append(i)
                    i += spec["keystep"]
        return out


COMMANDS: dict[bytes, Command] = {}
# Top-level commands under their lower- and upper-case spellings, so the
# execution entry usually finds a command without lower-casing its name.
BY_NAME: dict[bytes, Command] = {}
_next_id = 0


def command(fullname: str, **overrides: Any) -> Callable[[Handler], Handler]:
    """Register ``handler(client, argv)`` as the implementation of ``fullname``.

    ``fullname`` is lower case; ``"config|get"`` registers a subcommand, and
    its container is created from the table the first time."""

    def deco(fn: Handler) -> Handler:
        global _next_id
        spec = _TABLE.get(fullname)
        if spec is None:
            spec = overrides.pop("spec")
        cmd = Command(fullname, fn, spec)
        for k, v in overrides.items():
            setattr(cmd, k, v)
        _next_id += 1
        cmd.id = _next_id
        if "|" in fullname:
            parent_name, sub = fullname.split("|", 1)
            parent = COMMANDS.get(parent_name.encode())
            if parent is None:
                parent = Command(parent_name, None, _TABLE[parent_name])
                _next_id += 1
                parent.id = _next_id
                COMMANDS[parent_name.encode()] = parent
                BY_NAME[parent_name.encode()] = parent
                BY_NAME[parent_name.upper().encode()] = parent
            cmd.parent = parent
            parent.subcommands[sub.encode()] = cmd
            parent.inline = False
        else:
            old = COMMANDS.get(fullname.encode())
            if old is not None and old.subcommands:
                # a container registered by a subcommand first keeps its children
                cmd.subcommands = old.subcommands
                cmd.inline = False
                for sub in cmd.subcommands.values():
                    sub.parent = cmd
            COMMANDS[fullname.encode()] = cmd
            BY_NAME[fullname.encode()] = cmd
            BY_NAME[fullname.upper().encode()] = cmd
        return fn

    return deco


def lookup(argv: list[bytes]) -> Command | None:
    """Resolve argv to a command or subcommand (None when unknown)."""
    cmd = COMMANDS.get(argv[0].lower())
    if cmd is None or not cmd.subcommands or len(argv) < 2:
        return cmd
    return cmd.subcommands.get(argv[1].lower())


REDACTED = b"(redacted)"


def redact_from(first: int) -> Callable[[list[bytes]], None]:
    """A redactor blanking every argument from ``first`` on (AUTH, ACL SETUSER)."""

    def redact(argv: list[bytes]) -> None:
        for i in range(first, len(argv)):
            argv[i] = REDACTED

    return redact


def lookup_name(name: bytes) -> Command | None:
    """Resolve ``get`` or ``config|get``."""
    parts = name.lower().split(b"|")
    cmd = COMMANDS.get(parts[0])
    if cmd is None:
        return None
    if len(parts) == 1:
        return cmd
    if len(parts) == 2:
        return cmd.subcommands.get(parts[1])
    return None


def all_commands() -> list[Command]:
    out = []
    for c in COMMANDS.values():
        out.append(c)
        out.extend(c.subcommands.values())
    return out


def unknown_command_error(argv: list[bytes]) -> Err:
    """Redis 7.0's text: the name as ``%.128s``, then each arg quoted as
    ``'%.*s' `` until the list reaches 128 bytes (printf stops at a NUL)."""
    args = b""
    for a in argv[1:]:
        if len(args) >= 128:
            break
        args += b"'" + cstr(a, 128 - len(args)) + b"' "
    return Err(b"ERR unknown command '" + cstr(argv[0]) + b"', with args beginning with: " + args)


def unknown_subcommand_error(argv: list[bytes]) -> Err:
    """``unknown subcommand '%.128s'. Try %s HELP.``"""
    return Err(b"ERR unknown subcommand '" + cstr(argv[1]) + b"'. Try " + cstr(argv[0].upper(), len(argv[0])) + b" HELP.")


def arity_error(cmd: Command) -> Err:
    return Err(f"ERR wrong number of arguments for '{cmd.fullname}' command")
