"""AOF commands (aof.c, debug.c of Redis 7.0.15): BGREWRITEAOF and DEBUG LOADAOF.

The work is in :mod:`ambry.server.aof`; this module answers with Redis's
texts.  ``appendonly`` itself is switched with CONFIG SET (a config hook
installed by :func:`ambry.server.aof.install`).
"""

from __future__ import annotations

from typing import Any

from .. import aof, rdb
from ..client import Client
from ..log import log
from ..registry import command
from ..reply import OK, Err, Status
from .debug import debug_subcommand
from .keys import _empty_db


@command("bgrewriteaof")
def bgrewriteaof(c: Client, argv: list[bytes]) -> Any:
    """BGREWRITEAOF: fork a rewrite now, or schedule it when another child
    runs or inside EXEC (an explicit request also lifts the back-off of
    failed automatic rewrites)."""
    srv = c.srv
    st = aof.state(srv)
    if srv.child_type == "aof":  # type: ignore[attr-defined]
        raise Err("ERR Background append only file rewriting already in progress")
    if aof.child_active(srv) or c.in_exec:
        st.rewrite_scheduled = True
        st.consecutive_failures = 0
        return Status(b"Background append only file rewriting scheduled")
    if aof.rewrite_background(srv):
        return Status(b"Background append only file rewriting started")
    raise Err("ERR Can't execute an AOF background rewriting. Please check the server logs for more information.")


@debug_subcommand("loadaof", lambda argc: argc >= 2, [
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
])
def debug_loadaof(c: Client, argv: list[bytes]) -> Any:
    """DEBUG LOADAOF: flush the AOF, empty the dataset, re-read the manifest
    and load the AOF again.  As in Redis, a load that does not succeed
    (no AOF at all, a damaged or truncated file) stops the server: the
    dataset would be partial."""
    srv = c.srv
    st = aof.state(srv)
    if st.state == aof.AOF_ON:
        st.flush(True)
    _empty_db(srv, -1)
    # The libraries come back from the AOF (its base or FUNCTION LOAD
    # commands); keeping the old ones would make those loads collide.
    srv.function_libraries.clear()  # type: ignore[attr-defined]
    try:
        st.load_manifest_from_disk()
    except aof.ManifestError as e:
        for line in e.log_lines():
            log.warning(line)
        rdb.terminate(1)
    st.del_history_files()
    ret = aof.load_sync(srv)
    if ret not in (aof.AOF_OK, aof.AOF_EMPTY):
        rdb.terminate(1)
    srv.dirty = 0
    # Redis's call() ignores a dirty counter that went down; here the reset
    # must not make DEBUG LOADAOF itself an effect (it would replay itself).
    c.prevent_prop = True
    log.warning("Append Only File loaded by DEBUG LOADAOF")
    return OK


def install(srv: Any) -> None:
    """Attach the AOF machinery (server/aof.py) to the server."""
    aof.install(srv)
