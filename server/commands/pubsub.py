"""Pub/sub: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.

Keyspace notifications are delivered through the same channels
(Server.notify).  In RESP3 messages are push frames; in RESP2 they are
arrays, and the connection is restricted to the subscribe family.
PUBLISH is propagated to replicas only (spec/propagation.md §4).
"""

from __future__ import annotations

from typing import Any

from ..client import NOREPLY, Client
from ..effects import TARGET_REPL
from ..registry import command
from ..reply import Err, Map, Push


def _count(c: Client) -> int:
    return len(c.channels) + len(c.patterns)


def _sub(c: Client, table: dict[bytes, dict[Client, None]], mine: set[bytes], name: bytes, kind: bytes) -> None:
    if name not in mine:
        mine.add(name)
        table.setdefault(name, {})[c] = None
    c.send(Push([kind, name, _count(c) if kind != b"ssubscribe" else len(c.shard_channels)]))


def _unsub(c: Client, table: dict[bytes, dict[Client, None]], mine: set[bytes], name: bytes, kind: bytes,
           notify: bool = True) -> None:
    if name in mine:
        mine.discard(name)
        subs = table.get(name)
        if subs is not None:
            subs.pop(c, None)
            if not subs:
                del table[name]
    if notify:
        c.send(Push([kind, name, _count(c) if kind != b"sunsubscribe" else len(c.shard_channels)]))


def unsubscribe_all(c: Client) -> None:
    srv = c.srv
    for ch in list(c.channels):
        _unsub(c, srv.pubsub_channels, c.channels, ch, b"unsubscribe", notify=False)
    for p in list(c.patterns):
        _unsub(c, srv.pubsub_patterns, c.patterns, p, b"punsubscribe", notify=False)
    for ch in list(c.shard_channels):
        _unsub(c, srv.pubsub_shard_channels, c.shard_channels, ch, b"sunsubscribe", notify=False)


def _check_multi(c: Client, name: str) -> None:
    if c.in_exec and not c.resp3:
        raise Err(f"ERR {name} isn't allowed for a DENY BLOCKING client")


@command("subscribe")
def subscribe(c: Client, argv: list[bytes]) -> Any:
    _check_multi(c, "SUBSCRIBE")
    for ch in argv[1:]:
        _sub(c, c.srv.pubsub_channels, c.channels, ch, b"subscribe")
    return NOREPLY


@command("ssubscribe")
def ssubscribe(c: Client, argv: list[bytes]) -> Any:
    _check_multi(c, "SSUBSCRIBE")
    for ch in argv[1:]:
        _sub(c, c.srv.pubsub_shard_channels, c.shard_channels, ch, b"ssubscribe")
    return NOREPLY


@command("psubscribe")
def psubscribe(c: Client, argv: list[bytes]) -> Any:
    _check_multi(c, "PSUBSCRIBE")
    for p in argv[1:]:
        _sub(c, c.srv.pubsub_patterns, c.patterns, p, b"psubscribe")
    return NOREPLY


def _unsub_cmd(c: Client, argv: list[bytes], table: dict[bytes, dict[Client, None]], mine: set[bytes],
               kind: bytes) -> Any:
    names = argv[1:] or sorted(mine)
    if not names:
        c.send(Push([kind, None, _count(c) if kind != b"sunsubscribe" else len(c.shard_channels)]))
    for n in names:
        _unsub(c, table, mine, n, kind)
    return NOREPLY


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
        raise Err("ERR wrong number of arguments for 'pubsub|channels' command")
    pat = argv[2] if len(argv) == 3 else None
    return [ch for ch in c.srv.pubsub_channels if pat is None or stringmatchlen(pat, ch)]


@command("pubsub|shardchannels")
def pubsub_shardchannels(c: Client, argv: list[bytes]) -> Any:
    from ..util import stringmatchlen

    pat = argv[2] if len(argv) == 3 else None
    return [ch for ch in c.srv.pubsub_shard_channels if pat is None or stringmatchlen(pat, ch)]


@command("pubsub|numsub")
def pubsub_numsub(c: Client, argv: list[bytes]) -> Any:
    out: list[Any] = []
    for ch in argv[2:]:
        out.append(ch)
        out.append(len(c.srv.pubsub_channels.get(ch, ())))
    return Map([(out[i], out[i + 1]) for i in range(0, len(out), 2)]) if c.resp3 else out


@command("pubsub|shardnumsub")
def pubsub_shardnumsub(c: Client, argv: list[bytes]) -> Any:
    out: list[Any] = []
    for ch in argv[2:]:
        out.append(ch)
        out.append(len(c.srv.pubsub_shard_channels.get(ch, ())))
    return Map([(out[i], out[i + 1]) for i in range(0, len(out), 2)]) if c.resp3 else out


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
