"""RDB persistence on the server side (rdb.c, the snapshot half of server.c).

The bytes are the codec's business (``ambry.persistence.rdb``: one reader,
one writer); this module joins them to the server:

* **values** -- :func:`encode_value` writes a server value *by its current
  in-memory encoding*, as ``rdbSaveObject`` does (a listpack hash stays a
  listpack after CONFIG SET lowered the thresholds, an intset keeps its
  element width, a list keeps its quicklist node layout, a stream its
  listpack nodes with their tombstones); :class:`ServerValues` is the
  codec's value builder that makes server values out of what the reader
  decodes, with ``rdbLoadObject``'s conversion rules (thresholds of *this*
  server, the file's quicklist and stream nodes and intset width kept,
  empty collections skipped).
* **saving** -- :func:`rdb_save` is ``rdbSave``: write ``temp-<pid>.rdb``,
  fsync, rename over ``dbfilename`` atomically, fsync the directory.
  :func:`bgsave` is ``rdbSaveBackground``: the same in a forked child while
  the parent keeps serving; the cron (:func:`server_cron`) reaps the child
  with ``waitpid(WNOHANG)`` and updates the stats, runs the ``save`` points
  and a scheduled BGSAVE, as serverCron does.
* **loading** -- :func:`load_steps` is ``rdbLoad``: a generator that loads
  the file through the push reader and yields whenever the event loop
  should run (every ``loading-process-events-interval-bytes``), so the
  start-up load (:func:`startup_load`) lets other clients in to get
  ``-LOADING``.  Keys come in batches (the reader's ``KeyBatch``) that go
  into the db with one dict.update when nothing in them needs a key-by-key
  look (an expired key, a duplicate, DEBUG RELOAD MERGE, key-load-delay);
  the start-up load checks the CRC in a forked child meanwhile.  Loader rules of 7.0: expired keys are dropped on a primary,
  empty collections skipped (empty streams kept), a duplicate key is fatal
  (unless DEBUG RELOAD MERGE), LRU idle time / LFU counter restored into
  ``db.access``.  Any damage stops the load with an :class:`~ambry.persistence.rdb.RDBError`
  naming the byte offset; the start-up load then exits non-zero instead of
  serving partial data.

Invariants:

* at most one snapshot child exists (``srv.child_type`` / ``srv.child_pid``
  are the server's "active child" slot, shared with any later child type);
* the child never returns into the event loop: it writes, then ``os._exit``;
* ``srv.dirty`` is reset only by a successful save (a BGSAVE subtracts what
  the child saw, so writes made meanwhile still count);
* nothing is propagated while loading (``srv.loading`` switches the
  propagator off).

Streams: the stream type registers itself by setting :data:`STREAM_TYPE` to
its value class, which must provide ``from_rdb(stream: Stream, srv)`` (a
classmethod building a value from the codec's :class:`Stream`, taking its
``listpacks`` as they are) and ``rdb_body(compress) -> bytes`` (the
``STREAM_LISTPACKS_2`` value as Redis 7.0 writes it).  Until then a stream
key in a dump is refused with a clear error.  Function libraries are kept as their source code in
``srv.function_libraries`` (name -> code) for the scripting layer and are
written back on save.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import struct
import sys
import time
from collections.abc import Generator, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

import lzf
from ambry.persistence.rdb import (
    Aux,
    End,
    FunctionLibrary,
    KeyBatch,
    ModuleAux,
    ModuleValue,
    RDBChecksumError,
    RDBCorruptError,
    RDBError,
    RDBReader,
    RDBSignatureError,
    RDBVersionError,
    RDBWriter,
    SelectDB,
    Stream,
    ValueBuilder,
    load_dump_payload,
)
from ambry.persistence.rdb import constants as C
from ambry.persistence.rdb.checksum import ForkedCRC
from ambry.persistence.rdb.containers import lp_entry
from ambry.persistence.rdb.encoding import canonical_int, crc64, enc_int_value, enc_len, enc_str, lzf_blob
from ambry.persistence.rdb.writer import EncodingOptions

from .commands.hashes import HashValue
from .commands.introspection import _LFU_LIMIT, lfu_decr_and_return, lfu_time_minutes, rss_bytes
from .commands.lists import ListValue
from .commands.sets import SetValue
from .commands.zsets import ZSetValue, load_zset_lists, lp_score_text
from .keyspace import type_name
from .log import log

if TYPE_CHECKING:
    from .core import Server

#: RDB version Redis 7.0 writes and the newest it loads (files and DUMP payloads).
RDB_VERSION = 10

#: Set by the stream type to its value class (see the module docstring).
STREAM_TYPE: Any = None

#: CONFIG_BGSAVE_RETRY_DELAY: seconds before a save point retries after a failed BGSAVE.
BGSAVE_RETRY_DELAY = 5
#: REDIS_AUTOSYNC_BYTES: fsync every 32 MB with rdb-save-incremental-fsync.
AUTOSYNC_BYTES = 32 * 1024 * 1024
#: Bytes gathered before a write to the file (and a CRC update).
_WRITE_CHUNK = 1 << 20
#: Smallest dump whose CRC a forked child computes (the fork costs a few ms).
_CHECKSUM_CHILD_MIN_SIZE = 4 << 20
#: rdbLoad logs at most this many "skipping empty key" lines.
_EMPTY_KEYS_LOGGED = 10

MISCONF = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
    "Commands that may modify the data set are disabled, because this instance is configured to report "
    "errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check "
    "the Redis logs for details about the RDB error."
)

_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")
_VERSION_FOOTER = struct.pack("<H", RDB_VERSION)
_BIG = 1 << 62

#: A writer that never second-guesses the encoding hint: with unlimited
#: thresholds its listpack/intset decisions only depend on the hint, so it
#: writes a value by the encoding the server holds it in.
_BY_ENCODING = EncodingOptions(
    hash_max_listpack_entries=_BIG, hash_max_listpack_value=_BIG, set_max_intset_entries=_BIG,
    set_max_listpack_entries=_BIG, set_max_listpack_value=_BIG, zset_max_listpack_entries=_BIG,
    zset_max_listpack_value=_BIG,
)
_WRITERS = {True: RDBWriter(RDB_VERSION, compression=True, options=_BY_ENCODING),
            False: RDBWriter(RDB_VERSION, compression=False, options=_BY_ENCODING)}


def _model_of(value: Any) -> tuple[str, Any, str | None]:
    """A server value in the codec's neutral model: (kind, value, encoding
    hint), for the RDB versions older than 7.0's (``rdb-version 9``), whose
    plain forms the codec's writer produces from the model.  An intset stays
    an intset; everything else takes the older format's only form."""
    t = type(value)
    if t is bytes or t is int or t is bytearray:
        return "string", value, None
    if t is HashValue:
        return "hash", list(value.items()), None
    if t is ZSetValue:
        return "zset", value.pairs(), None
    if t is SetValue:
        return "set", value.elements(), "intset" if value.is_intset else "hashtable"
    if t is ListValue:
        return "list", list(value), None
    if STREAM_TYPE is not None and t is STREAM_TYPE:
        return "stream", value.to_rdb(), None
    raise RDBCorruptError(f"no RDB encoding for a value of type {type_name(value).decode()}")


class LoadError(Exception):
    """The dump is damaged or inconsistent; ``lines`` are what the log says
    before the server stops (the first names the byte offset when known)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines[0] if lines else "RDB load failed")
        self.lines = lines


class RDBState:
    """The server's snapshot bookkeeping (``server.child_*``, ``lastbgsave_*``,
    ``rdb_*`` and ``loading_*`` fields of redisServer)."""

    __slots__ = (
        "save_time_start", "save_time_last", "dirty_before_bgsave", "lastbgsave_try", "bgsave_ok",
        "bgsave_scheduled", "saves", "keys_total", "keys_processed", "info_fd", "info_last",
        "last_load_keys_loaded", "last_load_keys_expired", "loading_start_time", "loading_total_bytes",
        "loading_loaded_bytes", "loading_rdb_used_mem", "skip_checksum_validation", "loaded_repl",
        "socket_target", "_loaded_aux",
    )

    def __init__(self) -> None:
        self.save_time_start = -1
        self.save_time_last = -1
        self.dirty_before_bgsave = 0
        self.lastbgsave_try = 0
        self.bgsave_ok = True
        self.bgsave_scheduled = False
        self.saves = 0
        self.keys_total = 0
        self.keys_processed = 0
        self.info_fd = -1  # parent's end of the child-info pipe
        self.info_last = 0.0
        self.last_load_keys_loaded = 0
        self.last_load_keys_expired = 0
        self.loading_start_time = 0
        self.loading_total_bytes = 0
        self.loading_loaded_bytes = 0
        self.loading_rdb_used_mem = 0
        self.skip_checksum_validation = False
        # The repl-stream-db / repl-id / repl-offset AUX fields of the last
        # RDB loaded, when it had all three (server/replication.py uses them).
        self.loaded_repl: tuple[int, str, int] | None = None
        self._loaded_aux: dict[bytes, bytes] = {}
        # The running snapshot child writes to replicas' sockets (diskless sync).
        self.socket_target = False


def state(srv: Server) -> RDBState:
    """The server's :class:`RDBState` (created by :func:`install`)."""
    st: RDBState = srv.rdb  # type: ignore[attr-defined]
    return st


# -- server values -> bytes ------------------------------------------------------------


# Fast paths for the element shapes that dominate real data (short strings
# that cannot be integers).  Anything else goes through the codec's own
# encoders (lp_entry, enc_str), and tests/test_rdb_server.py checks the
# result byte for byte against the codec's writer for random values.
_INTISH = frozenset(b"-0123456789")
_LP_STR_HDR = [bytes((0x80 | n,)) for n in range(64)]  # listpack 6-bit string header
_LP_STR_BACK = [bytes((n + 1,)) for n in range(64)]  # its one-byte back-length
_RDB_LEN6 = [bytes((n,)) for n in range(64)]
_LP_HDR = struct.Struct("<IH")
_LP_SMALL_INT = [bytes((v, 1)) for v in range(128)]  # 7-bit uint entries


def _lp_blob(items: list[Any], count: int) -> bytes:
    """lp_build([lp_entry(x) for x in items]): a listpack of ``count`` entries."""
    out: list[bytes] = []
    ap = out.append
    hdr = _LP_STR_HDR
    back = _LP_STR_BACK
    intish = _INTISH
    for x in items:
        n = len(x)
        if n < 64 and (not n or x[0] not in intish):
            ap(hdr[n])
            ap(x)
            ap(back[n])
        else:
            ap(lp_entry(x))
    body = b"".join(out)
    return _LP_HDR.pack(len(body) + 7, count if count < 65535 else 65535) + body + b"\xff"


def _rdb_str(x: Any, compress: bool) -> bytes:
    """enc_str(x): an RDB string (integer forms, LZF over 20 bytes)."""
    n = len(x)
    if n <= 20 and (not n or x[0] not in _INTISH):
        return _RDB_LEN6[n] + x
    return enc_str(bytes(x), compress)


def _score_entry(score: float) -> bytes:
    """A zset score in a listpack (zzlInsertAt): an integer entry when
    double2ll accepts it, else the %.17g text."""
    if 0.0 <= score < 128.0:
        i = int(score)
        if i == score:
            return _LP_SMALL_INT[i]
    return lp_entry(lp_score_text(score))


def _zset_listpack(pairs: Any, count: int) -> bytes:
    """The listpack of a zset: member, score, ... in rank order."""
    out: list[bytes] = []
    ap = out.append
    hdr = _LP_STR_HDR
    back = _LP_STR_BACK
    intish = _INTISH
    for score, m in pairs:
        n = len(m)
        if n < 64 and (not n or m[0] not in intish):
            ap(hdr[n])
            ap(m)
            ap(back[n])
        else:
            ap(lp_entry(m))
        ap(_score_entry(score))
    body = b"".join(out)
    return _LP_HDR.pack(len(body) + 7, count if count < 65535 else 65535) + body + b"\xff"


def _quicklist(chunks: list[list[bytes]], depth: int, compress: bool) -> bytes:
    """A QUICKLIST_2 body from the list's own node layout, as rdbSaveObject
    walks the quicklist: PACKED listpack nodes, the ones farther than
    ``list-compress-depth`` from both ends LZF-compressed as quicklist.c
    compresses them in memory (at least 48 bytes, and only when it saves 8)."""
    nodes: list[tuple[bytes, bytes | None]] = [(_lp_blob(chunk, len(chunk)), None) for chunk in chunks]
    if depth > 0 and len(nodes) > 2 * depth:
        for i in range(depth, len(nodes) - depth):
            data = nodes[i][0]
            if len(data) >= 48:
                packed = lzf.compress(data, len(data))
                if packed is not None and len(packed) + 8 < len(data):
                    nodes[i] = (data, packed)
    parts = [enc_len(len(nodes))]
    for data, packed in nodes:
        parts.append(b"\x02")  # QUICKLIST_NODE_CONTAINER_PACKED
        parts.append(lzf_blob(packed, len(data)) if packed is not None else enc_str(data, compress))
    return b"".join(parts)


def encode_value(value: Any, compress: bool = True) -> tuple[int, bytes]:
    """(RDB type, serialized value) of a server value, by its in-memory
    encoding (rdbSaveObjectType + rdbSaveObject)."""
    t = type(value)
    if t is bytes:
        return C.TYPE_STRING, enc_str(value, compress)
    if t is int:
        return C.TYPE_STRING, enc_int_value(value)
    if t is bytearray:
        return C.TYPE_STRING, enc_str(bytes(value), compress)
    if t is HashValue:
        n = len(value)
        if not value.ht:
            flat = [x for fv in value.items() for x in fv]
            return C.TYPE_HASH_LISTPACK, enc_str(_lp_blob(flat, 2 * n), compress)
        parts = [enc_len(n)]
        for f, v in value.items():
            parts.append(_rdb_str(f, compress))
            parts.append(_rdb_str(v, compress))
        return C.TYPE_HASH, b"".join(parts)
    if t is ZSetValue:
        if value.lp:
            return C.TYPE_ZSET_LISTPACK, enc_str(_zset_listpack(value.sl, 2 * len(value)), compress)
        # ZSET_2: from the highest score down, as rdbSaveObject walks the skiplist.
        pack = _F64.pack
        parts = [enc_len(len(value))]
        for score, m in reversed(value.sl):
            parts.append(_rdb_str(m, compress))
            parts.append(pack(score))
        return C.TYPE_ZSET_2, b"".join(parts)
    if t is SetValue:
        if value.is_intset:
            return C.TYPE_SET_INTSET, enc_str(value.intset_blob(), compress)
        members = value.members
        assert members is not None
        return C.TYPE_SET, enc_len(len(members)) + b"".join([_rdb_str(m, compress) for m in members])
    if t is ListValue:
        return C.TYPE_LIST_QUICKLIST_2, _quicklist(value.node_chunks(), value.compress, compress)
    if STREAM_TYPE is not None and t is STREAM_TYPE:
        # Redis's own bytes: the stream's nodes as held, tombstones included.
        return C.TYPE_STREAM_LISTPACKS_2, value.rdb_body(compress)
    raise RDBCorruptError(f"no RDB encoding for a value of type {type_name(value).decode()}")


def dump_payload(value: Any, compress: bool = True) -> bytes:
    """createDumpPayload: type, value, RDB version 10, CRC-64 (little endian)."""
    t, body = encode_value(value, compress)
    data = bytes((t,)) + body + _VERSION_FOOTER
    return data + _U64.pack(crc64(data))


# -- bytes -> server values ---------------------------------------------------------------

#: Type ids Redis 7.0 knows (its rdbIsObjectType); newer ones are refused.
_KNOWN_TYPES = frozenset(range(0, 20)) - {8}

_LISTPACK_HASHES = frozenset((C.TYPE_HASH_LISTPACK, C.TYPE_HASH_ZIPLIST))
_LISTPACK_ZSETS = frozenset((C.TYPE_ZSET_LISTPACK, C.TYPE_ZSET_ZIPLIST))
_SKIPLIST_ZSETS = frozenset((C.TYPE_ZSET, C.TYPE_ZSET_2))
_QUICKLISTS = frozenset((C.TYPE_LIST_QUICKLIST, C.TYPE_LIST_QUICKLIST_2))


class ServerValues(ValueBuilder):
    """The end of rdbLoadObject for this server: the codec's decoded
    containers become server values with 7.0's encoding rules and the
    server's current thresholds, and None for an empty collection (the
    loader skips it, "rdbLoadObject skipping empty key").

    * lists: a quicklist keeps the dump's node layout (and the listpack
      sizes the file gives), a plain or ziplist-encoded list is pushed into
      nodes cut by ``list-max-listpack-size``;
    * sets: an intset keeps its width (converted past
      ``set-max-intset-entries``); a member-by-member set becomes an intset
      while every member is an integer and there are few enough, else a
      hashtable presized to the length (setTypeConvert + dictExpand);
    * hashes: a listpack/ziplist blob stays a listpack unless it has too
      many entries; hashtable and zipmap forms also convert on a long field
      or value;
    * zsets: a listpack with too many entries becomes a skiplist, a skiplist
      small enough a listpack (load_zset);
    * streams keep the dump's nodes (StreamValue.from_rdb with the file's
      listpacks), tombstones included.

    Duplicates are refused where 7.0 refuses them whatever
    ``sanitize-dump-payload`` says (the dictAdd of a member-by-member set,
    hash or zset, or of a container converted to a hashtable); the reader's
    deep sanitization catches the rest."""

    __slots__ = ("srv", "cfg")

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.cfg = srv.cfg

    def list_value(self, rdb_type: int, nodes: list[list[bytes]], sizes: list[int] | None) -> Any:
        cfg = self.cfg
        if rdb_type in _QUICKLISTS:
            lv = ListValue.from_nodes(nodes, cfg.list_max_listpack_size, cfg.list_compress_depth, sizes)
        else:
            lv = ListValue.from_elements(nodes[0], cfg.list_max_listpack_size, cfg.list_compress_depth)
        return lv if lv.nodes else None

    def set_value(self, rdb_type: int, members: list[bytes]) -> Any:
        n = len(members)
        if not n:
            return None
        first = members[0]  # most sets show at once that they are no intset
        if (first[:1] and first[0] in _INTISH and n <= min(self.cfg.set_max_intset_entries, 1 << 30)
                and all(m[:1] and m[0] in _INTISH and canonical_int(m) is not None for m in members)):
            s = SetValue.from_intset(map(int, members))
            got = len(s.ints)  # type: ignore[arg-type]
        else:
            s = SetValue.hashtable(members)
            got = len(s.pos)  # type: ignore[arg-type]
        if got != n:
            raise RDBCorruptError("Duplicate set members detected")
        return s

    def intset_value(self, rdb_type: int, ints: list[int], width: int) -> Any:
        if not ints:
            return None
        s = SetValue.from_intset(ints, width)
        if len(s) > self.cfg.set_max_intset_entries:
            s.convert()
        return s

    def hash_value(self, rdb_type: int, flat: list[bytes]) -> Any:
        n = len(flat) >> 1
        if not n:
            return None
        cfg = self.cfg
        listpack = n <= cfg.hash_max_listpack_entries
        if listpack and rdb_type not in _LISTPACK_HASHES:
            listpack = max(map(len, flat)) <= cfg.hash_max_listpack_value
        it = iter(flat)
        h = HashValue.from_pairs(zip(it, it), listpack)  # noqa: B905 - an even count (the reader checks)
        if len(h) != n and h.ht:
            raise RDBCorruptError("Duplicate hash fields detected")
        return h

    def zset_value(self, rdb_type: int, members: list[bytes], scores: list[float]) -> Any:
        if not members:
            return None
        z = load_zset_lists(members, scores, rdb_type in _LISTPACK_ZSETS, self.cfg)
        if len(z.scores) != len(members) and (rdb_type in _SKIPLIST_ZSETS or not z.lp):
            raise RDBCorruptError("Duplicate zset fields detected")
        return z

    def stream_value(self, rdb_type: int, stream: Stream) -> Any:
        if STREAM_TYPE is None:
            raise RDBCorruptError("stream values cannot be loaded: this server has no stream type yet")
        return STREAM_TYPE.from_rdb(stream, self.srv)

    def module_value(self, rdb_type: int, value: ModuleValue) -> Any:
        raise RDBCorruptError(f"The RDB file contains module data I can't load: no matching module type "
                              f"'{value.name}'")


def restore_value(srv: Server, payload: bytes, deep: bool) -> Any:
    """RESTORE's payload check and decoding: the value, or raises
    RDBVersionError/RDBChecksumError ("DUMP payload version or checksum are
    wrong") or RDBCorruptError ("Bad data format")."""
    skip = state(srv).skip_checksum_validation
    try:
        dv = load_dump_payload(payload, max_version=RDB_VERSION, verify_checksum=not skip,
                               deep_sanitize=deep, builder=ServerValues(srv), types=_KNOWN_TYPES)
    except RDBCorruptError as e:
        if deep and payload[:1] != b"\x00" and not isinstance(e, RDBChecksumError):
            srv.stat_dump_payload_sanitizations += 1
        raise
    if deep and dv.type != "string":
        # One per validated container: every quicklist / stream node, else one.
        srv.stat_dump_payload_sanitizations += dv.nodes or 1
    if dv.value is None:
        raise RDBCorruptError("empty keys are not allowed in a DUMP payload")
    return dv.value


# -- writing a snapshot -------------------------------------------------------------------


def _access_info(srv: Server) -> tuple[bool, bool]:
    """(save LRU idle, save LFU counter): MAXMEMORY_FLAG_LRU / _LFU."""
    from .commands.introspection import maxmemory_policy

    policy = maxmemory_policy(srv)
    return policy.endswith("-lru"), policy.endswith("-lfu")


def write_snapshot(srv: Server, f: Any, *, progress: Any = None, aof_base: bool = False) -> int:
    """rdbSaveRio: the whole dataset to the binary file ``f`` -- header, aux
    fields, function libraries, then each non-empty db (SELECTDB, RESIZEDB,
    its keys with expire / LRU / LFU prefixes) and EOF with the CRC-64.
    Returns the bytes written.  ``progress(n)`` is called every 1024 keys.
    ``aof_base``: an AOF base file (RDBFLAGS_AOF_PREAMBLE: AUX aof-base 1,
    used by server/aof.py's rewrite)."""
    cfg = srv.cfg
    compress = bool(cfg.rdbcompression)
    checksum = bool(cfg.rdbchecksum)
    # rdb-version: 11 and 12 only change the header (7.0's types are valid
    # there); 9 re-encodes every non-string value from the neutral model.
    version = int(getattr(cfg, "rdb_version", RDB_VERSION) or RDB_VERSION)
    opts = EncodingOptions(set_max_intset_entries=_BIG, stream_node_max_bytes=cfg.stream_node_max_bytes,
                           stream_node_max_entries=cfg.stream_node_max_entries)
    w = RDBWriter(version, compression=compress, checksum=False, options=opts)
    legacy = w if version < RDB_VERSION else None
    delay = int(getattr(cfg, "rdb_key_save_delay", 0) or 0)
    save_lru, save_lfu = _access_info(srv)
    lru_clock = srv.lru_clock
    fsync_every = AUTOSYNC_BYTES if cfg.rdb_save_incremental_fsync else 0
    crc = 0
    total = 0
    synced = 0
    out: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal crc, total, synced, size
        data = b"".join(out)
        out.clear()
        size = 0
        if checksum:
            crc = crc64(data, crc)
        f.write(data)
        total += len(data)
        if fsync_every and total - synced >= fsync_every:
            f.flush()
            os.fsync(f.fileno())
            synced = total

    out.append(w.header())
    # used-mem: the process's resident size, O(1) like zmalloc_used_memory
    # (the dataset model behind INFO used_memory needs a full scan).
    # rdbPopulateSaveInfo: a primary with a backlog and a replica write their
    # replication id, offset and stream db (not an AOF base).
    repl = getattr(srv, "repl", None)
    rsi = repl.save_info() if repl is not None and not aof_base else None
    if rsi is not None:
        out.append(w.standard_aux(ctime=int(time.time()), used_mem=rss_bytes(), aof_base=aof_base,
                                  repl_stream_db=rsi[0], repl_id=rsi[1], repl_offset=rsi[2]))
    else:
        out.append(w.standard_aux(ctime=int(time.time()), used_mem=rss_bytes(), aof_base=aof_base))
    libraries = srv.function_libraries  # type: ignore[attr-defined]
    if legacy is not None and libraries:
        log.warning(f"RDB version {version} cannot hold functions: {len(libraries)} function "
                    f"librar{'y' if len(libraries) == 1 else 'ies'} left out of the snapshot")
        libraries = {}
    for code in libraries.values():
        out.append(w.function(code))
    append = out.append
    pack_exp = _I64.pack
    done = 0
    for db in srv.dbs:
        data = db.data
        if not data:
            continue
        expires = db.expires
        access = db.access
        append(w.select_db(db.id) + w.resize_db(len(data), len(expires)))
        for key, val in data.items():
            if expires:
                when = expires.get(key)
                if when is not None:
                    append(b"\xfc" + pack_exp(when))
            if save_lru:
                append(b"\xf8" + enc_len(_idle_seconds(access.get(key), lru_clock)))
            elif save_lfu:
                append(b"\xf9" + bytes((lfu_decr_and_return(srv, access.get(key)),)))
            if type(val) is bytes:
                rec = b"\x00" + enc_str(key, compress) + enc_str(val, compress)
            elif legacy is not None:
                kind, model, hint = _model_of(val)
                t, body = legacy.encode_value(kind, model, encoding=hint)
                rec = bytes((t,)) + enc_str(key, compress) + body
            else:
                t, body = encode_value(val, compress)
                rec = bytes((t,)) + enc_str(key, compress) + body
            append(rec)
            size += len(rec)
            if size >= _WRITE_CHUNK:
                flush()
            done += 1
            if progress is not None and not done & 1023:
                progress(done)
            if delay > 0:
                time.sleep(delay / 1e6)
    append(b"\xff")
    flush()
    # The trailer: the CRC-64 of everything before it (zeros when rdbchecksum is off).
    f.write(_U64.pack(crc))
    return total + 8


def _idle_seconds(stamp: int | None, lru_clock: int) -> int:
    """estimateObjectIdleTime / 1000 from a db.access stamp."""
    if stamp is None:
        return 0
    if stamp < _LFU_LIMIT:  # an LFU stamp left by an earlier policy
        return max(0, lfu_time_minutes() - (stamp >> 8)) * 60
    return max(0, lru_clock - stamp)


# -- SAVE -------------------------------------------------------------------------------


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        return "unknown"


def _fsync_dir(path: str) -> None:
    """fsyncFileDir: make the rename itself durable."""
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rdb_save(srv: Server, filename: str | None = None, *, progress: Any = None) -> bool:
    """rdbSave: write ``temp-<pid>.rdb``, fsync it, rename it over
    ``filename`` (``dbfilename``) and fsync the directory.  On success the
    dirty counter restarts and LASTSAVE moves; on failure the temp file is
    removed and the old dump stays untouched.  Logs as Redis does."""
    target = filename or srv.cfg.dbfilename
    tmp = f"temp-{os.getpid()}.rdb"
    try:
        f = open(tmp, "wb")  # noqa: SIM115 - closed below on every path
    except OSError as e:
        log.warning(f"Failed opening the temp RDB file {tmp} (in server root dir {_cwd()}) for saving: "
                    f"{e.strerror}")
        return False
    op = "rdbSaveRio"
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the snapshot allocates millions of short-lived objects, none cyclic
    try:
        with f:
            write_snapshot(srv, f, progress=progress)
            op = "fflush"
            f.flush()
            op = "fsync"
            os.fsync(f.fileno())
    except (OSError, ValueError, RDBError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        log.warning(f"Write error saving DB on disk({op}): {reason}")
        _unlink(tmp)
        return False
    finally:
        if gc_was_enabled:
            gc.enable()
    try:
        os.rename(tmp, target)
    except OSError as e:
        log.warning(f"Error moving temp DB file {tmp} on the final destination {target} (in server root dir "
                    f"{_cwd()}): {e.strerror}")
        _unlink(tmp)
        return False
    try:
        _fsync_dir(target)
    except OSError as e:
        log.warning(f"Write error saving DB on disk(fsyncFileDir): {e.strerror}")
        return False
    log.notice("DB saved on disk")
    srv.dirty = 0
    srv.last_save = int(time.time())
    state(srv).bgsave_ok = True
    update_misconf(srv)
    return True


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- BGSAVE -------------------------------------------------------------------------------


def child_active(srv: Server) -> bool:
    """hasActiveChildProcess."""
    return srv.child_type is not None  # type: ignore[attr-defined]


def bgsave(srv: Server) -> bool:
    """rdbSaveBackground: fork a child that runs :func:`rdb_save` and exits;
    False when another child is active or fork failed."""
    if child_active(srv):
        return False
    st = state(srv)
    st.saves += 1
    st.dirty_before_bgsave = srv.dirty
    st.lastbgsave_try = int(time.time())
    rfd, wfd = os.pipe()
    t0 = time.perf_counter()
    try:
        pid = os.fork()
    except OSError as e:
        os.close(rfd)
        os.close(wfd)
        st.bgsave_ok = False
        update_misconf(srv)
        log.warning(f"Can't save in background: fork: {e.strerror}")
        return False
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        os.close(rfd)
        _child_main(srv, wfd)
    fork_usec = int((time.perf_counter() - t0) * 1e6)
    os.close(wfd)
    os.set_blocking(rfd, False)
    _record_fork(srv, fork_usec)
    st.info_fd = rfd
    st.info_last = time.monotonic()
    st.keys_total = sum(len(db.data) for db in srv.dbs)
    st.keys_processed = 0
    srv.child_type = "rdb"  # type: ignore[attr-defined]
    srv.child_pid = pid  # type: ignore[attr-defined]
    st.save_time_start = int(time.time())
    log.notice(f"Background saving started by pid {pid}")
    return True


def _record_fork(srv: Server, fork_usec: int) -> None:
    """redisFork's statistics: latest_fork_usec, total_forks, the fork rate
    and the "fork" latency event."""
    srv.stat_fork_time = fork_usec  # type: ignore[attr-defined]
    srv.stat_total_forks += 1
    if fork_usec:
        srv.stat_fork_rate = rss_bytes() * 1e6 / fork_usec / (1 << 30)  # type: ignore[attr-defined]
    from .commands.server_cmds import latency_add_sample_if_needed

    latency_add_sample_if_needed(srv, "fork", fork_usec // 1000)


def child_setup(srv: Server) -> None:  # pragma: no cover - child process
    """What every snapshot child does first (BGSAVE here, BGREWRITEAOF in
    server/aof.py): no cyclic GC (it would touch every object header and
    copy the whole heap page by page; the child lives only for one save),
    default signal dispositions (SIGUSR1 is how the parent stops it), the
    child's log role, and closeChildUnusedResourceAfterFork: the listening
    sockets stay with the parent (a restarted server must be able to bind
    them)."""
    gc.disable()
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log.role = "C"
    for server in srv.servers:
        for sock in getattr(server, "sockets", None) or ():
            try:
                os.close(sock.fileno())
            except OSError:
                pass


def _child_main(srv: Server, info_fd: int) -> None:  # pragma: no cover - child process
    """The BGSAVE child: save, report progress through the pipe, exit.
    Never returns into the event loop."""
    code = 1
    try:
        child_setup(srv)
        os.set_blocking(info_fd, False)
        last = [time.monotonic()]

        def progress(n: int) -> None:
            # sendChildInfo: at most once a second, never blocking the save.
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                try:
                    os.write(info_fd, _U64.pack(n))
                except OSError:
                    pass

        code = 0 if rdb_save(srv, progress=progress) else 1
    except BaseException:  # noqa: BLE001 - whatever happens, the child must exit here
        code = 1
    finally:
        os._exit(code)


def _receive_child_info(srv: Server) -> None:
    """receiveChildInfo: the latest keys-processed count from the child."""
    st = state(srv)
    if st.info_fd < 0:
        return
    try:
        data = os.read(st.info_fd, 1 << 16)
    except (BlockingIOError, OSError):
        return
    n = len(data) // 8
    if n:
        st.keys_processed = _U64.unpack_from(data, (n - 1) * 8)[0]


def kill_child(srv: Server) -> None:
    """killRDBChild: SIGUSR1 to the saving child; the cron reaps it and
    removes its temp file without flagging an error."""
    if srv.child_type == "rdb":  # type: ignore[attr-defined]
        try:
            os.kill(srv.child_pid, signal.SIGUSR1)  # type: ignore[attr-defined]
        except OSError:
            pass


def check_child_done(srv: Server) -> None:
    """checkChildrenDone: reap a finished child (WNOHANG) and run
    backgroundSaveDoneHandler."""
    if srv.child_type != "rdb":  # type: ignore[attr-defined]
        return
    pid = srv.child_pid  # type: ignore[attr-defined]
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        done, status = pid, 1 << 8  # reaped elsewhere: treat as a failed save
    if done == 0:
        return
    _receive_child_info(srv)
    bysignal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    exitcode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    if exitcode == 255:  # SERVER_CHILD_NOERROR_RETVAL: a child that caught SIGUSR1
        bysignal, exitcode = signal.SIGUSR1, 1
    _bgsave_done(srv, pid, exitcode, bysignal)


def _bgsave_done(srv: Server, pid: int, exitcode: int, bysignal: int) -> None:
    """backgroundSaveDoneHandler: Disk, or Socket for a diskless sync (which
    touches neither the dirty counter nor LASTSAVE); then the replicas
    waiting for this snapshot (server/replication.py)."""
    st = state(srv)
    repl = getattr(srv, "repl", None)
    if st.socket_target:
        st.socket_target = False
        ok = not bysignal and exitcode == 0
        if ok:
            log.notice("Background RDB transfer terminated with success")
        elif not bysignal:
            log.warning("Background transfer error")
        else:
            log.warning(f"Background transfer terminated by signal {bysignal}")
        _reset_child(srv)
        if repl is not None:
            repl.snapshot_done(ok, True)
        return
    _bgsave_disk_done(srv, pid, exitcode, bysignal)
    if repl is not None and repl.snapshot_active:
        repl.snapshot_done(not bysignal and exitcode == 0, False)


def _bgsave_disk_done(srv: Server, pid: int, exitcode: int, bysignal: int) -> None:
    """backgroundSaveDoneHandlerDisk."""
    st = state(srv)
    if not bysignal and exitcode == 0:
        log.notice("Background saving terminated with success")
        srv.dirty -= st.dirty_before_bgsave
        srv.last_save = int(time.time())
        st.bgsave_ok = True
    elif not bysignal:
        log.warning("Background saving error")
        st.bgsave_ok = False
    else:
        log.warning(f"Background saving terminated by signal {bysignal}")
        _unlink(f"temp-{pid}.rdb")
        # SIGUSR1 is how the server itself stops a child: not an error.
        if bysignal != signal.SIGUSR1:
            st.bgsave_ok = False
    st.save_time_last = int(time.time()) - st.save_time_start
    st.save_time_start = -1
    _reset_child(srv)
    update_misconf(srv)


def _reset_child(srv: Server) -> None:
    st = state(srv)
    srv.child_type = None  # type: ignore[attr-defined]
    srv.child_pid = -1  # type: ignore[attr-defined]
    st.keys_total = 0
    st.keys_processed = 0
    if st.info_fd >= 0:
        os.close(st.info_fd)
        st.info_fd = -1


def update_misconf(srv: Server) -> None:
    """writeCommandsDeniedByDiskError for RDB: writes (and PING) are refused
    with -MISCONF while the last background save failed, save points exist
    and stop-writes-on-bgsave-error is on."""
    cfg = srv.cfg
    deny = bool(cfg.stop_writes_on_bgsave_error and cfg.save and not state(srv).bgsave_ok)
    from .reply import Err

    # The AOF half of writeCommandsDeniedByDiskError: server/aof.py keeps
    # its -MISCONF (a failed write or background fsync) in aof_misconf.
    srv.misconf = Err(MISCONF) if deny else getattr(srv, "aof_misconf", None)  # type: ignore[attr-defined]
    srv.update_gate()


def server_cron(srv: Server) -> None:
    """serverCron's persistence part: reap the child (and read its progress
    once a second), else check the save points; then a scheduled BGSAVE."""
    st = state(srv)
    now = int(time.time())
    if child_active(srv):
        if time.monotonic() - st.info_last >= 1.0:
            st.info_last = time.monotonic()
            _receive_child_info(srv)
        check_child_done(srv)
    else:
        retry_ok = now - st.lastbgsave_try > BGSAVE_RETRY_DELAY or st.bgsave_ok
        for seconds, changes in srv.cfg.save:
            if srv.dirty >= changes and now - srv.last_save > seconds and retry_ok:
                log.notice(f"{changes} changes in {seconds} seconds. Saving...")
                bgsave(srv)
                break
    if (
        not child_active(srv) and st.bgsave_scheduled
        and (now - st.lastbgsave_try > BGSAVE_RETRY_DELAY or st.bgsave_ok)
        and bgsave(srv)
    ):
        st.bgsave_scheduled = False


# -- loading ------------------------------------------------------------------------------


def _corruption_lines(e: RDBError) -> list[str]:
    """Redis's log for a damaged file: where, what, and that it stops."""
    if isinstance(e, (RDBSignatureError, RDBVersionError)):
        # rdbLoad refuses the header before reading anything (errno EINVAL).
        return [e.message, "Fatal error loading the DB: Invalid argument. Exiting."]
    where = f"Internal error in RDB reading offset {e.offset if e.offset is not None else 0} -> {e.message}"
    if e.key is not None:
        where += f" (reading key '{_printable(e.key)}')"
    return [where, "Terminating server after rdb file reading failure."]


def _printable(b: bytes) -> str:
    return b.decode("utf-8", "backslashreplace")


def _log_aux(srv: Server, ev: Aux) -> None:
    """The aux fields rdbLoadRio reports (and the ones it only remembers)."""
    k = ev.key.lower()
    v = ev.value
    if k == b"redis-ver":
        log.notice(f"Loading RDB produced by version {_printable(v)}")
    elif k == b"ctime":
        age = int(time.time()) - _strtol(v)
        log.notice(f"RDB age {max(age, 0)} seconds")
    elif k == b"used-mem":
        used = _strtol(v)
        state(srv).loading_rdb_used_mem = used
        log.notice(f"RDB memory usage when created {used / (1024 * 1024):.2f} Mb")
    elif k == b"aof-preamble":
        if _strtol(v):
            log.notice("RDB has an AOF tail")
    elif k == b"aof-base":
        if _strtol(v):
            log.notice("RDB is base AOF")
    elif k in (b"repl-stream-db", b"repl-id", b"repl-offset"):
        # rdbLoadRio keeps them as the RDB's replication info (rsi).
        st = state(srv)
        st._loaded_aux[k] = v
        aux = st._loaded_aux
        if len(aux) == 3:
            try:
                st.loaded_repl = (_strtol(aux[b"repl-stream-db"]), aux[b"repl-id"].decode("latin-1"),
                                  _strtol(aux[b"repl-offset"]))
            except (ValueError, UnicodeDecodeError):
                st.loaded_repl = None
            aux.clear()
    elif k not in (b"redis-bits", b"lua"):
        log.debug(f"Unrecognized RDB AUX field: '{_printable(ev.key)}'")


def _strtol(v: bytes) -> int:
    """strtol(v, NULL, 10): the leading integer, 0 when there is none."""
    s = v.strip()
    i = 1 if s[:1] in (b"-", b"+") else 0
    j = i
    while j < len(s) and 48 <= s[j] <= 57:
        j += 1
    return int(s[:j]) if j > i else 0


def load_steps(srv: Server, path: str, *, allow_dup: bool = False, startup: bool = False) -> Iterator[None]:
    """rdbLoad as a generator: yields whenever the event loop should run
    (every ``loading-process-events-interval-bytes`` of input, and every
    50 ms with ``key-load-delay``).  Raises OSError when the file cannot be
    opened (FileNotFoundError when it does not exist) and :class:`LoadError`
    when it is damaged; keys read before the damage stay loaded, as in Redis
    (the server then exits).

    ``startup`` (the load before serving, while the heap is small): the
    checksum is computed by a forked child meanwhile (persistence's :class:`ForkedCRC`),
    and what was loaded is moved out of the cyclic collector's generations
    (gc.freeze), as server/main.py does with the whole start-up heap once the
    server has started."""
    f = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    st = state(srv)
    st.loaded_repl = None
    st._loaded_aux = {}
    gc_was_enabled = gc.isenabled()
    try:
        size = os.fstat(f.fileno()).st_size
        st.loading_start_time = int(time.time())
        st.loading_total_bytes = size
        st.loading_loaded_bytes = 0
        st.loading_rdb_used_mem = 0
        st.last_load_keys_loaded = 0
        st.last_load_keys_expired = 0
        srv.loading = True
        # Millions of new containers would trigger full collections that
        # find nothing to free.
        gc.disable()
        yield from _load_body(srv, f, size, allow_dup, checksum_child=startup)
    except RDBError as e:
        raise LoadError(_corruption_lines(e)) from e
    finally:
        f.close()
        srv.loading = False
        if startup:
            # With everything loaded still in generation 0, the first
            # allocation after gc.enable() would traverse every loaded
            # container (most of a second per million keys) to find nothing.
            gc.freeze()
        if gc_was_enabled:
            gc.enable()


def load_stream(srv: Server, f: Any, size: int) -> Generator[None, None, int]:
    """rdbLoadRio with RDBFLAGS_AOF_PREAMBLE, for server/aof.py: load the RDB
    at the start of the open binary file ``f`` (an AOF base file or the
    preamble of an old-style AOF; ``size`` is the file's size).  Expired keys
    are kept (the AOF commands after it rely on the exact keyspace).  The
    caller owns ``srv.loading`` and the loading stats.  Yields like
    :func:`load_steps`; returns the offset just past the RDB (where an
    old-style AOF's RESP tail starts).  Raises :class:`LoadError`."""
    try:
        return (yield from _load_body(srv, f, size, False, aof_preamble=True))
    except RDBError as e:
        raise LoadError(_corruption_lines(e)) from e


def _load_body(srv: Server, f: Any, size: int, allow_dup: bool, *, aof_preamble: bool = False,
               checksum_child: bool = False) -> Generator[None, None, int]:
    """rdbLoadRio's loop over the reader's events; returns the RDB's end
    offset.  ``checksum_child``: verify the checksum with a
    :class:`ForkedCRC` child instead of in the reader."""
    st = state(srv)
    cfg = srv.cfg
    checksum = bool(cfg.rdbchecksum) and not st.skip_checksum_validation
    helper = None
    if checksum and checksum_child and size >= _CHECKSUM_CHILD_MIN_SIZE:
        helper = ForkedCRC.start(f.fileno(), size, lambda: child_setup(srv))
    try:
        return (yield from _load_events(srv, f, size, allow_dup, aof_preamble, checksum, helper))
    finally:
        if helper is not None:
            helper.close()


def _load_events(srv: Server, f: Any, size: int, allow_dup: bool, aof_preamble: bool, checksum: bool,
                 helper: ForkedCRC | None) -> Generator[None, None, int]:
    """The body of :func:`_load_body`."""
    st = state(srv)
    cfg = srv.cfg
    reader = RDBReader(verify_checksum=checksum and helper is None,
                       max_version=max(RDB_VERSION, int(getattr(srv.cfg, "rdb_version", RDB_VERSION))),
                       deep_sanitize=cfg.sanitize_dump_payload == "yes", total_size=size,
                       builder=ServerValues(srv), batch_keys=True, types=_KNOWN_TYPES)
    interval = int(cfg.loading_process_events_interval_bytes)
    chunk_size = max(1024, min(1 << 20, interval))
    delay = int(getattr(cfg, "key_load_delay", 0) or 0)
    _, lfu = _access_info(srv)
    primary = not srv.is_replica and not aof_preamble
    lru_clock = srv.lru_clock
    dbs = srv.dbs
    cur_db = 0
    db = dbs[0]
    data, expires, access = db.data, db.expires, db.access
    loaded = expired = empty = 0
    since_yield = 0
    last_yield = time.monotonic()
    libraries: dict[str, bytes] = srv.function_libraries  # type: ignore[attr-defined]
    now_ms = int(time.time() * 1000)
    read = f.read
    while True:
        chunk = read(chunk_size)
        events = reader.feed(chunk) if chunk else reader.close()
        for ev in events:
            if type(ev) is KeyBatch:
                if ev.db != cur_db:
                    cur_db = ev.db
                    db = dbs[cur_db]
                    data, expires, access = db.data, db.expires, db.access
                for key in ev.skipped:
                    empty += 1
                    if empty <= _EMPTY_KEYS_LOGGED:
                        log.warning(f"rdbLoadObject skipping empty key: {_printable(key)}")
                # Values are the builder's (strings stay the bytes the reader
                # gave: rdbLoadObject runs tryObjectEncoding, which is exactly
                # how bytes read -- int, embstr up to 44 bytes, raw beyond).
                keys = ev.keys
                values = ev.values
                meta = ev.meta
                if not delay and not allow_dup and not (primary and _any_expired(meta, now_ms)):
                    dup = _add_batch(data, keys, values)
                    if dup is not None:
                        raise LoadError([f"RDB has duplicated key '{_printable(dup)}' in DB {db.id}",
                                         "Duplicated key found in RDB file"])
                    loaded += len(keys)
                    for i, exp, idle, freq in meta:
                        key = keys[i]
                        if exp is not None:
                            expires[key] = exp
                        if lfu:
                            if freq is not None:
                                access[key] = (lfu_time_minutes() << 8) | freq
                        elif idle is not None:
                            access[key] = lru_clock - idle
                    continue
                # Key by key: expired keys, duplicates, key-load-delay.
                prefixes = {m[0]: m for m in meta}
                for i, key in enumerate(keys):
                    m = prefixes.get(i)
                    exp = idle = freq = None
                    if m is not None:
                        _, exp, idle, freq = m
                    if exp is not None and primary and exp < now_ms:
                        expired += 1
                        continue
                    loaded += 1
                    if key in data:
                        if not allow_dup:
                            raise LoadError([f"RDB has duplicated key '{_printable(key)}' in DB {db.id}",
                                             "Duplicated key found in RDB file"])
                        db.delete(key)
                    data[key] = values[i]
                    if exp is not None:
                        expires[key] = exp
                    if lfu:
                        if freq is not None:
                            access[key] = (lfu_time_minutes() << 8) | freq
                    elif idle is not None:
                        access[key] = lru_clock - idle
                    if delay > 0:
                        time.sleep(delay / 1e6)
                        if time.monotonic() - last_yield >= 0.05:
                            st.loading_loaded_bytes = reader.offset
                            yield
                            last_yield = time.monotonic()
                            now_ms = int(time.time() * 1000)
            elif type(ev) is Aux:
                _log_aux(srv, ev)
            elif type(ev) is SelectDB:
                if ev.db >= len(dbs):
                    raise LoadError([f"FATAL: Data file was created with a Redis server configured to handle "
                                     f"more than {len(dbs)} databases. Exiting\n"])
                cur_db = ev.db
                db = dbs[cur_db]
                data, expires, access = db.data, db.expires, db.access
            elif type(ev) is FunctionLibrary:
                _load_function(libraries, ev, allow_dup)
            elif type(ev) is ModuleAux:
                raise LoadError([f"The RDB file contains AUX module data I can't load: no matching module "
                                 f"'{ev.value.name}'"])
            elif type(ev) is End:
                if checksum and ev.checksum == 0 and reader.version >= 5:
                    log.notice("RDB file was saved with checksum disabled: no check performed.")
                elif helper is not None and ev.checksum is not None:
                    # What the reader would have checked: the CRC of everything before the trailer.
                    computed = helper.crc(ev.offset + 1)
                    if computed != ev.checksum:
                        raise RDBChecksumError(f"Wrong RDB checksum expected: ({ev.checksum:#018x}) got: "
                                               f"({computed:#018x})", offset=ev.offset + 1)
        st.loading_loaded_bytes = reader.offset
        st.last_load_keys_loaded = loaded
        st.last_load_keys_expired = expired
        if reader.done or not chunk:
            break
        since_yield += len(chunk)
        if since_yield >= interval:
            since_yield = 0
            yield
            last_yield = time.monotonic()
            now_ms = int(time.time() * 1000)
    if empty:
        log.notice(f"Done loading RDB, keys loaded: {loaded}, keys expired: {expired}, "
                   f"empty keys skipped: {empty}.")
    else:
        log.notice(f"Done loading RDB, keys loaded: {loaded}, keys expired: {expired}.")
    return reader.end_offset or reader.offset


def _any_expired(meta: list[tuple[int, int | None, int | None, int | None]], now_ms: int) -> bool:
    """Whether a batch holds a key whose expire time has passed."""
    for _, exp, _, _ in meta:
        if exp is not None and exp < now_ms:
            return True
    return False


def _add_batch(data: dict[bytes, Any], keys: list[bytes], values: list[Any]) -> bytes | None:
    """dbAddRDBLoad for a whole batch in one dict.update; returns None, or
    the first key of the batch that was already in the db or came twice
    (a fatal duplicate: the batch is then written only partly right, but
    the load stops and the server with it).  The dict keeps insertion
    order, so the keys past the db's old size are exactly the new ones."""
    n0 = len(data)
    data.update(zip(keys, values, strict=True))
    if len(data) == n0 + len(keys):
        return None
    fresh = set(islice(data, n0, None))
    seen: set[bytes] = set()
    for k in keys:
        if k not in fresh or k in seen:
            return k
        seen.add(k)
    raise AssertionError("a batch grew the db by less than its size without a duplicate")


def _load_function(libraries: dict[str, bytes], ev: FunctionLibrary, replace: bool) -> None:
    """rdbFunctionLoad, keeping the code for the scripting layer: the library
    name comes from the ``#!<engine> name=<name>`` line."""
    if ev.name is None or ev.engine is None:
        raise LoadError(["Failed loading library, Missing library metadata"])
    if ev.name in libraries and not replace:
        raise LoadError([f"Failed loading library, Library '{ev.name}' already exists"])
    libraries[ev.name] = ev.code


def terminate(code: int) -> None:
    """exit() from inside a command: the event loop would catch SystemExit
    raised by a protocol callback and keep serving, so flush what the log
    and the standard streams hold and leave the process at once."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def load_sync(srv: Server, path: str, *, allow_dup: bool = False) -> None:
    """rdbLoad without giving the event loop a turn (DEBUG RELOAD)."""
    for _ in load_steps(srv, path, allow_dup=allow_dup):
        pass


async def startup_load(srv: Server) -> None:
    """loadDataFromDisk for RDB: load ``dbfilename`` before serving, letting
    the event loop run between chunks (other clients get -LOADING); a
    missing file is an empty dataset, anything else that fails stops the
    start-up with a non-zero exit (SystemExit(1))."""
    cfg = srv.cfg
    if cfg.appendonly:
        return  # the AOF is the dataset then (its loader runs instead)
    t0 = time.perf_counter()
    try:
        for _ in load_steps(srv, cfg.dbfilename, startup=True):
            await asyncio.sleep(0)
    except FileNotFoundError:
        return
    except LoadError as e:
        for line in e.lines:
            log.warning(line)
        raise SystemExit(1) from None
    except OSError as e:
        log.warning(f"Fatal error loading the DB: {e.strerror}. Exiting.")
        raise SystemExit(1) from None
    log.notice(f"DB loaded from disk: {time.perf_counter() - t0:.3f} seconds")


# -- INFO persistence ---------------------------------------------------------------------


def info_rdb_fields(srv: Server) -> list[tuple[str, Any]]:
    """INFO persistence from ``loading`` to ``rdb_last_load_keys_loaded``."""
    st = state(srv)
    rdb_child = srv.child_type == "rdb"  # type: ignore[attr-defined]
    total = st.keys_total if rdb_child else 0
    processed = st.keys_processed if rdb_child else 0
    perc = processed * 100 / total if total else 0.0
    return [
        ("loading", 1 if srv.loading else 0),
        ("async_loading", 0),
        ("current_cow_peak", 0),
        ("current_cow_size", 0),
        ("current_cow_size_age", 0),
        ("current_fork_perc", f"{perc:.2f}"),
        ("current_save_keys_processed", processed),
        ("current_save_keys_total", total),
        ("rdb_changes_since_last_save", srv.dirty),
        ("rdb_bgsave_in_progress", 1 if rdb_child else 0),
        ("rdb_last_save_time", srv.last_save),
        ("rdb_last_bgsave_status", "ok" if st.bgsave_ok else "err"),
        ("rdb_last_bgsave_time_sec", st.save_time_last),
        ("rdb_current_bgsave_time_sec", int(time.time()) - st.save_time_start if rdb_child else -1),
        ("rdb_saves", st.saves),
        ("rdb_last_cow_size", 0),
        ("rdb_last_load_keys_expired", st.last_load_keys_expired),
        ("rdb_last_load_keys_loaded", st.last_load_keys_loaded),
    ]


def info_loading_fields(srv: Server) -> list[tuple[str, Any]]:
    """The ``loading_*`` lines INFO persistence ends with while loading."""
    if not srv.loading:
        return []
    st = state(srv)
    perc = 0.0
    remaining = 1
    if st.loading_total_bytes:
        perc = st.loading_loaded_bytes / st.loading_total_bytes * 100
        remaining = st.loading_total_bytes - st.loading_loaded_bytes
    elif st.loading_rdb_used_mem:
        perc = min(99.99, st.loading_loaded_bytes / st.loading_rdb_used_mem * 100)
        remaining = max(1, st.loading_rdb_used_mem - st.loading_loaded_bytes)
    elapsed = int(time.time()) - st.loading_start_time
    eta = 1 if elapsed == 0 else elapsed * remaining // (st.loading_loaded_bytes + 1)
    return [
        ("loading_start_time", st.loading_start_time),
        ("loading_total_bytes", st.loading_total_bytes),
        ("loading_rdb_used_mem", st.loading_rdb_used_mem),
        ("loading_loaded_bytes", st.loading_loaded_bytes),
        ("loading_loaded_perc", f"{perc:.2f}"),
        ("loading_eta_seconds", eta),
    ]


# -- server hooks -------------------------------------------------------------------------


def _save_for_shutdown(srv: Server) -> str | None:
    """Server.save_hook (finishShutdown): stop a saving child, then a
    synchronous save; an error text when it failed."""
    _kill_child_for_exit(srv)
    return None if rdb_save(srv) else "Error trying to save the DB"


def _kill_child_for_exit(srv: Server) -> None:
    if srv.child_type == "rdb":  # type: ignore[attr-defined]
        log.warning("There is a child saving an .rdb. Killing it!")
        pid = srv.child_pid  # type: ignore[attr-defined]
        kill_child(srv)
        _unlink(f"temp-{pid}.rdb")


def _shutdown_hook(srv: Server, save: bool | None, now: bool, force: bool) -> None:
    """Stop a saving child on every shutdown path (the save hook already
    did when a final save was made)."""
    _kill_child_for_exit(srv)
    return None


def _after_flushall(srv: Server) -> None:
    """flushAllDataAndResetRDB: a saving child is stopped (its snapshot is
    stale) and, with save points configured, an empty dump is written now."""
    kill_child(srv)
    if srv.cfg.save:
        rdb_save(srv)


def install(srv: Server) -> None:
    """Attach the RDB state and hooks to a server (called from
    commands.persistence_cmd.install)."""
    if hasattr(srv, "rdb"):
        return
    srv.rdb = RDBState()  # type: ignore[attr-defined]
    if not hasattr(srv, "child_type"):
        srv.child_type = None  # type: ignore[attr-defined]
        srv.child_pid = -1  # type: ignore[attr-defined]
    if not hasattr(srv, "function_libraries"):
        srv.function_libraries = {}  # type: ignore[attr-defined]
    srv.save_hook = lambda: _save_for_shutdown(srv)
    srv.shutdown_hooks.append(lambda save, now, force: _shutdown_hook(srv, save, now, force))
    srv.after_flushall = lambda: _after_flushall(srv)  # type: ignore[attr-defined]
    srv.startup_load = lambda: startup_load(srv)  # type: ignore[attr-defined]
    srv.cron_hooks.append(lambda: server_cron(srv))
    srv.cfg.add_hook("save", lambda old, new: update_misconf(srv))
    srv.cfg.add_hook("stop-writes-on-bgsave-error", lambda old, new: update_misconf(srv))
    update_misconf(srv)
