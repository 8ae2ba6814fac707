"""Connection commands: PING, ECHO, SELECT, QUIT, RESET, HELLO, AUTH.

AUTH and HELLO AUTH authenticate against the ACL users (server/acl.py):
``AUTH <password>`` is ``AUTH default <password>``, and a failure is an ACL
LOG entry with reason ``auth``."""

from __future__ import annotations

from typing import Any

from .. import registry
from ..args import get_ll
from ..client import Client
from ..registry import command
from ..reply import OK, PONG, Err, Map, Status


@command("ping")
def ping(c: Client, argv: list[bytes]) -> Any:
    """PING [message]; in RESP2 pub/sub context it answers ["pong", msg]."""
    if len(argv) > 2:
        raise Err("ERR wrong number of arguments for 'ping' command")
    if not c.resp3 and c.in_pubsub_mode():
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    if len(argv) == 2:
        return argv[1]
    return PONG


@command("echo")
def echo(c: Client, argv: list[bytes]) -> Any:
    return argv[1]


@command("select")
def select(c: Client, argv: list[bytes]) -> Any:
    try:
        idx = get_ll(argv[1], Err("ERR value is not an integer or out of range"))
    except Err:
        raise
    if idx < 0 or idx >= len(c.srv.dbs):
        raise Err("ERR DB index is out of range")
    c.db = c.srv.dbs[idx]
    return OK


@command("quit")
def quit_(c: Client, argv: list[bytes]) -> Any:
    c.close_after_reply = True
    return OK


@command("reset")
def reset(c: Client, argv: list[bytes]) -> Any:
    """RESET: discard MULTI, unwatch, unsubscribe, leave MONITOR, RESP2, db 0,
    clear the name, re-authenticate as the default user when no password."""
    from . import pubsub, transactions

    srv = c.srv
    transactions.discard_transaction(c)
    transactions.unwatch_all(c)
    pubsub.unsubscribe_all(c)
    if c.tracking is not None:
        from ..tracking import disable

        disable(c)
    if c.monitor:
        c.monitor = False
        if c in srv.monitors:
            srv.monitors.remove(c)
            srv.update_gate()
    c.db = srv.dbs[0]
    c.resp3 = False
    c.name = None
    c.reply_mode = "on"
    c.no_evict = False
    c.no_touch = False
    c.authenticated = not srv.auth_required()
    c.user = b"default"
    return Status(b"RESET")


_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@command("auth")
def auth(c: Client, argv: list[bytes]) -> Any:
    """AUTH [username] password (authCommand)."""
    if len(argv) > 3:
        raise Err("ERR syntax error")
    acl = c.srv.acl
    if len(argv) == 2:
        # The old form, for the default user, needs it to have a password.
        if acl.default_nopass():
            raise Err(
                "ERR AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?"
            )
        user, pw = b"default", argv[1]
    else:
        user, pw = argv[1], argv[2]
    if acl.authenticate(c, user, pw):
        return OK
    raise Err(_WRONGPASS)


@command("hello")
def hello(c: Client, argv: list[bytes]) -> Any:
    """HELLO [protover [AUTH user pass] [SETNAME name]]."""
    srv = c.srv
    ver = 0
    i = 1
    if len(argv) >= 2:
        try:
            ver = get_ll(argv[1])
        except Err:
            raise Err("ERR Protocol version is not an integer or out of range") from None
        i = 2
        if ver < 2 or ver > 3:
            raise Err("NOPROTO unsupported protocol version")
    auth_user = auth_pass = setname = None
    while i < len(argv):
        opt = argv[i].lower()
        more = len(argv) - i - 1
        if opt == b"auth" and more >= 2:
            auth_user, auth_pass = argv[i + 1], argv[i + 2]
            i += 3
        elif opt == b"setname" and more >= 1:
            setname = argv[i + 1]
            i += 2
        else:
            raise Err(f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'")
    if auth_user is not None:
        assert auth_pass is not None
        if not srv.acl.authenticate(c, auth_user, auth_pass):
            raise Err(_WRONGPASS)
    if not c.authenticated:
        raise Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
                  "AUTH <user> <pass> option can be used to authenticate the client and select the "
                  "RESP protocol version at the same time")
    if setname is not None:
        from .client_cmd import validate_name

        validate_name(setname)
        c.name = setname or None
    if ver:
        c.resp3 = ver == 3
    return Map(
        [
            (b"server", b"redis"),
            (b"version", b"7.0.15"),
            (b"proto", 3 if c.resp3 else 2),
            (b"id", c.id),
            (b"mode", b"standalone"),
            (b"role", b"replica" if srv.is_replica else b"master"),
            (b"modules", []),
        ]
    )


def _redact_hello(argv: list[bytes]) -> None:
    """HELLO ... AUTH username password: the two credentials."""
    n = len(argv)
    j = 2
    while j < n:
        opt = argv[j].lower()
        more = n - 1 - j
        if opt == b"auth" and more >= 2:
            argv[j + 1] = argv[j + 2] = registry.REDACTED
            j += 3
        elif opt == b"setname" and more:
            j += 2
        else:
            break


registry.BY_NAME[b"auth"].redact = registry.redact_from(1)
registry.BY_NAME[b"hello"].redact = _redact_hello
