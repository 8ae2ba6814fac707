"""The HELP subcommand reply shape shared by containers (addReplyHelp)."""

from __future__ import annotations

from ..reply import Err, Status
from ..util import cstr


def help_reply(name: str, lines: list[str]) -> list[Status]:
    """Header, the command's lines, then the common HELP line, as status replies."""
    out = [Status(f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".encode())]
    out.extend(Status(line.encode()) for line in lines)
    out.append(Status(b"HELP"))
    out.append(Status(b"    Prints this help."))
    return out


def subcommand_syntax_error(argv: list[bytes]) -> Err:
    """addReplySubcommandSyntaxError: a subcommand given the wrong arguments."""
    return Err(
        b"ERR unknown subcommand or wrong number of arguments for '"
        + cstr(argv[1])
        + b"'. Try "
        + argv[0].upper()
        + b" HELP."
    )
