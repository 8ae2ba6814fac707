"""CLIENT subcommands (networking.c ``clientCommand``, Redis 7.0).

ID, SETNAME, GETNAME, INFO, LIST [TYPE t | ID id ...], KILL (the old
``addr`` form and the filter form ID/TYPE/USER/ADDR/LADDR/SKIPME), PAUSE
timeout [WRITE|ALL], UNPAUSE, REPLY ON|OFF|SKIP, NO-EVICT ON|OFF,
GETREDIR, TRACKINGINFO and HELP.  The line format of LIST/INFO is
``Server.client_info_line``.  Pausing is state on the server
(``pause_type``/``pause_until``); the execution entry holds the commands of
paused clients and a timer releases them when the pause ends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..args import ERR_SYNTAX, get_ll, get_timeout_ms
from ..client import NOREPLY, Client
from ..registry import command
from ..reply import OK, Err, Verbatim
from .help import help_reply
from .server_cmds import update_gate

if TYPE_CHECKING:
    from ..core import Server

_NAME_ERR = Err("ERR Client names cannot contain spaces, newlines or special characters.")


def validate_name(name: bytes) -> None:
    """clientSetName's charset check: printable ASCII without spaces ('!'..'~')."""
    for ch in name:
        if ch < 33 or ch > 126:
            raise _NAME_ERR


def client_type(c: Client) -> str:
    """getClientType: master, replica (MONITOR clients count as normal), pubsub, normal."""
    if c.is_primary_link:
        return "master"
    if c.is_replica and not c.monitor:
        return "replica"
    if c.in_pubsub_mode():
        return "pubsub"
    return "normal"


def _type_by_name(name: bytes) -> str | None:
    """getClientTypeByName (``slave`` is ``replica``)."""
    n = name.lower()
    if n == b"normal":
        return "normal"
    if n in (b"slave", b"replica"):
        return "replica"
    if n == b"pubsub":
        return "pubsub"
    if n == b"master":
        return "master"
    return None


def _unknown_type(name: bytes) -> Err:
    return Err(b"ERR Unknown client type '" + name + b"'")


def _user_exists(srv: Server, name: bytes) -> bool:
    """ACLGetUserByName for CLIENT KILL USER: the ACL users (only ``default``
    on a server without the ACL subsystem installed)."""
    if srv.acl is not None:
        return srv.acl.get_user(name) is not None
    return name == b"default"


@command("client|id")
def client_id(c: Client, argv: list[bytes]) -> Any:
    return c.id


@command("client|setname")
def client_setname(c: Client, argv: list[bytes]) -> Any:
    """CLIENT SETNAME name: an empty name removes the current one."""
    name = argv[2]
    validate_name(name)
    c.name = name or None
    return OK


@command("client|getname")
def client_getname(c: Client, argv: list[bytes]) -> Any:
    return c.name if c.name else None


@command("client|info")
def client_info(c: Client, argv: list[bytes]) -> Any:
    return Verbatim((c.srv.client_info_line(c, c) + "\n").encode("utf-8", "surrogateescape"))


@command("client|list")
def client_list(c: Client, argv: list[bytes]) -> Any:
    """CLIENT LIST [TYPE normal|master|replica|pubsub] | [ID id [id ...]]."""
    srv = c.srv
    argc = len(argv)
    lines: list[str] = []
    if argc == 4 and argv[2].lower() == b"type":
        t = _type_by_name(argv[3])
        if t is None:
            raise _unknown_type(argv[3])
        for cl in list(srv.clients.values()):
            if client_type(cl) == t:
                lines.append(srv.client_info_line(cl, c))
    elif argc > 3 and argv[2].lower() == b"id":
        for raw in argv[3:]:
            cid = get_ll(raw, Err("ERR Invalid client ID"))
            cl = srv.clients.get(cid)
            if cl is not None:
                lines.append(srv.client_info_line(cl, c))
    elif argc != 2:
        raise ERR_SYNTAX
    else:
        lines = [srv.client_info_line(cl, c) for cl in list(srv.clients.values())]
    return Verbatim("".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape"))


def _kill(victim: Client) -> None:
    """freeClient of another connection (the primary's link included: the
    replica caches it and reconnects with PSYNC)."""
    if victim.is_primary_link:
        repl = victim.srv.repl
        if repl is not None and repl.primary is victim and repl.link is not None:
            repl.link.close()
            return
    victim.flush()
    victim.transport_close()


@command("client|kill")
def client_kill(c: Client, argv: list[bytes]) -> Any:
    """CLIENT KILL addr | CLIENT KILL [ID id] [TYPE t] [USER u] [ADDR a] [LADDR a] [SKIPME yes|no]."""
    srv = c.srv
    argc = len(argv)
    addr: bytes | None = None
    laddr: bytes | None = None
    user: bytes | None = None
    ctype: str | None = None
    cid = 0
    skipme = True
    if argc == 3:
        addr = argv[2]
        skipme = False  # with the old form a client can kill itself
    else:
        i = 2
        while i < argc:
            opt = argv[i].lower()
            if i + 1 >= argc:
                raise ERR_SYNTAX
            val = argv[i + 1]
            if opt == b"id":
                try:
                    cid = get_ll(val)
                except Err:
                    cid = 0
                if cid < 1:
                    raise Err("ERR client-id should be greater than 0")
            elif opt == b"type":
                ctype = _type_by_name(val)
                if ctype is None:
                    raise _unknown_type(val)
            elif opt == b"addr":
                addr = val
            elif opt == b"laddr":
                laddr = val
            elif opt == b"user":
                if not _user_exists(srv, val):
                    raise Err(b"ERR No such user '" + val + b"'")
                user = val
            elif opt == b"skipme":
                v = val.lower()
                if v == b"yes":
                    skipme = True
                elif v == b"no":
                    skipme = False
                else:
                    raise ERR_SYNTAX
            else:
                raise ERR_SYNTAX
            i += 2
    killed = 0
    close_self = False
    for cl in list(srv.clients.values()):
        if addr is not None and cl.addr.encode("utf-8", "surrogateescape") != addr:
            continue
        if laddr is not None and cl.laddr.encode("utf-8", "surrogateescape") != laddr:
            continue
        if ctype is not None and client_type(cl) != ctype:
            continue
        if cid and cl.id != cid:
            continue
        if user is not None and cl.user != user:
            continue
        if cl is c and skipme:
            continue
        if cl is c:
            close_self = True
        else:
            _kill(cl)
        killed += 1
    if close_self:
        c.close_after_reply = True
    if argc == 3:
        if killed == 0:
            raise Err("ERR No such client")
        return OK
    return killed


def _release_when_due(srv: Server) -> None:
    """Unpause the clients when the pause has ended (the cron checks too)."""
    if srv.pause_type is None:
        return
    left = srv.pause_until - time.monotonic()
    if left <= 0:
        srv.unpause()
    elif srv.loop is not None:
        srv.loop.call_later(left, _release_when_due, srv)


@command("client|pause")
def client_pause(c: Client, argv: list[bytes]) -> Any:
    """CLIENT PAUSE timeout [WRITE|ALL]: the stricter type and the later end win."""
    if len(argv) > 4:
        from .server_cmds import subcommand_syntax_error

        raise subcommand_syntax_error(argv)
    ptype = "all"
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode == b"write":
            ptype = "write"
        elif mode != b"all":
            raise Err("ERR CLIENT PAUSE mode must be WRITE or ALL")
    srv = c.srv
    now_ms = int(time.time() * 1000)
    end_ms = get_timeout_ms(argv[2], now_ms, False)
    until = time.monotonic() + max(0, end_ms - now_ms) / 1000.0
    if srv.pause_type is not None and time.monotonic() < srv.pause_until:
        if srv.pause_type == "all":
            ptype = "all"
        until = max(until, srv.pause_until)
    srv.pause_type = ptype
    srv.pause_until = until
    update_gate(srv)
    if srv.loop is not None:
        srv.loop.call_later(max(0.0, until - time.monotonic()), _release_when_due, srv)
    return OK


@command("client|unblock")
def client_unblock(c: Client, argv: list[bytes]) -> Any:
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: answer a client blocked on keys
    (or WAIT) as if it timed out, or with an UNBLOCKED error; 1 if it was
    blocked.  The reason is checked before the id, as Redis does."""
    error = False
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason == b"error":
            error = True
        elif reason != b"timeout":
            raise Err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    elif len(argv) != 3:
        raise Err(b"ERR unknown subcommand or wrong number of arguments for '" + argv[1][:128]
                  + b"'. Try CLIENT HELP.")
    target = c.srv.clients.get(get_ll(argv[2]))
    if target is None or target.blocked is None:
        return 0
    from ..blocking import unblock_on_request

    return 1 if unblock_on_request(target, error) else 0


@command("client|unpause")
def client_unpause(c: Client, argv: list[bytes]) -> Any:
    c.srv.unpause()
    return OK


@command("client|reply")
def client_reply(c: Client, argv: list[bytes]) -> Any:
    """CLIENT REPLY ON|OFF|SKIP: OFF and SKIP send no reply (the client loop drops it)."""
    mode = argv[2].lower()
    if mode == b"on":
        c.reply_mode = "on"
        return OK
    if mode == b"off":
        c.reply_mode = "off"
        return OK
    if mode == b"skip":
        if c.reply_mode != "off":
            c.reply_mode = "skip_next"
            return OK
        return NOREPLY
    raise ERR_SYNTAX


@command("client|no-evict")
def client_no_evict(c: Client, argv: list[bytes]) -> Any:
    mode = argv[2].lower()
    if mode == b"on":
        c.no_evict = True
    elif mode == b"off":
        c.no_evict = False
    else:
        raise ERR_SYNTAX
    return OK


@command("client|help")
def client_help(c: Client, argv: list[bytes]) -> Any:
    return help_reply("CLIENT", [
        "CACHING (YES|NO)",
        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO",
        "    Report tracking status for the current connection.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
    ])
