"""CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO (networking.c, Redis 7.0.15).

The state and the invalidation machinery live in ``server/tracking.py``;
this module parses the commands with Redis's checks in Redis's order and
error texts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import tracking
from ..args import ERR_NOT_INT, ERR_SYNTAX
from ..client import Client
from ..protocol import string2ll
from ..registry import command
from ..reply import OK, Err, Map, Multi, SetReply

if TYPE_CHECKING:
    from ..core import Server

_ERR_ONE_REDIRECT = Err("ERR A client can only redirect to a single other client")
_ERR_NO_REDIRECT_CLIENT = Err("ERR The client ID you want redirect to does not exist")
_ERR_PREFIX_NEEDS_BCAST = Err("ERR PREFIX option requires BCAST mode to be enabled")
_ERR_SWITCH_BCAST = Err(
    "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then "
    "re-enabling it with a different mode."
)
_ERR_BCAST_OPTIN = Err("ERR OPTIN and OPTOUT are not compatible with BCAST")
_ERR_OPTIN_OPTOUT = Err("ERR You can't specify both OPTIN mode and OPTOUT mode")
_ERR_SWITCH_OPT = Err(
    "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then "
    "re-enabling it with a different mode."
)
_ERR_CACHING_MODE = Err(
    "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"
)
_ERR_CACHING_YES = Err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
_ERR_CACHING_NO = Err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")


@command("client|tracking")
def client_tracking(c: Client, argv: list[bytes]) -> Any:
    """CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP].

    Options are parsed first (a redirect must name a live client), then the
    mode checks run for ON; OFF ignores the options it parsed."""
    srv = c.srv
    redirect = 0
    bcast = optin = optout = noloop = False
    prefixes: list[bytes] = []
    argc = len(argv)
    j = 3
    while j < argc:
        opt = argv[j].lower()
        more = argc - 1 - j
        if opt == b"redirect" and more:
            j += 1
            if redirect:
                raise _ERR_ONE_REDIRECT
            rid = string2ll(argv[j])
            if rid is None:
                raise ERR_NOT_INT
            target = srv.clients.get(rid)
            if target is None or rid <= 0:
                raise _ERR_NO_REDIRECT_CLIENT
            redirect = rid
        elif opt == b"bcast":
            bcast = True
        elif opt == b"optin":
            optin = True
        elif opt == b"optout":
            optout = True
        elif opt == b"noloop":
            noloop = True
        elif opt == b"prefix" and more:
            j += 1
            prefixes.append(bytes(argv[j]))
        else:
            raise ERR_SYNTAX
        j += 1
    mode = argv[2].lower()
    if mode == b"off":
        tracking.disable(c)
        return OK
    if mode != b"on":
        raise ERR_SYNTAX
    ct = c.tracking
    if prefixes and not bcast:
        raise _ERR_PREFIX_NEEDS_BCAST
    if ct is not None and ct.bcast != bcast:
        raise _ERR_SWITCH_BCAST
    if bcast and (optin or optout):
        raise _ERR_BCAST_OPTIN
    if optin and optout:
        raise _ERR_OPTIN_OPTOUT
    if ct is not None and ((optin and ct.optout) or (optout and ct.optin)):
        raise _ERR_SWITCH_OPT
    collision = tracking.prefix_collision(c, prefixes) if bcast else None
    if collision is not None:
        msg, ret = collision
        if not ret:
            raise Err(msg)
        # Redis 7.0 reads a collision between two given prefixes found at
        # index > 0 as success: the error is sent, then tracking is enabled
        # and +OK follows.  The error counts as the command's failure.
        _count_error(srv, c)
        tracking.enable(c, redirect, bcast, optin, optout, noloop, prefixes)
        return Multi([Err(msg), OK])
    tracking.enable(c, redirect, bcast, optin, optout, noloop, prefixes)
    return OK


def _count_error(srv: Server, c: Client) -> None:
    """The statistics an error reply updates (afterErrorReply), for an error
    sent alongside another reply."""
    srv.stat_total_error_replies += 1
    srv.count_error(b"ERR")
    if c.cmd is not None:
        c.cmd.failed_calls += 1


@command("client|caching")
def client_caching(c: Client, argv: list[bytes]) -> Any:
    """CLIENT CACHING YES (OPTIN) | NO (OPTOUT): decides whether the next
    command's (or transaction's) reads are remembered."""
    ct = c.tracking
    if ct is None:
        raise _ERR_CACHING_MODE
    opt = argv[2].lower()
    if opt == b"yes":
        if not ct.optin:
            raise _ERR_CACHING_YES
    elif opt == b"no":
        if not ct.optout:
            raise _ERR_CACHING_NO
    else:
        raise ERR_SYNTAX
    ct.caching = True
    return OK


@command("client|getredir")
def client_getredir(c: Client, argv: list[bytes]) -> Any:
    """CLIENT GETREDIR: the redirection id while tracking (0: none), else -1."""
    ct = c.tracking
    return ct.redirect if ct is not None else -1


@command("client|trackinginfo")
def client_trackinginfo(c: Client, argv: list[bytes]) -> Any:
    """CLIENT TRACKINGINFO: flags, redirect and BCAST prefixes (sorted, as
    Redis walks its radix tree)."""
    ct = c.tracking
    if ct is None:
        return Map([(b"flags", SetReply([b"off"])), (b"redirect", -1), (b"prefixes", [])])
    flags = [b"on"]
    if ct.bcast:
        flags.append(b"bcast")
    if ct.optin:
        flags.append(b"optin")
        if ct.caching:
            flags.append(b"caching-yes")
    if ct.optout:
        flags.append(b"optout")
        if ct.caching:
            flags.append(b"caching-no")
    if ct.noloop:
        flags.append(b"noloop")
    if ct.broken_redirect:
        flags.append(b"broken_redirect")
    return Map([
        (b"flags", SetReply(flags)),
        (b"redirect", ct.redirect),
        (b"prefixes", sorted(ct.prefixes)),
    ])


def install(srv: Server) -> None:
    """serverCron keeps the tracking table within tracking-table-max-keys."""
    srv.cron_hooks.append(lambda: tracking.cron(srv))
