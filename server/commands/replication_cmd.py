"""Replication commands (spec/replication.md §2, §3, §13, §14, §16):
REPLICAOF / SLAVEOF, SYNC / PSYNC, REPLCONF, WAIT, ROLE.

The state machine behind them is server/replication.py (``srv.repl``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import blocking
from ..args import get_ll
from ..client import NOREPLY
from ..log import log
from ..registry import command
from ..replication import ReplicaInfo, Replication
from ..replication import install as install_replication
from ..reply import OK, Err, Status

if TYPE_CHECKING:
    from ..client import Client
    from ..core import Server


def _repl(c: Client) -> Replication:
    return c.srv.repl  # type: ignore[attr-defined,no-any-return]


@command("replicaof")
def replicaof(c: Client, argv: list[bytes]) -> Any:
    """REPLICAOF host port | NO ONE (replicaofCommand)."""
    repl = _repl(c)
    if repl.failover_state != "no-failover":
        raise Err("ERR REPLICAOF not allowed while failing over.")
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        if repl.is_replica:
            repl.promote()
            log.notice(f"MASTER MODE enabled (user request from '{c.describe()}')")
        return OK
    if c.is_replica:
        raise Err("ERR Command is not valid when client is a replica.")
    try:
        port = int(argv[2])
    except ValueError:
        port = -1
    if not argv[2].strip() or argv[2] != str(port).encode() or not 0 <= port <= 65535:
        raise Err("ERR Invalid master port")
    host = argv[1].decode("utf-8", "surrogateescape")
    if repl.is_replica and (repl.master_host or "").lower() == host.lower() and repl.master_port == port:
        log.notice("REPLICAOF would result into synchronization with the master we are already connected "
                   "with. No operation performed.")
        return Status(b"OK Already connected to specified master")
    repl.replicaof(host, port)
    log.notice(f"REPLICAOF {host}:{port} enabled (user request from '{c.describe()}')")
    return OK


@command("slaveof")
def slaveof(c: Client, argv: list[bytes]) -> Any:
    """SLAVEOF: the old name of REPLICAOF (Sentinel sends it)."""
    return replicaof(c, argv)


@command("sync")
def sync(c: Client, argv: list[bytes]) -> Any:
    """SYNC: the legacy full synchronization (no +FULLRESYNC line, no ACKs)."""
    return _repl(c).psync(c, argv)


@command("psync")
def psync(c: Client, argv: list[bytes]) -> Any:
    """PSYNC replid offset [FAILOVER]."""
    return _repl(c).psync(c, argv)


def _info(c: Client) -> ReplicaInfo:
    r = c.repl  # type: ignore[attr-defined]
    if r is None:
        r = ReplicaInfo(c)
        c.repl = r  # type: ignore[attr-defined]
    return r  # type: ignore[no-any-return]


@command("replconf")
def replconf(c: Client, argv: list[bytes]) -> Any:
    """REPLCONF option value ... (replconfCommand)."""
    if len(argv) % 2 == 0:
        raise Err("ERR syntax error")
    repl = _repl(c)
    for i in range(1, len(argv), 2):
        opt = argv[i].lower()
        val = argv[i + 1]
        if opt == b"listening-port":
            try:
                port = int(val)
            except ValueError:
                raise Err("ERR value is not an integer or out of range") from None
            _info(c).port = port
        elif opt == b"ip-address":
            if len(val) >= 256:
                raise Err(f"ERR REPLCONF ip-address provided by replica instance is too long: {len(val)} bytes")
            _info(c).ip = val.decode("utf-8", "surrogateescape")
        elif opt == b"capa":
            r = _info(c)
            if val.lower() == b"eof":
                r.capa_eof = True
            elif val.lower() == b"psync2":
                r.capa_psync2 = True
        elif opt == b"ack":
            # Only a replica sends it; never answered.
            r = c.repl  # type: ignore[attr-defined]
            if r is None or not c.is_replica:
                return NOREPLY
            try:
                off = int(val)
            except ValueError:
                return NOREPLY
            fack = None
            if len(argv) >= i + 4 and argv[i + 2].lower() == b"fack":
                try:
                    fack = int(argv[i + 3])
                except ValueError:
                    fack = None
            repl.ack(r, off, fack)
            return NOREPLY
        elif opt == b"getack":
            # From our primary: answer with the offset processed so far.
            if c.is_primary_link and repl.link is not None:
                repl.link.send_ack()
            return NOREPLY
        elif opt == b"rdb-only":
            try:
                flag = int(val)
            except ValueError:
                raise Err("ERR value is not an integer or out of range") from None
            if flag not in (0, 1):
                raise Err("ERR syntax error")
            _info(c).rdb_only = bool(flag)
        elif opt == b"rdb-filter-only":
            if val.strip() and val.strip().lower() != b"functions":
                raise Err(f"ERR Unsupported rdb-filter-only option: {val.decode('utf-8', 'replace')}")
            raise Err("ERR RDB filters are not supported by this server")
        else:
            raise Err(b"ERR Unrecognized REPLCONF option: " + argv[i])
    return OK


@command("wait")
def wait(c: Client, argv: list[bytes]) -> Any:
    """WAIT numreplicas timeout (waitCommand)."""
    repl = _repl(c)
    if repl.is_replica:
        raise Err("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a "
                  "replica is configured to be writable (which is not the default) writes to replicas are just "
                  "local and are not propagated.")
    numreplicas = get_ll(argv[1])
    timeout = blocking.parse_timeout(argv[2], unit_seconds=False)
    woff = c.woff
    acked = repl.good_replicas(woff)
    if acked >= numreplicas or not blocking.can_block(c):
        return acked

    def on_timeout(cl: Client) -> int:
        if cl in repl.waiting:
            repl.waiting.remove(cl)
        return repl.good_replicas(woff)

    blocking.block_for_keys(c, [], timeout, b"", None, timeout_reply=on_timeout, data=(numreplicas, woff))
    repl.waiting.append(c)
    repl.request_acks()
    return NOREPLY


@command("failover")
def failover(c: Client, argv: list[bytes]) -> Any:
    """FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (failoverCommand)."""
    repl = _repl(c)
    if len(argv) == 2 and argv[1].lower() == b"abort":
        if repl.failover_state == "no-failover":
            raise Err("ERR No failover in progress.")
        repl.abort_failover("Failover manually aborted")
        return OK
    timeout = 0
    force = False
    host: str | None = None
    port = 0
    j = 1
    while j < len(argv):
        opt = argv[j].lower()
        if opt == b"timeout" and j + 1 < len(argv) and timeout == 0:
            timeout = get_ll(argv[j + 1])
            if timeout <= 0:
                raise Err("ERR FAILOVER timeout must be greater than 0")
            j += 2
        elif opt == b"to" and j + 2 < len(argv) and host is None:
            port = get_ll(argv[j + 2])
            host = argv[j + 1].decode("utf-8", "surrogateescape")
            j += 3
        elif opt == b"force" and not force:
            force = True
            j += 1
        else:
            raise Err("ERR syntax error")
    if repl.failover_state != "no-failover":
        raise Err("ERR FAILOVER already in progress.")
    if repl.is_replica:
        raise Err("ERR FAILOVER is not valid when server is a replica.")
    if not repl.replicas:
        raise Err("ERR FAILOVER requires connected replicas.")
    if force and (not timeout or host is None):
        raise Err("ERR FAILOVER with force option requires both a timeout and target HOST and IP.")
    if host is not None:
        target = repl.find_replica(host, port)
        if target is None:
            raise Err("ERR FAILOVER target HOST and PORT is not a replica.")
        if target.state != "online":
            raise Err("ERR FAILOVER target replica is not online.")
    repl.start_failover(host, port, timeout, force)
    return OK


@command("role")
def role(c: Client, argv: list[bytes]) -> Any:
    """ROLE (roleCommand)."""
    return _repl(c).role()


def install(srv: Server) -> None:
    """Create the server's replication state (``srv.repl``)."""
    install_replication(srv)
