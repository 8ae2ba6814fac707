"""EVAL / EVALSHA / EVAL_RO / EVALSHA_RO and SCRIPT (eval.c).

The engine lives in ``server/scripting.py``; this module is the command
surface: argument checks in Redis's order, the script cache subcommands and
SCRIPT KILL.  ``install`` gives the server its scripting state and the hook
through which the dispatcher checks a script's declared flags
(evalGetCommandFlags).
"""

from __future__ import annotations

from typing import Any

from ..client import Client
from ..registry import command
from ..reply import OK, Err
from ..scripting import scripting_of
from .help import help_reply


@command("eval")
def eval_(c: Client, argv: list[bytes]) -> Any:
    """EVAL script numkeys [key ...] [arg ...]"""
    return scripting_of(c.srv).eval_command(c, argv, evalsha=False, ro=False)


@command("evalsha")
def evalsha(c: Client, argv: list[bytes]) -> Any:
    """EVALSHA sha1 numkeys [key ...] [arg ...]"""
    return scripting_of(c.srv).eval_command(c, argv, evalsha=True, ro=False)


@command("eval_ro")
def eval_ro(c: Client, argv: list[bytes]) -> Any:
    """EVAL_RO: the script runs read-only (writes fail when called)."""
    return scripting_of(c.srv).eval_command(c, argv, evalsha=False, ro=True)


@command("evalsha_ro")
def evalsha_ro(c: Client, argv: list[bytes]) -> Any:
    """EVALSHA_RO: EVALSHA, read-only."""
    return scripting_of(c.srv).eval_command(c, argv, evalsha=True, ro=True)


@command("script|load")
def script_load(c: Client, argv: list[bytes]) -> Any:
    """SCRIPT LOAD: compile and cache without running; the sha."""
    return scripting_of(c.srv).create(argv[2]).sha


@command("script|exists")
def script_exists(c: Client, argv: list[bytes]) -> Any:
    """SCRIPT EXISTS sha1 [sha1 ...]: 1/0 per sha (case-insensitive)."""
    cache = scripting_of(c.srv).cache
    return [1 if a.lower() in cache else 0 for a in argv[2:]]


@command("script|flush")
def script_flush(c: Client, argv: list[bytes]) -> Any:
    """SCRIPT FLUSH [ASYNC|SYNC]: a fresh interpreter and an empty cache
    (done at once either way: nothing is left to free in the background)."""
    if len(argv) == 3 and argv[2].lower() in (b"sync", b"async"):
        pass
    elif len(argv) != 2:
        raise Err("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    scripting_of(c.srv).flush()
    return OK


@command("script|kill")
def script_kill(c: Client, argv: list[bytes]) -> Any:
    """SCRIPT KILL: stop the running EVAL script if it has not written."""
    return scripting_of(c.srv).kill(is_eval=True)


@command("script|help")
def script_help(c: Client, argv: list[bytes]) -> Any:
    return help_reply("SCRIPT", [
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
    ])


def install(srv: Any) -> None:
    """The server's scripting state, and the dispatcher's view of a
    script's flags (processCommand derives EVAL's flags from the shebang)."""
    sc = scripting_of(srv)
    srv.script_cmd_flags = sc.cmd_flags_for
    from ..scripting import script_cache_bytes
    from .server_cmds import MEMORY_PROVIDERS

    # INFO memory: the EVAL interpreter's heap and its script cache.
    MEMORY_PROVIDERS["used_memory_vm_eval"] = lambda s: scripting_of(s).vm.heap_bytes()
    MEMORY_PROVIDERS["number_of_cached_scripts"] = lambda s: len(scripting_of(s).cache)
    MEMORY_PROVIDERS["used_memory_scripts_eval"] = lambda s: script_cache_bytes(scripting_of(s))
