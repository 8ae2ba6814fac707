"""ACL subcommands (acl.c aclCommand) and the ACL subsystem's start-up.

SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, GENPASS, LOG, DRYRUN,
SAVE, LOAD and HELP, with Redis 7.0.15's replies and error texts.  The
users, rules and checks live in ``server/acl.py``; :func:`install` creates a
server's ACL state, ties ``requirepass`` to the default user, describes users
for CONFIG REWRITE and loads the ``user`` directives or the ``aclfile`` as
ACLLoadUsersAtStartup does (exiting on errors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import registry
from ..acl import (
    ACL_DENIED_CMD,
    ACL_DENIED_KEY,
    ACL_OK,
    CATEGORIES,
    CONTEXT_NAMES,
    GENPASS_MAX_BITS,
    NO_ACLFILE,
    REASON_NAMES,
    Acl,
    Selector,
    category_commands,
    check_user,
    genpass,
    has_spaces,
    merge_selector_args,
    mstime,
)
from ..args import get_ll
from ..client import Client
from ..registry import command
from ..reply import OK, Err, Map, SetReply
from ..util import cstr
from .help import help_reply, subcommand_syntax_error

if TYPE_CHECKING:
    from ..core import Server


def _acl(c: Client) -> Acl:
    return c.srv.acl  # type: ignore[no-any-return]


@command("acl|setuser")
def acl_setuser(c: Client, argv: list[bytes]) -> Any:
    """ACL SETUSER name [rule ...]: all rules or none are applied."""
    name = argv[2]
    if has_spaces(name):
        raise Err("ERR Usernames can't contain spaces or null characters")
    ops, bad = merge_selector_args(argv[3:])
    if ops is None:
        raise Err(b"ERR Unmatched parenthesis in acl selector starting at '" + cstr(argv[3 + bad], len(argv[3 + bad]))
                  + b"'.")
    _acl(c).setuser(c, name, ops)
    return OK


@command("acl|deluser")
def acl_deluser(c: Client, argv: list[bytes]) -> Any:
    """ACL DELUSER name [name ...]: the number deleted; their clients are disconnected."""
    return _acl(c).deluser(c, argv[2:])


def _selector_fields(s: Selector) -> list[tuple[bytes, bytes]]:
    """aclAddReplySelectorDescription."""
    return [(b"commands", s.describe_commands()), (b"keys", s.describe_keys()),
            (b"channels", s.describe_channels())]


@command("acl|getuser")
def acl_getuser(c: Client, argv: list[bytes]) -> Any:
    """ACL GETUSER name: flags (a set), password hashes, the root selector's
    commands/keys/channels, then the other selectors; null for no such user."""
    u = _acl(c).get_user(argv[2])
    if u is None:
        return None
    items: list[tuple[bytes, Any]] = [(b"flags", SetReply(u.flag_names())), (b"passwords", list(u.passwords))]
    items.extend(_selector_fields(u.root))
    items.append((b"selectors", [Map(_selector_fields(s)) for s in u.selectors[1:]]))
    return Map(items)


@command("acl|list")
def acl_list(c: Client, argv: list[bytes]) -> Any:
    """ACL LIST: every user in config-file form, sorted by name."""
    return [b"user " + line for line in _acl(c).list_lines()]


@command("acl|users")
def acl_users(c: Client, argv: list[bytes]) -> Any:
    return sorted(_acl(c).users)


@command("acl|whoami")
def acl_whoami(c: Client, argv: list[bytes]) -> Any:
    return c.user


@command("acl|load")
def acl_load(c: Client, argv: list[bytes]) -> Any:
    """ACL LOAD: replace the users with the ACL file's, or change nothing."""
    srv = c.srv
    if not srv.cfg.aclfile:
        raise Err(NO_ACLFILE)
    err = _acl(c).load_file(c, srv.cfg.aclfile)
    if err is not None:
        raise Err("ERR " + err)
    return OK


@command("acl|save")
def acl_save(c: Client, argv: list[bytes]) -> Any:
    srv = c.srv
    if not srv.cfg.aclfile:
        raise Err(NO_ACLFILE)
    if not _acl(c).save_file(srv.cfg.aclfile):
        raise Err("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
    return OK


@command("acl|cat")
def acl_cat(c: Client, argv: list[bytes]) -> Any:
    """ACL CAT [category]: the categories, or the commands of one."""
    if len(argv) == 2:
        return [name.encode() for name in CATEGORIES]
    if len(argv) != 3:
        raise subcommand_syntax_error(argv)
    names = category_commands(argv[2])
    if names is None:
        raise Err(b"ERR Unknown category '" + cstr(argv[2]) + b"'")
    return names


@command("acl|genpass")
def acl_genpass(c: Client, argv: list[bytes]) -> Any:
    """ACL GENPASS [bits]: a random password, ``bits`` rounded up to hex digits."""
    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
    bits = 256
    if len(argv) == 3:
        bits = get_ll(argv[2])
    if bits <= 0 or bits > GENPASS_MAX_BITS:
        raise Err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number "
                  f"up to {GENPASS_MAX_BITS}")
    return genpass(bits)


@command("acl|log")
def acl_log(c: Client, argv: list[bytes]) -> Any:
    """ACL LOG [count | RESET]: the newest entries first (10 by default)."""
    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
    acl = _acl(c)
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            acl.log.clear()
            return OK
        count = max(0, get_ll(argv[2]))
    now = mstime()
    return [
        Map([
            (b"count", le.count),
            (b"reason", REASON_NAMES.get(le.reason, b"unknown")),
            (b"context", CONTEXT_NAMES.get(le.context, b"unknown")),
            (b"object", le.object),
            (b"username", le.username),
            (b"age-seconds", (now - le.ctime) / 1000),
            (b"client-info", le.cinfo),
        ])
        for le in acl.log[:count]
    ]


def _lookup(args: list[bytes]) -> registry.Command | None:
    """lookupCommand (not strict): a container with an unknown subcommand is unknown."""
    base = registry.COMMANDS.get(args[0].lower())
    if base is None or len(args) == 1 or not base.subcommands:
        return base
    return base.subcommands.get(args[1].lower())


@command("acl|dryrun")
def acl_dryrun(c: Client, argv: list[bytes]) -> Any:
    """ACL DRYRUN user command [arg ...]: OK, or why the user could not run it."""
    u = _acl(c).get_user(argv[2])
    if u is None:
        raise Err(b"ERR User '" + cstr(argv[2], len(argv[2])) + b"' not found")
    args = argv[3:]
    cmd = _lookup(args)
    if cmd is None:
        raise Err(b"ERR Command '" + cstr(argv[3], len(argv[3])) + b"' not found")
    if (cmd.arity > 0 and cmd.arity != len(args)) or len(args) < -cmd.arity:
        raise Err(f"ERR wrong number of arguments for '{cmd.fullname}' command")
    res, idx = check_user(u, cmd, args)
    if res == ACL_OK:
        return OK
    if res == ACL_DENIED_CMD:
        return b"This user has no permissions to run the '" + cmd.bname + b"' command"
    if res == ACL_DENIED_KEY:
        return b"This user has no permissions to access the '" + cstr(args[idx], len(args[idx])) + b"' key"
    return b"This user has no permissions to access the '" + cstr(args[idx], len(args[idx])) + b"' channel"


@command("acl|help")
def acl_help(c: Client, argv: list[bytes]) -> Any:
    return help_reply("ACL", [
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
    ])


def install(srv: Server) -> None:
    """ACLInit plus ACLLoadUsersAtStartup: the default user takes
    ``requirepass`` (and follows CONFIG SET requirepass), CONFIG REWRITE
    writes the users, then the config's users or the ACL file are loaded."""
    acl = Acl(srv)
    srv.acl = acl
    cfg = srv.cfg

    def on_requirepass(old: Any, new: Any) -> None:
        acl.set_default_password(new.encode("utf-8", "surrogateescape") if new else None)

    if cfg.requirepass:
        on_requirepass(None, cfg.requirepass)
    cfg.add_hook("requirepass", on_requirepass)
    cfg.describe_users = lambda: [line.decode("utf-8", "surrogateescape") for line in acl.list_lines()]
    acl.load_at_startup()
    acl.changed()


registry.lookup_name(b"acl|setuser").redact = registry.redact_from(2)  # type: ignore[union-attr]
