"""FUNCTION * and FCALL / FCALL_RO (functions.c).

The engine is ``server/functions.py``; this is the command surface with
Redis's argument checks.  LOAD, DELETE, FLUSH and RESTORE change the
dataset (``srv.dirty``), so they reach the AOF and replicas verbatim.
"""

from __future__ import annotations

from typing import Any

from ..client import Client
from ..functions import functions_of
from ..registry import command
from ..reply import OK, Err
from ..scripting import ERR_BUSY_EVAL, scripting_of
from .help import help_reply


@command("fcall")
def fcall(c: Client, argv: list[bytes]) -> Any:
    """FCALL function numkeys [key ...] [arg ...]"""
    return functions_of(c.srv).fcall(c, argv, ro=False)


@command("fcall_ro")
def fcall_ro(c: Client, argv: list[bytes]) -> Any:
    """FCALL_RO: the function runs read-only."""
    return functions_of(c.srv).fcall(c, argv, ro=True)


@command("function|load")
def function_load(c: Client, argv: list[bytes]) -> Any:
    """FUNCTION LOAD [REPLACE] code: the library name."""
    replace = False
    for a in argv[2:-1]:
        if a.lower() != b"replace":
            raise Err(b"ERR Unknown option given: " + a)
        replace = True
    srv = c.srv
    obey = c.is_primary_link or srv.executing_primary_stream or srv.loading
    name = functions_of(srv).create(argv[-1], replace=replace, timeout=not obey)
    srv.dirty += 1
    return name


@command("function|delete")
def function_delete(c: Client, argv: list[bytes]) -> Any:
    """FUNCTION DELETE library-name (case-sensitive)."""
    functions_of(c.srv).delete(argv[2])
    c.srv.dirty += 1
    return OK


@command("function|flush")
def function_flush(c: Client, argv: list[bytes]) -> Any:
    """FUNCTION FLUSH [ASYNC|SYNC]."""
    if len(argv) == 3:
        if argv[2].lower() not in (b"sync", b"async"):
            raise Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    elif len(argv) > 3:
        raise Err(b"ERR unknown subcommand or wrong number of arguments for '" + argv[1] + b"'. Try FUNCTION HELP.")
    functions_of(c.srv).flush()
    c.srv.dirty += 1
    return OK


@command("function|dump")
def function_dump(c: Client, argv: list[bytes]) -> Any:
    """FUNCTION DUMP: the libraries as a RESTORE payload."""
    return functions_of(c.srv).dump()


@command("function|restore")
def function_restore(c: Client, argv: list[bytes]) -> Any:
    """FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]."""
    if len(argv) > 4:
        raise Err(b"ERR unknown subcommand or wrong number of arguments for '" + argv[1] + b"'. Try FUNCTION HELP.")
    policy = b"APPEND"
    if len(argv) == 4:
        policy = argv[3].upper()
        if policy not in (b"FLUSH", b"APPEND", b"REPLACE"):
            raise Err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    functions_of(c.srv).restore(argv[2], policy)
    c.srv.dirty += 1
    return OK


@command("function|list")
def function_list(c: Client, argv: list[bytes]) -> Any:
    """FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]."""
    pattern: bytes | None = None
    withcode = False
    i = 2
    while i < len(argv):
        a = argv[i]
        low = a.lower()
        if low == b"withcode" and not withcode:
            withcode = True
        elif low == b"libraryname" and pattern is None:
            if i + 1 >= len(argv):
                raise Err("ERR library name argument was not given")
            i += 1
            pattern = argv[i]
        else:
            raise Err(b"ERR Unknown argument " + a)
        i += 1
    return functions_of(c.srv).list_reply(pattern, withcode)


@command("function|stats")
def function_stats(c: Client, argv: list[bytes]) -> Any:
    """FUNCTION STATS: the running function and the engines' counts."""
    ctx = scripting_of(c.srv).ctx
    if ctx is not None and ctx.is_eval:
        raise ERR_BUSY_EVAL
    return functions_of(c.srv).stats_reply()


@command("function|kill")
def function_kill(c: Client, argv: list[bytes]) -> Any:
    """FUNCTION KILL: stop the running function if it has not written."""
    return scripting_of(c.srv).kill(is_eval=False)


@command("function|help")
def function_help(c: Client, argv: list[bytes]) -> Any:
    return help_reply("FUNCTION", [
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION "
        "RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
    ])


# Memory model of the libraries (INFO memory's used_memory_functions): the
# engine's dicts, then per library its name and code sds and its struct, per
# function its name sds and struct (Redis 7.0.15: 200 empty, 440 with one
# one-function library of 73 bytes).
_FUNCTIONS_BASE = 200
_LIBRARY_ENTRY = 64
_FUNCTION_ENTRY = 88


def functions_bytes(srv: Any) -> int:
    from .introspection import sds_alloc

    fe = functions_of(srv)
    total = _FUNCTIONS_BASE
    for name, lib in fe.libraries.items():
        total += sds_alloc(len(name)) + sds_alloc(len(lib.code)) + _LIBRARY_ENTRY
        for fname in lib.functions:
            total += sds_alloc(len(fname)) + _FUNCTION_ENTRY
    return total


def install(srv: Any) -> None:
    """The functions engine (it takes over ``srv.function_libraries``) and
    its INFO memory fields."""
    from .server_cmds import MEMORY_PROVIDERS

    functions_of(srv)
    MEMORY_PROVIDERS["number_of_functions"] = lambda s: len(functions_of(s).functions)
    MEMORY_PROVIDERS["used_memory_vm_functions"] = lambda s: functions_of(s).vm.heap_bytes()
    MEMORY_PROVIDERS["used_memory_functions"] = functions_bytes
