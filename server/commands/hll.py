"""HyperLogLog commands (hyperloglog.c, Redis 7.0.15): PFADD, PFCOUNT,
PFMERGE, PFDEBUG, PFSELFTEST.

An HLL is a plain string value (see ``server/hyperloglog.py`` for the
bytes), so GET/SET/APPEND, DUMP/RESTORE and persistence see exactly what
Redis would hold.  Every command that may change the value first turns it
into a ``bytearray`` of its own (``dbUnshareStringValue``: OBJECT ENCODING
says ``raw`` afterwards, as in Redis) and then edits it in place, so the key
keeps its TTL.

Effects and events, as Redis does them:

* PFADD: when a register changed (or the key was created) WATCH is
  touched, ``pfadd`` is notified (string class), ``dirty`` grows by the
  number of changes and the command is propagated verbatim;
* PFCOUNT of one key: a stale cached cardinality is recomputed and written
  back into the string; that is a change (WATCH, dirty) and PFCOUNT is then
  propagated verbatim although it is a read-only command; with several
  keys nothing is cached or written;
* PFMERGE always touches WATCH, notifies ``pfadd`` (not ``pfmerge``) and is
  propagated;
* PFDEBUG GETREG/TODENSE converting a sparse HLL count as a write (dirty,
  propagated verbatim) but touch no WATCH.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import hyperloglog as hll
from ..client import Client
from ..keyspace import WRONGTYPE
from ..registry import command
from ..reply import OK, Err, Status
from .strings import NOTIFY_STRING, is_string, unshare

ERR_NOT_HLL = Err("WRONGTYPE Key is not a valid HyperLogLog string value.")
ERR_INVALID_HLL = Err("INVALIDOBJ Corrupted HLL object detected")
ERR_NO_KEY = Err("ERR The specified key does not exist")
ERR_NOT_SPARSE = Err("ERR HLL encoding is not sparse")

_ENCODING_NAMES = (Status(b"dense"), Status(b"sparse"))


def _check_hll(v: Any) -> None:
    """isHLLObjectOrReply: a string holding a well-formed HLL header.

    Other types get the generic WRONGTYPE; a string that is not an HLL
    (an integer-encoded one included) gets the HyperLogLog one."""
    t = type(v)
    if t is bytearray or t is bytes:
        if hll.is_hll(v):
            return
        raise ERR_NOT_HLL
    if is_string(v):
        raise ERR_NOT_HLL
    raise WRONGTYPE


def _signed(card: int) -> int:
    """addReplyLongLong of a uint64 cardinality."""
    return card - (1 << 64) if card >= 1 << 63 else card


def _notify_pfadd(c: Client, key: bytes) -> None:
    srv = c.srv
    if srv.cfg.notify_keyspace_events:
        srv.notify(NOTIFY_STRING, b"pfadd", key, c.db.id)


@command("pfadd")
def pfadd(c: Client, argv: list[bytes]) -> Any:
    """PFADD key [element ...]: 1 when the HLL changed (or was created)."""
    db = c.db
    key = argv[1]
    v = db.lookup_write(key)
    updated = 0
    if v is None:
        v = bytearray(hll.EMPTY_SPARSE)
        db.add(key, v)
        updated = 1
    else:
        _check_hll(v)
        v = unshare(db, key, v)
    if len(argv) > 2:
        eles = argv[2:]
        if v[4] == hll.HLL_DENSE:
            updated += hll.dense_add_many(v, eles)
        else:
            try:
                updated += hll.add_many(v, eles, c.srv.cfg.hll_sparse_max_bytes)
            except hll.InvalidHLL:
                raise ERR_INVALID_HLL from None
    if updated:
        if db.watched:
            db.signal_modified(key)
        _notify_pfadd(c, key)
        c.srv.dirty += updated
        hll.invalidate_cache(v)
        return 1
    return 0


@command("pfcount")
def pfcount(c: Client, argv: list[bytes]) -> Any:
    """PFCOUNT key [key ...]: the estimated cardinality (of the union)."""
    db = c.db
    if len(argv) > 2:
        regs = np.zeros(hll.HLL_REGISTERS, dtype=np.uint8)
        for key in argv[1:]:
            v = db.lookup_read(key)
            if v is None:
                continue  # an empty HLL
            _check_hll(v)
            if not hll.merge_into(regs, v):
                raise ERR_INVALID_HLL
        return _signed(hll.count_from_histogram(hll.raw_histogram(regs)))

    key = argv[1]
    v = db.lookup_read(key)
    if v is None:
        return 0
    _check_hll(v)
    v = unshare(db, key, v)
    if hll.cache_valid(v):
        return hll.cached_card(v)
    card, invalid = hll.count(v)
    if invalid:
        raise ERR_INVALID_HLL
    hll.set_cached_card(v, card)
    if db.watched:
        db.signal_modified(key)
    c.srv.dirty += 1
    return _signed(card)


@command("pfmerge")
def pfmerge(c: Client, argv: list[bytes]) -> Any:
    """PFMERGE destkey [sourcekey ...]: the union into destkey (which is
    also a source).  The destination turns dense when any input is dense."""
    db = c.db
    regs = np.zeros(hll.HLL_REGISTERS, dtype=np.uint8)
    use_dense = False
    for key in argv[1:]:
        v = db.lookup_read(key)
        if v is None:
            continue
        _check_hll(v)
        if v[4] == hll.HLL_DENSE:
            use_dense = True
        if not hll.merge_into(regs, v):
            raise ERR_INVALID_HLL
    key = argv[1]
    v = db.lookup_write(key)
    if v is None:
        v = bytearray(hll.EMPTY_SPARSE)
        db.add(key, v)
    else:
        v = unshare(db, key, v)
    if not hll.store_merged(v, regs, use_dense, c.srv.cfg.hll_sparse_max_bytes):
        raise ERR_INVALID_HLL
    if db.watched:
        db.signal_modified(key)
    _notify_pfadd(c, key)
    c.srv.dirty += 1
    return OK


@command("pfdebug")
def pfdebug(c: Client, argv: list[bytes]) -> Any:
    """PFDEBUG GETREG|DECODE|ENCODING|TODENSE key (the key is looked up,
    checked and unshared before the subcommand is even recognised)."""
    db = c.db
    key = argv[2]
    v = db.lookup_write(key)
    if v is None:
        raise ERR_NO_KEY
    _check_hll(v)
    v = unshare(db, key, v)
    sub = argv[1].lower()
    if sub == b"getreg":
        if v[4] == hll.HLL_SPARSE:
            if not hll.sparse_to_dense(v):
                raise ERR_INVALID_HLL
            c.srv.dirty += 1  # force propagation of the encoding change
        return hll.unpack_dense(v).tolist()
    if sub == b"decode":
        if v[4] != hll.HLL_SPARSE:
            raise ERR_NOT_SPARSE
        return hll.decode_sparse(v)
    if sub == b"encoding":
        return _ENCODING_NAMES[v[4]]
    if sub == b"todense":
        if v[4] == hll.HLL_SPARSE:
            if not hll.sparse_to_dense(v):
                raise ERR_INVALID_HLL
            c.srv.dirty += 1
            return 1
        return 0
    raise Err(b"ERR Unknown PFDEBUG subcommand '%s'" % argv[1])


@command("pfselftest")
def pfselftest(c: Client, argv: list[bytes]) -> Any:
    """PFSELFTEST: exercise the register access and the estimator."""
    failure = hll.selftest(c.srv.cfg.hll_sparse_max_bytes)
    if failure is not None:
        raise Err(failure)
    return OK
