"""The HELP subcommand reply shape shared by containers (addReplyHelp)."""

from __future__ import annotations

from ..reply import Status


def help_reply(name: str, lines: list[str]) -> list[Status]:
    """Header, the command's lines, then the common HELP line, as status replies."""
    out = [Status(f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".encode())]
    out.extend(Status(line.encode()) for line in lines)
    out.append(Status(b"HELP"))
    out.append(Status(b"    Prints this help."))
    return out
