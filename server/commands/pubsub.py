"""Pub/sub: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.

Keyspace notifications are delivered through the same channels
(Server.notify).  In RESP3 messages are push frames; in RESP2 they are
arrays, and the connection is restricted to the subscribe family.
PUBLISH is propagated to replicas only (spec/propagation.md §4).
"""

from __future__ import annotations

from typing import Any

from ..client import Client
from ..effects import TARGET_REPL
from ..registry import command
from ..reply import Err, Multi, Push
from .help import subcommand_syntax_error


def _count(c: Client) -> int:
    return len(c.channels) + len(c.patterns)


def _sub(c: Client, table: dict[bytes, dict[Client, None]], mine: set[bytes], name: bytes, kind: bytes) -> Push:
    if name not in mine:
        mine.add(name)
        table.setdefault(name, {})[c] = None
    return Push([kind, name, _count(c) if kind != b"ssubscribe" else len(c.shard_channels)])


def _unsub(c: Client, table: dict[bytes, dict[Client, None]], mine: set[bytes], name: bytes,
           kind: bytes) -> Push:
    if name in mine:
        mine.discard(name)
        subs = table.get(name)
        if subs is not None:
            subs.pop(c, None)
            if not subs:
                del table[name]
    return Push([kind, name, _count(c) if kind != b"sunsubscribe" else len(c.shard_channels)])


def unsubscribe_all(c: Client) -> None:
    srv = c.srv
    for ch in list(c.channels):
        _unsub(c, srv.pubsub_channels, c.channels, ch, b"unsubscribe")
    for p in list(c.patterns):
        _unsub(c, srv.pubsub_patterns, c.patterns, p, b"punsubscribe")
    for ch in list(c.shard_channels):
        _unsub(c, srv.pubsub_shard_channels, c.shard_channels, ch, b"sunsubscribe")


def _check_multi(c: Client, name: str) -> None:
    """Scripts (deny-blocking clients) may not subscribe; MULTI may."""
    if c.fake and not c.in_exec:
        raise Err(f"ERR {name} isn't allowed for a DENY BLOCKING client")


@command("subscribe")
def subscribe(c: Client, argv: list[bytes]) -> Any:
    _check_multi(c, "SUBSCRIBE")
    return Multi(_sub(c, c.srv.pubsub_channels, c.channels, ch, b"subscribe") for ch in argv[1:])


@command("ssubscribe")
def ssubscribe(c: Client, argv: list[bytes]) -> Any:
    _check_multi(c, "SSUBSCRIBE")
    return Multi(_sub(c, c.srv.pubsub_shard_channels, c.shard_channels, ch, b"ssubscribe") for ch in argv[1:])


@command("psubscribe")
def psubscribe(c: Client, argv: list[bytes]) -> Any:
    _check_multi(c, "PSUBSCRIBE")
    return Multi(_sub(c, c.srv.pubsub_patterns, c.patterns, p, b"psubscribe") for p in argv[1:])


def _unsub_cmd(c: Client, argv: list[bytes], table: dict[bytes, dict[Client, None]], mine: set[bytes],
               kind: bytes) -> Any:
    names = argv[1:] or list(mine)
    if not names:
        return Push([kind, None, _count(c) if kind != b"sunsubscribe" else len(c.shard_channels)])
    return Multi(_unsub(c, table, mine, n, kind) for n in names)


@command("unsubscribe")
def unsubscribe(c: Client, argv: list[bytes]) -> Any:
    return _unsub_cmd(c, argv, c.srv.pubsub_channels, c.channels, b"unsubscribe")


@command("punsubscribe")
def punsubscribe(c: Client, argv: list[bytes]) -> Any:
    return _unsub_cmd(c, argv, c.srv.pubsub_patterns, c.patterns, b"punsubscribe")


@command("sunsubscribe")
def sunsubscribe(c: Client, argv: list[bytes]) -> Any:
    return _unsub_cmd(c, argv, c.srv.pubsub_shard_channels, c.shard_channels, b"sunsubscribe")


@command("publish")
def publish(c: Client, argv: list[bytes]) -> Any:
    srv = c.srv
    n = srv.publish(argv[1], argv[2])
    srv.propagator.add(-1, list(argv), TARGET_REPL)
    return n


@command("spublish")
def spublish(c: Client, argv: list[bytes]) -> Any:
    srv = c.srv
    subs = srv.pubsub_shard_channels.get(argv[1])
    n = 0
    if subs:
        for cl in list(subs):
            cl.send(Push([b"smessage", argv[1], argv[2]]))
            cl.flush()
            n += 1
    srv.propagator.add(-1, list(argv), TARGET_REPL)
    return n


@command("pubsub|channels")
def pubsub_channels(c: Client, argv: list[bytes]) -> Any:
    from ..util import stringmatchlen

    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
    pat = argv[2] if len(argv) == 3 else None
    return [ch for ch in c.srv.pubsub_channels if pat is None or stringmatchlen(pat, ch)]


@command("pubsub|shardchannels")
def pubsub_shardchannels(c: Client, argv: list[bytes]) -> Any:
    from ..util import stringmatchlen

    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
    pat = argv[2] if len(argv) == 3 else None
    return [ch for ch in c.srv.pubsub_shard_channels if pat is None or stringmatchlen(pat, ch)]


@command("pubsub|numsub")
def pubsub_numsub(c: Client, argv: list[bytes]) -> Any:
    out: list[Any] = []
    for ch in argv[2:]:
        out.append(ch)
        out.append(len(c.srv.pubsub_channels.get(ch, ())))
    return out


@command("pubsub|shardnumsub")
def pubsub_shardnumsub(c: Client, argv: list[bytes]) -> Any:
    out: list[Any] = []
    for ch in argv[2:]:
        out.append(ch)
        out.append(len(c.srv.pubsub_shard_channels.get(ch, ())))
    return out


@command("pubsub|numpat")
def pubsub_numpat(c: Client, argv: list[bytes]) -> Any:
    return len(c.srv.pubsub_patterns)


@command("pubsub|help")
def pubsub_help(c: Client, argv: list[bytes]) -> Any:
    from .help import help_reply

    return help_reply("PUBSUB", [
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
    ])
