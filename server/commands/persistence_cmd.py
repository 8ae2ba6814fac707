"""RDB commands (rdb.c, cluster.c, debug.c of Redis 7.0.15).

SAVE BGSAVE DUMP RESTORE RESTORE-ASKING, and the persistence subcommands of
DEBUG: RELOAD and SET-SKIP-CHECKSUM-VALIDATION.  LASTSAVE lives with the
other server commands (it reads ``srv.last_save``, which saves update).

The work is in :mod:`ambry.server.rdb`; this module parses arguments,
answers with Redis's texts and records effects:

* RESTORE with a relative TTL is propagated as ``RESTORE k <abs ms>
  payload ... ABSTTL`` (ABSTTL appended last, the other options kept); a
  RESTORE whose TTL is already past creates nothing and, when REPLACE
  removed an old key, is propagated as ``DEL k`` (spec/propagation.md).
* A payload that fails the version/CRC check answers "DUMP payload version
  or checksum are wrong", one that does not decode "Bad data format"; in
  both cases nothing changes.
"""

from __future__ import annotations

from typing import Any

from ambry.persistence.rdb import RDBChecksumError, RDBError, RDBVersionError

from .. import rdb
from ..args import ERR_SYNTAX, get_ll
from ..client import Client
from ..log import log
from ..registry import command
from ..reply import OK, Err, Status
from .debug import debug_subcommand
from .keys import _empty_db

NOTIFY_GENERIC = 1 << 2

ERR_BGSAVE_IN_PROGRESS = Err("ERR Background save already in progress")
ERR_BUSYKEY = Err("BUSYKEY Target key name already exists.")
ERR_BAD_PAYLOAD = Err("ERR DUMP payload version or checksum are wrong")
ERR_BAD_DATA = Err("ERR Bad data format")
ERR_PLAIN = Err("ERR")  # shared.err


# -- SAVE / BGSAVE ----------------------------------------------------------------------


@command("save")
def save(c: Client, argv: list[bytes]) -> Any:
    """SAVE: a synchronous save (refused while a BGSAVE child runs)."""
    srv = c.srv
    if srv.child_type == "rdb":  # type: ignore[attr-defined]
        raise ERR_BGSAVE_IN_PROGRESS
    rdb.state(srv).saves += 1
    if rdb.rdb_save(srv):
        return OK
    raise ERR_PLAIN


@command("bgsave")
def bgsave(c: Client, argv: list[bytes]) -> Any:
    """BGSAVE [SCHEDULE]: fork a saving child; with another child active (or
    inside EXEC) SCHEDULE defers it to the cron."""
    schedule = False
    if len(argv) > 1:
        if len(argv) == 2 and argv[1].lower() == b"schedule":
            schedule = True
        else:
            raise ERR_SYNTAX
    srv = c.srv
    st = rdb.state(srv)
    if srv.child_type == "rdb":  # type: ignore[attr-defined]
        raise ERR_BGSAVE_IN_PROGRESS
    if rdb.child_active(srv) or c.in_exec:
        if schedule or c.in_exec:
            st.bgsave_scheduled = True
            return Status(b"Background saving scheduled")
        raise Err("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE "
                  "in order to schedule a BGSAVE whenever possible.")
    if rdb.bgsave(srv):
        return Status(b"Background saving started")
    raise ERR_PLAIN


# -- DUMP / RESTORE -----------------------------------------------------------------------


@command("dump")
def dump(c: Client, argv: list[bytes]) -> Any:
    """DUMP key: the value serialized as RDB, RDB version 10 and a CRC-64."""
    v = c.db.lookup_read(argv[1])
    if v is None:
        return None
    return rdb.dump_payload(v, bool(c.srv.cfg.rdbcompression))


def _deep_sanitize(c: Client) -> bool:
    """sanitize-dump-payload: yes always, clients except the primary link."""
    mode = c.srv.cfg.sanitize_dump_payload
    if mode == "yes":
        return True
    return mode == "clients" and not c.is_primary_link and not c.srv.loading


@command("restore")
def restore(c: Client, argv: list[bytes]) -> Any:
    """RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]
    (restoreCommand): options, then BUSYKEY, the TTL, the payload's
    version/CRC and its decoding are checked in that order, before anything
    changes."""
    srv = c.srv
    replace = absttl = False
    lfu_freq = lru_idle = -1
    n = len(argv)
    j = 4
    while j < n:
        opt = argv[j].lower()
        more = n - j - 1
        if opt == b"replace":
            replace = True
        elif opt == b"absttl":
            absttl = True
        elif opt == b"idletime" and more >= 1 and lfu_freq == -1:
            lru_idle = get_ll(argv[j + 1])
            if lru_idle < 0:
                raise Err("ERR Invalid IDLETIME value, must be >= 0")
            j += 1
        elif opt == b"freq" and more >= 1 and lru_idle == -1:
            lfu_freq = get_ll(argv[j + 1])
            if not 0 <= lfu_freq <= 255:
                raise Err("ERR Invalid FREQ value, must be >= 0 and <= 255")
            j += 1
        else:
            raise ERR_SYNTAX
        j += 1
    key = argv[1]
    db = c.db
    if not replace and db.lookup_write(key) is not None:
        raise ERR_BUSYKEY
    ttl = get_ll(argv[2])
    if ttl < 0:
        raise Err("ERR Invalid TTL value, must be >= 0")
    payload = argv[3]
    if len(payload) < 10:
        raise ERR_BAD_PAYLOAD
    try:
        value = rdb.restore_value(srv, payload, _deep_sanitize(c))
    except (RDBVersionError, RDBChecksumError):
        raise ERR_BAD_PAYLOAD from None
    except RDBError as e:
        log.verbose(f"RESTORE of a bad payload: {e}")
        raise ERR_BAD_DATA from None
    deleted = db.delete(key) if replace else False
    if ttl and not absttl:
        ttl += srv.now_ms
    if ttl and ttl <= srv.now_ms and not srv.loading and not srv.is_replica:
        # checkAlreadyExpired: nothing is created.
        if deleted:
            c.prop_argv = [b"DEL", key]
            srv.notify(NOTIFY_GENERIC, b"del", key, db.id)
            srv.dirty += 1
        return OK
    db.add(key, value)
    if ttl:
        db.set_expire(key, ttl)
        if not absttl:
            c.prop_argv = [argv[0], key, b"%d" % ttl, *argv[3:], b"ABSTTL"]
    _set_lru_or_lfu(c, key, lfu_freq, lru_idle)
    srv.notify(NOTIFY_GENERIC, b"restore", key, db.id)
    srv.dirty += 1
    return OK


def _set_lru_or_lfu(c: Client, key: bytes, lfu_freq: int, lru_idle: int) -> None:
    """objectSetLRUOrLFU: FREQ under an LFU policy, IDLETIME otherwise."""
    srv = c.srv
    lru, lfu = rdb._access_info(srv)
    if lfu:
        if lfu_freq >= 0:
            from .introspection import lfu_time_minutes

            c.db.access[key] = (lfu_time_minutes() << 8) | lfu_freq
    elif lru_idle >= 0:
        c.db.access[key] = srv.lru_clock - lru_idle


@command("restore-asking")
def restore_asking(c: Client, argv: list[bytes]) -> Any:
    """RESTORE-ASKING: RESTORE for cluster slot migration (same semantics
    outside a cluster)."""
    return restore(c, argv)


# -- DEBUG RELOAD / SET-SKIP-CHECKSUM-VALIDATION --------------------------------------------------------------


@debug_subcommand("reload", lambda argc: argc >= 2, [
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
])
def debug_reload(c: Client, argv: list[bytes]) -> Any:
    """DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, empty the dataset
    (functions too) and load the dump back.  A damaged dump stops the
    server, as in Redis: the dataset would be partial."""
    merge = False
    flush = save_first = True
    for opt in argv[2:]:
        o = opt.lower()
        if o == b"merge":
            merge = True
        elif o == b"noflush":
            flush = False
        elif o == b"nosave":
            save_first = False
        else:
            raise Err("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
    srv = c.srv
    if save_first and not rdb.rdb_save(srv):
        raise ERR_PLAIN
    if flush:
        _empty_db(srv, -1)
        srv.function_libraries.clear()  # type: ignore[attr-defined]
    try:
        rdb.load_sync(srv, srv.cfg.dbfilename, allow_dup=merge)
    except OSError:
        raise Err("ERR Error trying to load the RDB dump") from None
    except rdb.LoadError as e:
        # rdbReportError: the dataset is now partial; never serve it.
        for line in e.lines:
            log.warning(line)
        rdb.terminate(1)
    log.warning("DB reloaded by DEBUG RELOAD")
    return OK


@debug_subcommand("set-skip-checksum-validation", lambda argc: argc == 3, [
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
])
def debug_skip_checksum(c: Client, argv: list[bytes]) -> Any:
    """DEBUG SET-SKIP-CHECKSUM-VALIDATION <0|1> (atoi of the argument)."""
    from .debug import _atoi

    rdb.state(c.srv).skip_checksum_validation = bool(_atoi(argv[2]))
    return OK


def install(srv: Any) -> None:
    """Attach the RDB machinery (server/rdb.py) to the server."""
    rdb.install(srv)
